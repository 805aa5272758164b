//! PII scrubbing before anything is persisted (DESIGN §10).
//!
//! Text enters [`Scrubber::scrub`]; one [`RegexSet`] pass decides which
//! detectors can match at all (clean text costs that single pass), the
//! matching detectors find candidates, validators reject look-alikes (Luhn for
//! cards, mod-97 for IBANs, area rules for SSNs, a real parser for IPv6), and
//! each surviving span is replaced by its kind's placeholder (`[EMAIL]`, ...).
//! Placeholders match no detector, so scrubbing is idempotent.
//!
//! Text that is JSON, or was before a cut, is searched as written as well as
//! decoded, so the patterns also accept JSON's escaped spellings (`\"` at
//! any depth of nesting, `\u0022`, `\u0040`, ...), and a number that is a
//! value, of the document or of JSON held in its strings, is masked by a
//! placeholder quoted for its depth (`"`, `\"`, `\\\"`), so JSON stays JSON at
//! every level.
//!
//! # Layout
//! - this file: [`Scrubber::find`], [`Scrubber::scrub`] and
//!   [`Scrubber::scrub_bytes`], and how a detector's match is taken to its
//!   extent;
//! - `detectors`: what each kind of PII looks like (pattern, extent,
//!   validator, the words that say a match is something else);
//! - `escapes`: escape sequences in text as written, which the detectors see
//!   through and a mask leaves whole;
//! - `json`: JSON text, walked decoded and re-serialised
//!   ([`Scrubber::scrub_json`]), with numbers masked by quoted placeholders;
//! - `lists`: the items of a list under a key that names them all
//!   (`"tel": [...]`);
//! - `validate`: the validators that confirm a detector's match is PII and
//!   not a look-alike.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use detectors::{DETECTORS, Extent, Validator};
use escapes::Escapes;
use json::{JsonNesting, json_number, push_quote, quoted_value};
use lists::list_around;

mod detectors;
mod escapes;
mod json;
mod lists;
mod validate;

/// A kind of personal or secret data the scrubber removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    /// `name@example.com`.
    Email,
    /// International (`+44 20 7946 0958`) and common national formats.
    Phone,
    /// 13–19 digit payment card numbers that pass the Luhn check.
    CardNumber,
    /// International bank account numbers that pass the mod-97 check.
    Iban,
    /// US social security numbers and UK national insurance numbers.
    NationalId,
    /// IPv4 and IPv6 addresses.
    IpAddress,
    /// Provider API keys (`sk-...`, `sk_live_...`, `AIza...`, `AKIA...`, `ASIA...`, `ghp_...`, `glpat-...`,
    /// `gsk_...`, `xai-...`, `xoxb-...`, `SG.`, `ya29.`, `api_key=...`, `AccountKey=...`).
    ApiKey,
    /// Passwords in key-value form (`password=...`, `"pwd": "..."`, `Passwort:`, `passphrase`),
    /// in URL credentials, and HTTP Basic credentials.
    Password,
    /// The token after `Bearer`, or after `Token` in an `Authorization` header.
    BearerToken,
    /// JSON web tokens (`eyJ...`).
    Jwt,
    /// PEM private keys (`-----BEGIN PRIVATE KEY-----` ... `-----END PRIVATE KEY-----`).
    PrivateKey,
}

impl PiiKind {
    /// Every kind, so that a placeholder of any of them can be recognised.
    const ALL: [PiiKind; 11] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::CardNumber,
        PiiKind::Iban,
        PiiKind::NationalId,
        PiiKind::IpAddress,
        PiiKind::ApiKey,
        PiiKind::Password,
        PiiKind::BearerToken,
        PiiKind::Jwt,
        PiiKind::PrivateKey,
    ];

    /// The text that replaces a match.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::CardNumber => "[CARD_NUMBER]",
            PiiKind::Iban => "[IBAN]",
            PiiKind::NationalId => "[NATIONAL_ID]",
            PiiKind::IpAddress => "[IP_ADDRESS]",
            PiiKind::ApiKey => "[API_KEY]",
            PiiKind::Password => "[PASSWORD]",
            PiiKind::BearerToken => "[BEARER_TOKEN]",
            PiiKind::Jwt => "[JWT]",
            PiiKind::PrivateKey => "[PRIVATE_KEY]",
        }
    }
}

/// Detectors compiled once per process; every [`Scrubber`] shares them.
struct Compiled {
    set: RegexSet,
    regexes: Vec<Regex>,
}

#[allow(clippy::expect_used, reason = "the patterns are constants; unit tests compile every one of them")]
static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let patterns = DETECTORS.iter().map(|d| d.pattern);
    Compiled {
        set: RegexSet::new(patterns.clone()).expect("constant PII patterns compile"),
        regexes: patterns.map(|p| Regex::new(p).expect("constant PII pattern compiles")).collect(),
    }
});

/// Finds and replaces PII in free text. Cheap to create and to share across threads.
#[derive(Debug, Clone, Copy)]
pub struct Scrubber {
    compiled: &'static LazyLock<Compiled>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("detectors", &self.regexes.len()).finish()
    }
}

impl Default for Scrubber {
    fn default() -> Self {
        Self::new()
    }
}

impl Scrubber {
    /// A scrubber with all detectors; the first one compiles the patterns.
    pub fn new() -> Self {
        Self { compiled: &COMPILED }
    }

    /// The text with every PII span replaced by its placeholder; borrowed
    /// unchanged when there is nothing to replace.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.replace_pii(text, false)
    }

    /// The text with every PII span replaced by its placeholder, quoted
    /// where it replaces a bare number in `json`, or in JSON held in its
    /// strings, with quotes escaped for that depth.
    ///
    /// A placeholder changes what its neighbours stand next to: a number glued
    /// to an address (`jane@example.com8::1`) stands alone after `[EMAIL]`,
    /// and a word that said a number was something else may have been part of
    /// the secret. So the result is scrubbed again until nothing changes, and
    /// scrubbing stays idempotent. Every pass that changes the text masks some
    /// of what is left, so passes are few; text without PII takes one.
    fn replace_pii<'a>(&self, text: &'a str, json: bool) -> Cow<'a, str> {
        let Cow::Owned(mut scrubbed) = self.replace_pii_once(text, json) else {
            return Cow::Borrowed(text);
        };
        for _ in 1..MAX_PASSES {
            match self.replace_pii_once(&scrubbed, json) {
                Cow::Borrowed(_) => break,
                Cow::Owned(again) => scrubbed = again,
            }
        }
        Cow::Owned(scrubbed)
    }

    /// One pass of [`replace_pii`](Self::replace_pii).
    fn replace_pii_once<'a>(&self, text: &'a str, json: bool) -> Cow<'a, str> {
        let found = self.find(text);
        if found.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut nesting = json.then(JsonNesting::default);
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (kind, range) in found {
            let level = nesting.as_mut().and_then(|nesting| nesting.document_level(text.as_bytes(), range.start));
            let number = level.and_then(|level| Some((level, json_number(text, &range, last)?)));
            match number {
                Some((level, number)) => {
                    out.push_str(&text[last..number.start]);
                    push_quote(&mut out, level);
                    out.push_str(kind.placeholder());
                    push_quote(&mut out, level);
                }
                None => {
                    out.push_str(&text[last..range.start]);
                    out.push_str(kind.placeholder());
                }
            }
            last = range.end;
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }

    /// Scrubs bytes of any kind, such as a rejected message kept for diagnosis:
    /// UTF-8 as by [`scrub_json`](Self::scrub_json); anything else (protobuf)
    /// run by run of valid UTF-8, where the strings inside it are. Borrowed
    /// unchanged when there is nothing to replace.
    pub fn scrub_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if let Ok(text) = std::str::from_utf8(bytes) {
            return match self.scrub_json(text) {
                Cow::Borrowed(_) => Cow::Borrowed(bytes),
                Cow::Owned(text) => Cow::Owned(text.into_bytes()),
            };
        }
        let mut out: Option<Vec<u8>> = None;
        let mut at = 0;
        for chunk in bytes.utf8_chunks() {
            let text = chunk.valid();
            for (kind, range) in self.find(text) {
                // The span is overwritten with a mask of its own length, so the
                // protobuf's length prefixes stay valid and the sample still
                // decodes for diagnosis. A string whose length byte is a digit or
                // letter glues it to a number at the string's start, which can
                // hide that number or (when the match takes the byte) break the
                // framing; privacy comes first in a rejected sample, so the
                // mask may cut through framing and the lengths no longer match.
                let span = &mut out.get_or_insert_with(|| bytes.to_vec())[at + range.start..at + range.end];
                mask(span, kind.placeholder().as_bytes());
            }
            at += text.len() + chunk.invalid().len();
        }
        out.map_or(Cow::Borrowed(bytes), Cow::Owned)
    }

    /// PII spans in `text`, sorted and non-overlapping (the earliest, then
    /// longest, then highest-priority match wins).
    ///
    /// Escape sequences (`\n`, `\t`, `\u000a`, also escaped again as in
    /// `\\n`, ...) count as the separators they stand for: JSON and
    /// debug-printed text glue them to the next word (`\n4111 1111 ...`),
    /// which would otherwise hide a number from the word-boundary and
    /// stands-alone checks; and no span starts inside an escape, so a mask
    /// leaves it whole (`see\n[EMAIL]`, not `see\[EMAIL]`).
    pub fn find(&self, text: &str) -> Vec<(PiiKind, Range<usize>)> {
        let escapes = Escapes::new(text);
        let mut candidates = self.candidates(text, text, &escapes);
        if let Some(view) = escapes.view() {
            // Both passes count: the view shows numbers an escape glued to a
            // letter, the text shows what patterns that spell escapes out need
            // (`\"password\": \"...\"`). Same length, so the spans line up.
            candidates.extend(self.candidates(&view, text, &escapes));
        }
        candidates.sort_by_key(|(range, index)| (range.start, std::cmp::Reverse(range.end), *index));
        let mut found: Vec<(PiiKind, Range<usize>)> = Vec::with_capacity(candidates.len());
        for (range, index) in candidates {
            if found.last().is_none_or(|(_, last)| range.start >= last.end) {
                found.push((DETECTORS[index].kind, range));
            }
        }
        found
    }

    /// Every validated match of every detector in `searched`, overlaps
    /// included, each with the index of its detector. `searched` is `text`
    /// or its escape view, of the same length; quoted values are read in
    /// `text`, where the view's blanks do not hide an escaped closing quote.
    fn candidates(&self, searched: &str, text: &str, escapes: &Escapes<'_>) -> Vec<(Range<usize>, usize)> {
        let compiled: &Compiled = self.compiled;
        let mut candidates: Vec<(Range<usize>, usize)> = Vec::new();
        for index in compiled.set.matches(searched).iter() {
            let detector = &DETECTORS[index];
            for caps in compiled.regexes[index].captures_iter(searched) {
                let Some(m) = caps.get(detector.group) else {
                    continue;
                };
                let passes = |range: &Range<usize>| {
                    let joined = detector.numeric && !stands_alone(searched, range);
                    let named_otherwise =
                        !detector.not_after.is_empty() && follows_word(searched, range.start, detector.not_after);
                    !joined && !named_otherwise
                };
                let mut accept = |range: Range<usize>| {
                    if passes(&range) {
                        candidates.push((range, index));
                    }
                };
                let range = match detector.extent {
                    Extent::Capture => escapes.after(m.range()),
                    Extent::Checked(validate) => match validate(m.as_str()) {
                        Some(len) => escapes.after(m.start()..m.start() + len),
                        None => continue,
                    },
                    Extent::Listed(validate) => {
                        for item in list_around(searched, m.range()) {
                            if validate(&searched[item.clone()]) == Some(item.len()) {
                                accept(item);
                            }
                        }
                        match validate(m.as_str()) {
                            Some(len) => escapes.after(m.start()..m.start() + len),
                            None => continue,
                        }
                    }
                    Extent::Grouped(validate) => {
                        let kept = |range| escapes.after(range).filter(passes);
                        from_later_groups(&compiled.regexes[index], validate, searched, m.range(), kept)
                    }
                    Extent::PastLabels(validate) => {
                        match past_labels(&compiled.regexes[index], validate, searched, m.range()) {
                            Some(range) => escapes.after(range),
                            None => continue,
                        }
                    }
                    Extent::PemBlock => escapes.after(pem_block(searched, m.range())),
                    Extent::Literal if m.as_str().starts_with(|c: char| c.is_ascii_digit()) => Some(m.range()),
                    // An escape that opens a quoted value is part of the secret.
                    Extent::Literal => quoted_value(text, m.range()),
                };
                if let Some(range) = range {
                    accept(range);
                }
            }
        }
        candidates
    }
}

/// The first span that `validate` accepts, and `keep` keeps (as it maps
/// it), of the matches of `regex` that start at a group (of letters and
/// digits) of `found`, the match at its start first, each tried whole and
/// then a group shorter at a time: a valid number that its neighbours say is
/// no secret (`123-4875 4111 1111 1111` passes Luhn, but is glued to `123-`;
/// `4111 1111 1111 1111 102` too, glued to `.5` after it) does not hide one
/// inside it or in a later group. Such a match may reach past `found`, which
/// may stop inside the secret (`05 4111 1111 1111 1111` matches up to its
/// fourth group), to the end of the run of groups. Each try reads
/// [`GROUPED_BYTES`] at most, and a match gets [`GROUPED_TRIES`], so a long
/// run of groups costs no more than its length.
fn from_later_groups(
    regex: &Regex,
    validate: Validator,
    text: &str,
    found: Range<usize>,
    keep: impl Fn(Range<usize>) -> Option<Range<usize>>,
) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let in_group = u8::is_ascii_alphanumeric;
    // No try reads past the last group start's window: a run may be the whole text.
    let reach = found.len() + GROUPED_BYTES;
    let run =
        found.start + bytes[found.start..].iter().take(reach).take_while(|b| in_group(b) || b" .-".contains(b)).count();
    let mut tries = 0;
    let mut start = found.start;
    while start < found.end {
        let window = &text[..run.min(start + GROUPED_BYTES)];
        let mut end = regex.find_at(window, start).filter(|again| again.start() == start).map_or(start, |m| m.end());
        while end > start && tries < GROUPED_TRIES {
            tries += 1;
            if let Some(len) = validate(&text[start..end]) {
                if let Some(kept) = keep(start..start + len) {
                    return Some(kept);
                }
                end = start + len;
            }
            // The number without its last group.
            end = start + bytes[start..end].iter().rposition(|b| !in_group(b)).unwrap_or(0);
            end = start + bytes[start..end].iter().rposition(in_group).map_or(0, |last| last + 1);
        }
        let separator = start + bytes[start..found.end].iter().position(|b| !in_group(b))?;
        start = separator + bytes[separator..found.end].iter().position(in_group)?;
    }
    None
}

/// Validations [`from_later_groups`] tries at most for one match: more than
/// the groups of any number it is used for.
const GROUPED_TRIES: usize = 48;

/// Longer than any number [`Extent::Grouped`] is used for: a card's 19
/// digits with two spaces between every two, an IBAN's 34 characters with a
/// space between every four.
const GROUPED_BYTES: usize = 64;

/// Passes of [`Scrubber::replace_pii`] at most: each that changes the text
/// masks at least one more span, and a pass uncovers a new one only next to
/// a mask, so two or three are the most that real text needs.
const MAX_PASSES: usize = 8;

/// Bytes of the longest IPv6 address in text, `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`.
const LONGEST_IPV6_TEXT: usize = 45;

/// How many leading groups [`past_labels`] passes over at most: more than
/// anyone writes labels before an address, and short of its eight groups.
const LABELS_TRIED: usize = 7;

/// The span of the address that `regex` matched at `found` in `text`, when a
/// label spelt like a group may open the match (`db:2001:db8:...`,
/// `dead:beef:2001:...`). A match holds eight groups at most, so one that
/// opens with a label stops groups short of the address's end, or holds more
/// than `validate` accepts. While no span is valid, or the address goes on
/// after the span (a colon and a group), the match is tried again after a
/// first group of letters. A valid span found so joins the one found before
/// it, whose first group may be the address's own (`fdab:cdef::1`): a label
/// masked too is better than a group of the address left.
fn past_labels(regex: &Regex, validate: Validator, text: &str, found: Range<usize>) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let valid = |range: Range<usize>| validate(&text[range.clone()]).map(|len| range.start..range.start + len);
    let goes_on = |end: usize| matches!(&bytes[end..], [b':', next, ..] if *next == b':' || next.is_ascii_hexdigit());
    let mut span = valid(found.clone());
    let mut tried = found;
    for _ in 0..LABELS_TRIED {
        if span.as_ref().is_some_and(|span| !goes_on(span.end)) {
            break;
        }
        // Only a label of letters passes for a group: a first group with a
        // digit is the address's own, and a match that opens with `::` has no
        // label.
        let Some(colon) = text[tried.clone()]
            .find(':')
            .filter(|&colon| colon > 0 && bytes[tried.start..tried.start + colon].iter().all(u8::is_ascii_alphabetic))
        else {
            break;
        };
        let at = tried.start + colon + 1;
        // Searched up to the end of the run of groups, so a miss reads no further, and never
        // past the longest address: a text that is one long run (`a:b:c:d:` repeated) has a
        // match every few bytes, and reading each to the run's end made the scrub quadratic
        // (a 1 MB dead letter took minutes).
        let run = at
            + bytes[at..]
                .iter()
                .take(LONGEST_IPV6_TEXT)
                .take_while(|b| b.is_ascii_hexdigit() || b":.".contains(b))
                .count();
        let Some(again) = regex.find_at(&text[..run], at).filter(|again| again.start() == at) else {
            break;
        };
        tried = again.range();
        if let Some(valid) = valid(again.range()) {
            span = Some(span.map_or(valid.clone(), |span| span.start..span.end.max(valid.end)));
        }
    }
    span
}

/// Bytes after a PEM header searched for its footer: a 4096-bit RSA key is about 3.3 KB. The
/// bound keeps a text of many headers and no footer linear.
const PEM_BLOCK_BYTES: usize = 8 * 1024;

/// The private key whose header is `header`: through its `-----END ... PRIVATE KEY-----` footer
/// when one follows within [`PEM_BLOCK_BYTES`], else (a sample cut short) through the base64,
/// line breaks and escaped line breaks after the header.
fn pem_block(text: &str, header: Range<usize>) -> Range<usize> {
    const FOOTER_END: &str = "PRIVATE KEY-----";
    let mut window_end = (header.end + PEM_BLOCK_BYTES).min(text.len());
    while !text.is_char_boundary(window_end) {
        window_end -= 1;
    }
    let window = &text[header.end..window_end];
    if let Some(footer) = window.find("-----END ")
        && let Some(end) = window[footer..].find(FOOTER_END)
    {
        return header.start..header.end + footer + end + FOOTER_END.len();
    }
    let body = window.bytes().take_while(|b| b.is_ascii_alphanumeric() || b"+/=\\\r\n ".contains(b)).count();
    header.start..header.end + body
}

/// Overwrites `span` with the placeholder, padded with `*`, or with `*` alone
/// when the placeholder is longer than the span.
fn mask(span: &mut [u8], placeholder: &[u8]) {
    span.fill(b'*');
    if let Some(head) = span.get_mut(..placeholder.len()) {
        head.copy_from_slice(placeholder);
    }
}

/// False when a numeric match is a piece of a longer token: glued to letters
/// or digits, or joined by `-` or `.` to more of them (UUIDs, versions, dates,
/// longer digit runs). `:` and `/` do not join, so `10.0.0.1:8080` and URLs
/// still count.
///
/// A `-` between two dotted quads does not join either: that is a range of
/// addresses (`192.168.1.10-192.168.1.20`), both of them personal data.
fn stands_alone(text: &str, range: &Range<usize>) -> bool {
    let bytes = text.as_bytes();
    let joins = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let quad = dotted_quad(&bytes[range.clone()]);
    let glued_before = match &bytes[..range.start] {
        [.., b] if joins(*b) => true,
        [before @ .., b'-'] if quad && ends_with_dotted_quad(before) => false,
        [.., x, b'-' | b'.'] => joins(*x),
        _ => false,
    };
    let glued_after = match &bytes[range.end..] {
        [b, ..] if joins(*b) => true,
        [b'-', after @ ..] if quad && starts_with_dotted_quad(after) => false,
        [b'-' | b'.', x, ..] => joins(*x),
        _ => false,
    };
    !glued_before && !glued_after
}

/// Four runs of one to three digits joined by dots, and nothing else.
fn dotted_quad(bytes: &[u8]) -> bool {
    let mut parts = 0;
    for part in bytes.split(|&b| b == b'.') {
        parts += 1;
        if !(1..=3).contains(&part.len()) || !part.iter().all(u8::is_ascii_digit) {
            return false;
        }
    }
    parts == 4
}

/// Whether `bytes` open with a dotted quad that no letter, digit or further
/// part continues (a full stop may end a sentence after it).
fn starts_with_dotted_quad(bytes: &[u8]) -> bool {
    let run = bytes.iter().take_while(|b| b.is_ascii_digit() || **b == b'.').count();
    let quad = bytes[..run].strip_suffix(b".").unwrap_or(&bytes[..run]);
    dotted_quad(quad) && !bytes.get(run).is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `bytes` end with a dotted quad that no letter, digit or further
/// part continues.
fn ends_with_dotted_quad(bytes: &[u8]) -> bool {
    let run = bytes.iter().rev().take_while(|b| b.is_ascii_digit() || **b == b'.').count();
    let start = bytes.len() - run;
    dotted_quad(&bytes[start..])
        && !start.checked_sub(1).is_some_and(|at| bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_')
}

/// True when one of `words` (any case) comes just before `start`, apart from
/// spaces and a `:`, `=` or `.` (`version 1.2.3.4`, `ver.: 1.2.3.4`).
fn follows_word(text: &str, start: usize, words: &[&str]) -> bool {
    let before = text[..start].trim_end_matches([' ', '\t', ':', '=', '.']);
    let letters = before.bytes().rev().take_while(u8::is_ascii_alphabetic).count();
    let word = &before[before.len() - letters..];
    words.iter().any(|w| w.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests;
