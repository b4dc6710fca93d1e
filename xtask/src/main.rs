//! `cargo xtask`: nfy's build, check, cross-compile, packaging and flashing
//! commands, in Rust so they run the same on every machine (the
//! [cargo-xtask](https://github.com/matklad/cargo-xtask) convention; the
//! alias is in `.cargo/config.toml`).
//!
//! | command | module |
//! |---|---|
//! | `ci` | [`ci`] |
//! | `toolchain` | [`msrv`] (compilers are found by [`toolchain`]) |
//! | `nostd` | [`nostd`] |
//! | `baremetal` | [`baremetal`] |
//! | `cross` | [`cross`], libvfiipc in [`capi`] |
//! | `dist` | [`dist`], format in [`package`], libvfiipc in [`capi`] |
//! | `flash` | [`flash`] |
//! | `bench` | runs `cargo bench -p nfy-linux --bench bus` (issue 6's bus benchmark) |
//! | `soak` | runs the soak test, `nfy-tests`' ignored `tests/soak.rs` (issue 7) |
//!
//! Toolchain discovery is in [`toolchain`], ELF reading in [`elf`], the
//! command line in [`args`] and the help texts in [`help`]. Every external
//! command is echoed before it runs ([`cmd`]).

#![forbid(unsafe_code)]

mod args;
mod baremetal;
mod capi;
mod ci;
mod cmd;
mod cross;
mod dist;
mod doclinks;
mod elf;
mod error;
mod flash;
mod help;
mod msrv;
mod nostd;
mod package;
mod soak;
#[cfg(test)]
mod testutil;
mod tidy;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use args::Args;
use error::{Error, Result};

/// Exit status for a wrong command line (as BSD's and GNU's tools use).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprint!("{}", help::overview());
        return ExitCode::from(EXIT_USAGE);
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ Error::Usage(_)) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// What the command line asks for, before anything runs.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// Print this text (a help) and stop.
    Help(String),
    /// Run the command.
    Run(String),
}

/// Sorts out help requests: `help [X]`, `--help`, `-h`, and `X --help` or
/// `X -h` (before any `--`).
fn request(args: &mut Args) -> Result<Request> {
    let first = match args.command() {
        Some(c) => c,
        None if args.flag("--help") => "--help".into(),
        None => return Err(Error::Usage("no command given".into())),
    };
    match first.as_str() {
        "help" | "--help" | "-h" => {
            // `help --help`: the help command's own help.
            let about_help = (args.flag("--help") | args.flag("-h")).then(|| "help".to_string());
            let Some(topic) = args.command().or(about_help) else {
                args.finish()?;
                return Ok(Request::Help(help::overview()));
            };
            args.finish()?;
            let h =
                help::find(&topic).ok_or_else(|| Error::Usage(format!("no command `{topic}`")))?;
            Ok(Request::Help(help::command(h)))
        }
        name => {
            let h = help::find(name)
                .ok_or_else(|| Error::Usage(format!("unknown command `{name}`")))?;
            if args.flag("--help") | args.flag("-h") {
                Ok(Request::Help(help::command(h)))
            } else {
                Ok(Request::Run(name.to_string()))
            }
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let mut args = Args::new(args);
    let command = match request(&mut args)? {
        Request::Help(text) => {
            print!("{text}");
            return Ok(());
        }
        Request::Run(command) => command,
    };
    let root = root();
    match command.as_str() {
        "ci" => {
            let skip = args.values("--skip")?;
            args.finish()?;
            ci::run(&root, &skip)
        }
        "toolchain" => {
            args.finish()?;
            msrv::run(&root)
        }
        "nostd" => {
            args.finish()?;
            nostd::run(&root)
        }
        "baremetal" => {
            args.finish()?;
            baremetal::run(&root)
        }
        "cross" => {
            let target = args
                .value("--target")?
                .unwrap_or_else(|| cross::DEFAULT_TARGET.to_string());
            let test = args.flag("--test");
            let release = args.flag("--release");
            let extra = args.trailing();
            args.finish()?;
            if test {
                if release {
                    return Err(Error::Usage(
                        "--test builds debug tests; drop --release".into(),
                    ));
                }
                cross::test(&root, &target, &extra)
            } else {
                if !extra.is_empty() {
                    return Err(Error::Usage("arguments after -- need --test".into()));
                }
                let profile = if release {
                    cross::Profile::Release
                } else {
                    cross::Profile::Debug
                };
                cross::build(&root, &target, profile).map(|_| ())
            }
        }
        "dist" => {
            let opts = dist::Options {
                target: args.value("--target")?,
                bin_dir: args.value("--bin-dir")?.map(PathBuf::from),
                build: args.value("--build")?,
                out: args.value("--out")?.map(PathBuf::from),
            };
            args.finish()?;
            dist::run(&root, &opts)
        }
        "flash" => {
            let package = args
                .value("--package")?
                .ok_or_else(|| Error::Usage("flash needs --package FILE".into()))?;
            let to = args
                .value("--to")?
                .ok_or_else(|| Error::Usage("flash needs --to DEST".into()))?;
            args.finish()?;
            flash::run(Path::new(&package), &flash::parse_dest(&to)?)
        }
        "bench" => {
            let extra = args.trailing();
            args.finish()?;
            let mut cmd = cmd::cargo();
            cmd.current_dir(&root)
                .args(["bench", "-p", "nfy-linux", "--bench", "bus", "--"])
                .args(&extra);
            cmd::run(&mut cmd)
        }
        "soak" => {
            let minutes = args.value("--minutes")?.unwrap_or_else(|| "1".into());
            if !minutes
                .parse::<f64>()
                .is_ok_and(|m| m > 0.0 && m.is_finite())
            {
                return Err(Error::Usage(format!(
                    "--minutes {minutes:?}: not a positive number"
                )));
            }
            let seed = args.value("--seed")?;
            let clients = args.value("--clients")?;
            args.finish()?;
            cmd::run(&mut soak::command(
                &root,
                &minutes,
                seed.as_deref(),
                clients.as_deref(),
            ))
        }
        other => Err(Error::Usage(format!("unknown command `{other}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_of(line: &str) -> Result<Request> {
        let mut a = Args::new(line.split_whitespace().map(str::to_string).collect());
        request(&mut a)
    }

    fn is_help_for(r: Result<Request>, command: &str) -> bool {
        matches!(r, Ok(Request::Help(text))
            if text.starts_with(&format!("usage: cargo xtask {command}")))
    }

    #[test]
    fn help_is_given_for_every_command_every_way() {
        for line in ["--help", "-h", "help"] {
            assert!(
                matches!(request_of(line), Ok(Request::Help(t)) if t == help::overview()),
                "{line}"
            );
        }
        for h in help::COMMANDS {
            let name = h.name;
            for line in [
                format!("help {name}"),
                format!("{name} --help"),
                format!("{name} -h"),
                format!("--help {name}"),
            ] {
                assert!(is_help_for(request_of(&line), name), "{line}");
            }
        }
        // Options around --help do not matter; after -- they are the tool's.
        assert!(is_help_for(request_of("dist --target x --help"), "dist"));
        assert_eq!(
            request_of("bench -- --help").unwrap(),
            Request::Run("bench".into())
        );
        // Help asks nothing of the machine: it succeeds anywhere.
        assert!(run(vec!["dist".into(), "--help".into()]).is_ok());
    }

    #[test]
    fn command_line_mistakes_are_usage_errors() {
        for line in ["frobnicate", "help frobnicate", "help ci extra", ""] {
            assert!(matches!(request_of(line), Err(Error::Usage(_))), "{line:?}");
        }
        assert!(matches!(
            run(vec!["flash".into(), "--to".into(), "/x".into()]),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            run(vec!["nostd".into(), "--bogus".into()]),
            Err(Error::Usage(_))
        ));
    }
}
