//! Refresh-token rotation with reuse detection, logout, and API keys.

use uuid::Uuid;
use voidrunner_domain::{ApiKeyId, Timestamp, UserId};

use super::{TestHooks, at, create_user};
use crate::{NewApiKey, NewRefreshToken, RefreshOutcome, RefreshTokenSeed, StoreError};

const HOUR_MICROS: i64 = 3_600_000_000;

fn token(user: UserId, family: Uuid, hash: &str, now: Timestamp) -> NewRefreshToken {
    NewRefreshToken {
        id: Uuid::now_v7(),
        user_id: user,
        family_id: family,
        token_hash: hash.to_owned(),
        created_at: now,
        expires_at: at(now, HOUR_MICROS),
    }
}

fn seed(hash: &str, now: Timestamp) -> RefreshTokenSeed {
    RefreshTokenSeed {
        id: Uuid::now_v7(),
        token_hash: hash.to_owned(),
        created_at: now,
        expires_at: at(now, HOUR_MICROS),
    }
}

/// Live tokens rotate within their family; presenting a used one revokes the whole family.
pub async fn refresh_rotation_chain_and_reuse<S: TestHooks>(store: &S) {
    let user = create_user(store, "rot@example.com").await;
    let family = Uuid::now_v7();
    let now = crate::now();
    store
        .insert_refresh_token(token(user.id, family, "h1", now))
        .await
        .expect("insert");
    let first = store
        .rotate_refresh_token("h1", seed("h2", now))
        .await
        .expect("rotate h1");
    assert_eq!(
        first,
        RefreshOutcome::Rotated {
            user: user.clone(),
            family_id: family
        }
    );
    let second = store
        .rotate_refresh_token("h2", seed("h3", at(now, 1)))
        .await
        .expect("rotate h2");
    assert!(matches!(second, RefreshOutcome::Rotated { family_id, .. } if family_id == family));
    // h1 was already used: theft signal, the family (including live h3) is revoked.
    assert_eq!(
        store
            .rotate_refresh_token("h1", seed("h4", at(now, 2)))
            .await
            .expect("reuse h1"),
        RefreshOutcome::Reused
    );
    assert_eq!(
        store
            .rotate_refresh_token("h3", seed("h5", at(now, 3)))
            .await
            .expect("h3 after family revoked"),
        RefreshOutcome::Reused
    );
    // Nothing was stored for the refused rotations.
    for h in ["h4", "h5"] {
        assert_eq!(
            store
                .rotate_refresh_token(h, seed("x", at(now, 4)))
                .await
                .expect("rotate unknown"),
            RefreshOutcome::Unknown
        );
    }
    // Another family of the same user is untouched.
    store
        .insert_refresh_token(token(user.id, Uuid::now_v7(), "g1", now))
        .await
        .expect("insert g1");
    assert!(matches!(
        store
            .rotate_refresh_token("g1", seed("g2", at(now, 5)))
            .await
            .expect("g1"),
        RefreshOutcome::Rotated { .. }
    ));
}

/// Expired tokens are refused without storing the replacement; unknown hashes are unknown.
pub async fn refresh_expired_and_unknown<S: TestHooks>(store: &S) {
    let user = create_user(store, "exp@example.com").await;
    let now = crate::now();
    let mut t = token(user.id, Uuid::now_v7(), "old", at(now, -2 * HOUR_MICROS));
    t.expires_at = now;
    store.insert_refresh_token(t).await.expect("insert");
    assert_eq!(
        store
            .rotate_refresh_token("old", seed("new", now))
            .await
            .expect("rotate expired"),
        RefreshOutcome::Expired
    );
    assert_eq!(
        store
            .rotate_refresh_token("new", seed("newer", now))
            .await
            .expect("rotate never-stored"),
        RefreshOutcome::Unknown
    );
    assert_eq!(
        store
            .rotate_refresh_token("nope", seed("n2", now))
            .await
            .expect("unknown"),
        RefreshOutcome::Unknown
    );
    // A duplicate token hash is a conflict, never a 500.
    let dup = token(user.id, Uuid::now_v7(), "old", now);
    assert!(matches!(
        store.insert_refresh_token(dup).await,
        Err(StoreError::Conflict(_))
    ));
}

/// Two concurrent refreshes with the same token: one rotates, the other is reuse.
pub async fn refresh_concurrent_rotation_one_winner<S: TestHooks>(store: &S) {
    let user = create_user(store, "conc@example.com").await;
    let now = crate::now();
    store
        .insert_refresh_token(token(user.id, Uuid::now_v7(), "c1", now))
        .await
        .expect("insert");
    let handles: Vec<_> = ["c2a", "c2b"]
        .into_iter()
        .map(|h| {
            let store = store.clone();
            tokio::spawn(async move { store.rotate_refresh_token("c1", seed(h, now)).await })
        })
        .collect();
    let mut rotated = 0;
    let mut reused = 0;
    for h in futures::future::join_all(handles).await {
        match h.expect("join").expect("rotate") {
            RefreshOutcome::Rotated { .. } => rotated += 1,
            RefreshOutcome::Reused => reused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((rotated, reused), (1, 1));
}

/// Logout revokes one family; "logout everywhere" revokes every token of one user only.
pub async fn logout_revokes_family_and_user_tokens<S: TestHooks>(store: &S) {
    let alice = create_user(store, "alice@example.com").await;
    let bob = create_user(store, "bob@example.com").await;
    let now = crate::now();
    let fam = Uuid::now_v7();
    store
        .insert_refresh_token(token(alice.id, fam, "a1", now))
        .await
        .expect("a1");
    assert!(
        store
            .revoke_refresh_family("a1", now)
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_refresh_family("missing", now)
            .await
            .expect("revoke unknown")
    );
    assert_eq!(
        store
            .rotate_refresh_token("a1", seed("a2", now))
            .await
            .expect("after logout"),
        RefreshOutcome::Reused
    );

    for h in ["a3", "a4"] {
        store
            .insert_refresh_token(token(alice.id, Uuid::now_v7(), h, now))
            .await
            .expect("insert");
    }
    store
        .insert_refresh_token(token(bob.id, Uuid::now_v7(), "b1", now))
        .await
        .expect("b1");
    assert_eq!(
        store
            .revoke_user_refresh_tokens(alice.id, now)
            .await
            .expect("revoke all"),
        2
    );
    for h in ["a3", "a4"] {
        assert_eq!(
            store
                .rotate_refresh_token(h, seed(&format!("{h}x"), now))
                .await
                .expect("rotate"),
            RefreshOutcome::Reused
        );
    }
    assert!(matches!(
        store
            .rotate_refresh_token("b1", seed("b2", now))
            .await
            .expect("bob"),
        RefreshOutcome::Rotated { .. }
    ));
}

fn api_key(user: UserId, name: &str, hash: &str, now: Timestamp) -> NewApiKey {
    NewApiKey {
        id: ApiKeyId::new(),
        user_id: user,
        name: name.to_owned(),
        prefix: format!("vr_{name}"),
        key_hash: hash.to_owned(),
        created_at: now,
        expires_at: None,
    }
}

/// Create, list newest first, authenticate (recording the use), revoke.
pub async fn api_key_lifecycle<S: TestHooks>(store: &S) {
    let user = create_user(store, "keys@example.com").await;
    let now = crate::now();
    let k1 = store
        .create_api_key(api_key(user.id, "one", "k1", now))
        .await
        .expect("k1");
    let mut second = api_key(user.id, "two", "k2", at(now, 1));
    second.expires_at = Some(at(now, HOUR_MICROS));
    let k2 = store.create_api_key(second).await.expect("k2");
    assert_eq!(
        store.list_api_keys(user.id).await.expect("list"),
        vec![k2.clone(), k1.clone()]
    );

    let used_at = at(now, 10);
    assert_eq!(
        store
            .authenticate_api_key("k2", used_at)
            .await
            .expect("auth"),
        Some(user.clone())
    );
    assert_eq!(
        store
            .authenticate_api_key("zz", used_at)
            .await
            .expect("auth"),
        None
    );
    let listed = store.list_api_keys(user.id).await.expect("list");
    assert_eq!(listed[0].last_used_at, Some(used_at));
    assert_eq!(listed[1].last_used_at, None);

    let revoked_at = at(now, 20);
    store
        .revoke_api_key(user.id, k1.id, revoked_at)
        .await
        .expect("revoke");
    // Revoking twice is fine and keeps the first time.
    store
        .revoke_api_key(user.id, k1.id, at(now, 30))
        .await
        .expect("revoke again");
    let listed = store.list_api_keys(user.id).await.expect("list");
    assert_eq!(listed.len(), 2, "revoked keys stay listed");
    assert_eq!(listed[1].revoked_at, Some(revoked_at));
    assert_eq!(
        store
            .authenticate_api_key("k1", at(now, 40))
            .await
            .expect("auth"),
        None
    );
    assert!(matches!(
        store
            .create_api_key(api_key(user.id, "dup", "k1", now))
            .await,
        Err(StoreError::Conflict(_))
    ));
}

/// Expired keys never authenticate; nobody can revoke someone else's key.
pub async fn api_key_expired_revoked_and_other_user<S: TestHooks>(store: &S) {
    let alice = create_user(store, "a@example.com").await;
    let mallory = create_user(store, "m@example.com").await;
    let now = crate::now();
    let mut expiring = api_key(alice.id, "exp", "e1", now);
    expiring.expires_at = Some(at(now, 100));
    let key = store.create_api_key(expiring).await.expect("create");
    assert_eq!(
        store
            .authenticate_api_key("e1", at(now, 99))
            .await
            .expect("auth"),
        Some(alice.clone())
    );
    assert_eq!(
        store
            .authenticate_api_key("e1", at(now, 100))
            .await
            .expect("auth"),
        None,
        "expiry is exclusive"
    );
    assert!(matches!(
        store.revoke_api_key(mallory.id, key.id, now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.revoke_api_key(alice.id, ApiKeyId::new(), now).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .list_api_keys(mallory.id)
            .await
            .expect("list")
            .is_empty()
    );
    let listed = store.list_api_keys(alice.id).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, None);
    assert_eq!(listed[0].last_used_at, Some(at(now, 99)));
}

/// Logout (one family or everywhere) racing a rotation never leaves a live replacement: either
/// the rotation sees the revocation, or the revocation covers the replacement.
pub async fn logout_racing_rotation_leaves_no_live_token<S: TestHooks>(store: &S) {
    let user = create_user(store, "race@example.com").await;
    for round in 0..20 {
        let now = crate::now();
        let (old, new) = (format!("old{round}"), format!("new{round}"));
        store
            .insert_refresh_token(token(user.id, Uuid::now_v7(), &old, now))
            .await
            .expect("insert");
        let rotate = {
            let (store, old, new) = (store.clone(), old.clone(), new.clone());
            tokio::spawn(async move { store.rotate_refresh_token(&old, seed(&new, now)).await })
        };
        let logout = {
            let (store, old) = (store.clone(), old.clone());
            tokio::spawn(async move {
                if round % 2 == 0 {
                    store.revoke_refresh_family(&old, now).await.map(|_| ())
                } else {
                    store
                        .revoke_user_refresh_tokens(user.id, now)
                        .await
                        .map(|_| ())
                }
            })
        };
        rotate.await.expect("join").expect("rotate");
        logout.await.expect("join").expect("logout");
        let after = store
            .rotate_refresh_token(&new, seed(&format!("after{round}"), now))
            .await
            .expect("probe");
        assert!(
            matches!(after, RefreshOutcome::Reused | RefreshOutcome::Unknown),
            "round {round}: replacement survived logout: {after:?}"
        );
    }
}
