//! (a) The floor: a minimal relay over Unix sockets, written here.
//!
//! Blocking I/O, one thread per connection, length-prefixed frames routed
//! by a destination number: the simplest correct two-hop broker, and the
//! best any brokered design can do on this machine without batching. A
//! frame is
//!
//! ```text
//! <u32 LE len>  bytes after this field: 8 + payload length
//! <u32 LE dest> destination address, or GROUP_BIT | group (broadcast)
//! <u32 LE src>  source address
//! <payload>     FLOOR_PAYLOAD bytes (the size of an nfy compact notify body)
//! ```
//!
//! A client connects and sends its address and its broadcast group (u32 LE
//! each; group 0 = none); the relay answers one byte once the address is
//! routable. The relay thread of a connection reads with a 64 KiB buffer
//! and writes each frame to its destination with one `write` (a broadcast:
//! one per group member): the relay does not batch, which is exactly what
//! nfy's server must beat on throughput.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::burst::{self, Burst, Tally};
use crate::common::{
    finish, finish_fanout, fresh_id, lock, nanos, wait_window, Counter, Rate, Res, PARAM, STALL,
};

/// Destinations with this bit set mean "every member of group `dest &
/// !GROUP_BIT`" (a broadcast).
const GROUP_BIT: u32 = 1 << 31;
/// Payload bytes per frame: the 64-byte parameter plus room for the
/// sender, notification id and flags, like an nfy compact notify body.
pub const FLOOR_PAYLOAD: usize = 80;
/// Stack of the relay and receiver threads (they hold little).
const STACK: usize = 128 * 1024;
/// Header bytes: len, dest, src.
const HEADER: usize = 12;

type Writer = Arc<Mutex<UnixStream>>;

#[derive(Default)]
struct Table {
    conns: HashMap<u32, Writer>,
    groups: HashMap<u32, Vec<(u32, Writer)>>,
}

/// A running relay.
pub struct Relay {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Relay {
    /// Starts a relay on a fresh socket.
    pub fn start() -> Res<Relay> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("floor.sock");
        let listener = UnixListener::bind(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let table = Arc::new(Mutex::new(Table::default()));
        let stop2 = Arc::clone(&stop);
        let acceptor = thread::Builder::new()
            .name("floor-accept".into())
            .stack_size(STACK)
            .spawn(move || {
                for stream in listener.incoming() {
                    if stop2.load(Ordering::Acquire) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let table = Arc::clone(&table);
                    let _ = thread::Builder::new()
                        .name("floor-relay".into())
                        .stack_size(STACK)
                        .spawn(move || {
                            let _ = relay_conn(stream, &table);
                        });
                }
            })?;
        Ok(Relay {
            path,
            stop,
            acceptor: Some(acceptor),
            _dir: dir,
        })
    }

    /// The relay's socket.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the acceptor; the relay threads end when their clients close.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = bytes.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_le_bytes(b)
}

/// One connection's relay thread.
fn relay_conn(stream: UnixStream, table: &Mutex<Table>) -> Res<()> {
    let mut hello = [0u8; 8];
    let mut rd = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    rd.read_exact(&mut hello)?;
    let me = u32_at(&hello, 0);
    let writer: Writer = Arc::new(Mutex::new(stream));
    {
        let mut t = lock(table);
        t.conns.insert(me, Arc::clone(&writer));
        let group = u32_at(&hello, 4);
        if group != 0 {
            t.groups
                .entry(group)
                .or_default()
                .push((me, Arc::clone(&writer)));
        }
    }
    lock(&writer).write_all(&[1])?;
    let result = relay_frames(&mut rd, me, table);
    let mut t = lock(table);
    t.conns.remove(&me);
    for members in t.groups.values_mut() {
        members.retain(|(id, _)| *id != me);
    }
    t.groups.retain(|_, members| !members.is_empty());
    result
}

fn relay_frames(rd: &mut BufReader<UnixStream>, me: u32, table: &Mutex<Table>) -> Res<()> {
    let mut frame = vec![0u8; HEADER];
    // Routes this thread has looked up (a real relay would cache them too).
    let mut cache: HashMap<u32, Writer> = HashMap::new();
    let mut groups: HashMap<u32, Vec<(u32, Writer)>> = HashMap::new();
    loop {
        frame.resize(HEADER, 0);
        if rd.read_exact(&mut frame).is_err() {
            return Ok(()); // end of stream
        }
        let len = u32_at(&frame, 0) as usize;
        let dest = u32_at(&frame, 4);
        frame.resize(4 + len.max(8), 0);
        rd.read_exact(frame.get_mut(HEADER..).unwrap_or_default())?;
        if dest & GROUP_BIT != 0 {
            let group = dest & !GROUP_BIT;
            let members = groups
                .entry(group)
                .or_insert_with(|| lock(table).groups.get(&group).cloned().unwrap_or_default());
            for (id, w) in members.iter() {
                if *id != me {
                    // A member that left is skipped, like a closed peer.
                    let _ = lock(w).write_all(&frame);
                }
            }
        } else {
            let w = match cache.get(&dest) {
                Some(w) => Arc::clone(w),
                None => {
                    let Some(w) = lock(table).conns.get(&dest).cloned() else {
                        continue; // nobody there: dropped
                    };
                    cache.insert(dest, Arc::clone(&w));
                    w
                }
            };
            let _ = lock(&w).write_all(&frame);
        }
    }
}

/// A client of the floor relay.
pub struct Conn {
    /// This client's address.
    pub id: u32,
    rd: BufReader<UnixStream>,
    wr: UnixStream,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    /// Room to format a burst parameter.
    param: Vec<u8>,
}

impl Conn {
    /// Connects with a fresh address, as a member of broadcast `group`
    /// (0 = none).
    pub fn connect(path: &Path, group: u32) -> Res<Conn> {
        let id = fresh_id();
        let mut wr = UnixStream::connect(path)?;
        // A frame that never comes must end the run, not hang it.
        wr.set_read_timeout(Some(std::time::Duration::from_secs(20)))?;
        let mut hello = [0u8; 8];
        hello[..4].copy_from_slice(&id.to_le_bytes());
        hello[4..].copy_from_slice(&group.to_le_bytes());
        wr.write_all(&hello)?;
        let mut rd = BufReader::with_capacity(64 * 1024, wr.try_clone()?);
        let mut ack = [0u8; 1];
        rd.read_exact(&mut ack)?;
        let mut out = Vec::with_capacity(HEADER + FLOOR_PAYLOAD);
        out.extend_from_slice(&((8 + FLOOR_PAYLOAD) as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
        let mut payload = PARAM.as_bytes().to_vec();
        payload.resize(FLOOR_PAYLOAD, b' ');
        out.extend_from_slice(&payload);
        Ok(Conn {
            id,
            rd,
            wr,
            out,
            inbuf: vec![0u8; HEADER],
            param: Vec::with_capacity(FLOOR_PAYLOAD),
        })
    }

    /// Sends one frame to `dest` (one `write`).
    pub fn send(&mut self, dest: u32) -> Res<()> {
        if let Some(d) = self.out.get_mut(4..8) {
            d.copy_from_slice(&dest.to_le_bytes());
        }
        self.wr.write_all(&self.out)?;
        Ok(())
    }

    /// Sends one frame to `dest` carrying the burst's parameter for
    /// `index` (one `write`).
    pub fn send_param(&mut self, dest: u32, index: u64) -> Res<()> {
        self.param.clear();
        burst::write_param(&mut self.param, index);
        if let Some(p) = self.out.get_mut(HEADER..HEADER + self.param.len()) {
            p.copy_from_slice(&self.param);
        }
        self.send(dest)
    }

    /// Reads and writes that block longer than `limit` fail.
    pub fn set_timeouts(&self, limit: Duration) -> Res<()> {
        self.wr.set_read_timeout(Some(limit))?;
        self.wr.set_write_timeout(Some(limit))?;
        Ok(())
    }

    /// The payload of the frame [`Conn::recv`] read last.
    pub fn payload(&self) -> &[u8] {
        self.inbuf.get(HEADER..).unwrap_or_default()
    }

    /// Broadcasts one frame to the members of `group`.
    pub fn broadcast(&mut self, group: u32) -> Res<()> {
        self.send(GROUP_BIT | group)
    }

    /// A handle that ends this connection from another thread
    /// ([`Closer::close`]), waking a reader blocked on it.
    pub fn closer(&self) -> Res<Closer> {
        Ok(Closer(self.wr.try_clone()?))
    }

    /// Reads one frame; returns its source.
    pub fn recv(&mut self) -> Res<u32> {
        self.inbuf.resize(HEADER, 0);
        self.rd.read_exact(&mut self.inbuf)?;
        let len = u32_at(&self.inbuf, 0) as usize;
        let src = u32_at(&self.inbuf, 8);
        self.inbuf.resize(4 + len.max(8), 0);
        self.rd
            .read_exact(self.inbuf.get_mut(HEADER..).unwrap_or_default())?;
        Ok(src)
    }
}

/// Ends a connection from another thread.
pub struct Closer(UnixStream);

impl Closer {
    /// Shuts the connection down both ways.
    pub fn close(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// Spawns a thread that counts `n` frames on `conn` into `counter`.
fn count_frames(mut conn: Conn, counter: Arc<Counter>, n: u64) -> Res<JoinHandle<()>> {
    Ok(thread::Builder::new()
        .name("floor-recv".into())
        .stack_size(STACK)
        .spawn(move || {
            for _ in 0..n {
                if conn.recv().is_err() {
                    return;
                }
                counter.hit();
            }
        })?)
}

/// Round trips A → B → A; returns the measured ones in nanoseconds.
pub fn rtt(path: &Path, warmup: usize, n: usize) -> Res<Vec<u64>> {
    let mut a = Conn::connect(path, 0)?;
    let mut b = Conn::connect(path, 0)?;
    let b_id = b.id;
    let b_closer = b.closer()?;
    let echo = thread::Builder::new()
        .name("floor-echo".into())
        .stack_size(STACK)
        .spawn(move || {
            while let Ok(src) = b.recv() {
                if b.send(src).is_err() {
                    return;
                }
            }
        })?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let t0 = Instant::now();
        a.send(b_id)?;
        a.recv()?;
        if i >= warmup {
            samples.push(nanos(t0.elapsed()));
        }
    }
    drop(a);
    b_closer.close();
    let _ = echo.join();
    Ok(samples)
}

/// A sends `n` frames one way to B.
pub fn throughput(path: &Path, n: u64, window: u64) -> Res<Rate> {
    let mut a = Conn::connect(path, 0)?;
    let b = Conn::connect(path, 0)?;
    let b_id = b.id;
    let b_closer = b.closer()?;
    let counter = Arc::new(Counter::new(n));
    let rx = count_frames(b, Arc::clone(&counter), n)?;
    let start = Instant::now();
    for sent in 0..n {
        wait_window(sent, window, || counter.get())?;
        a.send(b_id)?;
    }
    let done = counter.wait(STALL);
    let rate = finish(start, done, n, counter.get());
    drop(a);
    b_closer.close();
    let _ = rx.join();
    Ok(rate)
}

/// The burst: A sends `n` frames to B as fast as it can, with no window
/// (the kernel's socket buffers slow it down when the relay or B falls
/// behind); B decodes each parameter.
pub fn burst(path: &Path, n: u64, idle: Duration) -> Res<Burst> {
    let mut a = Conn::connect(path, 0)?;
    let mut b = Conn::connect(path, 0)?;
    a.set_timeouts(idle)?;
    b.set_timeouts(idle)?;
    let b_id = b.id;
    let b_closer = b.closer()?;
    let tally = Arc::new(Tally::new(n));
    let rx = burst::spawn_receiver("floor-burst", &tally, move || {
        b.recv()?;
        burst::decode_seq(b.payload())
    })?;
    let start = tally.now_ns();
    let (sent, sender) = burst::send_all(n, |i| a.send_param(b_id, i));
    let result = tally.finish(start, sent, &sender, idle);
    b_closer.close();
    drop(a);
    let _ = rx.join();
    Ok(result)
}

/// A broadcasts `n` frames to `receivers` group members.
pub fn fanout(path: &Path, n: u64, receivers: usize, window: u64) -> Res<Rate> {
    let group = fresh_id();
    let mut members = Vec::new();
    for _ in 0..receivers {
        let conn = Conn::connect(path, group)?;
        let closer = conn.closer()?;
        let counter = Arc::new(Counter::new(n));
        let rx = count_frames(conn, Arc::clone(&counter), n)?;
        members.push((counter, rx, closer));
    }
    let mut a = Conn::connect(path, 0)?;
    let slowest = || members.iter().map(|(c, _, _)| c.get()).min().unwrap_or(0);
    let start = Instant::now();
    for sent in 0..n {
        wait_window(sent, window, slowest)?;
        a.broadcast(group)?;
    }
    let rate = finish_fanout(start, n, members.iter().map(|(c, _, _)| &**c));
    drop(a);
    for (_, rx, closer) in members {
        closer.close();
        let _ = rx.join();
    }
    Ok(rate)
}

/// Connections that only sit there (the scale workload's crowd).
pub fn idle_crowd(path: &Path, count: usize) -> Res<Vec<Conn>> {
    (0..count).map(|_| Conn::connect(path, 0)).collect()
}
