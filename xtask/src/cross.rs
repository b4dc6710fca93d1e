//! `cargo xtask cross`: builds the service binaries for an ARM terminal and,
//! with `--test`, runs the workspace tests for that target under qemu.
//!
//! The binaries are `notifysvc` and `nfy` (crate `nfy-linux`),
//! `notifysvc-verix` (crate `nfy-verix-sim`) and `nfy-bridge` (crate
//! `nfy-bridge`, for terminals of a fleet). The build asks cargo for the
//! libraries and binaries of those crates and then reports which of the
//! binaries it found;
//! a missing one is a warning here (the crate may not define it yet) and an
//! error only in `dist` when none was built. Then it builds libvfiipc
//! (`libvfiipc.so`, `libvfiipc.a`: [`crate::capi`]) the same way.
//!
//! Under `--test`, cargo runs each test program through `qemu-arm`
//! (`CARGO_TARGET_<T>_RUNNER`), and binfmt_misc is set up so that tests
//! which start ARM processes themselves work too. `NFY_BIN_DIR` is set to
//! the directory holding the target's binaries, for tests that start them.
//! xtask itself is left out: it is a host tool.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::cmd;
use crate::error::Result;
use crate::toolchain::{self, Toolchain};

/// The terminal target when none is given.
pub const DEFAULT_TARGET: &str = "armv7-unknown-linux-gnueabihf";
/// The binaries a terminal runs.
pub const BINARIES: [&str; 4] = ["notifysvc", "notifysvc-verix", "nfy", "nfy-bridge"];
/// The crates that define them.
pub const BIN_PACKAGES: [&str; 3] = ["nfy-linux", "nfy-verix-sim", "nfy-bridge"];

/// What a build produced.
#[derive(Debug, Clone)]
pub struct Built {
    /// The directory cargo put the binaries in.
    pub dir: PathBuf,
    /// The binaries of [`BINARIES`] found there, by name.
    pub found: Vec<(String, PathBuf)>,
}

/// How a build is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `cargo build` (debug).
    Debug,
    /// `cargo build --release`.
    Release,
    /// `--release` for a package: debug info stripped, and (unless the
    /// user set `RUSTFLAGS`) build paths remapped, so binaries built from
    /// the same commit in different checkouts are identical.
    Dist,
}

/// Builds the binaries for `target`.
pub fn build(root: &Path, target: &str, profile: Profile) -> Result<Built> {
    let tc = toolchain::detect(root, target)?;
    let host = toolchain::host_triple()?;
    build_with(root, &tc, &host, profile)
}

/// Builds the binaries with a toolchain already found.
fn build_with(root: &Path, tc: &Toolchain, host: &str, profile: Profile) -> Result<Built> {
    let target = tc.target.as_str();
    let env = toolchain::cross_env(target, host, false)?;
    eprintln!("cross: building for {target} with {}", tc.description);
    let mut c = tc.cargo(root, "build");
    // Default targets (library and binaries), so the platform crates are
    // checked for the target even before they define their binaries.
    c.envs(env.iter().map(|(k, v)| (k, v)));
    for p in BIN_PACKAGES {
        c.args(["-p", p]);
    }
    if profile != Profile::Debug {
        c.arg("--release");
    }
    if profile == Profile::Dist {
        dist_env(&mut c, root);
    }
    let start = Instant::now();
    cmd::run(&mut c)?;
    crate::capi::build(root, tc, &env, profile)?;
    let dir = tc.artifact_dir(if profile == Profile::Debug {
        "debug"
    } else {
        "release"
    });
    crate::capi::find_libraries(&dir);
    let found = find_binaries(&dir);
    eprintln!(
        "cross: build for {target} took {:.0?}; {} of {} binaries",
        start.elapsed(),
        found.len(),
        BINARIES.len()
    );
    Ok(Built { dir, found })
}

/// Settings for package builds (see [`Profile::Dist`]).
pub(crate) fn dist_env(c: &mut Command, root: &Path) {
    c.env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    if std::env::var_os("RUSTFLAGS").is_some()
        || std::env::var_os("CARGO_ENCODED_RUSTFLAGS").is_some()
    {
        eprintln!("cross: RUSTFLAGS is set, so build paths are not remapped");
        return;
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let mut flags = OsString::from("--remap-path-prefix=");
    flags.push(root);
    flags.push("=/nfy");
    if let Some(home) = cargo_home {
        flags.push("\x1f--remap-path-prefix=");
        flags.push(home);
        flags.push("=/cargo");
    }
    c.env("CARGO_ENCODED_RUSTFLAGS", flags);
}

/// The binaries of [`BINARIES`] in `dir`; warns about each missing one.
pub fn find_binaries(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for name in BINARIES {
        let p = dir.join(name);
        match p.metadata() {
            Ok(m) if m.is_file() => {
                eprintln!("cross: {} ({} bytes)", p.display(), m.len());
                found.push((name.to_string(), p));
            }
            _ => eprintln!(
                "warning: {name} is missing from {} (does its crate define it yet?)",
                dir.display()
            ),
        }
    }
    found
}

/// Builds the binaries, then runs the workspace tests (all crates but
/// xtask) for `target` under qemu; `extra` goes to `cargo test`.
pub fn test(root: &Path, target: &str, extra: &[String]) -> Result<()> {
    let tc = toolchain::detect(root, target)?;
    let host = toolchain::host_triple()?;
    let built = build_with(root, &tc, &host, Profile::Debug)?;
    let env = toolchain::cross_env(target, &host, true)?;
    if target != host {
        toolchain::ensure_binfmt(target);
    }
    let mut c = tc.cargo(root, "test");
    c.envs(env)
        .env("NFY_BIN_DIR", &built.dir)
        .args(["--workspace", "--exclude", "xtask"])
        .args(extra);
    let start = Instant::now();
    cmd::run(&mut c)?;
    eprintln!(
        "cross: tests for {target} passed in {:.0?}",
        start.elapsed()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn finds_present_binaries_only() {
        let tmp = TempDir::new();
        std::fs::write(tmp.path().join("nfy"), b"x").unwrap();
        std::fs::create_dir(tmp.path().join("notifysvc")).unwrap();
        let found = find_binaries(tmp.path());
        assert_eq!(found, [("nfy".to_string(), tmp.path().join("nfy"))]);
    }

    #[test]
    fn dist_builds_remap_paths_and_strip() {
        let mut c = Command::new("cargo");
        dist_env(&mut c, Path::new("/src/nfy"));
        let envs: Vec<(String, String)> = c
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.unwrap_or_default().to_string_lossy().into_owned(),
                )
            })
            .collect();
        assert!(envs.contains(&("CARGO_PROFILE_RELEASE_STRIP".into(), "debuginfo".into())));
        if std::env::var_os("RUSTFLAGS").is_none()
            && std::env::var_os("CARGO_ENCODED_RUSTFLAGS").is_none()
        {
            let flags = &envs
                .iter()
                .find(|(k, _)| k == "CARGO_ENCODED_RUSTFLAGS")
                .unwrap()
                .1;
            assert!(
                flags.starts_with("--remap-path-prefix=/src/nfy=/nfy"),
                "{flags}"
            );
        }
    }
}
