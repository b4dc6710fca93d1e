//! Test support shared by the integration tests: a raw JSON-protocol
//! client written from the spec alone (section 5: `00 4E 46 59`, u32 BE
//! size = 4 + body length, u32 BE message id 0, JSON body), and a harness
//! that runs a real `notifysvc` process on a free port and a private
//! socket path, waits until it accepts, and kills it on drop.
//!
//! It deliberately does not use `nfy-core`'s codecs: it checks the server
//! against the documented protocol, not against our own implementation.

// Each test crate uses a different subset of these helpers; and this is
// test code, where failing loudly is the point.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long anything in a test may take before it counts as hung.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The frame prefix, `"\0NFY"`.
pub const PREFIX: [u8; 4] = [0x00, 0x4E, 0x46, 0x59];

/// Bytes before the body: prefix, size, message id.
pub const HEADER_LEN: usize = 12;

/// A frame with message id `msg_id` around `body`.
pub fn frame_with_id(msg_id: u32, body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(4 + body.len()).expect("body too large for a frame");
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&PREFIX);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&msg_id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A JSON frame (message id 0) around `body`.
pub fn frame(body: &[u8]) -> Vec<u8> {
    frame_with_id(0, body)
}

/// A JSON frame holding `value`.
pub fn json_frame(value: &Value) -> Vec<u8> {
    frame(value.to_string().as_bytes())
}

/// A `register` body.
pub fn register_msg(to: &str, notification: &str, priority: i32) -> Value {
    json!({"type": "register", "to": to, "notification": notification, "priority": priority})
}

/// An `unregister` body.
pub fn unregister_msg(to: &str, notification: &str) -> Value {
    json!({"type": "unregister", "to": to, "notification": notification})
}

/// A `notify` body.
pub fn notify_msg(from: &str, to: &str, notification: &str, flags: u32, parameter: Value) -> Value {
    json!({
        "type": "notify",
        "from": from,
        "to": to,
        "notification": notification,
        "flags": flags,
        "parameter": parameter,
    })
}

/// A frame read back from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct RawFrame {
    /// The message id field.
    pub msg_id: u32,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl RawFrame {
    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "server sent a non-JSON body ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Splits a byte stream into frames. Strict: the server must never send
/// anything but well-formed frames, so a bad prefix is an error here.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame>, String> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        if self.buf[..4] != PREFIX {
            return Err(format!("bad frame prefix {:02x?}", &self.buf[..4]));
        }
        let size = u32::from_be_bytes(self.buf[4..8].try_into().unwrap()) as usize;
        if size < 4 {
            return Err(format!("bad frame size {size}"));
        }
        let total = 8 + size;
        if self.buf.len() < total {
            return Ok(None);
        }
        let msg_id = u32::from_be_bytes(self.buf[8..12].try_into().unwrap());
        let body = self.buf[12..total].to_vec();
        self.buf.drain(..total);
        Ok(Some(RawFrame { msg_id, body }))
    }

    /// Bytes buffered but not yet a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// A stream to the server, Unix or TCP.
pub enum Conn {
    /// Over the Unix socket.
    Unix(UnixStream),
    /// Over TCP.
    Tcp(TcpStream),
}

impl Conn {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.set_read_timeout(t),
            Conn::Tcp(s) => s.set_read_timeout(t),
        }
    }

    fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
        })
    }

    fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.shutdown(how),
            Conn::Tcp(s) => s.shutdown(how),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A client speaking the documented JSON protocol, frame by frame.
pub struct JsonClient {
    conn: Conn,
    reader: FrameReader,
}

impl JsonClient {
    /// Connects over the Unix socket.
    pub fn unix(path: &Path) -> io::Result<JsonClient> {
        Ok(JsonClient::new(Conn::Unix(UnixStream::connect(path)?)))
    }

    /// Connects over TCP.
    pub fn tcp(addr: SocketAddr) -> io::Result<JsonClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(JsonClient::new(Conn::Tcp(stream)))
    }

    /// Wraps a connected TCP stream (e.g. one made inside a network
    /// namespace).
    pub fn from_tcp(stream: TcpStream) -> JsonClient {
        let _ = stream.set_nodelay(true);
        JsonClient::new(Conn::Tcp(stream))
    }

    /// Wraps a connected Unix stream (e.g. one end of a relay).
    pub fn from_unix(stream: UnixStream) -> JsonClient {
        JsonClient::new(Conn::Unix(stream))
    }

    /// A second handle on the same connection with its own frame buffer:
    /// one thread may write through one while another reads the other.
    pub fn try_clone(&self) -> io::Result<JsonClient> {
        Ok(JsonClient::new(self.conn.try_clone()?))
    }

    /// Shuts down the writing side (half-close); reading goes on.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.conn.shutdown(std::net::Shutdown::Write)
    }

    fn new(conn: Conn) -> JsonClient {
        JsonClient {
            conn,
            reader: FrameReader::default(),
        }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.conn.write_all(bytes)
    }

    /// Sends one JSON message.
    pub fn send(&mut self, value: &Value) -> io::Result<()> {
        self.send_raw(&json_frame(value))
    }

    /// Sends `register`.
    pub fn register(&mut self, to: &str, notification: &str, priority: i32) -> io::Result<()> {
        self.send(&register_msg(to, notification, priority))
    }

    /// Sends `unregister`.
    pub fn unregister(&mut self, to: &str, notification: &str) -> io::Result<()> {
        self.send(&unregister_msg(to, notification))
    }

    /// Sends `notify`.
    pub fn notify(
        &mut self,
        from: &str,
        to: &str,
        notification: &str,
        flags: u32,
        parameter: Value,
    ) -> io::Result<()> {
        self.send(&notify_msg(from, to, notification, flags, parameter))
    }

    /// The next frame within `timeout`; `Ok(None)` on timeout, an error of
    /// kind `UnexpectedEof` when the server closed the connection.
    pub fn recv_frame(&mut self, timeout: Duration) -> io::Result<Option<RawFrame>> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 64 * 1024];
        loop {
            if let Some(frame) = self
                .reader
                .next_frame()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                return Ok(Some(frame));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.conn.set_read_timeout(Some(left))?;
            match self.conn.read(&mut buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("server closed ({} bytes pending)", self.reader.buffered()),
                    ))
                }
                Ok(n) => self.reader.push(&buf[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Ok(None)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next message as JSON within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> io::Result<Option<Value>> {
        Ok(self.recv_frame(timeout)?.map(|f| f.json()))
    }

    /// The next message whose `type` is `kind`, skipping others.
    pub fn recv_type(&mut self, kind: &str, timeout: Duration) -> io::Result<Option<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left)? {
                None => return Ok(None),
                Some(v) if v["type"] == kind => return Ok(Some(v)),
                Some(_) => {}
            }
        }
    }

    /// A barrier: registers `app` for a notification private to this
    /// call and sends one to itself; returns once it came back, with every
    /// message received before it. Everything this connection sent earlier
    /// has then been handled by the server (one connection's frames are
    /// handled in order). `app` must be a valid app ID this connection may
    /// use; the registration is removed again.
    pub fn barrier(&mut self, app: &str) -> Vec<Value> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = format!("barrier-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.register(app, &id, i32::MAX).unwrap();
        self.notify(app, app, &id, 0, json!({})).unwrap();
        let deadline = Instant::now() + DEADLINE;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).unwrap() {
                None => panic!("barrier {id} timed out; got before it: {before:?}"),
                Some(v) if v["type"] == "notify" && v["notification"] == id.as_str() => break,
                Some(v) => before.push(v),
            }
        }
        self.unregister(app, &id).unwrap();
        before
    }

    /// Asserts that nothing arrives for `quiet`.
    pub fn expect_nothing(&mut self, quiet: Duration) {
        if let Some(v) = self.recv(quiet).expect("connection failed") {
            panic!("expected nothing, got {v}");
        }
    }

    /// True when the server closed this connection within `timeout`.
    pub fn closed_by_server(&mut self, timeout: Duration) -> bool {
        match self.recv_frame(timeout) {
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
            ),
            Ok(_) => false,
        }
    }
}

/// Reports a skipped test loudly: straight to the process's stderr, past
/// the test harness's output capture, so it shows even when the test
/// "passes".
pub fn skip(test: &str, why: &str) {
    let line = format!("\n*** SKIPPED: {test}: {why} ***\n");
    let _ = io::stderr().write_all(line.as_bytes());
}

/// A TCP port nobody listens on right now (the kernel's pick).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
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

/// Waits until `child` exits, at most `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
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
