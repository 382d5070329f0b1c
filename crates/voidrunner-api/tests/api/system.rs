//! Probes, request ids, JSON 404/405.

use reqwest::Method;

use crate::helpers::{Backend, assert_error, backend_tests};

backend_tests!(
    health_and_ready_answer,
    ready_is_503_envelope_when_store_is_down,
    request_id_is_generated_or_propagated,
    unknown_route_and_wrong_method_are_json,
);

async fn health_and_ready_answer(b: Backend) {
    let app = b.spawn().await;
    let health = app.client.health().await.expect("health");
    assert_eq!(health.status, "ok");
    let ready = app.client.ready().await.expect("ready");
    assert_eq!(ready.status, "ready");
    let expected = match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres(_) => "postgres",
    };
    assert_eq!(ready.store, expected);
}

async fn ready_is_503_envelope_when_store_is_down(b: Backend) {
    let mut app = b.spawn().await;
    app.close_store().await;
    let got = app.call(Method::GET, "/ready", None, None).await;
    assert_error(&got, 503, "unavailable", None);
    assert_eq!(
        got.2["error"]["message"], "service temporarily unavailable",
        "no internal detail leaks"
    );
    // Liveness does not depend on the store.
    app.client.health().await.expect("health stays up");
}

async fn request_id_is_generated_or_propagated(b: Backend) {
    let app = b.spawn().await;
    let res = app.http.get(app.url("/health")).send().await.expect("send");
    let generated = res.headers()["x-request-id"].to_str().expect("ascii");
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");

    let res = app
        .http
        .get(app.url("/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("send");
    assert_eq!(res.headers()["x-request-id"], "abc-123");

    // Unsafe ids are replaced, and error responses carry the id too.
    let res = app
        .http
        .get(app.url("/nope"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .expect("send");
    let id = res.headers()["x-request-id"].to_str().expect("ascii");
    assert_ne!(id, "bad id with spaces");
    assert!(uuid::Uuid::parse_str(id).is_ok());
}

async fn unknown_route_and_wrong_method_are_json(b: Backend) {
    let app = b.spawn().await;
    let got = app
        .call(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_error(&got, 404, "route_not_found", None);
    let got = app.call(Method::PATCH, "/api/v1/tasks", None, None).await;
    assert_error(&got, 405, "method_not_allowed", None);
    let got = app.call(Method::POST, "/health", None, None).await;
    assert_error(&got, 405, "method_not_allowed", None);
}
