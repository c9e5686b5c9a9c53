//! Latency histogram with bounded memory: log-linear buckets (64 per power
//! of two, so any value is reported within 1.6 %), mergeable across tasks.

pub const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) as usize) * SUB as usize + sub as usize
}

/// Smallest value that falls in bucket `i`.
fn lower_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let exp = i / SUB + u64::from(SUB_BITS) - 1;
    let sub = i % SUB;
    (1u64 << exp) | (sub << (exp - u64::from(SUB_BITS)))
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            max: 0,
        }
    }

    pub fn record(&mut self, v: u64) {
        if let Some(c) = self.counts.get_mut(index(v)) {
            *c += 1;
        }
        self.total += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }

    /// The value at quantile `q` (0..=1): the middle of its bucket, never
    /// above the largest value seen.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let lo = lower_bound(i);
                let hi = if i + 1 < BUCKETS {
                    lower_bound(i + 1)
                } else {
                    u64::MAX
                };
                return Some((lo + (hi - lo) / 2).min(self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_precise() {
        for i in 0..BUCKETS - 1 {
            assert_eq!(index(lower_bound(i)), i, "bucket {i}");
            assert_eq!(index(lower_bound(i + 1) - 1), i, "end of bucket {i}");
        }
        for v in [1u64, 63, 64, 65, 1000, 123_456, 9_999_999_999, u64::MAX / 3] {
            let i = index(v);
            let (lo, hi) = (lower_bound(i), lower_bound(i + 1));
            assert!(lo <= v && v < hi, "{v} in [{lo}, {hi})");
            assert!(
                (hi - lo) as f64 <= v as f64 / 60.0 + 1.0,
                "{v}: bucket too wide"
            );
        }
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5).unwrap() as f64;
        let p99 = h.quantile(0.99).unwrap() as f64;
        assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.02, "{p50}");
        assert!((p99 / 9_900_000.0 - 1.0).abs() < 0.02, "{p99}");
        assert_eq!(h.quantile(1.0), Some(10_000_000));
        let mut other = Histogram::new();
        other.record(20_000_000);
        h.merge(&other);
        assert_eq!(h.count(), 10_001);
        assert_eq!(h.max(), 20_000_000);
        assert_eq!(Histogram::new().quantile(0.5), None);
    }
}
