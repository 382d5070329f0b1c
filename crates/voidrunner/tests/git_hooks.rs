//! Issue 10 acceptance, git events through the real binary: `voidrunner serve` with its job
//! worker and scheduler, a repository the test creates (`file://`, allowed by `[hooks]` and
//! `[jobs] git_protocols`), GitLab-style events (plain `X-Gitlab-Token`). A push to main runs
//! the CI job with the repository's secret (masked in the output); a merge request from a
//! fork whose head rewrites the CI directory runs the BASE branch's job file and CI code
//! (`/job/ci`) against the fork's code (`/job/src`) and sees no secret.

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Api, cluster_env, spawn, wait_for};
use serde_json::{Value, json};

const TOKEN: &str = "gl-deploy-token-7781";
const HOOK_SECRET: &str = "gitlab-hook-secret-123456";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (p, text) in files {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
}

fn commit_push(work: &Path, files: &[(&str, &str)], dest: &str) -> String {
    write(work, files);
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", "c"]);
    git(
        work,
        &["push", "-q", "-f", "origin", &format!("HEAD:{dest}")],
    );
    git(work, &["rev-parse", "HEAD"])
}

fn hook(base: &str, kind: &str, delivery: &str, body: &Value) -> (u16, Value) {
    let res = reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/hooks/gitlab"))
        .header("x-gitlab-event", kind)
        .header("x-gitlab-event-uuid", delivery)
        .header("x-gitlab-token", HOOK_SECRET)
        .json(body)
        .send()
        .expect("hook");
    let s = res.status().as_u16();
    (s, res.json().expect("json"))
}

/// Waits for the single workflow of a hook answer to finish; answers its node job's stdout.
fn run_output(api: &Api, answer: &Value) -> (Value, String) {
    let ids = answer["workflow_ids"].as_array().expect("ids");
    assert_eq!(ids.len(), 1, "{answer}");
    let id = ids[0].as_str().expect("id");
    let wf = wait_for(Duration::from_secs(120), "the workflow to finish", || {
        let (s, wf) = api.get(&format!("/api/v1/workflows/{id}"));
        assert_eq!(s, 200, "{wf}");
        (wf["status"] != "running").then_some(wf)
    });
    let job = wf["nodes"][0]["job_id"]
        .as_str()
        .expect("job id")
        .to_owned();
    let (s, ev) = api.get(&format!("/api/v1/jobs/{job}/events?limit=1000"));
    assert_eq!(s, 200, "{ev}");
    let out = ev["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["stream"] == "stdout")
        .filter_map(|e| e["data"].as_str())
        .collect::<String>();
    (wf, out)
}

#[test]
fn a_fork_merge_request_runs_the_base_ci_without_secrets() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bare = dir.path().join("origin.git");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&bare).expect("mkdir");
    std::fs::create_dir_all(&work).expect("mkdir");
    git(&bare, &["init", "-q", "--bare"]);
    git(&work, &["init", "-q"]);
    let url = format!("file://{}", bare.display());
    git(&work, &["remote", "add", "origin", &url]);
    let check = "name: check\nsecrets: [DEPLOY_TOKEN]\nsteps:\n  - name: s\n    command: 'cat /job/ci/.voidrunner/marker.txt /job/src/app.txt; echo \"token=[${DEPLOY_TOKEN:-none}]\"'\n";
    let before = commit_push(
        &work,
        &[
            (
                ".voidrunner/workflows/ci.yaml",
                "name: ci\non: {events: [push, pull_request_opened], branches: [main]}\njobs:\n  check: {job_file: check.yaml}\n",
            ),
            (".voidrunner/jobs/check.yaml", check),
            (".voidrunner/marker.txt", "marker=BASE\n"),
            ("app.txt", "app=v1\n"),
        ],
        "refs/heads/main",
    );
    let main = commit_push(&work, &[("app.txt", "app=v2\n")], "refs/heads/main");
    git(&work, &["checkout", "-q", "-b", "fork"]);
    let head = commit_push(
        &work,
        &[
            (
                ".voidrunner/jobs/check.yaml",
                "name: check\nsecrets: [DEPLOY_TOKEN]\nsteps:\n  - {name: s, command: 'echo EVIL-JOB $DEPLOY_TOKEN'}\n",
            ),
            (".voidrunner/marker.txt", "marker=EVIL\n"),
            ("app.txt", "app=fork\n"),
        ],
        "refs/merge-requests/7/head",
    );

    let mut env = cluster_env();
    env.push(("VOIDRUNNER_HOOKS__GIT_PROTOCOLS", "[\"file\"]".to_owned()));
    env.push(("VOIDRUNNER_JOBS__GIT_PROTOCOLS", "[\"file\"]".to_owned()));
    let mut node = spawn(
        dir.path(),
        &["serve", "--workers", "1", "--listen", "127.0.0.1:0"],
        &env,
    );
    let api = Api::register(&node.url, "git-hooks@example.com");
    let (s, repo) = api
        .post(
            "/api/v1/repositories",
            &json!({"provider": "gitlab", "full_name": "grp/app", "clone_url": url,
                "webhook_secret": HOOK_SECRET, "secrets": {"DEPLOY_TOKEN": TOKEN}}),
        )
        .expect("register");
    assert_eq!(s, 201, "{repo}");

    // A push to main: trusted, the secret reaches the job (and is masked in its output).
    let push = json!({"object_kind": "push", "ref": "refs/heads/main", "before": before,
        "after": main, "project": {"path_with_namespace": "grp/app"}});
    let t = std::time::Instant::now();
    let (s, answer) = hook(&node.url, "Push Hook", "push-1", &push);
    eprintln!(
        "push hook answered in {:?} (fetch, verify, read CI, create, first pass)",
        t.elapsed()
    );
    assert_eq!(s, 202, "{answer}");
    let (wf, out) = run_output(&api, &answer);
    assert_eq!(wf["status"], "succeeded", "{wf}\n{out}");
    assert_eq!(out, "marker=BASE\napp=v2\ntoken=[***]\n");

    // A merge request from a fork that rewrites the CI directory.
    let mr = json!({"object_kind": "merge_request", "project": {"path_with_namespace": "grp/app"},
        "object_attributes": {"action": "open", "iid": 7, "source_branch": "fork",
            "target_branch": "main", "source_project_id": 99, "target_project_id": 1,
            "last_commit": {"id": head}}});
    let t = std::time::Instant::now();
    let (s, answer) = hook(&node.url, "Merge Request Hook", "mr-1", &mr);
    eprintln!("merge request hook answered in {:?}", t.elapsed());
    assert_eq!(s, 202, "{answer}");
    let (wf, out) = run_output(&api, &answer);
    assert_eq!(wf["trusted"], false, "{wf}");
    assert_eq!(wf["status"], "succeeded", "{wf}\n{out}");
    // The base branch's job and CI code, the fork's code, no secret.
    assert_eq!(out, "marker=BASE\napp=fork\ntoken=[none]\n");
    assert!(!out.contains("EVIL") && !out.contains(TOKEN));
    // Redelivered: nothing new.
    let t = std::time::Instant::now();
    let (s, again) = hook(&node.url, "Merge Request Hook", "mr-1", &mr);
    eprintln!("redelivery answered in {:?}", t.elapsed());
    assert_eq!(
        (s, &again["workflow_ids"]),
        (200, &answer["workflow_ids"]),
        "{again}"
    );
    node.stop();
}
