//! The ingest crate's error: what stops a run, with enough context to act on.

use crate::config::ConfigError;
use crate::enrich::RegistryError;
use crate::pipeline::FlusherError;

/// Errors that end an ingest run (bad input never does: it is dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("model registry: {0}")]
    Registry(#[from] RegistryError),
    /// The registry file the configuration names cannot be loaded: the message names the key.
    #[error("model registry (`registry.path`): {0}")]
    RegistryFile(#[source] RegistryError),
    #[error("lake: {context}: {source}")]
    Lake {
        context: String,
        #[source]
        source: driftwatch_lake::error::LakeError,
    },
    #[error(transparent)]
    Flush(#[from] FlusherError),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file the file source will not read from its checkpoint (replaced, rotated,
    /// truncated); other files of the same run can still be read.
    #[error("{0}")]
    FileRefused(String),
    #[error("aggregation: {0}")]
    Aggregate(#[from] crate::aggregate::AggregateError),
    #[error("kafka: {context}: {source}")]
    Kafka {
        context: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("http: {0}")]
    Http(#[from] crate::telemetry::HttpError),
    /// librdkafka would not create a consumer from the client configuration; `problem` names the
    /// property to fix where librdkafka says which.
    #[error("kafka: creating the consumer: {problem}")]
    ConsumerRefused { problem: String },
    /// The Kafka daemon was started without a `[kafka]` section.
    #[error("`driftwatch ingest` needs a [kafka] section with `brokers` (or use --source file:PATH)")]
    KafkaNotConfigured,
    /// librdkafka reported an error it cannot recover from (`kind` is its error code).
    #[error("fatal Kafka error ({kind}): {message}")]
    FatalKafka { kind: &'static str, message: String },
    /// The poll thread, which owns the consumer, ended while the daemon still ran.
    #[error("the Kafka poll thread stopped unexpectedly")]
    PollThreadStopped,
    /// Another writer claimed the stream's partition in the lake; this run stops, the other
    /// goes on from the last checkpoint.
    #[error(
        "another `driftwatch ingest` has claimed {stream} in this lake (the same file ingested twice at once?); \
         it continues from the last checkpoint and this run stops without writing more"
    )]
    ClaimLost { stream: String },
    /// The lake did not take the shutdown flush within its budget: the group is left without a
    /// commit, and the rows are read again from the lake checkpoint by the next owner.
    #[error("the lake did not take the shutdown flush within {budget:?}; leaving the group without committing")]
    ShutdownFlushGivenUp { budget: std::time::Duration },
    /// A thread of the daemon could not be started (the process is out of threads or memory).
    #[error("starting the {thread} thread: {source}")]
    Spawn {
        thread: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Blocking work handed to tokio's blocking pool panicked or was cancelled.
    #[error("{doing}: {source}")]
    Task {
        doing: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl Error {
    /// Whether the error concerns one input file only (it cannot be read, or not from its
    /// checkpoint), so that a run over a folder can go on with the other files.
    pub fn is_about_one_file(&self) -> bool {
        matches!(self, Error::FileRefused(_) | Error::Io { .. })
    }
}

/// Result with the ingest [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
