//! End-to-end tests of the `voidrunner` binary itself: zero-configuration start, migrations,
//! configuration layering and graceful shutdown, on a real port with a real database.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[expect(dead_code, reason = "the crash tests use the rest of the helpers")]
mod common;

use common::BIN;

/// Starts `serve` on an OS-chosen port in `dir`; returns the node (killed on drop).
fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> common::Node {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--workers", "0"];
    all.extend_from_slice(args);
    let mut env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    env.push(("VOIDRUNNER_LOG_FORMAT", "json".to_owned()));
    common::spawn(dir, &all, &env)
}

fn get_json(url: &str) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let res = reqwest::get(url).await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.expect("json body"))
    })
}

#[test]
fn serve_needs_no_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[], &[]);
    let (status, body) = get_json(&format!("{}/ready", server.url));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["store"], "sqlite");
    let data = dir.path().join("data");
    assert!(
        data.join("voidrunner.db").exists(),
        "SQLite database under ./data"
    );
    let mode = std::fs::metadata(data.join("jwt-secret"))
        .expect("jwt secret")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "generated key is owner-only");
    let (status, body) = get_json(&format!("{}/api/v1/languages", server.url));
    assert_eq!(status, 200, "{body}");
    let text = body.to_string();
    for lang in ["python", "javascript", "bash", "c", "cpp"] {
        assert!(
            text.contains(&format!("\"{lang}\"")),
            "{lang} served from the registry: {text}"
        );
    }
    assert!(
        text.contains("\"py\""),
        "aliases come from the registry: {text}"
    );
    assert!(
        text.contains("3.11"),
        "versions come from the host runtimes: {text}"
    );
    let (status, body) = get_json(&format!("{}/api/v1/openapi.json", server.url));
    assert_eq!(status, 200);
    assert!(
        body["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        body["openapi"]
    );
}

#[test]
fn sigterm_stops_gracefully() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path(), &[], &[]);
    let pid = i32::try_from(server.child.id()).expect("pid");
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = server.child.try_wait().expect("wait") {
            assert!(exit.success(), "clean exit after SIGTERM, got {exit}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn migrate_then_serve_with_explicit_sqlite_url_and_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("elsewhere/vr.db");
    let url = format!("sqlite://{}", db.display());
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["migrate", "--store", &url])
        .output()
        .expect("migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists());
    // A config file that sets a data dir and turns auto-migration off: serve must use the
    // already-migrated database given by the env var.
    let cfg = dir.path().join("vr.toml");
    std::fs::write(
        &cfg,
        "[server]\ndata_dir = \"state\"\n[store]\nauto_migrate = false\n",
    )
    .expect("write config");
    let server = start(
        dir.path(),
        &["--config", cfg.to_str().expect("utf8")],
        &[("VOIDRUNNER_DATABASE_URL", &url)],
    );
    let (status, _) = get_json(&format!("{}/ready", server.url));
    assert_eq!(status, 200);
    assert!(
        dir.path().join("state/jwt-secret").exists(),
        "data_dir from the file is used"
    );
}

#[test]
fn bad_configuration_fails_with_the_key_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["serve"])
        .env("VOIDRUNNER_API__MAX_CODE_BYTEZ", "5")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_code_bytez"), "{err}");
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["serve", "--store", "mysql://x"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("store.url"));
}

#[test]
fn config_example_is_printed() {
    let out = Command::new(BIN)
        .args(["config", "example"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[server]") && text.contains("[api.limits.maxima]"));
}

#[test]
fn postgres_store_when_available() {
    let Ok(base) = std::env::var("VOIDRUNNER_TEST_DATABASE_URL") else {
        eprintln!("skipped: VOIDRUNNER_TEST_DATABASE_URL is not set");
        return;
    };
    let base = common::fresh_database(&base);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["migrate", "--store", &base])
        .output()
        .expect("migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = start(dir.path(), &["--store", &base], &[]);
    let (status, body) = get_json(&format!("{}/ready", server.url));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["store"], "postgres");
}
