//! Job handlers. Reads are scoped to the caller (admins: any job); submissions and cancels
//! are the owner's. Another user's job is a 404 exactly like a missing one.

use axum::Json;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use voidrunner_api_types::{
    CreateJobRequest, ErrorBody, ErrorCode, JobEventListResponse, JobEventResponse, JobEventsQuery,
    JobFailureResponse, JobListResponse, JobResponse, JobStepResponse, JobSummaryResponse,
    JobWorkflowResponse, ListJobsQuery,
};
use voidrunner_store::{Job, JobEventRecord, JobStatus, JobStep, Scope, StoreError};

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::executions::handlers::read_scope;
use crate::executions::logs::encode_data;
use crate::extract::json_body_with_limit;
use crate::jobs::artifacts::artifact_response;
use crate::jobs::{JobPath, input};

/// Default and largest page of `GET /api/v1/jobs`.
const LIST_DEFAULT: u32 = 20;
const LIST_MAX: u32 = 100;
/// Default and largest page of `GET /api/v1/jobs/{id}/events`.
const EVENTS_DEFAULT: u32 = 500;
const EVENTS_MAX: u32 = 1000;

/// A stored event as JSON.
pub(crate) fn event_response(e: JobEventRecord) -> JobEventResponse {
    let (data, encoding) = encode_data(e.data);
    JobEventResponse {
        seq: e.seq,
        attempt: e.attempt,
        step: e.step,
        stream: e.stream.as_str().to_owned(),
        data,
        encoding,
        created_at: e.created_at,
    }
}

fn step_response(s: JobStep) -> JobStepResponse {
    JobStepResponse {
        idx: s.idx,
        name: s.name,
        state: s.state.as_str().to_owned(),
        exit_code: s.exit_code,
        detail: s.detail,
        started_at: s.started_at,
        finished_at: s.finished_at,
        wall_ms: s.wall_ms,
        cpu_ms: s.cpu_ms,
        peak_memory_bytes: s.peak_memory_bytes,
    }
}

/// The job with its steps and artifacts.
async fn job_response(ctx: &ApiContext, scope: Scope, job: Job) -> ApiResult<JobResponse> {
    let steps = ctx.store().job_steps(scope, job.id).await?;
    let artifacts = ctx.store().job_artifacts(scope, job.id).await?;
    Ok(JobResponse {
        artifacts: artifacts
            .into_iter()
            .map(|a| artifact_response(&job, a))
            .collect(),
        steps: steps.into_iter().map(step_response).collect(),
        id: job.id.as_uuid(),
        name: job.name,
        status: job.status.as_str().to_owned(),
        priority: job.priority,
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        has_tarball: job.has_tarball,
        definition: job.definition,
        failures: job
            .failures
            .into_iter()
            .map(|f| JobFailureResponse {
                phase: f.phase,
                reason: f.reason,
            })
            .collect(),
        outputs: job.outputs,
        request_id: job.request_id,
        last_error: job.last_error,
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        cancel_requested_at: job.cancel_requested_at,
        workflow: job.workflow.map(|w| JobWorkflowResponse {
            workflow_id: w.workflow_id.0,
            node: w.node,
        }),
    })
}

fn summary(job: Job) -> JobSummaryResponse {
    JobSummaryResponse {
        id: job.id.as_uuid(),
        name: job.name,
        status: job.status.as_str().to_owned(),
        priority: job.priority,
        attempt: job.attempt,
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
    }
}

/// Submits a job: validates the definition (every problem at once: `422` with `problems`),
/// applies the server's policy (no `copy` sources, `network` only where allowed), checks
/// and seals the secrets, stores the job and its archive. The job is `queued`.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs",
    security(("bearer" = [])),
    request_body = CreateJobRequest,
    responses(
        (status = 201, description = "Queued", body = JobResponse),
        (status = 413, description = "Body or archive too large (`field`: `tarball_base64` for the archive)", body = ErrorBody),
        (status = 422, description = "Invalid: `problems` lists every problem of the definition", body = ErrorBody),
        (status = 503, description = "Secrets sent but this node has no secrets key, or the store is down", body = ErrorBody),
    ))]
pub(crate) async fn create_job(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<(StatusCode, Json<JobResponse>)> {
    let body: CreateJobRequest =
        json_body_with_limit(req, ctx.settings().job_body_limit_bytes()).await?;
    let request_id = headers
        .get(crate::edge::middleware::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let now = voidrunner_store::now();
    let sub = input::submission(&ctx, auth.id, body, request_id, now)?;
    let id = sub.new.id;
    let job = ctx.store().create_job(sub.new, sub.sealed).await?;
    if let Some(tar) = sub.tarball
        && let Err(e) = ctx.store().put_job_blob(id, "source.tar", &tar, now).await
    {
        // Without its archive the job cannot run: cancel it rather than leave it queued.
        let _ = ctx
            .store()
            .request_job_cancel(Scope::Owner(auth.id), id, voidrunner_store::now())
            .await;
        return Err(e.into());
    }
    tracing::info!(job.id = %id, "created job {id}");
    let body = job_response(&ctx, Scope::Owner(auth.id), job).await?;
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    limit: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
}

pub(crate) fn query<T: serde::de::DeserializeOwned>(raw: Option<&str>) -> ApiResult<T> {
    serde_urlencoded::from_str(raw.unwrap_or_default()).map_err(|e| {
        let msg = e.to_string();
        let field = msg
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
            .unwrap_or("query")
            .to_owned();
        ApiError::invalid_query(&field, "unknown or duplicated query parameter")
    })
}

pub(crate) fn limit(raw: Option<&str>, default: u32, max: u32) -> ApiResult<u32> {
    match raw {
        None => Ok(default),
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::invalid_query("limit", format!("must be an integer 1–{max}"))),
    }
}

/// The page of a newest-first listing: `?limit=` (1–100, default 20), `?status=` (parsed by
/// `status`; `unknown` names what was expected in the 400) and `?cursor=` (decoded by
/// `cursor`). Every bad parameter is a `400 invalid_query` naming it.
pub(crate) fn list_params<S, C>(
    raw: Option<&str>,
    status: impl Fn(&str) -> Option<S>,
    unknown: &'static str,
    cursor: impl Fn(&str) -> Option<C>,
) -> ApiResult<(u32, Option<S>, Option<C>)> {
    let q: RawList = query(raw)?;
    let limit = limit(q.limit.as_deref(), LIST_DEFAULT, LIST_MAX)?;
    let status = q
        .status
        .map(|s| status(&s).ok_or_else(|| ApiError::invalid_query("status", unknown)))
        .transpose()?;
    let after = q
        .cursor
        .filter(|s| !s.is_empty())
        .map(|s| cursor(&s).ok_or_else(|| ApiError::invalid_query("cursor", "invalid cursor")))
        .transpose()?;
    Ok((limit, status, after))
}

/// Lists the caller's jobs newest first (`?status=`, `?limit=`, `?cursor=`).
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    security(("bearer" = [])),
    params(ListJobsQuery),
    responses(
        (status = 200, description = "One page", body = JobListResponse),
        (status = 400, description = "Bad query parameter (`field` names it)", body = ErrorBody),
    ))]
pub(crate) async fn list_jobs(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<JobListResponse>> {
    let (limit, status, after) = list_params(
        raw.as_deref(),
        JobStatus::parse,
        "unknown job status",
        crate::cursor::decode_job,
    )?;
    let page = ctx
        .store()
        .list_jobs(Scope::Owner(auth.id), status, after, limit)
        .await?;
    Ok(Json(JobListResponse {
        items: page.items.into_iter().map(summary).collect(),
        next_cursor: page.next.as_ref().map(crate::cursor::encode_job),
    }))
}

/// Gets a job with its steps, artifacts, failures and outputs (the caller's; admins: any).
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = JobResponse),
        (status = 404, description = "No such job of yours", body = ErrorBody),
    ))]
pub(crate) async fn get_job(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    path: JobPath,
) -> ApiResult<Json<JobResponse>> {
    let scope = read_scope(&auth);
    let job = ctx.store().get_job(scope, path.id).await?;
    Ok(Json(job_response(&ctx, scope, job).await?))
}

/// Cancels one of the caller's jobs: a queued one is `cancelled` at once (200); a running
/// one gets a cancel request and its worker kills every step and runs cleanup (202).
#[utoipa::path(delete, path = "/api/v1/jobs/{id}", tag = "jobs",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancelled (it was still queued)", body = JobResponse),
        (status = 202, description = "Running: cancel requested", body = JobResponse),
        (status = 404, description = "No such job of yours", body = ErrorBody),
        (status = 409, description = "Already finished", body = ErrorBody),
    ))]
pub(crate) async fn cancel_job(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    path: JobPath,
) -> ApiResult<Response> {
    let scope = Scope::Owner(auth.id);
    let job = ctx
        .store()
        .request_job_cancel(scope, path.id, voidrunner_store::now())
        .await
        .map_err(|err| match err {
            StoreError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                "job already finished",
            ),
            other => other.into(),
        })?;
    tracing::info!(job.id = %path.id, status = job.status.as_str(), "cancel requested for job {}", path.id);
    let status = if job.status.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let location = format!("/api/v1/jobs/{}", path.id);
    let body = job_response(&ctx, scope, job).await?;
    let mut res = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    after: Option<String>,
    step: Option<String>,
    limit: Option<String>,
}

/// Parses a `step` filter (at most 200 characters, no NUL).
pub(crate) fn step_filter(step: Option<String>) -> ApiResult<Option<String>> {
    match step {
        Some(s) if s.is_empty() => Ok(None),
        Some(s) if s.chars().count() > 200 || s.contains('\0') => Err(ApiError::invalid_query(
            "step",
            "must be a step name (at most 200 characters)",
        )),
        other => Ok(other),
    }
}

/// A job's event log (`seq > after`, in order), optionally one step's: output as text or
/// base64 (`encoding`), status changes as JSON text, lifecycle phases.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "jobs",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Job id"), JobEventsQuery),
    responses(
        (status = 200, description = "Events", body = JobEventListResponse),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 404, description = "No such job of yours", body = ErrorBody),
    ))]
pub(crate) async fn list_job_events(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    path: JobPath,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<JobEventListResponse>> {
    let q: RawEvents = query(raw.as_deref())?;
    let after = match q.after.as_deref() {
        None => 0,
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| ApiError::invalid_query("after", "must be an event id"))?,
    };
    let limit = limit(q.limit.as_deref(), EVENTS_DEFAULT, EVENTS_MAX)?;
    let step = step_filter(q.step)?;
    ctx.store().get_job(read_scope(&auth), path.id).await?;
    let events = ctx.store().read_job_events(path.id, after, limit).await?;
    let next_after = events.last().map_or(after, |e| e.seq);
    let items = events
        .into_iter()
        .filter(|e| step.is_none() || e.step == step)
        .map(event_response)
        .collect();
    Ok(Json(JobEventListResponse { items, next_after }))
}

/// The JSON Schema (2020-12) of a job definition.
#[utoipa::path(get, path = "/api/v1/jobs/schema", tag = "jobs",
    responses((status = 200, description = "JSON Schema of a job definition", body = Object)))]
pub(crate) async fn get_job_schema() -> Json<serde_json::Value> {
    Json(voidrunner_jobs::json_schema().clone())
}
