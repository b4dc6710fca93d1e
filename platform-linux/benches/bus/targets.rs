//! The targets of issues 6, 12 and 16, each computed from the measured figures
//! and judged on the pinned phase; and how the NATS peer compares with
//! what issue 12 measured of it.

use crate::burst::Burst;
use crate::catalog::{Sys, Work};
use crate::latency::Latency;
use crate::report::{lat, ratio};
use crate::runner::Phase;

/// Which side of its limit a target's figure must be on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// At most this.
    AtMost(f64),
    /// At least this.
    AtLeast(f64),
}

impl Bound {
    fn holds(self, v: f64) -> bool {
        match self {
            Bound::AtMost(b) => v <= b,
            Bound::AtLeast(b) => v >= b,
        }
    }

    /// Whether `v` is better than `other` (lower for an upper bound).
    fn better(self, v: f64, other: f64) -> bool {
        match self {
            Bound::AtMost(_) => v < other,
            Bound::AtLeast(_) => v > other,
        }
    }

    /// The number, for `bus.json`.
    pub fn value(self) -> f64 {
        match self {
            Bound::AtMost(b) | Bound::AtLeast(b) => b,
        }
    }
}

/// Whether a target must also beat NATS's figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersusNats {
    /// NATS's figure is shown, not judged.
    Shown,
    /// nfy must be ahead of it.
    Ahead,
}

/// How a target fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Met.
    Met,
    /// The figure is on the wrong side of the limit.
    Missed,
    /// The figure is within the limit, but something was lost (or a
    /// burst saw unicast errors, disconnects or disorder).
    Loss,
    /// Within the limit and clean, but NATS did better.
    BehindNats,
    /// The figure was not measured (pinned).
    NotMeasured,
}

impl Verdict {
    /// As the table shows it.
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Met => "yes",
            Verdict::Missed => "NO",
            Verdict::Loss => "NO (loss)",
            Verdict::BehindNats => "NO (behind NATS)",
            Verdict::NotMeasured => "not measured",
        }
    }

    /// `Some(met)`, `None` when not measured.
    pub fn met(self) -> Option<bool> {
        match self {
            Verdict::Met => Some(true),
            Verdict::NotMeasured => None,
            _ => Some(false),
        }
    }
}

/// One target.
pub struct Target {
    /// The issue that set it.
    pub issue: u32,
    pub name: &'static str,
    /// The limit, as text.
    pub limit: String,
    pub pinned: Option<f64>,
    pub unpinned: Option<f64>,
    pub unit: &'static str,
    pub bound: Bound,
    /// Extra condition, pinned (zero loss; a clean burst).
    pub also: Option<bool>,
    /// NATS's value of the same figure, pinned.
    pub nats: Option<f64>,
    pub versus_nats: Option<VersusNats>,
}

impl Target {
    /// Judged on the pinned figures.
    pub fn verdict(&self) -> Verdict {
        let Some(v) = self.pinned else {
            return Verdict::NotMeasured;
        };
        if !self.bound.holds(v) {
            return Verdict::Missed;
        }
        if self.also == Some(false) {
            return Verdict::Loss;
        }
        match (self.versus_nats, self.nats) {
            (Some(VersusNats::Ahead), Some(n)) if !self.bound.better(v, n) => Verdict::BehindNats,
            _ => Verdict::Met,
        }
    }
}

fn find(phases: &[Phase], pinned: bool) -> Option<&Phase> {
    phases.iter().find(|p| p.pinned == pinned)
}

/// A figure of one phase.
type Figure<'a> = Box<dyn Fn(&Phase) -> Option<f64> + 'a>;

fn rtt(p: &Phase, s: Sys, q: fn(&Latency) -> f64) -> Option<f64> {
    lat(p.rtt.get(s.index())?).map(|l| q(&l))
}

fn rtt_ratio<'a>(s: Sys, q: fn(&Latency) -> f64) -> Figure<'a> {
    Box::new(move |p| ratio(rtt(p, s, q), rtt(p, Sys::Floor, q)))
}

fn rate_ratio<'a>(w: Work, a: Sys, b: Sys) -> Figure<'a> {
    Box::new(move |p| {
        let store = if w == Work::Fanout { &p.fan } else { &p.tp };
        let per_sec = |s: Sys| store.get(s.index()).copied().flatten().map(|r| r.per_sec());
        ratio(per_sec(a), per_sec(b))
    })
}

fn burst_of(p: &Phase, s: Sys) -> Option<&Burst> {
    p.burst.get(s.index())?.as_ref()
}

fn burst_ratio<'a>(s: Sys) -> Figure<'a> {
    Box::new(move |p| {
        ratio(
            burst_of(p, s).map(Burst::per_sec),
            burst_of(p, Sys::Floor).map(Burst::per_sec),
        )
    })
}

/// Every target, in the table's order.
pub fn targets(phases: &[Phase]) -> Vec<Target> {
    let pinned = find(phases, true);
    let unpinned = find(phases, false);
    let target = |issue: u32,
                  name: &'static str,
                  limit: &str,
                  unit: &'static str,
                  bound: Bound,
                  figure: Figure<'_>,
                  also: Option<bool>| Target {
        issue,
        name,
        limit: limit.to_owned(),
        pinned: pinned.and_then(&figure),
        unpinned: unpinned.and_then(&figure),
        unit,
        bound,
        also,
        nats: None,
        versus_nats: None,
    };
    let versus = |mut t: Target, nats: Figure<'_>, how: VersusNats| {
        t.nats = pinned.and_then(nats);
        t.versus_nats = Some(how);
        t
    };
    let no_loss = |w: Work, s: Sys| {
        pinned.map(|p| {
            let store = if w == Work::Fanout { &p.fan } else { &p.tp };
            store
                .get(s.index())
                .copied()
                .flatten()
                .is_some_and(|r| r.lost == 0)
        })
    };
    let clean_burst = |s: Sys| pinned.map(|p| burst_of(p, s).is_some_and(Burst::clean));
    let mib = |v: Option<u64>| v.map(|k| k as f64 / 1024.0);
    let p50: fn(&Latency) -> f64 = |l| l.p50;
    let p99: fn(&Latency) -> f64 = |l| l.p99;
    let tls_p50: Figure<'_> =
        Box::new(move |p| ratio(rtt(p, Sys::LibTls, p50), rtt(p, Sys::LibTcp, p50)));
    vec![
        target(
            16,
            "TLS rtt p50 ≤ 1.3× plain TCP (library, loopback)",
            "1.30×",
            "×",
            Bound::AtMost(1.3),
            tls_p50,
            None,
        ),
        target(
            6,
            "rtt p50 ≤ 1.3× floor",
            "1.30×",
            "×",
            Bound::AtMost(1.3),
            rtt_ratio(Sys::Compact, p50),
            None,
        ),
        target(
            6,
            "rtt p99 ≤ 2× floor",
            "2.00×",
            "×",
            Bound::AtMost(2.0),
            rtt_ratio(Sys::Compact, p99),
            None,
        ),
        target(
            6,
            "throughput ≥ 1.5× floor, zero loss",
            "1.50×",
            "×",
            Bound::AtLeast(1.5),
            rate_ratio(Work::Throughput, Sys::Compact, Sys::Floor),
            no_loss(Work::Throughput, Sys::Compact),
        ),
        target(
            6,
            "(same, sender using Client::batch)",
            "1.50×",
            "×",
            Bound::AtLeast(1.5),
            rate_ratio(Work::Throughput, Sys::Batch, Sys::Floor),
            no_loss(Work::Throughput, Sys::Batch),
        ),
        target(
            6,
            "fanout ≥ 1.5× floor, zero loss",
            "1.50×",
            "×",
            Bound::AtLeast(1.5),
            rate_ratio(Work::Fanout, Sys::Compact, Sys::Floor),
            no_loss(Work::Fanout, Sys::Compact),
        ),
        target(
            6,
            "scale rtt p50 ≤ 1.1× empty server",
            "1.10×",
            "×",
            Bound::AtMost(1.1),
            Box::new(|p| {
                ratio(
                    lat(p.scale.get(Sys::Compact.index())?).map(|l| l.p50),
                    rtt(p, Sys::Compact, p50),
                )
            }),
            None,
        ),
        target(
            6,
            "notifysvc peak RSS idle ≤ 4 MiB",
            "4.0 MiB",
            " MiB",
            Bound::AtMost(4.0),
            Box::new(|p| mib(p.mem_idle_kib)),
            None,
        ),
        target(
            6,
            "notifysvc peak RSS 256×16 ≤ 16 MiB",
            "16.0 MiB",
            " MiB",
            Bound::AtMost(16.0),
            Box::new(|p| mib(p.mem_loaded_kib)),
            None,
        ),
        target(
            6,
            "json throughput within 2× of compact",
            "≥ 0.50×",
            "×",
            Bound::AtLeast(0.5),
            rate_ratio(Work::Throughput, Sys::Json, Sys::Compact),
            no_loss(Work::Throughput, Sys::Json),
        ),
        versus(
            target(
                12,
                "burst, Client::batch ≥ 2.2× floor",
                "2.20×",
                "×",
                Bound::AtLeast(2.2),
                burst_ratio(Sys::Batch),
                clean_burst(Sys::Batch),
            ),
            burst_ratio(Sys::Nats),
            VersusNats::Ahead,
        ),
        versus(
            target(
                12,
                "burst, Client::notify per call ≥ 1.5×",
                "1.50×",
                "×",
                Bound::AtLeast(1.5),
                burst_ratio(Sys::Compact),
                clean_burst(Sys::Compact),
            ),
            burst_ratio(Sys::Nats),
            VersusNats::Shown,
        ),
        versus(
            target(
                12,
                "burst, raw JSON/TCP: clean (any rate)",
                "0 lost",
                "×",
                Bound::AtLeast(0.0),
                burst_ratio(Sys::Json),
                clean_burst(Sys::Json),
            ),
            burst_ratio(Sys::Nats),
            VersusNats::Shown,
        ),
        versus(
            target(
                12,
                "fanout ≥ 3.3× floor, zero loss",
                "3.30×",
                "×",
                Bound::AtLeast(3.3),
                rate_ratio(Work::Fanout, Sys::Compact, Sys::Floor),
                no_loss(Work::Fanout, Sys::Compact),
            ),
            rate_ratio(Work::Fanout, Sys::Nats, Sys::Floor),
            VersusNats::Ahead,
        ),
        versus(
            target(
                12,
                "rtt p50 ≤ 1.3× floor",
                "1.30×",
                "×",
                Bound::AtMost(1.3),
                rtt_ratio(Sys::Compact, p50),
                None,
            ),
            rtt_ratio(Sys::Nats, p50),
            VersusNats::Ahead,
        ),
    ]
}

/// NATS against the floor, pinned, beside what issue 12 measured of it on
/// this kind of machine (about 1.8× the floor's round trip, 2.1× its
/// burst throughput, 3.1× its fanout): `(figure, issue 12, this run)`.
pub fn nats_check(phases: &[Phase]) -> Vec<(&'static str, f64, Option<f64>)> {
    let pinned = find(phases, true);
    let of = |f: Figure<'_>| pinned.and_then(f);
    vec![
        ("rtt p50 ×floor", 1.8, of(rtt_ratio(Sys::Nats, |l| l.p50))),
        ("burst ×floor", 2.1, of(burst_ratio(Sys::Nats))),
        (
            "fanout ×floor",
            3.1,
            of(rate_ratio(Work::Fanout, Sys::Nats, Sys::Floor)),
        ),
    ]
}
