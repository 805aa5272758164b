//! kill -9 at random moments during a file ingest, restart, repeat: the lake must end with
//! every message's rows exactly once, and no reader may ever see a partial file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use driftwatch_ingest::fleet::files::{FormatMix, write_fleet_files};
use driftwatch_ingest::fleet::{Fleet, FleetConfig};
use rand::{RngExt, SeedableRng};

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

    let ingest = || {
        let mut command = common::driftwatch();
        command
            .args(["ingest", "--source"])
            .arg(format!("file:{}", input.display()))
            .arg("--lake")
            .arg(&lake)
            // Small flushes so every run commits many checkpoints and a kill lands mid-protocol.
            .env("DRIFTWATCH_FLUSH__MAX_ROWS", "1500")
            .env("DRIFTWATCH_FLUSH__MAX_AGE", "200ms")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        command
    };

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

    let counts = common::lake_counts(&lake).await?;
    let produced: u64 = generated.truth.per_app.values().map(|t| t.distinct_event_ids).sum();
    assert_eq!(counts.event_rows as u64, produced, "rows after {kills} kills");
    assert_eq!(counts.distinct_events as u64, produced, "distinct event ids after {kills} kills");
    assert_eq!(counts.dead_letters as u64, generated.truth.malformed_messages, "dead letters after {kills} kills");
    for (app, truth) in &generated.truth.per_app {
        let got = &counts.per_app[app];
        assert_eq!(got.input_tokens as u64, truth.input_tokens, "{app} tokens after {kills} kills");
    }
    let leftovers: Vec<_> = common::files_under(&lake)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(".tmp")))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
    println!("{kills} kills, {produced} events exactly once");
    Ok(())
}
