//! [`Config::validate`]: the checks that types alone cannot do, every problem collected so that
//! one run shows them all.

use std::collections::HashSet;
use std::time::Duration;

use bytesize::ByteSize;

use crate::telemetry::BearerToken;

use super::kafka::validate_kafka;
use super::{Config, ConfigError, MAX_FLUSH_AGE, MAX_FLUSH_BYTES, Result};

/// A size as a problem quotes it: `ByteSize` shows one decimal, so a value just past a limit
/// would read as the limit itself ("1.0 GiB must be at most 1.0 GiB"); then the bytes follow.
fn exact_size(size: ByteSize) -> String {
    let shown = size.to_string();
    if shown.parse::<ByteSize>().is_ok_and(|parsed| parsed == size) {
        shown
    } else {
        format!("{shown}, {} bytes", size.as_u64())
    }
}

impl Config {
    /// Check values that types alone cannot. Collects every problem so one run shows them all.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.lake.location.trim().is_empty() {
            problems.push("`lake.location` is empty: set a local path or an s3:// URL".to_owned());
        }
        problems.extend(
            self.lake.parquet.problems().into_iter().map(|(field, reason)| format!("`lake.parquet.{field}` {reason}")),
        );
        if self.flush.max_rows == 0 {
            problems.push("`flush.max_rows` must be at least 1".to_owned());
        }
        if self.flush.max_bytes.as_u64() == 0 {
            problems.push("`flush.max_bytes` must be larger than 0 (e.g. \"64 MiB\")".to_owned());
        }
        if self.flush.max_bytes > MAX_FLUSH_BYTES {
            problems.push(format!(
                "`flush.max_bytes` ({}) must be at most {MAX_FLUSH_BYTES}: a flushed batch's text columns hold at \
                 most 2 GiB; set it to {MAX_FLUSH_BYTES} or less (the default is 64 MiB)",
                exact_size(self.flush.max_bytes)
            ));
        }
        if self.metrics.max_series == 0 {
            problems
                .push("`metrics.max_series` must be at least 1: every series would fold into the overflow".to_owned());
        }
        if self.flush.max_age.is_zero() {
            problems.push("`flush.max_age` must be longer than 0s (e.g. \"1m\")".to_owned());
        }
        if self.flush.max_age > MAX_FLUSH_AGE {
            problems.push(format!(
                "`flush.max_age` ({}) must be at most {}: rows wait in memory, uncommitted, until they are \
                 flushed; the default is 1m",
                format_duration(self.flush.max_age),
                format_duration(MAX_FLUSH_AGE)
            ));
        }
        if self.flush.max_buffered_bytes < self.flush.max_bytes {
            problems.push(format!(
                "`flush.max_buffered_bytes` ({}) must be at least `flush.max_bytes` ({})",
                exact_size(self.flush.max_buffered_bytes),
                exact_size(self.flush.max_bytes)
            ));
        }
        if self.decode.max_payload_bytes.as_u64() == 0 {
            problems.push("`decode.max_payload_bytes` must be larger than 0".to_owned());
        }
        problems.extend(self.decode.problems());
        if self.aggregate.max_open_keys == 0 {
            problems.push("`aggregate.max_open_keys` must be at least 1".to_owned());
        }
        if self.decode.max_tokens_per_call <= 0 {
            problems.push("`decode.max_tokens_per_call` must be positive".to_owned());
        }
        if self.http.bearer_token.as_ref().is_some_and(BearerToken::is_empty) {
            // Checked here too, not only when the endpoint binds, so that `check-config` sees it
            // (an unset secret often arrives as an empty environment variable).
            problems.push(
                "`http.bearer_token` is empty (DRIFTWATCH_HTTP__BEARER_TOKEN set to nothing?): set the secret or remove the key"
                    .to_owned(),
            );
        }
        if let Some(kafka) = &self.kafka {
            validate_kafka(kafka, &mut problems);
        }
        let mut seen = HashSet::new();
        for (index, app) in self.apps.iter().enumerate() {
            let key = format!("apps[{index}]");
            if app.id.trim().is_empty() {
                problems.push(format!("`{key}.id` is empty"));
            } else if !seen.insert(app.id.as_str()) {
                problems.push(format!("`{key}.id` = {:?} is listed twice; keep one entry per app", app.id));
            }
            if app.team.trim().is_empty() {
                problems.push(format!("`{key}.team` is empty: alerts are routed by team"));
            }
            if let Some(budget) = app.monthly_budget_usd
                && (!budget.is_finite() || budget <= 0.0)
            {
                problems.push(format!("`{key}.monthly_budget_usd` = {budget} must be a positive number of USD"));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid { problems }) }
    }
}

/// A duration as config values are written (`10m`, `1day`).
pub(super) fn format_duration(duration: Duration) -> String {
    humantime_serde::re::humantime::format_duration(duration).to_string()
}
