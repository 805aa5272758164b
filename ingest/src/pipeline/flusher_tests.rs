//! Unit tests of the flusher: memory accounting of batches in flight, sweeps of quiet partitions,
//! a failing lake reported until it recovers, fenced partitions and abandoned flushes.

use std::collections::HashMap;

use driftwatch_lake::model::DeadLetter;
use driftwatch_lake::parquet::ParquetOptions;
use driftwatch_lake::store::LakeStore;

use super::*;
use crate::telemetry::MetricsConfig;
use crate::telemetry::names::WAITING_FOR_FLUSH_SLOT;

fn batch(first_offset: i64) -> FlushBatch {
    FlushBatch {
        stream: "file.test".to_owned(),
        partition: 0,
        first_offset,
        next_offset: first_offset + 1,
        events: Default::default(),
        feedback: Vec::new(),
        rollups: Vec::new(),
        dead_letters: vec![DeadLetter {
            time: 1_772_323_200_000_000_000,
            reason: "malformed_json",
            detail: "test".to_owned(),
            payload: b"{".to_vec(),
            source: None,
        }],
        file_head: None,
        claim: None,
    }
}

#[tokio::test]
async fn batches_count_against_memory_until_committed() -> Result<(), Box<dyn std::error::Error>> {
    let store = LakeStore::open("memory://", &HashMap::new()).await?;
    let writer = Arc::new(LakeWriter::new(store, ParquetOptions::default()));
    let tracker = TaskTracker::new();
    let metrics = Metrics::new(&MetricsConfig::default());
    let mut flusher = Flusher::spawn(writer, metrics, 2, &tracker, CancellationToken::new());
    assert_eq!(flusher.in_flight_bytes(), 0);
    flusher.submit(batch(0), FlushReason::Rows, 1_000).await?;
    flusher.submit(batch(1), FlushReason::Rows, 500).await?;
    assert_eq!(flusher.in_flight_bytes(), 1_500);
    assert_eq!(flusher.in_flight_rows(), 2, "one dead letter each, not in the lake yet");
    assert!(!flusher.has_capacity());
    // A third submit waits for the first commit and keeps its completion for `next_done`.
    flusher.submit(batch(2), FlushReason::Rows, 250).await?;
    assert_eq!(flusher.in_flight_bytes(), 750);
    assert_eq!(flusher.in_flight_rows(), 2);
    for expected in [1, 2, 3] {
        assert_eq!(committed_offset(flusher.next_done().await?), Some(expected));
    }
    assert_eq!((flusher.in_flight_bytes(), flusher.in_flight_rows()), (0, 0));
    Ok(())
}

/// A flush another writer put after this writer's claim (its manifest and one data file),
/// on a partition that then has nothing to commit: the flusher's timer sweeps it away.
#[tokio::test]
async fn a_quiet_partitions_late_files_are_swept_without_a_commit() -> Result<(), Box<dyn std::error::Error>> {
    use driftwatch_lake::checkpoint::PendingFlush;
    use driftwatch_lake::layout::{FileKind, data_path, file_name, pending_path};

    const STREAM: &str = "file.quiet";
    const STRANGER: &str = "0123456789abcdef";
    let store = LakeStore::open("memory://", &HashMap::new()).await?;
    let writer = Arc::new(LakeWriter::new(store.clone(), ParquetOptions::default()));
    writer.recover(STREAM, 0).await?;
    let late_file = data_path(FileKind::DeadLetter, "date=2026-03-01", "", &file_name(STREAM, 0, 0, 0, 10, STRANGER));
    let manifest =
        PendingFlush { owner: STRANGER.to_owned(), first_offset: 0, next_offset: 10, files: vec![late_file.clone()] };
    store.put_atomic(&pending_path(STREAM, 0, STRANGER), serde_json::to_vec(&manifest)?.into()).await?;
    store.put_atomic(&late_file, bytes::Bytes::from_static(b"late")).await?;

    let _flusher = Flusher::spawn(
        writer,
        Metrics::new(&MetricsConfig::default()),
        2,
        &TaskTracker::new(),
        CancellationToken::new(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.get(&late_file).await?.is_some() {
        assert!(Instant::now() < deadline, "the late file is still in the lake: no sweep without a commit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A flusher over a local lake in `dir`, and the lake's folder.
async fn local_flusher(dir: &std::path::Path) -> Result<(Flusher, std::path::PathBuf), Box<dyn std::error::Error>> {
    let lake = dir.join("lake");
    std::fs::create_dir_all(&lake)?;
    let store = LakeStore::open(&lake.display().to_string(), &HashMap::new()).await?;
    let writer = Arc::new(LakeWriter::new(store, ParquetOptions::default()));
    let metrics = Metrics::new(&MetricsConfig::default());
    Ok((Flusher::spawn(writer, metrics, 2, &TaskTracker::new(), CancellationToken::new()), lake))
}

/// Put a file where the lake's checkpoint folder belongs: every commit then fails with an
/// I/O error, as on a full or detached disk, until the returned file is removed.
fn block_lake(lake: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    let blocker = lake.join("_checkpoints");
    std::fs::write(&blocker, b"not a folder")?;
    Ok(blocker)
}

/// Wait until a retried commit has reported the lake failing.
async fn wait_until_failing(failing: &AtomicBool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !failing.load(Ordering::Acquire) {
        assert!(Instant::now() < deadline, "a retried commit never reported the lake failing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_failing_lake_is_reported_until_a_commit_succeeds() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (mut flusher, lake) = local_flusher(dir.path()).await?;
    let failing = flusher.lake_failing_flag();
    let blocker = block_lake(&lake)?;
    assert!(!failing.load(Ordering::Acquire));
    flusher.submit(batch(0), FlushReason::Rows, 1_000).await?;
    wait_until_failing(&failing).await;
    std::fs::remove_file(&blocker)?;
    assert_eq!(committed_offset(flusher.next_done().await?), Some(1));
    assert!(!failing.load(Ordering::Acquire));
    Ok(())
}

/// The checkpoint offset of a committed flush; `None` when it was fenced.
fn committed_offset(outcome: FlushOutcome) -> Option<i64> {
    match outcome {
        FlushOutcome::Committed(done) => Some(done.next_offset),
        FlushOutcome::Fenced { .. } | FlushOutcome::ClaimLost { .. } => None,
    }
}

fn parquet_files(dir: &std::path::Path) -> usize {
    walk(dir).iter().filter(|path| path.extension().is_some_and(|ext| ext == "parquet")).count()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() { walk(&path) } else { vec![path] }
        })
        .collect()
}

#[tokio::test]
async fn fenced_partitions_are_not_written_even_while_retrying() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (mut flusher, lake) = local_flusher(dir.path()).await?;

    // Fenced before the commit starts: dropped.
    flusher.fence("file.test", 0);
    flusher.submit(batch(0), FlushReason::Revoke, 1_000).await?;
    assert_eq!(committed_offset(flusher.next_done().await?), None);
    assert_eq!(parquet_files(&lake), 0);

    // Fenced while waiting to retry on a failing lake: dropped at the next attempt, and
    // nothing is written when the lake comes back.
    flusher.unfence("file.test", 0);
    let blocker = block_lake(&lake)?;
    flusher.submit(batch(0), FlushReason::Rows, 1_000).await?;
    wait_until_failing(&flusher.lake_failing_flag()).await;
    flusher.fence("file.test", 0);
    assert_eq!(committed_offset(flusher.next_done().await?), None);
    // Nothing is being retried any more: the daemon is not held unready by a flush it
    // dropped (the timed lake probe answers for the lake meanwhile).
    assert!(!flusher.lake_failing_flag().load(Ordering::Acquire), "the dropped flush no longer fails");
    std::fs::remove_file(&blocker)?;
    assert_eq!(parquet_files(&lake), 0);

    // Other partitions, and the same one once unfenced, are written as usual.
    flusher.unfence("file.test", 0);
    flusher.submit(batch(0), FlushReason::Rows, 1_000).await?;
    assert_eq!(committed_offset(flusher.next_done().await?), Some(1));
    assert_eq!(parquet_files(&lake), 1);
    Ok(())
}

/// Past the shutdown deadline a queued flush is given up without an attempt: during a
/// store outage each attempt takes the store client's own retries, and the exit waited for
/// one per queued flush.
#[tokio::test]
async fn no_attempt_starts_once_flushes_are_abandoned() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&lake)?;
    let store = LakeStore::open(&lake.display().to_string(), &HashMap::new()).await?;
    let writer = Arc::new(LakeWriter::new(store, ParquetOptions::default()));
    let abandon = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut flusher = Flusher::spawn(writer, Metrics::new(&MetricsConfig::default()), 2, &tracker, abandon.clone());
    abandon.cancel();
    flusher.submit(batch(0), FlushReason::Shutdown, 1_000).await?;
    let done = flusher.next_done().await;
    assert!(matches!(done, Err(FlusherError::Abandoned { .. } | FlusherError::GaveUp)), "{done:?}");
    // `GaveUp` can come before the task has even taken the request. The task answers every
    // request queued before its handle is dropped, and then ends: once it has ended,
    // whatever it would have written for the batch is in the lake.
    drop(flusher);
    tracker.close();
    tokio::time::timeout(Duration::from_secs(30), tracker.wait())
        .await
        .map_err(|_| "the flusher task did not end within 30 s of its handle being dropped")?;
    assert_eq!(parquet_files(&lake), 0, "nothing written after the deadline");
    Ok(())
}

/// Once flushes are abandoned, a source waiting for a completion gets an answer at once,
/// though the commit under way has not ended: during a store outage one attempt can take
/// the store client's own retries, longer than the shutdown deadline leaves.
#[tokio::test]
async fn waiting_for_a_completion_ends_when_flushes_are_abandoned() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let lake = dir.path().join("lake");
    let store = LakeStore::open(&lake.display().to_string(), &HashMap::new()).await?;
    let writer = Arc::new(LakeWriter::new(store, ParquetOptions::default()));
    let abandon = CancellationToken::new();
    let metrics = Metrics::new(&MetricsConfig::default());
    let mut flusher = Flusher::spawn(writer, metrics.clone(), 1, &TaskTracker::new(), abandon.clone());
    // Another writer holds the partition record's lock (stopped inside its checkpoint
    // put): the first commit's attempt waits inside the store, not between retries.
    let record = lake.join(driftwatch_lake::layout::checkpoint_path("file.test", 0));
    let record_dir = record.parent().ok_or("no record folder")?;
    std::fs::create_dir_all(record_dir)?;
    let lock = std::fs::File::create(record_dir.join(".0.json.lock"))?;
    lock.lock()?;
    flusher.submit(batch(0), FlushReason::Rows, 1_000).await?;
    assert!(metrics.encode()?.contains(&format!("\n{WAITING_FOR_FLUSH_SLOT} 0\n")), "a free slot shown as a wait");
    let give_up = abandon.clone();
    let observer = metrics.clone();
    // What a scrape sees while the source waits: the wait, until flushes are abandoned.
    let seen_while_waiting = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let seen = observer.encode();
        give_up.cancel();
        seen
    });
    // The second batch waits for the first one's slot, until flushes are abandoned. Bounded:
    // should that wait not end, the first commit would be held on the lock below for good.
    let waited = std::time::Instant::now();
    let second =
        tokio::time::timeout(Duration::from_secs(30), flusher.submit(batch(1), FlushReason::Rows, 1_000)).await;
    // Released before any assertion, so that a failure leaves no commit blocked on it.
    drop(lock);
    let second = second.map_err(|_| "submit still waiting 30 s after flushes were abandoned")?;
    assert!(matches!(second, Err(FlusherError::GaveUp)), "{second:?}");
    assert!(waited.elapsed() < Duration::from_secs(5), "waited {:?} for the attempt", waited.elapsed());
    let seen = seen_while_waiting.await??;
    assert!(seen.contains(&format!("\n{WAITING_FOR_FLUSH_SLOT} 1\n")), "the wait was not shown:\n{seen}");
    assert!(metrics.encode()?.contains(&format!("\n{WAITING_FOR_FLUSH_SLOT} 0\n")), "shown after it ended");
    Ok(())
}
