//! The bridge tests' harness: a real mosquitto (started here on a free
//! loopback port with a configuration and persistence directory of its
//! own, stopped by PID), real `notifysvc` servers (one per terminal, on
//! their own socket and port) and real `nfy-bridge` processes. Every
//! process is killed when its guard drops; every wait is bounded.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

use std::fs::{self, File};
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nfy_linux::client::{Client, Delivery, Registration, ServerAddr};

/// How long anything may take before the test counts it as hung.
pub const LONG: Duration = Duration::from_secs(20);

/// Where Debian puts mosquitto (not on a user's PATH).
pub fn mosquitto_bin() -> Option<PathBuf> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// True when mosquitto is installed; otherwise says the test is skipped.
/// (CI installs it: `.ci/run`.)
pub fn have_mosquitto(test: &str) -> bool {
    if mosquitto_bin().is_some() {
        return true;
    }
    let why = "mosquitto is not installed (apt-get install mosquitto mosquitto-clients)";
    // As nfy_test_support::skip (not a dependency of this package): under
    // NFY_TEST_STRICT (cargo xtask ci) a skip is a failure.
    if std::env::var_os("NFY_TEST_STRICT").is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("{test} cannot run ({why}), and NFY_TEST_STRICT is set: skips are failures");
    }
    let _ = std::io::stderr().write_all(format!("\n*** SKIPPED: {test}: {why} ***\n").as_bytes());
    false
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends SIGTERM, waits up to 5 s, then SIGKILL.
pub fn terminate(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGKILL, and reap.
pub fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A mosquitto of the test's own.
pub struct Mosquitto {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    extra: String,
}

impl Mosquitto {
    /// Starts one in `dir` (its config, persistence and log live there).
    pub fn start(dir: &Path) -> Mosquitto {
        Self::start_with(dir, "")
    }

    /// With extra configuration lines (a TLS listener, say); the plain
    /// listener is then not added when `extra` starts with `listener`.
    pub fn start_with(dir: &Path, extra: &str) -> Mosquitto {
        let dir = dir.join("mosquitto");
        fs::create_dir_all(&dir).unwrap();
        let mut m = Mosquitto {
            port: free_port(),
            dir,
            child: None,
            extra: extra.to_owned(),
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let listener = if self.extra.starts_with("listener") {
            String::new()
        } else {
            format!("listener {} 127.0.0.1\nallow_anonymous true\n", self.port)
        };
        // Started as root, mosquitto would switch to its own user, who
        // may not write in our directory: stay who we are.
        let user = if nix::unistd::Uid::effective().is_root() {
            "user root\n"
        } else {
            ""
        };
        let conf = format!(
            "{user}{listener}{extra}\npersistence true\npersistence_location {dir}/\n\
             autosave_interval 3600\nmax_inflight_messages 100\nmax_queued_messages 0\n\
             max_queued_bytes 0\nlog_type error\nlog_type warning\nlog_type notice\n\
             log_dest file {dir}/mosquitto.log\n",
            extra = self.extra.replace("{port}", &self.port.to_string()),
            dir = self.dir.display()
        );
        let conf_path = self.dir.join("mosquitto.conf");
        fs::write(&conf_path, conf).unwrap();
        let child = Command::new(mosquitto_bin().unwrap())
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(self.dir.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let port = self.port;
        wait_until("mosquitto to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// A clean restart (SIGTERM: mosquitto saves its sessions and queued
    /// messages), on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `notifysvc` of one terminal.
pub struct Server {
    pub socket: PathBuf,
    pub port: u16,
    child: Child,
}

impl Server {
    pub fn start(dir: &Path, name: &str) -> Server {
        Self::start_with(dir, name, &[])
    }

    /// With extra command-line options (`--max-frame 1024`, say).
    pub fn start_with(dir: &Path, name: &str, extra: &[&str]) -> Server {
        let dir = dir.join(name);
        fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("notify.sock");
        let config = dir.join("notify.cfg");
        fs::write(&config, "").unwrap();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_nfy-bridge-test-notifysvc"))
            .arg("--port")
            .arg(port.to_string())
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .arg(&config)
            .env_remove("NFY_LOGMASK")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(dir.join("notifysvc.log")).unwrap())
            .spawn()
            .unwrap();
        let s = socket.clone();
        wait_until("notifysvc to accept", || UnixStream::connect(&s).is_ok());
        Server {
            socket,
            port,
            child,
        }
    }

    pub fn addr(&self) -> ServerAddr {
        ServerAddr::unix(&self.socket)
    }

    /// A client of this server with app ID `app`.
    pub fn client(&self, app: &str) -> Client {
        let c = Client::connect_to(self.addr()).unwrap();
        c.set_app_id(app).unwrap();
        c
    }

    /// `nfy status` against this server: its output.
    pub fn nfy_status(&self) -> String {
        self.nfy(&["status"])
    }

    /// `nfy status --json` against this server: its output, parsed.
    pub fn nfy_status_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.nfy(&["status", "--json"])).unwrap()
    }

    /// The `nfy` tool against this server: its output.
    fn nfy(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_nfy-bridge-test-nfy"))
            .args(args)
            .env("NFY_SOCKET", &self.socket)
            .env_remove("NFY_PORT")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// One terminal's bridge.
pub struct Bridge {
    pub terminal: String,
    args: Vec<String>,
    config: PathBuf,
    log: PathBuf,
    starts: usize,
    child: Option<Child>,
}

impl Bridge {
    /// Starts the bridge of `terminal` for `server`, with configuration
    /// text `config`, talking to `broker_url`, with these extra options.
    pub fn start(
        dir: &Path,
        terminal: &str,
        server: &Server,
        broker_url: &str,
        config: &str,
        extra: &[&str],
    ) -> Bridge {
        let dir = dir.join(terminal);
        fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("bridge.cfg");
        fs::write(&cfg, config).unwrap();
        let mut args: Vec<String> = vec![
            "--terminal".into(),
            terminal.into(),
            "--broker".into(),
            broker_url.into(),
            "--socket".into(),
            server.socket.display().to_string(),
            "--status-interval".into(),
            "0".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut b = Bridge {
            terminal: terminal.into(),
            args,
            config: cfg,
            log: dir.join("bridge.log"),
            starts: 0,
            child: None,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_nfy-bridge"))
            .args(&self.args)
            .arg(&self.config)
            .env_remove("NFY_LOGMASK")
            .env_remove("NFY_TERMINAL")
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its log holds `needle` `times` times.
    pub fn wait_log(&self, needle: &str, times: usize) {
        wait_until(
            &format!("{needle:?} in {}'s bridge log", self.terminal),
            || self.log().matches(needle).count() >= times,
        );
    }

    /// Waits until it is connected to the broker for the `n`th time.
    pub fn wait_connected(&self, n: usize) {
        self.wait_log("connected to the broker", n);
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill9(&mut c);
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts it again after a kill or stop.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none());
        self.spawn();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A delivery, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub from: String,
    pub to: String,
    pub notification: String,
    pub flags: u32,
    pub parameter: serde_json::Value,
}

impl Got {
    pub fn of(d: &Delivery<'_>) -> Got {
        Got {
            from: d.from.into(),
            to: d.to.into(),
            notification: d.notification.into(),
            flags: d.flags,
            parameter: d.parameter_json(),
        }
    }
}

/// A registration of `c` as `to` (None: its app ID) for `notification`
/// that sends what it gets to the returned receiver.
pub fn listen(
    c: &Client,
    to: Option<&str>,
    notification: &str,
    priority: i32,
) -> (Registration, Receiver<Got>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let f = move |d: &Delivery<'_>| {
        let _ = tx.lock().unwrap().send(Got::of(d));
    };
    let r = match to {
        Some(to) => c.register_as(to, notification, priority, f),
        None => c.register(notification, priority, f),
    }
    .unwrap();
    c.sync().unwrap();
    (r, rx)
}

/// The unicast errors of `c`.
pub fn errors(c: &Client) -> (nfy_linux::client::Handle, Receiver<Got>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let h = c.on_unicast_error(move |d| {
        let _ = tx.lock().unwrap().send(Got::of(d));
    });
    (h, rx)
}

/// Nothing arrives within a grace period (only to check absence, after a
/// later message proved the path works).
pub fn quiet<T: std::fmt::Debug>(rx: &Receiver<T>, ms: u64) {
    if let Ok(x) = rx.recv_timeout(Duration::from_millis(ms)) {
        panic!("unexpected {x:?}");
    }
}

/// Waits until the server of `c` has `n` registrations or more (the
/// bridge's proxies, made once it saw the other terminal's presence).
pub fn wait_registrations(c: &Client, n: u32) {
    wait_until(&format!("{n} registrations"), || {
        c.status().map(|s| s.registrations >= n).unwrap_or(false)
    });
}
