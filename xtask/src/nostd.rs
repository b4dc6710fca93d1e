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
//! [`sections`]. The numbers are kept in `target/nostd-size-<target>.txt`
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
            &sections(&data).map_err(|e| Error::Other(format!("{}: {e}", elf.display())))?,
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

/// One ELF section header, the parts size reporting needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Section name (`.text`, ...).
    pub name: String,
    /// `sh_type`.
    pub kind: u32,
    /// `sh_flags`.
    pub flags: u64,
    /// `sh_size` in bytes.
    pub size: u64,
}

/// `sh_type` of sections that occupy no file space (`.bss`).
const SHT_NOBITS: u32 = 8;
/// `sh_flags`: writable.
const SHF_WRITE: u64 = 1;
/// `sh_flags`: occupies memory at run time.
const SHF_ALLOC: u64 = 2;

/// Why an ELF file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// Not an ELF file, or not little-endian.
    NotElf,
    /// A header points outside the file.
    Truncated,
}

impl std::fmt::Display for ElfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ElfError::NotElf => "not a little-endian ELF file",
            ElfError::Truncated => "ELF headers point outside the file",
        })
    }
}

fn read_uint(data: &[u8], at: u64, len: usize) -> Result<u64, ElfError> {
    let start = usize::try_from(at).map_err(|_| ElfError::Truncated)?;
    let bytes = data
        .get(start..start.checked_add(len).ok_or(ElfError::Truncated)?)
        .ok_or(ElfError::Truncated)?;
    Ok(bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// The section headers of a little-endian ELF32 or ELF64 file.
pub fn sections(data: &[u8]) -> Result<Vec<Section>, ElfError> {
    if data.get(..4) != Some(b"\x7fELF".as_slice()) || data.get(5) != Some(&1) {
        return Err(ElfError::NotElf);
    }
    let wide = match data.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err(ElfError::NotElf),
    };
    // Offsets of e_shoff, e_shentsize, e_shnum, e_shstrndx, and the width
    // of addresses, for ELF32 and ELF64.
    let (shoff_at, shentsize_at, word) = if wide {
        (0x28, 0x3a, 8)
    } else {
        (0x20, 0x2e, 4)
    };
    let shoff = read_uint(data, shoff_at, word)?;
    let shentsize = read_uint(data, shentsize_at, 2)?;
    let shnum = read_uint(data, shentsize_at + 2, 2)?;
    let shstrndx = read_uint(data, shentsize_at + 4, 2)?;
    let header = |i: u64| -> Result<(u64, u32, u64, u64, u64), ElfError> {
        // Saturating: absurd offsets read past the end and fail there.
        let at = shoff.saturating_add(i.saturating_mul(shentsize));
        let field = |off: u64| at.saturating_add(off);
        let name = read_uint(data, at, 4)?;
        let kind = read_uint(data, field(4), 4)? as u32;
        let flags = read_uint(data, field(8), word)?;
        // sh_offset and sh_size follow sh_flags and sh_addr.
        let offset = read_uint(data, field(8 + 2 * word as u64), word)?;
        let size = read_uint(data, field(8 + 3 * word as u64), word)?;
        Ok((name, kind, flags, offset, size))
    };
    let (_, _, _, strtab, strsize) = header(shstrndx)?;
    let mut out = Vec::new();
    for i in 0..shnum {
        let (name_off, kind, flags, _, size) = header(i)?;
        if name_off >= strsize {
            return Err(ElfError::Truncated);
        }
        let start =
            usize::try_from(strtab.saturating_add(name_off)).map_err(|_| ElfError::Truncated)?;
        let rest = data.get(start..).ok_or(ElfError::Truncated)?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(ElfError::Truncated)?;
        let name = String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned();
        out.push(Section {
            name,
            kind,
            flags,
            size,
        });
    }
    Ok(out)
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

    /// A minimal ELF32 file: header, three sections (null, .text, .bss,
    /// .shstrtab).
    fn elf32() -> Vec<u8> {
        let strtab = b"\0.text\0.bss\0.shstrtab\0";
        let mut f = vec![0u8; 52];
        f[..6].copy_from_slice(b"\x7fELF\x01\x01");
        let shoff = 52 + strtab.len() as u32;
        f[0x20..0x24].copy_from_slice(&shoff.to_le_bytes());
        f[0x2e..0x30].copy_from_slice(&40u16.to_le_bytes());
        f[0x30..0x32].copy_from_slice(&4u16.to_le_bytes());
        f[0x32..0x34].copy_from_slice(&3u16.to_le_bytes());
        f.extend_from_slice(strtab);
        let sh = |name: u32, kind: u32, flags: u32, offset: u32, size: u32| {
            let mut h = [0u8; 40];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[8..12].copy_from_slice(&flags.to_le_bytes());
            h[16..20].copy_from_slice(&offset.to_le_bytes());
            h[20..24].copy_from_slice(&size.to_le_bytes());
            h
        };
        f.extend_from_slice(&sh(0, 0, 0, 0, 0));
        f.extend_from_slice(&sh(1, 1, 6, 0, 1234));
        f.extend_from_slice(&sh(7, SHT_NOBITS, 3, 0, 64));
        f.extend_from_slice(&sh(12, 3, 0, 52, strtab.len() as u32));
        f
    }

    #[test]
    fn reads_elf32_section_headers() {
        let s = sections(&elf32()).unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["", ".text", ".bss", ".shstrtab"]);
        assert_eq!(s[1].size, 1234);
        let sizes = Sizes::of(&s);
        assert_eq!(
            sizes,
            Sizes {
                text: 1234,
                rodata: 0,
                flash: 1234,
                ram: 64
            }
        );
    }

    #[test]
    fn reads_this_hosts_own_executable() {
        // ELF64 path, on a real file.
        let exe = fs::read(std::env::current_exe().unwrap()).unwrap();
        let s = sections(&exe).unwrap();
        let text = s.iter().find(|s| s.name == ".text").unwrap();
        assert!(text.size > 1000);
    }

    #[test]
    fn malformed_elf_is_an_error_not_a_panic() {
        assert_eq!(sections(b"nope"), Err(ElfError::NotElf));
        let mut f = elf32();
        f.truncate(60);
        assert_eq!(sections(&f), Err(ElfError::Truncated));
        let mut f = elf32();
        f[0x20..0x24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(sections(&f), Err(ElfError::Truncated));
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
