//! The job worker against a real store (SQLite) and the real sandbox: a queued job is claimed,
//! its steps' states, output and artifacts are recorded, and the result is recorded once; a
//! cancel request stops a running job within a second or two and cleanup still runs.

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voidrunner_jobs::runner::RunnerConfig;
use voidrunner_jobs::server::{JobWorker, JobWorkerConfig};
use voidrunner_jobs::source::SourcePolicy;
use voidrunner_jobs::{Format, parse};
use voidrunner_sandbox::Limits;
use voidrunner_store::{JobId, JobStatus, JobStream, NewJob, RetryPolicy, Scope, StepState, Store};

struct Env {
    dir: tempfile::TempDir,
    _db: tempfile::TempDir,
    cgroup_parent: String,
    store: Arc<dyn Store>,
    sqlite: voidrunner_store_sqlite::SqliteStore,
    worker: Option<JobWorker>,
}

async fn env() -> Option<Env> {
    if !common::is_root() {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (sqlite, db) = voidrunner_store_sqlite::testing::fresh_store().await;
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let (sandbox, cgroup_parent) = common::sandbox(dir.path());
    let cfg = JobWorkerConfig {
        worker_id: "test-node".into(),
        concurrency: 2,
        per_user_concurrency: None,
        lease: Duration::from_secs(5),
        poll: Duration::from_millis(200),
        retry: RetryPolicy::default(),
        runner: RunnerConfig {
            width: 4,
            sources: SourcePolicy::default(),
            step_limits: Limits {
                wall_timeout: Duration::from_secs(60),
                ..Limits::default()
            },
            job_timeout: Duration::from_secs(120),
            workspace_bytes: 32 << 20,
            allow_network: false,
            artifacts_dir: dir.path().join("artifacts"),
            max_artifact_bytes: 8 << 20,
            keep_failed_workspaces: None,
        },
    };
    let worker = JobWorker::start(store.clone(), sandbox, None, cfg);
    Some(Env {
        dir,
        cgroup_parent,
        _db: db,
        store,
        sqlite,
        worker: Some(worker),
    })
}

async fn submit(env: &Env, owner: voidrunner_domain::UserId, yaml: &str) -> JobId {
    let def = parse(yaml, Format::Yaml).expect("valid");
    let new = NewJob {
        id: JobId::new(),
        owner_id: owner,
        name: def.name.clone(),
        definition: serde_json::to_value(&def).expect("json"),
        steps: def.steps.iter().map(|s| s.name.clone()).collect(),
        priority: 5,
        max_attempts: 2,
        request_id: Some("req-job-1".into()),
        has_tarball: false,
        created_at: voidrunner_store::now(),
    };
    env.store
        .create_job(new, BTreeMap::new())
        .await
        .expect("create")
        .id
}

async fn wait_terminal(env: &Env, id: JobId, limit: Duration) -> voidrunner_store::Job {
    let t = Instant::now();
    loop {
        let job = env.store.get_job(Scope::All, id).await.expect("get");
        if !matches!(job.status, JobStatus::Queued | JobStatus::Running) {
            return job;
        }
        assert!(t.elapsed() < limit, "job still {:?}", job.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_runs_and_everything_is_recorded() {
    let Some(mut env) = env().await else { return };
    let owner =
        voidrunner_store::conformance::create_user(&env.sqlite, "job-owner@example.com").await;
    let id = submit(
        &env,
        owner.id,
        r#"
name: server-job
steps:
  - {name: make, command: "mkdir -p /job/artifacts && printf 'artifact-bytes' > /job/artifacts/out.bin && echo made"}
  - {name: check, command: "cat /job/artifacts/out.bin; echo; exit 3", depends_on: [make]}
  - {name: never, command: "echo no", depends_on: [check]}
  - {name: report, command: "python3 -c 'import voidrunner_job as v; v.set_output(\"k\", \"v\"); v.register_secret(\"rt-secret-9876\")'; printf 'rt-sec'; printf 'ret-9876 done\\n'", depends_on: [check], condition: always}
artifacts: ["artifacts/**"]
"#,
    )
    .await;
    let job = wait_terminal(&env, id, Duration::from_secs(60)).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert_eq!(job.outputs.get("k").map(String::as_str), Some("v"));
    let steps = env.store.job_steps(Scope::All, id).await.expect("steps");
    let states: Vec<(String, StepState, Option<i32>)> = steps
        .iter()
        .map(|s| (s.name.clone(), s.state, s.exit_code))
        .collect();
    assert_eq!(
        states,
        [
            ("make".to_owned(), StepState::Succeeded, Some(0)),
            ("check".to_owned(), StepState::Failed, Some(3)),
            ("never".to_owned(), StepState::Skipped, None),
            ("report".to_owned(), StepState::Succeeded, Some(0)),
        ]
    );
    let events = env
        .store
        .read_job_events(id, 0, 1000)
        .await
        .expect("events");
    let out = |step: &str| -> String {
        events
            .iter()
            .filter(|e| e.step.as_deref() == Some(step) && e.stream == JobStream::Stdout)
            .map(|e| String::from_utf8_lossy(&e.data).into_owned())
            .collect()
    };
    assert_eq!(out("make"), "made\n");
    // Registered at runtime through the socket, printed split across writes: masked in what
    // the store holds.
    assert_eq!(out("report"), "*** done\n");
    assert!(
        !events
            .iter()
            .any(|e| e.data.windows(14).any(|w| w == b"rt-secret-9876")),
        "no stored event holds the runtime secret"
    );
    assert_eq!(out("check"), "artifact-bytes\n");
    let artifacts = env
        .store
        .job_artifacts(Scope::All, id)
        .await
        .expect("artifacts");
    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0].path, "artifacts/out.bin");
    let blob = env
        .store
        .job_blob(Scope::All, id, "artifacts/artifacts/out.bin")
        .await
        .expect("blob");
    assert_eq!(blob, b"artifact-bytes");
    env.worker.take().expect("worker").stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_job_and_cleanup_runs() {
    let Some(mut env) = env().await else { return };
    let owner =
        voidrunner_store::conformance::create_user(&env.sqlite, "job-cancel@example.com").await;
    let id = submit(
        &env,
        owner.id,
        r#"
name: long
steps:
  - {name: a, command: "echo started; sleep 60"}
  - {name: b, command: "sleep 60"}
hooks:
  - {phase: cleanup, command: "echo cleaned"}
"#,
    )
    .await;
    // Wait until a step runs.
    let t = Instant::now();
    loop {
        let steps = env.store.job_steps(Scope::All, id).await.expect("steps");
        if steps.iter().all(|s| s.state == StepState::Running) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "steps never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let asked = Instant::now();
    env.store
        .request_job_cancel(Scope::All, id, voidrunner_store::now())
        .await
        .expect("cancel");
    let job = wait_terminal(&env, id, Duration::from_secs(10)).await;
    let took = asked.elapsed();
    assert_eq!(job.status, JobStatus::Cancelled);
    assert!(took < Duration::from_secs(3), "cancel took {took:?}");
    let steps = env.store.job_steps(Scope::All, id).await.expect("steps");
    assert!(
        steps.iter().all(|s| s.state == StepState::Cancelled),
        "{steps:?}"
    );
    let events = env
        .store
        .read_job_events(id, 0, 1000)
        .await
        .expect("events");
    let cleanup: String = events
        .iter()
        .filter(|e| e.step.as_deref() == Some("hook:cleanup"))
        .map(|e| String::from_utf8_lossy(&e.data).into_owned())
        .collect();
    assert_eq!(cleanup, "cleaned\n");
    println!("cancel → job cancelled in {took:?}");
    // Nothing left behind: no workspace, no run cgroup (so no process).
    let workspaces: Vec<_> = std::fs::read_dir(env.dir.path().join("ws"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name() != ".root")
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    assert!(workspaces.is_empty(), "{workspaces:?}");
    for base in [
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup",
    ] {
        let parent = std::path::Path::new(base).join(&env.cgroup_parent);
        let runs: Vec<_> = std::fs::read_dir(&parent)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            runs.is_empty(),
            "run cgroups left under {}: {runs:?}",
            parent.display()
        );
    }
    env.worker.take().expect("worker").stop().await;
}
