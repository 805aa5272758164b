//! kill -9 at random moments during a file ingest, restart, repeat: the lake must end with
//! every message's rows exactly once, and no reader may ever see a partial file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use driftwatch_ingest::fleet::files::{FormatMix, write_fleet_files};
use driftwatch_ingest::fleet::{Fleet, FleetConfig, Truth};
use rand::{RngExt, SeedableRng};

/// `driftwatch ingest` of `input` into `lake` with small flushes, so every run commits many
/// checkpoints and a kill or a competing run lands mid-protocol. Output is discarded.
fn small_flush_ingest(input: &std::path::Path, lake: &std::path::Path) -> std::process::Command {
    let mut command = common::driftwatch();
    command
        .args(["ingest", "--source"])
        .arg(format!("file:{}", input.display()))
        .arg("--lake")
        .arg(lake)
        .env("DRIFTWATCH_FLUSH__MAX_ROWS", "1500")
        .env("DRIFTWATCH_FLUSH__MAX_AGE", "200ms")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

/// The lake holds the generator's truth exactly: rows, distinct ids, dead letters, tokens per app.
async fn assert_exactly_once(lake: &std::path::Path, truth: &Truth, context: &str) -> anyhow::Result<u64> {
    let counts = common::lake_counts(lake).await?;
    let produced: u64 = truth.per_app.values().map(|t| t.distinct_event_ids).sum();
    assert_eq!(counts.event_rows as u64, produced, "rows {context}");
    assert_eq!(counts.distinct_events as u64, produced, "distinct event ids {context}");
    assert_eq!(counts.dead_letters as u64, truth.malformed_messages, "dead letters {context}");
    for (app, expected) in &truth.per_app {
        assert_eq!(counts.per_app[app].input_tokens as u64, expected.input_tokens, "{app} tokens {context}");
    }
    Ok(produced)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_leaves_the_lake_exactly_once() -> anyhow::Result<()> {
    let seed = std::env::var("DRIFTWATCH_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_128u64);
    println!("crash test seed {seed} (set DRIFTWATCH_CRASH_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("input");
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&input)?;
    let fleet =
        Fleet::new(FleetConfig { seed, apps: 6, inferences: 60_000, malformed_ratio: 0.01, ..FleetConfig::default() });
    let generated = write_fleet_files(&fleet, &input, FormatMix::Mixed, 10, 0.01, seed)?;

    let ingest = || small_flush_ingest(&input, &lake);

    let mut kills = 0;
    let mut completed = false;
    for _ in 0..60 {
        let mut child = ingest().spawn()?;
        let delay = Duration::from_millis(rng.random_range(30..600));
        std::thread::sleep(delay);
        if child.try_wait()?.is_some() {
            completed = true;
            break;
        }
        child.kill()?; // SIGKILL
        child.wait()?;
        kills += 1;
        // Whatever instant the kill hit, every visible file must be a complete Parquet file.
        let counts = common::lake_counts(&lake).await;
        assert!(counts.is_ok(), "lake unreadable after kill {kills}: {counts:?}");
    }
    if !completed {
        let status = common::wait_with_timeout(&mut ingest().spawn()?, Duration::from_secs(600))?;
        assert!(status.success(), "final run failed: {status}");
    }
    assert!(kills >= 5, "only {kills} kills landed; the test needs at least 5");

    let produced = assert_exactly_once(&lake, &generated.truth, &format!("after {kills} kills")).await?;
    let leftovers: Vec<_> = common::files_under(&lake)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(".tmp")))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
    println!("{kills} kills, {produced} events exactly once");
    Ok(())
}

/// Two ingests of the same file at once (a second one started by mistake, or a scheduler
/// retrying while the first still runs): the second claims the file's partition in the lake,
/// the first is refused at its next checkpoint and stops, naming the reason, and the lake
/// still holds every message's rows exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_ingest_of_the_same_file_fences_the_first_and_the_lake_stays_exactly_once() -> anyhow::Result<()> {
    let seed = 20_261_202u64;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("input");
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&input)?;
    let fleet =
        Fleet::new(FleetConfig { seed, apps: 6, inferences: 40_000, malformed_ratio: 0.01, ..FleetConfig::default() });
    let generated = write_fleet_files(
        &fleet,
        &input,
        FormatMix::Single(driftwatch_ingest::fleet::WireFormat::JsonEvents),
        10,
        0.01,
        seed,
    )?;
    let ingest = |log: &std::path::Path| -> anyhow::Result<std::process::Child> {
        Ok(small_flush_ingest(&input, &lake).stderr(std::fs::File::create(log)?).spawn()?)
    };
    let (first_log, second_log) = (dir.path().join("first.log"), dir.path().join("second.log"));
    let mut first = ingest(&first_log)?;
    // The second starts once the first has committed something, so it resumes mid-file.
    let committed = common::wait_for(Duration::from_secs(120), || {
        common::files_under(&lake.join("events"))
            .iter()
            .any(|p| {
                p.extension().is_some_and(|e| e == "parquet")
                    && p.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('.'))
            })
            .then_some(())
    });
    assert!(committed.is_some(), "the first ingest committed nothing within 120 s");
    let mut second = ingest(&second_log)?;
    let second_status = common::wait_with_timeout(&mut second, Duration::from_secs(600))?;
    let first_status = common::wait_with_timeout(&mut first, Duration::from_secs(60))?;
    let first_stderr = std::fs::read_to_string(&first_log)?;
    assert!(second_status.success(), "second ingest failed: {}", std::fs::read_to_string(&second_log)?);
    assert!(!first_status.success(), "the first ingest finished before the second claimed the file: {first_stderr}");
    assert!(first_stderr.contains("has claimed"), "the first ingest says why it stopped: {first_stderr}");

    assert_exactly_once(&lake, &generated.truth, "after two ingests at once").await?;
    Ok(())
}
