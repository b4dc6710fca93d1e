//! What to run and how much: the command line, the full and quick counts.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::catalog::{Sys, Work, SYSTEMS};
use crate::common::{self, Res};
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
}

pub const USAGE: &str = "\
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
    pub fn parse(args: impl IntoIterator<Item = String>) -> Res<Config> {
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

    pub fn has(&self, w: Work) -> bool {
        self.works.contains(&w)
    }

    pub fn nfy(&self) -> bool {
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
