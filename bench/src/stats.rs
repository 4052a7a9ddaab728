//! Summaries of measurements: percentiles of samples, and Prometheus text (counters summed
//! over label sets; histogram quantiles from buckets, the way PromQL's
//! `histogram_quantile` interpolates).

// Shared by every section; not every section uses every helper.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::json;

/// Nearest-rank percentile (`p` in 0..=100) of values sorted ascending; `None` if empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Count, min, p50, p95, p99, max and mean of a set of values.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Summary {
            n: v.len(),
            min: v[0],
            // percentile() is Some for a non-empty slice.
            p50: percentile(&v, 50.0).unwrap_or(v[0]),
            p95: percentile(&v, 95.0).unwrap_or(v[0]),
            p99: percentile(&v, 99.0).unwrap_or(v[0]),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        })
    }

    /// Summary of durations, in milliseconds.
    pub fn of_durations_ms(values: &[Duration]) -> Option<Summary> {
        let ms: Vec<f64> = values.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        Summary::of(&ms)
    }

    pub fn to_json(self) -> serde_json::Value {
        json!({"n": self.n, "min": self.min, "p50": self.p50, "p95": self.p95,
               "p99": self.p99, "max": self.max, "mean": self.mean})
    }
}

/// One line of Prometheus text: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricLine {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl MetricLine {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses Prometheus text format 0.0.4 sample lines (comments and malformed lines skipped).
pub fn parse_metrics(text: &str) -> Vec<MetricLine> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MetricLine> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (
                &line[..open],
                parse_labels(&line[open + 1..close])?,
                &line[close + 1..],
            )
        }
        None => {
            let sp = line.find(char::is_whitespace)?;
            (&line[..sp], Vec::new(), &line[sp..])
        }
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(MetricLine {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `a="x",b="y\"z"` -> pairs (escapes \\, \", \n).
fn parse_labels(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                c => value.push(c),
            }
        }
        out.push((key.trim().to_string(), value));
    }
}

/// Sum of every series named `name` (all label sets).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    parse_metrics(text)
        .iter()
        .filter(|m| m.name == name)
        .map(|m| m.value)
        .sum()
}

/// Cumulative buckets `(le, count)` of histogram `name` (the `{name}_bucket` series), summed
/// over label sets, sorted by `le`.
pub fn histogram_buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let bucket = format!("{name}_bucket");
    let mut out: Vec<(f64, f64)> = Vec::new();
    for m in parse_metrics(text).iter().filter(|m| m.name == bucket) {
        let Some(le) = m.label("le").and_then(|v| match v {
            "+Inf" => Some(f64::INFINITY),
            v => v.parse::<f64>().ok(),
        }) else {
            continue;
        };
        match out.iter_mut().find(|(l, _)| *l == le) {
            Some(b) => b.1 += m.value,
            None => out.push((le, m.value)),
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// `after - before` bucket by bucket (the observations made between two scrapes).
pub fn bucket_delta(before: &[(f64, f64)], after: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|(le, c)| {
            let prev = before
                .iter()
                .find(|(l, _)| l == le)
                .map_or(0.0, |(_, c)| *c);
            (*le, (c - prev).max(0.0))
        })
        .collect()
}

/// Quantile `q` (0..=1) from cumulative buckets, interpolating linearly inside the bucket
/// as PromQL does. `None` with no observations; the largest finite bound if the quantile
/// falls in the `+Inf` bucket.
pub fn histogram_quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let mut prev_le = 0.0;
    let mut prev_count = 0.0;
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(prev_le);
            }
            let in_bucket = count - prev_count;
            if in_bucket <= 0.0 {
                return Some(le);
            }
            return Some(prev_le + (le - prev_le) * (rank - prev_count) / in_bucket);
        }
        prev_le = le;
        prev_count = count;
    }
    Some(prev_le)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.p50, s.max, s.n), (1.0, 2.0, 3.0, 3));
    }

    const TEXT: &str = r#"# HELP camgate_camera_frames_total frames received
# TYPE camgate_camera_frames_total counter
camgate_camera_frames_total{camera="1",stream="cam_1"} 250
camgate_camera_frames_total{camera="2",stream="cam_2"} 100
camgate_up 1
h_bucket{le="0.1"} 10
h_bucket{le="0.2"} 30
h_bucket{le="+Inf"} 40
h_sum 5
h_count 40
odd{a="x\"y",b="z"} 2
"#;

    #[test]
    fn sums_counters_over_labels() {
        assert_eq!(metric_sum(TEXT, "camgate_camera_frames_total"), 350.0);
        assert_eq!(metric_sum(TEXT, "camgate_up"), 1.0);
        assert_eq!(metric_sum(TEXT, "missing"), 0.0);
        let odd = parse_metrics(TEXT)
            .into_iter()
            .find(|m| m.name == "odd")
            .unwrap();
        assert_eq!(odd.label("a"), Some("x\"y"));
        assert_eq!(odd.label("b"), Some("z"));
    }

    #[test]
    fn histogram_quantiles_interpolate() {
        let b = histogram_buckets(TEXT, "h");
        assert_eq!(b, vec![(0.1, 10.0), (0.2, 30.0), (f64::INFINITY, 40.0)]);
        // rank 20 of 40: half-way through the (0.1, 0.2] bucket.
        let p50 = histogram_quantile(&b, 0.5).unwrap();
        assert!((p50 - 0.15).abs() < 1e-9, "{p50}");
        // rank 5: half-way through (0, 0.1].
        let p = histogram_quantile(&b, 0.125).unwrap();
        assert!((p - 0.05).abs() < 1e-9, "{p}");
        // In the +Inf bucket: the largest finite bound.
        assert_eq!(histogram_quantile(&b, 0.99), Some(0.2));
        let d = bucket_delta(&[(0.1, 5.0), (0.2, 5.0), (f64::INFINITY, 5.0)], &b);
        assert_eq!(d, vec![(0.1, 5.0), (0.2, 25.0), (f64::INFINITY, 35.0)]);
        assert_eq!(histogram_quantile(&[(0.1, 0.0)], 0.5), None);
    }
}
