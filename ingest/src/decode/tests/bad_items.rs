//! Items that do not decode, or carry unusable ids, inside messages that otherwise do: each is
//! rejected alone, and what a reject keeps of it is masked (content) and scrubbed before it is
//! cut.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Status;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use prost::Message;

use super::{NOW, T0, decode, decode_traces, kv, s, span, traces, wire_logs_path, wire_path};
use crate::decode::{DeadLetterContent, DecodeConfig, Decoded, Decoder, PayloadFormat};
use crate::enrich::Scrubber;

fn reasons(out: &Decoded) -> Vec<&'static str> {
    out.rejects.iter().map(|r| r.reason).collect()
}

fn chat() -> opentelemetry_proto::tonic::common::v1::KeyValue {
    kv("gen_ai.operation.name", s("chat"))
}

/// Overwrite the one occurrence of `marker` in `bytes` with bytes of the same length.
fn patch(bytes: &mut [u8], marker: &[u8], with: &[u8]) {
    assert_eq!(marker.len(), with.len());
    let at = bytes.windows(marker.len()).position(|w| w == marker).expect("marker present");
    assert!(bytes[at + 1..].windows(marker.len()).all(|w| w != marker), "marker unique");
    bytes[at..at + marker.len()].copy_from_slice(with);
}

/// Three chat spans; the middle one's name is the marker `@@`, to be made invalid UTF-8.
fn three_spans_middle_named_marker() -> Vec<u8> {
    let mut middle = span(2, vec![chat()]);
    middle.name = "@@".to_owned();
    let data = traces(vec![kv("service.name", s("a"))], vec![span(1, vec![chat()]), middle, span(3, vec![chat()])]);
    data.encode_to_vec()
}

#[test]
fn a_span_that_is_not_utf8_is_rejected_alone() {
    let mut bytes = three_spans_middle_named_marker();
    patch(&mut bytes, b"@@", &[0xff, 0xfe]);
    assert!(opentelemetry_proto::tonic::trace::v1::TracesData::decode(bytes.as_slice()).is_err());
    for format in [PayloadFormat::OtlpTraces, PayloadFormat::Auto] {
        let out = decode(&bytes, format);
        let span_ids: Vec<_> = out.events.iter().map(|e| e.span_id.clone().unwrap_or_default()).collect();
        assert_eq!(span_ids, ["cdcdcdcdcdcdcd01", "cdcdcdcdcdcdcd03"], "{format:?}");
        assert_eq!(reasons(&out), ["malformed_protobuf"], "{format:?}");
        let reject = &out.rejects[0];
        assert!(reject.detail.contains("cdcdcdcdcdcdcd02"), "names the span: {}", reject.detail);
        assert!(reject.detail.contains("UTF-8"), "{}", reject.detail);
        // The span's own bytes, as protobuf (prost cannot re-serialise it as JSON).
        let payload = reject.payload.as_deref().unwrap_or_default();
        assert!(payload.windows(2).any(|w| w == [0xff, 0xfe]), "the span's bytes are kept");
        assert!(payload.len() < bytes.len(), "only the span's bytes");
    }
}

#[test]
fn a_span_whose_event_is_not_utf8_is_rejected_alone_with_its_feedback() {
    let mut middle = span(2, vec![chat()]);
    middle.events.push(Event {
        name: "gen_ai.evaluation.result".to_owned(),
        time_unix_nano: T0 as u64,
        attributes: vec![
            kv("gen_ai.evaluation.name", s("relevance")),
            kv("gen_ai.evaluation.score.value", Value::DoubleValue(1.0)),
        ],
        ..Default::default()
    });
    middle.events.push(Event { name: "@@".to_owned(), ..Default::default() });
    let mut first = span(1, vec![chat()]);
    first.events = middle.events[..1].to_vec();
    let data = traces(vec![kv("service.name", s("a"))], vec![first, middle, span(3, vec![chat()])]);
    let mut bytes = data.encode_to_vec();
    patch(&mut bytes, b"@@", &[0xc3, 0x28]);
    let out = decode(&bytes, PayloadFormat::OtlpTraces);
    assert_eq!(out.events.len(), 2);
    assert_eq!(reasons(&out), ["malformed_protobuf"]);
    // The middle span's evaluation, read before its bad event, leaves with the span.
    let rated: Vec<_> = out.feedback.iter().map(|f| f.span_id.clone().unwrap_or_default()).collect();
    assert_eq!(rated, ["cdcdcdcdcdcdcd01"]);
}

/// A length-delimited field: its key, its length, its bytes.
fn len_field(number: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

/// Spans that are each a small zstd frame inflating to megabytes (0x28 is no span field, so
/// each is rejected alone): their dead letters keep nothing, and nothing is inflated for them,
/// so a message of thousands costs what its bytes cost, not an inflation per span.
#[test]
fn compressed_items_are_rejected_alone_and_never_inflated() {
    let bomb = zstd::encode_all(&vec![0u8; 4 << 20][..], 19).expect("compressible");
    assert!(bomb.len() < 1_000, "a bomb: {} bytes", bomb.len());
    let spans: Vec<u8> = (0..200).flat_map(|_| len_field(2, &bomb)).collect();
    let request = len_field(1, &len_field(2, &spans));
    let out = decode(&request, PayloadFormat::Auto);
    assert_eq!(reasons(&out), vec!["malformed_protobuf"; 200]);
    assert!(out.rejects.iter().all(|reject| reject.payload.as_deref() == Some(&[][..])), "nothing kept or inflated");
}

/// A span the reader leaves to prost on purpose (a singular message field repeated, which prost
/// merges) is decoded by prost alone, as the whole message would have been.
#[test]
fn a_span_only_prost_reads_is_mapped_as_prost_maps_it() {
    let mut failed = span(2, vec![chat()]);
    failed.status = Some(Status { message: "boom".to_owned(), code: 2 });
    let data = traces(vec![kv("service.name", s("a"))], vec![span(1, vec![chat()]), failed.clone()]);
    // A second, empty status (field 15) after the first; merged into it, it changes nothing.
    let mut twice = failed.encode_to_vec();
    twice.extend_from_slice(&len_field(15, &[]));
    let scope_spans = [len_field(2, &span(1, vec![chat()]).encode_to_vec()), len_field(2, &twice)].concat();
    let resource = data.resource_spans[0].resource.clone().unwrap_or_default().encode_to_vec();
    let resource_spans = [len_field(1, &resource), len_field(2, &scope_spans)].concat();
    let bytes = len_field(1, &resource_spans);
    let decoded = opentelemetry_proto::tonic::trace::v1::TracesData::decode(bytes.as_slice()).expect("prost reads it");
    assert_eq!(decoded, data);

    let out = wire_path(&bytes).expect("read in place, the odd span by prost");
    super::assert_same(&out, &super::prost_path(&data));
    assert_eq!((out.events.len(), out.rejects.len()), (2, 0));
    assert_eq!(out.events[1].error_type.as_deref(), Some("boom"));
}

fn evaluation_record(n: u8, name: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: T0 as u64 + u64::from(n),
        event_name: name.to_owned(),
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 7].into_iter().chain([n]).collect(),
        attributes: vec![
            kv("gen_ai.evaluation.name", s("relevance")),
            kv("gen_ai.evaluation.score.value", Value::DoubleValue(0.5)),
        ],
        ..Default::default()
    }
}

fn logs(records: Vec<LogRecord>) -> LogsData {
    LogsData {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource { attributes: vec![kv("service.name", s("evaluator"))], ..Default::default() }),
            scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
            ..Default::default()
        }],
    }
}

#[test]
fn a_log_record_that_is_not_utf8_is_rejected_alone() {
    let mut middle = evaluation_record(2, "gen_ai.evaluation.result");
    middle.attributes.push(kv("note", s("@@")));
    let data = logs(vec![
        evaluation_record(1, "gen_ai.evaluation.result"),
        middle,
        evaluation_record(3, "gen_ai.evaluation.result"),
    ]);
    let mut bytes = data.encode_to_vec();
    patch(&mut bytes, b"@@", &[0xff, 0xfe]);
    for format in [PayloadFormat::OtlpLogs, PayloadFormat::Auto] {
        let out = decode(&bytes, format);
        let rated: Vec<_> = out.feedback.iter().map(|f| f.span_id.clone().unwrap_or_default()).collect();
        assert_eq!(rated, ["cdcdcdcdcdcdcd01", "cdcdcdcdcdcdcd03"], "{format:?}");
        assert_eq!(reasons(&out), ["malformed_protobuf"], "{format:?}");
        assert!(out.rejects[0].detail.contains("cdcdcdcdcdcdcd02"), "{}", out.rejects[0].detail);
    }
}

/// The reader takes a message of the other signal for neither: a logs message is not read as
/// spans that all fail, nor traces as failing log records, even beside items that would read.
#[test]
fn items_of_the_other_signal_leave_the_message_to_prost() {
    let data = logs(vec![LogRecord::default(), evaluation_record(1, "gen_ai.evaluation.result")]);
    let bytes = data.encode_to_vec();
    assert!(wire_path(&bytes).is_none(), "a logs message is not read as traces");
    let out = decode(&bytes, PayloadFormat::Auto);
    assert_eq!((out.feedback.len(), out.rejects.len(), out.skipped_spans), (1, 0, 1));

    let traces_bytes = traces(vec![kv("service.name", s("a"))], vec![span(1, vec![chat()])]).encode_to_vec();
    assert!(wire_logs_path(&traces_bytes).is_none(), "a traces message is not read as logs");
    assert_eq!(reasons(&decode(&traces_bytes, PayloadFormat::OtlpLogs)), ["malformed_protobuf"]);
    assert_eq!(reasons(&decode(&bytes, PayloadFormat::OtlpTraces)), ["malformed_protobuf"]);
}

#[test]
fn ids_of_the_wrong_length_are_rejected_naming_the_field() {
    let mut short_trace = span(1, vec![chat()]);
    short_trace.trace_id = vec![0x01, 0x02];
    let mut long_span = span(2, vec![chat()]);
    long_span.span_id = vec![0x0c; 9];
    let mut zero_trace = span(3, vec![chat()]);
    zero_trace.trace_id = vec![0; 16];
    let good = span(4, vec![chat()]);
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![short_trace, long_span, zero_trace, good]));
    assert_eq!(out.events.len(), 1);
    assert_eq!(reasons(&out), ["invalid_field", "invalid_field", "missing_field"]);
    assert!(out.rejects[0].detail.contains("`traceId`: 2 bytes"), "{}", out.rejects[0].detail);
    assert!(out.rejects[1].detail.contains("`spanId`: 9 bytes"), "{}", out.rejects[1].detail);

    // OTLP/JSON: hex of the wrong length.
    let json = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},"scopeSpans":[{"spans":[{"traceId":"0102","spanId":"0102030405060708","name":"c","startTimeUnixNano":"1748779200000000000","endTimeUnixNano":"1748779201000000000","attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}}]}]}]}]}"#;
    let out = decode(json.as_bytes(), PayloadFormat::Auto);
    assert_eq!(out.events.len(), 0);
    assert_eq!(reasons(&out), ["invalid_field"]);
    assert!(out.rejects[0].detail.contains("4 hex digits"), "{}", out.rejects[0].detail);

    // Feedback names the inference by the same ids.
    let mut record = evaluation_record(1, "gen_ai.evaluation.result");
    record.span_id = vec![0x0c; 4];
    let out = decode(&logs(vec![record]).encode_to_vec(), PayloadFormat::OtlpLogs);
    assert_eq!((out.feedback.len(), reasons(&out)), (0, vec!["invalid_field"]));
}

/// A rejected span whose prompt holds `secret` so that the dead-letter cut falls three bytes
/// before its end; the reject's payload and the cut. Content is kept (retention on), so that the
/// prompt reaches the cut.
fn reject_payload_with_secret_at_the_cut(secret: &str) -> (Vec<u8>, usize) {
    let rejected = |prompt: &str, cap: usize| {
        let attributes =
            vec![chat(), kv("gen_ai.usage.input_tokens", Value::IntValue(-1)), kv("gen_ai.prompt", s(prompt))];
        let data = traces(vec![kv("service.name", s("a"))], vec![span(1, attributes)]);
        let mut out = Decoded::default();
        let config = DecodeConfig { max_dead_letter_payload_bytes: cap, ..DecodeConfig::default() };
        Decoder::new(config).with_dead_letter_content(DeadLetterContent::Keep).decode(
            &data.encode_to_vec(),
            PayloadFormat::OtlpTraces,
            NOW,
            &mut out,
        );
        assert_eq!(reasons(&out), ["negative_tokens"]);
        out.rejects[0].payload.clone().unwrap_or_default()
    };
    let whole = String::from_utf8(rejected("x", usize::MAX)).unwrap_or_default();
    let prompt_at = whole.find(r#""stringValue":"x""#).expect("prompt in the copy") + r#""stringValue":""#.len();
    let pad = 30;
    let cap = prompt_at + pad + 1 + secret.len() - 3;
    (rejected(&format!("{} {secret} and more", "y".repeat(pad)), cap), cap)
}

#[test]
fn pii_the_dead_letter_cut_splits_is_masked_before_the_cut() {
    for secret in ["card 4111 1111 1111 1111", "jane.doe@example.com"] {
        let (payload, cap) = reject_payload_with_secret_at_the_cut(secret);
        // The pipeline scrubs every dead letter again: what the cut left must not match anew.
        let payload = Scrubber::new().scrub_bytes(&payload).into_owned();
        let text = String::from_utf8(payload).expect("cut on a character boundary");
        assert!(text.len() <= cap, "{} > {cap}", text.len());
        let tail = &text[text.len().saturating_sub(40)..];
        assert!(!text.contains("4111") && !text.contains("1111"), "card digits kept: {tail:?}");
        assert!(!text.contains("jane") && !text.contains("example"), "address kept: {tail:?}");
        assert!(text.contains("yyy"), "the text before the secret is kept: {tail:?}");
    }
}

#[test]
fn a_decoder_keeps_a_rejected_items_content_only_when_told_to() {
    let prompt = "CONFIDENTIAL prompt about project Falcon";
    let attributes = vec![
        chat(),
        kv("gen_ai.usage.input_tokens", Value::IntValue(-1)),
        kv("gen_ai.prompt.0.content", s(prompt)),
        kv("llm.output_messages.0.message.content", s(prompt)),
    ];
    let message = traces(vec![kv("service.name", s("a"))], vec![span(1, attributes)]).encode_to_vec();
    for (content, kept) in [(DeadLetterContent::Mask, false), (DeadLetterContent::Keep, true)] {
        let mut out = Decoded::default();
        Decoder::default().with_dead_letter_content(content).decode(&message, PayloadFormat::Auto, NOW, &mut out);
        assert_eq!(reasons(&out), ["negative_tokens"]);
        let payload = String::from_utf8_lossy(out.rejects[0].payload.as_deref().unwrap_or_default()).into_owned();
        assert_eq!(payload.contains(prompt), kept, "{content:?}: {payload}");
        let placeholder = format!("[CONTENT {} bytes]", prompt.len());
        assert_eq!(payload.matches(&placeholder).count(), if kept { 0 } else { 2 }, "{content:?}: {payload}");
    }
}

/// The copy of text kept as it is (content retained), for the cut alone.
fn dead_letter_payload(payload: &[u8], cap: usize) -> Vec<u8> {
    crate::decode::dead_letter_payload(payload, cap, DeadLetterContent::Keep)
}

#[test]
fn the_cut_keeps_whole_characters_and_whole_placeholders() {
    // A two-byte character across the cap: the cut moves before it.
    assert_eq!(dead_letter_payload("aé".as_bytes(), 2), b"a");
    assert_eq!(dead_letter_payload("aé".as_bytes(), 3), "aé".as_bytes());
    // A four-byte character, cut after any of its bytes.
    for cap in 1..=4 {
        assert_eq!(dead_letter_payload("a😀".as_bytes(), cap), b"a", "cap {cap}");
    }
    // An address the cut would split is masked; the mask the cut would split goes whole.
    let text = b"mail jane.doe@example.com now";
    assert_eq!(dead_letter_payload(text, 9), b"mail ");
    assert_eq!(dead_letter_payload(text, 12), b"mail [EMAIL]");
    assert_eq!(dead_letter_payload(text, 100), b"mail [EMAIL] now");
    // Text that only looks like a placeholder before the cut, and binary, cut as they are.
    assert_eq!(dead_letter_payload(b"[a] [NOTE", 7), b"[a] [NO");
    assert_eq!(dead_letter_payload(&[0x0a, 0x80, 0x80, 0x80, 0x80, 0x80], 5), [0x0a, 0x80]);
}
