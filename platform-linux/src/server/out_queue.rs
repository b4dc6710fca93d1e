//! One connection's output queue: a contiguous byte buffer of whole
//! frames, written with one `send` per poll iteration.
//!
//! The broker's messages are encoded straight into the free tail (no
//! allocation per message) and everything queued during an iteration
//! leaves in one `send` (write batching). The buffer grows on demand
//! (zero-filled once, then reused), is bounded by `--max-queue`, and
//! shrinks back after a burst. Frame boundaries are read through the
//! core's checked [`FrameView`], so the frame being sent is always known:
//! what a connection being closed has not received goes back to the broker
//! whole ([`OutQueue::take_unsent`]).
//!
//! Writes use `send(MSG_NOSIGNAL)`, so a peer that went away yields `EPIPE`
//! instead of killing the process with `SIGPIPE` (important when the server
//! runs inside an application that did not ignore `SIGPIPE`).

use std::io;
use std::os::fd::RawFd;

use nfy_core::wire::FrameView;

/// First size of a connection's output buffer.
pub const INITIAL_OUT_CAPACITY: usize = 16 * 1024;

/// A drained buffer larger than this is shrunk back to
/// [`INITIAL_OUT_CAPACITY`], so a past burst does not pin memory.
pub const RETAINED_OUT_CAPACITY: usize = 256 * 1024;

/// Free space made before encoding, so the common message encodes on the
/// first try.
pub const ENCODE_RESERVE: usize = 4 * 1024;

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue limit does not leave room for it.
    Full,
    /// The message has no form in the requested encoding.
    Unsupported,
}

/// What a frame writer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFail {
    /// More space than it was given.
    NeedSpace,
    /// It cannot write this message at all.
    Unsupported,
}

/// What one [`OutQueue::send_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Bytes the socket took.
    pub bytes: usize,
    /// Whether the queue is empty now.
    pub drained: bool,
}

/// One connection's unsent bytes: `buf[start..end]`.
///
/// `frame` is the start of the frame that `start` falls in, so
/// `buf[frame..end]` is always a run of whole frames: what a connection
/// being closed has not received ([`OutQueue::take_unsent`]).
#[derive(Debug, Default)]
pub struct OutQueue {
    buf: Vec<u8>,
    frame: usize,
    start: usize,
    end: usize,
}

impl OutQueue {
    /// Bytes waiting to be sent.
    pub fn pending(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// Number of bytes waiting.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Current buffer size (what the queue costs in memory).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Appends one frame: `write` gets the free tail and returns how many
    /// bytes it wrote, or asks for more space. The queue never holds more
    /// than `limit` bytes; a frame that does not fit is not queued at all.
    /// Returns the frame's length.
    pub fn push(
        &mut self,
        limit: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, WriteFail>,
    ) -> Result<usize, PushError> {
        if self.buf.len() - self.end < ENCODE_RESERVE {
            // Best effort; the loop below grows further when needed.
            self.make_room(ENCODE_RESERVE, limit);
        }
        loop {
            let free = self.buf.get_mut(self.end..).unwrap_or(&mut []);
            let capacity = free.len();
            match write(free) {
                Ok(n) => {
                    let n = n.min(capacity);
                    self.end += n;
                    return Ok(n);
                }
                Err(WriteFail::Unsupported) => return Err(PushError::Unsupported),
                Err(WriteFail::NeedSpace) => {
                    let want = capacity.saturating_mul(2).max(INITIAL_OUT_CAPACITY);
                    if !self.make_room(want, limit) {
                        return Err(PushError::Full);
                    }
                }
            }
        }
    }

    /// Appends a whole frame as it is, within `limit`.
    pub fn push_bytes(&mut self, limit: usize, frame: &[u8]) -> Result<usize, PushError> {
        self.push(limit, |space| match space.get_mut(..frame.len()) {
            Some(dst) => {
                dst.copy_from_slice(frame);
                Ok(frame.len())
            }
            None => Err(WriteFail::NeedSpace),
        })
    }

    /// Tries to have `want` free bytes after `end` without the buffer
    /// exceeding `limit`; true when the free space grew.
    fn make_room(&mut self, want: usize, limit: usize) -> bool {
        let before = self.buf.len() - self.end;
        if self.frame > 0 {
            self.buf.copy_within(self.frame..self.end, 0);
            self.end -= self.frame;
            self.start -= self.frame;
            self.frame = 0;
        }
        if self.buf.len() - self.end < want {
            let target = (self.end + want)
                .max(self.buf.len().saturating_mul(2))
                .max(INITIAL_OUT_CAPACITY)
                .min(limit);
            if target > self.buf.len() {
                self.buf.resize(target, 0);
            }
        }
        self.buf.len() - self.end > before
    }

    /// Marks `n` bytes as sent.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        while let Some(view) = self
            .buf
            .get(self.frame..self.end)
            .and_then(|run| FrameView::new_checked(run).ok())
        {
            if self.frame + view.total_len() > self.start {
                break;
            }
            self.frame += view.total_len();
        }
        if self.start == self.end {
            self.frame = 0;
            self.start = 0;
            self.end = 0;
            if self.buf.len() > RETAINED_OUT_CAPACITY {
                self.buf.truncate(INITIAL_OUT_CAPACITY);
                self.buf.shrink_to_fit();
            }
        }
    }

    /// Takes the frames not (completely) sent, the one being sent
    /// included, and empties the queue.
    pub fn take_unsent(&mut self) -> Vec<u8> {
        let unsent = self.buf.get(self.frame..self.end).unwrap_or(&[]).to_vec();
        self.clear();
        unsent
    }

    /// Drops everything and releases the memory.
    pub fn clear(&mut self) {
        *self = OutQueue::default();
    }

    /// Sends the pending bytes with one `send(MSG_NOSIGNAL)`.
    pub fn send_to(&mut self, fd: RawFd) -> io::Result<Sent> {
        use nix::sys::socket::{send, MsgFlags};
        loop {
            if self.is_empty() {
                return Ok(Sent {
                    bytes: 0,
                    drained: true,
                });
            }
            match send(fd, self.pending(), MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => {
                    self.consume(n);
                    return Ok(Sent {
                        bytes: n,
                        drained: self.is_empty(),
                    });
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => {
                    return Ok(Sent {
                        bytes: 0,
                        drained: false,
                    })
                }
                Err(e) => return Err(io::Error::from(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfy_core::wire;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    /// A writer producing `n` bytes of `fill`.
    fn bytes(n: usize, fill: u8) -> impl FnMut(&mut [u8]) -> Result<usize, WriteFail> {
        move |space: &mut [u8]| match space.get_mut(..n) {
            Some(dst) => {
                dst.fill(fill);
                Ok(n)
            }
            None => Err(WriteFail::NeedSpace),
        }
    }

    #[test]
    fn frames_append_and_drain() {
        let mut q = OutQueue::default();
        q.push(1 << 20, bytes(10, 1)).unwrap();
        q.push(1 << 20, bytes(5, 2)).unwrap();
        assert_eq!(q.pending(), &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
        q.consume(12);
        assert_eq!(q.pending(), &[2, 2, 2]);
        q.consume(3);
        assert!(q.is_empty());
    }

    #[test]
    fn grows_for_large_frames_up_to_the_limit() {
        let limit = 200_000;
        let mut q = OutQueue::default();
        q.push(limit, bytes(100_000, 7)).unwrap();
        assert_eq!(q.len(), 100_000);
        assert!(q.capacity() <= limit);
        // 100,001 more would exceed the limit: refused, nothing queued.
        assert_eq!(q.push(limit, bytes(100_001, 8)), Err(PushError::Full));
        assert_eq!(q.len(), 100_000);
        q.push(limit, bytes(100_000, 9)).unwrap();
        assert_eq!(q.len(), 200_000);
        assert_eq!(q.push(limit, bytes(1, 1)), Err(PushError::Full));
    }

    /// A writer producing one real frame of `n` bytes in all, body `fill`.
    fn frame(n: usize, fill: u8) -> impl FnMut(&mut [u8]) -> Result<usize, WriteFail> {
        move |space: &mut [u8]| {
            wire::encode_frame(space, 1, |body| {
                match body.get_mut(..n - wire::HEADER_LEN) {
                    Some(dst) => {
                        dst.fill(fill);
                        Ok(dst.len())
                    }
                    None => Err(()),
                }
            })
            .map_err(|_| WriteFail::NeedSpace)
        }
    }

    #[test]
    fn sent_frames_are_reclaimed_by_compaction_the_current_one_is_kept() {
        let limit = 32 * 1024;
        let mut q = OutQueue::default();
        q.push(limit, frame(15 * 1024, 1)).unwrap();
        q.push(limit, frame(15 * 1024, 2)).unwrap();
        // The first frame and 1 KiB of the second left.
        q.consume(16 * 1024);
        assert_eq!(q.len(), 14 * 1024);
        // Compaction keeps the second frame whole (15 KiB): 16 KiB fit.
        q.push(limit, frame(16 * 1024, 3)).unwrap();
        assert_eq!(q.len(), 30 * 1024);
        assert_eq!(q.pending().last(), Some(&3));
        assert!(q.capacity() <= limit);
        // What is unsent: the partly sent second frame, whole, and the third.
        let unsent = q.take_unsent();
        let frames: Vec<_> = wire::frames(&unsent).collect();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].body().len(), 15 * 1024 - wire::HEADER_LEN);
        assert!(frames[0].body().iter().all(|&b| b == 2));
        assert!(frames[1].body().iter().all(|&b| b == 3));
        assert!(q.is_empty());
    }

    #[test]
    fn drained_large_buffer_shrinks() {
        let mut q = OutQueue::default();
        q.push(4 << 20, bytes(1 << 20, 1)).unwrap();
        assert!(q.capacity() >= 1 << 20);
        q.consume(1 << 20);
        assert_eq!(q.capacity(), INITIAL_OUT_CAPACITY);
    }

    #[test]
    fn unsupported_is_reported() {
        let mut q = OutQueue::default();
        let r = q.push(1 << 20, |_: &mut [u8]| Err(WriteFail::Unsupported));
        assert_eq!(r, Err(PushError::Unsupported));
        assert!(q.is_empty());
    }

    #[test]
    fn send_handles_partial_writes_and_would_block() {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut q = OutQueue::default();
        // Far more than a socket buffer holds.
        let total = 8 << 20;
        q.push(16 << 20, bytes(total, 3)).unwrap();
        let first = q.send_to(a.as_raw_fd()).unwrap();
        assert!(!first.drained, "one send cannot take 8 MiB");
        assert!(first.bytes > 0 && q.len() == total - first.bytes);
        let mut buf = vec![0u8; 1 << 16];
        let mut read_total = 0;
        while read_total < total {
            if !q.is_empty() {
                let _ = q.send_to(a.as_raw_fd()).unwrap();
            }
            // Whatever is not queued is in the socket: this read cannot hang.
            let n = b.read(&mut buf).unwrap();
            assert!(n > 0);
            assert!(buf[..n].iter().all(|&x| x == 3));
            read_total += n;
        }
        assert!(q.is_empty());
    }

    /// Runs in a child process with the default SIGPIPE disposition (as in
    /// a host application that never ignored it): a send to a closed peer
    /// must return EPIPE, not kill the process.
    #[test]
    #[allow(unsafe_code)]
    fn send_never_raises_sigpipe() {
        const CHILD: &str = "NFY_TEST_SIGPIPE_CHILD";
        const NAME: &str = "server::out_queue::tests::send_never_raises_sigpipe";
        if std::env::var_os(CHILD).is_some() {
            use nix::sys::signal::{signal, SigHandler, Signal};
            // SAFETY: restores the default action; no handler code runs.
            unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.unwrap();
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            drop(b);
            let mut q = OutQueue::default();
            q.push(1 << 20, bytes(10, 1)).unwrap();
            let err = q.send_to(a.as_raw_fd()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child: {:?}\n{stdout}", out.status);
        assert!(
            stdout.contains("1 passed"),
            "the child did not run the test:\n{stdout}"
        );
    }

    #[test]
    fn send_to_closed_peer_is_an_error_not_a_signal() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(b);
        let mut q = OutQueue::default();
        q.push(1 << 20, bytes(10, 1)).unwrap();
        let err = q.send_to(a.as_raw_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
