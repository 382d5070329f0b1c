//! The `workflows` endpoints (issue 10; see `docs/API.md`).

use utoipa_axum::router::OpenApiRouter;

use crate::context::ApiContext;

/// Adds this module's documented routes.
pub(crate) fn routes(router: OpenApiRouter<ApiContext>) -> OpenApiRouter<ApiContext> {
    router
}
