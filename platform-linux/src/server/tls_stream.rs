//! An established TLS connection: its TCP stream and its rustls state,
//! read and written in the event loop without blocking.
//!
//! **Reading** ([`TlsStream::read`]) gives the plaintext rustls holds,
//! else takes what the socket has (`read_tls`, `process_new_packets`) and
//! gives its plaintext; `WouldBlock` only when both are empty. So the
//! event loop reads a TLS connection until `WouldBlock` (a short read
//! does not mean the socket is empty, as it does for plain streams:
//! [`super::conn::Socket::short_read_means_empty`]), and the plaintext
//! goes through the same decoder and broker path as any connection's.
//!
//! **Writing** ([`TlsStream::flush`]) moves bytes from the connection's
//! [`OutQueue`] into rustls while rustls holds less than
//! [`TLS_OUT_BUFFER`] of encrypted output (`set_buffer_limit`), and writes
//! the records out (`write_tls`, one `sendmsg` for all of them) until the
//! socket takes no more. What rustls took counts as sent for the broker
//! ([`Sent::bytes`]: flow control and the stall clock), like what the
//! kernel's socket buffer takes of a plain connection; the queue is
//! drained only when rustls has nothing left to write either, so the
//! connection keeps WRITABLE interest until its last record is out. A
//! connection's memory is thus its queue (`--max-queue`) plus rustls's
//! buffers: at most [`TLS_OUT_BUFFER`] of output, 16 KiB of received
//! plaintext (rustls's default limit, drained before each `read_tls`),
//! and one record being received.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use mio::net::TcpStream;
use rustls::ServerConnection;

use super::out_queue::{OutQueue, Sent};
use super::tls::TLS_OUT_BUFFER;
use crate::tls::io::SocketIo;
use crate::tls::subject_text;

/// An established TLS connection.
#[derive(Debug)]
pub(super) struct TlsStream {
    tcp: TcpStream,
    tls: ServerConnection,
}

impl TlsStream {
    /// A connection whose handshake is complete.
    pub(super) fn new(tcp: TcpStream, mut tls: ServerConnection) -> TlsStream {
        tls.set_buffer_limit(Some(TLS_OUT_BUFFER));
        TlsStream { tcp, tls }
    }

    /// The TCP stream (for the poller).
    pub(super) fn tcp(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    /// The local address the peer reached.
    pub(super) fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.tcp.local_addr().ok()
    }

    /// Its descriptor.
    pub(super) fn fd(&self) -> RawFd {
        self.tcp.as_raw_fd()
    }

    /// True when rustls holds output the socket has not taken yet.
    pub(super) fn has_pending_output(&self) -> bool {
        self.tls.wants_write()
    }

    /// Reads plaintext (module docs); `Ok(0)` at the end of the stream
    /// (the peer's `close_notify`, or its TCP close), `WouldBlock` when
    /// there is nothing now, `InvalidData` when the peer broke the
    /// protocol (the alert rustls has for it is written first, if the
    /// socket takes it).
    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without close_notify: for a frame stream this is
                // the same as a TCP close (a cut frame is discarded).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let mut io = SocketIo(self.fd());
            let read = self.tls.read_tls(&mut io)?;
            if let Err(e) = self.tls.process_new_packets() {
                let _ = self.tls.write_tls(&mut io);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if read == 0 {
                // rustls has seen the end: the next reader() says how.
                return match self.tls.reader().read(buf) {
                    Ok(n) => Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                    Err(e) => Err(e),
                };
            }
        }
    }

    /// Moves `queue` into rustls and writes rustls's records out, until
    /// the socket takes no more or everything is out (module docs).
    pub(super) fn flush(&mut self, queue: &mut OutQueue) -> io::Result<Sent> {
        let mut io = SocketIo(self.fd());
        let mut taken = 0;
        loop {
            while self.tls.wants_write() {
                match self.tls.write_tls(&mut io) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(Sent {
                            bytes: taken,
                            drained: false,
                        })
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if queue.is_empty() {
                return Ok(Sent {
                    bytes: taken,
                    drained: true,
                });
            }
            let n = self.tls.writer().write(queue.pending())?;
            if n == 0 {
                // Nothing fits and nothing to write: cannot happen with a
                // non-zero buffer limit; report progress so far.
                return Ok(Sent {
                    bytes: taken,
                    drained: false,
                });
            }
            queue.consume(n);
            taken += n;
        }
    }

    /// Queues a `close_notify` and writes what the socket takes of it.
    pub(super) fn close_notify(&mut self) {
        self.tls.send_close_notify();
        let mut io = SocketIo(self.fd());
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut io) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }
}

/// The subject of the certificate `tls`'s peer presented, as text.
pub(super) fn peer_subject(tls: &ServerConnection) -> Option<String> {
    let cert = tls.peer_certificates()?.first()?;
    Some(subject_text(cert).unwrap_or_else(|| "(unreadable subject)".to_owned()))
}
