//! HdrHistogram functions for SQL over the lake's rollups.
//!
//! Rollup rows carry latency and TTFT as serialized HdrHistograms (V2, see
//! `driftwatch_lake::histogram`); an empty value means "no values recorded".
//! These functions merge and query them inside DataFusion so percentiles over
//! any set of windows are exact and never require pulling rows into Rust:
//!
//! - `hdr_merge(binary) -> binary` (aggregate): the merged histogram.
//! - `hdr_quantile(binary, q) -> double` (aggregate): merge, then the value at
//!   quantile `q` (a constant in `[0, 1]`), in the histogram's unit.
//! - `hdr_quantile_of(binary, q) -> double` (scalar): the value at `q` of each row's histogram.
//! - `hdr_count(binary) -> bigint` (scalar): how many values each histogram holds.
//!
//! Null and empty inputs are skipped; bytes that do not decode fail the query
//! with an execution error naming the function and the byte length.

mod aggregate;
mod scalar;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, BinaryViewArray, LargeBinaryArray};
use arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionContext;
use hdrhistogram::Histogram;

pub use aggregate::{HdrMerge, HdrQuantile};
pub use scalar::{HdrCount, HdrQuantileOf};

/// Register `hdr_merge`, `hdr_quantile`, `hdr_quantile_of` and `hdr_count` on `ctx`.
pub fn register_udfs(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::from(HdrMerge::new()));
    ctx.register_udaf(AggregateUDF::from(HdrQuantile::new()));
    ctx.register_udf(ScalarUDF::from(HdrQuantileOf::new()));
    ctx.register_udf(ScalarUDF::from(HdrCount::new()));
}

/// Row access over whichever binary layout the plan produced (Parquet reads
/// may yield views; literals and casts yield plain or large binary).
enum Histograms<'a> {
    Binary(&'a BinaryArray),
    Large(&'a LargeBinaryArray),
    View(&'a BinaryViewArray),
    /// An all-null argument (`hdr_count(NULL)`).
    Null(usize),
}

impl<'a> Histograms<'a> {
    fn new(function: &str, array: &'a ArrayRef) -> Result<Self> {
        Ok(match array.data_type() {
            DataType::Binary => Histograms::Binary(array.as_binary::<i32>()),
            DataType::LargeBinary => Histograms::Large(array.as_binary::<i64>()),
            DataType::BinaryView => Histograms::View(array.as_binary_view()),
            DataType::Null => Histograms::Null(array.len()),
            other => {
                return Err(DataFusionError::Execution(format!(
                    "{function}: expected a binary histogram column, got {other}"
                )));
            }
        })
    }

    fn len(&self) -> usize {
        match self {
            Histograms::Binary(a) => a.len(),
            Histograms::Large(a) => a.len(),
            Histograms::View(a) => a.len(),
            Histograms::Null(len) => *len,
        }
    }

    /// The bytes at `row`, `None` when null.
    fn get(&self, row: usize) -> Option<&'a [u8]> {
        match self {
            Histograms::Binary(a) => a.is_valid(row).then(|| a.value(row)),
            Histograms::Large(a) => a.is_valid(row).then(|| a.value(row)),
            Histograms::View(a) => a.is_valid(row).then(|| a.value(row)),
            Histograms::Null(_) => None,
        }
    }

    /// Call `f` with every non-null, non-empty value.
    fn for_each(&self, mut f: impl FnMut(&'a [u8]) -> Result<()>) -> Result<()> {
        for row in 0..self.len() {
            if let Some(bytes) = self.get(row).filter(|bytes| !bytes.is_empty()) {
                f(bytes)?;
            }
        }
        Ok(())
    }
}

/// Decode one serialized histogram, failing the query with what went wrong.
fn decode(function: &str, bytes: &[u8]) -> Result<Histogram<u64>> {
    driftwatch_lake::histogram::deserialize(bytes)
        .map_err(|error| DataFusionError::Execution(format!("{function}: corrupt histogram: {error}")))
}

/// Accept any binary layout for the histogram argument (null literals become binary).
fn coerce_histogram_arg(function: &str, data_type: &DataType) -> Result<DataType> {
    match data_type {
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Ok(data_type.clone()),
        DataType::Null => Ok(DataType::Binary),
        other => {
            Err(DataFusionError::Plan(format!("{function}: first argument must be a binary histogram, got {other}")))
        }
    }
}

/// `(histogram, q)` argument coercion shared by the two-argument functions.
pub(crate) fn coerce_histogram_and_quantile(name: &str, arg_types: &[DataType]) -> Result<Vec<DataType>> {
    match arg_types {
        [histogram, q] => Ok(vec![coerce_histogram_arg(name, histogram)?, coerce_quantile_arg(name, q)?]),
        _ => Err(DataFusionError::Plan(format!("{name} takes 2 arguments, got {}", arg_types.len()))),
    }
}

/// Accept any numeric quantile argument, computed with as a double.
fn coerce_quantile_arg(function: &str, data_type: &DataType) -> Result<DataType> {
    if data_type.is_numeric() || *data_type == DataType::Null {
        Ok(DataType::Float64)
    } else {
        Err(DataFusionError::Plan(format!("{function}: quantile must be a number in [0, 1], got {data_type}")))
    }
}

/// Reject quantiles outside `[0, 1]` instead of letting HdrHistogram clamp them silently.
fn check_quantile(function: &str, q: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&q) {
        Ok(q)
    } else {
        Err(DataFusionError::Execution(format!("{function}: quantile {q} is outside [0, 1]")))
    }
}

/// The value at `q` as a double, `None` for a histogram without values.
fn quantile_value(histogram: &Histogram<u64>, q: f64) -> Option<f64> {
    // Latencies in µs stay far below 2^53, where u64 -> f64 is exact.
    #[allow(clippy::cast_precision_loss)]
    (!histogram.is_empty()).then(|| histogram.value_at_quantile(q) as f64)
}
