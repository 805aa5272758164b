//! Files put by writers that were fenced and then killed, fenced manifests, and the sweep schedule.

use super::*;

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
