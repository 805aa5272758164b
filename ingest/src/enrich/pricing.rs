//! Pricing: tokens x the registry price in force at the event's time (DESIGN §4).
//!
//! An [`InferenceEvent`] with token counts enters [`price_event`]; the model is
//! resolved in the [`ModelRegistry`] (the response model, or the request model
//! when no response model was reported), the latest price whose `effective_from` is not after the
//! event's time is applied (at the rates of the service tier that served the call, where the
//! price lists that tier), and the cost leaves with the price version (`<id>@<date>`, plus
//! `+<tier>` for a tier's rates) so it can be recomputed if a price was wrong.

use chrono::{DateTime, Utc};
use driftwatch_lake::model::InferenceEvent;

use super::registry::{ModelEntry, ModelRegistry, Price, Rates};

/// Tokens per unit of the registry's prices.
const TOKENS_PER_PRICE_UNIT: f64 = 1_000_000.0;

/// A computed cost and the registry price that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Priced {
    /// Cost of the call in USD.
    pub cost_usd: f64,
    /// `<model id>@<effective_from date>`, with `+<tier>` when a service tier's rates applied,
    /// stored with the event so the cost can be recomputed.
    pub price_version: String,
}

/// Prices one event, or `None` when it has no token counts, its model is not
/// registered, or it happened before the model's first price.
///
/// The model is the response model, the one that answered (OTel GenAI: "the exact name of
/// the model actually used"); the request model stands in only when none is reported. An
/// unregistered response model leaves the call unpriced, and so counted as such, rather than
/// priced as the model requested: a fine-tune (`ft:gpt-4o-...`) or a provider's substitute is
/// billed at its own price.
///
/// Cost = (input - cache_read - cache_write) x input price + cache_read x cached price +
/// cache_write x cache-write price + output x output price, per 1M tokens. Input tokens
/// include those read from and written to the provider's cache (OTel GenAI semantics);
/// reasoning tokens are part of the output tokens (OpenAI semantics) and are not added again.
/// The cached and cache-write prices default to the input price.
pub fn price_event(registry: &ModelRegistry, event: &InferenceEvent) -> Option<Priced> {
    price_event_with(event, |model, provider| registry.lookup(model, provider))
}

/// [`price_event`] with the model resolved by `lookup` (a [`ModelResolver`](super::ModelResolver),
/// whose memo spares the registry's walk over a snapshot name's suffixes).
pub fn price_event_with<'r>(
    event: &InferenceEvent,
    lookup: impl FnOnce(&str, Option<&str>) -> Option<&'r ModelEntry>,
) -> Option<Priced> {
    if !event.reports_tokens() {
        return None;
    }
    let provider = event.provider.as_deref();
    let model = event.response_model.as_deref().or(event.request_model.as_deref())?;
    let entry = lookup(model, provider)?;
    let price = price_at(entry, event.time)?;
    let tier = event.service_tier.as_deref().and_then(|tier| price.service_tiers.get(tier));
    let (rates, version) = match (tier, &price.long_context) {
        // A listed tier's rates bill the whole call, whatever its prompt size.
        (Some(tier), _) => (tier.rates(), &tier.version),
        // A prompt above the long-context threshold bills every token of the call at that tier.
        (None, Some(long)) if event.input_tokens.unwrap_or(0) > long.above_input_tokens => {
            (long.rates(), &price.version)
        }
        (None, _) => (price.rates(), &price.version),
    };
    Some(Priced { cost_usd: cost_usd(rates, event), price_version: version.clone() })
}

/// The price in force at `time` (nanoseconds since the epoch): the latest one not starting after it.
fn price_at(entry: &ModelEntry, time: i64) -> Option<&Price> {
    let time = DateTime::<Utc>::from_timestamp_nanos(time);
    let after = entry.pricing.partition_point(|p| p.effective_from <= time);
    after.checked_sub(1).map(|i| &entry.pricing[i])
}

/// Applies one price to the event's token counts. Negative counts and more
/// cached (read and written) than input tokens never reach here from the decoders, which
/// reject them (`decode::validate`); they are clamped anyway for events built
/// elsewhere, so a bad row cannot earn money.
fn cost_usd(rates: Rates, event: &InferenceEvent) -> f64 {
    let input = event.input_tokens.unwrap_or(0).max(0);
    let cached = event.cache_read_tokens.unwrap_or(0).clamp(0, input);
    let written = event.cache_write_tokens.unwrap_or(0).clamp(0, input - cached);
    let output = event.output_tokens.unwrap_or(0).max(0);
    let (input_price, output_price) = (rates.input_per_mtok, rates.output_per_mtok);
    // The cached and cache-write rates default to the same rates' input rate.
    let (cached_price, write_price) =
        (rates.cached_input_per_mtok.unwrap_or(input_price), rates.cache_write_input_per_mtok.unwrap_or(input_price));
    // Token counts stay far below 2^53, so the conversions are exact.
    let dollars_per_unit = (input - cached - written) as f64 * input_price
        + cached as f64 * cached_price
        + written as f64 * write_price
        + output as f64 * output_price;
    dollars_per_unit / TOKENS_PER_PRICE_UNIT
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
      - {effective_from: 2024-08-06, input_per_mtok: 2.5, cached_input_per_mtok: 1.25, output_per_mtok: 10.0}
      - {effective_from: 2026-11-15, input_per_mtok: 2.0, cached_input_per_mtok: 1.0, output_per_mtok: 8.0}
    risk_level: high
  - id: claude-haiku-4-5
    provider: anthropic
    pricing:
      - {effective_from: 2025-10-15, input_per_mtok: 1.0, output_per_mtok: 5.0}
    risk_level: medium
"#;

    fn nanos(rfc3339: &str) -> std::result::Result<i64, Box<dyn std::error::Error>> {
        DateTime::parse_from_rfc3339(rfc3339)?.timestamp_nanos_opt().ok_or_else(|| "time out of range".into())
    }

    fn event(model: &str, time: i64, input: i64, cached: Option<i64>, output: i64) -> InferenceEvent {
        InferenceEvent {
            provider: Some("openai".to_owned()),
            response_model: Some(model.to_owned()),
            time,
            input_tokens: Some(input),
            cache_read_tokens: cached,
            output_tokens: Some(output),
            reasoning_tokens: Some(output / 2),
            ..InferenceEvent::default()
        }
    }

    fn assert_close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
    }

    #[test]
    fn cached_tokens_are_priced_at_the_cached_rate() -> TestResult {
        let registry = ModelRegistry::from_yaml_str(REGISTRY, "test.yaml")?;
        let e = event("gpt-4o-2024-08-06", nanos("2026-03-01T12:00:00Z")?, 10_000, Some(4_000), 1_000);
        let priced = price_event(&registry, &e).ok_or("not priced")?;
        // 6000 x 2.5 + 4000 x 1.25 + 1000 x 10 (reasoning included in output), per 1M.
        assert_close(priced.cost_usd, (6_000.0 * 2.5 + 4_000.0 * 1.25 + 1_000.0 * 10.0) / 1e6);
        assert_eq!(priced.price_version, "gpt-4o@2024-08-06");

        // Without a cached price the input price applies. More cached than input is rejected
        // by decode validation; an event that skipped it is clamped, never priced negative.
        let mut e = event("claude-haiku-4-5", nanos("2026-03-01T12:00:00Z")?, 1_000, Some(5_000), 100);
        e.provider = Some("anthropic".to_owned());
        let priced = price_event(&registry, &e).ok_or("not priced")?;
        assert_close(priced.cost_usd, (1_000.0 * 1.0 + 100.0 * 5.0) / 1e6);
        Ok(())
    }

    /// A prompt above 200k input tokens (cached ones included) bills the whole call at the
    /// long-context rates; at the threshold itself, the standard ones.
    #[test]
    fn long_prompts_are_priced_at_the_long_context_rates() -> TestResult {
        let registry = ModelRegistry::default_embedded()?;
        let sonnet = |input: i64, cached: i64, written: i64| {
            let mut e = event("claude-sonnet-4-5-20250929", 0, input, Some(cached), 1_000);
            e.time = nanos("2026-03-01T12:00:00Z").unwrap_or_default();
            e.provider = Some("anthropic".to_owned());
            e.cache_write_tokens = Some(written);
            price_event(&registry, &e).map(|priced| priced.cost_usd)
        };
        // 200 000 input tokens: the standard rates, 3.00 in / 0.30 read / 3.75 write / 15.00 out.
        let standard = (100_000.0 * 3.0 + 60_000.0 * 0.3 + 40_000.0 * 3.75 + 1_000.0 * 15.0) / 1e6;
        assert_close(sonnet(200_000, 60_000, 40_000).ok_or("not priced")?, standard);
        // One more: 6.00 / 0.60 / 7.50 / 22.50 for every token of the call.
        let long = (100_001.0 * 6.0 + 60_000.0 * 0.6 + 40_000.0 * 7.5 + 1_000.0 * 22.5) / 1e6;
        assert_close(sonnet(200_001, 60_000, 40_000).ok_or("not priced")?, long);

        let mut gemini = event("gemini-2.5-pro", nanos("2026-03-01T12:00:00Z")?, 300_000, Some(100_000), 2_000);
        gemini.provider = Some("gcp.vertex_ai".to_owned());
        let priced = price_event(&registry, &gemini).ok_or("not priced")?;
        assert_close(priced.cost_usd, (200_000.0 * 2.5 + 100_000.0 * 0.625 + 2_000.0 * 15.0) / 1e6);
        assert_eq!(priced.price_version, "gemini-2.5-pro@2025-06-17", "one price, two tiers");
        Ok(())
    }

    /// A call served in a tier the price lists (OpenAI's `flex`, half the standard rates) is
    /// billed at that tier's rates and says so in its price version; one in a tier the price
    /// does not list, or in none, at the standard rates. The tier's rates follow the price in
    /// force, as the standard ones do.
    #[test]
    fn calls_are_priced_at_the_rates_of_the_service_tier_that_served_them() -> TestResult {
        let registry = ModelRegistry::default_embedded()?;
        let o3 = |time: &str, tier: Option<&str>| -> std::result::Result<Priced, Box<dyn std::error::Error>> {
            let mut e = event("o3-2025-04-16", nanos(time)?, 10_000, Some(4_000), 2_000);
            e.service_tier = tier.map(str::to_owned);
            price_event(&registry, &e).ok_or_else(|| "not priced".into())
        };
        // After the 2025-06-10 cut: standard 2.00 / 0.50 / 8.00, flex 1.00 / 0.25 / 4.00,
        // priority 3.50 / 0.875 / 14.00.
        let at = "2026-03-01T12:00:00Z";
        let standard = o3(at, None)?;
        assert_close(standard.cost_usd, (6_000.0 * 2.0 + 4_000.0 * 0.5 + 2_000.0 * 8.0) / 1e6);
        assert_eq!(standard.price_version, "o3@2025-06-10");
        let flex = o3(at, Some("flex"))?;
        assert_close(flex.cost_usd, (6_000.0 * 1.0 + 4_000.0 * 0.25 + 2_000.0 * 4.0) / 1e6);
        assert_eq!(flex.price_version, "o3@2025-06-10+flex");
        let priority = o3(at, Some("priority"))?;
        assert_close(priority.cost_usd, (6_000.0 * 3.5 + 4_000.0 * 0.875 + 2_000.0 * 14.0) / 1e6);
        assert_eq!(priority.price_version, "o3@2025-06-10+priority");
        for standard_tier in ["default", "scale"] {
            assert_eq!(o3(at, Some(standard_tier))?, standard, "{standard_tier} is billed at the standard rates");
        }
        // Before the cut the launch price's own flex rates apply.
        let launch_flex = o3("2025-05-01T00:00:00Z", Some("flex"))?;
        assert_close(launch_flex.cost_usd, (6_000.0 * 5.0 + 4_000.0 * 1.25 + 2_000.0 * 20.0) / 1e6);
        assert_eq!(launch_flex.price_version, "o3@2025-04-16+flex");
        // A price without tiers bills every tier at its rates.
        let mut mini = event("gpt-4o-mini", nanos(at)?, 1_000, None, 100);
        let plain = price_event(&registry, &mini).ok_or("not priced")?;
        mini.service_tier = Some("flex".to_owned());
        assert_eq!(price_event(&registry, &mini).ok_or("not priced")?, plain);
        Ok(())
    }

    /// The pricing audit's call: Sonnet 4.5, 200 uncached input tokens and 100 000 written to the
    /// prompt cache, 500 output tokens. Anthropic bills $0.3831; priced as plain input it was
    /// $0.3081.
    #[test]
    fn cache_writes_are_priced_at_the_cache_write_rate() -> TestResult {
        let registry = ModelRegistry::default_embedded()?;
        let mut e = event("claude-sonnet-4-5-20250929", nanos("2026-03-01T12:00:00Z")?, 100_200, None, 500);
        e.provider = Some("anthropic".to_owned());
        e.cache_write_tokens = Some(100_000);
        let priced = price_event(&registry, &e).ok_or("not priced")?;
        // 200 x 3.00 + 100 000 x 3.75 + 500 x 15.00, per 1M.
        assert_close(priced.cost_usd, 0.3831);
        assert_eq!(priced.price_version, "claude-sonnet-4-5@2025-09-29");

        // Reads and writes of one call, each at its own price.
        e.cache_read_tokens = Some(50_000);
        e.input_tokens = Some(150_200);
        let priced = price_event(&registry, &e).ok_or("not priced")?;
        assert_close(priced.cost_usd, (200.0 * 3.0 + 50_000.0 * 0.3 + 100_000.0 * 3.75 + 500.0 * 15.0) / 1e6);

        // Without a cache-write price the input price applies. More cached than input is
        // rejected by decode validation; an event that skipped it is clamped to its input
        // tokens, reads first, never priced negative.
        let registry = ModelRegistry::from_yaml_str(REGISTRY, "test.yaml")?;
        let mut e = event("gpt-4o", nanos("2026-03-01T12:00:00Z")?, 10_000, Some(4_000), 1_000);
        e.cache_write_tokens = Some(2_000);
        let priced = price_event(&registry, &e).ok_or("not priced")?;
        assert_close(priced.cost_usd, (4_000.0 * 2.5 + 4_000.0 * 1.25 + 2_000.0 * 2.5 + 1_000.0 * 10.0) / 1e6);
        e.cache_write_tokens = Some(9_000);
        let priced = price_event(&registry, &e).ok_or("not priced")?;
        assert_close(priced.cost_usd, (6_000.0 * 2.5 + 4_000.0 * 1.25 + 1_000.0 * 10.0) / 1e6);
        Ok(())
    }

    #[test]
    fn price_change_mid_month_splits_at_the_effective_instant() -> TestResult {
        let registry = ModelRegistry::from_yaml_str(REGISTRY, "test.yaml")?;
        let before = event("gpt-4o", nanos("2026-11-14T23:59:59.999Z")?, 1_000_000, None, 1_000_000);
        let at = event("gpt-4o", nanos("2026-11-15T00:00:00Z")?, 1_000_000, None, 1_000_000);
        let after = event("gpt-4o", nanos("2026-11-28T08:00:00Z")?, 1_000_000, None, 1_000_000);
        let before = price_event(&registry, &before).ok_or("not priced")?;
        let at = price_event(&registry, &at).ok_or("not priced")?;
        let after = price_event(&registry, &after).ok_or("not priced")?;
        assert_close(before.cost_usd, 12.5);
        assert_eq!(before.price_version, "gpt-4o@2024-08-06");
        assert_close(at.cost_usd, 10.0);
        assert_eq!(at.price_version, "gpt-4o@2026-11-15");
        assert_eq!(after, at);
        Ok(())
    }

    #[test]
    fn unpriceable_events_get_none() -> TestResult {
        let registry = ModelRegistry::from_yaml_str(REGISTRY, "test.yaml")?;
        let time = nanos("2026-03-01T00:00:00Z")?;
        assert_eq!(price_event(&registry, &event("mystery-model", time, 10, None, 10)), None);
        let early = event("gpt-4o", nanos("2023-01-01T00:00:00Z")?, 10, None, 10);
        assert_eq!(price_event(&registry, &early), None);
        let mut no_tokens = event("gpt-4o", time, 0, None, 0);
        no_tokens.input_tokens = None;
        no_tokens.output_tokens = None;
        assert_eq!(price_event(&registry, &no_tokens), None);
        let mut wrong_provider = event("gpt-4o", time, 10, None, 10);
        wrong_provider.provider = Some("anthropic".to_owned());
        assert_eq!(price_event(&registry, &wrong_provider), None);
        Ok(())
    }

    #[test]
    fn a_newer_model_of_a_family_is_not_priced_as_its_stem() -> TestResult {
        // Opus 4.5 costs a third of Opus 4: priced as Opus 4 it was overcharged threefold.
        let opus_4 = "models:\n  - id: claude-opus-4\n    provider: anthropic\n    risk_level: high\n    pricing:\n      \
                      - {effective_from: 2025-05-22, input_per_mtok: 15.0, output_per_mtok: 75.0}\n";
        let opus_4_5 = "  - id: claude-opus-4-5\n    provider: anthropic\n    risk_level: high\n    pricing:\n      \
                        - {effective_from: 2025-11-24, input_per_mtok: 5.0, output_per_mtok: 25.0}\n";
        let time = nanos("2026-03-01T00:00:00Z")?;
        let call = |model: &str| {
            let mut e = event(model, time, 1_000_000, None, 0);
            e.provider = Some("anthropic".to_owned());
            e
        };
        let registry = ModelRegistry::from_yaml_str(opus_4, "test.yaml")?;
        assert_eq!(price_event(&registry, &call("claude-opus-4-5-20251101")), None);
        assert_eq!(price_event(&registry, &call("claude-opus-4-1")), None);
        assert_close(price_event(&registry, &call("claude-opus-4-20250514")).ok_or("not priced")?.cost_usd, 15.0);

        let registry = ModelRegistry::from_yaml_str(&format!("{opus_4}{opus_4_5}"), "test.yaml")?;
        let priced = price_event(&registry, &call("claude-opus-4-5-20251101")).ok_or("not priced")?;
        assert_close(priced.cost_usd, 5.0);
        assert_eq!(priced.price_version, "claude-opus-4-5@2025-11-24");
        Ok(())
    }

    #[test]
    fn request_model_stands_in_only_without_a_response_model() -> TestResult {
        let registry = ModelRegistry::from_yaml_str(REGISTRY, "test.yaml")?;
        let mut e = event("gpt-4o", nanos("2026-03-01T00:00:00Z")?, 1_000_000, None, 0);
        e.response_model = None;
        e.request_model = Some("gpt-4o".to_owned());
        assert_close(price_event(&registry, &e).ok_or("not priced")?.cost_usd, 2.5);
        // The model that answered is not the one requested: its price is not gpt-4o's.
        for answered in ["ft:gpt-4o-2024-08-06:acme::abc123", "gpt-5"] {
            e.response_model = Some(answered.to_owned());
            assert_eq!(price_event(&registry, &e), None, "{answered} priced as the model requested");
        }
        Ok(())
    }
}
