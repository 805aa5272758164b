//! Unit tests for the decoders: mapping rows, rejects, fixtures, robustness.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_items;
mod fixtures;
mod fuzz_corpus;
mod instrumentations;
mod json;
mod mapping;
mod mapping_precedence;
mod rejects;
mod schema_registry;
mod wire;

use driftwatch_lake::model::InferenceEvent;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
use prost::Message;

use super::fuzz_checks::{self, assert_same};
use super::{Decoded, Decoder, PayloadFormat};

/// 2025-06-01T12:00:00Z
pub(super) const T0: i64 = 1_748_779_200_000_000_000;
pub(super) const NOW: i64 = T0 + 3_600_000_000_000;
const _: () = assert!(NOW == fuzz_checks::NOW, "the fuzz checks decode at the tests' clock");

pub(super) fn s(v: &str) -> Value {
    Value::StringValue(v.to_owned())
}

pub(super) fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

pub(super) fn array(values: &[&str]) -> Value {
    Value::ArrayValue(ArrayValue { values: values.iter().map(|v| AnyValue { value: Some(s(v)) }).collect() })
}

/// A chat span with ids derived from `n`, 1.5 s long, ending at T0 + n ms.
pub(super) fn span(n: u8, attributes: Vec<KeyValue>) -> Span {
    let end = T0 as u64 + u64::from(n) * 1_000_000;
    Span {
        trace_id: vec![0xab; 15].into_iter().chain([n]).collect(),
        span_id: vec![0xcd; 7].into_iter().chain([n]).collect(),
        name: format!("span {n}"),
        start_time_unix_nano: end - 1_500_000_000,
        end_time_unix_nano: end,
        attributes,
        ..Default::default()
    }
}

pub(super) fn traces(resource: Vec<KeyValue>, spans: Vec<Span>) -> TracesData {
    TracesData {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: resource, ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

pub(super) fn decode(payload: &[u8], format: PayloadFormat) -> Decoded {
    let mut out = Decoded::default();
    Decoder::default().decode(payload, format, NOW, &mut out);
    out
}

/// Decode `data` as a protobuf message. Every call also checks that the wire reader accepts
/// the message and maps it exactly as the prost path maps the decoded struct.
pub(super) fn decode_traces(data: &TracesData) -> Decoded {
    let bytes = data.encode_to_vec();
    let via_prost = prost_path(data);
    let mut via_wire = Decoded::default();
    assert_eq!(super::otlp_traces::decode_wire(&bytes, ctx(), &mut via_wire), Ok(()), "left to prost");
    assert_same(&via_wire, &via_prost);
    decode(&bytes, PayloadFormat::OtlpTraces)
}

fn ctx() -> super::Ctx<'static> {
    static CONFIG: std::sync::LazyLock<super::DecodeConfig> = std::sync::LazyLock::new(super::DecodeConfig::default);
    super::Ctx { config: &CONFIG, now: NOW }
}

/// What the prost path makes of a decoded message.
pub(super) fn prost_path(data: &TracesData) -> Decoded {
    fuzz_checks::prost_traces(data)
}

/// What the prost path makes of a decoded logs message.
pub(super) fn prost_logs_path(data: &LogsData) -> Decoded {
    fuzz_checks::prost_logs(data)
}

/// What the wire reader makes of a protobuf traces message; `None` when it leaves it to prost.
pub(super) fn wire_path(bytes: &[u8]) -> Option<Decoded> {
    fuzz_checks::wire_read(bytes, super::otlp_traces::decode_wire)
}

/// What the wire reader makes of a protobuf logs message; `None` when it leaves it to prost.
pub(super) fn wire_logs_path(bytes: &[u8]) -> Option<Decoded> {
    fuzz_checks::wire_read(bytes, super::otlp_logs::decode_wire)
}

/// Decode one chat span of app `app-1` carrying `extra` attributes; exactly one event expected.
pub(super) fn one_event(extra: Vec<KeyValue>) -> InferenceEvent {
    let mut attributes = vec![kv("gen_ai.operation.name", s("chat"))];
    attributes.extend(extra);
    let data = traces(vec![kv("service.name", s("app-1"))], vec![span(1, attributes)]);
    let mut out = decode_traces(&data);
    assert_eq!(out.rejects, vec![], "unexpected rejects");
    assert_eq!(out.events.len(), 1);
    out.events.remove(0)
}

#[test]
fn ids_are_lowercase_hex_and_a_span_event_id_is_trace_then_span() {
    assert_eq!(super::hex_id(&[0x01, 0xab, 0xff, 0x00]).as_deref(), Some("01abff00"));
    assert_eq!(super::hex_id(&[0; 16]), None, "an all-zero id is invalid");
    assert_eq!(super::hex_id(&[]), None, "an absent id");
    let trace = super::hex_id(&[0x5b; 16]).unwrap_or_default();
    let span = super::hex_id(&[0x0c; 8]).unwrap_or_default();
    assert_eq!(super::span_event_id(&trace, &span), format!("{}{}", "5b".repeat(16), "0c".repeat(8)));
}
