//! Unit tests for the decoders: mapping rows, rejects, fixtures, robustness.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;
mod json;
mod mapping;
mod rejects;

use driftwatch_lake::model::InferenceEvent;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
use prost::Message;

use super::{Decoded, Decoder, PayloadFormat};

/// 2025-06-01T12:00:00Z
pub(super) const T0: i64 = 1_748_779_200_000_000_000;
pub(super) const NOW: i64 = T0 + 3_600_000_000_000;

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

pub(super) fn decode_traces(data: &TracesData) -> Decoded {
    decode(&data.encode_to_vec(), PayloadFormat::OtlpTraces)
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
