//! The resource timeline sampled while a program runs.

mod common;

use common::*;
use std::time::Duration;

#[tokio::test]
async fn growing_program_has_an_increasing_memory_timeline() {
    let Some(t) = sandbox() else { return };
    // 15 steps of 100 ms, each adding 4 MiB that stays touched.
    let o = py(
        &t.sandbox,
        "import time\nkeep = []\nfor i in range(15):\n    keep.append(bytearray(4 << 20))\n    end = time.time() + 0.1\n    while time.time() < end: pass\nprint(len(keep))",
    )
    .await;
    assert_eq!(o.out().trim(), "15", "{o:?}");
    let s = &o.result.samples;
    assert!(s.len() >= 8, "{} samples: {s:?}", s.len());
    assert!(
        s.windows(2)
            .all(|w| w[0].elapsed < w[1].elapsed && w[0].cpu_time <= w[1].cpu_time),
        "time increases, cpu never decreases: {s:?}"
    );
    let (first, peak) = (s[0], s.iter().map(|p| p.memory_bytes).max().unwrap_or(0));
    // The last point may come after the program freed its memory on exit.
    assert!(
        peak >= first.memory_bytes + (24 << 20),
        "memory grows by most of 60 MiB: {first:?} → {peak}"
    );
    let last = s[s.len() - 1];
    assert!(last.cpu_time >= Duration::from_millis(300), "{last:?}");
    assert!(
        last.elapsed <= o.result.wall_time,
        "{last:?} vs {:?}",
        o.result.wall_time
    );
    t.assert_clean();
}

#[tokio::test]
async fn short_runs_have_no_timeline() {
    let Some(t) = sandbox() else { return };
    let o = sh(&t.sandbox, "sleep 0.3").await;
    assert!(o.result.wall_time >= Duration::from_millis(300), "{o:?}");
    assert!(o.result.samples.is_empty(), "{:?}", o.result.samples);
    t.assert_clean();
}
