//! The HTTP edge: body errors, path errors, rate limits, forwarded addresses, CORS.

use reqwest::Method;
use serde_json::{Value, json};
use voidrunner_api::RateLimitSettings;

use crate::helpers::{Backend, TestApp, assert_error, backend_tests};

backend_tests!(
    body_errors_use_the_envelope,
    oversized_body_is_413,
    bad_uuid_path_is_400,
    per_ip_rate_limit_is_429_with_retry_after,
    forwarded_for_is_trusted_only_from_proxies,
    per_user_rate_limit_is_429,
    cors_preflight_and_headers,
);

async fn raw(
    app: &TestApp,
    rb: reqwest::RequestBuilder,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let _ = app;
    let res = rb.send().await.expect("send");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, body)
}

async fn body_errors_use_the_envelope(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let post = || {
        app.http
            .post(app.url("/api/v1/tasks"))
            .bearer_auth(user.token())
    };
    let got = raw(
        &app,
        post()
            .header("content-type", "application/json")
            .body("{\"name\":"),
    )
    .await;
    assert_error(&got, 400, "malformed_json", None);
    let got = raw(
        &app,
        post().header("content-type", "application/json").body(""),
    )
    .await;
    assert_error(&got, 400, "malformed_json", None);
    let got = raw(
        &app,
        post()
            .header("content-type", "application/json")
            .body(r#"{"name":"t","language":"python","code":"1"} trailing"#),
    )
    .await;
    assert_error(&got, 400, "malformed_json", None);
    let got = raw(&app, post().header("content-type", "text/plain").body("{}")).await;
    assert_error(&got, 415, "unsupported_media_type", None);
    let got = raw(&app, post().body("{}")).await;
    assert_error(&got, 415, "unsupported_media_type", None);
    let got = raw(
        &app,
        post()
            .header("content-type", "application/json; charset=utf-8")
            .body(json!({"name": "t", "language": "python", "code": "1", "nope": 1}).to_string()),
    )
    .await;
    assert_error(&got, 422, "validation_failed", Some("nope"));
    // Same envelope on unauthenticated auth endpoints.
    let got = raw(
        &app,
        app.http
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body("not json"),
    )
    .await;
    assert_error(&got, 400, "malformed_json", None);
}

async fn oversized_body_is_413(b: Backend) {
    let app = b
        .spawn_with(|s| {
            s.max_code_bytes = 2048;
            s.body_overhead_bytes = 1024;
        })
        .await;
    let user = app.user().await;
    let fits = json!({"name": "t", "language": "python", "code": "x".repeat(2048)});
    let got = app
        .call(
            Method::POST,
            "/api/v1/tasks",
            Some(user.token()),
            Some(fits),
        )
        .await;
    assert_eq!(
        got.0, 201,
        "code at the cap plus JSON fits the limit: {}",
        got.2
    );
    let too_big = json!({"name": "t", "language": "python", "code": "x".repeat(4000)});
    let got = app
        .call(
            Method::POST,
            "/api/v1/tasks",
            Some(user.token()),
            Some(too_big),
        )
        .await;
    assert_error(&got, 413, "payload_too_large", None);
    // Also without Content-Length (chunked).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"{\"code\":\"".to_vec()),
        Ok(vec![b'x'; 5000]),
        Ok(b"\"}".to_vec()),
    ];
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let got = raw(
        &app,
        app.http
            .post(app.url("/api/v1/tasks"))
            .bearer_auth(user.token())
            .header("content-type", "application/json")
            .body(body),
    )
    .await;
    assert_error(&got, 413, "payload_too_large", None);
}

async fn bad_uuid_path_is_400(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    for (method, path) in [
        (Method::GET, "/api/v1/tasks/not-a-uuid"),
        (Method::PUT, "/api/v1/tasks/123"),
        (Method::DELETE, "/api/v1/tasks/zzz"),
        (Method::DELETE, "/api/v1/auth/api-keys/nope"),
    ] {
        let got = app
            .call(method, path, Some(user.token()), Some(json!({})))
            .await;
        assert_error(&got, 400, "invalid_path", Some("id"));
    }
}

fn limited(burst: u32) -> RateLimitSettings {
    RateLimitSettings {
        enabled: true,
        requests_per_sec: 0.01,
        burst,
    }
}

async fn per_ip_rate_limit_is_429_with_retry_after(b: Backend) {
    let app = b.spawn_with(|s| s.rate_limit_per_ip = limited(3)).await;
    for _ in 0..3 {
        let got = app.call(Method::GET, "/api/v1/nothing", None, None).await;
        assert_eq!(got.0, 404);
    }
    let got = app.call(Method::GET, "/api/v1/tasks", None, None).await;
    assert_error(&got, 429, "rate_limited", None);
    let retry: u64 = got.1["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=100).contains(&retry), "{retry}");
    assert!(got.1.contains_key("x-request-id"));
    // Probes are never limited.
    app.client.health().await.expect("health");
    app.client.ready().await.expect("ready");
}

async fn forwarded_for_is_trusted_only_from_proxies(b: Backend) {
    let send = |app: &TestApp, xff: &str| {
        let rb = app
            .http
            .get(app.url("/api/v1/nothing"))
            .header("x-forwarded-for", xff);
        async move { rb.send().await.expect("send").status().as_u16() }
    };
    // Not trusted: the header is ignored, so all requests share the peer's bucket.
    let app = b.spawn_with(|s| s.rate_limit_per_ip = limited(2)).await;
    assert_eq!(send(&app, "198.51.100.1").await, 404);
    assert_eq!(send(&app, "198.51.100.2").await, 404);
    assert_eq!(send(&app, "198.51.100.3").await, 429);

    // Trusted proxy (the test client): each forwarded client has its own bucket.
    let app = b
        .spawn_with(|s| {
            s.rate_limit_per_ip = limited(2);
            s.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")];
        })
        .await;
    for _ in 0..2 {
        assert_eq!(send(&app, "198.51.100.1").await, 404);
    }
    assert_eq!(send(&app, "198.51.100.1").await, 429);
    assert_eq!(send(&app, "198.51.100.2").await, 404, "another client");
    // A client cannot dodge the limit by prepending a fake address.
    assert_eq!(send(&app, "203.0.113.7, 198.51.100.1").await, 429);
}

async fn per_user_rate_limit_is_429(b: Backend) {
    let app = b.spawn_with(|s| s.rate_limit_per_user = limited(3)).await;
    let alice = app.user().await;
    let bob = app.user().await;
    for _ in 0..3 {
        alice.client.me().await.expect("within burst");
    }
    let got = app
        .call(Method::GET, "/api/v1/auth/me", Some(alice.token()), None)
        .await;
    assert_error(&got, 429, "rate_limited", None);
    assert!(got.1.contains_key("retry-after"));
    bob.client.me().await.expect("other users unaffected");
}

async fn cors_preflight_and_headers(b: Backend) {
    let app = b
        .spawn_with(|s| s.cors_allowed_origins = vec!["https://app.example.com".into()])
        .await;
    let res = app
        .http
        .request(Method::OPTIONS, app.url("/api/v1/tasks"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert!(res.status().is_success(), "{}", res.status());
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    let methods = h["access-control-allow-methods"].to_str().expect("ascii");
    assert!(methods.contains("POST"), "{methods}");
    let headers = h["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    assert!(headers.contains("authorization"), "{headers}");
    assert!(h.contains_key("x-request-id"));

    let res = app
        .http
        .get(app.url("/health"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("get");
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii");
    assert!(exposed.contains("x-request-id"), "{exposed}");

    let res = app
        .http
        .get(app.url("/health"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .expect("get");
    assert!(!res.headers().contains_key("access-control-allow-origin"));

    // Without configured origins no CORS headers are sent at all.
    let plain = b.spawn().await;
    let res = plain
        .http
        .get(plain.url("/health"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("get");
    assert!(!res.headers().contains_key("access-control-allow-origin"));
}
