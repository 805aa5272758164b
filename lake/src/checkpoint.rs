//! Committed source positions and the manifest of the flush in progress: the
//! lake's delivery guarantee (DESIGN §5, STYLE 10: offsets live with the data).
//!
//! [`crate::writer::LakeWriter::commit`] writes, per (stream, partition),
//! `_checkpoints/<stream>/<partition>.pending.json` ([`PendingFlush`]) before any
//! data file and `_checkpoints/<stream>/<partition>.json` ([`Checkpoint`]) after
//! all of them. [`recover`] compares the two after a crash and deletes the files
//! of a flush that never committed, so the source can resume at
//! [`Checkpoint::next_offset`] and every message's rows end up in the lake once.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{LakeError, Result};
use crate::layout::{checkpoint_dir, checkpoint_path, pending_path};
use crate::store::LakeStore;

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

/// The manifest of a flush between its first data file and its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFlush {
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
        Some(bytes) => {
            serde_json::from_slice(&bytes).map(Some).map_err(|source| LakeError::Json { path: path.to_owned(), source })
        }
    }
}

async fn write_json<T: Serialize>(store: &LakeStore, path: &str, value: &T) -> Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(|source| LakeError::Json { path: path.to_owned(), source })?;
    store.put_atomic(path, Bytes::from(json)).await
}

/// The committed checkpoint of (stream, partition), if any.
pub async fn read_checkpoint(store: &LakeStore, stream: &str, partition: i32) -> Result<Option<Checkpoint>> {
    read_json(store, &checkpoint_path(stream, partition)).await
}

/// Commit a checkpoint (atomic put).
pub(crate) async fn write_checkpoint(store: &LakeStore, checkpoint: &Checkpoint) -> Result<()> {
    write_json(store, &checkpoint_path(&checkpoint.stream, checkpoint.partition), checkpoint).await
}

/// The manifest of an interrupted or in-progress flush of (stream, partition), if any.
pub async fn read_pending(store: &LakeStore, stream: &str, partition: i32) -> Result<Option<PendingFlush>> {
    read_json(store, &pending_path(stream, partition)).await
}

/// Record the files a flush is about to write (atomic put), before writing any.
pub(crate) async fn write_pending(
    store: &LakeStore,
    stream: &str,
    partition: i32,
    pending: &PendingFlush,
) -> Result<()> {
    write_json(store, &pending_path(stream, partition), pending).await
}

/// Drop the manifest once the checkpoint covers its flush.
pub(crate) async fn delete_pending(store: &LakeStore, stream: &str, partition: i32) -> Result<()> {
    store.delete(&pending_path(stream, partition)).await
}

/// The directory part of a lake-relative path.
fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Bring (stream, partition) back to its last committed state after a crash
/// and return that checkpoint (`None`: nothing committed yet; the source picks
/// its start position).
///
/// A pending manifest whose range the checkpoint covers committed: only the
/// manifest is removed. One starting at or after the checkpoint never
/// committed: its files (present or not) are deleted, then the manifest. Stale
/// temporaries of this partition are removed from every directory involved.
/// Running it again is harmless: every step is idempotent.
pub async fn recover(store: &LakeStore, stream: &str, partition: i32) -> Result<Option<Checkpoint>> {
    let (checkpoint, pending) =
        futures::try_join!(read_checkpoint(store, stream, partition), read_pending(store, stream, partition))?;
    let committed_next = checkpoint.as_ref().map(|c| c.next_offset);
    if let Some(pending) = pending {
        if committed_next.is_some_and(|next| pending.next_offset <= next) {
            info!(
                stream,
                partition,
                next_offset = pending.next_offset,
                "Pending flush had committed; removing its manifest."
            );
        } else if committed_next.is_none_or(|next| pending.first_offset >= next) {
            warn!(
                stream,
                partition,
                first_offset = pending.first_offset,
                next_offset = pending.next_offset,
                files = pending.files.len(),
                "Removing the files of a flush that never committed."
            );
            for file in &pending.files {
                store.delete(file).await?;
            }
            let mut dirs: Vec<&str> = pending.files.iter().map(|f| dir_of(f)).collect();
            dirs.sort_unstable();
            dirs.dedup();
            for dir in dirs {
                store.remove_stale_tmps(dir, stream, partition).await?;
            }
        } else {
            return Err(LakeError::InconsistentCheckpoint {
                stream: stream.to_owned(),
                partition,
                checkpoint_next: committed_next.unwrap_or_default(),
                first_offset: pending.first_offset,
                next_offset: pending.next_offset,
            });
        }
        delete_pending(store, stream, partition).await?;
    }
    store.remove_stale_tmps(&checkpoint_dir(stream), stream, partition).await?;
    Ok(checkpoint)
}
