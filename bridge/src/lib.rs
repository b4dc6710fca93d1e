//! # nfy-bridge
//!
//! Bridges a terminal's `notifysvc` to an MQTT broker, so apps on other
//! terminals of a fleet are reachable by app ID (README, "Fleets").
//!
//! One bridge runs on each terminal, as a client of its local server
//! (`nfy_linux::client`, app ID [`BRIDGE_APP`]) and of the broker
//! (rumqttc, MQTT 3.1.1, QoS 1, persistent session, TLS with rustls and
//! `ring`). It is a separate crate so that the MQTT and TLS dependencies
//! stay out of the terminal's other binaries.
//!
//! | module | holds |
//! |---|---|
//! | [`names`] | terminal IDs; a remote app is `app@terminal` locally |
//! | [`topic`] | the topic scheme |
//! | [`payload`] | the JSON payloads |
//! | [`config`] | the configuration file (rules, exports) and command line |
//! | [`mqtt`] | the broker connection's options, TLS |
//! | [`hub`] | the task owning the broker connection: publishes, PUBACKs, outcomes, presence |
//! | [`outbound`] | what leaves: the proxy registrations' callbacks |
//! | [`inbound`] | what comes in: delivery on the local server, outcomes, proxies |
//! | [`counters`] | what it reports |
//!
//! Threads: the tokio runtime (one thread: the hub and rumqttc's event
//! loop), the inbound worker (every blocking call on the local server),
//! the client library's threads (proxy callbacks), a signal thread.

#![forbid(unsafe_code)]

pub mod config;
pub mod counters;
pub mod hub;
pub mod inbound;
pub mod mqtt;
pub mod names;
pub mod outbound;
pub mod payload;
pub mod topic;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::info;
use nfy_linux::client::{Client, ServerAddr};
use tokio::sync::mpsc::UnboundedSender;

use config::{Options, Rules};
use counters::Counters;
use hub::{Command, Hub};
use inbound::{Probes, Worker};
use names::TerminalId;
use outbound::Proxy;
use topic::Topics;

/// The bridge's app ID on its local server (`nfy status` shows it, with
/// the proxy registrations).
pub const BRIDGE_APP: &str = "nfy-bridge";

/// What the bridge's threads share.
#[derive(Debug)]
pub struct Shared {
    /// This terminal.
    pub me: TerminalId,
    /// The topic scheme.
    pub topics: Topics,
    /// The `in`/`out` rules.
    pub rules: Rules,
    /// The counters.
    pub counters: Counters,
    /// To the hub.
    pub cmd: UnboundedSender<Command>,
    /// The proxy registrations made, sorted by notification then name.
    pub proxies: RwLock<BTreeSet<Proxy>>,
    /// Probe bookkeeping of the inbound worker.
    pub probes: Probes,
    /// The next `id` of a forwarded unicast. **Decision**: starts at the
    /// start time in microseconds since 1970, so ids stay unique for a
    /// terminal across restarts (the other side remembers them to spot
    /// repeats) without storing anything.
    pub next_id: AtomicU64,
}

/// Why the bridge could not run.
#[derive(Debug)]
pub enum RunError {
    /// TLS options.
    Tls(mqtt::TlsError),
    /// The local server's address.
    Address(nfy_linux::client::AddrError),
    /// A runtime or thread could not be started.
    Start(std::io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Tls(e) => write!(f, "{e}"),
            RunError::Address(e) => write!(f, "local server address: {e}"),
            RunError::Start(e) => write!(f, "cannot start: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs the bridge until SIGTERM or SIGINT.
pub fn run(options: Options) -> Result<(), RunError> {
    let topics = Topics::new(&options.prefix);
    let mqtt_options = mqtt::mqtt_options(&options, &topics).map_err(RunError::Tls)?;
    let addr = match &options.socket {
        Some(p) => ServerAddr::unix(p.clone()),
        None => ServerAddr::from_env().map_err(RunError::Address)?,
    };
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = tokio::sync::mpsc::unbounded_channel();
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    let shared = Arc::new(Shared {
        me: options.terminal.clone(),
        topics,
        rules: options.file.rules.clone(),
        counters: Counters::default(),
        cmd: cmd_tx.clone(),
        proxies: RwLock::new(BTreeSet::new()),
        probes: Probes::default(),
        next_id: AtomicU64::new(start),
    });

    let client = Client::connect_in_background(addr.clone());
    // BRIDGE_APP is a valid app ID.
    let _ = client.set_app_id(BRIDGE_APP);
    let s = Arc::clone(&shared);
    let errors = client.on_unicast_error(move |d| s.probes.unicast_error(d));
    info!(
        "terminal {} bridging {} to {}:{} ({} rules, {} exports)",
        options.terminal,
        addr,
        options.broker.host,
        options.broker.port,
        options.file.rules.rules().len(),
        options.file.exports.len()
    );

    let (work_tx, work_rx) = std::sync::mpsc::channel();
    let worker = Worker::new(Arc::clone(&shared), client.clone());
    let worker = std::thread::Builder::new()
        .name("nfy-bridge-in".into())
        .spawn(move || worker.run(work_rx))
        .map_err(RunError::Start)?;

    let status = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGUSR1, &status),
        (signal_hook::consts::SIGTERM, &stop),
        (signal_hook::consts::SIGINT, &stop),
    ] {
        signal_hook::flag::register(sig, Arc::clone(flag)).map_err(RunError::Start)?;
    }
    {
        let cmd = cmd_tx.clone();
        std::thread::Builder::new()
            .name("nfy-bridge-sig".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(50));
                if status.swap(false, Ordering::Relaxed) && cmd.send(Command::Status).is_err() {
                    return;
                }
                if stop.load(Ordering::Relaxed) {
                    let _ = cmd.send(Command::Stop);
                    return;
                }
            })
            .map_err(RunError::Start)?;
    }
    drop(cmd_tx);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Start)?;
    let (mqtt_client, eventloop) = rumqttc::AsyncClient::new(mqtt_options, 64 * 1024);
    let hub = Hub::new(
        Arc::clone(&shared),
        mqtt_client,
        work_tx,
        options.reply_timeout,
        mqtt::presence(&options, true),
        mqtt::presence(&options, false),
    );
    runtime.block_on(async {
        tokio::spawn(hub::drive(eventloop, ev_tx));
        hub.run(ev_rx, cmd_rx, options.status_interval).await;
    });
    drop(runtime);
    // The hub is gone: the worker's channel closes and it ends.
    let _ = worker.join();
    drop(errors);
    client.close();
    eprintln!(
        "nfy-bridge {}: {}",
        shared.me,
        shared.counters.snapshot().to_json()
    );
    Ok(())
}
