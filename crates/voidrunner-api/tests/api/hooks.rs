//! Git events end to end against a real repository the test creates (a bare `origin.git`
//! reachable through `file://`, allowed by the test's `[hooks]` settings): signed GitHub- and
//! GitLab-style push and pull-request payloads start exactly the workflows whose `on:`
//! filter matches; a wrong signature or an unknown repository gets the same 401 and starts
//! nothing; a fork pull request that rewrites the CI directory still gets the base branch's
//! workflows and CI code and no secrets; a delivery posted twice (also at once) starts its
//! workflows once. Plus the repositories API itself.

//!
//! `registration`: the repositories API; `events`: which workflows an event starts, 401s,
//! duplicates; `trust`: fork pull requests; `status`: commit-status reporting; `mirror`: the
//! kept mirror; `mirror_gc`: its removal once idle.

use std::path::{Path, PathBuf};
use std::process::Command;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use tempfile::TempDir;
use voidrunner_store::{Scope, WorkflowId};

use crate::helpers::{Backend, TestApp, TestUser};

mod events;
mod mirror;
mod mirror_gc;
mod registration;
mod status;
mod trust;

pub(crate) const SECRET: &str = "hook-secret-0123456789";
pub(crate) const TOKEN: &str = "deploy-token-value-42";

/// A bare repository and a working clone.
pub(crate) struct Repo {
    _dir: TempDir,
    pub(crate) work: PathBuf,
    pub(crate) url: String,
}

pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
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

pub(crate) fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
}

impl Repo {
    /// main with the CI directory: `main.yaml` (push to main), `dev.yaml` (push to dev only),
    /// `docs.yaml` (push / PR touching docs/**), `pr.yaml` (PRs into main), `broken.yaml`.
    pub(crate) fn new() -> Repo {
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

    pub(crate) fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Commits `files` on the current HEAD and pushes it to `dest` (a full ref).
    pub(crate) fn commit_push(&self, files: &[(&str, &str)], dest: &str) -> String {
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

pub(crate) async fn spawn(b: &Backend) -> TestApp {
    b.spawn_with(|s| s.hooks.git_protocols = vec!["file".into()])
        .await
}

pub(crate) async fn register(
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

pub(crate) fn sign(body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts a GitHub event signed with `secret`.
pub(crate) async fn github(
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

/// Posts a correctly signed GitHub push of `git_ref` (`before` → `after`) of `acme/app` and
/// asserts it was accepted (202); answers the body.
pub(crate) async fn github_push(
    app: &TestApp,
    delivery: &str,
    git_ref: &str,
    before: &str,
    after: &str,
) -> Value {
    let body = push_body("acme/app", git_ref, before, after);
    let (s, v) = github(app, "push", delivery, &body, SECRET).await;
    assert_eq!(s, 202, "{v}");
    v
}

pub(crate) async fn gitlab(
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

pub(crate) fn push_body(name: &str, git_ref: &str, before: &str, after: &str) -> Value {
    json!({"ref": git_ref, "before": before, "after": after, "deleted": false,
        "repository": {"full_name": name, "clone_url": "file:///somewhere/else.git"}})
}

pub(crate) fn pr_body(name: &str, head_repo: &str, number: u64, base: &str, head: &str) -> Value {
    json!({"action": "opened", "number": number,
        "repository": {"full_name": name},
        "pull_request": {"merged": false,
            "base": {"ref": "main", "sha": base, "repo": {"full_name": name}},
            "head": {"ref": "feature", "sha": head, "repo": {"full_name": head_repo,
                "clone_url": "file:///evil.git"}}}})
}

/// The names of the started workflows and their stored rows.
pub(crate) async fn started(app: &TestApp, v: &Value) -> Vec<voidrunner_store::Workflow> {
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

pub(crate) fn names(ws: &[voidrunner_store::Workflow]) -> Vec<&str> {
    ws.iter().map(|w| w.name.as_str()).collect()
}

pub(crate) async fn workflow_count(app: &TestApp, user: &TestUser) -> usize {
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
