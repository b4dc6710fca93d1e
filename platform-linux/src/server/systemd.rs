//! Telling systemd how the server is doing ([`crate::sdnotify`], for the
//! packaged unit's `Type=notify`): `READY=1` once every listener is bound
//! and the loop is about to run, `RELOADING=1` then `READY=1` around a
//! SIGHUP, `STOPPING=1` when the server shuts down, each with a `STATUS=`
//! line for `systemctl status`.
//!
//! Only a server that runs as the process's daemon
//! ([`Options::handle_signals`](super::Options::handle_signals), the
//! binaries) speaks to systemd: a server an application runs in-process
//! must not tell systemd that the application is ready. Without
//! `NOTIFY_SOCKET` (not started by systemd) nothing is sent. A failure to
//! send is logged once, as a warning, and never stops the server.

use std::ffi::OsString;

use crate::sdnotify::{self, State, NOTIFY_SOCKET_ENV};

/// The server's side of the notification protocol.
#[derive(Debug)]
pub(super) struct Systemd {
    /// `NOTIFY_SOCKET` as it was at start; `None`: nothing is sent.
    socket: Option<OsString>,
    warned: bool,
}

impl Systemd {
    /// Notifies the socket `NOTIFY_SOCKET` names when `enabled`.
    pub(super) fn new(enabled: bool) -> Systemd {
        let socket = enabled
            .then(|| std::env::var_os(NOTIFY_SOCKET_ENV))
            .flatten();
        Systemd::to(socket)
    }

    /// Notifies `socket` (as `NOTIFY_SOCKET` would name it).
    fn to(socket: Option<OsString>) -> Systemd {
        Systemd {
            socket: socket.filter(|s| !s.is_empty()),
            warned: false,
        }
    }

    /// Sends `states`; a failure is logged the first time only.
    pub(super) fn notify(&mut self, states: &[State<'_>]) {
        let Some(socket) = &self.socket else {
            return;
        };
        if let Err(e) = sdnotify::notify_to(socket, states) {
            if !self.warned {
                self.warned = true;
                ::log::warn!("{e}; the server goes on without telling systemd");
            }
        }
    }
}

/// `CLOCK_MONOTONIC` in microseconds, for `RELOADING=1`'s `MONOTONIC_USEC`
/// (`None` if the clock cannot be read).
pub(super) fn monotonic_usec() -> Option<u64> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
    let secs = u64::try_from(now.tv_sec()).ok()?;
    let micros = u64::try_from(now.tv_nsec() / 1000).ok()?;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monotonic_clock_goes_forward() {
        let a = monotonic_usec().unwrap();
        let b = monotonic_usec().unwrap();
        assert!(a > 0 && b >= a, "{a} {b}");
    }

    #[test]
    fn states_reach_the_socket_and_a_failure_is_remembered_not_fatal() {
        use std::os::unix::net::UnixDatagram;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        systemd
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut n = Systemd::to(Some(path.clone().into_os_string()));
        n.notify(&[State::Ready, State::Status("up")]);
        let mut buf = [0u8; 256];
        let len = systemd.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=up\n");
        assert!(!n.warned);
        // Nobody listens any more: warned once, and it goes on.
        drop(systemd);
        n.notify(&[State::Stopping]);
        assert!(n.warned);
        n.notify(&[State::Stopping]);
        // Not started by systemd, or not the process's daemon: nothing.
        assert!(Systemd::to(Some(OsString::new())).socket.is_none());
        assert!(Systemd::new(false).socket.is_none());
    }
}
