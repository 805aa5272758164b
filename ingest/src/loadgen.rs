//! `driftwatch loadgen`: the synthetic fleet, produced to Kafka in the wire formats real apps
//! use, at a target rate or as fast as the broker takes it, with the truth of what was sent.
//!
//! Records come from [`crate::fleet`]; each app is assigned a wire format (OTLP protobuf,
//! OTLP/JSON or JSON events; `mixed` rotates them across apps) and its messages go to the
//! spans, logs or events topic. Messages are keyed by trace id (see [`WireMessage::key`]), so
//! they spread over the partitions, and a JSON call and its feedback share one. The [`Truth`]
//! counts only messages the broker acknowledged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use crate::fleet::files::{FleetRouter, FormatMix};
use crate::fleet::{Fleet, FleetConfig, Stream, Truth, WireMessage};

/// Errors that stop a load run.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("kafka: {context}: {source}")]
    Kafka {
        context: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A producer property librdkafka refused, worded so that no secret is printed.
    #[error("kafka: creating the producer: {0}")]
    Property(String),
    #[error("creating topic {topic}: {code}")]
    CreateTopic { topic: String, code: RDKafkaErrorCode },
    #[error(
        "{failed} of {sent} messages were refused by the producer or not acknowledged by the broker ({first}); the \
         truth would be wrong"
    )]
    Undelivered { failed: u64, sent: u64, first: String },
    #[error(
        "topic {topic} does not exist on the broker ({code}, still after {TOPIC_APPEARANCE_WAIT:?}); create it, or \
         pass --create-partitions N to have loadgen create the three topics"
    )]
    MissingTopic { topic: String, code: RDKafkaErrorCode },
    #[error("{in_flight} messages were still undelivered after {stalled:?} without any delivery; is the broker up?")]
    Stalled { in_flight: i32, stalled: Duration },
}

/// Topics for each stream.
#[derive(Debug, Clone)]
pub struct LoadTopics {
    /// OTLP traces.
    pub spans: String,
    /// OTLP logs (feedback events).
    pub logs: String,
    /// JSON events.
    pub events: String,
}

impl LoadTopics {
    /// The design's default topic names behind `prefix`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            spans: format!("{prefix}otlp_spans"),
            logs: format!("{prefix}otlp_logs"),
            events: format!("{prefix}llm_events"),
        }
    }

    fn for_stream(&self, stream: Stream) -> &str {
        match stream {
            Stream::Spans => &self.spans,
            Stream::Logs => &self.logs,
            Stream::Events => &self.events,
        }
    }

    /// All three names.
    pub fn all(&self) -> [&str; 3] {
        [&self.spans, &self.logs, &self.events]
    }

    /// The `[lake]` and `[kafka]` sections of a daemon config that consumes these topics from
    /// the beginning, each with its format; tests and benches append their own sections.
    pub fn daemon_config(&self, brokers: &str, group_id: &str, lake_location: &str) -> String {
        format!(
            r#"[lake]
location = "{lake}"

[kafka]
brokers = "{brokers}"
group_id = "{group_id}"
start_from = "earliest"

[[kafka.topics]]
name = "{spans}"
format = "otlp_traces"

[[kafka.topics]]
name = "{logs}"
format = "otlp_logs"

[[kafka.topics]]
name = "{events}"
format = "json_events"
"#,
            lake = lake_location,
            spans = self.spans,
            logs = self.logs,
            events = self.events,
        )
    }
}

/// One load run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Bootstrap servers.
    pub brokers: String,
    /// Target topics.
    pub topics: LoadTopics,
    /// The fleet to generate.
    pub fleet: FleetConfig,
    /// Wire formats.
    pub formats: FormatMix,
    /// Spans batched into one OTLP message.
    pub spans_per_message: usize,
    /// Messages per second; 0 = as fast as possible.
    pub rate: u64,
    /// Extra librdkafka producer properties.
    pub librdkafka: Vec<(String, String)>,
    /// The partition count the topics were created with, when loadgen created them: a topic
    /// that already existed with another count is warned about.
    pub created_partitions: Option<usize>,
}

/// What a run sent.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Acknowledged messages and the rows they must yield.
    pub truth: Truth,
    /// Wall time.
    pub elapsed: Duration,
}

/// Counts the messages that will never be delivered: refused by librdkafka before queueing, or
/// failed in a delivery report.
#[derive(Debug, Default)]
struct DeliveryTally {
    failed: AtomicU64,
    /// The first failure, to name in the run's error.
    first_failure: Mutex<Option<String>>,
}

impl DeliveryTally {
    /// Count a failure; `describe` words it when it is the first.
    fn fail(&self, describe: impl FnOnce() -> String) {
        if self.failed.fetch_add(1, Ordering::Relaxed) == 0
            && let Ok(mut first) = self.first_failure.lock()
        {
            *first = Some(describe());
        }
    }
}

#[derive(Debug, Clone)]
struct TallyContext(Arc<DeliveryTally>);

impl rdkafka::ClientContext for TallyContext {}

impl ProducerContext for TallyContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        if let Err((error, message)) = result {
            self.0.fail(|| format!("first: {error}, for topic {}", message.topic()));
        }
    }
}

/// Create topics that do not exist yet (brokers like Tansu do not auto-create).
///
/// A broker that has only just started may not answer admin requests yet: a timed-out
/// attempt is retried, once a second, until `timeout` has passed. `properties` are the
/// producer's librdkafka properties (TLS, SASL), which the admin client needs as much.
pub async fn ensure_topics(
    brokers: &str,
    properties: &[(String, String)],
    topics: &[&str],
    partitions: i32,
    timeout: Duration,
) -> Result<(), LoadgenError> {
    let admin: AdminClient<DefaultClientContext> = client_config(brokers, &[], properties)
        .create()
        .map_err(|source| LoadgenError::Property(describe_property(&source)))?;
    let new_topics: Vec<NewTopic<'_>> =
        topics.iter().map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(1))).collect();
    let deadline = Instant::now() + timeout;
    let results = loop {
        let attempt = CREATE_TOPICS_ATTEMPT.min(deadline.saturating_duration_since(Instant::now()));
        let options = AdminOptions::new().operation_timeout(Some(attempt)).request_timeout(Some(attempt));
        match admin.create_topics(&new_topics, &options).await {
            Err(KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut)) if Instant::now() < deadline => {
                tracing::info!(brokers, "The broker did not answer the topic creation yet; retrying.");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => {
                break other.map_err(|source| LoadgenError::Kafka { context: "creating topics".to_owned(), source })?;
            }
        }
    };
    for result in results {
        if let Err((topic, code)) = result
            && code != RDKafkaErrorCode::TopicAlreadyExists
        {
            return Err(LoadgenError::CreateTopic { topic, code });
        }
    }
    Ok(())
}

/// How long one topic-creation request may take before it is retried.
const CREATE_TOPICS_ATTEMPT: Duration = Duration::from_secs(10);

/// How long delivery may make no progress at all before `loadgen` gives up on the rest.
const DELIVERY_STALL_LIMIT: Duration = Duration::from_secs(60);

/// Wait until every queued message is delivered or has failed. A slow broker is waited for as
/// long as deliveries keep completing (a backlog of small batches can take minutes); only a
/// stall of [`DELIVERY_STALL_LIMIT`] is an error.
fn drain<C: ProducerContext>(producer: &ThreadedProducer<C>) -> Result<(), LoadgenError> {
    let mut in_flight = producer.in_flight_count();
    let mut last_progress = Instant::now();
    loop {
        match producer.flush(Duration::from_secs(5)) {
            Ok(()) => return Ok(()),
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {
                let now_in_flight = producer.in_flight_count();
                if now_in_flight < in_flight {
                    in_flight = now_in_flight;
                    last_progress = Instant::now();
                } else if last_progress.elapsed() >= DELIVERY_STALL_LIMIT {
                    return Err(LoadgenError::Stalled { in_flight: now_in_flight, stalled: DELIVERY_STALL_LIMIT });
                }
            }
            Err(source) => {
                return Err(LoadgenError::Kafka { context: "flushing the producer".to_owned(), source });
            }
        }
    }
}

/// Loadgen's producer settings, which `--producer-property` may override.
const PRODUCER_DEFAULTS: [(&str, &str); 7] = [
    ("linger.ms", "5"),
    ("batch.num.messages", "10000"),
    ("queue.buffering.max.kbytes", "262144"),
    ("compression.type", "lz4"),
    ("acks", "all"),
    // Retries could duplicate messages and skew the truth; on loopback they are not needed.
    ("enable.idempotence", "false"),
    ("message.send.max.retries", "0"),
];

/// A client of `brokers` with `defaults`, then the operator's `properties` over them.
fn client_config(brokers: &str, defaults: &[(&str, &str)], properties: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (key, value) in defaults {
        config.set(*key, *value);
    }
    for (key, value) in properties {
        config.set(key, value);
    }
    config
}

/// A refused property, named as the command line sets it, with no secret's value.
fn describe_property(error: &KafkaError) -> String {
    crate::source::kafka::client::describe_property_error(error, |key| format!("--producer-property {key}"), |_| false)
}

/// Produce the fleet. Blocking (librdkafka's producer thread does the I/O); run it on a
/// blocking thread from async code.
pub fn produce(options: &LoadOptions) -> Result<LoadReport, LoadgenError> {
    let started = Instant::now();
    let tally = Arc::new(DeliveryTally::default());
    let producer: ThreadedProducer<TallyContext> =
        client_config(&options.brokers, &PRODUCER_DEFAULTS, &options.librdkafka)
            .create_with_context(TallyContext(Arc::clone(&tally)))
            .map_err(|source| LoadgenError::Property(describe_property(&source)))?;

    let partitions = topic_partitions(&producer, &options.topics)?;
    tracing::info!(
        spans = %options.topics.spans,
        spans_partitions = partitions[0],
        logs = %options.topics.logs,
        logs_partitions = partitions[1],
        events = %options.topics.events,
        events_partitions = partitions[2],
        "Producing to the topics."
    );
    for (topic, &found) in options.topics.all().into_iter().zip(&partitions) {
        if let Some(asked) = options.created_partitions.filter(|&asked| asked != found) {
            tracing::warn!(
                topic,
                partitions = found,
                asked,
                "The topic already existed with another partition count; loadgen does not change it."
            );
        }
    }

    let fleet = Fleet::new(options.fleet.clone());
    let mut router = FleetRouter::new(
        &fleet,
        options.formats,
        options.spans_per_message,
        options.fleet.malformed_ratio,
        options.fleet.seed,
    );
    let mut truth = Truth::default();
    let mut out: Vec<WireMessage> = Vec::new();
    let mut sends = Sends::default();
    let pace = Pacer::new(options.rate);
    for record in fleet.records() {
        router.push(&record, &mut out);
        send_all(&producer, &options.topics, &mut out, &mut truth, &mut sends, &pace);
    }
    router.finish(&mut out);
    send_all(&producer, &options.topics, &mut out, &mut truth, &mut sends, &pace);
    drain(&producer)?;
    let failed = tally.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = tally.first_failure.lock().ok().and_then(|mut first| first.take()).unwrap_or_default();
        return Err(LoadgenError::Undelivered { failed, sent: sends.attempted(), first });
    }
    Ok(LoadReport { truth, elapsed: started.elapsed() })
}

/// How long the topics' metadata may take to arrive.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a topic the brokers do not know yet is asked about again: a topic just created is
/// unknown to the brokers other than the controller until its metadata reaches them
/// (`UNKNOWN_TOPIC_OR_PARTITION`, `LEADER_NOT_AVAILABLE` for a moment on Kafka and Redpanda).
const TOPIC_APPEARANCE_WAIT: Duration = Duration::from_secs(10);

/// The partition count of each topic (spans, logs, events), failing for a topic the broker does
/// not have: producing to it would only fail message by message after `message.timeout.ms`.
fn topic_partitions<C: ProducerContext>(
    producer: &ThreadedProducer<C>,
    topics: &LoadTopics,
) -> Result<[usize; 3], LoadgenError> {
    let mut counts = [0; 3];
    for (count, topic) in counts.iter_mut().zip(topics.all()) {
        let deadline = Instant::now() + TOPIC_APPEARANCE_WAIT;
        *count = loop {
            let metadata = producer.client().fetch_metadata(Some(topic), METADATA_TIMEOUT).map_err(|source| {
                LoadgenError::Kafka { context: format!("reading the metadata of topic {topic}"), source }
            })?;
            let found = metadata.topics().iter().find(|t| t.name() == topic);
            let code = match found.map(|t| (t.error(), t.partitions().len())) {
                Some((None, partitions)) if partitions > 0 => break partitions,
                Some((Some(code), _)) => code.into(),
                _ => RDKafkaErrorCode::UnknownTopicOrPartition,
            };
            if Instant::now() >= deadline {
                return Err(LoadgenError::MissingTopic { topic: topic.to_owned(), code });
            }
            std::thread::sleep(Duration::from_millis(500));
        };
    }
    Ok(counts)
}

fn send_all(
    producer: &ThreadedProducer<TallyContext>,
    topics: &LoadTopics,
    out: &mut Vec<WireMessage>,
    truth: &mut Truth,
    sends: &mut Sends,
    pace: &Pacer,
) {
    for message in out.drain(..) {
        pace.wait(sends.attempted());
        let topic = topics.for_stream(message.stream);
        let mut record = BaseRecord::to(topic).payload(&message.payload);
        if let Some(key) = &message.key {
            record = record.key(key);
        }
        let mut pending = record;
        loop {
            match producer.send(pending) {
                Ok(()) => {
                    truth.observe(&message);
                    sends.enqueued += 1;
                    break;
                }
                Err((error, returned)) => {
                    if error.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) {
                        std::thread::sleep(Duration::from_millis(5));
                        pending = returned;
                    } else {
                        // No delivery report comes for a message librdkafka refused to queue
                        // (too large, unknown partition...): it is counted here, and the run
                        // fails at the end rather than print a truth that includes it.
                        if sends.refused == 0 {
                            tracing::warn!(%error, topic, "Could not enqueue a message; the run will fail.");
                        }
                        producer.context().0.fail(|| format!("first: {error}, for topic {topic}"));
                        sends.refused += 1;
                        break;
                    }
                }
            }
        }
    }
}

/// Messages handed to librdkafka so far.
#[derive(Debug, Default, Clone, Copy)]
struct Sends {
    /// Queued for delivery: each gets a delivery report.
    enqueued: u64,
    /// Refused before queueing: never delivered (counted in the tally's failures too).
    refused: u64,
}

impl Sends {
    fn attempted(self) -> u64 {
        self.enqueued + self.refused
    }
}

/// Keeps a target message rate by sleeping when ahead of schedule.
#[derive(Debug)]
struct Pacer {
    rate: u64,
    started: Instant,
}

impl Pacer {
    fn new(rate: u64) -> Self {
        Self { rate, started: Instant::now() }
    }

    fn wait(&self, sent: u64) {
        if self.rate == 0 {
            return;
        }
        let due = Duration::from_secs_f64(sent as f64 / self.rate as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error creating an admin client with `properties` gives, as text.
    async fn refusal(key: &str, value: &str) -> String {
        let properties = vec![(key.to_owned(), value.to_owned())];
        ensure_topics("127.0.0.1:1", &properties, &["t"], 1, Duration::from_secs(1))
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_refused_producer_property_is_named_without_its_value() {
        let err = refusal("sasl.passwd", "hunter2SECRET").await;
        assert!(err.contains("--producer-property sasl.passwd") && !err.contains("hunter2SECRET"), "{err}");
        let err = refusal("linger.ms", "soon").await;
        assert!(err.contains("--producer-property linger.ms = \"soon\""), "a known, non-secret value is shown: {err}");
    }
}
