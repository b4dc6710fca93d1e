//! Crash-safe delivery, server side: the unicasts a connection has been
//! sent but has not acknowledged yet.
//!
//! A client of our own library that says `hello { acks: true }`
//! acknowledges every unicast (a notify carrying a `reference`) once its
//! callback has run, or once it sent it back unchanged. Until then the
//! server keeps the frame exactly as it was queued for that connection, in
//! one [`Unacked`] store per connection; when the connection ends first
//! (the process was killed, the socket broke, the queue overflowed), the
//! event loop gives every frame still kept, oldest first, to
//! `Broker::return_undelivered`, which routes it to the next receiver or
//! returns it to its sender as a unicast error. See `docs/reliability.md`,
//! "Crash-safe delivery".
//!
//! # Storage
//!
//! One byte buffer per connection, reused: frames are appended at its end,
//! and a queue of small entry records (reference, offset, length),
//! oldest first, indexes them. An ack removes its entry (searched from the
//! oldest, where acks usually land: one registration's callbacks run in
//! order); its bytes become a hole, reclaimed when the buffer is full
//! (compaction moves the live frames down) or at once when the store
//! empties or the entry is the newest. After the warm-up nothing is
//! allocated per message: the buffer and the entry queue keep their
//! capacity.
//!
//! # Bound
//!
//! The frames kept (holes excluded) never exceed the limit given to
//! [`Unacked::push`] (the server's `--max-queue`): a connection that
//! receives more than that without acknowledging is treated like a reader
//! that stalls (its queue overflowed: it is closed, and everything it has
//! not acknowledged goes back to the broker). A connection therefore holds
//! at most `--max-queue` bytes unsent plus `--max-queue` bytes unacknowledged
//! (the unsent unicasts are in both).

use std::collections::VecDeque;

use super::outbound::{INITIAL_OUT_CAPACITY, RETAINED_OUT_CAPACITY};

/// One kept frame: `buf[start..start + len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    reference: u64,
    start: usize,
    len: usize,
}

/// The store has no room for the frame within its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFull;

/// One connection's unacknowledged unicasts. See the module docs.
#[derive(Debug, Default)]
pub struct Unacked {
    buf: Vec<u8>,
    /// End of the used part of `buf` (live frames and holes).
    end: usize,
    /// Bytes of live frames.
    live: usize,
    /// Oldest first.
    entries: VecDeque<Entry>,
}

impl Unacked {
    /// Frames kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of the frames kept.
    pub fn bytes(&self) -> usize {
        self.live
    }

    /// Current buffer size (what the store costs in memory, besides its
    /// entry queue).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Keeps `frame` (a whole encoded frame) until `reference` is
    /// acknowledged. [`StoreFull`] when the frames kept would exceed
    /// `limit` bytes; nothing is kept then.
    pub fn push(&mut self, reference: u64, frame: &[u8], limit: usize) -> Result<(), StoreFull> {
        let len = frame.len();
        if self.live.saturating_add(len) > limit {
            return Err(StoreFull);
        }
        if self.buf.len() - self.end < len {
            self.compact();
        }
        if self.buf.len() - self.end < len {
            // After compaction `end == live`, and `live + len <= limit`.
            let target = (self.end + len)
                .max(self.buf.len().saturating_mul(2))
                .max(INITIAL_OUT_CAPACITY)
                .min(limit.max(self.end + len));
            self.buf.resize(target, 0);
        }
        let start = self.end;
        let Some(dst) = self.buf.get_mut(start..start + len) else {
            return Err(StoreFull);
        };
        dst.copy_from_slice(frame);
        self.end += len;
        self.live += len;
        self.entries.push_back(Entry {
            reference,
            start,
            len,
        });
        Ok(())
    }

    /// True when a frame with this reference is kept.
    pub fn contains(&self, reference: u64) -> bool {
        self.entries.iter().any(|e| e.reference == reference)
    }

    /// Forgets the frame acknowledged by `reference` (the oldest one kept
    /// with that reference); false when none is kept.
    pub fn ack(&mut self, reference: u64) -> bool {
        let Some(pos) = self.entries.iter().position(|e| e.reference == reference) else {
            return false;
        };
        let Some(entry) = self.entries.remove(pos) else {
            return false;
        };
        self.live -= entry.len;
        if self.entries.is_empty() {
            self.end = 0;
            if self.buf.len() > RETAINED_OUT_CAPACITY {
                self.buf.truncate(INITIAL_OUT_CAPACITY);
                self.buf.shrink_to_fit();
            }
        } else if entry.start + entry.len == self.end {
            self.end = entry.start;
        }
        true
    }

    /// Moves the live frames to the front of the buffer, dropping holes.
    fn compact(&mut self) {
        if self.live == self.end {
            return;
        }
        let mut to = 0;
        for e in self.entries.iter_mut() {
            if e.start != to {
                self.buf.copy_within(e.start..e.start + e.len, to);
                e.start = to;
            }
            to += e.len;
        }
        self.end = to;
    }

    /// The references of the frames kept, oldest first.
    pub fn references(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.iter().map(|e| e.reference)
    }

    /// Takes every frame kept, oldest first, as one run of whole frames,
    /// and empties the store (releasing its memory).
    pub fn take_all(&mut self) -> Vec<u8> {
        let mut all = Vec::with_capacity(self.live);
        for e in &self.entries {
            if let Some(frame) = self.buf.get(e.start..e.start + e.len) {
                all.extend_from_slice(frame);
            }
        }
        *self = Unacked::default();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize, fill: u8) -> Vec<u8> {
        vec![fill; n]
    }

    /// The frames `take_all` returns, split back by the test's fixed sizes.
    fn fills(all: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        for &n in sizes {
            let f = &all[at..at + n];
            assert!(f.iter().all(|&b| b == f[0]), "a frame was mixed up");
            out.push(f[0]);
            at += n;
        }
        assert_eq!(at, all.len());
        out
    }

    #[test]
    fn acks_remove_frames_and_the_rest_comes_back_oldest_first() {
        let mut u = Unacked::default();
        for i in 0..5u8 {
            u.push(u64::from(i) + 100, &frame(10, i), 1 << 20).unwrap();
        }
        assert_eq!((u.len(), u.bytes()), (5, 50));
        assert!(u.ack(101));
        assert!(u.ack(104));
        assert!(!u.ack(104), "acknowledged once");
        assert!(!u.ack(7), "unknown reference");
        assert_eq!((u.len(), u.bytes()), (3, 30));
        let all = u.take_all();
        assert_eq!(fills(&all, &[10, 10, 10]), [0, 2, 3]);
        assert!(u.is_empty());
        assert_eq!(u.capacity(), 0, "memory released");
    }

    #[test]
    fn the_limit_counts_live_bytes_only() {
        let limit = 100;
        let mut u = Unacked::default();
        for i in 0..10u8 {
            u.push(u64::from(i), &frame(10, i), limit).unwrap();
        }
        assert_eq!(u.push(99, &frame(1, 9), limit), Err(StoreFull));
        assert_eq!(u.len(), 10, "a refused frame is not kept");
        // The oldest stays unacknowledged (a slow callback); acks of the
        // others make room again: holes are compacted away.
        let mut refs: Vec<u64> = (1..10).collect();
        for round in 1..50u64 {
            for r in refs.drain(..) {
                assert!(u.ack(r));
            }
            for i in 1..10u64 {
                let r = round * 100 + i;
                u.push(r, &frame(10, 7), limit).unwrap();
                refs.push(r);
            }
            assert!(u.capacity() <= limit.max(INITIAL_OUT_CAPACITY));
        }
        assert_eq!(u.len(), 10);
        let all = u.take_all();
        assert_eq!(fills(&all, &[10; 10]), [0, 7, 7, 7, 7, 7, 7, 7, 7, 7]);
    }

    #[test]
    fn compaction_keeps_frames_intact_and_in_order() {
        let mut u = Unacked::default();
        let limit = 4 * INITIAL_OUT_CAPACITY;
        let n = 1000;
        let mut kept = Vec::new();
        let mut next = 0u64;
        // Keep every third frame, acknowledge the others, until the buffer
        // has been compacted several times.
        for _ in 0..20 {
            for _ in 0..n {
                let fill = (next % 251) as u8;
                u.push(next, &frame(40, fill), limit).unwrap();
                if next % 3 == 0 && kept.len() < 300 {
                    kept.push(fill);
                } else {
                    assert!(u.ack(next));
                }
                next += 1;
            }
        }
        assert_eq!(u.len(), kept.len());
        assert!(u.capacity() <= limit);
        let all = u.take_all();
        assert_eq!(fills(&all, &vec![40; kept.len()]), kept);
    }

    #[test]
    fn steady_state_does_not_grow() {
        let mut u = Unacked::default();
        for i in 0..10_000u64 {
            u.push(i, &frame(100, 1), 1 << 20).unwrap();
            if i >= 50 {
                assert!(u.ack(i - 50));
            }
        }
        assert_eq!(u.len(), 50);
        assert!(u.capacity() <= 2 * INITIAL_OUT_CAPACITY, "{}", u.capacity());
    }

    #[test]
    fn a_frame_larger_than_the_first_buffer_fits_within_the_limit() {
        let mut u = Unacked::default();
        let big = frame(3 * INITIAL_OUT_CAPACITY, 5);
        assert_eq!(u.push(1, &big, big.len() - 1), Err(StoreFull));
        u.push(1, &big, big.len()).unwrap();
        assert_eq!(u.take_all(), big);
    }
}
