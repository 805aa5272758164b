//! Escape sequences in text as written. JSON and debug output glue an
//! escape's letter to the word after it (`\n4111 1111 ...`,
//! `see\nalice@example.com`), once per level of nesting (`\\n`): the escape
//! view shows the detectors a separator there, and a match that starts on
//! the letter gives it back, so the mask leaves the escape whole.
//!
//! Line breaks, tabs (`\n`, `\t`, `\r`) and escaped characters (`\u00e9`)
//! are escapes in any text, as debug output writes them too. A backspace or
//! a form feed (`\b`, `\f`) only a JSON encoder writes, while a path or a
//! regex spells them often (`C:\new\bob@corp.com`, `\bword\b`): they are
//! escapes only in JSON, and only after a run of backslashes that escapes at
//! the text's own level (`\b`, `\\\b`; `\\b` is a backslash and a letter).
//!
//! The same view shows the detectors a space where a Unicode space separates
//! digit groups (a no-break, figure, thin or ideographic space: what word
//! processors and many locales put between a card's, an IBAN's or a phone
//! number's groups), blanked to one ASCII space per byte, so the patterns
//! take them as runs of two or three spaces.

use std::cell::OnceCell;
use std::ops::Range;

use super::json::looks_like_json;

/// Unicode spaces that separate digit groups as a space does: no-break, the en to hair spaces
/// (figure and thin among them), narrow no-break, medium mathematical and ideographic.
const SEPARATING_SPACES: [&str; 15] = [
    "\u{a0}", "\u{2000}", "\u{2001}", "\u{2002}", "\u{2003}", "\u{2004}", "\u{2005}", "\u{2006}", "\u{2007}",
    "\u{2008}", "\u{2009}", "\u{200a}", "\u{202f}", "\u{205f}", "\u{3000}",
];

/// The escape sequences of one text.
pub(super) struct Escapes<'a> {
    text: &'a str,
    /// Whether the text is JSON or holds it, read when a `\b` or `\f` first asks.
    json: OnceCell<bool>,
}

impl<'a> Escapes<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self { text, json: OnceCell::new() }
    }

    /// The text with every escape sequence that ends in a letter (`\n`, `\t`,
    /// `\r`, `\u00e9`, and in JSON `\b` and `\f`) blanked to spaces, its
    /// backslashes and letter alike, or `None` (no allocation) when there is
    /// none. Content nested in JSON is escaped once per level (`\\n`,
    /// `\\\\n`), so the whole run of backslashes goes with the letter: the
    /// letter left behind would be glued to what follows. Quote and slash
    /// escapes stay, as neither character joins a token. A line break's letter
    /// after a literal backslash (`C:\new`) is blanked too; that only adds a
    /// separator, and the raw text is searched as well. Same-length,
    /// ASCII-only edits keep every byte offset and char boundary valid in the
    /// original, where the spans found in the view are replaced.
    pub(super) fn view(&self) -> Option<String> {
        let bytes = self.text.as_bytes();
        let mut view: Option<Vec<u8>> = None;
        if let Some(mut at) = memchr::memchr(b'\\', bytes) {
            loop {
                let backslashes = bytes[at..].iter().take_while(|&&b| b == b'\\').count();
                let escaped = at + backslashes;
                let end = self.end(backslashes, escaped);
                if end > escaped {
                    view.get_or_insert_with(|| bytes.to_vec())[at..end].fill(b' ');
                }
                match memchr::memchr(b'\\', &bytes[end..]) {
                    Some(next) => at = end + next,
                    None => break,
                }
            }
        }
        for at in memchr::memchr3_iter(0xC2, 0xE2, 0xE3, bytes) {
            if let Some(space) = SEPARATING_SPACES.iter().find(|space| bytes[at..].starts_with(space.as_bytes())) {
                view.get_or_insert_with(|| bytes.to_vec())[at..at + space.len()].fill(b' ');
            }
        }
        // Only ASCII bytes and whole characters were overwritten, with ASCII, so the view is
        // still UTF-8.
        view.and_then(|view| String::from_utf8(view).ok())
    }

    /// `range` without the part of an escape sequence it starts inside, or
    /// `None` when nothing is left: in `see\nalice@example.com` the address
    /// pattern takes the `n` for a letter of the address, and masking it would
    /// leave a lone backslash, which escapes whatever comes next (`see\[EMAIL]`).
    /// The escape view blanks such escapes, so it finds the same span.
    pub(super) fn after(&self, range: Range<usize>) -> Option<Range<usize>> {
        let bytes = self.text.as_bytes();
        // No escape is longer than its backslashes and five bytes (`\u000a`).
        let from = range.start.saturating_sub(5);
        let Some(backslash) = memchr::memrchr(b'\\', &bytes[from..range.start]) else {
            return Some(range);
        };
        let letter = from + backslash + 1;
        let backslashes = bytes[..letter].iter().rev().take_while(|&&b| b == b'\\').count();
        let end = self.end(backslashes, letter).max(range.start);
        (end < range.end).then_some(end..range.end)
    }

    /// Where the escape sequence whose letter is at `letter`, after a run of
    /// `backslashes`, ends: past `n`, `t` or `r`, past `u` and four hex
    /// digits, past `b` or `f` in JSON; `letter` itself when no such escape is
    /// there.
    fn end(&self, backslashes: usize, letter: usize) -> usize {
        let bytes = self.text.as_bytes();
        let four_hex_digits =
            bytes.get(letter + 1..letter + 5).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit));
        match bytes.get(letter) {
            Some(b'n' | b't' | b'r') => letter + 1,
            Some(b'b' | b'f') if backslashes % 2 == 1 && self.json() => letter + 1,
            Some(b'u') if four_hex_digits => letter + 5,
            _ => letter,
        }
    }

    /// Whether the text is JSON, or holds some: it opens as JSON does, or
    /// escapes a quote somewhere (`\"`, `\u0022`), as JSON in a string does.
    fn json(&self) -> bool {
        *self.json.get_or_init(|| {
            let bytes = self.text.as_bytes();
            looks_like_json(self.text)
                || memchr::memmem::find(bytes, br#"\""#).is_some()
                || memchr::memmem::find(bytes, br"\u0022").is_some()
        })
    }
}
