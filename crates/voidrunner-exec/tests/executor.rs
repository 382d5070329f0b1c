//! Limits, cancellation, environment and streaming through the native executor and the real
//! sandbox.

mod common;

use std::time::{Duration, Instant};

use common::{execute, executor, request, run, run_with};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_domain::Verdict;
use voidrunner_exec::{ExecRequest, Executor, OutputStream, Phase};

#[tokio::test]
async fn timeout_verdict() {
    let mut req = request(
        "python",
        "import time\nprint('start', flush=True)\ntime.sleep(60)\n",
        None,
    );
    req.limits.timeout_secs = 1;
    let started = Instant::now();
    let ran = run(req).await;
    assert_eq!(ran.outcome.verdict, Verdict::Timeout, "{ran:?}");
    assert_eq!(ran.outcome.exit_code, None);
    assert_eq!(ran.stdout(), "start\n");
    assert!(ran.outcome.wall_time >= Duration::from_secs(1));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "killed promptly"
    );
}

#[tokio::test]
async fn memory_verdict() {
    let mut req = request(
        "python",
        "data = b'x' * (512 * 1024 * 1024)\nprint(len(data))\n",
        None,
    );
    req.limits.memory_mb = 64;
    let ran = run(req).await;
    assert_eq!(ran.outcome.verdict, Verdict::MemoryLimit, "{ran:?}");
    assert_eq!(ran.stdout(), "");
}

#[tokio::test]
async fn output_limit_cuts_and_flags() {
    let mut req = request(
        "bash",
        "while :; do echo aaaaaaaaaaaaaaaaaaaa; done\n",
        None,
    );
    req.limits.max_output_bytes = 4096;
    let ran = run(req).await;
    assert_eq!(
        ran.outcome.verdict,
        Verdict::OutputLimit,
        "{:?}",
        ran.outcome
    );
    assert!(ran.outcome.output_truncated);
    let total: usize = ran.events.iter().map(|e| e.data.len()).sum();
    assert!(total <= 4096, "{total} bytes forwarded");
}

#[tokio::test]
async fn cancel_kills_the_running_program() {
    let (tx, mut rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let req = request("bash", "echo ready\nsleep 60\necho never\n", None);
    let execution = execute(req, tx, cancel.clone());
    let canceller = async {
        // Cancel as soon as the program proves it is running.
        let first = rx.recv().await.expect("first output");
        assert_eq!(&first.data[..], b"ready\n");
        let at = Instant::now();
        cancel.cancel();
        while rx.recv().await.is_some() {}
        at
    };
    let (outcome, cancelled_at) = tokio::join!(execution, canceller);
    assert_eq!(outcome.verdict, Verdict::Cancelled, "{outcome:?}");
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(2),
        "killed within a second or so"
    );
}

#[tokio::test]
async fn cancelled_before_start_runs_nothing() {
    let cancel = CancellationToken::new();
    cancel.cancel();
    let ran = run_with(request("bash", "echo hi\n", None), cancel).await;
    assert_eq!(ran.outcome.verdict, Verdict::Cancelled);
    assert!(ran.outcome.phases.is_empty());
    assert!(ran.events.is_empty());
}

#[tokio::test]
async fn environment_is_minimal_with_task_variables_and_fixed_path() {
    let mut req = request("bash", "env | sort\n", None);
    req.env.insert("GREETING".into(), "hi there".into());
    req.env.insert("PATH".into(), "/evil".into());
    let ran = run(req).await;
    assert_eq!(ran.outcome.verdict, Verdict::Exited { code: 0 }, "{ran:?}");
    let env = ran.stdout();
    assert!(env.contains("GREETING=hi there\n"), "{env}");
    assert!(env.contains("PATH=/usr/bin:/bin\n"), "{env}");
    assert!(
        env.contains("HOME=/tmp\n") && env.contains("LANG=C.UTF-8\n"),
        "{env}"
    );
    // Nothing of the test process' own environment leaks in.
    assert!(!env.contains("CARGO"), "{env}");
}

#[tokio::test]
async fn output_is_streamed_in_order_with_increasing_timestamps() {
    let code = "for i in 1 2 3; do echo out$i; echo err$i >&2; done\n";
    let ran = run(request("bash", code, None)).await;
    assert_eq!(ran.outcome.verdict, Verdict::Exited { code: 0 });
    assert_eq!(ran.stdout(), "out1\nout2\nout3\n");
    assert_eq!(ran.stderr(), "err1\nerr2\nerr3\n");
    assert!(ran.events.iter().all(|e| e.phase == Phase::Run));
    assert!(ran.events.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
    assert!(ran.events.iter().any(|e| e.stream == OutputStream::Stderr));
}

#[tokio::test]
async fn compile_output_precedes_run_output() {
    let code = "#include <stdio.h>\nint main(void) { int unused; puts(\"ran\"); return 0; }\n";
    let mut req = request("c", code, None);
    req.language = "gcc".into();
    // -Wall is not on: the compiler is silent, only the run prints.
    let ran = run(req).await;
    assert_eq!(ran.outcome.verdict, Verdict::Exited { code: 0 }, "{ran:?}");
    assert_eq!(ran.stdout(), "ran\n");
    let compile = ran.outcome.phase(Phase::Compile).expect("compiled");
    let run_phase = ran.outcome.phase(Phase::Run).expect("ran");
    assert!(compile.wall_time > Duration::ZERO && run_phase.wall_time > Duration::ZERO);
    let first_run_event = ran
        .events
        .iter()
        .find(|e| e.phase == Phase::Run)
        .expect("run output");
    assert!(
        first_run_event.elapsed >= compile.wall_time,
        "elapsed counts from the start"
    );
}

#[tokio::test]
async fn unknown_or_unavailable_language_is_a_sandbox_error() {
    let ran = run(ExecRequest {
        language: "cobol".into(),
        ..request("bash", "", None)
    })
    .await;
    let Verdict::SandboxError { reason } = ran.outcome.verdict else {
        panic!("expected a sandbox error, got {:?}", ran.outcome);
    };
    assert!(reason.contains("cobol"), "{reason}");
    assert!(ran.outcome.phases.is_empty());
}

#[tokio::test]
async fn programs_share_the_workspace_between_compile_and_run_only() {
    // A file written by one execution is not visible to the next one.
    let write = run(request(
        "bash",
        "echo secret > /work/leftover; ls /work\n",
        None,
    ))
    .await;
    assert_eq!(
        write.outcome.verdict,
        Verdict::Exited { code: 0 },
        "{write:?}"
    );
    assert_eq!(write.stdout(), "leftover\nmain.sh\n");
    let read = run(request("bash", "ls /work\n", None)).await;
    assert_eq!(read.stdout(), "main.sh\n");
}

#[test]
fn executor_is_usable_as_a_trait_object() {
    let shared: std::sync::Arc<dyn Executor> = std::sync::Arc::new(executor().clone());
    assert!(format!("{shared:?}").contains("NativeExecutor"));
}

#[tokio::test]
async fn large_stdin_round_trips() {
    let input: String = (0..20_000)
        .map(|i| format!("line {i:05} of the input\n"))
        .collect();
    assert!(input.len() > 400 * 1024);
    let ran = run(request(
        "python",
        "import sys\nsys.stdout.write(sys.stdin.read())\n",
        Some(&input),
    ))
    .await;
    assert_eq!(
        ran.outcome.verdict,
        Verdict::Exited { code: 0 },
        "{:?}",
        ran.outcome
    );
    assert!(!ran.outcome.output_truncated);
    assert!(
        ran.stdout() == input,
        "stdout differs from stdin ({} bytes)",
        ran.stdout().len()
    );
}

#[tokio::test]
async fn concurrent_executions_are_isolated() {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        set.spawn(async move {
            let code = format!("echo {i} > /work/mine\nsleep 0.2\ncat /work/mine\nls /work\n");
            (i, run(request("bash", &code, None)).await)
        });
    }
    while let Some(joined) = set.join_next().await {
        let (i, ran) = joined.expect("task");
        assert_eq!(ran.outcome.verdict, Verdict::Exited { code: 0 }, "{ran:?}");
        assert_eq!(ran.stdout(), format!("{i}\nmain.sh\nmine\n"));
    }
}

#[tokio::test]
async fn growing_program_reports_a_resource_timeline() {
    // ~1.5 s: every 100 ms another 4 MiB, touched and kept.
    let req = request(
        "python",
        "import time\nkeep = []\nfor i in range(15):\n    keep.append(bytearray(4 << 20))\n    end = time.time() + 0.1\n    while time.time() < end: pass\nprint(len(keep))\n",
        None,
    );
    let ran = run(req).await;
    assert_eq!(ran.outcome.verdict, Verdict::Exited { code: 0 }, "{ran:?}");
    let s = &ran.outcome.samples;
    assert!(s.len() >= 8, "{} samples: {s:?}", s.len());
    assert!(
        s.windows(2)
            .all(|w| w[0].t_ms < w[1].t_ms && w[0].cpu_ms <= w[1].cpu_ms),
        "time increases, cpu never decreases: {s:?}"
    );
    let (first, peak) = (s[0], s.iter().map(|p| p.memory_bytes).max().unwrap_or(0));
    // The last point may come after the program freed its memory on exit.
    assert!(
        peak >= first.memory_bytes + (24 << 20),
        "memory grows: {first:?} → {peak}"
    );
    let run_phase = ran.outcome.phase(Phase::Run).expect("run phase");
    assert_eq!(
        &run_phase.samples, s,
        "the outcome carries the run phase's timeline"
    );
}

#[tokio::test]
async fn short_program_has_no_timeline() {
    let ran = run(request("bash", "echo hi\n", None)).await;
    assert_eq!(ran.stdout(), "hi\n");
    assert!(ran.outcome.samples.is_empty(), "{:?}", ran.outcome.samples);
}

#[tokio::test]
async fn interactive_run_phase_reads_live_stdin() {
    let (in_tx, in_rx) = mpsc::channel(4);
    let mut req = request(
        "python",
        "print('name?', flush=True)\nname = input()\nprint('hello', name)\n",
        Some("dear "),
    );
    req.stdin_stream = Some(voidrunner_exec::StdinStream::new(in_rx));
    let (tx, mut rx) = mpsc::channel(16);
    let outcome = execute(req, tx, CancellationToken::new());
    let mut seen = String::new();
    let mut until = async |want: &str| {
        while !seen.contains(want) {
            let e = rx.recv().await.expect("output");
            seen.push_str(&String::from_utf8_lossy(&e.data));
        }
    };
    until("name?\n").await;
    in_tx.send(b"world\n".to_vec()).await.expect("send");
    until("hello dear world\n").await;
    drop(in_tx);
    let outcome = outcome.await;
    assert_eq!(outcome.verdict, Verdict::Exited { code: 0 }, "{outcome:?}");
}
