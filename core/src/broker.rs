//! The broker: the service's sans-IO state machine.
//!
//! STUB: the API below is fixed; the bodies are to be written (issue 2/3).
//!
//! The adapter owns sockets. For each accepted connection it calls
//! [`Broker::connect`], feeds every decoded frame to [`Broker::handle_frame`]
//! and calls [`Broker::disconnect`] when the connection ends. The broker
//! answers through the [`Outbox`] the adapter passes in: messages to queue
//! for a connection, and events to log or count.

use core::fmt;

use crate::msg::{DecodeError, Encoding, Message, Notify, Status};
use crate::whitelist::Whitelist;
use crate::wire::Frame;

/// A connection, as the broker names it. The adapter maps it to its socket;
/// [`ConnId::index`] is below the broker's connection capacity, so it can
/// index a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u32);

impl ConnId {
    /// The slot number, below the broker's connection capacity.
    pub fn index(self) -> usize {
        (self.0 & 0xffff) as usize
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.0 & 0xffff, self.0 >> 16)
    }
}

/// Where a connection comes from (spec section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKind {
    /// Unix socket or loopback TCP.
    Local,
    /// TCP from a non-loopback address: whitelist applies, no observing.
    Remote,
}

/// The broker's limits (spec section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Registrations one connection may hold.
    pub max_registrations_per_connection: usize,
    /// Registrations all remote connections together may hold (spec: 256).
    pub max_remote_registrations: usize,
}

/// The adapter's connection queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// Why the broker dropped a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A remote notify no `in` rule allows.
    NotAllowedIn,
}

/// What the broker tells the adapter besides messages: for logs and counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event<'a> {
    /// A frame's body could not be decoded; the connection goes on.
    BadMessage {
        /// The connection.
        conn: ConnId,
        /// What was wrong.
        error: DecodeError,
    },
    /// A notification was dropped.
    Dropped {
        /// The sending connection.
        conn: ConnId,
        /// Why.
        reason: DropReason,
        /// The notification.
        notify: &'a Notify<'a>,
    },
    /// The connection's queue is full: the adapter must close it (and then
    /// call [`Broker::disconnect`]).
    Overflow {
        /// The connection.
        conn: ConnId,
    },
}

/// Where the broker puts its output.
pub trait Outbox {
    /// Queues `msg` for `conn`, encoded in `encoding`.
    fn send(
        &mut self,
        conn: ConnId,
        encoding: Encoding,
        msg: &Message<'_>,
    ) -> Result<(), QueueFull>;

    /// Reports an event (logging, counters). The default ignores it.
    fn event(&mut self, event: Event<'_>) {
        let _ = event;
    }
}

/// Why a connection could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyConnections;

/// The broker: routing table, whitelist, per-connection state, limits.
pub struct Broker<const CONNS: usize, const REGS: usize, const RULES: usize, const IFACES: usize> {
    whitelist: Whitelist<RULES, IFACES>,
    limits: Limits,
}

impl<const CONNS: usize, const REGS: usize, const RULES: usize, const IFACES: usize>
    Broker<CONNS, REGS, RULES, IFACES>
{
    /// A broker with this whitelist and these limits.
    pub fn new(whitelist: Whitelist<RULES, IFACES>, limits: Limits) -> Self {
        Broker { whitelist, limits }
    }

    /// Adds a connection.
    pub fn connect(&mut self, kind: PeerKind) -> Result<ConnId, TooManyConnections> {
        let _ = kind;
        Err(TooManyConnections)
    }

    /// Handles one frame received on `conn`.
    pub fn handle_frame(&mut self, conn: ConnId, frame: Frame<'_>, out: &mut impl Outbox) {
        let _ = (conn, frame, out);
    }

    /// Handles one decoded message received on `conn`.
    pub fn handle(&mut self, conn: ConnId, msg: Message<'_>, out: &mut impl Outbox) {
        let _ = (conn, msg, out);
    }

    /// Removes a connection and everything it held.
    pub fn disconnect(&mut self, conn: ConnId, out: &mut impl Outbox) {
        let _ = (conn, out);
    }

    /// The encoding the broker sends to `conn` in.
    pub fn encoding(&self, conn: ConnId) -> Encoding {
        let _ = conn;
        Encoding::Json
    }

    /// Counters and sizes, as `nfy status` shows them.
    pub fn status(&self) -> Status {
        let _ = (&self.whitelist, &self.limits);
        Status::default()
    }
}
