//! Retention of CI jobs, workflows and git hook deliveries: batched, idempotent deletes of
//! what finished (or arrived) before a cutoff.
//!
//! Every method deletes at most `limit` top-level rows in ONE transaction, together with
//! everything they own, and answers how many top-level rows it deleted; a caller loops until
//! a batch comes back short. The conditions are re-checked by the deleting statement itself,
//! so several nodes may run the same cleaner at once: a row is deleted exactly once, and a
//! job or workflow that is requeued or rerun in the meantime is left alone.
//!
//! - A standalone job (no workflow) owns its secrets, steps, events, artifacts and blobs (the
//!   uploaded source tarball and the collected artifact bytes).
//! - A workflow owns its nodes, secrets, applied triggers and every job it started (each with
//!   what that job owns). A workflow's job is only ever deleted with its workflow, never by
//!   the job rule, so a workflow's graph never points at a missing job.
//! - A hook delivery is also the duplicate guard of `POST /hooks/{source}`: once deleted, a
//!   redelivery of the same event (same delivery id or same signed body) starts workflows
//!   again.

use voidrunner_domain::Timestamp;

use crate::StoreResult;

/// Deletes old CI history; see the module docs.
#[async_trait::async_trait]
pub trait RetentionStore {
    /// Deletes up to `limit` standalone jobs (no workflow) that are finished (`succeeded`,
    /// `failed`, `cancelled`) with `finished_at < finished_before`, oldest first, with their
    /// secrets, steps, events, artifacts and blobs. Queued and running jobs are never
    /// deleted. Answers how many jobs it deleted.
    async fn purge_jobs(&self, finished_before: Timestamp, limit: u32) -> StoreResult<u64>;

    /// Deletes up to `limit` finished workflows (any status but `running`) with
    /// `finished_at < finished_before`, oldest first, with their nodes, secrets, triggers and
    /// jobs (and what those jobs own). A workflow with a job still queued or running is kept.
    /// Answers how many workflows it deleted.
    async fn purge_workflows(&self, finished_before: Timestamp, limit: u32) -> StoreResult<u64>;

    /// Deletes up to `limit` hook deliveries with `received_at < received_before`, oldest
    /// first. Answers how many it deleted.
    async fn purge_hook_deliveries(
        &self,
        received_before: Timestamp,
        limit: u32,
    ) -> StoreResult<u64>;
}
