//! The streaming frame decoder.
//!
//! # How it works
//!
//! The decoder is a small state machine fed arbitrary chunks:
//!
//! - *scanning*: looking for [`PREFIX`]. Bytes before the next possible
//!   prefix start are garbage. A possible start is a full prefix, or a
//!   proper beginning of one at the very end of the chunk (`00 4E` may be
//!   completed by the next chunk), which is kept.
//! - *header*: up to [`HEADER_LEN`] bytes of a header that straddles chunks,
//!   held in a 12-byte array inside the decoder.
//! - *body*: a body that straddles chunks, accumulated in the caller's
//!   storage.
//! - *discarding*: counting off the rest of an oversize frame.
//!
//! A frame that lies whole inside the fed chunk while nothing is buffered is
//! returned borrowing the chunk: the common case (a read returning one or
//! more whole frames) copies nothing.
//!
//! # Decisions
//!
//! - The header is held in the decoder, not in the storage, so that even a
//!   storage shorter than a header still resynchronises and decodes
//!   empty-body frames across chunk boundaries. The storage holds bodies
//!   only; the accepted body size stays `storage length - HEADER_LEN` as the
//!   type documents, so a `[u8; HEADER_LEN + N]` sized for whole frames
//!   accepts `N`-byte bodies.
//! - The size field is judged as soon as it is read (8 bytes into the
//!   header): a bad size or an oversize body is reported before the message
//!   id arrives.
//! - The message id is not judged: every id is passed through.

use super::{Decoded, Frame, Skipped, HEADER_LEN, MIN_SIZE, PREFIX, SIZE_END};

/// Where the decoder is between two feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for a prefix, or collecting a header into `head` (`hlen > 0`).
    Scan,
    /// Collecting a body into the storage (`blen` bytes so far).
    Body {
        /// The frame's message id.
        msg_id: u32,
        /// The announced body length, at most the limit.
        body_len: usize,
    },
    /// Counting off the message id and body of an oversize frame.
    Discard {
        /// Bytes still to drop; never 0.
        left: u32,
    },
}

/// A streaming frame decoder over caller-provided storage `B` (a `[u8; N]`,
/// a `&mut [u8]`, or a `Vec<u8>` on std). The storage length is the largest
/// body the decoder accepts plus [`HEADER_LEN`].
///
/// Feed it whatever the transport delivers and loop until the chunk is
/// consumed:
///
/// ```
/// use nfy_core::wire::{Decoded, FrameDecoder};
///
/// let mut dec = FrameDecoder::new([0u8; 64]);
/// let chunk = b"junk\0NFY\x00\x00\x00\x06\x00\x00\x00\x00{}";
/// let mut rest = &chunk[..];
/// let mut bodies = 0;
/// while !rest.is_empty() {
///     let (n, decoded) = dec.feed(rest);
///     rest = &rest[n..];
///     match decoded {
///         Some(Decoded::Frame(frame)) => {
///             assert_eq!(frame.body, b"{}");
///             bodies += 1;
///         }
///         Some(Decoded::Skipped(skipped)) => { /* log it */ let _ = skipped; }
///         None => {}
///     }
/// }
/// assert_eq!(bodies, 1);
/// assert!(dec.is_idle());
/// ```
pub struct FrameDecoder<B> {
    /// Body storage; bodies are kept at its start.
    buf: B,
    /// The largest accepted body: `min(requested, buf.len() - HEADER_LEN)`.
    limit: usize,
    /// State between feeds.
    state: State,
    /// A header (or a beginning of one) that straddles chunks.
    head: [u8; HEADER_LEN],
    /// Valid bytes in `head`; non-zero only in [`State::Scan`].
    hlen: usize,
    /// Body bytes in `buf`; non-zero only in [`State::Body`].
    blen: usize,
    /// Garbage counted but not reported yet.
    garbage: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> FrameDecoder<B> {
    /// A decoder using `buf` as its storage; it accepts bodies up to
    /// `buf.len() - HEADER_LEN` bytes.
    pub fn new(buf: B) -> Self {
        Self::with_limit(buf, usize::MAX)
    }

    /// A decoder using `buf` as its storage that accepts bodies up to
    /// `max_body` bytes, or up to what the storage holds if that is less
    /// (a runtime limit, e.g. from configuration, below the compiled-in
    /// storage size).
    pub fn with_limit(buf: B, max_body: usize) -> Self {
        let limit = buf.as_ref().len().saturating_sub(HEADER_LEN).min(max_body);
        FrameDecoder {
            buf,
            limit,
            state: State::Scan,
            head: [0; HEADER_LEN],
            hlen: 0,
            blen: 0,
            garbage: 0,
        }
    }

    /// The largest body this decoder accepts.
    pub fn max_body(&self) -> usize {
        self.limit
    }

    /// Bytes of an unfinished frame received so far (header and body).
    /// Non-zero at end of stream means the stream ended inside a frame (or
    /// inside a possible prefix such as `00 4E`). Bytes of an oversize frame
    /// being skipped are not held and not counted; see
    /// [`is_idle`](Self::is_idle).
    pub fn buffered(&self) -> usize {
        match self.state {
            State::Body { .. } => HEADER_LEN + self.blen,
            State::Scan => self.hlen,
            State::Discard { .. } => 0,
        }
    }

    /// True if the decoder is between frames: nothing buffered and no
    /// oversize frame being skipped. At end of stream, `false` means the
    /// last frame was truncated.
    pub fn is_idle(&self) -> bool {
        self.state == State::Scan && self.hlen == 0
    }

    /// Forgets any unfinished frame, skip in progress and unreported
    /// garbage; the next byte fed is treated as the start of a new stream.
    pub fn reset(&mut self) {
        self.state = State::Scan;
        self.hlen = 0;
        self.blen = 0;
        self.garbage = 0;
    }

    /// Gives the storage back.
    pub fn into_inner(self) -> B {
        self.buf
    }

    /// Feeds bytes; returns how many were consumed and at most one result.
    /// Call again with the rest until all input is consumed.
    ///
    /// Guarantees, for any input: the consumed count is at most
    /// `input.len()`; a call with non-empty input either consumes at least
    /// one byte or returns a result; a returned [`Frame`] body is at most
    /// [`max_body`](Self::max_body) bytes; after a call that consumed all of
    /// its input no garbage is left unreported. The body borrows `input`
    /// when the frame lay whole inside it and nothing was buffered, and the
    /// decoder's storage otherwise.
    pub fn feed<'d>(&'d mut self, input: &'d [u8]) -> (usize, Option<Decoded<'d>>) {
        let mut pos = 0;
        loop {
            let rest = match input.get(pos..) {
                Some(rest) if !rest.is_empty() => rest,
                _ => return (pos, None),
            };
            match self.state {
                State::Discard { left } => {
                    let n = usize::try_from(left).map_or(rest.len(), |l| l.min(rest.len()));
                    pos += n;
                    // n <= left, so it fits in u32 and does not underflow.
                    let left = left.saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
                    self.state = if left == 0 {
                        State::Scan
                    } else {
                        State::Discard { left }
                    };
                }
                State::Body { msg_id, body_len } => {
                    let n = body_len.saturating_sub(self.blen).min(rest.len());
                    let end = self.blen + n;
                    let stored = match (self.buf.as_mut().get_mut(self.blen..end), rest.get(..n)) {
                        (Some(dst), Some(src)) => {
                            dst.copy_from_slice(src);
                            true
                        }
                        _ => false,
                    };
                    if !stored {
                        // Only reachable if the storage shrank under us (a
                        // custom `B`): skip the frame rather than panic.
                        let left = body_len.saturating_sub(self.blen);
                        self.blen = 0;
                        self.state = match u32::try_from(left) {
                            Ok(0) => State::Scan,
                            Ok(left) => State::Discard { left },
                            Err(_) => State::Scan,
                        };
                        let body_len = u32::try_from(body_len).unwrap_or(u32::MAX);
                        return (pos, Some(Decoded::Skipped(Skipped::Oversize { body_len })));
                    }
                    pos += n;
                    self.blen = end;
                    if end == body_len {
                        self.state = State::Scan;
                        self.blen = 0;
                        let body = self.buf.as_ref().get(..body_len).unwrap_or(&[]);
                        return (pos, Some(Decoded::Frame(Frame { msg_id, body })));
                    }
                }
                State::Scan if self.hlen > 0 => match self.continue_header(rest) {
                    HeaderStep::Return(used, event) => return (pos + used, event),
                    HeaderStep::Continue(used) => pos += used,
                },
                State::Scan => {
                    let Some(at) = find_candidate(rest) else {
                        // No prefix anywhere: the whole rest is garbage.
                        let len = self.take_garbage() + rest.len();
                        return (
                            pos + rest.len(),
                            Some(Decoded::Skipped(Skipped::Garbage { len })),
                        );
                    };
                    if at > 0 || self.garbage > 0 {
                        // Report the garbage before whatever follows it.
                        let len = self.take_garbage() + at;
                        return (pos + at, Some(Decoded::Skipped(Skipped::Garbage { len })));
                    }
                    let (used, event) = self.start_frame(rest);
                    return (pos + used, event);
                }
            }
        }
    }

    /// Garbage counted but not reported yet (tests check it is 0 after
    /// every chunk).
    #[cfg(test)]
    pub(super) fn pending_garbage(&self) -> usize {
        self.garbage
    }

    /// Returns and clears the unreported garbage count.
    fn take_garbage(&mut self) -> usize {
        core::mem::take(&mut self.garbage)
    }

    /// Handles a frame that starts at `rest[0]` (a full prefix, or the
    /// beginning of one that `rest` ends in) while nothing is buffered.
    fn start_frame<'d>(&mut self, rest: &'d [u8]) -> (usize, Option<Decoded<'d>>) {
        let Some(size) = be_u32(rest, PREFIX.len()) else {
            // Not even the size field yet: keep what there is.
            self.keep_head(rest);
            return (rest.len(), None);
        };
        match self.judge_size(size) {
            SizeVerdict::Bad => (
                PREFIX.len(),
                Some(Decoded::Skipped(Skipped::BadSize { size })),
            ),
            SizeVerdict::Oversize { body_len } => (
                self.skip_after_header(size, rest.len()),
                Some(Decoded::Skipped(Skipped::Oversize { body_len })),
            ),
            SizeVerdict::Fits { body_len } => {
                let Some(msg_id) = be_u32(rest, SIZE_END) else {
                    self.keep_head(rest);
                    return (rest.len(), None);
                };
                let end = HEADER_LEN + body_len;
                if let Some(body) = rest.get(HEADER_LEN..end) {
                    // The whole frame is here: hand out the input itself.
                    return (end, Some(Decoded::Frame(Frame { msg_id, body })));
                }
                // Header complete, body incomplete: store what there is.
                let part = rest.get(HEADER_LEN..).unwrap_or(&[]);
                match self.buf.as_mut().get_mut(..part.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(part);
                        self.blen = part.len();
                        self.state = State::Body { msg_id, body_len };
                        (rest.len(), None)
                    }
                    None => (
                        // Unreachable (body_len <= limit <= storage); skip
                        // rather than panic.
                        self.skip_after_header(size, rest.len()),
                        Some(Decoded::Skipped(Skipped::Oversize {
                            body_len: size.saturating_sub(MIN_SIZE),
                        })),
                    ),
                }
            }
        }
    }

    /// Skips a frame whose size field `size` has been read and whose first
    /// `have` bytes (at least [`SIZE_END`]) are at hand: consumes what is
    /// there and counts off the rest in [`State::Discard`]. Returns how many
    /// bytes were consumed.
    fn skip_after_header(&mut self, size: u32, have: usize) -> usize {
        let after = have.saturating_sub(SIZE_END);
        let take = usize::try_from(size).map_or(after, |s| s.min(after));
        let left = size.saturating_sub(u32::try_from(take).unwrap_or(u32::MAX));
        if left > 0 {
            self.state = State::Discard { left };
        }
        SIZE_END + take
    }

    /// Copies the start of a header (shorter than [`HEADER_LEN`]) into
    /// `head`.
    fn keep_head(&mut self, part: &[u8]) {
        let n = part.len().min(HEADER_LEN);
        if let (Some(dst), Some(src)) = (self.head.get_mut(..n), part.get(..n)) {
            dst.copy_from_slice(src);
            self.hlen = n;
        }
    }

    /// Classifies a size field against the limit.
    fn judge_size(&self, size: u32) -> SizeVerdict {
        let Some(body_len) = size.checked_sub(MIN_SIZE) else {
            return SizeVerdict::Bad;
        };
        match usize::try_from(body_len) {
            Ok(len) if len <= self.limit => SizeVerdict::Fits { body_len: len },
            _ => SizeVerdict::Oversize { body_len },
        }
    }

    /// Continues a header held in `head` (`hlen > 0`) with bytes from
    /// `rest` (non-empty).
    fn continue_header<'d>(&mut self, rest: &[u8]) -> HeaderStep<'d> {
        if self.garbage > 0 {
            // Garbage left over from a bad size ends where this possible
            // frame starts: report it first.
            let len = self.take_garbage();
            return HeaderStep::Return(0, Some(Decoded::Skipped(Skipped::Garbage { len })));
        }
        let mut used = 0;
        while self.hlen < HEADER_LEN {
            let Some(&byte) = rest.get(used) else {
                // Chunk exhausted inside the header.
                return HeaderStep::Return(used, None);
            };
            if let Some(&want) = PREFIX.get(self.hlen) {
                if byte != want {
                    // Not a prefix after all: its first byte is garbage and
                    // the rest of `head` is looked at again. `byte` is not
                    // consumed; it is scanned again next.
                    self.garbage += 1;
                    self.drop_head(1);
                    if self.hlen == 0 {
                        return HeaderStep::Continue(used);
                    }
                    let len = self.take_garbage();
                    return HeaderStep::Return(
                        used,
                        Some(Decoded::Skipped(Skipped::Garbage { len })),
                    );
                }
            }
            if let Some(slot) = self.head.get_mut(self.hlen) {
                *slot = byte;
            }
            self.hlen += 1;
            used += 1;
            if self.hlen == SIZE_END {
                let size = be_u32(&self.head, PREFIX.len()).unwrap_or(0);
                match self.judge_size(size) {
                    SizeVerdict::Bad => {
                        // Resynchronise right after the prefix. The size
                        // bytes this chunk supplied are handed back (not
                        // consumed) and scanned again as input; the ones an
                        // earlier chunk supplied stay in `head` and are
                        // looked at again here.
                        let give_back = used.min(SIZE_END - PREFIX.len());
                        self.hlen = SIZE_END - give_back;
                        self.drop_head(PREFIX.len());
                        return HeaderStep::Return(
                            used - give_back,
                            Some(Decoded::Skipped(Skipped::BadSize { size })),
                        );
                    }
                    SizeVerdict::Oversize { body_len } => {
                        self.hlen = 0;
                        self.state = State::Discard { left: size };
                        return HeaderStep::Return(
                            used,
                            Some(Decoded::Skipped(Skipped::Oversize { body_len })),
                        );
                    }
                    SizeVerdict::Fits { .. } => {}
                }
            }
        }
        // The header is complete (its size was judged when it arrived).
        self.hlen = 0;
        let size = be_u32(&self.head, PREFIX.len()).unwrap_or(MIN_SIZE);
        let msg_id = be_u32(&self.head, SIZE_END).unwrap_or(0);
        let body_len = usize::try_from(size.saturating_sub(MIN_SIZE)).unwrap_or(usize::MAX);
        if body_len == 0 {
            return HeaderStep::Return(used, Some(Decoded::Frame(Frame { msg_id, body: &[] })));
        }
        self.blen = 0;
        self.state = State::Body { msg_id, body_len };
        HeaderStep::Continue(used)
    }

    /// Drops the first `n` bytes of `head`, then keeps dropping (counting
    /// them as garbage) until `head` is empty or begins like a prefix.
    fn drop_head(&mut self, n: usize) {
        let mut from = n.min(self.hlen);
        while from < self.hlen && !self.head.get(from..self.hlen).is_some_and(is_prefix_start) {
            from += 1;
            self.garbage += 1;
        }
        self.head.copy_within(from..self.hlen, 0);
        self.hlen -= from;
    }
}

/// What [`FrameDecoder::continue_header`] did.
enum HeaderStep<'d> {
    /// Return this from `feed` (bytes used from the chunk, result).
    Return(usize, Option<Decoded<'d>>),
    /// Bytes used from the chunk; carry on with the next state.
    Continue(usize),
}

/// A size field judged against the decoder's limit.
enum SizeVerdict {
    /// Smaller than the message id.
    Bad,
    /// The body fits the limit.
    Fits { body_len: usize },
    /// The body is over the limit.
    Oversize { body_len: u32 },
}

/// Reads a big-endian `u32` at `at`, if the bytes are there.
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(field.try_into().ok()?))
}

/// True if `s` is non-empty and begins like a frame: with the prefix, or
/// with a proper beginning of it that `s` ends in.
fn is_prefix_start(s: &[u8]) -> bool {
    let n = s.len().min(PREFIX.len());
    n > 0 && s.get(..n) == PREFIX.get(..n)
}

/// The first position in `s` where a frame may start: a full prefix, or a
/// proper beginning of one that runs to the end of `s`.
pub(super) fn find_candidate(s: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let at = from + find_byte(s.get(from..)?, PREFIX[0])?;
        if s.get(at..).is_some_and(is_prefix_start) {
            return Some(at);
        }
        from = at + 1;
    }
}

/// The first position of `needle` in `haystack`, eight bytes at a time.
pub(super) fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = LO.wrapping_mul(u64::from(needle));
    let mut words = haystack.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(word);
        let x = u64::from_ne_bytes(bytes) ^ pattern;
        // Standard "has a zero byte" test: non-zero iff some byte of x is 0.
        if x.wrapping_sub(LO) & !x & HI != 0 {
            return word.iter().position(|&b| b == needle).map(|i| base + i);
        }
        base += 8;
    }
    let tail = words.remainder();
    tail.iter().position(|&b| b == needle).map(|i| base + i)
}
