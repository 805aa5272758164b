//! PII behind escapes (glued, repeated by nesting, `\uXXXX`) and in dead letters of broken JSON.

use super::super::*;
use super::{NESTED_OTLP_LINE, assert_clean, assert_nothing_kept, dead_letter_payloads, otlp_line_with_tool_result};

#[test]
fn escapes_glued_to_pii_do_not_hide_it() {
    // Two-character escapes as JSON and debug output write them.
    let text = r#"card:\n4111 1111 1111 1111\tphone:\r555-123-4567\n\n10.1.2.3\"203.0.113.9\u000a07700 900123"#;
    let scrubbed = Scrubber::new().scrub(text);
    assert_eq!(scrubbed, r#"card:\n[CARD_NUMBER]\tphone:\r[PHONE]\n\n[IP_ADDRESS]\"[IP_ADDRESS]\u000a[PHONE]"#);
    // Blanking a letter after a literal backslash adds a separator and nothing else.
    assert_clean(r"C:\\new\\4111111111111112 and \n-v1.2 and \\n1.2.3.4.5");
    assert_clean(r"copy C:\new\data.txt to D:\tmp\build-20240806 and \\server\share\v1.2.3");
    // A single escape before a bracket glues its letter to the number just the same.
    assert_eq!(Scrubber::new().scrub(r"phone:\n(555) 123-4567"), r"phone:\n[PHONE]");
}

#[test]
fn escapes_repeated_by_nesting_do_not_hide_pii() {
    let scrubber = Scrubber::new();
    for (text, scrubbed) in [
        (r"card:\\n4111 1111 1111 1111", r"card:\\n[CARD_NUMBER]"),
        (r"SSN:\\\\n078-05-1120\\\\t.", r"SSN:\\\\n[NATIONAL_ID]\\\\t."),
        (r"phone:\\r\\n(555) 123-4567", r"phone:\\r\\n[PHONE]"),
        (r"ip\\u000a10.1.2.3", r"ip\\u000a[IP_ADDRESS]"),
    ] {
        assert_eq!(scrubber.scrub(text), scrubbed);
    }
}

#[test]
fn the_escape_view_keeps_every_offset() {
    for text in [r"a\\\nb", r"\u00e9\\u0040x\", r#"C:\new é\\\"q\/"#, "no escapes", r"end\\"] {
        let view = Escapes::new(text).view().unwrap_or_else(|| text.to_owned());
        assert_eq!(view.len(), text.len(), "{text:?} -> {view:?}");
        for (at, (original, seen)) in text.bytes().zip(view.bytes()).enumerate() {
            assert!(original == seen || seen == b' ', "{text:?} -> {view:?} at {at}");
        }
    }
    assert_eq!(Escapes::new(r"a\\\nb").view().as_deref(), Some("a    b"));
    assert_eq!(Escapes::new(r#"\"q\/ C:\4"#).view(), None, "quotes, slashes and digits join nothing");
}

#[test]
fn dead_letters_of_broken_nested_json_keep_no_pii() {
    let scrubber = Scrubber::new();
    assert!(serde_json::from_str::<serde_json::Value>(NESTED_OTLP_LINE).is_ok(), "the fixture is OTLP/JSON");
    let without_last_brace = &NESTED_OTLP_LINE[..NESTED_OTLP_LINE.len() - 1];
    // The kept head of an oversize message, cut right after the phone number.
    let head = &NESTED_OTLP_LINE[..NESTED_OTLP_LINE.find(r#"\"}]"#).unwrap_or_default()];
    assert!(head.ends_with("4567"), "{head}");
    let nested_once_more = NESTED_OTLP_LINE.replace(r"\\n", r"\\\\n");
    let nested_once_more = &nested_once_more[..nested_once_more.len() - 1];
    for line in [NESTED_OTLP_LINE, without_last_brace, head, nested_once_more] {
        let kept = scrubber.scrub_bytes(line.as_bytes());
        let kept = String::from_utf8_lossy(&kept);
        for secret in ["4111", "078-05-1120", "123-4567"] {
            assert!(!kept.contains(secret), "{secret} kept in {kept}");
        }
        for placeholder in ["[CARD_NUMBER]", "[NATIONAL_ID]", "[PHONE]"] {
            assert!(kept.contains(placeholder), "{placeholder} missing in {kept}");
        }
    }
}

#[test]
fn secrets_that_need_their_escaped_quotes_are_found_in_broken_json() {
    let truncated = r#"{"body":"{\"password\":\"correct horse\",\"note\":\"x\ny\"}"#;
    assert_eq!(Scrubber::new().scrub_json(truncated), r#"{"body":"{\"password\":\"[PASSWORD]\",\"note\":\"x\ny\"}"#);
}

#[test]
fn secrets_escaped_twice_in_dead_letters_of_broken_json_are_masked() {
    let scrubber = Scrubber::new();
    // What a CRM tool echoed back: the request it sent, headers included.
    let echoed = r#"{"request": {"user": "jane", "password": "correct horse", "api_key": "c2VjcmV0LXZhbHVl", "client_secret":"Zm9vYmFyYmF6cXV4", "openai": "sk-proj-abcdEFGH1234ijklMNOP5678qrst", "headers": {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}}, "status": "retry\nlater"}"#;
    for nest_again in [false, true] {
        let line = otlp_line_with_tool_result(echoed, nest_again);
        let escaped_twice = if nest_again { r#"\\\\\\\"password\\\\\\\""# } else { r#"\\\"password\\\""# };
        assert!(line.contains(escaped_twice), "{line}");
        for payload in dead_letter_payloads(&line, "status") {
            let kept = scrubber.scrub_bytes(payload.as_bytes());
            let kept = String::from_utf8_lossy(&kept);
            assert_nothing_kept(
                &kept,
                &["correct horse", "c2VjcmV0", "Zm9vYmFy", "abcdEFGH1234", "dXNlcjpwYXNzd29yZA"],
            );
            for placeholder in ["[PASSWORD]", "[API_KEY]"] {
                assert!(kept.contains(placeholder), "{placeholder} missing in {kept}");
            }
            assert!(kept.contains(r#"user\\\": \\\"jane"#) || kept.contains(r#"user\\\\\\\": \\\\\\\"jane"#), "{kept}");
            if payload == line {
                assert!(serde_json::from_str::<serde_json::Value>(&kept).is_ok(), "no longer JSON: {kept}");
            }
        }
    }
    // Quotes written as `\u0022`, as .NET's default encoder writes them.
    assert_eq!(
        scrubber.scrub(r#"{"args":"{\u0022password\u0022:\u0022correct horse\u0022}"#),
        r#"{"args":"{\u0022password\u0022:\u0022[PASSWORD]\u0022}"#
    );
}

#[test]
fn emails_behind_json_unicode_escapes_in_dead_letters_are_masked() {
    let scrubber = Scrubber::new();
    // A CRM lookup's result as encoders write it: `@` as `\u0040`, `+` as
    // `\u002B` and non-ASCII letters escaped (.NET's default encoder, Python's
    // `ensure_ascii`), `/` as `\/` (PHP), a dot as `\u002e`; one address is
    // left for the exporter's encoder to escape.
    let result = r#"{"contacts": [{"email": "alice\u0040example.com"}, {"email": "jane.doe\u002Bbilling@example.co.uk"}, {"email": "j\u00fcrgen@m\u00FCller.de"}, {"email": "carol\u0040mail\u002eacme.io"}, {"email": "erin@example.net"}], "profile": "https:\/\/crm.acme.test\/u\/bob.smith\u0040corp.example.org", "note": "see\nalice\u0040example.com", "status": "ok"}"#;
    for nest_again in [false, true] {
        let line = otlp_line_with_tool_result(result, nest_again);
        assert!(line.contains(r"alice\\\\") && line.contains(r"\\\\u0040example.com"), "{line}");
        // An exporter whose encoder writes every `@` as `\u0040`.
        let escaping_at = line.replace('@', r"\u0040");
        let payloads = [dead_letter_payloads(&line, "status"), dead_letter_payloads(&escaping_at, "status")];
        for payload in payloads.concat() {
            let kept = scrubber.scrub_bytes(payload.as_bytes());
            let kept = String::from_utf8_lossy(&kept);
            let secrets = [
                "alice",
                "example.com",
                "jane.doe",
                "billing",
                "rgen",
                "ller.de",
                "carol",
                "acme.io",
                "bob.smith",
                "erin",
            ];
            assert_nothing_kept(&kept, &secrets);
            assert!(kept.contains("[EMAIL]"), "{kept}");
            assert!(kept.contains("crm.acme.test"), "the host is no address: {kept}");
            if payload == line || payload == escaping_at {
                assert!(serde_json::from_str::<serde_json::Value>(&kept).is_ok(), "no longer JSON: {kept}");
            }
        }
    }
    // Plain text with the same escapes, and look-alikes that are no address.
    assert_eq!(
        scrubber.scrub(r"mail alice\u0040example.com or \u00e9lise\\u0040exemple.fr"),
        "mail [EMAIL] or [EMAIL]"
    );
    assert_clean(r"handle \u0040channel, version 2\u002e0, price \u002B5 and ops\u0040localhost");
}
