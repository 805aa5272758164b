//! Escape sequences in text as written. JSON and debug output glue an
//! escape's letter to the word after it (`\n4111 1111 ...`,
//! `see\nalice@example.com`), once per level of nesting (`\\n`): the escape
//! view shows the detectors a separator there, and a match that starts on
//! the letter gives it back, so the mask leaves the escape whole.

use std::ops::Range;

/// `text` with every escape sequence that ends in a letter (`\n`, `\t`,
/// `\r`, `\b`, `\f`, `\u00e9`) blanked to spaces, its backslashes and letter
/// alike, or `None` (no allocation) when there is none. Content nested in JSON
/// is escaped once per level (`\\n`, `\\\\n`), so the whole run of
/// backslashes goes with the letter: the letter left behind would be glued to
/// what follows. Quote and slash escapes stay, as neither character joins a
/// token. A letter after a literal backslash (`C:\new`) is blanked too; that
/// only adds a separator, and the raw text is searched as well.
/// Same-length, ASCII-only edits keep every byte offset and char boundary
/// valid in the original, where the spans found in the view are replaced.
pub(super) fn unescaped_view(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut view: Option<Vec<u8>> = None;
    let mut at = memchr::memchr(b'\\', bytes)?;
    loop {
        let escaped = at + bytes[at..].iter().take_while(|&&b| b == b'\\').count();
        let end = escape_end(bytes, escaped);
        if end > escaped {
            view.get_or_insert_with(|| bytes.to_vec())[at..end].fill(b' ');
        }
        match memchr::memchr(b'\\', &bytes[end..]) {
            Some(next) => at = end + next,
            None => break,
        }
    }
    // Only ASCII bytes were overwritten, with ASCII, so the view is still UTF-8.
    view.and_then(|view| String::from_utf8(view).ok())
}

/// Where the escape sequence whose letter is at `letter` (after a run of
/// backslashes) ends: past `n`, `t`, `r`, `b` or `f`, past `u` and four hex
/// digits; `letter` itself when no such escape is there.
fn escape_end(bytes: &[u8], letter: usize) -> usize {
    let four_hex_digits = bytes.get(letter + 1..letter + 5).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit));
    match bytes.get(letter) {
        Some(b'n' | b't' | b'r' | b'b' | b'f') => letter + 1,
        Some(b'u') if four_hex_digits => letter + 5,
        _ => letter,
    }
}

/// `range` without the part of an escape sequence it starts inside, or
/// `None` when nothing is left: in `see\nalice@example.com` the address
/// pattern takes the `n` for a letter of the address, and masking it would
/// leave a lone backslash, which escapes whatever comes next (`see\[EMAIL]`).
/// The escape view blanks such escapes, so it finds the same span.
pub(super) fn after_escape(text: &str, range: Range<usize>) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    // No escape is longer than its backslashes and five bytes (`\u000a`).
    let from = range.start.saturating_sub(5);
    let Some(backslash) = memchr::memrchr(b'\\', &bytes[from..range.start]) else {
        return Some(range);
    };
    let end = escape_end(bytes, from + backslash + 1).max(range.start);
    (end < range.end).then_some(end..range.end)
}
