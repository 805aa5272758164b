//! Live metrics: pipeline stages report events here; they leave as OpenMetrics
//! text through [`Metrics::encode`] (served on `/metrics` by [`super::http`]).
//!
//! [`Metrics`] is a cheap clonable handle. GenAI series (DESIGN §6) go through
//! the capped series cache in `genai`; pipeline-health metrics have naturally
//! bounded labels (topics, partitions, fixed `&'static str` reason codes).
//! Each internal event is one method that counts and logs together (STYLE 12),
//! except consumer errors, which their callers log with their context;
//! logs on paths that can fire per message are limited to the first and then
//! every [`LOG_EVERY`]th occurrence per label set, with the running total as a
//! field, so a flood of bad input cannot flood the log.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use driftwatch_lake::layout::FileKind;
use driftwatch_lake::model::{FeedbackEvent, InferenceEvent, UnixNanos};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::genai::{GenAi, counter_name};
use super::names::*;
use super::partitions::{AgeSince, CheckpointCollector, LagCollector, PassedOver};
use crate::FastHashMap;

/// Per-message log lines are written for the first and then every this-many occurrences.
pub const LOG_EVERY: u64 = 1_000;

/// Settings of the live metrics (`[metrics]` in the config file).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Most distinct (app, environment, provider, model, operation) label sets.
    /// Bounds Prometheus memory; further sets fold into `app="__overflow__"`.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
}

fn default_max_series() -> usize {
    2_000
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { max_series: default_max_series() }
    }
}

/// Errors from the metrics module.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The registry could not be written as text; the scrape should fail (HTTP 500)
    /// rather than serve a truncated exposition.
    #[error("cannot encode metrics as OpenMetrics text: {0}")]
    Encode(#[from] std::fmt::Error),
}

/// Result of metrics operations.
pub type Result<T, E = MetricsError> = std::result::Result<T, E>;

/// Outcome of one source message (the `result` label of `driftwatch_messages_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageResult {
    /// Every item decoded.
    Ok,
    /// Some items decoded, some were dead-lettered.
    Partial,
    /// Nothing usable: the whole message was dead-lettered.
    Rejected,
    /// Nothing to ingest by design (e.g. only non-inference spans).
    Skipped,
}

impl MessageResult {
    const ALL: [MessageResult; 4] = [Self::Ok, Self::Partial, Self::Rejected, Self::Skipped];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Rejected => "rejected",
            Self::Skipped => "skipped",
        }
    }
}

/// Why the lake buffer was flushed (the `reason` label of `driftwatch_flushes_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReason {
    /// Row count limit reached.
    Rows,
    /// Byte budget reached.
    Bytes,
    /// Oldest buffered row reached the age limit.
    Age,
    /// The rollup aggregator hit `max_open_keys`.
    Keys,
    /// Partitions were revoked (rebalance).
    Revoke,
    /// The daemon is shutting down.
    Shutdown,
    /// All partitions together exceeded the memory budget; this buffer was the largest.
    Memory,
    /// A file source reached its end.
    EndOfInput,
    /// The source's offsets went backwards (topic recreated): flushed before a new epoch.
    OffsetReset,
}

impl FlushReason {
    const ALL: [FlushReason; 9] = [
        Self::Rows,
        Self::Bytes,
        Self::Age,
        Self::Keys,
        Self::Revoke,
        Self::Shutdown,
        Self::Memory,
        Self::EndOfInput,
        Self::OffsetReset,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rows => "rows",
            Self::Bytes => "bytes",
            Self::Age => "age",
            Self::Keys => "keys",
            Self::Revoke => "revoke",
            Self::Shutdown => "shutdown",
            Self::Memory => "memory",
            Self::EndOfInput => "end_of_input",
            Self::OffsetReset => "offset_reset",
        }
    }
}

/// What kind of source consumer error it was (the `kind` label of
/// `driftwatch_consumer_errors_total`); every kind's series is created at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerErrorKind {
    /// librdkafka lost every broker (counted once per outage).
    AllBrokersDown,
    /// A broker connection failed.
    Transport,
    /// The brokers refused the client's credentials or ACLs.
    Auth,
    /// librdkafka cannot go on with this client; the daemon stops.
    Fatal,
    /// Any other client error librdkafka reported.
    Client,
    /// An assignment could not be applied.
    Assign,
    /// A rebalance callback failed.
    Rebalance,
    /// An advisory offset commit to Kafka failed.
    Commit,
    /// The group took the assignment away without a revoke (session timed out).
    AssignmentLost,
    /// A lake checkpoint lies below the log's start: retention deleted messages never read.
    OffsetsLostToRetention,
    /// librdkafka reset a partition's position (no valid offset to resume from).
    OffsetReset,
    /// An assigned partition could not be recovered from the lake.
    LakeRecover,
    /// A flush could not be written to the lake (retried).
    LakeWrite,
    /// Another writer claimed a partition in the lake.
    LakeClaimLost,
}

impl ConsumerErrorKind {
    pub(crate) const ALL: [ConsumerErrorKind; 14] = [
        Self::AllBrokersDown,
        Self::Transport,
        Self::Auth,
        Self::Fatal,
        Self::Client,
        Self::Assign,
        Self::Rebalance,
        Self::Commit,
        Self::AssignmentLost,
        Self::OffsetsLostToRetention,
        Self::OffsetReset,
        Self::LakeRecover,
        Self::LakeWrite,
        Self::LakeClaimLost,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllBrokersDown => "all_brokers_down",
            Self::Transport => "transport",
            Self::Auth => "auth",
            Self::Fatal => "fatal",
            Self::Client => "client",
            Self::Assign => "assign",
            Self::Rebalance => "rebalance",
            Self::Commit => "commit",
            Self::AssignmentLost => "assignment_lost",
            Self::OffsetsLostToRetention => "offsets_lost_to_retention",
            Self::OffsetReset => "offset_reset",
            Self::LakeRecover => "lake_recover",
            Self::LakeWrite => "lake_write",
            Self::LakeClaimLost => "lake_claim_lost",
        }
    }
}

type StaticLabel = [(&'static str, &'static str); 1];
type TopicLabel = [(&'static str, Arc<str>); 1];
pub(super) type TopicPartition = (TopicLabel, [(&'static str, i32); 1]);

/// Clonable handle on the registry and every metric in it.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    genai: GenAi,
    messages: Family<(TopicLabel, StaticLabel), Counter>,
    /// Topic -> counters in `MessageResult::ALL` order, so the per-message
    /// path is a read-locked lookup by `&str`.
    message_counters: RwLock<FastHashMap<Box<str>, [Counter; 4]>>,
    spans_skipped: Counter,
    reported_costs_dropped: Counter,
    ttfts_dropped: Counter,
    duplicates_dropped: Counter,
    redelivered: Counter,
    decode_errors: Family<StaticLabel, Counter>,
    dead_letters: Family<StaticLabel, Counter>,
    lag: Arc<LagCollector>,
    files_written: Family<StaticLabel, Counter>,
    bytes_written: Family<StaticLabel, Counter>,
    rows_written: Family<StaticLabel, Counter>,
    checkpoints: Arc<CheckpointCollector>,
    buffered_rows: Gauge,
    buffered_bytes: Gauge,
    buffered_bytes_limit: Gauge,
    flush_max_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    subscribed_topics_missing: Gauge,
    subscribed_partitions: Gauge,
    waiting_for_flush_slot: Gauge,
    kafka_brokers_available: Gauge,
    flushes: Family<StaticLabel, Counter>,
    flush_duration: Histogram,
    event_lag: Histogram,
    consumer_errors: Family<StaticLabel, Counter>,
}

/// Holds [`WAITING_FOR_FLUSH_SLOT`] at 1; see [`Metrics::waiting_for_flush_slot`].
#[derive(Debug)]
#[must_use = "the wait is shown only while the guard is held"]
pub struct FlushSlotWait(Gauge);

impl Drop for FlushSlotWait {
    fn drop(&mut self) {
        self.0.set(0);
    }
}

impl Metrics {
    /// A fresh registry with every driftwatch ingest metric registered.
    pub fn new(config: &MetricsConfig) -> Self {
        let mut registry = Registry::default();
        let genai = GenAi::register(&mut registry, config.max_series);
        let inner = Inner {
            genai,
            messages: Family::default(),
            message_counters: RwLock::default(),
            spans_skipped: Counter::default(),
            reported_costs_dropped: Counter::default(),
            ttfts_dropped: Counter::default(),
            duplicates_dropped: Counter::default(),
            redelivered: Counter::default(),
            decode_errors: Family::default(),
            dead_letters: Family::default(),
            lag: Arc::new(LagCollector::default()),
            files_written: Family::default(),
            bytes_written: Family::default(),
            rows_written: Family::default(),
            checkpoints: Arc::new(CheckpointCollector::default()),
            buffered_rows: Gauge::default(),
            buffered_bytes: Gauge::default(),
            buffered_bytes_limit: Gauge::default(),
            flush_max_age: Gauge::default(),
            subscribed_topics_missing: Gauge::default(),
            subscribed_partitions: Gauge::default(),
            waiting_for_flush_slot: Gauge::default(),
            kafka_brokers_available: Gauge::default(),
            flushes: Family::default(),
            flush_duration: Histogram::new(FLUSH_BUCKETS),
            event_lag: Histogram::new(EVENT_LAG_BUCKETS),
            consumer_errors: Family::default(),
            registry: Registry::default(),
        };
        // `Registry::register` ends each help text with a period itself (collectors' texts,
        // below and in `process`, are written as given).
        let counters = [
            (MESSAGES_TOTAL, "Source messages by outcome"),
            (SPANS_SKIPPED_TOTAL, "Spans that were not inference calls"),
            (REPORTED_COSTS_DROPPED_TOTAL, "Calls kept without the cost their producer reported, which was no amount"),
            (TTFTS_DROPPED_TOTAL, "Calls kept without their time to first token, which was longer than the call"),
            (DUPLICATES_DROPPED_TOTAL, "Events dropped as producer retries of a recently seen id"),
            (REDELIVERED_TOTAL, "Messages redelivered at an already consumed offset, skipped"),
            (DECODE_ERRORS_TOTAL, "Decode failures by reason"),
            (
                DEAD_LETTERS_TOTAL,
                "Inputs rejected to the dead_letter table, by reason (counted when rejected, before the lake has them)",
            ),
            (LAKE_FILES_WRITTEN_TOTAL, "Lake files durably written"),
            (LAKE_BYTES_WRITTEN_TOTAL, "Bytes of lake files durably written"),
            (LAKE_ROWS_WRITTEN_TOTAL, "Rows in lake files durably written"),
            (FLUSHES_TOTAL, "Lake buffer flushes by reason"),
            (CONSUMER_ERRORS_TOTAL, "Source consumer errors by kind"),
        ];
        let [
            messages,
            skipped,
            reported_costs,
            ttfts,
            duplicates,
            redelivered,
            decode,
            dead,
            files,
            bytes,
            rows,
            flushes,
            consumer,
        ] = counters.map(|(name, help)| (counter_name(name), help));
        registry.register(messages.0, messages.1, inner.messages.clone());
        registry.register(skipped.0, skipped.1, inner.spans_skipped.clone());
        registry.register(reported_costs.0, reported_costs.1, inner.reported_costs_dropped.clone());
        registry.register(ttfts.0, ttfts.1, inner.ttfts_dropped.clone());
        registry.register(duplicates.0, duplicates.1, inner.duplicates_dropped.clone());
        registry.register(redelivered.0, redelivered.1, inner.redelivered.clone());
        registry.register(decode.0, decode.1, inner.decode_errors.clone());
        registry.register(dead.0, dead.1, inner.dead_letters.clone());
        registry.register(files.0, files.1, inner.files_written.clone());
        registry.register(bytes.0, bytes.1, inner.bytes_written.clone());
        registry.register(rows.0, rows.1, inner.rows_written.clone());
        registry.register(flushes.0, flushes.1, inner.flushes.clone());
        registry.register(consumer.0, consumer.1, inner.consumer_errors.clone());
        registry.register(
            BUFFERED_ROWS,
            "Rows read and not yet in the lake: buffered, or in a flush being written",
            inner.buffered_rows.clone(),
        );
        registry.register(
            BUFFERED_BYTES,
            "Approximate bytes of the rows read and not yet in the lake (what flush.max_buffered_bytes bounds)",
            inner.buffered_bytes.clone(),
        );
        registry.register(
            BUFFERED_BYTES_LIMIT,
            "The configured flush.max_buffered_bytes budget for buffered rows",
            inner.buffered_bytes_limit.clone(),
        );
        registry.register(
            FLUSH_MAX_AGE_SECONDS,
            "The configured flush.max_age: the longest a partition's rows wait for the lake",
            inner.flush_max_age.clone(),
        );
        registry.register(
            SUBSCRIBED_TOPICS_MISSING,
            "Subscribed topics that do not exist on the brokers",
            inner.subscribed_topics_missing.clone(),
        );
        registry.register(
            SUBSCRIBED_PARTITIONS,
            "Partitions of the subscribed topics, which the consumer group's members should hold between them",
            inner.subscribed_partitions.clone(),
        );
        registry.register(
            WAITING_FOR_FLUSH_SLOT,
            "1 while reading input waits for a flush slot: every slot is held by a flush in flight, \
             because the lake is slower than the input or refusing writes",
            inner.waiting_for_flush_slot.clone(),
        );
        // Until librdkafka reports the brokers down, nothing says they are: a run with no Kafka
        // source, or a daemon still connecting, reads 1.
        inner.kafka_brokers_available.set(1);
        registry.register(
            KAFKA_BROKERS_AVAILABLE,
            "0 while every Kafka broker is unreachable or refuses this client (the /readyz reason says which), \
             else 1",
            inner.kafka_brokers_available.clone(),
        );
        registry.register(FLUSH_DURATION_SECONDS, "Duration of lake buffer flushes", inner.flush_duration.clone());
        registry.register(
            EVENT_LAG_SECONDS,
            "Seconds from an inference call's end to its reading: hours or days while a backlog is caught up, \
             when the call counters' rates are the backlog's, not the fleet's",
            inner.event_lag.clone(),
        );
        registry.register(
            BUILD_INFO.strip_suffix("_info").unwrap_or(BUILD_INFO),
            "The running driftwatch build",
            Info::new([(LABEL_VERSION, env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(Arc::clone(&inner.checkpoints)));
        registry.register_collector(Box::new(Arc::clone(&inner.lag)));
        #[cfg(target_os = "linux")]
        registry.register_collector(Box::new(super::process::ProcessCollector::new()));
        inner.create_closed_label_sets();
        Self { inner: Arc::new(Inner { registry, ..inner }) }
    }

    /// Create the `driftwatch_messages_total` series of `topic` at zero, for every result, so
    /// the first rejected message of a topic is seen by `increase()` (sources call this for
    /// each topic or file before reading it).
    pub fn track_topic(&self, topic: &str) {
        self.topic_counters(topic, |_| ());
    }

    /// Run `use_counters` on `topic`'s counters (in `MessageResult::ALL` order), creating them
    /// on first use: the per-message path is a read-locked lookup by `&str`.
    fn topic_counters(&self, topic: &str, use_counters: impl FnOnce(&[Counter; 4])) {
        {
            let map = self.inner.message_counters.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(counters) = map.get(topic) {
                return use_counters(counters);
            }
        }
        let mut map = self.inner.message_counters.write().unwrap_or_else(PoisonError::into_inner);
        let counters = map.entry(Box::from(topic)).or_insert_with(|| {
            let topic: Arc<str> = Arc::from(topic);
            MessageResult::ALL.map(|result| {
                self.inner
                    .messages
                    .get_or_create_owned(&([(LABEL_TOPIC, Arc::clone(&topic))], [(LABEL_RESULT, result.as_str())]))
            })
        });
        use_counters(counters);
    }

    /// Count one inference on its GenAI series (hot path: one map lookup plus atomics).
    pub fn observe_event(&self, event: &InferenceEvent) {
        self.inner.genai.observe_event(event);
    }

    /// Note how long after its end (`ended_at`, Unix nanoseconds) a call was read, at `read_at`.
    /// A call that ended "after" its reading (producer clock ahead) counts as read at once.
    pub fn observe_event_lag(&self, ended_at: UnixNanos, read_at: UnixNanos) {
        let lag_nanos = read_at.saturating_sub(ended_at).max(0);
        #[allow(clippy::cast_precision_loss)] // inexact beyond 2^53 ns (104 days); a bucket needs no better
        self.inner.event_lag.observe(lag_nanos as f64 / 1e9);
    }

    /// Count one feedback result on its GenAI series.
    pub fn observe_feedback(&self, feedback: &FeedbackEvent) {
        self.inner.genai.observe_feedback(feedback);
    }

    /// GenAI label sets tracked so far (the overflow series excluded).
    pub fn series_count(&self) -> usize {
        self.inner.genai.series_count()
    }

    /// Count one source message by outcome.
    pub fn record_message(&self, topic: &str, result: MessageResult) {
        let index = MessageResult::ALL.iter().position(|r| *r == result).unwrap_or(0);
        self.topic_counters(topic, |counters| {
            counters[index].inc();
        });
    }

    /// Count spans that were not inference calls (not an error: DESIGN §3.1).
    pub fn record_spans_skipped(&self, spans: u64) {
        self.inner.spans_skipped.inc_by(spans);
    }

    /// Count calls kept without the cost their producer reported (it was no amount).
    pub fn record_reported_costs_dropped(&self, calls: u64) {
        self.inner.reported_costs_dropped.inc_by(calls);
    }

    /// Count calls kept without their time to first token (it was longer than the call).
    pub fn record_ttfts_dropped(&self, calls: u64) {
        self.inner.ttfts_dropped.inc_by(calls);
    }

    /// Count (and now and then log) a decode failure.
    pub fn record_decode_error(&self, reason: &'static str) {
        debug_assert!(DECODE_ERROR_REASONS.contains(&reason), "add {reason:?} to names::DECODE_ERROR_REASONS");
        let previous = self.inner.decode_errors.get_or_create(&[(LABEL_REASON, reason)]).inc();
        if previous.is_multiple_of(LOG_EVERY) {
            tracing::debug!(reason, total = previous + 1, "Input could not be decoded.");
        }
    }

    /// Count (and now and then log) an input sent to the dead-letter lake.
    pub fn record_dead_letter(&self, reason: &'static str) {
        debug_assert!(
            DECODE_ERROR_REASONS.contains(&reason) || reason == AGGREGATE_FAILED_REASON,
            "add {reason:?} to names::DECODE_ERROR_REASONS"
        );
        let previous = self.inner.dead_letters.get_or_create(&[(LABEL_REASON, reason)]).inc();
        if previous.is_multiple_of(LOG_EVERY) {
            tracing::debug!(reason, total = previous + 1, "Input dead-lettered.");
        }
    }

    /// Note partitions' latest high watermarks (negative ones, librdkafka's "not known yet",
    /// are ignored). `driftwatch_consumer_lag` is computed from them at each scrape.
    pub fn note_high_watermarks<'a>(&self, marks: impl IntoIterator<Item = (&'a str, i32, i64)>) {
        self.inner.lag.note_high_watermarks(marks);
    }

    /// Note where the consumer stands in partitions: for each, the offset after the last message
    /// handed on since the assignment (`None`: none yet) and librdkafka's position, which is
    /// past transaction markers and aborted records it passed over. Lag counts from the
    /// position once every message handed on is in the lake (negative positions, librdkafka's
    /// "none yet", are ignored).
    pub fn note_consumer_positions<'a>(&self, positions: impl IntoIterator<Item = (&'a str, i32, Option<i64>, i64)>) {
        self.inner.lag.note_positions(positions.into_iter().map(|(topic, partition, handed_on_to, position)| {
            (topic, partition, PassedOver { handed_on_to, position })
        }));
    }

    /// Note, for partitions this process owns, the offset after the last message handed on:
    /// lag counts up to it at least, however old the last high watermark is.
    pub fn note_handed_on<'a>(&self, positions: impl IntoIterator<Item = (&'a str, i32, i64)>) {
        self.inner.lag.note_handed_on(positions);
    }

    /// Note that this process owns a partition, and the offset its lag counts from: where its
    /// lake data ends, or where consumption started before the first flush (`None`: nothing
    /// read yet, lag 0).
    pub fn set_lag_start(&self, topic: &str, partition: i32, next_offset: Option<i64>) {
        self.inner.lag.set_start(topic, partition, next_offset);
    }

    /// Count lake files durably written (after rename), with their rows and bytes.
    pub fn record_files_written(&self, kind: &'static str, files: u64, rows: u64, bytes: u64) {
        let labels = [(LABEL_KIND, kind)];
        self.inner.files_written.get_or_create(&labels).inc_by(files);
        self.inner.rows_written.get_or_create(&labels).inc_by(rows);
        self.inner.bytes_written.get_or_create(&labels).inc_by(bytes);
    }

    /// Count one event or feedback dropped as a producer retry.
    pub fn record_duplicate(&self) {
        self.inner.duplicates_dropped.inc();
    }

    /// Count one message skipped because its offset was already consumed.
    pub fn record_redelivery(&self) {
        self.inner.redelivered.inc();
    }

    /// Forget a partition this process no longer owns, so its lag and checkpoint age are
    /// reported by the new owner only.
    pub fn remove_partition(&self, topic: &str, partition: i32) {
        self.inner.lag.forget(topic, partition);
        self.inner.checkpoints.forget(topic, partition);
    }

    /// Note a committed checkpoint; `driftwatch_checkpoint_age_seconds` is
    /// computed from it at each scrape.
    pub fn record_checkpoint(&self, topic: &str, partition: i32, at: SystemTime) {
        self.inner.checkpoints.note(topic, partition, AgeSince::Checkpoint(at));
    }

    /// Note a partition assigned with no lake checkpoint yet: its checkpoint age counts from
    /// `at` until its first checkpoint, so that a partition that never gets one (a lake that
    /// refuses every write since the start) shows a growing age, as a stalled one does.
    pub fn record_assigned_without_checkpoint(&self, topic: &str, partition: i32, at: SystemTime) {
        self.inner.checkpoints.note(topic, partition, AgeSince::Assignment(at));
    }

    /// Set the rows and bytes currently buffered for the lake.
    pub fn set_buffered(&self, rows: usize, bytes: usize) {
        self.inner.buffered_rows.set(i64::try_from(rows).unwrap_or(i64::MAX));
        self.inner.buffered_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Whether the Kafka brokers can be used: 0 while librdkafka reports them all down or they
    /// refuse the client.
    pub fn set_kafka_brokers_available(&self, available: bool) {
        self.inner.kafka_brokers_available.set(i64::from(available));
    }

    /// Mark input as waiting for a flush slot until the returned guard is dropped. Shown while
    /// the wait lasts (the processing loop, blocked in it, updates no other gauge meanwhile);
    /// the guard also clears it when the wait is cancelled.
    pub fn waiting_for_flush_slot(&self) -> FlushSlotWait {
        self.inner.waiting_for_flush_slot.set(1);
        FlushSlotWait(self.inner.waiting_for_flush_slot.clone())
    }

    /// Set the configured budget for buffered bytes (`flush.max_buffered_bytes`).
    pub fn set_buffered_bytes_limit(&self, bytes: usize) {
        self.inner.buffered_bytes_limit.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Set the configured `flush.max_age`.
    pub fn set_flush_max_age(&self, max_age: std::time::Duration) {
        self.inner.flush_max_age.set(max_age.as_secs_f64());
    }

    /// Set how many subscribed topics the brokers do not have, and how many partitions those
    /// they have hold.
    pub fn set_subscribed_topics(&self, missing: usize, partitions: usize) {
        self.inner.subscribed_topics_missing.set(i64::try_from(missing).unwrap_or(i64::MAX));
        self.inner.subscribed_partitions.set(i64::try_from(partitions).unwrap_or(i64::MAX));
    }

    /// Count one flush of the lake buffer and its duration.
    pub fn record_flush(&self, reason: FlushReason, seconds: f64) {
        self.inner.flushes.get_or_create(&[(LABEL_REASON, reason.as_str())]).inc();
        self.inner.flush_duration.observe(seconds);
        tracing::debug!(reason = reason.as_str(), seconds, "Lake buffer flushed.");
    }

    /// Count a source consumer error. Not logged here: every caller logs it with what only
    /// it knows (the error, the partition), rate limited where it can repeat; a second line
    /// here said the same thing twice.
    pub fn record_consumer_error(&self, kind: ConsumerErrorKind) {
        self.inner.consumer_errors.get_or_create(&[(LABEL_KIND, kind.as_str())]).inc();
    }

    /// The whole registry as OpenMetrics text (ending in `# EOF`).
    pub fn encode(&self) -> Result<String> {
        self.inner.genai.end_scrape(std::time::Instant::now());
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)?;
        Ok(text)
    }
}

impl Inner {
    /// Create at zero every series whose label values are a closed set known here (reasons,
    /// kinds), so `increase()` and `rate()` see their first event and dashboards show 0 rather
    /// than no data. Topics are created when a source names them ([`Metrics::track_topic`]),
    /// GenAI label sets (unknown until events arrive) when first seen.
    fn create_closed_label_sets(&self) {
        for reason in DECODE_ERROR_REASONS {
            self.decode_errors.get_or_create_owned(&[(LABEL_REASON, reason)]);
            self.dead_letters.get_or_create_owned(&[(LABEL_REASON, reason)]);
        }
        self.dead_letters.get_or_create_owned(&[(LABEL_REASON, AGGREGATE_FAILED_REASON)]);
        for kind in ConsumerErrorKind::ALL {
            self.consumer_errors.get_or_create_owned(&[(LABEL_KIND, kind.as_str())]);
        }
        for reason in FlushReason::ALL {
            self.flushes.get_or_create_owned(&[(LABEL_REASON, reason.as_str())]);
        }
        for kind in [FileKind::Events, FileKind::Feedback, FileKind::Rollups, FileKind::DeadLetter] {
            let labels = [(LABEL_KIND, kind.as_str())];
            self.files_written.get_or_create_owned(&labels);
            self.rows_written.get_or_create_owned(&labels);
            self.bytes_written.get_or_create_owned(&labels);
        }
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
