//! The bus benchmark of issue 6: nfy against the machine's floor.
//!
//! ```text
//! cargo bench -p nfy-linux --bench bus -- [--quick] [OPTIONS]
//! ```
//!
//! Three systems carry the same notifications (64-byte JSON parameter):
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
//!   TCP's.
//! - **nfy batch** (one-way workloads only): our library again, the
//!   sender using `Client::batch` (32 notifications per write), which
//!   shows what batching the sender's writes buys.
//!
//! Workloads: `rtt` (A notifies B, B's callback answers A), `throughput`
//! (A → B one way), `fanout` (A broadcasts to 8 receivers), `scale` (rtt
//! while 1,000 other connections hold 10,000 unrelated registrations) and
//! `memory` (peak RSS of notifysvc idle and with 256 connections × 16
//! registrations). Each runs twice: every thread and process pinned to one
//! CPU, then unpinned. Within a phase, rounds interleave the systems (their
//! order rotating each round) so machine noise hits all alike.
//!
//! Output: a table on stdout (each figure and its ratio to the floor, the
//! targets of issue 6 and whether each is met), `target/bench/bus.json`
//! and `target/bench/rtt.svg` (latency histograms).
//!
//! The one-way workloads use a flow-control window ([`Config::window`]
//! unreceived notifications at most, the same for every system): no
//! broker gives end-to-end back-pressure, and a sender that outruns its
//! receiver would measure queue limits instead of throughput.

mod common;
mod compact;
mod floor;
mod jsonproto;
mod server;
mod stats;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{Cpus, Rate, Res};
use server::{Launch, Server};
use stats::{summarize, Latency, Panel, Series};

/// The compared systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Sys {
    Floor,
    Compact,
    Json,
    RawUnix,
    /// Our library sending with `Client::batch` (one-way workloads only).
    Batch,
}

/// Systems compared.
const NSYS: usize = 5;
const SYSTEMS: [Sys; NSYS] = [
    Sys::Floor,
    Sys::Compact,
    Sys::Json,
    Sys::RawUnix,
    Sys::Batch,
];

impl Sys {
    fn key(self) -> &'static str {
        match self {
            Sys::Floor => "floor",
            Sys::Compact => "compact",
            Sys::Json => "json",
            Sys::RawUnix => "raw-unix",
            Sys::Batch => "batch",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Sys::Floor => "floor (relay)",
            Sys::Compact => "nfy compact (library, unix)",
            Sys::Json => "nfy json (raw, tcp)",
            Sys::RawUnix => "nfy json (raw, unix)",
            Sys::Batch => "nfy compact batched (library, Client::batch of 32, unix)",
        }
    }

    /// Column heading of the table.
    fn column(self) -> &'static str {
        match self {
            Sys::Floor => "floor",
            Sys::Compact => "nfy compact",
            Sys::Json => "nfy json/tcp",
            Sys::RawUnix => "json/unix",
            Sys::Batch => "nfy batch",
        }
    }

    /// Whether this system runs `work` (batching only applies to the
    /// one-way workloads).
    fn runs(self, work: Work) -> bool {
        self != Sys::Batch || matches!(work, Work::Throughput | Work::Fanout)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Work {
    Rtt,
    Scale,
    Throughput,
    Fanout,
    Memory,
}

impl Work {
    fn parse(s: &str) -> Option<Work> {
        Some(match s {
            "rtt" => Work::Rtt,
            "scale" => Work::Scale,
            "throughput" => Work::Throughput,
            "fanout" => Work::Fanout,
            "memory" => Work::Memory,
            _ => return None,
        })
    }
}

/// What to run and how much.
#[derive(Debug, Clone)]
struct Config {
    quick: bool,
    /// Rounds of rtt and scale; round trips measured per round; warm-up
    /// round trips per round (not measured).
    rtt_rounds: usize,
    rtt_n: usize,
    rtt_warmup: usize,
    /// Rounds of throughput and notifications per round.
    tp_rounds: usize,
    tp_n: u64,
    /// Rounds of fanout, broadcasts per round, receivers.
    fan_rounds: usize,
    fan_n: u64,
    receivers: usize,
    /// Flow-control window of the one-way workloads.
    window: u64,
    /// The scale workload's crowd.
    scale_conns: usize,
    scale_regs: usize,
    /// The memory workload's crowd.
    mem_conns: usize,
    mem_regs: usize,
    /// Phases to run: true = pinned.
    phases: Vec<bool>,
    works: BTreeSet<Work>,
    systems: BTreeSet<Sys>,
    /// Command to run notifysvc under (profiling).
    wrap: Vec<String>,
    max_queue: Option<String>,
    out_dir: PathBuf,
}

const USAGE: &str = "\
usage: cargo bench -p nfy-linux --bench bus -- [OPTIONS]
  --quick               small counts (smoke test, a few seconds)
  --pinned | --unpinned run one phase only (default: both)
  --only LIST           workloads, comma-separated: rtt,scale,throughput,fanout,memory
  --systems LIST        systems, comma-separated: floor,compact,json,raw-unix
  --window N            flow-control window of the one-way workloads (default 8192)
  --max-queue SIZE      notifysvc --max-queue (default: the server's, 4 MiB)
  --wrap 'CMD ARGS'     run notifysvc under CMD (e.g. 'valgrind --tool=callgrind')
  --out DIR             output directory (default: target/bench)
";

impl Config {
    fn parse(args: impl IntoIterator<Item = String>) -> Res<Config> {
        let mut c = Config::full();
        let mut args = args.into_iter();
        let mut quick = false;
        let mut phases = vec![true, false];
        let mut works: Option<BTreeSet<Work>> = None;
        let mut systems: Option<BTreeSet<Sys>> = None;
        let mut window = None;
        while let Some(a) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| common::err(format!("{name} needs a value\n{USAGE}")))
            };
            match a.as_str() {
                "--bench" => {} // cargo passes it to every bench binary
                "--quick" => quick = true,
                "--pinned" => phases = vec![true],
                "--unpinned" => phases = vec![false],
                "--only" => {
                    let v = value("--only")?;
                    let set = v
                        .split(',')
                        .map(|w| {
                            Work::parse(w.trim())
                                .ok_or_else(|| common::err(format!("unknown workload {w}")))
                        })
                        .collect::<Res<BTreeSet<_>>>()?;
                    works = Some(set);
                }
                "--systems" => {
                    let v = value("--systems")?;
                    let set = v
                        .split(',')
                        .map(|s| {
                            SYSTEMS
                                .into_iter()
                                .find(|x| x.key() == s.trim())
                                .ok_or_else(|| common::err(format!("unknown system {s}")))
                        })
                        .collect::<Res<BTreeSet<_>>>()?;
                    systems = Some(set);
                }
                "--window" => window = Some(value("--window")?.parse()?),
                "--max-queue" => c.max_queue = Some(value("--max-queue")?),
                "--wrap" => {
                    c.wrap = value("--wrap")?
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect();
                }
                "--out" => c.out_dir = PathBuf::from(value("--out")?),
                "-h" | "--help" => {
                    print!("{USAGE}");
                    std::process::exit(0);
                }
                other => return Err(common::err(format!("unknown argument {other}\n{USAGE}"))),
            }
        }
        if quick {
            c = Config {
                quick: true,
                rtt_rounds: 1,
                rtt_n: 2_000,
                rtt_warmup: 200,
                tp_rounds: 1,
                tp_n: 20_000,
                fan_rounds: 1,
                fan_n: 2_000,
                ..c
            };
        }
        c.phases = phases;
        if let Some(w) = works {
            c.works = w;
        }
        if let Some(s) = systems {
            c.systems = s;
        }
        if let Some(w) = window {
            c.window = w;
        }
        Ok(c)
    }

    fn full() -> Config {
        Config {
            quick: false,
            rtt_rounds: 4,
            rtt_n: 5_000,
            rtt_warmup: 500,
            tp_rounds: 2,
            tp_n: 200_000,
            fan_rounds: 2,
            fan_n: 20_000,
            receivers: 8,
            window: 8_192,
            scale_conns: 1_000,
            scale_regs: 10,
            mem_conns: 256,
            mem_regs: 16,
            phases: vec![true, false],
            works: [
                Work::Rtt,
                Work::Scale,
                Work::Throughput,
                Work::Fanout,
                Work::Memory,
            ]
            .into_iter()
            .collect(),
            systems: SYSTEMS.into_iter().collect(),
            wrap: Vec::new(),
            max_queue: None,
            out_dir: default_out_dir(),
        }
    }

    fn has(&self, w: Work) -> bool {
        self.works.contains(&w)
    }

    fn nfy(&self) -> bool {
        self.systems.iter().any(|s| *s != Sys::Floor)
    }
}

/// `target/bench`: three levels above the benchmark executable
/// (`target/release/deps/bus-*`).
fn default_out_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.parent()?.join("bench")))
        .unwrap_or_else(|| PathBuf::from("target/bench"))
}

/// The figures of one phase.
#[derive(Default)]
struct Phase {
    pinned: bool,
    rtt: [Vec<u64>; NSYS],
    scale: [Vec<u64>; NSYS],
    tp: [Option<Rate>; NSYS],
    fan: [Option<Rate>; NSYS],
    mem_idle_kib: Option<u64>,
    mem_loaded_kib: Option<u64>,
    /// Peak RSS of the workload server after every workload.
    mem_after_kib: Option<u64>,
    errors: Vec<String>,
    secs: f64,
}

impl Phase {
    fn name(&self) -> &'static str {
        if self.pinned {
            "pinned"
        } else {
            "unpinned"
        }
    }

    fn fail(&mut self, what: String, e: &common::Error) {
        let msg = format!("{} {what}: {e}", self.name());
        eprintln!("bus: FAILED {msg}");
        self.errors.push(msg);
    }
}

fn add_rate(slot: &mut Option<Rate>, r: Rate) {
    slot.get_or_insert_with(Rate::default).add(r);
}

/// Raises the soft descriptor limit to the hard one (the scale workload
/// holds about 3,000 sockets in this process, 1,000 in the server, which
/// inherits the limit).
fn raise_nofile() -> Res<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

fn run_phase(cfg: &Config, cpus: &Cpus, exe: &std::path::Path, pinned: bool) -> Res<Phase> {
    let started = Instant::now();
    let mut ph = Phase {
        pinned,
        ..Phase::default()
    };
    cpus.apply(pinned)?;
    let launch = Launch {
        cpu: pinned.then(|| cpus.first()),
        wrap: cfg.wrap.clone(),
        max_queue: cfg.max_queue.clone(),
    };
    let floor_on = cfg.systems.contains(&Sys::Floor);
    let relay = floor::Relay::start()?;
    let mut scale_relay = None;
    let mut _floor_crowd = Vec::new();
    if cfg.has(Work::Scale) && floor_on {
        let r = floor::Relay::start()?;
        _floor_crowd = floor::idle_crowd(r.path(), cfg.scale_conns)?;
        scale_relay = Some(r);
    }
    let srv = if cfg.nfy() {
        Some(Server::start(exe, &launch)?)
    } else {
        None
    };
    let mut scale_srv = None;
    let mut _nfy_crowd = Vec::new();
    if cfg.has(Work::Scale) && cfg.nfy() {
        let s = Server::start(exe, &launch)?;
        _nfy_crowd = jsonproto::crowd(&s.socket, cfg.scale_conns, cfg.scale_regs)?;
        scale_srv = Some(s);
    }
    let rounds = cfg.rtt_rounds.max(cfg.tp_rounds).max(cfg.fan_rounds);
    for round in 0..rounds {
        let mut order: Vec<Sys> = SYSTEMS
            .into_iter()
            .filter(|s| cfg.systems.contains(s))
            .collect();
        if !order.is_empty() {
            let k = round % order.len();
            order.rotate_left(k);
        }
        eprintln!(
            "bus: {} round {}/{rounds} ({:.0} s)",
            ph.name(),
            round + 1,
            started.elapsed().as_secs_f64()
        );
        for (work, rounds_of) in [
            (Work::Rtt, cfg.rtt_rounds),
            (Work::Scale, cfg.rtt_rounds),
            (Work::Throughput, cfg.tp_rounds),
            (Work::Fanout, cfg.fan_rounds),
        ] {
            if !cfg.has(work) || round >= rounds_of {
                continue;
            }
            for &sys in order.iter().filter(|s| s.runs(work)) {
                let (relay_path, server) = match work {
                    Work::Scale => (scale_relay.as_ref().map(|r| r.path()), scale_srv.as_ref()),
                    _ => (Some(relay.path()), srv.as_ref()),
                };
                let what = format!("{work:?} {}", sys.key());
                let result = run_one(cfg, sys, work, relay_path, server);
                match result {
                    Ok(Outcome::Samples(s)) => {
                        let store = if work == Work::Scale {
                            &mut ph.scale
                        } else {
                            &mut ph.rtt
                        };
                        if let Some(v) = store.get_mut(sys.index()) {
                            v.extend(s);
                        }
                    }
                    Ok(Outcome::Rate(r)) => {
                        let store = if work == Work::Fanout {
                            &mut ph.fan
                        } else {
                            &mut ph.tp
                        };
                        if let Some(slot) = store.get_mut(sys.index()) {
                            add_rate(slot, r);
                        }
                    }
                    Err(e) => ph.fail(what, &e),
                }
            }
        }
    }
    if let Some(s) = &srv {
        ph.mem_after_kib = s.peak_rss_kib().ok();
    }
    drop(_nfy_crowd);
    drop(_floor_crowd);
    if let Some(s) = srv {
        s.stop()?;
    }
    if let Some(s) = scale_srv {
        s.stop()?;
    }
    drop(scale_relay);
    drop(relay);
    if cfg.has(Work::Memory) && cfg.nfy() && cfg.wrap.is_empty() {
        match memory(cfg, exe, &launch) {
            Ok((idle, loaded)) => {
                ph.mem_idle_kib = Some(idle);
                ph.mem_loaded_kib = Some(loaded);
            }
            Err(e) => ph.fail("memory".into(), &e),
        }
    }
    ph.secs = started.elapsed().as_secs_f64();
    Ok(ph)
}

enum Outcome {
    Samples(Vec<u64>),
    Rate(Rate),
}

fn run_one(
    cfg: &Config,
    sys: Sys,
    work: Work,
    relay: Option<&std::path::Path>,
    server: Option<&Server>,
) -> Res<Outcome> {
    let (warm, n) = (cfg.rtt_warmup, cfg.rtt_n);
    if sys == Sys::Floor {
        let relay = relay.ok_or_else(|| common::err("no relay"))?;
        return Ok(match work {
            Work::Rtt | Work::Scale => Outcome::Samples(floor::rtt(relay, warm, n)?),
            Work::Throughput => Outcome::Rate(floor::throughput(relay, cfg.tp_n, cfg.window)?),
            Work::Fanout => {
                Outcome::Rate(floor::fanout(relay, cfg.fan_n, cfg.receivers, cfg.window)?)
            }
            Work::Memory => return Err(common::err("memory is measured per phase")),
        });
    }
    let server = server.ok_or_else(|| common::err("no server"))?;
    if sys == Sys::Compact || sys == Sys::Batch {
        let socket = &server.socket;
        let batched = sys == Sys::Batch;
        return Ok(match work {
            Work::Rtt | Work::Scale => Outcome::Samples(compact::rtt(socket, warm, n)?),
            Work::Throughput => {
                Outcome::Rate(compact::throughput(socket, cfg.tp_n, cfg.window, batched)?)
            }
            Work::Fanout => Outcome::Rate(compact::fanout(
                socket,
                cfg.fan_n,
                cfg.receivers,
                cfg.window,
                batched,
            )?),
            Work::Memory => return Err(common::err("memory is measured per phase")),
        });
    }
    let addr = if sys == Sys::Json {
        jsonproto::Addr::Tcp(server.tcp)
    } else {
        jsonproto::Addr::Unix(server.socket.clone())
    };
    Ok(match work {
        Work::Rtt | Work::Scale => Outcome::Samples(jsonproto::rtt(&addr, warm, n)?),
        Work::Throughput => Outcome::Rate(jsonproto::throughput(&addr, cfg.tp_n, cfg.window)?),
        Work::Fanout => Outcome::Rate(jsonproto::fanout(
            &addr,
            cfg.fan_n,
            cfg.receivers,
            cfg.window,
        )?),
        Work::Memory => return Err(common::err("memory is measured per phase")),
    })
}

/// Peak RSS (KiB) of a fresh notifysvc idle, and of another with the
/// memory crowd (each connection also received one notification, so its
/// output queue exists).
fn memory(cfg: &Config, exe: &std::path::Path, launch: &Launch) -> Res<(u64, u64)> {
    let idle = Server::start(exe, launch)?;
    std::thread::sleep(Duration::from_millis(100));
    let idle_kib = idle.peak_rss_kib()?;
    idle.stop()?;
    let loaded = Server::start(exe, launch)?;
    let crowd = jsonproto::crowd(&loaded.socket, cfg.mem_conns, cfg.mem_regs)?;
    std::thread::sleep(Duration::from_millis(100));
    let loaded_kib = loaded.peak_rss_kib()?;
    drop(crowd);
    loaded.stop()?;
    Ok((idle_kib, loaded_kib))
}

// ----- report -------------------------------------------------------------

fn lat(samples: &[u64]) -> Option<Latency> {
    let mut v = samples.to_vec();
    summarize(&mut v)
}

fn ratio(x: Option<f64>, floor: Option<f64>) -> Option<f64> {
    match (x, floor) {
        (Some(x), Some(f)) if f > 0.0 => Some(x / f),
        _ => None,
    }
}

fn cell(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.prec$}"))
}

fn cell_ratio(v: Option<f64>) -> String {
    v.map_or_else(String::new, |r| format!("{r:.2}×"))
}

/// One target of issue 6.
struct Target {
    name: &'static str,
    /// The limit, as text.
    limit: String,
    pinned: Option<f64>,
    unpinned: Option<f64>,
    unit: &'static str,
    /// Met when the value is at most (true) or at least (false) the limit.
    at_most: bool,
    bound: f64,
    /// Extra condition (zero loss).
    also: Option<bool>,
}

impl Target {
    fn met(&self) -> Option<bool> {
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

fn targets(phases: &[Phase]) -> Vec<Target> {
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

fn print_table(cfg: &Config, phases: &[Phase], cpus: usize) {
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

fn json_report(cfg: &Config, phases: &[Phase], cpus: usize) -> Value {
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

fn svg_report(phases: &[Phase]) -> String {
    const COLORS: [&str; NSYS] = ["#555555", "#1f77b4", "#ff7f0e", "#9467bd", "#2ca02c"];
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
    stats::histogram_svg("nfy bus benchmark: round-trip time A → B → A", &panels)
}

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
    let exe = server::notifysvc_path()?;
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
