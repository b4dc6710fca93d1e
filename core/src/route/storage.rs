//! Where a [`RoutingTable`](super::RoutingTable) keeps its registrations:
//! the [`RouteStorage`] the table works on, the simpler [`TableStorage`]
//! (slots of inline entries and two hash indexes) that hosted storages
//! implement, and the inline default, [`InlineStorage`]. The
//! pool-interning [`CompactStorage`](super::CompactStorage) for small
//! targets is in `compact`.

use core::fmt;

use heapless::FnvIndexMap;
use heapless::Vec;

use super::{Chain, Links, List, Registration, TableFull};
use crate::broker::ConnId;
use crate::ids::{AppId, NotificationId};

/// A registration with its identifiers inline, as a [`TableSlot`] holds it.
#[derive(Debug, Clone)]
struct Entry {
    conn: ConnId,
    to: AppId,
    notification: NotificationId,
    priority: i32,
    seq: u64,
    links: Links,
}

impl Entry {
    fn view(&self) -> Registration<'_> {
        Registration {
            conn: self.conn,
            to: &self.to,
            notification: &self.notification,
            priority: self.priority,
            seq: self.seq,
        }
    }
}

/// One slot of a [`TableStorage`]'s slab: a registration (identifiers
/// inline) and its chain links, or nothing. Opaque; storages only create
/// empty ones ([`TableSlot::EMPTY`]) and hand out slices of them.
#[derive(Debug, Clone, Default)]
pub struct TableSlot(Option<Entry>);

impl TableSlot {
    /// An unused slot.
    pub const EMPTY: TableSlot = TableSlot(None);
}

/// What a [`RoutingTable`](super::RoutingTable) needs of its storage: numbered slots holding a
/// registration and its [`Links`], and two maps from a 64-bit key hash to
/// the [`Chain`] holding the registrations with that hash. The table never
/// holds more than its `N` registrations, whatever the storage allows.
///
/// Every [`TableStorage`] is one (identifiers inline, in [`TableSlot`]s);
/// [`CompactStorage`](super::CompactStorage) is one that interns identifiers.
pub trait RouteStorage {
    /// Slots so far, used or not.
    fn slot_count(&self) -> usize;
    /// Appends one empty slot; [`TableFull`] when there is no room.
    fn add_slot(&mut self) -> Result<(), TableFull>;
    /// The registration in `slot` and its links; `None` for an empty or
    /// unknown slot.
    fn entry(&self, slot: u16) -> Option<(Registration<'_>, &Links)>;
    /// The links of the registration in `slot`, mutable.
    fn links_mut(&mut self, slot: u16) -> Option<&mut Links>;
    /// Stores a registration in `slot` (empty, below
    /// [`RouteStorage::slot_count`]) with [`Links::EMPTY`]; [`TableFull`]
    /// (and nothing stored) when its identifiers do not fit.
    fn put(
        &mut self,
        slot: u16,
        conn: ConnId,
        to: AppId,
        notification: NotificationId,
        priority: i32,
        seq: u64,
    ) -> Result<(), TableFull>;
    /// Changes the priority and sequence number of the registration in
    /// `slot`.
    fn set_rank(&mut self, slot: u16, priority: i32, seq: u64);
    /// Empties `slot`; false when it was empty.
    fn vacate(&mut self, slot: u16) -> bool;
    /// The chain stored under `hash` in index `list`.
    fn find_chain(&self, list: List, hash: u64) -> Option<&Chain>;
    /// The chain stored under `hash` in index `list`, mutable.
    fn find_chain_mut(&mut self, list: List, hash: u64) -> Option<&mut Chain>;
    /// Stores a new chain under `hash` in index `list` (there is none yet);
    /// [`TableFull`] when there is no room.
    fn add_chain(&mut self, list: List, hash: u64, chain: Chain) -> Result<(), TableFull>;
    /// Removes the chain under `hash` from index `list`, if any.
    fn drop_chain(&mut self, list: List, hash: u64);
}

/// A slab of [`TableSlot`]s (identifiers inline) and two chain maps, kept
/// however the implementer likes: a list of slots that grows one empty
/// slot at a time and never shrinks, and two maps from a 64-bit key hash
/// to a [`Chain`]. Every `TableStorage` is a [`RouteStorage`].
/// [`InlineStorage`] is the fixed-capacity default.
pub trait TableStorage {
    /// The slots so far.
    fn slots(&self) -> &[TableSlot];
    /// The slots so far, mutable.
    fn slots_mut(&mut self) -> &mut [TableSlot];
    /// Appends one [`TableSlot::EMPTY`]; [`TableFull`] when there is no room.
    fn grow(&mut self) -> Result<(), TableFull>;
    /// The chain stored under `hash` in index `list`.
    fn chain(&self, list: List, hash: u64) -> Option<&Chain>;
    /// The chain stored under `hash` in index `list`, mutable.
    fn chain_mut(&mut self, list: List, hash: u64) -> Option<&mut Chain>;
    /// Stores a new chain under `hash` in index `list` (there is none yet);
    /// [`TableFull`] when there is no room.
    fn insert_chain(&mut self, list: List, hash: u64, chain: Chain) -> Result<(), TableFull>;
    /// Removes the chain under `hash` from index `list`, if any.
    fn remove_chain(&mut self, list: List, hash: u64);
}

impl<S: TableStorage> RouteStorage for S {
    #[inline]
    fn slot_count(&self) -> usize {
        self.slots().len()
    }

    #[inline]
    fn add_slot(&mut self) -> Result<(), TableFull> {
        TableStorage::grow(self)
    }

    #[inline]
    fn entry(&self, slot: u16) -> Option<(Registration<'_>, &Links)> {
        let e = self.slots().get(usize::from(slot))?.0.as_ref()?;
        Some((e.view(), &e.links))
    }

    #[inline]
    fn links_mut(&mut self, slot: u16) -> Option<&mut Links> {
        let e = self.slots_mut().get_mut(usize::from(slot))?.0.as_mut()?;
        Some(&mut e.links)
    }

    fn put(
        &mut self,
        slot: u16,
        conn: ConnId,
        to: AppId,
        notification: NotificationId,
        priority: i32,
        seq: u64,
    ) -> Result<(), TableFull> {
        let s = self
            .slots_mut()
            .get_mut(usize::from(slot))
            .ok_or(TableFull)?;
        s.0 = Some(Entry {
            conn,
            to,
            notification,
            priority,
            seq,
            links: Links::EMPTY,
        });
        Ok(())
    }

    fn set_rank(&mut self, slot: u16, priority: i32, seq: u64) {
        if let Some(e) = self
            .slots_mut()
            .get_mut(usize::from(slot))
            .and_then(|s| s.0.as_mut())
        {
            e.priority = priority;
            e.seq = seq;
        }
    }

    fn vacate(&mut self, slot: u16) -> bool {
        self.slots_mut()
            .get_mut(usize::from(slot))
            .and_then(|s| s.0.take())
            .is_some()
    }

    #[inline]
    fn find_chain(&self, list: List, hash: u64) -> Option<&Chain> {
        TableStorage::chain(self, list, hash)
    }

    #[inline]
    fn find_chain_mut(&mut self, list: List, hash: u64) -> Option<&mut Chain> {
        TableStorage::chain_mut(self, list, hash)
    }

    fn add_chain(&mut self, list: List, hash: u64, chain: Chain) -> Result<(), TableFull> {
        TableStorage::insert_chain(self, list, hash, chain)
    }

    fn drop_chain(&mut self, list: List, hash: u64) {
        TableStorage::remove_chain(self, list, hash)
    }
}

/// The default storage: `N` slots and both indexes inline (about 240
/// bytes per registration of capacity on a 64-bit host), no allocator.
pub struct InlineStorage<const N: usize> {
    slots: Vec<TableSlot, N>,
    index: [FnvIndexMap<u64, Chain, N>; 2],
}

impl<const N: usize> InlineStorage<N> {
    /// Empty.
    pub const fn new() -> Self {
        InlineStorage {
            slots: Vec::new(),
            index: [FnvIndexMap::new(), FnvIndexMap::new()],
        }
    }
}

impl<const N: usize> Default for InlineStorage<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for InlineStorage<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineStorage")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl<const N: usize> TableStorage for InlineStorage<N> {
    fn slots(&self) -> &[TableSlot] {
        &self.slots
    }

    fn slots_mut(&mut self) -> &mut [TableSlot] {
        &mut self.slots
    }

    fn grow(&mut self) -> Result<(), TableFull> {
        self.slots.push(TableSlot::EMPTY).map_err(|_| TableFull)
    }

    fn chain(&self, list: List, hash: u64) -> Option<&Chain> {
        self.index[list as usize].get(&hash)
    }

    fn chain_mut(&mut self, list: List, hash: u64) -> Option<&mut Chain> {
        self.index[list as usize].get_mut(&hash)
    }

    fn insert_chain(&mut self, list: List, hash: u64, chain: Chain) -> Result<(), TableFull> {
        self.index[list as usize]
            .insert(hash, chain)
            .map(|_| ())
            .map_err(|_| TableFull)
    }

    fn remove_chain(&mut self, list: List, hash: u64) {
        self.index[list as usize].swap_remove(&hash);
    }
}
