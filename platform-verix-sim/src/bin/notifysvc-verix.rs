//! `notifysvc-verix`: the nfy notification server with the Verix-style
//! profile.
//!
//! Same command line as `notifysvc` (the same parser,
//! [`nfy_linux::server::args`]); a CONFIG_FILE is accepted and ignored (one
//! info line says so), TCP listens on loopback only, and any remote peer
//! that reaches a socket anyway is refused and logged. `--max-frame` and
//! `--max-queue` may only lower the profile's limits
//! ([`nfy_verix_sim::MAX_FRAME`], [`nfy_verix_sim::MAX_QUEUE`]). Exit
//! statuses as for `notifysvc`: 0 clean shutdown, 1 another server runs or
//! another start-up failure, 3 permission, 64 bad command line (4 and 5,
//! configuration errors, cannot happen: no configuration is read).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use nfy_verix_sim::server::{self, args};

const NAME: &str = "notifysvc-verix";

fn main() -> ExitCode {
    let command = match args::parse(std::env::args_os().skip(1), &|k| std::env::var_os(k)) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("{NAME}: {e}\nTry '{NAME} --help'.");
            return exit(args::EXIT_USAGE);
        }
    };
    let options = match command {
        args::Command::Help => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        args::Command::Version => {
            println!("{NAME} {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        args::Command::Run(options) => options,
    };
    nfy_verix_sim::log::init(NAME);
    match server::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{NAME}: error: {e}");
            exit(e.exit_code())
        }
    }
}

/// `notifysvc`'s help, preceded by what this profile does differently.
fn usage() -> String {
    format!(
        "{NAME} {version} - the nfy notification server, Verix-style profile\n\
         \n\
         Takes the command line of notifysvc, shown below, with these differences:\n\
         \x20 - CONFIG_FILE is accepted and ignored (no file is read, not even the\n\
         \x20   default locations); only local clients are served\n\
         \x20 - TCP listens on loopback only; remote peers are refused\n\
         \x20 - SIGHUP reloads nothing (it is logged; the server goes on)\n\
         \x20 - limits: {conns} connections, {regs} registrations ({per} per connection),\n\
         \x20   frames up to {frame} bytes, queues up to {queue} bytes (--max-frame and\n\
         \x20   --max-queue may only lower them)\n\
         \n\
         {linux}",
        version = env!("CARGO_PKG_VERSION"),
        conns = nfy_verix_sim::MAX_CONNECTIONS,
        regs = nfy_verix_sim::MAX_REGISTRATIONS,
        per = nfy_verix_sim::MAX_REGISTRATIONS_PER_CONNECTION,
        frame = nfy_verix_sim::MAX_FRAME,
        queue = nfy_verix_sim::MAX_QUEUE,
        linux = args::usage(),
    )
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
