//! One exponential backoff for every retry weir makes itself: a job after a transient failure,
//! a notification the outbox could not deliver, DynamoDB items it did not process.
//!
//! The n-th retry waits `base · 2^(n-1)`, capped at `cap`. With equal jitter (the default, for
//! retries many workers may make at once) it waits between half and all of that, so a burst of
//! failures does not come back as a burst. The random part is a parameter of
//! [`Backoff::delay_with`], so tests can pin it.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub jitter: bool,
}

impl Backoff {
    /// `base` doubling up to `cap`, with equal jitter.
    pub const fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff { base, cap: if cap.as_nanos() < base.as_nanos() { base } else { cap }, jitter: true }
    }

    /// The same without jitter: exactly `base · 2^(n-1)`, capped.
    pub const fn exact(self) -> Backoff {
        Backoff { jitter: false, ..self }
    }

    /// The wait before retry `attempt` (1 for the first), with `unit` in [0, 1) choosing where
    /// in the jitter's range it falls.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let full = self.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20)).min(self.cap);
        if self.jitter {
            full.mul_f64(0.5 + unit.clamp(0.0, 1.0) / 2.0)
        } else {
            full
        }
    }

    /// [`Backoff::delay_with`] with a random `unit`.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, random_unit())
    }
}

/// A number in [0, 1) that differs between calls and processes (the standard library's random
/// hash keys, mixed with a counter): enough for jitter, not for anything secret.
fn random_unit() -> f64 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let bits = std::collections::hash_map::RandomState::new().hash_one(CALLS.fetch_add(1, Ordering::Relaxed));
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_between_half_and_all() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        for n in 1..40 {
            let full = Duration::from_secs(1u64 << (n - 1).min(20)).min(Duration::from_secs(300));
            assert_eq!(b.delay_with(n, 0.0), full / 2, "{n}");
            assert_eq!(b.exact().delay_with(n, 0.7), full, "{n}");
            let d = b.delay(n);
            assert!(d >= full / 2 && d <= full, "{n}: {d:?}");
        }
        assert_eq!(b.delay_with(1, 0.999_999), Duration::from_secs(1).mul_f64(0.999_999_5));
    }

    #[test]
    fn random_units_stay_in_range_and_vary() {
        let units: Vec<f64> = (0..100).map(|_| random_unit()).collect();
        assert!(units.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(units.windows(2).any(|w| w[0] != w[1]));
    }
}
