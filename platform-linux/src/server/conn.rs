//! One open connection as the event loop holds it: its socket (Unix, TCP
//! or TLS over TCP), where it comes from, its frame decoder, and the input
//! held while flow control pauses it.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use nfy_core::broker::ConnId;
use nfy_core::msg::{Credentials, PeerAddr};
use nfy_core::wire::FrameDecoder;

use super::tls_stream::TlsStream;

/// A connection's socket: TCP, the Unix socket, or TLS over TCP (its
/// handshake complete, [`super::handshake`]).
#[derive(Debug)]
pub(super) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream>),
}

impl Socket {
    /// Reads what the peer sent (plaintext for TLS).
    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
            Socket::Tls(s) => s.read(buf),
        }
    }

    pub(super) fn fd(&self) -> RawFd {
        match self {
            Socket::Tcp(s) => s.as_raw_fd(),
            Socket::Unix(s) => s.as_raw_fd(),
            Socket::Tls(s) => s.fd(),
        }
    }

    /// The local address a TCP connection reached (`None` for the Unix
    /// socket, or when the kernel does not say).
    pub(super) fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Socket::Tcp(s) => s.local_addr().ok(),
            Socket::Tls(s) => s.local_addr(),
            Socket::Unix(_) => None,
        }
    }

    pub(super) fn source(&mut self) -> &mut dyn Source {
        match self {
            Socket::Tcp(s) => s,
            Socket::Unix(s) => s,
            Socket::Tls(s) => s.tcp(),
        }
    }

    /// True when a read that returned less than asked means nothing more
    /// is there now (a stream socket's receive queue is empty). Not for
    /// TLS: rustls may hold more plaintext, or the socket more records,
    /// than one read gave.
    pub(super) fn short_read_means_empty(&self) -> bool {
        !matches!(self, Socket::Tls(_))
    }

    /// True when the socket holds output of its own to write (TLS
    /// records), besides the connection's queue.
    pub(super) fn has_pending_output(&self) -> bool {
        match self {
            Socket::Tls(s) => s.has_pending_output(),
            Socket::Tcp(_) | Socket::Unix(_) => false,
        }
    }
}

/// Where a connection comes from, for logs: the Unix socket with the
/// peer's credentials (when the kernel gave them), or a TCP address (plain
/// or TLS).
#[derive(Debug, Clone, Copy)]
pub(super) enum Peer {
    Unix(Option<Credentials>),
    Tcp(SocketAddr),
    Tls(SocketAddr),
}

impl Peer {
    /// The form `nfy status` shows.
    pub(super) fn addr(&self) -> PeerAddr {
        match self {
            Peer::Unix(Some(c)) => PeerAddr::Unix(*c),
            Peer::Unix(None) => PeerAddr::UnixUnknown,
            Peer::Tcp(addr) | Peer::Tls(addr) => {
                let ip = match addr.ip() {
                    std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    std::net::IpAddr::V6(v6) => v6,
                };
                PeerAddr::Tcp {
                    ip: ip.octets(),
                    port: addr.port(),
                }
            }
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Unix(Some(c)) => {
                write!(f, "unix socket, pid {} uid {} gid {}", c.pid, c.uid, c.gid)
            }
            Peer::Unix(None) => f.write_str("unix socket"),
            Peer::Tcp(addr) => write!(f, "tcp {addr}"),
            Peer::Tls(addr) => write!(f, "tls {addr}"),
        }
    }
}

/// The credentials of the process at the other end of a Unix-socket
/// connection, as the kernel recorded them at `connect` (`SO_PEERCRED`,
/// through nix: no unsafe code here). `None` when they cannot be read.
pub(super) fn peer_credentials(stream: &UnixStream) -> Option<Credentials> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let cred = getsockopt(stream, PeerCredentials).ok()?;
    Some(Credentials {
        pid: u32::try_from(cred.pid()).unwrap_or(0),
        uid: cred.uid(),
        gid: cred.gid(),
    })
}

/// One open connection.
pub(super) struct Conn {
    pub(super) id: ConnId,
    pub(super) socket: Socket,
    pub(super) decoder: FrameDecoder<Vec<u8>>,
    pub(super) peer: Peer,
    /// WRITABLE is part of the registration (output is waiting).
    pub(super) writable_interest: bool,
    /// Bytes fed to the decoder since its last frame or skip report: a
    /// frame in progress.
    pub(super) partial: usize,
    /// End of stream was read: no more reading. With output still queued
    /// (or input still held), the connection closes once that is done.
    pub(super) read_closed: bool,
    /// Input read but not handled, from a frame boundary: the connection
    /// is paused (flow control). Given to the decoder again, first, when
    /// the broker resumes it.
    pub(super) held: Vec<u8>,
    /// Bytes of `held` the broker has searched for acknowledgements.
    pub(super) held_scanned: usize,
}

impl Conn {
    pub(super) fn new(id: ConnId, socket: Socket, peer: Peer, decoder_len: usize) -> Conn {
        Conn {
            id,
            socket,
            decoder: FrameDecoder::new(vec![0; decoder_len]),
            peer,
            writable_interest: false,
            partial: 0,
            read_closed: false,
            held: Vec::new(),
            held_scanned: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream as StdUnixStream;

    #[test]
    fn peers_are_reported_as_nfy_status_shows_them() {
        let c = Credentials {
            pid: 1,
            uid: 2,
            gid: 3,
        };
        assert_eq!(Peer::Unix(Some(c)).addr(), PeerAddr::Unix(c));
        assert_eq!(Peer::Unix(None).addr(), PeerAddr::UnixUnknown);
        assert_eq!(
            Peer::Unix(Some(c)).to_string(),
            "unix socket, pid 1 uid 2 gid 3"
        );
        let PeerAddr::Tcp { ip, port } = Peer::Tcp("10.233.0.2:7".parse().unwrap()).addr() else {
            panic!()
        };
        assert_eq!(
            (std::net::Ipv6Addr::from(ip).to_ipv4_mapped(), port),
            (Some(std::net::Ipv4Addr::new(10, 233, 0, 2)), 7)
        );
        let tls = Peer::Tls("10.233.0.2:7".parse().unwrap());
        assert_eq!(
            tls.addr(),
            Peer::Tcp("10.233.0.2:7".parse().unwrap()).addr()
        );
        assert_eq!(tls.to_string(), "tls 10.233.0.2:7");
    }

    #[test]
    fn peer_credentials_are_this_process() {
        let (a, _b) = StdUnixStream::pair().unwrap();
        let c = peer_credentials(&UnixStream::from_std(a)).unwrap();
        assert_eq!(c.pid, std::process::id());
        assert_eq!(c.uid, nix::unistd::geteuid().as_raw());
        assert_eq!(c.gid, nix::unistd::getegid().as_raw());
    }
}
