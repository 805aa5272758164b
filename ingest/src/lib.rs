//! driftwatch ingest: source -> decode -> enrich -> aggregate -> lake -> checkpoint.

pub mod aggregate;
pub mod telemetry;
