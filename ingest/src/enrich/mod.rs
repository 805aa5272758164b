//! Enrichment: the step between decode and aggregate that prices events and
//! makes their content safe to keep (DESIGN §4, §5, §10).
//!
//! A decoded [`InferenceEvent`] enters [`Enricher::enrich`] carrying token
//! counts and, possibly, raw input and output text. It leaves with
//! `cost_usd` and `price_version` from the [`ModelRegistry`], content
//! fingerprints (`input_hash`, `output_hash`, `output_simhash`,
//! `output_chars`), a scrubbed `content` copy only when the app's
//! [`ContentPolicy`] retains content, and the raw text cleared so it never
//! reaches the lake. Its identity and label fields (app, environment,
//! provider, models, prompt, finish reason, ...) are scrubbed first, so
//! pricing, the policy lookup, rollups, metrics and the lake all see the
//! scrubbed values.
//!
//! # Layout
//! - [`registry`]: `models.yaml`, validated, with name lookup.
//! - [`resolver`]: the registry's name lookup, memoised.
//! - [`pricing`]: tokens x the price in force at the event's time.
//! - [`scrub`]: PII detection and replacement.
//! - [`blobs`]: images, audio and documents inline in retained content, elided before the scrub.
//! - [`identity`]: the scrub of identity and label fields, memoised.
//! - [`fingerprint`]: content hashes and SimHash, keyed when a [`FingerprintKey`] is configured.
//! - [`mod@message_text`]: the text of a GenAI message list, which is what output fingerprints are of.

pub mod blobs;
pub mod fingerprint;
pub mod identity;
pub mod message_text;
pub mod pricing;
pub mod registry;
pub mod resolver;
pub mod scrub;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use driftwatch_lake::layout::{MAX_ESCAPED_PARTITION_VALUE_BYTES, escaped_path_value_len};
use driftwatch_lake::model::{FeedbackEvent, InferenceEvent};
use serde::Serialize;

use crate::FastHashMap;

pub use fingerprint::{
    FingerprintKey, KeyFormatError, content_hash, hamming, keyed_content_hash, keyed_simhash64, simhash64,
};
pub use identity::IdentityScrubber;
pub use message_text::message_text;
pub use pricing::{Priced, price_event, price_event_with};
pub use registry::{ModelEntry, ModelRegistry, Price, Rates, RegistryError, RiskLevel, TierPrice};
pub use resolver::ModelResolver;
pub use scrub::{PiiKind, Scrubber};

/// What an app allows driftwatch to keep of its prompts and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentPolicy {
    /// Keep a copy of the content in the lake's `content` column. Off by
    /// default: hashes and lengths are enough for drift detection.
    pub retain_content: bool,
    /// Scrub PII from retained content. On by default; turn off only for
    /// synthetic or already-anonymised apps.
    pub scrub_pii: bool,
}

impl Default for ContentPolicy {
    fn default() -> Self {
        Self { retain_content: false, scrub_pii: true }
    }
}

/// Cuts a scrubbed app id to what the lake accepts as a folder name. Decode
/// rejects raw app ids above the limit, but a placeholder can be longer than
/// what it masks (`1.2.3.4` becomes `[IP_ADDRESS]`, whose brackets are
/// escaped in paths), and a row whose folder name is too long would fail
/// every flush holding it. The scrubbed text holds no PII, so the cut only
/// loses the tail of a name.
fn fit_partition_value(app: &mut String) {
    let mut escaped_bytes = 0;
    let mut buf = [0; 4];
    for (at, c) in app.char_indices() {
        escaped_bytes += escaped_path_value_len(c.encode_utf8(&mut buf));
        if escaped_bytes > MAX_ESCAPED_PARTITION_VALUE_BYTES {
            app.truncate(at);
            return;
        }
    }
}

/// Free text kept whatever the content policy (`error_type`, which may be a span's status
/// message, and a feedback label) is cut to this many bytes. It is a metric label and a lake
/// column, so its length must not be the producer's to choose; unlike a name (which decode
/// refuses above its bound), the call it describes is still worth keeping.
pub const MAX_FREE_TEXT_BYTES: usize = 256;

/// Cut free text to [`MAX_FREE_TEXT_BYTES`], at the last character boundary within them. Only
/// once it is scrubbed: cut first, a card number or address split by the cut
/// (`jane.doe@exam`) would no longer match its detector.
fn cut_free_text(text: &mut Option<String>) {
    if let Some(text) = text.as_mut()
        && text.len() > MAX_FREE_TEXT_BYTES
    {
        text.truncate(text.floor_char_boundary(MAX_FREE_TEXT_BYTES));
    }
}

/// The shape of the `content` column.
#[derive(Serialize)]
struct RetainedContent<'a> {
    input: Option<&'a str>,
    output: Option<&'a str>,
}

/// Prices, fingerprints and scrubs events; shared by all pipeline workers.
#[derive(Debug, Clone)]
pub struct Enricher {
    /// Prices and model facts, with a memo of the model names resolved.
    models: ModelResolver,
    /// Per-app content policies, keyed by app id; looked up for every event that carries content.
    policies: FastHashMap<String, ContentPolicy>,
    /// Policy for apps without their own.
    default_policy: ContentPolicy,
    /// PII detector for retained content.
    scrubber: Scrubber,
    /// The same detector behind a memo, for the identity and label fields of every event.
    identity: IdentityScrubber,
    /// The secret content fingerprints are keyed with, so that the lake alone cannot confirm a
    /// guessed text; `None` keeps them unkeyed, as the lake's older rows are.
    fingerprint_key: Option<FingerprintKey>,
}

impl Enricher {
    /// An enricher over a registry with per-app content policies.
    pub fn new(
        registry: Arc<ModelRegistry>,
        policies: HashMap<String, ContentPolicy>,
        default_policy: ContentPolicy,
    ) -> Self {
        let scrubber = Scrubber::new();
        Self {
            models: ModelResolver::new(registry),
            policies: policies.into_iter().collect(),
            default_policy,
            scrubber,
            identity: IdentityScrubber::new(scrubber),
            fingerprint_key: None,
        }
    }

    /// The same enricher with its content fingerprints keyed by `key` (`[fingerprint]` in the
    /// config), or unkeyed for `None`.
    pub fn with_fingerprint_key(mut self, key: Option<FingerprintKey>) -> Self {
        self.fingerprint_key = key;
        self
    }

    /// Enriches one event in place.
    ///
    /// Scrubs PII from its identity and label fields, before anything reads
    /// them; prices it (leaving `cost_usd` untouched when the model or price is
    /// unknown); fingerprints content whenever present, even when retention
    /// is off; when the app's policy retains content, sets `content` to JSON
    /// `{"input":..,"output":..}`, scrubbed unless the policy says not to;
    /// always clears `input_content` and `output_content` so raw text never
    /// reaches the lake.
    pub fn enrich(&self, event: &mut InferenceEvent) {
        self.scrub_identity(event);
        self.enrich_identified(event);
    }

    /// [`enrich`](Self::enrich) for an event whose identity [`scrub_identity`](Self::scrub_identity)
    /// has made what the lake keeps: the pipeline scrubs it first, so that a producer's retry is
    /// recognised by the app name as stored (trimmed, in NFC) before the rest is spent on it.
    pub fn enrich_identified(&self, event: &mut InferenceEvent) {
        if let Some(priced) = price_event_with(event, |model, provider| self.models.lookup(model, provider)) {
            event.cost_usd = Some(priced.cost_usd);
            event.price_version = Some(priced.price_version);
        }
        let input = event.input_content.take();
        let output = event.output_content.take();
        // Output fingerprints describe the answer's text, so it hashes the same whether it came
        // as plain text or in a message list; the input hash is of the whole input, whose tool
        // results and roles tell inputs apart. Retained content keeps what was sent.
        if let Some(input) = input.as_deref() {
            event.input_hash = Some(self.content_hash(input));
        }
        if let Some(output) = output.as_deref() {
            let output = message_text(output);
            event.output_hash = Some(self.content_hash(&output));
            event.output_simhash = Some(match &self.fingerprint_key {
                Some(key) => keyed_simhash64(key, &output),
                None => simhash64(&output),
            });
            event.output_chars = i64::try_from(output.chars().count()).ok();
        }
        if input.is_none() && output.is_none() {
            return;
        }
        let policy = self.policies.get(&event.app).copied().unwrap_or(self.default_policy);
        if !policy.retain_content {
            return;
        }
        let input = input.as_deref().map(|text| self.retained_text(text, policy));
        let output = output.as_deref().map(|text| self.retained_text(text, policy));
        let retained = RetainedContent { input: input.as_deref(), output: output.as_deref() };
        // Serialising two optional strings cannot fail; if it ever did, keeping
        // nothing is the safe side of the retention policy.
        event.content = serde_json::to_string(&retained).ok();
    }

    /// `input_hash` or `output_hash` of a text, under the key when there is one.
    fn content_hash(&self, text: &str) -> String {
        match &self.fingerprint_key {
            Some(key) => keyed_content_hash(key, text),
            None => content_hash(text),
        }
    }

    /// Scrubs PII from an event's identity and label fields, which are
    /// stored and exported as metric labels whatever the content policy
    /// (the app also names its lake folder), so a producer that puts an
    /// email in `environment` or a card number in `prompt_version` must not
    /// get it persisted (DESIGN §10). `error_type` may be a span's free-text
    /// status message.
    ///
    /// Ids (`event_id`, `trace_id`, `span_id`, `response_id`) are left as
    /// they are: they are dedup and feedback join keys, and a masked id would
    /// join unrelated events; they are opaque hex or provider ids, not labels.
    pub fn scrub_identity(&self, event: &mut InferenceEvent) {
        let mut fields = self.identity.session();
        let app_changed = fields.scrub(&mut event.app);
        fields.scrub(&mut event.operation);
        for field in [
            &mut event.environment,
            &mut event.provider,
            &mut event.request_model,
            &mut event.response_model,
            &mut event.prompt_id,
            &mut event.finish_reason,
            &mut event.service_tier,
            &mut event.golden_case,
            &mut event.error_type,
        ] {
            fields.scrub_opt(field);
        }
        fields.scrub_version(&mut event.prompt_version);
        drop(fields);
        cut_free_text(&mut event.error_type);
        if app_changed {
            fit_partition_value(&mut event.app);
        }
    }

    /// Makes a feedback event safe to keep: PII is scrubbed from its identity
    /// and label fields, and from its label, which is free text from the
    /// evaluator or the user; all are stored whatever the content policy.
    ///
    /// Ids (`feedback_id`, `trace_id`, `span_id`, `response_id`,
    /// `inference_id`) are left as they are: they are the dedup and join keys
    /// that find the evaluated inference.
    pub fn enrich_feedback(&self, feedback: &mut FeedbackEvent) {
        let mut fields = self.identity.session();
        fields.scrub(&mut feedback.app);
        fields.scrub(&mut feedback.name);
        for field in [
            &mut feedback.environment,
            &mut feedback.response_model,
            &mut feedback.provider,
            &mut feedback.operation,
            &mut feedback.prompt_id,
            &mut feedback.score_label,
        ] {
            fields.scrub_opt(field);
        }
        fields.scrub_version(&mut feedback.prompt_version);
        drop(fields);
        cut_free_text(&mut feedback.score_label);
    }

    /// The copy of one side's text that may be kept under `policy`. Content is
    /// often a JSON message list (`gen_ai.input.messages`), whose escapes hide
    /// PII from a plain-text pass, so JSON is scrubbed string by string.
    /// Inline binary payloads are elided first ([`blobs`]): the scrubber cannot see into them.
    fn retained_text<'a>(&self, text: &'a str, policy: ContentPolicy) -> Cow<'a, str> {
        if !policy.scrub_pii {
            return Cow::Borrowed(text);
        }
        match blobs::elide_blobs(text) {
            Cow::Borrowed(text) => self.scrubber.scrub_json(text),
            Cow::Owned(elided) => Cow::Owned(self.scrubber.scrub_json(&elided).into_owned()),
        }
    }

    /// The registry prices come from, for governance checks downstream.
    pub fn registry(&self) -> &ModelRegistry {
        self.models.registry()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLWJ5dGVz";

    fn enricher() -> Result<Enricher, RegistryError> {
        let policies = HashMap::from([
            ("support-bot".to_owned(), ContentPolicy { retain_content: true, scrub_pii: true }),
            ("synthetic-evals".to_owned(), ContentPolicy { retain_content: true, scrub_pii: false }),
        ]);
        Ok(Enricher::new(Arc::new(ModelRegistry::default_embedded()?), policies, ContentPolicy::default()))
    }

    fn event(app: &str) -> InferenceEvent {
        InferenceEvent {
            app: app.to_owned(),
            provider: Some("openai".to_owned()),
            response_model: Some("gpt-4o-mini-2024-07-18".to_owned()),
            // 2026-03-01T00:00:00Z
            time: 1_772_323_200_000_000_000,
            input_tokens: Some(2_000),
            cache_read_tokens: Some(1_000),
            output_tokens: Some(500),
            input_content: Some(format!(
                "My email is jane@example.com, card 4111 1111 1111 1111, key sk-proj-abcdEFGH1234ijklMNOP5678, \
                 token {JWT}. Where is my parcel?"
            )),
            output_content: Some("Your parcel ships  today.".to_owned()),
            ..InferenceEvent::default()
        }
    }

    #[test]
    fn default_policy_keeps_fingerprints_only() -> TestResult {
        let enricher = enricher()?;
        let mut e = event("checkout");
        let raw_input = e.input_content.clone().ok_or("no input")?;
        enricher.enrich(&mut e);
        assert_eq!(e.input_content, None);
        assert_eq!(e.output_content, None);
        assert_eq!(e.content, None);
        assert_eq!(e.input_hash, Some(content_hash(&raw_input)));
        assert_eq!(e.output_hash, Some(content_hash("Your parcel ships today.")));
        assert_eq!(e.output_simhash, Some(simhash64("Your parcel ships today.")));
        assert_eq!(e.output_chars, Some(25));
        let cost = e.cost_usd.ok_or("not priced")?;
        assert!((cost - (1_000.0 * 0.15 + 1_000.0 * 0.075 + 500.0 * 0.60) / 1e6).abs() < 1e-12, "{cost}");
        assert_eq!(e.price_version.as_deref(), Some("gpt-4o-mini@2024-07-18"));
        Ok(())
    }

    #[test]
    fn a_keyed_enricher_writes_keyed_fingerprints() -> TestResult {
        let key = FingerprintKey::from_hex("8c1f0e7d2b3a49586776a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0")?;
        let keyed = enricher()?.with_fingerprint_key(Some(key.clone()));
        let answer = "Your parcel ships today.";
        let mut e = event("checkout");
        let raw_input = e.input_content.clone().ok_or("no input")?;
        keyed.enrich(&mut e);
        assert_eq!(e.input_hash, Some(keyed_content_hash(&key, &raw_input)));
        assert_eq!(e.output_hash, Some(keyed_content_hash(&key, answer)));
        assert_eq!(e.output_simhash, Some(keyed_simhash64(&key, answer)));
        assert_ne!(e.input_hash, Some(content_hash(&raw_input)), "the unkeyed hash of a guess must not match");
        assert_ne!(e.output_hash, Some(content_hash(answer)));
        assert_ne!(e.output_simhash, Some(simhash64(answer)));
        assert_eq!(e.output_chars, Some(25));
        assert_eq!(e.input_content, None);
        // An answer in a message list keeps the keyed fingerprints of its text.
        let mut listed = event("checkout");
        listed.output_content = Some(
            r#"[{"role":"assistant","parts":[{"type":"text","content":"Your parcel ships  today."}]}]"#.to_owned(),
        );
        keyed.enrich(&mut listed);
        assert_eq!((listed.output_hash, listed.output_simhash), (e.output_hash.clone(), e.output_simhash));
        let debug = format!("{keyed:?}");
        assert!(debug.contains("fingerprint_key: Some(FingerprintKey(<redacted>))"), "{debug}");
        assert!(!debug.contains("8c1f0e7d"), "the key shows in the enricher's Debug: {debug}");
        Ok(())
    }

    #[test]
    fn an_answer_in_a_message_list_has_the_output_fingerprints_of_its_text() -> TestResult {
        let enricher = enricher()?;
        let mut plain = event("support-bot");
        let mut listed = event("support-bot");
        listed.input_content = plain.input_content.as_deref().map(|text| {
            serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": text}]}]).to_string()
        });
        listed.output_content = Some(
            r#"[{"role":"assistant","parts":[{"type":"text","content":"Your parcel ships  today."}],"finish_reason":"stop"}]"#
                .to_owned(),
        );
        let sent = listed.output_content.clone().ok_or("no output")?;
        enricher.enrich(&mut plain);
        enricher.enrich(&mut listed);
        let fingerprints = |e: &InferenceEvent| (e.output_hash.clone(), e.output_simhash, e.output_chars);
        assert_eq!(fingerprints(&listed), fingerprints(&plain));
        assert_ne!(listed.input_hash, plain.input_hash, "an input is hashed whole");
        assert_eq!(listed.output_chars, Some(25));
        let kept: serde_json::Value = serde_json::from_str(listed.content.as_deref().ok_or("content not retained")?)?;
        assert_eq!(kept["output"], sent.as_str(), "retained content keeps what was sent");
        Ok(())
    }

    #[test]
    fn retained_content_is_scrubbed_json() -> TestResult {
        let enricher = enricher()?;
        let mut e = event("support-bot");
        enricher.enrich(&mut e);
        assert_eq!(e.input_content, None);
        assert_eq!(e.output_content, None);
        let content = e.content.ok_or("content not retained")?;
        for secret in ["jane@example.com", "4111 1111 1111 1111", "sk-proj-abcdEFGH1234ijklMNOP5678", JWT, "eyJ"] {
            assert!(!content.contains(secret), "{secret} leaked into {content}");
        }
        let value: serde_json::Value = serde_json::from_str(&content)?;
        assert_eq!(
            value["input"],
            "My email is [EMAIL], card [CARD_NUMBER], key [API_KEY], token [JWT]. Where is my parcel?"
        );
        assert_eq!(value["output"], "Your parcel ships  today.");
        Ok(())
    }

    #[test]
    fn pii_behind_json_escapes_in_message_lists_is_scrubbed() -> TestResult {
        let enricher = enricher()?;
        let messages = r#"[{"role":"user","parts":[{"type":"text","content":"My card:\n4111 1111 1111 1111\nPhone:\n555-123-4567\nIP:\n10.1.2.3\tmail:\tjane\u0040example.com"}]}]"#;
        // The older flat `gen_ai.prompt` plain text.
        let flat = "My card:\n4111 1111 1111 1111\nPhone: 555-123-4567, IP 10.1.2.3";
        let mut e = event("support-bot");
        e.input_content = Some(messages.to_owned());
        e.output_content = Some(flat.to_owned());
        enricher.enrich(&mut e);
        let content = e.content.ok_or("content not retained")?;
        let value: serde_json::Value = serde_json::from_str(&content)?;
        let input = value["input"].as_str().ok_or("no input")?;
        let output = value["output"].as_str().ok_or("no output")?;
        for secret in ["4111", "555-123-4567", "10.1.2.3", "jane", "example.com"] {
            assert!(!input.contains(secret) && !output.contains(secret), "{secret} leaked into {content}");
        }
        // The message list is still JSON, with the placeholders in the decoded text.
        let messages: serde_json::Value = serde_json::from_str(input)?;
        assert_eq!(
            messages[0]["parts"][0]["content"],
            "My card:\n[CARD_NUMBER]\nPhone:\n[PHONE]\nIP:\n[IP_ADDRESS]\tmail:\t[EMAIL]"
        );
        assert_eq!(output, "My card:\n[CARD_NUMBER]\nPhone: [PHONE], IP [IP_ADDRESS]");
        Ok(())
    }

    #[test]
    fn free_text_error_types_and_feedback_labels_are_scrubbed() -> TestResult {
        let enricher = enricher()?;
        // The default policy keeps no content; these fields are kept regardless.
        let mut e = event("checkout");
        e.error_type = Some("quota exceeded for jane@example.com from 10.1.2.3".to_owned());
        enricher.enrich(&mut e);
        assert_eq!(e.error_type.as_deref(), Some("quota exceeded for [EMAIL] from [IP_ADDRESS]"));
        let mut e = event("checkout");
        e.error_type = Some("RateLimitError".to_owned());
        enricher.enrich(&mut e);
        assert_eq!(e.error_type.as_deref(), Some("RateLimitError"));

        let mut feedback = FeedbackEvent {
            name: "user_thumbs".to_owned(),
            score_label: Some("down: call me on 415-555-2671".to_owned()),
            ..FeedbackEvent::default()
        };
        enricher.enrich_feedback(&mut feedback);
        assert_eq!(feedback.score_label.as_deref(), Some("down: call me on [PHONE]"));
        Ok(())
    }

    /// The security audit's findings: PII a producer put in identity and label fields.
    #[test]
    fn pii_in_identity_and_label_fields_is_masked() -> TestResult {
        let enricher = enricher()?;
        let mut e = event("jane.doe@example.com");
        e.environment = Some("prod call 415-555-2671".to_owned());
        e.request_model = Some("gpt-4o user=jane.doe@example.com".to_owned());
        e.prompt_id = Some("ssn 123-45-6789".to_owned());
        e.prompt_version = Some("card 4111 1111 1111 1111".to_owned());
        e.finish_reason = Some("stop jane.doe@example.com".to_owned());
        e.golden_case = Some("IBAN DE89370400440532013000".to_owned());
        e.provider = Some("openai 10.1.2.3".to_owned());
        e.operation = "chat for jane.doe@example.com".to_owned();
        e.error_type = Some("RateLimitError 415-555-2671".to_owned());
        // Ids are join keys and stay as sent.
        e.event_id = "jane.doe@example.com".to_owned();
        e.response_id = Some("chatcmpl-jane.doe@example.com".to_owned());
        // Twice: the second pass is served by the memo.
        for _ in 0..2 {
            let mut e = e.clone();
            e.response_model = Some("gpt-4o-mini-2024-07-18 jane.doe@example.com".to_owned());
            enricher.enrich(&mut e);
            assert_eq!(e.app, "[EMAIL]");
            assert_eq!(e.environment.as_deref(), Some("prod call [PHONE]"));
            assert_eq!(e.request_model.as_deref(), Some("gpt-4o user=[EMAIL]"));
            assert_eq!(e.response_model.as_deref(), Some("gpt-4o-mini-2024-07-18 [EMAIL]"));
            assert_eq!(e.prompt_id.as_deref(), Some("ssn [NATIONAL_ID]"));
            assert_eq!(e.prompt_version.as_deref(), Some("card [CARD_NUMBER]"));
            assert_eq!(e.finish_reason.as_deref(), Some("stop [EMAIL]"));
            assert_eq!(e.golden_case.as_deref(), Some("IBAN [IBAN]"));
            assert_eq!(e.provider.as_deref(), Some("openai [IP_ADDRESS]"));
            assert_eq!(e.operation, "chat for [EMAIL]");
            assert_eq!(e.error_type.as_deref(), Some("RateLimitError [PHONE]"));
            assert_eq!(e.event_id, "jane.doe@example.com");
            assert_eq!(e.response_id.as_deref(), Some("chatcmpl-jane.doe@example.com"));
        }

        let mut feedback = FeedbackEvent {
            feedback_id: "fb-jane.doe@example.com".to_owned(),
            app: "jane.doe@example.com".to_owned(),
            environment: Some("prod call 415-555-2671".to_owned()),
            name: "thumbs from jane.doe@example.com".to_owned(),
            score_label: Some("down 123-45-6789".to_owned()),
            inference_id: Some("jane.doe@example.com".to_owned()),
            response_model: Some("gpt-4o user=jane.doe@example.com".to_owned()),
            provider: Some("openai 10.1.2.3".to_owned()),
            operation: Some("chat 415-555-2671".to_owned()),
            prompt_id: Some("ssn 123-45-6789".to_owned()),
            prompt_version: Some("card 4111 1111 1111 1111".to_owned()),
            ..FeedbackEvent::default()
        };
        enricher.enrich_feedback(&mut feedback);
        assert_eq!(feedback.app, "[EMAIL]");
        assert_eq!(feedback.environment.as_deref(), Some("prod call [PHONE]"));
        assert_eq!(feedback.name, "thumbs from [EMAIL]");
        assert_eq!(feedback.score_label.as_deref(), Some("down [NATIONAL_ID]"));
        assert_eq!(feedback.response_model.as_deref(), Some("gpt-4o user=[EMAIL]"));
        assert_eq!(feedback.provider.as_deref(), Some("openai [IP_ADDRESS]"));
        assert_eq!(feedback.operation.as_deref(), Some("chat [PHONE]"));
        assert_eq!(feedback.prompt_id.as_deref(), Some("ssn [NATIONAL_ID]"));
        assert_eq!(feedback.prompt_version.as_deref(), Some("card [CARD_NUMBER]"));
        assert_eq!(feedback.feedback_id, "fb-jane.doe@example.com");
        assert_eq!(feedback.inference_id.as_deref(), Some("jane.doe@example.com"));
        Ok(())
    }

    #[test]
    fn real_identity_values_are_kept_and_priced() -> TestResult {
        let enricher = enricher()?;
        let mut e = event("checkout");
        e.environment = Some("us-east-1".to_owned());
        e.operation = "chat".to_owned();
        e.request_model = Some("gpt-4o-mini".to_owned());
        e.prompt_id = Some("refund_policy".to_owned());
        e.prompt_version = Some("2024-11-05".to_owned());
        e.finish_reason = Some("tool_calls".to_owned());
        e.golden_case = Some("golden-0042".to_owned());
        let sent = e.clone();
        enricher.enrich(&mut e);
        let identity = |e: &InferenceEvent| {
            (
                e.app.clone(),
                e.environment.clone(),
                e.provider.clone(),
                e.operation.clone(),
                e.request_model.clone(),
                e.response_model.clone(),
                e.prompt_id.clone(),
                e.prompt_version.clone(),
                e.finish_reason.clone(),
                e.golden_case.clone(),
            )
        };
        assert_eq!(identity(&e), identity(&sent));
        assert_eq!(e.price_version.as_deref(), Some("gpt-4o-mini@2024-07-18"));
        Ok(())
    }

    /// A masked app can be longer than the raw one, which decode checked against the lake's
    /// folder name limit; it is cut to fit instead of failing every flush.
    #[test]
    fn a_scrubbed_app_still_fits_a_lake_folder_name() -> TestResult {
        let enricher = enricher()?;
        // 17 addresses of 9 bytes: 153 bytes raw, each masked as `[IP_ADDRESS]` (16 escaped bytes).
        let app = (0..17).map(|i| format!("10.1.2.{}", 10 + i)).collect::<Vec<_>>().join(" ");
        assert!(escaped_path_value_len(&app) <= MAX_ESCAPED_PARTITION_VALUE_BYTES);
        let mut e = event(&app);
        enricher.enrich(&mut e);
        assert!(e.app.starts_with("[IP_ADDRESS] [IP_ADDRESS]"), "{}", e.app);
        assert!(!e.app.contains("10.1"), "{}", e.app);
        let escaped = escaped_path_value_len(&e.app);
        assert!(
            (MAX_ESCAPED_PARTITION_VALUE_BYTES - 3..=MAX_ESCAPED_PARTITION_VALUE_BYTES).contains(&escaped),
            "{escaped} bytes: {}",
            e.app
        );
        Ok(())
    }

    #[test]
    fn unscrubbed_policy_and_missing_sides() -> TestResult {
        let enricher = enricher()?;
        let mut e = event("synthetic-evals");
        let raw_input = e.input_content.clone();
        e.output_content = None;
        enricher.enrich(&mut e);
        let value: serde_json::Value = serde_json::from_str(e.content.as_deref().ok_or("no content")?)?;
        assert_eq!(value["input"].as_str(), raw_input.as_deref());
        assert!(value["output"].is_null());
        assert_eq!((e.output_hash, e.output_simhash, e.output_chars), (None, None, None));

        // No content at all: nothing to retain, and fingerprints from the decoder are kept.
        let mut e = event("support-bot");
        e.input_content = None;
        e.output_content = None;
        e.input_hash = Some("from-decoder".to_owned());
        e.response_model = Some("unknown-model".to_owned());
        enricher.enrich(&mut e);
        assert_eq!(e.content, None);
        assert_eq!(e.input_hash.as_deref(), Some("from-decoder"));
        assert_eq!((e.cost_usd, e.price_version), (None, None));
        assert!(enricher.registry().lookup("gpt-4o", None).is_some());
        Ok(())
    }

    /// An image sent inline holds what the scrubber cannot read (the audit's base64 decoded to
    /// an email and an SSN): scrubbed retained content keeps its size, not its bytes; content
    /// retained unscrubbed keeps it as sent. The fingerprints are of the content as sent.
    #[test]
    fn inline_blobs_are_elided_from_scrubbed_retained_content() -> TestResult {
        let enricher = enricher()?;
        let blob = "amFuZS5kb2VAZXhhbXBsZS5jb20gU1NOIDEyMy00NS02Nzg5".repeat(8);
        let input = format!(
            r#"[{{"role":"user","parts":[{{"type":"text","content":"my id"}},{{"type":"blob","mime_type":"image/png","content":"{blob}"}}]}}]"#
        );
        let mut scrubbed = event("support-bot");
        scrubbed.input_content = Some(input.clone());
        let mut raw = event("synthetic-evals");
        raw.input_content = Some(input.clone());
        enricher.enrich(&mut scrubbed);
        enricher.enrich(&mut raw);
        let kept: serde_json::Value = serde_json::from_str(scrubbed.content.as_deref().ok_or("no content")?)?;
        let kept = kept["input"].as_str().ok_or("no input")?;
        assert!(!kept.contains(&blob[..64]) && kept.contains("[BLOB 288 bytes]") && kept.contains("my id"), "{kept}");
        let raw_kept: serde_json::Value = serde_json::from_str(raw.content.as_deref().ok_or("no content")?)?;
        assert_eq!(raw_kept["input"].as_str(), Some(input.as_str()));
        assert_eq!(scrubbed.input_hash, raw.input_hash);
        Ok(())
    }

    #[test]
    fn free_text_is_cut_once_scrubbed_at_a_character_boundary() -> TestResult {
        let enricher = enricher()?;
        // Two-byte characters after one ASCII byte: the bound falls inside one.
        let long = format!("E{}", "é".repeat(400));
        let mut e = event("a");
        e.error_type = Some(long.clone());
        enricher.enrich(&mut e);
        let error_type = e.error_type.as_deref().unwrap_or_default();
        assert_eq!(error_type.len(), MAX_FREE_TEXT_BYTES - 1);
        assert!(long.starts_with(error_type));

        // An address across the bound is masked whole, not cut into a fragment no detector finds.
        let across = format!("{} jane.doe@example.com", "x".repeat(MAX_FREE_TEXT_BYTES - 14));
        let mut feedback = FeedbackEvent { score_label: Some(across), ..FeedbackEvent::default() };
        enricher.enrich_feedback(&mut feedback);
        let label = feedback.score_label.as_deref().unwrap_or_default();
        assert_eq!(label, format!("{} [EMAIL]", "x".repeat(MAX_FREE_TEXT_BYTES - 14)));
        Ok(())
    }
}
