//! The opaque pagination cursor: base64url of `v1:<created_at µs>:<id>`. Versioned so the
//! format can change without breaking clients holding old cursors (they get a 400). Tasks and
//! executions page by the same `(created_at, id)` key, so they share the format.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use voidrunner_domain::Timestamp;
use voidrunner_store::{ExecutionCursor, JobCursor, JobId, TaskCursor};

const VERSION: &str = "v1";

fn encode(created_at: Timestamp, id: uuid::Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{VERSION}:{}:{id}", created_at.timestamp_micros()))
}

fn decode(s: &str) -> Option<(Timestamp, uuid::Uuid)> {
    let raw = URL_SAFE_NO_PAD.decode(s.as_bytes()).ok()?;
    let raw = std::str::from_utf8(&raw).ok()?;
    let mut parts = raw.splitn(3, ':');
    if parts.next()? != VERSION {
        return None;
    }
    let micros: i64 = parts.next()?.parse().ok()?;
    let created_at = chrono::DateTime::from_timestamp_micros(micros)?;
    let id = parts.next()?.parse().ok()?;
    Some((created_at, id))
}

/// Encodes a task cursor for `next_cursor`.
pub(crate) fn encode_task(c: &TaskCursor) -> String {
    encode(c.created_at, c.id.as_uuid())
}

/// Decodes a client-supplied task cursor; `None` for anything malformed.
pub(crate) fn decode_task(s: &str) -> Option<TaskCursor> {
    decode(s).map(|(created_at, id)| TaskCursor {
        created_at,
        id: id.into(),
    })
}

/// Encodes an execution cursor for `next_cursor`.
pub(crate) fn encode_execution(c: &ExecutionCursor) -> String {
    encode(c.created_at, c.id.as_uuid())
}

/// Decodes a client-supplied execution cursor; `None` for anything malformed.
pub(crate) fn decode_execution(s: &str) -> Option<ExecutionCursor> {
    decode(s).map(|(created_at, id)| ExecutionCursor {
        created_at,
        id: id.into(),
    })
}

/// Encodes a job cursor for `next_cursor`.
pub(crate) fn encode_job(c: &JobCursor) -> String {
    encode(c.created_at, c.id.as_uuid())
}

/// Decodes a client-supplied job cursor; `None` for anything malformed.
pub(crate) fn decode_job(s: &str) -> Option<JobCursor> {
    decode(s).map(|(created_at, id)| JobCursor {
        created_at,
        id: JobId(id),
    })
}

/// Encodes a workflow cursor for `next_cursor`.
pub(crate) fn encode_workflow(c: &voidrunner_store::WorkflowCursor) -> String {
    encode(c.created_at, c.id.0)
}

/// Decodes a client-supplied workflow cursor; `None` for anything malformed.
pub(crate) fn decode_workflow(s: &str) -> Option<voidrunner_store::WorkflowCursor> {
    decode(s).map(|(created_at, id)| voidrunner_store::WorkflowCursor {
        created_at,
        id: voidrunner_store::WorkflowId(id),
    })
}

#[cfg(test)]
mod tests {
    use voidrunner_domain::{ExecutionId, TaskId};

    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let c = TaskCursor {
            created_at: voidrunner_store::now(),
            id: TaskId::new(),
        };
        assert_eq!(decode_task(&encode_task(&c)), Some(c));
        let e = ExecutionCursor {
            created_at: voidrunner_store::now(),
            id: ExecutionId::new(),
        };
        assert_eq!(decode_execution(&encode_execution(&e)), Some(e));
        for bad in ["", "!!!", "djE6eDp5", &URL_SAFE_NO_PAD.encode("v2:1:x")] {
            assert_eq!(decode_task(bad), None, "{bad}");
            assert_eq!(decode_execution(bad), None, "{bad}");
        }
    }
}
