//! The poll thread: the only owner of the rdkafka consumer.
//!
//! It polls librdkafka, detaches messages and forwards them, in order, through one bounded
//! channel to the processing loop, together with control events (partitions assigned or
//! revoked, fatal broker errors). High watermarks from librdkafka's statistics are not sent
//! but noted in the metrics, where lag is computed at each scrape: a backlog that fills the
//! channel is when lag matters most. Rebalances are handled here, inside librdkafka's
//! callback, because that is the only place where a partition can still be flushed before it is
//! released:
//!
//! - **assign**: recover each partition from the lake (removing files of a flush that never
//!   committed) and assign it at the lake checkpoint, so Kafka's own committed offsets are only
//!   advisory; then tell the loop where each partition starts. An unavailable lake is waited
//!   for with backoff, until it answers or shutdown begins (the assignment is then released
//!   unconsumed: nothing of it was read). Each checkpoint is compared
//!   with the log's watermarks; when that query fails (a broker just restarted), the poll loop
//!   asks again with backoff until the partition delivers a message, because a broker may
//!   answer a fetch past a recreated log's end with nothing rather than an offset reset.
//! - **revoke**: hand the loop everything already read, ask it to flush and checkpoint the revoked
//!   partitions, wait for its answer, commit those offsets to Kafka synchronously, and only then
//!   release the partitions.
//!
//! Messages travel in batches: after a poll returns a message the thread keeps polling without
//! waiting, gathering what librdkafka has already fetched (up to [`BATCH_MAX_MESSAGES`](super::held::BATCH_MAX_MESSAGES) or
//! [`BATCH_MAX_BYTES`](super::held::BATCH_MAX_BYTES)) into one event. Handing messages over one at a time woke the processing
//! loop once per message, and each wake-up cost about as much CPU as decoding the message.
//!
//! Backpressure: when the channel is full the thread holds the message and stops polling for
//! up to [`PAUSE_AFTER`](super::held::PAUSE_AFTER), waiting for room; librdkafka keeps its prefetched messages, so a
//! short stall (a flush in progress) costs no refetch. A longer stall pauses every assigned
//! partition and polls again (so group membership and callbacks stay alive) until the loop
//! catches up, then resumes. Pausing purges librdkafka's prefetch queue, which is why it is
//! kept for real stalls: pausing at every full channel turned a busy daemon into a cycle of
//! purges and refetches. Only already-fetched messages can be held, and librdkafka bounds those
//! with `queued.max.messages.kbytes`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::OwnedMessage;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{ClientContext, Message};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use driftwatch_lake::checkpoint::Checkpoint;
use driftwatch_lake::writer::LakeWriter;

use super::channel::{AssignedPartition, Command, Event, EventSender};
use super::held::{Backpressure, Held, decide_backpressure};
use crate::FastHashMap;
use crate::config::StartFrom;
use crate::telemetry::Metrics;

/// How long a revoke waits for the loop to flush the revoked partitions before giving up and
/// releasing them anyway (the new owner then replays from the last checkpoint).
const REVOKE_TIMEOUT: Duration = Duration::from_secs(120);

/// Poll timeout: also the latency of commands (commit, stop).
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Shortest interval between two log lines of the same kind of consumer error.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// When each kind of consumer error was last logged. Per kind, so that a flood of one (a
/// broker going away) does not hide the first of another (an authentication failure).
#[derive(Debug, Default)]
struct ErrorLogLimit(FastHashMap<&'static str, Instant>);

impl ErrorLogLimit {
    /// Whether an error of `kind` occurring at `now` is to be logged.
    fn allow(&mut self, kind: &'static str, now: Instant) -> bool {
        match self.0.get_mut(kind) {
            Some(last) if now.saturating_duration_since(*last) < ERROR_LOG_EVERY => false,
            Some(last) => {
                *last = now;
                true
            }
            None => {
                self.0.insert(kind, now);
                true
            }
        }
    }
}

/// How often subscribed topics are looked up while nothing is assigned.
const TOPIC_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// The same check while partitions are assigned: a misspelt topic beside working ones would
/// otherwise go unnoticed.
const TOPIC_CHECK_INTERVAL_WHILE_ASSIGNED: Duration = Duration::from_secs(60);

/// Wait between attempts to forward held messages while not polling.
const HELD_RETRY: Duration = Duration::from_millis(1);

/// The consumer's context: rebalance, statistics and error callbacks.
pub struct PollerContext {
    events: EventSender,
    held: Mutex<Held>,
    writer: Arc<LakeWriter>,
    runtime: tokio::runtime::Handle,
    group_id: String,
    start_from: StartFrom,
    offset_query_timeout: Duration,
    metrics: Metrics,
    /// Set once shutdown has flushed everything: revokes then just release.
    stopping: AtomicBool,
    /// Cancelled as soon as the daemon starts shutting down: ends the wait for the lake
    /// during an assignment, which runs inside the rebalance callback where no command from
    /// the loop can reach the poll thread.
    pub shutdown: CancellationToken,
    /// Partitions currently assigned (for readiness).
    pub assigned: Arc<AtomicUsize>,
    /// Whether the brokers answer, and whether they refuse this client (for readiness).
    pub brokers: Arc<BrokerHealth>,
    /// Subscribed topics the brokers do not know, checked while nothing is assigned (for
    /// readiness: "no partitions assigned" alone does not say a topic is missing).
    pub missing_topics: Arc<Mutex<Vec<String>>>,
    error_logs: Mutex<ErrorLogLimit>,
}

impl std::fmt::Debug for PollerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollerContext").field("group_id", &self.group_id).finish_non_exhaustive()
    }
}

/// An assignment recovered from the lake: where librdkafka starts each partition, and what
/// the processing loop is told of each (topic, partition, resume offset).
type RecoveredAssignment = (TopicPartitionList, Vec<AssignedPartition>);

/// The lake checkpoint stream of a consumed topic: one per (group, topic).
pub fn kafka_stream_id(group_id: &str, topic: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
    };
    format!("kafka.{}.{}", clean(group_id), clean(topic))
}

impl PollerContext {
    /// Build the context; `runtime` runs the lake recovery during assignment.
    pub fn new(
        events: EventSender,
        writer: Arc<LakeWriter>,
        runtime: tokio::runtime::Handle,
        group_id: String,
        start_from: StartFrom,
        offset_query_timeout: Duration,
        metrics: Metrics,
    ) -> Self {
        Self {
            events,
            held: Mutex::new(Held::default()),
            writer,
            runtime,
            group_id,
            start_from,
            offset_query_timeout,
            metrics,
            stopping: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
            assigned: Arc::new(AtomicUsize::new(0)),
            brokers: Arc::default(),
            missing_topics: Arc::default(),
            error_logs: Mutex::default(),
        }
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stop the daemon (flushing what it holds) so that it is restarted, rather than stay up
    /// consuming nothing. Queued behind the messages held for the loop, which forwards them as
    /// the channel has room: sent with `try_send`, it was lost whenever the channel was full.
    fn queue_fatal(&self, kind: &'static str, message: String) {
        self.lock_held().events.push_back(Event::Fatal { kind, message });
    }

    /// Log a consumer error at most once per [`ERROR_LOG_EVERY`] per kind; the counter
    /// counts every occurrence.
    fn log_rate_limited(&self, kind: &'static str, message: &str) {
        let mut logs = self.error_logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if logs.allow(kind, Instant::now()) {
            tracing::warn!(kind, error = message, "Kafka consumer error (repeats are counted, not logged, for 10 s).");
        }
    }

    /// Recover one partition's checkpoint from the lake, retrying until the lake answers.
    /// `None` when shutdown started first: nothing of the partition was read or buffered, so
    /// it is simply left for the next owner.
    fn recover_checkpoint(&self, topic: &str, stream: &str, partition: i32) -> Option<Option<Checkpoint>> {
        let mut delay = Duration::from_millis(200);
        loop {
            let attempt = self.runtime.block_on(async {
                tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => None,
                    result = self.writer.recover(stream, partition) => Some(result),
                }
            });
            match attempt? {
                Ok(checkpoint) => return Some(checkpoint),
                Err(error) => {
                    self.metrics.record_consumer_error("lake_recover");
                    tracing::warn!(topic, partition, %error, "Cannot recover partition from the lake; retrying.");
                }
            }
            let stopped = self.runtime.block_on(async {
                tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => true,
                    () = tokio::time::sleep(delay) => false,
                }
            });
            if stopped {
                return None;
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// Recover every assigned partition from the lake, retrying the lake until it answers.
    /// `None` when shutdown started while waiting for the lake.
    fn recover_assignment(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &TopicPartitionList,
    ) -> Option<RecoveredAssignment> {
        let mut positioned = TopicPartitionList::new();
        let mut starts = Vec::new();
        for element in tpl.elements() {
            let (topic, partition) = (element.topic().to_owned(), element.partition());
            let stream = kafka_stream_id(&self.group_id, &topic);
            let checkpoint = self.recover_checkpoint(&topic, &stream, partition)?;
            let checkpoint_at = checkpoint.as_ref().map(|c| std::time::SystemTime::from(c.updated_at));
            let mut next = checkpoint.map(|c| c.next_offset);
            if let Some(committed) = next {
                next = Some(self.check_log_bounds(consumer, &stream, &topic, partition, committed));
            }
            let offset = match (next, self.start_from) {
                (Some(next), _) => Offset::Offset(next),
                // Resolve "earliest" with our own bounded watermark query rather than leaving
                // it to librdkafka, whose internal offset lookup has no timeout.
                (None, StartFrom::Earliest) => {
                    match consumer.fetch_watermarks(&topic, partition, self.offset_query_timeout) {
                        Ok((low, _)) => Offset::Offset(low),
                        Err(error) => {
                            tracing::warn!(topic, partition, %error, "Watermark query failed; starting at the beginning.");
                            Offset::Beginning
                        }
                    }
                }
                (None, StartFrom::Latest) => Offset::End,
            };
            if let Err(error) = positioned.add_partition_offset(&topic, partition, offset) {
                tracing::error!(topic, partition, %error, "Cannot position partition.");
            }
            match next {
                Some(resume_at) => {
                    tracing::info!(topic, partition, resume_at, "Partition assigned; resuming at the lake checkpoint.");
                }
                None => tracing::info!(topic, partition, "Partition assigned; no lake checkpoint yet."),
            }
            let position = match offset {
                Offset::Offset(position) => Some(position),
                _ => None,
            };
            // Read after the bounds check, which may have started a new epoch under a new claim.
            let claim = self.writer.held_claim(&stream, partition);
            starts.push(AssignedPartition { topic, partition, resume_at: next, position, checkpoint_at, claim });
        }
        Some((positioned, starts))
    }

    /// Compare the checkpoint with the partition's log (one bounded watermark query). A
    /// checkpoint beyond the log's end means the log was recreated or lost: start a new lake
    /// epoch at the log's start instead of waiting on an out-of-range fetch. A checkpoint before
    /// the log's start means retention deleted messages that were never ingested: say so loudly
    /// and continue from the start. When the query fails or times out, the checkpoint stands
    /// and the partition is checked again from the poll loop until it delivers a message.
    fn check_log_bounds(
        &self,
        consumer: &BaseConsumer<Self>,
        stream: &str,
        topic: &str,
        partition: i32,
        committed: i64,
    ) -> i64 {
        let (low, high) = match consumer.fetch_watermarks(topic, partition, self.offset_query_timeout) {
            Ok(marks) => marks,
            Err(error) => {
                tracing::warn!(
                    topic,
                    partition,
                    %error,
                    "Watermark query failed; resuming at the checkpoint and checking again until the partition delivers."
                );
                self.lock_held().unverified.add(topic.to_owned(), partition, committed, Instant::now());
                return committed;
            }
        };
        match compare_with_log(committed, low, high) {
            LogBounds::Within => committed,
            LogBounds::BeyondEnd => match self.runtime.block_on(self.writer.reset_partition(stream, partition, low)) {
                Ok(_) => {
                    tracing::warn!(
                        topic,
                        partition,
                        committed,
                        high,
                        "Checkpoint lies beyond the end of the log (topic recreated?); starting a new lake epoch at its start."
                    );
                    low
                }
                Err(error) => {
                    tracing::error!(topic, partition, %error, "Cannot start a new lake epoch; resuming at the checkpoint.");
                    committed
                }
            },
            LogBounds::BeforeStart => {
                self.report_retention_loss(topic, partition, committed, low);
                low
            }
        }
    }

    fn report_retention_loss(&self, topic: &str, partition: i32, committed: i64, low: i64) {
        self.metrics.record_consumer_error("offsets_lost_to_retention");
        tracing::error!(
            topic,
            partition,
            committed,
            low,
            lost = low - committed,
            "Messages were deleted by retention before they were ingested; continuing at the log start."
        );
    }

    /// Check again one partition whose watermark query failed at assignment and which has
    /// delivered nothing since. A checkpoint beyond the log's end moves the partition to the
    /// log's start: its first message then lies below the checkpoint, and the processing loop
    /// starts a new lake epoch there, as it does after a consumer offset reset.
    fn recheck_log_bounds(&self, consumer: &BaseConsumer<Self>) {
        let due = {
            let mut held = self.lock_held();
            let held = &mut *held;
            if held.unverified.is_empty() {
                return;
            }
            held.unverified.take_due(Instant::now(), &held.positions)
        };
        let Some(entry) = due else { return };
        let (topic, partition, committed) = (entry.topic.as_str(), entry.partition, entry.committed);
        let (low, high) = match consumer.fetch_watermarks(topic, partition, self.offset_query_timeout) {
            Ok(marks) => marks,
            Err(error) => {
                tracing::debug!(topic, partition, %error, "Watermark query failed again; will retry.");
                self.lock_held().unverified.retry_later(entry, Instant::now());
                return;
            }
        };
        let start_over = match compare_with_log(committed, low, high) {
            LogBounds::Within => {
                tracing::info!(topic, partition, committed, low, high, "Checkpoint verified against the log.");
                return;
            }
            LogBounds::BeyondEnd => {
                tracing::warn!(
                    topic,
                    partition,
                    committed,
                    high,
                    "Checkpoint lies beyond the end of the log (topic recreated?); moving to its start, where a new lake epoch begins."
                );
                low
            }
            LogBounds::BeforeStart => {
                self.report_retention_loss(topic, partition, committed, low);
                low
            }
        };
        if let Err(error) = consumer.seek(topic, partition, Offset::Offset(start_over), SEEK_TIMEOUT) {
            tracing::warn!(topic, partition, %error, "Cannot move the partition to the log's start; will retry.");
            self.lock_held().unverified.retry_later(entry, Instant::now());
        }
    }

    /// Ask the brokers which subscribed topics exist (one bounded metadata query per topic)
    /// and keep those that do not in `missing_topics`. Left as it was when the brokers do not
    /// answer: readiness then says they are unreachable.
    fn check_subscribed_topics(&self, consumer: &BaseConsumer<Self>) {
        let Ok(subscription) = consumer.subscription() else { return };
        let mut missing = Vec::new();
        for element in subscription.elements() {
            let topic = element.topic();
            // A pattern subscription names no topic to look up.
            if topic.starts_with('^') {
                continue;
            }
            match consumer.fetch_metadata(Some(topic), self.offset_query_timeout) {
                Ok(metadata) => {
                    let exists = metadata
                        .topics()
                        .iter()
                        .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
                    if !exists {
                        missing.push(topic.to_owned());
                    }
                }
                Err(error) => {
                    tracing::debug!(topic, %error, "Metadata query failed; topics not checked.");
                    return;
                }
            }
        }
        self.metrics.set_subscribed_topics_missing(missing.len());
        let mut known = self.missing_topics.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *known != missing {
            if !missing.is_empty() {
                tracing::warn!(topics = %missing.join(","), "Subscribed topics do not exist (yet); waiting for them.");
            }
            *known = missing;
        }
    }

    /// The assignment was lost: drop held messages of the lost partitions (the next owner reads
    /// them again), forward the rest in order, and tell the loop to drop its buffers.
    fn lose(&self, tpl: &TopicPartitionList) {
        let lost = topic_partitions(tpl);
        if lost.is_empty() || self.stopping.load(Ordering::Acquire) {
            return;
        }
        self.metrics.record_consumer_error("assignment_lost");
        tracing::warn!(
            partitions = lost.len(),
            "Assignment lost (the group moved on while this member was unreachable); dropping its \
             unwritten messages, the new owner resumes from the lake checkpoint."
        );
        let is_lost = |message: &OwnedMessage| {
            lost.iter().any(|(topic, partition)| topic == message.topic() && *partition == message.partition())
        };
        for event in self.take_held() {
            let event = match event {
                Event::Messages(mut messages) => {
                    messages.retain(|message| !is_lost(message));
                    if messages.is_empty() {
                        continue;
                    }
                    Event::Messages(messages)
                }
                other => other,
            };
            if self.events.blocking_send(event).is_err() {
                return;
            }
        }
        let (done, answer) = std::sync::mpsc::sync_channel(1);
        if self.events.blocking_send(Event::Lost { partitions: lost, done }).is_err() {
            return;
        }
        match await_loop(&answer) {
            Ok(()) => {}
            Err(Unanswered::TimedOut) => tracing::error!(
                timeout_secs = REVOKE_TIMEOUT.as_secs(),
                "Flushes in flight did not finish in time after losing partitions; releasing them anyway."
            ),
            Err(Unanswered::LoopStopped) => tracing::info!(
                "The processing loop stopped before the lost partitions' flushes were over; releasing them."
            ),
        }
    }

    /// Close the batch being gathered and take every event held back from the channel.
    fn take_held(&self) -> Vec<Event> {
        let mut held = self.lock_held();
        held.seal();
        held.events.drain(..).collect()
    }

    /// Forward held messages (the revoked partitions' tail) and ask the loop to flush.
    fn revoke(&self, tpl: &TopicPartitionList) -> Vec<(String, i32, i64)> {
        let partitions = topic_partitions(tpl);
        if partitions.is_empty() || self.stopping.load(Ordering::Acquire) {
            return Vec::new();
        }
        for event in self.take_held() {
            if self.events.blocking_send(event).is_err() {
                return Vec::new();
            }
        }
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        if self.events.blocking_send(Event::Revoked { partitions, reply }).is_err() {
            return Vec::new();
        }
        match await_loop(&answer) {
            Ok(durable) => durable,
            Err(Unanswered::TimedOut) => {
                tracing::error!(
                    timeout_secs = REVOKE_TIMEOUT.as_secs(),
                    "Revoked partitions were not flushed in time; releasing them uncommitted (the next owner replays them)."
                );
                Vec::new()
            }
            // The loop is shutting down (its own log says whether it flushed, or why it
            // stopped): a rolling deploy, not a failure of the revoke.
            Err(Unanswered::LoopStopped) => {
                tracing::info!(
                    "The processing loop stopped before answering the revoke; releasing the partitions \
                     (the lake checkpoint stands for their next owner)."
                );
                Vec::new()
            }
        }
    }
}

/// Why the processing loop gave no answer to a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unanswered {
    /// It is still busy after [`REVOKE_TIMEOUT`]: flushes are stuck.
    TimedOut,
    /// It dropped the question: it has stopped (shutdown, or an error it reports itself).
    LoopStopped,
}

/// Wait for the processing loop's answer to a rebalance, up to [`REVOKE_TIMEOUT`].
fn await_loop<T>(answer: &std::sync::mpsc::Receiver<T>) -> Result<T, Unanswered> {
    answer.recv_timeout(REVOKE_TIMEOUT).map_err(|error| match error {
        std::sync::mpsc::RecvTimeoutError::Timeout => Unanswered::TimedOut,
        std::sync::mpsc::RecvTimeoutError::Disconnected => Unanswered::LoopStopped,
    })
}

impl ClientContext for PollerContext {
    fn stats(&self, statistics: Statistics) {
        if statistics.brokers.values().any(|broker| broker.state == "UP") {
            self.brokers.mark_up();
        }
        self.metrics.note_high_watermarks(
            statistics
                .topics
                .iter()
                .flat_map(|(topic, t)| t.partitions.values().map(move |p| (topic.as_str(), p.partition, p.hi_offset))),
        );
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        // librdkafka reports an asynchronous commit's failure to an offset-commit callback or a
        // reply queue; rdkafka 0.39's `commit(.., Async)` sets neither, and librdkafka then only
        // logs it under this facility.
        if facility == "COMMITFAIL" {
            self.metrics.record_consumer_error("commit");
        }
        // A position that fell out of the log while the partition was being consumed (retention
        // deleted messages not yet read, or the log was truncated or recreated): librdkafka
        // resets it to the log's start (`auto.offset.reset` is always earliest) and says so only
        // in this warning; no consumer error is raised for it.
        if facility == "OFFSET" && matches!(level, RDKafkaLogLevel::Warning) && message.contains("offset reset") {
            self.metrics.record_consumer_error("offset_reset");
        }
        forward_librdkafka_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = match error.rdkafka_error_code() {
            // Not an error: the end of a partition's log, reported when a user configuration
            // turns `enable.partition.eof` on.
            Some(RDKafkaErrorCode::PartitionEOF) => return,
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                // librdkafka raises it again on every re-bootstrap cycle (about twice a second
                // while the brokers stay away): counted once per outage, so that the rate means
                // outages, not reconnect attempts.
                if !self.brokers.mark_down() {
                    return;
                }
                "all_brokers_down"
            }
            Some(RDKafkaErrorCode::BrokerTransportFailure) => "transport",
            Some(code) if is_auth_refusal(code) => {
                self.brokers.mark_auth_refused();
                "auth"
            }
            // A fatal error arrives here under its underlying code (librdkafka translates
            // `ERR__FATAL` before handing the event on), so it is told apart, counted as fatal
            // and acted on where the poll returns it (`on_poll_error`).
            _ => "client",
        };
        self.metrics.record_consumer_error(kind);
        self.log_rate_limited(kind, &format!("{error}: {reason}"));
    }
}

impl ConsumerContext for PollerContext {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        // Reached only if librdkafka is given an offset-commit callback, which rdkafka 0.39 does
        // not register: asynchronous commits fail through the COMMITFAIL log line instead (see
        // `log`). Kept so that a later rdkafka that registers it counts them here (librdkafka
        // then no longer logs COMMITFAIL, so nothing is counted twice). The lake checkpoint
        // stays authoritative; a failing commit only leaves Kafka-side lag tools behind, which
        // is worth a count and a log line. Nothing to commit is no failure.
        if let Err(error) = result
            && error.rdkafka_error_code() != Some(RDKafkaErrorCode::NoOffset)
        {
            self.metrics.record_consumer_error("commit");
            self.log_rate_limited("commit", &format!("Kafka offset commit failed: {error}"));
        }
    }

    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                // An eager assignment replaces the previous one whole.
                self.lock_held().unverified.clear();
                let Some((positioned, starts)) = self.recover_assignment(consumer, tpl) else {
                    tracing::info!(
                        partitions = tpl.count(),
                        "Shutting down while the lake was unavailable; the assignment is left unconsumed."
                    );
                    if let Err(error) = consumer.unassign() {
                        tracing::warn!(%error, "Cannot release the unrecovered assignment.");
                    }
                    self.assigned.store(0, Ordering::Release);
                    return;
                };
                if !starts.is_empty() && self.events.blocking_send(Event::Assigned(starts)).is_err() {
                    return;
                }
                if let Err(error) = consumer.assign(&positioned) {
                    self.metrics.record_consumer_error("assign");
                    // The group still counts the partitions as this member's, so nobody reads
                    // them while it lives: stop the daemon (unready until then) so that the
                    // group moves them, as for a fatal client error.
                    self.assigned.store(0, Ordering::Release);
                    self.queue_fatal("assign", format!("librdkafka refused the assignment: {error}"));
                    return;
                }
                // librdkafka keeps an application's pause on a partition across unassign and
                // assign (it clears only its own), so a partition paused for backpressure
                // before a rebalance would come back paused for good: `held.paused` is reset
                // below, and nothing would ever resume it.
                if let Err(error) = consumer.resume(&positioned) {
                    tracing::warn!(%error, "Cannot resume the new assignment's partitions.");
                }
                self.assigned.store(positioned.count(), Ordering::Release);
                // A completed assignment needed the group coordinator: the brokers are back.
                self.brokers.mark_up();
                let mut held = self.lock_held();
                held.paused = false;
                held.positions.clear();
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // Lost: the group already gave the partitions to someone else, and a commit
                // would be refused; the new owner resumes from the lake checkpoint.
                if consumer.assignment_lost() {
                    self.lose(tpl);
                } else {
                    let durable = self.revoke(tpl);
                    // Advisory only: the lake checkpoint is what the next owner resumes from.
                    if !durable.is_empty()
                        && let Err(error) = consumer.commit(&offsets_list(&durable), CommitMode::Sync)
                    {
                        self.metrics.record_consumer_error("commit");
                        tracing::warn!(%error, "Could not commit revoked partitions' offsets to Kafka.");
                    }
                    tracing::info!(partitions = tpl.count(), "Partitions revoked after flushing.");
                }
                if let Err(error) = consumer.unassign() {
                    tracing::error!(%error, "Cannot unassign partitions.");
                }
                self.assigned.store(0, Ordering::Release);
                let mut held = self.lock_held();
                held.paused = false;
                held.positions.clear();
                held.unverified.clear();
            }
            other => {
                self.metrics.record_consumer_error("rebalance");
                tracing::error!(error = ?other, "Rebalance error; releasing the assignment.");
                let _ = consumer.unassign();
                self.assigned.store(0, Ordering::Release);
                self.lock_held().unverified.clear();
            }
        }
    }
}

/// Whether the brokers answer this client, as librdkafka's callbacks tell it, for readiness.
#[derive(Debug, Default)]
pub struct BrokerHealth {
    /// Every broker unreachable (librdkafka's "all brokers down").
    down: AtomicBool,
    /// The brokers refused this client's credentials or its rights since they were last up.
    auth_refused: AtomicBool,
}

impl BrokerHealth {
    /// A broker answered: a statistics report with a broker up, a message, an assignment.
    pub(super) fn mark_up(&self) {
        self.down.store(false, Ordering::Release);
        self.auth_refused.store(false, Ordering::Release);
    }

    /// Every broker is down; `true` when they were not already.
    fn mark_down(&self) -> bool {
        !self.down.swap(true, Ordering::AcqRel)
    }

    fn mark_auth_refused(&self) {
        self.auth_refused.store(true, Ordering::Release);
    }

    /// Why the daemon cannot consume, if the brokers are the reason.
    pub(super) fn unready_reason(&self) -> Option<&'static str> {
        if self.auth_refused.load(Ordering::Acquire) {
            Some(
                "Kafka brokers refuse this client (authentication or authorization failed; check the SASL/SSL settings and ACLs)",
            )
        } else if self.down.load(Ordering::Acquire) {
            Some("Kafka brokers unreachable")
        } else {
            None
        }
    }
}

/// Errors that say the brokers refused the client's credentials or its rights: retrying will
/// not help until an operator fixes the configuration or the ACLs.
fn is_auth_refusal(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
    )
}

/// librdkafka's log lines, as rdkafka's default `ClientContext::log` forwards them (under the
/// `librdkafka` target), for a context that also looks at them.
fn forward_librdkafka_log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", "librdkafka: {facility} {message}");
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "librdkafka: {facility} {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", "librdkafka: {facility} {message}");
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "librdkafka: {facility} {message}"),
    }
}

/// The (topic, partition) pairs of a list, owned.
fn topic_partitions(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect()
}

/// A topic-partition list with explicit offsets.
pub fn offsets_list(offsets: &[(String, i32, i64)]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
    }
    tpl
}

/// The offsets of partitions still in `assignment`. A flush can complete after its partition
/// was released (a revoke that timed out, a lost assignment, a revoke during the final flush),
/// and the classic group protocol lets any member commit any partition: committing it then
/// could move the new owner's committed offset backwards, misleading lag tools.
fn still_assigned(assignment: &TopicPartitionList, offsets: Vec<(String, i32, i64)>) -> Vec<(String, i32, i64)> {
    offsets.into_iter().filter(|(topic, partition, _)| assignment.find_partition(topic, *partition).is_some()).collect()
}

/// Commit `offsets` of the partitions this member still owns.
fn commit_owned(
    consumer: &BaseConsumer<PollerContext>,
    offsets: Vec<(String, i32, i64)>,
    mode: CommitMode,
) -> KafkaResult<()> {
    let owned = still_assigned(&consumer.assignment()?, offsets);
    if owned.is_empty() {
        return Ok(());
    }
    consumer.commit(&offsets_list(&owned), mode)
}

/// Run the poll loop until `Stop`. Called on a dedicated thread.
pub fn poll_loop(consumer: &BaseConsumer<PollerContext>, commands: &std::sync::mpsc::Receiver<Command>) {
    let context = consumer.context();
    let mut topics_checked: Option<Instant> = None;
    loop {
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Commit(offsets) => {
                    if let Err(error) = commit_owned(consumer, offsets, CommitMode::Async) {
                        context.metrics.record_consumer_error("commit");
                        context.log_rate_limited("commit", &error.to_string());
                    }
                }
                Command::Stop(offsets) => {
                    context.stopping.store(true, Ordering::Release);
                    if let Err(error) = commit_owned(consumer, offsets, CommitMode::Sync) {
                        context.metrics.record_consumer_error("commit");
                        tracing::warn!(%error, "Final Kafka offset commit failed (the lake checkpoint is authoritative).");
                    }
                    consumer.unsubscribe();
                    return;
                }
            }
        }
        if !forward_held(context) {
            return;
        }
        context.recheck_log_bounds(consumer);
        let topic_check_interval = if context.assigned.load(Ordering::Acquire) == 0 {
            TOPIC_CHECK_INTERVAL
        } else {
            TOPIC_CHECK_INTERVAL_WHILE_ASSIGNED
        };
        if topics_checked.is_none_or(|at| at.elapsed() >= topic_check_interval) {
            topics_checked = Some(Instant::now());
            context.check_subscribed_topics(consumer);
        }
        match backpressure(context) {
            Backpressure::Wait => {
                std::thread::sleep(HELD_RETRY);
                continue;
            }
            Backpressure::Pause => set_paused(consumer, context, true),
            Backpressure::Flowing => set_paused(consumer, context, false),
        }
        // While a batch is being gathered, take only what librdkafka already holds.
        let gathering = !context.lock_held().batch.is_empty();
        match consumer.poll(if gathering { Duration::ZERO } else { POLL_TIMEOUT }) {
            None => context.lock_held().seal(),
            Some(Ok(message)) => {
                context.brokers.mark_up();
                let mut held = context.lock_held();
                if !held.positions.accept(message.topic(), message.partition(), message.offset()) {
                    context.metrics.record_redelivery();
                    continue;
                }
                if held.gather(message.detach()) {
                    held.seal();
                }
            }
            Some(Err(error)) => {
                context.lock_held().seal();
                on_poll_error(context, &error, || consumer.client().fatal_error().map(|(_, reason)| reason));
            }
        }
    }
}

/// An error the poll returned. rdkafka hands every error event to the error callback before it
/// returns it from the poll (consumer errors such as an unknown topic are error events too), and
/// the callback counts and logs it; counting it here too counted every error twice. Only a fatal
/// error is handled here, because only here is it known to be fatal: librdkafka gives the
/// callback its underlying code. `fatal_reason` asks the client for librdkafka's own account.
fn on_poll_error(context: &PollerContext, error: &KafkaError, fatal_reason: impl FnOnce() -> Option<String>) {
    let KafkaError::MessageConsumptionFatal(code) = error else { return };
    // librdkafka cannot continue with this client. The callback has counted the error under its
    // code's kind; it is counted once more as fatal, once in the process' life.
    let kind = "fatal";
    context.metrics.record_consumer_error(kind);
    let message = fatal_reason().unwrap_or_else(|| code.to_string());
    tracing::error!(error = %message, "Fatal Kafka client error; stopping.");
    context.queue_fatal(kind, message);
}

/// Send held messages while the channel has room. False when the loop is gone.
fn forward_held(context: &PollerContext) -> bool {
    let mut held = context.lock_held();
    while let Some(event) = held.events.pop_front() {
        match context.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                held.events.push_front(event);
                break;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
        }
    }
    true
}

fn backpressure(context: &PollerContext) -> Backpressure {
    let mut held = context.lock_held();
    let held = &mut *held;
    decide_backpressure(!held.events.is_empty(), held.paused, &mut held.blocked_since, Instant::now())
}

/// How often the high watermarks of paused partitions are queried. librdkafka learns a
/// partition's high watermark from its fetches, and a paused partition is not fetched: without
/// these queries, lag would freeze for as long as backpressure or a lake outage lasts, when it
/// matters most.
pub const PAUSED_WATERMARK_REFRESH: Duration = Duration::from_secs(10);

/// Longest wait for one partition's watermarks in [`refresh_paused_watermarks`]: short, so that
/// a shutdown never waits long for that thread.
const PAUSED_WATERMARK_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The watermark thread: while the assignment is paused, query each partition's high
/// watermark `every` ([`PAUSED_WATERMARK_REFRESH`] in the daemon) and note it for the lag
/// metric, until `stop` is dropped. Runs beside the poll thread (librdkafka's client is thread safe), so that a
/// slow or hanging query never holds up polling and rebalances.
pub fn refresh_paused_watermarks(
    consumer: &BaseConsumer<PollerContext>,
    stop: &std::sync::mpsc::Receiver<()>,
    every: Duration,
) {
    let context = consumer.context();
    let timeout = context.offset_query_timeout.min(PAUSED_WATERMARK_QUERY_TIMEOUT);
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
        if !context.lock_held().paused {
            continue;
        }
        let Ok(assignment) = consumer.assignment() else { continue };
        for element in assignment.elements() {
            if !matches!(stop.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty)) {
                return;
            }
            let (topic, partition) = (element.topic(), element.partition());
            match consumer.fetch_watermarks(topic, partition, timeout) {
                Ok((_, high)) => context.metrics.note_high_watermarks([(topic, partition, high)]),
                Err(error) => {
                    tracing::debug!(topic, partition, %error, "Watermark query of a paused partition failed.");
                }
            }
        }
    }
}

/// Pause the assignment during a long stall, resume once every held message is forwarded.
fn set_paused(consumer: &BaseConsumer<PollerContext>, context: &PollerContext, want_paused: bool) {
    let mut held = context.lock_held();
    if want_paused == held.paused {
        return;
    }
    let Ok(assignment) = consumer.assignment() else { return };
    let result = if want_paused { consumer.pause(&assignment) } else { consumer.resume(&assignment) };
    match result {
        Ok(()) => {
            held.paused = want_paused;
            tracing::debug!(paused = want_paused, partitions = assignment.count(), "Backpressure changed.");
        }
        Err(error) => {
            context.log_rate_limited("pause", &error.to_string());
            return;
        }
    }
    if !want_paused {
        // Resume exactly after the last accepted message: a paused partition's prefetched
        // messages were purged, and a seek makes librdkafka discard any stale ones still queued
        // instead of handing them over out of order.
        for (topic, partition, next) in held.positions.iter() {
            if let Err(error) = consumer.seek(topic, partition, Offset::Offset(next), SEEK_TIMEOUT) {
                context.log_rate_limited("seek", &error.to_string());
            }
        }
    }
}

/// Bound on a seek after resume (a local operation in librdkafka; the bound is defensive).
const SEEK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a lake checkpoint lies relative to its partition's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogBounds {
    /// The log holds the checkpoint (or ends exactly at it): resume there.
    Within,
    /// The checkpoint lies past the log's end: the log was recreated or lost.
    BeyondEnd,
    /// The checkpoint lies before the log's start: retention deleted messages never ingested.
    BeforeStart,
}

/// Compare a checkpoint (the next offset to read) with the log's watermarks `[low, high)`.
fn compare_with_log(committed: i64, low: i64, high: i64) -> LogBounds {
    if committed > high {
        LogBounds::BeyondEnd
    } else if committed < low {
        LogBounds::BeforeStart
    } else {
        LogBounds::Within
    }
}

#[cfg(test)]
mod tests {
    use super::super::held::RECHECK_FIRST_DELAY;
    use super::*;
    use crate::telemetry::MetricsConfig;
    use driftwatch_lake::parquet::ParquetOptions;
    use driftwatch_lake::store::LakeStore;
    use rdkafka::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A topic or group name no other test run uses.
    fn unique_name(prefix: &str) -> Result<String, Box<dyn std::error::Error>> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.subsec_nanos();
        Ok(format!("{prefix}-{}-{nanos:08x}", std::process::id()))
    }

    /// The dev stack's broker address (`scripts/test` starts it and exports it).
    fn test_brokers() -> Result<String, Box<dyn std::error::Error>> {
        Ok(std::env::var("DRIFTWATCH_TEST_KAFKA")
            .map_err(|_| "DRIFTWATCH_TEST_KAFKA is not set: run the tests with scripts/test")?)
    }

    /// A consumer in `group` on the dev stack's broker that leaves its offsets alone, as the
    /// daemon does (it commits them itself).
    fn group_member(brokers: &str, group: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers).set("group.id", group).set("enable.auto.commit", "false");
        config
    }

    /// A new one-partition topic named after `prefix`, holding `messages` messages at offsets
    /// 0.. (one per record batch, which Tansu needs to serve a fetch from any offset).
    fn topic_with_messages(
        runtime: &tokio::runtime::Runtime,
        brokers: &str,
        prefix: &str,
        messages: usize,
    ) -> Result<String, Box<dyn std::error::Error>> {
        let topic = unique_name(prefix)?;
        runtime.block_on(crate::loadgen::ensure_topics(brokers, &[], &[topic.as_str()], 1, Duration::from_secs(30)))?;
        if messages > 0 {
            let producer: BaseProducer =
                ClientConfig::new().set("bootstrap.servers", brokers).set("batch.num.messages", "1").create()?;
            for i in 0..messages {
                producer.send(BaseRecord::<(), _>::to(&topic).payload(&format!("m{i}"))).map_err(|(error, _)| error)?;
            }
            producer.flush(Duration::from_secs(10))?;
        }
        Ok(topic)
    }

    /// A poller context for `group` over a fresh local lake; the returned dir and event receiver
    /// keep the lake and the channel alive as long as the test holds them.
    fn context_over_a_fresh_lake(
        runtime: &tokio::runtime::Runtime,
        group: &str,
        offset_query_timeout: Duration,
    ) -> Result<((tempfile::TempDir, super::super::channel::EventReceiver), PollerContext), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let store = runtime.block_on(LakeStore::open(&dir.path().display().to_string(), &Default::default()))?;
        let (events, receiver) = super::super::channel::event_channel(16);
        let context = PollerContext::new(
            events,
            Arc::new(LakeWriter::new(store, ParquetOptions::default())),
            runtime.handle().clone(),
            group.to_owned(),
            StartFrom::Earliest,
            offset_query_timeout,
            Metrics::new(&MetricsConfig::default()),
        );
        Ok(((dir, receiver), context))
    }

    /// Against the dev stack's broker (`scripts/test` starts it and exports its address): a
    /// partition assigned past the end of its log, whose check at assignment failed, is found
    /// by the poll loop's re-check and moved to the log's start. Without the re-check it would
    /// wait there (a broker answering the fetch with nothing) or jump to the end (Kafka's
    /// offset reset to `latest`, this consumer's default), and the first message never comes.
    #[test]
    fn offsets_of_partitions_released_meanwhile_are_not_committed() {
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition("spans", 0);
        assignment.add_partition("events", 2);
        let offsets = vec![
            ("spans".to_owned(), 0, 10),
            ("spans".to_owned(), 1, 20),
            ("events".to_owned(), 2, 30),
            ("logs".to_owned(), 0, 40),
        ];
        assert_eq!(
            still_assigned(&assignment, offsets),
            vec![("spans".to_owned(), 0, 10), ("events".to_owned(), 2, 30)]
        );
        assert!(still_assigned(&TopicPartitionList::new(), vec![("spans".to_owned(), 0, 10)]).is_empty());
    }

    #[test]
    fn a_recheck_moves_a_partition_assigned_past_its_logs_end_to_its_start() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let topic = topic_with_messages(&runtime, &brokers, "recheck", 3)?;

        let (_lake, context) = context_over_a_fresh_lake(&runtime, &topic, Duration::from_secs(5))?;
        let consumer: BaseConsumer<PollerContext> = group_member(&brokers, &topic).create_with_context(context)?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, 0, Offset::Offset(771))?;
        consumer.assign(&assignment)?;
        // What an assignment whose watermark query failed leaves behind, already due.
        let assigned_at = Instant::now().checked_sub(RECHECK_FIRST_DELAY).ok_or("clock too young")?;
        consumer.context().lock_held().unverified.add(topic.clone(), 0, 771, assigned_at);

        let deadline = Instant::now() + Duration::from_secs(60);
        let first = loop {
            consumer.context().recheck_log_bounds(&consumer);
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                break message?.offset();
            }
            if Instant::now() > deadline {
                return Err("no message within 60 s of the re-check".into());
            }
        };
        assert_eq!(first, 0, "the partition resumes at the log's start");
        assert!(consumer.context().lock_held().unverified.is_empty(), "verified once moved");
        Ok(())
    }

    /// Shutdown while an assignment waits for an unavailable lake: the wait ends and the
    /// partition is left unrecovered, instead of holding the poll thread (and with it the
    /// daemon's exit) until the shutdown deadline.
    #[test]
    fn shutdown_ends_the_wait_for_an_unavailable_lake_during_an_assignment() -> TestResult {
        let runtime = tokio::runtime::Runtime::new()?;
        let dir = tempfile::tempdir()?;
        let lake = dir.path().join("lake");
        std::fs::create_dir_all(&lake)?;
        let store = runtime.block_on(LakeStore::open(&lake.display().to_string(), &Default::default()))?;
        // A file where the checkpoint folder belongs: every recovery fails, as on a lost disk.
        std::fs::write(lake.join("_checkpoints"), b"not a folder")?;
        let metrics = Metrics::new(&MetricsConfig::default());
        let (events, _receiver) = super::super::channel::event_channel(16);
        let context = Arc::new(PollerContext::new(
            events,
            Arc::new(LakeWriter::new(store, ParquetOptions::default())),
            runtime.handle().clone(),
            "group".to_owned(),
            StartFrom::Latest,
            Duration::from_secs(5),
            metrics.clone(),
        ));
        let (gave_up, answer) = std::sync::mpsc::channel();
        let recovering = Arc::clone(&context);
        std::thread::spawn(move || {
            let _ = gave_up.send(recovering.recover_checkpoint("spans", "kafka.group.spans", 0).is_none());
        });
        // Shut down once recovery has failed and is waiting to try again.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !metrics.encode()?.contains("kind=\"lake_recover\"") {
            if Instant::now() > deadline {
                return Err("recovery never reported the failing lake".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        context.shutdown.cancel();
        let gave_up =
            answer.recv_timeout(Duration::from_secs(60)).map_err(|_| "still waiting for the lake after shutdown")?;
        assert!(gave_up, "no checkpoint is made up when recovery gives up");
        Ok(())
    }

    /// Against the dev stack's broker: a subscribed topic that does not exist is named for
    /// readiness; one that exists is not.
    #[test]
    fn subscribed_topics_that_do_not_exist_are_named() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let (present, absent) = (topic_with_messages(&runtime, &brokers, "present", 0)?, unique_name("absent")?);
        let (_lake, context) = context_over_a_fresh_lake(&runtime, &present, Duration::from_secs(10))?;
        let consumer: BaseConsumer<PollerContext> = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", &present)
            .set("allow.auto.create.topics", "false")
            .create_with_context(context)?;
        consumer.subscribe(&[present.as_str(), absent.as_str()])?;
        consumer.context().check_subscribed_topics(&consumer);
        let missing = consumer.context().missing_topics.lock().map_err(|_| "poisoned")?.clone();
        assert_eq!(missing, vec![absent]);
        let text = consumer.context().metrics.encode()?;
        assert!(text.contains("driftwatch_subscribed_topics_missing 1\n"), "{text}");
        Ok(())
    }

    /// The sum of `driftwatch_consumer_errors_total` over every kind, and its `kind` sample.
    fn consumer_errors(metrics: &Metrics, kind: &str) -> Result<(u64, u64), Box<dyn std::error::Error>> {
        let text = metrics.encode()?;
        let all = crate::telemetry::counter_sum(&text, "driftwatch_consumer_errors_total{");
        let of_kind =
            crate::telemetry::counter_sum(&text, &format!("driftwatch_consumer_errors_total{{kind=\"{kind}\"}}"));
        Ok((all, of_kind))
    }

    /// Run the poll loop over `consumer` for `how_long` or until `on_event`, which sees every
    /// event it forwards, returns true; then stop it. Revokes and losses are answered as the
    /// processing loop would.
    fn poll_for(
        runtime: &tokio::runtime::Runtime,
        consumer: &BaseConsumer<PollerContext>,
        receiver: &mut super::super::channel::EventReceiver,
        how_long: Duration,
        mut on_event: impl FnMut(&Event) -> bool,
    ) {
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

    /// A fatal client error reported while the event channel is full waits behind the messages
    /// already held and reaches the loop once there is room. Sent without waiting, it was lost
    /// whenever the channel was full, and the daemon stayed up with a dead client.
    #[test]
    fn a_fatal_error_while_the_channel_is_full_reaches_the_loop_after_the_held_messages() -> TestResult {
        use super::super::channel::tests::owned;
        let runtime = tokio::runtime::Runtime::new()?;
        let ((_lake, mut receiver), context) = context_over_a_fresh_lake(&runtime, "fatal", Duration::from_secs(5))?;
        let mut offset = 0;
        while context.events.try_send(Event::Messages(vec![owned(offset, 10)])).is_ok() {
            offset += 1;
        }
        context.lock_held().events.push_back(Event::Messages(vec![owned(offset, 10)]));
        // What rdkafka's poll returns for a fatal error event, e.g. a static member fenced by
        // another instance with the same `group.instance.id`.
        let fenced = KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::FencedInstanceId);
        on_poll_error(&context, &fenced, || Some("test: this instance was fenced".to_owned()));
        assert!(forward_held(&context));
        assert_eq!(context.lock_held().events.len(), 2, "nothing moves while the channel is full");

        let mut delivered = Vec::new();
        let fatal = loop {
            match runtime.block_on(receiver.recv()).ok_or("the channel closed")? {
                Event::Messages(messages) => delivered.extend(messages.iter().map(Message::offset)),
                Event::Fatal { kind, message } => break (kind, message),
                other => return Err(format!("unexpected {other:?}").into()),
            }
            assert!(forward_held(&context));
        };
        assert_eq!(delivered, (0..=offset).collect::<Vec<_>>(), "every held message first, in order");
        assert_eq!(fatal.0, "fatal");
        assert!(fatal.1.contains("this instance was fenced"), "{}", fatal.1);
        assert_eq!(consumer_errors(&context.metrics, "fatal")?, (1, 1));
        Ok(())
    }

    /// An unreachable broker's errors are counted once each, under the error callback's kind:
    /// rdkafka also returns them from the poll, where they used to be counted a second time.
    #[test]
    fn an_unreachable_brokers_errors_are_counted_once() -> TestResult {
        let runtime = tokio::runtime::Runtime::new()?;
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        // A short metadata timeout, so the poll loop's topic check does not hold it past the test.
        let ((_lake, mut receiver), context) =
            context_over_a_fresh_lake(&runtime, "unreachable", Duration::from_millis(200))?;
        let consumer: BaseConsumer<PollerContext> = ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{port}"))
            .set("group.id", "unreachable")
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "100")
            .create_with_context(context)?;
        consumer.subscribe(&["spans"])?;
        poll_for(&runtime, &consumer, &mut receiver, Duration::from_secs(3), |_| false);
        let metrics = &consumer.context().metrics;
        let (all, transport) = consumer_errors(metrics, "transport")?;
        let (_, all_brokers_down) = consumer_errors(metrics, "all_brokers_down")?;
        assert!(transport >= 1, "the refused connections are counted");
        assert_eq!(all, transport + all_brokers_down, "and counted once");
        Ok(())
    }

    /// Against the dev stack's broker: a consumer error (a subscribed topic the broker does not
    /// know) is counted once, as a client error.
    #[test]
    fn a_consumer_error_is_counted_once() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let absent = unique_name("absent")?;
        let ((_lake, mut receiver), context) = context_over_a_fresh_lake(&runtime, &absent, Duration::from_secs(5))?;
        let consumer: BaseConsumer<PollerContext> = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", &absent)
            .set("allow.auto.create.topics", "false")
            .set("topic.metadata.refresh.interval.ms", "1000")
            .create_with_context(context)?;
        consumer.subscribe(&[absent.as_str()])?;
        poll_for(&runtime, &consumer, &mut receiver, Duration::from_secs(5), |_| false);
        let (all, client) = consumer_errors(&consumer.context().metrics, "client")?;
        assert!(client >= 1, "the unknown topic is reported");
        assert_eq!(all, client, "and counted once");
        Ok(())
    }

    /// Against the dev stack's broker: an assignment librdkafka refuses is not counted as
    /// assigned and stops the daemon. Cooperative rebalancing (which the daemon's
    /// configuration refuses for this reason) makes librdkafka refuse the eager `assign()`.
    #[test]
    fn an_assignment_librdkafka_refuses_stops_the_daemon() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let topic = topic_with_messages(&runtime, &brokers, "refused", 0)?;
        let ((_lake, mut receiver), context) = context_over_a_fresh_lake(&runtime, &topic, Duration::from_secs(5))?;
        let consumer: BaseConsumer<PollerContext> = group_member(&brokers, &topic)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .create_with_context(context)?;
        consumer.subscribe(&[topic.as_str()])?;
        let mut fatal = None;
        poll_for(&runtime, &consumer, &mut receiver, Duration::from_secs(60), |event| {
            if let Event::Fatal { kind, message } = event {
                fatal = Some((*kind, message.clone()));
            }
            fatal.is_some()
        });
        let (kind, message) = fatal.ok_or("no fatal event within 60 s of subscribing")?;
        assert_eq!(kind, "assign");
        assert!(message.contains("refused the assignment"), "{message}");
        assert_eq!(consumer.context().assigned.load(Ordering::Acquire), 0, "not counted as assigned");
        assert_eq!(consumer_errors(&consumer.context().metrics, "assign")?, (1, 1));
        Ok(())
    }

    /// Against the dev stack's broker: a partition paused for backpressure, then revoked and
    /// assigned again, is consumed. librdkafka keeps an application's pause across a rebalance,
    /// so without the resume at assignment it stayed paused for good while the daemon said ready.
    #[test]
    fn a_partition_paused_before_a_rebalance_is_consumed_after_it() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let topic = topic_with_messages(&runtime, &brokers, "paused", 3)?;

        let ((_lake, _receiver), context) = context_over_a_fresh_lake(&runtime, &topic, Duration::from_secs(5))?;
        let consumer: BaseConsumer<PollerContext> = group_member(&brokers, &topic).create_with_context(context)?;
        let context = consumer.context();
        let mut partitions = TopicPartitionList::new();
        partitions.add_partition(&topic, 0);
        let rebalance = |kind, partitions: &mut TopicPartitionList| context.rebalance(&consumer, kind, partitions);

        rebalance(RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, &mut partitions);
        set_paused(&consumer, context, true);
        assert!(context.lock_held().paused, "paused for backpressure");
        // The revoke's handshake with the processing loop is not under test: release at once.
        context.stopping.store(true, Ordering::Release);
        rebalance(RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, &mut partitions);
        rebalance(RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, &mut partitions);
        assert_eq!(context.assigned.load(Ordering::Acquire), 1);

        let deadline = Instant::now() + Duration::from_secs(30);
        let first = loop {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                break message?.offset();
            }
            if Instant::now() > deadline {
                return Err("no message within 30 s of the new assignment: the partition is still paused".into());
            }
        };
        assert_eq!(first, 0);
        Ok(())
    }

    /// Against the dev stack's broker: an assignment that arrives while the lake is down waits
    /// for it inside the rebalance callback, and the member stays in the group however long
    /// the outage lasts (longer than `max.poll.interval.ms` here): librdkafka counts the
    /// callback as time inside the poll and keeps heartbeating, so the wait does not take the
    /// member out of the group and rebalance everyone again. Once the lake answers, the
    /// partition is recovered and consumed from its start.
    #[test]
    fn an_assignment_waiting_for_the_lake_keeps_the_member_in_the_group() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let topic = topic_with_messages(&runtime, &brokers, "lakedown", 3)?;
        let ((lake, mut receiver), context) = context_over_a_fresh_lake(&runtime, &topic, Duration::from_secs(5))?;
        // A file where the checkpoint folder belongs: every recovery fails, as on a lost disk.
        let checkpoints = lake.path().join("_checkpoints");
        std::fs::write(&checkpoints, b"not a folder")?;
        let consumer: BaseConsumer<PollerContext> = group_member(&brokers, &topic)
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .set("max.poll.interval.ms", "6000")
            .create_with_context(context)?;
        consumer.subscribe(&[topic.as_str()])?;

        let outage = Duration::from_secs(15);
        let repair = std::thread::spawn(move || {
            std::thread::sleep(outage);
            std::fs::remove_file(&checkpoints).and_then(|()| std::fs::create_dir(&checkpoints))
        });
        let (mut assignments, mut revokes, mut first_offset) = (0, 0, None);
        poll_for(&runtime, &consumer, &mut receiver, outage + Duration::from_secs(60), |event| {
            match event {
                Event::Assigned(_) => assignments += 1,
                Event::Revoked { .. } | Event::Lost { .. } => revokes += 1,
                Event::Messages(messages) => first_offset = messages.first().map(Message::offset),
                Event::Fatal { .. } => {}
            }
            first_offset.is_some()
        });
        repair.join().map_err(|_| "the repair thread panicked")??;
        assert_eq!(first_offset, Some(0), "consumed from the log's start once the lake answered");
        assert_eq!((assignments, revokes), (1, 0), "one assignment, held through the outage");
        assert_eq!(consumer_errors(&consumer.context().metrics, "client")?.1, 0, "no poll interval exceeded");
        Ok(())
    }

    /// A revoke the loop drops unanswered (it is shutting down) is told apart from one it
    /// never finishes, which alone is an error.
    #[test]
    fn a_rebalance_question_dropped_by_a_stopping_loop_is_not_a_timeout() {
        let (reply, answer) = std::sync::mpsc::sync_channel::<Vec<(String, i32, i64)>>(1);
        drop(reply);
        assert_eq!(await_loop(&answer), Err(Unanswered::LoopStopped));
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let _ = reply.send(vec![("spans".to_owned(), 0, 42)]);
        assert_eq!(await_loop(&answer), Ok(vec![("spans".to_owned(), 0, 42)]));
    }

    #[test]
    fn consumer_errors_are_logged_once_per_window_and_kind() {
        let mut limit = ErrorLogLimit::default();
        let start = Instant::now();
        assert!(limit.allow("transport", start), "the first of a kind is logged");
        assert!(!limit.allow("transport", start + Duration::from_secs(1)), "its repeats are not");
        assert!(limit.allow("auth", start + Duration::from_secs(1)), "another kind within the window is");
        assert!(limit.allow("transport", start + ERROR_LOG_EVERY), "the kind again once its window is over");
    }

    /// Against the dev stack's broker: a paused partition is not fetched, so librdkafka learns
    /// no new high watermark for it; the watermark thread queries it, and lag follows the log
    /// while the pause lasts.
    #[test]
    fn lag_follows_a_paused_partitions_log() -> TestResult {
        let brokers = test_brokers()?;
        let runtime = tokio::runtime::Runtime::new()?;
        let topic = topic_with_messages(&runtime, &brokers, "paused-lag", 7)?;
        let ((_lake, _receiver), context) = context_over_a_fresh_lake(&runtime, &topic, Duration::from_secs(5))?;
        let consumer: Arc<BaseConsumer<PollerContext>> =
            Arc::new(group_member(&brokers, &topic).create_with_context(context)?);
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, 0, Offset::Offset(2))?;
        consumer.assign(&assignment)?;
        consumer.pause(&assignment)?;
        consumer.context().lock_held().paused = true;
        let metrics = consumer.context().metrics.clone();
        metrics.set_lag_start(&topic, 0, Some(2));
        let lag = || -> Result<Option<String>, Box<dyn std::error::Error>> {
            let prefix = format!("driftwatch_consumer_lag{{topic=\"{topic}\",partition=\"0\"}} ");
            Ok(metrics.encode()?.lines().find_map(|line| line.strip_prefix(&prefix).map(str::to_owned)))
        };
        assert_eq!(lag()?, None, "nothing polled, no watermark known");

        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let refresher = std::thread::spawn({
            let consumer = Arc::clone(&consumer);
            move || refresh_paused_watermarks(&consumer, &stopped, Duration::from_millis(100))
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while lag()?.as_deref() != Some("5") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(stop);
        refresher.join().map_err(|_| "the watermark thread panicked")?;
        assert_eq!(lag()?.as_deref(), Some("5"), "7 messages, lake data up to offset 2");
        Ok(())
    }

    /// rdkafka 0.39 registers no offset-commit callback, so librdkafka reports a failed
    /// asynchronous commit only as a COMMITFAIL log line: that line is what counts it.
    #[test]
    fn a_commit_failure_librdkafka_only_logs_is_counted() -> TestResult {
        let runtime = tokio::runtime::Runtime::new()?;
        let ((_lake, _receiver), context) = context_over_a_fresh_lake(&runtime, "commitfail", Duration::from_secs(1))?;
        context.log(RDKafkaLogLevel::Warning, "FETCH", "Fetch backoff");
        assert_eq!(consumer_errors(&context.metrics, "commit")?, (0, 0), "other log lines count nothing");
        context.log(
            RDKafkaLogLevel::Warning,
            "COMMITFAIL",
            "Offset commit (manual) failed for 1/1 partition(s) in join-state wait-unassign-to-complete: \
             Local: Waiting for coordinator: otlp_spans((null))[1]@164",
        );
        assert_eq!(consumer_errors(&context.metrics, "commit")?, (1, 1));
        Ok(())
    }

    /// A mid-stream reset of a position that fell out of the log is only a librdkafka warning;
    /// it is counted. The debug line of an ordinary reset (no committed offset) is not.
    #[test]
    fn a_position_reset_out_of_range_mid_stream_is_counted() -> TestResult {
        let runtime = tokio::runtime::Runtime::new()?;
        let ((_lake, _receiver), context) = context_over_a_fresh_lake(&runtime, "reset", Duration::from_secs(1))?;
        context.log(
            RDKafkaLogLevel::Debug,
            "OFFSET",
            "llm_events [0]: offset reset (at offset INVALID, broker 1) to offset BEGINNING: no previously \
             committed offset available: Local: No offset stored",
        );
        assert_eq!(consumer_errors(&context.metrics, "offset_reset")?, (0, 0));
        context.log(
            RDKafkaLogLevel::Warning,
            "OFFSET",
            "llm_events [0]: offset reset (at offset 1200 (leader epoch 3), broker 1) to offset BEGINNING \
             (leader epoch 3): fetch failed due to requested offset not available on the broker: Broker: Offset \
             out of range",
        );
        assert_eq!(consumer_errors(&context.metrics, "offset_reset")?, (1, 1));
        Ok(())
    }

    /// librdkafka raises "all brokers down" again on every re-bootstrap while they stay away;
    /// the counter says how many outages there were, and readiness says which kind.
    #[test]
    fn broker_outages_are_counted_once_each_and_auth_refusals_named() -> TestResult {
        let runtime = tokio::runtime::Runtime::new()?;
        let ((_lake, _receiver), context) = context_over_a_fresh_lake(&runtime, "outages", Duration::from_secs(1))?;
        let down = || KafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        assert_eq!(context.brokers.unready_reason(), None);
        for _ in 0..5 {
            context.error(down(), "2/2 brokers are down");
        }
        assert_eq!(consumer_errors(&context.metrics, "all_brokers_down")?, (1, 1));
        assert_eq!(context.brokers.unready_reason(), Some("Kafka brokers unreachable"));
        context.brokers.mark_up();
        assert_eq!(context.brokers.unready_reason(), None);
        context.error(down(), "2/2 brokers are down");
        assert_eq!(consumer_errors(&context.metrics, "all_brokers_down")?, (2, 2), "a second outage");

        context.error(KafkaError::Global(RDKafkaErrorCode::Authentication), "SASL SCRAM authentication failed");
        assert_eq!(consumer_errors(&context.metrics, "auth")?.1, 1);
        let reason = context.brokers.unready_reason().unwrap_or_default();
        assert!(reason.contains("authentication"), "{reason}");
        context.brokers.mark_up();
        assert_eq!(context.brokers.unready_reason(), None);
        Ok(())
    }

    #[test]
    fn a_checkpoint_is_compared_with_the_log_it_resumes() {
        assert_eq!(compare_with_log(771, 0, 900), LogBounds::Within);
        assert_eq!(compare_with_log(900, 0, 900), LogBounds::Within, "caught up: the next message goes there");
        assert_eq!(compare_with_log(0, 0, 0), LogBounds::Within, "an empty new log, nothing read yet");
        assert_eq!(compare_with_log(901, 0, 900), LogBounds::BeyondEnd);
        assert_eq!(compare_with_log(898, 0, 181), LogBounds::BeyondEnd, "a recreated, shorter log");
        assert_eq!(compare_with_log(100, 150, 900), LogBounds::BeforeStart, "retention passed the checkpoint");
        assert_eq!(compare_with_log(150, 150, 900), LogBounds::Within);
    }
}
