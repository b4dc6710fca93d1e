//! The connected socket to the server (Unix, TCP, or TLS over TCP:
//! [`super::tls`]) and the ways the client writes it.
//!
//! Writes use `send(2)` with `MSG_NOSIGNAL` (a server that went away is an
//! error, never a `SIGPIPE` that kills an application which did not ignore
//! it, as a C program linking the library may not) and `MSG_DONTWAIT`, so
//! one socket serves both kinds of writer:
//!
//! - `Socket::send_now`: what the kernel takes now, for threads that
//!   must never block (a reader returning a unicast, a worker sending
//!   acks);
//! - `Socket::write_until`: everything, waiting for room (the server
//!   slowing this sender down: backpressure) until an optional deadline,
//!   for callers that send.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, send, MsgFlags};

use super::super::addr::ServerAddr;
use super::super::Error;
use super::tls::{TlsSocket, TLS_HANDSHAKE_TIMEOUT};

/// TCP connect timeout (loopback: refused at once when nothing listens).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A connected stream to the server: Unix, TCP, or TLS over TCP (shared
/// by the reading and the writing half, see [`super::tls`]).
#[derive(Debug)]
pub(crate) enum Socket {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(Arc<TlsSocket>),
}

impl Socket {
    /// Connects to the Unix socket of `addr`, else its TCP address; with
    /// TLS settings ([`ServerAddr::tls`]), to its TCP address over TLS
    /// only.
    ///
    /// [`Error::Permission`] when the Unix socket refused us for lack of
    /// permission and TCP did not connect either (naming the socket's
    /// group, which grants access); [`Error::Tls`] when the TLS handshake
    /// failed; [`Error::Server`] otherwise.
    pub(crate) fn connect(addr: &ServerAddr) -> Result<Socket, Error> {
        if let Some(settings) = &addr.tls {
            let deadline = Instant::now() + TLS_HANDSHAKE_TIMEOUT;
            let tcp = addr
                .tcp
                .and_then(|a| TcpStream::connect_timeout(&a, CONNECT_TIMEOUT).ok())
                .ok_or(Error::Server)?;
            let _ = tcp.set_nodelay(true);
            let tls = TlsSocket::connect(tcp, settings, deadline)?;
            return Ok(Socket::Tls(Arc::new(tls)));
        }
        let mut denied = None;
        if let Some(path) = &addr.unix {
            match UnixStream::connect(path) {
                Ok(s) => return Ok(Socket::Unix(s)),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => denied = Some(path),
                Err(_) => {}
            }
        }
        if let Some(a) = &addr.tcp {
            if let Ok(s) = TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
                // Latency matters more than packet count here.
                let _ = s.set_nodelay(true);
                return Ok(Socket::Tcp(s));
            }
        }
        Err(match denied {
            Some(path) => Error::Permission {
                socket: path.clone(),
                group: access_group(path),
            },
            None => Error::Server,
        })
    }

    /// A second handle on the same socket (the reading half).
    pub(crate) fn try_clone(&self) -> io::Result<Socket> {
        Ok(match self {
            Socket::Unix(s) => Socket::Unix(s.try_clone()?),
            Socket::Tcp(s) => Socket::Tcp(s.try_clone()?),
            Socket::Tls(s) => Socket::Tls(Arc::clone(s)),
        })
    }

    /// Sets the read timeout (blocking reads: the status report, the
    /// answer to the handshake).
    pub(crate) fn set_read_timeout(&self, d: Duration) -> io::Result<()> {
        match self {
            Socket::Unix(s) => s.set_read_timeout(Some(d)),
            Socket::Tcp(s) => s.set_read_timeout(Some(d)),
            Socket::Tls(s) => {
                s.set_read_timeout(Some(d));
                Ok(())
            }
        }
    }

    /// Ends the connection both ways, for every handle on it: a writer
    /// blocked on it returns with an error, a reader sees the end.
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Socket::Unix(s) => s.shutdown(Shutdown::Both),
            Socket::Tcp(s) => s.shutdown(Shutdown::Both),
            Socket::Tls(s) => {
                s.shutdown();
                Ok(())
            }
        };
    }

    /// Reads what is there without waiting: `WouldBlock` when nothing is
    /// (for TLS: plaintext rustls holds, else records the socket has).
    pub(crate) fn recv_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tls(s) => s.recv_now(buf),
            Socket::Unix(_) | Socket::Tcp(_) => {
                recv(self.as_fd().as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT)
                    .map_err(|e| io::Error::from_raw_os_error(e as i32))
            }
        }
    }

    /// True when input is already read off the socket and waits (TLS
    /// plaintext rustls holds): no readiness event will announce it.
    pub(crate) fn has_buffered_input(&self) -> bool {
        match self {
            Socket::Tls(s) => s.has_buffered_input(),
            Socket::Unix(_) | Socket::Tcp(_) => false,
        }
    }

    /// True when output was taken but is not in the kernel yet (TLS
    /// records rustls holds): someone must write again to send it.
    pub(crate) fn has_pending_output(&self) -> bool {
        match self {
            Socket::Tls(s) => s.has_pending_output(),
            Socket::Unix(_) | Socket::Tcp(_) => false,
        }
    }

    /// Why the connection failed at the TLS level, if it did.
    pub(crate) fn tls_error(&self) -> Option<String> {
        match self {
            Socket::Tls(s) => s.error(),
            Socket::Unix(_) | Socket::Tcp(_) => None,
        }
    }

    /// Writes what the kernel takes of `buf` now, without waiting; the
    /// number of bytes written (0 when the socket buffer is full). For
    /// TLS: the records held back first, then what rustls takes of `buf`
    /// (an empty `buf` only writes the records held back).
    pub(crate) fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
        if let Socket::Tls(s) = self {
            return s.send_now(buf);
        }
        let fd = self.as_fd().as_raw_fd();
        let mut done = 0;
        while let Some(rest) = buf.get(done..).filter(|r| !r.is_empty()) {
            match send(fd, rest, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => break,
                Err(e) => return Err(io::Error::from_raw_os_error(e as i32)),
            }
        }
        Ok(done)
    }

    /// Writes all of `buf`, waiting for room as long as the server takes
    /// no more (no limit with `deadline` `None`). Returns the bytes
    /// written: all of them, or fewer when the deadline passed first. An
    /// error means the connection is broken.
    pub(crate) fn write_until(&self, buf: &[u8], deadline: Option<Instant>) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() || self.has_pending_output() {
            done += self.send_now(buf.get(done..).unwrap_or_default())?;
            if done == buf.len() && !self.has_pending_output() {
                break;
            }
            if !self.wait_writable(deadline)? {
                break;
            }
        }
        Ok(done)
    }

    /// Waits until the socket has room (or an error to report); false
    /// when `deadline` passed first.
    fn wait_writable(&self, deadline: Option<Instant>) -> io::Result<bool> {
        wait_ready(self, PollFlags::POLLOUT, deadline)
    }
}

/// Waits until `fd` is ready for `flags` (or has an error to report);
/// false when `deadline` passed first (`None`: no limit).
pub(super) fn wait_ready(
    fd: &impl AsFd,
    flags: PollFlags,
    deadline: Option<Instant>,
) -> io::Result<bool> {
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                // Rounded up: a wait that ends before the deadline
                // would spin.
                let ms = left.as_millis().saturating_add(1);
                PollTimeout::try_from(u32::try_from(ms).unwrap_or(u32::MAX))
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(fd.as_fd(), flags)];
        match poll(&mut fds, timeout) {
            // Ready, POLLERR or POLLHUP: the next operation says which.
            Ok(n) if n > 0 => return Ok(true),
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(e) => return Err(io::Error::from_raw_os_error(e as i32)),
        }
    }
}

/// The group whose members may connect to the socket at `path`: the
/// socket file's group, or, when its directory cannot be searched, the
/// directory's (`notifysvc --socket-group` gives both); a name when the
/// group database has one, else the number. `None` when neither can be
/// read.
fn access_group(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path)
        .or_else(|e| match path.parent() {
            Some(dir) => std::fs::metadata(dir),
            None => Err(e),
        })
        .ok()?;
    let gid = meta.gid();
    Some(
        nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
            .ok()
            .flatten()
            .map_or_else(|| gid.to_string(), |g| g.name),
    )
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Unix(s) => s.as_fd(),
            Socket::Tcp(s) => s.as_fd(),
            Socket::Tls(s) => s.tcp().as_fd(),
        }
    }
}

impl Read for Socket {
    /// A blocking read, up to the read timeout.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.read(buf),
            Socket::Tcp(s) => s.read(buf),
            Socket::Tls(s) => s.read_blocking(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn writes_wait_for_room_until_the_deadline() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let a = Socket::Unix(a);
        // Fill the socket buffer: nothing more fits now.
        let chunk = vec![7u8; 64 * 1024];
        while a.send_now(&chunk).unwrap() > 0 {}
        assert_eq!(a.send_now(b"x").unwrap(), 0);
        let deadline = Instant::now() + Duration::from_millis(30);
        assert_eq!(a.write_until(b"xyz", Some(deadline)).unwrap(), 0);
        assert!(Instant::now() >= deadline);
        // A reader makes room: the next write completes.
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0usize;
            while let Ok(n) = b.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n;
            }
            total
        });
        assert_eq!(a.write_until(b"xyz", None).unwrap(), 3);
        a.shutdown();
        assert!(reader.join().unwrap() > 3);
    }

    #[test]
    fn a_closed_peer_is_an_error_not_a_signal() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let a = Socket::Unix(a);
        assert!(a.send_now(b"x").is_err());
        assert!(a.write_until(b"x", None).is_err());
    }
}
