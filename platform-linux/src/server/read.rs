//! Reading connections into the broker.
//!
//! A ready connection is read into one shared buffer, at most
//! [`MAX_READS_PER_WAKEUP`] times per iteration (then the others have
//! their turn), and the bytes go through its [`FrameDecoder`]
//! (storage: the broker's [`Limits::decoder_len`], i.e. `--max-frame`, or
//! `--max-remote-frame` for a remote peer, plus the room returned
//! notifications need, plus a header) to
//! [`Broker::handle_input`](nfy_core::broker::Broker::handle_input), which
//! applies the remote rate limit, the frame limits, flow control and
//! routing. Reads stop at a short read: a stream socket returns less than
//! asked only when its receive queue is empty, and data arriving later
//! raises a new edge, so the extra read that would return `EAGAIN` is
//! saved (unless the peer's close was reported, which raises no further
//! edge).
//!
//! # Pausing
//!
//! When the broker answers [`Handled::Paused`], the connection waits for
//! another (flow control, see the core's `broker::flow`): the frame and
//! the rest of what was read are kept in the connection's held input, in
//! order, and its socket is read no further, so its peer's writes block.
//! While paused it is still read up to [`MAX_HELD`] bytes, into the held
//! input, and each new part is searched for acknowledgements
//! ([`Broker::acknowledge_held`](nfy_core::broker::Broker::acknowledge_held)):
//! a connection's acknowledgements release what other connections may be
//! waiting for. When the broker resumes it
//! ([`Event::Resumed`](nfy_core::broker::Event::Resumed)), the held input
//! is given again first, then the socket is read (its data may have
//! raised no edge meanwhile).
//!
//! [`Limits::decoder_len`]: nfy_core::broker::Limits::decoder_len
//! [`FrameDecoder`]: nfy_core::wire::FrameDecoder

use std::io;

use nfy_core::broker::{ConnId, Handled};
use nfy_core::time::Timestamp;
use nfy_core::wire::{encode_header, Decoded};

use super::event_loop::EventLoop;
use super::outbox::CloseReason;

/// Reads one connection gets per iteration before the others' turn.
pub const MAX_READS_PER_WAKEUP: usize = 16;
/// Input held for a paused connection, at most, besides the frame it was
/// paused on: what it may still send so that its acknowledgements are
/// read.
pub const MAX_HELD: usize = 64 * 1024;

/// Whose input is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feeding {
    /// An open connection's: feeding stops when it is closed meanwhile.
    Open,
    /// The last input of a connection being closed: fed to the end (the
    /// broker never pauses it, see `Broker::close`).
    Closing,
}

/// What feeding input to a connection came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fed {
    /// Everything was handled.
    All,
    /// The broker paused the connection; the rest is held.
    Paused,
    /// The connection is gone or closing.
    Stopped,
}

impl EventLoop {
    /// Reads connection `idx` until it has nothing more, its budget is used
    /// up, it is paused, or it ends. `closed` says the poller saw the
    /// peer's close. A TLS connection whose reading made rustls want to
    /// write (an alert, a key update) is marked for flushing.
    pub(super) fn read_conn(&mut self, idx: usize, closed: bool) {
        self.read_conn_inner(idx, closed);
        if self
            .conns
            .get(idx)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.socket.has_pending_output())
        {
            self.out.mark_output(idx);
        }
    }

    fn read_conn_inner(&mut self, idx: usize, closed: bool) {
        if self.out.is_closing(idx) {
            return;
        }
        let Some(Some(conn)) = self.conns.get_mut(idx) else {
            return;
        };
        let id = conn.id;
        // A paused connection holds at least the input it was paused on.
        if !conn.held.is_empty() && self.broker.is_paused(id) {
            self.read_while_paused(idx, id);
            return;
        }
        if !conn.held.is_empty() {
            let held = std::mem::take(&mut conn.held);
            conn.held_scanned = 0;
            let now = self.iteration_time;
            if self.feed(idx, &held, now, Feeding::Open) != Fed::All {
                return;
            }
        }
        for _ in 0..MAX_READS_PER_WAKEUP {
            if self.out.is_closing(idx) {
                return;
            }
            let Some(Some(conn)) = self.conns.get_mut(idx) else {
                return;
            };
            if conn.read_closed {
                self.finish_eof(idx, id);
                return;
            }
            match conn.socket.read(&mut self.rbuf) {
                Ok(0) => {
                    if conn.partial > 0 {
                        ::log::info!(
                            "{id} ({}): truncated frame: the connection closed {} bytes into a \
                             frame",
                            conn.peer,
                            conn.partial
                        );
                    }
                    conn.read_closed = true;
                    self.finish_eof(idx, id);
                    return;
                }
                Ok(n) => {
                    let short = n < self.rbuf.len() && conn.socket.short_read_means_empty();
                    let rbuf = std::mem::take(&mut self.rbuf);
                    let now = self.iteration_time;
                    let fed = self.feed(idx, rbuf.get(..n).unwrap_or_default(), now, Feeding::Open);
                    self.rbuf = rbuf;
                    if fed != Fed::All || (short && !closed) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    ::log::debug!("{id} ({}): read failed: {e}", conn.peer);
                    self.out.close(id, CloseReason::ReadError(e.kind()));
                    return;
                }
            }
        }
        // Budget used up: come back after the others had their turn.
        self.ready_again.push(idx);
    }

    /// End of stream (and everything held handled): what is queued (unicast
    /// errors, say) still goes out, as the peer may only have half-closed;
    /// the connection closes once its queue is empty (`flush_dirty`), or
    /// earlier on a send error or an overflow.
    fn finish_eof(&mut self, idx: usize, id: ConnId) {
        if self.out.pending_len(idx) > 0 {
            ::log::debug!("{id}: end of stream with output queued; closing once it is sent");
            self.out.mark_dirty(idx);
        } else {
            self.out.close(id, CloseReason::Eof);
        }
    }

    /// A paused connection: reads on into its held input, up to
    /// [`MAX_HELD`], and lets the broker take the acknowledgements there.
    fn read_while_paused(&mut self, idx: usize, id: ConnId) {
        loop {
            let Some(Some(conn)) = self.conns.get_mut(idx) else {
                return;
            };
            let room = MAX_HELD
                .saturating_sub(conn.held.len())
                .min(self.rbuf.len());
            if room == 0 || conn.read_closed {
                return;
            }
            let buf = self.rbuf.get_mut(..room).unwrap_or_default();
            match conn.socket.read(buf) {
                // Seen when the held input has been handled.
                Ok(0) => {
                    conn.read_closed = true;
                    return;
                }
                Ok(n) => {
                    conn.held
                        .extend_from_slice(buf.get(..n).unwrap_or_default());
                    let new = conn.held.get(conn.held_scanned..).unwrap_or_default();
                    let walked = self.broker.acknowledge_held(id, new, &mut self.out);
                    conn.held_scanned += walked;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    ::log::debug!("{id} ({}): read failed: {e}", conn.peer);
                    self.out.close(id, CloseReason::ReadError(e.kind()));
                    return;
                }
            }
        }
    }

    /// Feeds `input` to connection `idx`'s decoder and everything it
    /// produces to the broker, at time `now`. When the broker pauses the
    /// connection, the frame it paused on and the rest of `input` become
    /// the connection's held input.
    fn feed(&mut self, idx: usize, input: &[u8], now: Timestamp, feeding: Feeding) -> Fed {
        let mut pos = 0;
        while pos < input.len() {
            let Some(Some(conn)) = self.conns.get_mut(idx) else {
                return Fed::Stopped;
            };
            let id = conn.id;
            let rest = input.get(pos..).unwrap_or_default();
            let (used, decoded) = conn.decoder.feed(rest);
            let used = used.min(rest.len());
            let Some(decoded) = decoded else {
                conn.partial += used;
                if used == 0 {
                    ::log::error!("{id}: the frame decoder stopped consuming input; closing");
                    self.out
                        .close(id, CloseReason::ReadError(io::ErrorKind::InvalidData));
                    return Fed::Stopped;
                }
                pos += used;
                continue;
            };
            conn.partial = 0;
            if let Decoded::Frame(_) = decoded {
                self.stats.frames_in += 1;
            }
            match self.broker.handle_input(id, decoded, now, &mut self.out) {
                Handled::Done => pos += used,
                Handled::Paused => {
                    // The frame as it came (its header is canonical), then
                    // what followed it.
                    let mut held = Vec::with_capacity(input.len() - pos + 64);
                    if let Decoded::Frame(f) = decoded {
                        if let Ok(header) = encode_header(f.body.len(), f.msg_id) {
                            held.extend_from_slice(&header);
                            held.extend_from_slice(f.body);
                        }
                    }
                    held.extend_from_slice(rest.get(used..).unwrap_or_default());
                    conn.held = held;
                    conn.held_scanned = 0;
                    return Fed::Paused;
                }
            }
            if feeding == Feeding::Open && self.out.has_closes() && self.out.is_closing(idx) {
                return Fed::Stopped;
            }
        }
        Fed::All
    }

    /// A connection being closed: handles the input it held, then, when it
    /// acknowledges unicasts, what it still sent (at most
    /// [`MAX_READS_PER_WAKEUP`] reads): its last acks must be seen before
    /// what it has not acknowledged goes back to the broker (a send to a
    /// killed client fails before its hang-up is read, while its last acks
    /// still wait in the socket). The broker handles this input without
    /// flow control ([`Broker::close`](nfy_core::broker::Broker::close)).
    ///
    /// The shared read buffer is in place here: closes are only scheduled
    /// while input is fed (`Outbound::close` queues them) and carried out
    /// by `EventLoop::process_closes` from `settle`, after every `feed`
    /// has given the buffer back, so this never reads into the empty
    /// buffer `feed`'s callers leave behind while they hold it.
    pub(super) fn drain_input(&mut self, idx: usize, id: ConnId) {
        debug_assert!(
            !self.rbuf.is_empty(),
            "drain_input while the read buffer is taken"
        );
        let Some(Some(conn)) = self.conns.get_mut(idx) else {
            return;
        };
        if conn.id != id {
            return;
        }
        let held = std::mem::take(&mut conn.held);
        let now = self.iteration_time;
        let _ = self.feed(idx, &held, now, Feeding::Closing);
        if self.broker.unacknowledged(id) == 0 {
            return;
        }
        for _ in 0..MAX_READS_PER_WAKEUP {
            let Some(Some(conn)) = self.conns.get_mut(idx) else {
                return;
            };
            if conn.read_closed {
                return;
            }
            match conn.socket.read(&mut self.rbuf) {
                Ok(0) => return,
                Ok(n) => {
                    let rbuf = std::mem::take(&mut self.rbuf);
                    let _ = self.feed(
                        idx,
                        rbuf.get(..n).unwrap_or_default(),
                        now,
                        Feeding::Closing,
                    );
                    self.rbuf = rbuf;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}
