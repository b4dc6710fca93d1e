//! # nfy-core
//!
//! The platform-independent heart of nfy, the notification service for
//! payment-terminal firmware. Everything the service *decides* lives here;
//! the platform crates (`nfy-linux`, `nfy-verix-sim`) only move bytes, keep
//! time and run callbacks.
//!
//! The crate is `no_std`, uses no allocator, performs no I/O and reads no
//! clock: whatever depends on time takes a [`time::Timestamp`] from the
//! caller. Capacities are fixed (const generics, `heapless`), and exhausting
//! one is a typed error, never a panic; where a hosted adapter wants memory
//! to follow use instead (the routing table, the per-connection ledgers),
//! it passes its own storage through a trait (`TableStorage`,
//! `LedgerStorage`), as smoltcp's users pass socket buffers; a small
//! target keeps the routing table's identifiers once each in a pool
//! (`route::CompactStorage`). Input is never
//! trusted: every decoder here returns an error for bad bytes instead of
//! panicking.
//!
//! Dependencies: `heapless` (fixed-capacity collections), `postcard` and
//! `serde` (the compact encoding), all without `std`. The core has no
//! transport or lock of its own: moving bytes and sharing state is the
//! adapters' business (the workspace's `embedded-io` and `spin` are for a
//! bare-metal adapter, not used here).
//!
//! Layers, bottom up:
//!
//! | module | holds |
//! |---|---|
//! | [`ids`] | app IDs, notification IDs, destinations (`App`, `"1"`, `"*"`) |
//! | [`result`] | the original result codes and a typed error |
//! | [`time`] | [`time::Timestamp`]: time as the caller gives it |
//! | [`wire`] | the `\0NFY` frame codec: streaming decoder, encoder, checked frame view |
//! | [`msg`] | message bodies: documented JSON and compact postcard |
//! | [`whitelist`] | the configuration parser and the `*`/`\` pattern matcher |
//! | [`route`] | the routing table and priority selection |
//! | [`broker`] | the sans-IO service state machine the adapters drive: admission, limits, routing, acknowledgements, flow control |

#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(test, feature = "model"))]
extern crate std;

pub mod broker;
pub mod ids;
pub mod msg;
pub mod result;
pub mod route;
pub mod time;
pub mod whitelist;
pub mod wire;

pub use ids::{AppId, Destination, IdError, NotificationId, MAX_ID_LEN};
pub use result::{Error, NotifyResult};
