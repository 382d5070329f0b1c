//! `/api/v1/workflows`: submission (YAML/JSON, job files from the CI files, every problem at
//! once — cycles and unknown dependencies naming the nodes — policy, secrets), reads scoped
//! to the owner, listing, cancel, re-run, and a workflow run to the end through the API with
//! its jobs driven through the store exactly as a job worker would.

use reqwest::Method;
use serde_json::{Value, json};
use voidrunner_store::{JobStatus, WorkflowId};

use crate::helpers::{Backend, TestApp, TestUser, assert_error, backend_tests, test_secret_box};
use crate::jobs::{claim, complete, job_id};

backend_tests!(
    create_from_yaml_and_json_with_job_files,
    cycle_and_unknown_dependency_are_refused_naming_the_nodes,
    policy_refuses_copy_tarball_and_network_in_nodes,
    secrets_are_checked_sealed_and_never_echoed,
    workflows_are_scoped_listed_and_paged,
    cancel_then_rerun_and_conflicts,
    runs_to_succeeded_through_the_api,
    rerun_of_a_failed_workflow_reruns_only_failed_and_skipped_nodes,
);

/// prepare → build → publish (build's job from the CI files).
const CHAIN: &str = "name: release\nvars: {channel: stable}\njobs:\n  prepare: {job: {name: prepare, steps: [{name: s, command: 'true'}]}}\n  build: {job_file: jobs/build.yaml, needs: [prepare]}\n  publish: {job: {name: publish, steps: [{name: s, command: 'true'}]}, depends_on: [build]}\n";
const BUILD_YAML: &str = "name: build\nsteps:\n  - {name: compile, command: make}\n";

async fn submit(app: &TestApp, user: &TestUser, body: Value) -> (u16, Value) {
    let (s, _, v) = app
        .call(
            Method::POST,
            "/api/v1/workflows",
            Some(user.token()),
            Some(body),
        )
        .await;
    (s.as_u16(), v)
}

fn chain_body() -> Value {
    json!({"definition": CHAIN, "files": {"jobs/build.yaml": BUILD_YAML}})
}

async fn create_chain(app: &TestApp, user: &TestUser) -> Value {
    let (s, v) = submit(app, user, chain_body()).await;
    assert_eq!(s, 201, "{v}");
    v
}

async fn get(app: &TestApp, user: &TestUser, path: &str) -> (u16, Value) {
    let (s, _, v) = app.call(Method::GET, path, Some(user.token()), None).await;
    (s.as_u16(), v)
}

async fn post(app: &TestApp, user: &TestUser, path: &str) -> (u16, Value) {
    let (s, _, v) = app.call(Method::POST, path, Some(user.token()), None).await;
    (s.as_u16(), v)
}

fn node<'a>(w: &'a Value, name: &str) -> &'a Value {
    w["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("node {name} in {w}"))
}

fn problem_paths(v: &Value) -> Vec<String> {
    v["error"]["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("problems in {v}"))
        .iter()
        .map(|p| p["path"].as_str().expect("path").to_owned())
        .collect()
}

/// One scheduler pass, as the background scheduler would run after a job finished.
async fn advance(app: &TestApp, id: &str) -> String {
    let id: WorkflowId = id.parse().expect("workflow id");
    voidrunner_jobs::scheduler::advance(app.store.as_ref(), id)
        .await
        .expect("advance")
        .as_str()
        .to_owned()
}

async fn create_from_yaml_and_json_with_job_files(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let (s, h, w) = app
        .call(
            Method::POST,
            "/api/v1/workflows",
            Some(user.token()),
            Some(chain_body()),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    assert_eq!(w["request_id"], Value::Null, "not a wire field");
    assert!(h.contains_key("x-request-id"));
    assert_eq!(w["name"], "release");
    assert_eq!(w["status"], "running");
    assert_eq!(
        (w["run"].as_u64(), w["trusted"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(w["vars"]["channel"], "stable");
    assert_eq!(w["origin"]["kind"], "api");
    assert_eq!(w["files"], json!(["jobs/build.yaml"]), "paths only");
    assert!(!w.to_string().contains("compile"), "no file contents: {w}");
    // The ready node was started at once; the others wait.
    let prepare = node(&w, "prepare");
    assert_eq!(prepare["status"], "queued", "{w}");
    let job = prepare["job_id"].as_str().expect("job id").to_owned();
    assert_eq!(node(&w, "build")["status"], "pending");
    assert_eq!(node(&w, "build")["depends_on"], json!(["prepare"]));
    assert_eq!(node(&w, "publish")["condition"], "all_success");
    // The node's job shows where it belongs.
    let (s, j) = get(&app, &user, &format!("/api/v1/jobs/{job}")).await;
    assert_eq!(s, 200, "{j}");
    assert_eq!(j["workflow"]["workflow_id"], w["id"]);
    assert_eq!(j["workflow"]["node"], "prepare");
    // A job on its own has no workflow.
    let (_, plain) = {
        let (s, _, v) = app
            .call(
                Method::POST,
                "/api/v1/jobs",
                Some(user.token()),
                Some(json!({"definition": crate::jobs::TWO_STEPS})),
            )
            .await;
        (s, v)
    };
    assert_eq!(plain["workflow"], Value::Null, "{plain}");

    // The same as a JSON object, with vars overriding the definition's; build's job file
    // is found under jobs/ by its bare name; fan-out expands.
    let obj = json!({"name": "obj", "vars": {"channel": "stable"}, "jobs": {
        "build": {"job_file": "build.yaml", "for_each": ["a", "b"]},
        "ship": {"job": {"name": "ship", "steps": [{"name": "s", "command": "true"}]},
                 "needs": ["build"]}}});
    let (s, w) = submit(
        &app,
        &user,
        json!({"definition": obj, "files": {"jobs/build.yaml": BUILD_YAML},
               "vars": {"channel": "beta"}}),
    )
    .await;
    assert_eq!(s, 201, "{w}");
    assert_eq!(w["vars"]["channel"], "beta");
    let names: Vec<&str> = w["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names.contains(&"build[0]") && names.contains(&"build[1]"),
        "{names:?}"
    );
    assert_eq!(node(&w, "build[1]")["group"], "build");
    assert_eq!(
        node(&w, "ship")["depends_on"],
        json!(["build[0]", "build[1]"])
    );

    // A missing job file is a 422 naming the node's job_file.
    let (s, v) = submit(&app, &user, json!({"definition": CHAIN})).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["field"], "definition.jobs.build.job_file");
    // An invalid job file says where in it.
    let (s, v) = submit(
        &app,
        &user,
        json!({"definition": CHAIN, "files": {"jobs/build.yaml": "name: b\nsteps: 3\n"}}),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["field"], "definition.jobs.build.job_file");
    assert!(v.to_string().contains("jobs/build.yaml"), "{v}");
    // Not a definition at all; unknown body field; oversized file.
    let (s, v) = submit(&app, &user, json!({"definition": 5})).await;
    assert_eq!((s, v["error"]["field"].as_str()), (422, Some("definition")));
    let (s, _) = submit(&app, &user, json!({"definition": CHAIN, "bogus": 1})).await;
    assert_eq!(s, 422);
    let big = "x".repeat(300 * 1024);
    let (s, v) = submit(
        &app,
        &user,
        json!({"definition": CHAIN, "files": {"jobs/build.yaml": big}}),
    )
    .await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["error"]["field"], "files.jobs/build.yaml");
    // The schema is published.
    let (s, _, schema) = app
        .call(Method::GET, "/api/v1/workflows/schema", None, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        schema["$id"],
        "https://voidrunner.dev/schemas/workflow.json"
    );
}

async fn cycle_and_unknown_dependency_are_refused_naming_the_nodes(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let def = "name: bad\njobs:\n  a: {job_file: a.yaml, depends_on: [b]}\n  b: {job_file: b.yaml, depends_on: [a]}\n  c: {job_file: c.yaml, depends_on: [ghost]}\n";
    let (s, v) = submit(&app, &user, json!({"definition": def})).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "validation_failed");
    let problems = v["error"]["problems"].as_array().expect("problems");
    assert_eq!(v["error"]["field"], problems[0]["path"]);
    let cycle = problems
        .iter()
        .find(|p| p["message"].as_str().is_some_and(|m| m.contains("cycle")))
        .unwrap_or_else(|| panic!("a cycle problem in {v}"));
    let msg = cycle["message"].as_str().expect("message");
    assert!(msg.contains("a → b → a"), "names the nodes: {msg}");
    assert_eq!(cycle["path"], "definition.jobs.a.depends_on");
    let unknown = problems
        .iter()
        .find(|p| p["path"] == "definition.jobs.c.depends_on[0]")
        .unwrap_or_else(|| panic!("the unknown dependency in {v}"));
    assert!(
        unknown["message"]
            .as_str()
            .expect("message")
            .contains("\"ghost\""),
        "{unknown}"
    );
    // Nothing was stored.
    let (_, list) = get(&app, &user, "/api/v1/workflows").await;
    assert_eq!(list["items"], json!([]), "{list}");
}

async fn policy_refuses_copy_tarball_and_network_in_nodes(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let def = "name: p\njobs:\n  copy: {job: {name: c, source: {type: copy, path: /etc}, steps: [{name: a, command: x}]}}\n  tar: {job_file: tar.yaml}\n  net: {job: {name: n, network: true, steps: [{name: a, command: x}]}}\n";
    let files =
        json!({"tar.yaml": "name: t\nsource: {type: tarball}\nsteps: [{name: a, command: x}]\n"});
    let (s, v) = submit(&app, &user, json!({"definition": def, "files": files})).await;
    assert_eq!(s, 422, "{v}");
    let mut paths = problem_paths(&v);
    paths.sort();
    assert_eq!(
        paths,
        [
            "definition.jobs.copy.job.source",
            "definition.jobs.net.job.network",
            "definition.jobs.tar.job.source",
        ]
    );
}

async fn secrets_are_checked_sealed_and_never_echoed(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let def = "name: s\njobs:\n  deploy: {job: {name: d, secrets: [DEPLOY_TOKEN], steps: [{name: a, command: x}]}}\n";
    let value = "s3cr3t-value-never-echoed";
    let (s, v) = submit(&app, &user, json!({"definition": def})).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("secrets.DEPLOY_TOKEN")),
        "{v}"
    );
    let short = json!({"definition": def, "secrets": {"DEPLOY_TOKEN": "abc"}});
    let (s, v) = submit(&app, &user, short).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("secrets.DEPLOY_TOKEN"))
    );
    assert!(!v.to_string().contains("\"abc\""), "{v}");
    let ok = json!({"definition": def, "secrets": {"DEPLOY_TOKEN": value, "LATER": value}});
    let (s, w) = submit(&app, &user, ok).await;
    assert_eq!(s, 201, "{w}");
    assert!(!w.to_string().contains(value), "never echoed: {w}");
    let id = w["id"].as_str().expect("id");
    let (_, got) = get(&app, &user, &format!("/api/v1/workflows/{id}")).await;
    assert!(!got.to_string().contains(value), "never read back: {got}");
    let (_, list) = get(&app, &user, "/api/v1/workflows").await;
    assert!(!list.to_string().contains(value), "{list}");
    // Sealed, bound to "<workflow id>/<NAME>".
    let wid: WorkflowId = id.parse().expect("id");
    let sealed = app.store.workflow_secrets(wid).await.expect("secrets");
    assert_eq!(sealed.len(), 2);
    let ct = &sealed["DEPLOY_TOKEN"];
    assert!(!ct.windows(value.len()).any(|w| w == value.as_bytes()));
    let opened = test_secret_box()
        .open_with_context(ct, format!("{id}/DEPLOY_TOKEN").as_bytes())
        .expect("opens with its context");
    assert_eq!(&opened[..], value.as_bytes());
    assert!(
        test_secret_box()
            .open_with_context(ct, format!("{id}/LATER").as_bytes())
            .is_err()
    );
}

async fn workflows_are_scoped_listed_and_paged(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let other = app.user().await;
    let first = create_chain(&app, &user).await;
    let second = create_chain(&app, &user).await;
    let id = first["id"].as_str().expect("id");
    // Another user's workflow does not exist for them.
    for path in [
        format!("/api/v1/workflows/{id}"),
        format!("/api/v1/workflows/{id}/cancel"),
        format!("/api/v1/workflows/{id}/rerun"),
    ] {
        let method = if path.ends_with(id) {
            Method::GET
        } else {
            Method::POST
        };
        let got = app.call(method, &path, Some(other.token()), None).await;
        assert_error(&got, 404, "not_found", None);
    }
    let (_, theirs) = get(&app, &other, "/api/v1/workflows").await;
    assert_eq!(theirs["items"], json!([]));
    let bad = app
        .call(
            Method::GET,
            "/api/v1/workflows/not-a-uuid",
            Some(user.token()),
            None,
        )
        .await;
    assert_error(&bad, 400, "invalid_path", Some("id"));
    // Newest first, one per page.
    let (s, page) = get(&app, &user, "/api/v1/workflows?limit=1").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["items"][0]["id"], second["id"]);
    assert!(page["items"][0].get("nodes").is_none(), "no nodes in lists");
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let (_, next) = get(
        &app,
        &user,
        &format!("/api/v1/workflows?limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(next["items"][0]["id"], first["id"]);
    assert_eq!(next["next_cursor"], Value::Null);
    // Status filter and bad queries.
    let (_, running) = get(&app, &user, "/api/v1/workflows?status=running").await;
    assert_eq!(running["items"].as_array().map(Vec::len), Some(2));
    let (_, done) = get(&app, &user, "/api/v1/workflows?status=succeeded").await;
    assert_eq!(done["items"], json!([]));
    for (q, field) in [
        ("status=bogus", "status"),
        ("limit=0", "limit"),
        ("cursor=zzz", "cursor"),
        ("colour=red", "colour"),
    ] {
        let got = app
            .call(
                Method::GET,
                &format!("/api/v1/workflows?{q}"),
                Some(user.token()),
                None,
            )
            .await;
        assert_error(&got, 400, "invalid_query", Some(field));
    }
}

async fn cancel_then_rerun_and_conflicts(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let w = create_chain(&app, &user).await;
    let id = w["id"].as_str().expect("id").to_owned();
    let base = format!("/api/v1/workflows/{id}");
    // A running workflow cannot be re-run.
    let got = app
        .call(
            Method::POST,
            &format!("{base}/rerun"),
            Some(user.token()),
            None,
        )
        .await;
    assert_error(&got, 409, "conflict", None);
    // The first node's job is running when the cancel comes.
    let lease = claim(&app).await;
    let first_job = node(&w, "prepare")["job_id"].clone();
    assert_eq!(Value::String(lease.job_id.to_string()), first_job);
    let (s, h, c) = app
        .call(
            Method::POST,
            &format!("{base}/cancel"),
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(s, 202, "{c}");
    assert_eq!(h["location"], base.as_str());
    assert!(c["cancel_requested_at"].is_string(), "{c}");
    assert_eq!(node(&c, "build")["status"], "skipped");
    assert_eq!(node(&c, "publish")["status"], "skipped");
    let (_, j) = get(
        &app,
        &user,
        &format!("/api/v1/jobs/{}", first_job.as_str().expect("job")),
    )
    .await;
    assert!(
        j["cancel_requested_at"].is_string(),
        "the running job is cancelled: {j}"
    );
    // Its worker finishes it cancelled; the workflow is then cancelled.
    complete(&app, &lease, JobStatus::Cancelled).await;
    assert_eq!(advance(&app, &id).await, "cancelled");
    let again = app
        .call(
            Method::POST,
            &format!("{base}/cancel"),
            Some(user.token()),
            None,
        )
        .await;
    assert_error(&again, 409, "conflict", None);
    // A re-run puts every node back and starts the first one with a new job.
    let (s, r) = post(&app, &user, &format!("{base}/rerun")).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "running");
    assert_eq!(r["run"], 2);
    assert_eq!(r["cancel_requested_at"], Value::Null);
    let prepare = node(&r, "prepare");
    assert_eq!(prepare["status"], "queued", "{r}");
    assert_eq!(prepare["previous_job_ids"], json!([first_job]));
    assert_ne!(prepare["job_id"], first_job);
    assert_eq!(node(&r, "build")["status"], "pending");
}

async fn runs_to_succeeded_through_the_api(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let w = create_chain(&app, &user).await;
    let id = w["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/workflows/{id}");
    for expected in ["prepare", "build", "publish"] {
        let lease = claim(&app).await;
        let (_, job) = get(&app, &user, &format!("/api/v1/jobs/{}", lease.job_id)).await;
        assert_eq!(job["workflow"]["node"], expected, "dependency order: {job}");
        let (_, now) = get(&app, &user, &path).await;
        assert_eq!(node(&now, expected)["status"], "running", "{now}");
        complete(&app, &lease, JobStatus::Succeeded).await;
        advance(&app, &id).await;
    }
    let (s, done) = get(&app, &user, &path).await;
    assert_eq!(s, 200);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["finished_at"].is_string());
    // Each job published `version`; the same value under one group each.
    assert_eq!(done["outputs"]["build.version"], "1.2", "{done}");
    for n in done["nodes"].as_array().expect("nodes") {
        assert_eq!(n["status"], "succeeded", "{n}");
        assert_eq!(n["outputs"]["version"], "1.2");
        let _ = job_id(n["job_id"].as_str().expect("job"));
    }
    let (_, list) = get(&app, &user, "/api/v1/workflows?status=succeeded").await;
    assert_eq!(list["items"][0]["id"], w["id"]);
    // A succeeded workflow cannot be re-run or cancelled.
    let got = app
        .call(
            Method::POST,
            &format!("{path}/rerun"),
            Some(user.token()),
            None,
        )
        .await;
    assert_error(&got, 409, "conflict", None);
    let got = app
        .call(
            Method::POST,
            &format!("{path}/cancel"),
            Some(user.token()),
            None,
        )
        .await;
    assert_error(&got, 409, "conflict", None);
}

async fn rerun_of_a_failed_workflow_reruns_only_failed_and_skipped_nodes(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let w = create_chain(&app, &user).await;
    let id = w["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/workflows/{id}");
    let lease = claim(&app).await;
    complete(&app, &lease, JobStatus::Succeeded).await;
    advance(&app, &id).await;
    let lease = claim(&app).await;
    complete(&app, &lease, JobStatus::Failed).await;
    assert_eq!(advance(&app, &id).await, "failed");
    let (_, failed) = get(&app, &user, &path).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(node(&failed, "build")["status"], "failed");
    let publish = node(&failed, "publish");
    assert_eq!(publish["status"], "skipped", "skips cascade: {failed}");
    assert!(publish["reason"].is_string(), "{publish}");
    let prepare_job = node(&failed, "prepare")["job_id"].clone();
    let build_job = node(&failed, "build")["job_id"].clone();

    let (s, r) = post(&app, &user, &format!("{path}/rerun")).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["status"].as_str(), r["run"].as_u64()),
        (Some("running"), Some(2))
    );
    // The succeeded node keeps its job; the failed one starts again with a new job.
    assert_eq!(node(&r, "prepare")["status"], "succeeded");
    assert_eq!(node(&r, "prepare")["job_id"], prepare_job);
    assert_eq!(node(&r, "prepare")["previous_job_ids"], json!([]));
    let build = node(&r, "build");
    assert_eq!(build["status"], "queued", "{r}");
    assert_eq!(build["previous_job_ids"], json!([build_job]));
    assert_eq!(node(&r, "publish")["status"], "pending");
    assert_eq!(r["finished_at"], Value::Null);
    for expected in ["build", "publish"] {
        let lease = claim(&app).await;
        let (_, job) = get(&app, &user, &format!("/api/v1/jobs/{}", lease.job_id)).await;
        assert_eq!(job["workflow"]["node"], expected, "{job}");
        complete(&app, &lease, JobStatus::Succeeded).await;
        advance(&app, &id).await;
    }
    let (_, done) = get(&app, &user, &path).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["run"], 2);
}
