//! Sources: where messages enter. Each source owns its partitions' buffers and positions and
//! drives the shared [`pipeline`](crate::pipeline).
//!
//! - [`file`](mod@file): OTLP/JSON lines, NDJSON events or length-prefixed OTLP protobuf from files
//!   (backfill, demo); [`framing`] finds the message boundaries.
//! - [`kafka`]: the consumer-group daemon.

pub mod file;
pub mod framing;
pub mod kafka;
