//! The row types the lake stores. Ingest produces them, the lake writer encodes
//! them as Arrow (see [`crate::schema`]), and analyze reads the columns by name.
//!
//! Times are nanoseconds since the Unix epoch (UTC) so that ordering and window
//! arithmetic are integer operations on the hot path.

use std::sync::Arc;

/// Nanoseconds since the Unix epoch, UTC.
pub type UnixNanos = i64;

/// Where a row came from: the source position that the checkpoint protects.
///
/// For Kafka this is (topic, partition, offset); for the file source it is
/// (file source id, 0, byte offset of the line).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourcePosition {
    /// Kafka topic, or the file source's stable id.
    pub topic: Arc<str>,
    /// Kafka partition; 0 for files.
    pub partition: i32,
    /// Kafka offset, or the byte offset of the line in the file.
    pub offset: i64,
}

/// Outcome of the inference call as the span status or JSON event reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CallStatus {
    /// Status not set by the instrumentation; treated as success.
    #[default]
    Unset,
    /// Explicit success.
    Ok,
    /// The call failed; `error_type` says how.
    Error,
}

impl CallStatus {
    /// The lowercase name stored in the lake's `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Unset => "unset",
            CallStatus::Ok => "ok",
            CallStatus::Error => "error",
        }
    }

    /// True when the call counts as an error in rollups and metrics.
    pub fn is_error(self) -> bool {
        matches!(self, CallStatus::Error)
    }
}

/// One inference call: the lake's `events` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InferenceEvent {
    /// Identity for deduplication: lowercase hex `trace_id + span_id`, or the JSON event `id`.
    pub event_id: String,
    /// Lowercase hex trace id (32 chars) when the event came from a span.
    pub trace_id: Option<String>,
    /// Lowercase hex span id (16 chars) when the event came from a span.
    pub span_id: Option<String>,
    /// Provider's response id (`gen_ai.response.id`): the join key for feedback.
    pub response_id: Option<String>,
    /// Event time: the end of the call. Windows, partitions and prices use it.
    pub time: UnixNanos,
    /// Start of the call; `time - start_time` is the latency.
    pub start_time: UnixNanos,
    /// The micro app (resource `service.name`, overridden by `driftwatch.app`).
    pub app: String,
    /// Deployment environment (`prod`, `staging`, ...).
    pub environment: Option<String>,
    /// Normalised provider name (`openai`, `azure.ai.inference`, `gcp.vertex_ai`, ...).
    pub provider: Option<String>,
    /// `chat`, `text_completion`, `generate_content`, `embeddings`, ...
    pub operation: String,
    /// Model the app asked for.
    pub request_model: Option<String>,
    /// Model that answered (falls back to `request_model`); a change here is drift.
    pub response_model: Option<String>,
    /// Prompt template id.
    pub prompt_id: Option<String>,
    /// Prompt template version.
    pub prompt_version: Option<String>,
    /// Prompt tokens, cached ones included.
    pub input_tokens: Option<i64>,
    /// Completion tokens, reasoning ones included.
    pub output_tokens: Option<i64>,
    /// Prompt tokens served from the provider's cache (priced lower).
    pub cache_read_tokens: Option<i64>,
    /// Prompt tokens written to the provider's cache (Anthropic prices them above plain input).
    pub cache_write_tokens: Option<i64>,
    /// Reasoning tokens (a subset of output tokens).
    pub reasoning_tokens: Option<i64>,
    /// Our price: tokens x the registry price in force at `time`.
    pub cost_usd: Option<f64>,
    /// Cost the instrumentation reported, kept beside ours for reconciliation.
    pub reported_cost_usd: Option<f64>,
    /// Which registry price produced `cost_usd` (`<model>@<effective_from>`), so cost can be recomputed.
    pub price_version: Option<String>,
    /// The provider's service tier that served the call, as it reported it (OpenAI's
    /// `openai.response.service_tier`: `default`, `flex`, `priority`, `scale`), lower-cased. A
    /// tier the registry prices on its own (`flex` at half the standard rates) shows in
    /// `price_version` as `<model>@<date>+<tier>`.
    pub service_tier: Option<String>,
    /// End minus start, milliseconds.
    pub latency_ms: Option<f64>,
    /// Time to first token for streaming calls, milliseconds.
    pub ttft_ms: Option<f64>,
    /// Span status or JSON `status`.
    pub status: CallStatus,
    /// `error.type` or the exception type.
    pub error_type: Option<String>,
    /// First finish reason.
    pub finish_reason: Option<String>,
    /// Hash of the (unscrubbed, normalised) input content: finds repeated inputs without storing them.
    pub input_hash: Option<String>,
    /// Hash of the output content.
    pub output_hash: Option<String>,
    /// 64-bit SimHash of the output: near-duplicate outputs have a small Hamming distance.
    pub output_simhash: Option<u64>,
    /// Output length in characters.
    pub output_chars: Option<i64>,
    /// Id of a fixed test input replayed by CI.
    pub golden_case: Option<String>,
    /// Raw input content as decoded. Never persisted: enrichment hashes it and
    /// keeps a scrubbed copy in `content` only when retention is on.
    pub input_content: Option<String>,
    /// Raw output content as decoded. Never persisted (see `input_content`).
    pub output_content: Option<String>,
    /// Scrubbed content (JSON `{"input":..,"output":..}`), only where the app retains content.
    pub content: Option<String>,
    /// Where the event was read from.
    pub source: Option<SourcePosition>,
}

impl InferenceEvent {
    /// Whether the call reported any token count, which is what a price applies to: a call
    /// with tokens and no `cost_usd` is one the registry could not price.
    pub fn reports_tokens(&self) -> bool {
        self.input_tokens.is_some() || self.output_tokens.is_some()
    }
}

/// A feedback or evaluation result: the lake's `feedback` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedbackEvent {
    /// Identity for deduplication: log record trace+span+name+time hash, or the JSON `id`.
    pub feedback_id: String,
    /// When the feedback was given.
    pub time: UnixNanos,
    /// App the feedback is about.
    pub app: String,
    /// Deployment environment.
    pub environment: Option<String>,
    /// Evaluation name; `hallucination` and `user_thumbs` (in any ASCII case) are first-class.
    pub name: String,
    /// Numeric score (`gen_ai.evaluation.score.value`).
    pub score_value: Option<f64>,
    /// Label (`gen_ai.evaluation.score.label`), e.g. `hallucinated`, `down`.
    pub score_label: Option<String>,
    /// Trace of the evaluated inference.
    pub trace_id: Option<String>,
    /// Span of the evaluated inference.
    pub span_id: Option<String>,
    /// Response id of the evaluated inference.
    pub response_id: Option<String>,
    /// `event_id` of the evaluated inference: the parent span's trace+span id, or the JSON `inference_id`.
    pub inference_id: Option<String>,
    /// Model of the evaluated inference, when known (from the event or joined from a recent inference).
    pub response_model: Option<String>,
    /// Provider of the evaluated inference, when known.
    pub provider: Option<String>,
    /// Operation of the evaluated inference, when known.
    pub operation: Option<String>,
    /// Prompt id of the evaluated inference, when known.
    pub prompt_id: Option<String>,
    /// Prompt version of the evaluated inference, when known.
    pub prompt_version: Option<String>,
    /// Where the feedback was read from.
    pub source: Option<SourcePosition>,
}

/// Evaluation name of a hallucination check. Names are matched ignoring ASCII case: Phoenix
/// and the OTel examples write `Hallucination`.
pub const HALLUCINATION_EVALUATION: &str = "hallucination";
/// Evaluation name of a user's thumbs up or down, matched ignoring ASCII case.
pub const USER_THUMBS_EVALUATION: &str = "user_thumbs";

/// Whether `name` is one of the first-class evaluations (hallucination, user thumbs), a closed
/// set that caps on evaluation names (rollup tallies, metric label values) never fold.
pub fn is_first_class_evaluation(name: &str) -> bool {
    [HALLUCINATION_EVALUATION, USER_THUMBS_EVALUATION].iter().any(|known| name.eq_ignore_ascii_case(known))
}

// Labels are matched ignoring ASCII case and surrounding whitespace (and an emoji's skin tone or
// presentation selector). A label in neither list of a pair says nothing, and the score decides.
/// Hallucination labels that flag the answer (`hallucinated` is Phoenix's).
const HALLUCINATION_FLAGGED: [&str; 6] = ["hallucinated", "hallucination", "yes", "true", "fail", "failed"];
/// Hallucination labels that clear the answer (`factual` is Phoenix's).
const HALLUCINATION_CLEARED: [&str; 6] = ["factual", "not_hallucinated", "no", "false", "pass", "passed"];
/// Thumbs labels that flag the answer.
const THUMBS_DOWN: [&str; 9] =
    ["down", "thumbs_down", "thumbs-down", "thumbsdown", "dislike", "negative", "bad", "-1", "\u{1F44E}"];
/// Thumbs labels that approve of the answer.
const THUMBS_UP: [&str; 9] =
    ["up", "thumbs_up", "thumbs-up", "thumbsup", "like", "positive", "good", "+1", "\u{1F44D}"];
/// Labels of any other evaluation that flag the answer; its score's scale is unknown, so it
/// never flags on its own.
const EVALUATION_FAILED: [&str; 3] = ["fail", "failed", "bad"];

impl FeedbackEvent {
    /// True for a result that flags a problem with the answer. A hallucination evaluation
    /// flags with a label meaning "hallucinated" or, when its label is missing or not one
    /// driftwatch knows, a score of at least 0.5; `user_thumbs` with a thumbs-down label or a
    /// score of at most 0; any other evaluation only with a failing label.
    pub fn is_flagged(&self) -> bool {
        let label = self.score_label.as_deref();
        if self.name.eq_ignore_ascii_case(HALLUCINATION_EVALUATION) {
            label_verdict(label, &HALLUCINATION_FLAGGED, &HALLUCINATION_CLEARED)
                .unwrap_or_else(|| self.score_value.is_some_and(|score| score >= 0.5))
        } else if self.name.eq_ignore_ascii_case(USER_THUMBS_EVALUATION) {
            label_verdict(label, &THUMBS_DOWN, &THUMBS_UP)
                .unwrap_or_else(|| self.score_value.is_some_and(|score| score <= 0.0))
        } else {
            label_verdict(label, &EVALUATION_FAILED, &[]).unwrap_or(false)
        }
    }
}

/// What a label says: `Some(true)` when it is one of `flagged`, `Some(false)` when one of
/// `cleared`, `None` when it is missing or unknown (so the caller falls back to the score).
fn label_verdict(label: Option<&str>, flagged: &[&str], cleared: &[&str]) -> Option<bool> {
    // A skin tone modifier or the emoji presentation selector (U+FE0F) after 👍/👎 does not
    // change what the user meant.
    let label = label?.trim().trim_end_matches(|c: char| c == '\u{FE0F}' || ('\u{1F3FB}'..='\u{1F3FF}').contains(&c));
    let is_one_of = |known: &[&str]| known.iter().any(|known| known.eq_ignore_ascii_case(label));
    if is_one_of(flagged) {
        Some(true)
    } else if is_one_of(cleared) {
        Some(false)
    } else {
        None
    }
}

/// Input that could not be turned into rows, with the reason: the lake's `dead_letter` row.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// When ingest rejected it.
    pub time: UnixNanos,
    /// Stable machine-readable reason (`malformed_json`, `negative_tokens`, ...); also the metric label.
    pub reason: &'static str,
    /// Human-readable detail: what was wrong, where. PII in it (a quoted bad value) is scrubbed.
    pub detail: String,
    /// The rejected bytes (the whole message, or the offending item), truncated to the configured cap,
    /// with PII scrubbed (masked in place in binary payloads) whatever the app's content policy.
    pub payload: Vec<u8>,
    /// Where it was read from.
    pub source: Option<SourcePosition>,
}

/// Rollup key: one row per key and flush (DESIGN §5). Rows are partial; readers sum and merge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    /// Window start, truncated to the minute, by event time.
    pub window_start: UnixNanos,
    pub app: String,
    pub environment: Option<String>,
    pub provider: Option<String>,
    pub response_model: Option<String>,
    pub prompt_id: Option<String>,
    pub prompt_version: Option<String>,
    pub operation: Option<String>,
}

/// Feedback counts for one evaluation name inside a rollup row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedbackTally {
    /// Evaluation name.
    pub name: String,
    /// Number of results.
    pub count: i64,
    /// Results that carried a numeric score. A label-only result (a thumbs-down without a
    /// value) counts in `count` but not here: the mean score is `score_sum / scored`. `None` in
    /// rollups written before 2026-12-06, which did not count it (their mean is unknown).
    pub scored: Option<i64>,
    /// Sum of numeric scores (results without a score add 0).
    pub score_sum: f64,
    /// Results that flagged a problem (hallucinated, thumbs-down, failed).
    pub flagged: i64,
}

/// A partial 1-minute aggregate: the lake's `rollups` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollupRow {
    /// The aggregation key.
    pub key: RollupKey,
    /// Inference calls.
    pub requests: i64,
    /// Calls with error status.
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    /// Sum of `cache_write_tokens`; 0 in rollups written before the column existed.
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_usd: f64,
    /// HdrHistogram (V2 serialization) of latency in microseconds; see [`crate::histogram`].
    pub latency_us_hist: Vec<u8>,
    /// HdrHistogram (V2 serialization) of time to first token in microseconds.
    pub ttft_us_hist: Vec<u8>,
    /// Feedback results received in this window, per evaluation name.
    pub feedback: Vec<FeedbackTally>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feedback(name: &str, score: Option<f64>, label: Option<&str>) -> FeedbackEvent {
        FeedbackEvent {
            name: name.to_owned(),
            score_value: score,
            score_label: label.map(str::to_owned),
            ..FeedbackEvent::default()
        }
    }

    #[test]
    fn evaluation_names_match_in_any_ascii_case() {
        for name in ["hallucination", "Hallucination", "HALLUCINATION"] {
            assert!(feedback(name, Some(0.9), None).is_flagged(), "{name} with a high score");
            assert!(feedback(name, None, Some("hallucinated")).is_flagged(), "{name} labelled");
            assert!(!feedback(name, Some(0.1), None).is_flagged(), "{name} with a low score");
        }
        for name in ["user_thumbs", "User_Thumbs", "USER_THUMBS"] {
            assert!(feedback(name, None, Some("down")).is_flagged(), "{name} down");
            assert!(!feedback(name, Some(1.0), None).is_flagged(), "{name} up");
        }
    }

    #[test]
    fn thumbs_labels_are_read_in_their_common_spellings() {
        for label in ["down", "thumbs-down", "Thumbs_Down", "dislike", " 👎 ", "👎🏽", "-1"] {
            assert!(feedback("user_thumbs", None, Some(label)).is_flagged(), "{label:?}");
            // The label speaks for the user even when a score says otherwise.
            assert!(feedback("user_thumbs", Some(1.0), Some(label)).is_flagged(), "{label:?} over a score of 1");
        }
        for label in ["up", "thumbs-up", "THUMBS_UP", "like", "👍", "👍️", "+1"] {
            assert!(!feedback("user_thumbs", Some(0.0), Some(label)).is_flagged(), "{label:?} over a score of 0");
        }
    }

    #[test]
    fn an_unknown_label_leaves_the_verdict_to_the_score() {
        assert!(feedback("user_thumbs", Some(0.0), Some("meh")).is_flagged());
        assert!(feedback("user_thumbs", Some(-1.0), Some("rated")).is_flagged());
        assert!(!feedback("user_thumbs", Some(1.0), Some("rated")).is_flagged());
        assert!(!feedback("user_thumbs", None, Some("rated")).is_flagged(), "no label meaning, no score");
        assert!(feedback("Hallucination", Some(0.8), Some("unsure")).is_flagged());
        assert!(!feedback("hallucination", Some(0.2), Some("unsure")).is_flagged());
        // A known label wins over the score.
        assert!(!feedback("hallucination", Some(0.9), Some("factual")).is_flagged());
        assert!(feedback("hallucination", Some(0.1), Some("Hallucinated")).is_flagged());
    }

    #[test]
    fn other_evaluations_flag_only_with_a_failing_label() {
        assert!(feedback("relevance", None, Some("FAIL")).is_flagged());
        assert!(!feedback("relevance", Some(0.0), None).is_flagged(), "a score's scale is unknown");
        assert!(!feedback("relevance", Some(0.0), Some("pass")).is_flagged());
    }
}
