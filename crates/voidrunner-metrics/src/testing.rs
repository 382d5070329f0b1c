//! Test support (feature `testing`): parses an exposition with a strict Prometheus
//! text-format parser and looks samples up by name and labels.

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};

/// A parsed exposition.
#[derive(Debug)]
pub struct Scrape(MetricsExposition<PrometheusType, PrometheusValue>);

/// Parses `text` strictly; `Err` carries the parser's complaint.
pub fn parse(text: &str) -> Result<Scrape, String> {
    parse_prometheus(text)
        .map(Scrape)
        .map_err(|e| format!("{e:?}"))
}

impl Scrape {
    /// The value of the first sample of family `name` whose labels include `labels`: a
    /// counter's or gauge's value, a histogram's observation count. `None` when absent.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let family = self.0.families.get(name)?;
        family.iter_samples().find_map(|sample| {
            let set = sample.get_labelset().ok()?;
            let matches = labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v));
            if !matches {
                return None;
            }
            Some(match &sample.value {
                PrometheusValue::Unknown(n) | PrometheusValue::Gauge(n) => n.as_f64(),
                PrometheusValue::Counter(c) => c.value.as_f64(),
                PrometheusValue::Histogram(h) => h.count.unwrap_or_default() as f64,
                PrometheusValue::Summary(s) => s.count.unwrap_or_default() as f64,
            })
        })
    }

    /// The sum of a histogram sample of family `name` whose labels include `labels`.
    pub fn histogram_sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let family = self.0.families.get(name)?;
        family.iter_samples().find_map(|sample| {
            let set = sample.get_labelset().ok()?;
            if !labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
            {
                return None;
            }
            match &sample.value {
                PrometheusValue::Histogram(h) => h.sum.as_ref().map(|n| n.as_f64()),
                _ => None,
            }
        })
    }
}
