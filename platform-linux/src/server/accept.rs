//! Accepting connections: every pending one, each admitted or refused by
//! the broker ([`Broker::connect`](nfy_core::broker::Broker::connect): a
//! local-only profile or a whitelist without rules refuses remote peers,
//! `--max-remote` and the connection limit refuse the one too many),
//! classified as local or remote ([`listen::classify`]), and registered
//! with the poller in slot
//! [`ConnId::index`](nfy_core::broker::ConnId::index). A remote peer that
//! reached an address where the configuration, reloaded, no longer lets
//! remote peers in (see `reload`) is refused before the broker is asked.
//!
//! A refused connection is closed at once with a warning; warnings are
//! rate-limited (at most one per second, [`RefusalLog`]) and every refusal
//! is counted by the broker (`refused`, `remote_refused`). When the
//! process has no descriptor left, a spare one held in reserve is given up
//! for a moment to accept the waiting connection and close it, so the
//! client sees a refusal instead of hanging in the backlog. A Unix-socket
//! peer's credentials (`SO_PEERCRED`: pid, uid, gid) are read at accept,
//! kept for `nfy status` and written in the connection's log lines.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::Interest;
use nfy_core::broker::{ConnectRefused, PeerKind};

use super::conn::{peer_credentials, Conn, Peer, Socket};
use super::event_loop::EventLoop;
use super::listen;
use super::poll::conn_token;

/// Pause before accepting again after running out of file descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// At most one refusal warning of a kind per this interval; the others
/// are counted and summarised in the next one.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// A descriptor to hold in reserve (see `EventLoop::refuse_without_fds`);
/// `None` when even `/dev/null` cannot be opened (the server then only
/// retries accepting later, as it does for other shortages).
pub(super) fn spare_fd() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Rate-limited warnings about refused connections: a flood of
/// connections must not flood the log.
#[derive(Debug, Default)]
pub(super) struct RefusalLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl RefusalLog {
    /// The number of refusals not logged since the last warning, when one
    /// may be written at `now`; `None` (and one more unlogged) otherwise.
    pub(super) fn due(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_INTERVAL)
        {
            self.unlogged += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// " (N more refused since the last warning)", or nothing.
pub(super) fn more(earlier: u64) -> String {
    if earlier > 0 {
        format!(" ({earlier} more refused since the last warning)")
    } else {
        String::new()
    }
}

impl EventLoop {
    pub(super) fn accept_unix(&mut self) {
        loop {
            match self.unix.accept() {
                Ok((stream, _)) => {
                    let peer = Peer::Unix(peer_credentials(&stream));
                    self.admit(Socket::Unix(stream), peer, None);
                }
                Err(e) => {
                    if self.refuse_without_fds(&e, |l| {
                        l.unix
                            .accept()
                            .map(|(stream, _)| Peer::Unix(peer_credentials(&stream)))
                    }) {
                        continue;
                    }
                    if !self.accept_failed(&e, "unix socket") {
                        return;
                    }
                }
            }
        }
    }

    pub(super) fn accept_tcp(&mut self, i: usize) {
        loop {
            let Some(entry) = self.tcp.get(i) else { return };
            match entry.listener.accept() {
                Ok((stream, addr)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        ::log::debug!("cannot set TCP_NODELAY for {addr}: {e}");
                    }
                    self.admit(Socket::Tcp(stream), Peer::Tcp(addr), Some(addr));
                }
                Err(e) => {
                    let what = format!("tcp {}", entry.addr);
                    let refuse = |l: &Self| match l.tcp.get(i) {
                        Some(entry) => entry.listener.accept().map(|(_, addr)| Peer::Tcp(addr)),
                        None => Err(io::ErrorKind::NotFound.into()),
                    };
                    if self.refuse_without_fds(&e, refuse) {
                        continue;
                    }
                    if !self.accept_failed(&e, &what) {
                        return;
                    }
                }
            }
        }
    }

    /// Out of descriptors (`EMFILE`/`ENFILE`, e.g. a soft `ulimit -n` of
    /// 1024, below [`super::MAX_CONNECTIONS`] plus the server's own): gives
    /// up the spare descriptor for a moment to accept the waiting
    /// connection with `accept` and close it at once. The client sees a
    /// refusal, as at the connection limit, instead of hanging unserved in
    /// the backlog; the warning is rate-limited the same way. True when a
    /// connection was refused (accepting goes on); false for other errors,
    /// or without a spare (then [`Self::accept_failed`] retries later).
    fn refuse_without_fds(
        &mut self,
        e: &io::Error,
        accept: impl FnOnce(&Self) -> io::Result<Peer>,
    ) -> bool {
        use nix::errno::Errno;
        let out_of_fds = [Errno::EMFILE, Errno::ENFILE]
            .iter()
            .any(|errno| e.raw_os_error() == Some(*errno as i32));
        if !out_of_fds || self.spare_fd.take().is_none() {
            return false;
        }
        // The accepted socket is closed when the result is dropped.
        let refused = accept(self);
        self.spare_fd = spare_fd();
        match refused {
            Ok(peer) => {
                let kind = match peer {
                    Peer::Tcp(addr) | Peer::Tls(addr) => listen::classify(Some(addr)),
                    Peer::Unix(_) => PeerKind::Local,
                };
                self.broker.refused(kind);
                self.log_refusal(peer, "out of file descriptors");
                true
            }
            Err(_) => false,
        }
    }

    /// Handles an accept error; true when accepting should go on.
    pub(super) fn accept_failed(&mut self, e: &io::Error, listener: &str) -> bool {
        use nix::errno::Errno;
        match e.kind() {
            io::ErrorKind::WouldBlock => false,
            io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset => true,
            _ => {
                let exhausted = [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM]
                    .iter()
                    .any(|errno| e.raw_os_error() == Some(*errno as i32));
                if exhausted {
                    ::log::warn!(
                        "cannot accept on {listener}: {e}; retrying in {} ms",
                        ACCEPT_RETRY.as_millis()
                    );
                } else {
                    ::log::error!("cannot accept on {listener}: {e}");
                }
                self.accept_retry_at = Some(Instant::now() + ACCEPT_RETRY);
                false
            }
        }
    }

    /// Admits a new connection, or closes it with a warning when the
    /// broker refuses it. Its slot when admitted.
    pub(super) fn admit(
        &mut self,
        mut socket: Socket,
        peer: Peer,
        addr: Option<SocketAddr>,
    ) -> Option<usize> {
        let kind = listen::classify(addr);
        // Without rules the broker refuses remote peers, and says why.
        if kind == PeerKind::Remote && self.broker.whitelist().has_rules() {
            let local = socket.local_addr();
            if !local.is_some_and(|l| self.remote_addrs.allows(l.ip())) {
                self.broker.refused(kind);
                let why = format!(
                    "since a reload the configuration does not let remote peers in on {}",
                    local.map_or_else(|| "this address".to_owned(), |l| l.ip().to_string())
                );
                self.log_remote_refusal(peer, &why);
                return None;
            }
        }
        let id = match self.broker.connect(kind) {
            Ok(id) => id,
            Err(ConnectRefused::LocalOnly) => {
                let why = format!(
                    "the {} profile accepts local connections only",
                    self.profile.name
                );
                self.log_remote_refusal(peer, &why);
                return None;
            }
            Err(ConnectRefused::NoRules) => {
                self.log_remote_refusal(
                    peer,
                    "the configuration has no in/out rules (remote access closed)",
                );
                return None;
            }
            Err(ConnectRefused::RemoteLimit) => {
                self.log_refusal(peer, "remote connection limit reached (--max-remote)");
                return None;
            }
            Err(ConnectRefused::ConnectionLimit) => {
                self.log_refusal(peer, "connection limit reached");
                return None;
            }
        };
        let idx = id.index();
        if self.conns.len() <= idx {
            self.conns.resize_with(idx + 1, || None);
        }
        if self.conns.get(idx).is_some_and(Option::is_some) {
            ::log::error!("{id}: the broker reused a slot still in use; closing {peer}");
            self.broker.disconnect(id, &mut self.out);
            return None;
        }
        if let Err(e) =
            self.poll
                .registry()
                .register(socket.source(), conn_token(idx), Interest::READABLE)
        {
            ::log::warn!("{id}: cannot poll the connection from {peer}: {e}; closing it");
            self.broker.disconnect(id, &mut self.out);
            return None;
        }
        self.out.open(id);
        self.out.set_peer(id, peer.addr());
        let limits = self.broker.limits();
        self.out.set_frame_limit(id, limits.frame_limit(kind));
        let decoder_len = limits.decoder_len(kind);
        if let Some(slot) = self.conns.get_mut(idx) {
            *slot = Some(Conn::new(id, socket, peer, decoder_len));
        }
        self.stats.accepted += 1;
        match kind {
            PeerKind::Local => ::log::debug!("{id}: connected ({peer}, local)"),
            PeerKind::Remote => ::log::info!("{id}: connected ({peer}, remote)"),
        }
        Some(idx)
    }

    /// Warns about a refused remote peer, rate-limited apart from other
    /// refusals (a remote flood must not hide local ones).
    fn log_remote_refusal(&mut self, peer: Peer, why: &str) {
        if let Some(earlier) = self.remote_refusals.due(Instant::now()) {
            ::log::warn!(
                "refusing the remote connection from {peer}: {why}{}",
                more(earlier)
            );
        }
    }

    /// Warns about a refused connection, rate-limited.
    fn log_refusal(&mut self, peer: Peer, why: &str) {
        if let Some(earlier) = self.refusals.due(Instant::now()) {
            ::log::warn!(
                "{why}: closing the new connection from {peer}{}",
                more(earlier)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_warnings_are_one_per_interval_and_count_the_rest() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        assert_eq!(log.due(t0), Some(0));
        assert_eq!(log.due(t0 + Duration::from_millis(10)), None);
        assert_eq!(log.due(t0 + Duration::from_millis(900)), None);
        assert_eq!(log.due(t0 + REFUSAL_LOG_INTERVAL), Some(2));
        assert_eq!(log.due(t0 + 3 * REFUSAL_LOG_INTERVAL), Some(0));
        assert_eq!(more(0), "");
        assert_eq!(more(2), " (2 more refused since the last warning)");
    }
}
