//! `GET /api/v1/executions/stream`: the caller's status changes across all their executions,
//! as Server-Sent Events, for dashboards.
//!
//! Driven by the same log and finished signals as the per-execution stream: on a signal it
//! checks (once per execution, remembered) whether the execution is the caller's, then reads
//! that execution's new events from the store and sends its status events. Unlike the
//! per-execution stream it is not resumable (there is no order across executions): a
//! client that reconnects, or that receives `event: resync` (this server missed signals
//! because it fell behind), should re-list its executions.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use voidrunner_api_types::ErrorBody;
use voidrunner_domain::{ExecutionId, Timestamp, UserId};
use voidrunner_store::{LogSignal, LogStream, Scope, StoreError};

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::ApiResult;
use crate::executions::logs::PAGE;
use crate::executions::stream::KEEP_ALIVE;

/// Executions remembered per stream before the memory is reset (bounded memory).
const REMEMBERED: usize = 10_000;

struct UserFollow {
    ctx: ApiContext,
    owner: UserId,
    /// Only events stored from here on are sent (a reset moves it forward).
    since: Timestamp,
    /// Last seq read per execution of the caller.
    seen: HashMap<ExecutionId, u64>,
    /// Executions known not to be the caller's.
    foreign: HashSet<ExecutionId>,
    queue: VecDeque<Event>,
    logs: broadcast::Receiver<LogSignal>,
    finished: broadcast::Receiver<ExecutionId>,
}

impl UserFollow {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            let id = tokio::select! {
                r = self.logs.recv() => match r {
                    Ok(s) => Some(s.execution_id),
                    Err(RecvError::Lagged(_)) => None,
                    Err(RecvError::Closed) => return None,
                },
                r = self.finished.recv() => match r {
                    Ok(id) => Some(id),
                    Err(RecvError::Lagged(_)) => None,
                    Err(RecvError::Closed) => return None,
                },
            };
            match id {
                Some(id) => self.visit(id).await,
                None => self
                    .queue
                    .push_back(Event::default().event("resync").data("{}")),
            }
        }
    }

    /// Queues the new status events of `id` when it is the caller's.
    async fn visit(&mut self, id: ExecutionId) {
        if self.foreign.contains(&id) {
            return;
        }
        if self.seen.len() + self.foreign.len() > REMEMBERED {
            self.seen.clear();
            self.foreign.clear();
            self.since = voidrunner_store::now();
        }
        let store = self.ctx.store();
        let row = match store.get_execution(Scope::Owner(self.owner), id).await {
            Ok(row) => row,
            Err(StoreError::NotFound) => {
                self.foreign.insert(id);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "user stream: reading execution {id} failed: {e}");
                return;
            }
        };
        let mut after = self.seen.get(&id).copied().unwrap_or(0);
        let new = after == 0;
        loop {
            let page = match store.read_logs(id, after, PAGE).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "user stream: reading log of {id} failed: {e}");
                    break;
                }
            };
            let full = page.len() == PAGE as usize;
            for e in page {
                after = e.seq;
                if e.stream != LogStream::Status || (new && e.created_at < self.since) {
                    continue;
                }
                let mut v: serde_json::Value =
                    serde_json::from_slice(&e.data).unwrap_or_else(|_| serde_json::json!({}));
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("execution_id".into(), id.to_string().into());
                    obj.insert("task_id".into(), row.task_id.map(|t| t.to_string()).into());
                    obj.insert("seq".into(), e.seq.into());
                }
                self.queue
                    .push_back(Event::default().event("status").data(v.to_string()));
            }
            if !full {
                break;
            }
        }
        self.seen.insert(id, after);
    }
}

/// Streams the status changes of all the caller's executions (started after the stream was
/// opened) as Server-Sent Events `status` with `execution_id`, `task_id`, `seq` and the
/// status summary. Not resumable; `event: resync` asks the client to re-list.
#[utoipa::path(get, path = "/api/v1/executions/stream", tag = "executions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`text/event-stream` of the caller's status changes", content_type = "text/event-stream"),
        (status = 401, description = "No credential", body = ErrorBody),
    ))]
pub(crate) async fn stream_my_executions(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let signals = ctx.store().queue_signals();
    let follow = UserFollow {
        logs: signals.subscribe_logs(),
        finished: signals.subscribe_finished(),
        ctx: ctx.clone(),
        owner: auth.id,
        since: voidrunner_store::now(),
        seen: HashMap::new(),
        foreign: HashSet::new(),
        queue: VecDeque::new(),
    };
    let stream =
        futures::stream::unfold(
            follow,
            |mut f| async move { f.next().await.map(|e| (Ok(e), f)) },
        );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
