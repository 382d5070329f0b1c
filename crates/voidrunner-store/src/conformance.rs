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

mod auth;
mod filters;
mod load;
mod paging;
mod tasks;
mod users;

pub use auth::*;
pub use filters::*;
pub use load::*;
pub use paging::*;
pub use tasks::*;
pub use users::*;

use std::collections::BTreeMap;

use voidrunner_domain::{
    ExecutionStatus, NewTask, ResourceLimits, Role, TaskId, Timestamp, User, UserId,
};

use crate::{NewUser, Store, StoreResult};

/// Test-only operations a backend exposes so the suite can reach states that later issues'
/// use-case methods will produce (e.g. a task's last execution status).
#[async_trait::async_trait]
pub trait TestHooks: Store + Clone {
    /// Sets the denormalized `last_execution_status` of a task.
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
