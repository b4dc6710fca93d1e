//! `cargo xtask ci`: everything CI checks, in order, failing at the first
//! broken step.
//!
//! | step | runs |
//! |---|---|
//! | `toolchain` | `cargo xtask toolchain`: compilers and locked dependencies against the minimum Rust |
//! | `fmt` | `cargo fmt --all -- --check` |
//! | `clippy` | `cargo clippy --workspace --all-targets -- -D warnings` |
//! | `doc` | `RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps` |
//! | `test` | `cargo test --workspace` (the README's test command) with `NFY_TEST_STRICT=1`: a test that would skip fails |
//! | `soak` | `cargo xtask soak --minutes 1` (issue 7's soak, short) |
//! | `nostd` | `cargo xtask nostd` |
//! | `baremetal` | `cargo xtask baremetal` (firmware under QEMU) |
//! | `cross` | `cargo xtask cross` (ARM build of the binaries) |
//!
//! Each step prints a summary line with its duration; a failure names the
//! step. The last line counts the tests that ran in the `test` step, as
//! `tests: N passed, M failed`. `--skip STEP` (repeatable) leaves steps
//! out, for local use.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::baremetal;
use crate::cmd;
use crate::cross;
use crate::error::{Error, Result};
use crate::msrv;
use crate::nostd;
use crate::soak;

/// The steps, in the order they run.
pub const STEPS: [&str; 9] = [
    "toolchain",
    "fmt",
    "clippy",
    "doc",
    "test",
    "soak",
    "nostd",
    "baremetal",
    "cross",
];

/// Test counts summed from `cargo test` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TestCounts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests ignored.
    pub ignored: u64,
}

impl TestCounts {
    /// Adds the counts of a libtest summary line
    /// (`test result: ok. 3 passed; 0 failed; 1 ignored; ...`); other lines
    /// are ignored.
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            // "ok. 3 passed" or "3 failed"
            let (Some(n), Some(what)) = (words.iter().rev().nth(1), words.last()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match *what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Runs the CI steps except those in `skip`.
pub fn run(root: &Path, skip: &[String]) -> Result<()> {
    for s in skip {
        if !STEPS.contains(&s.as_str()) {
            return Err(Error::Usage(format!(
                "--skip {s}: no such step (steps: {})",
                STEPS.join(" ")
            )));
        }
    }
    let total = Instant::now();
    let mut summary: Vec<String> = Vec::new();
    let mut counts = None;
    for step in STEPS {
        if skip.iter().any(|s| s == step) {
            summary.push(format!("ci: {step:<9} skipped"));
            continue;
        }
        eprintln!("\n==> ci: {step}");
        let start = Instant::now();
        let result = match step {
            "toolchain" => msrv::run(root),
            "fmt" => cmd::run(cargo(root).args(["fmt", "--all", "--", "--check"])),
            "clippy" => cmd::run(cargo(root).args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])),
            "doc" => cmd::run(cargo(root).env("RUSTDOCFLAGS", "-Dwarnings").args([
                "doc",
                "--workspace",
                "--no-deps",
            ])),
            "test" => run_tests(root).map(|c| counts = Some(c)),
            "soak" => cmd::run(&mut soak::command(root, "1", None, None)),
            "nostd" => nostd::run(root),
            "baremetal" => baremetal::run(root),
            _ => cross::build(root, cross::DEFAULT_TARGET, cross::Profile::Debug).map(|_| ()),
        };
        let took = start.elapsed();
        match result {
            Ok(()) => {
                let line = format!("ci: {step:<9} ok      {}", secs(took));
                eprintln!("{line}");
                summary.push(line);
            }
            Err(e) => {
                summary.push(format!("ci: {step:<9} FAILED  {}", secs(took)));
                print_summary(&summary, total.elapsed(), counts);
                return Err(Error::Other(format!("ci step `{step}` failed: {e}")));
            }
        }
    }
    print_summary(&summary, total.elapsed(), counts);
    Ok(())
}

fn cargo(root: &Path) -> Command {
    let mut c = cmd::cargo();
    c.current_dir(root);
    c
}

fn secs(d: Duration) -> String {
    format!("{:7.1}s", d.as_secs_f64())
}

fn print_summary(lines: &[String], total: Duration, counts: Option<TestCounts>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "\n==> ci: summary");
    for l in lines {
        let _ = writeln!(err, "{l}");
    }
    let _ = writeln!(err, "ci: total     {}", secs(total));
    drop(err);
    if let Some(c) = counts {
        // Alone on the last line of standard output, for CI to read.
        println!(
            "tests: {} passed, {} failed, {} skipped",
            c.passed, c.failed, c.ignored
        );
    }
}

/// `cargo test --workspace`, its output passed through and its summary
/// lines counted.
fn run_tests(root: &Path) -> Result<TestCounts> {
    let mut c = cargo(root);
    // Every prerequisite of the tests is installed on a CI machine
    // (`.ci/run`): a test that would skip (no network namespaces, no
    // mosquitto, a low open-file limit) fails instead of passing unseen
    // (nfy_test_support::skip).
    c.args(["test", "--workspace"])
        .env("NFY_TEST_STRICT", "1")
        .stdout(Stdio::piped());
    let shown = cmd::display(&c);
    eprintln!("$ {shown}");
    let mut child = c.spawn().map_err(|e| Error::Command {
        cmd: shown.clone(),
        status: format!("could not start: {e}"),
    })?;
    let mut counts = TestCounts::default();
    if let Some(out) = child.stdout.take() {
        let mut stdout = std::io::stdout();
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            counts.add_line(&line);
            let _ = writeln!(stdout, "{line}");
        }
    }
    let status = child.wait().map_err(|e| Error::Command {
        cmd: shown.clone(),
        status: e.to_string(),
    })?;
    if !status.success() {
        return Err(Error::Command {
            cmd: shown,
            status: format!(
                "{} ({} passed, {} failed)",
                status
                    .code()
                    .map_or("killed by a signal".to_string(), |c| format!(
                        "exit status {c}"
                    )),
                counts.passed,
                counts.failed
            ),
        });
    }
    if counts.passed == 0 {
        return Err(Error::Other("`cargo test --workspace` ran no test".into()));
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_summaries_are_counted() {
        let mut c = TestCounts::default();
        c.add_line("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        c.add_line(
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        c.add_line("test foo ... ok");
        c.add_line("running 3 tests");
        assert_eq!(
            c,
            TestCounts {
                passed: 15,
                failed: 2,
                ignored: 1
            }
        );
    }

    #[test]
    fn unknown_skip_step_is_a_usage_error() {
        let err = run(Path::new("/nonexistent"), &["lint".into()]).unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{err}");
    }
}
