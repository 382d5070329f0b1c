//! Git repositories and their events (issue 10; see `docs/GIT.md`): registration with a
//! sealed webhook secret and sealed job secrets (`/api/v1/repositories`), and the hook
//! (`POST /api/v1/hooks/{source}`) that turns a signed push, tag or pull-request event into
//! the workflows of the repository's CI directory whose `on:` filter matches — reading the
//! workflow files and CI code only from a trusted commit of the registered clone URL.

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::ApiContext;

pub use reconcile::StatusReconciler;

mod event;
mod handlers;
mod hook;
mod input;
mod inspect;
mod mirror_gc;
mod reconcile;
mod start;
mod status;

/// Adds this module's documented routes.
pub(crate) fn routes(router: OpenApiRouter<ApiContext>) -> OpenApiRouter<ApiContext> {
    router
        .routes(routes!(
            handlers::create_repository,
            handlers::list_repositories
        ))
        .routes(routes!(
            handlers::get_repository,
            handlers::delete_repository
        ))
        .routes(routes!(handlers::update_repository_secrets))
        .routes(routes!(handlers::list_deliveries))
        .routes(routes!(hook::receive_hook))
}
