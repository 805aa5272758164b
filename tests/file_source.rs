//! End to end through the file source: a mixed fixture set (OTLP protobuf, OTLP/JSON, JSON
//! events, the OpenTelemetry Python SDK's own output, ~1% malformed) ingested by the real
//! binary; the lake must equal the generator's truth, and every malformed message must be in
//! dead_letter with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use anyhow::Context;
use driftwatch_ingest::enrich::{ModelRegistry, price_event};
use driftwatch_ingest::fleet::files::{FormatMix, write_fleet_files};
use driftwatch_ingest::fleet::{Fleet, FleetConfig, FleetRecord};

const SEED: u64 = 7;

fn fleet() -> Fleet {
    Fleet::new(FleetConfig { seed: SEED, apps: 6, inferences: 20_000, malformed_ratio: 0.01, ..FleetConfig::default() })
}

/// Copy the Python SDK fixtures next to the generated files; the protobuf ones are given the
/// Collector file exporter's length prefix.
fn add_python_fixtures(input: &Path) -> anyhow::Result<serde_json::Value> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otel-python");
    for name in ["traces.jsonl", "logs.jsonl"] {
        std::fs::copy(fixtures.join(name), input.join(format!("python_{name}")))?;
    }
    for (name, target) in [("traces.pb", "python_spans.binpb"), ("logs.pb", "python_logs.binpb")] {
        let bytes = std::fs::read(fixtures.join(name))?;
        let mut framed = (bytes.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        std::fs::write(input.join(target), framed)?;
    }
    let expected = std::fs::read_to_string(fixtures.join("expected.json"))?;
    Ok(serde_json::from_str(&expected)?)
}

/// `driftwatch ingest --source file:<input> --lake <lake>`, to completion.
fn ingest_folder(input: &Path, lake: &Path) -> anyhow::Result<String> {
    common::run_ok(
        common::driftwatch()
            .args(["ingest", "--source"])
            .arg(format!("file:{}", input.display()))
            .arg("--lake")
            .arg(lake),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_fixture_set_lands_exactly_as_generated() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("input");
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&input)?;
    let fleet = fleet();
    let generated = write_fleet_files(&fleet, &input, FormatMix::Mixed, 20, 0.01, SEED)?;
    assert!(generated.truth.malformed_messages > 0, "the fixture set must contain malformed input");
    let python = add_python_fixtures(&input)?;

    ingest_folder(&input, &lake)?;
    let counts = common::lake_counts(&lake).await?;

    // Generated apps: every count and sum equals the truth.
    let registry = ModelRegistry::default_embedded()?;
    let mut expected_cost: std::collections::BTreeMap<String, f64> = Default::default();
    for record in fleet.records() {
        if let FleetRecord::Inference(event) = record {
            let cost = price_event(&registry, &event).map_or(0.0, |priced| priced.cost_usd);
            *expected_cost.entry(event.app.clone()).or_default() += cost;
        }
    }
    for (app, truth) in &generated.truth.per_app {
        let got = counts.per_app.get(app).with_context(|| format!("{app} missing from the lake"))?;
        assert_eq!(got.distinct_events as u64, truth.distinct_event_ids, "{app} events");
        assert_eq!(got.rows, got.distinct_events, "{app}: no duplicate rows");
        assert_eq!(got.errors as u64, truth.errors, "{app} errors");
        assert_eq!(got.input_tokens as u64, truth.input_tokens, "{app} input tokens");
        assert_eq!(got.output_tokens as u64, truth.output_tokens, "{app} output tokens");
        let want = expected_cost.get(app).copied().unwrap_or_default();
        assert!((got.cost_usd - want).abs() <= 1e-9 * want.max(1.0), "{app} cost: lake {} truth {want}", got.cost_usd);
    }

    // Python SDK apps: counts per app from the generator script's expected.json.
    let python_apps = python["traces"]["apps"].as_object().context("expected.json has traces.apps")?;
    for (app, expected) in python_apps {
        let got = counts.per_app.get(app).with_context(|| format!("python app {app} missing"))?;
        // Each python fixture is present twice (JSON lines and protobuf) with the same span ids:
        // the rows are there twice, the distinct events once.
        assert_eq!(got.distinct_events, expected["events"].as_i64().unwrap_or(-1), "{app} python events");
        assert_eq!(got.rows, 2 * got.distinct_events, "{app}: both encodings landed");
        assert_eq!(got.input_tokens, 2 * expected["input_tokens"].as_i64().unwrap_or(-1), "{app} python tokens");
        assert_eq!(got.errors, 2 * expected["errors"].as_i64().unwrap_or(-1), "{app} python errors");
    }

    // Every malformed message is in dead_letter, with a reason.
    assert_eq!(counts.dead_letters as u64, generated.truth.malformed_messages, "dead letters");
    let session = driftwatch_analyze::LakeSession::open(&lake.display().to_string(), None).await?;
    let totals = driftwatch_analyze::lake_totals(&session).await?;
    assert!(totals.dead_letters_by_reason.keys().all(|reason| !reason.is_empty()));
    assert!(totals.dead_letters_by_reason.len() >= 3, "several distinct reasons: {:?}", totals.dead_letters_by_reason);

    // A second run resumes from the checkpoints and writes nothing new.
    ingest_folder(&input, &lake)?;
    let again = common::lake_counts(&lake).await?;
    assert_eq!(again, counts, "re-running over the same files must not add rows");
    Ok(())
}
