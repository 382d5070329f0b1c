//! The commit-status reconciler: a background loop on every API node that makes the git
//! host's commit statuses follow the stored workflows. Its truth is the database: the hook
//! records one row per workflow (in the delivery's transaction), and every pass claims the
//! rows whose workflow's `(status, run)` differs from the last one posted, posts each
//! through [`super::status::Reporter`] (SSRF guard included) and records the outcome under
//! the claim. So a restart loses nothing (the next pass of any node picks the row up), two
//! nodes never post the same transition at once (the claim is compare-and-set), and a
//! failed post is retried with exponential backoff — except a refusal for good (a 4xx other
//! than 429, a refused address), which gives the transition up and keeps the row. Each post
//! is counted in `voidrunner_commit_status_posts_total{outcome}` and timed in
//! `voidrunner_commit_status_post_duration_seconds`.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use voidrunner_store::{Scope, StatusReport, StatusReportOutcome, StoreError};

use super::mirror_gc::MirrorCleaner;
use super::status::{PostError, reporter};
use crate::context::ApiContext;

/// Pause between two passes when there was nothing to do.
const IDLE: Duration = Duration::from_secs(1);
/// How long a claim holds a row: longer than one post can take ([`POST_TIMEOUT`]).
const LEASE: Duration = Duration::from_secs(60);
/// One post at most (resolve + connect + answer; the HTTP client's own limit is 10 s).
const POST_TIMEOUT: Duration = Duration::from_secs(20);
/// Rows claimed (and posted concurrently) per pass.
const BATCH: u32 = 16;
/// Failed attempts of one transition before it is given up.
pub(crate) const MAX_ATTEMPTS: u32 = 10;
/// First retry delay; doubles per failed attempt up to [`BACKOFF_MAX`].
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The running reconciler of this node; [`StatusReconciler::stop`] ends it. It also runs
/// the node's cleaner of idle git mirrors (`[hooks] mirror_max_idle_secs`), so whoever
/// serves the API runs both.
#[derive(Debug)]
pub struct StatusReconciler {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    mirrors: Option<MirrorCleaner>,
}

impl StatusReconciler {
    /// Starts the loop for `ctx` (every API node runs one; they share the work through
    /// claims). A hook handled by this node wakes it at once.
    pub fn start(ctx: ApiContext) -> Self {
        let mirrors = MirrorCleaner::start(&ctx);
        let (stop, mut stopped) = watch::channel(false);
        let node = format!("api-{}", uuid::Uuid::new_v4().simple());
        let task = tokio::spawn(async move {
            tracing::debug!(node = %node, "commit-status reconciler started");
            loop {
                let claimed = pass(&ctx, &node).await;
                if claimed as u32 == BATCH {
                    continue;
                }
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => break,
                    () = ctx.status_wake().notified() => {}
                    () = tokio::time::sleep(IDLE) => {}
                }
            }
        });
        Self {
            stop,
            task,
            mirrors,
        }
    }

    /// Stops the loop after the current pass (its claims are finished or, if cut short by
    /// the runtime, expire after the lease) and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!("commit-status reconciler ended badly: {e}");
        }
        if let Some(mirrors) = self.mirrors {
            mirrors.stop().await;
        }
    }
}

/// The retry delay after `failed` failed attempts (1 s, 2 s, 4 s, … up to 5 min).
fn backoff(failed: u32) -> Duration {
    BACKOFF_BASE
        .saturating_mul(1 << failed.min(16))
        .min(BACKOFF_MAX)
}

/// One pass: claims due rows and posts them; answers how many were claimed. A node without
/// the secrets key claims nothing (it could not open a status token; a node with the key
/// posts them), so it never spends a row's attempts.
async fn pass(ctx: &ApiContext, node: &str) -> usize {
    if ctx.secret_box().is_none() {
        return 0;
    }
    let claimed = match ctx
        .store()
        .claim_status_reports(node, voidrunner_store::now(), LEASE, BATCH)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("commit statuses: claiming failed: {e}");
            return 0;
        }
    };
    let n = claimed.len();
    futures::future::join_all(claimed.into_iter().map(|r| report(ctx, r))).await;
    n
}

/// Posts one claimed transition and records the outcome.
async fn report(ctx: &ApiContext, r: StatusReport) {
    let started = std::time::Instant::now();
    let result = post(ctx, &r).await;
    let elapsed = started.elapsed();
    let now = voidrunner_store::now();
    let outcome = match result {
        Ok(()) => StatusReportOutcome::Posted {
            state: r.state,
            run: r.run,
        },
        Err(e) if e.permanent || r.attempts + 1 >= MAX_ATTEMPTS => {
            tracing::warn!(workflow.id = %r.workflow_id, attempts = r.attempts + 1,
                "commit status {} for {} given up: {}", r.state.as_str(), r.context, e.message);
            StatusReportOutcome::GiveUp {
                state: r.state,
                run: r.run,
                error: e.message,
            }
        }
        Err(e) => {
            let delay = backoff(r.attempts);
            tracing::info!(workflow.id = %r.workflow_id, retry_in_ms = delay.as_millis() as u64,
                "commit status {} for {} failed: {}", r.state.as_str(), r.context, e.message);
            StatusReportOutcome::Retry {
                error: e.message,
                at: now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX),
            }
        }
    };
    let label = match &outcome {
        StatusReportOutcome::Posted { .. } => "posted",
        StatusReportOutcome::Retry { .. } => "retry",
        StatusReportOutcome::GiveUp { .. } => "given_up",
    };
    ctx.metrics().record_commit_status(label, elapsed);
    match ctx
        .store()
        .finish_status_report(r.workflow_id, r.claim, outcome, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!(workflow.id = %r.workflow_id,
            "commit status outcome not recorded: the claim expired"),
        Err(e) => tracing::warn!(workflow.id = %r.workflow_id,
            "commit status outcome not recorded: {e}"),
    }
}

/// Builds the reporter from the repository as stored now, then posts once.
async fn post(ctx: &ApiContext, r: &StatusReport) -> Result<(), PostError> {
    let repo = match ctx
        .store()
        .get_repository(Scope::All, r.repository_id)
        .await
    {
        Ok(repo) => repo,
        Err(StoreError::NotFound) => {
            return Err(PostError {
                message: "the repository is no longer registered".into(),
                permanent: true,
            });
        }
        Err(e) => {
            return Err(PostError {
                message: format!("reading the repository: {e}"),
                permanent: false,
            });
        }
    };
    let Some(reporter) = reporter(ctx, &repo, &r.sha) else {
        return Err(PostError {
            message: "status reporting is not configured or its token does not open".into(),
            permanent: true,
        });
    };
    match tokio::time::timeout(POST_TIMEOUT, reporter.post(&r.context, r.state)).await {
        Ok(res) => res,
        Err(_) => Err(PostError {
            message: format!("no answer within {} s", POST_TIMEOUT.as_secs()),
            permanent: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(9), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }
}
