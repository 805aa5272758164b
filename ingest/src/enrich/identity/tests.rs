//! The identity scrub: PII masking, control and invisible character replacement, the memo.

use std::collections::HashMap;
use std::sync::Arc;

use driftwatch_lake::layout::{MAX_ESCAPED_PARTITION_VALUE_BYTES, escape_path_value, escaped_path_value_len};
use driftwatch_lake::model::{FeedbackEvent, InferenceEvent};

use super::*;
use crate::decode::{Decoded, Decoder, PayloadFormat};
use crate::enrich::{ContentPolicy, Enricher, ModelRegistry};

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn scrubbed(identity: &IdentityScrubber, value: &str) -> String {
    let mut value = value.to_owned();
    identity.session().scrub(&mut value);
    value
}

/// Names real fleets send in the identity fields, beyond the registry's.
const REAL_NAMES: &[&str] = &[
    // Models, as providers and gateways spell them.
    "gpt-4o",
    "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18",
    "gpt-4.1-mini",
    "gpt-4.1-2025-04-14",
    "o1-2024-12-17",
    "o3-mini-2025-01-31",
    "chatgpt-4o-latest",
    "text-embedding-3-small",
    "text-embedding-ada-002",
    "claude-3-5-sonnet-20241022",
    "claude-3-5-haiku-20241022",
    "claude-3-7-sonnet-20250219",
    "claude-sonnet-4-20250514",
    "claude-opus-4-5",
    "claude-3-5-sonnet@20241022",
    "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
    "amazon.titan-embed-text-v2:0",
    "meta.llama3-1-70b-instruct-v1:0",
    "gemini-1.5-pro-002",
    "gemini-2.0-flash-001",
    "gemini-2.5-pro-preview-05-06",
    "models/gemini-1.5-flash-8b",
    "projects/my-proj/locations/us-central1/publishers/google/models/gemini-1.5-pro-002",
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Meta-Llama-3.1-405B-Instruct-FP8",
    "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "mistral-large-2407",
    "mistral-small-2501",
    "codestral-2405",
    "command-r-08-2024",
    "command-r-plus-08-2024",
    "deepseek-chat",
    "deepseek-r1-distill-llama-70b",
    "qwen2.5-72b-instruct",
    "llama3.1:8b",
    "accounts/fireworks/models/llama-v3p1-70b-instruct",
    "ft:gpt-4o-mini-2024-07-18:acme::9abcDEFg",
    // Providers and operations.
    "openai",
    "anthropic",
    "azure.ai.inference",
    "azure.ai.openai",
    "aws.bedrock",
    "gcp.vertex_ai",
    "gcp.gemini",
    "mistral_ai",
    "chat",
    "text_completion",
    "generate_content",
    "embeddings",
    "execute_tool",
    "invoke_agent",
    // Prompt ids and versions.
    "v2",
    "v10",
    "2024-11-05",
    "2025-01-31T12:00:00Z",
    "1.2.3",
    "1.2.3-rc.1",
    "20241105",
    "support-triage",
    "refund_policy_v3",
    "a1b2c3d4",
    "8f14e45fceea167a5a36dedd4bea2543",
    // Environments and apps.
    "prod",
    "production",
    "staging",
    "dev",
    "us-east-1",
    "eu-west-2",
    "prod-eu-1",
    "support-bot",
    "checkout",
    "billing-api",
    // Finish reasons and error types.
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "STOP",
    "SAFETY",
    "RateLimitError",
    "429",
    "500",
    // Golden cases and evaluation names.
    "golden-0042",
    "refund-edge-case-17",
    "hallucination",
    "user_thumbs",
    "Hallucination",
];

#[test]
fn real_model_provider_and_label_names_are_unchanged() -> TestResult {
    let registry = ModelRegistry::default_embedded()?;
    let mut names: Vec<String> = REAL_NAMES.iter().map(|name| (*name).to_owned()).collect();
    for entry in registry.entries() {
        names.push(entry.id.clone());
        names.push(entry.provider.clone());
        names.extend(entry.version.iter().cloned());
        names.extend(entry.aliases.iter().cloned());
        names.extend(entry.pricing.iter().map(|price| price.version.clone()));
    }
    let identity = IdentityScrubber::new(Scrubber::new());
    let mangled: Vec<(String, String)> = names
        .iter()
        .filter_map(|name| {
            let out = scrubbed(&identity, name);
            (out != *name).then(|| (name.clone(), out))
        })
        .collect();
    assert!(mangled.is_empty(), "real names changed by the scrub: {mangled:?}");
    Ok(())
}

#[test]
fn pii_in_identity_values_is_masked_and_the_raw_value_is_not_kept() {
    let identity = IdentityScrubber::new(Scrubber::new());
    for (raw, expected) in [
        ("prod call 415-555-2671", "prod call [PHONE]"),
        ("gpt-4o user=jane.doe@example.com", "gpt-4o user=[EMAIL]"),
        ("ssn 123-45-6789", "ssn [NATIONAL_ID]"),
        ("card 4111 1111 1111 1111", "card [CARD_NUMBER]"),
        ("IBAN DE89370400440532013000", "IBAN [IBAN]"),
    ] {
        // Twice: the second answer comes from the memo.
        assert_eq!(scrubbed(&identity, raw), expected);
        assert_eq!(scrubbed(&identity, raw), expected);
        let memo = identity.session();
        assert!(!memo.memo.clean.contains(raw), "{raw} remembered as clean");
        assert!(memo.memo.scrubbed.values().all(|kept| !kept.contains(raw)));
        assert_eq!(memo.memo.scrubbed.get(&id_key(raw)).map(|kept| &**kept), Some(expected));
    }
}

#[test]
fn remembered_values_skip_the_scrubber() {
    let identity = IdentityScrubber::new(Scrubber::new());
    assert_eq!(scrubbed(&identity, "checkout"), "checkout");
    assert_eq!(identity.memo_len(), 1);
    assert_eq!(scrubbed(&identity, "checkout"), "checkout");
    assert_eq!(identity.memo_len(), 1, "a repeated value is not stored twice");
    // Only a memo hit can leave these unscrubbed: plant them to prove the lookup happens.
    {
        let mut memo = identity.session();
        memo.memo.clean.insert(Box::from("planted jane@example.com"));
        memo.memo.scrubbed.insert(id_key("planted 10.1.2.3"), Box::from("from the memo"));
    }
    assert_eq!(scrubbed(&identity, "planted jane@example.com"), "planted jane@example.com");
    assert_eq!(scrubbed(&identity, "planted 10.1.2.3"), "from the memo");
}

#[test]
fn long_values_are_scrubbed_every_time_and_not_remembered() {
    let identity = IdentityScrubber::new(Scrubber::new());
    let clean = "x".repeat(MEMO_MAX_VALUE_BYTES + 1);
    let dirty = format!("{} jane@example.com", "y".repeat(MEMO_MAX_VALUE_BYTES));
    assert_eq!(scrubbed(&identity, &clean), clean);
    assert_eq!(scrubbed(&identity, &dirty), format!("{} [EMAIL]", "y".repeat(MEMO_MAX_VALUE_BYTES)));
    assert_eq!(identity.memo_len(), 0);
    let at_limit = "z".repeat(MEMO_MAX_VALUE_BYTES);
    assert_eq!(scrubbed(&identity, &at_limit), at_limit);
    assert_eq!(identity.memo_len(), 1);
}

#[test]
fn the_memo_is_bounded_and_cleared_when_full() {
    let identity = IdentityScrubber::new(Scrubber::new());
    for i in 0..MEMO_CAPACITY {
        assert_eq!(scrubbed(&identity, &format!("prompt-{i}")), format!("prompt-{i}"));
    }
    assert_eq!(identity.memo_len(), MEMO_CAPACITY);
    assert_eq!(scrubbed(&identity, "one more"), "one more");
    assert_eq!(identity.memo_len(), 1);
    // Still correct after the clear, for clean and for scrubbed values.
    assert_eq!(scrubbed(&identity, "prompt-0"), "prompt-0");
    assert_eq!(scrubbed(&identity, "env jane@example.com"), "env [EMAIL]");
    assert_eq!(identity.memo_len(), 3);
}

#[test]
fn optional_and_empty_values() {
    let identity = IdentityScrubber::new(Scrubber::new());
    let mut session = identity.session();
    let mut none: Option<String> = None;
    session.scrub_opt(&mut none);
    assert_eq!(none, None);
    let mut some = Some("staging 10.1.2.3".to_owned());
    session.scrub_opt(&mut some);
    assert_eq!(some.as_deref(), Some("staging [IP_ADDRESS]"));
    let mut empty = String::new();
    session.scrub(&mut empty);
    assert_eq!(empty, "");
}

#[test]
fn a_clone_starts_with_an_empty_memo() {
    let identity = IdentityScrubber::new(Scrubber::new());
    scrubbed(&identity, "prod");
    let copy = identity.clone();
    scrubbed(&copy, "staging");
    scrubbed(&copy, "us-east-1");
    assert_eq!(copy.memo_len(), 2);
    assert_eq!(identity.memo_len(), 1);
    assert!(format!("{identity:?}").contains("memo_len: Some(1)"));
    let session = identity.session();
    assert!(format!("{identity:?}").contains("memo_len: None"), "formatting while a session is held");
    assert!(format!("{session:?}").contains("memo_len: 1"));
}

const REPLACEMENT: char = '\u{FFFD}';

/// The characters that become a space rather than U+FFFD: they break words or lines, so a
/// multi-line error type keeps reading as one line.
const WORD_AND_LINE_BREAKS: &[char] = &['\t', '\n', '\u{0B}', '\u{0C}', '\r', '\u{85}', '\u{2028}', '\u{2029}'];

/// What the identity scrubber must make of `c` when it is replaced.
fn replaced_as(c: char) -> char {
    if WORD_AND_LINE_BREAKS.contains(&c) { ' ' } else { REPLACEMENT }
}

/// Every character the audit named, one of each kind: C0 controls with tab and newline, DEL, C1
/// controls, the bidirectional embeddings, overrides, isolates and marks, and the invisible
/// zero-width space and byte order mark.
const CONTROL_AND_INVISIBLE: &[char] = &[
    '\0', '\t', '\n', '\r', '\u{1B}', '\u{1F}', '\u{7F}', '\u{80}', '\u{85}', '\u{9B}', '\u{9F}', '\u{202A}',
    '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200E}',
    '\u{200F}', '\u{061C}', '\u{200B}', '\u{FEFF}',
];

fn enricher() -> Result<Enricher, Box<dyn std::error::Error>> {
    Ok(Enricher::new(Arc::new(ModelRegistry::default_embedded()?), HashMap::new(), ContentPolicy::default()))
}

/// 2025-06-01T12:00:00Z, the events' time, and the ingest clock an hour later.
const T0: i64 = 1_748_779_200_000_000_000;
const NOW: i64 = T0 + 3_600_000_000_000;

/// The events a JSON message decodes to, every one accepted, then enriched.
fn decoded_and_enriched(json: &str) -> Result<Vec<InferenceEvent>, Box<dyn std::error::Error>> {
    let mut out = Decoded::default();
    Decoder::default().decode(json.as_bytes(), PayloadFormat::Auto, NOW, &mut out);
    if let Some(reject) = out.rejects.first() {
        return Err(format!("{json} was rejected: {reject:?}").into());
    }
    let enricher = enricher()?;
    for event in &mut out.events {
        enricher.enrich(event);
    }
    Ok(out.events)
}

#[test]
fn control_and_invisible_characters_in_app_model_and_environment_are_replaced() -> TestResult {
    let enricher = enricher()?;
    for &c in CONTROL_AND_INVISIBLE {
        let mut e = InferenceEvent {
            app: format!("bill{c}ing"),
            environment: Some(format!("{c}prod")),
            response_model: Some(format!("gpt-4o{c}")),
            ..InferenceEvent::default()
        };
        // Twice: the second pass is served by the memo.
        for pass in 0..2 {
            let mut e = e.clone();
            enricher.enrich(&mut e);
            let at = format!("U+{:04X}, pass {pass}", u32::from(c));
            let r = replaced_as(c);
            assert_eq!(e.app, format!("bill{r}ing"), "{at}");
            // A name's edge spaces go, so a line break or tab there leaves nothing.
            assert_eq!(e.environment, Some(format!("{r}prod").trim_start().to_owned()), "{at}");
            assert_eq!(e.response_model, Some(format!("gpt-4o{r}").trim_end().to_owned()), "{at}");
        }
        e.app = "billing".to_owned();
        enricher.enrich(&mut e);
        assert_eq!(e.app, "billing", "a clean name next to a dirty one in the memo");
    }
    Ok(())
}

#[test]
fn every_control_character_and_only_the_listed_format_characters_are_replaced() {
    let identity = IdentityScrubber::new(Scrubber::new());
    // General category Cc is exactly these ranges (UnicodeData.txt).
    for code in 0..=0xFF_u32 {
        let Some(c) = char::from_u32(code) else { continue };
        // Plus the soft hyphen, invisible wherever a line does not break at it.
        let control = code < 0x20 || (0x7F..=0x9F).contains(&code) || code == 0xAD;
        let expected = if control { format!("a{}b", replaced_as(c)) } else { format!("a{c}b") };
        assert_eq!(scrubbed(&identity, &format!("a{c}b")), expected, "U+{code:04X}");
    }
    // The neighbours of the listed format characters, and the joiners emoji and scripts need.
    for kept in [
        '\u{061B}', '\u{061D}', '\u{180D}', '\u{200C}', '\u{200D}', '\u{2027}', '\u{205F}', '\u{2065}', '\u{2070}',
        '\u{FE0F}',
    ] {
        let name = format!("a{kept}b");
        assert_eq!(scrubbed(&identity, &name), name, "U+{:04X}", u32::from(kept));
    }
}

#[test]
fn invisible_separators_joiners_and_deprecated_format_characters_are_replaced() {
    let identity = IdentityScrubber::new(Scrubber::new());
    for code in [0x180E, 0x2028, 0x2029, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0x206A, 0x206F] {
        let c = char::from_u32(code).unwrap_or_default();
        assert_eq!(scrubbed(&identity, &format!("a{c}b")), format!("a{}b", replaced_as(c)), "U+{code:04X}");
    }
}

#[test]
fn ordinary_non_ascii_names_and_emoji_sequences_are_unchanged() {
    let identity = IdentityScrubber::new(Scrubber::new());
    let names = [
        "請求-本番",
        "プロンプト_v2",
        "カスタマーサポート",
        "café-crème",
        "Zürich-prod",
        "señal-ñandú",
        "Ελληνικά",
        "עברית-prod",
        "مدل-عربي",
        // Persian keeps the zero-width non-joiner inside words.
        "می\u{200C}خواهم",
        "📈 billing",
        // Emoji ZWJ sequences: woman technologist, rainbow flag, family.
        "👩\u{200D}💻 dev-tools",
        "🏳\u{FE0F}\u{200D}🌈",
        "👨\u{200D}👩\u{200D}👧\u{200D}👦",
        // Variation selector 16 and a skin tone.
        "❤\u{FE0F} support",
        "👍🏽",
        // England's flag: tag characters.
        "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
        // A replacement character the producer sent itself.
        "broken\u{FFFD}name",
    ];
    for name in names {
        let mut value = name.to_owned();
        assert!(!identity.session().scrub(&mut value), "{name} reported as changed");
        assert_eq!(value, name);
        assert!(identity.session().memo.clean.contains(name), "{name} not remembered as clean");
    }
}

/// A value changed by the replacement alone is remembered like a scrubbed one: by the hash of
/// the raw value with its replaced form, never among the clean values, and served from there.
#[test]
fn a_repeated_value_with_control_characters_is_served_from_the_memo() {
    let identity = IdentityScrubber::new(Scrubber::new());
    let raw = "billing\u{202E}gnp.exe";
    let replaced = format!("billing{REPLACEMENT}gnp.exe");
    let mut value = raw.to_owned();
    assert!(identity.session().scrub(&mut value), "the change is reported, so the app is refitted to its folder");
    assert_eq!(value, replaced);
    {
        let memo = identity.session();
        assert!(!memo.memo.clean.contains(raw), "remembered as clean");
        assert_eq!(memo.memo.scrubbed.get(&id_key(raw)).map(|kept| &**kept), Some(replaced.as_str()));
    }
    let mut again = raw.to_owned();
    assert!(identity.session().scrub(&mut again));
    assert_eq!(again, replaced);
    assert_eq!(identity.memo_len(), 1, "a repeated value is not stored twice");
    // Only a memo hit can give this answer: the replacement is not run again.
    identity.session().memo.scrubbed.insert(id_key(raw), Box::from("from the memo"));
    assert_eq!(scrubbed(&identity, raw), "from the memo");
}

#[test]
fn pii_and_control_characters_are_both_masked() {
    let identity = IdentityScrubber::new(Scrubber::new());
    for (raw, expected) in [
        ("jane.doe@example.com\nprod", "[EMAIL] prod".to_owned()),
        ("prod\tcall 415-555-2671\u{1B}[31m", format!("prod call [PHONE]{REPLACEMENT}[31m")),
        ("\u{2066}10.1.2.3\u{2069}", format!("{REPLACEMENT}[IP_ADDRESS]{REPLACEMENT}")),
    ] {
        // Twice: the second answer comes from the memo.
        assert_eq!(scrubbed(&identity, raw), expected);
        assert_eq!(scrubbed(&identity, raw), expected);
        let memo = identity.session();
        assert!(!memo.memo.clean.contains(raw), "{raw:?} remembered as clean");
        assert_eq!(memo.memo.scrubbed.get(&id_key(raw)).map(|kept| &**kept), Some(expected.as_str()));
    }
}

/// Values past the memo's bound (free text) are replaced too, and still cut to their bound.
#[test]
fn long_free_text_is_replaced_and_cut() -> TestResult {
    let enricher = enricher()?;
    let traceback = format!("Traceback:\n{}\u{1B}[0m", "  File \"app.py\", line 7\n".repeat(20));
    assert!(traceback.len() > MEMO_MAX_VALUE_BYTES);
    let mut e = InferenceEvent { app: "checkout".to_owned(), error_type: Some(traceback), ..InferenceEvent::default() };
    enricher.enrich(&mut e);
    let error_type = e.error_type.ok_or("no error type")?;
    // Line breaks read as spaces, so the traceback stays legible on one line; the escape does not.
    assert!(error_type.starts_with("Traceback:   File \"app.py\", line 7   File"), "{error_type:?}");
    assert!(!error_type.contains(REPLACEMENT), "{error_type:?}: the escape is past the cut");
    assert!(!error_type.chars().any(char::is_control), "{error_type:?}");
    assert!(error_type.len() <= crate::enrich::MAX_FREE_TEXT_BYTES);

    let mut feedback = FeedbackEvent {
        app: "checkout\u{202E}".to_owned(),
        name: "user_thumbs\u{200B}".to_owned(),
        score_label: Some("down\r\n".to_owned()),
        ..FeedbackEvent::default()
    };
    enricher.enrich_feedback(&mut feedback);
    assert_eq!(feedback.app, format!("checkout{REPLACEMENT}"));
    assert_eq!(feedback.name, format!("user_thumbs{REPLACEMENT}"));
    assert_eq!(feedback.score_label, Some("down".to_owned()));
    Ok(())
}

/// The audit's example, from the bytes a producer sends to the event the lake receives; the
/// ids, which are join keys, stay as sent.
#[test]
fn a_json_event_with_a_right_to_left_override_in_its_app_is_kept_with_the_character_replaced() -> TestResult {
    let json = format!(
        r#"{{"id":"evt-\u202e1","time_unix_nano":{T0},"app":"billing\u202egnp.exe","environment":"prod\u001b[2J",
        "response_model":"gpt-4o\u200b","finish_reason":"stop\n","response_id":"resp-\u0000"}}"#
    );
    let events = decoded_and_enriched(&json)?;
    let [e] = events.as_slice() else { return Err(format!("{} events", events.len()).into()) };
    assert_eq!(e.app, format!("billing{REPLACEMENT}gnp.exe"));
    assert_eq!(e.environment, Some(format!("prod{REPLACEMENT}[2J")));
    assert_eq!(e.response_model, Some(format!("gpt-4o{REPLACEMENT}")));
    assert_eq!(e.finish_reason, Some("stop".to_owned()));
    assert_eq!(e.event_id, "evt-\u{202E}1");
    assert_eq!(e.response_id.as_deref(), Some("resp-\0"));
    assert_eq!(escape_path_value(&e.app), e.app, "one plain folder name");
    Ok(())
}

/// Decode accepts an app up to the lake's folder name bound before enrichment. A C1 control
/// (here CSI, U+009B: NEL, U+0085, is white space, and an app of it alone is refused as blank)
/// or U+061C is two bytes that become three; an ASCII control is escaped to three bytes in a
/// path (`%1B`) and the others are three bytes already, so they keep their size. An app at the
/// bound made of the growing kind is cut back to fit, as a masked one is.
#[test]
fn an_app_at_the_folder_bound_still_fits_once_replaced() -> TestResult {
    for (escape, raw_char) in
        [(r"\u009b", '\u{9B}'), (r"\u061c", '\u{061C}'), (r"\u001b", '\u{1B}'), (r"\u202e", '\u{202E}')]
    {
        let count = MAX_ESCAPED_PARTITION_VALUE_BYTES / escaped_path_value_len(&raw_char.to_string());
        let raw = raw_char.to_string().repeat(count);
        assert!(escaped_path_value_len(&raw) > MAX_ESCAPED_PARTITION_VALUE_BYTES - 3, "{escape} fills the bound");
        let json = format!(r#"{{"id":"e","time_unix_nano":{T0},"app":"{}"}}"#, escape.repeat(count));
        let events = decoded_and_enriched(&json)?;
        let [e] = events.as_slice() else { return Err(format!("{} events", events.len()).into()) };
        let escaped = escaped_path_value_len(&e.app);
        assert!(escaped <= MAX_ESCAPED_PARTITION_VALUE_BYTES, "{escape}: {escaped} bytes");
        assert!(escaped > MAX_ESCAPED_PARTITION_VALUE_BYTES - 3, "{escape}: cut no further than needed");
        assert!(e.app.chars().all(|c| c == REPLACEMENT), "{escape}: {:?}", e.app);
    }
    Ok(())
}

/// A four-part prompt version reads like an IPv4 address; as a whole version number it is
/// kept, so versions stay apart and a prompt change stays visible. An address among other text
/// in a version field is still masked, as it is in every other field.
#[test]
fn version_numbers_in_version_fields_are_not_addresses() {
    let identity = IdentityScrubber::new(Scrubber::new());
    for version in ["1.2.3.4", "10.0.1.2", "v10.0.1.2", "2.0.1-rc.1", "3.4.5.6+build.7", "12.1"] {
        let mut field = Some(version.to_owned());
        identity.session().scrub_version(&mut field);
        assert_eq!(field.as_deref(), Some(version));
    }
    for (sent, kept) in [
        ("from 10.0.1.2", "from [IP_ADDRESS]"),
        ("10.0.1.2 jane@example.com", "[IP_ADDRESS] [EMAIL]"),
        ("1.2.3.4-", "[IP_ADDRESS]-"),
        ("card 4111 1111 1111 1111", "card [CARD_NUMBER]"),
    ] {
        let mut field = Some(sent.to_owned());
        identity.session().scrub_version(&mut field);
        assert_eq!(field.as_deref(), Some(kept), "{sent}");
    }
    assert_eq!(scrubbed(&identity, "10.0.1.2"), "[IP_ADDRESS]", "other fields mask it");
    for not_version in ["1", "1.", ".1", "1..2", "1.2.3.4.5.6.7", "v", "1.2-", "1.2.x", "1234567890.1"] {
        assert!(!is_version_number(not_version), "{not_version}");
    }
}

/// Names that read alike are one name: NFC makes `café` one app however the accent was typed,
/// edge white space goes, and invisible fillers are replaced like the other invisibles. Letters
/// of other scripts that look alike (a Cyrillic `е`) stay other names: they are other text.
#[test]
fn names_that_render_alike_are_one_name() {
    let identity = IdentityScrubber::new(Scrubber::new());
    assert_eq!(scrubbed(&identity, "cafe\u{0301}"), "café");
    assert_eq!(scrubbed(&identity, "café"), "café");
    for padded in ["checkout ", " checkout", "\tcheckout\n", "checkout\u{3000}"] {
        assert_eq!(scrubbed(&identity, padded), "checkout", "{padded:?}");
    }
    for filler in ['\u{034F}', '\u{3164}', '\u{115F}', '\u{FFA0}'] {
        assert_eq!(scrubbed(&identity, &format!("check{filler}out")), "check\u{FFFD}out", "{filler:?}");
    }
    assert_eq!(scrubbed(&identity, "ch\u{0435}ckout"), "ch\u{0435}ckout");
    assert_eq!(scrubbed(&identity, "👩\u{200D}💻 helper"), "👩\u{200D}💻 helper", "emoji joiners stay");
}
