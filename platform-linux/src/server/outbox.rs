//! The broker's [`Outbox`] on Linux: every connection's [`OutQueue`], the
//! connections with output to flush, and what the broker asked the event
//! loop to do (close a connection, read one again).
//!
//! **When a queue refuses a frame** (it would pass `--max-queue`):
//! [`Outbox::send`] answers [`QueueFull`]; the broker reports
//! [`Event::Overflow`] and the event loop closes that connection right
//! after the input being handled. With flow control (see the core's
//! `broker::flow`), senders wait before a receiver's queue gets there; what
//! can still fill it is output nobody can hold back (see there).
//!
//! **A stalled reader** ([`Event::Stalled`]: it held others back, or its
//! backlog was over the high-water mark, and took no bytes for
//! `--stall-timeout`) is closed the same way. In both cases the event loop
//! gives what the connection had not received ([`Outbound::take_unsent`])
//! to the broker, which routes its unicasts again — to another receiver
//! first (`"1"`, or another registration of the same app), else back to
//! their senders as unicast errors — and then returns the unicasts the
//! connection was sent but never acknowledged, so nothing is lost
//! silently.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use nfy_core::broker::{ConnId, Event, Outbox, QueueFull, RemoteLimits};
use nfy_core::msg::{self, EncodeError, Encoding, Message, PeerAddr, TlsCounters, TlsPeerReport};
use nfy_core::wire::{self, FrameError};

use super::conn::Socket;
use super::events::{self, OutStats};
use super::out_queue::{OutQueue, PushError, Sent, WriteFail};

/// Why a connection is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed its end.
    Eof,
    /// Reading failed.
    ReadError(io::ErrorKind),
    /// Writing failed.
    WriteError(io::ErrorKind),
    /// Its output queue (or its ledger) passed the limit.
    Overflow,
    /// It stalled (flow control): no progress for the stall timeout.
    Stalled {
        /// How long it made no progress.
        idle: Duration,
    },
    /// The poller would not take the socket.
    Poll(io::ErrorKind),
    /// A remote connection the configuration, reloaded, no longer lets in
    /// (no `in`/`out` rules, or not on the address it reached).
    Revoked,
}

/// Whether a flush may write to a connection being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushWhile {
    /// Only while the connection is open (the usual flush).
    Open,
    /// Also once it is being closed: the last send to a peer that may only
    /// have half-closed.
    Closing,
}

#[derive(Debug, Default)]
struct Slot {
    id: Option<ConnId>,
    queue: OutQueue,
    dirty: bool,
    closing: bool,
    /// Where the connection comes from, for `nfy status`.
    peer: PeerAddr,
    /// The largest frame body read from it (the broker's limit for its
    /// kind), told in the `Welcome` that answers its `hello`.
    frame_limit: usize,
    /// `Some` for a TLS connection: the subject of its peer's certificate,
    /// if it presented one (for `nfy status`).
    tls: Option<Option<String>>,
    /// Its socket holds output of its own (TLS records) to write, besides
    /// the queue.
    socket_output: bool,
}

/// What the TLS listener counts ([`TlsCounters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsCount {
    /// A handshake completed.
    Accepted,
    /// A handshake failed.
    Failed,
    /// A handshake was cut at the timeout.
    TimedOut,
    /// A connection was closed at the bound on handshakes.
    OverLimit,
}

/// All connections' output queues; the broker's [`Outbox`].
#[derive(Debug)]
pub struct Outbound {
    slots: Vec<Slot>,
    dirty: Vec<usize>,
    closing: Vec<(ConnId, CloseReason)>,
    resumed: Vec<ConnId>,
    max_queue: usize,
    remote: RemoteLimits,
    stats: OutStats,
    /// `Some` when the server has a TLS listener.
    tls_counters: Option<TlsCounters>,
}

/// Encodes `msg` as one frame into `space`.
fn write_frame(
    space: &mut [u8],
    encoding: Encoding,
    msg: &Message<'_>,
) -> Result<usize, WriteFail> {
    match wire::encode_frame(space, encoding.msg_id(), |body| {
        msg::encode(msg, encoding, body)
    }) {
        Ok(n) => Ok(n),
        Err(FrameError::BufferFull) | Err(FrameError::Body(EncodeError::BufferFull)) => {
            Err(WriteFail::NeedSpace)
        }
        Err(FrameError::Body(EncodeError::Unsupported)) => Err(WriteFail::Unsupported),
    }
}

impl Outbound {
    /// Queues bounded by `max_queue` bytes each; `remote` for the rate
    /// limit's log line.
    pub fn new(max_queue: usize, remote: RemoteLimits) -> Outbound {
        Outbound {
            slots: Vec::new(),
            dirty: Vec::new(),
            closing: Vec::new(),
            resumed: Vec::new(),
            max_queue,
            remote,
            stats: OutStats::default(),
            tls_counters: None,
        }
    }

    /// Turns the TLS counters on (the server has a TLS listener): `nfy
    /// status` then reports them.
    pub fn enable_tls_counters(&mut self) {
        self.tls_counters.get_or_insert_with(TlsCounters::default);
    }

    /// Counts one TLS event.
    pub fn count_tls(&mut self, what: TlsCount) {
        let c = self.tls_counters.get_or_insert_with(TlsCounters::default);
        match what {
            TlsCount::Accepted => c.accepted += 1,
            TlsCount::Failed => c.failed += 1,
            TlsCount::TimedOut => c.timed_out += 1,
            TlsCount::OverLimit => c.over_limit += 1,
        }
    }

    /// The TLS counters; `None` without a TLS listener.
    pub fn tls_counters(&self) -> Option<TlsCounters> {
        self.tls_counters
    }

    /// Records that `id` came over TLS, with the subject of its peer's
    /// certificate (after [`Outbound::open`]).
    pub fn set_tls(&mut self, id: ConnId, subject: Option<String>) {
        if let Some(slot) = self.slot_mut(id) {
            slot.tls = Some(subject);
        }
    }

    /// Records where `id` comes from (after [`Outbound::open`]).
    pub fn set_peer(&mut self, id: ConnId, peer: PeerAddr) {
        if let Some(slot) = self.slot_mut(id) {
            slot.peer = peer;
        }
    }

    /// Records the largest frame body read from `id` (after
    /// [`Outbound::open`]), for the `Welcome` that answers its `hello`.
    pub fn set_frame_limit(&mut self, id: ConnId, limit: usize) {
        if let Some(slot) = self.slot_mut(id) {
            slot.frame_limit = limit;
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> OutStats {
        self.stats
    }

    /// Starts a queue for a new connection.
    pub fn open(&mut self, id: ConnId) {
        let idx = id.index();
        if self.slots.len() <= idx {
            self.slots.resize_with(idx + 1, Slot::default);
        }
        if let Some(slot) = self.slots.get_mut(idx) {
            slot.queue.clear();
            slot.id = Some(id);
            slot.dirty = false;
            slot.closing = false;
            slot.peer = PeerAddr::Unknown;
            slot.frame_limit = 0;
            slot.tls = None;
            slot.socket_output = false;
        }
    }

    /// Takes what `id` has not received (whole frames, oldest first, the
    /// one being sent included), emptying its queue.
    pub fn take_unsent(&mut self, id: ConnId) -> Vec<u8> {
        self.slot_mut(id)
            .map_or_else(Vec::new, |slot| slot.queue.take_unsent())
    }

    /// Frees a connection's queue (after the broker forgot it).
    pub fn release(&mut self, id: ConnId) {
        if let Some(slot) = self.slot_mut(id) {
            slot.queue.clear();
            slot.id = None;
            slot.closing = false;
            slot.tls = None;
            slot.socket_output = false;
        }
        self.resumed.retain(|c| *c != id);
    }

    fn slot_mut(&mut self, id: ConnId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.index())
            .filter(|slot| slot.id == Some(id))
    }

    /// Schedules `id` for closing (once), discarding nothing yet.
    pub fn close(&mut self, id: ConnId, reason: CloseReason) {
        if let Some(slot) = self.slot_mut(id) {
            if !slot.closing {
                slot.closing = true;
                self.closing.push((id, reason));
            }
        }
    }

    /// True when `idx`'s connection is scheduled for closing.
    pub fn is_closing(&self, idx: usize) -> bool {
        self.slots.get(idx).is_some_and(|s| s.closing)
    }

    /// True when closes are waiting to be processed.
    pub fn has_closes(&self) -> bool {
        !self.closing.is_empty()
    }

    /// The next connection to close.
    pub fn next_close(&mut self) -> Option<(ConnId, CloseReason)> {
        self.closing.pop()
    }

    /// Moves the connections the broker resumed into `into` (which must be
    /// empty; its allocation is reused).
    pub fn take_resumed(&mut self, into: &mut Vec<ConnId>) {
        std::mem::swap(&mut self.resumed, into);
    }

    /// True when some queue has output to flush.
    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Moves the list of connections with output into `into` (which must
    /// be empty; its allocation is reused) and clears their marks.
    pub fn take_dirty(&mut self, into: &mut Vec<usize>) {
        std::mem::swap(&mut self.dirty, into);
        for &idx in into.iter() {
            if let Some(slot) = self.slots.get_mut(idx) {
                slot.dirty = false;
            }
        }
    }

    /// Marks `idx` for flushing when it has output (the socket became
    /// writable again).
    pub fn mark_dirty(&mut self, idx: usize) {
        if let Some(slot) = self.slots.get_mut(idx) {
            let output = !slot.queue.is_empty() || slot.socket_output;
            if !slot.dirty && output && !slot.closing {
                slot.dirty = true;
                self.dirty.push(idx);
            }
        }
    }

    /// Marks `idx` for flushing because its socket holds output of its
    /// own (TLS records: the end of a handshake, an alert, a key update).
    pub fn mark_output(&mut self, idx: usize) {
        if let Some(slot) = self.slots.get_mut(idx) {
            slot.socket_output = true;
        }
        self.mark_dirty(idx);
    }

    /// Bytes waiting for `idx`.
    pub fn pending_len(&self, idx: usize) -> usize {
        self.slots.get(idx).map_or(0, |s| s.queue.len())
    }

    /// Sends `idx`'s output on `fd` (one `send`); a connection being
    /// closed only with [`FlushWhile::Closing`].
    pub fn flush(&mut self, idx: usize, fd: RawFd, when: FlushWhile) -> io::Result<Sent> {
        match self.flushable(idx, when) {
            Some(slot) => slot.queue.send_to(fd),
            None => Ok(Sent {
                bytes: 0,
                drained: true,
            }),
        }
    }

    /// `idx`'s slot when a flush `when` may write to it.
    fn flushable(&mut self, idx: usize, when: FlushWhile) -> Option<&mut Slot> {
        self.slots
            .get_mut(idx)
            .filter(|slot| !(slot.closing && when == FlushWhile::Open))
    }

    /// Sends `idx`'s output on `socket` (see [`Outbound::flush`]): one
    /// `send` for a plain socket; for TLS, the queue into rustls and its
    /// records out, as far as the socket takes them
    /// ([`super::tls_stream`]). Drained only when the socket has nothing
    /// of its own left to write either.
    pub(super) fn flush_socket(
        &mut self,
        idx: usize,
        socket: &mut Socket,
        when: FlushWhile,
    ) -> io::Result<Sent> {
        let Socket::Tls(tls) = socket else {
            return self.flush(idx, socket.fd(), when);
        };
        let Some(slot) = self.flushable(idx, when) else {
            return Ok(Sent {
                bytes: 0,
                drained: true,
            });
        };
        let sent = tls.flush(&mut slot.queue)?;
        slot.socket_output = tls.has_pending_output();
        Ok(sent)
    }

    /// Counts a queued frame and marks its connection for flushing.
    fn queued(&mut self, idx: usize) {
        self.stats.frames += 1;
        if let Some(slot) = self.slots.get_mut(idx) {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(idx);
            }
        }
    }

    /// The live slot of `conn` for queueing, or why not.
    fn open_slot(&mut self, conn: ConnId, what: &str) -> Result<&mut Slot, QueueFull> {
        match self.slots.get_mut(conn.index()) {
            Some(slot) if slot.id == Some(conn) && !slot.closing => Ok(slot),
            Some(slot) if slot.id == Some(conn) => Err(QueueFull),
            _ => {
                ::log::debug!("{conn}: {what} for a connection that is gone");
                Err(QueueFull)
            }
        }
    }
}

impl Outbox for Outbound {
    fn send(
        &mut self,
        conn: ConnId,
        encoding: Encoding,
        msg: &Message<'_>,
    ) -> Result<(), QueueFull> {
        let max_queue = self.max_queue;
        let slot = self.open_slot(conn, msg.kind())?;
        match slot
            .queue
            .push(max_queue, |space| write_frame(space, encoding, msg))
        {
            Ok(_) => {
                self.queued(conn.index());
                Ok(())
            }
            Err(PushError::Full) => Err(QueueFull),
            Err(PushError::Unsupported) => {
                self.stats.unsupported += 1;
                ::log::error!(
                    "{conn}: a {} message has no {encoding:?} form; not sent",
                    msg.kind()
                );
                Ok(())
            }
        }
    }

    fn send_frame(&mut self, conn: ConnId, frame: &[u8]) -> Result<(), QueueFull> {
        let max_queue = self.max_queue;
        let slot = self.open_slot(conn, "frame")?;
        match slot.queue.push_bytes(max_queue, frame) {
            Ok(_) => {
                self.queued(conn.index());
                Ok(())
            }
            Err(_) => Err(QueueFull),
        }
    }

    fn backlog(&self, conn: ConnId) -> usize {
        self.slots
            .get(conn.index())
            .filter(|s| s.id == Some(conn))
            .map_or(0, |s| s.queue.len())
    }

    fn peer(&self, conn: ConnId) -> PeerAddr {
        self.slots
            .get(conn.index())
            .filter(|slot| slot.id == Some(conn))
            .map_or(PeerAddr::Unknown, |slot| slot.peer)
    }

    fn report_more(&mut self, asker: ConnId) -> Result<(), QueueFull> {
        let Some(counters) = self.tls_counters else {
            return Ok(());
        };
        // Collected first: sending needs the slots mutably.
        let tls: Vec<(u32, Option<String>)> = self
            .slots
            .iter()
            .filter_map(|s| Some((s.id?.raw(), s.tls.clone()?)))
            .collect();
        for (conn, subject) in &tls {
            let report = TlsPeerReport {
                conn: *conn,
                subject: subject.as_deref(),
            };
            self.send(asker, Encoding::Compact, &Message::TlsPeer(report))?;
        }
        self.send(asker, Encoding::Compact, &Message::TlsCounters(counters))
    }

    fn frame_limit(&self, conn: ConnId) -> Option<usize> {
        self.slots
            .get(conn.index())
            .filter(|slot| slot.id == Some(conn) && slot.frame_limit > 0)
            .map(|slot| slot.frame_limit)
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Overflow { conn } => {
                if !self.is_closing(conn.index()) {
                    self.stats.overflows += 1;
                    let pending = self.backlog(conn);
                    ::log::warn!(
                        "{conn}: output over the limit ({pending} bytes unsent, --max-queue {}, \
                         or as many unacknowledged), with nothing flow control could hold \
                         back; disconnecting it",
                        self.max_queue
                    );
                }
                self.close(conn, CloseReason::Overflow);
            }
            Event::Stalled {
                conn,
                idle,
                backlog,
                unacknowledged,
                waiters,
            } => {
                self.stats.stalls += 1;
                let what = if backlog > 0 {
                    format!(
                        "took no bytes for {} ({backlog} bytes queued for it)",
                        events::seconds(idle)
                    )
                } else {
                    format!(
                        "acknowledged nothing for {} ({unacknowledged} bytes of unicasts \
                         unacknowledged)",
                        events::seconds(idle)
                    )
                };
                ::log::warn!(
                    "{conn}: {what} while holding back {waiters} sender(s); disconnecting it"
                );
                self.close(conn, CloseReason::Stalled { idle });
            }
            Event::Revoked { conn } => {
                ::log::info!(
                    "{conn}: remote, and the configuration has no in/out rules any more; \
                     disconnecting it"
                );
                self.close(conn, CloseReason::Revoked);
            }
            Event::Resumed { conn } => {
                events::record(&mut self.stats, &self.remote, &event);
                self.resumed.push(conn);
            }
            _ => events::record(&mut self.stats, &self.remote, &event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfy_core::msg::{Notify, RawJson};

    fn unicast(reference: u64) -> Message<'static> {
        Message::Notify(Notify {
            from: nfy_core::AppId::new("s").unwrap(),
            to: nfy_core::Destination::parse("1").unwrap(),
            notification: nfy_core::NotificationId::new("n").unwrap(),
            flags: 0,
            reference: Some(reference),
            parameter: RawJson::new("{}").unwrap(),
        })
    }

    #[test]
    fn frames_queue_until_the_limit_then_the_broker_hears_queue_full() {
        let mut out = Outbound::new(1024, RemoteLimits::DEFAULT);
        let id = ConnId::from_raw(3);
        out.open(id);
        let mut sent = 0;
        while out.send(id, Encoding::Json, &unicast(sent)).is_ok() {
            sent += 1;
        }
        assert!(sent > 5, "{sent}");
        assert!(out.backlog(id) <= 1024);
        assert_eq!(out.stats().frames, sent);
        let mut dirty = Vec::new();
        out.take_dirty(&mut dirty);
        assert_eq!(dirty, [id.index()], "marked once");
        // What it did not receive comes back as whole frames, in order.
        let unsent = out.take_unsent(id);
        let refs: Vec<u64> = wire::frames(&unsent)
            .filter_map(|f| msg::notify_reference(Encoding::Json, f.body()))
            .collect();
        assert_eq!(refs, (0..sent).collect::<Vec<_>>());
    }

    #[test]
    fn a_closing_connection_takes_nothing_and_is_closed_once() {
        let mut out = Outbound::new(1 << 20, RemoteLimits::DEFAULT);
        let id = ConnId::from_raw(1);
        out.open(id);
        out.event(Event::Overflow { conn: id });
        out.event(Event::Overflow { conn: id });
        assert_eq!(out.stats().overflows, 1);
        assert_eq!(out.send(id, Encoding::Json, &unicast(1)), Err(QueueFull));
        assert_eq!(out.next_close(), Some((id, CloseReason::Overflow)));
        assert_eq!(out.next_close(), None);
        // A stale id of the same slot reaches nothing.
        out.release(id);
        let later = ConnId::from_raw(1 | 1 << 16);
        out.open(later);
        assert_eq!(out.send(id, Encoding::Json, &unicast(1)), Err(QueueFull));
        assert!(out.send(later, Encoding::Json, &unicast(1)).is_ok());
    }

    #[test]
    fn resumed_connections_are_handed_to_the_loop() {
        let mut out = Outbound::new(1 << 20, RemoteLimits::DEFAULT);
        let id = ConnId::from_raw(2);
        out.open(id);
        out.event(Event::Resumed { conn: id });
        let mut resumed = Vec::new();
        out.take_resumed(&mut resumed);
        assert_eq!(resumed, [id]);
    }
}
