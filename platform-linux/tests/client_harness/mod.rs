//! Test harness for the client tests: a notification server to talk to.
//!
//! When the package has the `notifysvc` binary, the tests start the real
//! server (`CARGO_BIN_EXE_notifysvc`) on a private socket and port;
//! otherwise (or with `NFY_TEST_SERVER=inproc`) they use a small in-test
//! server: `nfy_core::broker::Broker` behind a Unix listener, one thread
//! per connection, writing under the broker lock. Both speak the same
//! protocol, so the tests are the same.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nfy_core::broker::{Broker, ConnId, Outbox, PeerKind, QueueFull};
use nfy_core::msg::{self, Encoding, Message};
use nfy_core::whitelist::Whitelist;
use nfy_core::wire::{self, Decoded, FrameDecoder, HEADER_LEN};
use nfy_linux::client::ServerAddr;

/// Generous bound for anything that should happen "soon".
pub const LONG: Duration = Duration::from_secs(10);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A private directory for one test's socket.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("nfy-t-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` until true or [`LONG`] passes (for conditions with no
/// event to wait on, e.g. "the client has reconnected").
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// A running server (real or in-test).
pub struct TestServer {
    pub socket: PathBuf,
    pub port: u16,
    kind: Kind,
}

enum Kind {
    Real(Child),
    InProc(InProc),
    Stopped,
}

fn real_binary() -> Option<&'static str> {
    if std::env::var("NFY_TEST_SERVER").as_deref() == Ok("inproc") {
        return None;
    }
    option_env!("CARGO_BIN_EXE_notifysvc")
}

impl TestServer {
    /// Starts a server on a fresh socket path and port.
    pub fn start(tag: &str) -> TestServer {
        let socket = temp_dir(tag).join("notify.sock");
        let port = free_port();
        Self::start_at(socket, port)
    }

    /// Starts a server on this socket path and port.
    pub fn start_at(socket: PathBuf, port: u16) -> TestServer {
        let kind = match real_binary() {
            Some(bin) => {
                let child = Command::new(bin)
                    .arg("--socket")
                    .arg(&socket)
                    .arg("--port")
                    .arg(port.to_string())
                    .env_remove("NFY_SOCKET")
                    .env_remove("NFY_PORT")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                eventually("notifysvc to listen", || {
                    UnixStream::connect(&socket).is_ok()
                });
                Kind::Real(child)
            }
            None => Kind::InProc(InProc::start(&socket, port)),
        };
        TestServer { socket, port, kind }
    }

    /// The address clients use: the socket only (no TCP fallback, so a
    /// stopped server is really unreachable).
    pub fn addr(&self) -> ServerAddr {
        ServerAddr::unix(&self.socket)
    }

    /// Stops the server (connections are closed).
    pub fn stop(&mut self) {
        match std::mem::replace(&mut self.kind, Kind::Stopped) {
            Kind::Real(mut child) => {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status();
                let deadline = Instant::now() + LONG;
                loop {
                    if child.try_wait().unwrap().is_some() {
                        break;
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                let _ = std::fs::remove_file(&self.socket);
            }
            Kind::InProc(s) => s.stop(),
            Kind::Stopped => {}
        }
    }

    /// Starts it again on the same socket and port.
    pub fn restart(&mut self) {
        self.stop();
        let again = Self::start_at(self.socket.clone(), self.port);
        *self = again;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

// ----- the in-test server -------------------------------------------------

type TestBroker = Broker<256, 1024, 4, 2>;

/// A connection's stream, Unix or TCP.
trait Conn: Read + Write + Send + 'static {
    fn dup(&self) -> Box<dyn Conn>;
    fn close(&self);
}

impl Conn for UnixStream {
    fn dup(&self) -> Box<dyn Conn> {
        Box::new(self.try_clone().unwrap())
    }
    fn close(&self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

impl Conn for std::net::TcpStream {
    fn dup(&self) -> Box<dyn Conn> {
        Box::new(self.try_clone().unwrap())
    }
    fn close(&self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

struct Shared {
    broker: TestBroker,
    conns: HashMap<ConnId, Box<dyn Conn>>,
}

struct Out<'a> {
    conns: &'a mut HashMap<ConnId, Box<dyn Conn>>,
}

impl Outbox for Out<'_> {
    fn send(&mut self, conn: ConnId, encoding: Encoding, m: &Message<'_>) -> Result<(), QueueFull> {
        let mut buf = vec![0u8; HEADER_LEN + 4096 + param_len(m)];
        let Ok(n) =
            wire::encode_frame(&mut buf, encoding.msg_id(), |b| msg::encode(m, encoding, b))
        else {
            return Ok(());
        };
        if let Some(s) = self.conns.get_mut(&conn) {
            let _ = s.write_all(&buf[..n]);
        }
        Ok(())
    }
}

fn param_len(m: &Message<'_>) -> usize {
    match m {
        Message::Notify(n) | Message::UnicastError(n) => n.parameter.as_str().len() * 2,
        _ => 0,
    }
}

struct InProc {
    path: PathBuf,
    port: u16,
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Shared>>,
    accept: Option<JoinHandle<()>>,
    accept_tcp: Option<JoinHandle<()>>,
}

fn accept_loop<S: Conn>(
    incoming: impl Iterator<Item = std::io::Result<S>>,
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Shared>>,
) {
    for stream in incoming {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let conn = {
            let mut g = shared.lock().unwrap();
            let conn = g.broker.connect(PeerKind::Local).unwrap();
            g.conns.insert(conn, stream.dup());
            conn
        };
        let shared = Arc::clone(&shared);
        thread::spawn(move || serve(shared, conn, Box::new(stream)));
    }
}

impl InProc {
    fn start(path: &Path, port: u16) -> InProc {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).unwrap();
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Mutex::new(Shared {
            broker: Broker::new(Whitelist::new(), Default::default()),
            conns: HashMap::new(),
        }));
        let accept = {
            let (stop, shared) = (Arc::clone(&stop), Arc::clone(&shared));
            thread::spawn(move || accept_loop(listener.incoming(), stop, shared))
        };
        let accept_tcp = {
            let (stop, shared) = (Arc::clone(&stop), Arc::clone(&shared));
            thread::spawn(move || accept_loop(tcp.incoming(), stop, shared))
        };
        InProc {
            path: path.to_owned(),
            port,
            stop,
            shared,
            accept: Some(accept),
            accept_tcp: Some(accept_tcp),
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.path);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        for t in [self.accept.take(), self.accept_tcp.take()]
            .into_iter()
            .flatten()
        {
            t.join().unwrap();
        }
        let _ = std::fs::remove_file(&self.path);
        let mut g = self.shared.lock().unwrap();
        for (_, s) in g.conns.drain() {
            s.close();
        }
    }
}

fn serve(shared: Arc<Mutex<Shared>>, conn: ConnId, mut stream: Box<dyn Conn>) {
    let mut dec = FrameDecoder::new(vec![0u8; HEADER_LEN + (1 << 20)]);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let (used, out) = dec.feed(rest);
            if let Some(Decoded::Frame(frame)) = out {
                let mut g = shared.lock().unwrap();
                let Shared { broker, conns } = &mut *g;
                broker.handle_frame(conn, frame, &mut Out { conns });
            }
            rest = &rest[used..];
        }
    }
    let mut g = shared.lock().unwrap();
    let Shared { broker, conns } = &mut *g;
    broker.disconnect(conn, &mut Out { conns });
    conns.remove(&conn);
}
