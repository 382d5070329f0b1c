//! Routing and header tests against the embedded tree (the real UI when it was built, the
//! placeholder otherwise: every assertion holds for both).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use http_body_util::BodyExt as _;
use sha2::{Digest as _, Sha256};
use tower::ServiceExt as _;

use super::*;

/// A stand-in API that answers every request with 418 and the path, so a test can tell
/// which side answered.
fn app() -> Router {
    let api = Router::new().fallback(|req: Request<Body>| async move {
        (
            StatusCode::IM_A_TEAPOT,
            format!("api {} {}", req.method(), req.uri().path()),
        )
    });
    with_ui(api)
}

async fn send(method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Body::empty()).expect("request");
    app().oneshot(req).await.expect("infallible")
}

async fn body(resp: Response) -> Vec<u8> {
    resp.into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec()
}

fn header_str(resp: &Response, name: header::HeaderName) -> &str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn root_serves_index_html_with_csp_and_no_cache() {
    let resp = send("GET", "/", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header_str(&resp, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(header_str(&resp, header::CACHE_CONTROL), "no-cache");
    let csp = header_str(&resp, header::CONTENT_SECURITY_POLICY).to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(
        !csp.contains("'unsafe-inline' 'self'") && !csp.contains("script-src 'self' 'unsafe"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = String::from_utf8(body(resp).await).expect("utf-8");
    assert!(html.contains("<html"), "{html}");
}

#[tokio::test]
async fn every_inline_script_is_allowed_by_its_hash() {
    let resp = send("GET", "/", &[]).await;
    let csp = header_str(&resp, header::CONTENT_SECURITY_POLICY).to_owned();
    let html = String::from_utf8(body(resp).await).expect("utf-8");
    let mut rest = html.as_str();
    let mut inline = 0;
    while let Some(i) = rest.find("<script") {
        rest = &rest[i..];
        let open = rest.find('>').expect("tag end");
        let close = rest.find("</script>").expect("script end");
        let script = &rest[open + 1..close];
        if !rest[..open].contains(" src=") && !script.is_empty() {
            inline += 1;
            let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script));
            assert!(
                csp.contains(&format!("'sha256-{hash}'")),
                "inline script not in CSP: {csp}"
            );
        }
        rest = &rest[close..];
    }
    if is_built() {
        assert!(inline >= 1, "SvelteKit's bootstrap script should be inline");
    }
}

#[tokio::test]
async fn client_side_routes_fall_back_to_index_html() {
    let index = body(send("GET", "/", &[]).await).await;
    for path in [
        "/tasks",
        "/tasks/0190c0de-0000-7000-8000-000000000000",
        "/login",
    ] {
        let resp = send("GET", path, &[]).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert!(header_str(&resp, header::CONTENT_SECURITY_POLICY).contains("script-src"));
        assert_eq!(body(resp).await, index, "{path}");
    }
}

#[tokio::test]
async fn api_paths_other_methods_and_missing_files_go_to_the_api() {
    let cases = [
        ("GET", "/api/v1/nope"),
        ("GET", "/api"),
        ("GET", "/health"),
        ("GET", "/ready"),
        ("GET", "/metrics"),
        ("POST", "/"),
        ("DELETE", "/tasks"),
        ("GET", "/_app/immutable/missing.js"),
        ("GET", "/missing.png"),
    ];
    for (method, path) in cases {
        let resp = send(method, path, &[]).await;
        assert_eq!(resp.status(), StatusCode::IM_A_TEAPOT, "{method} {path}");
        let text = String::from_utf8(body(resp).await).expect("utf-8");
        assert_eq!(text, format!("api {method} {path}"));
    }
}

#[tokio::test]
async fn etag_answers_not_modified() {
    let resp = send("GET", "/", &[]).await;
    let etag = header_str(&resp, header::ETAG).to_owned();
    assert!(etag.starts_with('"'), "{etag}");
    let again = send("GET", "/", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(body(again).await.is_empty());
    let other = send("GET", "/", &[("if-none-match", "\"other\"")]).await;
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn head_has_headers_and_no_body() {
    let resp = send("HEAD", "/tasks", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header_str(&resp, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert!(body(resp).await.is_empty());
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_gzipped_on_request() {
    let Some(asset) = table::ASSETS
        .iter()
        .find(|a| a.immutable && a.gzip.is_some())
    else {
        assert!(!is_built(), "a built UI has hashed, compressible assets");
        return;
    };
    let plain = send("GET", asset.path, &[]).await;
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(
        header_str(&plain, header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header_str(&plain, header::CONTENT_TYPE), asset.mime);
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    assert!(
        plain
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .is_none()
    );
    let plain_body = body(plain).await;
    assert_eq!(plain_body, asset.body);

    let gz = send("GET", asset.path, &[("accept-encoding", "br, gzip;q=0.8")]).await;
    assert_eq!(header_str(&gz, header::CONTENT_ENCODING), "gzip");
    assert_eq!(header_str(&gz, header::VARY), "accept-encoding");
    let packed = body(gz).await;
    assert!(packed.len() < plain_body.len());
    assert_eq!(&packed[..2], &[0x1f, 0x8b], "gzip magic");

    let refused = send("GET", asset.path, &[("accept-encoding", "gzip;q=0")]).await;
    assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());
}
