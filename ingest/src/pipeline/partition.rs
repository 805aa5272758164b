//! One source partition's rows between two flushes.
//!
//! Every message read from a partition lands here: the [`Processor`](super::Processor) decodes,
//! enriches and aggregates it into the buffer; when a [`FlushReason`] fires the buffer is drained
//! into a [`FlushBatch`] covering the exact offset range `[first_offset, next_offset)` that the
//! lake writer commits together with the checkpoint.

use std::sync::Arc;
use std::time::Instant;

use driftwatch_lake::event_rows::EventRows;
use driftwatch_lake::model::{DeadLetter, FeedbackEvent};
use driftwatch_lake::writer::FlushBatch;

use crate::aggregate::{AggregateConfig, AggregateError, RollupAggregator};
use crate::id_key::{RecentMap, scoped_id_key};
use crate::telemetry::FlushReason;

/// Buffered rows of one (stream, partition).
#[derive(Debug)]
pub struct PartitionBuffer {
    /// Checkpoint stream (e.g. `kafka.<group>.<topic>` or `file.<id>`).
    pub stream: Arc<str>,
    /// Source topic as recorded on each row.
    pub topic: Arc<str>,
    /// Source partition.
    pub partition: i32,
    /// First offset not yet committed; the next flush starts here.
    first_offset: i64,
    /// One past the last offset consumed into the buffer.
    next_offset: i64,
    /// Inference rows, already in the columns of the files they go to.
    pub(crate) events: EventRows,
    pub(crate) feedback: Vec<FeedbackEvent>,
    /// Indexes into `feedback` of results whose inference was not in the join when they were
    /// read: they are tallied (rollups, metrics) only when the buffer is drained, by
    /// [`Processor::take_batch`](super::Processor::take_batch), so that an inference read
    /// meanwhile from another partition (a spans topic behind its logs topic during a backlog)
    /// still lends them its model and prompt.
    pub(crate) unjoined_feedback: Vec<usize>,
    pub(crate) dead_letters: Vec<DeadLetter>,
    pub(crate) rollups: RollupAggregator,
    /// Recent event ids of this partition: producer retries are dropped before rollups count them twice.
    pub(crate) recent_ids: Option<RecentMap<()>>,
    /// Approximate heap bytes held by the buffered rows.
    pub(crate) approx_bytes: usize,
    /// When the oldest buffered row arrived; `None` when empty.
    oldest: Option<Instant>,
    /// No message consumed since the buffer was created (assignment or reset).
    fresh: bool,
    /// The lake claim the partition was recovered under; every batch carries it, so that a
    /// batch read before the partition was released and assigned back is never committed
    /// under the later claim (see [`FlushBatch::claim`]).
    claim: Option<String>,
}

impl PartitionBuffer {
    /// An empty buffer whose first flush starts at `next_offset` (the recovered checkpoint);
    /// a negative `next_offset` means "no checkpoint: start at the first message read".
    pub fn new(
        stream: Arc<str>,
        topic: Arc<str>,
        partition: i32,
        next_offset: i64,
        aggregate: &AggregateConfig,
        dedup_window: usize,
    ) -> Self {
        Self {
            stream,
            topic,
            partition,
            first_offset: next_offset,
            next_offset,
            events: EventRows::default(),
            feedback: Vec::new(),
            unjoined_feedback: Vec::new(),
            dead_letters: Vec::new(),
            rollups: RollupAggregator::new(aggregate),
            recent_ids: (dedup_window > 0).then(|| RecentMap::new(dedup_window)),
            approx_bytes: 0,
            oldest: None,
            fresh: true,
            claim: None,
        }
    }

    /// Bind the buffer's batches to the lake claim its partition was recovered under.
    #[must_use]
    pub fn under_claim(mut self, claim: Option<String>) -> Self {
        self.claim = claim;
        self
    }

    /// True until the first message after assignment: a lower offset than the checkpoint then
    /// means the log itself moved (topic recreated), not a redelivery.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// Rows waiting for the next flush.
    pub fn rows(&self) -> usize {
        self.events.len() + self.feedback.len() + self.dead_letters.len()
    }

    /// Approximate heap bytes waiting for the next flush.
    pub fn bytes(&self) -> usize {
        self.approx_bytes + self.rollups.approx_bytes()
    }

    /// One past the last consumed offset: where consumption resumes after this buffer is committed.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// True when a flush would commit nothing new: no rows and no consumed offsets.
    pub fn is_idle(&self) -> bool {
        self.rows() == 0 && self.rollups.is_empty() && self.first_offset == self.next_offset
    }

    /// Record that the message at `offset` was consumed (whatever it yielded); everything
    /// before `next_offset` is now accounted for. A buffer created without a checkpoint
    /// (negative start) starts its first range at the first message it sees.
    pub(crate) fn consumed(&mut self, offset: i64, next_offset: i64) {
        self.fresh = false;
        if self.first_offset < 0 {
            self.first_offset = offset;
            self.next_offset = offset;
        }
        if self.oldest.is_none() {
            self.oldest = Some(Instant::now());
        }
        self.next_offset = self.next_offset.max(next_offset);
    }

    /// True when the feedback `feedback_id` was seen recently in this partition (a producer
    /// retry). Feedback ids are their own namespace: a feedback event may reuse the id of the
    /// inference it rates, and must not be taken for a retry of it.
    pub(crate) fn is_duplicate_feedback(&mut self, app: &str, feedback_id: &str) -> bool {
        seen_recently(&mut self.recent_ids, scoped_id_key(app, feedback_id) ^ FEEDBACK_ID_TAG)
    }

    /// Add a buffered row's approximate heap bytes (struct, strings and slack).
    pub(crate) fn charge(&mut self, bytes: usize) {
        self.approx_bytes += bytes;
    }

    /// Which limit, if any, says this buffer must be flushed now.
    pub fn due(&self, limits: &super::FlushLimits, now: Instant) -> Option<FlushReason> {
        if self.rollups.is_full() {
            Some(FlushReason::Keys)
        } else if self.rows() >= limits.max_rows {
            Some(FlushReason::Rows)
        } else if self.bytes() >= limits.max_bytes {
            Some(FlushReason::Bytes)
        } else if self.oldest.is_some_and(|t| now.duration_since(t) >= limits.max_age) {
            Some(FlushReason::Age)
        } else {
            None
        }
    }

    /// Drain the buffer into a batch covering `[first_offset, next_offset)`; `None` when idle.
    /// The buffer starts the next range at `next_offset`. Sources drain through
    /// [`Processor::take_batch`](super::Processor::take_batch), which tallies the feedback left
    /// unjoined first; a buffer that still holds some refuses, since its rollups would miss them.
    pub(super) fn take_batch(&mut self) -> Result<Option<FlushBatch>, AggregateError> {
        if self.is_idle() {
            return Ok(None);
        }
        if !self.unjoined_feedback.is_empty() {
            return Err(AggregateError::UntalliedFeedback { rows: self.unjoined_feedback.len() });
        }
        let rollups = self.rollups.drain()?;
        let feedback = self.feedback.len();
        let batch = FlushBatch {
            stream: self.stream.to_string(),
            partition: self.partition,
            first_offset: self.first_offset,
            next_offset: self.next_offset,
            events: std::mem::take(&mut self.events),
            // The next batch is likely as big as this one: reserving that up front spares the
            // buffer's repeated doubling (a copy of every row so far each time).
            feedback: std::mem::replace(&mut self.feedback, Vec::with_capacity(feedback)),
            rollups,
            dead_letters: std::mem::take(&mut self.dead_letters),
            // The file source adds its file's head; no other source has one.
            file_head: None,
            claim: self.claim.clone(),
        };
        self.first_offset = self.next_offset;
        self.approx_bytes = 0;
        self.oldest = None;
        Ok(Some(batch))
    }
}

/// Mixed into feedback ids' keys so that they never meet inference ids' keys in the shared
/// dedup window (the keys are keyed 128-bit hashes, so a fixed tag keeps them uniform).
const FEEDBACK_ID_TAG: u128 = 0x6665_6564_6261_636b_2069_6420_6b65_7973;

/// Remember event `id` of `app` in a partition's dedup window; true when it was already there.
/// An id is an event's identity within its app, as analysis counts them: two apps that number
/// their calls `1`, `2`, ... do not drop each other's. A function of the one field, so the
/// processor can call it while it holds a row of the same buffer.
pub(crate) fn seen_event_recently(recent_ids: &mut Option<RecentMap<()>>, app: &str, id: &str) -> bool {
    seen_recently(recent_ids, scoped_id_key(app, id))
}

/// Remember `key` in a partition's dedup window (none when deduplication is off); true when it
/// was already there.
fn seen_recently(recent_ids: &mut Option<RecentMap<()>>, key: u128) -> bool {
    recent_ids.as_mut().is_some_and(|recent| recent.insert(key, ()))
}
