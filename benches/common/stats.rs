//! Small statistics: percentiles of samples and the median of repeated runs.

/// The `q` quantile (0..=1) of `sorted` by nearest rank; 0 for no samples.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (the mean of the middle two for an even count); NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() % 2 {
        0 => (sorted[mid - 1] + sorted[mid]) / 2.0,
        _ => sorted[mid],
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub samples: usize,
}

impl Latency {
    /// Percentiles of latencies given in nanoseconds.
    pub fn of(latencies_ns: &[u64]) -> Self {
        let mut sorted = latencies_ns.to_vec();
        sorted.sort_unstable();
        let us = |ns: u64| ns as f64 / 1000.0;
        Self {
            p50_us: us(percentile(&sorted, 0.50)),
            p99_us: us(percentile(&sorted, 0.99)),
            p999_us: us(percentile(&sorted, 0.999)),
            max_us: us(sorted.last().copied().unwrap_or(0)),
            samples: sorted.len(),
        }
    }
}
