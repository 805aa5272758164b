//! Malformed wire messages: what a buggy producer or a broken pipe puts on a
//! topic. Each one must be rejected whole by the decoder (one dead letter, no
//! rows), so messages that could be partly valid hold a single bad item.
//!
//! The [`super::Encoder`] calls [`message`] with a running sequence number so
//! every [`Kind`] shows up in turn; the result is a [`WireMessage`] marked
//! malformed in its truth.

use driftwatch_lake::model::{CallStatus, InferenceEvent};
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use rand::{Rng, RngExt};

use super::encode_json::InferenceJson;
use super::encode_otlp::{compact, encode, span, trace_request};
use super::truth::MessageTruth;
use super::{DEFAULT_START, Stream, WireFormat, WireMessage};

/// The ways a message can be broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Valid message cut in the middle.
    Truncated,
    /// A string where a number belongs.
    StringForNumber,
    /// Negative token counts.
    NegativeTokens,
    /// Event time in 1970.
    Epoch1970,
    /// Event time in the year 3000 (or the largest time OTLP can carry).
    Year3000,
    /// Bytes that are neither JSON nor protobuf.
    RandomBytes,
    /// Zero bytes.
    Empty,
    /// A JSON array instead of an object.
    JsonArray,
}

/// Every kind, in the order the encoder cycles through them.
pub const KINDS: [Kind; 8] = [
    Kind::Truncated,
    Kind::StringForNumber,
    Kind::NegativeTokens,
    Kind::Epoch1970,
    Kind::Year3000,
    Kind::RandomBytes,
    Kind::Empty,
    Kind::JsonArray,
];

/// 3000-01-01T00:00:00Z in seconds.
const YEAR_3000_SECS: i64 = 32_503_680_000;
const APP: &str = "invoice-extractor";

/// A plausible call to break.
fn sample(rng: &mut (impl Rng + ?Sized)) -> InferenceEvent {
    let time = DEFAULT_START + rng.random_range(0..86_400_000_000_000i64);
    InferenceEvent {
        event_id: "4bf92f3577b34da6a3ce929d0e0e4736a3ce929d0e0e4736".to_owned(),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned()),
        span_id: Some("a3ce929d0e0e4736".to_owned()),
        response_id: Some("chatcmpl-malformed0000000000000".to_owned()),
        time,
        start_time: time - 1_200_000_000,
        app: APP.to_owned(),
        environment: Some("prod".to_owned()),
        provider: Some("openai".to_owned()),
        operation: "chat".to_owned(),
        request_model: Some("gpt-4o-mini".to_owned()),
        response_model: Some("gpt-4o-mini-2024-07-18".to_owned()),
        prompt_id: Some("invoice-extractor.main".to_owned()),
        prompt_version: Some("v1".to_owned()),
        input_tokens: Some(1800),
        output_tokens: Some(210),
        latency_ms: Some(1200.0),
        status: CallStatus::Ok,
        finish_reason: Some("stop".to_owned()),
        input_content: Some("Extract the totals from this invoice.".to_owned()),
        output_content: Some("{\"total\": 1842.50}".to_owned()),
        ..InferenceEvent::default()
    }
}

/// Bytes that fail both JSON and protobuf decoding: a non-`{` first byte and
/// a protobuf tag with the invalid wire type 7.
fn garbage(rng: &mut (impl Rng + ?Sized)) -> Vec<u8> {
    let mut bytes = vec![0x0f, 0xff];
    bytes.extend((0..rng.random_range(16..64)).map(|_| rng.random::<u8>()));
    bytes
}

/// The `kind`-th malformed message for `format` (kinds cycle with `seq`).
pub fn message(format: WireFormat, seq: usize, rng: &mut (impl Rng + ?Sized)) -> WireMessage {
    let kind = KINDS[seq % KINDS.len()];
    let (stream, payload) = match format {
        WireFormat::JsonEvents => (Stream::Events, json_event(kind, rng)),
        WireFormat::OtlpJson => (Stream::Spans, otlp(kind, true, rng)),
        WireFormat::OtlpProto => (Stream::Spans, otlp(kind, false, rng)),
    };
    WireMessage {
        stream,
        payload,
        key: None,
        truth: MessageTruth { app: None, rows: Default::default(), malformed: true },
    }
}

fn json_event(kind: Kind, rng: &mut (impl Rng + ?Sized)) -> Vec<u8> {
    let event = sample(rng);
    let mut value = serde_json::to_value(InferenceJson::new(&event)).unwrap_or_default();
    match kind {
        Kind::Truncated => {
            let mut text = value.to_string().into_bytes();
            text.truncate(text.len() / 2);
            return text;
        }
        Kind::StringForNumber => value["input_tokens"] = "eighteen hundred".into(),
        Kind::NegativeTokens => value["output_tokens"] = (-210).into(),
        Kind::Epoch1970 => value["time"] = "1970-01-01T00:00:01.000000000Z".into(),
        Kind::Year3000 => value["time"] = "3000-01-01T00:00:00.000000000Z".into(),
        Kind::RandomBytes => return garbage(rng),
        Kind::Empty => return Vec::new(),
        Kind::JsonArray => {
            return serde_json::Value::Array(vec![value]).to_string().into_bytes();
        }
    }
    value.to_string().into_bytes()
}

fn otlp(kind: Kind, json: bool, rng: &mut (impl Rng + ?Sized)) -> Vec<u8> {
    let event = sample(rng);
    let mut s = span(&event);
    let set_int = |s: &mut opentelemetry_proto::tonic::trace::v1::Span, key: &str, value: Value| {
        if let Some(attr) = s.attributes.iter_mut().find(|a| a.key == key) {
            attr.value = Some(AnyValue { value: Some(value) });
        }
    };
    match kind {
        Kind::Truncated => {
            let mut bytes = encode(&trace_request(APP, Some("prod"), vec![s]), json);
            bytes.truncate(bytes.len() / 2);
            return bytes;
        }
        Kind::StringForNumber => {
            if json {
                let request = trace_request(APP, Some("prod"), vec![s]);
                let mut value = serde_json::to_value(&request).unwrap_or_default();
                compact(&mut value);
                value["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] = "yesterday".into();
                return value.to_string().into_bytes();
            }
            set_int(&mut s, "gen_ai.usage.input_tokens", Value::StringValue("eighteen hundred".to_owned()));
        }
        Kind::NegativeTokens => {
            set_int(&mut s, "gen_ai.usage.output_tokens", Value::IntValue(-210));
        }
        Kind::Epoch1970 => {
            s.start_time_unix_nano = 1_000_000_000;
            s.end_time_unix_nano = 2_000_000_000;
        }
        Kind::Year3000 => {
            if json {
                // Year 3000 does not fit a u64 of nanoseconds: the decoder must reject the number.
                let request = trace_request(APP, Some("prod"), vec![s]);
                let mut value = serde_json::to_value(&request).unwrap_or_default();
                compact(&mut value);
                let end = format!("{YEAR_3000_SECS}000000000");
                value["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["endTimeUnixNano"] = end.into();
                return value.to_string().into_bytes();
            }
            s.start_time_unix_nano = u64::MAX - 1_000_000_000;
            s.end_time_unix_nano = u64::MAX;
        }
        Kind::RandomBytes => return garbage(rng),
        Kind::Empty => return Vec::new(),
        Kind::JsonArray => {
            let request = trace_request(APP, Some("prod"), vec![s]);
            let mut value = serde_json::to_value(&request).unwrap_or_default();
            compact(&mut value);
            return serde_json::Value::Array(vec![value]).to_string().into_bytes();
        }
    }
    encode(&trace_request(APP, Some("prod"), vec![s]), json)
}
