//! `rtt.svg`: the round-trip histograms, one panel per phase.

use crate::catalog::{Sys, NSYS, SYSTEMS};
use crate::report::histogram::{histogram_svg, Panel, Series};
use crate::runner::Phase;

/// The round-trip histograms, one panel per phase.
pub fn svg_report(phases: &[Phase]) -> String {
    const COLORS: [&str; NSYS] = [
        "#555555", "#1f77b4", "#ff7f0e", "#9467bd", "#2ca02c", "#d62728", "#8c564b", "#e377c2",
    ];
    let panels: Vec<Panel<'_>> = phases
        .iter()
        .map(|ph| {
            let mut series: Vec<Series<'_>> = SYSTEMS
                .iter()
                .zip(COLORS)
                .filter_map(|(s, color)| {
                    let samples = ph.rtt.get(s.index())?;
                    (!samples.is_empty()).then(|| Series {
                        label: s.label().to_owned(),
                        color,
                        dashed: false,
                        samples,
                    })
                })
                .collect();
            if let Some(samples) = ph.scale.get(Sys::Compact.index()) {
                if !samples.is_empty() {
                    series.push(Series {
                        label: "nfy compact, scale".to_owned(),
                        color: "#2ca02c",
                        dashed: true,
                        samples,
                    });
                }
            }
            Panel {
                title: format!(
                    "{}: {}",
                    ph.name(),
                    if ph.pinned {
                        "every thread and process on one CPU"
                    } else {
                        "threads and processes free to use every CPU"
                    }
                ),
                series,
            }
        })
        .collect();
    histogram_svg("nfy bus benchmark: round-trip time A → B → A", &panels)
}
