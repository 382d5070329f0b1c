//! The Prometheus text exposition format, version 0.0.4: `# HELP`, `# TYPE`, then one line
//! per sample, label values escaped.

use std::fmt::Write as _;

/// Accumulates the exposition text.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    out: String,
}

impl Writer {
    pub(crate) fn header(&mut self, name: &str, help: &str, kind: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, String)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", float(value));
    }

    /// A gauge with no labels, header included.
    pub(crate) fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, help, "gauge");
        self.sample(name, &[], value);
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// Label value escaping: backslash, double quote and line feed.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A sample value as Prometheus writes it (`+Inf`, `NaN`, shortest round-trip decimal).
pub(crate) fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut w = Writer::default();
        w.sample("m", &[("route", "a\"b\\c\nd".to_owned())], 1.0);
        assert_eq!(w.finish(), "m{route=\"a\\\"b\\\\c\\nd\"} 1\n");
    }

    #[test]
    fn floats_render_like_prometheus() {
        assert_eq!(float(1.0), "1");
        assert_eq!(float(0.25), "0.25");
        assert_eq!(float(f64::INFINITY), "+Inf");
    }
}
