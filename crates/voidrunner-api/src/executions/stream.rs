//! `GET /api/v1/executions/{id}/stream`: the execution's event log as Server-Sent Events.
//!
//! Replays every event after `Last-Event-ID` (or `?after=`) from the store, then follows:
//! it waits for a log or finished signal naming the execution (or [`POLL`] as a fallback,
//! which also covers lagged receivers and other SQLite processes), and re-reads
//! `seq > last_sent` from the store each time — so no event is skipped or sent twice,
//! whatever signals were lost. It ends after the terminal status event. Reads go through the
//! log reader, so a replay of an archived log comes from its object (same events, same ids);
//! a log deleted by retention answers `410 logs_expired`.
//!
//! Memory per client is bounded: at most one page of events is held, and the next page is
//! read only when the client's response has taken the previous one (backpressure of the
//! client's own connection). Workers never wait for streams: they write to the store and
//! send a non-blocking signal.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use voidrunner_api_types::{ErrorBody, StreamQuery};
use voidrunner_domain::{ExecutionId, ExecutionStatus};
use voidrunner_logarchive::{LogCursor, ReadError};
use voidrunner_store::{LogEvent, LogSignal, LogStream, Scope};

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::executions::handlers::read_scope;
use crate::executions::logs::{PAGE, chunk_response, read_error};
use crate::extract::PathId;

/// Fallback re-read period when no signal arrives.
pub(crate) const POLL: Duration = Duration::from_secs(2);
/// Keep-alive comment period.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStream {
    after: Option<String>,
}

/// The `Last-Event-ID` header, when present (shared with the job stream).
pub(crate) fn last_event_id(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid_query("Last-Event-ID", "must be an event id"))
        })
        .transpose()
}

/// Where to resume: `Last-Event-ID` wins over `?after=`; 0 = from the start.
fn resume_point(headers: &HeaderMap, raw: Option<&str>) -> ApiResult<u64> {
    if let Some(after) = last_event_id(headers)? {
        return Ok(after);
    }
    let q: RawStream = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|_| ApiError::invalid_query("query", "unknown or duplicated query parameter"))?;
    match q.after {
        None => Ok(0),
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| ApiError::invalid_query("after", "must be an event id")),
    }
}

/// Follows an execution's event log, one event at a time (shared by SSE and WebSocket).
pub(crate) struct Follow {
    ctx: ApiContext,
    id: ExecutionId,
    scope: Scope,
    last_sent: u64,
    buffer: VecDeque<LogEvent>,
    logs: broadcast::Receiver<LogSignal>,
    finished: broadcast::Receiver<ExecutionId>,
    /// The row was seen terminal (checked on poll timeouts only).
    row_terminal: bool,
    done: bool,
    /// Reads the log from the database or the archive, forward from `last_sent`.
    cursor: LogCursor,
    /// A read failed and was logged; later failures of this stream are not logged again.
    read_failing: bool,
}

/// A status event's data: the stored JSON summary plus its seq; and whether it is terminal.
fn status_event(e: &LogEvent) -> (serde_json::Value, bool) {
    let mut v: serde_json::Value =
        serde_json::from_slice(&e.data).unwrap_or_else(|_| serde_json::json!({}));
    let terminal = v
        .get("status")
        .and_then(|s| s.as_str())
        .and_then(ExecutionStatus::parse)
        .is_some_and(|s| s.is_terminal());
    if let Some(obj) = v.as_object_mut() {
        obj.insert("seq".into(), e.seq.into());
    }
    (v, terminal)
}

/// The JSON data of a stored event (status summary or chunk) and whether it is the terminal
/// status event.
pub(crate) fn event_data(e: LogEvent) -> (serde_json::Value, bool) {
    if e.stream == LogStream::Status {
        status_event(&e)
    } else {
        let chunk = chunk_response(e);
        (serde_json::to_value(chunk).unwrap_or_default(), false)
    }
}

/// The SSE event of a stored event (`id` = seq, `event` = stream name).
fn sse_event(e: LogEvent) -> Event {
    let seq = e.seq.to_string();
    let kind = e.stream.as_str();
    let (data, _) = event_data(e);
    Event::default().id(seq).event(kind).data(data.to_string())
}

impl Follow {
    /// Checks that the caller may read execution `id` and starts following after `after`;
    /// subscribes before the first read so no commit can fall between read and wait.
    pub(crate) async fn open(
        ctx: &ApiContext,
        scope: Scope,
        id: ExecutionId,
        after: u64,
    ) -> ApiResult<Follow> {
        let signals = ctx.store().queue_signals();
        let logs = signals.subscribe_logs();
        let finished = signals.subscribe_finished();
        ctx.store().get_execution(scope, id).await?;
        let cursor = ctx
            .log_reader()
            .cursor(id, after)
            .await
            .map_err(read_error)?;
        Ok(Follow {
            cursor,
            read_failing: false,
            ctx: ctx.clone(),
            id,
            scope,
            last_sent: after,
            buffer: VecDeque::new(),
            logs,
            finished,
            row_terminal: false,
            done: false,
        })
    }

    /// The next stored event, or `None` after the terminal one.
    pub(crate) async fn next_event(&mut self) -> Option<LogEvent> {
        loop {
            if self.done {
                return None;
            }
            if let Some(e) = self.buffer.pop_front() {
                self.last_sent = e.seq;
                self.done = e.stream == LogStream::Status && status_event(&e).1;
                return Some(e);
            }
            match self.cursor.next_page(PAGE).await {
                Ok(page) if !page.is_empty() => {
                    self.read_failing = false;
                    self.buffer.extend(page);
                    continue;
                }
                Ok(_) if self.row_terminal => {
                    // The row was terminal before this read and its terminal event (written
                    // in the same transaction) is not in the log: a log from before event
                    // logs existed. Nothing more will come.
                    return None;
                }
                Ok(_) => self.read_failing = false,
                // Retention deleted the log while it was followed: nothing more to send.
                Err(ReadError::Expired { .. }) => return None,
                Err(e) if !self.read_failing => {
                    self.read_failing = true;
                    tracing::warn!(execution.id = %self.id, error = %e, "stream of execution {}: reading the log failed: {e}; retrying", self.id);
                }
                Err(_) => {}
            }
            if !self.wait().await {
                // No signal within the poll period: re-read (above), and note whether the
                // row is terminal so an execution without a terminal event still ends.
                if let Ok(row) = self.ctx.store().get_execution(self.scope, self.id).await {
                    self.row_terminal = row.status.is_terminal();
                }
            }
        }
    }

    /// Waits for a signal naming this execution (`true`) or the poll period (`false`).
    async fn wait(&mut self) -> bool {
        let id = self.id;
        let last = self.last_sent;
        let deadline = tokio::time::Instant::now() + POLL;
        loop {
            let woke = tokio::select! {
                r = self.logs.recv() => match r {
                    Ok(s) => s.execution_id == id && (s.last_seq == 0 || s.last_seq > last),
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => false,
                },
                r = self.finished.recv() => match r {
                    Ok(done) => done == id,
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

/// Streams an execution's events (the caller's; admins: any) as Server-Sent Events:
/// `status` (JSON summary: `status`, `attempt`, and when terminal `verdict`, `exit_code`,
/// measurements), `stdout`/`stderr`/`compile` (a chunk: `data` with `encoding`). Each event's
/// `id` is its seq; resume with `Last-Event-ID` (or `?after=`). Ends after the terminal
/// status event; keep-alive comments every 15 s.
#[utoipa::path(get, path = "/api/v1/executions/{id}/stream", tag = "executions",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Execution id"), StreamQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event id")),
    responses(
        (status = 200, description = "`text/event-stream` of the execution's events", content_type = "text/event-stream"),
        (status = 400, description = "Bad `after` or `Last-Event-ID`", body = ErrorBody),
        (status = 404, description = "No such execution of yours", body = ErrorBody),
        (status = 410, description = "Retention deleted this execution's output (`logs_expired`)", body = ErrorBody),
    ))]
pub(crate) async fn stream_execution(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<ExecutionId>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let after = resume_point(&headers, raw.as_deref())?;
    let follow = Follow::open(&ctx, read_scope(&auth), id, after).await?;
    let stream = futures::stream::unfold(follow, |mut f| async move {
        f.next_event().await.map(|e| (Ok(sse_event(e)), f))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
