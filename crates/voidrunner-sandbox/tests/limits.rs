//! Limits: each test fails if the limit does not bite or the verdict is wrong.

mod common;

use common::*;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use voidrunner_sandbox::{Limits, Mode, RunSpec, SandboxVerdict};

fn limits() -> Limits {
    Limits {
        wall_timeout: Duration::from_secs(10),
        ..Limits::default()
    }
}

#[tokio::test]
async fn this_host_runs_in_full_mode_with_cgroups() {
    let Some(t) = sandbox() else { return };
    assert!(
        matches!(t.sandbox.mode(), Mode::Full { .. }),
        "{:?}",
        t.sandbox.mode()
    );
    t.assert_clean();
}

#[tokio::test]
async fn fork_bomb_is_stopped_by_the_pids_limit_and_killed() {
    let Some(t) = sandbox() else { return };
    // Count how many processes can exist at once: must stop below the limit.
    let code = "import os, time\nn = 0\nfor i in range(200):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n    n += 1\nprint(n)";
    let o = run_with(
        &t.sandbox,
        &["/usr/bin/python3", "-c", code],
        Limits {
            max_processes: 16,
            ..limits()
        },
    )
    .await;
    assert_eq!(o.result.verdict, SandboxVerdict::Exited(0), "{o:?}");
    let n: u32 = o.out().trim().parse().expect("count");
    assert!(n < 16, "forked {n} children under a limit of 16");
    // A real bomb: contained, then killed with everything it spawned.
    let o = run_with(
        &t.sandbox,
        &["/bin/bash", "-c", "f() { f | f & }; f; sleep 100"],
        Limits {
            max_processes: 32,
            wall_timeout: Duration::from_secs(2),
            ..limits()
        },
    )
    .await;
    assert_eq!(o.result.verdict, SandboxVerdict::Timeout, "{o:?}");
    assert!(
        o.result.wall_time < Duration::from_secs(4),
        "{:?}",
        o.result
    );
    t.assert_clean();
}

#[tokio::test]
async fn allocating_1gib_under_64mib_is_a_memory_limit() {
    let Some(t) = sandbox() else { return };
    let o = run_with(
        &t.sandbox,
        &[
            "/usr/bin/python3",
            "-c",
            "b = b'x' * (1 << 30)\nprint('survived')",
        ],
        Limits {
            memory_bytes: 64 << 20,
            ..limits()
        },
    )
    .await;
    assert_eq!(o.result.verdict, SandboxVerdict::MemoryLimit, "{o:?}");
    assert!(!o.out().contains("survived"));
    let peak = o.result.peak_memory_bytes.expect("peak memory");
    assert!(peak <= 64 << 20 && peak > 32 << 20, "peak {peak}");
    t.assert_clean();
}

#[tokio::test]
async fn busy_loop_is_a_cpu_limit() {
    let Some(t) = sandbox() else { return };
    let o = run_with(
        &t.sandbox,
        &["/usr/bin/python3", "-c", "while True: pass"],
        Limits {
            cpu_time: Duration::from_secs(1),
            ..limits()
        },
    )
    .await;
    assert_eq!(o.result.verdict, SandboxVerdict::CpuLimit, "{o:?}");
    assert!(
        o.result.cpu_time >= Duration::from_millis(900),
        "{:?}",
        o.result
    );
    assert!(
        o.result.wall_time < Duration::from_secs(5),
        "{:?}",
        o.result
    );
    t.assert_clean();
}

#[tokio::test]
async fn cpu_quota_slows_a_busy_loop_to_its_cores() {
    let Some(t) = sandbox() else { return };
    // Half a core for 1.5 s of wall time: at most ~0.75 s CPU (plus one period of slack).
    let o = run_with(
        &t.sandbox,
        &["/usr/bin/python3", "-c", "while True: pass"],
        Limits {
            cpu_cores: 0.5,
            wall_timeout: Duration::from_millis(1500),
            ..limits()
        },
    )
    .await;
    assert_eq!(o.result.verdict, SandboxVerdict::Timeout, "{o:?}");
    assert!(
        o.result.cpu_time < Duration::from_millis(1000),
        "{:?}",
        o.result
    );
    t.assert_clean();
}

#[tokio::test]
async fn sleep_is_a_timeout() {
    let Some(t) = sandbox() else { return };
    let o = run_with(
        &t.sandbox,
        &["/bin/sleep", "30"],
        Limits {
            wall_timeout: Duration::from_secs(1),
            ..limits()
        },
    )
    .await;
    assert_eq!(o.result.verdict, SandboxVerdict::Timeout, "{o:?}");
    assert!(
        o.result.wall_time >= Duration::from_secs(1) && o.result.wall_time < Duration::from_secs(3),
        "{:?}",
        o.result
    );
    t.assert_clean();
}

#[tokio::test]
async fn output_flood_is_cut_exactly_at_the_limit() {
    let Some(t) = sandbox() else { return };
    let o = run_with(
        &t.sandbox,
        &["/usr/bin/yes"],
        Limits {
            max_output_bytes: 100_000,
            ..limits()
        },
    )
    .await;
    assert_eq!(
        o.result.verdict,
        SandboxVerdict::OutputLimit,
        "{:?}",
        o.result
    );
    assert!(o.result.output_truncated);
    assert_eq!(o.stdout.len(), 100_000);
    assert!(o.stdout.chunks(2).all(|c| c == b"y\n"));
    // Exactly the limit is not a violation.
    let o = run_with(
        &t.sandbox,
        &[
            "/bin/sh",
            "-c",
            "head -c 100000 /dev/zero; head -c 0 /dev/zero >&2",
        ],
        Limits {
            max_output_bytes: 100_000,
            ..limits()
        },
    )
    .await;
    assert_eq!(
        o.result.verdict,
        SandboxVerdict::Exited(0),
        "{:?}",
        o.result
    );
    assert!(!o.result.output_truncated);
    assert_eq!(o.stdout.len(), 100_000);
    // stdout and stderr share the budget.
    let o = run_with(
        &t.sandbox,
        &[
            "/bin/sh",
            "-c",
            "head -c 600 /dev/zero; head -c 600 /dev/zero >&2; sleep 5",
        ],
        Limits {
            max_output_bytes: 1000,
            ..limits()
        },
    )
    .await;
    assert_eq!(
        o.result.verdict,
        SandboxVerdict::OutputLimit,
        "{:?}",
        o.result
    );
    assert_eq!(o.stdout.len() + o.stderr.len(), 1000);
    t.assert_clean();
}

#[tokio::test]
async fn tmpfs_fill_is_capped() {
    let Some(t) = sandbox() else { return };
    let script = "dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1; dd if=/dev/zero of=/work/fill bs=1M count=64 2>&1; ls -l /tmp/fill /work/fill";
    let o = run_with(
        &t.sandbox,
        &["/bin/sh", "-c", script],
        Limits {
            tmpfs_bytes: 4 << 20,
            max_file_size_bytes: 1 << 30,
            ..limits()
        },
    )
    .await;
    let out = o.out();
    assert_eq!(out.matches("No space left on device").count(), 2, "{out}");
    assert!(out.contains(" 4194304 "), "{out}");
    t.assert_clean();
}

#[tokio::test]
async fn file_size_limit_stops_big_writes() {
    let Some(t) = sandbox() else { return };
    let o = run_with(
        &t.sandbox,
        &["/usr/bin/python3", "-c", "import signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\nopen('/tmp/f','wb').write(b'x' * 3_000_000)"],
        Limits { max_file_size_bytes: 1 << 20, ..limits() },
    )
    .await;
    assert!(o.err().contains("File too large"), "{o:?}");
    t.assert_clean();
}

#[tokio::test]
async fn cancel_kills_the_run() {
    let Some(t) = sandbox() else { return };
    let cancel = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let sb = t.sandbox.clone();
    let c = cancel.clone();
    let run = tokio::spawn(async move {
        sb.run(
            RunSpec::new(["/bin/sh", "-c", "echo started; exec sleep 60"]),
            tx,
            c,
        )
        .await
    });
    let first = rx.recv().await.expect("first output");
    assert_eq!(first.data, b"started\n");
    cancel.cancel();
    let r = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("cancel is prompt")
        .expect("join")
        .expect("run");
    assert_eq!(r.verdict, SandboxVerdict::Cancelled);
    assert!(r.wall_time < Duration::from_secs(5));
    // The helper is reused after a cancel, also when a late cancel arrives after the end.
    let late = CancellationToken::new();
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    let r = t
        .sandbox
        .run(RunSpec::new(["/bin/true"]), tx, late.clone())
        .await
        .expect("run");
    assert_eq!(r.verdict, SandboxVerdict::Exited(0));
    late.cancel();
    let o = common::run(&t.sandbox, &["/bin/sh", "-c", "echo again"]).await;
    assert_eq!(o.result.verdict, SandboxVerdict::Exited(0), "{o:?}");
    assert_eq!(o.out(), "again\n");
    t.assert_clean();
}

#[tokio::test]
async fn dropping_the_future_kills_and_cleans_up() {
    let Some(t) = sandbox() else { return };
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let sb = t.sandbox.clone();
    let run = tokio::spawn(async move {
        sb.run(
            RunSpec::new(["/bin/sh", "-c", "echo started; sleep 60 & sleep 60"]),
            tx,
            CancellationToken::new(),
        )
        .await
    });
    assert_eq!(rx.recv().await.expect("output").data, b"started\n");
    run.abort();
    assert!(run.await.is_err_and(|e| e.is_cancelled()));
    // The helper notices its closed stdin, kills the sandbox and removes the cgroup; the
    // output channel closes when it exits. Wait for that (bounded), then check.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while rx.recv().await.is_some() {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "helper did not exit after the future was dropped"
    );
    wait_until_clean(&t).await;
    t.assert_clean();
}

/// Polls (bounded) until the test's cgroups have no children: after an abort the helper
/// cleans up asynchronously.
async fn wait_until_clean(t: &TestSandbox) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while t.cgroup_dirs().iter().any(|d| {
        std::fs::read_dir(d)
            .map(|r| r.flatten().any(|e| e.path().is_dir()))
            .unwrap_or(false)
    }) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "cgroups not removed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn workspace_is_shared_between_runs_and_limited() {
    let Some(t) = sandbox() else { return };
    let ws = std::sync::Arc::new(t.sandbox.create_workspace(2 << 20).expect("workspace"));
    assert!(!ws.is_degraded());
    ws.write_file("src/main.sh", b"echo compiled > /work/out.txt\n", 0o644)
        .expect("write");
    let mut spec = RunSpec::new(["/bin/sh", "/work/src/main.sh"]);
    spec.workspace = Some(ws.clone());
    let o = run_spec(&t.sandbox, spec, CancellationToken::new()).await;
    assert_eq!(o.result.verdict, SandboxVerdict::Exited(0), "{o:?}");
    let mut spec = RunSpec::new([
        "/bin/sh",
        "-c",
        "cat /work/out.txt; dd if=/dev/zero of=/work/big bs=1M count=8 2>&1; ln -s /etc/passwd /work/link",
    ]);
    spec.workspace = Some(ws.clone());
    let o = run_spec(&t.sandbox, spec, CancellationToken::new()).await;
    assert!(o.out().starts_with("compiled\n"), "{o:?}");
    assert!(o.out().contains("No space left on device"), "{o:?}");
    assert_eq!(ws.read_file("out.txt", 1024).expect("read"), b"compiled\n");
    assert!(
        ws.read_file("link", 1024).is_err(),
        "symlinks are not followed on the host"
    );
    assert!(ws.read_file("../x", 1024).is_err());
    let host_path = ws.path().to_path_buf();
    drop(ws);
    assert!(!host_path.exists());
    t.assert_clean();
}

#[tokio::test]
async fn degraded_mode_is_explicit_and_still_limits_with_rlimits() {
    // A parent name that cannot be a directory in any hierarchy (it is a file in every
    // cgroup directory) simulates a host without a writable cgroup tree.
    let Some(t) = sandbox_with(|c| c.cgroup_parent = "cgroup.procs".to_owned()) else {
        return;
    };
    let Mode::Degraded { reason } = t.sandbox.mode() else {
        panic!("expected degraded mode, got {:?}", t.sandbox.mode())
    };
    assert!(reason.contains("cgroup"), "{reason}");
    let o = run_with(
        &t.sandbox,
        &["/usr/bin/python3", "-c", "try:\n    b = b'x' * (1 << 30)\n    print('survived')\nexcept MemoryError:\n    print('MemoryError')"],
        Limits { memory_bytes: 256 << 20, ..limits() },
    )
    .await;
    assert_eq!(o.out(), "MemoryError\n", "{o:?}");
    assert_eq!(o.result.peak_memory_bytes, None);
    let code = "import os, time\nn = 0\nfor i in range(40):\n    try:\n        pid = os.fork()\n    except OSError as e:\n        print('stopped', e.errno)\n        break\n    if pid == 0:\n        time.sleep(5)\n        os._exit(0)\n    n += 1\nprint(n)";
    let o = run_with(
        &t.sandbox,
        &["/usr/bin/python3", "-c", code],
        Limits {
            max_processes: 8,
            ..limits()
        },
    )
    .await;
    let out = o.out();
    assert!(out.starts_with("stopped 11\n"), "{o:?}");
    let n: u32 = out
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("count");
    assert!((1..8).contains(&n), "{out}");
    eprintln!("degraded: forked {n} children under RLIMIT_NPROC 8");
}

#[tokio::test]
async fn programs_never_inherit_a_realtime_policy() {
    let Some(t) = sandbox() else { return };
    // Make this (test) thread SCHED_FIFO: the helper is spawned from it and inherits it.
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse::<u32>().ok());
    let Some(tid) = tid else { return };
    let set = |args: &[&str]| {
        std::process::Command::new("/usr/bin/chrt")
            .args(args)
            .arg(tid.to_string())
            .status()
    };
    if !set(&["-f", "-p", "10"]).is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: cannot make the test thread real-time");
        return;
    }
    let o = common::run(
        &t.sandbox,
        &["/bin/sh", "-c", "grep -E '^policy|^prio' /proc/self/sched"],
    )
    .await;
    let _ = set(&["-o", "-p", "0"]);
    assert_eq!(o.result.verdict, SandboxVerdict::Exited(0), "{o:?}");
    assert!(
        o.out()
            .contains("policy                                       :                    0"),
        "{}",
        o.out()
    );
    t.assert_clean();
}

#[tokio::test]
async fn two_sandboxes_in_one_process_get_distinct_workspaces() {
    let Some(a) = sandbox() else { return };
    let Some(b) = sandbox() else { return };
    let wa = a
        .sandbox
        .create_workspace(1 << 20)
        .expect("workspace from the first sandbox");
    let wb = b
        .sandbox
        .create_workspace(1 << 20)
        .expect("workspace from the second sandbox");
    assert_ne!(wa.path(), wb.path());
}
