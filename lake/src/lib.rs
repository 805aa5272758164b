//! The driftwatch lake: the contract between ingest, which writes it, and analyze,
//! which reads it (DESIGN §5).
//!
//! # Layout
//!
//! - [`model`]: the row types (inference events, feedback, dead letters, rollups).
//! - [`histogram`]: the serialized HdrHistogram format carried by rollups.
//! - [`layout`]: where rows land: `events/date=…/app=…/`, `feedback/date=…/`,
//!   `rollups/`, `dead_letter/`, `_checkpoints/`, with Hive-escaped partition
//!   values and file names per flushed source range and writer claim.
//! - [`schema`], [`encode`], [`decode`]: the Arrow schemas and the row ↔ Arrow conversions
//!   (`decode` reads files back into rows for tests and tools; analyze reads with DataFusion).
//! - [`event_rows`]: a flush's inference events as column builders, one set per events file.
//! - [`parquet`]: explicit writer properties and batch → Parquet bytes.
//! - [`store`]: [`store::LakeStore`], atomic puts on a local path (fsynced
//!   temporary + rename), S3 or memory, and conditional (compare-and-swap) puts.
//! - [`checkpoint`]: the partition record (which writer holds the partition, and its
//!   committed source position) and the pending-flush manifests.
//! - [`writer`]: [`writer::LakeWriter::commit`] runs a flush: it groups a
//!   [`writer::FlushBatch`] by table, date and app, writes the files, then the
//!   checkpoint; [`writer::LakeWriter::recover`] claims a partition and undoes a flush
//!   a crash interrupted or a writer that lost the partition left behind, so each
//!   source offset's rows are in the lake exactly once.
//! - [`error`]: [`error::LakeError`], with retryable vs fatal classification.
//!
//! Data enters as row types from ingest, leaves as Parquet files under the lake
//! root, and the source position leaves as a checkpoint written only after the
//! files are durable.

pub mod checkpoint;
pub mod decode;
pub mod encode;
pub mod error;
pub mod event_rows;
pub mod histogram;
pub mod layout;
pub mod model;
pub mod parquet;
pub mod schema;
pub mod store;
pub mod writer;

pub use error::{LakeError, Result};

#[cfg(test)]
mod test_support;
