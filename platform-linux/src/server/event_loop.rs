//! The server's event loop: one thread, one `mio` poll, every socket
//! non-blocking, the broker called in between.
//!
//! Each iteration:
//!
//! 1. waits for readiness (no timeout unless work is pending);
//! 2. accepts every pending connection: the peer is classified
//!    ([`listen::classify`]), the broker assigns a [`ConnId`], and the
//!    connection lives in slot [`ConnId::index`] (its poll token is that
//!    index plus [`CONN_TOKEN_BASE`]). When the broker has no room
//!    (`TooManyConnections`: its capacity or the profile's connection
//!    limit), or the process has no descriptor left (a spare one is held to
//!    accept and close it), the new connection is closed with a warning. A
//!    local-only profile closes a remote peer's socket before the broker
//!    sees it, with a warning ([`listen::admits`]), and so does a remote
//!    peer over [`RemoteLimits::max_connections`]; warnings are
//!    rate-limited (at most one per second), and every refusal is counted
//!    (`refused`, `remote_refused` of [`nfy_core::msg::Guard`]). A
//!    Unix-socket peer's credentials (`SO_PEERCRED`: pid, uid, gid) are
//!    read at accept, kept for `nfy status` ([`Outbound::set_peer`]) and
//!    written in the connection's log lines;
//! 3. reads ready connections into one shared buffer and feeds the bytes to
//!    the connection's [`FrameDecoder`] (storage = `--max-frame`, or
//!    `--max-remote-frame` for a remote peer, + [`RETURN_SLACK`] + header;
//!    see there). On a remote connection each frame or skipped input first
//!    takes a token of its rate limit ([`RemoteLimits::rate`],
//!    [`RemoteLimits::burst`]); without one it is dropped and counted
//!    (`rate_limited`) and only the first drop is logged. Each frame goes to
//!    [`Broker::handle_frame`](nfy_core::broker::Broker::handle_frame), whose
//!    output lands in the [`Outbound`] queues. Skipped input (garbage, oversize,
//!    bad size) is logged at warn with the connection. A connection gets at
//!    most [`MAX_READS_PER_WAKEUP`] reads per iteration, then waits for the
//!    others (fairness);
//! 4. closes what has to go (end of stream, I/O errors, overflowed output
//!    queues) and calls [`Broker::disconnect`](nfy_core::broker::Broker::disconnect) for each;
//! 5. flushes every connection that got output: one `send` each. When not
//!    all of it left, the connection also waits for WRITABLE until its
//!    queue is empty.
//!
//! Reads stop at a short read: a stream socket returns less than asked
//! only when its receive queue is empty, and data arriving later raises a
//! new edge, so the extra read that would return `EAGAIN` is saved (unless
//! the peer's close was reported, which raises no further edge).
//!
//! At end of stream, output still queued is still sent (a client may
//! half-close and still wait for its unicast errors): the connection stops
//! reading and closes once its queue is empty, or on a send error or an
//! overflow. A frame cut short by the close is logged as a truncated
//! frame. Sockets are closed without an explicit deregistration (closing
//! an fd removes it from epoll on Linux).
//!
//! Shutdown (SIGTERM/SIGINT when enabled, or [`super::ServerHandle`]):
//! pending output gets one last send, sockets close, and the socket file is
//! removed.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};
use nfy_core::broker::{ConnId, PeerKind};
use nfy_core::msg::{self, Credentials, Encoding, Message, PeerAddr};
use nfy_core::wire::{Decoded, Frame, FrameDecoder, Skipped, HEADER_LEN};

use super::listen::{self, Listeners, SocketFile, TcpEntry};
use super::outbound::{self, CloseReason, Flushed, Outbound};
use super::{LinuxBroker, Options, Profile, RemoteLimits, ServerError, Shared};

/// Token of the [`Waker`] used by [`super::ServerHandle::shutdown`].
const WAKER: Token = Token(0);
/// Tokens of the signal pipes: `SIGNAL_BASE + i` for `SIGNALS[i]`.
const SIGNAL_BASE: usize = 1;
/// Token of the Unix-socket listener.
const UNIX_LISTENER: Token = Token(8);
/// Tokens of the TCP listeners: `TCP_LISTENER_BASE + i`.
const TCP_LISTENER_BASE: usize = 16;
/// Tokens of connections: `CONN_TOKEN_BASE + ConnId::index()`.
pub const CONN_TOKEN_BASE: usize = 1 << 16;

/// Readiness events taken per poll.
const EVENTS_CAPACITY: usize = 1024;
/// The shared read buffer.
const READ_BUFFER: usize = 64 * 1024;
/// Room above `--max-frame` for notifications that come back.
///
/// A notification grows on its way through the server: it gains a
/// `reference`, `flags` and `parameter` are written out when the sender
/// left them out, and a compact body forwarded to a JSON client gains the
/// member names and the escapes of its IDs (a few hundred bytes at worst).
/// A client that returns it unchanged (the unregister race, spec 3) must
/// not see it skipped as oversize, or it would be lost silently. So a
/// frame body up to this much over `--max-frame` is accepted when it is a
/// notify carrying a `reference` (a returned one); any other body over
/// `--max-frame` is skipped and reported like a frame the decoder skipped.
pub const RETURN_SLACK: usize = 512;

/// Reads one connection gets per iteration before the others' turn.
pub const MAX_READS_PER_WAKEUP: usize = 16;
/// Pause before accepting again after running out of file descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// At most one "connection limit reached" warning per this interval; the
/// others are counted and summarised in the next one.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The signals that stop the server.
const SIGNALS: [(i32, &str); 2] = [
    (signal_hook::consts::SIGTERM, "SIGTERM"),
    (signal_hook::consts::SIGINT, "SIGINT"),
];

/// A descriptor to hold in reserve (see `EventLoop::refuse_without_fds`);
/// `None` when even `/dev/null` cannot be opened (the server then only
/// retries accepting later, as it does for other shortages).
fn spare_fd() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// True when `frame` holds a notify with a `reference`: one the server
/// sent and a client returns (see [`RETURN_SLACK`]).
fn is_returned_notify(frame: &Frame<'_>) -> bool {
    matches!(
        msg::decode(Encoding::from_msg_id(frame.msg_id), frame.body),
        Ok(Message::Notify(n)) if n.reference.is_some()
    )
}

/// A connection's socket.
#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    fn source(&mut self) -> &mut dyn Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

/// Where a connection comes from, for logs: the Unix socket with the
/// peer's credentials (when the kernel gave them), or a TCP address.
#[derive(Debug, Clone, Copy)]
enum Peer {
    Unix(Option<Credentials>),
    Tcp(SocketAddr),
}

impl Peer {
    /// The form `nfy status` shows.
    fn addr(&self) -> PeerAddr {
        match self {
            Peer::Unix(Some(c)) => PeerAddr::Unix(*c),
            Peer::Unix(None) => PeerAddr::UnixUnknown,
            Peer::Tcp(addr) => {
                let ip = match addr.ip() {
                    std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    std::net::IpAddr::V6(v6) => v6,
                };
                PeerAddr::Tcp {
                    ip: ip.octets(),
                    port: addr.port(),
                }
            }
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Unix(Some(c)) => {
                write!(f, "unix socket, pid {} uid {} gid {}", c.pid, c.uid, c.gid)
            }
            Peer::Unix(None) => f.write_str("unix socket"),
            Peer::Tcp(addr) => write!(f, "tcp {addr}"),
        }
    }
}

/// The credentials of the process at the other end of a Unix-socket
/// connection, as the kernel recorded them at `connect` (`SO_PEERCRED`,
/// through nix: no unsafe code here). `None` when they cannot be read.
fn peer_credentials(stream: &UnixStream) -> Option<Credentials> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let cred = getsockopt(stream, PeerCredentials).ok()?;
    Some(Credentials {
        pid: u32::try_from(cred.pid()).unwrap_or(0),
        uid: cred.uid(),
        gid: cred.gid(),
    })
}

/// A token bucket: `rate` tokens a second up to `burst`; one token per
/// frame. Time comes from the caller, so it is tested without clocks.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    fn new(rate: u32, burst: u32, now: Instant) -> Bucket {
        Bucket {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: now,
        }
    }

    /// Takes one token at time `now`; false when there is none.
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One open connection.
struct Conn {
    id: ConnId,
    stream: Stream,
    decoder: FrameDecoder<Vec<u8>>,
    peer: Peer,
    /// Largest frame body accepted: `--max-frame`, or
    /// `--max-remote-frame` for a remote connection.
    max_frame: usize,
    /// The rate limit of a remote connection (`None`: none).
    bucket: Option<Bucket>,
    /// Frames and skipped inputs dropped by the rate limit.
    rate_dropped: u64,
    /// WRITABLE is part of the registration (output is waiting).
    writable_interest: bool,
    /// Bytes fed to the decoder since its last frame or skip report: a
    /// frame in progress.
    partial: usize,
    /// The peer half-closed (end of stream read) while output was still
    /// queued: no more reading; closed once the queue is empty.
    read_closed: bool,
}

/// Registered signal pipes.
struct Signals {
    ids: Vec<signal_hook::SigId>,
    pipes: Vec<UnixStream>,
}

impl Signals {
    fn install(poll: &Poll) -> io::Result<Signals> {
        let mut signals = Signals {
            ids: Vec::new(),
            pipes: Vec::new(),
        };
        for (i, (signal, _)) in SIGNALS.iter().enumerate() {
            let (rx, tx) = StdUnixStream::pair()?;
            rx.set_nonblocking(true)?;
            let mut rx = UnixStream::from_std(rx);
            poll.registry()
                .register(&mut rx, Token(SIGNAL_BASE + i), Interest::READABLE)?;
            signals
                .ids
                .push(signal_hook::low_level::pipe::register(*signal, tx)?);
            signals.pipes.push(rx);
        }
        Ok(signals)
    }

    /// Empties pipe `i`; true when it held a signal.
    fn drain(&mut self, i: usize) -> bool {
        let Some(pipe) = self.pipes.get_mut(i) else {
            return false;
        };
        let mut got = false;
        let mut buf = [0u8; 64];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => return got,
                Ok(_) => got = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return got,
            }
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// Counters of the loop, logged at shutdown (the protection counters are
/// in [`Outbound::guard_mut`], where `nfy status` finds them).
#[derive(Debug, Default)]
struct Stats {
    accepted: u64,
    frames_in: u64,
    skipped: u64,
}

/// The event loop and everything it owns.
pub(super) struct EventLoop {
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
    shared: Arc<Shared>,
    signals: Option<Signals>,
    broker: Box<LinuxBroker>,
    tcp: Vec<TcpEntry>,
    unix: mio::net::UnixListener,
    conns: Vec<Option<Conn>>,
    out: Outbound,
    rbuf: Vec<u8>,
    max_frame: usize,
    remote: RemoteLimits,
    ready_again: Vec<usize>,
    scratch: Vec<usize>,
    accept_retry_at: Option<Instant>,
    last_refusal_log: Option<Instant>,
    unlogged_refusals: u64,
    /// A descriptor held in reserve for [`Self::refuse_without_fds`].
    spare_fd: Option<std::fs::File>,
    profile: Profile,
    last_remote_refusal_log: Option<Instant>,
    unlogged_remote_refusals: u64,
    stats: Stats,
    stop: bool,
    // Last: the socket file goes once the listener is closed.
    _socket_file: SocketFile,
}

/// The poller, its waker and the signal pipes: made before anything else,
/// so a signal arriving during start-up is not lost (nor fatal: with the
/// pipes installed it is seen as soon as the loop runs).
pub(super) struct Poller {
    poll: Poll,
    waker: Arc<Waker>,
    signals: Option<Signals>,
}

fn io_err(context: &str) -> impl FnOnce(io::Error) -> ServerError {
    let context = context.to_owned();
    move |source| ServerError::Io { context, source }
}

impl Poller {
    /// Creates the poll and, when `handle_signals`, installs the
    /// SIGTERM/SIGINT pipes.
    pub(super) fn new(handle_signals: bool) -> Result<Poller, ServerError> {
        let poll = Poll::new().map_err(io_err("cannot create the poller"))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER).map_err(io_err("cannot create the waker"))?,
        );
        let signals = if handle_signals {
            Some(Signals::install(&poll).map_err(io_err("cannot install signal handlers"))?)
        } else {
            None
        };
        Ok(Poller {
            poll,
            waker,
            signals,
        })
    }
}

impl EventLoop {
    /// Registers the listeners with the poller.
    pub(super) fn new(
        opts: &Options,
        poller: Poller,
        broker: Box<LinuxBroker>,
        listeners: Listeners,
        shared: Arc<Shared>,
    ) -> Result<EventLoop, ServerError> {
        let Poller {
            poll,
            waker,
            signals,
        } = poller;
        let Listeners {
            mut tcp,
            mut unix,
            socket_file,
        } = listeners;
        poll.registry()
            .register(&mut unix, UNIX_LISTENER, Interest::READABLE)
            .map_err(io_err("cannot poll the unix listener"))?;
        for (i, entry) in tcp.iter_mut().enumerate() {
            poll.registry()
                .register(
                    &mut entry.listener,
                    Token(TCP_LISTENER_BASE + i),
                    Interest::READABLE,
                )
                .map_err(io_err("cannot poll a tcp listener"))?;
        }
        Ok(EventLoop {
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            waker,
            shared,
            signals,
            broker,
            tcp,
            unix,
            conns: Vec::new(),
            out: Outbound::new(opts.max_queue),
            rbuf: vec![0; READ_BUFFER],
            max_frame: opts.max_frame,
            remote: opts.remote,
            ready_again: Vec::new(),
            scratch: Vec::new(),
            accept_retry_at: None,
            last_refusal_log: None,
            unlogged_refusals: 0,
            spare_fd: spare_fd(),
            profile: opts.profile,
            last_remote_refusal_log: None,
            unlogged_remote_refusals: 0,
            stats: Stats::default(),
            stop: false,
            _socket_file: socket_file,
        })
    }

    /// The TCP addresses listened on.
    pub(super) fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp.iter().map(|t| t.addr).collect()
    }

    /// The waker that interrupts the poll.
    pub(super) fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Runs until stopped.
    pub(super) fn run(mut self) -> Result<(), ServerError> {
        let result = self.run_inner();
        self.shutdown();
        result
    }

    fn run_inner(&mut self) -> Result<(), ServerError> {
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        while !self.stop {
            let timeout = self.timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ServerError::Io {
                    context: "polling failed".into(),
                    source: e,
                });
            }
            for event in events.iter() {
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                self.dispatch(
                    event.token(),
                    readable,
                    event.is_writable(),
                    event.is_read_closed() || event.is_error(),
                );
            }
            self.retry_pending_work();
            self.settle();
        }
        self.events = events;
        Ok(())
    }

    fn timeout(&self) -> Option<Duration> {
        if !self.ready_again.is_empty() {
            return Some(Duration::ZERO);
        }
        self.accept_retry_at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    fn dispatch(&mut self, token: Token, readable: bool, writable: bool, closed: bool) {
        match token.0 {
            0 if self.shared.stop.load(Ordering::SeqCst) => {
                ::log::info!("shutdown requested");
                self.stop = true;
            }
            t if (SIGNAL_BASE..SIGNAL_BASE + SIGNALS.len()).contains(&t) => {
                let i = t - SIGNAL_BASE;
                if self.signals.as_mut().is_some_and(|s| s.drain(i)) {
                    let name = SIGNALS.get(i).map_or("signal", |(_, n)| *n);
                    ::log::info!("received {name}, shutting down");
                    self.stop = true;
                }
            }
            t if t == UNIX_LISTENER.0 => self.accept_unix(),
            t if (TCP_LISTENER_BASE..CONN_TOKEN_BASE).contains(&t) => {
                self.accept_tcp(t - TCP_LISTENER_BASE);
            }
            t if t >= CONN_TOKEN_BASE => {
                let idx = t - CONN_TOKEN_BASE;
                if readable {
                    self.read_conn(idx, closed);
                }
                if writable {
                    self.out.mark_dirty(idx);
                }
            }
            _ => {}
        }
    }

    /// Reads connections whose budget ran out and retries accepting after a
    /// descriptor shortage.
    fn retry_pending_work(&mut self) {
        if !self.ready_again.is_empty() {
            let mut again = std::mem::take(&mut self.ready_again);
            for &idx in &again {
                self.read_conn(idx, true);
            }
            again.clear();
            if self.ready_again.is_empty() {
                self.ready_again = again;
            }
        }
        if self.accept_retry_at.is_some_and(|at| at <= Instant::now()) {
            self.accept_retry_at = None;
            self.accept_unix();
            for i in 0..self.tcp.len() {
                self.accept_tcp(i);
            }
        }
    }

    /// Closes what must go and flushes output until nothing is left to do.
    fn settle(&mut self) {
        loop {
            self.process_closes();
            if !self.out.has_dirty() {
                break;
            }
            self.flush_dirty();
        }
    }

    fn accept_unix(&mut self) {
        loop {
            match self.unix.accept() {
                Ok((stream, _)) => {
                    let peer = Peer::Unix(peer_credentials(&stream));
                    self.admit(Stream::Unix(stream), peer, None);
                }
                Err(e) => {
                    if self.refuse_without_fds(&e, |l| {
                        l.unix
                            .accept()
                            .map(|(stream, _)| Peer::Unix(peer_credentials(&stream)))
                    }) {
                        continue;
                    }
                    if !self.accept_failed(&e, "unix socket") {
                        return;
                    }
                }
            }
        }
    }

    fn accept_tcp(&mut self, i: usize) {
        loop {
            let Some(entry) = self.tcp.get(i) else { return };
            match entry.listener.accept() {
                Ok((stream, addr)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        ::log::debug!("cannot set TCP_NODELAY for {addr}: {e}");
                    }
                    self.admit(Stream::Tcp(stream), Peer::Tcp(addr), Some(addr));
                }
                Err(e) => {
                    let what = format!("tcp {}", entry.addr);
                    let refuse = |l: &Self| match l.tcp.get(i) {
                        Some(entry) => entry.listener.accept().map(|(_, addr)| Peer::Tcp(addr)),
                        None => Err(io::ErrorKind::NotFound.into()),
                    };
                    if self.refuse_without_fds(&e, refuse) {
                        continue;
                    }
                    if !self.accept_failed(&e, &what) {
                        return;
                    }
                }
            }
        }
    }

    /// Out of descriptors (`EMFILE`/`ENFILE`, e.g. a soft `ulimit -n` of
    /// 1024, below [`super::MAX_CONNECTIONS`] plus the server's own): gives
    /// up the spare descriptor for a moment to accept the waiting
    /// connection with `accept` and close it at once. The client sees a
    /// refusal, as at the connection limit, instead of hanging unserved in
    /// the backlog; the warning is rate-limited the same way. True when a
    /// connection was refused (accepting goes on); false for other errors,
    /// or without a spare (then [`Self::accept_failed`] retries later).
    fn refuse_without_fds(
        &mut self,
        e: &io::Error,
        accept: impl FnOnce(&Self) -> io::Result<Peer>,
    ) -> bool {
        use nix::errno::Errno;
        let out_of_fds = [Errno::EMFILE, Errno::ENFILE]
            .iter()
            .any(|errno| e.raw_os_error() == Some(*errno as i32));
        if !out_of_fds || self.spare_fd.take().is_none() {
            return false;
        }
        // The accepted socket is closed when the result is dropped.
        let refused = accept(self);
        self.spare_fd = spare_fd();
        match refused {
            Ok(peer) => {
                let remote = match peer {
                    Peer::Tcp(addr) => listen::classify(Some(addr)) == PeerKind::Remote,
                    Peer::Unix(_) => false,
                };
                self.count_refused(remote);
                self.log_refusal(peer, "out of file descriptors");
                true
            }
            Err(_) => false,
        }
    }

    /// Handles an accept error; true when accepting should go on.
    fn accept_failed(&mut self, e: &io::Error, listener: &str) -> bool {
        use nix::errno::Errno;
        match e.kind() {
            io::ErrorKind::WouldBlock => false,
            io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset => true,
            _ => {
                let exhausted = [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM]
                    .iter()
                    .any(|errno| e.raw_os_error() == Some(*errno as i32));
                if exhausted {
                    ::log::warn!(
                        "cannot accept on {listener}: {e}; retrying in {} ms",
                        ACCEPT_RETRY.as_millis()
                    );
                } else {
                    ::log::error!("cannot accept on {listener}: {e}");
                }
                self.accept_retry_at = Some(Instant::now() + ACCEPT_RETRY);
                false
            }
        }
    }

    /// Counts a refused connection (`remote`: refused as a remote one).
    fn count_refused(&mut self, remote: bool) {
        let guard = self.out.guard_mut();
        guard.refused += 1;
        if remote {
            guard.remote_refused += 1;
        }
    }

    fn admit(&mut self, mut stream: Stream, peer: Peer, addr: Option<SocketAddr>) {
        let kind = listen::classify(addr);
        if !listen::admits(&self.profile, kind) {
            self.count_refused(true);
            self.log_remote_refusal(peer);
            return;
        }
        if kind == PeerKind::Remote
            && usize::try_from(self.broker.status().remote_connections)
                .is_ok_and(|open| open >= self.remote.max_connections)
        {
            self.count_refused(true);
            self.log_refusal(peer, "remote connection limit reached (--max-remote)");
            return;
        }
        let id = match self.broker.connect(kind) {
            Ok(id) => id,
            Err(_) => {
                self.count_refused(kind == PeerKind::Remote);
                self.log_refusal(peer, "connection limit reached");
                return;
            }
        };
        let idx = id.index();
        if self.conns.len() <= idx {
            self.conns.resize_with(idx + 1, || None);
        }
        if self.conns.get(idx).is_some_and(Option::is_some) {
            ::log::error!("{id}: the broker reused a slot still in use; closing {peer}");
            self.broker.disconnect(id, &mut self.out);
            return;
        }
        let token = Token(CONN_TOKEN_BASE + idx);
        if let Err(e) = self
            .poll
            .registry()
            .register(stream.source(), token, Interest::READABLE)
        {
            ::log::warn!("{id}: cannot poll the connection from {peer}: {e}; closing it");
            self.broker.disconnect(id, &mut self.out);
            return;
        }
        self.out.open(id);
        self.out.set_peer(id, peer.addr());
        let (max_frame, bucket) = match kind {
            PeerKind::Local => (self.max_frame, None),
            PeerKind::Remote => (
                self.remote.max_frame.min(self.max_frame),
                (self.remote.rate > 0)
                    .then(|| Bucket::new(self.remote.rate, self.remote.burst, Instant::now())),
            ),
        };
        self.out.set_frame_limit(id, max_frame);
        let decoder_size = max_frame
            .saturating_add(RETURN_SLACK)
            .saturating_add(HEADER_LEN);
        let conn = Conn {
            id,
            stream,
            decoder: FrameDecoder::new(vec![0; decoder_size]),
            peer,
            max_frame,
            bucket,
            rate_dropped: 0,
            writable_interest: false,
            partial: 0,
            read_closed: false,
        };
        if let Some(slot) = self.conns.get_mut(idx) {
            *slot = Some(conn);
        }
        self.stats.accepted += 1;
        match kind {
            PeerKind::Local => ::log::debug!("{id}: connected ({peer}, local)"),
            PeerKind::Remote => ::log::info!("{id}: connected ({peer}, remote)"),
        }
    }

    /// Warns about a refused connection, at most once per
    /// [`REFUSAL_LOG_INTERVAL`] (a flood of connections must not flood the
    /// log).
    fn log_refusal(&mut self, peer: Peer, why: &str) {
        let now = Instant::now();
        if self
            .last_refusal_log
            .is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_INTERVAL)
        {
            self.unlogged_refusals += 1;
            return;
        }
        self.last_refusal_log = Some(now);
        let earlier = std::mem::take(&mut self.unlogged_refusals);
        if earlier > 0 {
            ::log::warn!(
                "{why}: closing the new connection from {peer} ({earlier} more refused since \
                 the last warning)"
            );
        } else {
            ::log::warn!("{why}: closing the new connection from {peer}");
        }
    }

    /// Warns about a remote peer refused by a local-only profile, at most
    /// once per [`REFUSAL_LOG_INTERVAL`].
    fn log_remote_refusal(&mut self, peer: Peer) {
        let now = Instant::now();
        if self
            .last_remote_refusal_log
            .is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_INTERVAL)
        {
            self.unlogged_remote_refusals += 1;
            return;
        }
        self.last_remote_refusal_log = Some(now);
        let earlier = std::mem::take(&mut self.unlogged_remote_refusals);
        let more = if earlier > 0 {
            format!(" ({earlier} more refused since the last warning)")
        } else {
            String::new()
        };
        ::log::warn!(
            "refusing the remote connection from {peer}: the {} profile accepts local \
             connections only{more}",
            self.profile.name
        );
    }

    /// Reads connection `idx` until it has nothing more, its budget is used
    /// up, or it ends. `closed` says the poller saw the peer's close.
    fn read_conn(&mut self, idx: usize, closed: bool) {
        for _ in 0..MAX_READS_PER_WAKEUP {
            if self.out.is_closing(idx) {
                return;
            }
            let Some(Some(conn)) = self.conns.get_mut(idx) else {
                return;
            };
            if conn.read_closed {
                return;
            }
            match conn.stream.read(&mut self.rbuf) {
                Ok(0) => {
                    if conn.partial > 0 {
                        ::log::info!(
                            "{} ({}): truncated frame: the connection closed {} bytes into a frame",
                            conn.id,
                            conn.peer,
                            conn.partial
                        );
                    }
                    if self.out.pending_len(idx) > 0 {
                        // Perhaps only half-closed: what is queued (unicast
                        // errors, say) still goes out; the connection closes
                        // once its queue is empty (flush_dirty), or earlier
                        // on a send error or an overflow.
                        ::log::debug!(
                            "{} ({}): end of stream with output queued; closing once it is sent",
                            conn.id,
                            conn.peer
                        );
                        conn.read_closed = true;
                        self.out.mark_dirty(idx);
                    } else {
                        self.out.close(conn.id, CloseReason::Eof);
                    }
                    return;
                }
                Ok(n) => {
                    let short = n < self.rbuf.len();
                    self.feed(idx, n);
                    if short && !closed {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    ::log::debug!("{} ({}): read failed: {e}", conn.id, conn.peer);
                    self.out.close(conn.id, CloseReason::ReadError(e.kind()));
                    return;
                }
            }
        }
        // Budget used up: come back after the others had their turn.
        self.ready_again.push(idx);
    }

    /// Feeds the first `n` bytes of the read buffer to connection `idx`.
    ///
    /// On a remote connection every frame and every skipped input takes a
    /// token of its rate limit first; without one it is dropped: counted
    /// (`rate_limited`, and `oversize` for an oversize frame), never given
    /// to the broker, and logged once per connection (a summary when it
    /// closes), so a flood costs neither routing nor log lines.
    fn feed(&mut self, idx: usize, n: usize) {
        let mut pos = 0;
        let now = match self.conns.get(idx) {
            Some(Some(conn)) if conn.bucket.is_some() => Some(Instant::now()),
            _ => None,
        };
        while pos < n {
            let Some(Some(conn)) = self.conns.get_mut(idx) else {
                return;
            };
            let id = conn.id;
            let input = self.rbuf.get(pos..n).unwrap_or(&[]);
            let (used, decoded) = conn.decoder.feed(input);
            let used = used.min(input.len());
            pos += used;
            match decoded {
                None => {
                    conn.partial += used;
                    if used == 0 {
                        ::log::error!("{id}: the frame decoder stopped consuming input; closing");
                        self.out
                            .close(id, CloseReason::ReadError(io::ErrorKind::InvalidData));
                        return;
                    }
                }
                Some(decoded) => {
                    conn.partial = 0;
                    let allowed = match (&mut conn.bucket, now) {
                        (Some(bucket), Some(now)) => bucket.take(now),
                        _ => true,
                    };
                    if !allowed {
                        conn.rate_dropped += 1;
                        let guard = self.out.guard_mut();
                        guard.rate_limited += 1;
                        if matches!(decoded, Decoded::Skipped(Skipped::Oversize { .. })) {
                            guard.oversize += 1;
                        }
                        if conn.rate_dropped == 1 {
                            ::log::warn!(
                                "{id} ({}): sends faster than {} frames/s (burst {}): dropping \
                                 its frames until it slows down",
                                conn.peer,
                                self.remote.rate,
                                self.remote.burst
                            );
                        }
                    } else {
                        match decoded {
                            Decoded::Frame(frame) => {
                                self.stats.frames_in += 1;
                                if frame.body.len() > conn.max_frame && !is_returned_notify(&frame)
                                {
                                    self.stats.skipped += 1;
                                    self.out.guard_mut().oversize += 1;
                                    let body_len =
                                        u32::try_from(frame.body.len()).unwrap_or(u32::MAX);
                                    ::log::warn!(
                                        "{id} ({}): {}",
                                        conn.peer,
                                        Skipped::Oversize { body_len }
                                    );
                                } else {
                                    self.broker.handle_frame(id, frame, &mut self.out);
                                }
                            }
                            Decoded::Skipped(skipped) => {
                                self.stats.skipped += 1;
                                if matches!(skipped, Skipped::Oversize { .. }) {
                                    self.out.guard_mut().oversize += 1;
                                }
                                ::log::warn!("{id} ({}): {skipped}", conn.peer);
                            }
                        }
                    }
                }
            }
            if self.out.has_closes() {
                self.process_closes();
            }
        }
    }

    /// Reads what connection `idx` sent before it ended and handles it,
    /// when it acknowledges unicasts: its last acks must be seen before
    /// what it has not acknowledged goes back to the broker (a send to a
    /// killed client fails before its hang-up is read, while its last
    /// acks still wait in the socket). At most [`MAX_READS_PER_WAKEUP`]
    /// reads.
    fn drain_acks(&mut self, idx: usize, id: ConnId) {
        if !self.out.acks(id) || self.out.unacked_len(id) == 0 {
            return;
        }
        for _ in 0..MAX_READS_PER_WAKEUP {
            let Some(Some(conn)) = self.conns.get_mut(idx) else {
                return;
            };
            if conn.id != id || conn.read_closed {
                return;
            }
            match conn.stream.read(&mut self.rbuf) {
                Ok(0) => return,
                Ok(n) => self.feed(idx, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Closes every connection scheduled for closing and tells the broker.
    fn process_closes(&mut self) {
        while let Some((id, reason)) = self.out.next_close() {
            let idx = id.index();
            self.drain_acks(idx, id);
            let conn = match self.conns.get_mut(idx) {
                Some(slot) if slot.as_ref().is_some_and(|c| c.id == id) => slot.take(),
                _ => None,
            };
            let Some(conn) = conn else {
                continue;
            };
            if reason == CloseReason::Eof && self.out.pending_len(idx) > 0 {
                // The peer may only have half-closed: one last send.
                if let Err(e) = self.out.flush(idx, conn.stream.fd(), true) {
                    ::log::debug!("{id}: final send failed: {e}");
                }
            }
            let pending = self.out.pending_len(idx);
            match reason {
                CloseReason::Eof => ::log::debug!("{id} ({}): closed by the peer", conn.peer),
                CloseReason::ReadError(kind) | CloseReason::WriteError(kind) => {
                    ::log::debug!("{id} ({}): closed after an I/O error ({kind:?})", conn.peer);
                }
                CloseReason::Overflow => ::log::info!(
                    "{id} ({}): disconnected; its {pending} unsent bytes go back to the broker \
                     (unicasts to another receiver or to their senders as unicast errors)",
                    conn.peer
                ),
                CloseReason::Poll(kind) => {
                    ::log::warn!("{id} ({}): closed, cannot poll it ({kind:?})", conn.peer);
                }
            }
            if conn.rate_dropped > 0 {
                ::log::info!(
                    "{id} ({}): {} frame(s) dropped by the rate limit",
                    conn.peer,
                    conn.rate_dropped
                );
            }
            drop(conn);
            // What it never received (never acknowledged, when it
            // acknowledges unicasts) goes back to the broker: unicasts are
            // routed again or returned to their senders as unicast errors.
            let unacked = self.out.unacked_len(id);
            if unacked > 0 {
                ::log::debug!("{id}: {unacked} unacknowledged unicasts go back to the broker");
            }
            let unsent = self.out.take_unsent(id);
            for frame in outbound::split_frames(&unsent) {
                self.broker.return_undelivered(id, frame, &mut self.out);
            }
            self.broker.disconnect(id, &mut self.out);
            self.out.release(id);
            self.ready_again.retain(|&i| i != idx);
        }
    }

    /// One send per connection with output.
    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.scratch);
        self.out.take_dirty(&mut dirty);
        for &idx in &dirty {
            let Some(Some(conn)) = self.conns.get_mut(idx) else {
                continue;
            };
            let result = self.out.flush(idx, conn.stream.fd(), false);
            let want_writable = match result {
                Ok(Flushed::All) if conn.read_closed => {
                    self.out.close(conn.id, CloseReason::Eof);
                    continue;
                }
                Ok(Flushed::All) => false,
                Ok(Flushed::Partial) => true,
                Err(e) => {
                    ::log::debug!("{} ({}): send failed: {e}", conn.id, conn.peer);
                    self.out.close(conn.id, CloseReason::WriteError(e.kind()));
                    continue;
                }
            };
            if want_writable != conn.writable_interest {
                let interest = if want_writable {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                let token = Token(CONN_TOKEN_BASE + idx);
                match self
                    .poll
                    .registry()
                    .reregister(conn.stream.source(), token, interest)
                {
                    Ok(()) => conn.writable_interest = want_writable,
                    Err(e) => self.out.close(conn.id, CloseReason::Poll(e.kind())),
                }
            }
        }
        dirty.clear();
        self.scratch = dirty;
    }

    /// Last sends, then everything closes (the socket file goes on drop).
    fn shutdown(&mut self) {
        for idx in 0..self.conns.len() {
            if let Some(Some(conn)) = self.conns.get(idx) {
                if self.out.pending_len(idx) > 0 {
                    let _ = self.out.flush(idx, conn.stream.fd(), false);
                }
            }
        }
        let open = self.conns.iter().filter(|c| c.is_some()).count();
        self.conns.clear();
        let status = self.broker.status();
        let out = self.out.stats();
        let guard = self.out.guard_mut();
        let guard = *guard;
        ::log::info!(
            "stopped: {open} connection(s) closed; {} accepted, {} refused ({} remote), {} frames \
             in, {} frames out, {} skipped inputs ({} oversize), {} rate-limited, {} bad \
             messages, {} delivered, {} dropped, {} unicast errors, {} overflow disconnects",
            self.stats.accepted,
            guard.refused,
            guard.remote_refused,
            self.stats.frames_in,
            out.frames,
            self.stats.skipped,
            guard.oversize,
            guard.rate_limited,
            out.bad_messages,
            status.delivered,
            status.dropped,
            status.unicast_errors,
            out.overflows
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10, 20, t0);
        // The burst at once, then nothing at the same instant.
        assert_eq!((0..1000).filter(|_| b.take(t0)).count(), 20);
        // 10 a second: one every 100 ms, never more than the burst.
        assert!(!b.take(t0 + Duration::from_millis(50)));
        assert!(b.take(t0 + Duration::from_millis(100)));
        assert!(!b.take(t0 + Duration::from_millis(100)));
        let later = t0 + Duration::from_secs(3600);
        assert_eq!((0..1000).filter(|_| b.take(later)).count(), 20);
        // Time going backwards takes nothing back and gives nothing.
        assert!(!b.take(t0));
        // A burst of 0 acts as 1.
        let mut one = Bucket::new(1, 0, t0);
        assert!(one.take(t0));
        assert!(!one.take(t0));
    }

    #[test]
    fn peers_are_reported_as_nfy_status_shows_them() {
        let c = Credentials {
            pid: 1,
            uid: 2,
            gid: 3,
        };
        assert_eq!(Peer::Unix(Some(c)).addr(), PeerAddr::Unix(c));
        assert_eq!(Peer::Unix(None).addr(), PeerAddr::UnixUnknown);
        assert_eq!(
            Peer::Unix(Some(c)).to_string(),
            "unix socket, pid 1 uid 2 gid 3"
        );
        let PeerAddr::Tcp { ip, port } = Peer::Tcp("10.233.0.2:7".parse().unwrap()).addr() else {
            panic!()
        };
        assert_eq!(
            (std::net::Ipv6Addr::from(ip).to_ipv4_mapped(), port),
            (Some(std::net::Ipv4Addr::new(10, 233, 0, 2)), 7)
        );
    }

    #[test]
    fn peer_credentials_are_this_process() {
        let (a, _b) = StdUnixStream::pair().unwrap();
        let c = peer_credentials(&UnixStream::from_std(a)).unwrap();
        assert_eq!(c.pid, std::process::id());
        assert_eq!(c.uid, nix::unistd::geteuid().as_raw());
        assert_eq!(c.gid, nix::unistd::getegid().as_raw());
    }
}
