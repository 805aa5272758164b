//! A mask replaces the secret and nothing around it: the JSON it sits in stays
//! JSON at every level of nesting, the escape before it stays whole, and a
//! quoted value goes whole up to its own closing quote.

use serde_json::Value;

use super::super::*;
use super::{assert_clean, assert_nothing_kept};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// `json` parsed, or an error that shows the text that does not parse.
fn parse(json: &str) -> Result<Value, String> {
    serde_json::from_str(json).map_err(|e| format!("{e} in {json}"))
}

/// The string at `pointer` in `value`, parsed as the JSON it holds.
fn parse_held(value: &Value, pointer: &str) -> Result<Value, String> {
    match value.pointer(pointer) {
        Some(Value::String(held)) => parse(held),
        other => Err(format!("no string at {pointer}: {other:?}")),
    }
}

/// `inner` as the string at the first key of an object, serialised as the
/// string at the next key, and so on: JSON held in a string held in a
/// string, as exporters write it.
fn nest(inner: &str, keys: &[&str]) -> String {
    keys.iter().fold(inner.to_owned(), |held, key| serde_json::json!({ *key: held }).to_string())
}

/// Parses `json` and the JSON held at each of `keys`, outermost last, down
/// to the innermost value.
fn unnest(json: &str, keys: &[&str]) -> Result<Value, String> {
    let mut value = parse(json)?;
    for key in keys.iter().rev() {
        value = parse_held(&value, &format!("/{key}"))?;
    }
    Ok(value)
}

/// Each command scrubbed as text (and idempotently), then as a JSON string one to three levels
/// deep, whole and cut short: the whole one decodes to the expected command, and no part of
/// `secrets` is kept in either.
fn assert_commands_scrubbed(scrubber: &Scrubber, commands: &[(&str, &str)], secrets: &[&str]) -> TestResult {
    for (text, expected) in commands {
        let once = scrubber.scrub(text);
        assert_eq!(once, *expected, "in {text}");
        assert!(matches!(scrubber.scrub(&once), Cow::Borrowed(_)), "not idempotent on {once}");
    }
    let keys = ["cmd", "arguments", "messages"];
    for (command, expected) in commands {
        for depth in 1..=keys.len() {
            let json = nest(command, &keys[..depth]);
            let scrubbed = scrubber.scrub_json(&json);
            assert_eq!(unnest(&scrubbed, &keys[1..depth])?["cmd"], *expected, "{scrubbed}");
            assert!(matches!(scrubber.scrub_json(&scrubbed), Cow::Borrowed(_)), "not idempotent on {scrubbed}");
            let cut = &json[..json.len() - depth];
            for kept in [scrubber.scrub_bytes(cut.as_bytes()), scrubber.scrub_bytes(json.as_bytes())] {
                let kept = String::from_utf8_lossy(&kept);
                assert_nothing_kept(&kept, secrets);
                assert!(kept.contains("[PASSWORD]"), "{kept}");
            }
        }
    }
    Ok(())
}

#[test]
fn a_single_quoted_password_is_masked_up_to_its_closing_quote_past_double_quotes() -> TestResult {
    let scrubber = Scrubber::new();
    let commands = [
        (r#"pwd='a"b' ok"#, "pwd='[PASSWORD]' ok"),
        (r#"login --password='x"yz123' --user jane"#, "login --password='[PASSWORD]' --user jane"),
        (r#"pwd='a", b' ok"#, "pwd='[PASSWORD]' ok"),
        // The mirror case: JSON escapes no apostrophe, so it is text of a double-quoted value.
        (r#"password="x'yz123" ok"#, r#"password="[PASSWORD]" ok"#),
    ];
    // As JSON strings, the value's double quote is escaped for its level.
    assert_commands_scrubbed(&scrubber, &commands, &["b'", "b ok", "yz123", ", b"])?;
    // A single-quoted value that its JSON string ends before closing: the
    // string's closing quote ends it, and the JSON after it stays.
    let unclosed = r#"{"cmd":"pwd='abc","user":"jane"}"#;
    assert_eq!(scrubber.scrub_json(unclosed), r#"{"cmd":"pwd='[PASSWORD]","user":"jane"}"#);
    Ok(())
}

#[test]
fn a_string_that_ends_in_a_password_prompt_before_a_bare_value_stays_json() -> TestResult {
    let scrubber = Scrubber::new();
    // The quote after `password: ` closes the string; the number after it is
    // another value, not the password, and stays as it is.
    for json in [
        r#"["my password: ", 1234]"#,
        r#"["my password: ",1234]"#,
        r#"{"a":["my password: ",1234],"b":"x\ny"}"#,
        r#"[{"content":"Enter your password: "},1234]"#,
        r#"{"my password: ":1234}"#,
        r#"["password: ",true]"#,
        r#"{"note":"my password: ","pin":1234}"#,
        r#"{"args":"[\"my password: \",1234]"}"#,
    ] {
        let scrubbed = scrubber.scrub_json(json);
        assert_eq!(scrubbed, json);
        parse(&scrubbed)?;
        assert_clean(json);
    }
    // A number that is the password is masked by a quoted placeholder.
    for (json, expected) in [
        (r#"{"password": 1234}"#, r#"{"password": "[PASSWORD]"}"#),
        (r#"{"pwd":-12.5e3,"user":"jane"}"#, r#"{"pwd":"[PASSWORD]","user":"jane"}"#),
        (r#"{"db_password":1234,"note":"a\nb"}"#, r#"{"db_password":"[PASSWORD]","note":"a\nb"}"#),
        (r#"{"args":"{\"password\": 1234}"}"#, r#"{"args":"{\"password\": \"[PASSWORD]\"}"}"#),
        (r#"{"note":"my password: 1234"}"#, r#"{"note":"my password: [PASSWORD]"}"#),
        // Cut short: the plain pass alone.
        (r#"{"user": {"password": 1234"#, r#"{"user": {"password": "[PASSWORD]""#),
    ] {
        let scrubbed = scrubber.scrub_json(json);
        assert_eq!(scrubbed, expected, "in {json}");
        assert!(matches!(scrubber.scrub_json(&scrubbed), Cow::Borrowed(_)), "not idempotent on {scrubbed}");
    }
    for not_a_password in
        [r#"{"password_length": 12, "passwords": 3}"#, r#"{"password": "[PASSWORD]", "pin_tries": 1234}"#]
    {
        assert_clean(not_a_password);
    }
    Ok(())
}

#[test]
fn numbers_in_json_held_two_and_three_strings_deep_are_masked_by_quoted_placeholders() -> TestResult {
    let scrubber = Scrubber::new();
    let answer = serde_json::json!({"customer": {
        "card": 4_111_111_111_111_111_u64,
        "phone": 4_155_552_671_u64,
        "cards": [5_555_555_555_554_444_u64],
        "tokens": 1532,
        "note": "call: 4155552671, thanks",
    }});
    let keys = ["arguments", "content", "body"];
    for pretty in [false, true] {
        let inner = if pretty { serde_json::to_string_pretty(&answer)? } else { answer.to_string() };
        for depth in 1..=keys.len() {
            let json = nest(&inner, &keys[..depth]);
            // Whole, the decoded walk; without the last brace, the plain pass alone.
            let cut = &json[..json.len() - 1];
            let scrubbed_cut = format!("{}}}", String::from_utf8_lossy(&scrubber.scrub_bytes(cut.as_bytes())));
            for scrubbed in [scrubber.scrub_json(&json).into_owned(), scrubbed_cut] {
                assert_nothing_kept(&scrubbed, &["4111", "4155552671", "5555"]);
                let customer = &unnest(&scrubbed, &keys[..depth])?["customer"];
                assert_eq!(customer["card"], "[CARD_NUMBER]", "{scrubbed}");
                assert_eq!(customer["phone"], "[PHONE]", "{scrubbed}");
                assert_eq!(customer["cards"][0], "[CARD_NUMBER]", "{scrubbed}");
                assert_eq!(customer["tokens"], 1532, "{scrubbed}");
                assert_eq!(customer["note"], "call: [PHONE], thanks", "{scrubbed}");
                assert!(matches!(scrubber.scrub_json(&scrubbed), Cow::Borrowed(_)), "not idempotent on {scrubbed}");
            }
        }
    }
    // Prose that opens with a bracket holds no JSON: its numbers get no quotes.
    let json = nest("[INFO] call: 4155552671, card: 4111111111111111, done", &keys);
    let cut = &json[..json.len() - 1];
    let scrubbed_cut = format!("{}}}", String::from_utf8_lossy(&scrubber.scrub_bytes(cut.as_bytes())));
    for scrubbed in [scrubber.scrub_json(&json).into_owned(), scrubbed_cut] {
        let held = unnest(&scrubbed, &keys[1..])?;
        assert_eq!(held["arguments"], "[INFO] call: [PHONE], card: [CARD_NUMBER], done", "{scrubbed}");
    }
    Ok(())
}

#[test]
fn an_escape_before_an_address_or_a_phone_number_is_kept_whole() -> TestResult {
    let scrubber = Scrubber::new();
    // Broken text, as a cut dead letter or debug output writes it.
    for (text, expected) in [
        (r"see\nalice@example.com", r"see\n[EMAIL]"),
        (r"see\talice@example.com", r"see\t[EMAIL]"),
        (r#"see\"alice@example.com\""#, r#"see\"[EMAIL]\""#),
        (r"see\\nalice@example.com", r"see\\n[EMAIL]"),
        (r"see\u000aalice@example.com", r"see\u000a[EMAIL]"),
        (r"call\n+44 20 7946 0958", r"call\n[PHONE]"),
        (r"call\t415-555-2671", r"call\t[PHONE]"),
        (r#"call\"415-555-2671\""#, r#"call\"[PHONE]\""#),
        (r#"{"c":"see\nalice@example.com"#, r#"{"c":"see\n[EMAIL]"#),
    ] {
        assert_eq!(scrubber.scrub(text), expected, "in {text}");
        assert_eq!(scrubber.scrub_json(text), expected, "in {text}");
    }
    // The same in JSON strings that parse, scrubbed as text and as JSON.
    let content = "see\nalice@example.com,\tbob@example.org or \"carol@example.net\"; call\n415-555-2671,\t+44 20 7946 \
                   0958 or \"(415) 555-2671\"";
    let expected = "see\n[EMAIL],\t[EMAIL] or \"[EMAIL]\"; call\n[PHONE],\t[PHONE] or \"[PHONE]\"";
    let json = serde_json::json!({"content": content}).to_string();
    for scrubbed in [scrubber.scrub(&json), scrubber.scrub_json(&json)] {
        assert_eq!(parse(&scrubbed)?["content"], expected, "{scrubbed}");
    }
    // A literal backslash and letter in the string: escaped once more, kept too.
    let json = serde_json::json!({"content": r"see\nalice@example.com"}).to_string();
    assert_eq!(parse(&scrubber.scrub_json(&json))?["content"], r"see\n[EMAIL]");
    Ok(())
}

#[test]
fn a_phone_number_listed_after_its_keyword_is_masked() -> TestResult {
    let scrubber = Scrubber::new();
    for (text, expected) in [
        (r#"{"tel":[4155552671]}"#, r#"{"tel":["[PHONE]"]}"#),
        (r#"{"phone": [ 4155552671 ]}"#, r#"{"phone": [ "[PHONE]" ]}"#),
        // Cut short, so searched as written.
        (r#"{"user": {"tel": [4155552671"#, r#"{"user": {"tel": ["[PHONE]""#),
    ] {
        let scrubbed = scrubber.scrub_json(text);
        assert_eq!(scrubbed, expected, "in {text}");
        if !text.ends_with('1') {
            parse(&scrubbed)?;
        }
    }
    // A list of ten-digit numbers under a key that says nothing about phones stays.
    assert_clean(r#"{"order_ids":[4155552671]}"#);
    Ok(())
}

#[test]
fn a_single_quoted_password_is_masked_whole_past_a_double_quote_that_closes_no_string() -> TestResult {
    let scrubber = Scrubber::new();
    // After the double quote the text goes on as JSON would (`, "b`), but no
    // JSON string is open around the value for the quote to close.
    let commands = [
        (r#"pwd='a", "b' ok"#, "pwd='[PASSWORD]' ok"),
        (r#"login --password='x", "yz123' --user jane"#, "login --password='[PASSWORD]' --user jane"),
        (r#"echo "hi" && pwd='a", 1234' ok"#, r#"echo "hi" && pwd='[PASSWORD]' ok"#),
    ];
    // As JSON strings, the double quote is escaped for a level deeper than the string around it.
    assert_commands_scrubbed(&scrubber, &commands, &["b' ok", "yz123", "1234"])?;
    // A double quote that closes the JSON string around the value still ends it.
    for (json, expected) in [
        (r#"{"cmd":"pwd='abc", "user": "jane"}"#, r#"{"cmd":"pwd='[PASSWORD]", "user": "jane"}"#),
        (
            r#"{"a":"{\"cmd\":\"pwd='abc\", \"user\": \"jane\"}"}"#,
            r#"{"a":"{\"cmd\":\"pwd='[PASSWORD]\", \"user\": \"jane\"}"}"#,
        ),
    ] {
        assert_eq!(scrubber.scrub(json), expected, "in {json}");
        assert_eq!(scrubber.scrub_json(json), expected, "in {json}");
    }
    Ok(())
}

#[test]
fn a_backslash_before_an_address_in_text_that_is_no_json_is_a_backslash() -> TestResult {
    let scrubber = Scrubber::new();
    // `\b` and `\f` are escapes that only a JSON encoder writes; in a path
    // they are a folder's first letter.
    for (text, expected) in [
        (r"C:\new\bob@corp.com", r"C:\new\[EMAIL]"),
        (r"saved to D:\files\frank@corp.com today", r"saved to D:\files\[EMAIL] today"),
        (r"debug: C:\\new\\bob@corp.com", r"debug: C:\\new\\[EMAIL]"),
    ] {
        assert_eq!(scrubber.scrub(text), expected, "in {text}");
        assert_eq!(scrubber.scrub_json(text), expected, "in {text}");
    }
    // The same path as a JSON string, whole and cut short: a literal
    // backslash, escaped, before the address.
    let json = serde_json::json!({"path": r"C:\new\bob@corp.com", "note": "a\nb"}).to_string();
    assert_eq!(parse(&scrubber.scrub_json(&json))?["path"], r"C:\new\[EMAIL]");
    let cut = &json[..json.find("corp.com").map_or(json.len(), |at| at + "corp.com".len())];
    assert!(cut.ends_with(r"C:\\new\\bob@corp.com"), "{cut}");
    let kept = String::from_utf8_lossy(&scrubber.scrub_bytes(cut.as_bytes())).into_owned();
    assert!(kept.ends_with(r"C:\\new\\[EMAIL]"), "{kept}");
    // In JSON a backspace is an escape, and it stays whole, as do the common escapes anywhere.
    for (text, expected) in [
        (r#"{"c":"see\bbob@corp.com"}"#, r#"{"c":"see\b[EMAIL]"}"#),
        (r#"{"c":"see\fbob@corp.com"#, r#"{"c":"see\f[EMAIL]"#),
        (r#"say \"hi\" to\bbob@corp.com"#, r#"say \"hi\" to\b[EMAIL]"#),
        (r"see\nalice@example.com", r"see\n[EMAIL]"),
        (r"see\tbob@corp.com", r"see\t[EMAIL]"),
    ] {
        assert_eq!(scrubber.scrub(text), expected, "in {text}");
    }
    Ok(())
}
