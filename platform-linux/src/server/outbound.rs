//! Outbound side of the event loop: per-connection output queues and the
//! [`Outbox`] the broker writes into.
//!
//! Every connection owns one contiguous byte buffer. The broker's messages
//! are encoded straight into its free tail ([`wire::encode_frame`] around
//! [`msg::encode`]): no allocation per message, and a whole poll
//! iteration's output for a connection leaves in one `send` (write
//! batching). The buffer grows on demand (zero-filled once, then reused)
//! and is bounded by the `--max-queue` limit.
//!
//! **Policy when a queue is full** (a reader that stalls): [`Outbox::send`]
//! answers [`QueueFull`]; the broker then reports [`Event::Overflow`], and
//! the event loop closes that connection right after the frame being
//! handled and calls `Broker::disconnect`. The broker turns the stalled
//! client's pending unicasts into unicast errors for their senders, so
//! nothing is lost silently and no other client ever waits for it.
//!
//! **Crash-safe delivery**: for a connection whose `hello` turned
//! acknowledgements on ([`Event::Hello`]), every unicast queued for it is
//! also kept in its [`Unacked`] store until [`Event::Acked`]; when it
//! closes, [`Outbound::take_unsent`] gives back everything it has not
//! acknowledged (each unicast once), which the event loop hands to the
//! broker like unsent frames. Unacknowledged bytes over `--max-queue` are an
//! overflow, like a full queue. See [`super::unacked`].
//!
//! Writes use `send(MSG_NOSIGNAL)`, so a peer that went away yields `EPIPE`
//! instead of killing the process with `SIGPIPE` (important when the server
//! runs inside an application that did not ignore `SIGPIPE`).

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;

use nfy_core::broker::{ConnId, DropReason, Event, Outbox, QueueFull};
use nfy_core::msg::{self, EncodeError, Encoding, Guard, Message, PeerAddr};
use nfy_core::wire::{self, FrameError};

use super::unacked::Unacked;

/// First size of a connection's output buffer.
pub const INITIAL_OUT_CAPACITY: usize = 16 * 1024;

/// A drained buffer larger than this is shrunk back to
/// [`INITIAL_OUT_CAPACITY`], so a past burst does not pin memory.
pub const RETAINED_OUT_CAPACITY: usize = 256 * 1024;

/// Free space made before encoding, so the common message encodes on the
/// first try.
pub const ENCODE_RESERVE: usize = 4 * 1024;

/// Why a connection is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed its end.
    Eof,
    /// Reading failed.
    ReadError(io::ErrorKind),
    /// Writing failed.
    WriteError(io::ErrorKind),
    /// Its output queue overflowed (a stalled reader).
    Overflow,
    /// The poller would not take the socket.
    Poll(io::ErrorKind),
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue limit does not leave room for it.
    Full,
    /// The message has no form in the requested encoding.
    Unsupported,
}

/// What a frame writer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFail {
    /// More space than it was given.
    NeedSpace,
    /// It cannot write this message at all.
    Unsupported,
}

/// One connection's unsent bytes: `buf[start..end]`.
///
/// `frame` is the start of the frame that `start` falls in, so
/// `buf[frame..end]` is always a run of whole frames: what a connection
/// being closed has not received ([`OutQueue::take_unsent`]).
#[derive(Debug, Default)]
pub struct OutQueue {
    buf: Vec<u8>,
    frame: usize,
    start: usize,
    end: usize,
}

/// The length of the frame starting at `bytes[0]`, from its size field.
fn frame_len(bytes: &[u8]) -> Option<usize> {
    let size: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    usize::try_from(u32::from_be_bytes(size))
        .ok()?
        .checked_add(8)
}

/// Splits a run of whole frames into their bytes (header included).
fn split_raw_frames(mut bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let len = frame_len(bytes)?;
        let frame = bytes.get(..len)?;
        bytes = bytes.get(len..).unwrap_or(&[]);
        Some(frame)
    })
}

/// The reference of the notify in a whole frame, if it is one with a
/// reference.
fn reference_of(frame: &[u8]) -> Option<u64> {
    let id: [u8; 4] = frame.get(8..12)?.try_into().ok()?;
    let body = frame.get(wire::HEADER_LEN..)?;
    match msg::decode(Encoding::from_msg_id(u32::from_be_bytes(id)), body) {
        Ok(Message::Notify(n)) => n.reference,
        _ => None,
    }
}

/// Splits a run of whole frames, as queued by [`OutQueue::push`].
pub fn split_frames(mut bytes: &[u8]) -> impl Iterator<Item = wire::Frame<'_>> {
    std::iter::from_fn(move || {
        let len = frame_len(bytes)?;
        let frame = bytes.get(..len)?;
        bytes = bytes.get(len..).unwrap_or(&[]);
        let id: [u8; 4] = frame.get(8..12)?.try_into().ok()?;
        Some(wire::Frame {
            msg_id: u32::from_be_bytes(id),
            body: frame.get(wire::HEADER_LEN..)?,
        })
    })
}

impl OutQueue {
    /// Bytes waiting to be sent.
    pub fn pending(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// Number of bytes waiting.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Current buffer size (what the queue costs in memory).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Appends one frame: `write` gets the free tail and returns how many
    /// bytes it wrote, or asks for more space. The queue never holds more
    /// than `limit` bytes; a frame that does not fit is not queued at all.
    /// Returns the frame's length.
    pub fn push(
        &mut self,
        limit: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, WriteFail>,
    ) -> Result<usize, PushError> {
        if self.buf.len() - self.end < ENCODE_RESERVE {
            // Best effort; the loop below grows further when needed.
            self.make_room(ENCODE_RESERVE, limit);
        }
        loop {
            let free = self.buf.get_mut(self.end..).unwrap_or(&mut []);
            let capacity = free.len();
            match write(free) {
                Ok(n) => {
                    let n = n.min(capacity);
                    self.end += n;
                    return Ok(n);
                }
                Err(WriteFail::Unsupported) => return Err(PushError::Unsupported),
                Err(WriteFail::NeedSpace) => {
                    let want = capacity.saturating_mul(2).max(INITIAL_OUT_CAPACITY);
                    if !self.make_room(want, limit) {
                        return Err(PushError::Full);
                    }
                }
            }
        }
    }

    /// Tries to have `want` free bytes after `end` without the buffer
    /// exceeding `limit`; true when the free space grew.
    fn make_room(&mut self, want: usize, limit: usize) -> bool {
        let before = self.buf.len() - self.end;
        if self.frame > 0 {
            self.buf.copy_within(self.frame..self.end, 0);
            self.end -= self.frame;
            self.start -= self.frame;
            self.frame = 0;
        }
        if self.buf.len() - self.end < want {
            let target = (self.end + want)
                .max(self.buf.len().saturating_mul(2))
                .max(INITIAL_OUT_CAPACITY)
                .min(limit);
            if target > self.buf.len() {
                self.buf.resize(target, 0);
            }
        }
        self.buf.len() - self.end > before
    }

    /// The last `n` bytes queued (the frame [`OutQueue::push`] just
    /// queued, given its length).
    pub fn last(&self, n: usize) -> &[u8] {
        self.buf
            .get(self.end.saturating_sub(n).max(self.start)..self.end)
            .unwrap_or(&[])
    }

    /// Takes back the last `n` bytes queued, when none of them was sent
    /// yet (a frame just pushed that must not go out after all).
    pub fn retract(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.end -= n;
        if self.start == self.end {
            self.frame = 0;
            self.start = 0;
            self.end = 0;
        }
    }

    /// Marks `n` bytes as sent.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        while let Some(len) = self.buf.get(self.frame..self.end).and_then(frame_len) {
            if self.frame + len > self.start {
                break;
            }
            self.frame += len;
        }
        if self.start == self.end {
            self.frame = 0;
            self.start = 0;
            self.end = 0;
            if self.buf.len() > RETAINED_OUT_CAPACITY {
                self.buf.truncate(INITIAL_OUT_CAPACITY);
                self.buf.shrink_to_fit();
            }
        }
    }

    /// Takes the frames not (completely) sent, the one being sent
    /// included, and empties the queue.
    pub fn take_unsent(&mut self) -> Vec<u8> {
        let unsent = self.buf.get(self.frame..self.end).unwrap_or(&[]).to_vec();
        self.clear();
        unsent
    }

    /// Drops everything and releases the memory.
    pub fn clear(&mut self) {
        *self = OutQueue::default();
    }

    /// Sends the pending bytes with one `send(MSG_NOSIGNAL)`; returns true
    /// when everything left.
    pub fn send_to(&mut self, fd: RawFd) -> io::Result<bool> {
        use nix::sys::socket::{send, MsgFlags};
        loop {
            if self.is_empty() {
                return Ok(true);
            }
            match send(fd, self.pending(), MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => {
                    self.consume(n);
                    return Ok(self.is_empty());
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => return Ok(false),
                Err(e) => return Err(io::Error::from(e)),
            }
        }
    }
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

#[derive(Debug, Default)]
struct Slot {
    id: Option<ConnId>,
    queue: OutQueue,
    dirty: bool,
    closing: bool,
    /// Where the connection comes from, for `nfy status`.
    peer: PeerAddr,
    /// The largest frame body read from it, told in the `Welcome`.
    frame_limit: usize,
    /// The connection acknowledges unicasts (its `hello` said so).
    acks: bool,
    /// The unicasts it was sent and has not acknowledged (`acks` only).
    unacked: Unacked,
    /// References of the last [`RECENT_UNICASTS`] unicasts it was sent
    /// (connections without acks), newest last: the only ones it may
    /// return ([`Outbox::delivered`]).
    recent: VecDeque<u64>,
}

/// Unicasts remembered per connection without acks, for telling a returned
/// unicast (spec 3: sent back unchanged because its registration was just
/// removed, moments after it was sent) from a forged reference. Older
/// references sent back are treated as new notifications.
pub const RECENT_UNICASTS: usize = 64;

/// Counters of the outbound side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutStats {
    /// Frames queued.
    pub frames: u64,
    /// Connections closed because their queue overflowed.
    pub overflows: u64,
    /// Messages that had no form in the connection's encoding.
    pub unsupported: u64,
    /// Bad messages reported by the broker.
    pub bad_messages: u64,
    /// Notifications the broker dropped.
    pub dropped: u64,
    /// Requests the broker refused (limits, local-only messages).
    pub refused: u64,
    /// Unicasts acknowledged by their receivers.
    pub acked: u64,
    /// Acknowledgements naming no unicast kept for the connection.
    pub unknown_acks: u64,
}

/// All connections' output queues; the broker's [`Outbox`].
#[derive(Debug)]
pub struct Outbound {
    slots: Vec<Slot>,
    dirty: Vec<usize>,
    closing: Vec<(ConnId, CloseReason)>,
    max_queue: usize,
    stats: OutStats,
    guard: Guard,
}

/// The result of flushing one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything was sent (or nothing was waiting).
    All,
    /// Bytes remain: wait for the socket to become writable.
    Partial,
}

impl Outbound {
    /// Queues bounded by `max_queue` bytes each.
    pub fn new(max_queue: usize) -> Outbound {
        Outbound {
            slots: Vec::new(),
            dirty: Vec::new(),
            closing: Vec::new(),
            max_queue,
            stats: OutStats::default(),
            guard: Guard::default(),
        }
    }

    /// The protection counters (refused connections, rate-limited and
    /// oversize frames), which the event loop keeps here so the broker
    /// can report them ([`Outbox::guard`]).
    pub fn guard_mut(&mut self) -> &mut Guard {
        &mut self.guard
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
            slot.acks = false;
            slot.unacked = Unacked::default();
            slot.recent = VecDeque::new();
        }
    }

    /// Takes what `id` has not received, or for a connection that
    /// acknowledges unicasts, has not acknowledged (whole frames, oldest
    /// first), emptying its queue and its unacknowledged store.
    ///
    /// For an acknowledging connection: every unicast it has not
    /// acknowledged, then the unsent unicasts that are not among them
    /// (queued before its `hello` turned acknowledgements on). Each
    /// unicast is in the result once.
    pub fn take_unsent(&mut self, id: ConnId) -> Vec<u8> {
        let Some(slot) = self.slot_mut(id) else {
            return Vec::new();
        };
        let unsent = slot.queue.take_unsent();
        if slot.unacked.is_empty() {
            return unsent;
        }
        let kept: Vec<u64> = slot.unacked.references().collect();
        let mut all = slot.unacked.take_all();
        for frame in split_raw_frames(&unsent) {
            let stored = reference_of(frame).is_some_and(|r| kept.contains(&r));
            if !stored {
                all.extend_from_slice(frame);
            }
        }
        all
    }

    /// Unicasts `id` has not acknowledged yet (0 unless it acknowledges).
    pub fn unacked_len(&self, id: ConnId) -> usize {
        self.slots
            .get(id.index())
            .filter(|s| s.id == Some(id))
            .map_or(0, |s| s.unacked.len())
    }

    /// True when `id` acknowledges unicasts.
    pub fn acks(&self, id: ConnId) -> bool {
        self.slots
            .get(id.index())
            .is_some_and(|s| s.id == Some(id) && s.acks)
    }

    /// Frees a connection's queue (after the broker forgot it).
    pub fn release(&mut self, id: ConnId) {
        if let Some(slot) = self.slot_mut(id) {
            slot.queue.clear();
            slot.id = None;
            slot.closing = false;
            slot.acks = false;
            slot.unacked = Unacked::default();
            slot.recent = VecDeque::new();
        }
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
            if !slot.dirty && !slot.queue.is_empty() && !slot.closing {
                slot.dirty = true;
                self.dirty.push(idx);
            }
        }
    }

    /// Bytes waiting for `idx`.
    pub fn pending_len(&self, idx: usize) -> usize {
        self.slots.get(idx).map_or(0, |s| s.queue.len())
    }

    /// Sends `idx`'s output on `fd` (one `send`). A connection being closed
    /// is skipped unless `even_if_closing`.
    pub fn flush(&mut self, idx: usize, fd: RawFd, even_if_closing: bool) -> io::Result<Flushed> {
        let Some(slot) = self.slots.get_mut(idx) else {
            return Ok(Flushed::All);
        };
        if slot.closing && !even_if_closing {
            return Ok(Flushed::All);
        }
        if slot.queue.send_to(fd)? {
            Ok(Flushed::All)
        } else {
            Ok(Flushed::Partial)
        }
    }
}

impl Outbox for Outbound {
    fn peer(&self, conn: ConnId) -> PeerAddr {
        self.slots
            .get(conn.index())
            .filter(|slot| slot.id == Some(conn))
            .map_or(PeerAddr::Unknown, |slot| slot.peer)
    }

    fn guard(&self) -> Guard {
        self.guard
    }

    fn frame_limit(&self, conn: ConnId) -> Option<usize> {
        self.slots
            .get(conn.index())
            .filter(|slot| slot.id == Some(conn) && slot.frame_limit > 0)
            .map(|slot| slot.frame_limit)
    }

    fn delivered(&self, conn: ConnId, reference: u64) -> bool {
        self.slots
            .get(conn.index())
            .filter(|s| s.id == Some(conn))
            .is_some_and(|s| {
                if s.acks {
                    s.unacked.contains(reference)
                } else {
                    s.recent.contains(&reference)
                }
            })
    }

    fn send(
        &mut self,
        conn: ConnId,
        encoding: Encoding,
        msg: &Message<'_>,
    ) -> Result<(), QueueFull> {
        let max_queue = self.max_queue;
        let idx = conn.index();
        let Some(slot) = self.slots.get_mut(idx).filter(|s| s.id == Some(conn)) else {
            ::log::debug!("{conn}: {} for a connection that is gone", msg.kind());
            return Err(QueueFull);
        };
        if slot.closing {
            return Err(QueueFull);
        }
        match slot
            .queue
            .push(max_queue, |space| write_frame(space, encoding, msg))
        {
            Ok(len) => {
                if let (false, Message::Notify(n)) = (slot.acks, msg) {
                    if let Some(reference) = n.reference {
                        if slot.recent.len() >= RECENT_UNICASTS {
                            slot.recent.pop_front();
                        }
                        slot.recent.push_back(reference);
                    }
                }
                if let (true, Message::Notify(n)) = (slot.acks, msg) {
                    if let Some(reference) = n.reference {
                        // Kept until acknowledged; no room is an overflow
                        // like a full queue, and the frame is not sent.
                        let frame = slot.queue.last(len);
                        if slot.unacked.push(reference, frame, max_queue).is_err() {
                            slot.queue.retract(len);
                            return Err(QueueFull);
                        }
                    }
                }
                self.stats.frames += 1;
                if !slot.dirty {
                    slot.dirty = true;
                    self.dirty.push(idx);
                }
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

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::BadMessage { conn, error } => {
                self.stats.bad_messages += 1;
                ::log::warn!("{conn}: bad message ignored: {error}");
            }
            Event::Dropped {
                conn,
                reason,
                notify,
            } => {
                self.stats.dropped += 1;
                let why = match reason {
                    DropReason::NotAllowedIn => "no `in` rule allows it",
                };
                ::log::info!(
                    "{conn}: dropped notification {:?} from {:?} to {:?}: {why}",
                    notify.notification.as_str(),
                    notify.from.as_str(),
                    notify.to.as_str()
                );
            }
            Event::Refused { conn, refusal } => {
                self.stats.refused += 1;
                ::log::warn!("{conn}: {refusal}");
            }
            Event::Ignored { conn, kind } => {
                ::log::debug!("{conn}: ignored a {kind:?} message");
            }
            Event::UnicastError { sender, notify } => {
                ::log::debug!(
                    "{sender}: unicast error: nobody receives {:?} to {:?}",
                    notify.notification.as_str(),
                    notify.to.as_str()
                );
            }
            Event::Hello { conn, acks } => {
                if let Some(slot) = self.slot_mut(conn) {
                    if slot.acks && !acks && !slot.unacked.is_empty() {
                        ::log::info!(
                            "{conn}: acknowledgements turned off; {} unacknowledged unicasts \
                             forgotten",
                            slot.unacked.len()
                        );
                        slot.unacked = Unacked::default();
                    }
                    slot.acks = acks;
                }
            }
            Event::Acked { conn, reference } => {
                let known = self
                    .slot_mut(conn)
                    .is_some_and(|slot| slot.unacked.ack(reference));
                if known {
                    self.stats.acked += 1;
                    ::log::trace!("{conn}: acknowledged {reference:#x}");
                } else {
                    self.stats.unknown_acks += 1;
                    ::log::debug!("{conn}: acknowledgement of {reference:#x}, not kept for it");
                }
            }
            Event::Overflow { conn } => {
                let pending = self.slot_mut(conn).map_or(0, |s| s.queue.len());
                if !self.is_closing(conn.index()) {
                    self.stats.overflows += 1;
                    ::log::warn!(
                        "{conn}: output queue full ({pending} bytes unsent, limit {}): the client \
                         does not read; disconnecting it",
                        self.max_queue
                    );
                }
                self.close(conn, CloseReason::Overflow);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    /// A writer producing `n` bytes of `fill`.
    fn bytes(n: usize, fill: u8) -> impl FnMut(&mut [u8]) -> Result<usize, WriteFail> {
        move |space: &mut [u8]| match space.get_mut(..n) {
            Some(dst) => {
                dst.fill(fill);
                Ok(n)
            }
            None => Err(WriteFail::NeedSpace),
        }
    }

    #[test]
    fn frames_append_and_drain() {
        let mut q = OutQueue::default();
        q.push(1 << 20, bytes(10, 1)).unwrap();
        q.push(1 << 20, bytes(5, 2)).unwrap();
        assert_eq!(q.pending(), &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
        q.consume(12);
        assert_eq!(q.pending(), &[2, 2, 2]);
        q.consume(3);
        assert!(q.is_empty());
    }

    #[test]
    fn grows_for_large_frames_up_to_the_limit() {
        let limit = 200_000;
        let mut q = OutQueue::default();
        q.push(limit, bytes(100_000, 7)).unwrap();
        assert_eq!(q.len(), 100_000);
        assert!(q.capacity() <= limit);
        // 100,001 more would exceed the limit: refused, nothing queued.
        assert_eq!(q.push(limit, bytes(100_001, 8)), Err(PushError::Full));
        assert_eq!(q.len(), 100_000);
        q.push(limit, bytes(100_000, 9)).unwrap();
        assert_eq!(q.len(), 200_000);
        assert_eq!(q.push(limit, bytes(1, 1)), Err(PushError::Full));
    }

    /// A writer producing one real frame of `n` bytes in all, body `fill`.
    fn frame(n: usize, fill: u8) -> impl FnMut(&mut [u8]) -> Result<usize, WriteFail> {
        move |space: &mut [u8]| {
            wire::encode_frame(space, 1, |body| {
                match body.get_mut(..n - wire::HEADER_LEN) {
                    Some(dst) => {
                        dst.fill(fill);
                        Ok(dst.len())
                    }
                    None => Err(()),
                }
            })
            .map_err(|_| WriteFail::NeedSpace)
        }
    }

    #[test]
    fn sent_frames_are_reclaimed_by_compaction_the_current_one_is_kept() {
        let limit = 32 * 1024;
        let mut q = OutQueue::default();
        q.push(limit, frame(15 * 1024, 1)).unwrap();
        q.push(limit, frame(15 * 1024, 2)).unwrap();
        // The first frame and 1 KiB of the second left.
        q.consume(16 * 1024);
        assert_eq!(q.len(), 14 * 1024);
        // Compaction keeps the second frame whole (15 KiB): 16 KiB fit.
        q.push(limit, frame(16 * 1024, 3)).unwrap();
        assert_eq!(q.len(), 30 * 1024);
        assert_eq!(q.pending().last(), Some(&3));
        assert!(q.capacity() <= limit);
        // What is unsent: the partly sent second frame, whole, and the third.
        let unsent = q.take_unsent();
        let frames: Vec<_> = split_frames(&unsent).collect();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].body.len(), 15 * 1024 - wire::HEADER_LEN);
        assert!(frames[0].body.iter().all(|&b| b == 2));
        assert!(frames[1].body.iter().all(|&b| b == 3));
        assert!(q.is_empty());
    }

    #[test]
    fn drained_large_buffer_shrinks() {
        let mut q = OutQueue::default();
        q.push(4 << 20, bytes(1 << 20, 1)).unwrap();
        assert!(q.capacity() >= 1 << 20);
        q.consume(1 << 20);
        assert_eq!(q.capacity(), INITIAL_OUT_CAPACITY);
    }

    #[test]
    fn unsupported_is_reported() {
        let mut q = OutQueue::default();
        let r = q.push(1 << 20, |_: &mut [u8]| Err(WriteFail::Unsupported));
        assert_eq!(r, Err(PushError::Unsupported));
        assert!(q.is_empty());
    }

    #[test]
    fn send_handles_partial_writes_and_would_block() {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut q = OutQueue::default();
        // Far more than a socket buffer holds.
        let total = 8 << 20;
        q.push(16 << 20, bytes(total, 3)).unwrap();
        assert!(
            !q.send_to(a.as_raw_fd()).unwrap(),
            "one send cannot take 8 MiB"
        );
        assert!(q.len() < total, "the first send took something");
        let mut buf = vec![0u8; 1 << 16];
        let mut read_total = 0;
        while read_total < total {
            if !q.is_empty() {
                let _ = q.send_to(a.as_raw_fd()).unwrap();
            }
            // Whatever is not queued is in the socket: this read cannot hang.
            let n = b.read(&mut buf).unwrap();
            assert!(n > 0);
            assert!(buf[..n].iter().all(|&x| x == 3));
            read_total += n;
        }
        assert!(q.is_empty());
    }

    /// Runs in a child process with the default SIGPIPE disposition (as in
    /// a host application that never ignored it): a send to a closed peer
    /// must return EPIPE, not kill the process.
    #[test]
    fn send_never_raises_sigpipe() {
        const CHILD: &str = "NFY_TEST_SIGPIPE_CHILD";
        const NAME: &str = "server::outbound::tests::send_never_raises_sigpipe";
        if std::env::var_os(CHILD).is_some() {
            use nix::sys::signal::{signal, SigHandler, Signal};
            // SAFETY: restores the default action; no handler code runs.
            unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.unwrap();
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            drop(b);
            let mut q = OutQueue::default();
            q.push(1 << 20, bytes(10, 1)).unwrap();
            let err = q.send_to(a.as_raw_fd()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child: {:?}\n{stdout}", out.status);
        assert!(
            stdout.contains("1 passed"),
            "the child did not run the test:\n{stdout}"
        );
    }

    fn unicast(reference: u64) -> Message<'static> {
        use nfy_core::msg::{Notify, RawJson};
        Message::Notify(Notify {
            from: nfy_core::AppId::new("s").unwrap(),
            to: nfy_core::Destination::parse("1").unwrap(),
            notification: nfy_core::NotificationId::new("n").unwrap(),
            flags: 0,
            reference: Some(reference),
            parameter: RawJson::new("{}").unwrap(),
        })
    }

    fn references(run: &[u8]) -> Vec<u64> {
        split_raw_frames(run).filter_map(reference_of).collect()
    }

    #[test]
    fn an_acking_connection_gives_back_what_it_did_not_acknowledge_once() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut out = Outbound::new(1 << 20);
        let id = ConnId::from_raw(3);
        out.open(id);
        out.event(Event::Hello {
            conn: id,
            acks: true,
        });
        assert!(out.acks(id));
        for r in 1..=3 {
            out.send(id, Encoding::Compact, &unicast(r)).unwrap();
        }
        // 1..3 sent (not acknowledged), then 4 and 5 queued unsent.
        assert_eq!(
            out.flush(id.index(), a.as_raw_fd(), false).unwrap(),
            Flushed::All
        );
        for r in 4..=5 {
            out.send(id, Encoding::Compact, &unicast(r)).unwrap();
        }
        out.event(Event::Acked {
            conn: id,
            reference: 2,
        });
        out.event(Event::Acked {
            conn: id,
            reference: 9,
        });
        assert_eq!(out.unacked_len(id), 4);
        assert_eq!((out.stats().acked, out.stats().unknown_acks), (1, 1));
        assert_eq!(references(&out.take_unsent(id)), [1, 3, 4, 5]);
        assert_eq!(out.unacked_len(id), 0);
    }

    #[test]
    fn a_connection_without_acks_keeps_nothing() {
        let mut out = Outbound::new(1 << 20);
        let id = ConnId::from_raw(1);
        out.open(id);
        out.event(Event::Hello {
            conn: id,
            acks: false,
        });
        out.send(id, Encoding::Compact, &unicast(1)).unwrap();
        assert_eq!(out.unacked_len(id), 0);
        assert_eq!(references(&out.take_unsent(id)), [1]);
    }

    #[test]
    fn unacknowledged_bytes_over_the_limit_are_an_overflow() {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let mut sink = vec![0u8; 1 << 16];
        let limit = INITIAL_OUT_CAPACITY;
        let mut out = Outbound::new(limit);
        let id = ConnId::from_raw(1);
        out.open(id);
        out.event(Event::Hello {
            conn: id,
            acks: true,
        });
        let mut sent = 0u64;
        // Each send leaves at once, so only the unacknowledged bytes grow.
        let full = loop {
            match out.send(id, Encoding::Compact, &unicast(sent)) {
                Ok(()) => sent += 1,
                Err(QueueFull) => break sent,
            }
            out.flush(id.index(), a.as_raw_fd(), false).unwrap();
            while b.read(&mut sink).is_ok_and(|n| n > 0) {}
        };
        assert!(full > 10, "{full}");
        assert_eq!(out.unacked_len(id) as u64, full);
        assert_eq!(
            out.pending_len(id.index()),
            0,
            "the refused frame is not queued"
        );
        // An ack makes room for one more.
        out.event(Event::Acked {
            conn: id,
            reference: 0,
        });
        out.send(id, Encoding::Compact, &unicast(full)).unwrap();
    }

    #[test]
    fn send_to_closed_peer_is_an_error_not_a_signal() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(b);
        let mut q = OutQueue::default();
        q.push(1 << 20, bytes(10, 1)).unwrap();
        let err = q.send_to(a.as_raw_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
