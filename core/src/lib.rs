//! # nfy-core
//!
//! The platform-independent heart of nfy, the notification service for
//! payment-terminal firmware. Everything the service *decides* lives here;
//! the platform crates (`nfy-linux`, `nfy-verix-sim`) only move bytes, keep
//! time and run callbacks.
//!
//! The crate is `no_std`, uses no allocator, performs no I/O and reads no
//! clock. Capacities are fixed (const generics, `heapless`), and exhausting
//! one is a typed error, never a panic. Input is never trusted: every decoder
//! here returns an error for bad bytes instead of panicking.
//!
//! Layers, bottom up:
//!
//! | module | holds |
//! |---|---|
//! | [`ids`] | app IDs, notification IDs, destinations (`App`, `"1"`, `"*"`) |
//! | [`result`] | the original result codes and a typed error |
//! | [`wire`] | the `\0NFY` frame codec: streaming decoder, encoder |
//! | [`msg`] | message bodies: documented JSON and compact postcard |
//! | [`whitelist`] | the configuration parser and the `*`/`\` pattern matcher |
//! | [`route`] | the routing table and priority selection |
//! | [`broker`] | the sans-IO service state machine the adapters drive |

#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

pub mod broker;
pub mod ids;
pub mod msg;
pub mod result;
pub mod route;
pub mod whitelist;
pub mod wire;

pub use ids::{AppId, Destination, IdError, NotificationId, MAX_ID_LEN};
pub use result::{Error, NotifyResult};
