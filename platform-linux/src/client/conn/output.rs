//! What the client writes to the server, and who writes it.
//!
//! Every byte for the server passes through `Output`:
//!
//! - **acks** held back: a pool worker pushes one after each callback of
//!   a unicast, without writing (see the [module docs](super),
//!   acknowledgements);
//! - the **queue**: frames that threads which must not wait ask to be
//!   written (a reader returning a unicast, a registration change, a new
//!   `hello`), in the order asked;
//! - a caller's **own frame** (a notify, a batch, a status request),
//!   written by that caller.
//!
//! One writer at a time holds the connection's write half (`Writing`):
//! it takes it out of `Output`, writes with no lock held, and gives it
//! back when dropped. Every write first sends what an earlier writer left
//! unsent, then the queue and the acks, then its own frame, as one
//! system call. The mutex covers bookkeeping only, never a system call,
//! so a thread that must not block never waits behind a writer that the
//! server is slowing down (backpressure): it queues its bytes and writes
//! them only if the write half is free, without waiting for room
//! (`Writing::flush_now`). What stays unwritten is written by the next
//! writer, or by the link thread, which the writer giving the half back
//! asks to (`Inner::request_flush`).
//!
//! The acks and the queue belong to the live connection (`Output::live`)
//! and are forgotten when it ends: the server gives the unicasts of a
//! connection that ended to someone else, and the registrations are
//! replayed by the next handshake.
//!
//! # Decision: a deadline in the middle of a frame
//!
//! A send with a deadline ([`super::super::Client::notify_within`]) that
//! runs out before any byte of its frame was written returns
//! [`Error::SendTimeout`] and nothing of it reaches the server. When the
//! deadline passes with the frame partly written, the connection is
//! closed (the server discards a truncated frame, so the notification is
//! not delivered either), the call returns [`Error::SendTimeout`], and the
//! link thread reconnects. Writing the rest instead would return late, by
//! an unbounded time when the server reads nothing, which is what the
//! deadline is there to prevent; the case needs the socket to have had
//! room for part of a frame only, and costs what a dropped connection
//! costs (registrations replayed, unacknowledged unicasts given to their
//! next receiver).

use std::collections::VecDeque;
use std::sync::mpsc::SyncSender;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use nfy_core::msg::{compact, Encoding, Message, Status};
use nfy_core::wire::{self, HEADER_LEN};
use nfy_core::MAX_ID_LEN;

use super::super::pool::lock;
use super::super::Error;
use super::socket::Socket;
use super::Inner;

/// Acks held back at most before they are sent on their own.
pub const ACK_BATCH: usize = 32;

/// Room for one compact `ack` frame (header, tag, varint reference).
const ACK_FRAME_MAX: usize = HEADER_LEN + 16;

/// Appends the compact `ack` frame of `reference` to `out`.
fn push_ack(reference: u64, out: &mut Vec<u8>) {
    let mut frame = [0u8; ACK_FRAME_MAX];
    let len = wire::encode_frame(&mut frame, Encoding::Compact.msg_id(), |b| {
        compact::encode(&Message::Ack(reference), b)
    })
    .unwrap_or(0);
    out.extend_from_slice(frame.get(..len).unwrap_or_default());
}

/// Appends `msg` as one compact frame to `out`.
pub(crate) fn encode_into(msg: &Message<'_>, out: &mut Vec<u8>) -> Result<(), Error> {
    // Postcard: a varint length (at most 10 bytes) per string, varints for
    // the numbers, one byte per option/bool tag.
    let parameter = match msg {
        Message::Notify(n) | Message::UnicastError(n) => n.parameter.as_str().len(),
        _ => 0,
    };
    let mut cap = HEADER_LEN + parameter + 4 * (MAX_ID_LEN + 10) + 64;
    for _ in 0..2 {
        let start = out.len();
        out.resize(start + cap, 0);
        let tail = out.get_mut(start..).unwrap_or_default();
        match wire::encode_frame(tail, Encoding::Compact.msg_id(), |b| {
            compact::encode(msg, b)
        }) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(_) => {
                out.truncate(start);
                cap *= 2;
            }
        }
    }
    Err(Error::Encode)
}

/// Appends `msg` as one compact frame to `out` if its body is at most
/// `limit` bytes ([`Error::TooLarge`] otherwise, `out` unchanged).
pub(super) fn encode_within(
    msg: &Message<'_>,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let start = out.len();
    encode_into(msg, out)?;
    let size = out.len() - start - HEADER_LEN;
    if size > limit {
        out.truncate(start);
        return Err(Error::TooLarge { size, limit });
    }
    Ok(())
}

/// The write half of one connection.
pub(super) struct WriteHalf {
    socket: Socket,
    epoch: u64,
    /// Bytes of the outgoing stream (queue and acks) taken by a writer and
    /// not written yet; written before anything else.
    unsent: Vec<u8>,
    /// Bytes of the outgoing stream written so far.
    written: u64,
}

impl WriteHalf {
    /// The write half of connection `epoch`, its handshake written.
    pub(super) fn new(socket: Socket, epoch: u64) -> Self {
        WriteHalf {
            socket,
            epoch,
            unsent: Vec::new(),
            written: 0,
        }
    }
}

struct OutState {
    /// The live connection's epoch; `None` while disconnected.
    live: Option<u64>,
    /// Its write half, unless a writer holds it.
    half: Option<WriteHalf>,
    /// Threads waiting for the write half.
    waiting: usize,
    /// Acks held back (references of unicasts the live connection
    /// delivered and whose callbacks completed).
    acks: Vec<u64>,
    /// Frames queued, not yet taken by a writer.
    queue: Vec<u8>,
    /// Bytes of the outgoing stream so far: the queue, and the acks as
    /// writers take them.
    streamed: u64,
    /// Where the answers to the status requests sent on the live
    /// connection go, oldest first.
    waiters: VecDeque<SyncSender<Status>>,
    /// The link thread found the write half taken while acks waited: the
    /// writer sends them when it gives the half back.
    flush_wanted: bool,
}

impl OutState {
    /// Forgets the live connection and everything for it; shuts its
    /// socket down if no writer holds it (a writer that does learns it
    /// when it gives the half back).
    fn end(&mut self) {
        self.live = None;
        if let Some(half) = self.half.take() {
            half.socket.shutdown();
        }
        self.acks.clear();
        self.queue.clear();
        self.streamed = 0;
        // Dropping the senders fails the waiting status requests.
        self.waiters.clear();
        self.flush_wanted = false;
    }
}

/// The client's output: see the module docs.
pub(super) struct Output {
    state: Mutex<OutState>,
    /// Signalled when the write half is given back or the connection
    /// changes.
    returned: Condvar,
}

/// Where a queued frame ends in the outgoing stream of connection
/// `epoch`: written once that connection's writers wrote `end` bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Queued {
    epoch: u64,
    end: u64,
}

/// What [`Writing::flush_now`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flushed {
    /// Everything pending is written.
    All,
    /// The socket took only part: the rest waits in the write half.
    Partial,
}

impl Output {
    pub(super) fn new() -> Self {
        Output {
            state: Mutex::new(OutState {
                live: None,
                half: None,
                waiting: 0,
                acks: Vec::new(),
                queue: Vec::new(),
                streamed: 0,
                waiters: VecDeque::new(),
                flush_wanted: false,
            }),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OutState> {
        lock(&self.state)
    }

    /// The live connection's epoch, `None` while disconnected.
    pub(super) fn live(&self) -> Option<u64> {
        self.lock().live
    }

    /// Makes `half`'s connection (its handshake written) the live one.
    pub(super) fn connect(&self, half: WriteHalf) {
        let mut st = self.lock();
        st.end();
        st.live = Some(half.epoch);
        st.half = Some(half);
        self.returned.notify_all();
    }

    /// Ends connection `epoch` if it is the live one (see
    /// [`OutState::end`]); true when it was.
    pub(super) fn disconnect(&self, epoch: u64) -> bool {
        let mut st = self.lock();
        if st.live != Some(epoch) {
            return false;
        }
        st.end();
        self.returned.notify_all();
        true
    }

    /// Ends the live connection, whichever it is (closing the client).
    pub(super) fn close(&self) {
        let mut st = self.lock();
        st.end();
        self.returned.notify_all();
    }

    /// Holds back the ack of `reference`, delivered on connection `epoch`;
    /// returns how many acks are held back (0: that connection has ended,
    /// and the ack is dropped).
    pub(super) fn push_ack(&self, epoch: u64, reference: u64) -> usize {
        let mut st = self.lock();
        if st.live != Some(epoch) {
            return 0;
        }
        st.acks.push(reference);
        st.acks.len()
    }

    /// True when acks are held back.
    pub(super) fn has_acks(&self) -> bool {
        !self.lock().acks.is_empty()
    }

    /// Asks the next writer that gives the write half back to send the
    /// acks held back.
    pub(super) fn want_flush(&self) {
        self.lock().flush_wanted = true;
    }

    /// Queues `msg` for the live connection; [`Error::Server`] when there
    /// is none.
    pub(super) fn enqueue(&self, msg: &Message<'_>) -> Result<Queued, Error> {
        let mut st = self.lock();
        let epoch = st.live.ok_or(Error::Server)?;
        let start = st.queue.len();
        encode_into(msg, &mut st.queue)?;
        st.streamed += (st.queue.len() - start) as u64;
        Ok(Queued {
            epoch,
            end: st.streamed,
        })
    }

    /// Queues a returned unicast (`frame`) for the connection it came on
    /// (`came_on`: its epoch and the reference to acknowledge), followed
    /// by its ack, so both go in one write; nothing when that connection
    /// has ended (the server gave the unicast to someone else then).
    /// Without `came_on` (a unicast without reference), the frame goes on
    /// the live connection alone. True when queued.
    pub(super) fn enqueue_returned(&self, frame: &[u8], came_on: Option<(u64, u64)>) -> bool {
        let mut st = self.lock();
        let Some(live) = st.live else {
            return false;
        };
        let start = st.queue.len();
        match came_on {
            Some((epoch, _)) if epoch != live => return false,
            Some((_, reference)) => {
                st.queue.extend_from_slice(frame);
                push_ack(reference, &mut st.queue);
            }
            None => st.queue.extend_from_slice(frame),
        }
        st.streamed += (st.queue.len() - start) as u64;
        true
    }

    /// Gives a status answer that arrived on connection `epoch` to the
    /// oldest request sent on it.
    pub(super) fn answer_status(&self, epoch: u64, status: Status) {
        let mut st = self.lock();
        if st.live == Some(epoch) {
            if let Some(tx) = st.waiters.pop_front() {
                // The asker may have given up (timeout): ignore.
                let _ = tx.try_send(status);
            }
        }
    }
}

impl Inner {
    /// Takes the live connection's write half, waiting while another
    /// writer holds it, at most until `deadline` ([`Error::SendTimeout`]
    /// then); [`Error::Server`] when there is no live connection.
    pub(super) fn writer(&self, deadline: Option<Instant>) -> Result<Writing<'_>, Error> {
        let out = &self.output;
        let mut st = out.lock();
        loop {
            if st.live.is_none() {
                return Err(Error::Server);
            }
            if let Some(half) = st.half.take() {
                return Ok(Writing {
                    inner: self,
                    half: Some(half),
                    broken: false,
                });
            }
            st.waiting += 1;
            st = match deadline {
                None => out.returned.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        st.waiting -= 1;
                        return Err(Error::SendTimeout);
                    }
                    out.returned
                        .wait_timeout(st, left)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0)
                }
            };
            st.waiting -= 1;
        }
    }

    /// The write half if nobody holds it now.
    pub(super) fn try_writer(&self) -> Option<Writing<'_>> {
        let half = self.output.lock().half.take()?;
        Some(Writing {
            inner: self,
            half: Some(half),
            broken: false,
        })
    }

    /// Writes what is queued and the acks held back, without waiting: now
    /// if the write half is free, else by its holder when it gives it
    /// back.
    pub(super) fn flush_queued(&self) {
        match self.try_writer() {
            Some(mut w) => {
                let _ = w.flush_now();
            }
            None => self.output.want_flush(),
        }
    }

    /// Waits until `queued` is written (or its connection ended:
    /// [`Error::Server`]).
    pub(super) fn wait_written(&self, queued: Queued) -> Result<(), Error> {
        let mut w = self.writer(None)?;
        w.drain(queued)
    }
}

/// The write half, taken out of [`Output`] by one writer; given back when
/// dropped (or, when the connection ended or broke while held, shut down
/// and dropped).
pub(super) struct Writing<'a> {
    inner: &'a Inner,
    /// Always `Some` until dropped.
    half: Option<WriteHalf>,
    /// A write failed, or stopped inside a frame: the connection ends.
    broken: bool,
}

impl Writing<'_> {
    /// The connection this writes.
    pub(super) fn epoch(&self) -> u64 {
        self.half.as_ref().map_or(0, |h| h.epoch)
    }

    /// Registers where the answer to the status request this writer is
    /// about to send goes (before sending it: the answer may come at
    /// once).
    pub(super) fn expect_status(&self, tx: SyncSender<Status>) -> Result<(), Error> {
        let mut st = self.inner.output.lock();
        if st.live != Some(self.epoch()) {
            return Err(Error::Server);
        }
        st.waiters.push_back(tx);
        Ok(())
    }

    /// Forgets the last status request registered (it was not sent).
    fn forget_status(&self) {
        let mut st = self.inner.output.lock();
        if st.live == Some(self.epoch()) {
            st.waiters.pop_back();
        }
    }

    /// Moves the queue and the acks held back behind the unsent bytes.
    fn take_queued(&mut self) {
        let Some(half) = self.half.as_mut() else {
            return;
        };
        let mut st = self.inner.output.lock();
        if st.live != Some(half.epoch) {
            return;
        }
        let st = &mut *st;
        let before = st.queue.len();
        for &reference in &st.acks {
            push_ack(reference, &mut st.queue);
        }
        st.streamed += (st.queue.len() - before) as u64;
        st.acks.clear();
        st.flush_wanted = false;
        if half.unsent.is_empty() {
            std::mem::swap(&mut half.unsent, &mut st.queue);
        } else {
            half.unsent.append(&mut st.queue);
        }
    }

    /// Sends `msg` (with what is pending before it) as one frame of at
    /// most `limit` body bytes ([`Error::TooLarge`] otherwise, nothing
    /// sent), waiting for room until `deadline`.
    pub(super) fn send(
        &mut self,
        msg: &Message<'_>,
        limit: usize,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        let start = self.pending()?;
        if let Some(half) = self.half.as_mut() {
            encode_within(msg, limit, &mut half.unsent)?;
        }
        self.write_from(start, deadline)
    }

    /// Sends `frames` (encoded, each within the limit) after what is
    /// pending, waiting for room until `deadline`.
    pub(super) fn send_frames(
        &mut self,
        frames: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        let start = self.pending()?;
        if let Some(half) = self.half.as_mut() {
            half.unsent.extend_from_slice(frames);
        }
        self.write_from(start, deadline)
    }

    /// Takes what is queued behind the unsent bytes; returns where a
    /// caller's own frame starts.
    fn pending(&mut self) -> Result<usize, Error> {
        self.take_queued();
        self.half
            .as_ref()
            .map(|h| h.unsent.len())
            .ok_or(Error::Server)
    }

    /// Writes until `queued` is written, waiting for room.
    fn drain(&mut self, queued: Queued) -> Result<(), Error> {
        let half = self.half.as_ref().ok_or(Error::Server)?;
        if half.epoch != queued.epoch {
            // Its connection ended before it was written.
            return Err(Error::Server);
        }
        if half.written >= queued.end {
            return Ok(());
        }
        self.take_queued();
        let len = self.half.as_ref().map_or(0, |h| h.unsent.len());
        self.write_from(len, None)
    }

    /// Writes the pending bytes, the first `own` of which belong to the
    /// outgoing stream and the rest to the caller's frame, waiting for
    /// room until `deadline`.
    fn write_from(&mut self, own: usize, deadline: Option<Instant>) -> Result<(), Error> {
        let Some(half) = self.half.as_mut() else {
            return Err(Error::Server);
        };
        let total = half.unsent.len();
        match half.socket.write_until(&half.unsent, deadline) {
            Ok(n) if n == total => {
                half.written += own as u64;
                half.unsent.clear();
                Ok(())
            }
            Ok(n) if n <= own => {
                // Nothing of the caller's frame went out: drop it, keep
                // the rest of the stream for the next writer.
                half.unsent.truncate(own);
                half.unsent.drain(..n);
                half.written += n as u64;
                Err(Error::SendTimeout)
            }
            Ok(_) => {
                // Part of the caller's frame went out (module docs,
                // Decision).
                self.broken = true;
                Err(Error::SendTimeout)
            }
            Err(_) => {
                self.broken = true;
                Err(Error::Server)
            }
        }
    }

    /// Writes what is pending (the unsent bytes, the queue and the acks)
    /// as far as the socket takes it now, without waiting.
    pub(super) fn flush_now(&mut self) -> Result<Flushed, Error> {
        self.take_queued();
        let Some(half) = self.half.as_mut() else {
            return Err(Error::Server);
        };
        if half.unsent.is_empty() && !half.socket.has_pending_output() {
            return Ok(Flushed::All);
        }
        match half.socket.send_now(&half.unsent) {
            Ok(n) => {
                half.unsent.drain(..n);
                half.written += n as u64;
                Ok(
                    if half.unsent.is_empty() && !half.socket.has_pending_output() {
                        Flushed::All
                    } else {
                        Flushed::Partial
                    },
                )
            }
            Err(_) => {
                self.broken = true;
                Err(Error::Server)
            }
        }
    }
}

impl Writing<'_> {
    /// [`Writing::send`] of a status request, registered with
    /// [`Writing::expect_status`] first and forgotten again when it could
    /// not be sent.
    pub(super) fn send_status_request(
        &mut self,
        tx: SyncSender<Status>,
        deadline: Instant,
    ) -> Result<(), Error> {
        self.expect_status(tx)?;
        let sent = self.send(&Message::StatusRequest, usize::MAX, Some(deadline));
        if sent.is_err() {
            self.forget_status();
        }
        sent
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let Some(half) = self.half.take() else {
            return;
        };
        let epoch = half.epoch;
        let out = &self.inner.output;
        let mut st = out.lock();
        let live = st.live == Some(epoch);
        // TLS records rustls took but the socket did not: out with the
        // next write too.
        let left = !half.unsent.is_empty() || half.socket.has_pending_output();
        if live && !self.broken {
            st.half = Some(half);
        } else {
            half.socket.shutdown();
            if live {
                st.end();
            }
        }
        if st.waiting > 0 {
            out.returned.notify_all();
        }
        let flush = st.live.is_some()
            && (left || !st.queue.is_empty() || (st.flush_wanted && !st.acks.is_empty()));
        drop(st);
        if live && self.broken {
            self.inner.link_changed();
        }
        if flush {
            self.inner.request_flush();
        }
    }
}
