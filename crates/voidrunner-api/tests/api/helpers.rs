//! Spawns the real server on port 0 against a fresh database (SQLite always, PostgreSQL when
//! `VOIDRUNNER_TEST_DATABASE_URL` is set) and offers small request helpers.

use std::sync::Arc;

use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use voidrunner_api::{ApiContext, ApiSettings, JwtSecret, PasswordHashSettings, RateLimitSettings};
use voidrunner_api_types::{CreateTaskRequest, TaskResponse, TokenResponse};
use voidrunner_client::Client;
use voidrunner_domain::{ExecutionStatus, TaskId};
use voidrunner_store::Store;
use voidrunner_store::conformance::TestHooks;

/// The HMAC key every test server signs with, so tests can craft tokens.
pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

/// Which database a test runs against.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A fresh SQLite file in a temporary directory.
    Sqlite,
    /// A fresh schema in this PostgreSQL database.
    Postgres(String),
}

impl Backend {
    /// The PostgreSQL backend, or `None` (with a printed line) when it is not configured.
    pub fn postgres() -> Option<Self> {
        match std::env::var("VOIDRUNNER_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(Self::Postgres(url)),
            _ => {
                println!("skipping postgres variant: VOIDRUNNER_TEST_DATABASE_URL is not set");
                None
            }
        }
    }

    /// Spawns a server with the test defaults.
    pub async fn spawn(&self) -> TestApp {
        self.spawn_with(|_| {}).await
    }

    /// Spawns a server with the test defaults adjusted by `configure`.
    pub async fn spawn_with(&self, configure: impl FnOnce(&mut ApiSettings)) -> TestApp {
        init_logs();
        let mut settings = test_settings();
        configure(&mut settings);
        let (store, hooks, closer, dir): (Arc<dyn Store>, Hook, Closer, Option<TempDir>) =
            match self {
                Backend::Sqlite => {
                    let (s, dir) = voidrunner_store_sqlite::testing::fresh_store().await;
                    let (h, c) = (s.clone(), s.clone());
                    (
                        Arc::new(s),
                        hook(h),
                        Box::new(move || Box::pin(async move { c.close().await })),
                        Some(dir),
                    )
                }
                Backend::Postgres(url) => {
                    let s = voidrunner_store_postgres::testing::fresh_store(url).await;
                    let (h, c) = (s.clone(), s.clone());
                    (
                        Arc::new(s),
                        hook(h),
                        Box::new(move || Box::pin(async move { c.close().await })),
                        None,
                    )
                }
            };
        let ctx = ApiContext::new(
            store.clone(),
            settings.clone(),
            JwtSecret::new(SECRET.to_vec()),
        )
        .expect("valid test settings")
        .with_secret_box(test_secret_box());
        // A local object store, so archived logs and job blobs are served as in production.
        let objects_dir = tempfile::tempdir().expect("object store dir");
        let objects = voidrunner_logarchive::ObjectStoreConfig::default()
            .build(objects_dir.path())
            .expect("local object store");
        let ctx = ctx.with_log_reader(voidrunner_logarchive::LogReader::new(
            store.clone(),
            Some(objects.clone()),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let base_url = format!("http://{addr}");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(voidrunner_api::serve(listener, ctx, async move {
            let _ = rx.await;
        }));
        TestApp {
            client: Client::new(base_url.clone()).expect("client"),
            http: reqwest::Client::new(),
            base_url,
            settings,
            store,
            hooks,
            closer: Some(closer),
            _shutdown: tx,
            _dir: dir,
            objects,
            _objects_dir: objects_dir,
        }
    }
}

/// The key test servers seal task secrets with, so tests can open what the store holds.
pub fn test_secret_box() -> Arc<voidrunner_mask::SecretBox> {
    let key = voidrunner_mask::SecretKey::from_bytes([7; 32]);
    Arc::new(voidrunner_mask::SecretBox::new(&key))
}

/// Server logs go to the test output when `TEST_LOG` is set (e.g. `TEST_LOG=debug`).
fn init_logs() {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

type Hook =
    Arc<dyn Fn(TaskId, Option<ExecutionStatus>) -> BoxFuture<'static, ()> + Send + Sync + 'static>;
type Closer = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

fn hook<S: TestHooks + 'static>(store: S) -> Hook {
    Arc::new(move |task, status| {
        let s = store.clone();
        Box::pin(async move {
            s.set_last_execution_status(task, status)
                .await
                .expect("set last execution status");
        })
    })
}

/// Fast argon2, no rate limits: tests that need limits turn them on.
pub fn test_settings() -> ApiSettings {
    let off = RateLimitSettings {
        enabled: false,
        requests_per_sec: 1.0,
        burst: 1,
    };
    ApiSettings {
        rate_limit_per_ip: off,
        rate_limit_per_user: off,
        password_hashing: PasswordHashSettings {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        },
        ..ApiSettings::default()
    }
}

/// A running server.
pub struct TestApp {
    pub base_url: String,
    /// Unauthenticated typed client.
    pub client: Client,
    /// Raw HTTP client for edge cases.
    pub http: reqwest::Client,
    pub settings: ApiSettings,
    /// The server's store, for driving the queue as a worker would (claim, complete).
    pub store: Arc<dyn Store>,
    hooks: Hook,
    closer: Option<Closer>,
    _shutdown: oneshot::Sender<()>,
    _dir: Option<TempDir>,
    /// The server's object store (a local directory): what the log and job blob archivers
    /// write to.
    pub objects: Arc<dyn voidrunner_logarchive::ObjectStore>,
    _objects_dir: TempDir,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub email: String,
    pub password: String,
    pub tokens: TokenResponse,
    /// Client carrying the access token.
    pub client: Client,
}

impl TestUser {
    pub fn token(&self) -> &str {
        &self.tokens.access_token
    }
    pub fn id(&self) -> uuid::Uuid {
        self.tokens.user.id
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Registers a fresh user with a unique email.
    pub async fn user(&self) -> TestUser {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "correct horse battery".to_owned();
        let tokens = self
            .client
            .register(&email, &password)
            .await
            .expect("register");
        TestUser {
            client: self.client.with_token(&tokens.access_token),
            email,
            password,
            tokens,
        }
    }

    /// Sends a raw request; returns status, headers and the JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut rb = self.http.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let res = rb.send().await.expect("send");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, headers, json)
    }

    /// Sets a task's last execution status directly in the store.
    pub async fn set_status(&self, task: uuid::Uuid, status: Option<ExecutionStatus>) {
        (self.hooks)(TaskId(task), status).await;
    }

    /// Closes the store's connections, so the next store call fails.
    pub async fn close_store(&mut self) {
        if let Some(c) = self.closer.take() {
            c().await;
        }
    }
}

/// A valid minimal task request.
pub fn task_req(name: &str) -> CreateTaskRequest {
    CreateTaskRequest {
        name: name.to_owned(),
        description: None,
        language: "python".to_owned(),
        code: "print('hi')".to_owned(),
        stdin: None,
        env: None,
        limits: None,
        priority: None,
        tags: None,
        metadata: None,
        secrets: None,
    }
}

/// Creates a task through the API.
pub async fn create_task(user: &TestUser, name: &str) -> TaskResponse {
    user.client
        .create_task(&task_req(name))
        .await
        .expect("create task")
}

/// Asserts an error envelope with this status, code and (optionally) field.
#[track_caller]
pub fn assert_error(
    got: &(StatusCode, reqwest::header::HeaderMap, Value),
    status: u16,
    code: &str,
    field: Option<&str>,
) {
    let (s, _, body) = got;
    assert_eq!(s.as_u16(), status, "status; body: {body}");
    assert_eq!(body["error"]["code"], code, "code; body: {body}");
    assert!(
        body["error"]["message"].is_string(),
        "message; body: {body}"
    );
    match field {
        Some(f) => assert_eq!(body["error"]["field"], f, "field; body: {body}"),
        None => assert!(
            body["error"].get("field").is_none(),
            "no field; body: {body}"
        ),
    }
}

/// Asserts a client error is the API envelope with this status, code and field.
#[track_caller]
pub fn assert_client_error(
    err: &voidrunner_client::ClientError,
    status: u16,
    code: &str,
    field: Option<&str>,
) {
    match err {
        voidrunner_client::ClientError::Api { status: s, error } => {
            assert_eq!(s.as_u16(), status, "{error:?}");
            assert_eq!(error.code, code, "{error:?}");
            assert_eq!(error.field.as_deref(), field, "{error:?}");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Generates `<name>::sqlite` and `<name>::postgres` tests from `async fn <name>(Backend)`.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(crate::helpers::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(backend) = crate::helpers::Backend::postgres() {
                        super::$name(backend).await;
                    }
                }
            }
        )*
    };
}
pub(crate) use backend_tests;
