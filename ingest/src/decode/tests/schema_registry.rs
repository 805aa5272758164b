//! Messages in a schema registry's frame decode as the JSON or protobuf inside, whatever the
//! topic's configured format, and their dead letters keep the body without the frame.

use super::{decode, kv, s, span, traces};
use crate::decode::{Decoded, PayloadFormat};
use prost::Message;

/// `body` as a registry serializer frames it: magic byte 0, the schema id, then `path` (the
/// Protobuf serializer's message-type path; the JSON Schema serializer writes none).
fn framed(schema_id: u32, path: &[u8], body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0];
    bytes.extend_from_slice(&schema_id.to_be_bytes());
    bytes.extend_from_slice(path);
    bytes.extend_from_slice(body);
    bytes
}

const EVENT: &str = r#"{"type":"inference","id":"evt-1","time":"2025-06-01T12:00:00Z","app":"bot","request_model":"gpt-4o","input_tokens":10,"output_tokens":20,"input":"the secret prompt"}"#;

fn summary(out: &Decoded) -> Vec<(String, Option<i64>, Option<i64>)> {
    out.events.iter().map(|e| (e.event_id.clone(), e.input_tokens, e.output_tokens)).collect()
}

#[test]
fn a_json_schema_frame_decodes_as_its_event() {
    let plain = decode(EVENT.as_bytes(), PayloadFormat::JsonEvents);
    assert_eq!(plain.rejects, vec![]);
    for format in [PayloadFormat::JsonEvents, PayloadFormat::Auto] {
        let out = decode(&framed(100_001, b"", EVENT.as_bytes()), format);
        assert_eq!(out.rejects, vec![], "{format:?}");
        assert_eq!(out.events, plain.events, "{format:?}");
    }
}

#[test]
fn a_protobuf_frame_decodes_as_its_otlp_request() {
    let data = traces(
        vec![kv("service.name", s("bot"))],
        vec![span(1, vec![kv("gen_ai.operation.name", s("chat")), kv("gen_ai.request.model", s("gpt-4o"))])],
    );
    let body = data.encode_to_vec();
    let plain = decode(&body, PayloadFormat::OtlpTraces);
    assert_eq!(summary(&plain).len(), 1);
    // The request is the schema file's first message type (path `[0]`, the lone byte 0) or a
    // later one (path `[2]`: count 1 and index 2, zigzag encoded as 2 and 4).
    for path in [&[0][..], &[2, 4][..]] {
        for format in [PayloadFormat::OtlpTraces, PayloadFormat::Auto] {
            let out = decode(&framed(7, path, &body), format);
            assert_eq!(out.rejects, vec![], "{path:?} {format:?}");
            assert_eq!(out.events, plain.events, "{path:?} {format:?}");
        }
    }
}

#[test]
fn a_broken_frame_is_corrupt_framing_and_a_bad_body_keeps_its_own_reason() {
    let out = decode(&[0, 0, 0], PayloadFormat::Auto);
    assert_eq!(out.rejects.iter().map(|r| r.reason).collect::<Vec<_>>(), ["corrupt_framing"]);
    assert!(out.rejects[0].detail.contains("schema registry"), "{}", out.rejects[0].detail);
    let out = decode(&framed(5, b"", b"{\"type\":\"inference\""), PayloadFormat::Auto);
    assert_eq!(out.rejects.iter().map(|r| r.reason).collect::<Vec<_>>(), ["malformed_json"]);
}

#[test]
fn the_dead_letter_of_a_framed_message_is_its_body_masked() {
    let bad = EVENT.replace("\"input_tokens\":10", "\"input_tokens\":-10");
    let message = framed(100_001, b"", bad.as_bytes());
    let kept = crate::decode::dead_letter_payload(&message, 64 * 1024, crate::decode::DeadLetterContent::Mask);
    let kept = String::from_utf8(kept).expect("the body is JSON text");
    assert!(kept.starts_with("{\"type\":\"inference\""), "{kept}");
    assert!(kept.contains("\"input\":\"[CONTENT 17 bytes]\""), "{kept}");
    assert!(!kept.contains("secret"), "{kept}");
}

/// A committed fixture (tests/fixtures), as bytes.
fn fixture(path: &str) -> Vec<u8> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(path);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// confluent-kafka's JSONSerializer and ProtobufSerializer framed the committed fixtures
/// (tests/fixtures/schema-registry/generate.py): each decodes as the plain fixture does.
#[test]
fn fixtures_framed_by_the_confluent_serializers_decode_as_the_plain_ones() {
    let framed = fixture("schema-registry/llm_events.framed");
    let mut records = Vec::new();
    let mut rest = &framed[..];
    while let Some((length, tail)) = rest.split_first_chunk::<4>() {
        let (record, tail) = tail.split_at(u32::from_be_bytes(*length) as usize);
        records.push(record);
        rest = tail;
    }
    let lines = fixture("llm_events.ndjson");
    let lines: Vec<&[u8]> = lines.split(|&b| b == b'\n').filter(|line| !line.is_empty()).collect();
    assert_eq!(records.len(), lines.len());
    for (record, line) in records.iter().zip(&lines) {
        assert_eq!(&record[..5], &[0, 0, 1, 0x86, 0xa1], "magic byte and schema id 100001");
        let (framed, plain) = (decode(record, PayloadFormat::Auto), decode(line, PayloadFormat::Auto));
        assert_eq!((&framed.events, &framed.feedback), (&plain.events, &plain.feedback));
        assert_eq!(framed.rejects.len(), plain.rejects.len());
    }

    let framed = fixture("schema-registry/traces.framed");
    let plain = fixture("otel-python/traces.pb");
    assert_eq!(framed[0], 0);
    let (framed, plain) = (decode(&framed, PayloadFormat::Auto), decode(&plain, PayloadFormat::Auto));
    assert!(!plain.events.is_empty());
    assert_eq!((&framed.events, &framed.feedback), (&plain.events, &plain.feedback));
    assert_eq!(framed.rejects, vec![]);
}
