//! Cluster-wide queue signals over `LISTEN/NOTIFY`.
//!
//! Every queue change that others must hear about sends `pg_notify` on [`CHANNEL`] inside
//! its own transaction, so PostgreSQL delivers it exactly when (and only if) the change
//! commits. The payload is `"<kind> <origin> <execution id or -> <scope>"`: `kind` is `work`,
//! `cancel`, `finished`, `log` or `input`; `origin` identifies the sending store handle (a handle already
//! signalled itself locally after commit and ignores its own echo); `scope` is the schema, so
//! deployments (and tests) sharing one database but not one schema never wake each other.
//!
//! A background task per store handle holds a dedicated connection that `LISTEN`s and feeds
//! the handle's [`QueueSignals`]. When that connection drops it reconnects with exponential
//! backoff, logging one warning per outage, and fires one `work` signal after reconnecting
//! because notifications sent meanwhile are lost (cancels are then still seen through
//! heartbeats, and workers poll as a fallback). The task stops when the last clone of the
//! store is dropped or [`crate::PostgresStore::close`] is called.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use voidrunner_domain::ExecutionId;
use voidrunner_store::{JobId, JobSignal, QueueSignals, StoreResult};

use crate::error::map_sqlx;

/// The one notification channel (payloads carry kind and scope).
pub(crate) const CHANNEL: &str = "voidrunner_queue";

/// First reconnect delay; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest delay between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What a notification announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// New claimable work.
    Work,
    /// Cancel requested for a running execution.
    Cancel,
    /// An execution reached a terminal status.
    Finished,
    /// Events of an execution's log were committed (sent by the log trigger and by chunk
    /// appends, origin `db`; the id field is `<execution id>/<last seq>`).
    Log,
    /// Stdin was appended to an interactive execution.
    Input,
    /// Cancel requested for a running CI job.
    JobCancel,
    /// A CI job reached a terminal status.
    JobFinished,
    /// Events of a CI job's log were committed (origin `db`, id `<job id>/<last seq>`).
    JobEvents,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Work => "work",
            Kind::Cancel => "cancel",
            Kind::Finished => "finished",
            Kind::Log => "log",
            Kind::Input => "input",
            Kind::JobCancel => "jobcancel",
            Kind::JobFinished => "jobfinished",
            Kind::JobEvents => "jobevents",
        }
    }
}

/// The signals of one store handle plus what identifies its notifications.
#[derive(Debug)]
pub(crate) struct Hub {
    /// Local fan-out, fed after local commits and by the listener.
    pub signals: Arc<QueueSignals>,
    /// This handle's id in payloads.
    origin: String,
    /// The schema the handle works in.
    scope: String,
    /// The listener task, aborted on drop / close.
    listener: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Hub {
    /// Connects the listener (so that once this returns, notifications committed by anyone
    /// reach this handle) and starts the forwarding task.
    pub(crate) async fn start(
        listen_pool: PgPool,
        origin: String,
        scope: String,
    ) -> StoreResult<Arc<Hub>> {
        let listener = listen(&listen_pool).await.map_err(map_sqlx)?;
        let hub = Arc::new(Hub {
            signals: Arc::new(QueueSignals::new()),
            origin,
            scope,
            listener: Mutex::new(None),
        });
        let filter = Filter {
            origin: hub.origin.clone(),
            scope: hub.scope.clone(),
        };
        let task = tokio::spawn(forward(
            listener,
            listen_pool,
            filter,
            Arc::clone(&hub.signals),
        ));
        if let Ok(mut slot) = hub.listener.lock() {
            *slot = Some(task.abort_handle());
        }
        Ok(hub)
    }

    /// Stops the listener task (idempotent).
    pub(crate) fn stop(&self) {
        let handle = match self.listener.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(h) = handle {
            h.abort();
        }
    }

    /// This handle's id in payloads.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// The schema this hub's notifications are scoped to.
    pub(crate) fn scope(&self) -> &str {
        &self.scope
    }

    /// The payload announcing `kind` for `id` to the other handles of this scope.
    pub(crate) fn payload(&self, kind: Kind, id: Option<ExecutionId>) -> String {
        let id = id.map_or_else(|| "-".to_owned(), |i| i.to_string());
        format!("{} {} {id} {}", kind.as_str(), self.origin, self.scope)
    }
}

/// Sends `pg_notify` inside `tx`: delivered on commit, dropped on rollback.
pub(crate) async fn notify(
    tx: &mut sqlx::PgConnection,
    hub: &Hub,
    kind: Kind,
    id: Option<ExecutionId>,
) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(hub.payload(kind, id))
        .execute(tx)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

/// Which payloads a handle acts on.
#[derive(Debug, Clone)]
struct Filter {
    origin: String,
    scope: String,
}

impl Filter {
    /// Parses a payload meant for this handle (same scope, another origin).
    #[cfg(test)]
    fn accept(&self, payload: &str) -> Option<(Kind, Option<ExecutionId>)> {
        self.accept_with_seq(payload).map(|(k, id, _)| (k, id))
    }

    /// Like [`Filter::accept`], plus the seq of `log` payloads (0 for other kinds).
    fn accept_with_seq(&self, payload: &str) -> Option<(Kind, Option<ExecutionId>, u64)> {
        let mut parts = payload.splitn(4, ' ');
        let kind = match parts.next()? {
            "work" => Kind::Work,
            "cancel" => Kind::Cancel,
            "finished" => Kind::Finished,
            "log" => Kind::Log,
            "input" => Kind::Input,
            "jobcancel" => Kind::JobCancel,
            "jobfinished" => Kind::JobFinished,
            "jobevents" => Kind::JobEvents,
            _ => return None,
        };
        let origin = parts.next()?;
        let id = parts.next()?;
        let scope = parts.next()?;
        if scope != self.scope || origin == self.origin {
            return None;
        }
        let (id, seq) = match id.split_once('/') {
            Some((id, seq)) if matches!(kind, Kind::Log | Kind::JobEvents) => {
                (id, seq.parse().ok()?)
            }
            _ => (id, 0),
        };
        let id = id.parse::<ExecutionId>().ok();
        Some((kind, id, seq))
    }
}

/// A listener on [`CHANNEL`].
async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Forwards notifications into `signals` until aborted; reconnects with backoff.
async fn forward(first: PgListener, pool: PgPool, filter: Filter, signals: Arc<QueueSignals>) {
    let mut listener = Some(first);
    let mut backoff = MIN_BACKOFF;
    let mut outage = false;
    loop {
        let Some(l) = listener.as_mut() else {
            match listen(&pool).await {
                Ok(l) => {
                    tracing::info!("queue listener reconnected; waking workers to poll");
                    listener = Some(l);
                    outage = false;
                    backoff = MIN_BACKOFF;
                    signals.notify_work();
                }
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::debug!(error = %e, "queue listener reconnect failed: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            continue;
        };
        match l.try_recv().await {
            Ok(Some(n)) => match filter.accept_with_seq(n.payload()) {
                Some((Kind::Work, _, _)) => signals.notify_work(),
                Some((Kind::Cancel, Some(id), _)) => signals.notify_cancel(id),
                Some((Kind::Finished, Some(id), _)) => signals.notify_finished(id),
                Some((Kind::Log, Some(id), seq)) => signals.notify_log(id, seq),
                Some((Kind::Input, Some(id), _)) => signals.notify_input(id),
                Some((Kind::JobCancel, Some(id), _)) => {
                    signals.notify_job(JobSignal::Cancel(JobId(id.as_uuid())));
                }
                Some((Kind::JobFinished, Some(id), _)) => {
                    signals.notify_job(JobSignal::Finished(JobId(id.as_uuid())));
                }
                Some((Kind::JobEvents, Some(id), last_seq)) => {
                    signals.notify_job(JobSignal::Events {
                        job_id: JobId(id.as_uuid()),
                        last_seq,
                    });
                }
                _ => {}
            },
            Ok(None) => {
                // sqlx reconnected and re-listened already; events in between are lost.
                tracing::warn!("queue listener connection lost and re-established");
                signals.notify_work();
            }
            Err(e) => {
                if pool.is_closed() {
                    return;
                }
                if !outage {
                    tracing::warn!(error = %e, "queue listener lost its connection: {e}; \
                        retrying with backoff, workers fall back to polling");
                    outage = true;
                }
                listener = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_accepts_only_same_scope_other_origin() {
        let f = Filter {
            origin: "me".into(),
            scope: "s1".into(),
        };
        let id = ExecutionId::new();
        assert_eq!(
            f.accept(&format!("cancel other {id} s1")),
            Some((Kind::Cancel, Some(id)))
        );
        assert_eq!(f.accept("work other - s1"), Some((Kind::Work, None)));
        assert_eq!(f.accept("work me - s1"), None);
        assert_eq!(f.accept("work other - s2"), None);
        assert_eq!(f.accept("work other - s1 x"), None);
        assert_eq!(f.accept("bogus other - s1"), None);
        assert_eq!(
            f.accept(&format!("input other {id} s1")),
            Some((Kind::Input, Some(id)))
        );
        assert_eq!(f.accept("work"), None);
        assert_eq!(
            f.accept_with_seq(&format!("log db {id}/42 s1")),
            Some((Kind::Log, Some(id), 42))
        );
        assert_eq!(f.accept_with_seq(&format!("log db {id}/x s1")), None);
        assert_eq!(
            f.accept_with_seq(&format!("jobevents db {id}/7 s1")),
            Some((Kind::JobEvents, Some(id), 7))
        );
        assert_eq!(
            f.accept(&format!("jobcancel other {id} s1")),
            Some((Kind::JobCancel, Some(id)))
        );
    }
}
