//! Helpers for tests that drive the real `voidrunner` binary as separate OS processes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_voidrunner");

/// A fixed JWT key so restarted API nodes accept tokens issued before the restart.
pub const JWT: &str = "test-key-0123456789-0123456789-0123456789";

/// A `voidrunner` child process, SIGKILLed on drop.
#[derive(Debug)]
pub struct Node {
    /// The process.
    pub child: Child,
    /// `http://addr` for `serve`, empty for `worker`.
    pub url: String,
    /// Its WARN and ERROR log lines (the first 200): printed when a failing test drops it.
    warnings: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// A node for a process whose log the caller reads itself (no warnings kept).
    pub fn new(child: Child, url: String) -> Node {
        Node {
            child,
            url,
            warnings: Arc::default(),
        }
    }

    /// OS pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGSTOP: the process stays alive but does nothing (no heartbeats, no results).
    pub fn freeze(&self) {
        let pid = self.pid().to_string();
        let status = Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .expect("kill -STOP");
        assert!(status.success());
    }

    /// SIGKILL, no cleanup: a crash.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "node exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("node {pid} did not stop after SIGTERM");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test: say what the node warned about (an unexpected retry, a refused
        // request, …), since its log is otherwise not kept.
        if std::thread::panicking() {
            let lines = self
                .warnings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !lines.is_empty() {
                eprintln!("node {} warned:\n{}", self.child.id(), lines.join("\n"));
            }
        }
    }
}

/// Environment shared by every node of a test cluster: fixed key, no rate limits, short
/// leases so a crashed worker's executions come back quickly.
pub fn cluster_env() -> Vec<(&'static str, String)> {
    vec![
        ("VOIDRUNNER_JWT_SECRET", JWT.to_owned()),
        ("VOIDRUNNER_LOG_FORMAT", "json".to_owned()),
        ("VOIDRUNNER_LOG", "info".to_owned()),
        (
            "VOIDRUNNER_API__RATE_LIMIT_PER_IP__ENABLED",
            "false".to_owned(),
        ),
        (
            "VOIDRUNNER_API__RATE_LIMIT_PER_IP__REQUESTS_PER_SEC",
            "1.0".to_owned(),
        ),
        ("VOIDRUNNER_API__RATE_LIMIT_PER_IP__BURST", "1".to_owned()),
        (
            "VOIDRUNNER_API__RATE_LIMIT_PER_USER__ENABLED",
            "false".to_owned(),
        ),
        (
            "VOIDRUNNER_API__RATE_LIMIT_PER_USER__REQUESTS_PER_SEC",
            "1.0".to_owned(),
        ),
        ("VOIDRUNNER_API__RATE_LIMIT_PER_USER__BURST", "1".to_owned()),
        ("VOIDRUNNER_WORKER__LEASE_SECS", "3".to_owned()),
        (
            "VOIDRUNNER_WORKER__HEARTBEAT_INTERVAL_MS",
            "1000".to_owned(),
        ),
        ("VOIDRUNNER_WORKER__REAPER_INTERVAL_MS", "300".to_owned()),
        ("VOIDRUNNER_WORKER__PER_USER_CONCURRENCY", "1000".to_owned()),
        ("VOIDRUNNER_WORKER__RETRY__BASE_MS", "50".to_owned()),
        ("VOIDRUNNER_WORKER__DRAIN_GRACE_SECS", "5".to_owned()),
    ]
}

/// Starts `voidrunner <args>` in `dir`. For `serve`, waits for the listening line and returns
/// its URL; for `worker`, waits for the pool start line.
pub fn spawn(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Node {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args(args)
        .env_remove("VOIDRUNNER_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn voidrunner");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let serve = args.first() == Some(&"serve");
    let url = loop {
        let Some(line) = lines.next() else {
            panic!("voidrunner {args:?} exited before it was ready");
        };
        let line = line.expect("read log");
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if serve {
            if let Some(addr) = value.get("http.addr").and_then(Value::as_str) {
                break format!("http://{addr}");
            }
        } else if value.get("worker.node_id").is_some() {
            break String::new();
        }
    };
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let kept = warnings.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if line.contains(r#""level":"WARN""#) || line.contains(r#""level":"ERROR""#) {
                let mut kept = kept
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if kept.len() < 200 {
                    kept.push(line);
                }
            }
        }
    });
    let mut node = Node::new(child, url);
    node.warnings = warnings;
    node
}

/// A blocking JSON HTTP client bound to one user.
#[derive(Debug, Clone)]
pub struct Api {
    /// Base URL of an API node.
    pub base: String,
    /// Bearer token.
    pub token: String,
    http: reqwest::blocking::Client,
}

impl Api {
    /// Registers a new user at `base` and keeps its access token.
    pub fn register(base: &str, email: &str) -> Api {
        let http = reqwest::blocking::Client::new();
        let res: Value = http
            .post(format!("{base}/api/v1/auth/register"))
            .json(&json!({"email": email, "password": "correct horse battery"}))
            .send()
            .expect("register")
            .json()
            .expect("register json");
        let token = res["access_token"]
            .as_str()
            .expect("access token")
            .to_owned();
        Api {
            base: base.to_owned(),
            token,
            http,
        }
    }

    /// Same user against another API node.
    pub fn at(&self, base: &str) -> Api {
        Api {
            base: base.to_owned(),
            ..self.clone()
        }
    }

    /// POST with a JSON body; returns (status, body).
    pub fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), reqwest::Error> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()?;
        let status = res.status().as_u16();
        Ok((status, res.json()?))
    }

    /// GET; returns (status, body).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .expect("GET");
        let status = res.status().as_u16();
        (status, res.json().expect("json"))
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout` with `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True when this process may build sandboxes (root with cgroups).
pub fn can_sandbox() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(str::to_owned))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"));
    if !root {
        eprintln!("skipped: the sandbox needs root");
    }
    root
}

/// Creates an empty database next to the one `base` points at and returns its URL, so a test
/// cluster starts from a blank schema.
pub fn fresh_database(base: &str) -> String {
    let name = format!("vr_test_{}", uuid::Uuid::new_v4().simple());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(base)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create db");
    });
    let (prefix, _) = base.rsplit_once('/').expect("database URL has a path");
    format!("{prefix}/{name}")
}
