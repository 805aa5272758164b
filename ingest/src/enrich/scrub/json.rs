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
//! `[PHONE]` would not parse and a numeric one would pass for data.
//! [`JsonStrings`] and [`json_number`] tell the plain pass where such a
//! number stands.
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
fn looks_like_json(text: &str) -> bool {
    matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
}

/// The span of a whole JSON number that `range` (outside any string) covers,
/// its sign included (not before `last`), when it stands where a value does:
/// after `:`, `[` or `,` and before `,`, `]`, `}` or the end of a cut text.
/// Prose that only opens like JSON (`[INFO] phone 4155552671`) has no such place.
pub(super) fn json_number(text: &str, range: &Range<usize>, last: usize) -> Option<Range<usize>> {
    const WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];
    if !text[range.clone()].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unsigned = &text[..range.start];
    let before = unsigned.strip_suffix('-').filter(|signed| signed.len() >= last).unwrap_or(unsigned);
    let opened = matches!(before.trim_end_matches(WHITESPACE).as_bytes().last(), Some(b':' | b'[' | b','));
    let closed =
        matches!(text[range.end..].trim_start_matches(WHITESPACE).as_bytes().first(), None | Some(b',' | b']' | b'}'));
    (opened && closed).then_some(before.len()..range.end)
}

/// Reads a JSON text forward, once, to tell which bytes lie inside strings.
#[derive(Debug, Default)]
pub(super) struct JsonStrings {
    /// Every byte before this one has been read.
    read_to: usize,
    inside: bool,
}

impl JsonStrings {
    /// Whether byte `at` of `bytes` lies inside a string; `at` must not go
    /// back from one call to the next.
    pub(super) fn contain(&mut self, bytes: &[u8], at: usize) -> bool {
        while self.read_to < at {
            let unread = &bytes[self.read_to..at];
            let next = if self.inside { memchr::memchr2(b'"', b'\\', unread) } else { memchr::memchr(b'"', unread) };
            let Some(offset) = next else {
                self.read_to = at;
                break;
            };
            let found = self.read_to + offset;
            if bytes[found] == b'\\' {
                // Whatever is escaped, a quote included, stays in the string.
                self.read_to = found + 2;
            } else {
                self.inside = !self.inside;
                self.read_to = found + 1;
            }
        }
        self.inside
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
/// JSON string at any depth, so any double quote closes it.
///
/// `None` for a value that is empty, a placeholder (so scrubbing twice changes
/// nothing) or JSON punctuation alone: then the quote closed a string that
/// ends in `password: ` rather than opening a value, and masking what follows
/// would break the JSON.
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
    let mut end = bytes.len();
    for (at, &byte) in bytes.iter().enumerate().skip(start) {
        let backslashes = || bytes[start..at].iter().rev().take_while(|&&b| b == b'\\').count();
        let (apostrophe, quote) = match byte {
            b'\r' | b'\n' => {
                end = at;
                break;
            }
            b'"' => (false, quote_level(backslashes(), Spelling::Plain)),
            b'\'' => (true, quote_level(backslashes(), Spelling::Plain)),
            b'u' | b'U' if bytes[at + 1..].starts_with(b"0022") && backslashes() > 0 => {
                (false, quote_level(backslashes(), Spelling::Unicode))
            }
            _ => continue,
        };
        let closes = match (single, apostrophe) {
            (false, false) | (true, true) => quote.level <= depth,
            // The JSON string around a single-quoted value may end here.
            (true, false) => true,
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
