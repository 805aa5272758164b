//! One flush of one source partition into the lake, exactly once. Ingest hands
//! [`LakeWriter::commit`] a [`FlushBatch`] (rows plus the source range they came
//! from); the rows leave as Parquet files grouped by table, date and app, and
//! the range leaves as the partition's checkpoint.
//!
//! The protocol (DESIGN §5 delivery guarantee), for a writer holding the partition's claim
//! (taken by [`LakeWriter::recover`]):
//! 1. read the partition record; if another writer has claimed the partition since, stop
//!    ([`LakeError::Fenced`]);
//! 2. put this writer's pending manifest listing every file the flush will write;
//! 3. put the data files (each atomic; up to [`CONCURRENT_PUTS`] at once); if one fails,
//!    delete them all and the manifest before returning the error, so a retry starts clean;
//! 4. put the record with the new checkpoint (for a file, with its head's fingerprint),
//!    conditionally on the version read in step 1;
//!    if that is refused, read the record again: if it holds this commit's checkpoint the put
//!    landed after all (an S3 client retries a conditional put whose answer was lost, and the
//!    retry is refused by the write it retries) and the flush stands; otherwise another writer
//!    claimed the partition meanwhile: delete the files of steps 2 and 3 and stop
//!    ([`LakeError::Fenced`]). Should that read fail, nothing is deleted: the manifest stays
//!    for the retry (or the next recovery) to decide against the record;
//! 5. delete the manifest.
//!
//! A crash anywhere leaves a state [`LakeWriter::recover`] resolves: before step
//! 4 the flush is undone, after it the flush stands. A flush of offsets the
//! checkpoint already covers writes nothing, and one that straddles it is refused,
//! so no range is ever in the lake twice. For [`SWEEP_WINDOW`] after taking a claim, the
//! partition is swept at most every [`SWEEP_INTERVAL`] (then every [`LATE_SWEEP_INTERVAL`] up to
//! [`LATE_SWEEP_UNTIL`]) by [`checkpoint::sweep_fenced`], which
//! removes files that a writer fenced by the claim put after its flush was undone: after a
//! commit, and by [`LakeWriter::sweep_claims`] (which the flusher runs on a timer) when the
//! partition has gone quiet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use futures::StreamExt;
use tracing::{debug, warn};

use crate::checkpoint::{self, Checkpoint, FileHead, PartitionRecord, PendingFlush};
use crate::encode::{encode_dead_letters, encode_feedback, encode_rollups};
use crate::error::{LakeError, Result};
use crate::event_rows::EventRows;
use crate::layout::{FileKind, data_path, date_partition, day_of, file_name};
use crate::model::{DeadLetter, FeedbackEvent, RollupRow};
use crate::parquet::{ParquetOptions, write_parquet};
use crate::store::LakeStore;

mod claims;

use claims::HeldClaim;
#[cfg(test)]
use claims::take_due_sweeps;

/// Data files put concurrently during one flush: enough to hide object store
/// latency, few enough to bound memory and connections.
pub const CONCURRENT_PUTS: usize = 4;

/// How long after taking a claim the partition is swept every [`SWEEP_INTERVAL`] for late files
/// of fenced writers: longer than an object store request with its retries, after which a
/// fenced writer's put either landed or failed.
pub const SWEEP_WINDOW: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Least time between two sweeps of one partition in the [`SWEEP_WINDOW`]: each costs a listing
/// of the stream's checkpoint directory.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Time between two sweeps after the [`SWEEP_WINDOW`], until [`LATE_SWEEP_UNTIL`]: a put that
/// lands that late comes from a writer stalled far past any request timeout, rare enough that
/// minutes of visibility are the better trade against a listing every 30 s.
pub const LATE_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// How long after taking a claim the partition is swept at all: as long as a recovery keeps a
/// fenced manifest ([`checkpoint::FENCED_MANIFEST_RETENTION`]), the horizon past which a late put
/// is not caught by any recovery either.
pub const LATE_SWEEP_UNTIL: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// Partitions swept at most by one [`LakeWriter::sweep_claims`], the most overdue first. The
/// flusher runs it between commits, so it bounds how long commits wait: a folder backfill to
/// an object store holds a claim per file, and sweeping a thousand of them (a listing each)
/// every 30 s stalled the commits behind them for most of those 30 s. Partitions left over are
/// swept by the next rounds; a partition that commits is also swept after its commits.
pub const MAX_SWEEPS_PER_ROUND: usize = 8;

/// Where a test can stall a commit, as a paused process would.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StallBefore {
    /// After reading the record, before the manifest.
    Manifest,
    /// After the manifest, before the data files.
    Data,
    /// After the data files, before the checkpoint.
    Checkpoint,
    /// After the checkpoint put landed, before its answer reaches the commit.
    CheckpointAnswer,
}

/// A stall: `.0` is notified when a commit arrives, `.1` releases it.
#[cfg(test)]
pub(crate) type Stall = Arc<(tokio::sync::Notify, tokio::sync::Notify)>;

/// Everything one flush of one (stream, partition) writes.
#[derive(Debug, Default)]
pub struct FlushBatch {
    /// Source id (Kafka topic, file source id); sanitised into paths by [`crate::layout`].
    pub stream: String,
    /// Source partition (0 for files).
    pub partition: i32,
    /// First source offset covered by this flush.
    pub first_offset: i64,
    /// Offset after the last message covered: the checkpoint after commit.
    pub next_offset: i64,
    /// Inference events read from the range, already in columns per file.
    pub events: EventRows,
    /// Feedback read from the range.
    pub feedback: Vec<FeedbackEvent>,
    /// Rollup partials closed by this flush.
    pub rollups: Vec<RollupRow>,
    /// Rejected input from the range.
    pub dead_letters: Vec<DeadLetter>,
    /// File sources: the file's head, stored in the checkpoint with `next_offset` (see
    /// [`Checkpoint::file_head`]); `None` for Kafka.
    pub file_head: Option<FileHead>,
    /// The claim the rows were read under ([`LakeWriter::held_claim`] when the source's
    /// position was recovered), or `None` to commit under whatever claim the writer holds.
    /// A commit refuses the batch as [`LakeError::Fenced`] once the writer holds another
    /// claim: the partition was recovered again since (released and assigned back), so the
    /// source is re-reading this range from the checkpoint, and committing the old read
    /// would put the range in the lake ahead of the new one.
    pub claim: Option<String>,
}

impl FlushBatch {
    /// Event, feedback and dead-letter rows the batch adds to the lake (rollup partials merge
    /// into rows already counted, so they are not rows of their own here).
    pub fn rows(&self) -> usize {
        self.events.len() + self.feedback.len() + self.dead_letters.len()
    }
}

/// One data file a commit wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Table (`events`, `feedback`, `rollups`, `dead_letter`).
    pub kind: &'static str,
    /// Lake-relative path.
    pub path: String,
    /// Rows in the file.
    pub rows: usize,
    /// Encoded size.
    pub bytes: usize,
}

/// What a commit did: for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitReport {
    /// Data files written, in path order.
    pub files: Vec<WrittenFile>,
    /// The checkpoint now in force.
    pub checkpoint: Checkpoint,
}

/// An encoded file waiting to be put.
#[derive(Debug)]
pub(crate) struct EncodedFile {
    pub(crate) kind: FileKind,
    pub(crate) path: String,
    pub(crate) rows: usize,
    pub(crate) data: bytes::Bytes,
}

/// Writes flushes into a lake with the exactly-once protocol. Cheap to share
/// behind an `Arc`; commits of different partitions may run concurrently, a
/// partition's commits must be sequential.
#[derive(Debug, Clone)]
pub struct LakeWriter {
    store: LakeStore,
    options: Arc<ParquetOptions>,
    /// The claim this writer holds on each (stream, partition) it recovered.
    claims: Arc<Mutex<HashMap<(String, i32), HeldClaim>>>,
    /// Where tests stall this writer's commits.
    #[cfg(test)]
    stalls: Vec<(StallBefore, Stall)>,
    /// Set by tests to answer the next checkpoint put that lands with a conflict.
    #[cfg(test)]
    lose_checkpoint_answer: Arc<std::sync::atomic::AtomicBool>,
}

fn same_day(a: i64, b: i64) -> bool {
    day_of(a) == day_of(b)
}

/// Encode and write one group of rows sharing a table, date (and app).
fn encode_group(
    options: &ParquetOptions,
    kind: FileKind,
    path: String,
    rows: usize,
    batch: Result<arrow::record_batch::RecordBatch>,
) -> Result<EncodedFile> {
    let data = write_parquet(&batch?, options.writer_properties(kind)?).map_err(|error| match error {
        LakeError::Parquet { op, source, .. } => LakeError::Parquet { op, kind: kind.as_str(), source },
        other => other,
    })?;
    Ok(EncodedFile { kind, path, rows, data })
}

/// Group a flush's rows into files and encode them. Rows are sorted by time
/// (stable, so the same input gives byte-identical files on replay).
pub(crate) fn encode_batch(
    options: &ParquetOptions,
    batch: &mut FlushBatch,
    epoch: u64,
    owner: &str,
) -> Result<Vec<EncodedFile>> {
    let name = file_name(&batch.stream, batch.partition, epoch, batch.first_offset, batch.next_offset, owner);
    let mut files = Vec::new();

    for file in batch.events.seal()? {
        let path = data_path(FileKind::Events, &date_partition(file.some_time), file.app, &name);
        let rows = file.rows.num_rows();
        files.push(encode_group(options, FileKind::Events, path, rows, Ok(file.rows))?);
    }
    batch.feedback.sort_by_key(|f| f.time);
    for group in batch.feedback.chunk_by(|a, b| same_day(a.time, b.time)) {
        let path = data_path(FileKind::Feedback, &date_partition(group[0].time), "", &name);
        files.push(encode_group(options, FileKind::Feedback, path, group.len(), encode_feedback(group))?);
    }
    batch.rollups.sort_by_key(|r| r.key.window_start);
    for group in batch.rollups.chunk_by(|a, b| same_day(a.key.window_start, b.key.window_start)) {
        let path = data_path(FileKind::Rollups, &date_partition(group[0].key.window_start), "", &name);
        files.push(encode_group(options, FileKind::Rollups, path, group.len(), encode_rollups(group))?);
    }
    batch.dead_letters.sort_by_key(|d| d.time);
    for group in batch.dead_letters.chunk_by(|a, b| same_day(a.time, b.time)) {
        let path = data_path(FileKind::DeadLetter, &date_partition(group[0].time), "", &name);
        files.push(encode_group(options, FileKind::DeadLetter, path, group.len(), encode_dead_letters(group))?);
    }
    Ok(files)
}

fn fenced(batch: &FlushBatch, owner: &str, holder: String) -> LakeError {
    LakeError::Fenced {
        stream: batch.stream.clone(),
        partition: batch.partition,
        owner: owner.to_owned(),
        holder,
        first_offset: batch.first_offset,
        next_offset: batch.next_offset,
    }
}

/// Whether `record` holds `checkpoint`, the one a commit put: then that put landed, whatever its
/// answer said. A claim's commits of a partition are sequential and its flushes never overlap,
/// so a checkpoint committed under this claim with the same end and epoch can only be this
/// commit's; the record's holder may have changed since (a claim can follow the put before a
/// retry of it is refused), and the checkpoint stands all the same: that claim's recovery
/// found it committed.
fn holds_checkpoint(record: &PartitionRecord, checkpoint: &Checkpoint) -> bool {
    record.checkpoint.as_ref().is_some_and(|stored| {
        stored.committed_by.is_some()
            && stored.committed_by == checkpoint.committed_by
            && stored.next_offset == checkpoint.next_offset
            && stored.epoch == checkpoint.epoch
    })
}

fn invalid(batch: &FlushBatch, reason: String) -> LakeError {
    LakeError::InvalidBatch { stream: batch.stream.clone(), partition: batch.partition, reason }
}

impl LakeWriter {
    /// A writer over `store` with the given file options (validate them at startup
    /// with [`ParquetOptions::validate`]; a bad value fails every commit).
    pub fn new(store: LakeStore, options: ParquetOptions) -> Self {
        Self {
            store,
            options: Arc::new(options),
            claims: Arc::default(),
            #[cfg(test)]
            stalls: Vec::new(),
            #[cfg(test)]
            lose_checkpoint_answer: Arc::default(),
        }
    }

    /// Stall this writer's commits at `point` (tests).
    #[cfg(test)]
    pub(crate) fn stall_at(&mut self, point: StallBefore) -> Stall {
        let stall = Stall::default();
        self.stalls.push((point, Arc::clone(&stall)));
        stall
    }

    #[cfg(test)]
    async fn stall(&self, point: StallBefore) {
        for (at, stall) in &self.stalls {
            if *at == point {
                stall.0.notify_one();
                stall.1.notified().await;
            }
        }
    }

    /// Answer this writer's next checkpoint put that lands with [`LakeError::Conflict`], as S3
    /// does when the put's answer is lost (a 500, a 504 from a load balancer), the client
    /// retries it and the retry is refused because the record is now the put's own (tests).
    #[cfg(test)]
    pub(crate) fn lose_next_checkpoint_answer(&self) {
        self.lose_checkpoint_answer.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The answer a test makes the checkpoint put give, after stalling at
    /// [`StallBefore::CheckpointAnswer`].
    #[cfg(test)]
    async fn checkpoint_answer(
        &self,
        written: Result<crate::store::StoreVersion>,
        path: &str,
    ) -> Result<crate::store::StoreVersion> {
        self.stall(StallBefore::CheckpointAnswer).await;
        let lost = self.lose_checkpoint_answer.load(std::sync::atomic::Ordering::SeqCst);
        if lost && written.is_ok() {
            self.lose_checkpoint_answer.store(false, std::sync::atomic::Ordering::SeqCst);
            return Err(LakeError::Conflict { path: path.to_owned() });
        }
        written
    }

    /// The store this writer commits to.
    pub fn store(&self) -> &LakeStore {
        &self.store
    }

    /// The committed checkpoint of (stream, partition), without recovering.
    pub async fn read_checkpoint(&self, stream: &str, partition: i32) -> Result<Option<Checkpoint>> {
        checkpoint::read_checkpoint(&self.store, stream, partition).await
    }

    /// Claim (stream, partition) for this writer, undo any flush of it that did not commit
    /// (a crash, or a writer that lost it) and return the committed checkpoint. Call before
    /// consuming a newly assigned partition: from then on earlier writers of the partition
    /// cannot commit to it any more.
    pub async fn recover(&self, stream: &str, partition: i32) -> Result<Option<Checkpoint>> {
        let claim = checkpoint::recover(&self.store, stream, partition).await?;
        self.hold(stream, partition, claim.owner);
        Ok(claim.checkpoint)
    }

    /// The record of (stream, partition) with its version, if this writer still holds the claim.
    async fn read_own_record(
        &self,
        batch: &FlushBatch,
        owner: &str,
    ) -> Result<(PartitionRecord, crate::store::StoreVersion)> {
        let (stream, partition) = (batch.stream.as_str(), batch.partition);
        match checkpoint::read_record(&self.store, stream, partition).await? {
            Some((record, version)) if record.owner == owner => Ok((record, version)),
            other => Err(fenced(batch, owner, other.map(|(record, _)| record.owner).unwrap_or_default())),
        }
    }

    /// Durably write a flush and then its checkpoint (see the module docs). On
    /// error nothing is committed; the caller retries the same range (or
    /// restarts and recovers), except after [`LakeError::Fenced`]: another writer owns the
    /// partition now, and this one must drop what it holds of it.
    ///
    /// The batch is borrowed and handed back intact whatever happens, so a failed commit can be
    /// retried without keeping a copy.
    pub async fn commit(&self, batch: &mut FlushBatch) -> Result<CommitReport> {
        let has_rows = !(batch.events.is_empty()
            && batch.feedback.is_empty()
            && batch.rollups.is_empty()
            && batch.dead_letters.is_empty());
        if batch.next_offset < batch.first_offset || (has_rows && batch.next_offset == batch.first_offset) {
            let reason = format!("empty or reversed offset range [{}, {})", batch.first_offset, batch.next_offset);
            return Err(invalid(batch, reason));
        }
        let owner = self.owner(&batch.stream, batch.partition).await?;
        if let Some(read_under) = batch.claim.as_deref().filter(|claim| *claim != owner) {
            return Err(fenced(batch, read_under, owner));
        }
        let (record, version) = self.read_own_record(batch, &owner).await?;
        let (stream, partition) = (batch.stream.as_str(), batch.partition);
        if let Some(leftover) = checkpoint::read_pending(&self.store, stream, partition, &owner).await? {
            // A failed earlier attempt of this writer, decided as recovery decides the holder's.
            warn!(stream, partition, "Recovering a flush left pending by a failed commit.");
            let path = crate::layout::pending_path(stream, partition, &owner);
            checkpoint::resolve_pending(&self.store, &record, &owner, &path, &leftover).await?;
        }
        let previous = record.checkpoint.clone();
        let committed_next = previous.as_ref().map(|c| c.next_offset);
        if let Some(next) = committed_next
            && batch.first_offset < next
            && next < batch.next_offset
        {
            let reason =
                format!("range [{}, {}) straddles the checkpoint {next}", batch.first_offset, batch.next_offset);
            return Err(invalid(batch, reason));
        }
        // Already durable: the checkpoint stands and nothing is written (a retry of a flush
        // whose commit succeeded but whose answer was lost).
        if let Some(checkpoint) = previous.as_ref().filter(|c| batch.next_offset <= c.next_offset) {
            if has_rows {
                warn!(
                    stream,
                    partition,
                    first_offset = batch.first_offset,
                    next_offset = batch.next_offset,
                    checkpoint = checkpoint.next_offset,
                    "Flush of offsets already in the lake skipped."
                );
            }
            return Ok(CommitReport { files: Vec::new(), checkpoint: checkpoint.clone() });
        }

        let (stream, partition, first_offset, next_offset) =
            (batch.stream.clone(), batch.partition, batch.first_offset, batch.next_offset);
        let options = Arc::clone(&self.options);
        let epoch = previous.as_ref().map_or(0, |c| c.epoch);
        let mut owned = std::mem::take(batch);
        let name_owner = owner.clone();
        // Encoding is CPU work proportional to the flush; keep it off the async workers.
        let (owned, encoded) = tokio::task::spawn_blocking(move || {
            let encoded = encode_batch(&options, &mut owned, epoch, &name_owner);
            (owned, encoded)
        })
        .await
        .map_err(|source| LakeError::Task { op: "encode flush", source })?;
        *batch = owned;
        let mut files = encoded?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();

        if !files.is_empty() {
            #[cfg(test)]
            self.stall(StallBefore::Manifest).await;
            let pending = PendingFlush { owner: owner.clone(), first_offset, next_offset, files: paths.clone() };
            checkpoint::write_pending(&self.store, &stream, partition, &pending).await?;
            #[cfg(test)]
            self.stall(StallBefore::Data).await;
            if let Err(error) = self.put_files(&files).await {
                // Leave nothing behind: if the partition is claimed before the retry, no
                // manifest would name what this attempt put. Should the cleanup fail too, the
                // manifest stays for the retry or the next recovery.
                if checkpoint::undo_files(&self.store, &stream, partition, &paths).await.is_ok() {
                    let _ = checkpoint::delete_pending(&self.store, &stream, partition, &owner).await;
                }
                return Err(error);
            }
        }
        let rows: usize = files.iter().map(|f| f.rows).sum();
        let checkpoint = Checkpoint {
            stream: stream.clone(),
            partition,
            next_offset,
            updated_at: Utc::now(),
            files: previous.as_ref().map_or(0, |c| c.files) + files.len() as u64,
            rows: previous.as_ref().map_or(0, |c| c.rows) + rows as u64,
            epoch,
            committed_by: Some(owner.clone()),
            // In the record put below: the offset and the file it is a position in are
            // committed together or not at all.
            file_head: batch.file_head.clone(),
        };
        #[cfg(test)]
        self.stall(StallBefore::Checkpoint).await;
        let updated = PartitionRecord { checkpoint: Some(checkpoint.clone()), ..record };
        let written = checkpoint::write_record(&self.store, &updated, Some(&version)).await;
        #[cfg(test)]
        let written = self.checkpoint_answer(written, &crate::layout::checkpoint_path(&stream, partition)).await;
        match written {
            Ok(_) => {}
            Err(LakeError::Conflict { .. }) => {
                // A refusal does not prove the put failed: S3 clients retry a conditional put
                // whose answer was lost (a 500, a 504 from a load balancer), and the retry is
                // refused by the write it retries. Only the record tells, so it is read again
                // before anything is deleted; if that read fails too, the manifest stays and
                // the retry (or the next recovery) decides against the record as it stands.
                let current = checkpoint::read_record(&self.store, &stream, partition).await.inspect_err(|error| {
                    warn!(
                        stream,
                        partition,
                        first_offset,
                        next_offset,
                        %error,
                        "Checkpoint put refused and the record unreadable; the flush is left to the retry."
                    );
                })?;
                match current {
                    Some((stored, _)) if holds_checkpoint(&stored, &checkpoint) => {
                        warn!(
                            stream,
                            partition,
                            first_offset,
                            next_offset,
                            holder = stored.owner,
                            "Checkpoint put refused by a retry of itself: it had landed, and the flush stands."
                        );
                    }
                    stored => {
                        // Claimed by another writer since step 1: these rows are its to write.
                        let holder = stored.map(|(record, _)| record.owner).unwrap_or_default();
                        warn!(
                            stream,
                            partition,
                            first_offset,
                            next_offset,
                            holder,
                            "Partition claimed by another writer during a flush; removing its files."
                        );
                        checkpoint::undo_files(&self.store, &stream, partition, &paths).await?;
                        checkpoint::delete_pending(&self.store, &stream, partition, &owner).await?;
                        return Err(fenced(batch, &owner, holder));
                    }
                }
            }
            Err(error) => return Err(error),
        }
        if !files.is_empty() {
            checkpoint::delete_pending(&self.store, &stream, partition, &owner).await?;
        }
        self.sweep_after_commit(&stream, partition, &owner).await;
        debug!(stream, partition, next_offset = checkpoint.next_offset, files = files.len(), rows, "Flush committed.");
        let files = files
            .into_iter()
            .map(|f| WrittenFile { kind: f.kind.as_str(), rows: f.rows, bytes: f.data.len(), path: f.path })
            .collect();
        Ok(CommitReport { files, checkpoint })
    }

    /// Start a new epoch for (stream, partition) at `next_offset`: the source's offsets went
    /// backwards (a topic deleted and recreated), so the old checkpoint no longer describes
    /// it. Files already committed stay; new ones carry the new epoch in their names.
    pub async fn reset_partition(&self, stream: &str, partition: i32, next_offset: i64) -> Result<Checkpoint> {
        let claim = self.reclaim(stream, partition).await?;
        let epoch = claim.checkpoint.as_ref().map_or(0, |c| c.epoch) + 1;
        let checkpoint = self.write_position(stream, partition, claim, next_offset, epoch).await?;
        warn!(stream, partition, next_offset, epoch = checkpoint.epoch, "Partition offsets reset; new epoch started.");
        Ok(checkpoint)
    }

    /// Record where a partition that has no checkpoint starts, before anything is read from it:
    /// a start resolved from the source's state of the moment (the log's end, for
    /// `start_from = "latest"`) is then kept, and a later claimer resumes there instead of
    /// resolving it again past whatever arrived in between. A checkpoint committed meanwhile
    /// (by a writer this claim fenced) stands and is returned instead.
    pub async fn pin_start(&self, stream: &str, partition: i32, next_offset: i64) -> Result<Checkpoint> {
        let claim = self.reclaim(stream, partition).await?;
        if let Some(committed) = claim.checkpoint {
            return Ok(committed);
        }
        self.write_position(stream, partition, claim, next_offset, 0).await
    }

    /// A fresh claim on (stream, partition), held from here on whether or not a write under it
    /// lands: holding the old one after a failed write would have every later commit refused
    /// as fenced by a claim that is this writer's own.
    async fn reclaim(&self, stream: &str, partition: i32) -> Result<checkpoint::Claim> {
        let claim = checkpoint::recover(&self.store, stream, partition).await?;
        self.hold(stream, partition, claim.owner.clone());
        Ok(claim)
    }

    /// Commit a position with no data under `claim`: totals carried over, `epoch` as given.
    async fn write_position(
        &self,
        stream: &str,
        partition: i32,
        claim: checkpoint::Claim,
        next_offset: i64,
        epoch: u64,
    ) -> Result<Checkpoint> {
        let previous = claim.checkpoint.as_ref();
        let checkpoint = Checkpoint {
            stream: stream.to_owned(),
            partition,
            next_offset,
            updated_at: Utc::now(),
            files: previous.map_or(0, |c| c.files),
            rows: previous.map_or(0, |c| c.rows),
            epoch,
            committed_by: Some(claim.owner.clone()),
            file_head: None,
        };
        let record = PartitionRecord {
            stream: stream.to_owned(),
            partition,
            owner: claim.owner.clone(),
            claimed_at: Utc::now(),
            checkpoint: Some(checkpoint.clone()),
        };
        checkpoint::write_record(&self.store, &record, Some(&claim.version)).await?;
        Ok(checkpoint)
    }

    /// Step 2: put every data file, a bounded number at a time.
    pub(crate) async fn put_files(&self, files: &[EncodedFile]) -> Result<()> {
        // Each put owns its inputs: futures that borrow across `buffer_unordered` make the
        // whole commit future `Send` only for one lifetime, which spawned callers cannot use.
        let puts: Vec<(LakeStore, String, bytes::Bytes)> =
            files.iter().map(|file| (self.store.clone(), file.path.clone(), file.data.clone())).collect();
        // Every put runs to its end before an error is returned: a put dropped half-way can
        // still land (a blocking local write, a request the server completes), after the
        // caller has cleaned up.
        let results: Vec<Result<()>> = futures::stream::iter(puts)
            .map(|(store, path, data)| async move { store.put_atomic(&path, data).await })
            .buffer_unordered(CONCURRENT_PUTS)
            .collect()
            .await;
        results.into_iter().collect()
    }
}

#[cfg(test)]
mod tests;
