//! Which OTLP attribute keys carry content a dead letter masks.
//!
//! The decoder reads content from a few keys (`is_content_key`); producers record it under many
//! more, which a dead letter would otherwise keep verbatim. These are the content keys of the
//! conventions the decoder maps and of the frameworks that name their own, as each one's registry
//! or source names them (case-sensitive in all of them, so matching is exact). Ids, names, models
//! and counts are never among them: they tell an operator why a payload was rejected.

use crate::decode::attributes::is_content_key;

/// Keys whose whole value is prompt, answer, tool or retrieved text.
const CONTENT_KEYS: &[&str] = &[
    // OpenTelemetry GenAI semantic conventions: the registry's attributes that "may contain
    // sensitive information", beside `gen_ai.{input,output}.messages` the decoder reads.
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.retrieval.query.text",
    "gen_ai.retrieval.documents",
    "gen_ai.memory.query.text",
    "gen_ai.memory.records",
    // GenAI message events (`gen_ai.user.message`, `gen_ai.choice`, ...) recorded as span events:
    // the Azure AI SDKs put the event body in `gen_ai.event.content`; others flatten the body's
    // fields (`content`, `tool_calls`, and a choice's `message`) into attributes.
    "gen_ai.event.content",
    "content",
    "message",
    "tool_calls",
    // OpenInference (Arize, `spec/semantic_conventions.md`); its flattened lists are below.
    "input.value",
    "output.value",
    "llm.prompts",
    "llm.function_call",
    "llm.prompt_template.template",
    "llm.prompt_template.variables",
    "reranker.query",
    "tool.json_schema",
    "tool.parameters",
    // OpenLLMetry (Traceloop, `opentelemetry-semantic-conventions-ai`).
    "traceloop.entity.input",
    "traceloop.entity.output",
    "traceloop.prompt.template",
    "traceloop.prompt.template_variables",
    "llm.content.completion.chunk",
    "mcp.request.argument",
    "mcp.response.value",
    // OpenLIT: `gen_ai.content.*` name its span events holding `gen_ai.prompt` and
    // `gen_ai.completion`, and are the attributes themselves where its conventions were ported
    // (Microsoft Dev Proxy); `gen_ai.tool.args` holds its tool-call arguments.
    "gen_ai.content.prompt",
    "gen_ai.content.completion",
    "gen_ai.content.revised_prompt",
    "gen_ai.tool.args",
    // Langfuse's OpenTelemetry attributes (the decoder reads its prompt name).
    "langfuse.trace.input",
    "langfuse.trace.output",
    "langfuse.observation.input",
    "langfuse.observation.output",
    // The Vercel AI SDK's own `ai.*` telemetry (ai-sdk.dev, "Telemetry: collected data"), which
    // recent versions send beside the `gen_ai.*` attributes.
    "ai.prompt",
    "ai.prompt.messages",
    "ai.prompt.tools",
    "ai.response.text",
    "ai.response.reasoning",
    "ai.response.toolCalls",
    "ai.response.object",
    "ai.toolCall.args",
    "ai.toolCall.result",
    "ai.value",
    "ai.values",
    // Pydantic AI, which Logfire shows (pydantic/pydantic-ai, `pydantic_ai/_instrumentation.py`
    // and its `Instrumentation` capability): a run's messages and answer, the version 1 message
    // events and tool spans, and the request parameters, which hold the tool definitions and the
    // instructions.
    "pydantic_ai.all_messages",
    "all_messages_events",
    "events",
    "final_result",
    "tool_arguments",
    "tool_response",
    "model_request_parameters",
    // Logfire's own LLM client instrumentation (pydantic/logfire,
    // `logfire/_internal/integrations/llm_providers/openai.py`): the request body and the reply.
    "request_data",
    "response_data",
    // MLflow tracing (mlflow/mlflow, `mlflow/tracing/constant.py`): span inputs and outputs, the
    // chat messages and tools of 2.x, a streamed chunk (a span event's attribute), a logged
    // trace's intermediate outputs, and the trace metadata previewing its request and response.
    "mlflow.spanInputs",
    "mlflow.spanOutputs",
    "mlflow.chat.messages",
    "mlflow.chat.tools",
    "mlflow.chunk.value",
    "mlflow.trace.intermediate_outputs",
    "mlflow.traceInputs",
    "mlflow.traceOutputs",
    // Google ADK (google/adk-python, `src/google/adk/telemetry/tracing.py` and
    // `_adk_attributes.py`): model requests and replies, tool calls, the data sent to a live
    // agent, and the web searches grounding wrote from the prompt.
    "gcp.vertex.agent.llm_request",
    "gcp.vertex.agent.llm_response",
    "gcp.vertex.agent.tool_call_args",
    "gcp.vertex.agent.tool_response",
    "gcp.vertex.agent.data",
    "adk.experimental.grounding.web_search_queries",
    // Spring AI (spring-projects/spring-ai, the `*ObservationDocumentation` and
    // `VectorStoreObservationAttributes` of each kind): the chat client's user and system text
    // and template parameters (1.0 milestones, before `gen_ai.prompt`), tool calls and the tool's
    // parameter schema, and vector store queries and the documents they return.
    "spring.ai.chat.client.user.text",
    "spring.ai.chat.client.user.params",
    "spring.ai.chat.client.system.text",
    "spring.ai.chat.client.system.params",
    "spring.ai.tool.call.arguments",
    "spring.ai.tool.call.result",
    "spring.ai.tool.definition.schema",
    "db.vector.query.content",
    "db.vector.query.response.documents",
    // AWS Strands Agents (strands-agents/sdk-python, `src/strands/telemetry/tracer.py`): the
    // agent's system prompt, and the tool result an event loop cycle's `gen_ai.choice` carries.
    "gen_ai.agent.system_prompt",
    "tool.result",
    // Semantic Kernel's agent spans up to 1.37 (microsoft/semantic-kernel,
    // `python/semantic_kernel/utils/telemetry/agent_diagnostics/gen_ai_attributes.py`); later
    // ones use `gen_ai.{input,output}.messages`.
    "gen_ai.agent.invocation_input",
    "gen_ai.agent.invocation_output",
    // CrewAI (crewAIInc/crewAI, `crewai/telemetry/telemetry.py`, the same keys on the spans of
    // OpenInference's CrewAI instrumentation): a crew's or flow's inputs, its agents' goals and
    // backstories, its tasks' descriptions, and their outputs.
    "crew_inputs",
    "flow_inputs",
    "crew_agents",
    "crew_tasks",
    "formatted_description",
    "formatted_expected_output",
    "task_output",
    "crew_output",
    "crew_tasks_output",
    // Haystack's content tags (deepset-ai/haystack, `haystack/core/pipeline/pipeline.py`,
    // `haystack/components/agents/agent.py`).
    "haystack.pipeline.input_data",
    "haystack.pipeline.output_data",
    "haystack.component.input",
    "haystack.component.output",
    "haystack.agent.input",
    "haystack.agent.output",
    // Logfire's message, which early Pydantic AI versions formatted from the prompt and answer.
    "logfire.msg",
    // LlamaIndex's instrumentation events and CrewAI's, flattened by the span processors that
    // forward them: the prompt a template produced, a retrieval's or query engine's question,
    // and an output's text.
    "prompt",
    "query",
    "value",
];

/// LiteLLM's raw-request attributes, `llm.<provider>.<parameter>`, one per key of the body sent
/// to the provider (BerriAI/litellm, `litellm/integrations/opentelemetry.py`,
/// `set_raw_request_attributes`), and of the raw reply: these parameters are its text.
const RAW_BODY_TEXT_PARAMETERS: &[&str] = &[
    "messages",
    "system",
    "system_instruction",
    "systemInstruction",
    "instructions",
    "contents",
    "content",
    "prompt",
    "input",
    "tools",
    "choices",
    "candidates",
    "output",
    "query",
    "documents",
];

/// The middle names of `llm.<name>.<field>` keys that are counts or amounts in the conventions
/// the decoder maps (OpenInference's `llm.token_count.prompt`, `llm.cost.prompt`), never a
/// LiteLLM provider.
const COUNT_NAMESPACES: &[&str] = &["token_count", "cost", "usage"];

/// Flattened lists, `<prefix><index>.<field>...`: a key under one of these is content when one of
/// its dot-separated fields is in [`CONTENT_FIELDS`], so `gen_ai.prompt.0.content` is and
/// `gen_ai.prompt.0.role` or the current `gen_ai.prompt.name` are not.
const INDEXED_PREFIXES: &[&str] = &[
    // Deprecated GenAI conventions and OpenLLMetry: `gen_ai.prompt.N.content`,
    // `gen_ai.completion.N.tool_calls.M.arguments`, `gen_ai.completion.N.function_call.arguments`.
    "gen_ai.prompt.",
    "gen_ai.completion.",
    // OpenLLMetry before `gen_ai.*` (`llm.prompts.N.content`, `llm.completions.N.content`), and
    // its tool definitions (`llm.request.functions.N.parameters`).
    "llm.prompts.",
    "llm.completions.",
    "llm.request.functions.",
    // OpenInference: `llm.input_messages.N.message.content`, `...message.contents.M.message_content.text`,
    // `...message.tool_calls.M.tool_call.function.arguments`, `llm.prompts.N.prompt.text`,
    // `llm.choices.N.completion.text`, `llm.tools.N.tool.json_schema`, a document's
    // `document.content`, `embedding.embeddings.N.embedding.text`.
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.choices.",
    "llm.tools.",
    "retrieval.documents.",
    "reranker.input_documents.",
    "reranker.output_documents.",
    "embedding.embeddings.",
];

/// The fields of a flattened list item that hold text (an image or audio `url` may be a data URL).
const CONTENT_FIELDS: &[&str] =
    &["content", "text", "arguments", "function_call_arguments_json", "url", "transcript", "json_schema", "parameters"];

/// Whether the value of the attribute `key` is content a dead letter masks: the decoder's content
/// keys, [`CONTENT_KEYS`], LiteLLM's raw request and reply text, and content fields of the
/// [`INDEXED_PREFIXES`] lists.
pub(super) fn carries_content(key: &str) -> bool {
    is_content_key(key)
        || CONTENT_KEYS.contains(&key)
        || is_raw_body_text(key)
        || INDEXED_PREFIXES.iter().any(|prefix| {
            key.strip_prefix(prefix)
                .is_some_and(|fields| fields.split('.').any(|field| CONTENT_FIELDS.contains(&field)))
        })
}

/// Whether `key` is `llm.<provider>.<parameter>` with a text parameter of a raw request or reply.
fn is_raw_body_text(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("llm.") else { return false };
    let mut names = rest.split('.');
    match (names.next(), names.next(), names.next()) {
        (Some(provider), Some(parameter), None) => {
            !COUNT_NAMESPACES.contains(&provider) && RAW_BODY_TEXT_PARAMETERS.contains(&parameter)
        }
        _ => false,
    }
}
