//! Shared state of every handler: the store, the settings and the keys. Cloned per request
//! (it is one `Arc`), never global.

use std::fmt;
use std::sync::Arc;

use voidrunner_store::Store;

use crate::auth::password::PasswordHasher;
use crate::auth::tokens::JwtKeys;
use crate::edge::rate_limit::KeyedLimiter;
use crate::settings::ApiSettings;

/// The HMAC key that signs access tokens. `Debug` never prints it.
#[derive(Clone)]
pub struct JwtSecret(Vec<u8>);

impl JwtSecret {
    /// Wraps key bytes (at least 32 bytes of randomness are expected).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The key bytes, for the signer only.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret([redacted])")
    }
}

impl From<Vec<u8>> for JwtSecret {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

/// Settings the API cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The JWT secret is shorter than 32 bytes.
    #[error("the JWT secret must be at least 32 bytes, got {len}")]
    WeakJwtSecret {
        /// Length given.
        len: usize,
    },
    /// argon2 rejected the cost parameters.
    #[error("invalid password hashing parameters: {0}")]
    PasswordHashing(String),
    /// A CORS origin is not a valid header value.
    #[error("invalid CORS origin {origin:?}")]
    CorsOrigin {
        /// The origin as configured.
        origin: String,
    },
    /// The default limits are outside the configured maxima.
    #[error("default limits exceed the maxima: {0}")]
    Limits(String),
    /// The OpenAPI document could not be serialized (a bug).
    #[error("cannot serialize the OpenAPI document: {0}")]
    OpenApi(String),
    /// A setting is outside its allowed range.
    #[error("invalid setting {name}: {message}")]
    Setting {
        /// Which setting.
        name: &'static str,
        /// What is wrong.
        message: &'static str,
    },
    /// A rate limit has a non-positive rate or a zero burst.
    #[error("invalid rate limit {name}: requests_per_sec must be > 0 and burst >= 1")]
    RateLimit {
        /// Which limit.
        name: &'static str,
    },
}

/// Everything handlers need, cheap to clone.
#[derive(Clone, Debug)]
pub struct ApiContext {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) settings: ApiSettings,
    pub(crate) jwt: JwtKeys,
    pub(crate) passwords: PasswordHasher,
    pub(crate) ip_limiter: Option<KeyedLimiter<std::net::IpAddr>>,
    pub(crate) user_limiter: Option<KeyedLimiter<voidrunner_domain::UserId>>,
    /// The serialized OpenAPI document, built once.
    pub(crate) openapi_json: axum::body::Bytes,
    /// Prometheus registry (shared with the worker pool by [`ApiContext::with_metrics`]).
    pub(crate) metrics: voidrunner_metrics::Metrics,
    /// Server key the users' webhook signing secrets derive from (random unless
    /// [`ApiContext::with_webhook_key`] gives the one the dispatchers use).
    pub(crate) webhook_key: voidrunner_webhooks::WebhookKey,
    /// Seals task secrets (the key workers open them with); `None`: secrets are refused.
    pub(crate) secret_box: Option<Arc<voidrunner_mask::SecretBox>>,
    /// Reads event logs from the database or the log archive ([`ApiContext::with_log_reader`]).
    pub(crate) log_reader: voidrunner_logarchive::LogReader,
    /// Wakes this node's commit-status reconciler after a hook recorded statuses.
    pub(crate) status_wake: tokio::sync::Notify,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiContext")
            .field("store", &self.store.backend_name())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ApiContext {
    /// Builds the context; fails on settings the API cannot run with. Computes one dummy
    /// password hash up front (used to make logins for unknown emails cost the same).
    pub fn new(
        store: Arc<dyn Store>,
        settings: ApiSettings,
        jwt_secret: JwtSecret,
    ) -> Result<Self, ContextError> {
        if jwt_secret.expose().len() < 32 {
            return Err(ContextError::WeakJwtSecret {
                len: jwt_secret.expose().len(),
            });
        }
        crate::edge::cors::check_origins(&settings.cors_allowed_origins)?;
        if settings.execution_max_attempts == 0 {
            return Err(ContextError::Setting {
                name: "execution_max_attempts",
                message: "must be at least 1",
            });
        }
        if settings.max_wait_secs == 0 {
            return Err(ContextError::Setting {
                name: "max_wait_secs",
                message: "must be at least 1",
            });
        }
        settings
            .limits
            .resolve(&voidrunner_domain::PartialLimits::default())
            .map_err(|e| ContextError::Limits(e.to_string()))?;
        let jwt = JwtKeys::new(&jwt_secret, &settings);
        let passwords = PasswordHasher::new(settings.password_hashing)
            .map_err(|e| ContextError::PasswordHashing(e.to_string()))?;
        let ip_limiter = KeyedLimiter::from_settings(settings.rate_limit_per_ip).map_err(|()| {
            ContextError::RateLimit {
                name: "rate_limit_per_ip",
            }
        })?;
        let user_limiter =
            KeyedLimiter::from_settings(settings.rate_limit_per_user).map_err(|()| {
                ContextError::RateLimit {
                    name: "rate_limit_per_user",
                }
            })?;
        let openapi_json = crate::routes::openapi()
            .to_json()
            .map(axum::body::Bytes::from)
            .map_err(|e| ContextError::OpenApi(e.to_string()))?;
        let log_reader = voidrunner_logarchive::LogReader::new(Arc::clone(&store), None);
        Ok(Self {
            inner: Arc::new(Inner {
                log_reader,
                openapi_json,
                store,
                settings,
                jwt,
                passwords,
                ip_limiter,
                user_limiter,
                metrics: voidrunner_metrics::Metrics::new(),
                webhook_key: voidrunner_webhooks::WebhookKey::random(),
                secret_box: None,
                status_wake: tokio::sync::Notify::new(),
            }),
        })
    }

    /// Derives users' webhook signing secrets from `key` (the key the webhook dispatchers
    /// sign with). Call it on the context [`ApiContext::new`] returned, before cloning it.
    pub fn with_webhook_key(mut self, key: voidrunner_webhooks::WebhookKey) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.webhook_key = key,
            None => tracing::warn!("ApiContext::with_webhook_key on a shared context: ignored"),
        }
        self
    }

    /// The server webhook key.
    pub(crate) fn webhook_key(&self) -> &voidrunner_webhooks::WebhookKey {
        &self.inner.webhook_key
    }

    /// Records into `metrics` (the registry the worker pool of this process reports to)
    /// instead of the context's own. Call it on the context [`ApiContext::new`] returned,
    /// before cloning it; on an already shared context it changes nothing and warns.
    pub fn with_metrics(mut self, metrics: voidrunner_metrics::Metrics) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.metrics = metrics,
            None => tracing::warn!("ApiContext::with_metrics on a shared context: ignored"),
        }
        self
    }

    /// Seals task secrets with `secret_box` (the key of `<data_dir>/secrets.key`, the same the
    /// workers open them with). Without it, requests carrying secrets answer 503. Call it
    /// on the context [`ApiContext::new`] returned, before cloning it.
    pub fn with_secret_box(mut self, secret_box: Arc<voidrunner_mask::SecretBox>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.secret_box = Some(secret_box),
            None => tracing::warn!("ApiContext::with_secret_box on a shared context: ignored"),
        }
        self
    }

    /// Wakes the commit-status reconciler (`repositories::reconcile`).
    pub(crate) fn status_wake(&self) -> &tokio::sync::Notify {
        &self.inner.status_wake
    }

    /// The key sealing task secrets, if configured.
    pub(crate) fn secret_box(&self) -> Option<&voidrunner_mask::SecretBox> {
        self.inner.secret_box.as_deref()
    }

    /// Reads logs through `reader` (one that knows the object store of archived logs)
    /// instead of the default database-only reader. Like [`ApiContext::with_metrics`], call it
    /// before cloning the context.
    pub fn with_log_reader(mut self, reader: voidrunner_logarchive::LogReader) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.log_reader = reader,
            None => tracing::warn!("ApiContext::with_log_reader on a shared context: ignored"),
        }
        self
    }

    /// The log reader (database or archive).
    pub(crate) fn log_reader(&self) -> &voidrunner_logarchive::LogReader {
        &self.inner.log_reader
    }

    /// The Prometheus registry requests are recorded in.
    pub fn metrics(&self) -> &voidrunner_metrics::Metrics {
        &self.inner.metrics
    }

    /// The store.
    pub(crate) fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// The settings.
    pub fn settings(&self) -> &ApiSettings {
        &self.inner.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted() {
        let s = JwtSecret::new(b"super-secret-bytes".to_vec());
        assert_eq!(format!("{s:?}"), "JwtSecret([redacted])");
    }
}
