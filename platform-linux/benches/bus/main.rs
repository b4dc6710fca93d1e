//! The bus benchmark of issues 6 and 12: nfy against the machine's floor
//! and against NATS.
//!
//! ```text
//! cargo bench -p nfy-linux --bench bus -- [--quick] [OPTIONS]
//! ```
//!
//! The systems carry the same notifications (64-byte JSON parameter):
//!
//! - **floor** ([`floor`]): a minimal relay over Unix sockets written here
//!   (blocking, one thread per connection, length-prefixed frames routed
//!   by a destination number);
//! - **nfy compact** ([`compact`]): a real `notifysvc` process and our
//!   client library over its Unix socket;
//! - **nfy json** ([`jsonproto`]): the same server, a raw JSON-protocol
//!   client over TCP loopback written here from the spec;
//! - **nfy raw/unix** (diagnostic): that raw client over the Unix socket,
//!   which shows the server's own cost, without our library's and without
//!   TCP's;
//! - **nfy batch** (one-way workloads only): our library again, the
//!   sender using `Client::batch` (32 notifications per write; the burst:
//!   `--burst-batch`, 256), which shows what batching the sender's writes
//!   buys;
//! - **nats** ([`nats`]): a real `nats-server` ([`nats_server`]) on a free
//!   loopback port and a client of its text protocol written here, which
//!   buffers publishes as the official clients do (rtt, burst, fanout);
//! - **lib/tcp** and **lib/tls** (issue 16: rtt, burst): our library
//!   over TCP loopback, and over TLS on loopback (TLS 1.3, client
//!   certificate; certificates made by the bench with rcgen), on the same
//!   server, so TLS's cost is read against plain TCP in the same run
//!   (target: TLS rtt p50 ≤ 1.3× plain TCP).
//!
//! Workloads: `rtt` (A notifies B, B's callback answers A), `throughput`
//! (A → B one way, windowed), `burst` ([`burst`]: A → B one way as fast as
//! the sender can, no window; delivered, lost, out of order, unicast
//! errors and disconnects are counted, the nfy systems and NATS on a
//! server of their own per run), `fanout` (A broadcasts to 8 receivers),
//! `scale` (rtt while 1,000 other connections hold 10,000 unrelated
//! registrations) and `memory` (peak RSS of notifysvc idle and with 256
//! connections × 16 registrations). Each runs twice: every thread and
//! process pinned to one CPU, then unpinned. Within a phase, rounds
//! interleave the systems (their order rotating each round) so machine
//! noise hits all alike.
//!
//! Output: a table on stdout (each figure and its ratio to the floor, the
//! targets of issues 6 and 12 and whether each is met, NATS beside what
//! issue 12 measured of it), `target/bench/bus.json` and
//! `target/bench/rtt.svg` (latency histograms).
//!
//! `throughput` and `fanout` use a flow-control window
//! ([`Config::window`](config::Config::window) unreceived notifications at
//! most, the same for every system), so that they measure the path rather
//! than queue limits. `burst` has none: whatever slows its sender down is
//! the system's own back-pressure, and where there is none the loss is
//! reported. Its waits are bounded (`--idle`): a sender that cannot write,
//! or a receiver that sees nothing, for that long ends the run.
//!
//! Every server the benchmark starts is stopped by PID, and killed when
//! its guard is dropped ([`process`]): a failing or panicking run leaves
//! nothing behind.
//!
//! Files:
//!
//! | file | holds |
//! |---|---|
//! | `main.rs` | this page; runs the phases and writes the reports |
//! | `config.rs` | the command line and the counts (full, `--quick`) |
//! | `catalog.rs` | the systems (columns) and workloads (rows) |
//! | `runner.rs` | one phase: servers and relays, rounds, figures |
//! | `floor.rs`, `compact.rs`, `jsonproto.rs`, `nats.rs` | each system's clients and workloads |
//! | `burst.rs` | the burst's parameter, receiver tally and result |
//! | `process.rs` | a server process: log, stop by PID, kill on drop |
//! | `notifysvc.rs`, `nats_server.rs` | the two servers |
//! | `common.rs` | error type, payload, CPU pinning, rates, waiting |
//! | `latency.rs` | latency percentiles |
//! | `targets.rs` | the targets, computed from the figures |
//! | `report/` | the table, `bus.json`, the SVG histograms |

mod burst;
mod catalog;
mod common;
mod compact;
mod config;
mod floor;
mod jsonproto;
mod latency;
mod nats;
mod nats_server;
mod notifysvc;
mod process;
mod report;
mod runner;
mod targets;

use std::time::Instant;

use serde_json::{json, Value};

use common::{Cpus, Res};
use config::Config;
use report::json::json_report;
use report::svg::svg_report;
use report::table::print_table;
use runner::{raise_nofile, run_phase};

fn main() {
    if let Err(e) = run() {
        eprintln!("bus: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let cfg = Config::parse(std::env::args().skip(1))?;
    if common::PARAM.len() != 64 {
        return Err(common::err("the parameter must be 64 bytes"));
    }
    let started = Instant::now();
    let hard = raise_nofile()?;
    if hard < 3 * cfg.scale_conns as u64 + 256 {
        return Err(common::err(format!(
            "RLIMIT_NOFILE hard limit {hard} is too low for {} scale connections",
            cfg.scale_conns
        )));
    }
    let cpus = Cpus::capture()?;
    let exe = notifysvc::notifysvc_path()?;
    eprintln!(
        "bus: notifysvc = {}; {} CPUs; results to {}",
        exe.display(),
        cpus.count(),
        cfg.out_dir.display()
    );
    let mut phases = Vec::new();
    for &pinned in &cfg.phases {
        phases.push(run_phase(&cfg, &cpus, &exe, pinned)?);
    }
    cpus.apply(false)?;
    print_table(&cfg, &phases, cpus.count());
    std::fs::create_dir_all(&cfg.out_dir)?;
    let json_path = cfg.out_dir.join("bus.json");
    let mut report = json_report(&cfg, &phases, cpus.count());
    if let Value::Object(m) = &mut report {
        m.insert(
            "total_seconds".into(),
            json!(started.elapsed().as_secs_f64()),
        );
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    let svg_path = cfg.out_dir.join("rtt.svg");
    std::fs::write(&svg_path, svg_report(&phases))?;
    println!();
    println!(
        "wrote {} and {} in {:.0} s",
        json_path.display(),
        svg_path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
