//! Bounded-memory distinct values: `unique = true` columns and the `summary.unique` counts.
//!
//! Values are remembered as 64-bit fingerprints (a fixed-key SipHash: deterministic across
//! runs), so a value of any length costs 16 bytes with its first line. The chance that two
//! different values share a fingerprint is about n²/2^65 (under 10^-8 at half a million values).
//! A set stops growing at its cap: a [`UniqueColumn`] then still catches repeats of the values it
//! holds but cannot see repeats of newer ones, and says so; a [`DistinctCounter`] switches to its
//! HyperLogLog estimate (16 KiB, about 0.8 % standard error), which it keeps from the first value.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};

use rustc_hash::FxBuildHasher;

type FxHashSet<T> = std::collections::HashSet<T, FxBuildHasher>;

/// The fingerprint of a value.
#[inline]
pub(crate) fn fingerprint(value: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Fingerprints are already uniform: hash them as they are.
#[derive(Default)]
pub(crate) struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 fingerprints are hashed")
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Fingerprints<V> = HashMap<u64, V, BuildHasherDefault<Identity>>;

/// The values a `unique = true` column has had, with the line each first appeared on.
pub(crate) struct UniqueColumn {
    seen: Fingerprints<u64>,
    cap: usize,
    /// Line of the first value that could not be remembered.
    pub full_since: Option<u64>,
}

impl UniqueColumn {
    pub fn new(cap: usize) -> UniqueColumn {
        UniqueColumn { seen: Fingerprints::default(), cap, full_since: None }
    }

    /// The line an equal value was first seen on, if any.
    #[inline]
    pub fn first_line(&self, fp: u64) -> Option<u64> {
        self.seen.get(&fp).copied()
    }

    /// Remembers a value of a valid row (if there is room).
    #[inline]
    pub fn insert(&mut self, fp: u64, line: u64) {
        if self.seen.len() < self.cap {
            self.seen.insert(fp, line);
        } else if self.full_since.is_none() {
            self.full_since = Some(line);
        }
    }
}

/// Distinct values of a summary field: exact up to a cap, then a HyperLogLog estimate.
pub(crate) struct DistinctCounter {
    exact: Option<FxHashSet<u64>>,
    cap: usize,
    hll: Box<[u8; HLL_M]>,
}

const HLL_P: u32 = 14;
const HLL_M: usize = 1 << HLL_P;

impl DistinctCounter {
    pub fn new(cap: usize) -> DistinctCounter {
        DistinctCounter { exact: Some(FxHashSet::with_hasher(FxBuildHasher)), cap, hll: Box::new([0; HLL_M]) }
    }

    #[inline]
    pub fn add(&mut self, value: &[u8]) {
        let fp = fingerprint(value);
        let idx = (fp >> (64 - HLL_P)) as usize;
        let rank = ((fp << HLL_P) | (1 << (HLL_P - 1))).leading_zeros() as u8 + 1;
        if rank > self.hll[idx] {
            self.hll[idx] = rank;
        }
        if let Some(set) = &mut self.exact {
            set.insert(fp);
            if set.len() > self.cap {
                self.exact = None;
            }
        }
    }

    /// The count and whether it is exact.
    pub fn count(&self) -> (u64, bool) {
        if let Some(set) = &self.exact {
            return (set.len() as u64, true);
        }
        let m = HLL_M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self.hll.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
        let zeros = self.hll.iter().filter(|&&r| r == 0).count();
        let raw = alpha * m * m / sum;
        let estimate = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
        (estimate.round() as u64, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_column_remembers_first_lines_up_to_its_cap() {
        let mut u = UniqueColumn::new(2);
        for (line, v) in [(2, "a"), (3, "b"), (4, "c")] {
            assert_eq!(u.first_line(fingerprint(v.as_bytes())), None);
            u.insert(fingerprint(v.as_bytes()), line);
        }
        assert_eq!(u.first_line(fingerprint(b"a")), Some(2));
        assert_eq!(u.first_line(fingerprint(b"c")), None);
        assert_eq!(u.full_since, Some(4));
    }

    #[test]
    fn distinct_counts_are_exact_then_estimated_within_two_percent() {
        let mut d = DistinctCounter::new(1000);
        for i in 0..1000 {
            d.add(format!("user-{i}").as_bytes());
            d.add(format!("user-{i}").as_bytes());
        }
        assert_eq!(d.count(), (1000, true));
        for n in [5_000u64, 200_000] {
            let mut d = DistinctCounter::new(1000);
            for i in 0..n {
                d.add(format!("user-{i}").as_bytes());
            }
            let (c, exact) = d.count();
            assert!(!exact);
            let err = (c as f64 - n as f64).abs() / n as f64;
            assert!(err < 0.02, "{n}: {c} ({err})");
        }
    }
}
