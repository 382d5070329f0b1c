//! Git events end to end against a real repository the test creates (a bare `origin.git`
//! reachable through `file://`, allowed by the test's `[hooks]` settings): signed GitHub- and
//! GitLab-style push and pull-request payloads start exactly the workflows whose `on:`
//! filter matches; a wrong signature or an unknown repository gets the same 401 and starts
//! nothing; a fork pull request that rewrites the CI directory still gets the base branch's
//! workflows and CI code and no secrets; a delivery posted twice (also at once) starts its
//! workflows once. Plus the repositories API itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use tempfile::TempDir;
use voidrunner_store::{Scope, WorkflowId};

use crate::helpers::{Backend, TestApp, TestUser, assert_error, backend_tests};

backend_tests!(
    repositories_are_registered_scoped_and_never_echo_secrets,
    github_push_starts_exactly_the_matching_workflows,
    wrong_signature_and_unknown_repository_get_401_and_start_nothing,
    gitlab_push_and_merge_request_start_the_matching_workflows,
    fork_pull_request_gets_the_base_ci_and_no_secrets,
    the_same_delivery_twice_starts_its_workflows_once,
    commit_statuses_are_posted_pending_then_the_result,
);

const SECRET: &str = "hook-secret-0123456789";
const TOKEN: &str = "deploy-token-value-42";

/// A bare repository and a working clone.
struct Repo {
    _dir: TempDir,
    work: PathBuf,
    url: String,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
}

impl Repo {
    /// main with the CI directory: `main.yaml` (push to main), `dev.yaml` (push to dev only),
    /// `docs.yaml` (push / PR touching docs/**), `pr.yaml` (PRs into main), `broken.yaml`.
    fn new() -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        let bare = dir.path().join("origin.git");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&bare).expect("mkdir");
        std::fs::create_dir_all(&work).expect("mkdir");
        git(&bare, &["init", "-q", "--bare"]);
        git(&work, &["init", "-q"]);
        write(
            &work,
            &[
                (
                    ".voidrunner/workflows/main.yaml",
                    "name: main-build\non: {events: [push], branches: [main]}\njobs:\n  build: {job_file: build.yaml}\n",
                ),
                (
                    ".voidrunner/workflows/dev.yaml",
                    "name: dev-build\non: {events: [push], branches: [dev]}\njobs:\n  build: {job_file: build.yaml}\n",
                ),
                (
                    ".voidrunner/workflows/docs.yaml",
                    "name: docs\ntriggers: {events: [push, pull_request_opened], paths: {include: ['docs/**']}}\njobs:\n  site: {job: {name: site, steps: [{name: s, command: 'true'}]}}\n",
                ),
                (
                    ".voidrunner/workflows/pr.yaml",
                    "name: pr-check\non: {events: [pull_request_opened, pull_request_updated], branches: [main]}\njobs:\n  check: {job_file: check.yaml}\n",
                ),
                (
                    ".voidrunner/workflows/release.yaml",
                    "name: release\non: {events: [tag_created], branches: [main], paths: {include: ['nothing/**']}}\njobs:\n  publish: {job_file: build.yaml}\n",
                ),
                (
                    ".voidrunner/workflows/broken.yaml",
                    "name: broken\njobs:\n  a: {depends_on: [ghost], job_file: build.yaml}\n",
                ),
                (
                    ".voidrunner/jobs/build.yaml",
                    "name: build\nsource: {type: git, url: 'https://elsewhere.example/x.git', ref: main}\nsteps:\n  - {name: s, command: 'cat /job/ci/.voidrunner/marker.txt'}\n",
                ),
                (
                    ".voidrunner/jobs/check.yaml",
                    "name: check\nsteps:\n  - {name: s, command: 'echo base-check; cat /job/ci/.voidrunner/marker.txt'}\n",
                ),
                (".voidrunner/marker.txt", "BASE\n"),
                ("src/app.txt", "v1\n"),
            ],
        );
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "init"]);
        let url = format!("file://{}", bare.display());
        git(&work, &["remote", "add", "origin", &url]);
        git(&work, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
        Repo {
            _dir: dir,
            work,
            url,
        }
    }

    fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Commits `files` on the current HEAD and pushes it to `dest` (a full ref).
    fn commit_push(&self, files: &[(&str, &str)], dest: &str) -> String {
        write(&self.work, files);
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", "change"]);
        git(
            &self.work,
            &["push", "-q", "-f", "origin", &format!("HEAD:{dest}")],
        );
        self.head()
    }
}

async fn spawn(b: &Backend) -> TestApp {
    b.spawn_with(|s| s.hooks.git_protocols = vec!["file".into()])
        .await
}

async fn register(
    app: &TestApp,
    user: &TestUser,
    provider: &str,
    name: &str,
    url: &str,
    fork_secrets: bool,
) -> Value {
    let (s, _, v) = app
        .call(
            Method::POST,
            "/api/v1/repositories",
            Some(user.token()),
            Some(
                json!({"provider": provider, "full_name": name, "clone_url": url,
                "webhook_secret": SECRET, "fork_secrets": fork_secrets,
                "secrets": {"DEPLOY_TOKEN": TOKEN}}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v
}

fn sign(body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts a GitHub event signed with `secret`.
async fn github(
    app: &TestApp,
    kind: &str,
    delivery: &str,
    body: &Value,
    secret: &str,
) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).expect("json");
    let res = app
        .http
        .post(app.url("/api/v1/hooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", kind)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sign(&bytes, secret))
        .body(bytes)
        .send()
        .await
        .expect("send");
    let s = res.status().as_u16();
    (s, res.json().await.unwrap_or(Value::Null))
}

async fn gitlab(
    app: &TestApp,
    kind: &str,
    delivery: &str,
    body: &Value,
    token: &str,
) -> (u16, Value) {
    let res = app
        .http
        .post(app.url("/api/v1/hooks/gitlab"))
        .header("x-gitlab-event", kind)
        .header("x-gitlab-event-uuid", delivery)
        .header("x-gitlab-token", token)
        .json(body)
        .send()
        .await
        .expect("send");
    let s = res.status().as_u16();
    (s, res.json().await.unwrap_or(Value::Null))
}

fn push_body(name: &str, git_ref: &str, before: &str, after: &str) -> Value {
    json!({"ref": git_ref, "before": before, "after": after, "deleted": false,
        "repository": {"full_name": name, "clone_url": "file:///somewhere/else.git"}})
}

fn pr_body(name: &str, head_repo: &str, number: u64, base: &str, head: &str) -> Value {
    json!({"action": "opened", "number": number,
        "repository": {"full_name": name},
        "pull_request": {"merged": false,
            "base": {"ref": "main", "sha": base, "repo": {"full_name": name}},
            "head": {"ref": "feature", "sha": head, "repo": {"full_name": head_repo,
                "clone_url": "file:///evil.git"}}}})
}

/// The names of the started workflows and their stored rows.
async fn started(app: &TestApp, v: &Value) -> Vec<voidrunner_store::Workflow> {
    let mut out = Vec::new();
    for id in v["workflow_ids"].as_array().expect("ids") {
        let id: WorkflowId = id.as_str().expect("id").parse().expect("uuid");
        out.push(
            app.store
                .get_workflow(Scope::All, id)
                .await
                .expect("workflow"),
        );
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn names(ws: &[voidrunner_store::Workflow]) -> Vec<&str> {
    ws.iter().map(|w| w.name.as_str()).collect()
}

async fn workflow_count(app: &TestApp, user: &TestUser) -> usize {
    let (s, _, v) = app
        .call(
            Method::GET,
            "/api/v1/workflows?limit=100",
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["items"].as_array().expect("items").len()
}

async fn repositories_are_registered_scoped_and_never_echo_secrets(b: Backend) {
    let app = spawn(&b).await;
    let user = app.user().await;
    let other = app.user().await;
    let repo = Repo::new();
    let v = register(&app, &user, "github", "acme/app", &repo.url, false).await;
    let text = v.to_string();
    assert!(!text.contains(SECRET) && !text.contains(TOKEN), "{text}");
    assert_eq!(v["ci_dir"], ".voidrunner");
    assert_eq!(v["hook_path"], "/api/v1/hooks/github");
    assert_eq!(v["secret_names"], json!(["DEPLOY_TOKEN"]));
    let id = v["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/repositories/{id}");

    let body = |over: Value| {
        let mut b = json!({"provider": "github", "full_name": "acme/other", "clone_url": repo.url,
            "webhook_secret": SECRET});
        for (k, v) in over.as_object().expect("obj") {
            b[k] = v.clone();
        }
        b
    };
    for (over, field) in [
        (json!({"provider": "bitbucket"}), "provider"),
        (json!({"full_name": "noslash"}), "full_name"),
        (
            json!({"clone_url": "https://example.com/r.git"}),
            "clone_url",
        ),
        (json!({"clone_url": "ext::sh -c x"}), "clone_url"),
        (json!({"clone_url": "/tmp/local"}), "clone_url"),
        (json!({"webhook_secret": "short"}), "webhook_secret"),
        (json!({"ci_dir": "../up"}), "ci_dir"),
        (
            json!({"secrets": {"bad name": "value-1234"}}),
            "secrets.bad name",
        ),
        (
            json!({"status_reporting": {"api_url": "ftp://x", "token": "t"}}),
            "status_reporting.api_url",
        ),
    ] {
        let got = app
            .call(
                Method::POST,
                "/api/v1/repositories",
                Some(user.token()),
                Some(body(over.clone())),
            )
            .await;
        assert_error(&got, 422, "validation_failed", Some(field));
    }
    let dup = app
        .call(
            Method::POST,
            "/api/v1/repositories",
            Some(user.token()),
            Some(body(json!({"full_name": "acme/app"}))),
        )
        .await;
    assert_eq!(dup.0, 409, "{}", dup.2);
    // file:// only where the operator allows it: not by default.
    let strict = b.spawn().await;
    let u = strict.user().await;
    let got = strict
        .call(
            Method::POST,
            "/api/v1/repositories",
            Some(u.token()),
            Some(body(json!({}))),
        )
        .await;
    assert_error(&got, 422, "validation_failed", Some("clone_url"));

    let (s, _, list) = app
        .call(
            Method::GET,
            "/api/v1/repositories",
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    let (s, _, mine) = app.call(Method::GET, &path, Some(user.token()), None).await;
    assert_eq!(
        (s.as_u16(), mine["full_name"].as_str()),
        (200, Some("acme/app"))
    );
    for (m, p) in [(Method::GET, path.clone()), (Method::DELETE, path.clone())] {
        let got = app.call(m, &p, Some(other.token()), None).await;
        assert_error(&got, 404, "not_found", None);
    }
    let (s, _, v) = app
        .call(
            Method::PATCH,
            &format!("{path}/secrets"),
            Some(user.token()),
            Some(json!({"webhook_secret": "rotated-secret-0123456789",
                "secrets": {"DEPLOY_TOKEN": null, "NPM_TOKEN": "npm-token-value"}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["secret_names"], json!(["NPM_TOKEN"]));
    assert!(!v.to_string().contains("npm-token-value"));
    // The old webhook secret no longer signs.
    let after = repo.head();
    let (s, _) = github(
        &app,
        "push",
        "d-rot",
        &push_body(
            "acme/app",
            "refs/heads/main",
            "0000000000000000000000000000000000000000",
            &after,
        ),
        SECRET,
    )
    .await;
    assert_eq!(s, 401);
    let (s, v) = github(
        &app,
        "ping",
        "d-ping",
        &json!({"zen": "x", "repository": {"full_name": "acme/app"}}),
        "rotated-secret-0123456789",
    )
    .await;
    assert_eq!((s, v["event"].clone()), (200, Value::Null), "{v}");
    let (s, _, v) = app
        .call(
            Method::GET,
            &format!("{path}/deliveries"),
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(
        (s.as_u16(), v["items"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );
    let (s, _, _) = app
        .call(Method::DELETE, &path, Some(user.token()), None)
        .await;
    assert_eq!(s, 204);
    let (s, _, _) = app.call(Method::GET, &path, Some(user.token()), None).await;
    assert_eq!(s, 404);
}

async fn github_push_starts_exactly_the_matching_workflows(b: Backend) {
    let app = spawn(&b).await;
    let user = app.user().await;
    let repo = Repo::new();
    register(&app, &user, "github", "acme/app", &repo.url, false).await;
    let before = repo.head();
    let after = repo.commit_push(&[("src/app.txt", "v2\n")], "refs/heads/main");
    let (s, v) = github(
        &app,
        "push",
        "gh-push-1",
        &push_body("acme/app", "refs/heads/main", &before, &after),
        SECRET,
    )
    .await;
    assert_eq!(s, 202, "{v}");
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
    let (s, v) = github(
        &app,
        "push",
        "gh-push-2",
        &push_body("acme/app", "refs/heads/main", &after, &b2),
        SECRET,
    )
    .await;
    assert_eq!(s, 202, "{v}");
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

async fn fork_pull_request_gets_the_base_ci_and_no_secrets(b: Backend) {
    let app = spawn(&b).await;
    let user = app.user().await;
    let repo = Repo::new();
    register(&app, &user, "github", "acme/app", &repo.url, false).await;
    let base = repo.head();
    // The fork rewrites the CI directory: its own check job, a new workflow, a new marker.
    git(&repo.work, &["checkout", "-q", "-b", "evil"]);
    let head = repo.commit_push(
        &[
            (".voidrunner/jobs/check.yaml", "name: check\nsecrets: [DEPLOY_TOKEN]\nsteps:\n  - {name: s, command: 'echo $DEPLOY_TOKEN'}\n"),
            (".voidrunner/workflows/evil.yaml", "name: evil\non: {events: [pull_request_opened]}\njobs:\n  x: {job: {name: x, steps: [{name: s, command: 'env'}]}}\n"),
            (".voidrunner/workflows/pr.yaml", "name: pr-check\non: {events: [pull_request_opened]}\njobs:\n  check: {job: {name: check, steps: [{name: s, command: 'env'}]}}\n"),
            (".voidrunner/marker.txt", "HEAD-EVIL\n"),
            ("src/app.txt", "pwned\n"),
        ],
        "refs/pull/5/head",
    );
    // A head commit that is not the pull request's: refused, nothing recorded.
    let (s, v) = github(
        &app,
        "pull_request",
        "fork-bad",
        &pr_body("acme/app", "evil/app", 5, &base, &base),
        SECRET,
    )
    .await;
    assert_eq!(s, 422, "{v}");
    // A base commit that is not on the target branch (the head itself): refused.
    let (s, v) = github(
        &app,
        "pull_request",
        "fork-bad2",
        &pr_body("acme/app", "evil/app", 5, &head, &head),
        SECRET,
    )
    .await;
    assert_eq!(s, 422, "{v}");

    let (s, v) = github(
        &app,
        "pull_request",
        "fork-1",
        &pr_body("acme/app", "evil/app", 5, &base, &head),
        SECRET,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let ws = started(&app, &v).await;
    assert_eq!(
        names(&ws),
        ["pr-check"],
        "the base branch's workflows only: {v}"
    );
    let w = &ws[0];
    assert!(!w.trusted);
    assert_eq!(v["summary"]["trusted"], false);
    assert!(
        app.store
            .workflow_secrets(w.id)
            .await
            .expect("secrets")
            .is_empty()
    );
    assert!(
        w.files["jobs/check.yaml"].contains("base-check"),
        "{:?}",
        w.files
    );
    assert!(!w.files.contains_key("workflows/evil.yaml"));
    let nodes = app
        .store
        .workflow_nodes(Scope::All, w.id)
        .await
        .expect("nodes");
    let d = &nodes[0].definition;
    assert_eq!(d["source"]["ref"], head.as_str());
    assert_eq!(d["ci_source"]["ref"], base.as_str());
    assert!(
        d["steps"][0]["command"]
            .as_str()
            .expect("cmd")
            .contains("base-check"),
        "{d}"
    );
    assert!(
        d.get("secrets").is_none() || d["secrets"] == json!([]),
        "{d}"
    );
    assert_eq!(d["env"]["VOIDRUNNER_TRUSTED"], "false");
    assert!(!d.to_string().contains(TOKEN));

    // The same fork with the repository's policy allowing fork secrets: trusted.
    let other = app.user().await;
    register(&app, &other, "github", "acme/trusting", &repo.url, true).await;
    let (s, v) = github(
        &app,
        "pull_request",
        "fork-2",
        &pr_body("acme/trusting", "evil/app", 5, &base, &head),
        SECRET,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let ws = started(&app, &v).await;
    assert!(ws[0].trusted);
    assert_eq!(
        app.store
            .workflow_secrets(ws[0].id)
            .await
            .expect("secrets")
            .len(),
        1
    );
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
    // At once: one creates, the other answers its ids.
    let (a, b2) = tokio::join!(
        github(&app, "push", "dup-2", &body, SECRET),
        github(&app, "push", "dup-2", &body, SECRET)
    );
    let mut codes = [a.0, b2.0];
    codes.sort_unstable();
    assert_eq!(codes, [200, 202], "{} / {}", a.1, b2.1);
    assert_eq!(a.1["workflow_ids"], b2.1["workflow_ids"]);
    assert_eq!(workflow_count(&app, &user).await, 4);
}

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
