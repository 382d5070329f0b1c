//! Sealed task secrets: replaced as a whole, names listed within scope, copied to each
//! execution at enqueue (a snapshot: later changes do not reach it).

use std::collections::BTreeMap;

use super::{TestHooks, create_user, new_execution, new_task};
use crate::{Scope, StoreError};

/// Sealed values round-trip as opaque bytes; executions keep the set of their enqueue time.
pub async fn task_secrets_replace_list_and_snapshot<S: TestHooks>(store: &S) {
    let owner = create_user(store, "sec@example.com").await;
    let other = create_user(store, "sec-other@example.com").await;
    let task = store
        .create_task(new_task(owner.id, "with secrets", crate::now()))
        .await
        .expect("create task");
    let mine = Scope::Owner(owner.id);
    assert_eq!(
        store.task_secret_names(mine, task.id).await.expect("names"),
        Vec::<String>::new()
    );
    let first = BTreeMap::from([
        ("B_TOKEN".to_owned(), vec![1, 0, 255, 7]),
        ("A_KEY".to_owned(), vec![9; 40]),
    ]);
    store
        .set_task_secrets(mine, task.id, first.clone())
        .await
        .expect("set");
    assert_eq!(
        store.task_secret_names(mine, task.id).await.expect("names"),
        ["A_KEY", "B_TOKEN"]
    );
    let before = store
        .enqueue_execution(new_execution(owner.id, Some(task.id), 5, crate::now()))
        .await
        .expect("enqueue");
    let second = BTreeMap::from([("C_SECRET".to_owned(), vec![3; 20])]);
    store
        .set_task_secrets(Scope::All, task.id, second.clone())
        .await
        .expect("replace");
    assert_eq!(
        store.task_secret_names(mine, task.id).await.expect("names"),
        ["C_SECRET"]
    );
    let after = store
        .enqueue_execution(new_execution(owner.id, Some(task.id), 5, crate::now()))
        .await
        .expect("enqueue");
    let one_shot = store
        .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
        .await
        .expect("enqueue");
    assert_eq!(
        store.execution_secrets(before.id).await.expect("read"),
        first
    );
    assert_eq!(
        store.execution_secrets(after.id).await.expect("read"),
        second
    );
    assert!(
        store
            .execution_secrets(one_shot.id)
            .await
            .expect("read")
            .is_empty()
    );
    let foreign = Scope::Owner(other.id);
    assert!(matches!(
        store.set_task_secrets(foreign, task.id, first).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.task_secret_names(foreign, task.id).await,
        Err(StoreError::NotFound)
    ));
    store
        .set_task_secrets(mine, task.id, BTreeMap::new())
        .await
        .expect("clear");
    assert!(
        store
            .task_secret_names(mine, task.id)
            .await
            .expect("names")
            .is_empty()
    );
    assert_eq!(
        store.execution_secrets(after.id).await.expect("read"),
        second,
        "the snapshot outlives a change of the task"
    );
}

/// A patch adds, replaces and removes single secrets and keeps the others; out of scope is
/// `NotFound` and changes nothing.
pub async fn task_secrets_patch_keeps_the_rest<S: TestHooks>(store: &S) {
    let owner = create_user(store, "sec-patch@example.com").await;
    let other = create_user(store, "sec-patch-other@example.com").await;
    let task = store
        .create_task(new_task(owner.id, "patched secrets", crate::now()))
        .await
        .expect("create task");
    let mine = Scope::Owner(owner.id);
    let names = store
        .patch_task_secrets(
            mine,
            task.id,
            BTreeMap::from([("A".to_owned(), vec![1; 8]), ("B".to_owned(), vec![2; 8])]),
            &[],
        )
        .await
        .expect("add");
    assert_eq!(names, ["A", "B"]);
    let names = store
        .patch_task_secrets(
            mine,
            task.id,
            BTreeMap::from([("B".to_owned(), vec![3; 8]), ("C".to_owned(), vec![4; 8])]),
            &["A".to_owned(), "NOPE".to_owned()],
        )
        .await
        .expect("patch");
    assert_eq!(names, ["B", "C"]);
    let run = store
        .enqueue_execution(new_execution(owner.id, Some(task.id), 5, crate::now()))
        .await
        .expect("enqueue");
    assert_eq!(
        store.execution_secrets(run.id).await.expect("read"),
        BTreeMap::from([("B".to_owned(), vec![3; 8]), ("C".to_owned(), vec![4; 8])])
    );
    assert!(matches!(
        store
            .patch_task_secrets(
                Scope::Owner(other.id),
                task.id,
                BTreeMap::new(),
                &["B".to_owned()]
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.task_secret_names(mine, task.id).await.expect("names"),
        ["B", "C"]
    );
}
