//! Worker pool settings, with units in every name so a config file reads unambiguously.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use voidrunner_store::RetryPolicy;

/// How a [`crate::WorkerPool`] claims, leases, retries and drains.
///
/// Loaded from the `[worker]` section of the service configuration; every field has a default
/// so an empty section is valid, and unknown fields are rejected so typos do not go unnoticed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Executions this node runs at once (one slot each). Default: the number of cores.
    pub concurrency: usize,
    /// At most this many `running` executions per user across the whole cluster, so one user
    /// cannot starve the others; `None` or `0` = no quota (`0` because TOML has no null).
    /// Default: `Some(4)`.
    pub per_user_concurrency: Option<u32>,
    /// Lease length: a worker that stops heartbeating loses its executions after this long,
    /// and the reaper re-queues them. Default: 30.
    pub lease_secs: u64,
    /// How often a running execution's lease is extended. Must be well below the lease
    /// (see [`WorkerConfig::validate`]). Default: 10 000 (a third of the lease).
    pub heartbeat_interval_ms: u64,
    /// Fallback poll when no wake-up arrives (wake-ups are the fast path; this only bounds the
    /// delay for retries whose backoff ran out and for lost notifications). Default: 1 000.
    pub poll_interval_ms: u64,
    /// How often this node looks for expired leases. Default: 1 000.
    pub reaper_interval_ms: u64,
    /// Backoff of infrastructure failures.
    pub retry: RetrySettings,
    /// On shutdown, how long running executions may still finish before they are killed and
    /// given back to the queue. Default: 30.
    pub drain_grace_secs: u64,
    /// Environment variables whose name ends with one of these are secrets: their values are
    /// replaced by `***` in all stored and streamed output. Default: `_SECRET`, `_TOKEN`,
    /// `_PASSWORD`, `_KEY`.
    pub secret_env_suffixes: Vec<String>,
    /// Further environment variable names whose values are secrets. Default: none.
    pub secret_env_names: Vec<String>,
}

/// Retry backoff after an infrastructure failure: `min(max, base * 2^(attempt-1))`, a
/// `jitter` fraction of it randomised so that retries of a burst spread out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Delay after the first failure. Default: 500.
    pub base_ms: u64,
    /// Upper bound of the delay. Default: 60 000.
    pub max_ms: u64,
    /// Randomised fraction of the delay, 0.0–1.0. Default: 0.5.
    pub jitter: f64,
}

/// A setting that would make the pool misbehave.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker.{field}: {message}")]
pub struct ConfigError {
    /// Field name as written in the config file.
    pub field: &'static str,
    /// Why it is rejected.
    pub message: String,
}

impl Default for RetrySettings {
    fn default() -> Self {
        let p = RetryPolicy::default();
        Self {
            base_ms: duration_ms(p.base),
            max_ms: duration_ms(p.max),
            jitter: p.jitter,
        }
    }
}

impl RetrySettings {
    /// The store's policy type, used with [`voidrunner_store::backoff`].
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(self.base_ms),
            max: Duration::from_millis(self.max_ms),
            jitter: self.jitter,
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            per_user_concurrency: Some(4),
            lease_secs: 30,
            heartbeat_interval_ms: 10_000,
            poll_interval_ms: 1_000,
            reaper_interval_ms: 1_000,
            retry: RetrySettings::default(),
            drain_grace_secs: 30,
            secret_env_suffixes: ["_SECRET", "_TOKEN", "_PASSWORD", "_KEY"]
                .map(String::from)
                .to_vec(),
            secret_env_names: Vec::new(),
        }
    }
}

impl WorkerConfig {
    /// Whether the environment variable `name` holds a secret (see
    /// [`WorkerConfig::secret_env_suffixes`]).
    pub fn is_secret_env(&self, name: &str) -> bool {
        self.secret_env_names.iter().any(|n| n == name)
            || self
                .secret_env_suffixes
                .iter()
                .any(|s| !s.is_empty() && name.ends_with(s.as_str()))
    }

    /// Checks the settings fit together; the binary calls this when it loads its config.
    /// [`crate::WorkerPool::start`] does not refuse an invalid config (tests deliberately
    /// stall heartbeats), it logs a warning.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, message: &str| {
            Err(ConfigError {
                field,
                message: message.to_owned(),
            })
        };
        if self.lease_secs == 0 {
            return err("lease_secs", "must be at least 1");
        }
        if self.heartbeat_interval_ms == 0 {
            return err("heartbeat_interval_ms", "must be at least 1");
        }
        // Two heartbeats must fit in a lease, so one slow or failed heartbeat does not lose it.
        if self.heartbeat_interval_ms.saturating_mul(2) > self.lease_secs.saturating_mul(1000) {
            return err(
                "heartbeat_interval_ms",
                "must be at most half of lease_secs (a third is recommended)",
            );
        }
        if self.poll_interval_ms == 0 {
            return err("poll_interval_ms", "must be at least 1");
        }
        if self.reaper_interval_ms == 0 {
            return err("reaper_interval_ms", "must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.retry.jitter) {
            return err("retry.jitter", "must be between 0.0 and 1.0");
        }
        if self.retry.base_ms == 0 || self.retry.max_ms < self.retry.base_ms {
            return err("retry", "need 0 < base_ms <= max_ms");
        }
        Ok(())
    }

    /// The per-user quota to claim with (`0` means none).
    pub fn per_user_limit(&self) -> Option<u32> {
        self.per_user_concurrency.filter(|n| *n > 0)
    }

    /// Lease length.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }

    /// Heartbeat period (at least 1 ms).
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms.max(1))
    }

    /// Fallback poll period (at least 1 ms).
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(1))
    }

    /// Reaper period (at least 1 ms).
    pub fn reaper_interval(&self) -> Duration {
        Duration::from_millis(self.reaper_interval_ms.max(1))
    }

    /// Drain grace period.
    pub fn drain_grace(&self) -> Duration {
        Duration::from_secs(self.drain_grace_secs)
    }
}

/// Number of cores, or 1 when it cannot be told.
fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_heartbeat_is_a_third_of_the_lease() {
        let c = WorkerConfig::default();
        c.validate().expect("defaults valid");
        assert!(c.concurrency >= 1);
        assert_eq!(c.heartbeat_interval_ms * 3, c.lease_secs * 1000);
        assert_eq!(c.retry.policy(), RetryPolicy::default());
    }

    #[test]
    fn rejects_heartbeat_close_to_the_lease() {
        let c = WorkerConfig {
            lease_secs: 10,
            heartbeat_interval_ms: 6_000,
            ..WorkerConfig::default()
        };
        assert_eq!(
            c.validate().map_err(|e| e.field),
            Err("heartbeat_interval_ms")
        );
    }

    #[test]
    fn partial_config_takes_defaults_and_typos_are_rejected() {
        let c: WorkerConfig = serde_json::from_str(
            r#"{"concurrency": 3, "per_user_concurrency": null, "retry": {"base_ms": 10}}"#,
        )
        .expect("valid");
        assert_eq!(c.concurrency, 3);
        assert_eq!(c.per_user_concurrency, None);
        assert_eq!(c.retry.base_ms, 10);
        assert_eq!(c.retry.max_ms, RetrySettings::default().max_ms);
        assert_eq!(c.lease_secs, 30);
        let typo = serde_json::from_str::<WorkerConfig>(r#"{"lease_sec": 3}"#);
        assert!(typo.is_err_and(|e| e.to_string().contains("lease_sec")));
    }

    #[test]
    fn rejects_bad_jitter_and_zero_quota_means_none() {
        let mut c = WorkerConfig::default();
        c.retry.jitter = 1.5;
        assert_eq!(c.validate().map_err(|e| e.field), Err("retry.jitter"));
        let c = WorkerConfig {
            per_user_concurrency: Some(0),
            ..WorkerConfig::default()
        };
        c.validate().expect("0 = no quota");
        assert_eq!(c.per_user_limit(), None);
        assert_eq!(WorkerConfig::default().per_user_limit(), Some(4));
    }
}
