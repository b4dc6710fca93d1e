//! The conformance agent built against `nfy-linux`: see
//! `src/agent_program.rs`, the same source for every platform.

use std::process::ExitCode;

/// The platform crate the agent is built against.
use nfy_linux as platform;

#[path = "../agent_program.rs"]
mod agent_program;

fn main() -> ExitCode {
    agent_program::main()
}
