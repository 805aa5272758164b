//! `llm_events` JSON events -> inference or feedback events.
//!
//! One JSON object per Kafka message or NDJSON line enters; it leaves as one
//! [`InferenceEvent`] or [`FeedbackEvent`], or as an error the caller turns
//! into a reject of the whole message. Unknown keys are ignored; `null` is the
//! same as absent, and so is `""` for every key but `input` and `output`; a repeated key keeps
//! its first value; a value of the wrong type is `invalid_field` naming the key, except a
//! `reported_cost_usd` that is no amount, which is dropped from the kept event and counted.
//!
//! # Schema
//!
//! Inference event (`"type": "inference"`, the default when `type` is absent):
//!
//! | key | type | notes |
//! |---|---|---|
//! | `type` | string | `inference` (default) or `feedback`; anything else is `unknown_event_type` |
//! | `id` | string | **required**; the event id used for deduplication |
//! | `time` | string | **required** unless `time_unix_nano`: RFC 3339 end time of the call |
//! | `time_unix_nano` | integer | end time as Unix nanoseconds (alternative to `time`; when both are sent they must agree to the second, and this one is kept) |
//! | `app` | string | **required**; the micro app |
//! | `environment` | string | `prod`, `staging`, ... |
//! | `provider` | string | normalised like `gen_ai.provider.name` (lower-case, `az.ai.*` -> `azure.ai.*`) |
//! | `operation` | string | default `chat` |
//! | `request_model`, `response_model` | string | `response_model` defaults to `request_model` |
//! | `prompt_id`, `prompt_version` | string | prompt template identity |
//! | `input_tokens`, `output_tokens`, `cache_read_tokens`, `cache_write_tokens`, `reasoning_tokens` | integer | non-negative; `input_tokens` includes the tokens read from and written to the provider's cache, so `cache_read_tokens + cache_write_tokens` may not exceed it; `output_tokens` includes the reasoning ones, so `reasoning_tokens` may not exceed it |
//! | `reported_cost_usd` | number | the app's own cost figure; a value that is not a non-negative number is dropped (`Decoded::dropped_reported_costs`), the event kept |
//! | `latency_ms` | number | `start_time = time - latency_ms` |
//! | `ttft_ms` | number | time to first token |
//! | `status` | string | `ok`, `error` or `unset` (default) |
//! | `error_type`, `finish_reason`, `response_id` | string | |
//! | `service_tier` | string | the provider's tier that served the call (`default`, `flex`, `priority`); priced at the tier's rates where the registry has them |
//! | `trace_id`, `span_id` | string | W3C trace context ids when the app also traces: 32 and 16 hex digits (any case; all zeros is the same as absent); feedback from any app or format can then name the call by them |
//! | `input`, `output` | string | raw content; hashed/scrubbed by enrichment |
//! | `golden_case` | string | id of a fixed CI test input |
//!
//! Feedback event (`"type": "feedback"`):
//!
//! | key | type | notes |
//! |---|---|---|
//! | `id` | string | **required**; the feedback id used for deduplication |
//! | `time` / `time_unix_nano` | string / integer | **required**, as above |
//! | `app` | string | **required** |
//! | `name` | string | **required**; `hallucination`, `user_thumbs`, or any evaluation name |
//! | `score` | number | numeric score |
//! | `label` | string | e.g. `hallucinated`, `down` |
//! | `inference_id` | string | `id` of the evaluated inference event of the same `app`; absent, `trace_id` + `span_id` when both are given |
//! | `response_id`, `trace_id`, `span_id` | string | other ways to find the evaluated inference, in any app; the ids as for inference events |
//! | `environment`, `provider`, `operation`, `response_model`, `prompt_id`, `prompt_version` | string | context when known |

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use driftwatch_lake::model::{CallStatus, FeedbackEvent, InferenceEvent, UnixNanos};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;

use super::attributes::{normalize_operation, normalize_provider, normalize_service_tier};
use super::validate::ReportedCost;
use super::{Ctx, Decoded, Error, Result, Rfc3339, span_event_id, validate};

/// Decode one JSON event message.
pub(super) fn decode(text: &str, ctx: Ctx<'_>, out: &mut Decoded) -> Result<()> {
    let current = Cell::new("");
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let raw = RawSeed { current: &current }
        .deserialize(&mut deserializer)
        .and_then(|raw| deserializer.end().map(|()| raw))
        .map_err(|source| match source.classify() {
            Category::Data if !current.get().is_empty() => {
                Error::InvalidField { field: current.get(), detail: source.to_string() }
            }
            _ => Error::MalformedJson { what: "JSON event", source },
        })?;
    match raw.kind.as_deref() {
        None | Some("inference") => {
            let (event, reported_cost) = raw.into_inference(ctx)?;
            out.keep_inference(event, reported_cost, ctx)?;
        }
        Some("feedback") => {
            let feedback = raw.into_feedback(ctx)?;
            validate::feedback(&feedback, ctx)?;
            out.feedback.push(feedback);
        }
        Some(other) => {
            return Err(Error::UnknownEventType { found: other.chars().take(64).collect() });
        }
    }
    Ok(())
}

/// An integer that also accepts integral floats (`12.0`), as some JSON writers emit.
struct Int(i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Int, E> {
                i64::try_from(v).map(Int).map_err(|_| E::custom(format!("integer {v} is too large")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Int, E> {
                const LIMIT: f64 = 9_223_372_036_854_775_808.0;
                if v.is_finite() && v.fract() == 0.0 && v.abs() < LIMIT {
                    Ok(Int(v as i64))
                } else {
                    Err(E::custom(format!("expected an integer, found {v}")))
                }
            }
        }
        deserializer.deserialize_any(IntVisitor)
    }
}

/// `reported_cost_usd` as sent: a number, or any other value, which is no amount. Read without
/// failing, so that a producer's malformed figure costs the event only that figure.
enum CostValue {
    Number(f64),
    NotANumber,
}

impl CostValue {
    fn reported_cost(self) -> ReportedCost {
        match self {
            CostValue::Number(usd) => ReportedCost::checked(Some(usd)),
            CostValue::NotANumber => ReportedCost::UNREADABLE,
        }
    }
}

impl<'de> Deserialize<'de> for CostValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct CostVisitor;
        impl<'de> Visitor<'de> for CostVisitor {
            type Value = CostValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<CostValue, E> {
                Ok(CostValue::Number(v))
            }
            #[allow(clippy::cast_precision_loss)] // a cost in USD; its cents are exact far beyond any bill
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<CostValue, E> {
                Ok(CostValue::Number(v as f64))
            }
            #[allow(clippy::cast_precision_loss)] // as above
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<CostValue, E> {
                Ok(CostValue::Number(v as f64))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<CostValue, E> {
                Ok(CostValue::NotANumber)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<CostValue, E> {
                Ok(CostValue::NotANumber)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<CostValue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(CostValue::NotANumber)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<CostValue, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(CostValue::NotANumber)
            }
        }
        deserializer.deserialize_any(CostVisitor)
    }
}

/// A string borrowed from the input when it has no escapes: map keys, and the values that are
/// only parsed or normalised (`type`, `time`, `status`, `provider`, `operation`), which would
/// otherwise each cost an allocation and a copy per event.
#[derive(Debug)]
struct InputStr<'de>(Cow<'de, str>);

impl std::ops::Deref for InputStr<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for InputStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct InputStrVisitor;
        impl<'de> Visitor<'de> for InputStrVisitor {
            type Value = InputStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> std::result::Result<InputStr<'de>, E> {
                Ok(InputStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<InputStr<'de>, E> {
                Ok(InputStr(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(InputStrVisitor)
    }
}

/// An empty string is no value: producers whose structs default to `""` (Go, Java records)
/// send it for every field they leave unset, and a present `""` would, say, price a call as
/// model `""` instead of its request model, or join feedback by an empty response id. Content
/// (`input`, `output`) is exempt: an empty answer is an answer.
fn present(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

impl InputStr<'_> {
    /// [`present`] for a borrowed string.
    fn present(self) -> Option<Self> {
        (!self.0.is_empty()).then_some(self)
    }
}

macro_rules! raw_fields {
    ($($field:ident : $ty:ty => $conv:expr, $key:literal;)*) => {
        /// Every key of both schemas, as found (before required-field checks).
        #[derive(Debug, Default)]
        struct Raw<'de> { $($field: Option<$ty>,)* }

        fn assign<'de, A: MapAccess<'de>>(
            raw: &mut Raw<'de>,
            key: &str,
            map: &mut A,
            current: &Cell<&'static str>,
        ) -> std::result::Result<(), A::Error> {
            match key {
                $($key => {
                    current.set($key);
                    // A repeated key keeps its first value, like OTLP attributes.
                    let value = map.next_value::<Option<_>>()?.and_then($conv);
                    if raw.$field.is_none() {
                        raw.$field = value;
                    }
                })*
                _ => {
                    current.set("");
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
    };
}

raw_fields! {
    kind: InputStr<'de> => InputStr::present, "type";
    id: String => present, "id";
    time: InputStr<'de> => InputStr::present, "time";
    time_unix_nano: i64 => |v: Int| Some(v.0), "time_unix_nano";
    app: String => present, "app";
    environment: String => present, "environment";
    provider: InputStr<'de> => InputStr::present, "provider";
    operation: InputStr<'de> => InputStr::present, "operation";
    request_model: String => present, "request_model";
    response_model: String => present, "response_model";
    prompt_id: String => present, "prompt_id";
    prompt_version: String => present, "prompt_version";
    input_tokens: i64 => |v: Int| Some(v.0), "input_tokens";
    output_tokens: i64 => |v: Int| Some(v.0), "output_tokens";
    cache_read_tokens: i64 => |v: Int| Some(v.0), "cache_read_tokens";
    cache_write_tokens: i64 => |v: Int| Some(v.0), "cache_write_tokens";
    reasoning_tokens: i64 => |v: Int| Some(v.0), "reasoning_tokens";
    reported_cost_usd: ReportedCost => |v: CostValue| Some(v.reported_cost()), "reported_cost_usd";
    latency_ms: f64 => |v: f64| Some(v), "latency_ms";
    ttft_ms: f64 => |v: f64| Some(v), "ttft_ms";
    status: InputStr<'de> => InputStr::present, "status";
    error_type: String => present, "error_type";
    finish_reason: String => present, "finish_reason";
    service_tier: InputStr<'de> => InputStr::present, "service_tier";
    response_id: String => present, "response_id";
    trace_id: String => present, "trace_id";
    span_id: String => present, "span_id";
    input: String => |v: String| Some(v), "input";
    output: String => |v: String| Some(v), "output";
    golden_case: String => present, "golden_case";
    name: String => present, "name";
    score: f64 => |v: f64| Some(v), "score";
    label: String => present, "label";
    inference_id: String => present, "inference_id";
}

/// Deserialises a [`Raw`], recording which key is being read so type errors can name it.
struct RawSeed<'c> {
    current: &'c Cell<&'static str>,
}

impl<'de> DeserializeSeed<'de> for RawSeed<'_> {
    type Value = Raw<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> std::result::Result<Raw<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawSeed<'_> {
    type Value = Raw<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Raw<'de>, A::Error> {
        let mut raw = Raw::default();
        while let Some(InputStr(key)) = map.next_key::<InputStr<'de>>()? {
            assign(&mut raw, &key, &mut map, self.current)?;
        }
        self.current.set("");
        Ok(raw)
    }
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// A required key's value; `""` was already read as absent ([`present`]).
fn required(value: Option<String>, field: &'static str) -> Result<String> {
    value.ok_or(Error::MissingField { field })
}

impl Raw<'_> {
    /// `time` or `time_unix_nano`; when both are sent they must name the same second, and the
    /// nanoseconds (the finer) are kept.
    fn event_time(&self, ctx: Ctx<'_>) -> Result<UnixNanos> {
        let Some(text) = self.time.as_deref() else {
            return self.time_unix_nano.ok_or(Error::MissingField { field: "time" });
        };
        let parsed = chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|e| Error::InvalidField { field: "time", detail: format!("not an RFC 3339 time ({e})") })?;
        let from_text = parsed.timestamp_nanos_opt().ok_or_else(|| {
            let nanos = i128::from(parsed.timestamp()) * 1_000_000_000 + i128::from(parsed.timestamp_subsec_nanos());
            ctx.time_out_of_range("time", nanos)
        })?;
        let Some(nanos) = self.time_unix_nano else {
            return Ok(from_text);
        };
        if nanos.abs_diff(from_text) >= NANOS_PER_SECOND {
            return Err(Error::InvalidField {
                field: "time_unix_nano",
                detail: format!(
                    "{} disagrees with `time` {} (a clock or time zone is off); send one of the two",
                    Rfc3339(i128::from(nanos)),
                    Rfc3339(i128::from(from_text))
                ),
            });
        }
        Ok(nanos)
    }

    /// The event, and its reported cost as kept (for the count of dropped ones).
    fn into_inference(self, ctx: Ctx<'_>) -> Result<(InferenceEvent, ReportedCost)> {
        let time = self.event_time(ctx)?;
        let event_id = required(self.id, "id")?;
        let app = required(self.app, "app")?;
        let status = match self.status.as_deref() {
            // As on spans: an error type without a status reports a failed call.
            None if self.error_type.is_some() => CallStatus::Error,
            None => CallStatus::Unset,
            Some(text) if text.eq_ignore_ascii_case("unset") => CallStatus::Unset,
            Some(text) if text.eq_ignore_ascii_case("ok") => CallStatus::Ok,
            Some(text) if text.eq_ignore_ascii_case("error") => CallStatus::Error,
            Some(other) => {
                let other = other.to_ascii_lowercase();
                return Err(Error::InvalidField {
                    field: "status",
                    detail: format!("expected \"ok\", \"error\" or \"unset\", found {other:?}"),
                });
            }
        };
        // A negative or non-finite latency leaves the start at the end: validation then rejects
        // the latency by the name the producer sent it under, not as an end before the start.
        let start_time = match self.latency_ms {
            Some(latency) if latency.is_finite() && latency >= 0.0 => time.saturating_sub(ms_to_nanos(latency)),
            _ => time,
        };
        let reported_cost = self.reported_cost_usd.unwrap_or_default();
        let request_model = self.request_model;
        let event = InferenceEvent {
            event_id,
            trace_id: trace_context_id(self.trace_id, "trace_id", TRACE_ID_HEX_DIGITS)?,
            span_id: trace_context_id(self.span_id, "span_id", SPAN_ID_HEX_DIGITS)?,
            response_id: self.response_id,
            time,
            start_time,
            app,
            environment: self.environment,
            provider: self.provider.as_deref().map(normalize_provider),
            operation: self.operation.as_deref().map_or_else(|| "chat".to_owned(), normalize_operation),
            response_model: self.response_model.or_else(|| request_model.clone()),
            request_model,
            prompt_id: self.prompt_id,
            prompt_version: self.prompt_version,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cache_read_tokens: self.cache_read_tokens,
            cache_write_tokens: self.cache_write_tokens,
            reasoning_tokens: self.reasoning_tokens,
            reported_cost_usd: reported_cost.usd,
            latency_ms: self.latency_ms,
            ttft_ms: self.ttft_ms,
            status,
            error_type: self.error_type,
            finish_reason: self.finish_reason,
            service_tier: self.service_tier.as_deref().and_then(normalize_service_tier),
            golden_case: self.golden_case,
            input_content: self.input,
            output_content: self.output,
            ..InferenceEvent::default()
        };
        Ok((event, reported_cost))
    }

    fn into_feedback(self, ctx: Ctx<'_>) -> Result<FeedbackEvent> {
        let time = self.event_time(ctx)?;
        let trace_id = trace_context_id(self.trace_id, "trace_id", TRACE_ID_HEX_DIGITS)?;
        let span_id = trace_context_id(self.span_id, "span_id", SPAN_ID_HEX_DIGITS)?;
        // Feedback that names its inference only by span rates that span's call, as an OTLP
        // evaluation record parented to the span does, and gets the same inference id: the
        // join then finds the call whichever app or format recorded it.
        let inference_id = match (self.inference_id, trace_id.as_deref(), span_id.as_deref()) {
            (Some(id), _, _) => Some(id),
            (None, Some(trace), Some(span)) => Some(span_event_id(trace, span)),
            (None, _, _) => None,
        };
        Ok(FeedbackEvent {
            feedback_id: required(self.id, "id")?,
            time,
            app: required(self.app, "app")?,
            environment: self.environment,
            name: required(self.name, "name")?,
            score_value: self.score,
            score_label: self.label,
            trace_id,
            span_id,
            response_id: self.response_id,
            inference_id,
            response_model: self.response_model,
            provider: self.provider.as_deref().map(normalize_provider),
            operation: self.operation.as_deref().map(normalize_operation),
            prompt_id: self.prompt_id,
            prompt_version: self.prompt_version,
            source: None,
        })
    }
}

/// Hex digits of a W3C trace id, as OTLP carries it in 16 bytes.
const TRACE_ID_HEX_DIGITS: usize = 32;
/// Hex digits of a W3C span id, as OTLP carries it in 8 bytes.
const SPAN_ID_HEX_DIGITS: usize = 16;

/// A JSON event's trace or span id, lower-cased as OTLP spans' ids are; all zeros (the W3C
/// invalid id) is absent, as `""` already is ([`present`]). Other shapes are refused rather than kept: the join names a span's
/// call by the two ids joined without a separator (as OTLP event ids are), so ids of other
/// lengths could join into another call's id, and ids that are not hex never match a span.
fn trace_context_id(value: Option<String>, field: &'static str, hex_digits: usize) -> Result<Option<String>> {
    let Some(mut id) = value else { return Ok(None) };
    if id.len() != hex_digits || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        let shown: String = id.chars().take(hex_digits + 8).collect();
        return Err(Error::InvalidField {
            field,
            detail: format!(
                "{shown:?} ({} characters) is not a W3C id: expected {hex_digits} hex digits",
                id.chars().count()
            ),
        });
    }
    if id.bytes().all(|b| b == b'0') {
        return Ok(None);
    }
    id.make_ascii_lowercase();
    Ok(Some(id))
}

#[allow(clippy::cast_possible_truncation)] // saturating float-to-int cast; latencies are far below i64::MAX ns
fn ms_to_nanos(ms: f64) -> i64 {
    (ms * 1e6).round() as i64
}
