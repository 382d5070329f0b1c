//! The VoidRunner HTTP API as a library: the binary builds an [`ApiContext`] from its
//! configuration and a store, then calls [`serve`] with its own listener and shutdown signal
//! (tests do the same on port 0).
//!
//! Layout: `routes` is the one route table (also the OpenAPI source); `auth`, `tasks`,
//! `executions` and `system` hold handlers; `edge` holds request ids, logging, rate limits and CORS; `error`
//! is the one error envelope.

mod auth;
mod context;
mod cursor;
mod definition;
mod edge;
mod error;
mod executions;
mod extract;
mod jobs;
mod metrics;
mod repositories;
mod routes;
mod settings;
mod stats;
mod system;
mod tasks;
mod webhooks;
mod workflows;

use std::future::Future;
use std::net::SocketAddr;

pub use auth::{AuthMethod, AuthUser};
pub use context::{ApiContext, ContextError, JwtSecret};
pub use error::{ApiError, ApiResult};
pub use metrics::{MetricsSettings, MetricsToken};
pub use repositories::StatusReconciler;
pub use routes::openapi;
pub use settings::{ApiSettings, HookSettings, PasswordHashSettings, RateLimitSettings};
pub use system::OPENAPI_PATH;

/// The complete application router (routes, fallbacks, edge layers), with state applied.
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so per-IP limits see
/// the peer address; [`serve`] does that. A binary serving it another way also runs a
/// [`StatusReconciler`] (commit statuses are posted by it, not by the handlers; it also
/// removes idle git mirrors).
pub fn router(ctx: ApiContext) -> axum::Router {
    routes::build(ctx)
}

/// Serves the API on `listener` until `shutdown` resolves, then drains in-flight requests;
/// runs this node's [`StatusReconciler`] meanwhile (stopped before returning).
pub async fn serve(
    listener: tokio::net::TcpListener,
    ctx: ApiContext,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let statuses = StatusReconciler::start(ctx.clone());
    let app = router(ctx);
    use axum::serve::ListenerExt as _;
    // Small frames (SSE events, WebSocket answers) go out at once, not after Nagle's delay.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    statuses.stop().await;
    served
}
