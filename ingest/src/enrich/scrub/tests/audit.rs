//! Forms of PII that an audit found left in place, each checked through the
//! public entry points ([`Scrubber::scrub`], [`Scrubber::scrub_json`]), with
//! the look-alikes that must stay.

use serde_json::Value;

use super::super::*;
use super::{assert_clean, assert_finds, assert_nothing_kept, assert_scrubbed_as};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// `json` scrubbed, checked to be JSON still and to scrub to itself again.
fn scrub_json_checked(json: &str) -> Result<String, String> {
    let scrubber = Scrubber::new();
    let scrubbed = scrubber.scrub_json(json).into_owned();
    serde_json::from_str::<Value>(&scrubbed).map_err(|e| format!("{e} in {scrubbed}"))?;
    if matches!(scrubber.scrub_json(&scrubbed), Cow::Owned(_)) {
        return Err(format!("not idempotent on {scrubbed}"));
    }
    Ok(scrubbed)
}

#[test]
fn ipv6_addresses_right_after_a_label_and_its_colon_are_masked() {
    let scrubber = Scrubber::new();
    for (text, expected) in [
        ("ip:2001:db8::1", "ip:[IP_ADDRESS]"),
        ("peer:fe80::1ff:fe23:4567:890a", "peer:[IP_ADDRESS]"),
        // The label ends in a letter that is a hex digit, or in a digit.
        ("id:fe80::1", "id:[IP_ADDRESS]"),
        ("ipv6:2001:db8::1 up", "ipv6:[IP_ADDRESS] up"),
        ("source:2001:db8:85a3::8a2e:370:7334, ok", "source:[IP_ADDRESS], ok"),
        (r#"{"ip":"2001:db8::1"}"#, r#"{"ip":"[IP_ADDRESS]"}"#),
        // Forms that worked before still do.
        ("addr 2001:db8::1", "addr [IP_ADDRESS]"),
        // The loopback address names no one and stays, as it did.
        ("lo ::1 and fe80::1%eth0", "lo ::1 and [IP_ADDRESS]%eth0"),
        ("mapped ::ffff:192.0.2.128 seen", "mapped [IP_ADDRESS] seen"),
    ] {
        assert_eq!(scrubber.scrub(text), expected, "in {text}");
    }
    assert_clean("at:12:30:45, mac:00:1a:2b:3c:4d:5e, path:std::fmt::Display, ratio:16:9");
}

#[test]
fn api_keys_known_by_their_prefix_alone() {
    for key in [
        "gsk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdEFGH",
        "xai-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdEFGH",
        "ASIAIOSFODNN7EXAMPLE",
        "glpat-AbCdEf0123456789_-xY",
        "glpat-AbCdEf0123456789xYzW-",
        "pplx-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdEFGH",
        "r8_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        // The thirty-second session's audit: SendGrid keys and Google OAuth access tokens.
        "SG.AbCdEfGhIjKlMnOpQrStUv.wXyZ0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456",
        "ya29.a0AfB_byC-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    ] {
        assert_finds(&format!("I pasted {key} here"), PiiKind::ApiKey, key);
        assert_finds(&format!(r#"{{"key":"{key}"}}"#), PiiKind::ApiKey, key);
    }
    assert_clean(
        "Asia and ASIA are regions, ASIAN too; gsk_ and xai-grok are names; glpat- alone is a prefix; \
         npm_config_cache and r8_ stay; pplx-api is a package; the ASIAPACIFIC region; npm_token_here; \
         SG.1 and SG.x.y are too short; ya29 alone is a number.",
    );
}

#[test]
fn url_encoded_at_signs_are_read_as_at_signs() {
    let scrubber = Scrubber::new();
    for (text, expected) in [
        ("email=jane%40example.com", "email=[EMAIL]"),
        ("mailto:jane%40example.com", "mailto:[EMAIL]"),
        ("GET /users?to=jane.doe%2Bbilling%40example.co.uk&x=1", "GET /users?to=[EMAIL]&x=1"),
        ("upper case escape JANE%40EXAMPLE.COM.", "upper case escape [EMAIL]."),
    ] {
        assert_eq!(scrubber.scrub(text), expected, "in {text}");
    }
    assert_clean("discount 50%40 off, progress 100%40example and 25%40.5 done");
}

#[test]
fn ipv4_ranges_written_with_a_dash_are_masked_at_both_ends() {
    let scrubber = Scrubber::new();
    for (text, expected) in [
        ("allowed 192.168.1.10-192.168.1.20", "allowed [IP_ADDRESS]-[IP_ADDRESS]"),
        ("range 10.0.0.1-10.0.0.254, then", "range [IP_ADDRESS]-[IP_ADDRESS], then"),
    ] {
        assert_eq!(scrubber.scrub(text), expected, "in {text}");
    }
    // A dash to anything that is not a whole address still joins.
    assert_clean("build 1.2.3.4-5 and 1.2.3.4-rc1 and 10.0.0.1-1.2.3.4.5, image v1-1.2.3.4");
}

#[test]
fn every_number_listed_under_a_phone_or_ssn_key_is_masked() -> TestResult {
    for (json, kind, key) in [
        (r#"{"tel":[4155552671, 4155552672]}"#, PiiKind::Phone, "tel"),
        (r#"{"phones": ["4155552671", "4155552672", 4155552673]}"#, PiiKind::Phone, "phones"),
        (r#"{"ssn":[123456789,"078 05 1120"]}"#, PiiKind::NationalId, "ssn"),
        (r#"{"ssn":["123-45-6789", "078 05 1120", 219099999]}"#, PiiKind::NationalId, "ssn"),
        // A backslash elsewhere: the decoded walk, then the plain pass.
        (r#"{"note":"a\nb","mobile":[ 4155552671 ,4155552672 ]}"#, PiiKind::Phone, "mobile"),
    ] {
        let scrubbed = scrub_json_checked(json)?;
        let value: Value = serde_json::from_str(&scrubbed)?;
        let items = value[key].as_array().ok_or_else(|| format!("no list in {scrubbed}"))?;
        assert!(items.len() >= 2, "{scrubbed}");
        for item in items {
            assert_eq!(item, kind.placeholder(), "{scrubbed}");
        }
    }
    // In JSON held in a string, too.
    let held = serde_json::json!({"arguments": r#"{"tel":[4155552671,4155552672]}"#}).to_string();
    let scrubbed = scrub_json_checked(&held)?;
    let value: Value = serde_json::from_str(&scrubbed)?;
    let arguments: Value = serde_json::from_str(value["arguments"].as_str().unwrap_or_default())?;
    assert_eq!(arguments["tel"], serde_json::json!(["[PHONE]", "[PHONE]"]), "{scrubbed}");
    // What is not a phone number in the list stays.
    let scrubbed = scrub_json_checked(r#"{"tel":[4155552671, 42, 1718000000, "x"], "ids":[5551234567]}"#)?;
    assert_eq!(scrubbed, r#"{"tel":["[PHONE]", 42, 1718000000, "x"], "ids":[5551234567]}"#);
    Ok(())
}

#[test]
fn phone_numbers_written_as_json_floats_are_masked() -> TestResult {
    for json in
        [r#"{"tel": 4155552671.0}"#, r#"{"phone":4155552671e0}"#, r#"{"phone":4155552671.00E+0, "note": "a\nb"}"#]
    {
        let scrubbed = scrub_json_checked(json)?;
        let value: Value = serde_json::from_str(&scrubbed)?;
        let phone = value.get("tel").or_else(|| value.get("phone"));
        assert_eq!(phone, Some(&Value::from("[PHONE]")), "{scrubbed}");
    }
    assert_clean(r#"{"tel": 4155552671.5, "call": 5551234567.25}"#);
    Ok(())
}

#[test]
fn an_apostrophe_inside_the_local_part_is_part_of_the_address() {
    let scrubber = Scrubber::new();
    for (text, expected) in [
        ("mail o'brien@example.com now", "mail [EMAIL] now"),
        ("'jane@example.com' and 'o'brien@example.com'", "'[EMAIL]' and '[EMAIL]'"),
        (r#"{"to":"d'arcy.o'neil@example.ie"}"#, r#"{"to":"[EMAIL]"}"#),
        ("['a@example.com','b@example.com']", "['[EMAIL]','[EMAIL]']"),
    ] {
        assert_eq!(scrubber.scrub(text), expected, "in {text}");
    }
}

#[test]
fn card_numbers_grouped_with_dots_or_double_spaces() {
    for card in ["4111.1111.1111.1111", "4111  1111  1111  1111", "3782.822463.10005"] {
        assert_finds(&format!("Charge card {card} for the renewal."), PiiKind::CardNumber, card);
    }
    // Luhn still decides, dots must group as cards are printed, and a version or a decimal is no card.
    assert_clean(
        "card 4111.1111.1111.1112, build 4111.1111.1111.1111.7, pi 3.14159265358979, mixed 4111.1111 1111-1111",
    );
}

#[test]
fn ibans_with_dashes_or_in_lower_case() {
    for iban in [
        "DE89-3704-0044-0532-0130-00",
        "de89 3704 0044 0532 0130 00",
        "gb82 west 1234 5698 7654 32",
        "gb82-west-1234-5698-7654-32",
    ] {
        assert_finds(&format!("Wire it to {iban} by Friday."), PiiKind::Iban, iban);
    }
    // Lower case alone, hex ids and prose keep their shape.
    assert_clean("span fd09e37c7f9c1321 failed; de89370400440532013000 is an id; xx12 then turn left at the next gate");
    assert_clean("hexdump de12 3456 789a bcde f012 3456 and ab12 cafe babe dead beef 0042");
}

#[test]
fn lower_case_ni_numbers() {
    assert_finds("my ni is ab123456c thanks", PiiKind::NationalId, "ab123456c");
    assert_finds("ni: ab 12 34 56 c.", PiiKind::NationalId, "ab 12 34 56 c");
    assert_clean("ni gb123456c is never issued; mixed Ab123456c is not a NINO");
}

#[test]
fn an_authorization_token_header_is_masked_like_a_bearer_token() {
    for (text, secret) in [
        ("Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"),
        (r#"-H "authorization: token ghs_placeholder-12345678""#, "ghs_placeholder-12345678"),
        (r#"{"Authorization":"Token abc123def456ghi"}"#, "abc123def456ghi"),
    ] {
        assert_finds(text, PiiKind::BearerToken, secret);
    }
    assert_clean("cost per token 0.000002 USD, token gpt-4o-mini, 1532 tokens; auth token limit-exceeded");
}

#[test]
fn ipv6_addresses_after_a_label_of_hex_letters_are_masked_whole() {
    let scrubber = Scrubber::new();
    // The label reads as a first group, and a match holds eight at most: the
    // address's last groups were left after the mask.
    for (text, expected) in [
        ("peer db:2001:db8:85a3:0:0:8a2e:370:7334 up", "peer [IP_ADDRESS] up"),
        ("cafe:2001:db8:1:2:3:4:5:6", "[IP_ADDRESS]"),
        ("from dead:beef:2001:db8:85a3::8a2e:370:7334, then", "from [IP_ADDRESS], then"),
        (r#"{"peer":"db:2001:db8:85a3:0:0:8a2e:370:7334"}"#, r#"{"peer":"[IP_ADDRESS]"}"#),
        // A label and an address that parse together are masked together, as before.
        ("db:2001:db8:85a3::8a2e:370:7334 up", "[IP_ADDRESS] up"),
        ("cafe:2001:db8::1", "[IP_ADDRESS]"),
        // A label that cannot be a group stays.
        ("dbx:2001:db8:85a3:0:0:8a2e:370:7334", "dbx:[IP_ADDRESS]"),
    ] {
        assert_eq!(scrubber.scrub(text), expected, "in {text}");
    }
    assert_clean("db:12:30:45, cafe:00:1a:2b:3c:4d:5e, beef:std::fmt::Display");
}

/// As for phones: a list under an SSN key is read item by item, whatever its first item is.
#[test]
fn every_item_listed_under_an_ssn_key_is_checked_whatever_comes_first() -> TestResult {
    for json in [
        r#"{"ssn": ["n/a", "078-05-1120"]}"#,
        r#"{"ssn": [null, 212345678, "unknown", "078 05 1120"]}"#,
        r#"{"social_security": ["pending", 219099999]}"#,
    ] {
        let scrubbed = scrub_json_checked(json)?;
        assert_nothing_kept(&scrubbed, &["078-05-1120", "078 05 1120", "212345678", "219099999"]);
        assert!(scrubbed.contains(PiiKind::NationalId.placeholder()), "{scrubbed}");
        for kept in ["n/a", "unknown", "pending"] {
            assert_eq!(json.contains(kept), scrubbed.contains(kept), "{kept} in {scrubbed}");
        }
    }
    // Unissued numbers and lists under other keys stay.
    assert_clean(r#"{"ssn": ["n/a", "000-12-3456"]}"#);
    assert_clean(r#"{"order_ids": ["n/a", 219099999]}"#);
    Ok(())
}

#[test]
fn every_item_listed_under_a_phone_key_is_checked_whatever_comes_first() -> TestResult {
    for (json, key, kept) in [
        (r#"{"phones": ["n/a", "4155552671"]}"#, "phones", &["n/a"][..]),
        (r#"{"phones": ["n/a", "+1 415 555 2671"]}"#, "phones", &["n/a"]),
        (r#"{"tel": [null, 4155552671, "unknown", "4155552672"]}"#, "tel", &["unknown"]),
        // A comma or a bracket inside a string item ends no item.
        (r#"{"mobile": ["home, work", "4155552671"]}"#, "mobile", &["home, work"]),
        (r#"{"mobile": ["ext ]", 4155552671]}"#, "mobile", &["ext ]"]),
        (r#"{"phones": ["[PHONE]", 4155552671]}"#, "phones", &[]),
        // A backslash elsewhere: the decoded walk, then the plain pass.
        (r#"{"note":"a\nb","phones":["n/a",4155552671]}"#, "phones", &["n/a"]),
    ] {
        let scrubbed = scrub_json_checked(json)?;
        assert_nothing_kept(&scrubbed, &["4155552671", "4155552672", "415 555"]);
        let value: Value = serde_json::from_str(&scrubbed)?;
        let items = value[key].as_array().ok_or_else(|| format!("no list in {scrubbed}"))?;
        let masked = items.iter().filter(|item| *item == PiiKind::Phone.placeholder()).count();
        assert!(masked >= 1, "{scrubbed}");
        for kept in kept {
            assert!(items.iter().any(|item| item == kept), "{kept} lost in {scrubbed}");
        }
    }
    // In JSON held in a string, too, and cut short.
    let held = serde_json::json!({"arguments": r#"{"phones":["n/a",4155552671]}"#}).to_string();
    let scrubbed = scrub_json_checked(&held)?;
    let value: Value = serde_json::from_str(&scrubbed)?;
    let arguments: Value = serde_json::from_str(value["arguments"].as_str().unwrap_or_default())?;
    assert_eq!(arguments["phones"], serde_json::json!(["n/a", "[PHONE]"]), "{scrubbed}");
    let cut = Scrubber::new().scrub_json(r#"{"user": {"tel": ["n/a", 4155552671"#).into_owned();
    assert_eq!(cut, r#"{"user": {"tel": ["n/a", "[PHONE]""#);
    // What is not a phone number stays, and so does a list under another key.
    for json in [r#"{"tel":["n/a", 42, 1718000000, "x"]}"#, r#"{"ids":["n/a", 4155552671]}"#, "call [n/a] 4155"] {
        assert_clean(json);
    }
    Ok(())
}

#[test]
fn phone_numbers_written_in_scientific_notation_are_masked() -> TestResult {
    for json in [
        r#"{"phone": 4.155552671e9}"#,
        r#"{"phone":4.155552671E+9,"note":"a\nb"}"#,
        r#"{"phone": 4.4207946095e10}"#,
        r#"{"phone": [4.155552671e9, "n/a"]}"#,
    ] {
        let scrubbed = scrub_json_checked(json)?;
        assert_nothing_kept(&scrubbed, &["4.155", "4.4207", "552671", "946095"]);
        let value: Value = serde_json::from_str(&scrubbed)?;
        let phone = match &value["phone"] {
            Value::Array(items) => items.first().cloned().unwrap_or_default(),
            phone => phone.clone(),
        };
        assert_eq!(phone, PiiKind::Phone.placeholder(), "{scrubbed}");
    }
    // Epoch seconds, a fraction left after the exponent, and too few digits stay.
    assert_clean(r#"{"phone": 1.718e9, "tel": 4.1555526715e9, "mobile": 4.15e3}"#);
    Ok(())
}

/// Keys named by their header or connection-string field: Azure API Management's subscription
/// key, a storage account's key, a SAS token.
#[test]
fn azure_keys_named_by_their_field() {
    assert_scrubbed_as(&[
        ("Ocp-Apim-Subscription-Key: 0123456789abcdef0123456789abcdef", "Ocp-Apim-Subscription-Key: [API_KEY]"),
        (
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4==;EndpointSuffix=core.windows.net",
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=[API_KEY];EndpointSuffix=core.windows.net",
        ),
    ]);
}
