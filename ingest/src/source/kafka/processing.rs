//! The processing loop: one `select!` over shutdown, a tick, flush completions and events from
//! the poll thread, in that order (see [`next_step`]). [`consume`] builds the consumer, starts the
//! poll and watermark threads and the flusher, runs the loop, and shuts down: the final flush
//! within its budget, the poll thread's last commit, leaving the group.
//!
//! The loop's state is a [`Daemon`]; its methods live beside what they do:
//!
//! - this file: the tick (age flushes, memory budget, gauges, lake probe), readiness and the
//!   final flush.
//! - `buffers`: messages into per-partition buffers, flushes and their completions.
//! - `partitions`: events from the poll thread and what becomes of partitions (assigned,
//!   revoked, lost, claimed elsewhere, reset).
//! - `lake_probe`: whether the lake takes writes.

mod buffers;
mod lake_probe;
mod partitions;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::channel::{self, Command};
use super::client;
use super::poller::{self, PollerContext};
use crate::FastHashMap;
use crate::config::KafkaConfig;
use crate::decode::PayloadFormat;
use crate::error::{Error, Result};
use crate::pipeline::{FlushReason, Flusher, FlusherError, PartitionBuffer, Processor, Shutdown};
use crate::runtime::Components;
use crate::telemetry::Readiness;
use lake_probe::LakeProbe;

/// Events buffered between the poll thread and the loop, a backstop: an event is a batch of up
/// to 512 messages, so the channel's byte bound (`CHANNEL_MAX_BYTES`, 32 MiB) is the one that
/// binds, and librdkafka's own prefetch queue (`queued.max.messages.kbytes`) is the real buffer.
const EVENT_CHANNEL_CAPACITY: usize = 4096;

/// How often age limits, the memory budget, gauges and readiness are checked.
const TICK: Duration = Duration::from_millis(500);

pub(super) async fn consume(
    components: &Components,
    kafka: &KafkaConfig,
    readiness: &Readiness,
    tasks: &TaskTracker,
    shutdown: Shutdown,
) -> Result<()> {
    let mut client = ClientThreads::start(components, kafka)?;
    let abandon = CancellationToken::new();
    let flusher = Flusher::spawn(
        Arc::clone(&components.writer),
        components.metrics.clone(),
        kafka.max_inflight_flushes,
        tasks,
        abandon.clone(),
    );
    // A shutdown can find the loop waiting inside a step for a flush slot or for a revoke's
    // flushes, behind commits the lake refuses; it sees the request only once that wait ends.
    // Flushes are abandoned at the final flush's budget counted from the request, which ends
    // those waits too, so the group is still left within the deadline.
    tasks.spawn(shutdown.clone().abandon_flushes_at_budget(abandon.clone()));
    // Read by `/readyz` itself: while commits fail, this loop may be blocked waiting for the
    // flusher and cannot report it.
    readiness.not_ready_while(flusher.lake_failing_flag(), "lake not writable (commits failing and retried)");
    let mut state = Daemon {
        components,
        processor: components.processor(),
        flusher,
        buffers: FastHashMap::default(),
        formats: kafka.topics.iter().map(|t| (t.name.clone(), t.format)).collect(),
        topics: FastHashMap::default(),
        streams: FastHashMap::default(),
        group_id: kafka.group_id.clone(),
        durable: FastHashMap::default(),
        started_at: FastHashMap::default(),
        claimed_elsewhere: FastHashMap::default(),
        commands: client.commands.clone(),
        lake: LakeProbe::new(),
    };
    state.lake.check_now(state.components.writer.store()).await;
    let outcome = run_loop(&mut state, &mut client, readiness, &shutdown).await;

    // First, before anything waits on the poll thread: it may be inside an assignment,
    // waiting for an unavailable lake.
    client.stop_recovery.cancel();
    readiness.set_not_ready("shutting down");
    let started = Instant::now();
    let flushed = final_flush(&mut state, &outcome, &shutdown, &abandon).await;
    let final_offsets = match &flushed {
        Some(Ok(offsets)) => offsets.clone(),
        _ => Vec::new(),
    };
    // The poll thread is stopped whatever happened, so the group is left and its
    // partitions move on without waiting for the session timeout.
    client.stop(final_offsets.clone());
    abandon.cancel();
    let elapsed_ms = shutdown.requested_at().unwrap_or(started).elapsed().as_millis() as u64;
    let partitions = final_offsets.len();
    let stopped_by = outcome.as_ref().err().map_or_else(|| "shutdown requested".to_owned(), ToString::to_string);
    match flushed {
        Some(Ok(_)) if outcome.is_ok() => tracing::info!(
            partitions,
            elapsed_ms,
            "Shutdown complete: buffers flushed, checkpoints written, offsets committed."
        ),
        Some(Ok(_)) => tracing::error!(
            error = %stopped_by,
            partitions,
            elapsed_ms,
            "Stopped on an error; what was buffered was flushed, checkpointed and committed."
        ),
        None => tracing::error!(
            error = %stopped_by,
            elapsed_ms,
            "Stopped on a lake error; buffered rows were not written and are read again from the \
             lake checkpoint on restart."
        ),
        Some(Err(flush_error)) => {
            tracing::error!(
                error = %flush_error,
                stopped_by = %stopped_by,
                elapsed_ms,
                "Shutdown flush failed; buffered rows were not written and are read again from the \
                 lake checkpoint on restart."
            );
            return outcome.and(Err(flush_error));
        }
    }
    outcome
}

/// The consumer's two threads and what the processing loop shares with them.
struct ClientThreads {
    /// Messages and partition events from the poll thread.
    events: channel::EventReceiver,
    /// Commands to the poll thread (commits, the final stop).
    commands: std::sync::mpsc::Sender<Command>,
    /// Partitions assigned to this member, for readiness.
    assigned: Arc<std::sync::atomic::AtomicUsize>,
    /// Subscribed topics the brokers do not know, for readiness.
    missing_topics: Arc<std::sync::Mutex<Vec<String>>>,
    /// Whether the brokers answer, for readiness.
    brokers: Arc<poller::BrokerHealth>,
    /// Cancels assignment recoveries still waiting for the lake.
    stop_recovery: CancellationToken,
    /// Dropped to stop the watermark thread; it holds the consumer only between queries.
    stop_watermarks: std::sync::mpsc::SyncSender<()>,
    poll_thread: std::thread::JoinHandle<()>,
    watermark_thread: std::thread::JoinHandle<()>,
}

impl ClientThreads {
    /// Build the consumer, subscribe to the configured topics and start the poll thread (which
    /// owns the consumer) and the watermark thread.
    fn start(components: &Components, kafka: &KafkaConfig) -> Result<Self> {
        let (events_tx, events) = channel::event_channel(EVENT_CHANNEL_CAPACITY);
        // Commands are at most one per completed flush plus one stop, and flushes in flight are
        // bounded by `max_inflight_flushes`, so this channel cannot grow without bound; a bounded
        // one could block the loop on the poll thread, which may be waiting for the loop.
        #[allow(clippy::disallowed_methods)]
        let (commands, commands_rx) = std::sync::mpsc::channel();
        let context = PollerContext::new(
            events_tx,
            Arc::clone(&components.writer),
            tokio::runtime::Handle::current(),
            kafka.group_id.clone(),
            kafka.start_from,
            kafka.offset_query_timeout,
            components.metrics.clone(),
        )
        .with_static_membership(kafka.librdkafka.contains_key("group.instance.id"));
        let assigned = Arc::clone(&context.assigned);
        let stop_recovery = context.shutdown.clone();
        let missing_topics = Arc::clone(&context.missing_topics);
        let brokers = Arc::clone(&context.brokers);
        let consumer: Arc<BaseConsumer<PollerContext>> = Arc::new(
            client::client_config(kafka)
                .create_with_context(context)
                .map_err(|error| client::consumer_refused(&client::describe_error(&error, kafka)))?,
        );
        let topics: Vec<&str> = kafka.topics.iter().map(|t| t.name.as_str()).collect();
        for topic in &topics {
            components.metrics.track_topic(topic);
        }
        consumer
            .subscribe(&topics)
            .map_err(|source| Error::Kafka { context: format!("subscribing to {topics:?}"), source })?;
        let (stop_watermarks, watermarks_stopped) = std::sync::mpsc::sync_channel::<()>(1);
        let watermark_thread = std::thread::Builder::new()
            .name("driftwatch-kafka-watermarks".to_owned())
            .spawn({
                let consumer = Arc::clone(&consumer);
                move || {
                    poller::refresh_paused_watermarks(&consumer, &watermarks_stopped, poller::PAUSED_WATERMARK_REFRESH);
                }
            })
            .map_err(|source| Error::Spawn { thread: "Kafka watermark", source })?;
        let poll_thread = std::thread::Builder::new()
            .name("driftwatch-kafka-poll".to_owned())
            .spawn(move || poller::poll_loop(&consumer, &commands_rx))
            .map_err(|source| Error::Spawn { thread: "Kafka poll", source })?;
        Ok(Self {
            events,
            commands,
            assigned,
            missing_topics,
            brokers,
            stop_recovery,
            stop_watermarks,
            poll_thread,
            watermark_thread,
        })
    }

    /// Stop both threads: the poll thread commits `final_offsets` and leaves the group.
    fn stop(self, final_offsets: Vec<(String, i32, i64)>) {
        drop(self.stop_watermarks);
        let _ = self.commands.send(Command::Stop(final_offsets));
        drop(self.events);
        if self.poll_thread.join().is_err() {
            tracing::error!("The Kafka poll thread panicked.");
        }
        // At most one bounded watermark query away; whichever thread ends last closes the consumer.
        if self.watermark_thread.join().is_err() {
            tracing::error!("The Kafka watermark thread panicked.");
        }
    }
}

/// The processing loop, until shutdown is requested or an error stops it.
async fn run_loop(
    state: &mut Daemon<'_>,
    client: &mut ClientThreads,
    readiness: &Readiness,
    shutdown: &Shutdown,
) -> Result<()> {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Over the memory budget, messages wait in the channel (and then in librdkafka,
        // paused) until a flush completes.
        let take_events = !state.over_budget();
        let step =
            next_step(shutdown.requested(), &mut tick, state.flusher.next_done(), client.events.recv(), take_events)
                .await;
        match step {
            Step::Shutdown => return Ok(()),
            Step::Flushed(done) => {
                state.on_flushed(&done?);
                // Messages wait while over budget, so the next early flush starts here.
                state.relieve_memory().await?;
            }
            Step::Event(event) => state.on_event(event.ok_or(Error::PollThreadStopped)?).await?,
            Step::Tick => {
                state.on_tick().await?;
                let assigned = client.assigned.load(Ordering::Acquire);
                let missing = if assigned == 0 {
                    client.missing_topics.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
                } else {
                    Vec::new()
                };
                state.update_readiness(readiness, assigned, client.brokers.unready_reason(), &missing);
            }
        }
    }
}

/// Whatever stopped the loop, make what is buffered durable, unless the lake itself is what
/// failed (`None`); the durable offsets to commit, or why they are not. Gives the flushes up at
/// the final flush's budget.
async fn final_flush(
    state: &mut Daemon<'_>,
    outcome: &Result<()>,
    shutdown: &Shutdown,
    abandon: &CancellationToken,
) -> Option<Result<Vec<(String, i32, i64)>>> {
    if matches!(outcome, Err(Error::Flush(_) | Error::Lake { .. })) {
        return None;
    }
    let budget = shutdown.final_flush_budget();
    match tokio::time::timeout(budget, state.flush_all(FlushReason::Shutdown)).await {
        // Given up at the same budget by the flusher itself (see the spawn in `consume`), which
        // may come a moment before the timeout does.
        Ok(Err(Error::Flush(FlusherError::GaveUp | FlusherError::Abandoned { .. }))) | Err(_) => {
            // The lake is not taking writes (commits are being retried). Waiting longer would end
            // in the process deadline's exit, which leaves the group only when the brokers time
            // the session out; the rows are read again from the lake checkpoint either way.
            abandon.cancel();
            Some(Err(Error::ShutdownFlushGivenUp { budget }))
        }
        Ok(flushed) => {
            if flushed.is_ok() {
                // Nothing is left for the lake to take: leaving the group must not set off the
                // give-up watcher's warning if it crosses the flush budget.
                abandon.cancel();
            }
            Some(flushed)
        }
    }
}

/// Why nothing is assigned, naming subscribed topics the brokers do not know.
fn unassigned_reason(missing_topics: &[String]) -> String {
    if missing_topics.is_empty() {
        "no partitions assigned".to_owned()
    } else {
        format!("no partitions assigned; subscribed topics do not exist: {}", missing_topics.join(", "))
    }
}

/// What the processing loop does next.
#[derive(Debug)]
enum Step<D, E> {
    Shutdown,
    Tick,
    Flushed(D),
    Event(E),
}

/// The processing loop's one `select!`. Shutdown comes first, then the tick: it is cheap and
/// periodic, so it cannot starve the rest, while the input of a backlog is always ready and
/// would starve it (gauges, age flushes of partitions that get no further message, readiness
/// and lake re-checks). Flush completions come before input because they free the memory and
/// flush slots that input waits for. Cancel safe: the losing futures are dropped unpolled or
/// are cancel safe (`Flusher::next_done`, `recv`).
async fn next_step<D, E>(
    shutdown: &CancellationToken,
    tick: &mut tokio::time::Interval,
    flushed: impl Future<Output = D>,
    event: impl Future<Output = E>,
    take_events: bool,
) -> Step<D, E> {
    tokio::select! {
        biased;
        () = shutdown.cancelled() => Step::Shutdown,
        _ = tick.tick() => Step::Tick,
        done = flushed => Step::Flushed(done),
        event = event, if take_events => Step::Event(event),
    }
}

/// The processing loop's state.
struct Daemon<'a> {
    components: &'a Components,
    processor: Processor,
    flusher: Flusher,
    /// One buffer per assigned (topic, partition).
    buffers: FastHashMap<(Arc<str>, i32), PartitionBuffer>,
    formats: FastHashMap<String, PayloadFormat>,
    /// Interned topic names, so a message costs no allocation for its topic.
    topics: FastHashMap<String, Arc<str>>,
    /// Checkpoint stream -> topic, to route flush completions.
    streams: FastHashMap<String, Arc<str>>,
    group_id: String,
    /// Offset up to which each partition is durable in the lake.
    durable: FastHashMap<(Arc<str>, i32), (i64, Instant)>,
    /// Where the consumer started reading each partition in this assignment: what lag is
    /// measured from until a flush of it is durable.
    started_at: FastHashMap<(Arc<str>, i32), i64>,
    /// Partitions the lake says another daemon has claimed, and since when, until the group
    /// assigns them here again or takes them away (as it soon does when this member is the
    /// one it moved on from), or this member claims them back ([`partitions::RECLAIM_AFTER`]).
    claimed_elsewhere: FastHashMap<(Arc<str>, i32), Instant>,
    commands: std::sync::mpsc::Sender<Command>,
    lake: LakeProbe,
}

impl Daemon<'_> {
    async fn on_tick(&mut self) -> Result<()> {
        let now = Instant::now();
        let due: Vec<((Arc<str>, i32), FlushReason)> = self
            .buffers
            .iter()
            .filter_map(|(key, buffer)| buffer.due(&self.components.limits, now).map(|reason| (key.clone(), reason)))
            .collect();
        for (key, reason) in due {
            self.flush(&key, reason).await?;
        }
        self.relieve_memory().await?;
        self.reclaim_partitions_still_assigned(now);
        // Batches handed to the flusher are not in the lake yet either, and their bytes count
        // against the budget the gauge is shown beside.
        let rows = self.buffers.values().map(PartitionBuffer::rows).sum::<usize>() + self.flusher.in_flight_rows();
        self.components.metrics.set_buffered(rows, self.held_bytes());
        self.lake.poll(self.components.writer.store()).await;
        Ok(())
    }

    fn update_readiness(
        &self,
        readiness: &Readiness,
        assigned: usize,
        brokers_unready: Option<&'static str>,
        missing_topics: &[String],
    ) {
        self.components.metrics.set_kafka_brokers_available(brokers_unready.is_none());
        if !self.lake.writable {
            readiness.set_not_ready("lake not writable");
        } else if let Some(reason) = brokers_unready {
            readiness.set_not_ready(reason);
        } else if assigned == 0 {
            readiness.set_not_ready(unassigned_reason(missing_topics));
        } else {
            readiness.set_ready();
        }
    }

    /// Flush every buffer and wait until all are durable; returns the offsets to commit.
    async fn flush_all(&mut self, reason: FlushReason) -> Result<Vec<(String, i32, i64)>> {
        let keys: Vec<(Arc<str>, i32)> = self.buffers.keys().cloned().collect();
        for key in &keys {
            self.flush(key, reason).await?;
        }
        self.drain_flushes().await?;
        Ok(self
            .durable
            .iter()
            .map(|((topic, partition), (offset, _))| (topic.to_string(), *partition, *offset))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backlog keeps events always ready; the tick still runs when it is due, and input
    /// flows between ticks.
    #[tokio::test]
    async fn a_due_tick_runs_before_ready_input() {
        let shutdown = CancellationToken::new();
        // A tick overdue since a whole period, as after a long stretch of input.
        let overdue = tokio::time::Instant::now().checked_sub(TICK).unwrap_or_else(tokio::time::Instant::now);
        let mut tick = tokio::time::interval_at(overdue, TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let pending = std::future::pending::<()>;
        let step = next_step(&shutdown, &mut tick, pending(), std::future::ready("event"), true).await;
        assert!(matches!(step, Step::Tick), "{step:?}");
        let step = next_step(&shutdown, &mut tick, pending(), std::future::ready("event"), true).await;
        assert!(matches!(step, Step::Event("event")), "{step:?}");
        shutdown.cancel();
        let step = next_step(&shutdown, &mut tick, std::future::ready(()), std::future::ready("event"), true).await;
        assert!(matches!(step, Step::Shutdown), "{step:?}");
    }
}
