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
    #[error("{0}")]
    Other(String),
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
