//! Live output of a run into the execution's event log: every chunk the capture keeps goes
//! through [`mask`] (the one place masking hooks in), is coalesced with its neighbours of the
//! same stream, and is appended in batches under the lease — when [`FLUSH_BYTES`] are
//! buffered or [`FLUSH_AFTER`] after the first buffered chunk, never one write per line.
//!
//! A failed append keeps its chunks and retries at the next flush (the buffer is bounded by
//! the execution's output cap, which the capture already enforces). A lost lease stops the
//! writer: a stale worker writes nothing more.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use voidrunner_exec::{OutputEvent, OutputStream, Phase};
use voidrunner_store::{AppendOutcome, Lease, LogChunk, LogStream};

use crate::outcome::OutputCapture;
use crate::pool::Queue;

/// Flush when this many bytes are buffered.
pub(crate) const FLUSH_BYTES: usize = 64 * 1024;
/// Flush at the latest this long after the first chunk of a batch was buffered.
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(50);

/// The masking hook: every chunk passes through here before it is stored or published.
/// Identity for now; the masking crate (`voidrunner-mask`) plugs in here, with per-run
/// state so secrets split across chunks are caught.
pub(crate) fn mask(chunk: LogChunk) -> LogChunk {
    chunk
}

/// Which log stream an executor event belongs to.
fn stream_of(event: &OutputEvent) -> LogStream {
    match (event.phase, event.stream) {
        (Phase::Compile, _) => LogStream::Compile,
        (Phase::Run, OutputStream::Stdout) => LogStream::Stdout,
        (Phase::Run, OutputStream::Stderr) => LogStream::Stderr,
    }
}

/// Batches chunks and appends them under the lease.
pub(crate) struct LogWriter<'a> {
    store: &'a Queue,
    lease: &'a Lease,
    pending: Vec<LogChunk>,
    pending_bytes: usize,
    lost: bool,
}

impl<'a> LogWriter<'a> {
    pub(crate) fn new(store: &'a Queue, lease: &'a Lease) -> Self {
        Self {
            store,
            lease,
            pending: Vec::new(),
            pending_bytes: 0,
            lost: false,
        }
    }

    /// Buffers a chunk (masked), coalescing it with the previous one of the same stream.
    pub(crate) fn push(&mut self, stream: LogStream, data: &[u8]) {
        if data.is_empty() || self.lost {
            return;
        }
        let chunk = mask(LogChunk {
            stream,
            data: data.to_vec(),
        });
        self.pending_bytes += chunk.data.len();
        match self.pending.last_mut() {
            Some(last) if last.stream == chunk.stream => last.data.extend_from_slice(&chunk.data),
            _ => self.pending.push(chunk),
        }
    }

    /// Something is buffered.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The buffer is big enough to flush now.
    pub(crate) fn full(&self) -> bool {
        self.pending_bytes >= FLUSH_BYTES
    }

    /// Appends what is buffered; keeps it on a store error (retried at the next flush).
    pub(crate) async fn flush(&mut self) {
        if self.pending.is_empty() || self.lost {
            return;
        }
        match self
            .store
            .append_logs(self.lease, &self.pending, voidrunner_store::now())
            .await
        {
            Ok(AppendOutcome::Appended { .. }) => {
                self.pending.clear();
                self.pending_bytes = 0;
            }
            Ok(AppendOutcome::LeaseLost) => {
                tracing::debug!(
                    "execution {}: lease lost, output no longer logged",
                    self.lease.execution_id
                );
                self.lost = true;
                self.pending.clear();
            }
            Err(e) => {
                tracing::warn!(error = %e, "execution {}: storing output failed, retrying at the next flush: {e}", self.lease.execution_id);
            }
        }
    }
}

/// Collects output events until the executor drops its sender: capped capture for the
/// result, and the kept part of every chunk into the event log in batches. The last batch is
/// flushed before this returns, so it precedes the terminal status event.
pub(crate) async fn capture(
    mut rx: mpsc::Receiver<OutputEvent>,
    cap_bytes: u64,
    store: &Queue,
    lease: &Lease,
) -> OutputCapture {
    let mut capture = OutputCapture::new(cap_bytes);
    let mut log = LogWriter::new(store, lease);
    let mut deadline: Option<Instant> = None;
    loop {
        let event = match deadline {
            Some(at) => match tokio::time::timeout_at(at, rx.recv()).await {
                Ok(event) => event,
                Err(_) => {
                    log.flush().await;
                    deadline = log.has_pending().then(|| Instant::now() + FLUSH_AFTER);
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(event) = event else { break };
        let kept = capture.push(&event);
        log.push(stream_of(&event), &event.data[..kept]);
        if log.full() {
            log.flush().await;
        }
        deadline = match (log.has_pending(), deadline) {
            (false, _) => None,
            (true, Some(at)) => Some(at),
            (true, None) => Some(Instant::now() + FLUSH_AFTER),
        };
    }
    log.flush().await;
    if log.has_pending() {
        // One more try for the tail; after that the stored result still has the output.
        log.flush().await;
    }
    capture
}
