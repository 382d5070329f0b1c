//! Users: creation, lookup, uniqueness, first-user admin.

use voidrunner_domain::{Role, UserId};

use super::{TestHooks, create_user, new_user};
use crate::StoreError;

/// The store answers pings and names itself.
pub async fn ping_and_backend_name<S: TestHooks>(store: &S) {
    store.ping().await.expect("ping");
    assert!(matches!(store.backend_name(), "sqlite" | "postgres"));
}

/// A created user reads back identically by id and by (case-insensitive) email.
pub async fn user_round_trip_and_lookup<S: TestHooks>(store: &S) {
    let mut new = new_user("Alice@Example.COM");
    new.role = Role::Admin;
    let hash = new.password_hash.clone();
    let created = store.create_user(new).await.expect("create");
    assert_eq!(created.email, "alice@example.com");
    assert_eq!(created.role, Role::Admin);
    assert_eq!(store.get_user(created.id).await.expect("get"), created);
    let creds = store
        .find_credentials("ALICE@example.com")
        .await
        .expect("find")
        .expect("present");
    assert_eq!(creds.user, created);
    assert_eq!(creds.password_hash, hash);
    assert!(
        store
            .find_credentials("bob@example.com")
            .await
            .expect("find")
            .is_none()
    );
    assert!(matches!(
        store.get_user(UserId::new()).await,
        Err(StoreError::NotFound)
    ));
}

/// A second account with the same email (in any case) is a conflict naming the email.
pub async fn duplicate_email_conflicts<S: TestHooks>(store: &S) {
    create_user(store, "dup@example.com").await;
    let err = store
        .create_user(new_user("DUP@example.com"))
        .await
        .expect_err("duplicate email");
    match err {
        StoreError::Conflict(msg) => assert!(msg.contains("email"), "message: {msg}"),
        other => panic!("expected conflict, got {other:?}"),
    }
    // Same id, different email: still a conflict, never a 500.
    let first = create_user(store, "other@example.com").await;
    let mut again = new_user("third@example.com");
    again.id = first.id;
    assert!(matches!(
        store.create_user(again).await,
        Err(StoreError::Conflict(_))
    ));
}

/// `admin_if_first` promotes only the very first account.
pub async fn admin_if_first_only_for_first_user<S: TestHooks>(store: &S) {
    let mut first = new_user("first@example.com");
    first.admin_if_first = true;
    assert_eq!(
        store.create_user(first).await.expect("first").role,
        Role::Admin
    );
    let mut second = new_user("second@example.com");
    second.admin_if_first = true;
    assert_eq!(
        store.create_user(second).await.expect("second").role,
        Role::User
    );
}

/// Many concurrent first sign-ups: exactly one becomes admin.
pub async fn first_user_admin_race_has_one_winner<S: TestHooks>(store: &S) {
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut new = new_user(&format!("racer{i}@example.com"));
                new.admin_if_first = true;
                store.create_user(new).await
            })
        })
        .collect();
    let mut admins = 0;
    for h in futures::future::join_all(handles).await {
        let user = h.expect("join").expect("create");
        if user.role == Role::Admin {
            admins += 1;
        }
    }
    assert_eq!(admins, 1);
}
