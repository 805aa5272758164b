//! A sparse HdrHistogram recorder for open rollup keys.
//!
//! Microsecond values enter one at a time while a key is open; at drain they
//! leave as a V2-serialized HdrHistogram identical to one built by recording
//! the same values into [`driftwatch_lake::histogram::new_histogram`].
//!
//! Why not hold a real `Histogram` per key: at the lake's precision (3
//! significant digits, 1 µs .. 1 h) its counts array is ~23k slots (~188 KB),
//! so 50k open keys would need ~19 GB. Instead each key keeps only the buckets
//! it touched: values are quantized to their bucket's lowest equivalent value
//! (the histogram's own arithmetic), which keeps every bucket count exact.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use driftwatch_lake::histogram::{self, HistogramError};
use hdrhistogram::Histogram;

/// Per-bucket counts keyed by the bucket's lowest equivalent value.
#[derive(Debug, Default)]
pub(crate) struct SparseRecorder {
    counts: HashMap<u64, u64, BuildHasherDefault<FoldHasher>>,
}

impl SparseRecorder {
    /// Count one value; `quantizer` supplies the bucket arithmetic only.
    #[inline]
    pub(crate) fn record(&mut self, quantizer: &Histogram<u64>, micros: u64) {
        *self.counts.entry(quantizer.lowest_equivalent(micros)).or_insert(0) += 1;
    }

    /// True when nothing was recorded (the lake stores an empty byte string).
    pub(crate) fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Approximate heap bytes: 16-byte entries plus one control byte per slot.
    pub(crate) fn approx_bytes(&self) -> usize {
        self.counts.capacity() * 17
    }

    /// Serialize through `scratch`, which is reset first. Empty recorders
    /// serialize to an empty Vec (the lake contract for "no values").
    pub(crate) fn serialize(&self, scratch: &mut Histogram<u64>) -> Result<Vec<u8>, HistogramError> {
        if self.counts.is_empty() {
            return Ok(Vec::new());
        }
        scratch.reset();
        for (&value, &count) in &self.counts {
            scratch.record_n(value, count)?;
        }
        histogram::serialize(scratch)
    }
}

/// Hasher for `u64` keys: a folded 128-bit multiply. Bucket values are
/// multiples of large powers of two, so the low bits alone would collide; the
/// fold mixes the high product bits back in. Far cheaper than SipHash, and the
/// keys are derived from our own bucket arithmetic, not chosen by producers
/// beyond the bucket count, so flooding is bounded.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let product = u128::from(self.0 ^ value) * u128::from(K);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_recording_serializes_like_a_direct_histogram() -> Result<(), HistogramError> {
        let mut direct = histogram::new_histogram()?;
        let mut scratch = histogram::new_histogram()?;
        let mut sparse = SparseRecorder::default();
        for i in 0..50_000u64 {
            let value = 1 + (i * 104_729) % 90_000_000;
            direct.record(value)?;
            sparse.record(&scratch, value);
        }
        // Beyond the initial range too: the quantizer's arithmetic is range-free.
        direct.record(histogram::INITIAL_HIGHEST_US * 3)?;
        sparse.record(&scratch, histogram::INITIAL_HIGHEST_US * 3);
        assert!(sparse.counts.len() < 20_000, "sparse keeps buckets, not values");
        let back = histogram::deserialize(&sparse.serialize(&mut scratch)?)?;
        assert_eq!(back.len(), direct.len());
        for q in [0.0, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(back.value_at_quantile(q), direct.value_at_quantile(q), "quantile {q}");
        }
        for value in [1, 999, 1_000_000, 80_000_000] {
            assert_eq!(back.count_at(value), direct.count_at(value), "count at {value}");
        }
        Ok(())
    }

    #[test]
    fn empty_recorder_serializes_to_nothing() -> Result<(), HistogramError> {
        let mut scratch = histogram::new_histogram()?;
        let sparse = SparseRecorder::default();
        assert!(sparse.is_empty());
        assert!(sparse.serialize(&mut scratch)?.is_empty());
        Ok(())
    }
}
