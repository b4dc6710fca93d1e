//! A real server process for one test: the profile's server binary on a
//! port the kernel picks (`--port 0`, read back from its log) and a Unix
//! socket in a private directory, with its stderr log collected so tests
//! can wait for (and count) log lines.
//!
//! Readiness is an event, not a delay: [`ServerProcess::start`] returns
//! once the server logged its `ready` line, which it does after every
//! listener is open. Dropping a `ServerProcess` sends SIGTERM and waits.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::target::Target;
use crate::DEADLINE;
pub use nfy_test_support::wait_exit;

/// The lines a process wrote to stderr, shared with the thread reading
/// them.
#[derive(Debug, Default)]
pub struct LogLines {
    state: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl LogLines {
    /// Collects `reader`'s lines on a thread until it ends.
    pub fn collect(reader: impl std::io::Read + Send + 'static) -> Arc<LogLines> {
        let log = Arc::new(LogLines::default());
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let mut state = sink.state.lock().unwrap();
                state.0.push(line);
                sink.changed.notify_all();
            }
            sink.state.lock().unwrap().1 = true;
            sink.changed.notify_all();
        });
        log
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.state.lock().unwrap().0.clone()
    }

    /// Every line so far, joined (for failure messages).
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// How many lines so far (a mark for [`LogLines::wait_after`]).
    pub fn len(&self) -> usize {
        self.state.lock().unwrap().0.len()
    }

    /// True when nothing was logged yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lines so far containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits for a line after the first `mark` lines containing every one
    /// of `needles`; `None` when the stream ended or `timeout` passed.
    pub fn wait_after(&self, mark: usize, needles: &[&str], timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap();
        let mut seen = mark;
        loop {
            if let Some(line) = state
                .0
                .iter()
                .skip(seen)
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return Some(line.clone());
            }
            seen = state.0.len().max(mark);
            let left = deadline.saturating_duration_since(Instant::now());
            if state.1 || left.is_zero() {
                return None;
            }
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Waits until the stream ended (the process closed stderr), at most
    /// `timeout`; true when it did.
    pub fn wait_end(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap();
        while !state.1 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
        true
    }

    /// [`LogLines::wait_after`] from the start, panicking with the whole
    /// log after [`DEADLINE`].
    pub fn expect(&self, needles: &[&str]) -> String {
        self.expect_after(0, needles)
    }

    /// [`LogLines::wait_after`], panicking with the whole log after
    /// [`DEADLINE`].
    pub fn expect_after(&self, mark: usize, needles: &[&str]) -> String {
        self.wait_after(mark, needles, DEADLINE)
            .unwrap_or_else(|| panic!("no log line with {needles:?}; log:\n{}", self.text()))
    }
}

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct ServerSpec {
    /// The configuration file's text; `None` passes an empty file (so the
    /// machine's default locations never matter).
    pub config: Option<String>,
    /// Passes this path as CONFIG_FILE instead (it may not exist).
    pub config_path: Option<PathBuf>,
    /// More command-line arguments.
    pub args: Vec<String>,
}

/// A running server process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<Child>,
    /// Its log (stderr).
    pub log: Arc<LogLines>,
    tcp: Vec<SocketAddr>,
    socket: PathBuf,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `target`'s server with an empty configuration.
    pub fn start(target: &Target) -> ServerProcess {
        Self::start_with(target, ServerSpec::default())
    }

    /// Starts `target`'s server as `spec` says and waits until it is
    /// ready; panics with its log when it exits instead.
    pub fn start_with(target: &Target, spec: ServerSpec) -> ServerProcess {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("notify.sock");
        let config = spec.config_path.clone().unwrap_or_else(|| {
            let path = dir.path().join("notify.cfg");
            std::fs::write(&path, spec.config.as_deref().unwrap_or("")).unwrap();
            path
        });
        let mut child = Self::command(target, &socket, &config, &spec.args)
            .spawn()
            .unwrap();
        let log = LogLines::collect(child.stderr.take().unwrap());
        let mut server = ServerProcess {
            child: Some(child),
            log,
            tcp: Vec::new(),
            socket,
            config,
            dir,
        };
        if server.log.wait_after(0, &[" ready ("], DEADLINE).is_none() {
            let status = server.stop();
            panic!(
                "{} did not start ({status:?}); log:\n{}",
                target.server_bin,
                server.log.text()
            );
        }
        for line in server.log.lines() {
            if let Some(rest) = line.split("listening on tcp ").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                server.tcp.push(addr.parse().unwrap());
            }
        }
        assert!(!server.tcp.is_empty(), "no TCP listener logged");
        server
    }

    /// Runs `target`'s server until it exits by itself (start-up failures,
    /// `--help`): its exit status and log. Panics when it is still running
    /// after [`DEADLINE`].
    pub fn run_to_exit(target: &Target, args: &[&str]) -> (ExitStatus, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(target.server_bin)
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("NFY_LOGMASK")
            .env("NFY_SOCKET", dir.path().join("notify.sock"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = LogLines::collect(child.stderr.take().unwrap());
        let status = wait_exit(&mut child, DEADLINE).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} {args:?} did not exit", target.server_bin)
        });
        log.wait_end(DEADLINE);
        (status, log.text())
    }

    fn command(target: &Target, socket: &Path, config: &Path, args: &[String]) -> Command {
        let mut cmd = Command::new(target.server_bin);
        cmd.arg("--port=0")
            .arg("--socket")
            .arg(socket)
            .args(args)
            .arg(config)
            .env("RUST_LOG", "info")
            .env_remove("NFY_LOGMASK")
            .env_remove("NFY_PORT")
            .env_remove("NFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// The TCP addresses it listens on (with the real port).
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp
    }

    /// `127.0.0.1:port`.
    pub fn tcp_v4(&self) -> SocketAddr {
        *self
            .tcp
            .iter()
            .find(|a| a.is_ipv4())
            .expect("no IPv4 listener")
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.tcp_v4().port()
    }

    /// The Unix socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The CONFIG_FILE argument it was given.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Its private directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Stops it with SIGTERM and returns its exit status (killed after
    /// [`DEADLINE`]).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if child.try_wait().ok()?.is_none() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).ok()?);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        match wait_exit(&mut child, DEADLINE) {
            Some(status) => Some(status),
            None => {
                let _ = child.kill();
                child.wait().ok()
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
