//! Series of the git-hook integration's background tasks in `voidrunner-api`: the
//! commit-status reconciler and the cleaner of kept git mirrors.

use std::time::Duration;

use crate::Metrics;
use crate::family::{CounterFamily, HistogramFamily};
use crate::text::Writer;

/// One post to a git host: resolve, connect, answer (the reconciler cuts it at 20 s).
const POST_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0];

/// The hook series.
#[derive(Debug)]
pub(crate) struct HookCounters {
    status_posts: CounterFamily<1>,
    status_post_duration: HistogramFamily<0>,
    mirrors_removed: CounterFamily<0>,
}

impl HookCounters {
    pub(crate) fn new() -> Self {
        Self {
            status_posts: CounterFamily::new(["outcome"]),
            status_post_duration: HistogramFamily::new([], POST_BUCKETS),
            mirrors_removed: CounterFamily::new([]),
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        self.status_posts.write(
            w,
            "voidrunner_commit_status_posts_total",
            "Commit-status posts this process's reconciler made, by outcome (posted, retry, given_up).",
        );
        self.status_post_duration.write(
            w,
            "voidrunner_commit_status_post_duration_seconds",
            "Time of one commit-status post to the git host, whatever its outcome.",
        );
        self.mirrors_removed.write(
            w,
            "voidrunner_git_mirrors_removed_total",
            "Kept git mirrors this process removed after [hooks] mirror_max_idle_secs unused.",
        );
    }
}

impl Metrics {
    /// Counts one commit-status post by outcome: `posted`, `retry` (failed, tried again
    /// later) or `given_up` (refused for good or out of attempts) — a fixed set; callers
    /// pass one of these — with the time the post took.
    pub fn record_commit_status(&self, outcome: &'static str, elapsed: Duration) {
        let hooks = &self.inner.hooks;
        hooks.status_posts.inc([outcome]);
        hooks.status_post_duration.observe([], elapsed);
    }

    /// Counts `n` idle git mirrors removed by the mirror cleaner.
    pub fn record_mirrors_removed(&self, n: u64) {
        if n > 0 {
            self.inner.hooks.mirrors_removed.add([], n);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::Metrics;

    #[test]
    fn commit_status_posts_and_removed_mirrors_are_rendered() {
        let m = Metrics::new();
        let empty = crate::testing::parse(&m.render(None)).expect("parses");
        assert_eq!(
            empty.value("voidrunner_commit_status_posts_total", &[]),
            None
        );
        m.record_commit_status("posted", Duration::from_millis(30));
        m.record_commit_status("posted", Duration::from_millis(10));
        m.record_commit_status("retry", Duration::from_secs(20));
        m.record_mirrors_removed(0);
        m.record_mirrors_removed(2);
        let text = m.render(None);
        let s = crate::testing::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let posts = |o| s.value("voidrunner_commit_status_posts_total", &[("outcome", o)]);
        assert_eq!((posts("posted"), posts("retry")), (Some(2.0), Some(1.0)));
        assert_eq!(posts("given_up"), None);
        let name = "voidrunner_commit_status_post_duration_seconds";
        assert_eq!(s.value(name, &[]), Some(3.0));
        let sum = s.histogram_sum(name, &[]).expect("sum");
        assert!((sum - 20.04).abs() < 1e-9, "{sum}");
        assert_eq!(
            s.value("voidrunner_git_mirrors_removed_total", &[]),
            Some(2.0)
        );
    }
}
