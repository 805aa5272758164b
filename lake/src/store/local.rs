//! Durable local-file primitives behind [`super::LakeStore`] for a lake on a
//! local path. They are blocking and run inside `spawn_blocking`.
//!
//! object_store's `LocalFileSystem` does not fsync, so a power loss after a
//! "successful" put could leave an empty or missing file behind a committed
//! checkpoint. Here every write is: hidden temporary file, `sync_all`, `rename`,
//! fsync of the directory; every delete is fsynced in its parent, so the rename or
//! unlink itself survives a crash.
//!
//! The directory a file lands in must survive too, and so must every directory above
//! it, whoever created them: another writer on this host sharing the lake may have
//! created `app=X/` and not yet fsynced its entry in `date=D/` when we commit a
//! checkpoint over a file in it. So before the first put into a directory, its entry
//! and every ancestor's are fsynced in their parents, up to a directory already known
//! durable or the file system root, and the directories are remembered
//! ([`DurableDirs`]); later puts there cost one `stat`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
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
    fsync_dir(dir).map_err(|source| LakeError::io("fsync directory", dir, source))
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// How many directories [`DURABLE_DIRS`] remembers before it starts over. A lake's
/// writers touch a few directories per app and day; starting over costs one parent fsync
/// per directory level at the next put into each directory.
const DURABLE_DIRS_CAPACITY: usize = 4096;

/// The directories this process has made durable, shared by every local lake it opens.
static DURABLE_DIRS: DurableDirs = DurableDirs::new(DURABLE_DIRS_CAPACITY);

/// Tells a directory from one made later at the same path (the lake removed and created
/// again, as `demo` and tests do): the new one's entry has not been fsynced. The birth
/// time guards against the file system handing the new directory the old inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirIdentity {
    #[cfg(unix)]
    device: u64,
    #[cfg(unix)]
    inode: u64,
    born: Option<SystemTime>,
}

impl DirIdentity {
    fn of(dir: &Path) -> std::io::Result<Self> {
        let meta = fs::metadata(dir)?;
        if !meta.is_dir() {
            return Err(std::io::Error::new(ErrorKind::NotADirectory, "not a directory"));
        }
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Ok(DirIdentity {
            #[cfg(unix)]
            device: meta.dev(),
            #[cfg(unix)]
            inode: meta.ino(),
            born: meta.created().ok(),
        })
    }
}

/// Directories whose entry, and every ancestor's entry, is durable: fsynced in its parent
/// by this process after it created or found them. Bounded by starting over when full.
#[derive(Debug)]
struct DurableDirs {
    known: Mutex<BTreeMap<PathBuf, DirIdentity>>,
    capacity: usize,
}

impl DurableDirs {
    const fn new(capacity: usize) -> Self {
        DurableDirs { known: Mutex::new(BTreeMap::new()), capacity }
    }

    fn known(&self) -> MutexGuard<'_, BTreeMap<PathBuf, DirIdentity>> {
        // The map is only ever inserted into or cleared whole, so a panicking holder leaves it valid.
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn contains(&self, dir: &Path) -> bool {
        // A directory that is gone or was replaced is not the one made durable.
        DirIdentity::of(dir).is_ok_and(|identity| self.known().get(dir) == Some(&identity))
    }

    fn remember(&self, verified: Vec<(PathBuf, DirIdentity)>) {
        let mut known = self.known();
        if known.len() + verified.len() > self.capacity {
            known.clear();
        }
        known.extend(verified);
    }
}

/// Make `dir` exist and be durable with every directory above it: create what is missing,
/// and fsync each directory's entry in its parent up to the first one `durable` knows (or
/// the root). Returns how many parent fsyncs that took (none once `dir` is known).
fn make_dir_durable(dir: &Path, durable: &DurableDirs) -> Result<usize> {
    let mut unknown = Vec::new();
    let mut cursor = Some(dir);
    while let Some(current) = cursor {
        if durable.contains(current) {
            break;
        }
        unknown.push(current);
        cursor = current.parent();
    }
    let mut verified = Vec::with_capacity(unknown.len());
    let mut fsyncs = 0;
    for current in unknown.into_iter().rev() {
        // One that exists was made by another writer, an earlier run or the operator, which
        // may not have fsynced its entry yet: ours below covers it.
        let created = !current.is_dir()
            && match fs::create_dir(current) {
                Ok(()) => true,
                Err(source) if source.kind() == ErrorKind::AlreadyExists => false,
                Err(source) => return Err(LakeError::io("create directory", current, source)),
            };
        // Taken before the fsync, so a directory replaced in between is not remembered as durable.
        let identity = DirIdentity::of(current).map_err(|source| LakeError::io("stat directory", current, source))?;
        if let Some(parent) = current.parent() {
            match fsync_dir(parent) {
                Ok(()) => fsyncs += 1,
                // A parent we may traverse but not read (a home directory of mode 0711 above the
                // lake), on a read-only mount, or on a file system that cannot fsync directories:
                // failing every put over it would not help, and an entry we did not make is left
                // as durable as its maker made it.
                Err(source)
                    if !created
                        && matches!(
                            source.kind(),
                            ErrorKind::PermissionDenied
                                | ErrorKind::ReadOnlyFilesystem
                                | ErrorKind::InvalidInput
                                | ErrorKind::Unsupported
                        ) => {}
                Err(source) => return Err(LakeError::io("fsync directory", parent, source)),
            }
        }
        verified.push((current.to_path_buf(), identity));
    }
    durable.remember(verified);
    Ok(fsyncs)
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
    make_dir_durable(dir, &DURABLE_DIRS)?;
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
    make_dir_durable(dir, &DURABLE_DIRS)?;
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

    // These show which directories get their entries fsynced and when the work is skipped;
    // that the fsyncs make anything survive a power loss is beyond what a test can show.

    #[test]
    fn a_put_into_an_existing_tree_fsyncs_every_ancestor_once() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let lake = tempfile::tempdir()?;
        // Created by another writer, which may not have fsynced any of it.
        let app = lake.path().join("events/date=2024-01-01/app=x");
        fs::create_dir_all(&app)?;
        let durable = DurableDirs::new(DURABLE_DIRS_CAPACITY);

        let levels_with_a_parent = app.ancestors().count() - 1;
        assert_eq!(make_dir_durable(&app, &durable)?, levels_with_a_parent);
        for dir in app.ancestors() {
            assert!(durable.contains(dir), "{} is remembered", dir.display());
        }
        assert_eq!(make_dir_durable(&app, &durable)?, 0, "a second put verifies nothing again");

        let sibling = lake.path().join("events/date=2024-01-01/app=y");
        assert_eq!(make_dir_durable(&sibling, &durable)?, 1, "only the new directory's entry");
        assert!(sibling.is_dir());
        Ok(())
    }

    #[test]
    fn a_directory_removed_or_replaced_is_made_durable_again() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let lake = tempfile::tempdir()?;
        let app = lake.path().join("events/date=2024-01-01/app=x");
        let durable = DurableDirs::new(DURABLE_DIRS_CAPACITY);
        make_dir_durable(&app, &durable)?;

        fs::remove_dir(&app)?;
        assert_eq!(make_dir_durable(&app, &durable)?, 1, "created again");
        assert!(app.is_dir());

        // Replaced by someone else; the old directory is kept so its inode is not reused.
        fs::rename(&app, lake.path().join("kept"))?;
        fs::create_dir(&app)?;
        assert_eq!(make_dir_durable(&app, &durable)?, 1, "the new directory's entry is fsynced");
        Ok(())
    }

    #[test]
    fn remembered_directories_stay_within_the_capacity() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let lake = tempfile::tempdir()?;
        let capacity = lake.path().ancestors().count() + 3;
        let durable = DurableDirs::new(capacity);
        for app in 0..10 {
            make_dir_durable(&lake.path().join(format!("app={app}")), &durable)?;
            assert!(durable.known().len() <= capacity);
        }
        assert!(durable.contains(&lake.path().join("app=9")), "the latest is remembered");
        assert!(!durable.contains(&lake.path().join("app=0")), "the map started over");
        Ok(())
    }
}
