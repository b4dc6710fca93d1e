//! Where the notification server listens: the one address-resolution rule
//! shared by the client library, `nfy` and (after the merge) `notifysvc`.
//!
//! Rule ([`ServerAddr::from_env`]):
//!
//! - Unix socket: `NFY_SOCKET` when set and non-empty; otherwise
//!   `$XDG_RUNTIME_DIR/nfy/notify.sock` when `XDG_RUNTIME_DIR` is set and
//!   non-empty; otherwise `/tmp/nfy/notify.sock`.
//! - TCP port on loopback: `NFY_PORT` when set and non-empty (a decimal
//!   number 1..=65535), otherwise [`DEFAULT_PORT`] (5899, the original's).
//!
//! A client tries the Unix socket first and falls back to
//! `127.0.0.1:port` (spec 4: the server listens on both).

use std::ffi::OsString;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// The TCP port of the notification server when `NFY_PORT` is not set.
pub const DEFAULT_PORT: u16 = 5899;

/// The socket path, below the runtime directory, when `NFY_SOCKET` is not set.
pub const SOCKET_SUBPATH: &str = "nfy/notify.sock";

/// The runtime directory used when `XDG_RUNTIME_DIR` is not set.
pub const FALLBACK_RUNTIME_DIR: &str = "/tmp";

/// An environment variable holds something unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrError {
    /// `NFY_PORT` is not a port number in 1..=65535.
    BadPort(String),
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrError::BadPort(v) => {
                write!(f, "NFY_PORT={v:?} is not a TCP port number (1-65535)")
            }
        }
    }
}

impl std::error::Error for AddrError {}

/// Where to reach the server: a Unix socket path, a TCP address, or both
/// (the socket is tried first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    /// The Unix-domain socket path, tried first.
    pub unix: Option<PathBuf>,
    /// The TCP address, tried when there is no socket path or connecting
    /// to it fails.
    pub tcp: Option<SocketAddr>,
}

impl ServerAddr {
    /// The address from the environment (`NFY_SOCKET`, `NFY_PORT`,
    /// `XDG_RUNTIME_DIR`), per the module rule.
    pub fn from_env() -> Result<Self, AddrError> {
        Self::resolve(
            std::env::var_os("NFY_SOCKET"),
            std::env::var_os("NFY_PORT"),
            std::env::var_os("XDG_RUNTIME_DIR"),
        )
    }

    /// The module rule applied to explicit variable values (`None` or empty
    /// = unset). [`ServerAddr::from_env`] is this with the process's
    /// environment; tests call it directly.
    pub fn resolve(
        nfy_socket: Option<OsString>,
        nfy_port: Option<OsString>,
        xdg_runtime_dir: Option<OsString>,
    ) -> Result<Self, AddrError> {
        let set = |v: Option<OsString>| v.filter(|v| !v.is_empty());
        let unix = match set(nfy_socket) {
            Some(path) => PathBuf::from(path),
            None => {
                let dir = set(xdg_runtime_dir)
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(FALLBACK_RUNTIME_DIR));
                dir.join(SOCKET_SUBPATH)
            }
        };
        let port = match set(nfy_port) {
            None => DEFAULT_PORT,
            Some(v) => {
                let text = v.to_string_lossy().into_owned();
                match text.trim().parse::<u16>() {
                    Ok(p) if p != 0 => p,
                    _ => return Err(AddrError::BadPort(text)),
                }
            }
        };
        Ok(ServerAddr {
            unix: Some(unix),
            tcp: Some(Self::loopback(port)),
        })
    }

    /// Only this Unix socket.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        ServerAddr {
            unix: Some(path.into()),
            tcp: None,
        }
    }

    /// Only this TCP address.
    pub fn tcp(addr: SocketAddr) -> Self {
        ServerAddr {
            unix: None,
            tcp: Some(addr),
        }
    }

    /// `127.0.0.1:port`.
    pub fn loopback(port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.unix, &self.tcp) {
            (Some(p), Some(a)) => write!(f, "{} or {}", p.display(), a),
            (Some(p), None) => write!(f, "{}", p.display()),
            (None, Some(a)) => write!(f, "{a}"),
            (None, None) => f.write_str("no address"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn defaults_without_environment() {
        let a = ServerAddr::resolve(None, None, None).unwrap();
        assert_eq!(a.unix, Some(PathBuf::from("/tmp/nfy/notify.sock")));
        assert_eq!(a.tcp, Some("127.0.0.1:5899".parse().unwrap()));
    }

    #[test]
    fn runtime_dir_then_explicit_socket() {
        let a = ServerAddr::resolve(None, None, os("/run/user/7")).unwrap();
        assert_eq!(a.unix, Some(PathBuf::from("/run/user/7/nfy/notify.sock")));
        let a = ServerAddr::resolve(os("/x/s.sock"), None, os("/run/user/7")).unwrap();
        assert_eq!(a.unix, Some(PathBuf::from("/x/s.sock")));
        // Empty means unset.
        let a = ServerAddr::resolve(os(""), os(""), os("")).unwrap();
        assert_eq!(a.unix, Some(PathBuf::from("/tmp/nfy/notify.sock")));
        assert_eq!(a.tcp, Some(ServerAddr::loopback(DEFAULT_PORT)));
    }

    #[test]
    fn port_from_environment() {
        let a = ServerAddr::resolve(None, os("6000"), None).unwrap();
        assert_eq!(a.tcp, Some("127.0.0.1:6000".parse().unwrap()));
        for bad in ["0", "65536", "x", "-1"] {
            assert_eq!(
                ServerAddr::resolve(None, os(bad), None),
                Err(AddrError::BadPort(bad.into()))
            );
        }
    }

    #[test]
    fn display() {
        assert_eq!(ServerAddr::unix("/a").to_string(), "/a");
        let t = ServerAddr::tcp(ServerAddr::loopback(1));
        assert_eq!(t.to_string(), "127.0.0.1:1");
    }
}
