//! Durable local-file primitives behind [`super::LakeStore`] for a lake on a
//! local path. They are blocking and run inside `spawn_blocking`.
//!
//! object_store's `LocalFileSystem` does not fsync, so a power loss after a
//! "successful" put could leave an empty or missing file behind a committed
//! checkpoint. Here every write is: hidden temporary file, `sync_all`, `rename`,
//! fsync of the directory; every directory created and every delete is fsynced
//! in its parent, so the rename or unlink itself survives a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

use super::LakeObject;
use crate::error::{LakeError, Result};
use crate::layout::{is_own_tmp, tmp_name};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A suffix no other temporary file in flight shares: process id, a per-process
/// counter and the clock (the clock separates a restarted process reusing a pid).
fn unique_suffix() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let count = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{count}-{nanos}", std::process::id())
}

/// Make a directory's entries (new files, renames, unlinks) durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir).and_then(|d| d.sync_all()).map_err(|source| LakeError::io("fsync directory", dir, source))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// `create_dir_all`, fsyncing the parent of every directory it creates.
fn create_dirs_synced(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut cursor = Some(dir);
    while let Some(current) = cursor {
        if current.is_dir() {
            break;
        }
        missing.push(current);
        cursor = current.parent();
    }
    for created in missing.into_iter().rev() {
        match fs::create_dir(created) {
            Ok(()) => {}
            // Another writer created it concurrently; it is responsible for its fsync,
            // and ours below covers the entry too.
            Err(source) if source.kind() == ErrorKind::AlreadyExists => {}
            Err(source) => return Err(LakeError::io("create directory", created, source)),
        }
        if let Some(parent) = created.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

fn parent_of(path: &Path) -> Result<&Path> {
    path.parent()
        .ok_or_else(|| LakeError::Path { path: path.display().to_string(), reason: "has no parent directory".into() })
}

fn name_of(path: &Path) -> Result<std::borrow::Cow<'_, str>> {
    path.file_name()
        .map(|n| n.to_string_lossy())
        .ok_or_else(|| LakeError::Path { path: path.display().to_string(), reason: "has no file name".into() })
}

/// Atomically replace `path` with `data`: readers see the old file or the new
/// one, never a prefix, and after return the new one survives a crash.
pub(super) fn put_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let (dir, name) = (parent_of(path)?, name_of(path)?);
    create_dirs_synced(dir)?;
    let tmp = dir.join(tmp_name(&name, &unique_suffix()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(data)?;
            file.sync_all()
        })
        .map_err(|source| LakeError::io("write temporary file", &tmp, source))
        .and_then(|()| fs::rename(&tmp, path).map_err(|source| LakeError::io("rename into place", path, source)));
    if let Err(error) = written {
        // Best effort: recovery removes it anyway, and the hidden name keeps readers away.
        let _ = fs::remove_file(&tmp);
        return Err(error);
    }
    sync_dir(dir)
}

/// How long a conditional put waits for another writer's lock before failing (retryably). The
/// lock is held for one compare and one small write; a holder that keeps it longer is stalled
/// (a stopped process), and waiting for it inside a rebalance would stall this one too.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn lock_within(lock: &File, lock_path: &Path, wait: std::time::Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(()),
            Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(fs::TryLockError::WouldBlock) => {
                let held = std::io::Error::new(ErrorKind::WouldBlock, format!("held by another writer for {wait:?}"));
                return Err(LakeError::io("lock", lock_path, held));
            }
            Err(fs::TryLockError::Error(source)) => return Err(LakeError::io("lock", lock_path, source)),
        }
    }
}

/// Replace `path` with `data` (as [`put_atomic`]) only if its content is still `expected`
/// (`None`: only if it does not exist). Returns whether it did.
///
/// The compare and the rename happen under an exclusive lock on a hidden lock file beside
/// `path` (`flock`), so every writer on this host, in this process or another, serialises on
/// it; a lock held past [`LOCK_WAIT`] fails the put with a retryable error. The lock file is
/// never removed: removing it would let two writers lock different files.
pub(super) fn put_if(path: &Path, data: &[u8], expected: Option<&[u8]>) -> Result<bool> {
    let (dir, name) = (parent_of(path)?, name_of(path)?);
    create_dirs_synced(dir)?;
    let lock_path = dir.join(format!(".{name}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| LakeError::io("open lock file", &lock_path, source))?;
    lock_within(&lock, &lock_path, LOCK_WAIT)?;
    // Every writer of `path` holds the lock while its temporary exists, so one found now was
    // left by a crash. (Recovery's sweep of a partition's temporaries leaves these alone: it
    // does not take the lock, and could remove a live writer's.)
    remove_tmps_of(dir, &name)?;
    let current = get(path)?;
    if current.as_deref() != expected {
        return Ok(false);
    }
    put_atomic(path, data)?;
    Ok(true)
}

/// Remove the temporaries of atomic writes of the file `name` in `dir`.
fn remove_tmps_of(dir: &Path, name: &str) -> Result<()> {
    let prefix = tmp_name(name, "");
    let entries = fs::read_dir(dir).map_err(|source| LakeError::io("list directory", dir, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| LakeError::io("list directory", dir, source))?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            match fs::remove_file(entry.path()) {
                Ok(()) => {}
                Err(source) if source.kind() == ErrorKind::NotFound => {}
                Err(source) => return Err(LakeError::io("delete temporary file", entry.path(), source)),
            }
        }
    }
    Ok(())
}

/// The file's contents, or `None` when it does not exist.
pub(super) fn get(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(data) => Ok(Some(data)),
        Err(source) if source.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LakeError::io("read", path, source)),
    }
}

/// Remove a file durably; a missing file (or directory) is success.
pub(super) fn delete(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent_of(path)?),
        // Nothing can be stored under a parent that is not a directory either.
        Err(source) if matches!(source.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(()),
        Err(source) => Err(LakeError::io("delete", path, source)),
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<LakeObject>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) if source.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(LakeError::io("list directory", dir, source)),
    };
    for entry in entries {
        let entry = entry.map_err(|source| LakeError::io("list directory", dir, source))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let meta = entry.metadata().map_err(|source| LakeError::io("stat", &path, source))?;
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            let modified = meta.modified().map_err(|source| LakeError::io("stat", &path, source))?;
            out.push(LakeObject {
                path: relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"),
                size: meta.len(),
                last_modified: DateTime::<Utc>::from(modified),
            });
        }
    }
    Ok(())
}

/// Every visible file under `dir`, recursively, with lake-relative paths.
pub(super) fn list(root: &Path, dir: &Path) -> Result<Vec<LakeObject>> {
    let mut out = Vec::new();
    walk(root, dir, &mut out)?;
    Ok(out)
}

/// Remove temporary files a crashed write of (stream, partition) left in `dir`.
/// Returns how many were removed.
pub(super) fn remove_own_tmps(dir: &Path, stream: &str, partition: i32) -> Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) if matches!(source.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => return Ok(0),
        Err(source) => return Err(LakeError::io("list directory", dir, source)),
    };
    let mut stale: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LakeError::io("list directory", dir, source))?;
        if is_own_tmp(&entry.file_name().to_string_lossy(), stream, partition) {
            stale.push(entry.path());
        }
    }
    for path in &stale {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(source) if source.kind() == ErrorKind::NotFound => {}
            Err(source) => return Err(LakeError::io("delete temporary file", path, source)),
        }
    }
    if !stale.is_empty() {
        sync_dir(dir)?;
    }
    Ok(stale.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_held_elsewhere_fails_retryably_after_the_wait() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let lock_path = dir.path().join(".0.json.lock");
        let open = || OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path);
        let (holder, waiter) = (open()?, open()?);
        holder.lock()?;
        let error =
            lock_within(&waiter, &lock_path, std::time::Duration::from_millis(50)).err().ok_or("locked twice")?;
        assert!(error.is_retryable(), "{error}");
        holder.unlock()?;
        lock_within(&waiter, &lock_path, std::time::Duration::from_millis(50))?;
        Ok(())
    }
}
