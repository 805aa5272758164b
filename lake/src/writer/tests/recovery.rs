//! A crash at each step of a flush, then recovery: exactly the committed files are kept.

use super::*;

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
