//! Queue figures shared by the backends' benchmarks (`cargo bench -p <backend>`): not tests,
//! no assertions on timing, just numbers printed for the READMEs.

use std::time::{Duration, Instant};

use voidrunner_domain::Verdict;

use super::{claim_at, create_user, lease_of, new_execution, result};
use crate::Store;

/// Latency percentiles of a sample, in microseconds.
fn percentiles(mut v: Vec<Duration>) -> (u128, u128) {
    v.sort_unstable();
    let at = |q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).map_or(0, Duration::as_micros)
    };
    (at(0.5), at(0.99))
}

/// Prints enqueue latency, single-claimer claim latency, enqueue→claim latency through the
/// work signal, and claim throughput with `claimers` concurrent claimers over `rows` rows.
pub async fn queue_figures<S: Store + Clone>(store: &S, label: &str, rows: usize, claimers: usize) {
    let owner = create_user(store, &format!("bench-{label}@example.com")).await;

    // Enqueue latency.
    let mut enq = Vec::with_capacity(rows);
    for _ in 0..rows {
        let t = Instant::now();
        store
            .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
            .await
            .expect("enqueue");
        enq.push(t.elapsed());
    }
    let (p50, p99) = percentiles(enq);
    println!("{label}: enqueue p50 {p50} µs, p99 {p99} µs ({rows} rows)");

    // Single claimer latency over a full queue.
    let mut cl = Vec::with_capacity(rows);
    let req = claim_at("bench-single", crate::now());
    loop {
        let t = Instant::now();
        let got = store.claim_next(&req).await.expect("claim");
        if got.is_none() {
            break;
        }
        cl.push(t.elapsed());
    }
    let (p50, p99) = percentiles(cl);
    println!("{label}: claim (1 claimer) p50 {p50} µs, p99 {p99} µs");

    // Enqueue → claimed, with the claimer waiting on the work signal (subscribe, poll, wait).
    let mut wake = Vec::with_capacity(200);
    for _ in 0..200 {
        let waiter = {
            let store = store.clone();
            let mut work = store.queue_signals().subscribe_work();
            work.borrow_and_update();
            tokio::spawn(async move {
                loop {
                    let req = claim_at("bench-wake", crate::now());
                    if let Some(e) = store.claim_next(&req).await.expect("claim") {
                        return e;
                    }
                    work.changed().await.expect("signal");
                }
            })
        };
        tokio::task::yield_now().await;
        let t = Instant::now();
        store
            .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
            .await
            .expect("enqueue");
        waiter.await.expect("waiter");
        wake.push(t.elapsed());
    }
    let (p50, p99) = percentiles(wake);
    println!("{label}: enqueue→claimed via work signal p50 {p50} µs, p99 {p99} µs");

    // Throughput with concurrent claimers.
    for _ in 0..rows {
        store
            .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
            .await
            .expect("enqueue");
    }
    let t = Instant::now();
    let handles: Vec<_> = (0..claimers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let req = claim_at(&format!("bench-{w}"), crate::now());
                let mut n = 0_usize;
                while store.claim_next(&req).await.expect("claim").is_some() {
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.await.expect("claimer");
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{label}: {claimers} concurrent claimers: {total} claims in {:.0} ms = {:.0} claims/s",
        secs * 1000.0,
        total as f64 / secs
    );

    // Claim + complete cycles with a per-user quota (the running set stays small, as with
    // real workers), spread over 4 owners.
    let mut owners = Vec::new();
    for o in 0..4 {
        owners.push(create_user(store, &format!("bench-{label}-q{o}@example.com")).await);
    }
    for i in 0..rows {
        let o = &owners[i % owners.len()];
        store
            .enqueue_execution(new_execution(o.id, None, 5, crate::now()))
            .await
            .expect("enqueue");
    }
    let t = Instant::now();
    let handles: Vec<_> = (0..claimers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut req = claim_at(&format!("bench-q{w}"), crate::now());
                req.per_user_running_limit = Some(2);
                let mut n = 0_usize;
                while let Some(e) = store.claim_next(&req).await.expect("claim") {
                    let r = result(Verdict::Exited { code: 0 }, crate::now());
                    store
                        .complete_execution(&lease_of(&e), r)
                        .await
                        .expect("complete");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.await.expect("claimer");
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{label}: {claimers} claimers, quota 2/user, claim+complete: {total} in {:.0} ms = {:.0}/s",
        secs * 1000.0,
        total as f64 / secs
    );
}
