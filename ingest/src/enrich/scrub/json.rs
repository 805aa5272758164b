//! JSON text: content kept as JSON (`gen_ai.input.messages`, tool-call
//! arguments) and rejected payloads that were JSON before a cut.
//!
//! The patterns read text as written, and JSON writes strings with escapes:
//! `\u0040` for `@`, `\n` glued to the digits that follow, each level of
//! nesting escaping again. So a document that parses is walked decoded,
//! string by string ([`Scrubber::scrub_json`]), and re-serialised; a plain
//! pass over the result then sees what no single string holds, a key beside
//! its value (`"api_key": "..."`). Text that does not parse (a cut dead
//! letter) gets the plain pass alone, whose patterns accept the escaped
//! spellings.
//!
//! Either way the result must still be JSON: a number that is PII
//! (`"phone": 4155552671`) becomes a quoted placeholder, since a bare
//! `[PHONE]` would not parse and a numeric one would pass for data. So must
//! JSON held in a string, at any depth (a tool call's arguments in a message
//! list in an OTLP line), where the placeholder's quotes are escaped once per
//! level. [`JsonNesting`] and [`json_number`] tell the plain pass where such
//! a number stands and at which level.
//!
//! A quoted value (`"password": "..."`) ends at its closing quote, which a
//! pattern cannot find when the value holds escaped quotes or backslashes:
//! [`quoted_value`] reads the escapes the way decoding would, at the opening
//! quote's depth of nesting, in JSON text and in any text that quotes alike.

use std::borrow::Cow;
use std::ops::Range;

use super::{PiiKind, Scrubber};

impl Scrubber {
    /// Like [`scrub`](Self::scrub), for text that may be JSON (message lists
    /// such as `gen_ai.input.messages`, rejected payloads): when it parses,
    /// every string (and number) is scrubbed decoded, so PII behind an escape
    /// (`\u0040`, or `\n` glued to digits) is found, and the result is
    /// re-serialised. Anything else is scrubbed as plain text. JSON stays
    /// JSON: a number that is PII becomes a string placeholder.
    pub fn scrub_json<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !looks_like_json(text) {
            return self.scrub(text);
        }
        // Without a backslash every JSON string is spelled verbatim in the
        // text, and quotes bound matches just as a string's ends do, so the
        // plain pass sees all a decoded walk would (and clean text stays borrowed).
        if memchr::memchr(b'\\', text.as_bytes()).is_none() {
            return self.replace_pii(text, true);
        }
        let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) else {
            return self.replace_pii(text, true);
        };
        if !self.scrub_value(&mut value) {
            // The plain pass still runs: it sees a key and its value together
            // (`"api_key": "..."`), which the walk, one string at a time, does not.
            return self.replace_pii(text, true);
        }
        match serde_json::to_string(&value) {
            Ok(json) => match self.replace_pii(&json, true) {
                Cow::Borrowed(_) => Cow::Owned(json),
                Cow::Owned(scrubbed) => Cow::Owned(scrubbed),
            },
            // A Value with string keys always serialises; should it not, the
            // plain pass over the original is the remaining safe answer.
            Err(_) => self.replace_pii(text, true),
        }
    }

    /// [`scrub`](Self::scrub) for the text of a JSON document, or of one cut
    /// short: a mask over a number outside every string is quoted, so
    /// `"phone": 4155552671` becomes `"phone": "[PHONE]"`, still JSON, rather
    /// than `"phone": [PHONE]`. The decoded walk turns such numbers into
    /// strings as well, and a placeholder read as a number would pass for data.
    fn scrub_json_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.replace_pii(text, looks_like_json(text))
    }

    /// Scrubs every string, object key and number in `value`; true when anything changed.
    fn scrub_value(&self, value: &mut serde_json::Value) -> bool {
        use serde_json::Value;
        match value {
            // A string may hold JSON itself (a tool call's `arguments`).
            Value::String(text) => match self.scrub_json_text(text) {
                Cow::Owned(scrubbed) => {
                    *text = scrubbed;
                    true
                }
                Cow::Borrowed(_) => false,
            },
            // A card or phone number sent as a JSON number is still one.
            Value::Number(number) => match self.scrub(&number.to_string()) {
                Cow::Owned(scrubbed) => {
                    *value = Value::String(scrubbed);
                    true
                }
                Cow::Borrowed(_) => false,
            },
            Value::Array(items) => {
                // Every item is scrubbed, so no short-circuiting `any`.
                let mut changed = false;
                for item in items {
                    changed |= self.scrub_value(item);
                }
                changed
            }
            Value::Object(map) => {
                let mut changed = false;
                for item in map.values_mut() {
                    changed |= self.scrub_value(item);
                }
                if map.keys().any(|key| !self.find(key).is_empty()) {
                    *map = std::mem::take(map)
                        .into_iter()
                        .map(|(key, item)| (self.scrub(&key).into_owned(), item))
                        .collect();
                    changed = true;
                }
                changed
            }
            Value::Null | Value::Bool(_) => false,
        }
    }
}

/// True when text opens like a JSON object or array.
pub(super) fn looks_like_json(text: &str) -> bool {
    matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
}

/// The span of a whole JSON number that `range` (outside any string of its
/// level) covers, its sign included (not before `last`), when it stands where
/// a value does: after `:`, `[` or `,` and before `,`, `]`, `}` or the end of
/// a cut text, whitespace (escaped, in JSON held in a string) apart. Prose
/// that only opens like JSON (`[INFO] phone 4155552671`) has no such place.
pub(super) fn json_number(text: &str, range: &Range<usize>, last: usize) -> Option<Range<usize>> {
    if !unsigned_json_number(&text[range.clone()]) {
        return None;
    }
    let unsigned = &text[..range.start];
    let before = unsigned.strip_suffix('-').filter(|signed| signed.len() >= last).unwrap_or(unsigned);
    let opened = matches!(trim_whitespace_end(before.as_bytes()).last(), Some(b':' | b'[' | b','));
    let closed = matches!(skip_whitespace(&text.as_bytes()[range.end..]).first(), None | Some(b',' | b']' | b'}'));
    (opened && closed).then_some(before.len()..range.end)
}

/// A JSON number without its sign: digits, then maybe a fraction and an
/// exponent. Leading zeros pass, as a cut text may hold a phone number so.
fn unsigned_json_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |from: usize| bytes.iter().skip(from).take_while(|b| b.is_ascii_digit()).count();
    let mut at = digits(0);
    if at == 0 {
        return false;
    }
    if bytes.get(at) == Some(&b'.') {
        let fraction = digits(at + 1);
        if fraction == 0 {
            return false;
        }
        at += 1 + fraction;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1 + usize::from(matches!(bytes.get(at + 1), Some(b'+' | b'-')));
        let exponent = digits(at);
        if exponent == 0 {
            return false;
        }
        at += exponent;
    }
    at == bytes.len()
}

/// `bytes` after the whitespace they open with: as written, or escaped as
/// JSON held in a string writes it between tokens (`\n`, `\\t`).
fn skip_whitespace(mut bytes: &[u8]) -> &[u8] {
    loop {
        let backslashes = bytes.iter().take_while(|&&b| b == b'\\').count();
        bytes = match bytes {
            [b' ' | b'\t' | b'\n' | b'\r', rest @ ..] => rest,
            _ if backslashes > 0 && matches!(bytes.get(backslashes), Some(b'n' | b'r' | b't')) => {
                &bytes[backslashes + 1..]
            }
            _ => return bytes,
        };
    }
}

/// `bytes` before the whitespace they end with, written or escaped.
fn trim_whitespace_end(mut bytes: &[u8]) -> &[u8] {
    loop {
        bytes = match bytes {
            [rest @ .., b' ' | b'\t' | b'\n' | b'\r'] => rest,
            [rest @ .., b'\\', b'n' | b'r' | b't'] => {
                let backslashes = rest.iter().rev().take_while(|&&b| b == b'\\').count();
                &rest[..rest.len() - backslashes]
            }
            _ => return bytes,
        };
    }
}

/// The quote that opens or closes a string of the JSON held `level` strings
/// deep, as JSON escapes it once per level: `"`, `\"`, `\\\"`, ...
pub(super) fn push_quote(out: &mut String, level: usize) {
    let backslashes = 1_usize.checked_shl(level.try_into().unwrap_or(u32::MAX)).map_or(0, |n| n - 1);
    out.extend(std::iter::repeat_n('\\', backslashes));
    out.push('"');
}

/// Reads a JSON text forward, once, to tell at which level of nesting each
/// byte stands. A string may hold JSON (a tool call's arguments), which may
/// hold JSON in its strings in turn, each level escaping its quotes once more
/// (`"`, `\"`, `\\\"`, or `\u0022` for `\"`): a number that is a value of
/// JSON held two strings deep is written between `\\\"` quotes.
#[derive(Debug, Default)]
pub(super) struct JsonNesting {
    /// Every byte before this one has been read.
    read_to: usize,
    /// Strings open around `read_to`: 0 outside every string, 1 inside a
    /// string of the document, 2 inside a string of the JSON that one holds.
    open: usize,
    /// Bit `n` is set when the string open at level `n` holds JSON (opens
    /// as an object or array does): a number in it is a value, where in
    /// prose it is text.
    holds_json: u64,
}

impl JsonNesting {
    /// The level of the JSON document of which byte `at` of `bytes` is text
    /// between strings (0 for the document itself, 1 for JSON held in one of
    /// its strings, ...), or `None` when `at` is in a string of prose. `at`
    /// must not go back from one call to the next.
    pub(super) fn document_level(&mut self, bytes: &[u8], at: usize) -> Option<usize> {
        self.read(bytes, at);
        match self.open {
            0 => Some(0),
            open => (self.holds_json & level_bit(open - 1) != 0).then_some(open),
        }
    }

    fn read(&mut self, bytes: &[u8], at: usize) {
        while self.read_to < at {
            let Some(offset) = memchr::memchr2(b'"', b'\\', &bytes[self.read_to..at]) else {
                self.read_to = at;
                break;
            };
            let found = self.read_to + offset;
            let backslashes = bytes[found..].iter().take_while(|&&b| b == b'\\').count();
            let escaped = found + backslashes;
            let (spelling, end) = match bytes.get(escaped) {
                Some(b'"') => (Spelling::Plain, escaped + 1),
                Some(b'u') if bytes[escaped + 1..].starts_with(b"0022") => (Spelling::Unicode, escaped + 5),
                // Whatever else is escaped is text of the string it is in.
                _ => {
                    self.read_to = escaped + 1;
                    continue;
                }
            };
            let level = quote_level(backslashes, spelling).level;
            if level == self.open {
                if opens_json(&bytes[end..]) {
                    self.holds_json |= level_bit(level);
                } else {
                    self.holds_json &= !level_bit(level);
                }
                self.open += 1;
            } else if level < self.open {
                // It closes the string at its level, and any left open inside that one.
                self.open = level;
            }
            // A quote escaped for a deeper level than any open string is text.
            self.read_to = end;
        }
    }
}

/// The value that the quote at `opening` in `text` opens: up to the quote that
/// closes it, a line break (no JSON string holds one) or the end of a cut
/// text, which masks too much rather than too little.
///
/// A double quote (`"`, `\"`, `\\\"`, `\u0022`, ...) is read as decoding would
/// read it: at the opening quote's level of nesting it closes the value, as
/// does any quote that closes an enclosing string; one escaped once more is
/// part of the value (`"abc\"def"`, `\"abc\\\"def\"`), and so are escaped
/// backslashes (`"p\\ss"`) and, in a double-quoted value, apostrophes, which
/// JSON does not escape. A single-quoted value (`pwd='...'`) may sit in a
/// JSON string at any depth, which no escape tells, so a double quote inside
/// it is text (`pwd='a"b'`) unless it closes a string open around the value,
/// as the text read from its start tells, and JSON goes on after it as after
/// a string (`"pwd='abc", "user": ...`, but not `pwd='a", "b'`).
///
/// `None` for a value that is empty, a placeholder (so scrubbing twice changes
/// nothing), JSON punctuation alone, or followed by JSON as a closing quote
/// is (`"my password: ", 1234]`): then the quote closed a string that ends in
/// `password: ` rather than opening a value, and masking what follows would
/// break the JSON.
pub(super) fn quoted_value(text: &str, opening: Range<usize>) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let token = &bytes[opening.clone()];
    let (single, spelling) = match token.last() {
        Some(b'\'') => (true, Spelling::Plain),
        Some(b'"') => (false, Spelling::Plain),
        _ => (false, Spelling::Unicode),
    };
    let depth = quote_level(token.iter().take_while(|&&b| b == b'\\').count(), spelling).level;
    let start = opening.end;
    if !single && continues_json(&bytes[start..]) {
        return None;
    }
    // Read only for a double quote in a single-quoted value, where JSON goes on.
    let mut strings_open: Option<usize> = None;
    let mut end = bytes.len();
    for (at, &byte) in bytes.iter().enumerate().skip(start) {
        let backslashes = || bytes[start..at].iter().rev().take_while(|&&b| b == b'\\').count();
        let (apostrophe, quote, after) = match byte {
            b'\r' | b'\n' => {
                end = at;
                break;
            }
            b'"' => (false, quote_level(backslashes(), Spelling::Plain), at + 1),
            b'\'' => (true, quote_level(backslashes(), Spelling::Plain), at + 1),
            b'u' | b'U' if bytes[at + 1..].starts_with(b"0022") && backslashes() > 0 => {
                (false, quote_level(backslashes(), Spelling::Unicode), at + 5)
            }
            _ => continue,
        };
        let closes = match (single, apostrophe) {
            (false, false) | (true, true) => quote.level <= depth,
            // The JSON string around a single-quoted value may end here.
            (true, false) => {
                continues_json(&bytes[after..])
                    && quote.level < *strings_open.get_or_insert_with(|| strings_open_at(bytes, opening.start))
            }
            // JSON does not escape apostrophes: this one is text.
            (false, true) => false,
        };
        if closes {
            end = at - quote.escape;
            break;
        }
    }
    let value = &text[start..end];
    let punctuation = value.bytes().all(|b| b" \t,:{}[]".contains(&b));
    let placeholder = PiiKind::ALL.iter().any(|kind| kind.placeholder() == value);
    (!punctuation && !placeholder).then_some(start..end)
}

/// The closing quote of the string that the quote at `opening` (`"` or `'`,
/// after the backslashes that escape it for its level of nesting) opens: the
/// next quote of the same kind that acts at that level or an outer one, with
/// its escape; an empty range at a line break (no JSON string holds one) or
/// the end of a cut text.
pub(super) fn closing_quote(text: &str, opening: Range<usize>) -> Range<usize> {
    let bytes = text.as_bytes();
    let Some(&quote) = bytes.get(opening.end.wrapping_sub(1)) else {
        return opening.end..opening.end;
    };
    let depth = quote_level(opening.len().saturating_sub(1), Spelling::Plain).level;
    let mut at = opening.end;
    while let Some(offset) = memchr::memchr3(quote, b'\n', b'\r', &bytes[at..]) {
        let found = at + offset;
        if bytes[found] != quote {
            return found..found;
        }
        let backslashes = bytes[opening.end..found].iter().rev().take_while(|&&b| b == b'\\').count();
        let closing = quote_level(backslashes, Spelling::Plain);
        if closing.level <= depth {
            return found - closing.escape..found + 1;
        }
        at = found + 1;
    }
    bytes.len()..bytes.len()
}

/// How many JSON strings are open at byte `at` of `bytes`, read from the
/// start: 0 outside every string, 1 in a string of the document, 2 in a
/// string of the JSON that one holds, ...
fn strings_open_at(bytes: &[u8], at: usize) -> usize {
    let mut nesting = JsonNesting::default();
    nesting.read(bytes, at);
    nesting.open
}

/// Whether `rest`, the text after a quote, goes on as JSON does after a
/// string that the quote closes: the end of a cut text, `,` or `:` and a
/// value, or `}` or `]` and what may follow them. Text in a password seldom
/// looks like that (`a", b` does not: `b` opens no value).
fn continues_json(rest: &[u8]) -> bool {
    match skip_whitespace(rest) {
        [] => true,
        [b',' | b':', value @ ..] => opens_value(skip_whitespace(value)),
        [b'}' | b']', after @ ..] => matches!(skip_whitespace(after), [] | [b',' | b'}' | b']' | b'"' | b'\\', ..]),
        _ => false,
    }
}

/// The bit of [`JsonNesting::holds_json`] for the string open at `level`;
/// none past the 64th, where nothing is taken for JSON.
fn level_bit(level: usize) -> u64 {
    u32::try_from(level).ok().and_then(|level| 1_u64.checked_shl(level)).unwrap_or(0)
}

/// Whether `text` opens as a JSON object or array does, whitespace apart:
/// `{` and a key or `}`, `[` and a value or `]`. Prose may open with a
/// bracket too (`[INFO] call: 4155552671, ...`), but not with a value after it.
fn opens_json(text: &[u8]) -> bool {
    match skip_whitespace(text) {
        [b'{', rest @ ..] => matches!(skip_whitespace(rest), [] | [b'"' | b'\\' | b'}', ..]),
        [b'[', rest @ ..] => matches!(skip_whitespace(rest), [] | [b']', ..]) || opens_value(skip_whitespace(rest)),
        _ => false,
    }
}

/// Whether `text` opens with a JSON value: a string (its quote escaped or
/// not), an object, an array, a number that a delimiter ends, or a literal.
fn opens_value(text: &[u8]) -> bool {
    match text {
        [b'"' | b'\\' | b'{' | b'[', ..] => true,
        [b'-' | b'0'..=b'9', ..] => {
            let number = 1 + text[1..].iter().take_while(|b| b.is_ascii_digit() || b"+-.eE".contains(b)).count();
            matches!(skip_whitespace(&text[number..]), [] | [b',' | b'}' | b']', ..])
        }
        _ => [&b"true"[..], b"false", b"null"].iter().any(|literal| {
            text.strip_prefix(*literal).is_some_and(|after| !after.first().is_some_and(u8::is_ascii_alphanumeric))
        }),
    }
}

/// How a quote is written where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spelling {
    /// `"` or `'`, after the backslashes that escape it.
    Plain,
    /// `\u0022`, whose own backslash is the last of the run before `u`.
    Unicode,
}

/// Where a quote acts, as [`quote_level`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct QuoteLevel {
    /// The level of string nesting at which the quote opens or closes a
    /// string: 0 in the text as written, 1 in a string decoded from it, ...
    level: usize,
    /// How many of the backslashes before it are its own escape; the others
    /// are escaped backslashes, text of the string it ends.
    escape: usize,
}

/// Decodes a quote after a run of `backslashes`, one level of nesting at a
/// time, as JSON would: an even run before `"` is that many halved backslashes
/// and a quote that acts at this level; an odd run is escaped backslashes and
/// a `"` one level down (`\"` decodes to `"`); so is an odd run before
/// `u0022`, while an even one (`\\u0022`) is a `\u0022` one level down.
fn quote_level(mut backslashes: usize, mut spelling: Spelling) -> QuoteLevel {
    let mut found = QuoteLevel { level: 0, escape: 0 };
    // Backslashes as written for each backslash at the current level.
    let mut written = 1;
    loop {
        if backslashes % 2 == 1 {
            found.escape += written;
            spelling = Spelling::Plain;
        } else if spelling == Spelling::Plain || backslashes == 0 {
            return found;
        }
        backslashes /= 2;
        written *= 2;
        found.level += 1;
    }
}
