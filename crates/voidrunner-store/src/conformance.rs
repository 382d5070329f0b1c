//! The backend conformance suite: one set of behavioural tests every backend must pass.
//!
//! A backend crate runs the whole suite with one line in its integration tests:
//!
//! ```ignore
//! voidrunner_store::conformance_tests!(async {
//!     Some(voidrunner_store_sqlite::testing::fresh_store().await)
//! });
//! ```
//!
//! The expression is evaluated once per test and yields `Option<(store, guard)>`: `None` skips
//! the test (e.g. PostgreSQL not configured), the guard is kept alive for the test's duration
//! (e.g. a temporary directory). The store must implement [`TestHooks`] as well as
//! [`Store`](crate::Store) and be `Clone` (concurrency cases share it across tasks).

mod archive;
mod auth;
pub mod bench;
mod executions;
mod filters;
mod input;
mod job_blobs;
mod jobs;
mod leases;
mod load;
mod logs;
mod paging;
mod queue;
mod repos;
mod retention;
mod secrets;
mod stats;
mod statuses;
mod tasks;
mod users;
mod webhooks;
mod workflows;

pub use archive::*;
pub use auth::*;
pub use executions::*;
pub use filters::*;
pub use input::*;
pub use job_blobs::*;
pub use jobs::*;
pub use leases::*;
pub use load::*;
pub use logs::*;
pub use paging::*;
pub use queue::*;
pub use repos::*;
pub use retention::*;
pub use secrets::*;
pub use stats::*;
pub use statuses::*;
pub use tasks::*;
pub use users::*;
pub use webhooks::*;
pub use workflows::*;

use std::collections::BTreeMap;

use voidrunner_domain::{
    Execution, ExecutionId, ExecutionStatus, NewTask, ResourceLimits, Role, TaskId, Timestamp,
    User, UserId, Verdict,
};

use crate::{
    ClaimRequest, CompleteOutcome, ExecutionResult, Lease, NewExecution, NewUser, Store,
    StoreResult,
};

/// What the suite needs of a store besides [`Store`]: `Clone` (concurrency cases share it
/// across tasks) and a raw setter for fixtures the queue cannot produce.
///
/// The suite itself reaches every execution status through the real queue
/// ([`run_to_status`]); `set_last_execution_status` remains only for other crates' tests that
/// need arbitrary task states (e.g. "no execution yet" after one ran).
#[async_trait::async_trait]
pub trait TestHooks: Store + Clone {
    /// Sets the denormalized `last_execution_status` of a task, bypassing the queue.
    async fn set_last_execution_status(
        &self,
        task: TaskId,
        status: Option<ExecutionStatus>,
    ) -> StoreResult<()>;
}

/// Expands to one `#[tokio::test]` per conformance case; see the module docs.
#[macro_export]
macro_rules! conformance_tests {
    ($fixture:expr) => {
        $crate::__conformance_cases!($fixture;
            ping_and_backend_name,
            job_round_trip_with_steps, jobs_scoped_to_owner, job_claim_order_priority_then_fifo, job_complete_exactly_once, concurrent_job_claimers_never_share, per_user_job_limit_holds_under_concurrent_claimers, job_cancel_queued_and_running, job_release_retry_and_dead_letter, job_events_in_seq_order_and_need_lease, job_artifacts_recorded_under_lease, job_signals_work_events_cancel_and_finish, job_blobs_round_trip_and_scope,
            job_blob_archive_takes_finished_jobs_only, job_blob_archive_mark_has_one_winner, deleted_archived_blobs_leave_their_keys,
            input_appends_in_order_until_eof, input_refused_outside_the_rules, input_appends_are_signalled,
            log_records_status_and_chunks_in_order,
            log_append_needs_the_lease,
            log_keeps_attempts_apart_across_a_retry,
            log_commits_are_signalled,
            user_round_trip_and_lookup,
            duplicate_email_conflicts,
            admin_if_first_only_for_first_user,
            first_user_admin_race_has_one_winner,
            refresh_rotation_chain_and_reuse,
            refresh_expired_and_unknown,
            refresh_concurrent_rotation_one_winner,
            logout_revokes_family_and_user_tokens,
            logout_racing_rotation_leaves_no_live_token,
            api_key_lifecycle,
            api_key_expired_revoked_and_other_user,
            task_round_trip_every_field,
            task_duplicate_id_conflicts,
            task_cross_owner_is_not_found,
            task_update_applies_patch,
            task_soft_delete_hides_everywhere,
            filter_by_language_status_and_tag,
            filter_search_is_literal_and_case_insensitive,
            filter_created_before_after_strict,
            filters_combine_and_respect_scope,
            paging_equal_created_at_uses_id_order,
            paging_exact_limit_has_no_next,
            paging_stable_under_concurrent_inserts,
            paging_cursor_survives_deleted_anchor,
            task_with_unknown_owner_conflicts,
            concurrent_mixed_writes_all_succeed,
            enqueue_snapshot_round_trip_and_task_status,
            enqueue_one_shot_without_task,
            enqueue_for_foreign_or_deleted_task_is_not_found,
            executions_scoped_to_owner,
            task_executions_paging_has_no_gaps_or_dupes,
            cancel_queued_running_and_finished,
            queue_stats_count_states,
            enqueue_signals_work_on_same_store,
            claim_order_priority_then_fifo,
            claim_respects_run_after,
            claim_skips_owner_at_quota,
            concurrent_claimers_never_share_a_row,
            concurrent_claimers_respect_quota,
            heartbeat_extends_and_reports_cancel,
            stale_worker_cannot_complete,
            complete_exactly_once,
            release_failure_requeues_with_backoff,
            max_attempts_dead_letters_and_requeue_resets,
            shutdown_release_keeps_attempt_budget,
            reaper_requeues_only_expired_leases,
            released_after_cancel_request_is_cancelled,
            task_secrets_replace_list_and_snapshot,
            stats_aggregate_window_and_scope,
            resource_samples_round_trip_and_scope,
            webhook_delivery_created_when_terminal,
            webhook_claims_lease_and_fence_attempts,
            concurrent_webhook_claimers_never_share,
            task_secrets_patch_keeps_the_rest,
            workflow_round_trip_and_scope, workflow_listing_pages_and_filters, workflow_node_status_derived_from_job, workflow_start_is_compare_and_set, workflow_start_race_one_winner, workflow_triggers_are_idempotent, workflow_cancel_skips_pending_nodes, workflow_finish_only_from_running, workflow_rerun_resets_unsuccessful_nodes, concurrent_trigger_replays_add_once,
            repository_round_trip_and_scope, repository_secrets_patch, delivery_creates_workflows_once, concurrent_deliveries_create_once,
            status_claims_follow_the_workflow_state, status_retry_backoff_and_give_up, concurrent_status_claimers_never_share,
            archive_candidates_by_log_bytes, archive_mark_is_one_transaction_and_idempotent, archive_refuses_running_and_expired, retention_by_age_expires_output, retention_by_size_takes_oldest_archives,
            retention_purges_finished_jobs_with_all_rows, retention_purges_finished_workflows_with_jobs, retention_purges_old_hook_deliveries,
        );
    };
}

/// Implementation detail of [`conformance_tests!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($fixture:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some((store, _guard)) = $fixture.await else {
                    return;
                };
                $crate::conformance::$case(&store).await;
            }
        )*
    };
}

/// A new user with a unique id and the given email, role `user`.
pub fn new_user(email: &str) -> NewUser {
    NewUser {
        id: UserId::new(),
        email: email.to_owned(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${email}"),
        role: Role::User,
        admin_if_first: false,
        created_at: crate::now(),
    }
}

/// Creates a user with the given email (panics on failure: test helper).
pub async fn create_user<S: Store>(store: &S, email: &str) -> User {
    store
        .create_user(new_user(email))
        .await
        .expect("create user")
}

/// Default limits used by test tasks.
pub fn limits() -> ResourceLimits {
    ResourceLimits {
        timeout_secs: 10,
        memory_mb: 256,
        cpu_cores: 0.5,
        max_processes: 64,
        max_output_bytes: 1 << 20,
    }
}

/// A minimal new task owned by `owner`, created at `created_at`.
pub fn new_task(owner: UserId, name: &str, created_at: Timestamp) -> NewTask {
    NewTask {
        id: TaskId::new(),
        owner_id: owner,
        name: name.to_owned(),
        description: None,
        language: "python".to_owned(),
        code: "print('hi')".to_owned(),
        stdin: None,
        env: BTreeMap::new(),
        limits: limits(),
        priority: 5,
        tags: Vec::new(),
        metadata: serde_json::json!({}),
        created_at,
    }
}

/// `base` shifted by `micros` microseconds.
pub fn at(base: Timestamp, micros: i64) -> Timestamp {
    base + chrono::Duration::microseconds(micros)
}

/// A new execution of `task` (or a one-shot run when `None`) owned by `owner`.
pub fn new_execution(
    owner: UserId,
    task: Option<TaskId>,
    priority: u8,
    created_at: Timestamp,
) -> NewExecution {
    NewExecution {
        id: ExecutionId::new(),
        task_id: task,
        owner_id: owner,
        priority,
        language: "bash".to_owned(),
        code: "echo hi".to_owned(),
        stdin: None,
        env: BTreeMap::new(),
        limits: limits(),
        interactive: false,
        callback_url: None,
        request_id: None,
        max_attempts: 3,
        created_at,
    }
}

/// A claim request of `worker` at `now` with a 30 s lease and no quota.
pub fn claim_at(worker: &str, now: Timestamp) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker.to_owned(),
        now,
        lease: std::time::Duration::from_secs(30),
        per_user_running_limit: None,
    }
}

/// Claims with [`claim_at`] (panics on a store error: test helper).
pub async fn claim<S: Store>(store: &S, worker: &str, now: Timestamp) -> Option<Execution> {
    store
        .claim_next(&claim_at(worker, now))
        .await
        .expect("claim")
}

/// The lease of a claimed execution.
pub fn lease_of(e: &Execution) -> Lease {
    Lease::of(e).expect("claimed execution has a lease owner")
}

/// A result with this verdict and recognisable output, finished at `at`.
pub fn result(verdict: Verdict, at: Timestamp) -> ExecutionResult {
    let exit_code = match &verdict {
        Verdict::Exited { code } => Some(*code),
        _ => None,
    };
    ExecutionResult {
        verdict,
        exit_code,
        signal: None,
        stdout: "out ✓\n".to_owned(),
        stderr: "err\n".to_owned(),
        compile_output: Some("cc: ok".to_owned()),
        output_truncated: false,
        wall_time_ms: 12,
        cpu_time_ms: 7,
        peak_memory_bytes: Some(1 << 20),
        resource_samples: Vec::new(),
        finished_at: at,
    }
}

/// Completes with `verdict`, expecting success; returns the final row.
pub async fn complete<S: Store>(store: &S, e: &Execution, verdict: Verdict) -> Execution {
    match store
        .complete_execution(&lease_of(e), result(verdict, crate::now()))
        .await
        .expect("complete")
    {
        CompleteOutcome::Completed(done) => *done,
        CompleteOutcome::LeaseLost => panic!("lease lost for {}", e.id),
    }
}

/// Runs one execution of `task` through the real queue until it has `status`, so the task's
/// `last_execution_status` becomes `status`. Needs an otherwise empty queue.
pub async fn run_to_status<S: Store>(
    store: &S,
    task: &voidrunner_domain::Task,
    status: ExecutionStatus,
) {
    let e = store
        .enqueue_execution(new_execution(task.owner_id, Some(task.id), 5, crate::now()))
        .await
        .expect("enqueue");
    let verdict = match status {
        ExecutionStatus::Queued => return,
        ExecutionStatus::Cancelled => {
            store
                .request_cancel(crate::Scope::All, e.id, crate::now())
                .await
                .expect("cancel");
            return;
        }
        ExecutionStatus::Running => None,
        ExecutionStatus::Completed => Some(Verdict::Exited { code: 0 }),
        ExecutionStatus::Failed => Some(Verdict::Exited { code: 1 }),
        ExecutionStatus::Timeout => Some(Verdict::Timeout),
    };
    let running = claim(store, "status-helper", crate::now())
        .await
        .expect("claim the execution");
    assert_eq!(
        running.id, e.id,
        "run_to_status needs an otherwise empty queue"
    );
    if let Some(v) = verdict {
        complete(store, &running, v).await;
    }
}
