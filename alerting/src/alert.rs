//! The alert: labels identify it, annotations describe it, and `startsAt`/`endsAt` carry its
//! lifecycle exactly as Prometheus sends alerts to Alertmanager.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// Alert names of the contract (DESIGN §8).
pub mod names {
    /// Month-to-date spend crossed a budget threshold.
    pub const BUDGET_THRESHOLD: &str = "LLMBudgetThreshold";
    /// Projected month-end spend exceeds the budget.
    pub const BUDGET_PROJECTED_OVERRUN: &str = "LLMBudgetProjectedOverrun";
    /// Spend over a short window burns the budget too fast.
    pub const BUDGET_FAST_BURN: &str = "LLMBudgetFastBurn";
    /// A numeric or categorical distribution drifted from its baseline.
    pub const DISTRIBUTION_DRIFT: &str = "LLMDistributionDrift";
    /// Outputs for stable inputs changed beyond the baseline's own variation.
    pub const OUTPUT_DRIFT: &str = "LLMOutputDrift";
    /// Hallucination or thumbs-down rates changed.
    pub const QUALITY_DRIFT: &str = "LLMQualityDrift";
    /// The provider answered with a different model version.
    pub const MODEL_CHANGED: &str = "LLMModelChanged";
    /// Unregistered app or model, or a model above the app's approved risk.
    pub const GOVERNANCE_VIOLATION: &str = "LLMGovernanceViolation";
    /// The ingest daemon stopped making progress.
    pub const INGEST_STALLED: &str = "DriftwatchIngestStalled";
    /// Every name, for validation and documentation.
    pub const ALL: [&str; 9] = [
        BUDGET_THRESHOLD,
        BUDGET_PROJECTED_OVERRUN,
        BUDGET_FAST_BURN,
        DISTRIBUTION_DRIFT,
        OUTPUT_DRIFT,
        QUALITY_DRIFT,
        MODEL_CHANGED,
        GOVERNANCE_VIOLATION,
        INGEST_STALLED,
    ];
}

/// Label keys of the contract.
pub mod labels {
    pub const ALERTNAME: &str = "alertname";
    pub const SEVERITY: &str = "severity";
    pub const APP: &str = "app";
    pub const ENVIRONMENT: &str = "environment";
    pub const MODEL: &str = "model";
    pub const PROMPT_VERSION: &str = "prompt_version";
    pub const TEAM: &str = "team";
}

/// How urgently a human must act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational; no action.
    Info,
    /// Look at it during working hours.
    Ticket,
    /// Wake someone up.
    Page,
}

impl Severity {
    /// The `severity` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Ticket => "ticket",
            Severity::Page => "page",
        }
    }
}

/// One alert as sinks receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Identity: alertname, severity, app, environment, model, prompt_version, team.
    pub labels: BTreeMap<String, String>,
    /// summary, description, runbook_url, dashboard_url.
    pub annotations: BTreeMap<String, String>,
    /// When the condition began.
    pub starts_at: DateTime<Utc>,
    /// For a firing alert, a time ahead (re-sent before it passes); for a resolved one, when it cleared.
    pub ends_at: Option<DateTime<Utc>>,
    /// Link back to what produced the alert.
    pub generator_url: Option<String>,
}

/// Why an alert could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AlertError {
    #[error("alert has no `alertname` label")]
    MissingName,
    #[error("unknown alertname {0:?}; use one of the names in driftwatch_alerting::alert::names")]
    UnknownName(String),
    #[error("label name {0:?} is not a valid Prometheus label name")]
    InvalidLabelName(String),
}

impl Alert {
    /// A firing alert with the given labels; checks the name and label syntax.
    pub fn firing(
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> Result<Self, AlertError> {
        let name = labels.get(labels::ALERTNAME).ok_or(AlertError::MissingName)?;
        if !names::ALL.contains(&name.as_str()) {
            return Err(AlertError::UnknownName(name.clone()));
        }
        if let Some(bad) = labels.keys().find(|key| !is_valid_label_name(key)) {
            return Err(AlertError::InvalidLabelName(bad.clone()));
        }
        Ok(Self { labels, annotations, starts_at, ends_at: Some(ends_at), generator_url: None })
    }

    /// The alert's identity, as Alertmanager computes it from the labels.
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&self.labels)
    }

    /// True when `endsAt` is in the past at `now`.
    pub fn is_resolved(&self, now: DateTime<Utc>) -> bool {
        self.ends_at.is_some_and(|ends| ends <= now)
    }

    /// Mark resolved at `now` (the resolve notification carries `endsAt = now`).
    pub fn resolve(&mut self, now: DateTime<Utc>) {
        self.ends_at = Some(now);
    }
}

/// A 64-bit label-set fingerprint, shown as 16 hex digits like Alertmanager shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Prometheus' separator byte between label names and values (never valid UTF-8).
const SEPARATOR: u8 = 0xff;

/// Prometheus' `LabelSet.Fingerprint`: FNV-1a over sorted names and values with 0xff
/// separators, so driftwatch and Alertmanager agree on which alert is which.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> Fingerprint {
    if labels.is_empty() {
        return Fingerprint(FNV_OFFSET);
    }
    let mut hash = FNV_OFFSET;
    let mut add = |bytes: &[u8]| {
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[SEPARATOR]);
        add(value.as_bytes());
        add(&[SEPARATOR]);
    }
    Fingerprint(hash)
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, the Prometheus label name syntax.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn fingerprint_matches_prometheus_reference_values() {
        // Reference values from prometheus/common model/signature_test.go (TestLabelsToSignature
        // uses the same FNV-1a and separator): the empty set hashes to the offset basis.
        assert_eq!(fingerprint(&BTreeMap::new()).0, 14_695_981_039_346_656_037);
        assert_eq!(
            fingerprint(&set(&[("name", "garland, briggs"), ("fear", "love is not enough")])).0,
            5_799_056_148_416_392_346
        );
    }

    #[test]
    fn fingerprint_depends_on_labels_not_insertion_order() {
        let a = set(&[("alertname", "LLMBudgetThreshold"), ("app", "where2eat")]);
        let mut b = BTreeMap::new();
        b.insert("app".to_owned(), "where2eat".to_owned());
        b.insert("alertname".to_owned(), "LLMBudgetThreshold".to_owned());
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = set(&[("alertname", "LLMBudgetThreshold"), ("app", "where2eats")]);
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn firing_checks_name_and_label_syntax() {
        let now = Utc::now();
        let ok = Alert::firing(set(&[("alertname", names::MODEL_CHANGED)]), BTreeMap::new(), now, now);
        assert!(ok.is_ok());
        let unknown = Alert::firing(set(&[("alertname", "Whatever")]), BTreeMap::new(), now, now);
        assert_eq!(unknown.err(), Some(AlertError::UnknownName("Whatever".to_owned())));
        let bad = Alert::firing(set(&[("alertname", names::MODEL_CHANGED), ("9x", "y")]), BTreeMap::new(), now, now);
        assert_eq!(bad.err(), Some(AlertError::InvalidLabelName("9x".to_owned())));
        let missing = Alert::firing(BTreeMap::new(), BTreeMap::new(), now, now);
        assert_eq!(missing.err(), Some(AlertError::MissingName));
    }

    #[test]
    fn resolve_sets_ends_at_now() -> Result<(), AlertError> {
        let start = Utc::now();
        let mut alert = Alert::firing(
            set(&[("alertname", names::BUDGET_FAST_BURN)]),
            BTreeMap::new(),
            start,
            start + chrono::Duration::minutes(4),
        )?;
        assert!(!alert.is_resolved(start));
        let now = start + chrono::Duration::minutes(1);
        alert.resolve(now);
        assert!(alert.is_resolved(now));
        Ok(())
    }
}
