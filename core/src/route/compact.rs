//! [`CompactStorage`]: a routing table's storage for small targets, its
//! identifiers interned in a shared pool.

use core::fmt;

use heapless::Vec;

use super::{Chain, Links, List, Registration, RouteStorage, TableFull};
use crate::broker::ConnId;
use crate::ids::{AppId, NotificationId};

/// A routing table's storage for small targets (the bare-metal firmware):
/// `N` registration slots of 32 bytes (on a 32-bit target) that name their
/// identifiers by number, a pool of `IDS` identifiers (76 bytes each),
/// and both chain indexes as short lists (8 bytes per chain, searched
/// linearly: fine for a few dozen registrations, not for thousands).
///
/// **Decision** (what `N` registrations guarantee): an identifier, app ID
/// or notification ID, of any valid length (up to 64 bytes) takes one pool
/// entry, shared by every registration naming it and freed with the last
/// of them. A register call is refused with [`TableFull`] (which the broker
/// turns into a `table full` refusal for the client; nothing else changes)
/// when all `N` slots are used, or when it names an identifier the pool
/// does not hold and all `IDS` entries are in use. So `N` registrations
/// are guaranteed as long as together they name at most `IDS` distinct
/// identifiers (an app ID and a notification ID that are the same string
/// count twice); replacing a registration (same key) always succeeds.
///
/// `IDS` must be below 65,535; it need not exceed `2 * N`.
pub struct CompactStorage<const N: usize, const IDS: usize> {
    slots: Vec<Compact, N>,
    ids: Vec<Interned, IDS>,
    /// Chains by notification ID: at most one per notification ID held,
    /// so `IDS` of them at most.
    by_id: Vec<(u32, Chain), IDS>,
    /// Chains by (receiver, notification ID): at most one per slot.
    by_key: Vec<(u32, Chain), N>,
}

/// A registration, its identifiers as pool indexes; an empty slot has
/// `to == FREE` (an `Option` would take 8 more bytes: no field has a
/// niche).
#[derive(Debug, Clone)]
struct Compact {
    seq: u64,
    conn: ConnId,
    priority: i32,
    to: u16,
    notification: u16,
    links: Links,
}

const FREE: u16 = u16::MAX;

impl Compact {
    const EMPTY: Compact = Compact {
        seq: 0,
        conn: ConnId::from_raw(0),
        priority: 0,
        to: FREE,
        notification: FREE,
        links: Links::EMPTY,
    };

    fn used(&self) -> Option<&Self> {
        (self.to != FREE).then_some(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Id {
    App(AppId),
    Notification(NotificationId),
}

/// A pool entry: free when `refs` is 0.
#[derive(Debug, Clone)]
struct Interned {
    id: Id,
    refs: u16,
}

impl<const N: usize, const IDS: usize> CompactStorage<N, IDS> {
    const CHECK: () = assert!(IDS < u16::MAX as usize, "IDS must be below 65535");

    /// Empty (all zeroes: a static one takes no flash).
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        CompactStorage {
            slots: Vec::new(),
            ids: Vec::new(),
            by_id: Vec::new(),
            by_key: Vec::new(),
        }
    }

    /// Identifiers held in the pool (each counted once, however many
    /// registrations name it).
    pub fn ids(&self) -> usize {
        self.ids.iter().filter(|i| i.refs > 0).count()
    }

    /// Takes a reference to an identifier: an existing entry, else a free
    /// one, else a new one; [`TableFull`] when the pool is full.
    fn intern(&mut self, id: Id) -> Result<u16, TableFull> {
        let at = match self.ids.iter().position(|i| i.refs > 0 && i.id == id) {
            Some(at) => at,
            None => match self.ids.iter().position(|i| i.refs == 0) {
                Some(at) => {
                    if let Some(i) = self.ids.get_mut(at) {
                        i.id = id;
                    }
                    at
                }
                None => {
                    self.ids
                        .push(Interned { id, refs: 0 })
                        .map_err(|_| TableFull)?;
                    self.ids.len() - 1
                }
            },
        };
        let entry = self.ids.get_mut(at).ok_or(TableFull)?;
        entry.refs += 1;
        u16::try_from(at).map_err(|_| TableFull)
    }

    /// Gives back a reference taken by [`Self::intern`].
    fn release(&mut self, at: u16) {
        if let Some(i) = self.ids.get_mut(usize::from(at)) {
            i.refs = i.refs.saturating_sub(1);
        }
    }

    fn app(&self, at: u16) -> Option<&AppId> {
        match &self.ids.get(usize::from(at))?.id {
            Id::App(a) => Some(a),
            Id::Notification(_) => None,
        }
    }

    fn notification(&self, at: u16) -> Option<&NotificationId> {
        match &self.ids.get(usize::from(at))?.id {
            Id::Notification(n) => Some(n),
            Id::App(_) => None,
        }
    }

    fn compact_mut(&mut self, slot: u16) -> Option<&mut Compact> {
        self.slots
            .get_mut(usize::from(slot))
            .filter(|c| c.to != FREE)
    }
}

/// The chains' key: the 64-bit hash folded to 32 bits. Two keys whose
/// hashes fold alike share a chain, which the table handles as it does a
/// hash collision (entries are compared by their strings).
fn fold(hash: u64) -> u32 {
    (hash ^ (hash >> 32)) as u32
}

fn find(chains: &[(u32, Chain)], key: u32) -> Option<&(u32, Chain)> {
    chains.iter().find(|(k, _)| *k == key)
}

impl<const N: usize, const IDS: usize> Default for CompactStorage<N, IDS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const IDS: usize> fmt::Debug for CompactStorage<N, IDS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompactStorage")
            .field("slots", &self.slots.len())
            .field("ids", &self.ids())
            .finish()
    }
}

impl<const N: usize, const IDS: usize> RouteStorage for CompactStorage<N, IDS> {
    fn slot_count(&self) -> usize {
        self.slots.len()
    }

    fn add_slot(&mut self) -> Result<(), TableFull> {
        self.slots.push(Compact::EMPTY).map_err(|_| TableFull)
    }

    fn entry(&self, slot: u16) -> Option<(Registration<'_>, &Links)> {
        let c = self.slots.get(usize::from(slot))?.used()?;
        let reg = Registration {
            conn: c.conn,
            to: self.app(c.to)?,
            notification: self.notification(c.notification)?,
            priority: c.priority,
            seq: c.seq,
        };
        Some((reg, &c.links))
    }

    fn links_mut(&mut self, slot: u16) -> Option<&mut Links> {
        self.compact_mut(slot).map(|c| &mut c.links)
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
        if self
            .slots
            .get(usize::from(slot))
            .is_none_or(|c| c.to != FREE)
        {
            return Err(TableFull);
        }
        let to = self.intern(Id::App(to))?;
        let notification = match self.intern(Id::Notification(notification)) {
            Ok(at) => at,
            Err(e) => {
                self.release(to);
                return Err(e);
            }
        };
        if let Some(s) = self.slots.get_mut(usize::from(slot)) {
            *s = Compact {
                seq,
                conn,
                priority,
                to,
                notification,
                links: Links::EMPTY,
            };
        }
        Ok(())
    }

    fn set_rank(&mut self, slot: u16, priority: i32, seq: u64) {
        if let Some(c) = self.compact_mut(slot) {
            c.priority = priority;
            c.seq = seq;
        }
    }

    fn vacate(&mut self, slot: u16) -> bool {
        let Some(c) = self.compact_mut(slot) else {
            return false;
        };
        let (to, notification) = (c.to, c.notification);
        *c = Compact::EMPTY;
        self.release(to);
        self.release(notification);
        true
    }

    fn find_chain(&self, list: List, hash: u64) -> Option<&Chain> {
        let chains: &[(u32, Chain)] = match list {
            List::ById => &self.by_id,
            List::ByKey => &self.by_key,
        };
        find(chains, fold(hash)).map(|(_, c)| c)
    }

    fn find_chain_mut(&mut self, list: List, hash: u64) -> Option<&mut Chain> {
        let chains: &mut [(u32, Chain)] = match list {
            List::ById => &mut self.by_id,
            List::ByKey => &mut self.by_key,
        };
        let key = fold(hash);
        chains.iter_mut().find(|(k, _)| *k == key).map(|(_, c)| c)
    }

    fn add_chain(&mut self, list: List, hash: u64, chain: Chain) -> Result<(), TableFull> {
        let item = (fold(hash), chain);
        match list {
            List::ById => self.by_id.push(item),
            List::ByKey => self.by_key.push(item),
        }
        .map_err(|_| TableFull)
    }

    fn drop_chain(&mut self, list: List, hash: u64) {
        let key = fold(hash);
        match list {
            List::ById => remove(&mut self.by_id, key),
            List::ByKey => remove(&mut self.by_key, key),
        }
    }
}

fn remove<const M: usize>(chains: &mut Vec<(u32, Chain), M>, key: u32) {
    if let Some(at) = chains.iter().position(|(k, _)| *k == key) {
        chains.swap_remove(at);
    }
}
