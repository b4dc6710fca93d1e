//! Where the notification server listens, as a client sees it.
//!
//! TCP port from `NFY_PORT`, else 5899 ([`crate::defaults`], shared with
//! `notifysvc`). The Unix socket is `NFY_SOCKET` when it is set (and not
//! empty); otherwise the first of these that is a socket, checked when the
//! address is resolved:
//!
//! 1. the **per-user** default, `$XDG_RUNTIME_DIR/nfy/notify.sock`, else
//!    `/tmp/nfy-<uid>/notify.sock` ([`crate::defaults`]): where a server
//!    started by hand by this user listens;
//! 2. the **system** socket, [`SYSTEM_SOCKET`] (`/run/nfy/notify.sock`):
//!    where the packaged systemd unit runs the server as root
//!    (`RuntimeDirectory=nfy`, `NFY_SOCKET=/run/nfy/notify.sock`);
//! 3. neither is there: the per-user path (as before, so a server this user
//!    starts later is found when the client reconnects).
//!
//! A client tries that socket first and falls back to `127.0.0.1:port`
//! (spec 4: the server listens on both), also when the socket refuses it
//! (a stale socket file, or a user outside the socket's group: the server
//! makes it 0660).
//!
//! **Decision** (the order): the per-user socket comes first because it is
//! the more specific choice: it exists only when this user started a server
//! for themself (a developer's test server beside the system service), and
//! then that is the one meant; with the system socket first, a running
//! system service would hide it. Apps without `NFY_SOCKET` of any user reach
//! the systemd service through its socket when they may (root, members of
//! its `--socket-group`), and through TCP otherwise, as before. The choice
//! is made once per [`ServerAddr`] (when a client is made, for
//! [`ServerAddr::from_env`]), not on every reconnection, so a client stays
//! with the socket it chose. The server's own default path is unchanged
//! (the per-user one): only the unit puts it in `/run/nfy`.

use std::ffi::OsString;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::defaults;

pub use crate::defaults::DEFAULT_PORT;

/// The socket of the server run by the packaged systemd unit
/// (`xtask/data/notifysvc.service`): clients without `NFY_SOCKET` use it
/// when no per-user socket exists (module docs).
pub const SYSTEM_SOCKET: &str = "/run/nfy/notify.sock";

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
    /// `XDG_RUNTIME_DIR`) and the sockets present (module docs).
    pub fn from_env() -> Result<Self, AddrError> {
        Self::resolve(
            std::env::var_os(defaults::SOCKET_ENV),
            std::env::var_os(defaults::PORT_ENV),
            std::env::var_os(defaults::RUNTIME_DIR_ENV),
        )
    }

    /// The rule applied to explicit variable values (`None` or empty =
    /// unset) for this process's user; without `NFY_SOCKET` it looks for
    /// the per-user and the system socket (module docs).
    /// [`ServerAddr::from_env`] is this with the process's environment.
    pub fn resolve(
        nfy_socket: Option<OsString>,
        nfy_port: Option<OsString>,
        xdg_runtime_dir: Option<OsString>,
    ) -> Result<Self, AddrError> {
        Self::resolve_with(
            nfy_socket,
            nfy_port,
            xdg_runtime_dir,
            Path::new(SYSTEM_SOCKET),
        )
    }

    /// [`ServerAddr::resolve`] with another system socket (tests).
    fn resolve_with(
        nfy_socket: Option<OsString>,
        nfy_port: Option<OsString>,
        xdg_runtime_dir: Option<OsString>,
        system_socket: &Path,
    ) -> Result<Self, AddrError> {
        let explicit = nfy_socket.as_ref().is_some_and(|s| !s.is_empty());
        let env = |k: &str| match k {
            defaults::SOCKET_ENV => nfy_socket.clone(),
            defaults::PORT_ENV => nfy_port.clone(),
            defaults::RUNTIME_DIR_ENV => xdg_runtime_dir.clone(),
            _ => None,
        };
        let mut unix = defaults::socket_path_from(&env, defaults::current_uid());
        if !explicit && !is_socket(&unix) && is_socket(system_socket) {
            unix = system_socket.to_path_buf();
        }
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

/// True when `path` is a socket (following symbolic links); false when it
/// is missing, something else, or out of this process's reach.
fn is_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
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
    use std::os::unix::net::UnixListener;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    fn os_path(p: &Path) -> Option<OsString> {
        Some(p.as_os_str().to_owned())
    }

    /// A system socket path where nothing is.
    const NO_SYSTEM: &str = "/nonexistent/nfy/notify.sock";

    fn resolve(
        socket: Option<OsString>,
        port: Option<OsString>,
        xdg: Option<OsString>,
    ) -> Result<ServerAddr, AddrError> {
        ServerAddr::resolve_with(socket, port, xdg, Path::new(NO_SYSTEM))
    }

    #[test]
    fn defaults_without_environment() {
        let a = resolve(None, None, None).unwrap();
        assert_eq!(
            a.unix,
            Some(defaults::fallback_socket_path(defaults::current_uid()))
        );
        assert_eq!(a.tcp, Some("127.0.0.1:5899".parse().unwrap()));
    }

    #[test]
    fn runtime_dir_then_explicit_socket() {
        let a = resolve(None, None, os("/run/user/7")).unwrap();
        assert_eq!(a.unix, Some(PathBuf::from("/run/user/7/nfy/notify.sock")));
        let a = resolve(os("/x/s.sock"), None, os("/run/user/7")).unwrap();
        assert_eq!(a.unix, Some(PathBuf::from("/x/s.sock")));
        // Empty means unset.
        let a = resolve(os(""), os(""), os("")).unwrap();
        assert_eq!(
            a.unix,
            Some(defaults::fallback_socket_path(defaults::current_uid()))
        );
        assert_eq!(a.tcp, Some(ServerAddr::loopback(DEFAULT_PORT)));
    }

    /// A temporary directory with `run/nfy/notify.sock` and `xdg/`, and
    /// the per-user path under `xdg/`.
    struct Sockets {
        dir: tempfile::TempDir,
    }

    impl Sockets {
        fn new() -> Sockets {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("run/nfy")).unwrap();
            std::fs::create_dir_all(dir.path().join("xdg/nfy")).unwrap();
            Sockets { dir }
        }
        fn system(&self) -> PathBuf {
            self.dir.path().join("run/nfy/notify.sock")
        }
        fn xdg(&self) -> Option<OsString> {
            os_path(&self.dir.path().join("xdg"))
        }
        fn per_user(&self) -> PathBuf {
            self.dir.path().join("xdg/nfy/notify.sock")
        }
        fn resolve(&self, nfy_socket: Option<OsString>) -> PathBuf {
            ServerAddr::resolve_with(nfy_socket, None, self.xdg(), &self.system())
                .unwrap()
                .unix
                .unwrap()
        }
    }

    #[test]
    fn the_system_socket_is_used_when_no_per_user_socket_exists() {
        let s = Sockets::new();
        // Neither exists: the per-user path, as before.
        assert_eq!(s.resolve(None), s.per_user());
        // Something that is not a socket is no server.
        std::fs::write(s.system(), b"").unwrap();
        assert_eq!(s.resolve(None), s.per_user());
        std::fs::remove_file(s.system()).unwrap();
        // The systemd service's socket.
        let _system = UnixListener::bind(s.system()).unwrap();
        assert_eq!(s.resolve(None), s.system());
        // A server this user started by hand comes first.
        let _own = UnixListener::bind(s.per_user()).unwrap();
        assert_eq!(s.resolve(None), s.per_user());
        // NFY_SOCKET beats both, even when nothing is there.
        let explicit = s.dir.path().join("elsewhere.sock");
        assert_eq!(s.resolve(os_path(&explicit)), explicit);
        // Empty NFY_SOCKET is unset.
        assert_eq!(s.resolve(os("")), s.per_user());
    }

    #[test]
    fn a_client_without_nfy_socket_reaches_a_server_on_the_system_socket() {
        let s = Sockets::new();
        let server = crate::server::start(crate::server::Options {
            port: 0,
            socket: s.system(),
            config: crate::server::ConfigSource::None,
            ..crate::server::Options::default()
        })
        .unwrap();
        // A port where nothing listens, so only the socket can connect.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr =
            ServerAddr::resolve_with(None, os(&dead.to_string()), s.xdg(), &s.system()).unwrap();
        assert_eq!(addr.unix.as_deref(), Some(s.system().as_path()));
        let report =
            crate::client::server_report(&addr, std::time::Duration::from_secs(5)).unwrap();
        let pid = std::process::id();
        assert!(
            report.connections.iter().any(|c| matches!(
                &c.peer,
                nfy_core::msg::PeerAddr::Unix(cred) if cred.pid == pid
            )),
            "{:?}",
            report.connections
        );
        server.shutdown();
        server.join().unwrap();
    }

    #[test]
    fn the_system_socket_is_where_the_packaged_unit_puts_it() {
        let unit = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../xtask/data/notifysvc.service"
        ));
        let env = format!("Environment=NFY_SOCKET={SYSTEM_SOCKET}");
        assert!(unit.lines().any(|l| l == env), "{env} not in the unit");
        assert!(unit.lines().any(|l| l == "RuntimeDirectory=nfy"));
        assert_eq!(
            Path::new(SYSTEM_SOCKET).parent(),
            Some(Path::new("/run/nfy"))
        );
    }

    #[test]
    fn port_from_environment() {
        let a = resolve(None, os("6000"), None).unwrap();
        assert_eq!(a.tcp, Some("127.0.0.1:6000".parse().unwrap()));
        for bad in ["0", "65536", "x", "-1"] {
            assert_eq!(
                resolve(None, os(bad), None),
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
