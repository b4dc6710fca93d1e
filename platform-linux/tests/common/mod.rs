//! Test support shared by the integration tests: a harness that runs a
//! real `notifysvc` process on a free port and a private socket path,
//! waits until it accepts, and kills it on drop; and, re-exported from
//! `nfy-test-support`, the raw JSON-protocol client written from the spec
//! alone ([`JsonClient`], frames, message bodies), [`DEADLINE`],
//! [`skip`] and [`wait_exit`].

// Each test crate uses a different subset of these helpers; and this is
// test code, where failing loudly is the point.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use nfy_test_support::wire::*;
pub use nfy_test_support::{skip, wait_exit, DEADLINE};

/// A TCP port nobody listens on right now (the kernel's pick).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The next message `c` receives, which must be a `kind` (`notify`,
/// `unicast_error`) for notification `id`; panics after [`DEADLINE`].
pub fn expect_kind(c: &mut JsonClient, kind: &str, id: &str) -> serde_json::Value {
    let v = c
        .recv(DEADLINE)
        .unwrap()
        .unwrap_or_else(|| panic!("no {kind} {id} within {DEADLINE:?}"));
    assert_eq!(
        (v["type"].as_str(), v["notification"].as_str()),
        (Some(kind), Some(id)),
        "{v}"
    );
    v
}

/// How to start a `notifysvc` for a test.
pub struct ServerBuilder {
    dir: tempfile::TempDir,
    port: Option<u16>,
    socket: Option<PathBuf>,
    config: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    uid: Option<u32>,
    fd_limit: Option<u32>,
}

impl ServerBuilder {
    /// Runs the server with this limit on open files (`ulimit -n`, set by
    /// a shell that then execs the server, so the pid stays the same).
    pub fn fd_limit(mut self, limit: u32) -> Self {
        self.fd_limit = Some(limit);
        self
    }

    /// Uses this port instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Uses this socket path instead of one in the private directory.
    pub fn socket(mut self, path: &Path) -> Self {
        self.socket = Some(path.to_owned());
        self
    }

    /// Passes this configuration file (default: an empty one, so the
    /// machine's default locations do not matter).
    pub fn config(mut self, path: &Path) -> Self {
        self.config = Some(path.to_owned());
        self
    }

    /// Writes `text` as the configuration file and passes it.
    pub fn config_text(self, text: &str) -> Self {
        let path = self.dir.path().join("notify.cfg");
        fs::write(&path, text).unwrap();
        self.config(&path)
    }

    /// Adds command-line arguments.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Runs the server as this user id (and group id).
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }

    /// The private directory of this server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, port: u16, log: &Path) -> Command {
        let socket = self
            .socket
            .clone()
            .unwrap_or_else(|| self.dir.path().join("notify.sock"));
        let config = self.config.clone().unwrap_or_else(|| {
            let empty = self.dir.path().join("empty.cfg");
            fs::write(&empty, "").unwrap();
            empty
        });
        let mut cmd = match self.fd_limit {
            None => Command::new(env!("CARGO_BIN_EXE_notifysvc")),
            Some(limit) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_notifysvc"));
                sh
            }
        };
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--socket")
            .arg(&socket)
            .args(&self.args)
            .arg(&config)
            .env_remove("NFY_LOGMASK")
            .env_remove("NFY_PORT")
            .env_remove("NFY_SOCKET")
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(log).unwrap());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(uid) = self.uid {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(uid);
        }
        cmd
    }

    /// Runs the server to completion (for start-up failures): its exit
    /// status and stderr. Panics if it is still running after
    /// [`DEADLINE`] (it then gets killed).
    pub fn run_to_exit(self) -> (ExitStatus, String) {
        let port = self.port.unwrap_or_else(free_port);
        let log = self.dir.path().join("stderr.log");
        let mut child = self.command(port, &log).spawn().unwrap();
        let status = wait_exit(&mut child, DEADLINE).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "notifysvc did not exit; log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            )
        });
        (status, fs::read_to_string(&log).unwrap_or_default())
    }

    /// Starts the server and waits until both its Unix socket and its TCP
    /// port accept connections. When no port was given, a free one is
    /// picked (and another one if it was taken meanwhile).
    pub fn start(self) -> Server {
        let socket = self
            .socket
            .clone()
            .unwrap_or_else(|| self.dir.path().join("notify.sock"));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = self.port.unwrap_or_else(free_port);
            let log = self.dir.path().join(format!("stderr-{attempt}.log"));
            let mut child = self.command(port, &log).spawn().unwrap();
            match wait_accepting(&mut child, &socket, port) {
                Ok(()) => {
                    return Server {
                        child,
                        port,
                        socket,
                        log,
                        dir: self.dir,
                    }
                }
                Err(status) => {
                    let text = fs::read_to_string(&log).unwrap_or_default();
                    let port_race = self.port.is_none()
                        && text.contains("another notifysvc is running on port");
                    if port_race && attempt < 5 {
                        continue;
                    }
                    panic!("notifysvc did not start ({status:?}); log:\n{text}");
                }
            }
        }
    }
}

/// Polls until the server accepts on both endpoints; `Err` with the exit
/// status (None: still running at the deadline) otherwise.
fn wait_accepting(child: &mut Child, socket: &Path, port: u16) -> Result<(), Option<ExitStatus>> {
    let deadline = Instant::now() + DEADLINE;
    let tcp: SocketAddr = ([127, 0, 0, 1], port).into();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(Some(status));
        }
        if UnixStream::connect(socket).is_ok() && TcpStream::connect(tcp).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A running `notifysvc`; killed on drop.
pub struct Server {
    child: Child,
    /// Its TCP port.
    pub port: u16,
    /// Its Unix socket.
    pub socket: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Server {
    /// A builder with a private temporary directory.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            dir: tempfile::tempdir().unwrap(),
            port: None,
            socket: None,
            config: None,
            args: Vec::new(),
            env: Vec::new(),
            uid: None,
            fd_limit: None,
        }
    }

    /// Starts a server with the defaults of [`Server::builder`].
    pub fn start() -> Server {
        Server::builder().start()
    }

    /// Its loopback TCP address.
    pub fn tcp_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// A JSON client over the Unix socket.
    pub fn unix_client(&self) -> JsonClient {
        JsonClient::unix(&self.socket).unwrap()
    }

    /// A JSON client over TCP loopback.
    pub fn tcp_client(&self) -> JsonClient {
        JsonClient::tcp(self.tcp_addr()).unwrap()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle` `times` times or more; false at
    /// the [`DEADLINE`].
    pub fn wait_log_count(&self, needle: &str, times: usize) -> bool {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if self.log().matches(needle).count() >= times {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until the log holds `needle`; panics with the log at the
    /// [`DEADLINE`].
    pub fn expect_log(&self, needle: &str) {
        assert!(
            self.wait_log_count(needle, 1),
            "the log never showed {needle:?}:\n{}",
            self.log()
        );
    }

    /// Its private directory (holds the log, the socket and configs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its report (`nfy status`), over its Unix socket.
    pub fn report(&self) -> nfy_linux::client::ServerReport {
        nfy_linux::client::server_report(
            &nfy_linux::client::ServerAddr::unix(&self.socket),
            DEADLINE,
        )
        .unwrap()
    }

    /// Polls its report until `done` holds; panics with the last report
    /// and the log at the [`DEADLINE`].
    pub fn report_until(
        &self,
        what: &str,
        done: impl Fn(&nfy_linux::client::ServerReport) -> bool,
    ) -> nfy_linux::client::ServerReport {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let r = self.report();
            if done(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "never {what}: {r:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// True when it is running and both endpoints accept connections.
    pub fn accepts(&mut self) -> bool {
        self.is_running()
            && UnixStream::connect(&self.socket).is_ok()
            && TcpStream::connect(self.tcp_addr()).is_ok()
    }

    /// Sends `signal` (and returns at once).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// Sends SIGHUP and waits until the log holds one more `needle` than
    /// before (the line the reload ends with); panics with the log at the
    /// [`DEADLINE`].
    pub fn reload(&self, needle: &str) {
        let before = self.log().matches(needle).count();
        self.signal(nix::sys::signal::Signal::SIGHUP);
        assert!(
            self.wait_log_count(needle, before + 1),
            "no new {needle:?} after SIGHUP; log:\n{}",
            self.log()
        );
    }

    /// Sends `signal` and waits for the exit status.
    pub fn stop_with(&mut self, signal: nix::sys::signal::Signal) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
        wait_exit(&mut self.child, DEADLINE)
            .unwrap_or_else(|| panic!("notifysvc ignored {signal:?}; log:\n{}", self.log()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
