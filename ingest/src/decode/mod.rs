//! Decoding: the bytes of one Kafka message or file line become inference
//! events, feedback events and rejects.
//!
//! # Layout
//! - [`Decoder::decode`] is the entry point. It checks size and emptiness,
//!   sniffs protobuf vs JSON (JSON starts with `{` after whitespace) and
//!   dispatches on [`PayloadFormat`].
//! - `otlp_traces` maps OTLP spans to [`InferenceEvent`]s, and span events
//!   carrying evaluations to [`FeedbackEvent`]s. Protobuf spans are read in
//!   place by `otlp_wire`; OTLP/JSON, and any protobuf that reader leaves to
//!   prost, arrive decoded into the `opentelemetry-proto` types.
//! - `otlp_logs` maps `gen_ai.evaluation.result` / annotation log records to
//!   feedback, read in place from protobuf the same way.
//! - `attributes` is the DESIGN §3.2 mapping table.
//! - `json_event` decodes the `llm_events` JSON schema.
//! - `zstd_frame` inflates a message compressed whole (the Collector file exporter's
//!   `compression: zstd`), first of all.
//! - `schema_registry` takes off the frame a schema registry's serializers put around a JSON
//!   document or protobuf message, before it is sniffed.
//! - `otlp_json_salvage` takes apart an OTLP/JSON request that does not deserialize whole, so
//!   that only its bad spans or log records are rejected.
//! - `validate` applies the plausibility checks every event passes through.
//! - `dead_letter` makes the copy of a rejected payload the dead-letter table keeps: content
//!   masked unless retained, PII masked, cut to size.
//!
//! Output leaves in a reusable [`Decoded`]: events and feedback go on to
//! enrichment, rejects to the dead-letter writer. Nothing here panics on any
//! input; one bad span only rejects that span.

mod attributes;
mod dead_letter;
#[doc(hidden)]
pub mod fuzz_checks;
mod json_event;
mod otlp_json_salvage;
mod otlp_logs;
mod otlp_traces;
pub use otlp_traces::NestedSpan;
mod otlp_wire;
mod schema_registry;
mod validate;
pub(crate) mod zstd_frame;

pub use attributes::{normalize_operation, normalize_provider};
pub use dead_letter::DeadLetterContent;
use dead_letter::dead_letter_item_payload;
pub(crate) use dead_letter::dead_letter_payload;
#[cfg(test)]
pub(crate) use validate::MAX_NAME_BYTES;
use validate::ReportedCost;

use driftwatch_lake::model::{FeedbackEvent, InferenceEvent, UnixNanos};
use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

/// Why an item was rejected. Each variant maps to a stable reason code
/// ([`Error::reason`]) used as the dead-letter reason and metric label; the
/// caller's only action is to dead-letter the item and count it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message is larger than `max_payload_bytes`.
    #[error("payload is {size} bytes, above the {limit} byte limit")]
    PayloadTooLarge { size: usize, limit: usize },
    /// The message has no bytes (or only whitespace).
    #[error("payload is empty")]
    EmptyPayload,
    /// A JSON payload is not valid UTF-8.
    #[error("payload is not valid UTF-8 (first bad byte at offset {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    /// JSON syntax error or a document of the wrong shape.
    #[error("malformed JSON ({what}): {source}")]
    MalformedJson { what: &'static str, source: serde_json::Error },
    /// Protobuf that decodes as neither traces nor logs.
    #[error("malformed protobuf ({what}): {source}")]
    MalformedProtobuf { what: &'static str, source: prost::DecodeError },
    /// A required field is absent.
    #[error("missing required field `{field}`")]
    MissingField { field: &'static str },
    /// A field is present with the wrong type or an unparsable value.
    #[error("invalid field `{field}`: {detail}")]
    InvalidField { field: &'static str, detail: String },
    /// A token count below zero.
    #[error("`{field}` is negative ({value})")]
    NegativeTokens { field: &'static str, value: i64 },
    /// A token count above `max_tokens_per_call`.
    #[error("`{field}` = {value} is above the plausible maximum {limit}")]
    ImplausibleTokens { field: &'static str, value: i64, limit: i64 },
    /// An event time before `min_event_time` or too far in the future. Shown as times, so that a
    /// clock in the wrong unit is plain to see, with the bounds in force and where they come from.
    #[error(
        "`{field}` = {} ({value} ns) is outside the accepted range [{}, {}] (`decode.min_event_time` to now + \
         `decode.max_future_skew`)",
        Rfc3339(*.value),
        Rfc3339(i128::from(*.min)),
        Rfc3339(i128::from(*.max))
    )]
    TimestampOutOfRange { field: &'static str, value: i128, min: i64, max: i64 },
    /// End before start, or a negative latency / time to first token.
    #[error("`{field}` is negative ({value})")]
    NegativeLatency { field: &'static str, value: f64 },
    /// A latency or time to first token longer than any inference call takes: a unit bug
    /// (seconds sent as milliseconds, nanoseconds as milliseconds) that would poison percentiles.
    #[error("`{field}` = {value} ms is above the plausible maximum {limit} ms")]
    ImplausibleLatency { field: &'static str, value: f64, limit: f64 },
    /// A cost or score that is NaN or infinite.
    #[error("`{field}` is not a finite number")]
    NonFinite { field: &'static str },
    /// A JSON event whose `type` is neither `inference` nor `feedback`.
    #[error("unknown event type {found:?}")]
    UnknownEventType { found: String },
    /// OTLP/JSON of a signal that carries no inference calls (metrics, profiles): a Collector
    /// pipeline that sends them to driftwatch's topics.
    #[error("OTLP {signal} carry no inference calls; send only traces and logs to driftwatch's topics")]
    UnsupportedSignal { signal: &'static str },
    /// A message in a frame (a schema registry's, zstd's) that does not hold together.
    #[error("corrupt {framing} frame: {detail}")]
    CorruptFrame { framing: &'static str, detail: String },
    /// A zstd-compressed message that inflates past `max_payload_bytes`.
    #[error("{compressed} compressed bytes inflate past the {limit} byte limit")]
    InflatesTooLarge { compressed: usize, limit: usize },
}

/// Result of one decoding step.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Stable snake_case reason code (dead-letter reason and metric label).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::PayloadTooLarge { .. } | Error::InflatesTooLarge { .. } => "payload_too_large",
            Error::EmptyPayload => "empty_payload",
            Error::NotUtf8 { .. } => "not_utf8",
            Error::MalformedJson { .. } => "malformed_json",
            Error::MalformedProtobuf { .. } => "malformed_protobuf",
            Error::MissingField { .. } => "missing_field",
            Error::InvalidField { .. } => "invalid_field",
            Error::NegativeTokens { .. } => "negative_tokens",
            Error::ImplausibleTokens { .. } => "implausible_tokens",
            Error::TimestampOutOfRange { .. } => "timestamp_out_of_range",
            Error::NegativeLatency { .. } => "negative_latency",
            Error::ImplausibleLatency { .. } => "implausible_latency",
            Error::NonFinite { .. } => "non_finite_number",
            Error::UnknownEventType { .. } => "unknown_event_type",
            Error::UnsupportedSignal { .. } => "unsupported_signal",
            // The file framing's reason too (`source::framing`): the record's envelope is broken.
            Error::CorruptFrame { .. } => "corrupt_framing",
        }
    }
}

/// What the bytes of one message/line are expected to be (from topic config); `Auto` sniffs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// OTLP traces: `ExportTraceServiceRequest` protobuf or OTLP/JSON `TracesData`.
    OtlpTraces,
    /// OTLP logs: `ExportLogsServiceRequest` protobuf or OTLP/JSON `LogsData`.
    OtlpLogs,
    /// One `llm_events` JSON object (inference or feedback).
    JsonEvents,
    /// Decide per message: protobuf is tried as traces then logs; JSON by its top-level key.
    Auto,
}

/// Limits applied while decoding.
#[derive(Debug, Clone)]
pub struct DecodeConfig {
    /// Larger messages are rejected as `payload_too_large` without parsing.
    pub max_payload_bytes: usize,
    /// Reject payload copies are scrubbed, then truncated to this so the dead-letter table stays
    /// small.
    pub max_dead_letter_payload_bytes: usize,
    /// Events older than this are `timestamp_out_of_range` (catches zero/seconds-as-nanos clocks).
    pub min_event_time: UnixNanos,
    /// Events later than `now` plus this are `timestamp_out_of_range` (bad producer clocks).
    pub max_future_skew_nanos: i64,
    /// Token counts above this are `implausible_tokens` (garbage that would wreck cost sums).
    pub max_tokens_per_call: i64,
    /// Instrumentation scopes whose spans are never inference calls: a layer that reports calls
    /// another instrumentation of the same app reports too (a framework over a provider client),
    /// which would count each call twice. Their spans are skipped and counted as such.
    pub skip_instrumentation_scopes: Vec<String>,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            max_payload_bytes: 4 * 1024 * 1024,
            max_dead_letter_payload_bytes: 64 * 1024,
            // 2000-01-01T00:00:00Z
            min_event_time: 946_684_800_000_000_000,
            max_future_skew_nanos: 24 * 3600 * 1_000_000_000,
            max_tokens_per_call: 10_000_000,
            skip_instrumentation_scopes: Vec::new(),
        }
    }
}

/// Everything one [`Decoder::decode`] call produced; reused across messages to keep allocations.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Inference calls, in input order.
    pub events: Vec<InferenceEvent>,
    /// Feedback / evaluation results, in input order.
    pub feedback: Vec<FeedbackEvent>,
    /// Spans/log records that are not inference calls or feedback (never errors).
    pub skipped_spans: u64,
    /// Inference events kept without the cost their producer reported, because it was no amount
    /// (not a number, negative, NaN or infinite): that figure is only reconciled with the price
    /// driftwatch computes, so the call is kept and priced, and the dropped figure counted here.
    /// Events rejected for another reason are not counted: their reject says what was wrong.
    pub dropped_reported_costs: u64,
    /// Inference events kept without their time to first token, which was longer than the whole
    /// call (a producer's timing bug; the call's tokens and cost are still good).
    pub dropped_ttfts: u64,
    /// Items that could not be decoded or failed validation.
    pub rejects: Vec<Reject>,
    /// The inference events of this message read from spans, with their span and parent ids,
    /// so that the pipeline can skip a span that wraps another call.
    pub nested: Vec<NestedSpan>,
}

impl Decoded {
    /// Empty all outputs, keeping the allocated capacity.
    pub fn clear(&mut self) {
        self.events.clear();
        self.feedback.clear();
        self.skipped_spans = 0;
        self.dropped_reported_costs = 0;
        self.dropped_ttfts = 0;
        self.rejects.clear();
        self.nested.clear();
    }

    /// Check a mapped inference event and keep it, counting the reported cost it was read
    /// without and the time to first token dropped from it; an event that fails the checks is
    /// returned as the error, for the caller to reject with its context.
    fn keep_inference(&mut self, mut event: InferenceEvent, reported_cost: ReportedCost, ctx: Ctx<'_>) -> Result<()> {
        let ttft_dropped = validate::drop_ttft_past_the_end(&mut event);
        validate::inference(&event, ctx)?;
        self.dropped_reported_costs += u64::from(reported_cost.dropped);
        self.dropped_ttfts += u64::from(ttft_dropped);
        self.events.push(event);
        Ok(())
    }

    /// Everything decoded so far: events, feedback, skipped spans and rejects.
    fn items(&self) -> u64 {
        (self.events.len() + self.feedback.len() + self.rejects.len()) as u64 + self.skipped_spans
    }

    /// Run `decode` on these outputs; if it fails, drop everything it added, so that the
    /// message can be decoded again another way without counting anything twice.
    fn undo_on_error<E>(&mut self, decode: impl FnOnce(&mut Self) -> Result<(), E>) -> Result<(), E> {
        let (events, feedback, skipped_spans, dropped_reported_costs, dropped_ttfts, rejects, nested) = (
            self.events.len(),
            self.feedback.len(),
            self.skipped_spans,
            self.dropped_reported_costs,
            self.dropped_ttfts,
            self.rejects.len(),
            self.nested.len(),
        );
        let result = decode(self);
        if result.is_err() {
            self.events.truncate(events);
            self.feedback.truncate(feedback);
            self.skipped_spans = skipped_spans;
            self.dropped_reported_costs = dropped_reported_costs;
            self.dropped_ttfts = dropped_ttfts;
            self.rejects.truncate(rejects);
            self.nested.truncate(nested);
        }
        result
    }
}

/// One rejected item, bound for the dead-letter table.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// Stable snake_case code, also a metric label (see [`Error::reason`]).
    pub reason: &'static str,
    /// Human readable: which field / which span, what was wrong.
    pub detail: String,
    /// The offending item's bytes as `dead_letter_payload` keeps them (one span re-serialised as
    /// JSON, or its protobuf bytes when it does not decode), or `None` when the whole message is
    /// the offending item.
    pub payload: Option<Vec<u8>>,
}

impl Reject {
    fn whole(error: &Error) -> Self {
        Reject { reason: error.reason(), detail: error.to_string(), payload: None }
    }
}

/// Turns message bytes into events; holds only configuration, so one decoder
/// can serve every partition.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    config: DecodeConfig,
    /// Whether item rejects keep content (masked by default: content retention is off).
    dead_letter_content: DeadLetterContent,
}

/// Per-call context handed to the format decoders.
#[derive(Debug, Clone, Copy)]
struct Ctx<'c> {
    config: &'c DecodeConfig,
    now: UnixNanos,
}

impl Ctx<'_> {
    /// A reject for one item of a message, with its bytes as they are: [`Decoder::decode`] makes
    /// them the copy the dead-letter table keeps, once the format decoder is done.
    fn item_reject(&self, context: std::fmt::Arguments<'_>, error: &Error, payload: &[u8]) -> Reject {
        Reject { reason: error.reason(), detail: format!("{context}: {error}"), payload: Some(payload.to_vec()) }
    }

    /// Whether spans of the instrumentation scope `name` are skipped (see
    /// [`DecodeConfig::skip_instrumentation_scopes`]).
    fn skips_scope(&self, name: &str) -> bool {
        !name.is_empty() && self.config.skip_instrumentation_scopes.iter().any(|skipped| skipped == name)
    }

    /// The latest event time accepted: now plus the clock skew allowed.
    fn latest_event_time(&self) -> UnixNanos {
        self.now.saturating_add(self.config.max_future_skew_nanos)
    }

    /// The reject of an event time outside the accepted range, naming the bounds in force, also
    /// for a time that does not fit in the lake's nanoseconds.
    fn time_out_of_range(&self, field: &'static str, value: i128) -> Error {
        Error::TimestampOutOfRange { field, value, min: self.config.min_event_time, max: self.latest_event_time() }
    }
}

impl Decoder {
    /// A decoder with these limits.
    pub fn new(config: DecodeConfig) -> Self {
        Decoder { config, dead_letter_content: DeadLetterContent::default() }
    }

    /// This decoder with item rejects keeping content or not, as the content policy says.
    #[must_use]
    pub fn with_dead_letter_content(self, dead_letter_content: DeadLetterContent) -> Self {
        Decoder { dead_letter_content, ..self }
    }

    /// The limits in force.
    pub fn config(&self) -> &DecodeConfig {
        &self.config
    }

    /// Decode one Kafka message or one file line. Appends to `out`; never
    /// panics on any input; one bad span in a message with good spans rejects
    /// only that span (the good ones are kept). `now` is the ingest clock
    /// (injected for tests).
    pub fn decode(&self, payload: &[u8], format: PayloadFormat, now: UnixNanos, out: &mut Decoded) {
        let ctx = Ctx { config: &self.config, now };
        let first_reject = out.rejects.len();
        if let Err(error) = self.decode_inner(payload, format, ctx, out) {
            out.rejects.push(Reject::whole(&error));
        }
        for item in out.rejects[first_reject..].iter_mut().filter_map(|reject| reject.payload.as_mut()) {
            *item = dead_letter_item_payload(item, self.config.max_dead_letter_payload_bytes, self.dead_letter_content);
        }
    }

    fn decode_inner(&self, payload: &[u8], format: PayloadFormat, ctx: Ctx<'_>, out: &mut Decoded) -> Result<()> {
        if payload.len() > self.config.max_payload_bytes {
            return Err(Error::PayloadTooLarge { size: payload.len(), limit: self.config.max_payload_bytes });
        }
        let inflated;
        let payload = if zstd_frame::is_compressed(payload) {
            inflated = zstd_frame::inflate(payload, self.config.max_payload_bytes)?;
            &inflated[..]
        } else {
            payload
        };
        let payload = match schema_registry::unframe(payload) {
            None => payload,
            Some(body) => body?,
        };
        let Some(first) = payload.iter().position(|b| !b.is_ascii_whitespace()) else {
            return Err(Error::EmptyPayload);
        };
        if payload[first] != b'{' {
            return Self::decode_protobuf(payload, format, ctx, out);
        }
        if first == 0 || format == PayloadFormat::JsonEvents {
            return Self::decode_json(payload, format, ctx, out);
        }
        // Every OTLP protobuf request starts with the tag byte 0x0a, which is `\n`; when its first
        // length byte is 0x7b, `{`, (a 123-byte first resource) or more whitespace-valued bytes
        // lead to one, it looks like JSON after whitespace. So a message with leading whitespace
        // that is not JSON is read as protobuf before it is rejected with its JSON error.
        let json_error = match out.undo_on_error(|out| Self::decode_json(payload, format, ctx, out)) {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        // Text that passes for protobuf (unknown fields are skipped) but holds no span or log
        // record is not taken for one: it stays the malformed JSON it looks like. Nor is text
        // whose only "items" are ones protobuf could not decode.
        let (items_before, rejects_before) = (out.items(), out.rejects.len());
        let read = out.undo_on_error(|out| {
            Self::decode_protobuf(payload, format, ctx, out).map_err(drop)?;
            let unreadable = out.rejects[rejects_before..].iter().filter(|r| r.reason == "malformed_protobuf").count();
            if out.items() > items_before + unreadable as u64 { Ok(()) } else { Err(()) }
        });
        read.map_err(|()| json_error)
    }

    /// A message whose first non-blank byte is `{`, as OTLP/JSON or a JSON event.
    fn decode_json(payload: &[u8], format: PayloadFormat, ctx: Ctx<'_>, out: &mut Decoded) -> Result<()> {
        let text = std::str::from_utf8(payload).map_err(|e| Error::NotUtf8 { valid_up_to: e.valid_up_to() })?;
        let format = match (sniff_json(text), format) {
            // Read as traces or logs, it would decode to nothing, and vanish without a trace.
            (JsonKind::UnsupportedSignal(signal), _) => return Err(Error::UnsupportedSignal { signal }),
            (JsonKind::Traces, PayloadFormat::Auto) => PayloadFormat::OtlpTraces,
            (JsonKind::Logs, PayloadFormat::Auto) => PayloadFormat::OtlpLogs,
            (JsonKind::Other, PayloadFormat::Auto) => PayloadFormat::JsonEvents,
            (_, configured) => configured,
        };
        match format {
            PayloadFormat::OtlpTraces => {
                let data = match serde_json::from_str::<TracesData>(text) {
                    Ok(data) => data,
                    Err(source) => otlp_json_salvage::traces(text, ctx, out)
                        .ok_or(Error::MalformedJson { what: "OTLP/JSON traces", source })?,
                };
                otlp_traces::decode(&data, ctx, out);
            }
            PayloadFormat::OtlpLogs => {
                let data = match serde_json::from_str::<LogsData>(text) {
                    Ok(data) => data,
                    Err(source) => otlp_json_salvage::logs(text, ctx, out)
                        .ok_or(Error::MalformedJson { what: "OTLP/JSON logs", source })?,
                };
                otlp_logs::decode(&data, ctx, out);
            }
            PayloadFormat::JsonEvents | PayloadFormat::Auto => {
                json_event::decode(text, ctx, out)?;
            }
        }
        Ok(())
    }

    /// A binary message, as OTLP protobuf. It is read in place; prost decodes what that reader
    /// does not accept, and its verdict (and error) stands.
    fn decode_protobuf(payload: &[u8], format: PayloadFormat, ctx: Ctx<'_>, out: &mut Decoded) -> Result<()> {
        match format {
            PayloadFormat::OtlpTraces => {
                if otlp_traces::decode_wire(payload, ctx, out).is_err() {
                    let data = TracesData::decode(payload)
                        .map_err(|source| Error::MalformedProtobuf { what: "ExportTraceServiceRequest", source })?;
                    otlp_traces::decode(&data, ctx, out);
                }
            }
            PayloadFormat::OtlpLogs => {
                if otlp_logs::decode_wire(payload, ctx, out).is_err() {
                    let data = LogsData::decode(payload)
                        .map_err(|source| Error::MalformedProtobuf { what: "ExportLogsServiceRequest", source })?;
                    otlp_logs::decode(&data, ctx, out);
                }
            }
            PayloadFormat::Auto if otlp_traces::decode_wire(payload, ctx, out).is_ok() => {}
            PayloadFormat::Auto => match TracesData::decode(payload) {
                Ok(data) => otlp_traces::decode(&data, ctx, out),
                // Logs share the top-level field number with traces but differ
                // below it, so a logs message fails the traces decode.
                Err(_) if otlp_logs::decode_wire(payload, ctx, out).is_ok() => {}
                Err(traces_error) => match LogsData::decode(payload) {
                    Ok(data) => otlp_logs::decode(&data, ctx, out),
                    Err(_) => {
                        return Err(Error::MalformedProtobuf {
                            what: "neither ExportTraceServiceRequest nor ExportLogsServiceRequest",
                            source: traces_error,
                        });
                    }
                },
            },
            PayloadFormat::JsonEvents => {
                let source = serde::de::Error::custom("a JSON event must be an object starting with `{`");
                return Err(Error::MalformedJson { what: "JSON event", source });
            }
        }
        Ok(())
    }
}

/// What a JSON payload holds, by its top-level key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonKind {
    Traces,
    Logs,
    /// An OTLP signal that carries no inference calls (metrics, profiles).
    UnsupportedSignal(&'static str),
    /// Not OTLP: a JSON event, or malformed.
    Other,
}

/// Tell the JSON flavour by the top-level key. The Collector's exporters put
/// `resourceSpans`/`resourceLogs` (`resourceMetrics`, ...) first, so looking at the first key is
/// enough and avoids scanning large event bodies.
fn sniff_json(text: &str) -> JsonKind {
    let rest = text.trim_start().trim_start_matches('{').trim_start();
    [
        ("\"resourceSpans\"", JsonKind::Traces),
        ("\"resourceLogs\"", JsonKind::Logs),
        ("\"resourceMetrics\"", JsonKind::UnsupportedSignal("metrics")),
        ("\"resourceProfiles\"", JsonKind::UnsupportedSignal("profiles")),
    ]
    .into_iter()
    .find_map(|(key, kind)| rest.starts_with(key).then_some(kind))
    .unwrap_or(JsonKind::Other)
}

/// Lowercase hex of id bytes; `None` for absent or all-zero (invalid) ids.
fn hex_id(bytes: &[u8]) -> Option<String> {
    /// The two hex digits of every byte value.
    const PAIRS: [[u8; 2]; 256] = {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut pairs = [[0; 2]; 256];
        let mut byte = 0;
        while byte < 256 {
            pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0x0f]];
            byte += 1;
        }
        pairs
    };
    if bytes.iter().all(|&b| b == 0) {
        return None;
    }
    // Digit pairs into a byte vector: `String::push` re-encodes every char as UTF-8, which
    // cost more than the rest of the id's handling for every span.
    let mut digits = Vec::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        digits.extend_from_slice(&PAIRS[usize::from(byte)]);
    }
    String::from_utf8(digits).ok()
}

/// Bytes of an OTLP trace id (W3C trace context).
const TRACE_ID_BYTES: usize = 16;
/// Bytes of an OTLP span id (W3C trace context).
const SPAN_ID_BYTES: usize = 8;

/// Lowercase hex of a span's trace id; `None` when absent or all zero, as [`hex_id`].
fn trace_id_hex(bytes: &[u8]) -> Result<Option<String>> {
    sized_id_hex(bytes, "traceId", TRACE_ID_BYTES)
}

/// Lowercase hex of a span id; `None` when absent or all zero, as [`hex_id`].
fn span_id_hex(bytes: &[u8]) -> Result<Option<String>> {
    sized_id_hex(bytes, "spanId", SPAN_ID_BYTES)
}

/// An id of another length than OTLP's is a producer bug, and event ids join the trace and span
/// ids without a separator: ids of varying lengths could join into the same event id.
fn sized_id_hex(bytes: &[u8], field: &'static str, expected: usize) -> Result<Option<String>> {
    let Some(hex) = hex_id(bytes) else { return Ok(None) };
    if bytes.len() != expected {
        return Err(Error::InvalidField {
            field,
            detail: format!(
                "{} bytes ({} hex digits), expected {expected} bytes ({} hex digits)",
                bytes.len(),
                hex.len(),
                expected * 2
            ),
        });
    }
    Ok(Some(hex))
}

/// A span's event id (DESIGN §3, "Producers retry"): its trace id then its span id, both in
/// hex. Concatenated directly: `format!` went through the formatting machinery for every span.
fn span_event_id(trace_hex: &str, span_hex: &str) -> String {
    let mut id = String::with_capacity(trace_hex.len() + span_hex.len());
    id.push_str(trace_hex);
    id.push_str(span_hex);
    id
}

/// OTLP times are unsigned; the lake's are signed. Values above `i64::MAX` are out of range.
fn otlp_time(field: &'static str, nanos: u64, ctx: Ctx<'_>) -> Result<UnixNanos> {
    i64::try_from(nanos).map_err(|_| ctx.time_out_of_range(field, i128::from(nanos)))
}

/// Unix nanoseconds shown as an RFC 3339 UTC time, with sub-seconds only when there are some;
/// as nanoseconds when no calendar date holds them.
struct Rfc3339(i128);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seconds = i64::try_from(self.0.div_euclid(1_000_000_000)).ok();
        let nanos = u32::try_from(self.0.rem_euclid(1_000_000_000)).ok();
        match seconds.zip(nanos).and_then(|(seconds, nanos)| chrono::DateTime::from_timestamp(seconds, nanos)) {
            Some(time) => f.write_str(&time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            None => write!(f, "{} ns", self.0),
        }
    }
}

#[cfg(test)]
mod tests;
