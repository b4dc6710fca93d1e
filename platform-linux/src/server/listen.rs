//! Listeners: which TCP addresses to bind, the Unix socket, and the
//! single-instance rule (spec sections 1 and 4).
//!
//! # TCP addresses
//!
//! | configuration | TCP listeners |
//! |---|---|
//! | none, or no `in`/`out` rules | `127.0.0.1` and `::1` (`interface` lines are ignored with a warning) |
//! | rules, no `interface` lines | `0.0.0.0` and `::` (IPv6-only socket, so both coexist) |
//! | rules and `interface` lines | loopback as above, plus every address of every named interface / every listed IP |
//!
//! `--no-plain-remote` ([`PlainRemote::LoopbackOnly`]) keeps plain TCP
//! to the first row whatever the configuration; the TLS listeners
//! ([`super::tls`], `--tls-port`) take the table's addresses on their own
//! port.
//!
//! A local-only profile ([`Profile::local_only`](super::Profile::local_only), the Verix-style one)
//! always gets the first row, whatever the configuration, and the broker
//! refuses any remote peer that reaches a socket anyway
//! ([`Limits::local_only`](nfy_core::broker::Limits::local_only)).
//!
//! Listeners are bound at start only: a reload (SIGHUP, see `reload`)
//! keeps them and narrows where remote peers are let in instead.
//!
//! IPv6 listeners are best effort: a host without IPv6 simply gets none.
//! **Decision**: an `interface` line naming an interface without addresses
//! (or an IP not configured on this host) is a warning, not a startup
//! failure: local IPC must keep working when the network is not up yet.
//!
//! # One server per system
//!
//! TCP is bound first. `EADDRINUSE` there means another server holds the
//! port ([`ServerError::PortInUse`]). Then the Unix socket: when its path
//! exists and a `connect` to it succeeds, another server owns it
//! ([`ServerError::AlreadyRunning`]) and the file is left alone; when the
//! connect is refused the file is stale and is replaced; when the path is
//! something other than a socket, nothing is replaced
//! ([`ServerError::NotASocket`]). Permission problems are
//! [`ServerError::Permission`] (exit 3). Known weak spot: two servers with
//! *different* ports racing for the *same* stale socket path at the same
//! instant could both decide it is stale; the default set-up (same port)
//! is protected by the TCP bind.
//!
//! # Socket permissions
//!
//! | what | mode | group |
//! |---|---|---|
//! | the socket | 0660 (set before `listen`, so nobody connects earlier) | `--socket-group` ([`Options::socket_group`]), else the server's own |
//! | directories the server creates for it | 0700, or 0750 with `--socket-group` | `--socket-group`, else the server's own |
//! | existing directories | left as they are (the operator's) | left as they are |
//!
//! Connecting to a Unix socket needs write permission on it and search
//! permission on every directory above it, so with these modes only the
//! server's user and the members of the socket's group can connect (and
//! root). A group the server may not give the socket to (not one of its
//! groups, unless it runs as root) is [`ServerError::Permission`] (exit 3).
//! The last-resort default directory `/tmp/nfy-<uid>` must be a real
//! directory owned by this user, otherwise the server refuses it (someone
//! else could control what is in it).
//!
//! The socket file is removed when the server stops, but only if it is
//! still the file this server created (same device and inode).

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nfy_core::broker::PeerKind;
use nfy_core::whitelist::Interface;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::tls::PlainRemote;
use super::{LinuxWhitelist, Options, Profile, ServerError};
use crate::defaults;

/// Backlog of every listening socket.
pub const LISTEN_BACKLOG: i32 = 1024;

/// One TCP address to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindTarget {
    /// The address (port 0 = the port chosen for the first listener).
    pub addr: SocketAddr,
    /// When false, "address not available" / "family not supported" is
    /// only logged (IPv6 on hosts without it, interfaces that are down).
    pub required: bool,
    /// Why this address is bound, for logs.
    pub origin: String,
}

/// The TCP addresses a configuration asks for, and warnings about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpPlan {
    /// Addresses to bind, in order, without duplicates.
    pub targets: Vec<BindTarget>,
    /// Things worth a warning (ignored `interface` lines, interfaces
    /// without addresses).
    pub warnings: Vec<String>,
}

impl TcpPlan {
    fn push(&mut self, ip: IpAddr, port: u16, required: bool, origin: &str) {
        let addr = SocketAddr::new(ip, port);
        if self.targets.iter().any(|t| t.addr == addr) {
            return;
        }
        self.targets.push(BindTarget {
            addr,
            required,
            origin: origin.to_owned(),
        });
    }

    /// A wildcard listener of a family covers every other address of that
    /// family (and binding both would collide).
    fn drop_covered(&mut self) {
        let wild4 = self
            .targets
            .iter()
            .any(|t| t.addr.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let wild6 = self
            .targets
            .iter()
            .any(|t| t.addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        self.targets.retain(|t| match t.addr.ip() {
            IpAddr::V4(ip) => !wild4 || ip.is_unspecified(),
            IpAddr::V6(ip) => !wild6 || ip.is_unspecified(),
        });
    }
}

/// Works out the TCP listeners for `whitelist` (see the module table);
/// `resolve` maps an interface name to its addresses.
pub fn plan_tcp(
    whitelist: &LinuxWhitelist,
    port: u16,
    resolve: &dyn Fn(&str) -> io::Result<Vec<SocketAddr>>,
) -> TcpPlan {
    let mut plan = TcpPlan::default();
    let interfaces = whitelist.interfaces();
    if !whitelist.has_rules() {
        if !interfaces.is_empty() {
            plan.warnings.push(format!(
                "ignoring {} `interface` line(s): the configuration has no in/out rules, so no \
                 remote client could pass; listening on loopback only",
                interfaces.len()
            ));
        }
        plan.push(IpAddr::V4(Ipv4Addr::LOCALHOST), port, true, "loopback");
        plan.push(IpAddr::V6(Ipv6Addr::LOCALHOST), port, false, "loopback");
        return plan;
    }
    if interfaces.is_empty() {
        plan.push(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
            true,
            "all interfaces",
        );
        plan.push(
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            port,
            false,
            "all interfaces",
        );
        return plan;
    }
    plan.push(IpAddr::V4(Ipv4Addr::LOCALHOST), port, true, "loopback");
    plan.push(IpAddr::V6(Ipv6Addr::LOCALHOST), port, false, "loopback");
    for interface in interfaces {
        match interface {
            Interface::Ip(ip) => plan.push(*ip, port, false, &format!("interface {ip}")),
            Interface::Name(name) => match resolve(name.as_str()) {
                Ok(addrs) if !addrs.is_empty() => {
                    for addr in addrs {
                        let origin = format!("interface {name}");
                        match addr {
                            SocketAddr::V6(mut v6) => {
                                v6.set_port(port);
                                let target = SocketAddr::V6(v6);
                                if !plan.targets.iter().any(|t| t.addr == target) {
                                    plan.targets.push(BindTarget {
                                        addr: target,
                                        required: false,
                                        origin,
                                    });
                                }
                            }
                            SocketAddr::V4(v4) => {
                                plan.push(IpAddr::V4(*v4.ip()), port, false, &origin)
                            }
                        }
                    }
                }
                Ok(_) => plan.warnings.push(format!(
                    "interface {name} has no IP address (or does not exist); not listening on it"
                )),
                Err(e) => plan.warnings.push(format!(
                    "cannot list the addresses of interface {name}: {e}; not listening on it"
                )),
            },
        }
    }
    plan.drop_covered();
    plan
}

/// The addresses (IPv4 and IPv6, port 0) of the network interface `name`,
/// from `getifaddrs`. IPv6 link-local addresses keep their scope id.
pub fn interface_addresses(name: &str) -> io::Result<Vec<SocketAddr>> {
    let all = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    let mut out = Vec::new();
    for entry in all.filter(|e| e.interface_name == name) {
        let Some(addr) = entry.address else { continue };
        if let Some(v4) = addr.as_sockaddr_in() {
            out.push(SocketAddr::new(IpAddr::V4(v4.ip()), 0));
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            out.push(SocketAddr::V6(std::net::SocketAddrV6::new(
                v6.ip(),
                0,
                v6.flowinfo(),
                v6.scope_id(),
            )));
        }
    }
    Ok(out)
}

/// A connection is local when it comes over the Unix socket or from a
/// loopback address (`127.0.0.0/8`, `::1`, or `::ffff:127.x.y.z`), remote
/// otherwise (spec section 4). `None` stands for a Unix-socket peer.
pub fn classify(peer: Option<SocketAddr>) -> PeerKind {
    let Some(peer) = peer else {
        return PeerKind::Local;
    };
    let loopback = match peer.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    if loopback {
        PeerKind::Local
    } else {
        PeerKind::Remote
    }
}

/// A bound TCP listener.
#[derive(Debug)]
pub struct TcpEntry {
    /// The address actually bound (with the real port).
    pub addr: SocketAddr,
    /// The listener, non-blocking.
    pub listener: mio::net::TcpListener,
}

/// The socket file this server created; removed on drop if it is still
/// the same file.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl SocketFile {
    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let current = fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if current.is_some() && current == self.identity {
            match fs::remove_file(&self.path) {
                Ok(()) => ::log::debug!("removed socket {}", self.path.display()),
                Err(e) => ::log::warn!("cannot remove socket {}: {e}", self.path.display()),
            }
        }
    }
}

/// Everything the server listens on.
#[derive(Debug)]
pub struct Listeners {
    /// TCP listeners, loopback first.
    pub tcp: Vec<TcpEntry>,
    /// TLS listeners (none without TLS): the addresses of the TCP plan
    /// before `--no-plain-remote`, on the TLS port.
    pub tls: Vec<TcpEntry>,
    /// The Unix-socket listener.
    pub unix: mio::net::UnixListener,
    /// Removes the socket file when dropped.
    pub socket_file: SocketFile,
}

/// The TCP listeners `profile` wants for `whitelist` (see the module
/// table; a local-only profile gets loopback only), warnings logged.
pub fn plan_for(profile: &Profile, whitelist: &LinuxWhitelist, port: u16) -> TcpPlan {
    let plan = if profile.local_only {
        if whitelist.has_rules() || !whitelist.interfaces().is_empty() {
            ::log::warn!(
                "the {} profile accepts local connections only: the configuration's rules and \
                 interface lines open nothing",
                profile.name
            );
        }
        plan_tcp(&LinuxWhitelist::new(), port, &interface_addresses)
    } else {
        plan_tcp(whitelist, port, &interface_addresses)
    };
    for warning in &plan.warnings {
        ::log::warn!("{warning}");
    }
    plan
}

/// Binds TCP (first: plain, then TLS) and then the Unix socket, as the
/// module docs describe.
pub fn open(opts: &Options, whitelist: &LinuxWhitelist) -> Result<Listeners, ServerError> {
    let plan = plan_for(&opts.profile, whitelist, opts.port);
    let plain = match opts.plain_remote {
        PlainRemote::Allowed => plan.clone(),
        PlainRemote::LoopbackOnly => {
            if plan.targets.iter().any(|t| !t.addr.ip().is_loopback()) {
                ::log::info!(
                    "--no-plain-remote: plain tcp on loopback only; remote peers must use TLS"
                );
            }
            plan_tcp(&LinuxWhitelist::new(), opts.port, &interface_addresses)
        }
    };
    let tcp = bind_tcp_plan(&plain, opts.port, "tcp")?;
    let tls = match &opts.tls {
        Some(tls) => {
            let mut tls_plan = plan.clone();
            for target in &mut tls_plan.targets {
                target.addr.set_port(tls.port);
            }
            bind_tcp_plan(&tls_plan, tls.port, "tls")?
        }
        None => Vec::new(),
    };
    let (unix, socket_file) = bind_unix(&opts.socket, opts.socket_group)?;
    Ok(Listeners {
        tcp,
        tls,
        unix,
        socket_file,
    })
}

fn bind_tcp_plan(plan: &TcpPlan, port: u16, what: &str) -> Result<Vec<TcpEntry>, ServerError> {
    let mut port = port;
    let mut out: Vec<TcpEntry> = Vec::new();
    for target in &plan.targets {
        let mut addr = target.addr;
        addr.set_port(port);
        match bind_tcp(addr) {
            Ok(entry) => {
                // Port 0: every further listener uses the port the first got.
                port = entry.addr.port();
                ::log::info!("listening on {what} {} ({})", entry.addr, target.origin);
                out.push(entry);
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return Err(ServerError::PortInUse { addr });
            }
            Err(e) if is_permission(&e) => {
                return Err(ServerError::Permission {
                    context: format!("cannot listen on {what} {addr}"),
                    source: e,
                });
            }
            Err(e) if !target.required && is_unavailable(&e) => {
                if target.addr.ip().is_loopback() || target.addr.ip().is_unspecified() {
                    ::log::debug!("not listening on {what} {addr}: {e}");
                } else {
                    ::log::warn!("not listening on {what} {addr} ({}): {e}", target.origin);
                }
            }
            Err(e) => {
                return Err(ServerError::Io {
                    context: format!("cannot listen on {what} {addr}"),
                    source: e,
                });
            }
        }
    }
    Ok(out)
}

fn is_permission(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

fn is_unavailable(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AddrNotAvailable
        || e.kind() == io::ErrorKind::InvalidInput
        || e.raw_os_error() == Some(nix::errno::Errno::EAFNOSUPPORT as i32)
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpEntry> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Lets a restarted server bind while old connections sit in TIME_WAIT;
    // it does not let two listeners share the port.
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(LISTEN_BACKLOG)?;
    let std_listener: std::net::TcpListener = socket.into();
    let addr = std_listener.local_addr()?;
    Ok(TcpEntry {
        addr,
        listener: mio::net::TcpListener::from_std(std_listener),
    })
}

/// Mode of the Unix socket.
pub const SOCKET_MODE: u32 = 0o660;
/// Mode of the directories created for the socket without a socket group.
pub const SOCKET_DIR_MODE: u32 = 0o700;
/// Mode of the directories created for the socket with a socket group.
pub const SOCKET_DIR_MODE_GROUP: u32 = 0o750;

/// Prepares the socket's directory, checks for a running or stale server
/// and binds the Unix socket, mode [`SOCKET_MODE`], in `group` when given
/// (see the module docs).
pub fn bind_unix(
    path: &Path,
    group: Option<u32>,
) -> Result<(mio::net::UnixListener, SocketFile), ServerError> {
    prepare_socket_dir(path, group)?;
    check_existing_socket(path)?;
    let permission = |source: io::Error| ServerError::Permission {
        context: format!("cannot create the local socket {}", path.display()),
        source,
    };
    let bind = || -> io::Result<Socket> {
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        socket.bind(&SockAddr::unix(path)?)?;
        Ok(socket)
    };
    let socket = match bind() {
        Ok(socket) => socket,
        Err(e) if is_permission(&e) => return Err(permission(e)),
        // Lost a race with another server starting at the same moment.
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            return Err(ServerError::AlreadyRunning {
                socket: path.to_owned(),
            })
        }
        Err(e) => {
            return Err(ServerError::Io {
                context: format!("cannot create the local socket {}", path.display()),
                source: e,
            })
        }
    };
    // From here on the file is ours: remove it on every way out.
    let identity = fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let socket_file = SocketFile {
        path: path.to_owned(),
        identity,
    };
    // Not listening yet: nobody can connect before the mode and group are
    // set.
    fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE))
        .and_then(|()| match group {
            Some(gid) => std::os::unix::fs::chown(path, None, Some(gid)),
            None => Ok(()),
        })
        .map_err(|e| {
            let context = match group {
                Some(gid) => format!(
                    "cannot give the local socket {} mode {SOCKET_MODE:o} and group {gid}",
                    path.display()
                ),
                None => format!(
                    "cannot give the local socket {} mode {SOCKET_MODE:o}",
                    path.display()
                ),
            };
            if is_permission(&e) {
                ServerError::Permission { context, source: e }
            } else {
                ServerError::Io { context, source: e }
            }
        })?;
    socket.listen(LISTEN_BACKLOG).map_err(|e| ServerError::Io {
        context: format!("cannot listen on {}", path.display()),
        source: e,
    })?;
    let std_listener: std::os::unix::net::UnixListener = socket.into();
    match group {
        Some(gid) => ::log::info!(
            "listening on unix {} (mode {SOCKET_MODE:o}, group {gid})",
            path.display()
        ),
        None => ::log::info!(
            "listening on unix {} (mode {SOCKET_MODE:o})",
            path.display()
        ),
    }
    Ok((mio::net::UnixListener::from_std(std_listener), socket_file))
}

/// Creates `dir` and its missing parents with the mode (and group) of the
/// module docs; the mode is set explicitly, whatever the umask.
fn create_socket_dir(dir: &Path, group: Option<u32>) -> io::Result<()> {
    let mode = match group {
        Some(_) => SOCKET_DIR_MODE_GROUP,
        None => SOCKET_DIR_MODE,
    };
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && fs::symlink_metadata(d).is_err())
        .collect();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)?;
    // Outermost first: each directory is private before the next is made.
    for d in missing.iter().rev() {
        if let Some(gid) = group {
            std::os::unix::fs::chown(d, None, Some(gid))?;
        }
        fs::set_permissions(d, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn prepare_socket_dir(path: &Path, group: Option<u32>) -> Result<(), ServerError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let uid = defaults::current_uid();
    let is_fallback = defaults::fallback_socket_path(uid) == path;
    match fs::symlink_metadata(dir) {
        Ok(meta) => {
            if is_fallback && (!meta.is_dir() || meta.uid() != uid) {
                return Err(ServerError::Permission {
                    context: format!("socket directory {}", dir.display()),
                    source: io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "not a directory owned by uid {uid} (owner uid {}); refusing to use it",
                            meta.uid()
                        ),
                    ),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_socket_dir(dir, group).map_err(|e| {
                let context = format!("cannot create the socket directory {}", dir.display());
                if is_permission(&e) {
                    ServerError::Permission { context, source: e }
                } else {
                    ServerError::Io { context, source: e }
                }
            })
        }
        Err(e) if is_permission(&e) => Err(ServerError::Permission {
            context: format!("cannot access the socket directory {}", dir.display()),
            source: e,
        }),
        Err(e) => Err(ServerError::Io {
            context: format!("cannot access the socket directory {}", dir.display()),
            source: e,
        }),
    }
}

fn check_existing_socket(path: &Path) -> Result<(), ServerError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) if is_permission(&e) => {
            return Err(ServerError::Permission {
                context: format!("cannot access {}", path.display()),
                source: e,
            })
        }
        Err(e) => {
            return Err(ServerError::Io {
                context: format!("cannot access {}", path.display()),
                source: e,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ServerError::NotASocket {
            path: path.to_owned(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ServerError::AlreadyRunning {
            socket: path.to_owned(),
        }),
        // A listener with a full backlog is alive.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(ServerError::AlreadyRunning {
            socket: path.to_owned(),
        }),
        Err(e) if is_permission(&e) => Err(ServerError::Permission {
            context: format!("cannot check the existing socket {}", path.display()),
            source: e,
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            ::log::info!(
                "removing stale socket {} (nobody listens on it)",
                path.display()
            );
            fs::remove_file(path).map_err(|e| {
                let context = format!("cannot remove the stale socket {}", path.display());
                if is_permission(&e) {
                    ServerError::Permission { context, source: e }
                } else {
                    ServerError::Io { context, source: e }
                }
            })
        }
        Err(e) => Err(ServerError::Io {
            context: format!("cannot check the existing socket {}", path.display()),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddrV6;

    fn no_resolve(_: &str) -> io::Result<Vec<SocketAddr>> {
        Ok(Vec::new())
    }

    fn addrs(plan: &TcpPlan) -> Vec<String> {
        plan.targets.iter().map(|t| t.addr.to_string()).collect()
    }

    #[test]
    fn without_rules_loopback_only() {
        let plan = plan_tcp(&LinuxWhitelist::new(), 5899, &no_resolve);
        assert_eq!(addrs(&plan), ["127.0.0.1:5899", "[::1]:5899"]);
        assert!(plan.targets[0].required);
        assert!(!plan.targets[1].required);
        assert!(plan.warnings.is_empty());
    }

    // Plans with rules and interface lines need a whitelist with rules,
    // which only the real parser (issue 2) produces; `drop_covered` and the
    // resolver are tested directly here.

    #[test]
    fn wildcard_covers_its_family() {
        let mut plan = TcpPlan::default();
        plan.push(IpAddr::V4(Ipv4Addr::LOCALHOST), 1, true, "a");
        plan.push(IpAddr::V6(Ipv6Addr::LOCALHOST), 1, false, "a");
        plan.push(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), 1, false, "b");
        plan.push(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 1, false, "c");
        plan.push(IpAddr::V4(Ipv4Addr::LOCALHOST), 1, true, "dup");
        plan.drop_covered();
        assert_eq!(addrs(&plan), ["[::1]:1", "0.0.0.0:1"]);
    }

    #[test]
    fn loopback_interface_resolves() {
        let lo = interface_addresses("lo").unwrap();
        assert!(
            lo.iter().any(|a| a.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{lo:?}"
        );
        assert!(interface_addresses("no-such-if0").unwrap().is_empty());
    }

    #[test]
    fn peers_are_classified() {
        let local = [
            None,
            Some("127.0.0.1:1".parse().unwrap()),
            Some("127.9.8.7:1".parse().unwrap()),
            Some("[::1]:1".parse().unwrap()),
            Some("[::ffff:127.0.0.1]:1".parse().unwrap()),
        ];
        for peer in local {
            assert_eq!(classify(peer), PeerKind::Local, "{peer:?}");
        }
        let remote: [SocketAddr; 4] = [
            "10.0.0.1:1".parse().unwrap(),
            "192.168.1.1:1".parse().unwrap(),
            "[::ffff:10.0.0.1]:1".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 1, 0, 2)),
        ];
        for peer in remote {
            assert_eq!(classify(Some(peer)), PeerKind::Remote, "{peer}");
        }
    }

    #[test]
    fn stale_socket_is_replaced_and_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("s.sock");
        let (listener, file) = bind_unix(&path, None).unwrap();
        // Directory was created owner-only.
        let mode = fs::metadata(path.parent().unwrap()).unwrap().mode();
        assert_eq!(mode & 0o777, 0o700);
        // Live: refused, file kept.
        let err = bind_unix(&path, None).unwrap_err();
        assert!(matches!(err, ServerError::AlreadyRunning { .. }), "{err}");
        assert!(path.exists());
        // Stale: close the listener but keep the file (forget the guard).
        drop(listener);
        std::mem::forget(file);
        assert!(path.exists());
        let (_listener, file) = bind_unix(&path, None).unwrap();
        drop(file);
        assert!(!path.exists(), "socket removed on drop");
    }

    #[test]
    fn socket_and_created_directories_get_the_documented_modes_and_group() {
        let dir = tempfile::tempdir().unwrap();
        // Without a group: socket 0660, new directories 0700, own group.
        let path = dir.path().join("a").join("b").join("s.sock");
        let (_l, _f) = bind_unix(&path, None).unwrap();
        let own_gid = nix::unistd::getegid().as_raw();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, SOCKET_MODE);
        assert_eq!(meta.gid(), own_gid);
        for d in [dir.path().join("a"), dir.path().join("a").join("b")] {
            assert_eq!(
                fs::metadata(&d).unwrap().mode() & 0o777,
                SOCKET_DIR_MODE,
                "{d:?}"
            );
        }
        // With a group (one this process is in, a supplementary one when it
        // has one): socket 0660 in it, new directories 0750 in it.
        let gid = nix::unistd::getgroups()
            .ok()
            .and_then(|g| g.into_iter().map(|g| g.as_raw()).find(|g| *g != own_gid))
            .unwrap_or(own_gid);
        let path = dir.path().join("g").join("s.sock");
        let (_l2, _f2) = bind_unix(&path, Some(gid)).unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!((meta.mode() & 0o777, meta.gid()), (SOCKET_MODE, gid));
        let meta = fs::metadata(dir.path().join("g")).unwrap();
        assert_eq!(
            (meta.mode() & 0o777, meta.gid()),
            (SOCKET_DIR_MODE_GROUP, gid)
        );
        // An existing directory is left as it is.
        let existing = dir.path().join("mine");
        fs::create_dir(&existing).unwrap();
        fs::set_permissions(&existing, fs::Permissions::from_mode(0o755)).unwrap();
        let (_l3, _f3) = bind_unix(&existing.join("s.sock"), None).unwrap();
        assert_eq!(fs::metadata(&existing).unwrap().mode() & 0o777, 0o755);
    }

    #[test]
    fn socket_file_guard_leaves_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let (_listener, file) = bind_unix(&path, None).unwrap();
        // Someone replaced the socket with another file: keep theirs.
        fs::remove_file(&path).unwrap();
        fs::write(&path, "x").unwrap();
        drop(file);
        assert!(path.exists());
    }

    #[test]
    fn not_a_socket_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain");
        fs::write(&path, "data").unwrap();
        let err = bind_unix(&path, None).unwrap_err();
        assert!(matches!(err, ServerError::NotASocket { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"data");
    }

    #[test]
    fn second_tcp_bind_reports_port_in_use() {
        let first = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let plan = TcpPlan {
            targets: vec![BindTarget {
                addr: first.addr,
                required: true,
                origin: "test".into(),
            }],
            warnings: Vec::new(),
        };
        let err = bind_tcp_plan(&plan, first.addr.port(), "tcp").unwrap_err();
        assert!(matches!(err, ServerError::PortInUse { .. }), "{err}");
        assert!(err.to_string().contains(&first.addr.port().to_string()));
    }

    #[test]
    fn local_only_profile_listens_on_loopback_whatever_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        // Rules, no interface lines: the Linux profile would bind 0.0.0.0.
        let whitelist = LinuxWhitelist::parse(b"in * * *\nout * * *\n").unwrap();
        let local_only = super::super::Profile {
            local_only: true,
            ..super::super::Profile::LINUX
        };
        let opts = Options {
            port: 0,
            socket: dir.path().join("s.sock"),
            profile: local_only,
            ..Options::default()
        };
        let listeners = open(&opts, &whitelist).unwrap();
        assert!(!listeners.tcp.is_empty());
        for entry in &listeners.tcp {
            assert!(entry.addr.ip().is_loopback(), "{}", entry.addr);
        }
        assert!(
            plan_tcp(&whitelist, 0, &no_resolve)
                .targets
                .iter()
                .any(|t| t.addr.ip().is_unspecified()),
            "the same configuration opens every interface on Linux"
        );
    }

    #[test]
    fn port_zero_shares_the_first_port() {
        let plan = plan_tcp(&LinuxWhitelist::new(), 0, &no_resolve);
        let bound = bind_tcp_plan(&plan, 0, "tcp").unwrap();
        let port = bound[0].addr.port();
        assert_ne!(port, 0);
        assert!(bound.iter().all(|b| b.addr.port() == port));
    }
}
