//! `voidrunner repo …` as a user runs it: the real binary against a real `voidrunner serve`
//! (API only, `file://` repositories allowed), a real git repository and GitLab-style events.
//! A repository registered with its secrets read from stdin, a file and the environment is
//! listed and shown with its secrets only as "set"; a push event's delivery is listed with
//! its ref, outcome and the workflow it started; rotating the webhook secret makes the old
//! one refused; status reporting's token comes from a file; delete asks for `--yes` and then
//! removes it. No secret value is ever printed.

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{Api, cluster_env, spawn};
use serde_json::{Value, json};

const HOOK_SECRET: &str = "first-hook-secret-0042";
const NEW_HOOK_SECRET: &str = "rotated-hook-secret-0077";
const DEPLOY_TOKEN: &str = "deploy-token-value-991";
const OTHER: &str = "other-secret-value-552";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(["-c", "init.defaultBranch=main"])
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

/// A repository with a CI workflow that runs on pushes to main; answers (first, second) shas.
fn repository(root: &Path) -> (String, String) {
    git(root, &["init", "-q"]);
    let wf = root.join(".voidrunner/workflows/ci.yaml");
    std::fs::create_dir_all(wf.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        &wf,
        "name: ci\non: {events: [push], branches: [main]}\njobs:\n  check:\n    job: {name: check, steps: [{name: s, command: 'true'}]}\n",
    )
    .expect("write");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "one"]);
    let first = git(root, &["rev-parse", "HEAD"]);
    std::fs::write(root.join("app.txt"), "v2\n").expect("write");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "two"]);
    (first, git(root, &["rev-parse", "HEAD"]))
}

/// Runs `voidrunner repo <args>` against `api`'s server as its user, with `stdin` piped in.
fn repo(api: &Api, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = Command::new(common::BIN)
        .arg("repo")
        .args(args)
        .env("VOIDRUNNER_SERVER", &api.base)
        .env("VOIDRUNNER_API_KEY", &api.token)
        .env_remove("VOIDRUNNER_WEBHOOK_SECRET")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn voidrunner repo");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [HOOK_SECRET, NEW_HOOK_SECRET, DEPLOY_TOKEN, OTHER] {
        assert!(
            !all.contains(secret),
            "repo {args:?} printed a secret: {all}"
        );
    }
    out
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "unexpected success");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn hook(base: &str, token: &str, delivery: &str, body: &Value) -> (u16, Value) {
    let res = reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/hooks/gitlab"))
        .header("x-gitlab-event", "Push Hook")
        .header("x-gitlab-event-uuid", delivery)
        .header("x-gitlab-token", token)
        .json(body)
        .send()
        .expect("hook");
    let s = res.status().as_u16();
    (s, res.json().expect("json"))
}

#[test]
fn repo_commands_register_show_rotate_and_delete_with_deliveries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("app");
    std::fs::create_dir_all(&src).expect("mkdir");
    let (before, after) = repository(&src);
    let url = format!("file://{}", src.display());
    let mut env = cluster_env();
    env.push(("VOIDRUNNER_HOOKS__GIT_PROTOCOLS", "[\"file\"]".to_owned()));
    env.push(("VOIDRUNNER_JOBS__GIT_PROTOCOLS", "[\"file\"]".to_owned()));
    let mut node = spawn(
        dir.path(),
        &["serve", "--workers", "0", "--listen", "127.0.0.1:0"],
        &env,
    );
    let api = Api::register(&node.url, "repo-cli@example.com");
    let secret_file = dir.path().join("secrets.env");
    std::fs::write(&secret_file, format!("# job secrets\nOTHER={OTHER}\n")).expect("write");
    let secret_file = secret_file.to_str().expect("utf-8 path");

    // No webhook secret source: refused before anything is sent, naming the ways to give one.
    let err = failed(&repo(&api, &["add", "gitlab", "grp/app", &url], &[], ""));
    assert!(err.contains("--webhook-secret-file"), "{err}");
    // Too short a secret: the server's 422 names the field.
    let err = failed(&repo(
        &api,
        &[
            "add",
            "gitlab",
            "grp/app",
            &url,
            "--webhook-secret-file",
            "-",
        ],
        &[],
        "short\n",
    ));
    assert!(
        err.contains("422") && err.contains("webhook_secret"),
        "{err}"
    );

    // Registered: webhook secret from stdin, job secrets from a file and the environment.
    let out = ok(&repo(
        &api,
        &[
            "add",
            "gitlab",
            "grp/app",
            &url,
            "--webhook-secret-file",
            "-",
            "--secret-file",
            secret_file,
            "--secret",
            "DEPLOY_TOKEN",
            "--json",
        ],
        &[("VOIDRUNNER_SECRET_DEPLOY_TOKEN", DEPLOY_TOKEN)],
        &format!("{HOOK_SECRET}\n"),
    ));
    let created: Value = serde_json::from_str(&out).expect("add --json");
    assert_eq!(created["secret_names"], json!(["DEPLOY_TOKEN", "OTHER"]));
    assert_eq!(created["hook_path"], "/api/v1/hooks/gitlab");
    let id = created["id"].as_str().expect("id").to_owned();
    // The same repository again: the server's conflict.
    let err = failed(&repo(
        &api,
        &["add", "gitlab", "grp/app", &url],
        &[("VOIDRUNNER_WEBHOOK_SECRET", HOOK_SECRET)],
        "",
    ));
    assert!(err.contains("409"), "{err}");

    let list = ok(&repo(&api, &["list"], &[], ""));
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("ID ") && lines[0].contains("FULL NAME"),
        "{list}"
    );
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[1].starts_with(&id) && lines[1].contains("gitlab    grp/app"),
        "{list}"
    );
    let show = ok(&repo(&api, &["show", "grp/app"], &[], ""));
    assert!(show.contains("webhook secret:   set\n"), "{show}");
    assert!(
        show.contains("job secrets:      DEPLOY_TOKEN (set), OTHER (set)\n"),
        "{show}"
    );
    assert!(
        show.contains(&format!("id:               {id}\n")),
        "{show}"
    );
    assert_eq!(ok(&repo(&api, &["show", &id], &[], "")), show, "by id");
    let err = failed(&repo(&api, &["show", "grp/none"], &[], ""));
    assert!(err.contains("no repository named grp/none"), "{err}");

    // A push to main: the delivery is listed with its ref, outcome and workflow.
    assert_eq!(
        ok(&repo(&api, &["deliveries", "grp/app"], &[], "")),
        "no deliveries\n"
    );
    let push = json!({"object_kind": "push", "ref": "refs/heads/main", "before": before,
        "after": after, "project": {"path_with_namespace": "grp/app"}});
    let (s, answer) = hook(&node.url, HOOK_SECRET, "push-1", &push);
    assert_eq!(s, 202, "{answer}");
    let wf = answer["workflow_ids"][0].as_str().expect("workflow id");
    let table = ok(&repo(&api, &["deliveries", &id], &[], ""));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("RECEIVED") && lines[0].ends_with("WORKFLOWS"),
        "{table}"
    );
    assert!(
        lines[1].contains("  push   refs/heads/main  started  push-1    ")
            && lines[1].ends_with(&format!("ci ({wf})")),
        "{table}"
    );
    let page: Value = serde_json::from_str(&ok(&repo(
        &api,
        &["deliveries", "grp/app", "--json", "--limit", "5"],
        &[],
        "",
    )))
    .expect("deliveries --json");
    assert_eq!(page["items"][0]["workflow_ids"], answer["workflow_ids"]);

    // Rotate the webhook secret (from a named variable) and remove a job secret.
    let err = failed(&repo(&api, &["update", "grp/app"], &[], ""));
    assert!(err.contains("nothing to change"), "{err}");
    let out = ok(&repo(
        &api,
        &[
            "update",
            "grp/app",
            "--webhook-secret-env",
            "NEW_HOOK",
            "--remove-secret",
            "OTHER",
        ],
        &[("NEW_HOOK", NEW_HOOK_SECRET)],
        "",
    ));
    assert!(out.starts_with("updated grp/app\n"), "{out}");
    assert!(
        out.contains("job secrets:      DEPLOY_TOKEN (set)\n"),
        "{out}"
    );
    let (s, body) = hook(&node.url, HOOK_SECRET, "push-2", &push);
    assert_eq!(s, 401, "the old secret is refused: {body}");
    let (s, body) = hook(&node.url, NEW_HOOK_SECRET, "push-1", &push);
    assert_eq!((s, body["duplicate"].clone()), (200, json!(true)), "{body}");

    // Status reporting: the token from a file, shown only as set; one stdin secret at most.
    let token_file = dir.path().join("status-token");
    std::fs::write(&token_file, format!("{DEPLOY_TOKEN}\n")).expect("write");
    let token_file = token_file.to_str().expect("utf-8 path");
    let base = ["add", "github", "acme/other", &url, "--status-api-url"];
    let err = failed(&repo(
        &api,
        &[
            &base[..],
            &[
                "https://api.example.com",
                "--webhook-secret-file",
                "-",
                "--status-token-file",
                "-",
            ],
        ]
        .concat(),
        &[],
        "",
    ));
    assert!(err.contains("only one secret can come from stdin"), "{err}");
    let out = ok(&repo(
        &api,
        &[
            &base[..],
            &["https://api.example.com", "--status-token-file", token_file],
        ]
        .concat(),
        &[("VOIDRUNNER_WEBHOOK_SECRET", HOOK_SECRET)],
        "",
    ));
    assert!(out.starts_with("registered acme/other\n"), "{out}");
    assert!(
        out.contains("status reporting: https://api.example.com (token set)\n"),
        "{out}"
    );
    assert!(out.contains("job secrets:      none\n"), "{out}");
    ok(&repo(&api, &["delete", "acme/other", "--yes"], &[], ""));

    // Delete: refused without a terminal or --yes, then done.
    let err = failed(&repo(&api, &["delete", "grp/app"], &[], ""));
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(api.get(&format!("/api/v1/repositories/{id}")).0, 200);
    let out = ok(&repo(&api, &["delete", "grp/app", "--yes"], &[], ""));
    assert_eq!(out, format!("deleted repository grp/app ({id})\n"));
    assert_eq!(ok(&repo(&api, &["list"], &[], "")), "no repositories\n");
    let err = failed(&repo(&api, &["show", &id], &[], ""));
    assert!(err.contains("404"), "{err}");
    node.stop();
}
