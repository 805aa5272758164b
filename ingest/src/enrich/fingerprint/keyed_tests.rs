//! Keyed fingerprints: what a key changes, and what it must keep (equal texts equal, near
//! duplicates near, whitespace normalised).

use rand::{RngExt, SeedableRng};

use super::reference;
use super::*;

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

const KEY_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const KEY_B: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f";

const ANSWER: &str = "Your order 1042 shipped on Monday from our Rotterdam warehouse and should arrive within \
    three business days. You can follow the parcel with the tracking link in the confirmation email, and if \
    anything is damaged on arrival reply to this message with a photo so we can send a replacement at no cost.";

const UNRELATED: &str = "The mitochondria converts glucose into ATP through glycolysis, the Krebs cycle and \
    oxidative phosphorylation, a process that consumes oxygen and releases carbon dioxide and water as \
    by-products while the cell maintains its membrane potential.";

fn keys() -> Result<(FingerprintKey, FingerprintKey), KeyFormatError> {
    Ok((FingerprintKey::from_hex(KEY_A)?, FingerprintKey::from_hex(KEY_B)?))
}

#[test]
fn keyed_content_hash_is_blake3_keyed_and_differs_from_unkeyed_and_between_keys() -> TestResult {
    let (a, b) = keys()?;
    let text = "cancel my account 4711";
    let keyed = keyed_content_hash(&a, text);
    assert_eq!(keyed.len(), 32);
    assert!(keyed.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)), "{keyed}");
    assert_ne!(keyed, content_hash(text), "the unkeyed hash of a guess must not match");
    assert_ne!(keyed, keyed_content_hash(&b, text));
    // Stable for one key: a key read again from its text hashes the same.
    assert_eq!(keyed, keyed_content_hash(&FingerprintKey::from_hex(KEY_A)?, text));
    // By its definition, and pinned: rows in the lake are compared with later versions' values.
    let mut secret = [0u8; 32];
    for (index, byte) in secret.iter_mut().enumerate() {
        *byte = u8::try_from(index)?;
    }
    assert_eq!(keyed, &blake3::keyed_hash(&secret, text.as_bytes()).to_hex().as_str()[..32]);
    assert_eq!(keyed, "1b23ecebfecd0a5ccddd5e81921a37ab");
    Ok(())
}

#[test]
fn keyed_content_hash_still_normalises_whitespace_only() -> TestResult {
    let (a, _) = keys()?;
    let hash = keyed_content_hash(&a, "Summarise   the\tticket:\n\n  printer is on fire ");
    assert_eq!(hash, keyed_content_hash(&a, "Summarise the ticket: printer is on fire"));
    assert_eq!(hash, keyed_content_hash(&a, "Summarise\u{a0}the ticket:\u{2003}printer is on fire"));
    assert_ne!(hash, keyed_content_hash(&a, "summarise the ticket: printer is on fire"));
    assert_ne!(hash, keyed_content_hash(&a, "Summarise the ticket: printer is on fire!"));
    Ok(())
}

#[test]
fn keyed_fast_paths_equal_the_reference_definitions() -> TestResult {
    const PIECES: &[&str] = &[
        "Order",
        "order",
        "1042",
        "a",
        "x9",
        " ",
        "  ",
        "\t",
        "\n",
        "\u{0b}",
        ",",
        ".",
        "é",
        "straße",
        "\u{a0}",
        "日本語",
    ];
    let (a, b) = keys()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for case in 0..1_000 {
        let ascii_only = case % 2 == 0;
        let mut text = String::new();
        for _ in 0..rng.random_range(0..30) {
            let piece = PIECES[rng.random_range(0..PIECES.len())];
            if !ascii_only || piece.is_ascii() {
                text.push_str(piece);
            }
        }
        for key in [&a, &b] {
            assert_eq!(keyed_content_hash(key, &text), reference::keyed_content_hash(key, &text), "{text:?}");
            assert_eq!(keyed_simhash64(key, &text), reference::keyed_simhash64(key, &text), "{text:?}");
        }
    }
    // Many features: the vote lanes fold several times.
    let long = ANSWER.repeat(40);
    assert_eq!(keyed_simhash64(&a, &long), reference::keyed_simhash64(&a, &long));
    assert_eq!(keyed_content_hash(&a, &long), reference::keyed_content_hash(&a, &long));
    Ok(())
}

#[test]
fn keyed_simhash_keeps_near_duplicates_close_under_one_key() -> TestResult {
    let (a, b) = keys()?;
    for key in [&a, &b] {
        assert_eq!(keyed_simhash64(key, ANSWER), keyed_simhash64(key, ANSWER));
        assert_eq!(keyed_simhash64(key, ANSWER), keyed_simhash64(key, &ANSWER.to_uppercase().replace(',', " ")));
        let edited = ANSWER.replace("Monday", "Tuesday");
        let small = hamming(keyed_simhash64(key, ANSWER), keyed_simhash64(key, &edited));
        assert!(small > 0 && small <= 16, "one-word edit moved {small} bits");
        let large = hamming(keyed_simhash64(key, ANSWER), keyed_simhash64(key, UNRELATED));
        assert!((20..=44).contains(&large), "unrelated texts only {large} bits apart");
    }
    // Over many keys and every one-word edit of the answer, not one lucky pair: an edit changes
    // two of its 52 shingles, so only bits whose vote was close can flip.
    let words: Vec<&str> = ANSWER.split(' ').collect();
    let mut moved = 0;
    let mut edits = 0;
    for seed in 0..16 {
        let key = FingerprintKey::from_bytes([seed; 32]);
        let original = keyed_simhash64(&key, ANSWER);
        for index in 0..words.len() {
            let mut edited = words.clone();
            edited[index] = "zebra";
            moved += hamming(original, keyed_simhash64(&key, &edited.join(" ")));
            edits += 1;
        }
    }
    let mean = f64::from(moved) / f64::from(edits);
    assert!(mean <= 9.0, "a one-word edit moves {mean:.1} bits on average");
    Ok(())
}

#[test]
fn keyed_simhash_is_unrelated_across_keys_and_to_the_unkeyed_value() -> TestResult {
    let (a, b) = keys()?;
    assert_ne!(keyed_simhash64(&a, ANSWER), simhash64(ANSWER));
    // Per text the distance between keys is random; over many texts it averages half the bits.
    let mut across_keys = 0;
    let mut to_unkeyed = 0;
    let texts: Vec<String> = (0..200).map(|n| format!("{ANSWER} case {n}")).collect();
    for text in &texts {
        across_keys += hamming(keyed_simhash64(&a, text), keyed_simhash64(&b, text));
        to_unkeyed += hamming(keyed_simhash64(&a, text), simhash64(text));
    }
    for (what, total) in [("between keys", across_keys), ("keyed to unkeyed", to_unkeyed)] {
        let mean = f64::from(total) / texts.len() as f64;
        assert!((26.0..=38.0).contains(&mean), "{what}: {mean:.1} bits apart on average");
    }
    Ok(())
}

#[test]
fn keyed_simhash_of_short_texts() -> TestResult {
    let (a, b) = keys()?;
    assert_eq!(keyed_simhash64(&a, ""), 0);
    assert_eq!(keyed_simhash64(&a, "  ...  "), 0);
    assert_ne!(keyed_simhash64(&a, "yes"), 0);
    assert_eq!(keyed_simhash64(&a, "Yes."), keyed_simhash64(&a, "yes"));
    assert_ne!(keyed_simhash64(&a, "yes"), keyed_simhash64(&b, "yes"));
    assert_ne!(keyed_simhash64(&a, "yes"), simhash64("yes"));
    assert_ne!(keyed_simhash64(&a, "dog bites man"), keyed_simhash64(&a, "man bites dog"));
    // Pinned, as the unkeyed values are.
    assert_eq!(keyed_simhash64(&a, "hello world"), 0x95a5_2504_409b_f5b7);
    Ok(())
}

#[test]
fn keys_are_read_from_hex_in_either_case_with_surrounding_whitespace() -> TestResult {
    let from_file = FingerprintKey::from_hex(&format!("  {}\n", KEY_A.to_uppercase()))?;
    let (a, _) = keys()?;
    assert_eq!(keyed_content_hash(&from_file, "x"), keyed_content_hash(&a, "x"));
    assert_eq!(keyed_simhash64(&from_file, "x y"), keyed_simhash64(&a, "x y"));
    Ok(())
}

#[test]
fn malformed_keys_are_refused_without_being_quoted() {
    let secret_part = &KEY_A[..20];
    for (text, expected) in [
        (&KEY_A[..63], KeyFormatError::Length { found: 63 }),
        (&format!("{KEY_A}0")[..], KeyFormatError::Length { found: 65 }),
        ("", KeyFormatError::Length { found: 0 }),
        (&format!("{}g{}", &KEY_A[..10], &KEY_A[11..])[..], KeyFormatError::NotHex { position: 11 }),
        (&format!("{}é{}", &KEY_A[..40], &KEY_A[41..])[..], KeyFormatError::NotHex { position: 41 }),
        (&format!("{} {}", &KEY_A[..31], &KEY_A[32..])[..], KeyFormatError::NotHex { position: 32 }),
    ] {
        let error = FingerprintKey::from_hex(text).err();
        assert_eq!(error.as_ref(), Some(&expected), "{text:?}");
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("64 hex characters"), "{message}");
        assert!(!message.contains(secret_part) && !message.contains(&KEY_A[40..]), "{message}");
    }
}

#[test]
fn a_key_shows_nothing_of_itself_in_debug() -> TestResult {
    let (a, _) = keys()?;
    assert_eq!(format!("{a:?}"), "FingerprintKey(<redacted>)");
    assert_eq!(format!("{:?}", Some(a.clone())), "Some(FingerprintKey(<redacted>))");
    assert_eq!(format!("{a:#?}"), "FingerprintKey(<redacted>)");
    Ok(())
}
