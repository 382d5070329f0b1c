//! Live output of a run into the execution's event log: every chunk is masked first
//! ([`Masking`], before the cap), then the part the capture keeps is coalesced with its neighbours of the
//! same stream, and is appended in batches under the lease: at most one write per
//! [`FLUSH_AFTER`], or earlier when [`FLUSH_BYTES`] are buffered. Output arriving after a
//! quiet period is written at once when it ends a line (else after at most [`LINGER`], the
//! rest of a line usually follows at once), so sparse output streams with no added delay;
//! chatty output is gathered until the period since the last write is over. Never one write
//! per line.
//!
//! A failed append keeps its chunks and retries at the next flush (the buffer is bounded by
//! the execution's output cap, which the capture already enforces). A lost lease stops the
//! writer: a stale worker writes nothing more.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use voidrunner_exec::{OutputEvent, OutputStream, Phase};
use voidrunner_store::{AppendOutcome, Lease, LogChunk, LogStream};

use crate::input::InputMark;
use crate::masking::Masking;
use crate::outcome::OutputCapture;
use crate::pool::Queue;

/// Flush when this many bytes are buffered.
pub(crate) const FLUSH_BYTES: usize = 64 * 1024;
/// At most one write per this period (unless [`FLUSH_BYTES`] are buffered).
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(50);
/// How long a partial line waits for its end after a quiet period before it is written.
pub(crate) const LINGER: Duration = Duration::from_millis(5);

/// Which log stream an executor event belongs to.
fn stream_of(phase: Phase, stream: OutputStream) -> LogStream {
    match (phase, stream) {
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
    /// Interactive runs: stdin forwarded so far, and the count last seen.
    input: Option<(&'a InputMark, u64)>,
}

impl<'a> LogWriter<'a> {
    pub(crate) fn new(store: &'a Queue, lease: &'a Lease) -> Self {
        Self {
            store,
            lease,
            pending: Vec::new(),
            pending_bytes: 0,
            lost: false,
            input: None,
        }
    }

    /// Output that follows new stdin is an answer: write it without waiting for the batching
    /// period (an interactive program's prompt and reply should not lag by it).
    pub(crate) fn answering(mut self, mark: &'a InputMark) -> Self {
        self.input = Some((mark, mark.get()));
        self
    }

    /// Stdin was forwarded since the last call.
    fn new_input(&mut self) -> bool {
        match &mut self.input {
            Some((mark, seen)) if mark.get() != *seen => {
                *seen = mark.get();
                true
            }
            _ => false,
        }
    }

    /// Buffers a chunk (already masked), coalescing it with the previous one of the same
    /// stream.
    pub(crate) fn push(&mut self, stream: LogStream, data: &[u8]) {
        if data.is_empty() || self.lost {
            return;
        }
        self.pending_bytes += data.len();
        match self.pending.last_mut() {
            Some(last) if last.stream == stream => last.data.extend_from_slice(data),
            _ => self.pending.push(LogChunk {
                stream,
                data: data.to_vec(),
            }),
        }
    }

    /// Something is buffered.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The buffered output ends with a complete line.
    pub(crate) fn ends_line(&self) -> bool {
        self.pending.last().is_some_and(|c| c.data.ends_with(b"\n"))
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

/// Collects output events until the executor drops its sender: each chunk masked, then a
/// capped capture for the result, and the kept part of every chunk into the event log in
/// batches. The maskers' held tails are added when the output ends, and the last batch is
/// flushed before this returns, so it precedes the terminal status event.
pub(crate) async fn capture(
    mut rx: mpsc::Receiver<OutputEvent>,
    cap_bytes: u64,
    mut masking: Masking,
    mut log: LogWriter<'_>,
) -> OutputCapture {
    let mut capture = OutputCapture::new(cap_bytes);
    // When the next write may happen (`None` before the first write), and when the pending
    // chunks must be written at the latest.
    let mut next_write: Option<Instant> = None;
    let mut deadline: Option<Instant> = None;
    loop {
        let event = match deadline {
            Some(at) => match tokio::time::timeout_at(at, rx.recv()).await {
                Ok(event) => event,
                Err(_) => {
                    log.flush().await;
                    next_write = Some(Instant::now() + FLUSH_AFTER);
                    deadline = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(event) = event else { break };
        let masked = masking.push(event.phase, event.stream, &event.data);
        let kept = capture.push_data(event.phase, event.stream, &masked);
        log.push(stream_of(event.phase, event.stream), &masked[..kept]);
        if !log.has_pending() {
            continue;
        }
        let now = Instant::now();
        let due = next_write.is_none_or(|at| now >= at) | log.new_input();
        if log.full() || (due && log.ends_line()) {
            log.flush().await;
            next_write = Some(Instant::now() + FLUSH_AFTER);
            deadline = None;
        } else if due {
            // A partial line after a quiet period: the rest usually follows within
            // microseconds (a program's `print` may be two writes), so wait a moment for it.
            deadline = Some(deadline.map_or(now + LINGER, |d| d.min(now + LINGER)));
        } else {
            deadline = next_write;
        }
    }
    for (phase, stream, tail) in masking.finish() {
        let kept = capture.push_data(phase, stream, &tail);
        log.push(stream_of(phase, stream), &tail[..kept]);
    }
    log.flush().await;
    if log.has_pending() {
        // One more try for the tail; after that the stored result still has the output.
        log.flush().await;
    }
    capture
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use voidrunner_store::conformance::{claim, create_user, new_execution};
    use voidrunner_store::{ExecutionStore, LogStore};

    use super::*;

    fn out(stream: OutputStream, data: &[u8]) -> OutputEvent {
        OutputEvent {
            stream,
            data: Bytes::copy_from_slice(data),
            elapsed: Duration::ZERO,
            phase: Phase::Run,
        }
    }

    /// 1,000 lines written at once become a handful of rows, in order, cut at the cap exactly
    /// where the result's capture cuts; the last batch is stored before `capture` returns.
    #[tokio::test]
    async fn chatty_output_is_batched_in_order_and_capped() {
        let (store, _dir) = voidrunner_store_sqlite::testing::fresh_store().await;
        let owner = create_user(&store, "batch@example.com").await;
        let e = store
            .enqueue_execution(new_execution(owner.id, None, 5, voidrunner_store::now()))
            .await
            .expect("enqueue");
        let running = claim(&store, "w", voidrunner_store::now())
            .await
            .expect("claim");
        let lease = Lease::of(&running).expect("lease");
        let (tx, rx) = mpsc::channel(2000);
        let mut written = Vec::new();
        for i in 0..1000 {
            let line = format!("line {i:04}\n");
            written.extend_from_slice(line.as_bytes());
            tx.send(out(OutputStream::Stdout, line.as_bytes()))
                .await
                .expect("send");
        }
        tx.send(out(OutputStream::Stderr, b"tail"))
            .await
            .expect("send");
        drop(tx);
        let cap = 5000;
        let captured = capture(rx, cap, Masking::new([]), LogWriter::new(&store, &lease))
            .await
            .finish(false);
        assert!(captured.truncated);
        let log = store.read_logs(e.id, 0, 10_000).await.expect("read");
        let chunks: Vec<_> = log
            .iter()
            .filter(|e| e.stream != LogStream::Status)
            .collect();
        assert!(
            chunks.len() <= 10,
            "batched, not one write per line: {} rows",
            chunks.len()
        );
        assert!(chunks.iter().all(|c| c.stream == LogStream::Stdout));
        let stored: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(stored, written[..5000], "capped like the result");
        assert_eq!(captured.stdout.as_bytes(), &written[..5000]);
    }

    /// A stale lease stores nothing.
    #[tokio::test]
    async fn a_lost_lease_stores_nothing() {
        let (store, _dir) = voidrunner_store_sqlite::testing::fresh_store().await;
        let owner = create_user(&store, "stale@example.com").await;
        let e = store
            .enqueue_execution(new_execution(owner.id, None, 5, voidrunner_store::now()))
            .await
            .expect("enqueue");
        let running = claim(&store, "w", voidrunner_store::now())
            .await
            .expect("claim");
        let mut lease = Lease::of(&running).expect("lease");
        lease.worker_id = "someone-else".into();
        let (tx, rx) = mpsc::channel(4);
        tx.send(out(OutputStream::Stdout, b"x"))
            .await
            .expect("send");
        drop(tx);
        capture(rx, 100, Masking::new([]), LogWriter::new(&store, &lease)).await;
        let log = store.read_logs(e.id, 0, 100).await.expect("read");
        assert!(log.iter().all(|e| e.stream == LogStream::Status));
    }
}
