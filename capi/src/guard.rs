//! Every entry point runs here: the logger is installed, and a panic is
//! caught, logged and turned into a result code instead of crossing into
//! C.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use nfy_core::NotifyResult;

/// The program name in the library's log lines.
const PROGRAM: &str = "libvfiipc";

/// Installs the stderr logger once, unless the process has a logger.
pub(crate) fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // False when a logger exists already (a Rust program linking the
        // static library): that one is used.
        let _ = nfy_linux::log::init(PROGRAM);
    });
}

/// Runs an entry point: `f`'s value, or `on_panic` after logging a panic.
pub(crate) fn run<T>(entry: &'static str, on_panic: T, f: impl FnOnce() -> T) -> T {
    init_logging();
    // AssertUnwindSafe: after a panic nothing `f` touched is used again
    // here; the client's own state tolerates a panicking caller (its locks
    // ignore poisoning).
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            log::error!("{entry}: internal error: {}", panic_message(&*payload));
            on_panic
        }
    }
}

/// An entry point that returns a result code: `NFY_ERR_SERVER` after a
/// panic (nothing was done as asked).
pub(crate) fn result(entry: &'static str, f: impl FnOnce() -> NotifyResult) -> i32 {
    run(entry, NotifyResult::ErrServer, f).code()
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "panic"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_err_server() {
        #[allow(clippy::panic)]
        let code = result("test", || panic!("boom"));
        assert_eq!(code, NotifyResult::ErrServer.code());
        assert_eq!(result("test", || NotifyResult::ErrAppId), -2);
        assert_eq!(run("test", 7usize, || 3), 3);
    }
}
