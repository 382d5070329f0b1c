//! The resource timeline of a run: the supervise loop asks [`Sampler::due`] after every poll
//! and reads the cgroup's memory and CPU counters when a sample is due. No thread: the poll
//! timeout is shortened to the next sample time ([`Sampler::timeout_ms`]).
//!
//! At most [`MAX_POINTS`] points are kept: when full, every other point is dropped and the
//! interval doubles, so a long run keeps an evenly spaced timeline of bounded size.

use crate::cgroup::RunCgroup;
use crate::protocol::UsageSample;
use std::time::{Duration, Instant};

/// Interval between samples at the start of a run.
pub(super) const INTERVAL: Duration = Duration::from_millis(100);
/// Most points kept.
pub(super) const MAX_POINTS: usize = 300;
/// Runs shorter than this report no timeline (the summary figures say it all).
pub(super) const MIN_WALL: Duration = Duration::from_secs(1);

/// Collects [`UsageSample`]s of one run.
#[derive(Debug)]
pub(super) struct Sampler {
    start: Instant,
    interval: Duration,
    next: Instant,
    points: Vec<UsageSample>,
}

impl Sampler {
    /// A sampler for a run started at `start`; the first sample is one interval in.
    pub(super) fn new(start: Instant) -> Self {
        Self {
            start,
            interval: INTERVAL,
            next: start + INTERVAL,
            points: Vec::new(),
        }
    }

    /// Whether a sample is due at `now`.
    pub(super) fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// Milliseconds until the next sample (for the poll timeout).
    pub(super) fn timeout_ms(&self, now: Instant) -> i32 {
        super::supervise::remaining_ms(self.next, now)
    }

    /// Reads the cgroup's counters now (nothing without a cgroup or when both are missing).
    pub(super) fn sample(&mut self, now: Instant, cg: Option<&dyn RunCgroup>) {
        while self.next <= now {
            self.next += self.interval;
        }
        let Some(cg) = cg else { return };
        let (memory, cpu) = cg.usage();
        if memory.is_none() && cpu.is_none() {
            return;
        }
        self.push(UsageSample {
            elapsed: now.saturating_duration_since(self.start),
            memory_bytes: memory.unwrap_or(0),
            cpu_time: cpu.unwrap_or_default(),
        });
    }

    /// Appends a point; when the timeline is full, keeps every other point instead, doubles
    /// the interval and drops `point` (off the new grid), so the spacing stays even.
    fn push(&mut self, point: UsageSample) {
        if self.points.len() < MAX_POINTS {
            self.points.push(point);
            return;
        }
        let mut i = 0;
        self.points.retain(|_| {
            i += 1;
            i % 2 == 0
        });
        self.interval *= 2;
        let last = self.points.last().map_or(point.elapsed, |p| p.elapsed);
        self.next = self.start + last + self.interval;
    }

    /// The timeline for a run of `wall` (empty for runs under [`MIN_WALL`]).
    pub(super) fn finish(&mut self, wall: Duration) -> Vec<UsageSample> {
        let points = std::mem::take(&mut self.points);
        if wall < MIN_WALL { Vec::new() } else { points }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(ms: u64) -> UsageSample {
        UsageSample {
            elapsed: Duration::from_millis(ms),
            memory_bytes: ms,
            cpu_time: Duration::from_millis(ms),
        }
    }

    #[test]
    fn full_timeline_is_halved_and_the_rate_too() {
        let start = Instant::now();
        let mut s = Sampler::new(start);
        for i in 1..=MAX_POINTS as u64 {
            s.push(point(i * 100));
        }
        assert_eq!(s.points.len(), MAX_POINTS);
        s.push(point(30_100));
        assert_eq!(s.points.len(), MAX_POINTS / 2);
        assert_eq!(s.interval, INTERVAL * 2);
        assert_eq!(s.points[0].elapsed, Duration::from_millis(200));
        let gaps: Vec<_> = s
            .points
            .windows(2)
            .map(|w| w[1].elapsed - w[0].elapsed)
            .collect();
        assert!(
            gaps.iter().all(|g| *g == Duration::from_millis(200)),
            "{gaps:?}"
        );
        assert_eq!(s.next, start + Duration::from_millis(30_200));
    }

    #[test]
    fn short_runs_have_no_timeline() {
        let mut s = Sampler::new(Instant::now());
        s.push(point(100));
        assert!(s.finish(Duration::from_millis(900)).is_empty());
        let mut s = Sampler::new(Instant::now());
        s.push(point(100));
        assert_eq!(s.finish(Duration::from_millis(1500)).len(), 1);
    }

    #[test]
    fn due_times_skip_missed_intervals() {
        let start = Instant::now();
        let mut s = Sampler::new(start);
        assert!(!s.due(start));
        let late = start + Duration::from_millis(350);
        assert!(s.due(late));
        s.sample(late, None);
        assert!(!s.due(late));
        assert_eq!(s.next, start + Duration::from_millis(400));
        assert_eq!(s.timeout_ms(late), 50);
    }
}
