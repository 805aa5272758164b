//! The histogram UDFs over real Parquet files: exactness under parallel,
//! repartitioned plans, and behaviour on empty, null and corrupt input.

mod common;

use std::sync::Arc;

use arrow::array::{Array, AsArray, BinaryArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use common::{DAY1_NS, MINUTE_NS, Rollup, TestResult, rollups_batch, write_parquet};
use driftwatch_analyze::LakeSession;
use driftwatch_lake::histogram;

const QUANTILES: [f64; 7] = [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0];

/// Deterministic, wide-ranged latencies (µs): a linear congruential sequence.
fn latencies(count: usize, seed: u64) -> Vec<u64> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            // Mostly 1 ms - 2 s, with a tail up to ~2 hours (beyond the initial bound).
            let base = 1_000 + (state >> 33) % 2_000_000;
            if state.is_multiple_of(97) { base * 3_600 } else { base }
        })
        .collect()
}

/// Eight files of 25 partial histograms each, for two apps; returns the values per app.
fn write_partials(root: &std::path::Path) -> TestResult<Vec<(&'static str, Vec<u64>)>> {
    let mut all = vec![("a", Vec::new()), ("b", Vec::new())];
    for file in 0..8u64 {
        let mut rows = Vec::new();
        for row in 0..25u64 {
            let (app, values) = &mut all[(row % 2) as usize];
            // Some windows recorded nothing: their histogram is empty bytes.
            let part = if row % 7 == 3 { Vec::new() } else { latencies(40, file * 1000 + row) };
            values.extend_from_slice(&part);
            rows.push(Rollup {
                app,
                window_start: DAY1_NS + row as i64 * MINUTE_NS,
                requests: part.len() as i64,
                latencies_us: part,
                ttfts_us: vec![],
                feedback: vec![],
            });
        }
        let date = if file < 4 { "2026-03-01" } else { "2026-03-02" };
        write_parquet(&root.join(format!("rollups/date={date}/part-{file:04}.parquet")), &rollups_batch(&rows)?)?;
    }
    Ok(all)
}

fn whole(values: &[u64]) -> TestResult<hdrhistogram::Histogram<u64>> {
    let mut h = histogram::new_histogram()?;
    for &v in values {
        h.record(v)?;
    }
    Ok(h)
}

async fn parallel_session(root: &std::path::Path) -> TestResult<LakeSession> {
    let session = LakeSession::open(&root.to_string_lossy(), None).await?;
    // Several partitions: partial aggregates per partition, then merge_batch of their states.
    session.sql_to_batches("SET datafusion.execution.target_partitions = 4").await?;
    Ok(session)
}

#[tokio::test]
async fn merged_quantiles_equal_one_histogram_over_all_values() -> TestResult {
    let lake = tempfile::tempdir()?;
    let per_app = write_partials(lake.path())?;
    let session = parallel_session(lake.path()).await?;
    let everything: Vec<u64> = per_app.iter().flat_map(|(_, values)| values.iter().copied()).collect();
    let expected = whole(&everything)?;

    let plan = session.sql_to_batches("EXPLAIN SELECT hdr_quantile(latency_us_hist, 0.5) FROM rollups").await?;
    let plan_text = arrow::util::pretty::pretty_format_batches(&plan)?.to_string();
    assert!(plan_text.contains("mode=Final") && plan_text.contains("mode=Partial"), "{plan_text}");

    for q in QUANTILES {
        let sql = format!(
            "SELECT hdr_quantile(latency_us_hist, {q}) AS via_udaf, \
                    hdr_quantile_of(hdr_merge(latency_us_hist), {q}) AS via_merge, \
                    hdr_count(hdr_merge(latency_us_hist)) AS n \
             FROM rollups"
        );
        let batches = session.sql_to_batches(&sql).await?;
        let batch = &batches[0];
        let want = expected.value_at_quantile(q) as f64;
        assert_eq!(batch.column(0).as_primitive::<Float64Type>().value(0), want, "hdr_quantile at {q}");
        assert_eq!(batch.column(1).as_primitive::<Float64Type>().value(0), want, "hdr_quantile_of(hdr_merge) at {q}");
        assert_eq!(batch.column(2).as_primitive::<Int64Type>().value(0), everything.len() as i64);
    }
    Ok(())
}

#[tokio::test]
async fn grouped_quantiles_match_per_group_histograms() -> TestResult {
    let lake = tempfile::tempdir()?;
    let per_app = write_partials(lake.path())?;
    let session = parallel_session(lake.path()).await?;
    let batches = session
        .sql_to_batches("SELECT app, hdr_quantile(latency_us_hist, 0.99) AS p99 FROM rollups GROUP BY app ORDER BY app")
        .await?;
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches)?;
    assert_eq!(batch.num_rows(), 2);
    for (row, (app, values)) in per_app.iter().enumerate() {
        assert_eq!(batch.column(0).as_string::<i32>().value(row), *app);
        let want = whole(values)?.value_at_quantile(0.99) as f64;
        assert_eq!(batch.column(1).as_primitive::<Float64Type>().value(row), want, "app {app}");
    }
    Ok(())
}

/// A session with one in-memory table `h(app, hist)`.
async fn table_session(apps: Vec<&str>, hists: Vec<Option<Vec<u8>>>) -> TestResult<LakeSession> {
    let lake = tempfile::tempdir()?;
    // An empty lake: a folder without any lake folder in it is refused as a mistyped location.
    std::fs::create_dir(lake.path().join("rollups"))?;
    let session = LakeSession::open(&lake.path().to_string_lossy(), None).await?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("app", DataType::Utf8, false),
        Field::new("hist", DataType::Binary, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(StringArray::from(apps)), Arc::new(hists.iter().map(|h| h.as_deref()).collect::<BinaryArray>())],
    )?;
    session.context().register_batch("h", batch)?;
    Ok(session)
}

#[tokio::test]
async fn empty_and_null_histograms_are_skipped() -> TestResult {
    let values = common::serialized_histogram(&[1_000, 2_000, 3_000])?;
    let session = table_session(
        vec!["a", "a", "a", "b", "b"],
        vec![Some(values), Some(Vec::new()), None, Some(Vec::new()), None],
    )
    .await?;
    let batches = session
        .sql_to_batches(
            "SELECT app, hdr_quantile(hist, 1) AS top, hdr_count(hdr_merge(hist)) AS n, \
                    hdr_merge(hist) IS NULL AS merged_is_null \
             FROM h GROUP BY app ORDER BY app",
        )
        .await?;
    let batch = &batches[0];
    let top = batch.column(1).as_primitive::<Float64Type>();
    assert_eq!(top.value(0), whole(&[1_000, 2_000, 3_000])?.value_at_quantile(1.0) as f64);
    assert!(top.is_null(1), "a group with no values has no quantile");
    let n = batch.column(2).as_primitive::<Int64Type>();
    assert_eq!(n.value(0), 3);
    assert!(n.is_null(1));
    assert!(batch.column(3).as_boolean().value(1));

    let counts = session.sql_to_batches("SELECT hdr_count(hist) AS n FROM h").await?;
    let n = counts[0].column(0).as_primitive::<Int64Type>();
    assert_eq!((n.value(0), n.value(1), n.is_null(2)), (3, 0, true));
    Ok(())
}

#[tokio::test]
async fn corrupt_bytes_fail_with_a_named_error() -> TestResult {
    let session = table_session(vec!["a"], vec![Some(b"definitely not a histogram".to_vec())]).await?;
    for sql in
        ["SELECT hdr_merge(hist) FROM h", "SELECT hdr_quantile(hist, 0.5) FROM h", "SELECT hdr_count(hist) FROM h"]
    {
        let error = match session.sql_to_batches(sql).await {
            Ok(_) => return Err(format!("{sql} accepted corrupt bytes").into()),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("corrupt histogram"), "{sql}: {error}");
    }
    Ok(())
}

#[tokio::test]
async fn quantile_outside_unit_interval_is_rejected() -> TestResult {
    let session = table_session(vec!["a"], vec![Some(common::serialized_histogram(&[5])?)]).await?;
    for sql in ["SELECT hdr_quantile(hist, 1.5) FROM h", "SELECT hdr_quantile_of(hist, -0.1) FROM h"] {
        let result = session.sql_to_batches(sql).await;
        assert!(result.as_ref().is_err_and(|e| e.to_string().contains("outside [0, 1]")), "{sql}: {result:?}");
    }
    let column_q = session.sql_to_batches("SELECT hdr_quantile(hist, CAST(length(app) AS DOUBLE)) FROM h").await;
    assert!(column_q.is_err_and(|e| e.to_string().contains("constant")));
    Ok(())
}
