//! The client's TLS: what to connect with ([`TlsSettings`], part of a
//! [`ServerAddr`](super::super::ServerAddr)) and the connected TLS socket
//! (`TlsSocket`, the TLS variant of the client's socket).
//!
//! # One rustls state, two threads (Decision)
//!
//! The client reads its connection on pool workers (one at a time, woken
//! by a one-shot epoll registration of the descriptor) while callers write
//! it (one at a time, the write half), and a TLS connection is one rustls
//! state for both directions. `TlsSocket` therefore keeps the rustls
//! `ClientConnection` behind a mutex of its own, taken only around
//! non-blocking work on it (moving records with `MSG_DONTWAIT` through
//! [`SocketIo`], encrypting, decrypting), never while waiting for the
//! socket: a writer waiting for room polls the descriptor with the lock
//! released, and so does a blocking read. The lock is a leaf: nothing else
//! is taken while it is held, so it adds no order to the client's locks
//! (`read` → `state` → `output`, then this one).
//!
//! Two differences from a plain socket follow, and the reader and the
//! writer handle them:
//!
//! - **Plaintext rustls holds** (decrypted, not yet read) raises no epoll
//!   event. A reader therefore takes everything rustls holds before it
//!   stops (`TlsSocket::has_buffered_input`), and a connection attempt
//!   that read the handshake's answer reads at once what came with it.
//! - **Records rustls holds** (encrypted, not yet taken by the socket) go
//!   out only when someone writes: bytes rustls took count as written (as
//!   bytes the kernel's socket buffer took do), and whoever leaves records
//!   behind asks the link thread to flush them
//!   (`TlsSocket::has_pending_output`), as for bytes left unsent.
//!
//! Reading may make rustls want to write (a key update, an alert): the
//! reader writes what the socket takes and leaves the rest to the link
//! thread likewise.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::poll::PollFlags;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use super::super::Error;
use super::socket::wait_ready;
use crate::tls::io::SocketIo;
use crate::tls::{self as files, TlsFileError};

/// What rustls may hold of encrypted output (`set_buffer_limit`).
pub const TLS_OUT_BUFFER: usize = 64 * 1024;
/// How long a TLS handshake may take, connect included.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How the client speaks TLS to the server: the rustls configuration (the
/// CAs it trusts, the certificate it presents) and the name the server's
/// certificate must carry.
#[derive(Clone)]
pub struct TlsSettings {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

/// Why [`TlsSettings`] could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSettingsError {
    /// A certificate, key or CA file is unusable (it is named).
    File(TlsFileError),
    /// The server name is neither a DNS name nor an IP address.
    ServerName(String),
    /// rustls refused the combination (a key that does not match its
    /// certificate, say).
    Config(String),
}

impl fmt::Display for TlsSettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsSettingsError::File(e) => write!(f, "{e}"),
            TlsSettingsError::ServerName(n) => {
                write!(f, "{n:?} is not a server name (DNS name or IP address)")
            }
            TlsSettingsError::Config(e) => write!(f, "cannot set up TLS: {e}"),
        }
    }
}

impl std::error::Error for TlsSettingsError {}

impl TlsSettings {
    /// Settings from PEM files: the CA certificates the server's
    /// certificate must chain to (`ca`), optionally the certificate chain
    /// and key to present (`client`: the server's `--tls-client-ca` asks
    /// for one), and the name the server's certificate must carry (a DNS
    /// name or an IP address). The files are read now, once.
    pub fn from_files(
        ca: &Path,
        client: Option<(&Path, &Path)>,
        server_name: &str,
    ) -> Result<TlsSettings, TlsSettingsError> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsSettingsError::ServerName(server_name.to_owned()))?;
        let roots = files::read_roots(ca).map_err(TlsSettingsError::File)?;
        let builder = ClientConfig::builder_with_provider(files::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSettingsError::Config(e.to_string()))?
            .with_root_certificates(roots);
        let config = match client {
            Some((cert, key)) => {
                let chain = files::read_certificates(cert).map_err(TlsSettingsError::File)?;
                let key_der = files::read_private_key(key).map_err(TlsSettingsError::File)?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| TlsSettingsError::Config(e.to_string()))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(TlsSettings::new(Arc::new(config), name))
    }

    /// Settings from a rustls configuration made elsewhere.
    pub fn new(config: Arc<ClientConfig>, server_name: ServerName<'static>) -> TlsSettings {
        TlsSettings {
            config,
            server_name,
        }
    }

    /// The name the server's certificate must carry.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }
}

impl PartialEq for TlsSettings {
    /// The same configuration (the same `Arc`) and server name.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.server_name == other.server_name
    }
}

impl Eq for TlsSettings {}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// The rustls state and what the socket's users need besides it.
struct TlsState {
    conn: ClientConnection,
    /// The read timeout of blocking reads (`Read`).
    read_timeout: Option<Duration>,
    /// Why the connection failed at the TLS level, once it did.
    error: Option<String>,
}

/// A connected TLS socket: the TCP stream (blocking; every operation on it
/// here is non-blocking by its flags) and the rustls state behind its lock
/// (module docs).
pub(crate) struct TlsSocket {
    tcp: TcpStream,
    state: Mutex<TlsState>,
}

impl fmt::Debug for TlsSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSocket")
            .field("tcp", &self.tcp)
            .finish_non_exhaustive()
    }
}

/// A rustls error in words.
fn reason(e: &rustls::Error) -> String {
    match e {
        rustls::Error::AlertReceived(alert) => format!("the server refused us ({alert:?})"),
        rustls::Error::InvalidCertificate(c) => {
            format!("the server's certificate is not accepted: {c:?}")
        }
        other => other.to_string(),
    }
}

impl TlsSocket {
    /// Makes the TLS connection over the connected `tcp`: the handshake,
    /// waiting at most until `deadline`. [`Error::Tls`] when TLS fails (the
    /// server's certificate is not accepted, the server refused us),
    /// [`Error::Server`] when the connection breaks or times out.
    pub(crate) fn connect(
        tcp: TcpStream,
        settings: &TlsSettings,
        deadline: Instant,
    ) -> Result<TlsSocket, Error> {
        let mut conn =
            ClientConnection::new(Arc::clone(&settings.config), settings.server_name.clone())
                .map_err(|e| Error::Tls(e.to_string()))?;
        conn.set_buffer_limit(Some(TLS_OUT_BUFFER));
        let mut io = SocketIo(tcp.as_raw_fd());
        while conn.is_handshaking() {
            while conn.wants_write() {
                match conn.write_tls(&mut io) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if !wait_ready(&tcp, PollFlags::POLLOUT, Some(deadline)).unwrap_or(false) {
                            return Err(Error::Server);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Err(Error::Server),
                }
            }
            if !conn.is_handshaking() {
                break;
            }
            match conn.read_tls(&mut io) {
                Ok(0) => return Err(Error::Server),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !wait_ready(&tcp, PollFlags::POLLIN, Some(deadline)).unwrap_or(false) {
                        return Err(Error::Server);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Error::Server),
            }
            if let Err(e) = conn.process_new_packets() {
                let _ = conn.write_tls(&mut io);
                return Err(Error::Tls(reason(&e)));
            }
        }
        Ok(TlsSocket {
            tcp,
            state: Mutex::new(TlsState {
                conn,
                read_timeout: None,
                error: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, TlsState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn io(&self) -> SocketIo {
        SocketIo(self.tcp.as_raw_fd())
    }

    /// The TCP stream.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Writes the records rustls holds as far as the socket takes them;
    /// true when none are left.
    fn write_records(&self, st: &mut TlsState) -> io::Result<bool> {
        let mut io = self.io();
        while st.conn.wants_write() {
            match st.conn.write_tls(&mut io) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Writes the records held back first; then, if they are all out,
    /// encrypts what rustls takes of `buf` and writes what the socket
    /// takes. The number of bytes of `buf` taken (module docs: they count
    /// as written).
    pub(crate) fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self.lock();
        if !self.write_records(&mut st)? || buf.is_empty() {
            return Ok(0);
        }
        let n = st.conn.writer().write(buf)?;
        self.write_records(&mut st)?;
        Ok(n)
    }

    /// True when rustls holds records the socket has not taken.
    pub(crate) fn has_pending_output(&self) -> bool {
        self.lock().conn.wants_write()
    }

    /// True when rustls holds plaintext not read yet.
    pub(crate) fn has_buffered_input(&self) -> bool {
        self.lock()
            .conn
            .process_new_packets()
            .is_ok_and(|s| s.plaintext_bytes_to_read() > 0)
    }

    /// Reads plaintext without waiting: what rustls holds, else what the
    /// socket has. `Ok(0)` at the end of the stream, `WouldBlock` when
    /// nothing is there, `InvalidData` when TLS failed (then
    /// [`TlsSocket::error`] says why).
    pub(crate) fn recv_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut st = self.lock();
        loop {
            match st.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let read = st.conn.read_tls(&mut self.io())?;
            if let Err(e) = st.conn.process_new_packets() {
                st.error = Some(reason(&e));
                let _ = self.write_records(&mut st);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // A key update or an alert to answer: what the socket takes
            // now; the reader asks for the rest to be flushed.
            let _ = self.write_records(&mut st);
            if read == 0 {
                return match st.conn.reader().read(buf) {
                    Ok(n) => Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                    Err(e) => Err(e),
                };
            }
        }
    }

    /// Why TLS failed, once it did.
    pub(crate) fn error(&self) -> Option<String> {
        self.lock().error.clone()
    }

    /// Sets the timeout of blocking reads (`Read`).
    pub(crate) fn set_read_timeout(&self, d: Option<Duration>) {
        self.lock().read_timeout = d;
    }

    /// Sends `close_notify` if the socket takes it now, and shuts the TCP
    /// stream down both ways.
    pub(crate) fn shutdown(&self) {
        {
            let mut st = self.lock();
            st.conn.send_close_notify();
            let _ = self.write_records(&mut st);
        }
        let _ = self.tcp.shutdown(std::net::Shutdown::Both);
    }

    /// A blocking read: waits for input up to the read timeout
    /// (`WouldBlock` after it), the lock released while waiting.
    pub(crate) fn read_blocking(&self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = self.lock().read_timeout.map(|d| Instant::now() + d);
        loop {
            match self.recv_now(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !wait_ready(&self.tcp, PollFlags::POLLIN, deadline)? {
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}
