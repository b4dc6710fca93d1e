//! A checked view of one whole frame held in a byte buffer.
//!
//! The decoder finds frames in a stream; this view reads frames that are
//! already whole and contiguous (an adapter's output queue, a kept copy of
//! a unicast). It follows smoltcp's `new_checked` pattern: the prefix, the
//! size field and the buffer length are checked once, when the view is
//! made, and the accessors then read the header without checking again
//! (and without panicking: every accessor has a fallback that the check
//! makes unreachable). An adapter never reads header bytes by hand.

use core::fmt;

use super::{Frame, HEADER_LEN, MIN_SIZE, PREFIX, SIZE_END};

/// Why bytes are not a whole frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewError {
    /// Shorter than the header, or than the length its size field gives.
    Truncated,
    /// The first four bytes are not [`PREFIX`].
    BadPrefix,
    /// The size field is below 4 (no room for the message id).
    BadSize,
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ViewError::Truncated => "the bytes end inside the frame",
            ViewError::BadPrefix => "the bytes do not start with a frame prefix",
            ViewError::BadSize => "the frame's size field is below 4",
        })
    }
}

impl core::error::Error for ViewError {}

/// One whole frame at the start of `buffer` (which may hold more bytes
/// after it: [`FrameView::total_len`] says where the frame ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameView<T> {
    buffer: T,
    /// Header plus body, at most `buffer`'s length (checked).
    len: usize,
}

impl<T: AsRef<[u8]>> FrameView<T> {
    /// Checks that `buffer` starts with a whole frame and wraps it.
    pub fn new_checked(buffer: T) -> Result<Self, ViewError> {
        let bytes = buffer.as_ref();
        let header = HeaderView::new_checked(bytes)?;
        let len = header
            .body_len()
            .checked_add(HEADER_LEN)
            .ok_or(ViewError::Truncated)?;
        if len > bytes.len() {
            return Err(ViewError::Truncated);
        }
        Ok(FrameView { buffer, len })
    }

    /// The frame's length: header plus body.
    pub fn total_len(&self) -> usize {
        self.len
    }

    /// The message id.
    pub fn msg_id(&self) -> u32 {
        be_u32(self.buffer.as_ref(), SIZE_END)
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(HEADER_LEN..self.len)
            .unwrap_or_default()
    }

    /// The whole frame, header included.
    pub fn bytes(&self) -> &[u8] {
        self.buffer.as_ref().get(..self.len).unwrap_or_default()
    }

    /// The frame as the decoder hands frames out.
    pub fn frame(&self) -> Frame<'_> {
        Frame {
            msg_id: self.msg_id(),
            body: self.body(),
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// The checked header of a frame whose body may not be there yet: for a
/// reader that must take exactly one frame from a stream and no byte more
/// (a client's handshake), which reads [`HEADER_LEN`] bytes, checks them
/// here, then reads exactly [`HeaderView::body_len`] more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderView {
    msg_id: u32,
    body_len: usize,
}

impl HeaderView {
    /// Checks the prefix and the size field of the header at the start of
    /// `bytes` (at least [`HEADER_LEN`] bytes).
    pub fn new_checked(bytes: &[u8]) -> Result<Self, ViewError> {
        let header = bytes.get(..HEADER_LEN).ok_or(ViewError::Truncated)?;
        if header.get(..PREFIX.len()) != Some(&PREFIX[..]) {
            return Err(ViewError::BadPrefix);
        }
        let size = be_u32(header, PREFIX.len());
        let body = size.checked_sub(MIN_SIZE).ok_or(ViewError::BadSize)?;
        Ok(HeaderView {
            msg_id: be_u32(header, SIZE_END),
            body_len: usize::try_from(body).map_err(|_| ViewError::Truncated)?,
        })
    }

    /// The message id.
    pub fn msg_id(&self) -> u32 {
        self.msg_id
    }

    /// The length of the body that follows the header.
    pub fn body_len(&self) -> usize {
        self.body_len
    }
}

/// The whole frames of `run`, in order: a run of frames as an adapter
/// queued them. Stops at the first bytes that are not a whole frame (a run
/// that is not made of whole frames ends early; [`Frames::rest`] shows
/// what was left).
pub fn frames(run: &[u8]) -> Frames<'_> {
    Frames { rest: run }
}

/// Iterator over the frames of a run; see [`frames`].
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Frames<'a> {
    /// What has not been taken yet (empty after a run of whole frames).
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = FrameView<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        let view = FrameView::new_checked(self.rest).ok()?;
        self.rest = self.rest.get(view.total_len()..).unwrap_or_default();
        Some(view)
    }
}

/// Reads the big-endian `u32` at `at` (0 when the bytes are not there;
/// callers check the length first).
fn be_u32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_be_bytes)
}
