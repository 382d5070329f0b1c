//! Process wiring shared by `serve` and `worker`: resolve the server key, start the
//! dispatcher when enabled.

use std::path::Path;
use std::sync::Arc;

use voidrunner_store::Store;

use crate::config::WebhookConfig;
use crate::dispatcher::{Dispatcher, DispatcherHandle};
use crate::keyfile::{KEY_FILE, KeyFileError, load_or_create};
use crate::signing::{KeyError, WebhookKey};

/// Why webhooks could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `webhooks.signing_key` is too short.
    #[error("webhooks.signing_key: {0}")]
    ConfiguredKey(#[from] KeyError),
    /// The key file could not be read or created.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// `webhooks.max_attempts` is 0.
    #[error("webhooks.max_attempts: must be at least 1")]
    MaxAttempts,
}

/// The configured key (`webhooks.signing_key`), else `<data_dir>/webhook.key` (created on
/// first use).
pub fn resolve_key(config: &WebhookConfig, data_dir: &Path) -> Result<WebhookKey, StartError> {
    match config.signing_key.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => Ok(WebhookKey::new(k.as_bytes().to_vec())?),
        None => Ok(load_or_create(&data_dir.join(KEY_FILE))?),
    }
}

/// Resolves the key and, when `webhooks.enabled`, starts a dispatcher over `store`. The key
/// is returned either way: the API derives users' signing secrets from it.
pub fn start(
    config: &WebhookConfig,
    data_dir: &Path,
    store: Arc<dyn Store>,
    metrics: Option<voidrunner_metrics::Metrics>,
) -> Result<(WebhookKey, Option<DispatcherHandle>), StartError> {
    if config.max_attempts == 0 {
        return Err(StartError::MaxAttempts);
    }
    let key = resolve_key(config, data_dir)?;
    let handle = if config.enabled {
        Some(Dispatcher::new(store, key.clone(), config.clone(), metrics).start())
    } else {
        tracing::info!("webhook dispatcher off (webhooks.enabled = false)");
        None
    };
    Ok((key, handle))
}
