//! Workflow handlers. Reads are scoped to the caller (admins: any workflow); submissions,
//! cancels and re-runs are the owner's. Another user's workflow is a 404 exactly like a
//! missing one. After every write the scheduler gets one decision pass at once (starting
//! the ready nodes); its background sweep catches up should that pass fail.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use voidrunner_api_types::{
    CreateWorkflowRequest, ErrorBody, ErrorCode, ListWorkflowsQuery, WorkflowListResponse,
    WorkflowNodeResponse, WorkflowResponse, WorkflowSummaryResponse,
};
use voidrunner_store::{Scope, StoreError, Workflow, WorkflowId, WorkflowNode, WorkflowState};

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::executions::handlers::read_scope;
use crate::extract::PathId;
use crate::extract::json_body_with_limit;
use crate::jobs::handlers::list_params;
use crate::workflows::create::{WorkflowInput, parse_definition, prepare_workflow};

/// Default and largest page of `GET /api/v1/workflows`.
/// Largest body of `POST /api/v1/workflows` (the CI files are capped at 2 MiB of it).
const BODY_MAX_BYTES: usize = 4 * 1024 * 1024;

fn node_response(n: WorkflowNode) -> WorkflowNodeResponse {
    WorkflowNodeResponse {
        name: n.name,
        group: n.group,
        status: n.status.as_str().to_owned(),
        reason: n.reason,
        job_id: n.job_id.map(|j| j.as_uuid()),
        previous_job_ids: n.previous_job_ids.iter().map(|j| j.as_uuid()).collect(),
        parent_job_id: n.parent_job_id.map(|j| j.as_uuid()),
        depends_on: n.depends_on,
        condition: n.condition,
        started_at: n.started_at,
        finished_at: n.finished_at,
        outputs: n.outputs,
    }
}

/// The workflow with its nodes (CI file paths only, never contents or secrets).
async fn workflow_response(
    ctx: &ApiContext,
    scope: Scope,
    w: Workflow,
) -> ApiResult<WorkflowResponse> {
    let nodes = ctx.store().workflow_nodes(scope, w.id).await?;
    Ok(WorkflowResponse {
        id: w.id.0,
        name: w.name,
        status: w.status.as_str().to_owned(),
        run: w.run,
        trusted: w.trusted,
        vars: w.vars,
        outputs: w.outputs,
        error: w.error,
        origin: w.origin,
        definition: w.definition,
        files: w.files.into_keys().collect(),
        created_at: w.created_at,
        finished_at: w.finished_at,
        cancel_requested_at: w.cancel_requested_at,
        nodes: nodes.into_iter().map(node_response).collect(),
    })
}

fn summary(w: Workflow) -> WorkflowSummaryResponse {
    WorkflowSummaryResponse {
        id: w.id.0,
        name: w.name,
        status: w.status.as_str().to_owned(),
        run: w.run,
        trusted: w.trusted,
        origin: w.origin,
        error: w.error,
        created_at: w.created_at,
        finished_at: w.finished_at,
        cancel_requested_at: w.cancel_requested_at,
    }
}

/// One scheduler pass right away; a failure is logged, the background sweep retries.
pub(crate) async fn advance_now(ctx: &ApiContext, id: WorkflowId) {
    if let Err(e) = voidrunner_jobs::scheduler::advance(ctx.store(), id).await {
        tracing::warn!(workflow.id = %id, error = %e, "advancing workflow {id} failed: {e}");
    }
}

/// Every secret a node's job declares must be given (the API's rule, as for jobs; names no
/// node declares are allowed: jobs triggered later may declare them).
fn check_declared_secrets(
    nodes: &[voidrunner_store::NewWorkflowNode],
    given: &BTreeMap<String, voidrunner_api_types::SecretValue>,
) -> ApiResult<()> {
    for node in nodes {
        let declared = node
            .definition
            .get("secrets")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str);
        for name in declared {
            if !given.contains_key(name) {
                return Err(ApiError::validation(
                    format!("secrets.{name}"),
                    format!("node {:?} declares this secret: give its value", node.name),
                ));
            }
        }
    }
    Ok(())
}

/// Submits a workflow: validates the definition (every problem at once: `422` with
/// `problems`, e.g. a cycle or an unknown dependency naming the nodes), reads `job_file`
/// nodes from `files`, applies the server's policy to every node's job, seals the secrets
/// and stores the workflow with its nodes; the ready nodes' jobs are queued at once.
#[utoipa::path(post, path = "/api/v1/workflows", tag = "workflows",
    security(("bearer" = [])),
    request_body = CreateWorkflowRequest,
    responses(
        (status = 201, description = "Created; ready nodes queued", body = WorkflowResponse),
        (status = 413, description = "Body or CI files too large (`field` names the file)", body = ErrorBody),
        (status = 422, description = "Invalid: `problems` lists every problem of the definition", body = ErrorBody),
        (status = 503, description = "Secrets sent but this node has no secrets key, or the store is down", body = ErrorBody),
    ))]
pub(crate) async fn create_workflow(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<(StatusCode, Json<WorkflowResponse>)> {
    let body: CreateWorkflowRequest = json_body_with_limit(req, BODY_MAX_BYTES).await?;
    let request_id = headers
        .get(crate::edge::middleware::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let definition = parse_definition(&body.definition)?;
    let secrets = body.secrets.unwrap_or_default();
    let input = WorkflowInput {
        definition,
        files: body.files.unwrap_or_default(),
        env: BTreeMap::new(),
        vars: body.vars.unwrap_or_default(),
        secrets: secrets.clone(),
        trusted: true,
        origin: serde_json::json!({"kind": "api"}),
        owner: auth.id,
        request_id,
    };
    let prepared = prepare_workflow(&ctx, input, voidrunner_store::now())?;
    check_declared_secrets(&prepared.nodes, &secrets)?;
    let id = prepared.workflow.id;
    ctx.store()
        .create_workflow(prepared.workflow, prepared.nodes, prepared.sealed_secrets)
        .await?;
    tracing::info!(workflow.id = %id, "created workflow {id}");
    advance_now(&ctx, id).await;
    let scope = Scope::Owner(auth.id);
    let w = ctx.store().get_workflow(scope, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(workflow_response(&ctx, scope, w).await?),
    ))
}

/// Lists the caller's workflows newest first (`?status=`, `?limit=`, `?cursor=`).
#[utoipa::path(get, path = "/api/v1/workflows", tag = "workflows",
    security(("bearer" = [])),
    params(ListWorkflowsQuery),
    responses(
        (status = 200, description = "One page", body = WorkflowListResponse),
        (status = 400, description = "Bad query parameter (`field` names it)", body = ErrorBody),
    ))]
pub(crate) async fn list_workflows(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<WorkflowListResponse>> {
    let (limit, status, after) = list_params(
        raw.as_deref(),
        WorkflowState::parse,
        "unknown workflow status",
        crate::cursor::decode_workflow,
    )?;
    let page = ctx
        .store()
        .list_workflows(Scope::Owner(auth.id), status, after, limit)
        .await?;
    Ok(Json(WorkflowListResponse {
        items: page.items.into_iter().map(summary).collect(),
        next_cursor: page.next.as_ref().map(crate::cursor::encode_workflow),
    }))
}

/// Gets a workflow with its nodes' states (the caller's; admins: any).
#[utoipa::path(get, path = "/api/v1/workflows/{id}", tag = "workflows",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Workflow id")),
    responses(
        (status = 200, description = "The workflow", body = WorkflowResponse),
        (status = 404, description = "No such workflow of yours", body = ErrorBody),
    ))]
pub(crate) async fn get_workflow(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<WorkflowId>,
) -> ApiResult<Json<WorkflowResponse>> {
    let scope = read_scope(&auth);
    let w = ctx.store().get_workflow(scope, id).await?;
    Ok(Json(workflow_response(&ctx, scope, w).await?))
}

fn conflict(message: &'static str) -> impl FnOnce(StoreError) -> ApiError {
    move |err| match err {
        StoreError::Conflict(_) => {
            ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
        }
        other => other.into(),
    }
}

fn with_location(status: StatusCode, body: WorkflowResponse) -> Response {
    let location = format!("/api/v1/workflows/{}", body.id);
    let mut res = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// Cancels one of the caller's workflows: every pending node is skipped and every running
/// node's job cancelled. `200` when it is finished already by the answer, `202` while jobs
/// still wind down.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/cancel", tag = "workflows",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Workflow id")),
    responses(
        (status = 200, description = "Cancelled", body = WorkflowResponse),
        (status = 202, description = "Cancel requested; running jobs are being cancelled", body = WorkflowResponse),
        (status = 404, description = "No such workflow of yours", body = ErrorBody),
        (status = 409, description = "Already finished", body = ErrorBody),
    ))]
pub(crate) async fn cancel_workflow(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<WorkflowId>,
) -> ApiResult<Response> {
    let scope = Scope::Owner(auth.id);
    ctx.store()
        .request_workflow_cancel(scope, id, None, voidrunner_store::now())
        .await
        .map_err(conflict("workflow already finished"))?;
    tracing::info!(workflow.id = %id, "cancel requested for workflow {}", id);
    advance_now(&ctx, id).await;
    let w = ctx.store().get_workflow(scope, id).await?;
    let status = if w.status.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(with_location(
        status,
        workflow_response(&ctx, scope, w).await?,
    ))
}

/// Re-runs a failed or cancelled workflow of the caller's: its failed, timed-out,
/// cancelled and skipped nodes go back to pending (their old jobs are kept in
/// `previous_job_ids`) and the ready ones are queued at once. `run` goes up by one.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/rerun", tag = "workflows",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Workflow id")),
    responses(
        (status = 200, description = "Running again", body = WorkflowResponse),
        (status = 404, description = "No such workflow of yours", body = ErrorBody),
        (status = 409, description = "Not failed or cancelled (running, succeeded or skipped)", body = ErrorBody),
    ))]
pub(crate) async fn rerun_workflow(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<WorkflowId>,
) -> ApiResult<Response> {
    let scope = Scope::Owner(auth.id);
    ctx.store()
        .rerun_workflow(scope, id, voidrunner_store::now())
        .await
        .map_err(conflict(
            "only a failed or cancelled workflow can be re-run",
        ))?;
    tracing::info!(workflow.id = %id, "re-run of workflow {}", id);
    advance_now(&ctx, id).await;
    let w = ctx.store().get_workflow(scope, id).await?;
    Ok(with_location(
        StatusCode::OK,
        workflow_response(&ctx, scope, w).await?,
    ))
}

/// The JSON Schema (2020-12) of a workflow definition.
#[utoipa::path(get, path = "/api/v1/workflows/schema", tag = "workflows",
    responses((status = 200, description = "JSON Schema of a workflow definition", body = Object)))]
pub(crate) async fn get_workflow_schema() -> Json<serde_json::Value> {
    Json(voidrunner_jobs::workflow::workflow_schema().clone())
}
