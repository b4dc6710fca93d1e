//! What the broker remembers of the unicasts it sent a connection: its
//! *ledger*. One per connection, kept by the broker, in storage the
//! adapter chooses (as for the routing table).
//!
//! It serves two rules:
//!
//! - **Crash-safe delivery.** A connection whose `hello` turned
//!   acknowledgements on has every unicast sent to it kept here, as the
//!   encoded frame, until it acknowledges it. When the connection ends
//!   first, [`Broker::disconnect`](super::Broker::disconnect) routes every
//!   frame still kept again (oldest first), so each goes to the next
//!   receiver or back to its sender as a unicast error. The kept bytes
//!   never exceed [`Limits::max_queue`](super::Limits::max_queue), and
//!   count as backlog for flow control (a receiver whose callbacks lag
//!   holds its senders back like one that reads slowly).
//! - **Returned unicasts.** A notify carrying a reference is a unicast
//!   *returned* by its receiver (spec 3, the unregister race) only when
//!   this connection was sent that reference and has not acknowledged it:
//!   for an acknowledging connection, a reference kept here; for the
//!   others, one of the last [`RECENT_UNICASTS`] references sent to it
//!   (the ledger then keeps references only). Any other reference is
//!   forged or stale, and the notify is treated as new. There is no
//!   default that trusts every reference: the check is the broker's own.
//!
//! # Storage
//!
//! [`LedgerStorage`] hands out two growable areas: bytes (the kept frames,
//! appended at the end; an acknowledged frame leaves a hole, reclaimed when
//! the area is full by moving the live frames down, or at once when the
//! ledger empties or the frame was the newest) and entries (a ring of
//! (reference, offset, length), oldest first; an ack removes its entry,
//! searched from the oldest, where acks usually land). [`InlineLedger`]
//! keeps both inline with fixed capacities (no allocator); a hosted adapter
//! passes a storage that grows on the heap (the Linux server's
//! `HeapLedger`). After the warm-up nothing is allocated per message.

/// References remembered per connection without acknowledgements, for
/// telling a returned unicast (sent back unchanged because its
/// registration was just removed, moments after it was sent) from a
/// forged reference. Older references sent back are new notifications.
pub const RECENT_UNICASTS: usize = 64;

/// Smallest growth step of the byte area.
const MIN_BYTES: usize = 4 * 1024;
/// Smallest growth step of the entry ring.
const MIN_ENTRIES: usize = 16;

/// One unicast in a ledger: its reference, and where its frame is kept
/// (an empty range when only the reference is kept: a connection without
/// acknowledgements, or a unicast acknowledged ahead of the input before
/// it, [`Ledger::acknowledge_early`]). Opaque; storages only create
/// default ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The reference in two halves (low, high): 12 bytes an entry instead
    /// of 16 (a `u64` aligns the entry to 8), which is a third of a
    /// reference-only ledger.
    reference: [u32; 2],
    start: u32,
    len: u32,
}

impl LedgerEntry {
    fn new(reference: u64, start: u32, len: u32) -> LedgerEntry {
        // Truncation intended: the halves.
        #[allow(clippy::cast_possible_truncation)]
        let halves = [reference as u32, (reference >> 32) as u32];
        LedgerEntry {
            reference: halves,
            start,
            len,
        }
    }

    fn reference(&self) -> u64 {
        u64::from(self.reference[0]) | (u64::from(self.reference[1]) << 32)
    }

    fn range(&self) -> core::ops::Range<usize> {
        let start = self.start as usize;
        start..start + self.len as usize
    }
}

/// Where a [`Ledger`] keeps its data: a byte area and an entry area, each
/// a slice that grows on request and never shrinks except through
/// [`LedgerStorage::release`].
pub trait LedgerStorage: Default {
    /// Whether the storage can keep frames at all. A storage that cannot
    /// (no byte area) makes the broker decline acknowledgements: a `hello`
    /// asking for them is taken as one without, and the adapter is told
    /// ([`Event::Hello`](super::Event::Hello) says `acks: false`).
    const KEEPS_FRAMES: bool = true;
    /// The byte area.
    fn bytes(&self) -> &[u8];
    /// The byte area, mutable.
    fn bytes_mut(&mut self) -> &mut [u8];
    /// Makes the byte area as close to `len` bytes long as it can (new
    /// bytes are zero; it never shrinks here); returns its length.
    fn grow_bytes(&mut self, len: usize) -> usize;
    /// The entry area.
    fn entries(&self) -> &[LedgerEntry];
    /// The entry area, mutable.
    fn entries_mut(&mut self) -> &mut [LedgerEntry];
    /// Makes the entry area as close to `len` entries long as it can;
    /// returns its length.
    fn grow_entries(&mut self, len: usize) -> usize;
    /// Called when the ledger holds nothing: the storage may give memory
    /// back (both areas' contents are dead). The default keeps it.
    fn release(&mut self) {}
}

/// A ledger storage with fixed capacities, inline: `BYTES` bytes of kept
/// frames and `ENTRIES` entries. With `BYTES == 0` it keeps references only
/// ([`LedgerStorage::KEEPS_FRAMES`] is false).
#[derive(Debug, Clone)]
pub struct InlineLedger<const BYTES: usize, const ENTRIES: usize> {
    bytes: heapless::Vec<u8, BYTES>,
    entries: heapless::Vec<LedgerEntry, ENTRIES>,
}

impl<const BYTES: usize, const ENTRIES: usize> Default for InlineLedger<BYTES, ENTRIES> {
    fn default() -> Self {
        InlineLedger {
            bytes: heapless::Vec::new(),
            entries: heapless::Vec::new(),
        }
    }
}

impl<const BYTES: usize, const ENTRIES: usize> LedgerStorage for InlineLedger<BYTES, ENTRIES> {
    const KEEPS_FRAMES: bool = BYTES > 0;

    fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    fn grow_bytes(&mut self, len: usize) -> usize {
        if len > self.bytes.len() {
            let _ = self.bytes.resize(len.min(BYTES), 0);
        }
        self.bytes.len()
    }

    fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }

    fn entries_mut(&mut self) -> &mut [LedgerEntry] {
        &mut self.entries
    }

    fn grow_entries(&mut self, len: usize) -> usize {
        if len > self.entries.len() {
            let _ = self
                .entries
                .resize(len.min(ENTRIES), LedgerEntry::default());
        }
        self.entries.len()
    }
}

/// Why a frame could not be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepError {
    /// The kept frames would exceed the limit, or the storage has no room.
    Full,
    /// The frame writer could not write the frame at all.
    Unwritable,
}

/// What a frame writer needs (see [`Ledger::keep`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// More space than it was given.
    NeedSpace,
    /// It cannot write this frame at all.
    Unwritable,
}

/// One connection's ledger. See the module docs.
#[derive(Debug, Default)]
pub struct Ledger<L> {
    storage: L,
    /// Frames are kept (the connection acknowledges); otherwise only the
    /// last [`RECENT_UNICASTS`] references.
    frames: bool,
    /// First entry of the ring.
    head: usize,
    /// Entries in the ring.
    count: usize,
    /// End of the used part of the byte area (live frames and holes).
    end: usize,
    /// Bytes of live frames.
    live: usize,
    /// The entry area did not grow when asked: it is at its largest.
    entries_at_most: bool,
}

impl<L: LedgerStorage> Ledger<L> {
    /// True when the connection's frames are kept (it acknowledges).
    pub fn keeps_frames(&self) -> bool {
        self.frames
    }

    /// Switches between keeping frames (`true`: the connection
    /// acknowledges) and keeping references only; returns how many kept
    /// frames were forgotten (turning acknowledgements off).
    /// Asking for the mode already in force changes nothing (a second
    /// `hello` must not forget what is kept).
    pub fn set_keep_frames(&mut self, on: bool) -> usize {
        let frames = on && L::KEEPS_FRAMES;
        if frames == self.frames {
            return 0;
        }
        let forgotten = if self.frames { self.count } else { 0 };
        self.clear();
        self.frames = frames;
        forgotten
    }

    /// Forgets everything and keeps references only: a new connection's
    /// ledger.
    pub fn reset(&mut self) {
        self.clear();
        self.frames = false;
    }

    /// Unicasts remembered.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the frames kept (0 without acknowledgements).
    pub fn live_bytes(&self) -> usize {
        self.live
    }

    /// Forgets everything (the storage may give memory back).
    pub fn clear(&mut self) {
        self.head = 0;
        self.count = 0;
        self.end = 0;
        self.live = 0;
        self.storage.release();
    }

    /// The entry at ring position `i` (0 = oldest).
    fn entry(&self, i: usize) -> Option<&LedgerEntry> {
        if i >= self.count {
            return None;
        }
        let entries = self.storage.entries();
        entries.get(wrap(self.head + i, entries.len()))
    }

    /// The ring position of `reference`. Searched from the oldest, where
    /// acknowledgements usually land: the two halves of the ring as
    /// slices, without an index computation per entry.
    fn position(&self, reference: u64) -> Option<usize> {
        let entries = self.storage.entries();
        let cap = entries.len();
        let end = self.head + self.count;
        let first = entries.get(self.head..end.min(cap)).unwrap_or_default();
        let second = entries.get(..end.saturating_sub(cap)).unwrap_or_default();
        first
            .iter()
            .chain(second)
            .position(|e| e.reference() == reference)
    }

    /// True when `reference` was sent to this connection and is
    /// remembered (not acknowledged, not returned, not too old).
    pub fn contains(&self, reference: u64) -> bool {
        self.position(reference).is_some()
    }

    /// Appends an entry; with a full ring, grows it, or (references only)
    /// forgets the oldest. False when there is no room.
    fn push_entry(&mut self, entry: LedgerEntry) -> bool {
        let cap = self.storage.entries().len();
        if self.count == cap {
            let limit = if self.frames {
                usize::MAX
            } else {
                RECENT_UNICASTS
            };
            let want = cap.saturating_mul(2).max(MIN_ENTRIES).min(limit);
            if want <= cap || self.entries_at_most || !self.grow_ring(want) {
                if self.frames || self.count == 0 {
                    return false;
                }
                // References only: the oldest makes room.
                self.remove_at(0);
            }
        }
        let cap = self.storage.entries().len();
        if cap == 0 {
            return false;
        }
        let at = wrap(self.head + self.count, cap);
        match self.storage.entries_mut().get_mut(at) {
            Some(slot) => {
                *slot = entry;
                self.count += 1;
                true
            }
            None => false,
        }
    }

    /// Grows the ring towards `want` entries, keeping its order; true
    /// when it grew.
    fn grow_ring(&mut self, want: usize) -> bool {
        let cap = self.storage.entries().len();
        // Unwrap the ring first: the entries from `head` on move to the
        // front, so new room lands after the newest entry.
        if let Some(used) = self.storage.entries_mut().get_mut(..cap) {
            used.rotate_left(self.head.min(cap));
        }
        self.head = 0;
        let grew = self.storage.grow_entries(want) > cap;
        self.entries_at_most = !grew;
        grew
    }

    /// Removes the entry at ring position `i`, moving the older ones up
    /// (acks land near the oldest, so little moves).
    fn remove_at(&mut self, i: usize) -> Option<LedgerEntry> {
        let cap = self.storage.entries().len();
        if i >= self.count || cap == 0 {
            return None;
        }
        let removed = *self.entry(i)?;
        let entries = self.storage.entries_mut();
        for k in (0..i).rev() {
            let from = wrap(self.head + k, cap);
            let to = wrap(self.head + k + 1, cap);
            if let Some(e) = entries.get(from).copied() {
                if let Some(slot) = entries.get_mut(to) {
                    *slot = e;
                }
            }
        }
        self.head = wrap(self.head + 1, cap);
        self.count -= 1;
        Some(removed)
    }

    /// Remembers the reference of a unicast sent without keeping its frame
    /// (a connection that does not acknowledge): the last
    /// [`RECENT_UNICASTS`] are kept.
    pub fn remember(&mut self, reference: u64) {
        if !self.frames {
            let _ = self.push_entry(LedgerEntry::new(reference, 0, 0));
        }
    }

    /// Keeps a frame until `reference` is acknowledged: `write` gets free
    /// space at the end of the byte area and returns the frame's length
    /// (or asks for more). The frames kept never exceed `limit` bytes.
    /// Returns the frame as kept.
    pub fn keep(
        &mut self,
        reference: u64,
        limit: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, WriteError>,
    ) -> Result<&[u8], KeepError> {
        let room = limit.saturating_sub(self.live);
        loop {
            let end = self.end;
            let free = self.storage.bytes_mut().get_mut(end..).unwrap_or_default();
            let capacity = free.len().min(room);
            let space = free.get_mut(..capacity).unwrap_or_default();
            match write(space) {
                Ok(n) if n <= capacity => {
                    let (Ok(start), Ok(len)) = (u32::try_from(end), u32::try_from(n)) else {
                        return Err(KeepError::Full);
                    };
                    if !self.push_entry(LedgerEntry::new(reference, start, len)) {
                        return Err(KeepError::Full);
                    }
                    self.end += n;
                    self.live += n;
                    return Ok(self.storage.bytes().get(end..end + n).unwrap_or_default());
                }
                Ok(_) | Err(WriteError::NeedSpace) => {
                    let want = capacity.saturating_mul(2).max(MIN_BYTES).min(room);
                    if capacity >= room || !self.make_room(want, limit) {
                        return Err(KeepError::Full);
                    }
                }
                Err(WriteError::Unwritable) => return Err(KeepError::Unwritable),
            }
        }
    }

    /// Takes back the newest frame kept (one [`Ledger::keep`] just kept
    /// that could not be sent after all).
    pub fn retract_newest(&mut self) {
        if self.count == 0 || !self.frames {
            return;
        }
        if let Some(e) = self.remove_newest() {
            self.live -= e.len as usize;
            self.end = e.start as usize;
            if self.count == 0 {
                self.clear();
            }
        }
    }

    fn remove_newest(&mut self) -> Option<LedgerEntry> {
        let e = *self.entry(self.count.checked_sub(1)?)?;
        self.count -= 1;
        Some(e)
    }

    /// Makes more free space after `end`, towards `want` bytes, with the
    /// byte area no larger than `limit` (or the live frames plus `want`);
    /// true when the free space grew.
    fn make_room(&mut self, want: usize, limit: usize) -> bool {
        let before = self.storage.bytes().len() - self.end;
        self.compact();
        let have = self.storage.bytes().len();
        if have - self.end < want {
            let target = (self.end + want)
                .max(have.saturating_mul(2))
                .min(limit.max(self.end + want));
            self.storage.grow_bytes(target);
        }
        self.storage.bytes().len() - self.end > before
    }

    /// Moves the live frames to the front of the byte area, dropping holes.
    fn compact(&mut self) {
        if self.live == self.end {
            return;
        }
        let cap = self.storage.entries().len();
        let mut to = 0usize;
        for i in 0..self.count {
            let at = wrap(self.head + i, cap);
            let Some(e) = self.storage.entries().get(at).copied() else {
                continue;
            };
            let range = e.range();
            if range.start != to {
                self.storage.bytes_mut().copy_within(range.clone(), to);
                if let (Some(slot), Ok(start)) =
                    (self.storage.entries_mut().get_mut(at), u32::try_from(to))
                {
                    slot.start = start;
                }
            }
            to += range.len();
        }
        self.end = to;
    }

    /// Takes an acknowledgement read ahead of the input before it (the
    /// connection is paused, its input held): the frame is released (its
    /// bytes no longer count, and it is not routed again if the connection
    /// ends), the reference kept until the acknowledgement is handled in
    /// order ([`Ledger::forget`]), so a unicast returned in that input is
    /// still recognised. False when no frame with this reference is kept.
    pub fn acknowledge_early(&mut self, reference: u64) -> bool {
        if !self.frames {
            return false;
        }
        let cap = self.storage.entries().len();
        let found = (0..self.count).find(|&i| {
            self.entry(i)
                .is_some_and(|e| e.reference() == reference && e.len > 0)
        });
        let Some(i) = found else {
            return false;
        };
        let at = wrap(self.head + i, cap);
        let Some(e) = self.storage.entries_mut().get_mut(at) else {
            return false;
        };
        let range = e.range();
        e.len = 0;
        self.live -= range.len();
        if range.end == self.end {
            self.end = range.start;
        }
        true
    }

    /// Forgets the unicast with this reference (acknowledged, or returned
    /// by its receiver); false when it was not remembered.
    pub fn forget(&mut self, reference: u64) -> bool {
        let Some(i) = self.position(reference) else {
            return false;
        };
        let Some(e) = self.remove_at(i) else {
            return false;
        };
        if self.frames {
            self.live -= e.len as usize;
            if self.count == 0 {
                self.clear();
            } else if e.range().end == self.end {
                self.end = e.start as usize;
            }
        }
        true
    }

    /// The frames kept (not acknowledged, even early), oldest first, with
    /// their references.
    pub fn frames(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        (0..self.count).filter_map(move |i| {
            let e = self.entry(i).filter(|e| self.frames && e.len > 0)?;
            Some((e.reference(), self.storage.bytes().get(e.range())?))
        })
    }
}

/// `i` wrapped into a ring of `cap` entries (`i < 2 cap`): a subtraction,
/// not a division.
fn wrap(i: usize, cap: usize) -> usize {
    if i >= cap {
        i - cap
    } else {
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    type Big = Ledger<InlineLedger<{ 64 * 1024 }, 4096>>;

    /// A writer of `n` bytes of `fill`.
    fn fill(n: usize, b: u8) -> impl FnMut(&mut [u8]) -> Result<usize, WriteError> {
        move |space: &mut [u8]| match space.get_mut(..n) {
            Some(dst) => {
                dst.fill(b);
                Ok(n)
            }
            None => Err(WriteError::NeedSpace),
        }
    }

    fn kept(l: &Big) -> Vec<(u64, usize, u8)> {
        l.frames().map(|(r, f)| (r, f.len(), f[0])).collect()
    }

    fn acking() -> Big {
        let mut l = Big::default();
        l.set_keep_frames(true);
        l
    }

    #[test]
    fn acks_remove_frames_and_the_rest_comes_back_oldest_first() {
        let mut l = acking();
        for i in 0..5u8 {
            let f = l.keep(100 + u64::from(i), 1 << 20, fill(10, i)).unwrap();
            assert_eq!(f, [i; 10]);
        }
        assert_eq!((l.len(), l.live_bytes()), (5, 50));
        assert!(l.forget(101));
        assert!(l.forget(104));
        assert!(!l.forget(104), "acknowledged once");
        assert!(!l.forget(7), "unknown reference");
        assert!(l.contains(100) && !l.contains(101));
        assert_eq!(kept(&l), [(100, 10, 0), (102, 10, 2), (103, 10, 3)]);
        assert_eq!(l.live_bytes(), 30);
    }

    #[test]
    fn the_limit_counts_live_bytes_and_holes_are_compacted() {
        let limit = 100;
        let mut l = acking();
        for i in 0..10u8 {
            l.keep(u64::from(i), limit, fill(10, i)).unwrap();
        }
        assert_eq!(l.keep(99, limit, fill(1, 9)), Err(KeepError::Full));
        assert_eq!(l.len(), 10, "a refused frame is not kept");
        // The oldest stays unacknowledged; acks of the others make room.
        let mut refs: Vec<u64> = (1..10).collect();
        for round in 1..50u64 {
            for r in refs.drain(..) {
                assert!(l.forget(r));
            }
            for i in 1..10u64 {
                let r = round * 100 + i;
                l.keep(r, limit, fill(10, 7)).unwrap();
                refs.push(r);
            }
            assert!(l.storage.bytes().len() <= MIN_BYTES.max(limit));
        }
        let got: Vec<u8> = kept(&l).iter().map(|k| k.2).collect();
        assert_eq!(got, [0, 7, 7, 7, 7, 7, 7, 7, 7, 7]);
    }

    #[test]
    fn compaction_and_ring_growth_keep_frames_intact_and_in_order() {
        let mut l = acking();
        let mut want = Vec::new();
        let mut next = 0u64;
        for _ in 0..20 {
            for _ in 0..1000 {
                let b = (next % 251) as u8;
                l.keep(next, 60 * 1024, fill(40, b)).unwrap();
                if next % 3 == 0 && want.len() < 300 {
                    want.push((next, 40, b));
                } else {
                    assert!(l.forget(next));
                }
                next += 1;
            }
        }
        assert_eq!(kept(&l), want);
    }

    #[test]
    fn an_early_acknowledgement_releases_the_frame_and_keeps_the_reference() {
        let mut l = acking();
        for r in 1..=3u64 {
            l.keep(r, 1000, fill(10, r as u8)).unwrap();
        }
        assert!(l.acknowledge_early(2));
        assert!(!l.acknowledge_early(2), "once");
        assert!(l.acknowledge_early(3));
        assert_eq!(l.live_bytes(), 10);
        assert!(l.contains(2), "a returned unicast is still recognised");
        assert_eq!(kept(&l), [(1, 10, 1)], "not routed again");
        // The acknowledgement, handled in order, forgets it.
        assert!(l.forget(2));
        assert!(!l.contains(2));
        l.keep(4, 1000, fill(10, 4)).unwrap();
        assert_eq!(kept(&l), [(1, 10, 1), (4, 10, 4)]);
        assert_eq!(l.live_bytes(), 20);
    }

    #[test]
    fn a_retracted_frame_is_gone_and_its_room_reused() {
        let mut l = acking();
        l.keep(1, 1000, fill(10, 1)).unwrap();
        l.keep(2, 1000, fill(10, 2)).unwrap();
        l.retract_newest();
        assert_eq!(kept(&l), [(1, 10, 1)]);
        l.keep(3, 1000, fill(10, 3)).unwrap();
        assert_eq!(kept(&l), [(1, 10, 1), (3, 10, 3)]);
        assert_eq!(l.live_bytes(), 20);
    }

    #[test]
    fn without_acks_only_the_recent_references_are_remembered() {
        let mut l = Big::default();
        for r in 0..200u64 {
            l.remember(r);
        }
        assert_eq!(l.len(), RECENT_UNICASTS);
        assert!(!l.contains(200 - RECENT_UNICASTS as u64 - 1));
        assert!(l.contains(200 - RECENT_UNICASTS as u64));
        assert!(l.contains(199));
        assert_eq!(l.live_bytes(), 0);
        assert_eq!(l.frames().count(), 0);
        // Returned once: forgotten.
        assert!(l.forget(150));
        assert!(!l.contains(150));
    }

    #[test]
    fn turning_acks_off_forgets_the_frames_and_says_how_many() {
        let mut l = acking();
        l.keep(1, 1000, fill(10, 1)).unwrap();
        l.keep(2, 1000, fill(10, 2)).unwrap();
        assert_eq!(l.set_keep_frames(true), 0, "already on: nothing changes");
        assert_eq!(l.frames().count(), 2);
        assert_eq!(l.set_keep_frames(false), 2);
        assert!(l.is_empty() && !l.keeps_frames());
        // A storage without a byte area cannot keep frames.
        let mut refs = Ledger::<InlineLedger<0, 8>>::default();
        refs.set_keep_frames(true);
        assert!(!refs.keeps_frames());
    }

    #[test]
    fn a_small_storage_refuses_what_does_not_fit() {
        let mut l = Ledger::<InlineLedger<32, 2>>::default();
        l.set_keep_frames(true);
        l.keep(1, 1000, fill(20, 1)).unwrap();
        assert_eq!(l.keep(2, 1000, fill(20, 2)), Err(KeepError::Full));
        l.keep(3, 1000, fill(12, 3)).unwrap();
        assert_eq!(
            l.keep(4, 1000, fill(1, 4)),
            Err(KeepError::Full),
            "no entry left"
        );
        assert!(l.forget(1));
        l.keep(5, 1000, fill(20, 5)).unwrap();
        let got: Vec<(u64, usize)> = l.frames().map(|(r, f)| (r, f.len())).collect();
        assert_eq!(got, [(3, 12), (5, 20)]);
    }
}
