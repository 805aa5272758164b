//! Consumer groups: a member leaving hands its partitions over exactly once, so do members of a
//! cooperative group, which move only some partitions, a frozen member that wakes up drops the
//! partitions the group gave away, and a member whose partitions another writer claimed in the
//! lake stops writing them, then claims them back while the group still assigns them to it.

use std::time::Duration;

use crate::harness::{Setup, assert_exactly, lake_event_rows, produced, read_lake, wait_for_lake};
use crate::{CONSUME_TIMEOUT, INGEST_TIMEOUT, ONE_AT_A_TIME, brokers, common};

#[tokio::test(flavor = "multi_thread")]
async fn a_group_member_leaving_hands_over_exactly_once() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let setup = Setup::new(&brokers(), "group", 4, "1s").await?;
    let first = setup.start_daemon()?;
    let second = setup.start_daemon()?;
    let producer = setup.produce(120_000, 5, 0.01);
    // Both members consume and commit for a while, then one leaves mid-stream: the lake holds
    // some of the load, not all of it (checked once the load's size is known).
    let both = common::wait_for(Duration::from_secs(120), || {
        (first.events_written().ok()? > 0 && second.events_written().ok()? > 0).then_some(())
    });
    assert!(
        both.is_some(),
        "both group members should consume and commit; logs:\n{}\n---\n{}",
        first.log_tail(),
        second.log_tail()
    );
    let at_leave = lake_event_rows(&setup.lake).await?;
    let left_after = second.messages()?;
    second.stop(Duration::from_secs(60))?;
    let truth = producer.await??;
    println!("the member left after {left_after} messages, with {at_leave} of {} events in the lake", produced(&truth));
    assert!(
        0 < at_leave && at_leave < produced(&truth),
        "the member left with {at_leave} of {} events in the lake",
        produced(&truth)
    );
    let counts = wait_for_lake(&setup.lake, &truth, INGEST_TIMEOUT).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(read_lake(&setup.lake).await?, counts);
    assert_exactly(&counts, &truth, "after a member left");
    first.stop(Duration::from_secs(60))?;
    Ok(())
}

/// A cooperative group (`cooperative-sticky`): a member joining under load takes some of the
/// first member's partitions while the first reads on the rest (an eager rebalance revokes all
/// of them), the partitions go back when it leaves, and the lake holds the load exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_cooperative_group_moves_only_some_partitions_and_lands_exactly_once() -> anyhow::Result<()> {
    const PARTITIONS: usize = 3 * 4;
    let _serial = ONE_AT_A_TIME.lock().await;
    let setup = Setup::new(&brokers(), "coop", 4, "1s").await?;
    let config = std::fs::read_to_string(&setup.config)?.replace(
        "[kafka.librdkafka]\n",
        "[kafka.librdkafka]\n\"partition.assignment.strategy\" = \"cooperative-sticky\"\n",
    );
    std::fs::write(&setup.config, config)?;
    let first = setup.start_daemon()?;
    let producer = setup.produce(60_000, 9, 0.01);
    let consuming = common::wait_for(Duration::from_secs(120), || (first.events_written().ok()? > 0).then_some(()));
    assert!(consuming.is_some(), "the first member should consume; log:\n{}", first.log_tail());

    let second = setup.start_daemon()?;
    let held = |daemon: &crate::harness::Daemon| daemon.metric_sum("driftwatch_assigned_partitions", "").ok();
    let shared = common::wait_for(Duration::from_secs(120), || {
        let (first_held, second_held) = (held(&first)?, held(&second)?);
        (first_held > 0.0 && second_held > 0.0 && first_held + second_held == PARTITIONS as f64)
            .then_some((first_held, second_held))
    });
    assert!(
        shared.is_some(),
        "both members should hold partitions; logs:\n{}\n---\n{}",
        first.log_tail(),
        second.log_tail()
    );
    let revoked = revoked_counts(&first)?;
    assert!(
        !revoked.is_empty() && revoked.iter().all(|&count| count < PARTITIONS),
        "the first member should give up only the partitions that moved, revoked {revoked:?}; log:\n{}",
        first.log_tail()
    );
    let second_events =
        common::wait_for(Duration::from_secs(120), || (second.events_written().ok()? > 0).then_some(()));
    assert!(second_events.is_some(), "the second member should consume; log:\n{}", second.log_tail());

    second.stop(Duration::from_secs(60))?;
    let truth = producer.await??;
    let counts = wait_for_lake(&setup.lake, &truth, INGEST_TIMEOUT).await?;
    assert_exactly(&counts, &truth, "after a cooperative join and leave");
    assert_eq!(held(&first), Some(PARTITIONS as f64), "every partition back with the first member");
    first.stop(Duration::from_secs(60))?;
    Ok(())
}

/// How many partitions each revoke in a daemon's log released.
fn revoked_counts(daemon: &crate::harness::Daemon) -> anyhow::Result<Vec<usize>> {
    let log = std::fs::read_to_string(&daemon.log)?;
    Ok(log
        .lines()
        .filter(|line| line.contains("Partitions revoked after flushing."))
        .filter_map(|line| line.split("partitions=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_member_drops_its_lost_partitions_instead_of_racing_the_new_owner() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    // A long max_age: rows reach the lake only when partitions are revoked or at shutdown, so
    // both members hold the same offsets in their buffers when the frozen one wakes up.
    let setup = Setup::new(&brokers(), "frozen", 3, "10m").await?;

    let frozen = setup.start_daemon()?;
    let mut truth = setup.produce(6_000, 31, 0.0).await??;
    assert!(
        frozen.consumed(truth.messages, CONSUME_TIMEOUT),
        "first member did not consume; log:\n{}",
        frozen.log_tail()
    );
    // Frozen past its session timeout (10 s): the group gives every partition to the new member,
    // which reads them from the start (nothing is in the lake yet) and then some more. The new
    // member joins only once that session has run out, as in the crash test: Tansu 0.6's
    // coordinator can stall a rebalance that a member still inside its session has not
    // rejoined (one CI run in several waited out its 300 s there), which Kafka resolves by
    // expiring the session.
    frozen.signal("STOP")?;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let owner = setup.start_daemon()?;
    truth.merge(&setup.produce(6_000, 32, 0.0).await??);
    assert!(owner.consumed(truth.messages, CONSUME_TIMEOUT), "new owner did not consume; log:\n{}", owner.log_tail());
    // Waking up, the frozen member learns that its assignment is gone. Flushing what it holds
    // would commit a range the new owner is about to commit a longer one over; it must drop it.
    frozen.signal("CONT")?;
    let lost = common::wait_for(Duration::from_secs(120), || {
        let lost = frozen.metric_sum("driftwatch_consumer_errors_total", "assignment_lost").ok()?;
        (lost >= 1.0).then_some(())
    });
    assert!(lost.is_some(), "the frozen member never saw its assignment lost; log:\n{}", frozen.log_tail());
    // The new owner's final flush covers everything it read; had the frozen member written its
    // older, shorter range first, that flush would straddle the checkpoint and fail.
    owner.stop(Duration::from_secs(60))?;
    let counts = wait_for_lake(&setup.lake, &truth, INGEST_TIMEOUT).await?;
    frozen.stop(Duration::from_secs(60))?;
    assert_eq!(read_lake(&setup.lake).await?, counts);
    assert_exactly(&counts, &truth, "after a frozen member woke up");
    Ok(())
}

/// Another writer claims the daemon's partitions in the lake, as a daemon they moved to would
/// on assignment while this one was stalled and had not heard of it yet. The daemon must stop
/// writing them (its flushes are refused, counted and dropped), stay up, and a restart must
/// still leave every message in the lake exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_whose_partitions_were_claimed_in_the_lake_stops_writing_them_then_claims_them_back()
-> anyhow::Result<()> {
    use driftwatch_lake::checkpoint::PartitionRecord;
    use driftwatch_lake::parquet::ParquetOptions;
    use driftwatch_lake::store::LakeStore;
    use driftwatch_lake::writer::LakeWriter;

    let _serial = ONE_AT_A_TIME.lock().await;
    let setup = Setup::new(&brokers(), "claimed", 3, "1s").await?;
    let daemon = setup.start_daemon()?;
    let first = setup.produce(3_000, 51, 0.0).await??;
    let before = wait_for_lake(&setup.lake, &first, INGEST_TIMEOUT).await?;
    assert!(daemon.consumed(first.messages, CONSUME_TIMEOUT), "log:\n{}", daemon.log_tail());

    // Claim every partition record the daemon has written, with the lake API a second
    // daemon's assignment uses.
    let store = LakeStore::open(&setup.lake.display().to_string(), &std::collections::HashMap::new()).await?;
    let usurper = LakeWriter::new(store.clone(), ParquetOptions::default());
    let mut claimed = 0;
    for object in store.list("_checkpoints").await? {
        // Partition records are `<partition>.json`; manifests add a state and a claim id.
        let name = object.path.rsplit('/').next().unwrap_or_default();
        if name.strip_suffix(".json").is_none_or(|stem| stem.parse::<i32>().is_err()) {
            continue;
        }
        let bytes = store.get(&object.path).await?.expect("listed record");
        let record: PartitionRecord = serde_json::from_slice(&bytes)?;
        usurper.recover(&record.stream, record.partition).await?;
        claimed += 1;
    }
    assert!(claimed >= 3, "only {claimed} partition records to claim");

    let mut truth = first.clone();
    let second = setup.produce(3_000, 52, 0.0).await??;
    truth.merge(&second);
    let lost = common::wait_for(CONSUME_TIMEOUT, || {
        let lost = daemon.metric_sum("driftwatch_consumer_errors_total", "lake_claim_lost").ok()?;
        (lost >= 1.0).then_some(())
    });
    assert!(lost.is_some(), "the daemon never saw its claims lost; log:\n{}", daemon.log_tail());
    // Long enough for every partition's age limit (1 s) to have come and gone a few times.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(read_lake(&setup.lake).await?, before, "nothing written after the claims were lost");
    assert!(daemon.ready(), "the daemon stays up and ready; log:\n{}", daemon.log_tail());

    // The group still assigns the partitions here and no revoke comes: the usurper is a writer
    // the group moved on from. A minute on, the daemon claims them back and reads them again
    // from the lake checkpoint, without a restart or a rebalance (under cooperative rebalancing
    // none would ever come).
    let counts = wait_for_lake(&setup.lake, &truth, INGEST_TIMEOUT).await?;
    assert!(
        std::fs::read_to_string(&daemon.log)?.contains("claimed back, reading it again from the lake checkpoint"),
        "log:\n{}",
        daemon.log_tail()
    );
    daemon.stop(Duration::from_secs(60))?;
    assert_eq!(read_lake(&setup.lake).await?, counts);
    assert_exactly(&counts, &truth, "after lost claims were claimed back");
    Ok(())
}
