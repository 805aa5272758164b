//! Framing of file input: where one message ends and the next begins, with each message's
//! byte offset in the file (the file source's position).
//!
//! - [`Framing::Lines`]: OTLP/JSON lines (the OTel Collector file exporter's JSON format) or
//!   NDJSON events; `\n` or `\r\n` terminated, a last line without newline included.
//! - [`Framing::LengthPrefixed`]: binary OTLP as the Collector file exporter writes it with
//!   `format: proto`: each message preceded by its length as a 32-bit big-endian integer.
//!
//! The reader owns one block buffer that grows only to hold one record (bounded by the largest
//! accepted message), so memory does not depend on file size.

/// How records are delimited in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One message per line.
    Lines,
    /// `u32` big-endian length, then that many bytes, repeated.
    LengthPrefixed,
}

impl Framing {
    /// Guess from the first byte of a file: JSON text starts with `{` or whitespace.
    pub fn sniff(first_byte: Option<u8>) -> Self {
        match first_byte {
            Some(byte) if byte == b'{' || byte == b'[' || byte.is_ascii_whitespace() => Framing::Lines,
            None => Framing::Lines,
            Some(_) => Framing::LengthPrefixed,
        }
    }
}

/// Bytes read per block.
const READ_BLOCK_BYTES: usize = 1 << 20;

/// A record: its bytes, its offset in the file and the offset just after it.
pub type Record<'a> = (&'a [u8], i64, i64);

/// Splits a byte stream into records while tracking each record's byte offset.
#[derive(Debug)]
pub struct RecordReader {
    framing: Framing,
    block: Vec<u8>,
    /// Bytes of `block` holding data; the rest is the read target.
    filled: usize,
    /// Bytes of `block` already handed out as records.
    consumed: usize,
    /// File offset of `block[0]`.
    base_offset: i64,
    /// Largest length prefix accepted; a larger one means the framing is corrupt.
    max_record_bytes: usize,
    /// Set when a length prefix was corrupt: nothing after it can be trusted as a boundary.
    framing_lost: bool,
    /// Bytes skipped after the framing was lost.
    pub skipped_bytes: u64,
}

impl RecordReader {
    /// A reader whose first byte is at file offset `start`.
    pub fn new(framing: Framing, start: i64, max_record_bytes: usize) -> Self {
        Self {
            framing,
            block: vec![0; READ_BLOCK_BYTES],
            filled: 0,
            consumed: 0,
            base_offset: start,
            max_record_bytes,
            framing_lost: false,
            skipped_bytes: 0,
        }
    }

    /// Where the next read goes. Grows the block when one record is larger than it.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.filled == self.block.len() {
            let grown = self.block.len() * 2;
            self.block.resize(grown, 0);
        }
        &mut self.block[self.filled..]
    }

    /// Account for `read` new bytes and return the complete records. At the end of input an
    /// unterminated last line, or a truncated last length-prefixed record, is returned too (the
    /// decoder dead-letters what it cannot parse).
    pub fn advance(&mut self, read: usize, at_end: bool) -> Vec<Record<'_>> {
        self.filled += read;
        let start = self.consumed;
        let base = self.base_offset + start as i64;
        let data = &self.block[start..self.filled];
        let mut records = Vec::new();
        let mut position = 0usize;
        match self.framing {
            Framing::Lines => {
                while position < data.len() {
                    let rest = &data[position..];
                    let length = match memchr::memchr(b'\n', rest) {
                        Some(i) => i + 1,
                        None if at_end => rest.len(),
                        None => break,
                    };
                    let mut line = &rest[..length];
                    while let [head @ .., b'\n' | b'\r'] = line {
                        line = head;
                    }
                    records.push((line, base + position as i64, base + (position + length) as i64));
                    position += length;
                }
            }
            Framing::LengthPrefixed => {
                while position < data.len() {
                    let rest = &data[position..];
                    if self.framing_lost {
                        self.skipped_bytes += rest.len() as u64;
                        position = data.len();
                        break;
                    }
                    let Some(header) = rest.get(..4) else {
                        if at_end {
                            records.push((rest, base + position as i64, base + data.len() as i64));
                            position = data.len();
                        }
                        break;
                    };
                    let declared = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
                    if declared > self.max_record_bytes {
                        // The prefix is garbage: hand it over as a bad record and skip the rest.
                        self.framing_lost = true;
                        records.push((header, base + position as i64, base + (position + 4) as i64));
                        position += 4;
                        continue;
                    }
                    let total = 4 + declared;
                    if rest.len() < total {
                        if at_end {
                            records.push((&rest[4..], base + position as i64, base + data.len() as i64));
                            position = data.len();
                        }
                        break;
                    }
                    records.push((&rest[4..total], base + position as i64, base + (position + total) as i64));
                    position += total;
                }
            }
        }
        self.consumed = start + position;
        records
    }

    /// Move the unconsumed tail (a partial record) to the front of the block.
    pub fn compact(&mut self) {
        self.block.copy_within(self.consumed..self.filled, 0);
        self.base_offset += self.consumed as i64;
        self.filled -= self.consumed;
        self.consumed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(reader: &mut RecordReader, input: &[u8], at_end: bool) -> Vec<(Vec<u8>, i64, i64)> {
        let spare = reader.spare();
        spare[..input.len()].copy_from_slice(input);
        let out = reader.advance(input.len(), at_end).into_iter().map(|(l, a, b)| (l.to_vec(), a, b)).collect();
        reader.compact();
        out
    }

    #[test]
    fn lines_carry_exact_byte_offsets_across_blocks() {
        let mut reader = RecordReader::new(Framing::Lines, 100, 1 << 20);
        let first = feed(&mut reader, b"ab\r\ncd\nef", false);
        assert_eq!(first, vec![(b"ab".to_vec(), 100, 104), (b"cd".to_vec(), 104, 107)]);
        let second = feed(&mut reader, b"g\nh", false);
        assert_eq!(second, vec![(b"efg".to_vec(), 107, 111)]);
        let last = feed(&mut reader, b"", true);
        assert_eq!(last, vec![(b"h".to_vec(), 111, 112)]);
    }

    #[test]
    fn a_line_longer_than_the_block_grows_it() {
        let mut reader = RecordReader::new(Framing::Lines, 0, 1 << 30);
        let long = vec![b'x'; READ_BLOCK_BYTES + 10];
        let mut fed = 0;
        let mut seen = Vec::new();
        while fed < long.len() {
            let spare = reader.spare();
            let n = spare.len().min(long.len() - fed);
            spare[..n].copy_from_slice(&long[fed..fed + n]);
            fed += n;
            seen.extend(reader.advance(n, false).into_iter().map(|(l, _, _)| l.len()));
            reader.compact();
        }
        seen.extend(reader.advance(0, true).into_iter().map(|(l, _, _)| l.len()));
        assert_eq!(seen, vec![READ_BLOCK_BYTES + 10]);
    }

    fn framed(messages: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for message in messages {
            out.extend_from_slice(&(message.len() as u32).to_be_bytes());
            out.extend_from_slice(message);
        }
        out
    }

    #[test]
    fn length_prefixed_records_split_across_reads() {
        let bytes = framed(&[b"hello", b"", b"world!"]);
        let mut reader = RecordReader::new(Framing::LengthPrefixed, 0, 1024);
        let first = feed(&mut reader, &bytes[..7], false);
        assert!(first.is_empty());
        let second = feed(&mut reader, &bytes[7..], false);
        assert_eq!(second, vec![(b"hello".to_vec(), 0, 9), (Vec::new(), 9, 13), (b"world!".to_vec(), 13, 23)]);
    }

    #[test]
    fn truncated_and_corrupt_prefixes_become_bad_records() {
        let mut bytes = framed(&[b"ok"]);
        bytes.extend_from_slice(&[0, 0, 0, 9, b'x']);
        let mut reader = RecordReader::new(Framing::LengthPrefixed, 0, 1024);
        let records = feed(&mut reader, &bytes, true);
        assert_eq!(records, vec![(b"ok".to_vec(), 0, 6), (b"x".to_vec(), 6, 11)]);

        let mut corrupt = framed(&[b"ok"]);
        corrupt.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        let mut reader = RecordReader::new(Framing::LengthPrefixed, 0, 1024);
        let records = feed(&mut reader, &corrupt, true);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].0, vec![0xff; 4]);
        assert_eq!(reader.skipped_bytes, 3);
    }

    #[test]
    fn sniffing_tells_json_from_protobuf() {
        assert_eq!(Framing::sniff(Some(b'{')), Framing::Lines);
        assert_eq!(Framing::sniff(Some(b' ')), Framing::Lines);
        assert_eq!(Framing::sniff(Some(0)), Framing::LengthPrefixed);
        assert_eq!(Framing::sniff(None), Framing::Lines);
    }
}
