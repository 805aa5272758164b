//! GenAI series: inference and feedback events enter through
//! [`GenAi::observe_event`] / [`GenAi::observe_feedback`] and leave as counter
//! and histogram updates in the registry, under a cardinality cap.
//!
//! Each distinct (app, environment, provider, model, operation) label set is a
//! "series". Its metric handles are resolved once and cached under a compact
//! byte key, so the per-event path is one read-locked map lookup (no label
//! encoding, no allocation) followed by atomic updates. Beyond `max_series`
//! label sets, events fold into one series whose five labels are all
//! `__overflow__`, and `driftwatch_series_overflow_total` counts each folded
//! observation. The free-form extra labels (`error_type`, feedback `name`) are
//! capped the same way, per series and in all: at most 32 values per series,
//! and at most `max_series` (series, value) pairs over all series together,
//! since 32 per series times `max_series` series would let a producer that
//! varies them make over a million series.
//!
//! A failed call's duration is observed under its `error_type` (OTel makes
//! `error.type` conditionally required on `gen_ai.client.operation.duration`),
//! so fast failures do not pull down the latency of successful calls. The
//! label is absent on successful calls, as OTel's Prometheus exporters render
//! an unset attribute; Prometheus reads an absent label as `""`. The
//! histogram and `driftwatch_errors_total` share one per-series value map, so
//! both carry the same capped set of `error_type` values and a failed call
//! costs the one lookup it cost before.
//!
//! A fleet's apps come and go, so a full cache would otherwise fold every new app into
//! `__overflow__` until a restart while departed apps hold their slots. Once the cache is
//! nine-tenths full, each scrape drops the label sets last used before a scrape that is
//! [`IDLE_EVICTION`] old (so whatever they counted has been scraped), together with their
//! series, and gives their extra values back to the budget. A label set that returns starts
//! its counters again at 0, which `rate()` and `increase()` read as a counter reset.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use driftwatch_lake::model::{FeedbackEvent, InferenceEvent, is_first_class_evaluation};
use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::names::*;
use crate::FastHashMap;

/// Distinct `error_type` values (and feedback names) kept per series before
/// further values fold into `__overflow__`.
const MAX_EXTRA_VALUES_PER_SERIES: usize = 32;

/// How long a label set must have gone unused (and been scraped since) before a nearly full
/// cache drops it.
pub(crate) const IDLE_EVICTION: Duration = Duration::from_secs(3600);

/// Log one in this many overflow observations (the first one included).
const OVERFLOW_LOG_EVERY: u64 = 10_000;

/// Value of `error_type` when a failed call does not say, or says `""` (OTel's convention).
const UNKNOWN_ERROR_TYPE: &str = "_OTHER";

const SERIES_LABEL_NAMES: [&str; 5] = [LABEL_APP, LABEL_ENVIRONMENT, LABEL_PROVIDER, LABEL_MODEL, LABEL_OPERATION];

/// `token_type` values of `driftwatch_tokens_total`, in [`CallHandles::tokens`] order.
const TOKEN_TYPES: [&str; 5] = ["input", "output", "cache_read", "cache_write", "reasoning"];
/// `gen_ai_token_type` values of `gen_ai_client_token_usage`, in [`CallHandles::token_usage`] order.
const USAGE_TOKEN_TYPES: [&str; 2] = ["input", "output"];

/// A label with a fixed value set.
type StaticLabel = [(&'static str, &'static str); 1];
/// A label whose value came from input (bounded by the per-series cap).
type DynLabel = [(&'static str, Arc<str>); 1];
/// Inference handles of one `error_type` value, or feedback counters of one name.
type ExtraValues<H> = Mutex<FastHashMap<Box<str>, H>>;
/// The `flagged` label of feedback.
type FlaggedLabel = [(&'static str, bool); 1];
type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// The five GenAI labels of one series, shared by all its metric handles.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SeriesLabels(Arc<[Arc<str>; 5]>);

impl SeriesLabels {
    fn new(values: [&str; 5]) -> Self {
        Self(Arc::new(values.map(Arc::from)))
    }
}

impl EncodeLabelSet for SeriesLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        for (name, value) in SERIES_LABEL_NAMES.iter().zip(self.0.iter()) {
            (*name, value.as_ref()).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// The `error_type` of the duration histogram: a failed call's error type, or no label at all
/// for a successful call (an empty value would read the same in Prometheus, but OTel exporters
/// leave the attribute out, and so does this).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct OptionalErrorType(Option<Arc<str>>);

impl EncodeLabelSet for OptionalErrorType {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        match &self.0 {
            Some(error_type) => (LABEL_ERROR_TYPE, error_type.as_ref()).encode(encoder.encode_label()),
            None => Ok(()),
        }
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn token_histogram() -> Histogram {
    Histogram::new(TOKEN_BUCKETS)
}

/// The client sees the first token as late as a whole call can end (a reasoning model thinks
/// first), so time to first token shares the duration buckets, up to 81.92 s, rather than
/// OTel's server-side TTFT advice, whose last bucket (10 s) would cap every quantile there.
fn ttft_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The registered GenAI metric families.
#[derive(Debug)]
struct Families {
    duration: HistogramFamily<(SeriesLabels, OptionalErrorType)>,
    token_usage: HistogramFamily<(SeriesLabels, StaticLabel)>,
    ttft: HistogramFamily<SeriesLabels>,
    requests: Family<SeriesLabels, Counter>,
    errors: Family<(SeriesLabels, DynLabel), Counter>,
    cost: Family<SeriesLabels, Counter<f64, AtomicU64>>,
    unpriced: Family<SeriesLabels, Counter>,
    tokens: Family<(SeriesLabels, StaticLabel), Counter>,
    feedback: Family<(SeriesLabels, (DynLabel, FlaggedLabel)), Counter>,
}

/// Handles every inference updates, created on a series' first inference.
#[derive(Debug)]
struct CallHandles {
    /// Durations of successful calls (no `error_type`); failed calls use [`ErrorHandles`].
    duration: Histogram,
    ttft: Histogram,
    requests: Counter,
    cost: Counter<f64, AtomicU64>,
    unpriced: Counter,
    /// input, output, cache_read, cache_write, reasoning.
    tokens: [Counter; 5],
    /// input, output.
    token_usage: [Histogram; 2],
}

/// Handles of failed calls of one `error_type`, created together so that the counter and the
/// duration histogram have the same values under the same cap.
#[derive(Debug, Clone)]
struct ErrorHandles {
    errors: Counter,
    duration: Histogram,
}

/// One label set's resolved handles.
#[derive(Debug)]
struct Series {
    labels: SeriesLabels,
    calls: OnceLock<CallHandles>,
    errors: ExtraValues<ErrorHandles>,
    /// Indexed by `flagged as usize`.
    feedback: [ExtraValues<Counter>; 2],
    /// The scrape generation of its last use ([`GenAi::generation`]).
    last_used: AtomicU64,
}

impl Series {
    /// A series first used in scrape generation `generation`: set before it is shared, so that
    /// a scrape between its insertion and its first use cannot take it for an idle one.
    fn new(labels: SeriesLabels, generation: u64) -> Self {
        Self {
            labels,
            calls: OnceLock::new(),
            errors: Mutex::default(),
            feedback: Default::default(),
            last_used: AtomicU64::new(generation),
        }
    }
}

thread_local! {
    /// Reused lookup-key buffer: the hot path encodes the label set here
    /// instead of allocating.
    static KEY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// GenAI metrics with the series cache and cardinality cap.
#[derive(Debug)]
pub(crate) struct GenAi {
    families: Families,
    max_series: usize,
    /// Length-prefixed label values -> series. Only grows (bounded by `max_series`).
    series: RwLock<FastHashMap<Box<[u8]>, Arc<Series>>>,
    /// Where label sets beyond the cap go; not counted in `max_series`.
    overflow: Series,
    /// (series, extra value) pairs still allowed over all series, `max_series` at the start;
    /// the `__overflow__` value of a series takes none.
    extra_values_left: AtomicUsize,
    /// Observations folded by `max_series`: what raising it would keep apart.
    overflow_total: Counter,
    /// Observations whose extra label value (error type, feedback name) was folded by the
    /// per-series cap, which `max_series` does not change.
    value_overflow_total: Counter,
    /// Scrapes so far: a series records the generation of its last use.
    generation: AtomicU64,
    /// The generations that ended (by a scrape) within the last [`IDLE_EVICTION`], with their
    /// ends, and the last one before.
    scrapes: Mutex<VecDeque<(u64, Instant)>>,
}

impl GenAi {
    /// Create the families and register them (and the overflow counter).
    pub(crate) fn register(registry: &mut Registry, max_series: usize) -> Self {
        let families = Families {
            duration: Family::new_with_constructor(duration_histogram),
            token_usage: Family::new_with_constructor(token_histogram),
            ttft: Family::new_with_constructor(ttft_histogram),
            requests: Family::default(),
            errors: Family::default(),
            cost: Family::default(),
            unpriced: Family::default(),
            tokens: Family::default(),
            feedback: Family::default(),
        };
        let overflow_total = Counter::default();
        let value_overflow_total = Counter::default();
        registry.register(
            GEN_AI_CLIENT_OPERATION_DURATION_SECONDS,
            "GenAI operation duration; failed calls carry their error_type, successful ones none",
            families.duration.clone(),
        );
        registry.register(
            GEN_AI_CLIENT_TOKEN_USAGE,
            "Tokens used per GenAI operation, by token type",
            families.token_usage.clone(),
        );
        registry.register(
            TIME_TO_FIRST_TOKEN_SECONDS,
            "Time to first token of streaming GenAI calls",
            families.ttft.clone(),
        );
        registry.register(counter_name(REQUESTS_TOTAL), "Inference calls", families.requests.clone());
        registry.register(
            counter_name(ERRORS_TOTAL),
            "Inference calls that failed, by error type",
            families.errors.clone(),
        );
        registry.register(counter_name(COST_USD_TOTAL), "Priced cost of inference calls in USD", families.cost.clone());
        registry.register(
            counter_name(UNPRICED_REQUESTS_TOTAL),
            "Inference calls with tokens but no price (model not in the registry, or no price at the call's date), missing from the cost total",
            families.unpriced.clone(),
        );
        registry.register(
            counter_name(TOKENS_TOTAL),
            "Tokens of inference calls, by token type",
            families.tokens.clone(),
        );
        registry.register(
            counter_name(FEEDBACK_TOTAL),
            "Feedback results, by evaluation name and whether they flagged a problem",
            families.feedback.clone(),
        );
        registry.register(
            counter_name(SERIES_OVERFLOW_TOTAL),
            "Observations folded into the __overflow__ label set by the label-set cap (metrics.max_series)",
            overflow_total.clone(),
        );
        registry.register(
            counter_name(LABEL_VALUE_OVERFLOW_TOTAL),
            "Observations whose error_type or feedback name was folded into __overflow__ by the cap of 32 values per \
             label set or of metrics.max_series values over all label sets",
            value_overflow_total.clone(),
        );
        Self {
            families,
            max_series,
            series: RwLock::default(),
            overflow: Series::new(SeriesLabels::new([OVERFLOW_LABEL_VALUE; 5]), 0),
            extra_values_left: AtomicUsize::new(max_series),
            overflow_total,
            value_overflow_total,
            generation: AtomicU64::new(0),
            scrapes: Mutex::default(),
        }
    }

    /// A scrape at `now` ends the current generation; a nearly full cache then drops the label
    /// sets not used since a scrape at least [`IDLE_EVICTION`] before `now`. Returns how many.
    pub(crate) fn end_scrape(&self, now: Instant) -> usize {
        let ended = self.generation.fetch_add(1, Ordering::Relaxed);
        let cutoff = {
            let mut scrapes = self.scrapes.lock().unwrap_or_else(PoisonError::into_inner);
            scrapes.push_back((ended, now));
            let idle_since = now.checked_sub(IDLE_EVICTION);
            let old_enough = |at: Instant| idle_since.is_some_and(|since| at <= since);
            while scrapes.get(1).is_some_and(|&(_, at)| old_enough(at)) {
                scrapes.pop_front();
            }
            scrapes.front().filter(|&&(_, at)| old_enough(at)).map(|&(generation, _)| generation)
        };
        let Some(cutoff) = cutoff else { return 0 };
        if self.series_count() * 10 < self.max_series * 9 {
            return 0;
        }
        let mut map = self.series.write().unwrap_or_else(PoisonError::into_inner);
        let idle: Vec<Box<[u8]>> = map
            .iter()
            .filter(|(_, series)| series.last_used.load(Ordering::Relaxed) <= cutoff)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &idle {
            if let Some(series) = map.remove(key) {
                self.forget(&series);
            }
        }
        if !idle.is_empty() {
            tracing::info!(evicted = idle.len(), kept = map.len(), "Dropped idle GenAI label sets from /metrics.");
        }
        idle.len()
    }

    /// Remove an evicted label set's series from every family, and give its extra values back.
    fn forget(&self, series: &Series) {
        let (f, labels) = (&self.families, &series.labels);
        let with = |value: &'static str, key: &'static str| (labels.clone(), [(key, value)]);
        if series.calls.get().is_some() {
            f.duration.remove(&(labels.clone(), OptionalErrorType(None)));
            f.ttft.remove(labels);
            f.requests.remove(labels);
            f.cost.remove(labels);
            f.unpriced.remove(labels);
            for kind in TOKEN_TYPES {
                f.tokens.remove(&with(kind, LABEL_TOKEN_TYPE));
            }
            for kind in USAGE_TOKEN_TYPES {
                f.token_usage.remove(&with(kind, LABEL_GEN_AI_TOKEN_TYPE));
            }
        }
        let mut given_back = 0;
        let errors = series.errors.lock().unwrap_or_else(PoisonError::into_inner);
        for error_type in errors.keys() {
            let value: Arc<str> = Arc::from(error_type.as_ref());
            f.errors.remove(&(labels.clone(), [(LABEL_ERROR_TYPE, Arc::clone(&value))]));
            f.duration.remove(&(labels.clone(), OptionalErrorType(Some(value))));
            given_back += usize::from(error_type.as_ref() != OVERFLOW_LABEL_VALUE);
        }
        for (flagged, names) in series.feedback.iter().enumerate() {
            let names = names.lock().unwrap_or_else(PoisonError::into_inner);
            for name in names.keys() {
                let key = ([(LABEL_NAME, Arc::from(name.as_ref()))], [(LABEL_FLAGGED, flagged == 1)]);
                f.feedback.remove(&(labels.clone(), key));
                given_back += usize::from(name.as_ref() != OVERFLOW_LABEL_VALUE && !is_first_class_evaluation(name));
            }
        }
        self.extra_values_left.fetch_add(given_back, Ordering::Relaxed);
    }

    /// Label sets currently tracked (the overflow series excluded).
    pub(crate) fn series_count(&self) -> usize {
        self.series.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Count one inference.
    pub(crate) fn observe_event(&self, event: &InferenceEvent) {
        let labels = [
            event.app.as_str(),
            event.environment.as_deref().unwrap_or(""),
            event.provider.as_deref().unwrap_or(""),
            event.response_model.as_deref().unwrap_or(""),
            event.operation.as_str(),
        ];
        self.with_series(labels, |series| {
            let calls = series.calls.get_or_init(|| self.call_handles(&series.labels));
            calls.requests.inc();
            // Successes keep the cached histogram: only a failure looks up its error type.
            let failed = event.status.is_error().then(|| self.error_handles(series, event.error_type.as_deref()));
            let duration = match &failed {
                Some(failed) => {
                    failed.errors.inc();
                    &failed.duration
                }
                None => &calls.duration,
            };
            if let Some(ms) = event.latency_ms.filter(|ms| ms.is_finite() && *ms >= 0.0) {
                duration.observe(ms / 1000.0);
            }
            if let Some(ms) = event.ttft_ms.filter(|ms| ms.is_finite() && *ms >= 0.0) {
                calls.ttft.observe(ms / 1000.0);
            }
            match event.cost_usd {
                Some(cost) if cost.is_finite() && cost > 0.0 => {
                    calls.cost.inc_by(cost);
                }
                Some(_) => {}
                // Spend the cost total cannot show: a budget watcher must see that it is missing.
                None if event.reports_tokens() => {
                    calls.unpriced.inc();
                }
                None => {}
            }
            let tokens = [
                event.input_tokens,
                event.output_tokens,
                event.cache_read_tokens,
                event.cache_write_tokens,
                event.reasoning_tokens,
            ];
            for (index, count) in tokens.into_iter().enumerate() {
                let Some(count) = count.and_then(|count| u64::try_from(count).ok()) else {
                    continue;
                };
                calls.tokens[index].inc_by(count);
                if let Some(histogram) = calls.token_usage.get(index) {
                    histogram.observe(count as f64);
                }
            }
        });
    }

    /// Count one feedback result (fill its context first so it joins its inference's series).
    pub(crate) fn observe_feedback(&self, feedback: &FeedbackEvent) {
        let labels = [
            feedback.app.as_str(),
            feedback.environment.as_deref().unwrap_or(""),
            feedback.provider.as_deref().unwrap_or(""),
            feedback.response_model.as_deref().unwrap_or(""),
            feedback.operation.as_deref().unwrap_or(""),
        ];
        let flagged = feedback.is_flagged();
        self.with_series(labels, |series| {
            self.extra_handle(&series.feedback[usize::from(flagged)], &feedback.name, |value| {
                self.families
                    .feedback
                    .get_or_create_owned(&(series.labels.clone(), ([(LABEL_NAME, value)], [(LABEL_FLAGGED, flagged)])))
            })
            .inc();
        });
    }

    fn call_handles(&self, labels: &SeriesLabels) -> CallHandles {
        let with = |value: &'static str, key: &'static str| (labels.clone(), [(key, value)]);
        let f = &self.families;
        CallHandles {
            duration: f.duration.get_or_create_owned(&(labels.clone(), OptionalErrorType(None))),
            ttft: f.ttft.get_or_create_owned(labels),
            requests: f.requests.get_or_create_owned(labels),
            cost: f.cost.get_or_create_owned(labels),
            unpriced: f.unpriced.get_or_create_owned(labels),
            tokens: TOKEN_TYPES.map(|kind| f.tokens.get_or_create_owned(&with(kind, LABEL_TOKEN_TYPE))),
            token_usage: USAGE_TOKEN_TYPES
                .map(|kind| f.token_usage.get_or_create_owned(&with(kind, LABEL_GEN_AI_TOKEN_TYPE))),
        }
    }

    /// The handles of a failed call of `error_type` on `series` (counter and duration histogram).
    fn error_handles(&self, series: &Series, error_type: Option<&str>) -> ErrorHandles {
        // An empty type would be no label at all in Prometheus: the failure would pass for a success.
        let error_type = error_type.filter(|error_type| !error_type.is_empty()).unwrap_or(UNKNOWN_ERROR_TYPE);
        self.extra_handle(&series.errors, error_type, |value| ErrorHandles {
            errors: self
                .families
                .errors
                .get_or_create_owned(&(series.labels.clone(), [(LABEL_ERROR_TYPE, Arc::clone(&value))])),
            duration: self
                .families
                .duration
                .get_or_create_owned(&(series.labels.clone(), OptionalErrorType(Some(value)))),
        })
    }

    /// The handles of `value` in a per-series map, folding values beyond the
    /// per-series cap, or beyond the cap over all series, into `__overflow__`.
    fn extra_handle<H: Clone>(&self, map: &ExtraValues<H>, value: &str, create: impl FnOnce(Arc<str>) -> H) -> H {
        let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = map.get(value) {
            return handle.clone();
        }
        // The first-class feedback names are a closed set, so they never fold: a fleet's own
        // evaluation names and error types use up the budget, and a flagged hallucination
        // of a new app must still show under its name (as in the rollups).
        let value = if !is_first_class_evaluation(value)
            && (map.len() >= MAX_EXTRA_VALUES_PER_SERIES || !self.take_extra_value())
        {
            self.count_overflow(&self.value_overflow_total, "extra label value");
            if let Some(handle) = map.get(OVERFLOW_LABEL_VALUE) {
                return handle.clone();
            }
            OVERFLOW_LABEL_VALUE
        } else {
            value
        };
        let handle = create(Arc::from(value));
        map.insert(Box::from(value), handle.clone());
        handle
    }

    /// Take one of the (series, extra value) pairs allowed over all series, if any is left.
    fn take_extra_value(&self) -> bool {
        self.extra_values_left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1)).is_ok()
    }

    /// Run `record` on the series of `labels`, creating it or folding into the
    /// overflow series.
    fn with_series(&self, labels: [&str; 5], record: impl FnOnce(&Series)) {
        KEY.with_borrow_mut(|key| {
            key.clear();
            for value in labels {
                // Length prefixes make the key unambiguous whatever bytes the values hold.
                key.extend_from_slice(&(value.len() as u64).to_le_bytes());
                key.extend_from_slice(value.as_bytes());
            }
            {
                let map = self.series.read().unwrap_or_else(PoisonError::into_inner);
                if let Some(series) = map.get(key.as_slice()) {
                    series.last_used.store(self.generation.load(Ordering::Relaxed), Ordering::Relaxed);
                    return record(series);
                }
                // Series are removed only by a scrape's eviction: a full map stays full until
                // then, so no write lock is needed to find that out.
                if map.len() >= self.max_series {
                    drop(map);
                    self.count_overflow(&self.overflow_total, "label set");
                    return record(&self.overflow);
                }
            }
            let series = {
                let mut map = self.series.write().unwrap_or_else(PoisonError::into_inner);
                match map.get(key.as_slice()) {
                    Some(series) => {
                        series.last_used.store(self.generation.load(Ordering::Relaxed), Ordering::Relaxed);
                        Arc::clone(series)
                    }
                    None if map.len() >= self.max_series => {
                        drop(map);
                        self.count_overflow(&self.overflow_total, "label set");
                        return record(&self.overflow);
                    }
                    None => {
                        let generation = self.generation.load(Ordering::Relaxed);
                        let series = Arc::new(Series::new(SeriesLabels::new(labels), generation));
                        map.insert(Box::from(key.as_slice()), Arc::clone(&series));
                        series
                    }
                }
            };
            record(&series);
        });
    }

    /// Count (and now and then log) one observation folded by a cap.
    fn count_overflow(&self, counter: &Counter, what: &'static str) {
        let previous = counter.inc();
        if previous.is_multiple_of(OVERFLOW_LOG_EVERY) {
            tracing::warn!(
                what,
                max_series = self.max_series,
                max_values_per_series = MAX_EXTRA_VALUES_PER_SERIES,
                folded_total = previous + 1,
                "Metric cardinality cap reached; folding into the __overflow__ series."
            );
        }
    }
}

/// Registration name of a counter: prometheus-client appends `_total` itself.
pub(crate) fn counter_name(exposed: &'static str) -> &'static str {
    exposed.strip_suffix("_total").unwrap_or(exposed)
}
