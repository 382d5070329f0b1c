//! Sandbox latency and throughput next to bare fork/exec, in the same run.
//! `cargo bench -p voidrunner-sandbox` (needs root). Prints p50/p95 per run and runs/s.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use voidrunner_sandbox::{HelperCommand, RunSpec, Sandbox, SandboxConfig, SandboxVerdict};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    let p50 = percentile(&samples, 0.5);
    let p95 = percentile(&samples, 0.95);
    println!(
        "{name:<40} n={:<4} p50 {:>8.2} ms   p95 {:>8.2} ms",
        samples.len(),
        ms(p50),
        ms(p95)
    );
    p50
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn bare(argv: &[&str], n: usize) -> Vec<Duration> {
    (0..n + 3)
        .map(|_| {
            let t = Instant::now();
            let st = std::process::Command::new(argv[0])
                .args(&argv[1..])
                .status()
                .expect("spawn");
            assert!(st.success());
            t.elapsed()
        })
        .skip(3)
        .collect()
}

async fn once(sb: &Sandbox, argv: &[&str]) -> Duration {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let t = Instant::now();
    let r = sb
        .run(
            RunSpec::new(argv.iter().copied()),
            tx,
            CancellationToken::new(),
        )
        .await
        .expect("run");
    let d = t.elapsed();
    assert_eq!(r.verdict, SandboxVerdict::Exited(0), "{r:?}");
    let _ = drain.await;
    d
}

async fn sandboxed(sb: &Sandbox, argv: &[&str], n: usize) -> Vec<Duration> {
    let mut v = Vec::with_capacity(n);
    for i in 0..n + 3 {
        let d = once(sb, argv).await;
        if i >= 3 {
            v.push(d);
        }
    }
    v
}

async fn throughput(
    sb: Arc<Sandbox>,
    argv: &'static [&'static str],
    runners: usize,
    secs: u64,
) -> f64 {
    let end = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..runners)
        .map(|_| {
            let sb = sb.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < end {
                    once(&sb, argv).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("runner");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // SAFETY-free root check via /proc.
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    });
    if !root {
        eprintln!("SKIPPED: the sandbox benchmark needs root");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("vr-sbx-bench-")
        .tempdir()
        .expect("tempdir");
    let helper = HelperCommand {
        program: env!("CARGO_BIN_EXE_voidrunner-sandbox-helper").into(),
        args: Vec::new(),
    };
    let mut config = SandboxConfig::new(helper);
    config.workspace_root = dir.path().join("ws");
    config.cgroup_parent = "voidrunner-bench".into();
    let sb = Arc::new(Sandbox::new(config).expect("sandbox"));
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    println!(
        "sandbox mode: {:?}; load average at start: {}",
        sb.mode(),
        load()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let n = 200;
    let bare_true = report("bare fork/exec /bin/true", bare(&["/bin/true"], n));
    let sb_true = report(
        "sandbox /bin/true",
        rt.block_on(sandboxed(&sb, &["/bin/true"], n)),
    );
    let py = ["/usr/bin/python3", "-c", "pass"];
    let bare_py = report("bare fork/exec python3 -c pass", bare(&py, 40));
    let sb_py = report(
        "sandbox python3 -c pass",
        rt.block_on(sandboxed(&sb, &py, 40)),
    );
    println!(
        "overhead p50 /bin/true: {:.2} ms   python3: {:.2} ms",
        ms(sb_true) - ms(bare_true),
        ms(sb_py) - ms(bare_py)
    );
    let tput = rt.block_on(throughput(sb.clone(), &["/bin/true"], 2, 5));
    println!("throughput /bin/true, 2 concurrent runners: {tput:.0} runs/s");
    let tput_py = rt.block_on(throughput(
        sb.clone(),
        &["/usr/bin/python3", "-c", "pass"],
        2,
        5,
    ));
    println!("throughput python3 -c pass, 2 concurrent runners: {tput_py:.0} runs/s");
    println!("load average at end: {}", load());
    drop(sb);
    for ctrl in ["memory", "pids", "cpu", "cpuacct"] {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        if let Some(rel) = own
            .lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == ctrl))
            })
            .and_then(|l| l.splitn(3, ':').nth(2))
        {
            let _ = std::fs::remove_dir(
                std::path::Path::new("/sys/fs/cgroup")
                    .join(ctrl)
                    .join(rel.trim_start_matches('/'))
                    .join("voidrunner-bench"),
            );
        }
    }
}
