//! # nfy-linux
//!
//! The Linux platform of nfy, on top of the sans-IO `nfy-core`: this crate
//! owns sockets, threads, files, time and logs; every routing decision is
//! made by [`nfy_core::broker::Broker`].
//!
//! | module | holds |
//! |---|---|
//! | [`client`] | the client library: idiomatic [`client::Client`] and the ADK-style `ipc_*` functions |
//! | [`defaults`] | default port and socket path (shared by server and clients) |
//! | [`log`] | the stderr logger (`RUST_LOG`, `NFY_LOGMASK`) |
//! | [`sdnotify`] | systemd's service notification (`NOTIFY_SOCKET`): ready, reloading, stopping |
//! | [`server`] | `notifysvc`: listeners, event loop, configuration, platform profiles ([`server::Profile`]) |
//! | [`tls`] | TLS material shared by server and client: PEM files, the `ring` provider, certificate subjects |

// No unsafe code; one unit test restores SIGPIPE's default action
// (`server::out_queue`), allowed there alone.
#![cfg_attr(not(test), forbid(unsafe_code))]
#![cfg_attr(test, deny(unsafe_code))]

pub mod client;
pub mod defaults;
pub mod log;
pub mod sdnotify;
pub mod server;
pub mod tls;
