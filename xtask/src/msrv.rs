//! The minimum Rust version, and `cargo xtask toolchain`, which checks it.
//!
//! The workspace's minimum is `rust-version` under `[workspace.package]` in
//! the root `Cargo.toml` ([`minimum`]). It is kept true three ways:
//!
//! - [`crate::toolchain::detect`] refuses a compiler below it for the ARM
//!   and bare-metal builds, with the command that upgrades it (instead of
//!   cargo's "package X requires rustc 1.88" halfway through a build);
//! - `.cargo/config.toml` sets `resolver.incompatible-rust-versions =
//!   "fallback"`, so `cargo update` picks dependency versions that declare
//!   a `rust-version` no higher than the minimum;
//! - [`run`] (`cargo xtask toolchain`, the first step of `cargo xtask ci`)
//!   shows the toolchain every cross and bare-metal target gets, fails when
//!   one is below the minimum, and fails when a locked dependency, for the
//!   host or one of those targets, declares a higher `rust-version`
//!   ([`too_new`], read from `cargo metadata`).
//!
//! A dependency that declares no `rust-version` but needs a newer compiler
//! (heapless 0.9.1 did) passes these checks: only a build with the minimum
//! compiler finds it. DEVELOPERS.md says how to get one without touching
//! the system's.

use std::fmt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::cmd;
use crate::cross;
use crate::dist;
use crate::error::{Error, Result};
use crate::nostd;
use crate::toolchain;

/// A Rust release, `major.minor.patch` (pre-release tags ignored: a
/// `1.85.0-nightly` counts as 1.85.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RustVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version (0 when not given).
    pub patch: u32,
}

impl RustVersion {
    /// Parses `1.85`, `1.85.0` or `1.85.0-beta.1`.
    pub fn parse(text: &str) -> Option<RustVersion> {
        let core = text.trim().split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(RustVersion {
            major,
            minor,
            patch,
        })
    }

    /// The version in `rustc --version` output
    /// (`rustc 1.85.0 (4d91de4e4 2025-02-17) (built from a source tarball)`).
    pub fn of_rustc_output(text: &str) -> Option<RustVersion> {
        let mut words = text.split_whitespace();
        match words.next()? {
            "rustc" => RustVersion::parse(words.next()?),
            _ => None,
        }
    }
}

impl fmt::Display for RustVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The workspace's minimum Rust: `rust-version` of the root `Cargo.toml`.
pub fn minimum(root: &Path) -> Result<RustVersion> {
    let text = dist::workspace_field(root, "rust-version")?;
    RustVersion::parse(&text).ok_or_else(|| {
        Error::Other(format!(
            "rust-version = {text:?} in Cargo.toml is not a Rust version"
        ))
    })
}

/// The targets `cargo xtask ci` builds with a toolchain of their own.
pub fn checked_targets() -> Vec<&'static str> {
    let mut v = vec![cross::DEFAULT_TARGET];
    v.extend(nostd::TARGETS);
    v
}

/// A locked dependency that declares a higher `rust-version` than the
/// minimum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooNew {
    /// Package name.
    pub name: String,
    /// Its locked version.
    pub version: String,
    /// The `rust-version` it declares.
    pub needs: String,
}

/// The packages of `cargo metadata` output whose `rust_version` is above
/// `min`, sorted by name.
pub fn too_new(metadata: &str, min: RustVersion) -> Result<Vec<TooNew>> {
    let json: Value = serde_json::from_str(metadata)
        .map_err(|e| Error::Other(format!("cannot read `cargo metadata` output: {e}")))?;
    let packages = json
        .get("packages")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Other("`cargo metadata` output has no packages".into()))?;
    let mut out = Vec::new();
    for p in packages {
        let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default();
        let needs = field("rust_version");
        if RustVersion::parse(needs).is_some_and(|v| v > min) {
            out.push(TooNew {
                name: field("name").to_string(),
                version: field("version").to_string(),
                needs: needs.to_string(),
            });
        }
    }
    out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    Ok(out)
}

/// `cargo metadata` for the lock file as it is, restricted to the
/// dependencies of the host and of `targets`.
fn metadata(root: &Path, targets: &[&str]) -> Result<String> {
    let mut c = cmd::cargo();
    c.current_dir(root)
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", &toolchain::host_triple()?]);
    for t in targets {
        c.args(["--filter-platform", t]);
    }
    eprintln!("$ {}", cmd::display(&c));
    cmd::output(&mut c)
}

/// Runs `cargo xtask toolchain` (see the module docs).
pub fn run(root: &Path) -> Result<()> {
    let min = minimum(root)?;
    println!("toolchain: minimum Rust {min} (rust-version in Cargo.toml)");
    let host = cmd::output(Command::new("rustc").arg("--version"))?;
    println!("toolchain: host: {}", host.trim());
    let targets = checked_targets();
    for target in &targets {
        let tc = toolchain::detect(root, target)?;
        println!("toolchain: {target}: {}", tc.description);
    }
    let bad = too_new(&metadata(root, &targets)?, min)?;
    if bad.is_empty() {
        println!("toolchain: every locked dependency declares Rust {min} or older (or nothing)");
        return Ok(());
    }
    let list: Vec<String> = bad
        .iter()
        .map(|p| format!("{} {} (needs {})", p.name, p.version, p.needs))
        .collect();
    Err(Error::Other(format!(
        "Cargo.lock holds dependencies that need a newer Rust than the minimum {min}: {}. \
         Go back to versions for {min} with `cargo update -p NAME` (the resolver \
         prefers them, .cargo/config.toml), or raise rust-version in Cargo.toml, \
         .ci/run and the docs together",
        list.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> RustVersion {
        RustVersion::parse(s).unwrap()
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(v("1.85"), v("1.85.0"));
        assert!(v("1.85") < v("1.85.1"));
        assert!(v("1.85.1") < v("1.88"));
        assert!(v("1.9") < v("1.85"));
        assert_eq!(v("1.96.0-beta.3"), v("1.96.0"));
        assert_eq!(v("1.85").to_string(), "1.85.0");
        for bad in ["", "1", "x.85", "1.85.0.1", "1.-1"] {
            assert_eq!(RustVersion::parse(bad), None, "{bad}");
        }
        assert_eq!(
            RustVersion::of_rustc_output(
                "rustc 1.85.0 (4d91de4e4 2025-02-17) (built from a source tarball)\n"
            ),
            Some(v("1.85"))
        );
        assert_eq!(
            RustVersion::of_rustc_output("rustc 1.96.0-nightly (abc 2026-01-01)"),
            Some(v("1.96"))
        );
        assert_eq!(RustVersion::of_rustc_output("cargo 1.85.0"), None);
    }

    #[test]
    fn the_workspace_minimum_is_read_from_cargo_toml() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert!(minimum(root).unwrap() >= v("1.85"));
    }

    #[test]
    fn dependencies_above_the_minimum_are_named() {
        let metadata = r#"{"packages":[
            {"name":"postcard","version":"1.2.0","rust_version":"1.88"},
            {"name":"heapless","version":"0.9.4","rust_version":"1.88"},
            {"name":"heapless","version":"0.8.0","rust_version":null},
            {"name":"serde","version":"1.0.0","rust_version":"1.61"},
            {"name":"nfy-core","version":"0.1.0","rust_version":"1.85"}
        ],"resolve":null}"#;
        let bad = too_new(metadata, v("1.85")).unwrap();
        let names: Vec<String> = bad
            .iter()
            .map(|p| format!("{} {} {}", p.name, p.version, p.needs))
            .collect();
        assert_eq!(names, ["heapless 0.9.4 1.88", "postcard 1.2.0 1.88"]);
        assert!(too_new(metadata, v("1.88")).unwrap().is_empty());
        assert!(too_new("not json", v("1.85")).is_err());
    }

    #[test]
    fn ci_checks_the_arm_and_bare_metal_targets() {
        let t = checked_targets();
        assert!(t.contains(&"armv7-unknown-linux-gnueabihf"));
        assert!(t.contains(&"thumbv7em-none-eabihf"));
    }
}
