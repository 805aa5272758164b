//! The fleet summary: one line per app plus lake-wide totals.
//!
//! The SQL in `src/sql/` runs over the lake tables ([`LakeSession`]); only the
//! final aggregated rows (one per app) come back into Rust as [`AppSummary`]
//! and [`LakeTotals`], which the CLI prints ([`render_summary_table`]) or
//! serialises as JSON.

mod render;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::batches::Columns;
use crate::error::Result;
use crate::lake::LakeSession;

pub use render::{render_summary_notes, render_summary_table};

const APP_SUMMARY_SQL: &str = include_str!("sql/app_summary.sql");
const LAKE_TOTALS_SQL: &str = include_str!("sql/lake_totals.sql");
const DEAD_LETTERS_BY_REASON_SQL: &str = include_str!("sql/dead_letters_by_reason.sql");

/// One app's usage, latency and quality over everything in the lake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSummary {
    /// The micro app.
    pub app: String,
    /// Inference calls, each event_id counted once.
    pub requests: i64,
    /// Calls whose status is `error`.
    pub errors: i64,
    /// Prompt tokens over all calls.
    pub input_tokens: i64,
    /// Completion tokens over all calls.
    pub output_tokens: i64,
    /// Our priced spend in USD.
    pub cost_usd: f64,
    /// Calls that reported tokens but could not be priced (a model missing from the registry,
    /// or a time before its first price): their spend is missing from `cost_usd`.
    pub unpriced_requests: i64,
    /// Calls that succeeded without reporting any token count (some instrumentations' streams
    /// and embeddings): their spend is missing from `cost_usd` too.
    pub no_usage_requests: i64,
    /// Median latency from the merged rollup histograms; `None` without latency data.
    pub p50_latency_ms: Option<f64>,
    /// 95th percentile latency.
    pub p95_latency_ms: Option<f64>,
    /// 99th percentile latency.
    pub p99_latency_ms: Option<f64>,
    /// Median time to first token of streamed answers; `None` without any.
    pub p50_ttft_ms: Option<f64>,
    /// 95th percentile time to first token of streamed answers.
    pub p95_ttft_ms: Option<f64>,
    /// Hallucination evaluations received (verdicts, not calls: a call judged twice counts twice).
    pub hallucination_evals: i64,
    /// Evaluations that flagged a hallucination.
    pub hallucination_flagged: i64,
    /// `hallucination_flagged / hallucination_evals`; `None` without evaluations.
    pub hallucination_rate: Option<f64>,
    /// User thumbs results received (up and down).
    pub thumbs_evals: i64,
    /// User thumbs-down results.
    pub thumbs_down: i64,
    /// `thumbs_down / thumbs_evals`; `None` without thumbs results.
    pub thumbs_down_rate: Option<f64>,
    /// All feedback and evaluation results, every name.
    pub feedback: i64,
}

/// Row counts across the lake: a quick health check of what ingest wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LakeTotals {
    /// Event rows, duplicates included.
    pub events: i64,
    /// Distinct event ids; less than `events` when producer retries duplicated rows.
    pub distinct_events: i64,
    /// Feedback rows.
    pub feedback: i64,
    /// Rollup rows (partial 1-minute aggregates).
    pub rollup_rows: i64,
    /// Rejected inputs.
    pub dead_letters: i64,
    /// Rejected inputs per reason, to see at a glance what producers get wrong.
    pub dead_letters_by_reason: BTreeMap<String, i64>,
}

/// Per-app summary read back from the lake: requests, errors, tokens and cost
/// from `events` (each event_id once), latency percentiles from the merged
/// rollup histograms (µs -> ms), hallucination and thumbs-down counts and rates from the
/// rollups' feedback tallies (per verdict; rollups count every stored copy of a retried call,
/// see [`LakeTotals::distinct_events`]). Sorted by cost descending, then app.
pub async fn app_summary(session: &LakeSession) -> Result<Vec<AppSummary>> {
    const QUERY: &str = "app_summary.sql";
    let batches = session.run(QUERY, APP_SUMMARY_SQL).await?;
    let mut rows = Vec::new();
    for batch in &batches {
        let columns = Columns::new(QUERY, batch);
        let apps = columns.strings("app")?;
        let requests = columns.int64s("requests")?;
        let errors = columns.int64s("errors")?;
        let input_tokens = columns.int64s("input_tokens")?;
        let output_tokens = columns.int64s("output_tokens")?;
        let cost_usd = columns.float64s("cost_usd")?;
        let unpriced_requests = columns.int64s("unpriced_requests")?;
        let no_usage_requests = columns.int64s("no_usage_requests")?;
        let p50 = columns.optional_float64s("p50_latency_ms")?;
        let p95 = columns.optional_float64s("p95_latency_ms")?;
        let p99 = columns.optional_float64s("p99_latency_ms")?;
        let p50_ttft = columns.optional_float64s("p50_ttft_ms")?;
        let p95_ttft = columns.optional_float64s("p95_ttft_ms")?;
        let hallucination_evals = columns.int64s("hallucination_evals")?;
        let hallucination_flagged = columns.int64s("hallucination_flagged")?;
        let hallucination_rate = columns.optional_float64s("hallucination_rate")?;
        let thumbs_evals = columns.int64s("thumbs_evals")?;
        let thumbs_down = columns.int64s("thumbs_down")?;
        let thumbs_down_rate = columns.optional_float64s("thumbs_down_rate")?;
        let feedback = columns.int64s("feedback")?;
        for (row, app) in apps.into_iter().enumerate() {
            rows.push(AppSummary {
                app,
                requests: requests[row],
                errors: errors[row],
                input_tokens: input_tokens[row],
                output_tokens: output_tokens[row],
                cost_usd: cost_usd[row],
                unpriced_requests: unpriced_requests[row],
                no_usage_requests: no_usage_requests[row],
                p50_latency_ms: p50[row],
                p95_latency_ms: p95[row],
                p99_latency_ms: p99[row],
                p50_ttft_ms: p50_ttft[row],
                p95_ttft_ms: p95_ttft[row],
                hallucination_evals: hallucination_evals[row],
                hallucination_flagged: hallucination_flagged[row],
                hallucination_rate: hallucination_rate[row],
                thumbs_evals: thumbs_evals[row],
                thumbs_down: thumbs_down[row],
                thumbs_down_rate: thumbs_down_rate[row],
                feedback: feedback[row],
            });
        }
    }
    Ok(rows)
}

/// Row counts of every lake table and dead letters per reason.
pub async fn lake_totals(session: &LakeSession) -> Result<LakeTotals> {
    const TOTALS: &str = "lake_totals.sql";
    const REASONS: &str = "dead_letters_by_reason.sql";
    let mut totals = LakeTotals::default();
    for batch in &session.run(TOTALS, LAKE_TOTALS_SQL).await? {
        let columns = Columns::new(TOTALS, batch);
        let first = |values: Vec<i64>| values.first().copied().unwrap_or_default();
        totals.events = first(columns.int64s("events")?);
        totals.distinct_events = first(columns.int64s("distinct_events")?);
        totals.feedback = first(columns.int64s("feedback")?);
        totals.rollup_rows = first(columns.int64s("rollup_rows")?);
        totals.dead_letters = first(columns.int64s("dead_letters")?);
    }
    for batch in &session.run(REASONS, DEAD_LETTERS_BY_REASON_SQL).await? {
        let columns = Columns::new(REASONS, batch);
        let reasons = columns.strings("reason")?;
        let counts = columns.int64s("dead_letters")?;
        totals.dead_letters_by_reason.extend(reasons.into_iter().zip(counts));
    }
    Ok(totals)
}
