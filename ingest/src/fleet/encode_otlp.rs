//! The OTLP wire formats, as an OTel Collector's Kafka exporter writes them:
//! protobuf `ExportTraceServiceRequest` / `ExportLogsServiceRequest`, or the
//! same messages in OTLP/JSON (hex ids, int64 as strings, lowerCamelCase,
//! enums as ints; produced by opentelemetry-proto's `with-serde` derives).
//!
//! Inference records become CLIENT spans with the current GenAI semantic
//! conventions; feedback becomes `gen_ai.evaluation.result` log records that
//! point at the evaluated span. The [`Batcher`] groups them per app (one
//! resource, one scope) and emits a message when a batch is full or has waited
//! past the batch timeout.

use std::collections::BTreeMap;

use driftwatch_lake::model::{CallStatus, FeedbackEvent, InferenceEvent, UnixNanos};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

use super::truth::{AppTruth, MessageTruth};
use super::{FleetRecord, Stream, WireMessage};

/// Semantic-conventions schema the attributes follow.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.37.0";
/// Instrumentation scope of the generated telemetry.
pub const SCOPE_NAME: &str = "opentelemetry.instrumentation.genai";
const SCOPE_VERSION: &str = "0.4b0";
/// The OpenTelemetry Python SDK release the resource names, as the SDK's own resource does.
const SDK_VERSION: &str = "1.38.0";

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
}

fn kv_str(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.to_owned()))
}

fn push_opt_str(attrs: &mut Vec<KeyValue>, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        attrs.push(kv_str(key, v));
    }
}

fn push_opt_int(attrs: &mut Vec<KeyValue>, key: &str, value: Option<i64>) {
    if let Some(v) = value {
        attrs.push(kv(key, Value::IntValue(v)));
    }
}

/// Lowercase hex to bytes; our ids are always valid hex, anything else maps to zero nibbles.
pub fn hex_bytes(hex: &str) -> Vec<u8> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    };
    hex.as_bytes().chunks(2).map(|p| (nibble(p[0]) << 4) | p.get(1).map_or(0, |&c| nibble(c))).collect()
}

fn nanos(time: UnixNanos) -> u64 {
    u64::try_from(time).unwrap_or(0)
}

/// `gen_ai.input.messages`: the semconv message list as a JSON string.
fn input_messages(text: &str) -> String {
    serde_json::json!([{ "role": "user", "parts": [{ "type": "text", "content": text }] }]).to_string()
}

/// `gen_ai.output.messages`: the semconv message list as a JSON string.
fn output_messages(text: &str, finish: Option<&str>) -> String {
    serde_json::json!([{
        "role": "assistant",
        "parts": [{ "type": "text", "content": text }],
        "finish_reason": finish.unwrap_or("stop"),
    }])
    .to_string()
}

/// The API endpoint an instrumentation reports as `server.address` for a provider's calls.
fn api_host(provider: &str) -> Option<&'static str> {
    match provider {
        "openai" => Some("api.openai.com"),
        "anthropic" => Some("api.anthropic.com"),
        "gcp.vertex_ai" => Some("us-central1-aiplatform.googleapis.com"),
        _ => None,
    }
}

/// The GenAI client span of one inference call.
pub fn span(e: &InferenceEvent) -> Span {
    let mut attrs = Vec::with_capacity(20);
    attrs.push(kv_str("gen_ai.operation.name", &e.operation));
    push_opt_str(&mut attrs, "gen_ai.provider.name", e.provider.as_deref());
    push_opt_str(&mut attrs, "gen_ai.request.model", e.request_model.as_deref());
    push_opt_str(&mut attrs, "gen_ai.response.model", e.response_model.as_deref());
    if let Some(host) = e.provider.as_deref().and_then(api_host) {
        attrs.push(kv_str("server.address", host));
        attrs.push(kv("server.port", Value::IntValue(443)));
    }
    push_opt_str(&mut attrs, "gen_ai.response.id", e.response_id.as_deref());
    push_opt_int(&mut attrs, "gen_ai.usage.input_tokens", e.input_tokens);
    push_opt_int(&mut attrs, "gen_ai.usage.output_tokens", e.output_tokens);
    push_opt_int(&mut attrs, "gen_ai.usage.cache_read.input_tokens", e.cache_read_tokens);
    push_opt_int(&mut attrs, "gen_ai.usage.cache_creation.input_tokens", e.cache_write_tokens);
    push_opt_int(&mut attrs, "gen_ai.usage.reasoning.output_tokens", e.reasoning_tokens);
    if let Some(cost) = e.reported_cost_usd {
        attrs.push(kv("gen_ai.usage.cost", Value::DoubleValue(cost)));
    }
    if let Some(ttft) = e.ttft_ms {
        attrs.push(kv("gen_ai.response.time_to_first_chunk", Value::DoubleValue(ttft / 1e3)));
    }
    if let Some(finish) = &e.finish_reason {
        let values = vec![AnyValue { value: Some(Value::StringValue(finish.clone())) }];
        attrs.push(kv("gen_ai.response.finish_reasons", Value::ArrayValue(ArrayValue { values })));
    }
    push_opt_str(&mut attrs, "error.type", e.error_type.as_deref());
    push_opt_str(&mut attrs, "openai.response.service_tier", e.service_tier.as_deref());
    if let Some(input) = &e.input_content {
        attrs.push(kv("gen_ai.input.messages", Value::StringValue(input_messages(input))));
    }
    if let Some(output) = &e.output_content {
        let messages = output_messages(output, e.finish_reason.as_deref());
        attrs.push(kv("gen_ai.output.messages", Value::StringValue(messages)));
    }
    push_opt_str(&mut attrs, "driftwatch.prompt.id", e.prompt_id.as_deref());
    push_opt_str(&mut attrs, "driftwatch.prompt.version", e.prompt_version.as_deref());
    push_opt_str(&mut attrs, "driftwatch.golden.case", e.golden_case.as_deref());

    let status = if e.status == CallStatus::Error {
        Status { message: e.error_type.clone().unwrap_or_default(), code: StatusCode::Error as i32 }
    } else {
        Status::default()
    };
    Span {
        trace_id: e.trace_id.as_deref().map(hex_bytes).unwrap_or_default(),
        span_id: e.span_id.as_deref().map(hex_bytes).unwrap_or_default(),
        name: format!("{} {}", e.operation, e.request_model.as_deref().unwrap_or_default()),
        kind: SpanKind::Client as i32,
        // Sampled (W3C trace flags), and a root span, so its parent is known not to be remote, as
        // the SDKs' exporters say with the has-is-remote bit.
        flags: 0x101,
        start_time_unix_nano: nanos(e.start_time),
        end_time_unix_nano: nanos(e.time),
        attributes: attrs,
        status: Some(status),
        ..Span::default()
    }
}

/// The `gen_ai.evaluation.result` event of one feedback record, tied to the evaluated span.
pub fn log_record(f: &FeedbackEvent) -> LogRecord {
    let mut attrs = Vec::with_capacity(4);
    attrs.push(kv_str("gen_ai.evaluation.name", &f.name));
    if let Some(score) = f.score_value {
        attrs.push(kv("gen_ai.evaluation.score.value", Value::DoubleValue(score)));
    }
    push_opt_str(&mut attrs, "gen_ai.evaluation.score.label", f.score_label.as_deref());
    push_opt_str(&mut attrs, "gen_ai.response.id", f.response_id.as_deref());
    LogRecord {
        time_unix_nano: nanos(f.time),
        observed_time_unix_nano: nanos(f.time),
        severity_number: SeverityNumber::Info as i32,
        severity_text: "INFO".to_owned(),
        attributes: attrs,
        flags: 1,
        trace_id: f.trace_id.as_deref().map(hex_bytes).unwrap_or_default(),
        span_id: f.span_id.as_deref().map(hex_bytes).unwrap_or_default(),
        event_name: "gen_ai.evaluation.result".to_owned(),
        ..LogRecord::default()
    }
}

/// The resource every message of `app` carries.
pub fn resource(app: &str, environment: Option<&str>) -> Resource {
    let mut attributes = vec![kv_str("service.name", app)];
    push_opt_str(&mut attributes, "deployment.environment.name", environment);
    attributes.push(kv_str("telemetry.sdk.language", "python"));
    attributes.push(kv_str("telemetry.sdk.name", "opentelemetry"));
    attributes.push(kv_str("telemetry.sdk.version", SDK_VERSION));
    Resource { attributes, ..Resource::default() }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope { name: SCOPE_NAME.to_owned(), version: SCOPE_VERSION.to_owned(), ..Default::default() }
}

/// A traces request holding `spans` of one app.
pub fn trace_request(app: &str, environment: Option<&str>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(app, environment)),
            scope_spans: vec![ScopeSpans { scope: Some(scope()), spans, schema_url: SCHEMA_URL.to_owned() }],
            schema_url: SCHEMA_URL.to_owned(),
        }],
    }
}

/// A logs request holding `records` of one app.
pub fn logs_request(app: &str, environment: Option<&str>, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource(app, environment)),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope()),
                log_records: records,
                schema_url: SCHEMA_URL.to_owned(),
            }],
            schema_url: SCHEMA_URL.to_owned(),
        }],
    }
}

/// Protobuf or OTLP/JSON bytes of a request.
pub fn encode<M: Message + serde::Serialize>(request: &M, json: bool) -> Vec<u8> {
    if json {
        // Generated OTLP types hold only strings, numbers and bytes: serialisation cannot fail.
        let mut value = serde_json::to_value(request).unwrap_or_default();
        compact(&mut value);
        value.to_string().into_bytes()
    } else {
        request.encode_to_vec()
    }
}

/// Drops what the serde derives emit for unset fields (`null`, `""`, `[]`,
/// zero `dropped*Count`s), so the output looks like the Collector's file
/// exporter, which omits defaults as the OTLP/JSON mapping allows.
pub fn compact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|key, v| {
                compact(v);
                let zero_count = key.starts_with("dropped") && v.as_u64() == Some(0);
                let empty = match v {
                    serde_json::Value::Null => true,
                    serde_json::Value::String(s) => s.is_empty(),
                    serde_json::Value::Array(a) => a.is_empty(),
                    _ => false,
                };
                !(zero_count || empty)
            });
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(compact),
        _ => {}
    }
}

/// Open spans and log records of one app.
#[derive(Debug, Default)]
struct Batch {
    environment: Option<String>,
    spans: Vec<Span>,
    span_truth: AppTruth,
    spans_since: UnixNanos,
    logs: Vec<LogRecord>,
    log_truth: AppTruth,
    logs_since: UnixNanos,
}

/// Per-app batches, like the Collector's batch processor keyed by resource.
/// Bounded by apps x `spans_per_message` records.
#[derive(Debug, Default)]
pub struct Batcher {
    batches: BTreeMap<String, Batch>,
}

impl Batcher {
    /// Adds a record to its app's batch and emits the batch when full.
    pub fn push(&mut self, record: &FleetRecord, limit: usize, json: bool, out: &mut Vec<WireMessage>) {
        match record {
            FleetRecord::Inference(e) | FleetRecord::Retry(e) => {
                let Some(batch) = self.batch(&e.app, e.environment.as_deref()) else {
                    return;
                };
                if batch.spans.is_empty() {
                    batch.spans_since = e.time;
                }
                batch.spans.push(span(e));
                batch.span_truth.add_inference(e, matches!(record, FleetRecord::Inference(_)));
                if batch.spans.len() >= limit {
                    flush_spans(&e.app, batch, json, out);
                }
            }
            FleetRecord::Feedback(f) => {
                let Some(batch) = self.batch(&f.app, f.environment.as_deref()) else {
                    return;
                };
                if batch.logs.is_empty() {
                    batch.logs_since = f.time;
                }
                batch.logs.push(log_record(f));
                batch.log_truth.add_feedback(f);
                if batch.logs.len() >= limit {
                    flush_logs(&f.app, batch, json, out);
                }
            }
        }
    }

    /// The app's batch, created on first use; looked up by `&str` so the hot path does not allocate.
    fn batch(&mut self, app: &str, environment: Option<&str>) -> Option<&mut Batch> {
        if !self.batches.contains_key(app) {
            let batch = Batch { environment: environment.map(str::to_owned), ..Batch::default() };
            self.batches.insert(app.to_owned(), batch);
        }
        self.batches.get_mut(app)
    }

    /// Emits batches whose first record is older than `cutoff` (the batch timeout).
    pub fn flush_older_than(&mut self, cutoff: UnixNanos, json: bool, out: &mut Vec<WireMessage>) {
        for (app, batch) in &mut self.batches {
            if !batch.spans.is_empty() && batch.spans_since < cutoff {
                flush_spans(app, batch, json, out);
            }
            if !batch.logs.is_empty() && batch.logs_since < cutoff {
                flush_logs(app, batch, json, out);
            }
        }
    }

    /// Emits every open batch.
    pub fn flush_all(&mut self, json: bool, out: &mut Vec<WireMessage>) {
        for (app, batch) in &mut self.batches {
            if !batch.spans.is_empty() {
                flush_spans(app, batch, json, out);
            }
            if !batch.logs.is_empty() {
                flush_logs(app, batch, json, out);
            }
        }
    }
}

fn flush_spans(app: &str, batch: &mut Batch, json: bool, out: &mut Vec<WireMessage>) {
    let key = batch.spans.first().map(|span| super::trace_key(&span.trace_id));
    let request = trace_request(app, batch.environment.as_deref(), std::mem::take(&mut batch.spans));
    out.push(WireMessage {
        stream: Stream::Spans,
        payload: encode(&request, json),
        key,
        truth: MessageTruth {
            app: Some(app.to_owned()),
            rows: std::mem::take(&mut batch.span_truth),
            ..MessageTruth::default()
        },
    });
}

fn flush_logs(app: &str, batch: &mut Batch, json: bool, out: &mut Vec<WireMessage>) {
    let key = batch.logs.first().map(|record| super::trace_key(&record.trace_id));
    let request = logs_request(app, batch.environment.as_deref(), std::mem::take(&mut batch.logs));
    out.push(WireMessage {
        stream: Stream::Logs,
        payload: encode(&request, json),
        key,
        truth: MessageTruth {
            app: Some(app.to_owned()),
            rows: std::mem::take(&mut batch.log_truth),
            ..MessageTruth::default()
        },
    });
}
