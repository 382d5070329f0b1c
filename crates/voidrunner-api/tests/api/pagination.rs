//! Cursor pagination: complete, duplicate-free and stable while rows are inserted.

use std::collections::HashSet;

use reqwest::Method;
use tokio::sync::mpsc;
use voidrunner_api_types::ListTasksQuery;

use crate::helpers::{Backend, assert_error, backend_tests, create_task};

backend_tests!(
    pages_have_no_gaps_or_duplicates_during_inserts,
    bad_page_parameters_are_400
);

async fn pages_have_no_gaps_or_duplicates_during_inserts(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let mut existing = Vec::new();
    for i in 0..23 {
        existing.push(create_task(&user, &format!("task {i}")).await.id);
    }

    // A concurrent writer inserts two tasks each time it is poked, between page reads, so
    // every page boundary sees fresh rows land (deterministically, without sleeps).
    let (poke_tx, mut poke_rx) = mpsc::channel::<()>(1);
    let (done_tx, mut done_rx) = mpsc::channel::<Vec<uuid::Uuid>>(1);
    let writer_user = user.clone();
    let writer = tokio::spawn(async move {
        let mut n = 0;
        while poke_rx.recv().await.is_some() {
            let mut ids = Vec::new();
            for _ in 0..2 {
                ids.push(create_task(&writer_user, &format!("late {n}")).await.id);
                n += 1;
            }
            done_tx.send(ids).await.expect("report");
        }
    });

    let mut seen = Vec::new();
    let mut inserted = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = user
            .client
            .list_tasks(&ListTasksQuery {
                limit: Some(5),
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .expect("page");
        assert!(page.items.len() <= 5);
        seen.extend(page.items.iter().map(|t| (t.created_at, t.id)));
        pages += 1;
        poke_tx.send(()).await.expect("poke");
        inserted.extend(done_rx.recv().await.expect("writer ack"));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    drop(poke_tx);
    writer.await.expect("writer");

    let ids: Vec<uuid::Uuid> = seen.iter().map(|(_, id)| *id).collect();
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicates");
    let mut expected = existing.clone();
    expected.reverse();
    assert_eq!(
        ids, expected,
        "every pre-existing task exactly once, newest first"
    );
    assert!(
        inserted.iter().all(|id| !unique.contains(id)),
        "late rows land before page 1"
    );
    assert_eq!(pages, 5, "23 rows in pages of 5");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(sorted, seen, "ordered by (created_at, id) descending");

    // A fresh listing sees everything.
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = user
            .client
            .list_tasks(&ListTasksQuery {
                limit: Some(100),
                cursor,
                ..Default::default()
            })
            .await
            .expect("page");
        all.extend(page.items.into_iter().map(|t| t.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(all.len(), existing.len() + inserted.len());
}

async fn bad_page_parameters_are_400(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    for _ in 0..3 {
        create_task(&user, "t").await;
    }
    let page = user
        .client
        .list_tasks(&ListTasksQuery {
            limit: Some(2),
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!(page.items.len(), 2);
    assert!(page.next_cursor.is_some());
    let default = user
        .client
        .list_tasks(&ListTasksQuery::default())
        .await
        .expect("default");
    assert_eq!(default.items.len(), 3);
    assert_eq!(default.next_cursor, None, "last page has no cursor");

    let cases = [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=djE6MTox", "cursor"),
        ("status=finished", "status"),
        ("created_before=yesterday", "created_before"),
        ("created_after=2024-13-01T00:00:00Z", "created_after"),
        ("all=maybe", "all"),
        ("colour=red", "colour"),
    ];
    for (qs, field) in cases {
        let got = app
            .call(
                Method::GET,
                &format!("/api/v1/tasks?{qs}"),
                Some(user.token()),
                None,
            )
            .await;
        assert_error(&got, 400, "invalid_query", Some(field));
    }
    let got = app
        .call(
            Method::GET,
            "/api/v1/tasks?limit=100",
            Some(user.token()),
            None,
        )
        .await;
    assert_eq!(got.0, 200, "limit 100 is allowed");
}
