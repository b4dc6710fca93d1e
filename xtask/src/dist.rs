//! `cargo xtask dist`: terminal download packages.
//!
//! Two packages per build, in `target/dist/` (format in [`crate::package`]):
//!
//! | file | holds |
//! |---|---|
//! | `dl.notifysvc-<version>-<build>.tgz` | the install package |
//! | `dl.notifysvc-<version>-<build>-rm.tgz` | the matching removal package |
//! | `dl.libvfiipc-<version>-<build>.tgz` | the C/C++ client library ([`crate::capi`]) |
//!
//! The install package holds, under `opt/nfy/`: `bin/notifysvc`,
//! `bin/notifysvc-verix` and `bin/nfy` (those that were built),
//! `bin/start-notifysvc` (start/stop script), `etc/notify.cfg` (a commented
//! sample whitelist that opens nothing), `VERSION`, and `MANIFEST`.
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
//!   three names), whether or not this build has it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::capi;
use crate::cmd;
use crate::cross::{self, Profile, BINARIES};
use crate::error::{Error, Result};
use crate::package::{
    self, hex, render_remove, sha256, FileEntry, Manifest, MANIFEST_PATH, PREFIX, REMOVE_PATH,
};
use crate::toolchain;

/// The sample configuration shipped in the install package.
pub const SAMPLE_CONFIG: &str = include_str!("../data/notify.cfg");
/// The start script shipped in the install package.
pub const START_SCRIPT: &str = include_str!("../data/start-notifysvc");

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
    for (name, path) in &spec.binaries {
        let data = fs::read(path).map_err(|e| Error::io("read", path, e))?;
        files.push(FileEntry {
            path: format!("{PREFIX}/bin/{name}"),
            mode: 0o755,
            data,
        });
    }
    files.push(FileEntry {
        path: format!("{PREFIX}/bin/start-notifysvc"),
        mode: 0o755,
        data: START_SCRIPT.as_bytes().to_vec(),
    });
    files.push(FileEntry {
        path: format!("{PREFIX}/etc/notify.cfg"),
        mode: 0o644,
        data: SAMPLE_CONFIG.as_bytes().to_vec(),
    });
    files.push(FileEntry {
        path: format!("{PREFIX}/VERSION"),
        mode: 0o644,
        data: format!(
            "notifysvc {}-{} {}\n",
            spec.version, spec.build, spec.target
        )
        .into_bytes(),
    });
    let (name, _) = package_names(&spec.version, &spec.build);
    with_manifest(files, &format!("{name} for {}", spec.target))
}

/// The removal package's files for an install package's files.
pub fn removal_files(spec: &Spec, install: &[FileEntry]) -> Result<Vec<FileEntry>> {
    let mut remove: Vec<String> = install.iter().map(|f| f.path.clone()).collect();
    remove.extend(BINARIES.iter().map(|b| format!("{PREFIX}/bin/{b}")));
    remove.sort();
    remove.dedup();
    let dirs = [
        format!("{PREFIX}/bin"),
        format!("{PREFIX}/etc"),
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
    let path = root.join("Cargo.toml");
    let text = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    parse_workspace_version(&text).ok_or_else(|| {
        Error::Other(format!(
            "no `version = \"...\"` under [workspace.package] in {}",
            path.display()
        ))
    })
}

fn parse_workspace_version(toml: &str) -> Option<String> {
    let mut in_section = false;
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section {
            if let Some(v) = line
                .strip_prefix("version")
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('='))
            {
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
    let spec = Spec {
        version: workspace_version(root)?,
        build,
        target: target.to_string(),
        mtime: archive_mtime(),
        binaries,
    };
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| toolchain::target_dir(root).join("dist"));
    let pkgs = make_packages(&spec, &out)?;
    let library = capi::make_package(root, &spec, &capi::find_libraries(&dir), &out)?;
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

    /// A directory holding fake binaries named `names`.
    pub(crate) fn fake_bin_dir(dir: &Path, names: &[&str]) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        for n in names {
            let p = dir.join(n);
            fs::write(&p, format!("fake {n} binary\n")).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir.to_path_buf()
    }

    /// A spec packaging the binaries found in `bin_dir`.
    pub(crate) fn spec_for(bin_dir: &Path) -> Spec {
        Spec {
            version: "0.1.0".into(),
            build: "0123456789".into(),
            target: "armv7-unknown-linux-gnueabihf".into(),
            mtime: 0,
            binaries: cross::find_binaries(bin_dir),
        }
    }

    #[test]
    fn packages_are_byte_identical_across_runs() {
        let tmp = TempDir::new();
        let a = fake_bin_dir(&tmp.path().join("a"), &BINARIES);
        let first = make_packages(&spec_for(&a), &tmp.path().join("out1")).unwrap();
        // Same content, but other timestamps and permissions on the inputs.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = fake_bin_dir(&tmp.path().join("b"), &BINARIES);
        fs::set_permissions(b.join("nfy"), fs::Permissions::from_mode(0o700)).unwrap();
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
        fs::write(b.join("nfy"), b"another nfy\n").unwrap();
        let third = make_packages(&spec_for(&b), &tmp.path().join("out3")).unwrap();
        assert_ne!(
            fs::read(&first.install).unwrap(),
            fs::read(third.install).unwrap()
        );
    }

    #[test]
    fn install_package_holds_binaries_script_config_version_and_manifest() {
        let tmp = TempDir::new();
        let bins = fake_bin_dir(&tmp.path().join("bins"), &BINARIES);
        let pkgs = make_packages(&spec_for(&bins), tmp.path()).unwrap();
        let pkg = Package::from_bytes(&fs::read(&pkgs.install).unwrap()).unwrap();
        let paths: Vec<&str> = pkg.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "opt/nfy/MANIFEST",
                "opt/nfy/VERSION",
                "opt/nfy/bin/nfy",
                "opt/nfy/bin/notifysvc",
                "opt/nfy/bin/notifysvc-verix",
                "opt/nfy/bin/start-notifysvc",
                "opt/nfy/etc/notify.cfg",
            ]
        );
        assert_eq!(pkg.kind, Kind::Install);
        assert_eq!(pkg.manifest.lines.len(), 6);
        let version = &pkg.files[1].data;
        assert_eq!(
            version,
            b"notifysvc 0.1.0-0123456789 armv7-unknown-linux-gnueabihf\n"
        );
        let manifest = String::from_utf8(pkg.files[0].data.clone()).unwrap();
        assert!(manifest.starts_with(
            "# dl.notifysvc-0.1.0-0123456789.tgz for armv7-unknown-linux-gnueabihf\n"
        ));
        let nfy = pkg
            .files
            .iter()
            .find(|f| f.path == "opt/nfy/bin/nfy")
            .unwrap();
        assert_eq!(nfy.mode, 0o755);
        assert_eq!(nfy.data, b"fake nfy binary\n");
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
        assert_eq!(dirs, ["opt/nfy/bin", "opt/nfy/etc", "opt/nfy"]);
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
        assert_eq!(parse_workspace_version(toml).as_deref(), Some("0.1.0"));
        assert_eq!(
            parse_workspace_version("[package]\nversion = \"1\"\n"),
            None
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

    #[test]
    fn start_script_starts_reports_and_stops_the_service() {
        let tmp = TempDir::new();
        let dir = tmp.path();
        let script = dir.join("start-notifysvc");
        fs::write(&script, START_SCRIPT).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let fake = dir.join("notifysvc");
        fs::write(&fake, "#!/bin/sh\nexec sleep 30\n").unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let run = |arg: &str| {
            Command::new(&script)
                .arg(arg)
                .env("NFY_PIDFILE", dir.join("pid"))
                .env("NFY_LOG", dir.join("log"))
                .env_remove("NFY_PROFILE")
                .output()
                .unwrap()
        };
        assert_eq!(run("status").status.code(), Some(3));
        let started = run("start");
        assert!(started.status.success(), "{started:?}");
        assert!(dir.join("pid").exists());
        assert_eq!(run("status").status.code(), Some(0));
        assert!(run("stop").status.success());
        assert_eq!(run("status").status.code(), Some(3));
        assert!(!dir.join("pid").exists());
        assert_eq!(run("bogus").status.code(), Some(2));
    }
}
