//! Enqueue, optionally wait for the finished signal, answer. This is the hot path of
//! `POST /api/v1/run?wait=true`: one insert, one wait on an in-process channel, one re-read.

use std::time::Duration;

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use voidrunner_api_types::{Audience, ExecutionResponse};
use voidrunner_domain::{Execution, ExecutionId};
use voidrunner_store::{NewExecution, Scope};

use crate::context::ApiContext;
use crate::error::ApiResult;

/// `status` + `Location` + the execution.
pub(crate) fn respond(status: StatusCode, e: Execution, audience: Audience) -> Response {
    let location = format!("/api/v1/executions/{}", e.id);
    (
        status,
        [(header::LOCATION, location)],
        Json(ExecutionResponse::from_execution(e, audience)),
    )
        .into_response()
}

/// Enqueues `new`; with `wait`, waits up to that long for it to finish. Answers `200` with
/// the final row when it finished in time, `202` with the current row otherwise.
///
/// The finished-signal receiver is taken BEFORE the insert, so a completion racing the
/// enqueue cannot be missed; a lagging receiver re-reads the row instead of trusting the
/// (lost) signals.
pub(crate) async fn enqueue(
    ctx: &ApiContext,
    new: NewExecution,
    wait: Option<Duration>,
    audience: Audience,
) -> ApiResult<Response> {
    let store = ctx.store();
    let mut finished = wait.map(|_| store.queue_signals().subscribe_finished());
    let queued = store.enqueue_execution(new).await?;
    tracing::info!(
        execution.id = %queued.id,
        task.id = ?queued.task_id.map(|t| t.to_string()),
        "enqueued execution {}",
        queued.id
    );
    let (Some(timeout), Some(rx)) = (wait, finished.as_mut()) else {
        return Ok(respond(StatusCode::ACCEPTED, queued, audience));
    };
    let scope = Scope::Owner(queued.owner_id);
    let row = until_finished(ctx, scope, queued, rx, timeout).await?;
    let status = if row.status.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(respond(status, row, audience))
}

/// Waits up to `timeout` for `current` to finish and returns the latest row (terminal, or
/// as it is when the time is up). `rx` must have been subscribed before `current` was read,
/// so no finish can fall between the read and the wait. Costs one re-read per signal for
/// this execution (or per lag), plus one at the deadline.
pub(crate) async fn until_finished(
    ctx: &ApiContext,
    scope: Scope,
    current: Execution,
    rx: &mut Receiver<ExecutionId>,
    timeout: Duration,
) -> ApiResult<Execution> {
    if current.status.is_terminal() {
        return Ok(current);
    }
    let store = ctx.store();
    let id = current.id;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let heard = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(done)) => done == id,
            Ok(Err(RecvError::Lagged(_))) => true,
            Ok(Err(RecvError::Closed)) | Err(_) => break,
        };
        if heard {
            let row = store.get_execution(scope, id).await?;
            if row.status.is_terminal() {
                return Ok(row);
            }
        }
    }
    store.get_execution(scope, id).await.map_err(Into::into)
}
