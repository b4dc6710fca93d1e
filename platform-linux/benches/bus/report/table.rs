//! The table on stdout: each figure, its ratio to the floor, the targets
//! and whether each is met.

use crate::burst::Burst;
use crate::catalog::SYSTEMS;
use crate::config::Config;
use crate::latency::Latency;
use crate::report::{cell, cell_ratio, lat, ratio};
use crate::runner::Phase;
use crate::targets::{nats_check, targets, Target, VersusNats};

/// Prints the whole report.
pub fn print_table(cfg: &Config, phases: &[Phase], cpus: usize) {
    println!();
    println!(
        "nfy bus benchmark (issues 6 and 12): {} mode, {cpus} CPUs, 64-byte JSON parameter, \
         window {}",
        if cfg.quick { "quick" } else { "full" },
        cfg.window
    );
    println!(
        "rtt: {} × {} round trips (+{} warm-up); throughput: {} × {}; burst: {} × {} (no \
         window, idle limit {:.1} s); fanout: {} × {} to {}; scale: {} conns × {} regs; memory: \
         {} conns × {} regs",
        cfg.rtt_rounds,
        cfg.rtt_n,
        cfg.rtt_warmup,
        cfg.tp_rounds,
        cfg.tp_n,
        cfg.burst_rounds,
        cfg.burst_n,
        cfg.idle.as_secs_f64(),
        cfg.fan_rounds,
        cfg.fan_n,
        cfg.receivers,
        cfg.scale_conns,
        cfg.scale_regs,
        cfg.mem_conns,
        cfg.mem_regs
    );
    println!(
        "systems: floor = relay over unix sockets; nfy compact = notifysvc + our library (unix; \
         the burst: Client::notify per call); nfy json/tcp = notifysvc + raw JSON client over \
         TCP; json/unix = the same over the unix socket (diagnostic); nfy batch = our library \
         sending with Client::batch of 32 (the burst: of {}); nats = nats-server + a client of \
         its text protocol (tcp, buffered publishes)",
        cfg.burst_batch
    );
    for note in &cfg.notes {
        println!("note: {note}");
    }
    for ph in phases {
        print_phase(ph);
    }
    println!();
    print_targets(phases);
    println!();
    print_nats_check(phases);
}

fn print_phase(ph: &Phase) {
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
    let rate_rows = |work: &str, store: &[Option<crate::common::Rate>], unit: &str| {
        let per: Vec<Option<f64>> = store
            .iter()
            .map(|r| r.map(|r| r.per_sec() / 1000.0))
            .collect();
        row(work, unit, &per, 1, true);
        let lost: Vec<Option<f64>> = store.iter().map(|r| r.map(|r| r.lost as f64)).collect();
        row(work, "lost", &lost, 0, false);
    };
    rate_rows("throughput", &ph.tp, "k msgs/s");
    let burst_row = |name: &str, f: &dyn Fn(&Burst) -> Option<f64>, prec: usize, ratios: bool| {
        let v: Vec<Option<f64>> = ph.burst.iter().map(|b| b.as_ref().and_then(f)).collect();
        row("burst", name, &v, prec, ratios);
    };
    burst_row("k msgs/s", &|b| Some(b.per_sec() / 1000.0), 1, true);
    burst_row("delivered", &|b| Some(b.delivered as f64), 0, false);
    burst_row("lost", &|b| Some(b.lost() as f64), 0, false);
    burst_row("out of order", &|b| Some(b.out_of_order as f64), 0, false);
    burst_row(
        "unicast errors",
        &|b| b.unicast_errors.map(|e| e as f64),
        0,
        false,
    );
    burst_row("disconnects", &|b| Some(b.disconnects() as f64), 0, false);
    burst_row(
        "server peak MiB",
        &|b| b.server_peak_kib.map(|k| k as f64 / 1024.0),
        2,
        false,
    );
    rate_rows("fanout", &ph.fan, "k deliveries/s");
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
    for (s, b) in SYSTEMS.iter().zip(&ph.burst) {
        for note in b.iter().flat_map(|b| &b.notes) {
            println!("burst {}: {note}", s.key());
        }
    }
    for e in &ph.errors {
        println!("FAILED: {e}");
    }
}

fn print_targets(phases: &[Phase]) {
    println!(
        "{:<5} {:<40} {:>8} {:>9} {:>9} {:>10}  met",
        "issue", "target (judged on pinned)", "limit", "pinned", "unpinned", "NATS"
    );
    for t in targets(phases) {
        let nats = match t.versus_nats {
            None => String::new(),
            Some(how) => {
                let v = fmt_value(&t, t.nats);
                match how {
                    VersusNats::Ahead => format!("{v} to beat"),
                    VersusNats::Shown => v,
                }
            }
        };
        println!(
            "{:<5} {:<40} {:>8} {:>9} {:>9} {:>10}  {}",
            t.issue,
            t.name,
            t.limit,
            fmt_value(&t, t.pinned),
            fmt_value(&t, t.unpinned),
            nats,
            t.verdict().text()
        );
    }
    println!(
        "issue 12: a burst is clean when nothing is lost, out of order, bounced as a unicast \
         error or disconnected"
    );
}

fn fmt_value(t: &Target, v: Option<f64>) -> String {
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
}

fn print_nats_check(phases: &[Phase]) {
    let parts: Vec<String> = nats_check(phases)
        .into_iter()
        .map(|(name, expected, got)| {
            let got = got.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}×"));
            format!("{name} {got} (issue 12: about {expected:.1}×)")
        })
        .collect();
    println!("NATS against the floor, pinned: {}", parts.join("; "));
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
