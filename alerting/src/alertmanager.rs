//! The Alertmanager v2 API payload (`POST /api/v2/alerts`, a JSON array of postable alerts).

use serde::Serialize;

use crate::alert::Alert;

/// One element of the `POST /api/v2/alerts` body, field names as Alertmanager's OpenAPI spec.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert<'a> {
    pub labels: &'a std::collections::BTreeMap<String, String>,
    pub annotations: &'a std::collections::BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339; omitted when unknown so Alertmanager applies its resolve timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<&'a str>,
}

impl<'a> From<&'a Alert> for PostableAlert<'a> {
    fn from(alert: &'a Alert) -> Self {
        let format = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        Self {
            labels: &alert.labels,
            annotations: &alert.annotations,
            starts_at: format(alert.starts_at),
            ends_at: alert.ends_at.map(format),
            generator_url: alert.generator_url.as_deref(),
        }
    }
}

/// The request body for a batch of alerts.
pub fn postable_body(alerts: &[Alert]) -> Result<String, serde_json::Error> {
    let postable: Vec<PostableAlert<'_>> = alerts.iter().map(PostableAlert::from).collect();
    serde_json::to_string(&postable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::names;
    use chrono::TimeZone;
    use std::collections::BTreeMap;

    #[test]
    fn body_uses_alertmanager_field_names() -> Result<(), Box<dyn std::error::Error>> {
        let start = chrono::Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).single().ok_or("bad time")?;
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_owned(), names::BUDGET_THRESHOLD.to_owned());
        labels.insert("app".to_owned(), "where2eat".to_owned());
        let mut annotations = BTreeMap::new();
        annotations.insert("summary".to_owned(), "80% of budget".to_owned());
        let alert = Alert::firing(labels, annotations, start, start + chrono::Duration::minutes(5))?;
        let body: serde_json::Value = serde_json::from_str(&postable_body(&[alert])?)?;
        assert_eq!(body[0]["labels"]["alertname"], "LLMBudgetThreshold");
        assert_eq!(body[0]["startsAt"], "2026-11-28T12:00:00.000Z");
        assert_eq!(body[0]["endsAt"], "2026-11-28T12:05:00.000Z");
        assert!(body[0].get("generatorURL").is_none());
        Ok(())
    }
}
