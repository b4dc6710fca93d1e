//! The harness of the C and C++ tests: compiles the programs in
//! `tests/cpp` and `tests/c` with `g++`/`gcc` against our headers and the
//! library Cargo built for this test run, runs a real `notifysvc`, and runs
//! the programs with bounded waits, killing what it started by PID.
//!
//! The library: a test binary lives in `target/<profile>/deps/`, where
//! Cargo also writes `libvfiipc.so` and `libvfiipc.a` when it builds the
//! crate for the test (the crate's `rlib` type makes it do so before any
//! integration test). The harness copies the shared library next to the
//! programs it compiles, which find it through `$ORIGIN`: so they run from
//! anywhere, as any user (the permission test runs one as `nobody`).
//!
//! The compilers: `NFY_TEST_CXX` / `NFY_TEST_CC` when set, else `g++` /
//! `gcc`, or `arm-linux-gnueabihf-g++` / `-gcc` when the tests themselves
//! are ARM binaries (`cargo xtask cross --test`, under qemu).

// Each test file uses a different subset; and this is test code, where
// failing loudly is the point.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use nfy_test_support::{skip, wait_exit, DEADLINE};
use nfy_tests::server::LogLines;

/// The crate's directory (headers, test sources).
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Compilers, the library and where compiled programs go.
pub struct Tools {
    /// The C++ compiler.
    pub cxx: String,
    /// The C compiler.
    pub cc: String,
    /// Where Cargo wrote `libvfiipc.so` and `libvfiipc.a`.
    pub lib_dir: PathBuf,
    /// Compiled programs and the copy of `libvfiipc.so` they load.
    pub out: tempfile::TempDir,
    compiled: Mutex<HashMap<Vec<String>, Arc<OnceLock<PathBuf>>>>,
}

/// The compilers of the target the tests run on.
fn compiler(var: &str, host: &str) -> String {
    if let Some(c) = std::env::var_os(var).filter(|c| !c.is_empty()) {
        return c.to_string_lossy().into_owned();
    }
    if cfg!(target_arch = "arm") {
        format!("arm-linux-gnueabihf-{host}")
    } else {
        host.to_owned()
    }
}

/// The tools, found once per test process.
pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let lib_dir = exe.parent().unwrap().to_owned();
        let so = lib_dir.join("libvfiipc.so");
        assert!(
            so.exists(),
            "{} is missing: Cargo builds it with the crate (crate-type rlib + cdylib)",
            so.display()
        );
        let cxx = compiler("NFY_TEST_CXX", "g++");
        let cc = compiler("NFY_TEST_CC", "gcc");
        for c in [&cxx, &cc] {
            let ok = Command::new(c)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "cannot run {c}: install it (`.ci/run` installs g++, gcc and g++-arm-linux-gnueabihf)"
            );
        }
        let out = tempfile::Builder::new()
            .prefix("nfy-capi-")
            .tempdir()
            .unwrap();
        fs::set_permissions(out.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::copy(&so, out.path().join("libvfiipc.so")).unwrap();
        Tools {
            cxx,
            cc,
            lib_dir,
            out,
            compiled: Mutex::new(HashMap::new()),
        }
    })
}

/// Warnings our headers must compile without, in every program. (On ARM,
/// `-Wno-psabi` silences GCC's notes that std::vector's parameter passing
/// changed in GCC 7.1, which concern libstdc++, not us.)
pub const WARNINGS: &[&str] = if cfg!(target_arch = "arm") {
    &["-Wall", "-Wextra", "-Werror", "-Wno-psabi"]
} else {
    &["-Wall", "-Wextra", "-Werror"]
};

/// Runs a compiler; panics with its output when it fails.
pub fn run_compiler(compiler: &str, args: &[String]) {
    let out = Command::new(compiler).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{compiler} {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How a program links the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// `-lvfiipc` against the copy of `libvfiipc.so` next to the program.
    Shared,
    /// `libvfiipc.a` and what the Rust standard library needs.
    Static,
}

/// Compiles `source` (relative to `tests/`, `.c` with the C compiler) with
/// `flags` into a program linked to the library; each combination once per
/// test process.
pub fn build(source: &str, flags: &[&str], link: Link) -> PathBuf {
    let t = tools();
    let mut key: Vec<String> = vec![source.to_owned(), format!("{link:?}")];
    key.extend(flags.iter().map(|f| f.to_string()));
    let cell = Arc::clone(t.compiled.lock().unwrap().entry(key.clone()).or_default());
    cell.get_or_init(|| {
        static BUILT: AtomicUsize = AtomicUsize::new(0);
        let stem = Path::new(source).file_stem().unwrap().to_string_lossy();
        let n = BUILT.fetch_add(1, Ordering::Relaxed);
        let exe = t.out.path().join(format!("{stem}-{n}"));
        let is_c = source.ends_with(".c");
        let tests = crate_dir().join("tests");
        let mut args: Vec<String> = WARNINGS.iter().map(|w| w.to_string()).collect();
        args.extend(flags.iter().map(|f| f.to_string()));
        args.push(format!("-I{}", crate_dir().join("include").display()));
        args.push(format!("-I{}", tests.join("cpp").display()));
        args.push(tests.join(source).display().to_string());
        match link {
            Link::Shared => {
                args.push(format!("-L{}", t.out.path().display()));
                args.push("-lvfiipc".into());
                args.push("-Wl,-rpath,$ORIGIN".into());
            }
            Link::Static => {
                args.push(t.lib_dir.join("libvfiipc.a").display().to_string());
                args.extend(["-lutil", "-ldl", "-lm"].map(String::from));
            }
        }
        args.extend(["-pthread", "-lrt", "-o"].map(String::from));
        args.push(exe.display().to_string());
        run_compiler(if is_c { &t.cc } else { &t.cxx }, &args);
        exe
    })
    .clone()
}

/// A C++ program of `tests/cpp` in C++11, linked to the shared library.
pub fn cpp(name: &str) -> PathBuf {
    build(&format!("cpp/{name}.cpp"), &["-std=c++11"], Link::Shared)
}

/// A TCP port nobody listens on right now (the kernel's pick).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `notifysvc` on a private socket and a free port, with an empty
/// configuration; stopped by SIGTERM on drop.
pub struct Server {
    child: Option<Child>,
    /// Its private directory.
    pub dir: tempfile::TempDir,
    /// The Unix socket.
    pub socket: PathBuf,
    /// The TCP port.
    pub port: u16,
    log: PathBuf,
}

impl Server {
    /// Starts one and waits until it accepts.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server {
            child: None,
            socket: dir.path().join("notify.sock"),
            port: free_port(),
            log: dir.path().join("notifysvc.log"),
            dir,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let config = self.dir.path().join("empty.cfg");
        fs::write(&config, "").unwrap();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_nfy-capi-notifysvc"))
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--socket")
            .arg(&self.socket)
            .arg(&config)
            .env("RUST_LOG", "info")
            .env_remove("NFY_LOGMASK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + DEADLINE;
        while UnixStream::connect(&self.socket).is_err() {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "notifysvc did not start ({exited:?}); log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The environment that points a client at it.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("NFY_SOCKET".into(), self.socket.display().to_string()),
            ("NFY_PORT".into(), self.port.to_string()),
        ]
    }

    /// Its address, for a Rust client.
    pub fn addr(&self) -> nfy_linux::client::ServerAddr {
        nfy_linux::client::ServerAddr {
            unix: Some(self.socket.clone()),
            tcp: None,
            tls: None,
        }
    }

    /// Stops it (SIGTERM, killed after [`DEADLINE`]).
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop(child, "notifysvc");
        }
    }

    /// Stops it and starts it again on the same socket and port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM by PID, then a bounded wait, then SIGKILL.
fn stop(mut child: Child, what: &str) -> Option<ExitStatus> {
    if child.try_wait().unwrap().is_none() {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
    match wait_exit(&mut child, DEADLINE) {
        Some(status) => Some(status),
        None => {
            eprintln!("{what} ignored SIGTERM: killed");
            let _ = child.kill();
            child.wait().ok()
        }
    }
}

/// The environment of a client that finds no server: a socket path that
/// does not exist and a port nobody listens on.
pub fn no_server_env(dir: &Path) -> Vec<(String, String)> {
    vec![
        (
            "NFY_SOCKET".into(),
            dir.join("absent.sock").display().to_string(),
        ),
        ("NFY_PORT".into(), free_port().to_string()),
    ]
}

/// A running test program: its stdout and stderr lines are collected.
pub struct Program {
    child: Option<Child>,
    name: String,
    /// Lines written to stdout.
    pub stdout: Arc<LogLines>,
    /// Lines written to stderr (the library's log among them).
    pub stderr: Arc<LogLines>,
}

impl Program {
    /// Starts `exe` with `args` in the environment `env` (added to the
    /// test's, minus the log and server variables).
    pub fn start(exe: &Path, args: &[&str], env: &[(String, String)]) -> Program {
        Self::start_with(exe, args, env, |_| {})
    }

    /// [`Program::start`], with a last change to the command.
    pub fn start_with(
        exe: &Path,
        args: &[&str],
        env: &[(String, String)],
        adjust: impl FnOnce(&mut Command),
    ) -> Program {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .env_remove("NFY_SOCKET")
            .env_remove("NFY_PORT")
            .env_remove("NFY_LOGMASK")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        adjust(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let stdout = LogLines::collect(child.stdout.take().unwrap());
        let stderr = LogLines::collect(child.stderr.take().unwrap());
        Program {
            child: Some(child),
            name: exe.file_name().unwrap().to_string_lossy().into_owned(),
            stdout,
            stderr,
        }
    }

    /// Waits for a stdout line containing `needle`; panics with the
    /// program's output after [`DEADLINE`].
    pub fn expect_line(&self, needle: &str) -> String {
        self.stdout
            .wait_after(0, &[needle], DEADLINE)
            .unwrap_or_else(|| panic!("{}: no line with {needle:?}\n{}", self.name, self.output()))
    }

    /// What it wrote, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout.text(),
            self.stderr.text()
        )
    }

    /// Waits until it exits (at most [`DEADLINE`], then kills it) and
    /// returns its status, with all its output read.
    pub fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("already waited for");
        let status = match wait_exit(&mut child, DEADLINE) {
            Some(s) => s,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not exit in time\n{}", self.name, self.output());
            }
        };
        self.stdout.wait_end(DEADLINE);
        self.stderr.wait_end(DEADLINE);
        status
    }

    /// Waits until it exits with status 0 and returns its stdout.
    pub fn success(&mut self) -> String {
        let status = self.wait();
        assert!(
            status.success(),
            "{}: {status}\n{}",
            self.name,
            self.output()
        );
        self.stdout.text()
    }

    /// Stops it with SIGTERM (killed after [`DEADLINE`]).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let child = self.child.take()?;
        stop(child, &self.name)
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `exe` to completion, expecting status 0: its stdout.
pub fn run_ok(exe: &Path, args: &[&str], env: &[(String, String)]) -> String {
    Program::start(exe, args, env).success()
}
