//! Aggregation: normalised, priced and scrubbed events enter here and leave as
//! partial 1-minute rollup rows for the lake (DESIGN §5).
//!
//! # Layout
//!
//! - [`feedback_join`]: a bounded index of recent inferences. Feedback that
//!   arrives without model or prompt context (an OTel evaluation event only
//!   names its parent span or response id) borrows it from the inference it
//!   evaluates, so it lands in the same rollup key.
//! - [`rollup`]: [`RollupAggregator`] keeps one open accumulator per rollup key
//!   (window by event time, app, environment, provider, response model, prompt
//!   id and version, operation) and drains them as [`RollupRow`]s, sorted by key,
//!   with serialized HdrHistograms so any set of partial rows merges exactly.
//! - `recorder` (private): the sparse latency recorder behind each open key.
//!
//! Rows are partial on purpose: the caller drains whenever its lake buffer
//! flushes (and when [`RollupAggregator::is_full`]), and readers sum and merge.
//!
//! [`RollupRow`]: driftwatch_lake::model::RollupRow

pub mod feedback_join;
mod recorder;
pub mod rollup;

pub use feedback_join::FeedbackJoin;
pub use rollup::RollupAggregator;

use driftwatch_lake::histogram::HistogramError;

/// Settings of the rollup aggregator (`[aggregate]` in the config file).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// Rollup keys held open before the buffer is flushed (flush reason `keys`). Bounds memory:
    /// the flush follows the message that reaches it. The events of that message are all
    /// counted, so it may open more keys than this, at most one per event of one message
    /// (whose size `decode.max_payload_bytes` bounds).
    #[serde(default = "default_max_open_keys")]
    pub max_open_keys: usize,
    /// Recent inferences remembered so that feedback arriving without model or prompt context
    /// can be attributed to the call it evaluates: at least the last this many are kept, at most
    /// twice as many. Bounds the join's memory (about 150 bytes per remembered inference whose
    /// context strings other calls share, up to about 2 KB for one with seven names of its own).
    #[serde(default = "default_feedback_join_capacity")]
    pub feedback_join_capacity: usize,
}

fn default_max_open_keys() -> usize {
    50_000
}

fn default_feedback_join_capacity() -> usize {
    200_000
}

impl Default for AggregateConfig {
    fn default() -> Self {
        Self { max_open_keys: default_max_open_keys(), feedback_join_capacity: default_feedback_join_capacity() }
    }
}

/// Errors from aggregation. Each says what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    /// A histogram could not be encoded while draining. The aggregator keeps
    /// its state, so the caller may retry the drain or stop.
    #[error("cannot encode the {histogram} histogram of window {window_start} of app {app:?}: {source}")]
    Histogram {
        /// `latency` or `ttft`.
        histogram: &'static str,
        /// Window of the row being encoded.
        window_start: i64,
        /// App of the row being encoded.
        app: String,
        /// What the histogram library reported.
        #[source]
        source: HistogramError,
    },
    /// A buffer was drained around the processor, with feedback it had not tallied yet: a bug
    /// in a source, which must drain through `Processor::take_batch`. Nothing is drained.
    #[error("{rows} feedback rows are not tallied in the rollups yet; drain through the processor")]
    UntalliedFeedback {
        /// Rows waiting for their tally.
        rows: usize,
    },
}

/// Result of aggregation operations.
pub type Result<T, E = AggregateError> = std::result::Result<T, E>;
