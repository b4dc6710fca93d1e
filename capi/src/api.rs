//! The C ABI (`include/nfy/nfy.h`): one `extern "C"` function per
//! declaration there, each a thin checked call of the ADK-style functions
//! of [`nfy_linux::client::adk`] on the process-wide client.
//!
//! Every function's safety contract is the header's: string arguments are
//! null or NUL-terminated and unchanged during the call; buffers are as
//! large as said; callbacks have the declared signature and stay callable
//! while registered. Within that contract nothing here has undefined
//! behaviour, whatever the values: see the [crate docs](crate).

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nfy_core::NotifyResult;
use nfy_linux::client::adk;

use crate::args::{optional, required, BadArg, Kind};
use crate::callback::{self, AnyFn, NotifyCb, NotifyInvoke, ObserverCb, ObserverInvoke};
use crate::guard;

/// Turns a bad argument into the call's result code.
macro_rules! arg {
    ($entry:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(bad) => return BadArg::result(bad, $entry),
        }
    };
}

/// `nfy_result_text`: a static description of a result code.
#[no_mangle]
pub extern "C" fn nfy_result_text(result: c_int) -> *const c_char {
    let unknown = c"unknown result code";
    guard::run("nfy_result_text", unknown.as_ptr(), || {
        let text: &'static CStr = match NotifyResult::from_code(result) {
            Some(NotifyResult::Ok) => c"NOTIFY_OK: no error",
            Some(NotifyResult::ErrServer) => {
                c"NOTIFY_ERR_SERVER: notification server is not running"
            }
            Some(NotifyResult::ErrAppId) => {
                c"NOTIFY_ERR_APP_ID: the application ID has not been set"
            }
            Some(NotifyResult::ErrPermission) => {
                c"NOTIFY_ERR_PERMISSION: no permission to create or connect to the notification socket"
            }
            Some(NotifyResult::ErrConfigFile) => {
                c"NOTIFY_ERR_CONFIG_FILE: the configuration file could not be opened for reading"
            }
            Some(NotifyResult::ErrConfigSyntax) => {
                c"NOTIFY_ERR_CONFIG_SYNTAX: the configuration file contained invalid input"
            }
            None => unknown,
        };
        text.as_ptr()
    })
}

/// `nfy_version`: the library's version.
#[no_mangle]
pub extern "C" fn nfy_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    guard::run("nfy_version", VERSION.as_ptr(), || VERSION.as_ptr())
}

/// `nfy_set_app_id`.
///
/// # Safety
///
/// `app_id` is null or a NUL-terminated string (see the module docs).
#[no_mangle]
pub unsafe extern "C" fn nfy_set_app_id(app_id: *const c_char) -> c_int {
    const ENTRY: &str = "nfy_set_app_id";
    guard::result(ENTRY, || {
        // SAFETY: the header's contract for `app_id`.
        let app_id = arg!(ENTRY, unsafe {
            required(app_id, "app_id", Kind::Identifier)
        });
        adk::ipc_set_app_id(app_id)
    })
}

/// `nfy_get_app_id`: snprintf-style copy of the app ID.
///
/// # Safety
///
/// `buf` is null or points to `size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn nfy_get_app_id(buf: *mut c_char, size: usize) -> usize {
    guard::run("nfy_get_app_id", 0, || {
        let id = adk::ipc_get_app_id();
        if !buf.is_null() && size > 0 {
            let n = id.len().min(size - 1);
            // SAFETY: `buf` has `size` writable bytes (the contract) and
            // `n + 1 <= size`; `id` is a separate allocation, so they do not
            // overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(id.as_ptr().cast::<c_char>(), buf, n);
                buf.add(n).write(0);
            }
        }
        id.len()
    })
}

/// `nfy_notify`.
///
/// # Safety
///
/// String arguments are null or NUL-terminated (see the module docs).
#[no_mangle]
pub unsafe extern "C" fn nfy_notify(
    to: *const c_char,
    notification_id: *const c_char,
    param_json: *const c_char,
    flags: c_uint,
    from: *const c_char,
) -> c_int {
    const ENTRY: &str = "nfy_notify";
    guard::result(ENTRY, || {
        // SAFETY: the header's contract for string arguments (null or
        // NUL-terminated, unchanged during the call).
        let to = arg!(ENTRY, unsafe { required(to, "to", Kind::Identifier) });
        // SAFETY: as for `to`.
        let id = arg!(ENTRY, unsafe {
            required(notification_id, "notification_id", Kind::Identifier)
        });
        // SAFETY: as for `to`.
        let param = arg!(ENTRY, unsafe {
            optional(param_json, "param_json", Kind::Parameter)
        });
        // SAFETY: as for `to`.
        let from = arg!(ENTRY, unsafe { optional(from, "from", Kind::Identifier) });
        adk::ipc_notify_json(to, id, param.unwrap_or("null"), flags, from.unwrap_or(""))
    })
}

/// The registration of a notification callback, shared by the plain and
/// the binding variant: `cb` is `None` to discard.
///
/// # Safety
///
/// String arguments as in the module docs.
unsafe fn register(
    entry: &'static str,
    notification_id: *const c_char,
    cb: Option<(usize, adk::ForeignNotify)>,
    data: *mut c_void,
    priority: c_int,
    to: *const c_char,
) -> NotifyResult {
    // SAFETY: the header's contract for string arguments.
    let id = arg!(entry, unsafe {
        required(notification_id, "notification_id", Kind::Identifier)
    });
    // SAFETY: as for `notification_id`.
    let to = arg!(entry, unsafe { optional(to, "to", Kind::Identifier) }).unwrap_or("");
    match cb {
        Some((address, handler)) => adk::ipc_register_notification_foreign(
            id,
            callback::identity(address, data),
            handler,
            priority,
            to,
        ),
        None => adk::ipc_unregister_notification_foreign(id, adk::CallbackFilter::ANY, to),
    }
}

/// `nfy_register`.
///
/// # Safety
///
/// String arguments as in the module docs; `cb` has the declared signature
/// and stays callable until unregistered.
#[no_mangle]
pub unsafe extern "C" fn nfy_register(
    notification_id: *const c_char,
    cb: Option<NotifyCb>,
    data: *mut c_void,
    priority: c_int,
    to: *const c_char,
) -> c_int {
    const ENTRY: &str = "nfy_register";
    guard::result(ENTRY, || {
        let word = data.expose_provenance();
        let cb = cb.map(|f| (f as usize, callback::notify(f, word)));
        // SAFETY: forwarded contract.
        unsafe { register(ENTRY, notification_id, cb, data, priority, to) }
    })
}

/// `nfy_register_with`.
///
/// # Safety
///
/// As [`nfy_register`]; `invoke` accepts `callback`.
#[no_mangle]
pub unsafe extern "C" fn nfy_register_with(
    notification_id: *const c_char,
    callback: Option<AnyFn>,
    data: *mut c_void,
    invoke: Option<NotifyInvoke>,
    priority: c_int,
    to: *const c_char,
) -> c_int {
    const ENTRY: &str = "nfy_register_with";
    guard::result(ENTRY, || {
        let word = data.expose_provenance();
        let cb = match (callback, invoke) {
            (None, _) => None,
            (Some(f), Some(invoke)) => Some((f as usize, callback::notify_with(invoke, f, word))),
            (Some(_), None) => return missing_invoke(ENTRY),
        };
        // SAFETY: forwarded contract.
        unsafe { register(ENTRY, notification_id, cb, data, priority, to) }
    })
}

fn missing_invoke(entry: &str) -> NotifyResult {
    log::error!("{entry}: `invoke` is a null pointer; nothing registered");
    NotifyResult::ErrServer
}

/// `nfy_unregister`.
///
/// # Safety
///
/// String arguments as in the module docs.
#[no_mangle]
pub unsafe extern "C" fn nfy_unregister(
    notification_id: *const c_char,
    cb: Option<NotifyCb>,
    data: *mut c_void,
    to: *const c_char,
) -> c_int {
    const ENTRY: &str = "nfy_unregister";
    guard::result(ENTRY, || {
        // SAFETY: the header's contract for string arguments.
        let id = arg!(ENTRY, unsafe {
            required(notification_id, "notification_id", Kind::Identifier)
        });
        // SAFETY: as for `notification_id`.
        let to = arg!(ENTRY, unsafe { optional(to, "to", Kind::Identifier) }).unwrap_or("");
        let filter = callback::filter(cb.map(|f| f as usize), data);
        adk::ipc_unregister_notification_foreign(id, filter, to)
    })
}

/// `nfy_register_unicast_error`.
///
/// # Safety
///
/// `cb` has the declared signature and stays callable until unregistered.
#[no_mangle]
pub unsafe extern "C" fn nfy_register_unicast_error(
    cb: Option<NotifyCb>,
    data: *mut c_void,
) -> c_int {
    guard::result("nfy_register_unicast_error", || match cb {
        Some(f) => adk::ipc_register_unicast_error_foreign(
            callback::identity(f as usize, data),
            callback::notify(f, data.expose_provenance()),
        ),
        None => adk::ipc_unregister_unicast_error_foreign(adk::CallbackFilter::ANY),
    })
}

/// `nfy_register_unicast_error_with`.
///
/// # Safety
///
/// `invoke` accepts `callback`; both stay callable until unregistered.
#[no_mangle]
pub unsafe extern "C" fn nfy_register_unicast_error_with(
    callback: Option<AnyFn>,
    data: *mut c_void,
    invoke: Option<NotifyInvoke>,
) -> c_int {
    const ENTRY: &str = "nfy_register_unicast_error_with";
    guard::result(ENTRY, || match (callback, invoke) {
        (None, _) => adk::ipc_unregister_unicast_error_foreign(adk::CallbackFilter::ANY),
        (Some(f), Some(invoke)) => adk::ipc_register_unicast_error_foreign(
            callback::identity(f as usize, data),
            callback::notify_with(invoke, f, data.expose_provenance()),
        ),
        (Some(_), None) => missing_invoke(ENTRY),
    })
}

/// `nfy_unregister_unicast_error`: never touches what it is given.
#[no_mangle]
pub extern "C" fn nfy_unregister_unicast_error(cb: Option<NotifyCb>, data: *mut c_void) -> c_int {
    guard::result("nfy_unregister_unicast_error", || {
        adk::ipc_unregister_unicast_error_foreign(callback::filter(cb.map(|f| f as usize), data))
    })
}

/// `nfy_register_observer`.
///
/// # Safety
///
/// `cb` has the declared signature and stays callable until unregistered.
#[no_mangle]
pub unsafe extern "C" fn nfy_register_observer(cb: Option<ObserverCb>, data: *mut c_void) -> c_int {
    guard::result("nfy_register_observer", || match cb {
        Some(f) => adk::ipc_register_observer_foreign(
            callback::identity(f as usize, data),
            callback::observer(f, data.expose_provenance()),
        ),
        None => adk::ipc_unregister_observer_foreign(adk::CallbackFilter::ANY),
    })
}

/// `nfy_register_observer_with`.
///
/// # Safety
///
/// `invoke` accepts `callback`; both stay callable until unregistered.
#[no_mangle]
pub unsafe extern "C" fn nfy_register_observer_with(
    callback: Option<AnyFn>,
    data: *mut c_void,
    invoke: Option<ObserverInvoke>,
) -> c_int {
    const ENTRY: &str = "nfy_register_observer_with";
    guard::result(ENTRY, || match (callback, invoke) {
        (None, _) => adk::ipc_unregister_observer_foreign(adk::CallbackFilter::ANY),
        (Some(f), Some(invoke)) => adk::ipc_register_observer_foreign(
            callback::identity(f as usize, data),
            callback::observer_with(invoke, f, data.expose_provenance()),
        ),
        (Some(_), None) => missing_invoke(ENTRY),
    })
}

/// `nfy_unregister_observer`: never touches what it is given.
#[no_mangle]
pub extern "C" fn nfy_unregister_observer(cb: Option<ObserverCb>, data: *mut c_void) -> c_int {
    guard::result("nfy_unregister_observer", || {
        adk::ipc_unregister_observer_foreign(callback::filter(cb.map(|f| f as usize), data))
    })
}

/// `nfy_notification_server`: runs the server here; returns on error only.
///
/// # Safety
///
/// `config_file` is null or a NUL-terminated path (any bytes: a Linux
/// path need not be UTF-8).
#[no_mangle]
pub unsafe extern "C" fn nfy_notification_server(config_file: *const c_char) -> c_int {
    guard::result("nfy_notification_server", || {
        if config_file.is_null() {
            return adk::ipc_notification_server();
        }
        // SAFETY: not null, and the contract promises a NUL-terminated
        // string for the call's duration.
        let bytes = unsafe { CStr::from_ptr(config_file) }.to_bytes();
        adk::ipc_notification_server_with_config(Some(Path::new(OsStr::from_bytes(bytes))))
    })
}
