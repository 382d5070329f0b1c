//! Follow-up jobs from inside a job, with the in-memory [`LocalWorkflow`] as the job's
//! workflow link: through the socket with the real Python module (two follow-ups, a replayed
//! operation id adding nothing, a link refusal reaching the job as `JobError`), through
//! `/job/triggers.json` read when the job ends, and whole local runs in the real sandbox
//! where the triggered jobs run and read the parent's outputs.

#[expect(dead_code, reason = "the shared helpers include git, unused here")]
mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_jobs::control::{ControlServer, ControlWorkflow, JobState};
use voidrunner_jobs::link::WorkflowContext;
use voidrunner_jobs::runner::local::{LocalEvent, LocalRun, LocalWorkflow, run_workflow};
use voidrunner_jobs::runner::{JobEvent, RunnerConfig};
use voidrunner_jobs::source::SourcePolicy;
use voidrunner_jobs::workflow::{NodeCondition, NodeSpec, NodeState, WorkflowStatus};
use voidrunner_jobs::{Format, PYTHON_MODULE, parse};
use voidrunner_mask::{SecretRegistry, SecretSet};
use voidrunner_sandbox::Limits;

fn spec(name: &str, yaml: &str) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        group: name.into(),
        job: parse(yaml, Format::Yaml).unwrap_or_else(|p| panic!("{p}")),
        depends_on: Vec::new(),
        condition: NodeCondition::AllSuccess,
    }
}

fn ci_files() -> BTreeMap<String, String> {
    let job =
        |name: &str, cmd: &str| format!("name: {name}\nsteps: [{{name: s, command: \"{cmd}\"}}]\n");
    BTreeMap::from([
        (
            "jobs/deploy.yaml".into(),
            job("deploy", "echo deploy $TARGET"),
        ),
        ("jobs/notify.yml".into(), job("notify", "echo notify")),
        (
            "jobs/report.yaml".into(),
            job(
                "report",
                "/usr/bin/python3 -c 'import voidrunner_job as v; print(\\\"got\\\", v.get_output(\\\"parent.version\\\"), v.get_output(\\\"deploy.where\\\"))'",
            ),
        ),
    ])
}

/// A step's Python, run off the runtime against a socket (no sandbox needed).
fn python(root: &std::path::Path, socket: &std::path::Path, token: &str, code: &str) -> String {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(code)
        .env_clear()
        .env("PYTHONPATH", root.join(".voidrunner"))
        .env("VOIDRUNNER_JOB_SOCKET", socket)
        .env("VOIDRUNNER_JOB_TOKEN", token)
        .output()
        .expect("python");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_triggers_replays_refusals_and_workflow_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("job");
    std::fs::create_dir_all(root.join(".voidrunner")).expect("mkdir");
    std::fs::write(root.join(".voidrunner/voidrunner_job.py"), PYTHON_MODULE).expect("module");
    let wf = LocalWorkflow::new(
        "wf-1",
        BTreeMap::new(),
        ci_files(),
        vec![spec(
            "parent",
            "name: parent\nenv: {A: from-parent}\nsecrets: [TOKEN]\nsteps: [{name: s, command: 'true'}]\n",
        )],
    );
    let context = WorkflowContext {
        workflow_id: "wf-1".into(),
        node: "parent".into(),
        outputs: BTreeMap::from([("build.version".into(), "1.2".into())]),
        ..WorkflowContext::default()
    };
    let socket = root.join(".voidrunner/control.sock");
    let token = "token-of-the-parent-0123456789";
    let _server = ControlServer::start_with(
        &socket,
        token.into(),
        SecretRegistry::new(SecretSet::new()),
        Arc::new(JobState::default()),
        &root,
        ControlWorkflow {
            context: Some(context),
            link: Some(wf.link("parent")),
        },
    )
    .expect("start");
    let triggers = root.join("triggers.json");
    let code = format!(
        r#"
import json, voidrunner_job as vr
print("out", vr.get_output("build.version"))
vr.set_output("build.version", "own")
print("own", vr.get_output("build.version"))
a = vr.trigger_jobs([{{"job_name": "deploy", "env": {{"TARGET": "eu"}}}}, {{"job_name": "notify", "depends_on": ["deploy"]}}], operation_id="op-1")
print("first", a["nodes"], a["duplicate"])
b = vr.trigger_jobs([{{"job_name": "deploy"}}], operation_id="op-1")
print("replay", b["nodes"], b["duplicate"])
for kwargs in [dict(job={{"name": "x", "secrets": ["ADMIN"], "steps": [{{"name": "s", "command": "true"}}]}}),
               dict(job_file="../../etc/passwd"), dict(job_file="jobs/notify.yml", condition="sometimes")]:
    try:
        vr.trigger_job("evil", **kwargs)
        print("accepted?!")
    except vr.JobError as e:
        print("refused", e)
try:
    vr.trigger_job("deploy")
except vr.JobError as e:
    print("refused", e)
print("running", vr.is_job_running("deploy"), vr.is_job_running("ghost"))
print("result", vr.get_job_result("deploy")["status"], vr.get_job_result("ghost"))
vr.write_triggers(["report"], operation_id="op-2", path="{t}")
vr.write_triggers([{{"job_name": "late", "job_file": "jobs/notify.yml"}}], path="{t}")
p = json.load(open("{t}"))
print("file", p["operation_id"], [j["job_name"] for j in p["jobs"]])
"#,
        t = triggers.display()
    );
    let (r, s) = (root.clone(), socket.clone());
    let text = tokio::task::spawn_blocking(move || python(&r, &s, token, &code))
        .await
        .expect("join");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "out 1.2", "{text}");
    assert_eq!(lines[1], "own own", "own outputs win: {text}");
    assert_eq!(lines[2], "first ['deploy', 'notify'] False", "{text}");
    assert_eq!(lines[3], "replay ['deploy', 'notify'] True", "{text}");
    assert!(
        lines[4].starts_with(
            "refused jobs[0]: secrets[0]: ADMIN is not a secret of the triggering job"
        ),
        "{text}"
    );
    assert!(
        lines[5].contains("jobs[0].job_file: escapes the job root"),
        "{text}"
    );
    assert!(
        lines[6].contains("jobs[0].condition: unsupported condition"),
        "{text}"
    );
    assert!(
        lines[7].contains("node \"deploy\" already exists"),
        "{text}"
    );
    assert_eq!(lines[8], "running True False", "{text}");
    assert_eq!(lines[9], "result pending None", "{text}");
    assert_eq!(lines[10], "file op-2 ['report', 'late']", "{text}");
    let nodes = wf.nodes();
    let names: Vec<&str> = nodes.iter().map(|n| n.spec.name.as_str()).collect();
    assert_eq!(names, ["parent", "deploy", "notify"], "nothing else added");
    let deploy = &nodes[1];
    assert_eq!(deploy.spec.job.env["A"], "from-parent", "env inherited");
    assert_eq!(deploy.spec.job.env["TARGET"], "eu");
    assert_eq!(deploy.job_file.as_deref(), Some("jobs/deploy.yaml"));
    let by = deploy.triggered_by.as_ref().expect("triggered");
    assert_eq!(
        (by.node.as_str(), by.operation_id.as_str()),
        ("parent", "op-1")
    );
    assert_eq!(nodes[2].spec.depends_on, ["deploy"]);

    // Without a link the workflow ops are refused, and say why.
    let plain_socket = dir.path().join("plain.sock");
    let _plain = ControlServer::start(
        &plain_socket,
        token.into(),
        SecretRegistry::new(SecretSet::new()),
        Arc::new(JobState::default()),
        &root,
    )
    .expect("start");
    let r = root.clone();
    let text = tokio::task::spawn_blocking(move || {
        python(
            &r,
            &plain_socket,
            token,
            "import voidrunner_job as vr\ntry:\n    vr.trigger_job('deploy')\nexcept vr.JobError as e:\n    print(e)",
        )
    })
    .await
    .expect("join");
    assert!(text.contains("not part of a workflow"), "{text}");
}

fn local_run(dir: &std::path::Path) -> LocalRun {
    let (sandbox, _) = common::sandbox(dir);
    LocalRun {
        sandbox,
        cfg: RunnerConfig {
            width: 2,
            sources: SourcePolicy::default(),
            step_limits: Limits {
                wall_timeout: Duration::from_secs(60),
                memory_bytes: 512 << 20,
                max_processes: 64,
                ..Limits::default()
            },
            job_timeout: Duration::from_secs(120),
            workspace_bytes: 32 << 20,
            allow_network: false,
            artifacts_dir: dir.join("artifacts"),
            max_artifact_bytes: 1 << 20,
            keep_failed_workspaces: None,
        },
        secrets: BTreeMap::new(),
        base_dir: None,
        tarball: None,
        width: 2,
        max_jobs: None,
    }
}

/// Runs `wf` to its end; answers the status and every job's output by node.
async fn run_all(
    wf: &Arc<LocalWorkflow>,
    run: &LocalRun,
) -> (WorkflowStatus, BTreeMap<String, String>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let status = run_workflow(wf, run, &tx, &CancellationToken::new()).await;
    drop(tx);
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    while let Some(e) = rx.recv().await {
        if let LocalEvent::Job {
            node,
            event: JobEvent::Output { data, .. },
        } = e
        {
            out.entry(node)
                .or_default()
                .push_str(&String::from_utf8_lossy(&data));
        }
    }
    (status, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_triggers_through_the_socket_and_triggers_json_and_the_follow_ups_run() {
    if !common::is_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local_run(dir.path());
    let parent = r#"
name: parent
env: {TARGET: default}
steps:
  - name: go
    command: |
      echo "node=$VOIDRUNNER_WORKFLOW_NODE wf=$VOIDRUNNER_WORKFLOW_ID"
      /usr/bin/python3 - <<'EOF'
      import json, voidrunner_job as vr
      print("context", json.load(open("/job/workflow.json"))["node"])
      vr.set_output("version", "9.9")
      a = vr.trigger_jobs([{"job_name": "deploy", "env": {"TARGET": "eu"}},
                           {"job_name": "notify", "depends_on": ["deploy"]}], operation_id="op-1")
      b = vr.trigger_jobs([{"job_name": "deploy"}], operation_id="op-1")
      print("socket", a["nodes"], a["duplicate"], b["duplicate"])
      vr.write_triggers([{"job_name": "report", "depends_on": ["parent"]}], operation_id="op-2")
      EOF
"#;
    let mut files = ci_files();
    files.insert(
        "jobs/deploy.yaml".into(),
        "name: deploy\nsteps: [{name: s, command: \"echo deploy $TARGET; /usr/bin/python3 -c 'import voidrunner_job as v; v.set_output(\\\"where\\\", \\\"eu\\\")'\"}]\n".into(),
    );
    let wf = LocalWorkflow::new("wf-2", BTreeMap::new(), files, vec![spec("parent", parent)]);
    let (status, out) = run_all(&wf, &run).await;
    let states: Vec<(String, NodeState)> = wf
        .nodes()
        .into_iter()
        .map(|n| (n.spec.name, n.state))
        .collect();
    assert_eq!(status, WorkflowStatus::Succeeded, "{states:?} {out:#?}");
    assert_eq!(
        states,
        [
            ("parent".to_owned(), NodeState::Succeeded),
            ("deploy".to_owned(), NodeState::Succeeded),
            ("notify".to_owned(), NodeState::Succeeded),
            ("report".to_owned(), NodeState::Succeeded),
        ]
    );
    let p = &out["parent"];
    assert!(p.contains("node=parent wf=wf-2"), "{p}");
    assert!(p.contains("context parent"), "{p}");
    assert!(p.contains("socket ['deploy', 'notify'] False True"), "{p}");
    assert_eq!(out["deploy"], "deploy eu\n");
    // report ran after parent and read its output; deploy may or may not have finished then.
    assert!(out["report"].starts_with("got 9.9 "), "{}", out["report"]);
    assert_eq!(wf.outputs()["parent.version"], "9.9");
    assert_eq!(wf.outputs()["deploy.where"], "eu");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_refused_triggers_file_fails_the_job_with_the_reason() {
    if !common::is_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let run = local_run(dir.path());
    let cases = [
        ("echo '{not json' > /job/triggers.json", "not valid JSON"),
        (
            "echo '{\"type\":\"trigger_job\",\"version\":1,\"operation_id\":\"x\",\"jobs\":[{\"job_name\":\"a\"}]}' > /job/triggers.json",
            "version",
        ),
        ("ln -s /etc/passwd /job/triggers.json", "triggers.json"),
        (
            "echo '{\"type\":\"trigger_job\",\"operation_id\":\"x\",\"jobs\":[{\"job_name\":\"ghost\"}]}' > /job/triggers.json",
            "no jobs/ghost.yaml",
        ),
        (
            "head -c 8388610 /dev/zero > /job/triggers.json",
            "larger than",
        ),
    ];
    for (i, (cmd, why)) in cases.into_iter().enumerate() {
        let yaml = format!(
            "name: p\nsteps: [{{name: s, command: \"{}\"}}]\n",
            cmd.replace('"', "\\\"")
        );
        let wf = LocalWorkflow::new(
            format!("wf-bad-{i}"),
            BTreeMap::new(),
            ci_files(),
            vec![spec("p", &yaml)],
        );
        let (tx, mut rx) = mpsc::unbounded_channel();
        let status = run_workflow(&wf, &run, &tx, &CancellationToken::new()).await;
        drop(tx);
        assert_eq!(status, WorkflowStatus::Failed, "{cmd}");
        let mut failures = Vec::new();
        while let Some(e) = rx.recv().await {
            if let LocalEvent::Finished { report, .. } = e {
                failures.extend(report.failures.clone());
            }
        }
        assert_eq!(failures.len(), 1, "{cmd}: {failures:?}");
        assert_eq!(failures[0].phase, "triggers", "{cmd}");
        assert!(failures[0].reason.contains(why), "{cmd}: {failures:?}");
        assert_eq!(wf.nodes().len(), 1, "{cmd}: nothing added");
    }
}

/// A job's link is bound to its own workflow and node: a payload naming another workflow
/// (`workflows[].id`) still adds to the caller's, and a node that is not in the workflow
/// cannot trigger at all.
#[tokio::test]
async fn a_job_can_only_trigger_within_its_own_workflow() {
    let job = "name: p\nsteps: [{name: s, command: 'true'}]\n";
    let a = LocalWorkflow::new("wf-a", BTreeMap::new(), ci_files(), vec![spec("p", job)]);
    let b = LocalWorkflow::new("wf-b", BTreeMap::new(), ci_files(), vec![spec("q", job)]);
    let payload = voidrunner_jobs::trigger::parse_trigger(&serde_json::json!({
        "type": "trigger_job", "operation_id": "op",
        "workflows": [{"id": "wf-b", "name": "other", "jobs": [{"job_name": "deploy"}]}],
    }))
    .expect("payload");
    let answer = a.link("p").trigger(payload.clone()).await.expect("added");
    assert_eq!(answer.nodes, ["deploy"]);
    let names = |wf: &LocalWorkflow| {
        wf.nodes()
            .into_iter()
            .map(|n| n.spec.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&a), ["p", "deploy"]);
    assert_eq!(names(&b), ["q"], "the other workflow is untouched");
    let err = a.link("ghost").trigger(payload).await.expect_err("no node");
    assert!(err.contains("ghost is not in this workflow"), "{err}");
    assert!(a.link("p").node("q").await.expect("answer").is_none());
}

fn report(outcome: &'static str) -> voidrunner_jobs::runner::JobReport {
    voidrunner_jobs::runner::JobReport {
        outcome,
        steps: Vec::new(),
        outputs: BTreeMap::new(),
        artifacts: Vec::new(),
        failures: Vec::new(),
    }
}

/// A triggered node that depends on a fan-out group waits for every instance; an unknown
/// dependency makes it skipped with the reason.
#[tokio::test]
async fn a_triggered_dependency_on_a_group_waits_for_every_instance() {
    let job = "name: j\nsteps: [{name: s, command: 'true'}]\n";
    let mut build0 = spec("build[0]", job);
    build0.group = "build".into();
    let mut build1 = spec("build[1]", job);
    build1.group = "build".into();
    let wf = LocalWorkflow::new(
        "wf-g",
        BTreeMap::new(),
        ci_files(),
        vec![spec("p", job), build0, build1],
    );
    assert_eq!(wf.decide(10).0.len(), 3);
    let payload = voidrunner_jobs::trigger::parse_trigger(&serde_json::json!({
        "type": "trigger_job", "operation_id": "op",
        "jobs": [{"job_name": "publish", "depends_on": ["build"], "job_file": "jobs/notify.yml"},
                 {"job_name": "lost", "depends_on": ["ghost"], "job_file": "jobs/notify.yml"}],
    }))
    .expect("payload");
    wf.link("p").trigger(payload).await.expect("added");
    wf.finish("build[0]", &report("succeeded"));
    let pending = wf.pending();
    assert_eq!(
        pending,
        [
            ("publish".to_owned(), "waiting for build[1]".to_owned()),
            (
                "lost".to_owned(),
                "would be skipped: unknown dependency ghost".to_owned()
            ),
        ]
    );
    wf.finish("build[1]", &report("failed"));
    wf.finish("p", &report("succeeded"));
    let (starts, skipped) = wf.decide(10);
    assert!(starts.is_empty());
    assert_eq!(
        skipped,
        [
            (
                "publish".to_owned(),
                "dependency build[1] did not succeed".to_owned()
            ),
            ("lost".to_owned(), "unknown dependency ghost".to_owned()),
        ]
    );
    assert_eq!(wf.status(), WorkflowStatus::Failed);
}
