//! Which workflows an event starts (branch, path and event filters; GitHub and GitLab), the
//! 401s, body caps, and at-most-once deliveries.

use super::*;
use crate::helpers::backend_tests;

backend_tests!(
    github_push_starts_exactly_the_matching_workflows,
    wrong_signature_and_unknown_repository_get_401_and_start_nothing,
    gitlab_push_and_merge_request_start_the_matching_workflows,
    the_same_delivery_twice_starts_its_workflows_once,
    a_bare_job_file_with_its_own_filter_runs_as_a_one_node_workflow,
);

async fn github_push_starts_exactly_the_matching_workflows(b: Backend) {
    let app = spawn(&b).await;
    let user = app.user().await;
    let repo = Repo::new();
    register(&app, &user, "github", "acme/app", &repo.url, false).await;
    let before = repo.head();
    let after = repo.commit_push(&[("src/app.txt", "v2\n")], "refs/heads/main");
    let v = github_push(&app, "gh-push-1", "refs/heads/main", &before, &after).await;
    assert_eq!(v["event"], "push");
    assert_eq!(v["duplicate"], false);
    // dev.yaml: branch filter; docs.yaml: path filter; pr.yaml: event; broken.yaml: invalid.
    let ws = started(&app, &v).await;
    assert_eq!(names(&ws), ["main-build"], "{v}");
    let skipped = v["summary"]["skipped"].to_string();
    assert!(
        skipped.contains("dev-build") && skipped.contains("on.branches"),
        "{skipped}"
    );
    assert!(
        skipped.contains("docs") && skipped.contains("on.paths"),
        "{skipped}"
    );
    assert!(
        v["summary"]["invalid"].to_string().contains("broken.yaml"),
        "{v}"
    );
    assert_eq!(v["summary"]["changed_files"], 1);
    let w = &ws[0];
    assert!(w.trusted);
    assert_eq!(w.owner_id.0, user.id());
    assert_eq!(w.origin["sha"], after.as_str());
    assert!(
        w.files.contains_key("jobs/build.yaml"),
        "{:?}",
        w.files.keys()
    );
    let secrets = app.store.workflow_secrets(w.id).await.expect("secrets");
    assert_eq!(secrets.keys().collect::<Vec<_>>(), ["DEPLOY_TOKEN"]);
    let nodes = app
        .store
        .workflow_nodes(Scope::All, w.id)
        .await
        .expect("nodes");
    assert_eq!(nodes.len(), 1);
    let d = &nodes[0].definition;
    // The file's own source is replaced by the event's commit of the registered URL.
    assert_eq!(
        d["source"],
        json!({"type": "git", "url": repo.url, "ref": after})
    );
    assert_eq!(
        d["ci_source"],
        json!({"type": "git", "url": repo.url, "ref": after})
    );
    assert_eq!(d["env"]["VOIDRUNNER_EVENT"], "push");
    assert_eq!(d["env"]["VOIDRUNNER_BRANCH"], "main");
    assert_eq!(d["env"]["VOIDRUNNER_SHA"], after.as_str());
    // The scheduler's first pass started the node's job.
    assert!(nodes[0].job_id.is_some(), "{:?}", nodes[0]);

    // A push to main touching docs/ also starts docs.yaml; a push to dev starts dev.yaml only.
    let b2 = repo.commit_push(&[("docs/index.md", "hi\n")], "refs/heads/main");
    let v = github_push(&app, "gh-push-2", "refs/heads/main", &after, &b2).await;
    assert_eq!(names(&started(&app, &v).await), ["docs", "main-build"]);
    let dev = repo.commit_push(&[("src/app.txt", "dev\n")], "refs/heads/dev");
    let (s, v) = github(
        &app,
        "push",
        "gh-push-3",
        &push_body(
            "acme/app",
            "refs/heads/dev",
            "0000000000000000000000000000000000000000",
            &dev,
        ),
        SECRET,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(names(&started(&app, &v).await), ["dev-build"]);
    // A new branch: its changed files are those of the commits no other branch has.
    assert_eq!(v["summary"]["changed_files"], 1, "{v}");
    // A tag: tag_created (branch and path filters do not apply: a tag has no branch and
    // its changed files are unknown).
    git(&repo.work, &["tag", "v1.0", &dev]);
    git(&repo.work, &["push", "-q", "origin", "refs/tags/v1.0"]);
    let (s, v) = github(
        &app,
        "push",
        "gh-tag",
        &push_body(
            "acme/app",
            "refs/tags/v1.0",
            "0000000000000000000000000000000000000000",
            &dev,
        ),
        SECRET,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["event"], "tag_created");
    let ws = started(&app, &v).await;
    assert_eq!(names(&ws), ["release"], "{v}");
    let nodes = app
        .store
        .workflow_nodes(Scope::All, ws[0].id)
        .await
        .expect("nodes");
    assert_eq!(nodes[0].definition["env"]["VOIDRUNNER_TAG"], "v1.0");
    // Deleting a branch starts nothing and records nothing.
    let (s, v) = github(&app, "push", "gh-del", &json!({"ref": "refs/heads/dev", "before": dev, "after": "0000000000000000000000000000000000000000", "deleted": true, "repository": {"full_name": "acme/app"}}), SECRET).await;
    assert_eq!(
        (s, v["workflow_ids"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );
    let id = app
        .call(
            Method::GET,
            "/api/v1/repositories",
            Some(user.token()),
            None,
        )
        .await
        .2["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (_, _, d) = app
        .call(
            Method::GET,
            &format!("/api/v1/repositories/{id}/deliveries"),
            Some(user.token()),
            None,
        )
        .await;
    let ds = d["items"].as_array().expect("items");
    assert_eq!(ds.len(), 4, "{d}");
    assert_eq!(ds[0]["delivery_id"], "gh-tag");
    assert_eq!(workflow_count(&app, &user).await, 5);
}

async fn wrong_signature_and_unknown_repository_get_401_and_start_nothing(b: Backend) {
    let app = spawn(&b).await;
    let user = app.user().await;
    let repo = Repo::new();
    register(&app, &user, "github", "acme/app", &repo.url, false).await;
    register(&app, &user, "gitlab", "grp/app", &repo.url, false).await;
    let before = repo.head();
    let after = repo.commit_push(&[("src/app.txt", "v2\n")], "refs/heads/main");
    let body = push_body("acme/app", "refs/heads/main", &before, &after);
    let (s, wrong) = github(&app, "push", "x1", &body, "not-the-secret-at-all").await;
    assert_eq!(s, 401, "{wrong}");
    let (s, unknown) = github(
        &app,
        "push",
        "x2",
        &push_body("acme/nope", "refs/heads/main", &before, &after),
        SECRET,
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(wrong, unknown, "no enumeration of repositories");
    // Unsigned, and a signature over another body.
    let res = app
        .http
        .post(app.url("/api/v1/hooks/github"))
        .header("x-github-event", "push")
        .header("x-github-delivery", "x3")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 401);
    let other = serde_json::to_vec(&json!({"other": 1})).expect("json");
    let res = app
        .http
        .post(app.url("/api/v1/hooks/github"))
        .header("x-github-event", "push")
        .header("x-github-delivery", "x4")
        .header("x-hub-signature-256", sign(&other, SECRET))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 401);
    let gl = json!({"object_kind": "push", "ref": "refs/heads/main", "before": before, "after": after,
        "project": {"path_with_namespace": "grp/app"}});
    let (s, _) = gitlab(&app, "Push Hook", "x5", &gl, "wrong-token-0123456789").await;
    assert_eq!(s, 401);
    let (s, _) = gitlab(&app, "Push Hook", "x6", &gl, "").await;
    assert_eq!(s, 401);
    let got = app
        .call(
            Method::POST,
            "/api/v1/hooks/bitbucket",
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(got.0, 404);
    // A signed event without a delivery id: 400, nothing started.
    let bytes = serde_json::to_vec(&body).expect("json");
    let res = app
        .http
        .post(app.url("/api/v1/hooks/github"))
        .header("x-github-event", "push")
        .header("x-hub-signature-256", sign(&bytes, SECRET))
        .body(bytes)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 400);
    // Too large a body: 413.
    let big = json!({"repository": {"full_name": "acme/app"}, "pad": "x".repeat(6 * 1024 * 1024)});
    let (s, _) = github(&app, "push", "x7", &big, SECRET).await;
    assert_eq!(s, 413);
    // Bodies above the router's usual limit but under [hooks] max_body_bytes are read.
    let large =
        json!({"repository": {"full_name": "acme/app"}, "pad": "x".repeat(3 * 1024 * 1024)});
    let (s, v) = github(&app, "ping", "x8", &large, SECRET).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(workflow_count(&app, &user).await, 0);
}

async fn gitlab_push_and_merge_request_start_the_matching_workflows(b: Backend) {
    let app = spawn(&b).await;
    let user = app.user().await;
    let repo = Repo::new();
    register(&app, &user, "gitlab", "grp/app", &repo.url, false).await;
    let before = repo.head();
    let after = repo.commit_push(&[("docs/a.md", "a\n")], "refs/heads/main");
    let push = json!({"object_kind": "push", "ref": "refs/heads/main", "before": before, "after": after,
        "project": {"path_with_namespace": "grp/app", "git_http_url": "file:///elsewhere.git"}});
    let (s, v) = gitlab(&app, "Push Hook", "gl-1", &push, SECRET).await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(names(&started(&app, &v).await), ["docs", "main-build"]);
    // A merge request from a branch of the same project: trusted, gets the secrets.
    git(&repo.work, &["checkout", "-q", "-b", "feature"]);
    let head = repo.commit_push(&[("src/app.txt", "mr\n")], "refs/merge-requests/4/head");
    let mr = json!({"object_kind": "merge_request", "project": {"path_with_namespace": "grp/app"},
        "object_attributes": {"action": "open", "iid": 4, "source_branch": "feature",
            "target_branch": "main", "source_project_id": 9, "target_project_id": 9,
            "last_commit": {"id": head}}});
    let (s, v) = gitlab(&app, "Merge Request Hook", "gl-2", &mr, SECRET).await;
    assert_eq!(s, 202, "{v}");
    let ws = started(&app, &v).await;
    assert_eq!(names(&ws), ["pr-check"], "{v}");
    assert!(ws[0].trusted);
    assert_eq!(
        app.store
            .workflow_secrets(ws[0].id)
            .await
            .expect("secrets")
            .len(),
        1
    );
    let nodes = app
        .store
        .workflow_nodes(Scope::All, ws[0].id)
        .await
        .expect("nodes");
    assert_eq!(nodes[0].definition["source"]["ref"], head.as_str());
    assert_eq!(nodes[0].definition["ci_source"]["ref"], after.as_str());
    assert_eq!(nodes[0].definition["env"]["VOIDRUNNER_PR_NUMBER"], "4");
}

async fn the_same_delivery_twice_starts_its_workflows_once(b: Backend) {
    let app = spawn(&b).await;
    let user = app.user().await;
    let repo = Repo::new();
    register(&app, &user, "github", "acme/app", &repo.url, false).await;
    let before = repo.head();
    let after = repo.commit_push(&[("docs/x.md", "x\n")], "refs/heads/main");
    let body = push_body("acme/app", "refs/heads/main", &before, &after);
    let (s, first) = github(&app, "push", "dup-1", &body, SECRET).await;
    assert_eq!(s, 202, "{first}");
    assert_eq!(first["workflow_ids"].as_array().map(Vec::len), Some(2));
    let (s, again) = github(&app, "push", "dup-1", &body, SECRET).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["workflow_ids"], first["workflow_ids"]);
    // The delivery id header is not signed: the captured body replayed under a new id is
    // a duplicate too.
    let (s, replay) = github(&app, "push", "dup-1-replayed", &body, SECRET).await;
    assert_eq!(s, 200, "{replay}");
    assert_eq!(replay["duplicate"], true);
    assert_eq!(replay["workflow_ids"], first["workflow_ids"]);
    assert_eq!(workflow_count(&app, &user).await, 2);
    // At once: one creates, the other answers its ids.
    let next = repo.commit_push(&[("docs/y.md", "y\n")], "refs/heads/main");
    let body2 = push_body("acme/app", "refs/heads/main", &after, &next);
    let (a, b2) = tokio::join!(
        github(&app, "push", "dup-2", &body2, SECRET),
        github(&app, "push", "dup-2", &body2, SECRET)
    );
    let mut codes = [a.0, b2.0];
    codes.sort_unstable();
    assert_eq!(codes, [200, 202], "{} / {}", a.1, b2.1);
    assert_eq!(a.1["workflow_ids"], b2.1["workflow_ids"]);
    assert_eq!(workflow_count(&app, &user).await, 4);
}

async fn a_bare_job_file_with_its_own_filter_runs_as_a_one_node_workflow(b: Backend) {
    let app = spawn(&b).await;
    let user = app.user().await;
    let repo = Repo::new();
    register(&app, &user, "github", "acme/app", &repo.url, false).await;
    let lint = "name: lint\non: {events: [push], paths: {include: ['src/**']}}\n\
        steps:\n  - {name: l, command: 'true'}\n";
    let before = repo.head();
    let after = repo.commit_push(
        &[
            (".voidrunner/jobs/lint.yaml", lint),
            ("src/app.txt", "v2\n"),
        ],
        "refs/heads/main",
    );
    let v = github_push(&app, "gh-bare-1", "refs/heads/main", &before, &after).await;
    let ws = started(&app, &v).await;
    let mut started_names = names(&ws);
    started_names.sort_unstable();
    assert_eq!(started_names, ["lint", "main-build"], "{v}");
    let w = ws.iter().find(|w| w.name == "lint").expect("lint");
    let nodes = app
        .store
        .workflow_nodes(Scope::All, w.id)
        .await
        .expect("nodes");
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].definition["name"], "lint");
    assert_eq!(
        nodes[0].definition["ci_source"]["ref"],
        after.as_str(),
        "pinned to the event's commit like every node"
    );
    // Its path filter: a push touching only docs does not start it.
    let docs = repo.commit_push(&[("docs/index.md", "hi\n")], "refs/heads/main");
    let v = github_push(&app, "gh-bare-2", "refs/heads/main", &after, &docs).await;
    let ws = started(&app, &v).await;
    let mut started_names = names(&ws);
    started_names.sort_unstable();
    assert_eq!(started_names, ["docs", "main-build"], "{v}");
    // Named from a workflow, the same file runs without its filter getting in the way.
    let def = voidrunner_jobs::workflow::parse_workflow(
        "name: uses-lint\njobs:\n  l: {job_file: lint.yaml}\n",
        voidrunner_jobs::Format::Yaml,
    )
    .expect("valid");
    let files = std::collections::BTreeMap::from([("jobs/lint.yaml".to_owned(), lint.to_owned())]);
    voidrunner_jobs::workflow::instantiate(&def, &files, &Default::default())
        .expect("the filter is ignored inside a workflow");
}
