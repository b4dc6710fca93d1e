//! The server's report for `nfy status`: its [`Status`], every open
//! connection ([`ConnectionReport`]: peer credentials or address, app ID,
//! registrations) and its protection counters ([`Guard`]).
//!
//! One short-lived connection of its own, with blocking I/O: `hello`,
//! `StatusRequest`, `ConnectionsRequest`, then the answers up to
//! `ConnectionsEnd`. The asking connection is in the list too (a local
//! one with this process's credentials and no app ID).
//! Local connections only: the server refuses these requests from remote
//! peers.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nfy_core::msg::{self, ConnectionReport, Encoding, Guard, Hello, Message, Status};
use nfy_core::wire::{self, Decoded, FrameDecoder, HEADER_LEN};

use super::addr::ServerAddr;
use super::conn::{CONNECT_TIMEOUT, MAX_BODY};
use super::Error;

/// What `nfy status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerReport {
    /// The broker's counters.
    pub status: Status,
    /// Every open connection, this one included.
    pub connections: Vec<ConnectionReport>,
    /// The protection counters.
    pub guard: Guard,
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn connect(addr: &ServerAddr) -> io::Result<Stream> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no server address");
        if let Some(path) = &addr.unix {
            match UnixStream::connect(path) {
                Ok(s) => return Ok(Stream::Unix(s)),
                Err(e) => last = e,
            }
        }
        if let Some(a) = &addr.tcp {
            match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
                Ok(s) => return Ok(Stream::Tcp(s)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn set_read_timeout(&self, d: Duration) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(Some(d)),
            Stream::Tcp(s) => s.set_read_timeout(Some(d)),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.write_all(buf),
            Stream::Tcp(s) => s.write_all(buf),
        }
    }
}

fn push_frame(out: &mut Vec<u8>, m: &Message<'_>) -> Result<(), Error> {
    let mut buf = [0u8; 256];
    let n = wire::encode_frame(&mut buf, Encoding::Compact.msg_id(), |body| {
        msg::encode(m, Encoding::Compact, body)
    })
    .map_err(|_| Error::Encode)?;
    out.extend_from_slice(buf.get(..n).ok_or(Error::Encode)?);
    Ok(())
}

/// Asks the server at `addr` for its report; waits at most `timeout` for
/// the whole answer. [`Error::Server`] when it cannot be reached or closes
/// the connection, [`Error::Timeout`] when the answer is not complete in
/// time (an older server that does not know `ConnectionsRequest` ignores
/// it).
pub fn server_report(addr: &ServerAddr, timeout: Duration) -> Result<ServerReport, Error> {
    let mut stream = Stream::connect(addr).map_err(|_| Error::Server)?;
    let mut request = Vec::new();
    push_frame(
        &mut request,
        &Message::Hello(Hello {
            version: msg::compact::VERSION,
            app_id: None,
            acks: false,
        }),
    )?;
    push_frame(&mut request, &Message::StatusRequest)?;
    push_frame(&mut request, &Message::ConnectionsRequest)?;
    stream.write_all(&request).map_err(|_| Error::Server)?;

    let deadline = Instant::now() + timeout;
    let mut decoder = FrameDecoder::new(vec![0u8; MAX_BODY + HEADER_LEN]);
    let mut report = ServerReport::default();
    let mut got_status = false;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout);
        }
        stream.set_read_timeout(left).map_err(|_| Error::Server)?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(Error::Server),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Error::Timeout)
            }
            Err(_) => return Err(Error::Server),
        };
        let mut input = chunk.get(..n).unwrap_or(&[]);
        while !input.is_empty() {
            let (used, decoded) = decoder.feed(input);
            input = input.get(used..).unwrap_or(&[]);
            let Some(Decoded::Frame(frame)) = decoded else {
                if used == 0 {
                    return Err(Error::Server);
                }
                continue;
            };
            match msg::decode(Encoding::from_msg_id(frame.msg_id), frame.body) {
                Ok(Message::Status(s)) => {
                    report.status = s;
                    got_status = true;
                }
                Ok(Message::Connection(c)) => report.connections.push(c),
                Ok(Message::ConnectionsEnd(g)) => {
                    report.guard = g;
                    if got_status {
                        return Ok(report);
                    }
                }
                _ => {}
            }
        }
    }
}
