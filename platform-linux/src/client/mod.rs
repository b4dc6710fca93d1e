//! The client library: what an application links to send and receive
//! notifications (spec section 3).
//!
//! Two public APIs share one implementation ([`conn`]'s `Inner`):
//!
//! - the idiomatic [`Client`]: closures, [`Registration`] and [`Handle`]
//!   values that unregister on drop, serde parameters, a typed [`Error`];
//! - the ADK-style global functions in [`adk`] (`ipc_notify`,
//!   `ipc_register_notification_cb`, ...), mirroring the original's table
//!   with its result codes, on one lazily created process-wide client.
//!
//! | module | holds |
//! |---|---|
//! | [`addr`] | where the server listens (`NFY_SOCKET`, `NFY_PORT`, defaults) |
//! | [`state`] | the sans-IO core: registrations, dispatch, replay on reconnect |
//! | [`pool`] | the bounded callback pool with one mailbox per registration |
//! | [`event`] | what the callbacks are given (events) and the callbacks themselves |
//! | [`ident`] | the identity of an ADK-style callback, for the unregister filters |
//! | [`conn`] | the connection: socket, output, reader, link thread, operations |
//! | [`ready_poll`] | the epoll instance the pool's idle workers wait on |
//! | [`report`] | the server's report for `nfy status` |
//! | [`adk`] | the ADK-style global functions |
//!
//! # Behaviour (both APIs)
//!
//! - One connection per client, Unix socket first, TCP loopback as
//!   fallback; the compact encoding (`hello` first). Each (re)connection
//!   sends `hello`, a status request, `unicast_errors(false)` when no
//!   unicast-error handler is registered, a `register` per registration
//!   and `observe(true)` when an observer is registered, and reads the
//!   server's `Welcome` (its frame limit) and status answer.
//! - A notification larger than the server accepts is refused with
//!   [`Error::TooLarge`] before anything is sent (the server would skip
//!   it). A sender the server slows down waits: see
//!   [`conn`](conn#slow-servers-and-dead-ones-decision).
//! - Callbacks run on a pool of [`pool::WORKERS`] threads, never on the
//!   caller's thread; per registration in arrival order; different
//!   registrations concurrently. An idle worker also reads the connection
//!   and then runs what it read itself (one wake-up per notification).
//! - After an unregister (or a [`Registration`] drop, or a
//!   re-registration that replaces a callback) returns, the callback has
//!   finished and never runs again — except when called from that very
//!   callback, which returns at once without deadlocking (its own
//!   invocation is still running; it runs no further event). **Caveat**:
//!   two callbacks that unregister *each other* at the same moment wait for
//!   each other forever; the guarantee makes that unavoidable.
//! - A unicast for a registration that was just removed (or whose events
//!   were still queued when it was removed) is sent back to the server
//!   unchanged, which re-routes it or returns a unicast error to its
//!   sender.
//! - When the connection drops, the client's link thread reconnects with
//!   backoff and re-establishes everything; calls made meanwhile return
//!   [`Error::Server`] / `ERR_SERVER` within [`conn::ATTEMPT_WAIT`].
//!   [`Client::on_connection_change`] tells an application each way.
//!
//! # Decision: permission denied
//!
//! A Unix socket the process may not connect to (the server's socket is
//! mode 0660 in its `--socket-group`) is [`Error::Permission`], naming
//! the socket and its group, which maps to `ERR_PERMISSION` (-3): the
//! original's code for a permission problem with the local socket, and a
//! code an application retrying on `ERR_SERVER` does not retry in vain.
//! (It applies when TCP loopback, the fallback, does not connect either.)
//!
//! # Decision: registering while the server is down
//!
//! The original only says "server not reachable → `ERR_SERVER`".
//!
//! - ADK functions (`ipc_register_notification_cb`, `ipc_register_observer`,
//!   `ipc_register_unicast_error`): the registration is **kept** locally,
//!   the call returns `ERR_SERVER`, and the registration is established as
//!   soon as the server is back. Terminal applications often start before
//!   the service and ignore the result of a register call at boot; keeping
//!   it makes such code work, and code that retries on `ERR_SERVER` merely
//!   replaces the kept registration with the same one. The registration
//!   stays removable with the matching `ipc_unregister_*` call.
//! - Idiomatic API ([`Client::register`], [`Client::observe`]): the call
//!   returns `Err(Error::Server)` and **nothing** is kept, because the
//!   returned handle is the only way to remove a registration: an `Err`
//!   means "no registration". [`Client::on_unicast_error`] is purely local
//!   (infallible) and takes effect on the next connection.
//! - Unregistering while disconnected always succeeds: the server forgot
//!   the connection's registrations when it dropped.

pub mod addr;
pub mod adk;
pub mod conn;
pub mod event;
pub mod ident;
pub mod pool;
pub mod ready_poll;
pub mod report;
pub mod state;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use nfy_core::msg::Status;
use nfy_core::{AppId, IdError, NotifyResult};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use addr::{AddrError, ServerAddr};
pub use conn::tls::{TlsSettings, TlsSettingsError};
pub use nfy_core::msg::Status as ServerStatus;
pub use report::{server_report, ServerReport, TlsConnection};

use conn::{FirstAttempt, HandlerKind, Inner, Param, RegToken, WhileDown};
use event::{Handler, Incoming};
use ident::Ident;
use pool::Sub;

/// The original's notification callback: `data` is the opaque word given
/// at registration (the C `void*`), then from, to (as sent: app ID, `"1"`
/// or `"*"`), notification ID, parameter, flags. Also the unicast-error
/// callback's type.
pub type NotifyCallback = fn(
    data: usize,
    from: &str,
    to: &str,
    notification_id: &str,
    param: &serde_json::Value,
    flags: u32,
);

/// The original's observer callback: data, from, resolved receiver (empty
/// when nothing received it), notification ID, flags. Never the parameter.
pub type NotifyObserver = fn(data: usize, from: &str, to: &str, notification_id: &str, flags: u32);

/// Why a client call failed. Every variant maps to one of the original
/// result codes ([`Error::result`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The notification server is not running or the connection is down
    /// (`ERR_SERVER`).
    Server,
    /// No app ID set and none given (`ERR_APP_ID`).
    AppId,
    /// An identifier breaks the identifier rules; names which one
    /// (`"from"`, `"to"`, `"receiver"`, `"notification"`, `"app ID"`).
    /// **Decision**: maps to `ERR_APP_ID`, the original's only code about
    /// identifiers.
    InvalidId(&'static str, IdError),
    /// The parameter is not one JSON value or could not be serialized.
    /// **Decision**: maps to `ERR_SERVER` (nothing was sent).
    InvalidParameter,
    /// A message could not be encoded (an internal limit; maps to
    /// `ERR_SERVER`).
    Encode,
    /// The server did not answer a status request in time (`ERR_SERVER`).
    Timeout,
    /// The server address in the environment is unusable (`ERR_SERVER`).
    Address(AddrError),
    /// The process may not connect to the server's Unix socket (module
    /// docs, Decision: `ERR_PERMISSION`).
    Permission {
        /// The socket.
        socket: PathBuf,
        /// The group whose members may connect (the socket's), when known.
        group: Option<String>,
    },
    /// The notification is larger than the server accepts (it would skip
    /// it); nothing was sent. **Decision**: maps to `ERR_SERVER`, like
    /// the other notifications that were not sent.
    TooLarge {
        /// Its encoded size, bytes of frame body.
        size: usize,
        /// The largest frame body the server accepts.
        limit: usize,
    },
    /// A send with a deadline ([`Client::notify_within`]) could not write
    /// the notification in time: the server is slowing this sender down
    /// (its receivers are slower). Nothing was sent (`ERR_SERVER`).
    SendTimeout,
    /// TLS with the server failed (a [`ServerAddr::tls`] address): its
    /// certificate is not accepted, or it refused ours (`ERR_SERVER`).
    Tls(String),
}

impl Error {
    /// The core error of the same meaning.
    pub fn core(&self) -> nfy_core::Error {
        match self {
            Error::AppId | Error::InvalidId(..) => nfy_core::Error::AppId,
            Error::Permission { .. } => nfy_core::Error::Permission,
            Error::Server
            | Error::InvalidParameter
            | Error::Encode
            | Error::Timeout
            | Error::Address(_)
            | Error::TooLarge { .. }
            | Error::SendTimeout
            | Error::Tls(_) => nfy_core::Error::Server,
        }
    }

    /// The original result code.
    pub fn result(&self) -> NotifyResult {
        self.core().result()
    }
}

impl From<Error> for nfy_core::Error {
    fn from(e: Error) -> Self {
        e.core()
    }
}

impl From<AddrError> for Error {
    fn from(e: AddrError) -> Self {
        Error::Address(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Server => f.write_str("notification server is not running"),
            Error::AppId => f.write_str("the application ID has not been set"),
            Error::InvalidId(what, e) => write!(f, "invalid {what}: {e}"),
            Error::InvalidParameter => f.write_str("the parameter is not valid JSON"),
            Error::Encode => f.write_str("the message could not be encoded"),
            Error::Timeout => f.write_str("the notification server did not answer in time"),
            Error::Address(e) => write!(f, "bad server address: {e}"),
            Error::Permission { socket, group } => {
                write!(
                    f,
                    "permission denied on the notification server's socket {}",
                    socket.display()
                )?;
                match group {
                    Some(g) => write!(f, ": join group {g} (the socket's group) to use it"),
                    None => f.write_str(": ask for access to it"),
                }
            }
            Error::TooLarge { size, limit } => write!(
                f,
                "the notification is too large: {size} bytes, the server accepts at most {limit}"
            ),
            Error::SendTimeout => f.write_str(
                "the notification server did not take the notification in time \
                 (it is slowing this sender down); nothing was sent",
            ),
            Error::Tls(why) => write!(f, "TLS with the notification server failed: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// One notification as a callback sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// Source app ID.
    pub from: &'a str,
    /// Destination as sent: an app ID, `"1"` or `"*"`.
    pub to: &'a str,
    /// Notification ID.
    pub notification: &'a str,
    /// The parameter, as JSON text (checked by the server when it
    /// accepted it; the library does not check it again).
    pub parameter: &'a str,
    /// Flags as sent.
    pub flags: u32,
}

impl Delivery<'_> {
    /// The parameter as a JSON value (`Null` if it does not parse, which a
    /// parameter the server checked always does).
    pub fn parameter_json(&self) -> serde_json::Value {
        serde_json::from_str(self.parameter).unwrap_or(serde_json::Value::Null)
    }

    /// The parameter deserialized into `T`.
    pub fn parameter_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.parameter)
    }
}

/// One delivery as an observer sees it (never the parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed<'a> {
    /// Source app ID.
    pub from: &'a str,
    /// The resolved receiver app ID; empty when nothing received it.
    pub to: &'a str,
    /// Notification ID.
    pub notification: &'a str,
    /// Flags as sent.
    pub flags: u32,
}

/// A change of the connection to the server, told to the callbacks of
/// [`Client::on_connection_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionEvent {
    /// The connection ended (the server stopped or went away); the client
    /// is reconnecting, and calls return [`Error::Server`] meanwhile.
    Disconnected,
    /// Connected again, every registration, observer and preference sent
    /// to the server again (or connected for the first time, for a client
    /// started with [`Client::connect_in_background`]). They are in force
    /// for other clients' notifications once the server has processed
    /// them: [`Client::sync`].
    Connected,
}

/// Options of [`Client::notify_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifyOptions<'a> {
    /// Flags, carried not interpreted.
    pub flags: u32,
    /// Source app ID (impersonation); `None` = the client's app ID.
    pub from: Option<&'a str>,
}

/// Closes the connection when the last [`Client`] clone is dropped.
struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A connection to the notification server (idiomatic API).
///
/// Cheap to clone; clones share the connection. The connection closes
/// when the last clone is dropped or [`Client::close`] is called. A clone
/// moved into one of its own callbacks keeps the client alive until
/// `close`.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    _owner: Arc<Owner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("addr", self.inner.addr())
            .field("connected", &self.inner.is_connected())
            .finish()
    }
}

impl Client {
    /// Connects to the server at the address of the environment
    /// ([`ServerAddr::from_env`]). `Err(Error::Server)` when it is not
    /// running.
    pub fn connect() -> Result<Client, Error> {
        Self::connect_to(ServerAddr::from_env()?)
    }

    /// Connects to the server at `addr`. `Err(Error::Server)` when it is
    /// not reachable.
    pub fn connect_to(addr: ServerAddr) -> Result<Client, Error> {
        Inner::start(addr, FirstAttempt::Required).map(Self::wrap)
    }

    /// A client that connects in the background: never fails; while the
    /// server is unreachable, calls behave as during a reconnect.
    pub fn connect_in_background(addr: ServerAddr) -> Client {
        match Inner::start(addr.clone(), FirstAttempt::InBackground) {
            Ok(inner) => Self::wrap(inner),
            // Only thread spawning can fail here; retry once, then give a
            // closed client whose calls return `Error::Server`.
            Err(_) => Self::wrap(
                Inner::start(addr.clone(), FirstAttempt::InBackground)
                    .unwrap_or_else(|_| Inner::closed(addr)),
            ),
        }
    }

    pub(crate) fn wrap(inner: Arc<Inner>) -> Client {
        Client {
            _owner: Arc::new(Owner(Arc::clone(&inner))),
            inner,
        }
    }

    /// The address this client connects to.
    pub fn address(&self) -> &ServerAddr {
        self.inner.addr()
    }

    /// True while the connection is up.
    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    /// The largest notification the server accepts, in bytes of encoded
    /// frame body (from its `Welcome`; [`conn::DEFAULT_MAX_FRAME`] for a
    /// server that does not say). A notification larger than this is
    /// refused with [`Error::TooLarge`]: about this size minus the IDs and
    /// a few bytes is the longest parameter.
    pub fn max_frame(&self) -> usize {
        self.inner.frame_limit()
    }

    /// Sets the app ID: the source of notifications and the default
    /// receiver of registrations.
    pub fn set_app_id(&self, id: &str) -> Result<(), Error> {
        let id = AppId::new(id).map_err(|e| Error::InvalidId("app ID", e))?;
        self.inner.set_app_id(Some(id));
        Ok(())
    }

    /// Clears the app ID.
    pub fn clear_app_id(&self) {
        self.inner.set_app_id(None);
    }

    /// The app ID, if set.
    pub fn app_id(&self) -> Option<String> {
        self.inner.app_id().map(|a| a.as_str().to_owned())
    }

    /// Sends `parameter` (any `Serialize`, e.g. `serde_json::Value`) as
    /// notification `notification` to `to` (app ID, `"1"` or `"*"`), from
    /// the client's app ID, flags 0.
    ///
    /// `Ok` once the notification is written to the connection. While the
    /// server slows this client down (its receivers are slower:
    /// backpressure), the call waits, as a write to any stream does; only
    /// a broken connection is an error ([`Error::Server`]). To bound the
    /// wait, [`Client::notify_within`].
    pub fn notify<P: Serialize + ?Sized>(
        &self,
        to: &str,
        notification: &str,
        parameter: &P,
    ) -> Result<(), Error> {
        self.notify_with(to, notification, parameter, NotifyOptions::default())
    }

    /// [`Client::notify`] with flags and an explicit source.
    pub fn notify_with<P: Serialize + ?Sized>(
        &self,
        to: &str,
        notification: &str,
        parameter: &P,
        options: NotifyOptions<'_>,
    ) -> Result<(), Error> {
        let text = serde_json::to_string(parameter).map_err(|_| Error::InvalidParameter)?;
        self.inner.notify(
            to,
            notification,
            Param::Serialized(&text),
            options.flags,
            options.from,
            None,
        )
    }

    /// [`Client::notify_with`] that waits at most `timeout` for the server
    /// to take the notification: [`Error::SendTimeout`] then, and nothing
    /// was sent (see [`conn::output`] for a deadline that passes inside the
    /// frame: the connection is closed and re-established).
    pub fn notify_within<P: Serialize + ?Sized>(
        &self,
        to: &str,
        notification: &str,
        parameter: &P,
        options: NotifyOptions<'_>,
        timeout: Duration,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let text = serde_json::to_string(parameter).map_err(|_| Error::InvalidParameter)?;
        self.inner.notify(
            to,
            notification,
            Param::Serialized(&text),
            options.flags,
            options.from,
            Some(deadline),
        )
    }

    /// Sends a parameter given as JSON text (checked to be one JSON value).
    pub fn notify_raw(&self, to: &str, notification: &str, json: &str) -> Result<(), Error> {
        self.inner
            .notify(to, notification, Param::Text(json), 0, None, None)
    }

    /// [`Client::notify_raw`] with flags and an explicit source.
    pub fn notify_raw_with(
        &self,
        to: &str,
        notification: &str,
        json: &str,
        options: NotifyOptions<'_>,
    ) -> Result<(), Error> {
        self.inner.notify(
            to,
            notification,
            Param::Text(json),
            options.flags,
            options.from,
            None,
        )
    }

    /// Receives `notification` as the client's app ID; replaces an earlier
    /// registration of the same pair (its handle then does nothing on
    /// drop). Dropping the returned [`Registration`] unregisters.
    pub fn register<F>(
        &self,
        notification: &str,
        priority: i32,
        callback: F,
    ) -> Result<Registration, Error>
    where
        F: Fn(&Delivery<'_>) + Send + Sync + 'static,
    {
        self.register_inner(None, notification, priority, callback)
    }

    /// [`Client::register`] on behalf of app `to` (impersonation).
    pub fn register_as<F>(
        &self,
        to: &str,
        notification: &str,
        priority: i32,
        callback: F,
    ) -> Result<Registration, Error>
    where
        F: Fn(&Delivery<'_>) + Send + Sync + 'static,
    {
        self.register_inner(Some(to), notification, priority, callback)
    }

    /// [`Client::register_as`] (`to` = `None`: the client's app ID) whose
    /// callback decides when each unicast is acknowledged: it is given an
    /// [`AckToken`] to [`ack`](AckToken::ack) once the notification is safe
    /// elsewhere (a relay: once the next hop has it), or to
    /// [`give_back`](AckToken::give_back) so the server routes it again
    /// without this client, or returns it to its sender as a unicast
    /// error. The token may outlive the callback and move to another
    /// thread; until it is used, the server keeps the unicast and gives it
    /// to another receiver (or back to its sender) if this connection ends
    /// (see `docs/reliability.md`, crash-safe delivery). Unacknowledged
    /// unicasts count against the server's per-connection window
    /// (`--max-queue`), past which it drops the connection as it drops a
    /// client that does not read: use the token soon.
    pub fn register_deferred<F>(
        &self,
        to: Option<&str>,
        notification: &str,
        priority: i32,
        callback: F,
    ) -> Result<Registration, Error>
    where
        F: Fn(&Delivery<'_>, AckToken) + Send + Sync + 'static,
    {
        let inner = Arc::downgrade(&self.inner);
        let handler = Handler::Deferred(Arc::new(move |d: &Delivery<'_>, n: &Arc<Incoming>| {
            callback(
                d,
                AckToken {
                    inner: inner.clone(),
                    incoming: Some(Arc::clone(n)),
                },
            )
        }));
        self.register_with(to, notification, priority, handler)
    }

    fn register_inner<F>(
        &self,
        to: Option<&str>,
        notification: &str,
        priority: i32,
        callback: F,
    ) -> Result<Registration, Error>
    where
        F: Fn(&Delivery<'_>) + Send + Sync + 'static,
    {
        self.register_with(
            to,
            notification,
            priority,
            Handler::Notify(Arc::new(callback)),
        )
    }

    fn register_with(
        &self,
        to: Option<&str>,
        notification: &str,
        priority: i32,
        handler: Handler,
    ) -> Result<Registration, Error> {
        let (token, _) = self.inner.register(
            to,
            notification,
            priority,
            handler,
            Ident::Closure,
            WhileDown::Refuse,
        )?;
        Ok(Registration {
            inner: Arc::downgrade(&self.inner),
            token,
        })
    }

    /// Runs `callback` for every unicast this client sent that nobody
    /// received. Purely local: takes effect on the next connection when
    /// disconnected. Dropping the [`Handle`] removes it.
    pub fn on_unicast_error<F>(&self, callback: F) -> Handle
    where
        F: Fn(&Delivery<'_>) + Send + Sync + 'static,
    {
        self.local_handler(
            HandlerKind::UnicastError,
            Handler::Notify(Arc::new(callback)),
        )
    }

    /// Adds a handler that needs no answer from the server (kept while
    /// disconnected; nothing on a closed client).
    fn local_handler(&self, kind: HandlerKind, handler: Handler) -> Handle {
        let sub = self
            .inner
            .add_handler(kind, handler, Ident::Closure, WhileDown::Keep)
            .ok()
            .map(|(sub, _)| sub);
        Handle {
            inner: Arc::downgrade(&self.inner),
            sub: sub.as_ref().map(Arc::downgrade),
            kind,
        }
    }

    /// Runs `callback` each time the connection to the server ends
    /// ([`ConnectionEvent::Disconnected`]) and each time it is made again
    /// ([`ConnectionEvent::Connected`], once everything is sent again),
    /// on the pool like any callback, in order. Purely local; it is told
    /// the changes after this call. Dropping the [`Handle`] removes it.
    pub fn on_connection_change<F>(&self, callback: F) -> Handle
    where
        F: Fn(ConnectionEvent) + Send + Sync + 'static,
    {
        self.local_handler(
            HandlerKind::Connection,
            Handler::Connection(Arc::new(callback)),
        )
    }

    /// Runs `callback` for every delivery the server makes (and once with
    /// an empty receiver for each notification nobody received). Dropping
    /// the [`Handle`] stops observing.
    pub fn observe<F>(&self, callback: F) -> Result<Handle, Error>
    where
        F: Fn(&Observed<'_>) + Send + Sync + 'static,
    {
        let (sub, _) = self.inner.add_handler(
            HandlerKind::Observer,
            Handler::Observe(Arc::new(callback)),
            Ident::Closure,
            WhileDown::Refuse,
        )?;
        Ok(Handle {
            inner: Arc::downgrade(&self.inner),
            sub: Some(Arc::downgrade(&sub)),
            kind: HandlerKind::Observer,
        })
    }

    /// The server's status (connections, registrations, counters); waits at
    /// most [`conn::STATUS_TIMEOUT`].
    pub fn status(&self) -> Result<Status, Error> {
        self.inner.status(conn::STATUS_TIMEOUT)
    }

    /// [`Client::status`] with an explicit timeout.
    pub fn status_timeout(&self, timeout: Duration) -> Result<Status, Error> {
        self.inner.status(timeout)
    }

    /// Returns once the server has processed everything this client sent
    /// before the call (a status round trip): registrations are then in
    /// force for notifications other clients send afterwards.
    pub fn sync(&self) -> Result<(), Error> {
        self.status().map(|_| ())
    }

    /// Deliveries dropped because the callback mailboxes were full
    /// ([`pool::MAX_PENDING`]): broadcasts, observer events and unicast
    /// errors. (Unicasts are sent back to the server instead.)
    pub fn dropped_deliveries(&self) -> u64 {
        self.inner.dropped()
    }

    /// Callbacks that panicked (the panic is caught; the pool goes on).
    pub fn callback_panics(&self) -> u64 {
        self.inner.panics()
    }

    /// Closes the connection for every clone: all callbacks are removed
    /// (waiting for those running, except the calling one) and the
    /// client's threads end.
    pub fn close(&self) {
        self.inner.close();
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Starts a [`Batch`]: notifications collected and sent together with
    /// one write (one system call instead of one each), for senders of
    /// many notifications at once.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            client: self,
            frames: Vec::new(),
            count: 0,
        }
    }
}

/// A batch is sent by itself once its encoded frames reach this size.
pub const BATCH_BYTES: usize = 64 * 1024;

/// Notifications collected by [`Client::batch`] and sent with one write.
///
/// Each `notify*` call checks its arguments at once (the same errors as
/// [`Client::notify_raw`]) and encodes the notification; nothing reaches
/// the server before [`Batch::send`], or before the batch holds
/// [`BATCH_BYTES`] (the call that crosses it sends them all), or before it
/// is dropped (dropping sends what is left and ignores errors: call
/// `send` to see them). Order is kept within the batch and with the
/// client's other notifications sent before `send`. When sending fails
/// (the connection dropped), some of the batch may have reached the
/// server; the rest is discarded.
#[derive(Debug)]
pub struct Batch<'c> {
    client: &'c Client,
    frames: Vec<u8>,
    count: usize,
}

impl Batch<'_> {
    /// Adds a notification whose parameter is JSON text (checked to be one
    /// JSON value), flags 0, from the client's app ID.
    pub fn notify_raw(&mut self, to: &str, notification: &str, json: &str) -> Result<(), Error> {
        self.notify_raw_with(to, notification, json, NotifyOptions::default())
    }

    /// [`Batch::notify_raw`] with flags and an explicit source.
    pub fn notify_raw_with(
        &mut self,
        to: &str,
        notification: &str,
        json: &str,
        options: NotifyOptions<'_>,
    ) -> Result<(), Error> {
        self.add(to, notification, Param::Text(json), options)
    }

    fn add(
        &mut self,
        to: &str,
        notification: &str,
        parameter: Param<'_>,
        options: NotifyOptions<'_>,
    ) -> Result<(), Error> {
        self.client.inner.encode_notify(
            to,
            notification,
            parameter,
            options.flags,
            options.from,
            &mut self.frames,
        )?;
        self.count += 1;
        if self.frames.len() >= BATCH_BYTES {
            self.send()?;
        }
        Ok(())
    }

    /// Adds a notification with any `Serialize` parameter (see
    /// [`Client::notify`]).
    pub fn notify<P: Serialize + ?Sized>(
        &mut self,
        to: &str,
        notification: &str,
        parameter: &P,
    ) -> Result<(), Error> {
        let text = serde_json::to_string(parameter).map_err(|_| Error::InvalidParameter)?;
        self.add(
            to,
            notification,
            Param::Serialized(&text),
            NotifyOptions::default(),
        )
    }

    /// Notifications waiting to be sent.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sends what the batch holds with one write; returns how many
    /// notifications that was. The batch is empty afterwards, whatever
    /// the outcome.
    pub fn send(&mut self) -> Result<usize, Error> {
        let n = std::mem::take(&mut self.count);
        if n == 0 {
            return Ok(0);
        }
        let result = self.client.inner.send_encoded(&self.frames);
        self.frames.clear();
        result.map(|()| n)
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// A registration of the idiomatic API; dropping it unregisters (the
/// callback has then finished and never runs again).
pub struct Registration {
    inner: Weak<Inner>,
    token: RegToken,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("to", &self.token.to)
            .field("notification", &self.token.notification)
            .finish()
    }
}

impl Registration {
    /// The receiver app ID.
    pub fn receiver(&self) -> &str {
        self.token.to.as_str()
    }

    /// The notification ID.
    pub fn notification(&self) -> &str {
        self.token.notification.as_str()
    }

    /// Unregisters now (same as dropping).
    pub fn unregister(self) {}
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let sub = &self.token.sub;
        let generation = self.token.generation;
        // A registration replaced since (another generation) is not ours.
        inner.unregister(&self.token.to, &self.token.notification, |s| {
            Arc::ptr_eq(s, sub) && s.generation() == generation
        });
    }
}

/// The acknowledgement of one delivery to a [`Client::register_deferred`]
/// callback: use it once, with [`AckToken::ack`] or
/// [`AckToken::give_back`].
///
/// **Decision**: dropping an unused token gives the notification back
/// (nothing is lost when a relay forgets one, or panics), never
/// acknowledges it. Broadcasts are not acknowledged: their token does
/// nothing ([`AckToken::is_needed`] is false). An ack for a connection
/// that has ended since is not sent: that server has already given the
/// unicast to someone else (or back to its sender).
pub struct AckToken {
    inner: Weak<Inner>,
    /// `None` once used.
    incoming: Option<Arc<Incoming>>,
}

impl fmt::Debug for AckToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckToken")
            .field("needed", &self.is_needed())
            .finish()
    }
}

impl AckToken {
    /// True for a unicast (to an app ID or `"1"`) that the server keeps
    /// until acknowledged; false for a broadcast.
    pub fn is_needed(&self) -> bool {
        self.incoming.as_ref().is_some_and(|n| n.ack().is_some())
    }

    /// Acknowledges the unicast: the server forgets it. Held back like the
    /// library's own acks: sent with the client's next write, or on its
    /// own within [`pool::LINGER`].
    pub fn ack(mut self) {
        if let (Some(inner), Some(n)) = (self.inner.upgrade(), self.incoming.take()) {
            inner.token_ack(&n);
        }
    }

    /// Sends the unicast back unchanged, with its ack, in one write: the
    /// server routes it again without this connection, or returns it to
    /// its sender as a unicast error. Does nothing for a broadcast.
    pub fn give_back(mut self) {
        self.give_back_now();
    }

    fn give_back_now(&mut self) {
        if let (Some(inner), Some(n)) = (self.inner.upgrade(), self.incoming.take()) {
            inner.give_back(&n);
        }
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        self.give_back_now();
    }
}

/// An observer, unicast-error or connection-change handler of the
/// idiomatic API; dropping it removes the callback (which has then
/// finished and never runs again).
pub struct Handle {
    inner: Weak<Inner>,
    sub: Option<Weak<Sub>>,
    kind: HandlerKind,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("kind", &self.kind).finish()
    }
}

impl Handle {
    /// Removes the callback now (same as dropping).
    pub fn remove(self) {}
}

impl Drop for Handle {
    fn drop(&mut self) {
        let (Some(inner), Some(sub)) = (self.inner.upgrade(), self.sub.as_ref()) else {
            return;
        };
        inner.remove_handlers(self.kind, |s| std::ptr::eq(Arc::as_ptr(s), sub.as_ptr()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes() {
        assert_eq!(Error::Server.result(), NotifyResult::ErrServer);
        assert_eq!(Error::AppId.result(), NotifyResult::ErrAppId);
        assert_eq!(
            Error::InvalidId("to", IdError::Empty).result(),
            NotifyResult::ErrAppId
        );
        assert_eq!(Error::Timeout.result(), NotifyResult::ErrServer);
        assert_eq!(
            NotifyResult::from(Err::<(), _>(Error::AppId)),
            NotifyResult::ErrAppId
        );
        assert_eq!(
            Error::Server.to_string(),
            "notification server is not running"
        );
    }

    #[test]
    fn delivery_parameter_helpers() {
        let d = Delivery {
            from: "a",
            to: "b",
            notification: "n",
            parameter: r#"{"x":3}"#,
            flags: 0,
        };
        assert_eq!(d.parameter_json()["x"], 3);
        #[derive(serde::Deserialize, PartialEq, Debug)]
        struct P {
            x: u8,
        }
        assert_eq!(d.parameter_as::<P>().unwrap(), P { x: 3 });
        let bad = Delivery {
            parameter: "{",
            ..d
        };
        assert_eq!(bad.parameter_json(), serde_json::Value::Null);
    }

    #[test]
    fn connect_fails_fast_without_server() {
        let dir = std::env::temp_dir().join(format!("nfy-none-{}", std::process::id()));
        let addr = ServerAddr::unix(dir.join("no.sock"));
        let t = std::time::Instant::now();
        assert_eq!(Client::connect_to(addr.clone()).unwrap_err(), Error::Server);
        let c = Client::connect_in_background(addr);
        assert!(!c.is_connected());
        c.set_app_id("me").unwrap();
        assert_eq!(c.notify("x", "n", &1).unwrap_err(), Error::Server);
        assert_eq!(c.register("n", 0, |_| {}).unwrap_err(), Error::Server);
        assert_eq!(c.observe(|_| {}).unwrap_err(), Error::Server);
        assert_eq!(c.status().unwrap_err(), Error::Server);
        let _h = c.on_unicast_error(|_| {});
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        c.close();
    }

    #[test]
    fn argument_errors() {
        let dir = std::env::temp_dir().join(format!("nfy-none2-{}", std::process::id()));
        let c = Client::connect_in_background(ServerAddr::unix(dir.join("no.sock")));
        assert_eq!(c.notify("x", "n", &1).unwrap_err(), Error::AppId);
        assert!(matches!(
            c.set_app_id("*").unwrap_err(),
            Error::InvalidId("app ID", IdError::Reserved)
        ));
        c.set_app_id("me").unwrap();
        assert_eq!(c.app_id().as_deref(), Some("me"));
        assert!(matches!(
            c.notify("", "n", &1).unwrap_err(),
            Error::InvalidId("to", _)
        ));
        assert!(matches!(
            c.notify("x", "", &1).unwrap_err(),
            Error::InvalidId("notification", _)
        ));
        assert_eq!(
            c.notify_raw("x", "n", "").unwrap_err(),
            Error::InvalidParameter
        );
        c.clear_app_id();
        assert_eq!(c.register("n", 0, |_| {}).unwrap_err(), Error::AppId);
    }
}
