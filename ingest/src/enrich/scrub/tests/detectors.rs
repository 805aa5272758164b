//! What each detector finds, and the look-alikes it leaves alone.

use super::super::validate::iban_valid;
use super::super::*;
use super::{JWT, assert_clean, assert_finds};

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

/// Found by the `scrub` fuzz target: the pattern takes digit groups on either side of a card
/// as one number, which then failed the checks whole, and the card was kept.
#[test]
fn a_card_beside_other_numbers_is_found() {
    for text in [
        "Card 4111 1111 1111 1111 05 27, CVV 123.",
        "Qty 2 4111 1111 1111 1111 at 10 EUR.",
        "Card 41DE89 3704 0044 05 4111 1111 1111 1111 32 0130 00, SSN",
        "SSN 123-4875 4111 1111 1111 1111 -96,",
        "from 198.51. 4111 1111 1111 1111 102.00007 and",
    ] {
        assert_finds(text, PiiKind::CardNumber, "4111 1111 1111 1111");
    }
    assert_clean("Qty 2 4111 1111 1111 1112 at 10 EUR.");
}

#[test]
fn ibans_need_a_valid_checksum() {
    assert_finds("Wire it to DE89 3704 0044 0532 0130 00 by Friday.", PiiKind::Iban, "DE89 3704 0044 0532 0130 00");
    assert_finds("IBAN: GB82WEST12345698765432.", PiiKind::Iban, "GB82WEST12345698765432");
    // The pattern may swallow a following capitalised word; the checksum trims it off.
    assert_finds("Account GB82 WEST 1234 5698 7654 32 FOR invoices.", PiiKind::Iban, "GB82 WEST 1234 5698 7654 32");
    assert_clean("Wire it to DE89 3704 0044 0532 0130 01 by Friday.");
    // Found by the `scrub` fuzz target: groups of another IBAN before it hid it.
    assert_finds(
        "IBAN DE89 3704 0044 0532 0130 DE89 3704 0044 0532 0130 00 by Friday.",
        PiiKind::Iban,
        "DE89 3704 0044 0532 0130 00",
    );
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
fn numbers_grouped_by_unicode_spaces_are_found() {
    // No-break (2 bytes), thin and narrow no-break (3 bytes) spaces, as word processors and the
    // French, Swiss and other locales put between a number's groups.
    for (text, kind, secret) in [
        ("card 4111\u{a0}1111\u{a0}1111\u{a0}1111 ok", PiiKind::CardNumber, "4111\u{a0}1111\u{a0}1111\u{a0}1111"),
        (
            "card 4111\u{2009}1111\u{2009}1111\u{2009}1111 ok",
            PiiKind::CardNumber,
            "4111\u{2009}1111\u{2009}1111\u{2009}1111",
        ),
        (
            "IBAN FR76\u{202f}3000\u{202f}6000\u{202f}0112\u{202f}3456\u{202f}7890\u{202f}189 merci",
            PiiKind::Iban,
            "FR76\u{202f}3000\u{202f}6000\u{202f}0112\u{202f}3456\u{202f}7890\u{202f}189",
        ),
        (
            "iban de89\u{a0}3704\u{a0}0044\u{a0}0532\u{a0}0130\u{a0}00 thanks",
            PiiKind::Iban,
            "de89\u{a0}3704\u{a0}0044\u{a0}0532\u{a0}0130\u{a0}00",
        ),
        ("call +44\u{a0}20\u{a0}7946\u{a0}0958 today", PiiKind::Phone, "+44\u{a0}20\u{a0}7946\u{a0}0958"),
        (
            "appelez le 06\u{202f}12\u{202f}34\u{202f}56\u{202f}78 demain",
            PiiKind::Phone,
            "06\u{202f}12\u{202f}34\u{202f}56\u{202f}78",
        ),
        ("ring 020\u{a0}7946\u{a0}0958 now", PiiKind::Phone, "020\u{a0}7946\u{a0}0958"),
    ] {
        assert_finds(text, kind, secret);
    }
    // A no-break space between a number and its unit, or in a large amount, is no secret.
    assert_clean(
        "total 1\u{202f}234\u{202f}567,89\u{a0}EUR for 1532\u{a0}tokens at 12:30\u{a0}UTC, ratio 3\u{2009}/\u{2009}4",
    );
}
