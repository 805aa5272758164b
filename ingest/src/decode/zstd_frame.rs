//! Messages compressed whole with zstd, as the OTel Collector's file exporter writes every
//! record with `compression: zstd`: a length prefix (the file framing's), then one zstd frame
//! holding the OTLP protobuf (`format: proto`) or OTLP/JSON (`format: json`) of one export.
//! Told apart from plain input by zstd's magic number, which no JSON document, protobuf message
//! (its first byte would be the tag of field 5, which no OTLP request has) or schema-registry
//! frame starts with. Inflated within `decode.max_payload_bytes`, so a small record cannot
//! expand without bound.

use std::io::Read;

use super::{Error, Result};

/// The first four bytes of every zstd frame (its magic number, little-endian).
const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// The first byte of a zstd frame, which the file framing also accepts after a length prefix
/// whose record is still being written.
pub(crate) const FIRST_BYTE: u8 = MAGIC[0];

/// Whether `payload` is zstd-compressed.
pub(super) fn is_compressed(payload: &[u8]) -> bool {
    payload.starts_with(&MAGIC)
}

/// The inflated message, at most `limit` bytes (frames one after another are inflated in
/// turn, as zstd readers do).
pub(super) fn inflate(payload: &[u8], limit: usize) -> Result<Vec<u8>> {
    let inflated = inflate_prefix(payload, limit.saturating_add(1))?;
    if inflated.len() > limit {
        return Err(Error::InflatesTooLarge { compressed: payload.len(), limit });
    }
    Ok(inflated)
}

/// The first `limit` bytes of the inflated message (all of it when shorter).
pub(super) fn inflate_prefix(payload: &[u8], limit: usize) -> Result<Vec<u8>> {
    let corrupt = |detail: String| Error::CorruptFrame { framing: "zstd", detail };
    let decoder = zstd::stream::read::Decoder::with_buffer(payload).map_err(|error| corrupt(error.to_string()))?;
    let mut inflated = Vec::new();
    let bound = u64::try_from(limit).unwrap_or(u64::MAX);
    decoder.take(bound).read_to_end(&mut inflated).map_err(|error| corrupt(error.to_string()))?;
    Ok(inflated)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn a_message_is_inflated_within_the_limit() -> TestResult {
        let message = br#"{"resourceSpans":[]}"#;
        let compressed = zstd::encode_all(&message[..], 3)?;
        assert!(is_compressed(&compressed) && !is_compressed(message));
        assert_eq!(inflate(&compressed, message.len())?, message);
        // Two frames, as a writer appending to one record would leave: both inflated.
        let twice = [compressed.clone(), compressed].concat();
        assert_eq!(inflate(&twice, 2 * message.len())?, [&message[..], &message[..]].concat());
        Ok(())
    }

    #[test]
    fn a_message_inflating_past_the_limit_or_cut_short_is_refused() -> TestResult {
        // 1 MB of one byte compresses to a few dozen bytes: a bomb for a small limit.
        let bomb = zstd::encode_all(&vec![b' '; 1_000_000][..], 3)?;
        assert!(bomb.len() < 1_000);
        let error = inflate(&bomb, 64 * 1024).err().ok_or("inflated past the limit")?;
        assert_eq!(error.reason(), "payload_too_large", "{error}");
        let text: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_string().into_bytes()).collect();
        let whole = zstd::encode_all(&text[..], 3)?;
        let cut = &whole[..whole.len() / 2];
        let error = inflate(cut, 1 << 20).err().ok_or("a cut frame inflated")?;
        assert_eq!(error.reason(), "corrupt_framing", "{error}");
        assert_eq!(inflate_prefix(&bomb, 1000)?, vec![b' '; 1000], "a prefix stops inflating at its limit");
        let garbage = [&MAGIC[..], &[0xFF; 16][..]].concat();
        let error = inflate(&garbage, 64 * 1024).err().ok_or("garbage inflated")?;
        assert_eq!(error.reason(), "corrupt_framing", "{error}");
        Ok(())
    }
}
