//! Messages framed for a schema registry, in the Confluent wire format that its serializers
//! write and Redpanda's, Karapace's and Apicurio's (in its Confluent mode) share: a zero magic
//! byte, the schema id as 4 big-endian bytes, then, for Protobuf schemas only, the path of the
//! message type in the schema file (a zigzag varint count, then that many zigzag varint
//! indexes; a lone 0 byte stands for the file's first type), then the serialized message.
//!
//! Producers of JSON events that must go through an organisation's registry, or of OTLP
//! protobuf registered as a Protobuf schema, send such frames; driftwatch reads what is inside
//! by its own sniffing and never asks the registry (it needs no schema to read OTLP or its JSON
//! events). A leading zero byte cannot start a JSON document or a protobuf message (field
//! number 0 is invalid), so a frame is told apart from plain input without configuration.
//! Avro frames are not read: Avro needs its writer's schema. They are refused, never taken for
//! protobuf that holds nothing.

use super::{Error, Result};

/// The magic byte that opens a frame.
const MAGIC: u8 = 0;

/// Magic byte and schema id.
const HEADER_BYTES: usize = 5;

/// The first byte of every OTLP protobuf request that holds anything: the tag of its field 1
/// (`resource_spans`, `resource_logs`), length-delimited, its only field. Checked because an
/// Avro body could otherwise pass for protobuf of unknown fields and vanish as an empty request.
const OTLP_REQUEST_START: u8 = 0x0a;

/// More indexes than this in a message-type path are taken for a corrupt frame: a path is as
/// deep as messages are nested in the schema file.
const MAX_INDEXES: u64 = 64;

/// `payload`'s body without its registry frame, or `None` when it has none (plain JSON or
/// protobuf). A JSON body follows the header directly; any other body must be a Protobuf
/// schema's OTLP request, after its message-type path. The schema id is only named in errors:
/// driftwatch reads the body by its own sniffing.
pub(super) fn unframe(payload: &[u8]) -> Option<Result<&[u8]>> {
    if payload.first() != Some(&MAGIC) {
        return None;
    }
    let Some((id, rest)) = payload[1..].split_first_chunk::<4>() else {
        let detail = format!("{} bytes, shorter than its {HEADER_BYTES}-byte header", payload.len());
        return Some(Err(corrupt(detail)));
    };
    let json = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if json {
        return Some(Ok(rest));
    }
    let body = skip_message_path(rest).and_then(|body| match body.first() {
        Some(&OTLP_REQUEST_START) => Ok(body),
        _ => Err("its body is neither JSON nor an OTLP protobuf request".to_owned()),
    });
    Some(body.map_err(|detail| {
        let schema_id = u32::from_be_bytes(*id);
        corrupt(format!("schema id {schema_id}: {detail} (an Avro frame, which driftwatch does not read?)"))
    }))
}

fn corrupt(detail: String) -> Error {
    Error::CorruptFrame { framing: "schema registry", detail }
}

/// The bytes after a Protobuf frame's message-type path.
fn skip_message_path(mut bytes: &[u8]) -> std::result::Result<&[u8], String> {
    let count = read_zigzag(&mut bytes).ok_or("its message-type path is cut short")?;
    if count > MAX_INDEXES {
        return Err(format!("its message-type path claims {count} indexes"));
    }
    for _ in 0..count {
        read_zigzag(&mut bytes).ok_or("its message-type path is cut short")?;
    }
    Ok(bytes)
}

/// One zigzag varint read off the front of `bytes`, as a magnitude: the path's count and
/// indexes are never negative in a well-formed frame, and a negative one counts as large.
fn read_zigzag(bytes: &mut &[u8]) -> Option<u64> {
    let raw = prost::encoding::decode_varint(bytes).ok()?;
    Some((raw >> 1) ^ (raw & 1).wrapping_neg())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(schema_id: u32, path: &[u8], body: &[u8]) -> Vec<u8> {
        let mut framed = vec![MAGIC];
        framed.extend_from_slice(&schema_id.to_be_bytes());
        framed.extend_from_slice(path);
        framed.extend_from_slice(body);
        framed
    }

    #[test]
    fn plain_json_and_protobuf_are_not_frames() {
        for plain in [&b"{\"type\":\"inference\"}"[..], b"\n\x05hello", b""] {
            assert!(unframe(plain).is_none(), "{plain:?}");
        }
    }

    #[test]
    fn a_json_schema_frame_holds_its_document_right_after_the_header() {
        let framed = frame(258, b"", b"{\"id\":\"a\"}");
        assert_eq!(unframe(&framed).and_then(Result::ok), Some(&b"{\"id\":\"a\"}"[..]));
        // The schema id, read big-endian, names the frame in errors.
        let Some(Err(error)) = unframe(&frame(258, b"", &[6, b'a', b'b', b'c', 2])) else { panic!("refused") };
        assert!(error.to_string().contains("schema id 258:"), "{error}");
    }

    #[test]
    fn a_protobuf_frame_holds_its_message_after_the_type_path() {
        // The first type of the file: the path is the single byte 0.
        let first = frame(7, &[0], b"\n\x02ab");
        assert_eq!(unframe(&first).and_then(Result::ok), Some(&b"\n\x02ab"[..]));
        // A nested type, path [1, 0]: count 2, then 1 and 0, all zigzag (2 -> 4, 1 -> 2).
        let nested = frame(7, &[4, 2, 0], b"\n\x02ab");
        assert_eq!(unframe(&nested).and_then(Result::ok), Some(&b"\n\x02ab"[..]));
    }

    #[test]
    fn broken_frames_are_corrupt_framing_with_what_is_wrong() {
        for (framed, says) in [
            (vec![0, 0, 1], "shorter than its 5-byte header"),
            (frame(9, &[0x80], b""), "cut short"),
            (frame(9, &[4, 2], b""), "cut short"),
            (frame(9, &[0xfe, 0x01], b"x"), "claims 127 indexes"),
            // An Avro record of a string and a long: "abc" (length 3, zigzag 6), then 1.
            (frame(9, b"", &[6, b'a', b'b', b'c', 2]), "neither JSON nor an OTLP protobuf request"),
            (frame(9, &[0], b""), "neither JSON nor an OTLP protobuf request"),
        ] {
            let Some(Err(error)) = unframe(&framed) else { panic!("{framed:?} should be refused") };
            assert_eq!(error.reason(), "corrupt_framing");
            assert!(error.to_string().contains(says), "{error}");
        }
    }
}
