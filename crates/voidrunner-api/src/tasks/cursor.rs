//! The opaque pagination cursor: base64url of `v1:<created_at µs>:<task id>`. Versioned so
//! the format can change without breaking clients holding old cursors (they get a 400).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use voidrunner_store::TaskCursor;

const VERSION: &str = "v1";

/// Encodes a cursor for `next_cursor`.
pub(crate) fn encode(c: &TaskCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{VERSION}:{}:{}",
        c.created_at.timestamp_micros(),
        c.id
    ))
}

/// Decodes a client-supplied cursor; `None` for anything malformed.
pub(crate) fn decode(s: &str) -> Option<TaskCursor> {
    let raw = URL_SAFE_NO_PAD.decode(s.as_bytes()).ok()?;
    let raw = std::str::from_utf8(&raw).ok()?;
    let mut parts = raw.splitn(3, ':');
    if parts.next()? != VERSION {
        return None;
    }
    let micros: i64 = parts.next()?.parse().ok()?;
    let created_at = chrono::DateTime::from_timestamp_micros(micros)?;
    let id = parts.next()?.parse().ok()?;
    Some(TaskCursor { created_at, id })
}

#[cfg(test)]
mod tests {
    use voidrunner_domain::TaskId;

    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let c = TaskCursor {
            created_at: voidrunner_store::now(),
            id: TaskId::new(),
        };
        assert_eq!(decode(&encode(&c)), Some(c));
        for bad in ["", "!!!", "djE6eDp5", &URL_SAFE_NO_PAD.encode("v2:1:x")] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
