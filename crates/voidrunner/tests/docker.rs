//! The Docker executor through the `voidrunner` binary, against a real engine (started by
//! `scripts/docker-setup`, image `voidrunner/python:3.11`): a languages file adds
//! `python-docker`, `serve` runs with `VOIDRUNNER_DOCKER__ENABLED=true`, and the tests check a
//! run, a cancel that removes the container, and the removal at start of the container a
//! SIGKILLed `serve` left behind. When the engine is unreachable each test prints
//! `skipped: …` and passes, except under `CI=true`, where it fails.

#[expect(
    dead_code,
    reason = "each test binary uses a subset of the shared helpers"
)]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Api, Node, cluster_env, spawn, wait_for};
use serde_json::{Value, json};

const LANGUAGES: &str = r#"
[languages.python-docker]
display_name = "Python 3 (Docker)"
source_file = "main.py"
run = ["/usr/bin/python3", "{file}"]
env = { PYTHONUNBUFFERED = "1", PYTHONDONTWRITEBYTECODE = "1" }
version = "3.11"
executor = "docker"
image = "voidrunner/python:3.11"

[languages.c-docker]
display_name = "C (gcc 12, Docker)"
source_file = "main.c"
run = ["{out}"]
version = "12"
executor = "docker"
image = "voidrunner/gcc:12"

[languages.c-docker.compile]
command = ["/usr/bin/gcc", "-O2", "-o", "{out}", "{file}"]
output = "main"
"#;

/// A program that sleeps far longer than any test waits.
const SLEEPER: &str = "import time\nprint('ready', flush=True)\ntime.sleep(300)";

/// `docker <args>`: stdout, or the reason it failed.
fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("running docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// True when the engine answers; otherwise prints `skipped: …` (a failure under `CI=true`).
fn engine_up() -> bool {
    let check = docker(&["version", "--format", "{{.Server.Version}}"])
        .and_then(|_| {
            docker(&[
                "image",
                "inspect",
                "voidrunner/python:3.11",
                "voidrunner/gcc:12",
            ])
        })
        .map(|_| ());
    match check {
        Ok(()) => true,
        Err(reason) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "docker engine or image not available in CI: {reason}"
            );
            println!("skipped: docker engine or image not available: {reason}");
            false
        }
    }
}

/// Ids of the containers (running or not) labelled with this docker node id.
fn containers(node: &str) -> Vec<String> {
    let filter = format!("label=voidrunner.node={node}");
    docker(&["ps", "-aq", "--no-trunc", "--filter", &filter])
        .expect("docker ps")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Starts `serve` in `dir` with the docker language and `docker.node_id = node`.
fn serve(dir: &Path, node: &str) -> Node {
    let languages = dir.join("languages.toml");
    std::fs::write(&languages, LANGUAGES).expect("languages file");
    let config = dir.join("voidrunner.toml");
    let text = format!(
        "[languages]\nfile = {:?}\n\n[docker]\nnode_id = {node:?}\n",
        languages.display().to_string()
    );
    std::fs::write(&config, text).expect("config file");
    let mut env = cluster_env();
    env.push(("VOIDRUNNER_DOCKER__ENABLED", "true".to_owned()));
    let config = config.display().to_string();
    let args = [
        "serve",
        "--config",
        config.as_str(),
        "--workers",
        "1",
        "--listen",
        "127.0.0.1:0",
    ];
    spawn(dir, &args, &env)
}

fn run(api: &Api, code: &str, wait: bool) -> Value {
    let path = if wait {
        "/api/v1/run?wait=true"
    } else {
        "/api/v1/run"
    };
    // Long enough that only the test ends the sleeper (the default timeout is 10 s).
    let body = json!({
        "language": "python-docker",
        "code": code,
        "stdin": "ada\n",
        "limits": {"timeout_secs": 120},
    });
    let (status, row) = api.post(path, &body).expect("run");
    assert!(matches!(status, 200 | 202), "{status}: {row}");
    row
}

/// Waits until the execution is running in a container, and returns the container's id.
fn running_container(api: &Api, id: &str, node: &str) -> String {
    wait_for(Duration::from_secs(60), "the program to start", || {
        let (_, row) = api.get(&format!("/api/v1/executions/{id}"));
        let running = containers(node);
        (row["status"] == "running" && running.len() == 1).then(|| running[0].clone())
    })
}

fn delete(api: &Api, path: &str) -> (u16, Value) {
    let res = reqwest::blocking::Client::new()
        .delete(format!("{}{path}", api.base))
        .bearer_auth(&api.token)
        .send()
        .expect("DELETE");
    let status = res.status().as_u16();
    (status, res.json().expect("json"))
}

#[test]
fn serve_runs_a_docker_language() {
    if !engine_up() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let node = "e2e-run";
    let server = serve(dir.path(), node);
    let api = Api::register(&server.url, "docker-run@example.com");
    let code = "import sys, os\nprint('hello', sys.stdin.readline().strip(), os.getuid())";
    let row = run(&api, code, true);
    assert_eq!(row["status"], "completed", "{row}");
    assert_eq!(row["exit_code"], 0, "{row}");
    assert_eq!(row["stdout"], "hello ada 1000\n", "{row}");
    assert!(containers(node).is_empty(), "container left behind");
}

#[test]
fn serve_compiles_and_runs_c_in_docker() {
    if !engine_up() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let node = "e2e-c";
    let server = serve(dir.path(), node);
    let api = Api::register(&server.url, "docker-c@example.com");
    let run_c = |code: &str| {
        let body = json!({"language": "c-docker", "code": code, "stdin": "ada\n"});
        let (status, row) = api.post("/api/v1/run?wait=true", &body).expect("run");
        assert_eq!(status, 200, "{row}");
        row
    };
    let row = run_c(
        "#include <stdio.h>\nint main(void) { char s[16]; if (!fgets(s, sizeof s, stdin)) return 9; printf(\"hi %s\", s); return 0; }\n",
    );
    assert_eq!(row["status"], "completed", "{row}");
    assert_eq!(
        row["verdict"],
        json!({"kind": "exited", "code": 0}),
        "{row}"
    );
    assert_eq!(row["stdout"], "hi ada\n", "{row}");

    let row = run_c("int main(void) { return nope; }\n");
    assert_eq!(row["verdict"]["kind"], "compile_error", "{row}");
    // The compile phase's output is kept apart from the program's.
    let compiler = row["compile_output"].as_str().unwrap_or_default();
    assert!(compiler.contains("nope"), "{row}");
    assert!(containers(node).is_empty(), "container left behind");
}

#[test]
fn cancel_removes_the_container() {
    if !engine_up() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let node = "e2e-cancel";
    let server = serve(dir.path(), node);
    let api = Api::register(&server.url, "docker-cancel@example.com");
    let id = run(&api, SLEEPER, false)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let container = running_container(&api, &id, node);
    let (status, row) = delete(&api, &format!("/api/v1/executions/{id}"));
    assert!(matches!(status, 200 | 202), "{status}: {row}");
    wait_for(Duration::from_secs(30), "the cancelled status", || {
        let (_, row) = api.get(&format!("/api/v1/executions/{id}"));
        (row["status"] == "cancelled").then_some(())
    });
    wait_for(
        Duration::from_secs(30),
        "the container to be removed",
        || (!containers(node).contains(&container)).then_some(()),
    );
}

#[test]
fn a_restarted_serve_removes_the_container_its_killed_run_left() {
    if !engine_up() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let node = "e2e-kill9";
    let mut server = serve(dir.path(), node);
    let api = Api::register(&server.url, "docker-kill9@example.com");
    let id = run(&api, SLEEPER, false)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let container = running_container(&api, &id, node);
    // Kill only once the program itself runs: before that, the launcher is still reading the
    // code from the node's stdin stream and would stop with it.
    wait_for(Duration::from_secs(60), "the program's first line", || {
        let text = reqwest::blocking::Client::new()
            .get(format!("{}/api/v1/executions/{id}/logs", api.base))
            .bearer_auth(&api.token)
            .send()
            .and_then(reqwest::blocking::Response::text)
            .unwrap_or_default();
        text.contains("ready").then_some(())
    });
    server.kill9();
    // Nothing removes it while no node runs: the crash left it behind.
    let state = docker(&["inspect", "--format", "{{.State.Running}}", &container]);
    assert_eq!(state.as_deref().map(str::trim), Ok("true"), "{state:?}");

    // Orphans are removed before the restarted node announces its address.
    let server = serve(dir.path(), node);
    assert!(
        !containers(node).contains(&container),
        "the restarted serve did not remove {container}"
    );
    // The execution itself is retried once its lease expires; cancel it and check that its
    // new container goes too, so the test leaves nothing behind.
    let api = api.at(&server.url);
    let (status, row) = delete(&api, &format!("/api/v1/executions/{id}"));
    assert!(matches!(status, 200 | 202 | 409), "{status}: {row}");
    wait_for(
        Duration::from_secs(30),
        "no container of the test node",
        || {
            let (_, row) = api.get(&format!("/api/v1/executions/{id}"));
            let done = !matches!(row["status"].as_str(), Some("queued" | "running"));
            (done && containers(node).is_empty()).then_some(())
        },
    );
}

/// Removes the named container on drop (the test may panic half-way).
struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

/// The service image, assembled by `scripts/docker-service-image` around the binary under test
/// (no registry needed), starts with `docker run` read-only and non-root, passes `/ready`, and
/// stops cleanly on `docker stop`. The engine here has no bridge network, so the container
/// shares the host's network namespace for this one test.
#[test]
fn service_image_starts_read_only_and_passes_ready() {
    if !engine_up() {
        return;
    }
    let image = "voidrunner/service:e2e";
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/docker-service-image");
    let built = Command::new(&script)
        .arg(common::BIN)
        .env("IMAGE", image)
        .output()
        .expect("run scripts/docker-service-image");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let user = docker(&["image", "inspect", "--format", "{{.Config.User}}", image]);
    assert_eq!(user.as_deref().map(str::trim), Ok("10001:10001"));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let name = format!("voidrunner-service-e2e-{}", std::process::id());
    let listen = format!("127.0.0.1:{port}");
    let container = RemoveOnDrop(name.clone());
    let started = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/var/lib/voidrunner:uid=10001,gid=10001,mode=0700",
        image,
        "serve",
        "--workers",
        "0",
        "--listen",
        &listen,
    ]);
    assert!(started.is_ok(), "{started:?}");
    let http = reqwest::blocking::Client::new();
    let ready = wait_for(Duration::from_secs(60), "/ready", || {
        let res = http.get(format!("http://{listen}/ready")).send().ok()?;
        (res.status().as_u16() == 200).then(|| res.json::<Value>().expect("json"))
    });
    assert_eq!(ready["status"], "ready", "{ready}");
    // SIGTERM reaches the service through tini: a clean exit.
    docker(&["stop", "--time", "30", &name]).expect("docker stop");
    let code = docker(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(code.as_deref().map(str::trim), Ok("0"), "{code:?}");
    drop(container);
}
