//! `voidrunner doctor` on this host: the sandbox gives full isolation (exit 0), and the report
//! names the sandbox mode, the runtimes, and what CI jobs and git events need; a mirror
//! directory that cannot be written is reported.

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::process::Command;

fn doctor(dir: &std::path::Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(common::BIN)
        .arg("doctor")
        .current_dir(dir)
        .env_remove("VOIDRUNNER_DATABASE_URL")
        .env("VOIDRUNNER_DATA_DIR", dir.join("data"))
        .envs(env.iter().copied())
        .output()
        .expect("run doctor");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn doctor_reports_isolation_runtimes_and_what_ci_needs() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, text) = doctor(
        dir.path(),
        &[("VOIDRUNNER_JOBS__PER_USER_CONCURRENCY", "3")],
    );
    assert!(ok, "{text}");
    for want in [
        "== sandbox\nmode: full",
        "== languages",
        "== CI jobs and git events",
        "at most 3 per user",
        "git: git version ",
        "(writable)",
        "all isolation guarantees hold",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "doctor checks, it creates nothing"
    );

    // A mirror directory under a regular file cannot be created.
    std::fs::write(dir.path().join("file"), "x").expect("write");
    let bad = dir.path().join("file/mirrors");
    let (_, text) = doctor(
        dir.path(),
        &[("VOIDRUNNER_HOOKS__MIRROR_DIR", bad.to_str().expect("utf-8"))],
    );
    assert!(text.contains("NOT WRITABLE"), "{text}");
}
