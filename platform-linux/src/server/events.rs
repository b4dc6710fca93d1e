//! The broker's events as the server's log lines and counters.
//!
//! What an event asks of the adapter (closing a connection, reading one
//! again) is done by [`Outbound`](super::outbox::Outbound); this module
//! only says what happened, at the level it deserves: what a client did
//! wrong at warn (once per connection where a flood could repeat it), the
//! life of connections at info and debug, every notification's fate at
//! debug and trace.

use std::time::Duration;

use nfy_core::broker::{DropReason, Event, RemoteLimits};

/// Counters of what was sent and reported, logged at shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutStats {
    /// Frames queued.
    pub frames: u64,
    /// Connections closed because their queue or ledger passed the limit.
    pub overflows: u64,
    /// Connections closed as stalled (flow control).
    pub stalls: u64,
    /// Messages that had no form in the connection's encoding.
    pub unsupported: u64,
    /// Bad messages reported by the broker.
    pub bad_messages: u64,
    /// Inputs skipped: garbage, bad sizes, oversize frames.
    pub skipped: u64,
    /// Notifications the broker dropped.
    pub dropped: u64,
    /// Requests the broker refused (limits, local-only messages).
    pub refused: u64,
    /// Unicasts acknowledged by their receivers.
    pub acked: u64,
    /// Acknowledgements naming no unicast kept for the connection.
    pub unknown_acks: u64,
}

/// A duration as the log writes it: "5 s", "1.5 s", "250 ms".
pub fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() / 100 == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Logs and counts an event that asks nothing of the adapter (those that
/// do are handled by [`Outbound`](super::outbox::Outbound), which logs
/// them with what only it knows).
pub fn record(stats: &mut OutStats, remote: &RemoteLimits, event: &Event<'_>) {
    match *event {
        Event::BadMessage { conn, error } => {
            stats.bad_messages += 1;
            ::log::warn!("{conn}: bad message ignored: {error}");
        }
        Event::Skipped { conn, skipped } => {
            stats.skipped += 1;
            ::log::warn!("{conn}: {skipped}");
        }
        Event::RateLimited { conn } => ::log::warn!(
            "{conn}: sends faster than {} frames/s (burst {}): dropping its frames until it \
             slows down",
            remote.rate,
            remote.burst
        ),
        Event::Dropped {
            conn,
            reason,
            notify,
        } => {
            stats.dropped += 1;
            let why = match reason {
                DropReason::NotAllowedIn => "no `in` rule allows it",
            };
            ::log::info!(
                "{conn}: dropped notification {:?} from {:?} to {:?}: {why}",
                notify.notification.as_str(),
                notify.from.as_str(),
                notify.to.as_str()
            );
        }
        Event::Refused { conn, refusal } => {
            stats.refused += 1;
            ::log::warn!("{conn}: {refusal}");
        }
        Event::Ignored { conn, kind } => {
            ::log::debug!("{conn}: ignored a {kind:?} message");
        }
        Event::UnicastError { sender, notify } => {
            ::log::debug!(
                "{sender}: unicast error: nobody receives {:?} to {:?}",
                notify.notification.as_str(),
                notify.to.as_str()
            );
        }
        Event::Hello {
            conn,
            acks,
            forgotten,
        } => {
            ::log::debug!("{conn}: hello (acknowledgements {})", on_off(acks));
            if forgotten > 0 {
                ::log::info!(
                    "{conn}: acknowledgements turned off; {forgotten} unacknowledged unicasts \
                     forgotten"
                );
            }
        }
        Event::Acked {
            conn,
            reference,
            kept,
        } => {
            if kept {
                stats.acked += 1;
                ::log::trace!("{conn}: acknowledged {reference:#x}");
            } else {
                stats.unknown_acks += 1;
                ::log::debug!("{conn}: acknowledgement of {reference:#x}, not kept for it");
            }
        }
        Event::Paused { conn, waiting_for } => {
            ::log::debug!("{conn}: paused: waits for {waiting_for} to drain");
        }
        Event::Resumed { conn } => ::log::debug!("{conn}: resumed"),
        Event::ObserverBehind { conn } => ::log::info!(
            "{conn}: observer falls behind: observer events for it are dropped until it catches \
             up (observers never hold senders back)"
        ),
        // Logged where the connection is closed, with its numbers.
        Event::Overflow { .. } | Event::Stalled { .. } | Event::Revoked { .. } => {}
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(seconds(Duration::from_secs(5)), "5 s");
        assert_eq!(seconds(Duration::from_millis(5040)), "5 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds(Duration::from_millis(250)), "250 ms");
    }
}
