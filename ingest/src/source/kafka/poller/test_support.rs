//! What the poller's tests share: unique names, the dev stack's broker, a context over a fresh
//! lake, the consumer error counter, and the poll loop run for a while.

use std::sync::Arc;
use std::time::Duration;

use driftwatch_lake::parquet::ParquetOptions;
use driftwatch_lake::store::LakeStore;
use driftwatch_lake::writer::LakeWriter;
use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::{PollerContext, poll_loop};
use crate::config::StartFrom;
use crate::source::kafka::channel::{Command, Event, EventReceiver, event_channel};
use crate::telemetry::{Metrics, MetricsConfig};

/// What the poller's tests return.
pub(super) type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A topic or group name no other test run uses.
pub(super) fn unique_name(prefix: &str) -> Result<String, Box<dyn std::error::Error>> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.subsec_nanos();
    Ok(format!("{prefix}-{}-{nanos:08x}", std::process::id()))
}

/// The dev stack's broker address (`scripts/test` starts it and exports it).
pub(super) fn test_brokers() -> Result<String, Box<dyn std::error::Error>> {
    Ok(std::env::var("DRIFTWATCH_TEST_KAFKA")
        .map_err(|_| "DRIFTWATCH_TEST_KAFKA is not set: run the tests with scripts/test")?)
}

/// A consumer in `group` on the dev stack's broker that leaves its offsets alone, as the
/// daemon does (it commits them itself).
pub(super) fn group_member(brokers: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers).set("group.id", group).set("enable.auto.commit", "false");
    config
}

/// A new one-partition topic named after `prefix`, holding `messages` messages at offsets
/// 0.. (one per record batch, which Tansu needs to serve a fetch from any offset).
pub(super) fn topic_with_messages(
    runtime: &tokio::runtime::Runtime,
    brokers: &str,
    prefix: &str,
    messages: usize,
) -> Result<String, Box<dyn std::error::Error>> {
    let topic = unique_name(prefix)?;
    runtime.block_on(crate::loadgen::ensure_topics(brokers, &[], &[topic.as_str()], 1, Duration::from_secs(30)))?;
    produce(brokers, &topic, messages)?;
    Ok(topic)
}

/// Append `messages` messages to partition 0 of `topic`, one per record batch.
pub(super) fn produce(brokers: &str, topic: &str, messages: usize) -> Result<(), Box<dyn std::error::Error>> {
    if messages > 0 {
        let producer: BaseProducer =
            ClientConfig::new().set("bootstrap.servers", brokers).set("batch.num.messages", "1").create()?;
        for i in 0..messages {
            producer.send(BaseRecord::<(), _>::to(topic).payload(&format!("m{i}"))).map_err(|(error, _)| error)?;
        }
        producer.flush(Duration::from_secs(10))?;
    }
    Ok(())
}

/// A fresh local lake's dir and the poller's event receiver, kept alive by the test.
pub(super) type FreshLake = (tempfile::TempDir, EventReceiver);

/// A member of group `topic` on `brokers` (as [`group_member`] makes it) with a poller context
/// over a fresh local lake (as [`context_over_a_fresh_lake`] makes it, 5 s offset queries);
/// the returned dir and receiver keep the lake and the channel alive.
pub(super) fn member_over_a_fresh_lake(
    runtime: &tokio::runtime::Runtime,
    brokers: &str,
    topic: &str,
) -> Result<(FreshLake, BaseConsumer<PollerContext>), Box<dyn std::error::Error>> {
    let (lake, context) = context_over_a_fresh_lake(runtime, topic, Duration::from_secs(5))?;
    Ok((lake, group_member(brokers, topic).create_with_context(context)?))
}

/// A poller context for `group` over a fresh local lake; the returned dir and event receiver
/// keep the lake and the channel alive as long as the test holds them.
pub(super) fn context_over_a_fresh_lake(
    runtime: &tokio::runtime::Runtime,
    group: &str,
    offset_query_timeout: Duration,
) -> Result<(FreshLake, PollerContext), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (receiver, context) = context_over_lake(runtime, dir.path(), group, StartFrom::Earliest, offset_query_timeout)?;
    Ok(((dir, receiver), context))
}

/// A poller context for `group` over the local lake at `lake`, with its event receiver.
pub(super) fn context_over_lake(
    runtime: &tokio::runtime::Runtime,
    lake: &std::path::Path,
    group: &str,
    start_from: StartFrom,
    offset_query_timeout: Duration,
) -> Result<(EventReceiver, PollerContext), Box<dyn std::error::Error>> {
    let store = runtime.block_on(LakeStore::open(&lake.display().to_string(), &Default::default()))?;
    let (events, receiver) = event_channel(16);
    let context = PollerContext::new(
        events,
        Arc::new(LakeWriter::new(store, ParquetOptions::default())),
        runtime.handle().clone(),
        group.to_owned(),
        start_from,
        offset_query_timeout,
        Metrics::new(&MetricsConfig::default()),
    );
    Ok((receiver, context))
}

/// The sum of `driftwatch_consumer_errors_total` over every kind, and its `kind` sample.
pub(super) fn consumer_errors(metrics: &Metrics, kind: &str) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let text = metrics.encode()?;
    let all = crate::telemetry::counter_sum(&text, "driftwatch_consumer_errors_total{");
    let of_kind = crate::telemetry::counter_sum(&text, &format!("driftwatch_consumer_errors_total{{kind=\"{kind}\"}}"));
    Ok((all, of_kind))
}

/// Run the poll loop over `consumer` for `how_long` or until `on_event`, which sees every
/// event it forwards, returns true; then stop it. Revokes and losses are answered as the
/// processing loop would.
pub(super) fn poll_for(
    runtime: &tokio::runtime::Runtime,
    consumer: &BaseConsumer<PollerContext>,
    receiver: &mut EventReceiver,
    how_long: Duration,
    mut on_event: impl FnMut(&Event) -> bool,
) {
    // The daemon's command channel's type; this test sends a handful.
    #[allow(clippy::disallowed_methods)]
    let (commands, command_receiver) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(move || poll_loop(consumer, &command_receiver));
        let deadline = tokio::time::Instant::now() + how_long;
        runtime.block_on(async {
            while let Ok(Some(event)) = tokio::time::timeout_at(deadline, receiver.recv()).await {
                let done = on_event(&event);
                match event {
                    Event::Revoked { reply, .. } => drop(reply.send(Vec::new())),
                    Event::Lost { done, .. } => drop(done.send(())),
                    _ => {}
                }
                if done {
                    break;
                }
            }
        });
        let _ = commands.send(Command::Stop(Vec::new()));
    });
}
