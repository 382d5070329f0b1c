//! Basic runs: exit codes, output streaming, stdin, identity inside the sandbox.

mod common;

use common::*;
use voidrunner_sandbox::SandboxVerdict;

#[tokio::test]
async fn true_exits_zero() {
    let Some(t) = sandbox() else { return };
    let o = run(&t.sandbox, &["/bin/true"]).await;
    assert_eq!(o.result.verdict, SandboxVerdict::Exited(0), "{o:?}");
    t.assert_clean();
}

#[tokio::test]
async fn exit_code_and_streams_are_reported() {
    let Some(t) = sandbox() else { return };
    let o = sh(&t.sandbox, "echo out; echo err >&2; exit 7").await;
    assert_eq!(o.result.verdict, SandboxVerdict::Exited(7), "{o:?}");
    assert_eq!(o.out(), "out\n");
    assert_eq!(o.err(), "err\n");
    t.assert_clean();
}

#[tokio::test]
async fn identity_inside_is_unprivileged() {
    let Some(t) = sandbox() else { return };
    let o = sh(
        &t.sandbox,
        "id -u; id -g; echo $$; hostname; grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; cat /proc/self/uid_map; pwd; cat /proc/self/mountinfo",
    )
    .await;
    eprintln!("{}\n{}", o.out(), o.err());
    assert_eq!(o.result.verdict, SandboxVerdict::Exited(0), "{o:?}");
    let out = o.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..4], ["65534", "65534", "1", "sandbox"]);
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            out.contains(&format!("{cap}:\t0000000000000000")),
            "{cap} not empty: {out}"
        );
    }
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(
        out.contains("65534      65534          1"),
        "uid_map: {out}"
    );
    assert!(out.contains("/work\n"), "{out}");
    t.assert_clean();
}

#[tokio::test]
async fn stdin_is_echoed() {
    let Some(t) = sandbox() else { return };
    let mut spec = voidrunner_sandbox::RunSpec::new(["/bin/cat"]);
    spec.stdin = Some(b"hello from stdin\n".repeat(10_000));
    let o = run_spec(&t.sandbox, spec, tokio_util::sync::CancellationToken::new()).await;
    assert_eq!(
        o.result.verdict,
        SandboxVerdict::Exited(0),
        "{:?}",
        o.result
    );
    assert_eq!(o.stdout, b"hello from stdin\n".repeat(10_000));
    t.assert_clean();
}

#[tokio::test]
async fn python_runs_and_chunks_are_timestamped() {
    let Some(t) = sandbox() else { return };
    let o = py(
        &t.sandbox,
        "import sys, time\nprint('a', flush=True)\ntime.sleep(0.2)\nprint('b', file=sys.stderr)",
    )
    .await;
    assert_eq!(o.result.verdict, SandboxVerdict::Exited(0), "{o:?}");
    assert_eq!(o.out(), "a\n");
    assert_eq!(o.err(), "b\n");
    assert!(o.chunks.len() >= 2);
    assert!(
        o.chunks[1].elapsed >= o.chunks[0].elapsed + std::time::Duration::from_millis(150),
        "{:?}",
        o.chunks
    );
    assert!(o.result.cpu_time > std::time::Duration::ZERO);
    assert!(
        o.result.peak_memory_bytes.is_some_and(|m| m > 1 << 20),
        "{:?}",
        o.result
    );
    t.assert_clean();
}

#[tokio::test]
async fn missing_program_is_a_sandbox_error_naming_execve() {
    let Some(t) = sandbox() else { return };
    let o = run(&t.sandbox, &["/usr/bin/does-not-exist"]).await;
    match &o.result.verdict {
        SandboxVerdict::SandboxError(msg) => assert!(
            msg.contains("execve") && msg.contains("does-not-exist"),
            "{msg}"
        ),
        other => panic!("unexpected {other:?}"),
    }
    t.assert_clean();
}

#[tokio::test]
async fn only_stdio_is_open_in_the_program() {
    let Some(t) = sandbox() else { return };
    let o = sh(&t.sandbox, "ls /proc/self/fd | tr '\\n' ' '").await;
    // 0 1 2 plus the fd `ls` opened for the directory itself.
    assert_eq!(o.out(), "0 1 2 3 ", "{o:?}");
    t.assert_clean();
}

#[test]
fn host_report_describes_this_host() {
    let r = voidrunner_sandbox::Sandbox::host_report();
    let text = r.to_string();
    assert!(r.namespaces.iter().all(|(_, ok)| *ok), "{text}");
    assert!(r.seccomp, "{text}");
    assert!(text.contains("cgroups: v"), "{text}");
    assert!(text.contains("guarantees:"), "{text}");
}

#[tokio::test]
async fn setup_failure_names_the_failing_mount() {
    let gone = tempfile::Builder::new()
        .prefix("vr-gone-")
        .tempdir_in("/var/tmp")
        .expect("dir");
    let path = gone.path().to_path_buf();
    let p = path.clone();
    let Some(t) = sandbox_with(|c| c.ro_binds.push(p)) else {
        return;
    };
    drop(gone);
    let o = run(&t.sandbox, &["/bin/true"]).await;
    match &o.result.verdict {
        SandboxVerdict::SandboxError(msg) => {
            assert!(
                msg.contains("mount(") && msg.contains(&*path.to_string_lossy()),
                "{msg}"
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    // The (reused) helper survives its child's setup failure and reports it again.
    let o = run(&t.sandbox, &["/bin/true"]).await;
    assert!(matches!(o.result.verdict, SandboxVerdict::SandboxError(_)));
    t.assert_clean();
}

#[tokio::test]
async fn missing_helper_is_an_error() {
    let Some(t) = sandbox_with(|c| c.helper.program = "/nonexistent/voidrunner".into()) else {
        return;
    };
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let err = t
        .sandbox
        .run(
            voidrunner_sandbox::RunSpec::new(["/bin/true"]),
            tx,
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .expect_err("must fail");
    assert!(err.to_string().contains("/nonexistent/voidrunner"), "{err}");
    t.assert_clean();
}

#[test]
fn dangerous_configurations_are_refused() {
    if sandbox().is_none() {
        return;
    }
    let helper = voidrunner_sandbox::HelperCommand {
        program: "/bin/true".into(),
        args: Vec::new(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let base = || {
        let mut c = voidrunner_sandbox::SandboxConfig::new(helper.clone());
        c.workspace_root = dir.path().join("ws");
        c
    };
    let mut root_uid = base();
    root_uid.uid = 0;
    let mut shadow = base();
    shadow.etc_files.push("shadow".into());
    let mut escape = base();
    escape.cgroup_parent = "../../elsewhere".into();
    for (what, config) in [
        ("uid 0", root_uid),
        ("shadow", shadow),
        ("cgroup path", escape),
    ] {
        assert!(
            voidrunner_sandbox::Sandbox::new(config).is_err(),
            "{what} accepted"
        );
    }
}
