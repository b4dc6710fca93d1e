//! The routing table (spec section 2): registrations and receiver selection.
//!
//! A registration is keyed by (connection, receiver app ID, notification ID)
//! and carries a priority and a sequence number that grows with every
//! register call, so "most recent" is well defined.
//!
//! Storage is a fixed slab of `N` entries. An index from notification ID to a
//! doubly linked chain of the entries registered for it makes every lookup
//! cost proportional to the registrations *for that notification ID* only;
//! unrelated registrations cost nothing but a hash probe. Removing an entry is
//! O(1) once found.
//!
//! `N` must be a power of two (the index is a `heapless` FNV index map).
//!
//! Selection rules ([`RoutingTable::route`]):
//! - `"*"`: every allowed candidate.
//! - an app ID or `"1"`: the allowed candidate with the highest priority;
//!   **Decision** (spec 2.2): ties go to the most recent registration.
//! - no allowed candidate for a unicast: a unicast error is owed.

use core::fmt;

use heapless::index_map::FnvIndexMap;
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

#[derive(Debug, Clone)]
struct Entry {
    reg: Registration,
    prev: Option<Slot>,
    next: Option<Slot>,
}

#[derive(Debug, Clone, Copy)]
struct Chain {
    head: Slot,
    tail: Slot,
}

/// Registrations with fixed capacity `N` (a power of two, at most 32768).
pub struct RoutingTable<const N: usize> {
    entries: Vec<Option<Entry>, N>,
    free: Vec<Slot, N>,
    index: FnvIndexMap<NotificationId, Chain, N>,
    seq: u64,
    len: usize,
}

impl<const N: usize> Default for RoutingTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for RoutingTable<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutingTable")
            .field("len", &self.len)
            .field("capacity", &N)
            .finish()
    }
}

impl<const N: usize> RoutingTable<N> {
    const CHECK: () = assert!(N <= 1 << 15, "RoutingTable capacity must fit a u16 slot");

    /// An empty table.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        RoutingTable {
            entries: Vec::new(),
            free: Vec::new(),
            index: FnvIndexMap::new(),
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
        self.entries.get(usize::from(slot)).and_then(Option::as_ref)
    }

    fn entry_mut(&mut self, slot: Slot) -> Option<&mut Entry> {
        self.entries
            .get_mut(usize::from(slot))
            .and_then(Option::as_mut)
    }

    /// The slot holding (conn, to, notification), if any.
    fn find(&self, conn: ConnId, to: &str, notification: &str) -> Option<Slot> {
        let chain = self.index.get(notification)?;
        let mut cur = Some(chain.head);
        while let Some(slot) = cur {
            let e = self.entry(slot)?;
            if e.reg.conn == conn && e.reg.to.as_str() == to {
                return Some(slot);
            }
            cur = e.next;
        }
        None
    }

    /// The registration for this key, if any.
    pub fn get(&self, conn: ConnId, to: &str, notification: &str) -> Option<&Registration> {
        self.find(conn, to, notification)
            .and_then(|s| self.entry(s))
            .map(|e| &e.reg)
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
            if let Some(e) = self.entry_mut(slot) {
                e.reg.priority = priority;
                e.reg.seq = seq;
            }
            return Ok(Registered::Replaced);
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let s = Slot::try_from(self.entries.len()).map_err(|_| TableFull)?;
                self.entries.push(None).map_err(|_| TableFull)?;
                s
            }
        };
        let tail = self.index.get(notification.as_str()).map(|c| c.tail);
        let entry = Entry {
            reg: Registration {
                conn,
                to,
                notification: notification.clone(),
                priority,
                seq,
            },
            prev: tail,
            next: None,
        };
        let linked = match tail {
            Some(t) => {
                if let Some(c) = self.index.get_mut(notification.as_str()) {
                    c.tail = slot;
                }
                if let Some(prev) = self.entry_mut(t) {
                    prev.next = Some(slot);
                }
                true
            }
            None => self
                .index
                .insert(
                    notification,
                    Chain {
                        head: slot,
                        tail: slot,
                    },
                )
                .is_ok(),
        };
        if !linked {
            // Cannot happen while the index has room for N chains, but never
            // lose track of a slot if it does.
            let _ = self.free.push(slot);
            return Err(TableFull);
        }
        if let Some(e) = self.entries.get_mut(usize::from(slot)) {
            *e = Some(entry);
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
        let e = self.entries.get_mut(usize::from(slot))?.take()?;
        if let Some(pe) = e.prev.and_then(|p| self.entry_mut(p)) {
            pe.next = e.next;
        }
        if let Some(ne) = e.next.and_then(|n| self.entry_mut(n)) {
            ne.prev = e.prev;
        }
        let id = e.reg.notification.as_str();
        match (e.prev, e.next) {
            (None, None) => {
                self.index.swap_remove(id);
            }
            (prev, next) => {
                if let Some(c) = self.index.get_mut(id) {
                    if let (None, Some(n)) = (prev, next) {
                        c.head = n;
                    }
                    if let (Some(p), None) = (prev, next) {
                        c.tail = p;
                    }
                }
            }
        }
        // The slot came from `entries`, whose length is at most N, and each
        // slot is freed once, so `free` has room.
        let _ = self.free.push(slot);
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
        for slot in 0..self.entries.len() {
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

    /// Every registration for `notification`, oldest first.
    pub fn candidates<'t>(&'t self, notification: &str) -> Candidates<'t, N> {
        Candidates {
            table: self,
            next: self.index.get(notification).map(|c| c.head),
        }
    }

    /// Every registration, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &Registration> + '_ {
        self.entries
            .iter()
            .filter_map(|e| e.as_ref().map(|e| &e.reg))
    }

    /// Decides who receives a notification for `to` and `notification`
    /// (spec section 2). `allow` filters candidates: the broker uses it for
    /// the whitelist's `out` rules and to skip receivers it cannot reach; a
    /// registration it rejects is treated as absent.
    pub fn route<'t, F>(
        &'t self,
        to: &Destination,
        notification: &str,
        mut allow: F,
    ) -> Route<'t, F, N>
    where
        F: FnMut(&Registration) -> bool,
    {
        let candidates = self.candidates(notification);
        match to {
            Destination::All => Route::Broadcast(Broadcast { candidates, allow }),
            Destination::One => match best(candidates.filter(|r| allow(r))) {
                Some(r) => Route::Unicast(r),
                None => Route::UnicastError,
            },
            Destination::App(app) => {
                match best(candidates.filter(|r| r.to.as_str() == app.as_str() && allow(r))) {
                    Some(r) => Route::Unicast(r),
                    None => Route::UnicastError,
                }
            }
        }
    }
}

/// The highest priority; among equals, the most recent.
fn best<'t>(regs: impl Iterator<Item = &'t Registration>) -> Option<&'t Registration> {
    regs.max_by_key(|r| (r.priority, r.seq))
}

/// The delivery plan for one notification.
pub enum Route<'t, F, const N: usize> {
    /// A unicast (`X` or `"1"`): this registration receives it.
    Unicast(&'t Registration),
    /// A unicast nothing can receive: a unicast error is owed to the sender.
    UnicastError,
    /// A broadcast: every registration this iterator yields receives it
    /// (possibly none; broadcasts never owe unicast errors).
    Broadcast(Broadcast<'t, F, N>),
}

impl<F, const N: usize> fmt::Debug for Route<'_, F, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Unicast(r) => f.debug_tuple("Unicast").field(r).finish(),
            Route::UnicastError => f.write_str("UnicastError"),
            Route::Broadcast(_) => f.write_str("Broadcast(..)"),
        }
    }
}

/// The receivers of a broadcast.
pub struct Broadcast<'t, F, const N: usize> {
    candidates: Candidates<'t, N>,
    allow: F,
}

impl<'t, F: FnMut(&Registration) -> bool, const N: usize> Iterator for Broadcast<'t, F, N> {
    type Item = &'t Registration;

    fn next(&mut self) -> Option<&'t Registration> {
        let allow = &mut self.allow;
        self.candidates.find(|r| allow(r))
    }
}

/// The registrations for one notification ID, oldest first.
pub struct Candidates<'t, const N: usize> {
    table: &'t RoutingTable<N>,
    next: Option<Slot>,
}

impl<'t, const N: usize> Iterator for Candidates<'t, N> {
    type Item = &'t Registration;

    fn next(&mut self) -> Option<&'t Registration> {
        let e = self.table.entry(self.next?)?;
        self.next = e.next;
        Some(&e.reg)
    }
}

#[cfg(test)]
mod tests;
