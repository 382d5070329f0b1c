//! Crash safety with a separate OS process: a worker node is killed with SIGKILL while it
//! runs executions; another node re-runs exactly those, nothing is lost, nothing that
//! completed runs again.
//!
//! The killed node is this test binary re-executed with `VOIDRUNNER_WORKER_CHILD` set, running
//! only [`child_node`].

use std::process::{Child, Command, Stdio};

use voidrunner_domain::{ExecutionId, ExecutionStatus};
use voidrunner_worker::{WorkerConfig, WorkerPool};

use crate::helpers::{Job, TestStore, both_backends, config, eventually, native, open_address};

both_backends!(killed_node_executions_are_rerun_elsewhere_exactly_once);

/// Env var that turns [`child_node`] into a worker node over the store at its address.
const CHILD_ENV: &str = "VOIDRUNNER_WORKER_CHILD";

/// Short lease so the reaper re-queues a dead node's executions quickly.
fn crash_config() -> WorkerConfig {
    WorkerConfig {
        lease_secs: 2,
        heartbeat_interval_ms: 300,
        ..config(2)
    }
}

/// The child node: runs a pool until killed. A no-op in a normal test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_node() {
    let Ok(address) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = open_address(&address).await;
    let _pool = WorkerPool::start(store, native(), "child".into(), crash_config());
    std::future::pending::<()>().await;
}

/// Kills the child on drop, so a failing test leaves no node behind.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn killed_node_executions_are_rerun_elsewhere_exactly_once(t: TestStore) {
    let owner = t.user().await;
    let mut ids: Vec<(usize, ExecutionId)> = Vec::new();
    for n in 0..8 {
        let code = format!("sleep 1\necho {n}\n");
        ids.push((n, t.enqueue(Job::bash(owner, &code)).await.id));
    }
    let address = t.address(ids[0].1).await;
    let mut node = Node(
        Command::new(std::env::current_exe().expect("test binary"))
            .args(["crash::child_node", "--exact", "--nocapture"])
            .env(CHILD_ENV, &address)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child node"),
    );
    // Kill it once it finished some executions and runs others.
    eventually("the child node completed two and runs two", || async {
        let mut done = 0;
        let mut running = 0;
        for (_, id) in &ids {
            match t.get(*id).await.status {
                ExecutionStatus::Completed => done += 1,
                ExecutionStatus::Running => running += 1,
                _ => {}
            }
        }
        (done >= 2 && running == 2).then_some(())
    })
    .await;
    node.0.kill().expect("SIGKILL the child node");
    node.0.wait().expect("child reaped");
    let mut completed_by_child = Vec::new();
    let mut orphaned = Vec::new();
    for (_, id) in &ids {
        let e = t.get(*id).await;
        match e.status {
            ExecutionStatus::Completed => completed_by_child.push(e),
            ExecutionStatus::Running => orphaned.push(*id),
            _ => {}
        }
    }
    assert!(completed_by_child.len() >= 2 && !orphaned.is_empty());
    let survivor = t.pool(native(), "survivor", crash_config());
    for (n, id) in &ids {
        let e = t.wait_finished(*id).await;
        assert_eq!(e.status, ExecutionStatus::Completed, "{e:?}");
        assert_eq!(e.stdout, format!("{n}\n"));
        if orphaned.contains(id) {
            assert_eq!(e.attempt, 2, "re-run once after the crash: {e:?}");
            assert_eq!(e.worker_id.as_deref().map(|w| &w[..9]), Some("survivor/"));
        }
    }
    for before in &completed_by_child {
        let after = t.get(before.id).await;
        assert_eq!(&after, before, "a completed execution never runs again");
    }
    let stats = survivor.stats();
    println!(
        "{}: child completed {}, {} orphaned by the kill, survivor ran {} and reaped {}",
        t.backend,
        completed_by_child.len(),
        orphaned.len(),
        stats.completed,
        stats.reaped
    );
    assert_eq!(
        usize::try_from(stats.completed).expect("small"),
        ids.len() - completed_by_child.len()
    );
    survivor.shutdown().await;
}
