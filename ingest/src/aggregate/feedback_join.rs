//! The feedback join: inference events enter through [`FeedbackJoin::remember`];
//! feedback that lacks model or prompt context leaves [`FeedbackJoin::fill`]
//! with it copied from the inference it evaluates (DESIGN §3: feedback names
//! its inference by parent span, i.e. `inference_id`, or by
//! `gen_ai.response.id`).
//!
//! Bounded: two LRU maps of `capacity` entries each (by event id and by
//! response id) share one context record per inference. Feedback usually
//! follows its inference within seconds to minutes, so recency is the right
//! eviction policy; feedback about an evicted inference keeps its own fields.

use std::num::NonZeroUsize;
use std::sync::Arc;

use driftwatch_lake::model::{FeedbackEvent, InferenceEvent};
use lru::LruCache;

/// The inference fields feedback borrows.
#[derive(Debug)]
struct Context {
    environment: Option<String>,
    response_model: Option<String>,
    provider: Option<String>,
    operation: String,
    prompt_id: Option<String>,
    prompt_version: Option<String>,
}

/// Bounded LRU index of recent inferences, keyed by event id and response id.
#[derive(Debug)]
pub struct FeedbackJoin {
    /// `InferenceEvent::event_id` -> context.
    by_event_id: LruCache<String, Arc<Context>>,
    /// `InferenceEvent::response_id` -> context.
    by_response_id: LruCache<String, Arc<Context>>,
}

impl FeedbackJoin {
    /// An empty index holding at most `capacity` inferences per key kind
    /// (a capacity of 0 is treated as 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self { by_event_id: LruCache::new(capacity), by_response_id: LruCache::new(capacity) }
    }

    /// Index an inference so later feedback about it can be completed.
    pub fn remember(&mut self, event: &InferenceEvent) {
        let context = Arc::new(Context {
            environment: event.environment.clone(),
            response_model: event.response_model.clone(),
            provider: event.provider.clone(),
            operation: event.operation.clone(),
            prompt_id: event.prompt_id.clone(),
            prompt_version: event.prompt_version.clone(),
        });
        if let Some(response_id) = &event.response_id {
            self.by_response_id.put(response_id.clone(), Arc::clone(&context));
        }
        self.by_event_id.put(event.event_id.clone(), context);
    }

    /// Fill the feedback's missing context (environment, response model,
    /// provider, operation, prompt id and version) from the inference it names:
    /// by `inference_id` first, else by `response_id`. Fields the feedback
    /// already carries are kept. Returns whether an inference matched.
    pub fn fill(&mut self, feedback: &mut FeedbackEvent) -> bool {
        let by_event = feedback.inference_id.as_deref().and_then(|id| self.by_event_id.get(id));
        let context = match by_event {
            Some(context) => context,
            None => match feedback.response_id.as_deref().and_then(|id| self.by_response_id.get(id)) {
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
    fn least_recently_used_inference_is_evicted() {
        let mut join = FeedbackJoin::new(2);
        join.remember(&inference("ev-1", Some("resp-1"), "m1"));
        join.remember(&inference("ev-2", Some("resp-2"), "m2"));
        // Touch ev-1 so ev-2 becomes the least recently used.
        assert!(join.fill(&mut bare_feedback(Some("ev-1"), None)));
        join.remember(&inference("ev-3", Some("resp-3"), "m3"));
        assert_eq!(join.len(), 2);
        assert!(join.fill(&mut bare_feedback(Some("ev-1"), None)));
        assert!(join.fill(&mut bare_feedback(Some("ev-3"), None)));
        assert!(!join.fill(&mut bare_feedback(Some("ev-2"), None)));
        // The response-id index is bounded the same way (resp-1 was the oldest there).
        assert!(!join.fill(&mut bare_feedback(None, Some("resp-1"))));
        assert!(join.fill(&mut bare_feedback(None, Some("resp-3"))));
    }
}
