//! Framing of file input: where one message ends and the next begins, with each message's
//! byte offset in the file (the file source's position).
//!
//! - [`Framing::Lines`]: OTLP/JSON lines (the OTel Collector file exporter's JSON format) or
//!   NDJSON events; `\n` or `\r\n` terminated, a UTF-8 byte order mark at the start of the file
//!   ignored. A last line without newline is included when it is a complete JSON value no longer
//!   than the limit; any other is left unread, as the writer may still be writing it.
//! - [`Framing::LengthPrefixed`]: binary OTLP as the Collector file exporter writes it with
//!   `format: proto`: each message preceded by its length as a 32-bit big-endian integer. A last
//!   message shorter than its prefix declares is left unread the same way. With `compression:
//!   zstd` the exporter writes every record so, its JSON too, each message one zstd frame (the
//!   decoder inflates it).
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

/// The first byte of a zstd frame: each record of a Collector file exported with
/// `compression: zstd` (its JSON as well as its protobuf) is one.
const ZSTD_FRAME_FIRST_BYTE: u8 = crate::decode::zstd_frame::FIRST_BYTE;

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
                    Some(&first) if starts_a_message(first) => Framing::LengthPrefixed,
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

/// Whether a length-prefixed message can start with `first`: an OTLP export request (its
/// first field, resource spans or logs) or a zstd frame (the Collector's `compression: zstd`).
fn starts_a_message(first: u8) -> bool {
    matches!(first, OTLP_REQUEST_FIRST_TAG | ZSTD_FRAME_FIRST_BYTE)
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
    /// A length prefix, at the end of the file, whose message is cut short and does not start
    /// as an OTLP message or a zstd frame: not one being written (whose first byte would be
    /// either) but a prefix read from inside another message, after an earlier prefix that
    /// declared a wrong length. Left unread, it would be "being written" for every run after.
    #[error(
        "corrupt length prefix ({declared} bytes declared, {size} bytes after it to the end of the file, and no \
         OTLP message or zstd frame starts there): the rest of the file cannot be split into messages"
    )]
    FramingLostAtEnd { declared: u64, size: u64 },
}

impl Unreadable {
    /// Stable dead-letter reason and metric label; a long line shares the decoder's
    /// `payload_too_large`, as it is the same limit.
    pub fn reason(&self) -> &'static str {
        match self {
            Unreadable::TooLarge { .. } => "payload_too_large",
            Unreadable::FramingLost { .. } | Unreadable::FramingLostAtEnd { .. } => "corrupt_framing",
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
    /// A length-prefixed message above the limit: this many more bytes of it. `first` is the
    /// message's first byte once seen, which tells one being written from one read out of step
    /// (the record's kept head may hold no bytes at all).
    Remaining { left: u64, first: Option<u8> },
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
                SkipUntil::Remaining { left, first } => {
                    let taken = usize::try_from(*left).map_or(data.len(), |left| left.min(data.len()));
                    *left -= taken as u64;
                    *first = first.or(data[..taken].first().copied());
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
            // nothing checkpoints past its start; unless no message being written starts as it
            // does (a prefix read out of step, see `Unreadable::FramingLostAtEnd`).
            let out_of_step = matches!(skip.until, SkipUntil::Remaining { first: Some(first), .. }
                if !starts_a_message(first));
            let finished = end.is_some() || (at_end && (matches!(skip.until, SkipUntil::End { .. }) || out_of_step));
            if finished {
                self.skipped = self.skipping.take();
            }
        }
        let base = self.base_offset + start as i64;
        let data = &self.block[start..self.filled];
        let mut records = Vec::new();
        if let Some(skip) = &self.skipped {
            let unreadable = match skip.until {
                // Cut short by the end of the file, yet handed over: out of step.
                SkipUntil::Remaining { left, .. } if left > 0 => {
                    Unreadable::FramingLostAtEnd { declared: skip.size + left, size: skip.size }
                }
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
                    if at_end && rest.len() < total && rest.get(4).is_some_and(|&first| !starts_a_message(first)) {
                        // The message's bytes, as for a record discarded as it is read.
                        let content = &rest[4..];
                        let size = content.len() as u64;
                        let unreadable = Unreadable::FramingLostAtEnd { declared: declared as u64, size };
                        self.skipped_bytes += size;
                        self.unreadable_in_block.push((offset, size));
                        let bytes = &content[..self.keep_bytes.min(content.len())];
                        let next_offset = base + data.len() as i64;
                        records.push(Record { bytes, offset, next_offset, unreadable: Some(unreadable) });
                        position = data.len();
                        break;
                    }
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
                        let until = SkipUntil::Remaining { left, first: content.first().copied() };
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
pub(super) mod tests;
