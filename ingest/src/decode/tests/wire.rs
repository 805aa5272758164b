//! The wire reader against prost, for traces and logs: on every message prost decodes, the
//! reader either maps it exactly as the prost path does or leaves it to prost; on every message
//! prost rejects, it leaves it to prost, so prost's verdict and error stand.

use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::fixtures::fixture;
use super::{wire_logs_path, wire_path};
use crate::decode::{Decoded, PayloadFormat, fuzz_checks};
use crate::fleet::{Encoder, Fleet, FleetConfig, Stream, WireFormat};

/// Compare both paths on one traces message; true when the wire reader took it.
fn check(bytes: &[u8]) -> bool {
    fuzz_checks::wire_traces(bytes)
}

/// Compare both paths on one logs message; true when the wire reader took it.
fn check_logs(bytes: &[u8]) -> bool {
    fuzz_checks::wire_logs(bytes)
}

/// Protobuf messages of the synthetic fleet on one stream: content, errors, streaming,
/// feedback, and about 5 % malformed messages.
fn fleet_messages(stream: Stream) -> Vec<Vec<u8>> {
    let fleet =
        Fleet::new(FleetConfig { seed: 11, inferences: 2_000, malformed_ratio: 0.05, ..FleetConfig::default() });
    let mut encoder = Encoder::new(WireFormat::OtlpProto, 20, 0.05, 11);
    let mut out = Vec::new();
    for record in fleet.records() {
        encoder.push(&record, &mut out);
    }
    encoder.finish(&mut out);
    out.into_iter().filter(|m| m.stream == stream).map(|m| m.payload).collect()
}

/// Truncations, bit flips and overwritten bytes of `messages` that prost decodes.
fn corrupted(messages: &[Vec<u8>], decodes: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut cases = Vec::new();
    for message in messages.iter().filter(|m| decodes(m)).take(40) {
        for _ in 0..50 {
            let mut bytes = message.clone();
            match rng.random_range(0..3) {
                0 => bytes.truncate(rng.random_range(0..bytes.len())),
                1 => {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] ^= 1 << rng.random_range(0..8);
                }
                _ => {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] = rng.random();
                }
            }
            cases.push(bytes);
        }
    }
    cases
}

#[test]
fn python_sdk_spans_read_in_place_match_prost() {
    assert!(check(&fixture("traces.pb")), "the SDK's traces are read in place");
}

#[test]
fn a_logs_message_is_not_read_as_traces_nor_traces_as_logs() {
    assert!(wire_path(&fixture("logs.pb")).is_none());
    assert!(wire_logs_path(&fixture("traces.pb")).is_none());
}

#[test]
fn python_sdk_log_records_read_in_place_match_prost() {
    assert!(check_logs(&fixture("logs.pb")), "the SDK's logs are read in place");
}

#[test]
fn fleet_spans_and_log_records_read_in_place_match_prost() {
    for (stream, check) in [(Stream::Spans, check as fn(&[u8]) -> bool), (Stream::Logs, check_logs)] {
        let messages = fleet_messages(stream);
        let read = messages.iter().filter(|m| check(m)).count();
        let prost_ok = messages
            .iter()
            .filter(|m| match stream {
                Stream::Logs => LogsData::decode(m.as_slice()).is_ok(),
                _ => TracesData::decode(m.as_slice()).is_ok(),
            })
            .count();
        assert!(messages.len() > 20, "{stream:?}: {} messages", messages.len());
        assert_eq!(read, prost_ok, "{stream:?}: every message prost decodes is read in place");
        // The encoder puts its malformed messages on the span stream.
        if stream == Stream::Spans {
            assert!(prost_ok < messages.len(), "the malformed messages are in the mix");
        }
    }
}

#[test]
fn corrupted_messages_never_read_differently_from_prost() {
    let spans = corrupted(&fleet_messages(Stream::Spans), |m| TracesData::decode(m).is_ok());
    let logs = corrupted(&fleet_messages(Stream::Logs), |m| LogsData::decode(m).is_ok());
    assert_eq!((spans.len(), logs.len()), (2_000, 2_000));
    // Many corruptions still decode (a flipped bit in a string or a number); those must match,
    // rejects (with the copy of the item they keep) included.
    for (cases, check, wire) in [
        (&spans, check as fn(&[u8]) -> bool, wire_path as fn(&[u8]) -> Option<Decoded>),
        (&logs, check_logs, wire_logs_path),
    ] {
        assert!(cases.iter().filter(|m| check(m)).count() > 100, "few corrupted messages were read in place");
        let with_rejects = cases.iter().filter_map(|m| wire(m)).filter(|out| !out.rejects.is_empty()).count();
        assert!(with_rejects > 0, "no corrupted message read in place had a reject");
    }
}

/// Found by the `wire` fuzz target (minimised): a field key above 32 bits, whose field number
/// still fits a `u32`. prost rejects the message for it; the reader skipped it as an unknown
/// field and took the message as one holding nothing, so it left no dead letter.
#[test]
fn a_field_key_above_32_bits_is_left_to_prost_which_rejects_the_message() {
    let key_above_32_bits = [0xc8, 0xc1, 0xc8, 0xc8, 0x28, 0x00];
    assert!(!check(&key_above_32_bits), "left to prost");
    assert!(!check_logs(&key_above_32_bits), "left to prost");
    for format in [PayloadFormat::Auto, PayloadFormat::OtlpTraces, PayloadFormat::OtlpLogs] {
        let out = super::decode(&key_above_32_bits, format);
        let reasons: Vec<&str> = out.rejects.iter().map(|r| r.reason).collect();
        assert_eq!(reasons, ["malformed_protobuf"], "{format:?}");
    }
}

/// Length-delimited field `number` holding `bytes`, appended to `out`.
fn append_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// A scope written after its spans on the wire (allowed: fields come in any order) still names
/// them: the wire reader finds it before reading the spans, so a skipped scope's spans are
/// skipped by the in-place reader exactly as by prost.
#[test]
fn a_scope_written_after_its_spans_names_them() {
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    use super::{kv, s, span};

    let spans = ScopeSpans { spans: vec![span(1, vec![kv("gen_ai.operation.name", s("chat"))])], ..Default::default() };
    let mut scope_group = spans.encode_to_vec();
    append_field(
        &mut scope_group,
        1,
        &InstrumentationScope { name: "framework".into(), ..Default::default() }.encode_to_vec(),
    );
    let resource = Resource { attributes: vec![kv("service.name", s("app"))], ..Default::default() };
    let mut resource_group = ResourceSpans { resource: Some(resource), ..Default::default() }.encode_to_vec();
    append_field(&mut resource_group, 2, &scope_group);
    let mut message = Vec::new();
    append_field(&mut message, 1, &resource_group);

    let config =
        crate::decode::DecodeConfig { skip_instrumentation_scopes: vec!["framework".to_owned()], ..Default::default() };
    for (config, events, skipped) in [(crate::decode::DecodeConfig::default(), 1, 0), (config, 0, 1)] {
        let ctx = crate::decode::Ctx { config: &config, now: super::NOW };
        let mut via_wire = Decoded::default();
        assert_eq!(crate::decode::otlp_traces::decode_wire(&message, ctx, &mut via_wire), Ok(()), "left to prost");
        let data = TracesData::decode(message.as_slice()).expect("prost reads it");
        let mut via_prost = Decoded::default();
        crate::decode::otlp_traces::decode(&data, ctx, &mut via_prost);
        for (path, out) in [("wire", &via_wire), ("prost", &via_prost)] {
            assert_eq!((out.events.len(), out.skipped_spans), (events, skipped), "{path}");
        }
    }
}
