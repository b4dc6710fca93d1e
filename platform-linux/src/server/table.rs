//! The routing table's storage on Linux: on the heap, grown as
//! registrations arrive.
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

use nfy_core::route::{Chain, List, TableFull, TableSlot, TableStorage};

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
