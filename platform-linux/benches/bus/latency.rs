//! Latency summaries: percentiles of nanosecond samples, in microseconds.

/// Percentiles of a latency sample, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// Summarises nanosecond samples (sorted in place); `None` when empty.
pub fn summarize(samples: &mut [u64]) -> Option<Latency> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let at = |q: f64| -> f64 {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
    Some(Latency {
        n: samples.len(),
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: at(1.0),
        mean: sum as f64 / samples.len() as f64 / 1000.0,
    })
}
