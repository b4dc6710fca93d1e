//! The broker's limits (spec section 6), its admission rules and the
//! refusals it reports.
//!
//! Every limit is a named field with a documented default ([`Limits::DEFAULT`]);
//! a platform profile narrows them (the Verix-style one: fewer connections,
//! smaller frames, local peers only) and an adapter's command line sets
//! them (`notifysvc --help`).

use core::fmt;
use core::time::Duration;

use super::PeerKind;
use crate::wire::HEADER_LEN;

/// Room above a connection's frame limit for notifications that come back.
///
/// A notification grows on its way through the server: it gains a
/// `reference`, `flags` and `parameter` are written out when the sender
/// left them out, and a compact body forwarded to a JSON client gains the
/// member names and the escapes of its IDs (a few hundred bytes at worst).
/// A client that returns it unchanged (the unregister race, spec 3) must
/// not see it skipped as oversize, or it would be lost silently. So a
/// frame body up to this much over the limit is accepted when it is a
/// notify carrying a `reference` (a returned one); any other body over the
/// limit is skipped and reported like a frame the decoder skipped.
pub const RETURN_SLACK: usize = 512;

/// The broker's limits.
///
/// They apply at run time, on top of the broker's fixed capacities (the
/// `CONNS` and `REGS` parameters of [`Broker`](super::Broker)): a platform
/// profile with tighter limits than the capacities it was built with (the
/// Verix-style profile) sets them here. Hitting a limit gives the same
/// typed answer as hitting the capacity: [`ConnectRefused::ConnectionLimit`]
/// for connections, [`Refusal::TableFull`] for the total of registrations.
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
    /// Largest frame body accepted from a local connection; a larger one
    /// is skipped and counted as oversize (returned notifications get
    /// [`RETURN_SLACK`] more). The adapter gives each connection's decoder
    /// [`Limits::decoder_len`] bytes.
    pub max_frame: usize,
    /// Bound of one connection's unsent output (the adapter's queue; a
    /// frame that would pass it is refused with
    /// [`QueueFull`](super::QueueFull) and the connection closed as an
    /// overflow) and, apart from it, of the unicasts it was sent and has
    /// not acknowledged (its ledger).
    pub max_queue: usize,
    /// Admit local peers only: a remote peer is refused
    /// ([`ConnectRefused::LocalOnly`]) whatever reaches a socket (the
    /// Verix-style profile).
    pub local_only: bool,
    /// What remote connections may use besides.
    pub remote: RemoteLimits,
    /// Flow control: when senders wait, and for how long at most.
    pub flow: FlowLimits,
}

impl Limits {
    /// The spec's limit on remote registrations.
    pub const MAX_REMOTE_REGISTRATIONS: usize = 256;

    /// The defaults (also [`Limits::default`]): the Linux server's.
    pub const DEFAULT: Limits = Limits {
        max_registrations_per_connection: 1024,
        max_remote_registrations: Self::MAX_REMOTE_REGISTRATIONS,
        max_connections: usize::MAX,
        max_registrations: usize::MAX,
        max_frame: 64 * 1024,
        max_queue: 4 * 1024 * 1024,
        local_only: false,
        remote: RemoteLimits::DEFAULT,
        flow: FlowLimits::for_queue(4 * 1024 * 1024),
    };

    /// The largest frame body accepted from a peer of this kind.
    pub const fn frame_limit(&self, kind: PeerKind) -> usize {
        match kind {
            PeerKind::Local => self.max_frame,
            PeerKind::Remote if self.remote.max_frame < self.max_frame => self.remote.max_frame,
            PeerKind::Remote => self.max_frame,
        }
    }

    /// The storage a connection's frame decoder needs: the frame limit
    /// for its kind, [`RETURN_SLACK`] and a header.
    pub const fn decoder_len(&self, kind: PeerKind) -> usize {
        self.frame_limit(kind)
            .saturating_add(RETURN_SLACK)
            .saturating_add(HEADER_LEN)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// What remote connections (TCP from a non-loopback address) may use, on
/// top of the limits every connection has. See the threat model in
/// `docs/reliability.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteLimits {
    /// Remote connections open at once; one more is refused
    /// ([`ConnectRefused::RemoteLimit`], counted as `remote_refused`). 0
    /// refuses every remote connection.
    pub max_connections: usize,
    /// Largest frame body accepted from a remote connection (the smaller
    /// of this and [`Limits::max_frame`] applies); a larger frame is
    /// skipped whole (counted as `oversize`).
    pub max_frame: usize,
    /// Sustained frames per second one remote connection may send; frames
    /// beyond [`RemoteLimits::burst`] plus this rate are dropped unread
    /// (counted as `rate_limited`). 0: no rate limit.
    pub rate: u32,
    /// Frames a remote connection may send at once (the token bucket's
    /// size; 0 acts as 1).
    pub burst: u32,
}

impl RemoteLimits {
    /// The defaults: 32 connections, 16 KiB frames, 100 frames/s with
    /// bursts of 512 (room for all 256 remote registrations at once).
    pub const DEFAULT: RemoteLimits = RemoteLimits {
        max_connections: 32,
        max_frame: 16 * 1024,
        rate: 100,
        burst: 512,
    };
}

impl Default for RemoteLimits {
    fn default() -> Self {
        RemoteLimits::DEFAULT
    }
}

/// Flow control (see [`flow`](super::flow)): the marks a connection's
/// backlog is judged by, and how long a receiver may take nothing before
/// it counts as stalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowLimits {
    /// A connection whose backlog (unsent output, or unacknowledged
    /// unicasts) is over this many bytes holds back the connections that
    /// send it more.
    pub high_water: usize,
    /// Connections held back by a connection go on once its backlog is at
    /// or below this many bytes (below [`FlowLimits::high_water`], so a
    /// sender is not paused and resumed for every frame).
    pub low_water: usize,
    /// A connection that holds others back, or whose backlog is over the
    /// high-water mark, and takes no bytes (and acknowledges nothing) for
    /// this long is stalled: it is disconnected and what it was sent goes
    /// back to the broker.
    pub stall_timeout: Duration,
}

impl FlowLimits {
    /// The default stall timeout.
    pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(5);

    /// The defaults for a queue limit of `max_queue` bytes: high-water
    /// mark a quarter of it, low-water mark a quarter of that, stall
    /// timeout [`FlowLimits::DEFAULT_STALL_TIMEOUT`]. With a queue that
    /// holds two maximum-size frames (the smallest the Linux server
    /// accepts), a frame queued just under the high-water mark still fits.
    pub const fn for_queue(max_queue: usize) -> FlowLimits {
        FlowLimits {
            high_water: max_queue / 4,
            low_water: max_queue / 16,
            stall_timeout: Self::DEFAULT_STALL_TIMEOUT,
        }
    }
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits::for_queue(Limits::DEFAULT.max_queue)
    }
}

/// Why a connection was not admitted ([`Broker::connect`](super::Broker::connect)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectRefused {
    /// A remote peer, and the limits admit local peers only.
    LocalOnly,
    /// A remote peer, and the whitelist holds no `in`/`out` rule: nothing
    /// it could send or receive would pass, so remote access is closed
    /// (spec 4: without rules the server listens on loopback only; a
    /// reload to such a configuration closes the listeners' doors instead,
    /// see [`Broker::set_whitelist`](super::Broker::set_whitelist)).
    NoRules,
    /// A remote peer over [`RemoteLimits::max_connections`].
    RemoteLimit,
    /// The capacity `CONNS` or [`Limits::max_connections`] is reached.
    ConnectionLimit,
}

impl fmt::Display for ConnectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectRefused::LocalOnly => "local connections only",
            ConnectRefused::NoRules => "the whitelist has no in/out rules (remote access closed)",
            ConnectRefused::RemoteLimit => "remote connection limit reached",
            ConnectRefused::ConnectionLimit => "connection limit reached",
        })
    }
}

impl core::error::Error for ConnectRefused {}

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
    /// More observers than [`MAX_OBSERVERS`](super::MAX_OBSERVERS).
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
