//! `hdr_merge` and `hdr_quantile`: aggregates over serialized histograms.
//!
//! Both share one accumulator whose partial state is the merged histogram in
//! the lake's own V2 serialization, so partial aggregates computed on
//! different partitions (or threads) merge exactly in `merge_batch`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};
use datafusion::physical_expr::expressions::Literal;
use datafusion::scalar::ScalarValue;
use hdrhistogram::Histogram;

use super::{Histograms, check_quantile, coerce_histogram_and_quantile, coerce_histogram_arg, decode, quantile_value};

/// `hdr_merge(histogram) -> binary`: every input histogram merged into one (NULL when none has values).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HdrMerge {
    signature: Signature,
}

impl HdrMerge {
    /// The function as registered under `hdr_merge`.
    pub fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl Default for HdrMerge {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateUDFImpl for HdrMerge {
    fn name(&self) -> &str {
        "hdr_merge"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [histogram] => Ok(vec![coerce_histogram_arg(self.name(), histogram)?]),
            _ => Err(DataFusionError::Plan(format!("hdr_merge takes 1 argument, got {}", arg_types.len()))),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn accumulator(&self, _args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(HistogramAccumulator::new("hdr_merge", Output::Merged)))
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name))
    }
}

/// `hdr_quantile(histogram, q) -> double`: merge, then the value at quantile `q` (constant, in `[0, 1]`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HdrQuantile {
    signature: Signature,
}

impl HdrQuantile {
    /// The function as registered under `hdr_quantile`.
    pub fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl Default for HdrQuantile {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateUDFImpl for HdrQuantile {
    fn name(&self) -> &str {
        "hdr_quantile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_histogram_and_quantile(self.name(), arg_types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        // The quantile is fixed for the whole aggregate (as for approx_percentile_cont):
        // it is read once here rather than carried in every partial state.
        let literal = args
            .exprs
            .get(1)
            .and_then(|expr| expr.downcast_ref::<Literal>())
            .ok_or_else(|| DataFusionError::Plan("hdr_quantile: the quantile must be a constant".to_owned()))?;
        let q = match literal.value().cast_to(&DataType::Float64)? {
            ScalarValue::Float64(Some(q)) => check_quantile("hdr_quantile", q)?,
            other => {
                return Err(DataFusionError::Plan(format!("hdr_quantile: quantile must be a number, got {other}")));
            }
        };
        Ok(Box::new(HistogramAccumulator::new("hdr_quantile", Output::Quantile(q))))
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name))
    }
}

/// One serialized histogram; empty bytes stand for "no values yet".
fn state_fields(name: &str) -> Vec<FieldRef> {
    vec![Arc::new(Field::new(format_state_name(name, "histogram"), DataType::Binary, true))]
}

/// What the accumulator reports at the end.
#[derive(Debug, Clone, Copy)]
enum Output {
    /// The merged histogram, serialized.
    Merged,
    /// The merged histogram's value at this quantile.
    Quantile(f64),
}

/// Merges serialized histograms, from input rows and from other partitions' states alike.
#[derive(Debug)]
struct HistogramAccumulator {
    /// Function name for error messages.
    function: &'static str,
    output: Output,
    /// Created from the first decoded input rather than up front: a group that
    /// never sees a value costs nothing, and the first partial's size is reused.
    merged: Option<Histogram<u64>>,
}

impl HistogramAccumulator {
    fn new(function: &'static str, output: Output) -> Self {
        Self { function, output, merged: None }
    }

    fn absorb(&mut self, bytes: &[u8]) -> Result<()> {
        let partial = decode(self.function, bytes)?;
        match &mut self.merged {
            Some(merged) => merged.add(&partial).map_err(|error| {
                DataFusionError::Execution(format!("{}: cannot merge histograms: {error}", self.function))
            }),
            None => {
                let mut first = partial;
                // Later partials may hold values beyond this one's range; grow instead of failing.
                first.auto(true);
                self.merged = Some(first);
                Ok(())
            }
        }
    }

    fn absorb_all(&mut self, array: &arrow::array::ArrayRef) -> Result<()> {
        let histograms = Histograms::new(self.function, array)?;
        histograms.for_each(|bytes| self.absorb(bytes))
    }

    fn serialized(&self) -> Result<Option<Vec<u8>>> {
        match self.merged.as_ref().filter(|merged| !merged.is_empty()) {
            Some(merged) => driftwatch_lake::histogram::serialize(merged)
                .map(Some)
                .map_err(|error| DataFusionError::Execution(format!("{}: {error}", self.function))),
            None => Ok(None),
        }
    }
}

impl Accumulator for HistogramAccumulator {
    fn update_batch(&mut self, values: &[arrow::array::ArrayRef]) -> Result<()> {
        match values.first() {
            Some(histograms) => self.absorb_all(histograms),
            None => Ok(()),
        }
    }

    fn merge_batch(&mut self, states: &[arrow::array::ArrayRef]) -> Result<()> {
        match states.first() {
            Some(histograms) => self.absorb_all(histograms),
            None => Ok(()),
        }
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Binary(Some(self.serialized()?.unwrap_or_default()))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        match self.output {
            Output::Merged => Ok(ScalarValue::Binary(self.serialized()?)),
            Output::Quantile(q) => {
                Ok(ScalarValue::Float64(self.merged.as_ref().and_then(|merged| quantile_value(merged, q))))
            }
        }
    }

    fn size(&self) -> usize {
        let counts = self.merged.as_ref().map_or(0, |merged| merged.distinct_values() * size_of::<u64>());
        size_of_val(self) + counts
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, BinaryArray};

    use super::*;

    fn serialized(values: &[u64]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let mut histogram = driftwatch_lake::histogram::new_histogram()?;
        for &value in values {
            histogram.record(value)?;
        }
        Ok(driftwatch_lake::histogram::serialize(&histogram)?)
    }

    fn column(values: &[&[u8]]) -> ArrayRef {
        Arc::new(BinaryArray::from_iter_values(values.iter()))
    }

    #[test]
    fn states_of_partial_accumulators_merge_exactly() -> Result<(), Box<dyn std::error::Error>> {
        let (left, right) = (serialized(&[10, 20, 30])?, serialized(&[40, 5_000_000_000])?);
        let mut first = HistogramAccumulator::new("hdr_quantile", Output::Quantile(0.5));
        first.update_batch(&[column(&[&left, b""])])?;
        let mut second = HistogramAccumulator::new("hdr_quantile", Output::Quantile(0.5));
        second.update_batch(&[column(&[&right])])?;
        let mut empty = HistogramAccumulator::new("hdr_quantile", Output::Quantile(0.5));

        let mut last = HistogramAccumulator::new("hdr_quantile", Output::Quantile(0.5));
        for partial in [&mut first, &mut second, &mut empty] {
            let state: Vec<ArrayRef> =
                partial.state()?.into_iter().map(|value| value.to_array()).collect::<Result<_>>()?;
            last.merge_batch(&state)?;
        }
        let all = driftwatch_lake::histogram::deserialize(&serialized(&[10, 20, 30, 40, 5_000_000_000])?)?;
        assert_eq!(last.evaluate()?, ScalarValue::Float64(Some(all.value_at_quantile(0.5) as f64)));
        assert_eq!(last.merged.as_ref().map(Histogram::len), Some(5));
        assert!(last.size() > size_of::<HistogramAccumulator>());
        Ok(())
    }

    #[test]
    fn nothing_merged_evaluates_to_null() -> Result<(), Box<dyn std::error::Error>> {
        let mut merge = HistogramAccumulator::new("hdr_merge", Output::Merged);
        merge.update_batch(&[column(&[b""])])?;
        assert_eq!(merge.evaluate()?, ScalarValue::Binary(None));
        assert_eq!(merge.state()?, vec![ScalarValue::Binary(Some(Vec::new()))]);
        Ok(())
    }
}
