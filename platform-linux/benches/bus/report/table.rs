//! The table on stdout: each figure, its ratio to the floor, the targets
//! and whether each is met.

use crate::catalog::SYSTEMS;
use crate::config::Config;
use crate::latency::Latency;
use crate::report::{cell, cell_ratio, lat, ratio};
use crate::runner::Phase;
use crate::targets::targets;
pub fn print_table(cfg: &Config, phases: &[Phase], cpus: usize) {
    println!();
    println!(
        "nfy bus benchmark (issue 6): {} mode, {cpus} CPUs, 64-byte JSON parameter, window {}",
        if cfg.quick { "quick" } else { "full" },
        cfg.window
    );
    println!(
        "rtt: {} × {} round trips (+{} warm-up); throughput: {} × {}; fanout: {} × {} to {}; \
         scale: {} conns × {} regs; memory: {} conns × {} regs",
        cfg.rtt_rounds,
        cfg.rtt_n,
        cfg.rtt_warmup,
        cfg.tp_rounds,
        cfg.tp_n,
        cfg.fan_rounds,
        cfg.fan_n,
        cfg.receivers,
        cfg.scale_conns,
        cfg.scale_regs,
        cfg.mem_conns,
        cfg.mem_regs
    );
    println!(
        "systems: floor = relay over unix sockets; nfy compact = notifysvc + our library (unix); \
         nfy json/tcp = notifysvc + raw JSON client over TCP; json/unix = the same over the unix \
         socket (diagnostic); nfy batch = our library sending with Client::batch of 32 (one-way \
         workloads)"
    );
    for ph in phases {
        println!();
        println!(
            "{} ({}; {:.0} s)",
            ph.name(),
            if ph.pinned {
                "every thread and process on one CPU"
            } else {
                "free to use every CPU"
            },
            ph.secs
        );
        let mut head = format!("{:<11} {:<15}", "workload", "figure");
        for (i, s) in SYSTEMS.iter().enumerate() {
            if i == 0 {
                head.push_str(&format!(" {:>9}", s.column()));
            } else {
                head.push_str(&format!("  {:>12} {:>6}", s.column(), "×floor"));
            }
        }
        println!("{head}");
        let lat_rows: [(&str, Quantile); 4] = [
            ("p50 µs", |l| l.p50),
            ("p90 µs", |l| l.p90),
            ("p99 µs", |l| l.p99),
            ("max µs", |l| l.max),
        ];
        for (work, store) in [("rtt", &ph.rtt), ("scale", &ph.scale)] {
            let l: Vec<Option<Latency>> = store.iter().map(|s| lat(s)).collect();
            for (name, q) in lat_rows {
                let v: Vec<Option<f64>> = l.iter().map(|x| x.as_ref().map(q)).collect();
                row(work, name, &v, 1, true);
            }
        }
        for (work, store) in [("throughput", &ph.tp), ("fanout", &ph.fan)] {
            let per: Vec<Option<f64>> = store
                .iter()
                .map(|r| r.map(|r| r.per_sec() / 1000.0))
                .collect();
            let unit = if work == "fanout" {
                "k deliveries/s"
            } else {
                "k msgs/s"
            };
            row(work, unit, &per, 1, true);
            let lost: Vec<Option<f64>> = store.iter().map(|r| r.map(|r| r.lost as f64)).collect();
            row(work, "lost", &lost, 0, false);
        }
        let mib = |v: Option<u64>| v.map(|k| k as f64 / 1024.0);
        for (name, v) in [
            ("idle MiB", ph.mem_idle_kib),
            ("256×16 MiB", ph.mem_loaded_kib),
            ("after runs MiB", ph.mem_after_kib),
        ] {
            println!(
                "{:<11} {:<15} {:>9}  {:>12}         (notifysvc, whatever the client)",
                "memory",
                name,
                "-",
                cell(mib(v), 2)
            );
        }
        for e in &ph.errors {
            println!("FAILED: {e}");
        }
    }
    println!();
    println!(
        "{:<40} {:>9} {:>10} {:>10}  met",
        "target (issue 6; judged on pinned)", "limit", "pinned", "unpinned"
    );
    for t in targets(phases) {
        let fmt = |v: Option<f64>| {
            v.map_or_else(
                || "n/a".to_owned(),
                |v| {
                    if t.unit == "×" {
                        format!("{v:.2}×")
                    } else {
                        format!("{v:.2}{}", t.unit)
                    }
                },
            )
        };
        let met = match t.met() {
            Some(true) => "yes",
            Some(false) if t.also == Some(false) => "NO (loss)",
            Some(false) => "NO",
            None => "not measured",
        };
        println!(
            "{:<40} {:>9} {:>10} {:>10}  {}",
            t.name,
            t.limit,
            fmt(t.pinned),
            fmt(t.unpinned),
            met
        );
    }
}

/// Picks one figure of a latency summary.
type Quantile = fn(&Latency) -> f64;

/// One table row: the floor's figure, then each system's with its ratio
/// to the floor (`ratios`).
fn row(work: &str, name: &str, v: &[Option<f64>], prec: usize, ratios: bool) {
    let floor = v.first().copied().flatten();
    let mut line = format!("{work:<11} {name:<15} {:>9}", cell(floor, prec));
    for x in v.iter().skip(1) {
        let r = if ratios {
            cell_ratio(ratio(*x, floor))
        } else {
            String::new()
        };
        line.push_str(&format!("  {:>12} {:>6}", cell(*x, prec), r));
    }
    println!("{}", line.trim_end());
}
