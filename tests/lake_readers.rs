//! Outside readers read the lake the way README.md ("Reading the lake from other tools") says:
//! tests/readers/read_lake.py applies those recipes (pandas/pyarrow, DuckDB, DataFusion, polars,
//! the `hdrhistogram` PyPI package) with the dev stack's pinned Python packages, and every
//! figure it prints must be the figure driftwatch's own DataFusion session reads from the same
//! lake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, bail, ensure};
use driftwatch_analyze::LakeSession;
use driftwatch_ingest::fleet::files::{FormatMix, write_fleet_files};
use driftwatch_ingest::fleet::{Fleet, FleetConfig};
use serde_json::Value;

const SEED: u64 = 11;
/// An app whose `app=` folder looks like a number to readers that infer folder key types.
const INTEGER_APP: &str = "2024";
/// The reader script, run with `DRIFTWATCH_TEST_PYTHON`.
const SCRIPT: &str = "tests/readers/read_lake.py";

/// JSON lines the fleet never writes, as two files: calls of an app whose name looks like a
/// number, all in one minute and split between the files (so the lake holds two partial rollup
/// rows of that minute), and feedback on them that is a label only (a thumbs-down without a
/// score) beside scored results, under names that differ only in case, and a name that is never
/// scored.
fn extra_files() -> [(&'static str, String); 2] {
    let call = |n: usize| {
        serde_json::json!({
            "id": format!("int-{n}"), "time": format!("2026-11-01T00:10:0{n}Z"), "app": INTEGER_APP,
            "provider": "openai", "request_model": "gpt-4o", "input_tokens": 100 + n, "output_tokens": 20 + n,
            "latency_ms": 300 + 50 * n, "status": "ok",
        })
    };
    let feedback = [
        ("user_thumbs", None, Some("down")),
        ("user_thumbs", Some(1.0), Some("up")),
        ("user_thumbs", None, Some("thumbs_down")),
        ("Helpfulness", Some(0.8), None),
        ("helpfulness", Some(0.5), None),
        ("HELPFULNESS", None, Some("good")),
        ("tone", None, Some("fail")),
    ];
    let mut second: Vec<serde_json::Value> = (4..8).map(call).collect();
    for (n, (name, score, label)) in feedback.into_iter().enumerate() {
        let mut line = serde_json::json!({
            "type": "feedback", "id": format!("fb-{n}"), "time": format!("2026-11-01T00:2{n}:00Z"),
            "app": INTEGER_APP, "name": name, "inference_id": format!("int-{n}"),
        });
        if let Some(score) = score {
            line["score"] = score.into();
        }
        if let Some(label) = label {
            line["label"] = label.into();
        }
        second.push(line);
    }
    let lines = |values: Vec<serde_json::Value>| values.iter().map(|value| format!("{value}\n")).collect();
    [("readers_a.ndjson", lines((0..4).map(call).collect())), ("readers_b.ndjson", lines(second))]
}

/// A lake from a small fleet (late calls, feedback, malformed input, one app keeping content)
/// plus [`extra_files`], ingested from files by the real binary.
fn make_lake(dir: &Path) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let (input, lake) = (dir.join("input"), dir.join("lake"));
    let fleet =
        Fleet::new(FleetConfig { seed: SEED, apps: 6, inferences: 3_000, late_ratio: 0.05, ..FleetConfig::default() });
    let generated = write_fleet_files(&fleet, &input, FormatMix::Mixed, 10, 0.02, SEED)?;
    ensure!(generated.truth.malformed_messages > 0, "the input must hold malformed messages");
    for (name, lines) in extra_files() {
        std::fs::write(input.join(name), lines)?;
    }
    let config = dir.join("driftwatch.toml");
    let retaining = &fleet.apps()[0].id;
    std::fs::write(&config, format!("[[apps]]\nid = \"{retaining}\"\nteam = \"readers\"\nretain_content = true\n"))?;
    common::ingest_files(&input, &lake, Some(&config))?;
    Ok((input, lake))
}

/// The first parquet file of `table` in path order (the first a reader lists), or the first for
/// which `pick` holds.
fn first_file(
    lake: &Path,
    table: &str,
    pick: impl Fn(&arrow::record_batch::RecordBatch) -> bool,
) -> anyhow::Result<(std::path::PathBuf, arrow::record_batch::RecordBatch)> {
    use driftwatch_lake::parquet::read_parquet;
    for path in common::files_under(&lake.join(table)) {
        if path.extension().is_none_or(|extension| extension != "parquet") {
            continue;
        }
        let batches = read_parquet(bytes::Bytes::from(std::fs::read(&path)?))?;
        let [batch] = &batches[..] else { bail!("{}: {} batches", path.display(), batches.len()) };
        if pick(batch) {
            return Ok((path, batch.clone()));
        }
    }
    bail!("no {table} file to age")
}

/// `batch` with `column` replaced by `array` (of a new type, named as before).
fn replace_column(
    batch: &arrow::record_batch::RecordBatch,
    column: &str,
    array: arrow::array::ArrayRef,
) -> anyhow::Result<arrow::record_batch::RecordBatch> {
    use arrow::datatypes::{Field, Schema};
    let index = batch.schema().index_of(column)?;
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|field| field.as_ref().clone()).collect();
    fields[index] = fields[index].clone().with_data_type(array.data_type().clone());
    let mut columns = batch.columns().to_vec();
    columns[index] = array;
    Ok(arrow::record_batch::RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns)?)
}

/// Rewrites files as older releases wrote them, so that the lake is one an upgrade left mixed
/// and readers must still see the newer files' columns and read both kinds alike:
/// - the first events and rollups files (the first a reader lists) without `cache_write_tokens`;
/// - the first events, rollups and dead-letter files with their times in nanoseconds, as before
///   times were stored to the microsecond;
/// - the first rollups file that holds scored feedback without the tallies' `scored` field.
fn age_files_as_older_releases_wrote_them(lake: &Path) -> anyhow::Result<()> {
    use arrow::array::{Array, AsArray, ListArray, StructArray};
    use arrow::datatypes::{DataType, Fields, TimeUnit};
    use driftwatch_lake::layout::FileKind;
    use driftwatch_lake::parquet::{ParquetOptions, write_parquet};
    use std::sync::Arc;
    let write = |path: &Path, batch: &arrow::record_batch::RecordBatch, kind| -> anyhow::Result<()> {
        std::fs::write(path, write_parquet(batch, ParquetOptions::default().writer_properties(kind)?)?)?;
        Ok(())
    };
    let in_nanoseconds = |batch: &arrow::record_batch::RecordBatch| -> anyhow::Result<_> {
        let mut batch = batch.clone();
        for field in batch.schema().fields().iter() {
            if let DataType::Timestamp(TimeUnit::Microsecond, zone) = field.data_type() {
                let nanos = DataType::Timestamp(TimeUnit::Nanosecond, zone.clone());
                let column = arrow::compute::cast(batch.column_by_name(field.name()).context("column")?, &nanos)?;
                batch = replace_column(&batch, field.name(), column)?;
            }
        }
        Ok(batch)
    };
    for (table, kind) in [("events", FileKind::Events), ("rollups", FileKind::Rollups)] {
        let (path, mut batch) = first_file(lake, table, |_| true)?;
        batch.remove_column(batch.schema().index_of("cache_write_tokens")?);
        write(&path, &in_nanoseconds(&batch)?, kind)?;
    }
    let (path, batch) = first_file(lake, "dead_letter", |_| true)?;
    write(&path, &in_nanoseconds(&batch)?, FileKind::DeadLetter)?;

    let scored = |batch: &arrow::record_batch::RecordBatch| {
        batch.column_by_name("feedback").and_then(|column| column.as_list_opt::<i32>()).is_some_and(|lists| {
            let tallies = lists.values().as_struct();
            tallies.column_by_name("scored").is_some_and(|scored| {
                scored.as_primitive::<arrow::datatypes::Int64Type>().iter().any(|n| n.unwrap_or(0) > 0)
            })
        })
    };
    let (path, batch) = first_file(lake, "rollups", scored)?;
    let lists = batch.column_by_name("feedback").context("feedback")?.as_list::<i32>();
    let tallies = lists.values().as_struct();
    let (fields, columns): (Vec<_>, Vec<_>) = tallies
        .fields()
        .iter()
        .zip(tallies.columns())
        .filter(|(field, _)| field.name() != "scored")
        .map(|(field, column)| (Arc::clone(field), Arc::clone(column)))
        .unzip();
    let unscored = StructArray::try_new(Fields::from(fields), columns, tallies.nulls().cloned())?;
    let DataType::List(item) = lists.data_type() else { bail!("feedback is no list") };
    let item = Arc::new(item.as_ref().clone().with_data_type(unscored.data_type().clone()));
    let lists = ListArray::try_new(item, lists.offsets().clone(), Arc::new(unscored), lists.nulls().cloned())?;
    let batch = replace_column(&batch, "feedback", Arc::new(lists))?;
    write(&path, &batch, FileKind::Rollups)?;
    Ok(())
}

/// What the reader script printed.
fn read_with_python(lake: &Path) -> anyhow::Result<Value> {
    let python = common::stack_var("DRIFTWATCH_TEST_PYTHON");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPT);
    let stdout = common::run_ok(std::process::Command::new(&python).arg(&script).arg(lake).arg(INTEGER_APP))?;
    serde_json::from_str(&stdout).with_context(|| format!("{SCRIPT} printed no JSON:\n{stdout}"))
}

fn approx_eq(a: f64, b: f64, relative: f64) -> bool {
    a == b || (a - b).abs() <= relative * a.abs().max(b.abs())
}

fn number(value: &Value, what: &str) -> anyhow::Result<f64> {
    value.as_f64().with_context(|| format!("{what}: not a number: {value}"))
}

fn integer(value: &Value, what: &str) -> anyhow::Result<i64> {
    value.as_i64().with_context(|| format!("{what}: not an integer: {value}"))
}

/// `SELECT key, figures... GROUP BY key` as key -> figures, every value parsed as f64 (null: NaN).
async fn keyed_figures(session: &LakeSession, sql: &str) -> anyhow::Result<BTreeMap<String, Vec<f64>>> {
    let mut out = BTreeMap::new();
    for row in common::sql_rows(session, sql).await? {
        let key = row[0].clone().with_context(|| format!("null key in {sql}"))?;
        let figures = row[1..]
            .iter()
            .map(|value| value.as_deref().map_or(Ok(f64::NAN), str::parse))
            .collect::<Result<Vec<f64>, _>>()?;
        out.insert(key, figures);
    }
    Ok(out)
}

/// One column of distinct values, sorted.
async fn distinct(session: &LakeSession, sql: &str) -> anyhow::Result<Vec<String>> {
    let values: BTreeSet<String> =
        common::sql_rows(session, sql).await?.into_iter().filter_map(|row| row.into_iter().next().flatten()).collect();
    Ok(values.into_iter().collect())
}

/// Per-app events figures of either reader against driftwatch's.
fn assert_events(reader: &str, got: &Value, lake: &common::LakeCounts) -> anyhow::Result<()> {
    let got = got.as_object().with_context(|| format!("{reader}: events is no object"))?;
    assert_eq!(got.keys().collect::<Vec<_>>(), lake.per_app.keys().collect::<Vec<_>>(), "{reader}: apps");
    for (app, want) in &lake.per_app {
        let figures = &got[app];
        let what = format!("{reader} {app}");
        assert_eq!(integer(&figures["rows"], &what)?, want.rows, "{what} rows");
        assert_eq!(integer(&figures["input_tokens"], &what)?, want.input_tokens, "{what} input tokens");
        assert_eq!(integer(&figures["output_tokens"], &what)?, want.output_tokens, "{what} output tokens");
        let cost = number(&figures["cost_usd"], &what)?;
        assert!(approx_eq(cost, want.cost_usd, 1e-9), "{what} cost: {cost} vs driftwatch {}", want.cost_usd);
    }
    Ok(())
}

/// Mean score per lower-cased name, from the reader's JSON (null: no scored result).
fn means(value: &Value) -> anyhow::Result<BTreeMap<String, Option<f64>>> {
    let object = value.as_object().context("means: no object")?;
    Ok(object.iter().map(|(name, mean)| (name.clone(), mean.as_f64())).collect())
}

fn assert_means(what: &str, got: &BTreeMap<String, Option<f64>>, want: &BTreeMap<String, Option<f64>>) {
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{what}: names");
    for (name, want) in want {
        match (got[name], *want) {
            (Some(got), Some(want)) => assert!(approx_eq(got, want, 1e-9), "{what} {name}: {got} vs {want}"),
            (got, want) => assert_eq!(got, want, "{what} {name}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_readers_following_the_readme_see_what_driftwatch_sees() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (input, lake) = make_lake(dir.path())?;

    // The documented meaning of `scored`, on the lake as this release writes it: score_sum /
    // scored is the mean of the scores the feedback table holds, and label-only results count
    // without being scored.
    let tally_sql = "SELECT lower(t['name']), sum(t['count']), sum(t['scored']), sum(t['score_sum']), \
                     sum(CASE WHEN t['scored'] IS NOT NULL THEN t['score_sum'] END) \
                     FROM (SELECT unnest(feedback) AS t FROM rollups) GROUP BY 1";
    let means_of = |tallies: &BTreeMap<String, Vec<f64>>| -> BTreeMap<String, Option<f64>> {
        // The README's rule: rows written before `scored` existed are left out.
        tallies
            .iter()
            .map(|(name, figures)| (name.clone(), (figures[1] > 0.0).then(|| figures[3] / figures[1])))
            .collect()
    };
    let (tallies, table_means) = {
        let current = LakeSession::open(&lake.display().to_string(), None).await?;
        let tallies = keyed_figures(&current, tally_sql)
            .await
            .context("summing rollups.feedback[].scored (README: a name's mean score is score_sum / scored)")?;
        let table = keyed_figures(&current, "SELECT lower(name), avg(score_value) FROM feedback GROUP BY 1").await?;
        let table_means: BTreeMap<String, Option<f64>> =
            table.iter().map(|(name, figures)| (name.clone(), (!figures[0].is_nan()).then_some(figures[0]))).collect();
        (tallies, table_means)
    };
    assert_means("rollup score_sum / scored against feedback avg(score_value)", &means_of(&tallies), &table_means);
    let thumbs = &tallies["user_thumbs"];
    assert!(thumbs[0] > thumbs[1], "label-only thumbs are counted but not scored: {thumbs:?}");
    assert_eq!(means_of(&tallies)["tone"], None, "a name without any score has no mean");

    age_files_as_older_releases_wrote_them(&lake)?;
    let session = LakeSession::open(&lake.display().to_string(), None).await?;

    // driftwatch's own figures, over the lake an upgrade left mixed.
    let counts = common::lake_counts(&lake).await?;
    ensure!(counts.per_app.contains_key(INTEGER_APP), "the integer-looking app is in the lake");
    let rollup_requests = keyed_figures(&session, "SELECT app, sum(requests) FROM rollups GROUP BY app").await?;
    let partials = common::sql_rows(
        &session,
        "SELECT count(*) FROM (SELECT window_start, app, environment, provider, response_model, prompt_id, \
         prompt_version, operation FROM rollups GROUP BY ALL HAVING count(*) > 1)",
    )
    .await?;
    let partial_keys: i64 = partials[0][0].as_deref().context("a count")?.parse()?;
    assert!(partial_keys > 0, "two files' calls in one minute leave two rollup rows of one key: readers sum them");
    let quantiles = keyed_figures(
        &session,
        "SELECT app, hdr_quantile(latency_us_hist, 0.5), hdr_quantile(latency_us_hist, 0.95), \
         hdr_quantile(ttft_us_hist, 0.5) FROM rollups GROUP BY app",
    )
    .await?;
    let merged = merged_latency(&session).await?;
    let aged_tallies = keyed_figures(&session, tally_sql).await?;
    let rollup_means = means_of(&aged_tallies);
    ensure!(
        aged_tallies.values().any(|figures| figures[2] > figures[3]),
        "an older file's tallies, with scores but no `scored`, would skew a mean over every row: {aged_tallies:?}"
    );
    let totals = driftwatch_analyze::lake_totals(&session).await?;
    let dead_letters: BTreeMap<String, i64> = totals.dead_letters_by_reason.into_iter().collect();
    ensure!(!dead_letters.is_empty(), "the lake holds dead letters");

    let python = read_with_python(&lake)?;
    let (pandas, duck) = (&python["pandas"], &python["duckdb"]);

    // Events, through every reader.
    assert_events("pandas", &pandas["events"], &counts)?;
    assert_events("duckdb", &duck["events"], &counts)?;
    assert_events("datafusion", &python["datafusion"]["events"], &counts)?;
    assert_events("polars", &python["polars"]["events"], &counts)?;
    let dtypes = serde_json::json!({
        "app": "string[pyarrow]", "date": "string[pyarrow]",
        "output_simhash": "uint64[pyarrow]", "cost_usd": "double[pyarrow]",
    });
    assert_eq!(pandas["dtypes"], dtypes, "pandas column types");
    assert_eq!(duck["app_type"], "VARCHAR", "duckdb app type");
    assert_eq!(duck["integer_app"], serde_json::json!([[INTEGER_APP, "VARCHAR"]]), "one integer-looking app folder");
    let max_simhash = distinct(&session, "SELECT CAST(max(output_simhash) AS VARCHAR) FROM events").await?;
    assert!(max_simhash[0].parse::<u64>()? > i64::MAX as u64, "a simhash past i64: {max_simhash:?}");
    assert_eq!(pandas["max_output_simhash"], max_simhash[0], "pandas keeps UINT64 exact");
    assert_eq!(duck["max_output_simhash"], max_simhash[0], "duckdb keeps UINT64 exact");
    let content_rows = distinct(&session, "SELECT CAST(count(content) AS VARCHAR) FROM events").await?;
    assert_ne!(content_rows[0], "0", "one app keeps content");
    assert_eq!(pandas["content_rows"].to_string(), content_rows[0], "content rows");
    assert_eq!(pandas["content_keys"], serde_json::json!(["input,output"]), "content is {{input, output}}");

    let versions = distinct(&session, "SELECT DISTINCT price_version FROM events").await?;
    assert_eq!(duck["price_versions"], serde_json::json!(versions), "price versions");
    for version in &versions {
        let (model, date) = version.split_once('@').with_context(|| format!("{version}: no @"))?;
        ensure!(!model.is_empty(), "{version}: no model");
        // A call billed at a service tier's rates names the tier after the date.
        let (date, tier) = date.split_once('+').unwrap_or((date, "default"));
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .with_context(|| format!("{version}: not <model>@<date>[+<tier>]"))?;
        ensure!(!tier.is_empty(), "{version}: an empty tier");
    }
    ensure!(versions.iter().any(|v| v.ends_with("+priority")), "the fleet's priority calls: {versions:?}");
    let topics = distinct(&session, "SELECT DISTINCT source_topic FROM events").await?;
    assert_eq!(duck["source_topics"], serde_json::json!(topics), "source topics");
    let input = std::fs::canonicalize(input)?;
    for topic in &topics {
        assert!(Path::new(topic).starts_with(&input), "{topic}: the ingested file's absolute path");
    }

    // Rollups: partial rows summed, histograms decoded and merged with hdrh.
    for (app, figures) in &rollup_requests {
        assert_eq!(pandas["rollup_requests"][app].as_f64(), Some(figures[0]), "{app} rollup requests");
    }

    // A column the first files lack (written before it existed) is still seen in the others.
    let sum_or_zero = |figure: f64| if figure.is_nan() { 0.0 } else { figure };
    let written_events =
        keyed_figures(&session, "SELECT app, sum(cache_write_tokens) FROM events GROUP BY app").await?;
    let written_rollups =
        keyed_figures(&session, "SELECT app, sum(cache_write_tokens) FROM rollups GROUP BY app").await?;
    ensure!(written_events.values().any(|figures| figures[0] > 0.0), "the fleet writes to the prompt cache");
    for (app, figures) in &written_events {
        let want = sum_or_zero(figures[0]);
        for (reader, got) in [("pandas", &pandas["events"]), ("duckdb", &duck["events"])] {
            assert_eq!(got[app]["cache_write_tokens"].as_f64(), Some(want), "{reader} {app} events cache writes");
        }
    }
    for (app, figures) in &written_rollups {
        let want = sum_or_zero(figures[0]);
        for (reader, got) in [("pandas", pandas), ("duckdb", duck)] {
            let got = got["rollup_cache_write_tokens"][app].as_f64().unwrap_or(0.0);
            assert_eq!(got, want, "{reader} {app} rollup cache writes");
        }
    }
    let histograms = python["histograms"].as_object().context("histograms")?;
    assert_eq!(histograms.keys().collect::<Vec<_>>(), quantiles.keys().collect::<Vec<_>>(), "histogram apps");
    for (app, figures) in &quantiles {
        let got = &histograms[app];
        let what = format!("{app} latency");
        let mut latency = driftwatch_lake::histogram::new_histogram()?;
        driftwatch_lake::histogram::merge_serialized(&mut latency, &merged[app])?;
        assert_eq!(integer(&got["latency_count"], &what)? as u64, latency.len(), "{what} count");
        assert_eq!(number(&got["latency_p50_us"], &what)?, figures[0], "{what} p50 (README rule)");
        assert_eq!(number(&got["latency_p95_us"], &what)?, figures[1], "{what} p95 (README rule)");
        // hdrh's own percentile takes the rank rounded to nearest (driftwatch rounds it up): the
        // value at that rank, which may sit some buckets away from driftwatch's p95.
        let rank = ((95.0 * latency.len() as f64 / 100.0) + 0.5) as u64;
        let at_rank = latency.value_at_quantile((rank.max(1) as f64 - 0.5) / latency.len() as f64);
        assert_eq!(integer(&got["latency_p95_us_hdrh"], &what)? as u64, at_rank, "{what} p95 (hdrh's rule)");
        match got["ttft_p50_us"].as_f64() {
            Some(ttft) => assert_eq!(ttft, figures[2], "{app} ttft p50"),
            None => assert!(figures[2].is_nan() || figures[2] == 0.0, "{app}: ttft only where driftwatch has it"),
        }
    }

    // Feedback: mean score per name from rollup tallies and from the feedback table.
    for reader in ["pandas", "duckdb"] {
        assert_means(
            &format!("{reader} rollup means"),
            &means(&python[reader]["feedback_mean_rollups"])?,
            &rollup_means,
        );
        assert_means(
            &format!("{reader} feedback table means"),
            &means(&python[reader]["feedback_mean_table"])?,
            &table_means,
        );
    }
    for (name, figures) in &aged_tallies {
        let got = &pandas["feedback_tallies"][name];
        assert_eq!(got["count"].as_f64(), Some(figures[0]), "{name} tallied results");
        assert_eq!(got["scored"].as_f64(), Some(figures[1]), "{name} scored results");
    }

    // Dead letters: by reason, dated by ingest (today), not by event time.
    for reader in ["pandas", "duckdb"] {
        let got: BTreeMap<String, i64> = serde_json::from_value(python[reader]["dead_letters"].clone())?;
        assert_eq!(got, dead_letters, "{reader} dead letters by reason");
    }
    let dates = distinct(&session, "SELECT DISTINCT date FROM dead_letter").await?;
    assert_eq!(duck["dead_letter_dates"], serde_json::json!(dates), "dead letter dates");
    let today = chrono::Utc::now().date_naive();
    let ingest_days = [today.pred_opt(), Some(today)].map(|day| day.map(|d| d.format("%Y-%m-%d").to_string()));
    for date in &dates {
        assert!(ingest_days.contains(&Some(date.clone())), "dead letters under the ingest date, not {date}");
    }
    Ok(())
}

/// Each app's latency histogram, merged by driftwatch's `hdr_merge` (serialized).
async fn merged_latency(session: &LakeSession) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::DataType;
    let mut out = BTreeMap::new();
    for batch in session.sql_to_batches("SELECT app, hdr_merge(latency_us_hist) FROM rollups GROUP BY app").await? {
        let apps = arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
        let bytes = arrow::compute::cast(batch.column(1), &DataType::Binary)?;
        let (apps, bytes) = (apps.as_string::<i32>(), bytes.as_binary::<i32>());
        for row in 0..batch.num_rows() {
            if apps.is_null(row) || bytes.is_null(row) {
                bail!("row {row}: no app or no merged histogram");
            }
            out.insert(apps.value(row).to_owned(), bytes.value(row).to_vec());
        }
    }
    Ok(out)
}
