//! The broker behind the ports: the one module that uses
//! [`nfy_core::broker`], so a change of the broker's API is adapted here
//! and nowhere else.
//!
//! The routing table's slots, the bulk of the broker's memory, live in a
//! [`Table`] the caller owns (a static on the board, zeroed at reset), not
//! inside the broker: constructing a broker that holds them would build
//! them on the stack first and copy them into place.
//!
//! Each port is one permanent connection, opened when the service starts
//! (a serial line has no connect or hang-up). A frame from a port is
//! decoded as a JSON body and handed to the broker; what the broker sends
//! is encoded straight into the receiving port's [`OutQueue`], and what it
//! reports goes to the [`Log`].
//!
//! # Decisions
//!
//! - **JSON protocol only.** Frames with message id 1 (compact bodies: our
//!   own library's `hello`, observers, status, acknowledgements) are
//!   skipped and logged. Without observers, one frame in yields at most one
//!   frame out per connection (a unicast, a unicast error, or one copy of
//!   a broadcast), which is what lets the service admit input only when
//!   every queue has room for one frame ([`MAX_GROWTH`]), so that no
//!   queue ever overflows and nothing accepted is lost.
//! - **Every port is local.** There are no remote peers on a board's
//!   serial lines, so the whitelist is empty and never consulted.
//! - **Returned unicasts** (spec 3, the unregister race): a notify carrying
//!   a reference is taken as returned only when it is one of the last
//!   [`RECENT`] unicasts sent to that port (the broker's ledger, inline
//!   with room for that many references and no frames); any other
//!   reference is dropped and the notify routed as a new one, so no port
//!   can make the broker send another port a unicast error it never
//!   caused.
//! - **A queue overflow resets the port's connection** (its registrations
//!   are dropped, and logged): the broker's answer to an overflow is to
//!   close the connection. The admission rule above keeps it from
//!   happening; this is the defence should it happen anyway.

use core::fmt;

use nfy_core::broker::{
    Broker, ConnId, Event, InlineConns, InlineLedger, Limits, Outbox, PeerKind, QueueFull,
};
use nfy_core::msg::{json, Encoding, Message};
use nfy_core::route::{Chain, CompactStorage, Links, List, Registration, RouteStorage, TableFull};
use nfy_core::whitelist::Whitelist;
use nfy_core::wire::Frame;
use nfy_core::{AppId, NotificationId};

use crate::log::Log;
use crate::outq::OutQueue;
use crate::IDENTIFIERS;

/// Unicast references remembered per port, for returned unicasts.
pub const RECENT: usize = 8;

/// Memory for a routing table of `REGS` registrations naming at most
/// [`IDENTIFIERS`] distinct identifiers between them (the rule when they
/// name more: [`CompactStorage`]); [`Table::new`] is `const` and all
/// zeroes, so a static one takes no flash.
pub type Table<const REGS: usize> = CompactStorage<REGS, IDENTIFIERS>;

/// A [`Table`] lent to the broker.
struct Lent<'a, const REGS: usize>(&'a mut Table<REGS>);

impl<const REGS: usize> RouteStorage for Lent<'_, REGS> {
    fn slot_count(&self) -> usize {
        self.0.slot_count()
    }

    fn add_slot(&mut self) -> Result<(), TableFull> {
        self.0.add_slot()
    }

    fn entry(&self, slot: u16) -> Option<(Registration<'_>, &Links)> {
        self.0.entry(slot)
    }

    fn links_mut(&mut self, slot: u16) -> Option<&mut Links> {
        self.0.links_mut(slot)
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
        self.0.put(slot, conn, to, notification, priority, seq)
    }

    fn set_rank(&mut self, slot: u16, priority: i32, seq: u64) {
        self.0.set_rank(slot, priority, seq)
    }

    fn vacate(&mut self, slot: u16) -> bool {
        self.0.vacate(slot)
    }

    fn find_chain(&self, list: List, hash: u64) -> Option<&Chain> {
        self.0.find_chain(list, hash)
    }

    fn find_chain_mut(&mut self, list: List, hash: u64) -> Option<&mut Chain> {
        self.0.find_chain_mut(list, hash)
    }

    fn add_chain(&mut self, list: List, hash: u64, chain: Chain) -> Result<(), TableFull> {
        self.0.add_chain(list, hash, chain)
    }

    fn drop_chain(&mut self, list: List, hash: u64) {
        self.0.drop_chain(list, hash)
    }
}

/// The broker with an empty whitelist (every connection is local), its
/// table lent, and ledgers that remember [`RECENT`] references per port.
type BareBroker<'a, const CONNS: usize, const REGS: usize> =
    Broker<CONNS, REGS, 0, 0, Lent<'a, REGS>, InlineConns<CONNS, InlineLedger<0, RECENT>>>;

/// The broker and the ports' connections.
pub struct Bus<'a, const CONNS: usize, const REGS: usize> {
    broker: BareBroker<'a, CONNS, REGS>,
    /// The connection of each port.
    conns: [Option<ConnId>; CONNS],
}

impl<const CONNS: usize, const REGS: usize> fmt::Debug for Bus<'_, CONNS, REGS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("broker", &self.broker)
            .field("conns", &self.conns)
            .finish()
    }
}

/// How much longer than the frame it answers a frame the broker sends
/// can be: the members a notify may leave out and the broker writes
/// (`"flags":0`, `"parameter":{}`), a `"reference"` of up to 20 digits,
/// and `unicast_error` for `notify` as the type. Everything else is copied
/// or re-encoded no longer than it came (escapes are decoded, whitespace
/// dropped). Checked by the tests with the longest inputs.
pub const MAX_GROWTH: usize = 96;

impl<'a, const CONNS: usize, const REGS: usize> Bus<'a, CONNS, REGS> {
    /// A broker with its routing table in `table` (empty) and `CONNS`
    /// connections open, one per port, each allowed every one of the
    /// `REGS` registrations.
    pub fn new(table: &'a mut Table<REGS>) -> Self {
        let limits = Limits {
            max_registrations_per_connection: REGS,
            max_remote_registrations: 0,
            max_connections: CONNS,
            max_registrations: REGS,
            local_only: true,
            ..Limits::DEFAULT
        };
        // Built in place, then connected: the broker is not copied through
        // the stack on the way (it is most of the service's state).
        let mut bus = Bus {
            broker: BareBroker::with_storage(Whitelist::new(), limits, Lent(table)),
            conns: [None; CONNS],
        };
        for conn in &mut bus.conns {
            *conn = bus.broker.connect(PeerKind::Local).ok();
        }
        bus
    }

    /// Registrations held, all ports together.
    pub fn registrations(&self) -> u32 {
        self.broker.status().registrations
    }

    /// Unicasts delivered so far.
    pub fn delivered(&self) -> u64 {
        self.broker.status().delivered
    }

    /// Handles one frame received on `port`: what the broker sends goes to
    /// `queues`, what it reports to `log`. The caller makes sure every
    /// queue has room for a frame [`MAX_GROWTH`] bytes longer than
    /// this one.
    pub fn handle(
        &mut self,
        port: usize,
        frame: Frame<'_>,
        queues: &mut [OutQueue<'_>; CONNS],
        log: &mut impl Log,
    ) {
        let Some(conn) = self.conns.get(port).copied().flatten() else {
            return;
        };
        if Encoding::from_msg_id(frame.msg_id) == Encoding::Compact {
            log.line(format_args!(
                "port {port}: compact body skipped (this profile serves the JSON protocol)"
            ));
            return;
        }
        let (broker, mut sink) = self.split(queues, log);
        match json::decode(frame.body) {
            Ok(msg) => broker.handle(conn, msg, &mut sink),
            Err(error) => sink.event(Event::BadMessage { conn, error }),
        }
        let overflowed = sink.overflowed;
        for (port, _) in overflowed.iter().enumerate().filter(|(_, o)| **o) {
            self.reset(port, queues, log);
        }
    }

    /// The broker, and the outbox it answers into.
    fn split<'s, 'q, L>(
        &'s mut self,
        queues: &'s mut [OutQueue<'q>; CONNS],
        log: &'s mut L,
    ) -> (&'s mut BareBroker<'a, CONNS, REGS>, Sink<'s, 'q, L, CONNS>) {
        let sink = Sink {
            conns: &self.conns,
            queues,
            log,
            overflowed: [false; CONNS],
        };
        (&mut self.broker, sink)
    }

    /// Closes `port`'s connection and opens a new one for it.
    fn reset(&mut self, port: usize, queues: &mut [OutQueue<'_>; CONNS], log: &mut impl Log) {
        let Some(slot) = self.conns.get_mut(port) else {
            return;
        };
        if let Some(conn) = slot.take() {
            let (broker, mut sink) = self.split(queues, log);
            broker.disconnect(conn, &mut sink);
        }
        let conn = self.broker.connect(PeerKind::Local).ok();
        if let Some(slot) = self.conns.get_mut(port) {
            *slot = conn;
        }
        log.line(format_args!(
            "port {port}: connection reset after an output overflow; its registrations are gone"
        ));
    }
}

/// The broker's [`Outbox`] for one frame.
struct Sink<'a, 'q, L, const CONNS: usize> {
    conns: &'a [Option<ConnId>; CONNS],
    queues: &'a mut [OutQueue<'q>; CONNS],
    log: &'a mut L,
    overflowed: [bool; CONNS],
}

/// The port holding `conn`.
fn port_of(conns: &[Option<ConnId>], conn: ConnId) -> Option<usize> {
    conns.iter().position(|c| *c == Some(conn))
}

/// `port N` for a connection, `port ?` for one no port holds.
struct PortOf(Option<usize>);

impl fmt::Display for PortOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "port {p}"),
            None => f.write_str("port ?"),
        }
    }
}

impl<L: Log, const CONNS: usize> Outbox for Sink<'_, '_, L, CONNS> {
    fn send(
        &mut self,
        conn: ConnId,
        encoding: Encoding,
        msg: &Message<'_>,
    ) -> Result<(), QueueFull> {
        let port = port_of(self.conns, conn).ok_or(QueueFull)?;
        let queue = self.queues.get_mut(port).ok_or(QueueFull)?;
        // No connection says `hello`, so the broker sends JSON only.
        if encoding != Encoding::Json {
            return Err(QueueFull);
        }
        queue
            .push_frame(Encoding::Json.msg_id(), |body| json::encode(msg, body))
            .map_err(|_| QueueFull)?;
        Ok(())
    }

    fn event(&mut self, event: Event<'_>) {
        let conns = self.conns;
        let at = |conn: ConnId| PortOf(port_of(conns, conn));
        let log = &mut *self.log;
        match event {
            Event::BadMessage { conn, error } => {
                log.line(format_args!("{}: bad message skipped: {error}", at(conn)))
            }
            Event::Refused { conn, refusal } => log.line(format_args!("{}: {refusal}", at(conn))),
            Event::Ignored { conn, kind } => log.line(format_args!(
                "{}: ignored a message of type \"{kind}\"",
                at(conn)
            )),
            Event::UnicastError { sender, notify } => log.line(format_args!(
                "{}: unicast error: nobody received \"{}\" sent to \"{}\"",
                at(sender),
                notify.notification,
                notify.to
            )),
            Event::Overflow { conn } => {
                if let Some(o) = port_of(conns, conn).and_then(|p| self.overflowed.get_mut(p)) {
                    *o = true;
                }
                log.line(format_args!("{}: output queue overflow", at(conn)));
            }
            // Dropped (remote peers only), Hello and Acked (compact bodies
            // only), and whatever later versions of the broker report.
            _ => log.line(format_args!("broker event not expected in this profile")),
        }
    }
}
