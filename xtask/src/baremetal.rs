//! `cargo xtask baremetal`: the broker on a microcontroller, built, measured
//! and tested under QEMU.
//!
//! 1. Builds the firmware of `platform-baremetal` (`nfy-baremetal`) for
//!    [`TARGET`] with the toolchain [`toolchain::detect`] picks for it
//!    (Debian's rustc with `-Zbuild-std=core` on these machines), profile
//!    `firmware` (opt-level `s`, fat LTO), warnings denied, linked with
//!    `rust-lld` against the crate's `memory.x`: a firmware that outgrows
//!    the flash or RAM given there does not link.
//! 2. Prints its flash and RAM use, read from the ELF section headers
//!    ([`elf::sections`]), against the targets [`FLASH_TARGET`] and
//!    [`RAM_TARGET`]; RAM is split into the reserved stack and the static
//!    data.
//! 3. Runs `platform-baremetal/tests/qemu.rs` (ignored in a plain `cargo
//!    test`) against that ELF under `qemu-system-arm -M mps2-an386`, and
//!    prints the stack high-water mark the firmware reported under the
//!    tests' traffic.
//! 4. Fails when flash or RAM is over its target ([`Usage::check`]),
//!    naming the figure and the target. The tests still run first, so an
//!    oversized firmware still gets its stack measured.
//!
//! The firmware's `memory.x` gives flash and RAM more room than their
//! targets (64 and 32 KiB), so that an oversized firmware still links and
//! fails here, with its figures, rather than in the linker.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cmd;
use crate::elf::{self, Section, SHF_ALLOC, SHF_WRITE, SHT_NOBITS};
use crate::error::{Error, Result};
use crate::nostd::{self, Sizes};
use crate::toolchain;

/// The firmware's target: Cortex-M4F.
pub const TARGET: &str = "thumbv7em-none-eabihf";
/// The firmware's package and binary.
const PACKAGE: &str = "nfy-baremetal";
/// The cargo profile for the firmware (workspace `Cargo.toml`).
const PROFILE: &str = "firmware";
/// Flash target for 4 connections and 64 registrations.
pub const FLASH_TARGET: u64 = 48 * 1024;
/// RAM target for 4 connections and 64 registrations.
pub const RAM_TARGET: u64 = 16 * 1024;
/// The capacities the targets are for (the firmware's own, checked by its
/// boot line in the QEMU tests).
const CONNECTIONS_TARGET: u32 = 4;
/// See [`CONNECTIONS_TARGET`].
const REGISTRATIONS_TARGET: u32 = 64;
/// The QEMU system emulator the tests run.
const QEMU: &str = "qemu-system-arm";

/// Runs `cargo xtask baremetal`.
pub fn run(root: &Path) -> Result<()> {
    let elf = build(root)?;
    let data = fs::read(&elf).map_err(|e| Error::io("read", &elf, e))?;
    let sections =
        elf::sections(&data).map_err(|e| Error::Other(format!("{}: {e}", elf.display())))?;
    let usage = Usage::of(&sections);
    println!("{}", usage.report(None));
    if cmd::find_in_path(QEMU).is_none() {
        return Err(Error::Missing(format!(
            "{QEMU} not found: apt-get install {QEMU}"
        )));
    }
    let report = toolchain::target_dir(root).join("baremetal-stack.txt");
    let _ = fs::remove_file(&report);
    let mut test = cmd::cargo();
    test.current_dir(root)
        .args(["test", "-p", PACKAGE, "--test", "qemu", "--", "--ignored"])
        .env("NFY_BAREMETAL_FIRMWARE", &elf)
        .env("NFY_BAREMETAL_REPORT", &report);
    cmd::run(&mut test)?;
    let stack = fs::read_to_string(&report)
        .ok()
        .and_then(|s| parse_stack_report(&s));
    println!("{}", usage.report(stack));
    usage.check()
}

/// Builds the firmware; returns its ELF file.
fn build(root: &Path) -> Result<PathBuf> {
    let tc = toolchain::detect(root, TARGET)?;
    eprintln!(
        "baremetal: the firmware for {TARGET} with {}",
        tc.description
    );
    let mut c = tc.cargo(root, "build");
    c.args(["-p", PACKAGE, "--bin", PACKAGE, "--profile", PROFILE])
        .env(
            toolchain::target_env(&tc.target, "LINKER"),
            nostd::find_lld(&tc)?,
        )
        // The board code builds for the target only: host clippy never
        // sees it, so warnings stop the build here.
        .env("RUSTFLAGS", "-Dwarnings");
    cmd::run(&mut c)?;
    Ok(tc.artifact_dir(PROFILE).join(PACKAGE))
}

/// Reads `stack_used=N stack_size=M` (written by the QEMU tests).
fn parse_stack_report(s: &str) -> Option<u64> {
    s.split_whitespace()
        .find_map(|w| w.strip_prefix("stack_used="))
        .and_then(|n| n.parse().ok())
}

/// Flash and RAM use of the firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Flash, text and rodata as `cargo xtask nostd` counts them.
    pub sizes: Sizes,
    /// RAM: allocated sections that are writable or have no file content
    /// (the `.stack` the linker script reserves is neither marked
    /// writable nor loaded).
    pub ram: u64,
    /// The stack the linker script reserves (section `.stack`).
    pub stack: u64,
}

impl Usage {
    /// From the ELF section headers.
    pub fn of(sections: &[Section]) -> Usage {
        Usage {
            sizes: Sizes::of(sections),
            ram: sections
                .iter()
                .filter(|s| {
                    s.flags & SHF_ALLOC != 0 && (s.flags & SHF_WRITE != 0 || s.kind == SHT_NOBITS)
                })
                .map(|s| s.size)
                .sum(),
            stack: sections
                .iter()
                .filter(|s| s.name == ".stack")
                .map(|s| s.size)
                .sum(),
        }
    }

    /// `Ok` when flash and RAM are within their targets; otherwise an
    /// error naming each figure over its target.
    pub fn check(&self) -> Result<()> {
        let over: Vec<String> = [
            ("flash", self.sizes.flash, FLASH_TARGET),
            ("RAM (stack + .data + .bss)", self.ram, RAM_TARGET),
        ]
        .iter()
        .filter(|(_, used, target)| used > target)
        .map(|(what, used, target)| {
            format!(
                "{what} is {used} bytes, over the target of {target} bytes by {}",
                used - target
            )
        })
        .collect();
        if over.is_empty() {
            Ok(())
        } else {
            Err(Error::Other(format!(
                "baremetal: the firmware is over its size target (issue 18, \
                 {CONNECTIONS_TARGET} connections and {REGISTRATIONS_TARGET} registrations): {}",
                over.join("; ")
            )))
        }
    }

    /// The report; `stack_used` is the high-water mark measured under the
    /// tests, when known.
    pub fn report(&self, stack_used: Option<u64>) -> String {
        let s = &self.sizes;
        let verdict = |used: u64, target: u64| {
            if used <= target {
                "within the target".to_string()
            } else {
                format!("OVER the target by {} bytes", used - target)
            }
        };
        let stack_line = match stack_used {
            Some(used) => format!("{used} used at most under the tests"),
            None => "high-water mark measured by the QEMU tests".to_string(),
        };
        format!(
            "baremetal: firmware for {TARGET} (MPS2 AN386), {CONNECTIONS_TARGET} connections, \
             {REGISTRATIONS_TARGET} registrations, \
             bytes:\n  \
             flash  {:>7} of {FLASH_TARGET:>6} ({})\n    \
             text   {:>7}, rodata {}, vector table and .data image {}\n  \
             ram    {:>7} of {RAM_TARGET:>6} ({})\n    \
             stack  {:>7} reserved ({stack_line})\n    \
             static {:>7} (.data, .bss)",
            s.flash,
            verdict(s.flash, FLASH_TARGET),
            s.text,
            s.rodata,
            s.flash.saturating_sub(s.text + s.rodata),
            self.ram,
            verdict(self.ram, RAM_TARGET),
            self.stack,
            self.ram.saturating_sub(self.stack),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(name: &str, kind: u32, flags: u64, size: u64) -> Section {
        Section {
            name: name.into(),
            kind,
            flags,
            size,
        }
    }

    #[test]
    fn usage_splits_ram_into_stack_and_statics() {
        // PROGBITS = 1, NOBITS = 8; ALLOC = 2, WRITE = 1, EXEC = 4.
        let u = Usage::of(&[
            section(".vector_table", 1, 2, 1024),
            section(".text", 1, 6, 30_000),
            section(".rodata", 1, 2, 4_000),
            // As lld writes it: allocated, not writable.
            section(".stack", 8, 2, 8192),
            section(".data", 1, 3, 8),
            section(".bss", 8, 3, 18_000),
            section(".debug_info", 1, 0, 99_999),
        ]);
        assert_eq!(u.sizes.flash, 1024 + 30_000 + 4_000 + 8);
        assert_eq!(u.ram, 8192 + 8 + 18_000);
        assert_eq!(u.stack, 8192);
        let r = u.report(Some(5000));
        assert!(
            r.contains("flash    35032 of  49152 (within the target)"),
            "{r}"
        );
        assert!(
            r.contains("text     30000, rodata 4000, vector table and .data image 1032"),
            "{r}"
        );
        assert!(
            r.contains("ram      26200 of  16384 (OVER the target by 9816 bytes)"),
            "{r}"
        );
        assert!(
            r.contains("stack     8192 reserved (5000 used at most"),
            "{r}"
        );
        assert!(r.contains("static   18008 (.data, .bss)"), "{r}");
    }

    #[test]
    fn sizes_over_a_target_fail_naming_the_figure() {
        let within = Usage {
            sizes: Sizes {
                flash: FLASH_TARGET,
                ..Sizes::default()
            },
            ram: RAM_TARGET,
            stack: 6144,
        };
        assert!(within.check().is_ok());
        let ram_over = Usage {
            ram: RAM_TARGET + 1,
            ..within
        };
        let e = ram_over.check().unwrap_err().to_string();
        assert!(
            e.contains(
                "RAM (stack + .data + .bss) is 16385 bytes, over the target of 16384 bytes by 1"
            ),
            "{e}"
        );
        assert!(!e.contains("flash"), "{e}");
        let both = Usage {
            sizes: Sizes {
                flash: FLASH_TARGET + 10,
                ..Sizes::default()
            },
            ..ram_over
        };
        let e = both.check().unwrap_err().to_string();
        assert!(
            e.contains("flash is 49162 bytes, over the target of 49152 bytes by 10"),
            "{e}"
        );
        assert!(e.contains("RAM (stack"), "{e}");
    }

    #[test]
    fn stack_report_is_read_back() {
        assert_eq!(
            parse_stack_report("stack_used=5856 stack_size=8192\n"),
            Some(5856)
        );
        assert_eq!(parse_stack_report("garbage"), None);
    }
}
