//! Framing of file input: where one message ends and the next begins, with each message's
//! byte offset in the file (the file source's position).
//!
//! - [`Framing::Lines`]: OTLP/JSON lines (the OTel Collector file exporter's JSON format) or
//!   NDJSON events; `\n` or `\r\n` terminated, a UTF-8 byte order mark at the start of the file
//!   ignored. A last line without newline is included when it is a complete JSON value no longer
//!   than the limit; any other is left unread, as the writer may still be writing it.
//! - [`Framing::LengthPrefixed`]: binary OTLP as the Collector file exporter writes it with
//!   `format: proto`: each message preceded by its length as a 32-bit big-endian integer. A last
//!   message shorter than its prefix declares is left unread the same way.
//!
//! The reader owns one block buffer that grows only to hold one record, and never beyond the
//! largest accepted record plus one block: a longer line is discarded as it is read (its first
//! bytes kept for the dead letter), so memory depends on neither file size nor line length.
//! Such a record is handed over only once its end has been read: cut short by the end of the
//! file, it is being written, and handing it over would checkpoint into its middle.

/// The UTF-8 byte order mark some editors and Windows tools put at the start of a text file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The first byte of every non-empty OTLP export request (traces, logs, metrics): the tag of its
/// field 1, the repeated resource entries, which protobuf encoders write first. After a plausible
/// length prefix (whose first byte is a control character, as no text starts) it tells protobuf
/// from text before the whole first message has been written.
const OTLP_REQUEST_FIRST_TAG: u8 = 0x0A;

/// How records are delimited in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One message per line.
    Lines,
    /// `u32` big-endian length, then that many bytes, repeated.
    LengthPrefixed,
}

impl Framing {
    /// Guess from the first bytes of a file (`head`, at least 5 when the file has them) of
    /// `file_len` bytes. JSON text starts with `{`, `[` or whitespace, possibly after a byte
    /// order mark. Anything else is length-prefixed only when its first prefix could be real: a
    /// text file whose first line is not JSON must not be read as a huge protobuf message, which
    /// would lose every good line after it. A prefix is real when the whole message it declares
    /// is in the file, or when an OTLP request's first byte follows it: a file caught while its
    /// first message is being written must not be read as lines, which would split the message
    /// at its 0x0A bytes and checkpoint inside it.
    ///
    /// A file that is no more than the start of a plausible prefix (or a prefix alone) is taken
    /// as length-prefixed too: that reader leaves it unread, for the next run to sniff again.
    pub fn sniff(head: &[u8], file_len: u64, max_record_bytes: usize) -> Self {
        if head.starts_with(BOM) {
            return Framing::Lines;
        }
        let whole_file = head.len() as u64 >= file_len;
        match head {
            [] => Framing::Lines,
            [first, ..] if *first == b'{' || *first == b'[' || first.is_ascii_whitespace() => Framing::Lines,
            [a, b, c, d, after @ ..] => match framed_length([*a, *b, *c, *d], max_record_bytes) {
                Ok(declared) if declared as u64 <= file_len.saturating_sub(4) => Framing::LengthPrefixed,
                Ok(_) => match after.first() {
                    Some(&OTLP_REQUEST_FIRST_TAG) => Framing::LengthPrefixed,
                    Some(_) => Framing::Lines,
                    None if whole_file => Framing::LengthPrefixed,
                    None => Framing::Lines,
                },
                Err(_) => Framing::Lines,
            },
            partial => {
                // The smallest length any prefix starting with these bytes declares.
                let mut smallest_prefix = [0u8; 4];
                smallest_prefix[..partial.len()].copy_from_slice(partial);
                if whole_file && framed_length(smallest_prefix, max_record_bytes).is_ok() {
                    Framing::LengthPrefixed
                } else {
                    Framing::Lines
                }
            }
        }
    }
}

/// The message length a record's 4-byte big-endian prefix declares, if it is at most
/// `max_framed_bytes`; otherwise (`Err`, the declared length) the prefix cannot be trusted as a
/// record boundary. One test for the sniffer, the reader and a resumed file's checkpoint.
pub fn framed_length(prefix: [u8; 4], max_framed_bytes: usize) -> Result<usize, u64> {
    let declared = u32::from_be_bytes(prefix);
    usize::try_from(declared).ok().filter(|declared| *declared <= max_framed_bytes).ok_or(u64::from(declared))
}

/// Why a record is handed over as unreadable rather than as a message: the caller dead-letters
/// it whole with [`reason`](Unreadable::reason), keeping only its first bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// A line longer than the largest accepted message; it was discarded as it was read.
    #[error("line is {size} bytes, above the {limit} byte limit; only its first bytes are kept")]
    TooLarge { size: u64, limit: usize },
    /// A length prefix above the largest accepted message: nothing after it can be trusted as a
    /// boundary, so the rest of the file is one unreadable record.
    #[error(
        "corrupt length prefix ({declared} bytes declared, at most {limit} accepted): the {size} bytes from it to \
         the end of the file cannot be split into messages"
    )]
    FramingLost { declared: u64, limit: usize, size: u64 },
}

impl Unreadable {
    /// Stable dead-letter reason and metric label; a long line shares the decoder's
    /// `payload_too_large`, as it is the same limit.
    pub fn reason(&self) -> &'static str {
        match self {
            Unreadable::TooLarge { .. } => "payload_too_large",
            Unreadable::FramingLost { .. } => "corrupt_framing",
        }
    }
}

/// Bytes read per block.
const READ_BLOCK_BYTES: usize = 1 << 20;

/// A record: its bytes, its offset in the file and the offset just after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The message; for an unreadable record only its first bytes.
    pub bytes: &'a [u8],
    /// File offset of the record's first byte.
    pub offset: i64,
    /// File offset just after the record (its terminator included): where a resumed run starts.
    pub next_offset: i64,
    /// Set when the record is not a message to decode.
    pub unreadable: Option<Unreadable>,
}

impl<'a> Record<'a> {
    fn message(bytes: &'a [u8], offset: i64, next_offset: i64) -> Self {
        Record { bytes, offset, next_offset, unreadable: None }
    }
}

/// What ends a record being discarded across reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SkipUntil {
    /// A line above the limit: the next newline.
    Newline,
    /// Lost length-prefix framing: the end of the file. Holds the declared length.
    End { declared: u64 },
    /// A length-prefixed message above the limit: this many more bytes of it.
    Remaining { left: u64 },
}

/// A record too large to buffer, being discarded as it is read.
#[derive(Debug)]
struct Skip {
    offset: i64,
    /// Its first bytes, at most `keep_bytes`.
    head: Vec<u8>,
    /// Bytes seen so far (a line's terminator excluded).
    size: u64,
    /// A line's last byte seen so far is `\r`: with the newline after it, the two are the
    /// terminator, and the `\r` is no part of the line.
    ends_with_cr: bool,
    until: SkipUntil,
}

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
    /// Largest record accepted: a longer line or message is unreadable.
    max_record_bytes: usize,
    /// Largest length prefix taken for a message (larger than `max_record_bytes`, since a
    /// message above the accepted size may still be a real one); a larger prefix means the
    /// framing is corrupt.
    max_framed_bytes: usize,
    /// How much of an unreadable record is handed over (the dead letter keeps no more).
    keep_bytes: usize,
    /// A record being discarded across reads.
    skipping: Option<Skip>,
    /// The discarded record finished by the last `advance`; kept here so that its head can be
    /// lent out like the block's records.
    skipped: Option<Skip>,
    /// Bytes handed over as unreadable records, in full (not only the kept heads).
    pub skipped_bytes: u64,
    /// Offset and full size of each unreadable record the last `advance` found in the block,
    /// so that [`give_back`](Self::give_back) can take them out of `skipped_bytes` again.
    /// Empty unless the input has such records.
    unreadable_in_block: Vec<(i64, u64)>,
}

impl RecordReader {
    /// A reader whose first byte is at file offset `start`; records longer than
    /// `max_record_bytes` are unreadable and handed over with their first `keep_bytes` only.
    pub fn new(framing: Framing, start: i64, max_record_bytes: usize, keep_bytes: usize) -> Self {
        Self {
            framing,
            block: vec![0; READ_BLOCK_BYTES],
            filled: 0,
            consumed: 0,
            base_offset: start,
            max_record_bytes,
            max_framed_bytes: max_record_bytes,
            keep_bytes,
            skipping: None,
            skipped: None,
            skipped_bytes: 0,
            unreadable_in_block: Vec::new(),
        }
    }

    /// Take length prefixes up to `max_framed_bytes` as messages (those above `max_record_bytes`
    /// are discarded as they are read), and only larger ones as corrupt framing.
    pub fn with_max_framed_bytes(mut self, max_framed_bytes: usize) -> Self {
        self.max_framed_bytes = max_framed_bytes.max(self.max_record_bytes);
        self
    }

    /// Where the next read goes. Grows the block when one record is larger than it, up to the
    /// largest record plus one block: a partial record is never longer than that, as a longer
    /// one is discarded as it is read.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.filled == self.block.len() {
            let cap = self.max_record_bytes.saturating_add(READ_BLOCK_BYTES);
            // Never an empty read target: a read of 0 bytes means the end of the file.
            let grown = (self.block.len() * 2).min(cap).max(self.block.len() + 1);
            self.block.resize(grown, 0);
        }
        &mut self.block[self.filled..]
    }

    /// Bytes read but not handed out, and the file offset of the first: after the last
    /// `advance`, an incomplete last record left for the next run. A record being discarded as
    /// it is read counts whole, though the block no longer holds it.
    pub fn unconsumed(&self) -> (i64, usize) {
        let read_to = self.base_offset + self.filled as i64;
        let first = self.skipping.as_ref().map_or(self.base_offset + self.consumed as i64, |skip| skip.offset);
        (first, usize::try_from(read_to - first).unwrap_or(usize::MAX))
    }

    /// Account for `read` new bytes and return the complete records. At the end of input an
    /// unterminated last line that is a complete JSON value within the limit is returned too.
    /// Any other last line without newline, and a last length-prefixed record shorter than its
    /// prefix says, is most likely still being written: it stays unconsumed
    /// ([`unconsumed`](Self::unconsumed)), so the checkpoint stays at its start and the next run
    /// reads it whole. That holds for one above the limit too, though its bytes are discarded as
    /// they are read: the next run reads it again, and hands it over as too large once finished.
    pub fn advance(&mut self, read: usize, at_end: bool) -> Vec<Record<'_>> {
        self.filled += read;
        let mut start = self.consumed;
        self.skipped = None;
        self.unreadable_in_block.clear();
        if let Some(skip) = self.skipping.as_mut() {
            let data = &self.block[start..self.filled];
            // `end`: where the record's content ends in `data`, and the bytes after it that
            // still belong to the record (a line's newline).
            let end = match &mut skip.until {
                SkipUntil::Newline => memchr::memchr(b'\n', data).map(|newline| (newline, 1)),
                SkipUntil::End { .. } => None,
                SkipUntil::Remaining { left } => {
                    let taken = usize::try_from(*left).map_or(data.len(), |left| left.min(data.len()));
                    *left -= taken as u64;
                    (*left == 0).then_some((taken, 0))
                }
            };
            let content = end.map_or(data.len(), |(content, _)| content);
            let room = self.keep_bytes.saturating_sub(skip.head.len()).min(content);
            skip.head.extend_from_slice(&data[..room]);
            skip.size += content as u64;
            if let Some(&last) = data[..content].last() {
                skip.ends_with_cr = last == b'\r';
            }
            if matches!((end, skip.until), (Some(_), SkipUntil::Newline)) && skip.ends_with_cr {
                // The line's `\r\n` ends it, as for a line read whole.
                skip.size -= 1;
                skip.head.truncate(usize::try_from(skip.size).unwrap_or(usize::MAX));
            }
            start += end.map_or(content, |(content, terminator)| content + terminator);
            // Lost framing runs to the end of the file by definition. A line or message that the
            // end cuts short is being written: it stays in `skipping`, not handed over, so that
            // nothing checkpoints past its start.
            let finished = end.is_some() || (at_end && matches!(skip.until, SkipUntil::End { .. }));
            if finished {
                self.skipped = self.skipping.take();
            }
        }
        let base = self.base_offset + start as i64;
        let data = &self.block[start..self.filled];
        let mut records = Vec::new();
        if let Some(skip) = &self.skipped {
            let unreadable = match skip.until {
                SkipUntil::Newline | SkipUntil::Remaining { .. } => {
                    Unreadable::TooLarge { size: skip.size, limit: self.max_record_bytes }
                }
                SkipUntil::End { declared } => {
                    Unreadable::FramingLost { declared, limit: self.max_framed_bytes, size: skip.size }
                }
            };
            self.skipped_bytes += skip.size;
            records.push(Record {
                bytes: &skip.head,
                offset: skip.offset,
                next_offset: base,
                unreadable: Some(unreadable),
            });
        }
        let mut position = 0usize;
        match self.framing {
            Framing::Lines => {
                while position < data.len() {
                    let rest = &data[position..];
                    let offset = base + position as i64;
                    let (length, terminated) = match memchr::memchr(b'\n', rest) {
                        Some(i) => (i + 1, true),
                        None => (rest.len(), false),
                    };
                    if !terminated && !at_end {
                        // Discarded only when surely too long, however the rest arrives: not
                        // counting a byte order mark (or its start) at the start of the file,
                        // nor a last `\r` that a newline would make part of the terminator.
                        let bom = if offset == 0 { bom_prefix_len(rest) } else { 0 };
                        let ends_with_cr = rest.last() == Some(&b'\r');
                        if rest.len().saturating_sub(bom + usize::from(ends_with_cr)) > self.max_record_bytes {
                            let content = &rest[bom..];
                            let head = content[..content.len().min(self.keep_bytes)].to_vec();
                            let size = content.len() as u64;
                            let until = SkipUntil::Newline;
                            self.skipping = Some(Skip { offset, head, size, ends_with_cr, until });
                            position = data.len();
                        }
                        break;
                    }
                    // The terminator is `\n` or `\r\n`; any other `\r` is the line's.
                    let line = &rest[..length];
                    let line = line.strip_suffix(b"\n").unwrap_or(line);
                    let mut line = line.strip_suffix(b"\r").unwrap_or(line);
                    if offset == 0 {
                        line = line.strip_prefix(BOM).unwrap_or(line);
                    }
                    let next_offset = offset + length as i64;
                    if line.len() > self.max_record_bytes {
                        if !terminated {
                            // The end of input cuts it short, and too long to be a whole value
                            // we may take: left for the next run like any unfinished line.
                            break;
                        }
                        let unreadable = Unreadable::TooLarge { size: line.len() as u64, limit: self.max_record_bytes };
                        self.skipped_bytes += line.len() as u64;
                        self.unreadable_in_block.push((offset, line.len() as u64));
                        let bytes = &line[..self.keep_bytes.min(line.len())];
                        records.push(Record { bytes, offset, next_offset, unreadable: Some(unreadable) });
                    } else if terminated || is_complete_last_line(line) {
                        records.push(Record::message(line, offset, next_offset));
                    } else {
                        // Most likely a line the writer has not finished: consuming it would
                        // checkpoint past it, and its two halves would both be dead letters.
                        break;
                    }
                    position += length;
                }
            }
            Framing::LengthPrefixed => {
                while position < data.len() {
                    let rest = &data[position..];
                    let offset = base + position as i64;
                    let Some(header) = rest.get(..4) else {
                        break;
                    };
                    let prefix = [header[0], header[1], header[2], header[3]];
                    let declared = match framed_length(prefix, self.max_framed_bytes) {
                        Ok(declared) => declared,
                        Err(declared) => {
                            if at_end {
                                let unreadable = Unreadable::FramingLost {
                                    declared,
                                    limit: self.max_framed_bytes,
                                    size: rest.len() as u64,
                                };
                                self.skipped_bytes += rest.len() as u64;
                                self.unreadable_in_block.push((offset, rest.len() as u64));
                                let bytes = &rest[..self.keep_bytes.min(rest.len())];
                                let next_offset = base + data.len() as i64;
                                records.push(Record { bytes, offset, next_offset, unreadable: Some(unreadable) });
                            } else {
                                let head = rest[..rest.len().min(self.keep_bytes)].to_vec();
                                let size = rest.len() as u64;
                                let until = SkipUntil::End { declared };
                                self.skipping = Some(Skip { offset, head, size, ends_with_cr: false, until });
                            }
                            position = data.len();
                            break;
                        }
                    };
                    let total = 4 + declared;
                    if declared > self.max_record_bytes {
                        // A real message, maybe, but above the limit: discarded as it is read, so
                        // that memory stays bounded by the limit rather than by the prefix.
                        let content = &rest[4..rest.len().min(total)];
                        let head = &content[..content.len().min(self.keep_bytes)];
                        let size = content.len() as u64;
                        if rest.len() >= total {
                            let unreadable = Unreadable::TooLarge { size, limit: self.max_record_bytes };
                            self.skipped_bytes += size;
                            self.unreadable_in_block.push((offset, size));
                            let next_offset = offset + total as i64;
                            records.push(Record { bytes: head, offset, next_offset, unreadable: Some(unreadable) });
                            position += total;
                            continue;
                        }
                        if at_end {
                            // Cut short by the end of the file: being written, left for the next
                            // run like a message within the limit.
                            break;
                        }
                        let (head, left) = (head.to_vec(), (total - rest.len()) as u64);
                        let until = SkipUntil::Remaining { left };
                        self.skipping = Some(Skip { offset, head, size, ends_with_cr: false, until });
                        position = data.len();
                        break;
                    }
                    if rest.len() < total {
                        // Consuming a message the writer has not finished would checkpoint into
                        // its middle, where the next run would find no length prefix.
                        break;
                    }
                    records.push(Record::message(&rest[4..total], offset, offset + total as i64));
                    position += total;
                }
            }
        }
        self.consumed = start + position;
        records
    }

    /// Hand back, unprocessed, the records of the last [`advance`](Self::advance) from the one
    /// at `offset` on: the caller stopped there (over its memory budget) and the next `advance`
    /// (with no new bytes, if it has read none) returns them again, as they were. `offset` must be
    /// that of one of those records other than the first, which may be a discarded record whose
    /// bytes the block no longer holds; the caller always takes at least one record.
    pub fn give_back(&mut self, offset: i64) {
        let index = usize::try_from(offset - self.base_offset).ok().filter(|&index| index <= self.consumed);
        debug_assert!(index.is_some(), "{offset} is not a record of the last advance");
        let Some(index) = index else { return };
        self.consumed = index;
        // A record being discarded at the end of the block starts after `offset`; its bytes are
        // still in the block, and reading them again finds it again.
        self.skipping = None;
        for (_, size) in self.unreadable_in_block.iter().filter(|(at, _)| *at >= offset) {
            self.skipped_bytes -= size;
        }
        self.unreadable_in_block.retain(|(at, _)| *at < offset);
    }

    /// Move the unconsumed tail (a partial record) to the front of the block.
    pub fn compact(&mut self) {
        self.block.copy_within(self.consumed..self.filled, 0);
        self.base_offset += self.consumed as i64;
        self.filled -= self.consumed;
        self.consumed = 0;
    }
}

/// How many bytes at the start of the file's first line are a byte order mark, or may still
/// become one when more bytes arrive.
fn bom_prefix_len(line: &[u8]) -> usize {
    let start = &line[..line.len().min(BOM.len())];
    if BOM.starts_with(start) { start.len() } else { 0 }
}

/// Whether an unterminated last line can be taken as finished: blank, or one whole JSON value
/// (a line cut short by a writer still writing it is not valid JSON).
fn is_complete_last_line(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace) || serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    type Owned = (Vec<u8>, i64, i64);

    fn feed_records(reader: &mut RecordReader, input: &[u8], at_end: bool) -> Vec<(Owned, Option<Unreadable>)> {
        let spare = reader.spare();
        spare[..input.len()].copy_from_slice(input);
        let out = reader
            .advance(input.len(), at_end)
            .into_iter()
            .map(|r| ((r.bytes.to_vec(), r.offset, r.next_offset), r.unreadable))
            .collect();
        reader.compact();
        out
    }

    fn feed(reader: &mut RecordReader, input: &[u8], at_end: bool) -> Vec<Owned> {
        feed_records(reader, input, at_end).into_iter().map(|(record, _)| record).collect()
    }

    #[test]
    fn lines_carry_exact_byte_offsets_across_blocks() {
        let mut reader = RecordReader::new(Framing::Lines, 100, 1 << 20, 64);
        let first = feed(&mut reader, b"ab\r\ncd\nef", false);
        assert_eq!(first, vec![(b"ab".to_vec(), 100, 104), (b"cd".to_vec(), 104, 107)]);
        let second = feed(&mut reader, b"g\n1", false);
        assert_eq!(second, vec![(b"efg".to_vec(), 107, 111)]);
        let last = feed(&mut reader, b"2", true);
        assert_eq!(last, vec![(b"12".to_vec(), 111, 113)]);
    }

    #[test]
    fn a_line_longer_than_the_block_grows_it() {
        let mut reader = RecordReader::new(Framing::Lines, 0, 1 << 30, 64);
        let long = vec![b' '; READ_BLOCK_BYTES + 10];
        let mut fed = 0;
        let mut seen = Vec::new();
        while fed < long.len() {
            let spare = reader.spare();
            let n = spare.len().min(long.len() - fed);
            spare[..n].copy_from_slice(&long[fed..fed + n]);
            fed += n;
            seen.extend(reader.advance(n, false).into_iter().map(|r| r.bytes.len()));
            reader.compact();
        }
        seen.extend(reader.advance(0, true).into_iter().map(|r| r.bytes.len()));
        assert_eq!(seen, vec![READ_BLOCK_BYTES + 10]);
    }

    #[test]
    fn a_line_above_the_limit_is_discarded_as_read_and_handed_over_as_too_large() {
        const LIMIT: usize = 1024;
        let mut reader = RecordReader::new(Framing::Lines, 0, LIMIT, 16);
        let mut input = b"{\"a\":1}\n".to_vec();
        let long = 3 * READ_BLOCK_BYTES + 5;
        input.extend(std::iter::repeat_n(b'x', long));
        input.extend_from_slice(b"\r\n{\"b\":2}\n");
        input.extend(std::iter::repeat_n(b'y', 58));
        input.push(b'\n');
        input.extend(std::iter::repeat_n(b'z', 2000));
        let mut records = Vec::new();
        let mut fed = 0;
        loop {
            let spare = reader.spare();
            let n = spare.len().min(input.len() - fed).min(READ_BLOCK_BYTES / 2);
            spare[..n].copy_from_slice(&input[fed..fed + n]);
            fed += n;
            records.extend(
                reader
                    .advance(n, n == 0)
                    .into_iter()
                    .map(|r| ((r.bytes.to_vec(), r.offset, r.next_offset), r.unreadable)),
            );
            reader.compact();
            // Memory is bounded by the limit, not by the line.
            assert!(reader.block.len() <= LIMIT + READ_BLOCK_BYTES, "block grew to {}", reader.block.len());
            if n == 0 {
                break;
            }
        }
        let long_end = 8 + long as i64 + 2;
        let too_large = |size: usize| Some(Unreadable::TooLarge { size: size as u64, limit: LIMIT });
        // The last line, above the limit and without newline, may still be being written: it is
        // left for the next run (see `an_unfinished_line_above_the_limit_is_left_for_the_next_run`).
        assert_eq!(
            records,
            vec![
                ((b"{\"a\":1}".to_vec(), 0, 8), None),
                // Its `\r\n` is its terminator, not counted, as in a line read at once.
                ((vec![b'x'; 16], 8, long_end), too_large(long)),
                ((b"{\"b\":2}".to_vec(), long_end, long_end + 8), None),
                ((vec![b'y'; 58], long_end + 8, long_end + 67), None),
            ]
        );
        assert_eq!(reader.skipped_bytes, long as u64);
        assert_eq!(reader.unconsumed(), (long_end + 67, 2000));
        assert_eq!(records[1].1.as_ref().map(Unreadable::reason), Some("payload_too_large"));
    }

    /// The records of one `advance`, owned, with the reader's count of unreadable bytes after it.
    fn advance_owned(reader: &mut RecordReader, read: usize, at_end: bool) -> (Vec<(Owned, Option<Unreadable>)>, u64) {
        let records = reader
            .advance(read, at_end)
            .into_iter()
            .map(|r| ((r.bytes.to_vec(), r.offset, r.next_offset), r.unreadable))
            .collect();
        (records, reader.skipped_bytes)
    }

    /// Records handed back from the second one on come again from the next `advance`, with the
    /// same bytes and offsets, and are counted as unreadable once; whatever the reader was in the
    /// middle of at the end of the block (a line above the limit) it finds again.
    #[test]
    fn records_given_back_are_handed_out_again_as_they_were() {
        let long = [b'x'; 10];
        for framing in [Framing::Lines, Framing::LengthPrefixed] {
            let (mut input, unfinished) = match framing {
                Framing::Lines => (b"a\nbb\nxxxxxxxxxx\ncc\n".to_vec(), b"yyyyyyyyyyyy".to_vec()),
                Framing::LengthPrefixed => {
                    let unfinished = framed(&[&[b'y'; 12]]);
                    (framed(&[b"a", b"bb", &long, b"cc"]), unfinished[..10].to_vec())
                }
            };
            input.extend_from_slice(&unfinished);
            let mut reader = RecordReader::new(framing, 100, 4, 2).with_max_framed_bytes(1 << 20);
            let spare = reader.spare();
            spare[..input.len()].copy_from_slice(&input);
            let (first, skipped) = advance_owned(&mut reader, input.len(), false);
            assert_eq!(first.len(), 4, "{framing:?}: {first:?}");
            assert_eq!(skipped, 10, "{framing:?}");

            reader.give_back(first[1].0.1);
            assert_eq!(reader.skipped_bytes, 0, "{framing:?}: the given-back unreadable record is uncounted");
            reader.compact();
            let (again, skipped) = advance_owned(&mut reader, 0, false);
            assert_eq!(again, first[1..], "{framing:?}");
            assert_eq!(skipped, 10, "{framing:?}");

            // The unfinished record above the limit is found again, and handed over once finished.
            let rest: &[u8] = match framing {
                Framing::Lines => b"\n",
                Framing::LengthPrefixed => b"yyyyyy",
            };
            reader.compact();
            let spare = reader.spare();
            spare[..rest.len()].copy_from_slice(rest);
            let (last, skipped) = advance_owned(&mut reader, rest.len(), true);
            let last_offset = 100 + (input.len() - unfinished.len()) as i64;
            let end = 100 + (input.len() + rest.len()) as i64;
            let too_large = Some(Unreadable::TooLarge { size: 12, limit: 4 });
            assert_eq!(last, vec![((b"yy".to_vec(), last_offset, end), too_large)], "{framing:?}");
            assert_eq!(skipped, 22, "{framing:?}");
        }
    }

    #[test]
    fn a_byte_order_mark_at_the_start_of_the_file_is_no_part_of_the_first_line() {
        let mut reader = RecordReader::new(Framing::Lines, 0, 1024, 64);
        let records = feed(&mut reader, b"\xEF\xBB\xBF{\"a\":1}\r\n\xEF\xBB\xBF{}\r\n", true);
        assert_eq!(records, vec![(b"{\"a\":1}".to_vec(), 0, 12), (b"\xEF\xBB\xBF{}".to_vec(), 12, 19)]);
        // A run resumed after the first line is not at the start of the file.
        let mut reader = RecordReader::new(Framing::Lines, 12, 1024, 64);
        assert_eq!(feed(&mut reader, b"\xEF\xBB\xBF{}\n", true), vec![(b"\xEF\xBB\xBF{}".to_vec(), 12, 18)]);
    }

    /// Found by the `framing` fuzz target: a line was measured with its byte order mark and the
    /// `\r` of its `\r\n` when it arrived across reads, and without them when read at once. A
    /// line within the limit but for them was lost as too large, or one above it was counted
    /// (and its kept bytes cut) differently, depending only on where the reads split the file.
    #[test]
    fn a_line_is_measured_alike_whether_read_at_once_or_across_reads() {
        const LIMIT: usize = 8;
        let files: [&[u8]; 3] =
            [b"\xEF\xBB\xBF{\"a\":12}\r\n{}\n", b"\xEF\xBB\xBF{\"a\":1234}\r\n{}\n", b"{\"a\":1234}\r\n{}\n"];
        for file in files {
            let mut reader = RecordReader::new(Framing::Lines, 0, LIMIT, 4);
            let at_once = feed_records(&mut reader, file, true);
            let mut reader = RecordReader::new(Framing::Lines, 0, LIMIT, 4);
            let mut byte_by_byte = Vec::new();
            for byte in file.chunks(1) {
                byte_by_byte.extend(feed_records(&mut reader, byte, false));
            }
            byte_by_byte.extend(feed_records(&mut reader, b"", true));
            assert_eq!(byte_by_byte, at_once, "{:?}", String::from_utf8_lossy(file));
        }
        let mut reader = RecordReader::new(Framing::Lines, 0, LIMIT, 4);
        let records = feed_records(&mut reader, files[0], true);
        assert_eq!(records[0], ((b"{\"a\":12}".to_vec(), 0, 13), None), "within the limit");
        let mut reader = RecordReader::new(Framing::Lines, 0, LIMIT, 4);
        let records = feed_records(&mut reader, files[1], true);
        let too_large = Some(Unreadable::TooLarge { size: 10, limit: LIMIT });
        assert_eq!(records[0], ((b"{\"a\"".to_vec(), 0, 15), too_large), "the mark and `\\r` not counted");
    }

    /// Only `\n` and `\r\n` end a line: another `\r` before them is the line's (blank to the
    /// file source, and JSON whitespace to the decoder), so that how far a line reaches is known
    /// from its last byte, whichever read brings it.
    #[test]
    fn a_line_ends_at_its_newline_and_one_carriage_return_before_it() {
        let mut reader = RecordReader::new(Framing::Lines, 0, 1024, 64);
        let records = feed(&mut reader, b"{}\r\r\n\r\n{}\r", true);
        assert_eq!(records, vec![(b"{}\r".to_vec(), 0, 5), (Vec::new(), 5, 7), (b"{}".to_vec(), 7, 10)]);
    }

    #[test]
    fn an_unfinished_last_line_is_left_unread_and_a_finished_one_is_read() {
        let mut reader = RecordReader::new(Framing::Lines, 0, 1024, 64);
        let records = feed(&mut reader, b"{\"a\":1}\n{\"b\":", true);
        assert_eq!(records, vec![(b"{\"a\":1}".to_vec(), 0, 8)]);
        assert_eq!(reader.unconsumed(), (8, 5));

        let mut reader = RecordReader::new(Framing::Lines, 0, 1024, 64);
        let records = feed(&mut reader, b"{\"a\":1}\n{\"b\":2}\r", true);
        assert_eq!(records, vec![(b"{\"a\":1}".to_vec(), 0, 8), (b"{\"b\":2}".to_vec(), 8, 16)]);
        assert_eq!(reader.unconsumed(), (16, 0));

        // Trailing blanks are read (and skipped as blank by the source).
        let mut reader = RecordReader::new(Framing::Lines, 0, 1024, 64);
        assert_eq!(feed(&mut reader, b"{}\n  ", true), vec![(b"{}".to_vec(), 0, 3), (b"  ".to_vec(), 3, 5)]);
    }

    /// `messages`, each behind its 4-byte big-endian length, as the Collector's file exporter
    /// writes them with `format: proto` (the file source's tests frame with it too).
    pub(in crate::source) fn framed(messages: &[&[u8]]) -> Vec<u8> {
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
        let mut reader = RecordReader::new(Framing::LengthPrefixed, 0, 1024, 64);
        let first = feed(&mut reader, &bytes[..7], false);
        assert!(first.is_empty());
        let second = feed(&mut reader, &bytes[7..], false);
        assert_eq!(second, vec![(b"hello".to_vec(), 0, 9), (Vec::new(), 9, 13), (b"world!".to_vec(), 13, 23)]);
    }

    #[test]
    fn a_truncated_last_record_is_left_unconsumed_for_the_next_run() {
        for cut in [&[0, 0, 0, 9, b'x'][..], &[0, 0][..]] {
            let mut bytes = framed(&[b"ok"]);
            bytes.extend_from_slice(cut);
            let mut reader = RecordReader::new(Framing::LengthPrefixed, 0, 1024, 64);
            let records = feed(&mut reader, &bytes, true);
            assert_eq!(records, vec![(b"ok".to_vec(), 0, 6)]);
            assert_eq!(reader.unconsumed(), (6, cut.len()));
        }
    }

    #[test]
    fn bytes_after_a_corrupt_prefix_are_one_unreadable_record_to_the_end() {
        let mut corrupt = framed(&[b"ok"]);
        corrupt.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        let mut reader = RecordReader::new(Framing::LengthPrefixed, 0, 1024, 5);
        let records = feed_records(&mut reader, &corrupt, true);
        let lost = |size: u64| Some(Unreadable::FramingLost { declared: u64::from(u32::MAX), limit: 1024, size });
        assert_eq!(records, vec![((b"ok".to_vec(), 0, 6), None), ((vec![0xff, 0xff, 0xff, 0xff, 1], 6, 13), lost(7))]);
        assert_eq!(reader.skipped_bytes, 7);

        // Across reads: nothing is handed over until the end, then all of it, with its offsets.
        let mut reader = RecordReader::new(Framing::LengthPrefixed, 0, 1024, 5);
        assert_eq!(feed(&mut reader, &corrupt, false), vec![(b"ok".to_vec(), 0, 6)]);
        assert!(feed(&mut reader, &framed(&[b"more"]), false).is_empty());
        let records = feed_records(&mut reader, b"", true);
        assert_eq!(records, vec![((vec![0xff, 0xff, 0xff, 0xff, 1], 6, 21), lost(15))]);
        assert_eq!(records[0].1.as_ref().map(Unreadable::reason), Some("corrupt_framing"));
        assert_eq!(reader.skipped_bytes, 15);
    }

    #[test]
    fn a_message_above_the_limit_is_discarded_as_it_is_read_and_the_next_one_kept() {
        let big = vec![7u8; 5000];
        let bytes = framed(&[b"ok", &big, b"next"]);
        let too_large = Some(Unreadable::TooLarge { size: 5000, limit: 1024 });
        let expected = vec![
            ((b"ok".to_vec(), 0, 6), None),
            ((vec![7u8; 8], 6, 5010), too_large),
            ((b"next".to_vec(), 5010, 5018), None),
        ];
        // In one read, and across reads of a few bytes each: the block never holds the message.
        let mut reader = RecordReader::new(Framing::LengthPrefixed, 0, 1024, 8).with_max_framed_bytes(1 << 20);
        assert_eq!(feed_records(&mut reader, &bytes, true), expected);
        let mut reader = RecordReader::new(Framing::LengthPrefixed, 0, 1024, 8).with_max_framed_bytes(1 << 20);
        let mut records = Vec::new();
        for chunk in bytes.chunks(300) {
            records.extend(feed_records(&mut reader, chunk, false));
            assert!(reader.block.len() <= 1024 + READ_BLOCK_BYTES);
        }
        records.extend(feed_records(&mut reader, b"", true));
        assert_eq!(records, expected);
        assert_eq!(reader.skipped_bytes, 5000);
    }

    #[test]
    fn an_unfinished_line_above_the_limit_is_left_for_the_next_run() {
        const LIMIT: usize = 1024;
        let mut file = b"{\"a\":1}\n".to_vec();
        file.extend(std::iter::repeat_n(b'x', 3000));
        // Caught while the long line is being written, read at once or across reads (the long
        // line then discarded as it is read): only the line before it is handed over, and the
        // long one's start is where the next run begins.
        for chunk in [file.len(), 300] {
            let mut reader = RecordReader::new(Framing::Lines, 0, LIMIT, 16);
            let mut records = Vec::new();
            for piece in file.chunks(chunk) {
                records.extend(feed_records(&mut reader, piece, false));
                assert!(reader.block.len() <= LIMIT + READ_BLOCK_BYTES);
            }
            records.extend(feed_records(&mut reader, b"", true));
            assert_eq!(records, vec![((b"{\"a\":1}".to_vec(), 0, 8), None)], "chunks of {chunk}");
            assert_eq!(reader.unconsumed(), (8, 3000), "chunks of {chunk}");
            assert_eq!(reader.skipped_bytes, 0);
        }
        // All of it in the block at the end of input.
        let mut reader = RecordReader::new(Framing::Lines, 0, LIMIT, 16);
        assert_eq!(feed(&mut reader, &file, true), vec![(b"{\"a\":1}".to_vec(), 0, 8)]);
        assert_eq!(reader.unconsumed(), (8, 3000));

        // The next run, once the writer has finished the line: one too-large record, whole.
        file.extend_from_slice(b"\n{\"b\":2}\n");
        let mut reader = RecordReader::new(Framing::Lines, 8, LIMIT, 16);
        let too_large = Some(Unreadable::TooLarge { size: 3000, limit: LIMIT });
        assert_eq!(
            feed_records(&mut reader, &file[8..], true),
            vec![((vec![b'x'; 16], 8, 3009), too_large), ((b"{\"b\":2}".to_vec(), 3009, 3017), None)]
        );
    }

    #[test]
    fn an_unfinished_message_above_the_limit_is_left_for_the_next_run() {
        let big = vec![7u8; 5000];
        let bytes = framed(&[b"ok", &big, b"next"]);
        let cut = &bytes[..3000];
        for chunk in [cut.len(), 300] {
            let mut reader = RecordReader::new(Framing::LengthPrefixed, 0, 1024, 8).with_max_framed_bytes(1 << 20);
            let mut records = Vec::new();
            for piece in cut.chunks(chunk) {
                records.extend(feed_records(&mut reader, piece, false));
                assert!(reader.block.len() <= 1024 + READ_BLOCK_BYTES);
            }
            records.extend(feed_records(&mut reader, b"", true));
            assert_eq!(records, vec![((b"ok".to_vec(), 0, 6), None)], "chunks of {chunk}");
            assert_eq!(reader.unconsumed(), (6, 2994), "chunks of {chunk}");
            assert_eq!(reader.skipped_bytes, 0);
        }
        let mut reader = RecordReader::new(Framing::LengthPrefixed, 0, 1024, 8).with_max_framed_bytes(1 << 20);
        assert_eq!(feed(&mut reader, cut, true), vec![(b"ok".to_vec(), 0, 6)]);
        assert_eq!(reader.unconsumed(), (6, 2994));

        // The next run starts at the message's length prefix, not 4 bytes inside it.
        let mut reader = RecordReader::new(Framing::LengthPrefixed, 6, 1024, 8).with_max_framed_bytes(1 << 20);
        let too_large = Some(Unreadable::TooLarge { size: 5000, limit: 1024 });
        assert_eq!(
            feed_records(&mut reader, &bytes[6..], true),
            vec![((vec![7u8; 8], 6, 5010), too_large), ((b"next".to_vec(), 5010, 5018), None)]
        );
    }

    #[test]
    fn sniffing_tells_json_from_protobuf() {
        let max = 1 << 20;
        assert_eq!(Framing::sniff(b"{\"a\"", 100, max), Framing::Lines);
        assert_eq!(Framing::sniff(b" {", 100, max), Framing::Lines);
        assert_eq!(Framing::sniff(b"", 0, max), Framing::Lines);
        assert_eq!(Framing::sniff(b"\xEF\xBB\xBF{\"a\"", 100, max), Framing::Lines);
        assert_eq!(Framing::sniff(b"\xEF\xBB\xBF\x00\x00\x00\x01", 100, max), Framing::Lines);
        // A plausible first prefix: protobuf.
        assert_eq!(Framing::sniff(&[0, 0, 0, 96, 0x0a], 100, max), Framing::LengthPrefixed);
        assert_eq!(Framing::sniff(&[0, 0, 0, 0], 4, max), Framing::LengthPrefixed);
        // A first line that is not JSON: its "prefix" is too large, or longer than the file.
        assert_eq!(Framing::sniff(b"garbage header line", 1000, max), Framing::Lines);
        assert_eq!(Framing::sniff(&[0, 0, 0, 97], 100, max), Framing::Lines);
        assert_eq!(Framing::sniff(&[0, 0x10, 0, 1], 1 << 30, max), Framing::Lines);
        assert_eq!(Framing::sniff(b"ab", 2, max), Framing::Lines);
    }

    #[test]
    fn a_protobuf_file_whose_first_message_is_being_written_is_sniffed_as_protobuf_and_left_unread() {
        let max = 1 << 20;
        // An OTLP export request: field 1 (its resource spans or logs) first, tag 0x0A; inside
        // it, more 0x0A bytes that a line reader would split at.
        let request = [&[0x0A, 40][..], &[0x0A, 0x0A, 0x0A, 0x0A, 0x0A][..], &[b'x'; 35][..]].concat();
        let file = framed(&[&request]);
        for cut in 1..file.len() {
            let written = &file[..cut];
            let head = &written[..cut.min(8)];
            assert_eq!(Framing::sniff(head, cut as u64, max), Framing::LengthPrefixed, "cut at {cut}");
            let mut reader = RecordReader::new(Framing::LengthPrefixed, 0, 1024, 8);
            assert!(feed_records(&mut reader, written, true).is_empty(), "cut at {cut}");
            assert_eq!(reader.unconsumed(), (0, cut), "cut at {cut}");
        }
        // The 0x0A tag after a plausible prefix, the rest of the message not yet written.
        assert_eq!(Framing::sniff(&[0, 0, 1, 0, 0x0A, 0x8D, 0x02, 0x0A], 100, max), Framing::LengthPrefixed);
        // Still lines: no 0x0A after the prefix, a prefix above any message, or a short head
        // that no plausible prefix starts with.
        assert_eq!(Framing::sniff(&[0, 0, 1, 0, b'x', 0x8D, 0x02, 0x0A], 100, max), Framing::Lines);
        assert_eq!(Framing::sniff(&[0x20, 0, 0, 0, 0x0A], 5, max), Framing::Lines);
        assert_eq!(Framing::sniff(b"a\n", 2, max), Framing::Lines);
        assert_eq!(Framing::sniff(&[0xEF, 0xBB], 2, max), Framing::Lines);
        assert_eq!(Framing::sniff(&[0xFF, 0xFE], 2, max), Framing::Lines);
        // A short head that is only part of the file is not the file's end.
        assert_eq!(Framing::sniff(&[0, 0], 100, max), Framing::Lines);
    }
}
