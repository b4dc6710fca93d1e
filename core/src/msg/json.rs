//! The documented JSON bodies (spec 5.2).
//!
//! STUB: to be written (issue 2, message layer).

use super::{DecodeError, EncodeError, Message};

/// Decodes a JSON body.
pub fn decode(_body: &[u8]) -> Result<Message<'_>, DecodeError> {
    Err(DecodeError::NotAnObject)
}

/// Encodes `msg` as a JSON body into `buf`; returns the length.
pub fn encode(_msg: &Message<'_>, _buf: &mut [u8]) -> Result<usize, EncodeError> {
    Err(EncodeError::Unsupported)
}
