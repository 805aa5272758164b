//! A one-pass reader for the common shape of a JSON event, in front of serde_json.
//!
//! serde_json's generic map walk costs about 10 k instructions per event: every key goes
//! through its string machinery and a visitor, every value through `Option` and a seed, and
//! every unknown value through `IgnoredAny`. Events are flat objects of short strings and
//! numbers, so this reader walks the bytes once, borrows strings that have no escapes, and
//! fills the same [`Raw`] the serde path fills.
//!
//! It is a fast path, not a second parser with its own verdicts: it returns `None` for
//! anything it is not sure of (invalid JSON, a value of the wrong type, a number outside what
//! it parses exactly, nesting deeper than [`MAX_DEPTH`]), and serde_json then decides, with
//! its error message. On input it accepts it must agree with serde_json exactly; the tests
//! compare both on fixtures, the synthetic fleet, edge cases and randomly corrupted lines.

use std::borrow::Cow;

use super::{InputStr, Raw};

/// Unknown values nested deeper than this are left to serde_json (whose own limit is 128).
const MAX_DEPTH: u32 = 64;

/// Read `text` as one JSON event object, or `None` to leave it to serde_json.
pub(super) fn scan(text: &str) -> Option<Raw<'_>> {
    let mut reader = Reader { text, bytes: text.as_bytes(), pos: 0 };
    let raw = reader.object()?;
    reader.whitespace();
    (reader.pos == reader.bytes.len()).then_some(raw)
}

/// A value of one of [`Raw`]'s field types, read with the same acceptance as the serde path:
/// outer `None` leaves the message to serde_json, inner `None` is JSON `null`.
pub(super) trait Scan<'de>: Sized {
    fn scan(reader: &mut Reader<'de>) -> Option<Option<Self>>;
}

impl<'de> Scan<'de> for InputStr<'de> {
    fn scan(reader: &mut Reader<'de>) -> Option<Option<Self>> {
        if reader.null() {
            return Some(None);
        }
        reader.string().map(|text| Some(InputStr(text)))
    }
}

impl<'de> Scan<'de> for String {
    fn scan(reader: &mut Reader<'de>) -> Option<Option<Self>> {
        if reader.null() {
            return Some(None);
        }
        reader.string().map(|text| Some(text.into_owned()))
    }
}

impl<'de> Scan<'de> for i64 {
    /// Plain integers only; integral floats (`12.0`), which the serde path also takes, are
    /// left to it.
    fn scan(reader: &mut Reader<'de>) -> Option<Option<Self>> {
        if reader.null() {
            return Some(None);
        }
        let number = reader.number()?;
        if number.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            return None;
        }
        number.parse().ok().map(Some)
    }
}

impl<'de> Scan<'de> for f64 {
    /// `str::parse` rounds correctly, as serde_json does with `float_roundtrip` (enabled in
    /// the workspace); a number too large for `f64` is serde_json's error to report.
    fn scan(reader: &mut Reader<'de>) -> Option<Option<Self>> {
        if reader.null() {
            return Some(None);
        }
        let value: f64 = reader.number()?.parse().ok()?;
        value.is_finite().then_some(Some(value))
    }
}

/// A cursor over the message; every method leaves `pos` after what it read.
#[derive(Debug)]
pub(super) struct Reader<'de> {
    text: &'de str,
    bytes: &'de [u8],
    pos: usize,
}

impl<'de> Reader<'de> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// JSON's four whitespace bytes (not `str::trim`'s wider set).
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.whitespace();
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        self.whitespace();
        let found = self.bytes.get(self.pos..).is_some_and(|rest| rest.starts_with(word));
        if found {
            self.pos += word.len();
        }
        found
    }

    fn null(&mut self) -> bool {
        self.literal(b"null")
    }

    fn object(&mut self) -> Option<Raw<'de>> {
        if !self.eat(b'{') {
            return None;
        }
        let mut raw = Raw::default();
        if self.eat(b'}') {
            return Some(raw);
        }
        loop {
            let key = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            super::assign_scanned(&mut raw, &key, self)?;
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}').then_some(raw);
        }
    }

    /// A string value, borrowed when it holds no escapes.
    fn string(&mut self) -> Option<Cow<'de, str>> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.pos;
        let end = find_quote_escape_or_control(self.bytes, start);
        match self.bytes.get(end) {
            Some(b'"') => {
                self.pos = end + 1;
                // `start` and `end` sit next to ASCII quotes, so both are char boundaries.
                self.text.get(start..end).map(Cow::Borrowed)
            }
            Some(b'\\') => self.escaped_string(start, end).map(Cow::Owned),
            _ => None,
        }
    }

    /// The rest of a string from its first escape at `escape`, decoded into an owned copy.
    fn escaped_string(&mut self, start: usize, mut escape: usize) -> Option<String> {
        let mut out = String::with_capacity(escape - start + 16);
        let mut run_start = start;
        loop {
            out.push_str(self.text.get(run_start..escape)?);
            // `escape` is at a backslash.
            let code = *self.bytes.get(escape + 1)?;
            let mut next = escape + 2;
            match code {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let unit = hex4(self.bytes.get(next..next + 4)?)?;
                    next += 4;
                    let scalar = match unit {
                        0xD800..=0xDBFF => {
                            // A high surrogate must be followed by an escaped low one; serde_json
                            // rejects anything else, so leave that to it.
                            if self.bytes.get(next..next + 2)? != b"\\u" {
                                return None;
                            }
                            let low = hex4(self.bytes.get(next + 2..next + 6)?)?;
                            if !(0xDC00..=0xDFFF).contains(&low) {
                                return None;
                            }
                            next += 6;
                            0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
                        }
                        0xDC00..=0xDFFF => return None,
                        _ => u32::from(unit),
                    };
                    out.push(char::from_u32(scalar)?);
                }
                _ => return None,
            }
            run_start = next;
            escape = find_quote_escape_or_control(self.bytes, next);
            match self.bytes.get(escape) {
                Some(b'"') => {
                    out.push_str(self.text.get(run_start..escape)?);
                    self.pos = escape + 1;
                    return Some(out);
                }
                Some(b'\\') => {}
                _ => return None,
            }
        }
    }

    /// The text of a number in JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<&'de str> {
        self.whitespace();
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return None;
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return None;
            }
            self.digits();
        }
        self.text.get(start..self.pos)
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// Skip any JSON value, checking it as strictly as serde_json would.
    pub(super) fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.whitespace();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                self.pos += 1;
                if self.eat(b'}') {
                    return Some(());
                }
                loop {
                    self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    self.skip_value(depth + 1)?;
                    if !self.eat(b',') {
                        return self.eat(b'}').then_some(());
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    if !self.eat(b',') {
                        return self.eat(b']').then_some(());
                    }
                }
            }
            b't' => self.literal(b"true").then_some(()),
            b'f' => self.literal(b"false").then_some(()),
            b'n' => self.null().then_some(()),
            _ => self.number().map(drop),
        }
    }
}

/// Four hex digits of a `\u` escape.
fn hex4(digits: &[u8]) -> Option<u16> {
    digits.iter().try_fold(0u16, |acc, &b| Some(acc << 4 | u16::from((b as char).to_digit(16)? as u8)))
}

/// Index of the first `"`, `\` or control byte (< 0x20, which JSON strings may not hold raw)
/// at or after `from`, or `bytes.len()`. Content strings run to kilobytes, so eight bytes are
/// tested at a time: the lowest flagged byte of each classic zero-byte test is exact (borrows
/// only run upwards), and so is the lowest of their union.
fn find_quote_escape_or_control(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = ONES * b'"' as u64;
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    const SPACES: u64 = ONES * 0x20;
    let mut pos = from;
    while let Some(chunk) = bytes.get(pos..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        let quote = word ^ QUOTES;
        let backslash = word ^ BACKSLASHES;
        let flags = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | word.wrapping_sub(SPACES) & !word)
            & HIGHS;
        if flags != 0 {
            return pos + (flags.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while let Some(&b) = bytes.get(pos) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return pos;
        }
        pos += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::super::deserialize;
    use super::{MAX_DEPTH, find_quote_escape_or_control, scan};
    use crate::fleet::{Encoder, Fleet, FleetConfig, WireFormat};

    /// Compare the fast path with serde_json on one message; true when the fast path took it.
    fn agree(text: &str) -> bool {
        match (scan(text), deserialize(text)) {
            (Some(fast), Ok(serde)) => {
                assert_eq!(format!("{fast:?}"), format!("{serde:?}"), "{text}");
                true
            }
            (Some(fast), Err(error)) => {
                panic!("serde_json rejects ({error}) what the fast path read: {text}\n{fast:?}")
            }
            (None, _) => false,
        }
    }

    /// JSON event messages of the synthetic fleet: content with every kind of text the
    /// generator writes (quotes, newlines, PII, non-ASCII), errors, feedback and about 5 %
    /// malformed messages.
    fn fleet_messages() -> Vec<String> {
        let fleet =
            Fleet::new(FleetConfig { seed: 13, inferences: 2_000, malformed_ratio: 0.05, ..FleetConfig::default() });
        let mut encoder = Encoder::new(WireFormat::JsonEvents, 1, 0.05, 13);
        let mut out = Vec::new();
        for record in fleet.records() {
            encoder.push(&record, &mut out);
        }
        encoder.finish(&mut out);
        out.into_iter().filter_map(|m| String::from_utf8(m.payload).ok()).collect()
    }

    #[test]
    fn the_fast_path_takes_every_well_formed_fleet_message_and_agrees_with_serde() {
        let messages = fleet_messages();
        let mut taken = 0;
        let mut serde_accepts = 0;
        for text in &messages {
            serde_accepts += usize::from(deserialize(text).is_ok());
            taken += usize::from(agree(text));
        }
        assert!(serde_accepts > 2_000, "{serde_accepts} of {} messages parse", messages.len());
        assert_eq!(taken, serde_accepts, "messages serde_json parses that the fast path left to it");
    }

    #[test]
    fn the_fixture_lines_agree() {
        let fixture = include_str!("../../../../tests/fixtures/llm_events.ndjson");
        let taken = fixture.lines().filter(|line| agree(line)).count();
        assert!(taken >= 5, "{taken}");
    }

    #[test]
    fn edge_cases_agree_or_are_left_to_serde() {
        let deep = |depth: usize| format!(r#"{{"id":"a","x":{}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
        let long_string = format!(r#"{{"id":"{}\n{}"}}"#, "a".repeat(1000), "é".repeat(300));
        let mut taken: Vec<String> = [
            r#"{}"#,
            r#"  {"id":"a"}  "#,
            "\t{\r\n\"id\" : \"a\" ,\"app\":\"b\"}\n",
            r#"{"id":"a\"b\\c\/d\be\ff\ng\rh\ti"}"#,
            r#"{"id":"\u0041\u00e9\u4e2d\uD83D\uDE00\u0000"}"#,
            r#"{"id":"é中😀"}"#,
            r#"{"id":null,"id":"second"}"#,
            r#"{"id":"first","id":"second"}"#,
            r#"{"input_tokens":12}"#,
            r#"{"input_tokens":-0}"#,
            r#"{"input_tokens":9223372036854775807}"#,
            r#"{"input_tokens":-9223372036854775808}"#,
            r#"{"latency_ms":812.5}"#,
            r#"{"latency_ms":-0}"#,
            r#"{"latency_ms":-0.0}"#,
            r#"{"latency_ms":30000}"#,
            r#"{"latency_ms":1E3}"#,
            r#"{"latency_ms":1e+3}"#,
            r#"{"latency_ms":1e-3}"#,
            r#"{"latency_ms":1e-400}"#,
            r#"{"latency_ms":2.2250738585072011e-308}"#,
            r#"{"latency_ms":0.1000000000000000055511151231257827}"#,
            r#"{"latency_ms":9007199254740993}"#,
            r#"{"latency_ms":123456789012345678901234567890}"#,
            r#"{"unknown":{"a":[1,-2.5e3,"x\n",true,false,null,{}],"b":[]},"id":"a"}"#,
            r#"{"type":"feedback","id":"f","time":"2025-06-01T12:00:10Z","app":"a","name":"n","score":-1}"#,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        taken.extend([deep(MAX_DEPTH as usize - 1), long_string]);
        for text in &taken {
            assert!(agree(text), "left to serde_json: {text}");
        }
        // Invalid JSON, wrong types, integral floats for integers, numbers beyond f64 and deep
        // nesting: serde_json's to judge.
        let mut left: Vec<String> = [
            r#"{"id":"\uD83D"}"#,
            r#"{"id":"\uDE00"}"#,
            r#"{"id":"\uD83D\u0041"}"#,
            r#"{"id":"\uD83Dx"}"#,
            r#"{"id":"\u12G4"}"#,
            r#"{"id":"\x"}"#,
            "{\"id\":\"a\u{1}b\"}",
            "{\"id\":\"tab\tin\"}",
            r#"{"id":"#,
            r#"{"id":"a""#,
            r#"{"id":"a",}"#,
            r#"{"id" "a"}"#,
            r#"{"id":"a"} x"#,
            r#"{"id":"a"}}"#,
            "\u{c}{\"id\":\"a\"}",
            r#"{"id":1}"#,
            r#"{"id":true}"#,
            r#"{"id":"first","id":2}"#,
            r#"{"input_tokens":12.0}"#,
            r#"{"input_tokens":1.2e1}"#,
            r#"{"input_tokens":12.5}"#,
            r#"{"input_tokens":9223372036854775808}"#,
            r#"{"input_tokens":-9223372036854775809}"#,
            r#"{"input_tokens":"12"}"#,
            r#"{"input_tokens":012}"#,
            r#"{"input_tokens":+12}"#,
            r#"{"input_tokens":-}"#,
            r#"{"latency_ms":1e400}"#,
            r#"{"latency_ms":-1e400}"#,
            r#"{"latency_ms":1.}"#,
            r#"{"latency_ms":.5}"#,
            r#"{"latency_ms":1e}"#,
            r#"{"latency_ms":NaN}"#,
            r#"{"latency_ms":Infinity}"#,
            r#"{"unknown":[1,2,],"id":"a"}"#,
            r#"{"unknown":{"a"},"id":"a"}"#,
            r#"{"unknown":tru,"id":"a"}"#,
            r#"{"unknown":nul}"#,
            r#"[{"id":"a"}]"#,
            r#""id""#,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        left.extend([deep(MAX_DEPTH as usize + 5), deep(200)]);
        for text in &left {
            assert!(scan(text).is_none(), "taken by the fast path: {text}");
        }
    }

    #[test]
    fn randomly_corrupted_messages_agree_or_are_left_to_serde() {
        const SPECIAL: &[u8] = b"\"\\{}[],: 0123456789-+.eEnulltruefalse\n\t\x01\x7f";
        let messages = fleet_messages();
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let mut checked = 0;
        for message in messages.iter().filter(|m| !m.is_empty()).take(400) {
            for _ in 0..10 {
                let mut bytes = message.clone().into_bytes();
                let at = rng.random_range(0..bytes.len());
                match rng.random_range(0..4) {
                    0 => bytes.truncate(at),
                    1 => bytes[at] = SPECIAL[rng.random_range(0..SPECIAL.len())],
                    2 => bytes.insert(at, SPECIAL[rng.random_range(0..SPECIAL.len())]),
                    _ => {
                        bytes.remove(at);
                    }
                }
                if let Ok(text) = String::from_utf8(bytes) {
                    agree(&text);
                    checked += 1;
                }
            }
        }
        assert!(checked > 3_000, "{checked}");
    }

    #[test]
    fn the_word_search_finds_the_first_special_byte_at_every_position() {
        for len in 0..24 {
            for special in [b'"', b'\\', 0x00, 0x1f] {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    // Bytes just around the flagged ranges must not be flagged.
                    for (i, b) in bytes.iter_mut().enumerate() {
                        *b = [b'a', 0x20, 0x7f, 0x80, 0xa0, b'#', b'[', b']', 0xff][i % 9];
                    }
                    bytes[at] = special;
                    if at + 1 < len {
                        bytes[at + 1] = b'"';
                    }
                    assert_eq!(find_quote_escape_or_control(&bytes, 0), at, "{bytes:?}");
                }
                let plain: Vec<u8> = (0..len).map(|i| [b'a', 0x20, 0x7f, 0x80, 0xa0, 0xff][i % 6]).collect();
                assert_eq!(find_quote_escape_or_control(&plain, 0), len);
            }
        }
    }
}
