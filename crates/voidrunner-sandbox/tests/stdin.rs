//! Interactive stdin: chunks sent while the program runs, EOF when the channel closes, a
//! program that never reads, and cancel while it waits for input.

mod common;

use common::*;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_sandbox::{Limits, OutputChunk, RunSpec, SandboxVerdict, Stream};

fn spec(argv: &[&str], stdin: Option<&str>) -> RunSpec {
    let mut spec = RunSpec::new(argv.iter().copied());
    spec.stdin = stdin.map(|s| s.as_bytes().to_vec());
    spec.limits = Limits {
        wall_timeout: Duration::from_secs(20),
        ..Limits::default()
    };
    spec
}

/// Waits for the next stdout chunk (or panics after 20 s).
async fn next_out(rx: &mut mpsc::Receiver<OutputChunk>) -> String {
    loop {
        let c = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("output in time")
            .expect("output");
        if c.stream == Stream::Stdout {
            return String::from_utf8_lossy(&c.data).into_owned();
        }
    }
}

#[tokio::test]
async fn program_answers_chunks_sent_while_it_runs() {
    let Some(t) = sandbox() else { return };
    let code = "print('name?', flush=True)\nname = input()\nprint('hello', name, flush=True)\nprint('rest', repr(input()), flush=True)\n";
    let (out_tx, mut out_rx) = mpsc::channel(64);
    let (in_tx, in_rx) = mpsc::channel(8);
    let sb = t.sandbox.clone();
    let run = tokio::spawn(async move {
        let spec = spec(&["/usr/bin/python3", "-c", code], Some("snap"));
        sb.run_with_stdin(spec, out_tx, in_rx, CancellationToken::new())
            .await
    });
    assert_eq!(next_out(&mut out_rx).await, "name?\n");
    in_tx.send(b"wor".to_vec()).await.expect("send");
    in_tx.send(b"ld\nlast".to_vec()).await.expect("send");
    assert_eq!(next_out(&mut out_rx).await, "hello snapworld\n");
    in_tx.send(b" line".to_vec()).await.expect("send");
    drop(in_tx);
    assert_eq!(next_out(&mut out_rx).await, "rest 'last line'\n");
    let result = run.await.expect("join").expect("run");
    assert_eq!(result.verdict, SandboxVerdict::Exited(0));
    t.assert_clean();
}

#[tokio::test]
async fn a_program_that_never_reads_is_not_blocked() {
    let Some(t) = sandbox() else { return };
    let (out_tx, mut out_rx) = mpsc::channel(64);
    let (in_tx, in_rx) = mpsc::channel(4);
    let sb = t.sandbox.clone();
    let run = tokio::spawn(async move {
        let spec = spec(&["/bin/sh", "-c", "echo up; sleep 1; echo done"], None);
        sb.run_with_stdin(spec, out_tx, in_rx, CancellationToken::new())
            .await
    });
    assert_eq!(next_out(&mut out_rx).await, "up\n");
    // Far more than a pipe holds (64 KiB): the helper keeps it pending, never blocks.
    for _ in 0..16 {
        in_tx.send(vec![b'x'; 64 << 10]).await.expect("send");
    }
    assert_eq!(next_out(&mut out_rx).await, "done\n");
    let result = run.await.expect("join").expect("run");
    assert_eq!(result.verdict, SandboxVerdict::Exited(0));
    assert!(result.wall_time < Duration::from_secs(5), "{result:?}");
    t.assert_clean();
    drop(in_tx);
}

#[tokio::test]
async fn cancel_while_waiting_for_input() {
    let Some(t) = sandbox() else { return };
    let (out_tx, mut out_rx) = mpsc::channel(64);
    let (_in_tx, in_rx) = mpsc::channel(4);
    let cancel = CancellationToken::new();
    let sb = t.sandbox.clone();
    let token = cancel.clone();
    let run = tokio::spawn(async move {
        let spec = spec(
            &["/bin/sh", "-c", "echo ready; read line; echo never"],
            None,
        );
        sb.run_with_stdin(spec, out_tx, in_rx, token).await
    });
    assert_eq!(next_out(&mut out_rx).await, "ready\n");
    cancel.cancel();
    let result = run.await.expect("join").expect("run");
    assert_eq!(result.verdict, SandboxVerdict::Cancelled);
    // The helper is reused for the next run, whatever was left in its control channel.
    let o = sh(&t.sandbox, "cat; echo ok").await;
    assert_eq!(o.out(), "ok\n", "{o:?}");
    t.assert_clean();
}

#[tokio::test]
async fn stale_stdin_after_the_end_does_not_confuse_the_next_run() {
    let Some(t) = sandbox() else { return };
    let (out_tx, _out_rx) = mpsc::channel(64);
    let (in_tx, in_rx) = mpsc::channel(4);
    let spec1 = spec(&["/bin/true"], None);
    let sending = tokio::spawn(async move {
        // Keeps sending while (and after) the program ends.
        for _ in 0..200 {
            if in_tx.send(b"c{\n".to_vec()).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    });
    let result = t
        .sandbox
        .run_with_stdin(spec1, out_tx, in_rx, CancellationToken::new())
        .await
        .expect("run");
    assert_eq!(result.verdict, SandboxVerdict::Exited(0));
    sending.await.expect("sender");
    let o = sh(&t.sandbox, "echo next").await;
    assert_eq!(
        (o.out().as_str(), &o.result.verdict),
        ("next\n", &SandboxVerdict::Exited(0))
    );
    t.assert_clean();
}
