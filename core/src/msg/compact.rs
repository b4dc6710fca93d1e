//! The compact postcard bodies (spec 5.3, **Beyond**).
//!
//! A compact body is the [postcard] encoding of one [`Message`], through the
//! serde derives of the message types. This is a wire contract, revision
//! [`VERSION`]:
//!
//! - The body starts with the message's discriminant, a postcard varint
//!   (LEB128 `u32`), then the variant's fields in declaration order.
//!   Discriminants, **never to be reordered or reused**:
//!
//!   | # | message | # | message |
//!   |---|---|---|---|
//!   | 0 | `Register` | 6 | `UnicastErrors` |
//!   | 1 | `Unregister` | 7 | `Ack` |
//!   | 2 | `Notify` | 8 | `StatusRequest` |
//!   | 3 | `UnicastError` | 9 | `Status` |
//!   | 4 | `Hello` | 10 | `Observed` |
//!   | 5 | `Observe` | ≥ 11 | reserved: future messages |
//!
//!   New messages take the next free discriminant (11, 12, ...); they must
//!   be declared before `Message::Unknown`, whose serde index is never used
//!   on the wire. Adding a field to an existing message is a new revision.
//! - Integers: postcard varints (`i32` zig-zag); `Option` is a 0/1 byte then
//!   the value; `bool` is one byte, 0 or 1 only; strings (identifiers and the
//!   parameter's JSON text) are a varint length then UTF-8 bytes.
//! - Identifiers are checked against the identifier rules and the parameter
//!   is checked to be one JSON value while decoding, exactly as for JSON
//!   bodies.
//!
//! Decisions:
//!
//! - **Forward compatibility**: a body whose discriminant is 11 or more (a
//!   message from a newer peer) decodes to `Message::Unknown("")`, which
//!   both sides ignore, whatever follows the discriminant. A malformed
//!   discriminant varint is [`DecodeError::Compact`].
//! - **Trailing bytes** after a complete known message are rejected
//!   ([`DecodeError::Compact`]): a body is exactly one message, so a sender
//!   bug is caught instead of silently half-read.
//! - [`Message::Unknown`] has no compact form: encoding it is
//!   [`EncodeError::Unsupported`].

use super::{DecodeError, EncodeError, Message};

/// Revision of the compact encoding, sent in `hello`.
pub const VERSION: u16 = 1;

/// Number of messages with a compact form: discriminants `0..KNOWN_MESSAGES`
/// name them; higher ones are reserved for future messages.
pub const KNOWN_MESSAGES: u32 = 11;

/// Decodes a compact body. See the module docs for the rules.
pub fn decode(body: &[u8]) -> Result<Message<'_>, DecodeError> {
    let discriminant = peek_varint_u32(body).ok_or(DecodeError::Compact)?;
    if discriminant >= KNOWN_MESSAGES {
        return Ok(Message::Unknown(""));
    }
    match postcard::take_from_bytes::<Message<'_>>(body) {
        Ok((msg, [])) => Ok(msg),
        Ok(_) | Err(_) => Err(DecodeError::Compact),
    }
}

/// Encodes `msg` as a compact body into `buf`; returns the length.
///
/// [`EncodeError::BufferFull`] when `buf` is too small (its content is then
/// unspecified); [`EncodeError::Unsupported`] for [`Message::Unknown`].
pub fn encode(msg: &Message<'_>, buf: &mut [u8]) -> Result<usize, EncodeError> {
    if let Message::Unknown(_) = msg {
        return Err(EncodeError::Unsupported);
    }
    match postcard::to_slice(msg, buf) {
        Ok(out) => Ok(out.len()),
        Err(postcard::Error::SerializeBufferFull) => Err(EncodeError::BufferFull),
        // The message types serialize nothing else postcard could refuse.
        Err(_) => Err(EncodeError::Unsupported),
    }
}

/// The length [`encode`] would return for `msg`, without writing it.
/// [`EncodeError::Unsupported`] for [`Message::Unknown`].
pub fn encoded_len(msg: &Message<'_>) -> Result<usize, EncodeError> {
    if let Message::Unknown(_) = msg {
        return Err(EncodeError::Unsupported);
    }
    postcard::serialize_with_flavor(msg, postcard::ser_flavors::Size::default())
        .map_err(|_| EncodeError::Unsupported)
}

/// Reads the leading varint `u32` the way postcard does (at most five bytes,
/// the fifth holding at most four bits); `None` when it is malformed or
/// truncated.
fn peek_varint_u32(body: &[u8]) -> Option<u32> {
    let mut out: u32 = 0;
    for (i, &byte) in body.iter().take(5).enumerate() {
        out |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return if i == 4 && byte > 0x0f {
                None
            } else {
                Some(out)
            };
        }
    }
    None
}
