//! Finding a toolchain for a target: the Rust standard library, the C cross
//! linker, and qemu to run the target's programs.
//!
//! The Rust side, in order of preference:
//!
//! 1. the target installed with rustup (`rustup target list --installed`):
//!    plain `cargo --target T`;
//! 2. a toolchain that ships the standard library's sources: the standard
//!    library is compiled for the target with `-Zbuild-std` (allowed on a
//!    stable compiler by `RUSTC_BOOTSTRAP=1`). Checked are the toolchain
//!    running xtask (with rustup's `rust-src` component) and Debian's
//!    `/usr/bin/rustc` (packages `rustc-web cargo-web rust-web-src`). That
//!    toolchain's own `cargo`, `rustc` and `rustdoc` are used together, and
//!    its artifacts go to `target/build-std/` so they never mix with
//!    rustup's;
//! 3. otherwise an [`Error::Missing`] naming both ways to get one.
//!
//! A compiler older than the workspace's minimum ([`crate::msrv::minimum`])
//! is passed over, and when no candidate is new enough the error names the
//! old one and the command that upgrades it: Debian's `apt-get install`
//! upgrades an installed package to the newest its archives have.
//!
//! Bare-metal targets (`*-none-*`) get `-Zbuild-std=core`, Linux targets
//! `-Zbuild-std` (std, and `test` when testing).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd;
use crate::error::{Error, Result};
use crate::msrv::{self, RustVersion};

/// The Debian packages that provide a toolchain with the standard library's
/// sources, as `apt-get install` takes them.
pub const DEBIAN_RUST_PACKAGES: &str = "rustc-web cargo-web rust-web-src";

/// How cargo is run for one target.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// The target triple.
    pub target: String,
    /// The cargo program.
    pub cargo: PathBuf,
    /// Environment variables cargo needs (`RUSTC`, `RUSTDOC`,
    /// `RUSTC_BOOTSTRAP`), empty for a rustup target.
    pub env: Vec<(&'static str, OsString)>,
    /// `-Zbuild-std...` when the standard library is built from source.
    pub build_std: Option<&'static str>,
    /// The target directory (`--target-dir`).
    pub target_dir: PathBuf,
    /// One line for the user: which toolchain this is.
    pub description: String,
}

impl Toolchain {
    /// `cargo <subcommand> --target T [-Zbuild-std] --target-dir D`, run in
    /// the workspace root with this toolchain's environment.
    pub fn cargo(&self, root: &Path, subcommand: &str) -> Command {
        let mut c = Command::new(&self.cargo);
        c.current_dir(root);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.arg(subcommand).arg("--target").arg(&self.target);
        if let Some(flag) = self.build_std {
            c.arg(flag);
        }
        c.arg("--target-dir").arg(&self.target_dir);
        c
    }

    /// Where cargo puts this target's artifacts for `profile`
    /// (`debug` or `release`).
    pub fn artifact_dir(&self, profile: &str) -> PathBuf {
        self.target_dir.join(&self.target).join(profile)
    }
}

/// True for bare-metal targets, which have `core` but no `std`.
pub fn is_bare_metal(target: &str) -> bool {
    target.contains("-none")
}

/// The workspace's target directory: `$CARGO_TARGET_DIR` or `target/`.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// The host's target triple, from `rustc -vV`.
pub fn host_triple() -> Result<String> {
    let out = cmd::output(Command::new("rustc").arg("-vV"))?;
    out.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|s| s.trim().to_string())
        .ok_or_else(|| Error::Other("`rustc -vV` printed no host line".into()))
}

/// Finds the toolchain for `target` (see the module docs).
pub fn detect(root: &Path, target: &str) -> Result<Toolchain> {
    let min = msrv::minimum(root)?;
    let default_dir = target_dir(root);
    if rustup_has_target(target) {
        let version = cmd::output(Command::new("rustc").arg("--version"))?;
        check_version(&version, min, "rustup's active toolchain", "rustup update")?;
        return Ok(Toolchain {
            target: target.to_string(),
            cargo: "cargo".into(),
            env: Vec::new(),
            build_std: None,
            target_dir: default_dir,
            description: format!("rustup target {target}"),
        });
    }
    let build_std = if is_bare_metal(target) {
        "-Zbuild-std=core"
    } else {
        "-Zbuild-std"
    };
    let mut too_old = None;
    for sysroot in sysroot_candidates() {
        let Some(found) = with_std_sources(&sysroot) else {
            continue;
        };
        let (what, upgrade) = if sysroot == Path::new("/usr") {
            (
                format!("Debian's {}", found.rustc.display()),
                format!("apt-get update && apt-get install {DEBIAN_RUST_PACKAGES}"),
            )
        } else {
            (
                found.rustc.display().to_string(),
                "rustup update".to_string(),
            )
        };
        if let Err(e) = check_version(&found.version, min, &what, &upgrade) {
            too_old.get_or_insert(e);
            continue;
        }
        return Ok(Toolchain {
            target: target.to_string(),
            cargo: found.cargo,
            env: vec![
                ("RUSTC", found.rustc.into_os_string()),
                ("RUSTDOC", found.rustdoc.into_os_string()),
                ("RUSTC_BOOTSTRAP", "1".into()),
            ],
            build_std: Some(build_std),
            target_dir: default_dir.join("build-std"),
            description: format!(
                "{} with {build_std} (standard library sources in {})",
                found.version,
                found.src.display()
            ),
        });
    }
    if let Some(e) = too_old {
        return Err(e);
    }
    Err(Error::Missing(format!(
        "no Rust standard library for {target}. Install one of:\n  \
         rustup target add {target}        (needs the Rust distribution servers)\n  \
         apt-get install {DEBIAN_RUST_PACKAGES}   (Debian's toolchain with the standard \
         library sources; xtask then builds it with {build_std})"
    )))
}

/// Fails with an [`Error::Missing`] naming `what` and `upgrade` when the
/// `rustc --version` line `version` is below `min`.
fn check_version(version: &str, min: RustVersion, what: &str, upgrade: &str) -> Result<()> {
    match RustVersion::of_rustc_output(version) {
        Some(v) if v >= min => Ok(()),
        found => Err(Error::Missing(format!(
            "{what} is {}, older than nfy's minimum Rust {min} (rust-version in \
             Cargo.toml); dependencies would fail to build with it. Upgrade: {upgrade}",
            found.map_or_else(|| format!("{:?}", version.trim()), |v| format!("rustc {v}"))
        ))),
    }
}

/// True when rustup reports `target` as installed for the active toolchain.
fn rustup_has_target(target: &str) -> bool {
    cmd::probe(Command::new("rustup").args(["target", "list", "--installed"]))
        .is_some_and(|out| out.lines().any(|l| l.trim() == target))
}

/// Sysroots to look in for standard library sources: the active toolchain's,
/// then Debian's `/usr`.
fn sysroot_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(s) = cmd::probe(Command::new("rustc").args(["--print", "sysroot"])) {
        out.push(PathBuf::from(s.trim()));
    }
    out.push(PathBuf::from("/usr"));
    out
}

/// A toolchain found in a sysroot that has the library sources.
struct StdSources {
    cargo: PathBuf,
    rustc: PathBuf,
    rustdoc: PathBuf,
    src: PathBuf,
    version: String,
}

fn with_std_sources(sysroot: &Path) -> Option<StdSources> {
    let src = sysroot.join("lib/rustlib/src/rust/library");
    if !src.join("core/Cargo.toml").is_file() {
        return None;
    }
    let bin = sysroot.join("bin");
    let (cargo, rustc, rustdoc) = (bin.join("cargo"), bin.join("rustc"), bin.join("rustdoc"));
    if !(cargo.is_file() && rustc.is_file() && rustdoc.is_file()) {
        return None;
    }
    let version = cmd::probe(Command::new(&rustc).arg("--version"))?
        .trim()
        .to_string();
    Some(StdSources {
        cargo,
        rustc,
        rustdoc,
        src,
        version,
    })
}

/// The C side of a Linux cross target: linker, emulator, target libraries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossTools {
    /// The C compiler cargo links with.
    pub linker: &'static str,
    /// The qemu user-mode emulator.
    pub qemu: &'static str,
    /// The target's root for its dynamic loader and libc (`QEMU_LD_PREFIX`).
    pub ld_prefix: &'static str,
    /// The binfmt_misc registration file of `qemu-user-binfmt`.
    pub binfmt_conf: &'static str,
    /// Debian packages providing linker and libraries.
    pub linker_packages: &'static str,
}

/// The C cross tools for a Linux target, `None` for targets xtask does not
/// know (then `CARGO_TARGET_<T>_LINKER` must be set by the user).
pub fn cross_tools(target: &str) -> Option<CrossTools> {
    match target {
        "armv7-unknown-linux-gnueabihf" | "arm-unknown-linux-gnueabihf" => Some(CrossTools {
            linker: "arm-linux-gnueabihf-gcc",
            qemu: "qemu-arm",
            ld_prefix: "/usr/arm-linux-gnueabihf",
            binfmt_conf: "/usr/lib/binfmt.d/qemu-arm.conf",
            linker_packages: "gcc-arm-linux-gnueabihf libc6-dev-armhf-cross",
        }),
        "aarch64-unknown-linux-gnu" => Some(CrossTools {
            linker: "aarch64-linux-gnu-gcc",
            qemu: "qemu-aarch64",
            ld_prefix: "/usr/aarch64-linux-gnu",
            binfmt_conf: "/usr/lib/binfmt.d/qemu-aarch64.conf",
            linker_packages: "gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
        }),
        _ => None,
    }
}

/// Cargo's per-target variable name: `CARGO_TARGET_<TRIPLE>_<what>`.
pub fn target_env(target: &str, what: &str) -> String {
    format!(
        "CARGO_TARGET_{}_{what}",
        target.to_ascii_uppercase().replace(['-', '.'], "_")
    )
}

/// Environment for linking (and with `run`, running) programs for a Linux
/// cross target; checks that every tool is there. Empty for the host.
pub fn cross_env(target: &str, host: &str, run: bool) -> Result<Vec<(String, OsString)>> {
    let mut env = Vec::new();
    if target == host {
        return Ok(env);
    }
    let linker_var = target_env(target, "LINKER");
    let Some(tools) = cross_tools(target) else {
        if std::env::var_os(&linker_var).is_none() {
            return Err(Error::Missing(format!(
                "xtask does not know the C cross linker for {target}: set {linker_var}"
            )));
        }
        return Ok(env);
    };
    if std::env::var_os(&linker_var).is_none() {
        if cmd::find_in_path(tools.linker).is_none() {
            return Err(Error::Missing(format!(
                "C cross linker {} not found: apt-get install {}",
                tools.linker, tools.linker_packages
            )));
        }
        env.push((linker_var, tools.linker.into()));
    }
    if !Path::new(tools.ld_prefix).join("lib").is_dir() {
        return Err(Error::Missing(format!(
            "target C libraries not found in {}: apt-get install {}",
            tools.ld_prefix, tools.linker_packages
        )));
    }
    if run {
        if cmd::find_in_path(tools.qemu).is_none() {
            return Err(Error::Missing(format!(
                "{} not found: apt-get install qemu-user qemu-user-binfmt",
                tools.qemu
            )));
        }
        let runner_var = target_env(target, "RUNNER");
        if std::env::var_os(&runner_var).is_none() {
            env.push((runner_var, tools.qemu.into()));
        }
        if std::env::var_os("QEMU_LD_PREFIX").is_none() {
            env.push(("QEMU_LD_PREFIX".to_string(), tools.ld_prefix.into()));
        }
    }
    Ok(env)
}

/// Where binfmt_misc lives.
const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// Makes the kernel run the target's executables through qemu (binfmt_misc),
/// so tests that start target processes work: mounts binfmt_misc when it is
/// not mounted and registers qemu from `qemu-user-binfmt`'s file. Needs root;
/// on failure prints a warning and returns `false` (tests that do not start
/// processes still run, through cargo's runner).
pub fn ensure_binfmt(target: &str) -> bool {
    let Some(tools) = cross_tools(target) else {
        return false;
    };
    let dir = Path::new(BINFMT_DIR);
    if dir.join(tools.qemu).exists() {
        return true;
    }
    let warn = |why: &str| {
        eprintln!(
            "warning: cannot register {} with binfmt_misc ({why}); tests that start {target} \
             processes will fail. As root: mount -t binfmt_misc binfmt_misc {BINFMT_DIR} && \
             cat {} > {BINFMT_DIR}/register",
            tools.qemu, tools.binfmt_conf
        );
        false
    };
    let register = dir.join("register");
    if !register.exists() {
        let mut mount = Command::new("mount");
        mount.args(["-t", "binfmt_misc", "binfmt_misc", BINFMT_DIR]);
        if let Err(e) = cmd::run(&mut mount) {
            return warn(&e.to_string());
        }
    }
    let conf = match std::fs::read(tools.binfmt_conf) {
        Ok(c) => c,
        Err(e) => {
            return warn(&format!(
                "{}: {e}; apt-get install qemu-user-binfmt",
                tools.binfmt_conf
            ))
        }
    };
    eprintln!("$ cat {} > {}", tools.binfmt_conf, register.display());
    match std::fs::write(&register, conf) {
        Ok(()) => true,
        Err(e) => warn(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_variables_follow_cargo_naming() {
        assert_eq!(
            target_env("armv7-unknown-linux-gnueabihf", "LINKER"),
            "CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER"
        );
    }

    #[test]
    fn bare_metal_targets_are_recognised() {
        assert!(is_bare_metal("thumbv7em-none-eabihf"));
        assert!(is_bare_metal("riscv32imc-unknown-none-elf"));
        assert!(!is_bare_metal("armv7-unknown-linux-gnueabihf"));
    }

    #[test]
    fn host_builds_need_no_cross_tools() {
        let env = cross_env("x86_64-unknown-linux-gnu", "x86_64-unknown-linux-gnu", true).unwrap();
        assert!(env.is_empty());
    }

    #[test]
    fn compilers_below_the_minimum_are_refused_with_the_upgrade_command() {
        let min = RustVersion::parse("1.85").unwrap();
        let ok = "rustc 1.85.0 (4d91de4e4 2025-02-17) (built from a source tarball)";
        check_version(ok, min, "x", "y").unwrap();
        let err = check_version(
            "rustc 1.78.0 (9b00956e5 2024-04-29) (built from a source tarball)",
            min,
            "Debian's /usr/bin/rustc",
            "apt-get update && apt-get install rustc-web cargo-web rust-web-src",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Debian's /usr/bin/rustc is rustc 1.78.0, older than nfy's minimum Rust 1.85.0 \
             (rust-version in Cargo.toml); dependencies would fail to build with it. \
             Upgrade: apt-get update && apt-get install rustc-web cargo-web rust-web-src"
        );
        assert!(check_version("garbage", min, "x", "y").is_err());
    }

    #[test]
    fn build_std_toolchain_builds_into_its_own_directory() {
        let tc = Toolchain {
            target: "thumbv7em-none-eabihf".into(),
            cargo: "/usr/bin/cargo".into(),
            env: vec![("RUSTC_BOOTSTRAP", "1".into())],
            build_std: Some("-Zbuild-std=core"),
            target_dir: "/w/target/build-std".into(),
            description: String::new(),
        };
        let c = tc.cargo(Path::new("/w"), "build");
        assert_eq!(
            cmd::display(&c),
            "RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --target thumbv7em-none-eabihf \
             -Zbuild-std=core --target-dir /w/target/build-std"
        );
        assert_eq!(
            tc.artifact_dir("release"),
            Path::new("/w/target/build-std/thumbv7em-none-eabihf/release")
        );
    }
}
