use super::validate::iban_valid;
use super::*;

mod audit;
mod structure;

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

/// The kinds and matched text the scrubber finds.
fn found(text: &str) -> Vec<(PiiKind, &str)> {
    Scrubber::new().find(text).into_iter().map(|(kind, range)| (kind, &text[range])).collect()
}

fn assert_finds(text: &str, kind: PiiKind, secret: &str) {
    let hits = found(text);
    assert_eq!(hits, vec![(kind, secret)], "in {text:?}");
    let scrubbed = Scrubber::new().scrub(text).into_owned();
    assert!(!scrubbed.contains(secret), "{scrubbed}");
    assert!(scrubbed.contains(kind.placeholder()), "{scrubbed}");
}

fn assert_clean(text: &str) {
    assert_eq!(found(text), vec![], "false positive in {text:?}");
    assert!(matches!(Scrubber::new().scrub(text), Cow::Borrowed(_)));
}

#[test]
fn every_pattern_compiles() {
    assert_eq!(COMPILED.regexes.len(), DETECTORS.len());
    assert_eq!(COMPILED.set.len(), DETECTORS.len());
}

#[test]
fn emails() {
    assert_finds(
        "Please reply to jane.doe+billing@example.co.uk today.",
        PiiKind::Email,
        "jane.doe+billing@example.co.uk",
    );
    assert_finds("From: <ops_team@mail-relay.acme.io>", PiiKind::Email, "ops_team@mail-relay.acme.io");
    assert_finds("Schreiben Sie an jürgen@müller.de bitte.", PiiKind::Email, "jürgen@müller.de");
    assert_finds("contact: иван@пример.рф", PiiKind::Email, "иван@пример.рф");
    assert_clean("Mention @channel in the #ops room, or see user@localhost for details.");
}

#[test]
fn phones() {
    for phone in [
        "+1 (415) 555-2671",
        "+44 20 7946 0958",
        "+4915123456789",
        "415-555-2671",
        "(415) 555-2671",
        "020 7946 0958",
        "07700 900123",
        "06 12 34 56 78",
        "01.45.67.89.10",
        "04-91-23-45-67",
    ] {
        assert_finds(&format!("You can reach me on {phone}, evenings only."), PiiKind::Phone, phone);
    }
    for not_a_phone in ["chapters 01 02 03 04 05 and more", "at 05.06.24 12.30 it ran", "on 03-04-25 14-30 utc"] {
        assert_clean(not_a_phone);
    }
}

#[test]
fn cards_need_a_valid_luhn_checksum() {
    for card in ["4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "4012888888881881"] {
        assert_finds(&format!("Charge card {card} for the renewal."), PiiKind::CardNumber, card);
    }
    for not_card in ["4111 1111 1111 1112", "5555-5555-5555-4445", "4012888888881882"] {
        assert_clean(&format!("Charge card {not_card} for the renewal."));
    }
}

#[test]
fn ibans_need_a_valid_checksum() {
    assert_finds("Wire it to DE89 3704 0044 0532 0130 00 by Friday.", PiiKind::Iban, "DE89 3704 0044 0532 0130 00");
    assert_finds("IBAN: GB82WEST12345698765432.", PiiKind::Iban, "GB82WEST12345698765432");
    // The pattern may swallow a following capitalised word; the checksum trims it off.
    assert_finds("Account GB82 WEST 1234 5698 7654 32 FOR invoices.", PiiKind::Iban, "GB82 WEST 1234 5698 7654 32");
    assert_clean("Wire it to DE89 3704 0044 0532 0130 01 by Friday.");
    // Lower-case hex ids have an IBAN's shape and pass its checksum one time in 97.
    assert!(iban_valid("FD09E37C7F9C1321"), "the checksum alone would take it");
    assert_clean("span fd09e37c7f9c1321 failed");
}

#[test]
fn national_ids() {
    assert_finds("My SSN is 123-45-6789, please update it.", PiiKind::NationalId, "123-45-6789");
    for unissued in ["000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567", "123-45-0000"] {
        assert_clean(&format!("SSN {unissued} on the form."));
    }
    assert_finds("NI number: AB 12 34 56 C.", PiiKind::NationalId, "AB 12 34 56 C");
    assert_finds("NI number JG103759A on file", PiiKind::NationalId, "JG103759A");
    assert_clean("NI number GB 12 34 56 C on file");
}

#[test]
fn ip_addresses() {
    assert_finds("Login from 203.0.113.42 was blocked.", PiiKind::IpAddress, "203.0.113.42");
    assert_finds("upstream http://10.0.0.1:8080/health failed", PiiKind::IpAddress, "10.0.0.1");
    assert_finds("client 2001:db8:85a3::8a2e:370:7334 connected", PiiKind::IpAddress, "2001:db8:85a3::8a2e:370:7334");
    assert_finds("link-local fe80::1ff:fe23:4567:890a: up", PiiKind::IpAddress, "fe80::1ff:fe23:4567:890a");
    assert_finds("mapped ::ffff:192.0.2.128 seen", PiiKind::IpAddress, "::ffff:192.0.2.128");
    assert_clean("Use std::fmt::Display and Vec::new; meet at 12:30:45, aspect 16:9, MAC 00:1a:2b:3c:4d:5e.");
}

#[test]
fn api_keys_bearer_tokens_and_jwts() {
    for key in [
        "sk-proj-abcdEFGH1234ijklMNOP5678qrst",
        "sk-ant-api03-AbCdEf0123456789xyzXYZ-_0",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_1234567890abcdefghijABCDEFGHIJ123456",
        "xoxb-123456789012-abcdefABCDEF",
    ] {
        assert_finds(&format!("oops, I pasted my key {key} in the chat"), PiiKind::ApiKey, key);
    }
    assert_finds("curl -H 'x-api-key: 9f8e7d6c5b4a3210' https://api", PiiKind::ApiKey, "9f8e7d6c5b4a3210");
    assert_finds(r#"{"api_key": "c2VjcmV0LXZhbHVl"}"#, PiiKind::ApiKey, "c2VjcmV0LXZhbHVl");
    assert_finds("API_KEY=abcdef123456 ./run.sh", PiiKind::ApiKey, "abcdef123456");
    for (line, secret) in [
        ("export OPENAI_API_KEY=abcdefgh12345678XYZ", "abcdefgh12345678XYZ"),
        ("MISTRAL_API_KEY=abcdefgh12345678XYZ python app.py", "abcdefgh12345678XYZ"),
        ("DB_SECRET_KEY: 'q9w8e7r6t5y4'", "q9w8e7r6t5y4"),
        ("access_key=AbCdEf123456", "AbCdEf123456"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("HF_API_TOKEN=abcd1234efgh5678", "abcd1234efgh5678"),
    ] {
        assert_finds(&format!("{line}\n"), PiiKind::ApiKey, secret);
    }
    assert_finds(
        "token hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 leaked",
        PiiKind::ApiKey,
        "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    );
    assert_finds("Authorization: Bearer abc123DEF456ghi789", PiiKind::BearerToken, "abc123DEF456ghi789");
    assert_finds(&format!("token {JWT} expired"), PiiKind::Jwt, JWT);
    // A JWT sent as a bearer token is named as the more specific kind.
    assert_finds(&format!("Authorization: Bearer {JWT}"), PiiKind::Jwt, JWT);
    assert_clean("These bearer bonds and the task-management-system are fine; so is sk-learn.");
}

#[test]
fn no_false_positives_on_ordinary_telemetry_text() {
    assert_clean(
        "The call used 1532 input tokens and 418 output tokens (cached 1024) in 2025, costing $0.0123 \
         at 2024-08-06T12:30:45.123Z. Model gpt-4o-2024-08-06, version 1.2.3, build 20240806. Request id \
         123e4567-e89b-12d3-a456-426614174000 and 550e8400-e29b-41d4-a716-446655440000. Epoch \
         1718000000000 ms, latency 1234567 us, order #4521, total 1,234,567.89 EUR, ratio 3/4.",
    );
    assert_clean(
        "Took 1.234 s at 0.15 USD per 1M tokens; location 52.3676, 4.9041; released 06/08/2024 \
         at 2024-08-06 12:30:45 (2024-08-06T12:30:45+02:00); trace 4bf92f3577b34da6a3ce929d0e0e4736, \
         span 00f067aa0ba902b7; sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08; \
         counts 100 200 300 400; python==3.11.4; HTTP 429 after 3 retries.",
    );
}

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

/// An OTLP/JSON log line whose message attribute is itself JSON, so the
/// newlines inside the message are escaped twice.
const NESTED_OTLP_LINE: &str = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"gen_ai.input.messages","value":{"stringValue":"[{\"role\":\"user\",\"content\":\"My card:\\n4111 1111 1111 1111\\nSSN:\\n078-05-1120\\nphone:\\n(555) 123-4567\"}]"}}]}]}]}]}"#;

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
fn ssns_and_phone_numbers_named_by_a_context_word() {
    for (text, kind, secret) in [
        ("SSN 123 45 6789 on file", PiiKind::NationalId, "123 45 6789"),
        ("SSN: 123456789", PiiKind::NationalId, "123456789"),
        ("my ssn is 123456789.", PiiKind::NationalId, "123456789"),
        ("Social Security Number: 078 05 1120", PiiKind::NationalId, "078 05 1120"),
        (r#"{"user_ssn": "123456789"}"#, PiiKind::NationalId, "123456789"),
        ("call 5551234567", PiiKind::Phone, "5551234567"),
        ("Call me at 5551234567 after six", PiiKind::Phone, "5551234567"),
        ("Phone number: 15551234567", PiiKind::Phone, "15551234567"),
        ("tel. 0612345678", PiiKind::Phone, "0612345678"),
        ("mobile no 07700900123", PiiKind::Phone, "07700900123"),
        (r#"{"cell_phone":"4155552671"}"#, PiiKind::Phone, "4155552671"),
    ] {
        assert_finds(text, kind, secret);
    }
    for not_pii in [
        "order 123456789 and id 5551234567 shipped",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736 took 5551234567 ns",
        "SSN 000 12 3456 and SSN 666123456 are never issued; ssn 1234567890 is too long",
        "tool call at 1718000000, call_id 5551234567, phone 555123456789, cell A1",
        "called 5551234567 times; telemetry 5551234567; recall 5551234567",
    ] {
        assert_clean(not_pii);
    }
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
fn stripe_and_google_keys() {
    for key in [
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "rk_live_51H8abcDEFghiJKLmnoPQ",
        "AIzaSyA-1234567890abcdefghijklmnopqrstu",
        "AIzaSyD_abcdefghijklmnopqrstuvwxyz0123-",
    ] {
        assert_finds(&format!("config: {key} (do not share)"), PiiKind::ApiKey, key);
    }
    assert_clean("pk_live is the publishable prefix; sk_live_ alone is a prefix; AIza is a word start.");
}

#[test]
fn passwords_and_basic_credentials() {
    for (text, secret) in [
        ("connect with password=hunter2 now", "hunter2"),
        ("DB_PASSWORD=s3cr3t!x ./migrate", "s3cr3t!x"),
        (r#"{"user": "jane", "password": "correct horse"}"#, "correct horse"),
        (r#"{"passwd":"p@ss"}"#, "p@ss"),
        ("pwd='tr0ub4dor' in the script", "tr0ub4dor"),
        ("password = 'Tr0ub4dor&3'", "Tr0ub4dor&3"),
        ("my password: hunter2.", "hunter2"),
        (r#"body {"password":"hunter2"} sent"#, "hunter2"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        (r#"-H "authorization: basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==""#, "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
    ] {
        assert_finds(text, PiiKind::Password, secret);
    }
    assert_clean("Forgot your password: click the link. Password reset done; basic auth is off; basic plan.");
}

#[test]
fn version_numbers_are_not_addresses() {
    assert_clean("Running version 1.2.3.4, upgraded from ver. 10.0.0.1 (v 2.0.0.1) and Version: 4.3.2.1.");
    assert_finds("server 10.0.0.1 runs version 1.2.3.4", PiiKind::IpAddress, "10.0.0.1");
    assert_clean("dates 2024-08-06 and 06.08.2024, order #4521, uuid 123e4567-e89b-12d3-a456-426614174000");
}

/// Fails naming every secret that `kept` still holds.
fn assert_nothing_kept(kept: &str, secrets: &[&str]) {
    let leaked: Vec<&str> = secrets.iter().copied().filter(|secret| kept.contains(secret)).collect();
    assert!(leaked.is_empty(), "{leaked:?} kept in {kept}");
}

/// An OTLP/JSON log line whose message attribute is a GenAI message list
/// with `content` as a tool's result: JSON in `content` is escaped twice in
/// the line, or three times with `nest_again`.
fn otlp_line_with_tool_result(content: &str, nest_again: bool) -> String {
    let messages = serde_json::json!([{"role": "tool", "tool_call_id": "call_1", "content": content}]).to_string();
    let messages = if nest_again { serde_json::Value::String(messages).to_string() } else { messages };
    serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{
        "body": {"stringValue": "crm tool call"},
        "attributes": [{"key": "gen_ai.input.messages", "value": {"stringValue": messages}}],
    }]}]}]})
    .to_string()
}

/// A dead letter's payload from `line`: whole (valid JSON, scrubbed by its
/// decoded strings), without its last brace and cut right before `cut_before`
/// as an oversize message's kept head is (neither parses: scrubbed as raw text).
fn dead_letter_payloads<'a>(line: &'a str, cut_before: &str) -> Vec<&'a str> {
    let cut = line.find(cut_before).unwrap_or(line.len());
    vec![line, &line[..line.len() - 1], &line[..cut]]
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
