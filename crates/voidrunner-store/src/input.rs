//! Stdin of interactive executions: chunks appended by any API node (WebSocket), read in order
//! by the worker that runs the execution.
//!
//! Rules every backend follows:
//! - Only an execution enqueued with `interactive = true` takes input, while it is `queued` or
//!   `running`, and until a chunk with `eof` was appended; otherwise
//!   [`StoreError::Conflict`](crate::StoreError::Conflict). Outside the caller's scope:
//!   `NotFound`.
//! - The execution's snapshot `stdin` is not part of this log; the worker feeds it first.
//! - At most [`MAX_INPUT_BYTES`] and [`MAX_INPUT_CHUNKS`] per execution, and no empty chunk
//!   without `eof` (Conflict otherwise), so a client cannot make the store or a worker buffer
//!   or write without bound.
//! - `seq` starts at 1 and increases by one per append; appends are serialised per execution.
//! - After the append commits, [`crate::QueueSignals::notify_input`] fires on this handle; the
//!   PostgreSQL backend also sends a `NOTIFY` so workers in other processes hear it.

use voidrunner_domain::{ExecutionId, Timestamp};

use crate::{Scope, StoreResult};

/// Most stdin bytes one interactive execution may receive through the store.
pub const MAX_INPUT_BYTES: u64 = 1 << 20;
/// Most stdin chunks (appends) one interactive execution may receive.
pub const MAX_INPUT_CHUNKS: u64 = 10_000;

/// One appended piece of stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputChunk {
    /// 1, 2, … in append order.
    pub seq: u64,
    /// The bytes (may be empty, e.g. for a bare EOF).
    pub data: Vec<u8>,
    /// The program's stdin is closed after this chunk.
    pub eof: bool,
}

/// Streaming stdin of interactive executions.
#[async_trait::async_trait]
pub trait InputStore {
    /// Appends `data` (and closes stdin when `eof`) to the input of execution `id`; answers
    /// the chunk's seq. See the module docs for when this conflicts.
    async fn append_input(
        &self,
        scope: Scope,
        id: ExecutionId,
        data: &[u8],
        eof: bool,
        now: Timestamp,
    ) -> StoreResult<u64>;

    /// Chunks with `seq > after`, in order, at most `limit`. Unscoped: the worker running the
    /// execution reads it.
    async fn read_input(
        &self,
        id: ExecutionId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<InputChunk>>;
}

/// The conflict (if any) of appending `len` bytes to an execution in this state: shared by
/// the backends so the rule and its messages are written once.
pub fn input_conflict(state: &InputState, len: usize, eof: bool) -> Option<String> {
    if !state.interactive {
        return Some("execution is not interactive".into());
    }
    if state.terminal {
        return Some("execution has finished".into());
    }
    if state.eof {
        return Some("stdin already closed".into());
    }
    if len == 0 && !eof {
        return Some("empty stdin chunk".into());
    }
    if state.chunks >= MAX_INPUT_CHUNKS {
        return Some(format!("stdin exceeds {MAX_INPUT_CHUNKS} chunks"));
    }
    let total = state
        .bytes
        .saturating_add(u64::try_from(len).unwrap_or(u64::MAX));
    (total > MAX_INPUT_BYTES).then(|| format!("stdin exceeds {MAX_INPUT_BYTES} bytes"))
}

/// What [`input_conflict`] decides from, read by a backend inside its append transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputState {
    /// Enqueued with `interactive = true`.
    pub interactive: bool,
    /// The status is terminal.
    pub terminal: bool,
    /// A chunk with `eof` exists.
    pub eof: bool,
    /// Bytes appended so far.
    pub bytes: u64,
    /// Chunks appended so far.
    pub chunks: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_in_order() {
        let open = InputState {
            interactive: true,
            ..InputState::default()
        };
        assert_eq!(input_conflict(&open, 10, false), None);
        assert!(
            input_conflict(&InputState::default(), 0, true)
                .is_some_and(|m| m.contains("not interactive"))
        );
        let done = InputState {
            terminal: true,
            ..open
        };
        assert!(input_conflict(&done, 0, true).is_some_and(|m| m.contains("finished")));
        let eof = InputState { eof: true, ..open };
        assert!(input_conflict(&eof, 0, true).is_some_and(|m| m.contains("closed")));
        let full = InputState {
            bytes: MAX_INPUT_BYTES - 1,
            ..open
        };
        assert_eq!(input_conflict(&full, 1, false), None);
        assert!(input_conflict(&full, 2, false).is_some_and(|m| m.contains("exceeds")));
        assert!(input_conflict(&open, 0, false).is_some_and(|m| m.contains("empty")));
        assert_eq!(input_conflict(&open, 0, true), None, "a bare EOF");
        let many = InputState {
            chunks: MAX_INPUT_CHUNKS,
            ..open
        };
        assert!(input_conflict(&many, 1, false).is_some_and(|m| m.contains("chunks")));
    }
}
