//! Store errors in a loop: logged once per streak (not once per retry), with a growing delay,
//! so an outage of the database produces one warning and one recovery line, not a flood.

use std::time::Duration;

use voidrunner_store::StoreError;

/// First retry delay of a failing loop.
const FIRST_DELAY: Duration = Duration::from_millis(50);
/// Longest retry delay of a failing loop.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Consecutive failures of one kind of store call in one loop.
#[derive(Debug)]
pub(crate) struct ErrorStreak {
    what: &'static str,
    failures: u32,
}

impl ErrorStreak {
    /// A streak for calls described by `what` (e.g. `"claim"`), used in log lines.
    pub fn new(what: &'static str) -> Self {
        Self { what, failures: 0 }
    }

    /// Records a failure; logs the first of a streak at warn, the rest at debug. Returns how
    /// long to wait before trying again.
    pub fn failed(&mut self, error: &StoreError) -> Duration {
        let what = self.what;
        if self.failures == 0 {
            tracing::warn!(worker.store_call = what, error = %error, "worker store call {what} failed, retrying with backoff: {error}");
        } else {
            tracing::debug!(worker.store_call = what, worker.failures = self.failures + 1, error = %error, "worker store call {what} still failing");
        }
        self.failures = self.failures.saturating_add(1);
        delay(self.failures)
    }

    /// Records a success; logs the end of a streak.
    pub fn recovered(&mut self) {
        if self.failures > 0 {
            let (what, n) = (self.what, self.failures);
            tracing::info!(
                worker.store_call = what,
                worker.failures = n,
                "worker store call {what} works again after {n} failures"
            );
            self.failures = 0;
        }
    }
}

/// `FIRST_DELAY * 2^(n-1)`, capped at `MAX_DELAY`.
fn delay(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    FIRST_DELAY.saturating_mul(1 << exp).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_and_is_capped_and_resets() {
        let mut s = ErrorStreak::new("claim");
        let e = StoreError::Conflict("down".into());
        assert_eq!(s.failed(&e), Duration::from_millis(50));
        assert_eq!(s.failed(&e), Duration::from_millis(100));
        for _ in 0..20 {
            s.failed(&e);
        }
        assert_eq!(s.failed(&e), MAX_DELAY);
        s.recovered();
        assert_eq!(s.failed(&e), Duration::from_millis(50));
    }
}
