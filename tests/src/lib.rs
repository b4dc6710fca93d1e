//! # nfy-tests
//!
//! The conformance suite: one set of tests, written once, run against
//! every platform profile enabled by this crate's cargo features —
//! `linux` (`notifysvc`, `nfy-linux`) and `verix-sim` (`notifysvc-verix`,
//! `nfy-verix-sim`). Both are default features, so `cargo test --workspace`
//! (or `cargo test -p nfy-tests`) runs the suite against both;
//! `cargo test -p nfy-tests --no-default-features --features verix-sim`
//! runs one.
//!
//! # What runs
//!
//! Every test uses **real processes**:
//!
//! - the profile's **server binary**, started with `--port 0` and a
//!   private socket ([`server::ServerProcess`]). The binaries are built by
//!   this package from the platforms' own `main` source files (see
//!   `Cargo.toml`): Cargo gives a test the path of its own package's
//!   binaries only, and this keeps them built and fresh for every way of
//!   running the tests, with no search of the target directory;
//! - **client processes**: the agent (`src/agent_program.rs`), compiled
//!   once against each platform crate, driven line by line over its stdin
//!   and stdout ([`agent::Agent`]); it uses the public client APIs only
//!   (the idiomatic `Client` and the ADK-style `ipc_*` functions);
//! - a **raw JSON-protocol client** written from the spec ([`wire`],
//!   from `nfy-test-support`, shared with `nfy-linux`'s tests), which
//!   proves wire compatibility independently of our codecs.
//!
//! The suite itself is in `tests/conformance/` (one module per topic, the
//! list of tests in `main.rs`, instantiated once per enabled profile by a
//! macro: `linux::unicast…`, `verix::unicast…`); profile-specific tests
//! are in `tests/verix_profile.rs`.
//!
//! # Determinism
//!
//! No test sleeps to synchronise. Servers report readiness in their log;
//! agents acknowledge every command once it is done and can round-trip the
//! server (`sync`: everything they sent before has been handled); the raw
//! client round-trips with a notification to itself
//! ([`wire::JsonClient::sync`]). Timeouts ([`DEADLINE`]) only bound a hang,
//! and short quiet periods ([`QUIET`]) only back negative checks ("nothing
//! more arrives"), which can fail but never pass by luck.

#![forbid(unsafe_code)]
// A test harness: a failed expectation must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

pub mod agent;
pub mod server;
pub mod target;

pub use nfy_test_support::{netns, rng, skip, wire, DEADLINE};
pub use target::Target;

/// How long a negative check waits for something that must not come.
pub const QUIET: Duration = Duration::from_millis(200);
