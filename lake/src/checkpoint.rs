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
//!
//! A writer that stalls in the middle of its data puts and is then killed never gets to
//! that cleanup, and the puts it had in flight can still land after the new owner's
//! recovery removed its files (a request the object store completes, a write resumed
//! before the kill). So an undone flush's manifest is kept, renamed
//! `<partition>.fenced.<owner>.json`, for [`FENCED_MANIFEST_RETENTION`]: every recovery
//! removes its files again, and so does the holder's [`sweep_fenced`] (after its commits, and
//! on a timer when it has none) during the first minutes of its claim, which also catches a
//! manifest that a stalled writer put after the claim's recovery had listed the directory.
//!
//! A file source's checkpoint also carries [`FileHead`], a hash of the file's first bytes,
//! put with the offset in the same conditional write: a later run recomputes it over the file
//! now at the path and refuses one that is not the file checkpointed (replaced by a rotating
//! writer), rather than resume another file mid-way. Kafka checkpoints, and those of lakes
//! written before it was recorded, have none.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{LakeError, Result};
use crate::layout::{checkpoint_dir, checkpoint_path, fenced_path, is_fenced_of, is_pending_of, pending_path};
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
    /// Claim id of the writer whose commit wrote this checkpoint. Recovery needs it to tell
    /// that writer's last, committed manifest from a fenced writer's: the record's holder is
    /// no guide once a recovery has claimed the partition and failed before finishing.
    /// Absent in lakes written before it was recorded, where the holder stands in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_by: Option<String>,
    /// File sources only: the head of the file this checkpoint's offset is a position in, so
    /// that a resumed run can tell the same file grown longer from another one put at its path.
    /// Absent for Kafka and in checkpoints written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_head: Option<FileHead>,
}

/// A fingerprint of a file's first bytes, as the file source saw them when it checkpointed.
/// Stored as `"file_head": {"bytes": 65536, "blake3": "<64 hex digits>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHead {
    /// How many bytes from the start of the file the hash covers: the first 64 KiB, or all
    /// the bytes before the checkpoint when there are fewer. Bytes past the checkpoint are left
    /// out, since a writer may still be finishing the record there.
    pub bytes: u64,
    /// BLAKE3 of those bytes, lowercase hex.
    pub blake3: String,
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

/// How long the manifest of an undone flush is kept, so that its writer's puts still in
/// flight when it stalled or died are removed should they land late. Object store clients
/// give up on a request within minutes; a stalled writer that resumes later finds its
/// checkpoint refused and removes its files itself.
pub const FENCED_MANIFEST_RETENTION: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Whether a manifest's flush may still be in progress or was undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ManifestState {
    /// `<partition>.pending.<owner>.json`: written before the flush's first data file.
    Pending,
    /// `<partition>.fenced.<owner>.json`: the flush can never commit; its files were removed.
    Fenced,
}

/// A manifest as listed in the partition's checkpoint directory.
#[derive(Debug, Clone)]
pub(crate) struct StoredManifest {
    pub(crate) path: String,
    pub(crate) state: ManifestState,
    pub(crate) written: DateTime<Utc>,
    pub(crate) flush: PendingFlush,
}

/// Every pending and fenced manifest of (stream, partition), by any writer.
pub(crate) async fn list_manifests(store: &LakeStore, stream: &str, partition: i32) -> Result<Vec<StoredManifest>> {
    let mut found = Vec::new();
    for object in store.list(&checkpoint_dir(stream)).await? {
        let name = object.path.rsplit('/').next().unwrap_or_default();
        let state = if is_pending_of(name, partition) {
            ManifestState::Pending
        } else if is_fenced_of(name, partition) {
            ManifestState::Fenced
        } else {
            continue;
        };
        // Gone between the listing and the read: its writer or another recovery finished it.
        if let Some(flush) = read_json::<PendingFlush>(store, &object.path).await? {
            found.push(StoredManifest { path: object.path, state, written: object.last_modified, flush });
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

/// Delete the given files, trying every one even when one fails, so a partial failure
/// removes all it can.
async fn delete_files(store: &LakeStore, files: &[String]) -> Result<()> {
    let mut first_error = None;
    for file in files {
        if let Err(error) = store.delete(file).await {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Delete the files of a flush that did not commit, and the temporaries of their directories.
pub(crate) async fn undo_files(store: &LakeStore, stream: &str, partition: i32, files: &[String]) -> Result<()> {
    delete_files(store, files).await?;
    let mut dirs: Vec<&str> = files.iter().map(|f| dir_of(f)).collect();
    dirs.sort_unstable();
    dirs.dedup();
    for dir in dirs {
        store.remove_stale_tmps(dir, stream, partition).await?;
    }
    Ok(())
}

/// Undo a flush that can no longer commit: delete its files, then keep its manifest as a
/// fenced one (merged with any earlier fenced flush of the same writer) in place of the
/// pending one, so that later recoveries and sweeps remove late puts of the same files.
async fn fence_flush(
    store: &LakeStore,
    stream: &str,
    partition: i32,
    path: &str,
    pending: &PendingFlush,
) -> Result<()> {
    undo_files(store, stream, partition, &pending.files).await?;
    let fenced = fenced_path(stream, partition, &pending.owner);
    let mut kept = read_json::<PendingFlush>(store, &fenced)
        .await?
        .unwrap_or_else(|| PendingFlush { files: Vec::new(), ..pending.clone() });
    kept.first_offset = kept.first_offset.min(pending.first_offset);
    kept.next_offset = kept.next_offset.max(pending.next_offset);
    kept.files.extend(pending.files.iter().cloned());
    kept.files.sort_unstable();
    kept.files.dedup();
    store.put_atomic(&fenced, to_json(&fenced, &kept)?).await?;
    store.delete(path).await
}

/// Decide one pending manifest against the record `previous` as it stood when `claimant`
/// claimed it: its flush committed only if it is by the writer whose commit wrote the
/// checkpoint and the checkpoint covers it. Any other writer's manifest belongs to a flush
/// that can no longer commit (the claim changed the record its conditional put expects), so
/// its files are removed and its manifest is kept as a fenced one. The claimant's own
/// manifest (a failed attempt whose cleanup failed) is only undone: it awaited all its
/// puts, and it writes the same range under the same names when it retries.
pub(crate) async fn resolve_pending(
    store: &LakeStore,
    previous: &PartitionRecord,
    claimant: &str,
    path: &str,
    pending: &PendingFlush,
) -> Result<()> {
    let (stream, partition) = (previous.stream.as_str(), previous.partition);
    let committed_next = previous.checkpoint.as_ref().map(|c| c.next_offset);
    let committer = previous.checkpoint.as_ref().and_then(|c| c.committed_by.as_deref()).unwrap_or(&previous.owner);
    let by_committer = committer == pending.owner;
    if by_committer && committed_next.is_some_and(|next| pending.next_offset <= next) {
        info!(
            stream,
            partition,
            next_offset = pending.next_offset,
            "Pending flush had committed; removing its manifest."
        );
    } else if !by_committer || committed_next.is_none_or(|next| pending.first_offset >= next) {
        warn!(
            stream,
            partition,
            owner = pending.owner,
            first_offset = pending.first_offset,
            next_offset = pending.next_offset,
            files = pending.files.len(),
            "Removing the files of a flush that never committed."
        );
        if pending.owner != claimant {
            return fence_flush(store, stream, partition, path, pending).await;
        }
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

/// Tests stall the next recovery of a stream between its claim and its listing, as a paused
/// process would (keyed by stream, because tests run concurrently).
#[cfg(test)]
pub(crate) static STALL_RECOVERY_AFTER_CLAIM: std::sync::Mutex<Vec<(String, crate::writer::Stall)>> =
    std::sync::Mutex::new(Vec::new());

#[cfg(test)]
async fn stall_recovery_after_claim(stream: &str) {
    let stall = {
        let mut stalls = STALL_RECOVERY_AFTER_CLAIM.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        stalls.iter().position(|(at, _)| at == stream).map(|index| stalls.swap_remove(index).1)
    };
    if let Some(stall) = stall {
        stall.0.notify_one();
        stall.1.notified().await;
    }
}

/// Take (stream, partition) over for a new writer and bring it back to its last committed
/// state; returns the new claim and the checkpoint (`None`: nothing committed yet; the
/// source picks its start position).
///
/// First the record is rewritten, conditionally, with a new owner: from then on no flush of
/// any earlier writer can commit, because each commits with a conditional put against the
/// record it read. Then the manifests are listed and the claim is checked to still stand:
/// a later claimer must claim before it writes a manifest, so every manifest listed is then
/// an earlier writer's. Each pending one is decided against the record as it stood before
/// the claim: the previous holder's, when the checkpoint covers it, committed (only the
/// manifest is removed); any other never will (its files, present or not, are deleted and
/// its manifest is kept as fenced). Fenced manifests have their files deleted again, and are
/// dropped once older than [`FENCED_MANIFEST_RETENTION`]. Stale temporaries of this partition
/// are removed too. Running it again is harmless: every step is idempotent.
pub async fn recover(store: &LakeStore, stream: &str, partition: i32) -> Result<Claim> {
    let mut attempt = 0;
    let (before, claimed, version, manifests) = loop {
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
        let version = match write_record(store, &claimed, expected.as_ref()).await {
            Ok(version) => version,
            Err(LakeError::Conflict { .. }) if attempt < CLAIM_ATTEMPTS => {
                info!(stream, partition, attempt, "Partition record changed while claiming it; claiming again.");
                continue;
            }
            Err(error) => return Err(error),
        };
        #[cfg(test)]
        stall_recovery_after_claim(stream).await;
        let manifests = list_manifests(store, stream, partition).await?;
        if holds_claim(store, stream, partition, &claimed.owner).await? {
            break (before, claimed, version, manifests);
        }
        if attempt >= CLAIM_ATTEMPTS {
            return Err(LakeError::Conflict { path: checkpoint_path(stream, partition) });
        }
        info!(stream, partition, attempt, "Partition claimed by another writer during recovery; claiming again.");
    };
    let now = Utc::now();
    for manifest in manifests {
        match manifest.state {
            ManifestState::Pending => {
                resolve_pending(store, &before, &claimed.owner, &manifest.path, &manifest.flush).await?;
            }
            ManifestState::Fenced => {
                undo_files(store, stream, partition, &manifest.flush.files).await?;
                if now - manifest.written > FENCED_MANIFEST_RETENTION {
                    store.delete(&manifest.path).await?;
                }
            }
        }
    }
    store.remove_stale_tmps(&checkpoint_dir(stream), stream, partition).await?;
    if !before.owner.is_empty() {
        info!(stream, partition, previous_owner = before.owner, owner = claimed.owner, "Partition claimed.");
    }
    Ok(Claim { owner: claimed.owner, checkpoint: claimed.checkpoint, version })
}

/// Whether the record still names `owner` as the partition's holder.
async fn holds_claim(store: &LakeStore, stream: &str, partition: i32, owner: &str) -> Result<bool> {
    Ok(read_record(store, stream, partition).await?.is_some_and(|(record, _)| record.owner == owner))
}

/// Delete again the files of flushes that can no longer commit, for the writer holding
/// claim `owner`: those of fenced manifests (late puts of a writer that stalled or died
/// mid-flush) and those of other writers' pending manifests (a commit that read the record
/// before this writer's claim and put its manifest after the claim's recovery listed the
/// directory), whose manifests then become fenced. Returns how many manifests it handled.
///
/// The claim is checked after the listing, as in [`recover`]: when it no longer stands the
/// sweep does nothing, because a listed pending manifest could then be the new holder's.
pub async fn sweep_fenced(store: &LakeStore, stream: &str, partition: i32, owner: &str) -> Result<usize> {
    let manifests: Vec<StoredManifest> = list_manifests(store, stream, partition)
        .await?
        .into_iter()
        .filter(|manifest| manifest.flush.owner != owner)
        .collect();
    if manifests.is_empty() || !holds_claim(store, stream, partition, owner).await? {
        return Ok(0);
    }
    for manifest in &manifests {
        match manifest.state {
            ManifestState::Pending => {
                warn!(
                    stream,
                    partition,
                    owner = manifest.flush.owner,
                    first_offset = manifest.flush.first_offset,
                    next_offset = manifest.flush.next_offset,
                    files = manifest.flush.files.len(),
                    "Removing the files of a flush a fenced writer started after this writer's claim."
                );
                fence_flush(store, stream, partition, &manifest.path, &manifest.flush).await?;
            }
            // Only the named files: the temporaries of their directories were swept when the
            // flush was fenced and are swept again by every recovery; listing those
            // directories at every sweep would buy nothing.
            ManifestState::Fenced => delete_files(store, &manifest.flush.files).await?,
        }
    }
    Ok(manifests.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    /// A record as lakes written before the file head was recorded hold it.
    const RECORD_WITHOUT_FILE_HEAD: &str = r#"{
  "stream": "file.events_jsonl.0123456789ab",
  "partition": 0,
  "owner": "00112233445566aa",
  "claimed_at": "2026-03-01T10:00:00Z",
  "checkpoint": {
    "stream": "file.events_jsonl.0123456789ab",
    "partition": 0,
    "next_offset": 615,
    "updated_at": "2026-03-01T10:00:01Z",
    "files": 3,
    "rows": 7,
    "epoch": 0,
    "committed_by": "00112233445566aa"
  }
}"#;

    #[test]
    fn a_record_without_a_file_head_loads_and_one_with_it_round_trips() -> TestResult {
        let old: PartitionRecord = serde_json::from_str(RECORD_WITHOUT_FILE_HEAD)?;
        let checkpoint = old.checkpoint.clone().ok_or("the record holds a checkpoint")?;
        assert_eq!((checkpoint.next_offset, checkpoint.file_head), (615, None));

        let head = FileHead { bytes: 615, blake3: "0f".repeat(32) };
        let new =
            PartitionRecord { checkpoint: Some(Checkpoint { file_head: Some(head.clone()), ..checkpoint }), ..old };
        let json = serde_json::to_value(&new)?;
        assert_eq!(json["checkpoint"]["file_head"], serde_json::json!({ "bytes": 615, "blake3": head.blake3 }));
        assert_eq!(serde_json::from_value::<PartitionRecord>(json)?, new);
        Ok(())
    }
}
