//! Interactive executions: stdin appended through the store (by any node) reaches the
//! running program in order; EOF closes it; the snapshot stdin comes first.

use std::sync::Arc;

use voidrunner_domain::{ExecutionStatus, Verdict};
use voidrunner_store::Scope;
use voidrunner_worker::{WorkerConfig, WorkerPool};

use crate::helpers::{Job, TestStore, both_backends, config, native, postgres_two_nodes, running};

both_backends!(interactive_program_answers_input_appended_while_it_runs);

const GREETER: &str = "print('name?', flush=True)\nname = input()\nprint('hello', name, flush=True)\nimport sys\nprint('rest', repr(sys.stdin.read()))\n";

async fn interactive_program_answers_input_appended_while_it_runs(t: TestStore) {
    let owner = t.user().await;
    let pool = t.pool(native(), "interactive", config(1));
    let e = t
        .enqueue(Job {
            language: "python",
            code: GREETER,
            stdin: Some("dear "),
            interactive: true,
            ..Job::bash(owner, "")
        })
        .await;
    t.wait_for(e.id, "running", running).await;
    let me = Scope::Owner(owner);
    for (data, eof) in [(&b"wor"[..], false), (b"ld\nmore", false), (b"", true)] {
        t.store
            .append_input(me, e.id, data, eof, voidrunner_store::now())
            .await
            .expect("append input");
    }
    let done = t.wait_finished(e.id).await;
    assert_eq!(done.verdict, Some(Verdict::Exited { code: 0 }), "{done:?}");
    assert_eq!(done.stdout, "name?\nhello dear world\nrest 'more'\n");
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_input_from_another_node_reaches_the_worker() {
    let Some((api, node)) = postgres_two_nodes().await else {
        return;
    };
    let cfg = WorkerConfig {
        poll_interval_ms: 60_000,
        ..config(1)
    };
    let pool = WorkerPool::start(Arc::clone(&node), native(), "remote".into(), cfg);
    let owner = api.user().await;
    let e = api
        .enqueue(Job {
            language: "python",
            code: GREETER,
            interactive: true,
            ..Job::bash(owner, "")
        })
        .await;
    api.wait_for(e.id, "running remotely", running).await;
    api.store
        .append_input(Scope::All, e.id, b"node\n", true, voidrunner_store::now())
        .await
        .expect("append input");
    let done = api.wait_finished(e.id).await;
    assert_eq!(done.status, ExecutionStatus::Completed, "{done:?}");
    assert_eq!(done.stdout, "name?\nhello node\nrest ''\n");
    pool.shutdown().await;
}
