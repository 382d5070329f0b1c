//! `/api/v1/jobs`: submission (validation listing every problem, policy, secrets, archive),
//! reads scoped to the owner, listing, cancel, the event log (JSON and SSE) and artifact
//! downloads. The queue is driven through the store exactly as a job worker would.

use std::collections::BTreeMap;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use voidrunner_store::{
    JobId, JobLease, JobResult, JobStatus, JobStream, NewJobEvent, Scope, StepState, StepUpdate,
};

use crate::helpers::{Backend, TestApp, TestUser, assert_error, backend_tests, test_secret_box};

backend_tests!(
    definition_problems_are_listed_at_once,
    policy_refuses_copy_sources_and_network,
    secrets_are_required_checked_sealed_and_never_echoed,
    tarball_round_trips_into_the_blob,
    jobs_are_scoped_listed_and_filtered,
);

pub(crate) const TWO_STEPS: &str = "name: build-and-test\nsteps:\n  - {name: build, command: 'make'}\n  - {name: test, command: './t', depends_on: [build]}\n";

pub(crate) async fn submit(app: &TestApp, user: &TestUser, body: Value) -> (u16, Value) {
    let (s, _, v) = app
        .call(Method::POST, "/api/v1/jobs", Some(user.token()), Some(body))
        .await;
    (s.as_u16(), v)
}

pub(crate) async fn create(app: &TestApp, user: &TestUser, definition: &str) -> String {
    let (s, v) = submit(app, user, json!({"definition": definition})).await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().expect("id").to_owned()
}

pub(crate) fn job_id(id: &str) -> JobId {
    id.parse().expect("job id")
}

/// Claims the next job as worker `w1`.
pub(crate) async fn claim(app: &TestApp) -> JobLease {
    let now = voidrunner_store::now();
    let job = app
        .store
        .claim_next_job("w1", now + chrono::Duration::seconds(60), now, None)
        .await
        .expect("claim")
        .expect("a queued job");
    JobLease::of(&job).expect("lease")
}

pub(crate) async fn step(
    app: &TestApp,
    lease: &JobLease,
    idx: u32,
    state: StepState,
    code: Option<i32>,
) {
    let now = voidrunner_store::now();
    let running = state == StepState::Running;
    app.store
        .update_step(
            lease,
            StepUpdate {
                idx,
                state,
                exit_code: code,
                detail: None,
                started_at: Some(now),
                finished_at: (!running).then_some(now),
                wall_ms: (!running).then_some(12),
                cpu_ms: (!running).then_some(3),
                peak_memory_bytes: None,
            },
        )
        .await
        .expect("update step");
}

pub(crate) async fn output(
    app: &TestApp,
    lease: &JobLease,
    step: &str,
    stream: JobStream,
    data: &[u8],
) {
    app.store
        .append_job_events(
            lease,
            &[NewJobEvent {
                step: Some(step.to_owned()),
                stream,
                data: data.to_vec(),
            }],
            voidrunner_store::now(),
        )
        .await
        .expect("append");
}

pub(crate) async fn complete(app: &TestApp, lease: &JobLease, status: JobStatus) {
    app.store
        .complete_job(
            lease,
            JobResult {
                status,
                steps: Vec::new(),
                failures: Vec::new(),
                outputs: BTreeMap::from([("version".to_owned(), "1.2".to_owned())]),
                finished_at: voidrunner_store::now(),
            },
        )
        .await
        .expect("complete");
}

async fn definition_problems_are_listed_at_once(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    // Shape problems (schema): all of them at once.
    let bad = "name: 'bad name!'\nbogus: 1\nsteps:\n  - {name: a, command: x, colour: red}\n";
    let (s, v) = submit(&app, &user, json!({"definition": bad})).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "validation_failed");
    let problems = v["error"]["problems"].as_array().expect("problems");
    assert_eq!(v["error"]["field"], problems[0]["path"]);
    let paths: Vec<&str> = problems
        .iter()
        .map(|p| p["path"].as_str().expect("path"))
        .collect();
    for want in [
        "definition.name",
        "definition.bogus",
        "definition.steps[0].colour",
    ] {
        assert!(paths.contains(&want), "{want} in {paths:?}");
    }
    // Rule problems: duplicate step, unknown dependency, cycle.
    let rules = "name: ok\nsteps:\n  - {name: a, command: x, depends_on: [ghost]}\n  - {name: a, command: y}\n  - {name: b, command: z, depends_on: [c]}\n  - {name: c, command: z, depends_on: [b]}\n";
    let (s, v) = submit(&app, &user, json!({"definition": rules})).await;
    assert_eq!(s, 422, "{v}");
    let problems = v["error"]["problems"].as_array().expect("problems");
    assert!(problems.len() >= 3, "every problem at once: {v}");
    assert!(
        problems
            .iter()
            .any(|p| p["path"] == "definition.steps[0].depends_on[0]"),
        "{v}"
    );
    // The same definition as a JSON object.
    let obj = json!({"name": "ok", "steps": [{"name": "a", "command": "x"}, {"name": "a", "command": "y"}]});
    let (s, v) = submit(&app, &user, json!({"definition": obj})).await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["error"]["field"]
            .as_str()
            .expect("field")
            .starts_with("definition.steps")
    );
    // Not a definition at all; and a bad priority.
    let (s, v) = submit(&app, &user, json!({"definition": 5})).await;
    assert_eq!((s, v["error"]["field"].as_str()), (422, Some("definition")));
    let (s, v) = submit(
        &app,
        &user,
        json!({"definition": TWO_STEPS, "priority": 11}),
    )
    .await;
    assert_eq!((s, v["error"]["field"].as_str()), (422, Some("priority")));
    // Other errors carry no `problems`.
    assert!(v["error"].get("problems").is_none());
    // A valid one is queued with its steps pending, carrying the request id.
    let (s, h, v) = app
        .call(
            Method::POST,
            "/api/v1/jobs",
            Some(user.token()),
            Some(json!({"definition": TWO_STEPS, "priority": 7})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["request_id"], h["x-request-id"].to_str().expect("ascii"));
    assert_eq!(v["max_attempts"], app.settings.execution_max_attempts);
    assert_eq!(v["status"], "queued");
    assert_eq!(v["priority"], 7);
    assert_eq!(v["steps"][1]["name"], "test");
    assert_eq!(v["steps"][1]["state"], "pending");
    // The schema is published.
    let (s, _, schema) = app
        .call(Method::GET, "/api/v1/jobs/schema", None, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(schema["$id"], "https://voidrunner.dev/schemas/job.json");
}

async fn policy_refuses_copy_sources_and_network(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let def = "name: j\nsource: {type: copy, path: /etc}\nci_source: {type: copy, path: .}\nnetwork: true\nsteps: [{name: a, command: x}]\n";
    let (s, v) = submit(&app, &user, json!({"definition": def})).await;
    assert_eq!(s, 422, "{v}");
    let paths: Vec<&str> = v["error"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["path"].as_str().expect("path"))
        .collect();
    assert_eq!(
        paths,
        [
            "definition.source",
            "definition.ci_source",
            "definition.network"
        ]
    );
    let net = "name: j\nnetwork: true\nsteps: [{name: a, command: x}]\n";
    let (s, v) = submit(&app, &user, json!({"definition": net})).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("definition.network"))
    );

    let open = b.spawn_with(|s| s.jobs_allow_network = true).await;
    let user = open.user().await;
    let (s, v) = submit(&open, &user, json!({"definition": net})).await;
    assert_eq!(s, 201, "allowed by policy: {v}");
}

async fn secrets_are_required_checked_sealed_and_never_echoed(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let def = "name: deploy\nsecrets: [DEPLOY_TOKEN]\nsteps: [{name: a, command: x}]\n";
    let value = "s3cr3t-value-never-echoed";
    let (s, v) = submit(&app, &user, json!({"definition": def})).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("secrets.DEPLOY_TOKEN"))
    );
    let short = json!({"definition": def, "secrets": {"DEPLOY_TOKEN": "abc"}});
    let (s, v) = submit(&app, &user, short).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("secrets.DEPLOY_TOKEN"))
    );
    assert!(!v.to_string().contains("\"abc\""), "{v}");
    let extra = json!({"definition": def, "secrets": {"DEPLOY_TOKEN": value, "OTHER": value}});
    let (s, v) = submit(&app, &user, extra).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("secrets.OTHER"))
    );
    assert!(!v.to_string().contains(value));

    let ok = json!({"definition": def, "secrets": {"DEPLOY_TOKEN": value}});
    let (s, v) = submit(&app, &user, ok).await;
    assert_eq!(s, 201, "{v}");
    assert!(!v.to_string().contains(value), "never echoed: {v}");
    let id = v["id"].as_str().expect("id");
    let (_, _, got) = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{id}"),
            Some(user.token()),
            None,
        )
        .await;
    assert!(!got.to_string().contains(value), "never read back: {got}");
    // Sealed, bound to "<job id>/<NAME>".
    let sealed = app.store.job_secrets(job_id(id)).await.expect("secrets");
    let ct = &sealed["DEPLOY_TOKEN"];
    assert!(!ct.windows(value.len()).any(|w| w == value.as_bytes()));
    let opened = test_secret_box()
        .open_with_context(ct, format!("{id}/DEPLOY_TOKEN").as_bytes())
        .expect("opens with its context");
    assert_eq!(&opened[..], value.as_bytes());
    assert!(
        test_secret_box()
            .open_with_context(ct, format!("{id}/OTHER").as_bytes())
            .is_err()
    );
}

async fn tarball_round_trips_into_the_blob(b: Backend) {
    let app = b
        .spawn_with(|s| s.job_tarball_max_bytes = 4 * 1024 * 1024)
        .await;
    let user = app.user().await;
    let def = "name: t\nsource: {type: tarball}\nsteps: [{name: a, command: x}]\n";
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let (s, v) = submit(&app, &user, json!({"definition": def})).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("tarball_base64"))
    );
    let (s, v) = submit(
        &app,
        &user,
        json!({"definition": TWO_STEPS, "tarball_base64": b64(b"x")}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("tarball_base64"))
    );
    let (s, v) = submit(
        &app,
        &user,
        json!({"definition": def, "tarball_base64": "***"}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("tarball_base64"))
    );
    let big = vec![7u8; 4 * 1024 * 1024 + 1];
    let (s, v) = submit(
        &app,
        &user,
        json!({"definition": def, "tarball_base64": b64(&big)}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (413, Some("tarball_base64"))
    );

    // 3 MiB: more than the default 2 MiB body limit of other routes.
    let archive: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (s, v) = submit(
        &app,
        &user,
        json!({"definition": def, "tarball_base64": b64(&archive)}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["has_tarball"], true);
    assert!(
        !v.to_string().contains(&b64(&archive[..64])),
        "the archive is never echoed"
    );
    let id = job_id(v["id"].as_str().expect("id"));
    let stored = app
        .store
        .job_blob(Scope::All, id, "source.tar")
        .await
        .expect("blob");
    assert!(stored == archive, "byte-identical archive");
}

async fn jobs_are_scoped_listed_and_filtered(b: Backend) {
    let app = b.spawn().await;
    let alice = app.user().await;
    let bob = app.user().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(create(&app, &alice, TWO_STEPS).await);
    }
    for (m, p) in [
        (Method::GET, format!("/api/v1/jobs/{}", ids[0])),
        (Method::DELETE, format!("/api/v1/jobs/{}", ids[0])),
        (Method::GET, format!("/api/v1/jobs/{}/events", ids[0])),
        (Method::GET, format!("/api/v1/jobs/{}/stream", ids[0])),
        (
            Method::GET,
            format!("/api/v1/jobs/{}/artifacts/a/b", ids[0]),
        ),
    ] {
        let got = app.call(m.clone(), &p, Some(bob.token()), None).await;
        assert_error(&got, 404, "not_found", None);
    }
    let got = app
        .call(
            Method::GET,
            "/api/v1/jobs/not-a-uuid",
            Some(alice.token()),
            None,
        )
        .await;
    assert_error(&got, 400, "invalid_path", Some("id"));
    let got = app.call(Method::GET, "/api/v1/jobs", None, None).await;
    assert_error(&got, 401, "unauthorized", None);
    let (_, _, list) = app
        .call(Method::GET, "/api/v1/jobs", Some(bob.token()), None)
        .await;
    assert_eq!(list["items"], json!([]));

    // Paging, newest first.
    let (s, _, page1) = app
        .call(
            Method::GET,
            "/api/v1/jobs?limit=2",
            Some(alice.token()),
            None,
        )
        .await;
    assert_eq!(s, 200, "{page1}");
    let cursor = page1["next_cursor"].as_str().expect("next page").to_owned();
    let (_, _, page2) = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs?limit=2&cursor={cursor}"),
            Some(alice.token()),
            None,
        )
        .await;
    let seen: Vec<&str> = page1["items"]
        .as_array()
        .into_iter()
        .chain(page2["items"].as_array())
        .flatten()
        .map(|j| j["id"].as_str().expect("id"))
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(seen, newest_first);
    assert!(page2["next_cursor"].is_null());

    // Status filter.
    let (s, _, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/jobs/{}", ids[1]),
            Some(alice.token()),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (_, _, cancelled) = app
        .call(
            Method::GET,
            "/api/v1/jobs?status=cancelled",
            Some(alice.token()),
            None,
        )
        .await;
    assert_eq!(cancelled["items"].as_array().expect("items").len(), 1);
    assert_eq!(cancelled["items"][0]["id"], ids[1].as_str());
    let (_, _, queued) = app
        .call(
            Method::GET,
            "/api/v1/jobs?status=queued",
            Some(alice.token()),
            None,
        )
        .await;
    assert_eq!(queued["items"].as_array().expect("items").len(), 2);
    for (q, field) in [
        ("status=done", "status"),
        ("limit=0", "limit"),
        ("cursor=zz", "cursor"),
        ("x=1", "x"),
    ] {
        let got = app
            .call(
                Method::GET,
                &format!("/api/v1/jobs?{q}"),
                Some(alice.token()),
                None,
            )
            .await;
        assert_error(&got, 400, "invalid_query", Some(field));
    }
}
