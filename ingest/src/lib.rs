//! driftwatch ingest: GenAI telemetry from Kafka or files into the Parquet lake, exactly once.
//!
//! # Layout
//!
//! Data enters at a [`source`], passes through the shared [`pipeline`] and leaves as lake files
//! plus a checkpoint:
//!
//! 1. [`source`]: the Kafka consumer group ([`source::kafka`]) or files ([`source::file`]) read
//!    messages and own one partition buffer per partition.
//! 2. [`decode`]: OTLP traces/logs (protobuf or OTLP/JSON) and JSON events become inference and
//!    feedback rows; bad input becomes a reject with its reason.
//! 3. [`enrich`]: prices from the model registry, content hashes and SimHash, PII scrubbing.
//! 4. [`aggregate`]: 1-minute rollups with mergeable HdrHistograms; feedback joined to recent
//!    inferences.
//! 5. [`pipeline`]: drops producer retries and spans that wrap another call, buffers per
//!    partition and flushes on rows, bytes, age, open rollup keys or memory pressure; the
//!    flusher writes the batch with [`driftwatch_lake::writer`] and only then is the position
//!    committed.
//! 6. [`telemetry`]: live Prometheus metrics (with a cardinality cap) and the HTTP endpoint.
//!
//! [`config`] is the one TOML file (plus `DRIFTWATCH_*` overrides), [`runtime`] assembles the
//! pieces, and [`fleet`] generates realistic synthetic fleets for the demo and load tests.

pub mod aggregate;
pub mod config;
pub mod decode;
pub mod enrich;
pub mod error;
pub mod fleet;
pub mod id_key;
pub mod loadgen;
pub mod pipeline;
pub mod runtime;
pub mod source;
pub mod telemetry;

/// The hasher of the per-message path (topic names, app and model names, label values, rollup
/// keys): a randomly seeded foldhash is several times cheaper than std's SipHash on such short
/// keys and still unpredictable to producers.
pub(crate) type FastHashState = foldhash::fast::RandomState;

/// A hash map with [`FastHashState`].
pub(crate) type FastHashMap<K, V> = std::collections::HashMap<K, V, FastHashState>;
