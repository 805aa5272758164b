//! The synthetic fleet: believable LLM micro-app traffic for `driftwatch demo`
//! (written to files, ingested through the real pipeline) and `driftwatch
//! loadgen` (produced to Kafka), plus the truth the lake must match.
//!
//! # Layout
//!
//! - [`catalog`]: the apps, their models, prompt versions, budgets and drift scenarios.
//! - [`generate`]: [`Fleet`] turns a [`FleetConfig`] into a lazy stream of
//!   [`FleetRecord`]s in emission order (late events, feedback and producer
//!   retries included).
//! - [`content`]: prompt and answer text, golden cases and planted PII.
//! - [`Encoder`] turns records into [`WireMessage`]s in one [`WireFormat`]:
//!   [`encode_json`] for `llm_events` NDJSON, [`encode_otlp`] for OTLP
//!   protobuf and OTLP/JSON batches; [`malformed`] injects rejects.
//! - [`truth`]: [`Truth`] sums what each message should yield, for tests and
//!   the demo's printed expectation.
//!
//! Records leave as wire messages; nothing here depends on the decoder.

pub mod catalog;
pub mod content;
pub mod encode_json;
pub mod encode_otlp;
pub mod files;
pub mod generate;
pub mod malformed;
pub mod truth;

use driftwatch_lake::model::{FeedbackEvent, InferenceEvent, UnixNanos};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use catalog::AppProfile;
pub use generate::Fleet;
pub use truth::{AppTruth, MessageTruth, Truth};

/// 2026-11-01T00:00:00Z in nanoseconds: the default start of the generated period.
pub const DEFAULT_START: UnixNanos = 1_793_491_200_000_000_000;

/// What the synthetic fleet generates. Same seed and config give byte-identical output.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Seed of every random draw.
    pub seed: u64,
    /// Number of apps (the catalog has 8 archetypes; more apps reuse them with a suffix).
    pub apps: usize,
    /// Total inference calls.
    pub inferences: usize,
    /// Start of the period (event time of the earliest call).
    pub start: UnixNanos,
    /// Length of the period the calls spread over, seconds.
    pub duration_secs: i64,
    /// Share of successful chat calls that get feedback (thumbs or hallucination evaluations).
    pub feedback_ratio: f64,
    /// Share of calls emitted out of order, minutes after their event time.
    pub late_ratio: f64,
    /// Share of calls a producer retry re-emits (same event id).
    pub duplicate_ratio: f64,
    /// Share of wire messages that are malformed (applied by the [`Encoder`]).
    pub malformed_ratio: f64,
    /// Emit prompt and answer text. Off is what OpenTelemetry GenAI instrumentations send by
    /// default (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=false`): no content, so no
    /// fingerprints.
    pub capture_content: bool,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            apps: 6,
            inferences: 50_000,
            start: DEFAULT_START,
            duration_secs: 3 * 86_400,
            feedback_ratio: 0.15,
            late_ratio: 0.01,
            duplicate_ratio: 0.0,
            malformed_ratio: 0.0,
            capture_content: true,
        }
    }
}

/// One generated record, in emission order.
#[derive(Debug, Clone, PartialEq)]
pub enum FleetRecord {
    /// An inference call, emitted for the first time.
    Inference(InferenceEvent),
    /// User feedback or an evaluation of an earlier inference.
    Feedback(FeedbackEvent),
    /// A producer retry re-emitting an inference already emitted (same event id).
    /// Only produced when `duplicate_ratio > 0`.
    Retry(InferenceEvent),
}

/// How records are put on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// One JSON object per message (`llm_events`).
    JsonEvents,
    /// OTLP/JSON `ExportTraceServiceRequest` / `ExportLogsServiceRequest`.
    OtlpJson,
    /// OTLP protobuf, as the Collector's Kafka exporter writes it.
    OtlpProto,
}

/// Which input stream (Kafka topic / file) a message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// OTLP traces (`otlp_spans`).
    Spans,
    /// OTLP logs (`otlp_logs`): feedback evaluations.
    Logs,
    /// Plain JSON events (`llm_events`).
    Events,
}

impl Stream {
    /// The payload format of the stream's topic in the default configuration (`kafka.topics`).
    pub fn payload_format(self) -> crate::decode::PayloadFormat {
        match self {
            Stream::Spans => crate::decode::PayloadFormat::OtlpTraces,
            Stream::Logs => crate::decode::PayloadFormat::OtlpLogs,
            Stream::Events => crate::decode::PayloadFormat::JsonEvents,
        }
    }
}

/// One Kafka message or one file line.
#[derive(Debug, Clone, PartialEq)]
pub struct WireMessage {
    /// Destination stream.
    pub stream: Stream,
    /// The encoded bytes.
    pub payload: Vec<u8>,
    /// Kafka key: the trace id of the call (of the first call, for an OTLP batch; of the rated
    /// call, for feedback), so the fleet's messages spread over a topic's partitions as real
    /// producers' do, and a JSON call and the feedback on it share one partition, in order.
    pub key: Option<Vec<u8>>,
    /// What good rows the message should yield.
    pub truth: MessageTruth,
}

/// The Kafka key of a message whose first record belongs to the trace `trace_id` (raw bytes):
/// its lower-case hex, as the text formats spell it.
fn trace_key(trace_id: &[u8]) -> Vec<u8> {
    let mut hex = String::with_capacity(2 * trace_id.len());
    generate::push_hex(trace_id, &mut hex);
    hex.into_bytes()
}

/// Seconds of event time an OTLP batch may wait for more spans, like the Collector's batch processor timeout.
const BATCH_TIMEOUT_NANOS: i64 = 5_000_000_000;

/// Turns records into wire messages (one Kafka message / one file line each).
///
/// OTLP batches up to `spans_per_message` spans of the same app into one
/// `ExportTraceServiceRequest` (resource per app, one scope), feedback into
/// `ExportLogsServiceRequest` messages; JSON emits one event per message.
/// After each good message a malformed one follows with a probability chosen
/// so that about `malformed_ratio` of all messages are malformed.
#[derive(Debug)]
pub struct Encoder {
    format: WireFormat,
    spans_per_message: usize,
    /// Probability of a malformed message after each good one.
    malformed_after: f64,
    rng: ChaCha8Rng,
    /// Which malformed kind comes next, so every kind shows up.
    malformed_seq: usize,
    batches: encode_otlp::Batcher,
    /// Latest event time seen: the batch timeout clock.
    clock: UnixNanos,
}

/// The largest share of malformed messages an [`Encoder`] mixes in: at most one follows each
/// good message, so half of all messages.
pub const MAX_MALFORMED_RATIO: f64 = 0.5;

impl Encoder {
    /// An encoder for `format`; `seed` drives the malformed-message dice.
    pub fn new(format: WireFormat, spans_per_message: usize, malformed_ratio: f64, seed: u64) -> Self {
        let ratio = if malformed_ratio.is_nan() { 0.0 } else { malformed_ratio.clamp(0.0, MAX_MALFORMED_RATIO) };
        Self {
            format,
            spans_per_message: spans_per_message.max(1),
            malformed_after: ratio / (1.0 - ratio),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6d61_6c66_6f72_6d65),
            malformed_seq: 0,
            batches: encode_otlp::Batcher::default(),
            clock: UnixNanos::MIN,
        }
    }

    /// Encodes one record, appending any messages that are complete.
    pub fn push(&mut self, record: &FleetRecord, out: &mut Vec<WireMessage>) {
        let start = out.len();
        match self.format {
            WireFormat::JsonEvents => out.push(encode_json::message(record)),
            WireFormat::OtlpJson | WireFormat::OtlpProto => {
                let time = match record {
                    FleetRecord::Inference(e) | FleetRecord::Retry(e) => e.time,
                    FleetRecord::Feedback(f) => f.time,
                };
                self.clock = self.clock.max(time);
                let json = self.format == WireFormat::OtlpJson;
                self.batches.push(record, self.spans_per_message, json, out);
                self.batches.flush_older_than(self.clock - BATCH_TIMEOUT_NANOS, json, out);
            }
        }
        self.inject_malformed(start, out);
    }

    /// Flushes every open batch.
    pub fn finish(&mut self, out: &mut Vec<WireMessage>) {
        let start = out.len();
        self.batches.flush_all(self.format == WireFormat::OtlpJson, out);
        self.inject_malformed(start, out);
    }

    /// Rolls the malformed dice once per good message appended since `start`.
    fn inject_malformed(&mut self, start: usize, out: &mut Vec<WireMessage>) {
        if self.malformed_after <= 0.0 {
            return;
        }
        let good = out.len() - start;
        for _ in 0..good {
            if self.rng.random_bool(self.malformed_after.min(1.0)) {
                out.push(malformed::message(self.format, self.malformed_seq, &mut self.rng));
                self.malformed_seq += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
