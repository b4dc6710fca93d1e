//! The build integration a C++ developer expects: with the library
//! installed in the package's layout (`<prefix>/lib`, `include`,
//! `lib/pkgconfig/vfiipc.pc`, `lib/cmake/vfiipc/`), `pkg-config` and
//! CMake's `find_package(vfiipc)` build programs that run.
//! (`cargo xtask dist` puts the same files in the same layout under
//! `opt/nfy/`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{crate_dir, run_compiler, run_ok, skip, tools};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Installs the library, headers, `.pc` and CMake files under `prefix`.
fn stage(prefix: &Path) {
    let t = tools();
    let lib = prefix.join("lib");
    fs::create_dir_all(lib.join("pkgconfig")).unwrap();
    fs::create_dir_all(lib.join("cmake/vfiipc")).unwrap();
    for name in ["libvfiipc.so", "libvfiipc.a"] {
        fs::copy(t.lib_dir.join(name), lib.join(name)).unwrap();
    }
    copy_tree(&crate_dir().join("include"), &prefix.join("include"));
    let pkg = crate_dir().join("pkg");
    let versioned = |name: &str| {
        fs::read_to_string(pkg.join(name))
            .unwrap()
            .replace("@VERSION@", VERSION)
    };
    fs::write(lib.join("pkgconfig/vfiipc.pc"), versioned("vfiipc.pc.in")).unwrap();
    fs::copy(
        pkg.join("vfiipcConfig.cmake"),
        lib.join("cmake/vfiipc/vfiipcConfig.cmake"),
    )
    .unwrap();
    fs::write(
        lib.join("cmake/vfiipc/vfiipcConfigVersion.cmake"),
        versioned("vfiipcConfigVersion.cmake.in"),
    )
    .unwrap();
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Compiles the JSObject test program with `flags` into `exe`.
fn compile_with(flags: &str, exe: &Path) {
    let mut args: Vec<String> = common::WARNINGS.iter().map(|w| w.to_string()).collect();
    args.push(format!("-I{}", crate_dir().join("tests/cpp").display()));
    args.push(
        crate_dir()
            .join("tests/cpp/jsobject_test.cpp")
            .display()
            .to_string(),
    );
    args.extend(flags.split_whitespace().map(str::to_owned));
    args.extend(["-o".to_owned(), exe.display().to_string()]);
    run_compiler(&tools().cxx, &args);
}

#[test]
fn pkg_config_builds_apps() {
    if !have("pkg-config") {
        skip("pkg_config_builds_apps", "pkg-config is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sysroot = dir.path().join("sysroot");
    let prefix = sysroot.join("opt/nfy");
    stage(&prefix);
    let pkg_config = |args: &[&str]| {
        let mut cmd = Command::new("pkg-config");
        cmd.env_remove("PKG_CONFIG_PATH")
            .env_remove("PKG_CONFIG_SYSROOT_DIR")
            .env("PKG_CONFIG_LIBDIR", prefix.join("lib/pkgconfig"))
            .args(args);
        cmd
    };
    assert_eq!(
        output(&mut pkg_config(&["--modversion", "vfiipc"])).trim(),
        VERSION
    );
    let static_flags = output(&mut pkg_config(&["--static", "--libs", "vfiipc"]));
    assert!(static_flags.contains("-ldl"), "{static_flags}");

    // As the README says for an SDK sysroot: paths into the sysroot, the
    // terminal's rpath.
    let flags = output(
        pkg_config(&["--cflags", "--libs", "vfiipc"]).env("PKG_CONFIG_SYSROOT_DIR", &sysroot),
    );
    assert!(
        flags.contains(&format!("-I{}/include", prefix.display())),
        "{flags}"
    );
    assert!(flags.contains("-Wl,-rpath,/opt/nfy/lib"), "{flags}");
    let exe = dir.path().join("app-sysroot");
    compile_with(&flags, &exe);
    let lib = vec![(
        "LD_LIBRARY_PATH".to_owned(),
        prefix.join("lib").display().to_string(),
    )];
    assert!(run_ok(&exe, &[], &lib).contains("jsobject ok"));

    // Unpacked elsewhere: the prefix moved.
    let flags = output(&mut pkg_config(&[
        &format!("--define-variable=prefix={}", prefix.display()),
        "--cflags",
        "--libs",
        "vfiipc",
    ]));
    assert!(
        flags.contains(&format!("-L{}/lib", prefix.display())),
        "{flags}"
    );
    let exe = dir.path().join("app-moved");
    compile_with(&flags, &exe);
    assert!(run_ok(&exe, &[], &lib).contains("jsobject ok"));
}

#[test]
fn cmake_find_package_builds_apps() {
    if !have("cmake") {
        skip("cmake_find_package_builds_apps", "cmake is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("opt/nfy");
    stage(&prefix);
    let project = dir.path().join("project");
    fs::create_dir_all(&project).unwrap();
    let tests = crate_dir().join("tests/cpp");
    fs::write(
        project.join("CMakeLists.txt"),
        format!(
            r#"cmake_minimum_required(VERSION 3.13)
project(terminal_app CXX)
find_package(vfiipc {VERSION} REQUIRED)
# A version of another major is refused.
find_package(vfiipc 99 QUIET)
if(vfiipc_FOUND)
  message(FATAL_ERROR "vfiipc 99 was accepted")
endif()
find_package(vfiipc {VERSION} REQUIRED)
add_executable(app "{tests}/jsobject_test.cpp")
target_include_directories(app PRIVATE "{tests}")
target_compile_options(app PRIVATE -Wall -Wextra -Werror)
target_link_libraries(app PRIVATE vfiipc::vfiipc)
add_executable(app_static "{tests}/jsobject_test.cpp")
target_include_directories(app_static PRIVATE ${{vfiipc_INCLUDE_DIRS}} "{tests}")
target_link_libraries(app_static PRIVATE vfiipc::vfiipc_static)
"#,
            tests = tests.display()
        ),
    )
    .unwrap();
    let build = dir.path().join("build");
    output(
        Command::new("cmake")
            .arg("-S")
            .arg(&project)
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
            .arg(format!("-DCMAKE_CXX_COMPILER={}", tools().cxx)),
    );
    output(Command::new("cmake").arg("--build").arg(&build));
    for app in ["app", "app_static"] {
        assert!(run_ok(&build.join(app), &[], &[]).contains("jsobject ok"));
    }
    // The shared one needs the library by its SONAME, not by path.
    let needed = output(
        Command::new(tools().cxx.replace("g++", "readelf"))
            .args(["-d".as_ref(), build.join("app").as_os_str()]),
    );
    assert!(needed.contains("[libvfiipc.so]"), "{needed}");
}
