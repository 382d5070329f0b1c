//! The event log of an execution: one ordered sequence per execution of status transitions
//! and output chunks, each with a per-execution `seq` (1, 2, 3, …) that is the SSE event id.
//!
//! Who allocates `seq` (every backend):
//! - Status events are written by the database itself (a trigger on `executions.status`), in
//!   the same transaction as the status change, whatever path changed it (enqueue, claim,
//!   complete, release, reaper, cancel, dead-letter requeue). Their `data` is a JSON summary
//!   (`status`, `attempt`, and once terminal the verdict and measurements).
//! - Output chunks are appended by the worker in batches ([`LogStore::append_logs`]), in one
//!   transaction that first checks the lease (and on PostgreSQL locks the execution row, the
//!   same lock every status change takes), so `max(seq) + 1` never races a status event and
//!   a stale worker appends nothing.
//! - Because the worker flushes its last batch before `complete_execution`, the terminal
//!   status event is always the last event of an execution.
//!
//! Retries: chunks carry the `attempt` that produced them. A failed attempt's chunks stay in
//! the log, followed by its `queued` status event (the reset marker) and the next `running`
//! event; readers of "the output" take only the chunks of the execution's current attempt.
//!
//! After each commit the backend signals `(execution_id, last_seq)` through
//! [`crate::QueueSignals::notify_log`] (on PostgreSQL through `NOTIFY`, so every process
//! hears it). Signals are hints: subscribers always re-read `seq > last_seen` from the store.

use voidrunner_domain::{ExecutionId, Timestamp};

use crate::{Lease, StoreResult};

/// What an event of the log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// Program standard output.
    Stdout,
    /// Program standard error.
    Stderr,
    /// Compiler output (stdout and stderr of the compile phase).
    Compile,
    /// A status transition; `data` is a JSON object.
    Status,
}

impl LogStream {
    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::Compile => "compile",
            LogStream::Status => "status",
        }
    }

    /// Parses a stored name; `None` for kinds this version does not know.
    pub fn parse(s: &str) -> Option<LogStream> {
        Some(match s {
            "stdout" => LogStream::Stdout,
            "stderr" => LogStream::Stderr,
            "compile" => LogStream::Compile,
            "status" => LogStream::Status,
            _ => return None,
        })
    }
}

/// A chunk of output to append (already capped and masked by the worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// `Stdout`, `Stderr` or `Compile` (never `Status`: the store writes those).
    pub stream: LogStream,
    /// Raw bytes as the program wrote them.
    pub data: Vec<u8>,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// Position in the execution's log, from 1.
    pub seq: u64,
    /// The attempt that produced it.
    pub attempt: u32,
    /// Kind.
    pub stream: LogStream,
    /// Output bytes, or the JSON of a status event.
    pub data: Vec<u8>,
    /// When it was stored.
    pub created_at: Timestamp,
}

/// `append_logs` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Stored; `last_seq` is the seq of the last appended chunk.
    Appended {
        /// Highest seq now in the log.
        last_seq: u64,
    },
    /// The lease is no longer held: nothing was written.
    LeaseLost,
}

/// The per-execution event log.
#[async_trait::async_trait]
pub trait LogStore {
    /// Appends `chunks` in order, in one transaction, if `lease` is still held (the
    /// execution is `running` with that owner and attempt); then signals `notify_log`.
    /// An empty slice is a no-op answering the current last seq.
    async fn append_logs(
        &self,
        lease: &Lease,
        chunks: &[LogChunk],
        now: Timestamp,
    ) -> StoreResult<AppendOutcome>;

    /// Events with `seq > after`, in seq order, at most `limit`. Not scoped: callers check
    /// access with `get_execution` first (an unknown id reads as empty).
    async fn read_logs(
        &self,
        id: ExecutionId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<LogEvent>>;
}

/// A log signal: events up to `last_seq` of `execution_id` are committed (`last_seq` 0 means
/// "something changed, re-read").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSignal {
    /// The execution.
    pub execution_id: ExecutionId,
    /// Highest committed seq known to the sender (0 = unknown).
    pub last_seq: u64,
}
