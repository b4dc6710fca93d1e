//! Runs the workloads: one phase (pinned or unpinned) starts its servers
//! and relays, interleaves the systems round by round and collects the
//! figures.

use std::time::{Duration, Instant};

use crate::catalog::{Sys, Work, NSYS, SYSTEMS};
use crate::common::{self, Cpus, Rate, Res};
use crate::config::Config;
use crate::notifysvc::{Launch, Server};
use crate::{compact, floor, jsonproto};

/// The figures of one phase.
#[derive(Default)]
pub struct Phase {
    pub pinned: bool,
    pub rtt: [Vec<u64>; NSYS],
    pub scale: [Vec<u64>; NSYS],
    pub tp: [Option<Rate>; NSYS],
    pub fan: [Option<Rate>; NSYS],
    pub mem_idle_kib: Option<u64>,
    pub mem_loaded_kib: Option<u64>,
    /// Peak RSS of the workload server after every workload.
    pub mem_after_kib: Option<u64>,
    pub errors: Vec<String>,
    pub secs: f64,
}

impl Phase {
    pub fn name(&self) -> &'static str {
        if self.pinned {
            "pinned"
        } else {
            "unpinned"
        }
    }

    pub fn fail(&mut self, what: String, e: &common::Error) {
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
pub fn raise_nofile() -> Res<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

pub fn run_phase(cfg: &Config, cpus: &Cpus, exe: &std::path::Path, pinned: bool) -> Res<Phase> {
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
