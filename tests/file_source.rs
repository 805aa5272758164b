//! End to end through the file source: a mixed fixture set (OTLP protobuf, OTLP/JSON, JSON
//! events, the OpenTelemetry Python SDK's own output, ~1% malformed) ingested by the real
//! binary; the lake must equal the generator's truth (events, costs priced from models.yaml,
//! feedback, rollups), and every malformed message must be in dead_letter with its reason. With
//! content retention on, none of the personal data the fleet plants may reach the lake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use driftwatch_analyze::LakeSession;
use driftwatch_ingest::fleet::content::{PlantedPii, planted_pii};
use driftwatch_ingest::fleet::files::{FormatMix, write_fleet_files};
use driftwatch_ingest::fleet::{DEFAULT_START, Fleet, FleetConfig, FleetRecord, malformed};
use driftwatch_lake::model::InferenceEvent;

const SEED: u64 = 7;
const DAY_SECS: i64 = 86_400;

fn fleet() -> Fleet {
    Fleet::new(FleetConfig {
        seed: SEED,
        apps: 6,
        inferences: 20_000,
        malformed_ratio: 0.01,
        // From 2026-11-01 on past 2026-11-15, when gpt-4o's price changes in the test's registry.
        duration_secs: 16 * DAY_SECS,
        ..FleetConfig::default()
    })
}

/// Copy the Python SDK fixtures next to the generated files; the protobuf ones are given the
/// Collector file exporter's length prefix. The file source reads a folder in name order, and
/// the span files are named to come first, so that the logs' evaluations meet the calls they
/// rate in the feedback join, as they do when a Collector exports both signals together.
fn add_python_fixtures(input: &Path) -> anyhow::Result<serde_json::Value> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otel-python");
    for (name, target) in [("traces.jsonl", "python_1_traces.jsonl"), ("logs.jsonl", "python_2_logs.jsonl")] {
        std::fs::copy(fixtures.join(name), input.join(target))?;
    }
    for (name, target) in [("traces.pb", "python_1_spans.binpb"), ("logs.pb", "python_2_logs.binpb")] {
        let bytes = std::fs::read(fixtures.join(name))?;
        let mut framed = (bytes.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        std::fs::write(input.join(target), framed)?;
    }
    let expected = std::fs::read_to_string(fixtures.join("expected.json"))?;
    Ok(serde_json::from_str(&expected)?)
}

/// The Python fixture files as ingested: (lake `source_topic` suffix, which part of
/// expected.json describes it).
const PYTHON_FILES: [(&str, &str); 4] = [
    ("/python_1_traces.jsonl", "traces"),
    ("/python_1_spans.binpb", "traces"),
    ("/python_2_logs.jsonl", "logs"),
    ("/python_2_logs.binpb", "logs"),
];

/// One list price of a model in models.yaml.
#[derive(Debug, serde::Deserialize)]
struct ListPrice {
    /// As written: a date (midnight UTC) or an RFC 3339 time.
    effective_from: String,
    input_per_mtok: f64,
    cached_input_per_mtok: Option<f64>,
    cache_write_input_per_mtok: Option<f64>,
    output_per_mtok: f64,
    long_context: Option<LongContextListPrice>,
    /// The rates of calls a service tier served, by the tier's name.
    #[serde(default)]
    service_tiers: BTreeMap<String, TierListPrice>,
}

/// The rates of every token of a call one service tier served.
#[derive(Debug, serde::Deserialize)]
struct TierListPrice {
    input_per_mtok: f64,
    cached_input_per_mtok: Option<f64>,
    cache_write_input_per_mtok: Option<f64>,
    output_per_mtok: f64,
}

/// The rates of every token of a call whose input tokens exceed `above_input_tokens`.
#[derive(Debug, serde::Deserialize)]
struct LongContextListPrice {
    above_input_tokens: i64,
    input_per_mtok: f64,
    cached_input_per_mtok: Option<f64>,
    cache_write_input_per_mtok: Option<f64>,
    output_per_mtok: f64,
}

/// One model of models.yaml, as far as pricing goes (other keys are ignored).
#[derive(Debug, serde::Deserialize)]
struct ListedModel {
    id: String,
    provider: String,
    #[serde(default)]
    aliases: Vec<String>,
    pricing: Vec<ListPrice>,
}

#[derive(Debug, serde::Deserialize)]
struct ModelsFile {
    models: Vec<ListedModel>,
}

/// Unix nanoseconds of a date (midnight UTC) or an RFC 3339 time.
fn utc_nanos(text: &str) -> anyhow::Result<i64> {
    let time = match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => date.and_time(chrono::NaiveTime::MIN).and_utc(),
        Err(_) => chrono::DateTime::parse_from_rfc3339(text)
            .with_context(|| format!("{text}: not a date or an RFC 3339 time"))?
            .to_utc(),
    };
    time.timestamp_nanos_opt().with_context(|| format!("{text}: out of range"))
}

/// The prices of a registry file, read here with serde rather than through the registry code
/// under test.
fn read_models_yaml(path: &Path) -> anyhow::Result<Vec<ListedModel>> {
    let file: ModelsFile =
        serde_yaml::from_str(&std::fs::read_to_string(path)?).with_context(|| format!("reading {}", path.display()))?;
    Ok(file.models)
}

/// Writes the shipped config/models.yaml with one more gpt-4o price from 2026-11-15 (a price
/// change mid-month, inside the fleet's time span, with its own priority-tier rates, which the
/// fleet's `hr-policy-bot` is served in from before the change on) to `dir`, and a daemon
/// config that uses it.
/// Returns (registry, config).
fn registry_with_a_mid_month_price_change(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/models.yaml");
    let mut registry: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&shipped)?)?;
    let gpt_4o = registry["models"]
        .as_sequence_mut()
        .context("models.yaml has a models list")?
        .iter_mut()
        .find(|model| model["id"].as_str() == Some("gpt-4o"))
        .context("models.yaml registers gpt-4o")?;
    let change = "{effective_from: 2026-11-15, input_per_mtok: 2.0, cached_input_per_mtok: 1.0, output_per_mtok: 8.0, \
                  service_tiers: {priority: {input_per_mtok: 3.5, cached_input_per_mtok: 1.75, output_per_mtok: 14.0}}}";
    gpt_4o["pricing"].as_sequence_mut().context("gpt-4o has prices")?.push(serde_yaml::from_str(change)?);
    let registry_path = dir.join("models.yaml");
    std::fs::write(&registry_path, serde_yaml::to_string(&registry)?)?;
    let config = dir.join("registry.toml");
    std::fs::write(&config, format!("[registry]\npath = \"{}\"\n", registry_path.display()))?;
    Ok((registry_path, config))
}

/// Cost and price version of a fleet call by the list prices: the model it requested (the
/// fleet requests registered ids, and is answered by their dated snapshots), the latest price
/// whose `effective_from` is not after the call's time, tokens x price per 1M with input tokens
/// read from the cache at the cached price and those written to it at the cache-write price
/// (both part of the input tokens) when one is listed, else at the input price, all at the
/// long-context rates when the input tokens exceed their threshold, or all at the rates of the
/// service tier that served the call when the price lists it (README, models.yaml).
/// `None` for a call without tokens.
fn list_price_of(models: &[ListedModel], event: &InferenceEvent) -> anyhow::Result<Option<(String, f64)>> {
    if event.input_tokens.is_none() && event.output_tokens.is_none() {
        return Ok(None);
    }
    let requested = event.request_model.as_deref().context("a fleet call names its model")?;
    let model = models
        .iter()
        .find(|m| m.id == requested && event.provider.as_deref() == Some(m.provider.as_str()))
        .with_context(|| format!("{requested} is not in models.yaml"))?;
    // Priced by the requested model only while the snapshot answering is not registered itself.
    if let Some(snapshot) = event.response_model.as_deref().filter(|r| *r != requested) {
        assert!(snapshot.starts_with(&format!("{requested}-")), "{snapshot} is not a snapshot of {requested}");
        let registered = models.iter().any(|m| m.id == snapshot || m.aliases.iter().any(|a| a == snapshot));
        assert!(!registered, "{snapshot} has its own price in models.yaml");
    }
    let mut in_force = None;
    for price in &model.pricing {
        if utc_nanos(&price.effective_from)? <= event.time {
            in_force = Some(price);
        }
    }
    let price = in_force.with_context(|| format!("no price of {requested} at {}", event.time))?;
    let (input, output) = (event.input_tokens.unwrap_or(0), event.output_tokens.unwrap_or(0));
    let (cached, written) = (event.cache_read_tokens.unwrap_or(0), event.cache_write_tokens.unwrap_or(0));
    let tier = event.service_tier.as_deref().and_then(|tier| Some((tier, price.service_tiers.get(tier)?)));
    let rates = match (&price.long_context, tier) {
        (_, Some((_, tier))) => {
            (tier.input_per_mtok, tier.cached_input_per_mtok, tier.cache_write_input_per_mtok, tier.output_per_mtok)
        }
        (Some(long), None) if input > long.above_input_tokens => {
            (long.input_per_mtok, long.cached_input_per_mtok, long.cache_write_input_per_mtok, long.output_per_mtok)
        }
        _ => {
            (price.input_per_mtok, price.cached_input_per_mtok, price.cache_write_input_per_mtok, price.output_per_mtok)
        }
    };
    let (input_price, cached_price, write_price, output_price) = rates;
    let cost = ((input - cached - written) as f64 * input_price
        + cached as f64 * cached_price.unwrap_or(input_price)
        + written as f64 * write_price.unwrap_or(input_price)
        + output as f64 * output_price)
        / 1e6;
    let date = price.effective_from.split('T').next().unwrap_or_default();
    let tier = tier.map(|(name, _)| format!("+{name}")).unwrap_or_default();
    Ok(Some((format!("{}@{date}{tier}", model.id), cost)))
}

/// Rows and cost per (app, price version): a call without tokens has no price version.
type RowsAndCost = BTreeMap<(String, Option<String>), (i64, f64)>;

/// Rows and cost per (app, price version) a lake should hold for `fleet` priced from `registry`.
fn expected_prices(fleet: &Fleet, registry: &Path) -> anyhow::Result<RowsAndCost> {
    let models = read_models_yaml(registry)?;
    // The dates above agree with the fleet's own clock.
    assert_eq!(utc_nanos("2026-11-01")?, DEFAULT_START);
    assert_eq!(utc_nanos("2026-11-01T06:30:15Z")?, DEFAULT_START + (6 * 3600 + 30 * 60 + 15) * 1_000_000_000);
    let mut expected = RowsAndCost::new();
    for record in fleet.records() {
        if let FleetRecord::Inference(event) | FleetRecord::Retry(event) = record {
            let priced = list_price_of(&models, &event)?;
            let entry = expected.entry((event.app.clone(), priced.as_ref().map(|(v, _)| v.clone()))).or_default();
            entry.0 += 1;
            entry.1 += priced.map_or(0.0, |(_, cost)| cost);
        }
    }
    Ok(expected)
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_fixture_set_lands_exactly_as_generated() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("input");
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&input)?;
    let fleet = fleet();
    let generated = write_fleet_files(&fleet, &input, FormatMix::Mixed, 20, 0.01, SEED)?;
    let truth = &generated.truth;
    assert!(truth.malformed_messages > 0, "the fixture set must contain malformed input");
    let python = add_python_fixtures(&input)?;
    let (registry, config) = registry_with_a_mid_month_price_change(dir.path())?;

    common::ingest_files(&input, &lake, Some(&config))?;
    let counts = common::lake_counts(&lake).await?;
    let feedback = common::lake_feedback_and_rollups(&lake).await?;
    let session = LakeSession::open(&lake.display().to_string(), None).await?;

    // Generated apps: every count and sum equals the truth.
    for (app, truth) in &truth.per_app {
        let got = counts.per_app.get(app).with_context(|| format!("{app} missing from the lake"))?;
        assert_eq!(got.distinct_events as u64, truth.distinct_event_ids, "{app} events");
        assert_eq!(got.rows as u64, truth.requests, "{app} rows");
        assert_eq!(got.rows, got.distinct_events, "{app}: no duplicate rows");
        assert_eq!(got.errors as u64, truth.errors, "{app} errors");
        assert_eq!(got.input_tokens as u64, truth.input_tokens, "{app} input tokens");
        assert_eq!(got.output_tokens as u64, truth.output_tokens, "{app} output tokens");
        feedback.get(app).cloned().unwrap_or_default().assert_matches(truth, app, "");
        assert!(truth.feedback > 0 && truth.hallucination_flagged > 0, "{app}: the fleet rates its calls");
    }

    // Tokens read from and written to the prompt cache, which price differently from other input.
    let mut written_somewhere = false;
    let cache = "SELECT app, sum(cache_read_tokens), sum(cache_write_tokens) FROM events GROUP BY app";
    for row in common::sql_rows(&session, cache).await? {
        let [Some(app), read, written] = &row[..] else { bail!("unexpected row {row:?}") };
        let Some(truth) = truth.per_app.get(app) else { continue };
        let sum = |tokens: &Option<String>| tokens.as_deref().map_or(Ok(0), str::parse::<u64>);
        assert_eq!((sum(read)?, sum(written)?), (truth.cache_read_tokens, truth.cache_write_tokens), "{app} cache");
        written_somewhere |= truth.cache_write_tokens > 0;
    }
    assert!(written_somewhere, "the fleet's Anthropic calls write the prompt cache");

    // Cost: rows and spend per app and price version, priced by this test from the registry.
    let expected_prices = expected_prices(&fleet, &registry)?;
    let mut lake_prices = RowsAndCost::new();
    let by_version = "SELECT app, price_version, count(*), sum(cost_usd) FROM events GROUP BY app, price_version";
    for row in common::sql_rows(&session, by_version).await? {
        let [Some(app), version, Some(rows), cost] = &row[..] else { bail!("unexpected row {row:?}") };
        if truth.per_app.contains_key(app) {
            let cost = cost.as_deref().map_or(Ok(0.0), str::parse)?;
            lake_prices.insert((app.clone(), version.clone()), (rows.parse()?, cost));
        }
    }
    assert_eq!(
        lake_prices.keys().collect::<Vec<_>>(),
        expected_prices.keys().collect::<Vec<_>>(),
        "price versions per app"
    );
    for (key, &(rows, cost)) in &expected_prices {
        let (got_rows, got_cost) = lake_prices[key];
        assert_eq!(got_rows, rows, "{key:?} rows");
        assert!((got_cost - cost).abs() <= 1e-9 * cost.max(1.0), "{key:?} cost: lake {got_cost} list prices {cost}");
    }
    // The fleet crosses a price change: some model is priced at two versions. Its one gpt-4o
    // app is served in the priority tier from 2026-11-14 on, so at both prices' priority rates.
    let mut versions_per_model: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (_, version) in lake_prices.keys() {
        if let Some((model, date)) = version.as_deref().and_then(|v| v.split_once('@')) {
            versions_per_model.entry(model).or_default().insert(date);
        }
    }
    assert_eq!(
        versions_per_model.get("gpt-4o"),
        Some(&BTreeSet::from(["2024-08-06", "2024-08-06+priority", "2026-11-15+priority"])),
        "both gpt-4o prices, and their priority rates, in the lake: {versions_per_model:?}"
    );

    // Python SDK apps: the generator script's expected.json. Each fixture is present twice (JSON
    // lines and protobuf) with the same ids: the rows are there twice, the distinct events once.
    let python_apps = python["traces"]["apps"].as_object().context("expected.json has traces.apps")?;
    let number = |value: &serde_json::Value| value.as_i64().context("a number in expected.json");
    for (app, expected) in python_apps {
        let got = counts.per_app.get(app).with_context(|| format!("python app {app} missing"))?;
        assert_eq!(got.distinct_events, number(&expected["events"])?, "{app} python events");
        assert_eq!(got.rows, 2 * got.distinct_events, "{app}: both encodings landed");
        assert_eq!(got.input_tokens, 2 * number(&expected["input_tokens"])?, "{app} python input tokens");
        assert_eq!(got.output_tokens, 2 * number(&expected["output_tokens"])?, "{app} python output tokens");
        assert_eq!(got.errors, 2 * number(&expected["errors"])?, "{app} python errors");
    }
    let in_python_apps = python_apps.keys().map(|app| format!("'{app}'")).collect::<Vec<_>>().join(", ");
    let event_ids: Vec<String> = common::sql_rows(
        &session,
        &format!("SELECT DISTINCT event_id FROM events WHERE app IN ({in_python_apps}) ORDER BY event_id"),
    )
    .await?
    .into_iter()
    .filter_map(|row| row.into_iter().next().flatten())
    .collect();
    let expected_ids: Vec<String> = serde_json::from_value(python["traces"]["event_ids"].clone())?;
    assert_eq!(event_ids, expected_ids, "python event ids");
    let mut ttft: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let with_ttft =
        format!("SELECT event_id, ttft_ms FROM events WHERE app IN ({in_python_apps}) AND ttft_ms IS NOT NULL");
    for row in common::sql_rows(&session, &with_ttft).await? {
        let [Some(id), Some(ms)] = &row[..] else { bail!("unexpected row {row:?}") };
        ttft.entry(id.clone()).or_default().push(ms.parse()?);
    }
    let expected_ttft: BTreeMap<String, f64> = serde_json::from_value(python["traces"]["ttft_ms"].clone())?;
    let expected_ttft: BTreeMap<String, Vec<f64>> =
        expected_ttft.into_iter().map(|(id, ms)| (id, vec![ms, ms])).collect();
    assert_eq!(ttft, expected_ttft, "python time to first token, once per encoding");

    // Python feedback, per fixture file: the logs' evaluations (and not the log record that is
    // none), the traces' span event.
    let python_feedback = common::sql_rows(
        &session,
        "SELECT source_topic, name, inference_id, app FROM feedback WHERE source_topic LIKE '%/python_%'",
    )
    .await?;
    for (file, part) in PYTHON_FILES {
        let rows: Vec<&Vec<Option<String>>> =
            python_feedback.iter().filter(|row| row[0].as_deref().is_some_and(|t| t.ends_with(file))).collect();
        assert_eq!(rows.len() as i64, number(&python[part]["feedback"])?, "{file} feedback rows");
        if part == "logs" {
            let mut names: Vec<String> = rows.iter().filter_map(|row| row[1].clone()).collect();
            names.sort();
            assert_eq!(names, serde_json::from_value::<Vec<String>>(python["logs"]["names"].clone())?, "{file} names");
            let ids: BTreeSet<String> = rows.iter().filter_map(|row| row[2].clone()).collect();
            let expected: BTreeSet<String> = serde_json::from_value(python["logs"]["inference_ids"].clone())?;
            assert_eq!(ids, expected, "{file} feedback tied to its inferences");
            // Each evaluation takes the app of the call it rates, not its log's resource (the
            // correctness annotation comes from service "search-api" about an app "search" call).
            let apps: BTreeMap<String, String> =
                rows.iter().filter_map(|row| Some((row[1].clone()?, row[3].clone()?))).collect();
            let expected: BTreeMap<String, String> = serde_json::from_value(python["logs"]["apps"].clone())?;
            assert_eq!(apps, expected, "{file} feedback under the rated call's app");
        }
    }
    assert_eq!(number(&python["logs"]["skipped"])?, 1, "expected.json: one log record is no feedback");
    let python_dead =
        common::sql_rows(&session, "SELECT count(*) FROM dead_letter WHERE source_topic LIKE '%/python_%'");
    assert_eq!(python_dead.await?, vec![vec![Some("0".to_owned())]], "a log record that is no feedback is skipped");

    // Every row is accounted for, and no app appears that was not sent.
    let python_rows: i64 = python_apps.values().map(|app| number(&app["events"])).sum::<anyhow::Result<i64>>()?;
    assert_eq!(counts.event_rows as u64, truth.total().requests + 2 * python_rows as u64, "event rows");
    let sent_apps: BTreeSet<&String> = truth.per_app.keys().chain(python_apps.keys()).collect();
    assert_eq!(counts.per_app.keys().collect::<BTreeSet<_>>(), sent_apps, "apps in the lake");

    // Every malformed message is in dead_letter, under the reason its kind gets.
    assert_eq!(counts.dead_letters as u64, truth.malformed_messages, "dead letters");
    let totals = driftwatch_analyze::lake_totals(&session).await?;
    let by_reason: BTreeMap<String, u64> =
        totals.dead_letters_by_reason.into_iter().map(|(reason, count)| (reason, count as u64)).collect();
    assert_eq!(by_reason, truth.dead_letters_by_reason, "dead letters by reason");

    // A second run resumes from the checkpoints and writes nothing new.
    common::ingest_files(&input, &lake, Some(&config))?;
    assert_eq!(common::lake_counts(&lake).await?, counts, "re-running over the same files must not add rows");
    assert_eq!(common::lake_feedback_and_rollups(&lake).await?, feedback, "nor feedback, nor rollups");
    Ok(())
}

/// Every string and binary value of `table`, nested ones included, one per line (binary read as
/// lossy UTF-8: planted text in it stays whole).
async fn table_text(session: &LakeSession, table: &str) -> anyhow::Result<String> {
    use arrow::array::{Array, ArrayRef, AsArray};
    use arrow::datatypes::DataType;
    fn collect(array: &ArrayRef, out: &mut String) -> anyhow::Result<()> {
        match array.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
                let text = arrow::compute::cast(array, &DataType::Utf8)?;
                for value in text.as_string::<i32>().iter().flatten() {
                    out.push_str(value);
                    out.push('\n');
                }
            }
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
                let bytes = arrow::compute::cast(array, &DataType::Binary)?;
                for value in bytes.as_binary::<i32>().iter().flatten() {
                    out.push_str(&String::from_utf8_lossy(value));
                    out.push('\n');
                }
            }
            DataType::Struct(_) => {
                for column in array.as_struct().columns() {
                    collect(column, out)?;
                }
            }
            DataType::List(_) => collect(array.as_list::<i32>().values(), out)?,
            DataType::LargeList(_) => collect(array.as_list::<i64>().values(), out)?,
            _ => {}
        }
        Ok(())
    }
    let mut out = String::new();
    for batch in session.sql_to_batches(&format!("SELECT * FROM {table}")).await? {
        for column in batch.columns() {
            collect(column, &mut out)?;
        }
    }
    Ok(out)
}

/// What the scrubber replaces each kind of planted data with.
fn placeholder(kind: PlantedPii) -> &'static str {
    match kind {
        PlantedPii::Email => "[EMAIL]",
        PlantedPii::Phone => "[PHONE]",
        PlantedPii::Card => "[CARD_NUMBER]",
        PlantedPii::ApiKey => "[API_KEY]",
        PlantedPii::Jwt => "[JWT]",
    }
}

/// Content retention on for every app, and personal data planted in prompts and in malformed
/// messages: no table of the lake holds any of it, and the scrubber's placeholders stand in
/// its place (so the test cannot pass on a lake without content).
#[tokio::test(flavor = "multi_thread")]
async fn planted_personal_data_never_reaches_the_lake_with_content_retention_on() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (input, lake) = (dir.path().join("input"), dir.path().join("lake"));
    let fleet = Fleet::new(FleetConfig { seed: 23, apps: 6, inferences: 1_500, ..FleetConfig::default() });
    let generated = write_fleet_files(&fleet, &input, FormatMix::Mixed, 10, 0.03, 23)?;
    assert!(generated.truth.malformed_messages >= 10, "malformed input carries personal data too");

    // Planted values per event, regenerated from the fleet.
    let mut planted: BTreeMap<String, (PlantedPii, String)> = BTreeMap::new();
    for record in fleet.records() {
        if let FleetRecord::Inference(event) = record
            && let Some((kind, value)) = event.input_content.as_deref().and_then(planted_pii)
        {
            planted.insert(event.event_id.clone(), (kind, value.to_owned()));
        }
    }
    let kinds: BTreeSet<PlantedPii> = planted.values().map(|(kind, _)| *kind).collect();
    assert_eq!(kinds.len(), PlantedPii::ALL.len(), "every kind is planted: {planted:?}");

    let config = dir.path().join("driftwatch.toml");
    // Retention on for every app and the default, so dead letters keep their (scrubbed) content
    // too: a rejected message's app is unknown, and only then is its content kept.
    let apps: String = fleet
        .apps()
        .iter()
        .map(|app| format!("[[apps]]\nid = \"{}\"\nteam = \"privacy\"\nretain_content = true\n\n", app.id))
        .collect();
    std::fs::write(&config, format!("[default_app]\nretain_content = true\n\n{apps}"))?;
    common::ingest_files(&input, &lake, Some(&config))?;

    let session = LakeSession::open(&lake.display().to_string(), None).await?;
    let mut content: BTreeMap<String, String> = BTreeMap::new();
    for row in common::sql_rows(&session, "SELECT event_id, content FROM events").await? {
        if let [Some(id), Some(text)] = &row[..] {
            content.insert(id.clone(), text.clone());
        }
    }
    let distinct_events: u64 = generated.truth.per_app.values().map(|t| t.distinct_event_ids).sum();
    assert_eq!(content.len() as u64, distinct_events, "every event keeps its content");
    for (event_id, (kind, value)) in &planted {
        let kept = content.get(event_id).with_context(|| format!("event {event_id} missing"))?;
        assert!(kept.contains(placeholder(*kind)), "{kind:?} {value:?} not masked in {kept}");
    }

    let secrets: Vec<&str> = planted.values().map(|(_, value)| value.as_str()).chain(malformed::PLANTED_PII).collect();
    for table in ["events", "feedback", "dead_letter", "rollups"] {
        let text = table_text(&session, table).await?;
        let leaked: Vec<&&str> = secrets.iter().filter(|secret| text.contains(**secret)).collect();
        assert!(leaked.is_empty(), "{table} holds planted personal data: {leaked:?}");
    }
    let dead_letters = table_text(&session, "dead_letter").await?;
    for kind in [PlantedPii::Email, PlantedPii::Phone, PlantedPii::Card, PlantedPii::Jwt] {
        assert!(dead_letters.contains(placeholder(kind)), "no {} in the dead letters", placeholder(kind));
    }
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
fn the_checkpoint_record(lake: &Path) -> anyhow::Result<(PathBuf, serde_json::Value)> {
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

/// With `[fingerprint] key_file`, the lake's content fingerprints are the keyed ones (so a guess
/// cannot be checked against them without the key) and still equal for equal texts; the key is
/// printed nowhere, and a malformed key stops the run naming the setting, not the key.
#[tokio::test]
async fn a_fingerprint_key_keys_the_lakes_content_hashes_and_is_never_printed() -> anyhow::Result<()> {
    use driftwatch_ingest::enrich::{FingerprintKey, content_hash, keyed_content_hash};
    const KEY: &str = "5f0e8c1b2a3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7";
    const PROMPT: &str = "What is the balance of account 4711?";
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("events.ndjson");
    let line = |id: &str| {
        format!(
            "{{\"id\":\"{id}\",\"time\":\"2026-11-20T10:00:00Z\",\"app\":\"bank\",\"request_model\":\"gpt-4o\",\
             \"input_tokens\":5,\"output_tokens\":7,\"latency_ms\":120,\"input\":\"{PROMPT}\",\"output\":\"It is 12.\"}}\n"
        )
    };
    std::fs::write(&input, format!("{}{}", line("k1"), line("k2")))?;
    let key_file = dir.path().join("fingerprint.key");
    std::fs::write(&key_file, format!("{KEY}\n"))?;
    let config = dir.path().join("keyed.toml");
    std::fs::write(&config, format!("[fingerprint]\nkey_file = \"{}\"\n", key_file.display()))?;

    let input_hashes = |lake: std::path::PathBuf| async move {
        let session = LakeSession::open(&lake.display().to_string(), None).await?;
        let rows = common::sql_rows(&session, "SELECT input_hash FROM events ORDER BY event_id").await?;
        anyhow::Ok(rows.into_iter().map(|row| row.into_iter().next().flatten()).collect::<Vec<_>>())
    };
    common::ingest_files(&input, &dir.path().join("plain"), None)?;
    let printed = common::ingest_files(&input, &dir.path().join("keyed"), Some(&config))?;
    let key = FingerprintKey::from_hex(KEY)?;
    assert_eq!(input_hashes(dir.path().join("plain")).await?, vec![Some(content_hash(PROMPT)); 2]);
    assert_eq!(input_hashes(dir.path().join("keyed")).await?, vec![Some(keyed_content_hash(&key, PROMPT)); 2]);
    assert_ne!(keyed_content_hash(&key, PROMPT), content_hash(PROMPT));
    assert!(!printed.contains(&KEY[..16]), "the key printed: {printed}");

    std::fs::write(&key_file, &KEY[1..])?;
    for command in ["check-config", "ingest"] {
        let mut run = common::driftwatch();
        run.arg(command).arg("--config").arg(&config);
        if command == "ingest" {
            run.arg("--source").arg(format!("file:{}", input.display())).arg("--lake").arg(dir.path().join("bad"));
        }
        let output = run.stdin(std::process::Stdio::null()).output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{command} accepted a 63-character key: {stderr}");
        assert!(stderr.contains("fingerprint.key_file"), "{command}: {stderr}");
        assert!(!stderr.contains(&KEY[1..17]), "{command} printed the key: {stderr}");
    }
    assert!(!dir.path().join("bad").exists(), "a run with a bad key wrote a lake");
    Ok(())
}
