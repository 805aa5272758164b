//! Tests of the PII scrubber, by theme in `tests/`; the fixtures and assertions they share are here.

use super::*;

mod audit;
mod detectors;
mod escaped;
mod masking;
mod passwords;
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

/// Each text scrubs to its expected form.
fn assert_scrubbed_as(cases: &[(&str, &str)]) {
    let scrubber = Scrubber::new();
    for (text, expected) in cases {
        assert_eq!(scrubber.scrub(text), *expected, "in {text}");
    }
}

fn assert_clean(text: &str) {
    assert_eq!(found(text), vec![], "false positive in {text:?}");
    assert!(matches!(Scrubber::new().scrub(text), Cow::Borrowed(_)));
}

/// An OTLP/JSON log line whose message attribute is itself JSON, so the
/// newlines inside the message are escaped twice.
const NESTED_OTLP_LINE: &str = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"gen_ai.input.messages","value":{"stringValue":"[{\"role\":\"user\",\"content\":\"My card:\\n4111 1111 1111 1111\\nSSN:\\n078-05-1120\\nphone:\\n(555) 123-4567\"}]"}}]}]}]}]}"#;

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
