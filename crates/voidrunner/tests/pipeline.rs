//! End to end through real processes: HTTP → queue → worker → sandbox → result, for every
//! built-in language, on SQLite (embedded pool) and on PostgreSQL (API node + separate worker
//! process).

#[expect(dead_code, reason = "the crash tests use the rest of the helpers")]
mod common;

use std::path::Path;

use common::{Api, Node, cluster_env, spawn};
use serde_json::json;

/// (language, program reading one line of stdin, expected stdout for stdin "world").
const PROGRAMS: &[(&str, &str, &str)] = &[
    (
        "python",
        "import sys\nprint('hello ' + sys.stdin.readline().strip())\nsys.exit(3)",
        "hello world\n",
    ),
    (
        "javascript",
        "const l = require('fs').readFileSync(0, 'utf8').trim();\nconsole.log('hello ' + l);\nprocess.exit(3);",
        "hello world\n",
    ),
    ("bash", "read l; echo \"hello $l\"; exit 3", "hello world\n"),
    (
        "c",
        "#include <stdio.h>\nint main(void){char b[64]; if(!fgets(b,64,stdin)) return 1; printf(\"hello %s\", b); return 3;}",
        "hello world\n",
    ),
    (
        "cpp",
        "#include <iostream>\n#include <string>\nint main(){std::string l; std::getline(std::cin,l); std::cout<<\"hello \"<<l<<\"\\n\"; return 3;}",
        "hello world\n",
    ),
];

fn run_every_language(api: &Api) {
    for (language, code, expected) in PROGRAMS {
        let (status, row) = api
            .post(
                "/api/v1/run?wait=true&timeout_secs=60",
                &json!({"language": language, "code": code, "stdin": "world\n"}),
            )
            .expect("POST /run");
        assert_eq!(status, 200, "{language}: {row}");
        assert_eq!(
            row["status"], "failed",
            "{language}: exit 3 is a failed result: {row}"
        );
        assert_eq!(
            row["verdict"],
            json!({"kind": "exited", "code": 3}),
            "{language}: {row}"
        );
        assert_eq!(row["exit_code"], 3, "{language}: {row}");
        assert_eq!(row["stdout"], *expected, "{language}: {row}");
        assert_eq!(
            row["attempt"], 1,
            "{language}: a program failure is never retried: {row}"
        );
    }
    // A compile error is a result with the compiler's message.
    let (status, row) = api
        .post(
            "/api/v1/run?wait=true&timeout_secs=60",
            &json!({"language": "c", "code": "int main(void) { return missing; }"}),
        )
        .expect("POST /run");
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["verdict"]["kind"], "compile_error", "{row}");
    assert!(
        row["compile_output"]
            .as_str()
            .is_some_and(|o| o.contains("missing")),
        "{row}"
    );
}

fn sqlite_node(dir: &Path) -> Node {
    spawn(
        dir,
        &["serve", "--listen", "127.0.0.1:0", "--workers", "2"],
        &cluster_env(),
    )
}

#[test]
fn every_language_end_to_end_on_sqlite() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = sqlite_node(dir.path());
    let api = Api::register(&node.url, "langs-sqlite@example.com");
    run_every_language(&api);
    node.stop();
}

#[test]
fn every_language_end_to_end_on_postgres_with_a_separate_worker() {
    let Ok(base) = std::env::var("VOIDRUNNER_TEST_DATABASE_URL") else {
        eprintln!("skipped: VOIDRUNNER_TEST_DATABASE_URL is not set");
        return;
    };
    if !common::can_sandbox() {
        return;
    }
    let url = common::fresh_database(&base);
    let dir = tempfile::tempdir().expect("tempdir");
    let env = cluster_env();
    let mut api_node = spawn(
        dir.path(),
        &[
            "serve",
            "--workers",
            "0",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &url,
        ],
        &env,
    );
    let mut worker = spawn(
        dir.path(),
        &["worker", "--workers", "2", "--store", &url],
        &env,
    );
    let api = Api::register(&api_node.url, "langs-pg@example.com");
    run_every_language(&api);
    api_node.stop();
    worker.stop();
}
