//! SIGTERM, SIGINT and SIGHUP as pipes the poller watches (signal-hook's
//! self-pipe), so a signal is an ordinary readiness event of the loop.
//! SIGTERM and SIGINT stop the server; SIGHUP reloads its configuration
//! (see `reload`). Several signals of a kind before the loop looks are
//! handled once.

use std::io::{self, Read};
use std::os::unix::net::UnixStream as StdUnixStream;

use mio::net::UnixStream;
use mio::{Interest, Poll, Token};

/// What a signal asks of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SignalAction {
    /// Shut down cleanly.
    Stop,
    /// Read the configuration again.
    Reload,
}

/// The signals the server handles, with their names and what they ask.
pub(super) const SIGNALS: [(i32, &str, SignalAction); 3] = [
    (signal_hook::consts::SIGTERM, "SIGTERM", SignalAction::Stop),
    (signal_hook::consts::SIGINT, "SIGINT", SignalAction::Stop),
    (signal_hook::consts::SIGHUP, "SIGHUP", SignalAction::Reload),
];

/// Registered signal pipes: pipe `i` carries `SIGNALS[i]`.
pub(super) struct Signals {
    ids: Vec<signal_hook::SigId>,
    pipes: Vec<UnixStream>,
}

impl Signals {
    /// Installs the pipes, registered with `poll` under tokens
    /// `token_base + i`.
    pub(super) fn install(poll: &Poll, token_base: usize) -> io::Result<Signals> {
        let mut signals = Signals {
            ids: Vec::new(),
            pipes: Vec::new(),
        };
        for (i, (signal, _, _)) in SIGNALS.iter().enumerate() {
            let (rx, tx) = StdUnixStream::pair()?;
            rx.set_nonblocking(true)?;
            let mut rx = UnixStream::from_std(rx);
            poll.registry()
                .register(&mut rx, Token(token_base + i), Interest::READABLE)?;
            signals
                .ids
                .push(signal_hook::low_level::pipe::register(*signal, tx)?);
            signals.pipes.push(rx);
        }
        Ok(signals)
    }

    /// Empties pipe `i`; its signal's name and action when it held one.
    pub(super) fn drain(&mut self, i: usize) -> Option<(&'static str, SignalAction)> {
        let pipe = self.pipes.get_mut(i)?;
        let mut got = false;
        let mut buf = [0u8; 64];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => got = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let (_, name, action) = SIGNALS.get(i)?;
        got.then_some((*name, *action))
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
