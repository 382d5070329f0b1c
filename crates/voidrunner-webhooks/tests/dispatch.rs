//! The dispatcher against a real store (SQLite always, PostgreSQL when
//! `VOIDRUNNER_TEST_DATABASE_URL` is set) and a real HTTP receiver on 127.0.0.1 that checks
//! every signature: delivered, retried then delivered, refused targets, 4xx, redirects,
//! attempts used up, and the background task woken by a finished execution.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokio::sync::mpsc;
use voidrunner_domain::{ExecutionId, UserId, Verdict};
use voidrunner_store::conformance::{lease_of, new_execution, new_user, result};
use voidrunner_store::{DeliveryState, Scope, Store, WebhookDelivery};
use voidrunner_webhooks::{Dispatcher, WebhookConfig, WebhookKey, verify};

/// What the receiver saw of one request.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    signature_ok: bool,
    event: String,
    delivery: String,
    body: serde_json::Value,
}

/// Answers to give, in order: status and optional `Location`.
type Script = Arc<Mutex<VecDeque<(u16, Option<&'static str>)>>>;

#[derive(Clone)]
struct Receiver {
    secret: Arc<Mutex<String>>,
    script: Script,
    seen: mpsc::UnboundedSender<Received>,
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn receive(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap) {
    let ts: i64 = header(&headers, "x-voidrunner-timestamp")
        .parse()
        .unwrap_or_default();
    let secret = r.secret.lock().expect("lock").clone();
    let got = Received {
        path: uri.path().to_owned(),
        signature_ok: verify(
            &secret,
            ts,
            &body,
            &header(&headers, "x-voidrunner-signature"),
        ),
        event: header(&headers, "x-voidrunner-event"),
        delivery: header(&headers, "x-voidrunner-delivery"),
        body: serde_json::from_slice(&body).unwrap_or_default(),
    };
    let _ = r.seen.send(got);
    let (status, location) = r
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or((200, None));
    if status == 0 {
        // "Hang": answer long after any test timeout.
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let mut out = HeaderMap::new();
    if let Some(l) = location {
        out.insert("location", l.parse().expect("header"));
    }
    (StatusCode::from_u16(status).expect("status"), out)
}

/// A receiver on 127.0.0.1:0 answering with `script` (then 200). Returns its base URL, the
/// secret slot, and the stream of requests.
async fn receiver(
    script: Vec<(u16, Option<&'static str>)>,
) -> (
    String,
    Arc<Mutex<String>>,
    mpsc::UnboundedReceiver<Received>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let r = Receiver {
        secret: Arc::new(Mutex::new(String::new())),
        script: Arc::new(Mutex::new(script.into())),
        seen: tx,
    };
    let secret = r.secret.clone();
    let app = axum::Router::new()
        .fallback(axum::routing::post(receive))
        .with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), secret, rx)
}

struct Env {
    store: Arc<dyn Store>,
    key: WebhookKey,
    metrics: voidrunner_metrics::Metrics,
    _dir: Option<tempfile::TempDir>,
}

impl Env {
    fn dispatcher(&self, configure: impl FnOnce(&mut WebhookConfig)) -> Dispatcher {
        let mut c = WebhookConfig {
            allow_private: true,
            initial_backoff_ms: 20,
            max_backoff_secs: 1,
            poll_interval_ms: 50,
            timeout_secs: 5,
            ..WebhookConfig::default()
        };
        configure(&mut c);
        Dispatcher::new(
            self.store.clone(),
            self.key.clone(),
            c,
            Some(self.metrics.clone()),
        )
    }

    /// An execution of `owner` with `url` as callback, run to completion as a worker would.
    async fn finished(&self, owner: UserId, url: &str) -> ExecutionId {
        let mut n = new_execution(owner, None, 5, voidrunner_store::now());
        n.callback_url = Some(url.to_owned());
        let e = self.store.enqueue_execution(n).await.expect("enqueue");
        let running = self
            .store
            .claim_next(&voidrunner_store::conformance::claim_at(
                "w",
                voidrunner_store::now(),
            ))
            .await
            .expect("claim")
            .expect("claimable");
        assert_eq!(running.id, e.id);
        self.store
            .complete_execution(
                &lease_of(&running),
                result(Verdict::Exited { code: 0 }, voidrunner_store::now()),
            )
            .await
            .expect("complete");
        e.id
    }

    async fn user(&self, email: &str) -> voidrunner_domain::User {
        self.store.create_user(new_user(email)).await.expect("user")
    }

    async fn delivery(&self, id: ExecutionId) -> WebhookDelivery {
        self.store
            .get_webhook_delivery(Scope::All, id)
            .await
            .expect("delivery")
    }

    fn metric(&self, outcome: &str) -> f64 {
        let text = self.metrics.render(None);
        let needle = format!("voidrunner_webhook_deliveries_total{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(needle.as_str()))
            .map_or(0.0, |v| v.parse().expect("number"))
    }
}

async fn env(postgres: bool) -> Option<Env> {
    let (store, dir): (Arc<dyn Store>, _) = if postgres {
        let url = std::env::var("VOIDRUNNER_TEST_DATABASE_URL").ok()?;
        (
            Arc::new(voidrunner_store_postgres::testing::fresh_store(&url).await),
            None,
        )
    } else {
        let (s, d) = voidrunner_store_sqlite::testing::fresh_store().await;
        (Arc::new(s), Some(d))
    };
    Some(Env {
        store,
        key: WebhookKey::random(),
        metrics: voidrunner_metrics::Metrics::new(),
        _dir: dir,
    })
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(e) = super::env(false).await { super::$name(e).await }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(e) = super::env(true).await { super::$name(e).await }
            }
        }
    )*};
}

both!(
    signed_delivery_is_delivered,
    two_failures_then_delivered_after_backoff,
    private_target_refused_without_allow_private,
    client_errors_and_redirects_fail_for_good,
    attempts_are_capped,
    timeouts_are_retried,
    background_task_delivers_after_finish,
);

async fn signed_delivery_is_delivered(env: Env) {
    let owner = env.user("hooked@example.com").await;
    let (base, secret, mut seen) = receiver(vec![(204, None)]).await;
    *secret.lock().expect("lock") = env.key.user_secret(owner.id);
    let id = env.finished(owner.id, &format!("{base}/hook?x=1")).await;
    let d = env.dispatcher(|_| {});
    let (n, retry) = d.run_once().await.expect("run");
    assert_eq!((n, retry), (1, None));
    let got = seen.try_recv().expect("one request");
    assert!(got.signature_ok, "{got:?}");
    assert_eq!(got.path, "/hook");
    assert_eq!(got.event, "execution.finished");
    assert_eq!(got.delivery, id.as_uuid().to_string());
    assert_eq!(got.body["id"], id.as_uuid().to_string());
    assert_eq!(got.body["status"], "completed");
    assert_eq!(got.body["stdout"], "out ✓\n");
    assert!(
        got.body.get("last_error").is_none(),
        "owner's view, not admin's"
    );
    let dl = env.delivery(id).await;
    assert_eq!(dl.state, DeliveryState::Delivered);
    assert_eq!((dl.attempts, dl.last_status), (1, Some(204)));
    assert!(dl.delivered_at.is_some());
    assert_eq!(env.metric("delivered"), 1.0);
    // Nothing left to send.
    assert_eq!(d.run_once().await.expect("run").0, 0);
    assert!(seen.try_recv().is_err());
}

async fn two_failures_then_delivered_after_backoff(env: Env) {
    let owner = env.user("flaky@example.com").await;
    let (base, secret, mut seen) = receiver(vec![(503, None), (500, None), (200, None)]).await;
    *secret.lock().expect("lock") = env.key.user_secret(owner.id);
    let id = env.finished(owner.id, &format!("{base}/flaky")).await;
    let d = env.dispatcher(|_| {});
    let mut attempts = 0;
    loop {
        let (n, retry) = d.run_once().await.expect("run");
        attempts += n;
        match retry {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None if n == 0 => panic!("nothing due and no retry scheduled"),
            None => break,
        }
        assert!(attempts < 10, "runaway retries");
    }
    let mut count = 0;
    while let Ok(r) = seen.try_recv() {
        assert!(r.signature_ok);
        count += 1;
    }
    assert_eq!(count, 3);
    let dl = env.delivery(id).await;
    assert_eq!(dl.state, DeliveryState::Delivered);
    assert_eq!((dl.attempts, dl.last_status), (3, Some(200)));
    assert_eq!(env.metric("retried"), 2.0);
    assert_eq!(env.metric("delivered"), 1.0);
}

async fn private_target_refused_without_allow_private(env: Env) {
    let owner = env.user("ssrf@example.com").await;
    let (base, _secret, mut seen) = receiver(vec![]).await;
    let id = env.finished(owner.id, &format!("{base}/internal")).await;
    let d = env.dispatcher(|c| c.allow_private = false);
    assert_eq!(d.run_once().await.expect("run"), (1, None));
    assert!(
        seen.try_recv().is_err(),
        "nothing may reach a loopback target"
    );
    let dl = env.delivery(id).await;
    assert_eq!(dl.state, DeliveryState::Failed);
    assert_eq!(dl.last_status, None);
    let err = dl.last_error.expect("reason");
    assert!(
        err.contains("refused target 127.0.0.1") && err.contains("loopback"),
        "{err}"
    );
    assert_eq!(env.metric("refused"), 1.0);
    // A name resolving to loopback is refused the same way.
    let port = base.rsplit(':').next().expect("port");
    let named = env
        .finished(owner.id, &format!("http://localhost:{port}/x"))
        .await;
    d.run_once().await.expect("run");
    assert!(seen.try_recv().is_err());
    assert_eq!(env.delivery(named).await.state, DeliveryState::Failed);
}

async fn client_errors_and_redirects_fail_for_good(env: Env) {
    let owner = env.user("gone@example.com").await;
    let (base, secret, mut seen) = receiver(vec![(404, None), (302, Some("/elsewhere"))]).await;
    *secret.lock().expect("lock") = env.key.user_secret(owner.id);
    let d = env.dispatcher(|_| {});
    let not_found = env.finished(owner.id, &format!("{base}/a")).await;
    assert_eq!(d.run_once().await.expect("run"), (1, None));
    let moved = env.finished(owner.id, &format!("{base}/b")).await;
    assert_eq!(d.run_once().await.expect("run"), (1, None));
    let paths: Vec<String> = std::iter::from_fn(|| seen.try_recv().ok())
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, ["/a", "/b"], "the redirect was not followed");
    for (id, status) in [(not_found, 404), (moved, 302)] {
        let dl = env.delivery(id).await;
        assert_eq!(dl.state, DeliveryState::Failed);
        assert_eq!((dl.attempts, dl.last_status), (1, Some(status)));
    }
    assert_eq!(env.metric("failed"), 2.0);
}

async fn attempts_are_capped(env: Env) {
    let owner = env.user("down@example.com").await;
    let (base, _secret, _seen) = receiver(vec![(500, None); 5]).await;
    let id = env.finished(owner.id, &format!("{base}/down")).await;
    let d = env.dispatcher(|c| c.max_attempts = 2);
    let (_, retry) = d.run_once().await.expect("run");
    tokio::time::sleep_until(retry.expect("a retry").into()).await;
    assert_eq!(d.run_once().await.expect("run"), (1, None));
    let dl = env.delivery(id).await;
    assert_eq!(dl.state, DeliveryState::Failed);
    assert_eq!((dl.attempts, dl.last_status), (2, Some(500)));
    let err = dl.last_error.expect("reason");
    assert!(err.starts_with("gave up after 2 attempts"), "{err}");
}

async fn timeouts_are_retried(env: Env) {
    let owner = env.user("slow@example.com").await;
    let (base, _secret, mut seen) = receiver(vec![(0, None)]).await;
    let id = env.finished(owner.id, &format!("{base}/slow")).await;
    let d = env.dispatcher(|c| c.timeout_secs = 1);
    let started = std::time::Instant::now();
    let (n, retry) = d.run_once().await.expect("run");
    assert_eq!(n, 1);
    assert!(retry.is_some(), "a timeout is retried");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout cut it"
    );
    assert!(seen.try_recv().is_ok(), "the request did arrive");
    let dl = env.delivery(id).await;
    assert_eq!(dl.state, DeliveryState::Pending);
    assert_eq!(dl.last_status, None);
    assert_eq!(dl.last_error.as_deref(), Some("no answer within 1 s"));
}

async fn background_task_delivers_after_finish(env: Env) {
    let owner = env.user("live@example.com").await;
    let (base, secret, mut seen) = receiver(vec![]).await;
    *secret.lock().expect("lock") = env.key.user_secret(owner.id);
    // A long poll interval: only the finished signal can make this quick.
    let handle = env.dispatcher(|c| c.poll_interval_ms = 60_000).start();
    let id = env.finished(owner.id, &format!("{base}/live")).await;
    let got = tokio::time::timeout(Duration::from_secs(20), seen.recv())
        .await
        .expect("delivered within 20 s")
        .expect("receiver alive");
    assert!(got.signature_ok);
    assert_eq!(got.delivery, id.as_uuid().to_string());
    handle.shutdown().await;
    // Shutdown waits for the in-flight attempt, so its outcome is recorded.
    let dl = env.delivery(id).await;
    assert_eq!(dl.state, DeliveryState::Delivered, "{dl:?}");
}
