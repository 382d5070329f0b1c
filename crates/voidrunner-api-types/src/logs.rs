//! Logs and live streams of an execution: `GET /api/v1/executions/{id}/logs` and the
//! Server-Sent Events of `GET /api/v1/executions/{id}/stream`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use chrono::{DateTime, Utc};

/// How a chunk's `data` is written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogEncoding {
    /// The bytes were valid UTF-8 and `data` is that text.
    Utf8,
    /// The bytes were not valid UTF-8 (binary output, or a character split between two
    /// chunks): `data` is their standard base64 (with padding).
    Base64,
}

/// One output chunk: an item of `?format=json` logs, and the `data` of `stdout`, `stderr`
/// and `compile` stream events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogChunkResponse {
    /// Position in the execution's event log (also the SSE event id), from 1.
    pub seq: u64,
    /// The attempt that produced it (a retried execution's earlier attempts keep theirs).
    pub attempt: u32,
    /// `stdout`, `stderr` or `compile`.
    pub stream: String,
    /// The bytes, as text or base64 (see `encoding`).
    pub data: String,
    /// How `data` is encoded.
    pub encoding: LogEncoding,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// `GET /api/v1/executions/{id}/logs?format=json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogChunkListResponse {
    /// Chunks of the execution's current attempt, in order.
    pub items: Vec<LogChunkResponse>,
}

/// Query of `GET /api/v1/executions/{id}/logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// `text` (default: the bytes, `text/plain`) or `json` (chunks with seq and stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Only this stream: `stdout`, `stderr` or `compile`. Default: text has stdout and
    /// stderr interleaved in order; json has all three.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// `true`: `Content-Disposition: attachment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<bool>,
}

/// Query of `GET /api/v1/executions/{id}/stream`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Resume after this event id, for clients that cannot send `Last-Event-ID` (the header
    /// wins when both are present). Default 0: from the first event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
}
