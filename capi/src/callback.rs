//! C callbacks as handlers of the Rust client's foreign-callback API
//! ([`nfy_linux::client::adk`]): their identity for the unregister
//! filters, and the closures that call them with NUL-terminated strings.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::sync::Arc;

use nfy_linux::client::adk::{CallbackFilter, CallbackId, ForeignNotify, ForeignObserver};
use nfy_linux::client::{Delivery, Observed};

/// `nfy_notify_cb`. `C-unwind`: a callback that unwinds anyway (a C++
/// exception) reaches the client's `catch_unwind`, which aborts the
/// process, instead of undefined behaviour.
pub type NotifyCb = unsafe extern "C-unwind" fn(
    data: *mut c_void,
    from: *const c_char,
    to: *const c_char,
    notification_id: *const c_char,
    param_json: *const c_char,
    flags: c_uint,
);

/// `nfy_observer_cb`.
pub type ObserverCb = unsafe extern "C-unwind" fn(
    data: *mut c_void,
    from: *const c_char,
    to: *const c_char,
    notification_id: *const c_char,
    flags: c_uint,
);

/// `nfy_fn`: a binding's callback, only passed back to its `invoke`.
pub type AnyFn = unsafe extern "C" fn();

/// `nfy_notify_invoke`.
pub type NotifyInvoke = unsafe extern "C-unwind" fn(
    callback: AnyFn,
    data: *mut c_void,
    from: *const c_char,
    to: *const c_char,
    notification_id: *const c_char,
    param_json: *const c_char,
    flags: c_uint,
) -> c_int;

/// `nfy_observer_invoke`.
pub type ObserverInvoke = unsafe extern "C-unwind" fn(
    callback: AnyFn,
    data: *mut c_void,
    from: *const c_char,
    to: *const c_char,
    notification_id: *const c_char,
    flags: c_uint,
) -> c_int;

/// The identity of a callback and its data pointer.
pub(crate) fn identity(callback: usize, data: *mut c_void) -> CallbackId {
    CallbackId {
        callback,
        data: data.expose_provenance(),
    }
}

/// An unregister filter: null matches any.
pub(crate) fn filter(callback: Option<usize>, data: *mut c_void) -> CallbackFilter {
    CallbackFilter {
        callback,
        data: (!data.is_null()).then(|| data.expose_provenance()),
    }
}

/// The data pointer back from its word.
fn data_ptr(data: usize) -> *mut c_void {
    std::ptr::with_exposed_provenance_mut(data)
}

thread_local! {
    /// The bytes of the strings of the callback running on this thread,
    /// reused from call to call (taken out while in use, so a nested call
    /// would simply allocate its own).
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Calls `f` with `parts` as NUL-terminated strings, valid during the call.
fn with_c_strings<const N: usize, R>(
    parts: [&str; N],
    f: impl FnOnce([*const c_char; N]) -> R,
) -> R {
    let mut buf = SCRATCH.with(Cell::take);
    buf.clear();
    let mut starts = [0usize; N];
    for (start, part) in starts.iter_mut().zip(parts) {
        *start = buf.len();
        buf.extend_from_slice(part.as_bytes());
        buf.push(0);
    }
    let ptrs = starts.map(|s| buf[s..].as_ptr().cast::<c_char>());
    let r = f(ptrs);
    SCRATCH.with(|c| c.set(buf));
    r
}

/// Logs a failure an `invoke` function reported.
fn failed(code: c_int, what: &str, notification: &str) {
    if code != 0 {
        log::error!("the {what} callback for {notification:?} failed (code {code}, e.g. a C++ exception); the notification counts as handled");
    }
}

/// A plain C notification (or unicast-error) callback.
pub(crate) fn notify(cb: NotifyCb, data: usize) -> ForeignNotify {
    Arc::new(move |d: &Delivery<'_>| {
        with_c_strings(
            [d.from, d.to, d.notification, d.parameter],
            |[f, t, n, p]| {
                // SAFETY: the registering caller promised `cb` is a function of
                // this signature; the strings are NUL-terminated and live until
                // the call returns; `data` is passed back unread.
                unsafe { cb(data_ptr(data), f, t, n, p, d.flags) }
            },
        );
    })
}

/// A binding's notification callback, called through its `invoke`.
pub(crate) fn notify_with(invoke: NotifyInvoke, cb: AnyFn, data: usize) -> ForeignNotify {
    Arc::new(move |d: &Delivery<'_>| {
        let code = with_c_strings(
            [d.from, d.to, d.notification, d.parameter],
            |[f, t, n, p]| {
                // SAFETY: as in `notify`; `invoke` was registered with `cb` and
                // is promised to accept it.
                unsafe { invoke(cb, data_ptr(data), f, t, n, p, d.flags) }
            },
        );
        failed(code, "notification", d.notification);
    })
}

/// A plain C observer.
pub(crate) fn observer(cb: ObserverCb, data: usize) -> ForeignObserver {
    Arc::new(move |o: &Observed<'_>| {
        with_c_strings([o.from, o.to, o.notification], |[f, t, n]| {
            // SAFETY: as in `notify`.
            unsafe { cb(data_ptr(data), f, t, n, o.flags) }
        });
    })
}

/// A binding's observer, called through its `invoke`.
pub(crate) fn observer_with(invoke: ObserverInvoke, cb: AnyFn, data: usize) -> ForeignObserver {
    Arc::new(move |o: &Observed<'_>| {
        let code = with_c_strings([o.from, o.to, o.notification], |[f, t, n]| {
            // SAFETY: as in `notify_with`.
            unsafe { invoke(cb, data_ptr(data), f, t, n, o.flags) }
        });
        failed(code, "observer", o.notification);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn strings_are_nul_terminated_and_the_buffer_is_reused() {
        let read = |ptrs: [*const c_char; 3]| {
            // SAFETY: the pointers come from with_c_strings, valid here.
            ptrs.map(|p| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned())
        };
        let got = with_c_strings(["from", "", "é"], read);
        assert_eq!(got, ["from", "", "é"]);
        let got = with_c_strings(["a", "bb", "ccc"], read);
        assert_eq!(got, ["a", "bb", "ccc"]);
        assert!(SCRATCH.with(|c| {
            let b = c.take();
            let cap = b.capacity();
            c.set(b);
            cap >= 10
        }));
    }

    #[test]
    fn null_data_filters_match_any() {
        let f = filter(Some(1), std::ptr::null_mut());
        assert_eq!(f.data, None);
        let mut x = 0u8;
        let p = std::ptr::addr_of_mut!(x).cast::<c_void>();
        assert!(filter(None, p).matches(identity(9, p)));
        assert!(!filter(Some(8), p).matches(identity(9, p)));
    }
}
