//! The `[registry]`, `[default_app]` and `[[apps]]` sections: the model registry and the known
//! micro apps with their content policy.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::enrich::{ContentPolicy, RiskLevel};

use super::Config;

/// Where the model registry comes from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Path to `models.yaml`; unset uses the registry embedded in the binary.
    pub path: Option<PathBuf>,
}

/// Policy for apps that are not listed in `apps`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppDefaults {
    /// Keep scrubbed prompt and completion text in the lake (off: hashes and lengths only).
    pub retain_content: bool,
    /// Scrub PII from retained content.
    pub scrub_pii: bool,
}

impl Default for AppDefaults {
    fn default() -> Self {
        Self { retain_content: false, scrub_pii: true }
    }
}

/// One known micro app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// App id as it appears in telemetry (`service.name` or `driftwatch.app`).
    pub id: String,
    /// Owning team: the `team` label alerts are routed by. Validated now; read by the alerting
    /// and analysis jobs, which are not built yet.
    pub team: String,
    /// Monthly budget in USD, for budget checks. Validated now; read by the analysis job's
    /// budget checks, which are not built yet.
    pub monthly_budget_usd: Option<f64>,
    /// Highest model risk level the app is approved for. Validated now; read by the analysis
    /// job's governance checks, which are not built yet.
    pub max_risk_level: Option<RiskLevel>,
    /// Keep scrubbed content for this app.
    #[serde(default)]
    pub retain_content: bool,
    /// Scrub PII from this app's retained content.
    #[serde(default = "default_true")]
    pub scrub_pii: bool,
}

fn default_true() -> bool {
    true
}

impl Config {
    /// Content policy per listed app, for the enricher.
    pub fn content_policies(&self) -> (HashMap<String, ContentPolicy>, ContentPolicy) {
        let policies = self
            .apps
            .iter()
            .map(|app| (app.id.clone(), ContentPolicy { retain_content: app.retain_content, scrub_pii: app.scrub_pii }))
            .collect();
        let default_policy =
            ContentPolicy { retain_content: self.default_app.retain_content, scrub_pii: self.default_app.scrub_pii };
        (policies, default_policy)
    }
}
