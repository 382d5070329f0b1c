//! The in-job socket with the real Python module as the client: runtime secrets are masked
//! from then on (also split across writes), outputs and artifacts are recorded, and a client
//! holding another job's token is refused.

use std::process::Command;
use std::sync::Arc;

use serde_json::json;
use voidrunner_jobs::PYTHON_MODULE;
use voidrunner_jobs::control::{ControlServer, JobState, request};
use voidrunner_mask::{SecretRegistry, SecretSet};

struct Job {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    socket: std::path::PathBuf,
    token: String,
    registry: SecretRegistry,
    state: Arc<JobState>,
    _server: ControlServer,
}

fn job(token: &str) -> Job {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("job");
    std::fs::create_dir_all(root.join(".voidrunner")).expect("mkdir");
    std::fs::create_dir_all(root.join("src/build")).expect("mkdir");
    std::fs::write(root.join(".voidrunner/voidrunner_job.py"), PYTHON_MODULE).expect("module");
    let socket = root.join(".voidrunner/control.sock");
    let registry = SecretRegistry::new(SecretSet::new());
    let state = Arc::new(JobState::default());
    let server = ControlServer::start(
        &socket,
        token.into(),
        registry.clone(),
        state.clone(),
        &root,
    )
    .expect("start");
    Job {
        _dir: dir,
        root,
        socket,
        token: token.into(),
        registry,
        state,
        _server: server,
    }
}

fn mask(registry: &SecretRegistry, chunks: &[&[u8]]) -> String {
    let mut masker = registry.masker();
    let mut out = Vec::new();
    for c in chunks {
        masker.push(c, &mut out);
    }
    masker.finish(&mut out);
    String::from_utf8(out).expect("utf8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_registers_secrets_records_outputs_and_attaches_artifacts() {
    let j = job("token-of-job-a-0123456789");
    std::fs::write(j.root.join("src/build/app"), b"binary").expect("artifact");
    let code = r#"
import voidrunner_job as vr
assert vr.ping()
print(vr.register_secret("vault-token-XYZ", "vault-token-XYZ", ""))
vr.set_output("version", "1.2.3")
print(vr.get_output("version"), vr.get_output("missing"))
print(vr.attach_artifact("/job/src/build/app"))
try:
    vr.register_secret("abc")
except vr.JobError as e:
    print("refused:", e)
"#;
    let (ok, text) = tokio::task::spawn_blocking({
        let (token, root, socket) = (j.token.clone(), j.root.clone(), j.socket.clone());
        move || FakeJob { root, socket }.run(&token, code)
    })
    .await
    .expect("join");
    assert!(ok, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1", "one new value: {text}");
    assert_eq!(lines[1], "1.2.3 None");
    assert_eq!(lines[2], "src/build/app");
    assert!(lines[3].starts_with("refused: secret refused"), "{text}");
    assert!(!lines[3].contains("abc"), "the value is not echoed: {text}");
    assert_eq!(j.state.outputs()["version"], "1.2.3");
    assert_eq!(j.state.artifacts(), ["src/build/app"]);
    // Registered at runtime → masked from now on, also when split across writes.
    assert_eq!(
        mask(&j.registry, &[b"token=vault-to", b"ken-X", b"YZ; done"]),
        "token=***; done"
    );
}

/// A step: the real Python with the module importable (run off the async runtime).
struct FakeJob {
    root: std::path::PathBuf,
    socket: std::path::PathBuf,
}

impl FakeJob {
    fn run(&self, token: &str, code: &str) -> (bool, String) {
        let out = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(code)
            .env_clear()
            .env("PYTHONPATH", self.root.join(".voidrunner"))
            .env("VOIDRUNNER_JOB_SOCKET", &self.socket)
            .env("VOIDRUNNER_JOB_TOKEN", token)
            .output()
            .expect("python");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_jobs_token_and_paths_out_are_refused() {
    let a = job("token-of-job-a-0123456789");
    let b = job("token-of-job-b-9876543210");
    // A client of job A knocking on job B's socket with A's token.
    let answer = request(
        &b.socket,
        &a.token,
        json!({"op": "register_secret", "values": ["stolen-value"]}),
    )
    .await
    .expect("answer");
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .expect("error")
            .contains("unauthorized")
    );
    assert_eq!(
        mask(&b.registry, &[b"stolen-value"]),
        "stolen-value",
        "nothing registered"
    );

    std::os::unix::fs::symlink("/etc/passwd", a.root.join("src/passwd")).expect("link");
    for (path, why) in [
        ("../../etc/passwd", "escapes"),
        ("/etc/passwd", "relative"),
        ("src/passwd", "symlink"),
        ("src/missing", "does not exist"),
        ("src", "not a regular file"),
    ] {
        let answer = request(
            &a.socket,
            &a.token,
            json!({"op": "attach_artifact", "path": path}),
        )
        .await
        .expect("answer");
        assert_eq!(answer["ok"], false, "{path}: {answer}");
        assert!(
            answer["error"].as_str().expect("error").contains(why),
            "{path}: {answer}"
        );
    }
    assert!(a.state.artifacts().is_empty());
    let answer = request(
        &a.socket,
        &a.token,
        json!({"op": "set_output", "key": "bad key!", "value": "x"}),
    )
    .await
    .expect("answer");
    assert_eq!(answer["ok"], false);
    let answer = request(&a.socket, &a.token, json!({"op": "nonsense"}))
        .await
        .expect("answer");
    assert_eq!(answer["ok"], false);
    // The Python client reports a refusal as JobError.
    let root = a.root.clone();
    let socket = a.socket.clone();
    let (ok, text) = tokio::task::spawn_blocking(move || {
        FakeJob { root, socket }.run("wrong-token", "import voidrunner_job as vr\nvr.ping()")
    })
    .await
    .expect("join");
    assert!(
        !ok && text.contains("JobError") && text.contains("unauthorized"),
        "{text}"
    );
}
