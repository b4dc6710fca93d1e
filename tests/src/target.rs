//! A profile under test: its server binary, its client agent and its
//! limits.

use nfy_linux::server::Profile;

/// One platform profile as the suite sees it. The integration tests build
/// one per enabled cargo feature (the binary paths come from
/// `env!("CARGO_BIN_EXE_…")`, known only there).
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// `"linux"` or `"verix"`.
    pub name: &'static str,
    /// The server binary (`notifysvc` or `notifysvc-verix`, built from its
    /// own source by this package).
    pub server_bin: &'static str,
    /// The client agent built against the profile's crate
    /// (`src/agent_program.rs`).
    pub agent_bin: &'static str,
    /// The profile: flags and limits the server runs with.
    pub profile: Profile,
}

impl Target {
    /// The largest frame body the server accepts by default: the smaller
    /// of the command line's default and the profile's cap.
    pub fn max_frame(&self) -> usize {
        nfy_linux::server::DEFAULT_MAX_FRAME.min(self.profile.limits.max_frame)
    }
}
