//! `cargo xtask nostd`: nfy-core on bare metal, and its code size.
//!
//! For every target of [`TARGETS`] it builds the probe program
//! `xtask/nostd-probe`: a service loop over the core (whitelist, broker,
//! frame decoder, codecs), `#![no_std]`, opt-level `s`, LTO. Building it
//! compiles all of `nfy-core` for that target, so it is also the no_std
//! check:
//!
//! - `thumbv7em-none-eabihf` (Cortex-M4F, the class of firmware nfy is
//!   for);
//! - `riscv32imc-unknown-none-elf`, which has no atomic read-modify-write
//!   instructions, so any such atomics in the core fail the build here.
//!
//! Then it prints the probe's section sizes, read from the ELF file by
//! [`elf::sections`]. The numbers are kept in `target/nostd-size-<target>.txt`
//! and the next run prints the difference, so a size regression is visible
//! in every CI log.
//!
//! The probe is linked with `rust-lld` (the bare-metal targets' linker),
//! taken from the build toolchain, else from the active rustup toolchain,
//! else `rust-lld` or `ld.lld` from `PATH`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd;
use crate::elf::{self, Section, SHF_ALLOC, SHF_WRITE, SHT_NOBITS};
use crate::error::{Error, Result};
use crate::toolchain::{self, Toolchain};

/// Bare-metal targets nfy-core must build for; the probe is measured on each.
pub const TARGETS: [&str; 2] = ["thumbv7em-none-eabihf", "riscv32imc-unknown-none-elf"];
/// The probe crate, relative to the workspace root.
pub const PROBE_DIR: &str = "xtask/nostd-probe";
/// The probe's binary name.
const PROBE_BIN: &str = "nfy-nostd-probe";

/// Runs `cargo xtask nostd`.
pub fn run(root: &Path) -> Result<()> {
    let mut reports = Vec::new();
    for target in TARGETS {
        let tc = toolchain::detect(root, target)?;
        eprintln!(
            "nostd: nfy-core and the size probe for {target} with {}",
            tc.description
        );
        let elf = build_probe(root, &tc)?;
        let data = fs::read(&elf).map_err(|e| Error::io("read", &elf, e))?;
        let sizes = Sizes::of(
            &elf::sections(&data).map_err(|e| Error::Other(format!("{}: {e}", elf.display())))?,
        );
        let record = toolchain::target_dir(root).join(format!("nostd-size-{target}.txt"));
        let previous = fs::read_to_string(&record)
            .ok()
            .and_then(|s| Sizes::parse(&s));
        reports.push(sizes.report(target, previous.as_ref()));
        fs::write(&record, sizes.render()).map_err(|e| Error::io("write", &record, e))?;
    }
    for r in reports {
        println!("{r}");
    }
    Ok(())
}

/// Builds the probe; returns its ELF file.
fn build_probe(root: &Path, tc: &Toolchain) -> Result<PathBuf> {
    let probe = root.join(PROBE_DIR);
    // Same dependency versions as the workspace.
    let lock = root.join("Cargo.lock");
    fs::copy(&lock, probe.join("Cargo.lock")).map_err(|e| Error::io("copy", &lock, e))?;
    let linker = find_lld(tc)?;
    let mut c = tc.cargo(root, "build");
    c.arg("--manifest-path")
        .arg(probe.join("Cargo.toml"))
        .arg("--release")
        .env(toolchain::target_env(&tc.target, "LINKER"), linker);
    cmd::run(&mut c)?;
    Ok(tc.artifact_dir("release").join(PROBE_BIN))
}

/// Finds an LLVM linker for the probe (see the module docs); the
/// bare-metal firmware uses the same ([`crate::baremetal`]).
pub fn find_lld(tc: &Toolchain) -> Result<PathBuf> {
    let host = toolchain::host_triple()?;
    let mut rustcs: Vec<PathBuf> = tc
        .env
        .iter()
        .filter(|(k, _)| *k == "RUSTC")
        .map(|(_, v)| PathBuf::from(v))
        .collect();
    rustcs.push("rustc".into());
    for rustc in rustcs {
        let Some(sysroot) = cmd::probe(Command::new(&rustc).args(["--print", "sysroot"])) else {
            continue;
        };
        let lld = Path::new(sysroot.trim())
            .join("lib/rustlib")
            .join(&host)
            .join("bin/rust-lld");
        if lld.is_file() {
            return Ok(lld);
        }
    }
    for name in ["rust-lld", "ld.lld"] {
        if let Some(p) = cmd::find_in_path(name) {
            return Ok(p);
        }
    }
    Err(Error::Missing(
        "no LLVM linker for the size probe: install rustup's default toolchain \
         (it ships rust-lld) or apt-get install lld"
            .into(),
    ))
}

/// The sizes `cargo xtask nostd` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sizes {
    /// The `.text` section: machine code.
    pub text: u64,
    /// Read-only data (`.rodata*`).
    pub rodata: u64,
    /// Everything stored in flash: allocated sections with file content.
    pub flash: u64,
    /// Everything in RAM: writable allocated sections (`.data`, `.bss`).
    pub ram: u64,
}

impl Sizes {
    /// Sums sections into sizes.
    pub fn of(sections: &[Section]) -> Sizes {
        let mut s = Sizes::default();
        for sec in sections.iter().filter(|s| s.flags & SHF_ALLOC != 0) {
            if sec.name == ".text" {
                s.text += sec.size;
            }
            if sec.name.starts_with(".rodata") {
                s.rodata += sec.size;
            }
            if sec.kind != SHT_NOBITS {
                s.flash += sec.size;
            }
            if sec.flags & SHF_WRITE != 0 {
                s.ram += sec.size;
            }
        }
        s
    }

    fn fields(&self) -> [(&'static str, u64); 4] {
        [
            ("text", self.text),
            ("rodata", self.rodata),
            ("flash", self.flash),
            ("ram", self.ram),
        ]
    }

    /// `text=N rodata=N flash=N ram=N`.
    pub fn render(&self) -> String {
        let parts: Vec<String> = self
            .fields()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{}\n", parts.join(" "))
    }

    /// Reads what [`Sizes::render`] wrote.
    pub fn parse(s: &str) -> Option<Sizes> {
        let mut out = Sizes::default();
        for word in s.split_whitespace() {
            let (k, v) = word.split_once('=')?;
            let v = v.parse().ok()?;
            match k {
                "text" => out.text = v,
                "rodata" => out.rodata = v,
                "flash" => out.flash = v,
                "ram" => out.ram = v,
                _ => return None,
            }
        }
        Some(out)
    }

    /// The report, with differences to `previous` when there is one.
    pub fn report(&self, target: &str, previous: Option<&Sizes>) -> String {
        let mut out = format!("nostd: size probe on {target} (opt-level s, LTO), bytes:");
        let old = previous.map(Sizes::fields);
        for (i, (k, v)) in self.fields().iter().enumerate() {
            out.push_str(&format!("\n  {k:<7}{v:>9}"));
            if let Some((_, before)) = old.as_ref().and_then(|o| o.get(i)) {
                let delta = *v as i64 - *before as i64;
                out.push_str(&format!("   ({delta:+} since the last run)"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_sum_allocated_sections() {
        let sec = |name: &str, kind, flags, size| Section {
            name: name.into(),
            kind,
            flags,
            size,
        };
        let sizes = Sizes::of(&[
            sec(".text", 1, SHF_ALLOC | 4, 1234),
            sec(".rodata.x", 1, SHF_ALLOC, 100),
            sec(".bss", SHT_NOBITS, SHF_ALLOC | SHF_WRITE, 64),
            sec(".comment", 1, 0, 999),
        ]);
        assert_eq!(
            sizes,
            Sizes {
                text: 1234,
                rodata: 100,
                flash: 1334,
                ram: 64
            }
        );
    }

    #[test]
    fn sizes_round_trip_and_report_differences() {
        let now = Sizes {
            text: 2000,
            rodata: 100,
            flash: 2100,
            ram: 8,
        };
        assert_eq!(Sizes::parse(&now.render()), Some(now));
        let before = Sizes { text: 1900, ..now };
        let report = now.report("t", Some(&before));
        assert!(
            report.contains("text        2000   (+100 since the last run)"),
            "{report}"
        );
        assert!(
            report.contains("ram            8   (+0 since the last run)"),
            "{report}"
        );
        assert!(!now.report("t", None).contains("since"));
    }
}
