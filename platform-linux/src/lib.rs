//! # nfy-linux
//!
//! The Linux platform of nfy: the `notifysvc` server, the client library and
//! the `nfy` command-line tool, on top of the sans-IO `nfy-core`.
//!
//! Coming in issue 3.

pub mod client;
