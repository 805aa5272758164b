//! The fleet's cast: which micro apps exist, which models they call and how
//! those models behave (latency, token shapes, prices).
//!
//! Data enters as a requested app count; [`build_apps`] returns one
//! [`AppProfile`] per app, and [`model_profile`] the behaviour of each model.
//! The generator ([`super::generate`]) reads both for every call it draws.

/// One micro app of the synthetic fleet and the knobs that shape its traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct AppProfile {
    /// `service.name` of the app: the key every dashboard groups by.
    pub id: String,
    /// Owning team: the alert routing label.
    pub team: String,
    /// Deployment environment (`prod` or `staging`).
    pub environment: String,
    /// `(provider, request model)` pairs the app calls, first one most often.
    pub models: Vec<(String, String)>,
    /// Share of calls going to each entry of `models` (same length, sums to 1).
    pub model_weights: Vec<f64>,
    /// Prompt template id (`driftwatch.prompt.id`).
    pub prompt_id: String,
    /// Prompt versions in rollout order: `v1` until `prompt_switch_at`, then `v2`.
    pub prompt_versions: Vec<String>,
    /// Fraction of the generated period after which `v2` replaces `v1`.
    pub prompt_switch_at: f64,
    /// Monthly spend cap in USD. With the default demo (50k calls over 3 days)
    /// `ticket-summariser` exceeds its cap, `meeting-notes` passes 80% and
    /// `hr-policy-bot` stays low but projects an overrun from its burn rate.
    pub monthly_budget_usd: f64,
    /// Relative share of the fleet's traffic.
    pub traffic_weight: f64,
    /// Operation of the app's chat model (`chat`, or `generate_content` for Vertex).
    pub operation: String,
    /// Median input tokens per call (system prompt plus user content).
    pub input_tokens_median: f64,
    /// Median output tokens per call, per prompt version (same order as `prompt_versions`).
    pub output_tokens_median: Vec<f64>,
    /// Hard cap on output tokens (`max_tokens`); hitting it finishes with `length`.
    pub max_output_tokens: i64,
    /// Whether the app streams, so spans carry time to first chunk.
    pub streaming: bool,
    /// Share of calls that fail (rate limits, timeouts, ...).
    pub error_rate: f64,
    /// Share of successful calls that end in a tool call.
    pub tool_call_rate: f64,
    /// Probability that a hallucination evaluation flags a call, before and after
    /// the response model swap (equal for apps without a swap).
    pub hallucination_rate: (f64, f64),
    /// Probability that a user gives a thumbs-down.
    pub thumbs_down_rate: f64,
    /// Whether a thumbs result carries a score (1 or 0) besides its label; feedback widgets that
    /// send only "up" or "down" make results that count but have no score to average.
    pub thumbs_scored: bool,
    /// Whether the instrumentation also reports a cost (`gen_ai.usage.cost`).
    pub reports_cost: bool,
    /// Fraction of the period after which the provider silently serves a newer
    /// snapshot of the same model: the response-model drift scenario.
    pub model_swap_at: Option<f64>,
    /// Fraction of the period after which the app's OpenAI calls are served in the `priority`
    /// service tier (its team bought priority processing for a launch): a cost step with no
    /// change of model or prompt. Before it, and for other apps, OpenAI calls report `default`,
    /// as OpenAI's responses do.
    pub priority_tier_from: Option<f64>,
    /// Which content templates the app uses (index into the content catalog).
    pub content_kind: usize,
}

/// How a model behaves: latency shape, token habits and list prices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelProfile {
    /// Dated snapshot the provider reports as the response model.
    pub snapshot: &'static str,
    /// Snapshot served after a silent swap.
    pub swapped_snapshot: &'static str,
    /// Median time to first token, seconds.
    pub ttft_median_s: f64,
    /// Log-space spread of the time to first token.
    pub ttft_sigma: f64,
    /// Median decode speed, output tokens per second.
    pub tokens_per_s: f64,
    /// Median reasoning tokens per call, when the model thinks.
    pub reasoning_median: Option<f64>,
    /// Whether the provider caches long prompts (reports cache-read tokens).
    pub caches_prompts: bool,
    /// USD per 1M input tokens.
    pub input_usd_per_m: f64,
    /// USD per 1M cached input tokens.
    pub cached_usd_per_m: f64,
    /// USD per 1M input tokens written to the prompt cache, for a provider that reports and
    /// bills cache writes (Anthropic); `None` where writing costs nothing extra and goes unreported.
    pub cache_write_usd_per_m: Option<f64>,
    /// USD per 1M output tokens.
    pub output_usd_per_m: f64,
    /// Prefix of the provider's response id (`chatcmpl-`, `msg_01`, ...), or `None` when the API returns none.
    pub response_id_prefix: Option<&'static str>,
}

const UNKNOWN_MODEL: ModelProfile = ModelProfile {
    snapshot: "unknown",
    swapped_snapshot: "unknown",
    ttft_median_s: 0.8,
    ttft_sigma: 0.5,
    tokens_per_s: 60.0,
    reasoning_median: None,
    caches_prompts: false,
    input_usd_per_m: 1.0,
    cached_usd_per_m: 0.5,
    cache_write_usd_per_m: None,
    output_usd_per_m: 4.0,
    response_id_prefix: None,
};

/// The behaviour of a request model; models outside the catalog get a neutral profile.
pub fn model_profile(model: &str) -> ModelProfile {
    match model {
        "gpt-4o" => ModelProfile {
            snapshot: "gpt-4o-2024-08-06",
            swapped_snapshot: "gpt-4o-2024-11-20",
            ttft_median_s: 0.55,
            ttft_sigma: 0.45,
            tokens_per_s: 110.0,
            reasoning_median: None,
            caches_prompts: true,
            input_usd_per_m: 2.5,
            cached_usd_per_m: 1.25,
            cache_write_usd_per_m: None,
            output_usd_per_m: 10.0,
            response_id_prefix: Some("chatcmpl-"),
        },
        "gpt-4o-mini" => ModelProfile {
            snapshot: "gpt-4o-mini-2024-07-18",
            swapped_snapshot: "gpt-4o-mini-2024-07-18",
            ttft_median_s: 0.35,
            ttft_sigma: 0.4,
            tokens_per_s: 150.0,
            reasoning_median: None,
            caches_prompts: true,
            input_usd_per_m: 0.15,
            cached_usd_per_m: 0.075,
            cache_write_usd_per_m: None,
            output_usd_per_m: 0.6,
            response_id_prefix: Some("chatcmpl-"),
        },
        "claude-sonnet-4-5" => ModelProfile {
            snapshot: "claude-sonnet-4-5-20250929",
            swapped_snapshot: "claude-sonnet-4-5-20250929",
            ttft_median_s: 0.9,
            ttft_sigma: 0.5,
            tokens_per_s: 130.0,
            reasoning_median: None,
            caches_prompts: true,
            input_usd_per_m: 3.0,
            cached_usd_per_m: 0.3,
            cache_write_usd_per_m: Some(3.75),
            output_usd_per_m: 15.0,
            response_id_prefix: Some("msg_01"),
        },
        "claude-haiku-4-5" => ModelProfile {
            snapshot: "claude-haiku-4-5-20251001",
            swapped_snapshot: "claude-haiku-4-5-20251001",
            ttft_median_s: 0.4,
            ttft_sigma: 0.4,
            tokens_per_s: 200.0,
            reasoning_median: None,
            caches_prompts: true,
            input_usd_per_m: 1.0,
            cached_usd_per_m: 0.1,
            cache_write_usd_per_m: Some(1.25),
            output_usd_per_m: 5.0,
            response_id_prefix: Some("msg_01"),
        },
        "gemini-2.5-flash" => ModelProfile {
            snapshot: "gemini-2.5-flash-001",
            swapped_snapshot: "gemini-2.5-flash-002",
            ttft_median_s: 0.6,
            ttft_sigma: 0.5,
            tokens_per_s: 260.0,
            reasoning_median: Some(280.0),
            caches_prompts: false,
            input_usd_per_m: 0.3,
            cached_usd_per_m: 0.03,
            cache_write_usd_per_m: None,
            output_usd_per_m: 2.5,
            response_id_prefix: Some(""),
        },
        "text-embedding-3-small" => ModelProfile {
            snapshot: "text-embedding-3-small",
            swapped_snapshot: "text-embedding-3-small",
            ttft_median_s: 0.4,
            ttft_sigma: 0.35,
            tokens_per_s: 1.0,
            reasoning_median: None,
            caches_prompts: false,
            input_usd_per_m: 0.02,
            cached_usd_per_m: 0.02,
            cache_write_usd_per_m: None,
            output_usd_per_m: 0.0,
            response_id_prefix: None,
        },
        _ => UNKNOWN_MODEL,
    }
}

impl ModelProfile {
    /// List-price cost in USD, as an instrumentation library would report it: `cached` input
    /// tokens read from the prompt cache and `written` ones written to it, of `input` in all.
    pub fn cost_usd(&self, input: i64, cached: i64, written: i64, output: i64) -> f64 {
        let fresh = (input - cached - written).max(0) as f64;
        let write_usd_per_m = self.cache_write_usd_per_m.unwrap_or(self.input_usd_per_m);
        let usd = (fresh * self.input_usd_per_m
            + cached as f64 * self.cached_usd_per_m
            + written as f64 * write_usd_per_m
            + output as f64 * self.output_usd_per_m)
            / 1e6;
        (usd * 1e8).round() / 1e8
    }
}

/// The embeddings model one app calls next to its chat model.
pub const EMBEDDINGS_MODEL: &str = "text-embedding-3-small";

/// The most input tokens [`EMBEDDINGS_MODEL`] takes in one call (as `config/models.yaml` notes).
pub const EMBEDDINGS_MAX_INPUT_TOKENS: i64 = 8191;

/// Static description of a catalog app; [`build_apps`] turns it into an [`AppProfile`].
struct Seed {
    id: &'static str,
    team: &'static str,
    environment: &'static str,
    models: &'static [(&'static str, &'static str, f64)],
    budget: f64,
    traffic: f64,
    input_median: f64,
    output_medians: (f64, f64),
    max_output: i64,
    streaming: bool,
    error_rate: f64,
    tool_call_rate: f64,
    hallucination: (f64, f64),
    thumbs_down: f64,
    reports_cost: bool,
    swap_at: Option<f64>,
    switch_at: f64,
    priority_tier_from: Option<f64>,
}

const SEEDS: &[Seed] = &[
    Seed {
        id: "where2eat",
        team: "analytics",
        environment: "prod",
        models: &[("openai", "gpt-4o-mini", 0.8), ("anthropic", "claude-haiku-4-5", 0.2)],
        budget: 100.0,
        traffic: 1.6,
        input_median: 420.0,
        output_medians: (160.0, 170.0),
        max_output: 800,
        streaming: true,
        error_rate: 0.015,
        tool_call_rate: 0.08,
        hallucination: (0.04, 0.04),
        thumbs_down: 0.12,
        reports_cost: true,
        swap_at: None,
        switch_at: 0.45,
        priority_tier_from: None,
    },
    Seed {
        id: "ticket-summariser",
        team: "support-ops",
        environment: "prod",
        models: &[("anthropic", "claude-sonnet-4-5", 1.0)],
        budget: 75.0,
        traffic: 1.3,
        // v2 asks for a structured summary with action items: answers get much longer.
        input_median: 1500.0,
        output_medians: (170.0, 360.0),
        max_output: 1200,
        streaming: false,
        error_rate: 0.02,
        tool_call_rate: 0.0,
        hallucination: (0.05, 0.05),
        thumbs_down: 0.1,
        reports_cost: false,
        swap_at: None,
        switch_at: 0.5,
        priority_tier_from: None,
    },
    Seed {
        id: "hr-policy-bot",
        team: "people-ops",
        environment: "prod",
        models: &[("openai", "gpt-4o", 1.0)],
        budget: 450.0,
        traffic: 1.0,
        input_median: 2600.0,
        output_medians: (230.0, 240.0),
        max_output: 1000,
        streaming: true,
        error_rate: 0.012,
        tool_call_rate: 0.0,
        // The swapped snapshot answers policy questions from memory more often.
        hallucination: (0.12, 0.26),
        thumbs_down: 0.2,
        reports_cost: false,
        swap_at: Some(0.55),
        switch_at: 0.35,
        priority_tier_from: Some(0.85),
    },
    Seed {
        id: "sales-email-drafter",
        team: "revenue",
        environment: "staging",
        models: &[("gcp.vertex_ai", "gemini-2.5-flash", 1.0)],
        budget: 120.0,
        traffic: 0.6,
        input_median: 650.0,
        output_medians: (300.0, 280.0),
        max_output: 1500,
        streaming: false,
        error_rate: 0.03,
        tool_call_rate: 0.0,
        hallucination: (0.05, 0.05),
        thumbs_down: 0.15,
        reports_cost: false,
        swap_at: None,
        switch_at: 0.6,
        priority_tier_from: None,
    },
    Seed {
        id: "invoice-extractor",
        team: "finance-eng",
        environment: "prod",
        models: &[("openai", "gpt-4o-mini", 0.65), ("openai", EMBEDDINGS_MODEL, 0.35)],
        budget: 40.0,
        traffic: 1.1,
        input_median: 1900.0,
        output_medians: (210.0, 200.0),
        max_output: 600,
        streaming: false,
        error_rate: 0.01,
        tool_call_rate: 0.05,
        hallucination: (0.03, 0.03),
        thumbs_down: 0.06,
        reports_cost: true,
        swap_at: None,
        switch_at: 0.4,
        priority_tier_from: None,
    },
    Seed {
        id: "meeting-notes",
        team: "workplace",
        environment: "prod",
        models: &[("anthropic", "claude-haiku-4-5", 0.7), ("anthropic", "claude-sonnet-4-5", 0.3)],
        budget: 80.0,
        traffic: 0.9,
        input_median: 5200.0,
        output_medians: (300.0, 310.0),
        max_output: 2000,
        streaming: true,
        error_rate: 0.018,
        tool_call_rate: 0.0,
        hallucination: (0.06, 0.06),
        thumbs_down: 0.11,
        reports_cost: true,
        swap_at: None,
        switch_at: 0.65,
        priority_tier_from: None,
    },
    Seed {
        id: "contract-clause-checker",
        team: "legal-ops",
        environment: "prod",
        models: &[("anthropic", "claude-sonnet-4-5", 1.0)],
        budget: 200.0,
        traffic: 0.5,
        input_median: 3800.0,
        output_medians: (320.0, 330.0),
        max_output: 1500,
        streaming: false,
        error_rate: 0.015,
        tool_call_rate: 0.0,
        hallucination: (0.05, 0.05),
        thumbs_down: 0.1,
        reports_cost: false,
        swap_at: None,
        switch_at: 0.5,
        priority_tier_from: None,
    },
    Seed {
        id: "it-helpdesk-faq",
        team: "it-service",
        environment: "prod",
        models: &[("openai", "gpt-4o-mini", 1.0)],
        budget: 30.0,
        traffic: 1.2,
        input_median: 900.0,
        output_medians: (140.0, 150.0),
        max_output: 600,
        streaming: true,
        error_rate: 0.012,
        tool_call_rate: 0.0,
        hallucination: (0.04, 0.04),
        thumbs_down: 0.13,
        reports_cost: false,
        swap_at: None,
        switch_at: 0.5,
        priority_tier_from: None,
    },
];

/// Builds `count` app profiles: the catalog apps first, then numbered copies
/// (`where2eat-2`, ...) so load tests can simulate large fleets.
pub fn build_apps(count: usize) -> Vec<AppProfile> {
    (0..count)
        .map(|index| {
            let seed = &SEEDS[index % SEEDS.len()];
            let generation = index / SEEDS.len();
            let id = if generation == 0 { seed.id.to_owned() } else { format!("{}-{}", seed.id, generation + 1) };
            let total: f64 = seed.models.iter().map(|(_, _, w)| w).sum();
            let operation =
                if seed.models.iter().any(|(p, _, _)| *p == "gcp.vertex_ai") { "generate_content" } else { "chat" };
            AppProfile {
                prompt_id: format!("{}.main", seed.id),
                id,
                team: seed.team.to_owned(),
                environment: seed.environment.to_owned(),
                models: seed.models.iter().map(|(p, m, _)| ((*p).to_owned(), (*m).to_owned())).collect(),
                model_weights: seed.models.iter().map(|(_, _, w)| w / total).collect(),
                prompt_versions: vec!["v1".to_owned(), "v2".to_owned()],
                prompt_switch_at: seed.switch_at,
                monthly_budget_usd: seed.budget,
                traffic_weight: seed.traffic,
                operation: operation.to_owned(),
                input_tokens_median: seed.input_median,
                output_tokens_median: vec![seed.output_medians.0, seed.output_medians.1],
                max_output_tokens: seed.max_output,
                streaming: seed.streaming,
                error_rate: seed.error_rate,
                tool_call_rate: seed.tool_call_rate,
                hallucination_rate: seed.hallucination,
                thumbs_down_rate: seed.thumbs_down,
                // Every third app's widget sends labels only.
                thumbs_scored: index % 3 != 2,
                reports_cost: seed.reports_cost,
                model_swap_at: seed.swap_at,
                priority_tier_from: seed.priority_tier_from,
                content_kind: index % SEEDS.len(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_covers_the_required_variety() {
        let apps = build_apps(6);
        assert_eq!(apps.len(), 6);
        let models: std::collections::BTreeSet<_> =
            apps.iter().flat_map(|a| a.models.iter().map(|(_, m)| m.clone())).collect();
        assert!(models.len() >= 5, "{models:?}");
        assert!(apps.iter().any(|a| a.environment == "staging"));
        assert!(apps.iter().any(|a| a.model_swap_at.is_some()));
        assert!(apps.iter().all(|a| a.prompt_versions.len() == 2));
        for app in &apps {
            let sum: f64 = app.model_weights.iter().sum();
            assert!((sum - 1.0).abs() < 1e-9);
            for (_, model) in &app.models {
                assert_ne!(model_profile(model).snapshot, "unknown", "{model} not in catalog");
            }
        }
    }

    #[test]
    fn large_fleets_get_unique_ids() {
        let apps = build_apps(20);
        let ids: std::collections::BTreeSet<_> = apps.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids.len(), 20);
    }
}
