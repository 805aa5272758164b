//! Committed source positions and the manifest of the flush in progress: the
//! lake's delivery guarantee (DESIGN §5, STYLE 10: offsets live with the data).
//!
//! [`crate::writer::LakeWriter::commit`] writes, per (stream, partition),
//! `_checkpoints/<stream>/<partition>.pending.<owner>.json` ([`PendingFlush`]) before
//! any data file and `_checkpoints/<stream>/<partition>.json` ([`PartitionRecord`],
//! holding the [`Checkpoint`]) after all of them. [`recover`] claims the partition for a
//! new writer, compares manifests with the record and deletes the files of every flush
//! that never committed, so the source can resume at [`Checkpoint::next_offset`] and
//! every message's rows end up in the lake once.
//!
//! Claims are what keep that true when a partition moves between daemons: the record is
//! only ever replaced by a conditional put against the version its writer read, and every
//! claim replaces it, so a writer that stalled (a paused process, a stalled VM, a network
//! partition) and lost its partition cannot commit afterwards: its put fails, and it
//! removes the files it wrote.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{LakeError, Result};
use crate::layout::{checkpoint_dir, checkpoint_path, is_pending_of, pending_path};
use crate::store::{LakeStore, StoreVersion};

/// The committed position of one (stream, partition): every row read before
/// `next_offset` is durably in the lake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Source id (Kafka topic or file source id), unsanitised.
    pub stream: String,
    /// Source partition (0 for files).
    pub partition: i32,
    /// The first offset not yet in the lake: where consumption resumes.
    pub next_offset: i64,
    /// When this checkpoint was written; shows a stalled partition at a glance.
    pub updated_at: DateTime<Utc>,
    /// Data files committed for this partition so far (replays not counted twice).
    pub files: u64,
    /// Rows committed for this partition so far, all tables together.
    pub rows: u64,
    /// Offset resets seen (the source's offsets started again, e.g. a recreated topic);
    /// part of data file names so a new incarnation never overwrites the old one's files.
    #[serde(default)]
    pub epoch: u64,
}

/// What `_checkpoints/<stream>/<partition>.json` holds: which writer may commit to the
/// partition now, and what has been committed. Every change to it is a conditional put
/// against the version its writer read, which is what fences a writer that lost the
/// partition without noticing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// Source id (Kafka topic or file source id), unsanitised.
    pub stream: String,
    /// Source partition (0 for files).
    pub partition: i32,
    /// Claim id of the writer that recovered the partition last ([`new_owner_id`]).
    pub owner: String,
    /// When that writer claimed it.
    pub claimed_at: DateTime<Utc>,
    /// The committed position; `None` until the first flush commits.
    pub checkpoint: Option<Checkpoint>,
}

/// A writer's claim on one (stream, partition), as [`recover`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The claim id, written into the record, this writer's manifests and file names.
    pub owner: String,
    /// The committed checkpoint at claim time (`None`: nothing committed yet).
    pub checkpoint: Option<Checkpoint>,
    /// The record's version right after the claim.
    pub version: StoreVersion,
}

/// The manifest of a flush between its first data file and its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFlush {
    /// Claim id of the writer of the flush.
    pub owner: String,
    /// First source offset in the flush.
    pub first_offset: i64,
    /// Offset after the last message in the flush.
    pub next_offset: i64,
    /// Lake-relative paths of every data file the flush writes.
    pub files: Vec<String>,
}

async fn read_json<T: DeserializeOwned>(store: &LakeStore, path: &str) -> Result<Option<T>> {
    match store.get(path).await? {
        None => Ok(None),
        Some(bytes) => parse(path, &bytes).map(Some),
    }
}

fn parse<T: DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| LakeError::Json { path: path.to_owned(), source })
}

fn to_json<T: Serialize>(path: &str, value: &T) -> Result<Bytes> {
    serde_json::to_vec_pretty(value)
        .map(Bytes::from)
        .map_err(|source| LakeError::Json { path: path.to_owned(), source })
}

/// A fresh claim id: 16 hex digits from a per-process random hash seed, the process id,
/// a counter and the clock, so no two claims anywhere share one.
pub fn new_owner_id() -> String {
    use std::hash::BuildHasher;
    static SEED: std::sync::OnceLock<foldhash::quality::RandomState> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hash = SEED.get_or_init(foldhash::quality::RandomState::default).hash_one((std::process::id(), count, nanos));
    format!("{hash:0width$x}", width = crate::layout::OWNER_ID_LEN)
}

/// The partition record as stored, with the version a conditional put must match.
pub(crate) async fn read_record(
    store: &LakeStore,
    stream: &str,
    partition: i32,
) -> Result<Option<(PartitionRecord, StoreVersion)>> {
    let path = checkpoint_path(stream, partition);
    let Some((bytes, version)) = store.get_versioned(&path).await? else { return Ok(None) };
    let record = match parse::<PartitionRecord>(&path, &bytes) {
        Ok(record) => record,
        // Lakes written before claims hold the bare checkpoint: unclaimed, and the next claim
        // rewrites it in the current form.
        Err(error) => match parse::<Checkpoint>(&path, &bytes) {
            Ok(checkpoint) => PartitionRecord {
                stream: checkpoint.stream.clone(),
                partition: checkpoint.partition,
                owner: String::new(),
                claimed_at: checkpoint.updated_at,
                checkpoint: Some(checkpoint),
            },
            Err(_) => return Err(error),
        },
    };
    Ok(Some((record, version)))
}

/// The committed checkpoint of (stream, partition), if any.
pub async fn read_checkpoint(store: &LakeStore, stream: &str, partition: i32) -> Result<Option<Checkpoint>> {
    Ok(read_record(store, stream, partition).await?.and_then(|(record, _)| record.checkpoint))
}

/// Replace the partition record if it is still at `expected` (`None`: if there is none):
/// [`LakeError::Conflict`] when another writer changed it first.
pub(crate) async fn write_record(
    store: &LakeStore,
    record: &PartitionRecord,
    expected: Option<&StoreVersion>,
) -> Result<StoreVersion> {
    let path = checkpoint_path(&record.stream, record.partition);
    store.put_if(&path, to_json(&path, record)?, expected).await
}

/// The manifest `owner` left for (stream, partition), if any.
pub async fn read_pending(
    store: &LakeStore,
    stream: &str,
    partition: i32,
    owner: &str,
) -> Result<Option<PendingFlush>> {
    read_json(store, &pending_path(stream, partition, owner)).await
}

/// Every pending manifest of (stream, partition), by any writer, with its path.
pub(crate) async fn list_pending(
    store: &LakeStore,
    stream: &str,
    partition: i32,
) -> Result<Vec<(String, PendingFlush)>> {
    let mut found = Vec::new();
    for object in store.list(&checkpoint_dir(stream)).await? {
        let name = object.path.rsplit('/').next().unwrap_or_default();
        if is_pending_of(name, partition)
            && let Some(pending) = read_json::<PendingFlush>(store, &object.path).await?
        {
            found.push((object.path, pending));
        }
    }
    Ok(found)
}

/// Record the files a flush is about to write (atomic put), before writing any.
pub(crate) async fn write_pending(
    store: &LakeStore,
    stream: &str,
    partition: i32,
    pending: &PendingFlush,
) -> Result<()> {
    let path = pending_path(stream, partition, &pending.owner);
    store.put_atomic(&path, to_json(&path, pending)?).await
}

/// Drop a manifest once its flush is committed or undone.
pub(crate) async fn delete_pending(store: &LakeStore, stream: &str, partition: i32, owner: &str) -> Result<()> {
    store.delete(&pending_path(stream, partition, owner)).await
}

/// The directory part of a lake-relative path.
fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Delete the files of a flush that did not commit, and the temporaries of their directories.
pub(crate) async fn undo_files(store: &LakeStore, stream: &str, partition: i32, files: &[String]) -> Result<()> {
    // Every file is tried even when one fails, so a partial failure removes all it can.
    let mut first_error = None;
    for file in files {
        if let Err(error) = store.delete(file).await {
            first_error.get_or_insert(error);
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    let mut dirs: Vec<&str> = files.iter().map(|f| dir_of(f)).collect();
    dirs.sort_unstable();
    dirs.dedup();
    for dir in dirs {
        store.remove_stale_tmps(dir, stream, partition).await?;
    }
    Ok(())
}

/// Decide one pending manifest against the record as it stood when it was claimed from:
/// its flush committed only if it is the previous holder's and the checkpoint covers it.
/// Any other writer's manifest belongs to a flush that can no longer commit (the claim
/// changed the record its conditional put expects), so its files are removed.
pub(crate) async fn resolve_pending(
    store: &LakeStore,
    previous: &PartitionRecord,
    path: &str,
    pending: &PendingFlush,
) -> Result<()> {
    let (stream, partition) = (previous.stream.as_str(), previous.partition);
    let committed_next = previous.checkpoint.as_ref().map(|c| c.next_offset);
    let by_holder = previous.owner == pending.owner;
    if by_holder && committed_next.is_some_and(|next| pending.next_offset <= next) {
        info!(
            stream,
            partition,
            next_offset = pending.next_offset,
            "Pending flush had committed; removing its manifest."
        );
    } else if !by_holder || committed_next.is_none_or(|next| pending.first_offset >= next) {
        warn!(
            stream,
            partition,
            owner = pending.owner,
            first_offset = pending.first_offset,
            next_offset = pending.next_offset,
            files = pending.files.len(),
            "Removing the files of a flush that never committed."
        );
        undo_files(store, stream, partition, &pending.files).await?;
    } else {
        return Err(LakeError::InconsistentCheckpoint {
            stream: stream.to_owned(),
            partition,
            checkpoint_next: committed_next.unwrap_or_default(),
            first_offset: pending.first_offset,
            next_offset: pending.next_offset,
        });
    }
    store.delete(path).await
}

/// Claims before giving up when other writers keep changing the record; the caller retries.
const CLAIM_ATTEMPTS: usize = 8;

/// Take (stream, partition) over for a new writer and bring it back to its last committed
/// state; returns the new claim and the checkpoint (`None`: nothing committed yet; the
/// source picks its start position).
///
/// First the record is rewritten, conditionally, with a new owner: from then on no flush of
/// any earlier writer can commit, because each commits with a conditional put against the
/// record it read. Then every pending manifest is decided against the record as it stood
/// before the claim: the previous holder's, when the checkpoint covers it, committed (only
/// the manifest is removed); any other never will (its files, present or not, are deleted,
/// then the manifest). Stale temporaries of this partition are removed too. Running it again
/// is harmless: every step is idempotent.
pub async fn recover(store: &LakeStore, stream: &str, partition: i32) -> Result<Claim> {
    let mut attempt = 0;
    let (before, claimed, version) = loop {
        attempt += 1;
        let (before, expected) = match read_record(store, stream, partition).await? {
            Some((record, version)) => (record, Some(version)),
            // No record: nothing was ever committed, and no earlier holder is known.
            None => (
                PartitionRecord {
                    stream: stream.to_owned(),
                    partition,
                    owner: String::new(),
                    claimed_at: Utc::now(),
                    checkpoint: None,
                },
                None,
            ),
        };
        let claimed = PartitionRecord { owner: new_owner_id(), claimed_at: Utc::now(), ..before.clone() };
        match write_record(store, &claimed, expected.as_ref()).await {
            Ok(version) => break (before, claimed, version),
            Err(LakeError::Conflict { .. }) if attempt < CLAIM_ATTEMPTS => {
                info!(stream, partition, attempt, "Partition record changed while claiming it; claiming again.");
            }
            Err(error) => return Err(error),
        }
    };
    for (path, pending) in list_pending(store, stream, partition).await? {
        resolve_pending(store, &before, &path, &pending).await?;
    }
    store.remove_stale_tmps(&checkpoint_dir(stream), stream, partition).await?;
    if !before.owner.is_empty() {
        info!(stream, partition, previous_owner = before.owner, owner = claimed.owner, "Partition claimed.");
    }
    Ok(Claim { owner: claimed.owner, checkpoint: claimed.checkpoint, version })
}
