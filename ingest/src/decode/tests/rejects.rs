//! Every reject reason, partial rejects inside a good message, and never-panic robustness.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

use super::{NOW, T0, decode, decode_traces, kv, s, span, traces};
use crate::decode::{DecodeConfig, Decoded, Decoder, PayloadFormat};

fn reasons(out: &Decoded) -> Vec<&'static str> {
    out.rejects.iter().map(|r| r.reason).collect()
}

/// Decode one chat span with `extra` attributes; return the reject reasons.
fn span_reasons(extra: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>) -> Vec<&'static str> {
    let mut attrs = vec![kv("gen_ai.operation.name", s("chat"))];
    attrs.extend(extra);
    reasons(&decode_traces(&traces(vec![kv("service.name", s("a"))], vec![span(1, attrs)])))
}

#[test]
fn whole_message_rejects() {
    assert_eq!(reasons(&decode(b"", PayloadFormat::Auto)), ["empty_payload"]);
    assert_eq!(reasons(&decode(b"  \n", PayloadFormat::JsonEvents)), ["empty_payload"]);
    assert_eq!(reasons(&decode(b"{\"id\": ", PayloadFormat::Auto)), ["malformed_json"]);
    assert_eq!(reasons(&decode(b"{\"resourceSpans\": 5}", PayloadFormat::Auto)), ["malformed_json"]);
    assert_eq!(reasons(&decode(b"\xff\xff\xff\x01garbage", PayloadFormat::OtlpTraces)), ["malformed_protobuf"]);
    assert_eq!(reasons(&decode(b"[1,2]", PayloadFormat::JsonEvents)), ["malformed_json"]);
    assert_eq!(reasons(&decode(b"{\"app\": \"a\xff\"}", PayloadFormat::JsonEvents)), ["not_utf8"]);
    let mut out = Decoded::default();
    let config = DecodeConfig { max_payload_bytes: 8, ..DecodeConfig::default() };
    Decoder::new(config).decode(b"{\"id\":\"0123456789\"}", PayloadFormat::Auto, NOW, &mut out);
    assert_eq!(reasons(&out), ["payload_too_large"]);
    assert!(out.rejects.iter().all(|r| r.payload.is_none()));
}

/// An OTLP protobuf request starts with the tag byte 0x0a (`\n`); when its first resource is 123
/// bytes long the length byte that follows is `{`, so the message looks like JSON after
/// whitespace. It is still read as the protobuf it is, and text with leading whitespace that is
/// neither stays malformed JSON.
#[test]
fn protobuf_that_looks_like_json_after_whitespace_is_read_as_protobuf() {
    let resource_of_length = |length: usize| {
        let mut data =
            traces(vec![kv("service.name", s("a"))], vec![span(1, vec![kv("gen_ai.operation.name", s("chat"))])]);
        let mut app = String::from("a");
        while data.resource_spans[0].encoded_len() < length {
            app.push('x');
            if let Some(resource) = data.resource_spans[0].resource.as_mut() {
                resource.attributes[0] = kv("service.name", s(&app));
            }
        }
        data
    };
    let data = resource_of_length(123);
    assert_eq!(data.resource_spans[0].encoded_len(), 123);
    let bytes = data.encode_to_vec();
    assert_eq!(&bytes[..2], b"\n{");
    for format in [PayloadFormat::Auto, PayloadFormat::OtlpTraces] {
        let out = decode(&bytes, format);
        assert_eq!(reasons(&out), [] as [&str; 0], "{format:?}");
        assert_eq!(out.events.len(), 1, "{format:?}");
        assert!(out.events[0].app.starts_with("ax"));
    }
    assert_eq!(reasons(&decode(&bytes, PayloadFormat::JsonEvents)), ["not_utf8"]);
    let text = format!("\n{{\"resourceSpans\": [{}", " ".repeat(200));
    assert_eq!(reasons(&decode(text.as_bytes(), PayloadFormat::Auto)), ["malformed_json"]);
    assert_eq!(reasons(&decode(b"\n{\"id\": ", PayloadFormat::OtlpTraces)), ["malformed_json"]);
}

/// OTLP metrics sent to a traces topic (or any topic) are dead-lettered as such, not read as
/// traces that hold nothing.
#[test]
fn otlp_metrics_are_an_unsupported_signal_not_an_empty_request() {
    let metrics = br#"{"resourceMetrics":[{"resource":{"attributes":[]},"scopeMetrics":[{"metrics":[{"name":"http.server.duration"}]}]}]}"#;
    for format in [PayloadFormat::Auto, PayloadFormat::OtlpTraces, PayloadFormat::OtlpLogs, PayloadFormat::JsonEvents] {
        assert_eq!(reasons(&decode(metrics, format)), ["unsupported_signal"], "{format:?}");
    }
}

#[test]
fn span_level_rejects() {
    assert_eq!(span_reasons(vec![kv("gen_ai.usage.input_tokens", Value::IntValue(-1))]), ["negative_tokens"]);
    assert_eq!(
        span_reasons(vec![kv("gen_ai.usage.output_tokens", Value::IntValue(10_000_001))]),
        ["implausible_tokens"]
    );
    assert_eq!(span_reasons(vec![kv("gen_ai.usage.input_tokens", s("abc"))]), ["invalid_field"]);
    assert_eq!(span_reasons(vec![kv("gen_ai.usage.input_tokens", Value::DoubleValue(1.5))]), ["invalid_field"]);
    assert_eq!(
        span_reasons(vec![kv("gen_ai.response.time_to_first_chunk", Value::DoubleValue(-0.1))]),
        ["negative_latency"]
    );
    assert_eq!(
        span_reasons(vec![kv("gen_ai.response.time_to_first_chunk", Value::DoubleValue(f64::NAN))]),
        ["non_finite_number"]
    );
    let out = decode_traces(&traces(vec![], vec![span(1, vec![kv("gen_ai.operation.name", s("chat"))])]));
    assert_eq!(reasons(&out), ["missing_field"]);
    assert!(out.rejects[0].detail.contains("service.name"), "{}", out.rejects[0].detail);
}

#[test]
fn time_rejects() {
    let chat = || vec![kv("gen_ai.operation.name", s("chat"))];
    let mut backwards = span(1, chat());
    backwards.start_time_unix_nano = backwards.end_time_unix_nano + 1;
    let mut ancient = span(2, chat());
    (ancient.start_time_unix_nano, ancient.end_time_unix_nano) = (1, 1_000);
    let mut future = span(3, chat());
    future.end_time_unix_nano = (NOW + 25 * 3_600_000_000_000) as u64;
    future.start_time_unix_nano = future.end_time_unix_nano - 10;
    let mut huge = span(4, chat());
    huge.end_time_unix_nano = u64::MAX;
    let mut no_ids = span(5, chat());
    no_ids.trace_id.clear();
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![backwards, ancient, future, huge, no_ids]));
    assert_eq!(
        reasons(&out),
        [
            "negative_latency",
            "timestamp_out_of_range",
            "timestamp_out_of_range",
            "timestamp_out_of_range",
            "missing_field",
        ]
    );
    // The details say what was wrong in the fields the span has, and which times are accepted:
    // the configured earliest and now plus the allowed skew, also for a time beyond 64 bits.
    let details: Vec<&str> = out.rejects.iter().map(|r| r.detail.as_str()).collect();
    assert!(details[0].contains("`end_time - start_time` is negative (-0.000001)"), "{}", details[0]);
    assert!(details[1].contains("1970-01-01T00:00:00.000001Z"), "{}", details[1]);
    assert!(details[2].contains("2025-06-02T14:00:00Z"), "{}", details[2]);
    assert!(details[3].contains("`endTimeUnixNano` = 2554-07-21T23:34:33.709551615Z"), "{}", details[3]);
    for detail in &details[1..4] {
        assert!(detail.contains("[2000-01-01T00:00:00Z, 2025-06-02T13:00:00Z]"), "{detail}");
        assert!(!detail.contains("9223372036854775807"), "{detail}");
    }
}

#[test]
fn one_bad_span_among_good_ones_rejects_only_that_span() {
    let chat = || kv("gen_ai.operation.name", s("chat"));
    let spans = vec![
        span(1, vec![chat(), kv("gen_ai.usage.input_tokens", Value::IntValue(5))]),
        span(2, vec![chat(), kv("gen_ai.usage.input_tokens", Value::IntValue(-5))]),
        span(3, vec![chat(), kv("gen_ai.usage.input_tokens", Value::IntValue(7))]),
    ];
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], spans));
    assert_eq!(out.events.iter().map(|e| e.input_tokens).collect::<Vec<_>>(), [Some(5), Some(7)]);
    assert_eq!(reasons(&out), ["negative_tokens"]);
    let reject = &out.rejects[0];
    assert!(reject.detail.contains("cdcdcdcdcdcdcd02"), "{}", reject.detail);
    // The payload is the bad span alone, as OTLP/JSON.
    let payload: serde_json::Value = serde_json::from_slice(reject.payload.as_deref().unwrap_or_default()).unwrap();
    assert_eq!(payload["spanId"], "cdcdcdcdcdcdcd02");
}

#[test]
fn reject_payload_is_truncated() {
    let big = "x".repeat(10_000);
    let attrs = vec![
        kv("gen_ai.operation.name", s("chat")),
        kv("gen_ai.prompt", s(&big)),
        kv("gen_ai.usage.input_tokens", Value::IntValue(-1)),
    ];
    let data = traces(vec![kv("service.name", s("a"))], vec![span(1, attrs)]);
    let mut out = Decoded::default();
    let config = DecodeConfig { max_dead_letter_payload_bytes: 100, ..DecodeConfig::default() };
    Decoder::new(config).decode(&data.encode_to_vec(), PayloadFormat::Auto, NOW, &mut out);
    assert_eq!(out.rejects[0].payload.as_ref().map(Vec::len), Some(100));
}

#[test]
fn decoded_clear_keeps_nothing() {
    let mut out = decode(b"", PayloadFormat::Auto);
    out.skipped_spans = 3;
    out.clear();
    assert_eq!((out.rejects.len(), out.skipped_spans, out.events.len()), (0, 0, 0));
}

/// A small xorshift generator: deterministic, no dependency on rand's API.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_and_truncated_bytes_never_panic() {
    let good = traces(
        vec![kv("service.name", s("a"))],
        vec![span(
            1,
            vec![kv("gen_ai.operation.name", s("chat")), kv("gen_ai.usage.input_tokens", Value::IntValue(3))],
        )],
    );
    let proto = good.encode_to_vec();
    let json = serde_json::to_vec(&good).unwrap();
    let event = br#"{"id":"e1","time":"2025-06-01T12:00:00Z","app":"a","input_tokens":3,"latency_ms":12.5}"#.to_vec();
    let formats = [PayloadFormat::Auto, PayloadFormat::OtlpTraces, PayloadFormat::OtlpLogs, PayloadFormat::JsonEvents];
    let decoder = Decoder::default();
    let mut out = Decoded::default();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for seed in [&proto, &json, &event] {
        for cut in 0..seed.len() {
            for format in formats {
                decoder.decode(&seed[..cut], format, NOW, &mut out);
                out.clear();
            }
        }
        for _ in 0..2_000 {
            let mut mutated = seed.clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = (rng.next() % mutated.len() as u64) as usize;
                mutated[at] = rng.next() as u8;
            }
            for format in formats {
                decoder.decode(&mutated, format, NOW, &mut out);
                out.clear();
            }
        }
    }
    for _ in 0..2_000 {
        let len = (rng.next() % 64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        decoder.decode(&bytes, PayloadFormat::Auto, NOW, &mut out);
        out.clear();
    }
    // The unmutated seeds still decode to exactly one event each.
    for seed in [&proto, &json, &event] {
        decoder.decode(seed, PayloadFormat::Auto, NOW, &mut out);
    }
    assert_eq!((out.events.len(), out.rejects.len()), (3, 0));
    assert!(out.events.iter().all(|e| e.input_tokens == Some(3) && e.time >= T0));
}

/// The metrics create one zero series per decode reason up front, from a list kept apart from
/// [`super::super::Error::reason`]: every variant's code must be on it, and only the codes of
/// variants (plus the file framing's) may be.
#[test]
fn every_reason_code_is_in_the_metrics_list_and_nothing_else_is() {
    use super::super::Error;
    use crate::telemetry::names::DECODE_ERROR_REASONS;

    let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
    let protobuf = opentelemetry_proto::tonic::trace::v1::TracesData::decode(&b"\xff"[..]).unwrap_err();
    let field = "f";
    let every_variant = [
        Error::PayloadTooLarge { size: 2, limit: 1 },
        Error::EmptyPayload,
        Error::NotUtf8 { valid_up_to: 0 },
        Error::MalformedJson { what: "w", source: json },
        Error::MalformedProtobuf { what: "w", source: protobuf },
        Error::MissingField { field },
        Error::InvalidField { field, detail: String::new() },
        Error::NegativeTokens { field, value: -1 },
        Error::ImplausibleTokens { field, value: 2, limit: 1 },
        Error::TimestampOutOfRange { field, value: 0, min: 1, max: 2 },
        Error::NegativeLatency { field, value: -1.0 },
        Error::ImplausibleLatency { field, value: 2.0, limit: 1.0 },
        Error::NonFinite { field },
        Error::UnknownEventType { found: String::new() },
        Error::UnsupportedSignal { signal: "metrics" },
        Error::CorruptFrame { framing: "f", detail: String::new() },
    ];
    let mut codes: Vec<&str> = every_variant.iter().map(Error::reason).collect();
    // The file framing's own reason (`source::framing`).
    codes.push("corrupt_framing");
    codes.sort_unstable();
    codes.dedup();
    let mut listed = DECODE_ERROR_REASONS.to_vec();
    listed.sort_unstable();
    assert_eq!(codes, listed);
}
