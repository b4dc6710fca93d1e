//! The bridge's counters, reported on SIGUSR1 (one stderr line) and on
//! the status topic (`<prefix>/_status/<terminal>`, retained).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Counters, updated by every thread of the bridge.
        #[derive(Debug, Default)]
        pub struct Counters {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        /// A copy of the counters at one moment.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
        pub struct Snapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Counters {
            /// Reads every counter.
            pub fn snapshot(&self) -> Snapshot {
                Snapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Unicasts published to the broker (each once, however often resent).
    forwarded_unicasts,
    /// Broadcasts published to the broker.
    forwarded_broadcasts,
    /// Forwarded unicasts the other terminal reported delivered.
    delivered_remote,
    /// Forwarded unicasts nobody received there, or its rules refused:
    /// given back here (another local receiver, or a unicast error).
    unicast_errors,
    /// Forwarded unicasts acknowledged here without an outcome: the reply
    /// timeout passed, or the other terminal is offline (the broker keeps
    /// them for it).
    unconfirmed,
    /// Outcomes that arrived after their unicast was acknowledged.
    late_outcomes,
    /// Local notifications our `out` rules refused (or that came from
    /// another terminal: no transit).
    refused_out,
    /// Notifications from the broker delivered on this terminal.
    received,
    /// Of those, unicasts nobody here received (reported to the sender).
    received_failed,
    /// Notifications from the broker our `in` rules refused, or malformed.
    refused_in,
    /// Notifications from the broker seen again (redelivered by the
    /// broker after a reconnect): answered, not delivered twice.
    duplicates,
    /// Retries: publishes sent again after the broker lost the session,
    /// injections repeated after the local server went away.
    retried,
    /// Connections to the broker made.
    mqtt_connects,
    /// Broker connections lost.
    mqtt_disconnects,
}

impl Snapshot {
    /// One JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Adds one.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n`.
pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}
