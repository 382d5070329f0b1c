//! Webhook deliveries: created by the database when an execution with a callback becomes
//! terminal, claimed with a lease, recorded under the claimed attempt, read within scope.

use std::collections::HashSet;
use std::time::Duration;

use voidrunner_domain::{Execution, UserId, Verdict};

use super::{TestHooks, claim_at, create_user, lease_of, new_execution, result};
use crate::{AttemptOutcome, DeliveryState, Scope, StoreError};

const LEASE: Duration = Duration::from_secs(30);

/// An execution of `owner` with `callback`, made terminal by a cancel while queued.
async fn cancelled_with<S: TestHooks>(
    store: &S,
    owner: UserId,
    callback: Option<&str>,
) -> Execution {
    let mut n = new_execution(owner, None, 5, crate::now());
    n.callback_url = callback.map(str::to_owned);
    let e = store.enqueue_execution(n).await.expect("enqueue");
    store
        .request_cancel(Scope::All, e.id, crate::now())
        .await
        .expect("cancel")
}

/// A little after now, so rows the database stamped with its own clock are due.
fn soon() -> voidrunner_domain::Timestamp {
    crate::now() + chrono::Duration::seconds(1)
}

/// A result, a cancel and a dead letter each create one delivery; no callback, none; a
/// running execution has none yet; reads respect the scope.
pub async fn webhook_delivery_created_when_terminal<S: TestHooks>(store: &S) {
    let a = create_user(store, "hook-a@example.com").await;
    let b = create_user(store, "hook-b@example.com").await;
    let url = "https://example.com/hook";

    let mut n = new_execution(a.id, None, 5, crate::now());
    n.callback_url = Some(url.to_owned());
    let e = store.enqueue_execution(n).await.expect("enqueue");
    let running = store
        .claim_next(&claim_at("w", crate::now()))
        .await
        .expect("claim")
        .expect("claimable");
    assert!(matches!(
        store.get_webhook_delivery(Scope::All, e.id).await,
        Err(StoreError::NotFound)
    ));
    store
        .complete_execution(
            &lease_of(&running),
            result(Verdict::Exited { code: 0 }, crate::now()),
        )
        .await
        .expect("complete");
    let d = store
        .get_webhook_delivery(Scope::Owner(a.id), e.id)
        .await
        .expect("delivery");
    assert_eq!(d.execution_id, e.id);
    assert_eq!(d.owner_id, a.id);
    assert_eq!(d.url, url);
    assert_eq!(d.state, DeliveryState::Pending);
    assert_eq!(d.attempts, 0);
    assert!(d.next_attempt_at.is_some());
    assert_eq!((d.last_status, d.last_error.as_deref()), (None, None));
    assert!(matches!(
        store.get_webhook_delivery(Scope::Owner(b.id), e.id).await,
        Err(StoreError::NotFound)
    ));

    let cancelled = cancelled_with(store, a.id, Some(url)).await;
    store
        .get_webhook_delivery(Scope::All, cancelled.id)
        .await
        .expect("a cancel delivers too");
    let silent = cancelled_with(store, a.id, None).await;
    assert!(matches!(
        store.get_webhook_delivery(Scope::All, silent.id).await,
        Err(StoreError::NotFound)
    ));

    let claimed = store
        .claim_webhook_deliveries(soon(), LEASE, 10)
        .await
        .expect("claim");
    let ids: HashSet<_> = claimed.iter().map(|d| d.execution_id).collect();
    assert_eq!(
        ids,
        HashSet::from([e.id, cancelled.id]),
        "none without a callback"
    );
}

/// A claim leases the row (attempt + 1, invisible until the lease ends); outcomes are
/// recorded only under the current attempt; retry, delivered and failed states.
pub async fn webhook_claims_lease_and_fence_attempts<S: TestHooks>(store: &S) {
    let a = create_user(store, "lease-hook@example.com").await;
    let e = cancelled_with(store, a.id, Some("http://receiver.test/x")).await;
    let t0 = soon();

    let first = store
        .claim_webhook_deliveries(t0, LEASE, 10)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 1);
    assert_eq!(
        first[0].next_attempt_at,
        Some(t0 + chrono::Duration::seconds(30))
    );
    assert!(
        store
            .claim_webhook_deliveries(t0, LEASE, 10)
            .await
            .expect("claim")
            .is_empty(),
        "leased"
    );
    // The lease ran out (the dispatcher died): claimed again as attempt 2.
    let t1 = t0 + chrono::Duration::seconds(31);
    let second = store
        .claim_webhook_deliveries(t1, LEASE, 10)
        .await
        .expect("claim");
    assert_eq!(second[0].attempts, 2);
    // The first dispatcher's late outcome is refused.
    let late = AttemptOutcome::Delivered { status: 200 };
    assert!(
        !store
            .record_webhook_attempt(e.id, 1, late, t1)
            .await
            .expect("record")
    );
    let retry_at = t1 + chrono::Duration::seconds(5);
    let retry = AttemptOutcome::Retry {
        status: Some(503),
        error: "receiver answered 503".to_owned(),
        retry_at,
    };
    assert!(
        store
            .record_webhook_attempt(e.id, 2, retry, t1)
            .await
            .expect("record")
    );
    let d = store
        .get_webhook_delivery(Scope::All, e.id)
        .await
        .expect("get");
    assert_eq!(d.state, DeliveryState::Pending);
    assert_eq!(d.last_status, Some(503));
    assert_eq!(d.last_error.as_deref(), Some("receiver answered 503"));
    assert_eq!(d.next_attempt_at, Some(retry_at));
    assert!(
        store
            .claim_webhook_deliveries(t1, LEASE, 10)
            .await
            .expect("claim")
            .is_empty(),
        "not due before retry_at"
    );
    let third = store
        .claim_webhook_deliveries(retry_at, LEASE, 10)
        .await
        .expect("claim");
    assert_eq!(third[0].attempts, 3);
    let delivered = AttemptOutcome::Delivered { status: 204 };
    assert!(
        store
            .record_webhook_attempt(e.id, 3, delivered, retry_at)
            .await
            .expect("record")
    );
    let d = store
        .get_webhook_delivery(Scope::Owner(a.id), e.id)
        .await
        .expect("get");
    assert_eq!(d.state, DeliveryState::Delivered);
    assert_eq!(d.attempts, 3);
    assert_eq!(d.last_status, Some(204));
    assert_eq!(d.last_error, None);
    assert_eq!(d.delivered_at, Some(retry_at));
    assert_eq!(d.next_attempt_at, None);
    let later = retry_at + chrono::Duration::hours(1);
    assert!(
        store
            .claim_webhook_deliveries(later, LEASE, 10)
            .await
            .expect("claim")
            .is_empty(),
        "delivered rows are never claimed again"
    );

    // Failed for good.
    let f = cancelled_with(store, a.id, Some("http://receiver.test/y")).await;
    let claimed = store
        .claim_webhook_deliveries(later, LEASE, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let failed = AttemptOutcome::Failed {
        status: Some(404),
        error: "receiver answered 404".to_owned(),
    };
    assert!(
        store
            .record_webhook_attempt(f.id, 1, failed, later)
            .await
            .expect("record")
    );
    let d = store
        .get_webhook_delivery(Scope::All, f.id)
        .await
        .expect("get");
    assert_eq!((d.state, d.last_status), (DeliveryState::Failed, Some(404)));
    assert_eq!(d.delivered_at, None);
}

/// Many dispatchers claiming at once never get the same delivery.
pub async fn concurrent_webhook_claimers_never_share<S: TestHooks>(store: &S) {
    let a = create_user(store, "many-hooks@example.com").await;
    let mut all = HashSet::new();
    for i in 0..24 {
        let e = cancelled_with(store, a.id, Some(&format!("http://receiver.test/{i}"))).await;
        all.insert(e.id);
    }
    let now = soon();
    let claimers = (0..4).map(|_| {
        let s = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = s
                    .claim_webhook_deliveries(now, LEASE, 2)
                    .await
                    .expect("claim");
                if got.is_empty() {
                    break mine;
                }
                mine.extend(got.into_iter().map(|d| d.execution_id));
            }
        })
    });
    let mut seen = HashSet::new();
    for c in claimers {
        for id in c.await.expect("claimer") {
            assert!(seen.insert(id), "{id} claimed twice");
        }
    }
    assert_eq!(seen, all);
}
