//! Where a client's pool workers wait: one epoll instance they all share
//! (`ReadyPoll`; the server's event loop has its own, unrelated poller).
//!
//! Idle workers wait in `epoll_wait` on the same instance, which holds
//!
//! - the connection's socket, armed one-shot (`EPOLLONESHOT`): when data
//!   arrives, the kernel wakes exactly one waiting worker, which reads and
//!   dispatches it and then runs the first ready callback itself (one
//!   wake-up per notification, as a plain blocking reader would have;
//!   docs/performance.md, R2). Whoever read re-arms it
//!   (`ReadyPoll::rearm`) once it stopped reading;
//! - a counting `eventfd` (semaphore mode, also one-shot) the pool writes
//!   to wake one more worker when more subscribers are ready than workers
//!   are on their way to them (`ReadyPoll::kick`);
//! - a second `eventfd`, level-triggered and never drained, written once
//!   when the client closes: it wakes every worker for good
//!   (`ReadyPoll::stop`).
//!
//! Threads waiting on one epoll instance are woken one at a time
//! (exclusive wake-ups), so data wakes one worker, not all of them.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

/// Event data of the connection's socket.
const SOCKET: u64 = 1;
/// Event data of the kick eventfd.
const KICK: u64 = 2;
/// Event data of the stop eventfd.
const STOP: u64 = 3;

/// Why [`ReadyPoll::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// The socket is readable (or closed): this thread should read it.
    Readable,
    /// This thread took one kick: a subscriber is ready.
    Kicked,
    /// The timeout passed.
    TimedOut,
    /// The client is closing.
    Stopped,
    /// Nothing to do (an interrupted wait, or a kick another thread took).
    Spurious,
}

/// The epoll instance and the two eventfds of one client.
#[derive(Debug)]
pub(crate) struct ReadyPoll {
    epoll: Epoll,
    kick: EventFd,
    stop: EventFd,
}

fn sys(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Readable, one-shot.
fn one_shot(data: u64) -> EpollEvent {
    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, data)
}

impl ReadyPoll {
    /// A new epoll instance with both eventfds registered.
    pub(crate) fn new() -> io::Result<ReadyPoll> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(sys)?;
        let flags = EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK;
        let kick = EventFd::from_flags(flags | EfdFlags::EFD_SEMAPHORE).map_err(sys)?;
        let stop = EventFd::from_flags(flags).map_err(sys)?;
        epoll.add(kick.as_fd(), one_shot(KICK)).map_err(sys)?;
        epoll
            .add(stop.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, STOP))
            .map_err(sys)?;
        Ok(ReadyPoll { epoll, kick, stop })
    }

    /// Starts watching a new connection's socket (armed).
    pub(crate) fn watch(&self, socket: impl AsFd) -> io::Result<()> {
        self.epoll.add(socket, one_shot(SOCKET)).map_err(sys)
    }

    /// Arms the socket again after a thread read it. Harmless on a socket
    /// already armed or no longer watched.
    pub(crate) fn rearm(&self, socket: impl AsFd) {
        let _ = self.epoll.modify(socket, &mut one_shot(SOCKET));
    }

    /// Stops watching a socket. Needed before dropping the reading half:
    /// epoll forgets a socket only when every descriptor of it is closed,
    /// and the writer holds another one.
    pub(crate) fn unwatch(&self, socket: impl AsFd) {
        let _ = self.epoll.delete(socket);
    }

    /// Wakes one waiting thread (or the next one to wait) with a kick.
    pub(crate) fn kick(&self) {
        let _ = self.kick.write(1);
    }

    /// Wakes every waiting thread, now and forever after.
    pub(crate) fn stop(&self) {
        let _ = self.stop.write(1);
    }

    /// Waits for one event, at most `timeout` (`None`: no limit).
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Woken {
        let timeout = match timeout {
            None => EpollTimeout::NONE,
            Some(d) => EpollTimeout::try_from(d).unwrap_or(EpollTimeout::MAX),
        };
        let mut events = [EpollEvent::empty()];
        match self.epoll.wait(&mut events, timeout) {
            Ok(0) => Woken::TimedOut,
            Ok(_) => match events[0].data() {
                SOCKET => Woken::Readable,
                KICK => {
                    let took = self.kick.read().is_ok();
                    // Armed again: the kicks left (if any) wake the next
                    // thread.
                    let _ = self.epoll.modify(self.kick.as_fd(), &mut one_shot(KICK));
                    if took {
                        Woken::Kicked
                    } else {
                        Woken::Spurious
                    }
                }
                STOP => Woken::Stopped,
                _ => Woken::Spurious,
            },
            Err(_) => Woken::Spurious,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::thread;

    const SHORT: Option<Duration> = Some(Duration::from_millis(20));

    #[test]
    fn a_watched_socket_wakes_once_until_rearmed() {
        let p = ReadyPoll::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        p.watch(&a).unwrap();
        assert_eq!(p.wait(SHORT), Woken::TimedOut);
        b.write_all(b"x").unwrap();
        assert_eq!(p.wait(SHORT), Woken::Readable);
        // One-shot: still readable, but not reported again...
        assert_eq!(p.wait(SHORT), Woken::TimedOut);
        // ...until re-armed.
        p.rearm(&a);
        assert_eq!(p.wait(SHORT), Woken::Readable);
        p.unwatch(&a);
        p.rearm(&a);
        assert_eq!(p.wait(SHORT), Woken::TimedOut);
    }

    #[test]
    fn each_kick_wakes_one_wait() {
        let p = ReadyPoll::new().unwrap();
        p.kick();
        p.kick();
        assert_eq!(p.wait(SHORT), Woken::Kicked);
        assert_eq!(p.wait(SHORT), Woken::Kicked);
        assert_eq!(p.wait(SHORT), Woken::TimedOut);
    }

    #[test]
    fn kicks_reach_threads_already_waiting() {
        let p = Arc::new(ReadyPoll::new().unwrap());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let p = Arc::clone(&p);
                thread::spawn(move || p.wait(Some(Duration::from_secs(10))))
            })
            .collect();
        thread::sleep(Duration::from_millis(20));
        for _ in 0..3 {
            p.kick();
        }
        for w in waiters {
            assert_eq!(w.join().unwrap(), Woken::Kicked);
        }
    }

    #[test]
    fn stop_wakes_everyone_for_good() {
        let p = ReadyPoll::new().unwrap();
        p.stop();
        assert_eq!(p.wait(None), Woken::Stopped);
        assert_eq!(p.wait(None), Woken::Stopped);
    }
}
