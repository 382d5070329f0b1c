//! `GET /api/v1/jobs/{id}/stream`: a job's event log as Server-Sent Events, by the same rules
//! as the execution stream (`executions/stream.rs`): replay `seq > last_sent` from the store,
//! then wait for a job signal naming the job (or the poll period) and re-read — so no event
//! is skipped or sent twice whatever signals were lost. Ends after the job's terminal status
//! event. At most one page of events is held per client.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use voidrunner_api_types::{ErrorBody, JobStreamQuery};
use voidrunner_store::{JobEventRecord, JobId, JobSignal, JobStatus, JobStream, Scope};

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::executions::handlers::read_scope;
use crate::executions::logs::PAGE;
use crate::executions::stream::{KEEP_ALIVE, POLL, last_event_id};
use crate::jobs::JobPath;
use crate::jobs::handlers::{event_response, step_filter};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStream {
    after: Option<String>,
    step: Option<String>,
}

/// A job-level status event announcing a terminal status.
fn is_terminal(e: &JobEventRecord) -> bool {
    e.stream == JobStream::Status
        && e.step.is_none()
        && serde_json::from_slice::<serde_json::Value>(&e.data)
            .ok()
            .and_then(|v| v.get("status")?.as_str().and_then(JobStatus::parse))
            .is_some_and(JobStatus::is_terminal)
}

/// Follows a job's event log, one event at a time.
struct Follow {
    ctx: ApiContext,
    id: JobId,
    scope: Scope,
    /// Only this step's events (and the job-level status events).
    step: Option<String>,
    last_sent: u64,
    buffer: VecDeque<JobEventRecord>,
    signals: broadcast::Receiver<JobSignal>,
    row_terminal: bool,
    done: bool,
    read_failing: bool,
}

impl Follow {
    /// Subscribes before the access check and the first read, so no commit falls between
    /// a read and the wait.
    async fn open(
        ctx: &ApiContext,
        scope: Scope,
        id: JobId,
        after: u64,
        step: Option<String>,
    ) -> ApiResult<Follow> {
        let signals = ctx.store().queue_signals().subscribe_jobs();
        ctx.store().get_job(scope, id).await?;
        Ok(Follow {
            ctx: ctx.clone(),
            id,
            scope,
            step,
            last_sent: after,
            buffer: VecDeque::new(),
            signals,
            row_terminal: false,
            done: false,
            read_failing: false,
        })
    }

    fn wanted(&self, e: &JobEventRecord) -> bool {
        match &self.step {
            None => true,
            Some(step) => {
                e.step.as_ref() == Some(step) || (e.step.is_none() && e.stream == JobStream::Status)
            }
        }
    }

    /// The next event to send, or `None` after the terminal one.
    async fn next_event(&mut self) -> Option<JobEventRecord> {
        loop {
            if self.done {
                return None;
            }
            if let Some(e) = self.buffer.pop_front() {
                self.last_sent = e.seq;
                self.done = is_terminal(&e);
                if self.wanted(&e) {
                    return Some(e);
                }
                continue;
            }
            match self
                .ctx
                .store()
                .read_job_events(self.id, self.last_sent, PAGE)
                .await
            {
                Ok(page) if !page.is_empty() => {
                    self.read_failing = false;
                    self.buffer.extend(page);
                    continue;
                }
                // Terminal before this read, and its terminal event (same transaction) is
                // not after `last_sent`: nothing more will come.
                Ok(_) if self.row_terminal => return None,
                Ok(_) => self.read_failing = false,
                Err(e) if !self.read_failing => {
                    self.read_failing = true;
                    tracing::warn!(job.id = %self.id, error = %e, "stream of job {}: reading events failed: {e}; retrying", self.id);
                }
                Err(_) => {}
            }
            if !self.wait().await
                && let Ok(row) = self.ctx.store().get_job(self.scope, self.id).await
            {
                self.row_terminal = row.status.is_terminal();
            }
        }
    }

    /// Waits for a signal naming this job (`true`) or the poll period (`false`).
    async fn wait(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + POLL;
        loop {
            let woke = tokio::select! {
                r = self.signals.recv() => match r {
                    Ok(JobSignal::Events { job_id, last_seq }) => {
                        job_id == self.id && (last_seq == 0 || last_seq > self.last_sent)
                    }
                    Ok(JobSignal::Finished(id)) => id == self.id,
                    Ok(JobSignal::Cancel(_)) => false,
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => false,
                },
                () = tokio::time::sleep_until(deadline) => return false,
            };
            if woke {
                return true;
            }
        }
    }
}

/// The SSE event of a stored event: `id` = seq, `event` = `status` | `stdout` | `stderr` |
/// `phase`, `data` = the event as JSON.
fn sse_event(e: JobEventRecord) -> Event {
    let seq = e.seq.to_string();
    let kind = e.stream.as_str();
    let data = serde_json::to_string(&event_response(e)).unwrap_or_default();
    Event::default().id(seq).event(kind).data(data)
}

/// Streams a job's events (the caller's; admins: any) as Server-Sent Events: `status` (job
/// or step status change), `stdout`/`stderr` (a step's or hook's output), `phase` (a
/// lifecycle phase began); `data` is a `JobEventResponse`. Resume with `Last-Event-ID` (or
/// `?after=`); `?step=` keeps one step's events plus the job's status events. Ends after the
/// job's terminal status event; keep-alive comments every 15 s.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/stream", tag = "jobs",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Job id"), JobStreamQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event id")),
    responses(
        (status = 200, description = "`text/event-stream` of the job's events", content_type = "text/event-stream"),
        (status = 400, description = "Bad `after`, `step` or `Last-Event-ID`", body = ErrorBody),
        (status = 404, description = "No such job of yours", body = ErrorBody),
    ))]
pub(crate) async fn stream_job(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    path: JobPath,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let q: RawStream = serde_urlencoded::from_str(raw.as_deref().unwrap_or_default())
        .map_err(|_| ApiError::invalid_query("query", "unknown or duplicated query parameter"))?;
    let after = match last_event_id(&headers)? {
        Some(after) => after,
        None => match q.after {
            None => 0,
            Some(s) => s
                .parse::<u64>()
                .map_err(|_| ApiError::invalid_query("after", "must be an event id"))?,
        },
    };
    let step = step_filter(q.step)?;
    let follow = Follow::open(&ctx, read_scope(&auth), path.id, after, step).await?;
    let stream = futures::stream::unfold(follow, |mut f| async move {
        f.next_event().await.map(|e| (Ok(sse_event(e)), f))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
