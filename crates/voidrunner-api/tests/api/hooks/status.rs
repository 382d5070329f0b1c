//! Commit-status reporting against a local HTTP listener standing in for the git host: the
//! durable reconciler posts each transition once (also with two API nodes on one database),
//! retries a failing host with backoff, gives up (and keeps the row) on a refusal for good,
//! and a restart of the node loses nothing (`restart`); `/metrics` counts each post by outcome.

use std::sync::{Arc, Mutex};

use voidrunner_store::{StatusReport, Store, WorkflowState};

use super::*;
use crate::helpers::backend_tests;

mod restart;

backend_tests!(
    commit_statuses_are_posted_pending_then_the_result,
    commit_statuses_to_a_private_address_are_refused_by_default,
    each_transition_is_posted_once_by_two_nodes,
    a_failing_status_host_still_gets_the_final_status,
    a_status_refused_for_good_is_given_up_and_kept,
);

/// One request the fake git host received: path, `Authorization`, JSON body, and the HTTP
/// status it answered.
type Seen = (String, String, Value, u16);

/// A local HTTP listener standing in for the git host's status API; answers 201.
pub(super) async fn fake_host() -> (String, tokio::sync::mpsc::UnboundedReceiver<Seen>) {
    fake_host_answering(Vec::new()).await
}

/// Like [`fake_host`], but answers the first requests with `first` (one code each).
pub(super) async fn fake_host_answering(
    first: Vec<u16>,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<Seen>) {
    fake_host_with(first, std::time::Duration::ZERO).await
}

/// Like [`fake_host_answering`], each answer given after `delay` (a slow host keeps a post
/// in flight while other nodes look for work).
pub(super) async fn fake_host_with(
    first: Vec<u16>,
    delay: std::time::Duration,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Seen>();
    let plan = Arc::new(Mutex::new(first.into_iter()));
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (tx, plan) = (tx.clone(), plan.clone());
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let code = plan.lock().expect("plan").next().unwrap_or(201);
                let _ = tx.send((uri.path().to_owned(), auth, json, code));
                tokio::time::sleep(delay).await;
                axum::http::StatusCode::from_u16(code).expect("status code")
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

pub(super) async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(std::time::Duration::from_secs(60), rx.recv())
        .await
        .expect("a status within 60 s")
        .expect("listener alive")
}

/// Waits until the stored status of `id` shows `posted` (or `gave_up` when `given_up`).
pub(super) async fn settled(
    store: &dyn Store,
    id: WorkflowId,
    want: (WorkflowState, u32),
    given_up: bool,
) -> voidrunner_store::CommitStatus {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let row = store
            .get_commit_status(id)
            .await
            .expect("read status")
            .expect("a status row");
        let got = if given_up { row.gave_up } else { row.posted };
        if got == Some(want) && row.claimed_by.is_none() {
            return row;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "status of {id} not settled at {want:?}: {row:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The node's `voidrunner_commit_status_posts_total{outcome}` as `/metrics` shows it (0 when
/// the series does not exist yet). Recorded before the outcome is stored, so after
/// [`settled`] it counts that post.
pub(super) async fn status_posts(app: &TestApp, outcome: &str) -> f64 {
    let res = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(res.status().as_u16(), 200);
    let text = res.text().await.expect("body");
    let s = voidrunner_metrics::testing::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let posts = s.value(
        "voidrunner_commit_status_posts_total",
        &[("outcome", outcome)],
    );
    let timed = s.value("voidrunner_commit_status_post_duration_seconds", &[]);
    // Every counted post is timed once.
    if posts.is_some() {
        assert!(timed.is_some_and(|n| n >= 1.0), "{text}");
    }
    posts.unwrap_or(0.0)
}

/// Nothing is due: a probe claim (far in the future, so no backoff hides a row) gets none.
async fn nothing_due(store: &dyn Store) -> Vec<StatusReport> {
    let later = voidrunner_store::now() + chrono::Duration::days(1);
    store
        .claim_status_reports("probe", later, std::time::Duration::from_secs(1), 10)
        .await
        .expect("probe claim")
}

/// Registers `acme/app` with status reporting to `api_url`, pushes a commit to main and
/// answers the started workflow and the commit.
async fn push_with_statuses(app: &TestApp, repo: &Repo, api_url: &str) -> (WorkflowId, String) {
    let user = app.user().await;
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
    let v = github_push(app, "st-push", "refs/heads/main", &before, &after).await;
    assert_eq!(v["workflow_ids"].as_array().map(Vec::len), Some(1), "{v}");
    let id = v["workflow_ids"][0]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    (id, after)
}

/// Finishes the workflow's one job with `status` as a worker would, then lets the
/// scheduler decide.
async fn finish_job(app: &TestApp, id: WorkflowId, status: voidrunner_store::JobStatus) {
    let lease = crate::jobs::claim(app).await;
    crate::jobs::complete(app, &lease, status).await;
    voidrunner_jobs::scheduler::advance(&*app.store, id)
        .await
        .expect("advance");
}

/// Settings of a node that may post statuses to the loopback fake host.
fn allow_loopback(s: &mut voidrunner_api::ApiSettings) {
    s.hooks.git_protocols = vec!["file".into()];
    s.hooks.status_allow_private = true;
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
    let v = github_push(&app, "st-1", "refs/heads/main", &before, &after).await;
    let id: WorkflowId = v["workflow_ids"][0]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let (path, auth, body, _) = next(&mut seen).await;
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
    let (path, _, body, _) = next(&mut seen).await;
    assert_eq!(path, format!("/api/repos/acme/app/statuses/{after}"));
    assert_eq!(body["state"], "failure", "{body}");
}

/// The status API URL is a user's: by default a loopback (or private) target is refused, so
/// the server cannot be made to POST into its own network.
async fn commit_statuses_to_a_private_address_are_refused_by_default(b: Backend) {
    let app = spawn(&b).await;
    let repo = Repo::new();
    let (api_url, mut seen) = fake_host().await;
    // The workflow starts as usual (exactly one); the pending status never reaches the
    // loopback host.
    push_with_statuses(&app, &repo, &api_url).await;
    let got = tokio::time::timeout(std::time::Duration::from_secs(2), seen.recv()).await;
    assert!(got.is_err(), "a status reached a loopback address: {got:?}");
}

/// Two API nodes (two reconcilers) on one database: `pending` then `success`, each posted
/// exactly once; afterwards nothing is due. The host answers each post after 1.5 s, so the
/// other node's once-a-second pass always runs while a post is in flight (and must find the
/// row claimed).
async fn each_transition_is_posted_once_by_two_nodes(b: Backend) {
    let app = b.spawn_with(allow_loopback).await;
    let second = restart::Node::start(app.store.clone(), app.settings.clone()).await;
    let repo = Repo::new();
    let slow = std::time::Duration::from_millis(1500);
    let (api_url, mut seen) = fake_host_with(Vec::new(), slow).await;
    let (id, after) = push_with_statuses(&app, &repo, &api_url).await;
    let (path, _, body, _) = next(&mut seen).await;
    assert_eq!(path, format!("/api/repos/acme/app/statuses/{after}"));
    assert_eq!(body["state"], "pending", "{body}");
    settled(&*app.store, id, (WorkflowState::Running, 1), false).await;
    finish_job(&app, id, voidrunner_store::JobStatus::Succeeded).await;
    let (_, _, body, _) = next(&mut seen).await;
    assert_eq!(body["state"], "success", "{body}");
    assert_eq!(body["context"], "voidrunner/main-build");
    let row = settled(&*app.store, id, (WorkflowState::Succeeded, 1), false).await;
    assert_eq!((row.attempts, row.gave_up, row.last_error), (0, None, None));
    // Every post happens under a claim that is finished before the row reads settled.
    assert_eq!(nothing_due(&*app.store).await, Vec::new());
    assert!(seen.try_recv().is_err(), "a transition was posted twice");
    second.stop().await;
}

/// The host fails twice (500, then 503): the reconciler retries with backoff, the pending
/// status arrives on the third try, and the final status after it.
async fn a_failing_status_host_still_gets_the_final_status(b: Backend) {
    let app = b.spawn_with(allow_loopback).await;
    let repo = Repo::new();
    let (api_url, mut seen) = fake_host_answering(vec![500, 503]).await;
    let (id, _) = push_with_statuses(&app, &repo, &api_url).await;
    for code in [500, 503, 201] {
        let (_, _, body, answered) = next(&mut seen).await;
        assert_eq!((body["state"].as_str(), answered), (Some("pending"), code));
    }
    let row = settled(&*app.store, id, (WorkflowState::Running, 1), false).await;
    assert_eq!((row.attempts, row.last_error), (0, None));
    assert_eq!(status_posts(&app, "retry").await, 2.0);
    assert_eq!(status_posts(&app, "posted").await, 1.0);
    finish_job(&app, id, voidrunner_store::JobStatus::Failed).await;
    let (_, _, body, answered) = next(&mut seen).await;
    assert_eq!((body["state"].as_str(), answered), (Some("failure"), 201));
    settled(&*app.store, id, (WorkflowState::Failed, 1), false).await;
    assert_eq!(status_posts(&app, "posted").await, 2.0);
    assert_eq!(status_posts(&app, "given_up").await, 0.0);
    assert!(seen.try_recv().is_err(), "a status was posted again");
}

/// A 4xx other than 429 is not retried: the transition is given up, the row kept with the
/// error; the next transition is tried afresh (and given up too).
async fn a_status_refused_for_good_is_given_up_and_kept(b: Backend) {
    let app = b.spawn_with(allow_loopback).await;
    let repo = Repo::new();
    let (api_url, mut seen) = fake_host_answering(vec![422, 422]).await;
    let (id, _) = push_with_statuses(&app, &repo, &api_url).await;
    let (_, _, body, answered) = next(&mut seen).await;
    assert_eq!((body["state"].as_str(), answered), (Some("pending"), 422));
    let row = settled(&*app.store, id, (WorkflowState::Running, 1), true).await;
    assert_eq!(row.posted, None);
    assert_eq!(status_posts(&app, "given_up").await, 1.0);
    assert!(
        row.last_error.as_deref().is_some_and(|e| e.contains("422")),
        "{row:?}"
    );
    assert_eq!(nothing_due(&*app.store).await, Vec::new());
    finish_job(&app, id, voidrunner_store::JobStatus::Succeeded).await;
    let (_, _, body, answered) = next(&mut seen).await;
    assert_eq!((body["state"].as_str(), answered), (Some("success"), 422));
    settled(&*app.store, id, (WorkflowState::Succeeded, 1), true).await;
    assert_eq!(nothing_due(&*app.store).await, Vec::new());
    assert!(seen.try_recv().is_err(), "a refused status was retried");
    assert_eq!(status_posts(&app, "given_up").await, 2.0);
    assert_eq!(status_posts(&app, "retry").await, 0.0);
    assert_eq!(status_posts(&app, "posted").await, 0.0);
}
