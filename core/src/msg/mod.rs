//! The message layer (spec section 5.2 and 5.3): what travels inside a frame.
//!
//! [`Message`] is the one in-memory form of every message, whichever body
//! encoding carried it. Identifiers are copied into inline strings (they are
//! short); the notification parameter stays borrowed as [`RawJson`] text, so
//! the broker forwards it without decoding or re-encoding it.
//!
//! - [`json`]: the documented JSON bodies (frame message id 0).
//! - [`compact`]: our postcard bodies (frame message id 1), which add the
//!   local-only messages.
//! - [`scan`]: the small validating JSON scanner both of them rely on.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{AppId, Destination, NotificationId};

pub mod compact;
pub mod json;
pub mod scan;

#[cfg(test)]
mod tests;

/// The body encoding of a frame, named by the frame's message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// Message id 0: a UTF-8 JSON object (the documented protocol).
    #[default]
    Json,
    /// Message id 1: a postcard body (our own library, local clients).
    Compact,
}

impl Encoding {
    /// The frame message id for this encoding.
    pub const fn msg_id(self) -> u32 {
        match self {
            Encoding::Json => 0,
            Encoding::Compact => 1,
        }
    }

    /// The encoding a frame's message id names. **Decision**: the spec says
    /// receivers ignore the id for JSON, so every id other than 1 means JSON.
    pub const fn from_msg_id(id: u32) -> Self {
        match id {
            1 => Encoding::Compact,
            _ => Encoding::Json,
        }
    }
}

/// The text of one JSON value, validated, never re-encoded. (Validated
/// here, or by the peer that sent it: [`compact::decode_trusted`].)
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    /// `null`.
    pub const NULL: RawJson<'static> = RawJson("null");
    /// `{}`, the parameter of a notification sent without one.
    pub const EMPTY_OBJECT: RawJson<'static> = RawJson("{}");

    /// Checks that `text` is exactly one JSON value (surrounding whitespace
    /// allowed) and wraps it.
    pub fn new(text: &'a str) -> Result<Self, scan::JsonError> {
        scan::validate_str(text)?;
        Ok(RawJson(text))
    }

    /// Wraps `text` as a JSON serializer produced it, without checking it
    /// again.
    ///
    /// **Decision**: for text that `serde_json` (or another serializer
    /// that only writes valid JSON) just made of a value: it is one JSON
    /// value by construction, and checking it costs a sending client about
    /// as much as encoding the whole notification. Text from anywhere else
    /// goes through [`RawJson::new`]. A caller that breaks the rule harms
    /// nobody else: the server checks every parameter it accepts (a
    /// client's is never trusted) and refuses the frame.
    pub fn serialized(text: &'a str) -> Self {
        RawJson(text)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for RawJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for RawJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for RawJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawJson<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text: &'de str = <&'de str>::deserialize(d)?;
        RawJson::new(text).map_err(serde::de::Error::custom)
    }
}

/// `register`: receive notification `notification` as app `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// The receiver app ID.
    pub to: AppId,
    /// The notification ID.
    pub notification: NotificationId,
    /// Larger wins for `"1"` and unicast.
    pub priority: i32,
}

/// `unregister`: stop receiving `notification` as app `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unregister {
    /// The receiver app ID.
    pub to: AppId,
    /// The notification ID.
    pub notification: NotificationId,
}

/// `notify` (and, server to client, `unicast_error`): one notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify<'a> {
    /// Source app ID.
    pub from: AppId,
    /// Destination as sent.
    pub to: Destination,
    /// Notification ID.
    pub notification: NotificationId,
    /// Carried, not interpreted.
    pub flags: u32,
    /// Set by the server on what it sends; clients echo it back unchanged
    /// (the unregister race) and never interpret it. Optional on input.
    pub reference: Option<u64>,
    /// The parameter, as JSON text.
    #[serde(borrow)]
    pub parameter: RawJson<'a>,
}

/// Compact-only `hello`: the first message of our own library. From then on
/// the server sends this connection compact bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol revision of the compact encoding ([`compact::VERSION`]).
    pub version: u16,
    /// The process's app ID, when set (used in logs and `nfy status`).
    pub app_id: Option<AppId>,
    /// True when the client acknowledges unicasts after their callback ran
    /// (crash-safe delivery).
    pub acks: bool,
}

/// Compact-only observer event (server to client): one delivery seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Source app ID.
    pub from: AppId,
    /// The resolved receiver app ID; `None` when nothing received it.
    pub to: Option<AppId>,
    /// Notification ID.
    pub notification: NotificationId,
    /// Flags as sent.
    pub flags: u32,
}

/// Compact-only status report (server to client), answering
/// [`Message::StatusRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Status {
    /// Open local connections (Unix socket, loopback TCP).
    pub local_connections: u32,
    /// Open remote connections.
    pub remote_connections: u32,
    /// Registrations held by all connections.
    pub registrations: u32,
    /// Registrations held by remote connections (at most 256).
    pub remote_registrations: u32,
    /// Connections observing.
    pub observers: u32,
    /// Deliveries made (one per receiving registration).
    pub delivered: u64,
    /// Notifications from remote peers dropped by the whitelist's `in`
    /// rules. (Bad input is logged and skipped, not counted here; frames
    /// refused by the remote limits are counted in
    /// [`ProtectionCounters`].)
    pub dropped: u64,
    /// Unicast errors sent back.
    pub unicast_errors: u64,
}

/// The credentials of a Unix-socket peer, as the kernel reported them
/// when the connection was made (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// Process id of the connecting process.
    pub pid: u32,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
}

/// Where a connection comes from, as `nfy status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PeerAddr {
    /// Not known (the platform does not say).
    #[default]
    Unknown,
    /// The Unix socket, with the peer's credentials.
    Unix(Credentials),
    /// The Unix socket; the peer's credentials could not be read.
    UnixUnknown,
    /// TCP: the peer's IPv6 address (IPv4 as `::ffff:a.b.c.d`) and port.
    Tcp {
        /// The address, 16 bytes in network order.
        ip: [u8; 16],
        /// The port.
        port: u16,
    },
}

/// Compact-only (server to client): one open connection, answering
/// [`Message::ConnectionsRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionReport {
    /// The broker's connection id (slot in the low 16 bits, generation in
    /// the high 16 bits), as logs write it: `#slot.generation`.
    pub id: u32,
    /// True for a remote connection (TCP from a non-loopback address).
    pub remote: bool,
    /// Where it comes from.
    pub peer: PeerAddr,
    /// The app ID its `hello` gave, if any.
    pub app_id: Option<AppId>,
    /// Registrations it holds.
    pub registrations: u32,
    /// Whether it observes.
    pub observer: bool,
}

/// Compact-only (server to client): the counters of the server's
/// protection against remote peers, ending the answer to
/// [`Message::ConnectionsRequest`]. The broker keeps them
/// ([`Broker::protection`](crate::broker::Broker::protection)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProtectionCounters {
    /// Connections refused: remote connection limit, total connection
    /// limit, a local-only profile, no file descriptor left.
    pub refused: u64,
    /// Of those, remote connections refused by the remote connection
    /// limit or a local-only profile.
    pub remote_refused: u64,
    /// Frames dropped because a remote connection sent faster than its
    /// rate limit.
    pub rate_limited: u64,
    /// Frames skipped because they were larger than the connection's frame
    /// limit (the remote one for remote connections).
    pub oversize: u64,
}

/// The former name of [`ProtectionCounters`] (same type, same wire form),
/// kept so that code written against it still builds.
#[deprecated(note = "renamed ProtectionCounters")]
pub type Guard = ProtectionCounters;

/// Compact-only (server to client): the answer to [`Message::Hello`], with
/// what the server accepts on this connection, so the client library can
/// refuse what the server would skip (spec 6: never skipped silently where
/// the sender could have been told). A server that does not send it (an
/// older one) leaves the client to its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The largest frame body (bytes after the 12-byte header) the server
    /// reads from this connection; larger frames are skipped.
    pub max_frame: u32,
}

/// Compact-only (server to client): one registration of an open
/// connection, answering [`Message::ConnectionsRequest`] (after the
/// [`Message::Connection`] reports, before [`Message::ConnectionsEnd`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationReport {
    /// The holding connection: a [`ConnectionReport::id`].
    pub conn: u32,
    /// The receiver app ID.
    pub to: AppId,
    /// The notification ID.
    pub notification: NotificationId,
    /// Its priority.
    pub priority: i32,
}

/// Compact-only (server to client): a connection that came over TLS, in
/// the answer to [`Message::ConnectionsRequest`] (after the
/// [`Message::Connection`] reports, before [`Message::ConnectionsEnd`]).
/// A server without TLS sends none, and an older client ignores it (a
/// message of its own, not a field of [`ConnectionReport`], so that the
/// report's wire form stays the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsPeerReport<'a> {
    /// The connection: a [`ConnectionReport::id`].
    pub conn: u32,
    /// The subject of the certificate the peer presented (a distinguished
    /// name as text, `CN=lane-1, O=Shop`); `None` when it presented none
    /// (a server without `--tls-client-ca` asks for none).
    #[serde(borrow)]
    pub subject: Option<&'a str>,
}

/// Compact-only (server to client): the counters of the server's TLS
/// listener, in the answer to [`Message::ConnectionsRequest`] (before
/// [`Message::ConnectionsEnd`]); sent only by a server with TLS on. Every
/// connection these count as refused is also in
/// [`ProtectionCounters::refused`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TlsCounters {
    /// Handshakes completed.
    pub accepted: u64,
    /// Handshakes that failed: not TLS, no client certificate or one the
    /// client CA does not vouch for (unknown issuer, expired, ...), other
    /// protocol errors, a peer that closed during the handshake.
    pub failed: u64,
    /// Handshakes cut at the handshake timeout.
    pub timed_out: u64,
    /// Connections closed at once because as many handshakes as allowed
    /// were in progress.
    pub over_limit: u64,
}

/// Every message of both encodings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message<'a> {
    /// Client to server: add or replace a registration.
    Register(Register),
    /// Client to server: remove a registration.
    Unregister(Unregister),
    /// Both ways: a notification.
    #[serde(borrow)]
    Notify(Notify<'a>),
    /// Server to client: a unicast nobody received, returned unchanged.
    #[serde(borrow)]
    UnicastError(Notify<'a>),
    /// Compact only, client to server: identify as our own library.
    Hello(Hello),
    /// Compact only, client to server: start (`true`) or stop observing.
    Observe(bool),
    /// Compact only, client to server: whether this connection wants
    /// unicast errors (the default for every connection is yes).
    UnicastErrors(bool),
    /// Compact only, client to server: the callback for the unicast with
    /// this reference has completed.
    Ack(u64),
    /// Compact only, client to server: ask for a [`Status`].
    StatusRequest,
    /// Compact only, server to client: the answer to `StatusRequest`.
    Status(Status),
    /// Compact only, server to client: an observer event.
    Observed(Observation),
    /// Compact only, client to server: list the open connections (answered
    /// by one [`Message::Connection`] each, then [`Message::ConnectionsEnd`]).
    ConnectionsRequest,
    /// Compact only, server to client: one open connection.
    Connection(ConnectionReport),
    /// Compact only, server to client: the end of the connection list, with
    /// the protection counters.
    ConnectionsEnd(ProtectionCounters),
    /// Compact only, server to client: the answer to `hello`.
    Welcome(Welcome),
    /// Compact only, server to client: one registration, in the answer to
    /// `ConnectionsRequest`.
    Registration(RegistrationReport),
    /// Compact only, server to client: a TLS connection and the subject
    /// of its peer's certificate, in the answer to `ConnectionsRequest`.
    #[serde(borrow)]
    TlsPeer(TlsPeerReport<'a>),
    /// Compact only, server to client: the TLS listener's counters, in the
    /// answer to `ConnectionsRequest`.
    TlsCounters(TlsCounters),
    /// A message whose `type` this side does not know; ignored by both
    /// sides. Holds the type name as written (escapes not decoded; empty for
    /// an unknown compact message).
    Unknown(&'a str),
}

impl Message<'_> {
    /// True for the messages the documented JSON protocol has (5.2);
    /// the others exist only in the compact encoding.
    pub fn in_json_protocol(&self) -> bool {
        matches!(
            self,
            Message::Register(_)
                | Message::Unregister(_)
                | Message::Notify(_)
                | Message::UnicastError(_)
                | Message::Unknown(_)
        )
    }

    /// A short name for logs (`"register"`, `"notify"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Register(_) => "register",
            Message::Unregister(_) => "unregister",
            Message::Notify(_) => "notify",
            Message::UnicastError(_) => "unicast_error",
            Message::Hello(_) => "hello",
            Message::Observe(_) => "observe",
            Message::UnicastErrors(_) => "unicast_errors",
            Message::Ack(_) => "ack",
            Message::StatusRequest => "status_request",
            Message::Status(_) => "status",
            Message::Observed(_) => "observed",
            Message::ConnectionsRequest => "connections_request",
            Message::Connection(_) => "connection",
            Message::ConnectionsEnd(_) => "connections_end",
            Message::Welcome(_) => "welcome",
            Message::Registration(_) => "registration",
            Message::TlsPeer(_) => "tls_peer",
            Message::TlsCounters(_) => "tls_counters",
            Message::Unknown(_) => "unknown",
        }
    }
}

/// Why a body could not be decoded into a [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The JSON body is not UTF-8.
    NotUtf8,
    /// The JSON body is not valid JSON.
    Json(scan::JsonError),
    /// The JSON body is valid JSON but not an object.
    NotAnObject,
    /// A required member is missing.
    MissingMember(&'static str),
    /// A member has the wrong JSON type or an out-of-range number.
    WrongType(&'static str),
    /// A member appears twice.
    DuplicateMember(&'static str),
    /// An identifier member breaks the identifier rules.
    InvalidId(&'static str, crate::ids::IdError),
    /// The compact body is malformed.
    Compact,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NotUtf8 => f.write_str("body is not UTF-8"),
            DecodeError::Json(e) => write!(f, "body is not valid JSON: {e}"),
            DecodeError::NotAnObject => f.write_str("body is not a JSON object"),
            DecodeError::MissingMember(m) => write!(f, "member \"{m}\" is missing"),
            DecodeError::WrongType(m) => write!(f, "member \"{m}\" has the wrong type"),
            DecodeError::DuplicateMember(m) => write!(f, "member \"{m}\" appears twice"),
            DecodeError::InvalidId(m, e) => write!(f, "member \"{m}\": {e}"),
            DecodeError::Compact => f.write_str("compact body is malformed"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small.
    BufferFull,
    /// The message has no form in the requested encoding (a compact-only
    /// message asked for as JSON).
    Unsupported,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::BufferFull => "output buffer too small",
            EncodeError::Unsupported => "message has no form in this encoding",
        })
    }
}

impl core::error::Error for EncodeError {}

/// Decodes a body in the given encoding.
pub fn decode(encoding: Encoding, body: &[u8]) -> Result<Message<'_>, DecodeError> {
    match encoding {
        Encoding::Json => json::decode(body),
        Encoding::Compact => compact::decode(body),
    }
}

/// The `reference` of a notify body, read without decoding the whole
/// message: `None` when the body is not a notify, carries no reference, or
/// cannot be read that far. For bodies whose content is known to be good
/// (what the server itself encoded) or only to be judged (is this a
/// returned unicast?); anything to be acted upon goes through [`decode`].
///
/// A compact body is read up to the reference, the parameter left unread
/// and the identifiers not checked; a JSON body is walked member by member
/// (its members are unordered) without checking identifiers.
pub fn notify_reference(encoding: Encoding, body: &[u8]) -> Option<u64> {
    match encoding {
        Encoding::Json => json::notify_reference(body),
        Encoding::Compact => compact::notify_reference(body),
    }
}

/// Encodes `msg` into `buf` in the given encoding; returns the body length.
pub fn encode(msg: &Message<'_>, encoding: Encoding, buf: &mut [u8]) -> Result<usize, EncodeError> {
    match encoding {
        Encoding::Json => json::encode(msg, buf),
        Encoding::Compact => compact::encode(msg, buf),
    }
}
