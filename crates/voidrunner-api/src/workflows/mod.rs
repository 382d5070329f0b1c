//! `/api/v1/workflows`: graphs of CI jobs (see `docs/WORKFLOWS.md`). Submission validates
//! the definition (every problem at once), instantiates its nodes and stores them; the
//! scheduler (`voidrunner_jobs::scheduler`) starts the nodes' jobs. Reads show the workflow
//! with its nodes' states; cancel and re-run are the owner's.

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::ApiContext;

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
