//! Typed reads of small query results (summaries, totals) into Rust values.
//!
//! Only final, already-aggregated results pass through here: a few rows per
//! app. Columns are cast to the expected type first, so the readers do not
//! depend on whether DataFusion chose e.g. `Utf8View` or `Int32` for a result.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};

use crate::error::{Error, Result};

/// One result batch of a named query, read column by column.
pub(crate) struct Columns<'a> {
    query: &'static str,
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    pub(crate) fn new(query: &'static str, batch: &'a RecordBatch) -> Self {
        Self { query, batch }
    }

    fn cast(&self, column: &'static str, to: &DataType) -> Result<ArrayRef> {
        let array = self.batch.column_by_name(column).ok_or_else(|| Error::Shape {
            query: self.query,
            column,
            problem: "is missing from the result".to_owned(),
        })?;
        cast(array, to).map_err(|error| Error::Shape {
            query: self.query,
            column,
            problem: format!("cannot be read as {to}: {error}"),
        })
    }

    /// Non-null strings.
    pub(crate) fn strings(&self, column: &'static str) -> Result<Vec<String>> {
        let array = self.cast(column, &DataType::Utf8)?;
        let strings = array.as_string::<i32>();
        (0..strings.len())
            .map(|row| {
                strings.is_valid(row).then(|| strings.value(row).to_owned()).ok_or_else(|| self.null(column, row))
            })
            .collect()
    }

    /// Non-null integers.
    pub(crate) fn int64s(&self, column: &'static str) -> Result<Vec<i64>> {
        let array = self.cast(column, &DataType::Int64)?;
        let ints = array.as_primitive::<Int64Type>();
        (0..ints.len())
            .map(|row| ints.is_valid(row).then(|| ints.value(row)).ok_or_else(|| self.null(column, row)))
            .collect()
    }

    /// Non-null doubles.
    pub(crate) fn float64s(&self, column: &'static str) -> Result<Vec<f64>> {
        self.optional_float64s(column)?
            .into_iter()
            .enumerate()
            .map(|(row, value)| value.ok_or_else(|| self.null(column, row)))
            .collect()
    }

    /// Doubles where null means "not available" (e.g. no latency recorded).
    pub(crate) fn optional_float64s(&self, column: &'static str) -> Result<Vec<Option<f64>>> {
        let array = self.cast(column, &DataType::Float64)?;
        let floats = array.as_primitive::<Float64Type>();
        Ok((0..floats.len()).map(|row| floats.is_valid(row).then(|| floats.value(row))).collect())
    }

    fn null(&self, column: &'static str, row: usize) -> Error {
        Error::Shape { query: self.query, column, problem: format!("is null in row {row}") }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int32Array, StringViewArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn reads_cast_columns_and_reports_nulls() -> Result<(), Box<dyn std::error::Error>> {
        let schema = Schema::new(vec![
            Field::new("name", DataType::Utf8View, true),
            Field::new("n", DataType::Int32, true),
            Field::new("x", DataType::Float64, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringViewArray::from(vec![Some("a"), None])),
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(Float64Array::from(vec![Some(0.5), None])),
            ],
        )?;
        let columns = Columns::new("test", &batch);
        assert_eq!(columns.int64s("n")?, vec![1, 2]);
        assert_eq!(columns.optional_float64s("x")?, vec![Some(0.5), None]);
        assert!(matches!(columns.strings("name"), Err(Error::Shape { column: "name", .. })));
        assert!(matches!(columns.float64s("x"), Err(Error::Shape { column: "x", .. })));
        assert!(matches!(columns.int64s("missing"), Err(Error::Shape { column: "missing", .. })));
        Ok(())
    }
}
