//! The notification server (`notifysvc`, spec sections 4 and 6).
//!
//! This module owns sockets, threads, files, the clock and logs; every
//! decision — who may connect, who receives what, who waits for whom, who
//! is stalled — is made by [`nfy_core::broker::Broker`], which the event
//! loop feeds everything its decoders produce. `docs/architecture.md`
//! draws the path of a frame.
//!
//! | module | holds |
//! |---|---|
//! | [`args`] | the `notifysvc` command line |
//! | [`config`] | finding and reading the whitelist configuration |
//! | [`listen`] | TCP and Unix listeners, peer classification, one-server rule |
//! | [`heap_storage`] | the broker's storages on the heap: routing table ([`HeapStorage`]), connections ([`HeapConns`]), ledgers ([`HeapLedger`]) |
//! | [`out_queue`] | one connection's output queue and its `send` |
//! | [`outbox`] | every connection's queue: the broker's `Outbox`, closes and resumes it asks for |
//! | [`events`] | the broker's events as log lines and counters |
//! | `event_loop` | the single-threaded `mio` loop: one iteration, closes, flushes, the timer |
//! | `poll` | the poller with its waker and signal pipes, made first |
//! | `signals` | SIGTERM/SIGINT/SIGHUP as pipes the poller watches |
//! | `reload` | SIGHUP: the configuration read again, listeners kept (the **Decision**) |
//! | `systemd` | readiness, reloading and stopping told to systemd (`NOTIFY_SOCKET`) |
//! | `conn` | one connection: its socket, peer, decoder and held input |
//! | `accept` | accepting and admitting connections, refusal warnings |
//! | `read` | reading connections into the broker, pausing and resuming |
//! | [`tls`] | the `--tls-*` options, the rustls configuration made at start-up, who is remote over TLS |
//! | `handshake` | TLS handshakes in progress: their bound, timeout, failures, hand-over to the broker |
//! | `tls_stream` | an established TLS connection: plaintext in, queue out through rustls |
//! | `shutdown` | the last sends and the statistics line |
//!
//! # Profiles
//!
//! The same server runs every platform profile ([`Profile`]): the Linux
//! one ([`Profile::LINUX`]) and the Verix-style one (defined in the
//! `nfy-verix-sim` crate: configuration ignored, local connections only,
//! tighter limits). A profile changes three places, each guarded by a flag
//! or a limit, never by a second copy of the code: configuration loading
//! ([`config::load_for`]), listener planning ([`listen::open`]) and
//! admission (the broker refuses a remote peer under a local-only
//! profile even if it reaches a socket). Its limits go to the broker
//! ([`Options::broker_limits`], enforced at run time below the
//! [`LinuxBroker`] capacities) and cap the frame and queue sizes
//! ([`Profile::cap`]), so hitting them gives the same typed refusals and
//! log lines on every profile.
//!
//! Start-up order: configuration and TLS files (errors exit before any
//! socket opens), TCP and TLS listeners, Unix socket, then the loop (and, for the binaries,
//! `READY=1` to systemd). [`run`] blocks until a shutdown; [`start`]
//! returns a [`ServerHandle`] once the server accepts connections (used
//! in-process by tests and by `ipcNotificationServer`).
//!
//! # Signals (the binaries: [`Options::handle_signals`])
//!
//! | signal | effect |
//! |---|---|
//! | SIGTERM, SIGINT | clean shutdown: last sends, socket file removed, exit 0 |
//! | SIGHUP | the whitelist configuration is read again and applied to open and new remote connections; an unreadable or invalid file is logged (file, line) and the configuration in force stays (see `reload`); TLS certificate and key files are not read again (a restart takes new ones) |
//!
//! # Exit statuses of `notifysvc`
//!
//! The negated [`NotifyResult`] of [`ServerError::result`]:
//!
//! | status | meaning |
//! |---|---|
//! | 0 | clean shutdown (SIGTERM/SIGINT), `--help`, `--version` |
//! | 1 | `ERR_SERVER`: another server runs (port or socket), a path that is not a socket is in the way, other start-up or I/O failures |
//! | 3 | `ERR_PERMISSION`: the local socket (or its directory, or a TCP port) may not be created, or not given to `--socket-group` |
//! | 4 | `ERR_CONFIG_FILE`: the configuration file cannot be read, or a TLS certificate, key or CA file (`--tls-*`) is unusable |
//! | 5 | `ERR_CONFIG_SYNTAX`: an invalid configuration line (its number is in the message) |
//! | 64 | command-line usage error (`EX_USAGE`, outside the result-code range on purpose), among them a `--socket-group` that names no group |
//!
//! # Security
//!
//! The socket's mode and group are in [`listen`]; the limits of remote
//! connections in [`RemoteLimits`]; the threat model, with the test that
//! shows each line, in `docs/reliability.md`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use std::time::Duration;

use nfy_core::broker::{Broker, FlowLimits, Limits, RETURN_SLACK};
use nfy_core::whitelist::{ConfigError, Whitelist};
use nfy_core::wire::HEADER_LEN;
use nfy_core::NotifyResult;

use crate::sdnotify;

mod accept;
pub mod args;
pub mod config;
mod conn;
mod event_loop;
pub mod events;
mod handshake;
pub mod heap_storage;
pub mod listen;
pub mod out_queue;
pub mod outbox;
mod poll;
mod read;
mod reload;
mod shutdown;
mod signals;
mod systemd;
pub mod tls;
mod tls_stream;

pub use config::ConfigSource;
pub use heap_storage::{HeapConns, HeapLedger, HeapStorage};
pub use nfy_core::broker::RemoteLimits;
pub use tls::{PlainRemote, TlsOptions};

/// Connections the broker holds at once (local and remote together).
pub const MAX_CONNECTIONS: usize = 1024;
/// Registrations the broker holds at once (a power of two: index map).
pub const MAX_REGISTRATIONS: usize = 16384;
/// `in`/`out` rules a configuration may hold.
pub const MAX_RULES: usize = 256;
/// `interface` lines a configuration may hold.
pub const MAX_INTERFACES: usize = 16;
/// Registrations one connection may hold.
pub const MAX_REGISTRATIONS_PER_CONNECTION: usize = 1024;
/// Registrations all remote connections together may hold (spec: 256).
pub const MAX_REMOTE_REGISTRATIONS: usize = 256;

/// Default largest frame body accepted (`--max-frame`), in bytes.
pub const DEFAULT_MAX_FRAME: usize = Limits::DEFAULT.max_frame;
/// Smallest `--max-frame` accepted (room for a notification with three
/// 64-byte IDs and a modest parameter).
pub const MIN_MAX_FRAME: usize = 1024;
/// Largest `--max-frame` accepted.
pub const MAX_MAX_FRAME: usize = 16 * 1024 * 1024;
/// Default bound of one connection's unsent output (`--max-queue`).
pub const DEFAULT_MAX_QUEUE: usize = Limits::DEFAULT.max_queue;
/// Largest `--max-queue` accepted.
pub const MAX_MAX_QUEUE: usize = 1024 * 1024 * 1024;
/// `--max-queue` must hold this many maximum-size frames (a forwarded
/// frame can be a little larger than the one received: `reference`,
/// re-encoding), so a single big notification never overflows a healthy
/// connection.
pub const MIN_QUEUE_FRAMES: usize = 2;

/// Default cap on remote connections open at once (`--max-remote`).
pub const DEFAULT_MAX_REMOTE_CONNECTIONS: usize = RemoteLimits::DEFAULT.max_connections;
/// Default largest frame body accepted from a remote connection
/// (`--max-remote-frame`): smaller than the local default.
pub const DEFAULT_MAX_REMOTE_FRAME: usize = RemoteLimits::DEFAULT.max_frame;
/// Default sustained frame rate of one remote connection, frames per
/// second (`--remote-rate`).
pub const DEFAULT_REMOTE_RATE: u32 = RemoteLimits::DEFAULT.rate;
/// Default burst of one remote connection, frames (`--remote-burst`):
/// room for all 256 remote registrations (spec 6) and more in one go.
pub const DEFAULT_REMOTE_BURST: u32 = RemoteLimits::DEFAULT.burst;
/// Default stall timeout (`--stall-timeout`): a connection that holds
/// senders back and takes no bytes for this long is disconnected.
pub const DEFAULT_STALL_TIMEOUT: Duration = FlowLimits::DEFAULT_STALL_TIMEOUT;
/// Smallest `--stall-timeout` accepted.
pub const MIN_STALL_TIMEOUT: Duration = Duration::from_millis(100);
/// Largest `--stall-timeout` accepted.
pub const MAX_STALL_TIMEOUT: Duration = Duration::from_secs(3600);

/// Flow control's options (see the core's `broker::flow`): the marks, by
/// default fractions of `--max-queue`, and the stall timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowOptions {
    /// `--high-water`; `None`: a quarter of `--max-queue`.
    pub high_water: Option<usize>,
    /// `--low-water`; `None`: a quarter of the high-water mark.
    pub low_water: Option<usize>,
    /// `--stall-timeout`.
    pub stall_timeout: Duration,
}

impl Default for FlowOptions {
    fn default() -> Self {
        FlowOptions {
            high_water: None,
            low_water: None,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        }
    }
}

impl FlowOptions {
    /// The highest high-water mark for these queue and frame limits: one
    /// frame queued just under it (with the room a forwarded frame may
    /// grow by) still fits the queue.
    pub const fn max_high_water(max_queue: usize, max_frame: usize) -> usize {
        max_queue.saturating_sub(
            max_frame
                .saturating_add(HEADER_LEN)
                .saturating_add(RETURN_SLACK),
        )
    }

    /// The marks and timeout for a queue of `max_queue` bytes and frames
    /// of `max_frame` (defaults filled in, marks kept in range).
    pub fn limits(&self, max_queue: usize, max_frame: usize) -> FlowLimits {
        let default = FlowLimits::for_queue(max_queue);
        let high_water = self
            .high_water
            .unwrap_or(default.high_water)
            .min(Self::max_high_water(max_queue, max_frame))
            .max(1);
        let low_water = self.low_water.unwrap_or(high_water / 4).min(high_water - 1);
        FlowLimits {
            high_water,
            low_water,
            stall_timeout: self.stall_timeout,
        }
    }
}

/// Stack of the event-loop thread. The broker is built on this stack
/// before being boxed (its whitelist is inline; the routing table and the
/// connection slots are on the heap, see [`heap_storage`]); the memory is
/// virtual until touched.
pub const EVENT_LOOP_STACK: usize = 64 * 1024 * 1024;

/// The whitelist with this platform's capacities.
pub type LinuxWhitelist = Whitelist<MAX_RULES, MAX_INTERFACES>;

/// The broker with this platform's capacities, its storages on the heap.
pub type LinuxBroker = Broker<
    MAX_CONNECTIONS,
    MAX_REGISTRATIONS,
    MAX_RULES,
    MAX_INTERFACES,
    HeapStorage<MAX_REGISTRATIONS>,
    HeapConns,
>;

/// The broker limits of the Linux server.
pub const LIMITS: Limits = Profile::LINUX.broker_limits();

/// The limits of a platform profile. Connection and registration limits
/// apply at run time and must not exceed the [`LinuxBroker`] capacities
/// ([`MAX_CONNECTIONS`], [`MAX_REGISTRATIONS`]); larger values act as the
/// capacities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileLimits {
    /// Connections open at once, local and remote together.
    pub max_connections: usize,
    /// Registrations held at once, all connections together.
    pub max_registrations: usize,
    /// Registrations one connection may hold.
    pub max_registrations_per_connection: usize,
    /// Registrations all remote connections together may hold.
    pub max_remote_registrations: usize,
    /// Largest frame body accepted: caps [`Options::max_frame`].
    pub max_frame: usize,
    /// Largest per-connection output queue: caps [`Options::max_queue`].
    pub max_queue: usize,
}

/// A platform profile: what the server does differently on a platform,
/// as flags and limits (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Short name for logs (`"linux"`, `"verix"`).
    pub name: &'static str,
    /// Never read a configuration file: the one given is ignored (one
    /// info line says so) and the default locations are not looked at.
    pub ignore_config: bool,
    /// Listen on loopback and the Unix socket only, whatever the
    /// configuration, and refuse (and log) any remote peer that reaches a
    /// socket anyway.
    pub local_only: bool,
    /// The limits.
    pub limits: ProfileLimits,
}

impl Profile {
    /// The Linux profile: configuration honoured, remote peers per the
    /// whitelist, the capacities of [`LinuxBroker`] as limits.
    pub const LINUX: Profile = Profile {
        name: "linux",
        ignore_config: false,
        local_only: false,
        limits: ProfileLimits {
            max_connections: MAX_CONNECTIONS,
            max_registrations: MAX_REGISTRATIONS,
            max_registrations_per_connection: MAX_REGISTRATIONS_PER_CONNECTION,
            max_remote_registrations: MAX_REMOTE_REGISTRATIONS,
            max_frame: MAX_MAX_FRAME,
            max_queue: MAX_MAX_QUEUE,
        },
    };

    /// The broker limits of this profile, with the default frame, queue,
    /// remote and flow limits (see [`Options::broker_limits`] for the
    /// limits a server runs with).
    pub const fn broker_limits(&self) -> Limits {
        Limits {
            max_registrations_per_connection: self.limits.max_registrations_per_connection,
            max_remote_registrations: self.limits.max_remote_registrations,
            max_connections: self.limits.max_connections,
            max_registrations: self.limits.max_registrations,
            local_only: self.local_only,
            ..Limits::DEFAULT
        }
    }

    /// `opts` with the frame and queue sizes capped by this profile's
    /// limits. The queue still holds [`MIN_QUEUE_FRAMES`] frames of the
    /// capped size; the remote frame limit is at most the frame limit, and
    /// the remote burst at least 1.
    pub fn cap(&self, opts: &Options) -> Options {
        let max_frame = opts.max_frame.min(self.limits.max_frame);
        let min_queue = max_frame
            .saturating_add(nfy_core::wire::HEADER_LEN)
            .saturating_mul(MIN_QUEUE_FRAMES);
        let max_queue = opts.max_queue.min(self.limits.max_queue).max(min_queue);
        let remote = RemoteLimits {
            max_frame: opts.remote.max_frame.min(max_frame),
            burst: opts.remote.burst.max(1),
            ..opts.remote
        };
        Options {
            max_frame,
            max_queue,
            remote,
            ..opts.clone()
        }
    }
}

impl Default for Profile {
    /// [`Profile::LINUX`].
    fn default() -> Self {
        Profile::LINUX
    }
}

/// Builds the broker, its routing table, connection slots and ledgers on
/// the heap ([`HeapStorage`], [`HeapConns`], [`HeapLedger`]). Call this on
/// a thread with a big stack (the event loop runs on one of
/// [`EVENT_LOOP_STACK`] bytes).
pub fn new_broker(whitelist: LinuxWhitelist, limits: Limits) -> Box<LinuxBroker> {
    Box::new(Broker::with_storage(
        whitelist,
        limits,
        HeapStorage::default(),
    ))
}

/// How to run the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// TCP port; 0 picks a free one (logged; see [`ServerHandle::tcp_addrs`]).
    pub port: u16,
    /// Path of the Unix socket.
    pub socket: PathBuf,
    /// Largest frame body accepted from a client, in bytes.
    pub max_frame: usize,
    /// Bound of one connection's unsent output, in bytes.
    pub max_queue: usize,
    /// Which configuration to load.
    pub config: ConfigSource,
    /// Run as the process's daemon: stop cleanly on SIGTERM/SIGINT,
    /// reload the configuration on SIGHUP, and tell systemd (when
    /// `NOTIFY_SOCKET` is set) when it is ready, reloading or stopping.
    /// The binaries set this; an application running the server
    /// in-process keeps its own signal handling, uses
    /// [`ServerHandle::shutdown`], and is not announced to systemd.
    pub handle_signals: bool,
    /// The platform profile ([`Profile::LINUX`] by default).
    pub profile: Profile,
    /// Group owning the Unix socket (and the directories the server creates
    /// for it); `None`: the server's own group. See [`listen`].
    pub socket_group: Option<u32>,
    /// Limits of remote connections.
    pub remote: RemoteLimits,
    /// Flow control.
    pub flow: FlowOptions,
    /// TLS for remote peers (`--tls-*`); `None`: no TLS listener.
    pub tls: Option<TlsOptions>,
    /// Whether plain TCP serves remote peers (`--no-plain-remote`).
    pub plain_remote: PlainRemote,
}

impl Options {
    /// The limits the broker enforces for these options: the profile's,
    /// the frame and queue sizes, the remote limits and flow control.
    /// Apply [`Profile::cap`] first.
    pub fn broker_limits(&self) -> Limits {
        Limits {
            max_frame: self.max_frame,
            max_queue: self.max_queue,
            remote: self.remote,
            flow: self.flow.limits(self.max_queue, self.max_frame),
            ..self.profile.broker_limits()
        }
    }
}

impl Default for Options {
    /// The documented defaults: [`crate::defaults::default_port`],
    /// [`crate::defaults::default_socket_path`] (both read the
    /// environment), default frame and queue limits, default configuration
    /// locations, no signal handling, the Linux profile, the socket in
    /// the server's own group, default remote limits ([`RemoteLimits`]),
    /// default flow control ([`FlowOptions`]), no TLS, plain remote TCP
    /// as the configuration says.
    fn default() -> Self {
        Options {
            port: crate::defaults::default_port(),
            socket: crate::defaults::default_socket_path(),
            max_frame: DEFAULT_MAX_FRAME,
            max_queue: DEFAULT_MAX_QUEUE,
            config: ConfigSource::Default,
            handle_signals: false,
            profile: Profile::LINUX,
            socket_group: None,
            remote: RemoteLimits::default(),
            flow: FlowOptions::default(),
            tls: None,
            plain_remote: PlainRemote::Allowed,
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug)]
pub enum ServerError {
    /// The configuration file cannot be read (`ERR_CONFIG_FILE`).
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A TLS certificate, key or CA file cannot be used
    /// (`ERR_CONFIG_FILE`).
    TlsFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The configuration file has an invalid line (`ERR_CONFIG_SYNTAX`).
    ConfigSyntax {
        /// The file.
        path: PathBuf,
        /// The line and what is wrong with it.
        error: ConfigError,
    },
    /// Not allowed to create the local socket (or its directory, or to
    /// bind a TCP port) (`ERR_PERMISSION`).
    Permission {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: io::Error,
    },
    /// The TCP port is taken: another server runs.
    PortInUse {
        /// The address that could not be bound.
        addr: SocketAddr,
    },
    /// Another server accepts connections on the Unix socket.
    AlreadyRunning {
        /// The socket path (left untouched).
        socket: PathBuf,
    },
    /// The socket path exists and is not a socket (left untouched).
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Any other I/O failure.
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: io::Error,
    },
    /// The server thread died unexpectedly (a bug).
    Internal(String),
}

impl ServerError {
    /// The original result code this error stands for.
    pub fn result(&self) -> NotifyResult {
        match self {
            ServerError::ConfigFile { .. } | ServerError::TlsFile { .. } => {
                NotifyResult::ErrConfigFile
            }
            ServerError::ConfigSyntax { .. } => NotifyResult::ErrConfigSyntax,
            ServerError::Permission { .. } => NotifyResult::ErrPermission,
            ServerError::PortInUse { .. }
            | ServerError::AlreadyRunning { .. }
            | ServerError::NotASocket { .. }
            | ServerError::Io { .. }
            | ServerError::Internal(_) => NotifyResult::ErrServer,
        }
    }

    /// The process exit status for this error: the negated result code.
    pub fn exit_code(&self) -> i32 {
        -self.result().code()
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::ConfigFile { path, source } => write!(
                f,
                "cannot read the configuration file {}: {source}",
                path.display()
            ),
            ServerError::TlsFile { path, problem } => {
                write!(f, "cannot use the TLS file {}: {problem}", path.display())
            }
            ServerError::ConfigSyntax { path, error } => {
                write!(f, "invalid configuration file {}: {error}", path.display())
            }
            ServerError::Permission { context, source } => {
                write!(f, "permission denied: {context}: {source}")
            }
            ServerError::PortInUse { addr } => write!(
                f,
                "another notifysvc is running on port {} (tcp {addr} is already in use)",
                addr.port()
            ),
            ServerError::AlreadyRunning { socket } => write!(
                f,
                "another notifysvc is running on socket {} (it accepts connections); \
                 leaving it alone",
                socket.display()
            ),
            ServerError::NotASocket { path } => write!(
                f,
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            ),
            ServerError::Io { context, source } => write!(f, "{context}: {source}"),
            ServerError::Internal(what) => write!(f, "internal error: {what}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::ConfigFile { source, .. }
            | ServerError::Permission { source, .. }
            | ServerError::Io { source, .. } => Some(source),
            ServerError::ConfigSyntax { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// State shared between the handle and the loop.
#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
}

/// What the loop thread reports once it is listening.
struct Ready {
    tcp_addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
    socket: PathBuf,
    waker: Arc<mio::Waker>,
}

/// A server running on its own thread.
#[derive(Debug)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    waker: Arc<mio::Waker>,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
    tcp_addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
    socket: PathBuf,
}

impl ServerHandle {
    /// The TCP addresses listened on (with the real port).
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// The TCP port listened on.
    pub fn port(&self) -> u16 {
        self.tcp_addrs.first().map_or(0, SocketAddr::port)
    }

    /// The TLS addresses listened on (none without TLS).
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls_addrs
    }

    /// The TLS port listened on (0 without TLS).
    pub fn tls_port(&self) -> u16 {
        self.tls_addrs.first().map_or(0, SocketAddr::port)
    }

    /// The Unix socket path.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// Asks the server to stop (returns at once; see [`ServerHandle::join`]).
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            ::log::error!("cannot wake the server loop: {e}");
        }
    }

    /// Waits until the server stopped (after a shutdown or a signal).
    pub fn join(mut self) -> Result<(), ServerError> {
        self.join_inner()
    }

    fn join_inner(&mut self) -> Result<(), ServerError> {
        match self.thread.take() {
            None => Ok(()),
            Some(thread) => thread.join().unwrap_or_else(|_| {
                Err(ServerError::Internal("the server thread panicked".into()))
            }),
        }
    }
}

impl Drop for ServerHandle {
    /// Stops the server and waits for it.
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown();
            if let Err(e) = self.join_inner() {
                ::log::error!("{e}");
            }
        }
    }
}

/// Starts the server on its own thread; returns once it listens. Start-up
/// errors (configuration, permissions, another server) are returned here.
pub fn start(opts: Options) -> Result<ServerHandle, ServerError> {
    let shared = Arc::new(Shared::default());
    let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
    let loop_shared = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("notifysvc".into())
        .stack_size(EVENT_LOOP_STACK)
        .spawn(move || serve(&opts, loop_shared, ready_tx))
        .map_err(|e| ServerError::Io {
            context: "cannot start the server thread".into(),
            source: e,
        })?;
    match ready_rx.recv() {
        Ok(ready) => Ok(ServerHandle {
            shared,
            waker: ready.waker,
            thread: Some(thread),
            tcp_addrs: ready.tcp_addrs,
            tls_addrs: ready.tls_addrs,
            socket: ready.socket,
        }),
        // The thread ended before it was ready: its result says why.
        Err(_) => match thread.join() {
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => Err(ServerError::Internal(
                "the server thread ended during start-up".into(),
            )),
            Err(_) => Err(ServerError::Internal(
                "the server thread panicked during start-up".into(),
            )),
        },
    }
}

/// Runs the server until it is stopped (SIGTERM/SIGINT when
/// `opts.handle_signals`); returns start-up and fatal errors.
pub fn run(opts: Options) -> Result<(), ServerError> {
    start(opts)?.join()
}

/// The server thread: set up, report readiness, loop.
fn serve(
    opts: &Options,
    shared: Arc<Shared>,
    ready: mpsc::Sender<Ready>,
) -> Result<(), ServerError> {
    let capped = opts.profile.cap(opts);
    let opts = &capped;
    // Signals first: a SIGTERM during start-up then stops the server
    // cleanly instead of killing it with a socket file left behind.
    let poll = poll::ServerPoll::new(opts.handle_signals)?;
    let loaded = config::load_for(&opts.profile, &opts.config)?;
    match &loaded.path {
        Some(path) => ::log::info!(
            "configuration {}: {} rule(s), {} interface line(s)",
            path.display(),
            loaded.whitelist.rules().len(),
            loaded.whitelist.interfaces().len()
        ),
        None if opts.profile.ignore_config && matches!(opts.config, ConfigSource::File(_)) => {}
        None => ::log::info!("no configuration file: local clients only"),
    }
    let tls = opts.tls.as_ref().map(tls::load).transpose()?;
    let listeners = listen::open(opts, &loaded.whitelist)?;
    let limits = opts.broker_limits();
    let rules = loaded.whitelist.rules().len();
    let broker = new_broker(loaded.whitelist, limits);
    let tls_mode = tls.as_ref().map(|t| t.client_auth);
    let mut event_loop = event_loop::EventLoop::new(opts, poll, broker, listeners, tls, shared)?;
    event_loop.config_path = loaded.path;
    let tcp_addrs = event_loop.tcp_addrs();
    let tls_addrs = event_loop.tls_addrs();
    let _ = ready.send(Ready {
        tcp_addrs,
        tls_addrs,
        socket: opts.socket.clone(),
        waker: event_loop.waker(),
    });
    ::log::info!(
        "notifysvc {} ready ({} profile, max frame {} bytes, max queue {} bytes; senders wait \
         above {} bytes queued until below {}, stall timeout {})",
        env!("CARGO_PKG_VERSION"),
        opts.profile.name,
        opts.max_frame,
        opts.max_queue,
        limits.flow.high_water,
        limits.flow.low_water,
        events::seconds(limits.flow.stall_timeout)
    );
    if !opts.profile.local_only {
        let rate = match opts.remote.rate {
            0 => "no rate limit".to_owned(),
            r => format!("{r} frames/s, burst {}", opts.remote.burst),
        };
        ::log::info!(
            "remote connections: at most {}, max frame {} bytes, {rate}",
            opts.remote.max_connections,
            opts.remote.max_frame
        );
    }
    if let (Some(mode), Some(t)) = (tls_mode, &opts.tls) {
        let auth = match (mode, &t.client_ca) {
            (tls::ClientAuth::Required, Some(ca)) => format!(
                "peers must present a certificate of the client CA {}",
                ca.display()
            ),
            _ => "server-authenticated only (no --tls-client-ca)".to_owned(),
        };
        ::log::info!(
            "TLS: {auth}; handshakes: at most {} at once, {} each",
            t.max_handshakes,
            events::seconds(t.handshake_timeout)
        );
    }
    let status = format!(
        "ready; {rules} rule(s), {} tcp listener(s)",
        event_loop.tcp.len()
    );
    event_loop
        .systemd
        .notify(&[sdnotify::State::Ready, sdnotify::State::Status(&status)]);
    event_loop.run()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfy_core::whitelist::ConfigErrorKind;

    #[test]
    fn exit_codes_are_negated_result_codes() {
        let io = || io::Error::other("x");
        let cases = [
            (
                ServerError::ConfigFile {
                    path: "/c".into(),
                    source: io(),
                },
                4,
            ),
            (
                ServerError::ConfigSyntax {
                    path: "/c".into(),
                    error: ConfigError {
                        line: 7,
                        kind: ConfigErrorKind::UnknownKeyword,
                    },
                },
                5,
            ),
            (
                ServerError::Permission {
                    context: "c".into(),
                    source: io(),
                },
                3,
            ),
            (
                ServerError::PortInUse {
                    addr: "127.0.0.1:5899".parse().unwrap(),
                },
                1,
            ),
            (
                ServerError::AlreadyRunning {
                    socket: "/s".into(),
                },
                1,
            ),
            (ServerError::NotASocket { path: "/s".into() }, 1),
        ];
        for (err, code) in cases {
            assert_eq!(err.exit_code(), code, "{err}");
        }
    }

    #[test]
    fn messages_name_the_problem() {
        let syntax = ServerError::ConfigSyntax {
            path: "/etc/notify.cfg".into(),
            error: ConfigError {
                line: 7,
                kind: ConfigErrorKind::UnknownKeyword,
            },
        };
        let text = syntax.to_string();
        assert!(
            text.contains("/etc/notify.cfg") && text.contains("line 7"),
            "{text}"
        );
        let port = ServerError::PortInUse {
            addr: "127.0.0.1:5899".parse().unwrap(),
        };
        assert!(port
            .to_string()
            .contains("another notifysvc is running on port 5899"));
    }

    #[test]
    fn linux_profile_limits_are_the_capacities() {
        assert_eq!(Options::default().profile, Profile::LINUX);
        assert_eq!(LIMITS.max_connections, MAX_CONNECTIONS);
        assert_eq!(LIMITS.max_registrations, MAX_REGISTRATIONS);
        assert_eq!(
            LIMITS.max_registrations_per_connection,
            MAX_REGISTRATIONS_PER_CONNECTION
        );
        assert_eq!(LIMITS.max_remote_registrations, MAX_REMOTE_REGISTRATIONS);
        // The Linux profile caps nothing the command line accepts.
        let opts = Options {
            max_frame: MAX_MAX_FRAME,
            max_queue: MAX_MAX_QUEUE,
            ..Options::default()
        };
        assert_eq!(Profile::LINUX.cap(&opts), opts);
    }

    #[test]
    fn a_profile_caps_frame_and_queue_sizes() {
        let small = Profile {
            limits: ProfileLimits {
                max_frame: 8192,
                max_queue: 10_000,
                ..Profile::LINUX.limits
            },
            ..Profile::LINUX
        };
        let capped = small.cap(&Options::default());
        assert_eq!(capped.max_frame, 8192);
        // The queue still holds two frames of the capped size.
        assert_eq!(capped.max_queue, 2 * (8192 + nfy_core::wire::HEADER_LEN));
        // Smaller values asked for are kept.
        let asked = Options {
            max_frame: 2048,
            max_queue: 9000,
            ..Options::default()
        };
        let capped = small.cap(&asked);
        assert_eq!((capped.max_frame, capped.max_queue), (2048, 9000));
    }

    #[test]
    fn in_process_server_starts_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("notify.sock");
        let handle = start(Options {
            port: 0,
            socket: socket.clone(),
            config: ConfigSource::None,
            ..Options::default()
        })
        .unwrap();
        assert_ne!(handle.port(), 0);
        assert!(handle.tcp_addrs().iter().all(|a| a.ip().is_loopback()));
        std::net::TcpStream::connect(handle.tcp_addrs()[0]).unwrap();
        std::os::unix::net::UnixStream::connect(&socket).unwrap();

        // A second in-process server on the same port is refused.
        let err = start(Options {
            port: handle.port(),
            socket: dir.path().join("other.sock"),
            config: ConfigSource::None,
            ..Options::default()
        })
        .unwrap_err();
        assert!(matches!(err, ServerError::PortInUse { .. }), "{err}");
        assert!(socket.exists());

        handle.shutdown();
        handle.join().unwrap();
        assert!(!socket.exists(), "socket removed on shutdown");
    }

    #[test]
    fn startup_errors_come_back_from_start() {
        let dir = tempfile::tempdir().unwrap();
        let err = start(Options {
            port: 0,
            socket: dir.path().join("s.sock"),
            config: ConfigSource::File(dir.path().join("missing.cfg")),
            ..Options::default()
        })
        .unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(
            !dir.path().join("s.sock").exists(),
            "no listener before config"
        );
    }
}
