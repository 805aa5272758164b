//! The lake on object storage: the same file ingest into `s3://` served by s3s-fs (a real S3
//! protocol server on loopback, started by the dev stack), read back through DataFusion over the
//! same object store, resumed from checkpoints that live in the bucket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use anyhow::Context;
use driftwatch_ingest::fleet::files::{FormatMix, write_fleet_files};
use driftwatch_ingest::fleet::{Fleet, FleetConfig};
use driftwatch_lake::store::LakeStore;

/// A bucket name unique to this run, and short: s3s-fs keeps each object's metadata in a file
/// named after the base64 of bucket and key together, which must fit the 255-byte file name
/// limit of the file system under it (S3 itself allows 1 024-byte keys).
fn short_bucket(prefix: char) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}{:06x}", (nanos ^ std::process::id().rotate_left(20)) & 0xff_ffff)
}

fn s3_options(endpoint: &str) -> HashMap<String, String> {
    [
        ("aws_access_key_id", common::S3_ACCESS_KEY),
        ("aws_secret_access_key", common::S3_SECRET_KEY),
        ("aws_region", "us-east-1"),
        ("aws_endpoint", endpoint),
        ("aws_allow_http", "true"),
        ("aws_virtual_hosted_style_request", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn file_ingest_into_s3_lands_exactly_and_resumes_from_bucket_checkpoints() -> anyhow::Result<()> {
    let endpoint = common::stack_var("DRIFTWATCH_TEST_S3");
    let root = std::path::PathBuf::from(common::stack_var("DRIFTWATCH_TEST_S3_DIR"));
    let bucket = short_bucket('l');
    // s3s-fs serves each folder under its root as a bucket.
    std::fs::create_dir_all(root.join(&bucket))?;
    let location = format!("s3://{bucket}/prod");

    let dir = tempfile::tempdir()?;
    let fleet = Fleet::new(FleetConfig {
        seed: 3,
        apps: 5,
        inferences: 3_000,
        malformed_ratio: 0.01,
        ..FleetConfig::default()
    });
    let generated = write_fleet_files(&fleet, dir.path(), FormatMix::Mixed, 10, 0.01, 3)?;
    let ingest = || {
        let mut command = common::driftwatch();
        command
            .args(["ingest", "--source"])
            .arg(format!("file:{}", dir.path().display()))
            .args(["--lake", &location])
            .envs(common::s3_client_env(&endpoint));
        command
    };
    common::run_ok(&mut ingest())?;

    let store = LakeStore::open(&location, &s3_options(&endpoint)).await?;
    let session = driftwatch_analyze::LakeSession::open(&location, Some(store.object_store())).await?;
    let totals = driftwatch_analyze::lake_totals(&session).await?;
    let produced: u64 = generated.truth.per_app.values().map(|t| t.distinct_event_ids).sum();
    assert_eq!(totals.events as u64, produced, "event rows in the S3 lake");
    assert_eq!(totals.distinct_events as u64, produced);
    assert_eq!(totals.dead_letters as u64, generated.truth.malformed_messages);
    let summary = driftwatch_analyze::app_summary(&session).await?;
    for (app, truth) in &generated.truth.per_app {
        let row = summary.iter().find(|r| &r.app == app).expect("app in summary");
        assert_eq!(row.input_tokens as u64, truth.input_tokens, "{app} tokens");
        assert!(row.p95_latency_ms.is_some(), "{app}: latency from the rollups' histograms");
    }

    // `analyze summary` finds the lake and how to reach it in the ingest configuration alone
    // (location and `[lake.options]`), with no `AWS_*` in its environment.
    // Beside the input folder, not in it: the second ingest below reads every file there.
    let config_dir = tempfile::tempdir()?;
    let config = config_dir.path().join("driftwatch.toml");
    let options: String = s3_options(&endpoint).iter().map(|(key, value)| format!("{key} = \"{value}\"\n")).collect();
    std::fs::write(&config, format!("[lake]\nlocation = \"{location}\"\n\n[lake.options]\n{options}"))?;
    let mut analyze = common::driftwatch();
    analyze.args(["analyze", "summary", "--json", "--config"]).arg(&config);
    for (key, _) in common::s3_client_env(&endpoint) {
        analyze.env_remove(key);
    }
    let printed: serde_json::Value = serde_json::from_str(&common::run_ok(&mut analyze)?)?;
    assert_eq!(printed["totals"]["events"].as_u64(), Some(produced), "{printed}");

    // The objects really are in the bucket, Hive-partitioned, with checkpoints beside them.
    let objects = common::files_under(&root.join(&bucket));
    let relative: Vec<String> =
        objects.iter().map(|p| p.strip_prefix(root.join(&bucket)).unwrap().display().to_string()).collect();
    assert!(relative.iter().any(|p| p.starts_with("prod/events/date=") && p.contains("/app=")), "{relative:?}");
    assert!(relative.iter().any(|p| p.starts_with("prod/_checkpoints/")), "{relative:?}");
    assert!(relative.iter().all(|p| !p.contains(".pending.")), "no flush left pending: {relative:?}");

    // A second run reads its checkpoints from the bucket and adds nothing.
    common::run_ok(&mut ingest())?;
    let session = driftwatch_analyze::LakeSession::open(&location, Some(store.object_store())).await?;
    let again = driftwatch_analyze::lake_totals(&session).await?;
    assert_eq!(again.events, totals.events);
    assert_eq!(again.dead_letters, totals.dead_letters);
    Ok(())
}

/// The claim protocol on S3: conditional puts (`If-None-Match`, `If-Match`) against a real S3
/// server, so a writer that lost its partition cannot commit to a bucket either.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_writer_is_fenced_on_s3_by_conditional_puts() -> anyhow::Result<()> {
    use driftwatch_lake::error::LakeError;
    use driftwatch_lake::parquet::ParquetOptions;
    use driftwatch_lake::writer::{FlushBatch, LakeWriter};

    let endpoint = common::stack_var("DRIFTWATCH_TEST_S3");
    let root = std::path::PathBuf::from(common::stack_var("DRIFTWATCH_TEST_S3_DIR"));
    let bucket = short_bucket('c');
    std::fs::create_dir_all(root.join(&bucket))?;
    let store = LakeStore::open(&format!("s3://{bucket}/prod"), &s3_options(&endpoint)).await?;

    let path = "_checkpoints/probe/0.json";
    let created = store.put_if(path, bytes::Bytes::from_static(b"one"), None).await?;
    let again = store.put_if(path, bytes::Bytes::from_static(b"two"), None).await;
    assert!(matches!(again, Err(LakeError::Conflict { .. })), "If-None-Match: {again:?}");
    store.put_if(path, bytes::Bytes::from_static(b"two"), Some(&created)).await?;
    let stale = store.put_if(path, bytes::Bytes::from_static(b"three"), Some(&created)).await;
    assert!(matches!(stale, Err(LakeError::Conflict { .. })), "If-Match: {stale:?}");

    let empty = |first_offset, next_offset| FlushBatch {
        stream: "t".into(),
        partition: 0,
        first_offset,
        next_offset,
        ..FlushBatch::default()
    };
    let stalled = LakeWriter::new(store.clone(), ParquetOptions::default());
    let successor = LakeWriter::new(store.clone(), ParquetOptions::default());
    stalled.recover("t", 0).await?;
    stalled.commit(&mut empty(0, 10)).await?;
    assert_eq!(successor.recover("t", 0).await?.map(|c| c.next_offset), Some(10));
    let refused = stalled.commit(&mut empty(10, 20)).await;
    assert!(matches!(refused, Err(LakeError::Fenced { .. })), "{refused:?}");
    successor.commit(&mut empty(10, 30)).await?;
    assert_eq!(stalled.read_checkpoint("t", 0).await?.map(|c| c.next_offset), Some(30));

    // A store configured without conditional writes still works, unfenced.
    let mut options = s3_options(&endpoint);
    options.insert("aws_conditional_put".into(), "disabled".into());
    let plain = LakeStore::open(&format!("s3://{bucket}/plain"), &options).await?;
    plain.put_if(path, bytes::Bytes::from_static(b"one"), None).await?;
    plain.put_if(path, bytes::Bytes::from_static(b"two"), None).await?;
    assert_eq!(plain.get(path).await?, Some(bytes::Bytes::from_static(b"two")));
    Ok(())
}

/// A SIGTERM while the file source's flushes retry against an object store that went away ends
/// the run by itself within the shutdown deadline, failing (rows were left unwritten) rather
/// than being ended by the deadline's exit 124. A run after the store is back lands every row
/// exactly once: what was not committed is read again from the checkpoint.
#[tokio::test(flavor = "multi_thread")]
async fn a_sigterm_during_an_object_store_outage_ends_the_file_run_within_the_deadline() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut s3 = common::PrivateS3::start(dir.path())?;
    std::fs::create_dir_all(s3.root.join("lake"))?;
    let input = dir.path().join("input");
    std::fs::create_dir_all(&input)?;
    // Enough input that the run is still reading when the store stops, in small flushes.
    let fleet = Fleet::new(FleetConfig { seed: 8, apps: 4, inferences: 20_000, ..FleetConfig::default() });
    let generated = write_fleet_files(&fleet, &input, FormatMix::Text, 10, 0.0, 8)?;
    let deadline = std::time::Duration::from_secs(12);
    let log_path = dir.path().join("ingest.log");
    let client_env = s3.client_env();
    let ingest = |log: std::fs::File| -> anyhow::Result<std::process::Child> {
        let mut command = common::driftwatch();
        command
            .args(["ingest", "--source"])
            .arg(format!("file:{}", input.display()))
            .args(["--lake", "s3://lake/run"])
            .envs(client_env.clone())
            .env("DRIFTWATCH_SHUTDOWN_DEADLINE", format!("{}s", deadline.as_secs()))
            .env("DRIFTWATCH_FLUSH__MAX_ROWS", "1000")
            .stdout(std::process::Stdio::null())
            .stderr(log);
        Ok(command.spawn()?)
    };
    let mut run = ingest(std::fs::File::create(&log_path)?)?;
    let started = common::wait_for(std::time::Duration::from_secs(60), || {
        std::fs::read_to_string(&log_path).ok().filter(|log| log.contains("File source started."))
    });
    assert!(started.is_some(), "the run never started; log:\n{}", std::fs::read_to_string(&log_path)?);
    s3.server.stop();
    // Flushes now fail and are retried; the run keeps going (reading, then waiting for them).
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(
        run.try_wait()?.is_none(),
        "the run ended before the shutdown; log:\n{}",
        std::fs::read_to_string(&log_path)?
    );

    let asked = std::time::Instant::now();
    common::terminate(&run)?;
    let status = common::wait_with_timeout(&mut run, deadline * 5)?;
    let took = asked.elapsed();
    let log = std::fs::read_to_string(&log_path)?;
    assert_ne!(status.code(), Some(124), "ended by the shutdown deadline; log:\n{log}");
    assert!(!status.success(), "rows were left unwritten, so the run must fail; log:\n{log}");
    assert!(took < deadline, "the shutdown took {took:?}, the deadline is {deadline:?}; log:\n{log}");
    assert!(log.contains("giving up the flushes still retrying"), "log:\n{log}");

    s3.server.restart()?;
    let mut rerun = ingest(std::fs::File::create(dir.path().join("rerun.log"))?)?;
    let status = common::wait_with_timeout(&mut rerun, std::time::Duration::from_secs(300))?;
    assert!(status.success(), "the run after the outage failed: {status}");
    let counts = common::lake_counts(&s3.root.join("lake").join("run")).await?;
    for (app, truth) in &generated.truth.per_app {
        let got = counts.per_app.get(app).with_context(|| format!("{app} missing from the lake"))?;
        assert_eq!(got.rows as u64, truth.requests, "{app} rows");
        assert_eq!(got.distinct_events as u64, truth.distinct_event_ids, "{app}: each event once");
        assert_eq!(got.input_tokens as u64, truth.input_tokens, "{app} input tokens");
    }
    Ok(())
}
