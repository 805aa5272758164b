//! The lake's error type. Every fallible lake operation (opening a store,
//! encoding rows, writing Parquet, putting files, reading checkpoints) returns a
//! [`LakeError`] naming the operation and the path involved, so a log line says
//! exactly which file failed; [`LakeError::is_retryable`] tells the caller
//! whether to back off and retry the flush or to stop.

use std::path::PathBuf;

/// Everything that can go wrong in the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The lake location string cannot be understood.
    #[error("invalid lake location {location:?}: {reason}")]
    Location {
        /// The location as configured.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An object store option is unknown or has a bad value.
    #[error("invalid object store option {key:?} for {location:?}: {source}")]
    StoreConfig {
        /// The option key as configured.
        key: String,
        /// The lake location being opened.
        location: String,
        /// Why object_store rejected it.
        #[source]
        source: Box<object_store::Error>,
    },
    /// Local file system I/O failed.
    #[error("{op} {path:?} failed: {source}")]
    Io {
        /// What we were doing (`write`, `fsync`, `rename`, ...).
        op: &'static str,
        /// The local path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An object store request failed.
    #[error("object store {op} {path:?} failed: {source}")]
    ObjectStore {
        /// What we were doing (`put`, `get`, `delete`, `list`).
        op: &'static str,
        /// The lake-relative path involved.
        path: String,
        /// The underlying error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A lake-relative path is not a valid object path.
    #[error("invalid lake path {path:?}: {reason}")]
    Path {
        /// The offending path.
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Rows could not be assembled into an Arrow batch (a schema/encoder mismatch: a bug).
    #[error("cannot encode {kind} rows as Arrow: {source}")]
    Arrow {
        /// Which table (`events`, `feedback`, ...).
        kind: &'static str,
        /// The underlying error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A batch read from the lake does not have the column a decoder expects.
    #[error("cannot decode {kind} column {column:?}: {reason}")]
    Decode {
        /// Which table.
        kind: &'static str,
        /// The column name.
        column: &'static str,
        /// Missing, wrong type, or a null where the row type needs a value.
        reason: String,
    },
    /// Parquet encoding or decoding failed.
    #[error("parquet {op} failed for {kind}: {source}")]
    Parquet {
        /// What we were doing (`write`, `read`).
        op: &'static str,
        /// Which table.
        kind: &'static str,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// The Parquet options are invalid (for example a zstd level out of range).
    #[error("invalid parquet option {field}: {reason}")]
    ParquetOptions {
        /// The option name in the config section.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint or pending manifest could not be (de)serialized.
    #[error("invalid JSON in {path:?}: {source}")]
    Json {
        /// The lake-relative path of the checkpoint or manifest.
        path: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A flush batch violates the offset contract (a caller bug).
    #[error("invalid flush batch for {stream}/{partition}: {reason}")]
    InvalidBatch {
        /// The source stream.
        stream: String,
        /// The source partition.
        partition: i32,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint and a pending manifest disagree in a way the protocol cannot
    /// produce; recovering automatically could lose or duplicate rows.
    #[error(
        "checkpoint {checkpoint_next} for {stream}/{partition} falls inside pending flush \
         [{first_offset}, {next_offset}); refusing to guess"
    )]
    InconsistentCheckpoint {
        /// The source stream.
        stream: String,
        /// The source partition.
        partition: i32,
        /// `next_offset` of the committed checkpoint.
        checkpoint_next: i64,
        /// First offset of the pending flush.
        first_offset: i64,
        /// Offset after the pending flush.
        next_offset: i64,
    },
    /// A conditional put found the object changed since it was read (or present when it
    /// was to be created): another writer got there first.
    #[error("conditional put of {path:?} lost: the object changed since it was read")]
    Conflict {
        /// The lake-relative path.
        path: String,
    },
    /// Another writer has claimed the partition since this one recovered it (it was
    /// reassigned while this writer was stalled): the flush was not committed and its files
    /// were removed, because its rows are now the new owner's to write.
    #[error(
        "{stream}/{partition} is claimed by writer {holder:?}, not by this writer ({owner:?}); \
         flush [{first_offset}, {next_offset}) not committed"
    )]
    Fenced {
        /// The source stream.
        stream: String,
        /// The source partition.
        partition: i32,
        /// This writer's claim.
        owner: String,
        /// The claim the lake holds now.
        holder: String,
        /// First offset of the refused flush.
        first_offset: i64,
        /// Offset after the refused flush.
        next_offset: i64,
    },
    /// A blocking I/O task panicked or was cancelled.
    #[error("blocking {op} task failed: {source}")]
    Task {
        /// What the task was doing.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// The lake's result type.
pub type Result<T, E = LakeError> = std::result::Result<T, E>;

impl LakeError {
    /// True when retrying the same operation later may succeed (I/O hiccups,
    /// transient object store failures, and a lake that an operator must fix: a
    /// full, read-only or permission-denied disk, a bucket whose policy denies the
    /// writer); false when the input, configuration or lake state must change
    /// first, so the caller should stop.
    ///
    /// A lake that turns read-only or denies access while running is an outage like
    /// a full disk: the data has to wait for it, and stopping the writer would only
    /// trade a wait for a crash loop.
    pub fn is_retryable(&self) -> bool {
        match self {
            LakeError::Io { source, .. } => {
                !matches!(source.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidFilename)
            }
            LakeError::ObjectStore { source, .. } => !matches!(
                **source,
                object_store::Error::InvalidPath { .. }
                    | object_store::Error::NotSupported { .. }
                    | object_store::Error::NotImplemented { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::UnknownConfigurationKey { .. }
            ),
            // Whoever won re-reads and tries again (claims retry; commits are fenced instead).
            LakeError::Conflict { .. } => true,
            LakeError::Location { .. }
            | LakeError::Fenced { .. }
            | LakeError::StoreConfig { .. }
            | LakeError::Path { .. }
            | LakeError::Arrow { .. }
            | LakeError::Decode { .. }
            | LakeError::Parquet { .. }
            | LakeError::ParquetOptions { .. }
            | LakeError::Json { .. }
            | LakeError::InvalidBatch { .. }
            | LakeError::InconsistentCheckpoint { .. }
            | LakeError::Task { .. } => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LakeError::Io { op, path: path.into(), source }
    }

    pub(crate) fn store(op: &'static str, path: impl Into<String>, source: object_store::Error) -> Self {
        LakeError::ObjectStore { op, path: path.into(), source: Box::new(source) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_retryable_and_bugs_are_not() {
        let io = LakeError::io("write", "/x", std::io::Error::other("disk hiccup"));
        assert!(io.is_retryable());
        let invalid = LakeError::io("write", "/x", std::io::Error::from(std::io::ErrorKind::InvalidFilename));
        assert!(!invalid.is_retryable());
        let generic =
            LakeError::store("put", "a", object_store::Error::Generic { store: "S3", source: "503 slow down".into() });
        assert!(generic.is_retryable());
        let unauthenticated = LakeError::store(
            "put",
            "a",
            object_store::Error::Unauthenticated { path: "a".into(), source: "bad key".into() },
        );
        assert!(!unauthenticated.is_retryable());
        let batch = LakeError::InvalidBatch { stream: "s".into(), partition: 0, reason: "x".into() };
        assert!(!batch.is_retryable());
        assert!(io.to_string().contains("/x"), "errors name the path: {io}");
    }

    /// A lake remounted read-only, or whose permissions or bucket policy change under a
    /// running writer, is an outage an operator fixes: commits wait for it (like a full
    /// disk) instead of stopping the writer.
    #[test]
    fn a_lake_that_turns_read_only_or_denies_access_is_an_outage_to_wait_out() {
        use std::io::{Error, ErrorKind};
        for kind in [ErrorKind::ReadOnlyFilesystem, ErrorKind::PermissionDenied, ErrorKind::StorageFull] {
            let error = LakeError::io("rename", "/lake/_checkpoints/s/0.json", Error::from(kind));
            assert!(error.is_retryable(), "{kind:?}: {error}");
        }
        // As the OS reports them (EROFS, EACCES), not only as constructed kinds.
        #[cfg(target_os = "linux")]
        for errno in [30, 13] {
            let error = LakeError::io("write", "/lake/x", Error::from_raw_os_error(errno));
            assert!(error.is_retryable(), "errno {errno}: {error}");
        }
        let denied = LakeError::store(
            "put",
            "a",
            object_store::Error::PermissionDenied { path: "a".into(), source: "403 AccessDenied".into() },
        );
        assert!(denied.is_retryable(), "{denied}");
    }
}
