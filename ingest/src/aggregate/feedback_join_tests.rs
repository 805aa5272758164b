//! Unit tests of the feedback join: matching by span, JSON and response ids within and across apps,
//! which fields feedback takes from its inference, and the index bound.

use super::*;

fn inference(event_id: &str, response_id: Option<&str>, model: &str) -> InferenceEvent {
    InferenceEvent {
        event_id: event_id.to_owned(),
        response_id: response_id.map(str::to_owned),
        app: "where2eat".to_owned(),
        environment: Some("prod".to_owned()),
        provider: Some("openai".to_owned()),
        operation: "chat".to_owned(),
        response_model: Some(model.to_owned()),
        prompt_id: Some("pick".to_owned()),
        prompt_version: Some("7".to_owned()),
        ..InferenceEvent::default()
    }
}

fn bare_feedback(inference_id: Option<&str>, response_id: Option<&str>) -> FeedbackEvent {
    FeedbackEvent {
        feedback_id: "f1".to_owned(),
        app: "where2eat".to_owned(),
        name: "user_thumbs".to_owned(),
        inference_id: inference_id.map(str::to_owned),
        response_id: response_id.map(str::to_owned),
        ..FeedbackEvent::default()
    }
}

/// Two apps that number their calls alike: each app's feedback is completed from its own
/// inference, not from the other's that came later with the same id.
#[test]
fn inference_ids_are_matched_within_the_feedbacks_app() {
    let mut join = FeedbackJoin::new(100);
    join.remember(&inference("1", None, "gpt-4o"));
    let mut other = inference("1", None, "claude-sonnet");
    other.app = "ticket-summariser".to_owned();
    join.remember(&other);
    let mut feedback = bare_feedback(Some("1"), None);
    assert!(join.fill(&mut feedback).is_some());
    assert_eq!(feedback.response_model.as_deref(), Some("gpt-4o"));
}

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const SPAN: &str = "b7ad6b7169203331";

/// An inference read from a span: its event id is its trace id then its span id.
fn span_inference(app: &str, model: &str) -> InferenceEvent {
    let mut event = inference(&format!("{TRACE}{SPAN}"), None, model);
    event.app = app.to_owned();
    event.trace_id = Some(TRACE.to_owned());
    event.span_id = Some(SPAN.to_owned());
    event
}

/// Feedback naming its inference by span, as an OTLP evaluation record does, from `app`.
fn span_feedback(app: &str) -> FeedbackEvent {
    FeedbackEvent {
        app: app.to_owned(),
        trace_id: Some(TRACE.to_owned()),
        span_id: Some(SPAN.to_owned()),
        ..bare_feedback(Some(&format!("{TRACE}{SPAN}")), None)
    }
}

/// An LLM-as-judge evaluator is a service of its own: its verdict on a span is attributed to
/// the app whose call the span is, with that call's context.
#[test]
fn span_ids_match_feedback_from_any_app_and_it_takes_the_inferences_app() {
    let mut join = FeedbackJoin::new(8);
    join.remember(&span_inference("where2eat", "gpt-4o"));
    let mut feedback = span_feedback("eval-worker");
    assert!(join.fill(&mut feedback).is_some());
    assert_eq!(feedback.app, "where2eat");
    assert_eq!(feedback.response_model.as_deref(), Some("gpt-4o"));
    assert_eq!(feedback.prompt_version.as_deref(), Some("7"));
    assert_eq!(feedback.environment.as_deref(), Some("prod"));
    assert_eq!(join.len(), 1, "a span-derived inference takes one key");

    // The evaluator's own context describes the evaluator, not the call it rates.
    let mut from_staging = span_feedback("eval-worker");
    from_staging.environment = Some("eval-staging".to_owned());
    from_staging.response_model = Some("judge-model".to_owned());
    assert!(join.fill(&mut from_staging).is_some());
    assert_eq!(from_staging.environment.as_deref(), Some("prod"));
    assert_eq!(from_staging.response_model.as_deref(), Some("gpt-4o"));

    // Feedback from the app itself keeps what it says.
    let mut own = span_feedback("where2eat");
    own.environment = Some("canary".to_owned());
    assert!(join.fill(&mut own).is_some());
    assert_eq!(own.environment.as_deref(), Some("canary"));

    // A JSON feedback may name the span's call by its event id alone.
    let mut by_event_id = bare_feedback(Some(&format!("{TRACE}{SPAN}")), None);
    by_event_id.app = "eval-worker".to_owned();
    assert!(join.fill(&mut by_event_id).is_some());
    assert_eq!(by_event_id.app, "where2eat");
}

/// JSON ids stay within their app: only span ids are looked up across apps.
#[test]
fn json_ids_of_another_app_are_not_matched() {
    let mut join = FeedbackJoin::new(8);
    join.remember(&inference("1", None, "gpt-4o"));
    let mut feedback = bare_feedback(Some("1"), None);
    feedback.app = "ticket-summariser".to_owned();
    let before = feedback.clone();
    assert!(join.fill(&mut feedback).is_none());
    assert_eq!(feedback, before);
}

/// A JSON inference that also traces is found by its span ids as well as by its id, from any
/// app, however the feedback writes them.
#[test]
fn a_json_inference_with_span_ids_is_found_by_them() {
    let mut join = FeedbackJoin::new(8);
    let mut json = inference("7", None, "gpt-4o");
    json.trace_id = Some(TRACE.to_owned());
    json.span_id = Some(SPAN.to_owned());
    join.remember(&json);

    let mut by_id = bare_feedback(Some("7"), None);
    assert!(join.fill(&mut by_id).is_some(), "by its id within its app");
    let mut from_evaluator = span_feedback("eval-worker");
    assert!(join.fill(&mut from_evaluator).is_some(), "by span, as an OTLP evaluation record names it");
    assert_eq!((from_evaluator.app.as_str(), from_evaluator.response_model.as_deref()), ("where2eat", Some("gpt-4o")));
    let mut by_span_only = FeedbackEvent { inference_id: None, ..span_feedback("where2eat") };
    assert!(join.fill(&mut by_span_only).is_some(), "by trace_id and span_id without an inference id");
    // An inference id that names nothing falls back to the span ids.
    let mut stale_id = FeedbackEvent { inference_id: Some("6".to_owned()), ..span_feedback("where2eat") };
    assert!(join.fill(&mut stale_id).is_some());
    assert_eq!(stale_id.response_model.as_deref(), Some("gpt-4o"));
}

#[test]
fn a_response_id_match_takes_the_inferences_app() {
    let mut join = FeedbackJoin::new(8);
    join.remember(&inference("ev-1", Some("resp-1"), "gpt-4o"));
    let mut feedback = bare_feedback(None, Some("resp-1"));
    feedback.app = "eval-worker".to_owned();
    assert!(join.fill(&mut feedback).is_some());
    assert_eq!(feedback.app, "where2eat");
}

/// An empty id names no call: a call and a verdict that both leave their response id `""` (the
/// audit's Go producer) must not be joined, or the verdict lands on another app's call.
#[test]
fn empty_ids_match_nothing() {
    let mut join = FeedbackJoin::new(8);
    join.remember(&inference("ev-1", Some(""), "gpt-4o"));
    let mut feedback = bare_feedback(Some(""), Some(""));
    feedback.app = "support-bot".to_owned();
    let before = feedback.clone();
    assert!(join.fill(&mut feedback).is_none());
    assert_eq!(feedback, before);
}

#[test]
fn fills_by_inference_id() {
    let mut join = FeedbackJoin::new(8);
    join.remember(&inference("ev-1", None, "gpt-4o"));
    let mut feedback = bare_feedback(Some("ev-1"), None);
    assert!(join.fill(&mut feedback).is_some());
    assert_eq!(feedback.environment.as_deref(), Some("prod"));
    assert_eq!(feedback.provider.as_deref(), Some("openai"));
    assert_eq!(feedback.operation.as_deref(), Some("chat"));
    assert_eq!(feedback.response_model.as_deref(), Some("gpt-4o"));
    assert_eq!(feedback.prompt_id.as_deref(), Some("pick"));
    assert_eq!(feedback.prompt_version.as_deref(), Some("7"));
}

#[test]
fn fills_by_response_id_and_prefers_inference_id() {
    let mut join = FeedbackJoin::new(8);
    join.remember(&inference("ev-1", Some("resp-1"), "gpt-4o"));
    join.remember(&inference("ev-2", Some("resp-2"), "claude"));
    let mut by_response = bare_feedback(None, Some("resp-2"));
    assert!(join.fill(&mut by_response).is_some());
    assert_eq!(by_response.response_model.as_deref(), Some("claude"));

    let mut both = bare_feedback(Some("ev-1"), Some("resp-2"));
    assert!(join.fill(&mut both).is_some());
    assert_eq!(both.response_model.as_deref(), Some("gpt-4o"));

    // An unknown inference id falls back to the response id.
    let mut fallback = bare_feedback(Some("ev-unknown"), Some("resp-2"));
    assert!(join.fill(&mut fallback).is_some());
    assert_eq!(fallback.response_model.as_deref(), Some("claude"));
}

#[test]
fn keeps_fields_the_feedback_already_has() {
    let mut join = FeedbackJoin::new(8);
    join.remember(&inference("ev-1", None, "gpt-4o"));
    let mut feedback = bare_feedback(Some("ev-1"), None);
    feedback.prompt_version = Some("8".to_owned());
    assert!(join.fill(&mut feedback).is_some());
    assert_eq!(feedback.prompt_version.as_deref(), Some("8"));
    assert_eq!(feedback.prompt_id.as_deref(), Some("pick"));
}

#[test]
fn unmatched_feedback_is_unchanged() {
    let mut join = FeedbackJoin::new(8);
    join.remember(&inference("ev-1", Some("resp-1"), "gpt-4o"));
    let mut feedback = bare_feedback(Some("nope"), Some("nope"));
    let before = feedback.clone();
    assert!(join.fill(&mut feedback).is_none());
    assert_eq!(feedback, before);
}

#[test]
fn old_inferences_are_forgotten() {
    let mut join = FeedbackJoin::new(2);
    for i in 1..=5 {
        join.remember(&inference(&format!("ev-{i}"), Some(&format!("resp-{i}")), "m1"));
        assert!(join.len() <= 4, "at most twice the capacity");
    }
    // The last `capacity` inferences are always remembered, by both keys.
    assert!(join.fill(&mut bare_feedback(Some("ev-4"), None)).is_some());
    assert!(join.fill(&mut bare_feedback(Some("ev-5"), None)).is_some());
    assert!(join.fill(&mut bare_feedback(None, Some("resp-4"))).is_some());
    assert!(join.fill(&mut bare_feedback(Some("ev-1"), None)).is_none());
    assert!(join.fill(&mut bare_feedback(None, Some("resp-1"))).is_none());
}

/// A JSON inference with span ids takes two keys, so at least the last `capacity / 2` of
/// them are remembered by both, within the same bound.
#[test]
fn json_inferences_with_span_ids_stay_within_the_bound() {
    let mut join = FeedbackJoin::new(4);
    for i in 1..=9u8 {
        let mut json = inference(&i.to_string(), None, "m1");
        json.trace_id = Some(format!("{TRACE}{i}"));
        json.span_id = Some(SPAN.to_owned());
        join.remember(&json);
        assert!(join.len() <= 8, "at most twice the capacity");
    }
    for i in [8u8, 9] {
        assert!(join.fill(&mut bare_feedback(Some(&i.to_string()), None)).is_some(), "{i} by id");
        let by_span = FeedbackEvent { trace_id: Some(format!("{TRACE}{i}")), ..span_feedback("x") };
        assert!(join.fill(&mut FeedbackEvent { inference_id: None, ..by_span }).is_some(), "{i} by span");
    }
}

#[test]
fn interned_contexts_keep_each_inference_own_fields() {
    // Capacity 2 also forces the interner to clear while older records are still indexed.
    let mut join = FeedbackJoin::new(2);
    let mut third = inference("ev-3", None, "gpt-4o");
    third.prompt_version = Some("8".to_owned());
    join.remember(&inference("ev-1", None, "gpt-4o"));
    join.remember(&inference("ev-2", None, "claude-sonnet"));
    join.remember(&third);
    join.remember(&inference("ev-4", None, "gpt-4o"));
    for (id, model, version) in [("ev-3", "gpt-4o", "8"), ("ev-4", "gpt-4o", "7")] {
        let mut feedback = bare_feedback(Some(id), None);
        assert!(join.fill(&mut feedback).is_some(), "{id}");
        assert_eq!(feedback.response_model.as_deref(), Some(model), "{id}");
        assert_eq!(feedback.prompt_version.as_deref(), Some(version), "{id}");
    }
    let Some(shared) =
        join.by_event_id.get(&scoped_id_key("where2eat", "ev-4")).map(|rated| Arc::clone(&rated.context))
    else {
        panic!("ev-4 not indexed");
    };
    let again = inference("ev-5", None, "gpt-4o");
    join.remember(&again);
    let reused = join
        .by_event_id
        .get(&scoped_id_key("where2eat", "ev-5"))
        .is_some_and(|rated| Arc::ptr_eq(&rated.context, &shared));
    assert!(reused, "an identical context is shared, not copied");
}

/// Whole messages through the processor: decode, dedup, enrich, join.
mod through_the_processor {
    use std::sync::Arc;

    use driftwatch_lake::model::FeedbackEvent;

    use super::{SPAN, TRACE};
    use crate::aggregate::AggregateConfig;
    use crate::config::Config;
    use crate::decode::PayloadFormat;
    use crate::enrich::{Enricher, ModelRegistry};
    use crate::pipeline::{PartitionBuffer, Processor};
    use crate::telemetry::{Metrics, MetricsConfig};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// 2025-06-01T12:01:40Z: the messages below are a minute or two old.
    const NOW: i64 = 1_748_779_300_000_000_000;

    /// The feedback rows that `messages`, processed in order, leave in the buffer.
    fn feedback_of(messages: &[(&str, PayloadFormat)]) -> Result<Vec<FeedbackEvent>, Box<dyn std::error::Error>> {
        let config = Config::default();
        let (policies, default_policy) = config.content_policies();
        let enricher = Enricher::new(Arc::new(ModelRegistry::default_embedded()?), policies, default_policy);
        let metrics = Metrics::new(&MetricsConfig::default());
        let mut processor = Processor::new(&config, Arc::new(enricher), metrics);
        let mut buffer = PartitionBuffer::new(Arc::from("s"), Arc::from("t"), 0, 0, &AggregateConfig::default(), 100);
        for (offset, (message, format)) in (0..).zip(messages) {
            processor.process(&mut buffer, message.as_bytes(), *format, (offset, offset + 1), NOW);
        }
        assert!(buffer.dead_letters.is_empty(), "{:?}", buffer.dead_letters);
        Ok(std::mem::take(&mut buffer.feedback))
    }

    fn attributes(pairs: &[(&str, &str)]) -> String {
        let pairs: Vec<String> = pairs
            .iter()
            .map(|(key, value)| format!(r#"{{"key":"{key}","value":{{"stringValue":"{value}"}}}}"#))
            .collect();
        format!("[{}]", pairs.join(","))
    }

    /// An OTLP/JSON traces message with one chat span of gpt-4o, prompt version 7, carrying
    /// `span_attributes` and `events` (a JSON list).
    fn chat_span(resource: &[(&str, &str)], span_attributes: &[(&str, &str)], events: &str) -> String {
        let mut attrs = vec![
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.request.model", "gpt-4o"),
            ("driftwatch.prompt.id", "pick"),
            ("driftwatch.prompt.version", "7"),
        ];
        attrs.extend_from_slice(span_attributes);
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":{}}},"scopeSpans":[{{"spans":[{{"traceId":"{TRACE}","spanId":"{SPAN}","name":"chat","startTimeUnixNano":"1748779199000000000","endTimeUnixNano":"1748779200000000000","attributes":{},"events":{events}}}]}}]}}]}}"#,
            attributes(resource),
            attributes(&attrs),
        )
    }

    /// An OTLP/JSON logs message from the evaluator service: a hallucination verdict on the
    /// span `TRACE`/`SPAN`.
    fn evaluator_verdict() -> String {
        format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":{}}},"scopeLogs":[{{"logRecords":[{{"timeUnixNano":"1748779230000000000","eventName":"gen_ai.evaluation.result","traceId":"{TRACE}","spanId":"{SPAN}","attributes":[{{"key":"gen_ai.evaluation.name","value":{{"stringValue":"hallucination"}}}},{{"key":"gen_ai.evaluation.score.value","value":{{"doubleValue":0.9}}}}]}}]}}]}}]}}"#,
            attributes(&[("service.name", "eval-worker")]),
        )
    }

    fn assert_rates_the_where2eat_call(feedback: &[FeedbackEvent]) {
        assert_eq!(feedback.len(), 1);
        let f = &feedback[0];
        assert_eq!(f.app, "where2eat");
        assert_eq!(f.response_model.as_deref(), Some("gpt-4o"));
        assert_eq!(f.prompt_version.as_deref(), Some("7"));
    }

    #[test]
    fn an_evaluator_services_verdict_on_a_span_lands_in_the_spans_app() -> TestResult {
        let traces = chat_span(&[("service.name", "where2eat")], &[], "[]");
        let feedback =
            feedback_of(&[(&traces, PayloadFormat::OtlpTraces), (&evaluator_verdict(), PayloadFormat::OtlpLogs)])?;
        assert_rates_the_where2eat_call(&feedback);
        Ok(())
    }

    /// Resource `service.name` is the gateway, the span's `driftwatch.app` the app: feedback
    /// recorded as an event on the span is the app's, like the call.
    #[test]
    fn a_verdict_recorded_on_the_span_takes_the_spans_app_attribute() -> TestResult {
        let verdict = r#"[{"timeUnixNano":"1748779200000000005","name":"gen_ai.evaluation.result","attributes":[{"key":"gen_ai.evaluation.name","value":{"stringValue":"hallucination"}},{"key":"gen_ai.evaluation.score.value","value":{"doubleValue":0.9}}]}]"#;
        let traces = chat_span(&[("service.name", "llm-gateway")], &[("driftwatch.app", "where2eat")], verdict);
        assert_rates_the_where2eat_call(&feedback_of(&[(&traces, PayloadFormat::OtlpTraces)])?);
        Ok(())
    }

    fn json_inference() -> String {
        format!(
            r#"{{"id":"1","time":"2025-06-01T12:00:00Z","app":"where2eat","request_model":"gpt-4o","prompt_id":"pick","prompt_version":"7","trace_id":"{TRACE}","span_id":"{SPAN}"}}"#
        )
    }

    #[test]
    fn json_feedback_naming_a_json_inference_by_span_is_joined() -> TestResult {
        let feedback = format!(
            r#"{{"type":"feedback","id":"f1","time":"2025-06-01T12:00:30Z","app":"where2eat","name":"hallucination","score":0.9,"trace_id":"{TRACE}","span_id":"{SPAN}"}}"#
        );
        let feedback =
            feedback_of(&[(&json_inference(), PayloadFormat::JsonEvents), (&feedback, PayloadFormat::JsonEvents)])?;
        assert_rates_the_where2eat_call(&feedback);
        assert_eq!(feedback[0].inference_id.as_deref(), Some(format!("{TRACE}{SPAN}").as_str()));
        Ok(())
    }

    #[test]
    fn an_evaluator_services_verdict_on_a_json_inferences_span_is_joined() -> TestResult {
        let feedback = feedback_of(&[
            (&json_inference(), PayloadFormat::JsonEvents),
            (&evaluator_verdict(), PayloadFormat::OtlpLogs),
        ])?;
        assert_rates_the_where2eat_call(&feedback);
        Ok(())
    }
}
