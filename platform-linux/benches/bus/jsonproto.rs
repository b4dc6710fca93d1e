//! (c) nfy through `notifysvc` with a raw JSON-protocol client over TCP
//! loopback, written here from the spec (section 5): what a program in any
//! language would do with the documented protocol. The same client over
//! the Unix socket is the diagnostic system (d): the server's cost without
//! our library's and without TCP's.
//!
//! The client formats each notify frame (the parameter carries a sequence
//! number) and writes it with one `write` (like the library and the
//! floor); it reads through a 64 KiB buffer. Receivers parse every body
//! with `serde_json` (borrowed strings, the parameter as a raw value), as a
//! real client must to find the notification ID and the parameter.
//!
//! The same connection type over the Unix socket builds the idle crowds of
//! the scale and memory workloads.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nfy_core::wire::{HEADER_LEN, PREFIX};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::burst::{self, Burst, Tally};
use crate::common::{
    err, finish, finish_fanout, fresh_id, nanos, wait_window, Counter, Rate, Res, PARAM, STALL,
};

/// Stack of receiver threads.
const STACK: usize = 256 * 1024;
/// A read waiting longer than this fails (a lost message).
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// A frame around a JSON body (message id 0).
pub fn frame(body: &str) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEADER_LEN + body.len());
    f.extend_from_slice(&PREFIX);
    f.extend_from_slice(
        &u32::try_from(4 + body.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    f.extend_from_slice(&0u32.to_be_bytes());
    f.extend_from_slice(body.as_bytes());
    f
}

/// A notify frame.
pub fn notify_frame(from: &str, to: &str, notification: &str) -> Vec<u8> {
    frame(&format!(
        r#"{{"type":"notify","from":"{from}","to":"{to}","notification":"{notification}","flags":0,"parameter":{PARAM}}}"#
    ))
}

/// Formats notify frames as a client of the documented protocol would,
/// one per message, into a reused buffer; the 64-byte parameter carries a
/// four-digit sequence number (1000..=9999, cycling).
pub struct NotifyWriter {
    buf: Vec<u8>,
    head: String,
    seq: u32,
}

impl NotifyWriter {
    /// Frames from `from` to `to` for `notification`.
    pub fn new(from: &str, to: &str, notification: &str) -> NotifyWriter {
        NotifyWriter {
            buf: Vec::with_capacity(512),
            head: format!(
                r#"{{"type":"notify","from":"{from}","to":"{to}","notification":"{notification}","flags":0,"parameter":"#
            ),
            seq: 0,
        }
    }

    /// The next frame.
    pub fn next_frame(&mut self) -> &[u8] {
        // Four digits without a leading zero (JSON numbers have none).
        self.seq = 1000 + (self.seq + 1) % 9000;
        self.start_frame();
        let _ = write!(
            self.buf,
            r#"{{"amount":12345,"currency":"EUR","terminal":"T-0001","seq":{:04}}}}}"#,
            self.seq
        );
        self.end_frame()
    }

    /// The frame of the burst's notification at `index` (its parameter
    /// carries the burst's sequence number).
    pub fn burst_frame(&mut self, index: u64) -> &[u8] {
        self.start_frame();
        burst::write_param(&mut self.buf, index);
        self.buf.push(b'}');
        self.end_frame()
    }

    /// Header room and the body up to the parameter.
    fn start_frame(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&PREFIX);
        self.buf.extend_from_slice(&[0; 8]);
        self.buf.extend_from_slice(self.head.as_bytes());
    }

    /// Fills in the size field.
    fn end_frame(&mut self) -> &[u8] {
        let size = u32::try_from(self.buf.len() - 8).unwrap_or(u32::MAX);
        if let Some(s) = self.buf.get_mut(4..8) {
            s.copy_from_slice(&size.to_be_bytes());
        }
        &self.buf
    }
}

/// Where the server listens, as this client reaches it.
#[derive(Debug, Clone)]
pub enum Addr {
    /// TCP loopback.
    Tcp(SocketAddr),
    /// The Unix socket.
    Unix(PathBuf),
}

/// A register frame.
pub fn register_frame(to: &str, notification: &str) -> Vec<u8> {
    frame(&format!(
        r#"{{"type":"register","to":"{to}","notification":"{notification}","priority":0}}"#
    ))
}

/// The members of a received notify this client looks at.
#[derive(Deserialize)]
pub struct Incoming<'a> {
    /// `notify` or `unicast_error`.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Source app ID.
    pub from: &'a str,
    /// Notification ID.
    pub notification: &'a str,
    /// The parameter, unparsed.
    #[serde(borrow)]
    pub parameter: &'a RawValue,
}

/// A received notify of the burst, decoded whole (the parameter too).
#[derive(Deserialize)]
struct BurstIncoming<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[allow(dead_code)] // decoded as a client would, not looked at
    from: &'a str,
    #[allow(dead_code)]
    notification: &'a str,
    #[serde(borrow)]
    parameter: burst::Param<'a>,
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn set_timeouts(&self, limit: Duration) -> Res<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(limit))?;
                s.set_write_timeout(Some(limit))?;
            }
            Stream::Unix(s) => {
                s.set_read_timeout(Some(limit))?;
                s.set_write_timeout(Some(limit))?;
            }
        }
        Ok(())
    }

    fn try_clone(&self) -> Res<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }

    fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A raw JSON-protocol connection.
pub struct Conn {
    rd: BufReader<Stream>,
    wr: Stream,
    body: Vec<u8>,
}

impl Conn {
    /// Connects over TCP (`TCP_NODELAY`, as latency matters).
    pub fn tcp(addr: SocketAddr) -> Res<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Self::wrap(Stream::Tcp(s))
    }

    /// Connects over the Unix socket.
    pub fn unix(path: &Path) -> Res<Conn> {
        Self::wrap(Stream::Unix(UnixStream::connect(path)?))
    }

    /// Connects to `addr`.
    pub fn connect(addr: &Addr) -> Res<Conn> {
        match addr {
            Addr::Tcp(a) => Self::tcp(*a),
            Addr::Unix(p) => Self::unix(p),
        }
    }

    fn wrap(s: Stream) -> Res<Conn> {
        // A message that never comes must end the run, not hang it.
        match &s {
            Stream::Tcp(t) => t.set_read_timeout(Some(READ_TIMEOUT))?,
            Stream::Unix(u) => u.set_read_timeout(Some(READ_TIMEOUT))?,
        }
        Ok(Conn {
            rd: BufReader::with_capacity(64 * 1024, s.try_clone()?),
            wr: s,
            body: Vec::with_capacity(4096),
        })
    }

    /// Writes bytes (one or more whole frames) with one `write`.
    pub fn send(&mut self, bytes: &[u8]) -> Res<()> {
        self.wr.write_all(bytes)?;
        Ok(())
    }

    /// Reads one frame; returns its body.
    pub fn recv(&mut self) -> Res<&[u8]> {
        let mut header = [0u8; HEADER_LEN];
        self.rd.read_exact(&mut header)?;
        if header.get(..4) != Some(&PREFIX[..]) {
            return Err(err("bad frame prefix from the server"));
        }
        let mut size = [0u8; 4];
        size.copy_from_slice(header.get(4..8).unwrap_or(&[0; 4]));
        let len = (u32::from_be_bytes(size) as usize)
            .checked_sub(4)
            .ok_or_else(|| err("bad frame size from the server"))?;
        self.body.resize(len, 0);
        self.rd.read_exact(&mut self.body)?;
        Ok(&self.body)
    }

    /// Reads one notify and returns its notification ID's length (parsing
    /// the whole body as a client must).
    pub fn recv_notify(&mut self) -> Res<usize> {
        let body = self.recv()?;
        let m: Incoming<'_> = serde_json::from_slice(body)?;
        if m.kind != "notify" {
            return Err(err(format!("expected a notify, got a {}", m.kind)));
        }
        Ok(m.notification.len() + m.from.len() + m.parameter.get().len())
    }

    /// Registers (`to`, each of `notifications`) and waits until the server
    /// processed it: notifies itself with the first one and reads it back.
    pub fn register_synced(&mut self, to: &str, notifications: &[String]) -> Res<()> {
        let mut bytes = Vec::new();
        for n in notifications {
            bytes.extend_from_slice(&register_frame(to, n));
        }
        let first = notifications
            .first()
            .ok_or_else(|| err("nothing to register"))?;
        bytes.extend_from_slice(&notify_frame(to, to, first));
        self.send(&bytes)?;
        self.recv_notify()?;
        Ok(())
    }

    /// A handle that ends this connection from another thread.
    pub fn closer(&self) -> Res<Closer> {
        Ok(Closer(self.wr.try_clone()?))
    }

    /// Reads and writes that block longer than `limit` fail.
    pub fn set_timeouts(&self, limit: Duration) -> Res<()> {
        self.wr.set_timeouts(limit)
    }
}

/// Ends a connection from another thread.
pub struct Closer(Stream);

impl Closer {
    /// Shuts the connection down both ways.
    pub fn close(&self) {
        self.0.shutdown();
    }
}

/// Spawns a thread counting `n` notifies on `conn`.
fn count_notifies(mut conn: Conn, counter: Arc<Counter>, n: u64) -> Res<JoinHandle<()>> {
    Ok(thread::Builder::new()
        .name("json-recv".into())
        .stack_size(STACK)
        .spawn(move || {
            for _ in 0..n {
                if conn.recv_notify().is_err() {
                    return;
                }
                counter.hit();
            }
        })?)
}

/// Spawns a thread counting whatever else the server sends on `conn`
/// (unicast errors, in the one-way workloads).
fn count_errors(mut conn: Conn, errors: Arc<AtomicU64>) -> Res<JoinHandle<()>> {
    Ok(thread::Builder::new()
        .name("json-errors".into())
        .stack_size(STACK)
        .spawn(move || {
            while conn.recv().is_ok() {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        })?)
}

/// Round trips A → B → A.
pub fn rtt(addr: &Addr, warmup: usize, n: usize) -> Res<Vec<u64>> {
    let run = fresh_id();
    let (a_id, b_id) = (format!("a{run}"), format!("b{run}"));
    let mut a = Conn::connect(addr)?;
    let mut b = Conn::connect(addr)?;
    a.register_synced(&a_id, &["pong".to_owned()])?;
    b.register_synced(&b_id, &["ping".to_owned()])?;
    let mut pong = NotifyWriter::new(&b_id, &a_id, "pong");
    let mut ping = NotifyWriter::new(&a_id, &b_id, "ping");
    let b_closer = b.closer()?;
    let echo = thread::Builder::new()
        .name("json-echo".into())
        .stack_size(STACK)
        .spawn(move || {
            while b.recv_notify().is_ok() {
                if b.send(pong.next_frame()).is_err() {
                    return;
                }
            }
        })?;
    let mut samples = Vec::with_capacity(n);
    let result = (|| -> Res<()> {
        for i in 0..warmup + n {
            let t0 = Instant::now();
            a.send(ping.next_frame())?;
            a.recv_notify()?;
            if i >= warmup {
                samples.push(nanos(t0.elapsed()));
            }
        }
        Ok(())
    })();
    b_closer.close();
    let _ = echo.join();
    result.map(|()| samples)
}

/// A sends `n` notifications one way to B.
pub fn throughput(addr: &Addr, n: u64, window: u64) -> Res<Rate> {
    let run = fresh_id();
    let (a_id, b_id) = (format!("a{run}"), format!("b{run}"));
    let mut a = Conn::connect(addr)?;
    let mut b = Conn::connect(addr)?;
    b.register_synced(&b_id, &["t".to_owned()])?;
    let b_closer = b.closer()?;
    let counter = Arc::new(Counter::new(n));
    let rx = count_notifies(b, Arc::clone(&counter), n)?;
    let errors = Arc::new(AtomicU64::new(0));
    let a_reader = Conn {
        rd: BufReader::with_capacity(64 * 1024, a.wr.try_clone()?),
        wr: a.wr.try_clone()?,
        body: Vec::new(),
    };
    let a_closer = a.closer()?;
    let ex = count_errors(a_reader, Arc::clone(&errors))?;
    let mut msg = NotifyWriter::new(&a_id, &b_id, "t");
    let start = Instant::now();
    for sent in 0..n {
        wait_window(sent, window, || {
            counter.get() + errors.load(Ordering::Relaxed)
        })?;
        a.send(msg.next_frame())?;
    }
    let done = counter.wait(STALL);
    let rate = finish(start, done, n, counter.get());
    let errs = errors.load(Ordering::Relaxed);
    if errs > 0 {
        eprintln!("bus: throughput (nfy json): {errs} unicast errors");
    }
    a_closer.close();
    b_closer.close();
    let _ = rx.join();
    let _ = ex.join();
    Ok(rate)
}

/// The burst: A sends `n` notifications to B as fast as it can, one frame
/// per write, and reads nothing while it streams (as the plain client of
/// issue 12); B decodes every message whole with serde_json.
pub fn burst(addr: &Addr, n: u64, idle: Duration) -> Res<Burst> {
    let run = fresh_id();
    let (a_id, b_id) = (format!("a{run}"), format!("b{run}"));
    let mut a = Conn::connect(addr)?;
    let mut b = Conn::connect(addr)?;
    b.register_synced(&b_id, &["t".to_owned()])?;
    a.set_timeouts(idle)?;
    b.set_timeouts(idle)?;
    let b_closer = b.closer()?;
    let a_closer = a.closer()?;
    let tally = Arc::new(Tally::new(n));
    let rx = burst::spawn_receiver("json-burst", &tally, move || {
        let m: BurstIncoming<'_> = serde_json::from_slice(b.recv()?)?;
        if m.kind != "notify" {
            return Err(err(format!("expected a notify, got a {}", m.kind)));
        }
        Ok(m.parameter.seq)
    })?;
    let mut msg = NotifyWriter::new(&a_id, &b_id, "t");
    let start = tally.now_ns();
    let (sent, sender) = burst::send_all(n, |i| a.send(msg.burst_frame(i)));
    let result = tally.finish(start, sent, &sender, idle);
    a_closer.close();
    b_closer.close();
    let _ = rx.join();
    Ok(result)
}

/// A broadcasts `n` notifications to `receivers` clients.
pub fn fanout(addr: &Addr, n: u64, receivers: usize, window: u64) -> Res<Rate> {
    let run = fresh_id();
    let mut a = Conn::connect(addr)?;
    let mut members = Vec::new();
    for i in 0..receivers {
        let mut c = Conn::connect(addr)?;
        c.register_synced(&format!("r{run}-{i}"), &["f".to_owned()])?;
        let closer = c.closer()?;
        let counter = Arc::new(Counter::new(n));
        let rx = count_notifies(c, Arc::clone(&counter), n)?;
        members.push((counter, rx, closer));
    }
    let mut msg = NotifyWriter::new(&format!("a{run}"), "*", "f");
    let slowest = || members.iter().map(|(c, _, _)| c.get()).min().unwrap_or(0);
    let start = Instant::now();
    for sent in 0..n {
        wait_window(sent, window, slowest)?;
        a.send(msg.next_frame())?;
    }
    let rate = finish_fanout(start, n, members.iter().map(|(c, _, _)| &**c));
    for (_, rx, closer) in members {
        closer.close();
        let _ = rx.join();
    }
    Ok(rate)
}

/// `conns` Unix-socket connections holding `regs` registrations each
/// (unrelated to any workload), all in force when this returns.
pub fn crowd(socket: &Path, conns: usize, regs: usize) -> Res<Vec<Conn>> {
    let run = fresh_id();
    let names: Vec<String> = (0..regs).map(|j| format!("idle-{j}")).collect();
    let mut crowd = Vec::with_capacity(conns);
    for i in 0..conns {
        let mut c = Conn::unix(socket)?;
        c.register_synced(&format!("crowd{run}-{i}"), &names)?;
        crowd.push(c);
    }
    Ok(crowd)
}
