//! The Arrow schemas of the lake's tables (DESIGN §5). Column names here are the
//! contract analyze's SQL and external readers rely on; [`crate::encode`] fills
//! them from the row types and [`crate::decode`] reads them back.
//!
//! Every table keeps `app` (where it has one) as a data column: readers register
//! the lake with `table_partition_cols = [("date", Utf8)]` only, read `app` from
//! the files, and still prune on it through Parquet statistics.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// Timezone of every timestamp column.
pub const UTC: &str = "UTC";

/// `Timestamp(µs, "UTC")`, the type of every time column. Microseconds, although rows keep
/// nanoseconds in memory: Parquet's `TIMESTAMP(MICROS)` is what every reader takes (Spark and
/// Databricks refuse `TIMESTAMP(NANOS)` and BigQuery cannot load it), and no GenAI timing
/// needs finer than a microsecond.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
}

/// A row's time (Unix nanoseconds) as the lake stores it (Unix microseconds), rounded down.
pub fn micros(nanos: i64) -> i64 {
    nanos.div_euclid(1_000)
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn source_fields() -> [Field; 3] {
    [
        utf8("source_topic", true),
        Field::new("source_partition", DataType::Int32, true),
        Field::new("source_offset", DataType::Int64, true),
    ]
}

static EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        utf8("event_id", false),
        utf8("trace_id", true),
        utf8("span_id", true),
        utf8("response_id", true),
        Field::new("time", timestamp_type(), false),
        Field::new("start_time", timestamp_type(), false),
        utf8("app", false),
        utf8("environment", true),
        utf8("provider", true),
        utf8("operation", false),
        utf8("request_model", true),
        utf8("response_model", true),
        utf8("prompt_id", true),
        utf8("prompt_version", true),
        Field::new("input_tokens", DataType::Int64, true),
        Field::new("output_tokens", DataType::Int64, true),
        Field::new("cache_read_tokens", DataType::Int64, true),
        Field::new("cache_write_tokens", DataType::Int64, true),
        Field::new("reasoning_tokens", DataType::Int64, true),
        Field::new("cost_usd", DataType::Float64, true),
        Field::new("reported_cost_usd", DataType::Float64, true),
        utf8("price_version", true),
        utf8("service_tier", true),
        Field::new("latency_ms", DataType::Float64, true),
        Field::new("ttft_ms", DataType::Float64, true),
        utf8("status", false),
        utf8("error_type", true),
        utf8("finish_reason", true),
        utf8("input_hash", true),
        utf8("output_hash", true),
        Field::new("output_simhash", DataType::UInt64, true),
        Field::new("output_chars", DataType::Int64, true),
        utf8("golden_case", true),
        utf8("content", true),
    ];
    fields.extend(source_fields());
    Arc::new(Schema::new(fields))
});

static FEEDBACK: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        utf8("feedback_id", false),
        Field::new("time", timestamp_type(), false),
        utf8("app", false),
        utf8("environment", true),
        utf8("name", false),
        Field::new("score_value", DataType::Float64, true),
        utf8("score_label", true),
        utf8("trace_id", true),
        utf8("span_id", true),
        utf8("response_id", true),
        utf8("inference_id", true),
        utf8("response_model", true),
        utf8("provider", true),
        utf8("operation", true),
        utf8("prompt_id", true),
        utf8("prompt_version", true),
    ];
    fields.extend(source_fields());
    Arc::new(Schema::new(fields))
});

/// Fields of one element of the rollups' `feedback` list.
pub fn feedback_tally_fields() -> Fields {
    Fields::from(vec![
        utf8("name", false),
        Field::new("count", DataType::Int64, false),
        // Nullable: rollups written before it existed read it as null (unknown), not as an error.
        Field::new("scored", DataType::Int64, true),
        Field::new("score_sum", DataType::Float64, false),
        Field::new("flagged", DataType::Int64, false),
    ])
}

/// The element field of the rollups' `feedback` list.
pub fn feedback_tally_item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Struct(feedback_tally_fields()), false))
}

static ROLLUPS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("window_start", timestamp_type(), false),
        utf8("app", false),
        utf8("environment", true),
        utf8("provider", true),
        utf8("response_model", true),
        utf8("prompt_id", true),
        utf8("prompt_version", true),
        utf8("operation", true),
        Field::new("requests", DataType::Int64, false),
        Field::new("errors", DataType::Int64, false),
        Field::new("input_tokens", DataType::Int64, false),
        Field::new("output_tokens", DataType::Int64, false),
        Field::new("cache_read_tokens", DataType::Int64, false),
        Field::new("cache_write_tokens", DataType::Int64, false),
        Field::new("reasoning_tokens", DataType::Int64, false),
        Field::new("cost_usd", DataType::Float64, false),
        Field::new("latency_us_hist", DataType::Binary, false),
        Field::new("ttft_us_hist", DataType::Binary, false),
        Field::new("feedback", DataType::List(feedback_tally_item()), false),
    ]))
});

static DEAD_LETTER: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new("time", timestamp_type(), false),
        utf8("reason", false),
        utf8("detail", false),
        Field::new("payload", DataType::Binary, false),
    ];
    fields.extend(source_fields());
    Arc::new(Schema::new(fields))
});

/// Schema of `events/`: one row per inference call.
pub fn events_schema() -> SchemaRef {
    Arc::clone(&EVENTS)
}

/// Schema of `feedback/`: one row per feedback or evaluation result.
pub fn feedback_schema() -> SchemaRef {
    Arc::clone(&FEEDBACK)
}

/// Schema of `rollups/`: partial 1-minute aggregates that readers sum and merge.
pub fn rollups_schema() -> SchemaRef {
    Arc::clone(&ROLLUPS)
}

/// Schema of `dead_letter/`: rejected input and why.
pub fn dead_letter_schema() -> SchemaRef {
    Arc::clone(&DEAD_LETTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_columns_are_the_documented_contract() {
        let schema = events_schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "event_id",
                "trace_id",
                "span_id",
                "response_id",
                "time",
                "start_time",
                "app",
                "environment",
                "provider",
                "operation",
                "request_model",
                "response_model",
                "prompt_id",
                "prompt_version",
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "reasoning_tokens",
                "cost_usd",
                "reported_cost_usd",
                "price_version",
                "service_tier",
                "latency_ms",
                "ttft_ms",
                "status",
                "error_type",
                "finish_reason",
                "input_hash",
                "output_hash",
                "output_simhash",
                "output_chars",
                "golden_case",
                "content",
                "source_topic",
                "source_partition",
                "source_offset",
            ]
        );
    }
}
