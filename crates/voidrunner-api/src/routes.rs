//! THE route table. Every route is registered through `utoipa_axum::routes!`, which reads the
//! handler's `#[utoipa::path]`, so the router and the OpenAPI document come from the same
//! list and cannot drift (a test also checks the served spec against the live router).

use axum::extract::DefaultBodyLimit;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{api_keys, handlers as auth};
use crate::context::ApiContext;
use crate::edge::middleware as edge;
use crate::executions::{
    admin, handlers as executions, logs, metrics as execution_metrics, stream, user_stream,
};
use crate::jobs::handlers as jobs;
use crate::system;
use crate::tasks::handlers as tasks;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "VoidRunner API",
        description = "Run untrusted code in a sandbox: accounts, API keys, tasks and executions.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts, sessions and API keys"),
        (name = "tasks", description = "Stored code and its run settings"),
        (name = "executions", description = "Runs of tasks and one-shot code: enqueue, wait, read, cancel"),
        (name = "jobs", description = "CI jobs: submit, follow steps and events, download artifacts, cancel"),
        (name = "workflows", description = "Workflows: graphs of CI jobs; submit, follow node states, re-run, cancel"),
        (name = "repositories", description = "Git repositories and their push / pull request events"),
        (name = "admin", description = "Operator endpoints (admins only)"),
        (name = "webhooks", description = "Signed callbacks of finished executions"),
        (name = "system", description = "Probes"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access JWT from login/refresh, or an API key (`vr_…`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The documented routes and the OpenAPI document built from them.
pub(crate) fn documented() -> (axum::Router<ApiContext>, utoipa::openapi::OpenApi) {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(system::check_health))
        .routes(routes!(system::check_ready))
        .routes(routes!(system::get_openapi))
        .routes(routes!(crate::metrics::get_metrics))
        .routes(routes!(auth::register_user))
        .routes(routes!(auth::log_in))
        .routes(routes!(auth::refresh_session))
        .routes(routes!(auth::log_out))
        .routes(routes!(auth::get_current_user))
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(api_keys::revoke_api_key))
        .routes(routes!(tasks::create_task, tasks::list_tasks))
        .routes(routes!(
            tasks::get_task,
            tasks::update_task,
            tasks::delete_task
        ))
        .routes(routes!(
            executions::create_task_execution,
            executions::list_task_executions
        ))
        .routes(routes!(
            executions::get_execution,
            executions::cancel_execution
        ))
        .routes(routes!(logs::get_execution_logs))
        .routes(routes!(execution_metrics::get_execution_metrics))
        .routes(routes!(crate::stats::get_stats))
        .routes(routes!(crate::webhooks::get_signing_secret))
        .routes(routes!(crate::webhooks::get_execution_webhook))
        .routes(routes!(stream::stream_execution))
        .routes(routes!(crate::executions::ws::execution_ws))
        .routes(routes!(user_stream::stream_my_executions))
        .routes(routes!(executions::run_code))
        .routes(routes!(executions::list_languages))
        .routes(routes!(admin::list_dead_letters))
        .routes(routes!(admin::requeue_dead_letter))
        .routes(routes!(jobs::create_job, jobs::list_jobs))
        .routes(routes!(jobs::get_job_schema))
        .routes(routes!(jobs::get_job, jobs::cancel_job))
        .routes(routes!(jobs::list_job_events))
        .routes(routes!(crate::jobs::stream::stream_job))
        .routes(routes!(crate::jobs::artifacts::download_job_artifact));
    let router = crate::workflows::routes(router);
    let router = crate::repositories::routes(router);
    let (router, mut spec) = router.split_for_parts();
    wildcards_as_parameters(&mut spec);
    add_common_errors(&mut spec);
    (router, spec)
}

/// axum spells a catch-all segment `{*path}`; OpenAPI knows only `{path}`.
fn wildcards_as_parameters(spec: &mut utoipa::openapi::OpenApi) {
    let paths = std::mem::take(&mut spec.paths.paths);
    spec.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
}

/// Documents the edge errors every operation can return (they come from extractors and
/// middleware, not from the handler's own `responses`).
fn add_common_errors(spec: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in &mut spec.paths.paths {
        let has_id = path.contains("{id}");
        let ops = [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.delete.as_mut(),
        ];
        for op in ops.into_iter().flatten() {
            let secured = op.security.is_some();
            let has_body = op.request_body.is_some();
            let mut add = |status: &str, description: &str| {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description).into());
            };
            add("429", "Rate limit exceeded; see `Retry-After`");
            add("500", "Internal error (details only in the server log)");
            if secured {
                add("401", "Missing or invalid credentials");
            }
            match (has_body, has_id) {
                (true, true) => add("400", "Malformed JSON, or the path id is not a UUID"),
                (true, false) => add("400", "Malformed JSON"),
                (false, true) => add("400", "The path id is not a UUID"),
                (false, false) => {}
            }
            if has_body {
                add("413", "Body too large");
                add("415", "Body is not `application/json`");
                add(
                    "422",
                    "A field is invalid, missing or unknown (`field` names it)",
                );
            }
        }
    }
}

/// The OpenAPI document (3.1) of this server.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().1
}

/// Builds the full application: routes, the spec route, fallbacks and the edge layers.
pub(crate) fn build(ctx: ApiContext) -> axum::Router {
    let (routes, _) = documented();
    let body_limit = ctx.settings().body_limit_bytes();
    let cors = crate::edge::cors::layer(&ctx.settings().cors_allowed_origins);
    let mut app = routes
        .fallback(edge::route_not_found)
        .method_not_allowed_fallback(edge::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            edge::limit_per_ip,
        ));
    if let Some(cors) = cors {
        app = app.layer(cors);
    }
    app.layer(axum::middleware::from_fn_with_state(
        ctx.clone(),
        crate::metrics::record_request,
    ))
    .layer(axum::middleware::from_fn(edge::trace_request))
    .with_state(ctx)
}
