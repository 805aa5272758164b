//! Arrow back to row types: reads `events`, `feedback` and `rollups` batches (as
//! returned by a Parquet reader over lake files) into [`crate::model`] rows, by
//! column name, so tests and tools can check what the lake holds without SQL.
//! Columns the row type does not carry are ignored; raw content fields that are
//! never persisted (`input_content`, `output_content`) come back as `None`.

use std::sync::Arc;

use arrow::array::{
    Array, BinaryArray, Float64Array, Int32Array, Int64Array, ListArray, StringArray, StructArray,
    TimestampMicrosecondArray, UInt64Array,
};
use arrow::record_batch::RecordBatch;

use crate::error::{LakeError, Result};
use crate::model::{CallStatus, FeedbackEvent, FeedbackTally, InferenceEvent, RollupKey, RollupRow, SourcePosition};

/// Typed, named access to one batch's columns.
struct Columns<'a> {
    kind: &'static str,
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    fn get<T: Array + 'static>(&self, column: &'static str) -> Result<&'a T> {
        let array = self.batch.column_by_name(column).ok_or(LakeError::Decode {
            kind: self.kind,
            column,
            reason: "missing".into(),
        })?;
        array.as_any().downcast_ref::<T>().ok_or_else(|| LakeError::Decode {
            kind: self.kind,
            column,
            reason: format!("unexpected type {}", array.data_type()),
        })
    }

    fn text(&self, column: &'static str) -> Result<impl Fn(usize) -> Option<String> + 'a> {
        let array = self.get::<StringArray>(column)?;
        Ok(move |i| array.is_valid(i).then(|| array.value(i).to_owned()))
    }

    fn required_text(&self, column: &'static str) -> Result<impl Fn(usize) -> Result<String> + 'a> {
        let array = self.get::<StringArray>(column)?;
        let kind = self.kind;
        Ok(move |i| {
            if array.is_valid(i) {
                Ok(array.value(i).to_owned())
            } else {
                Err(LakeError::Decode { kind, column, reason: format!("null in row {i}") })
            }
        })
    }

    fn int64(&self, column: &'static str) -> Result<impl Fn(usize) -> Option<i64> + 'a> {
        let array = self.get::<Int64Array>(column)?;
        Ok(move |i| array.is_valid(i).then(|| array.value(i)))
    }

    /// A column added after lakes were first written: a file written before it has no such
    /// column, and its rows read as null there rather than failing the whole batch.
    fn added<T: Array + 'static>(&self, column: &'static str) -> Result<Option<&'a T>> {
        match self.batch.column_by_name(column) {
            Some(_) => self.get::<T>(column).map(Some),
            None => Ok(None),
        }
    }

    /// An Int64 column added later ([`Self::added`]).
    fn added_int64(&self, column: &'static str) -> Result<impl Fn(usize) -> Option<i64> + 'a> {
        let array = self.added::<Int64Array>(column)?;
        Ok(move |i| array.filter(|array| array.is_valid(i)).map(|array| array.value(i)))
    }

    /// A text column added later ([`Self::added`]).
    fn added_text(&self, column: &'static str) -> Result<impl Fn(usize) -> Option<String> + 'a> {
        let array = self.added::<StringArray>(column)?;
        Ok(move |i| array.filter(|array| array.is_valid(i)).map(|array| array.value(i).to_owned()))
    }

    fn float64(&self, column: &'static str) -> Result<impl Fn(usize) -> Option<f64> + 'a> {
        let array = self.get::<Float64Array>(column)?;
        Ok(move |i| array.is_valid(i).then(|| array.value(i)))
    }

    /// A time column, as the rows' Unix nanoseconds.
    fn time(&self, column: &'static str) -> Result<impl Fn(usize) -> i64 + 'a> {
        let array = self.get::<TimestampMicrosecondArray>(column)?;
        Ok(move |i| array.value(i).saturating_mul(1_000))
    }

    fn source(&self) -> Result<impl Fn(usize) -> Option<SourcePosition> + 'a> {
        let topic = self.get::<StringArray>("source_topic")?;
        let partition = self.get::<Int32Array>("source_partition")?;
        let offset = self.get::<Int64Array>("source_offset")?;
        Ok(move |i| {
            topic.is_valid(i).then(|| SourcePosition {
                topic: Arc::from(topic.value(i)),
                partition: if partition.is_valid(i) { partition.value(i) } else { 0 },
                offset: if offset.is_valid(i) { offset.value(i) } else { 0 },
            })
        })
    }
}

fn status(value: Option<&str>) -> CallStatus {
    match value {
        Some("ok") => CallStatus::Ok,
        Some("error") => CallStatus::Error,
        _ => CallStatus::Unset,
    }
}

/// Decode an `events` batch into inference events.
pub fn decode_events(batch: &RecordBatch) -> Result<Vec<InferenceEvent>> {
    let c = Columns { kind: "events", batch };
    let (event_id, app, operation) =
        (c.required_text("event_id")?, c.required_text("app")?, c.required_text("operation")?);
    let (trace_id, span_id, response_id) = (c.text("trace_id")?, c.text("span_id")?, c.text("response_id")?);
    let (time, start_time) = (c.time("time")?, c.time("start_time")?);
    let (environment, provider) = (c.text("environment")?, c.text("provider")?);
    let (request_model, response_model) = (c.text("request_model")?, c.text("response_model")?);
    let (prompt_id, prompt_version) = (c.text("prompt_id")?, c.text("prompt_version")?);
    let (input_tokens, output_tokens) = (c.int64("input_tokens")?, c.int64("output_tokens")?);
    let (cache_read_tokens, reasoning_tokens) = (c.int64("cache_read_tokens")?, c.int64("reasoning_tokens")?);
    let cache_write_tokens = c.added_int64("cache_write_tokens")?;
    let (cost_usd, reported_cost_usd) = (c.float64("cost_usd")?, c.float64("reported_cost_usd")?);
    let (latency_ms, ttft_ms) = (c.float64("latency_ms")?, c.float64("ttft_ms")?);
    let (price_version, status_col) = (c.text("price_version")?, c.text("status")?);
    let service_tier = c.added_text("service_tier")?;
    let (error_type, finish_reason) = (c.text("error_type")?, c.text("finish_reason")?);
    let (input_hash, output_hash) = (c.text("input_hash")?, c.text("output_hash")?);
    let simhash = c.get::<UInt64Array>("output_simhash")?;
    let output_chars = c.int64("output_chars")?;
    let (golden_case, content, source) = (c.text("golden_case")?, c.text("content")?, c.source()?);
    (0..batch.num_rows())
        .map(|i| {
            Ok(InferenceEvent {
                event_id: event_id(i)?,
                trace_id: trace_id(i),
                span_id: span_id(i),
                response_id: response_id(i),
                time: time(i),
                start_time: start_time(i),
                app: app(i)?,
                environment: environment(i),
                provider: provider(i),
                operation: operation(i)?,
                request_model: request_model(i),
                response_model: response_model(i),
                prompt_id: prompt_id(i),
                prompt_version: prompt_version(i),
                input_tokens: input_tokens(i),
                output_tokens: output_tokens(i),
                cache_read_tokens: cache_read_tokens(i),
                cache_write_tokens: cache_write_tokens(i),
                reasoning_tokens: reasoning_tokens(i),
                cost_usd: cost_usd(i),
                reported_cost_usd: reported_cost_usd(i),
                price_version: price_version(i),
                service_tier: service_tier(i),
                latency_ms: latency_ms(i),
                ttft_ms: ttft_ms(i),
                status: status(status_col(i).as_deref()),
                error_type: error_type(i),
                finish_reason: finish_reason(i),
                input_hash: input_hash(i),
                output_hash: output_hash(i),
                output_simhash: simhash.is_valid(i).then(|| simhash.value(i)),
                output_chars: output_chars(i),
                golden_case: golden_case(i),
                input_content: None,
                output_content: None,
                content: content(i),
                source: source(i),
            })
        })
        .collect()
}

/// Decode a `feedback` batch into feedback events.
pub fn decode_feedback(batch: &RecordBatch) -> Result<Vec<FeedbackEvent>> {
    let c = Columns { kind: "feedback", batch };
    let (feedback_id, app, name) = (c.required_text("feedback_id")?, c.required_text("app")?, c.required_text("name")?);
    let time = c.time("time")?;
    let (environment, score_value, score_label) =
        (c.text("environment")?, c.float64("score_value")?, c.text("score_label")?);
    let (trace_id, span_id, response_id) = (c.text("trace_id")?, c.text("span_id")?, c.text("response_id")?);
    let (inference_id, response_model) = (c.text("inference_id")?, c.text("response_model")?);
    let (provider, operation) = (c.text("provider")?, c.text("operation")?);
    let (prompt_id, prompt_version, source) = (c.text("prompt_id")?, c.text("prompt_version")?, c.source()?);
    (0..batch.num_rows())
        .map(|i| {
            Ok(FeedbackEvent {
                feedback_id: feedback_id(i)?,
                time: time(i),
                app: app(i)?,
                environment: environment(i),
                name: name(i)?,
                score_value: score_value(i),
                score_label: score_label(i),
                trace_id: trace_id(i),
                span_id: span_id(i),
                response_id: response_id(i),
                inference_id: inference_id(i),
                response_model: response_model(i),
                provider: provider(i),
                operation: operation(i),
                prompt_id: prompt_id(i),
                prompt_version: prompt_version(i),
                source: source(i),
            })
        })
        .collect()
}

/// Decode the tallies of one rollup row's `feedback` list.
fn tallies(list: &ListArray, row: usize) -> Result<Vec<FeedbackTally>> {
    let bad = |reason: &str| LakeError::Decode { kind: "rollups", column: "feedback", reason: reason.to_owned() };
    let values = list.value(row);
    let tallies = values.as_any().downcast_ref::<StructArray>().ok_or_else(|| bad("elements are not structs"))?;
    let field = |name: &str| tallies.column_by_name(name).ok_or_else(|| bad(&format!("missing field {name}")));
    let names = field("name")?.as_any().downcast_ref::<StringArray>().ok_or_else(|| bad("name is not Utf8"))?;
    let counts = field("count")?.as_any().downcast_ref::<Int64Array>().ok_or_else(|| bad("count is not Int64"))?;
    let scored = field("scored")?.as_any().downcast_ref::<Int64Array>().ok_or_else(|| bad("scored is not Int64"))?;
    let sums =
        field("score_sum")?.as_any().downcast_ref::<Float64Array>().ok_or_else(|| bad("score_sum is not Float64"))?;
    let flagged = field("flagged")?.as_any().downcast_ref::<Int64Array>().ok_or_else(|| bad("flagged is not Int64"))?;
    Ok((0..tallies.len())
        .map(|j| FeedbackTally {
            name: names.value(j).to_owned(),
            count: counts.value(j),
            scored: scored.is_valid(j).then(|| scored.value(j)),
            score_sum: sums.value(j),
            flagged: flagged.value(j),
        })
        .collect())
}

/// Decode a `rollups` batch into rollup rows.
pub fn decode_rollups(batch: &RecordBatch) -> Result<Vec<RollupRow>> {
    let c = Columns { kind: "rollups", batch };
    let (window_start, app) = (c.time("window_start")?, c.required_text("app")?);
    let (environment, provider, response_model) =
        (c.text("environment")?, c.text("provider")?, c.text("response_model")?);
    let (prompt_id, prompt_version, operation) =
        (c.text("prompt_id")?, c.text("prompt_version")?, c.text("operation")?);
    let (requests, errors) = (c.int64("requests")?, c.int64("errors")?);
    let (input_tokens, output_tokens) = (c.int64("input_tokens")?, c.int64("output_tokens")?);
    let (cache_read_tokens, reasoning_tokens) = (c.int64("cache_read_tokens")?, c.int64("reasoning_tokens")?);
    let cache_write_tokens = c.added_int64("cache_write_tokens")?;
    let cost_usd = c.float64("cost_usd")?;
    let (latency, ttft) = (c.get::<BinaryArray>("latency_us_hist")?, c.get::<BinaryArray>("ttft_us_hist")?);
    let feedback = c.get::<ListArray>("feedback")?;
    (0..batch.num_rows())
        .map(|i| {
            Ok(RollupRow {
                key: RollupKey {
                    window_start: window_start(i),
                    app: app(i)?,
                    environment: environment(i),
                    provider: provider(i),
                    response_model: response_model(i),
                    prompt_id: prompt_id(i),
                    prompt_version: prompt_version(i),
                    operation: operation(i),
                },
                requests: requests(i).unwrap_or(0),
                errors: errors(i).unwrap_or(0),
                input_tokens: input_tokens(i).unwrap_or(0),
                output_tokens: output_tokens(i).unwrap_or(0),
                cache_read_tokens: cache_read_tokens(i).unwrap_or(0),
                cache_write_tokens: cache_write_tokens(i).unwrap_or(0),
                reasoning_tokens: reasoning_tokens(i).unwrap_or(0),
                cost_usd: cost_usd(i).unwrap_or(0.0),
                latency_us_hist: latency.value(i).to_vec(),
                ttft_us_hist: ttft.value(i).to_vec(),
                feedback: tallies(feedback, i)?,
            })
        })
        .collect()
}
