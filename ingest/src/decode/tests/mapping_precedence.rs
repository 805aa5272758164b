//! "The first present wins" between the sources of every mapping row that has more than one
//! (DESIGN §3.2, and the code's own additions where DESIGN lists fewer): each row is read with
//! all of its sources set at once, each with its own value, and then with only sources i..n set
//! for every i, so source i must win every time. A row whose order changes in
//! `attributes::rows` fails here. Spans are read with every row; log records and evaluation
//! events on spans with the rows a feedback event has.
//!
//! The sources are listed on the item both in precedence order and reversed: the winner is
//! decided by the row, never by where an attribute sits in the list.

use driftwatch_lake::model::{FeedbackEvent, InferenceEvent};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{Status, status::StatusCode};
use prost::Message;

use super::{T0, array, assert_same, decode_traces, kv, prost_logs_path, s, span, traces, wire_logs_path};

/// The event name that makes a log record or span event a feedback event.
const EVALUATION: &str = "gen_ai.evaluation.result";

/// How one source of a row is set on the item.
enum Set {
    /// An attribute on the row's [`Layer`].
    Attr(&'static str, Value),
    /// An ERROR span status with this message: the last source of the error type, not an
    /// attribute.
    ErrorStatus(&'static str),
}

/// One source of a row, and what the canonical field reads when this source wins.
struct Source {
    set: Set,
    wins: &'static str,
}

impl Source {
    fn name(&self) -> &'static str {
        match self.set {
            Set::Attr(key, _) => key,
            Set::ErrorStatus(_) => "the span status message",
        }
    }
}

fn attr(key: &'static str, value: Value, wins: &'static str) -> Source {
    Source { set: Set::Attr(key, value), wins }
}

/// A string attribute that the field reads as it is.
fn text(key: &'static str, value: &'static str) -> Source {
    attr(key, s(value), value)
}

/// Which attribute list a row's sources are set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    /// The resource's: where DESIGN puts `service.name` and the deployment environment.
    Resource,
    /// The span's, the log record's or the span event's own.
    Item,
}

/// The attributes of the sources set on `layer`, in the order `present` lists them.
fn attributes_on(layer: Layer, row_layer: Layer, present: &[&Source]) -> Vec<KeyValue> {
    if layer != row_layer {
        return Vec::new();
    }
    present
        .iter()
        .filter_map(|source| match &source.set {
            Set::Attr(key, value) => Some(kv(key, value.clone())),
            Set::ErrorStatus(_) => None,
        })
        .collect()
}

/// `base` without the attributes the row reads: a row under test is set by its sources only.
fn without_row_keys(mut base: Vec<KeyValue>, row: &[Source]) -> Vec<KeyValue> {
    base.retain(|attribute| row.iter().all(|source| source.name() != attribute.key));
    base
}

/// Read the item that `decode` builds with every suffix of `row` set, and check that the
/// suffix's first source wins each time.
fn check<E>(
    field: &str,
    layer: Layer,
    row: &[Source],
    decode: impl Fn(Layer, &[Source], &[&Source]) -> E,
    read: impl Fn(&E) -> Option<String>,
) {
    assert!(row.len() > 1, "{field}: a row of one source has no precedence to test");
    for (i, source) in row.iter().enumerate() {
        assert!(row[..i].iter().all(|earlier| earlier.wins != source.wins), "{field}: each source needs its own value");
    }
    for first in 0..row.len() {
        let present: Vec<&Source> = row[first..].iter().collect();
        let reversed: Vec<&Source> = present.iter().rev().copied().collect();
        let names: Vec<&str> = present.iter().map(|source| source.name()).collect();
        for (order, listed) in [("in row order", &present), ("reversed", &reversed)] {
            let item = decode(layer, row, listed);
            assert_eq!(
                read(&item).as_deref(),
                Some(present[0].wins),
                "{field}: with {names:?} set (listed {order}), {} must win",
                present[0].name()
            );
        }
    }
}

/// One chat span of app `app-1` with `present` set; exactly one event expected.
fn decode_span(layer: Layer, row: &[Source], present: &[&Source]) -> InferenceEvent {
    let mut resource = without_row_keys(vec![kv("service.name", s("app-1"))], row);
    resource.extend(attributes_on(Layer::Resource, layer, present));
    let mut attributes = without_row_keys(vec![kv("gen_ai.operation.name", s("chat"))], row);
    attributes.extend(attributes_on(Layer::Item, layer, present));
    let mut item = span(1, attributes);
    for source in present {
        if let Set::ErrorStatus(message) = source.set {
            item.status = Some(Status { code: StatusCode::Error as i32, message: message.to_owned() });
        }
    }
    let mut out = decode_traces(&traces(resource, vec![item]));
    assert_eq!(out.rejects, vec![], "unexpected rejects");
    assert_eq!((out.events.len(), out.feedback.len()), (1, 0));
    out.events.remove(0)
}

/// Resource and item attributes of a feedback event with `present` set.
fn feedback_attributes(layer: Layer, row: &[Source], present: &[&Source]) -> (Vec<KeyValue>, Vec<KeyValue>) {
    assert!(present.iter().all(|source| matches!(source.set, Set::Attr(..))), "feedback has no span status");
    let mut resource = without_row_keys(vec![kv("service.name", s("evaluator"))], row);
    resource.extend(attributes_on(Layer::Resource, layer, present));
    let mut attributes = without_row_keys(vec![kv("gen_ai.evaluation.name", s("relevance"))], row);
    attributes.extend(attributes_on(Layer::Item, layer, present));
    (resource, attributes)
}

/// One `gen_ai.evaluation.result` log record with `present` set, read by prost and in place
/// alike; exactly one feedback event expected.
fn decode_record(layer: Layer, row: &[Source], present: &[&Source]) -> FeedbackEvent {
    let (resource, attributes) = feedback_attributes(layer, row, present);
    let record = LogRecord {
        time_unix_nano: T0 as u64,
        event_name: EVALUATION.to_owned(),
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        attributes,
        ..Default::default()
    };
    let data = LogsData {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource { attributes: resource, ..Default::default() }),
            scope_logs: vec![ScopeLogs { log_records: vec![record], ..Default::default() }],
            ..Default::default()
        }],
    };
    let mut out = prost_logs_path(&data);
    let in_place = wire_logs_path(&data.encode_to_vec()).expect("the record is read in place");
    assert_same(&in_place, &out);
    assert_eq!(out.rejects, vec![], "unexpected rejects");
    assert_eq!((out.events.len(), out.feedback.len()), (0, 1));
    out.feedback.remove(0)
}

/// One chat span carrying a `gen_ai.evaluation.result` event with `present` set on the event
/// (item rows) or the resource; exactly one feedback event expected.
fn decode_span_event(layer: Layer, row: &[Source], present: &[&Source]) -> FeedbackEvent {
    let (resource, attributes) = feedback_attributes(layer, row, present);
    let mut evaluated = span(1, vec![kv("gen_ai.operation.name", s("chat"))]);
    evaluated.events.push(Event {
        name: EVALUATION.to_owned(),
        time_unix_nano: T0 as u64,
        attributes,
        ..Default::default()
    });
    let mut out = decode_traces(&traces(resource, vec![evaluated]));
    assert_eq!(out.rejects, vec![], "unexpected rejects");
    assert_eq!((out.events.len(), out.feedback.len()), (1, 1));
    out.feedback.remove(0)
}

/// Check a row on spans.
fn check_span(field: &str, layer: Layer, row: &[Source], read: impl Fn(&InferenceEvent) -> Option<String>) {
    check(field, layer, row, decode_span, read);
}

/// Check a row on log records and on evaluation events recorded on spans.
fn check_feedback(field: &str, layer: Layer, row: &[Source], read: impl Fn(&FeedbackEvent) -> Option<String>) {
    check(&format!("{field} (log record)"), layer, row, decode_record, &read);
    check(&format!("{field} (span event)"), layer, row, decode_span_event, &read);
}

fn app() -> Vec<Source> {
    vec![text("driftwatch.app", "app-override"), text("service.name", "app-service")]
}

fn environment() -> Vec<Source> {
    vec![text("deployment.environment.name", "prod"), text("deployment.environment", "staging")]
}

/// DESIGN's three, then `llm.provider`, then the Vercel AI SDK's provider id; each normalised,
/// `gen_ai.system`'s old value and the AI SDK's API suffix too.
fn provider() -> Vec<Source> {
    vec![
        text("gen_ai.provider.name", "openai"),
        attr("gen_ai.system", s("AZ.AI.Inference"), "azure.ai.inference"),
        text("llm.system", "anthropic"),
        text("llm.provider", "aws.bedrock"),
        attr("ai.model.provider", s("mistral.chat"), "mistral"),
    ]
}

fn response_model() -> Vec<Source> {
    vec![
        text("gen_ai.response.model", "gpt-4o-2024-08-06"),
        text("llm.response.model_name", "claude-3-5-sonnet"),
        text("ai.response.model", "gpt-4o-mini-2024-07-18"),
    ]
}

fn response_id() -> Vec<Source> {
    vec![text("gen_ai.response.id", "chatcmpl-1"), text("ai.response.id", "resp_2")]
}

fn prompt_id() -> Vec<Source> {
    vec![
        text("driftwatch.prompt.id", "greet"),
        text("traceloop.prompt.key", "welcome"),
        text("langfuse.prompt.name", "onboard"),
    ]
}

fn prompt_version() -> Vec<Source> {
    vec![
        attr("driftwatch.prompt.version", Value::IntValue(3), "3"),
        text("traceloop.prompt.version", "v2"),
        attr("langfuse.prompt.version", Value::IntValue(7), "7"),
    ]
}

/// A token count, read back as its decimal text.
fn tokens(key: &'static str, count: i64, wins: &'static str) -> Source {
    attr(key, Value::IntValue(count), wins)
}

mod spans {
    use super::*;

    #[test]
    fn app() {
        check_span("app", Layer::Resource, &super::app(), |e| Some(e.app.clone()));
    }

    #[test]
    fn environment() {
        check_span("environment", Layer::Resource, &super::environment(), |e| e.environment.clone());
    }

    #[test]
    fn provider() {
        check_span("provider", Layer::Item, &super::provider(), |e| e.provider.clone());
    }

    /// DESIGN's two keys, then OpenInference's span kind (DESIGN §3.1), normalised.
    #[test]
    fn operation() {
        let row = [
            text("gen_ai.operation.name", "generate_content"),
            attr("llm.request.type", s("completion"), "text_completion"),
            attr("openinference.span.kind", s("EMBEDDING"), "embeddings"),
        ];
        check_span("operation", Layer::Item, &row, |e| Some(e.operation.clone()));
    }

    #[test]
    fn request_model() {
        let row = [
            text("gen_ai.request.model", "gpt-4o"),
            text("llm.request.model_name", "claude-3-5-sonnet"),
            text("llm.model_name", "gemini-1.5-pro"),
            text("ai.model.id", "gpt-4o-mini"),
            text("embedding.model_name", "text-embedding-3-small"),
        ];
        check_span("request_model", Layer::Item, &row, |e| e.request_model.clone());
    }

    /// The response model's own keys, else the request model.
    #[test]
    fn response_model() {
        let mut row = super::response_model();
        row.push(text("gen_ai.request.model", "gpt-4o"));
        check_span("response_model", Layer::Item, &row, |e| e.response_model.clone());
    }

    #[test]
    fn input_tokens() {
        let row = [
            tokens("gen_ai.usage.input_tokens", 10, "10"),
            tokens("gen_ai.usage.prompt_tokens", 20, "20"),
            tokens("llm.token_count.prompt", 30, "30"),
            tokens("ai.usage.tokens", 40, "40"),
        ];
        check_span("input_tokens", Layer::Item, &row, |e| e.input_tokens.map(|n| n.to_string()));
    }

    #[test]
    fn output_tokens() {
        let row = [
            tokens("gen_ai.usage.output_tokens", 11, "11"),
            tokens("gen_ai.usage.completion_tokens", 21, "21"),
            tokens("llm.token_count.completion", 31, "31"),
        ];
        check_span("output_tokens", Layer::Item, &row, |e| e.output_tokens.map(|n| n.to_string()));
    }

    #[test]
    fn cache_read_tokens() {
        let row = [
            tokens("gen_ai.usage.cache_read.input_tokens", 12, "12"),
            tokens("gen_ai.usage.cache_read_input_tokens", 22, "22"),
            tokens("llm.token_count.prompt_details.cache_read", 32, "32"),
            tokens("ai.usage.cachedInputTokens", 42, "42"),
        ];
        check_span("cache_read_tokens", Layer::Item, &row, |e| e.cache_read_tokens.map(|n| n.to_string()));
    }

    #[test]
    fn cache_write_tokens() {
        let row = [
            tokens("gen_ai.usage.cache_creation.input_tokens", 14, "14"),
            tokens("gen_ai.usage.cache_creation_input_tokens", 24, "24"),
            tokens("llm.token_count.prompt_details.cache_write", 34, "34"),
        ];
        check_span("cache_write_tokens", Layer::Item, &row, |e| e.cache_write_tokens.map(|n| n.to_string()));
    }

    #[test]
    fn reasoning_tokens() {
        let row = [
            tokens("gen_ai.usage.reasoning.output_tokens", 13, "13"),
            tokens("gen_ai.usage.reasoning_tokens", 23, "23"),
            tokens("llm.token_count.completion_details.reasoning", 33, "33"),
            tokens("ai.usage.reasoningTokens", 43, "43"),
        ];
        check_span("reasoning_tokens", Layer::Item, &row, |e| e.reasoning_tokens.map(|n| n.to_string()));
    }

    #[test]
    fn reported_cost() {
        let row =
            [attr("gen_ai.usage.cost", Value::DoubleValue(0.5), "0.5"), attr("llm.cost.total", s("0.25"), "0.25")];
        check_span("reported_cost_usd", Layer::Item, &row, |e| e.reported_cost_usd.map(|usd| usd.to_string()));
    }

    /// Seconds in both: the current semconv's key, then OpenLIT's; then the AI SDK's, in
    /// milliseconds.
    #[test]
    fn ttft() {
        let row = [
            attr("gen_ai.response.time_to_first_chunk", Value::DoubleValue(0.25), "250"),
            attr("gen_ai.server.time_to_first_token", Value::DoubleValue(0.5), "500"),
            attr("ai.response.msToFirstChunk", Value::DoubleValue(750.0), "750"),
        ];
        check_span("ttft_ms", Layer::Item, &row, |e| e.ttft_ms.map(|ms| ms.to_string()));
    }

    /// `error.type`, then an exception's type, then the ERROR status's message.
    #[test]
    fn error_type() {
        let row = [
            text("error.type", "timeout"),
            text("exception.type", "openai.RateLimitError"),
            Source { set: Set::ErrorStatus("upstream said no"), wins: "upstream said no" },
        ];
        check_span("error_type", Layer::Item, &row, |e| e.error_type.clone());
    }

    #[test]
    fn finish_reason() {
        let row = [
            attr("gen_ai.response.finish_reasons", array(&["length", "stop"]), "length"),
            text("llm.response.finish_reason", "content_filter"),
            text("ai.response.finishReason", "tool_calls"),
        ];
        check_span("finish_reason", Layer::Item, &row, |e| e.finish_reason.clone());
    }

    #[test]
    fn response_id() {
        check_span("response_id", Layer::Item, &super::response_id(), |e| e.response_id.clone());
    }

    #[test]
    fn prompt_id() {
        check_span("prompt_id", Layer::Item, &super::prompt_id(), |e| e.prompt_id.clone());
    }

    #[test]
    fn prompt_version() {
        check_span("prompt_version", Layer::Item, &super::prompt_version(), |e| e.prompt_version.clone());
    }

    /// The current JSON messages, the old single string, then OpenLLMetry's and OpenInference's
    /// flattened messages.
    #[test]
    fn input_content() {
        let row = [
            text("gen_ai.input.messages", r#"[{"role":"user","parts":[]}]"#),
            text("gen_ai.prompt", "old prompt"),
            text("gen_ai.prompt.0.content", "openllmetry prompt"),
            text("llm.input_messages.0.message.content", "openinference input"),
        ];
        check_span("input_content", Layer::Item, &row, |e| e.input_content.clone());
    }

    #[test]
    fn output_content() {
        let row = [
            text("gen_ai.output.messages", r#"[{"role":"assistant","parts":[]}]"#),
            text("gen_ai.completion", "old completion"),
            text("gen_ai.completion.0.content", "openllmetry completion"),
            text("llm.output_messages.0.message.content", "openinference output"),
        ];
        check_span("output_content", Layer::Item, &row, |e| e.output_content.clone());
    }
}

/// The rows a feedback event reads, on log records and on evaluation events on spans. The
/// response model has no request-model fallback here: feedback rates a call, it does not make
/// one.
mod feedback {
    use super::*;

    #[test]
    fn app() {
        check_feedback("app", Layer::Resource, &super::app(), |f| Some(f.app.clone()));
    }

    #[test]
    fn environment() {
        check_feedback("environment", Layer::Resource, &super::environment(), |f| f.environment.clone());
    }

    #[test]
    fn provider() {
        check_feedback("provider", Layer::Item, &super::provider(), |f| f.provider.clone());
    }

    /// DESIGN's two keys, as on spans (a span kind is no operation of the rated call). On log
    /// records only: an evaluation event on a span takes the span's own operation.
    #[test]
    fn operation() {
        let row = [
            text("gen_ai.operation.name", "generate_content"),
            attr("llm.request.type", s("completion"), "text_completion"),
        ];
        check("operation (log record)", Layer::Item, &row, decode_record, |f| f.operation.clone());
    }

    #[test]
    fn response_model() {
        check_feedback("response_model", Layer::Item, &super::response_model(), |f| f.response_model.clone());
    }

    #[test]
    fn response_id() {
        check_feedback("response_id", Layer::Item, &super::response_id(), |f| f.response_id.clone());
    }

    #[test]
    fn prompt_id() {
        check_feedback("prompt_id", Layer::Item, &super::prompt_id(), |f| f.prompt_id.clone());
    }

    #[test]
    fn prompt_version() {
        check_feedback("prompt_version", Layer::Item, &super::prompt_version(), |f| f.prompt_version.clone());
    }

    /// The GenAI evaluation's keys, then OpenInference's annotation's, in each of the three rows.
    #[test]
    fn evaluation_name() {
        let row = [text("gen_ai.evaluation.name", "hallucination"), text("annotation.name", "user_thumbs")];
        check_feedback("name", Layer::Item, &row, |f| Some(f.name.clone()));
    }

    #[test]
    fn score_value() {
        let row = [
            attr("gen_ai.evaluation.score.value", Value::DoubleValue(0.75), "0.75"),
            attr("annotation.score", Value::DoubleValue(0.25), "0.25"),
        ];
        check_feedback("score_value", Layer::Item, &row, |f| f.score_value.map(|score| score.to_string()));
    }

    #[test]
    fn score_label() {
        let row = [text("gen_ai.evaluation.score.label", "hallucinated"), text("annotation.label", "down")];
        check_feedback("score_label", Layer::Item, &row, |f| f.score_label.clone());
    }
}
