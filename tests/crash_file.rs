//! kill -9 at random moments during a file ingest, restart, repeat: the lake must end with
//! every message's rows exactly once, and no reader may ever see a partial file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use driftwatch_ingest::fleet::files::{FormatMix, write_fleet_files};
use driftwatch_ingest::fleet::{Fleet, FleetConfig, Truth};
use driftwatch_lake::checkpoint::{PendingFlush, read_checkpoint};
use driftwatch_lake::layout::{CHECKPOINTS_DIR, is_pending_of};
use driftwatch_lake::store::LakeStore;
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

/// The lake holds the generator's truth exactly: rows, distinct ids, dead letters by reason,
/// tokens, feedback and rollups per app.
async fn assert_exactly_once(lake: &Path, truth: &Truth, context: &str) -> anyhow::Result<u64> {
    let counts = common::lake_counts(lake).await?;
    let produced: u64 = truth.per_app.values().map(|t| t.distinct_event_ids).sum();
    assert_eq!(counts.event_rows as u64, produced, "rows {context}");
    assert_eq!(counts.distinct_events as u64, produced, "distinct event ids {context}");
    assert_eq!(counts.dead_letters as u64, truth.malformed_messages, "dead letters {context}");
    let session = driftwatch_analyze::LakeSession::open(&lake.display().to_string(), None).await?;
    let by_reason: BTreeMap<String, u64> = driftwatch_analyze::lake_totals(&session)
        .await?
        .dead_letters_by_reason
        .into_iter()
        .map(|(reason, count)| (reason, count as u64))
        .collect();
    assert_eq!(by_reason, truth.dead_letters_by_reason, "dead letters by reason {context}");
    let feedback = common::lake_feedback_and_rollups(lake).await?;
    for (app, expected) in &truth.per_app {
        assert_eq!(counts.per_app[app].input_tokens as u64, expected.input_tokens, "{app} tokens {context}");
        feedback.get(app).cloned().unwrap_or_default().assert_matches(expected, app, context);
    }
    Ok(produced)
}

/// The files `driftwatch ingest --source file:<dir>` reads, each with its length and the stream
/// its checkpoint is kept under.
struct InputFiles {
    files: Vec<(PathBuf, u64, String)>,
    lake: PathBuf,
    store: LakeStore,
}

impl InputFiles {
    async fn new(input: &Path, lake: &Path) -> anyhow::Result<Self> {
        let mut files = Vec::new();
        for path in driftwatch_ingest::source::file::expand_paths(input)? {
            let stream = driftwatch_ingest::source::file::file_stream_id(&path)?;
            files.push((path.clone(), std::fs::metadata(&path)?.len(), stream));
        }
        let store = LakeStore::open(&lake.display().to_string(), &HashMap::new()).await?;
        Ok(Self { files, lake: lake.to_owned(), store })
    }

    fn total_bytes(&self) -> u64 {
        self.files.iter().map(|(_, length, _)| length).sum()
    }

    /// Bytes committed over all files: the sum of their checkpoints' positions, read through the
    /// lake crate as the file source reads them when it resumes.
    async fn committed_bytes(&self) -> anyhow::Result<u64> {
        let mut committed = 0;
        for (path, length, stream) in &self.files {
            if let Some(checkpoint) = read_checkpoint(&self.store, stream, 0).await? {
                let at = u64::try_from(checkpoint.next_offset)?;
                assert!(at <= *length, "{} checkpointed at {at}, past its end {length}", path.display());
                committed += at;
            }
        }
        Ok(committed)
    }

    /// The flush between its manifest (put before its first data file) and its checkpoint, if
    /// any, or the one a kill left there: how many of its data files are in place.
    fn flush_in_flight(&self) -> Option<usize> {
        let manifests = common::files_under(&self.lake.join(CHECKPOINTS_DIR))
            .into_iter()
            .filter(|path| path.file_name().is_some_and(|name| is_pending_of(&name.to_string_lossy(), 0)));
        manifests
            .map(|manifest| {
                let flush =
                    std::fs::read(&manifest).ok().and_then(|bytes| serde_json::from_slice::<PendingFlush>(&bytes).ok());
                flush.map_or(0, |flush| flush.files.iter().filter(|file| self.lake.join(file).exists()).count())
            })
            .reduce(|a, b| a + b)
    }
}

/// Kills aimed at positions spread through the input; the test needs 5 to land mid-input.
const KILLS: usize = 8;
/// Runs at most: kills aimed at a flush in flight are repeated until two interrupted one.
const MAX_RUNS: usize = 16;

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
    let inputs = InputFiles::new(&input, &lake).await?;
    let total = inputs.total_bytes();

    let ingest = || small_flush_ingest(&input, &lake);

    // Committed bytes after each kill that landed mid-input, and how many kills left a flush
    // uncommitted with some of its files in place.
    let mut committed_at_kills: Vec<u64> = Vec::new();
    let mut interrupted_flushes = 0;
    for run in 0..MAX_RUNS {
        if committed_at_kills.len() >= KILLS && interrupted_flushes >= 2 {
            break;
        }
        let previous = committed_at_kills.last().copied().unwrap_or(0);
        // Each run commits past where the last one was killed and on to a position spread
        // through the rest of the input, so kills land in every file and never all before the
        // first checkpoint.
        let kills_left = KILLS.saturating_sub(committed_at_kills.len()).max(1) as u64;
        let step = (total - previous) / (kills_left + 1);
        let aim = previous + step / 2 + rng.random_range(0..step.max(1));
        let mut child = ingest().spawn()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        // When the checkpoint last advanced, and the time between its last two advances: the
        // flush cycle, about half a second here (200 ms of age plus reading and writing).
        let (mut seen, mut advanced_at, mut cycle) = (previous, None::<Instant>, Duration::from_millis(500));
        let mut exited = false;
        loop {
            if child.try_wait()?.is_some() {
                exited = true;
                break;
            }
            let committed = inputs.committed_bytes().await?;
            if committed != seen {
                let now = Instant::now();
                if let Some(before) = advanced_at {
                    cycle = now - before;
                }
                (seen, advanced_at) = (committed, Some(now));
            }
            if committed > previous && committed >= aim.min(total - 1) {
                break;
            }
            assert!(Instant::now() < deadline, "run {run} committed nothing past byte {previous} in 120 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Every other kill, and any once enough have landed, waits for the next flush's manifest
        // and lands while its files are put: within milliseconds of the manifest, or once the
        // first of them is in place, before the checkpoint. The others land anywhere in the next
        // flush cycle, mostly while the run reads and decodes.
        let at_a_flush = run % 2 == 1 || committed_at_kills.len() >= KILLS;
        if !exited && at_a_flush {
            let after_a_file = rng.random_bool(0.5);
            while inputs.flush_in_flight().is_none_or(|landed| after_a_file && landed == 0) {
                if child.try_wait()?.is_some() {
                    exited = true;
                    break;
                }
                assert!(Instant::now() < deadline, "run {run} started no flush past byte {seen} in 120 s");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if !after_a_file {
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..4))).await;
            }
        } else if !exited {
            let millis = u64::try_from(cycle.as_millis()).unwrap_or(u64::MAX).max(1);
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..millis))).await;
        }
        if exited || child.try_wait()?.is_some() {
            // Finished before the kill: nothing interrupted; the final run below resumes at the end.
            println!("run {run} finished before its kill");
            break;
        }
        child.kill()?; // SIGKILL
        child.wait()?;
        let committed = inputs.committed_bytes().await?;
        // A flush whose manifest is still there after the kill, with some of its files in place:
        // the restart must remove them before it reads on.
        interrupted_flushes += usize::from(inputs.flush_in_flight().is_some_and(|landed| landed > 0));
        // Whatever instant the kill hit, every visible file must be a complete Parquet file.
        let counts = common::lake_counts(&lake).await;
        assert!(counts.is_ok(), "lake unreadable after the kill of run {run}: {counts:?}");
        if committed < total {
            committed_at_kills.push(committed);
        }
    }
    let kills = committed_at_kills.len();
    assert!(kills >= 5, "only {kills} kills landed between checkpoints; the test needs at least 5");
    assert!(
        committed_at_kills.iter().all(|&at| 0 < at && at < total),
        "every kill interrupts a run mid-input ({total} bytes): {committed_at_kills:?}"
    );
    assert!(
        committed_at_kills.windows(2).all(|pair| pair[0] < pair[1]),
        "each run commits past the previous kill: {committed_at_kills:?}"
    );
    assert!(interrupted_flushes >= 1, "no kill left a flush's files in place before its checkpoint");

    let before_final = inputs.committed_bytes().await?;
    let mut final_run = ingest();
    let final_out = dir.path().join("final.out");
    let status = common::wait_with_timeout(
        &mut final_run.stdout(std::fs::File::create(&final_out)?).spawn()?,
        Duration::from_secs(600),
    )?;
    assert!(status.success(), "final run failed: {status}");
    // `<file>: N messages, committed to byte C (resumed from R), F flushes`, one line per file.
    let report = std::fs::read_to_string(&final_out)?;
    let resumed: Vec<u64> = report
        .lines()
        .filter_map(|line| line.split_once("(resumed from ")?.1.split_once(')')?.0.parse().ok())
        .collect();
    assert_eq!(resumed.len(), inputs.files.len(), "one report line per file: {report}");
    assert_eq!(resumed.iter().sum::<u64>(), before_final, "the final run resumes at the checkpoints: {report}");
    assert!(before_final > 0, "the final run resumed from byte 0 of every file: {report}");
    assert_eq!(inputs.committed_bytes().await?, total, "every file checkpointed at its end");

    let produced = assert_exactly_once(&lake, &generated.truth, &format!("after {kills} kills")).await?;
    let leftovers: Vec<_> = common::files_under(&lake)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(".tmp")))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
    println!(
        "{kills} kills at committed bytes {committed_at_kills:?} of {total}, {interrupted_flushes} mid-flush, \
         {produced} events exactly once"
    );
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
