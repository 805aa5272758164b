//! What a scrub leaves: placeholders, idempotence, borrowed clean text, bytes and JSON kept valid.

use super::super::*;
use super::{JWT, assert_clean, assert_finds, assert_nothing_kept};

#[test]
fn scrubbing_replaces_everything_and_is_idempotent() {
    let text = format!(
        "Hi, I'm Jane (jane@example.com, +44 20 7946 0958). Card 4111-1111-1111-1111, IBAN DE89 3704 0044 0532 \
         0130 00, SSN 123-45-6789, from 198.51.100.7. Key sk-proj-abcdEFGH1234ijklMNOP5678qrst, \
         Authorization: Bearer {JWT}, api_key=abcdef123456."
    );
    let scrubber = Scrubber::new();
    let once = scrubber.scrub(&text).into_owned();
    assert_eq!(
        once,
        "Hi, I'm Jane ([EMAIL], [PHONE]). Card [CARD_NUMBER], IBAN [IBAN], SSN [NATIONAL_ID], from \
         [IP_ADDRESS]. Key [API_KEY], Authorization: Bearer [JWT], api_key=[API_KEY]."
    );
    let twice = scrubber.scrub(&once);
    assert!(matches!(twice, Cow::Borrowed(_)), "second pass changed {once:?} into {twice:?}");
    for kind in PiiKind::ALL {
        assert_clean(kind.placeholder());
        assert_clean(&format!("Bearer {} api_key={}", kind.placeholder(), kind.placeholder()));
        assert_clean(&format!(
            r#"password={p} "pwd": "{p}" password: {p} Authorization: Basic {p}"#,
            p = kind.placeholder()
        ));
    }
}

#[test]
fn clean_and_non_ascii_text_is_borrowed() {
    assert_clean("");
    assert_clean("Grüße aus München — 東京で会いましょう。 Ça va? Ünïcödé wörds everywhere.");
    assert_finds("Écrivez à zoë@example.fr — merci", PiiKind::Email, "zoë@example.fr");
}

#[test]
fn json_is_scrubbed_by_its_decoded_strings() {
    let scrubber = Scrubber::new();
    let clean = r#"[{"role":"user","content":"Where is order #4521?\nThanks"}]"#;
    assert!(matches!(scrubber.scrub_json(clean), Cow::Borrowed(_)));
    let clean_unescaped = r#"{"role":"user","content":"Where is order 4521?"}"#;
    assert!(matches!(scrubber.scrub_json(clean_unescaped), Cow::Borrowed(_)));

    let json = r#"{"content":"mail jane\u0040example.com\nor zo\u00eb@example.fr","card":4111111111111111,"jane@example.com":1,"api_key":"c2VjcmV0LXZhbHVl","note":"a\nb"}"#;
    let scrubbed = scrubber.scrub_json(json);
    let value: serde_json::Value = serde_json::from_str(&scrubbed).unwrap_or_default();
    assert_eq!(value["content"], "mail [EMAIL]\nor [EMAIL]", "{scrubbed}");
    assert_eq!(value["card"], "[CARD_NUMBER]");
    assert_eq!(value["[EMAIL]"], 1);
    assert_eq!(value["api_key"], "[API_KEY]");
    assert_eq!(value["note"], "a\nb");
    // Not JSON after all (a truncated payload): the plain pass, escapes understood.
    let truncated = r#"{"content":"card\n4111 1111 1111 1111 and more"#;
    assert_eq!(scrubber.scrub_json(truncated), r#"{"content":"card\n[CARD_NUMBER] and more"#);
}

#[test]
fn bytes_are_scrubbed_as_text_or_masked_in_place() {
    let scrubber = Scrubber::new();
    let clean: &[u8] = b"\x0a\x05hello\xff\x12\x03abc";
    assert!(matches!(scrubber.scrub_bytes(clean), Cow::Borrowed(_)));
    assert_eq!(scrubber.scrub_bytes(b"mail jane@example.com").as_ref(), b"mail [EMAIL]");

    // Protobuf-like: two length-delimited strings around bytes that are not UTF-8.
    let binary = b"\x0a\x16mail jane@example.com\xff\xfe\x12\x0aip 1.2.3.4".to_vec();
    let masked = scrubber.scrub_bytes(&binary).into_owned();
    assert_eq!(masked.len(), binary.len(), "lengths are kept");
    assert_eq!(masked, b"\x0a\x16mail [EMAIL]*********\xff\xfe\x12\x0aip *******".to_vec());
}

#[test]
fn pii_sent_as_json_numbers_leaves_valid_json() -> Result<(), Box<dyn std::error::Error>> {
    use serde_json::Value;
    let scrubber = Scrubber::new();
    // A structured-output answer: compact (no escape, so the plain pass
    // alone), pretty-printed, in a message list with escapes (the decoded
    // walk, then the plain pass that sees the key beside the number), and as
    // tool-call arguments, which are JSON in a string (OpenAI's format).
    let answer = r#"{"customer": {"name": "Jane", "phone": 4155552671, "tel": 14155552671, "card": 4111111111111111, "ssn": 123456789, "tokens": 1532, "order_id": 5551234567, "note": "call: 4155552671, thanks"}}"#;
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(answer)?)?;
    let listed = format!(
        r#"[{{"role":"user","content":"Update my details:\nthanks"}},{{"role":"assistant","content":{answer}}}]"#
    );
    let called = serde_json::json!([{"role": "assistant", "tool_calls": [{"id": "call_1", "function": {
        "name": "update_contact", "arguments": answer}}]}])
    .to_string();
    for (content, answer_at) in
        [(answer, ""), (&pretty, ""), (&listed, "/1/content"), (&called, "/0/tool_calls/0/function/arguments")]
    {
        let scrubbed = scrubber.scrub_json(content);
        assert_nothing_kept(&scrubbed, &["4155552671", "4111111111111111", "123456789"]);
        let value: Value = serde_json::from_str(&scrubbed).map_err(|e| format!("{e} in {scrubbed}"))?;
        let answer = match value.pointer(answer_at) {
            Some(Value::String(arguments)) => {
                serde_json::from_str(arguments).map_err(|e| format!("{e} in the arguments {arguments}"))?
            }
            Some(answer) => answer.clone(),
            None => return Err(format!("no answer in {scrubbed}").into()),
        };
        let customer = &answer["customer"];
        for (key, kind) in [
            ("phone", PiiKind::Phone),
            ("tel", PiiKind::Phone),
            ("card", PiiKind::CardNumber),
            ("ssn", PiiKind::NationalId),
        ] {
            assert_eq!(customer[key], kind.placeholder(), "{key} in {scrubbed}");
        }
        assert_eq!(customer["tokens"], 1532, "{scrubbed}");
        assert_eq!(customer["order_id"], 5_551_234_567_u64, "an id is no phone number: {scrubbed}");
        assert_eq!(customer["note"], "call: [PHONE], thanks", "{scrubbed}");
        assert!(matches!(scrubber.scrub_json(&scrubbed), Cow::Borrowed(_)), "not idempotent on {scrubbed}");
    }
    // A negative number keeps no stray sign in front of the mask; a cut one is masked too.
    assert_eq!(scrubber.scrub_json(r#"{"phone": -4155552671}"#), r#"{"phone": "[PHONE]"}"#);
    assert_eq!(scrubber.scrub_json(r#"{"user": {"phone": 4155552671"#), r#"{"user": {"phone": "[PHONE]""#);
    // Prose that only opens like JSON gets no quotes.
    assert_eq!(
        scrubber.scrub_json("[INFO] call 4155552671, card 4111111111111111"),
        "[INFO] call [PHONE], card [CARD_NUMBER]"
    );
    Ok(())
}

/// Found by the `scrub` fuzz target (minimised): `8::1` glued to an address is no IPv6 address,
/// but once the address is masked it stands alone, so a second scrub changed the first's output.
#[test]
fn what_a_mask_leaves_standing_alone_is_masked_in_the_same_scrub() {
    let scrubber = Scrubber::new();
    for text in ["e@e.co8::1", "Mail jane@example.comb8::1 now"] {
        let once = scrubber.scrub(text).into_owned();
        assert_eq!(once.matches("[IP_ADDRESS]").count(), 1, "{once}");
        assert!(matches!(scrubber.scrub(&once), Cow::Borrowed(_)), "not idempotent on {once}");
        let json = scrubber.scrub_json(text).into_owned();
        assert!(matches!(scrubber.scrub_json(&json), Cow::Borrowed(_)), "not idempotent on {json}");
    }
}
