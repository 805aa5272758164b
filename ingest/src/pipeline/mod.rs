//! The per-message path every source shares: decode -> enrich -> aggregate -> buffer, and the
//! flusher that turns buffers into lake files plus a checkpoint.
//!
//! A source owns one [`PartitionBuffer`] per partition it reads and calls
//! [`Processor::process`] for each message, which drops a span that wraps another call
//! (`wrapped`) and a producer's retry (the partition's dedup window) before enriching and
//! aggregating the rest. When a buffer is [`due`](PartitionBuffer::due) the
//! source drains it with [`Processor::take_batch`] (which first tallies feedback held back for
//! its inference) and hands the [`FlushBatch`] to the [`Flusher`]
//! task, which writes it durably and reports back; only then may the source acknowledge the
//! position upstream (Kafka commit). The file source needs no acknowledgement: the lake
//! checkpoint is its only position. [`Shutdown`] is how a source learns it must stop, and when
//! flushes the lake keeps refusing are given up.

#[cfg(test)]
mod dead_letter_tests;
mod flusher;
mod partition;
mod shutdown;
mod wrapped;

pub use crate::telemetry::{FlushReason, MessageResult};
pub use flusher::{FlushDone, FlushOutcome, Flusher, FlusherError};
pub use partition::PartitionBuffer;
pub use shutdown::{Shutdown, final_flush_budget};

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use driftwatch_lake::model::{DeadLetter, FeedbackEvent, SourcePosition, UnixNanos};
use driftwatch_lake::writer::FlushBatch;

use self::partition::seen_event_recently;
use self::wrapped::WrappedCalls;
use crate::aggregate::{AggregateError, FeedbackJoin, RollupAggregator};
use crate::config::{Config, FlushConfig};
use crate::decode::{DeadLetterContent, Decoded, Decoder, PayloadFormat, Reject, dead_letter_payload};
use crate::enrich::{Enricher, Scrubber};
use crate::telemetry::Metrics;
use crate::telemetry::names::AGGREGATE_FAILED_REASON;

/// Flush thresholds in the units the hot path compares against (plain byte counts where the
/// config has [`ByteSize`](bytesize::ByteSize)s); see [`FlushConfig`] for what each means.
#[derive(Debug, Clone)]
pub struct FlushLimits {
    /// Rows a partition buffer holds before it is flushed.
    pub max_rows: usize,
    /// Estimated bytes a partition buffer holds before it is flushed.
    pub max_bytes: usize,
    /// How long a partition buffer's oldest row waits before the buffer is flushed.
    pub max_age: Duration,
    /// The memory budget over all buffers and the batches being written.
    pub max_buffered_bytes: usize,
    /// Recent event ids remembered per partition to drop producer retries (0: none).
    pub dedup_window: usize,
}

impl From<&FlushConfig> for FlushLimits {
    fn from(config: &FlushConfig) -> Self {
        Self {
            max_rows: config.max_rows,
            max_bytes: usize::try_from(config.max_bytes.as_u64()).unwrap_or(usize::MAX),
            max_age: config.max_age,
            max_buffered_bytes: usize::try_from(config.max_buffered_bytes.as_u64()).unwrap_or(usize::MAX),
            dedup_window: config.dedup_window,
        }
    }
}

/// Decode, enrich and aggregate messages into partition buffers. One per source loop: it keeps
/// scratch space and the feedback join index, so it is not shared across threads.
#[derive(Debug)]
pub struct Processor {
    decoder: Decoder,
    enricher: Arc<Enricher>,
    metrics: Metrics,
    join: FeedbackJoin,
    /// Recent calls by their parent span, to skip a span that wraps one of them.
    wrapped: WrappedCalls,
    scratch: Decoded,
    max_dead_letter_payload_bytes: usize,
    /// Whether dead letters keep the content of rejected input ([`dead_letter_content`]).
    dead_letter_content: DeadLetterContent,
}

impl Processor {
    /// Build from a validated config and the shared enricher and metrics.
    pub fn new(config: &Config, enricher: Arc<Enricher>, metrics: Metrics) -> Self {
        let decode = config.decode.to_decode_config();
        let max_dead_letter_payload_bytes = decode.max_dead_letter_payload_bytes;
        let dead_letter_content = dead_letter_content(config);
        Self {
            decoder: Decoder::new(decode).with_dead_letter_content(dead_letter_content),
            enricher,
            metrics,
            join: FeedbackJoin::new(config.aggregate.feedback_join_capacity),
            wrapped: WrappedCalls::new(),
            scratch: Decoded::default(),
            max_dead_letter_payload_bytes,
            dead_letter_content,
        }
    }

    /// The metrics handle rows are counted into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Turn the message at `offset` into buffered rows; `next_offset` is where the source resumes
    /// after it (Kafka: offset + 1; files: the byte after the line). Never fails: anything unusable becomes a dead letter
    /// with its reason, next to the good rows of the same message.
    pub fn process(
        &mut self,
        buffer: &mut PartitionBuffer,
        payload: &[u8],
        format: PayloadFormat,
        (offset, next_offset): (i64, i64),
        now: UnixNanos,
    ) -> MessageResult {
        self.scratch.clear();
        self.decoder.decode(payload, format, now, &mut self.scratch);
        let wrappers = self.wrapped.wrappers(&self.scratch);
        if !wrappers.is_empty() {
            let mut index = 0;
            self.scratch.events.retain(|_| {
                let keep = wrappers.binary_search(&index).is_err();
                index += 1;
                keep
            });
            self.scratch.skipped_spans += wrappers.len() as u64;
        }
        buffer.consumed(offset, next_offset);
        let source = SourcePosition { topic: buffer.topic.clone(), partition: buffer.partition, offset };

        let mut rows = 0usize;
        let mut rejects = self.scratch.rejects.len();
        let mut failed = Vec::new();
        for event in &mut self.scratch.events {
            // The app as stored: a retry may spell it otherwise (`" app"`, another Unicode form).
            self.enricher.scrub_identity(event);
            if seen_event_recently(&mut buffer.recent_ids, &event.app, &event.event_id) {
                self.metrics.record_duplicate();
                continue;
            }
            self.enricher.enrich_identified(event);
            event.source = Some(source.clone());
            if let Err(error) = buffer.rollups.add_event(event) {
                rejects += 1;
                failed.push(dead_letter(now, AGGREGATE_FAILED_REASON, error.to_string(), Vec::new(), &source));
                continue;
            }
            self.join.remember(event);
            self.metrics.observe_event(event);
            self.metrics.observe_event_lag(event.time, now);
            buffer.approx_bytes += buffer.events.push(event);
            rows += 1;
        }
        for dead in failed {
            bury(&self.metrics, buffer, dead);
        }
        for mut feedback in self.scratch.feedback.drain(..) {
            self.enricher.enrich_feedback(&mut feedback);
            if buffer.is_duplicate_feedback(&feedback.app, &feedback.feedback_id) {
                self.metrics.record_duplicate();
                continue;
            }
            let rated_at = self.join.fill(&mut feedback);
            feedback.source = Some(source.clone());
            if rated_at.is_none() && names_an_inference(&feedback) {
                // Its inference may still come, from another partition read behind this one:
                // keep the row, tally it when the buffer is drained (see `take_batch`).
                buffer.unjoined_feedback.push(buffer.feedback.len());
                buffer.charge(approx_feedback_bytes(&feedback));
                buffer.feedback.push(feedback);
                rows += 1;
                continue;
            }
            if let Err(error) = tally_feedback(&self.metrics, &mut buffer.rollups, &feedback, rated_at) {
                rejects += 1;
                let dead = dead_letter(now, AGGREGATE_FAILED_REASON, error.to_string(), Vec::new(), &source);
                bury(&self.metrics, buffer, dead);
                continue;
            }
            buffer.charge(approx_feedback_bytes(&feedback));
            buffer.feedback.push(feedback);
            rows += 1;
        }
        for Reject { reason, detail, payload: item } in self.scratch.rejects.drain(..) {
            let bytes = item.unwrap_or_else(|| {
                dead_letter_payload(payload, self.max_dead_letter_payload_bytes, self.dead_letter_content)
            });
            self.metrics.record_decode_error(reason);
            bury(&self.metrics, buffer, dead_letter(now, reason, detail, bytes, &source));
        }
        if self.scratch.skipped_spans > 0 {
            self.metrics.record_spans_skipped(self.scratch.skipped_spans);
        }
        if self.scratch.dropped_reported_costs > 0 {
            self.metrics.record_reported_costs_dropped(self.scratch.dropped_reported_costs);
        }
        if self.scratch.dropped_ttfts > 0 {
            self.metrics.record_ttfts_dropped(self.scratch.dropped_ttfts);
        }

        let result = match (rows, rejects) {
            (0, 0) => MessageResult::Skipped,
            (_, 0) => MessageResult::Ok,
            (0, _) => MessageResult::Rejected,
            _ => MessageResult::Partial,
        };
        self.metrics.record_message(&buffer.topic, result);
        result
    }

    /// Drain `buffer` into a batch for the flusher (`None` when idle), after tallying the
    /// feedback it held back: each is joined again, since its inference may have been read
    /// since from another partition, then counted in the rollups and metrics with what it
    /// has. Sources drain every buffer through here.
    pub fn take_batch(
        &mut self,
        buffer: &mut PartitionBuffer,
        now: UnixNanos,
    ) -> Result<Option<FlushBatch>, AggregateError> {
        let unjoined = std::mem::take(&mut buffer.unjoined_feedback);
        let mut failed = Vec::new();
        for index in unjoined {
            let Some(feedback) = buffer.feedback.get_mut(index) else { continue };
            let rated_at = self.join.fill(feedback);
            if let Err(error) = tally_feedback(&self.metrics, &mut buffer.rollups, feedback, rated_at) {
                failed.push((index, error));
            }
        }
        // Highest index first, so the ones left to remove keep their places.
        for (index, error) in failed.into_iter().rev() {
            let feedback = buffer.feedback.remove(index);
            let source = feedback.source.unwrap_or_else(|| SourcePosition {
                topic: buffer.topic.clone(),
                partition: buffer.partition,
                offset: buffer.next_offset(),
            });
            let dead = dead_letter(now, AGGREGATE_FAILED_REASON, error.to_string(), Vec::new(), &source);
            bury(&self.metrics, buffer, dead);
        }
        buffer.take_batch()
    }

    /// Dead-letter a record the source could not hand over as a message (a line above the size
    /// limit, the bytes after a corrupt length prefix): `head` is what is kept of it, `reason`
    /// and `detail` say why. Counted like a message the decoder rejected.
    pub fn reject(
        &mut self,
        buffer: &mut PartitionBuffer,
        (reason, detail): (&'static str, String),
        head: &[u8],
        (offset, next_offset): (i64, i64),
        now: UnixNanos,
    ) -> MessageResult {
        buffer.consumed(offset, next_offset);
        let source = SourcePosition { topic: buffer.topic.clone(), partition: buffer.partition, offset };
        let payload = dead_letter_payload(head, self.max_dead_letter_payload_bytes, self.dead_letter_content);
        self.metrics.record_decode_error(reason);
        bury(&self.metrics, buffer, dead_letter(now, reason, detail, payload, &source));
        self.metrics.record_message(&buffer.topic, MessageResult::Rejected);
        MessageResult::Rejected
    }
}

/// Count one feedback result in the rollups and, once they took it, in the live metrics: the
/// same tally whether it is counted when read or when its buffer is drained. `rated_at` is the
/// time of the call it rates, when the join found that call: the tally goes to the call's
/// minute, else to the feedback's own.
fn tally_feedback(
    metrics: &Metrics,
    rollups: &mut RollupAggregator,
    feedback: &FeedbackEvent,
    rated_at: Option<UnixNanos>,
) -> Result<(), AggregateError> {
    rollups.add_feedback(feedback, rated_at.unwrap_or(feedback.time))?;
    metrics.observe_feedback(feedback);
    Ok(())
}

/// Whether a feedback result names the inference it rates (by id, span or response id), so
/// that a later join could find it.
fn names_an_inference(feedback: &FeedbackEvent) -> bool {
    feedback.inference_id.is_some()
        || feedback.response_id.is_some()
        || (feedback.trace_id.is_some() && feedback.span_id.is_some())
}

/// Whether dead letters keep the prompt and answer text of rejected input: only when
/// `[default_app]` and every `[[apps]]` entry retain content (DESIGN §10).
///
/// The app of a rejected message is often unknown (it may be the field that is wrong, or the
/// message may not parse), and guessing it from the bytes would trust the very input that was
/// rejected. So one rule serves every dead letter, and it must not keep the content of any app
/// that did not opt in: with one app not retaining content, a dead letter could be its message.
/// The same policies as the enricher's, read from the same config.
fn dead_letter_content(config: &Config) -> DeadLetterContent {
    let (apps, default_app) = config.content_policies();
    if default_app.retain_content && apps.values().all(|policy| policy.retain_content) {
        DeadLetterContent::Keep
    } else {
        DeadLetterContent::Mask
    }
}

/// Every dead letter is built here, so nothing reaches the table unscrubbed.
///
/// Rejected input is stored whatever the app's content policy, its content masked unless
/// [`dead_letter_content`] keeps it ([`dead_letter_payload`]); its payload and the detail, which
/// may quote a bad value, pass through every detector first (DESIGN §10).
fn dead_letter(
    now: UnixNanos,
    reason: &'static str,
    detail: String,
    payload: Vec<u8>,
    source: &SourcePosition,
) -> DeadLetter {
    let scrubber = Scrubber::new();
    let detail = match scrubber.scrub(&detail) {
        Cow::Owned(scrubbed) => scrubbed,
        Cow::Borrowed(_) => detail,
    };
    let payload = match scrubber.scrub_bytes(&payload) {
        Cow::Owned(scrubbed) => scrubbed,
        Cow::Borrowed(_) => payload,
    };
    DeadLetter { time: now, reason, detail, payload, source: Some(source.clone()) }
}

/// Count a dead letter and buffer it for the flush.
fn bury(metrics: &Metrics, buffer: &mut PartitionBuffer, dead: DeadLetter) {
    metrics.record_dead_letter(dead.reason);
    buffer.charge(approx_dead_letter_bytes(&dead));
    buffer.dead_letters.push(dead);
}

fn opt_capacity(value: Option<&String>) -> usize {
    value.map_or(0, String::capacity)
}

/// What a buffered row costs beyond its struct and strings: the share of the buffer `Vec`'s
/// spare capacity (it doubles) and of the row's source position.
const ROW_SLACK_BYTES: usize = 64;

fn approx_feedback_bytes(feedback: &FeedbackEvent) -> usize {
    std::mem::size_of::<FeedbackEvent>()
        + ROW_SLACK_BYTES
        + feedback.feedback_id.capacity()
        + feedback.app.capacity()
        + feedback.name.capacity()
        + [
            &feedback.environment,
            &feedback.score_label,
            &feedback.trace_id,
            &feedback.span_id,
            &feedback.response_id,
            &feedback.inference_id,
            &feedback.response_model,
            &feedback.prompt_version,
        ]
        .into_iter()
        .map(|field| opt_capacity(field.as_ref()))
        .sum::<usize>()
}

fn approx_dead_letter_bytes(dead: &DeadLetter) -> usize {
    std::mem::size_of::<DeadLetter>() + ROW_SLACK_BYTES + dead.detail.capacity() + dead.payload.capacity()
}

/// The buffer holding the most bytes among those a flush would empty: the one to flush early
/// when all partitions together exceed `flush.max_buffered_bytes`. An idle buffer is passed
/// over even when it counts more bytes, since flushing it would free nothing.
pub fn largest_buffer<'a, I>(buffers: I) -> Option<&'a mut PartitionBuffer>
where
    I: IntoIterator<Item = &'a mut PartitionBuffer>,
{
    buffers.into_iter().filter(|buffer| !buffer.is_idle()).max_by_key(|buffer| buffer.bytes())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::aggregate::AggregateConfig;
    use crate::enrich::ModelRegistry;
    use crate::telemetry::MetricsConfig;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// 2025-06-01T12:00:00Z and a little after: inside the default plausibility window.
    const NOW: UnixNanos = 1_748_779_300_000_000_000;

    fn processor() -> Result<Processor, Box<dyn std::error::Error>> {
        let config = Config::default();
        let (policies, default_policy) = config.content_policies();
        let enricher = Enricher::new(Arc::new(ModelRegistry::default_embedded()?), policies, default_policy);
        Ok(Processor::new(&config, Arc::new(enricher), Metrics::new(&MetricsConfig::default())))
    }

    fn event(id: usize, app: &str, golden_case: &str) -> Vec<u8> {
        format!(
            r#"{{"id":"evt-{id}","time":"2025-06-01T12:00:00Z","app":"{app}","request_model":"gpt-4o","input_tokens":10,"output_tokens":5,"golden_case":"{golden_case}"}}"#
        )
        .into_bytes()
    }

    /// Flush limits that only `max_bytes` (and the rollup-key cap) can trigger in a test.
    fn limits_with_max_bytes(max_bytes: usize) -> FlushLimits {
        FlushLimits {
            max_rows: 1_000,
            max_bytes,
            max_age: Duration::from_secs(3600),
            max_buffered_bytes: usize::MAX,
            dedup_window: 100,
        }
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLWJ5dGVz";
    const SECRETS: [&str; 4] = ["jane@example.com", "4111 1111 1111 1111", "4111111111111111", JWT];

    /// The dead letters one message leaves behind.
    fn dead_letters(payload: &[u8], format: PayloadFormat) -> Result<Vec<DeadLetter>, Box<dyn std::error::Error>> {
        let mut processor = processor()?;
        let mut buffer = PartitionBuffer::new(Arc::from("s"), Arc::from("t"), 0, 0, &AggregateConfig::default(), 100);
        processor.process(&mut buffer, payload, format, (0, 1), NOW);
        Ok(std::mem::take(&mut buffer.dead_letters))
    }

    fn assert_no_secrets(dead: &[DeadLetter]) {
        assert!(!dead.is_empty());
        for dead in dead {
            let payload = String::from_utf8_lossy(&dead.payload);
            for secret in SECRETS {
                assert!(!dead.detail.contains(secret), "{secret} in detail {:?}", dead.detail);
                assert!(!payload.contains(secret), "{secret} in payload {payload:?}");
            }
        }
    }

    #[test]
    fn dead_letters_keep_no_pii_in_payload_or_detail() -> TestResult {
        use prost::Message;

        use super::dead_letter_tests::{kv, rejected_span_request, text};

        // A whole JSON message rejected for a bad value that is itself PII.
        let json = format!(
            r#"{{"id":"evt-1","time":"2025-06-01T12:00:00Z","app":"chat","input_tokens":"jane@example.com","input":"card:\n4111 1111 1111 1111 token {JWT}"}}"#
        );
        let dead = dead_letters(json.as_bytes(), PayloadFormat::JsonEvents)?;
        assert!(dead[0].detail.contains("[EMAIL]"), "{}", dead[0].detail);
        assert_no_secrets(&dead);

        // One OTLP span rejected, kept re-serialised with its messages.
        let messages = format!(
            r#"[{{"role":"user","parts":[{{"type":"text","content":"I am jane@example.com
card 4111111111111111
{JWT}"}}]}}]"#
        );
        let traces = rejected_span_request(vec![kv("gen_ai.input.messages", text(&messages))]);
        let protobuf = traces.encode_to_vec();
        let dead = dead_letters(&protobuf, PayloadFormat::OtlpTraces)?;
        assert_eq!(dead[0].reason, "negative_tokens");
        assert_no_secrets(&dead);

        // Protobuf that does not decode is kept as it came, binary: its strings are masked in place.
        let mut broken = protobuf;
        broken.extend_from_slice(b"\xff\xff\xff");
        let dead = dead_letters(&broken, PayloadFormat::OtlpTraces)?;
        assert_eq!(dead[0].reason, "malformed_protobuf");
        assert_eq!(dead[0].payload.len(), broken.len());
        assert_no_secrets(&dead);
        Ok(())
    }

    /// A backlog can put a logs topic ahead of its spans topic: feedback read before its
    /// inference waits for the drain of its buffer to be joined and tallied.
    /// A reported cost that is no amount is dropped, the call kept and priced, and the drop
    /// counted on `/metrics`.
    #[test]
    fn a_call_with_an_unusable_reported_cost_is_kept_and_the_drop_counted() -> TestResult {
        let mut processor = processor()?;
        let mut buffer = PartitionBuffer::new(Arc::from("s"), Arc::from("t"), 0, 0, &AggregateConfig::default(), 100);
        let call = br#"{"id":"evt-1","time":"2025-06-01T12:00:00Z","app":"chat","request_model":"gpt-4o","input_tokens":10,"output_tokens":5,"reported_cost_usd":"n/a"}"#;
        assert_eq!(processor.process(&mut buffer, call, PayloadFormat::JsonEvents, (0, 1), NOW), MessageResult::Ok);
        let batch = processor.take_batch(&mut buffer, NOW)?.ok_or("a batch")?;
        assert_eq!(batch.rollups.iter().map(|row| row.requests).sum::<i64>(), 1);
        assert!(batch.dead_letters.is_empty());
        let text = processor.metrics.encode()?;
        assert!(text.contains("driftwatch_reported_costs_dropped_total 1"), "{text}");
        Ok(())
    }

    /// A verdict is tallied in the minute of the call it rates, whether the join finds the call
    /// when the verdict is read or at the drain; one whose call is unknown stays in its own minute.
    /// The feedback row itself keeps its own time.
    #[test]
    fn feedback_is_tallied_in_the_window_of_the_inference_it_rates() -> TestResult {
        const MINUTE: UnixNanos = 60_000_000_000;
        /// 2025-06-01T12:00:00Z.
        const NOON: UnixNanos = 1_748_779_200_000_000_000;
        let mut processor = processor()?;
        let buffer = |topic: &str| {
            PartitionBuffer::new(Arc::from(topic), Arc::from(topic), 0, 0, &AggregateConfig::default(), 100)
        };
        let windows = |batch: &FlushBatch| -> Vec<(UnixNanos, i64, usize)> {
            let mut rows: Vec<_> =
                batch.rollups.iter().map(|row| (row.key.window_start, row.requests, row.feedback.len())).collect();
            rows.sort_unstable();
            rows
        };

        // Read after its call: the call's minute (11:59), not the verdict's (12:00).
        let mut chat = buffer("chat");
        let call = br#"{"id":"evt-1","time":"2025-06-01T11:59:59.9999Z","app":"chat","request_model":"gpt-4o"}"#;
        let verdict = br#"{"type":"feedback","id":"fb-1","time":"2025-06-01T12:00:30Z","app":"chat","name":"hallucination","label":"hallucinated","inference_id":"evt-1"}"#;
        processor.process(&mut chat, call, PayloadFormat::JsonEvents, (0, 1), NOW);
        processor.process(&mut chat, verdict, PayloadFormat::JsonEvents, (1, 2), NOW);
        let batch = processor.take_batch(&mut chat, NOW)?.ok_or("a batch")?;
        assert_eq!(windows(&batch), [(NOON - MINUTE, 1, 1)]);
        assert_eq!(batch.feedback[0].time, NOON + 30 * 1_000_000_000, "the feedback row keeps its own time");

        // Read before its call (held for the drain), and the call two minutes earlier.
        let (mut logs, mut spans) = (buffer("logs"), buffer("spans"));
        let verdict = br#"{"type":"feedback","id":"fb-2","time":"2025-06-01T12:00:30Z","app":"chat","name":"user_thumbs","score":0.0,"inference_id":"evt-2"}"#;
        let call = br#"{"id":"evt-2","time":"2025-06-01T11:58:10Z","app":"chat","request_model":"gpt-4o"}"#;
        processor.process(&mut logs, verdict, PayloadFormat::JsonEvents, (0, 1), NOW);
        processor.process(&mut spans, call, PayloadFormat::JsonEvents, (0, 1), NOW);
        let batch = processor.take_batch(&mut logs, NOW)?.ok_or("a batch")?;
        assert_eq!(windows(&batch), [(NOON - 2 * MINUTE, 0, 1)]);

        // Its call never seen: the verdict's own minute.
        let verdict = br#"{"type":"feedback","id":"fb-3","time":"2025-06-01T12:00:30Z","app":"chat","name":"user_thumbs","score":0.0,"inference_id":"evt-404"}"#;
        processor.process(&mut logs, verdict, PayloadFormat::JsonEvents, (1, 2), NOW);
        let batch = processor.take_batch(&mut logs, NOW)?.ok_or("a batch")?;
        assert_eq!(windows(&batch), [(NOON, 0, 1)]);
        Ok(())
    }

    #[test]
    fn feedback_read_before_its_inference_is_tallied_with_its_context_at_the_drain() -> TestResult {
        const MODEL: &str = "gpt-4o-2024-08-06";
        let mut processor = processor()?;
        let buffer = |topic: &str| {
            PartitionBuffer::new(Arc::from(topic), Arc::from(topic), 0, 0, &AggregateConfig::default(), 100)
        };
        let (mut logs, mut spans) = (buffer("logs"), buffer("spans"));
        let feedback = br#"{"type":"feedback","id":"fb-1","time":"2025-06-01T12:00:05Z","app":"chat","name":"user_thumbs","score":1.0,"inference_id":"evt-1"}"#;
        let inference = format!(
            r#"{{"id":"evt-1","time":"2025-06-01T12:00:00Z","app":"chat","request_model":"gpt-4o","response_model":"{MODEL}","input_tokens":10,"output_tokens":5}}"#
        );
        assert_eq!(processor.process(&mut logs, feedback, PayloadFormat::JsonEvents, (0, 1), NOW), MessageResult::Ok);
        assert_eq!(logs.rows(), 1, "the row is buffered at once");
        assert!(!processor.metrics.encode()?.contains("driftwatch_feedback_total{"), "not counted yet");
        // Drained around the processor, the buffer refuses: its rollups would miss the row.
        assert!(matches!(logs.take_batch(), Err(AggregateError::UntalliedFeedback { rows: 1 })));

        processor.process(&mut spans, inference.as_bytes(), PayloadFormat::JsonEvents, (0, 1), NOW);
        let batch = processor.take_batch(&mut logs, NOW)?.ok_or("a batch")?;
        assert_eq!(batch.feedback.len(), 1);
        assert_eq!(batch.feedback[0].response_model.as_deref(), Some(MODEL));
        let tallied: Vec<Option<&str>> = batch
            .rollups
            .iter()
            .filter(|row| !row.feedback.is_empty())
            .map(|row| row.key.response_model.as_deref())
            .collect();
        assert_eq!(tallied, [Some(MODEL)]);
        let text = processor.metrics.encode()?;
        assert!(
            text.lines().any(|line| line.starts_with("driftwatch_feedback_total{")
                && line.contains(&format!("model=\"{MODEL}\""))
                && line.ends_with(" 1")),
            "{text}"
        );

        // Feedback whose inference never comes is tallied at the drain as it is.
        let late = br#"{"type":"feedback","id":"fb-2","time":"2025-06-01T12:00:05Z","app":"chat","name":"user_thumbs","score":0.0,"inference_id":"evt-404"}"#;
        processor.process(&mut logs, late, PayloadFormat::JsonEvents, (1, 2), NOW);
        let batch = processor.take_batch(&mut logs, NOW)?.ok_or("a batch")?;
        assert_eq!(batch.feedback[0].response_model, None);
        assert_eq!(batch.rollups.iter().map(|row| row.feedback.len()).sum::<usize>(), 1);
        Ok(())
    }

    #[test]
    fn buffered_events_are_charged_their_column_bytes_and_flush_on_bytes() -> TestResult {
        let mut processor = processor()?;
        let mut buffer = PartitionBuffer::new(Arc::from("s"), Arc::from("t"), 0, 0, &AggregateConfig::default(), 100);
        let mut process = |buffer: &mut PartitionBuffer, offset: i64, payload: &[u8]| {
            processor.process(buffer, payload, PayloadFormat::JsonEvents, (offset, offset + 1), NOW)
        };

        assert_eq!(process(&mut buffer, 0, &event(0, "chat", "g")), MessageResult::Ok);
        let first = buffer.bytes();
        assert_eq!(process(&mut buffer, 1, &event(1, "chat", "g")), MessageResult::Ok);
        let row = buffer.bytes() - first;
        assert!(row > 0 && row < first, "a second row in the same file costs less than the first: {row} vs {first}");

        // A long value is charged (twice, for the builders' growth): the longest a name may be.
        let long = "x".repeat(crate::decode::MAX_NAME_BYTES);
        assert_eq!(process(&mut buffer, 2, &event(2, "chat", &long)), MessageResult::Ok);
        assert!(buffer.bytes() - first - row >= 2 * (long.len() - "g".len()), "{}", buffer.bytes());

        // A duplicate costs nothing; a new app opens a file and costs more than a row.
        let before = buffer.bytes();
        assert_eq!(process(&mut buffer, 3, &event(1, "chat", "g")), MessageResult::Skipped);
        assert_eq!(buffer.bytes(), before);
        assert_eq!(process(&mut buffer, 4, &event(4, "other", "g")), MessageResult::Ok);
        assert!(buffer.bytes() - before > row);
        assert_eq!(buffer.rows(), 4);

        let limits = limits_with_max_bytes(buffer.bytes());
        assert_eq!(buffer.due(&limits, Instant::now()), Some(FlushReason::Bytes));
        let batch = buffer.take_batch()?.ok_or("a batch")?;
        assert_eq!((batch.events.len(), batch.first_offset, batch.next_offset), (4, 0, 5));
        // Only the rollups' fixed part is left.
        assert!(buffer.rows() == 0 && buffer.bytes() < row, "{}", buffer.bytes());
        assert_eq!(buffer.due(&limits, Instant::now()), None);
        Ok(())
    }

    /// One message whose spans open more rollup keys than `max_open_keys` is counted whole,
    /// and the buffer asks to be flushed right after it.
    #[test]
    fn a_message_opening_more_keys_than_the_cap_is_kept_whole() -> TestResult {
        let mut processor = processor()?;
        let config = AggregateConfig { max_open_keys: 3, ..AggregateConfig::default() };
        let mut buffer = PartitionBuffer::new(Arc::from("s"), Arc::from("t"), 0, 0, &config, 100);
        // Ten spans, each in a minute of its own: ten rollup keys.
        let spans: Vec<String> = (1..=10)
            .map(|n| {
                let end = 1_748_779_200_000_000_000_i64 + n * 60_000_000_000;
                format!(
                    r#"{{"traceId":"{n:032x}","spanId":"{n:016x}","name":"chat","startTimeUnixNano":"{}","endTimeUnixNano":"{end}","attributes":[{{"key":"gen_ai.operation.name","value":{{"stringValue":"chat"}}}}]}}"#,
                    end - 1_000_000_000
                )
            })
            .collect();
        let message = format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"a"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
            spans.join(",")
        );
        processor.process(&mut buffer, message.as_bytes(), PayloadFormat::OtlpTraces, (0, 1), NOW);
        assert!(buffer.dead_letters.is_empty(), "{:?}", buffer.dead_letters);
        assert_eq!(buffer.rows(), 10);
        assert_eq!(buffer.rollups.open_keys(), 10);
        let limits = limits_with_max_bytes(usize::MAX);
        assert_eq!(buffer.due(&limits, Instant::now()), Some(FlushReason::Keys));
        Ok(())
    }

    /// An id is an event's identity within its app: another app's call with the same id is
    /// kept, the same app's retry is dropped.
    #[test]
    fn the_same_id_in_two_apps_is_two_events() -> TestResult {
        let mut processor = processor()?;
        let mut buffer = PartitionBuffer::new(Arc::from("s"), Arc::from("t"), 0, 0, &AggregateConfig::default(), 100);
        let mut process = |buffer: &mut PartitionBuffer, offset: i64, app: &str| {
            processor.process(buffer, &event(1, app, "g"), PayloadFormat::JsonEvents, (offset, offset + 1), NOW)
        };
        assert_eq!(process(&mut buffer, 0, "where2eat"), MessageResult::Ok);
        assert_eq!(process(&mut buffer, 1, "ticket-summariser"), MessageResult::Ok);
        assert_eq!(process(&mut buffer, 2, "where2eat"), MessageResult::Skipped);
        assert_eq!(buffer.rows(), 2);
        // Feedback ids too: each app's first feedback numbered 1 is kept, a repeat dropped.
        let feedback = |app: &str| {
            format!(
                r#"{{"type":"feedback","id":"1","time":"2025-06-01T12:00:01Z","app":"{app}","name":"user_thumbs","score":1,"inference_id":"evt-1"}}"#
            )
        };
        for (offset, app, kept) in [(3, "where2eat", true), (4, "ticket-summariser", true), (5, "where2eat", false)] {
            let result = processor.process(
                &mut buffer,
                feedback(app).as_bytes(),
                PayloadFormat::JsonEvents,
                (offset, offset + 1),
                NOW,
            );
            assert_eq!(result == MessageResult::Ok, kept, "{app} at {offset}: {result:?}");
        }
        assert_eq!(buffer.feedback.len(), 2);
        Ok(())
    }

    /// A retry is recognised by the app as stored: trimmed and in NFC, whatever spelling the
    /// producer sent it in.
    #[test]
    fn a_retry_spelling_its_app_otherwise_is_dropped() -> TestResult {
        let mut processor = processor()?;
        let mut buffer = PartitionBuffer::new(Arc::from("s"), Arc::from("t"), 0, 0, &AggregateConfig::default(), 100);
        let results: Vec<MessageResult> = ["caf\u{e9}", " caf\u{e9}", "cafe\u{301} "]
            .into_iter()
            .enumerate()
            .map(|(offset, app)| {
                let offset = i64::try_from(offset).unwrap_or(i64::MAX);
                processor.process(
                    &mut buffer,
                    &event(1, app, "g"),
                    PayloadFormat::JsonEvents,
                    (offset, offset + 1),
                    NOW,
                )
            })
            .collect();
        assert_eq!(results, [MessageResult::Ok, MessageResult::Skipped, MessageResult::Skipped]);
        let feedback = |app: &str| {
            format!(
                r#"{{"type":"feedback","id":"1","time":"2025-06-01T12:00:01Z","app":"{app}","name":"user_thumbs","score":1,"inference_id":"evt-1"}}"#
            )
        };
        let results: Vec<MessageResult> = ["caf\u{e9}", "cafe\u{301} "]
            .into_iter()
            .enumerate()
            .map(|(n, app)| {
                let offset = 3 + i64::try_from(n).unwrap_or(i64::MAX);
                processor.process(
                    &mut buffer,
                    feedback(app).as_bytes(),
                    PayloadFormat::JsonEvents,
                    (offset, offset + 1),
                    NOW,
                )
            })
            .collect();
        assert_eq!(results, [MessageResult::Ok, MessageResult::Skipped]);
        let batch = buffer.take_batch()?.ok_or("a batch")?;
        assert_eq!((batch.events.len(), batch.feedback.len()), (1, 1));
        Ok(())
    }

    /// The AI SDK 7's OpenTelemetry integration wraps each `embed()` call in a span of the same
    /// operation; exported span by span (as `SimpleSpanProcessor` does) or in one message, the
    /// call is counted once.
    #[test]
    fn a_call_wrapped_in_a_span_of_its_operation_is_counted_once() -> TestResult {
        let payload: serde_json::Value = serde_json::from_str(include_str!(
            "../decode/tests/audit_payloads/J2_ai_sdk_7_otel_ttft_and_nested_embeddings.json"
        ))?;
        let resource_spans = payload["resourceSpans"].as_array().ok_or("resourceSpans")?;
        assert!(resource_spans.len() > 20, "one span per resource, as exported");
        let one_by_one: Vec<Vec<u8>> = resource_spans
            .iter()
            .map(|spans| serde_json::to_vec(&serde_json::json!({ "resourceSpans": [spans] })))
            .collect::<Result<_, _>>()?;
        for messages in [one_by_one, vec![serde_json::to_vec(&payload)?]] {
            let mut processor = processor()?;
            let mut buffer =
                PartitionBuffer::new(Arc::from("s"), Arc::from("t"), 0, 0, &AggregateConfig::default(), 100);
            for (offset, message) in (0..).zip(&messages) {
                processor.process(&mut buffer, message, PayloadFormat::OtlpTraces, (offset, offset + 1), NOW);
            }
            let batch = buffer.take_batch()?.ok_or("a batch")?;
            assert_eq!(batch.events.len(), 9, "nine calls, from {} messages", messages.len());
            let embeddings: Vec<_> =
                batch.rollups.iter().filter(|row| row.key.operation.as_deref() == Some("embeddings")).collect();
            let (requests, input_tokens) =
                embeddings.iter().fold((0, 0), |(r, t), row| (r + row.requests, t + row.input_tokens));
            assert_eq!((requests, input_tokens), (1, 9), "the inner span, which has the usage");
        }
        Ok(())
    }

    #[test]
    fn feedback_reusing_its_inferences_id_is_kept_and_its_own_retry_dropped() -> TestResult {
        let mut processor = processor()?;
        let mut buffer = PartitionBuffer::new(Arc::from("s"), Arc::from("t"), 0, 0, &AggregateConfig::default(), 100);
        let feedback = br#"{"type":"feedback","id":"evt-1","time":"2025-06-01T12:00:01Z","app":"chat","name":"user_thumbs","score":1,"inference_id":"evt-1"}"#;
        let results: Vec<MessageResult> = [event(1, "chat", "g").as_slice(), feedback, feedback]
            .into_iter()
            .enumerate()
            .map(|(offset, payload)| {
                let offset = i64::try_from(offset).unwrap_or(i64::MAX);
                processor.process(&mut buffer, payload, PayloadFormat::JsonEvents, (offset, offset + 1), NOW)
            })
            .collect();
        assert_eq!(results, [MessageResult::Ok, MessageResult::Ok, MessageResult::Skipped]);
        let batch = buffer.take_batch()?.ok_or("a batch")?;
        assert_eq!((batch.events.len(), batch.feedback.len()), (1, 1));
        Ok(())
    }
}
