//! Reading ELF files: the header's identity (class, byte order, machine),
//! checked against a target triple before a binary is packaged or
//! flashed, and the section headers `nostd` measures.
//!
//! Hand-written on purpose: a few fixed offsets of the ELF header and the
//! section header table (System V ABI, "ELF Header" and "Sections") are all
//! xtask reads, less code than adapting a general ELF crate's API, and no
//! dependency for every `cargo clippy --workspace` to compile.

use std::fmt;

/// Why an ELF file could not be read, or is not for the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// Not an ELF file (no `\x7fELF` magic, or an unknown class or byte
    /// order).
    NotElf,
    /// A header points outside the file.
    Truncated,
    /// Section headers were asked of a big-endian file (xtask reads
    /// sections of little-endian files only).
    BigEndian,
    /// An ELF file that is neither an executable nor a shared object
    /// (`e_type` is not `ET_EXEC` or `ET_DYN`: an object file, a core dump).
    NotExecutable(u16),
    /// xtask does not know which ELF machine a target's binaries have.
    UnknownTarget(String),
    /// The binary is for another machine, class, byte order or float ABI.
    WrongTarget {
        /// The target it was checked against.
        target: String,
        /// What that target's binaries are.
        expected: Identity,
        /// What the file is.
        found: Identity,
    },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::NotElf => f.write_str("not an ELF file"),
            ElfError::Truncated => f.write_str("ELF headers point outside the file"),
            ElfError::BigEndian => f.write_str("a big-endian ELF file (sections not read)"),
            ElfError::NotExecutable(t) => write!(
                f,
                "an ELF file of type {t} (neither an executable nor a shared object)"
            ),
            ElfError::UnknownTarget(t) => write!(
                f,
                "xtask does not know the ELF machine of {t}'s binaries, so it cannot check them"
            ),
            ElfError::WrongTarget {
                target,
                expected,
                found,
            } => write!(
                f,
                "built for {found}, but the target {target} runs {expected}"
            ),
        }
    }
}

impl std::error::Error for ElfError {}

/// `e_ident[EI_CLASS]`: the width of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `ELFCLASS32`.
    Elf32,
    /// `ELFCLASS64`.
    Elf64,
}

/// `e_ident[EI_DATA]`: the byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// `ELFDATA2LSB`.
    Little,
    /// `ELFDATA2MSB`.
    Big,
}

/// The float calling convention of a 32-bit ARM binary (`e_flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatAbi {
    /// `EF_ARM_ABI_FLOAT_HARD`: floats in VFP registers (`*-gnueabihf`).
    Hard,
    /// `EF_ARM_ABI_FLOAT_SOFT`, or no flag: floats in integer registers
    /// (`*-gnueabi`).
    Soft,
}

/// What kind of processor and ABI an ELF file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// `e_machine`.
    pub machine: u16,
    /// Address width.
    pub class: Class,
    /// Byte order.
    pub endian: Endian,
    /// For ARM (32-bit) only: the float ABI; `None` elsewhere.
    pub float: Option<FloatAbi>,
}

/// `e_machine` values xtask knows.
pub mod machine {
    /// Intel 80386.
    pub const X86: u16 = 3;
    /// 32-bit ARM (and Thumb).
    pub const ARM: u16 = 40;
    /// AMD x86-64.
    pub const X86_64: u16 = 62;
    /// 64-bit ARM.
    pub const AARCH64: u16 = 183;
    /// RISC-V.
    pub const RISCV: u16 = 243;
}

const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;
#[cfg(test)]
const EF_ARM_ABI_FLOAT_SOFT: u32 = 0x200;

fn machine_name(m: u16) -> String {
    match m {
        machine::X86 => "x86".into(),
        machine::ARM => "ARM".into(),
        machine::X86_64 => "x86-64".into(),
        machine::AARCH64 => "AArch64".into(),
        machine::RISCV => "RISC-V".into(),
        other => format!("ELF machine {other}"),
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = match self.class {
            Class::Elf32 => "32-bit",
            Class::Elf64 => "64-bit",
        };
        let endian = match self.endian {
            Endian::Little => "little-endian",
            Endian::Big => "big-endian",
        };
        write!(f, "{} ({class}, {endian}", machine_name(self.machine))?;
        match self.float {
            Some(FloatAbi::Hard) => f.write_str(", hard-float")?,
            Some(FloatAbi::Soft) => f.write_str(", soft-float")?,
            None => {}
        }
        f.write_str(")")
    }
}

/// The parts of the ELF header xtask checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `e_type` (2 executable, 3 shared object or position-independent
    /// executable).
    pub kind: u16,
    /// Machine, class, byte order, float ABI.
    pub identity: Identity,
}

/// Reads `len` bytes at `at` as an unsigned integer in `endian` order.
fn read_uint(data: &[u8], at: u64, len: usize, endian: Endian) -> Result<u64, ElfError> {
    let start = usize::try_from(at).map_err(|_| ElfError::Truncated)?;
    let end = start.checked_add(len).ok_or(ElfError::Truncated)?;
    let bytes = data.get(start..end).ok_or(ElfError::Truncated)?;
    let fold = |acc: u64, &b: &u8| (acc << 8) | u64::from(b);
    Ok(match endian {
        Endian::Little => bytes.iter().rev().fold(0, fold),
        Endian::Big => bytes.iter().fold(0, fold),
    })
}

impl Header {
    /// Reads the ELF header at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Header, ElfError> {
        if data.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err(ElfError::NotElf);
        }
        let class = match data.get(4) {
            Some(1) => Class::Elf32,
            Some(2) => Class::Elf64,
            _ => return Err(ElfError::NotElf),
        };
        let endian = match data.get(5) {
            Some(1) => Endian::Little,
            Some(2) => Endian::Big,
            _ => return Err(ElfError::NotElf),
        };
        let kind = read_uint(data, 0x10, 2, endian)? as u16;
        let machine = read_uint(data, 0x12, 2, endian)? as u16;
        let flags_at = match class {
            Class::Elf32 => 0x24,
            Class::Elf64 => 0x30,
        };
        let flags = read_uint(data, flags_at, 4, endian)? as u32;
        let float = (machine == machine::ARM && class == Class::Elf32).then_some(
            if flags & EF_ARM_ABI_FLOAT_HARD != 0 {
                FloatAbi::Hard
            } else {
                FloatAbi::Soft
            },
        );
        Ok(Header {
            kind,
            identity: Identity {
                machine,
                class,
                endian,
                float,
            },
        })
    }
}

/// What the binaries of `target` are, from the triple's architecture (and,
/// for 32-bit ARM, its `hf` suffix); `None` for architectures xtask does
/// not know.
pub fn identity_of_target(target: &str) -> Option<Identity> {
    let arch = target.split('-').next().unwrap_or_default();
    let (machine, class, endian) = match arch {
        "x86_64" => (machine::X86_64, Class::Elf64, Endian::Little),
        "i386" | "i586" | "i686" => (machine::X86, Class::Elf32, Endian::Little),
        "aarch64" => (machine::AARCH64, Class::Elf64, Endian::Little),
        "aarch64_be" => (machine::AARCH64, Class::Elf64, Endian::Big),
        a if a.starts_with("riscv32") => (machine::RISCV, Class::Elf32, Endian::Little),
        a if a.starts_with("riscv64") => (machine::RISCV, Class::Elf64, Endian::Little),
        a if a.starts_with("arm") || a.starts_with("thumb") => {
            let endian = if a.starts_with("armeb") || a.starts_with("thumbeb") {
                Endian::Big
            } else {
                Endian::Little
            };
            (machine::ARM, Class::Elf32, endian)
        }
        _ => return None,
    };
    let float = (machine == machine::ARM).then(|| {
        if target.ends_with("hf") {
            FloatAbi::Hard
        } else {
            FloatAbi::Soft
        }
    });
    Some(Identity {
        machine,
        class,
        endian,
        float,
    })
}

/// Checks that `data` is an executable or shared object for `target`.
pub fn check_for_target(data: &[u8], target: &str) -> Result<(), ElfError> {
    let expected =
        identity_of_target(target).ok_or_else(|| ElfError::UnknownTarget(target.to_string()))?;
    let header = Header::parse(data)?;
    if header.kind != ET_EXEC && header.kind != ET_DYN {
        return Err(ElfError::NotExecutable(header.kind));
    }
    if header.identity != expected {
        return Err(ElfError::WrongTarget {
            target: target.to_string(),
            expected,
            found: header.identity,
        });
    }
    Ok(())
}

/// True when `data` starts with the ELF magic.
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
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
pub const SHT_NOBITS: u32 = 8;
/// `sh_flags`: writable.
pub const SHF_WRITE: u64 = 1;
/// `sh_flags`: occupies memory at run time.
pub const SHF_ALLOC: u64 = 2;

/// The section headers of a little-endian ELF32 or ELF64 file.
pub fn sections(data: &[u8]) -> Result<Vec<Section>, ElfError> {
    let header = Header::parse(data)?;
    let le = Endian::Little;
    if header.identity.endian != le {
        return Err(ElfError::BigEndian);
    }
    // Offsets of e_shoff and e_shentsize (e_shnum and e_shstrndx follow),
    // and the width of addresses, for ELF32 and ELF64.
    let (shoff_at, shentsize_at, word) = match header.identity.class {
        Class::Elf64 => (0x28, 0x3a, 8),
        Class::Elf32 => (0x20, 0x2e, 4),
    };
    let shoff = read_uint(data, shoff_at, word, le)?;
    let shentsize = read_uint(data, shentsize_at, 2, le)?;
    let shnum = read_uint(data, shentsize_at + 2, 2, le)?;
    let shstrndx = read_uint(data, shentsize_at + 4, 2, le)?;
    let header = |i: u64| -> Result<(u64, u32, u64, u64, u64), ElfError> {
        // Saturating: absurd offsets read past the end and fail there.
        let at = shoff.saturating_add(i.saturating_mul(shentsize));
        let field = |off: u64| at.saturating_add(off);
        let name = read_uint(data, at, 4, le)?;
        let kind = read_uint(data, field(4), 4, le)? as u32;
        let flags = read_uint(data, field(8), word, le)?;
        // sh_offset and sh_size follow sh_flags and sh_addr.
        let offset = read_uint(data, field(8 + 2 * word as u64), word, le)?;
        let size = read_uint(data, field(8 + 3 * word as u64), word, le)?;
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

/// Test helpers: minimal ELF files.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;

    /// A 64-byte ELF header (no sections) of type `ET_EXEC` for `id`,
    /// followed by `tail`.
    pub(crate) fn binary(id: Identity, tail: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = match id.class {
            Class::Elf32 => 1,
            Class::Elf64 => 2,
        };
        f[5] = match id.endian {
            Endian::Little => 1,
            Endian::Big => 2,
        };
        f[6] = 1;
        let put16 = |f: &mut Vec<u8>, at: usize, v: u16| {
            let b = match id.endian {
                Endian::Little => v.to_le_bytes(),
                Endian::Big => v.to_be_bytes(),
            };
            f[at..at + 2].copy_from_slice(&b);
        };
        put16(&mut f, 0x10, ET_EXEC);
        put16(&mut f, 0x12, id.machine);
        let flags: u32 = match id.float {
            Some(FloatAbi::Hard) => 0x0500_0000 | EF_ARM_ABI_FLOAT_HARD,
            Some(FloatAbi::Soft) => 0x0500_0000 | EF_ARM_ABI_FLOAT_SOFT,
            None => 0,
        };
        let at = if id.class == Class::Elf32 { 0x24 } else { 0x30 };
        let b = match id.endian {
            Endian::Little => flags.to_le_bytes(),
            Endian::Big => flags.to_be_bytes(),
        };
        f[at..at + 4].copy_from_slice(&b);
        f.extend_from_slice(tail);
        f
    }

    /// A fake executable for `target` (which xtask must know).
    pub(crate) fn binary_for(target: &str, tail: &[u8]) -> Vec<u8> {
        binary(identity_of_target(target).unwrap(), tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARMHF: &str = "armv7-unknown-linux-gnueabihf";

    /// A minimal ELF32 file: header, four sections (null, .text, .bss,
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
        assert_eq!(s[2].kind, SHT_NOBITS);
    }

    #[test]
    fn reads_this_hosts_own_executable() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let s = sections(&exe).unwrap();
        let text = s.iter().find(|s| s.name == ".text").unwrap();
        assert!(text.size > 1000);
        // The test binary is for the host, and is checked as such.
        let host = crate::toolchain::host_triple().unwrap();
        check_for_target(&exe, &host).unwrap();
        let err = check_for_target(&exe, ARMHF).unwrap_err();
        assert!(matches!(err, ElfError::WrongTarget { .. }), "{err}");
    }

    #[test]
    fn malformed_elf_is_an_error_not_a_panic() {
        assert_eq!(sections(b"nope"), Err(ElfError::NotElf));
        assert_eq!(Header::parse(b"\x7fELF\x03\x01"), Err(ElfError::NotElf));
        assert_eq!(Header::parse(b"\x7fELF\x01\x01"), Err(ElfError::Truncated));
        let mut f = elf32();
        f.truncate(60);
        assert_eq!(sections(&f), Err(ElfError::Truncated));
        let mut f = elf32();
        f[0x20..0x24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(sections(&f), Err(ElfError::Truncated));
    }

    #[test]
    fn targets_map_to_machine_class_byte_order_and_float_abi() {
        let armhf = identity_of_target(ARMHF).unwrap();
        assert_eq!(
            armhf,
            Identity {
                machine: machine::ARM,
                class: Class::Elf32,
                endian: Endian::Little,
                float: Some(FloatAbi::Hard)
            }
        );
        assert_eq!(
            identity_of_target("arm-unknown-linux-gnueabi")
                .unwrap()
                .float,
            Some(FloatAbi::Soft)
        );
        assert_eq!(
            identity_of_target("armebv7r-none-eabihf").unwrap().endian,
            Endian::Big
        );
        assert_eq!(
            identity_of_target("x86_64-unknown-linux-gnu")
                .unwrap()
                .machine,
            machine::X86_64
        );
        let rv = identity_of_target("riscv32imc-unknown-none-elf").unwrap();
        assert_eq!((rv.machine, rv.class), (machine::RISCV, Class::Elf32));
        assert_eq!(identity_of_target("mips-unknown-linux-gnu"), None);
    }

    #[test]
    fn binaries_for_another_machine_class_or_abi_are_refused() {
        let arm = fake::binary_for(ARMHF, b"");
        check_for_target(&arm, ARMHF).unwrap();
        check_for_target(&arm, "armv7-unknown-linux-musleabihf").unwrap();

        let x86 = fake::binary_for("x86_64-unknown-linux-gnu", b"");
        let err = check_for_target(&x86, ARMHF).unwrap_err();
        assert_eq!(
            err.to_string(),
            "built for x86-64 (64-bit, little-endian), but the target \
             armv7-unknown-linux-gnueabihf runs ARM (32-bit, little-endian, hard-float)"
        );
        let soft = fake::binary_for("armv7-unknown-linux-gnueabi", b"");
        assert!(matches!(
            check_for_target(&soft, ARMHF),
            Err(ElfError::WrongTarget { .. })
        ));
        let aarch64 = fake::binary_for("aarch64-unknown-linux-gnu", b"");
        assert!(check_for_target(&aarch64, ARMHF).is_err());
        let big = fake::binary_for("armebv7r-none-eabihf", b"");
        assert!(check_for_target(&big, ARMHF).is_err());

        let mut object = arm.clone();
        object[0x10] = 1; // ET_REL
        assert_eq!(
            check_for_target(&object, ARMHF),
            Err(ElfError::NotExecutable(1))
        );
        assert_eq!(
            check_for_target(b"#!/bin/sh\n", ARMHF),
            Err(ElfError::NotElf)
        );
        assert_eq!(
            check_for_target(&arm, "mips-unknown-linux-gnu"),
            Err(ElfError::UnknownTarget("mips-unknown-linux-gnu".into()))
        );
    }
}
