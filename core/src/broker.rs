//! The broker: the service's sans-IO state machine.
//!
//! The adapter owns sockets and the clock. For each accepted connection it
//! calls [`Broker::connect`] (which applies the admission rules), gives
//! everything its decoder produces to [`Broker::handle_input`] (which
//! applies the rate limit of remote peers, the frame limits, flow control
//! and then the routing rules), reports what each send took
//! ([`Broker::sent`]), calls [`Broker::handle_timeout`] when
//! [`Broker::poll_timeout`] says, and calls [`Broker::disconnect`] when the
//! connection ends. The broker answers through the [`Outbox`] the adapter
//! passes in: messages to queue for a connection, and [`Event`]s to log,
//! count or act on (close a connection, stop or resume reading one). It
//! allocates nothing, reads no clock and performs no I/O; every rule of
//! spec sections 2, 4 and 6 that decides who receives what, who may
//! connect and send, and who waits for whom is applied here, once, for
//! every platform.
//!
//! | module | holds |
//! |---|---|
//! | [`limits`] | [`Limits`] (with [`RemoteLimits`] and [`FlowLimits`]), the refusals |
//! | [`outbox`] | the [`Outbox`] trait, [`Event`], [`Handled`] |
//! | [`conns`] | the connection slots and where they live ([`ConnStorage`]) |
//! | [`ledger`] | per connection: unicasts kept until acknowledged, references sent |
//! | [`flow`] | flow control: pausing, resuming, stalls (the **Decision**s) |
//! | [`rate`] | the [`TokenBucket`] of remote peers |
//! | [`reload`] | replacing the whitelist of a running broker ([`Broker::set_whitelist`], the **Decision**s) |
//!
//! # Methods
//!
//! As quinn-proto's `Connection`, by kind:
//!
//! - getters: [`Broker::status`], [`Broker::connection`],
//!   [`Broker::connections`], [`Broker::is_paused`],
//!   [`Broker::unacknowledged`], [`Broker::protection`],
//!   [`Broker::flow_stats`], [`Broker::limits`];
//! - handlers of what happened outside, named `handle_*`:
//!   [`Broker::handle_input`] (and, without limits or flow control,
//!   [`Broker::handle_frame`], [`Broker::handle`]), [`Broker::handle_timeout`];
//! - mutators the adapter calls as things happen: [`Broker::connect`],
//!   [`Broker::refused`], [`Broker::sent`], [`Broker::acknowledge_held`],
//!   [`Broker::close`], [`Broker::return_undelivered`],
//!   [`Broker::disconnect`], [`Broker::set_whitelist`];
//! - the timer: [`Broker::poll_timeout`].
//!
//! Output is not polled but pushed into the [`Outbox`] during each call
//! (a notification may go to many connections at once, and pushing lets the
//! adapter encode it straight into each queue).
//!
//! # References and returned notifications
//!
//! Every unicast the broker delivers carries a `reference` naming the
//! sending connection (high 32 bits: its [`ConnId`]; low 32 bits: a
//! counter). Broadcasts carry none. When a client sends a notify that
//! carries a reference, the broker takes it as a notification *returned* to
//! it (spec 3, the unregister race) only when its [`ledger`] says that this
//! connection was sent that unicast and has not acknowledged or returned it
//! yet: it routes it again without the returning connection, and a unicast
//! error, if owed, goes to the original sender instead of the returning
//! connection. Frames still queued for a connection the adapter closes go
//! the same way ([`Broker::return_undelivered`]), and so do the unicasts it
//! was sent and never acknowledged ([`Broker::disconnect`]), so nothing
//! accepted is silently lost.
//!
//! **Decision**: a notify carrying a reference that names no live
//! connection, or one this connection was not sent (forged or stale), is an
//! ordinary notify from the connection that sent it, its reference dropped.
//!
//! # Acknowledgements (crash-safe delivery)
//!
//! A client of our own library says in its `hello` that it acknowledges
//! unicasts ([`Hello::acks`](crate::msg::Hello::acks)). The broker then
//! keeps every unicast it sends that connection, as the encoded frame, in
//! the connection's [`ledger`] until the matching `ack`, and routes what is
//! left again when the connection ends. See [`ledger`].
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
//!
//! # Admission and remote peers
//!
//! [`Broker::connect`] refuses a remote peer when the limits admit local
//! peers only ([`Limits::local_only`], the Verix-style profile), when the
//! whitelist holds no `in`/`out` rule ([`ConnectRefused::NoRules`]:
//! nothing it sent or registered for could pass), or when
//! [`RemoteLimits::max_connections`] remote connections are open, and any
//! peer at the connection limit. Each input of a remote connection takes a
//! token of its [`TokenBucket`] first ([`RemoteLimits::rate`],
//! [`RemoteLimits::burst`]); without one it is dropped and counted. A frame
//! body over the connection's limit ([`Limits::frame_limit`]) is skipped,
//! unless it is a returned notify within [`RETURN_SLACK`]. Refusals, drops
//! and skips are counted in [`ProtectionCounters`], which `nfy status`
//! shows.

use core::fmt;

use heapless::Vec;

use crate::ids::AppId;
use crate::msg::{
    self, ConnectionReport, EncodeError, Encoding, Message, Notify, Observation,
    ProtectionCounters, Register, RegistrationReport, Status, Unregister, Welcome,
};
use crate::route::{InlineStorage, Registered, Registration, Route, RouteStorage, RoutingTable};
use crate::time::Timestamp;
use crate::whitelist::Whitelist;
use crate::wire::{self, Decoded, Frame, FrameError, Skipped};

pub mod conns;
pub mod flow;
pub mod ledger;
pub mod limits;
pub mod outbox;
pub mod rate;
pub mod reload;

pub use conns::{ConnSlot, ConnStorage, InlineConns};
pub use flow::FlowStats;
pub use ledger::{InlineLedger, Ledger, LedgerEntry, LedgerStorage, RECENT_UNICASTS};
pub use limits::{
    ConnectRefused, DropReason, FlowLimits, Limits, Refusal, RemoteLimits, RETURN_SLACK,
};
pub use outbox::{Event, Handled, Outbox, QueueFull};
pub use rate::TokenBucket;
pub use reload::WhitelistChange;

use flow::FlowState;
use ledger::{KeepError, WriteError};

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

/// Observing connections at most.
pub const MAX_OBSERVERS: usize = 32;

/// Why the broker stopped routing to a connection the adapter is to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Its queue refused a frame, or its ledger passed the limit
    /// ([`Event::Overflow`]).
    Overflow,
    /// It stalled ([`Event::Stalled`]).
    Stalled,
    /// A remote connection, and the whitelist set by
    /// [`Broker::set_whitelist`] holds no rules ([`Event::Revoked`]).
    Revoked,
    /// The adapter is closing it ([`Broker::close`]: end of stream, an I/O
    /// error), or [`Broker::disconnect`] is removing it.
    Closed,
}

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
    /// Whether the unicasts it is sent are kept until it acknowledges them.
    pub acks: bool,
    /// Set when the broker gave up on it (nothing more is routed to it).
    pub closing: Option<Closing>,
    /// Inputs its rate limit dropped (remote connections).
    pub rate_dropped: u64,
}

/// A backlog against the high-water mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Both at or below it.
    Under,
    /// Its queue is over it.
    QueueOver,
    /// Its unacknowledged unicasts are over it (its queue is not).
    LedgerOver,
}

/// What [`Broker::deliver`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Routed (or owed a unicast error).
    Done,
    /// Nothing sent: the input's connection must wait for this one.
    Wait(ConnId),
}

/// Whether flow control applies to an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowMode {
    /// Pause the sender rather than pass a receiver's high-water mark.
    Apply,
    /// Route at once (inputs of adapters without flow control).
    Ignore,
}

/// The broker: routing table, whitelist, per-connection state, limits.
///
/// Capacities: `CONNS` connections (at most 65536), `REGS` registrations
/// (a power of two, at most 32768), `RULES` whitelist rules and `IFACES`
/// interface lines.
///
/// The routing table's slots live in `S`, the connection slots (each with
/// its [`ledger`]) in `C`: inline by default; a hosted adapter may pass
/// storages that grow on the heap ([`Broker::with_storage`]), so unused
/// capacity costs no memory. The default ledger keeps references only (no
/// frames: acknowledgements are declined, see
/// [`LedgerStorage::KEEPS_FRAMES`]).
pub struct Broker<
    const CONNS: usize,
    const REGS: usize,
    const RULES: usize,
    const IFACES: usize,
    S = InlineStorage<REGS>,
    C = InlineConns<CONNS, InlineLedger<0, 32>>,
> {
    whitelist: Whitelist<RULES, IFACES>,
    limits: Limits,
    table: RoutingTable<REGS, S>,
    slots: C,
    free: Vec<u16, CONNS>,
    observers: Vec<ConnId, MAX_OBSERVERS>,
    remote_registrations: usize,
    next_reference: u32,
    next_broadcast: u32,
    status: Status,
    protection: ProtectionCounters,
    flow_stats: FlowStats,
    /// Connections paused (waiting for another).
    paused: usize,
    /// Some backlog was over the high-water mark at the last look.
    watch: bool,
    /// The last [`Broker::handle_timeout`].
    last_check: Option<Timestamp>,
}

impl<const CONNS: usize, const REGS: usize, const RULES: usize, const IFACES: usize, S, C>
    fmt::Debug for Broker<CONNS, REGS, RULES, IFACES, S, C>
where
    S: RouteStorage,
    C: ConnStorage,
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
    /// and connections inline.
    pub fn new(whitelist: Whitelist<RULES, IFACES>, limits: Limits) -> Self {
        Self::with_storage(whitelist, limits, InlineStorage::new())
    }
}

impl<const CONNS: usize, const REGS: usize, const RULES: usize, const IFACES: usize, S, C>
    Broker<CONNS, REGS, RULES, IFACES, S, C>
where
    S: RouteStorage,
    C: ConnStorage,
{
    const CHECK: () = assert!(
        CONNS <= 1 << 16,
        "Broker connection capacity must fit 16 bits"
    );

    /// A broker with this whitelist and these limits, keeping its routing
    /// table's slots in `storage` (empty) and its connections in a new
    /// `C` (as [`InlineConns`], or the heap for a hosted adapter).
    pub fn with_storage(whitelist: Whitelist<RULES, IFACES>, limits: Limits, storage: S) -> Self
    where
        C: Default,
    {
        Self::with_conn_storage(whitelist, limits, storage, C::default())
    }

    /// [`Broker::with_storage`] with the connection storage given (empty),
    /// for a storage that is not made from nothing (lent memory).
    pub fn with_conn_storage(
        whitelist: Whitelist<RULES, IFACES>,
        limits: Limits,
        storage: S,
        conns: C,
    ) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        Broker {
            whitelist,
            limits,
            table: RoutingTable::with_storage(storage),
            slots: conns,
            free: Vec::new(),
            observers: Vec::new(),
            remote_registrations: 0,
            next_reference: 0,
            next_broadcast: 0,
            status: Status::default(),
            protection: ProtectionCounters::default(),
            flow_stats: FlowStats::default(),
            paused: 0,
            watch: false,
            last_check: None,
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

    /// Admits a connection of this kind, or says why not (and counts the
    /// refusal): a remote peer when only local ones are admitted, when the
    /// whitelist holds no rules, or when
    /// [`RemoteLimits::max_connections`] remote ones are open, any peer
    /// when the capacity `CONNS` or [`Limits::max_connections`] is reached.
    pub fn connect(&mut self, kind: PeerKind) -> Result<ConnId, ConnectRefused> {
        let refusal = match kind {
            PeerKind::Remote if self.limits.local_only => Some(ConnectRefused::LocalOnly),
            PeerKind::Remote if !self.whitelist.has_rules() => Some(ConnectRefused::NoRules),
            PeerKind::Remote
                if usize::try_from(self.status.remote_connections)
                    .is_ok_and(|open| open >= self.limits.remote.max_connections) =>
            {
                Some(ConnectRefused::RemoteLimit)
            }
            _ => None,
        };
        if let Some(refusal) = refusal {
            self.refused(kind);
            return Err(refusal);
        }
        let slot = self.free_slot().ok_or_else(|| {
            self.refused(kind);
            ConnectRefused::ConnectionLimit
        })?;
        let Some(entry) = self.slots.slots_mut().get_mut(usize::from(slot)) else {
            self.refused(kind);
            return Err(ConnectRefused::ConnectionLimit);
        };
        entry.conn = Some(ConnInfo {
            kind,
            encoding: Encoding::Json,
            app_id: None,
            registrations: 0,
            observer: false,
            unicast_errors: true,
            acks: false,
            closing: None,
            rate_dropped: 0,
        });
        entry.ledger.reset();
        entry.flow = FlowState::default();
        entry.bucket = None;
        match kind {
            PeerKind::Local => self.status.local_connections += 1,
            PeerKind::Remote => self.status.remote_connections += 1,
        }
        Ok(ConnId::new(slot, entry.generation))
    }

    /// A free slot number, if the limits and the capacity allow one more.
    fn free_slot(&mut self) -> Option<u16> {
        let have = self.slots.slots().len();
        let open = have - self.free.len();
        if open >= self.limits.max_connections {
            return None;
        }
        if let Some(s) = self.free.pop() {
            return Some(s);
        }
        let s = u16::try_from(have).ok()?;
        (have < CONNS && self.slots.push(ConnSlot::new())).then_some(s)
    }

    /// Counts a connection the adapter refused before asking (it had no
    /// file descriptor left to keep it, say), as `connect` counts its own
    /// refusals.
    pub fn refused(&mut self, kind: PeerKind) {
        self.protection.refused += 1;
        if kind == PeerKind::Remote {
            self.protection.remote_refused += 1;
        }
    }

    /// What the broker knows of `conn`, if it is open.
    pub fn connection(&self, conn: ConnId) -> Option<&ConnInfo> {
        slot_info(self.slots.slots(), conn)
    }

    fn slot_mut(&mut self, conn: ConnId) -> Option<&mut ConnSlot<C::Ledger>> {
        slot_mut(self.slots.slots_mut(), conn)
    }

    fn connection_mut(&mut self, conn: ConnId) -> Option<&mut ConnInfo> {
        self.slot_mut(conn)?.conn.as_mut()
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

    /// The protection counters: refused connections, rate-limited and
    /// oversize inputs.
    pub fn protection(&self) -> ProtectionCounters {
        self.protection
    }

    /// Flow-control counters.
    pub fn flow_stats(&self) -> FlowStats {
        self.flow_stats
    }

    /// True while `conn` waits for another connection (flow control).
    pub fn is_paused(&self, conn: ConnId) -> bool {
        slot_ref(self.slots.slots(), conn).is_some_and(|s| s.flow.waiting_for.is_some())
    }

    /// Unicasts `conn` was sent and has not acknowledged yet (0 unless it
    /// acknowledges).
    pub fn unacknowledged(&self, conn: ConnId) -> usize {
        slot_ref(self.slots.slots(), conn)
            .filter(|s| s.ledger.keeps_frames())
            .map_or(0, |s| s.ledger.len())
    }

    /// Handles what the adapter's decoder produced for `conn` at time
    /// `now`: a skipped input is counted and reported; a frame is checked
    /// against the connection's limits and decoded, then routed or
    /// answered. A remote connection's input first takes a token of its
    /// rate limit (or is dropped). [`Handled::Paused`] when flow control
    /// holds the input back (see [`flow`]).
    pub fn handle_input(
        &mut self,
        conn: ConnId,
        input: Decoded<'_>,
        now: Timestamp,
        out: &mut impl Outbox,
    ) -> Handled {
        let rate = self.limits.remote;
        let Some(slot) = slot_mut(self.slots.slots_mut(), conn) else {
            return Handled::Done;
        };
        let Some(info) = slot.conn.as_mut() else {
            return Handled::Done;
        };
        let kind = info.kind;
        let limited = kind == PeerKind::Remote && rate.rate > 0;
        if limited {
            let bucket = slot
                .bucket
                .get_or_insert_with(|| TokenBucket::new(rate.rate, rate.burst, now));
            if !bucket.take(now) {
                info.rate_dropped += 1;
                let first = info.rate_dropped == 1;
                self.protection.rate_limited += 1;
                if matches!(input, Decoded::Skipped(Skipped::Oversize { .. })) {
                    self.protection.oversize += 1;
                }
                if first {
                    out.event(Event::RateLimited { conn });
                }
                return Handled::Done;
            }
        }
        let handled = match input {
            Decoded::Skipped(skipped) => {
                self.skipped(conn, skipped, out);
                Handled::Done
            }
            Decoded::Frame(frame) => self.take_frame(conn, kind, frame, out),
        };
        if handled == Handled::Paused && limited {
            // It is given again later and takes its token then.
            if let Some(b) = self.slot_mut(conn).and_then(|s| s.bucket.as_mut()) {
                b.refund();
            }
        }
        handled
    }

    fn skipped(&mut self, conn: ConnId, skipped: Skipped, out: &mut impl Outbox) {
        if matches!(skipped, Skipped::Oversize { .. }) {
            self.protection.oversize += 1;
        }
        out.event(Event::Skipped { conn, skipped });
    }

    /// A frame from the decoder: the frame limit, then decoding, then the
    /// message with flow control.
    fn take_frame(
        &mut self,
        conn: ConnId,
        kind: PeerKind,
        frame: Frame<'_>,
        out: &mut impl Outbox,
    ) -> Handled {
        let encoding = Encoding::from_msg_id(frame.msg_id);
        if encoding == Encoding::Compact {
            // The most frequent message of our library's receivers: its
            // one field is read without the general decoding.
            if let Some(reference) = msg::compact::ack_reference(frame.body) {
                self.acknowledge(conn, reference, out);
                return Handled::Done;
            }
        }
        if frame.body.len() > self.limits.frame_limit(kind)
            && msg::notify_reference(encoding, frame.body).is_none()
        {
            let body_len = u32::try_from(frame.body.len()).unwrap_or(u32::MAX);
            self.skipped(conn, Skipped::Oversize { body_len }, out);
            return Handled::Done;
        }
        match msg::decode(encoding, frame.body) {
            Ok(m) => self.dispatch(conn, m, FlowMode::Apply, out),
            Err(error) => {
                out.event(Event::BadMessage { conn, error });
                Handled::Done
            }
        }
    }

    /// Handles one frame received on `conn` as it is: decodes its body in
    /// the encoding its message id names, then [`Broker::handle`]s it. No
    /// rate limit, frame limit or flow control: for adapters that apply
    /// none (in-process tests and tools); a server uses
    /// [`Broker::handle_input`].
    pub fn handle_frame(&mut self, conn: ConnId, frame: Frame<'_>, out: &mut impl Outbox) {
        match msg::decode(Encoding::from_msg_id(frame.msg_id), frame.body) {
            Ok(m) => self.handle(conn, m, out),
            Err(error) => out.event(Event::BadMessage { conn, error }),
        }
    }

    /// Handles one decoded message received on `conn`, without flow
    /// control (see [`Broker::handle_frame`]). Messages for a connection
    /// that is not open are ignored.
    pub fn handle(&mut self, conn: ConnId, msg: Message<'_>, out: &mut impl Outbox) {
        let _ = self.dispatch(conn, msg, FlowMode::Ignore, out);
    }

    fn dispatch(
        &mut self,
        conn: ConnId,
        msg: Message<'_>,
        flow: FlowMode,
        out: &mut impl Outbox,
    ) -> Handled {
        let Some(info) = self.connection(conn) else {
            return Handled::Done;
        };
        let kind = info.kind;
        let hello = info.encoding == Encoding::Compact;
        // A connection being closed cannot wait.
        let flow = if info.closing.is_some() {
            FlowMode::Ignore
        } else {
            flow
        };
        match msg {
            Message::Register(r) => self.register(conn, kind, r, out),
            Message::Unregister(u) => self.unregister(conn, kind, &u),
            Message::Notify(n) => return self.notify(conn, kind, n, flow, out),
            Message::Hello(h) => {
                if let Some(slot) = self.slot_mut(conn) {
                    let forgotten = slot.ledger.set_keep_frames(h.acks);
                    let acks = slot.ledger.keeps_frames();
                    if let Some(c) = slot.conn.as_mut() {
                        c.encoding = Encoding::Compact;
                        c.app_id = h.app_id;
                        c.acks = acks;
                    }
                    out.event(Event::Hello {
                        conn,
                        acks,
                        forgotten,
                    });
                }
                // Every peer that says hello: our library also connects
                // from other hosts (over TLS, issue 16), where it cannot
                // ask for status and ends its handshake at the welcome;
                // the limit told is the one that applies to the peer
                // (`--max-remote-frame` for a remote one), nothing it
                // could not find out by sending.
                if let Some(max_frame) = out.frame_limit(conn) {
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
            Message::Ack(reference) => self.acknowledge(conn, reference, out),
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
            | Message::Registration(_)
            | Message::TlsPeer(_)
            | Message::TlsCounters(_)) => out.event(Event::Ignored {
                conn,
                kind: m.kind(),
            }),
        }
        Handled::Done
    }

    /// `conn` acknowledged the unicast with this reference: its ledger
    /// forgets it (progress for the stall judgement; senders waiting for
    /// `conn` may go on).
    fn acknowledge(&mut self, conn: ConnId, reference: u64, out: &mut impl Outbox) {
        let kept = self.slot_mut(conn).is_some_and(|s| {
            let kept = s.ledger.keeps_frames() && s.ledger.forget(reference);
            if kept {
                s.flow.progress = s.flow.progress.wrapping_add(1);
            }
            kept
        });
        if kept {
            self.maybe_resume(conn, out);
        }
        out.event(Event::Acked {
            conn,
            reference,
            kept,
        });
    }

    /// Every open connection, in slot order.
    pub fn connections(&self) -> impl Iterator<Item = (ConnId, &ConnInfo)> + '_ {
        self.slots
            .slots()
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| {
                let info = slot.conn.as_ref()?;
                let index = u16::try_from(i).ok()?;
                Some((ConnId::new(index, slot.generation), info))
            })
    }

    /// Answers a `ConnectionsRequest` from `conn`: one
    /// [`Message::Connection`] per open connection (its peer from
    /// [`Outbox::peer`]), one [`Message::Registration`] per registration,
    /// what the adapter adds ([`Outbox::report_more`]: TLS), then
    /// [`Message::ConnectionsEnd`] with the protection counters. A full
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
            || out.report_more(conn).is_err()
            || out
                .send(
                    conn,
                    Encoding::Compact,
                    &Message::ConnectionsEnd(self.protection),
                )
                .is_err()
        {
            self.overflow(conn, out);
        }
    }

    /// The adapter is closing `conn`: nothing more is routed to it, and
    /// what it still sent (input the adapter reads or held before closing
    /// it) is handled without flow control, as it cannot wait any more.
    /// Then [`Broker::return_undelivered`] and [`Broker::disconnect`].
    pub fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.connection_mut(conn) {
            if c.closing.is_none() {
                c.closing = Some(Closing::Closed);
            }
        }
    }

    /// Removes a connection and everything it held. The unicasts it was
    /// sent and never acknowledged are routed again first (oldest first),
    /// as [`Broker::return_undelivered`] does for frames still queued for
    /// it, which the adapter should give before. Connections waiting for
    /// it go on ([`Event::Resumed`]).
    pub fn disconnect(&mut self, conn: ConnId, out: &mut impl Outbox) {
        let Some(slot) = self.slot_mut(conn) else {
            return;
        };
        let Some(info) = slot.conn.as_mut() else {
            return;
        };
        let kind = info.kind;
        info.closing = Some(Closing::Closed);
        let ledger = core::mem::take(&mut slot.ledger);
        let waiting_for = slot.flow.waiting_for.take();
        if let Some(target) = waiting_for {
            self.paused = self.paused.saturating_sub(1);
            if let Some(t) = self.slot_mut(target) {
                t.flow.waiters = t.flow.waiters.saturating_sub(1);
            }
        }
        self.resume_waiters(conn, out);
        // Known when compiling: a storage that keeps no frames (a
        // reference-only ledger) leaves the decoding out of the build.
        if <C::Ledger as LedgerStorage>::KEEPS_FRAMES {
            for (_, frame) in ledger.frames() {
                if let Ok(view) = wire::FrameView::new_checked(frame) {
                    self.return_frame(conn, view.frame(), out);
                }
            }
        }
        let removed = self.table.remove_connection(conn, |_| {});
        if kind == PeerKind::Remote {
            self.remote_registrations = self.remote_registrations.saturating_sub(removed);
            self.status.remote_connections = self.status.remote_connections.saturating_sub(1);
        } else {
            self.status.local_connections = self.status.local_connections.saturating_sub(1);
        }
        self.observers.retain(|c| *c != conn);
        if let Some(slot) = self.slots.slots_mut().get_mut(conn.index()) {
            let mut ledger = ledger;
            ledger.reset();
            slot.ledger = ledger;
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
    /// Other messages are dropped, and so is a unicast `conn`'s ledger
    /// keeps (it goes back once, with [`Broker::disconnect`]). Call before
    /// [`Broker::disconnect`].
    pub fn return_undelivered(&mut self, conn: ConnId, frame: Frame<'_>, out: &mut impl Outbox) {
        if let Ok(Message::Notify(n)) = msg::decode(Encoding::from_msg_id(frame.msg_id), frame.body)
        {
            let kept = n.reference.is_some_and(|r| {
                slot_ref(self.slots.slots(), conn)
                    .is_some_and(|s| s.ledger.keeps_frames() && s.ledger.contains(r))
            });
            if !kept && n.reference.is_some() && n.to.is_unicast() {
                self.reroute(conn, n, out);
            }
        }
    }

    /// Routes a unicast given back by closing connection `conn` again.
    fn return_frame(&mut self, conn: ConnId, frame: Frame<'_>, out: &mut impl Outbox) {
        if let Ok(Message::Notify(n)) = msg::decode(Encoding::from_msg_id(frame.msg_id), frame.body)
        {
            if n.reference.is_some() && n.to.is_unicast() {
                self.reroute(conn, n, out);
            }
        }
    }

    /// The adapter wrote `bytes` of `conn`'s queue to its socket (0: a
    /// send that took nothing). Progress for the stall judgement; when
    /// `conn` has drained below the low-water mark, the connections
    /// waiting for it go on ([`Event::Resumed`]).
    pub fn sent(&mut self, conn: ConnId, bytes: usize, out: &mut impl Outbox) {
        let Some(slot) = self.slot_mut(conn) else {
            return;
        };
        if bytes > 0 {
            slot.flow.progress = slot.flow.progress.wrapping_add(1);
        }
        self.maybe_resume(conn, out);
    }

    /// Handles the acknowledgements found among the whole frames of `run`
    /// ahead of the input before them. `run` is input held for paused
    /// connection `conn` (starting at a frame boundary: what was added
    /// since the last call); while paused, the adapter goes on reading its
    /// socket into what it holds, up to a bound, and gives each new part
    /// here. Acknowledgements are progress that must not wait behind the
    /// input flow control holds back: a connection that is waited on for
    /// its acknowledgements may itself be paused (see [`flow`]). The frames
    /// stay in the held input and are handled again in order later (the
    /// acknowledgement then forgets the reference it released here).
    /// Returns how many bytes of whole frames were looked at: the next
    /// call starts after them.
    pub fn acknowledge_held(&mut self, conn: ConnId, run: &[u8], out: &mut impl Outbox) -> usize {
        let mut walked = 0;
        let mut acked = false;
        for view in wire::frames(run) {
            walked += view.total_len();
            if Encoding::from_msg_id(view.msg_id()) != Encoding::Compact {
                continue;
            }
            let Some(reference) = msg::compact::ack_reference(view.body()) else {
                continue;
            };
            if let Some(slot) = self.slot_mut(conn) {
                if slot.ledger.acknowledge_early(reference) {
                    slot.flow.progress = slot.flow.progress.wrapping_add(1);
                    acked = true;
                }
            }
        }
        if acked {
            self.maybe_resume(conn, out);
        }
        walked
    }

    /// When the adapter should call [`Broker::handle_timeout`] next
    /// (`None`: no timer needed: nobody waits and no backlog is over the
    /// high-water mark).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.paused == 0 && !self.watch {
            return None;
        }
        Some(self.last_check.map_or(Timestamp::ZERO, |t| {
            t.saturating_add(flow::check_interval(self.limits.flow.stall_timeout))
        }))
    }

    /// Judges stalls at time `now` (see [`flow`]): a connection that holds
    /// others back, or whose backlog is over the high-water mark, and made
    /// no progress for the stall timeout is reported as
    /// [`Event::Stalled`] (once) and no longer routed to.
    pub fn handle_timeout(&mut self, now: Timestamp, out: &mut impl Outbox) {
        self.last_check = Some(now);
        if self.paused == 0 && !self.watch {
            return;
        }
        let FlowLimits {
            high_water,
            stall_timeout,
            ..
        } = self.limits.flow;
        let mut watch = false;
        for i in 0..self.slots.slots().len() {
            let Some(slot) = self.slots.slots_mut().get_mut(i) else {
                continue;
            };
            let Ok(index) = u16::try_from(i) else {
                continue;
            };
            let id = ConnId::new(index, slot.generation);
            let Some(info) = slot.conn.as_mut() else {
                continue;
            };
            if info.closing.is_some() {
                continue;
            }
            let backlog = out.backlog(id);
            let unacknowledged = slot.ledger.live_bytes();
            let over = backlog > high_water || unacknowledged > high_water;
            watch |= over;
            let f = &mut slot.flow;
            if !over && f.waiters == 0 {
                f.judged = false;
                continue;
            }
            if !f.judged || f.progress != f.seen {
                f.judged = true;
                f.seen = f.progress;
                f.since = now;
                continue;
            }
            let idle = now.saturating_duration_since(f.since);
            if idle < stall_timeout {
                continue;
            }
            info.closing = Some(Closing::Stalled);
            self.flow_stats.stalls += 1;
            out.event(Event::Stalled {
                conn: id,
                idle,
                backlog,
                unacknowledged,
                waiters: f.waiters,
            });
        }
        self.watch = watch;
    }

    /// Resumes the connections waiting for `conn` once it has drained.
    fn maybe_resume(&mut self, conn: ConnId, out: &mut impl Outbox) {
        if self.paused == 0 {
            return;
        }
        let low = self.limits.flow.low_water;
        let drained = slot_ref(self.slots.slots(), conn).is_some_and(|s| {
            s.flow.waiters > 0 && out.backlog(conn) <= low && s.ledger.live_bytes() <= low
        });
        if drained {
            self.resume_waiters(conn, out);
        }
    }

    /// Every connection waiting for `target` goes on.
    fn resume_waiters(&mut self, target: ConnId, out: &mut impl Outbox) {
        let waiters = slot_ref(self.slots.slots(), target).map_or(0, |s| s.flow.waiters);
        if waiters == 0 {
            return;
        }
        for (i, slot) in self.slots.slots_mut().iter_mut().enumerate() {
            if slot.conn.is_none() || slot.flow.waiting_for != Some(target) {
                continue;
            }
            slot.flow.waiting_for = None;
            self.paused = self.paused.saturating_sub(1);
            if let Ok(index) = u16::try_from(i) {
                out.event(Event::Resumed {
                    conn: ConnId::new(index, slot.generation),
                });
            }
        }
        if let Some(t) = self.slot_mut(target) {
            t.flow.waiters = 0;
        }
    }

    fn pause(&mut self, conn: ConnId, waiting_for: ConnId, out: &mut impl Outbox) {
        if let Some(s) = self.slot_mut(conn) {
            s.flow.waiting_for = Some(waiting_for);
        }
        if let Some(t) = self.slot_mut(waiting_for) {
            t.flow.waiters += 1;
        }
        self.paused += 1;
        self.flow_stats.pauses += 1;
        out.event(Event::Paused { conn, waiting_for });
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

    fn notify(
        &mut self,
        conn: ConnId,
        kind: PeerKind,
        n: Notify<'_>,
        flow: FlowMode,
        out: &mut impl Outbox,
    ) -> Handled {
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
            return Handled::Done;
        }
        let returned = n.reference.filter(|&r| {
            n.to.is_unicast()
                && self.connection(sender_of(r)).is_some()
                && slot_ref(self.slots.slots(), conn).is_some_and(|s| s.ledger.contains(r))
        });
        let waiter = (flow == FlowMode::Apply).then_some(conn);
        let delivery = match returned {
            // The unicast error, if owed, goes to the original sender.
            Some(r) => self.deliver(sender_of(r), Some(conn), n, waiter, out),
            None => {
                let mut n = n;
                n.reference = None;
                self.deliver(conn, None, n, waiter, out)
            }
        };
        match delivery {
            Delivery::Wait(target) => {
                self.pause(conn, target, out);
                Handled::Paused
            }
            Delivery::Done => {
                if let Some(r) = returned {
                    // Returned once: the same reference is not taken again.
                    if let Some(s) = self.slot_mut(conn) {
                        s.ledger.forget(r);
                    }
                    self.maybe_resume(conn, out);
                }
                Handled::Done
            }
        }
    }

    /// Routes a unicast given back by closing connection `returned_by`
    /// again (without flow control: it has no sender to hold back).
    fn reroute(&mut self, returned_by: ConnId, n: Notify<'_>, out: &mut impl Outbox) {
        let sender = n
            .reference
            .map(sender_of)
            .filter(|s| self.connection(*s).is_some());
        let _ = self.deliver(
            sender.unwrap_or(returned_by),
            Some(returned_by),
            n,
            None,
            out,
        );
    }

    /// Routes `n` from `sender` (to whom a unicast error is owed, when it
    /// is alive), skipping `exclude`'s registrations, sends it, tells
    /// observers, and owes a unicast error when nobody got it. With a
    /// `waiter` (flow control), first decides, on the same routing, whether
    /// a receiver is over its high-water mark (see [`flow`]): then nothing
    /// is sent and the answer is [`Delivery::Wait`].
    fn deliver(
        &mut self,
        sender: ConnId,
        exclude: Option<ConnId>,
        n: Notify<'_>,
        waiter: Option<ConnId>,
        out: &mut impl Outbox,
    ) -> Delivery {
        // Receivers whose queue turned out full during this delivery; they
        // are skipped and closed afterwards.
        let mut full: Vec<ConnId, 8> = Vec::new();
        let mut delivered = 0u64;
        let flow_limits = self.limits.flow;
        let max_queue = self.limits.max_queue;
        let Broker {
            table,
            slots,
            whitelist,
            observers,
            flow_stats,
            watch,
            next_reference,
            next_broadcast,
            ..
        } = self;
        let slots = slots.slots_mut();
        // Flow control: whether `c` is over the mark and may be waited for.
        let mut overrun = false;
        let mut must_wait = |slots: &[ConnSlot<C::Ledger>], waiter: ConnId, c: ConnId| match mark(
            slots,
            c,
            flow_limits.high_water,
            out,
        ) {
            Mark::Under => false,
            Mark::QueueOver => true,
            Mark::LedgerOver if would_cycle(slots, waiter, c) => {
                overrun = true;
                false
            }
            Mark::LedgerOver => true,
        };
        let unicast = n.to.is_unicast();
        let route = |slots: &[ConnSlot<C::Ledger>], n: &Notify<'_>, full: &[ConnId]| match table
            .route(&n.to, &n.notification, |r: &Registration<'_>| {
                allowed(slots, whitelist, n, exclude, full, r)
            }) {
            Route::Unicast(r) => Some((r.conn, r.to.clone())),
            _ => None,
        };
        // Flow control first: nothing is sent when the input must wait.
        let mut target = None;
        if unicast {
            target = route(slots, &n, &full);
            if let Some(waiter) = waiter {
                // Nobody receives it: its unicast error is what goes out.
                let gate = target.as_ref().map(|(c, _)| *c).or_else(|| {
                    slot_info(slots, sender)
                        .is_some_and(|i| i.unicast_errors && i.closing.is_none())
                        .then_some(sender)
                });
                if let Some(c) = gate.filter(|&c| must_wait(slots, waiter, c)) {
                    return Delivery::Wait(c);
                }
            }
        } else if let Some(waiter) = waiter {
            let blocker = table
                .candidates(&n.notification)
                .filter(|r| allowed(slots, whitelist, &n, exclude, &[], r))
                .map(|r| r.conn)
                .find(|&c| must_wait(slots, waiter, c));
            if let Some(c) = blocker {
                return Delivery::Wait(c);
            }
        }
        // The message sent is `n` itself, moved (a notification is a few
        // hundred bytes: no copy on the stack), with the reference a
        // unicast goes out with.
        let came_with = n.reference;
        let reference = unicast.then(|| {
            came_with.unwrap_or_else(|| {
                *next_reference = next_reference.wrapping_add(1);
                (u64::from(sender.raw()) << 32) | u64::from(*next_reference)
            })
        });
        let msg = Message::Notify(Notify { reference, ..n });
        let Message::Notify(n) = &msg else {
            return Delivery::Done;
        };
        let mut observing = Observing {
            observers,
            flow: &flow_limits,
            stats: flow_stats,
            watch,
        };
        if unicast {
            // Each failed attempt marks one more receiver full, so this ends.
            while let Some((conn, to)) = target.take() {
                if send_unicast(out, slots, conn, &msg, reference, max_queue) {
                    delivered = 1;
                    observing.tell(out, slots, n, Some(to), &mut full);
                    break;
                }
                if full.push(conn).is_err() {
                    break;
                }
                target = route(slots, n, &full);
            }
            if delivered == 0 {
                observing.tell(out, slots, n, None, &mut full);
            }
        } else {
            *next_broadcast = next_broadcast.wrapping_add(1).max(1);
            let stamp = *next_broadcast;
            let mut receivers = table.candidates(&n.notification);
            while let Some(r) = receivers.find(|r| allowed(slots, whitelist, n, exclude, &full, r))
            {
                let seen = slots
                    .get(r.conn.index())
                    .is_some_and(|s| s.broadcast.get() == stamp);
                // A connection with several matching registrations gets the
                // message once (its library runs every matching callback),
                // but observers hear of each receiving registration.
                if seen || send(out, slots, r.conn, &msg) {
                    if let Some(slot) = slots.get(r.conn.index()) {
                        slot.broadcast.set(stamp);
                    }
                    delivered += 1;
                    observing.tell(out, slots, n, Some(r.to.clone()), &mut full);
                } else if full.push(r.conn).is_err() {
                    break;
                }
            }
            if delivered == 0 {
                observing.tell(out, slots, n, None, &mut full);
            }
        }
        if overrun {
            self.flow_stats.cycle_overruns += 1;
            self.watch = true;
        }
        for c in full {
            self.overflow(c, out);
        }
        self.status.delivered += delivered;
        if delivered == 0 && unicast {
            if let Message::Notify(n) = msg {
                self.unicast_error(
                    sender,
                    Notify {
                        reference: came_with,
                        ..n
                    },
                    out,
                );
            }
        }
        Delivery::Done
    }

    fn unicast_error(&mut self, sender: ConnId, n: Notify<'_>, out: &mut impl Outbox) {
        self.status.unicast_errors += 1;
        out.event(Event::UnicastError { sender, notify: &n });
        let Some(info) = self.connection(sender) else {
            return;
        };
        if !info.unicast_errors || info.closing.is_some() {
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
            if c.closing.is_none() {
                c.closing = Some(Closing::Overflow);
                out.event(Event::Overflow { conn });
            }
        }
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

fn slot_ref<L>(slots: &[ConnSlot<L>], conn: ConnId) -> Option<&ConnSlot<L>> {
    let slot = slots.get(conn.index())?;
    (slot.generation == conn.generation() && slot.conn.is_some()).then_some(slot)
}

fn slot_mut<L>(slots: &mut [ConnSlot<L>], conn: ConnId) -> Option<&mut ConnSlot<L>> {
    let slot = slots.get_mut(conn.index())?;
    (slot.generation == conn.generation() && slot.conn.is_some()).then_some(slot)
}

fn slot_info<L>(slots: &[ConnSlot<L>], conn: ConnId) -> Option<&ConnInfo> {
    slot_ref(slots, conn)?.conn.as_ref()
}

/// How `conn`'s backlog stands against the high-water mark `high`.
fn mark<L: LedgerStorage>(
    slots: &[ConnSlot<L>],
    conn: ConnId,
    high: usize,
    out: &impl Outbox,
) -> Mark {
    match slot_ref(slots, conn) {
        Some(_) if out.backlog(conn) > high => Mark::QueueOver,
        Some(s) if s.ledger.live_bytes() > high => Mark::LedgerOver,
        _ => Mark::Under,
    }
}

/// True when `target` waits, directly or through others, for `waiter`:
/// making `waiter` wait for it would close a cycle.
fn would_cycle<L>(slots: &[ConnSlot<L>], waiter: ConnId, target: ConnId) -> bool {
    let mut at = target;
    for _ in 0..=slots.len() {
        if at == waiter {
            return true;
        }
        match slot_ref(slots, at).and_then(|s| s.flow.waiting_for) {
            Some(next) => at = next,
            None => return false,
        }
    }
    false
}

/// Whether registration `r` may receive `n`: not excluded, not found full
/// in this delivery, open, and local or allowed by an `out` rule.
fn allowed<L, const RULES: usize, const IFACES: usize>(
    slots: &[ConnSlot<L>],
    whitelist: &Whitelist<RULES, IFACES>,
    n: &Notify<'_>,
    exclude: Option<ConnId>,
    full: &[ConnId],
    r: &Registration<'_>,
) -> bool {
    if Some(r.conn) == exclude || full.contains(&r.conn) {
        return false;
    }
    let Some(info) = slot_info(slots, r.conn) else {
        return false;
    };
    info.closing.is_none()
        && (info.kind == PeerKind::Local
            || whitelist.allows_out(&n.from, n.to.as_str(), &n.notification))
}

/// Sends to `conn` in its encoding; false when its queue is full or it is
/// gone.
fn send<L>(out: &mut impl Outbox, slots: &[ConnSlot<L>], conn: ConnId, msg: &Message<'_>) -> bool {
    match slot_info(slots, conn) {
        Some(info) if info.closing.is_none() => out.send(conn, info.encoding, msg).is_ok(),
        _ => false,
    }
}

/// Sends a unicast to `conn` and records it in its ledger: the frame kept
/// until acknowledged (encoded once, into the ledger, and queued from
/// there), or the reference remembered. False when it could not be queued
/// (the queue, or the ledger, is full).
fn send_unicast<L: LedgerStorage>(
    out: &mut impl Outbox,
    slots: &mut [ConnSlot<L>],
    conn: ConnId,
    msg: &Message<'_>,
    reference: Option<u64>,
    max_queue: usize,
) -> bool {
    let Some(slot) = slot_mut(slots, conn) else {
        return false;
    };
    let Some(info) = slot.conn.as_ref().filter(|i| i.closing.is_none()) else {
        return false;
    };
    let encoding = info.encoding;
    let Some(reference) = reference else {
        return out.send(conn, encoding, msg).is_ok();
    };
    // `KEEPS_FRAMES` first: known when compiling, so a reference-only
    // ledger leaves the frame encoding (and `Outbox::send_frame`) out.
    if !L::KEEPS_FRAMES || !slot.ledger.keeps_frames() {
        let sent = out.send(conn, encoding, msg).is_ok();
        if sent {
            slot.ledger.remember(reference);
        }
        return sent;
    }
    let kept = slot.ledger.keep(reference, max_queue, |space| {
        wire::encode_frame(space, encoding.msg_id(), |body| {
            msg::encode(msg, encoding, body)
        })
        .map_err(|e| match e {
            FrameError::BufferFull | FrameError::Body(EncodeError::BufferFull) => {
                WriteError::NeedSpace
            }
            FrameError::Body(EncodeError::Unsupported) => WriteError::Unwritable,
        })
    });
    match kept {
        Ok(frame) => {
            if out.send_frame(conn, frame).is_ok() {
                true
            } else {
                slot.ledger.retract_newest();
                false
            }
        }
        Err(KeepError::Full) => false,
        // No frame to keep: let the adapter say why it cannot send it.
        Err(KeepError::Unwritable) => out.send(conn, encoding, msg).is_ok(),
    }
}

/// Telling observers of deliveries (see [`flow`]: an observer over the
/// high-water mark misses events, and never holds a sender back).
struct Observing<'b> {
    observers: &'b [ConnId],
    flow: &'b FlowLimits,
    stats: &'b mut FlowStats,
    watch: &'b mut bool,
}

impl Observing<'_> {
    /// Tells every observer of one delivery (`to` = the receiver) or of a
    /// notification nobody received (`to` = `None`). An observer whose
    /// queue is full misses the event and is added to `full`; the
    /// notification itself is not affected.
    fn tell<L: LedgerStorage>(
        &mut self,
        out: &mut impl Outbox,
        slots: &mut [ConnSlot<L>],
        n: &Notify<'_>,
        to: Option<AppId>,
        full: &mut Vec<ConnId, 8>,
    ) {
        if self.observers.is_empty() {
            return;
        }
        let msg = Message::Observed(Observation {
            from: n.from.clone(),
            to,
            notification: n.notification.clone(),
            flags: n.flags,
        });
        let FlowLimits {
            high_water,
            low_water,
            ..
        } = *self.flow;
        for &o in self.observers {
            let backlog = out.backlog(o);
            if let Some(slot) = slot_mut(slots, o) {
                if backlog > high_water {
                    self.stats.observer_events_dropped += 1;
                    *self.watch = true;
                    if !slot.flow.behind {
                        slot.flow.behind = true;
                        out.event(Event::ObserverBehind { conn: o });
                    }
                    continue;
                }
                if slot.flow.behind {
                    if backlog > low_water {
                        self.stats.observer_events_dropped += 1;
                        continue;
                    }
                    slot.flow.behind = false;
                }
            }
            if !send(out, slots, o, &msg) && !full.contains(&o) {
                let _ = full.push(o);
            }
        }
    }
}

#[cfg(test)]
mod tests;
