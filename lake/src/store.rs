//! Where lake files physically go: [`LakeStore`] takes lake-relative paths from
//! [`crate::layout`] and file bytes from [`crate::parquet`], and stores them on a
//! local path, in S3 (or an S3-compatible store), or in memory for tests.
//!
//! Every put is atomic: a reader sees the previous object or the complete new
//! one. On a local path that is done here with an fsynced hidden temporary and a
//! rename (see the `local` submodule); object stores give it by their `put`
//! semantics. The checkpoint protocol in [`crate::writer`] builds on this, and on
//! [`LakeStore::put_if`], a compare-and-swap put: S3's conditional writes (`If-Match`,
//! `If-None-Match`) on object stores, a lock file around compare-then-rename on a local path.
//!
//! Opening checks the location and every S3 setting before anything is written (the `s3`
//! submodule), so that a mistake is named at start rather than met at the first request.

mod local;
mod s3;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use crate::error::{LakeError, Result};

/// One stored file, as [`LakeStore::list`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeObject {
    /// Lake-relative path (`events/date=…/app=…/file.parquet`).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, as the store reports it.
    pub last_modified: DateTime<Utc>,
}

/// The version of a stored object as one reader saw it, for [`LakeStore::put_if`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreVersion(VersionToken);

#[derive(Debug, Clone, PartialEq, Eq)]
enum VersionToken {
    /// A local file is compared by content: the small records put conditionally are
    /// unique (they carry a claim id and a time), and content needs no extra metadata.
    Content(Bytes),
    /// What the object store reported (an S3 ETag, a version id where versioning is on).
    Object { e_tag: Option<String>, version: Option<String> },
}

#[derive(Debug, Clone)]
enum Backend {
    /// A directory on a local file system, written with our own durable primitives.
    Local { root: PathBuf },
    /// An object store; `prefix` is the lake root inside it (may be empty).
    Object { store: Arc<dyn ObjectStore>, prefix: String },
}

/// A lake root on some storage, with atomic puts. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LakeStore {
    backend: Backend,
    /// The store for [`LakeStore::url`]'s scheme and authority, for query engines.
    object_store: Arc<dyn ObjectStore>,
    /// The lake root as a URL.
    url: String,
}

fn location_error(location: &str, reason: impl Into<String>) -> LakeError {
    LakeError::Location { location: shown_location(location).into_owned(), reason: reason.into() }
}

/// `location` as errors show it: the user part of a URL (`s3://KEY:SECRET@bucket`), which may
/// be a credential, replaced by `***`.
pub fn shown_location(location: &str) -> Cow<'_, str> {
    match split_location(location) {
        (Some(scheme), rest) => {
            let authority = rest.split('/').next().unwrap_or_default();
            match authority.rfind('@') {
                Some(at) => Cow::Owned(format!("{scheme}://***{}", &rest[at..])),
                None => Cow::Borrowed(location),
            }
        }
        (None, _) => Cow::Borrowed(location),
    }
}

/// Refuse credentials written into the location: they would be shown wherever the location is
/// (errors, `check-config`), and the object store would not read them anyway.
fn refuse_user_info(location: &str) -> Result<()> {
    if shown_location(location) == location {
        return Ok(());
    }
    Err(location_error(
        location,
        "credentials are not read from the location: write s3://bucket/prefix and give them as \
         `aws_access_key_id` and `aws_secret_access_key` in [lake.options] (or the AWS_* environment)",
    ))
}

/// Run blocking file I/O off the async workers.
async fn blocking<T: Send + 'static>(op: &'static str, work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|source| LakeError::Task { op, source })?
}

/// A location's scheme (`None` for a plain path) and what follows `://`.
fn split_location(location: &str) -> (Option<&str>, &str) {
    match location.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, location),
    }
}

/// The root of a local lake at `path` (the part of `location` after any `file://`). Typos that
/// would otherwise make a folder in the working directory are refused: a URL missing its `//`
/// (`s3:/bucket`, `file:lake`), and a `~` that no shell expanded.
fn local_path(location: &str, path: &str) -> Result<PathBuf> {
    if path.is_empty() {
        return Err(location_error(location, "empty path"));
    }
    if path.starts_with('~') {
        return Err(location_error(
            location,
            "`~` is only expanded by a shell; write an absolute path (e.g. /home/me/lake), or set it from \
             a shell as DRIFTWATCH_LAKE__LOCATION=$HOME/lake",
        ));
    }
    if let Some(scheme) = scheme_prefix(path) {
        return Err(location_error(
            location,
            format!(
                "`{scheme}:` is not followed by `//`: write s3://bucket/prefix or file:///absolute/path \
                 (or ./{path} for a local folder whose name holds `:`)"
            ),
        ));
    }
    Ok(PathBuf::from(path))
}

/// The scheme of a path that starts like a URL (`scheme:`, the scheme a letter followed by
/// letters, digits, `+`, `-` or `.`, as RFC 3986 has it).
fn scheme_prefix(path: &str) -> Option<&str> {
    let (scheme, _) = path.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .then_some(scheme)
}

impl LakeStore {
    /// Open a lake root: a local path (or `file://` URL; created if missing),
    /// `s3://bucket/prefix` (credentials, region and endpoint from the `AWS_*`
    /// environment, overridden by `options`, whose keys are object_store's
    /// `AmazonS3ConfigKey` names such as `aws_region` or `aws_endpoint`), or
    /// `memory://` (a fresh in-memory store, for tests).
    ///
    /// A path that starts like a URL without `//` (`s3:/bucket`) or with `~` is refused rather
    /// than made a folder in the working directory. An S3 setting that is wrong is named in
    /// [`LakeError::StoreConfig`]'s `key`: the option as given, or the `AWS_*` variable.
    pub async fn open(location: &str, options: &HashMap<String, String>) -> Result<LakeStore> {
        let (scheme, rest) = split_location(location);
        refuse_user_info(location)?;
        if matches!(scheme, None | Some("file")) {
            // First, so that `s3:/bucket` with options is named as the typo it is.
            local_path(location, rest)?;
        }
        if !options.is_empty() && !matches!(scheme, Some("s3" | "s3a")) {
            return Err(location_error(location, "object store options apply only to s3:// lakes"));
        }
        match scheme {
            None | Some("file") => Self::open_local(location, rest).await,
            Some("memory") => {
                let prefix = rest.trim_matches('/').to_owned();
                let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
                Ok(LakeStore {
                    url: format!("memory:///{prefix}"),
                    object_store: Arc::clone(&store),
                    backend: Backend::Object { store, prefix },
                })
            }
            Some("s3" | "s3a") => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(location_error(location, "missing bucket name"));
                }
                let prefix = prefix.trim_matches('/').to_owned();
                let store: Arc<dyn ObjectStore> = Arc::new(s3::build(location, bucket, options, s3::process_env())?);
                let url = if prefix.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{prefix}") };
                Ok(LakeStore { url, object_store: Arc::clone(&store), backend: Backend::Object { store, prefix } })
            }
            Some(other) => Err(location_error(location, format!("unsupported scheme {other:?}"))),
        }
    }

    /// Validate `location` and `options` as [`open`](Self::open) does, without creating a local
    /// lake's directory (nor contacting an object store, which `open` does not either).
    pub async fn check(location: &str, options: &HashMap<String, String>) -> Result<()> {
        refuse_user_info(location)?;
        match split_location(location) {
            (None | Some("file"), path) if options.is_empty() => local_path(location, path).map(drop),
            _ => Self::open(location, options).await.map(drop),
        }
    }

    async fn open_local(location: &str, path: &str) -> Result<LakeStore> {
        let requested = local_path(location, path)?;
        let root = blocking("open local lake", move || {
            std::fs::create_dir_all(&requested)
                .map_err(|source| LakeError::io("create lake root", &requested, source))?;
            std::fs::canonicalize(&requested).map_err(|source| LakeError::io("canonicalize", &requested, source))
        })
        .await?;
        let url = format!("file://{}", root.display());
        Ok(LakeStore { url, object_store: Arc::new(LocalFileSystem::new()), backend: Backend::Local { root } })
    }

    /// The store serving [`LakeStore::url`]'s scheme and authority (the whole
    /// bucket, or the local file system), to register with a query engine.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.object_store)
    }

    /// The lake root as a URL (`file:///…`, `s3://bucket/prefix`, `memory:///…`);
    /// table paths are this plus `/events/` etc.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True when the lake is a local directory (and temporaries may exist).
    pub fn is_local(&self) -> bool {
        matches!(self.backend, Backend::Local { .. })
    }

    fn local_path(root: &FsPath, path: &str) -> Result<PathBuf> {
        validate(path)?;
        Ok(root.join(path))
    }

    fn object_path(prefix: &str, path: &str) -> Result<ObjectPath> {
        validate(path)?;
        let full = if prefix.is_empty() { path.to_owned() } else { format!("{prefix}/{path}") };
        ObjectPath::parse(&full).map_err(|source| LakeError::Path { path: full, reason: source.to_string() })
    }

    /// Store `data` at `path`, replacing any previous content atomically and durably.
    pub async fn put_atomic(&self, path: &str, data: Bytes) -> Result<()> {
        match &self.backend {
            Backend::Local { root } => {
                let file = Self::local_path(root, path)?;
                blocking("put", move || local::put_atomic(&file, &data)).await
            }
            Backend::Object { store, prefix } => {
                let location = Self::object_path(prefix, path)?;
                store
                    .put(&location, PutPayload::from(data))
                    .await
                    .map_err(|source| LakeError::store("put", path, source))?;
                Ok(())
            }
        }
    }

    /// The content at `path`, or `None` when nothing is stored there.
    pub async fn get(&self, path: &str) -> Result<Option<Bytes>> {
        match &self.backend {
            Backend::Local { root } => {
                let file = Self::local_path(root, path)?;
                Ok(blocking("get", move || local::get(&file)).await?.map(Bytes::from))
            }
            Backend::Object { .. } => Ok(self.get_versioned(path).await?.map(|(bytes, _)| bytes)),
        }
    }

    /// The content at `path` and its version, or `None` when nothing is stored there.
    pub async fn get_versioned(&self, path: &str) -> Result<Option<(Bytes, StoreVersion)>> {
        match &self.backend {
            Backend::Local { root } => {
                let file = Self::local_path(root, path)?;
                let bytes = blocking("get", move || local::get(&file)).await?.map(Bytes::from);
                Ok(bytes.map(|bytes| (bytes.clone(), StoreVersion(VersionToken::Content(bytes)))))
            }
            Backend::Object { store, prefix } => {
                let location = Self::object_path(prefix, path)?;
                let result = match store.get(&location).await {
                    Ok(result) => result,
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(source) => return Err(LakeError::store("get", path, source)),
                };
                let token =
                    VersionToken::Object { e_tag: result.meta.e_tag.clone(), version: result.meta.version.clone() };
                let bytes = result.bytes().await.map_err(|source| LakeError::store("get", path, source))?;
                Ok(Some((bytes, StoreVersion(token))))
            }
        }
    }

    /// Store `data` at `path` only if the object is still at `expected` (`None`: only if
    /// nothing is stored there), atomically with that check; returns the new version.
    /// Anything else is [`LakeError::Conflict`] and changes nothing.
    ///
    /// On S3 this needs conditional writes (AWS since 2024, MinIO, Ceph, s3s); object_store
    /// sends them unless `aws_conditional_put` is set to `disabled`, in which case this falls
    /// back to a plain put (logged once) and concurrent writers are no longer fenced.
    pub async fn put_if(&self, path: &str, data: Bytes, expected: Option<&StoreVersion>) -> Result<StoreVersion> {
        match &self.backend {
            Backend::Local { root } => {
                let file = Self::local_path(root, path)?;
                let expected = match expected {
                    None => None,
                    Some(StoreVersion(VersionToken::Content(bytes))) => Some(bytes.clone()),
                    Some(StoreVersion(VersionToken::Object { .. })) => {
                        return Err(LakeError::Conflict { path: path.to_owned() });
                    }
                };
                let owned_path = path.to_owned();
                let stored = data.clone();
                let swapped =
                    blocking("conditional put", move || local::put_if(&file, &stored, expected.as_deref())).await?;
                if swapped {
                    Ok(StoreVersion(VersionToken::Content(data)))
                } else {
                    Err(LakeError::Conflict { path: owned_path })
                }
            }
            Backend::Object { store, prefix } => {
                let location = Self::object_path(prefix, path)?;
                let mode = match expected {
                    None => PutMode::Create,
                    Some(StoreVersion(VersionToken::Object { e_tag, version })) => {
                        PutMode::Update(UpdateVersion { e_tag: e_tag.clone(), version: version.clone() })
                    }
                    Some(StoreVersion(VersionToken::Content(_))) => {
                        return Err(LakeError::Conflict { path: path.to_owned() });
                    }
                };
                let options = PutOptions { mode, ..PutOptions::default() };
                let put = match store.put_opts(&location, PutPayload::from(data.clone()), options).await {
                    Ok(put) => put,
                    Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                        return Err(LakeError::Conflict { path: path.to_owned() });
                    }
                    Err(object_store::Error::NotImplemented { .. }) => {
                        static WARNED: std::sync::Once = std::sync::Once::new();
                        WARNED.call_once(|| {
                            tracing::warn!(
                                "The object store does not do conditional writes (aws_conditional_put=disabled?); \
                                 checkpoints are overwritten unconditionally and a stalled writer is not fenced."
                            );
                        });
                        store
                            .put(&location, PutPayload::from(data))
                            .await
                            .map_err(|source| LakeError::store("put", path, source))?
                    }
                    Err(source) => return Err(LakeError::store("conditional put", path, source)),
                };
                Ok(StoreVersion(VersionToken::Object { e_tag: put.e_tag, version: put.version }))
            }
        }
    }

    /// Remove `path` durably. Removing something absent succeeds, so recovery can be repeated.
    pub async fn delete(&self, path: &str) -> Result<()> {
        match &self.backend {
            Backend::Local { root } => {
                let file = Self::local_path(root, path)?;
                blocking("delete", move || local::delete(&file)).await
            }
            Backend::Object { store, prefix } => {
                let location = Self::object_path(prefix, path)?;
                match store.delete(&location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(source) => Err(LakeError::store("delete", path, source)),
                }
            }
        }
    }

    /// Every visible file under the directory `prefix` (recursively), sorted by
    /// path. Hidden files (leading `.`, i.e. in-flight temporaries) are skipped,
    /// as query engines skip them.
    pub async fn list(&self, prefix: &str) -> Result<Vec<LakeObject>> {
        let mut objects = match &self.backend {
            Backend::Local { root } => {
                let dir = if prefix.is_empty() { root.clone() } else { Self::local_path(root, prefix)? };
                let root = root.clone();
                blocking("list", move || local::list(&root, &dir)).await?
            }
            Backend::Object { store, prefix: root } => {
                let location = if prefix.is_empty() {
                    (!root.is_empty()).then(|| ObjectPath::from(root.as_str()))
                } else {
                    Some(Self::object_path(root, prefix)?)
                };
                let metas: Vec<_> = store
                    .list(location.as_ref())
                    .try_collect()
                    .await
                    .map_err(|source| LakeError::store("list", prefix, source))?;
                let strip = if root.is_empty() { String::new() } else { format!("{root}/") };
                metas
                    .into_iter()
                    .filter(|meta| meta.location.filename().is_some_and(|name| !name.starts_with('.')))
                    .map(|meta| LakeObject {
                        path: meta.location.as_ref().strip_prefix(&strip).unwrap_or(meta.location.as_ref()).to_owned(),
                        size: meta.size,
                        last_modified: meta.last_modified,
                    })
                    .collect()
            }
        };
        objects.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(objects)
    }

    /// Remove temporary files that a crashed atomic write of (stream, partition)
    /// left in the directory `dir`. Object stores never have any.
    pub async fn remove_stale_tmps(&self, dir: &str, stream: &str, partition: i32) -> Result<usize> {
        match &self.backend {
            Backend::Local { root } => {
                let dir = Self::local_path(root, dir)?;
                let stream = stream.to_owned();
                blocking("remove temporaries", move || local::remove_own_tmps(&dir, &stream, partition)).await
            }
            Backend::Object { .. } => Ok(0),
        }
    }

    /// Prove the lake accepts writes right now by putting and deleting a probe
    /// file; the daemon's readiness check calls it.
    pub async fn check_writable(&self) -> Result<()> {
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let probe = format!("{}/_probe-{}-{nanos}", crate::layout::CHECKPOINTS_DIR, std::process::id());
        self.put_atomic(&probe, Bytes::from_static(b"ok")).await?;
        self.delete(&probe).await
    }
}

/// Lake-relative paths come from [`crate::layout`]; reject anything that could
/// escape the lake root or is not one object key.
fn validate(path: &str) -> Result<()> {
    let bad = |reason: &str| Err(LakeError::Path { path: path.to_owned(), reason: reason.to_owned() });
    if path.is_empty() || path.starts_with('/') || path.ends_with('/') {
        return bad("must be a non-empty relative path");
    }
    if path.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..") {
        return bad("empty, `.` or `..` segment");
    }
    if path.contains('\\') || path.chars().any(|c| c.is_ascii_control()) {
        return bad("backslash or control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
