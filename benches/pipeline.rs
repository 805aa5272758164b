//! Criterion micro-benchmarks of each pipeline stage, per element, on synthetic fleet data.
//!
//! Inputs are generated once, outside the timed code, from the synthetic fleet
//! (`driftwatch_ingest::fleet`): an OTLP protobuf `ExportTraceServiceRequest` of 50 spans, one
//! `llm_events` JSON object, and a batch of decoded events. Each group sets
//! `Throughput::Elements` to the number of inference events (spans) it handles, so criterion
//! prints events per second:
//!
//! - `decode`: `Decoder::decode` of the OTLP batch and of the JSON event.
//! - `enrich`: `Enricher::enrich` (pricing, content hashes, SimHash) of decoded events, unkeyed
//!   and with a `[fingerprint]` key.
//! - `aggregate`: `RollupAggregator::add_event` over a batch, then `drain` to rollup rows.
//! - `parquet`: `encode_events` + `write_parquet` of an events batch with the lake's options.
//! - `processor`: `Processor::process`, the whole per-message CPU path (decode, dedup, enrich,
//!   aggregate, feedback join, metrics, buffering) without file or lake I/O.
//!
//! Run with `cargo bench --bench pipeline` (see benches/README.md for figures).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use driftwatch_ingest::aggregate::{AggregateConfig, RollupAggregator};
use driftwatch_ingest::config::Config;
use driftwatch_ingest::decode::{Decoded, Decoder, PayloadFormat};
use driftwatch_ingest::enrich::{
    ContentPolicy, Enricher, FingerprintKey, ModelRegistry, Scrubber, content_hash, keyed_content_hash,
    keyed_simhash64, price_event, simhash64,
};
use driftwatch_ingest::fleet::{DEFAULT_START, Encoder, Fleet, FleetConfig, FleetRecord, Stream, WireFormat};
use driftwatch_ingest::pipeline::{PartitionBuffer, Processor};
use driftwatch_ingest::telemetry::{Metrics, MetricsConfig};
use driftwatch_lake::encode::encode_events;
use driftwatch_lake::layout::FileKind;
use driftwatch_lake::model::{InferenceEvent, RollupRow, SourcePosition};
use driftwatch_lake::parquet::{ParquetOptions, write_parquet};

/// Spans per OTLP message, as a Collector batch processor would send them.
const SPANS_PER_MESSAGE: usize = 50;
/// Events per batch in the enrich, aggregate and parquet groups.
const BATCH_EVENTS: usize = 10_000;
/// The ingest clock handed to the decoder: a few days after the generated period starts.
const NOW: i64 = DEFAULT_START + 4 * 86_400 * 1_000_000_000;

/// Generated inputs shared by every group.
struct Inputs {
    /// One OTLP protobuf traces message of `SPANS_PER_MESSAGE` inference spans.
    otlp_batch: Vec<u8>,
    /// One `llm_events` JSON inference event.
    json_event: Vec<u8>,
    /// JSON events messages (inference and feedback) in emission order, for the processor group.
    json_messages: Vec<Vec<u8>>,
    /// OTLP protobuf traces messages of the busy fleet (mostly full batches), for the processor group.
    otlp_messages: Vec<Vec<u8>>,
    /// `BATCH_EVENTS` decoded events, content still attached (as enrichment receives them).
    decoded: Vec<InferenceEvent>,
    /// The same events enriched and with a source position (as aggregation and the lake receive them).
    enriched: Vec<InferenceEvent>,
    /// The busy fleet's events, enriched: many events per rollup key.
    busy_enriched: Vec<InferenceEvent>,
}

/// The default fleet: calls spread over three days, so most rollup keys are distinct.
fn fleet(inferences: usize) -> Fleet {
    Fleet::new(FleetConfig { inferences, ..FleetConfig::default() })
}

/// A busy fleet: the calls within one minute, so per-app OTLP batches fill up to
/// `SPANS_PER_MESSAGE` spans before the encoder's batch timeout, as under real load.
fn busy_fleet(inferences: usize) -> Fleet {
    Fleet::new(FleetConfig { inferences, duration_secs: 60, ..FleetConfig::default() })
}

/// Encode the fleet's records in `format`, returning spans-stream (or events-stream) payloads.
fn encode(fleet: &Fleet, format: WireFormat, per_message: usize) -> Vec<Vec<u8>> {
    let mut encoder = Encoder::new(format, per_message, 0.0, 7);
    let mut out = Vec::new();
    for record in fleet.records() {
        encoder.push(&record, &mut out);
    }
    encoder.finish(&mut out);
    let wanted = if format == WireFormat::JsonEvents { Stream::Events } else { Stream::Spans };
    out.into_iter().filter(|message| message.stream == wanted).map(|message| message.payload).collect()
}

fn inputs() -> Result<Inputs, Box<dyn std::error::Error>> {
    let fleet = fleet(BATCH_EVENTS);

    let busy = busy_fleet(BATCH_EVENTS);
    let mut encoder = Encoder::new(WireFormat::OtlpProto, SPANS_PER_MESSAGE, 0.0, 7);
    let mut out = Vec::new();
    let mut otlp_batch = None;
    for record in busy.records() {
        encoder.push(&record, &mut out);
        if let Some(full) =
            out.iter().find(|m| m.stream == Stream::Spans && m.truth.rows.requests == SPANS_PER_MESSAGE as u64)
        {
            otlp_batch = Some(full.payload.clone());
            break;
        }
    }
    let otlp_batch = otlp_batch.ok_or("the busy fleet produced no full OTLP batch")?;

    let json_event = fleet
        .records()
        .find_map(|record| match record {
            FleetRecord::Inference(_) => Some(driftwatch_ingest::fleet::encode_json::message(&record).payload),
            _ => None,
        })
        .ok_or("the fleet produced no inference")?;

    let json_messages = encode(&fleet, WireFormat::JsonEvents, 1);
    let otlp_messages = encode(&busy, WireFormat::OtlpProto, SPANS_PER_MESSAGE);

    let decoded = decode_all(&json_messages)?;
    let enricher = enricher()?;
    let enriched = enrich_all(&enricher, &decoded);
    let busy_enriched = enrich_all(&enricher, &decode_all(&encode(&busy, WireFormat::JsonEvents, 1))?);
    Ok(Inputs { otlp_batch, json_event, json_messages, otlp_messages, decoded, enriched, busy_enriched })
}

/// The inference events of JSON events messages; any reject is a bug in the generator.
fn decode_all(messages: &[Vec<u8>]) -> Result<Vec<InferenceEvent>, Box<dyn std::error::Error>> {
    let decoder = Decoder::default();
    let mut decoded = Decoded::default();
    for payload in messages {
        decoder.decode(payload, PayloadFormat::JsonEvents, NOW, &mut decoded);
    }
    if let Some(reject) = decoded.rejects.first() {
        return Err(format!("{} generated messages were rejected: {reject:?}", decoded.rejects.len()).into());
    }
    Ok(decoded.events)
}

/// Enriched copies with a source position, as the processor hands them to aggregation.
fn enrich_all(enricher: &Enricher, events: &[InferenceEvent]) -> Vec<InferenceEvent> {
    let topic: Arc<str> = Arc::from("llm_events");
    events
        .iter()
        .enumerate()
        .map(|(offset, event)| {
            let mut event = event.clone();
            enricher.enrich(&mut event);
            event.source = Some(SourcePosition { topic: Arc::clone(&topic), partition: 0, offset: offset as i64 });
            event
        })
        .collect()
}

fn enricher() -> Result<Enricher, Box<dyn std::error::Error>> {
    Ok(Enricher::new(Arc::new(ModelRegistry::default_embedded()?), Default::default(), ContentPolicy::default()))
}

fn decode(c: &mut Criterion, inputs: &Inputs) {
    let decoder = Decoder::default();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(SPANS_PER_MESSAGE as u64));
    group.bench_function("otlp_protobuf_50_spans", |b| {
        let mut out = Decoded::default();
        b.iter(|| {
            out.clear();
            decoder.decode(black_box(&inputs.otlp_batch), PayloadFormat::OtlpTraces, NOW, &mut out);
            assert_eq!(out.events.len(), SPANS_PER_MESSAGE);
        });
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("json_event", |b| {
        let mut out = Decoded::default();
        b.iter(|| {
            out.clear();
            decoder.decode(black_box(&inputs.json_event), PayloadFormat::JsonEvents, NOW, &mut out);
            assert_eq!(out.events.len(), 1);
        });
    });
    group.finish();
}

fn enrich(c: &mut Criterion, inputs: &Inputs) -> Result<(), Box<dyn std::error::Error>> {
    let enricher = enricher()?;
    let mut group = c.benchmark_group("enrich");
    group.throughput(Throughput::Elements(inputs.decoded.len() as u64));
    group.bench_function("default_policy_10k_events", |b| {
        b.iter_batched_ref(
            || inputs.decoded.clone(),
            |events| {
                for event in events.iter_mut() {
                    enricher.enrich(event);
                }
            },
            BatchSize::LargeInput,
        );
    });
    // The same with a `[fingerprint]` key: keyed BLAKE3 hashes and a SipHash-2-4 per shingle.
    let key = FingerprintKey::from_bytes([0x5a; 32]);
    let keyed = enricher.clone().with_fingerprint_key(Some(key.clone()));
    group.bench_function("default_policy_keyed_10k_events", |b| {
        b.iter_batched_ref(
            || inputs.decoded.clone(),
            |events| {
                for event in events.iter_mut() {
                    keyed.enrich(event);
                }
            },
            BatchSize::LargeInput,
        );
    });
    // Every app retains scrubbed content: the PII scrubber runs on every input and output.
    let retaining = Enricher::new(
        Arc::new(ModelRegistry::default_embedded()?),
        Default::default(),
        ContentPolicy { retain_content: true, scrub_pii: true },
    );
    group.bench_function("retain_scrubbed_10k_events", |b| {
        b.iter_batched_ref(
            || inputs.decoded.clone(),
            |events| {
                for event in events.iter_mut() {
                    retaining.enrich(event);
                }
            },
            BatchSize::LargeInput,
        );
    });
    // The parts of the default policy, so the README can say where enrichment time goes.
    let registry = ModelRegistry::default_embedded()?;
    group.bench_function("part_price_only_10k_events", |b| {
        b.iter(|| {
            for event in &inputs.decoded {
                black_box(price_event(&registry, black_box(event)));
            }
        });
    });
    group.bench_function("part_content_hashes_only_10k_events", |b| {
        b.iter(|| {
            for event in &inputs.decoded {
                if let Some(input) = event.input_content.as_deref() {
                    black_box(content_hash(black_box(input)));
                }
                if let Some(output) = event.output_content.as_deref() {
                    black_box(content_hash(black_box(output)));
                }
            }
        });
    });
    group.bench_function("part_content_hashes_keyed_10k_events", |b| {
        b.iter(|| {
            for event in &inputs.decoded {
                if let Some(input) = event.input_content.as_deref() {
                    black_box(keyed_content_hash(&key, black_box(input)));
                }
                if let Some(output) = event.output_content.as_deref() {
                    black_box(keyed_content_hash(&key, black_box(output)));
                }
            }
        });
    });
    group.bench_function("part_simhash_only_10k_events", |b| {
        b.iter(|| {
            for event in &inputs.decoded {
                if let Some(output) = event.output_content.as_deref() {
                    black_box(simhash64(black_box(output)));
                }
            }
        });
    });
    group.bench_function("part_simhash_keyed_10k_events", |b| {
        b.iter(|| {
            for event in &inputs.decoded {
                if let Some(output) = event.output_content.as_deref() {
                    black_box(keyed_simhash64(&key, black_box(output)));
                }
            }
        });
    });
    group.finish();
    Ok(())
}

/// `add_event` over every event, then `drain` into rollup rows with serialized histograms.
fn add_and_drain(events: &[InferenceEvent]) -> Vec<RollupRow> {
    let mut aggregator = RollupAggregator::new(&AggregateConfig::default());
    for event in events {
        if let Err(error) = aggregator.add_event(event) {
            panic!("aggregation failed: {error}");
        }
    }
    match aggregator.drain() {
        Ok(rows) => rows,
        Err(error) => panic!("drain failed: {error}"),
    }
}

fn aggregate(c: &mut Criterion, inputs: &Inputs) {
    let mut group = c.benchmark_group("aggregate");
    group.throughput(Throughput::Elements(inputs.enriched.len() as u64));
    // Calls spread over three days: nearly every event opens its own key (worst case for drain).
    let sparse_keys = add_and_drain(&inputs.enriched).len();
    group.bench_function(format!("add_event_10k_then_drain_{sparse_keys}_keys"), |b| {
        b.iter(|| black_box(add_and_drain(black_box(&inputs.enriched))));
    });
    // The busy fleet: the same number of events within one or two minutes, few keys.
    let busy_keys = add_and_drain(&inputs.busy_enriched).len();
    group.throughput(Throughput::Elements(inputs.busy_enriched.len() as u64));
    group.bench_function(format!("add_event_10k_then_drain_{busy_keys}_keys"), |b| {
        b.iter(|| black_box(add_and_drain(black_box(&inputs.busy_enriched))));
    });
    group.finish();
}

fn parquet(c: &mut Criterion, inputs: &Inputs) -> Result<(), Box<dyn std::error::Error>> {
    let props = ParquetOptions::default().writer_properties(FileKind::Events)?;
    let mut group = c.benchmark_group("parquet");
    group.throughput(Throughput::Elements(inputs.enriched.len() as u64));
    group.sample_size(20);
    group.bench_function("encode_events_10k", |b| {
        b.iter(|| match encode_events(black_box(&inputs.enriched)) {
            Ok(batch) => black_box(batch),
            Err(error) => panic!("encode failed: {error}"),
        });
    });
    group.bench_function("encode_and_write_events_10k", |b| {
        b.iter(|| {
            let batch = match encode_events(black_box(&inputs.enriched)) {
                Ok(batch) => batch,
                Err(error) => panic!("encode failed: {error}"),
            };
            match write_parquet(&batch, props.clone()) {
                Ok(bytes) => black_box(bytes),
                Err(error) => panic!("write failed: {error}"),
            }
        });
    });
    group.finish();
    Ok(())
}

/// The whole per-message path of one source loop over `messages`, then the buffer is drained
/// into a flush batch (rollups drained, rows moved out) as a flush would.
fn run_processor(processor: &mut Processor, messages: &[Vec<u8>], format: PayloadFormat) -> usize {
    let mut buffer =
        PartitionBuffer::new(Arc::from("bench"), Arc::from("bench"), 0, 0, &AggregateConfig::default(), 100_000);
    for (offset, payload) in messages.iter().enumerate() {
        let offset = offset as i64;
        processor.process(&mut buffer, payload, format, (offset, offset + 1), NOW);
    }
    let rows = buffer.rows();
    match processor.take_batch(&mut buffer, NOW) {
        Ok(batch) => {
            black_box(batch);
        }
        Err(error) => panic!("take_batch failed: {error}"),
    }
    rows
}

fn processor(c: &mut Criterion, inputs: &Inputs) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::default();
    let metrics = Metrics::new(&MetricsConfig::default());
    let enricher = Arc::new(enricher()?);
    let mut processor = Processor::new(&config, enricher, metrics);
    let mut group = c.benchmark_group("processor");
    group.sample_size(20);
    let json_rows = run_processor(&mut processor, &inputs.json_messages, PayloadFormat::JsonEvents);
    group.throughput(Throughput::Elements(json_rows as u64));
    group.bench_function("json_events_10k_messages", |b| {
        b.iter(|| run_processor(&mut processor, &inputs.json_messages, PayloadFormat::JsonEvents));
    });
    let otlp_rows = run_processor(&mut processor, &inputs.otlp_messages, PayloadFormat::OtlpTraces);
    group.throughput(Throughput::Elements(otlp_rows as u64));
    group.bench_function("otlp_protobuf_10k_spans", |b| {
        b.iter(|| run_processor(&mut processor, &inputs.otlp_messages, PayloadFormat::OtlpTraces));
    });
    group.finish();
    Ok(())
}

/// The PII scrubber over 256 KB texts built to make pattern matching slow: one long run of what
/// looks like IPv6 groups (`a:b:c:d:`, `dead:`, a match every few bytes; quadratic before the
/// thirty-second session: a 1 MB dead letter took minutes), `::`, emails glued together, digit
/// groups and dotted numbers. Any producer can send such a text, and dead letters are scrubbed
/// whatever the content policy, so each must stay linear: bytes per second here should not fall
/// as the text grows.
fn scrub_adversarial(c: &mut Criterion) {
    const BYTES: usize = 256 * 1024;
    let scrubber = Scrubber::new();
    let mut group = c.benchmark_group("scrub_adversarial");
    group.throughput(Throughput::Bytes(BYTES as u64));
    for (name, unit) in [
        ("ipv6_groups", "a:b:c:d:"),
        ("ipv6_labels", "dead:"),
        ("colons", "::"),
        ("emails", "a@a.a@"),
        ("card_groups", "4111 "),
        ("dots", "1."),
    ] {
        let text = unit.repeat(BYTES / unit.len());
        group.bench_function(name, |b| b.iter(|| black_box(scrubber.scrub(black_box(&text)).len())));
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let result = inputs().and_then(|inputs| {
        decode(c, &inputs);
        enrich(c, &inputs)?;
        scrub_adversarial(c);
        aggregate(c, &inputs);
        parquet(c, &inputs)?;
        processor(c, &inputs)
    });
    if let Err(error) = result {
        panic!("pipeline benches could not run: {error}");
    }
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
