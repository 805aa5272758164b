//! Lists under a key that names every item (`"tel": [...]`, `"ssn": [...]`):
//! a pattern reads the key and the first item, or the `[`, and every item is
//! read here, each for its validator to judge whole.

use std::ops::Range;

use super::json::closing_quote;

/// The items of the list in which `capture` (a detector's match after a key)
/// is the first item or the `[`, all of them read from the list's opening:
/// the first item may be something else (`"tel": ["n/a", ...]`, where the
/// capture is the `[`), or a placeholder whose own `[` the pattern took
/// (`"tel": ["[PHONE]", ...]`). None when the capture is no list's.
pub(super) fn list_around(text: &str, capture: Range<usize>) -> impl Iterator<Item = Range<usize>> + '_ {
    let bracket = &text[capture.clone()] == "[";
    let opened = opened_before(text, capture.start).or(bracket.then_some(capture.end));
    opened.into_iter().flat_map(move |from| list_items(text, from))
}

/// Just after the `[` of the list whose first item is the value at `start`:
/// `[` before it, apart from spaces and the quotes of a string item, escaped
/// or not. `None` when the value is no list's first item.
fn opened_before(text: &str, start: usize) -> Option<usize> {
    let before = text[..start].trim_end_matches([' ', '\t', '\r', '\n', '"', '\'', '\\']);
    before.ends_with('[').then_some(before.len())
}

/// The items of a list from `from`, where one starts, up to the end of the
/// list or an item that is an object or a list: the text of each item that is
/// a number or a string of one, within its quotes. Any other item (`"n/a"`,
/// `null`) is passed over, a string whole, commas and brackets in it too. An
/// item may be spaced (`078 05 1120`); its validator says whether it is what
/// the list's key names.
fn list_items(text: &str, from: usize) -> impl Iterator<Item = Range<usize>> + '_ {
    let bytes = text.as_bytes();
    let mut at = from;
    std::iter::from_fn(move || {
        loop {
            at += bytes[at..].iter().take_while(|b| b" \t\r\n,".contains(b)).count();
            let backslashes = bytes[at..].iter().take_while(|&&b| b == b'\\').count();
            let item = match bytes.get(at + backslashes) {
                None | Some(b']' | b'}' | b'[' | b'{') => return None,
                Some(b'"' | b'\'') => {
                    let opening = at..at + backslashes + 1;
                    let closing = closing_quote(text, opening.clone());
                    at = closing.end;
                    opening.end..closing.start
                }
                Some(_) => {
                    let start = at;
                    at += bytes[at..].iter().take_while(|b| !b" \t\r\n,]}".contains(b)).count();
                    start..at
                }
            };
            let value = &bytes[item.clone()];
            let lead = value.iter().take_while(|&&b| b == b' ').count();
            let trail = value[lead..].iter().rev().take_while(|&&b| b == b' ').count();
            let number = &value[lead..value.len() - trail];
            if number.iter().any(u8::is_ascii_digit)
                && number.iter().all(|b| b.is_ascii_digit() || b" .eE+-".contains(b))
            {
                return Some(item.start + lead..item.end - trail);
            }
        }
    })
}
