//! The frame layer (spec 5.1): `\0NFY`, size, message id, body.
//!
//! STUB: the API below is fixed; the bodies are to be written (issue 2,
//! frame codec).

use core::fmt;

/// The four bytes that start every frame.
pub const PREFIX: [u8; 4] = *b"\0NFY";

/// Bytes before the body: prefix, size, message id.
pub const HEADER_LEN: usize = 12;

/// One decoded frame, borrowing its body from the decoder or the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The frame's message id (0 JSON, 1 compact).
    pub msg_id: u32,
    /// The body bytes.
    pub body: &'a [u8],
}

/// Something the decoder passed over instead of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Bytes that were not part of any frame (resynchronisation).
    Garbage {
        /// How many bytes were discarded.
        len: usize,
    },
    /// A frame whose body is larger than the decoder's limit; skipped whole.
    Oversize {
        /// The body size the frame announced.
        body_len: u32,
    },
    /// A header whose size field is smaller than 4 (no room for the
    /// message id); the header was discarded.
    BadSize {
        /// The size field as read.
        size: u32,
    },
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skipped::Garbage { len } => write!(f, "discarded {len} bytes before a frame prefix"),
            Skipped::Oversize { body_len } => write!(
                f,
                "skipped a frame with a {body_len}-byte body (over the limit)"
            ),
            Skipped::BadSize { size } => {
                write!(f, "discarded a frame header with size field {size}")
            }
        }
    }
}

/// What one [`FrameDecoder::feed`] call produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A complete frame.
    Frame(Frame<'a>),
    /// Input passed over; decoding goes on after it.
    Skipped(Skipped),
}

/// A streaming frame decoder over caller-provided storage `B` (a `[u8; N]`,
/// a `&mut [u8]`, or a `Vec<u8>` on std). The storage length is the largest
/// body the decoder accepts plus [`HEADER_LEN`].
pub struct FrameDecoder<B> {
    buf: B,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> FrameDecoder<B> {
    /// A decoder using `buf` as its storage.
    pub fn new(buf: B) -> Self {
        FrameDecoder { buf }
    }

    /// The largest body this decoder accepts.
    pub fn max_body(&self) -> usize {
        self.buf.as_ref().len().saturating_sub(HEADER_LEN)
    }

    /// Feeds bytes; returns how many were consumed and at most one result.
    /// Call again with the rest until all input is consumed.
    pub fn feed<'d>(&'d mut self, input: &'d [u8]) -> (usize, Option<Decoded<'d>>) {
        (input.len(), None)
    }
}

/// Why a frame could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError<E> {
    /// The output buffer cannot hold the header.
    BufferFull,
    /// Writing the body failed.
    Body(E),
}

/// Encodes a frame into `buf`: writes the body with `body` (given the space
/// after the header; returns the body length), then the header. Returns the
/// frame length.
pub fn encode_frame<E>(
    buf: &mut [u8],
    msg_id: u32,
    body: impl FnOnce(&mut [u8]) -> Result<usize, E>,
) -> Result<usize, FrameError<E>> {
    let _ = (buf, msg_id, body);
    Err(FrameError::BufferFull)
}
