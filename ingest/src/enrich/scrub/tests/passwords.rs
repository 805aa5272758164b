//! Passwords masked whole: escaped quotes and backslashes, comparisons in code, and where a
//! quoted value ends.

use super::super::*;
use super::{assert_clean, assert_nothing_kept, assert_scrubbed_as, dead_letter_payloads, otlp_line_with_tool_result};

#[test]
fn passwords_with_escaped_quotes_and_backslashes_are_masked_whole_in_json() -> Result<(), Box<dyn std::error::Error>> {
    use serde_json::Value;
    let scrubber = Scrubber::new();
    // Each document parses, so `scrub_json` walks it decoded; but the walk
    // sees a key apart from its value, so the password is the plain pass's to
    // mask, over the original (nothing else changed) or the re-serialised text.
    for (json, expected) in [
        (r#"{"password": "Tr0ub\"4dor"}"#, r#"{"password": "[PASSWORD]"}"#),
        (r#"{"password":"h0rse\\st4ple","user":"jane"}"#, r#"{"password":"[PASSWORD]","user":"jane"}"#),
        // The value ends in an escaped backslash: the next quote closes it.
        (r#"{"password":"b4ttery\\","user":"jane"}"#, r#"{"password":"[PASSWORD]","user":"jane"}"#),
        // JSON escapes no apostrophe, and no backslash means the plain pass alone.
        (r#"{"pwd":"it's-m3"}"#, r#"{"pwd":"[PASSWORD]"}"#),
    ] {
        let scrubbed = scrubber.scrub_json(json);
        assert_eq!(scrubbed, expected, "in {json}");
        assert!(serde_json::from_str::<Value>(&scrubbed).is_ok(), "no longer JSON: {scrubbed}");
        assert!(matches!(scrubber.scrub_json(&scrubbed), Cow::Borrowed(_)), "not idempotent on {scrubbed}");
    }
    // The walk changes something (the address), so the plain pass reads the
    // re-serialised text; and a password in JSON inside a string, which the
    // walk scrubs as text of its own.
    for json in [
        r#"{"user":"jane@example.com","password":"Tr0ub\"4dor\\&3"}"#,
        r#"{"args":"{\"password\":\"Tr0ub\\\"4dor\\\\&3\",\"user\":\"jane\"}"}"#,
    ] {
        let scrubbed = scrubber.scrub_json(json);
        assert_nothing_kept(&scrubbed, &["Tr0ub", "4dor", "&3"]);
        let value: Value = serde_json::from_str(&scrubbed).map_err(|e| format!("{e} in {scrubbed}"))?;
        let credentials = match &value["args"] {
            Value::String(args) => serde_json::from_str(args).map_err(|e| format!("{e} in the arguments {args}"))?,
            _ => value,
        };
        assert_eq!(credentials["password"], "[PASSWORD]", "{scrubbed}");
        assert!(matches!(scrubber.scrub_json(&scrubbed), Cow::Borrowed(_)), "not idempotent on {scrubbed}");
    }
    Ok(())
}

#[test]
fn passwords_with_escaped_quotes_and_backslashes_are_masked_whole_in_cut_dead_letters() {
    let scrubber = Scrubber::new();
    let echoed = r#"{"request": {"user": "jane", "password": "Tr0ub\"4dor\\&3", "cmd": "login --password=c0rr\\ect h0rse", "status": "retry"}}"#;
    for nest_again in [false, true] {
        let line = otlp_line_with_tool_result(echoed, nest_again);
        let escaped_quote = if nest_again { r#"Tr0ub\\\\\\\\\\\\\\\"4dor"# } else { r#"Tr0ub\\\\\\\"4dor"# };
        assert!(line.contains(escaped_quote), "{line}");
        // Cut inside the password as well: what is left of it goes.
        let inside_the_password = line.find("4dor").map_or(line.len(), |at| at + 2);
        let mut payloads = dead_letter_payloads(&line, "status");
        payloads.push(&line[..inside_the_password]);
        for payload in payloads {
            let kept = scrubber.scrub_bytes(payload.as_bytes());
            let kept = String::from_utf8_lossy(&kept);
            assert_nothing_kept(&kept, &["Tr0ub", "4d", "&3", "c0rr", "ect h0rse"]);
            assert!(kept.contains("[PASSWORD]"), "{kept}");
            if payload == line {
                assert!(serde_json::from_str::<serde_json::Value>(&kept).is_ok(), "no longer JSON: {kept}");
            } else {
                assert!(
                    kept.contains(r#"user\\\": \\\"jane"#) || kept.contains(r#"user\\\\\\\": \\\\\\\"jane"#),
                    "{kept}"
                );
            }
            let again = scrubber.scrub_bytes(kept.as_bytes());
            assert!(matches!(again, Cow::Borrowed(_)), "not idempotent on {kept}");
        }
    }
}

#[test]
fn backslashes_in_plain_text_passwords_are_masked_too() {
    let scrubber = Scrubber::new();
    for (text, expected) in [
        // No quotes: the value runs to a space or a delimiter, backslashes included.
        (r"connect with password=abc\def now", "connect with password=[PASSWORD] now"),
        (r"DB_PASSWORD=p\/ss;port=5432", "DB_PASSWORD=[PASSWORD];port=5432"),
        (r"my password: s3cr\et", "my password: [PASSWORD]"),
        // Quoted: up to the closing quote, escaped quotes and backslashes included.
        (r#"password: "p\\ss" then more"#, r#"password: "[PASSWORD]" then more"#),
        (r#"password = "say \"hi\"" ok"#, r#"password = "[PASSWORD]" ok"#),
        (r"pwd='s3cr\et' ok", "pwd='[PASSWORD]' ok"),
    ] {
        let once = scrubber.scrub(text);
        assert_eq!(once, expected, "in {text}");
        assert!(matches!(scrubber.scrub(&once), Cow::Borrowed(_)), "not idempotent on {once}");
    }
    // An escaped line break ends a bare value as a real one does, so prose
    // in JSON stays prose.
    assert_clean(r#"{"content":"Forgot your password: click\nthe link"}"#);
    assert_clean(r#"{"content":"Forgot your password: click\\nthe link"}"#);
}

/// Code pasted into a prompt compares passwords as often as it assigns them; the literal is
/// the secret either way.
#[test]
fn passwords_compared_in_code_are_masked() {
    let scrubber = Scrubber::new();
    for (text, expected) in [
        (r#"if password == "hunter2": login()"#, r#"if password == "[PASSWORD]": login()"#),
        (r#"if (pwd !== 'hunter2') { deny(); }"#, r#"if (pwd !== '[PASSWORD]') { deny(); }"#),
        (r#"assert user.password != "hunter2""#, r#"assert user.password != "[PASSWORD]""#),
        ("[ $PASSWORD == hunter2 ] && echo ok", "[ $PASSWORD == [PASSWORD] ] && echo ok"),
    ] {
        let once = scrubber.scrub(text);
        assert_eq!(once, expected, "in {text}");
        assert!(matches!(scrubber.scrub(&once), Cow::Borrowed(_)), "not idempotent on {once}");
    }
}

#[test]
fn a_string_that_ends_in_a_password_prompt_stays_json() {
    let scrubber = Scrubber::new();
    // The quote after "password: " closes the string; what follows is JSON, not a password.
    for json in [
        r#"{"messages":[{"content":"Enter your password: "}]}"#,
        r#"{"messages":[{"content":"Enter your password: ","role":"user"}]}"#,
        r#"{"args":"{\"prompt\":\"password=\"}"}"#,
    ] {
        assert_clean(json);
        assert!(matches!(scrubber.scrub_json(json), Cow::Borrowed(_)), "{json}");
    }
}

#[test]
fn a_quoted_value_ends_where_decoding_would_end_it() {
    // (text, length of the opening quote, the value it opens)
    for (text, opening, value) in [
        (r#""abc\"def", "#, 1, r#"abc\"def"#),
        (r#""abc\\", "x""#, 1, r"abc\\"),
        (r#"\"abc\\\"def\", "#, 2, r#"abc\\\"def"#),
        // `abc\` one level down; then a quote that closes the string around.
        (r#"\"abc\\\\\"}"#, 2, r"abc\\\\"),
        (r#"\"abc"}"#, 2, "abc"),
        (r#"\\\"abc\\\\\\\"d\\\"}"#, 4, r#"abc\\\\\\\"d"#),
        (r#"\u0022abc\\\u0022d\u0022}"#, 6, r"abc\\\u0022d"),
        (r#"\\u0022abc\u0022}"#, 7, "abc"),
        (r#""it's" x"#, 1, "it's"),
        (r"'it\'s' x", 1, r"it\'s"),
        // Cut short, or broken by a line break no JSON string holds.
        (r#""abc\"de"#, 1, r#"abc\"de"#),
        ("\"abc\ndef\"", 1, "abc"),
    ] {
        let found = quoted_value(text, 0..opening).map(|range| &text[range]);
        assert_eq!(found, Some(value), "in {text}");
    }
    // A double quote in a single-quoted value is text, unless it closes a
    // string open around the value and JSON goes on after it as after a string.
    for (text, value) in [
        (r#"'a\"b' x"#, r#"a\"b"#),
        (r#"'a", "b' x"#, r#"a", "b"#),
        (r#"{"cmd":"'abc", "user": "jane"}"#, "abc"),
        (r#"{"a":"{\"p\":\"'abc\"}"}"#, "abc"),
        (r#"{"a":"{\"p\":\"'abc\", \"user\": \"jane\"}"}"#, "abc"),
        (r#"{"a":"'abc\", \"b'"}"#, r#"abc\", \"b"#),
    ] {
        let opening = text.find('\'').map_or(0..0, |at| at..at + 1);
        let found = quoted_value(text, opening).map(|range| &text[range]);
        assert_eq!(found, Some(value), "in {text}");
    }
    // The quote closes a string that ends in `password: `, and JSON goes on.
    for (text, opening) in [
        (r#""", "#, 1),
        (r#""[PASSWORD]""#, 1),
        (r#"\"}]"#, 2),
        (r#"", "x""#, 1),
        (r#"", 1234]"#, 1),
        (r#"",true]"#, 1),
        (r#"":-12.5e3}"#, 1),
        (r#"\"},1234]\"}"#, 2),
    ] {
        assert_eq!(quoted_value(text, 0..opening), None, "in {text}");
    }
}

/// A URL's credentials: the password goes, however it is spelt (an unescaped `@` or `!`
/// included), the user name and host stay; a URL without a password is left alone.
#[test]
fn passwords_in_url_credentials_are_masked() {
    assert_scrubbed_as(&[
        ("postgres://admin:S3cr3t!xyz@db.example.com:5432/app", "postgres://admin:[PASSWORD]@db.example.com:5432/app"),
        ("REDIS_URL=redis://:Pa55w0rd#1@cache.internal:6379", "REDIS_URL=redis://:[PASSWORD]@cache.internal:6379"),
        ("amqp://svc:p@ss@mq.local/vhost", "amqp://svc:[PASSWORD]@mq.local/vhost"),
        (r#"{"dsn": "mysql://root:hunter2@10.0.0.5/db"}"#, r#"{"dsn": "mysql://root:[PASSWORD]@[IP_ADDRESS]/db"}"#),
    ]);
    for clean in ["https://example.com/a:b@c", "see https://docs.example.com:8443/path"] {
        assert_clean(clean);
    }
}

/// A PEM private key is masked whole, footer included, also inside a service account's JSON
/// (escaped line breaks) and when a sample cuts it short; a public key or certificate is not a
/// secret and stays.
#[test]
fn pem_private_keys_are_masked_whole() {
    let scrubber = Scrubber::new();
    let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nqb5Uu3bKx1GZ2mL0rT8yPz1cQ==";
    for header in ["PRIVATE KEY", "RSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY"] {
        let pem = format!("-----BEGIN {header}-----\n{body}\n-----END {header}-----");
        assert_eq!(scrubber.scrub(&format!("key:\n{pem}\nthanks")), "key:\n[PRIVATE_KEY]\nthanks");
    }
    let account = serde_json::json!({
        "type": "service_account",
        "private_key": format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"),
        "client_email": "svc@project.iam.gserviceaccount.com",
    })
    .to_string();
    let kept = scrubber.scrub_json(&account);
    assert_nothing_kept(&kept, &["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", "qb5Uu3bKx1GZ2mL0rT8yPz1cQ"]);
    assert!(kept.contains("[PRIVATE_KEY]") && kept.contains("service_account"), "{kept}");
    // Cut short (an oversize dead letter's kept head): the base64 that is there goes.
    let cut = format!("-----BEGIN PRIVATE KEY-----\\n{}", &body[..40]);
    assert_eq!(scrubber.scrub(&cut), "[PRIVATE_KEY]");
    assert_clean("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----");
}

/// The German keyword and passphrases, in every form the English one is read in.
#[test]
fn passwort_and_passphrase_are_password_keys() {
    assert_scrubbed_as(&[
        ("Passwort: Geheim123!", "Passwort: [PASSWORD]"),
        ("passphrase = correct-horse-battery-staple", "passphrase = [PASSWORD]"),
        (r#"{"passphrase": "two words"}"#, r#"{"passphrase": "[PASSWORD]"}"#),
    ]);
}
