//! `GET /api/v1/executions/{id}/ws`: the execution's events over a WebSocket, plus stdin and
//! cancel from the client.
//!
//! Server → client: the same events as the SSE stream (one `event` frame per stored event,
//! replayed after `?after=` then followed live by [`Follow`], no gap and no duplicate), then a
//! normal close after the terminal status event. Client → server: `stdin`, `eof`, `cancel`
//! (JSON text frames, [`WsClientMessage`]) and binary frames as raw stdin; each answered by an
//! `ack` or an `error` frame — a bad message never closes the socket.
//!
//! Browsers cannot set headers on a WebSocket, so this route alone also takes the credential
//! as `?access_token=`; the request log records only the path, never the query.
//!
//! Memory per client is bounded like SSE: at most one page of events is held, and the next
//! page is read only once the socket took the previous frame. A client that takes no frame for
//! [`SEND_TIMEOUT`] is dropped (it can reconnect with `?after=`); workers never wait for it.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::SinkExt;
use futures::stream::{SplitSink, StreamExt};
use serde::Deserialize;
use voidrunner_api_types::{ErrorBody, ErrorCode, WsClientMessage, WsServerMessage};
use voidrunner_domain::ExecutionId;
use voidrunner_store::{LogEvent, Scope, StoreError};

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::executions::handlers::read_scope;
use crate::executions::stream::{Follow, KEEP_ALIVE, event_data};
use crate::extract::PathId;

/// Largest client frame (a stdin chunk); bigger frames end the connection.
const MAX_MESSAGE_BYTES: usize = 64 << 10;
/// A client that takes no frame for this long is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WsQuery {
    after: Option<String>,
    access_token: Option<String>,
}

fn parse_query(raw: Option<&str>) -> ApiResult<WsQuery> {
    serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|_| ApiError::invalid_query("query", "unknown or duplicated query parameter"))
}

/// [`AuthUser`] that also accepts `?access_token=` when no credential header is present.
pub(crate) struct WsAuth(AuthUser);

impl FromRequestParts<ApiContext> for WsAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, ApiError> {
        let has_header = parts.headers.contains_key(header::AUTHORIZATION)
            || parts.headers.contains_key("x-api-key");
        if !has_header && let Some(token) = parse_query(parts.uri.query())?.access_token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| ApiError::unauthorized())?;
            value.set_sensitive(true);
            parts.headers.insert(header::AUTHORIZATION, value);
        }
        AuthUser::from_request_parts(parts, ctx).await.map(WsAuth)
    }
}

/// Opens a WebSocket on an execution (the caller's; admins may watch any): `event` frames as
/// the SSE stream, resumable with `?after=<seq>`, closed after the terminal status event.
/// The owner may send `{"type":"stdin","data":"…"}` (interactive executions), `{"type":"eof"}`
/// and `{"type":"cancel"}`; each is answered by `ack` or `error`. Auth: `Authorization:
/// Bearer`, or `?access_token=` (browsers).
#[utoipa::path(get, path = "/api/v1/executions/{id}/ws", tag = "executions",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Execution id"),
        ("after" = Option<u64>, Query, description = "Resume after this event seq"),
        ("access_token" = Option<String>, Query,
            description = "Credential for clients that cannot send headers (never logged)")),
    responses(
        (status = 101, description = "WebSocket of `WsServerMessage` frames; send `WsClientMessage` frames", body = WsServerMessage),
        (status = 400, description = "Bad `after` or unknown query parameter", body = ErrorBody),
        (status = 404, description = "No such execution of yours", body = ErrorBody),
        (status = 426, description = "Not a WebSocket upgrade request", body = ErrorBody),
    ))]
pub(crate) async fn execution_ws(
    State(ctx): State<ApiContext>,
    WsAuth(auth): WsAuth,
    PathId(id): PathId<ExecutionId>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let after = match parse_query(raw.as_deref())?.after {
        None => 0,
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| ApiError::invalid_query("after", "must be an event seq"))?,
    };
    let follow = Follow::open(&ctx, read_scope(&auth), id, after).await?;
    let upgrade = upgrade.map_err(|_| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            ErrorCode::InvalidQuery,
            "this route needs a WebSocket upgrade",
        )
    })?;
    let session = Session {
        ctx,
        id,
        owner: Scope::Owner(auth.id),
    };
    Ok(upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| session.run(socket, follow)))
}

/// One connected client.
struct Session {
    ctx: ApiContext,
    id: ExecutionId,
    /// Scope of writes (stdin, cancel): the owner only, as for `POST …/cancel`.
    owner: Scope,
}

type Sink = SplitSink<WebSocket, Message>;

/// Sends one frame, dropping a client that does not take it in time.
async fn send(sink: &mut Sink, msg: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, sink.send(msg)).await,
        Ok(Ok(()))
    )
}

fn frame(msg: &WsServerMessage) -> Message {
    Message::Text(serde_json::to_string(msg).unwrap_or_default().into())
}

fn event_frame(e: LogEvent) -> Message {
    let seq = e.seq;
    let event = e.stream.as_str().to_owned();
    let (data, _) = event_data(e);
    frame(&WsServerMessage::Event { seq, event, data })
}

fn error_frame(code: ErrorCode, message: impl Into<String>) -> Message {
    frame(&WsServerMessage::Error {
        code: code.as_str().to_owned(),
        message: message.into(),
    })
}

impl Session {
    async fn run(self, socket: WebSocket, mut follow: Follow) {
        let (mut sink, mut incoming) = socket.split();
        let mut ping = tokio::time::interval(KEEP_ALIVE);
        ping.reset();
        loop {
            tokio::select! {
                event = follow.next_event() => {
                    let Some(e) = event else { break };
                    if !send(&mut sink, event_frame(e)).await {
                        return;
                    }
                }
                msg = incoming.next() => {
                    let reply = match msg {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                        Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
                        Some(Ok(Message::Binary(data))) => self.stdin(&data, false, "stdin").await,
                        Some(Ok(_)) => continue,
                    };
                    if !send(&mut sink, reply).await {
                        return;
                    }
                }
                _ = ping.tick() => {
                    if !send(&mut sink, Message::Ping(Vec::new().into())).await {
                        return;
                    }
                }
            }
        }
        let close = CloseFrame {
            code: close_code::NORMAL,
            reason: "execution finished".into(),
        };
        let _ = send(&mut sink, Message::Close(Some(close))).await;
    }

    async fn on_text(&self, text: &str) -> Message {
        match serde_json::from_str::<WsClientMessage>(text) {
            Ok(WsClientMessage::Stdin { data }) => {
                self.stdin(data.as_bytes(), false, "stdin").await
            }
            Ok(WsClientMessage::Eof {}) => self.stdin(b"", true, "eof").await,
            Ok(WsClientMessage::Cancel {}) => self.cancel().await,
            Err(_) => error_frame(
                ErrorCode::ValidationFailed,
                "expected {\"type\":\"stdin\",\"data\":\"…\"}, {\"type\":\"eof\"} or {\"type\":\"cancel\"}",
            ),
        }
    }

    async fn stdin(&self, data: &[u8], eof: bool, of: &str) -> Message {
        let appended = self
            .ctx
            .store()
            .append_input(self.owner, self.id, data, eof, voidrunner_store::now())
            .await;
        match appended {
            Ok(seq) => frame(&WsServerMessage::Ack {
                of: of.to_owned(),
                input_seq: Some(seq),
            }),
            Err(e) => self.store_error(e),
        }
    }

    async fn cancel(&self) -> Message {
        let id = self.id;
        match (self.ctx.store())
            .request_cancel(self.owner, id, voidrunner_store::now())
            .await
        {
            Ok(e) => {
                tracing::info!(execution.id = %id, status = e.status.as_str(), "cancel requested for execution {id} (websocket)");
                frame(&WsServerMessage::Ack {
                    of: "cancel".into(),
                    input_seq: None,
                })
            }
            Err(StoreError::Conflict(_)) => {
                error_frame(ErrorCode::Conflict, "execution already finished")
            }
            Err(e) => self.store_error(e),
        }
    }

    fn store_error(&self, e: StoreError) -> Message {
        match e {
            StoreError::NotFound => error_frame(
                ErrorCode::NotFound,
                "only the execution's owner may send input or cancel it",
            ),
            StoreError::Conflict(why) => error_frame(ErrorCode::Conflict, why),
            StoreError::Unavailable(source) => {
                tracing::error!(execution.id = %self.id, error = %source, "websocket of execution {}: store unavailable: {source}", self.id);
                error_frame(ErrorCode::Unavailable, "store unavailable, retry")
            }
        }
    }
}
