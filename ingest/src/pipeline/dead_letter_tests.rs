//! What a dead letter keeps of a rejected message: its content masked unless every content
//! policy retains content, then scrubbed whole, then cut, so that PII the cut splits is masked
//! like the rest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytesize::ByteSize;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
use prost::Message;

use super::{PartitionBuffer, PayloadFormat, Processor};
use crate::aggregate::AggregateConfig;
use crate::config::{AppConfig, Config};
use crate::enrich::{Enricher, ModelRegistry};
use crate::telemetry::{Metrics, MetricsConfig};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// 2025-06-01T12:00:00Z and a little after.
const NOW: i64 = 1_748_779_300_000_000_000;

/// The payload of the one dead letter `payload` leaves, with copies cut to `cap` bytes and
/// content retained (so that the cut, not the content mask, is what is tested).
fn dead_letter_payload(
    payload: &[u8],
    format: PayloadFormat,
    cap: usize,
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut config = Config::default();
    config.decode.max_dead_letter_payload_bytes = ByteSize::b(cap as u64);
    config.default_app.retain_content = true;
    kept_payload(&config, payload, format)
}

/// The payload of the one dead letter `payload` leaves under `config`.
fn kept_payload(config: &Config, payload: &[u8], format: PayloadFormat) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let (policies, default_policy) = config.content_policies();
    let enricher = Enricher::new(Arc::new(ModelRegistry::default_embedded()?), policies, default_policy);
    let mut processor = Processor::new(config, Arc::new(enricher), Metrics::new(&MetricsConfig::default()));
    let mut buffer = PartitionBuffer::new(Arc::from("s"), Arc::from("t"), 0, 0, &AggregateConfig::default(), 100);
    processor.process(&mut buffer, payload, format, (0, 1), NOW);
    assert_eq!(buffer.dead_letters.len(), 1);
    Ok(buffer.dead_letters.remove(0).payload)
}

#[test]
fn pii_split_by_the_cut_of_a_rejected_message_is_masked() -> TestResult {
    for (secret, fragments) in
        [("card 4111 1111 1111 1111", ["4111", "1111"]), ("mail jane.doe@example.com", ["jane", "example"])]
    {
        // Not JSON (the message is cut short), so the whole message is the rejected item.
        let message = format!(r#"{{"id":"e1","app":"a","input":"{secret} and more"#);
        let cap = message.find(secret).expect("secret in message") + secret.len() - 3;
        for format in [PayloadFormat::JsonEvents, PayloadFormat::Auto] {
            let kept = dead_letter_payload(message.as_bytes(), format, cap)?;
            let kept = String::from_utf8(kept)?;
            assert!(kept.len() <= cap && kept.starts_with(r#"{"id":"e1""#), "{kept:?}");
            for fragment in fragments {
                assert!(!kept.contains(fragment), "{fragment} kept in {kept:?}");
            }
        }
    }
    Ok(())
}

const PROMPT: &str = "CONFIDENTIAL-PROMPT-DEADLETTER about project Falcon, from jane@example.com";
const ANSWER: &str = "SECRET-ANSWER: Falcon launches in May";

fn assert_no_content(kept: &[u8]) {
    let kept = String::from_utf8_lossy(kept);
    for text in ["CONFIDENTIAL", "SECRET", "Falcon", "jane", "launches"] {
        assert!(!kept.contains(text), "{text:?} kept in {kept:?}");
    }
}

/// The placeholder of `text`, as the dead letter writes it.
fn placeholder(text: &str) -> String {
    format!("[CONTENT {} bytes]", text.len())
}

/// The audit's case: a JSON event with one bad field.
fn json_event_with_a_bad_field() -> String {
    format!(
        r#"{{"id":"evt-1","time":"2025-06-01T12:00:00Z","app":"chat","request_model":"gpt-4o","input_tokens":"ten","input":"{PROMPT}","output":"{ANSWER}"}}"#
    )
}

#[test]
fn a_rejected_json_event_keeps_its_fields_but_not_its_content() -> TestResult {
    let kept = kept_payload(&Config::default(), json_event_with_a_bad_field().as_bytes(), PayloadFormat::JsonEvents)?;
    assert_no_content(&kept);
    let kept: serde_json::Value = serde_json::from_slice(&kept)?;
    assert_eq!(kept["input"], placeholder(PROMPT));
    assert_eq!(kept["output"], placeholder(ANSWER));
    for (field, value) in [("id", "evt-1"), ("app", "chat"), ("request_model", "gpt-4o"), ("input_tokens", "ten")] {
        assert_eq!(kept[field], value, "{field}");
    }
    Ok(())
}

#[test]
fn content_retained_by_every_policy_is_kept_scrubbed() -> TestResult {
    let mut config = Config::default();
    config.default_app.retain_content = true;
    let message = json_event_with_a_bad_field();
    let kept: serde_json::Value =
        serde_json::from_slice(&kept_payload(&config, message.as_bytes(), PayloadFormat::JsonEvents)?)?;
    assert_eq!(kept["input"], PROMPT.replace("jane@example.com", "[EMAIL]"));
    assert_eq!(kept["output"], ANSWER);

    // One app that does not retain content, and any dead letter could be its message.
    config.apps.push(AppConfig {
        id: "billing".to_owned(),
        team: "payments".to_owned(),
        monthly_budget_usd: None,
        max_risk_level: None,
        retain_content: false,
        scrub_pii: true,
    });
    assert_no_content(&kept_payload(&config, message.as_bytes(), PayloadFormat::JsonEvents)?);
    Ok(())
}

#[test]
fn malformed_json_keeps_no_text_of_its_input() -> TestResult {
    for message in [
        format!(r#"{{"id":"evt-1","app":"chat","input":"{PROMPT}","output":"{ANSWER}""#),
        format!(r#"{{"id":"evt-1","app":"chat","input":"{PROMPT}" "output" "{ANSWER}"}}"#),
        format!(r#"{{"id":"evt-1","app":"chat","input":"{PROMPT}"#),
    ] {
        for format in [PayloadFormat::JsonEvents, PayloadFormat::Auto] {
            let kept = kept_payload(&Config::default(), message.as_bytes(), format)?;
            assert_no_content(&kept);
            let kept = String::from_utf8(kept)?;
            assert!(kept.starts_with(r#"{"id":"evt-1","app":"chat","input":"[CONTENT "#), "{kept}");
        }
    }
    Ok(())
}

pub(super) fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

pub(super) fn text(value: &str) -> Value {
    Value::StringValue(value.to_owned())
}

/// A request whose one chat span is rejected for negative tokens, with its prompt and answer.
fn traces_with_a_rejected_span() -> TracesData {
    rejected_span_request(vec![
        kv("gen_ai.input.messages", text(PROMPT)),
        kv("gen_ai.prompt.0.content", text(PROMPT)),
        kv("gen_ai.completion.0.content", text(ANSWER)),
    ])
}

/// A request of one chat span of service `chat`, rejected for negative tokens, carrying `content`.
pub(super) fn rejected_span_request(content: Vec<KeyValue>) -> TracesData {
    let end = 1_748_779_200_000_000_000u64;
    let mut attributes =
        vec![kv("gen_ai.operation.name", text("chat")), kv("gen_ai.usage.input_tokens", Value::IntValue(-1))];
    attributes.extend(content);
    TracesData {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", text("chat"))], ..Default::default() }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![0xab; 16],
                    span_id: vec![0xcd; 8],
                    name: "chat".to_owned(),
                    start_time_unix_nano: end - 1_000_000_000,
                    end_time_unix_nano: end,
                    attributes,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn a_rejected_otlp_span_keeps_no_content_as_json_or_protobuf() -> TestResult {
    let traces = traces_with_a_rejected_span();
    let json = serde_json::to_vec(&traces)?;
    for (message, format) in [
        (traces.encode_to_vec(), PayloadFormat::OtlpTraces),
        (traces.encode_to_vec(), PayloadFormat::Auto),
        (json.clone(), PayloadFormat::OtlpTraces),
        (json, PayloadFormat::Auto),
    ] {
        let kept = kept_payload(&Config::default(), &message, format)?;
        assert_no_content(&kept);
        let span: Span = serde_json::from_slice(&kept)?;
        assert_eq!(span.attributes[1], kv("gen_ai.usage.input_tokens", Value::IntValue(-1)), "{format:?}");
        assert_eq!(span.attributes[2].key, "gen_ai.input.messages");
        assert_eq!(span.attributes[3].value, Some(AnyValue { value: Some(text(&placeholder(PROMPT))) }));
    }
    Ok(())
}

#[test]
fn a_rejected_protobuf_message_is_kept_masked_and_re_encoded() -> TestResult {
    // Protobuf on a JSON event topic: the whole request is the rejected item.
    let kept =
        kept_payload(&Config::default(), &traces_with_a_rejected_span().encode_to_vec(), PayloadFormat::JsonEvents)?;
    assert_no_content(&kept);
    let kept = TracesData::decode(kept.as_slice())?;
    let span = &kept.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.attributes[4], kv("gen_ai.completion.0.content", text(&placeholder(ANSWER))));
    Ok(())
}
