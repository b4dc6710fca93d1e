//! The server's poller: the `mio` poll, the waker that interrupts it and
//! the signal pipes, made before anything else so that a signal arriving
//! during start-up is not lost (nor fatal: with the pipes installed it is
//! seen as soon as the loop runs). The readiness tokens are defined here.

use std::sync::Arc;

use mio::{Poll, Token, Waker};

use super::signals::{Signals, SIGNALS};
use super::ServerError;

/// Token of the [`Waker`] used by [`super::ServerHandle::shutdown`].
pub(super) const WAKER: Token = Token(0);
/// Tokens of the signal pipes: `SIGNAL_BASE + i` for `SIGNALS[i]`.
pub(super) const SIGNAL_BASE: usize = 1;
/// Token of the Unix-socket listener.
pub(super) const UNIX_LISTENER: Token = Token(8);
/// Tokens of the TCP listeners: `TCP_LISTENER_BASE + i`.
pub(super) const TCP_LISTENER_BASE: usize = 16;
/// Tokens of the TLS listeners: `TLS_LISTENER_BASE + i`.
pub(super) const TLS_LISTENER_BASE: usize = 1 << 15;
/// Tokens of connections: `CONN_TOKEN_BASE + ConnId::index()`.
pub(super) const CONN_TOKEN_BASE: usize = 1 << 16;
/// Tokens of TLS handshakes in progress: `HANDSHAKE_TOKEN_BASE + slot`
/// (above every connection token: a `ConnId` index is 16 bits).
pub(super) const HANDSHAKE_TOKEN_BASE: usize = 1 << 20;

// The signal tokens stay below the listeners'.
const _: () = assert!(SIGNAL_BASE + SIGNALS.len() <= UNIX_LISTENER.0);

/// What a readiness token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The waker: a shutdown may have been asked for.
    Waker,
    /// Signal pipe `i`.
    Signal(usize),
    /// The Unix-socket listener.
    UnixListener,
    /// TCP listener `i`.
    TcpListener(usize),
    /// TLS listener `i`.
    TlsListener(usize),
    /// TLS handshake `i` in progress.
    Handshake(usize),
    /// The connection in slot `i`.
    Conn(usize),
    /// Nothing known.
    Unknown,
}

impl Source {
    /// The source of a token.
    pub(super) fn of(token: Token) -> Source {
        match token.0 {
            0 => Source::Waker,
            t if (SIGNAL_BASE..SIGNAL_BASE + SIGNALS.len()).contains(&t) => {
                Source::Signal(t - SIGNAL_BASE)
            }
            t if t == UNIX_LISTENER.0 => Source::UnixListener,
            t if (TCP_LISTENER_BASE..TLS_LISTENER_BASE).contains(&t) => {
                Source::TcpListener(t - TCP_LISTENER_BASE)
            }
            t if (TLS_LISTENER_BASE..CONN_TOKEN_BASE).contains(&t) => {
                Source::TlsListener(t - TLS_LISTENER_BASE)
            }
            t if (CONN_TOKEN_BASE..HANDSHAKE_TOKEN_BASE).contains(&t) => {
                Source::Conn(t - CONN_TOKEN_BASE)
            }
            t if t >= HANDSHAKE_TOKEN_BASE => Source::Handshake(t - HANDSHAKE_TOKEN_BASE),
            _ => Source::Unknown,
        }
    }
}

/// The token of the connection in slot `idx`.
pub(super) fn conn_token(idx: usize) -> Token {
    Token(CONN_TOKEN_BASE + idx)
}

/// The token of the TLS handshake in slot `slot`.
pub(super) fn handshake_token(slot: usize) -> Token {
    Token(HANDSHAKE_TOKEN_BASE + slot)
}

/// The poll, its waker and (when the server handles signals) the signal
/// pipes. The client library has a poller of its own (`client::poller`);
/// this one is the server's.
pub(super) struct ServerPoll {
    pub(super) poll: Poll,
    pub(super) waker: Arc<Waker>,
    pub(super) signals: Option<Signals>,
}

fn io_err(context: &str) -> impl FnOnce(std::io::Error) -> ServerError {
    let context = context.to_owned();
    move |source| ServerError::Io { context, source }
}

impl ServerPoll {
    /// Creates the poll and, when `handle_signals`, installs the
    /// SIGTERM/SIGINT pipes.
    pub(super) fn new(handle_signals: bool) -> Result<ServerPoll, ServerError> {
        let poll = Poll::new().map_err(io_err("cannot create the poller"))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER).map_err(io_err("cannot create the waker"))?,
        );
        let signals = if handle_signals {
            Some(
                Signals::install(&poll, SIGNAL_BASE)
                    .map_err(io_err("cannot install signal handlers"))?,
            )
        } else {
            None
        };
        Ok(ServerPoll {
            poll,
            waker,
            signals,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_sources() {
        assert_eq!(Source::of(WAKER), Source::Waker);
        assert_eq!(Source::of(Token(SIGNAL_BASE + 1)), Source::Signal(1));
        assert_eq!(Source::of(UNIX_LISTENER), Source::UnixListener);
        assert_eq!(
            Source::of(Token(TCP_LISTENER_BASE + 3)),
            Source::TcpListener(3)
        );
        assert_eq!(Source::of(conn_token(7)), Source::Conn(7));
        assert_eq!(Source::of(conn_token(65535)), Source::Conn(65535));
        assert_eq!(
            Source::of(Token(TLS_LISTENER_BASE + 2)),
            Source::TlsListener(2)
        );
        assert_eq!(Source::of(handshake_token(3)), Source::Handshake(3));
        assert_eq!(Source::of(Token(5)), Source::Unknown);
    }
}
