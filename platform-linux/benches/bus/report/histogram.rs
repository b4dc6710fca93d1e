//! The hand-written SVG histogram of latency samples (log time axis).

use std::fmt::Write as _;

use crate::latency::summarize;

/// One line of a histogram panel.
pub struct Series<'a> {
    /// Legend text.
    pub label: String,
    /// Stroke colour.
    pub color: &'static str,
    /// Dashed line.
    pub dashed: bool,
    /// Nanosecond samples.
    pub samples: &'a [u64],
}

/// One panel: a title and its lines.
pub struct Panel<'a> {
    /// Title above the panel.
    pub title: String,
    /// The lines.
    pub series: Vec<Series<'a>>,
}

/// Smallest latency on the axis: 1 µs (log10 of nanoseconds).
const LOG_MIN: f64 = 3.0;
/// Largest latency on the axis: 100 ms.
const LOG_MAX: f64 = 8.0;
/// Bins per decade.
const PER_DECADE: usize = 40;

fn bins(samples: &[u64]) -> Vec<f64> {
    let n = ((LOG_MAX - LOG_MIN) as usize) * PER_DECADE;
    let mut counts = vec![0u64; n];
    for &s in samples {
        let l = (s.max(1) as f64).log10();
        let i = (((l - LOG_MIN) * PER_DECADE as f64).floor().max(0.0) as usize).min(n - 1);
        if let Some(c) = counts.get_mut(i) {
            *c += 1;
        }
    }
    let total = samples.len().max(1) as f64;
    counts
        .into_iter()
        .map(|c| 100.0 * c as f64 / total)
        .collect()
}

/// A latency histogram (log time axis, percent of samples per bin), one
/// panel under the other, with a dotted line at each series' median.
pub fn histogram_svg(title: &str, panels: &[Panel<'_>]) -> String {
    let (w, ph) = (960.0, 300.0);
    let (ml, mr, mt, mb) = (70.0, 220.0, 40.0, 50.0);
    let pw = w - ml - mr;
    let height = 30.0 + panels.len() as f64 * (ph + mt + mb);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="20" font-size="15" text-anchor="middle">{}</text>"#,
        w / 2.0,
        escape(title)
    );
    let x_of = |log: f64| ml + (log - LOG_MIN) / (LOG_MAX - LOG_MIN) * pw;
    for (k, panel) in panels.iter().enumerate() {
        let top = 30.0 + k as f64 * (ph + mt + mb) + mt;
        let bottom = top + ph;
        let all: Vec<Vec<f64>> = panel.series.iter().map(|se| bins(se.samples)).collect();
        let ymax = nice_max(all.iter().flatten().copied().fold(0.0, f64::max));
        let y_of = |v: f64| bottom - v / ymax * ph;
        let _ = writeln!(
            s,
            r#"<text x="{ml}" y="{}" font-size="13">{}</text>"#,
            top - 10.0,
            escape(&panel.title)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{ml}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
        );
        // Decade ticks.
        for (d, label) in ["1 µs", "10 µs", "100 µs", "1 ms", "10 ms", "100 ms"]
            .iter()
            .enumerate()
        {
            let x = x_of(LOG_MIN + d as f64);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"##,
                bottom + 16.0
            );
        }
        for i in 0..=4 {
            let v = ymax * f64::from(i) / 4.0;
            let y = y_of(v);
            let _ = writeln!(
                s,
                r##"<line x1="{}" y1="{y:.1}" x2="{ml}" y2="{y:.1}" stroke="#444"/><text x="{}" y="{:.1}" text-anchor="end">{v:.1}%</text>"##,
                ml - 5.0,
                ml - 8.0,
                y + 4.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">round-trip time (log scale); y: share of round trips per bin</text>"#,
            ml + pw / 2.0,
            bottom + 36.0
        );
        for (j, (se, b)) in panel.series.iter().zip(&all).enumerate() {
            let mut pts = String::new();
            let step = 1.0 / PER_DECADE as f64;
            for (i, v) in b.iter().enumerate() {
                let x0 = x_of(LOG_MIN + i as f64 * step);
                let x1 = x_of(LOG_MIN + (i + 1) as f64 * step);
                let y = y_of(*v);
                let _ = write!(pts, "{x0:.1},{y:.1} {x1:.1},{y:.1} ");
            }
            let dash = if se.dashed {
                r#" stroke-dasharray="6,3""#
            } else {
                ""
            };
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.6"{dash} points="{}"/>"#,
                se.color,
                pts.trim_end()
            );
            let mut sorted = se.samples.to_vec();
            if let Some(lat) = summarize(&mut sorted) {
                let x = x_of((lat.p50 * 1000.0).max(1.0).log10());
                let _ = writeln!(
                    s,
                    r#"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="{}" stroke-dasharray="2,3"/>"#,
                    se.color
                );
            }
            let ly = top + 16.0 + j as f64 * 34.0;
            let lx = ml + pw + 15.0;
            let summary = {
                let mut sorted = se.samples.to_vec();
                summarize(&mut sorted).map_or_else(
                    || "no samples".to_owned(),
                    |l| format!("p50 {:.1} p99 {:.1} µs", l.p50, l.p99),
                )
            };
            let _ = writeln!(
                s,
                r##"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text><text x="{}" y="{}" fill="#555">{}</text>"##,
                lx + 22.0,
                se.color,
                lx + 28.0,
                ly + 4.0,
                escape(&se.label),
                lx + 28.0,
                ly + 18.0,
                escape(&summary)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
