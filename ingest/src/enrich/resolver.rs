//! Model names resolved to registry entries through a bounded memo.
//!
//! Every priced event names its model, and a fleet names few: a handful of models per app, each
//! under the one or two spellings its instrumentation reports. Resolving a dated snapshot name
//! (`gpt-4o-2024-08-06`) costs the registry a walk over the name's version suffixes with an index
//! probe for each, about 2 000 instructions, several per cent of an event's whole pipeline; the
//! memo answers a name it has seen with one hash probe.
//!
//! - The memo is keyed by the name as reported and the provider beside it, and remembers misses
//!   too (an unregistered model is looked up as often as a registered one).
//! - It holds at most [`MEMO_CAPACITY`] names and is cleared whole when full, as the identity
//!   memo is: a full memo means a field carries a high-cardinality value the memo could not
//!   serve anyway, and clearing costs one registry walk per distinct name afterwards.
//! - Names longer than [`MEMO_MAX_NAME_BYTES`] are resolved every time, which bounds the memo's
//!   memory (the decoders refuse longer names anyway).
//!
//! The registry never changes under a resolver, so a remembered answer stays right.
//!
//! The first [`UNREGISTERED_LOGGED`] names it finds unregistered are logged, with their
//! provider: once `metrics.max_series` folds label sets into `__overflow__`, the unpriced-calls
//! counter no longer names the model, and the log still does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::registry::{ModelEntry, ModelRegistry};
use crate::FastHashMap;

/// Most (name, provider) pairs the memo remembers before it is cleared.
pub const MEMO_CAPACITY: usize = 1_024;

/// Longest model or provider name, in bytes, the memo remembers.
pub const MEMO_MAX_NAME_BYTES: usize = 256;

/// How many unregistered model names a resolver logs; a flood of names (a field carrying ids)
/// must not flood the log.
pub const UNREGISTERED_LOGGED: usize = 32;

/// A registry with a memo of the names it resolved.
pub struct ModelResolver {
    registry: Arc<ModelRegistry>,
    memo: Mutex<ResolvedNames>,
    /// Unregistered names logged so far (a name is looked up in the registry once per memo
    /// generation, so it is logged about once).
    unregistered_logged: AtomicUsize,
}

/// What to log about a name the registry does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnregisteredNotice {
    /// Log this name.
    Name,
    /// Log this name, and that no further ones will be.
    LastName,
}

/// What one model name resolved to with one provider beside it: the registry entry's index,
/// or none for a name the registry does not price.
struct Resolved {
    provider: Option<Box<str>>,
    entry: Option<usize>,
}

/// Model name as reported -> what it resolved to with each provider it came with (nearly
/// always one).
#[derive(Default)]
struct ResolvedNames {
    by_model: FastHashMap<Box<str>, Vec<Resolved>>,
    pairs: usize,
}

impl ModelResolver {
    /// An empty memo in front of `registry`.
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        Self { registry, memo: Mutex::default(), unregistered_logged: AtomicUsize::new(0) }
    }

    /// The registry behind the memo.
    pub fn registry(&self) -> &ModelRegistry {
        &self.registry
    }

    /// [`ModelRegistry::lookup`], remembered.
    pub fn lookup(&self, model: &str, provider: Option<&str>) -> Option<&ModelEntry> {
        if model.len() > MEMO_MAX_NAME_BYTES || provider.is_some_and(|p| p.len() > MEMO_MAX_NAME_BYTES) {
            return self.registry.lookup(model, provider);
        }
        // A panic while the lock was held (only an allocation failure can panic in there) leaves
        // a memo whose every entry is still a registry answer, so poisoning is ignored.
        let mut memo = self.memo.lock().unwrap_or_else(PoisonError::into_inner);
        let remembered = memo
            .by_model
            .get(model)
            .and_then(|providers| providers.iter().find(|resolved| resolved.provider.as_deref() == provider))
            .map(|resolved| resolved.entry);
        let index = match remembered {
            Some(index) => index,
            None => {
                let index = self.registry.lookup_index(model, provider);
                memo.remember(model, provider, index);
                if index.is_none() {
                    drop(memo);
                    self.log_unregistered(model, provider);
                }
                index
            }
        };
        index.and_then(|index| self.registry.entry(index))
    }

    /// Whether to log a name just found unregistered (see [`UNREGISTERED_LOGGED`]).
    fn note_unregistered(&self) -> Option<UnregisteredNotice> {
        let logged = self.unregistered_logged.fetch_add(1, Ordering::Relaxed);
        match (logged + 1).cmp(&UNREGISTERED_LOGGED) {
            std::cmp::Ordering::Less => Some(UnregisteredNotice::Name),
            std::cmp::Ordering::Equal => Some(UnregisteredNotice::LastName),
            std::cmp::Ordering::Greater => {
                // Stays far from wrapping however many names come.
                self.unregistered_logged.store(UNREGISTERED_LOGGED, Ordering::Relaxed);
                None
            }
        }
    }

    fn log_unregistered(&self, model: &str, provider: Option<&str>) {
        let provider = provider.unwrap_or("");
        match self.note_unregistered() {
            Some(UnregisteredNotice::Name) => tracing::warn!(
                model,
                provider,
                "A model models.yaml does not list: its calls are stored unpriced and counted in \
                 driftwatch_unpriced_requests_total. Register it with its prices."
            ),
            Some(UnregisteredNotice::LastName) => tracing::warn!(
                model,
                provider,
                "A model models.yaml does not list: its calls are stored unpriced. Further unregistered \
                 models are not logged; find them in the lake (events whose cost_usd is null)."
            ),
            None => {}
        }
    }

    /// How many (name, provider) pairs the memo remembers.
    pub fn memo_len(&self) -> usize {
        self.memo.lock().unwrap_or_else(PoisonError::into_inner).pairs
    }
}

impl ResolvedNames {
    fn remember(&mut self, model: &str, provider: Option<&str>, entry: Option<usize>) {
        if self.pairs >= MEMO_CAPACITY {
            self.by_model.clear();
            self.pairs = 0;
        }
        let providers = match self.by_model.get_mut(model) {
            Some(providers) => providers,
            None => self.by_model.entry(Box::from(model)).or_default(),
        };
        providers.push(Resolved { provider: provider.map(Box::from), entry });
        self.pairs += 1;
    }
}

impl Clone for ModelResolver {
    /// A clone starts with an empty memo: the memo is a cache, not state.
    fn clone(&self) -> Self {
        Self::new(Arc::clone(&self.registry))
    }
}

impl std::fmt::Debug for ModelResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `try_lock`: formatting must not wait for (or deadlock on) a lookup under way.
        let memo_len = self.memo.try_lock().ok().map(|memo| memo.pairs);
        f.debug_struct("ModelResolver").field("registry", &self.registry).field("memo_len", &memo_len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    const REGISTRY: &str = r#"
models:
  - id: gpt-4o
    provider: openai
    pricing:
      - {effective_from: 2024-05-13, input_per_mtok: 2.5, output_per_mtok: 10.0}
    risk_level: high
  - id: azure-gpt-4o
    provider: azure.ai.openai
    aliases: [gpt-4o]
    pricing:
      - {effective_from: 2024-05-13, input_per_mtok: 2.75, output_per_mtok: 11.0}
    risk_level: high
  - id: claude-sonnet-4
    provider: anthropic
    aliases: [claude-sonnet-4-0]
    pricing:
      - {effective_from: 2025-05-22, input_per_mtok: 3.0, output_per_mtok: 15.0}
    risk_level: medium
"#;

    fn resolver() -> std::result::Result<ModelResolver, Box<dyn std::error::Error>> {
        Ok(ModelResolver::new(Arc::new(ModelRegistry::from_yaml_str(REGISTRY, "test.yaml")?)))
    }

    /// Same answers as the registry, first time and remembered, for names that resolve by id,
    /// alias, snapshot suffix, seller prefix or case, for each provider, and for misses.
    #[test]
    fn remembered_answers_are_the_registry_answers() -> TestResult {
        let resolver = resolver()?;
        let names = [
            "gpt-4o",
            "gpt-4o-2024-08-06",
            "GPT-4o-2024-08-06",
            "openai/gpt-4o",
            "azure/gpt-4o",
            "gpt-4o-realtime-preview",
            "claude-sonnet-4-0",
            "claude-sonnet-4-20250514",
            "mystery-model",
        ];
        let providers = [None, Some("openai"), Some("azure.ai.openai"), Some("anthropic"), Some("cohere")];
        for round in 0..3 {
            for name in names {
                for provider in providers {
                    let expected = resolver.registry().lookup(name, provider).map(|e| (&e.id, &e.provider));
                    let got = resolver.lookup(name, provider).map(|e| (&e.id, &e.provider));
                    assert_eq!(got, expected, "round {round}: {name} from {provider:?}");
                }
            }
        }
        assert_eq!(resolver.memo_len(), names.len() * providers.len());
        Ok(())
    }

    /// The provider is part of the key: a name first resolved for one provider is resolved
    /// again for another, not given the first one's entry.
    #[test]
    fn one_name_from_two_providers_gets_each_its_own_entry() -> TestResult {
        let resolver = resolver()?;
        let openai = resolver.lookup("gpt-4o", Some("openai")).ok_or("openai's gpt-4o")?;
        let azure = resolver.lookup("gpt-4o", Some("azure.ai.openai")).ok_or("azure's gpt-4o")?;
        assert_eq!((openai.provider.as_str(), azure.provider.as_str()), ("openai", "azure.ai.openai"));
        assert_eq!(resolver.lookup("gpt-4o", Some("cohere")).map(|e| &e.id), None);
        Ok(())
    }

    /// A flood of distinct names (a per-request id in the model field) keeps the memo within
    /// its capacity, and answers stay right after it is cleared; an overlong name is answered
    /// without being remembered.
    #[test]
    fn the_memo_stays_within_its_capacity() -> TestResult {
        let resolver = resolver()?;
        for n in 0..3 * MEMO_CAPACITY {
            assert!(resolver.lookup(&format!("model-{n}"), None).is_none());
            assert!(resolver.memo_len() <= MEMO_CAPACITY);
        }
        assert_eq!(resolver.lookup("gpt-4o-2024-08-06", Some("openai")).map(|e| e.id.as_str()), Some("gpt-4o"));
        let before = resolver.memo_len();
        let long = format!("gpt-4o-{}", "9".repeat(MEMO_MAX_NAME_BYTES));
        assert_eq!(
            resolver.lookup(&long, None).map(|e| e.id.as_str()),
            resolver.registry().lookup(&long, None).map(|e| e.id.as_str())
        );
        assert_eq!(resolver.memo_len(), before);
        Ok(())
    }

    /// Unregistered names are logged once each, the first [`UNREGISTERED_LOGGED`] of them, the
    /// last saying that no more will be; registered ones never.
    #[test]
    fn the_first_unregistered_names_are_logged_once_each() -> TestResult {
        let resolver = ModelResolver::new(Arc::new(ModelRegistry::from_yaml_str(REGISTRY, "test")?));
        let logged = |resolver: &ModelResolver| resolver.unregistered_logged.load(Ordering::Relaxed);
        for _ in 0..3 {
            assert!(resolver.lookup("gpt-4o", Some("openai")).is_some());
            assert!(resolver.lookup("mystery-model", Some("openai")).is_none());
        }
        assert_eq!(logged(&resolver), 1, "one unregistered name, looked up three times, noted once");
        let notices: Vec<Option<UnregisteredNotice>> =
            (1..UNREGISTERED_LOGGED + 3).map(|_| resolver.note_unregistered()).collect();
        assert_eq!(notices[UNREGISTERED_LOGGED - 3], Some(UnregisteredNotice::Name));
        assert_eq!(notices[UNREGISTERED_LOGGED - 2], Some(UnregisteredNotice::LastName));
        assert!(notices[UNREGISTERED_LOGGED - 1..].iter().all(Option::is_none), "{notices:?}");
        assert_eq!(logged(&resolver), UNREGISTERED_LOGGED);
        Ok(())
    }
}
