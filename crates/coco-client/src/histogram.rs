//! A fixed-bucket, log-linear latency histogram (the HDR histogram idea, sized for one use):
//! values below 128 are exact, above that each power of two is split into 128 buckets, so
//! any reported percentile is within 1/128 (< 0.8 %) of the true value. Buckets are atomic
//! counters, so every benchmark task records into one shared histogram without locks, and
//! its memory is fixed (≈ 35 KiB) however many requests are recorded.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two, as a bit count (2^7 = 128).
const SUB_BUCKET_BITS: u32 = 7;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;
/// The largest magnitude (floor of log2) kept; larger values are clamped into it.
/// 2^40 µs is 12.7 days, longer than any benchmark's bounded duration.
const MAGNITUDE_MAX: u32 = 39;
/// Largest value recorded exactly into the top bucket range; larger values are clamped.
pub const HISTOGRAM_VALUE_MAX: u64 = (1 << (MAGNITUDE_MAX + 1)) - 1;
const BUCKETS: u64 =
    SUB_BUCKETS + (MAGNITUDE_MAX as u64 - SUB_BUCKET_BITS as u64 + 1) * SUB_BUCKETS;

const _: () = assert!(SUB_BUCKET_BITS <= MAGNITUDE_MAX);
const _: () = assert!(BUCKETS == 4352);

/// Concurrent latency histogram; values are in whatever unit the caller records
/// (the benchmark records microseconds).
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max: AtomicU64,
    sum: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    /// Records one value; values above [`HISTOGRAM_VALUE_MAX`] count in the top bucket
    /// (and still raise [`Self::max`] exactly).
    pub fn record(&self, value: u64) {
        let index = bucket_index(value.min(HISTOGRAM_VALUE_MAX));
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(value, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Number of values recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The largest value recorded, exactly (0 when empty).
    #[must_use]
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// The integer mean (0 when empty). The sum wraps only after 2^64 µs of total latency.
    #[must_use]
    pub fn mean(&self) -> u64 {
        self.sum.load(Ordering::Relaxed).checked_div(self.count()).unwrap_or(0)
    }

    /// The value at `permille` (500 = median, 990 = p99, 1000 = max): the highest value
    /// equivalent to the bucket holding that rank, capped by the true maximum. 0 when empty.
    ///
    /// # Panics
    /// If `permille` is above 1000 (a caller bug).
    #[must_use]
    pub fn value_at_permille(&self, permille: u32) -> u64 {
        assert!(permille <= 1000, "permille {permille} > 1000");
        let snapshot: Vec<u64> =
            self.buckets.iter().map(|bucket| bucket.load(Ordering::Relaxed)).collect();
        let count: u64 = snapshot.iter().sum();
        if count == 0 {
            return 0;
        }
        // rank = ceil(count × permille / 1000), at least 1; u128 so it cannot overflow.
        let rank = (u128::from(count) * u128::from(permille)).div_ceil(1000).max(1);
        let mut seen: u128 = 0;
        for (index, bucket_count) in snapshot.iter().enumerate() {
            seen += u128::from(*bucket_count);
            if seen >= rank {
                return bucket_high(index).min(self.max());
            }
        }
        self.max()
    }
}

fn bucket_index(value: u64) -> usize {
    assert!(value <= HISTOGRAM_VALUE_MAX, "value {value} above the histogram's range");
    let index = if value < SUB_BUCKETS {
        value
    } else {
        let magnitude = 63 - value.leading_zeros();
        let shift = magnitude - SUB_BUCKET_BITS;
        let top = value >> shift; // in [SUB_BUCKETS, 2 × SUB_BUCKETS)
        SUB_BUCKETS + u64::from(shift) * SUB_BUCKETS + (top - SUB_BUCKETS)
    };
    assert!(index < BUCKETS, "index {index} for value {value}");
    usize::try_from(index).expect("BUCKETS fits in usize")
}

/// The largest value that falls into bucket `index`.
fn bucket_high(index: usize) -> u64 {
    let index = u64::try_from(index).expect("bucket indexes are below BUCKETS");
    if index < SUB_BUCKETS {
        return index;
    }
    let shift = (index - SUB_BUCKETS) / SUB_BUCKETS;
    let top = (index - SUB_BUCKETS) % SUB_BUCKETS + SUB_BUCKETS;
    ((top + 1) << shift) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        let histogram = Histogram::new();
        for value in 1..=100 {
            histogram.record(value);
        }
        assert_eq!(histogram.count(), 100);
        assert_eq!(histogram.value_at_permille(500), 50);
        assert_eq!(histogram.value_at_permille(990), 99);
        assert_eq!(histogram.value_at_permille(1000), 100);
        assert_eq!(histogram.max(), 100);
        assert_eq!(histogram.mean(), 50);
    }

    #[test]
    fn large_values_are_within_one_percent() {
        let histogram = Histogram::new();
        for value in (1..=10_000_u64).map(|i| i * 1_000) {
            histogram.record(value);
        }
        for (permille, expected) in [(500_u32, 5_000_000_u64), (900, 9_000_000), (990, 9_900_000)] {
            let got = histogram.value_at_permille(permille);
            assert!(got >= expected, "p{permille}: {got} < {expected}");
            assert!(
                got <= expected + expected / 100,
                "p{permille}: {got} too far above {expected}"
            );
        }
        assert_eq!(histogram.value_at_permille(1000), 10_000_000);
    }

    #[test]
    fn every_value_lands_in_a_bucket_containing_it() {
        let mut value = 0_u64;
        while value <= HISTOGRAM_VALUE_MAX {
            let index = bucket_index(value);
            assert!(bucket_high(index) >= value, "value {value} above its bucket");
            if index > 0 {
                assert!(bucket_high(index - 1) < value, "value {value} below its bucket");
            }
            value = value * 3 / 2 + 1;
        }
        assert_eq!(bucket_high(bucket_index(HISTOGRAM_VALUE_MAX)), HISTOGRAM_VALUE_MAX);
    }

    #[test]
    fn empty_and_clamped() {
        let histogram = Histogram::new();
        assert_eq!(histogram.value_at_permille(990), 0);
        histogram.record(u64::MAX);
        assert_eq!(histogram.max(), u64::MAX);
        assert_eq!(histogram.value_at_permille(500), HISTOGRAM_VALUE_MAX);
    }
}
