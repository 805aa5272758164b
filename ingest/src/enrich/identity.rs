//! PII scrubbing of the identity and label fields of every event (DESIGN §10), memoised.
//!
//! App, environment, provider, model, prompt and finish-reason fields are stored in the lake
//! (the app even names a folder, `app=<value>`) and exported as Prometheus label values, so
//! PII a producer put in them must be masked like free text. The regex [`Scrubber`] costs
//! microseconds per value, and running it on about ten fields per event would cost more than
//! the rest of the pipeline. These fields are low-cardinality, though (a fleet has tens of
//! apps, models and prompt versions), so [`IdentityScrubber`] remembers the values it has
//! scrubbed recently and runs the scrubber only on values it has not seen:
//!
//! - A value that scrubbed to itself (clean, nearly all of them) is remembered by value and
//!   found again by hash plus an exact comparison, so no hash collision can let a value with
//!   PII pass as clean.
//! - A value the scrubber changed is remembered by a seeded 128-bit hash of the raw value
//!   ([`id_key`]) with its scrubbed form: the raw PII is not kept in memory, a producer that
//!   repeats the same PII in every event (a misconfigured `environment`) does not pay a scrub
//!   per event, and a collision could at worst return another value's scrubbed form, never
//!   unscrubbed text.
//! - Values longer than [`MEMO_MAX_VALUE_BYTES`] are scrubbed every time and not remembered:
//!   identities are short names, and a long value is free text that would let the memo's memory
//!   grow with what producers send.
//! - The memo holds at most [`MEMO_CAPACITY`] values and is cleared whole when full, instead of
//!   evicting one by one: a fleet's working set is far smaller, so a full memo means some field
//!   carries a high-cardinality value (a per-request id in `prompt_id`), which the memo could not
//!   serve anyway. Clearing costs one scrub per distinct value afterwards, what no memo would
//!   cost, and keeps the hit path free of recency bookkeeping.
//!
//! The enricher is shared as `Arc<Enricher>` and called with `&self`, so the memo sits behind a
//! [`Mutex`], taken once per event ([`IdentityScrubber::session`]) rather than per field: each
//! source loop has one processing thread, so the lock is uncontended (two atomic operations).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::Scrubber;
use crate::FastHashState;
use crate::id_key::{IdKeyHasher, id_key};

/// Most values the memo remembers (clean and scrubbed together) before it is cleared.
pub const MEMO_CAPACITY: usize = 4_096;

/// Longest value, in bytes, the memo remembers; longer ones are scrubbed every time. Bounds the
/// memo at about a mebibyte of strings.
pub const MEMO_MAX_VALUE_BYTES: usize = 256;

/// Scrubs identity and label values through a bounded memo of recently seen values.
pub struct IdentityScrubber {
    scrubber: Scrubber,
    memo: Mutex<Memo>,
}

/// What the scrubber made of recently seen values.
#[derive(Default)]
struct Memo {
    /// Values the scrubber left unchanged.
    clean: HashSet<Box<str>, FastHashState>,
    /// The scrubbed form of values the scrubber changed, keyed by [`id_key`] of the raw value.
    scrubbed: HashMap<u128, Box<str>, IdKeyHasher>,
}

impl Memo {
    fn len(&self) -> usize {
        self.clean.len() + self.scrubbed.len()
    }

    /// Room for one more value: cleared whole when full (see the module docs for why).
    fn make_room(&mut self) {
        if self.len() >= MEMO_CAPACITY {
            self.clean.clear();
            self.scrubbed.clear();
        }
    }
}

impl IdentityScrubber {
    /// An empty memo in front of `scrubber`.
    pub fn new(scrubber: Scrubber) -> Self {
        Self { scrubber, memo: Mutex::default() }
    }

    /// Exclusive use of the memo for the fields of one event.
    pub fn session(&self) -> IdentitySession<'_> {
        // A panic while the lock was held (only an allocation failure can panic in there) leaves
        // a memo whose every entry is still a correct scrub result, so poisoning is ignored.
        let memo = self.memo.lock().unwrap_or_else(PoisonError::into_inner);
        IdentitySession { scrubber: self.scrubber, memo }
    }

    /// How many values the memo remembers.
    pub fn memo_len(&self) -> usize {
        self.memo.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Clone for IdentityScrubber {
    /// A clone starts with an empty memo: the memo is a cache, not state.
    fn clone(&self) -> Self {
        Self::new(self.scrubber)
    }
}

impl std::fmt::Debug for IdentityScrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the size: the values would fill logs. `try_lock`, because formatting while this
        // thread holds a session must not deadlock.
        let memo_len = self.memo.try_lock().ok().map(|memo| memo.len());
        f.debug_struct("IdentityScrubber").field("memo_len", &memo_len).finish()
    }
}

/// The memo, held for the fields of one event.
pub struct IdentitySession<'a> {
    scrubber: Scrubber,
    memo: MutexGuard<'a, Memo>,
}

impl std::fmt::Debug for IdentitySession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySession").field("memo_len", &self.memo.len()).finish()
    }
}

impl IdentitySession<'_> {
    /// Replaces `value` with its scrubbed form; a clean value is left as is, without copying.
    /// True when the value changed.
    pub fn scrub(&mut self, value: &mut String) -> bool {
        if value.len() > MEMO_MAX_VALUE_BYTES {
            return match self.scrubber.scrub(value) {
                Cow::Borrowed(_) => false,
                Cow::Owned(scrubbed) => {
                    *value = scrubbed;
                    true
                }
            };
        }
        if self.memo.clean.contains(value.as_str()) {
            return false;
        }
        let key = id_key(value);
        if let Some(scrubbed) = self.memo.scrubbed.get(&key) {
            value.clear();
            value.push_str(scrubbed);
            return true;
        }
        match self.scrubber.scrub(value) {
            Cow::Borrowed(_) => {
                self.memo.make_room();
                self.memo.clean.insert(Box::from(value.as_str()));
                false
            }
            Cow::Owned(scrubbed) => {
                self.memo.make_room();
                self.memo.scrubbed.insert(key, Box::from(scrubbed.as_str()));
                *value = scrubbed;
                true
            }
        }
    }

    /// [`scrub`](Self::scrub) for an optional field.
    pub fn scrub_opt(&mut self, value: &mut Option<String>) {
        if let Some(value) = value.as_mut() {
            self.scrub(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::ModelRegistry;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn scrubbed(identity: &IdentityScrubber, value: &str) -> String {
        let mut value = value.to_owned();
        identity.session().scrub(&mut value);
        value
    }

    /// Names real fleets send in the identity fields, beyond the registry's.
    const REAL_NAMES: &[&str] = &[
        // Models, as providers and gateways spell them.
        "gpt-4o",
        "gpt-4o-2024-08-06",
        "gpt-4o-mini-2024-07-18",
        "gpt-4.1-mini",
        "gpt-4.1-2025-04-14",
        "o1-2024-12-17",
        "o3-mini-2025-01-31",
        "chatgpt-4o-latest",
        "text-embedding-3-small",
        "text-embedding-ada-002",
        "claude-3-5-sonnet-20241022",
        "claude-3-5-haiku-20241022",
        "claude-3-7-sonnet-20250219",
        "claude-sonnet-4-20250514",
        "claude-opus-4-5",
        "claude-3-5-sonnet@20241022",
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "amazon.titan-embed-text-v2:0",
        "meta.llama3-1-70b-instruct-v1:0",
        "gemini-1.5-pro-002",
        "gemini-2.0-flash-001",
        "gemini-2.5-pro-preview-05-06",
        "models/gemini-1.5-flash-8b",
        "projects/my-proj/locations/us-central1/publishers/google/models/gemini-1.5-pro-002",
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Meta-Llama-3.1-405B-Instruct-FP8",
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        "mistral-large-2407",
        "mistral-small-2501",
        "codestral-2405",
        "command-r-08-2024",
        "command-r-plus-08-2024",
        "deepseek-chat",
        "deepseek-r1-distill-llama-70b",
        "qwen2.5-72b-instruct",
        "llama3.1:8b",
        "accounts/fireworks/models/llama-v3p1-70b-instruct",
        "ft:gpt-4o-mini-2024-07-18:acme::9abcDEFg",
        // Providers and operations.
        "openai",
        "anthropic",
        "azure.ai.inference",
        "azure.ai.openai",
        "aws.bedrock",
        "gcp.vertex_ai",
        "gcp.gemini",
        "mistral_ai",
        "chat",
        "text_completion",
        "generate_content",
        "embeddings",
        "execute_tool",
        "invoke_agent",
        // Prompt ids and versions.
        "v2",
        "v10",
        "2024-11-05",
        "2025-01-31T12:00:00Z",
        "1.2.3",
        "1.2.3-rc.1",
        "20241105",
        "support-triage",
        "refund_policy_v3",
        "a1b2c3d4",
        "8f14e45fceea167a5a36dedd4bea2543",
        // Environments and apps.
        "prod",
        "production",
        "staging",
        "dev",
        "us-east-1",
        "eu-west-2",
        "prod-eu-1",
        "support-bot",
        "checkout",
        "billing-api",
        // Finish reasons and error types.
        "stop",
        "length",
        "tool_calls",
        "content_filter",
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "STOP",
        "SAFETY",
        "RateLimitError",
        "429",
        "500",
        // Golden cases and evaluation names.
        "golden-0042",
        "refund-edge-case-17",
        "hallucination",
        "user_thumbs",
        "Hallucination",
    ];

    #[test]
    fn real_model_provider_and_label_names_are_unchanged() -> TestResult {
        let registry = ModelRegistry::default_embedded()?;
        let mut names: Vec<String> = REAL_NAMES.iter().map(|name| (*name).to_owned()).collect();
        for entry in registry.entries() {
            names.push(entry.id.clone());
            names.push(entry.provider.clone());
            names.extend(entry.version.iter().cloned());
            names.extend(entry.aliases.iter().cloned());
            names.extend(entry.pricing.iter().map(|price| price.version.clone()));
        }
        let identity = IdentityScrubber::new(Scrubber::new());
        let mangled: Vec<(String, String)> = names
            .iter()
            .filter_map(|name| {
                let out = scrubbed(&identity, name);
                (out != *name).then(|| (name.clone(), out))
            })
            .collect();
        assert!(mangled.is_empty(), "real names changed by the scrub: {mangled:?}");
        Ok(())
    }

    #[test]
    fn pii_in_identity_values_is_masked_and_the_raw_value_is_not_kept() {
        let identity = IdentityScrubber::new(Scrubber::new());
        for (raw, expected) in [
            ("prod call 415-555-2671", "prod call [PHONE]"),
            ("gpt-4o user=jane.doe@example.com", "gpt-4o user=[EMAIL]"),
            ("ssn 123-45-6789", "ssn [NATIONAL_ID]"),
            ("card 4111 1111 1111 1111", "card [CARD_NUMBER]"),
            ("IBAN DE89370400440532013000", "IBAN [IBAN]"),
        ] {
            // Twice: the second answer comes from the memo.
            assert_eq!(scrubbed(&identity, raw), expected);
            assert_eq!(scrubbed(&identity, raw), expected);
            let memo = identity.session();
            assert!(!memo.memo.clean.contains(raw), "{raw} remembered as clean");
            assert!(memo.memo.scrubbed.values().all(|kept| !kept.contains(raw)));
            assert_eq!(memo.memo.scrubbed.get(&id_key(raw)).map(|kept| &**kept), Some(expected));
        }
    }

    #[test]
    fn remembered_values_skip_the_scrubber() {
        let identity = IdentityScrubber::new(Scrubber::new());
        assert_eq!(scrubbed(&identity, "checkout"), "checkout");
        assert_eq!(identity.memo_len(), 1);
        assert_eq!(scrubbed(&identity, "checkout"), "checkout");
        assert_eq!(identity.memo_len(), 1, "a repeated value is not stored twice");
        // Only a memo hit can leave these unscrubbed: plant them to prove the lookup happens.
        {
            let mut memo = identity.session();
            memo.memo.clean.insert(Box::from("planted jane@example.com"));
            memo.memo.scrubbed.insert(id_key("planted 10.1.2.3"), Box::from("from the memo"));
        }
        assert_eq!(scrubbed(&identity, "planted jane@example.com"), "planted jane@example.com");
        assert_eq!(scrubbed(&identity, "planted 10.1.2.3"), "from the memo");
    }

    #[test]
    fn long_values_are_scrubbed_every_time_and_not_remembered() {
        let identity = IdentityScrubber::new(Scrubber::new());
        let clean = "x".repeat(MEMO_MAX_VALUE_BYTES + 1);
        let dirty = format!("{} jane@example.com", "y".repeat(MEMO_MAX_VALUE_BYTES));
        assert_eq!(scrubbed(&identity, &clean), clean);
        assert_eq!(scrubbed(&identity, &dirty), format!("{} [EMAIL]", "y".repeat(MEMO_MAX_VALUE_BYTES)));
        assert_eq!(identity.memo_len(), 0);
        let at_limit = "z".repeat(MEMO_MAX_VALUE_BYTES);
        assert_eq!(scrubbed(&identity, &at_limit), at_limit);
        assert_eq!(identity.memo_len(), 1);
    }

    #[test]
    fn the_memo_is_bounded_and_cleared_when_full() {
        let identity = IdentityScrubber::new(Scrubber::new());
        for i in 0..MEMO_CAPACITY {
            assert_eq!(scrubbed(&identity, &format!("prompt-{i}")), format!("prompt-{i}"));
        }
        assert_eq!(identity.memo_len(), MEMO_CAPACITY);
        assert_eq!(scrubbed(&identity, "one more"), "one more");
        assert_eq!(identity.memo_len(), 1);
        // Still correct after the clear, for clean and for scrubbed values.
        assert_eq!(scrubbed(&identity, "prompt-0"), "prompt-0");
        assert_eq!(scrubbed(&identity, "env jane@example.com"), "env [EMAIL]");
        assert_eq!(identity.memo_len(), 3);
    }

    #[test]
    fn optional_and_empty_values() {
        let identity = IdentityScrubber::new(Scrubber::new());
        let mut session = identity.session();
        let mut none: Option<String> = None;
        session.scrub_opt(&mut none);
        assert_eq!(none, None);
        let mut some = Some("staging 10.1.2.3".to_owned());
        session.scrub_opt(&mut some);
        assert_eq!(some.as_deref(), Some("staging [IP_ADDRESS]"));
        let mut empty = String::new();
        session.scrub(&mut empty);
        assert_eq!(empty, "");
    }

    #[test]
    fn a_clone_starts_with_an_empty_memo() {
        let identity = IdentityScrubber::new(Scrubber::new());
        scrubbed(&identity, "prod");
        let copy = identity.clone();
        scrubbed(&copy, "staging");
        scrubbed(&copy, "us-east-1");
        assert_eq!(copy.memo_len(), 2);
        assert_eq!(identity.memo_len(), 1);
        assert!(format!("{identity:?}").contains("memo_len: Some(1)"));
        let session = identity.session();
        assert!(format!("{identity:?}").contains("memo_len: None"), "formatting while a session is held");
        assert!(format!("{session:?}").contains("memo_len: 1"));
    }
}
