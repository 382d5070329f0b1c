//! Helpers shared by this crate's integration tests and benchmark.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use voidrunner_sandbox::{HelperCommand, Sandbox, SandboxConfig};

/// True when running as root (the sandbox needs it); prints why a test is skipped otherwise.
pub fn is_root() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .is_some_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        });
    if !root {
        eprintln!("SKIPPED: jobs run in the sandbox, which needs root");
    }
    root
}

/// Runs `git` in `dir` with a fixed identity and no global config; answers its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A real sandbox with this crate's helper binary, workspaces under `dir/ws` and its own
/// cgroup subtree (answered as the second value, for leftover checks).
pub fn sandbox(dir: &Path) -> (Arc<Sandbox>, String) {
    let mut config = SandboxConfig::new(HelperCommand {
        program: env!("CARGO_BIN_EXE_voidrunner-jobs-helper").into(),
        args: Vec::new(),
    });
    config.workspace_root = dir.join("ws");
    config.cgroup_parent = format!(
        "voidrunner-jobs-test-{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    );
    let cgroup_parent = config.cgroup_parent.clone();
    let sandbox = Arc::new(Sandbox::new(config).expect("sandbox (run as root)"));
    (sandbox, cgroup_parent)
}
