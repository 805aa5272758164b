//! The driftwatch lake: the contract between ingest, which writes it, and analyze,
//! which reads it (DESIGN §5).
//!
//! # Layout
//!
//! - [`model`]: the row types (inference events, feedback, dead letters, rollups).
//! - [`histogram`]: the serialized HdrHistogram format carried by rollups.

pub mod histogram;
pub mod model;
