//! Row types to Arrow: turns slices of [`crate::model`] rows into
//! [`RecordBatch`]es with the schemas of [`crate::schema`], ready for
//! [`crate::parquet::write_parquet`]. This runs once per flushed file, with builders sized
//! up front: column by column for the small tables, row by row for events (see
//! [`encode_events`]).

use std::borrow::Borrow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Float64Array, Float64Builder, Int32Builder, Int64Array, Int64Builder, ListArray,
    StringBuilder, StructArray, TimestampNanosecondArray, TimestampNanosecondBuilder, UInt64Builder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::{LakeError, Result};
use crate::model::{DeadLetter, FeedbackEvent, InferenceEvent, RollupRow, SourcePosition};
use crate::schema::{
    UTC, dead_letter_schema, events_schema, feedback_schema, feedback_tally_fields, feedback_tally_item, rollups_schema,
};

/// Typical bytes per string value; a starting size, builders grow past it.
const STRING_BYTES_HINT: usize = 16;

fn strings<'a>(len: usize, values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut builder = StringBuilder::with_capacity(len, len * STRING_BYTES_HINT);
    for value in values {
        builder.append_option(value);
    }
    Arc::new(builder.finish())
}

fn int64s(len: usize, values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    let mut builder = Int64Builder::with_capacity(len);
    for value in values {
        builder.append_option(value);
    }
    Arc::new(builder.finish())
}

fn float64s(len: usize, values: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    let mut builder = Float64Builder::with_capacity(len);
    for value in values {
        builder.append_option(value);
    }
    Arc::new(builder.finish())
}

fn timestamps(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from_iter_values(values).with_timezone(UTC))
}

fn binaries<'a>(len: usize, values: impl Iterator<Item = &'a [u8]>) -> ArrayRef {
    let mut builder = BinaryBuilder::with_capacity(len, len * 64);
    for value in values {
        builder.append_value(value);
    }
    Arc::new(builder.finish())
}

/// Appends the three `source_*` columns.
fn source_columns<'a>(
    columns: &mut Vec<ArrayRef>,
    len: usize,
    sources: impl Iterator<Item = Option<&'a SourcePosition>> + Clone,
) {
    columns.push(strings(len, sources.clone().map(|s| s.map(|s| &*s.topic))));
    let mut partitions = Int32Builder::with_capacity(len);
    for source in sources.clone() {
        partitions.append_option(source.map(|s| s.partition));
    }
    columns.push(Arc::new(partitions.finish()));
    columns.push(int64s(len, sources.map(|s| s.map(|s| s.offset))));
}

fn batch(kind: &'static str, schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(schema, columns).map_err(|source| LakeError::Arrow { kind, source })
}

/// Encode inference events as an `events` batch, in the given row order. Takes rows or
/// references to them, so a writer can order a flush by sorting references instead of moving
/// whole rows.
///
/// Row by row rather than column by column: a flush holds tens of megabytes of rows, so a
/// pass per column would fetch every row from memory once per column.
pub fn encode_events<R: Borrow<InferenceEvent>>(rows: &[R]) -> Result<RecordBatch> {
    let n = rows.len();
    let new_text = || StringBuilder::with_capacity(n, n * STRING_BYTES_HINT);
    let new_int = || Int64Builder::with_capacity(n);
    let new_float = || Float64Builder::with_capacity(n);
    let new_time = || TimestampNanosecondBuilder::with_capacity(n).with_timezone(UTC);
    // One line per column, in schema order: the builder, and the value a row appends to it.
    macro_rules! columns {
        ($($builder:ident: $new:expr => |$row:ident| $value:expr;)*) => {{
            $(let mut $builder = $new;)*
            for row in rows {
                let row: &InferenceEvent = row.borrow();
                $({
                    let $row = row;
                    $builder.append_option($value);
                })*
            }
            vec![$(Arc::new($builder.finish()) as ArrayRef),*]
        }};
    }
    let columns = columns! {
        event_id: new_text() => |r| Some(&r.event_id);
        trace_id: new_text() => |r| r.trace_id.as_deref();
        span_id: new_text() => |r| r.span_id.as_deref();
        response_id: new_text() => |r| r.response_id.as_deref();
        time: new_time() => |r| Some(r.time);
        start_time: new_time() => |r| Some(r.start_time);
        app: new_text() => |r| Some(&r.app);
        environment: new_text() => |r| r.environment.as_deref();
        provider: new_text() => |r| r.provider.as_deref();
        operation: new_text() => |r| Some(&r.operation);
        request_model: new_text() => |r| r.request_model.as_deref();
        response_model: new_text() => |r| r.response_model.as_deref();
        prompt_id: new_text() => |r| r.prompt_id.as_deref();
        prompt_version: new_text() => |r| r.prompt_version.as_deref();
        input_tokens: new_int() => |r| r.input_tokens;
        output_tokens: new_int() => |r| r.output_tokens;
        cache_read_tokens: new_int() => |r| r.cache_read_tokens;
        reasoning_tokens: new_int() => |r| r.reasoning_tokens;
        cost_usd: new_float() => |r| r.cost_usd;
        reported_cost_usd: new_float() => |r| r.reported_cost_usd;
        price_version: new_text() => |r| r.price_version.as_deref();
        latency_ms: new_float() => |r| r.latency_ms;
        ttft_ms: new_float() => |r| r.ttft_ms;
        status: new_text() => |r| Some(r.status.as_str());
        error_type: new_text() => |r| r.error_type.as_deref();
        finish_reason: new_text() => |r| r.finish_reason.as_deref();
        input_hash: new_text() => |r| r.input_hash.as_deref();
        output_hash: new_text() => |r| r.output_hash.as_deref();
        output_simhash: UInt64Builder::with_capacity(n) => |r| r.output_simhash;
        output_chars: new_int() => |r| r.output_chars;
        golden_case: new_text() => |r| r.golden_case.as_deref();
        content: new_text() => |r| r.content.as_deref();
        source_topic: new_text() => |r| r.source.as_ref().map(|s| &*s.topic);
        source_partition: Int32Builder::with_capacity(n) => |r| r.source.as_ref().map(|s| s.partition);
        source_offset: new_int() => |r| r.source.as_ref().map(|s| s.offset);
    };
    batch("events", events_schema(), columns)
}

/// Encode feedback results as a `feedback` batch, in the given row order.
pub fn encode_feedback(rows: &[FeedbackEvent]) -> Result<RecordBatch> {
    let n = rows.len();
    let text = |f: fn(&FeedbackEvent) -> Option<&str>| strings(n, rows.iter().map(f));
    let mut columns: Vec<ArrayRef> = vec![
        text(|r| Some(&r.feedback_id)),
        timestamps(rows.iter().map(|r| r.time)),
        text(|r| Some(&r.app)),
        text(|r| r.environment.as_deref()),
        text(|r| Some(&r.name)),
        float64s(n, rows.iter().map(|r| r.score_value)),
        text(|r| r.score_label.as_deref()),
        text(|r| r.trace_id.as_deref()),
        text(|r| r.span_id.as_deref()),
        text(|r| r.response_id.as_deref()),
        text(|r| r.inference_id.as_deref()),
        text(|r| r.response_model.as_deref()),
        text(|r| r.provider.as_deref()),
        text(|r| r.operation.as_deref()),
        text(|r| r.prompt_id.as_deref()),
        text(|r| r.prompt_version.as_deref()),
    ];
    source_columns(&mut columns, n, rows.iter().map(|r| r.source.as_ref()));
    batch("feedback", feedback_schema(), columns)
}

/// The rollups' `feedback` column: a list of per-name tallies for each row.
fn feedback_tallies(rows: &[RollupRow]) -> Result<ArrayRef> {
    let total: usize = rows.iter().map(|r| r.feedback.len()).sum();
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    offsets.push(0i32);
    let mut names = StringBuilder::with_capacity(total, total * STRING_BYTES_HINT);
    let mut counts = Vec::with_capacity(total);
    let mut score_sums = Vec::with_capacity(total);
    let mut flagged = Vec::with_capacity(total);
    for row in rows {
        for tally in &row.feedback {
            names.append_value(&tally.name);
            counts.push(tally.count);
            score_sums.push(tally.score_sum);
            flagged.push(tally.flagged);
        }
        let end = i32::try_from(counts.len()).map_err(|_| LakeError::Arrow {
            kind: "rollups",
            source: arrow::error::ArrowError::ComputeError("too many feedback tallies for one batch".into()),
        })?;
        offsets.push(end);
    }
    let arrow_err = |source| LakeError::Arrow { kind: "rollups", source };
    let tallies = StructArray::try_new(
        feedback_tally_fields(),
        vec![
            Arc::new(names.finish()),
            Arc::new(Int64Array::from(counts)),
            Arc::new(Float64Array::from(score_sums)),
            Arc::new(Int64Array::from(flagged)),
        ],
        None,
    )
    .map_err(arrow_err)?;
    let list = ListArray::try_new(feedback_tally_item(), OffsetBuffer::new(offsets.into()), Arc::new(tallies), None)
        .map_err(arrow_err)?;
    Ok(Arc::new(list))
}

/// Encode rollup rows as a `rollups` batch, in the given row order.
pub fn encode_rollups(rows: &[RollupRow]) -> Result<RecordBatch> {
    let n = rows.len();
    let text = |f: fn(&RollupRow) -> Option<&str>| strings(n, rows.iter().map(f));
    let sums = |f: fn(&RollupRow) -> i64| int64s(n, rows.iter().map(|r| Some(f(r))));
    let columns: Vec<ArrayRef> = vec![
        timestamps(rows.iter().map(|r| r.key.window_start)),
        text(|r| Some(&r.key.app)),
        text(|r| r.key.environment.as_deref()),
        text(|r| r.key.provider.as_deref()),
        text(|r| r.key.response_model.as_deref()),
        text(|r| r.key.prompt_id.as_deref()),
        text(|r| r.key.prompt_version.as_deref()),
        text(|r| r.key.operation.as_deref()),
        sums(|r| r.requests),
        sums(|r| r.errors),
        sums(|r| r.input_tokens),
        sums(|r| r.output_tokens),
        sums(|r| r.cache_read_tokens),
        sums(|r| r.reasoning_tokens),
        float64s(n, rows.iter().map(|r| Some(r.cost_usd))),
        binaries(n, rows.iter().map(|r| r.latency_us_hist.as_slice())),
        binaries(n, rows.iter().map(|r| r.ttft_us_hist.as_slice())),
        feedback_tallies(rows)?,
    ];
    batch("rollups", rollups_schema(), columns)
}

/// Encode dead letters as a `dead_letter` batch, in the given row order.
pub fn encode_dead_letters(rows: &[DeadLetter]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut columns: Vec<ArrayRef> = vec![
        timestamps(rows.iter().map(|r| r.time)),
        strings(n, rows.iter().map(|r| Some(r.reason))),
        strings(n, rows.iter().map(|r| Some(r.detail.as_str()))),
        binaries(n, rows.iter().map(|r| r.payload.as_slice())),
    ];
    source_columns(&mut columns, n, rows.iter().map(|r| r.source.as_ref()));
    batch("dead_letter", dead_letter_schema(), columns)
}

#[cfg(test)]
mod tests;
