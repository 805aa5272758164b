//! The poll thread: the only owner of the rdkafka consumer.
//!
//! It polls librdkafka, detaches messages and forwards them, in order, through one bounded
//! channel to the processing loop, together with control events (partitions assigned or
//! revoked, broker errors, high watermarks). Rebalances are handled here, inside librdkafka's
//! callback, because that is the only place where a partition can still be flushed before it is
//! released:
//!
//! - **assign**: recover each partition from the lake (removing files of a flush that never
//!   committed) and assign it at the lake checkpoint, so Kafka's own committed offsets are only
//!   advisory; then tell the loop where each partition starts.
//! - **revoke**: hand the loop everything already read, ask it to flush and checkpoint the revoked
//!   partitions, wait for its answer, commit those offsets to Kafka synchronously, and only then
//!   release the partitions.
//!
//! Messages travel in batches: after a poll returns a message the thread keeps polling without
//! waiting, gathering what librdkafka has already fetched (up to [`BATCH_MAX_MESSAGES`] or
//! [`BATCH_MAX_BYTES`]) into one event. Handing messages over one at a time woke the processing
//! loop once per message, and each wake-up cost about as much CPU as decoding the message.
//!
//! Backpressure: when the channel is full the thread holds the message and stops polling for
//! up to [`PAUSE_AFTER`], waiting for room; librdkafka keeps its prefetched messages, so a
//! short stall (a flush in progress) costs no refetch. A longer stall pauses every assigned
//! partition and polls again (so group membership and callbacks stay alive) until the loop
//! catches up, then resumes. Pausing purges librdkafka's prefetch queue, which is why it is
//! kept for real stalls: pausing at every full channel turned a busy daemon into a cycle of
//! purges and refetches. Only already-fetched messages can be held, and librdkafka bounds those
//! with `queued.max.messages.kbytes`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message};
use tokio::sync::mpsc;

use driftwatch_lake::writer::LakeWriter;

use crate::config::StartFrom;
use crate::telemetry::Metrics;

/// How long a revoke waits for the loop to flush the revoked partitions before giving up and
/// releasing them anyway (the new owner then replays from the last checkpoint).
const REVOKE_TIMEOUT: Duration = Duration::from_secs(120);

/// Poll timeout: also the latency of commands (commit, stop).
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// How long the channel may stay full before the assignment is paused. Longer than a flush
/// handover, far shorter than `max.poll.interval.ms`.
pub const PAUSE_AFTER: Duration = Duration::from_secs(2);

/// Wait between attempts to forward held messages while not polling.
const HELD_RETRY: Duration = Duration::from_millis(1);

/// Messages gathered into one [`Event::Messages`] at most.
pub const BATCH_MAX_MESSAGES: usize = 512;

/// Payload bytes gathered into one [`Event::Messages`] at most (a batch is closed once it
/// reaches this; a single larger message makes a batch of its own).
pub const BATCH_MAX_BYTES: usize = 1024 * 1024;

/// Bytes of messages the event channel may hold (besides its count bound): with messages of up
/// to `message.max.bytes` a count alone would not bound memory.
pub const CHANNEL_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Bookkeeping bytes charged per message on top of its payload and key.
const MESSAGE_OVERHEAD_BYTES: usize = 256;

/// What an event costs against [`CHANNEL_MAX_BYTES`]: a message's payload and key; control
/// events are free (they are few and must never wait).
fn channel_cost(event: &Event) -> usize {
    match event {
        Event::Messages(messages) => messages.iter().map(message_cost).sum(),
        _ => 0,
    }
}

fn message_cost(message: &OwnedMessage) -> usize {
    message.payload().map_or(0, <[u8]>::len) + message.key().map_or(0, <[u8]>::len) + MESSAGE_OVERHEAD_BYTES
}

/// The channel from the poll thread to the processing loop, bounded to `capacity` events and
/// [`CHANNEL_MAX_BYTES`] of messages.
pub fn event_channel(capacity: usize) -> (EventSender, EventReceiver) {
    let (events, receiver) = mpsc::channel(capacity);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    (EventSender { events, queued_bytes: Arc::clone(&queued_bytes) }, EventReceiver { events: receiver, queued_bytes })
}

/// The poll thread's end of the event channel.
#[derive(Debug)]
pub struct EventSender {
    events: mpsc::Sender<Event>,
    /// [`channel_cost`] of the events sent and not yet received.
    queued_bytes: Arc<AtomicUsize>,
}

/// The processing loop's end of the event channel.
#[derive(Debug)]
pub struct EventReceiver {
    events: mpsc::Receiver<Event>,
    queued_bytes: Arc<AtomicUsize>,
}

impl EventReceiver {
    /// The next event, giving its bytes back to the sender; `None` once the poll thread is
    /// gone. Cancel safe.
    pub async fn recv(&mut self) -> Option<Event> {
        let event = self.events.recv().await?;
        self.queued_bytes.fetch_sub(channel_cost(&event), Ordering::AcqRel);
        Some(event)
    }
}

impl EventSender {
    /// Send without waiting; `Full` also when the channel already holds its bytes' worth (a
    /// single message larger than the bound still passes when the channel is empty).
    fn try_send(&self, event: Event) -> Result<(), mpsc::error::TrySendError<Event>> {
        let cost = channel_cost(&event);
        let queued = self.queued_bytes.fetch_add(cost, Ordering::AcqRel);
        if cost > 0 && queued > 0 && queued + cost > CHANNEL_MAX_BYTES {
            self.queued_bytes.fetch_sub(cost, Ordering::AcqRel);
            return Err(mpsc::error::TrySendError::Full(event));
        }
        self.events.try_send(event).inspect_err(|_| {
            self.queued_bytes.fetch_sub(cost, Ordering::AcqRel);
        })
    }

    /// Send, waiting for room in the count bound only (rebalance callbacks must hand over).
    fn blocking_send(&self, event: Event) -> Result<(), mpsc::error::SendError<Event>> {
        let cost = channel_cost(&event);
        self.queued_bytes.fetch_add(cost, Ordering::AcqRel);
        self.events.blocking_send(event).inspect_err(|_| {
            self.queued_bytes.fetch_sub(cost, Ordering::AcqRel);
        })
    }
}

/// What the poll thread tells the processing loop, in consumption order.
#[derive(Debug)]
pub enum Event {
    /// Consumed messages, in order (at most [`BATCH_MAX_MESSAGES`]).
    Messages(Vec<OwnedMessage>),
    /// Partitions now owned, each with the offset consumption starts from (`None`: no
    /// checkpoint; the first message read starts the first range).
    Assigned(Vec<(String, i32, Option<i64>)>),
    /// Partitions being released: flush them, then answer with the offsets now durable.
    Revoked { partitions: Vec<(String, i32)>, reply: std::sync::mpsc::SyncSender<Vec<(String, i32, i64)>> },
    /// Partitions taken away without a handshake: the group moved on while this member could
    /// not answer (frozen, partitioned from the coordinator). Another member may already be
    /// consuming them from the lake checkpoint, so what is buffered for them is dropped
    /// unwritten; writing it now would race the new owner. Answer once the flushes already in
    /// flight have finished, so that a later assignment's recovery never runs beside them.
    Lost { partitions: Vec<(String, i32)>, done: std::sync::mpsc::SyncSender<()> },
    /// librdkafka's latest high watermark per partition (from its statistics).
    HighWatermarks(Vec<(String, i32, i64)>),
    /// A consumer error the daemon cannot recover from (already counted and logged).
    Fatal { kind: &'static str, message: String },
}

/// What the processing loop asks of the poll thread.
#[derive(Debug)]
pub enum Command {
    /// Commit these offsets to Kafka (asynchronously); the lake already has the data.
    Commit(Vec<(String, i32, i64)>),
    /// Commit synchronously, leave the group and exit the thread.
    Stop(Vec<(String, i32, i64)>),
}

/// State shared between the poll loop and the rebalance callbacks (same thread; the mutex
/// is never contended, it only satisfies `Sync`).
#[derive(Debug, Default)]
struct Held {
    /// Messages polled while the channel was full, oldest first.
    events: VecDeque<Event>,
    /// Whether the assignment is paused for backpressure.
    paused: bool,
    /// Since when messages have been held back (the channel full); `None` when none are.
    blocked_since: Option<Instant>,
    /// Per partition, the offset after the last message accepted from librdkafka: where a
    /// resumed partition is sought to, and below which a message is a redelivery.
    positions: NextOffsets,
    /// Messages accepted and not yet sealed into an event (the batch being gathered). Kept
    /// here, not on the poll loop's stack, so a revoke forwards them before it asks for a flush.
    batch: Vec<OwnedMessage>,
    /// [`message_cost`] of `batch`.
    batch_bytes: usize,
}

impl Held {
    /// Add an accepted message to the batch being gathered; true when the batch is full.
    fn gather(&mut self, message: OwnedMessage) -> bool {
        self.batch_bytes += message_cost(&message);
        self.batch.push(message);
        self.batch.len() >= BATCH_MAX_MESSAGES || self.batch_bytes >= BATCH_MAX_BYTES
    }

    /// Close the batch being gathered (if any) and queue it behind the held events.
    fn seal(&mut self) {
        if !self.batch.is_empty() {
            self.batch_bytes = 0;
            self.events.push_back(Event::Messages(std::mem::take(&mut self.batch)));
        }
    }
}

/// Per (topic, partition), the offset after the last accepted message. Keyed topic first so
/// the per-message lookup borrows the message's topic instead of allocating a key.
#[derive(Debug, Default)]
struct NextOffsets(rustc_hash::FxHashMap<Box<str>, rustc_hash::FxHashMap<i32, i64>>);

impl NextOffsets {
    /// Record the message at `offset`; false when it lies below what was already accepted (a
    /// refetch after pause/resume), which must not be handed on again.
    fn accept(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        let partitions = match self.0.get_mut(topic) {
            Some(partitions) => partitions,
            None => self.0.entry(Box::from(topic)).or_default(),
        };
        let next = partitions.entry(partition).or_insert(offset);
        if offset < *next {
            return false;
        }
        *next = offset + 1;
        true
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    fn iter(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.0.iter().flat_map(|(topic, partitions)| partitions.iter().map(|(p, next)| (&**topic, *p, *next)))
    }
}

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
    /// Partitions currently assigned (for readiness).
    pub assigned: Arc<AtomicUsize>,
    /// Set while the brokers are unreachable (for readiness).
    pub brokers_down: Arc<AtomicBool>,
    last_error_log: Mutex<Option<Instant>>,
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
            assigned: Arc::new(AtomicUsize::new(0)),
            brokers_down: Arc::new(AtomicBool::new(false)),
            last_error_log: Mutex::new(None),
        }
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Log at most once per 10 s; the counter counts every occurrence.
    fn log_rate_limited(&self, kind: &'static str, message: &str) {
        let mut last = self.last_error_log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!(kind, error = message, "Kafka consumer error (repeats are counted, not logged, for 10 s).");
        }
    }

    /// Recover every assigned partition from the lake, retrying the lake until it answers.
    fn recover_assignment(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &TopicPartitionList,
    ) -> (TopicPartitionList, Vec<(String, i32, Option<i64>)>) {
        let mut positioned = TopicPartitionList::new();
        let mut starts = Vec::new();
        for element in tpl.elements() {
            let (topic, partition) = (element.topic().to_owned(), element.partition());
            let stream = kafka_stream_id(&self.group_id, &topic);
            let mut delay = Duration::from_millis(200);
            let checkpoint = loop {
                match self.runtime.block_on(self.writer.recover(&stream, partition)) {
                    Ok(checkpoint) => break checkpoint,
                    Err(error) => {
                        self.metrics.record_consumer_error("lake_recover");
                        tracing::warn!(topic, partition, %error, "Cannot recover partition from the lake; retrying.");
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
                }
            };
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
            tracing::info!(topic, partition, resume_at = ?next, "Partition assigned; recovered from the lake checkpoint.");
            starts.push((topic, partition, next));
        }
        (positioned, starts)
    }

    /// Compare the checkpoint with the partition's log (one bounded watermark query). A
    /// checkpoint beyond the log's end means the log was recreated or lost: start a new lake
    /// epoch at the log's start instead of waiting on an out-of-range fetch. A checkpoint before
    /// the log's start means retention deleted messages that were never ingested: say so loudly
    /// and continue from the start. When the query fails or times out, the checkpoint stands.
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
                tracing::warn!(topic, partition, %error, "Watermark query failed; resuming at the checkpoint.");
                return committed;
            }
        };
        if committed > high {
            match self.runtime.block_on(self.writer.reset_partition(stream, partition, low)) {
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
            }
        } else if committed < low {
            self.metrics.record_consumer_error("offsets_lost_to_retention");
            tracing::error!(
                topic,
                partition,
                committed,
                low,
                lost = low - committed,
                "Messages were deleted by retention before they were ingested; continuing at the log start."
            );
            low
        } else {
            committed
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
        if answer.recv_timeout(REVOKE_TIMEOUT).is_err() {
            tracing::error!(
                timeout_secs = REVOKE_TIMEOUT.as_secs(),
                "Flushes in flight did not finish in time after losing partitions; releasing them anyway."
            );
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
        match answer.recv_timeout(REVOKE_TIMEOUT) {
            Ok(durable) => durable,
            Err(_) => {
                tracing::error!(
                    timeout_secs = REVOKE_TIMEOUT.as_secs(),
                    "Revoked partitions were not flushed in time; releasing them uncommitted (the next owner replays them)."
                );
                Vec::new()
            }
        }
    }
}

impl ClientContext for PollerContext {
    fn stats(&self, statistics: Statistics) {
        if statistics.brokers.values().any(|broker| broker.state == "UP") {
            self.brokers_down.store(false, Ordering::Release);
        }
        let marks: Vec<(String, i32, i64)> = statistics
            .topics
            .iter()
            .flat_map(|(topic, t)| {
                t.partitions
                    .values()
                    .filter(|p| p.partition >= 0 && p.hi_offset >= 0)
                    .map(move |p| (topic.clone(), p.partition, p.hi_offset))
            })
            .collect();
        if !marks.is_empty() {
            // Statistics are periodic; dropping one when the loop is busy loses nothing.
            let _ = self.events.try_send(Event::HighWatermarks(marks));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = match error.rdkafka_error_code() {
            Some(rdkafka::types::RDKafkaErrorCode::AllBrokersDown) => {
                self.brokers_down.store(true, Ordering::Release);
                "all_brokers_down"
            }
            Some(rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure) => "transport",
            Some(rdkafka::types::RDKafkaErrorCode::Fatal) => "fatal",
            _ => "client",
        };
        self.metrics.record_consumer_error(kind);
        self.log_rate_limited(kind, &format!("{error}: {reason}"));
        if kind == "fatal" {
            // librdkafka cannot continue with this client: stop the daemon so it is restarted,
            // rather than stay up consuming nothing. Buffers are flushed on the way out.
            let event = Event::Fatal { kind, message: format!("{error}: {reason}") };
            let _ = self.events.try_send(event);
        }
    }
}

impl ConsumerContext for PollerContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let (positioned, starts) = self.recover_assignment(consumer, tpl);
                if !starts.is_empty() && self.events.blocking_send(Event::Assigned(starts)).is_err() {
                    return;
                }
                if let Err(error) = consumer.assign(&positioned) {
                    self.metrics.record_consumer_error("assign");
                    tracing::error!(%error, "Cannot assign partitions.");
                }
                self.assigned.store(positioned.count(), Ordering::Release);
                // A completed assignment needed the group coordinator: the brokers are back.
                self.brokers_down.store(false, Ordering::Release);
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
            }
            other => {
                self.metrics.record_consumer_error("rebalance");
                tracing::error!(error = ?other, "Rebalance error; releasing the assignment.");
                let _ = consumer.unassign();
                self.assigned.store(0, Ordering::Release);
            }
        }
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

/// Run the poll loop until `Stop`. Called on a dedicated thread.
pub fn poll_loop(consumer: &BaseConsumer<PollerContext>, commands: &std::sync::mpsc::Receiver<Command>) {
    let context = consumer.context();
    loop {
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Commit(offsets) => {
                    if let Err(error) = consumer.commit(&offsets_list(&offsets), CommitMode::Async) {
                        context.metrics.record_consumer_error("commit");
                        context.log_rate_limited("commit", &error.to_string());
                    }
                }
                Command::Stop(offsets) => {
                    context.stopping.store(true, Ordering::Release);
                    if !offsets.is_empty()
                        && let Err(error) = consumer.commit(&offsets_list(&offsets), CommitMode::Sync)
                    {
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
                context.brokers_down.store(false, Ordering::Release);
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
                let kind = match &error {
                    KafkaError::PartitionEOF(_) => continue,
                    KafkaError::MessageConsumption(_) => "consume",
                    _ => "poll",
                };
                context.metrics.record_consumer_error(kind);
                context.log_rate_limited(kind, &error.to_string());
            }
        }
    }
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

/// What the poll loop does about held messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backpressure {
    /// Nothing held: poll (resuming a paused assignment first).
    Flowing,
    /// Held only briefly: wait for room without polling, keeping librdkafka's prefetch.
    Wait,
    /// Held for longer than [`PAUSE_AFTER`]: pause the assignment and poll for callbacks.
    Pause,
}

fn backpressure(context: &PollerContext) -> Backpressure {
    let mut held = context.lock_held();
    let held = &mut *held;
    decide_backpressure(!held.events.is_empty(), held.paused, &mut held.blocked_since, Instant::now())
}

/// The backpressure decision: `blocked_since` starts when messages are first held and clears
/// once they are all forwarded.
fn decide_backpressure(holding: bool, paused: bool, blocked_since: &mut Option<Instant>, now: Instant) -> Backpressure {
    if !holding {
        *blocked_since = None;
        return Backpressure::Flowing;
    }
    let since = *blocked_since.get_or_insert(now);
    if paused || now.duration_since(since) >= PAUSE_AFTER { Backpressure::Pause } else { Backpressure::Wait }
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
    use super::*;

    #[test]
    fn next_offsets_accept_each_offset_once_per_partition() {
        let mut next = NextOffsets::default();
        assert!(next.accept("spans", 0, 10));
        assert!(next.accept("spans", 0, 11));
        assert!(!next.accept("spans", 0, 11), "a refetched message is a redelivery");
        assert!(!next.accept("spans", 0, 5));
        assert!(next.accept("spans", 1, 3), "partitions are independent");
        assert!(next.accept("logs", 0, 0), "topics are independent");
        assert!(next.accept("spans", 0, 20), "a gap (compaction, transaction markers) is fine");
        let mut seen: Vec<_> = next.iter().collect();
        seen.sort_unstable();
        assert_eq!(seen, vec![("logs", 0, 1), ("spans", 0, 21), ("spans", 1, 4)]);
        next.clear();
        assert!(next.accept("spans", 0, 0), "cleared on a new assignment");
    }

    #[test]
    fn short_stalls_wait_long_stalls_pause_and_draining_resumes() {
        let start = Instant::now();
        let mut since = None;
        assert_eq!(decide_backpressure(false, false, &mut since, start), Backpressure::Flowing);
        // Messages held: wait (keeping librdkafka's prefetch) until the stall outlasts PAUSE_AFTER.
        assert_eq!(decide_backpressure(true, false, &mut since, start), Backpressure::Wait);
        let almost = start + PAUSE_AFTER - Duration::from_millis(1);
        assert_eq!(decide_backpressure(true, false, &mut since, almost), Backpressure::Wait);
        assert_eq!(decide_backpressure(true, false, &mut since, start + PAUSE_AFTER), Backpressure::Pause);
        // Once paused, stay paused while anything is held.
        assert_eq!(decide_backpressure(true, true, &mut since, start + PAUSE_AFTER), Backpressure::Pause);
        // Everything forwarded: flow (the caller resumes) and the stall clock restarts.
        let later = start + 3 * PAUSE_AFTER;
        assert_eq!(decide_backpressure(false, true, &mut since, later), Backpressure::Flowing);
        assert_eq!(since, None);
        assert_eq!(decide_backpressure(true, false, &mut since, later), Backpressure::Wait);
    }

    fn owned(offset: i64, bytes: usize) -> OwnedMessage {
        OwnedMessage::new(Some(vec![0; bytes]), None, "t".to_owned(), rdkafka::Timestamp::NotAvailable, 0, offset, None)
    }

    #[test]
    fn batches_close_at_their_message_or_byte_bound_and_keep_order() {
        let mut held = Held::default();
        for offset in 0..BATCH_MAX_MESSAGES as i64 - 1 {
            assert!(!held.gather(owned(offset, 10)));
        }
        assert!(held.gather(owned(BATCH_MAX_MESSAGES as i64 - 1, 10)), "full at the message bound");
        held.seal();
        assert!(held.gather(owned(1_000, BATCH_MAX_BYTES)), "one big message fills a batch alone");
        held.seal();
        assert!(!held.gather(owned(2_000, 10)));
        held.seal();
        held.seal();
        let batches: Vec<Vec<i64>> = held
            .events
            .iter()
            .map(|event| match event {
                Event::Messages(messages) => messages.iter().map(Message::offset).collect(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(batches.len(), 3, "sealing an empty batch queues nothing");
        assert_eq!(batches[0], (0..BATCH_MAX_MESSAGES as i64).collect::<Vec<_>>());
        assert_eq!(batches[1..], [vec![1_000], vec![2_000]]);
        assert_eq!(held.batch_bytes, 0);
    }

    #[tokio::test]
    async fn the_event_channel_is_bounded_in_bytes() {
        let (sender, mut receiver) = event_channel(1_000);
        let message = |bytes: usize| Event::Messages(vec![owned(0, bytes)]);
        // One message larger than the bound still passes into an empty channel.
        assert!(sender.try_send(message(CHANNEL_MAX_BYTES * 2)).is_ok());
        assert!(matches!(sender.try_send(message(1)), Err(mpsc::error::TrySendError::Full(_))));
        // Control events are never held back by bytes.
        assert!(sender.try_send(Event::HighWatermarks(Vec::new())).is_ok());
        // The receiver gives the bytes back; then messages flow until the bound.
        assert!(matches!(receiver.recv().await, Some(Event::Messages(_))));
        assert!(matches!(receiver.recv().await, Some(Event::HighWatermarks(_))));
        assert_eq!(sender.queued_bytes.load(Ordering::Acquire), 0);
        let size = CHANNEL_MAX_BYTES / 4;
        let mut sent = 0;
        while sender.try_send(message(size)).is_ok() {
            sent += 1;
        }
        assert_eq!(sent, 3, "three quarter-bound messages (plus overhead) fit, the fourth does not");
        assert!(sender.queued_bytes.load(Ordering::Acquire) <= CHANNEL_MAX_BYTES);
    }
}
