//! `voidrunner workflow run` and `voidrunner job run [--follow]` as a user runs them: the
//! real binary, real git repositories (allowed through `--allow-protocol file`), the real
//! sandbox. A fan-out/fan-in workflow runs in dependency order with the fanned-out builds
//! overlapping and an output flowing from build into publish; a failing build runs the
//! `any_failed` cleanup and skips publish; conflicting outputs fail the workflow; a job's
//! triggered follow-ups are listed with their reason and command, or run with `--follow`.

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_voidrunner");

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

/// A git repository with `version.txt` = 2.5.
fn repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir(&repo).expect("repo");
    git(&repo, &["init", "-q", "--initial-branch=main"]);
    std::fs::write(repo.join("version.txt"), "2.5\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "c"]);
    repo
}

fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A job's state in the `--json` report of `workflow run`.
fn states(report: &serde_json::Value) -> Vec<(String, String)> {
    report["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().expect("name").to_owned(),
                n["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// `(start, end)` times a build printed as `[build[i]/build] window <start> <end>`.
fn windows(stderr: &str) -> Vec<(f64, f64)> {
    (0..3)
        .map(|i| {
            let prefix = format!("[build[{i}]/build] window ");
            let line = stderr
                .lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no window of build[{i}]: {stderr}"));
            let mut t = line
                .split_whitespace()
                .map(|x| x.parse::<f64>().expect("time"));
            (t.next().expect("start"), t.next().expect("end"))
        })
        .collect()
}

#[test]
fn workflow_run_fans_out_and_in_with_outputs_cleanup_and_conflicts() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo(dir.path());
    let source = format!("{{type: git, url: \"file://{}\"}}", repo.display());
    let ci = dir.path().join("ci");
    write(
        &ci.join("release.yaml"),
        r#"
name: release
vars: {channel: stable}
jobs:
  prepare: {job_file: jobs/prepare.yaml}
  build:
    job_file: jobs/build.yaml
    needs: [prepare]
    for_each: [linux, windows, mac]
    item_var: TARGET
  publish: {job_file: jobs/publish.yaml, depends_on: [build]}
  cleanup:
    job: {name: cleanup, steps: [{name: rm, command: "echo cleaning up"}]}
    depends_on: [build]
    condition: any_failed
"#,
    );
    write(
        &ci.join("jobs/prepare.yaml"),
        &format!(
            "name: prepare\nsource: {source}\nsteps: [{{name: check, command: \"cat version.txt\"}}]\n"
        ),
    );
    write(
        &ci.join("jobs/build.yaml"),
        &format!(
            r#"name: build
source: {source}
env: {{FAIL_ON: none, CONFLICT: "no"}}
steps:
  - name: build
    command: |
      start=$(date +%s.%N); sleep 1; end=$(date +%s.%N)
      echo "window $start $end"
      test "$TARGET" != "$FAIL_ON" || exit 3
      v=$(cat version.txt); [ "$CONFLICT" = yes ] && v="$TARGET"
      /usr/bin/python3 -c "import sys, voidrunner_job as vr; vr.set_output('version', sys.argv[1])" "$v"
"#
        ),
    );
    write(
        &ci.join("jobs/publish.yaml"),
        "name: publish\nsteps:\n  - name: publish\n    command: /usr/bin/python3 -c \"import voidrunner_job as vr; w = vr.workflow(); print('publishing', vr.get_output('build.version'), 'to', w['vars']['channel'], 'from', w['node'])\"\n",
    );
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .current_dir(dir.path())
            .args([
                "workflow",
                "run",
                "--allow-protocol",
                "file",
                "--width",
                "3",
                "--json",
            ])
            .args(extra)
            .arg(ci.join("release.yaml"))
            .output()
            .expect("run")
    };

    let out = run(&[]);
    let stderr = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["status"], "succeeded");
    assert_eq!(
        states(&report),
        pairs(&[
            ("build[0]", "succeeded"),
            ("build[1]", "succeeded"),
            ("build[2]", "succeeded"),
            ("cleanup", "skipped"),
            ("prepare", "succeeded"),
            ("publish", "succeeded"),
        ])
    );
    assert_eq!(report["outputs"]["build.version"], "2.5");
    assert!(
        stderr.contains("[publish/publish] publishing 2.5 to stable from publish\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("⏭ node cleanup skipped: no dependency failed"),
        "{stderr}"
    );
    // Dependency order: prepare ended before any build started, publish started after all.
    let pos = |needle: &str| {
        stderr
            .find(needle)
            .unwrap_or_else(|| panic!("{needle}: {stderr}"))
    };
    let prepare_done = pos("✔ node prepare succeeded");
    for i in 0..3 {
        assert!(
            prepare_done < pos(&format!("▶ node build[{i}] started")),
            "{stderr}"
        );
        assert!(pos(&format!("✔ node build[{i}] succeeded")) < pos("▶ node publish started"));
    }
    // The three builds overlapped.
    let w = windows(&stderr);
    let latest_start = w.iter().map(|x| x.0).fold(f64::MIN, f64::max);
    let earliest_end = w.iter().map(|x| x.1).fold(f64::MAX, f64::min);
    assert!(latest_start < earliest_end, "builds overlap: {w:?}");
    assert!(stderr.contains("workflow succeeded in"), "{stderr}");

    // A build fails: cleanup runs, publish is skipped, the workflow fails.
    let out = run(&["--env", "FAIL_ON=windows"]);
    let stderr = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["status"], "failed");
    assert_eq!(
        states(&report),
        pairs(&[
            ("build[0]", "succeeded"),
            ("build[1]", "failed"),
            ("build[2]", "succeeded"),
            ("cleanup", "succeeded"),
            ("prepare", "succeeded"),
            ("publish", "skipped"),
        ])
    );
    assert!(stderr.contains("[cleanup/rm] cleaning up"), "{stderr}");
    assert!(
        stderr.contains("⏭ node publish skipped: dependency build[1] did not succeed"),
        "{stderr}"
    );

    // Builds publish different values under one key: the workflow fails and says why.
    let out = run(&["--env", "CONFLICT=yes"]);
    let stderr = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["status"], "failed");
    let error = report["error"].as_str().expect("error");
    assert!(
        error.contains("output build.version written twice with different values"),
        "{error}"
    );
    assert!(stderr.contains("error: output build.version"), "{stderr}");
}

#[test]
fn job_run_lists_triggered_jobs_and_follow_runs_them() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo(dir.path());
    let ci = dir.path().join("ci");
    write(
        &ci.join("parent.yaml"),
        &format!(
            r#"name: parent
source: {{type: git, url: "file://{}"}}
env: {{REGION: north}}
steps:
  - name: go
    command: |
      /usr/bin/python3 - <<'EOF'
      import voidrunner_job as vr
      vr.set_output("version", open("version.txt").read().strip())
      a = vr.trigger_jobs([{{"job_name": "deploy", "depends_on": ["parent"], "env": {{"TARGET": "eu"}}}},
                           {{"job_name": "smoke", "depends_on": ["deploy"],
                             "job": {{"name": "smoke", "steps": [{{"name": "s", "command": "echo smoke $REGION"}}]}}}}],
                          operation_id="op-1")
      print("replay duplicate:", vr.trigger_jobs([{{"job_name": "deploy"}}], operation_id="op-1")["duplicate"])
      vr.write_triggers(["notify"], operation_id="op-2")
      EOF
"#,
            repo.display(),
        ),
    );
    write(
        &ci.join("jobs/deploy.yaml"),
        "name: deploy\nsteps: [{name: s, command: \"echo deploy $TARGET $REGION; /usr/bin/python3 -c 'import voidrunner_job as v; print(v.get_output(\\\"parent.version\\\"))'\"}]\n",
    );
    write(
        &ci.join("jobs/notify.yaml"),
        "name: notify\nsteps: [{name: s, command: \"echo notified\"}]\n",
    );
    let job = ci.join("parent.yaml");

    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["job", "run", "--allow-protocol", "file"])
        .arg(&job)
        .output()
        .expect("run");
    let stderr = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("[go] replay duplicate: True"), "{stderr}");
    assert!(
        stderr.contains("3 triggered jobs would run next"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  deploy: triggered by parent (operation op-1); ready\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  smoke: triggered by parent (operation op-1); waiting for deploy\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  notify: triggered by parent (operation op-2); ready\n"),
        "{stderr}"
    );
    let deploy_cmd = format!(
        "voidrunner job run --allow-protocol file --env REGION=north --env TARGET=eu {}",
        ci.join("jobs/deploy.yaml").display()
    );
    assert!(stderr.contains(&deploy_cmd), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "voidrunner job run --allow-protocol file --follow {}",
            job.display()
        )),
        "inline jobs: run the parent with --follow: {stderr}"
    );
    assert!(!stderr.contains("deploy eu"), "nothing else ran: {stderr}");

    // The printed command runs the follow-up on its own.
    let mut words = deploy_cmd.split_whitespace().skip(1);
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(words.by_ref())
        .output()
        .expect("run");
    let stderr = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("[s] deploy eu north"), "{stderr}");

    // --follow runs them all, in order, with the parent's outputs and env.
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "job",
            "run",
            "--allow-protocol",
            "file",
            "--follow",
            "--json",
        ])
        .arg(&job)
        .output()
        .expect("run");
    let stderr = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("[deploy/s] deploy eu north\n"), "{stderr}");
    assert!(
        stderr.contains("[deploy/s] 2.5\n"),
        "parent's output: {stderr}"
    );
    assert!(stderr.contains("[smoke/s] smoke north"), "{stderr}");
    assert!(stderr.contains("[notify/s] notified"), "{stderr}");
    let deploy_done = stderr.find("✔ node deploy succeeded").expect("deploy");
    let smoke_started = stderr.find("▶ node smoke started").expect("smoke");
    assert!(deploy_done < smoke_started, "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["workflow"]["status"], "succeeded");
    assert_eq!(
        states(&report["workflow"]),
        pairs(&[
            ("parent", "succeeded"),
            ("deploy", "succeeded"),
            ("smoke", "succeeded"),
            ("notify", "succeeded"),
        ])
    );
    assert_eq!(report["next"], serde_json::json!([]));
}

/// `workflow submit --wait` against a real server (SQLite, one job worker with its
/// scheduler): the CI files travel with the definition, the parent job triggers two
/// follow-ups through the socket (a replay adding nothing) and one through
/// `/job/triggers.json`, and they all run there.
#[test]
fn workflow_submit_waits_and_triggered_jobs_run_on_the_server() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ci = dir.path().join("ci");
    write(
        &ci.join("remote.yaml"),
        "name: remote\njobs:\n  parent: {job_file: jobs/parent.yaml}\n  after: {job: {name: after, steps: [{name: s, command: \"echo after\"}]}, needs: [parent]}\n",
    );
    write(
        &ci.join("jobs/parent.yaml"),
        r#"name: parent
env: {REGION: south}
steps:
  - name: go
    command: |
      /usr/bin/python3 - <<'EOF'
      import voidrunner_job as vr
      vr.set_output("version", "3.1")
      a = vr.trigger_jobs([{"job_name": "deploy", "depends_on": ["parent"]},
                           {"job_name": "smoke", "depends_on": ["deploy"],
                            "job": {"name": "smoke", "steps": [{"name": "s", "command": "echo smoke"}]}}],
                          operation_id="op-1")
      b = vr.trigger_jobs([{"job_name": "deploy"}], operation_id="op-1")
      assert a["nodes"] == ["deploy", "smoke"] and not a["duplicate"], a
      assert b["duplicate"] and b["nodes"] == a["nodes"], b
      vr.write_triggers(["notify"], operation_id="op-2")
      EOF
"#,
    );
    write(
        &ci.join("jobs/deploy.yaml"),
        "name: deploy\nsteps: [{name: s, command: \"echo deploy $REGION; /usr/bin/python3 -c 'import voidrunner_job as v; assert v.get_output(\\\"parent.version\\\") == \\\"3.1\\\"'\"}]\n",
    );
    write(
        &ci.join("jobs/notify.yaml"),
        "name: notify\nsteps: [{name: s, command: \"echo notified\"}]\n",
    );
    let node = common::spawn(
        dir.path(),
        &["serve", "--workers", "1", "--listen", "127.0.0.1:0"],
        &common::cluster_env(),
    );
    let api = common::Api::register(&node.url, "wf-submit@example.com");
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["workflow", "submit", "--wait", "--server", &node.url])
        .arg(ci.join("remote.yaml"))
        .env("VOIDRUNNER_API_KEY", &api.token)
        .output()
        .expect("submit");
    let stderr = text(&out);
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.code() != Some(0) {
        let (_, wf) = api.get(&format!("/api/v1/workflows/{id}"));
        let jobs: Vec<serde_json::Value> = wf["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["job_id"].as_str())
            .map(|j| api.get(&format!("/api/v1/jobs/{j}")).1)
            .collect();
        panic!("{stderr}\n{wf:#}\n{jobs:#?}");
    }
    assert!(stderr.contains("workflow succeeded"), "{stderr}");
    for n in ["parent", "after", "deploy", "smoke", "notify"] {
        assert!(
            stderr.contains(&format!("node {n} succeeded")),
            "{n}: {stderr}"
        );
    }
    let (status, wf) = api.get(&format!("/api/v1/workflows/{id}"));
    assert_eq!(status, 200, "{wf}");
    let nodes = wf["nodes"].as_array().expect("nodes");
    let mut names: Vec<&str> = nodes
        .iter()
        .map(|n| n["name"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["after", "deploy", "notify", "parent", "smoke"],
        "{wf}"
    );
    let job_of =
        |name: &str| nodes.iter().find(|n| n["name"] == name).expect("node")["job_id"].clone();
    for n in ["deploy", "smoke", "notify"] {
        let node = nodes.iter().find(|x| x["name"] == n).expect("node");
        assert_eq!(node["parent_job_id"], job_of("parent"), "{n}: {wf}");
    }
}

/// `voidrunner workflow list|show|cancel|rerun` against a real server: a failing workflow is
/// listed as failed and shown with its nodes; its re-run runs only the failed node again
/// (run 2); a running workflow is cancelled.
#[test]
fn workflow_list_show_cancel_and_rerun_on_a_server() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let flaky = dir.path().join("flaky.yaml");
    write(
        &flaky,
        "name: flaky\njobs:\n  ok: {job: {name: ok, steps: [{name: s, command: \"true\"}]}}\n  bad: {job: {name: bad, steps: [{name: s, command: \"exit 3\"}]}, needs: [ok]}\n",
    );
    let slow = dir.path().join("slow.yaml");
    write(
        &slow,
        "name: slow\njobs:\n  nap: {job: {name: nap, steps: [{name: s, command: \"sleep 30\"}]}}\n  after: {job: {name: after, steps: [{name: s, command: \"true\"}]}, needs: [nap]}\n",
    );
    let node = common::spawn(
        dir.path(),
        &["serve", "--workers", "1", "--listen", "127.0.0.1:0"],
        &common::cluster_env(),
    );
    let api = common::Api::register(&node.url, "wf-remote@example.com");
    let cli = |args: &[&str]| {
        Command::new(BIN)
            .current_dir(dir.path())
            .args(["workflow"])
            .args(args)
            .args(["--server", &node.url])
            .env("VOIDRUNNER_API_KEY", &api.token)
            .output()
            .expect("voidrunner workflow")
    };
    let out = cli(&["submit", "--wait", flaky.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();

    let out = cli(&["list", "--status", "failed"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(listed.contains(&id) && listed.contains("flaky"), "{listed}");
    let out = cli(&["list", "--status", "succeeded"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&id));

    let out = cli(&["show", &id]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed workflow: {}",
        text(&out)
    );
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(shown.contains("failed (run 1)"), "{shown}");
    assert!(shown.contains("node ok succeeded"), "{shown}");
    assert!(shown.contains("node bad failed"), "{shown}");
    let (_, before) = api.get(&format!("/api/v1/workflows/{id}"));
    let job_of = |wf: &serde_json::Value, n: &str| {
        wf["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|x| x["name"] == n)
            .expect("node")["job_id"]
            .clone()
    };

    let out = cli(&["rerun", "--wait", &id]);
    assert_eq!(out.status.code(), Some(1), "fails again: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("run 2"),
        "{}",
        text(&out)
    );
    let (_, after) = api.get(&format!("/api/v1/workflows/{id}"));
    assert_eq!(after["run"], 2);
    assert_eq!(
        job_of(&after, "ok"),
        job_of(&before, "ok"),
        "the succeeded node keeps its job"
    );
    assert_ne!(
        job_of(&after, "bad"),
        job_of(&before, "bad"),
        "the failed node runs again"
    );
    let out = cli(&["rerun", &node.url]);
    assert!(!out.status.success(), "not a workflow id");

    let out = cli(&["submit", slow.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out));
    let slow_id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let out = cli(&["show", &slow_id]);
    assert_eq!(out.status.code(), Some(2), "running: {}", text(&out));
    let out = cli(&["cancel", &slow_id]);
    assert!(out.status.success(), "{}", text(&out));
    let mut status = String::new();
    for _ in 0..100 {
        let (_, wf) = api.get(&format!("/api/v1/workflows/{slow_id}"));
        status = wf["status"].as_str().unwrap_or("").to_owned();
        if status != "running" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(status, "cancelled");
    let out = cli(&["show", &slow_id]);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("node after skipped"),
        "{}",
        text(&out)
    );
}

/// `voidrunner job ctl trigger|job-status` against a job socket served with a workflow link:
/// the trigger adds the node once (a replay says duplicate), the status is the node's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_ctl_triggers_and_reads_node_status() {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use voidrunner_jobs::control::{ControlServer, ControlWorkflow, JobState};
    use voidrunner_jobs::runner::local::LocalWorkflow;
    use voidrunner_jobs::workflow::{NodeCondition, NodeSpec};
    use voidrunner_mask::{SecretRegistry, SecretSet};

    let dir = tempfile::tempdir().expect("tempdir");
    let parse = |y: &str| voidrunner_jobs::parse(y, voidrunner_jobs::Format::Yaml).expect("job");
    let files = BTreeMap::from([(
        "jobs/notify.yaml".to_owned(),
        "name: notify\nsteps: [{name: s, command: 'true'}]\n".to_owned(),
    )]);
    let wf = LocalWorkflow::new(
        "wf",
        BTreeMap::new(),
        files,
        vec![NodeSpec {
            name: "parent".into(),
            group: "parent".into(),
            job: parse("name: parent\nsteps: [{name: s, command: 'true'}]\n"),
            depends_on: Vec::new(),
            condition: NodeCondition::AllSuccess,
        }],
    );
    let socket = dir.path().join("control.sock");
    let token = "ctl-test-token-0123456789abcdef";
    let _server = ControlServer::start_with(
        &socket,
        token.into(),
        SecretRegistry::new(SecretSet::new()),
        Arc::new(JobState::default()),
        dir.path(),
        ControlWorkflow {
            context: None,
            link: Some(wf.link("parent")),
        },
    )
    .expect("socket");
    let ctl = |args: Vec<&'static str>| {
        let socket = socket.clone();
        tokio::task::spawn_blocking(move || {
            let out = Command::new(BIN)
                .args(["job", "ctl"])
                .args(args)
                .env("VOIDRUNNER_JOB_SOCKET", &socket)
                .env("VOIDRUNNER_JOB_TOKEN", token)
                .output()
                .expect("ctl");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        })
    };
    let trigger = vec![
        "trigger",
        "late",
        "--job-file",
        "jobs/notify.yaml",
        "--depends-on",
        "parent",
        "--env",
        "K=v",
        "--operation-id",
        "op-9",
    ];
    assert_eq!(
        ctl(trigger.clone()).await.expect("join"),
        (true, "late\n".to_owned())
    );
    assert_eq!(
        ctl(trigger).await.expect("join"),
        (true, "late (duplicate: already applied)\n".to_owned())
    );
    assert_eq!(
        ctl(vec!["job-status", "late"]).await.expect("join"),
        (true, "pending\n".to_owned())
    );
    assert_eq!(
        ctl(vec!["job-status", "ghost"]).await.expect("join"),
        (true, "none\n".to_owned())
    );
    let (ok, text) = ctl(vec!["trigger", "bad name"]).await.expect("join");
    assert!(!ok && text.contains("jobs[0].job_name"), "{text}");
    let nodes = wf.nodes();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[1].spec.job.env["K"], "v");
    assert_eq!(nodes[1].spec.depends_on, ["parent"]);
}
