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
//! a hash probe. The chains are found through two index maps keyed by a
//! 64-bit hash of the notification ID, respectively of the pair (entries are
//! still compared by their strings, so a hash collision only lengthens a
//! chain, never confuses two keys).
//!
//! `N` must be at most 32768 (and a power of two for [`InlineStorage`],
//! whose index maps are `heapless` FNV index maps).
//!
//! # Storages
//!
//! The slab and the index maps live in a storage chosen by the adapter
//! ([`RouteStorage`]), the way smoltcp lets its caller supply socket
//! buffers:
//!
//! - [`InlineStorage`] (the default): `heapless` collections of capacity
//!   `N`, every registration holding its two identifiers inline (about 240
//!   bytes per registration of capacity on a 64-bit host, 208 on a 32-bit
//!   microcontroller, index maps included). Embedded targets with room to
//!   spare; sized at build time, no allocator.
//! - any [`TableStorage`]: a slab of [`TableSlot`]s (inline identifiers,
//!   as above) and two chain maps kept however the adapter likes; a hosted
//!   adapter grows them on the heap, so that unused capacity costs no
//!   memory (16,384 registrations inline would be 3.9 MB).
//! - [`CompactStorage`]: for small targets. Identifiers are interned in a
//!   shared pool of `IDS` entries, so a registration takes 32 bytes and an
//!   identifier named by many registrations is held once; see its
//!   **Decision** for what happens when the pool is full.
//!
//! Selection rules ([`RoutingTable::route`]):
//! - `"*"`: every allowed candidate, best first.
//! - an app ID or `"1"`: the allowed candidate with the highest priority;
//!   **Decision** (spec 2.2): ties go to the most recent registration.
//! - no allowed candidate for a unicast: a unicast error is owed.

use core::fmt;

use heapless::Vec;

use crate::broker::ConnId;
use crate::ids::{AppId, Destination, NotificationId};

mod compact;
mod storage;

pub use compact::CompactStorage;
pub use storage::{InlineStorage, RouteStorage, TableSlot, TableStorage};

/// One registration, as the table hands it out: a view of the table's
/// entry (the identifiers stay where the storage keeps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration<'t> {
    /// The connection holding it.
    pub conn: ConnId,
    /// The receiver app ID.
    pub to: &'t AppId,
    /// The notification ID.
    pub notification: &'t NotificationId,
    /// Larger wins.
    pub priority: i32,
    /// Registration order: larger is more recent.
    pub seq: u64,
}

impl Registration<'_> {
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

/// The table is full: every slot is used, or the storage has no room for
/// the registration's identifiers ([`CompactStorage`]) or for a new chain.
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

/// An entry's neighbours in one chain. `NONE` (never a slot: `N` is at
/// most 32768) stands for "no neighbour", so that a link is 4 bytes, not
/// the 8 of two `Option<u16>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Link {
    prev: Slot,
    next: Slot,
}

const NONE: Slot = Slot::MAX;

fn opt(slot: Slot) -> Option<Slot> {
    (slot != NONE).then_some(slot)
}

impl Link {
    const EMPTY: Link = Link {
        prev: NONE,
        next: NONE,
    };

    fn new(prev: Option<Slot>, next: Option<Slot>) -> Self {
        Link {
            prev: prev.unwrap_or(NONE),
            next: next.unwrap_or(NONE),
        }
    }

    #[inline]
    fn prev(self) -> Option<Slot> {
        opt(self.prev)
    }

    #[inline]
    fn next(self) -> Option<Slot> {
        opt(self.next)
    }
}

/// An entry's places in its two chains (opaque; a storage keeps one per
/// registration and hands it out, [`Links::EMPTY`] for a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Links([Link; 2]);

impl Links {
    /// In no chain yet.
    pub const EMPTY: Links = Links([Link::EMPTY; 2]);
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

/// Registrations with fixed capacity `N` (at most 32768), kept in `S`
/// (inline by default; see [`RouteStorage`]).
pub struct RoutingTable<const N: usize, S = InlineStorage<N>> {
    entries: S,
    free: Vec<Slot, N>,
    seq: u64,
    len: usize,
}

impl<const N: usize, S: RouteStorage + Default> Default for RoutingTable<N, S> {
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

impl<const N: usize, S: RouteStorage> RoutingTable<N, S> {
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

    /// The storage (for its own figures, such as [`CompactStorage::ids`]).
    pub fn storage(&self) -> &S {
        &self.entries
    }

    #[inline]
    fn entry(&self, slot: Slot) -> Option<(Registration<'_>, &Links)> {
        self.entries.entry(slot)
    }

    #[inline]
    fn link_of(&self, list: List, slot: Slot) -> Option<Link> {
        self.entry(slot).map(|(_, l)| l.0[list as usize])
    }

    fn set_link(&mut self, list: List, slot: Slot, f: impl FnOnce(&mut Link)) {
        if let Some(l) = self.entries.links_mut(slot) {
            f(&mut l.0[list as usize]);
        }
    }

    /// Gives a slot back: empties it and lists it as free.
    fn release(&mut self, slot: Slot) -> bool {
        let was = self.entries.vacate(slot);
        if was {
            // Slots are below N and each is freed once, so `free` has room.
            let _ = self.free.push(slot);
        }
        was
    }

    #[inline]
    fn head(&self, list: List, hash: u64) -> Option<Slot> {
        self.entries.find_chain(list, hash).map(|c| c.head)
    }

    /// Walks one chain from `head`.
    #[inline]
    fn walk(&self, list: List, head: Option<Slot>) -> Walk<'_, S> {
        Walk {
            store: &self.entries,
            list,
            next: head,
        }
    }

    /// The slot holding (conn, to, notification), whose key hashes to
    /// `hkey`, if any.
    fn find(&self, hkey: u64, conn: ConnId, to: &str, notification: &str) -> Option<Slot> {
        self.walk(List::ByKey, self.head(List::ByKey, hkey))
            .find(|(_, r)| {
                r.conn == conn && r.to.as_str() == to && r.notification.as_str() == notification
            })
            .map(|(slot, _)| slot)
    }

    /// The registration for this key, if any.
    pub fn get(&self, conn: ConnId, to: &str, notification: &str) -> Option<Registration<'_>> {
        self.find(hash_key(to, notification), conn, to, notification)
            .and_then(|s| self.entry(s))
            .map(|(r, _)| r)
    }

    /// Links `slot` (already stored) into chain `list` under `hash`, before
    /// the first entry that ranks below it.
    fn link(&mut self, list: List, hash: u64, slot: Slot) -> Result<(), TableFull> {
        let rank = self.entry(slot).ok_or(TableFull)?.0.rank();
        let head = self.head(list, hash);
        let before = self
            .walk(list, head)
            .find(|(_, r)| r.rank() < rank)
            .map(|(s, _)| s);
        let prev = match before {
            Some(b) => self.link_of(list, b).and_then(Link::prev),
            None => self.entries.find_chain(list, hash).map(|c| c.tail),
        };
        if head.is_none() {
            self.entries.add_chain(
                list,
                hash,
                Chain {
                    head: slot,
                    tail: slot,
                },
            )?;
        }
        self.set_link(list, slot, |l| *l = Link::new(prev, before));
        match prev {
            Some(p) => self.set_link(list, p, |l| l.next = slot),
            None => {
                if let Some(c) = self.entries.find_chain_mut(list, hash) {
                    c.head = slot;
                }
            }
        }
        match before {
            Some(b) => self.set_link(list, b, |l| l.prev = slot),
            None => {
                if let Some(c) = self.entries.find_chain_mut(list, hash) {
                    c.tail = slot;
                }
            }
        }
        Ok(())
    }

    /// Unlinks `slot` from chain `list` under `hash`.
    fn unlink(&mut self, list: List, hash: u64, slot: Slot) {
        let Some(link) = self.link_of(list, slot) else {
            return;
        };
        match link.prev() {
            Some(p) => self.set_link(list, p, |l| l.next = link.next),
            None => {
                if let Some(c) = self.entries.find_chain_mut(list, hash) {
                    if let Some(n) = link.next() {
                        c.head = n;
                    }
                }
            }
        }
        match link.next() {
            Some(n) => self.set_link(list, n, |l| l.prev = link.prev),
            None => {
                if let Some(c) = self.entries.find_chain_mut(list, hash) {
                    if let Some(p) = link.prev() {
                        c.tail = p;
                    }
                }
            }
        }
        if link.prev().is_none() && link.next().is_none() {
            self.entries.drop_chain(list, hash);
        }
        self.set_link(list, slot, |l| *l = Link::EMPTY);
    }

    /// Links `slot` into both chains: by notification (`hid`) and by key
    /// (`hkey`).
    fn link_both(&mut self, slot: Slot, hid: u64, hkey: u64) -> Result<(), TableFull> {
        self.link(List::ById, hid, slot)?;
        if let Err(e) = self.link(List::ByKey, hkey, slot) {
            self.unlink(List::ById, hid, slot);
            return Err(e);
        }
        Ok(())
    }

    fn unlink_both(&mut self, slot: Slot) {
        let Some((hid, hkey)) = self
            .entry(slot)
            .map(|(r, _)| (hash_id(r.notification), hash_key(r.to, r.notification)))
        else {
            return;
        };
        self.unlink(List::ById, hid, slot);
        self.unlink(List::ByKey, hkey, slot);
    }

    /// Adds a registration, or replaces the one with the same
    /// (conn, to, notification): its priority is updated and it becomes the
    /// most recent. [`TableFull`] when the table holds `N` registrations, or
    /// the storage has no room for the new one's identifiers or chains
    /// (nothing changes then).
    pub fn register(
        &mut self,
        conn: ConnId,
        to: AppId,
        notification: NotificationId,
        priority: i32,
    ) -> Result<Registered, TableFull> {
        self.seq += 1;
        let seq = self.seq;
        let hid = hash_id(&notification);
        let hkey = hash_key(&to, &notification);
        if let Some(slot) = self.find(hkey, conn, &to, &notification) {
            // Re-rank: unlink, update, link again (the chains are sorted).
            self.unlink(List::ById, hid, slot);
            self.unlink(List::ByKey, hkey, slot);
            self.entries.set_rank(slot, priority, seq);
            if self.link_both(slot, hid, hkey).is_err() {
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
                let used = self.entries.slot_count();
                if used >= N {
                    return Err(TableFull);
                }
                let s = Slot::try_from(used).map_err(|_| TableFull)?;
                self.entries.add_slot()?;
                s
            }
        };
        if let Err(e) = self
            .entries
            .put(slot, conn, to, notification, priority, seq)
        {
            // Still empty: back to the free list.
            let _ = self.free.push(slot);
            return Err(e);
        }
        if let Err(e) = self.link_both(slot, hid, hkey) {
            self.release(slot);
            return Err(e);
        }
        self.len += 1;
        Ok(Registered::Added)
    }

    /// Removes the registration (conn, to, notification); returns its rank,
    /// `None` when there was none.
    pub fn unregister(&mut self, conn: ConnId, to: &str, notification: &str) -> Option<Rank> {
        let slot = self.find(hash_key(to, notification), conn, to, notification)?;
        let rank = self.entry(slot)?.0.rank();
        self.remove_slot(slot).then_some(rank)
    }

    fn remove_slot(&mut self, slot: Slot) -> bool {
        if self.entry(slot).is_none() {
            return false;
        }
        self.unlink_both(slot);
        let removed = self.release(slot);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Removes every registration held by `conn`, calling `removed` for each
    /// (just before it goes); returns how many were removed. O(capacity).
    pub fn remove_connection(
        &mut self,
        conn: ConnId,
        mut removed: impl FnMut(Registration<'_>),
    ) -> usize {
        let mut n = 0;
        for slot in 0..self.entries.slot_count() {
            let Ok(slot) = Slot::try_from(slot) else {
                break;
            };
            match self.entry(slot) {
                Some((r, _)) if r.conn == conn => removed(r),
                _ => continue,
            }
            if self.remove_slot(slot) {
                n += 1;
            }
        }
        n
    }

    /// Every registration for `notification`, best first (highest priority,
    /// then most recent).
    pub fn candidates<'t>(&'t self, notification: &'t str) -> Candidates<'t, S> {
        Candidates {
            walk: self.walk(List::ById, self.head(List::ById, hash_id(notification))),
            notification,
        }
    }

    /// Every registration, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = Registration<'_>> + '_ {
        (0..self.entries.slot_count()).filter_map(|slot| {
            let slot = Slot::try_from(slot).ok()?;
            self.entry(slot).map(|(r, _)| r)
        })
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
    ) -> Route<'t, S, F>
    where
        F: FnMut(&Registration<'t>) -> bool,
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

/// Walks one chain.
struct Walk<'t, S> {
    store: &'t S,
    list: List,
    next: Option<Slot>,
}

impl<'t, S: RouteStorage> Iterator for Walk<'t, S> {
    type Item = (Slot, Registration<'t>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let slot = self.next?;
        let (r, links) = self.store.entry(slot)?;
        self.next = links.0[self.list as usize].next();
        Some((slot, r))
    }
}

/// The delivery plan for one notification.
pub enum Route<'t, S, F> {
    /// A unicast (`X` or `"1"`): this registration receives it.
    Unicast(Registration<'t>),
    /// A unicast nothing can receive: a unicast error is owed to the sender.
    UnicastError,
    /// A broadcast: every registration this iterator yields receives it
    /// (possibly none; broadcasts never owe unicast errors).
    Broadcast(Broadcast<'t, S, F>),
}

impl<S, F> fmt::Debug for Route<'_, S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Unicast(r) => f.debug_tuple("Unicast").field(r).finish(),
            Route::UnicastError => f.write_str("UnicastError"),
            Route::Broadcast(_) => f.write_str("Broadcast(..)"),
        }
    }
}

/// The receivers of a broadcast.
pub struct Broadcast<'t, S, F> {
    candidates: Candidates<'t, S>,
    allow: F,
}

impl<'t, S: RouteStorage, F: FnMut(&Registration<'t>) -> bool> Iterator for Broadcast<'t, S, F> {
    type Item = Registration<'t>;

    fn next(&mut self) -> Option<Registration<'t>> {
        let allow = &mut self.allow;
        self.candidates.find(|r| allow(r))
    }
}

/// The registrations for one notification ID, best first.
pub struct Candidates<'t, S> {
    walk: Walk<'t, S>,
    notification: &'t str,
}

impl<'t, S: RouteStorage> Iterator for Candidates<'t, S> {
    type Item = Registration<'t>;

    #[inline]
    fn next(&mut self) -> Option<Registration<'t>> {
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
