//! The feedback join: inference events enter through [`FeedbackJoin::remember`];
//! feedback leaves [`FeedbackJoin::fill`] attributed to the inference it evaluates, with the
//! model and prompt context it lacks copied from it (DESIGN §3: feedback names its inference by
//! parent span, i.e. `inference_id`, or by `gen_ai.response.id`).
//!
//! Which ids name an inference, and where:
//! - a span's ids (trace id then span id, in hex: a span-derived inference's event id, and any
//!   inference's `trace_id` + `span_id`) are unique on their own, and feedback about a span often
//!   comes from another service (an LLM-as-judge evaluator), so they are indexed without the app;
//! - a JSON event id names a call within its app only (apps number their calls 1, 2, ...), so it
//!   is indexed and looked up within the app;
//! - a response id is the provider's, unique on its own.
//!
//! A matched feedback takes the inference's app, so an evaluator's verdicts land in the rollups of
//! the app whose call they rate, and in the minute of that call: [`FeedbackJoin::fill`] returns
//! the call's time, which places the verdict in the call's rollup window (an evaluator that judges
//! yesterday's calls at 02:00 rates yesterday's minutes, so per-window quality rates and quality
//! drift compare verdicts with the calls they are about).
//!
//! Bounded: two [`RecentMap`]s remembering at least the last `capacity` keys each (by event or
//! span id, and by response id) share one context record per inference. A span-derived inference
//! takes one event key; a JSON inference that also carries span ids takes two, so of those the
//! map remembers at least the last `capacity / 2`. Feedback usually follows its inference within
//! seconds to minutes, so recency is the right eviction policy; feedback about a forgotten
//! inference keeps its own fields.
//!
//! Cheap per inference, because every event passes through here: ids are kept as
//! [`id_key`](crate::id_key) hashes, and the context records are interned, since a fleet has
//! few distinct (app, model, prompt, environment) combinations and consecutive events mostly
//! repeat one.

use std::hash::BuildHasher;
use std::sync::Arc;

use driftwatch_lake::model::{FeedbackEvent, InferenceEvent, UnixNanos};

use crate::id_key::{IdKeyHasher, RecentMap, id_key, scoped_id_key};

/// The inference fields feedback borrows, over any string type: owned in the shared record
/// ([`Context`]), borrowed from an event to hash and compare it without copying
/// ([`ContextView`]).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ContextFields<S> {
    app: S,
    environment: Option<S>,
    response_model: Option<S>,
    provider: Option<S>,
    operation: S,
    prompt_id: Option<S>,
    prompt_version: Option<S>,
}

type Context = ContextFields<String>;
type ContextView<'a> = ContextFields<&'a str>;

/// What the index keeps of one inference: its shared context record and its time.
#[derive(Debug, Clone)]
struct Rated {
    context: Arc<Context>,
    time: UnixNanos,
}

impl<'a> ContextView<'a> {
    fn of(event: &'a InferenceEvent) -> Self {
        Self {
            app: &event.app,
            environment: event.environment.as_deref(),
            response_model: event.response_model.as_deref(),
            provider: event.provider.as_deref(),
            operation: &event.operation,
            prompt_id: event.prompt_id.as_deref(),
            prompt_version: event.prompt_version.as_deref(),
        }
    }
}

impl<S> ContextFields<S> {
    fn map<'s, T>(&'s self, f: impl Fn(&'s S) -> T) -> ContextFields<T> {
        ContextFields {
            app: f(&self.app),
            environment: self.environment.as_ref().map(&f),
            response_model: self.response_model.as_ref().map(&f),
            provider: self.provider.as_ref().map(&f),
            operation: f(&self.operation),
            prompt_id: self.prompt_id.as_ref().map(&f),
            prompt_version: self.prompt_version.as_ref().map(&f),
        }
    }
}

/// Bounded index of recent inferences, keyed by event or span id and by response id.
#[derive(Debug)]
pub struct FeedbackJoin {
    /// [`span_key`] of an inference's span ids, and [`scoped_id_key`] of a JSON event id within
    /// its app -> context.
    by_event_id: RecentMap<Rated>,
    /// `InferenceEvent::response_id` key -> context.
    by_response_id: RecentMap<Rated>,
    /// Interned contexts by [`context_hash`]; at most `capacity` entries, cleared when full
    /// (records still referenced by the id maps stay alive through their `Arc`).
    contexts: std::collections::HashMap<u64, Arc<Context>, IdKeyHasher>,
    capacity: usize,
}

impl FeedbackJoin {
    /// An empty index remembering at least the last `capacity` keys per key kind and at most
    /// twice as many (a capacity of 0 is treated as 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            by_event_id: RecentMap::new(capacity),
            by_response_id: RecentMap::new(capacity),
            contexts: std::collections::HashMap::default(),
            capacity,
        }
    }

    /// Index an inference so later feedback about it can be completed.
    pub fn remember(&mut self, event: &InferenceEvent) {
        let rated = Rated { context: self.intern(event), time: event.time };
        // An empty id names no call: every producer that leaves it unset would share it.
        if let Some(response_id) = event.response_id.as_deref().filter(|id| !id.is_empty()) {
            self.by_response_id.insert(id_key(response_id), rated.clone());
        }
        match span_ids(event.trace_id.as_deref(), event.span_id.as_deref()) {
            // A span-derived event id is its span ids: one key serves both lookups.
            Some((trace, span)) if is_span_id(&event.event_id, trace, span) => {
                self.by_event_id.insert(id_key(&event.event_id), rated);
            }
            Some((trace, span)) => {
                self.by_event_id.insert(scoped_id_key(&event.app, &event.event_id), rated.clone());
                self.by_event_id.insert(span_key(trace, span), rated);
            }
            None => {
                self.by_event_id.insert(scoped_id_key(&event.app, &event.event_id), rated);
            }
        }
    }

    /// The shared context record equal to the event's fields.
    fn intern(&mut self, event: &InferenceEvent) -> Arc<Context> {
        let view = ContextView::of(event);
        let hash = IdKeyHasher::default().hash_one(&view);
        if let Some(context) = self.contexts.get(&hash)
            && context.map(String::as_str) == view
        {
            return Arc::clone(context);
        }
        if self.contexts.len() >= self.capacity {
            self.contexts.clear();
        }
        let context = Arc::new(view.map(|field| (*field).to_owned()));
        // On a hash collision the newer record replaces the older one: both stay correct, the
        // older is just no longer shared.
        self.contexts.insert(hash, Arc::clone(&context));
        context
    }

    /// Attribute the feedback to the inference it names and fill its missing context
    /// (environment, response model, provider, operation, prompt id and version) from it. The
    /// inference is found by `inference_id` (a JSON id within the feedback's app, else a span's
    /// ids from any app), else by `trace_id` + `span_id`, else by `response_id`. A match sets the
    /// feedback's app to the inference's. Feedback from the inference's own app keeps the
    /// context fields it carries; feedback from another app (an evaluator service) takes the
    /// inference's wherever the inference has them, since what it carries describes the
    /// evaluator (its own `deployment.environment`, say), not the call it rates.
    /// Returns the matched inference's time (its end), which places the feedback in the call's
    /// rollup window; `None` when no remembered inference matched.
    pub fn fill(&mut self, feedback: &mut FeedbackEvent) -> Option<UnixNanos> {
        let Rated { context, time: rated_at } = self.find(feedback)?;
        let take: fn(&mut Option<String>, Option<&String>) = if feedback.app == context.app {
            fill_missing
        } else {
            feedback.app.clone_from(&context.app);
            take_known
        };
        take(&mut feedback.environment, context.environment.as_ref());
        take(&mut feedback.response_model, context.response_model.as_ref());
        take(&mut feedback.provider, context.provider.as_ref());
        take(&mut feedback.operation, Some(&context.operation));
        take(&mut feedback.prompt_id, context.prompt_id.as_ref());
        take(&mut feedback.prompt_version, context.prompt_version.as_ref());
        Some(*rated_at)
    }

    /// What is remembered of the inference the feedback names.
    fn find(&self, feedback: &FeedbackEvent) -> Option<&Rated> {
        let inference_id = feedback.inference_id.as_deref().filter(|id| !id.is_empty());
        let span = span_ids(feedback.trace_id.as_deref(), feedback.span_id.as_deref());
        let by_event = |key: u128| self.by_event_id.get(&key);
        inference_id
            .and_then(|id| by_event(scoped_id_key(&feedback.app, id)).or_else(|| by_event(id_key(id))))
            .or_else(|| match span {
                // Already looked up as the inference id (OTLP feedback always names it so).
                Some((trace, span)) if !inference_id.is_some_and(|id| is_span_id(id, trace, span)) => {
                    by_event(span_key(trace, span))
                }
                _ => None,
            })
            .or_else(|| {
                let response_id = feedback.response_id.as_deref().filter(|id| !id.is_empty())?;
                self.by_response_id.get(&id_key(response_id))
            })
    }

    /// Keys indexed by event or span id.
    pub fn len(&self) -> usize {
        self.by_event_id.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_event_id.is_empty()
    }
}

/// Both span ids, when both are given.
fn span_ids<'a>(trace_id: Option<&'a str>, span_id: Option<&'a str>) -> Option<(&'a str, &'a str)> {
    match (trace_id, span_id) {
        (Some(trace), Some(span)) if !trace.is_empty() && !span.is_empty() => Some((trace, span)),
        _ => None,
    }
}

/// True when `id` is the span id pair written as one (a span-derived event id).
fn is_span_id(id: &str, trace: &str, span: &str) -> bool {
    id.len() == trace.len() + span.len() && id.starts_with(trace) && id.ends_with(span)
}

/// The key of a span's ids: the key of the span-derived event id they make, so that an
/// inference id written that way and the ids given apart meet. Joined on the stack, as span
/// ids are short (32 + 16 hex digits).
fn span_key(trace: &str, span: &str) -> u128 {
    let mut joined = [0u8; 64];
    if let Some(bytes) = joined.get_mut(..trace.len() + span.len()) {
        let (head, tail) = bytes.split_at_mut(trace.len());
        head.copy_from_slice(trace.as_bytes());
        tail.copy_from_slice(span.as_bytes());
        if let Ok(id) = std::str::from_utf8(bytes) {
            return id_key(id);
        }
    }
    id_key(&[trace, span].concat())
}

fn fill_missing(target: &mut Option<String>, source: Option<&String>) {
    if target.is_none() {
        *target = source.cloned();
    }
}

/// The inference's value where it has one; the feedback's own otherwise.
fn take_known(target: &mut Option<String>, source: Option<&String>) {
    if let Some(source) = source
        && target.as_ref() != Some(source)
    {
        *target = Some(source.clone());
    }
}

#[cfg(test)]
#[path = "feedback_join_tests.rs"]
mod tests;
