//! The histogram contract shared by ingest (writes rollups) and analyze (merges them).
//!
//! Rollups carry HdrHistograms in the V2 serialization so that any set of
//! windows merges exactly: merging the serialized partials gives the same
//! counts as one histogram over all the values.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

/// Significant decimal digits kept by every latency histogram (0.1% relative error).
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Highest trackable value at creation: one hour in microseconds. Histograms
/// auto-resize beyond it, so a pathological latency is recorded, not dropped.
pub const INITIAL_HIGHEST_US: u64 = 3_600_000_000;

/// Errors from encoding or decoding a serialized histogram.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("cannot create histogram: {0}")]
    Create(#[from] hdrhistogram::CreationError),
    #[error("cannot serialize histogram: {0}")]
    Serialize(#[from] hdrhistogram::serialization::V2SerializeError),
    #[error("cannot deserialize histogram ({len} bytes): {source}")]
    Deserialize {
        len: usize,
        #[source]
        source: hdrhistogram::serialization::DeserializeError,
    },
    #[error("cannot record value: {0}")]
    Record(#[from] hdrhistogram::RecordError),
    #[error("cannot merge histograms: {0}")]
    Merge(#[from] hdrhistogram::AdditionError),
}

/// A new empty microsecond histogram with the lake's precision.
pub fn new_histogram() -> Result<Histogram<u64>, HistogramError> {
    let mut histogram = Histogram::new_with_bounds(1, INITIAL_HIGHEST_US, SIGNIFICANT_DIGITS)?;
    histogram.auto(true);
    Ok(histogram)
}

/// Serialize in the V2 (uncompressed) format; the Parquet column is zstd-compressed anyway.
pub fn serialize(histogram: &Histogram<u64>) -> Result<Vec<u8>, HistogramError> {
    let mut buffer = Vec::with_capacity(64);
    V2Serializer::new().serialize(histogram, &mut buffer)?;
    Ok(buffer)
}

/// Deserialize a V2 histogram written by [`serialize`].
pub fn deserialize(bytes: &[u8]) -> Result<Histogram<u64>, HistogramError> {
    let mut cursor = std::io::Cursor::new(bytes);
    Deserializer::new()
        .deserialize(&mut cursor)
        .map_err(|source| HistogramError::Deserialize { len: bytes.len(), source })
}

/// Merge a serialized partial into `into`, which grows to hold values beyond its range (as
/// analyze's `hdr_merge` does). Empty input (no values recorded) is a no-op.
pub fn merge_serialized(into: &mut Histogram<u64>, bytes: &[u8]) -> Result<(), HistogramError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let partial = deserialize(bytes)?;
    into.auto(true);
    into.add(&partial)?;
    Ok(())
}

/// Milliseconds (as stored on events) to the histogram's microsecond unit, clamped at 1 µs
/// because a histogram cannot hold 0 with a lowest discernible value of 1.
pub fn millis_to_micros(ms: f64) -> u64 {
    let micros = (ms * 1000.0).round();
    if micros.is_nan() || micros < 1.0 {
        1
    } else if micros >= u64::MAX as f64 {
        u64::MAX
    } else {
        micros as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_partials_equal_one_histogram_over_all_values() -> Result<(), HistogramError> {
        let values: Vec<u64> = (0..10_000u64).map(|i| 1 + (i * 7919) % 2_000_000).collect();
        let mut whole = new_histogram()?;
        let mut merged = new_histogram()?;
        for chunk in values.chunks(777) {
            let mut part = new_histogram()?;
            for &v in chunk {
                part.record(v)?;
                whole.record(v)?;
            }
            merge_serialized(&mut merged, &serialize(&part)?)?;
        }
        assert_eq!(buckets(&merged), buckets(&whole), "(bucket value, count) of every non-empty bucket");
        // Every bucket's count, empty ones too, and the total, min, max and precision. Both ways
        // round: `eq` walks only the left histogram's buckets.
        assert!(merged == whole, "the merged histogram differs from the whole one");
        assert!(whole == merged, "the whole histogram differs from the merged one");
        Ok(())
    }

    /// Every non-empty bucket as (highest value equivalent to the bucket, count).
    fn buckets(histogram: &Histogram<u64>) -> Vec<(u64, u64)> {
        histogram.iter_recorded().map(|bucket| (bucket.value_iterated_to(), bucket.count_at_value())).collect()
    }

    #[test]
    fn values_beyond_the_initial_bound_are_kept() -> Result<(), HistogramError> {
        let mut h = new_histogram()?;
        h.record(INITIAL_HIGHEST_US * 10)?;
        let back = deserialize(&serialize(&h)?)?;
        assert_eq!(back.len(), 1);
        assert!(back.max() >= INITIAL_HIGHEST_US * 10 - INITIAL_HIGHEST_US / 100);
        Ok(())
    }

    #[test]
    fn a_deserialized_histogram_grows_to_merge_a_wider_partial() -> Result<(), HistogramError> {
        let mut narrow = new_histogram()?;
        narrow.record(10)?;
        let mut wide = new_histogram()?;
        wide.record(INITIAL_HIGHEST_US * 100)?;
        // Read back, a histogram no longer grows by itself.
        let mut into = deserialize(&serialize(&narrow)?)?;
        merge_serialized(&mut into, &serialize(&wide)?)?;
        assert_eq!(into.len(), 2);
        assert!(into.max() >= INITIAL_HIGHEST_US * 99);
        Ok(())
    }

    #[test]
    fn millis_convert_and_clamp() {
        assert_eq!(millis_to_micros(1.5), 1500);
        assert_eq!(millis_to_micros(0.0), 1);
        assert_eq!(millis_to_micros(-3.0), 1);
        assert_eq!(millis_to_micros(f64::NAN), 1);
    }
}
