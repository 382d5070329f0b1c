//! Running one claimed execution: the executor, with three watchers beside it (heartbeat,
//! cancel signals, pool shutdown) that may cancel it, then the result written exactly once —
//! or nothing written when the lease was lost.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use voidrunner_domain::{Execution, ExecutionId, Timestamp, Verdict};
use voidrunner_exec::{ExecRequest, Phase, StdinStream};
use voidrunner_store::{
    CompleteOutcome, ExecutionResult, Lease, LeaseStatus, ReleaseOutcome, ReleaseReason,
};

use crate::input::InputMark;
use crate::logs::LogWriter;
use crate::masking::Masking;
use crate::outcome::{Disposition, disposition};
use crate::pool::{Counters, Shared};
use crate::streak::ErrorStreak;

/// Output chunks buffered between the executor and the capture.
const OUTPUT_CHANNEL: usize = 64;
/// Stdin chunks buffered between the input follower and the executor (interactive runs).
const STDIN_CHANNEL: usize = 16;

/// Why a run was cancelled by the worker (not by the program itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopCause {
    /// A user asked to cancel: the `Cancelled` verdict is the result.
    UserCancel,
    /// The pool is shutting down: give the execution back, no result.
    Shutdown,
    /// Someone else owns the execution now: write nothing.
    LeaseLost,
}

/// The first reason wins, except that a lost lease overrides everything (nothing may be
/// written then, whatever else happened).
#[derive(Debug, Default)]
struct Stop(Mutex<Option<StopCause>>);

impl Stop {
    fn set(&self, cause: StopCause, token: &CancellationToken) {
        if let Ok(mut c) = self.0.lock()
            && (c.is_none() || cause == StopCause::LeaseLost)
        {
            *c = Some(cause);
        }
        token.cancel();
    }

    fn get(&self) -> Option<StopCause> {
        self.0.lock().ok().and_then(|c| *c)
    }
}

/// One claimed execution and what watches it.
struct Run<'a> {
    shared: &'a Shared,
    lease: Lease,
    token: CancellationToken,
    stop: Stop,
    /// Asks the heartbeat loop for an immediate heartbeat (the cancel receiver lagged).
    poke: Notify,
}

/// The lease a claim produced (the row names its owner; the claimer's id otherwise).
pub(crate) fn lease_of(execution: &Execution, worker_id: &str) -> Lease {
    Lease::of(execution).unwrap_or_else(|| Lease {
        execution_id: execution.id,
        worker_id: worker_id.to_owned(),
        attempt: execution.attempt,
    })
}

/// Runs a claimed execution to its end and records the outcome.
pub(crate) async fn run_claimed(
    shared: Arc<Shared>,
    lease: Lease,
    execution: Execution,
    cancels: broadcast::Receiver<ExecutionId>,
) {
    let span = span(&lease);
    if let Some(id) = &execution.request_id {
        span.record("request_id", id.as_str());
    }
    let run = Run::new(&shared, lease);
    run.run(execution, cancels).instrument(span).await;
}

/// Gives back an execution whose run task panicked (a bug): an infrastructure failure,
/// retried with backoff like a sandbox error.
pub(crate) async fn release_after_panic(shared: &Shared, lease: Lease, error: String) {
    let span = span(&lease);
    let run = Run::new(shared, lease);
    run.retry_later(format!("worker task failed: {error}"))
        .instrument(span)
        .await;
}

fn span(lease: &Lease) -> tracing::Span {
    tracing::info_span!(
        "execution",
        execution.id = %lease.execution_id,
        execution.attempt = lease.attempt,
        worker.id = %lease.worker_id,
        request_id = tracing::field::Empty,
    )
}

impl<'a> Run<'a> {
    fn new(shared: &'a Shared, lease: Lease) -> Self {
        Run {
            shared,
            lease,
            token: CancellationToken::new(),
            stop: Stop::default(),
            poke: Notify::new(),
        }
    }
}

impl Run<'_> {
    async fn run(&self, execution: Execution, cancels: broadcast::Receiver<ExecutionId>) {
        let id = execution.id;
        tracing::debug!(execution.language = %execution.language, "execution {id} claimed");
        if execution.cancel_requested_at.is_some() {
            self.stop.set(StopCause::UserCancel, &self.token);
        }
        let cap = execution.limits.max_output_bytes;
        let secrets = match crate::masking::task_secrets(self.shared, &execution).await {
            Ok(secrets) => secrets,
            Err(error) => return self.retry_later(error).await,
        };
        let masking = Masking::for_run(&execution.env, &secrets, &self.shared.config);
        let mut env = execution.env;
        for (name, value) in &secrets {
            // Values are UTF-8 (the API takes them as JSON strings).
            env.insert(name.clone(), String::from_utf8_lossy(value).into_owned());
        }
        let (stdin_tx, stdin_stream) = if execution.interactive {
            let (tx, rx) = mpsc::channel(STDIN_CHANNEL);
            (Some(tx), Some(StdinStream::new(rx)))
        } else {
            (None, None)
        };
        let req = ExecRequest {
            language: execution.language,
            code: execution.code,
            stdin: execution.stdin.map(String::into_bytes),
            env,
            limits: execution.limits,
            stdin_stream,
        };
        let (tx, rx) = mpsc::channel(OUTPUT_CHANNEL);
        let mark = InputMark::default();
        let input = async {
            if let Some(to) = stdin_tx {
                crate::input::forward(&*self.shared.store, id, to, &mark).await;
            }
        };
        let log = LogWriter::new(&*self.shared.store, &self.lease).answering(&mark);
        let execute = async {
            let (outcome, capture, ()) = tokio::join!(
                self.shared.executor.execute(req, tx, self.token.clone()),
                crate::logs::capture(rx, cap, masking, log),
                input,
            );
            (outcome, capture)
        };
        let (outcome, capture) = tokio::select! {
            biased;
            done = execute => done,
            never = self.watch(cancels) => match never {},
        };
        let finished_at = voidrunner_store::now();
        let output = capture.finish(outcome.phase(Phase::Compile).is_some());
        match self.stop.get() {
            Some(StopCause::LeaseLost) => {
                Counters::bump(&self.shared.stats.lease_lost);
                tracing::warn!(execution.verdict = ?outcome.verdict, "execution {id}: lease lost while running; its result is dropped");
                return;
            }
            Some(StopCause::Shutdown) if outcome.verdict == Verdict::Cancelled => {
                self.release(ReleaseReason::Shutdown).await;
                return;
            }
            _ => {}
        }
        match disposition(&outcome, output, finished_at) {
            Disposition::Complete(result) => self.complete(*result).await,
            Disposition::Retry { error } => self.retry_later(error).await,
        }
    }

    /// Gives the execution back after an infrastructure failure, to be retried after the
    /// backoff of this attempt.
    async fn retry_later(&self, error: String) {
        let delay = voidrunner_store::backoff(
            &self.shared.retry,
            self.lease.attempt,
            rand::random::<f64>(),
        );
        tracing::warn!(error = %error, retry_in_ms = millis(delay), "execution {}: infrastructure failure, giving it back for a retry: {error}", self.lease.execution_id);
        let retry_at = after(voidrunner_store::now(), delay);
        if self
            .release(ReleaseReason::Failure { error, retry_at })
            .await
            == Some(ReleaseOutcome::Requeued)
        {
            // Nobody signals when a backoff runs out: wake this node's claimer then, rather
            // than at its next fallback poll.
            let store = Arc::clone(&self.shared.store);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                store.queue_signals().notify_work();
            });
        }
    }

    /// The watchers; never returns (the executor's end stops them).
    async fn watch(&self, cancels: broadcast::Receiver<ExecutionId>) -> Infallible {
        let shutdown = async {
            self.shared.abort_running.cancelled().await;
            self.stop.set(StopCause::Shutdown, &self.token);
            std::future::pending::<Infallible>().await
        };
        tokio::select! {
            never = self.heartbeat_loop() => never,
            never = self.cancel_listener(cancels) => never,
            never = shutdown => never,
        }
    }

    /// Extends the lease every heartbeat interval (or at once when poked); a heartbeat also
    /// reports cancel requests, the fallback when cancel signals were missed.
    async fn heartbeat_loop(&self) -> Infallible {
        let period = self.shared.config.heartbeat_interval();
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut streak = ErrorStreak::new("heartbeat");
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.poke.notified() => {}
            }
            let until = after(voidrunner_store::now(), self.shared.config.lease());
            match self.shared.store.heartbeat(&self.lease, until).await {
                Ok(LeaseStatus::Held { cancel_requested }) => {
                    streak.recovered();
                    if cancel_requested && !self.token.is_cancelled() {
                        tracing::info!(
                            "execution {}: cancel requested (seen by heartbeat)",
                            self.lease.execution_id
                        );
                        self.stop.set(StopCause::UserCancel, &self.token);
                    }
                }
                Ok(LeaseStatus::Lost) => {
                    self.stop.set(StopCause::LeaseLost, &self.token);
                    return std::future::pending().await;
                }
                Err(e) => {
                    Counters::bump(&self.shared.stats.store_errors);
                    streak.failed(&e);
                }
            }
        }
    }

    /// Cancels at once when a cancel signal names this execution; a lagged receiver asks
    /// for an immediate heartbeat instead, which reports the cancel request too.
    async fn cancel_listener(&self, mut cancels: broadcast::Receiver<ExecutionId>) -> Infallible {
        let me = self.lease.execution_id;
        loop {
            match cancels.recv().await {
                Ok(id) if id == me => {
                    tracing::info!("execution {me}: cancel requested");
                    self.stop.set(StopCause::UserCancel, &self.token);
                    return std::future::pending().await;
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => self.poke.notify_one(),
                Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
            }
        }
    }

    /// Records the result; retries store errors while the lease may still be ours.
    async fn complete(&self, result: ExecutionResult) {
        let id = self.lease.execution_id;
        let verdict = result.verdict.clone();
        let outcome = self
            .retrying("complete_execution", || {
                self.shared
                    .store
                    .complete_execution(&self.lease, result.clone())
            })
            .await;
        match outcome {
            Some(CompleteOutcome::Completed(row)) => {
                Counters::bump(&self.shared.stats.completed);
                crate::metrics::finished(self.shared, &row);
                tracing::info!(execution.status = row.status.as_str(), execution.verdict = ?verdict, "execution {id} finished: {}", row.status.as_str());
            }
            Some(CompleteOutcome::LeaseLost) => {
                Counters::bump(&self.shared.stats.lease_lost);
                tracing::warn!(execution.verdict = ?verdict, "execution {id}: lease lost before its result was written; nothing recorded");
            }
            None => {}
        }
    }

    /// Gives the execution back; retries store errors while the lease may still be ours.
    /// `None` when the store kept failing.
    async fn release(&self, reason: ReleaseReason) -> Option<ReleaseOutcome> {
        let id = self.lease.execution_id;
        let shutdown = reason == ReleaseReason::Shutdown;
        let outcome = self
            .retrying("release_execution", || {
                self.shared.store.release_execution(
                    &self.lease,
                    reason.clone(),
                    voidrunner_store::now(),
                )
            })
            .await;
        let stats = &self.shared.stats;
        crate::metrics::released(self.shared, outcome.as_ref(), shutdown);
        match outcome {
            Some(ReleaseOutcome::Requeued) if shutdown => {
                Counters::bump(&stats.released_on_shutdown);
                if let Ok(mut l) = self.shared.released.lock() {
                    l.push(id);
                }
                tracing::info!("execution {id} given back to the queue (shutdown)");
            }
            Some(ReleaseOutcome::Requeued) => Counters::bump(&stats.retried),
            Some(ReleaseOutcome::Cancelled) => {
                tracing::info!("execution {id} finished as cancelled (a cancel was requested)");
            }
            Some(ReleaseOutcome::DeadLettered) => {
                Counters::bump(&stats.dead_lettered);
                tracing::warn!("execution {id} dead-lettered: attempts used up");
            }
            Some(ReleaseOutcome::LeaseLost) => {
                Counters::bump(&stats.lease_lost);
                tracing::warn!("execution {id}: lease lost before it was given back");
            }
            None if shutdown => {
                if let Ok(mut l) = self.shared.left_to_reaper.lock() {
                    l.push(id);
                }
            }
            None => {}
        }
        outcome
    }

    /// Calls `op` until it succeeds or the lease has surely expired (then a reaper re-queues
    /// the execution and whatever we would write is stale anyway).
    async fn retrying<T, F, Fut>(&self, what: &'static str, mut op: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = voidrunner_store::StoreResult<T>>,
    {
        let deadline = Instant::now() + self.shared.config.lease();
        let mut streak = ErrorStreak::new(what);
        loop {
            match op().await {
                Ok(v) => {
                    streak.recovered();
                    return Some(v);
                }
                Err(e) => {
                    Counters::bump(&self.shared.stats.store_errors);
                    let wait = streak.failed(&e);
                    if Instant::now() + wait >= deadline {
                        tracing::error!(error = %e, "execution {}: {what} kept failing until the lease ran out; a reaper will re-queue it", self.lease.execution_id);
                        return None;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// `now + d`, at the stores' microsecond precision.
pub(crate) fn after(now: Timestamp, d: Duration) -> Timestamp {
    let delta = chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
    voidrunner_store::truncate_to_micros(now.checked_add_signed(delta).unwrap_or(now))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
