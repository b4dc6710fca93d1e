//! Flow control: a fast sender waits for a slow receiver; only a stalled
//! one is disconnected.
//!
//! **Decision (spec 6, flow control)**: a reader that is slow but alive is
//! never disconnected for being slower than its senders. The broker
//! decides who waits for whom; the adapter only stops reading a socket
//! and reads it again when told.
//!
//! # Terms
//!
//! - A connection's **backlog**: the bytes queued for it and not yet taken
//!   by its socket ([`Outbox::backlog`](super::Outbox::backlog)), and,
//!   counted apart, the bytes of unicasts it was sent and has not
//!   acknowledged (its [ledger](super::ledger)).
//! - **Over the high-water mark**: either is over
//!   [`FlowLimits::high_water`](super::FlowLimits::high_water).
//!   **Drained**: both are at or below
//!   [`FlowLimits::low_water`](super::FlowLimits::low_water).
//!
//! # The rule
//!
//! Before routing a notification from connection `S`, the broker works
//! out who would receive it. If one receiver `R` is over the high-water
//! mark, `S`'s input is not handled:
//! [`Broker::handle_input`](super::Broker::handle_input) returns
//! [`Handled::Paused`](super::Handled::Paused) and the broker reports
//! [`Event::Paused`](super::Event::Paused) (`S` waits for `R`). The adapter
//! keeps that input and what it read after it, and stops reading `S`; `S`'s
//! socket buffers fill and its writes block (or return `WouldBlock`), as
//! against any stream peer (a minimal relay, D-Bus and MQTT brokers behave
//! so). When `R` has drained, every connection waiting for it is resumed
//! ([`Event::Resumed`](super::Event::Resumed)) and its held input is handled
//! again, first. The whole input of `S` waits, not only what goes to `R`:
//! a stream is ordered, and spec 2.7 keeps order per sender.
//!
//! So a queue passes the high-water mark by at most the one frame that
//! crossed it, except for what cannot wait (below).
//!
//! # Decisions
//!
//! - **Broadcasts: the sender waits for its slowest live subscriber.** A
//!   broadcast is held back while any connection that would receive it is
//!   over the mark. Every live subscriber then receives every broadcast, in
//!   order, as with unicasts; skipping a slow one would lose
//!   notifications silently. A dead subscriber holds its senders back for
//!   at most the stall timeout; then it is disconnected and the others go
//!   on.
//! - **`"1"` waits for its receiver.** When the best-priority receiver is
//!   over the mark the sender waits; the notification does not go to the
//!   next candidate instead (priority, not speed, decides who receives
//!   `"1"`).
//! - **A connection never waits for itself, nor in a cycle.** Nobody but
//!   a connection itself could end a wait for its own queue, and a client
//!   blocked in `write` cannot read: a blocking raw client that writes
//!   without reading would deadlock. So unicast errors owed to a sender,
//!   and notifications it sends to its own registrations, are queued
//!   whatever the marks, bounded by the hard limit
//!   ([`Limits::max_queue`](super::Limits::max_queue)): a connection that
//!   does not read its own output is disconnected as an overflow when it
//!   passes it, as before flow control. The same holds for any wait that
//!   would close a cycle (`A` waits for `B` while `B` waits for `A`, e.g.
//!   two clients flooding each other, whose acknowledgements would then go
//!   unread): the frame is queued past the mark instead.
//! - **Unicast errors owed to a sender that does not read them** are that
//!   sender's own output (above): they never pause anyone, and a sender
//!   that streams unicasts nobody receives without reading the errors is
//!   disconnected at the hard limit. With flow control a slow receiver no
//!   longer produces unicast errors at all, so this is left to genuinely
//!   undeliverable unicasts.
//! - **Observers never hold senders back.** An observer hears of every
//!   delivery of every sender; a slow monitoring tool must not throttle the
//!   whole bus. Observer events for an observer over the mark are dropped
//!   (counted in [`FlowStats::observer_events_dropped`], reported once per
//!   episode as [`Event::ObserverBehind`](super::Event::ObserverBehind))
//!   until it drains. An observer that takes nothing for the stall timeout
//!   is disconnected like any stalled reader.
//! - **Acknowledgements are backlog, and progress.** A receiver of our
//!   library reads eagerly into its callback mailboxes; when its callbacks
//!   lag, what grows is its ledger, not its queue. Its senders wait for it
//!   as for a slow reader, and each acknowledgement counts as progress.
//! - **A returned unicast pauses the connection returning it** when the
//!   next receiver is over the mark (it is the input being handled).
//!   Unicasts given back by a connection being closed (unsent, or
//!   unacknowledged) have no sender to hold back: they are queued whatever
//!   the marks, up to the hard limit.
//! - **Stalled is not slow.** A connection that holds others back, or whose
//!   backlog is over the high-water mark, and that takes no bytes and
//!   acknowledges nothing for
//!   [`FlowLimits::stall_timeout`](super::FlowLimits::stall_timeout) is
//!   stalled ([`Event::Stalled`](super::Event::Stalled)): the adapter
//!   closes it and what it had not received goes back to the broker
//!   (re-routed, or unicast errors to its senders). A dead reader thus
//!   holds its senders back for at most the stall timeout plus one check
//!   interval (a tenth of it). A reader with a small backlog that holds
//!   nobody back is left alone however long it sleeps.
//!
//! # Time
//!
//! The adapter calls [`Broker::handle_timeout`](super::Broker::handle_timeout)
//! when [`Broker::poll_timeout`](super::Broker::poll_timeout) says (a
//! tenth of the stall timeout apart, and only while someone waits or a
//! backlog is over the mark), and reports what each send took
//! ([`Broker::sent`](super::Broker::sent)). A connection's idle time is
//! counted from the first check that finds it judged without progress, so
//! it is never judged early.
//!
//! # Memory bound
//!
//! Per connection, at most [`Limits::max_queue`](super::Limits::max_queue)
//! bytes unsent and as many unacknowledged; with senders held back at the
//! high-water mark a queue normally stays within
//! `high_water + one frame`. `docs/reliability.md` states the server's
//! total.

use core::time::Duration;

use super::ConnId;
use crate::time::Timestamp;

/// Checks per stall timeout: stalls are found at most a tenth late.
const CHECKS_PER_TIMEOUT: u32 = 10;

/// The interval between stall checks for a stall timeout.
pub(super) fn check_interval(stall_timeout: Duration) -> Duration {
    (stall_timeout / CHECKS_PER_TIMEOUT).max(Duration::from_millis(1))
}

/// Flow-control counters since the broker started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Times a connection was paused.
    pub pauses: u64,
    /// Connections disconnected as stalled.
    pub stalls: u64,
    /// Observer events dropped because the observer was over the
    /// high-water mark.
    pub observer_events_dropped: u64,
    /// Frames queued past the high-water mark because waiting would have
    /// closed a cycle (a connection's own output included).
    pub cycle_overruns: u64,
}

/// One connection's flow-control state.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FlowState {
    /// The connection it waits for (it is paused).
    pub waiting_for: Option<ConnId>,
    /// Connections waiting for it.
    pub waiters: usize,
    /// Bumped for every send that took bytes and every acknowledgement.
    pub progress: u64,
    /// `progress` at the last check that judged it.
    pub seen: u64,
    /// When it was last seen making progress (or first judged).
    pub since: Timestamp,
    /// It was judged at the last check.
    pub judged: bool,
    /// An observer dropping events (over the mark).
    pub behind: bool,
}
