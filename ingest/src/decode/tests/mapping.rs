//! One test per DESIGN §3.2 mapping row, with current, deprecated, OpenInference,
//! OpenLLMetry and OpenLIT variants, plus the inference-span rule.

use driftwatch_lake::model::CallStatus;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{Status, span::Event};

use super::{T0, array, decode, decode_traces, kv, one_event, prost_path, s, span, traces};
use crate::decode::{Decoded, PayloadFormat, normalize_provider};

#[test]
fn app_from_service_name_overridden_by_driftwatch_app() {
    assert_eq!(one_event(vec![]).app, "app-1");
    assert_eq!(one_event(vec![kv("driftwatch.app", s("override"))]).app, "override");
    let data = traces(
        vec![kv("service.name", s("svc")), kv("driftwatch.app", s("from-resource"))],
        vec![span(1, vec![kv("gen_ai.operation.name", s("chat"))])],
    );
    assert_eq!(decode_traces(&data).events[0].app, "from-resource");
}

#[test]
fn environment_current_then_deprecated_resource_attribute() {
    for (attrs, expected) in [
        (vec![kv("deployment.environment.name", s("prod")), kv("deployment.environment", s("old"))], "prod"),
        (vec![kv("deployment.environment", s("staging"))], "staging"),
    ] {
        let mut resource = vec![kv("service.name", s("a"))];
        resource.extend(attrs);
        let data = traces(resource, vec![span(1, vec![kv("gen_ai.operation.name", s("chat"))])]);
        assert_eq!(decode_traces(&data).events[0].environment.as_deref(), Some(expected));
    }
}

#[test]
fn provider_rows_and_normalisation() {
    let cases = [
        (vec![kv("gen_ai.provider.name", s("openai")), kv("gen_ai.system", s("other"))], "openai"),
        (vec![kv("gen_ai.system", s("OpenAI"))], "openai"),
        (vec![kv("gen_ai.system", s("az.ai.inference"))], "azure.ai.inference"),
        (vec![kv("gen_ai.system", s("vertex_ai"))], "gcp.vertex_ai"),
        (vec![kv("llm.system", s("anthropic"))], "anthropic"),
        (vec![kv("llm.provider", s("aws.bedrock"))], "aws.bedrock"),
    ];
    for (attrs, expected) in cases {
        assert_eq!(one_event(attrs).provider.as_deref(), Some(expected));
    }
    assert_eq!(normalize_provider(" AZ.AI.OpenAI "), "azure.ai.openai");
}

#[test]
fn operation_rows() {
    assert_eq!(one_event(vec![]).operation, "chat");
    let cases = [
        (vec![kv("gen_ai.operation.name", s("embeddings"))], "embeddings"),
        (vec![kv("llm.request.type", s("completion"))], "text_completion"),
        (vec![kv("openinference.span.kind", s("EMBEDDING"))], "embeddings"),
        (vec![kv("openinference.span.kind", s("LLM"))], "chat"),
    ];
    for (attrs, expected) in cases {
        let data = traces(vec![kv("service.name", s("a"))], vec![span(1, attrs)]);
        assert_eq!(decode_traces(&data).events[0].operation, expected);
    }
}

#[test]
fn request_and_response_model_rows() {
    let e = one_event(vec![kv("gen_ai.request.model", s("gpt-4o")), kv("gen_ai.response.model", s("gpt-4o-2024"))]);
    assert_eq!((e.request_model.as_deref(), e.response_model.as_deref()), (Some("gpt-4o"), Some("gpt-4o-2024")));
    let e = one_event(vec![kv("llm.request.model_name", s("m1")), kv("llm.response.model_name", s("m2"))]);
    assert_eq!((e.request_model.as_deref(), e.response_model.as_deref()), (Some("m1"), Some("m2")));
    // OpenInference llm.model_name; response falls back to the request model.
    let e = one_event(vec![kv("llm.model_name", s("gemini"))]);
    assert_eq!((e.request_model.as_deref(), e.response_model.as_deref()), (Some("gemini"), Some("gemini")));
}

/// The tier that served the call is what is billed: the response's, under the current key, the
/// deprecated `gen_ai.openai.*` one and OpenLIT's; the requested tier (`auto`) is not read.
#[test]
fn service_tier_rows() {
    let cases = [
        (vec![kv("openai.response.service_tier", s("flex"))], Some("flex")),
        (vec![kv("gen_ai.openai.response.service_tier", s("Priority"))], Some("priority")),
        (
            vec![
                kv("openai.response.service_tier", s("default")),
                kv("gen_ai.openai.response.service_tier", s("flex")),
            ],
            Some("default"),
        ),
        (vec![kv("gen_ai.response.service_tier", s("flex"))], Some("flex")),
        (
            vec![
                kv("gen_ai.openai.response.service_tier", s("priority")),
                kv("gen_ai.response.service_tier", s("flex")),
            ],
            Some("priority"),
        ),
        (vec![kv("openai.request.service_tier", s("auto"))], None),
        // The tier asked for serves the call where no response key names one.
        (vec![kv("gen_ai.request.service_tier", s("flex"))], Some("flex")),
        (vec![kv("gen_ai.openai.request.service_tier", s("priority"))], Some("priority")),
        (
            vec![kv("openai.request.service_tier", s("flex")), kv("openai.response.service_tier", s("default"))],
            Some("default"),
        ),
        (vec![kv("openai.response.service_tier", s(" "))], None),
    ];
    for (attrs, expected) in cases {
        assert_eq!(one_event(attrs).service_tier.as_deref(), expected);
    }
}

#[test]
fn token_rows_accept_int_double_and_numeric_string() {
    let e = one_event(vec![
        kv("gen_ai.usage.input_tokens", Value::IntValue(10)),
        kv("gen_ai.usage.prompt_tokens", Value::IntValue(99)),
        kv("gen_ai.usage.output_tokens", Value::DoubleValue(20.0)),
        kv("gen_ai.usage.cache_read.input_tokens", s("3")),
        kv("gen_ai.usage.cache_creation.input_tokens", Value::IntValue(2)),
        kv("gen_ai.usage.reasoning.output_tokens", Value::IntValue(4)),
    ]);
    assert_eq!(
        (e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens, e.reasoning_tokens),
        (Some(10), Some(20), Some(3), Some(2), Some(4))
    );
    let e = one_event(vec![
        kv("gen_ai.usage.prompt_tokens", Value::IntValue(11)),
        kv("gen_ai.usage.completion_tokens", Value::IntValue(21)),
        kv("gen_ai.usage.cache_read_input_tokens", Value::IntValue(5)),
        kv("gen_ai.usage.cache_creation_input_tokens", Value::DoubleValue(4.0)),
        kv("gen_ai.usage.reasoning_tokens", Value::IntValue(6)),
    ]);
    assert_eq!(
        (e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens, e.reasoning_tokens),
        (Some(11), Some(21), Some(5), Some(4), Some(6))
    );
    let e = one_event(vec![
        kv("llm.token_count.prompt", Value::IntValue(12)),
        kv("llm.token_count.completion", Value::IntValue(22)),
        kv("llm.token_count.prompt_details.cache_read", Value::IntValue(7)),
        kv("llm.token_count.prompt_details.cache_write", s("5")),
        kv("llm.token_count.completion_details.reasoning", Value::IntValue(8)),
    ]);
    assert_eq!(
        (e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens, e.reasoning_tokens),
        (Some(12), Some(22), Some(7), Some(5), Some(8))
    );
}

/// A blank string is no count: the next row of the field wins, and without one the field is
/// empty, as a string row treats it.
#[test]
fn blank_numeric_values_count_as_absent() {
    let e = one_event(vec![
        kv("gen_ai.usage.input_tokens", s("")),
        kv("gen_ai.usage.prompt_tokens", Value::IntValue(5)),
        kv("gen_ai.usage.output_tokens", s(" ")),
        kv("gen_ai.usage.completion_tokens", s("7")),
        kv("gen_ai.usage.cost", s("")),
        kv("llm.cost.total", Value::DoubleValue(0.5)),
    ]);
    assert_eq!((e.input_tokens, e.output_tokens, e.reported_cost_usd), (Some(5), Some(7), Some(0.5)));
    let e = one_event(vec![kv("gen_ai.usage.input_tokens", s("")), kv("gen_ai.response.time_to_first_chunk", s(""))]);
    assert_eq!((e.input_tokens, e.ttft_ms), (None, None));
}

#[test]
fn reported_cost_rows() {
    assert_eq!(one_event(vec![kv("gen_ai.usage.cost", Value::DoubleValue(0.5))]).reported_cost_usd, Some(0.5));
    assert_eq!(one_event(vec![kv("llm.cost.total", s("0.25"))]).reported_cost_usd, Some(0.25));
}

/// A reported cost is only the producer's figure, kept to reconcile with driftwatch's own price:
/// one that is no usable amount leaves the call without it, counted, instead of losing the call.
#[test]
fn an_unusable_reported_cost_is_dropped_and_counted_not_rejected() {
    let call = |n: u8, cost: Option<KeyValue>| {
        let mut attributes = vec![
            kv("gen_ai.operation.name", s("chat")),
            kv("gen_ai.usage.input_tokens", Value::IntValue(120)),
            kv("gen_ai.usage.output_tokens", Value::IntValue(30)),
        ];
        attributes.extend(cost);
        span(n, attributes)
    };
    let unusable = [
        (kv("llm.cost.total", s("n/a")), true),
        (kv("gen_ai.usage.cost", Value::DoubleValue(-0.0004)), true),
        (kv("gen_ai.usage.cost", s("-0.0004")), true),
        (kv("llm.cost.total", Value::BoolValue(true)), true),
        (kv("gen_ai.usage.cost", Value::DoubleValue(f64::NAN)), false),
        (kv("gen_ai.usage.cost", Value::DoubleValue(f64::INFINITY)), false),
    ];
    for (cost, as_otlp_json_too) in unusable {
        let shown = format!("{cost:?}");
        let spans = vec![call(1, Some(cost)), call(2, Some(kv("gen_ai.usage.cost", Value::DoubleValue(0.25))))];
        let data = traces(vec![kv("service.name", s("a"))], spans);
        let mut decoded = vec![("protobuf", decode_traces(&data)), ("prost", prost_path(&data))];
        // OTLP/JSON has no NaN or infinity to write as a number.
        if as_otlp_json_too {
            let json = serde_json::to_vec(&data).unwrap();
            decoded.push(("OTLP/JSON", decode(&json, PayloadFormat::OtlpTraces)));
        }
        for (path, out) in decoded {
            assert_eq!(out.rejects, vec![], "{path} {shown}");
            let events: Vec<_> = out
                .events
                .iter()
                .map(|e| (e.span_id.as_deref(), e.input_tokens, e.output_tokens, e.reported_cost_usd))
                .collect();
            assert_eq!(
                events,
                [
                    (Some("cdcdcdcdcdcdcd01"), Some(120), Some(30), None),
                    (Some("cdcdcdcdcdcdcd02"), Some(120), Some(30), Some(0.25))
                ],
                "{path} {shown}"
            );
            assert_eq!(out.dropped_reported_costs, 1, "{path} {shown}");
        }
    }

    // Absent, blank or zero is no problem to count.
    for cost in [None, Some(kv("gen_ai.usage.cost", s(" "))), Some(kv("llm.cost.total", Value::IntValue(0)))] {
        let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![call(1, cost.clone())]));
        assert_eq!((out.events.len(), out.rejects.len(), out.dropped_reported_costs), (1, 0, 0), "{cost:?}");
    }
    // A span rejected for another reason counts only as that reject.
    let mut backwards = call(1, Some(kv("llm.cost.total", s("n/a"))));
    backwards.start_time_unix_nano = backwards.end_time_unix_nano + 1;
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![backwards]));
    assert_eq!((out.events.len(), out.rejects.len(), out.dropped_reported_costs), (0, 1, 0));
}

#[test]
fn latency_and_ttft() {
    let e = one_event(vec![kv("gen_ai.response.time_to_first_chunk", Value::DoubleValue(0.25))]);
    assert_eq!(e.latency_ms, Some(1500.0));
    assert_eq!(e.time - e.start_time, 1_500_000_000);
    assert_eq!(e.time, T0 + 1_000_000);
    assert_eq!(e.ttft_ms, Some(250.0));
}

/// Seconds in every row: the current semconv's key, then OpenLIT's.
#[test]
fn ttft_rows() {
    let e = one_event(vec![
        kv("gen_ai.response.time_to_first_chunk", Value::DoubleValue(0.25)),
        kv("gen_ai.server.time_to_first_token", Value::DoubleValue(0.5)),
    ]);
    assert_eq!(e.ttft_ms, Some(250.0));
    let e = one_event(vec![kv("gen_ai.server.time_to_first_token", Value::DoubleValue(0.125))]);
    assert_eq!(e.ttft_ms, Some(125.0));
}

#[test]
fn status_and_error_type() {
    let attrs = vec![kv("gen_ai.operation.name", s("chat"))];
    let mut failed = span(1, attrs.clone());
    failed.status = Some(Status { code: 2, message: "boom".to_owned() });
    let mut with_type = span(2, vec![kv("gen_ai.operation.name", s("chat")), kv("error.type", s("timeout"))]);
    with_type.status = Some(Status { code: 2, message: "x".to_owned() });
    let mut with_exception = span(3, attrs.clone());
    with_exception.status = Some(Status { code: 2, message: String::new() });
    with_exception.events.push(Event {
        name: "exception".to_owned(),
        attributes: vec![kv("exception.type", s("openai.RateLimitError"))],
        ..Default::default()
    });
    let mut ok = span(4, attrs.clone());
    ok.status = Some(Status { code: 1, message: String::new() });
    let type_without_status = span(5, vec![kv("gen_ai.operation.name", s("chat")), kv("error.type", s("timeout"))]);
    let mut handled_exception = span(6, attrs);
    handled_exception.events.push(Event {
        name: "exception".to_owned(),
        attributes: vec![kv("exception.type", s("KeyError"))],
        ..Default::default()
    });
    let spans = vec![failed, with_type, with_exception, ok, type_without_status, handled_exception];
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], spans));
    let got: Vec<_> = out.events.iter().map(|e| (e.status, e.error_type.as_deref())).collect();
    assert_eq!(
        got,
        vec![
            (CallStatus::Error, Some("boom")),
            (CallStatus::Error, Some("timeout")),
            (CallStatus::Error, Some("openai.RateLimitError")),
            (CallStatus::Ok, None),
            (CallStatus::Error, Some("timeout")),
            (CallStatus::Unset, Some("KeyError")),
        ]
    );
    assert_eq!(one_event(vec![]).status, CallStatus::Unset);
}

#[test]
fn finish_reason_rows() {
    assert_eq!(
        one_event(vec![kv("gen_ai.response.finish_reasons", array(&["length", "stop"]))]).finish_reason.as_deref(),
        Some("length")
    );
    assert_eq!(one_event(vec![kv("llm.response.finish_reason", s("stop"))]).finish_reason.as_deref(), Some("stop"));
}

#[test]
fn response_id_and_golden_case_rows() {
    let e = one_event(vec![kv("gen_ai.response.id", s("resp-1")), kv("driftwatch.golden.case", s("g-7"))]);
    assert_eq!((e.response_id.as_deref(), e.golden_case.as_deref()), (Some("resp-1"), Some("g-7")));
}

#[test]
fn prompt_id_and_version_rows() {
    let cases = [
        ("driftwatch.prompt.id", "driftwatch.prompt.version"),
        ("traceloop.prompt.key", "traceloop.prompt.version"),
        ("langfuse.prompt.name", "langfuse.prompt.version"),
    ];
    for (id_key, version_key) in cases {
        let e = one_event(vec![kv(id_key, s("p")), kv(version_key, Value::IntValue(3))]);
        assert_eq!((e.prompt_id.as_deref(), e.prompt_version.as_deref()), (Some("p"), Some("3")), "{id_key}");
    }
    let e = one_event(vec![kv("traceloop.prompt.key", s("later")), kv("driftwatch.prompt.id", s("first"))]);
    assert_eq!(e.prompt_id.as_deref(), Some("first"));
}

#[test]
fn content_rows() {
    let e = one_event(vec![
        kv("gen_ai.input.messages", s("[{\"role\":\"user\"}]")),
        kv("gen_ai.prompt", s("old")),
        kv("gen_ai.output.messages", s("[]")),
    ]);
    assert_eq!((e.input_content.as_deref(), e.output_content.as_deref()), (Some("[{\"role\":\"user\"}]"), Some("[]")));
    let e = one_event(vec![kv("gen_ai.prompt", s("p")), kv("gen_ai.completion", s("c"))]);
    assert_eq!((e.input_content.as_deref(), e.output_content.as_deref()), (Some("p"), Some("c")));
    let e = one_event(vec![
        kv("gen_ai.prompt.1.content", s("second")),
        kv("gen_ai.prompt.0.role", s("system")),
        kv("gen_ai.prompt.0.content", s("first")),
        kv("gen_ai.completion.0.content", s("done")),
    ]);
    assert_eq!((e.input_content.as_deref(), e.output_content.as_deref()), (Some("first\nsecond"), Some("done")));
    let e = one_event(vec![
        kv("llm.input_messages.0.message.content", s("q")),
        kv("llm.output_messages.0.message.content", s("a")),
    ]);
    assert_eq!((e.input_content.as_deref(), e.output_content.as_deref()), (Some("q"), Some("a")));
}

#[test]
fn old_content_span_events() {
    let mut with_events = span(1, vec![kv("gen_ai.operation.name", s("chat"))]);
    for (name, key, text) in
        [("gen_ai.content.prompt", "gen_ai.prompt", "hi"), ("gen_ai.content.completion", "gen_ai.completion", "hello")]
    {
        with_events.events.push(Event {
            name: name.to_owned(),
            attributes: vec![kv(key, s(text))],
            ..Default::default()
        });
    }
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![with_events]));
    let e = &out.events[0];
    assert_eq!((e.input_content.as_deref(), e.output_content.as_deref()), (Some("hi"), Some("hello")));
}

#[test]
fn the_inference_details_event_carries_content_and_the_span_wins() {
    let mut with_event =
        span(1, vec![kv("gen_ai.operation.name", s("chat")), kv("gen_ai.request.model", s("on-span"))]);
    with_event.events.push(Event {
        name: "gen_ai.client.inference.operation.details".to_owned(),
        attributes: vec![
            kv("gen_ai.request.model", s("on-event")),
            kv("gen_ai.input.messages", s(r#"[{"role":"user","parts":[{"type":"text","content":"q"}]}]"#)),
            kv("gen_ai.output.messages", s(r#"[{"role":"assistant","parts":[{"type":"text","content":"a"}]}]"#)),
        ],
        ..Default::default()
    });
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![with_event]));
    let e = &out.events[0];
    assert!(e.input_content.as_deref().is_some_and(|text| text.contains("\"q\"")), "{:?}", e.input_content);
    assert!(e.output_content.as_deref().is_some_and(|text| text.contains("\"a\"")), "{:?}", e.output_content);
    assert_eq!(e.request_model.as_deref(), Some("on-span"));
}

/// The details event restates the call: each row is read from the span (all its keys) before
/// the event, so a deprecated key on the span beats a current one on the event, and the event
/// still fills the rows the span leaves empty.
#[test]
fn a_deprecated_key_on_the_span_beats_a_current_one_on_the_details_event() {
    let mut with_event = span(
        1,
        vec![
            kv("gen_ai.operation.name", s("chat")),
            kv("gen_ai.usage.prompt_tokens", Value::IntValue(100)),
            kv("llm.response.model_name", s("on-span")),
        ],
    );
    with_event.events.push(Event {
        name: "gen_ai.client.inference.operation.details".to_owned(),
        attributes: vec![
            kv("gen_ai.usage.input_tokens", Value::IntValue(999)),
            kv("gen_ai.response.model", s("on-event")),
            kv("gen_ai.usage.output_tokens", Value::IntValue(20)),
            kv("gen_ai.prompt.0.content", s("from the event")),
        ],
        ..Default::default()
    });
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![with_event]));
    let e = &out.events[0];
    assert_eq!((e.input_tokens, e.output_tokens), (Some(100), Some(20)));
    assert_eq!(e.response_model.as_deref(), Some("on-span"));
    assert_eq!(e.input_content.as_deref(), Some("from the event"));
}

#[test]
fn event_id_is_lowercase_hex_trace_and_span() {
    let e = one_event(vec![]);
    assert_eq!(e.trace_id.as_deref(), Some(format!("{}01", "ab".repeat(15)).as_str()));
    assert_eq!(e.span_id.as_deref(), Some("cdcdcdcdcdcdcd01"));
    assert_eq!(e.event_id, format!("{}01{}01", "ab".repeat(15), "cd".repeat(7)));
    assert_eq!((e.source.as_ref(), e.cost_usd, e.content.as_ref()), (None, None, None));
}

#[test]
fn inference_rule_and_skipped_count() {
    let spans = vec![
        span(1, vec![kv("gen_ai.operation.name", s("chat"))]),
        span(2, vec![kv("gen_ai.operation.name", s("text_completion"))]),
        span(3, vec![kv("gen_ai.operation.name", s("generate_content"))]),
        span(4, vec![kv("gen_ai.operation.name", s("embeddings"))]),
        span(5, vec![kv("openinference.span.kind", s("LLM"))]),
        span(6, vec![kv("openinference.span.kind", s("EMBEDDING"))]),
        span(7, vec![kv("llm.request.type", s("rerank"))]),
        span(8, vec![kv("gen_ai.operation.name", s("execute_tool"))]),
        span(9, vec![kv("openinference.span.kind", s("CHAIN"))]),
        span(10, vec![kv("http.request.method", s("GET"))]),
    ];
    let out: Decoded = decode_traces(&traces(vec![kv("service.name", s("a"))], spans));
    assert_eq!((out.events.len(), out.skipped_spans, out.rejects.len()), (7, 3, 0));
}

/// Operation names are read as `normalize_operation` maps them, case and padding aside.
#[test]
fn inference_operations_are_recognised_in_any_case() {
    let spans = vec![
        span(1, vec![kv("gen_ai.operation.name", s("Chat"))]),
        span(2, vec![kv("gen_ai.operation.name", s("EMBEDDINGS"))]),
        span(3, vec![kv("gen_ai.operation.name", s(" Text_Completion "))]),
        span(4, vec![kv("gen_ai.operation.name", s("Execute_Tool"))]),
    ];
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], spans));
    let operations: Vec<&str> = out.events.iter().map(|e| e.operation.as_str()).collect();
    assert_eq!(operations, ["chat", "embeddings", "text_completion"]);
    assert_eq!((out.skipped_spans, out.rejects.len()), (1, 0));
}

#[test]
fn duplicate_span_is_kept_twice() {
    let one = span(1, vec![kv("gen_ai.operation.name", s("chat"))]);
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![one.clone(), one]));
    assert_eq!(out.events.len(), 2);
    assert_eq!(out.events[0].event_id, out.events[1].event_id);
}

#[test]
fn evaluation_span_event_becomes_feedback() {
    let mut evaluated = span(1, vec![kv("gen_ai.operation.name", s("chat"))]);
    evaluated.events.push(Event {
        name: "gen_ai.evaluation.result".to_owned(),
        time_unix_nano: T0 as u64 + 5,
        attributes: vec![
            kv("gen_ai.evaluation.name", s("hallucination")),
            kv("gen_ai.evaluation.score.value", Value::DoubleValue(0.8)),
        ],
        ..Default::default()
    });
    evaluated.events.push(Event {
        name: "annotation".to_owned(),
        attributes: vec![kv("annotation.name", s("user_thumbs")), kv("annotation.label", s("down"))],
        ..Default::default()
    });
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![evaluated]));
    assert_eq!((out.events.len(), out.feedback.len()), (1, 2));
    let f = &out.feedback[0];
    assert_eq!((f.name.as_str(), f.score_value, f.time), ("hallucination", Some(0.8), T0 + 5));
    assert_eq!(f.inference_id.as_deref(), Some(out.events[0].event_id.as_str()));
    assert!(out.feedback[1].is_flagged());
    assert_ne!(out.feedback[0].feedback_id, out.feedback[1].feedback_id);
}

/// Feedback recorded on a span rates that span's call: it reads the event's attributes, then
/// the span's, then the resource's, so the span's `driftwatch.app` beats the resource's
/// `service.name`, as it does for the call.
#[test]
fn evaluation_span_event_reads_the_event_then_the_span_then_the_resource() {
    let mut evaluated = span(
        1,
        vec![
            kv("gen_ai.operation.name", s("chat")),
            kv("driftwatch.app", s("where2eat")),
            kv("gen_ai.response.model", s("gpt-4o")),
            kv("gen_ai.response.id", s("resp-span")),
        ],
    );
    evaluated.events.push(Event {
        name: "gen_ai.evaluation.result".to_owned(),
        time_unix_nano: T0 as u64 + 5,
        attributes: vec![
            kv("gen_ai.evaluation.name", s("hallucination")),
            kv("gen_ai.evaluation.score.value", Value::DoubleValue(0.8)),
            kv("gen_ai.response.id", s("resp-event")),
        ],
        ..Default::default()
    });
    let resource = vec![kv("service.name", s("llm-gateway")), kv("deployment.environment.name", s("prod"))];
    let out = decode_traces(&traces(resource, vec![evaluated]));
    assert_eq!((out.events.len(), out.feedback.len()), (1, 1));
    let f = &out.feedback[0];
    assert_eq!((f.app.as_str(), out.events[0].app.as_str()), ("where2eat", "where2eat"));
    assert_eq!(f.response_model.as_deref(), Some("gpt-4o"));
    assert_eq!(f.response_id.as_deref(), Some("resp-event"));
    assert_eq!(f.environment.as_deref(), Some("prod"));
}
