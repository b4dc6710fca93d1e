//! The reports: the table on stdout ([`table`]), `bus.json` ([`json`]) and
//! the round-trip histograms ([`svg`]), and the formatting they share.

pub mod histogram;
pub mod json;
pub mod svg;
pub mod table;

use crate::latency::{summarize, Latency};

/// The latency summary of nanosecond samples (`None` when empty).
pub fn lat(samples: &[u64]) -> Option<Latency> {
    let mut v = samples.to_vec();
    summarize(&mut v)
}

/// `x / floor`, when both were measured.
pub fn ratio(x: Option<f64>, floor: Option<f64>) -> Option<f64> {
    match (x, floor) {
        (Some(x), Some(f)) if f > 0.0 => Some(x / f),
        _ => None,
    }
}

/// A figure with `prec` decimals, or `n/a`.
pub fn cell(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.prec$}"))
}

/// A ratio such as `1.52×`, or nothing.
pub fn cell_ratio(v: Option<f64>) -> String {
    v.map_or_else(String::new, |r| format!("{r:.2}×"))
}
