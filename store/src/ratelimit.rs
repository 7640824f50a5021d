//! Token buckets for carbon's `MAX_UPDATES_PER_SECOND` and `MAX_CREATES_PER_MINUTE`.
//!
//! Same arithmetic as carbon's `TokenBucket`: a full bucket of `capacity` tokens refilled at
//! `rate` tokens per second. An infinite capacity (carbon's `inf`) means no
//! limit. Where carbon drops a metric's points when no create token is left (carbon#262), the
//! persister puts them back in the cache and tries again when a token is due.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A thread-safe token bucket.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    /// `None` when unlimited.
    state: Option<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    capacity: f64,
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket of `capacity` tokens refilled at `rate` per second; unlimited when either is
    /// infinite, NaN, or not positive.
    pub(crate) fn new(capacity: f64, rate: f64) -> TokenBucket {
        let limited = capacity.is_finite() && rate.is_finite() && capacity > 0.0 && rate > 0.0;
        TokenBucket {
            state: limited.then(|| {
                Mutex::new(State { capacity, rate, tokens: capacity, last: Instant::now() })
            }),
        }
    }

    /// carbon's updates bucket: `MAX_UPDATES_PER_SECOND` of capacity and rate.
    pub(crate) fn per_second(limit: f64) -> TokenBucket {
        TokenBucket::new(limit, limit)
    }

    /// carbon's creates bucket: `MAX_CREATES_PER_MINUTE` of capacity, refilled over a minute.
    pub(crate) fn per_minute(limit: f64) -> TokenBucket {
        TokenBucket::new(limit, limit / 60.0)
    }

    /// Whether there is no limit.
    #[cfg(test)]
    pub(crate) fn is_unlimited(&self) -> bool {
        self.state.is_none()
    }

    /// Takes one token if there is one; otherwise returns how long until one is due.
    pub(crate) fn try_take(&self) -> Result<(), Duration> {
        let Some(state) = &self.state else { return Ok(()) };
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * s.rate).min(s.capacity);
        s.last = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - s.tokens) / s.rate))
        }
    }

    /// Takes one token, sleeping until one is due (carbon's blocking `drain`), unless
    /// `give_up` says to stop waiting (shutdown); returns whether a token was taken.
    pub(crate) fn take_blocking(&self, give_up: impl Fn() -> bool) -> bool {
        loop {
            match self.try_take() {
                Ok(()) => return true,
                Err(wait) => {
                    if give_up() {
                        return false;
                    }
                    std::thread::sleep(wait.min(Duration::from_millis(100)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_buckets_never_refuse() {
        for b in [TokenBucket::per_second(f64::INFINITY), TokenBucket::per_minute(0.0)] {
            assert!(b.is_unlimited());
            for _ in 0..1000 {
                assert!(b.try_take().is_ok());
            }
        }
    }

    #[test]
    fn a_full_bucket_gives_its_capacity_then_says_when() {
        let b = TokenBucket::per_minute(3.0);
        for _ in 0..3 {
            assert!(b.try_take().is_ok());
        }
        let wait = b.try_take().unwrap_err();
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20), "{wait:?}");
    }
}
