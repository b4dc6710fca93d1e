//! Where the notification server listens, as a client sees it.
//!
//! The rule itself lives in [`crate::defaults`], shared with `notifysvc`:
//! socket path from `NFY_SOCKET`, else `$XDG_RUNTIME_DIR/nfy/notify.sock`,
//! else `/tmp/nfy-<uid>/notify.sock`; TCP port from `NFY_PORT`, else 5899.
//! A client tries the Unix socket first and falls back to `127.0.0.1:port`
//! (spec 4: the server listens on both).

use std::ffi::OsString;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::defaults;

pub use crate::defaults::DEFAULT_PORT;

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
    /// `XDG_RUNTIME_DIR`), per [`crate::defaults`].
    pub fn from_env() -> Result<Self, AddrError> {
        Self::resolve(
            std::env::var_os(defaults::SOCKET_ENV),
            std::env::var_os(defaults::PORT_ENV),
            std::env::var_os(defaults::RUNTIME_DIR_ENV),
        )
    }

    /// The rule applied to explicit variable values (`None` or empty =
    /// unset) for this process's user. [`ServerAddr::from_env`] is this with
    /// the process's environment; tests call it directly.
    pub fn resolve(
        nfy_socket: Option<OsString>,
        nfy_port: Option<OsString>,
        xdg_runtime_dir: Option<OsString>,
    ) -> Result<Self, AddrError> {
        let env = |k: &str| match k {
            defaults::SOCKET_ENV => nfy_socket.clone(),
            defaults::PORT_ENV => nfy_port.clone(),
            defaults::RUNTIME_DIR_ENV => xdg_runtime_dir.clone(),
            _ => None,
        };
        let unix = defaults::socket_path_from(&env, defaults::current_uid());
        let port = defaults::port_from(&env)
            .map_err(|e| AddrError::BadPort(e.value))?
            .unwrap_or(DEFAULT_PORT);
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
        assert_eq!(
            a.unix,
            Some(defaults::fallback_socket_path(defaults::current_uid()))
        );
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
        assert_eq!(
            a.unix,
            Some(defaults::fallback_socket_path(defaults::current_uid()))
        );
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
