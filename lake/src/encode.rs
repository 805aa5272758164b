//! Row types to Arrow: turns slices of [`crate::model`] rows into
//! [`RecordBatch`]es with the schemas of [`crate::schema`], ready for
//! [`crate::parquet::write_parquet`]. The small tables are encoded once per flushed file,
//! column by column; events are appended row by row to [`EventColumns`] as ingest reads them
//! (see [`crate::event_rows`]), so a flush finds them already in columns.

use std::borrow::Borrow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Float64Array, Float64Builder, Int32Builder, Int64Array, Int64Builder, ListArray,
    StringBuilder, StructArray, TimestampMicrosecondArray, TimestampMicrosecondBuilder, UInt64Builder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::{LakeError, Result};
use crate::model::{DeadLetter, FeedbackEvent, InferenceEvent, RollupRow, SourcePosition};
use crate::schema::{
    UTC, dead_letter_schema, events_schema, feedback_schema, feedback_tally_fields, feedback_tally_item, micros,
    rollups_schema,
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
    Arc::new(TimestampMicrosecondArray::from_iter_values(values.map(micros)).with_timezone(UTC))
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
/// references to them. A flush builds the same columns through [`EventRows`](crate::event_rows::EventRows),
/// one set per events file; this one-batch form serves tests, benches and tools.
pub fn encode_events<R: Borrow<InferenceEvent>>(rows: &[R]) -> Result<RecordBatch> {
    let mut columns = EventColumns::with_capacity(rows.len());
    for row in rows {
        columns.append(row.borrow());
    }
    columns.finish()
}

/// Heap bytes a column value adds to its builder beyond the fixed per-row part.
trait ValueBytes {
    fn value_bytes(&self) -> usize;
}

impl ValueBytes for Option<&str> {
    fn value_bytes(&self) -> usize {
        self.map_or(0, str::len)
    }
}

impl ValueBytes for Option<&String> {
    fn value_bytes(&self) -> usize {
        self.map_or(0, String::len)
    }
}

macro_rules! fixed_width_values {
    ($($native:ty),*) => {$(
        impl ValueBytes for Option<$native> {
            fn value_bytes(&self) -> usize {
                0
            }
        }
    )*};
}
fixed_width_values!(i32, i64, u64, f64);

/// Fixed bytes per events row over all columns: 8 per column covers an offset (4) or a value
/// (4 or 8) plus the validity bit.
const EVENT_ROW_FIXED_BYTES: usize = 8 * EVENT_COLUMNS;

fn new_text(rows: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, rows * STRING_BYTES_HINT)
}

fn new_time(rows: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(rows).with_timezone(UTC)
}

/// One line per column, in schema order: the column's builder type, its constructor, and the
/// value a row appends to it. Generates [`EventColumns`].
macro_rules! event_columns {
    ($($column:ident: $builder:ty = $new:expr => |$row:ident| $value:expr;)*) => {
        /// The `events` table's column builders: rows are appended one at a time as they are
        /// read, and [`finish`](Self::finish) hands the columns over without another pass.
        ///
        /// A buffered row costs its values, an offset or fixed-width slot per column and a
        /// validity bit, all in a few large buffers, where a buffered [`InferenceEvent`] holds
        /// some 740 bytes of struct plus an allocation per string; and the flush does not have
        /// to visit every row again to build the columns.
        #[derive(Debug)]
        pub struct EventColumns {
            $($column: $builder,)*
            rows: usize,
        }

        impl EventColumns {
            /// Empty builders with room for `rows` rows before they first grow.
            pub fn with_capacity(rows: usize) -> Self {
                Self { $($column: $new(rows),)* rows: 0 }
            }

            /// Append one row; returns the bytes it added to the builders (values, offsets and
            /// validity, not the builders' spare capacity).
            pub fn append(&mut self, row: &InferenceEvent) -> usize {
                let mut value_bytes = 0;
                $({
                    let $row = row;
                    let value = $value;
                    value_bytes += value.value_bytes();
                    self.$column.append_option(value);
                })*
                self.rows += 1;
                value_bytes + EVENT_ROW_FIXED_BYTES
            }

            /// Bytes the builders of [`with_capacity(rows)`](Self::with_capacity) allocate up
            /// front (an upper bound: every column counted at a string's size).
            pub fn initial_bytes(rows: usize) -> usize {
                rows * (EVENT_ROW_FIXED_BYTES + EVENT_COLUMNS * STRING_BYTES_HINT)
            }

            /// Rows appended since the last [`finish`](Self::finish).
            pub fn len(&self) -> usize {
                self.rows
            }

            /// True when no row is waiting.
            pub fn is_empty(&self) -> bool {
                self.rows == 0
            }

            /// The rows appended so far as an `events` batch; the builders start over empty.
            pub fn finish(&mut self) -> Result<RecordBatch> {
                self.rows = 0;
                batch("events", events_schema(), vec![$(Arc::new(self.$column.finish()) as ArrayRef),*])
            }
        }

        const EVENT_COLUMNS: usize = [$(stringify!($column)),*].len();
    };
}

event_columns! {
    event_id: StringBuilder = new_text => |r| Some(&r.event_id);
    trace_id: StringBuilder = new_text => |r| r.trace_id.as_deref();
    span_id: StringBuilder = new_text => |r| r.span_id.as_deref();
    response_id: StringBuilder = new_text => |r| r.response_id.as_deref();
    time: TimestampMicrosecondBuilder = new_time => |r| Some(micros(r.time));
    start_time: TimestampMicrosecondBuilder = new_time => |r| Some(micros(r.start_time));
    app: StringBuilder = new_text => |r| Some(&r.app);
    environment: StringBuilder = new_text => |r| r.environment.as_deref();
    provider: StringBuilder = new_text => |r| r.provider.as_deref();
    operation: StringBuilder = new_text => |r| Some(&r.operation);
    request_model: StringBuilder = new_text => |r| r.request_model.as_deref();
    response_model: StringBuilder = new_text => |r| r.response_model.as_deref();
    prompt_id: StringBuilder = new_text => |r| r.prompt_id.as_deref();
    prompt_version: StringBuilder = new_text => |r| r.prompt_version.as_deref();
    input_tokens: Int64Builder = Int64Builder::with_capacity => |r| r.input_tokens;
    output_tokens: Int64Builder = Int64Builder::with_capacity => |r| r.output_tokens;
    cache_read_tokens: Int64Builder = Int64Builder::with_capacity => |r| r.cache_read_tokens;
    cache_write_tokens: Int64Builder = Int64Builder::with_capacity => |r| r.cache_write_tokens;
    reasoning_tokens: Int64Builder = Int64Builder::with_capacity => |r| r.reasoning_tokens;
    cost_usd: Float64Builder = Float64Builder::with_capacity => |r| r.cost_usd;
    reported_cost_usd: Float64Builder = Float64Builder::with_capacity => |r| r.reported_cost_usd;
    price_version: StringBuilder = new_text => |r| r.price_version.as_deref();
    service_tier: StringBuilder = new_text => |r| r.service_tier.as_deref();
    latency_ms: Float64Builder = Float64Builder::with_capacity => |r| r.latency_ms;
    ttft_ms: Float64Builder = Float64Builder::with_capacity => |r| r.ttft_ms;
    status: StringBuilder = new_text => |r| Some(r.status.as_str());
    error_type: StringBuilder = new_text => |r| r.error_type.as_deref();
    finish_reason: StringBuilder = new_text => |r| r.finish_reason.as_deref();
    input_hash: StringBuilder = new_text => |r| r.input_hash.as_deref();
    output_hash: StringBuilder = new_text => |r| r.output_hash.as_deref();
    output_simhash: UInt64Builder = UInt64Builder::with_capacity => |r| r.output_simhash;
    output_chars: Int64Builder = Int64Builder::with_capacity => |r| r.output_chars;
    golden_case: StringBuilder = new_text => |r| r.golden_case.as_deref();
    content: StringBuilder = new_text => |r| r.content.as_deref();
    source_topic: StringBuilder = new_text => |r| r.source.as_ref().map(|s| &*s.topic);
    source_partition: Int32Builder = Int32Builder::with_capacity => |r| r.source.as_ref().map(|s| s.partition);
    source_offset: Int64Builder = Int64Builder::with_capacity => |r| r.source.as_ref().map(|s| s.offset);
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
    let mut scored = Vec::with_capacity(total);
    let mut score_sums = Vec::with_capacity(total);
    let mut flagged = Vec::with_capacity(total);
    for row in rows {
        for tally in &row.feedback {
            names.append_value(&tally.name);
            counts.push(tally.count);
            scored.push(tally.scored);
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
            Arc::new(Int64Array::from(scored)),
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
        sums(|r| r.cache_write_tokens),
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
