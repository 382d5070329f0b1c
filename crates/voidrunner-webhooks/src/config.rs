//! `[webhooks]` settings.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Webhook delivery settings (the `[webhooks]` section of the service configuration).
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Run a dispatcher in this process (`serve` and `worker`). Deliveries are still recorded
    /// when off; another process (or a restart with it on) sends them.
    pub enabled: bool,
    /// Allow loopback, private and other special-purpose targets (tests, closed networks).
    pub allow_private: bool,
    /// Attempts before a delivery fails for good (≥ 1).
    pub max_attempts: u32,
    /// Whole-request timeout of one attempt (connect + send + answer head and body).
    pub timeout_secs: u64,
    /// Delay before the second attempt; doubles each attempt, with jitter.
    pub initial_backoff_ms: u64,
    /// Longest delay between attempts.
    pub max_backoff_secs: u64,
    /// How often to look for due deliveries when no execution finished in this process.
    pub poll_interval_ms: u64,
    /// Deliveries sent at once by one process.
    pub concurrency: u32,
    /// Server key the per-user signing secrets are derived from (≥ 32 bytes). Empty: the
    /// file `<data_dir>/webhook.key`, created (mode 0600) at first start. Every node of a
    /// deployment must use the same key.
    pub signing_key: Option<String>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("enabled", &self.enabled)
            .field("allow_private", &self.allow_private)
            .field("max_attempts", &self.max_attempts)
            .field("timeout_secs", &self.timeout_secs)
            .field("initial_backoff_ms", &self.initial_backoff_ms)
            .field("max_backoff_secs", &self.max_backoff_secs)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("concurrency", &self.concurrency)
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_private: false,
            max_attempts: 8,
            timeout_secs: 10,
            initial_backoff_ms: 1_000,
            max_backoff_secs: 3_600,
            poll_interval_ms: 1_000,
            concurrency: 4,
            signing_key: None,
        }
    }
}

impl WebhookConfig {
    /// One attempt's timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    /// How long a claimed delivery stays invisible to other dispatchers: the request timeout
    /// plus resolving and recording, with room to spare.
    pub fn lease(&self) -> Duration {
        self.timeout() * 2 + Duration::from_secs(10)
    }

    /// The retry policy for [`voidrunner_store::backoff`].
    pub fn retry_policy(&self) -> voidrunner_store::RetryPolicy {
        voidrunner_store::RetryPolicy {
            base: Duration::from_millis(self.initial_backoff_ms.max(1)),
            max: Duration::from_secs(self.max_backoff_secs.max(1)),
            jitter: 0.5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_redacted_and_defaults_are_sane() {
        let c = WebhookConfig {
            signing_key: Some("super-secret".into()),
            ..WebhookConfig::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("super-secret"), "{s}");
        assert!(c.lease() > c.timeout());
        let parsed: WebhookConfig = toml_like(r#"{"allow_private": true, "max_attempts": 3}"#);
        assert!(parsed.allow_private && parsed.enabled);
        assert_eq!(parsed.max_attempts, 3);
    }

    fn toml_like(json: &str) -> WebhookConfig {
        serde_json::from_str(json).expect("parse")
    }
}
