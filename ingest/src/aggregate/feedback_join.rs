//! The feedback join: inference events enter through [`FeedbackJoin::remember`];
//! feedback that lacks model or prompt context leaves [`FeedbackJoin::fill`]
//! with it copied from the inference it evaluates (DESIGN §3: feedback names
//! its inference by parent span, i.e. `inference_id`, or by
//! `gen_ai.response.id`).
//!
//! Bounded: two [`RecentMap`]s remembering at least the last `capacity` inferences each (by
//! event id and by response id) share one context record per inference. Feedback usually
//! follows its inference within seconds to minutes, so recency is the right eviction policy;
//! feedback about a forgotten inference keeps its own fields.
//!
//! Cheap per inference, because every event passes through here: ids are kept as
//! [`id_key`](crate::id_key) hashes, and the context records are interned, since a fleet has
//! few distinct (model, prompt, environment) combinations and consecutive events mostly repeat
//! one.

use std::hash::BuildHasher;
use std::sync::Arc;

use driftwatch_lake::model::{FeedbackEvent, InferenceEvent};

use crate::id_key::{IdKeyHasher, RecentMap, id_key, scoped_id_key};

/// The inference fields feedback borrows, over any string type: owned in the shared record
/// ([`Context`]), borrowed from an event to hash and compare it without copying
/// ([`ContextView`]).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ContextFields<S> {
    environment: Option<S>,
    response_model: Option<S>,
    provider: Option<S>,
    operation: S,
    prompt_id: Option<S>,
    prompt_version: Option<S>,
}

type Context = ContextFields<String>;
type ContextView<'a> = ContextFields<&'a str>;

impl<'a> ContextView<'a> {
    fn of(event: &'a InferenceEvent) -> Self {
        Self {
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
            environment: self.environment.as_ref().map(&f),
            response_model: self.response_model.as_ref().map(&f),
            provider: self.provider.as_ref().map(&f),
            operation: f(&self.operation),
            prompt_id: self.prompt_id.as_ref().map(&f),
            prompt_version: self.prompt_version.as_ref().map(&f),
        }
    }
}

/// Bounded index of recent inferences, keyed by event id and response id.
#[derive(Debug)]
pub struct FeedbackJoin {
    /// `InferenceEvent::event_id` key -> context.
    by_event_id: RecentMap<Arc<Context>>,
    /// `InferenceEvent::response_id` key -> context.
    by_response_id: RecentMap<Arc<Context>>,
    /// Interned contexts by [`context_hash`]; at most `capacity` entries, cleared when full
    /// (records still referenced by the id maps stay alive through their `Arc`).
    contexts: std::collections::HashMap<u64, Arc<Context>, IdKeyHasher>,
    capacity: usize,
}

impl FeedbackJoin {
    /// An empty index remembering at least the last `capacity` inferences per key kind and at
    /// most twice as many (a capacity of 0 is treated as 1).
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
        let context = self.intern(event);
        if let Some(response_id) = &event.response_id {
            self.by_response_id.insert(id_key(response_id), Arc::clone(&context));
        }
        // Event ids name a call within its app (JSON ids are often counters), response ids are
        // the provider's and unique on their own.
        self.by_event_id.insert(scoped_id_key(&event.app, &event.event_id), context);
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

    /// Fill the feedback's missing context (environment, response model,
    /// provider, operation, prompt id and version) from the inference it names:
    /// by `inference_id` (within the feedback's app) first, else by `response_id`. Fields the feedback
    /// already carries are kept. Returns whether an inference matched.
    pub fn fill(&mut self, feedback: &mut FeedbackEvent) -> bool {
        let by_event =
            feedback.inference_id.as_deref().and_then(|id| self.by_event_id.get(&scoped_id_key(&feedback.app, id)));
        let context = match by_event {
            Some(context) => context,
            None => match feedback.response_id.as_deref().and_then(|id| self.by_response_id.get(&id_key(id))) {
                Some(context) => context,
                None => return false,
            },
        };
        fill_missing(&mut feedback.environment, context.environment.as_ref());
        fill_missing(&mut feedback.response_model, context.response_model.as_ref());
        fill_missing(&mut feedback.provider, context.provider.as_ref());
        fill_missing(&mut feedback.operation, Some(&context.operation));
        fill_missing(&mut feedback.prompt_id, context.prompt_id.as_ref());
        fill_missing(&mut feedback.prompt_version, context.prompt_version.as_ref());
        true
    }

    /// Inferences indexed by event id.
    pub fn len(&self) -> usize {
        self.by_event_id.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_event_id.is_empty()
    }
}

fn fill_missing(target: &mut Option<String>, source: Option<&String>) {
    if target.is_none() {
        *target = source.cloned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inference(event_id: &str, response_id: Option<&str>, model: &str) -> InferenceEvent {
        InferenceEvent {
            event_id: event_id.to_owned(),
            response_id: response_id.map(str::to_owned),
            app: "where2eat".to_owned(),
            environment: Some("prod".to_owned()),
            provider: Some("openai".to_owned()),
            operation: "chat".to_owned(),
            response_model: Some(model.to_owned()),
            prompt_id: Some("pick".to_owned()),
            prompt_version: Some("7".to_owned()),
            ..InferenceEvent::default()
        }
    }

    fn bare_feedback(inference_id: Option<&str>, response_id: Option<&str>) -> FeedbackEvent {
        FeedbackEvent {
            feedback_id: "f1".to_owned(),
            app: "where2eat".to_owned(),
            name: "user_thumbs".to_owned(),
            inference_id: inference_id.map(str::to_owned),
            response_id: response_id.map(str::to_owned),
            ..FeedbackEvent::default()
        }
    }

    /// Two apps that number their calls alike: each app's feedback is completed from its own
    /// inference, not from the other's that came later with the same id.
    #[test]
    fn inference_ids_are_matched_within_the_feedbacks_app() {
        let mut join = FeedbackJoin::new(100);
        join.remember(&inference("1", None, "gpt-4o"));
        let mut other = inference("1", None, "claude-sonnet");
        other.app = "ticket-summariser".to_owned();
        join.remember(&other);
        let mut feedback = bare_feedback(Some("1"), None);
        assert!(join.fill(&mut feedback));
        assert_eq!(feedback.response_model.as_deref(), Some("gpt-4o"));
    }

    #[test]
    fn fills_by_inference_id() {
        let mut join = FeedbackJoin::new(8);
        join.remember(&inference("ev-1", None, "gpt-4o"));
        let mut feedback = bare_feedback(Some("ev-1"), None);
        assert!(join.fill(&mut feedback));
        assert_eq!(feedback.environment.as_deref(), Some("prod"));
        assert_eq!(feedback.provider.as_deref(), Some("openai"));
        assert_eq!(feedback.operation.as_deref(), Some("chat"));
        assert_eq!(feedback.response_model.as_deref(), Some("gpt-4o"));
        assert_eq!(feedback.prompt_id.as_deref(), Some("pick"));
        assert_eq!(feedback.prompt_version.as_deref(), Some("7"));
    }

    #[test]
    fn fills_by_response_id_and_prefers_inference_id() {
        let mut join = FeedbackJoin::new(8);
        join.remember(&inference("ev-1", Some("resp-1"), "gpt-4o"));
        join.remember(&inference("ev-2", Some("resp-2"), "claude"));
        let mut by_response = bare_feedback(None, Some("resp-2"));
        assert!(join.fill(&mut by_response));
        assert_eq!(by_response.response_model.as_deref(), Some("claude"));

        let mut both = bare_feedback(Some("ev-1"), Some("resp-2"));
        assert!(join.fill(&mut both));
        assert_eq!(both.response_model.as_deref(), Some("gpt-4o"));

        // An unknown inference id falls back to the response id.
        let mut fallback = bare_feedback(Some("ev-unknown"), Some("resp-2"));
        assert!(join.fill(&mut fallback));
        assert_eq!(fallback.response_model.as_deref(), Some("claude"));
    }

    #[test]
    fn keeps_fields_the_feedback_already_has() {
        let mut join = FeedbackJoin::new(8);
        join.remember(&inference("ev-1", None, "gpt-4o"));
        let mut feedback = bare_feedback(Some("ev-1"), None);
        feedback.prompt_version = Some("8".to_owned());
        assert!(join.fill(&mut feedback));
        assert_eq!(feedback.prompt_version.as_deref(), Some("8"));
        assert_eq!(feedback.prompt_id.as_deref(), Some("pick"));
    }

    #[test]
    fn unmatched_feedback_is_unchanged() {
        let mut join = FeedbackJoin::new(8);
        join.remember(&inference("ev-1", Some("resp-1"), "gpt-4o"));
        let mut feedback = bare_feedback(Some("nope"), Some("nope"));
        let before = feedback.clone();
        assert!(!join.fill(&mut feedback));
        assert_eq!(feedback, before);
    }

    #[test]
    fn old_inferences_are_forgotten() {
        let mut join = FeedbackJoin::new(2);
        for i in 1..=5 {
            join.remember(&inference(&format!("ev-{i}"), Some(&format!("resp-{i}")), "m1"));
            assert!(join.len() <= 4, "at most twice the capacity");
        }
        // The last `capacity` inferences are always remembered, by both keys.
        assert!(join.fill(&mut bare_feedback(Some("ev-4"), None)));
        assert!(join.fill(&mut bare_feedback(Some("ev-5"), None)));
        assert!(join.fill(&mut bare_feedback(None, Some("resp-4"))));
        assert!(!join.fill(&mut bare_feedback(Some("ev-1"), None)));
        assert!(!join.fill(&mut bare_feedback(None, Some("resp-1"))));
    }

    #[test]
    fn interned_contexts_keep_each_inference_own_fields() {
        // Capacity 2 also forces the interner to clear while older records are still indexed.
        let mut join = FeedbackJoin::new(2);
        let mut third = inference("ev-3", None, "gpt-4o");
        third.prompt_version = Some("8".to_owned());
        join.remember(&inference("ev-1", None, "gpt-4o"));
        join.remember(&inference("ev-2", None, "claude-sonnet"));
        join.remember(&third);
        join.remember(&inference("ev-4", None, "gpt-4o"));
        for (id, model, version) in [("ev-3", "gpt-4o", "8"), ("ev-4", "gpt-4o", "7")] {
            let mut feedback = bare_feedback(Some(id), None);
            assert!(join.fill(&mut feedback), "{id}");
            assert_eq!(feedback.response_model.as_deref(), Some(model), "{id}");
            assert_eq!(feedback.prompt_version.as_deref(), Some(version), "{id}");
        }
        let Some(shared) = join.by_event_id.get(&scoped_id_key("where2eat", "ev-4")).map(Arc::clone) else {
            panic!("ev-4 not indexed");
        };
        let again = inference("ev-5", None, "gpt-4o");
        join.remember(&again);
        let reused = join.by_event_id.get(&scoped_id_key("where2eat", "ev-5")).is_some_and(|c| Arc::ptr_eq(c, &shared));
        assert!(reused, "an identical context is shared, not copied");
    }
}
