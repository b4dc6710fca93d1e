//! The server's event loop: one thread, one `mio` poll, every socket
//! non-blocking, the broker called in between.
//!
//! Each iteration:
//!
//! 1. waits for readiness, at most until the broker's timer
//!    ([`Broker::poll_timeout`](nfy_core::broker::Broker::poll_timeout),
//!    set only while flow control holds someone back) or an accept retry;
//!    without either and with nothing pending it waits indefinitely;
//! 2. accepts every pending connection (see `accept`): the broker admits
//!    it or says why not;
//! 3. reads ready connections into the broker (see `read`): their
//!    decoders' output goes to
//!    [`Broker::handle_input`](nfy_core::broker::Broker::handle_input),
//!    whose output lands in the [`Outbound`] queues; a connection the
//!    broker pauses keeps what it read and is read no further (but for its
//!    acknowledgements) until the broker resumes it;
//! 4. gives the broker the time when its timer is due
//!    ([`Broker::handle_timeout`](nfy_core::broker::Broker::handle_timeout):
//!    stalled readers);
//! 5. settles: closes what has to go (end of stream, I/O errors,
//!    overflowed or stalled connections), reads the connections the broker
//!    resumed, and flushes every connection that got output — one `send`
//!    each, reported to the broker ([`Broker::sent`](nfy_core::broker::Broker::sent))
//!    — until nothing is left to do. A connection with output left waits
//!    for WRITABLE until its queue is empty.
//!
//! At end of stream, output still queued is still sent (a client may
//! half-close and still wait for its unicast errors): the connection stops
//! reading and closes once its queue is empty, or on a send error or an
//! overflow. Sockets are closed without an explicit deregistration
//! (closing an fd removes it from epoll on Linux).
//!
//! Shutdown (SIGTERM/SIGINT when enabled, or [`super::ServerHandle`]):
//! see `shutdown`. SIGHUP (when enabled) reloads the configuration: see
//! `reload`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Waker};
use nfy_core::broker::ConnId;
use nfy_core::time::Timestamp;
use nfy_core::wire;

use super::accept::RefusalLog;
use super::config::ConfigSource;
use super::conn::{Conn, Socket};
use super::handshake::Handshakes;
use super::listen::{Listeners, SocketFile, TcpEntry};
use super::outbox::{CloseReason, FlushWhile, Outbound};
use super::poll::{
    conn_token, ServerPoll, Source, TCP_LISTENER_BASE, TLS_LISTENER_BASE, UNIX_LISTENER,
};
use super::reload::RemoteAddrs;
use super::shutdown::Stats;
use super::signals::{SignalAction, Signals};
use super::systemd::Systemd;
use super::tls::ServerTls;
use super::{LinuxBroker, Options, Profile, ServerError, Shared};

/// Readiness events taken per poll.
const EVENTS_CAPACITY: usize = 1024;
/// The shared read buffer: one `read` takes this much at most.
pub(super) const READ_BUFFER: usize = 64 * 1024;

/// The event loop and everything it owns.
pub(super) struct EventLoop {
    pub(super) poll: Poll,
    events: Events,
    waker: Arc<Waker>,
    shared: Arc<Shared>,
    signals: Option<Signals>,
    pub(super) broker: Box<LinuxBroker>,
    pub(super) tcp: Vec<TcpEntry>,
    /// The TLS listeners (none without `--tls-cert`).
    pub(super) tls_listeners: Vec<TcpEntry>,
    /// The TLS handshakes in progress (`None` without TLS).
    pub(super) handshakes: Option<Handshakes>,
    pub(super) unix: mio::net::UnixListener,
    pub(super) conns: Vec<Option<Conn>>,
    pub(super) out: Outbound,
    pub(super) rbuf: Vec<u8>,
    /// Connections whose read budget ran out (or that were resumed): read
    /// again before waiting.
    pub(super) ready_again: Vec<usize>,
    scratch: Vec<usize>,
    resumed: Vec<ConnId>,
    pub(super) accept_retry_at: Option<Instant>,
    pub(super) refusals: RefusalLog,
    pub(super) remote_refusals: RefusalLog,
    /// A descriptor held in reserve for `refuse_without_fds`.
    pub(super) spare_fd: Option<std::fs::File>,
    pub(super) profile: Profile,
    /// Where the configuration comes from (read again on SIGHUP).
    pub(super) config: ConfigSource,
    /// The configuration file in force (`None`: none).
    pub(super) config_path: Option<std::path::PathBuf>,
    /// Where remote peers may connect (see `reload`).
    pub(super) remote_addrs: RemoteAddrs,
    pub(super) systemd: Systemd,
    pub(super) stats: Stats,
    /// The origin of the broker's timestamps.
    epoch: Instant,
    /// The time of this iteration (read once, when the poll returned):
    /// what the broker is given for the input of the iteration.
    pub(super) iteration_time: Timestamp,
    stop: bool,
    // Last: the socket file goes once the listener is closed.
    _socket_file: SocketFile,
}

fn io_err(context: &str) -> impl FnOnce(std::io::Error) -> ServerError {
    let context = context.to_owned();
    move |source| ServerError::Io { context, source }
}

impl EventLoop {
    /// Registers the listeners with the poller.
    pub(super) fn new(
        opts: &Options,
        poll: ServerPoll,
        broker: Box<LinuxBroker>,
        listeners: Listeners,
        tls: Option<ServerTls>,
        shared: Arc<Shared>,
    ) -> Result<EventLoop, ServerError> {
        let ServerPoll {
            poll,
            waker,
            signals,
        } = poll;
        let Listeners {
            mut tcp,
            tls: mut tls_listeners,
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
                    mio::Token(TCP_LISTENER_BASE + i),
                    Interest::READABLE,
                )
                .map_err(io_err("cannot poll a tcp listener"))?;
        }
        for (i, entry) in tls_listeners.iter_mut().enumerate() {
            poll.registry()
                .register(
                    &mut entry.listener,
                    mio::Token(TLS_LISTENER_BASE + i),
                    Interest::READABLE,
                )
                .map_err(io_err("cannot poll a tls listener"))?;
        }
        let mut out = Outbound::new(opts.max_queue, broker.limits().remote);
        if tls.is_some() {
            out.enable_tls_counters();
        }
        // Remote peers may reach the TLS listeners too.
        let remote_addrs = RemoteAddrs::bound(tcp.iter().chain(&tls_listeners));
        Ok(EventLoop {
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            waker,
            shared,
            signals,
            out,
            broker,
            tcp,
            tls_listeners,
            handshakes: tls.map(Handshakes::new),
            unix,
            conns: Vec::new(),
            rbuf: vec![0; READ_BUFFER],
            ready_again: Vec::new(),
            scratch: Vec::new(),
            resumed: Vec::new(),
            accept_retry_at: None,
            refusals: RefusalLog::default(),
            remote_refusals: RefusalLog::default(),
            spare_fd: super::accept::spare_fd(),
            profile: opts.profile,
            config: opts.config.clone(),
            config_path: None,
            remote_addrs,
            systemd: Systemd::new(opts.handle_signals),
            stats: Stats::default(),
            epoch: Instant::now(),
            iteration_time: Timestamp::ZERO,
            stop: false,
            _socket_file: socket_file,
        })
    }

    /// The TCP addresses listened on.
    pub(super) fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp.iter().map(|t| t.addr).collect()
    }

    /// The TLS addresses listened on.
    pub(super) fn tls_addrs(&self) -> Vec<SocketAddr> {
        self.tls_listeners.iter().map(|t| t.addr).collect()
    }

    /// The waker that interrupts the poll.
    pub(super) fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Now, as the broker counts time.
    pub(super) fn now(&self) -> Timestamp {
        Timestamp::from_duration(self.epoch.elapsed())
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
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ServerError::Io {
                    context: "polling failed".into(),
                    source: e,
                });
            }
            self.iteration_time = self.now();
            for event in events.iter() {
                let closed = event.is_read_closed() || event.is_error();
                self.dispatch(
                    Source::of(event.token()),
                    event.is_readable() || closed,
                    event.is_writable(),
                    closed,
                );
            }
            self.retry_pending_work();
            self.handle_timer();
            self.settle();
        }
        self.events = events;
        Ok(())
    }

    /// How long the next poll may wait.
    fn timeout(&self) -> Option<Duration> {
        if !self.ready_again.is_empty() {
            return Some(Duration::ZERO);
        }
        let accept = self
            .accept_retry_at
            .map(|at| at.saturating_duration_since(Instant::now()));
        let broker = self
            .broker
            .poll_timeout()
            .map(|at| at.saturating_duration_since(self.now()));
        let handshake = self
            .handshakes
            .as_ref()
            .and_then(Handshakes::next_deadline)
            .map(|at| at.saturating_duration_since(Instant::now()));
        [accept, broker, handshake].into_iter().flatten().min()
    }

    fn dispatch(&mut self, source: Source, readable: bool, writable: bool, closed: bool) {
        match source {
            Source::Waker if self.shared.stop.load(Ordering::SeqCst) => {
                ::log::info!("shutdown requested");
                self.stop = true;
            }
            Source::Signal(i) => match self.signals.as_mut().and_then(|s| s.drain(i)) {
                Some((name, SignalAction::Stop)) => {
                    ::log::info!("received {name}, shutting down");
                    self.stop = true;
                }
                Some((name, SignalAction::Reload)) => self.reload(name),
                None => {}
            },
            Source::UnixListener => self.accept_unix(),
            Source::TcpListener(i) => self.accept_tcp(i),
            Source::TlsListener(i) => self.accept_tls(i),
            Source::Handshake(slot) => self.handshake_ready(slot),
            Source::Conn(idx) => {
                if readable {
                    self.read_conn(idx, closed);
                }
                if writable {
                    self.out.mark_dirty(idx);
                }
            }
            Source::Waker | Source::Unknown => {}
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
            for i in 0..self.tls_listeners.len() {
                self.accept_tls(i);
            }
        }
    }

    /// Gives the broker the time when its timer is due (stall judgement),
    /// and cuts the TLS handshakes past their deadline.
    fn handle_timer(&mut self) {
        let now = self.iteration_time;
        if self.broker.poll_timeout().is_some_and(|at| at <= now) {
            self.broker.handle_timeout(now, &mut self.out);
        }
        let deadline = self.handshakes.as_ref().and_then(Handshakes::next_deadline);
        let wall = Instant::now();
        if deadline.is_some_and(|at| at <= wall) {
            self.expire_handshakes(wall);
        }
    }

    /// Closes what must go, reads what was resumed and flushes output
    /// until nothing is left to do.
    fn settle(&mut self) {
        loop {
            self.process_closes();
            let mut resumed = std::mem::take(&mut self.resumed);
            self.out.take_resumed(&mut resumed);
            let any_resumed = !resumed.is_empty();
            for id in resumed.drain(..) {
                if self
                    .conns
                    .get(id.index())
                    .is_some_and(|c| c.as_ref().is_some_and(|c| c.id == id))
                {
                    self.read_conn(id.index(), true);
                }
            }
            self.resumed = resumed;
            if !self.out.has_dirty() && !self.out.has_closes() && !any_resumed {
                break;
            }
            self.flush_dirty();
        }
    }

    /// Closes every connection scheduled for closing and tells the broker:
    /// its last input is handled (without flow control, as it cannot wait
    /// any more), what it was not sent goes back to the broker, and the
    /// broker forgets it.
    pub(super) fn process_closes(&mut self) {
        while let Some((id, reason)) = self.out.next_close() {
            let idx = id.index();
            self.broker.close(id);
            self.drain_input(idx, id);
            let conn = match self.conns.get_mut(idx) {
                Some(slot) if slot.as_ref().is_some_and(|c| c.id == id) => slot.take(),
                _ => None,
            };
            let Some(mut conn) = conn else {
                continue;
            };
            if reason == CloseReason::Eof && self.out.pending_len(idx) > 0 {
                // The peer may only have half-closed: one last send.
                if let Err(e) = self
                    .out
                    .flush_socket(idx, &mut conn.socket, FlushWhile::Closing)
                {
                    ::log::debug!("{id}: final send failed: {e}");
                }
            }
            if let Socket::Tls(tls) = &mut conn.socket {
                tls.close_notify();
            }
            let pending = self.out.pending_len(idx);
            match reason {
                CloseReason::Eof => ::log::debug!("{id} ({}): closed by the peer", conn.peer),
                CloseReason::ReadError(kind) | CloseReason::WriteError(kind) => {
                    ::log::debug!("{id} ({}): closed after an I/O error ({kind:?})", conn.peer);
                }
                CloseReason::Overflow | CloseReason::Stalled { .. } | CloseReason::Revoked => {
                    ::log::info!(
                        "{id} ({}): disconnected; its {pending} unsent bytes go back to the \
                         broker (unicasts to another receiver or to their senders as unicast \
                         errors)",
                        conn.peer
                    );
                }
                CloseReason::Poll(kind) => {
                    ::log::warn!("{id} ({}): closed, cannot poll it ({kind:?})", conn.peer);
                }
            }
            let rate_dropped = self.broker.connection(id).map_or(0, |c| c.rate_dropped);
            if rate_dropped > 0 {
                ::log::info!(
                    "{id} ({}): {rate_dropped} frame(s) dropped by the rate limit",
                    conn.peer
                );
            }
            drop(conn);
            let unacked = self.broker.unacknowledged(id);
            if unacked > 0 {
                ::log::debug!("{id}: {unacked} unacknowledged unicasts go back to the broker");
            }
            let unsent = self.out.take_unsent(id);
            for frame in wire::frames(&unsent) {
                self.broker
                    .return_undelivered(id, frame.frame(), &mut self.out);
            }
            self.broker.disconnect(id, &mut self.out);
            self.out.release(id);
            self.ready_again.retain(|&i| i != idx);
        }
    }

    /// One send per connection with output, each reported to the broker.
    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.scratch);
        self.out.take_dirty(&mut dirty);
        for &idx in &dirty {
            let Some(Some(conn)) = self.conns.get_mut(idx) else {
                continue;
            };
            let id = conn.id;
            let sent = match self
                .out
                .flush_socket(idx, &mut conn.socket, FlushWhile::Open)
            {
                Ok(sent) => sent,
                Err(e) => {
                    ::log::debug!("{id} ({}): send failed: {e}", conn.peer);
                    self.out.close(id, CloseReason::WriteError(e.kind()));
                    continue;
                }
            };
            if sent.drained && conn.read_closed && conn.held.is_empty() {
                self.out.close(id, CloseReason::Eof);
                continue;
            }
            let want_writable = !sent.drained;
            if want_writable != conn.writable_interest {
                let interest = if want_writable {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                match self.poll.registry().reregister(
                    conn.socket.source(),
                    conn_token(idx),
                    interest,
                ) {
                    Ok(()) => conn.writable_interest = want_writable,
                    Err(e) => self.out.close(id, CloseReason::Poll(e.kind())),
                }
            }
            self.broker.sent(id, sent.bytes, &mut self.out);
        }
        dirty.clear();
        self.scratch = dirty;
    }
}
