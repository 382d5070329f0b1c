//! Crash safety with separate OS processes (issue 4 acceptance):
//! - PostgreSQL: 3 `voidrunner worker` processes + an API node; 1,000 executions; one worker is
//!   SIGKILLed while it runs executions and the API node is restarted mid-way. Every execution
//!   finishes exactly once, and those that ran on the killed worker are retried elsewhere.
//! - SQLite: `serve` with its embedded pool is SIGKILLed and restarted; nothing queued is lost.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{Api, Node, cluster_env, spawn, wait_for};
use serde_json::{Value, json};

/// Enqueues `n` executions of `task` through `api`, 8 requests at a time; returns the ids the
/// API acknowledged with 202.
fn enqueue(api: &Api, task: &str, n: usize) -> Vec<String> {
    let path = format!("/api/v1/tasks/{task}/executions");
    std::thread::scope(|s| {
        let per = n.div_ceil(8);
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let api = api.clone();
                let path = path.clone();
                s.spawn(move || {
                    let count = per.min(n.saturating_sub(t * per));
                    (0..count)
                        .map(|_| {
                            let (status, body) = api.post(&path, &json!({})).expect("enqueue");
                            assert_eq!(status, 202, "{body}");
                            body["id"].as_str().expect("id").to_owned()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("enqueue thread"))
            .collect()
    })
}

fn create_task(api: &Api) -> String {
    let (status, body) = api
        .post(
            "/api/v1/tasks",
            &json!({"name": "crash", "language": "bash", "code": "sleep 0.02; echo ok"}),
        )
        .expect("create task");
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("task id").to_owned()
}

/// Waits until every id is terminal; returns the final rows.
fn wait_all_terminal(api: &Api, ids: &[String], timeout: Duration) -> HashMap<String, Value> {
    let mut done: HashMap<String, Value> = HashMap::new();
    wait_for(timeout, "all executions to finish", || {
        let pending: Vec<&String> = ids.iter().filter(|id| !done.contains_key(*id)).collect();
        for id in pending {
            let (status, row) = api.get(&format!("/api/v1/executions/{id}"));
            assert_eq!(status, 200, "{row}");
            if !matches!(row["status"].as_str(), Some("queued" | "running")) {
                done.insert(id.clone(), row);
            }
        }
        (done.len() == ids.len()).then_some(())
    });
    done
}

fn assert_completed_ok(rows: &HashMap<String, Value>) {
    for (id, row) in rows {
        assert_eq!(row["status"], "completed", "execution {id}: {row}");
        assert_eq!(row["exit_code"], 0, "execution {id}: {row}");
        assert_eq!(row["stdout"], "ok\n", "execution {id}: {row}");
    }
}

/// Ids of executions currently leased by a worker process (its node id contains `-<pid>-`).
fn running_on(url: &str, pid: u32) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::query("SELECT id::text AS id FROM executions WHERE status = 'running' AND lease_owner LIKE $1")
            .bind(format!("%-{pid}-%"))
            .fetch_all(&mut conn)
            .await
            .expect("query running")
            .iter()
            .map(|r| r.get::<String, _>("id"))
            .collect()
    })
}

#[test]
fn postgres_workers_killed_and_api_restarted_lose_and_duplicate_nothing() {
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
    let serve_args = [
        "serve",
        "--workers",
        "0",
        "--listen",
        "127.0.0.1:0",
        "--store",
        url.as_str(),
    ];
    let mut api_node = spawn(dir.path(), &serve_args, &env);
    let worker_args = ["worker", "--workers", "2", "--store", url.as_str()];
    let mut workers: Vec<Node> = (0..3)
        .map(|_| spawn(dir.path(), &worker_args, &env))
        .collect();

    let api = Api::register(&api_node.url, "crash-pg@example.com");
    let task = create_task(&api);
    let mut ids = enqueue(&api, &task, 500);

    // Crash one worker while it holds leases: freeze it first so the set of executions it
    // holds cannot change between reading it and the kill.
    let victim_pid = workers[0].pid();
    wait_for(
        Duration::from_secs(60),
        "the victim to run something",
        || (!running_on(&url, victim_pid).is_empty()).then_some(()),
    );
    workers[0].freeze();
    let orphaned = running_on(&url, victim_pid);
    assert!(!orphaned.is_empty(), "the victim held leases when frozen");
    workers[0].kill9();

    // Restart the API node mid-way; the same user's token keeps working (shared key).
    api_node.stop();
    api_node = spawn(dir.path(), &serve_args, &env);
    let api = api.at(&api_node.url);
    ids.extend(enqueue(&api, &task, 500));
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        1000,
        "1,000 distinct executions"
    );

    let rows = wait_all_terminal(&api, &ids, Duration::from_secs(300));
    assert_completed_ok(&rows);
    let orphaned: HashSet<&String> = orphaned.iter().collect();
    for (id, row) in &rows {
        let attempt = row["attempt"].as_u64().expect("attempt");
        let worker = row["worker_id"].as_str().unwrap_or_default();
        if orphaned.contains(id) {
            assert!(attempt >= 2, "orphaned {id} was retried: {row}");
            assert!(
                !worker.contains(&format!("-{victim_pid}-")),
                "retried elsewhere: {row}"
            );
        } else if !worker.contains(&format!("-{victim_pid}-")) {
            // Never touched by the victim: ran exactly once.
            assert_eq!(attempt, 1, "execution {id} ran more than once: {row}");
        }
    }
    let total: usize = rows.len();
    assert_eq!(total, 1000);
    api_node.stop();
    for w in workers.iter_mut().skip(1) {
        w.stop();
    }
}

#[test]
fn sqlite_embedded_pool_killed_and_restarted_loses_nothing() {
    if !common::can_sandbox() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let env = cluster_env();
    let args = ["serve", "--workers", "2", "--listen", "127.0.0.1:0"];
    let mut node = spawn(dir.path(), &args, &env);
    let api = Api::register(&node.url, "crash-sqlite@example.com");
    let task = create_task(&api);
    let ids = enqueue(&api, &task, 200);
    // Crash while executions are running and most are still queued.
    wait_for(Duration::from_secs(60), "some executions to finish", || {
        let (_, row) = api.get(&format!("/api/v1/executions/{}", ids[0]));
        (row["status"] != "queued").then_some(())
    });
    node.kill9();
    let mut node = spawn(dir.path(), &args, &env);
    let api = api.at(&node.url);
    let rows = wait_all_terminal(&api, &ids, Duration::from_secs(120));
    assert_completed_ok(&rows);
    node.stop();
}
