//! The client's I/O layer: the connection, who reads and writes it, who
//! reconnects, and the operations both public APIs are built on.
//!
//! | module | holds |
//! |---|---|
//! | [`socket`] | the connected socket (Unix, TCP or TLS), writes that wait for room or do not |
//! | [`tls`] | TLS: the settings of a TLS address, the TLS socket and how two threads share its rustls state |
//! | [`output`] | what goes to the server: frames, acks held back, the queue, one writer at a time |
//! | [`reader`] | the reading half, the guard that re-arms it, dispatch to the callbacks |
//! | [`link`] | the link thread: connecting, the handshake, reconnecting, assisting, flushing |
//! | this file | `Inner`, its locks, and the operations (notify, register, status, ...) |
//!
//! Compared with the sans-IO models the project follows (quinn-proto's
//! `Connection`, smoltcp's `Interface`): what to send and what a message
//! means is decided without I/O by [`ClientState`] (the client's
//! `Connection`); this layer only moves bytes and threads, and its shared
//! state sits behind few locks, like quinn's `ConnectionInner` (one
//! mutex around the state, plus what signals the threads). The server
//! telling its frame limit in its `Welcome` plays the part of smoltcp's
//! `DeviceCapabilities::max_transmission_unit`: the sender learns the
//! limit instead of finding out by loss.
//!
//! # Threads
//!
//! - [`WORKERS`](super::pool::WORKERS) **pool workers** run the callbacks
//!   and read the connection. An idle worker waits in `epoll_wait` on the
//!   client's `ReadyPoll`, which holds the socket armed one-shot:
//!   arriving data wakes exactly one worker, which reads everything there
//!   is (without blocking), dispatches it to the mailboxes, re-arms the
//!   socket and then runs the first ready callback itself. A notification
//!   thus costs one wake-up, as for a plain blocking reader
//!   (docs/performance.md, R2). Reading is serialized by the `read` lock,
//!   so events reach the mailboxes in arrival order.
//! - One **link thread** owns the connection's life ([`link`]).
//! - A caller waiting for a status answer reads too when nobody else is
//!   reading (a callback may call `sync` while the other workers are busy).
//! - Callers write from their own threads, one at a time ([`output`]);
//!   one notify is one write of one frame (with the acks and queued
//!   frames before it).
//!
//! # Acknowledgements (crash-safe delivery)
//!
//! The `hello` says `acks: true`: the server keeps every unicast it sends
//! this client until the client acknowledges it, and gives the ones not
//! acknowledged to the next receiver (or back to their sender as unicast
//! errors) when the connection ends first. The client acknowledges a
//! unicast (a notify with a `reference`, for a registration) right after
//! its callback returned, from the pool worker that ran it, or together
//! with sending it back unchanged (the unregister race, a full mailbox).
//! A registration made with
//! [`Client::register_deferred`](super::Client::register_deferred)
//! acknowledges by itself: its callback's [`AckToken`](super::AckToken)
//! is used whenever the application decides, from any thread, and
//! acknowledges or sends back by these same paths (`Inner::token_ack`,
//! `Inner::give_back`), under the same rules.
//! Acks are held back briefly and go out with the client's next write
//! (usually the callback's own answer to the next notification), or on
//! their own once [`ACK_BATCH`] wait, or (sent by the link thread)
//! [`LINGER`](super::pool::LINGER) (1 ms) after a pool worker ran dry with
//! acks held back: nothing is held back for long while idle, and a busy
//! receiver pays no system call per ack. They go only on the connection
//! the unicast arrived on: when that connection has ended, the server has
//! already given the unicast to someone else. Broadcasts and unicast
//! errors are never acknowledged. A callback that completed while its ack
//! could not reach the server (the process was killed in between, or the
//! connection broke) is the only case where a unicast runs twice: at most
//! the acks held back per crash ([`ACK_BATCH`], more while the server
//! slows this client's writes down).
//!
//! # Slow servers and dead ones (Decision)
//!
//! The server slows a fast sender down by reading it no faster than its
//! receivers take their notifications (backpressure, issue 12): the
//! client's writes then wait for room in the socket. **That is not an
//! error**: a `notify` returns `Ok` once its bytes are written, however
//! long that takes, as a write on any stream does; only a broken
//! connection is an error ([`Error::Server`]).
//! [`Client::notify_within`](super::Client::notify_within) bounds the
//! wait and says so with [`Error::SendTimeout`] (see [`output`] for a
//! deadline that passes inside a frame). Threads that must keep going
//! while a writer waits (the readers, the pool workers sending acks, the
//! link thread) never wait for room: they queue what they have to write
//! ([`output`]), so a client whose own notifications fill its receiving
//! side keeps reading them.
//!
//! A call that finds the client disconnected wakes the link thread for an
//! immediate connection attempt and waits for its outcome at most
//! [`ATTEMPT_WAIT`] (a refused local connect takes microseconds), then
//! returns [`Error::Server`] (or [`Error::Permission`]).
//!
//! # Locks
//!
//! Five mutexes, each held briefly; none is held during a system call
//! that can wait, except `state` while a connection attempt writes its
//! handshake and reads the answer ([`HANDSHAKE_TIMEOUT`]); a TLS
//! connection adds a sixth, a leaf around its rustls state ([`tls`]):
//!
//! | lock | holds |
//! |---|---|
//! | `read` | the reading half; taken only as a `reader::ReadGuard`, which re-arms the socket on release |
//! | `state` | the [`ClientState`]: app ID, registrations, observers, handlers |
//! | `output` | the write half's bookkeeping: acks, queue, status waiters (`output::Output`) |
//! | `link` | what is asked of the link thread (with its condition variable: `link::Signal`) |
//! | `threads` | the join handles (start and close only) |
//!
//! Order: `read` → `state` → `output`, with a subscriber's mailbox and the
//! pool's queue after `state` (never while holding `output`); `link` and
//! `threads` are leaves: nothing else is taken while they are held. A pool
//! worker only ever *tries* the `read` lock (its holder re-arms the
//! socket). The write half is not a lock but a value one writer takes out
//! of `output` and gives back (`output::Writing`): a thread holding it
//! may take `output` briefly, and waits for it only where it may block
//! (a caller sending). Registration changes are queued under `state`, so
//! the server sees them in the local table's order, and written after
//! `state` is released. No lock is held while a callback runs or while
//! waiting for one.

pub mod link;
pub mod output;
pub mod reader;
pub mod socket;
pub mod tls;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nfy_core::msg::{Message, Notify, RawJson, Status};
use nfy_core::{AppId, Destination, NotificationId};

use super::addr::ServerAddr;
use super::event::{Event, Handler, Incoming};
use super::ident::Ident;
use super::pool::{self, lock, Pool, Sub, Wake};
use super::ready_poll::{ReadyPoll, Woken};
use super::state::ClientState;
use super::Error;

pub use link::{ATTEMPT_WAIT, DEFAULT_MAX_FRAME, HANDSHAKE_TIMEOUT, MAX_BACKOFF, MIN_BACKOFF};
pub use output::ACK_BATCH;
pub use reader::MAX_BODY;
pub use socket::CONNECT_TIMEOUT;
pub use tls::{TlsSettings, TlsSettingsError, TLS_HANDSHAKE_TIMEOUT};

use link::{Link, Signal, HELP_POLL};
use output::Output;
use reader::ReadSide;

/// Default wait for a status answer.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// How long closing the client waits for the write half to send the acks
/// of completed callbacks.
const CLOSE_FLUSH: Duration = Duration::from_millis(100);

/// The locked client state.
type StateGuard<'a> = MutexGuard<'a, ClientState<Arc<Sub>>>;

/// A notification's parameter as handed to the library.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'p> {
    /// JSON text from the caller: checked to be one JSON value.
    Text(&'p str),
    /// What `serde_json` made of a `Serialize` value: one JSON value by
    /// construction, not checked again ([`RawJson::serialized`]).
    Serialized(&'p str),
}

/// A mailbox holder plus the identity the public handles need.
pub(crate) struct RegToken {
    pub(crate) sub: Arc<Sub>,
    pub(crate) generation: u64,
    pub(crate) to: AppId,
    pub(crate) notification: NotificationId,
}

/// Whether a client's first connection attempt must succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstAttempt {
    /// Failing it fails the start.
    Required,
    /// The link thread keeps trying in the background.
    InBackground,
}

/// What a registration change does while the client is disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhileDown {
    /// Nothing changes; the call fails (the idiomatic API: an `Err` means
    /// "no registration").
    Refuse,
    /// The change is kept and established on reconnect (the ADK
    /// functions; module docs of `client`, Decision).
    Keep,
}

/// How far a registration change got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// It reached the server.
    Sent,
    /// It is kept locally and established on the next connection (the
    /// connection is down, or dropped while it was written).
    Kept,
}

/// The kinds of handler that are not registrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandlerKind {
    /// An observer (the server is told about the first and the last).
    Observer,
    /// A unicast-error handler (likewise).
    UnicastError,
    /// A connection-change handler (purely local).
    Connection,
}

/// The pool's workers acknowledge through the connection, and wait and
/// read on the client's [`ReadyPoll`].
impl pool::Hooks for Inner {
    fn done(&self, event: &Event) {
        self.completed(event);
    }

    fn unflushed(&self) -> bool {
        self.output.has_acks()
    }

    fn flush(&self) {
        self.flush_queued();
    }

    fn linger(&self) {
        Inner::linger(self, pool::LINGER);
    }

    fn park(&self) -> Wake {
        let Some(p) = &self.poll else {
            return Wake::Other;
        };
        match p.wait(None) {
            Woken::Readable => Wake::Readable,
            Woken::Kicked => Wake::Kicked,
            Woken::TimedOut | Woken::Stopped | Woken::Spurious => Wake::Other,
        }
    }

    fn unpark(&self) {
        if let Some(p) = &self.poll {
            p.kick();
        }
    }

    fn unpark_all(&self) {
        if let Some(p) = &self.poll {
            p.stop();
        }
    }

    fn io(&self) {
        // The holder re-arms the socket when it is done.
        if let Some(g) = self.try_lock_read() {
            self.read_input(g);
        }
    }

    fn saturated(&self) {
        self.request_assist();
    }
}

/// The state shared by a client's handles and threads.
pub(crate) struct Inner {
    addr: ServerAddr,
    state: Mutex<ClientState<Arc<Sub>>>,
    output: Output,
    /// The reading half; its holder reads (see [`reader`]).
    read: Mutex<Option<ReadSide>>,
    /// `None` only for a client closed from the start.
    poll: Option<ReadyPoll>,
    link: Signal<Link>,
    pool: Pool,
    closed: AtomicBool,
    epochs: AtomicU64,
    dropped: AtomicU64,
    /// The largest frame body the server accepts ([`link`]'s handshake).
    frame_limit: AtomicUsize,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    /// Starts a client: one connection attempt now (its failure is the
    /// error with [`FirstAttempt::Required`]), then the pool workers and
    /// the link thread.
    pub(crate) fn start(addr: ServerAddr, first: FirstAttempt) -> Result<Arc<Inner>, Error> {
        let poll = ReadyPoll::new().map_err(|_| Error::Server)?;
        let inner = Self::new(addr, Some(poll));
        let attempt = inner.attempt();
        if let Err(e) = attempt {
            if first == FirstAttempt::Required {
                inner.close();
                return Err(e);
            }
            inner.attempt_failed(e);
        }
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

    fn new(addr: ServerAddr, poll: Option<ReadyPoll>) -> Arc<Inner> {
        Arc::new(Inner {
            addr,
            state: Mutex::new(ClientState::new()),
            output: Output::new(),
            read: Mutex::new(None),
            poll,
            link: Signal::new(Link::new()),
            pool: Pool::new(),
            closed: AtomicBool::new(false),
            epochs: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            frame_limit: AtomicUsize::new(DEFAULT_MAX_FRAME),
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

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The address this client connects to.
    pub(crate) fn addr(&self) -> &ServerAddr {
        &self.addr
    }

    /// True while a connection is up.
    pub(crate) fn is_connected(&self) -> bool {
        self.output.live().is_some()
    }

    /// The largest notification frame body the server accepts.
    pub(crate) fn frame_limit(&self) -> usize {
        self.frame_limit.load(Ordering::Relaxed)
    }

    /// Events dropped because the mailboxes were full (broadcasts, observer
    /// events, unicast errors and connection changes; unicasts are sent
    /// back instead).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Callbacks that panicked.
    pub(crate) fn panics(&self) -> u64 {
        self.pool.panics()
    }

    /// Called by a pool worker after an event's callback returned: a
    /// unicast received for a registration is to be acknowledged.
    fn completed(&self, event: &Event) {
        if let Event::Notify(n) = event {
            self.acknowledge(n);
        }
    }

    /// Acknowledges `n` on the connection it came on, if it is a unicast
    /// delivered for a registration. The ack is held back and goes with
    /// the client's next write, or on its own once [`ACK_BATCH`] are
    /// waiting or the pool runs dry ([`pool::LINGER`]); nothing once that
    /// connection has ended (its server gave the unicast to someone
    /// else).
    fn acknowledge(&self, n: &Incoming) {
        let Some((epoch, reference)) = n.ack() else {
            return;
        };
        if self.output.push_ack(epoch, reference) >= ACK_BATCH {
            self.flush_queued();
        }
    }

    /// An ack token's `ack`: [`Inner::acknowledge`], and since a token is
    /// used on any thread, after its callback (no pool worker lingers for
    /// it then), the link thread sends what is held back within
    /// [`pool::LINGER`] unless a write takes it first.
    pub(crate) fn token_ack(&self, n: &Incoming) {
        self.acknowledge(n);
        if self.output.has_acks() {
            self.linger(pool::LINGER);
        }
    }

    /// Sends `n` back unchanged with its ack, like a unicast whose
    /// registration is gone (an ack token given back, or dropped unused).
    /// Nothing for what is never acknowledged: a broadcast sent back would
    /// be broadcast again.
    pub(crate) fn give_back(&self, n: &Incoming) {
        if n.ack().is_some() {
            self.bounce(n);
        }
    }

    /// Sends the unicasts among `events` back (their registration is
    /// gone).
    fn bounce_unicasts(&self, events: &[Event]) {
        for e in events {
            if let Some(n) = e.unicast() {
                self.bounce(n);
            }
        }
    }

    /// Submits `event` to every subscriber of `subs`; counts the ones
    /// refused because the mailboxes are full.
    fn submit_all(&self, subs: &[Arc<Sub>], event: &Event) {
        for s in subs {
            if let Err(pool::Refused::Full) = self.pool.submit(s, event.clone(), self) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    // ----- operations --------------------------------------------------

    /// Sets (`Some`) or clears the app ID; tells the server when connected
    /// (a new `hello`, queued).
    pub(crate) fn set_app_id(&self, id: Option<AppId>) {
        let mut state = lock(&self.state);
        let hello = state.set_app_id(id);
        let queued = self.output.enqueue(&hello).is_ok();
        drop(state);
        if queued {
            self.flush_queued();
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

    /// Sends a notification: `Ok` once its bytes are written, waiting for
    /// room as long as the server slows this client down, at most until
    /// `deadline` ([`Error::SendTimeout`]).
    pub(crate) fn notify(
        &self,
        to: &str,
        notification: &str,
        parameter: Param<'_>,
        flags: u32,
        from: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        let msg = self.notify_message(to, notification, parameter, flags, from)?;
        self.ensure_connected()?;
        let mut w = self.writer(deadline)?;
        w.send(&msg, self.frame_limit(), deadline)
    }

    /// Validates a notification and appends it to `out` as one frame
    /// (for [`super::Batch`]); [`Error::TooLarge`] beyond the server's
    /// limit.
    pub(crate) fn encode_notify(
        &self,
        to: &str,
        notification: &str,
        parameter: Param<'_>,
        flags: u32,
        from: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let msg = self.notify_message(to, notification, parameter, flags, from)?;
        output::encode_within(&msg, self.frame_limit(), out)
    }

    /// Writes frames encoded by [`Inner::encode_notify`] with one write.
    pub(crate) fn send_encoded(&self, frames: &[u8]) -> Result<(), Error> {
        self.ensure_connected()?;
        self.writer(None)?.send_frames(frames, None)
    }

    /// The notify message for these arguments, validated.
    fn notify_message<'p>(
        &self,
        to: &str,
        notification: &str,
        parameter: Param<'p>,
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
        let parameter = match parameter {
            Param::Text(t) => RawJson::new(t).map_err(|_| Error::InvalidParameter)?,
            Param::Serialized(t) => RawJson::serialized(t),
        };
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
    /// disconnected). The attempt's error when the client is closed, or
    /// when disconnected and the change is not to be kept.
    fn lock_for_change(&self, down: WhileDown) -> Result<(StateGuard<'_>, bool), Error> {
        if self.is_closed() {
            return Err(Error::Server);
        }
        let attempt = self.ensure_connected();
        let state = lock(&self.state);
        if let Err(e) = attempt {
            if down == WhileDown::Refuse {
                return Err(e);
            }
        }
        let connected = self.is_connected();
        if !connected && down == WhileDown::Refuse {
            return Err(Error::Server);
        }
        Ok((state, connected))
    }

    /// Queues `msg` (under the state lock: in table order) when
    /// `connected`; [`Inner::finish_change`] writes it.
    fn queue_change(&self, connected: bool, msg: Option<&Message<'_>>) -> Option<output::Queued> {
        match (connected, msg) {
            (true, Some(m)) => self.output.enqueue(m).ok(),
            _ => None,
        }
    }

    /// Waits until a change queued by [`Inner::queue_change`] is written
    /// (`Some`), or reports it kept (`None`, or its connection ended).
    fn finish_change(&self, queued: Option<output::Queued>, needed: bool) -> Change {
        match queued {
            Some(q) if self.wait_written(q).is_ok() => Change::Sent,
            None if !needed => Change::Sent,
            _ => Change::Kept,
        }
    }

    /// Registers (or replaces) the callback for (`to`, `notification`).
    ///
    /// While disconnected: with [`WhileDown::Keep`] the registration is
    /// kept and established on reconnect ([`Change::Kept`]); with
    /// [`WhileDown::Refuse`] nothing changes and the result is the error.
    /// A connection ending while the change is written counts as a drop
    /// after the registration: it stays and is replayed
    /// ([`Change::Kept`]).
    pub(crate) fn register(
        &self,
        to: Option<&str>,
        notification: &str,
        priority: i32,
        handler: Handler,
        ident: Ident,
        down: WhileDown,
    ) -> Result<(RegToken, Change), Error> {
        let to = self.receiver(to)?;
        let notification =
            NotificationId::new(notification).map_err(|e| Error::InvalidId("notification", e))?;
        let (mut state, connected) = self.lock_for_change(down)?;
        let (sub, generation, replaced) = match state.get(&to, &notification) {
            Some(e) => {
                let sub = Arc::clone(&e.value);
                let generation = sub.replace(handler, ident);
                (sub, generation, true)
            }
            None => (Sub::new(handler, ident), 0, false),
        };
        let outcome = state.register(to.clone(), notification.clone(), priority, Arc::clone(&sub));
        let queued = self.queue_change(connected, Some(&outcome.message));
        drop(state);
        let change = self.finish_change(queued, true);
        if replaced {
            // The old callback has finished and never runs again.
            sub.wait_idle(generation);
        }
        Ok((
            RegToken {
                sub,
                generation,
                to,
                notification,
            },
            change,
        ))
    }

    /// Removes the registration (`to`, `notification`) if `filter` accepts
    /// its mailbox; waits for its callback (unless called from it). Returns
    /// whether one was removed. Never waits for the server: the
    /// `unregister` is queued.
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
        let sent = self.output.enqueue(&msg).is_ok();
        drop(state);
        self.bounce_unicasts(&queued);
        if sent {
            self.flush_queued();
        }
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

    /// Adds a handler of `kind`, with the same rules as
    /// [`Inner::register`]. A connection-change handler is purely local:
    /// always [`Change::Sent`], whatever the connection.
    pub(crate) fn add_handler(
        &self,
        kind: HandlerKind,
        handler: Handler,
        ident: Ident,
        down: WhileDown,
    ) -> Result<(Arc<Sub>, Change), Error> {
        let sub = Sub::new(handler, ident);
        if kind == HandlerKind::Connection {
            lock(&self.state).add_connection_handler(Arc::clone(&sub));
            return Ok((sub, Change::Sent));
        }
        let (mut state, connected) = self.lock_for_change(down)?;
        let msg = match kind {
            HandlerKind::Observer => state.add_observer(Arc::clone(&sub)),
            _ => state.add_error_handler(Arc::clone(&sub)),
        };
        let queued = self.queue_change(connected, msg.as_ref());
        drop(state);
        let change = if connected {
            self.finish_change(queued, msg.is_some())
        } else {
            Change::Kept
        };
        Ok((sub, change))
    }

    /// True when a handler of `kind` that `filter` accepts is registered.
    pub(crate) fn has_handler(
        &self,
        kind: HandlerKind,
        filter: impl Fn(&Arc<Sub>) -> bool,
    ) -> bool {
        let state = lock(&self.state);
        let all = match kind {
            HandlerKind::Observer => state.observers(),
            HandlerKind::UnicastError => state.error_handlers(),
            HandlerKind::Connection => state.connection_handlers(),
        };
        all.iter().any(filter)
    }

    /// Removes the handlers of `kind` that `filter` accepts and waits for
    /// their callbacks (except the calling one). Returns how many were
    /// removed.
    pub(crate) fn remove_handlers(
        &self,
        kind: HandlerKind,
        filter: impl FnMut(&Arc<Sub>) -> bool,
    ) -> usize {
        let mut state = lock(&self.state);
        let (removed, msg) = match kind {
            HandlerKind::Observer => state.remove_observers(filter),
            HandlerKind::UnicastError => state.remove_error_handlers(filter),
            HandlerKind::Connection => (state.remove_connection_handlers(filter), None),
        };
        for s in &removed {
            s.retire(&self.pool);
        }
        let sent = msg.is_some_and(|m| self.output.enqueue(&m).is_ok());
        drop(state);
        if sent {
            self.flush_queued();
        }
        for s in &removed {
            s.wait_idle(u64::MAX);
        }
        removed.len()
    }

    /// Asks the server for its status; waits at most `timeout`. While
    /// nobody else reads, the caller reads itself (a callback may ask
    /// while every other worker is busy).
    pub(crate) fn status(&self, timeout: Duration) -> Result<Status, Error> {
        self.ensure_connected()?;
        let deadline = Instant::now() + timeout;
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let mut w = self.writer(Some(deadline)).map_err(timed_out)?;
            w.send_status_request(tx, deadline).map_err(timed_out)?;
        }
        loop {
            match rx.try_recv() {
                Ok(s) => return Ok(s),
                Err(mpsc::TryRecvError::Disconnected) => return Err(Error::Server),
                Err(mpsc::TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout);
            }
            if let Some(g) = self.try_lock_read().filter(|g| g.is_some()) {
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
            subs.extend(state.remove_connection_handlers(|_| true));
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
        if let Ok(mut w) = self.writer(Some(Instant::now() + CLOSE_FLUSH)) {
            let _ = w.flush_now();
        }
        let side = self.lock_read().take();
        if let Some(side) = side {
            if let Some(p) = &self.poll {
                p.unwatch(side.socket());
            }
            side.socket().shutdown();
        }
        self.output.close();
        self.stop_link();
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

/// A status request that could not be sent in time timed out like one
/// not answered in time.
fn timed_out(e: Error) -> Error {
    match e {
        Error::SendTimeout => Error::Timeout,
        e => e,
    }
}
