//! The targets of issue 6, each computed from the measured figures and
//! judged on the pinned phase.

use crate::catalog::{Sys, Work};
use crate::latency::Latency;
use crate::report::{lat, ratio};
use crate::runner::Phase;
/// One target of issue 6.
pub struct Target {
    pub name: &'static str,
    /// The limit, as text.
    pub limit: String,
    pub pinned: Option<f64>,
    pub unpinned: Option<f64>,
    pub unit: &'static str,
    /// Met when the value is at most (true) or at least (false) the limit.
    pub at_most: bool,
    pub bound: f64,
    /// Extra condition (zero loss).
    pub also: Option<bool>,
}

impl Target {
    pub fn met(&self) -> Option<bool> {
        let v = self.pinned?;
        let ok = if self.at_most {
            v <= self.bound
        } else {
            v >= self.bound
        };
        Some(ok && self.also.unwrap_or(true))
    }
}

fn find(phases: &[Phase], pinned: bool) -> Option<&Phase> {
    phases.iter().find(|p| p.pinned == pinned)
}

pub fn targets(phases: &[Phase]) -> Vec<Target> {
    let get = |pinned: bool, f: &dyn Fn(&Phase) -> Option<f64>| find(phases, pinned).and_then(f);
    let rtt = |p: &Phase, s: Sys, q: fn(&Latency) -> f64| lat(p.rtt.get(s.index())?).map(|l| q(&l));
    let scale = |p: &Phase, s: Sys| lat(p.scale.get(s.index())?).map(|l| l.p50);
    let rate = |p: &Phase, w: Work, s: Sys| {
        let store = if w == Work::Fanout { &p.fan } else { &p.tp };
        store.get(s.index()).copied().flatten()
    };
    let rate_ratio = |p: &Phase, w: Work, a: Sys, b: Sys| {
        ratio(
            rate(p, w, a).map(|r| r.per_sec()),
            rate(p, w, b).map(|r| r.per_sec()),
        )
    };
    let no_loss = |w: Work, systems: &[Sys]| {
        find(phases, true).map(|p| {
            systems
                .iter()
                .all(|&s| rate(p, w, s).is_some_and(|r| r.lost == 0))
        })
    };
    let mib = |v: Option<u64>| v.map(|k| k as f64 / 1024.0);
    vec![
        Target {
            name: "rtt p50 ≤ 1.3× floor",
            limit: "1.30×".into(),
            pinned: get(true, &|p| {
                ratio(
                    rtt(p, Sys::Compact, |l| l.p50),
                    rtt(p, Sys::Floor, |l| l.p50),
                )
            }),
            unpinned: get(false, &|p| {
                ratio(
                    rtt(p, Sys::Compact, |l| l.p50),
                    rtt(p, Sys::Floor, |l| l.p50),
                )
            }),
            unit: "×",
            at_most: true,
            bound: 1.3,
            also: None,
        },
        Target {
            name: "rtt p99 ≤ 2× floor",
            limit: "2.00×".into(),
            pinned: get(true, &|p| {
                ratio(
                    rtt(p, Sys::Compact, |l| l.p99),
                    rtt(p, Sys::Floor, |l| l.p99),
                )
            }),
            unpinned: get(false, &|p| {
                ratio(
                    rtt(p, Sys::Compact, |l| l.p99),
                    rtt(p, Sys::Floor, |l| l.p99),
                )
            }),
            unit: "×",
            at_most: true,
            bound: 2.0,
            also: None,
        },
        Target {
            name: "throughput ≥ 1.5× floor, zero loss",
            limit: "1.50×".into(),
            pinned: get(true, &|p| {
                rate_ratio(p, Work::Throughput, Sys::Compact, Sys::Floor)
            }),
            unpinned: get(false, &|p| {
                rate_ratio(p, Work::Throughput, Sys::Compact, Sys::Floor)
            }),
            unit: "×",
            at_most: false,
            bound: 1.5,
            also: no_loss(Work::Throughput, &[Sys::Compact]),
        },
        Target {
            name: "(same, sender using Client::batch)",
            limit: "1.50×".into(),
            pinned: get(true, &|p| {
                rate_ratio(p, Work::Throughput, Sys::Batch, Sys::Floor)
            }),
            unpinned: get(false, &|p| {
                rate_ratio(p, Work::Throughput, Sys::Batch, Sys::Floor)
            }),
            unit: "×",
            at_most: false,
            bound: 1.5,
            also: no_loss(Work::Throughput, &[Sys::Batch]),
        },
        Target {
            name: "fanout ≥ 1.5× floor, zero loss",
            limit: "1.50×".into(),
            pinned: get(true, &|p| {
                rate_ratio(p, Work::Fanout, Sys::Compact, Sys::Floor)
            }),
            unpinned: get(false, &|p| {
                rate_ratio(p, Work::Fanout, Sys::Compact, Sys::Floor)
            }),
            unit: "×",
            at_most: false,
            bound: 1.5,
            also: no_loss(Work::Fanout, &[Sys::Compact]),
        },
        Target {
            name: "scale rtt p50 ≤ 1.1× empty server",
            limit: "1.10×".into(),
            pinned: get(true, &|p| {
                ratio(scale(p, Sys::Compact), rtt(p, Sys::Compact, |l| l.p50))
            }),
            unpinned: get(false, &|p| {
                ratio(scale(p, Sys::Compact), rtt(p, Sys::Compact, |l| l.p50))
            }),
            unit: "×",
            at_most: true,
            bound: 1.1,
            also: None,
        },
        Target {
            name: "notifysvc peak RSS idle ≤ 4 MiB",
            limit: "4.0 MiB".into(),
            pinned: get(true, &|p| mib(p.mem_idle_kib)),
            unpinned: get(false, &|p| mib(p.mem_idle_kib)),
            unit: " MiB",
            at_most: true,
            bound: 4.0,
            also: None,
        },
        Target {
            name: "notifysvc peak RSS 256×16 ≤ 16 MiB",
            limit: "16.0 MiB".into(),
            pinned: get(true, &|p| mib(p.mem_loaded_kib)),
            unpinned: get(false, &|p| mib(p.mem_loaded_kib)),
            unit: " MiB",
            at_most: true,
            bound: 16.0,
            also: None,
        },
        Target {
            name: "json throughput within 2× of compact",
            limit: "≥ 0.50×".into(),
            pinned: get(true, &|p| {
                rate_ratio(p, Work::Throughput, Sys::Json, Sys::Compact)
            }),
            unpinned: get(false, &|p| {
                rate_ratio(p, Work::Throughput, Sys::Json, Sys::Compact)
            }),
            unit: "×",
            at_most: false,
            bound: 0.5,
            also: no_loss(Work::Throughput, &[Sys::Json]),
        },
    ]
}
