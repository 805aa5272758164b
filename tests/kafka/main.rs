//! The Kafka daemon against a real broker (Tansu, started by `scripts/dev-stack`): mixed load,
//! its metrics as the dev stack's Prometheus scrapes them, kill -9 crashes, a consumer group
//! losing a member, a frozen member waking up after the group gave its partitions away, a member
//! whose partitions were claimed in the lake, SIGTERM, a broker outage, an object store outage,
//! and loadgen meeting a broker that starts late or a producer that refuses its messages. Each
//! test uses its own topics and consumer group. They run one at a time: each saturates the
//! machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod harness;

use std::time::{Duration, Instant};

use harness::{
    Daemon, Prometheus, Setup, Topics, assert_exactly, lake_event_rows, loadgen, produced, read_lake, wait_for_lake,
    write_config,
};
use rand::{RngExt, SeedableRng};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const INGEST_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a daemon may take to consume a test's load (by its `/metrics`).
const CONSUME_TIMEOUT: Duration = Duration::from_secs(300);

fn brokers() -> String {
    common::stack_var("DRIFTWATCH_TEST_KAFKA")
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_load_lands_exactly_and_metrics_agree_with_the_lake() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let setup = Setup::new(&brokers(), "mixed", 3, "1s").await?;
    let daemon = setup.start_daemon()?;

    // ~200k messages: a third of the apps send JSON events (one per message), the others OTLP
    // protobuf and OTLP/JSON batches; ~1% malformed.
    let truth = setup.produce(330_000, 11, 0.01).await??;
    assert!(truth.messages >= 150_000, "load too small: {} messages", truth.messages);
    let lake = wait_for_lake(&setup.lake, &truth, INGEST_TIMEOUT).await?;
    assert_exactly(&lake, &truth, "mixed load");
    assert!(daemon.ready(), "daemon should be ready while consuming");

    // /metrics agrees with the lake.
    let metrics = daemon.metrics()?;
    let requests = harness::metric_sum(&metrics, "driftwatch_requests_total", "");
    assert_eq!(requests as i64, lake.counts.event_rows, "driftwatch_requests_total vs lake rows");
    let dead = harness::metric_sum(&metrics, "driftwatch_dead_letters_total", "");
    assert_eq!(dead as i64, lake.counts.dead_letters, "driftwatch_dead_letters_total vs lake");
    let messages = harness::metric_sum(&metrics, "driftwatch_messages_total", "");
    assert_eq!(messages as u64, truth.messages, "every produced message is counted once");
    assert!(metrics.contains("gen_ai_client_operation_duration_seconds_bucket"));
    assert!(metrics.contains("gen_ai_client_token_usage_bucket"));
    let elapsed = daemon.stop(Duration::from_secs(60))?;
    println!("mixed load: {} messages, {} events, shutdown in {elapsed:?}", truth.messages, produced(&truth));
    Ok(())
}

/// What the daemon serves is what Prometheus stores: the exposition parses in a real Prometheus
/// (an OpenMetrics parse failure would leave no samples), every sample name reaches it, and the
/// values agree once consumption has stopped.
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_every_metric_the_daemon_serves() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let prometheus = Prometheus::from_stack();
    // The dev stack's Prometheus scrapes this port every second.
    let instance = format!("127.0.0.1:{}", common::stack_var("DRIFTWATCH_TEST_SCRAPE_PORT"));
    let setup = Setup::new(&brokers(), "prom", 3, "1s").await?;
    let daemon = Daemon::start_at(&setup.config, setup.dir.path(), &[], &instance)?;
    let selector = format!("instance=\"{instance}\"");
    // Before any input, every dead-letter reason and each topic's results are scraped at 0: the
    // sample `increase()` needs to see the first dead letter, which a series that first appears
    // at 1 lacks.
    let zeros = common::wait_for(Duration::from_secs(30), || {
        let zero = |name: &str| {
            let series = prometheus.query(&format!("{name}{{{selector}}}")).ok()?;
            (series.len() > 1 && series.iter().all(|(_, value)| *value == 0.0)).then_some(series.len())
        };
        Some((zero("driftwatch_dead_letters_total")?, zero("driftwatch_messages_total")?))
    });
    let reasons = driftwatch_ingest::telemetry::names::DECODE_ERROR_REASONS.len() + 1;
    assert_eq!(
        zeros,
        Some((reasons, 3 * 4)),
        "every dead-letter reason and 3 topics' 4 results at 0, before any input"
    );
    let truth = setup.produce(3_000, 17, 0.01).await??;
    assert!(truth.malformed_messages > 0);
    assert!(daemon.consumed(truth.messages, CONSUME_TIMEOUT), "not consumed; log:\n{}", daemon.log_tail());
    let served = daemon.metrics()?;
    let requests = harness::metric_sum(&served, "driftwatch_requests_total", "");
    let messages = harness::metric_sum(&served, "driftwatch_messages_total", "");
    assert_eq!(messages as u64, truth.messages);

    // Consumption is over, so the counters hold still; wait for a scrape that has them.
    let scraped = common::wait_for(Duration::from_secs(30), || {
        let sum = |name: &str| prometheus.query(&format!("sum({name}{{{selector}}})")).ok()?.first().map(|r| r.1);
        (sum("driftwatch_requests_total")? == requests && sum("driftwatch_messages_total")? == messages).then_some(())
    });
    assert!(
        scraped.is_some(),
        "Prometheus never showed {requests} requests and {messages} messages for {instance}: {:?}",
        prometheus.query(&format!("up{{{selector}}}"))
    );

    // Every sample name the daemon serves is a series there, read at the same scrape or later.
    let stored: std::collections::BTreeSet<String> = prometheus
        .query(&format!("group by (__name__) ({{{selector}}})"))?
        .into_iter()
        .filter_map(|(labels, _)| labels.get("__name__").cloned())
        .collect();
    let missing: Vec<String> =
        harness::sample_names(&served).into_iter().filter(|name| !stored.contains(name)).collect();
    assert!(missing.is_empty(), "served but not in Prometheus: {missing:?}");
    // Every dead letter, the first of each reason included, is a rise from a scraped 0.
    let first = prometheus.query(&format!("sum(min_over_time(driftwatch_dead_letters_total{{{selector}}}[10m]))"))?;
    assert_eq!(first.first().map(|r| r.1), Some(0.0), "every dead-letter series started at 0 in Prometheus");
    let rise = prometheus.query(&format!("sum(increase(driftwatch_dead_letters_total{{{selector}}}[10m]))"))?;
    assert!(rise.first().is_some_and(|r| r.1 > 0.0), "increase() sees the dead letters: {rise:?}");
    for name in ["gen_ai_client_operation_duration_seconds_bucket", "process_resident_memory_bytes"] {
        assert!(stored.contains(name), "{name} not in Prometheus: {stored:?}");
    }
    // Failed calls are timed under their error_type, successful ones without it, so the
    // dashboards' "successful calls only" latency is a plain matcher.
    let count = |matcher: &str| -> anyhow::Result<f64> {
        let query = format!("sum(gen_ai_client_operation_duration_seconds_count{{{selector}{matcher}}})");
        Ok(prometheus.query(&query)?.first().map_or(0.0, |r| r.1))
    };
    let (all, succeeded, failed) = (count("")?, count(",error_type=\"\"")?, count(",error_type!=\"\"")?);
    assert!(succeeded > 0.0 && failed > 0.0, "successes {succeeded} and failures {failed} both timed");
    assert_eq!(succeeded + failed, all, "every call timed once");
    // Over the cumulative buckets, not rate(): the series first appear already filled when a
    // burst is consumed between two scrapes, and a rate over samples that never changed is empty.
    let p95 = prometheus.query(&format!(
        "histogram_quantile(0.95, sum by (le) (gen_ai_client_operation_duration_seconds_bucket{{{selector},error_type=\"\"}}))"
    ))?;
    assert!(p95.first().is_some_and(|r| r.1.is_finite() && r.1 > 0.0), "p95 of successful calls: {p95:?}");
    let resident = prometheus.query(&format!("process_resident_memory_bytes{{{selector}}}"))?;
    assert!(resident.first().is_some_and(|r| r.1 > 1e6), "resident memory in Prometheus: {resident:?}");
    // The test config leaves flush.max_buffered_bytes at its default, 512 MiB.
    let budget = prometheus.query(&format!("driftwatch_buffered_bytes_limit{{{selector}}}"))?;
    assert_eq!(budget.first().map(|r| r.1), Some(512.0 * 1024.0 * 1024.0), "buffer budget in Prometheus");
    daemon.stop(Duration::from_secs(60))?;
    Ok(())
}

/// Kills in the crash test, and how many of them must land while the daemon is consuming.
const KILLS: usize = 6;
const KILLS_MID_STREAM: usize = 5;

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_under_load_leaves_the_lake_exactly_once() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let seed = std::env::var("DRIFTWATCH_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1128u64);
    println!("kafka crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let setup = Setup::new(&brokers(), "crash", 3, "1s").await?;
    let started = Instant::now();
    let producer = setup.produce(150_000, seed, 0.01);
    // Event rows in the lake once each daemon was killed. A reading may count files of a flush
    // the kill cut short; they stay until the next daemon's recovery removes them.
    let mut at_kills: Vec<u64> = Vec::new();
    while at_kills.len() < KILLS {
        let before = at_kills.last().copied().unwrap_or(0);
        let daemon = setup.start_daemon()?;
        // Kill only a daemon that is consuming: it has joined the group (once the killed
        // member's session ran out), recovered its partitions from the lake and committed
        // flushes of its own (cheaply seen in its metrics, then in the lake), so that the lake
        // has grown past the last reading. Then kill it at a random moment of its 1 s cycles of
        // fetching, writing and committing.
        let committing =
            common::wait_for(Duration::from_secs(180), || (daemon.events_written().ok()? > 0).then_some(()));
        assert!(committing.is_some(), "daemon {} never committed; log:\n{}", at_kills.len() + 1, daemon.log_tail());
        let grown = tokio::time::timeout(Duration::from_secs(120), async {
            while lake_event_rows(&setup.lake).await? <= before {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            anyhow::Ok(())
        })
        .await;
        assert!(
            matches!(grown, Ok(Ok(()))),
            "the lake never grew past {before} event rows under daemon {}: {grown:?}; log:\n{}",
            at_kills.len() + 1,
            daemon.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..2000))).await;
        daemon.kill9()?;
        // Files are removed only by the next daemon's recovery: this reading is at least the one
        // that showed the growth.
        let at_kill = lake_event_rows(&setup.lake).await?;
        println!("kill {} at {:?}: {before} -> {at_kill} event rows", at_kills.len() + 1, started.elapsed());
        at_kills.push(at_kill);
        // A killed member stays in the group until its session times out (10 s here), as a
        // crashed pod does until its supervisor restarts it. Restarting before that piles up
        // dead members; Tansu 0.6's coordinator can then stall the rebalance indefinitely,
        // which Kafka resolves by expiring the sessions.
        tokio::time::sleep(Duration::from_secs(11)).await;
    }
    let truth = producer.await??;
    println!("load produced at {:?}: {} events", started.elapsed(), produced(&truth));
    // Mid-stream: the killed daemon had added to the lake, and the load was not all in yet.
    let mut previous = 0;
    let mut mid_stream = 0;
    for at_kill in &at_kills {
        mid_stream += usize::from(previous < *at_kill && *at_kill < produced(&truth));
        previous = *at_kill;
    }
    assert!(
        mid_stream >= KILLS_MID_STREAM,
        "only {mid_stream} of {KILLS} kills landed mid-stream; lake event rows at each: {at_kills:?} of {}",
        produced(&truth)
    );
    let daemon = setup.start_daemon()?;
    let counts = wait_for_lake(&setup.lake, &truth, INGEST_TIMEOUT).await?;
    // Give a straggling duplicate, if the design were wrong, the chance to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts_after = read_lake(&setup.lake).await?;
    assert_eq!(counts, counts_after);
    assert_exactly(&counts_after, &truth, &format!("after {KILLS} kill -9"));
    daemon.stop(Duration::from_secs(60))?;
    println!("crash test done at {:?}", started.elapsed());
    Ok(())
}

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
async fn a_member_whose_partitions_were_claimed_in_the_lake_stops_writing_them() -> anyhow::Result<()> {
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
    daemon.stop(Duration::from_secs(60))?;

    // The next member to be assigned the partitions claims them back and resumes from the lake.
    let successor = setup.start_daemon()?;
    let counts = wait_for_lake(&setup.lake, &truth, INGEST_TIMEOUT).await?;
    successor.stop(Duration::from_secs(60))?;
    assert_eq!(read_lake(&setup.lake).await?, counts);
    assert_exactly(&counts, &truth, "after a lost claim and a restart");
    Ok(())
}

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

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_outage_is_survived_without_intervention() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir()?;
    let lake = dir.path().join("lake");
    let mut broker = harness::private_broker(dir.path())?;
    let topics = Topics::create(&broker.address, 2).await?;
    let group = common::unique("outage");
    // Rows wait 5 s for their flush, so the outage comes while the daemon holds rows it has
    // read and not written; they must reach the lake during the outage. The member's session
    // (10 s) runs out before the broker comes back, as it would on a real cluster's outage of
    // that length: librdkafka gives the assignment up (the rows are in the lake by then) and the
    // member joins afresh. A member that kept its assignment across this memory broker's
    // restart would fetch topics that were recreated under new ids, which crashes librdkafka
    // against Tansu 0.6 (a NULL topic name in its metadata cache, as a deleted topic does).
    let config = write_config(dir.path(), &broker.address, &group, &topics, &lake.display().to_string(), "5s")?;
    let mut daemon = Daemon::start(&config, dir.path(), &[])?;

    let before = loadgen(&broker.address, &topics, 5_000, 21, 0.0, 4)?;
    assert!(
        daemon.consumed(before.messages, CONSUME_TIMEOUT),
        "daemon did not consume the first batch; log:\n{}",
        daemon.log_tail()
    );
    let buffered = common::wait_for(Duration::from_secs(30), || daemon.buffered_rows().ok().filter(|rows| *rows > 0));
    let in_lake = lake_event_rows(&lake).await?;
    println!(
        "broker stopped with {buffered:?} rows buffered and {in_lake} of {} events in the lake",
        produced(&before)
    );
    assert!(buffered.is_some(), "nothing buffered when the broker stopped; log:\n{}", daemon.log_tail());
    assert!(in_lake < produced(&before), "the first batch was all in the lake before the outage");
    assert_eq!(daemon.messages()?, before.messages, "consumed more than the first batch");

    // The broker goes away for 30 s. The daemon must stay up, report itself unready, and still
    // make what it holds durable: the lake checkpoint, not the broker, is what it commits to.
    let outage = Instant::now();
    broker.stop();
    let flushed = wait_for_lake(&lake, &before, Duration::from_secs(25)).await;
    assert!(flushed.is_ok(), "the buffered rows were not flushed during the outage: {flushed:?}");
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(outage.elapsed())).await;
    assert!(daemon.child_alive(), "daemon exited during the outage; log:\n{}", daemon.log_tail());
    assert!(!daemon.ready(), "daemon claims readiness with no broker");

    // A memory broker comes back empty: recreate the topics and produce the next batch. It is
    // smaller than the first, so every partition's old checkpoint now lies beyond the log's
    // end. The daemon learns that from the watermarks, at assignment or, when that query
    // times out while the restarted broker settles, from the poll loop's re-check, and starts
    // a new lake epoch at the new log's start (a recreated topic that already outgrew the old
    // checkpoint is indistinguishable by offsets alone; see the closing note on topic ids).
    broker.restart()?;
    driftwatch_ingest::loadgen::ensure_topics(
        &broker.address,
        &[],
        &driftwatch_ingest::loadgen::LoadTopics::with_prefix(&topics.prefix).all(),
        2,
        Duration::from_secs(30),
    )
    .await?;
    let after = loadgen(&broker.address, &topics, 1_000, 22, 0.0, 4)?;
    let mut truth = before.clone();
    truth.merge(&after);
    let counts = wait_for_lake(&lake, &truth, INGEST_TIMEOUT).await?;
    let ready = common::wait_for(Duration::from_secs(60), || daemon.ready().then_some(()));
    assert!(ready.is_some(), "daemon did not become ready again; log:\n{}", daemon.log_tail());
    daemon.stop(Duration::from_secs(60))?;
    assert_eq!(read_lake(&lake).await?, counts);
    assert_exactly(&counts, &truth, "across a broker outage");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn loadgen_creates_its_topics_on_a_broker_that_comes_up_late() -> anyhow::Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir()?;
    let mut broker = harness::private_broker(dir.path())?;
    broker.stop();
    let topics = driftwatch_ingest::loadgen::LoadTopics::with_prefix(&format!("{}-", common::unique("late")));
    let names: Vec<String> = topics.all().iter().map(|name| (*name).to_owned()).collect();
    let address = broker.address.clone();
    // A creation request waits up to 10 s for a broker. The broker comes up after 12 s, so
    // the first request times out and loadgen must retry it instead of failing the run (a
    // broker slow to start in CI is this case).
    let creating = tokio::spawn(async move {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        driftwatch_ingest::loadgen::ensure_topics(&address, &[], &names, 2, Duration::from_secs(90)).await
    });
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(!creating.is_finished(), "topic creation returned with no broker listening");
    tokio::task::block_in_place(|| broker.restart())?;
    creating.await??;

    let consumer: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", &broker.address).create()?;
    for topic in topics.all() {
        let metadata = tokio::task::block_in_place(|| consumer.fetch_metadata(Some(topic), Duration::from_secs(10)))?;
        let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len());
        assert_eq!(partitions, 2, "{topic} after a late broker start");
    }
    Ok(())
}

/// Messages librdkafka refuses to queue (here: larger than `message.max.bytes`) get no delivery
/// report; the run must fail instead of printing a truth that counts them.
#[tokio::test(flavor = "multi_thread")]
async fn loadgen_fails_when_the_producer_refuses_messages() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let prefix = format!("{}-", common::unique("refused"));
    let output = tokio::task::block_in_place(|| {
        common::driftwatch()
            .args(["loadgen", "--brokers", &brokers(), "--topic-prefix", &prefix, "--create-partitions", "1"])
            .args(["--format", "json", "--inferences", "300", "--producer-property", "message.max.bytes=1000"])
            .stdin(std::process::Stdio::null())
            .output()
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "loadgen succeeded with refused messages:\n{stdout}\n{stderr}");
    assert!(stdout.trim().is_empty(), "a truth was printed: {stdout}");
    assert!(stderr.contains("refused by the producer"), "{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_store_outage_is_ridden_out_unready_and_exactly_once() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir()?;
    let mut s3 = harness::PrivateS3::start(dir.path())?;
    std::fs::create_dir_all(s3.root.join("lake"))?;
    // Short names: see `common::unique`.
    let lake = s3.root.join("lake").join("p");
    let setup = Setup::with_lake(&brokers(), "s3", 3, "1s", dir, "s3://lake/p".to_owned(), lake).await?;
    let mut daemon = Daemon::start(&setup.config, setup.dir.path(), &s3.client_env())?;
    let mut truth = setup.produce(3_000, 41, 0.0).await??;
    wait_for_lake(&setup.lake, &truth, INGEST_TIMEOUT).await?;
    let ready = common::wait_for(Duration::from_secs(30), || daemon.ready().then_some(()));
    assert!(ready.is_some(), "daemon not ready with a working lake; log:\n{}", daemon.log_tail());

    // The store goes away while messages keep coming: commits fail and are retried, the
    // daemon stays up, says it is not ready and why, and loses nothing.
    s3.server.stop();
    let during = setup.produce(3_000, 42, 0.0);
    let unready = common::wait_for(Duration::from_secs(60), || {
        let (status, body) = common::http_get(&daemon.http, "/readyz").ok()?;
        (status != 200 && body.contains("lake")).then_some(())
    });
    assert!(unready.is_some(), "daemon stayed ready with its lake down; log:\n{}", daemon.log_tail());
    truth.merge(&during.await??);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(daemon.child_alive(), "daemon exited during the outage; log:\n{}", daemon.log_tail());

    s3.server.restart()?;
    let counts = wait_for_lake(&setup.lake, &truth, INGEST_TIMEOUT).await?;
    let ready = common::wait_for(Duration::from_secs(60), || daemon.ready().then_some(()));
    assert!(ready.is_some(), "daemon did not become ready again; log:\n{}", daemon.log_tail());
    daemon.stop(Duration::from_secs(60))?;
    assert_eq!(read_lake(&setup.lake).await?, counts);
    assert_exactly(&counts, &truth, "after an object store outage");
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
    let mut s3 = harness::PrivateS3::start(dir.path())?;
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

    // Two bursts a few seconds apart: the first one's age flush fails and keeps the only slot,
    // the second one's waits for it, and with it the loop.
    s3.server.stop();
    truth.merge(&setup.produce(500, 52, 0.0).await??);
    tokio::time::sleep(Duration::from_secs(4)).await;
    truth.merge(&setup.produce(500, 53, 0.0).await??);
    tokio::time::sleep(Duration::from_secs(4)).await;
    terminate_while_the_lake_is_down(&mut daemon, deadline, "Stopped on a lake error")?;

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
    let mut s3 = harness::PrivateS3::start(dir.path())?;
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
