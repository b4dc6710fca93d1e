//! systemd's service notification protocol (`sd_notify`), for a unit with
//! `Type=notify`: the service tells systemd that it is ready, reloading or
//! stopping, in datagrams of `KEY=VALUE` lines sent to the Unix socket
//! named by the `NOTIFY_SOCKET` environment variable (a path, or `@name`
//! for the abstract namespace). Without the variable the service is not
//! run by systemd and nothing is sent.
//!
//! Written with the standard library only (no libsystemd): the protocol is
//! one `sendto` of a few bytes.
//!
//! `notifysvc` (the packaged unit is `Type=notify`) sends, through
//! `server::systemd`:
//!
//! - [`State::Ready`] once every listener is bound and the event loop is
//!   about to run;
//! - on SIGHUP, [`State::Reloading`] before re-reading the configuration,
//!   then [`State::Ready`] with a [`State::Status`] saying whether the new
//!   file was taken or the old one kept;
//! - [`State::Stopping`] when it shuts down (SIGTERM, SIGINT);
//! - a failure to notify is logged once as a warning, never fatal.

#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

/// The environment variable systemd names its socket in.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// One state to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State<'a> {
    /// `READY=1`: start-up (or a reload) is complete.
    Ready,
    /// `RELOADING=1`, with `MONOTONIC_USEC` (`CLOCK_MONOTONIC` in
    /// microseconds) when known; systemd 253's `Type=notify-reload`
    /// requires it.
    Reloading(Option<u64>),
    /// `STOPPING=1`: shutting down.
    Stopping,
    /// `STATUS=...`: one line for `systemctl status` (line breaks become
    /// spaces).
    Status(&'a str),
}

/// Why a notification could not be sent.
#[derive(Debug)]
pub enum NotifyError {
    /// `NOTIFY_SOCKET` is neither an absolute path nor `@name`.
    BadAddress(String),
    /// The datagram could not be sent.
    Io(io::Error),
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::BadAddress(a) => write!(
                f,
                "{NOTIFY_SOCKET_ENV}={a:?} is neither an absolute path nor @name"
            ),
            NotifyError::Io(e) => write!(f, "cannot notify systemd: {e}"),
        }
    }
}

impl std::error::Error for NotifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NotifyError::Io(e) => Some(e),
            NotifyError::BadAddress(_) => None,
        }
    }
}

/// The datagram for `states`: one `KEY=VALUE` line each.
pub fn message(states: &[State<'_>]) -> String {
    let mut out = String::new();
    for s in states {
        match s {
            State::Ready => out.push_str("READY=1\n"),
            State::Reloading(usec) => {
                out.push_str("RELOADING=1\n");
                if let Some(u) = usec {
                    out.push_str(&format!("MONOTONIC_USEC={u}\n"));
                }
            }
            State::Stopping => out.push_str("STOPPING=1\n"),
            State::Status(text) => {
                out.push_str("STATUS=");
                out.push_str(&text.replace(['\n', '\r'], " "));
                out.push('\n');
            }
        }
    }
    out
}

/// Sends `states` to the socket `NOTIFY_SOCKET` names. `Ok(false)` when it
/// is unset or empty (not started by systemd), `Ok(true)` when sent.
pub fn notify(states: &[State<'_>]) -> Result<bool, NotifyError> {
    notify_from(std::env::var_os(NOTIFY_SOCKET_ENV).as_deref(), states)
}

/// [`notify`] with the variable's value given.
pub fn notify_from(socket: Option<&OsStr>, states: &[State<'_>]) -> Result<bool, NotifyError> {
    match socket.filter(|s| !s.is_empty()) {
        None => Ok(false),
        Some(s) => notify_to(s, states).map(|()| true),
    }
}

/// Sends `states` to `socket`: an absolute path, or `@name` for the
/// abstract namespace.
pub fn notify_to(socket: &OsStr, states: &[State<'_>]) -> Result<(), NotifyError> {
    let bytes = socket.as_bytes();
    let addr = match bytes.split_first() {
        Some((b'@', name)) => SocketAddr::from_abstract_name(name),
        Some((b'/', _)) => SocketAddr::from_pathname(Path::new(socket)),
        _ => {
            return Err(NotifyError::BadAddress(
                socket.to_string_lossy().into_owned(),
            ))
        }
    }
    .map_err(|_| NotifyError::BadAddress(socket.to_string_lossy().into_owned()))?;
    let msg = message(states);
    let sock = UnixDatagram::unbound().map_err(NotifyError::Io)?;
    let sent = sock
        .send_to_addr(msg.as_bytes(), &addr)
        .map_err(NotifyError::Io)?;
    if sent == msg.len() {
        Ok(())
    } else {
        Err(NotifyError::Io(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {sent} of {} bytes", msg.len()),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receive(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn states_become_key_value_lines() {
        assert_eq!(
            message(&[State::Ready, State::Status("up\nand running")]),
            "READY=1\nSTATUS=up and running\n"
        );
        assert_eq!(
            message(&[State::Reloading(Some(42)), State::Stopping]),
            "RELOADING=1\nMONOTONIC_USEC=42\nSTOPPING=1\n"
        );
        assert_eq!(message(&[State::Reloading(None)]), "RELOADING=1\n");
    }

    #[test]
    fn readiness_reaches_a_socket_named_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        let sent = notify_from(
            Some(path.as_os_str()),
            &[State::Ready, State::Status("listening")],
        )
        .unwrap();
        assert!(sent);
        assert_eq!(receive(&systemd), "READY=1\nSTATUS=listening\n");
    }

    #[test]
    fn readiness_reaches_an_abstract_socket() {
        let name = format!("nfy-sdnotify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let systemd = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(OsStr::new(&format!("@{name}")), &[State::Stopping]).unwrap();
        assert_eq!(receive(&systemd), "STOPPING=1\n");
    }

    #[test]
    fn without_systemd_nothing_is_sent_and_bad_addresses_are_errors() {
        assert!(!notify_from(None, &[State::Ready]).unwrap());
        assert!(!notify_from(Some(OsStr::new("")), &[State::Ready]).unwrap());
        assert!(matches!(
            notify_to(OsStr::new("relative/path"), &[State::Ready]),
            Err(NotifyError::BadAddress(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nobody-listens");
        let err = notify_to(missing.as_os_str(), &[State::Ready]).unwrap_err();
        assert!(matches!(err, NotifyError::Io(_)), "{err}");
    }
}
