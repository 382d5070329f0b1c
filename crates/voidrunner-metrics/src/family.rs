//! Labelled series: counters and histograms keyed by a fixed-size tuple of label values.
//! Label values are only ever route templates, languages, verdict kinds, methods and status
//! codes, so the number of series stays bounded.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::text::Writer;

/// Cumulative-bucket histogram of seconds.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    /// Upper bounds (seconds), ascending; `+Inf` is implicit.
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative; summed when rendered).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, seconds: f64) {
        if let Some(i) = self.bounds.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// Counters by label values.
#[derive(Debug)]
pub(crate) struct CounterFamily<const N: usize> {
    labels: [&'static str; N],
    series: Mutex<BTreeMap<[String; N], u64>>,
}

impl<const N: usize> CounterFamily<N> {
    pub(crate) fn new(labels: [&'static str; N]) -> Self {
        Self {
            labels,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn inc(&self, values: [&str; N]) {
        if let Ok(mut s) = self.series.lock() {
            *s.entry(values.map(str::to_owned)).or_default() += 1;
        }
    }

    pub(crate) fn add(&self, values: [&str; N], n: u64) {
        if let Ok(mut s) = self.series.lock() {
            *s.entry(values.map(str::to_owned)).or_default() += n;
        }
    }

    pub(crate) fn write(&self, w: &mut Writer, name: &str, help: &str) {
        w.header(name, help, "counter");
        if let Ok(s) = self.series.lock() {
            for (values, v) in s.iter() {
                w.sample(name, &pairs(&self.labels, values), *v as f64);
            }
        }
    }
}

/// Histograms by label values.
#[derive(Debug)]
pub(crate) struct HistogramFamily<const N: usize> {
    labels: [&'static str; N],
    bounds: &'static [f64],
    series: Mutex<BTreeMap<[String; N], Histogram>>,
}

impl<const N: usize> HistogramFamily<N> {
    pub(crate) fn new(labels: [&'static str; N], bounds: &'static [f64]) -> Self {
        Self {
            labels,
            bounds,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn observe(&self, values: [&str; N], d: Duration) {
        if let Ok(mut s) = self.series.lock() {
            s.entry(values.map(str::to_owned))
                .or_insert_with(|| Histogram::new(self.bounds))
                .observe(d.as_secs_f64());
        }
    }

    pub(crate) fn write(&self, w: &mut Writer, name: &str, help: &str) {
        w.header(name, help, "histogram");
        let Ok(s) = self.series.lock() else { return };
        let bucket = format!("{name}_bucket");
        for (values, h) in s.iter() {
            let base = pairs(&self.labels, values);
            let mut cumulative = 0;
            for (bound, n) in h.bounds.iter().zip(&h.counts) {
                cumulative += n;
                let mut l = base.clone();
                l.push(("le", crate::text::float(*bound)));
                w.sample(&bucket, &l, cumulative as f64);
            }
            let mut l = base.clone();
            l.push(("le", "+Inf".to_owned()));
            w.sample(&bucket, &l, h.count as f64);
            w.sample(&format!("{name}_sum"), &base, h.sum);
            w.sample(&format!("{name}_count"), &base, h.count as f64);
        }
    }
}

fn pairs<const N: usize>(
    names: &[&'static str; N],
    values: &[String; N],
) -> Vec<(&'static str, String)> {
    names.iter().copied().zip(values.iter().cloned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inf_counts_everything() {
        let f = HistogramFamily::new(["language"], &[0.1, 1.0]);
        for ms in [50, 500, 5000] {
            f.observe(["python"], Duration::from_millis(ms));
        }
        let mut w = Writer::default();
        f.write(&mut w, "x_seconds", "help");
        let out = w.finish();
        assert!(
            out.contains("x_seconds_bucket{language=\"python\",le=\"0.1\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{language=\"python\",le=\"1\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{language=\"python\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_count{language=\"python\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_sum{language=\"python\"} 5.55\n"),
            "{out}"
        );
    }
}
