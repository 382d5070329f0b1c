//! `GET /api/v1/executions/{id}/metrics`: one execution's measurements and the memory/CPU
//! timeline the sandbox sampled while it ran.

use axum::Json;
use axum::extract::State;
use voidrunner_api_types::{ErrorBody, ExecutionMetricsResponse, ResourceSampleResponse};
use voidrunner_domain::ExecutionId;

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::ApiResult;
use crate::executions::handlers::read_scope;
use crate::extract::PathId;

/// Gets an execution's wall time, CPU time, peak memory, queue wait and sampled timeline
/// (the caller's; admins: any; someone else's is `404`).
#[utoipa::path(get, path = "/api/v1/executions/{id}/metrics", tag = "executions",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Execution id")),
    responses(
        (status = 200, description = "Measurements and timeline", body = ExecutionMetricsResponse),
        (status = 404, description = "No such execution of yours", body = ErrorBody),
    ))]
pub(crate) async fn get_execution_metrics(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<ExecutionId>,
) -> ApiResult<Json<ExecutionMetricsResponse>> {
    let scope = read_scope(&auth);
    let store = ctx.store();
    let e = store.get_execution(scope, id).await?;
    let samples = store.resource_samples(scope, id).await?;
    let queue_wait_ms = e
        .started_at
        .and_then(|s| u64::try_from((s - e.created_at).num_milliseconds()).ok());
    Ok(Json(ExecutionMetricsResponse {
        execution_id: e.id.as_uuid(),
        status: e.status.into(),
        wall_time_ms: e.wall_time_ms,
        cpu_time_ms: e.cpu_time_ms,
        peak_memory_bytes: e.peak_memory_bytes,
        queue_wait_ms,
        samples: samples
            .into_iter()
            .map(|s| ResourceSampleResponse {
                t_ms: s.t_ms,
                memory_bytes: s.memory_bytes,
                cpu_ms: s.cpu_ms,
            })
            .collect(),
    }))
}
