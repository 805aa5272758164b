//! Claims: once another writer has claimed a partition, a writer that lost it cannot commit.

use super::*;

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
