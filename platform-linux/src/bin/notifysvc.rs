//! `notifysvc`: the nfy notification server.
//!
//! Parses the command line (see `notifysvc --help`), installs the stderr
//! logger and runs [`nfy_linux::server::run`] until SIGTERM/SIGINT. The
//! exit status is the negated result code of the failure (see
//! [`nfy_linux::server`]): 1 another server runs or another start-up
//! failure, 3 permission, 4 configuration file unreadable, 5 invalid
//! configuration, 64 bad command line, 0 after a clean shutdown.
//!
//! Fatal errors are printed to stderr whatever the log filter says.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use nfy_linux::server::{self, args};

fn main() -> ExitCode {
    let command = match args::parse(std::env::args_os().skip(1), &|k| std::env::var_os(k)) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("notifysvc: {e}\nTry 'notifysvc --help'.");
            return exit(args::EXIT_USAGE);
        }
    };
    let options = match command {
        args::Command::Help => {
            print!("{}", args::usage());
            return ExitCode::SUCCESS;
        }
        args::Command::Version => {
            println!("{}", args::version());
            return ExitCode::SUCCESS;
        }
        args::Command::Run(options) => options,
    };
    nfy_linux::log::init("notifysvc");
    match server::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notifysvc: error: {e}");
            exit(e.exit_code())
        }
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
