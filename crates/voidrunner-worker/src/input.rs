//! Stdin of interactive executions: the worker running one follows its input in the store
//! (any API node may have appended it) and forwards it to the executor, in seq order, once.
//!
//! "Subscribe, then read, then wait": the input-signal receiver is taken before each read, so
//! an append between the read and the wait still wakes the loop; a lagged receiver or a
//! missed cross-process notification is covered by a polling fallback.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use voidrunner_domain::ExecutionId;

use crate::pool::Queue;
use crate::streak::ErrorStreak;

/// Chunks read per store round trip.
const PAGE: u32 = 64;
/// Longest wait without a signal before reading again.
const POLL_FALLBACK: Duration = Duration::from_secs(1);

/// Counts the stdin chunks handed to the program, so the output writer can send the answer
/// to an input at once instead of waiting out its batching period.
#[derive(Debug, Default)]
pub(crate) struct InputMark(AtomicU64);

impl InputMark {
    /// One more chunk was forwarded.
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Chunks forwarded so far.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Forwards execution `id`'s input to `to` until EOF (then drops `to`: the program's stdin
/// closes) or until the executor stops listening; bumps `mark` per forwarded chunk.
pub(crate) async fn forward(
    store: &Queue,
    id: ExecutionId,
    to: mpsc::Sender<Vec<u8>>,
    mark: &InputMark,
) {
    let mut signals = store.queue_signals().subscribe_input();
    let mut after = 0u64;
    let mut streak = ErrorStreak::new("read_input");
    loop {
        // Re-subscribing drops stale signals; one taken before the read covers the gap.
        signals = signals.resubscribe();
        let full_page = match store.read_input(id, after, PAGE).await {
            Ok(chunks) => {
                streak.recovered();
                let full_page = chunks.len() == PAGE as usize;
                for chunk in chunks {
                    after = chunk.seq;
                    if !chunk.data.is_empty() {
                        if to.send(chunk.data).await.is_err() {
                            return;
                        }
                        mark.bump();
                    }
                    if chunk.eof {
                        tracing::debug!("execution {id}: stdin closed by the client");
                        return;
                    }
                }
                full_page
            }
            Err(e) => {
                let wait = streak.failed(&e);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = to.closed() => return,
                }
                continue;
            }
        };
        if full_page {
            continue;
        }
        tokio::select! {
            () = signalled(&mut signals, id) => {}
            () = tokio::time::sleep(POLL_FALLBACK) => {}
            () = to.closed() => return,
        }
    }
}

/// Returns when a signal names `id` (or the receiver lagged: re-read to be safe).
async fn signalled(signals: &mut broadcast::Receiver<ExecutionId>, id: ExecutionId) {
    loop {
        match signals.recv().await {
            Ok(got) if got == id => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}
