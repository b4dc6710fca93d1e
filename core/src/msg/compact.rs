//! The compact postcard bodies (spec 5.3).
//!
//! STUB: to be written (issue 2, message layer).

use super::{DecodeError, EncodeError, Message};

/// Revision of the compact encoding, sent in `hello`.
pub const VERSION: u16 = 1;

/// Decodes a compact body.
pub fn decode(_body: &[u8]) -> Result<Message<'_>, DecodeError> {
    Err(DecodeError::Compact)
}

/// Encodes `msg` as a compact body into `buf`; returns the length.
pub fn encode(_msg: &Message<'_>, _buf: &mut [u8]) -> Result<usize, EncodeError> {
    Err(EncodeError::Unsupported)
}
