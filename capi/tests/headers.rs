//! The headers themselves: `JSObject` round trips under every C++
//! standard and strict warnings, the deprecated overloads warn, and the
//! library exports exactly the functions `nfy.h` declares.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{build, crate_dir, run_compiler, tools, Link, Program};

/// Generates a locale with a decimal comma for the JSObject test
/// (`localedef`, from Debian's `locales`), in `dir`; false when not
/// possible here.
fn decimal_comma_locale(dir: &std::path::Path) -> bool {
    Command::new("localedef")
        .args(["-i", "de_DE", "-f", "UTF-8"])
        .arg(dir.join("de_DE.UTF-8"))
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn jsobject_round_trips_under_every_standard() {
    let locales = tempfile::tempdir().unwrap();
    let have_locale = decimal_comma_locale(locales.path());
    let variants: &[&[&str]] = &[
        &["-std=c++98"],
        &["-std=c++11"],
        &["-std=c++17"],
        &["-std=c++20"],
        &["-std=c++11", "-fno-exceptions"],
        &["-std=c++17", "-O2"],
    ];
    std::thread::scope(|s| {
        for flags in variants {
            let locales = locales.path();
            s.spawn(move || {
                let exe = build("cpp/jsobject_test.cpp", flags, Link::Shared);
                let locpath = vec![("LOCPATH".to_owned(), locales.display().to_string())];
                let out = common::run_ok(&exe, &[], &locpath);
                assert!(out.contains("jsobject ok"), "{flags:?}: {out}");
                if have_locale {
                    assert!(out.contains("locale test ran"), "{flags:?}: {out}");
                }
            });
        }
    });
    if !have_locale {
        common::skip(
            "jsobject locale",
            "localedef cannot make de_DE.UTF-8 (install locales)",
        );
    }
}

/// Warnings beyond `-Wall -Wextra` that careful applications enable; our
/// headers must not trigger them.
const STRICT: &[&str] = &[
    "-Wpedantic",
    "-Wshadow",
    "-Wconversion",
    "-Wsign-conversion",
    "-Wold-style-cast",
    "-Wcast-qual",
    "-Wcast-function-type",
    "-Wfloat-equal",
    "-Wundef",
];

#[test]
fn the_headers_compile_strictly_under_every_standard() {
    let t = tools();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("strict.cpp");
    // Every declaration used once, every assignment operator instantiated;
    // the application's own DllSpec survives the headers.
    std::fs::write(
        &src,
        r#"#define DllSpec app_dllspec
#include <ipc/notify.h>
#ifndef DllSpec
#error DllSpec lost
#endif
#if __cplusplus >= 201103L
#define NP nullptr
#else
#define NP 0
#endif
static void cb(void *, const std::string &, const std::string &, const std::string &,
               const vfiipc::JSObject &, unsigned) {}
static void obs(void *, const std::string &, const std::string &, const std::string &, unsigned) {}
enum Color { Red, Green };
int use_everything() {
   using namespace vfiipc;
   ipcSetAppID("x");
   JSObject o;
   o = true; o = 'c'; o = static_cast<signed char>(1); o = static_cast<unsigned char>(1);
   o = static_cast<short>(1); o = static_cast<unsigned short>(1); o = 1; o = 1u; o = 1L;
   o = 1UL; o = static_cast<long long>(1); o = static_cast<unsigned long long>(1); o = 1.0f;
   o = 1.0; o = static_cast<long double>(1); o = "s"; o = std::string("s"); o = Green;
   o("a")[1] = o;
   int r = ipcNotify("to", "id", o) + ipcNotify("to", "id", JSObject(), 1u, "from");
   r += ipcRegisterNotificationCB("id", cb, NP) + ipcRegisterNotificationCB("id", cb, NP, 1, "to");
   r += ipcUnregisterNotificationCB("id", cb) + ipcUnregisterNotificationCB("id", cb, NP, "to");
   r += ipcRegisterUnicastError(cb, NP) + ipcUnregisterUnicastError(cb, NP);
   r += ipcRegisterObserver(obs, NP) + ipcUnregisterObserver(obs, NP);
   r += ipcNotificationServer() + ipcNotificationServer("cfg");
   NotifyResult all[] = {NOTIFY_OK, NOTIFY_ERR_SERVER, NOTIFY_ERR_APP_ID, NOTIFY_ERR_PERMISSION,
                         NOTIFY_ERR_CONFIG_FILE, NOTIFY_ERR_CONFIG_SYNTAX};
   return r + static_cast<int>(sizeof all) + static_cast<int>(ipcGetAppID().size());
}
"#,
    )
    .unwrap();
    let include = format!("-I{}", crate_dir().join("include").display());
    for std in ["c++98", "c++03", "c++11", "c++14", "c++17", "c++20"] {
        let mut args: Vec<String> = common::WARNINGS.iter().map(|w| w.to_string()).collect();
        args.push(format!("-std={std}"));
        args.extend(STRICT.iter().map(|w| w.to_string()));
        if std == "c++98" || std == "c++03" {
            // `long long` is C++11; the vendor's header uses it too.
            args.push("-Wno-long-long".into());
        } else {
            args.push("-Wzero-as-null-pointer-constant".into());
        }
        args.extend([
            include.clone(),
            "-c".into(),
            src.display().to_string(),
            "-o".into(),
            dir.path().join(format!("{std}.o")).display().to_string(),
        ]);
        run_compiler(&t.cxx, &args);
    }
}

#[test]
fn the_deprecated_overloads_warn() {
    let t = tools();
    let dir = tempfile::tempdir().unwrap();
    for call in [
        "ipcUnregisterNotificationCB(\"id\")",
        "ipcUnregisterNotificationCB(\"id\", \"to\")",
        "ipcUnregisterUnicastError()",
        "ipcUnregisterObserver()",
    ] {
        let src = dir.path().join("deprecated.cpp");
        std::fs::write(
            &src,
            format!("#include <ipc/notify.h>\nint f() {{ return vfiipc::{call}; }}\n"),
        )
        .unwrap();
        let out = Command::new(&t.cxx)
            .args(common::WARNINGS)
            .arg(format!("-I{}", crate_dir().join("include").display()))
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(dir.path().join("deprecated.o"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{call} compiled without a warning");
        assert!(stderr.contains("deprecated"), "{call}: {stderr}");
    }
}

#[test]
fn the_library_exports_exactly_the_c_abi() {
    let t = tools();
    let header = std::fs::read_to_string(crate_dir().join("include/nfy/nfy.h")).unwrap();
    // Every `nfy_name(` in the header is a function it declares.
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let declared: BTreeSet<String> = header
        .match_indices("nfy_")
        .filter(|(at, _)| !header[..*at].ends_with(ident))
        .filter_map(|(at, _)| {
            let rest = &header[at..];
            let name = &rest[..rest.find(|c: char| !ident(c)).unwrap_or(rest.len())];
            rest[name.len()..].starts_with('(').then(|| name.to_owned())
        })
        .collect();
    assert!(declared.contains("nfy_notify"), "{declared:?}");
    let nm = t.cxx.replace("g++", "nm");
    let out = Command::new(&nm)
        .args(["-D", "--defined-only"])
        .arg(t.lib_dir.join("libvfiipc.so"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{nm}");
    let exported: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|s| !s.starts_with('_') || s.starts_with("_ZN"))
        .map(str::to_owned)
        .collect();
    let c_abi: BTreeSet<String> = exported
        .iter()
        .filter(|s| s.starts_with("nfy_"))
        .cloned()
        .collect();
    assert_eq!(c_abi, declared);
    // Nothing else of ours: no Rust or C++ symbols.
    let other: Vec<&String> = exported.difference(&c_abi).collect();
    assert!(other.is_empty(), "also exported: {other:?}");
    // Programs record it by this name, however they were linked.
    let dynamic = Command::new(t.cxx.replace("g++", "readelf"))
        .arg("-d")
        .arg(t.lib_dir.join("libvfiipc.so"))
        .output()
        .unwrap();
    let dynamic = String::from_utf8_lossy(&dynamic.stdout);
    assert!(dynamic.contains("soname: [libvfiipc.so]"), "{dynamic}");
}

#[test]
fn a_cpp_app_links_the_static_library() {
    let exe = build("cpp/jsobject_test.cpp", &["-std=c++11"], Link::Static);
    let mut app = Program::start(&exe, &[], &[]);
    assert!(app.success().contains("jsobject ok"));
}
