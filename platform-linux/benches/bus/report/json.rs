//! `bus.json`: every figure, the counts, the targets and whether each is
//! met.

use serde_json::{json, Value};

use crate::catalog::{Sys, SYSTEMS};
use crate::common::{self, Rate};
use crate::config::Config;
use crate::floor;
use crate::report::lat;
use crate::runner::Phase;
use crate::targets::targets;
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
            json!({"target": t.name, "limit": t.limit, "bound": t.bound,
                   "at_most": t.at_most, "pinned": t.pinned,
                   "unpinned": t.unpinned, "met": t.met()})
        })
        .collect();
    json!({
        "benchmark": "nfy bus (issue 6)",
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
            "fanout_rounds": cfg.fan_rounds, "fanout_per_round": cfg.fan_n,
            "fanout_receivers": cfg.receivers,
            "scale_connections": cfg.scale_conns, "scale_registrations_per_connection": cfg.scale_regs,
            "memory_connections": cfg.mem_conns, "memory_registrations_per_connection": cfg.mem_regs,
        },
        "max_queue": cfg.max_queue,
        "wrap": cfg.wrap,
        "phases": Value::Object(out),
        "targets": targets,
    })
}
