//! The server's report for `nfy status`: its [`Status`], every open
//! connection ([`ConnectionReport`]: peer credentials or address, app ID,
//! number of registrations), every registration ([`RegistrationReport`]),
//! which connections came over TLS and their peers' certificate subjects
//! ([`TlsConnection`]), the TLS counters ([`TlsCounters`], from a server
//! with TLS) and its protection counters ([`ProtectionCounters`]).
//!
//! One short-lived connection of its own, with blocking I/O: `hello`,
//! `StatusRequest`, `ConnectionsRequest`, then the answers up to
//! `ConnectionsEnd` (a server older than the `Registration` message sends
//! no registrations: the list is then empty while the counts are not).
//! The asking connection is in the list too (a local one with this
//! process's credentials and no app ID).
//! Local connections only: the server refuses these requests from remote
//! peers.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use nfy_core::msg::{
    self, ConnectionReport, Encoding, Hello, Message, ProtectionCounters, RegistrationReport,
    Status, TlsCounters,
};
use nfy_core::wire::{Decoded, FrameDecoder, HEADER_LEN};

use super::addr::ServerAddr;
use super::conn::output::encode_into;
use super::conn::socket::Socket;
use super::conn::MAX_BODY;
use super::Error;

/// What `nfy status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerReport {
    /// The broker's counters.
    pub status: Status,
    /// Every open connection, this one included.
    pub connections: Vec<ConnectionReport>,
    /// Every registration, with the connection holding it.
    pub registrations: Vec<RegistrationReport>,
    /// The connections that came over TLS.
    pub tls: Vec<TlsConnection>,
    /// The TLS listener's counters; `None` from a server without TLS (or
    /// one older than TLS).
    pub tls_counters: Option<TlsCounters>,
    /// The protection counters.
    pub protection: ProtectionCounters,
}

/// A connection that came over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConnection {
    /// The connection: a [`ConnectionReport::id`].
    pub conn: u32,
    /// The subject of the certificate its peer presented, if any.
    pub subject: Option<String>,
}

impl ServerReport {
    /// The registrations of connection `id`, by notification ID, then
    /// receiver.
    pub fn registrations_of(&self, id: u32) -> Vec<&RegistrationReport> {
        let mut regs: Vec<&RegistrationReport> =
            self.registrations.iter().filter(|r| r.conn == id).collect();
        regs.sort_by(|a, b| {
            (a.notification.as_str(), a.to.as_str()).cmp(&(b.notification.as_str(), b.to.as_str()))
        });
        regs
    }

    /// Connection `id`'s TLS details: `None` when it is not a TLS
    /// connection.
    pub fn tls_of(&self, id: u32) -> Option<&TlsConnection> {
        self.tls.iter().find(|t| t.conn == id)
    }
}

/// Asks the server at `addr` for its report; waits at most `timeout` for
/// the whole answer. [`Error::Server`] when it cannot be reached or closes
/// the connection ([`Error::Permission`] when the socket refuses this
/// process), [`Error::Timeout`] when the answer is not complete in
/// time (an older server that does not know `ConnectionsRequest` ignores
/// it).
pub fn server_report(addr: &ServerAddr, timeout: Duration) -> Result<ServerReport, Error> {
    let mut stream = Socket::connect(addr)?;
    let mut request = Vec::new();
    encode_into(
        &Message::Hello(Hello {
            version: msg::compact::VERSION,
            app_id: None,
            acks: false,
        }),
        &mut request,
    )?;
    encode_into(&Message::StatusRequest, &mut request)?;
    encode_into(&Message::ConnectionsRequest, &mut request)?;
    match stream.write_until(&request, Some(Instant::now() + timeout)) {
        Ok(n) if n == request.len() => {}
        Ok(_) => return Err(Error::Timeout),
        Err(_) => return Err(Error::Server),
    }

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
        let broken = |stream: &Socket| stream.tls_error().map_or(Error::Server, Error::Tls);
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(broken(&stream)),
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
            Err(_) => return Err(broken(&stream)),
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
                Ok(Message::Registration(r)) => report.registrations.push(r),
                Ok(Message::TlsPeer(t)) => report.tls.push(TlsConnection {
                    conn: t.conn,
                    subject: t.subject.map(str::to_owned),
                }),
                Ok(Message::TlsCounters(c)) => report.tls_counters = Some(c),
                Ok(Message::ConnectionsEnd(g)) => {
                    report.protection = g;
                    if got_status {
                        return Ok(report);
                    }
                }
                _ => {}
            }
        }
    }
}
