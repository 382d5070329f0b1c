//! The git hook's fetch with and without a kept mirror (`[hooks] mirror_dir`): a `file://`
//! repository of 2 000 commits touching 500 files (4 KB of noise each), then one new commit per event. "cold" is
//! what every event cost before (a fresh bare repository fetching every branch and tag);
//! "kept" is the next event into the kept mirror. Prints the median of 5 runs each.
//! Run with `cargo bench -p voidrunner-jobs --bench mirror`.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use voidrunner_jobs::source::{GitMirror, SourcePolicy};

const COMMITS: usize = 2000;
const FILES: usize = 500;
const SPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["-c", "user.name=b", "-c", "user.email=b@example.com"])
        .args(args)
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

/// A bare repository with `COMMITS` commits, written by `git fast-import` (seconds, not minutes).
fn history(bare: &Path) {
    git(bare, &["init", "-q", "--bare", "--initial-branch=main"]);
    let mut stream = String::new();
    let mut seed: u64 = 42;
    for i in 0..COMMITS {
        let file = i % FILES;
        stream.push_str(&format!(
            "commit refs/heads/main\ncommitter b <b@example.com> {} +0000\ndata 4\nc{:03}\n",
            1_700_000_000 + i,
            i % 1000
        ));
        // Pseudo-random hex, so the history does not compress to nothing.
        let noise: String = (0..500)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                format!("{:08x}", seed >> 32)
            })
            .collect();
        let body = format!("file {file} revision {i}\n{noise}\n");
        stream.push_str(&format!(
            "M 644 inline src/f{file}.txt\ndata {}\n{body}\n",
            body.len()
        ));
    }
    let mut child = Command::new("git")
        .current_dir(bare)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream.as_bytes())
        .expect("write");
    assert!(child.wait().expect("wait").success());
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bare = tmp.path().join("origin.git");
    std::fs::create_dir_all(&bare).expect("mkdir");
    history(&bare);
    let work = tmp.path().join("work");
    let url = format!("file://{}", bare.display());
    git(tmp.path(), &["clone", "-q", &url, "work"]);
    let policy = SourcePolicy {
        git_protocols: vec!["file".into()],
        ..SourcePolicy::default()
    };
    let kept = tmp.path().join("kept");
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for i in 0..6 {
        std::fs::write(work.join("src/new.txt"), format!("{i}\n")).expect("write");
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "next"]);
        git(&work, &["push", "-q", "origin", "HEAD:refs/heads/main"]);

        let fresh = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        let m = GitMirror::init(&url, fresh.path(), &policy).expect("init");
        m.fetch(&SPECS).expect("fetch");
        let cold_time = t.elapsed();

        let t = Instant::now();
        let m = GitMirror::open(&url, &kept, &policy).expect("open");
        m.fetch(&SPECS).expect("fetch");
        let warm_time = t.elapsed();
        // The first event creates the kept mirror: not a warm fetch.
        if i > 0 {
            cold.push(cold_time);
            warm.push(warm_time);
        }
    }
    let size: u64 = walk(&kept);
    println!(
        "repository: {COMMITS} commits, {FILES} files, mirror {:.1} MiB on disk",
        size as f64 / 1048576.0
    );
    println!(
        "cold fetch (fresh bare repository): median {:?}",
        median(cold)
    );
    println!(
        "kept mirror, one new commit:        median {:?}",
        median(warm)
    );
}

fn walk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}
