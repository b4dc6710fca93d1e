//! The broker's storages on Linux, on the heap and grown with use:
//! [`HeapStorage`] for the routing table, [`HeapConns`] for the connection
//! slots, [`HeapLedger`] for each connection's ledger (the unicasts kept
//! until acknowledged). An idle server holds almost nothing of the room
//! its capacities allow.
//!
//! # Routing table
//!
//! The core's default, [`InlineStorage`](nfy_core::route::InlineStorage),
//! holds all `N` registrations' slots and index entries inline (3.9 MB for
//! the Linux capacity of 16,384 registrations), and building it writes all
//! of it. [`HeapStorage`] starts empty and grows with use, so an idle
//! server holds almost nothing and a busy one what its registrations need.
//! Freed slots are reused and never given back, so memory follows the
//! high-water mark of registrations. Registering may allocate; routing a
//! notification never does (lookups only).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use nfy_core::broker::{ConnSlot, ConnStorage, LedgerEntry, LedgerStorage};
use nfy_core::route::{Chain, List, TableFull, TableSlot, TableStorage};

use super::out_queue::{INITIAL_OUT_CAPACITY, RETAINED_OUT_CAPACITY};

/// Routing-table data in heap collections: at most `N` slots.
#[derive(Debug, Default)]
pub struct HeapStorage<const N: usize> {
    slots: Vec<TableSlot>,
    index: [HashMap<u64, Chain, BuildHasherDefault<PreHashed>>; 2],
}

impl<const N: usize> TableStorage for HeapStorage<N> {
    fn slots(&self) -> &[TableSlot] {
        &self.slots
    }

    fn slots_mut(&mut self) -> &mut [TableSlot] {
        &mut self.slots
    }

    fn grow(&mut self) -> Result<(), TableFull> {
        if self.slots.len() >= N {
            return Err(TableFull);
        }
        if self.slots.len() == self.slots.capacity() {
            // Double (from 16), but never past N.
            let more = self.slots.len().max(16).min(N - self.slots.len());
            self.slots.try_reserve_exact(more).map_err(|_| TableFull)?;
        }
        self.slots.push(TableSlot::EMPTY);
        Ok(())
    }

    fn chain(&self, list: List, hash: u64) -> Option<&Chain> {
        self.index[list as usize].get(&hash)
    }

    fn chain_mut(&mut self, list: List, hash: u64) -> Option<&mut Chain> {
        self.index[list as usize].get_mut(&hash)
    }

    fn insert_chain(&mut self, list: List, hash: u64, chain: Chain) -> Result<(), TableFull> {
        let map = &mut self.index[list as usize];
        map.try_reserve(1).map_err(|_| TableFull)?;
        map.insert(hash, chain);
        Ok(())
    }

    fn remove_chain(&mut self, list: List, hash: u64) {
        self.index[list as usize].remove(&hash);
    }
}

/// The broker's connection slots on the heap, grown (by doubling) as
/// connections arrive: the broker's `CONNS` bounds them, and a slot freed
/// by a closed connection is reused, so memory follows the high-water mark
/// of connections open at once.
#[derive(Debug, Default)]
pub struct HeapConns {
    slots: Vec<ConnSlot<HeapLedger>>,
}

impl ConnStorage for HeapConns {
    type Ledger = HeapLedger;

    fn slots(&self) -> &[ConnSlot<HeapLedger>] {
        &self.slots
    }

    fn slots_mut(&mut self) -> &mut [ConnSlot<HeapLedger>] {
        &mut self.slots
    }

    fn push(&mut self, slot: ConnSlot<HeapLedger>) -> bool {
        if self.slots.try_reserve(1).is_err() {
            return false;
        }
        self.slots.push(slot);
        true
    }
}

/// A connection's ledger on the heap: empty until the connection is sent
/// its first unicast, grown as needed (up to `--max-queue` of kept
/// frames, which the broker enforces), and shrunk back once emptied after
/// a burst, like an output queue ([`RETAINED_OUT_CAPACITY`]). After the
/// warm-up nothing is allocated per message
/// (`platform-linux/tests/alloc.rs`).
#[derive(Debug, Default)]
pub struct HeapLedger {
    bytes: Vec<u8>,
    entries: Vec<LedgerEntry>,
}

impl LedgerStorage for HeapLedger {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    fn grow_bytes(&mut self, len: usize) -> usize {
        if len > self.bytes.len() && self.bytes.try_reserve_exact(len - self.bytes.len()).is_ok() {
            self.bytes.resize(len, 0);
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
        if len > self.entries.len()
            && self
                .entries
                .try_reserve_exact(len - self.entries.len())
                .is_ok()
        {
            self.entries.resize(len, LedgerEntry::default());
        }
        self.entries.len()
    }

    fn release(&mut self) {
        if self.bytes.len() > RETAINED_OUT_CAPACITY {
            self.bytes.truncate(INITIAL_OUT_CAPACITY);
            self.bytes.shrink_to_fit();
        }
    }
}

/// The index keys are already 64-bit FNV-1a hashes of the IDs: this hasher
/// only mixes their bits (a multiply and a fold, so the high bits the map
/// uses for its control bytes depend on every input bit) instead of
/// hashing them again with SipHash.
#[derive(Debug, Default, Clone, Copy)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        let h = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else in bytewise.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8)) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfy_core::route::model;
    use nfy_core::route::RoutingTable;
    use proptest::prelude::*;

    proptest! {
        /// The shipping storage against the core's reference model.
        #[test]
        fn heap_storage_matches_the_reference_model(ops in model::ops()) {
            model::check_against_model(
                RoutingTable::<{ model::CAP }, _>::with_storage(HeapStorage::<{ model::CAP }>::default()),
                ops,
            )?;
        }
    }

    /// A heap ledger keeps frames until they are acknowledged, in order,
    /// and gives a drained large buffer back.
    #[test]
    fn heap_ledger_keeps_frames_and_shrinks_after_a_burst() {
        use nfy_core::broker::ledger::WriteError;
        use nfy_core::broker::Ledger;
        let mut l = Ledger::<HeapLedger>::default();
        l.set_keep_frames(true);
        let frame = |n: usize, b: u8| {
            move |space: &mut [u8]| match space.get_mut(..n) {
                Some(dst) => {
                    dst.fill(b);
                    Ok(n)
                }
                None => Err(WriteError::NeedSpace),
            }
        };
        for r in 0..3000u64 {
            l.keep(r, 1 << 20, frame(200, (r % 250) as u8)).unwrap();
        }
        assert_eq!(l.live_bytes(), 600_000);
        assert!(l.forget(0));
        let first = l.frames().next().map(|(r, f)| (r, f[0]));
        assert_eq!(first, Some((1, 1)));
        for r in 1..3000u64 {
            assert!(l.forget(r));
        }
        assert!(l.is_empty());
        l.keep(5, 1 << 20, frame(10, 9)).unwrap();
        assert_eq!(l.frames().count(), 1);
    }

    #[test]
    fn slots_grow_to_the_capacity_and_no_further() {
        let mut s = HeapStorage::<40>::default();
        assert!(s.slots().is_empty());
        for i in 0..40 {
            assert_eq!(s.grow(), Ok(()), "slot {i}");
        }
        assert_eq!(s.slots().len(), 40);
        assert_eq!(s.grow(), Err(TableFull));
        assert_eq!(s.slots.capacity(), 40, "never reserves past N");
    }

    #[test]
    fn pre_hashed_keys_spread_over_the_high_bits() {
        // Sequential keys must not share their top 7 bits (hashbrown's
        // control byte) more than chance allows.
        let tops: std::collections::HashSet<u64> = (0..1000u64)
            .map(|k| {
                let mut h = PreHashed::default();
                h.write_u64(k);
                h.finish() >> 57
            })
            .collect();
        assert!(tops.len() > 100, "only {} distinct top bytes", tops.len());
    }
}
