//! Typed async client for the VoidRunner HTTP API, used by the CLI and by integration tests.
//!
//! Every non-2xx answer becomes [`ClientError::Api`] carrying the server's error envelope, so
//! callers branch on `code`/`field` instead of parsing text.

use std::fmt;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;
use voidrunner_api_types::{
    ApiKeyListResponse, CreateApiKeyRequest, CreateTaskRequest, CreatedApiKeyResponse, ErrorBody,
    ErrorDetail, ExecuteTaskRequest, ExecutionListResponse, ExecutionResponse, HealthResponse,
    LanguageListResponse, ListExecutionsQuery, ListTasksQuery, LogChunkListResponse, LoginRequest,
    LogoutRequest, LogsQuery, ReadyResponse, RefreshRequest, RegisterRequest, RunRequest,
    TaskListResponse, TaskResponse, TokenResponse, UpdateTaskRequest, UserResponse, WaitQuery,
};

/// What can go wrong calling the API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error envelope.
    #[error("HTTP {status}: {} ({})", .error.message, .error.code)]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The envelope's content.
        error: ErrorDetail,
    },
    /// The server answered with an error that is not in the envelope (e.g. a proxy page).
    #[error("HTTP {status} without an error envelope")]
    UnexpectedResponse {
        /// HTTP status.
        status: StatusCode,
    },
    /// Connection, TLS, timeout or body decoding failure.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The base URL cannot be joined with a path.
    #[error("invalid base URL: {0}")]
    BaseUrl(String),
}

impl ClientError {
    /// The envelope's code, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { error, .. } => Some(&error.code),
            _ => None,
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } | Self::UnexpectedResponse { status } => Some(*status),
            Self::Http(e) => e.status(),
            Self::BaseUrl(_) => None,
        }
    }
}

/// Result alias.
pub type ClientResult<T> = Result<T, ClientError>;

/// The credential sent with requests.
#[derive(Clone)]
enum Credential {
    None,
    Bearer(String),
}

/// A client bound to one server and, optionally, one credential. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    credential: Credential,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field(
                "authenticated",
                &matches!(self.credential, Credential::Bearer(_)),
            )
            .finish()
    }
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: impl Into<String>) -> ClientResult<Self> {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ClientError::BaseUrl(base_url));
        }
        Ok(Self {
            http: reqwest::Client::builder()
                .user_agent(concat!("voidrunner-client/", env!("CARGO_PKG_VERSION")))
                .build()?,
            base_url,
            credential: Credential::None,
        })
    }

    /// The same client sending `Authorization: Bearer <token>` (an access JWT or an API key).
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            credential: Credential::Bearer(token.into()),
            ..self.clone()
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        match &self.credential {
            Credential::None => rb,
            Credential::Bearer(t) => rb.bearer_auth(t),
        }
    }

    async fn check(res: Response) -> ClientResult<Response> {
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let bytes = res.bytes().await?;
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(ClientError::Api {
                status,
                error: body.error,
            }),
            Err(_) => Err(ClientError::UnexpectedResponse { status }),
        }
    }

    async fn json<T: DeserializeOwned>(rb: RequestBuilder) -> ClientResult<T> {
        Ok(Self::check(rb.send().await?).await?.json().await?)
    }

    async fn empty(rb: RequestBuilder) -> ClientResult<()> {
        Self::check(rb.send().await?).await.map(drop)
    }

    fn post<B: Serialize>(&self, path: &str, body: &B) -> RequestBuilder {
        self.request(Method::POST, path).json(body)
    }

    /// `GET /health`.
    pub async fn health(&self) -> ClientResult<HealthResponse> {
        Self::json(self.request(Method::GET, "/health")).await
    }

    /// `GET /ready`.
    pub async fn ready(&self) -> ClientResult<ReadyResponse> {
        Self::json(self.request(Method::GET, "/ready")).await
    }

    /// `POST /api/v1/auth/register`.
    pub async fn register(&self, email: &str, password: &str) -> ClientResult<TokenResponse> {
        let body = RegisterRequest {
            email: email.to_owned(),
            password: password.to_owned(),
        };
        Self::json(self.post("/api/v1/auth/register", &body)).await
    }

    /// `POST /api/v1/auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> ClientResult<TokenResponse> {
        let body = LoginRequest {
            email: email.to_owned(),
            password: password.to_owned(),
        };
        Self::json(self.post("/api/v1/auth/login", &body)).await
    }

    /// `POST /api/v1/auth/refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> ClientResult<TokenResponse> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        Self::json(self.post("/api/v1/auth/refresh", &body)).await
    }

    /// `POST /api/v1/auth/logout`.
    pub async fn logout(&self, refresh_token: &str) -> ClientResult<()> {
        let body = LogoutRequest {
            refresh_token: refresh_token.to_owned(),
        };
        Self::empty(self.post("/api/v1/auth/logout", &body)).await
    }

    /// `GET /api/v1/auth/me`.
    pub async fn me(&self) -> ClientResult<UserResponse> {
        Self::json(self.request(Method::GET, "/api/v1/auth/me")).await
    }

    /// `POST /api/v1/auth/api-keys`.
    pub async fn create_api_key(
        &self,
        req: &CreateApiKeyRequest,
    ) -> ClientResult<CreatedApiKeyResponse> {
        Self::json(self.post("/api/v1/auth/api-keys", req)).await
    }

    /// `GET /api/v1/auth/api-keys`.
    pub async fn list_api_keys(&self) -> ClientResult<ApiKeyListResponse> {
        Self::json(self.request(Method::GET, "/api/v1/auth/api-keys")).await
    }

    /// `DELETE /api/v1/auth/api-keys/{id}`.
    pub async fn revoke_api_key(&self, id: Uuid) -> ClientResult<()> {
        Self::empty(self.request(Method::DELETE, &format!("/api/v1/auth/api-keys/{id}"))).await
    }

    /// `POST /api/v1/tasks`.
    pub async fn create_task(&self, req: &CreateTaskRequest) -> ClientResult<TaskResponse> {
        Self::json(self.post("/api/v1/tasks", req)).await
    }

    /// `GET /api/v1/tasks`.
    pub async fn list_tasks(&self, query: &ListTasksQuery) -> ClientResult<TaskListResponse> {
        let path = with_query("/api/v1/tasks", query)?;
        Self::json(self.request(Method::GET, &path)).await
    }

    /// `GET /api/v1/tasks/{id}`.
    pub async fn get_task(&self, id: Uuid) -> ClientResult<TaskResponse> {
        Self::json(self.request(Method::GET, &format!("/api/v1/tasks/{id}"))).await
    }

    /// `PUT /api/v1/tasks/{id}` (partial update).
    pub async fn update_task(
        &self,
        id: Uuid,
        req: &UpdateTaskRequest,
    ) -> ClientResult<TaskResponse> {
        Self::json(
            self.request(Method::PUT, &format!("/api/v1/tasks/{id}"))
                .json(req),
        )
        .await
    }

    /// `DELETE /api/v1/tasks/{id}`.
    pub async fn delete_task(&self, id: Uuid) -> ClientResult<()> {
        Self::empty(self.request(Method::DELETE, &format!("/api/v1/tasks/{id}"))).await
    }

    /// `POST /api/v1/tasks/{id}/executions`: enqueue a run with optional overrides. With
    /// `wait.wait = Some(true)` the answer is the finished execution when it finished in time
    /// (check `status`), else the current row.
    pub async fn execute_task(
        &self,
        id: Uuid,
        req: &ExecuteTaskRequest,
        wait: &WaitQuery,
    ) -> ClientResult<ExecutionResponse> {
        let path = with_query(&format!("/api/v1/tasks/{id}/executions"), wait)?;
        Self::json(self.post(&path, req)).await
    }

    /// `POST /api/v1/run`: run code once without a stored task (same `wait` semantics).
    pub async fn run(&self, req: &RunRequest, wait: &WaitQuery) -> ClientResult<ExecutionResponse> {
        let path = with_query("/api/v1/run", wait)?;
        Self::json(self.post(&path, req)).await
    }

    /// `GET /api/v1/tasks/{id}/executions`.
    pub async fn list_task_executions(
        &self,
        id: Uuid,
        query: &ListExecutionsQuery,
    ) -> ClientResult<ExecutionListResponse> {
        let path = with_query(&format!("/api/v1/tasks/{id}/executions"), query)?;
        Self::json(self.request(Method::GET, &path)).await
    }

    /// `GET /api/v1/executions/{id}`.
    pub async fn get_execution(&self, id: Uuid) -> ClientResult<ExecutionResponse> {
        Self::json(self.request(Method::GET, &format!("/api/v1/executions/{id}"))).await
    }

    /// `GET /api/v1/executions/{id}?wait=true…`: long-poll until the execution finishes or
    /// `wait.timeout_secs` is up; the answer is the latest row either way.
    pub async fn wait_execution(
        &self,
        id: Uuid,
        wait: &WaitQuery,
    ) -> ClientResult<ExecutionResponse> {
        let path = with_query(&format!("/api/v1/executions/{id}"), wait)?;
        Self::json(self.request(Method::GET, &path)).await
    }

    /// `GET /api/v1/executions/{id}/logs` as text: the stored output bytes of the current
    /// attempt (stdout and stderr interleaved unless `query.stream` picks one).
    pub async fn execution_logs_text(&self, id: Uuid, query: &LogsQuery) -> ClientResult<Vec<u8>> {
        let q = LogsQuery {
            format: Some("text".into()),
            ..query.clone()
        };
        let path = with_query(&format!("/api/v1/executions/{id}/logs"), &q)?;
        let res = Self::check(self.request(Method::GET, &path).send().await?).await?;
        Ok(res.bytes().await?.to_vec())
    }

    /// `GET /api/v1/executions/{id}/logs?format=json`: the stored chunks with seq and stream.
    pub async fn execution_logs(
        &self,
        id: Uuid,
        query: &LogsQuery,
    ) -> ClientResult<LogChunkListResponse> {
        let q = LogsQuery {
            format: Some("json".into()),
            ..query.clone()
        };
        let path = with_query(&format!("/api/v1/executions/{id}/logs"), &q)?;
        Self::json(self.request(Method::GET, &path)).await
    }

    /// `DELETE /api/v1/executions/{id}`: cancel. The answer is the row: `cancelled` when it
    /// was queued, still `running` with `cancel_requested` when its worker is killing it.
    pub async fn cancel_execution(&self, id: Uuid) -> ClientResult<ExecutionResponse> {
        Self::json(self.request(Method::DELETE, &format!("/api/v1/executions/{id}"))).await
    }

    /// `GET /api/v1/languages`.
    pub async fn list_languages(&self) -> ClientResult<LanguageListResponse> {
        Self::json(self.request(Method::GET, "/api/v1/languages")).await
    }

    /// `GET /api/v1/admin/dead-letter` (admins).
    pub async fn list_dead_letters(
        &self,
        query: &ListExecutionsQuery,
    ) -> ClientResult<ExecutionListResponse> {
        let path = with_query("/api/v1/admin/dead-letter", query)?;
        Self::json(self.request(Method::GET, &path)).await
    }

    /// `POST /api/v1/admin/dead-letter/{id}/requeue` (admins).
    pub async fn requeue_dead_letter(&self, id: Uuid) -> ClientResult<ExecutionResponse> {
        Self::json(self.request(
            Method::POST,
            &format!("/api/v1/admin/dead-letter/{id}/requeue"),
        ))
        .await
    }
}

/// `path?query`, or `path` when the query serializes to nothing.
fn with_query<Q: Serialize>(path: &str, query: &Q) -> ClientResult<String> {
    let qs = serde_urlencoded::to_string(query)
        .map_err(|e| ClientError::BaseUrl(format!("query: {e}")))?;
    Ok(if qs.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{qs}")
    })
}
