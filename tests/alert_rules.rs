//! The alerting rules SREs import (dashboards/prometheus/rules.yml) are valid, behave as their
//! unit tests say (promtool, from the dev stack's Debian `prometheus` package), and query only
//! metrics driftwatch serves. The Kafka metrics test sees them evaluated by a real Prometheus
//! against a real daemon.

mod common;

use std::path::{Path, PathBuf};

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/prometheus")
}

fn promtool(args: &[&str]) -> anyhow::Result<String> {
    common::promtool(args, &rules_dir(), "")
}

#[test]
fn the_alerting_rules_are_valid_and_pass_their_unit_tests() -> anyhow::Result<()> {
    let checked = promtool(&["check", "rules", "rules.yml"])?;
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "rules_test.yml"])?;
    assert!(tested.contains("SUCCESS") && !tested.contains("FAILED"), "{tested}");
    Ok(())
}

/// Every driftwatch metric a rule queries is one the daemon serves (a constant of
/// `ingest/src/telemetry/names.rs`, histograms by their `_bucket` series), so a renamed metric
/// cannot leave a rule that silently never fires.
#[test]
fn the_rules_query_only_metrics_driftwatch_serves() -> anyhow::Result<()> {
    let rules = std::fs::read_to_string(rules_dir().join("rules.yml"))?;
    let names = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ingest/src/telemetry/names.rs"))?;
    let served: Vec<&str> =
        names.split('"').skip(1).step_by(2).filter(|text| text.starts_with("driftwatch_")).collect();
    let mut queried: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("driftwatch_"))
        .collect();
    queried.sort_unstable();
    queried.dedup();
    assert!(queried.len() >= 8, "the rules query {queried:?}");
    for name in queried {
        let base = name.strip_suffix("_bucket").unwrap_or(name);
        assert!(served.contains(&base), "{name} is not a metric driftwatch serves (names.rs)");
    }
    Ok(())
}
