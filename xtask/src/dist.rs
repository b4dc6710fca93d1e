//! `cargo xtask dist`: terminal download packages.
//!
//! Three packages per build, in `target/dist/` (format in [`crate::package`]):
//!
//! | file | holds |
//! |---|---|
//! | `dl.notifysvc-<version>-<build>.tgz` | the install package |
//! | `dl.notifysvc-<version>-<build>-rm.tgz` | the matching removal package |
//! | `dl.libvfiipc-<version>-<build>.tgz` | the C/C++ client library's SDK archive ([`crate::capi`]) |
//!
//! The install package holds, under `opt/nfy/`: `bin/notifysvc`,
//! `bin/notifysvc-verix`, `bin/nfy` and `bin/nfy-bridge` (those that were
//! built, [`BINARIES`]),
//! `bin/start-notifysvc` (start/stop script), `lib/libvfiipc.so` (the
//! runtime library of C and C++ apps, [`capi::RUNTIME_PATH`], when it was
//! built), `etc/notify.cfg.sample` (a commented sample whitelist that opens
//! nothing), `VERSION`, and `MANIFEST`; and, where systemd and logrotate
//! look for them, [`UNIT_PATH`] (the systemd unit) and [`LOGROTATE_PATH`]
//! (rotation of the start script's log). Every binary and the library are
//! checked to be ELF executables or shared objects for the target
//! ([`crate::elf`]) before anything is written.
//!
//! **Decisions**:
//! - `<version>` is `[workspace.package] version` of the root `Cargo.toml`.
//! - `<build>` is the first 10 hex digits of the commit (`git rev-parse
//!   HEAD`), so it is the same for every build of a commit; `.dirty` is
//!   appended when tracked files differ from the commit. `--build ID`
//!   overrides it (letters, digits and `.` only, so names split
//!   unambiguously at `-`).
//! - Every archive entry is dated `SOURCE_DATE_EPOCH` when that is set,
//!   else 0 (1970-01-01): timestamps are fixed, never the build time.
//! - The removal package removes every binary nfy may have installed (all
//!   of [`BINARIES`]) and the runtime library, whether or not this build has
//!   them, and what older packages installed ([`LEGACY_PATHS`]).
//! - The runtime library travels with the server (lead's decision, issue
//!   13): `flash` installs one package per terminal, whose `VERSION` and
//!   `MANIFEST` the server package owns, and apps linked against
//!   libvfiipc (RUNPATH `/opt/nfy/lib`) need the library wherever the
//!   server is. The SDK archive keeps its own copy for linking.
//! - The sample configuration is not installed where the server reads it
//!   (`/home/sys12/notify.cfg`, `/home/sys_ipc/notify.cfg`): that file is
//!   the terminal's own whitelist, which an update must not overwrite nor a
//!   removal delete; the sample says so in its first lines.
//! - The unit goes to `usr/lib/systemd/system/` (the packages' place;
//!   `/etc/systemd/system` is the administrator's), not enabled: enabling
//!   needs a symbolic link, which packages may not hold.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::capi;
use crate::cmd;
use crate::cross::{self, Profile, BINARIES};
use crate::elf;
use crate::error::{Error, Result};
use crate::package::{
    self, hex, render_remove, render_version, sha256, FileEntry, Manifest, MANIFEST_PATH, PREFIX,
    REMOVE_PATH, VERSION_PATH,
};
use crate::toolchain;

/// The sample configuration shipped in the install package.
pub const SAMPLE_CONFIG: &str = include_str!("../data/notify.cfg.sample");
/// The start script shipped in the install package.
pub const START_SCRIPT: &str = include_str!("../data/start-notifysvc");
/// The systemd unit shipped in the install package.
pub const SYSTEMD_UNIT: &str = include_str!("../data/notifysvc.service");
/// The logrotate configuration shipped in the install package.
pub const LOGROTATE_CONF: &str = include_str!("../data/notifysvc.logrotate");

/// Where the systemd unit is installed.
pub const UNIT_PATH: &str = "usr/lib/systemd/system/notifysvc.service";
/// Where the logrotate configuration is installed.
pub const LOGROTATE_PATH: &str = "etc/logrotate.d/notifysvc";
/// Paths older packages installed that this one does not: removal packages
/// remove them too.
pub const LEGACY_PATHS: [&str; 1] = ["opt/nfy/etc/notify.cfg"];

/// Everything a pair of packages is made from.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Workspace version.
    pub version: String,
    /// Build identifier.
    pub build: String,
    /// Target triple the binaries are for (recorded in `VERSION`).
    pub target: String,
    /// Timestamp of every archive entry.
    pub mtime: u64,
    /// Binaries by name, read from these files.
    pub binaries: Vec<(String, PathBuf)>,
    /// Shared libraries for `opt/nfy/lib/` by name (the runtime
    /// [`capi::RUNTIME`]), read from these files.
    pub libraries: Vec<(String, PathBuf)>,
}

/// The two package files written.
#[derive(Debug, Clone)]
pub struct Packages {
    /// The install package.
    pub install: PathBuf,
    /// The removal package.
    pub removal: PathBuf,
}

/// `dl.notifysvc-<version>-<build>.tgz` and `...-rm.tgz`.
pub fn package_names(version: &str, build: &str) -> (String, String) {
    (
        format!("dl.notifysvc-{version}-{build}.tgz"),
        format!("dl.notifysvc-{version}-{build}-rm.tgz"),
    )
}

/// The install package's files, manifest included, sorted by path.
pub fn install_files(spec: &Spec) -> Result<Vec<FileEntry>> {
    let mut files = Vec::new();
    let programs = spec.binaries.iter().map(|b| ("bin", b));
    let libraries = spec.libraries.iter().map(|l| ("lib", l));
    for (dir, (name, path)) in programs.chain(libraries) {
        let data = fs::read(path).map_err(|e| Error::io("read", path, e))?;
        elf::check_for_target(&data, &spec.target).map_err(|error| Error::Binary {
            path: path.clone(),
            error,
        })?;
        files.push(FileEntry {
            path: format!("{PREFIX}/{dir}/{name}"),
            mode: 0o755,
            data,
        });
    }
    files.push(FileEntry {
        path: format!("{PREFIX}/bin/start-notifysvc"),
        mode: 0o755,
        data: START_SCRIPT.as_bytes().to_vec(),
    });
    for (path, text) in [
        (format!("{PREFIX}/etc/notify.cfg.sample"), SAMPLE_CONFIG),
        (UNIT_PATH.to_string(), SYSTEMD_UNIT),
        (LOGROTATE_PATH.to_string(), LOGROTATE_CONF),
    ] {
        files.push(FileEntry {
            path,
            mode: 0o644,
            data: text.as_bytes().to_vec(),
        });
    }
    files.push(FileEntry {
        path: VERSION_PATH.to_string(),
        mode: 0o644,
        data: render_version(&spec.version, &spec.build, &spec.target).into_bytes(),
    });
    let (name, _) = package_names(&spec.version, &spec.build);
    with_manifest(files, &format!("{name} for {}", spec.target))
}

/// The removal package's files for an install package's files.
pub fn removal_files(spec: &Spec, install: &[FileEntry]) -> Result<Vec<FileEntry>> {
    let mut remove: Vec<String> = install.iter().map(|f| f.path.clone()).collect();
    remove.extend(BINARIES.iter().map(|b| format!("{PREFIX}/bin/{b}")));
    remove.push(capi::RUNTIME_PATH.to_string());
    remove.extend(LEGACY_PATHS.iter().map(|p| p.to_string()));
    remove.sort();
    remove.dedup();
    let dirs = [
        format!("{PREFIX}/bin"),
        format!("{PREFIX}/etc"),
        format!("{PREFIX}/lib"),
        PREFIX.to_string(),
    ];
    let files = vec![FileEntry {
        path: REMOVE_PATH.to_string(),
        mode: 0o644,
        data: render_remove(&remove, &dirs).into_bytes(),
    }];
    let (_, name) = package_names(&spec.version, &spec.build);
    with_manifest(files, &format!("{name} for {}", spec.target))
}

/// Checks the paths, adds the manifest titled `title`, sorts by path.
pub(crate) fn with_manifest(mut files: Vec<FileEntry>, title: &str) -> Result<Vec<FileEntry>> {
    for f in &files {
        package::check_path(&f.path)?;
    }
    let manifest = Manifest::of(&files).render(title);
    files.push(FileEntry {
        path: MANIFEST_PATH.to_string(),
        mode: 0o644,
        data: manifest.into_bytes(),
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Writes both packages into `out_dir` (created when missing).
pub fn make_packages(spec: &Spec, out_dir: &Path) -> Result<Packages> {
    check_build_id(&spec.build)?;
    let install = install_files(spec)?;
    let removal = removal_files(spec, &install)?;
    fs::create_dir_all(out_dir).map_err(|e| Error::io("create", out_dir, e))?;
    let (install_name, removal_name) = package_names(&spec.version, &spec.build);
    let write = |name: &str, files: &[FileEntry]| -> Result<PathBuf> {
        let path = out_dir.join(name);
        write_package(&path, files, spec.mtime)?;
        Ok(path)
    };
    Ok(Packages {
        install: write(&install_name, &install)?,
        removal: write(&removal_name, &removal)?,
    })
}

/// Writes `files` as a package at `path` (through a temporary file).
pub(crate) fn write_package(path: &Path, files: &[FileEntry], mtime: u64) -> Result<()> {
    let bytes = package::write_tgz(files, mtime).map_err(|e| Error::io("pack", path, e))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, &bytes).map_err(|e| Error::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io("rename into place", path, e))
}

/// Refuses build identifiers that would make ambiguous file names.
pub fn check_build_id(build: &str) -> Result<()> {
    let ok = !build.is_empty()
        && build.len() <= 40
        && build
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "build id {build:?}: use 1 to 40 letters, digits and dots"
        )))
    }
}

/// `[workspace.package] version` from the root `Cargo.toml`.
pub fn workspace_version(root: &Path) -> Result<String> {
    workspace_field(root, "version")
}

/// A string field of `[workspace.package]` in the root `Cargo.toml`.
pub fn workspace_field(root: &Path, key: &str) -> Result<String> {
    let path = root.join("Cargo.toml");
    let text = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    parse_workspace_field(&text, key).ok_or_else(|| {
        Error::Other(format!(
            "no `{key} = \"...\"` under [workspace.package] in {}",
            path.display()
        ))
    })
}

fn parse_workspace_field(toml: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section {
            let Some(rest) = line.strip_prefix(key).map(str::trim_start) else {
                continue;
            };
            if let Some(v) = rest.strip_prefix('=') {
                let v = v.trim().strip_prefix('"')?.split('"').next()?;
                return Some(v.to_string());
            }
        }
    }
    None
}

/// The build identifier of the checked-out commit (see the module docs).
pub fn build_id(root: &Path) -> Result<String> {
    let head = cmd::output(
        Command::new("git")
            .current_dir(root)
            .args(["rev-parse", "HEAD"]),
    )
    .map_err(|e| Error::Other(format!("{e}; give the build with --build ID")))?;
    let mut id: String = head.trim().chars().take(10).collect();
    let status = cmd::output(Command::new("git").current_dir(root).args([
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]))?;
    if !status.trim().is_empty() {
        id.push_str(".dirty");
    }
    Ok(id)
}

/// `SOURCE_DATE_EPOCH` when set to a number, else 0.
pub fn archive_mtime() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Options of `cargo xtask dist`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Target triple (default [`cross::DEFAULT_TARGET`]).
    pub target: Option<String>,
    /// Take the binaries from here instead of building them.
    pub bin_dir: Option<PathBuf>,
    /// Build identifier override.
    pub build: Option<String>,
    /// Output directory (default `target/dist`).
    pub out: Option<PathBuf>,
}

/// Runs `cargo xtask dist`.
pub fn run(root: &Path, opts: &Options) -> Result<()> {
    let target = opts.target.as_deref().unwrap_or(cross::DEFAULT_TARGET);
    let build = match &opts.build {
        Some(b) => b.clone(),
        None => build_id(root)?,
    };
    check_build_id(&build)?;
    let (binaries, dir) = match &opts.bin_dir {
        Some(dir) => (cross::find_binaries(dir), dir.clone()),
        None => {
            let built = cross::build(root, target, Profile::Dist)?;
            (built.found, built.dir)
        }
    };
    if binaries.is_empty() {
        return Err(Error::Other(format!(
            "nothing to package: none of {} was found",
            BINARIES.join(", ")
        )));
    }
    let sdk_libraries = capi::find_libraries(&dir);
    let spec = Spec {
        version: workspace_version(root)?,
        build,
        target: target.to_string(),
        mtime: archive_mtime(),
        binaries,
        libraries: capi::runtime_of(&sdk_libraries),
    };
    if spec.libraries.is_empty() {
        eprintln!(
            "warning: the server package carries no {} (C and C++ apps need it)",
            capi::RUNTIME_PATH
        );
    }
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| toolchain::target_dir(root).join("dist"));
    let pkgs = make_packages(&spec, &out)?;
    let library = capi::make_package(root, &spec, &sdk_libraries, &out)?;
    for p in [&pkgs.install, &pkgs.removal].into_iter().chain(&library) {
        let bytes = fs::read(p).map_err(|e| Error::io("read", p, e))?;
        println!("{}  {}  {}", hex(&sha256(&bytes)), bytes.len(), p.display());
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::package::{read_tgz, Kind, Package};
    use crate::testutil::TempDir;
    use std::os::unix::fs::PermissionsExt;

    pub(crate) const ARMHF: &str = "armv7-unknown-linux-gnueabihf";

    /// The content of the fake binary `name` for `target`: an ELF header,
    /// then a line naming it.
    pub(crate) fn fake_binary_for(target: &str, name: &str) -> Vec<u8> {
        crate::elf::fake::binary_for(target, format!("fake {name} binary\n").as_bytes())
    }

    /// [`fake_binary_for`] the terminal's target.
    pub(crate) fn fake_binary(name: &str) -> Vec<u8> {
        fake_binary_for(ARMHF, name)
    }

    /// A directory holding fake ARM binaries named `names`.
    pub(crate) fn fake_bin_dir(dir: &Path, names: &[&str]) -> PathBuf {
        fake_bin_dir_for(dir, names, ARMHF)
    }

    /// A directory holding fake binaries for `target` named `names`.
    pub(crate) fn fake_bin_dir_for(dir: &Path, names: &[&str], target: &str) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        for n in names {
            let p = dir.join(n);
            fs::write(&p, fake_binary_for(target, n)).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir.to_path_buf()
    }

    /// A spec packaging the binaries found in `bin_dir`.
    pub(crate) fn spec_for(bin_dir: &Path) -> Spec {
        Spec {
            version: "0.1.0".into(),
            build: "0123456789".into(),
            target: ARMHF.into(),
            mtime: 0,
            binaries: cross::find_binaries(bin_dir),
            libraries: capi::runtime_of(&capi::find_libraries(bin_dir)),
        }
    }

    /// Every binary and the runtime library.
    fn everything() -> Vec<&'static str> {
        BINARIES.iter().copied().chain([capi::RUNTIME]).collect()
    }

    #[test]
    fn packages_are_byte_identical_across_runs() {
        let tmp = TempDir::new();
        let a = fake_bin_dir(&tmp.path().join("a"), &everything());
        let first = make_packages(&spec_for(&a), &tmp.path().join("out1")).unwrap();
        // Same content, but other timestamps and permissions on the inputs.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = fake_bin_dir(&tmp.path().join("b"), &everything());
        fs::set_permissions(b.join("nfy"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(b.join(capi::RUNTIME), fs::Permissions::from_mode(0o600)).unwrap();
        let second = make_packages(&spec_for(&b), &tmp.path().join("out2")).unwrap();
        for (x, y) in [
            (&first.install, &second.install),
            (&first.removal, &second.removal),
        ] {
            assert_eq!(x.file_name(), y.file_name());
            assert_eq!(
                fs::read(x).unwrap(),
                fs::read(y).unwrap(),
                "{}",
                x.display()
            );
        }
        assert_eq!(
            first.install.file_name().unwrap(),
            "dl.notifysvc-0.1.0-0123456789.tgz"
        );
        assert_eq!(
            first.removal.file_name().unwrap(),
            "dl.notifysvc-0.1.0-0123456789-rm.tgz"
        );
        // A changed binary changes the package.
        fs::write(b.join("nfy"), fake_binary("another nfy")).unwrap();
        let third = make_packages(&spec_for(&b), &tmp.path().join("out3")).unwrap();
        assert_ne!(
            fs::read(&first.install).unwrap(),
            fs::read(third.install).unwrap()
        );
    }

    #[test]
    fn install_package_holds_binaries_library_scripts_configs_version_and_manifest() {
        let tmp = TempDir::new();
        let bins = fake_bin_dir(&tmp.path().join("bins"), &everything());
        let pkgs = make_packages(&spec_for(&bins), tmp.path()).unwrap();
        let pkg = Package::from_bytes(&fs::read(&pkgs.install).unwrap()).unwrap();
        let paths: Vec<&str> = pkg.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc/logrotate.d/notifysvc",
                "opt/nfy/MANIFEST",
                "opt/nfy/VERSION",
                "opt/nfy/bin/nfy",
                "opt/nfy/bin/nfy-bridge",
                "opt/nfy/bin/notifysvc",
                "opt/nfy/bin/notifysvc-verix",
                "opt/nfy/bin/start-notifysvc",
                "opt/nfy/etc/notify.cfg.sample",
                "opt/nfy/lib/libvfiipc.so",
                "usr/lib/systemd/system/notifysvc.service",
            ]
        );
        assert_eq!(pkg.kind, Kind::Install);
        assert_eq!(pkg.manifest.lines.len(), 10);
        let file = |path: &str| &pkg.files.iter().find(|f| f.path == path).unwrap().data;
        assert_eq!(file(UNIT_PATH), SYSTEMD_UNIT.as_bytes());
        assert_eq!(file(LOGROTATE_PATH), LOGROTATE_CONF.as_bytes());
        let version = file(VERSION_PATH);
        assert_eq!(
            version,
            b"notifysvc 0.1.0-0123456789 armv7-unknown-linux-gnueabihf\n"
        );
        let manifest = String::from_utf8(file(MANIFEST_PATH).clone()).unwrap();
        assert!(manifest.starts_with(
            "# dl.notifysvc-0.1.0-0123456789.tgz for armv7-unknown-linux-gnueabihf\n"
        ));
        let nfy = pkg
            .files
            .iter()
            .find(|f| f.path == "opt/nfy/bin/nfy")
            .unwrap();
        assert_eq!(nfy.mode, 0o755);
        assert_eq!(nfy.data, fake_binary("nfy"));
        let library = pkg
            .files
            .iter()
            .find(|f| f.path == capi::RUNTIME_PATH)
            .unwrap();
        assert_eq!(library.mode, 0o755);
        assert_eq!(library.data, fake_binary(capi::RUNTIME));
        // In the manifest, so `flash` verifies it like the binaries.
        assert!(pkg
            .manifest
            .lines
            .iter()
            .any(|l| l.path == capi::RUNTIME_PATH));
    }

    #[test]
    fn a_runtime_library_for_another_machine_is_refused_before_anything_is_written() {
        let tmp = TempDir::new();
        let bins = fake_bin_dir(&tmp.path().join("bins"), &BINARIES);
        fake_bin_dir_for(&bins, &[capi::RUNTIME], "x86_64-unknown-linux-gnu");
        let out = tmp.path().join("out");
        let err = make_packages(&spec_for(&bins), &out).unwrap_err();
        assert!(
            matches!(&err, Error::Binary { path, .. } if path.ends_with(capi::RUNTIME)),
            "{err}"
        );
        assert!(!out.exists(), "something was written");
    }

    #[test]
    fn binaries_for_another_machine_are_refused_before_anything_is_written() {
        let tmp = TempDir::new();
        // `--bin-dir target/release`: the host's binaries, not ARM ones.
        let bins = fake_bin_dir_for(
            &tmp.path().join("release"),
            &BINARIES,
            "x86_64-unknown-linux-gnu",
        );
        let out = tmp.path().join("out");
        let err = make_packages(&spec_for(&bins), &out).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, Error::Binary { path, .. } if path.ends_with("notifysvc")),
            "{text}"
        );
        assert!(
            text.contains("built for x86-64 (64-bit, little-endian), but the target armv7-unknown-linux-gnueabihf runs ARM"),
            "{text}"
        );
        assert!(!out.exists(), "something was written");
        // Not an ELF file at all.
        fs::write(bins.join("notifysvc"), b"#!/bin/sh\n").unwrap();
        let err = make_packages(&spec_for(&bins), &out).unwrap_err();
        assert!(err.to_string().contains("not an ELF file"), "{err}");
    }

    #[test]
    fn removal_package_lists_every_installed_path() {
        let tmp = TempDir::new();
        let bins = fake_bin_dir(&tmp.path().join("bins"), &["notifysvc"]);
        let pkgs = make_packages(&spec_for(&bins), tmp.path()).unwrap();
        let pkg = Package::from_bytes(&fs::read(&pkgs.removal).unwrap()).unwrap();
        let Kind::Removal { files, dirs } = pkg.kind else {
            panic!("not a removal package")
        };
        let installed = read_tgz(&fs::read(&pkgs.install).unwrap()).unwrap();
        for f in &installed {
            assert!(files.contains(&f.path), "{} not removed", f.path);
        }
        // Binaries this build lacks are removed too (an older one may have them).
        assert!(files.contains(&"opt/nfy/bin/notifysvc-verix".to_string()));
        // So is the runtime library (an older build may have shipped it).
        assert!(files.contains(&capi::RUNTIME_PATH.to_string()));
        // And what older packages installed under another name.
        assert!(files.contains(&"opt/nfy/etc/notify.cfg".to_string()));
        assert_eq!(
            dirs,
            ["opt/nfy/bin", "opt/nfy/etc", "opt/nfy/lib", "opt/nfy"]
        );
    }

    #[test]
    fn bad_build_ids_are_refused() {
        for bad in ["", "a-b", "a/b", "x y", &"1".repeat(41)] {
            assert!(check_build_id(bad).is_err(), "{bad}");
        }
        check_build_id("3f2a9c01bd.dirty").unwrap();
    }

    #[test]
    fn workspace_version_is_read_from_its_section() {
        let toml = "[package]\nversion = \"9.9.9\"\n[workspace.package]\nedition = \"2021\"\nversion = \"0.1.0\"\n";
        assert_eq!(
            parse_workspace_field(toml, "version").as_deref(),
            Some("0.1.0")
        );
        assert_eq!(
            parse_workspace_field(toml, "edition").as_deref(),
            Some("2021")
        );
        assert_eq!(
            parse_workspace_field("[package]\nversion = \"1\"\n", "version"),
            None
        );
        // `version` is not mistaken for a longer key that starts with it.
        assert_eq!(
            parse_workspace_field(
                "[workspace.package]\nversion-x = \"2\"\nversion = \"3\"\n",
                "version"
            )
            .as_deref(),
            Some("3")
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert!(!workspace_version(root).unwrap().is_empty());
    }

    /// Uncomments the sample's rule lines (`#in ...`, `#out ...`,
    /// `#interface ...`).
    fn sample_rules() -> String {
        SAMPLE_CONFIG
            .lines()
            .filter_map(|l| {
                let l = l.strip_prefix('#')?;
                let word = l.split(' ').next()?;
                matches!(word, "in" | "out" | "interface").then(|| format!("{l}\n"))
            })
            .collect()
    }

    #[test]
    fn sample_config_opens_nothing_as_shipped_and_its_rules_are_well_formed() {
        for line in SAMPLE_CONFIG.lines() {
            assert!(
                line.is_empty() || line.starts_with('#'),
                "active line {line:?}"
            );
        }
        let rules = sample_rules();
        let mut counts = (0, 0);
        for line in rules.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields[0] {
                "in" | "out" => {
                    assert_eq!(fields.len(), 4, "{line}");
                    counts.0 += 1;
                }
                _ => {
                    assert_eq!(fields.len(), 2, "{line}");
                    counts.1 += 1;
                }
            }
        }
        assert_eq!(counts, (3, 2));
        // The real parser accepts both the file as shipped and its rules.
        type Wl = nfy_core::whitelist::Whitelist<16, 4>;
        let shipped = Wl::parse(SAMPLE_CONFIG.as_bytes()).unwrap();
        assert!(!shipped.has_rules());
        Wl::parse(rules.as_bytes()).unwrap();
    }

    /// A directory with the start script and fake `notifysvc` (sleeps)
    /// and `nfy` (`status` exits with `nfy_status`).
    fn script_dir(tmp: &TempDir, nfy_status: u8) -> PathBuf {
        let dir = tmp.path().to_path_buf();
        for (name, text) in [
            ("start-notifysvc", START_SCRIPT.to_string()),
            ("notifysvc", "#!/bin/sh\nexec sleep 30\n".to_string()),
            ("nfy", format!("#!/bin/sh\nexit {nfy_status}\n")),
        ] {
            let p = dir.join(name);
            fs::write(&p, text).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    fn start_script(dir: &Path, args: &[&str]) -> std::process::Output {
        start_script_with(dir, args, None)
    }

    /// Runs the start script in `dir` with `NFY_SOCKET` set to `socket`
    /// (unset: `None`); the system socket's directory is `dir/run/nfy`,
    /// never the machine's `/run/nfy`.
    fn start_script_with(dir: &Path, args: &[&str], socket: Option<&str>) -> std::process::Output {
        let mut cmd = Command::new(dir.join("start-notifysvc"));
        cmd.args(args)
            .env("NFY_PIDFILE", dir.join("pid"))
            .env("NFY_LOG", dir.join("log"))
            .env("NFY_READY_TIMEOUT", "1")
            .env("NFY_RUNDIR", dir.join("run").join("nfy"))
            .env_remove("NFY_PROFILE")
            .env_remove("MAINPID");
        match socket {
            Some(s) => cmd.env("NFY_SOCKET", s),
            None => cmd.env_remove("NFY_SOCKET"),
        };
        cmd.output().unwrap()
    }

    #[test]
    fn start_script_starts_waits_for_an_answer_reports_and_stops_the_service() {
        let tmp = TempDir::new();
        let dir = script_dir(&tmp, 0);
        let run = |arg: &str| start_script(&dir, &[arg]);
        assert_eq!(run("status").status.code(), Some(3));
        let started = run("start");
        assert!(started.status.success(), "{started:?}");
        assert!(dir.join("pid").exists());
        assert_eq!(run("status").status.code(), Some(0));
        assert!(run("ready").status.success());
        assert!(run("stop").status.success());
        assert_eq!(run("status").status.code(), Some(3));
        assert!(!dir.join("pid").exists());
        assert_eq!(run("bogus").status.code(), Some(2));
    }

    #[test]
    fn start_script_fails_when_the_service_never_answers_or_is_gone() {
        let tmp = TempDir::new();
        let dir = script_dir(&tmp, 1);
        let started = start_script(&dir, &["start"]);
        assert_eq!(started.status.code(), Some(1), "{started:?}");
        let err = String::from_utf8_lossy(&started.stderr);
        assert!(err.contains("did not answer within 1 s"), "{err}");
        assert!(start_script(&dir, &["stop"]).status.success());
        // `ready` for a supervisor that names the main process: gone, fail at once.
        let gone = Command::new(dir.join("start-notifysvc"))
            .arg("ready")
            .env("MAINPID", "999999999")
            .env("NFY_READY_TIMEOUT", "30")
            .output()
            .unwrap();
        assert_eq!(gone.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&gone.stderr).contains("exited"),
            "{gone:?}"
        );
    }

    /// A fake `notifysvc` that writes the `NFY_SOCKET` it was started with
    /// to `socket` and a line to `hups` for each SIGHUP.
    const HUP_COUNTING_SERVER: &str = "#!/bin/sh\n\
        dir=$(dirname \"$0\")\n\
        echo \"${NFY_SOCKET:-}\" >\"$dir/socket\"\n\
        trap 'echo hup >>\"$dir/hups\"' HUP\n\
        while :; do sleep 1 & wait $!; done\n";

    /// Waits (at most 10 s) until `path` holds `lines` lines.
    fn wait_lines(path: &Path, lines: usize) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let n = fs::read_to_string(path).map_or(0, |t| t.lines().count());
            if n >= lines {
                return n == lines;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn start_script_reloads_by_pid_and_gives_root_the_system_socket() {
        let tmp = TempDir::new();
        let dir = script_dir(&tmp, 0);
        let server = dir.join("notifysvc");
        fs::write(&server, HUP_COUNTING_SERVER).unwrap();
        fs::set_permissions(&server, fs::Permissions::from_mode(0o755)).unwrap();
        let run = |arg: &str, socket: Option<&str>| start_script_with(&dir, &[arg], socket);

        let not_running = run("reload", None);
        assert_eq!(not_running.status.code(), Some(3), "{not_running:?}");
        let started = run("start", None);
        assert!(started.status.success(), "{started:?}");
        assert!(wait_lines(&dir.join("socket"), 1));
        let socket = fs::read_to_string(dir.join("socket")).unwrap();
        let rundir = dir.join("run").join("nfy");
        // A directory this process made is owned by its effective user.
        let root = std::os::unix::fs::MetadataExt::uid(&fs::metadata(&dir).unwrap()) == 0;
        if root {
            // As the systemd unit: the system socket, in a directory all
            // users may reach.
            assert_eq!(socket.trim(), rundir.join("notify.sock").to_str().unwrap());
            let mode = fs::metadata(&rundir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755);
        } else {
            assert_eq!(socket.trim(), "");
            assert!(!rundir.exists());
        }
        for n in 1..=2 {
            let reloaded = run("reload", None);
            assert!(reloaded.status.success(), "{reloaded:?}");
            assert!(wait_lines(&dir.join("hups"), n), "SIGHUP {n} not seen");
        }
        assert!(
            run("status", None).status.success(),
            "a reload stops nothing"
        );
        assert!(run("stop", None).status.success());

        // A socket given is kept, and nothing is created for it.
        if root {
            fs::remove_dir_all(dir.join("run")).unwrap();
        }
        fs::remove_file(dir.join("socket")).unwrap();
        let mine = dir.join("mine.sock");
        let started = run("start", Some(mine.to_str().unwrap()));
        assert!(started.status.success(), "{started:?}");
        assert!(wait_lines(&dir.join("socket"), 1));
        let socket = fs::read_to_string(dir.join("socket")).unwrap();
        assert_eq!(socket.trim(), mine.to_str().unwrap());
        assert!(!rundir.exists());
        assert!(run("stop", None).status.success());
    }

    /// The value of `key` in a unit file (the last assignment).
    fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
        unit.lines()
            .rev()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }

    #[test]
    fn systemd_unit_runs_what_the_package_installs() {
        let tmp = TempDir::new();
        let bins = fake_bin_dir(&tmp.path().join("bins"), &BINARIES);
        let pkgs = make_packages(&spec_for(&bins), tmp.path()).unwrap();
        let pkg = Package::from_bytes(&fs::read(&pkgs.install).unwrap()).unwrap();
        let installed = |abs: &str| {
            let rel = abs.trim_start_matches('/');
            pkg.files.iter().any(|f| f.path == rel && f.mode == 0o755)
        };
        let unit = SYSTEMD_UNIT;
        let sections: Vec<&str> = unit.lines().filter(|l| l.starts_with('[')).collect();
        assert_eq!(sections, ["[Unit]", "[Service]", "[Install]"]);
        let line = unit_value(unit, "ExecStart").unwrap();
        let program = line.split_whitespace().next().unwrap();
        assert!(installed(program), "ExecStart={line}: not in the package");
        // The server says when it is ready (sd_notify): no probe.
        assert_eq!(unit_value(unit, "Type"), Some("notify"));
        assert_eq!(unit_value(unit, "ExecStartPost"), None);
        // `systemctl reload`: SIGHUP to the server.
        assert_eq!(
            unit_value(unit, "ExecReload"),
            Some("/bin/kill -HUP $MAINPID")
        );
        assert_eq!(unit_value(unit, "Restart"), Some("on-failure"));
        // Configuration and usage errors are not retried.
        assert_eq!(unit_value(unit, "RestartPreventExitStatus"), Some("4 5 64"));
        // The socket is in the runtime directory systemd manages.
        assert_eq!(unit_value(unit, "RuntimeDirectory"), Some("nfy"));
        assert!(unit
            .lines()
            .any(|l| l == "Environment=NFY_SOCKET=/run/nfy/notify.sock"));
        // The configuration under /home stays readable.
        assert_eq!(unit_value(unit, "ProtectHome"), Some("read-only"));
        assert_eq!(unit_value(unit, "WantedBy"), Some("multi-user.target"));
    }

    #[test]
    fn systemd_accepts_the_unit() {
        let Some(analyze) = cmd::find_in_path("systemd-analyze") else {
            panic!("systemd-analyze not found: apt-get install systemd");
        };
        // Flash the package to a directory and point the unit at it, so
        // systemd finds the programs it names.
        let tmp = TempDir::new();
        let bins = fake_bin_dir(&tmp.path().join("bins"), &BINARIES);
        let pkgs = make_packages(&spec_for(&bins), tmp.path()).unwrap();
        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        crate::flash::run(&pkgs.install, &crate::flash::Dest::Dir(root.clone())).unwrap();
        let prefix = root.join(PREFIX);
        let unit = fs::read_to_string(root.join(UNIT_PATH))
            .unwrap()
            .replace("/opt/nfy", &prefix.to_string_lossy());
        let path = tmp.path().join("notifysvc.service");
        fs::write(&path, unit).unwrap();
        let out = Command::new(analyze)
            .args(["verify", "--man=no"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        // Unknown or misspelt directives are only warnings: none allowed.
        assert!(
            !stderr.contains("notifysvc.service"),
            "systemd-analyze verify: {stderr}"
        );
    }

    #[test]
    fn logrotate_rotates_the_log_while_the_server_keeps_writing() {
        use std::io::Write as _;
        let Some(logrotate) = cmd::find_in_path("logrotate")
            .or_else(|| Some(PathBuf::from("/usr/sbin/logrotate")).filter(|p| p.is_file()))
        else {
            panic!("logrotate not found: apt-get install logrotate");
        };
        let tmp = TempDir::new();
        let log = tmp.path().join("notifysvc.log");
        let conf = tmp.path().join("notifysvc.conf");
        fs::write(
            &conf,
            LOGROTATE_CONF.replace("/var/log/notifysvc.log", &log.to_string_lossy()),
        )
        .unwrap();
        // The server's standard error, as `>>"$log"` opens it.
        let mut stderr = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .unwrap();
        stderr.write_all(b"before rotation\n").unwrap();
        let out = Command::new(logrotate)
            .arg("--force")
            .arg("--state")
            .arg(tmp.path().join("state"))
            .arg(&conf)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        stderr.write_all(b"after rotation\n").unwrap();
        assert_eq!(
            fs::read_to_string(tmp.path().join("notifysvc.log.1")).unwrap(),
            "before rotation\n"
        );
        // Truncated in place: the open descriptor writes at its new start.
        assert_eq!(fs::read_to_string(&log).unwrap(), "after rotation\n");
    }
}
