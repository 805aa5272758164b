//! The Kafka daemon: a consumer group over several topics, exactly-once into the lake.
//!
//! # Data path
//!
//! ```text
//! poll thread (rdkafka)  --Event (bounded)-->  processing loop  --FlushBatch-->  flusher task
//!        ^                                          |                               |
//!        +------------- Command::Commit <-----------+<-------- FlushDone -----------+
//! ```
//!
//! - [`channel`]: the event channel from the poll thread, bounded in events and in message
//!   bytes, and the commands going back.
//! - [`held`]: what the poll thread holds while the channel is full (batches being gathered,
//!   per-partition positions) and when it pauses.
//! - [`poller`]: owns the consumer; forwards messages and rebalance events in order; pauses
//!   partitions under backpressure; recovers partitions from the lake on assign.
//! - this module: the processing loop, one `select!` over shutdown, a tick, flush completions
//!   and events, in that order (see `next_step`). It keeps one [`PartitionBuffer`] per assigned
//!   partition, flushes on rows, bytes or age per partition (and the largest buffer when all
//!   together exceed the memory budget), and after each durable flush asks the poll thread to
//!   commit that offset to Kafka so lag tools see it. The lake checkpoint, not Kafka, is where
//!   partitions resume.

pub mod channel;
pub mod client;
pub mod held;
pub mod poller;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::FastHashMap;
use crate::config::{Config, KafkaConfig};
use crate::decode::PayloadFormat;
use crate::error::{Error, Result};
use crate::pipeline::{FlushOutcome, FlushReason, Flusher, FlusherError, PartitionBuffer, Processor, largest_buffer};
use crate::runtime::Components;
use crate::source::file::now_nanos;
use crate::telemetry::{Readiness, http};
use channel::{Command, Event};
use poller::{PollerContext, kafka_stream_id};

/// Events buffered between the poll thread and the loop. Small on purpose: librdkafka's own
/// prefetch queue (`queued.max.messages.kbytes`) is the real buffer.
const EVENT_CHANNEL_CAPACITY: usize = 4096;

/// How often age limits, the memory budget, gauges and readiness are checked.
const TICK: Duration = Duration::from_millis(500);

/// How often the lake is probed while it refuses writes, and while it takes them: a lake that
/// breaks while every partition is quiet (no commit to fail) still turns `/readyz` to 503.
const LAKE_PROBE_WHILE_UNWRITABLE: Duration = Duration::from_secs(5);
const LAKE_PROBE_WHILE_WRITABLE: Duration = Duration::from_secs(30);
/// A probe that has not answered by then counts as a failed one (and is left to finish).
const LAKE_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Run the daemon until `shutdown` fires; then flush, checkpoint, commit and leave the group,
/// all within `shutdown_deadline`. The final flush gets all of it but the last quarter (at most
/// 10 s), kept for leaving the group even when the lake does not take the flush.
pub async fn run_daemon(config: Config, shutdown: CancellationToken, shutdown_deadline: Duration) -> Result<()> {
    let kafka = config.kafka.clone().ok_or_else(|| {
        Error::Other(
            "`driftwatch ingest` needs a [kafka] section with `brokers` (or use --source file:PATH)".to_owned(),
        )
    })?;
    let components = Components::build(config).await?;
    let readiness = Readiness::new();
    readiness.set_not_ready("starting");
    let tasks = TaskTracker::new();
    let http_shutdown = CancellationToken::new();
    let server = http::bind(components.config.http.clone(), components.metrics.clone(), readiness.clone()).await?;
    tracing::info!(address = %server.local_addr(), "HTTP endpoint serving /metrics, /healthz and /readyz.");
    let serving = http_shutdown.clone();
    tasks.spawn(async move {
        if let Err(error) = server.run(serving).await {
            tracing::error!(%error, "HTTP endpoint failed.");
        }
    });

    let result = consume(&components, &kafka, &readiness, &tasks, shutdown, shutdown_deadline).await;
    http_shutdown.cancel();
    tasks.close();
    // After a shutdown that gave up on the lake, the flusher can still be inside a store
    // attempt (a store client's own retries run for minutes). Waiting for it would end in the
    // deadline's kill; leaving it is a crash to the lake, which its protocol makes exact.
    if tokio::time::timeout(TASKS_GRACE, tasks.wait()).await.is_err() {
        tracing::warn!(
            grace_ms = TASKS_GRACE.as_millis() as u64,
            "A lake commit given up at shutdown is still under way; exiting without waiting for it."
        );
    }
    result
}

/// How long the daemon's tasks get to finish once the pipeline has stopped: the HTTP server's
/// last answers, and a flusher task that has nothing left to do.
const TASKS_GRACE: Duration = Duration::from_secs(1);

async fn consume(
    components: &Components,
    kafka: &KafkaConfig,
    readiness: &Readiness,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
    shutdown_deadline: Duration,
) -> Result<()> {
    let (events_tx, mut events) = channel::event_channel(EVENT_CHANNEL_CAPACITY);
    // Commands are at most one per completed flush plus one stop, and flushes in flight are
    // bounded by `max_inflight_flushes`, so this channel cannot grow without bound.
    let (commands, commands_rx) = std::sync::mpsc::channel();
    let context = PollerContext::new(
        events_tx,
        Arc::clone(&components.writer),
        tokio::runtime::Handle::current(),
        kafka.group_id.clone(),
        kafka.start_from,
        kafka.offset_query_timeout,
        components.metrics.clone(),
    );
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
    // Dropped to stop the watermark thread; it holds the consumer only between queries.
    let (stop_watermarks, watermarks_stopped) = std::sync::mpsc::channel::<()>();
    let watermark_thread = std::thread::Builder::new()
        .name("driftwatch-kafka-watermarks".to_owned())
        .spawn({
            let consumer = Arc::clone(&consumer);
            move || {
                poller::refresh_paused_watermarks(&consumer, &watermarks_stopped, poller::PAUSED_WATERMARK_REFRESH);
            }
        })
        .map_err(|source| Error::Io { path: "watermark thread".to_owned(), source })?;
    let poll_thread = std::thread::Builder::new()
        .name("driftwatch-kafka-poll".to_owned())
        .spawn(move || poller::poll_loop(&consumer, &commands_rx))
        .map_err(|source| Error::Io { path: "poll thread".to_owned(), source })?;

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
    // When the shutdown was asked for: the loop may see it only later (see above), and the
    // time the shutdown took is reported from the request.
    let shutdown_requested: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    tasks.spawn({
        let (shutdown, abandon) = (shutdown.clone(), abandon.clone());
        let shutdown_requested = Arc::clone(&shutdown_requested);
        let budget = final_flush_budget(shutdown_deadline);
        async move {
            tokio::select! {
                () = abandon.cancelled() => {}
                () = async {
                    shutdown.cancelled().await;
                    let _ = shutdown_requested.set(Instant::now());
                    tokio::time::sleep(budget).await;
                } => abandon.cancel(),
            }
        }
    });
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
        claimed_elsewhere: std::collections::HashSet::new(),
        commands: commands.clone(),
        lake: LakeProbe::new(),
    };
    state.lake.check_now(state.components.writer.store()).await;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let outcome: Result<()> = loop {
        // Over the memory budget, messages wait in the channel (and then in librdkafka,
        // paused) until a flush completes.
        let take_events = !state.over_budget();
        let step = next_step(&shutdown, &mut tick, state.flusher.next_done(), events.recv(), take_events).await;
        match step {
            Step::Shutdown => break Ok(()),
            Step::Flushed(done) => match done {
                Ok(done) => {
                    state.on_flushed(&done);
                    // Messages wait while over budget, so the next early flush starts here.
                    if let Err(error) = state.relieve_memory().await {
                        break Err(error);
                    }
                }
                Err(error) => break Err(error.into()),
            },
            Step::Event(event) => match event {
                Some(event) => {
                    if let Err(error) = state.on_event(event).await {
                        break Err(error);
                    }
                }
                None => break Err(Error::Other("the Kafka poll thread stopped unexpectedly".to_owned())),
            },
            Step::Tick => {
                if let Err(error) = state.on_tick().await {
                    break Err(error);
                }
                let assigned = assigned.load(Ordering::Acquire);
                let missing = if assigned == 0 {
                    missing_topics.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
                } else {
                    Vec::new()
                };
                state.update_readiness(readiness, assigned, brokers.unready_reason(), &missing);
            }
        }
    };

    // First, before anything waits on the poll thread: it may be inside an assignment,
    // waiting for an unavailable lake.
    stop_recovery.cancel();
    readiness.set_not_ready("shutting down");
    let started = Instant::now();
    // Whatever stopped the loop, what is buffered is made durable first, unless the lake
    // itself is what failed.
    let flushed = match &outcome {
        Err(Error::Flush(_) | Error::Lake { .. }) => None,
        _ => {
            let budget = final_flush_budget(shutdown_deadline);
            match tokio::time::timeout(budget, state.flush_all(FlushReason::Shutdown)).await {
                // Given up at the same budget by the flusher itself (see the spawn above),
                // which may come a moment before the timeout does.
                Ok(Err(Error::Flush(FlusherError::GaveUp | FlusherError::Abandoned { .. }))) | Err(_) => {
                    // The lake is not taking writes (commits are being retried). Waiting longer
                    // would end in the process deadline's exit, which leaves the group only
                    // when the brokers time the session out; the rows are read again from the
                    // lake checkpoint either way.
                    abandon.cancel();
                    Some(Err(Error::Other(format!(
                        "the lake did not take the shutdown flush within {budget:?}; leaving the group \
                         without committing"
                    ))))
                }
                Ok(flushed) => Some(flushed),
            }
        }
    };
    let final_offsets = match &flushed {
        Some(Ok(offsets)) => offsets.clone(),
        _ => Vec::new(),
    };
    // The poll thread is stopped whatever happened, so the group is left and its
    // partitions move on without waiting for the session timeout.
    drop(stop_watermarks);
    let _ = commands.send(Command::Stop(final_offsets.clone()));
    drop(events);
    if poll_thread.join().is_err() {
        tracing::error!("The Kafka poll thread panicked.");
    }
    // At most one bounded watermark query away; whichever thread ends last closes the consumer.
    if watermark_thread.join().is_err() {
        tracing::error!("The Kafka watermark thread panicked.");
    }
    abandon.cancel();
    let elapsed_ms = shutdown_requested.get().copied().unwrap_or(started).elapsed().as_millis() as u64;
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

/// How much of the shutdown deadline the final flush may take. The rest is kept for the poll
/// thread's last commit and for leaving the group, which need the brokers, not the lake: a
/// flush stuck behind a lake outage must not use up the deadline, or the process is ended
/// still in the group and its partitions wait out the session timeout (on some brokers the
/// whole rebalance timeout) before anyone else reads them.
fn final_flush_budget(shutdown_deadline: Duration) -> Duration {
    shutdown_deadline.saturating_sub((shutdown_deadline / 4).min(Duration::from_secs(10)))
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
    /// Partitions the lake says another daemon has claimed, until the group assigns them
    /// here again (or takes them away, as it soon will).
    claimed_elsewhere: std::collections::HashSet<(Arc<str>, i32)>,
    commands: std::sync::mpsc::Sender<Command>,
    lake: LakeProbe,
}

/// Whether the lake takes writes, from a small put and delete. Probes run on tasks of their
/// own, so a store that hangs never stalls the pipeline's loop. While the daemon runs a probe
/// is not cancelled (that could leave its file behind): one that takes longer than
/// [`LAKE_PROBE_TIMEOUT`] counts as failed and is left to finish. At shutdown a probe under way
/// is aborted rather than waited for, since during a store outage it may retry for minutes; its
/// small `_checkpoints/_probe-*` object may then stay. The lake turns unwritable after two
/// failures in a row, so one slow answer does not flap readiness, and writable again after one
/// success.
struct LakeProbe {
    writable: bool,
    /// Failed probes since the last success.
    failures: u32,
    last: Option<Instant>,
    /// The probe under way, when it started, and whether its lateness was counted.
    running: Option<(ProbeTask, Instant, bool)>,
}

/// A probe's task: `Err` says why the lake refused the write.
type ProbeTask = tokio::task::JoinHandle<std::result::Result<(), String>>;

/// Failed probes in a row that make a writable lake unwritable.
const LAKE_PROBE_FAILURES: u32 = 2;

impl LakeProbe {
    fn new() -> Self {
        Self { writable: false, failures: 0, last: None, running: None }
    }

    /// The first check, at start: waited for (up to the timeout), and a failure counts fully.
    async fn check_now(&mut self, store: &driftwatch_lake::store::LakeStore) {
        self.start(store);
        let Some((handle, _, _)) = self.running.as_mut() else { return };
        match tokio::time::timeout(LAKE_PROBE_TIMEOUT, handle).await {
            Ok(joined) => {
                // Taken here: a finished JoinHandle must not be awaited again.
                self.running = None;
                self.settle(answer(joined));
            }
            Err(_) => self.count_late(),
        }
    }

    /// Take a finished probe's answer, count a late one as failed, and start the next one
    /// when it is due: every 30 s while the lake takes writes, every 5 s while it does not or
    /// a probe has just failed.
    async fn poll(&mut self, store: &driftwatch_lake::store::LakeStore) {
        if let Some((handle, _, late)) = self.running.take_if(|(handle, _, _)| handle.is_finished()) {
            let result = answer(handle.await);
            // A late probe was counted as failed when it ran late; its own failure is the same one.
            if !(late && result.is_err()) {
                self.settle(result);
            }
        }
        if self
            .running
            .as_ref()
            .is_some_and(|(_, started, counted)| !counted && started.elapsed() >= LAKE_PROBE_TIMEOUT)
        {
            self.count_late();
        }
        let every =
            if self.writable && self.failures == 0 { LAKE_PROBE_WHILE_WRITABLE } else { LAKE_PROBE_WHILE_UNWRITABLE };
        if self.running.is_none() && self.last.is_none_or(|at| at.elapsed() >= every) {
            self.start(store);
        }
    }

    /// Count the probe under way as failed: it has not answered within [`LAKE_PROBE_TIMEOUT`].
    fn count_late(&mut self) {
        if let Some((_, _, counted)) = self.running.as_mut() {
            *counted = true;
        }
        self.settle(Err(format!("no answer within {LAKE_PROBE_TIMEOUT:?}")));
    }

    fn start(&mut self, store: &driftwatch_lake::store::LakeStore) {
        let store = store.clone();
        let now = Instant::now();
        self.last = Some(now);
        let handle = tokio::spawn(async move { store.check_writable().await.map_err(|error| error.to_string()) });
        self.running = Some((handle, now, false));
    }

    fn settle(&mut self, result: std::result::Result<(), String>) {
        match result {
            Ok(()) => {
                if !self.writable && self.failures > 0 {
                    tracing::info!("The lake is writable.");
                }
                self.writable = true;
                self.failures = 0;
            }
            Err(error) => {
                self.failures += 1;
                let first_check = self.failures == 1 && !self.writable;
                if first_check {
                    self.failures = LAKE_PROBE_FAILURES;
                }
                if self.failures == LAKE_PROBE_FAILURES {
                    tracing::warn!(%error, "The lake is not writable; not ready until it is.");
                    self.writable = false;
                } else if self.writable {
                    tracing::info!(%error, "A lake probe failed; probing again before calling the lake unwritable.");
                } else {
                    tracing::debug!(%error, "The lake is still not writable.");
                }
            }
        }
    }
}

/// What a finished probe task says: its own answer, or why the task itself failed.
fn answer(
    joined: std::result::Result<std::result::Result<(), String>, tokio::task::JoinError>,
) -> std::result::Result<(), String> {
    joined.unwrap_or_else(|error| Err(format!("the probe task failed: {error}")))
}

impl Drop for LakeProbe {
    fn drop(&mut self) {
        if let Some((handle, _, _)) = &self.running {
            handle.abort();
        }
    }
}

impl Daemon<'_> {
    fn topic(&mut self, name: &str) -> Arc<str> {
        if let Some(topic) = self.topics.get(name) {
            return Arc::clone(topic);
        }
        let topic: Arc<str> = Arc::from(name);
        self.topics.insert(name.to_owned(), Arc::clone(&topic));
        topic
    }

    /// A partition's buffer starting at `start`, its flushes bound to `claim`, or to the claim
    /// the writer holds now when `None` (see [`FlushBatch::claim`](driftwatch_lake::writer::FlushBatch::claim)).
    fn new_buffer(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        start: Option<i64>,
        claim: Option<String>,
    ) -> PartitionBuffer {
        let stream = kafka_stream_id(&self.group_id, topic);
        self.streams.insert(stream.clone(), Arc::clone(topic));
        let claim = claim.or_else(|| self.components.writer.held_claim(&stream, partition));
        PartitionBuffer::new(
            Arc::from(stream.as_str()),
            Arc::clone(topic),
            partition,
            start.unwrap_or(-1),
            &self.components.config.aggregate,
            self.components.limits.dedup_window,
        )
        .under_claim(claim)
    }

    /// One consumed message: into its partition's buffer, then flush what is due.
    async fn on_message(&mut self, message: &OwnedMessage) -> Result<()> {
        let topic = self.topic(message.topic());
        let partition = message.partition();
        let offset = message.offset();
        let format = self.formats.get(&*topic).copied().unwrap_or(PayloadFormat::Auto);
        let key = (Arc::clone(&topic), partition);
        if self.claimed_elsewhere.contains(&key) {
            return Ok(());
        }
        if !self.started_at.contains_key(&key) {
            self.started_at.insert(key.clone(), offset);
            self.publish_lag_start(&key);
        }
        if !self.buffers.contains_key(&key) {
            let buffer = self.new_buffer(&topic, partition, None, None);
            self.buffers.insert(key.clone(), buffer);
        }
        let (expected, fresh) = self.buffers.get(&key).map_or((-1, true), |b| (b.next_offset(), b.is_fresh()));
        if expected >= 0 && offset < expected {
            if !fresh {
                // Already consumed in this assignment: a redelivery (a refetch after
                // pause/resume or a broker returning a whole record batch). Skipping
                // it is what keeps the lake free of duplicates.
                self.components.metrics.record_redelivery();
                return Ok(());
            }
            self.reset_partition(&key, offset).await?;
        }
        let Some(buffer) = self.buffers.get_mut(&key) else { return Ok(()) };
        let payload = message.payload().unwrap_or_default();
        self.processor.process(buffer, payload, format, (offset, offset + 1), now_nanos());
        if let Some(reason) = buffer.due(&self.components.limits, Instant::now()) {
            self.flush(&key, reason).await?;
        }
        Ok(())
    }

    async fn on_event(&mut self, event: Event) -> Result<()> {
        match event {
            Event::Messages(messages) => {
                for message in messages {
                    self.on_message(&message).await?;
                }
                // Once per batch: the budget check sums every partition's buffer.
                self.relieve_memory().await?;
            }
            Event::Assigned(partitions) => {
                for assigned in partitions {
                    let (topic, partition) = (self.topic(&assigned.topic), assigned.partition);
                    let key = (Arc::clone(&topic), partition);
                    self.claimed_elsewhere.remove(&key);
                    let buffer = self.new_buffer(&topic, partition, assigned.resume_at, assigned.claim);
                    if let Some(start) = assigned.resume_at {
                        self.durable.insert(key.clone(), (start, Instant::now()));
                    }
                    // From the recovered checkpoint, so the age is there (and right) from the
                    // assignment on, not only after this daemon's first flush; without one,
                    // from now, so that a partition whose first flush never lands still ages.
                    match assigned.checkpoint_at {
                        Some(at) => self.components.metrics.record_checkpoint(&topic, partition, at),
                        None => self.components.metrics.record_assigned_without_checkpoint(
                            &topic,
                            partition,
                            std::time::SystemTime::now(),
                        ),
                    }
                    match assigned.position {
                        Some(position) => self.started_at.insert(key.clone(), position),
                        None => self.started_at.remove(&key),
                    };
                    self.publish_lag_start(&key);
                    self.buffers.insert(key, buffer);
                }
            }
            Event::Revoked { partitions, reply } => {
                let keys: Vec<(Arc<str>, i32)> =
                    partitions.iter().map(|(topic, partition)| (self.topic(topic), *partition)).collect();
                for key in &keys {
                    self.flush(key, FlushReason::Revoke).await?;
                }
                self.drain_flushes().await?;
                let mut durable = Vec::new();
                for key in &keys {
                    self.buffers.remove(key);
                    self.claimed_elsewhere.remove(key);
                    if let Some(offset) = self.forget_partition(key) {
                        durable.push((key.0.to_string(), key.1, offset));
                    }
                }
                // The poll thread waits for this answer inside the rebalance callback.
                let _ = reply.send(durable);
            }
            Event::Lost { partitions, done } => {
                let mut fenced = Vec::with_capacity(partitions.len());
                for (topic, partition) in partitions {
                    let key = (self.topic(&topic), partition);
                    self.claimed_elsewhere.remove(&key);
                    let dropped = self.buffers.remove(&key).map_or(0, |buffer| buffer.rows());
                    tracing::warn!(
                        topic,
                        partition,
                        dropped_rows = dropped,
                        "Partition lost; its buffered rows were dropped unwritten for the new owner to read again."
                    );
                    self.forget_partition(&key);
                    let stream = kafka_stream_id(&self.group_id, &topic);
                    self.flusher.fence(&stream, partition);
                    fenced.push((stream, partition));
                }
                // Flushes not yet started are dropped (fenced); the one being written, if any,
                // completes. All must be over before the poll thread may recover a partition
                // that comes back to this member.
                self.drain_flushes().await?;
                for (stream, partition) in fenced {
                    self.flusher.unfence(&stream, partition);
                }
                let _ = done.send(());
            }
            Event::Fatal { kind, message } => {
                return Err(Error::Other(format!("fatal Kafka error ({kind}): {message}")));
            }
        }
        Ok(())
    }

    /// The lake says another daemon has claimed this partition: this member was stalled long
    /// enough for the group to move the partition, and has not heard of it yet. Drop what it
    /// holds of it and skip its messages until the group assigns it here again.
    fn drop_claimed_partition(&mut self, stream: &str, partition: i32) {
        let Some(topic) = self.streams.get(stream).cloned() else { return };
        let key = (topic, partition);
        let dropped = self.buffers.remove(&key).map_or(0, |buffer| buffer.rows());
        tracing::warn!(
            topic = %key.0,
            partition,
            dropped_rows = dropped,
            "Partition claimed by another daemon in the lake; its messages are skipped until it is assigned here again."
        );
        self.forget_partition(&key);
        self.claimed_elsewhere.insert(key);
    }

    /// Tell the metrics where a partition's lag counts from: the next offset to commit, which is
    /// the durable offset once a flush has completed, and before that the offset the consumer
    /// started reading at. Not started anywhere known yet (at the log's end, `start_from =
    /// "latest"`, with nothing read): nothing is behind. Lag itself is computed at each scrape
    /// from the latest high watermark, so it keeps moving while this loop waits.
    fn publish_lag_start(&self, key: &(Arc<str>, i32)) {
        let start = self.durable.get(key).map(|(offset, _)| *offset).or_else(|| self.started_at.get(key).copied());
        self.components.metrics.set_lag_start(&key.0, key.1, start);
    }

    /// Drop the bookkeeping of a partition this member no longer owns; returns the offset it
    /// was durable up to, if any flush of it completed.
    fn forget_partition(&mut self, key: &(Arc<str>, i32)) -> Option<i64> {
        self.processor.metrics().remove_partition(&key.0, key.1);
        self.started_at.remove(key);
        self.durable.remove(key).map(|(offset, _)| offset)
    }

    /// The first message after assignment lies below the checkpoint: the log itself went
    /// backwards (the topic was deleted and recreated, or the broker lost it): make what is buffered durable, then start a new lake epoch at
    /// `offset` so the new incarnation's files never overwrite the old one's.
    async fn reset_partition(&mut self, key: &(Arc<str>, i32), offset: i64) -> Result<()> {
        let expected = self.buffers.get(key).map_or(-1, PartitionBuffer::next_offset);
        tracing::warn!(
            topic = %key.0,
            partition = key.1,
            expected,
            offset,
            "Partition offsets went backwards (topic recreated?); starting a new lake epoch."
        );
        self.flush(key, FlushReason::OffsetReset).await?;
        self.drain_flushes().await?;
        let stream = kafka_stream_id(&self.group_id, &key.0);
        self.components
            .writer
            .reset_partition(&stream, key.1, offset)
            .await
            .map_err(|source| Error::Lake { context: format!("resetting {stream}/{}", key.1), source })?;
        let buffer = self.new_buffer(&key.0, key.1, Some(offset), None);
        self.buffers.insert(key.clone(), buffer);
        self.durable.insert(key.clone(), (offset, Instant::now()));
        self.publish_lag_start(key);
        Ok(())
    }

    /// Hand one partition's buffer to the flusher (waiting for capacity: backpressure).
    async fn flush(&mut self, key: &(Arc<str>, i32), reason: FlushReason) -> Result<()> {
        let Some(buffer) = self.buffers.get_mut(key) else { return Ok(()) };
        let bytes = buffer.bytes();
        if let Some(batch) = buffer.take_batch()? {
            self.flusher.submit(batch, reason, bytes).await?;
        }
        Ok(())
    }

    /// Heap bytes the budget covers: rows buffered in every partition plus batches being
    /// written.
    fn held_bytes(&self) -> usize {
        self.buffers.values().map(PartitionBuffer::bytes).sum::<usize>() + self.flusher.in_flight_bytes()
    }

    /// At or over `flush.max_buffered_bytes`: stop taking messages until a flush completes.
    fn over_budget(&self) -> bool {
        self.held_bytes() >= self.components.limits.max_buffered_bytes
    }

    /// Over budget: flush the largest buffer early, if the flusher can take it now (otherwise
    /// the completion of a flush in flight frees memory first).
    async fn relieve_memory(&mut self) -> Result<()> {
        if !self.over_budget() || !self.flusher.has_capacity() {
            return Ok(());
        }
        let key = largest_buffer(self.buffers.values_mut()).map(|buffer| (Arc::clone(&buffer.topic), buffer.partition));
        if let Some(key) = key {
            self.flush(&key, FlushReason::Memory).await?;
        }
        Ok(())
    }

    /// Wait for every flush in flight and apply its completion.
    async fn drain_flushes(&mut self) -> Result<()> {
        while self.flusher.in_flight() > 0 {
            let done = self.flusher.next_done().await?;
            self.on_flushed(&done);
        }
        Ok(())
    }

    fn on_flushed(&mut self, outcome: &FlushOutcome) {
        let done = match outcome {
            FlushOutcome::Committed(done) => done,
            // A fenced flush wrote nothing: its partition was lost, and its rows are the new owner's.
            FlushOutcome::Fenced { .. } => return,
            FlushOutcome::ClaimLost { stream, partition } => {
                self.drop_claimed_partition(stream, *partition);
                return;
            }
        };
        let Some(topic) = self.streams.get(&done.stream).cloned() else { return };
        let partition = done.partition;
        let key = (Arc::clone(&topic), partition);
        if !self.buffers.contains_key(&key) {
            // A flush handed over before the partition was lost: it is in the lake, but the
            // partition's offsets and gauges belong to its new owner now.
            return;
        }
        self.components.metrics.record_checkpoint(
            &topic,
            partition,
            std::time::SystemTime::from(done.report.checkpoint.updated_at),
        );
        self.durable.insert(key.clone(), (done.next_offset, Instant::now()));
        self.publish_lag_start(&key);
        let _ = self.commands.send(Command::Commit(vec![(topic.to_string(), partition, done.next_offset)]));
    }

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
        let rows: usize = self.buffers.values().map(PartitionBuffer::rows).sum();
        let bytes: usize = self.buffers.values().map(PartitionBuffer::bytes).sum();
        self.components.metrics.set_buffered(rows, bytes);
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
    use crate::telemetry::names::{
        CHECKPOINT_AGE_SECONDS, CHECKPOINT_TIMESTAMP_SECONDS, CONSUMER_LAG, LAKE_ROWS_WRITTEN_TOTAL,
    };
    use channel::AssignedPartition;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn the_final_flush_leaves_time_to_leave_the_group() {
        assert_eq!(final_flush_budget(Duration::from_secs(30)), Duration::from_millis(22_500));
        assert_eq!(final_flush_budget(Duration::from_secs(120)), Duration::from_secs(110), "at most 10 s kept");
        assert_eq!(final_flush_budget(Duration::ZERO), Duration::ZERO);
    }

    /// Components over a local lake in `dir`.
    async fn components(dir: &std::path::Path) -> Result<Components> {
        let mut config = Config::default();
        config.lake.location = dir.join("lake").display().to_string();
        Components::build(config).await
    }

    /// The processing loop's state as `consume` builds it, without a consumer behind it.
    fn daemon<'a>(components: &'a Components, tasks: &TaskTracker) -> Daemon<'a> {
        // The poll thread's end of the commands is not needed: the loop ignores a closed one.
        let (commands, _) = std::sync::mpsc::channel();
        Daemon {
            components,
            processor: components.processor(),
            flusher: Flusher::spawn(
                Arc::clone(&components.writer),
                components.metrics.clone(),
                2,
                tasks,
                CancellationToken::new(),
            ),
            buffers: FastHashMap::default(),
            formats: FastHashMap::default(),
            topics: FastHashMap::default(),
            streams: FastHashMap::default(),
            group_id: "group".to_owned(),
            durable: FastHashMap::default(),
            started_at: FastHashMap::default(),
            claimed_elsewhere: std::collections::HashSet::new(),
            commands,
            lake: LakeProbe { writable: true, failures: 0, last: None, running: None },
        }
    }

    /// Poll `probe` with every probe due at once until `done` holds (at most 5 s).
    async fn probe_until(
        probe: &mut LakeProbe,
        store: &driftwatch_lake::store::LakeStore,
        done: impl Fn(&LakeProbe) -> bool,
    ) -> bool {
        for _ in 0..500 {
            probe.last = Instant::now().checked_sub(LAKE_PROBE_WHILE_WRITABLE);
            probe.poll(store).await;
            if done(probe) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// A lake that breaks while nothing is being committed is noticed by the timed probe after
    /// two failures in a row (one alone does not flap readiness), and so is its return.
    #[tokio::test]
    async fn the_lake_probe_notices_a_lake_that_breaks_and_comes_back_while_idle() -> TestResult {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("lake");
        std::fs::create_dir_all(&root)?;
        let store =
            driftwatch_lake::store::LakeStore::open(&root.display().to_string(), &std::collections::HashMap::new())
                .await?;
        let mut probe = LakeProbe::new();
        probe.check_now(&store).await;
        assert!(probe.writable);

        let break_lake = || -> std::io::Result<()> {
            std::fs::remove_dir_all(&root)?;
            std::fs::write(&root, b"not a directory")
        };
        let mend_lake = || -> std::io::Result<()> {
            std::fs::remove_file(&root)?;
            std::fs::create_dir_all(&root)
        };
        break_lake()?;
        assert!(probe_until(&mut probe, &store, |p| p.failures == 1).await);
        assert!(probe.writable, "one failed probe does not make the lake unwritable");
        mend_lake()?;
        assert!(probe_until(&mut probe, &store, |p| p.failures == 0).await);
        assert!(probe.writable);

        break_lake()?;
        assert!(probe_until(&mut probe, &store, |p| !p.writable).await, "two failures in a row do");
        mend_lake()?;
        assert!(probe_until(&mut probe, &store, |p| p.writable).await, "the lake is back");
        Ok(())
    }

    /// The value of a per-partition series of topic `spans` in the exposition.
    fn series(text: &str, name: &str, partition: i32) -> Option<f64> {
        let prefix = format!("{name}{{topic=\"spans\",partition=\"{partition}\"}} ");
        text.lines().find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
    }

    fn assigned(partition: i32, resume_at: Option<i64>, position: Option<i64>) -> AssignedPartition {
        AssignedPartition {
            topic: "spans".to_owned(),
            partition,
            resume_at,
            position,
            checkpoint_at: None,
            claim: None,
        }
    }

    /// Without a durable offset, lag counts from where the consumer started reading, not
    /// from offset 0: an idle topic consumed from its end is not behind by its whole log.
    #[tokio::test]
    async fn lag_counts_from_where_consumption_started_until_a_flush_is_durable() -> TestResult {
        let dir = tempfile::tempdir()?;
        let components = components(dir.path()).await?;
        let tasks = TaskTracker::new();
        let mut daemon = daemon(&components, &tasks);
        components.metrics.note_high_watermarks([("spans", 0, 1_000), ("spans", 1, 1_000), ("spans", 2, 1_000)]);
        daemon
            .on_event(Event::Assigned(vec![
                // start_from = "latest", nothing read yet: at the log's end.
                assigned(0, None, None),
                // start_from = "earliest" on a log that starts at 400.
                assigned(1, None, Some(400)),
                // Resumed at a lake checkpoint.
                assigned(2, Some(900), Some(900)),
            ]))
            .await?;
        daemon.on_tick().await?;
        let text = components.metrics.encode()?;
        assert_eq!(series(&text, CONSUMER_LAG, 0), Some(0.0), "{text}");
        assert_eq!(series(&text, CONSUMER_LAG, 1), Some(600.0), "{text}");
        assert_eq!(series(&text, CONSUMER_LAG, 2), Some(100.0), "{text}");
        Ok(())
    }

    /// A partition resumed at a checkpoint reports the checkpoint's time from its assignment
    /// on, as after a restart, not only from its next flush.
    #[tokio::test]
    async fn the_recovered_checkpoints_time_is_reported_at_assignment() -> TestResult {
        let dir = tempfile::tempdir()?;
        let components = components(dir.path()).await?;
        let tasks = TaskTracker::new();
        let mut daemon = daemon(&components, &tasks);
        let written = std::time::UNIX_EPOCH + Duration::from_secs(1_772_323_200);
        let resumed = AssignedPartition { checkpoint_at: Some(written), ..assigned(3, Some(900), Some(900)) };
        daemon.on_event(Event::Assigned(vec![resumed, assigned(4, None, None)])).await?;
        let text = components.metrics.encode()?;
        assert_eq!(series(&text, CHECKPOINT_TIMESTAMP_SECONDS, 3), Some(1_772_323_200.0), "{text}");
        assert!(series(&text, CHECKPOINT_AGE_SECONDS, 3).is_some_and(|age| age > 0.0), "{text}");
        // No checkpoint: the age counts from the assignment, and there is no timestamp.
        assert!(series(&text, CHECKPOINT_AGE_SECONDS, 4).is_some_and(|age| age < 60.0), "{text}");
        assert_eq!(series(&text, CHECKPOINT_TIMESTAMP_SECONDS, 4), None, "no checkpoint, no time: {text}");
        Ok(())
    }

    /// JSON inference events at `offsets` of partition 0 of `spans`, timed now.
    fn json_messages(offsets: std::ops::Range<i64>) -> Vec<OwnedMessage> {
        offsets
            .map(|offset| {
                let payload = serde_json::json!({
                    "id": format!("call-{offset}"),
                    "time_unix_nano": now_nanos(),
                    "app": "support-bot",
                    "request_model": "gpt-4o",
                    "input_tokens": 10,
                    "output_tokens": 20,
                });
                let timestamp = rdkafka::Timestamp::NotAvailable;
                OwnedMessage::new(
                    Some(payload.to_string().into_bytes()),
                    None,
                    "spans".into(),
                    timestamp,
                    0,
                    offset,
                    None,
                )
            })
            .collect()
    }

    /// A revoke whose flush outlasts the poll thread's wait is released uncommitted; if the
    /// group then assigns the partition back here, the poll thread recovers it again (a new
    /// claim) and the partition is re-read from the checkpoint. The flush that was still queued
    /// from the first reading must not be committed under the new claim: the re-read's first
    /// flush would straddle it, and the daemon would stop.
    #[tokio::test]
    async fn a_flush_left_from_before_a_partition_came_back_is_dropped_not_committed() -> TestResult {
        let dir = tempfile::tempdir()?;
        let components = components(dir.path()).await?;
        let tasks = TaskTracker::new();
        let mut daemon = daemon(&components, &tasks);
        let stream = kafka_stream_id("group", "spans");
        let writer = &components.writer;
        let rows_written = |text: &str| -> Option<f64> {
            let prefix = format!("{LAKE_ROWS_WRITTEN_TOTAL}{{kind=\"events\"}} ");
            text.lines().find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
        };

        writer.recover(&stream, 0).await?;
        let first = AssignedPartition { claim: writer.held_claim(&stream, 0), ..assigned(0, None, Some(0)) };
        daemon.on_event(Event::Assigned(vec![first])).await?;
        daemon.on_event(Event::Messages(json_messages(0..10))).await?;
        // The poll thread gave up waiting, released the partition and got it back: recovered
        // again, from the checkpoint that the first reading never advanced.
        assert_eq!(writer.recover(&stream, 0).await?, None);
        let again = AssignedPartition { claim: writer.held_claim(&stream, 0), ..assigned(0, None, Some(0)) };
        let (reply, _gave_up) = std::sync::mpsc::sync_channel(1);
        // The loop now gets to the revoke: its flush belongs to the first claim.
        daemon.on_event(Event::Revoked { partitions: vec![("spans".to_owned(), 0)], reply }).await?;
        assert_eq!(writer.read_checkpoint(&stream, 0).await?, None, "the stale flush is not committed");

        daemon.on_event(Event::Assigned(vec![again])).await?;
        daemon.on_event(Event::Messages(json_messages(0..15))).await?;
        let (reply, durable) = std::sync::mpsc::sync_channel(1);
        daemon.on_event(Event::Revoked { partitions: vec![("spans".to_owned(), 0)], reply }).await?;
        assert_eq!(durable.try_recv()?, vec![("spans".to_owned(), 0, 15)]);
        assert_eq!(writer.read_checkpoint(&stream, 0).await?.map(|c| c.next_offset), Some(15));
        let text = components.metrics.encode()?;
        assert_eq!(rows_written(&text), Some(15.0), "each call once: {text}");
        Ok(())
    }

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
