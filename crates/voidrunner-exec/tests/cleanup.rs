//! Nothing of an execution outlives `execute`: no workspace mount or directory, no sandboxed
//! process (idle helpers pooled by the sandbox may remain). A separate test binary, so no
//! other execution of this process runs at the same time.

mod common;

use std::path::Path;

use common::{execute, executor, request, run};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_domain::Verdict;
use voidrunner_exec::{OutputStream, Phase};

/// Entries of the workspace root created by this process (`ws-<pid>-<n>`).
fn own_workspaces(root: &Path) -> Vec<String> {
    let prefix = format!("ws-{}-", std::process::id());
    std::fs::read_dir(root)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Mounts whose mount point is under the workspace root and belongs to this process.
fn own_mounts(root: &Path) -> Vec<String> {
    let prefix = format!("{}/ws-{}-", root.display(), std::process::id());
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter(|l| l.contains(&prefix))
        .map(str::to_owned)
        .collect()
}

/// Parent pid of every process.
fn parents() -> Vec<(u32, u32)> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // Fields after the `(comm)`: state, ppid, …
            let ppid = stat
                .rsplit_once(") ")?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// Processes started by the sandbox helpers (our children): the sandboxed programs. Idle
/// helpers themselves may stay, pooled for reuse by the sandbox.
fn sandboxed_processes() -> Vec<u32> {
    let all = parents();
    let me = std::process::id();
    let helpers: Vec<u32> = all
        .iter()
        .filter(|(_, pp)| *pp == me)
        .map(|(p, _)| *p)
        .collect();
    all.iter()
        .filter(|(_, pp)| helpers.contains(pp))
        .map(|(p, _)| *p)
        .collect()
}

#[tokio::test]
async fn nothing_is_left_after_any_kind_of_ending() {
    let root = executor().sandbox().config().workspace_root.clone();
    let ok = run(request("c", "int main(void) { return 0; }\n", None)).await;
    assert_eq!(ok.outcome.verdict, Verdict::Exited { code: 0 }, "{ok:?}");
    assert_eq!((ok.stdout(), ok.stderr()), (String::new(), String::new()));

    let broken = run(request("c", "int main(void) { return x; }\n", None)).await;
    assert!(matches!(
        broken.outcome.verdict,
        Verdict::CompileError { .. }
    ));
    assert!(
        broken
            .text(Phase::Compile, OutputStream::Stderr)
            .contains("error")
    );

    let mut slow = request("bash", "sleep 30 & sleep 30\n", None);
    slow.limits.timeout_secs = 1;
    assert_eq!(run(slow).await.outcome.verdict, Verdict::Timeout);

    let (tx, mut rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let execution = execute(
        request("bash", "echo up\nsleep 30\n", None),
        tx,
        cancel.clone(),
    );
    let canceller = async {
        // Cancel once it is known to be running: its workspace then exists.
        rx.recv().await.expect("first output");
        assert_eq!(
            own_workspaces(&root).len(),
            1,
            "the running execution's workspace"
        );
        assert!(!own_mounts(&root).is_empty(), "its workspace is mounted");
        assert!(!sandboxed_processes().is_empty(), "its program runs");
        cancel.cancel();
        while rx.recv().await.is_some() {}
    };
    let (cancelled, ()) = tokio::join!(execution, canceller);
    assert_eq!(cancelled.verdict, Verdict::Cancelled);

    assert_eq!(own_workspaces(&root), Vec::<String>::new());
    assert_eq!(own_mounts(&root), Vec::<String>::new());
    assert_eq!(sandboxed_processes(), Vec::<u32>::new());
}
