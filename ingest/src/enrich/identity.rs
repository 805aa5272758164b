//! PII scrubbing of the identity and label fields of every event (DESIGN §10), and replacement
//! of the control and invisible characters in them, memoised.
//!
//! App, environment, provider, model, prompt and finish-reason fields are stored in the lake (the
//! app even names a folder, `app=<value>`) and exported as Prometheus label values, so PII a
//! producer put in them must be masked like free text. They are also shown to operators in Grafana,
//! terminals, logs and file listings, so once masked they lose the characters that would let a
//! producer make one name render as another or drive a terminal (which ones:
//! `is_control_or_invisible`). A line break or tab becomes a space, so a multi-line error type
//! still reads as one line; any other such character becomes U+FFFD rather than disappearing, so
//! names that differ only by it stay apart and the operator sees that something was there; the
//! event is kept, as it still records a real call. The regex [`Scrubber`] costs microseconds per
//! value, and running it on about ten fields per event would cost more than the rest of the
//! pipeline. These fields are
//! low-cardinality, though (a fleet has tens of apps, models and prompt versions), so
//! [`IdentityScrubber`] remembers the values it has scrubbed recently (scrubbing is both steps
//! here, and a value is clean when neither changes it) and runs the scrubber only on values it has
//! not seen:
//!
//! - A value that scrubbed to itself (clean, nearly all of them) is remembered by value and
//!   found again by hash plus an exact comparison, so no hash collision can let a value with
//!   PII pass as clean.
//! - A value the scrubber changed is remembered by a seeded 128-bit hash of the raw value
//!   ([`id_key`]) with its scrubbed form: the raw PII is not kept in memory, a producer that
//!   repeats the same PII in every event (a misconfigured `environment`) does not pay a scrub
//!   per event, and a collision could at worst return another value's scrubbed form, never
//!   unscrubbed text. A value changed only by the character replacement is remembered here
//!   too: never by value among the clean ones, where a later lookup would pass its controls on.
//! - Values longer than [`MEMO_MAX_VALUE_BYTES`] are scrubbed every time and not remembered:
//!   identities are short names, and a long value is free text that would let the memo's memory
//!   grow with what producers send.
//! - The memo holds at most [`MEMO_CAPACITY`] values and is cleared whole when full, instead of
//!   evicting one by one: a fleet's working set is far smaller, so a full memo means some field
//!   carries a high-cardinality value (a per-request id in `prompt_id`), which the memo could not
//!   serve anyway. Clearing costs one scrub per distinct value afterwards, what no memo would
//!   cost, and keeps the hit path free of recency bookkeeping.
//!
//! The enricher is shared as `Arc<Enricher>` and called with `&self`, so the memo sits behind a
//! [`Mutex`], taken once per event ([`IdentityScrubber::session`]) rather than per field: each
//! source loop has one processing thread, so the lock is uncontended (two atomic operations).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::Scrubber;
use crate::FastHashState;
use crate::id_key::{IdKeyHasher, id_key};

/// Most values the memo remembers (clean and scrubbed together) before it is cleared.
pub const MEMO_CAPACITY: usize = 4_096;

/// Longest value, in bytes, the memo remembers; longer ones are scrubbed every time. Bounds the
/// memo at about a mebibyte of strings.
pub const MEMO_MAX_VALUE_BYTES: usize = 256;

/// True for the characters no identity or label value keeps: every control (Unicode general
/// category Cc: C0 with tab and newline, DEL, C1), which in a label or a log line breaks lines or
/// sends terminal escapes, and the invisible format characters that make a name render as
/// another (Trojan Source, CVE-2021-42574): the bidirectional embeddings, overrides and isolates
/// with their marks (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C), the zero-width
/// space (U+200B), the byte order mark (U+FEFF), the other invisibles that can hide inside a
/// name (soft hyphen U+00AD, word joiner and invisible operators U+2060–U+2064, the Mongolian
/// vowel separator U+180E, the deprecated format controls U+206A–U+206F) and the line and
/// paragraph separators (U+2028, U+2029), which break a line as a newline does.
///
/// Format characters (category Cf) are not replaced as a class, because real names need some:
/// the zero-width joiner (U+200D) and the tag characters build emoji sequences, and the
/// zero-width non-joiner (U+200C) is spelling in Persian and Indic scripts. Variation selectors
/// (category Mn), which choose how an emoji is drawn, are kept too.
fn is_control_or_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                // Invisible fillers nothing in a name needs: the combining grapheme joiner, the
                // Hangul fillers, the Khmer inherent vowels.
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{3164}'
                | '\u{FFA0}'
        )
}

/// What an [`is_control_or_invisible`] character becomes: a space for the characters that
/// separate words or lines (tab, line feed, vertical tab, form feed, carriage return, next line
/// U+0085, the line and paragraph separators), which producers put in multi-line error types and
/// exception names and which read as a space on one line; U+FFFD for the rest, which have no
/// harmless printable meaning.
fn replacement(c: char) -> char {
    match c {
        '\t' | '\n' | '\u{000B}' | '\u{000C}' | '\r' | '\u{0085}' | '\u{2028}' | '\u{2029}' => ' ',
        _ => char::REPLACEMENT_CHARACTER,
    }
}

/// `text` as a name is kept: each [`is_control_or_invisible`] character replaced (see
/// [`replacement`]), in Unicode NFC (so `café` typed with a combining accent is the same app as
/// `café` typed with `é`) and without leading or trailing white space (`checkout ` is
/// `checkout`); as it was when none of that changes it.
fn canonical_name(text: Cow<'_, str>) -> Cow<'_, str> {
    // Names are nearly always printable ASCII without edge spaces, which one pass over the
    // bytes settles: ASCII is NFC.
    let printable_ascii = text.bytes().all(|byte| (0x20..0x7f).contains(&byte));
    if printable_ascii && !text.starts_with(' ') && !text.ends_with(' ') {
        return text;
    }
    let replaced = if printable_ascii { text } else { replace_control_and_invisible(text) };
    let normalized = match icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(&replaced) {
        Cow::Borrowed(_) => replaced,
        Cow::Owned(normalized) => Cow::Owned(normalized),
    };
    let trimmed = normalized.trim();
    if trimmed.len() == normalized.len() {
        return normalized;
    }
    // Owned even when only trimmed: a borrowed result means "unchanged" to the callers.
    Cow::Owned(trimmed.to_owned())
}

/// `text` with each [`is_control_or_invisible`] character replaced (see [`replacement`]), as it
/// was when there is none.
fn replace_control_and_invisible(text: Cow<'_, str>) -> Cow<'_, str> {
    let Some(first) = text.find(is_control_or_invisible) else {
        return text;
    };
    // Each replacement may take a byte more than the character it replaces (C1 controls and
    // U+061C are two bytes, U+FFFD three).
    let mut replaced = String::with_capacity(text.len() + text.len() / 2);
    replaced.push_str(&text[..first]);
    for c in text[first..].chars() {
        replaced.push(if is_control_or_invisible(c) { replacement(c) } else { c });
    }
    Cow::Owned(replaced)
}

/// Scrubs identity and label values through a bounded memo of recently seen values.
pub struct IdentityScrubber {
    scrubber: Scrubber,
    memo: Mutex<Memo>,
}

/// What the scrubber made of recently seen values.
#[derive(Default)]
struct Memo {
    /// Values neither the scrubber nor the character replacement changed.
    clean: HashSet<Box<str>, FastHashState>,
    /// The scrubbed form, characters replaced, of every other value, keyed by [`id_key`] of the
    /// raw value.
    scrubbed: HashMap<u128, Box<str>, IdKeyHasher>,
}

impl Memo {
    fn len(&self) -> usize {
        self.clean.len() + self.scrubbed.len()
    }

    /// Room for one more value: cleared whole when full (see the module docs for why).
    fn make_room(&mut self) {
        if self.len() >= MEMO_CAPACITY {
            self.clean.clear();
            self.scrubbed.clear();
        }
    }
}

impl IdentityScrubber {
    /// An empty memo in front of `scrubber`.
    pub fn new(scrubber: Scrubber) -> Self {
        Self { scrubber, memo: Mutex::default() }
    }

    /// Exclusive use of the memo for the fields of one event.
    pub fn session(&self) -> IdentitySession<'_> {
        // A panic while the lock was held (only an allocation failure can panic in there) leaves
        // a memo whose every entry is still a correct scrub result, so poisoning is ignored.
        let memo = self.memo.lock().unwrap_or_else(PoisonError::into_inner);
        IdentitySession { scrubber: self.scrubber, memo }
    }

    /// How many values the memo remembers.
    pub fn memo_len(&self) -> usize {
        self.memo.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Clone for IdentityScrubber {
    /// A clone starts with an empty memo: the memo is a cache, not state.
    fn clone(&self) -> Self {
        Self::new(self.scrubber)
    }
}

impl std::fmt::Debug for IdentityScrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the size: the values would fill logs. `try_lock`, because formatting while this
        // thread holds a session must not deadlock.
        let memo_len = self.memo.try_lock().ok().map(|memo| memo.len());
        f.debug_struct("IdentityScrubber").field("memo_len", &memo_len).finish()
    }
}

/// The memo, held for the fields of one event.
pub struct IdentitySession<'a> {
    scrubber: Scrubber,
    memo: MutexGuard<'a, Memo>,
}

impl std::fmt::Debug for IdentitySession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySession").field("memo_len", &self.memo.len()).finish()
    }
}

impl IdentitySession<'_> {
    /// Replaces `value` with its scrubbed form (PII masked, then control and invisible
    /// characters replaced); a clean value is left as is, without copying. True when the value
    /// changed, which may have made it longer: a placeholder can be longer than what it masks,
    /// and U+FFFD is three bytes where a C1 control is two.
    pub fn scrub(&mut self, value: &mut String) -> bool {
        if value.len() > MEMO_MAX_VALUE_BYTES {
            return match self.scrubbed(value) {
                Cow::Borrowed(_) => false,
                Cow::Owned(scrubbed) => {
                    *value = scrubbed;
                    true
                }
            };
        }
        if self.memo.clean.contains(value.as_str()) {
            return false;
        }
        let key = id_key(value);
        if let Some(scrubbed) = self.memo.scrubbed.get(&key) {
            value.clear();
            value.push_str(scrubbed);
            return true;
        }
        match self.scrubbed(value) {
            Cow::Borrowed(_) => {
                self.memo.make_room();
                self.memo.clean.insert(Box::from(value.as_str()));
                false
            }
            Cow::Owned(scrubbed) => {
                self.memo.make_room();
                self.memo.scrubbed.insert(key, Box::from(scrubbed.as_str()));
                *value = scrubbed;
                true
            }
        }
    }

    /// What [`scrub`](Self::scrub) makes of `value`, without the memo. The characters are
    /// replaced after the PII is masked, so the detectors see the separators (tabs, newlines)
    /// a producer wrote between an address and its neighbours.
    fn scrubbed<'v>(&self, value: &'v str) -> Cow<'v, str> {
        canonical_name(self.scrubber.scrub(value))
    }

    /// [`scrub`](Self::scrub) for an optional field.
    pub fn scrub_opt(&mut self, value: &mut Option<String>) {
        if let Some(value) = value.as_mut() {
            self.scrub(value);
        }
    }

    /// [`scrub_opt`](Self::scrub_opt) for a version field: a value that is only a version
    /// number (`1.2.3.4`, `v10.0.1.2`, `2.0.1-rc.1`) is kept as it is, where the address
    /// detector would mask a four-part one as an IPv4 address, merging versions and hiding a
    /// prompt change from drift detection.
    pub fn scrub_version(&mut self, value: &mut Option<String>) {
        if value.as_deref().is_some_and(is_version_number) {
            return;
        }
        self.scrub_opt(value);
    }
}

/// True for a bare version number: an optional `v`, two to six dot-separated runs of digits,
/// and an optional pre-release or build suffix of letters, digits, dots and dashes (as semver
/// spells it, `-rc.1`, `+build.5`). Nothing else, so no address with text around it passes.
fn is_version_number(value: &str) -> bool {
    let value = value.strip_prefix(['v', 'V']).unwrap_or(value);
    let (core, suffix) = match value.find(['-', '+']) {
        Some(at) => value.split_at(at),
        None => (value, ""),
    };
    let parts = core.split('.').count();
    (2..=6).contains(&parts)
        && core.split('.').all(|part| !part.is_empty() && part.len() <= 9 && part.bytes().all(|b| b.is_ascii_digit()))
        && suffix.bytes().skip(1).all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && suffix.len() != 1
}

#[cfg(test)]
mod tests;
