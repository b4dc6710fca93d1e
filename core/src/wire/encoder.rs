//! Frame encoding: the header in front of a body the caller writes in place.

use core::fmt;

use super::{FrameError, HEADER_LEN, MIN_SIZE, PREFIX};

/// A body too large for the frame's 32-bit size field
/// (`body_len + 4 > u32::MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTooLarge {
    /// The body length that was asked for.
    pub body_len: usize,
}

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a {}-byte body does not fit a frame's 32-bit size field",
            self.body_len
        )
    }
}

impl core::error::Error for BodyTooLarge {}

/// The size field for a body of `body_len` bytes, if it fits in 32 bits.
fn size_field(body_len: usize) -> Option<u32> {
    u32::try_from(body_len).ok()?.checked_add(MIN_SIZE)
}

/// The length of a whole frame (header plus body) around a `body_len`-byte
/// body, or `None` if such a body cannot be framed (its size field would
/// not fit in 32 bits).
pub fn frame_len(body_len: usize) -> Option<usize> {
    size_field(body_len)?;
    body_len.checked_add(HEADER_LEN)
}

/// The 12-byte header for a body of `body_len` bytes with message id
/// `msg_id`, for adapters that write header and body separately (a
/// vectored write).
pub fn encode_header(body_len: usize, msg_id: u32) -> Result<[u8; HEADER_LEN], BodyTooLarge> {
    let size = size_field(body_len).ok_or(BodyTooLarge { body_len })?;
    let [p0, p1, p2, p3] = PREFIX;
    let [s0, s1, s2, s3] = size.to_be_bytes();
    let [m0, m1, m2, m3] = msg_id.to_be_bytes();
    Ok([p0, p1, p2, p3, s0, s1, s2, s3, m0, m1, m2, m3])
}

/// Encodes a frame into `buf`: writes the body with `body` (given the space
/// after the header; returns the body length), then the header. Returns the
/// frame length.
///
/// Errors: [`FrameError::BufferFull`] if `buf` is shorter than
/// [`HEADER_LEN`], if `body` returns a length larger than the space it was
/// given, or if the body is too large for the size field;
/// [`FrameError::Body`] with the body writer's own error. On error the
/// contents of `buf` are unspecified.
pub fn encode_frame<E>(
    buf: &mut [u8],
    msg_id: u32,
    body: impl FnOnce(&mut [u8]) -> Result<usize, E>,
) -> Result<usize, FrameError<E>> {
    let (head, space) = buf
        .split_at_mut_checked(HEADER_LEN)
        .ok_or(FrameError::BufferFull)?;
    let capacity = space.len();
    let body_len = body(space).map_err(FrameError::Body)?;
    if body_len > capacity {
        return Err(FrameError::BufferFull);
    }
    let header = encode_header(body_len, msg_id).map_err(|_| FrameError::BufferFull)?;
    head.copy_from_slice(&header);
    Ok(HEADER_LEN + body_len)
}
