//! rustls's reads and writes on a socket, never blocking and never
//! raising `SIGPIPE`.
//!
//! rustls moves records with `read_tls(&mut dyn Read)` and
//! `write_tls(&mut dyn Write)`; [`SocketIo`] gives it the socket through
//! `recv`/`send`/`sendmsg` with `MSG_DONTWAIT | MSG_NOSIGNAL`, so the same
//! descriptor serves non-blocking TLS whether the socket itself blocks
//! (the client's) or not (the server's), and a peer that went away is an
//! `EPIPE` error, not a signal that kills a host application which did not
//! ignore it (as the plain paths: `server::out_queue`, the client's
//! socket).

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::socket::{recv, send, sendmsg, MsgFlags};

/// A socket's descriptor as rustls's `Read` and `Write`.
#[derive(Debug, Clone, Copy)]
pub struct SocketIo(pub RawFd);

const FLAGS: MsgFlags = MsgFlags::MSG_DONTWAIT.union(MsgFlags::MSG_NOSIGNAL);

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl Read for SocketIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        recv(self.0, buf, MsgFlags::MSG_DONTWAIT).map_err(errno)
    }
}

impl Write for SocketIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        send(self.0, buf, FLAGS).map_err(errno)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        sendmsg::<()>(self.0, bufs, &[], FLAGS, None).map_err(errno)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn never_blocks_and_a_closed_peer_is_an_error() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut io = SocketIo(a.as_raw_fd());
        let mut buf = [0u8; 8];
        assert_eq!(
            io.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let parts = [IoSlice::new(b"ab"), IoSlice::new(b"cd")];
        assert_eq!(io.write_vectored(&parts).unwrap(), 4);
        let mut other = SocketIo(b.as_raw_fd());
        assert_eq!(other.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"abcd");
        drop(b);
        assert_eq!(
            io.write(b"x").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }
}
