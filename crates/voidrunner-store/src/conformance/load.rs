//! Concurrency: many simultaneous writers never surface lock errors.

use uuid::Uuid;
use voidrunner_domain::{ApiKeyId, TaskPatch, UserId};

use super::{TestHooks, create_user, new_task, new_user};
use crate::{
    NewApiKey, NewRefreshToken, RefreshOutcome, RefreshTokenSeed, Scope, StoreError, StoreResult,
};

/// A task referencing a user that does not exist is a conflict, not an internal error.
pub async fn task_with_unknown_owner_conflicts<S: TestHooks>(store: &S) {
    let orphan = new_task(UserId::new(), "orphan", crate::now());
    assert!(matches!(
        store.create_task(orphan).await,
        Err(StoreError::Conflict(_))
    ));
}

/// One worker's share of [`concurrent_mixed_writes_all_succeed`]: sign up, create and update a
/// task, rotate a refresh token, create and use an API key.
async fn one_client<S: TestHooks>(store: S, i: usize, shared_task: voidrunner_domain::TaskId) {
    let outcome = async {
        let mut new = new_user(&format!("load{i}@example.com"));
        new.admin_if_first = true;
        let user = store.create_user(new).await?;
        let task = store
            .create_task(new_task(user.id, &format!("task {i}"), crate::now()))
            .await?;
        let patch = TaskPatch {
            name: Some(format!("renamed {i}")),
            ..TaskPatch::default()
        };
        store
            .update_task(Scope::Owner(user.id), task.id, patch.clone())
            .await?;
        store.update_task(Scope::All, shared_task, patch).await?;
        let now = crate::now();
        store
            .insert_refresh_token(NewRefreshToken {
                id: Uuid::now_v7(),
                user_id: user.id,
                family_id: Uuid::now_v7(),
                token_hash: format!("load-{i}-a"),
                created_at: now,
                expires_at: now + chrono::Duration::hours(1),
            })
            .await?;
        let rotated = store
            .rotate_refresh_token(
                &format!("load-{i}-a"),
                RefreshTokenSeed {
                    id: Uuid::now_v7(),
                    token_hash: format!("load-{i}-b"),
                    created_at: now,
                    expires_at: now + chrono::Duration::hours(1),
                },
            )
            .await?;
        assert!(matches!(rotated, RefreshOutcome::Rotated { .. }));
        store
            .create_api_key(NewApiKey {
                id: ApiKeyId::new(),
                user_id: user.id,
                name: "load".to_owned(),
                prefix: "vr_load".to_owned(),
                key_hash: format!("load-key-{i}"),
                created_at: now,
                expires_at: None,
            })
            .await?;
        let who = store
            .authenticate_api_key(&format!("load-key-{i}"), crate::now())
            .await?;
        assert_eq!(who.map(|u| u.id), Some(user.id));
        store.delete_task(Scope::All, task.id, crate::now()).await?;
        StoreResult::Ok(())
    };
    outcome
        .await
        .unwrap_or_else(|e| panic!("client {i}: {e:?}"));
}

/// 32 clients writing at once (sign-ups, task writes on their own and on one shared row,
/// rotations, API key use): every call succeeds, exactly one admin exists.
pub async fn concurrent_mixed_writes_all_succeed<S: TestHooks>(store: &S) {
    let owner = create_user(store, "shared@example.com").await;
    let shared = store
        .create_task(new_task(owner.id, "shared", crate::now()))
        .await
        .expect("shared task");
    let handles: Vec<_> = (0..32)
        .map(|i| tokio::spawn(one_client(store.clone(), i, shared.id)))
        .collect();
    for h in futures::future::join_all(handles).await {
        h.expect("client task panicked");
    }
    let renamed = store.get_task(Scope::All, shared.id).await.expect("shared");
    assert!(renamed.name.starts_with("renamed "));
}
