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
    let allow = got.1["allow"].to_str().expect("ascii");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let got = app.call(Method::POST, "/health", None, None).await;
    assert_error(&got, 405, "method_not_allowed", None);
}

#[tokio::test]
async fn serve_stops_on_shutdown_signal() {
    let (store, _dir) = voidrunner_store_sqlite::testing::fresh_store().await;
    let ctx = voidrunner_api::ApiContext::new(
        std::sync::Arc::new(store),
        crate::helpers::test_settings(),
        voidrunner_api::JwtSecret::new(crate::helpers::SECRET.to_vec()),
    )
    .expect("context");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/health", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(voidrunner_api::serve(listener, ctx, async move {
        let _ = rx.await;
    }));
    let res = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
        .get(&url)
        .send()
        .await
        .expect("serving");
    assert_eq!(res.status(), 200);
    tx.send(()).expect("signal");
    server
        .await
        .expect("join")
        .expect("serve returns Ok after shutdown");
    assert!(reqwest::get(&url).await.is_err(), "listener closed");
}

#[tokio::test]
async fn context_rejects_unusable_settings() {
    use voidrunner_api::{ApiContext, ContextError, JwtSecret};
    let (store, _dir) = voidrunner_store_sqlite::testing::fresh_store().await;
    let store: std::sync::Arc<dyn voidrunner_store::Store> = std::sync::Arc::new(store);
    let good = crate::helpers::test_settings();
    let secret = || JwtSecret::new(crate::helpers::SECRET.to_vec());

    let weak = ApiContext::new(
        store.clone(),
        good.clone(),
        JwtSecret::new(b"short".to_vec()),
    );
    assert!(matches!(weak, Err(ContextError::WeakJwtSecret { len: 5 })));

    let mut s = good.clone();
    s.cors_allowed_origins = vec!["bad\norigin".into()];
    assert!(matches!(
        ApiContext::new(store.clone(), s, secret()),
        Err(ContextError::CorsOrigin { .. })
    ));

    let mut s = good.clone();
    s.limits.defaults.memory_mb = s.limits.maxima.memory_mb + 1;
    assert!(matches!(
        ApiContext::new(store.clone(), s, secret()),
        Err(ContextError::Limits(_))
    ));

    let mut s = good.clone();
    s.rate_limit_per_ip = voidrunner_api::RateLimitSettings {
        enabled: true,
        requests_per_sec: 0.0,
        burst: 1,
    };
    assert!(matches!(
        ApiContext::new(store.clone(), s, secret()),
        Err(ContextError::RateLimit { .. })
    ));

    assert!(ApiContext::new(store, good, secret()).is_ok());
}
