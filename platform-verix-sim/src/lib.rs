//! # nfy-verix-sim
//!
//! The Verix-style profile of nfy (spec section 4, "Verix profile"): the
//! notification service accepts **local connections only** (loopback TCP
//! and the Unix socket), **ignores any configuration file**, and runs with
//! **tighter limits** than on Linux.
//!
//! # Same code, another profile
//!
//! This crate holds no second copy of the server or of the client. The
//! server is `nfy-linux`'s, run with [`PROFILE`] (a
//! [`nfy_linux::server::Profile`]: flags for "ignore configuration" and
//! "local only", and the limits below); every routing rule stays in
//! `nfy-core`'s broker. The client library *is* `nfy-linux`'s, re-exported
//! as [`client`]: same types, same functions, same wire protocol.
//!
//! An application therefore switches platform by its cargo dependency
//! alone:
//!
//! ```toml
//! [dependencies]
//! nfy = { package = "nfy-linux", path = "..." }      # Linux
//! # nfy = { package = "nfy-verix-sim", path = "..." } # Verix-style
//! ```
//!
//! ```no_run
//! // Compiles unchanged against either crate renamed to `nfy`.
//! use nfy_verix_sim as nfy;
//!
//! let client = nfy::client::Client::connect()?;
//! client.set_app_id("pos")?;
//! client.notify("payment", "start", &serde_json::json!({"amount": 100}))?;
//! nfy::client::adk::ipc_set_app_id("pos");
//! # Ok::<(), nfy::client::Error>(())
//! ```
//!
//! | item | `nfy-linux` | `nfy-verix-sim` |
//! |---|---|---|
//! | `client::{Client, adk::ipc_*, ServerAddr, ...}` | the client library | the same, re-exported |
//! | `server::{start, run}` | run with `Options::profile` | run with [`PROFILE`], whatever the options say |
//! | `server::{Options, ServerHandle, ServerError, args, config, ...}` | | the same, re-exported |
//! | server binary | `notifysvc` | `notifysvc-verix` (same command line) |
//!
//! # Limits
//!
//! | limit | Linux | Verix-style |
//! |---|---|---|
//! | connections | 1024 | [`MAX_CONNECTIONS`] (32) |
//! | registrations, all connections | 16384 | [`MAX_REGISTRATIONS`] (256) |
//! | registrations per connection | 1024 | [`MAX_REGISTRATIONS_PER_CONNECTION`] (64) |
//! | remote registrations | 256 | [`MAX_REMOTE_REGISTRATIONS`] (0: no remote peer) |
//! | frame body | 64 KiB (`--max-frame`, up to 16 MiB) | [`MAX_FRAME`] (8 KiB; `--max-frame` may only lower it) |
//! | output queue per connection | 4 MiB (`--max-queue`) | [`MAX_QUEUE`] (64 KiB; `--max-queue` may only lower it) |
//! | flow control: senders wait above / go on below | 1 MiB / 256 KiB queued (`--high-water`, `--low-water`) | a quarter of the queue / a quarter of that (16 / 4 KiB) |
//! | stall timeout | 5 s (`--stall-timeout`) | the same |
//!
//! Hitting a limit gives exactly what hitting it on Linux gives, because
//! the same broker and event loop enforce it: a connection over the limit
//! is closed with the warning `connection limit reached`
//! ([`nfy_core::broker::ConnectRefused`]); registrations over a limit
//! are refused with [`nfy_core::broker::Refusal`]'s log lines
//! (`per-connection registration limit reached`, `routing table full`); an
//! oversize frame is skipped and logged, and the connection goes on.
//!
//! **Not modelled**: [`CALLBACK_THREADS`]. The client library is shared as
//! is, with its fixed pool of
//! [`nfy_linux::client::pool::WORKERS`] callback threads; since
//! `nfy_verix_sim::client::Client` is the very same type, a smaller pool
//! cannot be chosen transparently by the dependency. The constant records
//! the platform's figure for when the client gets a pool-size option.

#![forbid(unsafe_code)]

use nfy_linux::server::{Profile, ProfileLimits, MIN_MAX_FRAME, MIN_QUEUE_FRAMES};

pub use nfy_linux::{client, defaults, log};

pub mod server;

/// Connections the service holds at once (local; there are no others).
pub const MAX_CONNECTIONS: usize = 32;
/// Registrations the service holds at once, all connections together.
pub const MAX_REGISTRATIONS: usize = 256;
/// Registrations one connection may hold.
pub const MAX_REGISTRATIONS_PER_CONNECTION: usize = 64;
/// Registrations of remote connections: none (no remote connection is
/// ever admitted; this is a second guard).
pub const MAX_REMOTE_REGISTRATIONS: usize = 0;
/// Largest frame body accepted, in bytes.
pub const MAX_FRAME: usize = 8 * 1024;
/// Bound of one connection's unsent output, in bytes.
pub const MAX_QUEUE: usize = 64 * 1024;
/// Callback threads of a client on the platform (see "Not modelled" in
/// the crate docs).
pub const CALLBACK_THREADS: usize = 2;

/// The Verix-style profile of the shared server.
pub const PROFILE: Profile = Profile {
    name: "verix",
    ignore_config: true,
    local_only: true,
    limits: ProfileLimits {
        max_connections: MAX_CONNECTIONS,
        max_registrations: MAX_REGISTRATIONS,
        max_registrations_per_connection: MAX_REGISTRATIONS_PER_CONNECTION,
        max_remote_registrations: MAX_REMOTE_REGISTRATIONS,
        max_frame: MAX_FRAME,
        max_queue: MAX_QUEUE,
    },
};

// Checked at compile time: the limits fit the shared server's capacities
// and option ranges, every one is tighter than Linux's, and the profile
// is local-only and ignores configuration.
const _: () = {
    use nfy_linux::server as linux;
    assert!(MAX_CONNECTIONS < linux::MAX_CONNECTIONS);
    assert!(MAX_REGISTRATIONS < linux::MAX_REGISTRATIONS);
    assert!(MAX_REGISTRATIONS_PER_CONNECTION <= MAX_REGISTRATIONS);
    assert!(MAX_REGISTRATIONS_PER_CONNECTION < linux::MAX_REGISTRATIONS_PER_CONNECTION);
    assert!(MAX_REMOTE_REGISTRATIONS < linux::MAX_REMOTE_REGISTRATIONS);
    assert!(MAX_FRAME >= MIN_MAX_FRAME && MAX_FRAME < linux::DEFAULT_MAX_FRAME);
    assert!(MAX_QUEUE >= MIN_QUEUE_FRAMES * (MAX_FRAME + nfy_core::wire::HEADER_LEN));
    assert!(MAX_QUEUE < linux::DEFAULT_MAX_QUEUE);
    assert!(CALLBACK_THREADS < client::pool::WORKERS);
    assert!(PROFILE.ignore_config && PROFILE.local_only);
};

#[cfg(test)]
mod tests {
    use super::*;
    use nfy_core::broker::Limits;

    #[test]
    fn broker_gets_the_profile_limits() {
        assert_eq!(
            PROFILE.broker_limits(),
            Limits {
                max_registrations_per_connection: MAX_REGISTRATIONS_PER_CONNECTION,
                max_remote_registrations: MAX_REMOTE_REGISTRATIONS,
                max_connections: MAX_CONNECTIONS,
                max_registrations: MAX_REGISTRATIONS,
                local_only: true,
                ..Limits::DEFAULT
            }
        );
        // What a server of this profile runs with: its frame and queue
        // limits, flow-control marks within its queue.
        let limits = server::options().broker_limits();
        assert_eq!((limits.max_frame, limits.max_queue), (MAX_FRAME, MAX_QUEUE));
        assert!(limits.local_only);
        assert!(limits.flow.high_water + MAX_FRAME < MAX_QUEUE);
        assert!(limits.flow.low_water < limits.flow.high_water);
        assert_eq!(PROFILE.name, "verix");
    }
}
