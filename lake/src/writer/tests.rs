//! The exactly-once protocol: commit layout, crash at every step + recover,
//! idempotent recovery and replays, on a local directory and on memory://.

use std::collections::HashMap;

use super::*;
use crate::checkpoint::{read_pending, read_record, write_pending, write_record};
use crate::layout::{OWNER_ID_LEN, checkpoint_path, pending_path};
use crate::parquet::read_parquet;
use crate::test_support::{DAY1, DAY2, dead_letter, feedback, full_event, rollup};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const STREAM: &str = "genai-spans";

fn batch(first_offset: i64, next_offset: i64) -> FlushBatch {
    let events = (first_offset..next_offset)
        .map(|i| {
            let day = if i % 2 == 0 { DAY1 } else { DAY2 };
            // Reverse time order within the input, so sorting is observable.
            full_event(i, if i % 3 == 0 { "a/b" } else { "chat" }, day + 1_000_000 * (next_offset - i))
        })
        .collect();
    FlushBatch {
        stream: STREAM.into(),
        partition: 2,
        first_offset,
        next_offset,
        events,
        feedback: vec![feedback(first_offset, DAY1 + 5)],
        rollups: vec![rollup(first_offset, DAY2 + 60_000_000_000), rollup(first_offset + 1, DAY1)],
        dead_letters: vec![dead_letter(first_offset, DAY2 + 7)],
        file_head: None,
        claim: None,
    }
}

fn rows_in(batch: &FlushBatch) -> u64 {
    (batch.events.len() + batch.feedback.len() + batch.rollups.len() + batch.dead_letters.len()) as u64
}

/// The data files visible in the lake, by path, with their row counts.
async fn lake_files(store: &LakeStore) -> TestResult<Vec<(String, usize)>> {
    let mut out = Vec::new();
    for kind in ["events", "feedback", "rollups", "dead_letter"] {
        for object in store.list(kind).await? {
            let data = store.get(&object.path).await?.ok_or("listed file vanished")?;
            let rows = read_parquet(data)?.iter().map(|b| b.num_rows()).sum();
            out.push((object.path, rows));
        }
    }
    out.sort();
    Ok(out)
}

/// A data file path without the writer's claim id, to compare lakes written by different writers.
fn without_owner(path: &str) -> String {
    let cut = path.len().saturating_sub(".parquet".len() + OWNER_ID_LEN + 1);
    format!("{}.parquet", &path[..cut])
}

/// [`lake_files`] without claim ids in the names.
async fn lake_ranges(store: &LakeStore) -> TestResult<Vec<(String, usize)>> {
    let mut files: Vec<_> =
        lake_files(store).await?.into_iter().map(|(path, rows)| (without_owner(&path), rows)).collect();
    files.sort();
    Ok(files)
}

/// Total rows per table in the lake, so overlapping writers' results can be compared with the input.
async fn table_rows(store: &LakeStore) -> TestResult<Vec<(&'static str, usize)>> {
    let mut out = Vec::new();
    for kind in ["events", "feedback", "rollups", "dead_letter"] {
        let mut rows = 0;
        for object in store.list(kind).await? {
            let data = store.get(&object.path).await?.ok_or("listed file vanished")?;
            rows += read_parquet(data)?.iter().map(|b| b.num_rows()).sum::<usize>();
        }
        out.push((kind, rows));
    }
    Ok(out)
}

async fn stores() -> TestResult<Vec<(LakeStore, Option<tempfile::TempDir>)>> {
    let dir = tempfile::tempdir()?;
    let local = LakeStore::open(&dir.path().display().to_string(), &HashMap::new()).await?;
    let memory = LakeStore::open("memory://", &HashMap::new()).await?;
    Ok(vec![(local, Some(dir)), (memory, None)])
}

#[tokio::test]
async fn commit_writes_partitioned_files_then_the_checkpoint() -> TestResult {
    for (store, _dir) in stores().await? {
        let writer = LakeWriter::new(store.clone(), ParquetOptions::default());
        assert_eq!(writer.recover(STREAM, 2).await?, None);
        let mut input = batch(0, 6);
        let report = writer.commit(&mut input).await?;
        let owner = writer.owner_held(STREAM, 2)?;
        let name = format!("genai-spans-2-00000000000000000000-00000000000000000006-{owner}.parquet");
        let expected = vec![
            (format!("dead_letter/date=2024-05-02/{name}"), 1),
            (format!("events/date=2024-05-01/app=a%2Fb/{name}"), 1),
            (format!("events/date=2024-05-01/app=chat/{name}"), 2),
            (format!("events/date=2024-05-02/app=a%2Fb/{name}"), 1),
            (format!("events/date=2024-05-02/app=chat/{name}"), 2),
            (format!("feedback/date=2024-05-01/{name}"), 1),
            (format!("rollups/date=2024-05-01/{name}"), 1),
            (format!("rollups/date=2024-05-02/{name}"), 1),
        ];
        assert_eq!(lake_files(&store).await?, expected, "{}", store.url());
        let reported: Vec<(String, usize)> = report.files.iter().map(|f| (f.path.clone(), f.rows)).collect();
        assert_eq!(reported, expected);
        assert!(report.files.iter().all(|f| f.bytes > 0));
        assert_eq!(report.checkpoint.next_offset, 6);
        assert_eq!(report.checkpoint.files, 8);
        assert_eq!(report.checkpoint.rows, rows_in(&input));
        assert_eq!(writer.read_checkpoint(STREAM, 2).await?, Some(report.checkpoint.clone()));
        assert_eq!(read_pending(&store, STREAM, 2, &owner).await?, None, "manifest removed after commit");

        // Event files are sorted by time.
        let data = store.get(&expected[2].0).await?.ok_or("missing")?;
        let events = crate::decode::decode_events(&read_parquet(data)?[0])?;
        assert!(events.windows(2).all(|w| w[0].time <= w[1].time));
        assert!(events.iter().all(|e| e.app == "chat"));
    }
    Ok(())
}

/// How far a flush got before the simulated crash.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Crash {
    AfterPending,
    AfterSomeFiles,
    AfterAllFiles,
    AfterCheckpoint,
    AfterManifestDeleted,
}

/// Run the protocol of `LakeWriter::commit` by hand and stop at `crash`.
async fn crashing_commit(
    writer: &LakeWriter,
    mut batch: FlushBatch,
    crash: Crash,
    previous: &Checkpoint,
) -> TestResult {
    let store = writer.store();
    let owner = writer.owner_held(&batch.stream, batch.partition)?;
    let (record, version) = read_record(store, &batch.stream, batch.partition).await?.ok_or("no record")?;
    let mut files = encode_batch(&ParquetOptions::default(), &mut batch, previous.epoch, &owner)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let pending = PendingFlush {
        owner: owner.clone(),
        first_offset: batch.first_offset,
        next_offset: batch.next_offset,
        files: files.iter().map(|f| f.path.clone()).collect(),
    };
    write_pending(store, &batch.stream, batch.partition, &pending).await?;
    if crash == Crash::AfterPending {
        return Ok(());
    }
    let written = if crash == Crash::AfterSomeFiles { files.len() / 2 } else { files.len() };
    writer.put_files(&files[..written]).await?;
    if crash <= Crash::AfterAllFiles {
        return Ok(());
    }
    let checkpoint = Checkpoint {
        next_offset: batch.next_offset,
        files: previous.files + files.len() as u64,
        rows: previous.rows + files.iter().map(|f| f.rows as u64).sum::<u64>(),
        ..previous.clone()
    };
    write_record(store, &PartitionRecord { checkpoint: Some(checkpoint), ..record }, Some(&version)).await?;
    if crash == Crash::AfterManifestDeleted {
        store.delete(&pending_path(&batch.stream, batch.partition, &owner)).await?;
    }
    Ok(())
}

/// Plant the hidden temporaries a kill -9 mid-rename leaves, plus one of another partition.
fn plant_temporaries(root: &std::path::Path) -> TestResult<Vec<std::path::PathBuf>> {
    let ours_data = root.join(
        "events/date=2024-05-01/app=chat/.genai-spans-2-00000000000000000010-00000000000000000020-0123456789abcdef.parquet.tmp-9-9-9",
    );
    let ours_checkpoint = root.join("_checkpoints/genai-spans/.2.json.tmp-9-9-9");
    let theirs = root.join(
        "events/date=2024-05-01/app=chat/.genai-spans-3-00000000000000000010-00000000000000000020-0123456789abcdef.parquet.tmp-1-1-1",
    );
    for path in [&ours_data, &ours_checkpoint, &theirs] {
        std::fs::write(path, b"partial")?;
    }
    Ok(vec![ours_data, ours_checkpoint, theirs])
}

#[tokio::test]
async fn recovery_after_a_crash_at_each_step_keeps_exactly_the_committed_files() -> TestResult {
    for crash in [
        Crash::AfterPending,
        Crash::AfterSomeFiles,
        Crash::AfterAllFiles,
        Crash::AfterCheckpoint,
        Crash::AfterManifestDeleted,
    ] {
        for (store, dir) in stores().await? {
            let writer = LakeWriter::new(store.clone(), ParquetOptions::default());
            let mut first = batch(0, 10);
            let first_rows = rows_in(&first);
            let committed = writer.commit(&mut first).await?.checkpoint;
            let after_first = lake_files(&store).await?;

            let second = batch(10, 20);
            let crashed_owner = writer.owner_held(STREAM, 2)?;
            crashing_commit(&writer, batch(10, 20), crash, &committed).await?;
            let planted = match &dir {
                Some(dir) => plant_temporaries(dir.path())?,
                None => Vec::new(),
            };

            let recovered = writer.recover(STREAM, 2).await?.ok_or("checkpoint lost")?;
            let files = lake_files(&store).await?;
            let label = format!("{crash:?} on {}", store.url());
            if crash >= Crash::AfterCheckpoint {
                assert_eq!(recovered.next_offset, 20, "{label}");
                assert!(files.len() > after_first.len(), "{label}");
            } else {
                assert_eq!(recovered, committed, "{label}");
                assert_eq!(files, after_first, "{label}: uncommitted files removed, committed kept");
            }
            assert_eq!(read_pending(&store, STREAM, 2, &crashed_owner).await?, None, "{label}");
            assert_ne!(writer.owner_held(STREAM, 2)?, crashed_owner, "{label}: recovery takes a new claim");
            if let [ours_data, ours_checkpoint, theirs] = planted.as_slice() {
                assert!(!ours_checkpoint.exists(), "{label}: stale checkpoint temporary removed");
                // Data directories are cleaned only when an uncommitted flush names them.
                assert_eq!(ours_data.exists(), crash >= Crash::AfterCheckpoint, "{label}");
                assert!(theirs.exists(), "{label}: another partition's temporary is left alone");
            }

            // Recovering again changes nothing.
            assert_eq!(writer.recover(STREAM, 2).await?, Some(recovered.clone()), "{label}");
            assert_eq!(lake_files(&store).await?, files, "{label}");

            // The source resumes at the checkpoint; replaying the second range ends in
            // the state of a crash-free run, with every row once.
            let resumed = writer.commit(&mut batch(10, 20)).await?;
            let clean_writer =
                LakeWriter::new(LakeStore::open("memory://", &HashMap::new()).await?, ParquetOptions::default());
            clean_writer.commit(&mut batch(0, 10)).await?;
            clean_writer.commit(&mut batch(10, 20)).await?;
            assert_eq!(lake_ranges(&store).await?, lake_ranges(clean_writer.store()).await?, "{label}");
            assert_eq!(resumed.checkpoint.next_offset, 20, "{label}");
            assert_eq!(resumed.checkpoint.rows, first_rows + rows_in(&second), "{label}: rows counted once");
        }
    }
    Ok(())
}

#[tokio::test]
async fn offsets_already_in_the_lake_are_not_written_again() -> TestResult {
    for (store, _dir) in stores().await? {
        let writer = LakeWriter::new(store.clone(), ParquetOptions::default());
        let first = writer.commit(&mut batch(0, 10)).await?;
        let before = lake_files(&store).await?;
        // The same range again, and ranges cut differently inside it (a member that lost the
        // partition without noticing flushes its own cut): nothing is written, nothing counted.
        for (from, to) in [(0, 10), (0, 4), (3, 10), (4, 7)] {
            let replay = writer.commit(&mut batch(from, to)).await?;
            assert_eq!(lake_files(&store).await?, before, "[{from}, {to})");
            assert!(replay.files.is_empty(), "[{from}, {to}): {:?}", replay.files);
            assert_eq!(replay.checkpoint, first.checkpoint, "[{from}, {to})");
        }
        // A range reaching past the checkpoint from inside it is refused, not trimmed: the
        // rollups of a batch cannot be split by offset.
        assert!(writer.commit(&mut batch(5, 15)).await.is_err());
        assert_eq!(lake_files(&store).await?, before);
    }
    Ok(())
}

#[tokio::test]
async fn an_empty_flush_only_advances_the_checkpoint() -> TestResult {
    for (store, _dir) in stores().await? {
        let writer = LakeWriter::new(store.clone(), ParquetOptions::default());
        let empty = || FlushBatch {
            stream: STREAM.into(),
            partition: 2,
            first_offset: 0,
            next_offset: 50,
            ..FlushBatch::default()
        };
        let report = writer.commit(&mut empty()).await?;
        assert!(report.files.is_empty());
        assert_eq!((report.checkpoint.next_offset, report.checkpoint.files, report.checkpoint.rows), (50, 0, 0));
        assert!(lake_files(&store).await?.is_empty());
        assert!(store.get(&checkpoint_path(STREAM, 2)).await?.is_some());
        let again = writer.commit(&mut FlushBatch { first_offset: 50, ..empty() }).await?;
        assert_eq!(again.checkpoint, report.checkpoint, "nothing advanced, nothing written");
    }
    Ok(())
}

#[tokio::test]
async fn batches_that_break_the_offset_contract_are_rejected() -> TestResult {
    let writer = LakeWriter::new(LakeStore::open("memory://", &HashMap::new()).await?, ParquetOptions::default());
    writer.commit(&mut batch(0, 10)).await?;
    for mut bad in
        [batch(5, 15), FlushBatch { next_offset: 3, ..batch(4, 6) }, FlushBatch { next_offset: 12, ..batch(12, 14) }]
    {
        let result = writer.commit(&mut bad).await;
        assert!(matches!(result, Err(LakeError::InvalidBatch { .. })), "{result:?}");
    }
    assert_eq!(writer.read_checkpoint(STREAM, 2).await?.map(|c| c.next_offset), Some(10));
    Ok(())
}

/// A writer that committed `[0, 10)` and then crashed at `crash` in its flush of `[10, 20)`.
async fn crashed_in_second_flush(store: &LakeStore, crash: Crash) -> TestResult<LakeWriter> {
    let writer = LakeWriter::new(store.clone(), ParquetOptions::default());
    let committed = writer.commit(&mut batch(0, 10)).await?.checkpoint;
    crashing_commit(&writer, batch(10, 20), crash, &committed).await?;
    Ok(writer)
}

#[tokio::test]
async fn a_commit_after_a_failed_attempt_removes_the_orphaned_files_first() -> TestResult {
    let store = LakeStore::open("memory://", &HashMap::new()).await?;
    let writer = crashed_in_second_flush(&store, Crash::AfterAllFiles).await?;
    // The retry covers a different range, so its file names differ from the orphans'.
    writer.commit(&mut batch(10, 15)).await?;
    let orphan = "genai-spans-2-00000000000000000010-00000000000000000020-";
    assert!(lake_files(&store).await?.iter().all(|(path, _)| !path.contains(orphan)));
    Ok(())
}

/// A recovery that claimed the partition and then failed (a store error while it listed
/// the manifests) is retried with a new claim. The manifest of the crashed writer's last,
/// committed flush must still be recognised as committed: its files stay.
#[tokio::test]
async fn a_recovery_retried_after_its_claim_keeps_the_crashed_writers_committed_flush() -> TestResult {
    for (store, _dir) in stores().await? {
        crashed_in_second_flush(&store, Crash::AfterCheckpoint).await?;
        let files = lake_files(&store).await?;
        assert_eq!(files.len(), 16);

        // The interrupted recovery: its claim landed, nothing after it did.
        let (record, version) = read_record(&store, STREAM, 2).await?.ok_or("record")?;
        let interrupted = PartitionRecord { owner: checkpoint::new_owner_id(), ..record };
        write_record(&store, &interrupted, Some(&version)).await?;

        let retried = LakeWriter::new(store.clone(), ParquetOptions::default());
        assert_eq!(retried.recover(STREAM, 2).await?.map(|c| c.next_offset), Some(20));
        assert_eq!(lake_files(&store).await?, files, "committed files kept: {}", store.url());
        assert!(manifest_names(&store).await?.is_empty(), "the committed manifest is removed");
    }
    Ok(())
}

/// A writer's own failed attempt, left pending, is undone by its next commit, which then
/// writes the same range under the same names: no fenced manifest may name them, or a later
/// recovery would delete committed files.
#[tokio::test]
async fn a_writers_own_leftover_flush_is_redone_and_survives_later_recoveries() -> TestResult {
    for (store, _dir) in stores().await? {
        let writer = crashed_in_second_flush(&store, Crash::AfterSomeFiles).await?;
        assert_eq!(writer.commit(&mut batch(10, 20)).await?.checkpoint.next_offset, 20);
        assert!(manifest_names(&store).await?.is_empty(), "{}", store.url());
        let files = lake_files(&store).await?;
        assert_eq!(files.len(), 16);

        let successor = LakeWriter::new(store.clone(), ParquetOptions::default());
        assert_eq!(successor.recover(STREAM, 2).await?.map(|c| c.next_offset), Some(20));
        assert_eq!(lake_files(&store).await?, files, "{}", store.url());
    }
    Ok(())
}

#[tokio::test]
async fn an_inconsistent_manifest_stops_recovery() -> TestResult {
    let store = LakeStore::open("memory://", &HashMap::new()).await?;
    let writer = LakeWriter::new(store.clone(), ParquetOptions::default());
    writer.commit(&mut batch(0, 10)).await?;
    let pending =
        PendingFlush { owner: writer.owner_held(STREAM, 2)?, first_offset: 5, next_offset: 15, files: Vec::new() };
    write_pending(&store, STREAM, 2, &pending).await?;
    let result = writer.recover(STREAM, 2).await;
    assert!(matches!(result, Err(LakeError::InconsistentCheckpoint { checkpoint_next: 10, .. })), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn an_offset_reset_starts_an_epoch_that_never_overwrites_old_files() -> TestResult {
    let store = LakeStore::open("memory://", &HashMap::new()).await?;
    let writer = LakeWriter::new(store.clone(), ParquetOptions::default());
    let old = writer.commit(&mut batch(0, 10)).await?;
    let old_rows = rows_in(&batch(0, 10));
    // The topic was recreated: offsets start again at 0.
    let reset = writer.reset_partition(STREAM, 2, 0).await?;
    assert_eq!((reset.next_offset, reset.epoch), (0, 1));
    let new = writer.commit(&mut batch(0, 10)).await?;
    assert_eq!((new.checkpoint.next_offset, new.checkpoint.epoch), (10, 1));
    let old_paths: Vec<_> = old.files.iter().map(|f| f.path.clone()).collect();
    assert!(new.files.iter().all(|f| !old_paths.contains(&f.path) && f.path.contains("-e1-")));
    let files = lake_files(&store).await?;
    assert_eq!(files.len(), old.files.len() + new.files.len(), "both incarnations' files are kept");
    assert_eq!(new.checkpoint.rows, 2 * old_rows);
    Ok(())
}

/// Two writers on the same lake, as two daemons of one consumer group, or a file ingest run twice.
fn two_writers(store: &LakeStore) -> (LakeWriter, LakeWriter) {
    (
        LakeWriter::new(store.clone(), ParquetOptions::default()),
        LakeWriter::new(store.clone(), ParquetOptions::default()),
    )
}

#[tokio::test]
async fn a_writer_cannot_commit_once_another_has_claimed_the_partition() -> TestResult {
    for (store, _dir) in stores().await? {
        let (stalled, successor) = two_writers(&store);
        stalled.recover(STREAM, 2).await?;
        stalled.commit(&mut batch(0, 10)).await?;
        // The partition moves: the successor claims it and resumes at the checkpoint.
        assert_eq!(successor.recover(STREAM, 2).await?.map(|c| c.next_offset), Some(10));
        let before = lake_files(&store).await?;
        // The stalled writer wakes up with a flush cut its own way: refused, nothing written.
        let result = stalled.commit(&mut batch(10, 17)).await;
        assert!(matches!(result, Err(LakeError::Fenced { first_offset: 10, next_offset: 17, .. })), "{result:?}");
        assert_eq!(lake_files(&store).await?, before, "{}", store.url());
        successor.commit(&mut batch(10, 20)).await?;
        let expected = (rows_in(&batch(0, 10)) + rows_in(&batch(10, 20))) as usize;
        assert_eq!(total_rows(&store).await?, expected);
        assert_eq!(stalled.read_checkpoint(STREAM, 2).await?.map(|c| c.next_offset), Some(20));
    }
    Ok(())
}

/// A partition released and assigned back to the same writer is recovered again, and the
/// source re-reads it from the checkpoint. A flush still queued from the first reading is bound
/// to the first claim and is refused; committed under the new one, it would put its range in
/// the lake ahead of the re-read, whose flush would then straddle it.
#[tokio::test]
async fn a_flush_read_under_an_earlier_claim_of_the_same_writer_is_refused() -> TestResult {
    for (store, _dir) in stores().await? {
        let writer = LakeWriter::new(store.clone(), ParquetOptions::default());
        writer.recover(STREAM, 2).await?;
        let first_claim = writer.held_claim(STREAM, 2);
        assert!(first_claim.is_some());
        writer.commit(&mut FlushBatch { claim: first_claim.clone(), ..batch(0, 10) }).await?;
        // Read on under the first claim; then the partition is released and comes back.
        let mut queued = FlushBatch { claim: first_claim.clone(), ..batch(10, 17) };
        assert_eq!(writer.recover(STREAM, 2).await?.map(|c| c.next_offset), Some(10));
        let second_claim = writer.held_claim(STREAM, 2);
        assert_ne!(second_claim, first_claim);
        let before = lake_files(&store).await?;

        let refused = writer.commit(&mut queued).await;
        assert!(matches!(refused, Err(LakeError::Fenced { first_offset: 10, next_offset: 17, .. })), "{refused:?}");
        assert_eq!(lake_files(&store).await?, before, "{}", store.url());
        // The re-read from the checkpoint commits as one range.
        writer.commit(&mut FlushBatch { claim: second_claim, ..batch(10, 20) }).await?;
        let expected = (rows_in(&batch(0, 10)) + rows_in(&batch(10, 20))) as usize;
        assert_eq!(total_rows(&store).await?, expected);
        // A batch bound to no claim commits under the one held, as before.
        writer.commit(&mut batch(20, 25)).await?;
        assert_eq!(writer.read_checkpoint(STREAM, 2).await?.map(|c| c.next_offset), Some(25));
    }
    Ok(())
}

#[tokio::test]
async fn a_flush_stalled_before_its_checkpoint_removes_its_files_when_the_partition_moved() -> TestResult {
    for (store, _dir) in stores().await? {
        let (mut stalled, successor) = two_writers(&store);
        let stall = stalled.stall_at(StallBefore::Checkpoint);
        stalled.recover(STREAM, 2).await?;
        let committing = tokio::spawn(async move {
            let result = stalled.commit(&mut batch(0, 10)).await;
            (stalled, result)
        });
        // The stalled flush has written its manifest and every data file.
        stall.0.notified().await;
        assert!(!lake_files(&store).await?.is_empty());
        // Its partition moves meanwhile: the successor's recovery removes the uncommitted files ...
        assert_eq!(successor.recover(STREAM, 2).await?, None);
        assert!(lake_files(&store).await?.is_empty(), "{}", store.url());
        // ... and when the stalled writer resumes, its checkpoint is refused and it cleans up
        // (here again: whatever it wrote after the successor's recovery is its own to remove).
        stall.1.notify_one();
        let (stalled, result) = committing.await?;
        assert!(matches!(result, Err(LakeError::Fenced { .. })), "{result:?}");
        assert!(lake_files(&store).await?.is_empty(), "{}", store.url());
        let own = stalled.owner_held(STREAM, 2)?;
        assert_eq!(read_pending(&store, STREAM, 2, &own).await?, None, "its manifest is gone too");
        // The successor writes the range once.
        successor.commit(&mut batch(0, 10)).await?;
        assert_eq!(lake_ranges(&store).await?.len(), 8);
        assert_eq!(total_rows(&store).await?, rows_in(&batch(0, 10)) as usize);
    }
    Ok(())
}

/// Files in the lake whose names carry claim id `owner`.
async fn files_of(store: &LakeStore, owner: &str) -> TestResult<usize> {
    Ok(lake_files(store).await?.iter().filter(|(path, _)| path.ends_with(&format!("-{owner}.parquet"))).count())
}

/// The manifests of partition 2 in the checkpoint directory, by file name.
async fn manifest_names(store: &LakeStore) -> TestResult<Vec<String>> {
    let mut names: Vec<String> = store
        .list(&crate::layout::checkpoint_dir(STREAM))
        .await?
        .into_iter()
        .filter_map(|object| object.path.rsplit('/').next().map(str::to_owned))
        .filter(|name| name.starts_with("2.pending.") || name.starts_with("2.fenced."))
        .collect();
    names.sort();
    Ok(names)
}

/// A writer that recovered the partition and whose commit of `batch(0, 10)` runs in a task,
/// stalled at `first`; it stalls again before its checkpoint.
struct Zombie {
    owner: String,
    committing: tokio::task::JoinHandle<Result<CommitReport>>,
    first: Stall,
    before_checkpoint: Stall,
}

impl Zombie {
    async fn stalled_at(store: &LakeStore, first: StallBefore) -> TestResult<Self> {
        let mut writer = LakeWriter::new(store.clone(), ParquetOptions::default());
        let first = writer.stall_at(first);
        let before_checkpoint = writer.stall_at(StallBefore::Checkpoint);
        writer.recover(STREAM, 2).await?;
        let owner = writer.owner_held(STREAM, 2)?;
        let committing = tokio::spawn(async move { writer.commit(&mut batch(0, 10)).await });
        first.0.notified().await;
        Ok(Self { owner, committing, first, before_checkpoint })
    }

    /// Let it run on to its checkpoint and kill it there, before it can learn that it was
    /// fenced and clean up.
    async fn run_on_and_kill(self) -> TestResult {
        let Self { committing, first, before_checkpoint, .. } = self;
        first.1.notify_one();
        before_checkpoint.0.notified().await;
        committing.abort();
        assert!(committing.await.is_err_and(|error| error.is_cancelled()));
        Ok(())
    }
}

/// Rows in the lake, all tables together.
async fn total_rows(store: &LakeStore) -> TestResult<usize> {
    Ok(table_rows(store).await?.iter().map(|(_, rows)| rows).sum())
}

/// A zombie stalled before its data puts, a holder that claims the partition meanwhile, and
/// then the zombie's 8 data files landing after that claim's recovery before it is killed.
/// Returns the holder and the zombie's claim id.
async fn late_files_after_the_claim(store: &LakeStore) -> TestResult<(LakeWriter, String)> {
    let zombie = Zombie::stalled_at(store, StallBefore::Data).await?;
    let zombie_owner = zombie.owner.clone();
    // Claimed while the zombie's manifest names files it has not put yet.
    let holder = LakeWriter::new(store.clone(), ParquetOptions::default());
    assert_eq!(holder.recover(STREAM, 2).await?, None);
    assert_eq!(manifest_names(store).await?, [format!("2.fenced.{zombie_owner}.json")], "{}", store.url());
    // Its puts land after the recovery; it is killed before its checkpoint is refused.
    zombie.run_on_and_kill().await?;
    assert_eq!(files_of(store, &zombie_owner).await?, 8, "the late files are in the lake: {}", store.url());
    Ok((holder, zombie_owner))
}

/// The double fault: a writer stalls in the middle of its flush, its partition is claimed
/// and recovered, its data puts land after that recovery, and it is killed before it can
/// find out and clean up. The recovery keeps its manifest as fenced, and the holder's next
/// commit removes the late files.
#[tokio::test]
async fn files_put_after_the_claim_by_a_writer_then_killed_are_swept_by_the_holder() -> TestResult {
    for (store, _dir) in stores().await? {
        let (holder, zombie_owner) = late_files_after_the_claim(&store).await?;
        holder.commit(&mut batch(0, 10)).await?;
        assert_eq!(files_of(&store, &zombie_owner).await?, 0, "swept by the holder's commit: {}", store.url());
        assert_eq!(total_rows(&store).await?, rows_in(&batch(0, 10)) as usize, "every row once");
        // A later claim's recovery removes them again (the manifest stays for its retention).
        let later = LakeWriter::new(store.clone(), ParquetOptions::default());
        assert_eq!(later.recover(STREAM, 2).await?.map(|c| c.next_offset), Some(10));
        assert_eq!(manifest_names(&store).await?, [format!("2.fenced.{zombie_owner}.json")]);
    }
    Ok(())
}

/// The same late files on a partition that goes quiet after its claim: no commit comes to
/// sweep them, so the holder's timed sweep does, and only once per [`SWEEP_INTERVAL`].
#[tokio::test]
async fn late_files_on_a_quiet_partition_are_swept_without_a_commit() -> TestResult {
    for (store, _dir) in stores().await? {
        let (holder, zombie_owner) = late_files_after_the_claim(&store).await?;
        assert_eq!(holder.sweep_claims().await, 1, "one fenced flush found: {}", store.url());
        assert_eq!(files_of(&store, &zombie_owner).await?, 0, "swept without a commit: {}", store.url());
        assert_eq!(total_rows(&store).await?, 0);
        assert_eq!(holder.read_checkpoint(STREAM, 2).await?, None, "the sweep commits nothing");
        // The fenced manifest stays for its retention, but the next sweep is not due yet.
        assert_eq!(manifest_names(&store).await?, [format!("2.fenced.{zombie_owner}.json")]);
        assert_eq!(holder.sweep_claims().await, 0, "swept again within {SWEEP_INTERVAL:?}");
    }
    Ok(())
}

/// A commit that read the record before the claim puts its manifest after the claim's
/// recovery listed the directory, so only the holder's sweep can find it.
#[tokio::test]
async fn a_manifest_put_after_the_claims_recovery_is_fenced_by_the_holders_sweep() -> TestResult {
    for (store, _dir) in stores().await? {
        let zombie = Zombie::stalled_at(&store, StallBefore::Manifest).await?;
        let zombie_owner = zombie.owner.clone();
        let holder = LakeWriter::new(store.clone(), ParquetOptions::default());
        assert_eq!(holder.recover(STREAM, 2).await?, None);
        assert!(manifest_names(&store).await?.is_empty(), "nothing to fence yet: {}", store.url());
        zombie.run_on_and_kill().await?;
        assert_eq!(manifest_names(&store).await?, [format!("2.pending.{zombie_owner}.json")]);
        assert_eq!(files_of(&store, &zombie_owner).await?, 8);

        holder.commit(&mut batch(0, 10)).await?;
        assert_eq!(files_of(&store, &zombie_owner).await?, 0, "{}", store.url());
        assert_eq!(manifest_names(&store).await?, [format!("2.fenced.{zombie_owner}.json")]);
        assert_eq!(total_rows(&store).await?, rows_in(&batch(0, 10)) as usize);
    }
    Ok(())
}

/// A recovery stalled between its claim and its listing while a later writer claims the
/// partition and puts a flush must not take that flush for a fenced one: the later writer
/// still holds the claim and would commit a checkpoint over deleted files. The recovery finds
/// its claim gone after listing, claims again, and only then is the later writer fenced.
#[tokio::test]
async fn a_recovery_overtaken_by_a_later_claim_claims_again_before_deleting_anything() -> TestResult {
    const OVERTAKEN: &str = "overtaken";
    let flush = || FlushBatch { stream: OVERTAKEN.into(), ..batch(0, 10) };
    for (store, _dir) in stores().await? {
        let stall = Stall::default();
        checkpoint::STALL_RECOVERY_AFTER_CLAIM
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((OVERTAKEN.to_owned(), Arc::clone(&stall)));
        let overtaken = LakeWriter::new(store.clone(), ParquetOptions::default());
        let recovering = tokio::spawn({
            let overtaken = overtaken.clone();
            async move { overtaken.recover(OVERTAKEN, 2).await }
        });
        stall.0.notified().await;

        let mut later = LakeWriter::new(store.clone(), ParquetOptions::default());
        let before_checkpoint = later.stall_at(StallBefore::Checkpoint);
        later.recover(OVERTAKEN, 2).await?;
        let later_owner = later.owner_held(OVERTAKEN, 2)?;
        let committing = tokio::spawn(async move { later.commit(&mut flush()).await });
        before_checkpoint.0.notified().await;
        assert_eq!(files_of(&store, &later_owner).await?, 8);

        stall.1.notify_one();
        assert_eq!(recovering.await??, None);
        before_checkpoint.1.notify_one();
        let result = committing.await?;
        assert!(matches!(result, Err(LakeError::Fenced { .. })), "{result:?} on {}", store.url());
        assert_eq!(files_of(&store, &later_owner).await?, 0);
        overtaken.commit(&mut flush()).await?;
        assert_eq!(total_rows(&store).await?, rows_in(&flush()) as usize, "{}", store.url());
    }
    Ok(())
}

/// A sweep by a writer that has lost its claim must not touch the new holder's flush in
/// progress, whose pending manifest it cannot tell from a fenced writer's.
#[tokio::test]
async fn a_writer_that_lost_its_claim_sweeps_nothing() -> TestResult {
    for (store, _dir) in stores().await? {
        let (former, mut holder) = two_writers(&store);
        former.recover(STREAM, 2).await?;
        let former_owner = former.owner_held(STREAM, 2)?;
        let before_checkpoint = holder.stall_at(StallBefore::Checkpoint);
        holder.recover(STREAM, 2).await?;
        let holder_owner = holder.owner_held(STREAM, 2)?;
        let committing = tokio::spawn(async move { holder.commit(&mut batch(0, 10)).await });
        before_checkpoint.0.notified().await;

        let swept = checkpoint::sweep_fenced(&store, STREAM, 2, &former_owner).await?;
        assert_eq!(swept, 0, "{}", store.url());
        assert_eq!(files_of(&store, &holder_owner).await?, 8, "the holder's files are intact");
        before_checkpoint.1.notify_one();
        assert_eq!(committing.await??.checkpoint.next_offset, 10);
        assert_eq!(lake_files(&store).await?.len(), 8);
    }
    Ok(())
}

#[tokio::test]
async fn fenced_manifests_are_dropped_by_a_recovery_once_past_their_retention() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = LakeStore::open(&dir.path().display().to_string(), &HashMap::new()).await?;
    let (old_owner, young_owner) = ("0000000000000001", "0000000000000002");
    for owner in [old_owner, young_owner] {
        let flush = PendingFlush { owner: owner.to_owned(), first_offset: 0, next_offset: 10, files: Vec::new() };
        let path = crate::layout::fenced_path(STREAM, 2, owner);
        store.put_atomic(&path, bytes::Bytes::from(serde_json::to_vec(&flush)?)).await?;
    }
    let retention = checkpoint::FENCED_MANIFEST_RETENTION.to_std()?;
    let aged = std::time::SystemTime::now() - retention - std::time::Duration::from_secs(60);
    let old_path = dir.path().join(crate::layout::fenced_path(STREAM, 2, old_owner));
    std::fs::File::options().write(true).open(old_path)?.set_modified(aged)?;

    LakeWriter::new(store.clone(), ParquetOptions::default()).recover(STREAM, 2).await?;
    assert_eq!(manifest_names(&store).await?, [format!("2.fenced.{young_owner}.json")]);
    Ok(())
}

#[tokio::test]
async fn racing_claims_leave_exactly_one_writer_able_to_commit() -> TestResult {
    for (store, _dir) in stores().await? {
        let (first, second) = two_writers(&store);
        first.commit(&mut batch(0, 10)).await?;
        let (a, b) = tokio::join!(first.recover(STREAM, 2), second.recover(STREAM, 2));
        assert_eq!((a?.map(|c| c.next_offset), b?.map(|c| c.next_offset)), (Some(10), Some(10)));
        let (mut batch_a, mut batch_b) = (batch(10, 20), batch(10, 20));
        let (a, b) = tokio::join!(first.commit(&mut batch_a), second.commit(&mut batch_b));
        let fenced = [&a, &b].iter().filter(|r| matches!(r, Err(LakeError::Fenced { .. }))).count();
        assert_eq!(fenced, 1, "{a:?} {b:?}");
        assert!(a.is_ok() || b.is_ok());
        let expected = (rows_in(&batch(0, 10)) + rows_in(&batch(10, 20))) as usize;
        assert_eq!(total_rows(&store).await?, expected);
    }
    Ok(())
}

#[tokio::test]
async fn a_checkpoint_written_before_claims_existed_is_claimed_and_resumed() -> TestResult {
    for (store, _dir) in stores().await? {
        let legacy = Checkpoint {
            stream: STREAM.into(),
            partition: 2,
            next_offset: 10,
            updated_at: Utc::now(),
            files: 8,
            rows: 20,
            epoch: 0,
            committed_by: None,
            file_head: None,
        };
        store.put_atomic(&checkpoint_path(STREAM, 2), bytes::Bytes::from(serde_json::to_vec(&legacy)?)).await?;
        let writer = LakeWriter::new(store.clone(), ParquetOptions::default());
        assert_eq!(writer.recover(STREAM, 2).await?, Some(legacy.clone()));
        let (record, _) = read_record(&store, STREAM, 2).await?.ok_or("record")?;
        assert_eq!(record.owner, writer.owner_held(STREAM, 2)?, "rewritten in the current form");
        let report = writer.commit(&mut batch(10, 20)).await?;
        assert_eq!((report.checkpoint.next_offset, report.checkpoint.files), (20, 16));
    }
    Ok(())
}

/// A file source's head fingerprint lands in the same record put as the offset, and a
/// recovering writer reads it back; a batch without one (Kafka) leaves the checkpoint without.
#[tokio::test]
async fn a_file_head_is_committed_with_the_offset_and_recovered() -> TestResult {
    for (store, _dir) in stores().await? {
        let writer = LakeWriter::new(store.clone(), ParquetOptions::default());
        let head = FileHead { bytes: 10, blake3: "ab".repeat(32) };
        let report = writer.commit(&mut FlushBatch { file_head: Some(head.clone()), ..batch(0, 10) }).await?;
        assert_eq!(report.checkpoint.file_head.as_ref(), Some(&head));
        let (record, _) = read_record(&store, STREAM, 2).await?.ok_or("record")?;
        let stored = record.checkpoint.ok_or("checkpoint")?;
        assert_eq!((stored.next_offset, stored.file_head.as_ref()), (10, Some(&head)));
        let successor = LakeWriter::new(store.clone(), ParquetOptions::default());
        assert_eq!(successor.recover(STREAM, 2).await?.and_then(|c| c.file_head), Some(head));

        let report = successor.commit(&mut batch(10, 20)).await?;
        assert_eq!(report.checkpoint.file_head, None);
        let raw = store.get(&checkpoint_path(STREAM, 2)).await?.ok_or("record")?;
        assert!(!String::from_utf8_lossy(&raw).contains("file_head"), "nothing written for a source without one");
    }
    Ok(())
}

#[tokio::test]
async fn a_commit_whose_puts_fail_leaves_no_files_and_no_manifest() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = LakeStore::open(&dir.path().display().to_string(), &HashMap::new()).await?;
    let writer = LakeWriter::new(store.clone(), ParquetOptions::default());
    writer.recover(STREAM, 2).await?;
    // A file where the events directory belongs: every events put fails, the other tables' succeed.
    std::fs::write(dir.path().join("events"), b"not a directory")?;
    let failed = writer.commit(&mut batch(0, 10)).await;
    assert!(matches!(failed, Err(LakeError::Io { .. })), "{failed:?}");
    for kind in ["feedback", "rollups", "dead_letter"] {
        assert!(store.list(kind).await?.is_empty(), "{kind}: the attempt's files were removed");
    }
    let owner = writer.owner_held(STREAM, 2)?;
    assert_eq!(read_pending(&store, STREAM, 2, &owner).await?, None, "and its manifest");
    // Once the lake is writable again, the retry writes the flush once.
    std::fs::remove_file(dir.path().join("events"))?;
    writer.commit(&mut batch(0, 10)).await?;
    assert_eq!(lake_files(&store).await?.len(), 8);
    Ok(())
}

/// A claim is swept every 30 s for its first 10 minutes, then every 5 minutes, and not at all
/// once a recovery would no longer keep the fenced manifests it sweeps for.
#[test]
fn a_claims_sweeps_thin_out_then_stop_at_the_fenced_manifest_retention() {
    assert_eq!(
        chrono::TimeDelta::from_std(LATE_SWEEP_UNTIL).ok(),
        Some(checkpoint::FENCED_MANIFEST_RETENTION),
        "sweeping longer finds nothing a recovery keeps; shorter leaves kept manifests unswept"
    );
    let mut claim = HeldClaim::new("owner".to_owned());
    let claimed_at = claim.claimed_at;
    let at = |seconds: u64| claimed_at + std::time::Duration::from_secs(seconds);
    let sweeps: Vec<u64> = (0..2 * 60 * 60).step_by(10).filter(|&s| claim.take_sweep(at(s))).collect();
    let early: Vec<u64> = (0..20).map(|n| n * 30).collect();
    let late: Vec<u64> = (0..10).map(|n| 600 + n * 300).collect();
    assert_eq!(sweeps, [early, late].concat());
}

/// On S3 a conditional checkpoint put can land while its answer is lost (a 500, a 504 from a
/// load balancer); the client retries it and the retry is refused, because the record is now
/// the put's own. The commit stood: its files must stay, and the writer must report success.
#[tokio::test]
async fn a_checkpoint_put_that_landed_but_was_answered_with_a_conflict_keeps_the_flush() -> TestResult {
    for (store, _dir) in stores().await? {
        let writer = LakeWriter::new(store.clone(), ParquetOptions::default());
        writer.recover(STREAM, 2).await?;
        let owner = writer.owner_held(STREAM, 2)?;
        writer.lose_next_checkpoint_answer();
        let report = writer.commit(&mut batch(0, 10)).await?;
        let label = store.url().to_owned();
        assert_eq!(report.files.len(), 8, "{label}");
        assert_eq!(files_of(&store, &owner).await?, 8, "{label}: the flush's files stay");
        assert_eq!(writer.read_checkpoint(STREAM, 2).await?, Some(report.checkpoint.clone()), "{label}");
        assert_eq!(report.checkpoint.next_offset, 10, "{label}: the checkpoint covers them");
        assert!(manifest_names(&store).await?.is_empty(), "{label}: the manifest goes as after any commit");

        // The source resumes after the range, and a later claim keeps the files: the lake ends
        // as a run without the lost answer would, with every row once.
        writer.commit(&mut batch(10, 20)).await?;
        let successor = LakeWriter::new(store.clone(), ParquetOptions::default());
        assert_eq!(successor.recover(STREAM, 2).await?.map(|c| c.next_offset), Some(20), "{label}");
        let clean_writer =
            LakeWriter::new(LakeStore::open("memory://", &HashMap::new()).await?, ParquetOptions::default());
        clean_writer.commit(&mut batch(0, 10)).await?;
        clean_writer.commit(&mut batch(10, 20)).await?;
        assert_eq!(lake_ranges(&store).await?, lake_ranges(clean_writer.store()).await?, "{label}");
        assert_eq!(total_rows(&store).await?, total_rows(clean_writer.store()).await?, "{label}");
    }
    Ok(())
}

/// The same lost answer, with the partition claimed between the put landing and the refused
/// retry: the claim's recovery found the flush committed, so it stands for the new holder too
/// and the writer whose answer was lost must not remove it.
#[tokio::test]
async fn a_checkpoint_put_that_landed_before_a_claim_stands_though_answered_with_a_conflict() -> TestResult {
    for (store, _dir) in stores().await? {
        let mut writer = LakeWriter::new(store.clone(), ParquetOptions::default());
        let answer = writer.stall_at(StallBefore::CheckpointAnswer);
        writer.recover(STREAM, 2).await?;
        let owner = writer.owner_held(STREAM, 2)?;
        writer.lose_next_checkpoint_answer();
        let committing = tokio::spawn(async move { writer.commit(&mut batch(0, 10)).await });
        answer.0.notified().await;

        let successor = LakeWriter::new(store.clone(), ParquetOptions::default());
        assert_eq!(successor.recover(STREAM, 2).await?.map(|c| c.next_offset), Some(10), "{}", store.url());
        answer.1.notify_one();
        let report = committing.await??;
        assert_eq!(report.checkpoint.next_offset, 10, "{}", store.url());
        assert_eq!(files_of(&store, &owner).await?, 8, "the committed files stay: {}", store.url());
        assert!(manifest_names(&store).await?.is_empty(), "{}", store.url());

        successor.commit(&mut batch(10, 20)).await?;
        let expected = (rows_in(&batch(0, 10)) + rows_in(&batch(10, 20))) as usize;
        assert_eq!(total_rows(&store).await?, expected, "every row once: {}", store.url());
    }
    Ok(())
}

/// A checkpoint refused because another writer claimed the partition (here a claim whose
/// recovery has not run yet, so only the refused writer can remove its flush) is still a
/// conflict: the files and the manifest go, and the writer is fenced.
#[tokio::test]
async fn a_checkpoint_refused_for_another_claim_removes_the_flush() -> TestResult {
    for (store, _dir) in stores().await? {
        let mut writer = LakeWriter::new(store.clone(), ParquetOptions::default());
        let before_checkpoint = writer.stall_at(StallBefore::Checkpoint);
        writer.recover(STREAM, 2).await?;
        let owner = writer.owner_held(STREAM, 2)?;
        let committing = tokio::spawn(async move { writer.commit(&mut batch(0, 10)).await });
        before_checkpoint.0.notified().await;
        assert_eq!(files_of(&store, &owner).await?, 8);

        let (record, version) = read_record(&store, STREAM, 2).await?.ok_or("record")?;
        let claim = PartitionRecord { owner: checkpoint::new_owner_id(), ..record };
        write_record(&store, &claim, Some(&version)).await?;
        before_checkpoint.1.notify_one();
        let result = committing.await?;
        assert!(
            matches!(&result, Err(LakeError::Fenced { holder, .. }) if *holder == claim.owner),
            "{result:?} on {}",
            store.url()
        );
        assert_eq!(files_of(&store, &owner).await?, 0, "{}", store.url());
        assert_eq!(read_pending(&store, STREAM, 2, &owner).await?, None, "{}", store.url());
        assert_eq!(read_record(&store, STREAM, 2).await?.and_then(|(record, _)| record.checkpoint), None);
    }
    Ok(())
}

/// When the record cannot be read after a refused checkpoint put, the commit cannot tell
/// whether its put landed: it deletes nothing and fails retryably, and the retry decides the
/// flush left pending against the record, here writing nothing again.
#[tokio::test]
async fn a_refused_checkpoint_with_an_unreadable_record_deletes_nothing_until_the_retry() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = LakeStore::open(&dir.path().display().to_string(), &HashMap::new()).await?;
    let mut writer = LakeWriter::new(store.clone(), ParquetOptions::default());
    let answer = writer.stall_at(StallBefore::CheckpointAnswer);
    writer.recover(STREAM, 2).await?;
    let owner = writer.owner_held(STREAM, 2)?;
    writer.lose_next_checkpoint_answer();
    let committing = tokio::spawn({
        let writer = writer.clone();
        async move { writer.commit(&mut batch(0, 10)).await }
    });
    answer.0.notified().await;

    // A directory where the record belongs: reading it fails as a store outage would.
    let record_file = dir.path().join(checkpoint_path(STREAM, 2));
    let record = std::fs::read(&record_file)?;
    std::fs::remove_file(&record_file)?;
    std::fs::create_dir(&record_file)?;
    answer.1.notify_one();
    let failed = committing.await?;
    assert!(failed.as_ref().is_err_and(LakeError::is_retryable), "{failed:?}");
    assert_eq!(files_of(&store, &owner).await?, 8, "nothing deleted");
    assert!(read_pending(&store, STREAM, 2, &owner).await?.is_some(), "the manifest stays for the retry");

    std::fs::remove_dir(&record_file)?;
    std::fs::write(&record_file, record)?;
    writer.stalls.clear();
    let retried = writer.commit(&mut batch(0, 10)).await?;
    assert!(retried.files.is_empty(), "already durable: {:?}", retried.files);
    assert_eq!(retried.checkpoint.next_offset, 10);
    assert_eq!(files_of(&store, &owner).await?, 8);
    assert!(manifest_names(&store).await?.is_empty());
    assert_eq!(total_rows(&store).await?, rows_in(&batch(0, 10)) as usize);
    Ok(())
}

/// Sweeps are rationed per round, the most overdue first, so that a writer holding many claims
/// (a folder backfill holds one per file) does not hold up its commits with a listing per
/// claim; the claims left over are taken by the next rounds, and a claim not due is not taken.
#[test]
fn due_sweeps_are_taken_a_bounded_number_per_round_most_overdue_first() -> TestResult {
    let now = Instant::now();
    let mut claims = HashMap::new();
    for partition in 0..20 {
        let mut claim = HeldClaim::new(format!("owner-{partition}"));
        // Partition 0 has waited longest.
        let waited = std::time::Duration::from_secs(100 - partition as u64);
        claim.next_sweep = now.checked_sub(waited).ok_or("clock too young")?;
        claims.insert((STREAM.to_owned(), partition), claim);
    }
    let mut not_due = HeldClaim::new("owner-later".to_owned());
    not_due.next_sweep = now + std::time::Duration::from_secs(5);
    claims.insert((STREAM.to_owned(), 99), not_due);

    let mut rounds = Vec::new();
    loop {
        let mut round: Vec<i32> =
            take_due_sweeps(&mut claims, now, MAX_SWEEPS_PER_ROUND).into_iter().map(|((_, p), _)| p).collect();
        if round.is_empty() {
            break;
        }
        round.sort_unstable();
        rounds.push(round);
    }
    assert_eq!(rounds, [(0..8).collect::<Vec<_>>(), (8..16).collect(), (16..20).collect()]);
    Ok(())
}
