//! The attribute mapping table (DESIGN §3.2) as data.
//!
//! OTLP attributes enter as `&[KeyValue]` lists (resource, span, span event or
//! log record) decoded by prost, or one by one as borrowed [`AttrValue`]s from the
//! wire reader (`otlp_wire`). [`Attrs`] indexes one list in a single pass: every key the
//! mapping table knows gets a fixed slot, and the flattened message keys
//! (`gen_ai.prompt.N.content`, `llm.input_messages.N.message.content`, ...)
//! are collected in index order. [`View`] layers a span's table over its
//! resource's table (a span event's over both, for feedback recorded on a span),
//! with the span's content events behind, and answers "first present wins"
//! questions with typed conversions. The trace and log decoders read canonical
//! fields from it.
//!
//! One pass with a `match` on the key keeps the per-span cost linear in the
//! number of attributes instead of one scan per mapping-table row.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use super::otlp_wire;
use super::{Error, Result};

macro_rules! keys {
    ($($name:ident = $key:literal,)*) => {
        /// Every attribute key the mapping table reads.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Key { $($name,)* }

        /// Number of [`Key`] slots in an [`Attrs`] table.
        const KEY_COUNT: usize = [$($key,)*].len();

        #[cfg(test)]
        const ALL_KEYS: [Key; KEY_COUNT] = [$(Key::$name,)*];

        impl Key {
            /// The attribute key as producers write it; also used in reject details.
            pub(crate) fn name(self) -> &'static str {
                match self { $(Key::$name => $key,)* }
            }

            fn lookup(key: &str) -> Option<Key> {
                match key { $($key => Some(Key::$name),)* _ => None }
            }

            /// [`Key::lookup`] on bytes that may not be UTF-8 (a match is ASCII).
            pub(crate) fn lookup_bytes(key: &[u8]) -> Option<Key> {
                $(if key == $key.as_bytes() { return Some(Key::$name); })*
                None
            }
        }
    };
}

keys! {
    OperationName = "gen_ai.operation.name",
    OiSpanKind = "openinference.span.kind",
    LlmRequestType = "llm.request.type",
    ProviderName = "gen_ai.provider.name",
    System = "gen_ai.system",
    LlmSystem = "llm.system",
    LlmProvider = "llm.provider",
    AiModelProvider = "ai.model.provider",
    AiOperationId = "ai.operationId",
    RequestModel = "gen_ai.request.model",
    LlmRequestModelName = "llm.request.model_name",
    LlmModelName = "llm.model_name",
    LlmInvocationParameters = "llm.invocation_parameters",
    AiModelId = "ai.model.id",
    EmbeddingModelName = "embedding.model_name",
    ResponseModel = "gen_ai.response.model",
    LlmResponseModelName = "llm.response.model_name",
    AiResponseModel = "ai.response.model",
    InputTokens = "gen_ai.usage.input_tokens",
    PromptTokens = "gen_ai.usage.prompt_tokens",
    LlmPromptTokens = "llm.token_count.prompt",
    AiUsageTokens = "ai.usage.tokens",
    OutputTokens = "gen_ai.usage.output_tokens",
    CompletionTokens = "gen_ai.usage.completion_tokens",
    LlmCompletionTokens = "llm.token_count.completion",
    CacheReadTokens = "gen_ai.usage.cache_read.input_tokens",
    CacheReadTokensOld = "gen_ai.usage.cache_read_input_tokens",
    LlmCacheReadTokens = "llm.token_count.prompt_details.cache_read",
    AiCachedInputTokens = "ai.usage.cachedInputTokens",
    CacheWriteTokens = "gen_ai.usage.cache_creation.input_tokens",
    CacheWriteTokensOld = "gen_ai.usage.cache_creation_input_tokens",
    CacheWriteTokensAnthropicSdk = "gen_ai.usage.cache_write.input_tokens",
    LlmCacheWriteTokens = "llm.token_count.prompt_details.cache_write",
    ReasoningTokens = "gen_ai.usage.reasoning.output_tokens",
    ReasoningTokensOld = "gen_ai.usage.reasoning_tokens",
    LlmReasoningTokens = "llm.token_count.completion_details.reasoning",
    AiReasoningTokens = "ai.usage.reasoningTokens",
    UsageCost = "gen_ai.usage.cost",
    LlmCostTotal = "llm.cost.total",
    LiteLlmTotalCost = "gen_ai.cost.total_cost",
    RequestIsStream = "gen_ai.request.is_stream",
    IsStreaming = "gen_ai.is_streaming",
    RequestStream = "gen_ai.request.stream",
    TimeToFirstChunk = "gen_ai.response.time_to_first_chunk",
    ServerTimeToFirstToken = "gen_ai.server.time_to_first_token",
    AiMsToFirstChunk = "ai.response.msToFirstChunk",
    ErrorType = "error.type",
    ExceptionType = "exception.type",
    FinishReasons = "gen_ai.response.finish_reasons",
    LlmFinishReason = "llm.response.finish_reason",
    OiFinishReason = "llm.finish_reason",
    AiFinishReason = "ai.response.finishReason",
    AnthropicStopReason = "anthropic.message.stop_reason",
    ResponseId = "gen_ai.response.id",
    OpenAiResponseServiceTier = "openai.response.service_tier",
    OpenAiResponseServiceTierOld = "gen_ai.openai.response.service_tier",
    OpenLitResponseServiceTier = "gen_ai.response.service_tier",
    OpenAiRequestServiceTier = "openai.request.service_tier",
    OpenAiRequestServiceTierOld = "gen_ai.openai.request.service_tier",
    RequestServiceTier = "gen_ai.request.service_tier",
    AiResponseId = "ai.response.id",
    DwPromptId = "driftwatch.prompt.id",
    TraceloopPromptId = "traceloop.prompt.key",
    LangfusePromptName = "langfuse.prompt.name",
    DwPromptVersion = "driftwatch.prompt.version",
    TraceloopPromptVersion = "traceloop.prompt.version",
    LangfusePromptVersion = "langfuse.prompt.version",
    InputMessages = "gen_ai.input.messages",
    Prompt = "gen_ai.prompt",
    OutputMessages = "gen_ai.output.messages",
    Completion = "gen_ai.completion",
    GoldenCase = "driftwatch.golden.case",
    App = "driftwatch.app",
    ServiceName = "service.name",
    EnvironmentName = "deployment.environment.name",
    Environment = "deployment.environment",
    EventName = "event.name",
    EvaluationName = "gen_ai.evaluation.name",
    EvaluationScoreValue = "gen_ai.evaluation.score.value",
    EvaluationScoreLabel = "gen_ai.evaluation.score.label",
    AnnotationName = "annotation.name",
    AnnotationScore = "annotation.score",
    AnnotationLabel = "annotation.label",
    // Keys few producers write, last: `Key::lookup_bytes` tries the keys in this order.
    OiMetadata = "metadata",
    AiCacheWriteTokens = "ai.usage.inputTokenDetails.cacheWriteTokens",
    ClientTimeToFirstChunk = "gen_ai.client.operation.time_to_first_chunk",
    AiPromptMessages = "ai.prompt.messages",
    AiResponseText = "ai.response.text",
    AiResponseToolCalls = "ai.response.toolCalls",
}

/// Mapping-table rows, in priority order: the first present key wins.
pub(crate) mod rows {
    use super::Key::{self, *};

    pub(crate) const APP: &[Key] = &[App, ServiceName];
    pub(crate) const ENVIRONMENT: &[Key] = &[EnvironmentName, Environment];
    /// Keys read from the resource first (DESIGN §3.2), and from the item's own attributes only
    /// when the resource has none or names no service (the SDKs' `unknown_service` default):
    /// OpenLIT stamps `service.name` and `deployment.environment` as `"default"` on every span,
    /// whatever the resource says, while a producer without a configured resource may name its
    /// service on each span.
    pub(crate) const RESOURCE_FIRST: &[Key] = &[ServiceName, EnvironmentName, Environment];
    /// Read with [`View::provider`](super::View::provider). The Vercel AI SDK's provider id
    /// (`openai.chat`) after the conventions': its do* spans repeat it in `gen_ai.system`, except
    /// the embedding calls. Then the `ls_provider` of OpenInference's `metadata` (JSON), where
    /// its LangChain.js spans name their provider and nowhere else.
    pub(crate) const PROVIDER: &[Key] = &[ProviderName, System, LlmSystem, LlmProvider, AiModelProvider];
    pub(crate) const OPERATION: &[Key] = &[OperationName, LlmRequestType];
    /// Read with [`View::model`](super::View::model). OpenInference's OpenAI spans name only the
    /// answering snapshot in `llm.model_name`: the model asked for is the `model` of their
    /// `llm.invocation_parameters` (JSON), read before it. Then the AI SDK's model id, then
    /// OpenInference's embedding spans' only model key.
    pub(crate) const REQUEST_MODEL: &[Key] =
        &[RequestModel, LlmRequestModelName, LlmInvocationParameters, LlmModelName, AiModelId, EmbeddingModelName];
    /// OpenInference's `llm.model_name` last: the answering model where its instrumentations
    /// know it (OpenAI's), the requested one otherwise, which is then the request model too.
    pub(crate) const RESPONSE_MODEL: &[Key] = &[ResponseModel, LlmResponseModelName, AiResponseModel, LlmModelName];
    /// `ai.usage.tokens`: the AI SDK's embedding calls count their input there.
    pub(crate) const INPUT_TOKENS: &[Key] = &[InputTokens, PromptTokens, LlmPromptTokens, AiUsageTokens];
    pub(crate) const OUTPUT_TOKENS: &[Key] = &[OutputTokens, CompletionTokens, LlmCompletionTokens];
    pub(crate) const CACHE_READ_TOKENS: &[Key] =
        &[CacheReadTokens, CacheReadTokensOld, LlmCacheReadTokens, AiCachedInputTokens];
    /// The Anthropic SDKs' own spans write `cache_write`, not the conventions' `cache_creation`;
    /// the AI SDK's last.
    pub(crate) const CACHE_WRITE_TOKENS: &[Key] =
        &[CacheWriteTokens, CacheWriteTokensOld, LlmCacheWriteTokens, CacheWriteTokensAnthropicSdk, AiCacheWriteTokens];
    pub(crate) const REASONING_TOKENS: &[Key] =
        &[ReasoningTokens, ReasoningTokensOld, LlmReasoningTokens, AiReasoningTokens];
    /// LiteLLM's OTel callback last (it also writes the cost's parts, which are not read).
    pub(crate) const REPORTED_COST: &[Key] = &[UsageCost, LlmCostTotal, LiteLlmTotalCost];
    /// Seconds in all: the current semconv's, the name of its client metric (as the AI SDK's
    /// OpenTelemetry integration writes it on spans), then OpenLIT's.
    pub(crate) const TTFT: &[Key] = &[TimeToFirstChunk, ClientTimeToFirstChunk, ServerTimeToFirstToken];
    /// Milliseconds: the AI SDK's, read only when [`TTFT`] has no value.
    pub(crate) const TTFT_MS: &[Key] = &[AiMsToFirstChunk];
    pub(crate) const ERROR_TYPE: &[Key] = &[ErrorType, ExceptionType];
    /// OpenInference's own key (`llm.finish_reason`) after OpenLLMetry's; the Anthropic Python
    /// SDK's own spans' last.
    pub(crate) const FINISH_REASON: &[Key] =
        &[FinishReasons, LlmFinishReason, OiFinishReason, AiFinishReason, AnthropicStopReason];
    pub(crate) const RESPONSE_ID: &[Key] = &[ResponseId, AiResponseId];
    /// The tier that served the call (what is billed); OpenLIT's key last. Then the tier asked
    /// for, which serves a `flex` or `priority` request, and under which OpenLIT and
    /// openai-v2 2.1 write the tier that served the call; `auto` names no tier
    /// ([`normalize_service_tier`]).
    pub(crate) const SERVICE_TIER: &[Key] = &[
        OpenAiResponseServiceTier,
        OpenAiResponseServiceTierOld,
        OpenLitResponseServiceTier,
        OpenAiRequestServiceTier,
        OpenAiRequestServiceTierOld,
        RequestServiceTier,
    ];
    pub(crate) const PROMPT_ID: &[Key] = &[DwPromptId, TraceloopPromptId, LangfusePromptName];
    pub(crate) const PROMPT_VERSION: &[Key] = &[DwPromptVersion, TraceloopPromptVersion, LangfusePromptVersion];
    /// The AI SDK's provider calls' messages (JSON) last.
    pub(crate) const INPUT: &[Key] = &[InputMessages, Prompt, AiPromptMessages];
    /// The AI SDK's answer text last, then its tool calls (JSON), the answer of a call that only
    /// calls tools.
    pub(crate) const OUTPUT: &[Key] = &[OutputMessages, Completion, AiResponseText, AiResponseToolCalls];
    pub(crate) const GOLDEN_CASE: &[Key] = &[GoldenCase];
    pub(crate) const FEEDBACK_NAME: &[Key] = &[EvaluationName, AnnotationName];
    pub(crate) const FEEDBACK_SCORE: &[Key] = &[EvaluationScoreValue, AnnotationScore];
    pub(crate) const FEEDBACK_LABEL: &[Key] = &[EvaluationScoreLabel, AnnotationLabel];
}

impl Key {
    /// True for a key read from the resource first ([`rows::RESOURCE_FIRST`]). A `matches!`, not
    /// a search of that list: every attribute lookup asks.
    fn resource_first(self) -> bool {
        let resource_first = matches!(self, Key::ServiceName | Key::EnvironmentName | Key::Environment);
        debug_assert_eq!(resource_first, rows::RESOURCE_FIRST.contains(&self));
        resource_first
    }
}

/// Flattened, indexed message content keys (OpenLLMetry and OpenInference). OpenInference also
/// splits a message into parts (`.message.contents.M.message_content.text`, as its Anthropic
/// spans write every answer) and writes a tool call's arguments
/// (`.message.tool_calls.M.tool_call.function.arguments`), the whole answer of a call that only
/// calls tools. The tool's name is not read as content: dead letters keep it to explain a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flat {
    /// `gen_ai.prompt.N.content`
    Prompt = 0,
    /// `gen_ai.completion.N.content`
    Completion = 1,
    /// `llm.input_messages.N.message.content`
    OiInput = 2,
    /// `llm.output_messages.N.message.content`
    OiOutput = 3,
}

/// The content slot of a flattened key, with its place among the slot's parts: message `N` first,
/// then its plain text, its parts `M` in order, its tool calls' arguments `M` in order.
fn parse_flat(key: &str) -> Option<(Flat, u64)> {
    let (flat, rest) = if let Some(rest) = key.strip_prefix("gen_ai.prompt.") {
        return Some((Flat::Prompt, message_place(rest.strip_suffix(".content")?)?));
    } else if let Some(rest) = key.strip_prefix("gen_ai.completion.") {
        return Some((Flat::Completion, message_place(rest.strip_suffix(".content")?)?));
    } else if let Some(rest) = key.strip_prefix("llm.input_messages.") {
        (Flat::OiInput, rest)
    } else if let Some(rest) = key.strip_prefix("llm.output_messages.") {
        (Flat::OiOutput, rest)
    } else {
        return None;
    };
    let (index, rest) = rest.split_once('.')?;
    let message = message_place(index)?;
    let rest = rest.strip_prefix("message.")?;
    let within = if rest == "content" {
        0
    } else if let Some(part) = rest.strip_prefix("contents.").and_then(|r| r.strip_suffix(".message_content.text")) {
        1 + u64::from(part.parse::<u16>().ok()?)
    } else if let Some(call) =
        rest.strip_prefix("tool_calls.").and_then(|r| r.strip_suffix(".tool_call.function.arguments"))
    {
        (1 << 17) + u64::from(call.parse::<u16>().ok()?)
    } else {
        return None;
    };
    Some((flat, message + within))
}

/// The place of message `index` among its slot's parts: room for 2^18 parts per message.
fn message_place(index: &str) -> Option<u64> {
    Some(u64::from(index.parse::<u32>().ok()?) << 18)
}

/// True for an attribute the mapping reads as prompt or answer text: a key of the INPUT or
/// OUTPUT rows, or a flattened indexed message key. Dead letters mask these values when content
/// is not retained, so the table above stays the one list of content keys.
pub(crate) fn is_content_key(key: &str) -> bool {
    Key::lookup(key).is_some_and(|key| rows::INPUT.contains(&key) || rows::OUTPUT.contains(&key))
        || parse_flat(key).is_some()
}

/// One attribute value, borrowed from a prost `AnyValue` or straight from the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AttrValue<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Array(AttrArray<'a>),
    /// A kind of value the mapping never reads; only named in errors.
    Unmapped(Unmapped),
}

/// The `AnyValue` kinds no mapping-table row reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unmapped {
    KeyValueList,
    Bytes,
    StringTableIndex,
}

impl Unmapped {
    /// How an error message names this kind.
    fn name(self) -> &'static str {
        match self {
            Unmapped::KeyValueList => "a key-value list",
            Unmapped::Bytes => "bytes",
            Unmapped::StringTableIndex => "a string table index",
        }
    }
}

/// An array attribute's elements.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AttrArray<'a> {
    /// Decoded by prost (OTLP/JSON, logs).
    Decoded(&'a [AnyValue]),
    /// The bytes of an `ArrayValue`, already checked by the wire reader.
    Wire(&'a [u8]),
}

impl<'a> From<&'a Value> for AttrValue<'a> {
    fn from(value: &'a Value) -> Self {
        match value {
            Value::StringValue(s) => AttrValue::Str(s),
            Value::BoolValue(b) => AttrValue::Bool(*b),
            Value::IntValue(i) => AttrValue::Int(*i),
            Value::DoubleValue(d) => AttrValue::Double(*d),
            Value::ArrayValue(array) => AttrValue::Array(AttrArray::Decoded(&array.values)),
            Value::KvlistValue(_) => AttrValue::Unmapped(Unmapped::KeyValueList),
            Value::BytesValue(_) => AttrValue::Unmapped(Unmapped::Bytes),
            Value::StringValueStrindex(_) => AttrValue::Unmapped(Unmapped::StringTableIndex),
        }
    }
}

/// One attribute list indexed by mapping-table key.
#[derive(Debug)]
pub(crate) struct Attrs<'a> {
    slots: [Option<AttrValue<'a>>; KEY_COUNT],
    flat: [Vec<(u64, &'a str)>; 4],
}

impl Default for Attrs<'_> {
    fn default() -> Self {
        Attrs { slots: [None; KEY_COUNT], flat: Default::default() }
    }
}

/// The table of an empty list, for a [`View`] layer that has nothing to add.
static EMPTY: Attrs<'static> =
    Attrs { slots: [None; KEY_COUNT], flat: [Vec::new(), Vec::new(), Vec::new(), Vec::new()] };

impl<'a> Attrs<'a> {
    /// Index one attribute list.
    pub(crate) fn from_list(list: &'a [KeyValue]) -> Self {
        let mut attrs = Attrs::default();
        attrs.extend(list);
        attrs
    }

    /// Add a further list; keys already present keep their value (first wins).
    pub(crate) fn extend(&mut self, list: &'a [KeyValue]) {
        for kv in list {
            if let Some(value) = kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                self.insert(&kv.key, AttrValue::from(value));
            }
        }
    }

    /// Add one attribute; a key already present keeps its value (first wins).
    pub(crate) fn insert(&mut self, key: &'a str, value: AttrValue<'a>) {
        if let Some(key) = Key::lookup(key) {
            self.insert_known(key, value);
        } else if let Some((flat, index)) = parse_flat(key)
            && let AttrValue::Str(text) = value
        {
            self.flat[flat as usize].push((index, text));
        }
    }

    /// Add one attribute of a mapping-table key (first wins).
    pub(crate) fn insert_known(&mut self, key: Key, value: AttrValue<'a>) {
        let slot = &mut self.slots[key as usize];
        if slot.is_none() {
            *slot = Some(value);
        }
    }

    /// Add a further table, as [`Attrs::extend`] would have added its list.
    pub(crate) fn merge(&mut self, other: &Attrs<'a>) {
        for (slot, value) in self.slots.iter_mut().zip(other.slots) {
            if slot.is_none() {
                *slot = value;
            }
        }
        for (mine, theirs) in self.flat.iter_mut().zip(&other.flat) {
            mine.extend_from_slice(theirs);
        }
    }

    /// The raw value of one key.
    pub(crate) fn get(&self, key: Key) -> Option<AttrValue<'a>> {
        self.slots[key as usize]
    }

    /// True when the key is present with a value.
    pub(crate) fn has(&self, key: Key) -> bool {
        self.slots[key as usize].is_some()
    }
}

/// How the OpenTelemetry SDKs name a service nobody named (`unknown_service`, or
/// `unknown_service:<process>`): a resource saying so leaves the name to the item.
const SDK_DEFAULT_SERVICE: &str = "unknown_service";

/// Whether a resource's value of `key` is the SDKs' name for an unnamed service.
fn names_no_service(key: Key, value: &AttrValue<'_>) -> bool {
    key == Key::ServiceName && matches!(value, AttrValue::Str(name) if name.starts_with(SDK_DEFAULT_SERVICE))
}

/// Where the mapping reads a span's (or event's, or record's) fields.
///
/// Two kinds of precedence. The layers (the item's own attributes, nearest first, then the
/// resource's) are searched key by key: the nearest layer holding a key gives its value, so
/// `driftwatch.app` on a resource still beats `service.name`. Keys of [`rows::RESOURCE_FIRST`]
/// are read from the resource first, then from the item's layers. `behind` (a span's content
/// events) is searched only for a row that no layer holds any key of: an event restates the
/// call, and the span's own attributes win row by row, so a deprecated key on the span beats a
/// current one on the event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'s, 'a> {
    /// The item's own attributes nearest first, then the resource's, last.
    layers: [&'s Attrs<'a>; 3],
    behind: Option<&'s Attrs<'a>>,
}

impl<'s, 'a> View<'s, 'a> {
    /// Look keys up in `item` first, then in `resource`.
    pub(crate) fn new(item: &'s Attrs<'a>, resource: &'s Attrs<'a>) -> Self {
        View { layers: [item, &EMPTY, resource], behind: None }
    }

    /// A span event read as part of its span: the event's attributes, then the span's, then the
    /// resource's, key by key (feedback recorded on a span rates that span's call, in its app).
    pub(crate) fn event_on_span(event: &'s Attrs<'a>, span: &'s Attrs<'a>, resource: &'s Attrs<'a>) -> Self {
        View { layers: [event, span, resource], behind: None }
    }

    /// This view with `events` read for the rows it has no key of.
    pub(crate) fn with_events_behind(self, events: Option<&'s Attrs<'a>>) -> Self {
        View { behind: events, ..self }
    }

    /// The value of `key` in the nearest layer that has it; for a key read from the resource
    /// first, the resource's value unless it names no service.
    fn layered(&self, key: Key) -> Option<AttrValue<'a>> {
        if key.resource_first() {
            return self.layers[2].get(key).filter(|value| !names_no_service(key, value));
        }
        self.layers.iter().find_map(|layer| layer.get(key))
    }

    /// The first key of `row` that `pick` accepts a value of: the layers' values first (the
    /// resource's alone for the keys read from it first), then the item's own values of those
    /// keys, then a resource's `unknown_service`; the events' behind them all only when nothing
    /// else holds a value that `pick` accepts. Row by row, not key by key: a deprecated
    /// environment key on the resource beats the current one on a span.
    fn find<T>(&self, row: &[Key], pick: impl Fn(Key, AttrValue<'a>) -> Option<T>) -> Option<T> {
        let resource_first = || row.iter().copied().filter(|key| key.resource_first());
        let on_item = |key: Key| self.layers[..2].iter().find_map(|layer| layer.get(key));
        row.iter()
            .find_map(|&key| pick(key, self.layered(key)?))
            .or_else(|| resource_first().find_map(|key| pick(key, on_item(key)?)))
            .or_else(|| resource_first().find_map(|key| pick(key, self.layers[2].get(key)?)))
            .or_else(|| {
                let behind = self.behind?;
                row.iter().filter(|key| !key.resource_first()).find_map(|&key| pick(key, behind.get(key)?))
            })
    }

    /// The first key of `row` present, with its value.
    pub(crate) fn first(&self, row: &[Key]) -> Option<(Key, AttrValue<'a>)> {
        self.find(row, |key, value| Some((key, value)))
    }

    /// The first present value of `row` as a string slice (non-empty string values only).
    pub(crate) fn str(&self, row: &[Key]) -> Option<&'a str> {
        self.find(row, |_, value| match value {
            AttrValue::Str(s) if !s.is_empty() => Some(s),
            _ => None,
        })
    }

    /// The first present value of `row` as owned text: strings as they are,
    /// numbers and booleans printed, the first element of an array. Empty
    /// strings count as absent so that a later row can still win.
    pub(crate) fn text(&self, row: &[Key]) -> Option<String> {
        debug_assert!(!row.contains(&Key::LlmInvocationParameters), "a model row: read it with View::model");
        self.find(row, |_, value| value_text(value).filter(|s| !s.is_empty()))
    }

    /// [`View::text`] for the model rows: OpenInference's `llm.invocation_parameters` is a JSON
    /// object, of which only its `model` names one (a blank or unparsable one names none).
    pub(crate) fn model(&self, row: &[Key]) -> Option<String> {
        self.find(row, |key, value| match (key, value) {
            (Key::LlmInvocationParameters, AttrValue::Str(json)) => invocation_model(json),
            (Key::LlmInvocationParameters, _) => None,
            _ => value_text(value).filter(|s| !s.is_empty()),
        })
    }

    /// The provider ([`rows::PROVIDER`]), normalised, else the `ls_provider` of OpenInference's
    /// `metadata` (LangChain's name for the provider). The metadata is parsed only when no
    /// provider key is present, which is rare.
    pub(crate) fn provider(&self) -> Option<String> {
        self.str(rows::PROVIDER).map(normalize_provider).or_else(|| {
            let metadata = self.str(&[Key::OiMetadata])?;
            langchain_provider(metadata).map(|provider| normalize_provider(&provider))
        })
    }

    /// [`View::text`] for a row of lists whose first element is wanted: a string holding a JSON
    /// array gives its first element too, as an array value does (LiteLLM writes
    /// `gen_ai.response.finish_reasons` as `"[\"stop\"]"`). An empty array counts as absent.
    pub(crate) fn first_of_list(&self, row: &[Key]) -> Option<String> {
        self.find(row, |_, value| match value {
            // Only text that opens a list is parsed: a plain reason (`stop`) is the common case,
            // and a failed parse costs an allocated error.
            AttrValue::Str(s) if s.trim_start().starts_with('[') => {
                match serde_json::from_str::<Vec<serde_json::Value>>(s) {
                    Ok(items) => {
                        items.iter().find_map(|item| item.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
                    }
                    Err(_) => Some(s.to_owned()),
                }
            }
            _ => value_text(value).filter(|s| !s.is_empty()),
        })
    }

    /// The first present value of `row` as an integer (int, integral double or numeric string).
    /// A blank string counts as absent, as in [`View::text`]: some instrumentations write `""`
    /// for a count they do not have, and a later row may still hold it.
    pub(crate) fn int(&self, row: &[Key]) -> Result<Option<i64>> {
        match self.first_number(row) {
            None => Ok(None),
            Some((key, value)) => value_int(value).map(Some).ok_or_else(|| invalid(key, value, "an integer")),
        }
    }

    /// The first present value of `row` as a float (int, double or numeric string); a blank
    /// string counts as absent, as in [`View::int`].
    pub(crate) fn float(&self, row: &[Key]) -> Result<Option<f64>> {
        match self.first_number(row) {
            None => Ok(None),
            Some((key, value)) => value_float(value).map(Some).ok_or_else(|| invalid(key, value, "a number")),
        }
    }

    /// The first key of `row` present with a value other than a blank string.
    fn first_number(&self, row: &[Key]) -> Option<(Key, AttrValue<'a>)> {
        self.find(row, |key, value| match value {
            AttrValue::Str(s) if s.trim().is_empty() => None,
            _ => Some((key, value)),
        })
    }

    /// Flattened indexed content joined with newlines in index order: the nearest layer's,
    /// else the events'. Never the resource's.
    pub(crate) fn joined(&self, flat: Flat) -> Option<String> {
        let own = &self.layers[0].flat[flat as usize];
        let parts = match self.behind {
            Some(events) if own.is_empty() => &events.flat[flat as usize],
            _ => own,
        };
        if parts.is_empty() {
            return None;
        }
        let mut sorted: Vec<(u64, &str)> = parts.clone();
        sorted.sort_by_key(|&(index, _)| index);
        let mut joined = String::with_capacity(sorted.iter().map(|(_, s)| s.len() + 1).sum());
        for (i, (_, text)) in sorted.iter().enumerate() {
            if i > 0 {
                joined.push('\n');
            }
            joined.push_str(text);
        }
        Some(joined)
    }
}

fn invalid(key: Key, value: AttrValue<'_>, expected: &str) -> Error {
    Error::InvalidField { field: key.name(), detail: format!("expected {expected}, found {}", describe(value)) }
}

fn describe(value: AttrValue<'_>) -> String {
    match value {
        AttrValue::Str(s) => {
            let shown: String = s.chars().take(40).collect();
            format!("string {shown:?}")
        }
        AttrValue::Bool(b) => format!("bool {b}"),
        AttrValue::Int(i) => format!("int {i}"),
        AttrValue::Double(d) => format!("double {d}"),
        AttrValue::Array(_) => "an array".to_owned(),
        AttrValue::Unmapped(kind) => kind.name().to_owned(),
    }
}

/// Text form of a scalar value; the first element of an array.
pub(crate) fn value_text(value: AttrValue<'_>) -> Option<String> {
    match value {
        AttrValue::Str(s) => Some(s.to_owned()),
        AttrValue::Int(i) => Some(i.to_string()),
        AttrValue::Double(d) => Some(d.to_string()),
        AttrValue::Bool(b) => Some(b.to_string()),
        AttrValue::Array(AttrArray::Decoded(values)) => {
            values.iter().filter_map(|v| v.value.as_ref()).find_map(|v| value_text(AttrValue::from(v)))
        }
        AttrValue::Array(AttrArray::Wire(bytes)) => otlp_wire::array_values(bytes).find_map(value_text),
        AttrValue::Unmapped(_) => None,
    }
}

/// The `model` of OpenInference's invocation parameters. Only objects that mention it are
/// parsed: most spans' parameters (`{"max_tokens": 64}`) do not.
fn invocation_model(json: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Invocation<'a> {
        #[serde(borrow)]
        model: Option<std::borrow::Cow<'a, str>>,
    }
    if !json.contains("\"model\"") {
        return None;
    }
    non_blank(serde_json::from_str::<Invocation<'_>>(json).ok()?.model?)
}

/// The `ls_provider` of OpenInference's `metadata` JSON (LangChain's name for the provider).
/// The text is searched for the key first: most metadata does not have it, and a parse costs.
fn langchain_provider(json: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Metadata<'a> {
        #[serde(borrow)]
        ls_provider: Option<std::borrow::Cow<'a, str>>,
    }
    if !json.contains("\"ls_provider\"") {
        return None;
    }
    non_blank(serde_json::from_str::<Metadata<'_>>(json).ok()?.ls_provider?)
}

fn non_blank(text: std::borrow::Cow<'_, str>) -> Option<String> {
    (!text.trim().is_empty()).then(|| text.into_owned())
}

/// Integer form: ints, integral doubles within range, numeric strings.
pub(crate) fn value_int(value: AttrValue<'_>) -> Option<i64> {
    match value {
        AttrValue::Int(i) => Some(i),
        AttrValue::Double(d) => integral(d),
        AttrValue::Str(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| integral(s.parse::<f64>().ok()?))
        }
        _ => None,
    }
}

fn integral(d: f64) -> Option<i64> {
    // 2^63 as f64; casts of finite integral values inside the range are exact.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (d.is_finite() && d.fract() == 0.0 && d.abs() < LIMIT).then_some(d as i64)
}

/// Float form: doubles, ints, numeric strings.
pub(crate) fn value_float(value: AttrValue<'_>) -> Option<f64> {
    match value {
        AttrValue::Double(d) => Some(d),
        #[allow(clippy::cast_precision_loss)] // token-sized ints are exact in f64
        AttrValue::Int(i) => Some(i as f64),
        AttrValue::Str(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// The API part of the Vercel AI SDK's provider ids (`openai.chat`, `anthropic.messages`,
/// `openai.embedding`): the provider is what comes before it. No GenAI provider name ends so.
const PROVIDER_API_SUFFIXES: [&str; 8] =
    [".chat", ".responses", ".completion", ".embedding", ".messages", ".image", ".transcription", ".speech"];

/// Normalise a provider name: lower-case, an AI SDK API suffix dropped (`openai.chat` ->
/// `openai`), `az.ai.*` -> `azure.ai.*`, `vertex_ai` -> `gcp.vertex_ai`.
pub fn normalize_provider(raw: &str) -> String {
    let mut lower = raw.trim().to_ascii_lowercase();
    if let Some(provider_len) =
        PROVIDER_API_SUFFIXES.iter().find_map(|suffix| lower.strip_suffix(suffix).map(str::len)).filter(|&len| len > 0)
    {
        lower.truncate(provider_len);
    }
    if let Some(rest) = lower.strip_prefix("az.ai.") {
        return format!("azure.ai.{rest}");
    }
    match lower.as_str() {
        "vertex_ai" | "vertexai" => "gcp.vertex_ai".to_owned(),
        _ => lower,
    }
}

/// Operation names other than the GenAI ones, with the GenAI operation each stands for:
/// OpenLLMetry's `llm.request.type` short forms (`completion` is its legacy completions API;
/// its chat calls say `chat`), and LiteLLM's names of its async functions.
const OPERATION_ALIASES: [(&str, &str); 5] = [
    ("completion", "text_completion"),
    ("embedding", "embeddings"),
    ("acompletion", "chat"),
    ("aembedding", "embeddings"),
    ("atext_completion", "text_completion"),
];

/// The GenAI operation an alias stands for, case and padding aside; `None` for any other name.
pub(crate) fn operation_alias(raw: &str) -> Option<&'static str> {
    let raw = raw.trim();
    OPERATION_ALIASES.iter().find(|(alias, _)| raw.eq_ignore_ascii_case(alias)).map(|&(_, operation)| operation)
}

/// Normalise an operation name: lower-case, the aliases of LiteLLM and OpenLLMetry replaced by the
/// GenAI operation; other names are kept.
pub fn normalize_operation(raw: &str) -> String {
    operation_alias(raw).map_or_else(|| raw.trim().to_ascii_lowercase(), str::to_owned)
}

/// A reported service tier, trimmed and lower-cased (OpenAI reports `default`, `flex`,
/// `priority`, `scale`); a blank one is none, and so is `auto`, which only a request names.
pub fn normalize_service_tier(raw: &str) -> Option<String> {
    let tier = raw.trim();
    (!tier.is_empty() && !tier.eq_ignore_ascii_case("auto")).then(|| tier.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_tiers_are_trimmed_and_lower_cased() {
        assert_eq!(normalize_service_tier(" Flex "), Some("flex".to_owned()));
        assert_eq!(normalize_service_tier("priority"), Some("priority".to_owned()));
        assert_eq!(normalize_service_tier("  "), None);
        assert_eq!(normalize_service_tier("Auto"), None, "a request's `auto` is no tier that bills");
    }

    #[test]
    fn keys_are_found_by_text_and_by_bytes() {
        for key in ALL_KEYS {
            assert_eq!(Key::lookup(key.name()), Some(key));
            assert_eq!(Key::lookup_bytes(key.name().as_bytes()), Some(key));
        }
        assert_eq!(Key::lookup_bytes(b"gen_ai.request.mode"), None);
        assert_eq!(Key::lookup_bytes(b"gen_ai.request.model\xff"), None);
        assert_eq!(Key::lookup("service.name.x"), None);
    }
}
