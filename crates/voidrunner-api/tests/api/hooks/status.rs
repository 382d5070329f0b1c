//! Commit-status reporting against a local HTTP listener standing in for the git host.

use super::*;
use crate::helpers::backend_tests;

backend_tests!(
    commit_statuses_are_posted_pending_then_the_result,
    commit_statuses_to_a_private_address_are_refused_by_default,
);

/// One request the fake git host received: path, `Authorization`, JSON body.
type Seen = (String, String, Value);

/// A local HTTP listener standing in for the git host's status API.
async fn fake_host() -> (String, tokio::sync::mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Seen>();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let _ = tx.send((uri.path().to_owned(), auth, json));
                axum::http::StatusCode::CREATED
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/api"), rx)
}

async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(std::time::Duration::from_secs(60), rx.recv())
        .await
        .expect("a status within 60 s")
        .expect("listener alive")
}

async fn commit_statuses_are_posted_pending_then_the_result(b: Backend) {
    // The fake host listens on loopback, which only this setting allows.
    let app = b
        .spawn_with(|s| {
            s.hooks.git_protocols = vec!["file".into()];
            s.hooks.status_allow_private = true;
        })
        .await;
    let user = app.user().await;
    let repo = Repo::new();
    let (api_url, mut seen) = fake_host().await;
    let (s, _, v) = app
        .call(
            Method::POST,
            "/api/v1/repositories",
            Some(user.token()),
            Some(
                json!({"provider": "github", "full_name": "acme/app", "clone_url": repo.url,
                "webhook_secret": SECRET,
                "status_reporting": {"api_url": api_url, "token": "status-token-1"}}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status_api_url"], api_url.as_str());
    assert!(!v.to_string().contains("status-token-1"));
    let before = repo.head();
    let after = repo.commit_push(&[("src/app.txt", "v2\n")], "refs/heads/main");
    let (s, v) = github(
        &app,
        "push",
        "st-1",
        &push_body("acme/app", "refs/heads/main", &before, &after),
        SECRET,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let id: WorkflowId = v["workflow_ids"][0]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let (path, auth, body) = next(&mut seen).await;
    assert_eq!(path, format!("/api/repos/acme/app/statuses/{after}"));
    assert_eq!(auth, "Bearer status-token-1");
    assert_eq!(body["state"], "pending", "{body}");
    assert_eq!(body["context"], "voidrunner/main-build");
    // The node's job fails (driven through the store as a worker would): `failure`.
    let lease = crate::jobs::claim(&app).await;
    crate::jobs::complete(&app, &lease, voidrunner_store::JobStatus::Failed).await;
    voidrunner_jobs::scheduler::advance(&*app.store, id)
        .await
        .expect("advance");
    let (path, _, body) = next(&mut seen).await;
    assert_eq!(path, format!("/api/repos/acme/app/statuses/{after}"));
    assert_eq!(body["state"], "failure", "{body}");
}

/// The status API URL is a user's: by default a loopback (or private) target is refused, so
/// the server cannot be made to POST into its own network.
async fn commit_statuses_to_a_private_address_are_refused_by_default(b: Backend) {
    let app = spawn(&b).await;
    let user = app.user().await;
    let repo = Repo::new();
    let (api_url, mut seen) = fake_host().await;
    let (s, _, v) = app
        .call(
            Method::POST,
            "/api/v1/repositories",
            Some(user.token()),
            Some(
                json!({"provider": "github", "full_name": "acme/app", "clone_url": repo.url,
                "webhook_secret": SECRET,
                "status_reporting": {"api_url": api_url, "token": "status-token-1"}}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let before = repo.head();
    let after = repo.commit_push(&[("src/app.txt", "v2\n")], "refs/heads/main");
    let (s, v) = github(
        &app,
        "push",
        "st-private",
        &push_body("acme/app", "refs/heads/main", &before, &after),
        SECRET,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    // The workflow starts as usual; the pending status never reaches the loopback host.
    assert_eq!(v["workflow_ids"].as_array().map(Vec::len), Some(1), "{v}");
    let got = tokio::time::timeout(std::time::Duration::from_secs(2), seen.recv()).await;
    assert!(got.is_err(), "a status reached a loopback address: {got:?}");
}
