//! NATS, a real peer: `nats-server` ([`crate::nats_server`]) and a small
//! client of its documented text protocol (docs.nats.io, "Client
//! Protocol"), written here: `INFO` from the server, `CONNECT`, `PUB`,
//! `SUB`, `MSG`, `PING`/`PONG`, all lines ending in CRLF.
//!
//! Publishing is buffered as the official clients do (the Go client
//! appends to a 32 KiB `bufio.Writer` that a flusher goroutine writes out
//! whenever it gets to run): [`Conn::publish`] appends to a 32 KiB
//! `BufWriter`, which writes when it is full, at least every millisecond
//! while publishing goes on, and whenever the caller is about to wait
//! ([`Conn::flush`]: before reading an answer, before waiting for a
//! flow-control window, at the end). So a publisher that streams writes
//! many `PUB`s per system call, and a lone one goes out at once.
//!
//! Receivers parse every payload as JSON (the rtt and fanout workloads
//! validate it, as the raw JSON client does with its parameter; the
//! burst decodes it), so the receiving work matches the nfy systems'.
//!
//! **Decision**: a client written here rather than a crate: the official
//! Rust client (`async-nats`) brings tokio and buffers in its own tasks,
//! which would measure its runtime as much as the server; the protocol
//! needs about 150 lines.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use crate::burst::{self, Burst, Tally};
use crate::common::{err, finish_fanout, fresh_id, nanos, wait_window, Counter, Rate, Res, PARAM};

/// The publish buffer: the Go client's default.
const WRITE_BUF: usize = 32 * 1024;
/// While publishing goes on, buffered messages wait at most about this
/// long.
const FLUSH_EVERY: Duration = Duration::from_millis(1);
/// Publishes between two looks at the clock.
const CLOCK_EVERY: u32 = 32;
/// A read waiting longer than this fails (a lost message).
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Stack of receiver threads.
const STACK: usize = 256 * 1024;

/// A client connection to `nats-server`.
pub struct Conn {
    rd: BufReader<TcpStream>,
    wr: BufWriter<TcpStream>,
    line: Vec<u8>,
    payload: Vec<u8>,
    /// Publishes since the clock was last read.
    since_clock: u32,
    last_flush: Instant,
}

impl Conn {
    /// Connects (`TCP_NODELAY`, as the official clients), reads the
    /// server's `INFO`, sends `CONNECT` and waits for the `PONG` to a
    /// `PING` (the server accepted the connection).
    pub fn connect(addr: SocketAddr) -> Res<Conn> {
        let sock = TcpStream::connect(addr)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(READ_TIMEOUT))?;
        let mut c = Conn {
            rd: BufReader::with_capacity(64 * 1024, sock.try_clone()?),
            wr: BufWriter::with_capacity(WRITE_BUF, sock),
            line: Vec::with_capacity(256),
            payload: Vec::with_capacity(256),
            since_clock: 0,
            last_flush: Instant::now(),
        };
        c.read_line()?;
        if !c.line.starts_with(b"INFO ") {
            return Err(err(format!(
                "nats-server said {:?}, not INFO",
                String::from_utf8_lossy(&c.line)
            )));
        }
        c.wr.write_all(
            br#"CONNECT {"verbose":false,"pedantic":false,"tls_required":false,"lang":"rust","version":"nfy-bench","protocol":1,"echo":false}"#,
        )?;
        c.wr.write_all(b"\r\n")?;
        c.sync()?;
        Ok(c)
    }

    /// Subscribes to `subject` as subscription `sid` (in force once
    /// [`Conn::sync`] returns).
    pub fn subscribe(&mut self, subject: &str, sid: u32) -> Res<()> {
        write!(self.wr, "SUB {subject} {sid}\r\n")?;
        Ok(())
    }

    /// Appends a `PUB` to the buffer (see the module docs for when it is
    /// written).
    pub fn publish(&mut self, subject: &str, payload: &[u8]) -> Res<()> {
        write!(self.wr, "PUB {subject} {}\r\n", payload.len())?;
        self.wr.write_all(payload)?;
        self.wr.write_all(b"\r\n")?;
        self.since_clock += 1;
        if self.since_clock >= CLOCK_EVERY {
            self.since_clock = 0;
            if self.last_flush.elapsed() >= FLUSH_EVERY {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Writes what the buffer holds.
    pub fn flush(&mut self) -> Res<()> {
        self.wr.flush()?;
        self.last_flush = Instant::now();
        Ok(())
    }

    /// `PING`, then reads until the `PONG`: the server has processed
    /// everything sent before. Only before traffic (a message in between
    /// is an error).
    pub fn sync(&mut self) -> Res<()> {
        self.wr.write_all(b"PING\r\n")?;
        self.flush()?;
        loop {
            self.read_line()?;
            match self.line.as_slice() {
                b"PONG" => return Ok(()),
                b"+OK" => {}
                l if l.starts_with(b"INFO ") => {}
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// Reads up to the next `MSG` and returns its payload; answers the
    /// server's `PING`s on the way.
    pub fn next_msg(&mut self) -> Res<&[u8]> {
        loop {
            self.read_line()?;
            if self.line.starts_with(b"MSG ") {
                // MSG <subject> <sid> [reply-to] <#bytes>
                let size = self
                    .line
                    .rsplit(|&b| b == b' ')
                    .next()
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(|s| s.parse::<usize>().ok())
                    .ok_or_else(|| self.unexpected())?;
                self.payload.resize(size + 2, 0);
                self.rd.read_exact(&mut self.payload)?;
                if !self.payload.ends_with(b"\r\n") {
                    return Err(err("a NATS payload without its CRLF"));
                }
                return Ok(self.payload.get(..size).unwrap_or_default());
            }
            match self.line.as_slice() {
                b"PING" => {
                    self.wr.write_all(b"PONG\r\n")?;
                    self.flush()?;
                }
                b"PONG" | b"+OK" => {}
                l if l.starts_with(b"INFO ") => {}
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// Reads and writes that block longer than `limit` fail.
    pub fn set_timeouts(&self, limit: Duration) -> Res<()> {
        self.wr.get_ref().set_read_timeout(Some(limit))?;
        self.wr.get_ref().set_write_timeout(Some(limit))?;
        Ok(())
    }

    /// A handle that ends this connection from another thread.
    pub fn closer(&self) -> Res<Closer> {
        Ok(Closer(self.wr.get_ref().try_clone()?))
    }

    /// One protocol line, without its CRLF, into `self.line`.
    fn read_line(&mut self) -> Res<()> {
        self.line.clear();
        if self.rd.read_until(b'\n', &mut self.line)? == 0 {
            return Err(err("nats-server closed the connection"));
        }
        if !self.line.ends_with(b"\r\n") {
            return Err(err("a NATS line without its CRLF"));
        }
        self.line.truncate(self.line.len() - 2);
        Ok(())
    }

    fn unexpected(&self) -> crate::common::Error {
        err(format!(
            "unexpected from nats-server: {:?}",
            String::from_utf8_lossy(&self.line)
        ))
    }
}

/// Ends a connection from another thread.
pub struct Closer(TcpStream);

impl Closer {
    /// Shuts the connection down both ways.
    pub fn close(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// Checks that a payload is one JSON value (as the raw JSON client's
/// parse of its parameter).
fn parse_json(payload: &[u8]) -> Res<usize> {
    let v: &RawValue = serde_json::from_slice(payload)?;
    Ok(v.get().len())
}

/// Round trips A → B → A: A publishes on B's subject and waits for the
/// answer; B answers each message on A's subject.
pub fn rtt(addr: SocketAddr, warmup: usize, n: usize) -> Res<Vec<u64>> {
    let run = fresh_id();
    let (ping, pong) = (format!("ping.{run}"), format!("pong.{run}"));
    let mut a = Conn::connect(addr)?;
    a.subscribe(&pong, 1)?;
    a.sync()?;
    let mut b = Conn::connect(addr)?;
    b.subscribe(&ping, 1)?;
    b.sync()?;
    let b_closer = b.closer()?;
    let echo = thread::Builder::new()
        .name("nats-echo".into())
        .stack_size(STACK)
        .spawn(move || -> Res<()> {
            loop {
                parse_json(b.next_msg()?)?;
                b.publish(&pong, PARAM.as_bytes())?;
                b.flush()?;
            }
        })?;
    let mut samples = Vec::with_capacity(n);
    let result = (|| -> Res<()> {
        for i in 0..warmup + n {
            let t0 = Instant::now();
            a.publish(&ping, PARAM.as_bytes())?;
            a.flush()?;
            parse_json(a.next_msg()?)?;
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

/// Spawns a thread counting `n` messages on `conn`.
fn count_msgs(mut conn: Conn, counter: Arc<Counter>, n: u64) -> Res<JoinHandle<()>> {
    Ok(thread::Builder::new()
        .name("nats-recv".into())
        .stack_size(STACK)
        .spawn(move || {
            for _ in 0..n {
                match conn.next_msg().and_then(parse_json) {
                    Ok(_) => counter.hit(),
                    Err(_) => return,
                }
            }
        })?)
}

/// A publishes `n` messages on a subject `receivers` clients subscribe
/// to, within the flow-control window (flushing before it waits).
pub fn fanout(addr: SocketAddr, n: u64, receivers: usize, window: u64) -> Res<Rate> {
    let subject = format!("fan.{}", fresh_id());
    let mut members = Vec::new();
    for _ in 0..receivers {
        let mut c = Conn::connect(addr)?;
        c.subscribe(&subject, 1)?;
        c.sync()?;
        let closer = c.closer()?;
        let counter = Arc::new(Counter::new(n));
        let rx = count_msgs(c, Arc::clone(&counter), n)?;
        members.push((counter, rx, closer));
    }
    let mut a = Conn::connect(addr)?;
    let slowest = || members.iter().map(|(c, _, _)| c.get()).min().unwrap_or(0);
    let start = Instant::now();
    for sent in 0..n {
        if sent.saturating_sub(slowest()) >= window {
            a.flush()?;
            wait_window(sent, window, slowest)?;
        }
        a.publish(&subject, PARAM.as_bytes())?;
    }
    a.flush()?;
    let rate = finish_fanout(start, n, members.iter().map(|(c, _, _)| &**c));
    for (_, rx, closer) in members {
        closer.close();
        let _ = rx.join();
    }
    Ok(rate)
}

/// The burst: A publishes `n` messages as fast as it can (buffered, see
/// the module docs); B decodes each payload.
pub fn burst(addr: SocketAddr, n: u64, idle: Duration) -> Res<Burst> {
    let subject = format!("burst.{}", fresh_id());
    let mut b = Conn::connect(addr)?;
    b.subscribe(&subject, 1)?;
    b.sync()?;
    b.set_timeouts(idle)?;
    let mut a = Conn::connect(addr)?;
    a.set_timeouts(idle)?;
    let b_closer = b.closer()?;
    let a_closer = a.closer()?;
    let tally = Arc::new(Tally::new(n));
    let rx = burst::spawn_receiver("nats-burst", &tally, move || {
        burst::decode_seq(b.next_msg()?)
    })?;
    let mut param = Vec::with_capacity(64);
    let start = tally.now_ns();
    let (sent, sender) = burst::send_all(n, |i| {
        param.clear();
        burst::write_param(&mut param, i);
        a.publish(&subject, &param)
    });
    let sender = sender.and_then(|()| a.flush());
    let result = tally.finish(start, sent, &sender, idle);
    a_closer.close();
    b_closer.close();
    let _ = rx.join();
    Ok(result)
}
