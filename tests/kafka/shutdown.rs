//! Shutdown: SIGTERM flushes within the deadline and a restart reads nothing twice; a shutdown
//! during an object store outage still leaves the group within the deadline.

use std::time::{Duration, Instant};

use crate::harness::{Daemon, Setup, assert_exactly, lake_event_rows, read_lake, wait_for_lake};
use crate::{CONSUME_TIMEOUT, INGEST_TIMEOUT, ONE_AT_A_TIME, brokers, common};

/// `--shutdown-deadline`'s default: what a deployment that sets none gets.
const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_flushes_within_the_deadline_and_restart_consumes_nothing_twice() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    // A long max_age: only the shutdown flush can make buffered rows durable.
    let setup = Setup::new(&brokers(), "sigterm", 3, "10m").await?;
    let daemon = Daemon::start_with_default_deadline(&setup.config, setup.dir.path())?;
    let truth = setup.produce(10_000, 9, 0.0).await??;
    assert!(
        daemon.consumed(truth.messages, CONSUME_TIMEOUT),
        "daemon did not consume the load; log:\n{}",
        daemon.log_tail()
    );
    // Everything is read and none of it is durable: the rows are in the daemon's buffers only.
    let buffered = common::wait_for(Duration::from_secs(30), || daemon.buffered_rows().ok().filter(|rows| *rows > 0));
    assert!(buffered.is_some(), "nothing buffered; log:\n{}", daemon.log_tail());
    assert_eq!(lake_event_rows(&setup.lake).await?, 0, "rows flushed before the shutdown");
    assert_eq!(daemon.messages()?, truth.messages, "consumed more than the load");

    // Waited on past the deadline, so that a shutdown that overran it (ended by the deadline
    // with 124, or not at all) is seen as such, not as a timeout of this wait.
    let (status, shutdown) = daemon.terminate(DEFAULT_SHUTDOWN_DEADLINE * 3)?;
    println!("SIGTERM shutdown with {buffered:?} rows buffered took {shutdown:?}");
    assert!(status.success(), "the shutdown flush failed or overran the deadline: {status}");
    assert!(shutdown < DEFAULT_SHUTDOWN_DEADLINE, "shutdown took {shutdown:?}");
    assert_exactly(&read_lake(&setup.lake).await?, &truth, "after SIGTERM");

    // Restart: everything was committed, so the restarted member reads only what comes next.
    let daemon = setup.start_daemon()?;
    let ready = common::wait_for(Duration::from_secs(60), || daemon.ready().then_some(()));
    assert!(ready.is_some(), "restarted daemon never became ready; log:\n{}", daemon.log_tail());
    let marker = setup.produce(1_000, 10, 0.0).await??;
    assert!(
        daemon.consumed(marker.messages, CONSUME_TIMEOUT),
        "restarted daemon did not consume the marker; log:\n{}",
        daemon.log_tail()
    );
    // A moment for a late re-read to show in the count as well.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(daemon.messages()?, marker.messages, "the restarted daemon read more than the marker");
    daemon.stop(Duration::from_secs(60))?;
    let mut both = truth.clone();
    both.merge(&marker);
    assert_exactly(&read_lake(&setup.lake).await?, &both, "after a restart and a marker batch");
    Ok(())
}

/// SIGTERM `daemon` while its lake is down. It must give the lake up and exit by itself,
/// non-zero (rows were left unwritten) and within `deadline`, saying `why`: not be ended by the
/// deadline as a member the brokers still count, whose partitions then wait out its session.
fn terminate_while_the_lake_is_down(daemon: &mut Daemon, deadline: Duration, why: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    common::terminate(&daemon.child)?;
    let status = common::wait_with_timeout(&mut daemon.child, Duration::from_secs(90))?;
    let took = started.elapsed();
    let log = std::fs::read_to_string(&daemon.log)?;
    assert_ne!(status.code(), Some(124), "ended by the shutdown deadline; log:\n{}", daemon.log_tail());
    assert!(!status.success(), "unwritten rows make a failed shutdown; log:\n{}", daemon.log_tail());
    assert!(took < deadline, "shutdown took {took:?}, the deadline is {deadline:?}");
    assert!(log.contains(why), "log:\n{}", daemon.log_tail());
    Ok(())
}

/// A shutdown that finds the processing loop waiting for a flush slot, behind a commit the
/// store keeps refusing (the store went away mid-stream and flushes kept coming due), still
/// ends within the deadline, leaving the group itself: the waits end with the flushes, which
/// are given up at the final flush's budget. Nothing is lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_shutdown_while_flushes_wait_behind_an_object_store_outage_ends_within_the_deadline() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir()?;
    let mut s3 = common::PrivateS3::start(dir.path())?;
    std::fs::create_dir_all(s3.root.join("lake"))?;
    let lake = s3.root.join("lake").join("w");
    let setup = Setup::with_lake(&brokers(), "wait", 3, "1s", dir, "s3://lake/w".to_owned(), lake).await?;
    let deadline = Duration::from_secs(20);
    let mut env = s3.client_env();
    env.push(("DRIFTWATCH_SHUTDOWN_DEADLINE".to_owned(), format!("{}s", deadline.as_secs())));
    // One flush in flight: the second flush due waits for the first one's slot.
    env.push(("DRIFTWATCH_KAFKA__MAX_INFLIGHT_FLUSHES".to_owned(), "1".to_owned()));
    let mut daemon = Daemon::start(&setup.config, setup.dir.path(), &env)?;
    let mut truth = setup.produce(1_000, 51, 0.0).await??;
    wait_for_lake(&setup.lake, &truth, INGEST_TIMEOUT).await?;

    // The first partition's age flush fails and keeps the only slot, the next one due waits
    // for it, and with it the loop: shown on /metrics, which is served beside the loop.
    s3.server.stop();
    truth.merge(&setup.produce(500, 52, 0.0).await??);
    let waiting = common::wait_for(Duration::from_secs(60), || {
        daemon.metrics().ok().filter(|served| served.lines().any(|line| line == "driftwatch_waiting_for_flush_slot 1"))
    });
    assert!(waiting.is_some(), "the loop never waited for a flush slot; log:\n{}", daemon.log_tail());
    // Giving up the flushes ends the wait one of two ways, both leaving the group at once: the
    // wait itself gives up ("Stopped on a lake error"), or, when the abandoned flush's
    // completion wins that race, the loop sees the shutdown and its final flush gives up
    // ("leaving the group without committing").
    terminate_while_the_lake_is_down(&mut daemon, deadline, "giving up the flushes still retrying")?;

    s3.server.restart()?;
    let successor = Daemon::start(&setup.config, setup.dir.path(), &s3.client_env())?;
    let counts = wait_for_lake(&setup.lake, &truth, INGEST_TIMEOUT).await?;
    successor.stop(Duration::from_secs(60))?;
    assert_exactly(&counts, &truth, "after a shutdown while flushes waited behind an object store outage");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shutdown_during_an_object_store_outage_leaves_the_group_within_the_deadline() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir()?;
    let mut s3 = common::PrivateS3::start(dir.path())?;
    std::fs::create_dir_all(s3.root.join("lake"))?;
    let lake = s3.root.join("lake").join("q");
    // A long max_age: the rows stay buffered until the shutdown flush, which the outage blocks.
    let setup = Setup::with_lake(&brokers(), "leave", 3, "10m", dir, "s3://lake/q".to_owned(), lake).await?;
    let deadline = Duration::from_secs(20);
    let mut env = s3.client_env();
    env.push(("DRIFTWATCH_SHUTDOWN_DEADLINE".to_owned(), format!("{}s", deadline.as_secs())));
    let mut daemon = Daemon::start(&setup.config, setup.dir.path(), &env)?;
    let truth = setup.produce(2_000, 43, 0.0).await??;
    assert!(
        daemon.consumed(truth.messages, CONSUME_TIMEOUT),
        "daemon did not consume the load; log:\n{}",
        daemon.log_tail()
    );
    // Nothing is checkpointed yet (the flush age is long), and still every assigned partition
    // has a checkpoint age, counted from its assignment: a lake that refuses the very first
    // flush shows in the stall alert's expression. There is no checkpoint time to show yet.
    let served = daemon.metrics()?;
    let series = |name: &str| served.lines().filter(|line| line.starts_with(&format!("{name}{{"))).count();
    // Three topics of three partitions, all assigned to this one member.
    assert_eq!(series("driftwatch_checkpoint_age_seconds"), 3 * 3, "{served}");
    assert_eq!(series("driftwatch_checkpoint_timestamp_seconds"), 0, "{served}");

    // The final flush cannot land. The daemon gives up on it in time to leave the group
    // itself, instead of being ended by the deadline as a member the brokers still count
    // (whose partitions then wait out its session before anyone reads them).
    s3.server.stop();
    terminate_while_the_lake_is_down(&mut daemon, deadline, "leaving the group without committing")?;

    // Nothing was lost: the rows are read again from the lake checkpoint (and flushed by the
    // successor's own shutdown, since they are fewer than a flush holds).
    s3.server.restart()?;
    let successor = Daemon::start(&setup.config, setup.dir.path(), &s3.client_env())?;
    assert!(
        successor.consumed(truth.messages, CONSUME_TIMEOUT),
        "successor did not consume the load; log:\n{}",
        successor.log_tail()
    );
    successor.stop(Duration::from_secs(60))?;
    assert_exactly(&read_lake(&setup.lake).await?, &truth, "after a shutdown during an object store outage");
    Ok(())
}
