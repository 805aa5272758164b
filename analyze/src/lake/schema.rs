//! The Arrow schemas analyze reads the lake with (DESIGN §5). Tables are
//! registered with these declared schemas rather than inferred ones so that a
//! fresh lake (no files yet) still has queryable, correctly typed tables, and
//! files written before a column existed read that column as null.
//!
//! Every column is declared nullable: the reader must accept whatever the
//! writer chose for ids and times, and SQL handles nulls either way.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn int64(name: &str) -> Field {
    Field::new(name, DataType::Int64, true)
}

fn float64(name: &str) -> Field {
    Field::new(name, DataType::Float64, true)
}

fn timestamp(name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), true)
}

/// Columns locating a row in its source, shared by every table written from a stream.
fn source_fields() -> [Field; 3] {
    [utf8("source_topic"), Field::new("source_partition", DataType::Int32, true), int64("source_offset")]
}

/// One inference call per row (`events/date=/app=/`).
pub fn events() -> SchemaRef {
    let mut fields = vec![
        utf8("event_id"),
        utf8("trace_id"),
        utf8("span_id"),
        utf8("response_id"),
        timestamp("time"),
        timestamp("start_time"),
        utf8("app"),
        utf8("environment"),
        utf8("provider"),
        utf8("operation"),
        utf8("request_model"),
        utf8("response_model"),
        utf8("prompt_id"),
        utf8("prompt_version"),
        int64("input_tokens"),
        int64("output_tokens"),
        int64("cache_read_tokens"),
        int64("reasoning_tokens"),
        float64("cost_usd"),
        float64("reported_cost_usd"),
        utf8("price_version"),
        float64("latency_ms"),
        float64("ttft_ms"),
        utf8("status"),
        utf8("error_type"),
        utf8("finish_reason"),
        utf8("input_hash"),
        utf8("output_hash"),
        Field::new("output_simhash", DataType::UInt64, true),
        int64("output_chars"),
        utf8("golden_case"),
        utf8("content"),
    ];
    fields.extend(source_fields());
    Arc::new(Schema::new(fields))
}

/// One feedback or evaluation result per row (`feedback/date=/`).
pub fn feedback() -> SchemaRef {
    let mut fields = vec![
        utf8("feedback_id"),
        timestamp("time"),
        utf8("app"),
        utf8("environment"),
        utf8("name"),
        float64("score_value"),
        utf8("score_label"),
        utf8("trace_id"),
        utf8("span_id"),
        utf8("response_id"),
        utf8("inference_id"),
        utf8("response_model"),
        utf8("provider"),
        utf8("operation"),
        utf8("prompt_id"),
        utf8("prompt_version"),
    ];
    fields.extend(source_fields());
    Arc::new(Schema::new(fields))
}

/// The struct inside a rollup's `feedback` list: one tally per evaluation name.
pub fn feedback_tally_fields() -> Fields {
    Fields::from(vec![utf8("name"), int64("count"), float64("score_sum"), int64("flagged")])
}

/// Partial 1-minute aggregates (`rollups/date=/`).
pub fn rollups() -> SchemaRef {
    let tally = DataType::Struct(feedback_tally_fields());
    Arc::new(Schema::new(vec![
        timestamp("window_start"),
        utf8("app"),
        utf8("environment"),
        utf8("provider"),
        utf8("response_model"),
        utf8("prompt_id"),
        utf8("prompt_version"),
        utf8("operation"),
        int64("requests"),
        int64("errors"),
        int64("input_tokens"),
        int64("output_tokens"),
        int64("cache_read_tokens"),
        int64("reasoning_tokens"),
        float64("cost_usd"),
        Field::new("latency_us_hist", DataType::Binary, true),
        Field::new("ttft_us_hist", DataType::Binary, true),
        Field::new("feedback", DataType::List(Arc::new(Field::new("item", tally, true))), true),
    ]))
}

/// Rejected input with its reason (`dead_letter/date=/`).
pub fn dead_letter() -> SchemaRef {
    let mut fields =
        vec![timestamp("time"), utf8("reason"), utf8("detail"), Field::new("payload", DataType::Binary, true)];
    fields.extend(source_fields());
    Arc::new(Schema::new(fields))
}
