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
//! - **A connection waits for its own queue too.** Unicast errors owed to
//!   a sender, and notifications it sends to its own registrations, are
//!   its own output: when its queue is over the mark, its input waits like
//!   anyone's. A client that reads while it writes (a reader thread, a
//!   non-blocking loop, our library) drains its queue and goes on; a
//!   blocking client that writes without ever reading deadlocks, as it
//!   would against any stream peer, and is disconnected as stalled after
//!   the stall timeout (before flow control, it was disconnected when its
//!   queue overflowed). Exempting it instead would let its queue grow to the
//!   hard limit even while it reads: an error is larger than the notify
//!   that caused it, so a sender streaming undeliverable unicasts at full
//!   speed would always overflow.
//! - **Unicast errors owed to a sender that does not read them** follow
//!   from that: the sender waits for its own queue (and is disconnected as
//!   stalled if it never reads). With flow control a slow receiver no
//!   longer produces unicast errors at all, so this is left to genuinely
//!   undeliverable unicasts.
//! - **A wait for acknowledgements that would close a cycle is not
//!   taken.** A connection whose *queue* is over the mark is always waited
//!   for: its client drains it by reading, whatever the server does. One
//!   whose *unacknowledged unicasts* alone are over it drains only when the
//!   server reads its acks, which it does not while that connection is
//!   itself paused (beyond a bounded read-ahead, see below). So when such a
//!   wait would close a cycle (`A` waits for `B`'s acks while `B` waits for
//!   `A`: two clients of our library flooding each other while their
//!   callbacks lag), the frame is queued past the mark instead
//!   ([`FlowStats::cycle_overruns`]); if the acks stay behind long enough,
//!   a ledger reaches the hard limit and that connection is closed as an
//!   overflow, what it did not acknowledge going back to its senders.
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
//!   as for a slow reader, and each acknowledgement counts as progress. A
//!   paused connection's acknowledgements are still read: the adapter reads
//!   on, up to a bound, into the input it holds, and gives each new part to
//!   [`Broker::acknowledge_held`](super::Broker::acknowledge_held), which
//!   releases what those acks acknowledge ahead of the input before them.
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
    /// Bumped (wrapping) for every send that took bytes and every
    /// acknowledgement; only compared for a change.
    pub progress: u32,
    /// `progress` at the last check that judged it.
    pub seen: u32,
    /// When it was last seen making progress (or first judged).
    pub since: Timestamp,
    /// It was judged at the last check.
    pub judged: bool,
    /// An observer dropping events (over the mark).
    pub behind: bool,
}
