//! Failed sign-ins, counted per client address: a few at once, then one every
//! [`REFILL`] — a token bucket. A client with none left is answered 429 (with `Retry-After`),
//! whatever token it sends, until one has come back; sign-ins that succeed cost nothing.
//!
//! Only the sign-in (`POST /session`, `/?token=`) is limited. Bearer tokens are not: weir's are
//! 256-bit random values that no rate of guessing reaches, and a limit there would let anyone on
//! the same address (loopback is one address) lock scripts out of the API.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed sign-ins a client may make at once.
pub const BURST: u32 = 5;
/// How often one more comes back.
pub const REFILL: Duration = Duration::from_secs(12);
/// Clients remembered; beyond this, those whose bucket is full again are forgotten first.
const MAX_CLIENTS: usize = 10_000;

#[derive(Debug, Default)]
pub struct SignInLimiter {
    clients: Mutex<HashMap<Option<IpAddr>, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures still allowed at `at`.
    left: u32,
    at: Instant,
}

impl Bucket {
    /// The bucket as of `now`, with what has come back since.
    fn refilled(self, now: Instant) -> Bucket {
        let back = (now.saturating_duration_since(self.at).as_secs_f64() / REFILL.as_secs_f64()) as u32;
        if back == 0 {
            return self;
        }
        let left = (self.left + back).min(BURST);
        // Keep the remainder of a partly elapsed refill interval.
        let at = if left == BURST { now } else { self.at + REFILL * back };
        Bucket { left, at }
    }
}

impl SignInLimiter {
    /// `Err(retry_after)` if `client` has no failed sign-ins left.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        self.check_at(client, Instant::now())
    }

    /// Counts a failed sign-in of `client`.
    pub fn failed(&self, client: Option<IpAddr>) {
        self.failed_at(client, Instant::now())
    }

    fn check_at(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        match clients.get(&client).map(|b| b.refilled(now)) {
            Some(b) if b.left == 0 => {
                Err((b.at + REFILL).saturating_duration_since(now).max(Duration::from_secs(1)))
            }
            _ => Ok(()),
        }
    }

    fn failed_at(&self, client: Option<IpAddr>, now: Instant) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            clients.retain(|_, b| b.refilled(now).left < BURST);
            if clients.len() >= MAX_CLIENTS {
                clients.clear();
            }
        }
        let bucket = clients.get(&client).map_or(Bucket { left: BURST, at: now }, |b| b.refilled(now));
        clients.insert(client, Bucket { left: bucket.left.saturating_sub(1), at: bucket.at });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval_per_client() {
        let limiter = SignInLimiter::default();
        let (a, b) = (Some("127.0.0.1".parse().unwrap()), Some("10.0.0.1".parse().unwrap()));
        let t0 = Instant::now();
        for _ in 0..BURST {
            assert!(limiter.check_at(a, t0).is_ok());
            limiter.failed_at(a, t0);
        }
        let wait = limiter.check_at(a, t0).unwrap_err();
        assert!(wait <= REFILL && wait >= Duration::from_secs(1), "{wait:?}");
        assert!(limiter.check_at(b, t0).is_ok(), "another client is not limited");
        // One comes back after the interval, and is used up by the next failure.
        let t1 = t0 + REFILL;
        assert!(limiter.check_at(a, t1).is_ok());
        limiter.failed_at(a, t1);
        assert!(limiter.check_at(a, t1).is_err());
        // All of them after long enough.
        let t2 = t1 + REFILL * BURST;
        for _ in 0..BURST {
            assert!(limiter.check_at(a, t2).is_ok());
            limiter.failed_at(a, t2);
        }
        assert!(limiter.check_at(a, t2).is_err());
    }
}
