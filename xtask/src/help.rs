//! The help texts: one [`Help`] per command in [`COMMANDS`], shown as a
//! list by `cargo xtask help` and in full by `cargo xtask help COMMAND` or
//! `cargo xtask COMMAND --help`.
//!
//! A new command adds its entry here and its arm in `main`'s dispatch.

/// One command's help.
#[derive(Debug, Clone, Copy)]
pub struct Help {
    /// The command's name.
    pub name: &'static str,
    /// Its options, as the usage line shows them.
    pub options: &'static str,
    /// What it does, in a line or two (the list shows this).
    pub summary: &'static str,
    /// The rest, shown by the command's own help.
    pub details: &'static str,
}

/// Every command, in the order `cargo xtask help` lists them.
pub const COMMANDS: &[Help] = &[
    Help {
        name: "ci",
        options: "[--skip STEP]...",
        summary: "Everything CI checks, in order: toolchain, fmt, clippy, doc, test, soak,\n\
                  nostd, baremetal, cross. Stops at the first failing step and names it.",
        details: "\
Steps:
  toolchain  cargo xtask toolchain (compilers and dependencies against the
             minimum Rust)
  fmt        cargo fmt --all -- --check
  clippy     cargo clippy --workspace --all-targets -- -D warnings
  doc        RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps
  test       cargo test --workspace
  soak       cargo xtask soak --minutes 1
  nostd      cargo xtask nostd
  baremetal  cargo xtask baremetal (the firmware under qemu-system-arm)
  cross      cargo xtask cross (ARM build, no tests)
Each step prints a summary line with its duration; the last line counts
the tests (`tests: N passed, M failed, K skipped`).

Options:
  --skip STEP  leave STEP out (repeatable), for local use",
    },
    Help {
        name: "toolchain",
        options: "",
        summary: "Shows the compiler each ARM and bare-metal target gets and checks it, and\n\
                  the locked dependencies, against the minimum Rust (rust-version).",
        details: "\
Fails when a target's compiler is older than rust-version in Cargo.toml
(naming the command that upgrades it), or when Cargo.lock holds a
dependency, for the host or those targets, that declares a newer
rust-version.",
    },
    Help {
        name: "nostd",
        options: "",
        summary: "Builds nfy-core for thumbv7em-none-eabihf and riscv32imc-unknown-none-elf\n\
                  and prints the code size of a small firmware-like program over it.",
        details: "\
The sizes are kept in target/nostd-size-<target>.txt; the next run prints
the difference.",
    },
    Help {
        name: "baremetal",
        options: "",
        summary: "Builds the bare-metal firmware (the broker on an MPS2 AN386 Cortex-M4),\n\
                  prints its flash and RAM use, runs its tests under qemu-system-arm, and\n\
                  fails when flash or RAM is over its target.",
        details: "\
The firmware (platform-baremetal: one UART per connection) is built for
thumbv7em-none-eabihf with the bare-metal toolchain (see `toolchain`);
flash and RAM are read from its ELF sections and compared with the targets
(48 KiB of flash, 16 KiB of RAM: stack + .data + .bss, for 4 connections
and 64 registrations); then platform-baremetal/tests/qemu.rs runs against
it, each test with its own qemu-system-arm, and the stack's high-water
mark is printed. Fails when a test fails or when flash or RAM is over its
target (the message names the figure and the target).",
    },
    Help {
        name: "cross",
        options: "[--target T] [--release] [--test] [-- CARGO-TEST-ARGS]",
        summary: "Builds notifysvc, notifysvc-verix, nfy and libvfiipc for T (default\n\
                  armv7-unknown-linux-gnueabihf).",
        details: "\
Options:
  --target T  the target triple
  --release   release build
  --test      then run the workspace tests for T under qemu (debug only);
              arguments after -- go to cargo test",
    },
    Help {
        name: "dist",
        options: "[--target T] [--bin-dir DIR] [--build ID] [--out DIR]",
        summary: "Builds release binaries for T and writes the terminal packages\n\
                  target/dist/dl.notifysvc-<version>-<build>.tgz and ...-rm.tgz,\n\
                  and dl.libvfiipc-<version>-<build>.tgz (the C/C++ library's SDK).",
        details: "\
The install package holds the programs and the runtime library
opt/nfy/lib/libvfiipc.so of C and C++ apps. Every binary and the library
must be an ELF file for T (machine, 32/64-bit, byte order, float ABI), or
nothing is written.

Options:
  --target T     the target triple (default armv7-unknown-linux-gnueabihf)
  --bin-dir DIR  package the binaries (and libvfiipc) in DIR instead of
                 building them
  --build ID     the build id (default: the commit's first 10 hex digits,
                 .dirty appended when tracked files changed)
  --out DIR      where the packages go (default target/dist)",
    },
    Help {
        name: "flash",
        options: "--package FILE --to DEST",
        summary: "Verifies FILE and installs it (or applies a removal package) onto DEST.",
        details: "\
DEST is a directory standing for the terminal's root filesystem, or
ssh://[user@]host[:port]/path. Before anything is copied, every file is
checked against the package's manifest and every binary against the
target its VERSION names; afterwards every file on DEST is checked against
the manifest.",
    },
    Help {
        name: "bench",
        options: "[-- BENCH-ARGS]",
        summary: "The bus benchmark (cargo bench -p nfy-linux --bench bus).",
        details: "\
Floor relay, nfy with its library, nfy over the JSON protocol; rtt,
throughput, fanout, scale, memory; pinned and unpinned. Prints the table
with the targets and writes target/bench/bus.json and target/bench/rtt.svg.
Arguments after -- go to the benchmark (--quick for a smoke run).",
    },
    Help {
        name: "soak",
        options: "[--minutes N] [--seed S] [--clients C]",
        summary: "The soak test (release build): a live notifysvc, client processes, kills\n\
                  and a server restart; fails on any unexplained loss or a growing RSS.",
        details: "\
C (default 16) client processes with mixed unicast/\"1\"/broadcast traffic,
random SIGKILLs and restarts of clients, one server restart half-way;
prints sent, delivered, unicast errors, explained and unexplained losses
and the server's RSS over time, and fails on any unexplained loss or an
RSS that is not flat within 10 % after warm-up.

Options:
  --minutes N  how long (may be fractional; default 1)
  --seed S     the random seed (default 1)
  --clients C  client processes (default 16)",
    },
    Help {
        name: "help",
        options: "[COMMAND]",
        summary: "This list, or one command's help (also: cargo xtask COMMAND --help).",
        details: "",
    },
];

/// The command named `name`.
pub fn find(name: &str) -> Option<&'static Help> {
    COMMANDS.iter().find(|h| h.name == name)
}

/// `cargo xtask help`: the usage line and every command's summary.
pub fn overview() -> String {
    let mut out = String::from("usage: cargo xtask <command> [options]\n\ncommands:\n");
    for h in COMMANDS {
        out.push_str(&format!("  {} {}\n", h.name, h.options).replace(" \n", "\n"));
        for line in h.summary.lines() {
            out.push_str(&format!("      {}\n", line.trim_start()));
        }
    }
    out.push_str(
        "\n`cargo xtask help COMMAND` or `cargo xtask COMMAND --help` shows a command's\n\
         options. Exit status: 0 done, 1 failed, 2 bad command line.\n",
    );
    out
}

/// One command's full help.
pub fn command(h: &Help) -> String {
    let mut out = format!("usage: cargo xtask {} {}", h.name, h.options)
        .trim_end()
        .to_string();
    out.push_str("\n\n");
    for line in h.summary.lines() {
        out.push_str(line.trim_start());
        out.push('\n');
    }
    if !h.details.is_empty() {
        out.push('\n');
        out.push_str(h.details);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::STEPS;

    #[test]
    fn ci_help_names_every_step_in_order() {
        let ci = find("ci").unwrap();
        let listed = ci
            .summary
            .split("in order: ")
            .nth(1)
            .and_then(|s| s.split('.').next())
            .unwrap()
            .replace('\n', " ");
        let listed: Vec<&str> = listed.split(',').map(str::trim).collect();
        assert_eq!(listed, STEPS);
        for step in STEPS {
            assert!(
                ci.details.contains(&format!("\n  {step} ")),
                "{step} missing from ci's step list"
            );
        }
    }

    #[test]
    fn every_command_has_help_and_the_overview_lists_it() {
        let all = overview();
        for h in COMMANDS {
            assert!(all.contains(&format!("\n  {}", h.name)), "{}", h.name);
            assert!(command(h).starts_with(&format!("usage: cargo xtask {}", h.name)));
        }
        assert!(find("nope").is_none());
    }
}
