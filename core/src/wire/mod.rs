//! The frame layer (spec 5.1): `\0NFY`, size, message id, body.
//!
//! Every message on a stream is one frame, all integers big-endian:
//!
//! ```text
//! 00 4E 46 59      prefix ("\0NFY", PREFIX)
//! <u32 size>       number of bytes that follow: 4 (message id) + body length
//! <u32 msg id>     0 = JSON body, 1 = compact body (passed through, not judged here)
//! <body>
//! ```
//!
//! This module holds the streaming [`FrameDecoder`] (resynchronisation,
//! oversize skipping, zero-copy when a frame arrives whole), the encoder
//! functions [`encode_frame`], [`encode_header`] and [`frame_len`], and
//! [`FrameView`], a checked view of a whole frame already in memory (with
//! [`frames`], which walks a run of them): adapters read frame headers
//! through it, never by hand.
//!
//! The frame layer does not look at the message id or the body: deciding
//! what an id means (and rejecting unknown ones) is the message layer's job.

use core::fmt;

mod decoder;
mod encoder;
#[cfg(test)]
mod tests;
mod view;

pub use decoder::FrameDecoder;
pub use encoder::{encode_frame, encode_header, frame_len, BodyTooLarge};
pub use view::{frames, FrameView, Frames, HeaderView, ViewError};

/// The four bytes that start every frame.
pub const PREFIX: [u8; 4] = *b"\0NFY";

/// Bytes before the body: prefix, size, message id.
pub const HEADER_LEN: usize = 12;

/// Bytes of the header that the size field does not count: prefix and size.
const SIZE_END: usize = 8;

/// The size field counts the message id plus the body; the smallest valid
/// size is therefore the length of the message id.
const MIN_SIZE: u32 = 4;

/// One decoded frame, borrowing its body from the decoder or the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The frame's message id (0 JSON, 1 compact).
    pub msg_id: u32,
    /// The body bytes.
    pub body: &'a [u8],
}

/// Something the decoder passed over instead of a frame.
///
/// Every input byte is accounted for exactly once: as part of a [`Frame`],
/// as [`Skipped::Garbage`], as the prefix of a [`Skipped::BadSize`] header
/// (4 bytes), or as a frame skipped by [`Skipped::Oversize`] (12 bytes of
/// header plus `body_len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Bytes that were not part of any frame (resynchronisation).
    ///
    /// Consecutive garbage is reported as one event as far as the input
    /// allows: a run is reported when the next prefix is found, or when the
    /// fed chunk ends (so an adapter learns about a stream of junk without
    /// waiting for a prefix that may never come). Runs that span chunks may
    /// therefore be reported in several pieces.
    Garbage {
        /// How many bytes were discarded.
        len: usize,
    },
    /// A frame whose body is larger than the decoder's limit; skipped whole.
    ///
    /// Reported as soon as the size field is read; the decoder then counts
    /// off (without storing) the message id and `body_len` body bytes, across
    /// as many feeds as it takes, and decodes the frame after it.
    Oversize {
        /// The body size the frame announced.
        body_len: u32,
    },
    /// A header whose size field is smaller than 4 (no room for the
    /// message id).
    ///
    /// Only the 4-byte prefix is dropped: decoding resynchronises right after
    /// it, so the size field's bytes become garbage, and a valid frame that
    /// starts inside what would have been the header (a truncated header
    /// followed by a real frame) is still found.
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

/// Why a frame could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError<E> {
    /// The output buffer cannot hold the header, the body writer claimed
    /// more bytes than it was given, or the frame is too large for the
    /// 32-bit size field.
    BufferFull,
    /// Writing the body failed.
    Body(E),
}

impl<E: fmt::Display> fmt::Display for FrameError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BufferFull => f.write_str("frame does not fit the output buffer"),
            FrameError::Body(e) => write!(f, "cannot encode frame body: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for FrameError<E> {}
