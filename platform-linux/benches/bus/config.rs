//! What to run and how much: the command line, the full and quick counts.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::catalog::{Sys, Work, SYSTEMS};
use crate::common::{self, Res};
use crate::{burst, nats_server};

/// What to run and how much.
#[derive(Debug, Clone)]
pub struct Config {
    pub quick: bool,
    /// Rounds of rtt and scale; round trips measured per round; warm-up
    /// round trips per round (not measured).
    pub rtt_rounds: usize,
    pub rtt_n: usize,
    pub rtt_warmup: usize,
    /// Rounds of throughput and notifications per round.
    pub tp_rounds: usize,
    pub tp_n: u64,
    /// Rounds of the burst, notifications per round.
    pub burst_rounds: usize,
    pub burst_n: u64,
    /// The burst's `Client::batch` sender writes every so many
    /// notifications.
    pub burst_batch: u64,
    /// A burst whose receiver sees nothing (or whose sender cannot write)
    /// for this long ends and reports what arrived.
    pub idle: Duration,
    /// Rounds of fanout, broadcasts per round, receivers.
    pub fan_rounds: usize,
    pub fan_n: u64,
    pub receivers: usize,
    /// Flow-control window of the one-way workloads.
    pub window: u64,
    /// The scale workload's crowd.
    pub scale_conns: usize,
    pub scale_regs: usize,
    /// The memory workload's crowd.
    pub mem_conns: usize,
    pub mem_regs: usize,
    /// Phases to run: true = pinned.
    pub phases: Vec<bool>,
    pub works: BTreeSet<Work>,
    pub systems: BTreeSet<Sys>,
    /// Command to run notifysvc under (profiling).
    pub wrap: Vec<String>,
    pub max_queue: Option<String>,
    pub out_dir: PathBuf,
    /// The `nats-server` executable (`None`: NATS is not measured).
    pub nats_server: Option<PathBuf>,
    /// Said under the table (what was left out and why).
    pub notes: Vec<String>,
}

pub const USAGE: &str = "\
usage: cargo bench -p nfy-linux --bench bus -- [OPTIONS]
  --quick               small counts (smoke test, a few seconds)
  --pinned | --unpinned run one phase only (default: both)
  --only LIST           workloads, comma-separated: rtt,scale,throughput,burst,fanout,memory
  --systems LIST        systems, comma-separated: floor,compact,json,raw-unix,batch,nats,
                        lib-tcp,lib-tls
  --window N            flow-control window of throughput and fanout (default 8192)
  --burst N             notifications per burst (default 200000; at most 900000)
  --burst-batch N       the burst's Client::batch sends every N notifications (default 256)
  --idle SECS           a burst ends when nothing arrives for SECS (default 3)
  --max-queue SIZE      notifysvc --max-queue (default: the server's, 4 MiB)
  --wrap 'CMD ARGS'     run notifysvc under CMD (e.g. 'valgrind --tool=callgrind')
  --out DIR             output directory (default: target/bench)
";

impl Config {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Res<Config> {
        let mut c = Config::full();
        let mut args = args.into_iter();
        let mut quick = false;
        let mut phases = vec![true, false];
        let mut works: Option<BTreeSet<Work>> = None;
        let mut systems: Option<BTreeSet<Sys>> = None;
        let mut window = None;
        let mut burst_n = None;
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
                "--burst" => burst_n = Some(value("--burst")?.parse()?),
                "--burst-batch" => c.burst_batch = value("--burst-batch")?.parse::<u64>()?.max(1),
                "--idle" => {
                    c.idle = Duration::try_from_secs_f64(value("--idle")?.parse::<f64>()?)
                        .map_err(|e| common::err(format!("--idle: {e}")))?;
                }
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
                burst_rounds: 1,
                burst_n: 20_000,
                ..c
            };
        }
        if let Some(n) = burst_n {
            c.burst_n = n;
        }
        if c.burst_n > burst::MAX_N {
            return Err(common::err(format!("--burst: at most {}", burst::MAX_N)));
        }
        c.phases = phases;
        if let Some(w) = works {
            c.works = w;
        }
        let explicit_nats = systems.as_ref().is_some_and(|s| s.contains(&Sys::Nats));
        if let Some(s) = systems {
            c.systems = s;
        }
        if c.systems.contains(&Sys::Nats) {
            c.nats_server = nats_server::nats_server_path();
            if c.nats_server.is_none() {
                if explicit_nats {
                    return Err(common::err(
                        "nats-server not found (apt-get install nats-server, or set \
                         NFY_BENCH_NATS_SERVER)",
                    ));
                }
                c.systems.remove(&Sys::Nats);
                c.notes.push(
                    "NATS not measured: nats-server not found (apt-get install nats-server)".into(),
                );
            }
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
            burst_rounds: 2,
            burst_n: 200_000,
            burst_batch: 256,
            idle: Duration::from_secs(3),
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
                Work::Burst,
                Work::Fanout,
                Work::Memory,
            ]
            .into_iter()
            .collect(),
            systems: SYSTEMS.into_iter().collect(),
            wrap: Vec::new(),
            max_queue: None,
            out_dir: default_out_dir(),
            nats_server: None,
            notes: Vec::new(),
        }
    }

    /// Whether workload `w` runs.
    pub fn has(&self, w: Work) -> bool {
        self.works.contains(&w)
    }

    /// Whether a system on `notifysvc` runs.
    pub fn nfy(&self) -> bool {
        self.systems.iter().any(|s| s.is_nfy())
    }

    /// Whether NATS runs a workload other than the burst (which starts its
    /// own servers): the phase's `nats-server` is needed.
    pub fn nats_phase_server(&self) -> bool {
        self.systems.contains(&Sys::Nats) && (self.has(Work::Rtt) || self.has(Work::Fanout))
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
