//! The lake's Arrow schemas as analyze reads them: the writer's own schemas
//! ([`driftwatch_lake::schema`], the one contract both sides share) with every top-level
//! column relaxed to nullable.
//!
//! Tables are registered with these declared schemas rather than inferred ones so that a
//! fresh lake (no files yet) still has queryable, correctly typed tables, and files written
//! before a column existed read that column as null. Relaxing nullability lets the reader
//! accept whatever an older or foreign writer chose for ids and times.

use std::sync::Arc;

use arrow::datatypes::{Fields, Schema, SchemaRef};
use driftwatch_lake::schema as lake;

fn nullable(schema: &Schema) -> SchemaRef {
    let fields: Vec<_> = schema.fields().iter().map(|field| field.as_ref().clone().with_nullable(true)).collect();
    Arc::new(Schema::new(fields))
}

/// One inference call per row (`events/date=/app=/`).
pub fn events() -> SchemaRef {
    nullable(&lake::events_schema())
}

/// One feedback or evaluation result per row (`feedback/date=/`).
pub fn feedback() -> SchemaRef {
    nullable(&lake::feedback_schema())
}

/// The struct inside a rollup's `feedback` list: one tally per evaluation name.
pub fn feedback_tally_fields() -> Fields {
    lake::feedback_tally_fields()
}

/// Partial 1-minute aggregates (`rollups/date=/`).
pub fn rollups() -> SchemaRef {
    nullable(&lake::rollups_schema())
}

/// Rejected input with its reason (`dead_letter/date=/`).
pub fn dead_letter() -> SchemaRef {
    nullable(&lake::dead_letter_schema())
}
