//! Checkpoint puts refused with a conflict: answers lost after the put landed (S3), claims in
//! between, and records that cannot be read back.

use super::*;

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
