//! Issue 10 acceptance, kill -9 of a node running the workflow scheduler: PostgreSQL, an
//! API-only node and three `worker` processes (each runs a job worker AND a scheduler), all
//! separate OS processes of the real binary. A chained workflow is submitted; the worker
//! running a node mid-workflow is SIGKILLed. The workflow still completes `succeeded`, and
//! every node ran as exactly ONE job (a job killed with its worker is retried under the same
//! job id by the lease reaper: its attempt count says so). Then a second workflow, and a
//! worker that runs a scheduler but no job is SIGKILLed mid-workflow: every node's job runs
//! exactly once (attempt 1).

#[expect(
    dead_code,
    reason = "helpers shared by several test binaries; this one uses some"
)]
mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use common::{Api, Node, cluster_env, spawn, wait_for};
use serde_json::{Value, json};

const WORKFLOW: &str = r#"
name: chain
jobs:
  a: {job: {name: a, steps: [{name: s, command: "sleep 1; echo a"}]}}
  b:
    needs: [a]
    for_each: [x, y]
    job: {name: b, steps: [{name: s, command: "sleep 1; echo b $ITEM"}]}
  c:
    needs: [b]
    job: {name: c, steps: [{name: s, command: "sleep 2; echo c"}]}
  d:
    needs: [c]
    job: {name: d, steps: [{name: s, command: "sleep 1; echo d"}]}
"#;

struct Pg(String);

impl Pg {
    fn rows(&self, sql: &str) -> Vec<BTreeMap<String, String>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            use sqlx::{Column, Connection, Row};
            let mut conn = sqlx::PgConnection::connect(&self.0).await.expect("connect");
            sqlx::query(sql)
                .fetch_all(&mut conn)
                .await
                .expect("query")
                .iter()
                .map(|r| {
                    r.columns()
                        .iter()
                        .map(|c| {
                            let v: Option<String> = r.get(c.ordinal());
                            (c.name().to_owned(), v.unwrap_or_default())
                        })
                        .collect()
                })
                .collect()
        })
    }
}

fn node_job(wf: &Value, name: &str) -> Option<String> {
    wf["nodes"].as_array()?.iter().find(|n| n["name"] == name)?["job_id"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn a_killed_scheduler_node_loses_nothing_and_starts_nothing_twice() {
    let Ok(base) = std::env::var("VOIDRUNNER_TEST_DATABASE_URL") else {
        eprintln!("skipped: VOIDRUNNER_TEST_DATABASE_URL is not set");
        return;
    };
    if !common::can_sandbox() {
        return;
    }
    let url = common::fresh_database(&base);
    let pg = Pg(url.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = cluster_env();
    env.push(("VOIDRUNNER_JOBS__LEASE_SECS", "3".to_owned()));
    env.push(("VOIDRUNNER_JOBS__CONCURRENCY", "1".to_owned()));
    // API only: no job worker, so no scheduler either (it runs one pass after each write).
    let mut api_node = spawn(
        dir.path(),
        &[
            "serve",
            "--workers",
            "0",
            "--listen",
            "127.0.0.1:0",
            "--store",
            url.as_str(),
        ],
        &env,
    );
    let worker_args = ["worker", "--workers", "1", "--store", url.as_str()];
    let mut workers: Vec<Node> = (0..3)
        .map(|_| spawn(dir.path(), &worker_args, &env))
        .collect();
    let api = Api::register(&api_node.url, "wf-cluster@example.com");
    let (status, body) = api
        .post("/api/v1/workflows", &json!({"definition": WORKFLOW}))
        .expect("create workflow");
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let get = || {
        let (status, wf) = api.get(&format!("/api/v1/workflows/{id}"));
        assert_eq!(status, 200, "{wf}");
        wf
    };

    // Mid-workflow: `c` runs on some worker. Freeze that worker (so it cannot finish the job
    // between the read and the kill), then SIGKILL it.
    let (c_job, owner) = wait_for(Duration::from_secs(120), "node c to run", || {
        let job = node_job(&get(), "c")?;
        let rows = pg.rows(&format!(
            "SELECT lease_owner FROM jobs WHERE id = '{job}' AND status = 'running'"
        ));
        let owner = rows.first()?.get("lease_owner")?.clone();
        Some((job, owner))
    });
    let victim = workers
        .iter()
        .position(|w| owner.contains(&format!("-{}-", w.pid())))
        .expect("c runs on one of the workers");
    workers[victim].freeze();
    workers[victim].kill9();
    let killed = Instant::now();

    let wf = wait_for(Duration::from_secs(120), "the workflow to finish", || {
        let wf = get();
        (wf["status"] != "running").then_some(wf)
    });
    eprintln!(
        "kill -9 → workflow finished: {} ms",
        killed.elapsed().as_millis()
    );
    assert_eq!(wf["status"], "succeeded", "{wf}");
    let nodes = wf["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 5, "{wf}");
    let mut node_jobs = HashSet::new();
    for n in nodes {
        assert_eq!(n["status"], "succeeded", "{n}");
        assert!(node_jobs.insert(n["job_id"].as_str().expect("job").to_owned()));
        assert_eq!(n["previous_job_ids"], json!([]), "{n}");
    }
    // One job per node, nothing else created; attempts recorded.
    let jobs = pg.rows("SELECT id::text AS id, attempt::text AS attempt, status FROM jobs");
    assert_eq!(jobs.len(), 5, "one job per node: {jobs:?}");
    for j in &jobs {
        assert!(node_jobs.contains(&j["id"]), "{j:?}");
        assert_eq!(j["status"], "succeeded", "{j:?}");
        let attempt: u32 = j["attempt"].parse().expect("attempt");
        if j["id"] == c_job {
            assert!(attempt >= 2, "c was retried after its worker died: {j:?}");
        } else {
            assert_eq!(attempt, 1, "ran once: {j:?}");
        }
    }
    // Hand-over across processes: a node's dependencies finished → its job created.
    let times: BTreeMap<String, (f64, f64)> = pg
        .rows(
            "SELECT id::text AS id, extract(epoch FROM created_at)::text AS created, \
             extract(epoch FROM finished_at)::text AS finished FROM jobs",
        )
        .into_iter()
        .map(|r| {
            let t = |k: &str| r[k].parse::<f64>().expect("epoch");
            (r["id"].clone(), (t("created"), t("finished")))
        })
        .collect();
    let by_name: BTreeMap<&str, &Value> = nodes
        .iter()
        .map(|n| (n["name"].as_str().expect("name"), n))
        .collect();
    let mut handovers = Vec::new();
    for n in nodes {
        let deps = n["depends_on"].as_array().expect("deps");
        let Some(ready) = deps
            .iter()
            .map(|d| {
                times[by_name[d.as_str().expect("dep")]["job_id"]
                    .as_str()
                    .expect("job")]
                .1
            })
            .reduce(f64::max)
        else {
            continue;
        };
        let created = times[n["job_id"].as_str().expect("job")].0;
        handovers.push(((created - ready) * 1000.0).round());
    }
    eprintln!("hand-over ms (dependencies finished → job created), per node: {handovers:?}");

    // Second workflow: kill -9 a node that runs a scheduler but no job at that moment (`c`
    // runs on another worker). Nothing has to run again: every node's job runs exactly once.
    let (status, body) = api
        .post("/api/v1/workflows", &json!({"definition": WORKFLOW}))
        .expect("create workflow");
    assert_eq!(status, 201, "{body}");
    let id2 = body["id"].as_str().expect("id").to_owned();
    let get2 = || api.get(&format!("/api/v1/workflows/{id2}")).1;
    let (_, owner) = wait_for(Duration::from_secs(120), "node c of run 2 to run", || {
        let job = node_job(&get2(), "c")?;
        let rows = pg.rows(&format!(
            "SELECT lease_owner FROM jobs WHERE id = '{job}' AND status = 'running'"
        ));
        let owner = rows.first()?.get("lease_owner")?.clone();
        Some((job, owner))
    });
    let idle = (0..workers.len())
        .find(|&i| i != victim && !owner.contains(&format!("-{}-", workers[i].pid())))
        .expect("a live worker that runs no job");
    workers[idle].freeze();
    workers[idle].kill9();
    let wf = wait_for(Duration::from_secs(120), "run 2 to finish", || {
        let wf = get2();
        (wf["status"] != "running").then_some(wf)
    });
    assert_eq!(wf["status"], "succeeded", "{wf}");
    let jobs = pg.rows(&format!(
        "SELECT id::text AS id, attempt::text AS attempt, status FROM jobs \
         WHERE workflow_id = '{id2}'"
    ));
    assert_eq!(jobs.len(), 5, "one job per node: {jobs:?}");
    for j in &jobs {
        assert_eq!(j["status"], "succeeded", "{j:?}");
        assert_eq!(j["attempt"], "1", "every node ran exactly once: {j:?}");
    }
    let node_jobs: HashSet<&str> = wf["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["job_id"].as_str().expect("job"))
        .collect();
    assert!(
        jobs.iter().all(|j| node_jobs.contains(j["id"].as_str())),
        "{jobs:?}"
    );

    api_node.stop();
    for (i, w) in workers.iter_mut().enumerate() {
        if i != victim && i != idle {
            w.stop();
        }
    }
}
