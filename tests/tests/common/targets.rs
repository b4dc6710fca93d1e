//! The profiles under test, one per enabled cargo feature. Shared by the
//! test crates (the binary paths are known only to integration tests).

#![allow(dead_code)]

use nfy_tests::Target;

/// The Linux profile: `notifysvc` and the agent built against `nfy-linux`.
#[cfg(feature = "linux")]
pub fn linux() -> Target {
    Target {
        name: "linux",
        server_bin: env!("CARGO_BIN_EXE_nfy-tests-notifysvc"),
        agent_bin: env!("CARGO_BIN_EXE_nfy-tests-agent-linux"),
        profile: nfy_linux::server::Profile::LINUX,
    }
}

/// The Verix-style profile: `notifysvc-verix` and the agent built against
/// `nfy-verix-sim`.
#[cfg(feature = "verix-sim")]
pub fn verix() -> Target {
    Target {
        name: "verix",
        server_bin: env!("CARGO_BIN_EXE_nfy-tests-notifysvc-verix"),
        agent_bin: env!("CARGO_BIN_EXE_nfy-tests-agent-verix"),
        profile: nfy_verix_sim::PROFILE,
    }
}
