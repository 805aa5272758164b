//! Fixtures written by the real OpenTelemetry Python SDK (tests/fixtures/otel-python):
//! protobuf and OTLP/JSON must both decode to the truth in expected.json.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::NOW;
use crate::decode::{Decoded, Decoder, PayloadFormat};

pub(super) fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/otel-python").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn expected() -> serde_json::Value {
    serde_json::from_slice(&fixture("expected.json")).unwrap()
}

fn decode_lines(bytes: &[u8], format: PayloadFormat) -> Decoded {
    let decoder = Decoder::default();
    let mut out = Decoded::default();
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        decoder.decode(line, format, NOW, &mut out);
    }
    out
}

fn check_traces(out: &Decoded) {
    let truth = &expected()["traces"];
    assert_eq!(out.rejects, vec![]);
    assert_eq!(out.events.len() as u64, truth["events"].as_u64().unwrap());
    assert_eq!(out.skipped_spans, truth["skipped_spans"].as_u64().unwrap());
    assert_eq!(out.feedback.len() as u64, truth["feedback"].as_u64().unwrap());
    let mut apps: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
    for e in &out.events {
        let app = apps
            .entry(&e.app)
            .or_insert_with(|| serde_json::json!({"events":0,"input_tokens":0,"output_tokens":0,"errors":0}));
        for (key, add) in [
            ("events", 1),
            ("input_tokens", e.input_tokens.unwrap_or(0)),
            ("output_tokens", e.output_tokens.unwrap_or(0)),
            ("errors", i64::from(e.status.is_error())),
        ] {
            app[key] = (app[key].as_i64().unwrap() + add).into();
        }
    }
    assert_eq!(serde_json::to_value(&apps).unwrap(), truth["apps"]);
    let mut ids: Vec<&str> = out.events.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(serde_json::to_value(&ids).unwrap(), truth["event_ids"]);
    for (id, ttft) in truth["ttft_ms"].as_object().unwrap() {
        let event = out.events.iter().find(|e| &e.event_id == id).unwrap();
        assert_eq!(event.ttft_ms, ttft.as_f64());
    }
    // Spot checks of the mapping on SDK-produced data.
    let summarizer: Vec<_> = out.events.iter().filter(|e| e.app == "summarizer").collect();
    assert!(summarizer.iter().all(|e| e.environment.as_deref() == Some("staging")));
    assert_eq!(summarizer[0].provider.as_deref(), Some("azure.ai.inference"));
    assert_eq!(summarizer[1].input_content.as_deref(), Some("You summarise.\nText to summarise"));
    let error = out.events.iter().find(|e| e.status.is_error()).unwrap();
    assert_eq!(error.error_type.as_deref(), Some("RateLimitError"));
}

fn check_logs(out: &Decoded) {
    let truth = &expected()["logs"];
    assert_eq!(out.rejects, vec![]);
    assert_eq!(out.feedback.len() as u64, truth["feedback"].as_u64().unwrap());
    assert_eq!(out.skipped_spans, truth["skipped"].as_u64().unwrap());
    let mut names: Vec<&str> = out.feedback.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(serde_json::to_value(&names).unwrap(), truth["names"]);
    let mut ids: Vec<&str> = out.feedback.iter().filter_map(|f| f.inference_id.as_deref()).collect();
    ids.sort_unstable();
    assert_eq!(serde_json::to_value(&ids).unwrap(), truth["inference_ids"]);
    let thumbs = out.feedback.iter().find(|f| f.name == "user_thumbs").unwrap();
    assert_eq!((thumbs.response_id.as_deref(), thumbs.is_flagged()), (Some("chatcmpl-001"), true));
}

fn decode_whole(bytes: &[u8], format: PayloadFormat) -> Decoded {
    let mut out = Decoded::default();
    Decoder::default().decode(bytes, format, NOW, &mut out);
    out
}

#[test]
fn python_sdk_protobuf_traces() {
    check_traces(&decode_whole(&fixture("traces.pb"), PayloadFormat::OtlpTraces));
    check_traces(&decode_whole(&fixture("traces.pb"), PayloadFormat::Auto));
}

#[test]
fn python_sdk_protobuf_logs() {
    check_logs(&decode_whole(&fixture("logs.pb"), PayloadFormat::OtlpLogs));
    check_logs(&decode_whole(&fixture("logs.pb"), PayloadFormat::Auto));
}

#[test]
fn python_sdk_otlp_json_traces() {
    check_traces(&decode_lines(&fixture("traces.jsonl"), PayloadFormat::OtlpTraces));
    check_traces(&decode_lines(&fixture("traces.jsonl"), PayloadFormat::Auto));
}

#[test]
fn python_sdk_otlp_json_logs() {
    check_logs(&decode_lines(&fixture("logs.jsonl"), PayloadFormat::OtlpLogs));
    check_logs(&decode_lines(&fixture("logs.jsonl"), PayloadFormat::Auto));
}

#[test]
fn protobuf_and_json_decode_to_the_same_events() {
    let proto = decode_whole(&fixture("traces.pb"), PayloadFormat::Auto);
    let json = decode_lines(&fixture("traces.jsonl"), PayloadFormat::Auto);
    assert_eq!(proto.events, json.events);
    assert_eq!(proto.feedback, json.feedback);
}
