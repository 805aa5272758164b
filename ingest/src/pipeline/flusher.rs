//! The flusher: one task that commits flush batches to the lake in submission order.
//!
//! Sources submit [`FlushBatch`]es through a bounded channel (its capacity is the number of
//! flushes in flight, the backpressure bound) and read [`FlushOutcome`]s back. Order
//! matters: a partition's checkpoints must advance monotonically, so one task commits batches
//! one after another while the source keeps decoding on another core. Retryable lake errors
//! (I/O, object-store hiccups, a full, read-only or permission-denied lake) are retried with
//! capped exponential backoff; anything else is
//! handed back to the source, which stops rather than skip data. A partition the source no
//! longer owns can be fenced: its batches that are not being written yet are dropped.
//! Between commits, on a timer, the same task sweeps recently claimed partitions for files
//! that fenced writers put late ([`LakeWriter::sweep_claims`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use driftwatch_lake::writer::{CommitReport, FlushBatch, LakeWriter, SWEEP_INTERVAL};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::FlushReason;
use crate::telemetry::ConsumerErrorKind;
use crate::telemetry::Metrics;

/// A committed flush.
#[derive(Debug)]
pub struct FlushDone {
    /// Checkpoint stream of the batch.
    pub stream: String,
    /// Partition of the batch.
    pub partition: i32,
    /// Offset the partition's checkpoint now points at: everything before it is durable.
    pub next_offset: i64,
    /// Why the flush happened.
    pub reason: FlushReason,
    /// Files and checkpoint written.
    pub report: CommitReport,
}

/// What became of a submitted flush.
#[derive(Debug)]
pub enum FlushOutcome {
    /// Written and checkpointed.
    Committed(FlushDone),
    /// Not written: its partition was fenced ([`Flusher::fence`]) before the commit started,
    /// or while it was waiting to retry.
    Fenced {
        /// Checkpoint stream of the batch.
        stream: String,
        /// Partition of the batch.
        partition: i32,
    },
    /// Not written: another writer (a daemon the partition moved to while this one was
    /// stalled, or a second run over the same file) has claimed the partition in the lake.
    /// Whatever this source still holds of the partition is the new owner's to write.
    ClaimLost {
        /// Checkpoint stream of the batch.
        stream: String,
        /// Partition of the batch.
        partition: i32,
    },
}

/// Why a flush could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum FlusherError {
    #[error("lake commit of {stream}/{partition} offsets [{first_offset}, {next_offset}) failed: {source}")]
    Commit {
        stream: String,
        partition: i32,
        first_offset: i64,
        next_offset: i64,
        #[source]
        source: Box<driftwatch_lake::error::LakeError>,
    },
    #[error("lake commit of {stream}/{partition} abandoned: shutdown while retrying")]
    Abandoned { stream: String, partition: i32 },
    #[error("the shutdown deadline's flush budget passed while waiting for lake commits")]
    GaveUp,
    #[error("the flusher task has stopped")]
    Stopped,
}

struct FlushRequest {
    batch: FlushBatch,
    reason: FlushReason,
}

/// Handle to the flusher task.
///
/// At most `capacity` flushes are in flight (submitted, not yet handed back by
/// [`next_done`](Self::next_done)). Both channels hold `capacity` items, so neither side can
/// block the other: [`submit`](Self::submit) first collects a completion when the limit is
/// reached and keeps it for `next_done`.
#[derive(Debug)]
pub struct Flusher {
    requests: mpsc::Sender<FlushRequest>,
    completions: mpsc::Receiver<Result<FlushOutcome, FlusherError>>,
    /// Completions collected by `submit` while making room, not yet handed out.
    ready: std::collections::VecDeque<Result<FlushOutcome, FlusherError>>,
    in_flight: usize,
    /// Rows and approximate heap bytes of each batch not yet committed, oldest first (batches
    /// are committed in submission order). The bytes count against the memory budget until
    /// written.
    in_flight_rows_and_bytes: std::collections::VecDeque<(usize, usize)>,
    capacity: usize,
    /// Shows a wait for a flush slot, during which the source reads nothing.
    metrics: Metrics,
    /// Set while a commit is failing and being retried, cleared by the next success: the lake
    /// is unwritable now, whatever it was at startup.
    lake_failing: Arc<AtomicBool>,
    /// (stream, partition) whose batches must not be written any more.
    fenced: Arc<Mutex<HashSet<(String, i32)>>>,
    /// Cancelled when the shutdown deadline leaves no more time for the lake: waits for a
    /// completion end then, even while a commit attempt is still under way.
    abandon: CancellationToken,
}

/// What the flusher task commits with.
struct Committer {
    writer: Arc<LakeWriter>,
    metrics: Metrics,
    abandon: CancellationToken,
    lake_failing: Arc<AtomicBool>,
    fenced: Arc<Mutex<HashSet<(String, i32)>>>,
}

impl std::fmt::Debug for FlushRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushRequest")
            .field("stream", &self.batch.stream)
            .field("partition", &self.batch.partition)
            .field("reason", &self.reason)
            .finish()
    }
}

/// How often the committer takes the claims due for a sweep. Each claim is still swept at most
/// every [`SWEEP_INTERVAL`]; a round takes only a few of them
/// ([`MAX_SWEEPS_PER_ROUND`](driftwatch_lake::writer::MAX_SWEEPS_PER_ROUND)), so rounds come
/// more often than that, for a daemon's few dozen partitions to be swept on time.
const SWEEP_TICK: Duration = Duration::from_secs(SWEEP_INTERVAL.as_secs() / 6);

const RETRY_START: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(30);

impl Flusher {
    /// Start the flusher on `tracker`. `capacity` bounds the flushes in flight. `abandon` ends
    /// retry loops (the shutdown deadline has passed); a commit that is not retrying is never
    /// interrupted, so a file is never left half-committed by shutdown.
    pub fn spawn(
        writer: Arc<LakeWriter>,
        metrics: Metrics,
        capacity: usize,
        tracker: &TaskTracker,
        abandon: CancellationToken,
    ) -> Self {
        let capacity = capacity.max(1);
        let (requests, mut inbox) = mpsc::channel::<FlushRequest>(capacity);
        let (done_tx, completions) = mpsc::channel(capacity);
        let lake_failing = Arc::new(AtomicBool::new(false));
        let fenced = Arc::new(Mutex::new(HashSet::new()));
        let committer = Committer {
            writer,
            metrics: metrics.clone(),
            abandon: abandon.clone(),
            lake_failing: Arc::clone(&lake_failing),
            fenced: Arc::clone(&fenced),
        };
        tracker.spawn(async move {
            let mut sweep = tokio::time::interval(SWEEP_TICK);
            sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                // Not biased: a steady stream of requests must not starve the sweep.
                tokio::select! {
                    request = inbox.recv() => {
                        let Some(FlushRequest { batch, reason }) = request else { break };
                        let result = committer.commit_with_retry(batch, reason).await;
                        if done_tx.send(result).await.is_err() {
                            break;
                        }
                    }
                    _ = sweep.tick() => committer.sweep_quiet_partitions().await,
                }
            }
        });
        Self {
            requests,
            completions,
            ready: std::collections::VecDeque::new(),
            in_flight: 0,
            in_flight_rows_and_bytes: std::collections::VecDeque::new(),
            capacity,
            metrics,
            lake_failing,
            fenced,
            abandon,
        }
    }

    /// Stop writing batches of (stream, partition): the partition now belongs to another
    /// member. Batches not yet started, and one waiting to retry, complete as
    /// [`FlushOutcome::Fenced`]; a commit already under way cannot be recalled and completes.
    pub fn fence(&self, stream: &str, partition: i32) {
        self.fenced.lock().unwrap_or_else(PoisonError::into_inner).insert((stream.to_owned(), partition));
    }

    /// Write (stream, partition) again, once its fenced batches have all completed.
    pub fn unfence(&self, stream: &str, partition: i32) {
        self.fenced.lock().unwrap_or_else(PoisonError::into_inner).remove(&(stream.to_owned(), partition));
    }

    /// A flag that is set while the oldest flush in flight keeps failing on a retryable lake
    /// error (an object store or disk outage) and cleared once a commit succeeds. Shared, so
    /// that readers need not wait for the flusher's owner (the source may itself be waiting on
    /// this flusher).
    pub fn lake_failing_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.lake_failing)
    }

    /// Flushes submitted and not yet reported back.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Approximate heap bytes held by batches submitted and not yet committed.
    pub fn in_flight_bytes(&self) -> usize {
        self.in_flight_rows_and_bytes.iter().map(|(_, bytes)| bytes).sum()
    }

    /// Rows of the batches submitted and not yet committed: still not in the lake.
    pub fn in_flight_rows(&self) -> usize {
        self.in_flight_rows_and_bytes.iter().map(|(rows, _)| rows).sum()
    }

    /// True when another flush can be submitted without waiting.
    pub fn has_capacity(&self) -> bool {
        self.in_flight - self.ready.len() < self.capacity
    }

    /// Hand a batch to the flusher. When `capacity` flushes are in flight it first waits for
    /// the oldest to complete (that completion is kept for [`next_done`](Self::next_done)):
    /// this wait is the backpressure that makes a source pause. `bytes` is the batch's
    /// approximate heap size, reported by [`in_flight_bytes`](Self::in_flight_bytes) until the
    /// batch is committed.
    pub async fn submit(&mut self, batch: FlushBatch, reason: FlushReason, bytes: usize) -> Result<(), FlusherError> {
        if !self.has_capacity() {
            let _shown = self.metrics.waiting_for_flush_slot();
            while !self.has_capacity() {
                let done = self.receive().await?;
                self.ready.push_back(done);
            }
        }
        let rows = batch.rows();
        self.requests.send(FlushRequest { batch, reason }).await.map_err(|_| FlusherError::Stopped)?;
        self.in_flight += 1;
        self.in_flight_rows_and_bytes.push_back((rows, bytes));
        Ok(())
    }

    /// The next completion from the task; its batch has been dropped, so its bytes are free.
    /// Once flushes are abandoned, [`FlusherError::GaveUp`] if none is ready: a commit attempt
    /// under way during a store outage can take the store client's own retries, longer than
    /// the shutdown deadline leaves, and the source waiting for it (to submit, or to drain a
    /// revoke) must get to leaving its group.
    async fn receive(&mut self) -> Result<Result<FlushOutcome, FlusherError>, FlusherError> {
        let done = tokio::select! {
            biased;
            done = self.completions.recv() => done.ok_or(FlusherError::Stopped)?,
            () = self.abandon.cancelled() => return Err(FlusherError::GaveUp),
        };
        self.in_flight_rows_and_bytes.pop_front();
        Ok(done)
    }

    /// The next completion, in submission order; pending forever when nothing is in flight (so
    /// it can sit in a `select!`). Cancel safe.
    pub async fn next_done(&mut self) -> Result<FlushOutcome, FlusherError> {
        if let Some(done) = self.take_ready() {
            return done;
        }
        if self.in_flight == 0 {
            return std::future::pending().await;
        }
        let done = self.receive().await?;
        self.in_flight -= 1;
        done
    }

    /// A completion already received, while [`submit`](Self::submit) waited for a slot, if
    /// any: the caller can apply it at once rather than when it next waits for completions.
    pub fn take_ready(&mut self) -> Option<Result<FlushOutcome, FlusherError>> {
        let done = self.ready.pop_front()?;
        self.in_flight -= 1;
        Some(done)
    }
}

impl Committer {
    /// Sweep recently claimed partitions for fenced writers' late files, in this task so that
    /// it never overlaps a commit. A partition that commits is swept after its commits; this
    /// covers one that has gone quiet. Skipped while commits are failing, and cut short by
    /// the shutdown deadline, so a slow store cannot hold up the flushes behind it.
    async fn sweep_quiet_partitions(&self) {
        if self.lake_failing.load(Ordering::Acquire) {
            return;
        }
        tokio::select! {
            biased;
            () = self.abandon.cancelled() => {}
            _ = self.writer.sweep_claims() => {}
        }
    }

    fn is_fenced(&self, stream: &str, partition: i32) -> bool {
        self.fenced.lock().unwrap_or_else(PoisonError::into_inner).contains(&(stream.to_owned(), partition))
    }

    async fn commit_with_retry(
        &self,
        mut batch: FlushBatch,
        reason: FlushReason,
    ) -> Result<FlushOutcome, FlusherError> {
        let (stream, partition, first_offset, next_offset) =
            (batch.stream.clone(), batch.partition, batch.first_offset, batch.next_offset);
        let mut delay = RETRY_START;
        loop {
            if self.is_fenced(&stream, partition) {
                tracing::info!(stream = %stream, partition, first_offset, next_offset, "Flush of a fenced partition dropped.");
                // Commits are one at a time: with this one dropped, none is failing now. A lake
                // still down fails the next one (and the timed lake probe sees it meanwhile).
                self.lake_failing.store(false, Ordering::Release);
                return Ok(FlushOutcome::Fenced { stream, partition });
            }
            // Past the deadline no new attempt starts: each queued flush would otherwise make
            // one more (during a store outage, seconds of the store client's own retries)
            // before it saw the deadline, holding up the exit behind them.
            if self.abandon.is_cancelled() {
                return Err(FlusherError::Abandoned { stream, partition });
            }
            let started = Instant::now();
            match self.writer.commit(&mut batch).await {
                Ok(report) => {
                    self.lake_failing.store(false, Ordering::Release);
                    self.metrics.record_flush(reason, started.elapsed().as_secs_f64());
                    for file in &report.files {
                        self.metrics.record_files_written(file.kind, 1, file.rows as u64, file.bytes as u64);
                    }
                    tracing::debug!(
                        stream = %stream,
                        partition,
                        first_offset,
                        next_offset,
                        files = report.files.len(),
                        reason = reason.as_str(),
                        "Flush committed."
                    );
                    return Ok(FlushOutcome::Committed(FlushDone { stream, partition, next_offset, reason, report }));
                }
                Err(driftwatch_lake::error::LakeError::Fenced { holder, .. }) => {
                    // The lake answered: it is writable, whoever holds the partition.
                    self.lake_failing.store(false, Ordering::Release);
                    self.metrics.record_consumer_error(ConsumerErrorKind::LakeClaimLost);
                    if self.writer.held_claim(&stream, partition).as_deref() == Some(holder.as_str()) {
                        tracing::warn!(
                            stream = %stream,
                            partition,
                            first_offset,
                            next_offset,
                            "Partition recovered again since this flush was read (released and assigned back); \
                             flush dropped, the range is read again from the checkpoint."
                        );
                    } else {
                        tracing::warn!(
                            stream = %stream,
                            partition,
                            first_offset,
                            next_offset,
                            holder = %holder,
                            "Another writer has claimed this partition in the lake; flush dropped for it to write."
                        );
                    }
                    return Ok(FlushOutcome::ClaimLost { stream, partition });
                }
                Err(source) if source.is_retryable() => {
                    self.lake_failing.store(true, Ordering::Release);
                    self.metrics.record_consumer_error(ConsumerErrorKind::LakeWrite);
                    tracing::warn!(
                        stream = %stream,
                        partition,
                        error = %source,
                        retry_in_ms = delay.as_millis() as u64,
                        "Lake commit failed; retrying."
                    );
                    tokio::select! {
                        biased;
                        () = self.abandon.cancelled() => return Err(FlusherError::Abandoned { stream, partition }),
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(RETRY_MAX);
                }
                Err(source) => {
                    let source = Box::new(source);
                    return Err(FlusherError::Commit { stream, partition, first_offset, next_offset, source });
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "flusher_tests.rs"]
mod tests;
