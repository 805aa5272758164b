//! OTLP spans -> inference events (DESIGN §3.1, §3.2).
//!
//! Spans enter either from a decoded `TracesData` (OTLP/JSON, or protobuf that
//! the wire reader left to prost) or straight from protobuf bytes through
//! `otlp_wire`, which lends out the span's fields without copying them. Both
//! arrive here as the same [`SpanParts`]. Each span is classified: inference
//! spans (and OpenLIT's failed calls, which carry no attribute but their scope, status and
//! name) are mapped through the attribute table and validated; other spans are
//! counted in `skipped_spans`. Span events named `gen_ai.evaluation.result`
//! (or carrying OpenInference `annotation.*`) become feedback for that span, read
//! with the span's and the resource's attributes behind the event's. Content events
//! are read behind the span's own attributes, row by row. A
//! span that fails mapping or validation leaves as a reject carrying that span
//! re-serialised as OTLP/JSON; the other spans of the message are unaffected. A reported cost
//! that is no amount is the exception: the span is kept without it, and the drop counted.

use std::convert::Infallible;

use driftwatch_lake::model::{CallStatus, InferenceEvent};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::{Span, TracesData, status::StatusCode};
use prost::Message;

use super::attributes::{
    AttrValue, Attrs, Flat, Key, View, normalize_operation, normalize_service_tier, operation_alias, rows,
};
use super::otlp_wire::{self, Malformed, Origin, Scope, WireEvent, WireSpan};
use super::validate::{self, ReportedCost};
use super::{Ctx, Decoded, Error, Result, hex_id, otlp_logs, otlp_time, span_event_id, span_id_hex, trace_id_hex};

/// Span events whose attributes describe the call: the old semconv's content events, the
/// current semconv's `gen_ai.client.inference.operation.details` (where instrumentations that
/// record content as an event put `gen_ai.input.messages` and `gen_ai.output.messages`), and the
/// exception event.
const CONTENT_EVENTS: [&str; 4] =
    ["gen_ai.content.prompt", "gen_ai.content.completion", "gen_ai.client.inference.operation.details", "exception"];

/// Span events that mark an answer's first chunk, where instrumentations record no
/// time-to-first-chunk attribute: OpenInference's, and OpenLLMetry's one event per streamed chunk
/// (the first is the first chunk).
const FIRST_CHUNK_EVENTS: [&str; 2] = ["First Token Stream Event", "gen_ai.content.completion.chunk"];

/// Map every span of one message decoded by prost.
pub(super) fn decode(data: &TracesData, ctx: Ctx<'_>, out: &mut Decoded) {
    for resource_spans in &data.resource_spans {
        let resource = resource_spans.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let resource = Attrs::from_list(resource);
        for scope_spans in &resource_spans.scope_spans {
            let scope = scope_spans
                .scope
                .as_ref()
                .map_or_else(Scope::default, |scope| Scope { name: &scope.name, version: &scope.version });
            if ctx.skips_scope(scope.name) {
                out.skipped_spans += scope_spans.spans.len() as u64;
                continue;
            }
            for span in &scope_spans.spans {
                decode_decoded_span(span, scope, &resource, ctx, out);
            }
        }
    }
}

fn decode_decoded_span(span: &Span, scope: Scope<'_>, resource: &Attrs<'_>, ctx: Ctx<'_>, out: &mut Decoded) {
    let events = span.events.iter().map(|event| {
        Ok::<_, Infallible>(EventParts {
            name: &event.name,
            time_unix_nano: event.time_unix_nano,
            attrs: Attrs::from_list(&event.attributes),
        })
    });
    let Ok(()) = decode_span(&SpanParts::decoded(span, scope), events, resource, ctx, out);
}

/// Map every span of one protobuf message, reading it in place. A span the reader does not
/// accept is left to prost alone, and rejected alone when prost does not accept it either.
/// `Malformed` (the resource or scope layers are broken, or the message holds log records): `out`
/// is left as it was before the call, so the caller can decode the message with prost instead.
pub(super) fn decode_wire(message: &[u8], ctx: Ctx<'_>, out: &mut Decoded) -> std::result::Result<(), Malformed> {
    out.undo_on_error(|out| {
        otlp_wire::for_each_item(message, |bytes, resource, scope| {
            if ctx.skips_scope(scope.name) {
                out.skipped_spans += 1;
                return Ok(());
            }
            match out.undo_on_error(|out| decode_wire_span(bytes, scope, resource, ctx, out)) {
                Ok(()) => Ok(()),
                Err(Malformed) => decode_unread_span(bytes, scope, resource, ctx, out),
            }
        })
    })
}

/// Map one span read in place. On `Malformed`, a feedback event already pushed is left for the
/// caller to undo.
fn decode_wire_span<'a>(
    bytes: &'a [u8],
    scope: Scope<'a>,
    resource: &Attrs<'a>,
    ctx: Ctx<'_>,
    out: &mut Decoded,
) -> std::result::Result<(), Malformed> {
    let mut span = WireSpan::parse(bytes)?;
    let event_bytes = std::mem::take(&mut span.events);
    let events = event_bytes.iter().map(|&bytes| {
        let event = WireEvent::parse(bytes)?;
        Ok(EventParts { name: event.name, time_unix_nano: event.time_unix_nano, attrs: event.attrs })
    });
    decode_span(&SpanParts::wire(span, scope), events, resource, ctx, out)
}

/// A span the wire reader does not take (rare shapes it leaves to prost, or a span prost rejects
/// too, such as a name that is not UTF-8) in a message whose outer layers are sound: prost
/// decides for this span alone. A span prost rejects is dead-lettered with its bytes; the spans
/// beside it are kept. `Malformed` when the item is a log record: a logs message, which the
/// caller reads as such.
fn decode_unread_span(
    bytes: &[u8],
    scope: Scope<'_>,
    resource: &Attrs<'_>,
    ctx: Ctx<'_>,
    out: &mut Decoded,
) -> std::result::Result<(), Malformed> {
    match Span::decode(bytes) {
        Ok(span) => decode_decoded_span(&span, scope, resource, ctx, out),
        Err(_) if LogRecord::decode(bytes).is_ok() => return Err(Malformed),
        Err(source) => {
            let error = Error::MalformedProtobuf { what: "Span", source };
            let (trace_id, span_id) = otlp_wire::ids_of_unread_item(bytes, 1, 2);
            let trace_id = hex_id(trace_id).unwrap_or_default();
            let span_id = hex_id(span_id).unwrap_or_default();
            out.rejects.push(ctx.item_reject(format_args!("span {trace_id}{span_id}"), &error, bytes));
        }
    }
    Ok(())
}

/// The fields of one span that the mapping reads, whichever decoder produced them.
struct SpanParts<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    /// Empty for a root span.
    parent_span_id: &'a [u8],
    name: &'a str,
    /// The instrumentation scope.
    scope: Scope<'a>,
    start_time_unix_nano: u64,
    end_time_unix_nano: u64,
    /// `Status.code`; 0 (unset) without a status.
    status_code: i32,
    status_message: &'a str,
    /// The span's own attributes.
    attrs: Attrs<'a>,
    /// The span itself, for the copy a reject keeps.
    origin: Origin<'a, Span>,
}

impl<'a> SpanParts<'a> {
    fn decoded(span: &'a Span, scope: Scope<'a>) -> Self {
        let (status_code, status_message) = span.status.as_ref().map_or((0, ""), |s| (s.code, s.message.as_str()));
        SpanParts {
            trace_id: &span.trace_id,
            span_id: &span.span_id,
            parent_span_id: &span.parent_span_id,
            name: &span.name,
            scope,
            start_time_unix_nano: span.start_time_unix_nano,
            end_time_unix_nano: span.end_time_unix_nano,
            status_code,
            status_message,
            attrs: Attrs::from_list(&span.attributes),
            origin: Origin::Decoded(span),
        }
    }

    fn wire(span: WireSpan<'a>, scope: Scope<'a>) -> Self {
        SpanParts {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent_span_id: span.parent_span_id,
            name: span.name,
            scope,
            start_time_unix_nano: span.start_time_unix_nano,
            end_time_unix_nano: span.end_time_unix_nano,
            status_code: span.status_code,
            status_message: span.status_message,
            attrs: span.attrs,
            origin: Origin::Wire(span.bytes),
        }
    }
}

/// One span event's fields.
struct EventParts<'a> {
    name: &'a str,
    time_unix_nano: u64,
    attrs: Attrs<'a>,
}

fn decode_span<'a, E>(
    span: &SpanParts<'a>,
    events: impl Iterator<Item = std::result::Result<EventParts<'a>, E>>,
    resource: &Attrs<'a>,
    ctx: Ctx<'_>,
    out: &mut Decoded,
) -> std::result::Result<(), E> {
    // Kept apart from the span's table, and built only for spans that have such events: the
    // view reads it for the rows the span and resource leave empty.
    let mut content: Option<Attrs<'a>> = None;
    let mut first_chunk: Option<u64> = None;
    for event in events {
        let event = event?;
        if FIRST_CHUNK_EVENTS.contains(&event.name) && event.time_unix_nano != 0 {
            first_chunk = Some(first_chunk.map_or(event.time_unix_nano, |t| t.min(event.time_unix_nano)));
        } else if otlp_logs::is_feedback(event.name, &event.attrs) {
            let view = View::event_on_span(&event.attrs, &span.attrs, resource);
            let time = if event.time_unix_nano == 0 { span.end_time_unix_nano } else { event.time_unix_nano };
            match otlp_logs::feedback(&view, span.trace_id, span.span_id, time, ctx) {
                Ok(feedback) => out.feedback.push(feedback),
                Err(error) => out.rejects.push(reject(span, &error, ctx)),
            }
        } else if CONTENT_EVENTS.contains(&event.name) {
            match &mut content {
                Some(content) => content.merge(&event.attrs),
                None => content = Some(event.attrs),
            }
        }
    }
    let view = View::new(&span.attrs, resource).with_events_behind(content.as_ref());
    let named = if is_inference(&view) {
        None
    } else if let Some(named) = openlit_failed_call(span) {
        Some(named)
    } else {
        out.skipped_spans += 1;
        return Ok(());
    };
    let found = SpanFindings { first_chunk, named };
    match map_span(span, &view, &found, ctx)
        .and_then(|(event, reported_cost)| out.keep_inference(event, reported_cost, ctx))
    {
        Ok(()) => out.nested.push(NestedSpan::of(span, out.events.len() - 1)),
        Err(error) => out.rejects.push(reject(span, &error, ctx)),
    }
    Ok(())
}

/// Where an inference event read from a span sits in its trace, for the pipeline to tell a
/// span that wraps another call from a call (`pipeline::WrappedCalls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NestedSpan {
    /// Its place in [`Decoded::events`].
    pub event: usize,
    pub trace_id: u128,
    pub span_id: u64,
    /// `None` for a root span (or a parent id that is no span id).
    pub parent: Option<u64>,
}

impl NestedSpan {
    fn of(span: &SpanParts<'_>, event: usize) -> Self {
        // A kept event's trace and span ids have their lengths (validated); a parent id may not.
        let id = |bytes: &[u8]| <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes);
        NestedSpan {
            event,
            trace_id: <[u8; 16]>::try_from(span.trace_id).map_or(0, u128::from_be_bytes),
            span_id: id(span.span_id).unwrap_or(0),
            parent: id(span.parent_span_id),
        }
    }
}

fn reject(span: &SpanParts<'_>, error: &Error, ctx: Ctx<'_>) -> super::Reject {
    let trace = hex_id(span.trace_id).unwrap_or_default();
    let span_id = hex_id(span.span_id).unwrap_or_default();
    ctx.item_reject(format_args!("span {trace}{span_id} {:?}", span.name), error, &span.origin.to_json())
}

/// What a span says of its call outside its attributes.
struct SpanFindings<'a> {
    /// The time of its first-chunk event ([`FIRST_CHUNK_EVENTS`]), if it has one.
    first_chunk: Option<u64>,
    /// The operation and model its name gives, for a call its attributes do not describe.
    named: Option<(&'a str, &'a str)>,
}

/// OpenLIT records a failed call as a span with no attributes at all: its scope (`openlit`),
/// error status, exception event and its name, `{operation} {model}` as the conventions name
/// spans, are all there is. The operation and model of such a span, when the name's operation is
/// an inference one; `None` for any other span.
fn openlit_failed_call<'a>(span: &SpanParts<'a>) -> Option<(&'a str, &'a str)> {
    if span.scope.name != "openlit" || span.status_code != StatusCode::Error as i32 {
        return None;
    }
    let (operation, model) = span.name.trim().split_once(' ')?;
    (is_inference_operation(operation) && !model.trim().is_empty()).then(|| (operation, model.trim()))
}

/// `gen_ai.operation.name` values of inference calls (DESIGN §3.1).
const INFERENCE_OPERATIONS: [&str; 4] = ["chat", "text_completion", "generate_content", "embeddings"];

/// True for an operation name of an inference call, compared as [`normalize_operation`] maps it
/// (`Chat` is a chat, LiteLLM's `acompletion` too), without allocating a lower-case copy.
fn is_inference_operation(operation: &str) -> bool {
    INFERENCE_OPERATIONS.iter().any(|known| operation.eq_ignore_ascii_case(known))
        || operation_alias(operation).is_some()
}

/// The Vercel AI SDK's provider-call spans, by `ai.operationId`, with the operation of each. Its
/// outer spans (`ai.generateText`, `ai.embed`, ...) are no calls: they restate their calls'
/// usage, summed over the steps of a multi-step run.
const AI_SDK_CALLS: [(&str, &str); 6] = [
    ("ai.generateText.doGenerate", "chat"),
    ("ai.streamText.doStream", "chat"),
    ("ai.generateObject.doGenerate", "chat"),
    ("ai.streamObject.doStream", "chat"),
    ("ai.embed.doEmbed", "embeddings"),
    ("ai.embedMany.doEmbed", "embeddings"),
];

/// The operation of an AI SDK provider-call span; `None` for any other span.
fn ai_sdk_operation(view: &View<'_, '_>) -> Option<&'static str> {
    let id = view.str(&[Key::AiOperationId])?.trim();
    AI_SDK_CALLS.iter().find(|(call, _)| *call == id).map(|&(_, operation)| operation)
}

/// DESIGN §3.1: GenAI operation, OpenInference LLM/EMBEDDING kind, or any OpenLLMetry request type;
/// and the Vercel AI SDK's provider calls, which set none of those.
pub(super) fn is_inference(view: &View<'_, '_>) -> bool {
    if view.str(&[Key::OperationName]).map(str::trim).is_some_and(is_inference_operation) {
        return true;
    }
    if ai_sdk_operation(view).is_some() {
        return true;
    }
    if let Some(kind) = view.str(&[Key::OiSpanKind])
        && (kind.eq_ignore_ascii_case("LLM") || kind.eq_ignore_ascii_case("EMBEDDING"))
    {
        return true;
    }
    view.first(&[Key::LlmRequestType]).is_some()
}

/// Map one inference span to an event (before validation), with its reported cost as kept.
fn map_span(
    span: &SpanParts<'_>,
    view: &View<'_, '_>,
    found: &SpanFindings<'_>,
    ctx: Ctx<'_>,
) -> Result<(InferenceEvent, ReportedCost)> {
    let trace_id = trace_id_hex(span.trace_id)?.ok_or(Error::MissingField { field: "traceId" })?;
    let span_id = span_id_hex(span.span_id)?.ok_or(Error::MissingField { field: "spanId" })?;
    let app = view.text(rows::APP).ok_or(Error::MissingField { field: "service.name" })?;
    if span.end_time_unix_nano == 0 {
        return Err(Error::MissingField { field: "endTimeUnixNano" });
    }
    let time = otlp_time("endTimeUnixNano", span.end_time_unix_nano, ctx)?;
    let (start_time, latency_ms) = if span.start_time_unix_nano == 0 {
        (time, None)
    } else {
        let start = otlp_time("startTimeUnixNano", span.start_time_unix_nano, ctx)?;
        (start, Some(nanos_to_ms(i128::from(time) - i128::from(start))))
    };

    let operation = match view.text(rows::OPERATION) {
        Some(operation) => normalize_operation(&operation),
        None => match (ai_sdk_operation(view), view.str(&[Key::OiSpanKind]), found.named) {
            (Some(operation), _, _) => operation.to_owned(),
            (None, Some(kind), _) if kind.eq_ignore_ascii_case("EMBEDDING") => "embeddings".to_owned(),
            (None, _, Some((operation, _))) => normalize_operation(operation),
            _ => "chat".to_owned(),
        },
    };
    let request_model = view.model(rows::REQUEST_MODEL).or_else(|| found.named.map(|(_, model)| model.to_owned()));
    let response_model = view.model(rows::RESPONSE_MODEL).or_else(|| request_model.clone());

    let (status, status_message) = match span.status_code {
        code if code == StatusCode::Error as i32 => (CallStatus::Error, span.status_message),
        code if code == StatusCode::Ok as i32 => (CallStatus::Ok, ""),
        // `error.type` is set only when the operation ended in an error (semconv), so a span that
        // carries it without an error status still reports a failed call.
        _ if view.str(&[Key::ErrorType]).is_some() => (CallStatus::Error, ""),
        _ => (CallStatus::Unset, ""),
    };
    // error.type first, then an exception event's type, then the status message's first line:
    // some instrumentations (OpenInference's LangChain.js) append the error's stack trace to it,
    // whose file paths would make every failure a label value of its own.
    let error_type = view.text(rows::ERROR_TYPE).map(python_class_name).or_else(|| {
        let first_line = status_message.lines().map(str::trim).find(|line| !line.is_empty())?;
        Some(first_line.to_owned())
    });

    // Only a streamed answer has a first chunk before its end. OpenLIT reports the whole latency
    // as `gen_ai.server.time_to_first_token` for unstreamed calls and embeddings too, which
    // would pull the time-to-first-token percentiles up to full latencies. It says so in the
    // conventions' `gen_ai.request.stream` since 1.45, in `gen_ai.request.is_stream` before.
    // OpenLLMetry's `gen_ai.is_streaming` says the same.
    let stream_flag = view.first(&[Key::RequestStream, Key::RequestIsStream, Key::IsStreaming]);
    let unstreamed = matches!(stream_flag, Some((_, AttrValue::Bool(false)))) || operation == "embeddings";
    let first_chunk_ms = || {
        let first_chunk = found.first_chunk?;
        (span.start_time_unix_nano != 0 && first_chunk >= span.start_time_unix_nano)
            .then(|| nanos_to_ms(i128::from(first_chunk) - i128::from(span.start_time_unix_nano)))
    };
    let ttft_ms = match view.float(rows::TTFT)? {
        _ if unstreamed => None,
        Some(seconds) => Some(seconds * 1000.0),
        None => view.float(rows::TTFT_MS)?.or_else(first_chunk_ms),
    };
    // The first row present decides, as for every field; one that is no number is dropped like
    // a negative one, not the call with it.
    let reported_cost = view.float(rows::REPORTED_COST).map_or(ReportedCost::UNREADABLE, ReportedCost::checked);
    // OpenLIT writes a cost of 0 for every call it cannot price (a model missing from its price
    // list, or the list not downloaded): no figure, not a free call.
    let reported_cost = if span.scope.name == "openlit" && reported_cost.usd == Some(0.0) {
        ReportedCost::checked(None)
    } else {
        reported_cost
    };

    let mut event = InferenceEvent {
        event_id: span_event_id(&trace_id, &span_id),
        trace_id: Some(trace_id),
        span_id: Some(span_id),
        response_id: view.text(rows::RESPONSE_ID),
        time,
        start_time,
        app,
        environment: view.text(rows::ENVIRONMENT),
        provider: view.provider().or_else(|| {
            // A failed call that names nothing else is known by its client's exception class.
            found.named.and(error_type.as_deref()).and_then(provider_of_exception).map(str::to_owned)
        }),
        operation,
        request_model,
        response_model,
        prompt_id: view.text(rows::PROMPT_ID),
        prompt_version: view.text(rows::PROMPT_VERSION),
        input_tokens: view.int(rows::INPUT_TOKENS)?,
        output_tokens: view.int(rows::OUTPUT_TOKENS)?,
        cache_read_tokens: view.int(rows::CACHE_READ_TOKENS)?,
        cache_write_tokens: view.int(rows::CACHE_WRITE_TOKENS)?,
        reasoning_tokens: view.int(rows::REASONING_TOKENS)?,
        reported_cost_usd: reported_cost.usd,
        latency_ms,
        ttft_ms,
        status,
        error_type,
        finish_reason: view.first_of_list(rows::FINISH_REASON),
        service_tier: view.str(rows::SERVICE_TIER).and_then(normalize_service_tier),
        golden_case: view.text(rows::GOLDEN_CASE),
        input_content: view
            .str(rows::INPUT)
            .map(str::to_owned)
            .or_else(|| view.joined(Flat::Prompt))
            .or_else(|| view.joined(Flat::OiInput)),
        output_content: view
            .str(rows::OUTPUT)
            .map(str::to_owned)
            .or_else(|| view.joined(Flat::Completion))
            .or_else(|| view.joined(Flat::OiOutput)),
        ..InferenceEvent::default()
    };
    validate::include_parts_left_out(&mut event, input_leaves_cache_out(span.scope));
    Ok((event, reported_cost))
}

/// Instrumentations known to copy Anthropic's usage as it is, whose input tokens leave the cache
/// out even where the cache counts beside them are smaller (which
/// [`validate::include_parts_left_out`] cannot tell alone from a count that includes them):
/// OpenLLMetry JS's Anthropic instrumentation, checked in 0.27.0, the latest release, and taken
/// to hold for the releases before it. A later release may count as the conventions do, so it is
/// left alone.
fn input_leaves_cache_out(scope: Scope<'_>) -> bool {
    scope.name == "@traceloop/instrumentation-anthropic" && release_at_most(scope.version, (0, 27))
}

/// Whether a `major.minor[.patch...]` version is at most `(major, minor)`; false when it is no
/// such version.
pub(super) fn release_at_most(version: &str, (most_major, most_minor): (u64, u64)) -> bool {
    let mut parts = version.trim_start_matches('v').split(['.', '-', '+']);
    let (Some(Ok(major)), Some(Ok(minor))) = (parts.next().map(str::parse::<u64>), parts.next().map(str::parse::<u64>))
    else {
        return false;
    };
    (major, minor) <= (most_major, most_minor)
}

/// The provider whose client library raised an exception of class `error_type`
/// (`openai.RateLimitError`, `anthropic.APIStatusError`), as the conventions name providers.
fn provider_of_exception(error_type: &str) -> Option<&'static str> {
    const CLIENTS: [(&str, &str); 5] = [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("mistralai", "mistral_ai"),
        ("cohere", "cohere"),
        ("groq", "groq"),
    ];
    let (module, _) = error_type.split_once('.')?;
    CLIENTS.iter().find(|(client, _)| *client == module).map(|&(_, provider)| provider)
}

/// An exception type as Python's `str(type(error))` spells it (`<class 'openai.RateLimitError'>`,
/// as OpenTelemetry's util-genai 1.1 writes `error.type`) becomes the class's qualified name,
/// as every other instrumentation writes it, so one failure is one label value.
fn python_class_name(error_type: String) -> String {
    match error_type.strip_prefix("<class '").and_then(|rest| rest.strip_suffix("'>")) {
        Some(class) if !class.is_empty() => class.to_owned(),
        _ => error_type,
    }
}

#[allow(clippy::cast_precision_loss)] // latencies are far below 2^53 ns
fn nanos_to_ms(nanos: i128) -> f64 {
    nanos as f64 / 1e6
}
