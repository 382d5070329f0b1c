//! Stdin of interactive executions: appends in order while queued or running, EOF closes it,
//! the state rules and the byte cap conflict, scope hides other users' executions, signals
//! fire after commit.

use std::time::Duration;

use voidrunner_domain::Verdict;

use super::{TestHooks, claim, complete, create_user, new_execution};
use crate::{InputChunk, MAX_INPUT_BYTES, Scope, StoreError};

fn chunk(seq: u64, data: &[u8], eof: bool) -> InputChunk {
    InputChunk {
        seq,
        data: data.to_vec(),
        eof,
    }
}

/// Appends before and after the claim are read back in order, paged by `after`/`limit`;
/// after EOF and after the end every append conflicts.
pub async fn input_appends_in_order_until_eof<S: TestHooks>(store: &S) {
    let owner = create_user(store, "input@example.com").await;
    let mut new = new_execution(owner.id, None, 5, crate::now());
    new.interactive = true;
    let e = store.enqueue_execution(new).await.expect("enqueue");
    let me = Scope::Owner(owner.id);
    let seq = store
        .append_input(me, e.id, b"early\n", false, crate::now())
        .await
        .expect("append while queued");
    assert_eq!(seq, 1);
    let running = claim(store, "w", crate::now()).await.expect("claim");
    for (data, eof, want) in [(&b"\xff\0"[..], false, 2), (b"", true, 3)] {
        let seq = store
            .append_input(me, e.id, data, eof, crate::now())
            .await
            .expect("append while running");
        assert_eq!(seq, want);
    }
    assert_eq!(
        store.read_input(e.id, 0, 100).await.expect("read"),
        [
            chunk(1, b"early\n", false),
            chunk(2, b"\xff\0", false),
            chunk(3, b"", true)
        ]
    );
    assert_eq!(
        store.read_input(e.id, 1, 1).await.expect("page"),
        [chunk(2, b"\xff\0", false)]
    );
    assert!(
        store
            .read_input(e.id, 3, 100)
            .await
            .expect("tail")
            .is_empty()
    );
    let closed = store
        .append_input(me, e.id, b"late", false, crate::now())
        .await;
    assert!(
        matches!(&closed, Err(StoreError::Conflict(m)) if m.contains("closed")),
        "{closed:?}"
    );
    complete(store, &running, Verdict::Exited { code: 0 }).await;
    let done = store
        .append_input(Scope::All, e.id, b"", true, crate::now())
        .await;
    assert!(
        matches!(&done, Err(StoreError::Conflict(m)) if m.contains("finished")),
        "{done:?}"
    );
}

/// Non-interactive executions, other owners, unknown ids and the byte cap.
pub async fn input_refused_outside_the_rules<S: TestHooks>(store: &S) {
    let owner = create_user(store, "input-rules@example.com").await;
    let other = create_user(store, "input-other@example.com").await;
    let plain = store
        .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
        .await
        .expect("enqueue");
    let r = store
        .append_input(Scope::Owner(owner.id), plain.id, b"x", false, crate::now())
        .await;
    assert!(
        matches!(&r, Err(StoreError::Conflict(m)) if m.contains("not interactive")),
        "{r:?}"
    );
    let mut new = new_execution(owner.id, None, 5, crate::now());
    new.interactive = true;
    let e = store.enqueue_execution(new).await.expect("enqueue");
    let foreign = store
        .append_input(Scope::Owner(other.id), e.id, b"x", false, crate::now())
        .await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "{foreign:?}");
    let unknown = store
        .append_input(
            Scope::All,
            voidrunner_domain::ExecutionId::new(),
            b"x",
            false,
            crate::now(),
        )
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    let empty = store
        .append_input(Scope::All, e.id, b"", false, crate::now())
        .await;
    assert!(
        matches!(&empty, Err(StoreError::Conflict(m)) if m.contains("empty")),
        "{empty:?}"
    );
    let big = vec![b'a'; usize::try_from(MAX_INPUT_BYTES).expect("fits") - 1];
    store
        .append_input(Scope::All, e.id, &big, false, crate::now())
        .await
        .expect("just under the cap");
    let over = store
        .append_input(Scope::All, e.id, b"bc", false, crate::now())
        .await;
    assert!(
        matches!(&over, Err(StoreError::Conflict(m)) if m.contains("exceeds")),
        "{over:?}"
    );
    store
        .append_input(Scope::All, e.id, b"b", true, crate::now())
        .await
        .expect("exactly the cap, with eof");
    assert_eq!(store.read_input(e.id, 0, 10).await.expect("read").len(), 2);
}

/// An append signals `input` for the execution on the appending handle.
pub async fn input_appends_are_signalled<S: TestHooks>(store: &S) {
    let owner = create_user(store, "input-signal@example.com").await;
    let mut new = new_execution(owner.id, None, 5, crate::now());
    new.interactive = true;
    let e = store.enqueue_execution(new).await.expect("enqueue");
    let mut rx = store.queue_signals().subscribe_input();
    store
        .append_input(Scope::All, e.id, b"hi\n", false, crate::now())
        .await
        .expect("append");
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("signal in time")
        .expect("signal");
    assert_eq!(got, e.id);
}
