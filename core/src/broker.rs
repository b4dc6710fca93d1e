//! The broker: the service's sans-IO state machine.
//!
//! The adapter owns sockets. For each accepted connection it calls
//! [`Broker::connect`], feeds every decoded frame to [`Broker::handle_frame`]
//! and calls [`Broker::disconnect`] when the connection ends. The broker
//! answers through the [`Outbox`] the adapter passes in: messages to queue
//! for a connection, and events to log or count. It allocates nothing, reads
//! no clock and performs no I/O; every rule of spec sections 2 and 4 that
//! decides who receives what is applied here, once, for every platform.
//!
//! # References and returned notifications
//!
//! Every unicast the broker delivers carries a `reference` naming the
//! sending connection (high 32 bits: its [`ConnId`]; low 32 bits: a
//! counter). Broadcasts carry none. When a client sends a notify that
//! carries a reference naming a live connection, the broker takes it as a
//! notification *returned* to it (spec 3, the unregister race): it routes it
//! again without the returning connection, and a unicast error, if owed,
//! goes to the original sender instead of the returning connection. The
//! adapter uses the same path, [`Broker::return_undelivered`], for frames
//! still queued for a connection it closes (a stalled reader), so nothing
//! accepted is silently lost.
//!
//! **Decision**: a notify carrying a reference that names no live connection
//! is an ordinary notify from the connection that sent it.
//!
//! # Acknowledgements (crash-safe delivery)
//!
//! A client of our own library says in its `hello` that it acknowledges
//! unicasts ([`Hello::acks`](crate::msg::Hello::acks)); the broker reports
//! that as [`Event::Hello`] and every `ack` it sends as [`Event::Acked`].
//! The broker keeps nothing itself: the adapter keeps each unicast it
//! queued for such a connection until the matching ack, and when the
//! connection ends first gives those frames to
//! [`Broker::return_undelivered`] like unsent ones, so they go to the next
//! receiver or back to their sender as unicast errors.
//!
//! # Broadcasts
//!
//! A broadcast reaches every allowed registration, but a connection receives
//! it once however many of its registrations match (**Decision**: its
//! library runs every matching callback, spec 2.6; sending one copy per
//! registration would make a process with two receiver app IDs run each
//! callback twice). Observers still hear of every receiving registration.
//!
//! # Local-only messages
//!
//! `hello`, `observe`, `status` and the other compact-only messages need a
//! `hello` first (the answers are compact bodies), and remote connections may
//! never observe or ask for status (spec 5.3). Refusals are reported as
//! [`Event::Refused`].

use core::cell::Cell;
use core::fmt;

use heapless::Vec;

use crate::ids::AppId;
use crate::msg::{
    self, ConnectionReport, DecodeError, Encoding, Guard, Message, Notify, Observation, PeerAddr,
    Register, RegistrationReport, Status, Unregister, Welcome,
};
use crate::route::{InlineStorage, Registered, Registration, Route, RoutingTable, TableStorage};
use crate::whitelist::Whitelist;
use crate::wire::Frame;

/// A connection, as the broker names it: a slot number (low 16 bits) and a
/// generation (high 16 bits), so an id is not confused with a later
/// connection in the same slot. The adapter maps it to its socket;
/// [`ConnId::index`] is below the broker's connection capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u32);

impl ConnId {
    /// A connection id from its raw value (tests and adapters that persist
    /// ids; the broker hands out the ids it uses).
    pub const fn from_raw(raw: u32) -> Self {
        ConnId(raw)
    }

    /// The raw value.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The slot number, below the broker's connection capacity.
    pub const fn index(self) -> usize {
        (self.0 & 0xffff) as usize
    }

    const fn generation(self) -> u16 {
        (self.0 >> 16) as u16
    }

    const fn new(slot: u16, generation: u16) -> Self {
        ConnId(((generation as u32) << 16) | slot as u32)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index(), self.generation())
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
///
/// They apply at run time, on top of the broker's fixed capacities (the
/// `CONNS` and `REGS` parameters of [`Broker`]): a platform profile with
/// tighter limits than the capacities it was built with (the Verix-style
/// profile) sets them here. Hitting a limit gives the same typed answer as
/// hitting the capacity: [`TooManyConnections`] for connections,
/// [`Refusal::TableFull`] for the total of registrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Registrations one connection may hold.
    pub max_registrations_per_connection: usize,
    /// Registrations all remote connections together may hold (spec: 256).
    pub max_remote_registrations: usize,
    /// Connections open at once, local and remote together
    /// (`usize::MAX`: the capacity `CONNS` decides).
    pub max_connections: usize,
    /// Registrations held at once, all connections together
    /// (`usize::MAX`: the capacity `REGS` decides).
    pub max_registrations: usize,
}

impl Limits {
    /// The spec's limit on remote registrations.
    pub const MAX_REMOTE_REGISTRATIONS: usize = 256;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_registrations_per_connection: 1024,
            max_remote_registrations: Self::MAX_REMOTE_REGISTRATIONS,
            max_connections: usize::MAX,
            max_registrations: usize::MAX,
        }
    }
}

/// Observing connections at most.
pub const MAX_OBSERVERS: usize = 32;

/// The adapter's queue for a connection is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// Why the broker dropped a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A remote notify no `in` rule allows.
    NotAllowedIn,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::NotAllowedIn => "no \"in\" rule allows it",
        })
    }
}

/// What the broker refused to do for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A remote registration over the total limit for remote connections.
    RemoteRegistrationLimit,
    /// A registration over the per-connection limit.
    ConnectionRegistrationLimit,
    /// The routing table is full (its capacity, or
    /// [`Limits::max_registrations`], is reached).
    TableFull,
    /// Observing asked for by a remote connection.
    RemoteObserver,
    /// Status asked for by a remote connection.
    RemoteStatus,
    /// A local-only message before `hello`.
    NeedsHello,
    /// More observers than [`MAX_OBSERVERS`].
    TooManyObservers,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::RemoteRegistrationLimit => {
                "registration refused: remote registration limit reached"
            }
            Refusal::ConnectionRegistrationLimit => {
                "registration refused: per-connection registration limit reached"
            }
            Refusal::TableFull => "registration refused: routing table full",
            Refusal::RemoteObserver => "remote connections may not observe",
            Refusal::RemoteStatus => "remote connections may not ask for status",
            Refusal::NeedsHello => "local-only message before hello",
            Refusal::TooManyObservers => "observer refused: too many observers",
        })
    }
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
    /// A request was refused.
    Refused {
        /// The connection.
        conn: ConnId,
        /// What was refused.
        refusal: Refusal,
    },
    /// A message of an unknown type, or one a client never sends, was
    /// ignored.
    Ignored {
        /// The connection.
        conn: ConnId,
        /// The message kind or the unknown type name.
        kind: &'a str,
    },
    /// A unicast could not be delivered to anyone; a unicast error was owed
    /// to `sender`.
    UnicastError {
        /// The connection the error goes to.
        sender: ConnId,
        /// The notification.
        notify: &'a Notify<'a>,
    },
    /// The connection's queue is full: the adapter must close it (and then
    /// call [`Broker::disconnect`]).
    Overflow {
        /// The connection.
        conn: ConnId,
    },
    /// A `hello` arrived: from now on the connection is compact, and
    /// `acks` says whether it acknowledges the unicasts it receives. An
    /// adapter that keeps unicasts until they are acknowledged (crash-safe
    /// delivery) starts or stops doing so for this connection here.
    Hello {
        /// The connection.
        conn: ConnId,
        /// Whether it acknowledges unicasts ([`Message::Ack`]).
        acks: bool,
    },
    /// The client acknowledged the unicast with this reference.
    Acked {
        /// The connection.
        conn: ConnId,
        /// The reference.
        reference: u64,
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

    /// Where `conn` comes from, for [`Message::Connection`]: the adapter
    /// knows (socket address, peer credentials). The default does not.
    fn peer(&self, conn: ConnId) -> PeerAddr {
        let _ = conn;
        PeerAddr::Unknown
    }

    /// The adapter's protection counters, for [`Message::ConnectionsEnd`].
    /// The default has none.
    fn guard(&self) -> Guard {
        Guard::default()
    }

    /// The largest frame body the adapter reads from `conn`, told to a
    /// local client in the [`Message::Welcome`] that answers its `hello`.
    /// The default (`None`) sends no welcome: the client then assumes its
    /// own default.
    fn frame_limit(&self, conn: ConnId) -> Option<usize> {
        let _ = conn;
        None
    }

    /// Whether `conn` was sent the unicast with this `reference` (and has
    /// not acknowledged it): only then is a notify carrying that reference
    /// from `conn` a returned unicast (spec 3, the unregister race), routed
    /// again or turned into a unicast error for its sender. Any other
    /// reference is forged or stale: the notify is treated as a new one
    /// from `conn` (its reference dropped), so no client can make the
    /// broker send another client a unicast error it never caused.
    ///
    /// The adapter keeps the record (what it queued for each connection).
    /// The default trusts every reference that names a live sender (the
    /// behaviour before this check): an adapter facing untrusted peers must
    /// implement it.
    fn delivered(&self, conn: ConnId, reference: u64) -> bool {
        let _ = (conn, reference);
        true
    }
}

/// Why a connection could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyConnections;

impl fmt::Display for TooManyConnections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection limit reached")
    }
}

impl core::error::Error for TooManyConnections {}

/// What the broker knows of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// Local or remote.
    pub kind: PeerKind,
    /// The encoding the broker sends it.
    pub encoding: Encoding,
    /// The app ID its `hello` gave.
    pub app_id: Option<AppId>,
    /// Registrations it holds.
    pub registrations: usize,
    /// Whether it observes.
    pub observer: bool,
    /// Whether it wants unicast errors.
    pub unicast_errors: bool,
    /// Whether it acknowledges unicasts.
    pub acks: bool,
    /// Whether its queue overflowed (it is being closed).
    pub overflowed: bool,
}

#[derive(Debug, Clone)]
struct Slot {
    generation: u16,
    conn: Option<ConnInfo>,
    /// The last broadcast sent to this connection: one message per
    /// connection per broadcast, however many of its registrations match.
    broadcast: Cell<u32>,
}

/// The broker: routing table, whitelist, per-connection state, limits.
///
/// Capacities: `CONNS` connections (at most 65536), `REGS` registrations
/// (a power of two, at most 32768), `RULES` whitelist rules and `IFACES`
/// interface lines.
///
/// The routing table's slots live in `S`: inline by default; a hosted
/// adapter may pass a [`TableStorage`] that grows on the heap
/// ([`Broker::with_storage`]), so unused capacity costs no memory.
pub struct Broker<
    const CONNS: usize,
    const REGS: usize,
    const RULES: usize,
    const IFACES: usize,
    S = InlineStorage<REGS>,
> {
    whitelist: Whitelist<RULES, IFACES>,
    limits: Limits,
    table: RoutingTable<REGS, S>,
    slots: Vec<Slot, CONNS>,
    free: Vec<u16, CONNS>,
    observers: Vec<ConnId, MAX_OBSERVERS>,
    remote_registrations: usize,
    next_reference: u32,
    next_broadcast: u32,
    status: Status,
}

impl<const CONNS: usize, const REGS: usize, const RULES: usize, const IFACES: usize, S> fmt::Debug
    for Broker<CONNS, REGS, RULES, IFACES, S>
where
    S: TableStorage,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("status", &self.status())
            .finish()
    }
}

impl<const CONNS: usize, const REGS: usize, const RULES: usize, const IFACES: usize>
    Broker<CONNS, REGS, RULES, IFACES>
{
    /// A broker with this whitelist and these limits, its routing table
    /// inline.
    pub fn new(whitelist: Whitelist<RULES, IFACES>, limits: Limits) -> Self {
        Self::with_storage(whitelist, limits, InlineStorage::new())
    }
}

impl<const CONNS: usize, const REGS: usize, const RULES: usize, const IFACES: usize, S>
    Broker<CONNS, REGS, RULES, IFACES, S>
where
    S: TableStorage,
{
    const CHECK: () = assert!(
        CONNS <= 1 << 16,
        "Broker connection capacity must fit 16 bits"
    );

    /// A broker with this whitelist and these limits.
    /// A broker with this whitelist and these limits, keeping its routing
    /// table's slots in `storage` (empty).
    pub fn with_storage(whitelist: Whitelist<RULES, IFACES>, limits: Limits, storage: S) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        Broker {
            whitelist,
            limits,
            table: RoutingTable::with_storage(storage),
            slots: Vec::new(),
            free: Vec::new(),
            observers: Vec::new(),
            remote_registrations: 0,
            next_reference: 0,
            next_broadcast: 0,
            status: Status::default(),
        }
    }

    /// The whitelist in force.
    pub fn whitelist(&self) -> &Whitelist<RULES, IFACES> {
        &self.whitelist
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The routing table (read only).
    pub fn table(&self) -> &RoutingTable<REGS, S> {
        &self.table
    }

    /// Adds a connection; [`TooManyConnections`] when the capacity `CONNS`
    /// or [`Limits::max_connections`] is reached.
    pub fn connect(&mut self, kind: PeerKind) -> Result<ConnId, TooManyConnections> {
        let open = self.slots.len() - self.free.len();
        if open >= self.limits.max_connections {
            return Err(TooManyConnections);
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let s = u16::try_from(self.slots.len()).map_err(|_| TooManyConnections)?;
                self.slots
                    .push(Slot {
                        generation: 0,
                        conn: None,
                        broadcast: Cell::new(0),
                    })
                    .map_err(|_| TooManyConnections)?;
                s
            }
        };
        let Some(entry) = self.slots.get_mut(usize::from(slot)) else {
            return Err(TooManyConnections);
        };
        entry.conn = Some(ConnInfo {
            kind,
            encoding: Encoding::Json,
            app_id: None,
            registrations: 0,
            observer: false,
            unicast_errors: true,
            acks: false,
            overflowed: false,
        });
        match kind {
            PeerKind::Local => self.status.local_connections += 1,
            PeerKind::Remote => self.status.remote_connections += 1,
        }
        Ok(ConnId::new(slot, entry.generation))
    }

    /// What the broker knows of `conn`, if it is open.
    pub fn connection(&self, conn: ConnId) -> Option<&ConnInfo> {
        let slot = self.slots.get(conn.index())?;
        if slot.generation != conn.generation() {
            return None;
        }
        slot.conn.as_ref()
    }

    fn connection_mut(&mut self, conn: ConnId) -> Option<&mut ConnInfo> {
        let slot = self.slots.get_mut(conn.index())?;
        if slot.generation != conn.generation() {
            return None;
        }
        slot.conn.as_mut()
    }

    /// The encoding the broker sends to `conn` in (JSON for unknown ids).
    pub fn encoding(&self, conn: ConnId) -> Encoding {
        self.connection(conn).map_or(Encoding::Json, |c| c.encoding)
    }

    /// Counters and sizes, as `nfy status` shows them.
    pub fn status(&self) -> Status {
        let mut s = self.status;
        s.registrations = count(self.table.len());
        s.remote_registrations = count(self.remote_registrations);
        s.observers = count(self.observers.len());
        s
    }

    /// Handles one frame received on `conn`: decodes its body in the
    /// encoding its message id names, then [`Broker::handle`]s it.
    pub fn handle_frame(&mut self, conn: ConnId, frame: Frame<'_>, out: &mut impl Outbox) {
        match msg::decode(Encoding::from_msg_id(frame.msg_id), frame.body) {
            Ok(m) => self.handle(conn, m, out),
            Err(error) => out.event(Event::BadMessage { conn, error }),
        }
    }

    /// Handles one decoded message received on `conn`. Messages for a
    /// connection that is not open are ignored.
    pub fn handle(&mut self, conn: ConnId, msg: Message<'_>, out: &mut impl Outbox) {
        let Some(info) = self.connection(conn) else {
            return;
        };
        let kind = info.kind;
        let hello = info.encoding == Encoding::Compact;
        match msg {
            Message::Register(r) => self.register(conn, kind, r, out),
            Message::Unregister(u) => self.unregister(conn, kind, &u),
            Message::Notify(n) => self.notify(conn, kind, n, out),
            Message::Hello(h) => {
                if let Some(c) = self.connection_mut(conn) {
                    c.encoding = Encoding::Compact;
                    c.app_id = h.app_id;
                    c.acks = h.acks;
                }
                out.event(Event::Hello { conn, acks: h.acks });
                // Local peers only: our library connects locally, and a
                // remote peer gets nothing it did not ask for.
                let limit = match kind {
                    PeerKind::Local => out.frame_limit(conn),
                    PeerKind::Remote => None,
                };
                if let Some(max_frame) = limit {
                    let welcome = Message::Welcome(Welcome {
                        max_frame: count(max_frame),
                    });
                    if out.send(conn, Encoding::Compact, &welcome).is_err() {
                        self.overflow(conn, out);
                    }
                }
            }
            Message::Observe(on) => {
                if local_after_hello(conn, kind, hello, Refusal::RemoteObserver, out) {
                    self.set_observer(conn, on, out);
                }
            }
            Message::UnicastErrors(on) => {
                if let Some(c) = self.connection_mut(conn) {
                    c.unicast_errors = on;
                }
            }
            Message::Ack(reference) => out.event(Event::Acked { conn, reference }),
            Message::StatusRequest => {
                if local_after_hello(conn, kind, hello, Refusal::RemoteStatus, out)
                    && out
                        .send(conn, Encoding::Compact, &Message::Status(self.status()))
                        .is_err()
                {
                    self.overflow(conn, out);
                }
            }
            Message::ConnectionsRequest => {
                if local_after_hello(conn, kind, hello, Refusal::RemoteStatus, out) {
                    self.report_connections(conn, out);
                }
            }
            Message::Unknown(t) => out.event(Event::Ignored { conn, kind: t }),
            m @ (Message::UnicastError(_)
            | Message::Status(_)
            | Message::Observed(_)
            | Message::Connection(_)
            | Message::ConnectionsEnd(_)
            | Message::Welcome(_)
            | Message::Registration(_)) => out.event(Event::Ignored {
                conn,
                kind: m.kind(),
            }),
        }
    }

    /// Every open connection, in slot order.
    pub fn connections(&self) -> impl Iterator<Item = (ConnId, &ConnInfo)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, slot)| {
            let info = slot.conn.as_ref()?;
            let index = u16::try_from(i).ok()?;
            Some((ConnId::new(index, slot.generation), info))
        })
    }

    /// Answers a `ConnectionsRequest` from `conn`: one
    /// [`Message::Connection`] per open connection (its peer from
    /// [`Outbox::peer`]), one [`Message::Registration`] per registration,
    /// then [`Message::ConnectionsEnd`] with [`Outbox::guard`]. A full
    /// queue stops the list and overflows `conn`.
    fn report_connections(&mut self, conn: ConnId, out: &mut impl Outbox) {
        let mut full = false;
        for (id, info) in self.connections() {
            let report = ConnectionReport {
                id: id.0,
                remote: info.kind == PeerKind::Remote,
                peer: out.peer(id),
                app_id: info.app_id.clone(),
                registrations: count(info.registrations),
                observer: info.observer,
            };
            if out
                .send(conn, Encoding::Compact, &Message::Connection(report))
                .is_err()
            {
                full = true;
                break;
            }
        }
        for r in self.table.iter() {
            if full {
                break;
            }
            let report = RegistrationReport {
                conn: r.conn.0,
                to: r.to.clone(),
                notification: r.notification.clone(),
                priority: r.priority,
            };
            full = out
                .send(conn, Encoding::Compact, &Message::Registration(report))
                .is_err();
        }
        if full
            || out
                .send(
                    conn,
                    Encoding::Compact,
                    &Message::ConnectionsEnd(out.guard()),
                )
                .is_err()
        {
            self.overflow(conn, out);
        }
    }

    /// Removes a connection and everything it held. Frames still queued for
    /// it should first be given to [`Broker::return_undelivered`].
    pub fn disconnect(&mut self, conn: ConnId, out: &mut impl Outbox) {
        let _ = out;
        let Some(info) = self.connection(conn) else {
            return;
        };
        let kind = info.kind;
        let removed = self.table.remove_connection(conn, |_| {});
        if kind == PeerKind::Remote {
            self.remote_registrations = self.remote_registrations.saturating_sub(removed);
            self.status.remote_connections = self.status.remote_connections.saturating_sub(1);
        } else {
            self.status.local_connections = self.status.local_connections.saturating_sub(1);
        }
        self.observers.retain(|c| *c != conn);
        if let Some(slot) = self.slots.get_mut(conn.index()) {
            slot.conn = None;
            slot.generation = slot.generation.wrapping_add(1);
            if let Ok(s) = u16::try_from(conn.index()) {
                // Each slot is freed once per generation; `free` has room.
                let _ = self.free.push(s);
            }
        }
    }

    /// Takes back a frame that was queued for `conn` but never reached it
    /// (the adapter is closing `conn`): a unicast in it is routed again
    /// without `conn`, or comes back to its sender as a unicast error.
    /// Other messages are dropped. Call before [`Broker::disconnect`].
    pub fn return_undelivered(&mut self, conn: ConnId, frame: Frame<'_>, out: &mut impl Outbox) {
        if let Ok(Message::Notify(n)) = msg::decode(Encoding::from_msg_id(frame.msg_id), frame.body)
        {
            if n.reference.is_some() && n.to.is_unicast() {
                self.reroute(conn, n, out);
            }
        }
    }

    fn register(&mut self, conn: ConnId, kind: PeerKind, r: Register, out: &mut impl Outbox) {
        let exists = self.table.get(conn, &r.to, &r.notification).is_some();
        let held = self.connection(conn).map_or(0, |c| c.registrations);
        if !exists {
            let refusal = if kind == PeerKind::Remote
                && self.remote_registrations >= self.limits.max_remote_registrations
            {
                Some(Refusal::RemoteRegistrationLimit)
            } else if held >= self.limits.max_registrations_per_connection {
                Some(Refusal::ConnectionRegistrationLimit)
            } else if self.table.len() >= self.limits.max_registrations {
                Some(Refusal::TableFull)
            } else {
                None
            };
            if let Some(refusal) = refusal {
                out.event(Event::Refused { conn, refusal });
                return;
            }
        }
        match self.table.register(conn, r.to, r.notification, r.priority) {
            Ok(Registered::Added) => {
                if kind == PeerKind::Remote {
                    self.remote_registrations += 1;
                }
                if let Some(c) = self.connection_mut(conn) {
                    c.registrations += 1;
                }
            }
            Ok(Registered::Replaced) => {}
            Err(_) => out.event(Event::Refused {
                conn,
                refusal: Refusal::TableFull,
            }),
        }
    }

    fn unregister(&mut self, conn: ConnId, kind: PeerKind, u: &Unregister) {
        if self
            .table
            .unregister(conn, &u.to, &u.notification)
            .is_some()
        {
            if kind == PeerKind::Remote {
                self.remote_registrations = self.remote_registrations.saturating_sub(1);
            }
            if let Some(c) = self.connection_mut(conn) {
                c.registrations = c.registrations.saturating_sub(1);
            }
        }
    }

    fn set_observer(&mut self, conn: ConnId, on: bool, out: &mut impl Outbox) {
        let listed = self.observers.contains(&conn);
        if on && !listed && self.observers.push(conn).is_err() {
            out.event(Event::Refused {
                conn,
                refusal: Refusal::TooManyObservers,
            });
            return;
        }
        if !on {
            self.observers.retain(|c| *c != conn);
        }
        if let Some(c) = self.connection_mut(conn) {
            c.observer = on;
        }
    }

    fn notify(&mut self, conn: ConnId, kind: PeerKind, n: Notify<'_>, out: &mut impl Outbox) {
        if kind == PeerKind::Remote
            && !self
                .whitelist
                .allows_in(&n.from, n.to.as_str(), &n.notification)
        {
            self.status.dropped += 1;
            out.event(Event::Dropped {
                conn,
                reason: DropReason::NotAllowedIn,
                notify: &n,
            });
            return;
        }
        match n.reference {
            Some(r)
                if n.to.is_unicast()
                    && self.connection(sender_of(r)).is_some()
                    && out.delivered(conn, r) =>
            {
                self.reroute(conn, n, out)
            }
            _ => {
                let mut n = n;
                n.reference = None;
                self.deliver(conn, None, n, out);
            }
        }
    }

    /// Routes a returned unicast again, without `returned_by`.
    fn reroute(&mut self, returned_by: ConnId, n: Notify<'_>, out: &mut impl Outbox) {
        let sender = n
            .reference
            .map(sender_of)
            .filter(|s| self.connection(*s).is_some());
        self.deliver(sender.unwrap_or(returned_by), Some(returned_by), n, out);
    }

    /// Routes `n` from `sender`, skipping `exclude`'s registrations, sends
    /// it, tells observers, and owes a unicast error when nobody got it.
    fn deliver(
        &mut self,
        sender: ConnId,
        exclude: Option<ConnId>,
        n: Notify<'_>,
        out: &mut impl Outbox,
    ) {
        // Receivers whose queue turned out full during this delivery; they
        // are skipped and closed afterwards.
        let mut full: Vec<ConnId, 8> = Vec::new();
        let mut delivered = 0u64;
        let reference = match (n.to.is_unicast(), n.reference) {
            (true, Some(r)) => Some(r),
            (true, None) => Some(self.reference_for(sender)),
            (false, _) => None,
        };
        self.next_broadcast = self.next_broadcast.wrapping_add(1).max(1);
        let stamp = self.next_broadcast;
        let Broker {
            table,
            slots,
            whitelist,
            observers,
            ..
        } = &*self;
        let allow = |r: &Registration, full: &[ConnId]| {
            if Some(r.conn) == exclude || full.contains(&r.conn) {
                return false;
            }
            let Some(info) = slot_info(slots, r.conn) else {
                return false;
            };
            !info.overflowed
                && (info.kind == PeerKind::Local
                    || whitelist.allows_out(&n.from, n.to.as_str(), &n.notification))
        };
        if n.to.is_unicast() {
            let msg = Message::Notify(Notify {
                reference,
                ..n.clone()
            });
            // Each failed attempt marks one more receiver full, so this ends.
            while let Route::Unicast(r) =
                table.route(&n.to, &n.notification, |r: &Registration| allow(r, &full))
            {
                if send(out, slots, r.conn, &msg) {
                    delivered = 1;
                    observe(out, slots, observers, &n, Some(r.to.clone()), &mut full);
                    break;
                }
                if full.push(r.conn).is_err() {
                    break;
                }
            }
        } else {
            let msg = Message::Notify(Notify {
                reference: None,
                ..n.clone()
            });
            let mut receivers = table.candidates(&n.notification);
            while let Some(r) = receivers.find(|r| allow(r, &full)) {
                let Some(slot) = slots.get(r.conn.index()) else {
                    continue;
                };
                // A connection with several matching registrations gets the
                // message once (its library runs every matching callback),
                // but observers hear of each receiving registration.
                if slot.broadcast.get() == stamp || send(out, slots, r.conn, &msg) {
                    slot.broadcast.set(stamp);
                    delivered += 1;
                    observe(out, slots, observers, &n, Some(r.to.clone()), &mut full);
                } else if full.push(r.conn).is_err() {
                    break;
                }
            }
        }
        if delivered == 0 {
            observe(out, slots, observers, &n, None, &mut full);
        }
        for c in full {
            self.overflow(c, out);
        }
        self.status.delivered += delivered;
        if delivered == 0 && n.to.is_unicast() {
            self.unicast_error(sender, n, out);
        }
    }

    fn unicast_error(&mut self, sender: ConnId, n: Notify<'_>, out: &mut impl Outbox) {
        self.status.unicast_errors += 1;
        out.event(Event::UnicastError { sender, notify: &n });
        let Some(info) = self.connection(sender) else {
            return;
        };
        if !info.unicast_errors || info.overflowed {
            return;
        }
        if out
            .send(sender, info.encoding, &Message::UnicastError(n))
            .is_err()
        {
            self.overflow(sender, out);
        }
    }

    fn overflow(&mut self, conn: ConnId, out: &mut impl Outbox) {
        if let Some(c) = self.connection_mut(conn) {
            if !c.overflowed {
                c.overflowed = true;
                out.event(Event::Overflow { conn });
            }
        }
    }

    fn reference_for(&mut self, sender: ConnId) -> u64 {
        self.next_reference = self.next_reference.wrapping_add(1);
        (u64::from(sender.raw()) << 32) | u64::from(self.next_reference)
    }
}

/// Whether a local-only request may go on: true for a local connection
/// that said `hello`; otherwise reports the refusal (`remote` for a remote
/// peer, [`Refusal::NeedsHello`] before `hello`) and returns false.
fn local_after_hello(
    conn: ConnId,
    kind: PeerKind,
    hello: bool,
    remote: Refusal,
    out: &mut impl Outbox,
) -> bool {
    let refusal = if kind == PeerKind::Remote {
        remote
    } else if !hello {
        Refusal::NeedsHello
    } else {
        return true;
    };
    out.event(Event::Refused { conn, refusal });
    false
}

/// The connection a reference names.
fn sender_of(reference: u64) -> ConnId {
    ConnId((reference >> 32) as u32)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn slot_info(slots: &[Slot], conn: ConnId) -> Option<&ConnInfo> {
    let slot = slots.get(conn.index())?;
    if slot.generation != conn.generation() {
        return None;
    }
    slot.conn.as_ref()
}

/// Sends to `conn` in its encoding; false when its queue is full or it is
/// gone.
fn send(out: &mut impl Outbox, slots: &[Slot], conn: ConnId, msg: &Message<'_>) -> bool {
    match slot_info(slots, conn) {
        Some(info) if !info.overflowed => out.send(conn, info.encoding, msg).is_ok(),
        _ => false,
    }
}

/// Tells every observer of one delivery (`to` = the receiver) or of a
/// notification nobody received (`to` = `None`). An observer whose queue is
/// full misses the event and is added to `full`; the notification itself is
/// not affected.
fn observe(
    out: &mut impl Outbox,
    slots: &[Slot],
    observers: &[ConnId],
    n: &Notify<'_>,
    to: Option<AppId>,
    full: &mut Vec<ConnId, 8>,
) {
    if observers.is_empty() {
        return;
    }
    let msg = Message::Observed(Observation {
        from: n.from.clone(),
        to,
        notification: n.notification.clone(),
        flags: n.flags,
    });
    for &o in observers {
        if !send(out, slots, o, &msg) && !full.contains(&o) {
            let _ = full.push(o);
        }
    }
}

#[cfg(test)]
mod tests;
