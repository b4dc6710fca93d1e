//! The broker's output: the [`Outbox`] an adapter implements, the
//! [`Event`]s it is told of, and what handling one input came to
//! ([`Handled`]).

use core::time::Duration;

use super::{ConnId, DropReason, Refusal};
use crate::msg::{self, DecodeError, Encoding, Message, Notify, PeerAddr};
use crate::wire::{FrameView, Skipped};

/// The adapter's queue for a connection is full: the frame was not
/// queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// What became of one input given to
/// [`Broker::handle_input`](super::Broker::handle_input).
#[must_use = "a paused input must be given again once the connection is resumed"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Handled (routed, answered, refused, counted or dropped).
    Done,
    /// Not handled: the connection is paused (flow control) until
    /// [`Event::Resumed`] names it. The adapter keeps this input and what
    /// it read after it, stops reading the connection, and gives the
    /// input again, first, once it is resumed.
    Paused,
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

    /// Queues a whole frame the broker encoded itself (a unicast it keeps
    /// a copy of until it is acknowledged). The default decodes it and
    /// calls [`Outbox::send`]; an adapter that queues bytes copies them.
    fn send_frame(&mut self, conn: ConnId, frame: &[u8]) -> Result<(), QueueFull> {
        let Ok(view) = FrameView::new_checked(frame) else {
            return Ok(());
        };
        let encoding = Encoding::from_msg_id(view.msg_id());
        match msg::decode(encoding, view.body()) {
            Ok(m) => self.send(conn, encoding, &m),
            Err(_) => Ok(()),
        }
    }

    /// Bytes queued for `conn` and not yet taken by its peer: what flow
    /// control judges (see [`flow`](super::flow)). The default, 0, means
    /// no flow control on output: senders are never held back, and a
    /// queue that fills up overflows ([`Event::Overflow`]).
    fn backlog(&self, conn: ConnId) -> usize {
        let _ = conn;
        0
    }

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

    /// Adds what only the adapter knows to the connection list `asker`
    /// asked for, after the connection and registration reports and
    /// before [`Message::ConnectionsEnd`]: the Linux server sends a
    /// [`Message::TlsPeer`] per TLS connection and its
    /// [`Message::TlsCounters`]. The default adds nothing.
    fn report_more(&mut self, asker: ConnId) -> Result<(), QueueFull> {
        let _ = asker;
        Ok(())
    }

    /// The largest frame body the adapter reads from `conn`, told to a
    /// local client in the [`Message::Welcome`] that answers its `hello`
    /// (an adapter feeding [`Broker::handle_input`](super::Broker::handle_input)
    /// gives [`Limits::frame_limit`](super::Limits::frame_limit) for the
    /// connection's kind). The default (`None`) sends no welcome: the
    /// client then assumes its own default.
    fn frame_limit(&self, conn: ConnId) -> Option<usize> {
        let _ = conn;
        None
    }
}

/// What the broker tells the adapter besides messages: for logs, counters,
/// and the two things only the adapter can do (closing a socket, polling
/// a socket again).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event<'a> {
    /// A frame's body could not be decoded; the connection goes on.
    BadMessage {
        /// The connection.
        conn: ConnId,
        /// What was wrong.
        error: DecodeError,
    },
    /// Input was passed over: what the decoder skipped (garbage, a bad
    /// size, an oversize frame) or a frame over the connection's frame
    /// limit ([`Skipped::Oversize`]). The connection goes on.
    Skipped {
        /// The connection.
        conn: ConnId,
        /// What was skipped.
        skipped: Skipped,
    },
    /// A remote connection sent faster than its rate limit: its frames are
    /// dropped until it slows down. Reported for the first dropped frame
    /// of a connection; later ones are only counted
    /// ([`ConnInfo::rate_dropped`](super::ConnInfo::rate_dropped)).
    RateLimited {
        /// The connection.
        conn: ConnId,
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
    /// The connection's queue refused a frame (the hard limit,
    /// [`Limits::max_queue`](super::Limits::max_queue)), or its ledger of
    /// unacknowledged unicasts is over that limit: the adapter must close
    /// it (and then call [`Broker::disconnect`](super::Broker::disconnect)).
    /// Flow control keeps senders from getting here; what it cannot hold
    /// back is listed in [`flow`](super::flow).
    Overflow {
        /// The connection.
        conn: ConnId,
    },
    /// The connection is stalled (see [`flow`](super::flow)): it holds
    /// others back, or its backlog is over the high-water mark, and it
    /// took no bytes and acknowledged nothing for the stall timeout. The
    /// adapter must close it (and then give its unsent frames to
    /// [`Broker::return_undelivered`](super::Broker::return_undelivered)
    /// and call [`Broker::disconnect`](super::Broker::disconnect)).
    Stalled {
        /// The connection.
        conn: ConnId,
        /// How long it made no progress.
        idle: Duration,
        /// Bytes queued for it, unsent ([`Outbox::backlog`]).
        backlog: usize,
        /// Bytes of unicasts it was sent and has not acknowledged.
        unacknowledged: usize,
        /// Connections it held back.
        waiters: usize,
    },
    /// A remote connection lost its access: the whitelist given to
    /// [`Broker::set_whitelist`](super::Broker::set_whitelist) holds no
    /// `in`/`out` rule. Nothing more is routed to it; the adapter must close
    /// it as for [`Event::Overflow`] (what it was sent and did not take goes
    /// back to the broker).
    Revoked {
        /// The connection.
        conn: ConnId,
    },
    /// Flow control paused `conn`: the input it sent last goes to
    /// `waiting_for`, whose backlog is over the high-water mark. The
    /// adapter stops reading `conn` until [`Event::Resumed`].
    Paused {
        /// The paused connection.
        conn: ConnId,
        /// The connection it waits for.
        waiting_for: ConnId,
    },
    /// A paused connection may go on: the adapter gives it its held input
    /// again ([`Handled::Paused`]) and reads it again (its socket may hold
    /// input that raised no new readiness while it was paused).
    Resumed {
        /// The connection.
        conn: ConnId,
    },
    /// An observer's backlog is over the high-water mark: observer events
    /// for it are dropped (observers never hold senders back) until it
    /// drains below the low-water mark. Reported once per such episode.
    ObserverBehind {
        /// The observing connection.
        conn: ConnId,
    },
    /// A `hello` arrived: from now on the connection is compact, and
    /// `acks` says whether the broker keeps the unicasts it sends it until
    /// it acknowledges them (what it asked for, unless the ledger storage
    /// cannot keep frames). `forgotten`: unicasts kept until then and no
    /// longer (acknowledgements turned off).
    Hello {
        /// The connection.
        conn: ConnId,
        /// Whether its unicasts are kept until acknowledged.
        acks: bool,
        /// Unacknowledged unicasts forgotten.
        forgotten: usize,
    },
    /// The client acknowledged the unicast with this reference.
    Acked {
        /// The connection.
        conn: ConnId,
        /// The reference.
        reference: u64,
        /// Whether the broker kept that unicast for it (false: an
        /// acknowledgement of nothing, ignored).
        kept: bool,
    },
}
