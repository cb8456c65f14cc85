//! Figures the benchmarks print: percentiles of samples, and quantiles of
//! a histogram read from Storytime's `/metrics`.

/// The `p`th percentile (0–100) of `samples`, nearest rank; 0 when empty.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[i]
}

/// The cumulative buckets `(le, count)` of a histogram series in a
/// Prometheus text page, e.g. `storytime_job_duration_seconds` with the
/// labels `outcome="done"`.
pub fn buckets(metrics: &str, name: &str, labels: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{{labels},le=\"");
    let mut out: Vec<(f64, f64)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The `q` quantile (0–1) of the observations between two readings of the
/// same histogram's buckets, interpolated within its bucket as Prometheus's
/// `histogram_quantile` does. `None` without observations.
pub fn quantile_between(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let count_before = |le: f64| before.iter().find(|(b, _)| *b == le).map_or(0.0, |(_, c)| *c);
    let delta: Vec<(f64, f64)> = after.iter().map(|(le, c)| (*le, c - count_before(*le))).collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in &delta {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let within = if count > lower.1 { (rank - lower.1) / (count - lower.1) } else { 1.0 };
            return Some(lower.0 + (le - lower.0) * within);
        }
        lower = (le, count);
    }
    None
}
