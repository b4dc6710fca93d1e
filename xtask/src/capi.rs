//! libvfiipc (crate `nfy-capi`, `capi/`) in `cross` and `dist`: the
//! target's `libvfiipc.so` and `libvfiipc.a`, and its SDK archive
//! `dl.libvfiipc-<version>-<build>.tgz`, written next to the server's
//! packages.
//!
//! The runtime library, [`RUNTIME_PATH`], is also in the server's install
//! package ([`crate::dist`]), so `cargo xtask flash` puts it on the
//! terminal with the server, and the server's removal package removes it.
//!
//! The SDK archive is in the terminal packages' format ([`crate::package`]:
//! paths relative to the terminal's root, a manifest at `opt/nfy/MANIFEST`,
//! reproducible the same way) and holds:
//!
//! | path | what |
//! |---|---|
//! | `opt/nfy/lib/libvfiipc.so` | the shared library (SONAME `libvfiipc.so`), checked to be an ELF file for the target |
//! | `opt/nfy/lib/libvfiipc.a` | the static library |
//! | `opt/nfy/include/nfy/nfy.h`, `opt/nfy/include/ipc/*.h` | the C ABI and the drop-in C++ headers |
//! | `opt/nfy/lib/pkgconfig/vfiipc.pc` | for `pkg-config` (prefix `/opt/nfy`) |
//! | `opt/nfy/lib/cmake/vfiipc/vfiipcConfig*.cmake` | for CMake's `find_package(vfiipc)` (relocatable) |
//!
//! **Decision**: it is the SDK a developer unpacks into a sysroot to build
//! apps, not an install package for `cargo xtask flash`: an install
//! package names its target in `opt/nfy/VERSION` and keeps its manifest at
//! `opt/nfy/MANIFEST`, both of which belong to the server package on the
//! terminal. What a terminal runs, the `.so`, comes with the server
//! package.
//!
//! Under `cross --test` the workspace tests include `nfy-capi`'s: they
//! compile the C and C++ test apps with `arm-linux-gnueabihf-g++`/`-gcc`
//! and run them under qemu.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cmd;
use crate::cross::{self, Profile};
use crate::dist;
use crate::elf;
use crate::error::{Error, Result};
use crate::package::{FileEntry, PREFIX};
use crate::toolchain::Toolchain;

/// The crate that builds the library.
pub const CRATE: &str = "nfy-capi";
/// The library files a build produces, by name.
pub const LIBRARIES: [&str; 2] = [RUNTIME, "libvfiipc.a"];
/// The library apps load at run time.
pub const RUNTIME: &str = "libvfiipc.so";
/// Where the server's install package puts [`RUNTIME`] (apps link with
/// RUNPATH `/opt/nfy/lib`: `capi/pkg/vfiipc.pc.in`).
pub const RUNTIME_PATH: &str = "opt/nfy/lib/libvfiipc.so";

/// Builds the library for the toolchain's target with the same
/// environment and profile as the service binaries.
pub fn build(
    root: &Path,
    tc: &Toolchain,
    env: &[(String, std::ffi::OsString)],
    profile: Profile,
) -> Result<()> {
    let mut c = tc.cargo(root, "build");
    c.envs(env.iter().map(|(k, v)| (k, v)))
        .args(["-p", CRATE, "--lib"]);
    if profile != Profile::Debug {
        c.arg("--release");
    }
    if profile == Profile::Dist {
        cross::dist_env(&mut c, root);
    }
    cmd::run(&mut c)
}

/// The library files in `dir`; warns about each missing one.
pub fn find_libraries(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for name in LIBRARIES {
        let p = dir.join(name);
        match p.metadata() {
            Ok(m) if m.is_file() => {
                eprintln!("cross: {} ({} bytes)", p.display(), m.len());
                found.push((name.to_string(), p));
            }
            _ => eprintln!("warning: {name} is missing from {}", dir.display()),
        }
    }
    found
}

/// Of the libraries [`find_libraries`] found, the runtime one (for the
/// server's install package).
pub fn runtime_of(found: &[(String, PathBuf)]) -> Vec<(String, PathBuf)> {
    found
        .iter()
        .filter(|(n, _)| n == RUNTIME)
        .cloned()
        .collect()
}

/// `dl.libvfiipc-<version>-<build>.tgz`.
pub fn package_name(version: &str, build: &str) -> String {
    format!("dl.libvfiipc-{version}-{build}.tgz")
}

/// The package's files, manifest included, sorted by path: the libraries
/// (read from `libraries`), the headers and the build files of `capi/`.
pub fn package_files(
    capi: &Path,
    spec: &dist::Spec,
    libraries: &[(String, PathBuf)],
) -> Result<Vec<FileEntry>> {
    let mut files = Vec::new();
    for (name, path) in libraries {
        let data = fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let shared = name.ends_with(".so");
        if shared {
            elf::check_for_target(&data, &spec.target).map_err(|error| Error::Binary {
                path: path.clone(),
                error,
            })?;
        }
        let mode = if shared { 0o755 } else { 0o644 };
        files.push(FileEntry {
            path: format!("{PREFIX}/lib/{name}"),
            mode,
            data,
        });
    }
    let include = capi.join("include");
    for (relative, path) in tree(&include, "")? {
        let data = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        files.push(FileEntry {
            path: format!("{PREFIX}/include/{relative}"),
            mode: 0o644,
            data,
        });
    }
    let pkg = capi.join("pkg");
    let read = |name: &str| -> Result<String> {
        let path = pkg.join(name);
        let text = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        Ok(text.replace("@VERSION@", &spec.version))
    };
    for (path, text) in [
        ("lib/pkgconfig/vfiipc.pc", read("vfiipc.pc.in")?),
        (
            "lib/cmake/vfiipc/vfiipcConfig.cmake",
            read("vfiipcConfig.cmake")?,
        ),
        (
            "lib/cmake/vfiipc/vfiipcConfigVersion.cmake",
            read("vfiipcConfigVersion.cmake.in")?,
        ),
    ] {
        files.push(FileEntry {
            path: format!("{PREFIX}/{path}"),
            mode: 0o644,
            data: text.into_bytes(),
        });
    }
    let title = format!(
        "{} for {}",
        package_name(&spec.version, &spec.build),
        spec.target
    );
    dist::with_manifest(files, &title)
}

/// Every file under `dir`, as (path relative to it with `/`, full path),
/// sorted.
fn tree(dir: &Path, relative: &str) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if relative.is_empty() {
            name
        } else {
            format!("{relative}/{name}")
        };
        let path = entry.path();
        if path.is_dir() {
            out.extend(tree(&path, &rel)?);
        } else {
            out.push((rel, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Writes the package into `out_dir`; `None` when `libraries` is empty.
pub fn make_package(
    root: &Path,
    spec: &dist::Spec,
    libraries: &[(String, PathBuf)],
    out_dir: &Path,
) -> Result<Option<PathBuf>> {
    if libraries.is_empty() {
        eprintln!(
            "warning: no libvfiipc was built: no {}",
            package_name(&spec.version, &spec.build)
        );
        return Ok(None);
    }
    let files = package_files(&root.join("capi"), spec, libraries)?;
    fs::create_dir_all(out_dir).map_err(|e| Error::io("create", out_dir, e))?;
    let path = out_dir.join(package_name(&spec.version, &spec.build));
    dist::write_package(&path, &files, spec.mtime)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::tests::{fake_bin_dir, fake_bin_dir_for, spec_for};
    use crate::package::{read_tgz, Manifest, MANIFEST_PATH};
    use crate::testutil::TempDir;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    #[test]
    fn the_package_holds_libraries_headers_and_build_files_reproducibly() {
        let tmp = TempDir::new();
        let libs = fake_bin_dir(&tmp.path().join("libs"), &LIBRARIES);
        let spec = spec_for(&tmp.path().join("no-binaries"));
        let found = find_libraries(&libs);
        let first = make_package(&root(), &spec, &found, &tmp.path().join("a"))
            .unwrap()
            .unwrap();
        let second = make_package(&root(), &spec, &found, &tmp.path().join("b"))
            .unwrap()
            .unwrap();
        assert_eq!(
            first.file_name().unwrap(),
            "dl.libvfiipc-0.1.0-0123456789.tgz"
        );
        assert_eq!(fs::read(&first).unwrap(), fs::read(&second).unwrap());

        let files = read_tgz(&fs::read(&first).unwrap()).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "opt/nfy/MANIFEST",
                "opt/nfy/include/ipc/jsobject.h",
                "opt/nfy/include/ipc/notify.h",
                "opt/nfy/include/nfy/nfy.h",
                "opt/nfy/lib/cmake/vfiipc/vfiipcConfig.cmake",
                "opt/nfy/lib/cmake/vfiipc/vfiipcConfigVersion.cmake",
                "opt/nfy/lib/libvfiipc.a",
                "opt/nfy/lib/libvfiipc.so",
                "opt/nfy/lib/pkgconfig/vfiipc.pc",
            ]
        );
        let manifest = &files[0];
        assert_eq!(manifest.path, MANIFEST_PATH);
        let text = String::from_utf8(manifest.data.clone()).unwrap();
        assert!(text.starts_with(
            "# dl.libvfiipc-0.1.0-0123456789.tgz for armv7-unknown-linux-gnueabihf\n"
        ));
        Manifest::parse(&text).unwrap().check(&files).unwrap();
        let file = |suffix: &str| files.iter().find(|f| f.path.ends_with(suffix)).unwrap();
        let pc = String::from_utf8(file("vfiipc.pc").data.clone()).unwrap();
        assert!(pc.contains("Version: 0.1.0\n"), "{pc}");
        assert!(!pc.contains('@'), "{pc}");
        assert_eq!(file(".so").mode, 0o755);
        assert_eq!(file(".a").mode, 0o644);
    }

    #[test]
    fn a_library_for_another_target_is_refused() {
        let tmp = TempDir::new();
        let libs = fake_bin_dir_for(
            &tmp.path().join("libs"),
            &LIBRARIES,
            "x86_64-unknown-linux-gnu",
        );
        let spec = spec_for(&tmp.path().join("none"));
        let err = make_package(&root(), &spec, &find_libraries(&libs), tmp.path()).unwrap_err();
        assert!(matches!(err, Error::Binary { .. }), "{err}");
        assert!(!tmp
            .path()
            .join(package_name("0.1.0", "0123456789"))
            .exists());
    }

    #[test]
    fn no_libraries_no_package() {
        let tmp = TempDir::new();
        let spec = spec_for(&tmp.path().join("none"));
        assert!(make_package(&root(), &spec, &[], tmp.path())
            .unwrap()
            .is_none());
        assert!(find_libraries(tmp.path()).is_empty());
    }
}
