//! The dispatcher task: claim due deliveries, send them, record each outcome once.
//!
//! Wake-ups follow "subscribe, then poll, then wait": the task subscribes to the store's
//! finished signal (a delivery is created in the transaction that finishes an execution),
//! claims what is due, and only when nothing was due waits for a signal, the earliest retry
//! it scheduled itself, or the polling interval (deliveries of other processes, expired
//! leases).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{broadcast, watch};
use voidrunner_api_types::{Audience, ExecutionResponse};
use voidrunner_store::{AttemptOutcome, Scope, Store, StoreResult, WebhookDelivery};

use crate::classify::{Disposition, classify_status};
use crate::config::WebhookConfig;
use crate::guard;
use crate::send::{SignedRequest, post};
use crate::signing::{WebhookKey, sign};

/// Sends webhook deliveries of one store.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    key: WebhookKey,
    config: WebhookConfig,
    metrics: Option<voidrunner_metrics::Metrics>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A running dispatcher task; [`DispatcherHandle::shutdown`] stops it between deliveries.
#[derive(Debug)]
pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DispatcherHandle {
    /// Stops claiming, lets in-flight attempts finish (each bounded by the timeout), and
    /// waits for the task. Unfinished claims are retried by any dispatcher after the lease.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "webhook dispatcher task ended abnormally: {e}");
        }
    }
}

/// What one attempt produced, for the metrics label and the store.
struct Attempted {
    label: &'static str,
    outcome: AttemptOutcome,
}

impl Dispatcher {
    /// A dispatcher over `store`, signing with secrets derived from `key`.
    pub fn new(
        store: Arc<dyn Store>,
        key: WebhookKey,
        config: WebhookConfig,
        metrics: Option<voidrunner_metrics::Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                key,
                config,
                metrics,
            }),
        }
    }

    /// Spawns the dispatcher loop.
    pub fn start(self) -> DispatcherHandle {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(self.run(stop_rx));
        DispatcherHandle { stop, task }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let c = &self.inner.config;
        tracing::info!(
            webhooks.allow_private = c.allow_private,
            webhooks.max_attempts = c.max_attempts,
            "webhook dispatcher started"
        );
        let mut finished = self.inner.store.queue_signals().subscribe_finished();
        let poll = Duration::from_millis(c.poll_interval_ms.max(10));
        let mut next_retry: Option<Instant> = None;
        let mut failing = false;
        while !*stop.borrow() {
            match self.run_once().await {
                Ok((n, retry)) => {
                    failing = false;
                    if let Some(r) = retry {
                        next_retry = Some(next_retry.map_or(r, |t| t.min(r)));
                    }
                    if n > 0 {
                        continue;
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "webhook dispatcher cannot claim deliveries: {e}");
                    }
                    failing = true;
                }
            }
            let now = Instant::now();
            let wait = match next_retry {
                Some(t) if t <= now => {
                    next_retry = None;
                    continue;
                }
                Some(t) => poll.min(t - now),
                None => poll,
            };
            tokio::select! {
                _ = stop.changed() => break,
                r = finished.recv() => {
                    if matches!(r, Err(broadcast::error::RecvError::Closed)) {
                        finished = self.inner.store.queue_signals().subscribe_finished();
                    }
                }
                () = tokio::time::sleep(wait) => {}
            }
            if next_retry.is_some_and(|t| t <= Instant::now()) {
                next_retry = None;
            }
        }
        tracing::info!("webhook dispatcher stopped");
    }

    /// Claims one batch of due deliveries and sends them concurrently. Returns how many were
    /// claimed and the earliest retry this batch scheduled.
    pub async fn run_once(&self) -> StoreResult<(usize, Option<Instant>)> {
        let c = &self.inner.config;
        let batch = self
            .inner
            .store
            .claim_webhook_deliveries(voidrunner_store::now(), c.lease(), c.concurrency.max(1))
            .await?;
        let n = batch.len();
        let retries = futures::future::join_all(batch.into_iter().map(|d| self.deliver(d))).await;
        Ok((n, retries.into_iter().flatten().min()))
    }

    /// One attempt of one claimed delivery, recorded under its attempt number. Returns the
    /// time of the retry it scheduled, if any.
    async fn deliver(&self, d: WebhookDelivery) -> Option<Instant> {
        let id = d.execution_id;
        let attempt = d.attempts;
        let Attempted { label, outcome } = self.attempt(&d).await;
        let retry_in = match &outcome {
            AttemptOutcome::Retry { retry_at, .. } => (*retry_at - voidrunner_store::now())
                .to_std()
                .ok()
                .map(|d| Instant::now() + d),
            _ => None,
        };
        match &outcome {
            AttemptOutcome::Delivered { status } => tracing::info!(
                execution.id = %id, webhook.attempt = attempt, http.status = status,
                "webhook for execution {id} delivered (attempt {attempt}, status {status})"
            ),
            AttemptOutcome::Retry { error, .. } => tracing::info!(
                execution.id = %id, webhook.attempt = attempt, error = %error,
                "webhook for execution {id} not delivered, will retry: {error}"
            ),
            AttemptOutcome::Failed { error, .. } => tracing::warn!(
                execution.id = %id, webhook.attempt = attempt, error = %error,
                "webhook for execution {id} failed for good: {error}"
            ),
        }
        if let Some(m) = &self.inner.metrics {
            m.record_webhook(label);
        }
        let store = &self.inner.store;
        match store
            .record_webhook_attempt(id, attempt, outcome, voidrunner_store::now())
            .await
        {
            Ok(true) => retry_in,
            Ok(false) => {
                tracing::debug!(execution.id = %id, "webhook attempt {attempt} of {id} outlived its lease; outcome not recorded");
                None
            }
            Err(e) => {
                tracing::warn!(execution.id = %id, error = %e, "cannot record webhook attempt of {id}: {e}");
                None
            }
        }
    }

    async fn attempt(&self, d: &WebhookDelivery) -> Attempted {
        let c = &self.inner.config;
        let max = c.max_attempts.max(1);
        let fail = |label, status, error: String| Attempted {
            label,
            outcome: AttemptOutcome::Failed { status, error },
        };
        if d.attempts > max {
            return fail("failed", None, format!("gave up after {max} attempts"));
        }
        let resolved = tokio::time::timeout(c.timeout(), guard::resolve(&d.url, c.allow_private));
        let target = match resolved.await {
            Ok(Ok(t)) => t,
            Ok(Err(refusal @ guard::Refusal::Unresolved { .. })) => {
                return self.retry(d, None, refusal.to_string());
            }
            Ok(Err(refusal)) => return fail("refused", None, refusal.to_string()),
            Err(_) => return self.retry(d, None, "host lookup timed out".to_owned()),
        };
        let body = match self.body(d).await {
            Ok(b) => b,
            Err(e) => return self.retry(d, None, format!("cannot read the execution: {e}")),
        };
        let timestamp = chrono::Utc::now().timestamp();
        let secret = self.inner.key.user_secret(d.owner_id);
        let signature = sign(&secret, timestamp, &body);
        let req = SignedRequest {
            target: &target,
            body,
            delivery_id: d.execution_id.as_uuid().to_string(),
            timestamp,
            signature,
        };
        match post(req, c.timeout()).await {
            Ok(status) => match classify_status(status) {
                Disposition::Delivered => Attempted {
                    label: "delivered",
                    outcome: AttemptOutcome::Delivered { status },
                },
                Disposition::Retry => {
                    self.retry(d, Some(status), format!("receiver answered {status}"))
                }
                Disposition::Fail => fail(
                    "failed",
                    Some(status),
                    format!("receiver answered {status}"),
                ),
            },
            Err(reason) => self.retry(d, None, reason),
        }
    }

    /// A retry with backoff, or failed for good when this was the last attempt allowed.
    fn retry(&self, d: &WebhookDelivery, status: Option<u16>, error: String) -> Attempted {
        let c = &self.inner.config;
        let max = c.max_attempts.max(1);
        if d.attempts >= max {
            return Attempted {
                label: "failed",
                outcome: AttemptOutcome::Failed {
                    status,
                    error: format!("gave up after {max} attempts: {error}"),
                },
            };
        }
        let delay = voidrunner_store::backoff(
            &c.retry_policy(),
            d.attempts,
            rand::thread_rng().gen_range(0.0..1.0),
        );
        let retry_at = voidrunner_store::now()
            + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
        Attempted {
            label: "retried",
            outcome: AttemptOutcome::Retry {
                status,
                error,
                retry_at,
            },
        }
    }

    /// The final execution as its owner reads it from `GET /api/v1/executions/{id}`.
    async fn body(&self, d: &WebhookDelivery) -> Result<Vec<u8>, String> {
        let e = self
            .inner
            .store
            .get_execution(Scope::Owner(d.owner_id), d.execution_id)
            .await
            .map_err(|e| e.to_string())?;
        serde_json::to_vec(&ExecutionResponse::from_execution(e, Audience::User))
            .map_err(|e| e.to_string())
    }
}
