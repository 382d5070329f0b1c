//! Jobs run for real: a git repository and an uploaded tarball as sources, C compiled and
//! tested in the sandbox, an artifact collected byte for byte, failures skipping dependants
//! while `always` steps run, parallel steps overlapping, runtime secrets masked, cancel
//! stopping every step and still running cleanup.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_jobs::runner::{Events, JobEvent, JobReport, JobRequest, RunnerConfig, run_job};
use voidrunner_jobs::source::SourcePolicy;
use voidrunner_jobs::{Format, parse};
use voidrunner_sandbox::{Limits, Sandbox};

struct Env {
    dir: tempfile::TempDir,
    sandbox: Arc<Sandbox>,
    cfg: RunnerConfig,
}

fn env() -> Option<Env> {
    if !common::is_root() {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, _) = common::sandbox(dir.path());
    let cfg = RunnerConfig {
        width: 4,
        sources: SourcePolicy {
            git_protocols: vec!["file".into()],
            ..SourcePolicy::default()
        },
        step_limits: Limits {
            wall_timeout: Duration::from_secs(60),
            memory_bytes: 512 << 20,
            max_processes: 64,
            ..Limits::default()
        },
        job_timeout: Duration::from_secs(120),
        workspace_bytes: 64 << 20,
        allow_network: false,
        artifacts_dir: dir.path().join("artifacts"),
        max_artifact_bytes: 16 << 20,
        keep_failed_workspaces: Some(dir.path().join("kept")),
    };
    Some(Env { dir, sandbox, cfg })
}

const MAIN_C: &str = "#include <stdio.h>\n#include <string.h>\nint main(int c, char **v) {\n  if (c > 1 && strcmp(v[1], \"--self-test\") == 0) { puts(\"self-test ok\"); return 0; }\n  puts(\"hello\"); return 0;\n}\n";

fn job_yaml(source: &str, test_cmd: &str) -> String {
    format!(
        r#"
name: c-build
source: {source}
steps:
  - {{name: build, command: "/usr/bin/gcc -O2 -o app main.c"}}
  - {{name: test, command: "{test_cmd}", depends_on: [build]}}
  - {{name: package, command: "cp app /job/artifacts/app && tar -C /job/src -cf /job/artifacts/src.tar main.c", depends_on: [test]}}
  - {{name: report, command: "echo report ran", depends_on: [test], condition: always}}
artifacts: ["artifacts/**"]
hooks:
  - {{phase: cleanup, command: "echo cleanup ran"}}
"#
    )
}

async fn run(
    env: &Env,
    id: &str,
    yaml: &str,
    tarball: Option<PathBuf>,
    secrets: BTreeMap<String, String>,
    cancel: CancellationToken,
) -> (JobReport, Vec<JobEvent>) {
    let definition = parse(yaml, Format::Yaml).unwrap_or_else(|p| panic!("{p}"));
    let req = JobRequest {
        id: id.into(),
        definition,
        secrets,
        tarball,
        base_dir: None,
        workflow: None,
        link: None,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let report = run_job(env.sandbox.clone(), &env.cfg, &req, Events::new(tx), cancel).await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (report, events)
}

fn output_of(events: &[JobEvent], step: &str) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            JobEvent::Output { step: s, data, .. } if s == step => {
                Some(String::from_utf8_lossy(data).into_owned())
            }
            _ => None,
        })
        .collect()
}

fn states(report: &JobReport) -> Vec<(&str, &str)> {
    report
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.state))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_step_c_job_from_git_and_from_a_tarball() {
    let Some(env) = env() else { return };
    let repo = env.dir.path().join("repo");
    std::fs::create_dir(&repo).expect("repo");
    common::git(&repo, &["init", "-q", "--initial-branch=main"]);
    std::fs::write(repo.join("main.c"), MAIN_C).expect("write");
    common::git(&repo, &["add", "."]);
    common::git(&repo, &["commit", "-q", "-m", "c"]);
    let src = format!(
        "{{type: git, url: \"file://{}\", ref: main}}",
        repo.display()
    );
    let (report, events) = run(
        &env,
        "git-job",
        &job_yaml(&src, "./app --self-test"),
        None,
        BTreeMap::new(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(report.outcome, "succeeded", "{report:#?}");
    assert_eq!(
        states(&report),
        [
            ("build", "succeeded"),
            ("test", "succeeded"),
            ("package", "succeeded"),
            ("report", "succeeded")
        ]
    );
    assert_eq!(output_of(&events, "test"), "self-test ok\n");
    assert_eq!(output_of(&events, "hook:cleanup"), "cleanup ran\n");
    let names: Vec<&str> = report.artifacts.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(names, ["artifacts/app", "artifacts/src.tar"]);
    // Byte-identical: the collected tar holds exactly the source file.
    let collected = env.cfg.artifacts_dir.join("git-job/artifacts/src.tar");
    let mut archive = tar::Archive::new(std::fs::File::open(&collected).expect("artifact"));
    let mut entry = archive
        .entries()
        .expect("tar")
        .next()
        .expect("one entry")
        .expect("entry");
    let mut body = String::new();
    std::io::Read::read_to_string(&mut entry, &mut body).expect("read");
    assert_eq!(body, MAIN_C);
    let app = std::fs::read(env.cfg.artifacts_dir.join("git-job/artifacts/app")).expect("app");
    assert_eq!(report.artifacts[0].size, app.len() as u64);

    // The same job from an uploaded tarball, with a failing test step.
    let upload = env.dir.path().join("upload.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&upload).expect("create"),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(MAIN_C.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "main.c", MAIN_C.as_bytes())
            .expect("append");
        b.into_inner().expect("tar").finish().expect("gz");
    }
    let (report, events) = run(
        &env,
        "tar-job",
        &job_yaml("{type: tarball}", "./app --self-test && exit 3"),
        Some(upload),
        BTreeMap::new(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(report.outcome, "failed", "{report:#?}");
    assert_eq!(
        states(&report),
        [
            ("build", "succeeded"),
            ("test", "failed"),
            ("package", "skipped"),
            ("report", "succeeded")
        ]
    );
    assert_eq!(report.steps[1].exit_code, Some(3));
    assert_eq!(
        report.steps[2].detail.as_deref(),
        Some("dependency test failed")
    );
    assert_eq!(output_of(&events, "report"), "report ran\n");
    assert_eq!(
        output_of(&events, "hook:cleanup"),
        "cleanup ran\n",
        "cleanup runs after a failure too"
    );
    // The failed job's workspace was kept (configured), the successful one's was not.
    let kept = env.dir.path().join("kept");
    assert_eq!(
        std::fs::read_to_string(kept.join("tar-job/src/main.c")).expect("kept source"),
        MAIN_C
    );
    assert!(
        kept.join("tar-job/src/app").is_file(),
        "the built binary is kept"
    );
    assert!(!kept.join("tar-job/.voidrunner/control.sock").exists());
    assert!(
        !kept.join("git-job").exists(),
        "successful workspaces are not kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_steps_overlap_and_runtime_secrets_are_masked() {
    let Some(env) = env() else { return };
    let yaml = r#"
name: par
parallelism: 3
secrets: [API_TOKEN]
steps:
  - {name: a, command: "date +%s.%N > /job/tmp/a.start; sleep 1; date +%s.%N > /job/tmp/a.end"}
  - {name: b, command: "date +%s.%N > /job/tmp/b.start; sleep 1; date +%s.%N > /job/tmp/b.end"}
  - name: secret
    command: |
      echo "token=$API_TOKEN"
      /usr/bin/python3 -c "import voidrunner_job as vr; vr.register_secret('runtime-s3cret-42'); vr.set_output('v', '7')"
      printf 'late: runtime-s3'; printf 'cret-42\n'
  - {name: after, command: "cat /job/tmp/a.start /job/tmp/b.start /job/tmp/a.end /job/tmp/b.end", depends_on: [a, b]}
"#;
    let secrets = BTreeMap::from([("API_TOKEN".to_owned(), "tok-abcdef-123".to_owned())]);
    let started = Instant::now();
    let (report, events) = run(
        &env,
        "par-job",
        yaml,
        None,
        secrets,
        CancellationToken::new(),
    )
    .await;
    assert_eq!(report.outcome, "succeeded", "{report:#?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let times: Vec<f64> = output_of(&events, "after")
        .lines()
        .map(|l| l.trim().parse().expect("time"))
        .collect();
    let (a_start, b_start, a_end, b_end) = (times[0], times[1], times[2], times[3]);
    assert!(
        a_start < b_end && b_start < a_end,
        "a and b overlap: {times:?}"
    );
    let out = output_of(&events, "secret");
    assert_eq!(out, "token=***\nlate: ***\n", "{out}");
    assert_eq!(report.outputs["v"], "7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_every_step_within_a_second_and_runs_cleanup() {
    let Some(env) = env() else { return };
    let yaml = r#"
name: long
steps:
  - {name: s1, command: "sleep 60"}
  - {name: s2, command: "sleep 60"}
  - {name: later, command: "echo never", depends_on: [s1]}
hooks:
  - {phase: cleanup, command: "echo cleanup after cancel"}
"#;
    let cancel = CancellationToken::new();
    let job = {
        let cancel = cancel.clone();
        let env = &env;
        async move { run(env, "cancel-job", yaml, None, BTreeMap::new(), cancel).await }
    };
    let canceller = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let at = Instant::now();
        cancel.cancel();
        at
    };
    let ((report, events), cancelled_at) = tokio::join!(job, canceller);
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(3),
        "the job ended soon after cancel"
    );
    assert_eq!(report.outcome, "cancelled", "{report:#?}");
    assert_eq!(
        states(&report),
        [
            ("s1", "cancelled"),
            ("s2", "cancelled"),
            ("later", "skipped")
        ]
    );
    assert_eq!(output_of(&events, "hook:cleanup"), "cleanup after cancel\n");
    // No workspace left behind.
    let left: Vec<_> = std::fs::read_dir(env.dir.path().join("ws"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name() != ".root")
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "workspaces left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workspace_caps_files_and_size_as_the_job_asks() {
    let Some(env) = env() else { return };
    let yaml = r#"
name: caps
limits: {max_files: 64, workspace_mb: 2}
steps:
  - {name: many, command: "cd /job/tmp && for i in $(seq 1 200); do touch f$i 2>/dev/null || exit 7; done"}
  - {name: big, command: "head -c 4000000 /dev/zero > /job/tmp/big || exit 8"}
"#;
    let (report, _) = run(
        &env,
        "caps-job",
        yaml,
        None,
        BTreeMap::new(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(report.outcome, "failed", "{report:#?}");
    assert_eq!(
        report.steps[0].exit_code,
        Some(7),
        "too many files: {report:#?}"
    );
    assert_eq!(report.steps[1].exit_code, Some(8), "too big: {report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_requests_are_refused_with_the_reason() {
    let Some(env) = env() else { return };
    let yaml = "name: net\nnetwork: true\nsteps:\n  - {name: a, command: \"true\"}\n";
    let (report, _) = run(
        &env,
        "net-job",
        yaml,
        None,
        BTreeMap::new(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(report.outcome, "failed");
    assert_eq!(report.failures[0].phase, "validation");
    assert!(
        report.failures[0].reason.contains("not allowed"),
        "{report:?}"
    );
    assert_eq!(report.steps.len(), 0, "nothing ran");
}
