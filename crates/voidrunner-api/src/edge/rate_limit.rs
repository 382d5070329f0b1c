//! Keyed token buckets (per IP, per user). In memory, per process: with several API nodes
//! each node enforces its own share, which is the usual trade-off for a first line of defence.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use crate::settings::RateLimitSettings;

/// Buckets beyond this many trigger a sweep of the ones that are full again (then the
/// threshold doubles if most buckets were still busy, so sweeps stay amortised O(1)).
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct State<K> {
    buckets: HashMap<K, Bucket>,
    sweep_above: usize,
}

/// One token bucket per key.
#[derive(Debug)]
pub(crate) struct KeyedLimiter<K> {
    rate_per_sec: f64,
    burst: f64,
    state: Mutex<State<K>>,
}

impl<K: Hash + Eq + Copy> KeyedLimiter<K> {
    /// `Ok(None)` when disabled; `Err` for a nonsensical configuration.
    pub(crate) fn from_settings(s: RateLimitSettings) -> Result<Option<Self>, ()> {
        if !s.enabled {
            return Ok(None);
        }
        if !(s.requests_per_sec.is_finite() && s.requests_per_sec > 0.0) || s.burst == 0 {
            return Err(());
        }
        Ok(Some(Self {
            rate_per_sec: s.requests_per_sec,
            burst: f64::from(s.burst),
            state: Mutex::new(State {
                buckets: HashMap::new(),
                sweep_above: SWEEP_ABOVE,
            }),
        }))
    }

    /// Takes one token for `key`, or returns how many whole seconds until one is available.
    pub(crate) fn check(&self, key: K) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    pub(crate) fn check_at(&self, key: K, now: Instant) -> Result<(), u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.buckets.len() > state.sweep_above {
            let (rate, burst) = (self.rate_per_sec, self.burst);
            state.buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * rate < burst
            });
            state.sweep_above = SWEEP_ABOVE.max(state.buckets.len() * 2);
        }
        let bucket = state.buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate_per_sec).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate_per_sec;
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "wait is positive and small"
            )]
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_refill() {
        let l = KeyedLimiter::from_settings(RateLimitSettings {
            enabled: true,
            requests_per_sec: 1.0,
            burst: 2,
        })
        .expect("valid")
        .expect("enabled");
        let t0 = Instant::now();
        assert!(l.check_at(1u8, t0).is_ok());
        assert!(l.check_at(1u8, t0).is_ok());
        assert_eq!(l.check_at(1u8, t0), Err(1));
        assert!(l.check_at(2u8, t0).is_ok(), "keys are independent");
        assert!(l.check_at(1u8, t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn idle_buckets_are_swept() {
        let l = KeyedLimiter::from_settings(RateLimitSettings {
            enabled: true,
            requests_per_sec: 1000.0,
            burst: 1,
        })
        .expect("valid")
        .expect("enabled");
        let t0 = Instant::now();
        for k in 0..=SWEEP_ABOVE as u32 {
            assert!(l.check_at(k, t0).is_ok());
        }
        assert!(l.check_at(u32::MAX, t0 + Duration::from_secs(1)).is_ok());
        let state = l.state.lock().expect("lock");
        assert_eq!(state.buckets.len(), 1, "refilled buckets were dropped");
    }

    #[test]
    fn bad_settings_are_rejected() {
        let s = RateLimitSettings {
            enabled: true,
            requests_per_sec: 0.0,
            burst: 1,
        };
        assert!(KeyedLimiter::<u8>::from_settings(s).is_err());
    }
}
