//! A small, deterministic lake written with arrow/parquet the way the lake
//! writer lays it out (DESIGN §5), for the integration tests.

#![allow(dead_code)] // each test binary uses a different part of the fixture

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray, new_null_array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, SchemaRef};
use driftwatch_analyze::lake::schema;
use driftwatch_lake::histogram;
use driftwatch_lake::schema::micros;
use parquet::arrow::ArrowWriter;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// 2026-03-01T00:00:00Z in nanoseconds.
pub const DAY1_NS: i64 = 1_772_323_200_000_000_000;
pub const MINUTE_NS: i64 = 60_000_000_000;

/// A batch of `schema` with the named columns given and every other column null.
pub fn batch(schema: &SchemaRef, columns: &[(&str, ArrayRef)]) -> TestResult<RecordBatch> {
    let rows = columns.first().map_or(0, |(_, array)| array.len());
    let arrays = schema
        .fields()
        .iter()
        .map(|field| match columns.iter().find(|(name, _)| name == field.name()) {
            Some((_, array)) => Arc::clone(array),
            None => new_null_array(field.data_type(), rows),
        })
        .collect();
    Ok(RecordBatch::try_new(Arc::clone(schema), arrays)?)
}

/// Write `batch` as one Parquet file, creating its folders.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> TestResult {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::File::create(path)?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None)?;
    writer.write(batch)?;
    writer.close()?;
    Ok(())
}

/// Parquet bytes of `batch`, for object stores.
pub fn parquet_bytes(batch: &RecordBatch) -> TestResult<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), None)?;
    writer.write(batch)?;
    writer.close()?;
    Ok(buffer)
}

/// Unix nanoseconds as the lake stores them (microseconds).
fn timestamps(values: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(values.into_iter().map(micros)).with_timezone("UTC"))
}

/// One inference event row as the fixture needs it.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: &'static str,
    pub app: &'static str,
    pub time: i64,
    pub status: &'static str,
    /// `None`: the call reported no token count.
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    /// `None`: the call could not be priced (a model missing from the registry).
    pub cost_usd: Option<f64>,
    pub latency_ms: f64,
}

pub fn events_batch(events: &[Event]) -> TestResult<RecordBatch> {
    let strings =
        |f: fn(&Event) -> &'static str| -> ArrayRef { Arc::new(StringArray::from_iter_values(events.iter().map(f))) };
    batch(
        &schema::events(),
        &[
            ("event_id", strings(|e| e.id)),
            ("time", timestamps(events.iter().map(|e| e.time).collect())),
            ("start_time", timestamps(events.iter().map(|e| e.time - (e.latency_ms * 1e6) as i64).collect())),
            ("app", strings(|e| e.app)),
            ("operation", strings(|_| "chat")),
            ("response_model", strings(|_| "gpt-4o-mini")),
            ("status", strings(|e| e.status)),
            ("input_tokens", Arc::new(events.iter().map(|e| e.input_tokens).collect::<Int64Array>())),
            ("output_tokens", Arc::new(events.iter().map(|e| e.output_tokens).collect::<Int64Array>())),
            ("cost_usd", Arc::new(events.iter().map(|e| e.cost_usd).collect::<Float64Array>())),
            ("latency_ms", Arc::new(Float64Array::from_iter_values(events.iter().map(|e| e.latency_ms)))),
        ],
    )
}

/// One rollup row: latency values in µs and feedback tallies (name, count, flagged).
#[derive(Debug, Clone)]
pub struct Rollup {
    pub app: &'static str,
    pub window_start: i64,
    pub requests: i64,
    pub latencies_us: Vec<u64>,
    /// Times to first token of the streamed calls, µs.
    pub ttfts_us: Vec<u64>,
    pub feedback: Vec<(&'static str, i64, i64)>,
}

pub fn serialized_histogram(values: &[u64]) -> TestResult<Vec<u8>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let mut h = histogram::new_histogram()?;
    for &v in values {
        h.record(v)?;
    }
    Ok(histogram::serialize(&h)?)
}

pub fn rollups_batch(rows: &[Rollup]) -> TestResult<RecordBatch> {
    let hists = rows.iter().map(|r| serialized_histogram(&r.latencies_us)).collect::<TestResult<Vec<_>>>()?;
    // A window without a streamed call has an empty histogram, as ingest writes it.
    let ttft_hists = rows
        .iter()
        .map(|r| if r.ttfts_us.is_empty() { Ok(Vec::new()) } else { serialized_histogram(&r.ttfts_us) })
        .collect::<TestResult<Vec<_>>>()?;
    let tallies: Vec<&(&str, i64, i64)> = rows.iter().flat_map(|r| r.feedback.iter()).collect();
    let tally_struct = StructArray::try_new(
        schema::feedback_tally_fields(),
        vec![
            Arc::new(StringArray::from_iter_values(tallies.iter().map(|t| t.0))),
            Arc::new(Int64Array::from_iter_values(tallies.iter().map(|t| t.1))),
            // Every result scored: the score is the flag, 0 or 1.
            Arc::new(Int64Array::from_iter_values(tallies.iter().map(|t| t.1))),
            Arc::new(Float64Array::from_iter_values(tallies.iter().map(|t| t.2 as f64))),
            Arc::new(Int64Array::from_iter_values(tallies.iter().map(|t| t.2))),
        ],
        None,
    )?;
    let schema = schema::rollups();
    let list_field = match schema.field_with_name("feedback")?.data_type() {
        DataType::List(field) => Arc::clone(field),
        other => return Err(format!("feedback is {other}").into()),
    };
    let feedback = ListArray::try_new(
        list_field,
        OffsetBuffer::from_lengths(rows.iter().map(|r| r.feedback.len())),
        Arc::new(tally_struct),
        None,
    )?;
    let requests: Vec<i64> = rows.iter().map(|r| r.requests).collect();
    batch(
        &schema,
        &[
            ("window_start", timestamps(rows.iter().map(|r| r.window_start).collect())),
            ("app", Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.app)))),
            ("operation", Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "chat")))),
            ("requests", Arc::new(Int64Array::from(requests))),
            ("errors", Arc::new(Int64Array::from(vec![0; rows.len()]))),
            ("cost_usd", Arc::new(Float64Array::from(vec![0.0; rows.len()]))),
            ("latency_us_hist", Arc::new(BinaryArray::from_iter_values(hists.iter()))),
            ("ttft_us_hist", Arc::new(BinaryArray::from_iter_values(ttft_hists.iter()))),
            ("feedback", Arc::new(feedback)),
        ],
    )
}

pub fn feedback_batch(rows: &[(&'static str, &'static str, &'static str)]) -> TestResult<RecordBatch> {
    batch(
        &schema::feedback(),
        &[
            ("feedback_id", Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0)))),
            ("time", timestamps(rows.iter().enumerate().map(|(i, _)| DAY1_NS + i as i64 * MINUTE_NS).collect())),
            ("app", Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1)))),
            ("name", Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2)))),
        ],
    )
}

pub fn dead_letter_batch(reasons: &[&'static str]) -> TestResult<RecordBatch> {
    batch(
        &schema::dead_letter(),
        &[
            ("time", timestamps(reasons.iter().enumerate().map(|(i, _)| DAY1_NS + i as i64).collect())),
            ("reason", Arc::new(StringArray::from_iter_values(reasons.iter().copied()))),
            ("detail", Arc::new(StringArray::from_iter_values(reasons.iter().map(|r| format!("fixture {r}"))))),
            ("payload", Arc::new(BinaryArray::from_iter_values(reasons.iter().map(|r| r.as_bytes())))),
        ],
    )
}

fn event(
    id: &'static str,
    app: &'static str,
    minute: i64,
    status: &'static str,
    tokens: (i64, i64),
    cost_usd: f64,
) -> Event {
    Event {
        id,
        app,
        time: DAY1_NS + minute * MINUTE_NS,
        status,
        input_tokens: Some(tokens.0),
        output_tokens: Some(tokens.1),
        cost_usd: Some(cost_usd),
        latency_ms: 100.0 + minute as f64,
    }
}

/// The golden lake: three apps with events over two days (one retried event
/// written twice), a fourth app seen only in rollups, feedback, dead letters,
/// and a writer's temporary file that must never be read. Costs are binary
/// fractions so sums are exact in any order.
pub fn write_fixture_lake(root: &Path) -> TestResult {
    let day1 = root.join("events/date=2026-03-01");
    let day2 = root.join("events/date=2026-03-02");
    write_parquet(
        &day1.join("app=support-bot/part-0001.parquet"),
        &events_batch(&[
            event("sb-1", "support-bot", 0, "ok", (1000, 200), 0.25),
            event("sb-2", "support-bot", 1, "ok", (1200, 250), 0.375),
            event("sb-3", "support-bot", 2, "error", (900, 0), 0.125),
        ])?,
    )?;
    // A producer retry: sb-2 lands again in a later file.
    write_parquet(
        &day1.join("app=support-bot/part-0002.parquet"),
        &events_batch(&[
            event("sb-2", "support-bot", 1, "ok", (1200, 250), 0.375),
            event("sb-4", "support-bot", 3, "unset", (800, 150), 0.1875),
        ])?,
    )?;
    std::fs::write(day1.join("app=support-bot/.part-0003.parquet"), b"half-written, not parquet")?;
    write_parquet(
        &day2.join("app=support-bot/part-0001.parquet"),
        &events_batch(&[event("sb-5", "support-bot", 1440, "ok", (1100, 300), 0.5)])?,
    )?;
    write_parquet(
        &day1.join("app=sql-helper/part-0001.parquet"),
        &events_batch(&[
            event("sq-1", "sql-helper", 5, "ok", (400, 80), 0.0625),
            event("sq-2", "sql-helper", 6, "error", (420, 0), 0.0),
            // A call that reported no token count: its spend is missing, as an unpriced one's.
            Event {
                input_tokens: None,
                output_tokens: None,
                cost_usd: None,
                ..event("sq-3", "sql-helper", 6, "ok", (0, 0), 0.0)
            },
        ])?,
    )?;
    write_parquet(
        &day2.join("app=translator/part-0001.parquet"),
        // A model missing from the registry: tokens but no price.
        &events_batch(&[Event { cost_usd: None, ..event("tr-1", "translator", 1500, "ok", (300, 300), 0.0) }])?,
    )?;

    write_parquet(
        &root.join("rollups/date=2026-03-01/part-0001.parquet"),
        &rollups_batch(&[
            Rollup {
                app: "support-bot",
                window_start: DAY1_NS,
                requests: 3,
                latencies_us: vec![100_000, 101_000, 102_000],
                ttfts_us: vec![40_000, 60_000],
                feedback: vec![("hallucination", 2, 1), ("user_thumbs", 3, 1)],
            },
            Rollup {
                app: "sql-helper",
                window_start: DAY1_NS + 5 * MINUTE_NS,
                requests: 2,
                latencies_us: vec![105_000, 106_000],
                ttfts_us: vec![],
                feedback: vec![],
            },
            Rollup {
                app: "summarizer",
                window_start: DAY1_NS + 7 * MINUTE_NS,
                requests: 0,
                latencies_us: vec![],
                ttfts_us: vec![],
                feedback: vec![("hallucination", 4, 0), ("relevance", 1, 0)],
            },
        ])?,
    )?;
    write_parquet(
        &root.join("rollups/date=2026-03-02/part-0001.parquet"),
        &rollups_batch(&[Rollup {
            app: "support-bot",
            window_start: DAY1_NS + 1440 * MINUTE_NS,
            requests: 2,
            latencies_us: vec![103_000, 1_540_000],
            ttfts_us: vec![80_000],
            // Phoenix's spelling: the summary counts it with the lowercase name of day 1.
            feedback: vec![("Hallucination", 2, 2), ("user_thumbs", 1, 0)],
        }])?,
    )?;

    write_parquet(
        &root.join("feedback/date=2026-03-01/part-0001.parquet"),
        &feedback_batch(&[
            ("fb-1", "support-bot", "hallucination"),
            ("fb-2", "support-bot", "user_thumbs"),
            ("fb-3", "summarizer", "hallucination"),
        ])?,
    )?;
    write_parquet(
        &root.join("dead_letter/date=2026-03-01/part-0001.parquet"),
        &dead_letter_batch(&["malformed_json", "negative_tokens", "malformed_json"])?,
    )?;
    Ok(())
}
