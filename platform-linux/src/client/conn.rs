//! The client's I/O layer: the connection, who reads it, reconnects,
//! and the operations both public APIs are built on.
//!
//! # Threads
//!
//! - [`WORKERS`](super::pool::WORKERS) **pool workers** run the callbacks
//!   and read the connection. An idle worker waits in `epoll_wait` on the
//!   client's `Poller`, which holds the socket armed one-shot: arriving
//!   data wakes exactly one worker, which reads everything there is
//!   (without blocking), dispatches it to the mailboxes, re-arms the socket
//!   and then runs the first ready callback itself. A notification thus
//!   costs one wake-up, as for a plain blocking reader, instead of waking a
//!   receiving thread that then wakes a worker (docs/performance.md, R2).
//!   Reading is serialized by the `read` lock, so events reach the
//!   mailboxes in arrival order. While one worker runs a callback, the
//!   socket is armed again and the next input wakes another idle worker.
//! - One **link thread** owns the connection's life: when the connection
//!   drops it reconnects with exponential backoff ([`MIN_BACKOFF`]
//!   doubling to [`MAX_BACKOFF`]), then replays the handshake (hello,
//!   unicast-error preference, every registration, observing) before any
//!   other message can be written. It also reads while every worker is
//!   busy in a callback (`saturated`), so a client whose callbacks all
//!   block still takes its input in: the mailboxes then fill and refuse
//!   ([`MAX_PENDING`](super::pool::MAX_PENDING)) as before, instead of the
//!   server's queue for this client overflowing.
//! - A caller waiting for a status answer reads too when nobody else is
//!   reading (a callback may call `sync` while the other workers are busy).
//! - Callers write from their own threads under the writer mutex; one
//!   notify is one `write_all` of one frame.
//!
//! # Acknowledgements (crash-safe delivery)
//!
//! The `hello` says `acks: true`: the server keeps every unicast it sends
//! this client until the client acknowledges it, and gives the ones not
//! acknowledged to the next receiver (or back to their sender as unicast
//! errors) when the connection ends first. The client acknowledges a
//! unicast (a notify with a `reference`, for a registration) right after
//! its callback returned, from the pool worker that ran it, or together
//! with sending it back unchanged (one write: the unregister race, a full
//! mailbox). Acks are held back briefly and go out with the client's next
//! write (usually the callback's own answer to the next notification), or
//! on their own once [`ACK_BATCH`] wait, or (sent by the link thread)
//! [`LINGER`](super::pool::LINGER) (1 ms) after a pool worker ran dry with
//! acks held back: nothing is held back for long while idle, and a busy
//! receiver pays no system call per ack. They go only on the
//! connection the unicast arrived on: when
//! that connection has ended, the server has already given the unicast to
//! someone else. Broadcasts and unicast errors are never acknowledged.
//! A callback that completed while its ack could not reach the server (the
//! process was killed in between, or the connection broke) is the only
//! case where a unicast runs twice: at most [`ACK_BATCH`] per crash, as
//! acks are held back.
//!
//! # Never hanging
//!
//! A call that finds the client disconnected wakes the link thread
//! for an immediate connection attempt and waits for its outcome at most
//! [`ATTEMPT_WAIT`] (a refused local connect takes microseconds), then
//! returns `ERR_SERVER`. Writes have a timeout ([`WRITE_TIMEOUT`]); a
//! failed or timed-out write closes the connection (a frame may be half
//! written), which a reader or the link thread notices and repairs.
//!
//! # Locks
//!
//! Order: `read` → `state` → sub mailbox → pool queue, `read` → `waiters`
//! → `writer` → `acks`, and `state` → `writer`. A pool worker only ever
//! *tries* the `read` lock (whoever holds it re-arms the socket after
//! releasing it, so the input is read by someone). Registration changes
//! hold `state` while writing their message, and the handshake is written
//! under `state`, so the server sees exactly the local table, in order,
//! whatever races with a reconnect. No lock is held while a callback runs
//! or while waiting for one.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nfy_core::msg::{self, compact, Encoding, Message, Notify, RawJson, Status};
use nfy_core::wire::{self, Decoded, FrameDecoder, HEADER_LEN};
use nfy_core::{AppId, Destination, NotificationId, MAX_ID_LEN};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, MsgFlags};

use super::addr::ServerAddr;
use super::poller::{self, Poller};
use super::pool::{
    self, lock, Event, Handler, Ident, Incoming, ObservedEvent, Pool, Refused, Sub, Wake,
};
use super::state::{Action, ClientState};
use super::Error;

/// First delay before reconnecting after a drop.
pub const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// Longest delay between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a call made while disconnected waits for the immediate
/// reconnection attempt it triggers.
pub const ATTEMPT_WAIT: Duration = Duration::from_millis(100);
/// A write that cannot complete in this time closes the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// TCP connect timeout (loopback: refused at once when nothing listens).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Largest frame body the client accepts from the server; larger frames
/// are skipped whole by the decoder.
pub const MAX_BODY: usize = 1 << 20;
/// Default wait for a status answer.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

const READ_CHUNK: usize = 64 * 1024;

/// Reads of [`READ_CHUNK`] one reader makes before it lets another thread
/// read (it re-arms the socket and goes to run callbacks).
const READ_BUDGET: usize = 4;

/// How long a status waiter or the assisting link thread waits for input
/// in one go while holding the `read` lock.
const HELP_POLL: Duration = Duration::from_millis(10);

/// Room for one compact `ack` frame (header, tag, varint reference).
const ACK_FRAME_MAX: usize = HEADER_LEN + 16;

/// Acks held back at most before they are sent on their own.
pub const ACK_BATCH: usize = 32;

/// Appends the compact `ack` frame of `reference` to `out`.
fn push_ack(reference: u64, out: &mut Vec<u8>) {
    let mut frame = [0u8; ACK_FRAME_MAX];
    let len = wire::encode_frame(&mut frame, Encoding::Compact.msg_id(), |b| {
        compact::encode(&Message::Ack(reference), b)
    })
    .unwrap_or(0);
    out.extend_from_slice(frame.get(..len).unwrap_or_default());
}

/// Acks of completed callbacks not sent yet, and the connection they are
/// for.
#[derive(Default)]
struct AckQueue {
    epoch: u64,
    references: Vec<u64>,
}

/// A connected stream, Unix or TCP.
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Connects to the Unix socket of `addr`, else its TCP address.
    pub(crate) fn connect(addr: &ServerAddr) -> io::Result<Stream> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no server address");
        if let Some(path) = &addr.unix {
            match UnixStream::connect(path) {
                Ok(s) => return Ok(Stream::Unix(s)),
                Err(e) => last = e,
            }
        }
        if let Some(a) = &addr.tcp {
            match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    // Latency matters more than packet count here.
                    let _ = s.set_nodelay(true);
                    return Ok(Stream::Tcp(s));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    fn set_write_timeout(&self, d: Duration) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(Some(d)),
            Stream::Tcp(s) => s.set_write_timeout(Some(d)),
        }
    }

    /// Sets the read timeout.
    pub(crate) fn set_read_timeout(&self, d: Duration) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(Some(d)),
            Stream::Tcp(s) => s.set_read_timeout(Some(d)),
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Appends `msg` as one compact frame to `out`.
pub(crate) fn encode_into(msg: &Message<'_>, out: &mut Vec<u8>) -> Result<(), Error> {
    // Postcard: a varint length (at most 10 bytes) per string, varints for
    // the numbers, one byte per option/bool tag.
    let parameter = match msg {
        Message::Notify(n) | Message::UnicastError(n) => n.parameter.as_str().len(),
        _ => 0,
    };
    let mut cap = HEADER_LEN + parameter + 4 * (MAX_ID_LEN + 10) + 64;
    for _ in 0..2 {
        let start = out.len();
        out.resize(start + cap, 0);
        let tail = out.get_mut(start..).unwrap_or_default();
        match wire::encode_frame(tail, Encoding::Compact.msg_id(), |b| {
            compact::encode(msg, b)
        }) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(_) => {
                out.truncate(start);
                cap *= 2;
            }
        }
    }
    Err(Error::Encode)
}

struct Writer {
    stream: Stream,
    epoch: u64,
    /// Encoding buffer, reused for every message (no allocation per send).
    buf: Vec<u8>,
}

struct Link {
    /// A caller asked for an immediate attempt.
    wake: bool,
    /// Disconnected: set by a reader that saw the connection end, and by
    /// the link thread after each attempt.
    down: bool,
    /// Every worker is busy: the link thread reads meanwhile.
    assist: bool,
    /// When the link thread sends the acks held back, if no write has
    /// taken them along by then ([`pool::Hooks::linger`]).
    flush_at: Option<Instant>,
    /// Completed connection attempts.
    attempts: u64,
}

/// The reading half of the current connection, used by whichever thread
/// holds the `read` lock.
struct ReadSide {
    /// Shared so the socket can be re-armed after the lock is released.
    stream: Arc<Stream>,
    epoch: u64,
    decoder: FrameDecoder<Vec<u8>>,
    buf: Vec<u8>,
}

/// What the link thread does next.
enum Job {
    /// Connect (the client is disconnected, or a caller asked).
    Attempt,
    /// Read while every worker is busy.
    Assist,
    /// A reader saw the connection end: the first attempt waits
    /// [`MIN_BACKOFF`].
    Lost,
    /// Send the acks held back.
    Flush,
    /// The client is closed.
    Exit,
}

/// The locked client state.
type StateGuard<'a> = MutexGuard<'a, ClientState<Arc<Sub>>>;

/// What a status request waits on: the connection epoch it was sent on and
/// where the answer goes.
type Waiter = (u64, mpsc::SyncSender<Status>);

/// A mailbox holder plus the identity the public handles need.
pub(crate) struct RegToken {
    pub(crate) sub: Arc<Sub>,
    pub(crate) generation: u64,
    pub(crate) to: AppId,
    pub(crate) notification: NotificationId,
}

/// The pool's workers acknowledge through the connection, and wait and
/// read on the client's [`Poller`].
impl pool::Hooks for Inner {
    fn done(&self, event: &Event) {
        self.completed(event);
    }

    fn unflushed(&self) -> bool {
        !lock(&self.acks).references.is_empty()
    }

    fn flush(&self) {
        self.flush_acks();
    }

    fn linger(&self) {
        let mut l = lock(&self.link);
        if l.flush_at.is_none() {
            l.flush_at = Some(Instant::now() + pool::LINGER);
            self.link_cv.notify_all();
        }
    }

    fn park(&self) -> Wake {
        let Some(p) = &self.poller else {
            return Wake::Other;
        };
        match p.wait(None) {
            poller::Wake::Readable => Wake::Readable,
            poller::Wake::Kicked => Wake::Kicked,
            poller::Wake::TimedOut | poller::Wake::Stopped | poller::Wake::Spurious => Wake::Other,
        }
    }

    fn unpark(&self) {
        if let Some(p) = &self.poller {
            p.kick();
        }
    }

    fn unpark_all(&self) {
        if let Some(p) = &self.poller {
            p.stop();
        }
    }

    fn io(&self) {
        let g = match self.read.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            // The holder re-arms the socket when it is done.
            Err(TryLockError::WouldBlock) => return,
        };
        self.read_and_release(g);
    }

    fn saturated(&self) {
        let mut l = lock(&self.link);
        l.assist = true;
        self.link_cv.notify_all();
    }
}

/// The state shared by a client's handles and threads.
pub(crate) struct Inner {
    addr: ServerAddr,
    state: Mutex<ClientState<Arc<Sub>>>,
    writer: Mutex<Option<Writer>>,
    /// Taken inside `writer` when both are.
    acks: Mutex<AckQueue>,
    /// The reading half; its holder reads (see the module docs).
    read: Mutex<Option<ReadSide>>,
    /// `None` only for a client closed from the start.
    poller: Option<Poller>,
    link: Mutex<Link>,
    link_cv: Condvar,
    waiters: Mutex<VecDeque<Waiter>>,
    pool: Pool,
    closed: AtomicBool,
    epochs: AtomicU64,
    dropped: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    /// Starts a client: one connection attempt now; with `require`, failing
    /// it is [`Error::Server`], otherwise the link thread keeps trying in
    /// the background.
    pub(crate) fn start(addr: ServerAddr, require: bool) -> Result<Arc<Inner>, Error> {
        let poller = Poller::new().map_err(|_| Error::Server)?;
        let inner = Self::new(addr, Some(poller));
        let first = inner.attempt();
        if require && !first {
            inner.close();
            return Err(Error::Server);
        }
        lock(&inner.link).down = !first;
        let mut threads = Vec::with_capacity(pool::WORKERS + 1);
        let spawned = (|| -> io::Result<()> {
            for i in 0..pool::WORKERS {
                let me = Arc::clone(&inner);
                threads.push(
                    thread::Builder::new()
                        .name(format!("nfy-callback-{i}"))
                        .spawn(move || me.pool.run_worker(&*me))?,
                );
            }
            let me = Arc::clone(&inner);
            threads.push(
                thread::Builder::new()
                    .name("nfy-link".into())
                    .spawn(move || me.run_link())?,
            );
            Ok(())
        })();
        *lock(&inner.threads) = threads;
        if spawned.is_err() {
            inner.close();
            return Err(Error::Server);
        }
        Ok(inner)
    }

    fn new(addr: ServerAddr, poller: Option<Poller>) -> Arc<Inner> {
        Arc::new(Inner {
            addr,
            state: Mutex::new(ClientState::new()),
            writer: Mutex::new(None),
            acks: Mutex::new(AckQueue::default()),
            read: Mutex::new(None),
            poller,
            link: Mutex::new(Link {
                wake: false,
                down: false,
                assist: false,
                flush_at: None,
                attempts: 0,
            }),
            link_cv: Condvar::new(),
            waiters: Mutex::new(VecDeque::new()),
            pool: Pool::new(),
            closed: AtomicBool::new(false),
            epochs: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
        })
    }

    /// A client that is closed from the start (every call fails with
    /// [`Error::Server`]); used when no thread can be spawned.
    pub(crate) fn closed(addr: ServerAddr) -> Arc<Inner> {
        let inner = Self::new(addr, None);
        inner.closed.store(true, Ordering::Release);
        inner
    }

    /// The address this client connects to.
    pub(crate) fn addr(&self) -> &ServerAddr {
        &self.addr
    }

    /// True while a connection is up.
    pub(crate) fn is_connected(&self) -> bool {
        lock(&self.writer).is_some()
    }

    /// Events dropped because the mailboxes were full (broadcasts, observer
    /// events and unicast errors; unicasts are sent back instead).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Callbacks that panicked.
    pub(crate) fn panics(&self) -> u64 {
        self.pool.panics()
    }

    // ----- connection management ------------------------------------

    /// One connection attempt: connect, write the handshake under the state
    /// lock, install the writer, then the reading half (watched by the
    /// poller). True when connected.
    fn attempt(&self) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let Some(poller) = &self.poller else {
            return false;
        };
        let Ok(stream) = Stream::connect(&self.addr) else {
            return false;
        };
        let Ok(reader) = stream
            .set_write_timeout(WRITE_TIMEOUT)
            .and_then(|()| stream.try_clone())
        else {
            return false;
        };
        let epoch = self.epochs.fetch_add(1, Ordering::AcqRel) + 1;
        let state = lock(&self.state);
        let mut bytes = Vec::new();
        for m in state.handshake() {
            if encode_into(&m, &mut bytes).is_err() {
                return false;
            }
        }
        let mut w = lock(&self.writer);
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let mut stream = stream;
        if stream.write_all(&bytes).is_err() {
            stream.shutdown();
            return false;
        }
        *w = Some(Writer {
            stream,
            epoch,
            buf: Vec::new(),
        });
        drop(w);
        drop(state);
        let side = ReadSide {
            stream: Arc::new(reader),
            epoch,
            decoder: FrameDecoder::new(vec![0u8; MAX_BODY + HEADER_LEN]),
            buf: vec![0u8; READ_CHUNK],
        };
        let mut r = lock(&self.read);
        if poller.watch(&*side.stream).is_err() {
            drop(r);
            self.disconnected(epoch);
            return false;
        }
        *r = Some(side);
        true
    }

    /// The link thread: reconnects and assists (see the module docs).
    fn run_link(self: Arc<Self>) {
        let mut backoff = MIN_BACKOFF;
        let mut up = !lock(&self.link).down;
        loop {
            match self.next_job(up, backoff) {
                Job::Exit => return,
                Job::Assist => self.assist(),
                Job::Flush => self.flush_acks(),
                Job::Lost => {
                    up = false;
                    backoff = MIN_BACKOFF;
                }
                Job::Attempt => {
                    // `down` is cleared before an attempt and set again
                    // only when it fails, so a reader that sees the new
                    // connection end at once is never overwritten.
                    up = self.is_connected() || {
                        lock(&self.link).down = false;
                        self.drop_read_side();
                        let ok = self.attempt();
                        if !ok {
                            lock(&self.link).down = true;
                        }
                        ok
                    };
                    let mut l = lock(&self.link);
                    l.attempts += 1;
                    self.link_cv.notify_all();
                    drop(l);
                    backoff = if up {
                        MIN_BACKOFF
                    } else {
                        (backoff * 2).min(MAX_BACKOFF)
                    };
                }
            }
        }
    }

    /// Waits for the link thread's next job. While disconnected (not
    /// `up`), an attempt is due every `backoff`.
    fn next_job(&self, up: bool, backoff: Duration) -> Job {
        let mut l = lock(&self.link);
        let attempt_at = (!up).then(|| Instant::now() + backoff);
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Job::Exit;
            }
            if l.wake {
                l.wake = false;
                return Job::Attempt;
            }
            if l.assist {
                l.assist = false;
                return Job::Assist;
            }
            if up && l.down {
                return Job::Lost;
            }
            let now = Instant::now();
            if l.flush_at.is_some_and(|t| t <= now) {
                l.flush_at = None;
                return Job::Flush;
            }
            if attempt_at.is_some_and(|t| t <= now) {
                return Job::Attempt;
            }
            let until = match (l.flush_at, attempt_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            l = match until {
                None => self.link_cv.wait(l).unwrap_or_else(|p| p.into_inner()),
                Some(t) => {
                    self.link_cv
                        .wait_timeout(l, t.saturating_duration_since(now))
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    /// Reads while every worker is busy in a callback (the link thread).
    fn assist(&self) {
        while !self.closed.load(Ordering::Acquire) && self.pool.saturated() {
            let g = lock(&self.read);
            if g.is_none() {
                return;
            }
            self.help_read(g, HELP_POLL);
        }
    }

    /// Waits at most `wait` for input while holding the `read` lock (taken
    /// by the caller), reads it, and releases the lock.
    fn help_read(&self, g: MutexGuard<'_, Option<ReadSide>>, wait: Duration) {
        let readable = g.as_ref().is_some_and(|side| {
            let mut fds = [PollFd::new(side.stream.as_fd(), PollFlags::POLLIN)];
            let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::ZERO);
            poll(&mut fds, timeout).is_ok_and(|n| n > 0)
        });
        if readable {
            self.read_and_release(g);
        } else {
            self.release(g);
        }
    }

    /// Forgets the reading half, if any (the link thread, before an
    /// attempt), and the status requests sent on it.
    fn drop_read_side(&self) {
        let side = lock(&self.read).take();
        if let Some(side) = side {
            if let Some(p) = &self.poller {
                p.unwatch(&*side.stream);
            }
            self.disconnected(side.epoch);
        }
    }

    /// Forgets connection `epoch` (if still current) and fails the status
    /// requests sent on it.
    fn disconnected(&self, epoch: u64) {
        let mut waiters = lock(&self.waiters);
        let mut w = lock(&self.writer);
        if w.as_ref().is_some_and(|w| w.epoch == epoch) {
            if let Some(old) = w.take() {
                old.stream.shutdown();
            }
        }
        drop(w);
        waiters.retain(|(e, _)| *e != epoch);
    }

    /// Called by operations that need the server: when disconnected, asks
    /// the link thread for an immediate attempt and waits for it at
    /// most [`ATTEMPT_WAIT`].
    fn ensure_connected(&self) -> bool {
        if self.is_connected() {
            return true;
        }
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let deadline = Instant::now() + ATTEMPT_WAIT;
        let mut l = lock(&self.link);
        let seen = l.attempts;
        l.wake = true;
        self.link_cv.notify_all();
        while l.attempts == seen {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            l = self
                .link_cv
                .wait_timeout(l, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        drop(l);
        self.is_connected()
    }

    /// Encodes `msg` into the writer's buffer and writes it on the current
    /// connection, with the acks held back (one write). A failed write
    /// closes it.
    fn send(&self, msg: &Message<'_>) -> Result<(), Error> {
        let mut w = lock(&self.writer);
        let Some(cur) = w.as_mut() else {
            return Err(Error::Server);
        };
        cur.buf.clear();
        encode_into(msg, &mut cur.buf)?;
        self.take_acks(cur.epoch, &mut cur.buf);
        Self::write_buf(&mut w)
    }

    /// Writes the writer's buffer; a failed write closes the connection.
    fn write_buf(w: &mut Option<Writer>) -> Result<(), Error> {
        let Some(cur) = w.as_mut() else {
            return Err(Error::Server);
        };
        if cur.buf.is_empty() {
            return Ok(());
        }
        if cur.stream.write_all(&cur.buf).is_err() {
            cur.stream.shutdown();
            *w = None;
            return Err(Error::Server);
        }
        Ok(())
    }

    /// Appends the acks held back for connection `epoch` to `out` and
    /// forgets them (held back for an older connection: forgets them only;
    /// the server of that connection has given those unicasts to someone
    /// else).
    fn take_acks(&self, epoch: u64, out: &mut Vec<u8>) {
        let mut acks = lock(&self.acks);
        if acks.epoch == epoch {
            for &reference in &acks.references {
                push_ack(reference, out);
            }
        }
        acks.references.clear();
    }

    /// Writes `bytes` with the ack of `ack` = (epoch, reference) and the
    /// acks held back, in one write, when the current connection is
    /// `epoch`; without the ack otherwise (`bytes` may be empty). One
    /// write, so a process killed in between cannot have sent a returned
    /// unicast without its ack (which would make the server route it
    /// twice).
    fn write_acked(&self, bytes: &[u8], ack: Option<(u64, u64)>) -> Result<(), Error> {
        let mut w = lock(&self.writer);
        let Some(cur) = w.as_mut() else {
            return Err(Error::Server);
        };
        cur.buf.clear();
        cur.buf.extend_from_slice(bytes);
        if let Some((epoch, reference)) = ack {
            if epoch == cur.epoch {
                push_ack(reference, &mut cur.buf);
            }
        }
        self.take_acks(cur.epoch, &mut cur.buf);
        Self::write_buf(&mut w)
    }

    /// Called by a pool worker after an event's callback returned: a
    /// unicast received for a registration is to be acknowledged on the
    /// connection it came on. The ack is held back ([`AckQueue`]) and goes
    /// with the client's next write, or on its own once [`ACK_BATCH`]
    /// are waiting or the pool runs dry ([`pool::LINGER`]).
    pub(crate) fn completed(&self, event: &Event) {
        let Event::Notify(n) = event else {
            return;
        };
        let Some((epoch, reference)) = n.ack() else {
            return;
        };
        let full = {
            let mut acks = lock(&self.acks);
            if acks.epoch != epoch {
                // Those were for an older connection: nobody wants them.
                acks.references.clear();
                acks.epoch = epoch;
            }
            acks.references.push(reference);
            acks.references.len() >= ACK_BATCH
        };
        if full {
            self.flush_acks();
        }
    }

    /// Sends the acks held back, if any, on their own.
    fn flush_acks(&self) {
        let mut w = lock(&self.writer);
        let Some(cur) = w.as_mut() else {
            lock(&self.acks).references.clear();
            return;
        };
        cur.buf.clear();
        self.take_acks(cur.epoch, &mut cur.buf);
        let _ = Self::write_buf(&mut w);
    }

    // ----- receiving ---------------------------------------------------

    /// Reads what the socket holds (without blocking, at most
    /// [`READ_BUDGET`] chunks), dispatches it, and releases the `read`
    /// lock `g`; then re-arms the socket. At the end of the stream or on an
    /// error, the reading half is dropped instead and the link thread told.
    fn read_and_release(&self, mut g: MutexGuard<'_, Option<ReadSide>>) {
        let Some(side) = g.as_mut() else {
            return;
        };
        let epoch = side.epoch;
        let fd = side.stream.as_fd().as_raw_fd();
        let mut ended = false;
        for _ in 0..READ_BUDGET {
            let n = match recv(fd, &mut side.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(_) => {
                    ended = true;
                    break;
                }
            };
            let mut input = side.buf.get(..n).unwrap_or_default();
            loop {
                let (used, out) = side.decoder.feed(input);
                let produced = out.is_some();
                if let Some(Decoded::Frame(frame)) = out {
                    // The server validated every parameter it sends
                    // (compact::decode_trusted, Decision).
                    let decoded = match Encoding::from_msg_id(frame.msg_id) {
                        Encoding::Compact => compact::decode_trusted(frame.body),
                        json => msg::decode(json, frame.body),
                    };
                    if let Ok(m) = decoded {
                        self.on_message(&m, epoch);
                    }
                }
                input = input.get(used..).unwrap_or_default();
                if !produced && (input.is_empty() || used == 0) {
                    break;
                }
            }
            // A stream socket returns less than asked only when it has
            // nothing more: data arriving later raises a new event.
            if n < side.buf.len() {
                break;
            }
        }
        if !ended {
            self.release(g);
            return;
        }
        if let (Some(side), Some(p)) = (g.take(), &self.poller) {
            p.unwatch(&*side.stream);
        }
        drop(g);
        self.disconnected(epoch);
        let mut l = lock(&self.link);
        l.down = true;
        self.link_cv.notify_all();
    }

    /// Releases the `read` lock and re-arms the socket (after releasing:
    /// a thread woken by the re-arm must find the lock free).
    fn release(&self, g: MutexGuard<'_, Option<ReadSide>>) {
        let stream = g.as_ref().map(|side| Arc::clone(&side.stream));
        drop(g);
        if let (Some(stream), Some(p)) = (stream, &self.poller) {
            p.rearm(&*stream);
        }
    }

    fn on_message(&self, m: &Message<'_>, epoch: u64) {
        let action = lock(&self.state).route(m);
        match (action, m) {
            (Action::Deliver(subs), Message::Notify(n)) => {
                let incoming = Arc::new(Incoming::delivered(n, epoch));
                let mut taken = false;
                for s in &subs {
                    match self
                        .pool
                        .submit(s, Event::Notify(Arc::clone(&incoming)), self)
                    {
                        Ok(()) => taken = true,
                        Err(Refused::Removed) => {}
                        Err(Refused::Full) => {
                            if !n.to.is_unicast() {
                                self.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
                if !taken && n.to.is_unicast() {
                    self.bounce(&incoming);
                }
            }
            (Action::Bounce, Message::Notify(n)) => {
                // Unchanged, reference included (spec 3, unregister race),
                // and acknowledged with the same write.
                self.bounce(&Incoming::delivered(n, epoch));
            }
            (Action::UnicastError(subs), Message::UnicastError(n)) => {
                let incoming = Arc::new(Incoming::from_notify(n));
                for s in &subs {
                    if let Err(Refused::Full) =
                        self.pool
                            .submit(s, Event::Notify(Arc::clone(&incoming)), self)
                    {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            (Action::Observed(subs), Message::Observed(o)) => {
                let event = Arc::new(ObservedEvent {
                    from: o.from.clone(),
                    to: o.to.clone(),
                    notification: o.notification.clone(),
                    flags: o.flags,
                });
                for s in &subs {
                    if let Err(Refused::Full) =
                        self.pool
                            .submit(s, Event::Observed(Arc::clone(&event)), self)
                    {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            (Action::Status(s), _) => {
                let mut waiters = lock(&self.waiters);
                if waiters.front().is_some_and(|(e, _)| *e == epoch) {
                    if let Some((_, tx)) = waiters.pop_front() {
                        // The asker may have given up (timeout): ignore.
                        let _ = tx.try_send(s);
                    }
                }
            }
            _ => {}
        }
    }

    /// Sends a unicast back unchanged, with its ack when it came on the
    /// current connection.
    fn bounce(&self, n: &Incoming) {
        let mut bytes = Vec::new();
        if let Some(m) = n.to_notify() {
            if encode_into(&m, &mut bytes).is_err() {
                bytes.clear();
            }
        }
        let _ = self.write_acked(&bytes, n.ack());
    }

    /// Sends a unicast back unchanged with its ack (an ack token's
    /// `give_back`), only on the connection it came on: after a reconnect
    /// that server has already routed it again.
    pub(crate) fn give_back(&self, n: &Incoming) {
        let mut bytes = Vec::new();
        let Some(m) = n.to_notify() else {
            return;
        };
        if encode_into(&m, &mut bytes).is_err() {
            return;
        }
        let Some((epoch, reference)) = n.ack() else {
            return;
        };
        let mut w = lock(&self.writer);
        let Some(cur) = w.as_mut().filter(|cur| cur.epoch == epoch) else {
            return;
        };
        cur.buf.clear();
        cur.buf.extend_from_slice(&bytes);
        push_ack(reference, &mut cur.buf);
        self.take_acks(cur.epoch, &mut cur.buf);
        let _ = Self::write_buf(&mut w);
    }

    fn bounce_unicasts(&self, events: &[Event]) {
        for e in events {
            if let Some(n) = e.unicast() {
                self.bounce(n);
            }
        }
    }

    // ----- operations --------------------------------------------------

    /// Sets (`Some`) or clears the app ID; tells the server when connected.
    pub(crate) fn set_app_id(&self, id: Option<AppId>) {
        let mut state = lock(&self.state);
        let hello = state.set_app_id(id);
        if self.is_connected() {
            let _ = self.send(&hello);
        }
    }

    /// The app ID.
    pub(crate) fn app_id(&self) -> Option<AppId> {
        lock(&self.state).app_id().cloned()
    }

    /// The receiver app ID of a registration: `to` when given, else the
    /// app ID.
    fn receiver(&self, to: Option<&str>) -> Result<AppId, Error> {
        match to.filter(|t| !t.is_empty()) {
            Some(t) => AppId::new(t).map_err(|e| Error::InvalidId("receiver", e)),
            None => self.app_id().ok_or(Error::AppId),
        }
    }

    /// Sends a notification.
    pub(crate) fn notify(
        &self,
        to: &str,
        notification: &str,
        parameter: &str,
        flags: u32,
        from: Option<&str>,
    ) -> Result<(), Error> {
        let msg = self.notify_message(to, notification, parameter, flags, from)?;
        if !self.ensure_connected() {
            return Err(Error::Server);
        }
        self.send(&msg)
    }

    /// Validates a notification and appends it to `out` as one frame
    /// (for [`super::Batch`]).
    pub(crate) fn encode_notify(
        &self,
        to: &str,
        notification: &str,
        parameter: &str,
        flags: u32,
        from: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let msg = self.notify_message(to, notification, parameter, flags, from)?;
        encode_into(&msg, out)
    }

    /// Writes frames encoded by [`Inner::encode_notify`] with one write.
    pub(crate) fn send_encoded(&self, frames: &[u8]) -> Result<(), Error> {
        if !self.ensure_connected() {
            return Err(Error::Server);
        }
        self.write_acked(frames, None)
    }

    /// The notify message for these arguments, validated.
    fn notify_message<'p>(
        &self,
        to: &str,
        notification: &str,
        parameter: &'p str,
        flags: u32,
        from: Option<&str>,
    ) -> Result<Message<'p>, Error> {
        let from = match from.filter(|f| !f.is_empty()) {
            Some(f) => AppId::new(f).map_err(|e| Error::InvalidId("from", e))?,
            None => self.app_id().ok_or(Error::AppId)?,
        };
        let to = Destination::parse(to).map_err(|e| Error::InvalidId("to", e))?;
        let notification =
            NotificationId::new(notification).map_err(|e| Error::InvalidId("notification", e))?;
        let parameter = RawJson::new(parameter).map_err(|_| Error::InvalidParameter)?;
        Ok(Message::Notify(Notify {
            from,
            to,
            notification,
            flags,
            reference: None,
            parameter,
        }))
    }

    /// Before a registration change: the state lock, and whether the change
    /// can be sent now (after an immediate connection attempt when
    /// disconnected). [`Error::Server`] when the client is closed, or when
    /// disconnected and the change is not to be kept (`keep`).
    fn lock_for_change(&self, keep: bool) -> Result<(StateGuard<'_>, bool), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Server);
        }
        let connected = self.ensure_connected();
        let state = lock(&self.state);
        let connected = connected && self.is_connected();
        if !connected && !keep {
            return Err(Error::Server);
        }
        Ok((state, connected))
    }

    /// Registers (or replaces) the callback for (`to`, `notification`).
    ///
    /// While disconnected: with `keep`, the registration is kept (and
    /// established on reconnect) and the result is [`Error::Server`];
    /// without `keep`, nothing changes and the result is
    /// [`Error::Server`]. A write failing after the local change counts as
    /// a connection drop after the registration: it stays and is replayed,
    /// and the result is `Ok` without `keep` (the handle is valid), or
    /// [`Error::Server`] with `keep` (the result code reports the drop).
    pub(crate) fn register(
        &self,
        to: Option<&str>,
        notification: &str,
        priority: i32,
        handler: Handler,
        ident: Ident,
        keep: bool,
    ) -> (Option<RegToken>, Result<(), Error>) {
        let to = match self.receiver(to) {
            Ok(t) => t,
            Err(e) => return (None, Err(e)),
        };
        let notification = match NotificationId::new(notification) {
            Ok(n) => n,
            Err(e) => return (None, Err(Error::InvalidId("notification", e))),
        };
        let (mut state, connected) = match self.lock_for_change(keep) {
            Ok(x) => x,
            Err(e) => return (None, Err(e)),
        };
        let (sub, generation, replaced) = match state.get(&to, &notification) {
            Some(e) => {
                let sub = Arc::clone(&e.value);
                let generation = sub.replace(handler, ident);
                (sub, generation, true)
            }
            None => (Sub::new(handler, ident), 0, false),
        };
        let outcome = state.register(to.clone(), notification.clone(), priority, Arc::clone(&sub));
        let written = if connected {
            self.send(&outcome.message)
        } else {
            Err(Error::Server)
        };
        drop(state);
        if replaced {
            // The old callback has finished and never runs again.
            sub.wait_idle(generation);
        }
        let result = if keep { written } else { Ok(()) };
        (
            Some(RegToken {
                sub,
                generation,
                to,
                notification,
            }),
            result,
        )
    }

    /// Removes the registration (`to`, `notification`) if `filter` accepts
    /// its mailbox; waits for its callback (unless called from it). Returns
    /// whether one was removed.
    pub(crate) fn unregister(
        &self,
        to: &AppId,
        notification: &str,
        filter: impl FnOnce(&Arc<Sub>) -> bool,
    ) -> bool {
        let mut state = lock(&self.state);
        let Some((sub, msg)) = state.unregister_if(to, notification, filter) else {
            return false;
        };
        let queued = sub.retire(&self.pool);
        if self.is_connected() {
            let _ = self.send(&msg);
        }
        drop(state);
        self.bounce_unicasts(&queued);
        sub.wait_idle(u64::MAX);
        true
    }

    /// [`Inner::unregister`] with an optional receiver (default: app ID).
    pub(crate) fn unregister_as(
        &self,
        to: Option<&str>,
        notification: &str,
        filter: impl FnOnce(&Arc<Sub>) -> bool,
    ) -> Result<bool, Error> {
        let to = self.receiver(to)?;
        Ok(self.unregister(&to, notification, filter))
    }

    /// Adds an observer (`observer`) or a unicast-error handler. With
    /// `keep` the same rules as [`Inner::register`].
    pub(crate) fn add_handler(
        &self,
        observer: bool,
        handler: Handler,
        ident: Ident,
        keep: bool,
    ) -> (Option<Arc<Sub>>, Result<(), Error>) {
        let (mut state, connected) = match self.lock_for_change(keep) {
            Ok(x) => x,
            Err(e) => return (None, Err(e)),
        };
        let sub = Sub::new(handler, ident);
        let msg = if observer {
            state.add_observer(Arc::clone(&sub))
        } else {
            state.add_error_handler(Arc::clone(&sub))
        };
        let written = match (connected, msg) {
            (false, _) => Err(Error::Server),
            (true, Some(m)) => self.send(&m),
            (true, None) => Ok(()),
        };
        drop(state);
        (Some(sub), if keep { written } else { Ok(()) })
    }

    /// True when an observer (`observer`) or unicast-error handler that
    /// `filter` accepts is registered.
    pub(crate) fn has_handler(&self, observer: bool, filter: impl Fn(&Arc<Sub>) -> bool) -> bool {
        let state = lock(&self.state);
        let all = if observer {
            state.observers()
        } else {
            state.error_handlers()
        };
        all.iter().any(filter)
    }

    /// Removes the observers (`observer`) or unicast-error handlers
    /// `filter` accepts and waits for their callbacks (except the calling
    /// one). Returns how many were removed.
    pub(crate) fn remove_handlers(
        &self,
        observer: bool,
        filter: impl FnMut(&Arc<Sub>) -> bool,
    ) -> usize {
        let mut state = lock(&self.state);
        let (removed, msg) = if observer {
            state.remove_observers(filter)
        } else {
            state.remove_error_handlers(filter)
        };
        for s in &removed {
            s.retire(&self.pool);
        }
        if let Some(m) = msg {
            if self.is_connected() {
                let _ = self.send(&m);
            }
        }
        drop(state);
        for s in &removed {
            s.wait_idle(u64::MAX);
        }
        removed.len()
    }

    /// Asks the server for its status; waits at most `timeout`. While
    /// nobody else reads, the caller reads itself (a callback may ask
    /// while every other worker is busy).
    pub(crate) fn status(&self, timeout: Duration) -> Result<Status, Error> {
        if !self.ensure_connected() {
            return Err(Error::Server);
        }
        let deadline = Instant::now() + timeout;
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let mut waiters = lock(&self.waiters);
            let epoch = lock(&self.writer).as_ref().map(|w| w.epoch);
            let Some(epoch) = epoch else {
                return Err(Error::Server);
            };
            self.send(&Message::StatusRequest)?;
            waiters.push_back((epoch, tx));
        }
        loop {
            match rx.try_recv() {
                Ok(s) => return Ok(s),
                Err(TryRecvError::Disconnected) => return Err(Error::Server),
                Err(TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout);
            }
            let g = match self.read.try_lock() {
                Ok(g) => Some(g),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(g) = g.filter(|g| g.is_some()) {
                self.help_read(g, (deadline - now).min(HELP_POLL));
                continue;
            }
            // Somebody reads (the answer may come with it), or the
            // connection is being replaced.
            match rx.recv_timeout((deadline - now).min(HELP_POLL)) {
                Ok(s) => return Ok(s),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(Error::Server),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Closes the client: every callback is removed (waiting for those in
    /// flight, except the calling one), the connection is closed and the
    /// threads end (joined unless called from one of them).
    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let subs = {
            let mut state = lock(&self.state);
            let mut subs = state.clear_registrations();
            subs.extend(state.remove_observers(|_| true).0);
            subs.extend(state.remove_error_handlers(|_| true).0);
            subs
        };
        for s in &subs {
            s.retire(&self.pool);
        }
        for s in &subs {
            s.wait_idle(u64::MAX);
        }
        // What the callbacks completed is acknowledged before the
        // connection goes: the server would give it to someone else.
        self.flush_acks();
        {
            let mut waiters = lock(&self.waiters);
            if let Some(w) = lock(&self.writer).take() {
                w.stream.shutdown();
            }
            waiters.clear();
        }
        {
            let _l = lock(&self.link);
            self.link_cv.notify_all();
        }
        self.pool.stop(self);
        let me = thread::current().id();
        let threads: Vec<_> = lock(&self.threads).drain(..).collect();
        for t in threads {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}
