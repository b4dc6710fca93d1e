//! Runs the workloads: one phase (pinned or unpinned) starts its servers
//! and relays, interleaves the systems round by round and collects the
//! figures.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::burst::Burst;
use crate::catalog::{Sys, Work, NSYS, SYSTEMS};
use crate::common::{self, Cpus, Rate, Res};
use crate::compact::BurstSender;
use crate::config::Config;
use crate::nats_server::NatsServer;
use crate::notifysvc::{BenchTls, Launch, Server};
use crate::{compact, floor, jsonproto, nats};
use nfy_linux::client::ServerAddr;

/// The figures of one phase.
#[derive(Default)]
pub struct Phase {
    pub pinned: bool,
    pub rtt: [Vec<u64>; NSYS],
    pub scale: [Vec<u64>; NSYS],
    pub tp: [Option<Rate>; NSYS],
    pub fan: [Option<Rate>; NSYS],
    pub burst: [Option<Burst>; NSYS],
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

/// What one phase's runs use: the servers and relays it started.
struct Env<'a> {
    cfg: &'a Config,
    exe: &'a Path,
    launch: &'a Launch,
    relay: &'a floor::Relay,
    scale_relay: Option<&'a floor::Relay>,
    srv: Option<&'a Server>,
    scale_srv: Option<&'a Server>,
    nats: Option<&'a NatsServer>,
}

pub fn run_phase(cfg: &Config, cpus: &Cpus, exe: &Path, pinned: bool) -> Res<Phase> {
    let started = Instant::now();
    let mut ph = Phase {
        pinned,
        ..Phase::default()
    };
    cpus.apply(pinned)?;
    let tls_on = cfg.systems.contains(&Sys::LibTls);
    let launch = Launch {
        cpu: pinned.then(|| cpus.first()),
        wrap: cfg.wrap.clone(),
        max_queue: cfg.max_queue.clone(),
        tls: if tls_on {
            Some(std::sync::Arc::new(BenchTls::new()?))
        } else {
            None
        },
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
    let nats = match (&cfg.nats_server, cfg.nats_phase_server()) {
        (Some(nats_exe), true) => Some(NatsServer::start(nats_exe, launch.cpu)?),
        _ => None,
    };
    let env = Env {
        cfg,
        exe,
        launch: &launch,
        relay: &relay,
        scale_relay: scale_relay.as_ref(),
        srv: srv.as_ref(),
        scale_srv: scale_srv.as_ref(),
        nats: nats.as_ref(),
    };
    let plan = [
        (Work::Rtt, cfg.rtt_rounds),
        (Work::Scale, cfg.rtt_rounds),
        (Work::Throughput, cfg.tp_rounds),
        (Work::Burst, cfg.burst_rounds),
        (Work::Fanout, cfg.fan_rounds),
    ];
    let rounds = plan
        .iter()
        .filter(|(w, _)| cfg.has(*w))
        .map(|(_, r)| *r)
        .max()
        .unwrap_or(0);
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
        for (work, rounds_of) in plan {
            if !cfg.has(work) || round >= rounds_of {
                continue;
            }
            for &sys in order.iter().filter(|s| s.runs(work)) {
                let what = format!("{work:?} {}", sys.key());
                match run_one(&env, sys, work) {
                    Ok(outcome) => ph.record(sys, work, outcome),
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
    if let Some(n) = nats {
        n.stop()?;
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
    Burst(Burst),
}

impl Phase {
    fn record(&mut self, sys: Sys, work: Work, outcome: Outcome) {
        let i = sys.index();
        match outcome {
            Outcome::Samples(s) => {
                let store = if work == Work::Scale {
                    &mut self.scale
                } else {
                    &mut self.rtt
                };
                if let Some(v) = store.get_mut(i) {
                    v.extend(s);
                }
            }
            Outcome::Rate(r) => {
                let store = if work == Work::Fanout {
                    &mut self.fan
                } else {
                    &mut self.tp
                };
                if let Some(slot) = store.get_mut(i) {
                    add_rate(slot, r);
                }
            }
            Outcome::Burst(b) => {
                if let Some(slot) = self.burst.get_mut(i) {
                    slot.get_or_insert_with(Burst::default).add(b);
                }
            }
        }
    }
}

fn run_one(env: &Env<'_>, sys: Sys, work: Work) -> Res<Outcome> {
    let cfg = env.cfg;
    if work == Work::Burst {
        return run_burst(env, sys).map(Outcome::Burst);
    }
    if work == Work::Memory {
        return Err(common::err("memory is measured per phase"));
    }
    let (warm, n) = (cfg.rtt_warmup, cfg.rtt_n);
    if sys == Sys::Floor {
        let relay = match work {
            Work::Scale => env.scale_relay.ok_or_else(|| common::err("no relay"))?,
            _ => env.relay,
        }
        .path();
        return Ok(match work {
            Work::Throughput => Outcome::Rate(floor::throughput(relay, cfg.tp_n, cfg.window)?),
            Work::Fanout => {
                Outcome::Rate(floor::fanout(relay, cfg.fan_n, cfg.receivers, cfg.window)?)
            }
            _ => Outcome::Samples(floor::rtt(relay, warm, n)?),
        });
    }
    if sys == Sys::Nats {
        let addr = env.nats.ok_or_else(|| common::err("no nats-server"))?.addr;
        return Ok(match work {
            Work::Fanout => {
                Outcome::Rate(nats::fanout(addr, cfg.fan_n, cfg.receivers, cfg.window)?)
            }
            _ => Outcome::Samples(nats::rtt(addr, warm, n)?),
        });
    }
    let server = match work {
        Work::Scale => env.scale_srv,
        _ => env.srv,
    }
    .ok_or_else(|| common::err("no server"))?;
    if sys == Sys::LibTcp || sys == Sys::LibTls {
        let addr = lib_addr(env, server, sys)?;
        return Ok(Outcome::Samples(compact::rtt(&addr, warm, n)?));
    }
    if sys == Sys::Compact || sys == Sys::Batch {
        let socket = &ServerAddr::unix(&server.socket);
        let batched = sys == Sys::Batch;
        return Ok(match work {
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
            _ => Outcome::Samples(compact::rtt(socket, warm, n)?),
        });
    }
    let addr = if sys == Sys::Json {
        jsonproto::Addr::Tcp(server.tcp)
    } else {
        jsonproto::Addr::Unix(server.socket.clone())
    };
    Ok(match work {
        Work::Throughput => Outcome::Rate(jsonproto::throughput(&addr, cfg.tp_n, cfg.window)?),
        Work::Fanout => Outcome::Rate(jsonproto::fanout(
            &addr,
            cfg.fan_n,
            cfg.receivers,
            cfg.window,
        )?),
        _ => Outcome::Samples(jsonproto::rtt(&addr, warm, n)?),
    })
}

/// One burst. The nfy systems and NATS get a server of their own, so its
/// exit statistics (unicast errors, disconnects; NATS: slow consumers)
/// are this burst's alone.
fn run_burst(env: &Env<'_>, sys: Sys) -> Res<Burst> {
    let cfg = env.cfg;
    let (n, idle) = (cfg.burst_n, cfg.idle);
    match sys {
        Sys::Floor => floor::burst(env.relay.path(), n, idle),
        Sys::Nats => {
            let exe = cfg
                .nats_server
                .as_deref()
                .ok_or_else(|| common::err("no nats-server"))?;
            let server = NatsServer::start(exe, env.launch.cpu)?;
            let mut b = nats::burst(server.addr, n, idle)?;
            b.server_peak_kib = server.peak_rss_kib().ok();
            b.server_disconnects = Some(server.stop()?);
            Ok(b)
        }
        Sys::Compact | Sys::Batch | Sys::Json | Sys::RawUnix | Sys::LibTcp | Sys::LibTls => {
            let server = Server::start(env.exe, env.launch)?;
            let unix = ServerAddr::unix(&server.socket);
            let mut b = match sys {
                Sys::Compact => compact::burst(&unix, n, idle, BurstSender::PerCall)?,
                Sys::Batch => compact::burst(&unix, n, idle, BurstSender::Batch(cfg.burst_batch))?,
                Sys::LibTcp | Sys::LibTls => {
                    let addr = lib_addr(env, &server, sys)?;
                    compact::burst(&addr, n, idle, BurstSender::PerCall)?
                }
                Sys::Json => jsonproto::burst(&jsonproto::Addr::Tcp(server.tcp), n, idle)?,
                _ => jsonproto::burst(&jsonproto::Addr::Unix(server.socket.clone()), n, idle)?,
            };
            b.server_peak_kib = server.peak_rss_kib().ok();
            if let Some(stats) = server.stop_with_stats()? {
                b.unicast_errors = stats.unicast_errors();
                b.server_disconnects = stats.disconnects();
            }
            Ok(b)
        }
    }
}

/// The address of our library's TCP or TLS row on `server`.
fn lib_addr(env: &Env<'_>, server: &Server, sys: Sys) -> Res<ServerAddr> {
    if sys == Sys::LibTcp {
        return Ok(ServerAddr::tcp(server.tcp));
    }
    let tls = env
        .launch
        .tls
        .as_ref()
        .ok_or_else(|| common::err("no TLS set-up"))?;
    let at = server
        .tls
        .ok_or_else(|| common::err("the server has no TLS port"))?;
    Ok(ServerAddr::tls(at, tls.settings()?))
}

/// Peak RSS (KiB) of a fresh notifysvc idle (TLS off), and of another with the
/// memory crowd (each connection also received one notification, so its
/// output queue exists).
fn memory(cfg: &Config, exe: &Path, launch: &Launch) -> Res<(u64, u64)> {
    // The targets are for the server as it starts by default: without TLS
    // (certificates parsed and rustls's code paged in add about 0.7 MiB,
    // mostly file-backed pages of the binary).
    let launch = &Launch {
        tls: None,
        ..launch.clone()
    };
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
