//! Messages of the execution WebSocket (`GET /api/v1/executions/{id}/ws`): JSON text frames
//! in both directions, tagged by `type`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a client sends. Binary frames are stdin bytes too (no UTF-8 needed). `eof` and
/// `cancel` are empty struct variants so that unknown fields are refused for them too (serde
/// ignores extra fields of unit variants in internally tagged enums).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WsClientMessage {
    /// Bytes for the program's stdin (interactive executions), as UTF-8 text.
    Stdin {
        /// The text, sent as is (add `\n` to end a line).
        data: String,
    },
    /// Close the program's stdin (it then reads EOF).
    Eof {},
    /// Cancel the execution.
    Cancel {},
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsServerMessage {
    /// One event of the execution's log, exactly as the SSE stream carries it.
    Event {
        /// The event's seq (resume with `?after=<seq>`).
        seq: u64,
        /// `status`, `stdout`, `stderr` or `compile`.
        event: String,
        /// The SSE `data`: the status summary, or the chunk (`data` + `encoding`).
        data: serde_json::Value,
    },
    /// A client message was accepted.
    Ack {
        /// `stdin`, `eof` or `cancel`.
        of: String,
        /// For `stdin`/`eof`: the input chunk's seq.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_seq: Option<u64>,
    },
    /// A client message was refused, or the stream hit a problem; the socket stays open
    /// unless the error says otherwise.
    Error {
        /// Stable code (the HTTP API's error codes: `conflict`, `not_found`,
        /// `validation_failed`, `unavailable`, …).
        code: String,
        /// Human-readable message.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_strictly() {
        let m: WsClientMessage =
            serde_json::from_str(r#"{"type":"stdin","data":"hi\n"}"#).expect("stdin");
        assert_eq!(
            m,
            WsClientMessage::Stdin {
                data: "hi\n".into()
            }
        );
        let m: WsClientMessage = serde_json::from_str(r#"{"type":"eof"}"#).expect("eof");
        assert_eq!(m, WsClientMessage::Eof {});
        assert!(serde_json::from_str::<WsClientMessage>(r#"{"type":"cancel","x":1}"#).is_err());
        assert!(serde_json::from_str::<WsClientMessage>(r#"{"type":"exec"}"#).is_err());
    }

    #[test]
    fn server_messages_are_tagged() {
        let ack = WsServerMessage::Ack {
            of: "stdin".into(),
            input_seq: Some(2),
        };
        assert_eq!(
            serde_json::to_string(&ack).expect("json"),
            r#"{"type":"ack","of":"stdin","input_seq":2}"#
        );
    }
}
