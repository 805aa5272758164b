//! Content fingerprints: find repeated inputs and near-duplicate outputs
//! without storing the text (DESIGN §5 `input_hash`, `output_hash`,
//! `output_simhash`).
//!
//! Raw input or output text enters; [`content_hash`] leaves an exact-match
//! key (BLAKE3 of the whitespace-normalised text) and [`simhash64`] a 64-bit
//! Charikar SimHash whose [`hamming`] distance measures how much two outputs
//! differ. Both are pure functions of the text, stable across runs,
//! platforms and versions, because the lake keeps them forever.

/// Words per shingle: pairs keep word order in the fingerprint while a
/// one-word edit still touches only two features.
const SHINGLE_WORDS: usize = 2;

/// BLAKE3 of the text with whitespace runs collapsed to one space and the
/// ends trimmed, as 32 lowercase hex characters (128 bits).
///
/// Whitespace is normalised so that re-indented or re-wrapped prompts still
/// count as the same input.
pub fn content_hash(text: &str) -> String {
    // Normalise into one buffer and hash once: BLAKE3's per-call overhead dominates when it
    // is fed word by word. The bytes hashed are the same either way.
    let mut normalised = Vec::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !normalised.is_empty() {
            normalised.push(b' ');
        }
        normalised.extend_from_slice(word.as_bytes());
    }
    let hash = blake3::hash(&normalised);
    let mut hex = String::with_capacity(32);
    for byte in &hash.as_bytes()[..16] {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Charikar SimHash over lower-cased word shingles (pairs of adjacent words;
/// a single word when the text has only one). Words are runs of alphanumeric
/// characters. Empty text hashes to 0.
pub fn simhash64(text: &str) -> u64 {
    let mut counts = [0i32; 64];
    let mut window = [0u64; SHINGLE_WORDS];
    let mut words = 0usize;
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        window.rotate_left(1);
        window[SHINGLE_WORDS - 1] = word_hash(word);
        words += 1;
        if words >= SHINGLE_WORDS {
            add_feature(&mut counts, shingle_hash(&window));
        }
    }
    if words == 0 {
        return 0;
    }
    if words < SHINGLE_WORDS {
        add_feature(&mut counts, shingle_hash(&window[SHINGLE_WORDS - words..]));
    }
    counts.iter().enumerate().filter(|&(_, &count)| count > 0).fold(0u64, |hash, (bit, _)| hash | (1 << bit))
}

/// Number of differing bits: 0 for identical fingerprints, about 32 for unrelated texts.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Votes one feature's bits into the counters: +1 for a set bit, -1 for a clear one.
/// Branch-free so the compiler can vectorise the 64 lanes.
fn add_feature(counts: &mut [i32; 64], feature: u64) {
    for (bit, count) in counts.iter_mut().enumerate() {
        *count += ((feature >> bit) & 1) as i32 * 2 - 1;
    }
}

/// FNV-1a over the lower-cased UTF-8 of a word, without allocating a lower-cased copy.
fn word_hash(word: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    if word.is_ascii() {
        // ASCII lower-casing gives the same bytes as the Unicode path below, without decoding.
        for byte in word.bytes() {
            hash = (hash ^ u64::from(byte.to_ascii_lowercase())).wrapping_mul(PRIME);
        }
        return hash;
    }
    let mut buf = [0u8; 4];
    for c in word.chars().flat_map(char::to_lowercase) {
        for &byte in c.encode_utf8(&mut buf).as_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
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

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "Your order 1042 shipped on Monday from our Rotterdam warehouse and should arrive within \
        three business days. You can follow the parcel with the tracking link in the confirmation email, and if \
        anything is damaged on arrival reply to this message with a photo so we can send a replacement at no cost.";

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
