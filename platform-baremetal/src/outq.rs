//! A connection's output queue: whole frames, encoded in place, drained a
//! few bytes at a time as the port takes them.
//!
//! The bytes live in a buffer the caller provides (a static on the board).
//! A linear buffer with a read and a write index, not a ring: a frame is
//! encoded straight into the free space behind the queued bytes (the codecs
//! write contiguous bytes), and the queued bytes are moved to the front
//! only when the space behind them is too short for the next frame.

use nfy_core::wire::{self, FrameError};

/// Encoded frames waiting for the port, as many bytes as its buffer holds.
#[derive(Debug)]
pub struct OutQueue<'a> {
    buf: &'a mut [u8],
    /// First byte not yet written to the port.
    start: usize,
    /// End of the queued bytes.
    end: usize,
}

impl<'a> OutQueue<'a> {
    /// An empty queue in `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        OutQueue {
            buf,
            start: 0,
            end: 0,
        }
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes that can still be queued.
    pub fn free(&self) -> usize {
        self.buf.len() - self.len()
    }

    /// The queued bytes, oldest first.
    pub fn queued(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Drops the first `n` queued bytes (the port took them).
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Appends one frame with message id `msg_id` whose body `body` writes
    /// (given the free space; it returns the body length). On error
    /// nothing is queued.
    pub fn push_frame<E>(
        &mut self,
        msg_id: u32,
        body: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, FrameError<E>> {
        if self.start > 0 {
            // Make all the free space contiguous, behind the queued bytes.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let space = self.buf.get_mut(self.end..).unwrap_or_default();
        let n = wire::encode_frame(space, msg_id, body)?;
        self.end += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(bytes: &[u8]) -> impl FnOnce(&mut [u8]) -> Result<usize, ()> + '_ {
        move |space: &mut [u8]| {
            let dst = space.get_mut(..bytes.len()).ok_or(())?;
            dst.copy_from_slice(bytes);
            Ok(bytes.len())
        }
    }

    #[test]
    fn frames_queue_in_order_and_drain_in_pieces() {
        let mut buf = [0; 64];
        let mut q = OutQueue::new(&mut buf);
        assert_eq!(q.push_frame(0, body(b"{}")), Ok(14));
        assert_eq!(q.push_frame(0, body(b"[1]")), Ok(15));
        assert_eq!(q.len(), 29);
        assert_eq!(&q.queued()[..4], b"\0NFY");
        assert_eq!(&q.queued()[12..14], b"{}");
        q.consume(14);
        assert_eq!(&q.queued()[12..], b"[1]");
        q.consume(100);
        assert!(q.is_empty());
        assert_eq!(q.free(), 64);
    }

    #[test]
    fn a_frame_that_does_not_fit_queues_nothing() {
        let mut buf = [0; 32];
        let mut q = OutQueue::new(&mut buf);
        q.push_frame(0, body(b"0123456789")).unwrap();
        let before = q.queued().to_vec();
        assert!(q.push_frame(0, body(b"0123456789")).is_err());
        assert_eq!(q.queued(), before);
    }

    #[test]
    fn drained_space_at_the_front_is_reused() {
        let mut buf = [0; 32];
        let mut q = OutQueue::new(&mut buf);
        q.push_frame(0, body(b"0123456789")).unwrap(); // 22 bytes
        q.consume(20);
        // 10 bytes free behind, 20 in front: fits only after compaction.
        q.push_frame(0, body(b"abcdefgh")).unwrap();
        assert_eq!(&q.queued()[..2], b"89");
        assert_eq!(&q.queued()[2..6], b"\0NFY");
        assert_eq!(&q.queued()[14..], b"abcdefgh");
    }
}
