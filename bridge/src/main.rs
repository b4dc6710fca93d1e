//! `nfy-bridge`: bridges this terminal's notifysvc to an MQTT broker
//! (`nfy-bridge --help`; README, "Fleets"). Exit status: 0 after SIGTERM
//! or SIGINT, 1 when it cannot run, 4 unreadable configuration, 5 invalid
//! configuration, 64 bad command line.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use nfy_bridge::config::{self, Command};

fn main() -> ExitCode {
    let command = match config::parse(std::env::args().skip(1), &|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nfy-bridge: {e}");
            if e.exit_code() == 64 {
                eprintln!("Try 'nfy-bridge --help'.");
            }
            return ExitCode::from(e.exit_code());
        }
    };
    let options = match command {
        Command::Help => {
            print!("{}", config::usage());
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("nfy-bridge {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Run(o) => *o,
    };
    nfy_linux::log::init("nfy-bridge");
    match nfy_bridge::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nfy-bridge: error: {e}");
            ExitCode::FAILURE
        }
    }
}
