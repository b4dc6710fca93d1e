//! Reading the connection and dispatching what arrives.
//!
//! The reading half (`ReadSide`) is used by whichever thread holds the
//! `read` lock, and only through a `ReadGuard`: the connection's socket
//! is armed one-shot in the client's [`ReadyPoll`](super::super::ready_poll),
//! and a pool worker woken by it that finds the lock taken goes away,
//! relying on the holder to arm the socket again. The guard does that
//! when dropped, after unlocking (a thread woken by the re-arm must find
//! the lock free), so no path out of a reader, early returns included,
//! can stop reception.

use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, TryLockError};
use std::time::Duration;

use nfy_core::msg::{self, compact, Encoding, Message};
use nfy_core::wire::{Decoded, FrameDecoder, HEADER_LEN};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::super::event::{Event, Incoming, ObservedEvent};
use super::super::pool::{lock, Refused};
use super::super::ready_poll::ReadyPoll;
use super::super::state::Action;
use super::output::encode_into;
use super::socket::Socket;
use super::Inner;

/// Largest frame body the client accepts from the server; larger frames
/// are skipped whole by the decoder.
pub const MAX_BODY: usize = 1 << 20;

const READ_CHUNK: usize = 64 * 1024;

/// Reads of [`READ_CHUNK`] one reader makes before it lets another thread
/// read (it re-arms the socket and goes to run callbacks).
const READ_BUDGET: usize = 4;

/// The reading half of the current connection.
pub(super) struct ReadSide {
    /// Shared so the socket can be re-armed after the lock is released.
    socket: Arc<Socket>,
    epoch: u64,
    decoder: FrameDecoder<Vec<u8>>,
    buf: Vec<u8>,
}

impl ReadSide {
    /// The reading half of connection `epoch`.
    pub(super) fn new(socket: Socket, epoch: u64) -> Self {
        ReadSide {
            socket: Arc::new(socket),
            epoch,
            decoder: FrameDecoder::new(vec![0u8; MAX_BODY + HEADER_LEN]),
            buf: vec![0u8; READ_CHUNK],
        }
    }

    /// Its socket.
    pub(super) fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Its connection.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// The `read` lock, held; re-arms the socket when dropped (module docs).
pub(super) struct ReadGuard<'a> {
    guard: MutexGuard<'a, Option<ReadSide>>,
    /// Declared after `guard`, so dropped after it: the lock is free when
    /// the socket is armed again.
    rearm: Rearm<'a>,
}

/// Arms the socket it was given when dropped.
struct Rearm<'a> {
    poll: Option<&'a ReadyPoll>,
    socket: Option<Arc<Socket>>,
}

impl Drop for Rearm<'_> {
    fn drop(&mut self) {
        if let (Some(poll), Some(socket)) = (self.poll, &self.socket) {
            poll.rearm(&**socket);
        }
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        // Runs before the fields drop: the reading half still present then
        // (not taken because its connection ended) is re-armed.
        self.rearm.socket = self.guard.as_ref().map(|side| Arc::clone(&side.socket));
    }
}

impl Deref for ReadGuard<'_> {
    type Target = Option<ReadSide>;

    fn deref(&self) -> &Option<ReadSide> {
        &self.guard
    }
}

impl DerefMut for ReadGuard<'_> {
    fn deref_mut(&mut self) -> &mut Option<ReadSide> {
        &mut self.guard
    }
}

impl Inner {
    /// Takes the `read` lock, waiting for its holder.
    pub(super) fn lock_read(&self) -> ReadGuard<'_> {
        self.read_guard(lock(&self.read))
    }

    /// Takes the `read` lock if nobody holds it.
    pub(super) fn try_lock_read(&self) -> Option<ReadGuard<'_>> {
        let guard = match self.read.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(self.read_guard(guard))
    }

    fn read_guard<'a>(&'a self, guard: MutexGuard<'a, Option<ReadSide>>) -> ReadGuard<'a> {
        ReadGuard {
            guard,
            rearm: Rearm {
                poll: self.poll.as_ref(),
                socket: None,
            },
        }
    }

    /// Waits at most `wait` for input while holding the `read` lock, reads
    /// it, and releases the lock.
    pub(super) fn help_read(&self, g: ReadGuard<'_>, wait: Duration) {
        let readable = g.as_ref().is_some_and(|side| {
            if side.socket.has_buffered_input() {
                return true;
            }
            let mut fds = [PollFd::new(side.socket.as_fd(), PollFlags::POLLIN)];
            let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::ZERO);
            poll(&mut fds, timeout).is_ok_and(|n| n > 0)
        });
        if readable {
            self.read_input(g);
        }
    }

    /// Reads what the socket holds (without blocking, at most
    /// [`READ_BUDGET`] chunks, then, for TLS, whatever plaintext rustls
    /// still holds: no readiness event would announce it), dispatches it
    /// and releases the `read` lock `g`. At the end of the stream or on an
    /// error, the reading half is dropped and the connection ended. TLS
    /// records that reading made rustls want to write (a key update) and
    /// the socket did not take go to the link thread to flush.
    pub(super) fn read_input(&self, mut g: ReadGuard<'_>) {
        let Some(side) = g.as_mut() else {
            return;
        };
        let epoch = side.epoch;
        let mut ended = false;
        let mut budget = READ_BUDGET;
        loop {
            let buffered = side.socket.has_buffered_input();
            if budget == 0 && !buffered {
                break;
            }
            budget = budget.saturating_sub(1);
            let n = match side.socket.recv_now(&mut side.buf) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    ended = true;
                    break;
                }
            };
            self.dispatch_input(side, n, epoch);
            // A stream socket returns less than asked only when it has
            // nothing more: data arriving later raises a new event. Not
            // so for TLS: rustls may hold more plaintext.
            if n < side.buf.len() && !side.socket.has_buffered_input() {
                break;
            }
        }
        let flush = side.socket.has_pending_output();
        if ended {
            if let Some(side) = g.take() {
                drop(g);
                self.lost(&side);
            }
        } else if flush {
            drop(g);
            self.request_flush();
        }
    }

    /// Feeds the first `n` bytes of `side`'s buffer to its decoder and
    /// dispatches every message.
    fn dispatch_input(&self, side: &mut ReadSide, n: usize, epoch: u64) {
        let mut input = side.buf.get(..n).unwrap_or_default();
        loop {
            let (used, out) = side.decoder.feed(input);
            let produced = out.is_some();
            if let Some(Decoded::Frame(frame)) = out {
                // The server validated every parameter it sends
                // (compact::decode_trusted, Decision).
                let decoded = match Encoding::from_msg_id(frame.msg_id) {
                    Encoding::Compact => compact::decode_trusted(frame.body),
                    json => msg::decode(json, frame.body),
                };
                // What does not decode is not acknowledged either: the
                // server gives an unacknowledged unicast to another
                // receiver when this connection ends.
                if let Ok(m) = decoded {
                    self.on_message(&m, epoch);
                }
            }
            input = input.get(used..).unwrap_or_default();
            if !produced && (input.is_empty() || used == 0) {
                break;
            }
        }
    }

    /// Forgets a reading half whose connection ended (or is being
    /// replaced): stops watching it, shuts it down (a writer blocked on it
    /// returns) and ends the connection.
    pub(super) fn lost(&self, side: &ReadSide) {
        if let Some(p) = &self.poll {
            p.unwatch(side.socket());
        }
        side.socket().shutdown();
        if self.output.disconnect(side.epoch()) {
            self.link_changed();
        }
    }

    fn on_message(&self, m: &Message<'_>, epoch: u64) {
        if let Message::Welcome(w) = m {
            // The answer to a later hello (set_app_id); the first one was
            // read with the handshake.
            let limit = usize::try_from(w.max_frame).unwrap_or(usize::MAX);
            self.frame_limit.store(limit, Ordering::Relaxed);
            return;
        }
        let action = lock(&self.state).route(m);
        match (action, m) {
            (Action::Deliver(subs), Message::Notify(n)) => {
                let incoming = Arc::new(Incoming::delivered(n, epoch));
                let mut taken = false;
                for s in &subs {
                    match self
                        .pool
                        .submit(s, Event::Notify(Arc::clone(&incoming)), self)
                    {
                        Ok(()) => taken = true,
                        Err(Refused::Removed) => {}
                        Err(Refused::Full) => {
                            if !n.to.is_unicast() {
                                self.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
                if !taken && n.to.is_unicast() {
                    self.bounce(&incoming);
                }
            }
            (Action::Bounce, Message::Notify(n)) => {
                // Unchanged, reference included (spec 3, unregister race),
                // and acknowledged with the same write.
                self.bounce(&Incoming::delivered(n, epoch));
            }
            (Action::UnicastError(subs), Message::UnicastError(n)) => {
                let incoming = Arc::new(Incoming::from_notify(n));
                self.submit_all(&subs, &Event::Notify(incoming));
            }
            (Action::Observed(subs), Message::Observed(o)) => {
                let event = Arc::new(ObservedEvent {
                    from: o.from.clone(),
                    to: o.to.clone(),
                    notification: o.notification.clone(),
                    flags: o.flags,
                });
                self.submit_all(&subs, &Event::Observed(event));
            }
            (Action::Status(s), _) => self.output.answer_status(epoch, s),
            _ => {}
        }
    }

    /// Sends a unicast back unchanged, with its ack, on the connection it
    /// came on (see [`Output::enqueue_returned`](super::output::Output::enqueue_returned)).
    ///
    /// A parameter that does not convert (the server sent text that is
    /// not JSON; the client does not check what it trusts,
    /// [`compact::decode_trusted`]) cannot be sent back: the unicast is
    /// then neither returned nor acknowledged, so the server, which keeps
    /// it until acknowledged, gives it to another receiver or back to its
    /// sender when this connection ends. It is never acknowledged without
    /// being returned: that would lose it.
    pub(super) fn bounce(&self, n: &Incoming) {
        let mut frame = Vec::new();
        let encoded = n
            .to_notify()
            .is_some_and(|m| encode_into(&m, &mut frame).is_ok());
        if !encoded {
            ::log::warn!(
                "a unicast of {:?} to {:?} could not be returned (its parameter is not JSON); \
                 the server gives it to another receiver when this connection ends",
                n.notification.as_str(),
                n.to.as_str()
            );
            return;
        }
        if self.output.enqueue_returned(&frame, n.ack()) {
            self.flush_queued();
        }
    }
}
