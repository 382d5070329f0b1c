//! The `Executor` trait: the one seam between the worker pool and whatever runs code.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::types::{ExecOutcome, ExecRequest, OutputEvent};

/// Runs one execution to its end. Implemented by the native sandbox executor and, later, by the
/// Docker executor, so the worker pool holds an `Arc<dyn Executor>` and never knows which.
///
/// Contract shared by every implementation:
/// - never panics and never returns an error type: every failure is an [`ExecOutcome`], with
///   `Verdict::SandboxError` reserved for infrastructure failures (which the queue retries);
/// - output is sent on `output` as it is produced, compile phase first; a closed receiver is
///   not an error (the output is then dropped, the program still runs to its end);
/// - cancelling `cancel` kills whatever runs (every process) and yields `Verdict::Cancelled`;
/// - the function returns only once nothing of the execution is left running.
#[async_trait::async_trait]
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Runs `req` and reports its outcome.
    async fn execute(
        &self,
        req: ExecRequest,
        output: mpsc::Sender<OutputEvent>,
        cancel: CancellationToken,
    ) -> ExecOutcome;
}
