//! Terminal download packages: the archive format, the manifest, and the
//! checks that make a package trustworthy before anything is copied.
//!
//! # Format
//!
//! A package is a gzip-compressed POSIX ustar archive whose paths are
//! relative to the terminal's root filesystem. Everything nfy installs lives
//! under [`PREFIX`] (`opt/nfy/`).
//!
//! Every package holds a manifest at [`MANIFEST_PATH`]: a text file with one
//! line per other regular file of the archive,
//!
//! ```text
//! <sha256 in lowercase hex>  <size in bytes>  <path>
//! ```
//!
//! sorted by path; lines starting with `#` are comments. Paths are relative,
//! use `/`, and hold no whitespace, control characters, `.` or `..`
//! components.
//!
//! An **install package** holds [`VERSION_PATH`], one line
//! `notifysvc <version>-<build> <target>`: every ELF file in it, every
//! other file under `opt/nfy/bin/` that is not a `#!` script, and every
//! shared library (`*.so`, `*.so.*`) under `opt/nfy/lib/` must be an
//! executable or shared object for that target (machine, class, byte order,
//! float ABI; [`crate::elf`]), or the package is refused.
//!
//! A **removal package** additionally holds [`REMOVE_PATH`]: the paths the
//! matching install package put on the terminal, one per line, files first,
//! then directories (ending in `/`, deepest first) to remove when empty.
//! `cargo xtask flash` applies it by deleting those paths; its own files are
//! not installed.
//!
//! # Reproducibility
//!
//! [`write_tgz`] makes byte-identical archives from identical inputs: entries
//! sorted by path, every timestamp the same fixed value, owner `root:root`
//! with uid and gid 0, modes 0644/0755 only, and a gzip header without file
//! name and with mtime 0.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Component, Path};

use flate2::read::GzDecoder;
use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

use crate::elf::{self, ElfError};

/// The directory, relative to the terminal's root, that nfy's files live in.
pub const PREFIX: &str = "opt/nfy";
/// Where the manifest is, in every package.
pub const MANIFEST_PATH: &str = "opt/nfy/MANIFEST";
/// Where an install package names its version and target.
pub const VERSION_PATH: &str = "opt/nfy/VERSION";
/// Where a removal package lists what to remove.
pub const REMOVE_PATH: &str = "opt/nfy/REMOVE";
/// Largest total file content a package may unpack to (a guard against
/// archives that would fill memory).
pub const MAX_PACKAGE_BYTES: u64 = 512 * 1024 * 1024;

/// One regular file of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the terminal's root (see [`check_path`]).
    pub path: String,
    /// Permission bits: `0o755` for programs, `0o644` for the rest.
    pub mode: u32,
    /// The content.
    pub data: Vec<u8>,
}

/// What is wrong with a package, found before anything is copied (or, in
/// [`crate::error::Error::Verification`], on the destination afterwards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageError {
    /// The file is not a readable gzip-compressed tar archive.
    NotAnArchive(String),
    /// An entry's path is absolute, climbs out with `..`, or holds
    /// whitespace or control characters.
    UnsafePath(String),
    /// An entry is neither a regular file nor a directory (links, devices).
    UnsupportedEntry(String),
    /// The same path appears twice.
    Duplicate(String),
    /// The package unpacks to more than [`MAX_PACKAGE_BYTES`].
    TooLarge,
    /// The package has no manifest at [`MANIFEST_PATH`].
    NoManifest,
    /// A manifest line is malformed.
    ManifestSyntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The manifest lists a file that is not there.
    Missing(String),
    /// A file is there that the manifest does not list.
    Unlisted(String),
    /// A file's size differs from the manifest's.
    SizeMismatch {
        /// The file.
        path: String,
        /// Size in the manifest.
        expected: u64,
        /// Actual size.
        found: u64,
    },
    /// A file's SHA-256 differs from the manifest's.
    HashMismatch(String),
    /// A file a removal package deletes is still there afterwards.
    StillPresent(String),
    /// The removal list is malformed.
    RemoveSyntax {
        /// 1-based line number.
        line: usize,
    },
    /// An install package without a [`VERSION_PATH`] naming its target:
    /// its binaries cannot be checked.
    NoTarget,
    /// A program or library in the package is not for the package's
    /// target.
    WrongBinary {
        /// The file.
        path: String,
        /// What is wrong with it.
        error: ElfError,
    },
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackageError::NotAnArchive(e) => write!(f, "not a gzip-compressed tar archive: {e}"),
            PackageError::UnsafePath(p) => write!(f, "unsafe path {p:?}"),
            PackageError::UnsupportedEntry(p) => {
                write!(f, "{p:?} is not a regular file or directory")
            }
            PackageError::Duplicate(p) => write!(f, "{p} appears twice"),
            PackageError::TooLarge => write!(f, "unpacks to more than {MAX_PACKAGE_BYTES} bytes"),
            PackageError::NoManifest => write!(f, "no manifest at {MANIFEST_PATH}"),
            PackageError::ManifestSyntax { line, reason } => {
                write!(f, "manifest line {line}: {reason}")
            }
            PackageError::Missing(p) => write!(f, "{p} is in the manifest but missing"),
            PackageError::Unlisted(p) => write!(f, "{p} is not in the manifest"),
            PackageError::SizeMismatch {
                path,
                expected,
                found,
            } => write!(f, "{path} is {found} bytes, the manifest says {expected}"),
            PackageError::HashMismatch(p) => {
                write!(f, "{p} does not match its SHA-256 in the manifest")
            }
            PackageError::StillPresent(p) => write!(f, "{p} is still there after removal"),
            PackageError::RemoveSyntax { line } => {
                write!(f, "{REMOVE_PATH} line {line}: not a safe relative path")
            }
            PackageError::NoTarget => write!(
                f,
                "{VERSION_PATH} is missing or names no target, so the binaries cannot be checked"
            ),
            PackageError::WrongBinary { path, error } => write!(f, "{path}: {error}"),
        }
    }
}

impl std::error::Error for PackageError {}

/// Checks that `path` is a safe package path: relative, `/`-separated,
/// non-empty, no `.` or `..` components, no whitespace or control
/// characters, no `\`.
pub fn check_path(path: &str) -> Result<(), PackageError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        Err(PackageError::UnsafePath(path.to_string()))
    } else {
        Ok(())
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestLine {
    /// SHA-256 of the file.
    pub sha256: [u8; 32],
    /// Size in bytes.
    pub size: u64,
    /// Path relative to the terminal's root.
    pub path: String,
}

/// A parsed manifest, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// The lines, sorted by path.
    pub lines: Vec<ManifestLine>,
}

impl Manifest {
    /// The manifest of `files` (the manifest file itself is skipped).
    pub fn of(files: &[FileEntry]) -> Manifest {
        let mut lines: Vec<ManifestLine> = files
            .iter()
            .filter(|f| f.path != MANIFEST_PATH)
            .map(|f| ManifestLine {
                sha256: sha256(&f.data),
                size: f.data.len() as u64,
                path: f.path.clone(),
            })
            .collect();
        lines.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest { lines }
    }

    /// The manifest as text, with `title` as a leading comment.
    pub fn render(&self, title: &str) -> String {
        let mut out = format!("# {title}\n# sha256  size  path\n");
        for l in &self.lines {
            out.push_str(&format!("{}  {}  {}\n", hex(&l.sha256), l.size, l.path));
        }
        out
    }

    /// Parses manifest text.
    pub fn parse(text: &str) -> Result<Manifest, PackageError> {
        let mut lines = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |reason| PackageError::ManifestSyntax { line, reason };
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = raw.split_whitespace().collect();
            let [hash, size, path] = fields[..] else {
                return Err(err("expected three fields: sha256, size, path"));
            };
            let sha256 = parse_hash(hash).ok_or(err("the SHA-256 is not 64 hex digits"))?;
            let size = size.parse().map_err(|_| err("the size is not a number"))?;
            check_path(path).map_err(|_| err("the path is not a safe relative path"))?;
            if path == MANIFEST_PATH {
                return Err(err("the manifest lists itself"));
            }
            if !seen.insert(path.to_string()) {
                return Err(PackageError::Duplicate(path.to_string()));
            }
            lines.push(ManifestLine {
                sha256,
                size,
                path: path.to_string(),
            });
        }
        lines.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Manifest { lines })
    }

    /// Checks that `files` (without the manifest itself) are exactly the
    /// manifest's files with their sizes and hashes.
    pub fn check(&self, files: &[FileEntry]) -> Result<(), PackageError> {
        for f in files.iter().filter(|f| f.path != MANIFEST_PATH) {
            if !self.lines.iter().any(|l| l.path == f.path) {
                return Err(PackageError::Unlisted(f.path.clone()));
            }
        }
        for l in &self.lines {
            let f = files
                .iter()
                .find(|f| f.path == l.path)
                .ok_or_else(|| PackageError::Missing(l.path.clone()))?;
            l.check(&f.data)?;
        }
        Ok(())
    }
}

impl ManifestLine {
    /// Checks `data` against this line's size and hash.
    pub fn check(&self, data: &[u8]) -> Result<(), PackageError> {
        let found = data.len() as u64;
        if found != self.size {
            return Err(PackageError::SizeMismatch {
                path: self.path.clone(),
                expected: self.size,
                found,
            });
        }
        if sha256(data) != self.sha256 {
            return Err(PackageError::HashMismatch(self.path.clone()));
        }
        Ok(())
    }
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Writes `files` as a reproducible `.tgz` (see the module docs): the
/// directories above every file, then the files, all sorted by path, every
/// entry dated `mtime`.
pub fn write_tgz(files: &[FileEntry], mtime: u64) -> std::io::Result<Vec<u8>> {
    let mut dirs = BTreeSet::new();
    for f in files {
        let mut p = f.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            dirs.insert(format!("{parent}/"));
            p = parent;
        }
    }
    // Directories (ending in `/`) and files in one sorted order: a
    // directory always comes before its content.
    let mut order: Vec<(String, Option<&FileEntry>)> =
        dirs.into_iter().map(|d| (d, None)).collect();
    order.extend(files.iter().map(|f| (f.path.clone(), Some(f))));
    order.sort_by(|a, b| a.0.cmp(&b.0));

    let gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    let mut tar = tar::Builder::new(gz);
    for (path, file) in &order {
        let mut h = tar::Header::new_ustar();
        h.set_path(path)?;
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        h.set_username("root")?;
        h.set_groupname("root")?;
        match file {
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_cksum();
                tar.append(&h, std::io::empty())?;
            }
            Some(f) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if f.mode & 0o111 != 0 { 0o755 } else { 0o644 });
                h.set_size(f.data.len() as u64);
                h.set_cksum();
                tar.append(&h, f.data.as_slice())?;
            }
        }
    }
    let gz = tar.into_inner()?;
    let mut out = gz.finish()?;
    out.flush()?;
    Ok(out)
}

/// Reads the regular files of a `.tgz`, refusing unsafe paths, links and
/// devices, duplicates and oversized content. Directory entries are
/// skipped (directories are implied by the files' paths).
pub fn read_tgz(bytes: &[u8]) -> Result<Vec<FileEntry>, PackageError> {
    let bad = |e: std::io::Error| PackageError::NotAnArchive(e.to_string());
    let mut archive = tar::Archive::new(GzDecoder::new(bytes));
    let mut files: Vec<FileEntry> = Vec::new();
    let mut total: u64 = 0;
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let kind = entry.header().entry_type();
        let raw_path = entry.path().map_err(bad)?.into_owned();
        let path = normalize(&raw_path)?;
        match kind {
            tar::EntryType::Directory | tar::EntryType::XGlobalHeader => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            _ => return Err(PackageError::UnsupportedEntry(path)),
        }
        let size = entry.header().size().map_err(bad)?;
        total = total.saturating_add(size);
        if total > MAX_PACKAGE_BYTES {
            return Err(PackageError::TooLarge);
        }
        let mode = entry.header().mode().map_err(bad)?;
        let mut data = Vec::new();
        entry
            .by_ref()
            .take(size)
            .read_to_end(&mut data)
            .map_err(bad)?;
        if files.iter().any(|f| f.path == path) {
            return Err(PackageError::Duplicate(path));
        }
        files.push(FileEntry {
            path,
            mode: if mode & 0o111 != 0 { 0o755 } else { 0o644 },
            data,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Turns an archive path into a checked package path (`./` prefixes and
/// trailing `/` dropped).
fn normalize(p: &Path) -> Result<String, PackageError> {
    let shown = p.to_string_lossy().into_owned();
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(s) => {
                parts.push(s.to_str().ok_or(PackageError::UnsafePath(shown.clone()))?)
            }
            _ => return Err(PackageError::UnsafePath(shown)),
        }
    }
    let path = parts.join("/");
    check_path(&path).map_err(|_| PackageError::UnsafePath(shown))?;
    Ok(path)
}

/// What a verified package does to a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Install its files.
    Install,
    /// Remove these files, then these directories when empty.
    Removal {
        /// Files to delete.
        files: Vec<String>,
        /// Directories to delete when empty, deepest first (no trailing `/`).
        dirs: Vec<String>,
    },
}

/// A package whose content matches its manifest.
#[derive(Debug, Clone)]
pub struct Package {
    /// Every regular file, the manifest included, sorted by path.
    pub files: Vec<FileEntry>,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// Install or removal.
    pub kind: Kind,
}

impl Package {
    /// Reads and verifies a `.tgz` package: every file safe, listed, of the
    /// listed size and hash, nothing missing.
    pub fn from_bytes(bytes: &[u8]) -> Result<Package, PackageError> {
        let files = read_tgz(bytes)?;
        let manifest_file = files
            .iter()
            .find(|f| f.path == MANIFEST_PATH)
            .ok_or(PackageError::NoManifest)?;
        let text =
            std::str::from_utf8(&manifest_file.data).map_err(|_| PackageError::ManifestSyntax {
                line: 1,
                reason: "not UTF-8",
            })?;
        let manifest = Manifest::parse(text)?;
        manifest.check(&files)?;
        let kind = match files.iter().find(|f| f.path == REMOVE_PATH) {
            None => Kind::Install,
            Some(list) => parse_remove(&list.data)?,
        };
        let pkg = Package {
            files,
            manifest,
            kind,
        };
        if pkg.kind == Kind::Install {
            pkg.check_binaries()?;
        }
        Ok(pkg)
    }

    /// The target triple the package's `VERSION` names.
    pub fn target(&self) -> Option<&str> {
        let version = self.files.iter().find(|f| f.path == VERSION_PATH)?;
        parse_version_target(std::str::from_utf8(&version.data).ok()?)
    }

    /// Checks every program and library against [`Package::target`] (see
    /// the module docs for which files are checked).
    pub fn check_binaries(&self) -> Result<(), PackageError> {
        let target = self.target().ok_or(PackageError::NoTarget)?;
        for f in &self.files {
            if is_program(&f.path, &f.data) {
                elf::check_for_target(&f.data, target).map_err(|error| {
                    PackageError::WrongBinary {
                        path: f.path.clone(),
                        error,
                    }
                })?;
            }
        }
        Ok(())
    }

    /// The files to install: every file, the manifest last (so a terminal
    /// with the new manifest has all the new files).
    pub fn install_order(&self) -> Vec<&FileEntry> {
        let mut v: Vec<&FileEntry> = self
            .files
            .iter()
            .filter(|f| f.path != MANIFEST_PATH)
            .collect();
        v.extend(self.files.iter().filter(|f| f.path == MANIFEST_PATH));
        v
    }
}

/// True for the files an install package's target check covers: ELF files,
/// files in `opt/nfy/bin/` that are not `#!` scripts, and shared libraries
/// (by name) in `opt/nfy/lib/`.
pub fn is_program(path: &str, data: &[u8]) -> bool {
    let under = |dir: &str| path.strip_prefix(PREFIX).and_then(|p| p.strip_prefix(dir));
    let in_bin = under("/bin/").is_some();
    let shared_library = under("/lib/")
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .is_some_and(|name| name.ends_with(".so") || name.contains(".so."));
    elf::is_elf(data) || (in_bin && !data.starts_with(b"#!")) || shared_library
}

/// The [`VERSION_PATH`] line: `notifysvc <version>-<build> <target>`.
pub fn render_version(version: &str, build: &str, target: &str) -> String {
    format!("notifysvc {version}-{build} {target}\n")
}

/// The target of a [`render_version`] line.
pub fn parse_version_target(text: &str) -> Option<&str> {
    let mut words = text.lines().next()?.split_whitespace();
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("notifysvc"), Some(_), Some(target), None) => Some(target),
        _ => None,
    }
}

/// Renders a removal list (see the module docs).
pub fn render_remove(files: &[String], dirs: &[String]) -> String {
    let mut out = String::new();
    for f in files {
        out.push_str(f);
        out.push('\n');
    }
    for d in dirs {
        out.push_str(d);
        out.push_str("/\n");
    }
    out
}

fn parse_remove(data: &[u8]) -> Result<Kind, PackageError> {
    let text = std::str::from_utf8(data).map_err(|_| PackageError::RemoveSyntax { line: 1 })?;
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (path, is_dir) = match line.strip_suffix('/') {
            Some(d) => (d, true),
            None => (line, false),
        };
        check_path(path).map_err(|_| PackageError::RemoveSyntax { line: i + 1 })?;
        if is_dir {
            dirs.push(path.to_string());
        } else {
            files.push(path.to_string());
        }
    }
    Ok(Kind::Removal { files, dirs })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARMHF: &str = "armv7-unknown-linux-gnueabihf";

    pub(crate) fn entry(path: &str, mode: u32, data: &[u8]) -> FileEntry {
        FileEntry {
            path: path.into(),
            mode,
            data: data.to_vec(),
        }
    }

    fn with_manifest(mut files: Vec<FileEntry>) -> Vec<FileEntry> {
        let m = Manifest::of(&files).render("test");
        files.push(entry(MANIFEST_PATH, 0o644, m.as_bytes()));
        files
    }

    #[test]
    fn sha256_matches_the_standard_vector() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn manifest_round_trips_and_is_sorted() {
        let files = vec![
            entry("opt/nfy/b", 0o644, b"bb"),
            entry("opt/nfy/a", 0o755, b"a"),
        ];
        let m = Manifest::of(&files);
        assert_eq!(m.lines[0].path, "opt/nfy/a");
        let text = m.render("title");
        assert!(text.contains(&format!("{}  1  opt/nfy/a\n", hex(&sha256(b"a")))));
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        m.check(&files).unwrap();
    }

    #[test]
    fn manifest_check_names_each_kind_of_mismatch() {
        let files = vec![entry("opt/nfy/a", 0o644, b"abc")];
        let m = Manifest::of(&files);
        assert_eq!(
            m.check(&[entry("opt/nfy/a", 0o644, b"abcd")]),
            Err(PackageError::SizeMismatch {
                path: "opt/nfy/a".into(),
                expected: 3,
                found: 4
            })
        );
        assert_eq!(
            m.check(&[entry("opt/nfy/a", 0o644, b"abd")]),
            Err(PackageError::HashMismatch("opt/nfy/a".into()))
        );
        assert_eq!(m.check(&[]), Err(PackageError::Missing("opt/nfy/a".into())));
        let extra = [files[0].clone(), entry("opt/nfy/x", 0o644, b"")];
        assert_eq!(
            m.check(&extra),
            Err(PackageError::Unlisted("opt/nfy/x".into()))
        );
    }

    #[test]
    fn manifest_syntax_errors_carry_the_line() {
        let good = format!("{}  3  opt/nfy/a", hex(&sha256(b"abc")));
        assert!(Manifest::parse(&format!("# c\n\n{good}\n")).is_ok());
        for (text, reason) in [
            ("abc  3  opt/nfy/a", "the SHA-256 is not 64 hex digits"),
            (&good.replace("  3  ", "  x  "), "the size is not a number"),
            (
                &good.replace("opt/nfy/a", "../etc/passwd"),
                "the path is not a safe relative path",
            ),
            ("only two", "expected three fields: sha256, size, path"),
        ] {
            assert_eq!(
                Manifest::parse(&format!("# c\n{text}\n")),
                Err(PackageError::ManifestSyntax { line: 2, reason }),
                "{text}"
            );
        }
        assert_eq!(
            Manifest::parse(&format!("{good}\n{good}\n")),
            Err(PackageError::Duplicate("opt/nfy/a".into()))
        );
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for p in [
            "",
            "/etc/passwd",
            "a/../b",
            "./a",
            "a//b",
            "a b",
            "a\nb",
            "a\\b",
            "a/",
        ] {
            assert!(check_path(p).is_err(), "{p:?}");
        }
        check_path("opt/nfy/bin/notifysvc").unwrap();
    }

    #[test]
    fn archive_round_trips_with_fixed_metadata() {
        let arm = crate::elf::fake::binary_for(ARMHF, b"");
        let files = with_manifest(vec![
            entry("opt/nfy/bin/nfy", 0o700, &arm),
            entry("opt/nfy/etc/notify.cfg", 0o600, b"# cfg\n"),
        ]);
        let tgz = write_tgz(&files, 0).unwrap();
        // gzip header: magic, deflate, no flags (so no file name), mtime 0.
        assert_eq!(&tgz[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        let mut archive = tar::Archive::new(GzDecoder::new(tgz.as_slice()));
        let mut names = Vec::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 0);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.username().unwrap(), Some("root"));
            names.push((
                e.path().unwrap().to_string_lossy().into_owned(),
                h.mode().unwrap(),
            ));
        }
        assert_eq!(
            names,
            [
                ("opt/".to_string(), 0o755),
                ("opt/nfy/".into(), 0o755),
                ("opt/nfy/MANIFEST".into(), 0o644),
                ("opt/nfy/bin/".into(), 0o755),
                ("opt/nfy/bin/nfy".into(), 0o755),
                ("opt/nfy/etc/".into(), 0o755),
                ("opt/nfy/etc/notify.cfg".into(), 0o644),
            ]
        );
        let back = read_tgz(&tgz).unwrap();
        let mut expected = files.clone();
        expected.sort_by(|a, b| a.path.cmp(&b.path));
        expected[1].mode = 0o755;
        expected[2].mode = 0o644;
        assert_eq!(back, expected);
        // Without a VERSION naming the target, the binaries cannot be checked.
        assert_eq!(
            Package::from_bytes(&tgz).unwrap_err(),
            PackageError::NoTarget
        );
        let mut files = files;
        files.retain(|f| f.path != MANIFEST_PATH);
        files.push(entry(
            VERSION_PATH,
            0o644,
            render_version("1", "b", ARMHF).as_bytes(),
        ));
        let tgz = write_tgz(&with_manifest(files), 0).unwrap();
        let pkg = Package::from_bytes(&tgz).unwrap();
        assert_eq!(pkg.kind, Kind::Install);
        assert_eq!(pkg.target(), Some(ARMHF));
        assert_eq!(pkg.install_order().last().unwrap().path, MANIFEST_PATH);
    }

    #[test]
    fn programs_for_another_target_are_refused() {
        let package = |bin: &[u8], path: &str| {
            let files = with_manifest(vec![
                entry(path, 0o755, bin),
                entry(
                    VERSION_PATH,
                    0o644,
                    render_version("1", "b", ARMHF).as_bytes(),
                ),
                entry("opt/nfy/bin/start-notifysvc", 0o755, b"#!/bin/sh\n"),
            ]);
            Package::from_bytes(&write_tgz(&files, 0).unwrap())
        };
        let x86 = crate::elf::fake::binary_for("x86_64-unknown-linux-gnu", b"");
        let err = package(&x86, "opt/nfy/bin/notifysvc").unwrap_err();
        assert!(
            matches!(&err, PackageError::WrongBinary { path, error: ElfError::WrongTarget { .. } }
                if path == "opt/nfy/bin/notifysvc"),
            "{err}"
        );
        // A library elsewhere is checked too; a program that is not ELF is refused.
        assert!(package(&x86, "opt/nfy/lib/libvfiipc.so").is_err());
        for library in ["opt/nfy/lib/libvfiipc.so", "opt/nfy/lib/libvfiipc.so.1"] {
            let err = package(b"INPUT(-lother)", library).unwrap_err();
            assert!(
                matches!(&err, PackageError::WrongBinary { path, error: ElfError::NotElf }
                    if path == library),
                "{err}"
            );
        }
        package(
            &crate::elf::fake::binary_for(ARMHF, b""),
            "opt/nfy/lib/libvfiipc.so",
        )
        .unwrap();
        let err = package(b"fake binary", "opt/nfy/bin/nfy").unwrap_err();
        assert!(
            matches!(
                &err,
                PackageError::WrongBinary {
                    error: ElfError::NotElf,
                    ..
                }
            ),
            "{err}"
        );
        package(&crate::elf::fake::binary_for(ARMHF, b""), "opt/nfy/bin/nfy").unwrap();
        // Data files are not programs.
        package(b"# cfg", "opt/nfy/etc/notify.cfg.sample").unwrap();
        package(b"prefix=/opt/nfy", "opt/nfy/lib/pkgconfig/vfiipc.pc").unwrap();
    }

    #[test]
    fn version_line_names_the_target() {
        let line = render_version("0.1.0", "0123456789", ARMHF);
        assert_eq!(line, format!("notifysvc 0.1.0-0123456789 {ARMHF}\n"));
        assert_eq!(parse_version_target(&line), Some(ARMHF));
        assert_eq!(parse_version_target("notifysvc 0.1.0\n"), None);
        assert_eq!(parse_version_target("other 1 t\n"), None);
    }

    #[test]
    fn packages_without_or_against_their_manifest_are_refused() {
        let no_manifest = write_tgz(&[entry("opt/nfy/a", 0o644, b"a")], 0).unwrap();
        assert_eq!(
            Package::from_bytes(&no_manifest).unwrap_err(),
            PackageError::NoManifest
        );
        let mut files = with_manifest(vec![entry("opt/nfy/a", 0o644, b"a")]);
        files[0].data = b"b".to_vec();
        let tampered = write_tgz(&files, 0).unwrap();
        assert_eq!(
            Package::from_bytes(&tampered).unwrap_err(),
            PackageError::HashMismatch("opt/nfy/a".into())
        );
        assert!(matches!(
            Package::from_bytes(b"not gzip at all").unwrap_err(),
            PackageError::NotAnArchive(_)
        ));
    }

    /// Builds a tar by hand (the builder refuses bad paths and links).
    fn raw_tar(path: &str, kind: tar::EntryType, data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        {
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, data).unwrap();
        let tar = b.into_inner().unwrap();
        let mut gz = GzBuilder::new().write(Vec::new(), Compression::fast());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn climbing_paths_links_and_devices_are_refused() {
        let up = raw_tar("../../etc/passwd", tar::EntryType::Regular, b"x");
        assert_eq!(
            read_tgz(&up),
            Err(PackageError::UnsafePath("../../etc/passwd".into()))
        );
        let abs = raw_tar("/etc/passwd", tar::EntryType::Regular, b"x");
        assert!(matches!(read_tgz(&abs), Err(PackageError::UnsafePath(_))));
        let link = raw_tar("opt/nfy/l", tar::EntryType::Symlink, b"");
        assert_eq!(
            read_tgz(&link),
            Err(PackageError::UnsupportedEntry("opt/nfy/l".into()))
        );
        let dotted = raw_tar("./opt/nfy/a", tar::EntryType::Regular, b"x");
        assert_eq!(read_tgz(&dotted).unwrap()[0].path, "opt/nfy/a");
    }

    #[test]
    fn removal_list_is_parsed_into_files_and_dirs() {
        let text = render_remove(&["opt/nfy/bin/nfy".into()], &["opt/nfy/bin".into()]);
        assert_eq!(text, "opt/nfy/bin/nfy\nopt/nfy/bin/\n");
        assert_eq!(
            parse_remove(text.as_bytes()).unwrap(),
            Kind::Removal {
                files: vec!["opt/nfy/bin/nfy".into()],
                dirs: vec!["opt/nfy/bin".into()]
            }
        );
        assert_eq!(
            parse_remove(b"# c\n../x\n"),
            Err(PackageError::RemoveSyntax { line: 2 })
        );
    }
}
