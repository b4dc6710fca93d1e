//! # nfy-linux
//!
//! The Linux platform of nfy, on top of the sans-IO `nfy-core`: this crate
//! owns sockets, threads, files, time and logs; every routing decision is
//! made by [`nfy_core::broker::Broker`].
//!
//! | module | holds |
//! |---|---|
//! | [`defaults`] | default port and socket path (shared by server and clients) |
//! | [`log`] | the stderr logger (`RUST_LOG`, `NFY_LOGMASK`) |
//! | [`server`] | `notifysvc`: listeners, event loop, configuration |
//!
//! The client library and the `nfy` tool come later (issue 3).

pub mod defaults;
pub mod log;
pub mod server;
