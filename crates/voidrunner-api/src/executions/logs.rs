//! `GET /api/v1/executions/{id}/logs`: the stored output of an execution's current attempt,
//! as bytes (`text/plain`, stdout and stderr interleaved in order, byte ranges, download) or
//! as JSON chunks with their seq and stream. Logs moved to object storage are read from there
//! (the same bytes); logs deleted by retention answer `410 logs_expired`.

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use voidrunner_api_types::{
    ErrorBody, ErrorCode, LogChunkListResponse, LogChunkResponse, LogEncoding, LogsQuery,
};
use voidrunner_domain::{Execution, ExecutionId};
use voidrunner_logarchive::{LogReader, ReadError};
use voidrunner_store::{LogEvent, LogStream};

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::executions::handlers::read_scope;
use crate::executions::range::{ByteRange, parse_range};
use crate::extract::PathId;

/// Events read per store round trip.
pub(crate) const PAGE: u32 = 512;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogs {
    format: Option<String>,
    stream: Option<String>,
    download: Option<String>,
}

/// Parsed `?format=&stream=&download=`.
struct LogsParams {
    json: bool,
    stream: Option<LogStream>,
    download: bool,
}

fn parse(raw: Option<&str>) -> ApiResult<LogsParams> {
    let q: RawLogs = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|_| ApiError::invalid_query("query", "unknown or duplicated query parameter"))?;
    let json = match q.format.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(_) => return Err(ApiError::invalid_query("format", "must be text or json")),
    };
    let stream = match q.stream.as_deref() {
        None => None,
        Some(s) => Some(
            LogStream::parse(s)
                .filter(|s| *s != LogStream::Status)
                .ok_or_else(|| {
                    ApiError::invalid_query("stream", "must be stdout, stderr or compile")
                })?,
        ),
    };
    let download = match q.download.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid_query("download", "must be true or false")),
    };
    Ok(LogsParams {
        json,
        stream,
        download,
    })
}

/// Output bytes for JSON: the text when they are valid UTF-8, else their standard base64
/// (shared by execution chunks and job events).
pub(crate) fn encode_data(data: Vec<u8>) -> (String, LogEncoding) {
    match String::from_utf8(data) {
        Ok(text) => (text, LogEncoding::Utf8),
        Err(bytes) => (
            base64::engine::general_purpose::STANDARD.encode(bytes.as_bytes()),
            LogEncoding::Base64,
        ),
    }
}

/// A stored chunk as JSON: text when it is valid UTF-8, else base64.
pub(crate) fn chunk_response(e: LogEvent) -> LogChunkResponse {
    let (data, encoding) = encode_data(e.data);
    LogChunkResponse {
        seq: e.seq,
        attempt: e.attempt,
        stream: e.stream.as_str().to_owned(),
        data,
        encoding,
        created_at: e.created_at,
    }
}

/// The answer to a log that cannot be read: `410 logs_expired` when retention deleted it;
/// store errors as usual; archive errors as a 500 whose cause the request log records once.
pub(crate) fn read_error(e: ReadError) -> ApiError {
    match e {
        ReadError::Expired { .. } => ApiError::new(
            StatusCode::GONE,
            ErrorCode::LogsExpired,
            "the output of this execution was deleted by the log retention policy",
        ),
        ReadError::Store(e) => e.into(),
        other => ApiError::internal(format!("reading the log: {other}")),
    }
}

/// Output chunks of the execution's current attempt that `keep` accepts, in seq order, from
/// the database or the log archive.
async fn chunks(
    reader: &LogReader,
    execution: &Execution,
    keep: impl Fn(LogStream) -> bool,
) -> ApiResult<Vec<LogEvent>> {
    let mut out = Vec::new();
    let mut cursor = reader.cursor(execution.id, 0).await.map_err(read_error)?;
    loop {
        let page = cursor.next_page(PAGE).await.map_err(read_error)?;
        if page.is_empty() {
            break;
        }
        out.extend(
            page.into_iter()
                .filter(|e| e.attempt == execution.attempt && keep(e.stream)),
        );
    }
    Ok(out)
}

/// Gets the stored output of an execution (the caller's; admins: any): the current
/// attempt's chunks. Text by default (`Range: bytes=` gives `206`), JSON chunks with
/// `format=json`.
#[utoipa::path(get, path = "/api/v1/executions/{id}/logs", tag = "executions",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Execution id"), LogsQuery,
        ("Range" = Option<String>, Header, description = "`bytes=a-b`, `bytes=a-` or `bytes=-n` (text only)")),
    responses(
        (status = 200, description = "The output: `text/plain` bytes, or JSON chunks with `format=json`", body = LogChunkListResponse),
        (status = 206, description = "The requested byte range of the text", content_type = "text/plain"),
        (status = 400, description = "Bad query parameter (`field` names it)", body = ErrorBody),
        (status = 404, description = "No such execution of yours", body = ErrorBody),
        (status = 410, description = "Retention deleted this execution's output (`logs_expired`)", body = ErrorBody),
        (status = 416, description = "The range starts past the end; `Content-Range: bytes */<length>`", body = ErrorBody),
    ))]
pub(crate) async fn get_execution_logs(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    PathId(id): PathId<ExecutionId>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let params = parse(raw.as_deref())?;
    let store = ctx.store();
    let execution = store.get_execution(read_scope(&auth), id).await?;
    let keep = |s: LogStream| match params.stream {
        Some(only) => s == only,
        None if params.json => s != LogStream::Status,
        None => matches!(s, LogStream::Stdout | LogStream::Stderr),
    };
    let events = chunks(ctx.log_reader(), &execution, keep).await?;
    let disposition = params.download.then(|| {
        let ext = if params.json { "json" } else { "log" };
        format!("attachment; filename=\"execution-{id}.{ext}\"")
    });
    let mut res = if params.json {
        let items = events.into_iter().map(chunk_response).collect();
        Json(LogChunkListResponse { items }).into_response()
    } else {
        let body: Vec<u8> = events.into_iter().flat_map(|e| e.data).collect();
        text_response(body, headers.get(header::RANGE))?
    };
    if let Some(d) = disposition.and_then(|d| HeaderValue::from_str(&d).ok()) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, d);
    }
    Ok(res)
}

/// The text body, whole (`200`) or the satisfiable range (`206`); `416` otherwise.
fn text_response(body: Vec<u8>, range: Option<&HeaderValue>) -> ApiResult<Response> {
    let len = body.len() as u64;
    let plain = HeaderValue::from_static("text/plain; charset=utf-8");
    let range = range
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len));
    let (status, body, content_range) = match range {
        None | Some(ByteRange::Ignored) => (StatusCode::OK, body, None),
        Some(ByteRange::Unsatisfiable) => {
            let mut res = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorCode::RangeNotSatisfiable,
                "the range starts past the end of the log",
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(res);
        }
        Some(ByteRange::Satisfiable { start, end }) => {
            let slice = body
                .get(
                    usize::try_from(start).unwrap_or(usize::MAX)
                        ..=usize::try_from(end).unwrap_or(usize::MAX),
                )
                .unwrap_or_default()
                .to_vec();
            (
                StatusCode::PARTIAL_CONTENT,
                slice,
                Some(format!("bytes {start}-{end}/{len}")),
            )
        }
    };
    let mut res = (status, Body::from(body)).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, plain);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(v) = content_range.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(res)
}
