//! TLS handshakes in progress: accepted on a TLS listener, driven by
//! readiness in the event loop (never blocking it), bounded in number and
//! in time, and handed to the broker once complete.
//!
//! - **Bound** (`--tls-max-handshakes`, [`ServerTls::max_handshakes`]): a
//!   connection accepted while that many handshakes are in progress is
//!   closed at once, counted (`over_limit`) and warned about (rate-limited).
//!   The handshakes do not hold broker connections: a peer that opens
//!   connections and never finishes them fills this table, not the
//!   `--max-remote` places of peers that did finish, nor anything of
//!   local clients.
//! - **Timeout** (`--tls-handshake-timeout`): a handshake not complete by
//!   then is cut and counted (`timed_out`); the loop's poll timeout covers
//!   the earliest deadline.
//! - **Failure** (not TLS, no client certificate or one the client CA
//!   does not vouch for, a protocol error, a close): the alert rustls has
//!   for it is written if the socket takes it, the connection closed,
//!   counted (`failed`) and warned about with the reason (rate-limited:
//!   the others of a burst are logged at debug level).
//! - **Complete**: the connection goes to the broker like an accepted
//!   plain one ([`super::accept`]: local or remote by its address, which
//!   may refuse it, for instance at `--max-remote`), with its socket as
//!   [`Socket::Tls`] and the subject of its peer's certificate for logs
//!   and `nfy status`; it is read at once (the peer's first frames may
//!   have come with its last handshake message).
//!
//! Every refusal here is also counted by the broker as a refused
//! connection (`refused`, and `remote_refused` for a remote address), so
//! `nfy status` shows them with the others; the TLS counters
//! ([`TlsCounters`]) say why.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::Interest;
use rustls::{CertificateError, ServerConnection};

use super::accept::RefusalLog;
use super::conn::{Peer, Socket};
use super::event_loop::EventLoop;
use super::listen;
use super::outbox::TlsCount;
use super::poll::handshake_token;
use super::tls::ServerTls;
use super::tls_stream::{peer_subject, TlsStream};
use crate::tls::io::SocketIo;

/// One handshake in progress.
struct Pending {
    tcp: TcpStream,
    tls: ServerConnection,
    addr: SocketAddr,
    deadline: Instant,
    /// WRITABLE is part of its registration.
    writable: bool,
}

/// The handshakes in progress and the failure log (the counters are the
/// [`super::outbox::Outbound`]'s, which reports them).
pub(super) struct Handshakes {
    tls: ServerTls,
    slots: Vec<Option<Pending>>,
    in_progress: usize,
    log: RefusalLog,
}

/// What driving a handshake came to.
enum Step {
    /// It waits for the peer.
    Waiting,
    /// It is complete.
    Complete,
    /// It failed, for this reason.
    Failed(String),
}

/// Why a handshake failed, in words for the log.
fn reason(e: &rustls::Error) -> String {
    match e {
        rustls::Error::NoCertificatesPresented => "no client certificate".into(),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "client certificate not issued by the client CA (unknown issuer)".into()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "client certificate expired".into(),
        rustls::Error::InvalidCertificate(other) => format!("bad client certificate: {other:?}"),
        rustls::Error::InvalidMessage(m) => {
            format!("not a TLS handshake (plain TCP to the TLS port?): {m:?}")
        }
        rustls::Error::AlertReceived(alert) => format!("the peer gave up ({alert:?})"),
        other => other.to_string(),
    }
}

impl Handshakes {
    pub(super) fn new(tls: ServerTls) -> Handshakes {
        Handshakes {
            tls,
            slots: Vec::new(),
            in_progress: 0,
            log: RefusalLog::default(),
        }
    }

    /// The earliest deadline of a handshake in progress.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.slots.iter().flatten().map(|p| p.deadline).min()
    }

    /// A slot for a new handshake, or `None` at the bound.
    fn free_slot(&mut self) -> Option<usize> {
        if self.in_progress >= self.tls.max_handshakes {
            return None;
        }
        match self.slots.iter().position(Option::is_none) {
            Some(i) => Some(i),
            None => {
                self.slots.push(None);
                Some(self.slots.len() - 1)
            }
        }
    }

    /// Takes slot `slot`'s handshake out of the table.
    fn take(&mut self, slot: usize) -> Option<Pending> {
        let pending = self.slots.get_mut(slot)?.take()?;
        self.in_progress -= 1;
        Some(pending)
    }
}

impl Pending {
    /// Writes what rustls has, reads what the socket has, until the
    /// handshake completes, fails or waits for the peer.
    fn drive(&mut self) -> Step {
        let mut io = SocketIo(std::os::fd::AsRawFd::as_raw_fd(&self.tcp));
        loop {
            while self.tls.wants_write() {
                match self.tls.write_tls(&mut io) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Step::Failed(format!("cannot write the handshake: {e}")),
                }
            }
            if !self.tls.is_handshaking() {
                return Step::Complete;
            }
            match self.tls.read_tls(&mut io) {
                Ok(0) => return Step::Failed("closed during the handshake".into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Waiting,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Step::Failed(format!("cannot read the handshake: {e}")),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // The alert rustls has for it, if the socket takes it.
                let _ = self.tls.write_tls(&mut io);
                return Step::Failed(reason(&e));
            }
        }
    }
}

impl EventLoop {
    /// Accepts every pending connection of TLS listener `i` and starts
    /// its handshake, or refuses it at the bound.
    pub(super) fn accept_tls(&mut self, i: usize) {
        loop {
            let Some(entry) = self.tls_listeners.get(i) else {
                return;
            };
            match entry.listener.accept() {
                Ok((stream, addr)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        ::log::debug!("cannot set TCP_NODELAY for {addr}: {e}");
                    }
                    self.start_handshake(stream, addr);
                }
                Err(e) => {
                    let what = format!("tls {}", entry.addr);
                    if !self.accept_failed(&e, &what) {
                        return;
                    }
                }
            }
        }
    }

    fn start_handshake(&mut self, mut tcp: TcpStream, addr: SocketAddr) {
        let Some(hs) = self.handshakes.as_mut() else {
            return;
        };
        let Some(slot) = hs.free_slot() else {
            self.out.count_tls(TlsCount::OverLimit);
            let max = hs.tls.max_handshakes;
            let due = hs.log.due(Instant::now());
            self.broker.refused(listen::classify(Some(addr)));
            if let Some(earlier) = due {
                ::log::warn!(
                    "{max} TLS handshakes in progress (--tls-max-handshakes): closing the new \
                     connection from tls {addr}{}",
                    super::accept::more(earlier)
                );
            }
            return;
        };
        let tls = match ServerConnection::new(std::sync::Arc::clone(&hs.tls.config)) {
            Ok(tls) => tls,
            Err(e) => {
                ::log::error!("cannot start a TLS connection for {addr}: {e}; closing it");
                return;
            }
        };
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut tcp, handshake_token(slot), Interest::READABLE)
        {
            ::log::warn!("cannot poll the TLS connection from {addr}: {e}; closing it");
            return;
        }
        let deadline = Instant::now() + hs.tls.handshake_timeout;
        if let Some(s) = hs.slots.get_mut(slot) {
            *s = Some(Pending {
                tcp,
                tls,
                addr,
                deadline,
                writable: false,
            });
            hs.in_progress += 1;
        }
        ::log::debug!("tls {addr}: handshake started");
    }

    /// Handshake `slot` is ready: drives it; hands it to the broker when
    /// complete, closes it when failed.
    pub(super) fn handshake_ready(&mut self, slot: usize) {
        let Some(hs) = self.handshakes.as_mut() else {
            return;
        };
        let Some(Some(pending)) = hs.slots.get_mut(slot) else {
            return;
        };
        match pending.drive() {
            Step::Waiting => {
                let want = pending.tls.wants_write();
                if want != pending.writable {
                    let interest = if want {
                        Interest::READABLE | Interest::WRITABLE
                    } else {
                        Interest::READABLE
                    };
                    let token = handshake_token(slot);
                    match self
                        .poll
                        .registry()
                        .reregister(&mut pending.tcp, token, interest)
                    {
                        Ok(()) => pending.writable = want,
                        Err(e) => self.handshake_failed(slot, format!("cannot poll it: {e}")),
                    }
                }
            }
            Step::Failed(why) => self.handshake_failed(slot, why),
            Step::Complete => self.handshake_complete(slot),
        }
    }

    /// Closes handshake `slot`, counted as failed.
    fn handshake_failed(&mut self, slot: usize, why: String) {
        let Some(hs) = self.handshakes.as_mut() else {
            return;
        };
        let Some(pending) = hs.take(slot) else {
            return;
        };
        self.out.count_tls(TlsCount::Failed);
        let due = hs.log.due(Instant::now());
        self.broker.refused(listen::classify(Some(pending.addr)));
        match due {
            Some(earlier) => ::log::warn!(
                "TLS handshake with {} failed: {why}; closing it{}",
                pending.addr,
                super::accept::more(earlier)
            ),
            None => ::log::debug!("TLS handshake with {} failed: {why}", pending.addr),
        }
    }

    /// Hands the completed handshake `slot` to the broker.
    fn handshake_complete(&mut self, slot: usize) {
        let Some(hs) = self.handshakes.as_mut() else {
            return;
        };
        let Some(mut pending) = hs.take(slot) else {
            return;
        };
        self.out.count_tls(TlsCount::Accepted);
        // The connection is registered again under its broker slot.
        if let Err(e) = self.poll.registry().deregister(&mut pending.tcp) {
            ::log::warn!(
                "tls {}: cannot move it in the poller: {e}; closing it",
                pending.addr
            );
            return;
        }
        let subject = peer_subject(&pending.tls);
        let addr = pending.addr;
        let stream = TlsStream::new(pending.tcp, pending.tls);
        let pending_output = stream.has_pending_output();
        let Some(idx) = self.admit(Socket::Tls(Box::new(stream)), Peer::Tls(addr), Some(addr))
        else {
            return;
        };
        if let Some(Some(conn)) = self.conns.get(idx) {
            let id = conn.id;
            match &subject {
                Some(s) => ::log::info!("{id}: tls {addr}: client certificate {s}"),
                None => ::log::debug!("{id}: tls {addr}: no client certificate"),
            }
            self.out.set_tls(id, subject);
        }
        if pending_output {
            self.out.mark_output(idx);
        }
        // Its first frames may have come with the handshake's end.
        self.ready_again.push(idx);
    }

    /// Cuts the handshakes past their deadline.
    pub(super) fn expire_handshakes(&mut self, now: Instant) {
        let Some(hs) = self.handshakes.as_mut() else {
            return;
        };
        let late: Vec<usize> = hs
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().filter(|p| p.deadline <= now).map(|_| i))
            .collect();
        if late.is_empty() {
            return;
        }
        let timeout = hs.tls.handshake_timeout;
        let mut first = None;
        for slot in late {
            if let Some(pending) = hs.take(slot) {
                self.out.count_tls(TlsCount::TimedOut);
                self.broker.refused(listen::classify(Some(pending.addr)));
                first.get_or_insert(pending.addr);
            }
        }
        let Some(hs) = self.handshakes.as_mut() else {
            return;
        };
        if let (Some(addr), Some(earlier)) = (first, hs.log.due(now)) {
            ::log::warn!(
                "TLS handshake with {addr} not complete after {} \
                 (--tls-handshake-timeout); closing it{}",
                super::events::seconds(timeout),
                super::accept::more(earlier)
            );
        }
    }
}
