//! Live telemetry: what the pipeline reports about the fleet and about itself
//! (DESIGN §6).
//!
//! # Layout
//!
//! - [`names`]: every metric and label name, and the histogram buckets.
//! - [`metrics`]: [`Metrics`], the clonable handle pipeline stages report to.
//!   GenAI events enter through `observe_event` / `observe_feedback` and
//!   pipeline health through `record_*` / `set_*`; the registry leaves as
//!   OpenMetrics text.
//! - `genai` (private): the capped, cached GenAI label-set series behind `Metrics`.
//! - `partitions` (private): per-partition checkpoint age and consumer lag, computed at
//!   scrape time from what `Metrics` was told.
//! - `process` (private): the standard `process_*` metrics (CPU, memory, threads,
//!   descriptors), read from `/proc/self` at scrape time.
//! - [`http`]: `/metrics`, `/healthz` and `/readyz`, with optional bearer auth,
//!   and the shared [`Readiness`] flag; `/metrics` answers in OpenMetrics to scrapers that ask
//!   for it (Prometheus does) and in the classic text format to others ([`text_format`]).

mod genai;
pub mod http;
pub mod metrics;
pub mod names;
mod partitions;
#[cfg(target_os = "linux")]
pub mod process;
pub mod text_format;

pub use http::{BearerToken, BoundServer, HttpConfig, HttpError, Readiness};
pub use metrics::{ConsumerErrorKind, FlushReason, MessageResult, Metrics, MetricsConfig, MetricsError};

/// The sum of the counter samples in OpenMetrics `text` whose line starts with `series`
/// (a metric name with or without its labels), 0 when there are none.
#[cfg(test)]
pub(crate) fn counter_sum(text: &str, series: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(series))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}
