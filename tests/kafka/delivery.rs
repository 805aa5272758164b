//! Delivery: a mixed load lands in the lake exactly once (and `/metrics` agrees with it), so
//! does a load under repeated kill -9, and a log ending in a transaction marker is caught up to.

use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};

use crate::harness::{self, Setup, assert_exactly, lake_event_rows, produced, read_lake, wait_for_lake};
use crate::{INGEST_TIMEOUT, ONE_AT_A_TIME, brokers, common};

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
    let lags = harness::metric_sum(&metrics, "driftwatch_event_lag_seconds_count", "");
    assert_eq!(lags as i64, lake.counts.event_rows, "every stored call's lag is observed once");
    let dead = harness::metric_sum(&metrics, "driftwatch_dead_letters_total", "");
    assert_eq!(dead as i64, lake.counts.dead_letters, "driftwatch_dead_letters_total vs lake");
    let messages = harness::metric_sum(&metrics, "driftwatch_messages_total", "");
    assert_eq!(messages as u64, truth.messages, "every produced message is counted once");
    // Three topics of three partitions, all held by the group's one member.
    assert_eq!(harness::metric_sum(&metrics, "driftwatch_subscribed_partitions", ""), 9.0);
    assert_eq!(harness::metric_sum(&metrics, "driftwatch_assigned_partitions", ""), 9.0);
    assert!(metrics.contains("gen_ai_client_operation_duration_seconds_bucket"));
    assert!(metrics.contains("gen_ai_client_token_usage_bucket"));
    let elapsed = daemon.stop(Duration::from_secs(60))?;
    println!("mixed load: {} messages, {} events, shutdown in {elapsed:?}", truth.messages, produced(&truth));
    Ok(())
}

/// Topics whose record batches are compressed, by the producer or by the broker
/// (`compression.type` on the topic), are read whatever the codec: Kafka's four. Each codec gets
/// its own topics, group and lake, so a codec the consumer cannot read shows as its own failure.
#[tokio::test(flavor = "multi_thread")]
async fn compressed_record_batches_of_every_codec_land_exactly() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let setup = Setup::new(&brokers(), &format!("codec-{codec}"), 2, "1s").await?;
        let daemon = setup.start_daemon()?;
        let truth = setup.produce_compressed(2_000, 5, codec).await??;
        let lake = wait_for_lake(&setup.lake, &truth, Duration::from_secs(120))
            .await
            .map_err(|error| error.context(format!("{codec}-compressed batches: {}", daemon.log_tail())))?;
        assert_exactly(&lake, &truth, codec);
        daemon.stop(Duration::from_secs(60))?;
    }
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

/// A log whose last record is a transaction's commit marker, as every partition a transactional
/// producer (Kafka Streams or Flink with exactly-once, a transactional outbox) wrote last is:
/// the consumer passes over the marker, and lag falls to 0 once the messages before it are in
/// the lake, both while running and after a restart that resumes at the marker. Counted from
/// the lake's end, lag stayed at 1 for good and `DriftwatchPartitionStalled` paged once the
/// partition went quiet. The marker itself is no input: the lake holds exactly what was
/// produced.
#[tokio::test(flavor = "multi_thread")]
async fn a_commit_marker_at_a_logs_end_leaves_no_lag() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let setup = Setup::new(&brokers(), "txn-tail", 1, "1s").await?;
    let truth = setup.produce(40, 17, 0.0).await??;
    for topic in setup.topics.names() {
        harness::append_commit_marker(&setup.brokers, &topic, 0)?;
    }

    for run in ["first run", "restart at the marker"] {
        let daemon = setup.start_daemon()?;
        let lake = wait_for_lake(&setup.lake, &truth, INGEST_TIMEOUT).await?;
        assert_exactly(&lake, &truth, run);
        // Statistics (high watermarks and positions) come every 5 s.
        let deadline = Instant::now() + Duration::from_secs(60);
        let lags = loop {
            let lags = harness::consumer_lags(&daemon.metrics()?);
            if lags.len() == 3 && lags.values().all(|lag| *lag == 0.0) || Instant::now() > deadline {
                break lags;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert_eq!(lags.len(), 3, "{run}: one lag series per topic: {lags:?}");
        assert!(lags.values().all(|lag| *lag == 0.0), "{run}: caught up, yet lag {lags:?}");
        daemon.stop(Duration::from_secs(60))?;
    }
    Ok(())
}
