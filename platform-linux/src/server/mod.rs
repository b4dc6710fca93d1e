//! The notification server (`notifysvc`, spec sections 4 and 6).
//!
//! This module owns sockets, threads, files and logs; every routing
//! decision is made by [`nfy_core::broker::Broker`], which the event loop
//! feeds frame by frame.
//!
//! | module | holds |
//! |---|---|
//! | [`args`] | the `notifysvc` command line |
//! | [`config`] | finding and reading the whitelist configuration |
//! | [`listen`] | TCP and Unix listeners, peer classification, one-server rule |
//! | [`outbound`] | per-connection output queues, the broker's `Outbox` |
//! | `event_loop` | the single-threaded `mio` loop driving the broker |
//!
//! Start-up order: configuration (errors exit before any socket opens),
//! TCP listeners, Unix socket, then the loop. [`run`] blocks until a
//! shutdown; [`start`] returns a [`ServerHandle`] once the server accepts
//! connections (used in-process by tests and by `ipcNotificationServer`).
//!
//! # Exit statuses of `notifysvc`
//!
//! The negated [`NotifyResult`] of [`ServerError::result`]:
//!
//! | status | meaning |
//! |---|---|
//! | 0 | clean shutdown (SIGTERM/SIGINT), `--help`, `--version` |
//! | 1 | `ERR_SERVER`: another server runs (port or socket), a path that is not a socket is in the way, other start-up or I/O failures |
//! | 3 | `ERR_PERMISSION`: the local socket (or its directory, or a TCP port) may not be created |
//! | 4 | `ERR_CONFIG_FILE`: the configuration file cannot be read |
//! | 5 | `ERR_CONFIG_SYNTAX`: an invalid configuration line (its number is in the message) |
//! | 64 | command-line usage error (`EX_USAGE`, outside the result-code range on purpose) |

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use nfy_core::broker::{Broker, Limits};
use nfy_core::whitelist::{ConfigError, Whitelist};
use nfy_core::NotifyResult;

pub mod args;
pub mod config;
mod event_loop;
pub mod listen;
pub mod outbound;

pub use config::ConfigSource;

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
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;
/// Smallest `--max-frame` accepted (room for a notification with three
/// 64-byte IDs and a modest parameter).
pub const MIN_MAX_FRAME: usize = 1024;
/// Largest `--max-frame` accepted.
pub const MAX_MAX_FRAME: usize = 16 * 1024 * 1024;
/// Default bound of one connection's unsent output (`--max-queue`).
pub const DEFAULT_MAX_QUEUE: usize = 4 * 1024 * 1024;
/// Largest `--max-queue` accepted.
pub const MAX_MAX_QUEUE: usize = 1024 * 1024 * 1024;
/// `--max-queue` must hold this many maximum-size frames (a forwarded
/// frame can be a little larger than the one received: `reference`,
/// re-encoding), so a single big notification never overflows a healthy
/// connection.
pub const MIN_QUEUE_FRAMES: usize = 2;

/// Stack of the event-loop thread. The broker lives inline (a few MB of
/// fixed-capacity tables) and is built on this stack before being boxed;
/// the memory is virtual until touched.
pub const EVENT_LOOP_STACK: usize = 64 * 1024 * 1024;

/// The whitelist with this platform's capacities.
pub type LinuxWhitelist = Whitelist<MAX_RULES, MAX_INTERFACES>;

/// The broker with this platform's capacities.
pub type LinuxBroker = Broker<MAX_CONNECTIONS, MAX_REGISTRATIONS, MAX_RULES, MAX_INTERFACES>;

/// The broker limits of the Linux server.
pub const LIMITS: Limits = Limits {
    max_registrations_per_connection: MAX_REGISTRATIONS_PER_CONNECTION,
    max_remote_registrations: MAX_REMOTE_REGISTRATIONS,
};

/// Builds the broker. It is large: call this on a thread with a big stack
/// (the event loop runs on one of [`EVENT_LOOP_STACK`] bytes).
pub fn new_broker(whitelist: LinuxWhitelist, limits: Limits) -> Box<LinuxBroker> {
    Box::new(Broker::new(whitelist, limits))
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
    /// Stop cleanly on SIGTERM/SIGINT (the binary sets this; an
    /// application running the server in-process may keep its own signal
    /// handling and use [`ServerHandle::shutdown`]).
    pub handle_signals: bool,
}

impl Default for Options {
    /// The documented defaults: [`crate::defaults::default_port`],
    /// [`crate::defaults::default_socket_path`] (both read the
    /// environment), default frame and queue limits, default configuration
    /// locations, no signal handling.
    fn default() -> Self {
        Options {
            port: crate::defaults::default_port(),
            socket: crate::defaults::default_socket_path(),
            max_frame: DEFAULT_MAX_FRAME,
            max_queue: DEFAULT_MAX_QUEUE,
            config: ConfigSource::Default,
            handle_signals: false,
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
            ServerError::ConfigFile { .. } => NotifyResult::ErrConfigFile,
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
    // Signals first: a SIGTERM during start-up then stops the server
    // cleanly instead of killing it with a socket file left behind.
    let poller = event_loop::Poller::new(opts.handle_signals)?;
    let loaded = config::load(&opts.config)?;
    match &loaded.path {
        Some(path) => ::log::info!(
            "configuration {}: {} rule(s), {} interface line(s)",
            path.display(),
            loaded.whitelist.rules().len(),
            loaded.whitelist.interfaces().len()
        ),
        None => ::log::info!("no configuration file: local clients only"),
    }
    let listeners = listen::open(opts, &loaded.whitelist)?;
    let broker = new_broker(loaded.whitelist, LIMITS);
    let event_loop = event_loop::EventLoop::new(opts, poller, broker, listeners, shared)?;
    let tcp_addrs = event_loop.tcp_addrs();
    let _ = ready.send(Ready {
        tcp_addrs,
        socket: opts.socket.clone(),
        waker: event_loop.waker(),
    });
    ::log::info!(
        "notifysvc {} ready (max frame {} bytes, max queue {} bytes)",
        env!("CARGO_PKG_VERSION"),
        opts.max_frame,
        opts.max_queue
    );
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
