//! The link thread: the connection's life.
//!
//! It connects (`Inner::attempt`: the socket, the handshake, the
//! server's answer), reconnects with exponential backoff ([`MIN_BACKOFF`]
//! doubling to [`MAX_BACKOFF`]) after the connection ends, tells the
//! connection-change handlers, reads while every pool worker is busy in a
//! callback ("assist"), and writes what threads that must not block left
//! queued ("flush").
//!
//! # The handshake
//!
//! Each connection starts with `hello`, a `StatusRequest`, the
//! unicast-error preference, a `register` per registration and
//! `observe(true)` when observing, written before the connection is
//! installed, under the `state` lock, so the server sees exactly the
//! local table whatever races with the reconnect. The server answers the
//! `hello` with a `Welcome` naming the largest frame it accepts (an
//! older server does not), then the status request: the attempt reads
//! those answers (exactly these frames, nothing that follows), so the
//! limit is known before any notification is sent, and a server that
//! sends no `Welcome` is recognised without waiting for one
//! ([`DEFAULT_MAX_FRAME`] applies then). Where the server may see this
//! client as remote (a TLS address, TCP to another host), which may not
//! ask for status, the handshake has no `StatusRequest` and ends at the
//! `Welcome` (`handshake_end`).

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nfy_core::msg::{self, Encoding, Message};
use nfy_core::wire::{HeaderView, HEADER_LEN};

use super::super::addr::ServerAddr;
use super::super::event::Event;
use super::super::pool::{lock, Refused};
use super::super::state::HandshakeEnd;
use super::super::{ConnectionEvent, Error};
use super::output::{encode_into, Flushed, WriteHalf};
use super::reader::ReadSide;
use super::socket::Socket;
use super::Inner;

/// First delay before reconnecting after a drop.
pub const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// Longest delay between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a call made while disconnected waits for the immediate
/// reconnection attempt it triggers.
pub const ATTEMPT_WAIT: Duration = Duration::from_millis(100);
/// How long a connection attempt waits for the server to take the
/// handshake and answer it.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest frame body assumed for a server that does not say (an
/// older one): `notifysvc`'s default `--max-frame`.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// How long the link thread waits before writing what was left queued,
/// at first; doubled, up to [`MAX_FLUSH_RETRY`], while the server takes
/// only part of it (it is slowing this client down).
const FLUSH_RETRY: Duration = Duration::from_millis(1);
const MAX_FLUSH_RETRY: Duration = Duration::from_millis(50);

/// How long a status waiter or the assisting link thread waits for input
/// in one go while holding the `read` lock.
pub(super) const HELP_POLL: Duration = Duration::from_millis(10);

/// Frames of the handshake's answer read at most (a `Welcome`, the
/// status; room for messages a later server may add before them).
const ANSWER_FRAMES: usize = 8;
/// Largest frame body of the handshake's answer.
const ANSWER_MAX: usize = 4096;

/// A value and the condition variable that signals its changes.
pub(super) struct Signal<T> {
    value: Mutex<T>,
    changed: Condvar,
}

impl<T> Signal<T> {
    pub(super) fn new(value: T) -> Self {
        Signal {
            value: Mutex::new(value),
            changed: Condvar::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, T> {
        lock(&self.value)
    }

    /// Wakes every thread waiting for a change.
    pub(super) fn notify(&self) {
        self.changed.notify_all();
    }

    /// Waits for a change, at most until `until` (`None`: no limit).
    fn wait<'a>(&self, g: MutexGuard<'a, T>, until: Option<Instant>) -> MutexGuard<'a, T> {
        match until {
            None => self.changed.wait(g).unwrap_or_else(|p| p.into_inner()),
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                self.changed
                    .wait_timeout(g, left)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0)
            }
        }
    }
}

/// What is asked of the link thread.
pub(super) struct Link {
    /// A caller asked for an immediate connection attempt.
    attempt_now: bool,
    /// Every worker is busy: read meanwhile.
    assist: bool,
    /// The connection may have changed: compare and announce.
    changed: bool,
    /// When to write what threads that must not block left queued (or
    /// the acks held back, [`pool::Hooks::linger`](super::super::pool::Hooks::linger)).
    flush_at: Option<Instant>,
    /// The delay of the next flush request.
    flush_retry: Duration,
    /// Completed connection attempts.
    attempts: u64,
    /// Why the last attempt failed (`None` after a success).
    failure: Option<Error>,
}

impl Link {
    pub(super) fn new() -> Self {
        Link {
            attempt_now: false,
            assist: false,
            changed: false,
            flush_at: None,
            flush_retry: FLUSH_RETRY,
            attempts: 0,
            failure: None,
        }
    }
}

/// What the link thread does next.
enum Job {
    /// Connect (the client is disconnected, or a caller asked).
    Attempt,
    /// Read while every worker is busy.
    Assist,
    /// Write what was left queued.
    Flush,
    /// Look at the connection again.
    Check,
    /// The client is closed.
    Exit,
}

impl Inner {
    /// One connection attempt: connect, write the handshake and read its
    /// answer under the `state` lock, install the write half, then the
    /// reading half (watched by the poll).
    pub(super) fn attempt(&self) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::Server);
        }
        let Some(poll) = &self.poll else {
            return Err(Error::Server);
        };
        let socket = Socket::connect(&self.addr)?;
        let mut reader = socket.try_clone().map_err(|_| Error::Server)?;
        let epoch = self.epochs.fetch_add(1, Ordering::AcqRel) + 1;
        let state = lock(&self.state);
        let mut bytes = Vec::new();
        let end = handshake_end(&self.addr);
        for m in state.handshake(end) {
            encode_into(&m, &mut bytes)?;
        }
        if self.is_closed() {
            return Err(Error::Server);
        }
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let answer = match socket.write_until(&bytes, Some(deadline)) {
            Ok(n) if n == bytes.len() => read_answer(&mut reader, deadline, end),
            _ => Err(Error::Server),
        };
        let limit = match answer {
            Ok(limit) => limit.map_or(DEFAULT_MAX_FRAME, |l| {
                usize::try_from(l).unwrap_or(usize::MAX)
            }),
            Err(e) => {
                // With TLS 1.3 a server that refuses our certificate says
                // so only now, with an alert.
                let e = socket.tls_error().map_or(e, Error::Tls);
                socket.shutdown();
                return Err(e);
            }
        };
        self.frame_limit.store(limit, Ordering::Relaxed);
        self.output.connect(WriteHalf::new(socket, epoch));
        drop(state);
        let side = ReadSide::new(reader, epoch);
        let mut r = self.lock_read();
        if poll.watch(side.socket()).is_err() {
            drop(r);
            self.lost(&side);
            return Err(Error::Server);
        }
        // TLS: frames that came in the records of the answer are
        // decrypted already; no readiness event will announce them.
        let buffered = side.socket().has_buffered_input();
        *r = Some(side);
        if buffered {
            self.read_input(r);
        }
        Ok(())
    }

    /// The link thread: see the module docs.
    pub(super) fn run_link(self: Arc<Self>) {
        let mut backoff = MIN_BACKOFF;
        // What the connection-change handlers were last told, as the
        // connection's epoch.
        let mut announced = self.output.live();
        let mut attempt_at = None;
        loop {
            let live = self.output.live();
            if live != announced {
                if announced.is_some() {
                    self.announce(ConnectionEvent::Disconnected);
                }
                if live.is_some() {
                    self.announce(ConnectionEvent::Connected);
                }
                announced = live;
            }
            attempt_at = match (live, attempt_at) {
                (Some(_), _) => None,
                // Lost: the first attempt waits MIN_BACKOFF.
                (None, None) => {
                    backoff = MIN_BACKOFF;
                    Some(Instant::now() + backoff)
                }
                (None, at) => at,
            };
            match self.next_job(attempt_at) {
                Job::Exit => return,
                Job::Check => {}
                Job::Assist => self.assist(),
                Job::Flush => self.flush_job(),
                Job::Attempt => {
                    let outcome = if self.output.live().is_some() {
                        Ok(())
                    } else {
                        self.drop_read_side();
                        self.attempt()
                    };
                    if outcome.is_err() {
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        attempt_at = Some(Instant::now() + backoff);
                    }
                    let mut l = self.link.lock();
                    l.attempts += 1;
                    l.failure = outcome.err();
                    self.link.notify();
                }
            }
        }
    }

    /// Waits for the link thread's next job. While disconnected, an
    /// attempt is due at `attempt_at`.
    fn next_job(&self, attempt_at: Option<Instant>) -> Job {
        let mut l = self.link.lock();
        loop {
            if self.is_closed() {
                return Job::Exit;
            }
            if std::mem::take(&mut l.attempt_now) {
                return Job::Attempt;
            }
            if std::mem::take(&mut l.assist) {
                return Job::Assist;
            }
            if std::mem::take(&mut l.changed) {
                return Job::Check;
            }
            let now = Instant::now();
            if l.flush_at.is_some_and(|t| t <= now) {
                l.flush_at = None;
                return Job::Flush;
            }
            if attempt_at.is_some_and(|t| t <= now) {
                return Job::Attempt;
            }
            let until = match (l.flush_at, attempt_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            l = self.link.wait(l, until);
        }
    }

    /// Reads while every worker is busy in a callback.
    fn assist(&self) {
        while !self.is_closed() && self.pool.saturated() {
            let g = self.lock_read();
            if g.is_none() {
                return;
            }
            self.help_read(g, HELP_POLL);
        }
    }

    /// Writes what was left queued, without waiting for room; when the
    /// server takes only part, tries again later, backing off.
    fn flush_job(&self) {
        let Some(mut w) = self.try_writer() else {
            // Its holder writes it when it gives the write half back.
            self.output.want_flush();
            return;
        };
        let flushed = w.flush_now();
        {
            let mut l = self.link.lock();
            l.flush_retry = match flushed {
                Ok(Flushed::Partial) => (l.flush_retry * 2).min(MAX_FLUSH_RETRY),
                _ => FLUSH_RETRY,
            };
        }
        // Giving the write half back asks for the next try if bytes stay.
        drop(w);
    }

    /// Asks the link thread to write what was left queued (after the
    /// current retry delay), unless it is already asked to.
    pub(super) fn request_flush(&self) {
        let mut l = self.link.lock();
        if l.flush_at.is_none() {
            l.flush_at = Some(Instant::now() + l.flush_retry);
            self.link.notify();
        }
    }

    /// Asks the link thread to send the acks held back within `delay`,
    /// unless something else sends them first.
    pub(super) fn linger(&self, delay: Duration) {
        let mut l = self.link.lock();
        if l.flush_at.is_none() {
            l.flush_at = Some(Instant::now() + delay);
            self.link.notify();
        }
    }

    /// Every worker left the poll: the link thread reads meanwhile.
    pub(super) fn request_assist(&self) {
        self.link.lock().assist = true;
        self.link.notify();
    }

    /// Tells the link thread that the connection may have changed (it
    /// ended): it announces it and reconnects.
    pub(super) fn link_changed(&self) {
        self.link.lock().changed = true;
        self.link.notify();
    }

    /// Wakes the link thread for good (the client is closed).
    pub(super) fn stop_link(&self) {
        let _l = self.link.lock();
        self.link.notify();
    }

    /// Forgets the reading half, if any (before an attempt).
    fn drop_read_side(&self) {
        let side = self.lock_read().take();
        if let Some(side) = side {
            self.lost(&side);
        }
    }

    /// Called by operations that need the server: when disconnected, asks
    /// the link thread for an immediate attempt and waits for it at most
    /// [`ATTEMPT_WAIT`]. The error is why it failed ([`Error::Server`], or
    /// [`Error::Permission`]).
    pub(super) fn ensure_connected(&self) -> Result<(), Error> {
        if self.output.live().is_some() {
            return Ok(());
        }
        if self.is_closed() {
            return Err(Error::Server);
        }
        let deadline = Instant::now() + ATTEMPT_WAIT;
        let mut l = self.link.lock();
        let seen = l.attempts;
        l.attempt_now = true;
        self.link.notify();
        while l.attempts == seen && Instant::now() < deadline {
            l = self.link.wait(l, Some(deadline));
        }
        let failure = l.failure.clone();
        drop(l);
        if self.output.live().is_some() {
            Ok(())
        } else {
            Err(failure.unwrap_or(Error::Server))
        }
    }

    /// Why the client is down: the last connection attempt's failure
    /// ([`Error::Permission`]), else [`Error::Server`].
    pub(crate) fn down_error(&self) -> Error {
        self.link.lock().failure.clone().unwrap_or(Error::Server)
    }

    /// Records why the first attempt failed (the link thread records the
    /// others).
    pub(super) fn attempt_failed(&self, e: Error) {
        self.link.lock().failure = Some(e);
    }

    /// Tells every connection-change handler (on the pool, like any
    /// callback).
    fn announce(&self, event: ConnectionEvent) {
        let subs = lock(&self.state).connection_handlers();
        for s in &subs {
            if let Err(Refused::Full) = self.pool.submit(s, Event::Connection(event), self) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// What ends the server's answer to the handshake for `addr` (Decision):
/// the `Welcome` where the server may see this client as remote (a TLS
/// address, or TCP to an address other than loopback: such a server
/// refuses status requests from remote peers, and answers every `hello`
/// with a `Welcome`); the status answer otherwise (the Unix socket and
/// loopback TCP, where an older server that sends no `Welcome` may
/// listen).
pub(super) fn handshake_end(addr: &ServerAddr) -> HandshakeEnd {
    let remote_tcp = addr.unix.is_none() && addr.tcp.is_some_and(|a| !a.ip().is_loopback());
    if addr.tls.is_some() || remote_tcp {
        HandshakeEnd::Welcome
    } else {
        HandshakeEnd::Status
    }
}

/// Reads the server's answer to the handshake, exactly its frames: an
/// optional `Welcome`, then the status ([`HandshakeEnd::Status`]); or the
/// `Welcome` alone ([`HandshakeEnd::Welcome`]). Returns the frame limit
/// the welcome told (`None`: an older server, which sends none).
fn read_answer(
    socket: &mut Socket,
    deadline: Instant,
    end: HandshakeEnd,
) -> Result<Option<u32>, Error> {
    let mut limit = None;
    for _ in 0..ANSWER_FRAMES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Server);
        }
        socket.set_read_timeout(left).map_err(|_| Error::Server)?;
        // Exactly one frame: its header, then its body, nothing after it
        // (what follows belongs to the connection's reader).
        let mut head = [0u8; HEADER_LEN];
        socket.read_exact(&mut head).map_err(|_| Error::Server)?;
        let header = HeaderView::new_checked(&head).map_err(|_| Error::Server)?;
        if header.body_len() > ANSWER_MAX {
            return Err(Error::Server);
        }
        let mut body = vec![0u8; header.body_len()];
        socket.read_exact(&mut body).map_err(|_| Error::Server)?;
        match msg::decode(Encoding::from_msg_id(header.msg_id()), &body) {
            Ok(Message::Welcome(w)) if end == HandshakeEnd::Welcome => {
                return Ok(Some(w.max_frame))
            }
            Ok(Message::Welcome(w)) => limit = Some(w.max_frame),
            Ok(Message::Status(_)) => return Ok(limit),
            _ => {}
        }
    }
    Err(Error::Server)
}
