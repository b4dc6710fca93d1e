//! `cargo xtask`: nfy's build, check, cross-compile, packaging and flashing
//! commands, in Rust so they run the same on every machine (the
//! [cargo-xtask](https://github.com/matklad/cargo-xtask) convention; the
//! alias is in `.cargo/config.toml`).
//!
//! | command | module |
//! |---|---|
//! | `ci` | [`ci`] |
//! | `nostd` | [`nostd`] |
//! | `cross` | [`cross`], libvfiipc in [`capi`] |
//! | `dist` | [`dist`], format in [`package`], libvfiipc in [`capi`] |
//! | `flash` | [`flash`] |
//! | `bench` | runs `cargo bench -p nfy-linux --bench bus` (issue 6's bus benchmark) |
//! | `soak` | runs the soak test, `nfy-tests`' ignored `tests/soak.rs` (issue 7) |
//!
//! Toolchain discovery is in [`toolchain`]. Every external command is echoed
//! before it runs ([`cmd`]).

mod capi;
mod ci;
mod cmd;
mod cross;
mod dist;
mod error;
mod flash;
mod nostd;
mod package;
mod soak;
#[cfg(test)]
mod testutil;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use error::{Error, Result};

const USAGE: &str = "\
cargo xtask <command> [options]

commands:
  ci [--skip STEP]...
      Everything CI checks, in order: fmt, clippy, doc, test, nostd, cross.
      Stops at the first failing step and names it. --skip leaves a step out.
  nostd
      Builds nfy-core for thumbv7em-none-eabihf and riscv32imc-unknown-none-elf
      and prints the code size of a small firmware-like program over it.
  cross [--target T] [--release] [--test] [-- CARGO-TEST-ARGS]
      Builds notifysvc, notifysvc-verix, nfy and libvfiipc for T (default
      armv7-unknown-linux-gnueabihf). --test then runs the workspace tests for
      T under qemu (arguments after -- go to cargo test).
  dist [--target T] [--bin-dir DIR] [--build ID] [--out DIR]
      Builds release binaries for T and writes the terminal packages
      target/dist/dl.notifysvc-<version>-<build>.tgz, its removal package
      ...-rm.tgz and dl.libvfiipc-<version>-<build>.tgz (the C/C++ library).
      --bin-dir packages the binaries (and libraries) in DIR instead of
      building; --build overrides the build id (default: the commit's first
      10 hex digits).
  flash --package FILE --to DEST
      Verifies FILE against its manifest and installs it (or applies a removal
      package) onto DEST: a directory standing for the terminal's root
      filesystem, or ssh://[user@]host[:port]/path. Every file is checked
      against the manifest afterwards.
  bench [-- BENCH-ARGS]
      The bus benchmark: floor relay, nfy with its library, nfy over the JSON
      protocol; rtt, throughput, fanout, scale, memory; pinned and unpinned.
      Prints the table with the targets and writes target/bench/bus.json and
      target/bench/rtt.svg. Arguments after -- go to the benchmark (--quick).
  soak [--minutes N] [--seed S] [--clients C]
      The soak test (release build): a live notifysvc, C (16) client processes
      with mixed unicast/\"1\"/broadcast traffic, random SIGKILLs and restarts
      of clients, one server restart half-way; prints sent, delivered,
      unicast errors, explained and unexplained losses and the server's RSS
      over time, and fails on any unexplained loss or an RSS that is not
      flat within 10 % after warm-up. N may be fractional (default 1).
  help
      This text.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
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

fn run(args: Vec<String>) -> Result<()> {
    let mut args = Args::new(args);
    let Some(command) = args.command() else {
        print!("{USAGE}");
        return Err(Error::Usage("no command given".into()));
    };
    let root = root();
    match command.as_str() {
        "ci" => {
            let skip = args.values("--skip")?;
            args.finish()?;
            ci::run(&root, &skip)
        }
        "nostd" => {
            args.finish()?;
            nostd::run(&root)
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
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            print!("{USAGE}");
            Err(Error::Usage(format!("unknown command `{other}`")))
        }
    }
}

/// A small command-line parser: `--name value`, `--name=value`, flags, and
/// everything after `--` kept apart.
struct Args {
    args: Vec<String>,
    trailing: Vec<String>,
}

impl Args {
    fn new(mut args: Vec<String>) -> Self {
        let trailing = match args.iter().position(|a| a == "--") {
            Some(i) => {
                let t = args.split_off(i);
                t.into_iter().skip(1).collect()
            }
            None => Vec::new(),
        };
        Args { args, trailing }
    }

    /// Takes the first argument when it is not an option.
    fn command(&mut self) -> Option<String> {
        let first = self.args.first()?;
        if first.starts_with("--") {
            return None;
        }
        Some(self.args.remove(0))
    }

    /// Takes `--name`; true when it was there.
    fn flag(&mut self, name: &str) -> bool {
        let before = self.args.len();
        self.args.retain(|a| a != name);
        self.args.len() != before
    }

    /// Takes every `--name VALUE` / `--name=VALUE`.
    fn values(&mut self, name: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.args.len() {
            let a = &self.args[i];
            if a == name {
                if i + 1 >= self.args.len() {
                    return Err(Error::Usage(format!("{name} needs a value")));
                }
                out.push(self.args.remove(i + 1));
                self.args.remove(i);
            } else if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                out.push(v.to_string());
                self.args.remove(i);
            } else {
                i += 1;
            }
        }
        Ok(out)
    }

    /// Takes `--name VALUE` given at most once.
    fn value(&mut self, name: &str) -> Result<Option<String>> {
        let mut v = self.values(name)?;
        if v.len() > 1 {
            return Err(Error::Usage(format!("{name} given twice")));
        }
        Ok(v.pop())
    }

    /// The arguments after `--`.
    fn trailing(&mut self) -> Vec<String> {
        std::mem::take(&mut self.trailing)
    }

    /// Fails when arguments are left that no option took.
    fn finish(self) -> Result<()> {
        match self.args.first() {
            None if self.trailing.is_empty() => Ok(()),
            None => Err(Error::Usage(format!(
                "unexpected arguments after --: {}",
                self.trailing.join(" ")
            ))),
            Some(a) => Err(Error::Usage(format!("unexpected argument `{a}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Args {
        Args::new(s.split_whitespace().map(str::to_string).collect())
    }

    #[test]
    fn options_values_flags_and_trailing_arguments() {
        let mut a = args("cross --target=x --test -- --test-threads 1");
        assert_eq!(a.command().as_deref(), Some("cross"));
        assert_eq!(a.value("--target").unwrap().as_deref(), Some("x"));
        assert!(a.flag("--test"));
        assert!(!a.flag("--release"));
        assert_eq!(a.trailing(), ["--test-threads", "1"]);
        a.finish().unwrap();

        let mut a = args("ci --skip cross --skip=nostd");
        a.command();
        assert_eq!(a.values("--skip").unwrap(), ["cross", "nostd"]);
        a.finish().unwrap();
    }

    #[test]
    fn command_line_mistakes_are_usage_errors() {
        let mut a = args("dist --out");
        a.command();
        assert!(matches!(a.value("--out"), Err(Error::Usage(_))));
        let mut a = args("dist --build a --build b");
        a.command();
        assert!(matches!(a.value("--build"), Err(Error::Usage(_))));
        let mut a = args("nostd --bogus");
        a.command();
        assert!(matches!(a.finish(), Err(Error::Usage(_))));
        assert!(matches!(
            run(vec!["frobnicate".into()]),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            run(vec!["flash".into(), "--to".into(), "/x".into()]),
            Err(Error::Usage(_))
        ));
    }
}
