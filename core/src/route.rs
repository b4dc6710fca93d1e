//! The routing table (spec section 2): registrations and receiver selection.
//!
//! A registration is keyed by (connection, receiver app ID, notification ID)
//! and carries a priority and a sequence number that grows with every
//! register call, so "most recent" is well defined.
//!
//! Storage is a slab of at most `N` entries, threaded on two doubly linked
//! chains per entry:
//!
//! - the *notification chain*: every registration for one notification ID
//!   (used by `"1"` and `"*"`);
//! - the *receiver chain*: every registration for one (receiver app ID,
//!   notification ID) pair, across connections (used by unicast to an app,
//!   and to find a registration by its key).
//!
//! Both chains are kept sorted best first: highest priority, then most
//! recent. Selecting the receiver of a unicast is therefore the first
//! allowed entry of one chain, and unrelated registrations cost nothing but
//! a hash probe. The chains are found through two FNV index maps keyed by a
//! 64-bit hash of the notification ID, respectively of the pair (entries are
//! still compared by their strings, so a hash collision only lengthens a
//! chain, never confuses two keys).
//!
//! `N` must be a power of two (the index maps are `heapless` FNV index maps)
//! and at most 32768.
//!
//! The slab and the index maps live in a [`TableStorage`] chosen by the
//! adapter, the way smoltcp lets its caller supply socket buffers: by
//! default [`InlineStorage`], `heapless` collections of capacity `N`
//! (embedded targets: sized at build time, no allocator), while a hosted
//! adapter can pass a storage that grows on the heap, so that unused
//! capacity costs no memory (about 240 bytes per registration of capacity
//! inline: 16,384 of them are 3.9 MB).
//!
//! Selection rules ([`RoutingTable::route`]):
//! - `"*"`: every allowed candidate, best first.
//! - an app ID or `"1"`: the allowed candidate with the highest priority;
//!   **Decision** (spec 2.2): ties go to the most recent registration.
//! - no allowed candidate for a unicast: a unicast error is owed.

use core::fmt;

use heapless::FnvIndexMap;
use heapless::Vec;

use crate::broker::ConnId;
use crate::ids::{AppId, Destination, NotificationId};

/// One registration as the table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The connection holding it.
    pub conn: ConnId,
    /// The receiver app ID.
    pub to: AppId,
    /// The notification ID.
    pub notification: NotificationId,
    /// Larger wins.
    pub priority: i32,
    /// Registration order: larger is more recent.
    pub seq: u64,
}

impl Registration {
    /// Where it stands in the choice of a unicast's receiver; the chains
    /// are sorted by it, best first.
    pub fn rank(&self) -> Rank {
        Rank::new(self.priority, self.seq)
    }
}

/// The selection rule of spec 2.2 as a value: of two registrations, the
/// one with the larger `Rank` receives a unicast (`X` or `"1"`): the higher
/// priority, and on a tie the more recent (larger registration sequence
/// number). **Decision** (spec 2.2): ties go to the most recent.
///
/// The routing table keeps its chains sorted by it; a client library that
/// repeats the choice among its own registrations (to run the callback the
/// server picked) uses the same type, so the two can never disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rank {
    // Field order is the comparison order (derived `Ord`).
    priority: i32,
    seq: u64,
}

impl Rank {
    /// The rank of a registration with this priority and sequence number.
    pub const fn new(priority: i32, seq: u64) -> Self {
        Rank { priority, seq }
    }
}

/// The item of `items` that receives a unicast: the one whose `rank` is
/// largest (spec 2.2, see [`Rank`]); `None` when there is none.
pub fn best<T>(items: impl IntoIterator<Item = T>, rank: impl Fn(&T) -> Rank) -> Option<T> {
    items.into_iter().max_by_key(|item| rank(item))
}

/// The table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

impl fmt::Display for TableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("routing table is full")
    }
}

impl core::error::Error for TableFull {}

/// What [`RoutingTable::register`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new registration was added.
    Added,
    /// An existing registration with the same key was replaced.
    Replaced,
}

type Slot = u16;

/// Which chain index: by notification ID, or by (receiver, notification
/// ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// Chains of every registration for one notification ID.
    ById = 0,
    /// Chains of every registration for one (receiver, notification ID).
    ByKey = 1,
}

#[derive(Debug, Clone, Copy, Default)]
struct Link {
    prev: Option<Slot>,
    next: Option<Slot>,
}

#[derive(Debug, Clone)]
struct Entry {
    reg: Registration,
    links: [Link; 2],
}

/// One slot of a routing table's slab: a registration and its chain links,
/// or nothing. Opaque; storages only create empty ones
/// ([`TableSlot::EMPTY`]) and hand out slices of them.
#[derive(Debug, Clone, Default)]
pub struct TableSlot(Option<Entry>);

impl TableSlot {
    /// An unused slot.
    pub const EMPTY: TableSlot = TableSlot(None);
}

/// Where a [`RoutingTable`] keeps its data: the slots, a list that grows
/// one empty slot at a time and never shrinks, and two maps from a 64-bit
/// key hash to the [`Chain`] holding the registrations with that hash. The
/// table never holds more than its `N` registrations, whatever the storage
/// allows. [`InlineStorage`] is the fixed-capacity default.
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

/// The default storage: `N` slots and both indexes inline (about 240
/// bytes per registration of capacity), no allocator.
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

/// The two ends of one chain (opaque).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    head: Slot,
    tail: Slot,
}

/// FNV-1a, 64 bits.
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn hash_id(notification: &str) -> u64 {
    fnv(FNV_OFFSET, notification.as_bytes())
}

fn hash_key(to: &str, notification: &str) -> u64 {
    // 0xff never occurs in UTF-8, so the pair is unambiguous.
    fnv(
        fnv(fnv(FNV_OFFSET, to.as_bytes()), &[0xff]),
        notification.as_bytes(),
    )
}

/// Registrations with fixed capacity `N` (a power of two, at most 32768),
/// their slots kept in `S` (inline by default; see [`TableStorage`]).
pub struct RoutingTable<const N: usize, S = InlineStorage<N>> {
    entries: S,
    free: Vec<Slot, N>,
    seq: u64,
    len: usize,
}

impl<const N: usize, S: TableStorage + Default> Default for RoutingTable<N, S> {
    fn default() -> Self {
        Self::with_storage(S::default())
    }
}

impl<const N: usize, S> fmt::Debug for RoutingTable<N, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutingTable")
            .field("len", &self.len)
            .field("capacity", &N)
            .finish()
    }
}

impl<const N: usize> RoutingTable<N> {
    /// An empty table with its `N` slots inline.
    pub const fn new() -> Self {
        Self::with_storage(InlineStorage::new())
    }
}

impl<const N: usize, S: TableStorage> RoutingTable<N, S> {
    const CHECK: () = assert!(N <= 1 << 15, "RoutingTable capacity must fit a u16 slot");

    /// An empty table keeping its slots in `storage`, which should be
    /// empty (slots already in it are treated as free).
    pub const fn with_storage(storage: S) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        RoutingTable {
            entries: storage,
            free: Vec::new(),
            seq: 0,
            len: 0,
        }
    }

    /// Registrations held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no registration is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    fn entry(&self, slot: Slot) -> Option<&Entry> {
        entry(self.entries.slots(), slot)
    }

    fn entry_mut(&mut self, slot: Slot) -> Option<&mut Entry> {
        self.slot_mut(slot).and_then(Option::as_mut)
    }

    fn slot_mut(&mut self, slot: Slot) -> Option<&mut Option<Entry>> {
        self.entries
            .slots_mut()
            .get_mut(usize::from(slot))
            .map(|s| &mut s.0)
    }

    /// Gives a slot back: empties it and lists it as free.
    fn release(&mut self, slot: Slot) -> Option<Entry> {
        let e = self.slot_mut(slot)?.take();
        // Slots are below N and each is freed once, so `free` has room.
        let _ = self.free.push(slot);
        e
    }

    fn head(&self, list: List, hash: u64) -> Option<Slot> {
        self.entries.chain(list, hash).map(|c| c.head)
    }

    /// Walks one chain from `head`.
    fn walk(&self, list: List, head: Option<Slot>) -> Walk<'_> {
        Walk {
            slots: self.entries.slots(),
            list,
            next: head,
        }
    }

    /// The slot holding (conn, to, notification), if any.
    fn find(&self, conn: ConnId, to: &str, notification: &str) -> Option<Slot> {
        let head = self.head(List::ByKey, hash_key(to, notification));
        self.walk(List::ByKey, head)
            .find(|(_, r)| {
                r.conn == conn && r.to.as_str() == to && r.notification.as_str() == notification
            })
            .map(|(slot, _)| slot)
    }

    /// The registration for this key, if any.
    pub fn get(&self, conn: ConnId, to: &str, notification: &str) -> Option<&Registration> {
        self.find(conn, to, notification)
            .and_then(|s| self.entry(s))
            .map(|e| &e.reg)
    }

    /// Links `slot` (already stored) into chain `list` under `hash`, before
    /// the first entry that ranks below it.
    fn link(&mut self, list: List, hash: u64, slot: Slot) -> Result<(), TableFull> {
        let li = list as usize;
        let rank = self.entry(slot).ok_or(TableFull)?.reg.rank();
        let head = self.head(list, hash);
        let before = self
            .walk(list, head)
            .find(|(_, r)| r.rank() < rank)
            .map(|(s, _)| s);
        let prev = match before {
            Some(b) => self.entry(b).and_then(|e| e.links[li].prev),
            None => self.entries.chain(list, hash).map(|c| c.tail),
        };
        if head.is_none() {
            self.entries.insert_chain(
                list,
                hash,
                Chain {
                    head: slot,
                    tail: slot,
                },
            )?;
        }
        if let Some(e) = self.entry_mut(slot) {
            e.links[li] = Link { prev, next: before };
        }
        match prev {
            Some(p) => {
                if let Some(e) = self.entry_mut(p) {
                    e.links[li].next = Some(slot);
                }
            }
            None => {
                if let Some(c) = self.entries.chain_mut(list, hash) {
                    c.head = slot;
                }
            }
        }
        match before {
            Some(b) => {
                if let Some(e) = self.entry_mut(b) {
                    e.links[li].prev = Some(slot);
                }
            }
            None => {
                if let Some(c) = self.entries.chain_mut(list, hash) {
                    c.tail = slot;
                }
            }
        }
        Ok(())
    }

    /// Unlinks `slot` from chain `list` under `hash`.
    fn unlink(&mut self, list: List, hash: u64, slot: Slot) {
        let li = list as usize;
        let Some(link) = self.entry(slot).map(|e| e.links[li]) else {
            return;
        };
        match link.prev {
            Some(p) => {
                if let Some(e) = self.entry_mut(p) {
                    e.links[li].next = link.next;
                }
            }
            None => {
                if let Some(c) = self.entries.chain_mut(list, hash) {
                    if let Some(n) = link.next {
                        c.head = n;
                    }
                }
            }
        }
        match link.next {
            Some(n) => {
                if let Some(e) = self.entry_mut(n) {
                    e.links[li].prev = link.prev;
                }
            }
            None => {
                if let Some(c) = self.entries.chain_mut(list, hash) {
                    if let Some(p) = link.prev {
                        c.tail = p;
                    }
                }
            }
        }
        if link.prev.is_none() && link.next.is_none() {
            self.entries.remove_chain(list, hash);
        }
        if let Some(e) = self.entry_mut(slot) {
            e.links[li] = Link::default();
        }
    }

    fn link_both(&mut self, slot: Slot, to: &str, notification: &str) -> Result<(), TableFull> {
        self.link(List::ById, hash_id(notification), slot)?;
        if let Err(e) = self.link(List::ByKey, hash_key(to, notification), slot) {
            self.unlink(List::ById, hash_id(notification), slot);
            return Err(e);
        }
        Ok(())
    }

    fn unlink_both(&mut self, slot: Slot) {
        let Some((hid, hkey)) = self.entry(slot).map(|e| {
            (
                hash_id(&e.reg.notification),
                hash_key(&e.reg.to, &e.reg.notification),
            )
        }) else {
            return;
        };
        self.unlink(List::ById, hid, slot);
        self.unlink(List::ByKey, hkey, slot);
    }

    /// Adds a registration, or replaces the one with the same
    /// (conn, to, notification): its priority is updated and it becomes the
    /// most recent.
    pub fn register(
        &mut self,
        conn: ConnId,
        to: AppId,
        notification: NotificationId,
        priority: i32,
    ) -> Result<Registered, TableFull> {
        self.seq += 1;
        let seq = self.seq;
        if let Some(slot) = self.find(conn, &to, &notification) {
            // Re-rank: unlink, update, link again (the chains are sorted).
            self.unlink_both(slot);
            if let Some(e) = self.entry_mut(slot) {
                e.reg.priority = priority;
                e.reg.seq = seq;
            }
            if self.link_both(slot, &to, &notification).is_err() {
                // Cannot happen: the chains existed a moment ago or had room.
                self.release(slot);
                self.len -= 1;
                return Err(TableFull);
            }
            return Ok(Registered::Replaced);
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let used = self.entries.slots().len();
                if used >= N {
                    return Err(TableFull);
                }
                let s = Slot::try_from(used).map_err(|_| TableFull)?;
                self.entries.grow()?;
                s
            }
        };
        let (to_s, id_s) = (to.clone(), notification.clone());
        if let Some(e) = self.slot_mut(slot) {
            *e = Some(Entry {
                reg: Registration {
                    conn,
                    to,
                    notification,
                    priority,
                    seq,
                },
                links: [Link::default(); 2],
            });
        }
        if let Err(e) = self.link_both(slot, &to_s, &id_s) {
            self.release(slot);
            return Err(e);
        }
        self.len += 1;
        Ok(Registered::Added)
    }

    /// Removes the registration (conn, to, notification); returns it.
    pub fn unregister(
        &mut self,
        conn: ConnId,
        to: &str,
        notification: &str,
    ) -> Option<Registration> {
        let slot = self.find(conn, to, notification)?;
        self.remove_slot(slot)
    }

    fn remove_slot(&mut self, slot: Slot) -> Option<Registration> {
        self.entry(slot)?;
        self.unlink_both(slot);
        let e = self.release(slot)?;
        self.len -= 1;
        Some(e.reg)
    }

    /// Removes every registration held by `conn`, calling `removed` for each;
    /// returns how many were removed. O(capacity).
    pub fn remove_connection(
        &mut self,
        conn: ConnId,
        mut removed: impl FnMut(&Registration),
    ) -> usize {
        let mut n = 0;
        for slot in 0..self.entries.slots().len() {
            let Ok(slot) = Slot::try_from(slot) else {
                break;
            };
            if self.entry(slot).is_some_and(|e| e.reg.conn == conn) {
                if let Some(reg) = self.remove_slot(slot) {
                    removed(&reg);
                    n += 1;
                }
            }
        }
        n
    }

    /// Every registration for `notification`, best first (highest priority,
    /// then most recent).
    pub fn candidates<'t>(&'t self, notification: &'t str) -> Candidates<'t> {
        Candidates {
            walk: self.walk(List::ById, self.head(List::ById, hash_id(notification))),
            notification,
        }
    }

    /// Every registration, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &Registration> + '_ {
        self.entries
            .slots()
            .iter()
            .filter_map(|e| e.0.as_ref().map(|e| &e.reg))
    }

    /// Decides who receives a notification for `to` and `notification`
    /// (spec section 2). `allow` filters candidates: the broker uses it for
    /// the whitelist's `out` rules and to skip receivers it cannot reach; a
    /// registration it rejects is treated as absent.
    pub fn route<'t, F>(
        &'t self,
        to: &Destination,
        notification: &'t str,
        mut allow: F,
    ) -> Route<'t, F>
    where
        F: FnMut(&Registration) -> bool,
    {
        match to {
            Destination::All => Route::Broadcast(Broadcast {
                candidates: self.candidates(notification),
                allow,
            }),
            // The chains are sorted best first: the first allowed one wins.
            Destination::One => match self.candidates(notification).find(|r| allow(r)) {
                Some(r) => Route::Unicast(r),
                None => Route::UnicastError,
            },
            Destination::App(app) => {
                let head = self.head(List::ByKey, hash_key(app, notification));
                let found = self.walk(List::ByKey, head).map(|(_, r)| r).find(|r| {
                    r.to.as_str() == app.as_str()
                        && r.notification.as_str() == notification
                        && allow(r)
                });
                match found {
                    Some(r) => Route::Unicast(r),
                    None => Route::UnicastError,
                }
            }
        }
    }
}

fn entry(slots: &[TableSlot], slot: Slot) -> Option<&Entry> {
    slots.get(usize::from(slot)).and_then(|s| s.0.as_ref())
}

/// Walks one chain.
struct Walk<'t> {
    slots: &'t [TableSlot],
    list: List,
    next: Option<Slot>,
}

impl<'t> Iterator for Walk<'t> {
    type Item = (Slot, &'t Registration);

    fn next(&mut self) -> Option<Self::Item> {
        let slot = self.next?;
        let e = entry(self.slots, slot)?;
        self.next = e.links[self.list as usize].next;
        Some((slot, &e.reg))
    }
}

/// The delivery plan for one notification.
pub enum Route<'t, F> {
    /// A unicast (`X` or `"1"`): this registration receives it.
    Unicast(&'t Registration),
    /// A unicast nothing can receive: a unicast error is owed to the sender.
    UnicastError,
    /// A broadcast: every registration this iterator yields receives it
    /// (possibly none; broadcasts never owe unicast errors).
    Broadcast(Broadcast<'t, F>),
}

impl<F> fmt::Debug for Route<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Unicast(r) => f.debug_tuple("Unicast").field(r).finish(),
            Route::UnicastError => f.write_str("UnicastError"),
            Route::Broadcast(_) => f.write_str("Broadcast(..)"),
        }
    }
}

/// The receivers of a broadcast.
pub struct Broadcast<'t, F> {
    candidates: Candidates<'t>,
    allow: F,
}

impl<'t, F: FnMut(&Registration) -> bool> Iterator for Broadcast<'t, F> {
    type Item = &'t Registration;

    fn next(&mut self) -> Option<&'t Registration> {
        let allow = &mut self.allow;
        self.candidates.find(|r| allow(r))
    }
}

/// The registrations for one notification ID, best first.
pub struct Candidates<'t> {
    walk: Walk<'t>,
    notification: &'t str,
}

impl<'t> Iterator for Candidates<'t> {
    type Item = &'t Registration;

    fn next(&mut self) -> Option<&'t Registration> {
        let notification = self.notification;
        self.walk
            .by_ref()
            .map(|(_, r)| r)
            .find(|r| r.notification.as_str() == notification)
    }
}

#[cfg(any(test, feature = "model"))]
pub mod model;
#[cfg(test)]
mod tests;
