//! Content masking of dead-letter copies, one payload shape at a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
use prost::Message;

use super::{DeadLetterContent, dead_letter_payload, fill_text_runs, mask_content};
use crate::decode::attributes::is_content_key;

const PROMPT: &str = "CONFIDENTIAL-PROMPT about project Falcon";
const ANSWER: &str = "SECRET-ANSWER naming the launch date";

fn masked(payload: &str) -> String {
    String::from_utf8(mask_content(payload.as_bytes()).into_owned()).unwrap()
}

fn assert_no_content(kept: &[u8]) {
    let kept = String::from_utf8_lossy(kept);
    for text in [PROMPT, ANSWER, "CONFIDENTIAL", "SECRET", "Falcon", "launch"] {
        assert!(!kept.contains(text), "{text:?} kept in {kept:?}");
    }
}

#[test]
fn content_keys_are_the_mapping_tables() {
    for key in [
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.prompt.0.content",
        "gen_ai.completion.12.content",
        "llm.input_messages.0.message.content",
        "llm.output_messages.3.message.content",
    ] {
        assert!(is_content_key(key), "{key}");
    }
    for key in ["gen_ai.request.model", "service.name", "gen_ai.prompt.0.role", "gen_ai.usage.input_tokens", ""] {
        assert!(!is_content_key(key), "{key}");
    }
}

#[test]
fn json_event_fields_become_placeholders_with_their_length() {
    let event = format!(
        r#"{{"id":"evt-1","app":"chat","input_tokens":"many","input":"{PROMPT}","output" : "{ANSWER}","note":"kept"}}"#
    );
    let expected = format!(
        r#"{{"id":"evt-1","app":"chat","input_tokens":"many","input":"[CONTENT {} bytes]","output" : "[CONTENT {} bytes]","note":"kept"}}"#,
        PROMPT.len(),
        ANSWER.len()
    );
    assert_eq!(masked(&event), expected);
    // Values of any type go whole; escaped quotes do not end a string; an escaped key is the key.
    let event = format!(r#"{{"input":["{PROMPT}",{{"a":1}}],"\u006futput":"say \"{ANSWER}\"","n":1}}"#);
    let kept = masked(&event);
    assert_no_content(kept.as_bytes());
    let value: serde_json::Value = serde_json::from_str(&kept).unwrap();
    assert_eq!(value["n"], 1);
    assert!(value["input"].as_str().unwrap().starts_with("[CONTENT "), "{kept}");
}

#[test]
fn otlp_json_content_attributes_and_bodies_are_masked_wherever_they_are() {
    let attribute = |key: &str, text: &str| format!(r#"{{"key":"{key}","value":{{"stringValue":"{text}"}}}}"#);
    let span = format!(
        r#"{{"name":"chat","attributes":[{},{},{},{{"value":{{"stringValue":"{ANSWER}"}},"key":"gen_ai.completion.0.content"}},{{"key":"nested","value":{{"kvlistValue":{{"values":[{}]}}}}}}],"events":[{{"name":"gen_ai.content.prompt","attributes":[{}]}}]}}"#,
        attribute("gen_ai.request.model", "gpt-4o"),
        attribute("gen_ai.input.messages", PROMPT),
        attribute("gen_ai.prompt.0.content", PROMPT),
        attribute("llm.output_messages.0.message.content", ANSWER),
        attribute("gen_ai.prompt", PROMPT),
    );
    let kept = masked(&span);
    assert_no_content(kept.as_bytes());
    let span: Span = serde_json::from_str(&kept).expect("still a span");
    assert_eq!(span.attributes[0].value, Some(AnyValue { value: Some(Value::StringValue("gpt-4o".to_owned())) }));
    let Some(Value::StringValue(text)) = span.attributes[1].value.as_ref().and_then(|v| v.value.as_ref()) else {
        panic!("a string placeholder: {kept}")
    };
    assert_eq!(*text, format!("[CONTENT {} bytes]", PROMPT.len()));

    let record = format!(r#"{{"eventName":"gen_ai.user.message","body":{{"kvlistValue":{{"values":[{}]}}}}}}"#, {
        attribute("content", PROMPT)
    });
    let kept = masked(&record);
    assert_no_content(kept.as_bytes());
    let record: LogRecord = serde_json::from_str(&kept).expect("still a log record");
    assert!(matches!(record.body.and_then(|b| b.value), Some(Value::StringValue(_))));
}

#[test]
fn json_cut_short_or_broken_loses_its_content_to_the_end() {
    for broken in [
        format!(r#"{{"id":"e1","input":"{PROMPT} and more"#),
        format!(r#"{{"id":"e1","input":["{PROMPT}", "#),
        format!(r#"{{"id":"e1" "input" "{PROMPT}" "output": "{ANSWER}" }}"#),
        format!(r#"{{"id":"e1","input":"{PROMPT}\"#),
        format!(r#"{{"id":"e1",,"output":{ANSWER}}}"#),
        format!(r#"{{"id":"e1", input: {PROMPT}, output: "{ANSWER}"}}"#),
    ] {
        let kept = masked(&broken);
        assert_no_content(kept.as_bytes());
        assert!(kept.starts_with(r#"{"id":"e1""#), "{kept}");
        assert!(kept.contains("[CONTENT "), "{kept}");
    }
    // JSON nested deeper than is walked: text runs are filled instead.
    let deep = format!(r#"{}{{"input":"{PROMPT}"}}"#, "[".repeat(1000));
    let kept = masked(&deep);
    assert_no_content(kept.as_bytes());
    assert_eq!(kept.len(), deep.len());
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn text(value: &str) -> Value {
    Value::StringValue(value.to_owned())
}

fn traces() -> TracesData {
    let span = Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        name: "chat".to_owned(),
        attributes: vec![
            kv("gen_ai.operation.name", text("chat")),
            kv("gen_ai.input.messages", text(PROMPT)),
            kv("gen_ai.prompt.0.content", text(PROMPT)),
            kv("tool", Value::KvlistValue(KeyValueList { values: vec![kv("gen_ai.completion", text(ANSWER))] })),
        ],
        events: vec![Event {
            name: "gen_ai.content.completion".to_owned(),
            attributes: vec![kv("gen_ai.output.messages", text(ANSWER))],
            ..Default::default()
        }],
        ..Default::default()
    };
    TracesData {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", text("chat"))], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
            ..Default::default()
        }],
    }
}

#[test]
fn protobuf_requests_are_masked_and_re_encoded() {
    let kept = mask_content(&traces().encode_to_vec()).into_owned();
    assert_no_content(&kept);
    let decoded = TracesData::decode(kept.as_slice()).expect("still a request");
    let span = &decoded.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.attributes[0], kv("gen_ai.operation.name", text("chat")));
    assert_eq!(span.attributes[1], kv("gen_ai.input.messages", text(&format!("[CONTENT {} bytes]", PROMPT.len()))));

    let logs = LogsData {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    event_name: "gen_ai.user.message".to_owned(),
                    body: Some(AnyValue { value: Some(text(PROMPT)) }),
                    attributes: vec![kv("gen_ai.output.messages", text(ANSWER)), kv("event.name", text("x"))],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let kept = mask_content(&logs.encode_to_vec()).into_owned();
    assert_no_content(&kept);
    let decoded = LogsData::decode(kept.as_slice()).expect("still a request");
    let record = &decoded.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.attributes[1], kv("event.name", text("x")));
}

#[test]
fn protobuf_that_does_not_decode_keeps_its_structure_and_no_long_text() {
    let mut broken = traces().encode_to_vec();
    broken.extend_from_slice(b"\xff\xff\xff");
    let kept = mask_content(&broken).into_owned();
    assert_no_content(&kept);
    assert_eq!(kept.len(), broken.len(), "in place");
    assert!(kept.ends_with(b"\xff\xff\xff"));
    // Short strings and the binary around them stay.
    assert!(kept.windows(4).any(|w| w == b"chat"));
    assert_eq!(fill_text_runs("ab\u{1}0123456789é\u{0}xyz".as_bytes()), "ab\u{1}************\u{0}xyz".as_bytes());
}

#[test]
fn kept_content_is_only_scrubbed_and_cut() {
    let event = format!(r#"{{"id":"evt-1","input":"{PROMPT} from jane@example.com"}}"#);
    let kept = dead_letter_payload(event.as_bytes(), 1024, DeadLetterContent::Keep);
    assert_eq!(String::from_utf8(kept).unwrap(), format!(r#"{{"id":"evt-1","input":"{PROMPT} from [EMAIL]"}}"#));
    let kept = dead_letter_payload(event.as_bytes(), 1024, DeadLetterContent::Mask);
    let len = PROMPT.len() + " from jane@example.com".len();
    assert_eq!(String::from_utf8(kept).unwrap(), format!(r#"{{"id":"evt-1","input":"[CONTENT {len} bytes]"}}"#));
}

/// The shapes that would make a careless walk quadratic, at the 4 MiB message bound: every
/// string a key to resolve, escapes everywhere, a content value never closed, attributes by
/// the thousand, nesting to the walked depth and past it. Each is read once.
#[test]
fn payloads_at_the_message_bound_are_masked_in_one_pass() {
    const BOUND: usize = 4 * 1024 * 1024;
    let repeat = |unit: &str| unit.repeat(BOUND / unit.len());
    let attribute = r#"{"value":{"stringValue":"CONFIDENTIAL"},"key":"gen_ai.prompt.7.content"},"#;
    let payloads = [
        format!("{{{}", repeat(r#""\u0069nput":"CONFIDENTIAL","#)),
        format!(r#"{{"input":"{}"#, repeat("\\\\\\\" SECRET ")),
        format!(r#"{{"attributes":[{}]}}"#, repeat(attribute)),
        format!("{}{{\"input\":\"SECRET\"", repeat(r#"{"a":["#)),
        repeat("{"),
        format!("  {}", repeat(" SECRET ")),
    ];
    for payload in payloads {
        let started = std::time::Instant::now();
        let kept = mask_content(payload.as_bytes());
        assert_no_content(&kept);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    }
}
