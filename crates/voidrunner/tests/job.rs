//! `voidrunner job validate` and `voidrunner job run` as a user runs them: a real binary, a
//! real git repository, the real sandbox; exit code = job result; every validation problem
//! listed with its path.

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_voidrunner");

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

/// (name, state, exit code) of each step of a job report or API job.
fn step_results(job: &serde_json::Value) -> Vec<(String, String, Option<i64>)> {
    job["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_owned(),
                s["state"].as_str().expect("state").to_owned(),
                s["exit_code"].as_i64(),
            )
        })
        .collect()
}

#[test]
fn validate_lists_every_problem_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "name: j\nsteps:\n  - {name: a, command: x, depends_on: [ghost]}\n  - {name: a, command: y}\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["job", "validate"])
        .arg(&file)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("2 problems"), "{err}");
    assert!(
        err.contains("steps[0].depends_on[0]: unknown step \"ghost\""),
        "{err}"
    );
    assert!(err.contains("steps[1].name: duplicate step name"), "{err}");
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"name": "j", "steps": [{"name": "a", "command": "true"}]}"#,
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["job", "validate"])
        .arg(&good)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn job_run_builds_tests_and_packages_locally() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).expect("repo");
    git(&repo, &["init", "-q", "--initial-branch=main"]);
    std::fs::write(
        repo.join("main.c"),
        "#include <stdio.h>\nint main(void){puts(\"hi\");return 0;}\n",
    )
    .expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "c"]);
    let job = dir.path().join("job.yaml");
    std::fs::write(
        &job,
        format!(
            r#"name: local
source: {{type: git, url: "file://{}"}}
secrets: [TOKEN]
steps:
  - {{name: build, command: "/usr/bin/gcc -o app main.c"}}
  - {{name: test, command: "./app && echo token=$TOKEN && test \"$GREETING\" = flag", depends_on: [build]}}
  - {{name: package, command: "cp app /job/artifacts/app", depends_on: [test]}}
artifacts: ["artifacts/app"]
env: {{GREETING: file}}
"#,
            repo.display()
        ),
    )
    .expect("write");
    let secrets = dir.path().join("secrets.env");
    std::fs::write(&secrets, "# local secrets\nTOKEN=from-file-secret\n").expect("write");
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "job",
            "run",
            "--allow-protocol",
            "file",
            "--json",
            "--env",
            "GREETING=flag",
        ])
        .arg("--secret-file")
        .arg(&secrets)
        .arg(&job)
        .env("VOIDRUNNER_SECRET_TOKEN", "from-env-secret")
        .env("VOIDRUNNER_ENV_GREETING", "env")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("[test] hi\n"), "{stderr}");
    assert!(
        stderr.contains("[test] token=***\n"),
        "secret masked: {stderr}"
    );
    assert!(
        !stderr.contains("from-env-secret") && !stderr.contains("from-file-secret"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["outcome"], "succeeded");
    let states: Vec<&str> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["succeeded", "succeeded", "succeeded"]);
    let local = report["artifacts"][0]["path"].as_str().expect("artifact");
    assert_eq!(local, "artifacts/app");

    // A failing step: exit code 1, dependants skipped.
    std::fs::write(&job, "name: failing\nsteps:\n  - {name: a, command: \"exit 4\"}\n  - {name: b, command: \"true\", depends_on: [a]}\n").expect("write");
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["job", "run", "--json"])
        .arg(&job)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["steps"][0]["exit_code"], 4);
    assert_eq!(report["steps"][1]["state"], "skipped");
}

/// The same job file run locally (`job run`) and through a server (`job submit --wait`, run by
/// the server's job worker) gives the same step results and the same artifact bytes.
#[test]
fn the_same_job_gives_the_same_results_locally_and_through_the_server() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    std::fs::create_dir(&src).expect("src");
    std::fs::write(
        src.join("main.c"),
        "#include <stdio.h>\nint main(void){puts(\"hi from c\");return 0;}\n",
    )
    .expect("write");
    let tarball = dir.path().join("src.tar.gz");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .args(["-czf"])
        .arg(&tarball)
        .arg("main.c")
        .status()
        .expect("tar")
        .success();
    assert!(ok);
    let job = dir.path().join("job.yaml");
    std::fs::write(
        &job,
        "name: same\nsource: {type: tarball}\nsecrets: [TOKEN]\nsteps:\n  \
- {name: build, command: \"/usr/bin/gcc -O0 -o app main.c\"}\n  \
- {name: test, command: \"./app && echo token=$TOKEN && exit 5\", depends_on: [build]}\n  \
- {name: package, command: \"cp app /job/artifacts/app\", depends_on: [test]}\n  \
- {name: always, command: \"cp main.c /job/artifacts/main.c\", depends_on: [test], condition: always}\n\
artifacts: [\"artifacts/**\"]\n",
    )
    .expect("write");
    let secrets = dir.path().join("secrets.env");
    std::fs::write(&secrets, "TOKEN=same-secret-value\n").expect("write");

    // Locally.
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["job", "run", "--json"])
        .arg("--tarball")
        .arg(&tarball)
        .arg("--secret-file")
        .arg(&secrets)
        .arg(&job)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let local: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
    let local_steps = step_results(&local);

    // Through the server.
    let node = common::spawn(
        dir.path(),
        &["serve", "--workers", "1", "--listen", "127.0.0.1:0"],
        &common::cluster_env(),
    );
    let api = common::Api::register(&node.url, "jobs-e2e@example.com");
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["job", "submit", "--wait", "--server", &node.url])
        .arg("--tarball")
        .arg(&tarball)
        .arg("--secret-file")
        .arg(&secrets)
        .arg(&job)
        .env("VOIDRUNNER_API_KEY", &api.token)
        .output()
        .expect("submit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("[test] hi from c"), "{stderr}");
    assert!(
        stderr.contains("[test] token=***"),
        "masked on the server too: {stderr}"
    );
    assert!(!stderr.contains("same-secret-value"), "{stderr}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let job = common::wait_for(Duration::from_secs(30), "the job", || {
        let (_, j) = api.get(&format!("/api/v1/jobs/{id}"));
        (j["status"] != "queued" && j["status"] != "running").then_some(j)
    });
    let server_steps = step_results(&job);
    assert_eq!(server_steps, local_steps, "{job}");
    assert_eq!(job["status"], "failed");
    // The artifact of the `always` step, byte-identical to the source and to the local run.
    let bytes = reqwest::blocking::Client::new()
        .get(format!(
            "{}/api/v1/jobs/{id}/artifacts/artifacts/main.c",
            node.url
        ))
        .bearer_auth(&api.token)
        .send()
        .expect("download")
        .bytes()
        .expect("bytes");
    assert_eq!(
        bytes.as_ref(),
        std::fs::read(src.join("main.c")).expect("src").as_slice()
    );
    let local_sha = local["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .find(|a| a["path"] == "artifacts/main.c")
        .map(|a| a["sha256"].clone());
    let server_sha = job["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .find(|a| a["path"] == "artifacts/main.c")
        .map(|a| a["sha256"].clone());
    assert_eq!(local_sha, server_sha);
}

#[test]
fn workflow_validate_lists_every_problem_and_counts_fan_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: w\njobs:\n  a: {job_file: a.yaml, needs: [ghost, b]}\n  b: {job_file: b.yaml, depends_on: [a]}\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["workflow", "validate"])
        .arg(&bad)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("2 problems"), "{err}");
    assert!(
        err.contains("jobs.a.depends_on[0]: unknown node \"ghost\""),
        "{err}"
    );
    assert!(err.contains("dependency cycle: a → b → a"), "{err}");
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "name: w\njobs:\n  build: {job_file: b.yaml, for_each: [x, y, z]}\n  publish: {job_file: p.yaml, needs: [build]}\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["workflow", "validate"])
        .arg(&good)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 nodes (4 after fan-out)"));
}
