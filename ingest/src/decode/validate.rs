//! Plausibility checks applied to every decoded event, whatever its format.
//!
//! Events enter after mapping; an event that fails leaves as an [`Error`]
//! that the format decoder turns into a reject for that item only. The checks
//! catch producer bugs that would otherwise poison sums and windows: negative
//! or absurd token counts, more cached (read or written) than input tokens or more reasoning than
//! output tokens (any would be mis-priced; span decoding first adds parts that a copied provider
//! usage left out), clocks in the wrong unit, end-before-start spans and non-finite latencies. A
//! reported cost that is no amount does not reject its event: the decoders read it through
//! [`ReportedCost`], which drops it; nor does a time to first token longer than the call, which
//! [`drop_ttft_past_the_end`] drops. They also bound every string an event
//! carries: names and ids end up in lake columns and metric labels, which are held in memory
//! per label set, so one producer writing a megabyte into `gen_ai.request.model` must not
//! inflate every scrape. Free text (`error_type`, a feedback label) is not refused, because the
//! call it describes is still worth keeping: enrichment cuts it once it is scrubbed.

use driftwatch_lake::layout::{MAX_ESCAPED_PARTITION_VALUE_BYTES, escaped_path_value_len};
use driftwatch_lake::model::{FeedbackEvent, InferenceEvent, UnixNanos};

use super::{Ctx, Error, Result};

/// Longest latency or time to first token accepted, in milliseconds: a day. Calls time out
/// long before; anything above is a unit bug.
const MAX_PLAUSIBLE_LATENCY_MS: f64 = 86_400_000.0;

/// Slack allowed when a time to first token exceeds the call's latency: both may be rounded
/// to whole milliseconds by the producer.
const TTFT_ROUNDING_MS: f64 = 1.0;

/// Longest name (environment, provider, operation, model, prompt id or version, finish reason,
/// golden case, evaluation name) or id accepted, in bytes. Real ones are tens of bytes (a
/// Bedrock model id with its version is about 50; a W3C trace id 32); the bound is what keeps a
/// label set's memory and its lines in `/metrics` small whatever a producer sends.
pub(crate) const MAX_NAME_BYTES: usize = 256;

/// A producer's own cost figure as its event keeps it. Driftwatch prices every call itself and
/// keeps this figure only to reconcile with that price, so one that is no amount (not a number,
/// negative, NaN or infinite) is dropped rather than the call with it: the call's tokens are
/// still priced. `dropped` says that one was there, for `Decoded::dropped_reported_costs`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct ReportedCost {
    /// The figure kept, in USD.
    pub(super) usd: Option<f64>,
    /// Whether the producer sent a figure that was dropped.
    pub(super) dropped: bool,
}

impl ReportedCost {
    /// A figure that is not a number at all.
    pub(super) const UNREADABLE: ReportedCost = ReportedCost { usd: None, dropped: true };

    /// A number read as the reported cost, or its absence.
    pub(super) fn checked(usd: Option<f64>) -> Self {
        match usd {
            Some(usd) if !usd.is_finite() || usd < 0.0 => Self::UNREADABLE,
            usd => ReportedCost { usd, dropped: false },
        }
    }
}

/// Check one inference event.
pub(super) fn inference(event: &InferenceEvent, ctx: Ctx<'_>) -> Result<()> {
    let config = ctx.config;
    time_in_range("time", event.time, ctx)?;
    names_within_bound([
        // The JSON key: a span's id is its trace and span ids, which cannot be too long.
        ("id", Some(event.event_id.as_str())),
        ("trace_id", event.trace_id.as_deref()),
        ("span_id", event.span_id.as_deref()),
        ("response_id", event.response_id.as_deref()),
        ("environment", event.environment.as_deref()),
        ("provider", event.provider.as_deref()),
        ("operation", Some(event.operation.as_str())),
        ("request_model", event.request_model.as_deref()),
        ("response_model", event.response_model.as_deref()),
        ("prompt_id", event.prompt_id.as_deref()),
        ("prompt_version", event.prompt_version.as_deref()),
        ("finish_reason", event.finish_reason.as_deref()),
        ("service_tier", event.service_tier.as_deref()),
        ("golden_case", event.golden_case.as_deref()),
    ])?;
    check_app(&event.app)?;
    for (field, value) in [
        ("input_tokens", event.input_tokens),
        ("output_tokens", event.output_tokens),
        ("cache_read_tokens", event.cache_read_tokens),
        ("cache_write_tokens", event.cache_write_tokens),
        ("reasoning_tokens", event.reasoning_tokens),
    ] {
        let Some(value) = value else { continue };
        if value < 0 {
            return Err(Error::NegativeTokens { field, value });
        }
        if value > config.max_tokens_per_call {
            return Err(Error::ImplausibleTokens { field, value, limit: config.max_tokens_per_call });
        }
    }
    // Input tokens include the cached ones (OTel GenAI semantic conventions, and the lake's
    // `input_tokens`). A producer that follows Anthropic's usage object instead, whose
    // `input_tokens` leaves cache reads out, would be priced for too few tokens: dead-letter
    // the row with what to fix rather than store a cost that is silently wrong.
    // Tokens written to the cache are input tokens too (OTel GenAI: their count "SHOULD be
    // included in `gen_ai.usage.input_tokens`"), and not the ones read from it. Pricing charges
    // the plain input price only on input tokens that are neither: input tokens that leave the
    // cached ones out, like Anthropic's `usage.input_tokens`, would be mis-priced.
    if let Some((input, _)) = cache_beyond_input(event) {
        return Err(match (event.cache_read_tokens, event.cache_write_tokens) {
            (Some(read), _) if read > input => part_exceeds_whole(
                "cache_read_tokens",
                &format!("cache_read_tokens ({read})"),
                ("input_tokens", input),
                "cached tokens",
                ANTHROPIC,
            ),
            // The reads alone fit, so there are writes.
            (read, written) => {
                let written = written.unwrap_or(0);
                let part = match read {
                    Some(read) => format!("cache_read_tokens ({read}) + cache_write_tokens ({written})"),
                    None => format!("cache_write_tokens ({written})"),
                };
                let includes = "cached tokens, read and written";
                part_exceeds_whole("cache_write_tokens", &part, ("input_tokens", input), includes, ANTHROPIC)
            }
        });
    }
    // Likewise reasoning tokens are part of the output tokens (OTel GenAI semantic conventions:
    // `gen_ai.usage.reasoning.output_tokens` is included in `gen_ai.usage.output_tokens`) and
    // billed as output. Output tokens that leave them out, as Gemini's `candidatesTokenCount`
    // leaves out `thoughtsTokenCount`, would price the call too low.
    if let Some((output, reasoning)) = reasoning_beyond_output(event) {
        let part = format!("reasoning_tokens ({reasoning})");
        let gemini = "Gemini's usageMetadata.candidatesTokenCount excludes them; send candidatesTokenCount + \
                      thoughtsTokenCount";
        return Err(part_exceeds_whole(
            "reasoning_tokens",
            &part,
            ("output_tokens", output),
            "reasoning tokens",
            gemini,
        ));
    }
    if event.time < event.start_time {
        return Err(Error::NegativeLatency {
            field: "end_time - start_time",
            value: nanos_to_ms(i128::from(event.time) - i128::from(event.start_time)),
        });
    }
    for (field, value) in [("latency_ms", event.latency_ms), ("ttft_ms", event.ttft_ms)] {
        let Some(value) = value else { continue };
        if !value.is_finite() {
            return Err(Error::NonFinite { field });
        }
        if value < 0.0 {
            return Err(Error::NegativeLatency { field, value });
        }
        if value > MAX_PLAUSIBLE_LATENCY_MS {
            return Err(Error::ImplausibleLatency { field, value, limit: MAX_PLAUSIBLE_LATENCY_MS });
        }
    }
    Ok(())
}

/// The input tokens and the cache counts (read and written) together, when these exceed those:
/// the conventions count both inside the input.
fn cache_beyond_input(event: &InferenceEvent) -> Option<(i64, i64)> {
    let input = event.input_tokens?;
    let cached = cached_tokens(event);
    (cached > input).then_some((input, cached))
}

/// Tokens read from and written to the prompt cache.
fn cached_tokens(event: &InferenceEvent) -> i64 {
    event.cache_read_tokens.unwrap_or(0).saturating_add(event.cache_write_tokens.unwrap_or(0))
}

/// The output and reasoning tokens, when these exceed those: the conventions count reasoning
/// inside the output.
fn reasoning_beyond_output(event: &InferenceEvent) -> Option<(i64, i64)> {
    let (output, reasoning) = (event.output_tokens?, event.reasoning_tokens?);
    (reasoning > output).then_some((output, reasoning))
}

/// Instrumentations that copy a provider's usage object as it is report Anthropic's and Bedrock's
/// input tokens without the cached ones (`opentelemetry-instrumentation-botocore`'s Converse
/// spans, OpenLIT's Anthropic and Bedrock spans), or Gemini's output tokens without the thinking
/// ones. In a span, where the parts exceed the whole, the whole cannot have included them, so
/// they are added before [`inference`] would refuse the call, as it refuses a JSON event (whose
/// producer can be fixed). Parts below the whole are taken as included, the conventions'
/// reading, unless `cache_left_out` says the instrumentation is known to leave even a smaller
/// cache out (`otlp_traces::input_leaves_cache_out`); another report that leaves out a smaller
/// cache cannot be told apart and is priced low (README). Negative counts are left for
/// [`inference`] to refuse.
pub(super) fn include_parts_left_out(event: &mut InferenceEvent, cache_left_out: bool) {
    let counts = [event.input_tokens, event.cache_read_tokens, event.cache_write_tokens];
    if counts.iter().all(|count| count.unwrap_or(0) >= 0)
        && let Some(input) = event.input_tokens
    {
        let cached = cached_tokens(event);
        if cache_left_out || cached > input {
            event.input_tokens = Some(input.saturating_add(cached));
        }
    }
    if let Some((output, reasoning)) = reasoning_beyond_output(event)
        && output >= 0
    {
        event.output_tokens = Some(output.saturating_add(reasoning));
    }
}

/// Drop a time to first token longer than the whole call, and say so (for
/// `Decoded::dropped_ttfts`). Such a figure is a producer's timing bug (OpenLIT starts its
/// streamed Gemini span when the stream ends, so the span is shorter than its own first token);
/// the call's tokens and cost are still good, so it is kept without the figure rather than
/// refused. Values that are no durations at all are left for [`inference`] to refuse.
pub(super) fn drop_ttft_past_the_end(event: &mut InferenceEvent) -> bool {
    let past_the_end = matches!(
        (event.ttft_ms, event.latency_ms),
        (Some(ttft), Some(latency)) if ttft.is_finite() && latency.is_finite() && ttft > latency + TTFT_ROUNDING_MS
    );
    if past_the_end {
        event.ttft_ms = None;
    }
    past_the_end
}

/// How a producer that follows Anthropic's usage object, whose `input_tokens` leaves the cache out,
/// should send its counts.
const ANTHROPIC: &str = "Anthropic's usage.input_tokens excludes them; send input_tokens + cache_read_input_tokens + \
                         cache_creation_input_tokens";

/// The reject of a token count (`part`, as shown) that the conventions count inside another
/// (`whole`) but that exceeds it: priced from such counts the call would cost too little. `hint`
/// names the usage object that leaves the part out, and what to send instead.
fn part_exceeds_whole(
    field: &'static str,
    part: &str,
    (whole_field, whole): (&str, i64),
    includes: &str,
    hint: &str,
) -> Error {
    let detail = format!(
        "{part} exceed {whole_field} ({whole}): {whole_field} must include {includes}, as in OTel GenAI semantic \
         conventions ({hint})"
    );
    Error::InvalidField { field, detail }
}

/// Check one feedback event.
pub(super) fn feedback(feedback: &FeedbackEvent, ctx: Ctx<'_>) -> Result<()> {
    time_in_range("time", feedback.time, ctx)?;
    check_app(&feedback.app)?;
    names_within_bound([
        ("id", Some(feedback.feedback_id.as_str())),
        ("name", Some(feedback.name.as_str())),
        ("environment", feedback.environment.as_deref()),
        ("trace_id", feedback.trace_id.as_deref()),
        ("span_id", feedback.span_id.as_deref()),
        ("response_id", feedback.response_id.as_deref()),
        ("inference_id", feedback.inference_id.as_deref()),
        ("response_model", feedback.response_model.as_deref()),
        ("provider", feedback.provider.as_deref()),
        ("operation", feedback.operation.as_deref()),
        ("prompt_id", feedback.prompt_id.as_deref()),
        ("prompt_version", feedback.prompt_version.as_deref()),
    ])?;

    if feedback.score_value.is_some_and(|score| !score.is_finite()) {
        return Err(Error::NonFinite { field: "score" });
    }
    Ok(())
}

/// Refuse an app id that is blank (for feedback as for calls: its tally is keyed by it) or too
/// long to name its lake folder (`app=<app>`, escaped).
fn check_app(app: &str) -> Result<()> {
    if app.trim().is_empty() {
        return Err(Error::MissingField { field: "app" });
    }
    let app_path_bytes = escaped_path_value_len(app);
    if app_path_bytes > MAX_ESCAPED_PARTITION_VALUE_BYTES {
        return Err(Error::InvalidField {
            field: "app",
            detail: format!(
                "{} characters, {app_path_bytes} bytes as a lake path segment (at most \
                 {MAX_ESCAPED_PARTITION_VALUE_BYTES}); an app id is a short name",
                app.chars().count()
            ),
        });
    }
    Ok(())
}

/// Refuse the first name or id longer than [`MAX_NAME_BYTES`].
fn names_within_bound<const N: usize>(fields: [(&'static str, Option<&str>); N]) -> Result<()> {
    for (field, value) in fields {
        if let Some(value) = value
            && value.len() > MAX_NAME_BYTES
        {
            return Err(Error::InvalidField {
                field,
                detail: format!("{} bytes, at most {MAX_NAME_BYTES}: names and ids are short", value.len()),
            });
        }
    }
    Ok(())
}

fn time_in_range(field: &'static str, time: UnixNanos, ctx: Ctx<'_>) -> Result<()> {
    if time < ctx.config.min_event_time || time > ctx.latest_event_time() {
        return Err(ctx.time_out_of_range(field, i128::from(time)));
    }
    Ok(())
}

#[allow(clippy::cast_precision_loss)] // a display value; sub-nanosecond precision is irrelevant
fn nanos_to_ms(nanos: i128) -> f64 {
    nanos as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode, decode_traces, kv, s, span, traces};
    use crate::decode::{Decoded, PayloadFormat};
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    fn json_with_tokens(tokens: &str) -> Decoded {
        let line = format!(r#"{{"id":"e","time":"2025-06-01T12:00:00Z","app":"a",{tokens}}}"#);
        decode(line.as_bytes(), PayloadFormat::JsonEvents)
    }

    #[test]
    fn more_cached_than_input_tokens_is_rejected_in_json_and_added_in_spans() {
        // Anthropic's own `input_tokens` leaves cache reads out; priced as if it held them, such
        // a call was undercounted, so it goes to the dead letters rather than into the cost.
        let out = json_with_tokens(r#""input_tokens":50,"cache_read_tokens":10000,"output_tokens":20"#);
        assert_eq!(out.events.len(), 0);
        assert_eq!(out.rejects.len(), 1);
        assert_eq!(out.rejects[0].reason, "invalid_field");
        let detail = &out.rejects[0].detail;
        assert!(detail.contains("cache_read_tokens (10000) exceed input_tokens (50)"), "{detail}");
        assert!(detail.contains("input_tokens must include cached tokens"), "{detail}");

        // A span's instrumentation cannot be fixed by the app's owner: input tokens that cannot
        // have included the cache are taken to leave it out, as Anthropic's usage does.
        let attributes = vec![
            kv("gen_ai.operation.name", s("chat")),
            kv("gen_ai.usage.input_tokens", Value::IntValue(50)),
            kv("gen_ai.usage.cache_read.input_tokens", Value::IntValue(10_000)),
        ];
        let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![span(1, attributes)]));
        assert_eq!(out.rejects, vec![]);
        assert_eq!(out.events[0].input_tokens, Some(10_050));
    }

    #[test]
    fn more_cache_reads_and_writes_than_input_tokens_are_rejected_in_json_and_added_in_spans() {
        // Anthropic's usage as it comes: 200 uncached input tokens beside 100 000 written to the
        // cache, not summed into input_tokens. Priced as if input_tokens held them, the writes
        // would be clamped away.
        let out = json_with_tokens(r#""input_tokens":200,"cache_write_tokens":100000,"output_tokens":500"#);
        assert_eq!((out.events.len(), out.rejects.len()), (0, 1));
        assert_eq!(out.rejects[0].reason, "invalid_field");
        let detail = &out.rejects[0].detail;
        assert!(detail.contains("`cache_write_tokens`"), "{detail}");
        assert!(detail.contains("cache_write_tokens (100000) exceed input_tokens (200)"), "{detail}");
        assert!(detail.contains("input_tokens must include cached tokens, read and written"), "{detail}");

        // Reads and writes each fit, their sum does not.
        let out = json_with_tokens(r#""input_tokens":5000,"cache_read_tokens":3000,"cache_write_tokens":2001"#);
        assert_eq!((out.events.len(), out.rejects.len()), (0, 1));
        let detail = &out.rejects[0].detail;
        assert!(
            detail.contains("cache_read_tokens (3000) + cache_write_tokens (2001) exceed input_tokens (5000)"),
            "{detail}"
        );

        // In spans, whichever attribute rows carried the counts, cache counts that exceed the
        // input tokens are added to them (Anthropic's and Bedrock's usage, copied as it is).
        let attributes = |read: Option<i64>, written: (&str, i64)| {
            let mut attributes = vec![
                kv("gen_ai.operation.name", s("chat")),
                kv("gen_ai.usage.input_tokens", Value::IntValue(1_000)),
                kv(written.0, Value::IntValue(written.1)),
            ];
            attributes.extend(read.map(|read| kv("gen_ai.usage.cache_read.input_tokens", Value::IntValue(read))));
            attributes
        };
        let spans = vec![
            span(1, attributes(Some(400), ("gen_ai.usage.cache_creation.input_tokens", 600))),
            span(2, attributes(Some(400), ("gen_ai.usage.cache_creation.input_tokens", 601))),
            span(3, attributes(None, ("gen_ai.usage.cache_creation_input_tokens", 1_001))),
            span(4, attributes(None, ("llm.token_count.prompt_details.cache_write", 1_000))),
        ];
        let data = traces(vec![kv("service.name", s("a"))], spans);
        let json = serde_json::to_vec(&data).unwrap_or_default();
        for out in [decode_traces(&data), decode(&json, PayloadFormat::OtlpTraces)] {
            assert_eq!(out.rejects, vec![]);
            let kept: Vec<_> = out.events.iter().map(|e| (e.input_tokens, e.cache_write_tokens)).collect();
            assert_eq!(
                kept,
                [
                    (Some(1_000), Some(600)),
                    (Some(2_001), Some(601)),
                    (Some(2_001), Some(1_001)),
                    (Some(1_000), Some(1_000))
                ]
            );
        }
    }

    #[test]
    fn negative_or_implausible_cache_writes_are_rejected_like_other_token_counts() {
        let out = json_with_tokens(r#""input_tokens":50,"cache_write_tokens":-1"#);
        assert_eq!(out.events.len(), 0);
        let reasons: Vec<&str> = out.rejects.iter().map(|r| r.reason).collect();
        assert_eq!(reasons, ["negative_tokens"]);
        assert!(out.rejects[0].detail.contains("cache_write_tokens"), "{}", out.rejects[0].detail);
        let out = json_with_tokens(r#""cache_write_tokens":1000000000000"#);
        let reasons: Vec<&str> = out.rejects.iter().map(|r| r.reason).collect();
        assert_eq!(reasons, ["implausible_tokens"]);
        assert!(out.rejects[0].detail.contains("cache_write_tokens"), "{}", out.rejects[0].detail);
    }

    #[test]
    fn cache_reads_and_writes_up_to_the_input_tokens_are_accepted() {
        for tokens in [
            r#""input_tokens":100200,"cache_write_tokens":100000"#,
            r#""input_tokens":50,"cache_read_tokens":20,"cache_write_tokens":30"#,
            r#""input_tokens":50,"cache_write_tokens":50"#,
            r#""input_tokens":0,"cache_read_tokens":0,"cache_write_tokens":0"#,
            // Without input tokens there is nothing to compare with, and nothing is mis-costed.
            r#""cache_read_tokens":50,"cache_write_tokens":50"#,
        ] {
            let out = json_with_tokens(tokens);
            assert_eq!(out.rejects, vec![], "{tokens}");
            assert_eq!(out.events.len(), 1, "{tokens}");
        }
    }

    #[test]
    fn more_reasoning_than_output_tokens_is_rejected_in_json_and_added_in_spans() {
        // Reasoning tokens are part of the output tokens (OTel GenAI semantic conventions) and
        // billed as output: priced from output tokens that leave them out, the call was
        // undercounted.
        let out = json_with_tokens(r#""input_tokens":100,"output_tokens":40,"reasoning_tokens":900"#);
        assert_eq!(out.events.len(), 0);
        assert_eq!(out.rejects.len(), 1);
        assert_eq!(out.rejects[0].reason, "invalid_field");
        let detail = &out.rejects[0].detail;
        assert!(detail.contains("`reasoning_tokens`"), "{detail}");
        assert!(detail.contains("reasoning_tokens (900) exceed output_tokens (40)"), "{detail}");
        assert!(detail.contains("output_tokens must include reasoning tokens"), "{detail}");

        // In spans, whichever attribute rows carried the counts, reasoning tokens that exceed the
        // output tokens are added to them (Gemini's usage, copied as it is).
        let attributes = |reasoning: (&str, i64)| {
            vec![
                kv("gen_ai.operation.name", s("chat")),
                kv("gen_ai.usage.output_tokens", Value::IntValue(40)),
                kv(reasoning.0, Value::IntValue(reasoning.1)),
            ]
        };
        let spans = vec![
            span(1, attributes(("gen_ai.usage.reasoning.output_tokens", 40))),
            span(2, attributes(("gen_ai.usage.reasoning.output_tokens", 900))),
            span(3, attributes(("llm.token_count.completion_details.reasoning", 41))),
            span(4, attributes(("gen_ai.usage.reasoning_tokens", 12))),
        ];
        let data = traces(vec![kv("service.name", s("a"))], spans);
        let json = serde_json::to_vec(&data).unwrap_or_default();
        for out in [decode_traces(&data), decode(&json, PayloadFormat::OtlpTraces)] {
            assert_eq!(out.rejects, vec![]);
            let kept: Vec<_> = out.events.iter().map(|e| (e.output_tokens, e.reasoning_tokens)).collect();
            assert_eq!(
                kept,
                [(Some(40), Some(40)), (Some(940), Some(900)), (Some(81), Some(41)), (Some(40), Some(12))]
            );
        }
    }

    #[test]
    fn reasoning_tokens_up_to_the_output_tokens_are_accepted() {
        for tokens in [
            r#""output_tokens":50,"reasoning_tokens":50"#,
            r#""output_tokens":50,"reasoning_tokens":0"#,
            r#""output_tokens":0,"reasoning_tokens":0"#,
            // Without output tokens there is nothing to compare with, and nothing is mis-costed.
            r#""reasoning_tokens":50"#,
        ] {
            let out = json_with_tokens(tokens);
            assert_eq!(out.rejects, vec![], "{tokens}");
            assert_eq!(out.events.len(), 1, "{tokens}");
        }
    }

    #[test]
    fn cached_tokens_up_to_the_input_tokens_are_accepted() {
        for tokens in [
            r#""input_tokens":50,"cache_read_tokens":50"#,
            r#""input_tokens":50,"cache_read_tokens":0"#,
            r#""input_tokens":0,"cache_read_tokens":0"#,
            // Without input tokens there is nothing to compare with, and nothing is mis-costed.
            r#""cache_read_tokens":50"#,
        ] {
            let out = json_with_tokens(tokens);
            assert_eq!(out.rejects, vec![], "{tokens}");
            assert_eq!(out.events.len(), 1, "{tokens}");
        }
    }

    #[test]
    fn a_name_or_id_beyond_the_bound_rejects_its_event_alone() {
        let at_bound = "m".repeat(super::MAX_NAME_BYTES);
        let beyond = "m".repeat(super::MAX_NAME_BYTES + 1);
        for field in ["request_model", "environment", "prompt_version", "finish_reason", "id"] {
            let line = |value: &str| {
                let mut event = serde_json::json!({"id":"e","time":"2025-06-01T12:00:00Z","app":"a"});
                event[field] = serde_json::Value::String(value.to_owned());
                event.to_string()
            };
            let out = decode(line(&at_bound).as_bytes(), PayloadFormat::JsonEvents);
            assert_eq!((out.events.len(), out.rejects.len()), (1, 0), "{field} at the bound");
            let out = decode(line(&beyond).as_bytes(), PayloadFormat::JsonEvents);
            assert_eq!(out.events.len(), 0, "{field}");
            assert_eq!(out.rejects.len(), 1, "{field}");
            assert_eq!(out.rejects[0].reason, "invalid_field", "{field}");
            assert!(out.rejects[0].detail.contains("257 bytes, at most 256"), "{}", out.rejects[0].detail);
        }

        // Feedback's app has the inference's bound (it joins the same label sets).
        let feedback = serde_json::json!({"type":"feedback","id":"f","time":"2025-06-01T12:00:00Z",
            "app": "a".repeat(300), "name":"user_thumbs","score":1.0})
        .to_string();
        let out = decode(feedback.as_bytes(), PayloadFormat::JsonEvents);
        assert_eq!((out.feedback.len(), out.rejects.len()), (0, 1));
        assert!(out.rejects[0].detail.contains("300 characters"), "{}", out.rejects[0].detail);

        // A span with a megabyte model name goes alone; the span beside it is kept.
        let long = vec![kv("gen_ai.operation.name", s("chat")), kv("gen_ai.request.model", s(&"x".repeat(1 << 20)))];
        let short = vec![kv("gen_ai.operation.name", s("chat")), kv("gen_ai.request.model", s("gpt-4o"))];
        let out = decode_traces(&traces(vec![kv("service.name", s("a"))], vec![span(1, long), span(2, short)]));
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].request_model.as_deref(), Some("gpt-4o"));
        let reasons: Vec<&str> = out.rejects.iter().map(|r| r.reason).collect();
        assert_eq!(reasons, ["invalid_field"]);
    }
}
