//! OTLP log records -> feedback events.
//!
//! Records enter either from a decoded `LogsData` (OTLP/JSON, or protobuf that
//! the wire reader left to prost) or straight from protobuf bytes through
//! `otlp_wire`; both arrive as the same `RecordParts`. Records whose event
//! name (the `event_name` field or the `event.name` attribute) is
//! `gen_ai.evaluation.result`, or that carry OpenInference `annotation.name`,
//! become [`FeedbackEvent`]s tied to the evaluated inference by the record's
//! trace/span id or `gen_ai.response.id`. Their app is the record's (often an
//! evaluator service) until the feedback join attributes them to the app of the
//! inference they rate. Other records are counted in
//! `skipped_spans`. The span decoder reuses [`feedback`] for span events.

use driftwatch_lake::model::{FeedbackEvent, UnixNanos};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use super::attributes::{Attrs, Key, View, normalize_operation, rows};
use super::otlp_wire::{self, Malformed, Origin, WireLogRecord};
use super::{Ctx, Decoded, Error, Result, hex_id, otlp_time, span_event_id, span_id_hex, trace_id_hex, validate};

/// The GenAI semconv event carrying an evaluation result.
pub(super) const EVALUATION_EVENT: &str = "gen_ai.evaluation.result";

/// Map every log record of one message decoded by prost.
pub(super) fn decode(data: &LogsData, ctx: Ctx<'_>, out: &mut Decoded) {
    for resource_logs in &data.resource_logs {
        let resource = resource_logs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let resource = Attrs::from_list(resource);
        for scope_logs in &resource_logs.scope_logs {
            for record in &scope_logs.log_records {
                decode_record(&RecordParts::decoded(record), &resource, ctx, out);
            }
        }
    }
}

/// Map every log record of one protobuf message, reading it in place. A record the reader does
/// not accept is left to prost alone, and rejected alone when prost does not accept it either.
/// `Malformed` (the resource or scope layers are broken, or the message holds spans): `out` is
/// left as it was before the call, so the caller can decode the message with prost instead.
pub(super) fn decode_wire(message: &[u8], ctx: Ctx<'_>, out: &mut Decoded) -> std::result::Result<(), Malformed> {
    out.undo_on_error(|out| {
        otlp_wire::for_each_item(message, |bytes, resource, _scope| match WireLogRecord::parse(bytes) {
            Ok(record) => {
                decode_record(&RecordParts::wire(record), resource, ctx, out);
                Ok(())
            }
            Err(Malformed) => decode_unread_record(bytes, resource, ctx, out),
        })
    })
}

/// A record the wire reader does not take, in a message whose outer layers are sound: prost
/// decides for this record alone, as `otlp_traces` does for a span. `Malformed` when the item
/// is a span: a traces message.
fn decode_unread_record(
    bytes: &[u8],
    resource: &Attrs<'_>,
    ctx: Ctx<'_>,
    out: &mut Decoded,
) -> std::result::Result<(), Malformed> {
    match LogRecord::decode(bytes) {
        Ok(record) => decode_record(&RecordParts::decoded(&record), resource, ctx, out),
        Err(_) if Span::decode(bytes).is_ok() => return Err(Malformed),
        Err(source) => {
            let error = Error::MalformedProtobuf { what: "LogRecord", source };
            let (_, span_id) = otlp_wire::ids_of_unread_item(bytes, 9, 10);
            let id = hex_id(span_id).unwrap_or_default();
            out.rejects.push(ctx.item_reject(format_args!("log record span {id:?}"), &error, bytes));
        }
    }
    Ok(())
}

/// The fields of one log record that the mapping reads, whichever decoder produced them.
struct RecordParts<'a> {
    time_unix_nano: u64,
    observed_time_unix_nano: u64,
    trace_id: &'a [u8],
    span_id: &'a [u8],
    event_name: &'a str,
    attrs: Attrs<'a>,
    /// The record itself, for the copy a reject keeps.
    origin: Origin<'a, LogRecord>,
}

impl<'a> RecordParts<'a> {
    fn decoded(record: &'a LogRecord) -> Self {
        RecordParts {
            time_unix_nano: record.time_unix_nano,
            observed_time_unix_nano: record.observed_time_unix_nano,
            trace_id: &record.trace_id,
            span_id: &record.span_id,
            event_name: &record.event_name,
            attrs: Attrs::from_list(&record.attributes),
            origin: Origin::Decoded(record),
        }
    }

    fn wire(record: WireLogRecord<'a>) -> Self {
        RecordParts {
            time_unix_nano: record.time_unix_nano,
            observed_time_unix_nano: record.observed_time_unix_nano,
            trace_id: record.trace_id,
            span_id: record.span_id,
            event_name: record.event_name,
            attrs: record.attrs,
            origin: Origin::Wire(record.bytes),
        }
    }
}

fn decode_record(record: &RecordParts<'_>, resource: &Attrs<'_>, ctx: Ctx<'_>, out: &mut Decoded) {
    let attrs = &record.attrs;
    let name = if record.event_name.is_empty() {
        View::new(attrs, &Attrs::default()).str(&[Key::EventName]).unwrap_or("")
    } else {
        record.event_name
    };
    if !is_feedback(name, attrs) {
        out.skipped_spans += 1;
        return;
    }
    // Exporters leave time_unix_nano unset when the app did not give one; the
    // SDK always sets the observed time.
    let time = if record.time_unix_nano == 0 { record.observed_time_unix_nano } else { record.time_unix_nano };
    match feedback(&View::new(attrs, resource), record.trace_id, record.span_id, time, ctx) {
        Ok(feedback) => out.feedback.push(feedback),
        Err(error) => {
            let id = hex_id(record.span_id).unwrap_or_default();
            let payload = record.origin.to_json();
            out.rejects.push(ctx.item_reject(format_args!("log record {name:?} span {id:?}"), &error, &payload));
        }
    }
}

/// True for an evaluation event or an OpenInference annotation.
pub(super) fn is_feedback(event_name: &str, attrs: &Attrs<'_>) -> bool {
    event_name == EVALUATION_EVENT || attrs.has(Key::AnnotationName)
}

/// Build and validate one feedback event from evaluation attributes.
///
/// `trace_id`/`span_id` are the evaluated span's ids (a log record's context,
/// or the span that carries the event).
pub(super) fn feedback(
    view: &View<'_, '_>,
    trace_id: &[u8],
    span_id: &[u8],
    time: u64,
    ctx: Ctx<'_>,
) -> Result<FeedbackEvent> {
    let name = view.text(rows::FEEDBACK_NAME).ok_or(Error::MissingField { field: "gen_ai.evaluation.name" })?;
    let app = view.text(rows::APP).ok_or(Error::MissingField { field: "service.name" })?;
    if time == 0 {
        return Err(Error::MissingField { field: "timeUnixNano" });
    }
    let time: UnixNanos = otlp_time("timeUnixNano", time, ctx)?;
    let trace_hex = trace_id_hex(trace_id)?;
    let span_hex = span_id_hex(span_id)?;
    let inference_id = match (&trace_hex, &span_hex) {
        (Some(trace), Some(span)) => Some(span_event_id(trace, span)),
        _ => None,
    };
    let response_id = view.text(rows::RESPONSE_ID);

    let feedback = FeedbackEvent {
        feedback_id: feedback_id(trace_id, span_id, &name, time, response_id.as_deref(), &app),
        time,
        app,
        environment: view.text(rows::ENVIRONMENT),
        name,
        score_value: view.float(rows::FEEDBACK_SCORE)?,
        score_label: view.text(rows::FEEDBACK_LABEL),
        trace_id: trace_hex,
        span_id: span_hex,
        response_id,
        inference_id,
        response_model: view.text(rows::RESPONSE_MODEL),
        provider: view.provider(),
        // The spans' operation row (DESIGN §3.2), so feedback from OpenLLMetry-instrumented apps
        // carries the operation its inference has.
        operation: view.str(rows::OPERATION).map(normalize_operation),
        prompt_id: view.text(rows::PROMPT_ID),
        prompt_version: view.text(rows::PROMPT_VERSION),
        source: None,
    };
    validate::feedback(&feedback, ctx)?;
    Ok(feedback)
}

/// Stable identity of a feedback record: the same record replayed hashes the same.
fn feedback_id(
    trace_id: &[u8],
    span_id: &[u8],
    name: &str,
    time: UnixNanos,
    response_id: Option<&str>,
    app: &str,
) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(trace_id);
    hasher.update(span_id);
    // Length prefixes keep ("ab","c") and ("a","bc") apart.
    for part in [name, response_id.unwrap_or(""), app] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.update(&time.to_le_bytes());
    let hash = hasher.finalize();
    hex_id(&hash.as_bytes()[..16]).unwrap_or_else(|| "0".repeat(32))
}
