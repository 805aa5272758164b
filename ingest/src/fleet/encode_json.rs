//! The `llm_events` wire format: one JSON object per message, for apps without
//! OpenTelemetry.
//!
//! Records enter as [`FleetRecord`]s; [`message`] serialises one into an
//! [`Stream::Events`] [`WireMessage`] following the schema in the README (null
//! fields omitted, times RFC 3339 with nanoseconds in UTC).

use chrono::{DateTime, SecondsFormat};
use driftwatch_lake::model::{CallStatus, FeedbackEvent, InferenceEvent, UnixNanos};
use serde::Serialize;

use super::truth::{AppTruth, MessageTruth};
use super::{FleetRecord, Stream, WireMessage};

/// An inference event as written on the wire; borrows from the record.
#[derive(Debug, Serialize)]
pub struct InferenceJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    time: String,
    app: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    operation: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_read_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_write_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reported_cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttft_ms: Option<f64>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    span_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    golden_case: Option<&'a str>,
}

impl<'a> InferenceJson<'a> {
    /// The wire view of an inference event.
    pub fn new(e: &'a InferenceEvent) -> Self {
        Self {
            kind: "inference",
            id: &e.event_id,
            time: rfc3339(e.time),
            app: &e.app,
            environment: e.environment.as_deref(),
            provider: e.provider.as_deref(),
            operation: &e.operation,
            request_model: e.request_model.as_deref(),
            response_model: e.response_model.as_deref(),
            prompt_id: e.prompt_id.as_deref(),
            prompt_version: e.prompt_version.as_deref(),
            input_tokens: e.input_tokens,
            output_tokens: e.output_tokens,
            cache_read_tokens: e.cache_read_tokens,
            cache_write_tokens: e.cache_write_tokens,
            reasoning_tokens: e.reasoning_tokens,
            reported_cost_usd: e.reported_cost_usd,
            latency_ms: e.latency_ms.map(round_micros),
            ttft_ms: e.ttft_ms.map(round_micros),
            status: if e.status == CallStatus::Error { "error" } else { "ok" },
            error_type: e.error_type.as_deref(),
            finish_reason: e.finish_reason.as_deref(),
            service_tier: e.service_tier.as_deref(),
            response_id: e.response_id.as_deref(),
            trace_id: e.trace_id.as_deref(),
            span_id: e.span_id.as_deref(),
            input: e.input_content.as_deref(),
            output: e.output_content.as_deref(),
            golden_case: e.golden_case.as_deref(),
        }
    }
}

/// A feedback event as written on the wire.
#[derive(Debug, Serialize)]
pub struct FeedbackJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    time: String,
    app: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<&'a str>,
}

impl<'a> FeedbackJson<'a> {
    /// The wire view of a feedback event.
    pub fn new(f: &'a FeedbackEvent) -> Self {
        Self {
            kind: "feedback",
            id: &f.feedback_id,
            time: rfc3339(f.time),
            app: &f.app,
            name: &f.name,
            score: f.score_value,
            label: f.score_label.as_deref(),
            inference_id: f.inference_id.as_deref(),
            response_id: f.response_id.as_deref(),
            environment: f.environment.as_deref(),
        }
    }
}

/// RFC 3339 UTC with nanoseconds, e.g. `2026-11-01T00:00:00.123456789Z`.
pub fn rfc3339(time: UnixNanos) -> String {
    DateTime::from_timestamp_nanos(time).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Keeps float noise out of the payload: microsecond precision is what tracers report.
fn round_micros(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Encodes one record as an `llm_events` message.
pub fn message(record: &FleetRecord) -> WireMessage {
    let mut rows = AppTruth::default();
    // Keyed by the call's trace (the rated call's, for feedback), as the README advises
    // producers: a call and the feedback on it share a partition and keep their order.
    let (app, key, payload) = match record {
        FleetRecord::Inference(e) | FleetRecord::Retry(e) => {
            rows.add_inference(e, matches!(record, FleetRecord::Inference(_)));
            let key = e.trace_id.as_deref().unwrap_or(&e.event_id);
            (&e.app, key, serde_json::to_vec(&InferenceJson::new(e)))
        }
        FleetRecord::Feedback(f) => {
            rows.add_feedback(f);
            let key = f.trace_id.as_deref().or(f.inference_id.as_deref()).unwrap_or(&f.feedback_id);
            (&f.app, key, serde_json::to_vec(&FeedbackJson::new(f)))
        }
    };
    WireMessage {
        stream: Stream::Events,
        // Structs of strings and numbers always serialise.
        payload: payload.unwrap_or_default(),
        key: Some(key.as_bytes().to_vec()),
        truth: MessageTruth { app: Some(app.clone()), rows, ..MessageTruth::default() },
    }
}
