//! The `llm_events` JSON schema.

use driftwatch_lake::model::CallStatus;

use super::{T0, decode};
use crate::decode::{Decoded, PayloadFormat};

fn json(text: &str) -> Decoded {
    decode(text.as_bytes(), PayloadFormat::Auto)
}

fn reject(text: &str) -> (&'static str, String) {
    let out = json(text);
    assert_eq!(out.rejects.len(), 1, "{text}");
    (out.rejects[0].reason, out.rejects[0].detail.clone())
}

#[test]
fn full_inference_event() {
    let out = json(
        r#"{"type":"inference","id":"evt-1","time":"2025-06-01T12:00:00Z","app":"bot","environment":"prod",
        "provider":"Az.AI.Inference","request_model":"gpt-4o","prompt_id":"p","prompt_version":"2",
        "input_tokens":10,"output_tokens":20.0,"cache_read_tokens":1,"cache_write_tokens":3,"reasoning_tokens":2,"reported_cost_usd":0.01,
        "latency_ms":1500,"ttft_ms":200.5,"status":"error","error_type":"timeout","finish_reason":"length","service_tier":" Flex",
        "response_id":"r1","trace_id":"0AF7651916CD43DD8448EB211C80319C","span_id":"B7AD6B7169203331","input":"hi","output":"yo","golden_case":"g1",
        "unknown_key":{"nested":[1,2]},"another":null}"#,
    );
    assert_eq!(out.rejects, vec![]);
    let e = &out.events[0];
    assert_eq!((e.event_id.as_str(), e.app.as_str(), e.time, e.start_time), ("evt-1", "bot", T0, T0 - 1_500_000_000));
    assert_eq!((e.provider.as_deref(), e.operation.as_str()), (Some("azure.ai.inference"), "chat"));
    assert_eq!((e.request_model.as_deref(), e.response_model.as_deref()), (Some("gpt-4o"), Some("gpt-4o")));
    assert_eq!(
        (e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens, e.reasoning_tokens),
        (Some(10), Some(20), Some(1), Some(3), Some(2))
    );
    assert_eq!((e.status, e.error_type.as_deref(), e.ttft_ms), (CallStatus::Error, Some("timeout"), Some(200.5)));
    assert_eq!(
        (e.trace_id.as_deref(), e.input_content.as_deref(), e.golden_case.as_deref()),
        (Some("0af7651916cd43dd8448eb211c80319c"), Some("hi"), Some("g1"))
    );
    assert_eq!(e.service_tier.as_deref(), Some("flex"), "trimmed and lower-cased");
}

#[test]
fn values_with_escapes_and_any_case_decode_like_plain_ones() {
    // `type`, `time`, `status`, `provider` and `operation` are borrowed from the input unless
    // they hold an escape; both paths must give the same event.
    let out = json(
        r#"{"type":"infer\u0065nce","id":"e","time":"2025-06-01T12:00:00\u005a","app":"a",
        "status":"\u004fK","provider":"Az.AI.Inf\u0065rence","operation":"text_complet\u0069on"}"#,
    );
    assert_eq!(out.rejects, vec![]);
    let e = &out.events[0];
    assert_eq!((e.time, e.status), (T0, CallStatus::Ok));
    assert_eq!((e.provider.as_deref(), e.operation.as_str()), (Some("azure.ai.inference"), "text_completion"));
    for (status, expected) in [("Error", CallStatus::Error), ("UNSET", CallStatus::Unset), ("", CallStatus::Unset)] {
        let out = json(&format!(r#"{{"id":"e","time_unix_nano":{T0},"app":"a","status":"{status}"}}"#));
        assert_eq!(out.events[0].status, expected, "{status:?}");
    }
    let typed = json(&format!(r#"{{"id":"e","time_unix_nano":{T0},"app":"a","error_type":"timeout"}}"#));
    assert_eq!(typed.events[0].status, CallStatus::Error, "an error type without a status is an error");
    let (reason, detail) = reject(r#"{"id":"e","time_unix_nano":1,"app":"a","status":"MEH"}"#);
    assert_eq!((reason, detail.contains(r#"found "meh""#)), ("invalid_field", true), "{detail}");
    let (reason, detail) = reject(r#"{"id":"e","time":1748779200,"app":"a"}"#);
    assert_eq!(
        (reason, detail.contains("time") && detail.contains("expected a string")),
        ("invalid_field", true),
        "{detail}"
    );
}

#[test]
fn minimal_event_with_nanosecond_time() {
    let out = json(&format!(r#"{{"id":"e","time_unix_nano":{T0},"app":"a"}}"#));
    let e = &out.events[0];
    assert_eq!((e.time, e.start_time, e.operation.as_str(), e.status), (T0, T0, "chat", CallStatus::Unset));
}

/// An event that sends both times is one call at one instant: a producer whose two clocks or
/// time zones disagree is told so instead of having one of them picked silently. The RFC 3339
/// text may be coarser than the nanoseconds, so only a whole second apart is a disagreement,
/// and the nanoseconds, the finer of the two, are kept.
#[test]
fn both_times_must_agree_and_the_finer_is_kept() {
    // T0 is 2025-06-01T12:00:00Z.
    let agree = json(&format!(
        r#"{{"id":"e","time":"2025-06-01T12:00:00.4Z","time_unix_nano":{},"app":"a"}}"#,
        T0 + 123_456_789
    ));
    assert_eq!(agree.events[0].time, T0 + 123_456_789);
    let (reason, detail) = reject(&format!(
        r#"{{"id":"e","time":"2025-06-01T14:00:00+02:00","time_unix_nano":{},"app":"a"}}"#,
        T0 + 2 * 3_600_000_000_000
    ));
    assert_eq!(reason, "invalid_field", "{detail}");
    assert!(
        detail.contains("time_unix_nano")
            && detail.contains("2025-06-01T14:00:00Z")
            && detail.contains("2025-06-01T12:00:00Z"),
        "the detail names both instants: {detail}"
    );
}

#[test]
fn feedback_event() {
    let out = json(
        r#"{"type":"feedback","id":"f1","time":"2025-06-01T12:00:00+02:00","app":"bot","name":"user_thumbs",
        "label":"down","score":-1,"inference_id":"evt-1","response_id":"r1"}"#,
    );
    assert_eq!(out.rejects, vec![]);
    let f = &out.feedback[0];
    assert_eq!((f.feedback_id.as_str(), f.time, f.name.as_str()), ("f1", T0 - 7_200_000_000_000, "user_thumbs"));
    assert_eq!((f.score_value, f.inference_id.as_deref()), (Some(-1.0), Some("evt-1")));
    assert!(f.is_flagged());
}

/// Feedback that names its call only by span gets the inference id an OTLP evaluation record
/// on that span gets (trace id then span id); an explicit `inference_id` is kept.
#[test]
fn feedback_named_by_span_ids_gets_the_spans_inference_id() {
    let by_span = json(
        r#"{"type":"feedback","id":"f1","time":"2025-06-01T12:00:00Z","app":"bot","name":"hallucination",
        "trace_id":"0AF7651916CD43DD8448EB211C80319C","span_id":"b7ad6b7169203331"}"#,
    );
    assert_eq!(by_span.rejects, vec![]);
    let f = &by_span.feedback[0];
    assert_eq!(f.inference_id.as_deref(), Some("0af7651916cd43dd8448eb211c80319cb7ad6b7169203331"));
    assert_eq!(f.trace_id.as_deref(), Some("0af7651916cd43dd8448eb211c80319c"));

    let named = json(
        r#"{"type":"feedback","id":"f1","time":"2025-06-01T12:00:00Z","app":"bot","name":"hallucination",
        "inference_id":"7","trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331"}"#,
    );
    assert_eq!(named.feedback[0].inference_id.as_deref(), Some("7"));
    let trace_only = json(
        r#"{"type":"feedback","id":"f1","time":"2025-06-01T12:00:00Z","app":"bot","name":"hallucination",
        "trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":""}"#,
    );
    assert_eq!(trace_only.feedback[0].inference_id, None);
}

/// Trace context ids of another shape would join into some other call's id (the join glues the
/// two without a separator) or never match a span, so the event is refused, naming the field;
/// all zeros is W3C's "no id", as on OTLP spans.
#[test]
fn trace_context_ids_must_be_w3c_hex_ids() {
    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const SPAN: &str = "b7ad6b7169203331";
    for (kind, extra) in [("inference", ""), ("feedback", r#","name":"hallucination""#)] {
        for (trace, span, field) in [
            ("0af7651916cd43dd8448eb211c8031", SPAN, "trace_id"),
            (TRACE, "b7ad6b716920333", "span_id"),
            (TRACE, "b7ad6b71692033310", "span_id"),
            ("0af7651916cd43dd-8448eb211c80319", SPAN, "trace_id"),
            (TRACE, "b7ad6b716920333g", "span_id"),
        ] {
            let (reason, detail) = reject(&format!(
                r#"{{"type":"{kind}","id":"e","time_unix_nano":{T0},"app":"a","trace_id":"{trace}","span_id":"{span}"{extra}}}"#
            ));
            assert_eq!(reason, "invalid_field", "{kind} {trace} {span}");
            assert!(detail.contains(field) && detail.contains("hex digits"), "{kind}: {detail}");
        }
        let zeros = json(&format!(
            r#"{{"type":"{kind}","id":"e","time_unix_nano":{T0},"app":"a","trace_id":"{}","span_id":"{}"{extra}}}"#,
            "0".repeat(32),
            "0".repeat(16)
        ));
        assert_eq!(zeros.rejects, vec![], "{kind}");
        let ids: Vec<_> = zeros
            .events
            .iter()
            .map(|e| (e.trace_id.clone(), e.span_id.clone()))
            .chain(zeros.feedback.iter().map(|f| (f.trace_id.clone(), f.span_id.clone())))
            .collect();
        assert_eq!(ids, vec![(None, None)], "{kind}");
    }
    let feedback = json(&format!(
        r#"{{"type":"feedback","id":"f","time_unix_nano":{T0},"app":"a","name":"n","trace_id":"{}","span_id":"{SPAN}"}}"#,
        "0".repeat(32)
    ));
    assert_eq!(feedback.feedback[0].inference_id, None, "a zero trace id names no call");
}

#[test]
fn json_rejects_name_the_field() {
    let (reason, detail) = reject(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":"a","input_tokens":"abc"}"#);
    assert_eq!(reason, "invalid_field");
    assert!(detail.contains("input_tokens"), "{detail}");
    let (reason, detail) = reject(r#"{"id":"e","time":"yesterday","app":"a"}"#);
    assert_eq!((reason, detail.contains("time")), ("invalid_field", true));
    let (reason, detail) = reject(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":"a","status":"meh"}"#);
    assert_eq!((reason, detail.contains("status")), ("invalid_field", true));
    let (reason, detail) = reject(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":7}"#);
    assert_eq!((reason, detail.contains("app")), ("invalid_field", true));
    let (reason, detail) = reject(r#"{"time":"2025-06-01T12:00:00Z","app":"a"}"#);
    assert_eq!((reason, detail.contains("id")), ("missing_field", true));
    let (reason, _) = reject(r#"{"id":"e","app":"a"}"#);
    assert_eq!(reason, "missing_field");
    let (reason, _) = reject(r#"{"type":"feedback","id":"f","time":"2025-06-01T12:00:00Z","app":"a"}"#);
    assert_eq!(reason, "missing_field");
    let (reason, _) = reject(r#"{"type":"metric","id":"e","time":"2025-06-01T12:00:00Z","app":"a"}"#);
    assert_eq!(reason, "unknown_event_type");
    let (reason, _) = reject(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":"a","output_tokens":-3}"#);
    assert_eq!(reason, "negative_tokens");
    let (reason, _) = reject(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":"a","latency_ms":-3}"#);
    assert_eq!(reason, "negative_latency");
    let (reason, _) = reject(r#"{"id":"e","time":"1970-01-01T00:00:00Z","app":"a"}"#);
    assert_eq!(reason, "timestamp_out_of_range");
    let (reason, detail) = reject(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":"  "}"#);
    assert_eq!((reason, detail.contains("app")), ("missing_field", true));
    let (reason, detail) = reject(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":"a","latency_ms":1e20}"#);
    assert_eq!((reason, detail.contains("latency_ms")), ("implausible_latency", true));
    let (reason, detail) = reject(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":"a","ttft_ms":9e7}"#);
    assert_eq!((reason, detail.contains("ttft_ms")), ("implausible_latency", true));
    // A first token after the call's end is a timing bug: the call is kept without it, counted.
    let out = json(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":"a","latency_ms":100,"ttft_ms":250}"#);
    assert_eq!((out.events[0].ttft_ms, out.events[0].latency_ms, out.dropped_ttfts), (None, Some(100.0), 1));
    let out = json(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":"a","latency_ms":100,"ttft_ms":101}"#);
    assert_eq!((out.events[0].ttft_ms, out.dropped_ttfts), (Some(101.0), 0), "within the rounding");
    // An app id too long for a lake path segment, counting its escapes; one just short is kept.
    for (app, rejected) in [("a".repeat(201), true), ("/".repeat(67), true), ("/".repeat(66), false)] {
        let line = format!(r#"{{"id":"e","time":"2025-06-01T12:00:00Z","app":"{app}"}}"#);
        let out = decode(line.as_bytes(), PayloadFormat::JsonEvents);
        assert_eq!(out.rejects.len(), usize::from(rejected), "{app}");
        if rejected {
            assert_eq!(out.rejects[0].reason, "invalid_field");
            assert!(out.rejects[0].detail.contains("app"), "{}", out.rejects[0].detail);
        }
    }
    let (reason, _) = reject(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":"a"} trailing"#);
    assert_eq!(reason, "malformed_json");
}

/// The producer's own cost figure is kept only to reconcile with driftwatch's price: one that is
/// no usable amount leaves the call without it, counted, instead of losing the call.
#[test]
fn an_unusable_reported_cost_is_dropped_and_counted_not_rejected() {
    for cost in ["-0.5", "-0.0004", r#""n/a""#, r#""0.25""#, "true", r#"{"usd":0.25}"#, "[0.25]"] {
        let out = json(&format!(
            r#"{{"id":"e","time":"2025-06-01T12:00:00Z","app":"a","input_tokens":120,"output_tokens":30,"reported_cost_usd":{cost},"latency_ms":800}}"#
        ));
        assert_eq!(out.rejects, vec![], "{cost}");
        assert_eq!(out.events.len(), 1, "{cost}");
        let e = &out.events[0];
        assert_eq!((e.input_tokens, e.output_tokens, e.reported_cost_usd), (Some(120), Some(30), None), "{cost}");
        assert_eq!(e.latency_ms, Some(800.0), "keys after the cost are still read: {cost}");
        assert_eq!(out.dropped_reported_costs, 1, "{cost}");
    }
    for (cost, kept) in [("null", None), ("0", Some(0.0)), ("0.0125", Some(0.0125))] {
        let out = json(&format!(r#"{{"id":"e","time":"2025-06-01T12:00:00Z","app":"a","reported_cost_usd":{cost}}}"#));
        assert_eq!(out.rejects, vec![], "{cost}");
        assert_eq!((out.events[0].reported_cost_usd, out.dropped_reported_costs), (kept, 0), "{cost}");
    }
    // An event rejected for another reason counts only as that reject.
    let out = json(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":"a","output_tokens":-1,"reported_cost_usd":-1}"#);
    assert_eq!((out.rejects.len(), out.dropped_reported_costs), (1, 0));
}

/// A time rejects says which times are accepted, as times: the configured earliest and now plus
/// the allowed skew, whether or not the time fits in 64-bit nanoseconds.
#[test]
fn time_rejects_state_the_bounds_in_force() {
    for (time, shown) in [
        ("3000-01-01T00:00:00Z", "3000-01-01T00:00:00Z"),
        ("2262-04-12T00:00:00Z", "2262-04-12T00:00:00Z"),
        ("1970-01-01T00:00:01Z", "1970-01-01T00:00:01Z"),
        ("2025-06-03T00:00:00+02:00", "2025-06-02T22:00:00Z"),
    ] {
        let (reason, detail) = reject(&format!(r#"{{"id":"e","time":"{time}","app":"a"}}"#));
        assert_eq!(reason, "timestamp_out_of_range", "{time}");
        assert!(detail.contains(shown), "{time}: {detail}");
        assert!(detail.contains("[2000-01-01T00:00:00Z, 2025-06-02T13:00:00Z]"), "{time}: {detail}");
        assert!(!detail.contains("9223372036854775807"), "{time}: {detail}");
    }
    let (reason, detail) = reject(r#"{"type":"feedback","id":"f","time":"3000-01-01T00:00:00Z","app":"a","name":"n"}"#);
    assert_eq!(reason, "timestamp_out_of_range");
    assert!(detail.contains("[2000-01-01T00:00:00Z, 2025-06-02T13:00:00Z]"), "{detail}");
}

/// A JSON event has no start and end times: its negative latency is named as the producer sent it.
#[test]
fn a_negative_latency_names_latency_ms() {
    let (reason, detail) = reject(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":"a","latency_ms":-5}"#);
    assert_eq!(reason, "negative_latency");
    assert!(detail.contains("`latency_ms` is negative (-5)"), "{detail}");
    assert!(!detail.contains("start_time") && !detail.contains("end_time"), "{detail}");
}

#[test]
fn ndjson_fixture_decodes_line_by_line() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/llm_events.ndjson");
    let text = std::fs::read(path).unwrap();
    let decoder = crate::decode::Decoder::default();
    let mut out = Decoded::default();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        decoder.decode(line, PayloadFormat::JsonEvents, super::NOW, &mut out);
    }
    assert_eq!((out.events.len(), out.feedback.len()), (3, 2));
    assert_eq!(out.rejects.iter().map(|r| r.reason).collect::<Vec<_>>(), ["invalid_field"]);
    let tokens: i64 = out.events.iter().filter_map(|e| e.input_tokens).sum();
    assert_eq!(tokens, 784);
    assert_eq!(out.events[2].provider.as_deref(), Some("azure.ai.inference"));
    assert_eq!(out.events[1].time - out.events[1].start_time, 30_000_000_000);
}

/// Producers whose structs default to `""` (Go, Java records) send it for every field left
/// unset: it means absent, so the call is priced by its request model and keeps the defaults,
/// and feedback naming its call by `""` ids falls back to the span ids. Content is exempt.
#[test]
fn empty_strings_are_absent_except_content() {
    let out = json(
        r#"{"type":"","id":"e","time":"","time_unix_nano":1748779200000000000,"app":"billing","environment":"",
        "provider":"","operation":"","request_model":"gpt-4o-mini","response_model":"","prompt_id":"",
        "status":"","error_type":"","finish_reason":"","service_tier":"","response_id":"","trace_id":"",
        "span_id":"","golden_case":"","input":"","output":""}"#,
    );
    assert_eq!(out.rejects, vec![]);
    let event = &out.events[0];
    assert_eq!((event.time, event.operation.as_str()), (T0, "chat"));
    assert_eq!(event.response_model.as_deref(), Some("gpt-4o-mini"), "defaults to the request model");
    assert_eq!((event.provider.as_deref(), event.environment.as_deref()), (None, None));
    assert_eq!((event.response_id.as_deref(), event.error_type.as_deref()), (None, None));
    assert_eq!(
        (event.status, event.service_tier.as_deref(), event.prompt_id.as_deref()),
        (CallStatus::Unset, None, None)
    );
    assert_eq!((event.input_content.as_deref(), event.output_content.as_deref()), (Some(""), Some("")));

    let feedback = json(
        r#"{"type":"feedback","id":"f","time":"2025-06-01T12:00:00Z","app":"bot","name":"hallucination",
        "inference_id":"","response_id":"","label":"","trace_id":"0af7651916cd43dd8448eb211c80319c",
        "span_id":"b7ad6b7169203331"}"#,
    );
    assert_eq!(feedback.rejects, vec![]);
    let f = &feedback.feedback[0];
    assert_eq!(f.inference_id.as_deref(), Some("0af7651916cd43dd8448eb211c80319cb7ad6b7169203331"));
    assert_eq!((f.response_id.as_deref(), f.score_label.as_deref()), (None, None));

    // An empty first value does not hide a later one; a present first value wins.
    let out = json(r#"{"id":"e","time":"2025-06-01T12:00:00Z","app":"","app":"second","app":"third"}"#);
    assert_eq!(out.events[0].app, "second");
}

/// A blank app is refused for feedback as for calls (its tally is keyed by it), and a too-long
/// id is named by the key the producer wrote, `id`.
#[test]
fn feedback_needs_an_app_and_rejects_name_the_json_key() {
    let (reason, detail) =
        reject(r#"{"type":"feedback","id":"f","time":"2025-06-01T12:00:00Z","app":"   ","name":"hallucination"}"#);
    assert_eq!((reason, detail.contains("app")), ("missing_field", true), "{detail}");
    for kind in ["inference", "feedback"] {
        let id = "x".repeat(300);
        let line = format!(r#"{{"type":"{kind}","id":"{id}","time":"2025-06-01T12:00:00Z","app":"a","name":"n"}}"#);
        let (reason, detail) = reject(&line);
        assert_eq!(reason, "invalid_field");
        assert!(detail.starts_with("invalid field `id`") || detail.contains("`id`"), "{detail}");
        assert!(!detail.contains("event_id") && !detail.contains("feedback_id"), "{detail}");
    }
}
