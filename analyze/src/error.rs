//! The crate's error type. Every failure names what was being done (which
//! table, which query, which column) so the caller can tell a bad lake location
//! (fix the config) from a query that failed on the data (inspect the lake).

use datafusion::error::DataFusionError;

/// Everything that can go wrong while opening or querying the lake.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lake location is neither a path nor a URL DataFusion can list.
    #[error("invalid lake location {location:?}: {source}")]
    Location {
        location: String,
        #[source]
        source: Box<DataFusionError>,
    },
    /// The location holds no lake: none of its folders exists, so it is most likely mistyped.
    #[error(
        "no driftwatch lake at {location}: none of events/, rollups/, _checkpoints/ exists; check --lake or lake.location"
    )]
    NotALake { location: String },
    /// Listing the lake root failed (credentials, network, permissions).
    #[error("cannot list the lake at {location}: {source}")]
    Unreadable {
        location: String,
        #[source]
        source: object_store::Error,
    },
    /// A remote lake (`s3://`, `memory://`, ...) was opened without an object store for it.
    #[error("lake location {location:?} needs an object store (only local paths open without one)")]
    NoStore { location: String },
    /// Registering a lake table failed (listing or schema inference).
    #[error("cannot register lake table {table}: {source}")]
    Register {
        table: &'static str,
        #[source]
        source: Box<DataFusionError>,
    },
    /// Planning or running a query failed.
    #[error("query {query} failed: {source}")]
    Query {
        query: String,
        #[source]
        source: Box<DataFusionError>,
    },
    /// A query result did not have the column shape the reader expects: a bug
    /// in the SQL or a lake written with an incompatible schema.
    #[error("query {query}: column {column:?} {problem}")]
    Shape { query: &'static str, column: &'static str, problem: String },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wrap a DataFusion error raised while running `query` (an SQL text or a query's name).
    pub(crate) fn query(query: impl Into<String>, source: DataFusionError) -> Self {
        Error::Query { query: query.into(), source: Box::new(source) }
    }
}
