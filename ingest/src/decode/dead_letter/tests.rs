//! Content masking of dead-letter copies, one payload shape at a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
use prost::Message;

use super::{DeadLetterContent, carries_content, dead_letter_payload, fill_text_runs, mask_content};
use crate::decode::attributes::is_content_key;
use crate::decode::tests as decode_tests;
use crate::decode::{Decoded, Decoder, PayloadFormat};

const PROMPT: &str = "CONFIDENTIAL-PROMPT about project Falcon";
const ANSWER: &str = "SECRET-ANSWER naming the launch date";

fn masked(payload: &str) -> String {
    String::from_utf8(mask_content(payload.as_bytes()).into_owned()).unwrap()
}

fn assert_no_content(kept: &[u8]) {
    let kept = String::from_utf8_lossy(kept);
    for text in [PROMPT, ANSWER, "CONFIDENTIAL", "SECRET", "Falcon", "launch"] {
        assert!(!kept.contains(text), "{text:?} kept in {kept:?}");
    }
}

#[test]
fn content_keys_are_the_mapping_tables() {
    for key in [
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.prompt.0.content",
        "gen_ai.completion.12.content",
        "llm.input_messages.0.message.content",
        "llm.output_messages.3.message.content",
    ] {
        assert!(is_content_key(key), "{key}");
    }
    for key in ["gen_ai.request.model", "service.name", "gen_ai.prompt.0.role", "gen_ai.usage.input_tokens", ""] {
        assert!(!is_content_key(key), "{key}");
    }
}

#[test]
fn json_event_fields_become_placeholders_with_their_length() {
    let event = format!(
        r#"{{"id":"evt-1","app":"chat","input_tokens":"many","input":"{PROMPT}","output" : "{ANSWER}","note":"kept"}}"#
    );
    let expected = format!(
        r#"{{"id":"evt-1","app":"chat","input_tokens":"many","input":"[CONTENT {} bytes]","output" : "[CONTENT {} bytes]","note":"kept"}}"#,
        PROMPT.len(),
        ANSWER.len()
    );
    assert_eq!(masked(&event), expected);
    // Values of any type go whole; escaped quotes do not end a string; an escaped key is the key.
    let event = format!(r#"{{"input":["{PROMPT}",{{"a":1}}],"\u006futput":"say \"{ANSWER}\"","n":1}}"#);
    let kept = masked(&event);
    assert_no_content(kept.as_bytes());
    let value: serde_json::Value = serde_json::from_str(&kept).unwrap();
    assert_eq!(value["n"], 1);
    assert!(value["input"].as_str().unwrap().starts_with("[CONTENT "), "{kept}");
}

#[test]
fn otlp_json_content_attributes_and_bodies_are_masked_wherever_they_are() {
    let attribute = |key: &str, text: &str| format!(r#"{{"key":"{key}","value":{{"stringValue":"{text}"}}}}"#);
    let span = format!(
        r#"{{"name":"chat","attributes":[{},{},{},{{"value":{{"stringValue":"{ANSWER}"}},"key":"gen_ai.completion.0.content"}},{{"key":"nested","value":{{"kvlistValue":{{"values":[{}]}}}}}}],"events":[{{"name":"gen_ai.content.prompt","attributes":[{}]}}]}}"#,
        attribute("gen_ai.request.model", "gpt-4o"),
        attribute("gen_ai.input.messages", PROMPT),
        attribute("gen_ai.prompt.0.content", PROMPT),
        attribute("llm.output_messages.0.message.content", ANSWER),
        attribute("gen_ai.prompt", PROMPT),
    );
    let kept = masked(&span);
    assert_no_content(kept.as_bytes());
    let span: Span = serde_json::from_str(&kept).expect("still a span");
    assert_eq!(span.attributes[0].value, Some(AnyValue { value: Some(Value::StringValue("gpt-4o".to_owned())) }));
    let Some(Value::StringValue(text)) = span.attributes[1].value.as_ref().and_then(|v| v.value.as_ref()) else {
        panic!("a string placeholder: {kept}")
    };
    assert_eq!(*text, format!("[CONTENT {} bytes]", PROMPT.len()));

    let record = format!(r#"{{"eventName":"gen_ai.user.message","body":{{"kvlistValue":{{"values":[{}]}}}}}}"#, {
        attribute("content", PROMPT)
    });
    let kept = masked(&record);
    assert_no_content(kept.as_bytes());
    let record: LogRecord = serde_json::from_str(&kept).expect("still a log record");
    assert!(matches!(record.body.and_then(|b| b.value), Some(Value::StringValue(_))));
}

#[test]
fn json_cut_short_or_broken_loses_its_content_to_the_end() {
    for broken in [
        format!(r#"{{"id":"e1","input":"{PROMPT} and more"#),
        format!(r#"{{"id":"e1","input":["{PROMPT}", "#),
        format!(r#"{{"id":"e1" "input" "{PROMPT}" "output": "{ANSWER}" }}"#),
        format!(r#"{{"id":"e1","input":"{PROMPT}\"#),
        format!(r#"{{"id":"e1",,"output":{ANSWER}}}"#),
        format!(r#"{{"id":"e1", input: {PROMPT}, output: "{ANSWER}"}}"#),
    ] {
        let kept = masked(&broken);
        assert_no_content(kept.as_bytes());
        assert!(kept.starts_with(r#"{"id":"e1""#), "{kept}");
        assert!(kept.contains("[CONTENT "), "{kept}");
    }
    // JSON nested deeper than is walked: text runs are filled instead.
    let deep = format!(r#"{}{{"input":"{PROMPT}"}}"#, "[".repeat(1000));
    let kept = masked(&deep);
    assert_no_content(kept.as_bytes());
    assert_eq!(kept.len(), deep.len());
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn text(value: &str) -> Value {
    Value::StringValue(value.to_owned())
}

fn traces() -> TracesData {
    let span = Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        name: "chat".to_owned(),
        attributes: vec![
            kv("gen_ai.operation.name", text("chat")),
            kv("gen_ai.input.messages", text(PROMPT)),
            kv("gen_ai.prompt.0.content", text(PROMPT)),
            kv("tool", Value::KvlistValue(KeyValueList { values: vec![kv("gen_ai.completion", text(ANSWER))] })),
        ],
        events: vec![Event {
            name: "gen_ai.content.completion".to_owned(),
            attributes: vec![kv("gen_ai.output.messages", text(ANSWER))],
            ..Default::default()
        }],
        ..Default::default()
    };
    TracesData {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", text("chat"))], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
            ..Default::default()
        }],
    }
}

#[test]
fn protobuf_requests_are_masked_and_re_encoded() {
    let kept = mask_content(&traces().encode_to_vec()).into_owned();
    assert_no_content(&kept);
    let decoded = TracesData::decode(kept.as_slice()).expect("still a request");
    let span = &decoded.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.attributes[0], kv("gen_ai.operation.name", text("chat")));
    assert_eq!(span.attributes[1], kv("gen_ai.input.messages", text(&format!("[CONTENT {} bytes]", PROMPT.len()))));

    let logs = LogsData {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    event_name: "gen_ai.user.message".to_owned(),
                    body: Some(AnyValue { value: Some(text(PROMPT)) }),
                    attributes: vec![kv("gen_ai.output.messages", text(ANSWER)), kv("event.name", text("x"))],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let kept = mask_content(&logs.encode_to_vec()).into_owned();
    assert_no_content(&kept);
    let decoded = LogsData::decode(kept.as_slice()).expect("still a request");
    let record = &decoded.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.attributes[1], kv("event.name", text("x")));
}

#[test]
fn protobuf_that_does_not_decode_keeps_its_structure_and_no_long_text() {
    let mut broken = traces().encode_to_vec();
    broken.extend_from_slice(b"\xff\xff\xff");
    let kept = mask_content(&broken).into_owned();
    assert_no_content(&kept);
    assert_eq!(kept.len(), broken.len(), "in place");
    assert!(kept.ends_with(b"\xff\xff\xff"));
    // Short strings and the binary around them stay.
    assert!(kept.windows(4).any(|w| w == b"chat"));
    assert_eq!(fill_text_runs("ab\u{1}0123456789é\u{0}xyz".as_bytes()), "ab\u{1}************\u{0}xyz".as_bytes());
}

#[test]
fn kept_content_is_only_scrubbed_and_cut() {
    let event = format!(r#"{{"id":"evt-1","input":"{PROMPT} from jane@example.com"}}"#);
    let kept = dead_letter_payload(event.as_bytes(), 1024, DeadLetterContent::Keep);
    assert_eq!(String::from_utf8(kept).unwrap(), format!(r#"{{"id":"evt-1","input":"{PROMPT} from [EMAIL]"}}"#));
    let kept = dead_letter_payload(event.as_bytes(), 1024, DeadLetterContent::Mask);
    let len = PROMPT.len() + " from jane@example.com".len();
    assert_eq!(String::from_utf8(kept).unwrap(), format!(r#"{{"id":"evt-1","input":"[CONTENT {len} bytes]"}}"#));
}

/// The shapes that would make a careless walk quadratic, at the 4 MiB message bound: every
/// string a key to resolve, escapes everywhere, a content value never closed, attributes by
/// the thousand, nesting to the walked depth and past it. Each is read once.
#[test]
fn payloads_at_the_message_bound_are_masked_in_one_pass() {
    const BOUND: usize = 4 * 1024 * 1024;
    let repeat = |unit: &str| unit.repeat(BOUND / unit.len());
    let attribute = r#"{"value":{"stringValue":"CONFIDENTIAL"},"key":"gen_ai.prompt.7.content"},"#;
    let payloads = [
        format!("{{{}", repeat(r#""\u0069nput":"CONFIDENTIAL","#)),
        format!(r#"{{"input":"{}"#, repeat("\\\\\\\" SECRET ")),
        format!(r#"{{"attributes":[{}]}}"#, repeat(attribute)),
        format!("{}{{\"input\":\"SECRET\"", repeat(r#"{"a":["#)),
        repeat("{"),
        format!("  {}", repeat(" SECRET ")),
    ];
    for payload in payloads {
        let started = std::time::Instant::now();
        let kept = mask_content(payload.as_bytes());
        assert_no_content(&kept);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    }
}

// ---------------------------------------------------------------------------------------------
// Content the decoder does not read: every convention's content attributes are masked, the
// attributes that tell why a payload was rejected are not.

#[test]
fn content_keys_cover_every_convention_and_nothing_that_explains_a_reject() {
    for key in [
        // What the decoder reads itself.
        "gen_ai.input.messages",
        "gen_ai.prompt.3.content",
        "llm.output_messages.0.message.content",
        // OpenInference.
        "input.value",
        "output.value",
        "llm.prompts",
        "llm.prompts.0.prompt.text",
        "llm.choices.1.completion.text",
        "llm.input_messages.2.message.contents.0.message_content.text",
        "llm.input_messages.2.message.contents.1.message_content.image.image.url",
        "llm.output_messages.0.message.tool_calls.1.tool_call.function.arguments",
        "llm.output_messages.0.message.function_call_arguments_json",
        "llm.prompt_template.template",
        "llm.prompt_template.variables",
        "llm.tools.0.tool.json_schema",
        "retrieval.documents.4.document.content",
        "embedding.embeddings.0.embedding.text",
        // GenAI semantic conventions, current and deprecated, and their events on spans.
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.system_instructions",
        "gen_ai.output.messages",
        "gen_ai.tool.definitions",
        "gen_ai.event.content",
        "content",
        "message",
        "tool_calls",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.completion.0.content",
        "gen_ai.completion.0.tool_calls.2.arguments",
        "gen_ai.prompt.1.tool_calls.0.arguments",
        // OpenLLMetry.
        "traceloop.entity.input",
        "traceloop.entity.output",
        "llm.prompts.0.content",
        "llm.completions.0.content",
        // OpenLIT.
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        // The Vercel AI SDK.
        "ai.prompt.messages",
        "ai.response.text",
        "ai.response.toolCalls",
        "ai.toolCall.args",
        // Pydantic AI and Logfire.
        "pydantic_ai.all_messages",
        "all_messages_events",
        "final_result",
        "tool_arguments",
        "model_request_parameters",
        "request_data",
        // MLflow.
        "mlflow.spanInputs",
        "mlflow.spanOutputs",
        "mlflow.chat.messages",
        "mlflow.chunk.value",
        // Google ADK.
        "gcp.vertex.agent.llm_request",
        "gcp.vertex.agent.tool_response",
        "gcp.vertex.agent.data",
        // Spring AI.
        "spring.ai.chat.client.user.text",
        "spring.ai.tool.call.arguments",
        "db.vector.query.content",
        // Strands Agents, Semantic Kernel, CrewAI, Haystack.
        "gen_ai.agent.system_prompt",
        "tool.result",
        "gen_ai.agent.invocation_input",
        "crew_inputs",
        "crew_tasks",
        "haystack.component.input",
        "haystack.pipeline.output_data",
        // Logfire's message, LlamaIndex's and CrewAI's event fields.
        "logfire.msg",
        "prompt",
        "query",
        "value",
        // LiteLLM's raw request and reply (`llm.<provider>.<parameter>`).
        "llm.anthropic.messages",
        "llm.anthropic.system",
        "llm.openai.messages",
        "llm.openai.input",
        "llm.gemini.contents",
        "llm.vertex_ai.systemInstruction",
        "llm.openai.tools",
        "llm.openai.choices",
        "llm.anthropic.content",
    ] {
        assert!(carries_content(key), "{key} is content");
    }
    for key in [
        "",
        "service.name",
        "gen_ai.operation.name",
        "gen_ai.request.model",
        "gen_ai.response.id",
        "gen_ai.usage.input_tokens",
        "gen_ai.system",
        "gen_ai.tool.name",
        "gen_ai.tool.call.id",
        "gen_ai.prompt.name",
        "gen_ai.prompt.0.role",
        "gen_ai.completion.0.finish_reason",
        "gen_ai.completion.0.tool_calls.2.name",
        "gen_ai.completion.0.tool_calls.2.id",
        "gen_ai.prompt.",
        "input.mime_type",
        "llm.model_name",
        "llm.token_count.prompt",
        "llm.prompt_template.version",
        "llm.input_messages.2.message.role",
        "llm.input_messages.2.message.contents.0.message_content.type",
        "llm.output_messages.0.message.tool_calls.1.tool_call.id",
        "llm.output_messages.0.message.tool_calls.1.tool_call.function.name",
        "llm.tools.0.tool.name",
        "retrieval.documents.4.document.id",
        "traceloop.entity.name",
        "traceloop.prompt.key",
        "langfuse.prompt.name",
        "ai.model.id",
        "ai.usage.promptTokens",
        "ai.toolCall.name",
        "pydantic_ai.new_message_index",
        "agent_name",
        "logfire.msg_template",
        "logfire.json_schema",
        "mlflow.spanType",
        "mlflow.spanFunctionName",
        "mlflow.llm.model",
        "mlflow.chat.tokenUsage",
        "gcp.vertex.agent.event_id",
        "gcp.vertex.agent.invocation_id",
        "gcp.vertex.agent.session_id",
        "spring.ai.kind",
        "spring.ai.tool.definition.name",
        "spring.ai.chat.client.tool.names",
        "db.vector.query.top_k",
        "gen_ai.agent.name",
        "gen_ai.tool.status",
        "crew_id",
        "task_id",
        "haystack.component.name",
        "haystack.component.type",
        "haystack.agent.steps_taken",
        "error.type",
        "exception.message",
        // LiteLLM's raw request settings, and OpenInference's counts and amounts.
        "llm.anthropic.model",
        "llm.openai.temperature",
        "llm.openai.max_tokens",
        "llm.token_count.prompt",
        "llm.cost.prompt",
        "llm.usage.prompt_tokens",
        // The conventions are case-sensitive: these are other keys.
        "Input.Value",
        "GEN_AI.TOOL.CALL.ARGUMENTS",
        "gen_ai.prompt.0.Content",
        "Content",
        "mlflow.spaninputs",
        "GCP.VERTEX.AGENT.LLM_REQUEST",
    ] {
        assert!(!carries_content(key), "{key} is not content");
    }
}

/// The attributes of one convention: those holding content, and the values of its others that
/// a dead letter keeps.
struct Family {
    name: &'static str,
    attributes: Vec<KeyValue>,
    events: Vec<Event>,
    kept: &'static [&'static str],
}

fn array_of(values: &[&str]) -> Value {
    Value::ArrayValue(ArrayValue { values: values.iter().map(|v| AnyValue { value: Some(text(v)) }).collect() })
}

fn event(name: &str, attributes: Vec<KeyValue>) -> Event {
    Event { name: name.to_owned(), attributes, ..Default::default() }
}

/// Tool arguments and results that name the secret, as the conventions record them (JSON text).
const ARGUMENTS: &str = r#"{"project":"Falcon","query":"launch date"}"#;

fn families() -> Vec<Family> {
    vec![
        Family {
            name: "OpenInference",
            attributes: vec![
                kv("input.value", text(PROMPT)),
                kv("input.mime_type", text("text/plain")),
                kv("output.value", text(ANSWER)),
                kv("llm.input_messages.0.message.role", text("user")),
                kv("llm.input_messages.0.message.contents.0.message_content.type", text("text")),
                kv("llm.input_messages.0.message.contents.0.message_content.text", text(PROMPT)),
                kv("llm.output_messages.0.message.tool_calls.0.tool_call.id", text("call_kept_1")),
                kv("llm.output_messages.0.message.tool_calls.0.tool_call.function.name", text("lookup_weather")),
                kv("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments", text(ARGUMENTS)),
                kv("llm.prompts", array_of(&[PROMPT])),
                kv("llm.prompt_template.template", text("Tell me about {project} and its launch")),
                kv("llm.prompt_template.variables", text(ARGUMENTS)),
                kv("llm.prompt_template.version", text("template-v3")),
            ],
            events: vec![],
            kept: &["text/plain", "call_kept_1", "lookup_weather", "template-v3"],
        },
        Family {
            name: "GenAI semantic conventions",
            attributes: vec![
                kv("gen_ai.system_instructions", text(PROMPT)),
                kv("gen_ai.tool.definitions", text(ARGUMENTS)),
                kv("gen_ai.tool.name", text("lookup_weather")),
                kv("gen_ai.tool.call.id", text("call_kept_1")),
                kv("gen_ai.tool.call.arguments", text(ARGUMENTS)),
                kv("gen_ai.tool.call.result", text(ANSWER)),
                kv("gen_ai.prompt.name", text("support-triage")),
                kv("gen_ai.prompt.0.role", text("user")),
                kv("gen_ai.completion.0.tool_calls.0.name", text("lookup_weather")),
                kv("gen_ai.completion.0.tool_calls.0.arguments", text(ARGUMENTS)),
            ],
            events: vec![
                event(
                    "gen_ai.user.message",
                    vec![kv("gen_ai.system", text("openai")), kv("gen_ai.event.content", text(PROMPT))],
                ),
                event("gen_ai.choice", vec![kv("index", Value::IntValue(0)), kv("content", text(ANSWER))]),
            ],
            kept: &["support-triage", "call_kept_1", "lookup_weather", "gen_ai.choice", "openai"],
        },
        Family {
            name: "OpenLLMetry",
            attributes: vec![
                kv("traceloop.entity.name", text("answer_question")),
                kv("traceloop.entity.input", text(PROMPT)),
                kv("traceloop.entity.output", text(ANSWER)),
                kv("llm.prompts.0.role", text("system")),
                kv("llm.prompts.0.content", text(PROMPT)),
                kv("llm.completions.0.content", text(ANSWER)),
                kv("llm.completions.0.finish_reason", text("tool_calls")),
            ],
            events: vec![],
            kept: &["answer_question", "system", "tool_calls"],
        },
        Family {
            name: "OpenLIT",
            attributes: vec![kv("gen_ai.content.prompt", text(PROMPT))],
            events: vec![
                event("gen_ai.content.prompt", vec![kv("gen_ai.content.prompt", text(PROMPT))]),
                event("gen_ai.content.completion", vec![kv("gen_ai.content.completion", text(ANSWER))]),
            ],
            kept: &["gen_ai.content.completion"],
        },
        Family {
            name: "Pydantic AI and Logfire",
            attributes: vec![
                kv("agent_name", text("support_agent")),
                kv("model_name", text("claude-kept-model")),
                kv("logfire.msg_template", text("{agent_name} run")),
                kv("pydantic_ai.all_messages", text(PROMPT)),
                kv("pydantic_ai.new_message_index", Value::IntValue(2)),
                kv("all_messages_events", text(PROMPT)),
                kv("events", text(ANSWER)),
                kv("final_result", text(ANSWER)),
                kv("tool_arguments", text(ARGUMENTS)),
                kv("tool_response", text(ANSWER)),
                kv("model_request_parameters", text(ARGUMENTS)),
                kv("request_data", text(PROMPT)),
                kv("response_data", text(ANSWER)),
            ],
            events: vec![],
            kept: &["support_agent", "claude-kept-model", "{agent_name} run"],
        },
        Family {
            name: "MLflow",
            attributes: vec![
                kv("mlflow.spanType", text("CHAT_MODEL")),
                kv("mlflow.llm.model", text("claude-kept-model")),
                kv("mlflow.spanInputs", text(PROMPT)),
                kv("mlflow.spanOutputs", text(ANSWER)),
                kv("mlflow.chat.messages", text(PROMPT)),
                kv("mlflow.chat.tools", text(ARGUMENTS)),
                kv("mlflow.trace.intermediate_outputs", text(ANSWER)),
                kv("mlflow.traceInputs", text(PROMPT)),
                kv("mlflow.traceOutputs", text(ANSWER)),
            ],
            events: vec![event("mlflow.chunk.item.0", vec![kv("mlflow.chunk.value", text(ANSWER))])],
            kept: &["CHAT_MODEL", "claude-kept-model", "mlflow.chunk.item.0"],
        },
        Family {
            name: "Google ADK",
            attributes: vec![
                kv("gcp.vertex.agent.invocation_id", text("e-kept-invocation")),
                kv("gcp.vertex.agent.event_id", text("evt-kept-3")),
                kv("gcp.vertex.agent.llm_request", text(PROMPT)),
                kv("gcp.vertex.agent.llm_response", text(ANSWER)),
                kv("gcp.vertex.agent.tool_call_args", text(ARGUMENTS)),
                kv("gcp.vertex.agent.tool_response", text(ANSWER)),
                kv("gcp.vertex.agent.data", text(PROMPT)),
                kv("adk.experimental.grounding.web_search_queries", array_of(&["Falcon launch date"])),
                kv("adk.experimental.grounding.query_count", Value::IntValue(1)),
            ],
            events: vec![],
            kept: &["e-kept-invocation", "evt-kept-3", "adk.experimental.grounding.query_count"],
        },
        Family {
            name: "Spring AI",
            attributes: vec![
                kv("spring.ai.kind", text("chat_client")),
                kv("spring.ai.chat.client.user.text", text(PROMPT)),
                kv("spring.ai.chat.client.user.params", text(ARGUMENTS)),
                kv("spring.ai.chat.client.system.text", text(PROMPT)),
                kv("spring.ai.chat.client.system.params", text(ARGUMENTS)),
                kv("spring.ai.tool.definition.name", text("lookup_weather")),
                kv("spring.ai.tool.definition.schema", text(ARGUMENTS)),
                kv("spring.ai.tool.call.arguments", text(ARGUMENTS)),
                kv("spring.ai.tool.call.result", text(ANSWER)),
                kv("db.vector.query.content", text(PROMPT)),
                kv("db.vector.query.response.documents", text(ANSWER)),
                kv("db.vector.query.top_k", Value::IntValue(4)),
            ],
            events: vec![],
            kept: &["chat_client", "lookup_weather", "db.vector.query.top_k"],
        },
        Family {
            name: "Strands Agents",
            attributes: vec![
                kv("gen_ai.agent.name", text("Strands Agents")),
                kv("gen_ai.agent.system_prompt", text(PROMPT)),
                kv("gen_ai.tool.status", text("success")),
            ],
            events: vec![event("gen_ai.choice", vec![kv("message", text(ANSWER)), kv("tool.result", text(ARGUMENTS))])],
            kept: &["Strands Agents", "success"],
        },
        Family {
            name: "Semantic Kernel agents",
            attributes: vec![
                kv("gen_ai.agent.id", text("asst-kept-5")),
                kv("gen_ai.agent.invocation_input", text(PROMPT)),
                kv("gen_ai.agent.invocation_output", text(ANSWER)),
            ],
            events: vec![],
            kept: &["asst-kept-5"],
        },
        Family {
            name: "CrewAI",
            attributes: vec![
                kv("crew_key", text("crew-kept-key")),
                kv("task_id", text("task-kept-id")),
                kv("crew_inputs", text(ARGUMENTS)),
                kv("flow_inputs", text(ARGUMENTS)),
                kv("crew_agents", text(PROMPT)),
                kv("crew_tasks", text(PROMPT)),
                kv("formatted_description", text(PROMPT)),
                kv("formatted_expected_output", text(ANSWER)),
                kv("task_output", text(ANSWER)),
                kv("crew_output", text(ANSWER)),
                kv("crew_tasks_output", text(ANSWER)),
            ],
            events: vec![],
            kept: &["crew-kept-key", "task-kept-id"],
        },
        Family {
            name: "Haystack",
            attributes: vec![
                kv("haystack.component.type", text("OpenAIChatGenerator")),
                kv("haystack.component.input", text(PROMPT)),
                kv("haystack.component.output", text(ANSWER)),
                kv("haystack.pipeline.input_data", text(PROMPT)),
                kv("haystack.pipeline.output_data", text(ANSWER)),
                kv("haystack.agent.input", text(PROMPT)),
                kv("haystack.agent.output", text(ANSWER)),
                kv("haystack.agent.steps_taken", Value::IntValue(2)),
            ],
            events: vec![],
            kept: &["OpenAIChatGenerator", "haystack.agent.steps_taken"],
        },
    ]
}

/// A chat span of `family` that the decoder rejects for its input token count, in a request.
fn rejected_request(family: &Family) -> TracesData {
    let mut attributes = vec![
        kv("gen_ai.operation.name", text("chat")),
        kv("gen_ai.request.model", text("gpt-4o-mini")),
        kv("gen_ai.response.id", text("chatcmpl-kept-7")),
        kv("gen_ai.usage.input_tokens", text("many")),
    ];
    attributes.extend(family.attributes.iter().cloned());
    let mut span = decode_tests::span(7, attributes);
    span.events.clone_from(&family.events);
    decode_tests::traces(vec![kv("service.name", text("support-bot"))], vec![span])
}

/// What an operator needs to see why the span was rejected, and the family's other attributes.
fn assert_diagnosis_kept(family: &Family, kept: &[u8]) {
    let kept = String::from_utf8_lossy(kept);
    let always = ["gpt-4o-mini", "chatcmpl-kept-7", "gen_ai.usage.input_tokens", "many"];
    for value in always.iter().chain(family.kept) {
        assert!(kept.contains(value), "{}: {value:?} lost from {kept}", family.name);
    }
}

/// The one reject of decoding `payload`, its dead-letter payload.
fn rejected_payload(payload: &[u8], content: DeadLetterContent) -> Vec<u8> {
    let mut out = Decoded::default();
    Decoder::default().with_dead_letter_content(content).decode(
        payload,
        PayloadFormat::OtlpTraces,
        decode_tests::NOW,
        &mut out,
    );
    assert_eq!(out.events.len(), 0);
    assert_eq!(out.rejects.len(), 1, "{:?}", out.rejects);
    assert_eq!(out.rejects[0].reason, "invalid_field", "{:?}", out.rejects[0]);
    out.rejects[0].payload.clone().expect("an item reject keeps the span")
}

#[test]
fn a_rejected_span_keeps_no_content_of_any_convention_in_protobuf_or_otlp_json() {
    for family in families() {
        let request = rejected_request(&family);
        for (format, message) in
            [("protobuf", request.encode_to_vec()), ("OTLP/JSON", serde_json::to_vec(&request).unwrap())]
        {
            let kept = rejected_payload(&message, DeadLetterContent::Mask);
            assert_no_content(&kept);
            assert_diagnosis_kept(&family, &kept);
            assert!(String::from_utf8_lossy(&kept).contains("[CONTENT "), "{} {format}", family.name);
        }
    }
}

#[test]
fn a_whole_protobuf_request_keeps_no_content_of_any_convention() {
    for family in families() {
        let kept = dead_letter_payload(&rejected_request(&family).encode_to_vec(), 1 << 20, DeadLetterContent::Mask);
        assert_no_content(&kept);
        assert_diagnosis_kept(&family, &kept);
        let decoded = TracesData::decode(kept.as_slice()).expect("still a request");
        assert_eq!(
            decoded.resource_spans[0].scope_spans[0].spans[0].span_id,
            vec![0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 7]
        );
    }
}

#[test]
fn log_record_attributes_of_any_convention_are_masked() {
    let logs = LogsData {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    event_name: "gen_ai.choice".to_owned(),
                    attributes: vec![
                        kv("gen_ai.system", text("openai")),
                        kv("gen_ai.event.content", text(ANSWER)),
                        kv("gen_ai.tool.call.arguments", text(ARGUMENTS)),
                        kv("traceloop.entity.output", text(ANSWER)),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let kept = dead_letter_payload(&logs.encode_to_vec(), 1 << 20, DeadLetterContent::Mask);
    assert_no_content(&kept);
    let decoded = LogsData::decode(kept.as_slice()).expect("still a request");
    let record = &decoded.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.attributes[0], kv("gen_ai.system", text("openai")));
    let kept = dead_letter_payload(&serde_json::to_vec(&logs).unwrap(), 1 << 20, DeadLetterContent::Mask);
    assert_no_content(&kept);
    let decoded: LogsData = serde_json::from_slice(&kept).expect("still OTLP/JSON");
    let record = &decoded.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.attributes[0], kv("gen_ai.system", text("openai")));
}

/// A rejected message cut short inside a content value the decoder does not read: the part
/// before the cut is masked to the end.
#[test]
fn otlp_json_cut_inside_a_content_attribute_keeps_none_of_it() {
    for family in families() {
        let json = String::from_utf8(serde_json::to_vec(&rejected_request(&family)).unwrap()).unwrap();
        let Some(at) = json.find("CONFIDENTIAL").or_else(|| json.find("SECRET")).or_else(|| json.find("Falcon")) else {
            panic!("{}: no content in {json}", family.name)
        };
        let cut = &json[..at + 6];
        let kept = String::from_utf8(dead_letter_payload(cut.as_bytes(), 1 << 20, DeadLetterContent::Mask)).unwrap();
        let fragment = &json[at..at + 6];
        assert!(!kept.contains(fragment), "{}: {fragment:?} kept in {kept}", family.name);
        assert!(kept.contains("gpt-4o-mini"), "{kept}");
    }
}

#[test]
fn content_of_every_convention_is_kept_when_every_app_retains_it() {
    for family in families() {
        let request = rejected_request(&family);
        for message in [request.encode_to_vec(), serde_json::to_vec(&request).unwrap()] {
            let kept = String::from_utf8(rejected_payload(&message, DeadLetterContent::Keep)).unwrap();
            assert!(kept.contains("CONFIDENTIAL") || kept.contains("SECRET"), "{}: {kept}", family.name);
            assert!(!kept.contains("[CONTENT "), "{}: {kept}", family.name);
        }
    }
}
