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

/// One JSON event line (no newline) whose id is `id`.
fn event_line(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","time":"2025-06-01T12:00:00Z","app":"rotation","request_model":"gpt-4o","input_tokens":10,"output_tokens":5}}"#
    )
}

/// `driftwatch ingest --source file:<file> --lake <lake>`, run to its end whatever its status.
fn ingest_file(file: &Path, lake: &Path) -> anyhow::Result<std::process::Output> {
    Ok(common::driftwatch()
        .args(["ingest", "--source"])
        .arg(format!("file:{}", file.display()))
        .arg("--lake")
        .arg(lake)
        .stdin(std::process::Stdio::null())
        .output()?)
}

/// The one partition record under the lake's `_checkpoints/`, as JSON, and its path.
fn the_checkpoint_record(lake: &Path) -> anyhow::Result<(std::path::PathBuf, serde_json::Value)> {
    let records: Vec<_> = common::files_under(&lake.join("_checkpoints"))
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|name| name == "0.json"))
        .collect();
    let [path] = records.as_slice() else { anyhow::bail!("expected one checkpoint record, found {records:?}") };
    let record = serde_json::from_slice(&std::fs::read(path)?)?;
    Ok((path.clone(), record))
}

/// A rotating writer moved the ingested file away and wrote a new, longer one at the same path,
/// whose first line happens to end exactly where the old checkpoint is. The line break there
/// made the old boundary check take it for the old file grown longer, and the run resumed
/// mid-file, silently skipping the new file's head; the fingerprint of the file's head kept in
/// the checkpoint tells it apart.
#[test]
fn a_file_replaced_by_a_longer_one_with_a_line_break_at_the_checkpoint_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (file, lake) = (dir.path().join("events.jsonl"), dir.path().join("lake"));
    let old: String = (1..=5).map(|n| format!("{}\n", event_line(&format!("old-{n}")))).collect();
    std::fs::write(&file, &old)?;
    let first = ingest_file(&file, &lake)?;
    assert!(first.status.success(), "first run: {}", String::from_utf8_lossy(&first.stderr));

    // JSON allows spaces after a value: the first new line is padded to end at the checkpoint.
    let head = event_line("new-1");
    let padded = format!("{head:<width$}\n", width = old.len() - 1);
    let rotated = format!("{padded}{}\n{}\n", event_line("new-2"), event_line("new-3"));
    assert_eq!(rotated.as_bytes()[old.len() - 1], b'\n', "a line break just before the old checkpoint");
    assert_ne!(rotated.as_bytes()[..old.len()], old.as_bytes()[..], "a different file");
    std::fs::write(&file, &rotated)?;

    let second = ingest_file(&file, &lake)?;
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success(),
        "the rotated file was resumed mid-file: {}",
        String::from_utf8_lossy(&second.stdout)
    );
    assert!(stderr.contains("replaced or rotated"), "{stderr}");
    assert!(stderr.contains("remove the checkpoint"), "the error says what to do: {stderr}");
    Ok(())
}

/// A checkpoint written before the head fingerprint was recorded (as older lakes hold) still
/// loads, and an appended file resumes at it; the resumed run's checkpoint carries the fingerprint.
#[test]
fn a_checkpoint_without_a_head_fingerprint_still_resumes_an_appended_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (file, lake) = (dir.path().join("events.jsonl"), dir.path().join("lake"));
    let old: String = (1..=3).map(|n| format!("{}\n", event_line(&format!("old-{n}")))).collect();
    std::fs::write(&file, &old)?;
    let first = ingest_file(&file, &lake)?;
    assert!(first.status.success(), "first run: {}", String::from_utf8_lossy(&first.stderr));

    let (path, mut record) = the_checkpoint_record(&lake)?;
    let checkpoint = record["checkpoint"].as_object_mut().context("the record holds a checkpoint")?;
    let head = checkpoint.remove("file_head").context("the file source records the file's head")?;
    assert_eq!(head["bytes"], old.len(), "{head}");
    std::fs::write(&path, serde_json::to_vec_pretty(&record)?)?;

    let appended = format!("{old}{}\n", event_line("new-1"));
    std::fs::write(&file, &appended)?;
    let second = ingest_file(&file, &lake)?;
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(stdout.contains(&format!("resumed from {}", old.len())), "{stdout}");
    assert!(stdout.contains("1 messages"), "only the appended line is read: {stdout}");
    let (_, record) = the_checkpoint_record(&lake)?;
    assert_eq!(record["checkpoint"]["file_head"]["bytes"], appended.len(), "{record}");
    Ok(())
}
