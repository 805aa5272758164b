//! Spans as real instrumentation libraries emit them (the instrumentation audit's payloads in
//! `audit_payloads/`, one OTLP/JSON `ExportTraceServiceRequest` each), read as OTLP/JSON and as
//! protobuf alike, and the mapping rows those libraries needed.

use driftwatch_lake::model::InferenceEvent;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

use super::{assert_same, decode, decode_traces, kv, s, span, traces};
use crate::decode::{DecodeConfig, Decoded, Decoder, PayloadFormat, normalize_operation, normalize_provider};
use crate::enrich::{ModelRegistry, price_event};

const OPENLIT: &str = include_str!("audit_payloads/P9_openlit_service_name_on_span.json");
const VERCEL_AI_SDK: &str = include_str!("audit_payloads/P5_vercel_ai_sdk.json");
const LITELLM_ASYNC: &str = include_str!("audit_payloads/P7_litellm_async_operation.json");
const OPENINFERENCE_EMBEDDINGS: &str = include_str!("audit_payloads/P6_oi_embeddings_model.json");
const LANGCHAIN_OVER_OPENAI: &str = include_str!("audit_payloads/P1_oi_langchain_plus_openai.json");
const ANTHROPIC_SDK: &str = include_str!("audit_payloads/A1_anthropic_sdk_builtin_span_cache_write_key.json");
const BEDROCK_CONVERSE: &str = include_str!("audit_payloads/B1_bedrock_converse_cache_exclusive_dead_letter.json");
const OPENLIT_ANTHROPIC: &str =
    include_str!("audit_payloads/O2_openlit_1_45_anthropic_cache_exclusive_dead_letter.json");
const OPENLIT_GEMINI: &str =
    include_str!("audit_payloads/O4_openlit_1_45_gemini_thoughts_outside_output_unstreamed_ttft.json");
const OPENLIT_GEMINI_STREAM: &str =
    include_str!("audit_payloads/O5_openlit_1_45_gemini_stream_span_shorter_than_ttft.json");
const OPENINFERENCE_GEMINI: &str =
    include_str!("audit_payloads/G1_openinference_google_genai_ok_but_finish_reason.json");

/// Decode one payload as OTLP/JSON and, re-encoded, as protobuf (where the wire reader must
/// agree with prost); both must give the same result, which is returned.
fn decode_both_ways(json: &str) -> Result<Decoded, serde_json::Error> {
    // The prost types' serde wants `values` in an array (OpenLIT writes empty ones as `{}`,
    // which the decoder's OTLP/JSON path accepts).
    let data: TracesData = serde_json::from_str(&json.replace(r#""arrayValue":{}"#, r#""arrayValue":{"values":[]}"#))?;
    let via_protobuf = decode_traces(&data);
    let via_json = decode(json.as_bytes(), PayloadFormat::OtlpTraces);
    assert_same(&via_json, &via_protobuf);
    assert_eq!(via_json.rejects, vec![], "unexpected rejects");
    Ok(via_json)
}

/// The cost the shipped registry gives the event.
fn registry_cost(event: &InferenceEvent) -> Result<Option<f64>, Box<dyn std::error::Error>> {
    let registry = ModelRegistry::from_yaml_str(include_str!("../../../../config/models.yaml"), "models.yaml")?;
    Ok(price_event(&registry, event).map(|priced| priced.cost_usd))
}

fn event<'e>(out: &'e Decoded, span_id: &str) -> &'e InferenceEvent {
    let found = out.events.iter().find(|e| e.span_id.as_deref() == Some(span_id));
    found.unwrap_or_else(|| panic!("no event for span {span_id}"))
}

/// OpenLIT stamps `service.name="default"` and `deployment.environment="default"` on every span;
/// the app and environment are the resource's (DESIGN §3.2).
#[test]
fn openlit_service_name_on_the_span_does_not_rename_the_app() -> Result<(), serde_json::Error> {
    let out = decode_both_ways(OPENLIT)?;
    assert_eq!(out.events.len(), 1);
    let e = &out.events[0];
    assert_eq!((e.app.as_str(), e.environment.as_deref()), ("where2eat", Some("prod")));
    // Unstreamed (`gen_ai.request.is_stream` false): OpenLIT's time to first token is the whole
    // latency, and no time to first chunk.
    assert_eq!(e.ttft_ms, None);
    Ok(())
}

/// Time to first token only where a first chunk comes before the end: a streamed call keeps
/// it; an unstreamed call and an embedding do not, whatever their instrumentation says.
#[test]
fn time_to_first_token_is_kept_only_for_streamed_answers() {
    let ttft = |extra: Vec<_>| {
        let mut attributes = vec![kv("gen_ai.server.time_to_first_token", Value::DoubleValue(0.02))];
        attributes.extend(extra);
        let out = decode_traces(&traces(vec![kv("service.name", s("app"))], vec![span(1, attributes)]));
        assert_eq!(out.rejects, vec![]);
        out.events.first().map(|e| e.ttft_ms)
    };
    let stream = |streamed| kv("gen_ai.request.is_stream", Value::BoolValue(streamed));
    assert_eq!(ttft(vec![kv("gen_ai.operation.name", s("chat")), stream(true)]), Some(Some(20.0)));
    assert_eq!(ttft(vec![kv("gen_ai.operation.name", s("chat"))]), Some(Some(20.0)), "not said: kept");
    assert_eq!(ttft(vec![kv("gen_ai.operation.name", s("chat")), stream(false)]), Some(None));
    assert_eq!(ttft(vec![kv("gen_ai.operation.name", s("embeddings"))]), Some(None));
}

/// The current environment key on a span loses to the deprecated one on the resource: the
/// resource says where the app runs. `driftwatch.app` on the span still names the app. A span
/// names the app and environment only where its resource names none (no key, or the SDKs'
/// `unknown_service` default).
#[test]
fn app_and_environment_come_from_the_resource_before_the_span() {
    let resource = vec![kv("service.name", s("where2eat")), kv("deployment.environment", s("prod"))];
    let on_span = vec![
        kv("gen_ai.operation.name", s("chat")),
        kv("service.name", s("default")),
        kv("deployment.environment.name", s("default")),
    ];
    let out = decode_traces(&traces(resource.clone(), vec![span(1, on_span.clone())]));
    let e = &out.events[0];
    assert_eq!((e.app.as_str(), e.environment.as_deref()), ("where2eat", Some("prod")));

    let mut overridden = on_span.clone();
    overridden.push(kv("driftwatch.app", s("override")));
    let out = decode_traces(&traces(resource, vec![span(1, overridden)]));
    assert_eq!(out.events[0].app, "override");

    // Earlier releases read these spans' names, and upgraded daemons must not dead-letter them.
    for unnamed_resource in [vec![], vec![kv("service.name", s("unknown_service:python3"))]] {
        let out = decode_traces(&traces(unnamed_resource.clone(), vec![span(1, on_span.clone())]));
        assert_eq!(out.rejects, vec![], "{unnamed_resource:?}");
        let e = &out.events[0];
        assert_eq!((e.app.as_str(), e.environment.as_deref()), ("default", Some("default")));
    }
    let unnamed = vec![kv("service.name", s("unknown_service"))];
    let out = decode_traces(&traces(unnamed, vec![span(1, vec![kv("gen_ai.operation.name", s("chat"))])]));
    assert_eq!(out.events[0].app, "unknown_service", "the SDK's default stands when nothing else names the app");
}

/// The Vercel AI SDK: only its provider-call spans (`doGenerate`, `doEmbed`) are calls; the
/// outer `ai.generateText`/`ai.embed` spans restate their usage.
#[test]
fn vercel_ai_sdk_provider_calls_are_events_and_outer_spans_are_not() -> Result<(), Box<dyn std::error::Error>> {
    let out = decode_both_ways(VERCEL_AI_SDK)?;
    assert_eq!((out.events.len(), out.skipped_spans), (2, 2));

    let chat = event(&out, "5a00000000000042");
    assert_eq!((chat.operation.as_str(), chat.provider.as_deref()), ("chat", Some("openai")));
    assert_eq!(chat.request_model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(chat.response_model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(
        (chat.input_tokens, chat.output_tokens, chat.cache_read_tokens, chat.reasoning_tokens),
        (Some(11), Some(7), Some(3), Some(2))
    );
    assert_eq!((chat.finish_reason.as_deref(), chat.response_id.as_deref()), (Some("stop"), Some("chatcmpl-1")));
    assert!(registry_cost(chat)?.is_some_and(|usd| usd > 0.0), "the chat call is priced");

    let embed = event(&out, "5a00000000000044");
    assert_eq!((embed.operation.as_str(), embed.provider.as_deref()), ("embeddings", Some("openai")));
    assert_eq!(embed.request_model.as_deref(), Some("text-embedding-3-small"));
    assert_eq!(embed.response_model.as_deref(), Some("text-embedding-3-small"));
    assert_eq!((embed.input_tokens, embed.output_tokens), (Some(5), None));
    assert!(registry_cost(embed)?.is_some_and(|usd| usd > 0.0), "the embedding call is priced");
    Ok(())
}

/// Which `ai.operationId` values are calls, and of which operation.
#[test]
fn vercel_ai_sdk_operation_ids() {
    let calls = [
        ("ai.generateText.doGenerate", "chat"),
        ("ai.streamText.doStream", "chat"),
        ("ai.generateObject.doGenerate", "chat"),
        ("ai.streamObject.doStream", "chat"),
        ("ai.embed.doEmbed", "embeddings"),
        ("ai.embedMany.doEmbed", "embeddings"),
    ];
    let outer =
        ["ai.generateText", "ai.streamText", "ai.generateObject", "ai.streamObject", "ai.embed", "ai.embedMany"];
    let others = ["ai.toolCall", "ai.rerank.doRerank"];
    let mut spans = Vec::new();
    for (n, id) in calls.iter().map(|(id, _)| *id).chain(outer).chain(others).enumerate() {
        let n = u8::try_from(n + 1).unwrap_or(u8::MAX);
        spans.push(span(n, vec![kv("ai.operationId", s(id)), kv("ai.model.id", s("gpt-4o-mini"))]));
    }
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], spans));
    let operations: Vec<&str> = out.events.iter().map(|e| e.operation.as_str()).collect();
    let expected: Vec<&str> = calls.iter().map(|(_, operation)| *operation).collect();
    assert_eq!(operations, expected);
    assert_eq!((out.skipped_spans, out.rejects.len()), (8, 0), "the outer spans and the other operations are skipped");
}

/// A streamed call's own `ai.*` keys stand in when the GenAI ones are missing; its time to the
/// first chunk is in milliseconds.
#[test]
fn vercel_ai_sdk_keys_are_read_after_the_genai_ones() {
    let streamed = vec![
        kv("ai.operationId", s("ai.streamText.doStream")),
        kv("ai.model.provider", s("openai.responses")),
        kv("ai.model.id", s("gpt-4o-mini")),
        kv("ai.response.msToFirstChunk", Value::DoubleValue(22.5)),
        kv("ai.response.finishReason", s("length")),
        kv("ai.response.id", s("resp_2")),
        kv("ai.response.model", s("gpt-4o-mini-2024-07-18")),
        kv("ai.usage.cachedInputTokens", Value::IntValue(4)),
        kv("ai.usage.reasoningTokens", Value::IntValue(1)),
        kv("gen_ai.usage.input_tokens", Value::IntValue(11)),
        kv("gen_ai.usage.output_tokens", Value::IntValue(7)),
    ];
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![span(1, streamed)]));
    let e = &out.events[0];
    assert_eq!((e.provider.as_deref(), e.operation.as_str()), (Some("openai"), "chat"));
    assert_eq!(
        (e.request_model.as_deref(), e.response_model.as_deref()),
        (Some("gpt-4o-mini"), Some("gpt-4o-mini-2024-07-18"))
    );
    assert_eq!((e.finish_reason.as_deref(), e.response_id.as_deref()), (Some("length"), Some("resp_2")));
    assert_eq!((e.cache_read_tokens, e.reasoning_tokens, e.ttft_ms), (Some(4), Some(1), Some(22.5)));
}

/// AI SDK provider ids are `<provider>.<api>`; the provider is the part before the API.
#[test]
fn provider_ids_with_an_api_suffix_name_the_provider() {
    for (raw, expected) in [
        ("openai.chat", "openai"),
        ("openai.responses", "openai"),
        ("openai.embedding", "openai"),
        ("OpenAI.Completion", "openai"),
        ("anthropic.messages", "anthropic"),
        ("openai.image", "openai"),
        ("azure.ai.openai", "azure.ai.openai"),
        ("az.ai.openai", "azure.ai.openai"),
        ("gcp.vertex_ai", "gcp.vertex_ai"),
        ("vertex_ai", "gcp.vertex_ai"),
        ("aws.bedrock", "aws.bedrock"),
        (".chat", ".chat"),
        ("chat", "chat"),
    ] {
        assert_eq!(normalize_provider(raw), expected, "{raw}");
    }
}

/// LiteLLM names the operation after its (async) function and writes the finish reasons as a
/// JSON array in a string.
#[test]
fn litellm_async_operations_and_finish_reason_text() -> Result<(), serde_json::Error> {
    let out = decode_both_ways(LITELLM_ASYNC)?;
    let operations: Vec<&str> = out.events.iter().map(|e| e.operation.as_str()).collect();
    assert_eq!(operations, ["chat", "embeddings"]);
    assert_eq!(out.events[0].finish_reason.as_deref(), Some("stop"));
    // Its own cost figure, `gen_ai.cost.total_cost`, is the reported cost.
    assert_eq!(out.events[0].reported_cost_usd, Some(5.625e-6));
    Ok(())
}

#[test]
fn litellm_operation_names_are_normalised() {
    for (raw, expected) in [
        ("acompletion", "chat"),
        ("AEmbedding", "embeddings"),
        ("atext_completion", "text_completion"),
        ("embedding", "embeddings"),
        // OpenLLMetry's `llm.request.type` for the legacy completions API.
        ("completion", "text_completion"),
        ("aresponses", "aresponses"),
        ("Execute_Tool", "execute_tool"),
    ] {
        assert_eq!(normalize_operation(raw), expected, "{raw}");
    }
    // A LiteLLM alias alone marks an inference span, as the name it stands for would.
    let only_operation = span(1, vec![kv("gen_ai.operation.name", s("acompletion"))]);
    let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![only_operation]));
    assert_eq!((out.events.len(), out.skipped_spans), (1, 0));
}

/// A JSON array in a string gives its first element; an empty one counts as absent; any other
/// string is the reason itself.
#[test]
fn finish_reasons_written_as_json_text() {
    let cases = [
        (vec![kv("gen_ai.response.finish_reasons", s(r#"["length","stop"]"#))], Some("length")),
        (vec![kv("gen_ai.response.finish_reasons", s(r#" [ "stop" ] "#))], Some("stop")),
        (
            vec![kv("gen_ai.response.finish_reasons", s("[]")), kv("llm.response.finish_reason", s("stop"))],
            Some("stop"),
        ),
        (vec![kv("gen_ai.response.finish_reasons", s("[stop"))], Some("[stop")),
        (vec![kv("llm.response.finish_reason", s("tool_calls"))], Some("tool_calls")),
    ];
    for (attrs, expected) in cases {
        let mut attributes = vec![kv("gen_ai.operation.name", s("chat"))];
        attributes.extend(attrs);
        let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![span(1, attributes)]));
        assert_eq!(out.events[0].finish_reason.as_deref(), expected);
    }
}

/// OpenInference embedding spans name the model in `embedding.model_name` only.
#[test]
fn openinference_embedding_model_name_is_the_request_model() -> Result<(), Box<dyn std::error::Error>> {
    let out = decode_both_ways(OPENINFERENCE_EMBEDDINGS)?;
    assert_eq!(out.events.len(), 1);
    let e = &out.events[0];
    assert_eq!(e.operation, "embeddings");
    assert_eq!(
        (e.request_model.as_deref(), e.response_model.as_deref()),
        (Some("text-embedding-3-small"), Some("text-embedding-3-small"))
    );
    assert!(registry_cost(e)?.is_some_and(|usd| usd > 0.0), "the embedding call is priced");
    Ok(())
}

/// OpenInference's LangChain and OpenAI instrumentations both report one call (in two traces):
/// counted twice by default, once when the framework's scope is skipped, in both encodings.
#[test]
fn a_skipped_instrumentation_scope_leaves_one_span_per_call() -> Result<(), serde_json::Error> {
    let both = decode_both_ways(LANGCHAIN_OVER_OPENAI)?;
    assert_eq!((both.events.len(), both.skipped_spans), (2, 1), "the chain span is no call");

    let config = DecodeConfig {
        skip_instrumentation_scopes: vec!["openinference.instrumentation.langchain".to_owned()],
        ..DecodeConfig::default()
    };
    let decoder = Decoder::new(config);
    let data: TracesData = serde_json::from_str(LANGCHAIN_OVER_OPENAI)?;
    for (payload, encoding) in
        [(LANGCHAIN_OVER_OPENAI.as_bytes().to_vec(), "OTLP/JSON"), (data.encode_to_vec(), "protobuf")]
    {
        let mut out = Decoded::default();
        decoder.decode(&payload, PayloadFormat::OtlpTraces, super::NOW, &mut out);
        let spans: Vec<_> = out.events.iter().filter_map(|e| e.span_id.as_deref()).collect();
        assert_eq!(spans, ["5a00000000000003"], "{encoding}: the client's span alone");
        assert_eq!(out.skipped_spans, 2, "{encoding}: the framework's two spans, counted");
        assert_eq!(out.events[0].input_tokens, Some(11), "{encoding}");
    }
    Ok(())
}

/// What the provider bills for the second audit's Anthropic and Bedrock calls: 100 uncached, 1000
/// cache-read and 2000 cache-written input tokens, 50 output tokens. Sonnet 4.5: 3.00 / 0.30 /
/// 3.75 / 15.00 per 1M; Claude 3.5 Haiku on Bedrock: 0.80 / 0.08 / 1.00 / 4.00.
const SONNET_BILL: f64 = (100.0 * 3.0 + 1000.0 * 0.30 + 2000.0 * 3.75 + 50.0 * 15.0) / 1e6;
const HAIKU_ON_BEDROCK_BILL: f64 = (100.0 * 0.80 + 1000.0 * 0.08 + 2000.0 * 1.00 + 50.0 * 4.0) / 1e6;

/// Priced at 2026-06-01, when every model of these payloads has its price (the tests decode at
/// 2025-06-01, before Sonnet 4.5 was released).
fn assert_billed(event: &InferenceEvent, bill: f64) -> Result<(), Box<dyn std::error::Error>> {
    let later = InferenceEvent { time: 1_780_272_000_000_000_000, ..event.clone() };
    let cost = registry_cost(&later)?.ok_or("unpriced")?;
    assert!((cost - bill).abs() < 1e-12, "priced {cost}, billed {bill}");
    Ok(())
}

/// The Anthropic SDK's own spans name the cache writes `gen_ai.usage.cache_write.input_tokens`:
/// they were priced as plain input (-17 %).
#[test]
fn the_anthropic_sdks_own_cache_write_key_is_read() -> Result<(), Box<dyn std::error::Error>> {
    let out = decode_both_ways(ANTHROPIC_SDK)?;
    let e = &out.events[0];
    assert_eq!((e.input_tokens, e.cache_read_tokens, e.cache_write_tokens), (Some(3100), Some(1000), Some(2000)));
    assert_billed(e, SONNET_BILL)
}

/// Bedrock Converse (botocore instrumentation) and OpenLIT's Anthropic spans copy the provider's
/// input tokens, which leave the cache out: the calls were dead letters. The cache counts exceed
/// the input, so they are added, and the calls priced as billed.
#[test]
fn input_tokens_reported_without_the_cache_get_it_added() -> Result<(), Box<dyn std::error::Error>> {
    for (payload, bill) in [(BEDROCK_CONVERSE, HAIKU_ON_BEDROCK_BILL), (OPENLIT_ANTHROPIC, SONNET_BILL)] {
        let out = decode_both_ways(payload)?;
        let e = &out.events[0];
        assert_eq!((e.input_tokens, e.cache_read_tokens, e.cache_write_tokens), (Some(3100), Some(1000), Some(2000)));
        assert_billed(e, bill)?;
    }
    Ok(())
}

/// OpenLIT 1.45 says a call is unstreamed in the conventions' `gen_ai.request.stream`: its
/// time to first token (the whole latency) is not kept. OpenInference's finish reason key.
#[test]
fn openlit_unstreamed_and_openinference_finish_reason() -> Result<(), Box<dyn std::error::Error>> {
    let out = decode_both_ways(OPENLIT_GEMINI)?;
    assert_eq!(out.events[0].ttft_ms, None);
    let out = decode_both_ways(OPENINFERENCE_GEMINI)?;
    assert_eq!(out.events[0].finish_reason.as_deref(), Some("STOP"));
    Ok(())
}

/// OpenLIT 1.45 starts its streamed Gemini span when the stream has ended: the span (0.28 ms) is
/// shorter than its own first token (11.4 ms). The call was a dead letter; it is kept, priced,
/// without the impossible figure, and the drop counted.
#[test]
fn a_first_token_after_the_calls_end_drops_the_figure_not_the_call() -> Result<(), serde_json::Error> {
    let out = decode_both_ways(OPENLIT_GEMINI_STREAM)?;
    let e = &out.events[0];
    assert_eq!((e.ttft_ms, e.input_tokens, out.dropped_ttfts), (None, Some(1100), 1));
    Ok(())
}

// The thirty-second session's audit of five instrumentations against a loopback fake of the
// OpenAI and Anthropic APIs (generator in `audit_payloads/generator/`). Times shifted to T0.
const OPENINFERENCE_0_1_66: &str = include_str!("audit_payloads/R1_openinference_0_1_66_openai_and_anthropic.json");
const OPENLLMETRY_0_62_STREAM: &str =
    include_str!("audit_payloads/R2_openllmetry_0_62_openai_stream_chunk_events.json");
const OPENLIT_1_34_FAILURES: &str = include_str!("audit_payloads/R3_openlit_1_34_failed_calls_without_attributes.json");
const ANTHROPIC_SDK_2_17: &str = include_str!("audit_payloads/R4_anthropic_sdk_2_17_stop_reason.json");
const OPENAI_V2_2_4: &str = include_str!("audit_payloads/R5_openai_v2_2_4_error_type_as_python_class.json");
const OPENAI_V2_2_1: &str = include_str!("audit_payloads/R6_openai_v2_2_1_served_tier_under_request_key.json");

fn by_response_id<'e>(out: &'e Decoded, response_id: &str) -> &'e InferenceEvent {
    let found = out.events.iter().find(|e| e.response_id.as_deref() == Some(response_id));
    found.unwrap_or_else(|| panic!("no event with response id {response_id}"))
}

fn errors(out: &Decoded) -> Vec<&InferenceEvent> {
    out.events.iter().filter(|e| e.status == driftwatch_lake::model::CallStatus::Error).collect()
}

/// OpenInference's OpenAI spans name only the answering snapshot (`llm.model_name`); the model
/// asked for is in `llm.invocation_parameters`, the only model a failed call names. Its
/// Anthropic spans split the answer into parts, its tool calls hold only arguments, and its
/// streamed calls mark the first token with an event.
#[test]
fn openinference_request_model_answer_parts_and_first_token() -> Result<(), serde_json::Error> {
    let out = decode_both_ways(OPENINFERENCE_0_1_66)?;
    let chat = out.events.iter().find(|e| e.finish_reason.as_deref() == Some("stop")).expect("the chat call");
    assert_eq!(chat.request_model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(chat.response_model.as_deref(), Some("gpt-4o-mini-2024-07-18"), "a snapshot swap shows");
    assert_eq!(chat.output_content.as_deref(), Some("Your order ships today."));
    assert_eq!(chat.ttft_ms, None, "not streamed");

    let stream = out.events.iter().find(|e| e.finish_reason.as_deref() == Some("length")).expect("the stream");
    let ttft = stream.ttft_ms.expect("the first-token event's time");
    // The fake server waits 150 ms before its first chunk.
    assert!((150.0..400.0).contains(&ttft), "{ttft}");
    assert!(ttft < stream.latency_ms.expect("latency"), "{ttft}");

    let tool = out.events.iter().find(|e| e.finish_reason.as_deref() == Some("tool_calls")).expect("tool call");
    assert_eq!(tool.output_content.as_deref(), Some(r#"{"city": "Paris"}"#), "the arguments are the answer");

    let failed = errors(&out);
    let models: Vec<_> = failed.iter().map(|e| e.request_model.as_deref()).collect();
    assert_eq!(models, [Some("fail-429"), Some("fail-500"), Some("fail-429")], "every failure names its model");
    assert_eq!(failed[0].error_type.as_deref(), Some("openai.RateLimitError"));

    let anthropic = out.events.iter().find(|e| e.finish_reason.as_deref() == Some("end_turn")).expect("claude");
    assert_eq!(anthropic.output_content.as_deref(), Some("Bonjour."), "the answer's text part");
    assert_eq!(anthropic.request_model.as_deref(), Some("claude-3-5-sonnet-latest"));
    assert_eq!(anthropic.response_model.as_deref(), Some("claude-3-5-sonnet-20241022"));
    let streamed = out.events.iter().find(|e| e.finish_reason.as_deref() == Some("max_tokens")).expect("stream");
    assert_eq!(streamed.output_content.as_deref(), Some("Il était une fois."));
    Ok(())
}

/// OpenLLMetry records no time to first token but one event per streamed chunk: the first
/// chunk's is it. Its unstreamed calls say `gen_ai.is_streaming` false.
#[test]
fn openllmetry_first_chunk_event_is_the_time_to_first_token() -> Result<(), serde_json::Error> {
    let out = decode_both_ways(OPENLLMETRY_0_62_STREAM)?;
    let stream = by_response_id(&out, "chatcmpl-RI32-stream");
    let ttft = stream.ttft_ms.expect("the first chunk event's time");
    assert!((150.0..400.0).contains(&ttft) && ttft < stream.latency_ms.expect("latency"), "{ttft}");
    let unstreamed: Vec<_> = out.events.iter().filter(|e| e.response_id.is_none()).map(|e| e.ttft_ms).collect();
    assert!(unstreamed.iter().all(Option::is_none), "{unstreamed:?}");
    Ok(())
}

/// OpenLIT's failed calls carry no attribute at all: they are calls by scope, status and the
/// `{operation} {model}` name, counted as errors of their app, not skipped.
#[test]
fn openlit_failed_calls_are_counted_as_errors() -> Result<(), serde_json::Error> {
    let out = decode_both_ways(OPENLIT_1_34_FAILURES)?;
    let failed = errors(&out);
    let seen: Vec<_> = failed.iter().map(|e| (e.operation.as_str(), e.request_model.as_deref())).collect();
    assert_eq!(seen, [("chat", Some("fail-429")), ("chat", Some("fail-500")), ("chat", Some("fail-429"))]);
    let providers: Vec<_> = failed.iter().map(|e| e.provider.as_deref()).collect();
    assert_eq!(providers, [Some("openai"), Some("openai"), Some("anthropic")], "by the client's exception class");
    assert!(failed.iter().all(|e| e.app != "default" && e.latency_ms.is_some()), "{failed:?}");
    assert_eq!(failed[0].error_type.as_deref(), Some("openai.RateLimitError"), "the exception event's type");
    assert_eq!(out.skipped_spans, 0);
    // OpenLIT writes the tier that served the call under the request key, and a cost of 0
    // where it has no price (here, every call: its price list was not downloaded).
    let ok = out.events.iter().find(|e| e.response_id.as_deref() == Some("chatcmpl-RI32-chat")).expect("chat");
    assert_eq!(ok.service_tier.as_deref(), Some("default"));
    assert!(out.events.iter().all(|e| e.reported_cost_usd.is_none()), "no figure, not free calls");
    assert_eq!(out.dropped_reported_costs, 0, "nothing malformed was dropped");

    // Other scopes' spans named like calls stay skipped; so do OpenLIT's spans of other kinds.
    let lone = |scope: &str, name: &str, error: bool| {
        let mut span = span(1, vec![]);
        span.name = name.to_owned();
        if error {
            span.status = Some(opentelemetry_proto::tonic::trace::v1::Status { code: 2, message: String::new() });
        }
        let mut data = traces(vec![kv("service.name", s("bot"))], vec![span]);
        data.resource_spans[0].scope_spans[0].scope =
            Some(opentelemetry_proto::tonic::common::v1::InstrumentationScope {
                name: scope.to_owned(),
                ..Default::default()
            });
        decode_traces(&data)
    };
    assert_eq!(lone("openlit", "chat gpt-4o", true).events.len(), 1);
    for (scope, name, error) in
        [("openlit", "chat gpt-4o", false), ("my.app", "chat gpt-4o", true), ("openlit", "retrieve docs", true)]
    {
        let out = lone(scope, name, error);
        assert_eq!((out.events.len(), out.skipped_spans), (0, 1), "{scope} {name:?} error={error}");
    }
    Ok(())
}

/// The Anthropic SDK's own spans give the finish reason only as `anthropic.message.stop_reason`.
#[test]
fn the_anthropic_sdks_stop_reason_is_the_finish_reason() -> Result<(), serde_json::Error> {
    let out = decode_both_ways(ANTHROPIC_SDK_2_17)?;
    assert_eq!(by_response_id(&out, "msg_RI32_0001").finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(by_response_id(&out, "msg_RI32_stream").finish_reason.as_deref(), Some("max_tokens"));
    Ok(())
}

/// util-genai 1.1 writes `error.type` as Python prints a class; it is stored as every other
/// instrumentation names the class, so one failure is one label value.
#[test]
fn an_error_type_spelt_as_a_python_class_is_its_name() -> Result<(), serde_json::Error> {
    let out = decode_both_ways(OPENAI_V2_2_4)?;
    let types: Vec<_> = errors(&out).iter().map(|e| e.error_type.clone()).collect();
    assert_eq!(types, [Some("openai.RateLimitError".to_owned()), Some("openai.InternalServerError".to_owned())]);
    Ok(())
}

/// openai-v2 2.1 writes the tier that served an unstreamed call under the request key; the
/// response key wins where both are present, and a request's `auto` names no tier.
#[test]
fn a_tier_under_the_request_key_is_read_after_the_response_keys() -> Result<(), serde_json::Error> {
    let out = decode_both_ways(OPENAI_V2_2_1)?;
    let tiers: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.status != driftwatch_lake::model::CallStatus::Error)
        .map(|e| e.service_tier.as_deref())
        .collect();
    assert!(!tiers.is_empty() && tiers.iter().all(|tier| *tier == Some("default")), "{tiers:?}");
    Ok(())
}

// What JavaScript instrumentations emitted against the same fake APIs (thirty-third session's
// audit; harness in `audit_payloads/generator/js/`). Times shifted to T0.
const AI_SDK_6: &str = include_str!("audit_payloads/J1_ai_sdk_6_content_and_cache_write.json");
const AI_SDK_7_OTEL: &str = include_str!("audit_payloads/J2_ai_sdk_7_otel_ttft_and_nested_embeddings.json");
const TRACELOOP_JS_ANTHROPIC: &str = include_str!("audit_payloads/J3_traceloop_js_anthropic_input_without_cache.json");
const OPENINFERENCE_LANGCHAIN_JS: &str =
    include_str!("audit_payloads/J4_openinference_langchain_js_provider_and_stack.json");

/// The AI SDK's provider calls carry their messages and answer in `ai.*` keys (its outer spans
/// repeat them, and are not calls), and an Anthropic call's cache writes in
/// `ai.usage.inputTokenDetails.cacheWriteTokens`.
#[test]
fn ai_sdk_content_and_cache_writes_are_read() -> Result<(), Box<dyn std::error::Error>> {
    let out = decode_both_ways(AI_SDK_6)?;
    let chat = by_response_id(&out, "chatcmpl-RI32-chat");
    assert!(chat.input_content.as_deref().is_some_and(|input| input.contains("When does my order ship?")));
    assert_eq!(chat.output_content.as_deref(), Some("Your order ships today."));
    let tool = by_response_id(&out, "chatcmpl-RI32-tool");
    assert!(tool.output_content.as_deref().is_some_and(|answer| answer.contains("get_weather")), "{tool:?}");
    let anthropic = by_response_id(&out, "msg_RI32_0001");
    assert_eq!(
        (anthropic.input_tokens, anthropic.cache_read_tokens, anthropic.cache_write_tokens),
        (Some(230), Some(60), Some(20))
    );
    Ok(())
}

/// The AI SDK's OpenTelemetry integration writes the time to first chunk under the name of the
/// conventions' client metric, and wraps each embedding call in a span of the same operation
/// (which the pipeline skips: `pipeline::wrapped`).
#[test]
fn ai_sdk_otel_first_chunk_and_its_nested_embedding_spans() -> Result<(), Box<dyn std::error::Error>> {
    let out = decode_both_ways(AI_SDK_7_OTEL)?;
    let stream = by_response_id(&out, "chatcmpl-RI32-stream");
    let ttft = stream.ttft_ms.ok_or("a time to first token")?;
    assert!((ttft - 215.404).abs() < 0.01, "{ttft}");
    // Each embedding call is reported twice, its span inside a wrapper of the same operation: the
    // decoder says which span holds which, for the pipeline to skip the wrapper.
    let embeddings: Vec<usize> =
        (0..out.events.len()).filter(|&event| out.events[event].operation == "embeddings").collect();
    assert_eq!(embeddings.len(), 2);
    let nesting = |event: usize| out.nested.iter().find(|span| span.event == event).copied();
    let (outer, inner) = (nesting(embeddings[1]).ok_or("nesting")?, nesting(embeddings[0]).ok_or("nesting")?);
    assert_eq!(inner.parent, Some(outer.span_id));
    assert_eq!(out.events[inner.event].input_tokens, Some(9), "the inner span has the usage");
    // Chat calls: two OpenAI, one tool call, two failures each side... one span per call.
    let calls = out.events.iter().filter(|e| e.operation == "chat").count();
    assert_eq!(calls, 8);
    Ok(())
}

/// OpenLLMetry JS's Anthropic instrumentation (0.27) copies Anthropic's usage: its input tokens
/// leave out a cache smaller than they are, which is added for that instrumentation's releases.
#[test]
fn traceloop_js_anthropic_input_gets_its_cache() -> Result<(), Box<dyn std::error::Error>> {
    let out = decode_both_ways(TRACELOOP_JS_ANTHROPIC)?;
    let inputs: Vec<_> =
        out.events.iter().map(|e| (e.input_tokens, e.cache_read_tokens, e.cache_write_tokens)).collect();
    assert!(inputs.contains(&(Some(230), Some(60), Some(20))), "150 + 60 + 20: {inputs:?}");
    assert!(inputs.contains(&(Some(250), Some(80), Some(0))), "170 + 80: {inputs:?}");
    // A release that may count as the conventions do is left alone.
    let later = TRACELOOP_JS_ANTHROPIC.replace(r#""version":"0.27.0""#, r#""version":"0.28.0""#);
    assert_ne!(later, TRACELOOP_JS_ANTHROPIC, "the payload names its release");
    let out = decode_both_ways(&later)?;
    assert!(out.events.iter().any(|e| e.input_tokens == Some(150)));
    Ok(())
}

/// OpenInference's LangChain.js spans name their provider only in `metadata`'s `ls_provider`,
/// and append the error's stack trace to the status message.
#[test]
fn langchain_js_provider_and_a_status_message_with_a_stack() -> Result<(), Box<dyn std::error::Error>> {
    let out = decode_both_ways(OPENINFERENCE_LANGCHAIN_JS)?;
    assert!(!out.events.is_empty() && out.events.iter().all(|e| e.provider.as_deref() == Some("openai")));
    let failed = errors(&out);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error_type.as_deref(), Some("429 fake 429"), "the first line, no stack");
    Ok(())
}

#[test]
fn release_bounds() {
    for (version, at_most) in [
        ("0.27.0", true),
        ("0.9.1", true),
        ("0.28.0", false),
        ("1.0.0", false),
        ("", false),
        ("x", false),
        ("v0.27.3-beta", true),
    ] {
        assert_eq!(crate::decode::otlp_traces::release_at_most(version, (0, 27)), at_most, "{version}");
    }
}
