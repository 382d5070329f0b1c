//! Durability: statuses recorded with a delivery survive a restart of the API node. Node A
//! posts `pending` and is stopped (server and reconciler gone, context dropped); the
//! workflow finishes while no node runs; node B, started on the same database (SQLite:
//! reopened from its file), posts the final status.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use voidrunner_api::{ApiContext, ApiSettings, JwtSecret};
use voidrunner_store::conformance::{delivery_workflow, new_delivery, new_repository, new_user};
use voidrunner_store::{NewCommitStatus, Store, WorkflowState};

use super::{allow_loopback, fake_host, next, settled};
use crate::helpers::{Backend, backend_tests, test_secret_box, test_settings};

backend_tests!(the_final_status_survives_a_restart);

/// One API node (HTTP server and its commit-status reconciler) on `store`.
pub(crate) struct Node {
    stop: oneshot::Sender<()>,
    served: JoinHandle<std::io::Result<()>>,
}

impl Node {
    /// Starts a node with the test secrets key.
    pub(crate) async fn start(store: Arc<dyn Store>, settings: ApiSettings) -> Node {
        let ctx = ApiContext::new(store, settings, JwtSecret::new(crate::helpers::SECRET))
            .expect("valid settings")
            .with_secret_box(test_secret_box());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(voidrunner_api::serve(listener, ctx, async move {
            let _ = stopped.await;
        }));
        Node { stop, served }
    }

    /// Stops it and waits until its server and reconciler have ended.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        self.served.await.expect("join").expect("served");
    }
}

/// The database of a test: a fresh one, and how to open it again after a "restart".
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(Arc<dyn Store>),
}

impl Db {
    async fn fresh(b: &Backend) -> (Db, Arc<dyn Store>) {
        match b {
            Backend::Sqlite => {
                let (s, dir) = voidrunner_store_sqlite::testing::fresh_store().await;
                (Db::Sqlite(dir), Arc::new(s))
            }
            Backend::Postgres(url) => {
                let s: Arc<dyn Store> =
                    Arc::new(voidrunner_store_postgres::testing::fresh_store(url).await);
                (Db::Postgres(s.clone()), s)
            }
        }
    }

    /// The same database for a new node (SQLite: opened again from its file).
    async fn reopen(&self) -> Arc<dyn Store> {
        match self {
            Db::Sqlite(dir) => Arc::new(
                voidrunner_store_sqlite::SqliteStore::open(
                    &dir.path().join("voidrunner.db"),
                    voidrunner_store_sqlite::SqliteOptions::default(),
                )
                .await
                .expect("reopen sqlite"),
            ),
            Db::Postgres(s) => s.clone(),
        }
    }
}

async fn the_final_status_survives_a_restart(b: Backend) {
    let (db, store) = Db::fresh(&b).await;
    let (api_url, mut seen) = fake_host().await;
    // A repository with status reporting and a delivery that started one workflow, as the
    // hook records them (the token sealed like the API seals it).
    let owner = store
        .create_user(new_user("restart@example.com"))
        .await
        .expect("user");
    let mut new = new_repository(owner.id, "acme/app");
    let sealed = test_secret_box()
        .seal_with_context(b"token-r", format!("{}/status-token", new.id).as_bytes())
        .expect("seal");
    new.status_reporting = serde_json::json!({"api_url": api_url,
        "token_sealed": base64::engine::general_purpose::STANDARD.encode(sealed)});
    let repo = store
        .create_repository(new, vec![1], BTreeMap::new())
        .await
        .expect("repository");
    let wf = delivery_workflow(owner.id, "ci");
    let id = wf.workflow.id;
    let status = NewCommitStatus {
        workflow_id: id,
        repository_id: repo.id,
        sha: "a".repeat(40),
        context: "voidrunner/ci".into(),
    };
    store
        .record_delivery_with_statuses(new_delivery(repo.id, "r-1"), vec![wf], vec![status])
        .await
        .expect("record");
    let mut settings = test_settings();
    allow_loopback(&mut settings);

    let a = Node::start(store.clone(), settings.clone()).await;
    let (path, auth, body, _) = next(&mut seen).await;
    assert_eq!(
        path,
        format!("/api/repos/acme/app/statuses/{}", "a".repeat(40))
    );
    assert_eq!(auth, "Bearer token-r");
    assert_eq!(
        (body["state"].as_str(), body["context"].as_str()),
        (Some("pending"), Some("voidrunner/ci"))
    );
    settled(&*store, id, (WorkflowState::Running, 1), false).await;
    a.stop().await;
    drop(store);

    // The workflow finishes while no API node runs.
    let store = db.reopen().await;
    assert!(
        store
            .finish_workflow(
                id,
                WorkflowState::Succeeded,
                BTreeMap::new(),
                None,
                voidrunner_store::now()
            )
            .await
            .expect("finish")
    );
    assert!(seen.try_recv().is_err(), "a stopped node posted");

    let b_node = Node::start(store.clone(), settings).await;
    let (_, _, body, _) = next(&mut seen).await;
    assert_eq!(body["state"], "success", "{body}");
    settled(&*store, id, (WorkflowState::Succeeded, 1), false).await;
    b_node.stop().await;
    assert!(seen.try_recv().is_err(), "a transition was posted twice");
}
