//! Claiming: order, backoff, per-user quota, and many claimers at once.

use std::collections::{BTreeMap, HashSet};

use voidrunner_domain::{ExecutionId, ExecutionStatus, UserId};

use super::{TestHooks, at, claim, claim_at, create_user, new_execution, new_task};
use crate::ClaimRequest;

/// Claims until the queue is empty (for `now`), returning the codes in claim order.
async fn drain<S: TestHooks>(store: &S, req: &ClaimRequest) -> Vec<String> {
    let mut order = Vec::new();
    while let Some(e) = store.claim_next(req).await.expect("claim") {
        assert_eq!(e.status, ExecutionStatus::Running);
        assert_eq!(e.lease_owner.as_deref(), Some(req.worker_id.as_str()));
        assert_eq!(e.worker_id.as_deref(), Some(req.worker_id.as_str()));
        assert_eq!(e.attempt, 1);
        assert_eq!(e.started_at, Some(req.now));
        assert_eq!(e.lease_until, Some(req.now + chrono::Duration::seconds(30)));
        order.push(e.code);
    }
    order
}

/// Enqueues an execution whose code is `name`.
async fn put<S: TestHooks>(store: &S, owner: UserId, name: &str, priority: u8, created: i64) {
    let base = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("base time");
    let mut n = new_execution(owner, None, priority, at(base, created));
    n.code = name.to_owned();
    store.enqueue_execution(n).await.expect("enqueue");
}

/// Higher priority first, then oldest first, then lowest id.
pub async fn claim_order_priority_then_fifo<S: TestHooks>(store: &S) {
    let owner = create_user(store, "order@example.com").await;
    put(store, owner.id, "low-old", 1, 0).await;
    put(store, owner.id, "high-new", 9, 30).await;
    put(store, owner.id, "high-old", 9, 10).await;
    put(store, owner.id, "mid", 5, 20).await;
    put(store, owner.id, "top-newest", 10, 40).await;
    put(store, owner.id, "zero", 0, -5).await;
    let order = drain(store, &claim_at("w", crate::now())).await;
    assert_eq!(
        order,
        [
            "top-newest",
            "high-old",
            "high-new",
            "mid",
            "low-old",
            "zero"
        ]
    );
}

/// A row is not claimable before its `run_after`.
pub async fn claim_respects_run_after<S: TestHooks>(store: &S) {
    let owner = create_user(store, "later@example.com").await;
    let now = crate::now();
    // Enqueued "in the future": run_after = created_at.
    let n = new_execution(owner.id, None, 10, at(now, 5_000_000));
    let later = store.enqueue_execution(n).await.expect("enqueue");
    assert!(claim(store, "w", now).await.is_none());
    let got = claim(store, "w", at(now, 5_000_000)).await.expect("due");
    assert_eq!(got.id, later.id);
}

/// An owner at the running limit is skipped (their rows stay queued); others are claimable.
pub async fn claim_skips_owner_at_quota<S: TestHooks>(store: &S) {
    let busy = create_user(store, "busy@example.com").await;
    let calm = create_user(store, "calm@example.com").await;
    for i in 0..4 {
        put(store, busy.id, &format!("busy{i}"), 10, i).await;
    }
    put(store, calm.id, "calm", 0, 100).await;
    let mut req = claim_at("w", crate::now());
    req.per_user_running_limit = Some(2);
    let order = drain(store, &req).await;
    assert_eq!(order, ["busy0", "busy1", "calm"]);
    let stats = store.queue_stats().await.expect("stats");
    assert_eq!((stats.queued, stats.running), (2, 3));
    // Without a quota the rest is claimable.
    let rest = drain(store, &claim_at("w", crate::now())).await;
    assert_eq!(rest, ["busy2", "busy3"]);
}

/// 8 claimers race over 8 tasks × 50 executions: every row is claimed exactly once.
pub async fn concurrent_claimers_never_share_a_row<S: TestHooks>(store: &S) {
    let owner = create_user(store, "race@example.com").await;
    let mut all = HashSet::new();
    for t in 0..8 {
        let task = store
            .create_task(new_task(owner.id, &format!("t{t}"), crate::now()))
            .await
            .expect("task");
        for _ in 0..50 {
            let n = new_execution(owner.id, Some(task.id), (t % 3) as u8, crate::now());
            all.insert(store.enqueue_execution(n).await.expect("enqueue").id);
        }
    }
    let claimers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut got: Vec<ExecutionId> = Vec::new();
                let req = claim_at(&format!("w{w}"), crate::now());
                while let Some(e) = store.claim_next(&req).await.expect("claim") {
                    got.push(e.id);
                }
                got
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for c in futures::future::join_all(claimers).await {
        claimed.extend(c.expect("claimer panicked"));
    }
    assert_eq!(claimed.len(), all.len(), "no row claimed twice");
    let unique: HashSet<_> = claimed.into_iter().collect();
    assert_eq!(unique, all, "every row claimed");
    let stats = store.queue_stats().await.expect("stats");
    assert_eq!((stats.queued, stats.running), (0, 400));
}

/// Concurrent claimers with a quota of 2 over 3 owners never run more than 2 per owner.
pub async fn concurrent_claimers_respect_quota<S: TestHooks>(store: &S) {
    let mut owners = Vec::new();
    for o in 0..3 {
        let u = create_user(store, &format!("quota{o}@example.com")).await;
        for _ in 0..10 {
            store
                .enqueue_execution(new_execution(u.id, None, 5, crate::now()))
                .await
                .expect("enqueue");
        }
        owners.push(u.id);
    }
    let claimers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut req = claim_at(&format!("w{w}"), crate::now());
                req.per_user_running_limit = Some(2);
                let mut got = Vec::new();
                while let Some(e) = store.claim_next(&req).await.expect("claim") {
                    got.push(e.owner_id);
                }
                got
            })
        })
        .collect();
    let mut per_owner: BTreeMap<UserId, usize> = BTreeMap::new();
    for c in futures::future::join_all(claimers).await {
        for o in c.expect("claimer panicked") {
            *per_owner.entry(o).or_default() += 1;
        }
    }
    for o in &owners {
        assert_eq!(per_owner.get(o), Some(&2), "{per_owner:?}");
    }
    let stats = store.queue_stats().await.expect("stats");
    assert_eq!((stats.queued, stats.running), (24, 6));
}
