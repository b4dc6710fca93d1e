//! Where the broker keeps its connections: one [`ConnSlot`] per
//! connection slot, in a [`ConnStorage`] the adapter chooses (as it
//! chooses the routing table's storage): inline with a fixed capacity
//! ([`InlineConns`], no allocator), or on the heap, grown as connections
//! arrive, so that a server built for a thousand connections costs memory
//! for the ones it has (the Linux server's `HeapConns`).

use core::cell::Cell;

use super::flow::FlowState;
use super::ledger::{Ledger, LedgerStorage};
use super::rate::TokenBucket;
use super::ConnInfo;

/// Everything the broker keeps for one connection slot: what it knows of
/// the connection ([`ConnInfo`]), its ledger, its flow-control state and
/// its rate limit. Opaque; storages only hold them.
#[derive(Debug)]
pub struct ConnSlot<L> {
    pub(super) generation: u16,
    pub(super) conn: Option<ConnInfo>,
    /// The last broadcast sent to this connection: one message per
    /// connection per broadcast, however many of its registrations match.
    pub(super) broadcast: Cell<u32>,
    pub(super) ledger: Ledger<L>,
    pub(super) flow: FlowState,
    /// The rate limit of a remote connection, made with its first input.
    pub(super) bucket: Option<TokenBucket>,
}

impl<L: LedgerStorage> ConnSlot<L> {
    /// A slot that was never used.
    pub(super) fn new() -> Self {
        ConnSlot {
            generation: 0,
            conn: None,
            broadcast: Cell::new(0),
            ledger: Ledger::default(),
            flow: FlowState::default(),
            bucket: None,
        }
    }
}

/// Where a [`Broker`](super::Broker) keeps its connection slots: a list
/// that grows one slot at a time and never shrinks. The broker never holds
/// more than its `CONNS`, whatever the storage allows.
pub trait ConnStorage {
    /// The storage of each connection's ledger.
    type Ledger: LedgerStorage;
    /// The slots so far.
    fn slots(&self) -> &[ConnSlot<Self::Ledger>];
    /// The slots so far, mutable.
    fn slots_mut(&mut self) -> &mut [ConnSlot<Self::Ledger>];
    /// Appends a slot; false when there is no room.
    fn push(&mut self, slot: ConnSlot<Self::Ledger>) -> bool;
}

/// The default connection storage: `N` slots inline, each with an `L`
/// ledger storage.
#[derive(Debug)]
pub struct InlineConns<const N: usize, L> {
    slots: heapless::Vec<ConnSlot<L>, N>,
}

impl<const N: usize, L> InlineConns<N, L> {
    /// Empty.
    pub const fn new() -> Self {
        InlineConns {
            slots: heapless::Vec::new(),
        }
    }
}

impl<const N: usize, L> Default for InlineConns<N, L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, L: LedgerStorage> ConnStorage for InlineConns<N, L> {
    type Ledger = L;

    fn slots(&self) -> &[ConnSlot<L>] {
        &self.slots
    }

    fn slots_mut(&mut self) -> &mut [ConnSlot<L>] {
        &mut self.slots
    }

    fn push(&mut self, slot: ConnSlot<L>) -> bool {
        self.slots.push(slot).is_ok()
    }
}
