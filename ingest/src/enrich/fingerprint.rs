//! Content fingerprints: find repeated inputs and near-duplicate outputs
//! without storing the text (DESIGN §5 `input_hash`, `output_hash`,
//! `output_simhash`).
//!
//! Raw input or output text enters; [`content_hash`] leaves an exact-match
//! key (BLAKE3 of the whitespace-normalised text) and [`simhash64`] a 64-bit
//! Charikar SimHash whose [`hamming`] distance measures how much two outputs
//! differ. Both are pure functions of the text, stable across runs,
//! platforms and versions, because the lake keeps them forever.
//!
//! Both run on every event that carries content, so each has an ASCII fast path that reads the
//! bytes once; text with any non-ASCII byte takes the Unicode path, which yields the same values.
//!
//! Unkeyed, anyone who can read the lake can confirm a guessed short prompt or answer by
//! fingerprinting the guess. With a [`FingerprintKey`] (`[fingerprint]` in the config),
//! [`keyed_content_hash`] is BLAKE3 in keyed mode over the same normalised text, and
//! [`keyed_simhash64`] passes every shingle through SipHash-2-4 under a key derived from the same
//! secret before it votes: without the key neither can be recomputed, and under one key the
//! values compare exactly as the unkeyed ones do.

use siphasher::sip::SipHasher24;

/// Words per shingle: pairs keep word order in the fingerprint while a
/// one-word edit still touches only two features.
const SHINGLE_WORDS: usize = 2;

/// BLAKE3 of the text with whitespace runs collapsed to one space and the
/// ends trimmed, as 32 lowercase hex characters (128 bits).
///
/// Whitespace is normalised so that re-indented or re-wrapped prompts still
/// count as the same input.
pub fn content_hash(text: &str) -> String {
    hex_prefix(&blake3::hash(&normalise_whitespace(text)))
}

/// [`content_hash`] under a secret key: BLAKE3 in keyed mode over the same normalised text, so
/// equal texts still hash equal under one key, and a guess cannot be checked without it.
pub fn keyed_content_hash(key: &FingerprintKey, text: &str) -> String {
    hex_prefix(&blake3::keyed_hash(&key.hash_key, &normalise_whitespace(text)))
}

/// The text with whitespace runs collapsed to one space and the ends trimmed, as one buffer:
/// BLAKE3's per-call overhead dominates when it is fed word by word.
fn normalise_whitespace(text: &str) -> Vec<u8> {
    let mut normalised = Vec::with_capacity(text.len());
    if text.is_ascii() {
        // Not `trim_ascii`: it keeps the vertical tab, which `char::is_whitespace` counts.
        let bytes = text.as_bytes();
        let start = bytes.iter().position(|&byte| !is_ascii_whitespace_byte(byte)).unwrap_or(bytes.len());
        let end = bytes.iter().rposition(|&byte| !is_ascii_whitespace_byte(byte)).map_or(start, |last| last + 1);
        collapse_ascii_whitespace(&bytes[start..end], &mut normalised);
    } else {
        for word in text.split_whitespace() {
            if !normalised.is_empty() {
                normalised.push(b' ');
            }
            normalised.extend_from_slice(word.as_bytes());
        }
    }
    normalised
}

/// The first 16 bytes of a hash as 32 lowercase hex characters.
fn hex_prefix(hash: &blake3::Hash) -> String {
    let mut hex = String::with_capacity(32);
    for byte in &hash.as_bytes()[..16] {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes per block of [`collapse_ascii_whitespace`]: two 16-byte vector compares per mask.
const COLLAPSE_BLOCK: usize = 32;

/// One byte of [`collapse_ascii_whitespace`]'s slow path.
fn push_collapsed(out: &mut Vec<u8>, byte: u8, after_whitespace: &mut bool) {
    let whitespace = is_ascii_whitespace_byte(byte);
    if !whitespace {
        out.push(byte);
    } else if !*after_whitespace {
        out.push(b' ');
    }
    *after_whitespace = whitespace;
}

/// For ASCII, `char::is_whitespace` is exactly these six bytes, so the words are the Unicode
/// path's.
fn is_ascii_whitespace_byte(byte: u8) -> bool {
    (byte == b' ') | is_ascii_control_whitespace(byte)
}

/// `\t`, `\n`, vertical tab, form feed and `\r`: the whitespace bytes other than the space.
/// Branch-free (one subtraction and one compare), so loops over it vectorise.
fn is_ascii_control_whitespace(byte: u8) -> bool {
    byte.wrapping_sub(b'\t') < 5
}

/// Appends `text` (already trimmed) to `out` with every whitespace run replaced by one space.
///
/// Most of a prose text is already in that form, so it is checked a block at a time: a block
/// whose whitespace is all single spaces is copied whole, and only blocks holding a newline, a
/// tab or a run go byte by byte. The masks are plain loops that the compiler turns into vector
/// compares.
fn collapse_ascii_whitespace(text: &[u8], out: &mut Vec<u8>) {
    let mut after_whitespace = false;
    let mut blocks = text.chunks_exact(COLLAPSE_BLOCK);
    for block in &mut blocks {
        // Non-short-circuiting folds over the bytes themselves: no early exit and no
        // intermediate array, so each is a few vector compares.
        let other_than_space = block.iter().fold(false, |any, &byte| any | is_ascii_control_whitespace(byte));
        let run = block
            .iter()
            .zip(&block[1..])
            .fold(after_whitespace & is_ascii_whitespace_byte(block[0]), |any, (&a, &b)| {
                any | (is_ascii_whitespace_byte(a) & is_ascii_whitespace_byte(b))
            });
        if !other_than_space && !run {
            out.extend_from_slice(block);
            after_whitespace = is_ascii_whitespace_byte(block[COLLAPSE_BLOCK - 1]);
        } else {
            for &byte in block {
                push_collapsed(out, byte, &mut after_whitespace);
            }
        }
    }
    for &byte in blocks.remainder() {
        push_collapsed(out, byte, &mut after_whitespace);
    }
}

/// Charikar SimHash over lower-cased word shingles (pairs of adjacent words;
/// a single word when the text has only one). Words are runs of alphanumeric
/// characters. Empty text hashes to 0.
pub fn simhash64(text: &str) -> u64 {
    simhash_of_features(text, Unkeyed)
}

/// [`simhash64`] under a secret key: each shingle's hash is passed through SipHash-2-4 (a keyed
/// pseudo-random function) before it votes. The features stay one per shingle, so a one-word
/// edit still changes only the shingles that hold the word and the Hamming distance between
/// two texts' values under one key tracks their difference as the unkeyed one does; values
/// under different keys are unrelated. Empty text still hashes to 0.
pub fn keyed_simhash64(key: &FingerprintKey, text: &str) -> u64 {
    simhash_of_features(text, Keyed(&key.feature_prf))
}

/// [`simhash64`] with every shingle hash mapped by `features`; generic so that the unkeyed path
/// compiles to exactly what it was before keys existed.
fn simhash_of_features(text: &str, features: impl Features) -> u64 {
    let mut shingles = Shingles::new(features);
    if text.is_ascii() {
        // One pass over the bytes: for ASCII, `char::is_alphanumeric` is `is_ascii_alphanumeric`
        // and the running FNV-1a equals `word_hash` of the word.
        let mut hash = FNV_OFFSET;
        let mut in_word = false;
        for &byte in text.as_bytes() {
            let folded = ASCII_WORD_BYTE[usize::from(byte)];
            if folded != 0 {
                hash = fnv1a_step(hash, folded);
                in_word = true;
            } else if in_word {
                shingles.push_word(hash);
                hash = FNV_OFFSET;
                in_word = false;
            }
        }
        if in_word {
            shingles.push_word(hash);
        }
    } else {
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            shingles.push_word(word_hash(word));
        }
    }
    shingles.finish()
}

/// BLAKE3 `derive_key` context of the SimHash feature key. Changing it changes every keyed
/// `output_simhash`, as a new key would.
const FEATURE_KEY_CONTEXT: &str = "driftwatch 2026-12 output_simhash shingle feature key";

/// The secret that keys content fingerprints (`[fingerprint]` in the config), so that reading
/// the lake is not enough to confirm a guessed prompt or answer. Its `Debug` shows nothing of it
/// and no error quotes it.
#[derive(Clone)]
pub struct FingerprintKey {
    /// BLAKE3's key for `input_hash` and `output_hash`: the secret itself.
    hash_key: [u8; 32],
    /// The shingle PRF of `output_simhash`, under a key derived from the secret so that the two
    /// uses share no key bytes.
    feature_prf: SipHasher24,
}

impl FingerprintKey {
    /// Hex characters of a key as configured: 32 bytes, what `openssl rand -hex 32` prints.
    pub const HEX_CHARS: usize = 64;

    /// A key from its 32 secret bytes.
    pub fn from_bytes(secret: [u8; 32]) -> Self {
        let derived = blake3::derive_key(FEATURE_KEY_CONTEXT, &secret);
        let mut feature_key = [0u8; 16];
        feature_key.copy_from_slice(&derived[..16]);
        Self { hash_key: secret, feature_prf: SipHasher24::new_with_key(&feature_key) }
    }

    /// A key written as 64 hex characters in either case; surrounding whitespace is ignored, as a
    /// file written by `openssl rand -hex 32` ends in a newline.
    pub fn from_hex(text: &str) -> Result<Self, KeyFormatError> {
        let text = text.trim();
        let found = text.chars().count();
        if found != Self::HEX_CHARS {
            return Err(KeyFormatError::Length { found });
        }
        let mut secret = [0u8; 32];
        for (index, c) in text.chars().enumerate() {
            let nibble = c.to_digit(16).ok_or(KeyFormatError::NotHex { position: index + 1 })?;
            // A hex digit is below 16, so the cast keeps it whole.
            secret[index / 2] |= (nibble as u8) << if index % 2 == 0 { 4 } else { 0 };
        }
        Ok(Self::from_bytes(secret))
    }
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(<redacted>)")
    }
}

/// Why a configured key is not one. Says what is wrong without quoting any of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// Too short or too long; `found` counts characters once surrounding whitespace is trimmed.
    #[error("must be 64 hex characters (32 bytes) but has {found}")]
    Length { found: usize },
    /// `position` counts characters from 1 once surrounding whitespace is trimmed.
    #[error("must be 64 hex characters (32 bytes) but character {position} is not a hex digit (0-9, a-f)")]
    NotHex { position: usize },
}

/// Number of differing bits: 0 for identical fingerprints, about 32 for unrelated texts.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// What a shingle's hash becomes before it votes: itself, or a keyed function of it.
trait Features: Copy {
    fn feature(self, shingle: u64) -> u64;
}

/// The stored, unkeyed SimHash: a shingle's hash is its feature.
#[derive(Clone, Copy)]
struct Unkeyed;

impl Features for Unkeyed {
    #[inline(always)]
    fn feature(self, shingle: u64) -> u64 {
        shingle
    }
}

/// The keyed SimHash: a shingle's feature is SipHash-2-4 of its hash under the feature key.
#[derive(Clone, Copy)]
struct Keyed<'a>(&'a SipHasher24);

impl Features for Keyed<'_> {
    #[inline]
    fn feature(self, shingle: u64) -> u64 {
        self.0.hash(&shingle.to_le_bytes())
    }
}

/// The sliding window of word hashes and the SimHash votes of the shingles it has produced.
struct Shingles<F> {
    window: [u64; SHINGLE_WORDS],
    words: usize,
    votes: BitVotes,
    features: F,
}

impl<F: Features> Shingles<F> {
    fn new(features: F) -> Self {
        Self { window: [0; SHINGLE_WORDS], words: 0, votes: BitVotes::default(), features }
    }

    fn push_word(&mut self, word_hash: u64) {
        self.window.rotate_left(1);
        self.window[SHINGLE_WORDS - 1] = word_hash;
        self.words += 1;
        if self.words >= SHINGLE_WORDS {
            self.votes.add(self.features.feature(shingle_hash(&self.window)));
        }
    }

    fn finish(mut self) -> u64 {
        if self.words == 0 {
            return 0;
        }
        if self.words < SHINGLE_WORDS {
            self.votes.add(self.features.feature(shingle_hash(&self.window[SHINGLE_WORDS - self.words..])));
        }
        self.votes.majority()
    }
}

/// For each byte: its ASCII lower-case form when it is ASCII alphanumeric (a word byte), else 0.
/// One table load replaces two range checks and a case fold in the per-byte loop.
static ASCII_WORD_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        if b.is_ascii_alphanumeric() {
            table[byte] = b.to_ascii_lowercase();
        }
        byte += 1;
    }
    table
};

/// `SPREAD[b]` holds bit `k` of `b` in byte `k`: eight one-bit votes as eight byte lanes.
static SPREAD: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut bit = 0;
        while bit < 8 {
            table[byte] |= (((byte >> bit) & 1) as u64) << (8 * bit);
            bit += 1;
        }
        byte += 1;
    }
    table
};

/// Features a byte lane can count before it must be folded into the wide counters.
const LANE_CAPACITY: u32 = u8::MAX as u32;

/// 64 per-bit vote counters. Votes are first counted in byte lanes, eight per word
/// (`lanes[j]` byte `k` counts bit `8j + k`), so adding a feature is eight table loads and eight
/// word adds with no branch; the lanes are folded into wide counters every 255 features, before
/// a byte can overflow.
struct BitVotes {
    lanes: [u64; 8],
    in_lanes: u32,
    counts: [u64; 64],
    features: u64,
}

impl Default for BitVotes {
    fn default() -> Self {
        Self { lanes: [0; 8], in_lanes: 0, counts: [0; 64], features: 0 }
    }
}

impl BitVotes {
    fn add(&mut self, feature: u64) {
        for (index, lane) in self.lanes.iter_mut().enumerate() {
            *lane += SPREAD[((feature >> (8 * index)) & 0xff) as usize];
        }
        self.features += 1;
        self.in_lanes += 1;
        if self.in_lanes == LANE_CAPACITY {
            self.fold_lanes();
        }
    }

    fn fold_lanes(&mut self) {
        for (index, lane) in self.lanes.iter_mut().enumerate() {
            for (byte, count) in self.counts[8 * index..8 * index + 8].iter_mut().enumerate() {
                *count += (*lane >> (8 * byte)) & 0xff;
            }
            *lane = 0;
        }
        self.in_lanes = 0;
    }

    /// Bits where more features had the bit set than clear: each feature votes +1 for a set bit
    /// and -1 for a clear one, and the sum is positive exactly when `ones > features / 2`.
    fn majority(mut self) -> u64 {
        self.fold_lanes();
        let threshold = self.features / 2;
        self.counts
            .iter()
            .enumerate()
            .filter(|&(_, &ones)| ones > threshold)
            .fold(0, |hash, (bit, _)| hash | (1 << bit))
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a_step(hash: u64, byte: u8) -> u64 {
    (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
}

/// FNV-1a over the lower-cased UTF-8 of a word, without allocating a lower-cased copy.
fn word_hash(word: &str) -> u64 {
    let mut hash = FNV_OFFSET;
    if word.is_ascii() {
        // ASCII lower-casing gives the same bytes as the Unicode path below, without decoding.
        for byte in word.bytes() {
            hash = fnv1a_step(hash, byte.to_ascii_lowercase());
        }
        return hash;
    }
    let mut buf = [0u8; 4];
    for c in word.chars().flat_map(char::to_lowercase) {
        for &byte in c.encode_utf8(&mut buf).as_bytes() {
            hash = fnv1a_step(hash, byte);
        }
    }
    hash
}

/// Combines word hashes in order and mixes the result so every output bit
/// depends on every input bit (FNV alone leaves the high bits poorly mixed,
/// which would bias SimHash).
fn shingle_hash(words: &[u64]) -> u64 {
    let combined = words
        .iter()
        .fold(0x9e37_79b9_7f4a_7c15u64, |acc, &w| acc.rotate_left(29).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ w);
    splitmix64(combined)
}

/// The SplitMix64 finaliser: a fixed, well-studied 64-bit bijective mixer.
fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The straightforward definitions the fast paths must agree with: the unit tests and the
/// `text` fuzz target (`decode::fuzz_checks`) compare them on generated and arbitrary text.
#[doc(hidden)]
pub mod reference {
    use siphasher::sip::SipHasher24;

    use super::{FEATURE_KEY_CONTEXT, FingerprintKey, SHINGLE_WORDS, shingle_hash, word_hash};

    fn normalised(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// [`content_hash`](super::content_hash) by its definition.
    pub fn content_hash(text: &str) -> String {
        blake3::hash(normalised(text).as_bytes()).to_hex().as_str()[..32].to_owned()
    }

    /// [`keyed_content_hash`](super::keyed_content_hash) by its definition.
    pub fn keyed_content_hash(key: &FingerprintKey, text: &str) -> String {
        blake3::keyed_hash(&key.hash_key, normalised(text).as_bytes()).to_hex().as_str()[..32].to_owned()
    }

    /// [`simhash64`](super::simhash64) by its definition.
    pub fn simhash64(text: &str) -> u64 {
        simhash_of_features(text, |shingle| shingle)
    }

    /// [`keyed_simhash64`](super::keyed_simhash64) by its definition: the feature key is the
    /// first 16 bytes BLAKE3 derives from the secret, and a feature is SipHash-2-4 of the
    /// shingle hash's little-endian bytes.
    pub fn keyed_simhash64(key: &FingerprintKey, text: &str) -> u64 {
        let derived = blake3::derive_key(FEATURE_KEY_CONTEXT, &key.hash_key);
        let mut feature_key = [0u8; 16];
        feature_key.copy_from_slice(&derived[..16]);
        let prf = SipHasher24::new_with_key(&feature_key);
        simhash_of_features(text, |shingle| prf.hash(&shingle.to_le_bytes()))
    }

    fn simhash_of_features(text: &str, feature: impl Fn(u64) -> u64) -> u64 {
        let words: Vec<u64> =
            text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(word_hash).collect();
        if words.is_empty() {
            return 0;
        }
        let shingles: Vec<u64> = if words.len() < SHINGLE_WORDS {
            vec![shingle_hash(&words)]
        } else {
            words.windows(SHINGLE_WORDS).map(shingle_hash).collect()
        };
        let mut counts = [0i64; 64];
        for feature in shingles.into_iter().map(feature) {
            for (bit, count) in counts.iter_mut().enumerate() {
                *count += if (feature >> bit) & 1 == 1 { 1 } else { -1 };
            }
        }
        counts.iter().enumerate().filter(|&(_, &count)| count > 0).fold(0, |hash, (bit, _)| hash | (1 << bit))
    }
}

#[cfg(test)]
mod keyed_tests;

#[cfg(test)]
mod tests {
    use super::reference::{content_hash as reference_content_hash, simhash64 as reference_simhash64};
    use super::*;

    const ANSWER: &str = "Your order 1042 shipped on Monday from our Rotterdam warehouse and should arrive within \
        three business days. You can follow the parcel with the tracking link in the confirmation email, and if \
        anything is damaged on arrival reply to this message with a photo so we can send a replacement at no cost.";

    #[test]
    fn fast_paths_equal_the_reference_definitions() {
        use rand::{RngExt, SeedableRng};
        // Words, every ASCII whitespace byte, punctuation and non-ASCII letters and spaces.
        const PIECES: &[&str] = &[
            "Order",
            "order",
            "ORDER",
            "1042",
            "shipped",
            "a",
            "b",
            "x9",
            " ",
            "  ",
            "\t",
            "\n",
            "\r\n",
            "\u{0b}",
            "\u{0c}",
            ",",
            ".",
            "!?",
            "-",
            "é",
            "Äpfel",
            "straße",
            "\u{a0}",
            "\u{2003}",
            "日本語",
            "🙂",
            "\u{85}",
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut ascii_cases = 0;
        for case in 0..3_000 {
            let pieces = rng.random_range(0..40);
            // Half the cases stay ASCII so both paths are covered.
            let ascii_only = case % 2 == 0;
            let mut text = String::new();
            for _ in 0..pieces {
                let piece = PIECES[rng.random_range(0..PIECES.len())];
                if !ascii_only || piece.is_ascii() {
                    text.push_str(piece);
                }
            }
            ascii_cases += usize::from(text.is_ascii());
            assert_eq!(content_hash(&text), reference_content_hash(&text), "content_hash of {text:?}");
            assert_eq!(simhash64(&text), reference_simhash64(&text), "simhash64 of {text:?}");
        }
        assert!(ascii_cases > 1_000, "only {ascii_cases} ASCII cases");
        // Several BLAKE3 chunks, and many features (several vote planes).
        let long = ANSWER.repeat(60);
        assert!(long.len() > 8192);
        assert_eq!(content_hash(&long), reference_content_hash(&long));
        assert_eq!(simhash64(&long), reference_simhash64(&long));
    }

    #[test]
    fn whitespace_runs_across_block_edges_collapse_like_the_reference() {
        // Runs and lone non-space whitespace at every offset around the first two block edges.
        for run in [" ", "  ", "\n", " \n ", "\t\t", "\r\n"] {
            for offset in 0..(2 * COLLAPSE_BLOCK + 2) {
                let text = format!("{}{run}{}", "a".repeat(offset), "b c ".repeat(20));
                assert_eq!(content_hash(&text), reference_content_hash(&text), "{run:?} at {offset}");
            }
        }
    }

    #[test]
    fn content_hash_normalises_whitespace_only() {
        let a = content_hash("Summarise   the\tticket:\n\n  printer is on fire ");
        assert_eq!(a, content_hash("Summarise the ticket: printer is on fire"));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(a, content_hash("summarise the ticket: printer is on fire"));
        assert_ne!(a, content_hash("Summarise the ticket: printer is on fire!"));
        // Pinned so a dependency or code change cannot silently re-key the lake.
        let expected = blake3::hash(b"Summarise the ticket: printer is on fire").to_hex();
        assert_eq!(a, &expected.as_str()[..32]);
    }

    #[test]
    fn simhash_distances_track_similarity() {
        assert_eq!(hamming(simhash64(ANSWER), simhash64(ANSWER)), 0);
        // Case and punctuation are not content.
        assert_eq!(simhash64(ANSWER), simhash64(&ANSWER.to_uppercase().replace(',', " ")));
        let edited = ANSWER.replace("Monday", "Tuesday");
        let small = hamming(simhash64(ANSWER), simhash64(&edited));
        assert!(small > 0 && small <= 10, "one-word edit moved {small} bits");
        let unrelated = "The mitochondria converts glucose into ATP through glycolysis, the Krebs cycle and \
            oxidative phosphorylation, a process that consumes oxygen and releases carbon dioxide and water as \
            by-products while the cell maintains its membrane potential.";
        let large = hamming(simhash64(ANSWER), simhash64(unrelated));
        assert!((20..=44).contains(&large), "unrelated texts only {large} bits apart");
    }

    #[test]
    fn simhash_short_texts_and_stability() {
        assert_eq!(simhash64(""), 0);
        assert_eq!(simhash64("  ...  "), 0);
        assert_ne!(simhash64("yes"), 0);
        assert_eq!(simhash64("Yes."), simhash64("yes"));
        assert_ne!(simhash64("yes"), simhash64("no"));
        // Order matters through the shingles.
        assert_ne!(simhash64("dog bites man"), simhash64("man bites dog"));
        // FNV-1a reference value, and lower-casing without a copy.
        assert_eq!(word_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(word_hash("ÄB"), word_hash("äb"));
        // Pinned values: rows in the lake are compared with fingerprints computed
        // by later versions, so the algorithm must never change silently.
        assert_eq!(simhash64("hello world"), 0x7e56_e5eb_da9c_1047);
        assert_eq!(simhash64(ANSWER), 0xb9d0_09ad_3cd8_c068);
        assert_eq!(hamming(0, u64::MAX), 64);
    }
}
