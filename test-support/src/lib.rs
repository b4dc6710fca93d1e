//! # nfy-test-support
//!
//! Helpers for nfy's **tests only**, shared by `nfy-linux`'s integration
//! tests (a dev-dependency) and the conformance suite `nfy-tests`, so each
//! exists once:
//!
//! - [`wire`]: a raw client of the documented JSON wire protocol, written
//!   from the spec alone (frames, message bodies, a strict frame reader,
//!   [`wire::JsonClient`] with timeouts and round-trip helpers);
//! - [`netns`]: network namespaces joined to the host by a veth pair, as
//!   remote peers, skipped with a printed reason where not permitted;
//! - [`rng`]: a seeded splitmix64 generator for reproducible random
//!   inputs;
//! - [`tls`]: certificates made by the tests (a CA, server and client
//!   certificates, current or expired) as PEM files;
//! - [`skip`] (reports a test skipped) and [`wait_exit`] (waits for a
//!   child process with a timeout).
//!
//! It depends on neither `nfy-core` nor `nfy-linux`: it checks the
//! servers against the protocol as documented, and `nfy-linux` can use it
//! as a dev-dependency. It is not published and not for production code:
//! a failed expectation panics, loudly, as a test should.

#![forbid(unsafe_code)]
// A test harness: a failed expectation must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

pub mod netns;
pub mod rng;
pub mod tls;
pub mod wire;

/// How long anything in a test may take before it counts as hung.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The environment variable that turns a skip into a failure (`cargo
/// xtask ci` sets it): on a CI machine every prerequisite is installed, so
/// a test that would skip there is a broken check, not a missing tool.
pub const STRICT_ENV: &str = "NFY_TEST_STRICT";

/// Reports a skipped test loudly: `*** SKIPPED: <test>: <why> ***`
/// straight to the process's stderr, past the test harness's output
/// capture, so it shows even when the test "passes".
///
/// # Panics
///
/// When [`STRICT_ENV`] is set to anything but `0` or nothing: a test that
/// cannot run then fails, naming what it lacked.
pub fn skip(test: &str, why: &str) {
    if strict() {
        panic!("{test} cannot run ({why}), and {STRICT_ENV} is set: skips are failures");
    }
    let line = format!("\n*** SKIPPED: {test}: {why} ***\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// True when [`STRICT_ENV`] asks for skips to fail.
pub fn strict() -> bool {
    std::env::var_os(STRICT_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Waits until `child` exits, at most `timeout`: its exit status, or
/// `None` while it still runs (polling its status: there is no portable
/// blocking wait with a timeout).
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
