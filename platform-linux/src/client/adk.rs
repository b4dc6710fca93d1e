//! The ADK-style API: the original's global functions (spec section 3
//! table), with its result codes, on one process-wide client.
//!
//! The process-wide client is created by the first call of any of these
//! functions, for the address of the environment
//! ([`ServerAddr::from_env`]); it connects in the background and keeps
//! reconnecting with backoff, and every call made while it is disconnected
//! asks for an immediate attempt and returns `ERR_SERVER` when that fails
//! (within [`ATTEMPT_WAIT`](super::conn::ATTEMPT_WAIT)). With an unusable
//! `NFY_PORT` every call that needs the server returns `ERR_SERVER`.
//!
//! `data` is the original's opaque `void*`, as a `usize` word; the library
//! never interprets it. Filters of the unregister functions: an absent
//! (`None`) callback matches any callback, an absent data matches any data.
//!
//! # Foreign callbacks
//!
//! Callbacks of other languages (the C ABI of `libvfiipc`) are not Rust
//! `fn`s: they register through the `*_foreign` functions with a
//! [`CallbackId`] (the callback's address and data word, which the
//! unregister filters compare: [`CallbackFilter`]) and a handler closure
//! that calls them. The Rust functions above are these same functions with
//! the `fn`'s address as identity, so both behave identically and share
//! one registration table: a foreign caller can remove a Rust callback by
//! its address and the other way round.
//!
//! See the [module docs of `client`](super) for the threading guarantees
//! and the decision on registering while the server is down (ADK calls
//! keep the registration and return `ERR_SERVER`).
//!
//! `ipcNotificationServer` runs the server in this process
//! ([`ipc_notification_server`], [`ipc_notification_server_with_config`]):
//! the same server as the `notifysvc` binary, with the default address and
//! limits. Like the original it returns only on error.

use std::sync::{Arc, OnceLock};

use nfy_core::{AppId, NotifyResult};

use super::conn::{Change, HandlerKind, Inner, Param, WhileDown};
use super::event::Handler;
use super::ident::Ident;
use super::{Client, Delivery, Error, NotifyCallback, NotifyObserver, Observed, ServerAddr};

static GLOBAL: OnceLock<Client> = OnceLock::new();

/// The process-wide client, created on first use.
fn global() -> &'static Client {
    GLOBAL.get_or_init(|| match ServerAddr::from_env() {
        Ok(addr) => Client::connect_in_background(addr),
        Err(_) => Client::wrap(Inner::closed(ServerAddr {
            unix: None,
            tcp: None,
            tls: None,
        })),
    })
}

fn code(r: Result<(), Error>) -> NotifyResult {
    NotifyResult::from(r)
}

/// The result code of a registration change: a change kept while the
/// server is down reports why it is down.
fn change_code(inner: &Inner, r: Result<Change, Error>) -> NotifyResult {
    match r {
        Ok(Change::Sent) => NotifyResult::Ok,
        Ok(Change::Kept) => code(Err(inner.down_error())),
        Err(e) => code(Err(e)),
    }
}

/// The identity of an ADK-style callback: its address and the data word
/// it was registered with. The library never calls through `callback`;
/// the unregister functions compare it with their [`CallbackFilter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId {
    /// The callback function's address.
    pub callback: usize,
    /// The opaque data word (the original's `void *data`).
    pub data: usize,
}

/// The filter of an unregister function: `None` matches any callback
/// (any data); the original passes a null pointer for that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CallbackFilter {
    /// The callback's address, or `None` for any callback.
    pub callback: Option<usize>,
    /// The data word, or `None` for any data.
    pub data: Option<usize>,
}

impl CallbackFilter {
    /// Matches every callback, closures of the idiomatic API included.
    pub const ANY: CallbackFilter = CallbackFilter {
        callback: None,
        data: None,
    };

    /// Matches exactly `id`.
    pub fn exact(id: CallbackId) -> CallbackFilter {
        CallbackFilter {
            callback: Some(id.callback),
            data: Some(id.data),
        }
    }

    /// True when `id` passes the filter.
    pub fn matches(&self, id: CallbackId) -> bool {
        self.callback.is_none_or(|c| c == id.callback) && self.data.is_none_or(|d| d == id.data)
    }

    /// True when it matches every callback and data.
    pub fn is_any(&self) -> bool {
        self.callback.is_none() && self.data.is_none()
    }
}

/// A foreign notification or unicast-error handler: called for each
/// delivery on the library's threads (see the [module docs](self)).
pub type ForeignNotify = Arc<dyn Fn(&Delivery<'_>) + Send + Sync + 'static>;

/// A foreign observer handler: called for each delivery the server
/// reports.
pub type ForeignObserver = Arc<dyn Fn(&Observed<'_>) + Send + Sync + 'static>;

fn rust_callback(cb: NotifyCallback, data: usize) -> CallbackId {
    CallbackId {
        callback: cb as usize,
        data,
    }
}

fn rust_observer(cb: NotifyObserver, data: usize) -> CallbackId {
    CallbackId {
        callback: cb as usize,
        data,
    }
}

/// `ipcSetAppID`: sets the process's app ID (source of notifications,
/// default receiver). An empty string clears it. **Beyond**: returns
/// `ERR_APP_ID` for an invalid ID (`"1"`, `"*"`, too long, control
/// characters), which is then not set.
pub fn ipc_set_app_id(app_id: &str) -> NotifyResult {
    if app_id.is_empty() {
        global().clear_app_id();
        return NotifyResult::Ok;
    }
    code(global().set_app_id(app_id))
}

/// `ipcGetAppID`: the app ID set with [`ipc_set_app_id`], empty when none.
pub fn ipc_get_app_id() -> String {
    global().app_id().unwrap_or_default()
}

/// `ipcNotify`: sends `param` as `notification_id` to `to` (app ID, `"1"`
/// or `"*"`). `from` empty means the app ID; neither → `ERR_APP_ID`;
/// server not reachable → `ERR_SERVER`.
pub fn ipc_notify(
    to: &str,
    notification_id: &str,
    param: &serde_json::Value,
    flags: u32,
    from: &str,
) -> NotifyResult {
    ipc_notify_json(to, notification_id, &param.to_string(), flags, from)
}

/// [`ipc_notify`] with the parameter as JSON text (one JSON value).
/// **Decision**: text that is not one JSON value returns `ERR_SERVER`
/// (nothing is sent), as [`Error::InvalidParameter`] does.
pub fn ipc_notify_json(
    to: &str,
    notification_id: &str,
    param: &str,
    flags: u32,
    from: &str,
) -> NotifyResult {
    code(global().inner().notify(
        to,
        notification_id,
        Param::Text(param),
        flags,
        Some(from),
        None,
    ))
}

/// `ipcRegisterNotificationCB`: receives `notification_id` as `to` (empty:
/// the app ID; neither → `ERR_APP_ID`) with `priority`. Replaces an earlier
/// registration of the same (notification, receiver), whatever its
/// callback; when this returns, the replaced callback has finished (unless
/// called from it). A `None` callback discards the registration. While the
/// server is down the registration is kept and `ERR_SERVER` returned.
pub fn ipc_register_notification_cb(
    notification_id: &str,
    cb: Option<NotifyCallback>,
    data: usize,
    priority: i32,
    to: &str,
) -> NotifyResult {
    let Some(cb) = cb else {
        return ipc_unregister_notification_cb(notification_id, None, None, to);
    };
    let handler = Arc::new(move |d: &Delivery<'_>| {
        let param = d.parameter_json();
        cb(data, d.from, d.to, d.notification, &param, d.flags)
    });
    ipc_register_notification_foreign(
        notification_id,
        rust_callback(cb, data),
        handler,
        priority,
        to,
    )
}

/// [`ipc_register_notification_cb`] for a foreign callback: `id` is its
/// identity for the unregister filters, `handler` calls it.
pub fn ipc_register_notification_foreign(
    notification_id: &str,
    id: CallbackId,
    handler: ForeignNotify,
    priority: i32,
    to: &str,
) -> NotifyResult {
    let inner = global().inner();
    let result = inner.register(
        Some(to),
        notification_id,
        priority,
        Handler::Notify(handler),
        Ident::Notify(id),
        WhileDown::Keep,
    );
    change_code(inner, result.map(|(_, change)| change))
}

/// `ipcUnregisterNotificationCB`: removes the registration of
/// `notification_id` for `to` (empty: the app ID) if its callback and data
/// match the filters. On return the callback has finished and never runs
/// again; called from that callback itself, it returns at once instead of
/// deadlocking. `OK` also when nothing matched.
pub fn ipc_unregister_notification_cb(
    notification_id: &str,
    cb: Option<NotifyCallback>,
    data: Option<usize>,
    to: &str,
) -> NotifyResult {
    let filter = CallbackFilter {
        callback: cb.map(|f| f as usize),
        data,
    };
    ipc_unregister_notification_foreign(notification_id, filter, to)
}

/// [`ipc_unregister_notification_cb`] with a filter on callback
/// identities.
pub fn ipc_unregister_notification_foreign(
    notification_id: &str,
    filter: CallbackFilter,
    to: &str,
) -> NotifyResult {
    let r = global()
        .inner()
        .unregister_as(Some(to), notification_id, |s| {
            s.ident().matches_notify(filter)
        });
    code(r.map(|_| ()))
}

/// `ipcRegisterUnicastError`: `cb` runs with the original notification for
/// every unicast this process sent that nobody received. Registering the
/// same (callback, data) twice adds it once. A `None` callback removes
/// every unicast-error callback (the original's `ipcRegisterUnicastError(0,
/// 0)`).
pub fn ipc_register_unicast_error(cb: Option<NotifyCallback>, data: usize) -> NotifyResult {
    let Some(cb) = cb else {
        return ipc_unregister_unicast_error(None, None);
    };
    let handler = Arc::new(move |d: &Delivery<'_>| {
        let param = d.parameter_json();
        cb(data, d.from, d.to, d.notification, &param, d.flags)
    });
    ipc_register_unicast_error_foreign(rust_callback(cb, data), handler)
}

/// [`ipc_register_unicast_error`] for a foreign callback.
pub fn ipc_register_unicast_error_foreign(id: CallbackId, handler: ForeignNotify) -> NotifyResult {
    add_handler(HandlerKind::UnicastError, id, Handler::Notify(handler))
}

/// Adds an observer or unicast-error handler (`kind`) unless one with this
/// identity is registered (then: as if added again, `ERR_SERVER` while
/// the server is down).
fn add_handler(kind: HandlerKind, id: CallbackId, handler: Handler) -> NotifyResult {
    let inner = global().inner();
    let observer = kind == HandlerKind::Observer;
    let ident = if observer {
        Ident::Observer(id)
    } else {
        Ident::Notify(id)
    };
    let exact = CallbackFilter::exact(id);
    let present = inner.has_handler(kind, |s| {
        let have = s.ident();
        if observer {
            have.matches_observer(exact)
        } else {
            have.matches_notify(exact)
        }
    });
    if present {
        return if inner.is_connected() {
            NotifyResult::Ok
        } else {
            code(Err(inner.down_error()))
        };
    }
    let result = inner.add_handler(kind, handler, ident, WhileDown::Keep);
    change_code(inner, result.map(|(_, change)| change))
}

/// `ipcUnregisterUnicastError`: removes the unicast-error callbacks that
/// match the filters; on return they have finished (except a calling one).
pub fn ipc_unregister_unicast_error(
    cb: Option<NotifyCallback>,
    data: Option<usize>,
) -> NotifyResult {
    ipc_unregister_unicast_error_foreign(CallbackFilter {
        callback: cb.map(|f| f as usize),
        data,
    })
}

/// [`ipc_unregister_unicast_error`] with a filter on callback identities.
pub fn ipc_unregister_unicast_error_foreign(filter: CallbackFilter) -> NotifyResult {
    global()
        .inner()
        .remove_handlers(HandlerKind::UnicastError, |s| {
            s.ident().matches_notify(filter)
        });
    NotifyResult::Ok
}

/// `ipcRegisterObserver`: `cb` runs for every delivery the server makes
/// (from, resolved receiver or empty, notification, flags). Registering the
/// same (callback, data) twice adds it once. A `None` callback removes
/// every observer.
pub fn ipc_register_observer(cb: Option<NotifyObserver>, data: usize) -> NotifyResult {
    let Some(cb) = cb else {
        return ipc_unregister_observer(None, None);
    };
    let handler = Arc::new(move |o: &Observed<'_>| cb(data, o.from, o.to, o.notification, o.flags));
    ipc_register_observer_foreign(rust_observer(cb, data), handler)
}

/// [`ipc_register_observer`] for a foreign callback.
pub fn ipc_register_observer_foreign(id: CallbackId, handler: ForeignObserver) -> NotifyResult {
    add_handler(HandlerKind::Observer, id, Handler::Observe(handler))
}

/// `ipcUnregisterObserver`: removes the observers that match the filters;
/// on return they have finished (except a calling one).
pub fn ipc_unregister_observer(cb: Option<NotifyObserver>, data: Option<usize>) -> NotifyResult {
    ipc_unregister_observer_foreign(CallbackFilter {
        callback: cb.map(|f| f as usize),
        data,
    })
}

/// [`ipc_unregister_observer`] with a filter on callback identities.
pub fn ipc_unregister_observer_foreign(filter: CallbackFilter) -> NotifyResult {
    global()
        .inner()
        .remove_handlers(HandlerKind::Observer, |s| {
            s.ident().matches_observer(filter)
        });
    NotifyResult::Ok
}

/// The app ID as an [`AppId`], for callers that want the typed form.
pub fn ipc_app_id() -> Option<AppId> {
    global().inner().app_id()
}

/// `ipcNotificationServer()`: runs the notification server in this process
/// with the default configuration locations (spec 4). Returns only on
/// error: `ERR_SERVER` when another server runs (or another start-up
/// failure), `ERR_PERMISSION`, `ERR_CONFIG_FILE` or `ERR_CONFIG_SYNTAX`.
pub fn ipc_notification_server() -> NotifyResult {
    serve(crate::server::ConfigSource::Default)
}

/// `ipcNotificationServer(config_file)`: as [`ipc_notification_server`]
/// with this configuration file; `None` is the same as no argument.
pub fn ipc_notification_server_with_config(config_file: Option<&std::path::Path>) -> NotifyResult {
    match config_file {
        Some(path) => serve(crate::server::ConfigSource::File(path.to_path_buf())),
        None => ipc_notification_server(),
    }
}

fn serve(config: crate::server::ConfigSource) -> NotifyResult {
    let opts = crate::server::Options {
        config,
        ..crate::server::Options::default()
    };
    match crate::server::run(opts) {
        // `run` returns Ok only after a shutdown request; the original never
        // returns then, so report it as the server having stopped.
        Ok(()) => NotifyResult::ErrServer,
        Err(e) => {
            ::log::error!("{e}");
            e.result()
        }
    }
}
