//! Shared helpers of the integration tests: a sandbox per test with its own private
//! workspace root, and a run helper that collects output.

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_sandbox::{
    HelperCommand, Limits, OutputChunk, RunResult, RunSpec, Sandbox, SandboxConfig, Stream,
};

/// A sandbox whose workspace root is a fresh temp dir (removed by the returned guard).
pub struct TestSandbox {
    pub sandbox: Arc<Sandbox>,
    pub dir: tempfile::TempDir,
    /// Unique cgroup parent name of this test, so leftovers can be checked per test.
    pub cgroup_parent: String,
}

impl TestSandbox {
    /// Cgroup parent directories of this test (one per v1 controller in use).
    pub fn cgroup_dirs(&self) -> Vec<std::path::PathBuf> {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        ["memory", "pids", "cpu", "cpuacct"]
            .into_iter()
            .filter_map(|ctrl| {
                let line = own.lines().find(|l| {
                    l.split(':')
                        .nth(1)
                        .is_some_and(|c| c.split(',').any(|x| x == ctrl))
                })?;
                let rel = line.splitn(3, ':').nth(2)?.trim_start_matches('/');
                Some(
                    std::path::Path::new("/sys/fs/cgroup")
                        .join(ctrl)
                        .join(rel)
                        .join(&self.cgroup_parent),
                )
            })
            .filter(|p| p.exists())
            .collect()
    }

    /// Fails if this test left a run cgroup, a process in its cgroups, a mount under its
    /// temp dir or a workspace directory behind; then removes the parent cgroups.
    pub fn assert_clean(&self) {
        for dir in self.cgroup_dirs() {
            let subdirs: Vec<_> = std::fs::read_dir(&dir)
                .expect("cgroup dir")
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.path())
                .collect();
            assert!(subdirs.is_empty(), "leftover cgroups: {subdirs:?}");
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            assert!(
                procs.trim().is_empty(),
                "leftover processes in {}: {procs}",
                dir.display()
            );
            std::fs::remove_dir(&dir).expect("remove test cgroup parent");
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let me = self.dir.path().to_string_lossy().into_owned();
        assert!(
            !mounts.contains(&me),
            "leftover mounts under {me}:\n{mounts}"
        );
        let ws: Vec<_> = std::fs::read_dir(self.dir.path().join("ws"))
            .expect("ws root")
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != ".root")
            .collect();
        assert!(ws.is_empty(), "leftover workspace dirs: {ws:?}");
    }
}

impl Drop for TestSandbox {
    /// Best effort, also when the test failed: remove this test's (empty) parent cgroups.
    fn drop(&mut self) {
        for dir in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// `None` (with a printed reason) when not root: the sandbox needs root.
pub fn sandbox() -> Option<TestSandbox> {
    sandbox_with(|_| {})
}

/// Like [`sandbox`], with a configuration tweak.
pub fn sandbox_with(tweak: impl FnOnce(&mut SandboxConfig)) -> Option<TestSandbox> {
    if unsafe_free_euid() != 0 {
        eprintln!("SKIPPED: the sandbox tests need root (they create namespaces and cgroups)");
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("vr-sbx-test-")
        .tempdir()
        .expect("tempdir");
    let helper = HelperCommand {
        program: env!("CARGO_BIN_EXE_voidrunner-sandbox-helper").into(),
        args: Vec::new(),
    };
    let mut config = SandboxConfig::new(helper);
    config.workspace_root = dir.path().join("ws");
    let cgroup_parent = format!(
        "voidrunner-test-{}",
        dir.path()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("x")
    );
    config.cgroup_parent = cgroup_parent.clone();
    tweak(&mut config);
    let sandbox = Sandbox::new(config).expect("sandbox");
    Some(TestSandbox {
        sandbox: Arc::new(sandbox),
        dir,
        cgroup_parent,
    })
}

fn unsafe_free_euid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

/// Output and result of one run.
#[derive(Debug)]
pub struct Outcome {
    pub result: RunResult,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub chunks: Vec<OutputChunk>,
}

impl Outcome {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs `spec` and collects everything.
pub async fn run_spec(sb: &Sandbox, spec: RunSpec, cancel: CancellationToken) -> Outcome {
    let (tx, mut rx) = mpsc::channel(64);
    let collect = tokio::spawn(async move {
        let mut chunks = Vec::new();
        while let Some(c) = rx.recv().await {
            chunks.push(c);
        }
        chunks
    });
    let result = sb.run(spec, tx, cancel).await.expect("run");
    let chunks = collect.await.expect("collector");
    let cat = |s: Stream| {
        chunks
            .iter()
            .filter(|c| c.stream == s)
            .flat_map(|c| c.data.clone())
            .collect()
    };
    Outcome {
        result,
        stdout: cat(Stream::Stdout),
        stderr: cat(Stream::Stderr),
        chunks,
    }
}

/// Runs `argv` with `limits`.
pub async fn run_with(sb: &Sandbox, argv: &[&str], limits: Limits) -> Outcome {
    let mut spec = RunSpec::new(argv.iter().copied());
    spec.limits = limits;
    run_spec(sb, spec, CancellationToken::new()).await
}

/// Runs `argv` with default limits but a 10 s wall timeout.
pub async fn run(sb: &Sandbox, argv: &[&str]) -> Outcome {
    run_with(
        sb,
        argv,
        Limits {
            wall_timeout: Duration::from_secs(10),
            ..Limits::default()
        },
    )
    .await
}

/// Runs a shell script with /bin/sh.
pub async fn sh(sb: &Sandbox, script: &str) -> Outcome {
    run(sb, &["/bin/sh", "-c", script]).await
}

/// Runs a python program.
pub async fn py(sb: &Sandbox, code: &str) -> Outcome {
    run(sb, &["/usr/bin/python3", "-c", code]).await
}
