//! The rollup aggregator: inference and feedback events enter one at a time,
//! are folded into one accumulator per rollup key, and leave through
//! [`RollupAggregator::drain`] as partial [`RollupRow`]s for the lake writer.
//!
//! The per-event path looks the key up without building an owned
//! [`RollupKey`]: the borrowed fields are hashed, and an index maps the hash
//! to a chain of open slots whose keys are compared field by field. Strings
//! are cloned only when a key is seen for the first time in a flush interval.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash};
use std::mem::size_of;

use driftwatch_lake::histogram::{self, HistogramError, millis_to_micros};
use driftwatch_lake::model::{
    FeedbackEvent, FeedbackTally, InferenceEvent, RollupKey, RollupRow, UnixNanos, is_first_class_evaluation,
};
use hdrhistogram::Histogram;

use super::recorder::{FoldHasher, SparseRecorder};
use super::{AggregateConfig, AggregateError, Result};
use crate::FastHashState;
use crate::telemetry::names::OVERFLOW_LABEL_VALUE;

/// Rollup window length: one minute, in nanoseconds.
const WINDOW_NANOS: i64 = 60_000_000_000;

/// End of a slot chain.
const NONE: usize = usize::MAX;

/// Distinct evaluation names tallied per rollup key, besides the first-class ones; further
/// names share the `__overflow__` tally, as in the live metrics. A producer that puts an id
/// into the name (`eval-<uuid>`) would otherwise make each lookup a scan of thousands. The
/// feedback table keeps every row with its own name.
const MAX_FEEDBACK_NAMES_PER_KEY: usize = 32;

/// Start of the 1-minute window holding `time`. Euclidean division so that
/// pre-1970 times (bad clocks) still floor instead of rounding toward zero.
fn window_start(time: UnixNanos) -> UnixNanos {
    time.div_euclid(WINDOW_NANOS) * WINDOW_NANOS
}

/// A rollup key made of borrowed event fields, for allocation-free lookup.
#[derive(Hash)]
struct KeyRef<'a> {
    window_start: UnixNanos,
    app: &'a str,
    environment: Option<&'a str>,
    provider: Option<&'a str>,
    response_model: Option<&'a str>,
    prompt_id: Option<&'a str>,
    prompt_version: Option<&'a str>,
    operation: Option<&'a str>,
}

impl KeyRef<'_> {
    fn of_event(event: &InferenceEvent) -> KeyRef<'_> {
        KeyRef {
            window_start: window_start(event.time),
            app: &event.app,
            environment: event.environment.as_deref(),
            provider: event.provider.as_deref(),
            response_model: event.response_model.as_deref(),
            prompt_id: event.prompt_id.as_deref(),
            prompt_version: event.prompt_version.as_deref(),
            operation: Some(&event.operation),
        }
    }

    fn of_feedback(feedback: &FeedbackEvent, rated_at: UnixNanos) -> KeyRef<'_> {
        KeyRef {
            window_start: window_start(rated_at),
            app: &feedback.app,
            environment: feedback.environment.as_deref(),
            provider: feedback.provider.as_deref(),
            response_model: feedback.response_model.as_deref(),
            prompt_id: feedback.prompt_id.as_deref(),
            prompt_version: feedback.prompt_version.as_deref(),
            operation: feedback.operation.as_deref(),
        }
    }

    fn matches(&self, key: &RollupKey) -> bool {
        self.window_start == key.window_start
            && self.app == key.app
            && self.environment == key.environment.as_deref()
            && self.provider == key.provider.as_deref()
            && self.response_model == key.response_model.as_deref()
            && self.prompt_id == key.prompt_id.as_deref()
            && self.prompt_version == key.prompt_version.as_deref()
            && self.operation == key.operation.as_deref()
    }

    fn to_owned_key(&self) -> RollupKey {
        let own = |value: Option<&str>| value.map(str::to_owned);
        RollupKey {
            window_start: self.window_start,
            app: self.app.to_owned(),
            environment: own(self.environment),
            provider: own(self.provider),
            response_model: own(self.response_model),
            prompt_id: own(self.prompt_id),
            prompt_version: own(self.prompt_version),
            operation: own(self.operation),
        }
    }

    /// Heap bytes the owned key will use.
    fn heap_bytes(&self) -> usize {
        let len = |value: Option<&str>| value.map_or(0, str::len);
        self.app.len()
            + len(self.environment)
            + len(self.provider)
            + len(self.response_model)
            + len(self.prompt_id)
            + len(self.prompt_version)
            + len(self.operation)
    }
}

/// Running values of one open key.
#[derive(Debug, Default)]
struct Accumulator {
    requests: i64,
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_write_tokens: i64,
    reasoning_tokens: i64,
    cost_usd: f64,
    latency_us: SparseRecorder,
    ttft_us: SparseRecorder,
    feedback: Vec<FeedbackTally>,
}

/// One open key, chained to the next slot whose key hashes the same.
#[derive(Debug)]
struct Slot {
    key: RollupKey,
    next: usize,
    acc: Accumulator,
}

/// Folds events into partial 1-minute rollups (DESIGN §5), bounded by
/// `max_open_keys`.
#[derive(Debug)]
pub struct RollupAggregator {
    /// Cap on open keys; see [`AggregateConfig::max_open_keys`].
    max_open_keys: usize,
    /// Hashes borrowed keys; randomly seeded because keys come from producers, and fast
    /// because every event hashes its seven key strings here.
    hasher: FastHashState,
    /// Key hash -> first slot of its chain. The hash is already mixed, so the
    /// map only folds it once more.
    index: HashMap<u64, usize, BuildHasherDefault<FoldHasher>>,
    /// Open keys in arrival order.
    slots: Vec<Slot>,
    /// Bucket arithmetic for recording and the scratch histogram for
    /// serializing. Created on first use because creation is fallible.
    histogram: Option<Histogram<u64>>,
    /// Heap bytes of the open keys' strings and feedback names.
    string_bytes: usize,
    /// Heap bytes of the open keys' sparse histograms.
    recorder_bytes: usize,
}

impl RollupAggregator {
    /// An empty aggregator with the configured bound.
    pub fn new(config: &AggregateConfig) -> Self {
        Self {
            max_open_keys: config.max_open_keys,
            hasher: FastHashState::default(),
            index: HashMap::default(),
            slots: Vec::new(),
            histogram: None,
            string_bytes: 0,
            recorder_bytes: 0,
        }
    }

    /// Count one inference in the window of its own event time: a late event
    /// lands in its old window (a new partial row), never the current one.
    ///
    /// A new key is opened even at `max_open_keys`: the cap is soft, so that the events of one
    /// message are never refused; [`Self::is_full`] then tells the caller to drain right after
    /// the message. Fails only when a histogram cannot be created.
    pub fn add_event(&mut self, event: &InferenceEvent) -> Result<()> {
        let view = KeyRef::of_event(event);
        let index = self.find_or_insert(&view)?;
        let needs_histogram = event.latency_ms.is_some() || event.ttft_ms.is_some();
        let quantizer = if needs_histogram {
            Some(scratch(&mut self.histogram).map_err(|source| AggregateError::Histogram {
                histogram: "latency",
                window_start: view.window_start,
                app: event.app.clone(),
                source,
            })?)
        } else {
            None
        };
        let acc = &mut self.slots[index].acc;
        acc.requests += 1;
        acc.errors += i64::from(event.status.is_error());
        acc.input_tokens = acc.input_tokens.saturating_add(event.input_tokens.unwrap_or(0));
        acc.output_tokens = acc.output_tokens.saturating_add(event.output_tokens.unwrap_or(0));
        acc.cache_read_tokens = acc.cache_read_tokens.saturating_add(event.cache_read_tokens.unwrap_or(0));
        acc.cache_write_tokens = acc.cache_write_tokens.saturating_add(event.cache_write_tokens.unwrap_or(0));
        acc.reasoning_tokens = acc.reasoning_tokens.saturating_add(event.reasoning_tokens.unwrap_or(0));
        if let Some(cost) = event.cost_usd.filter(|cost| cost.is_finite()) {
            acc.cost_usd += cost;
        }
        if let Some(quantizer) = quantizer {
            for (value, recorder) in [(event.latency_ms, &mut acc.latency_us), (event.ttft_ms, &mut acc.ttft_us)] {
                // As the live metrics: decoding rejects these, but the aggregator is public, and
                // a NaN or negative time recorded as 1 µs would skew every quantile over the key.
                if let Some(ms) = value.filter(|ms| ms.is_finite() && *ms >= 0.0) {
                    let before = recorder.approx_bytes();
                    recorder.record(quantizer, millis_to_micros(ms));
                    self.recorder_bytes += recorder.approx_bytes() - before;
                }
            }
        }
        Ok(())
    }

    /// Count one feedback result under the key built from the feedback's own
    /// fields (fill them with [`super::FeedbackJoin`] first), in the window of
    /// `rated_at`: the time of the call it rates where the join found it (what
    /// [`super::FeedbackJoin::fill`] returns), else the feedback's own time.
    ///
    /// Opens new keys like [`Self::add_event`].
    pub fn add_feedback(&mut self, feedback: &FeedbackEvent, rated_at: UnixNanos) -> Result<()> {
        let index = self.find_or_insert(&KeyRef::of_feedback(feedback, rated_at))?;
        let tallies = &mut self.slots[index].acc.feedback;
        let mut name = feedback.name.as_str();
        let mut found = tallies.iter().position(|tally| tally.name == name);
        // A new name past the cap shares the overflow tally, unless it is a first-class one.
        if found.is_none() && tallies.len() >= MAX_FEEDBACK_NAMES_PER_KEY && !is_first_class_evaluation(name) {
            name = OVERFLOW_LABEL_VALUE;
            found = tallies.iter().position(|tally| tally.name == name);
        }
        let position = match found {
            Some(position) => position,
            None => {
                self.string_bytes += name.len() + size_of::<FeedbackTally>();
                tallies.push(FeedbackTally { name: name.to_owned(), scored: Some(0), ..FeedbackTally::default() });
                tallies.len() - 1
            }
        };
        let tally = &mut tallies[position];
        tally.count += 1;
        if let Some(score) = feedback.score_value.filter(|score| score.is_finite()) {
            *tally.scored.get_or_insert(0) += 1;
            tally.score_sum += score;
        }
        tally.flagged += i64::from(feedback.is_flagged());
        Ok(())
    }

    /// Keys currently open.
    #[cfg(test)]
    pub(crate) fn open_keys(&self) -> usize {
        self.slots.len()
    }

    /// True once `max_open_keys` are open: drain before the next message.
    pub fn is_full(&self) -> bool {
        self.slots.len() >= self.max_open_keys
    }

    /// True when nothing is open (a drain would return no rows).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Estimated heap bytes of the open state, for the ingest memory budget.
    pub fn approx_bytes(&self) -> usize {
        self.slots.len() * size_of::<Slot>()
            + self.index.capacity() * (size_of::<(u64, usize)>() + 1)
            + self.string_bytes
            + self.recorder_bytes
    }

    /// Close every open key and return its row, sorted by key, histograms
    /// serialized (an empty byte string where nothing was recorded). Leaves the
    /// aggregator empty. On error nothing is drained and the state is kept.
    pub fn drain(&mut self) -> Result<Vec<RollupRow>> {
        let mut encoded = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            let mut encode = |recorder: &SparseRecorder, name: &'static str| {
                if recorder.is_empty() {
                    return Ok(Vec::new());
                }
                scratch(&mut self.histogram).and_then(|scratch| recorder.serialize(scratch)).map_err(|source| {
                    AggregateError::Histogram {
                        histogram: name,
                        window_start: slot.key.window_start,
                        app: slot.key.app.clone(),
                        source,
                    }
                })
            };
            let latency = encode(&slot.acc.latency_us, "latency")?;
            let ttft = encode(&slot.acc.ttft_us, "ttft")?;
            encoded.push((latency, ttft));
        }
        let mut rows: Vec<RollupRow> = self
            .slots
            .drain(..)
            .zip(encoded)
            .map(|(slot, (latency_us_hist, ttft_us_hist))| {
                let Slot { key, acc, .. } = slot;
                let mut feedback = acc.feedback;
                feedback.sort_unstable_by(|a, b| a.name.cmp(&b.name));
                RollupRow {
                    key,
                    requests: acc.requests,
                    errors: acc.errors,
                    input_tokens: acc.input_tokens,
                    output_tokens: acc.output_tokens,
                    cache_read_tokens: acc.cache_read_tokens,
                    cache_write_tokens: acc.cache_write_tokens,
                    reasoning_tokens: acc.reasoning_tokens,
                    cost_usd: acc.cost_usd,
                    latency_us_hist,
                    ttft_us_hist,
                    feedback,
                }
            })
            .collect();
        // Give the tables' memory back: the budget counts their capacity, and capacity a drain
        // kept would count against the budget while nothing is buffered, which no flush can
        // relieve. Growing them again costs little next to building the rows.
        self.index = HashMap::default();
        self.slots = Vec::new();
        self.string_bytes = 0;
        self.recorder_bytes = 0;
        rows.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Ok(rows)
    }

    /// The slot of `view`, opened if absent.
    fn find_or_insert(&mut self, view: &KeyRef<'_>) -> Result<usize> {
        let hash = self.hasher.hash_one(view);
        let head = self.index.get(&hash).copied().unwrap_or(NONE);
        let mut cursor = head;
        while cursor != NONE {
            let slot = &self.slots[cursor];
            if view.matches(&slot.key) {
                return Ok(cursor);
            }
            cursor = slot.next;
        }
        let index = self.slots.len();
        self.slots.push(Slot { key: view.to_owned_key(), next: head, acc: Accumulator::default() });
        self.index.insert(hash, index);
        self.string_bytes += view.heap_bytes();
        Ok(index)
    }
}

/// The shared histogram, created on first use.
fn scratch(slot: &mut Option<Histogram<u64>>) -> Result<&mut Histogram<u64>, HistogramError> {
    let histogram = match slot.take() {
        Some(histogram) => histogram,
        None => histogram::new_histogram()?,
    };
    Ok(slot.insert(histogram))
}

#[cfg(test)]
#[path = "rollup_tests.rs"]
mod tests;
