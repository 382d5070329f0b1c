//! CI retention with the real binary (SQLite, an API-only node): with `[jobs]
//! retention_max_age_secs = 1`, a cancelled job disappears (404) and is counted in
//! `voidrunner_jobs_expired_total{kind="job"}`; a queued job and a running workflow (no
//! scheduler on this node, so it stays running) are kept however old they get.

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::time::Duration;

use common::{Api, cluster_env, spawn, wait_for};
use serde_json::json;

/// Submits a one-step job; its id.
fn submit_job(api: &Api, name: &str) -> String {
    let definition = json!({"name": name, "steps": [{"name": "a", "command": "true"}]});
    let (status, body) = api
        .post("/api/v1/jobs", &json!({"definition": definition}))
        .expect("submit job");
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

#[test]
fn finished_jobs_expire_and_running_work_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = cluster_env();
    env.push(("VOIDRUNNER_JOBS__RETENTION_MAX_AGE_SECS", "1".to_owned()));
    env.push(("VOIDRUNNER_JOBS__RETENTION_INTERVAL_SECS", "1".to_owned()));
    let mut node = spawn(
        dir.path(),
        &[
            "serve",
            "--workers",
            "0",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "data",
        ],
        &env,
    );
    let api = Api::register(&node.url, "retention@example.com");
    let cancelled = submit_job(&api, "cancelled");
    let queued = submit_job(&api, "queued");
    let inline = json!({"name": "a", "steps": [{"name": "a", "command": "true"}]});
    let workflow = json!({"name": "wf", "jobs": {"a": {"job": inline}}});
    let (status, body) = api
        .post("/api/v1/workflows", &json!({"definition": workflow}))
        .expect("submit workflow");
    assert_eq!(status, 201, "{body}");
    let workflow_id = body["id"].as_str().expect("id").to_owned();

    let res = reqwest::blocking::Client::new()
        .delete(format!("{}/api/v1/jobs/{cancelled}", api.base))
        .bearer_auth(&api.token)
        .send()
        .expect("cancel");
    assert!(res.status().is_success(), "cancel: {}", res.status());

    wait_for(
        Duration::from_secs(30),
        "the cancelled job to expire",
        || (api.get(&format!("/api/v1/jobs/{cancelled}")).0 == 404).then_some(()),
    );
    let metrics = reqwest::blocking::get(format!("{}/metrics", node.url))
        .expect("metrics")
        .text()
        .expect("text");
    assert!(
        metrics.contains("voidrunner_jobs_expired_total{kind=\"job\"} 1"),
        "{metrics}"
    );
    // Both were older than the max age at the pass that deleted the cancelled job.
    let (status, job) = api.get(&format!("/api/v1/jobs/{queued}"));
    assert_eq!((status, job["status"].as_str()), (200, Some("queued")));
    let (status, wf) = api.get(&format!("/api/v1/workflows/{workflow_id}"));
    assert_eq!((status, wf["status"].as_str()), (200, Some("running")));
    node.stop();
}
