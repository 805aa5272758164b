//! The lake on object storage: the same file ingest into `s3://` served by s3s-fs (a real S3
//! protocol server on loopback, started by the dev stack), read back through DataFusion over the
//! same object store, resumed from checkpoints that live in the bucket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use driftwatch_ingest::fleet::files::{FormatMix, write_fleet_files};
use driftwatch_ingest::fleet::{Fleet, FleetConfig};
use driftwatch_lake::store::LakeStore;

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
    let bucket = common::unique("lake").replace('-', "");
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
