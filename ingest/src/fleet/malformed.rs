//! Malformed wire messages: what a buggy producer or a broken pipe puts on a
//! topic. Each one must be rejected whole by the decoder (one dead letter, no
//! rows), so messages that could be partly valid hold a single bad item.
//!
//! The [`super::Encoder`] calls [`message`] with a running sequence number so
//! every [`Kind`] shows up in turn; the result is a [`WireMessage`] marked
//! malformed in its truth, with the [`Malformation`] that tells which dead-letter
//! reason the decoder gives it. The call inside carries [`PLANTED_PII`], which
//! the dead letter's stored copy must not.

use driftwatch_lake::model::{CallStatus, InferenceEvent};
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use rand::{Rng, RngExt};

use super::encode_json::InferenceJson;
use super::encode_otlp::{compact, encode, span, trace_request};
use super::truth::MessageTruth;
use super::{DEFAULT_START, Stream, WireFormat, WireMessage};
use crate::decode::PayloadFormat;

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

/// A malformed message as its truth records it: enough to know the dead-letter reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformation {
    /// How the message is broken.
    pub kind: Kind,
    /// The encoder that built it, i.e. what it was before it broke.
    pub built_as: WireFormat,
}

impl Malformation {
    /// The dead-letter reason the decoder gives the message read as `read_as`: `auto`, as file
    /// backfill reads by default; the format of the stream it was put on
    /// ([`super::Stream::payload_format`]); or `json_events` when it does not open a JSON
    /// object, as the file source reads such a line.
    pub fn dead_letter_reason(self, read_as: PayloadFormat) -> &'static str {
        // Bytes that do not start with `{` are protobuf to every reader but a JSON-events one.
        let not_json = if read_as == PayloadFormat::JsonEvents { "malformed_json" } else { "malformed_protobuf" };
        let otlp_json = self.built_as == WireFormat::OtlpJson;
        match self.kind {
            Kind::Empty => "empty_payload",
            Kind::RandomBytes | Kind::JsonArray => not_json,
            _ if self.built_as == WireFormat::OtlpProto && read_as == PayloadFormat::JsonEvents => "malformed_json",
            Kind::Truncated if self.built_as == WireFormat::OtlpProto => "malformed_protobuf",
            Kind::Truncated => "malformed_json",
            // OTLP/JSON breaks a span's time, a u64 of nanoseconds, into text or a number past
            // u64: the request does not deserialize.
            Kind::StringForNumber | Kind::Year3000 if otlp_json => "malformed_json",
            Kind::StringForNumber => "invalid_field",
            Kind::NegativeTokens => "negative_tokens",
            Kind::Epoch1970 | Kind::Year3000 => "timestamp_out_of_range",
        }
    }
}

/// Personal data in the prompt of the call every malformed message is made from: a dead letter
/// keeps the rejected bytes, which must reach the lake scrubbed of it.
pub const PLANTED_PII: [&str; 4] = [
    "dana.whitfield@northwind.io",
    "+1 415-555-0199",
    "4111 1111 1111 1111",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwic2NvcGUiOiJpbnZvaWNlczp3cml0ZSJ9.c2lnbmF0dXJlLW9mLXRoZS1tYWxmb3JtZWQtY2FsbA",
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
        input_content: Some(format!(
            "Extract the totals from this invoice and send them to {}, or call {}. Charge card {}. Session: {}",
            PLANTED_PII[0], PLANTED_PII[1], PLANTED_PII[2], PLANTED_PII[3]
        )),
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
        // A key of its own, so that the same seed puts it on the same partition every run.
        key: Some(format!("malformed-{seq}").into_bytes()),
        truth: MessageTruth {
            app: None,
            rows: Default::default(),
            malformed: true,
            malformation: Some(Malformation { kind, built_as: format }),
        },
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

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::decode::{Decoded, Decoder};

    /// The reasons the truth expects are the decoder's, for every kind, encoder and reader the
    /// fleet's messages meet: `auto` (files), their stream's format (Kafka topics) and, for those
    /// that do not open a JSON object, `json_events` (a file line).
    #[test]
    fn every_malformed_message_gets_the_dead_letter_reason_its_truth_expects() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let decoder = Decoder::default();
        let now = DEFAULT_START + 2 * 86_400_000_000_000;
        for built_as in [WireFormat::JsonEvents, WireFormat::OtlpJson, WireFormat::OtlpProto] {
            for seq in 0..2 * KINDS.len() {
                let message = message(built_as, seq, &mut rng);
                let malformation = message.truth.malformation;
                assert_eq!(malformation, Some(Malformation { kind: KINDS[seq % KINDS.len()], built_as }));
                let opens_object = message.payload.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
                let mut readers = vec![PayloadFormat::Auto, message.stream.payload_format()];
                if !opens_object {
                    readers.push(PayloadFormat::JsonEvents);
                }
                for read_as in readers {
                    let mut out = Decoded::default();
                    decoder.decode(&message.payload, read_as, now, &mut out);
                    let reasons: Vec<&str> = out.rejects.iter().map(|reject| reject.reason).collect();
                    let expected = malformation.map(|m| m.dead_letter_reason(read_as));
                    assert_eq!(reasons, Vec::from_iter(expected), "{malformation:?} read as {read_as:?}");
                    assert!(out.events.is_empty() && out.feedback.is_empty(), "{malformation:?} yielded rows");
                }
            }
        }
    }

    #[test]
    fn malformed_messages_that_hold_a_call_carry_the_planted_pii() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        for built_as in [WireFormat::JsonEvents, WireFormat::OtlpJson, WireFormat::OtlpProto] {
            for (seq, kind) in KINDS.into_iter().enumerate() {
                let message = message(built_as, seq, &mut rng);
                let text = String::from_utf8_lossy(&message.payload);
                let carried = match kind {
                    Kind::RandomBytes | Kind::Empty => false,
                    // Cut in the middle: some of it, perhaps split.
                    Kind::Truncated => continue,
                    _ => true,
                };
                for planted in PLANTED_PII {
                    assert_eq!(text.contains(planted), carried, "{built_as:?} {kind:?}: {planted}");
                }
            }
        }
    }
}
