//! `hdr_quantile_of` and `hdr_count`: per-row functions over serialized histograms,
//! for histograms already merged (by `hdr_merge`) or single rollup rows.

use std::sync::Arc;

use arrow::array::{Array, Float64Array, Int64Array};
use arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use super::{Histograms, check_quantile, coerce_histogram_and_quantile, coerce_histogram_arg, decode, quantile_value};

/// `hdr_quantile_of(histogram, q) -> double`: the value at quantile `q` of each row's histogram.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HdrQuantileOf {
    signature: Signature,
}

impl HdrQuantileOf {
    /// The function as registered under `hdr_quantile_of`.
    pub fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl Default for HdrQuantileOf {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for HdrQuantileOf {
    fn name(&self) -> &str {
        "hdr_quantile_of"
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

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [histograms, quantiles] = arrays.as_slice() else {
            return Err(DataFusionError::Execution(format!("hdr_quantile_of takes 2 arguments, got {}", arrays.len())));
        };
        let histograms = Histograms::new(self.name(), histograms)?;
        let quantiles = quantiles.as_any().downcast_ref::<Float64Array>().ok_or_else(|| {
            DataFusionError::Execution(format!(
                "hdr_quantile_of: quantile column is {}, not Float64",
                quantiles.data_type()
            ))
        })?;
        let mut out = Float64Array::builder(histograms.len());
        for row in 0..histograms.len() {
            let bytes = histograms.get(row).filter(|bytes| !bytes.is_empty());
            let q = quantiles.is_valid(row).then(|| quantiles.value(row));
            match (bytes, q) {
                (Some(bytes), Some(q)) => {
                    let q = check_quantile(self.name(), q)?;
                    out.append_option(quantile_value(&decode(self.name(), bytes)?, q));
                }
                _ => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `hdr_count(histogram) -> bigint`: values recorded in each row's histogram (0 for empty bytes).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HdrCount {
    signature: Signature,
}

impl HdrCount {
    /// The function as registered under `hdr_count`.
    pub fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl Default for HdrCount {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for HdrCount {
    fn name(&self) -> &str {
        "hdr_count"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [histogram] => Ok(vec![coerce_histogram_arg(self.name(), histogram)?]),
            _ => Err(DataFusionError::Plan(format!("hdr_count takes 1 argument, got {}", arg_types.len()))),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [histograms] = arrays.as_slice() else {
            return Err(DataFusionError::Execution(format!("hdr_count takes 1 argument, got {}", arrays.len())));
        };
        let histograms = Histograms::new(self.name(), histograms)?;
        let mut out = Int64Array::builder(histograms.len());
        for row in 0..histograms.len() {
            match histograms.get(row) {
                None => out.append_null(),
                Some([]) => out.append_value(0),
                Some(bytes) => {
                    let count = decode(self.name(), bytes)?.len();
                    out.append_value(i64::try_from(count).unwrap_or(i64::MAX));
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
