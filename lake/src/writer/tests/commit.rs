//! A commit's files and checkpoint, replays of committed offsets, the offset contract and epochs.

use super::*;

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

/// A start pinned before anything is read is what the next claimer recovers, and the first
/// flush commits on top of it; a partition that already has a checkpoint keeps it.
#[tokio::test]
async fn a_pinned_start_is_recovered_and_never_moves_a_checkpoint() -> TestResult {
    for (store, _dir) in stores().await? {
        let writer = LakeWriter::new(store.clone(), ParquetOptions::default());
        assert_eq!(writer.recover(STREAM, 2).await?, None);
        let pinned = writer.pin_start(STREAM, 2, 40).await?;
        assert_eq!((pinned.next_offset, pinned.epoch, pinned.files, pinned.rows), (40, 0, 0, 0));

        let successor = LakeWriter::new(store.clone(), ParquetOptions::default());
        assert_eq!(successor.recover(STREAM, 2).await?.map(|c| c.next_offset), Some(40));
        let report = successor.commit(&mut batch(40, 46)).await?;
        assert_eq!((report.checkpoint.next_offset, report.checkpoint.epoch), (46, 0));
        let kept = successor.pin_start(STREAM, 2, 90).await?;
        assert_eq!(kept.next_offset, 46, "a checkpoint stands");
        assert_eq!(successor.read_checkpoint(STREAM, 2).await?.map(|c| c.next_offset), Some(46));
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
