//! Opening lakes: empty ones, the `date=/app=` layout, object stores, findings.

mod common;

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use common::{TestResult, events_batch, parquet_bytes, write_fixture_lake, write_parquet};
use driftwatch_analyze::{Error, LakeSession, LakeTotals, app_summary, lake_totals};
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

fn count(batches: &[RecordBatch]) -> TestResult<i64> {
    Ok(batches.first().ok_or("no batch")?.column(0).as_primitive::<Int64Type>().value(0))
}

/// What a daemon that has committed positions but flushed no rows yet leaves in its lake.
fn write_checkpoint_only(root: &std::path::Path) -> TestResult {
    let stream = root.join("_checkpoints/genai-spans");
    std::fs::create_dir_all(&stream)?;
    std::fs::write(stream.join("0.json"), b"{}")?;
    Ok(())
}

#[tokio::test]
async fn empty_lake_opens_and_answers_with_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    // No table folder exists yet, only the daemon's checkpoints.
    let root = dir.path().join("fresh-lake");
    write_checkpoint_only(&root)?;
    let session = LakeSession::open(&root.to_string_lossy(), None).await?;
    assert!(app_summary(&session).await?.is_empty());
    assert_eq!(lake_totals(&session).await?, LakeTotals::default());
    for table in ["events", "feedback", "rollups", "dead_letter"] {
        assert_eq!(count(&session.sql_to_batches(&format!("SELECT count(*) FROM {table}")).await?)?, 0, "{table}");
    }
    // Typed columns exist on the empty tables.
    session
        .sql_to_batches("SELECT date, app, sum(cost_usd), hdr_merge(latency_us_hist) FROM rollups GROUP BY date, app")
        .await?;
    assert!(session.sql_to_batches("SELECT * FROM findings").await.is_err(), "findings appear only once written");
    Ok(())
}

#[tokio::test]
async fn files_written_after_open_are_seen() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_checkpoint_only(dir.path())?;
    let session = LakeSession::open(&dir.path().to_string_lossy(), None).await?;
    assert_eq!(count(&session.sql_to_batches("SELECT count(*) FROM events").await?)?, 0);
    write_fixture_lake(dir.path())?;
    assert_eq!(count(&session.sql_to_batches("SELECT count(*) FROM events").await?)?, 10);
    Ok(())
}

#[tokio::test]
async fn app_folder_level_is_read_and_date_partitions_prune() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_fixture_lake(dir.path())?;
    let session = LakeSession::open(&format!("{}/", dir.path().display()), None).await?;
    let batches = session
        .sql_to_batches("SELECT date, app, count(*) AS n FROM events GROUP BY date, app ORDER BY date, app")
        .await?;
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches)?;
    let rows: Vec<(String, String, i64)> = (0..batch.num_rows())
        .map(|i| {
            (
                batch.column(0).as_string::<i32>().value(i).to_owned(),
                batch.column(1).as_string::<i32>().value(i).to_owned(),
                batch.column(2).as_primitive::<Int64Type>().value(i),
            )
        })
        .collect();
    let expected = [
        ("2026-03-01", "sql-helper", 3),
        ("2026-03-01", "support-bot", 5), // a retried event is a row twice here
        ("2026-03-02", "support-bot", 1),
        ("2026-03-02", "translator", 1),
    ]
    .map(|(d, a, n)| (d.to_owned(), a.to_owned(), n));
    assert_eq!(rows, expected);
    let day2 = session.sql_to_batches("SELECT count(*) FROM events WHERE date = '2026-03-02'").await?;
    assert_eq!(count(&day2)?, 2);
    Ok(())
}

#[tokio::test]
async fn duplicate_event_ids_count_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_fixture_lake(dir.path())?;
    let session = LakeSession::open(&dir.path().to_string_lossy(), None).await?;
    let summary = app_summary(&session).await?;
    let support = summary.iter().find(|row| row.app == "support-bot").ok_or("support-bot missing")?;
    // Five distinct events, one of them written twice.
    assert_eq!(support.requests, 5);
    assert_eq!(support.cost_usd, 0.25 + 0.375 + 0.125 + 0.1875 + 0.5);
    let totals = lake_totals(&session).await?;
    assert_eq!((totals.events, totals.distinct_events), (10, 9));
    Ok(())
}

/// Characters DataFusion reads as a glob in a path are only names in a lake's location.
#[tokio::test]
async fn a_lake_path_with_glob_characters_is_read_as_named() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("lake[1] *?");
    write_fixture_lake(&root)?;
    let session = LakeSession::open(&root.to_string_lossy(), None).await?;
    assert_eq!(lake_totals(&session).await?.events, 10);
    // A path that climbs out and back in names the same lake.
    let climbing = dir.path().join("elsewhere").join("..").join("lake[1] *?");
    std::fs::create_dir_all(dir.path().join("elsewhere"))?;
    let session = LakeSession::open(&climbing.to_string_lossy(), None).await?;
    assert_eq!(lake_totals(&session).await?.events, 10);
    Ok(())
}

#[tokio::test]
async fn object_store_lake_reads_through_the_given_store() -> TestResult {
    let store = Arc::new(InMemory::new());
    let events = events_batch(&[common::Event {
        id: "m-1",
        app: "mem-app",
        time: common::DAY1_NS,
        status: "ok",
        input_tokens: Some(10),
        output_tokens: Some(5),
        cost_usd: Some(0.5),
        latency_ms: 20.0,
    }])?;
    let bytes = parquet_bytes(&events)?;
    store.put(&StorePath::from("events/date=2026-03-01/app=mem-app/part-1.parquet"), PutPayload::from(bytes)).await?;
    // A temporary file mid-write must stay invisible.
    store
        .put(
            &StorePath::from("events/date=2026-03-01/app=mem-app/.part-2.parquet"),
            PutPayload::from_static(b"partial"),
        )
        .await?;
    // `lake` is the bucket (URL host); object paths start below it.
    let session = LakeSession::open("memory://lake", Some(store as Arc<dyn ObjectStore>)).await?;
    let summary = app_summary(&session).await?;
    assert_eq!(summary.len(), 1);
    assert_eq!((summary[0].app.as_str(), summary[0].requests, summary[0].cost_usd), ("mem-app", 1, 0.5));
    Ok(())
}

/// A mistyped `--lake` must not read as a lake with nothing in it.
#[tokio::test]
async fn a_location_without_lake_folders_is_not_a_lake() -> TestResult {
    let dir = tempfile::tempdir()?;
    let typo = dir.path().join("lkae");
    for location in [typo.clone(), dir.path().to_path_buf()] {
        let result = LakeSession::open(&location.to_string_lossy(), None).await;
        let Err(error @ Error::NotALake { .. }) = result else {
            return Err(format!("{}: expected NotALake, got {result:?}", location.display()).into());
        };
        let message = error.to_string();
        assert!(message.starts_with(&format!("no driftwatch lake at {}: ", location.display())), "{message}");
        assert!(message.contains("none of events/, rollups/, _checkpoints/ exists"), "{message}");
        assert!(message.contains("check --lake or lake.location"), "{message}");
    }
    // Other folders do not make a lake; an empty table folder on a local disk does.
    std::fs::create_dir_all(dir.path().join("input"))?;
    assert!(matches!(LakeSession::open(&dir.path().to_string_lossy(), None).await, Err(Error::NotALake { .. })));
    std::fs::create_dir_all(dir.path().join("rollups"))?;
    let session = LakeSession::open(&dir.path().to_string_lossy(), None).await?;
    assert!(app_summary(&session).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_object_store_location_without_lake_folders_is_not_a_lake() -> TestResult {
    let store = Arc::new(InMemory::new());
    // A lake's folder under another root does not make this root a lake.
    store.put(&StorePath::from("other/events/part-1.parquet"), PutPayload::from_static(b"x")).await?;
    let result = LakeSession::open("memory://bucket/lake", Some(Arc::clone(&store) as Arc<dyn ObjectStore>)).await;
    assert!(
        matches!(result, Err(Error::NotALake { ref location }) if location == "memory://bucket/lake"),
        "{result:?}"
    );

    // A daemon that has committed only checkpoints so far has a lake, empty.
    store.put(&StorePath::from("lake/_checkpoints/spans/0.json"), PutPayload::from_static(b"{}")).await?;
    let session = LakeSession::open("memory://bucket/lake", Some(store as Arc<dyn ObjectStore>)).await?;
    assert!(app_summary(&session).await?.is_empty());
    assert_eq!(lake_totals(&session).await?, LakeTotals::default());
    Ok(())
}

#[tokio::test]
async fn remote_lake_without_a_store_is_a_config_error() {
    let result = LakeSession::open("s3://bucket/lake", None).await;
    assert!(matches!(result, Err(Error::NoStore { .. })), "{result:?}");
}

#[tokio::test]
async fn findings_are_registered_once_present() -> TestResult {
    let dir = tempfile::tempdir()?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("score", DataType::Int64, true),
    ]));
    let findings = RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from(vec!["drift", "budget"])), Arc::new(Int64Array::from(vec![Some(3), None]))],
    )?;
    write_parquet(&dir.path().join("findings/date=2026-03-01/part-1.parquet"), &findings)?;
    let session = LakeSession::open(&dir.path().to_string_lossy(), None).await?;
    let batches = session.sql_to_batches("SELECT kind, date FROM findings ORDER BY kind").await?;
    let batch = &batches[0];
    // Inferred schemas use DataFusion's view types for strings.
    let kinds = arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
    assert_eq!(kinds.as_string::<i32>().iter().collect::<Vec<_>>(), vec![Some("budget"), Some("drift")]);
    Ok(())
}

/// The writer may declare ids/time/app non-null, name the list item `element`
/// (the Parquet convention), write columns in another order, and write times in
/// nanoseconds (as driftwatch did before 2026-12-06): reads must not care.
#[tokio::test]
async fn writer_schema_variations_are_tolerated() -> TestResult {
    use arrow::array::{BinaryArray, ListArray, StructArray, TimestampNanosecondArray};
    use arrow::buffer::OffsetBuffer;
    use arrow::datatypes::{Fields, TimeUnit};

    let tally_fields = Fields::from(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("count", DataType::Int64, false),
        Field::new("score_sum", DataType::Float64, false),
        Field::new("flagged", DataType::Int64, false),
    ]);
    let tallies = StructArray::try_new(
        tally_fields.clone(),
        vec![
            Arc::new(StringArray::from(vec!["hallucination"])),
            Arc::new(Int64Array::from(vec![2])),
            Arc::new(arrow::array::Float64Array::from(vec![1.0])),
            Arc::new(Int64Array::from(vec![1])),
        ],
        None,
    )?;
    let item = Arc::new(Field::new("element", DataType::Struct(tally_fields), false));
    let feedback = ListArray::try_new(Arc::clone(&item), OffsetBuffer::from_lengths([1]), Arc::new(tallies), None)?;
    let histogram = common::serialized_histogram(&[250_000])?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("app", DataType::Utf8, false),
        Field::new("window_start", DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())), false),
        Field::new("requests", DataType::Int64, false),
        Field::new("latency_us_hist", DataType::Binary, false),
        Field::new("feedback", DataType::List(item), false),
    ]));
    let rollups = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["strict-app"])),
            Arc::new(TimestampNanosecondArray::from(vec![common::DAY1_NS]).with_timezone("+00:00")),
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(BinaryArray::from_iter_values([histogram.as_slice()])),
            Arc::new(feedback),
        ],
    )?;
    let dir = tempfile::tempdir()?;
    write_parquet(&dir.path().join("rollups/date=2026-03-01/part-1.parquet"), &rollups)?;
    let session = LakeSession::open(&dir.path().to_string_lossy(), None).await?;
    let summary = app_summary(&session).await?;
    assert_eq!(summary.len(), 1);
    let row = &summary[0];
    assert_eq!((row.app.as_str(), row.hallucination_evals, row.hallucination_flagged), ("strict-app", 2, 1));
    assert!(row.p50_latency_ms.is_some_and(|ms| (ms - 250.0).abs() < 0.5), "{row:?}");
    // The nanosecond time reads as the same instant in the declared microsecond column.
    let batches = session.sql_to_batches("SELECT CAST(window_start AS BIGINT) AS micros FROM rollups").await?;
    let micros = arrow::compute::cast(batches[0].column(0), &DataType::Int64)?;
    assert_eq!(micros.as_primitive::<arrow::datatypes::Int64Type>().value(0), common::DAY1_NS / 1_000);
    // Tallies written before `scored` existed read it as unknown, not as zero scored results.
    let batches = session.sql_to_batches("SELECT feedback FROM rollups").await?;
    let tallies = batches[0].column(0).as_list::<i32>().value(0);
    let scored = tallies.as_struct().column_by_name("scored").ok_or("no scored field")?.clone();
    assert_eq!((scored.len(), scored.null_count()), (1, 1), "{scored:?}");
    Ok(())
}
