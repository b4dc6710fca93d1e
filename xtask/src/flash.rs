//! `cargo xtask flash`: installs a package onto a terminal.
//!
//! The destination is either a directory standing for the terminal's root
//! filesystem (a mounted image or SD card) or `ssh://[user@]host[:port]/path`,
//! reached with the system's `ssh` and `scp`.
//!
//! The package is verified against its manifest in memory first
//! ([`Package::from_bytes`]); a package that does not match is refused
//! before anything is copied. Each file is written next to its place as
//! `<name>.nfy-new` and renamed over the old one (a running binary is
//! replaced, not overwritten), the manifest last. Afterwards every file on
//! the destination is read back and checked against the manifest.
//!
//! A removal package deletes the files it lists and then the directories
//! that became empty; afterwards none of the files may exist.
//!
//! **Decision**: on a directory destination xtask refuses to write through
//! a symbolic link that already exists on the way to a file: in a mounted
//! image an absolute link would point into the host's filesystem.

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{self, sh_quote};
use crate::error::{Error, Result};
use crate::package::{hex, sha256, FileEntry, Kind, ManifestLine, Package, PackageError};

/// Suffix of a file being written, before it is renamed into place.
const NEW_SUFFIX: &str = ".nfy-new";

/// Where a package goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// A directory standing for the terminal's root filesystem.
    Dir(PathBuf),
    /// A terminal reached over ssh.
    Ssh(SshDest),
}

/// A parsed `ssh://[user@]host[:port]/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshDest {
    /// Login name, when given.
    pub user: Option<String>,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port, when given.
    pub port: Option<u16>,
    /// Absolute path of the terminal's root on the host (`/` by default).
    pub path: String,
}

/// Parses a `--to` argument: `ssh://...` or a directory path.
pub fn parse_dest(s: &str) -> Result<Dest> {
    let Some(rest) = s.strip_prefix("ssh://") else {
        if s.contains("://") {
            return Err(Error::Usage(format!(
                "--to {s}: only ssh:// URLs and directories are supported"
            )));
        }
        return Ok(Dest::Dir(PathBuf::from(s)));
    };
    let bad = |why: &str| Error::Usage(format!("--to {s}: {why}"));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed [ in the host"))?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
            ),
        }
    } else {
        match hostport.split_once(':') {
            Some((_, p)) if p.contains(':') => {
                return Err(bad("IPv6 addresses go in brackets: ssh://[::1]/path"))
            }
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let word = |w: &str, extra: &[u8]| {
        !w.is_empty()
            && !w.starts_with('-')
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b) || extra.contains(&b))
    };
    if !word(host, b":%") {
        return Err(bad(
            "the host is missing or holds characters a host name cannot",
        ));
    }
    if let Some(u) = user {
        if !word(u, b"") {
            return Err(bad("the user name holds characters a user name cannot"));
        }
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(bad("the port is not a number from 1 to 65535")),
        },
    };
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+,=@~".contains(&b));
    if !path_ok || path.split('/').any(|c| c == "..") {
        return Err(bad(
            "the path may hold only letters, digits, / . _ - + , = @ ~ and no ..",
        ));
    }
    Ok(Dest::Ssh(SshDest {
        user: user.map(str::to_string),
        host: host.to_string(),
        port,
        path: path.to_string(),
    }))
}

/// Reads, verifies and installs `package` onto `dest`.
pub fn run(package: &Path, dest: &Dest) -> Result<()> {
    let bytes = fs::read(package).map_err(|e| Error::io("read", package, e))?;
    let pkg = Package::from_bytes(&bytes)?;
    let kind = match &pkg.kind {
        Kind::Install => "install",
        Kind::Removal { .. } => "removal",
    };
    eprintln!(
        "flash: {}: {kind} package; all {} files listed in its manifest match",
        package.display(),
        pkg.manifest.lines.len()
    );
    match dest {
        Dest::Dir(root) => {
            if !root.is_dir() {
                return Err(Error::Other(format!(
                    "destination {} is not a directory (give the terminal's root filesystem)",
                    root.display()
                )));
            }
            match &pkg.kind {
                Kind::Install => install_dir(&pkg, root)?,
                Kind::Removal { files, dirs } => remove_dir(files, dirs, root)?,
            }
            eprintln!(
                "flash: done; {} checked against the manifest",
                root.display()
            );
        }
        Dest::Ssh(ssh) => {
            let staging = std::env::temp_dir().join(format!("nfy-flash-{}", std::process::id()));
            let result = stage(&pkg, &staging).and_then(|()| {
                for step in ssh_plan(&pkg, ssh, &staging) {
                    step.execute()?;
                }
                Ok(())
            });
            let _ = fs::remove_dir_all(&staging);
            result?;
            eprintln!("flash: done; {} checked against the manifest", ssh.url());
        }
    }
    Ok(())
}

/// Installs every file of `pkg` under `root`, then verifies them.
pub fn install_dir(pkg: &Package, root: &Path) -> Result<()> {
    for f in pkg.install_order() {
        let target = prepare_target(root, &f.path)?;
        write_replacing(&target, f)?;
        eprintln!("flash: installed {} ({} bytes)", f.path, f.data.len());
    }
    verify_dir(&pkg.files, root).map_err(Error::Verification)
}

/// Checks that every file in `files` is under `root` with its content.
pub fn verify_dir(files: &[FileEntry], root: &Path) -> Result<(), PackageError> {
    for f in files {
        let line = ManifestLine {
            sha256: sha256(&f.data),
            size: f.data.len() as u64,
            path: f.path.clone(),
        };
        let data =
            fs::read(root.join(&f.path)).map_err(|_| PackageError::Missing(f.path.clone()))?;
        line.check(&data)?;
    }
    Ok(())
}

/// Applies a removal list under `root`, then checks nothing listed is left.
pub fn remove_dir(files: &[String], dirs: &[String], root: &Path) -> Result<()> {
    for f in files {
        let p = root.join(f);
        match fs::remove_file(&p) {
            Ok(()) => eprintln!("flash: removed {f}"),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &p, e)),
        }
    }
    for d in dirs {
        // Only empty directories go; anything else is left as it is.
        if fs::remove_dir(root.join(d)).is_ok() {
            eprintln!("flash: removed {d}/");
        }
    }
    for f in files {
        if root.join(f).symlink_metadata().is_ok() {
            return Err(Error::Verification(PackageError::StillPresent(f.clone())));
        }
    }
    Ok(())
}

/// Creates the directories above `rel` under `root` (refusing symbolic
/// links on the way) and returns the file's path.
fn prepare_target(root: &Path, rel: &str) -> Result<PathBuf> {
    let mut dir = root.to_path_buf();
    let mut parts: Vec<&str> = rel.split('/').collect();
    let name = parts.pop().unwrap_or_default();
    for part in parts {
        dir.push(part);
        match dir.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::Other(format!(
                    "refusing to write through the symbolic link {}",
                    dir.display()
                )))
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Other(format!(
                    "{} is in the way of a directory",
                    dir.display()
                )))
            }
            Err(_) => fs::create_dir(&dir).map_err(|e| Error::io("create", &dir, e))?,
        }
    }
    let target = dir.join(name);
    if target.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return Err(Error::Other(format!(
            "{} is a directory, the package has a file there",
            target.display()
        )));
    }
    Ok(target)
}

/// Writes `f` next to `target` and renames it into place.
fn write_replacing(target: &Path, f: &FileEntry) -> Result<()> {
    let mut tmp = target.as_os_str().to_owned();
    tmp.push(NEW_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let mut file = fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    file.write_all(&f.data)
        .and_then(|()| file.set_permissions(fs::Permissions::from_mode(f.mode)))
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write", &tmp, e))?;
    fs::rename(&tmp, target).map_err(|e| Error::io("rename into place", target, e))
}

/// Writes the files to copy over ssh into `staging` as `<path>.nfy-new`.
fn stage(pkg: &Package, staging: &Path) -> Result<()> {
    if matches!(pkg.kind, Kind::Removal { .. }) {
        return Ok(());
    }
    fs::create_dir_all(staging).map_err(|e| Error::io("create", staging, e))?;
    for f in &pkg.files {
        let target = prepare_target(staging, &f.path)?;
        write_replacing(&target, f)?;
        let staged = staged_name(&target);
        fs::rename(&target, &staged).map_err(|e| Error::io("stage", &staged, e))?;
    }
    Ok(())
}

fn staged_name(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(NEW_SUFFIX);
    PathBuf::from(s)
}

/// One command of an ssh installation, with how to judge its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// How to check the outcome.
    pub check: Check,
}

/// How a [`Step`]'s outcome is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Exit status 0.
    Status,
    /// Its output is `sha256sum` lines that must hold exactly these hashes.
    Hashes(Vec<(String, [u8; 32])>),
    /// Its output lists the paths still present: must be empty.
    Absent,
}

impl Step {
    /// Runs the step and checks its outcome.
    pub fn execute(&self) -> Result<()> {
        let (program, args) = self
            .argv
            .split_first()
            .ok_or_else(|| Error::Other("empty command".into()))?;
        let mut c = Command::new(program);
        c.args(args);
        match &self.check {
            Check::Status => cmd::run(&mut c),
            Check::Hashes(expected) => {
                eprintln!("$ {}", cmd::display(&c));
                check_hashes(&cmd::output(&mut c)?, expected).map_err(Error::Verification)
            }
            Check::Absent => {
                eprintln!("$ {}", cmd::display(&c));
                match cmd::output(&mut c)?.lines().next() {
                    None => Ok(()),
                    Some(left) => Err(Error::Verification(PackageError::StillPresent(
                        left.trim().to_string(),
                    ))),
                }
            }
        }
    }
}

/// Compares `sha256sum` output with the expected hashes.
pub fn check_hashes(output: &str, expected: &[(String, [u8; 32])]) -> Result<(), PackageError> {
    let found: BTreeMap<&str, &str> = output
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(hash, path)| (path.trim(), hash.trim()))
        .collect();
    for (path, hash) in expected {
        match found.get(path.as_str()) {
            None => return Err(PackageError::Missing(path.clone())),
            Some(h) if *h != hex(hash) => return Err(PackageError::HashMismatch(path.clone())),
            Some(_) => {}
        }
    }
    Ok(())
}

impl SshDest {
    /// The destination as a URL again.
    pub fn url(&self) -> String {
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("ssh://{user}{}{port}{}", self.host_for_scp(), self.path)
    }

    fn host_for_scp(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    fn login(&self, host: String) -> String {
        match &self.user {
            Some(u) => format!("{u}@{host}"),
            None => host,
        }
    }

    /// `ssh [-p PORT] [user@]host REMOTE_COMMAND`.
    pub fn ssh(&self, remote: String) -> Vec<String> {
        let mut v = vec!["ssh".to_string()];
        if let Some(p) = self.port {
            v.extend(["-p".to_string(), p.to_string()]);
        }
        v.push(self.login(self.host.clone()));
        v.push(remote);
        v
    }

    /// `scp -p [-P PORT] SOURCES... [user@]host:DIR/`.
    pub fn scp(&self, sources: &[PathBuf], remote_dir: &str) -> Vec<String> {
        let mut v = vec!["scp".to_string(), "-p".to_string()];
        if let Some(p) = self.port {
            v.extend(["-P".to_string(), p.to_string()]);
        }
        v.extend(sources.iter().map(|s| s.to_string_lossy().into_owned()));
        v.push(format!("{}:{remote_dir}/", self.login(self.host_for_scp())));
        v
    }

    /// The absolute remote path of a package path.
    pub fn remote(&self, rel: &str) -> String {
        format!("{}/{rel}", self.path.trim_end_matches('/'))
    }
}

/// The commands that install `pkg` over ssh, files staged in `staging`:
/// create directories, copy each directory's files as `*.nfy-new`, rename
/// them into place (manifest last), then read every hash back.
pub fn ssh_plan(pkg: &Package, dest: &SshDest, staging: &Path) -> Vec<Step> {
    let root = sh_quote(&dest.path);
    let quoted = |paths: &[String]| {
        paths
            .iter()
            .map(|p| sh_quote(p))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let step = |argv| Step {
        argv,
        check: Check::Status,
    };
    match &pkg.kind {
        Kind::Removal { files, dirs } => {
            let mut rm = format!("cd {root} && rm -f -- {}", quoted(files));
            if !dirs.is_empty() {
                rm.push_str(&format!(
                    " && {{ rmdir -- {} 2>/dev/null || true; }}",
                    quoted(dirs)
                ));
            }
            let left = format!(
                "cd {root} && for f in {}; do if [ -e \"$f\" ]; then echo \"$f\"; fi; done",
                quoted(files)
            );
            vec![
                step(dest.ssh(rm)),
                Step {
                    argv: dest.ssh(left),
                    check: Check::Absent,
                },
            ]
        }
        Kind::Install => {
            let mut by_dir: BTreeMap<&str, Vec<&FileEntry>> = BTreeMap::new();
            for f in &pkg.files {
                let dir = f.path.rsplit_once('/').map_or("", |(d, _)| d);
                by_dir.entry(dir).or_default().push(f);
            }
            let dirs: Vec<String> = by_dir.keys().map(|d| dest.remote(d)).collect();
            let mut steps = vec![step(dest.ssh(format!("mkdir -p -- {}", quoted(&dirs))))];
            for (dir, files) in &by_dir {
                let sources: Vec<PathBuf> = files
                    .iter()
                    .map(|f| staged_name(&staging.join(&f.path)))
                    .collect();
                steps.push(step(dest.scp(&sources, &dest.remote(dir))));
            }
            let moves: Vec<String> = pkg
                .install_order()
                .iter()
                .map(|f| {
                    let p = sh_quote(&f.path);
                    let new = sh_quote(&format!("{}{NEW_SUFFIX}", f.path));
                    format!("mv -f -- {new} {p}")
                })
                .collect();
            steps.push(step(
                dest.ssh(format!("cd {root} && {}", moves.join(" && "))),
            ));
            let paths: Vec<String> = pkg.files.iter().map(|f| f.path.clone()).collect();
            steps.push(Step {
                argv: dest.ssh(format!("cd {root} && sha256sum -- {}", quoted(&paths))),
                check: Check::Hashes(
                    pkg.files
                        .iter()
                        .map(|f| (f.path.clone(), sha256(&f.data)))
                        .collect(),
                ),
            });
            steps
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::tests::{fake_bin_dir, fake_binary, spec_for};
    use crate::dist::{make_packages, Packages};
    use crate::testutil::TempDir;

    fn packages(tmp: &TempDir) -> Packages {
        let bins = fake_bin_dir(
            &tmp.path().join("bins"),
            &["notifysvc", "nfy", crate::capi::RUNTIME],
        );
        make_packages(&spec_for(&bins), &tmp.path().join("dist")).unwrap()
    }

    #[test]
    fn flash_to_a_directory_installs_and_verifies_every_file() {
        let tmp = TempDir::new();
        let pkgs = packages(&tmp);
        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        run(&pkgs.install, &Dest::Dir(root.clone())).unwrap();
        let bin = root.join("opt/nfy/bin/notifysvc");
        assert_eq!(fs::read(&bin).unwrap(), fake_binary("notifysvc"));
        assert_eq!(bin.metadata().unwrap().permissions().mode() & 0o777, 0o755);
        let cfg = root.join("opt/nfy/etc/notify.cfg.sample");
        assert_eq!(cfg.metadata().unwrap().permissions().mode() & 0o777, 0o644);
        // The runtime library of C and C++ apps comes with the server.
        let lib = root.join(crate::capi::RUNTIME_PATH);
        assert_eq!(fs::read(&lib).unwrap(), fake_binary(crate::capi::RUNTIME));
        assert_eq!(lib.metadata().unwrap().permissions().mode() & 0o777, 0o755);
        let manifest = fs::read_to_string(root.join("opt/nfy/MANIFEST")).unwrap();
        assert!(manifest.contains("  opt/nfy/bin/nfy\n"), "{manifest}");
        assert!(!manifest.contains("notifysvc-verix"), "{manifest}");
        // No staging leftovers.
        assert!(!root.join("opt/nfy/bin/notifysvc.nfy-new").exists());

        // Installing again replaces files in place.
        fs::write(&bin, b"old").unwrap();
        run(&pkgs.install, &Dest::Dir(root.clone())).unwrap();
        assert_eq!(fs::read(&bin).unwrap(), fake_binary("notifysvc"));

        // The removal package takes everything away, and only that.
        fs::write(root.join("opt/keep"), b"not ours").unwrap();
        run(&pkgs.removal, &Dest::Dir(root.clone())).unwrap();
        assert!(!root.join("opt/nfy").exists());
        assert!(root.join("opt/keep").exists());
    }

    #[test]
    fn verification_notices_a_file_changed_on_the_destination() {
        let tmp = TempDir::new();
        let pkgs = packages(&tmp);
        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        run(&pkgs.install, &Dest::Dir(root.clone())).unwrap();
        let pkg = Package::from_bytes(&fs::read(&pkgs.install).unwrap()).unwrap();
        verify_dir(&pkg.files, &root).unwrap();
        let mut changed = fake_binary("nfy");
        *changed.last_mut().unwrap() ^= 1;
        fs::write(root.join("opt/nfy/bin/nfy"), changed).unwrap();
        assert_eq!(
            verify_dir(&pkg.files, &root),
            Err(PackageError::HashMismatch("opt/nfy/bin/nfy".into()))
        );
        fs::remove_file(root.join("opt/nfy/bin/nfy")).unwrap();
        assert_eq!(
            verify_dir(&pkg.files, &root),
            Err(PackageError::Missing("opt/nfy/bin/nfy".into()))
        );
    }

    #[test]
    fn tampered_package_is_refused_before_anything_is_copied() {
        let tmp = TempDir::new();
        let pkgs = packages(&tmp);
        // Re-pack the package with one binary changed and the old manifest.
        let mut files = crate::package::read_tgz(&fs::read(&pkgs.install).unwrap()).unwrap();
        let bin = files
            .iter_mut()
            .find(|f| f.path == "opt/nfy/bin/notifysvc")
            .unwrap();
        bin.data = fake_binary("notifysvc, with a backdoor");
        let tampered = tmp.path().join("tampered.tgz");
        fs::write(&tampered, crate::package::write_tgz(&files, 0).unwrap()).unwrap();

        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        let err = run(&tampered, &Dest::Dir(root.clone())).unwrap_err();
        assert!(
            matches!(&err, Error::Package(PackageError::SizeMismatch { path, .. }) if path == "opt/nfy/bin/notifysvc"),
            "{err}"
        );
        assert!(err.to_string().contains("nothing was copied"), "{err}");
        assert_eq!(
            fs::read_dir(&root).unwrap().count(),
            0,
            "something was copied"
        );

        // Same size, different bytes: the hash catches it.
        let bin = files
            .iter_mut()
            .find(|f| f.path == "opt/nfy/bin/notifysvc")
            .unwrap();
        bin.data = fake_binary("notifysvX");
        fs::write(&tampered, crate::package::write_tgz(&files, 0).unwrap()).unwrap();
        let err = run(&tampered, &Dest::Dir(root.clone())).unwrap_err();
        assert!(
            matches!(&err, Error::Package(PackageError::HashMismatch(p)) if p == "opt/nfy/bin/notifysvc"),
            "{err}"
        );
        assert_eq!(
            fs::read_dir(&root).unwrap().count(),
            0,
            "something was copied"
        );
    }

    #[test]
    fn binaries_for_another_target_are_refused_before_anything_is_copied() {
        let tmp = TempDir::new();
        let pkgs = packages(&tmp);
        // Swap in an x86-64 binary and make the manifest match it: only the
        // target check can catch it.
        let mut files = crate::package::read_tgz(&fs::read(&pkgs.install).unwrap()).unwrap();
        files.retain(|f| f.path != crate::package::MANIFEST_PATH);
        let bin = files
            .iter_mut()
            .find(|f| f.path == "opt/nfy/bin/notifysvc")
            .unwrap();
        bin.data = crate::dist::tests::fake_binary_for("x86_64-unknown-linux-gnu", "notifysvc");
        let manifest = crate::package::Manifest::of(&files).render("x86 inside");
        files.push(FileEntry {
            path: crate::package::MANIFEST_PATH.into(),
            mode: 0o644,
            data: manifest.into_bytes(),
        });
        let wrong = tmp.path().join("wrong.tgz");
        fs::write(&wrong, crate::package::write_tgz(&files, 0).unwrap()).unwrap();

        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        let err = run(&wrong, &Dest::Dir(root.clone())).unwrap_err();
        assert!(
            matches!(&err, Error::Package(PackageError::WrongBinary { path, .. }) if path == "opt/nfy/bin/notifysvc"),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("nothing was copied"), "{text}");
        assert!(text.contains("built for x86-64"), "{text}");
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
    }

    #[test]
    fn symbolic_links_on_the_destination_are_not_followed() {
        let tmp = TempDir::new();
        let pkgs = packages(&tmp);
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("opt")).unwrap();
        let err = run(&pkgs.install, &Dest::Dir(root)).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn missing_destination_directory_is_an_error() {
        let tmp = TempDir::new();
        let pkgs = packages(&tmp);
        let err = run(&pkgs.install, &Dest::Dir(tmp.path().join("nope"))).unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
    }

    #[test]
    fn ssh_urls_are_parsed() {
        let ssh = |user: Option<&str>, host: &str, port, path: &str| {
            Dest::Ssh(SshDest {
                user: user.map(str::to_string),
                host: host.into(),
                port,
                path: path.into(),
            })
        };
        assert_eq!(
            parse_dest("ssh://root@terminal:2222/mnt/flash").unwrap(),
            ssh(Some("root"), "terminal", Some(2222), "/mnt/flash")
        );
        assert_eq!(
            parse_dest("ssh://10.0.0.7").unwrap(),
            ssh(None, "10.0.0.7", None, "/")
        );
        assert_eq!(
            parse_dest("ssh://usr1@[fe80::1%eth0]:22/").unwrap(),
            ssh(Some("usr1"), "fe80::1%eth0", Some(22), "/")
        );
        assert_eq!(
            parse_dest("/mnt/img").unwrap(),
            Dest::Dir("/mnt/img".into())
        );
        for bad in [
            "ssh://",
            "ssh://-oProxyCommand=x/",
            "ssh://host:0/",
            "ssh://host:99999/",
            "ssh://fe80::1/",
            "ssh://host/a b",
            "ssh://host/a/../b",
            "ssh://host/$(reboot)",
            "ssh://bad;user@host/",
            "http://host/",
        ] {
            assert!(parse_dest(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ssh_install_commands_are_built_for_the_destination() {
        let tmp = TempDir::new();
        let pkgs = packages(&tmp);
        let pkg = Package::from_bytes(&fs::read(&pkgs.install).unwrap()).unwrap();
        let Dest::Ssh(dest) = parse_dest("ssh://root@term:2222/mnt/rootfs").unwrap() else {
            panic!("not ssh")
        };
        let staging = Path::new("/tmp/stage");
        let steps = ssh_plan(&pkg, &dest, staging);
        let argv: Vec<String> = steps.iter().map(|s| s.argv.join(" ")).collect();
        assert_eq!(
            argv,
            [
                "ssh -p 2222 root@term mkdir -p -- /mnt/rootfs/etc/logrotate.d /mnt/rootfs/opt/nfy /mnt/rootfs/opt/nfy/bin /mnt/rootfs/opt/nfy/etc /mnt/rootfs/opt/nfy/lib /mnt/rootfs/usr/lib/systemd/system",
                "scp -p -P 2222 /tmp/stage/etc/logrotate.d/notifysvc.nfy-new root@term:/mnt/rootfs/etc/logrotate.d/",
                "scp -p -P 2222 /tmp/stage/opt/nfy/MANIFEST.nfy-new /tmp/stage/opt/nfy/VERSION.nfy-new root@term:/mnt/rootfs/opt/nfy/",
                "scp -p -P 2222 /tmp/stage/opt/nfy/bin/nfy.nfy-new /tmp/stage/opt/nfy/bin/notifysvc.nfy-new /tmp/stage/opt/nfy/bin/start-notifysvc.nfy-new root@term:/mnt/rootfs/opt/nfy/bin/",
                "scp -p -P 2222 /tmp/stage/opt/nfy/etc/notify.cfg.sample.nfy-new root@term:/mnt/rootfs/opt/nfy/etc/",
                "scp -p -P 2222 /tmp/stage/opt/nfy/lib/libvfiipc.so.nfy-new root@term:/mnt/rootfs/opt/nfy/lib/",
                "scp -p -P 2222 /tmp/stage/usr/lib/systemd/system/notifysvc.service.nfy-new root@term:/mnt/rootfs/usr/lib/systemd/system/",
                "ssh -p 2222 root@term cd /mnt/rootfs && mv -f -- etc/logrotate.d/notifysvc.nfy-new etc/logrotate.d/notifysvc && mv -f -- opt/nfy/VERSION.nfy-new opt/nfy/VERSION && mv -f -- opt/nfy/bin/nfy.nfy-new opt/nfy/bin/nfy && mv -f -- opt/nfy/bin/notifysvc.nfy-new opt/nfy/bin/notifysvc && mv -f -- opt/nfy/bin/start-notifysvc.nfy-new opt/nfy/bin/start-notifysvc && mv -f -- opt/nfy/etc/notify.cfg.sample.nfy-new opt/nfy/etc/notify.cfg.sample && mv -f -- opt/nfy/lib/libvfiipc.so.nfy-new opt/nfy/lib/libvfiipc.so && mv -f -- usr/lib/systemd/system/notifysvc.service.nfy-new usr/lib/systemd/system/notifysvc.service && mv -f -- opt/nfy/MANIFEST.nfy-new opt/nfy/MANIFEST",
                "ssh -p 2222 root@term cd /mnt/rootfs && sha256sum -- etc/logrotate.d/notifysvc opt/nfy/MANIFEST opt/nfy/VERSION opt/nfy/bin/nfy opt/nfy/bin/notifysvc opt/nfy/bin/start-notifysvc opt/nfy/etc/notify.cfg.sample opt/nfy/lib/libvfiipc.so usr/lib/systemd/system/notifysvc.service",
            ]
        );
        // The remote command is one argument: ssh hands it to the remote shell.
        assert_eq!(steps[0].argv.len(), 5);
        let Check::Hashes(expected) = &steps[8].check else {
            panic!("last step must verify hashes")
        };
        assert_eq!(expected.len(), pkg.files.len());

        // The staged files the scp commands name are the ones stage() writes.
        let stage_dir = tmp.path().join("stage");
        stage(&pkg, &stage_dir).unwrap();
        for s in &steps[1..7] {
            for src in &s.argv[4..s.argv.len() - 1] {
                let rel = Path::new(src).strip_prefix(staging).unwrap();
                assert!(stage_dir.join(rel).is_file(), "{src} not staged");
            }
        }
    }

    #[test]
    fn ssh_removal_commands_and_hash_check() {
        let tmp = TempDir::new();
        let pkgs = packages(&tmp);
        let pkg = Package::from_bytes(&fs::read(&pkgs.removal).unwrap()).unwrap();
        let Dest::Ssh(dest) = parse_dest("ssh://term/").unwrap() else {
            panic!("not ssh")
        };
        let steps = ssh_plan(&pkg, &dest, Path::new("/unused"));
        assert_eq!(steps.len(), 2);
        assert_eq!(&steps[0].argv[..2], ["ssh", "term"]);
        let rm = &steps[0].argv[2];
        assert!(
            rm.starts_with(
                "cd / && rm -f -- etc/logrotate.d/notifysvc opt/nfy/MANIFEST opt/nfy/VERSION "
            ),
            "{rm}"
        );
        assert!(rm.contains(" opt/nfy/bin/notifysvc-verix "), "{rm}");
        assert!(rm.contains(" opt/nfy/lib/libvfiipc.so "), "{rm}");
        assert!(
            rm.ends_with(
                "&& { rmdir -- opt/nfy/bin opt/nfy/etc opt/nfy/lib opt/nfy 2>/dev/null || true; }"
            ),
            "{rm}"
        );
        assert_eq!(steps[1].check, Check::Absent);

        let h = sha256(b"x");
        let expected = vec![("opt/nfy/a".to_string(), h)];
        assert!(check_hashes(&format!("{}  opt/nfy/a\n", hex(&h)), &expected).is_ok());
        assert_eq!(
            check_hashes(&format!("{}  opt/nfy/a\n", hex(&sha256(b"y"))), &expected),
            Err(PackageError::HashMismatch("opt/nfy/a".into()))
        );
        assert_eq!(
            check_hashes("", &expected),
            Err(PackageError::Missing("opt/nfy/a".into()))
        );
    }
}
