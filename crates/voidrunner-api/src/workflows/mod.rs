//! `/api/v1/workflows`: graphs of CI jobs (see `docs/WORKFLOWS.md`). Submission validates
//! the definition (every problem at once), instantiates its nodes and stores them; the
//! scheduler (`voidrunner_jobs::scheduler`) starts the nodes' jobs. Reads show the workflow
//! with its nodes' states; cancel and re-run are the owner's.

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use voidrunner_api_types::ErrorCode;
use voidrunner_store::WorkflowId;

use crate::context::ApiContext;
use crate::error::ApiError;

pub(crate) mod create;
pub(crate) mod handlers;

/// Adds this module's documented routes.
pub(crate) fn routes(router: OpenApiRouter<ApiContext>) -> OpenApiRouter<ApiContext> {
    router
        .routes(routes!(handlers::create_workflow, handlers::list_workflows))
        .routes(routes!(handlers::get_workflow_schema))
        .routes(routes!(handlers::get_workflow))
        .routes(routes!(handlers::cancel_workflow))
        .routes(routes!(handlers::rerun_workflow))
}

/// The `{id}` of a workflow route; `400 invalid_path` when it is not a UUID.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkflowPath {
    /// The workflow.
    pub id: WorkflowId,
}

impl<S: Send + Sync> FromRequestParts<S> for WorkflowPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidPath,
                "must be a UUID",
            )
            .with_field("id")
        };
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| bad())?;
        Ok(WorkflowPath {
            id: id.parse().map_err(|_| bad())?,
        })
    }
}
