//! OTLP spans -> inference events (DESIGN §3.1, §3.2).
//!
//! A decoded `TracesData` (from protobuf or OTLP/JSON) enters. Each span is
//! classified: inference spans are mapped through the attribute table and
//! validated; other spans are counted in `skipped_spans`. Span events named
//! `gen_ai.evaluation.result` (or carrying OpenInference `annotation.*`)
//! become feedback for that span. A span that fails mapping or validation
//! leaves as a reject carrying that span re-serialised as OTLP/JSON; the
//! other spans of the message are unaffected.

use driftwatch_lake::model::{CallStatus, InferenceEvent};
use opentelemetry_proto::tonic::trace::v1::{Span, TracesData, status::StatusCode};

use super::attributes::{Attrs, Flat, Key, View, normalize_operation, normalize_provider, rows};
use super::{Ctx, Decoded, Error, Result, hex_id, otlp_logs, otlp_time, validate};

/// Old-semconv span events whose attributes carry content, and the exception event.
const CONTENT_EVENTS: [&str; 3] = ["gen_ai.content.prompt", "gen_ai.content.completion", "exception"];

/// Map every span of one message.
pub(super) fn decode(data: &TracesData, ctx: Ctx<'_>, out: &mut Decoded) {
    for resource_spans in &data.resource_spans {
        let resource = resource_spans.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let resource = Attrs::from_list(resource);
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                decode_span(span, &resource, ctx, out);
            }
        }
    }
}

fn decode_span(span: &Span, resource: &Attrs<'_>, ctx: Ctx<'_>, out: &mut Decoded) {
    let mut attrs = Attrs::from_list(&span.attributes);
    for event in &span.events {
        let event_attrs = Attrs::from_list(&event.attributes);
        if otlp_logs::is_feedback(&event.name, &event_attrs) {
            let view = View::new(&event_attrs, resource);
            let time = if event.time_unix_nano == 0 { span.end_time_unix_nano } else { event.time_unix_nano };
            match otlp_logs::feedback(&view, &span.trace_id, &span.span_id, time, ctx) {
                Ok(feedback) => out.feedback.push(feedback),
                Err(error) => out.rejects.push(reject(span, &error, ctx)),
            }
        } else if CONTENT_EVENTS.contains(&event.name.as_str()) {
            // Span attributes were added first, so they win over event attributes.
            attrs.extend(&event.attributes);
        }
    }
    let view = View::new(&attrs, resource);
    if !is_inference(&view) {
        out.skipped_spans += 1;
        return;
    }
    match map_span(span, &view, ctx).and_then(|event| validate::inference(&event, ctx).map(|()| event)) {
        Ok(event) => out.events.push(event),
        Err(error) => out.rejects.push(reject(span, &error, ctx)),
    }
}

fn reject(span: &Span, error: &Error, ctx: Ctx<'_>) -> super::Reject {
    let trace = hex_id(&span.trace_id).unwrap_or_default();
    let span_id = hex_id(&span.span_id).unwrap_or_default();
    // Serialising prost types with serde_json cannot fail (no non-string map keys).
    let payload = serde_json::to_vec(span).unwrap_or_default();
    ctx.item_reject(format_args!("span {trace}{span_id} {:?}", span.name), error, payload)
}

/// DESIGN §3.1: GenAI operation, OpenInference LLM/EMBEDDING kind, or any OpenLLMetry request type.
pub(super) fn is_inference(view: &View<'_, '_>) -> bool {
    if let Some(operation) = view.str(&[Key::OperationName])
        && matches!(operation, "chat" | "text_completion" | "generate_content" | "embeddings")
    {
        return true;
    }
    if let Some(kind) = view.str(&[Key::OiSpanKind])
        && (kind.eq_ignore_ascii_case("LLM") || kind.eq_ignore_ascii_case("EMBEDDING"))
    {
        return true;
    }
    view.first(&[Key::LlmRequestType]).is_some()
}

/// Map one inference span to an event (before validation).
pub(super) fn map_span(span: &Span, view: &View<'_, '_>, ctx: Ctx<'_>) -> Result<InferenceEvent> {
    let trace_id = hex_id(&span.trace_id).ok_or(Error::MissingField { field: "traceId" })?;
    let span_id = hex_id(&span.span_id).ok_or(Error::MissingField { field: "spanId" })?;
    let app = view.text(rows::APP).ok_or(Error::MissingField { field: "service.name" })?;
    if span.end_time_unix_nano == 0 {
        return Err(Error::MissingField { field: "endTimeUnixNano" });
    }
    let time = otlp_time("endTimeUnixNano", span.end_time_unix_nano, ctx.config)?;
    let (start_time, latency_ms) = if span.start_time_unix_nano == 0 {
        (time, None)
    } else {
        let start = otlp_time("startTimeUnixNano", span.start_time_unix_nano, ctx.config)?;
        (start, Some(nanos_to_ms(i128::from(time) - i128::from(start))))
    };

    let operation = match view.text(rows::OPERATION) {
        Some(operation) => normalize_operation(&operation),
        None => match view.str(&[Key::OiSpanKind]) {
            Some(kind) if kind.eq_ignore_ascii_case("EMBEDDING") => "embeddings".to_owned(),
            _ => "chat".to_owned(),
        },
    };
    let request_model = view.text(rows::REQUEST_MODEL);
    let response_model = view.text(rows::RESPONSE_MODEL).or_else(|| request_model.clone());

    let (status, status_message) = match span.status.as_ref() {
        Some(status) if status.code == StatusCode::Error as i32 => (CallStatus::Error, status.message.as_str()),
        Some(status) if status.code == StatusCode::Ok as i32 => (CallStatus::Ok, ""),
        _ => (CallStatus::Unset, ""),
    };
    // error.type first, then an exception event's type, then the status message.
    let error_type =
        view.text(rows::ERROR_TYPE).or_else(|| (!status_message.is_empty()).then(|| status_message.to_owned()));

    let ttft_ms = view.float(rows::TTFT)?.map(|seconds| seconds * 1000.0);

    Ok(InferenceEvent {
        event_id: format!("{trace_id}{span_id}"),
        trace_id: Some(trace_id),
        span_id: Some(span_id),
        response_id: view.text(rows::RESPONSE_ID),
        time,
        start_time,
        app,
        environment: view.text(rows::ENVIRONMENT),
        provider: view.str(rows::PROVIDER).map(normalize_provider),
        operation,
        request_model,
        response_model,
        prompt_id: view.text(rows::PROMPT_ID),
        prompt_version: view.text(rows::PROMPT_VERSION),
        input_tokens: view.int(rows::INPUT_TOKENS)?,
        output_tokens: view.int(rows::OUTPUT_TOKENS)?,
        cache_read_tokens: view.int(rows::CACHE_READ_TOKENS)?,
        reasoning_tokens: view.int(rows::REASONING_TOKENS)?,
        reported_cost_usd: view.float(rows::REPORTED_COST)?,
        latency_ms,
        ttft_ms,
        status,
        error_type,
        finish_reason: view.text(rows::FINISH_REASON),
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
    })
}

#[allow(clippy::cast_precision_loss)] // latencies are far below 2^53 ns
fn nanos_to_ms(nanos: i128) -> f64 {
    nanos as f64 / 1e6
}
