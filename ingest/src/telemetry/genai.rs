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
//! capped per series the same way.

use std::cell::RefCell;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use driftwatch_lake::model::{FeedbackEvent, InferenceEvent};
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

/// Log one in this many overflow observations (the first one included).
const OVERFLOW_LOG_EVERY: u64 = 10_000;

/// Value of `error_type` when a failed call does not say (OTel's convention).
const UNKNOWN_ERROR_TYPE: &str = "_OTHER";

const SERIES_LABEL_NAMES: [&str; 5] = [LABEL_APP, LABEL_ENVIRONMENT, LABEL_PROVIDER, LABEL_MODEL, LABEL_OPERATION];

/// A label with a fixed value set.
type StaticLabel = [(&'static str, &'static str); 1];
/// A label whose value came from input (bounded by the per-series cap).
type DynLabel = [(&'static str, Arc<str>); 1];
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
    duration: HistogramFamily<SeriesLabels>,
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
    duration: Histogram,
    ttft: Histogram,
    requests: Counter,
    cost: Counter<f64, AtomicU64>,
    unpriced: Counter,
    /// input, output, cache_read, reasoning.
    tokens: [Counter; 4],
    /// input, output.
    token_usage: [Histogram; 2],
}

/// One label set's resolved handles.
#[derive(Debug)]
struct Series {
    labels: SeriesLabels,
    calls: OnceLock<CallHandles>,
    errors: Mutex<FastHashMap<Box<str>, Counter>>,
    /// Indexed by `flagged as usize`.
    feedback: [Mutex<FastHashMap<Box<str>, Counter>>; 2],
}

impl Series {
    fn new(labels: SeriesLabels) -> Self {
        Self { labels, calls: OnceLock::new(), errors: Mutex::default(), feedback: Default::default() }
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
    overflow_total: Counter,
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
        registry.register(
            GEN_AI_CLIENT_OPERATION_DURATION_SECONDS,
            "GenAI operation duration",
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
            "Inference calls with tokens but no price (model not in the registry), missing from the cost total",
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
            "Observations folded into the __overflow__ series by the label-set cap",
            overflow_total.clone(),
        );
        Self {
            families,
            max_series,
            series: RwLock::default(),
            overflow: Series::new(SeriesLabels::new([OVERFLOW_LABEL_VALUE; 5])),
            overflow_total,
        }
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
            if let Some(ms) = event.latency_ms.filter(|ms| ms.is_finite() && *ms >= 0.0) {
                calls.duration.observe(ms / 1000.0);
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
            let tokens = [event.input_tokens, event.output_tokens, event.cache_read_tokens, event.reasoning_tokens];
            for (index, count) in tokens.into_iter().enumerate() {
                let Some(count) = count.and_then(|count| u64::try_from(count).ok()) else {
                    continue;
                };
                calls.tokens[index].inc_by(count);
                if let Some(histogram) = calls.token_usage.get(index) {
                    histogram.observe(count as f64);
                }
            }
            if event.status.is_error() {
                let error_type = event.error_type.as_deref().unwrap_or(UNKNOWN_ERROR_TYPE);
                self.extra_counter(&series.errors, error_type, |value| {
                    self.families.errors.get_or_create_owned(&(series.labels.clone(), [(LABEL_ERROR_TYPE, value)]))
                })
                .inc();
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
            self.extra_counter(&series.feedback[usize::from(flagged)], &feedback.name, |value| {
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
            duration: f.duration.get_or_create_owned(labels),
            ttft: f.ttft.get_or_create_owned(labels),
            requests: f.requests.get_or_create_owned(labels),
            cost: f.cost.get_or_create_owned(labels),
            unpriced: f.unpriced.get_or_create_owned(labels),
            tokens: ["input", "output", "cache_read", "reasoning"]
                .map(|kind| f.tokens.get_or_create_owned(&with(kind, LABEL_TOKEN_TYPE))),
            token_usage: ["input", "output"]
                .map(|kind| f.token_usage.get_or_create_owned(&with(kind, LABEL_GEN_AI_TOKEN_TYPE))),
        }
    }

    /// The counter of `value` in a per-series map, folding values beyond the
    /// per-series cap into `__overflow__`.
    fn extra_counter(
        &self,
        map: &Mutex<FastHashMap<Box<str>, Counter>>,
        value: &str,
        create: impl FnOnce(Arc<str>) -> Counter,
    ) -> Counter {
        let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(counter) = map.get(value) {
            return counter.clone();
        }
        let value = if map.len() >= MAX_EXTRA_VALUES_PER_SERIES {
            self.count_overflow("extra label value");
            if let Some(counter) = map.get(OVERFLOW_LABEL_VALUE) {
                return counter.clone();
            }
            OVERFLOW_LABEL_VALUE
        } else {
            value
        };
        let counter = create(Arc::from(value));
        map.insert(Box::from(value), counter.clone());
        counter
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
                    return record(series);
                }
                // Series are never removed, so a full map stays full: no write lock needed.
                if map.len() >= self.max_series {
                    drop(map);
                    self.count_overflow("label set");
                    return record(&self.overflow);
                }
            }
            let series = {
                let mut map = self.series.write().unwrap_or_else(PoisonError::into_inner);
                match map.get(key.as_slice()) {
                    Some(series) => Arc::clone(series),
                    None if map.len() >= self.max_series => {
                        drop(map);
                        self.count_overflow("label set");
                        return record(&self.overflow);
                    }
                    None => {
                        let series = Arc::new(Series::new(SeriesLabels::new(labels)));
                        map.insert(Box::from(key.as_slice()), Arc::clone(&series));
                        series
                    }
                }
            };
            record(&series);
        });
    }

    /// Count (and now and then log) one observation folded by a cap.
    fn count_overflow(&self, what: &'static str) {
        let previous = self.overflow_total.inc();
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
