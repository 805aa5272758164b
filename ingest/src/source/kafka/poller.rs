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
//!
//! # Layout
//!
//! - this file: [`PollerContext`], the state the poll thread and librdkafka's callbacks share,
//!   and [`poll_loop`]: commands from the processing loop, held messages forwarded, backpressure
//!   (pause and resume), subscribed topics checked, polled messages gathered into batches.
//! - `recovery`: where an assigned partition starts: its lake checkpoint, recovered and compared
//!   with the log's watermarks, and checked again from the poll loop when that query failed.
//! - `rebalance`: librdkafka's rebalance callback: assign, revoke (the handshake with the
//!   processing loop, then a synchronous commit) and lost assignments.
//! - `client_callbacks`: librdkafka's statistics, log and error callbacks: high watermarks,
//!   [`BrokerHealth`] for readiness, consumer errors counted and logged without flooding.
//! - `commit`: advisory offset commits to Kafka, only of partitions this member still owns.
//! - `watermarks`: the watermark thread ([`refresh_paused_watermarks`]), which keeps lag moving
//!   while the assignment is paused.

mod client_callbacks;
mod commit;
mod rebalance;
mod recovery;
#[cfg(test)]
mod test_support;
mod watermarks;

pub use client_callbacks::BrokerHealth;
pub use commit::offsets_list;
pub use watermarks::{PAUSED_WATERMARK_REFRESH, refresh_paused_watermarks};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::Offset;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use driftwatch_lake::writer::LakeWriter;

use super::channel::{Command, Event, EventSender};
use super::held::{Backpressure, Held, decide_backpressure};
use crate::FastHashMap;
use crate::config::StartFrom;
use crate::telemetry::ConsumerErrorKind;
use crate::telemetry::Metrics;
use commit::commit_owned;

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

/// How often the lag metric learns how far each partition has been handed on. librdkafka's
/// high watermarks come with its statistics, every 5 s; lag counts up to this at least. Right
/// after a flush moves lag's start, a second's interval read 0 with a second of messages
/// waiting; a quarter of that costs one lock and a walk over the partitions.
const HANDED_ON_NOTE_INTERVAL: Duration = Duration::from_millis(250);

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
    /// A static member (`group.instance.id`) keeps its place in the group when it stops, so
    /// that its restart within `session.timeout.ms` gets the same partitions back without a
    /// rebalance of the whole group.
    static_member: bool,
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
            static_member: false,
            shutdown: CancellationToken::new(),
            assigned: Arc::new(AtomicUsize::new(0)),
            brokers: Arc::default(),
            missing_topics: Arc::default(),
            error_logs: Mutex::default(),
        }
    }

    /// Mark the consumer as a static group member (see the field).
    #[must_use]
    pub fn with_static_membership(mut self, static_member: bool) -> Self {
        self.static_member = static_member;
        self
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

    /// Ask the brokers which subscribed topics exist, and with how many partitions (one
    /// bounded metadata query per topic), and keep those that do not in `missing_topics`. Left
    /// as it was when the brokers do not answer: readiness then says they are unreachable.
    fn check_subscribed_topics(&self, consumer: &BaseConsumer<Self>) {
        let Ok(subscription) = consumer.subscription() else { return };
        let mut missing = Vec::new();
        let mut partitions = 0;
        for element in subscription.elements() {
            let topic = element.topic();
            // A pattern subscription names no topic to look up.
            if topic.starts_with('^') {
                continue;
            }
            match consumer.fetch_metadata(Some(topic), self.offset_query_timeout) {
                Ok(metadata) => {
                    let found = metadata
                        .topics()
                        .iter()
                        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
                    match found {
                        Some(found) => partitions += found.partitions().len(),
                        None => missing.push(topic.to_owned()),
                    }
                }
                Err(error) => {
                    tracing::debug!(topic, %error, "Metadata query failed; topics not checked.");
                    return;
                }
            }
        }
        self.metrics.set_subscribed_topics(missing.len(), partitions);
        let mut known = self.missing_topics.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *known != missing {
            if !missing.is_empty() {
                tracing::warn!(topics = %missing.join(","), "Subscribed topics do not exist (yet); waiting for them.");
            }
            *known = missing;
        }
    }
}

/// Run the poll loop until `Stop`. Called on a dedicated thread.
pub fn poll_loop(consumer: &BaseConsumer<PollerContext>, commands: &std::sync::mpsc::Receiver<Command>) {
    let context = consumer.context();
    let mut topics_checked: Option<Instant> = None;
    let mut handed_on_noted = Instant::now();
    loop {
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Commit(offsets) => {
                    if let Err(error) = commit_owned(consumer, offsets, CommitMode::Async) {
                        context.metrics.record_consumer_error(ConsumerErrorKind::Commit);
                        context.log_rate_limited("commit", &error.to_string());
                    }
                }
                Command::Reclaim { topic, partition } => context.reclaim(consumer, &topic, partition),
                Command::Stop(offsets) => {
                    context.stopping.store(true, Ordering::Release);
                    if let Err(error) = commit_owned(consumer, offsets, CommitMode::Sync) {
                        context.metrics.record_consumer_error(ConsumerErrorKind::Commit);
                        tracing::warn!(%error, "Final Kafka offset commit failed (the lake checkpoint is authoritative).");
                    }
                    // Unsubscribing sends a LeaveGroup, static member or not; librdkafka skips
                    // it for a static member only when the client closes without it.
                    if !context.static_member {
                        consumer.unsubscribe();
                    }
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
        if handed_on_noted.elapsed() >= HANDED_ON_NOTE_INTERVAL {
            handed_on_noted = Instant::now();
            context.metrics.note_handed_on(context.lock_held().positions.iter());
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
    let kind = ConsumerErrorKind::Fatal;
    context.metrics.record_consumer_error(kind);
    let message = fatal_reason().unwrap_or_else(|| code.to_string());
    tracing::error!(error = %message, "Fatal Kafka client error; stopping.");
    context.queue_fatal(kind.as_str(), message);
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

#[cfg(test)]
mod tests {
    use rdkafka::ClientConfig;
    use rdkafka::types::RDKafkaErrorCode;

    use super::test_support::{
        TestResult, consumer_errors, context_over_a_fresh_lake, poll_for, test_brokers, topic_with_messages,
        unique_name,
    };
    use super::*;

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

    /// A stopping static member leaves its subscription in place, so the client closes without
    /// a LeaveGroup and its restart takes its partitions back without a rebalance (the Kafka
    /// audit: every restart of a static member rebalanced the group); a dynamic member still
    /// unsubscribes, handing its partitions over at once.
    #[test]
    fn only_a_dynamic_member_unsubscribes_when_it_stops() -> TestResult {
        let runtime = tokio::runtime::Runtime::new()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut subscribed_after_stop = Vec::new();
        for static_member in [false, true] {
            let ((_lake, mut receiver), context) =
                context_over_a_fresh_lake(&runtime, "membership", Duration::from_millis(200))?;
            let consumer: BaseConsumer<PollerContext> = ClientConfig::new()
                .set("bootstrap.servers", format!("127.0.0.1:{port}"))
                .set("group.id", "membership")
                .create_with_context(context.with_static_membership(static_member))?;
            consumer.subscribe(&["spans"])?;
            poll_for(&runtime, &consumer, &mut receiver, Duration::from_millis(300), |_| false);
            subscribed_after_stop.push(consumer.subscription()?.count());
        }
        assert_eq!(subscribed_after_stop, vec![0, 1]);
        Ok(())
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
}
