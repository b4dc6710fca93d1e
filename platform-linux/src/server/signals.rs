//! SIGTERM and SIGINT as pipes the poller watches (signal-hook's
//! self-pipe), so a signal is an ordinary readiness event of the loop.

use std::io::{self, Read};
use std::os::unix::net::UnixStream as StdUnixStream;

use mio::net::UnixStream;
use mio::{Interest, Poll, Token};

/// The signals that stop the server.
pub(super) const SIGNALS: [(i32, &str); 2] = [
    (signal_hook::consts::SIGTERM, "SIGTERM"),
    (signal_hook::consts::SIGINT, "SIGINT"),
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
        for (i, (signal, _)) in SIGNALS.iter().enumerate() {
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

    /// Empties pipe `i`; its signal's name when it held one.
    pub(super) fn drain(&mut self, i: usize) -> Option<&'static str> {
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
        got.then(|| SIGNALS.get(i).map_or("signal", |(_, n)| *n))
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
