//! `bus.json`: every figure, the counts, the targets and whether each is
//! met.

use serde_json::{json, Value};

use crate::burst::Burst;
use crate::catalog::{Sys, SYSTEMS};
use crate::common::{self, Rate};
use crate::config::Config;
use crate::floor;
use crate::report::lat;
use crate::runner::Phase;
use crate::targets::{nats_check, targets, Bound, VersusNats};

/// The whole report as JSON.
pub fn json_report(cfg: &Config, phases: &[Phase], cpus: usize) -> Value {
    let lat_json = |s: &[u64]| {
        lat(s).map_or(Value::Null, |l| {
            json!({"n": l.n, "p50_us": l.p50, "p90_us": l.p90, "p99_us": l.p99,
                   "max_us": l.max, "mean_us": l.mean})
        })
    };
    let rate_json = |r: &Option<Rate>| {
        r.map_or(
            Value::Null,
            |r| json!({"per_sec": r.per_sec(), "items": r.items, "secs": r.secs, "lost": r.lost}),
        )
    };
    let burst_json = |b: &Option<Burst>| {
        b.as_ref().map_or(Value::Null, |b| {
            json!({"per_sec": b.per_sec(), "n": b.n, "sent": b.sent, "delivered": b.delivered,
                   "lost": b.lost(), "out_of_order": b.out_of_order,
                   "unicast_errors": b.unicast_errors, "disconnects": b.disconnects(),
                   "server_disconnects": b.server_disconnects,
                   "client_disconnects": b.client_disconnects, "secs": b.secs,
                   "server_peak_rss_kib": b.server_peak_kib,
                   "clean": b.clean(), "notes": b.notes})
        })
    };
    let mut out = serde_json::Map::new();
    for ph in phases {
        let per_sys = |f: &dyn Fn(Sys) -> Value| {
            let mut m = serde_json::Map::new();
            for s in SYSTEMS {
                m.insert(s.key().to_owned(), f(s));
            }
            Value::Object(m)
        };
        out.insert(
            ph.name().to_owned(),
            json!({
                "seconds": ph.secs,
                "rtt": per_sys(&|s| ph.rtt.get(s.index()).map_or(Value::Null, |v| lat_json(v))),
                "scale": per_sys(&|s| ph.scale.get(s.index()).map_or(Value::Null, |v| lat_json(v))),
                "throughput": per_sys(&|s| ph.tp.get(s.index()).map_or(Value::Null, rate_json)),
                "burst": per_sys(&|s| ph.burst.get(s.index()).map_or(Value::Null, burst_json)),
                "fanout": per_sys(&|s| ph.fan.get(s.index()).map_or(Value::Null, rate_json)),
                "memory_kib": {
                    "idle_peak": ph.mem_idle_kib,
                    "loaded_peak": ph.mem_loaded_kib,
                    "after_workloads_peak": ph.mem_after_kib,
                },
                "errors": ph.errors,
            }),
        );
    }
    let targets: Vec<Value> = targets(phases)
        .iter()
        .map(|t| {
            json!({"issue": t.issue, "target": t.name, "limit": t.limit,
                   "bound": t.bound.value(),
                   "at_most": matches!(t.bound, Bound::AtMost(_)), "pinned": t.pinned,
                   "unpinned": t.unpinned, "also_clean": t.also,
                   "nats_pinned": t.nats,
                   "must_beat_nats": t.versus_nats == Some(VersusNats::Ahead),
                   "met": t.verdict().met(), "verdict": t.verdict().text()})
        })
        .collect();
    json!({
        "benchmark": "nfy bus (issues 6 and 12)",
        "systems": SYSTEMS.iter().map(|s| (s.key(), s.label())).collect::<std::collections::BTreeMap<_, _>>(),
        "mode": if cfg.quick { "quick" } else { "full" },
        "cpus": cpus,
        "parameter_bytes": common::PARAM.len(),
        "floor_payload_bytes": floor::FLOOR_PAYLOAD,
        "window": cfg.window,
        "counts": {
            "rtt_rounds": cfg.rtt_rounds, "rtt_per_round": cfg.rtt_n,
            "rtt_warmup_per_round": cfg.rtt_warmup,
            "throughput_rounds": cfg.tp_rounds, "throughput_per_round": cfg.tp_n,
            "burst_rounds": cfg.burst_rounds, "burst_per_round": cfg.burst_n,
            "burst_batch": cfg.burst_batch, "burst_idle_secs": cfg.idle.as_secs_f64(),
            "fanout_rounds": cfg.fan_rounds, "fanout_per_round": cfg.fan_n,
            "fanout_receivers": cfg.receivers,
            "scale_connections": cfg.scale_conns, "scale_registrations_per_connection": cfg.scale_regs,
            "memory_connections": cfg.mem_conns, "memory_registrations_per_connection": cfg.mem_regs,
        },
        "max_queue": cfg.max_queue,
        "wrap": cfg.wrap,
        "phases": Value::Object(out),
        "targets": targets,
        "nats_check": nats_check(phases).into_iter().map(|(figure, issue12, measured)| {
            json!({"figure": figure, "issue_12_measured": issue12, "this_run": measured})
        }).collect::<Vec<_>>(),
        "notes": cfg.notes,
    })
}
