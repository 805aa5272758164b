//! OTLP/JSON requests that do not deserialize whole: keep every span or log record that does.
//!
//! The fast path deserializes a request in one go, so one value that opentelemetry-proto's serde
//! support does not take fails the request. Only then does this module read the request as a
//! JSON tree, mend the proto3 JSON forms that support rejects although the mapping allows them
//! (see [`mend_proto3_forms`]), and deserialize the tree level by level (resource, scope, item),
//! so that a bad item (`"intValue": "abc"`) alone is rejected, with its path, and the items
//! beside it are decoded as usual. A resource or scope that does not deserialize takes its items
//! with it, in one reject. Requests that are not even JSON objects of the expected shape keep the
//! whole-request error.

use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Ctx, Decoded, Error};

/// The field names of one OTLP signal's three levels.
struct Levels {
    resources: &'static str,
    scopes: &'static str,
    items: &'static str,
    item: &'static str,
}

const TRACES: Levels = Levels { resources: "resourceSpans", scopes: "scopeSpans", items: "spans", item: "span" };
const LOGS: Levels = Levels { resources: "resourceLogs", scopes: "scopeLogs", items: "logRecords", item: "log record" };

/// The spans of `text` that deserialize, with a reject in `out` for each part that does not;
/// `None` when `text` is not an object holding a `resourceSpans` array.
pub(super) fn traces(text: &str, ctx: Ctx<'_>, out: &mut Decoded) -> Option<TracesData> {
    let resource_spans = salvage(
        text,
        &TRACES,
        ctx,
        out,
        |resource: &mut ResourceSpans, scope| resource.scope_spans.push(scope),
        |scope: &mut ScopeSpans, span: Span| scope.spans.push(span),
    )?;
    Some(TracesData { resource_spans })
}

/// The log records of `text` that deserialize, as [`traces`] does for spans.
pub(super) fn logs(text: &str, ctx: Ctx<'_>, out: &mut Decoded) -> Option<LogsData> {
    let resource_logs = salvage(
        text,
        &LOGS,
        ctx,
        out,
        |resource: &mut ResourceLogs, scope| resource.scope_logs.push(scope),
        |scope: &mut ScopeLogs, record: LogRecord| scope.log_records.push(record),
    )?;
    Some(LogsData { resource_logs })
}

fn salvage<R, S, I>(
    text: &str,
    levels: &Levels,
    ctx: Ctx<'_>,
    out: &mut Decoded,
    add_scope: impl Fn(&mut R, S),
    add_item: impl Fn(&mut S, I),
) -> Option<Vec<R>>
where
    R: DeserializeOwned,
    S: DeserializeOwned,
    I: DeserializeOwned,
{
    let Ok(mut root) = serde_json::from_str::<Value>(text) else { return None };
    mend_proto3_forms(&mut root);
    let Value::Object(mut root) = root else { return None };
    let Some(Value::Array(resources)) = root.remove(levels.resources) else { return None };
    let mut kept = Vec::with_capacity(resources.len());
    for (r, resource) in resources.into_iter().enumerate() {
        let path = format!("{}[{r}]", levels.resources);
        let Some((mut resource_out, scopes)) = split::<R>(resource, levels.scopes, &path, ctx, out) else { continue };
        for (s, scope) in scopes.into_iter().enumerate() {
            let path = format!("{path}.{}[{s}]", levels.scopes);
            let Some((mut scope_out, items)) = split::<S>(scope, levels.items, &path, ctx, out) else { continue };
            for (i, item) in items.into_iter().enumerate() {
                match I::deserialize(&item) {
                    Ok(item) => add_item(&mut scope_out, item),
                    Err(source) => {
                        let what = levels.item;
                        let context = format!("{path}.{}[{i}], {what} {}", levels.items, item_id(&item));
                        reject(&context, source, &item, ctx, out);
                    }
                }
            }
            add_scope(&mut resource_out, scope_out);
        }
        kept.push(resource_out);
    }
    Some(kept)
}

/// A level without its children, deserialized, and the children; a reject (covering the
/// children too) when the level itself does not deserialize.
fn split<T: DeserializeOwned>(
    level: Value,
    children_key: &str,
    path: &str,
    ctx: Ctx<'_>,
    out: &mut Decoded,
) -> Option<(T, Vec<Value>)> {
    let Value::Object(mut fields) = level else {
        let error = <T as serde::Deserialize>::deserialize(&level).err();
        reject(path, error.unwrap_or_else(not_an_object), &level, ctx, out);
        return None;
    };
    let children = match fields.remove(children_key) {
        Some(Value::Array(children)) => children,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            fields.insert(children_key.to_owned(), other);
            let level = Value::Object(fields);
            let error = <T as serde::Deserialize>::deserialize(&level).err();
            reject(path, error.unwrap_or_else(not_an_object), &level, ctx, out);
            return None;
        }
    };
    match T::deserialize(Value::Object(fields.clone())) {
        Ok(level) => Some((level, children)),
        Err(source) => {
            fields.insert(children_key.to_owned(), Value::Array(children));
            reject(&format!("{path} and everything in it"), source, &Value::Object(fields), ctx, out);
            None
        }
    }
}

/// Rewrite, in place, the proto3 JSON forms that the protobuf JSON mapping allows but
/// opentelemetry-proto's serde support rejects, so that valid input is not dead-lettered:
/// - an empty `arrayValue` or `kvlistValue` written as `{}` (the mapping omits empty repeated
///   fields, and the OTel Collector writes empty lists that way) gets its `values: []`;
/// - a `doubleValue` written as a string: a number (`"1.5"`) becomes that number, and `"NaN"`,
///   `"Infinity"` or `"-Infinity"` leave the value empty, because a non-finite number is no usable
///   token count, cost or score, and the JSON tree cannot hold one.
///
/// Any other string in a `doubleValue` stays, to be rejected with its item.
fn mend_proto3_forms(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for key in ["arrayValue", "kvlistValue"] {
                if let Some(Value::Object(list)) = fields.get_mut(key) {
                    list.entry("values").or_insert_with(|| Value::Array(Vec::new()));
                }
            }
            if let Some(Value::String(text)) = fields.get("doubleValue") {
                match text.as_str() {
                    "NaN" | "Infinity" | "-Infinity" => {
                        fields.remove("doubleValue");
                    }
                    other => {
                        if let Some(number) = other.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                            fields.insert("doubleValue".to_owned(), Value::Number(number));
                        }
                    }
                }
            }
            fields.values_mut().for_each(mend_proto3_forms);
        }
        Value::Array(items) => items.iter_mut().for_each(mend_proto3_forms),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

fn not_an_object() -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom("expected an object")
}

/// The item's ids as its producer wrote them, for the reject's detail.
fn item_id(item: &Value) -> String {
    let field = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or_default();
    format!("{}{}", field("traceId"), field("spanId"))
}

fn reject(context: &str, source: serde_json::Error, item: &Value, ctx: Ctx<'_>, out: &mut Decoded) {
    let error = Error::MalformedJson { what: "OTLP/JSON item", source };
    let payload = serde_json::to_vec(item).unwrap_or_default();
    out.rejects.push(ctx.item_reject(format_args!("{context}"), &error, &payload));
}

#[cfg(test)]
mod tests {
    use crate::decode::{Decoded, Decoder, PayloadFormat};

    const NOW: i64 = 1_748_779_300_000_000_000;

    fn decode(text: &str, format: PayloadFormat) -> Decoded {
        let mut out = Decoded::default();
        Decoder::default().decode(text.as_bytes(), format, NOW, &mut out);
        out
    }

    fn span(n: u8, extra: &str) -> String {
        format!(
            r#"{{"traceId":"{n:032x}","spanId":"{n:016x}","name":"chat gpt-4o","startTimeUnixNano":"1748779200000000000","endTimeUnixNano":"1748779201000000000","attributes":[{{"key":"gen_ai.operation.name","value":{{"stringValue":"chat"}}}},{{"key":"gen_ai.request.model","value":{{"stringValue":"gpt-4o"}}}}{extra}]}}"#
        )
    }

    fn traces(resources: &[String]) -> String {
        format!(r#"{{"resourceSpans":[{}]}}"#, resources.join(","))
    }

    fn resource(service: &str, spans: &[String]) -> String {
        format!(
            r#"{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"scope":{{"name":"s"}},"spans":[{}]}}]}}"#,
            spans.join(",")
        )
    }

    #[test]
    fn a_bad_attribute_rejects_its_span_only() {
        let bad_int = r#",{"key":"gen_ai.usage.input_tokens","value":{"intValue":"abc"}}"#;
        let bad_double = r#",{"key":"x","value":{"doubleValue":"NaN?"}}"#;
        let text = traces(&[
            resource("a", &[span(1, ""), span(2, bad_int), span(3, "")]),
            resource("b", &[span(4, bad_double), span(5, "")]),
        ]);
        let out = decode(&text, PayloadFormat::OtlpTraces);
        let apps: Vec<(&str, &str)> = out.events.iter().map(|e| (e.app.as_str(), &e.event_id[32..])).collect();
        assert_eq!(
            apps,
            [("a", "0000000000000001"), ("a", "0000000000000003"), ("b", "0000000000000005")],
            "{:?}",
            out.rejects
        );
        let details: Vec<&str> = out.rejects.iter().map(|r| r.detail.as_str()).collect();
        assert_eq!(out.rejects.len(), 2, "{details:?}");
        assert!(out.rejects.iter().all(|r| r.reason == "malformed_json"));
        assert!(details[0].contains("resourceSpans[0].scopeSpans[0].spans[1]"), "{details:?}");
        assert!(details[0].contains("0000000000000002"), "{details:?}");
        assert!(details[1].contains("resourceSpans[1].scopeSpans[0].spans[0]"), "{details:?}");
        let payload: serde_json::Value =
            serde_json::from_slice(out.rejects[0].payload.as_deref().unwrap_or_default()).unwrap_or_default();
        assert_eq!(payload["spanId"], "0000000000000002");
    }

    #[test]
    fn a_bad_resource_rejects_its_spans_together() {
        let bad_resource = r#"{"resource":{"attributes":7},"scopeSpans":[{"spans":[]}]}"#.to_owned();
        let text = traces(&[bad_resource, resource("b", &[span(5, "")])]);
        let out = decode(&text, PayloadFormat::OtlpTraces);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.rejects.len(), 1);
        assert!(out.rejects[0].detail.contains("resourceSpans[0] and everything in it"), "{}", out.rejects[0].detail);
    }

    #[test]
    fn a_bad_log_record_rejects_that_record_only() {
        let record = |n: u8, score: &str| {
            format!(
                r#"{{"timeUnixNano":"1748779200500000000","traceId":"{n:032x}","spanId":"{n:016x}","eventName":"gen_ai.evaluation.result","attributes":[{{"key":"gen_ai.evaluation.name","value":{{"stringValue":"hallucination"}}}},{{"key":"gen_ai.evaluation.score.value","value":{score}}}]}}"#
            )
        };
        let text = format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"a"}}}}]}},"scopeLogs":[{{"logRecords":[{},{}]}}]}}]}}"#,
            record(1, r#"{"doubleValue":0.5}"#),
            record(2, r#"{"doubleValue":"half"}"#)
        );
        let out = decode(&text, PayloadFormat::OtlpLogs);
        assert_eq!(out.feedback.len(), 1, "{:?}", out.rejects);
        assert_eq!(out.rejects.len(), 1);
        assert!(
            out.rejects[0].detail.contains("resourceLogs[0].scopeLogs[0].logRecords[1]"),
            "{}",
            out.rejects[0].detail
        );
    }

    #[test]
    fn proto3_forms_the_collector_writes_are_decoded_not_rejected() {
        let empty_array = |key: &str| format!(r#",{{"key":"{key}","value":{{"arrayValue":{{}}}}}}"#);
        let not_inference = r#"{"traceId":"000000000000000000000000000000aa","spanId":"00000000000000aa","name":"GET /x","startTimeUnixNano":"1748779200000000000","endTimeUnixNano":"1748779201000000000","attributes":[{"key":"tags","value":{"arrayValue":{}}}]}"#;
        let resource_with_empty_list = r#"{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"c"}},{"key":"process.command_args","value":{"arrayValue":{}}}]},"scopeSpans":[{"spans":[SPANS]}]}"#
            .replace("SPANS", &[span(6, ""), span(7, "")].join(","));
        let text = traces(&[
            resource(
                "a",
                &[
                    span(1, &empty_array("gen_ai.response.finish_reasons")),
                    span(2, r#",{"key":"meta","value":{"kvlistValue":{}}}"#),
                    span(3, r#",{"key":"gen_ai.usage.cost","value":{"doubleValue":"NaN"}}"#),
                    span(4, r#",{"key":"gen_ai.usage.cost","value":{"doubleValue":"0.25"}}"#),
                    not_inference.to_owned(),
                ],
            ),
            resource_with_empty_list,
        ]);
        let out = decode(&text, PayloadFormat::OtlpTraces);
        assert!(out.rejects.is_empty(), "{:?}", out.rejects);
        let ids: Vec<&str> = out.events.iter().map(|e| &e.event_id[46..]).collect();
        assert_eq!(ids, ["01", "02", "03", "04", "06", "07"]);
        assert_eq!(out.skipped_spans, 1);
        assert_eq!(out.events[2].reported_cost_usd, None, "a NaN cost is no cost");
        assert_eq!(out.events[3].reported_cost_usd, Some(0.25), "a double written as a string is read");
        assert!(out.events[4..].iter().all(|e| e.app == "c"));

        let feedback = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"1748779200500000000","traceId":"00000000000000000000000000000001","spanId":"0000000000000001","eventName":"gen_ai.evaluation.result","attributes":[{"key":"gen_ai.evaluation.name","value":{"stringValue":"hallucination"}},{"key":"gen_ai.evaluation.score.value","value":{"doubleValue":1.0}},{"key":"tags","value":{"arrayValue":{}}}]}]}]}]}"#;
        let out = decode(feedback, PayloadFormat::OtlpLogs);
        assert!(out.rejects.is_empty(), "{:?}", out.rejects);
        assert_eq!(out.feedback.len(), 1);
    }

    #[test]
    fn what_is_not_an_otlp_request_stays_one_reject() {
        for text in [r#"{"resourceSpans": 5}"#, r#"{"resourceSpans": [1"#] {
            let out = decode(text, PayloadFormat::OtlpTraces);
            assert_eq!(out.rejects.len(), 1, "{text}");
            assert!(out.rejects[0].payload.is_none(), "the whole message is the item: {text}");
        }
    }
}
