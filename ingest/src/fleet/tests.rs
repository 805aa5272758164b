//! Fleet-level tests: determinism, variety, truth consistency and wire conformance.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn small(seed: u64) -> FleetConfig {
    FleetConfig { seed, inferences: 3_000, ..FleetConfig::default() }
}

fn encode_all(fleet: &Fleet, format: WireFormat, malformed: f64) -> Vec<WireMessage> {
    let mut encoder = Encoder::new(format, 50, malformed, fleet.config().seed);
    let mut out = Vec::new();
    for record in fleet.records() {
        encoder.push(&record, &mut out);
    }
    encoder.finish(&mut out);
    out
}

fn payload_bytes(messages: &[WireMessage]) -> Vec<u8> {
    messages.iter().flat_map(|m| m.payload.iter().copied().chain([b'\n'])).collect()
}

#[test]
fn same_seed_gives_identical_bytes_and_other_seeds_differ() {
    for format in [WireFormat::JsonEvents, WireFormat::OtlpJson, WireFormat::OtlpProto] {
        let a = payload_bytes(&encode_all(&Fleet::new(small(7)), format, 0.01));
        let b = payload_bytes(&encode_all(&Fleet::new(small(7)), format, 0.01));
        let c = payload_bytes(&encode_all(&Fleet::new(small(8)), format, 0.01));
        assert_eq!(a, b, "{format:?}");
        assert_ne!(a, c, "{format:?}");
    }
}

#[test]
fn records_cover_apps_models_versions_and_scenarios() {
    let fleet = Fleet::new(FleetConfig { inferences: 20_000, ..FleetConfig::default() });
    let (mut apps, mut models, mut versions, mut errors, mut finishes) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new(), BTreeMap::new(), BTreeSet::new());
    let mut snapshots: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (mut inferences, mut feedback, mut golden, mut ttft, mut reasoning, mut cached, mut written, mut pii) =
        (0, 0, 0, 0, 0, 0, 0, 0);
    for record in fleet.records() {
        match record {
            FleetRecord::Inference(e) | FleetRecord::Retry(e) => {
                inferences += 1;
                apps.insert(e.app.clone());
                models.insert(e.request_model.clone().unwrap_or_default());
                versions.insert(e.prompt_version.clone().unwrap_or_default());
                if let Some(t) = &e.error_type {
                    *errors.entry(t.clone()).or_insert(0u32) += 1;
                    // A failed call gets no response to report its model, tier or usage.
                    assert!(e.output_tokens.is_none() && e.response_model.is_none() && e.service_tier.is_none());
                    if e.operation == "embeddings" {
                        assert!(t != "content_filter" && e.latency_ms.unwrap_or(0.0) < 15_000.0, "{e:?}");
                    }
                } else {
                    snapshots.entry(e.app.clone()).or_default().insert(e.response_model.clone().unwrap_or_default());
                }
                if let Some(f) = &e.finish_reason {
                    finishes.insert(f.clone());
                }
                if e.operation == "embeddings" {
                    assert!(e.input_tokens.unwrap_or(0) <= catalog::EMBEDDINGS_MAX_INPUT_TOKENS, "{e:?}");
                }
                golden += usize::from(e.golden_case.is_some());
                ttft += usize::from(e.ttft_ms.is_some());
                reasoning += usize::from(e.reasoning_tokens.is_some());
                cached += usize::from(e.cache_read_tokens.is_some());
                if let Some(tokens) = e.cache_write_tokens {
                    // Only Anthropic reports writing its cache; a call writes or reads the prefix.
                    assert_eq!(e.provider.as_deref(), Some("anthropic"), "{e:?}");
                    assert!(e.cache_read_tokens.is_none() && tokens <= e.input_tokens.unwrap_or(0), "{e:?}");
                    written += 1;
                }
                let input = e.input_content.as_deref().unwrap_or_default();
                pii += usize::from(input.contains('@') || input.contains("sk-proj-"));
                assert!(e.time > e.start_time, "latency must be positive");
            }
            FleetRecord::Feedback(_) => feedback += 1,
        }
    }
    assert_eq!(inferences, 20_000);
    assert!(apps.len() >= 5 && models.len() >= 3 && versions.len() >= 2, "{apps:?} {models:?} {versions:?}");
    assert!(errors.len() == 4, "{errors:?}");
    let error_total: u32 = errors.values().sum();
    assert!((200..=600).contains(&error_total), "error rate off: {error_total}");
    for reason in ["stop", "length", "tool_calls", "end_turn", "max_tokens", "tool_use"] {
        assert!(finishes.contains(reason), "{finishes:?}");
    }
    assert!(snapshots.values().any(|s| s.len() == 2), "one app swaps its response model: {snapshots:?}");
    assert!((2_000..3_200).contains(&feedback), "{feedback}");
    assert!(golden > 400 && ttft > 5_000 && reasoning > 500 && cached > 1_000 && pii > 100);
    assert!(written > 100, "{written} calls write the prompt cache");
}

#[test]
fn truth_matches_the_records_in_every_format() -> TestResult {
    let config = FleetConfig { duplicate_ratio: 0.02, ..small(11) };
    let fleet = Fleet::new(config);
    let (mut inferences, mut retries, mut feedback) = (0u64, 0u64, 0u64);
    for record in fleet.records() {
        match record {
            FleetRecord::Inference(_) => inferences += 1,
            FleetRecord::Retry(_) => retries += 1,
            FleetRecord::Feedback(_) => feedback += 1,
        }
    }
    assert!(retries > 20, "{retries}");
    let mut totals = Vec::new();
    for format in [WireFormat::JsonEvents, WireFormat::OtlpJson, WireFormat::OtlpProto] {
        let mut truth = Truth::default();
        let messages = encode_all(&fleet, format, 0.0);
        messages.iter().for_each(|m| truth.observe(m));
        let total = truth.total();
        assert_eq!(total.requests, inferences + retries, "{format:?}");
        assert_eq!(total.distinct_event_ids, inferences, "{format:?}");
        assert_eq!(total.feedback, feedback, "{format:?}");
        assert_eq!(truth.messages, messages.len() as u64);
        assert_eq!(truth.malformed_messages, 0);
        let parsed: Truth = serde_json::from_str(&truth.to_json())?;
        assert_eq!(parsed, truth);
        assert!(truth.table().contains("TOTAL"));
        totals.push(total);
    }
    assert!(totals.windows(2).all(|w| w[0] == w[1]), "formats disagree: {totals:?}");
    Ok(())
}

/// The fleet's cache writes reach every wire format under the name the decoder reads
/// (`gen_ai.usage.cache_creation.input_tokens`, JSON `cache_write_tokens`), and the truth
/// counts them: the end-to-end cost check prices them from what is decoded.
#[test]
fn cache_writes_reach_the_wire_and_the_truth_in_every_format() -> TestResult {
    let fleet = Fleet::new(FleetConfig { duplicate_ratio: 0.02, ..small(11) });
    let decoder = crate::decode::Decoder::default();
    let now = DEFAULT_START + 30 * 86_400 * 1_000_000_000;
    let mut written_per_format = Vec::new();
    for format in [WireFormat::JsonEvents, WireFormat::OtlpJson, WireFormat::OtlpProto] {
        let mut truth = Truth::default();
        let mut decoded = crate::decode::Decoded::default();
        for msg in encode_all(&fleet, format, 0.0) {
            truth.observe(&msg);
            decoder.decode(&msg.payload, msg.stream.payload_format(), now, &mut decoded);
        }
        assert_eq!(decoded.rejects, vec![], "{format:?}");
        let written: u64 = decoded.events.iter().filter_map(|e| e.cache_write_tokens).map(|t| t as u64).sum();
        let read: u64 = decoded.events.iter().filter_map(|e| e.cache_read_tokens).map(|t| t as u64).sum();
        assert!(written > 0, "{format:?}: no cache writes decoded");
        assert_eq!((written, read), (truth.total().cache_write_tokens, truth.total().cache_read_tokens), "{format:?}");
        written_per_format.push(written);
    }
    assert!(written_per_format.windows(2).all(|w| w[0] == w[1]), "{written_per_format:?}");
    Ok(())
}

#[test]
fn proto_messages_decode_back_with_the_semconv_attributes() -> TestResult {
    let fleet = Fleet::new(small(3));
    let messages = encode_all(&fleet, WireFormat::OtlpProto, 0.0);
    let (mut spans, mut logs) = (0u64, 0u64);
    for msg in &messages {
        match msg.stream {
            Stream::Spans => {
                let request = ExportTraceServiceRequest::decode(msg.payload.as_slice())?;
                assert_eq!(request.resource_spans.len(), 1);
                let rs = &request.resource_spans[0];
                let resource = rs.resource.as_ref().ok_or("resource")?;
                let service = resource.attributes.iter().find(|a| a.key == "service.name").ok_or("service.name")?;
                let app = match service.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Value::StringValue(s)) => s.clone(),
                    other => return Err(format!("service.name {other:?}").into()),
                };
                assert_eq!(Some(&app), msg.truth.app.as_ref());
                let batch = &rs.scope_spans[0].spans;
                assert!(batch.len() <= 50);
                assert_eq!(batch.len() as u64, msg.truth.rows.requests);
                for span in batch {
                    assert_eq!(span.trace_id.len(), 16);
                    assert_eq!(span.span_id.len(), 8);
                    assert_eq!(span.kind, 3);
                    let keys: HashSet<&str> = span.attributes.iter().map(|a| a.key.as_str()).collect();
                    for key in [
                        "gen_ai.operation.name",
                        "gen_ai.provider.name",
                        "gen_ai.request.model",
                        "driftwatch.prompt.version",
                    ] {
                        assert!(keys.contains(key), "{key} missing in {keys:?}");
                    }
                    let op = span.name.split(' ').next().unwrap_or_default();
                    assert!(["chat", "generate_content", "embeddings"].contains(&op), "{}", span.name);
                    let error = span.status.as_ref().is_some_and(|s| s.code == 2);
                    assert_eq!(error, keys.contains("error.type"));
                    assert_eq!(!error, keys.contains("gen_ai.response.model"), "a failed call has no response");
                    assert_eq!(!error && op != "embeddings", keys.contains("gen_ai.usage.output_tokens"));
                }
                spans += batch.len() as u64;
            }
            Stream::Logs => {
                let request = ExportLogsServiceRequest::decode(msg.payload.as_slice())?;
                for record in &request.resource_logs[0].scope_logs[0].log_records {
                    assert_eq!(record.event_name, "gen_ai.evaluation.result");
                    assert_eq!(record.trace_id.len(), 16);
                    // A result carries a score or a label, or both (label-only thumbs).
                    let has = |key: &str| record.attributes.iter().any(|a| a.key == key);
                    assert!(has("gen_ai.evaluation.score.value") || has("gen_ai.evaluation.score.label"));
                    logs += 1;
                }
            }
            Stream::Events => return Err("OTLP encoder emitted a JSON event".into()),
        }
    }
    let inferences = fleet.records().filter(|r| matches!(r, FleetRecord::Inference(_))).count() as u64;
    assert_eq!(spans, inferences);
    assert!(logs > 0);
    Ok(())
}

#[test]
fn otlp_json_is_conformant() -> TestResult {
    let fleet = Fleet::new(small(5));
    let messages = encode_all(&fleet, WireFormat::OtlpJson, 0.0);
    let mut checked = 0;
    for msg in messages.iter().filter(|m| m.stream == Stream::Spans) {
        let value: serde_json::Value = serde_json::from_slice(&msg.payload)?;
        for span in value["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().ok_or("spans")? {
            let trace = span["traceId"].as_str().ok_or("traceId")?;
            let span_id = span["spanId"].as_str().ok_or("spanId")?;
            assert!(trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()), "{trace}");
            assert!(span_id.len() == 16 && span_id.bytes().all(|b| b.is_ascii_hexdigit()), "{span_id}");
            assert!(span["startTimeUnixNano"].as_str().ok_or("start as string")?.parse::<u64>().is_ok());
            assert_eq!(span["kind"], 3);
            let attrs = span["attributes"].as_array().ok_or("attributes")?;
            if let Some(tokens) = attrs.iter().find(|a| a["key"] == "gen_ai.usage.input_tokens") {
                assert!(tokens["value"]["intValue"].is_string(), "{tokens}");
            }
            checked += 1;
        }
        // The same bytes must round-trip through the serde derives into the proto type.
        let request: ExportTraceServiceRequest = serde_json::from_slice(&msg.payload)?;
        assert!(!request.resource_spans.is_empty());
    }
    assert!(checked > 1_000);
    for msg in messages.iter().filter(|m| m.stream == Stream::Logs).take(5) {
        let value: serde_json::Value = serde_json::from_slice(&msg.payload)?;
        let record = &value["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
        assert_eq!(record["eventName"], "gen_ai.evaluation.result");
        assert_eq!(record["spanId"].as_str().map(str::len), Some(16));
        assert!(!msg.payload.windows(4).any(|w| w == b"null"), "defaults are omitted");
        let request: ExportLogsServiceRequest = serde_json::from_slice(&msg.payload)?;
        assert_eq!(request.resource_logs.len(), 1);
    }
    Ok(())
}

#[test]
fn json_events_follow_the_schema() -> TestResult {
    let fleet = Fleet::new(small(9));
    for msg in encode_all(&fleet, WireFormat::JsonEvents, 0.0).iter().take(500) {
        assert_eq!(msg.stream, Stream::Events);
        let value: serde_json::Value = serde_json::from_slice(&msg.payload)?;
        let object = value.as_object().ok_or("object")?;
        assert!(object.values().all(|v| !v.is_null()), "nulls must be omitted");
        let time = value["time"].as_str().ok_or("time")?;
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.ends_with('Z'), "{time}");
        match value["type"].as_str() {
            Some("inference") => {
                assert!(value["id"].as_str().is_some_and(|id| id.len() == 48));
                assert!(["ok", "error"].contains(&value["status"].as_str().unwrap_or_default()));
            }
            Some("feedback") => {
                assert!(value["inference_id"].is_string());
                assert!(value["score"].is_number() || value["label"].is_string(), "a score or a label: {value}");
            }
            other => return Err(format!("unexpected type {other:?}").into()),
        }
    }
    Ok(())
}

#[test]
fn records_stream_lazily() {
    // A billion inferences would not fit in memory; taking a few must be instant.
    let fleet = Fleet::new(FleetConfig { inferences: 1_000_000_000, ..FleetConfig::default() });
    let first: Vec<FleetRecord> = fleet.records().take(100).collect();
    assert_eq!(first.len(), 100);
}

#[test]
fn records_come_in_emission_order_with_late_ones_out_of_order() {
    let fleet = Fleet::new(FleetConfig { late_ratio: 0.05, ..small(4) });
    let mut latest = i64::MIN;
    let mut late = 0;
    for record in fleet.records() {
        if let FleetRecord::Inference(e) = record {
            if e.time + 60_000_000_000 < latest {
                late += 1;
            }
            latest = latest.max(e.time);
        }
    }
    assert!((80..250).contains(&late), "{late}");
}

#[test]
fn malformed_ratio_is_roughly_honoured() {
    let fleet = Fleet::new(small(2));
    for format in [WireFormat::JsonEvents, WireFormat::OtlpJson, WireFormat::OtlpProto] {
        let messages = encode_all(&fleet, format, 0.05);
        let mut truth = Truth::default();
        messages.iter().for_each(|m| truth.observe(m));
        let share = truth.malformed_messages as f64 / truth.messages as f64;
        let tolerance = if format == WireFormat::JsonEvents { 0.012 } else { 0.03 };
        assert!((share - 0.05).abs() < tolerance, "{format:?}: {share}");
        let by_reason: u64 = truth.dead_letters_by_reason.values().sum();
        assert_eq!(by_reason, truth.malformed_messages, "{format:?}: {:?}", truth.dead_letters_by_reason);
        assert!(truth.dead_letters_by_reason.len() >= 4, "{format:?}: {:?}", truth.dead_letters_by_reason);
        for msg in messages.iter().filter(|m| m.truth.malformed) {
            match format {
                WireFormat::OtlpProto if msg.payload.first() != Some(&b'[') => {
                    let decoded = ExportTraceServiceRequest::decode(msg.payload.as_slice());
                    // Either undecodable, or one span with bad values.
                    if let Ok(request) = decoded {
                        let spans: usize =
                            request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
                        assert!(spans <= 1);
                    }
                }
                _ => {
                    assert!(serde_json::from_slice::<serde_json::Value>(&msg.payload).map_or(true, |v| !v.is_object()
                        || v.to_string().contains("-210")
                        || v.to_string().contains("eighteen hundred")
                        || v.to_string().contains("yesterday")
                        || v.to_string().contains("1970-")
                        || v.to_string().contains("3000-")
                        || v.to_string().contains("32503680000000000000")
                        || v.to_string().contains("\"1000000000\"")));
                }
            }
        }
    }
}

#[test]
fn drift_scenarios_are_visible_in_the_records() {
    let fleet = Fleet::new(FleetConfig { inferences: 30_000, feedback_ratio: 0.3, ..FleetConfig::default() });
    let mut per_hour = [0u32; 24];
    // (sum, count) of output tokens per prompt version for ticket-summariser.
    let mut ticket = [(0i64, 0i64); 2];
    // (flagged, evals) per app.
    let mut evals: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for record in fleet.records() {
        match record {
            FleetRecord::Inference(e) => {
                let hour = (e.time / 3_600_000_000_000).rem_euclid(24) as usize;
                per_hour[hour] += 1;
                if e.app == "ticket-summariser" && !e.status.is_error() {
                    let v = usize::from(e.prompt_version.as_deref() == Some("v2"));
                    ticket[v].0 += e.output_tokens.unwrap_or(0);
                    ticket[v].1 += 1;
                }
            }
            FleetRecord::Feedback(f) if f.name == "hallucination" => {
                let entry = evals.entry(f.app.clone()).or_default();
                entry.0 += u32::from(f.is_flagged());
                entry.1 += 1;
            }
            _ => {}
        }
    }
    // Diurnal: the afternoon peak (UTC) carries far more traffic than the night.
    assert!(per_hour[14] > 2 * per_hour[2], "{per_hour:?}");
    let mean = |(sum, n): (i64, i64)| sum as f64 / n.max(1) as f64;
    assert!(mean(ticket[1]) > 1.6 * mean(ticket[0]), "{ticket:?}");
    let rate = |app: &str| evals.get(app).map_or(0.0, |(f, n)| f64::from(*f) / f64::from((*n).max(1)));
    assert!(rate("hr-policy-bot") > 2.0 * rate("where2eat"), "{evals:?}");
}

#[test]
fn reasoning_counts_against_the_output_limit() {
    let fleet = Fleet::new(FleetConfig { inferences: 20_000, ..FleetConfig::default() });
    let limits: BTreeMap<&str, i64> = fleet.apps().iter().map(|app| (app.id.as_str(), app.max_output_tokens)).collect();
    let (mut reasoning_calls, mut cut_with_reasoning) = (0, 0);
    for record in fleet.records() {
        if let FleetRecord::Inference(e) = record
            && let Some(output) = e.output_tokens
        {
            let limit = limits[e.app.as_str()];
            assert!(output <= limit, "{output} output tokens over {}'s limit of {limit}: {e:?}", e.app);
            if let Some(reasoning) = e.reasoning_tokens {
                reasoning_calls += 1;
                let cut = matches!(e.finish_reason.as_deref(), Some("length" | "max_tokens"));
                assert_eq!(cut, output == limit, "{e:?}");
                cut_with_reasoning += usize::from(cut && reasoning > 0);
            }
        }
    }
    assert!(reasoning_calls > 500 && cut_with_reasoning > 0, "{reasoning_calls} {cut_with_reasoning}");
}

/// Keys decide partitions: they must not depend on chance, and must spread a topic's messages
/// the way real producers' keys do, a JSON call and its feedback on the same key.
#[test]
fn message_keys_are_reproducible_and_follow_the_calls_trace() {
    let fleet = Fleet::new(FleetConfig { malformed_ratio: 0.05, ..small(7) });
    let mut call_keys: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for format in [WireFormat::JsonEvents, WireFormat::OtlpJson, WireFormat::OtlpProto] {
        let messages = encode_all(&fleet, format, 0.05);
        let again = encode_all(&fleet, format, 0.05);
        let keys: Vec<Option<Vec<u8>>> = messages.iter().map(|m| m.key.clone()).collect();
        assert_eq!(keys, again.iter().map(|m| m.key.clone()).collect::<Vec<_>>(), "{format:?}");
        assert!(keys.iter().all(Option::is_some), "{format:?}: every message is keyed");
        let distinct: HashSet<&Option<Vec<u8>>> = keys.iter().collect();
        assert!(distinct.len() * 2 > keys.len(), "{format:?}: {} keys over {} messages", distinct.len(), keys.len());
        if format == WireFormat::JsonEvents {
            let mut feedback_keys = Vec::new();
            for message in &messages {
                let value: serde_json::Value = match serde_json::from_slice(&message.payload) {
                    Ok(value) if !message.truth.malformed => value,
                    _ => continue,
                };
                let key = message.key.clone().unwrap_or_default();
                match value["type"].as_str() {
                    Some("feedback") => {
                        feedback_keys.push((value["inference_id"].as_str().unwrap_or_default().to_owned(), key));
                    }
                    _ => {
                        assert_eq!(value["trace_id"].as_str().map(str::as_bytes), Some(&key[..]));
                        call_keys.insert(value["id"].as_str().unwrap_or_default().to_owned(), key);
                    }
                }
            }
            assert!(feedback_keys.len() > 100, "{}", feedback_keys.len());
            for (call, key) in feedback_keys {
                assert_eq!(call_keys.get(&call), Some(&key), "feedback on {call} keyed apart from its call");
            }
        }
    }
    assert!(call_keys.len() > 1_000, "{}", call_keys.len());
}

/// Each seed rolls its own malformed dice: seed 7's second encoder once had seed 8's first one's.
#[test]
fn neighbouring_seeds_share_no_malformed_messages() {
    let malformed = |seed: u64| -> HashSet<Vec<u8>> {
        let fleet = Fleet::new(FleetConfig { malformed_ratio: 0.05, ..small(seed) });
        let mut router = files::FleetRouter::new(&fleet, files::FormatMix::Mixed, 20, 0.05, seed);
        let mut out = Vec::new();
        for record in fleet.records() {
            router.push(&record, &mut out);
        }
        router.finish(&mut out);
        // Kinds whose payload owes nothing to the dice (a fixed call at a fixed time) are alike
        // for every seed.
        let drawn = |m: &WireMessage| {
            m.truth.malformation.is_some_and(|m| {
                !matches!(
                    m.kind,
                    malformed::Kind::Empty
                        | malformed::Kind::Truncated
                        | malformed::Kind::Epoch1970
                        | malformed::Kind::Year3000
                )
            })
        };
        out.into_iter().filter(drawn).map(|m| m.payload).collect()
    };
    let (seven, eight) = (malformed(7), malformed(8));
    assert!(seven.len() > 50, "{}", seven.len());
    assert_eq!(seven.intersection(&eight).count(), 0);
}
