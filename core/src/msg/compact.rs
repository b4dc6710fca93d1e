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
//!   | 5 | `Observe` | 11 | `ConnectionsRequest` |
//!   | 12 | `Connection` | 13 | `ConnectionsEnd` |
//!   | 14 | `Welcome` | 15 | `Registration` |
//!   | 16 | `TlsPeer` | 17 | `TlsCounters` |
//!   | ≥ 18 | reserved: future messages | | |
//!
//!   Messages 11 to 15 came after revision 1's first ten; they are
//!   additions, not changes, so the revision stays 1 (an older server
//!   ignores a `ConnectionsRequest` like any unknown message, and an older
//!   client ignores the answers, `Welcome` and `Registration` included).
//!   Messages 16 and 17 (issue 16: what `nfy status` shows of TLS
//!   connections) are additions of the same kind: a client older than them
//!   reads them as unknown messages and ignores them, and a server older
//!   than them sends none.
//!
//!   New messages take the next free discriminant (18, 19, ...); they must
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
//! - **Forward compatibility**: a body whose discriminant is 18 or more (a
//!   message from a newer peer) decodes to `Message::Unknown("")`, which
//!   both sides ignore, whatever follows the discriminant. A malformed
//!   discriminant varint is [`DecodeError::Compact`].
//! - **Trailing bytes** after a complete known message are rejected
//!   ([`DecodeError::Compact`]): a body is exactly one message, so a sender
//!   bug is caught instead of silently half-read.
//! - [`Message::Unknown`] has no compact form: encoding it is
//!   [`EncodeError::Unsupported`].

use serde::Deserialize;

use super::{DecodeError, EncodeError, Message, Notify, RawJson};
use crate::ids::{AppId, Destination, NotificationId};

/// Revision of the compact encoding, sent in `hello`.
pub const VERSION: u16 = 1;

/// Number of messages with a compact form: discriminants `0..KNOWN_MESSAGES`
/// name them; higher ones are reserved for future messages.
pub const KNOWN_MESSAGES: u32 = 18;

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

/// Discriminant of [`Message::Notify`].
const NOTIFY: u8 = 2;
/// Discriminant of [`Message::UnicastError`].
const UNICAST_ERROR: u8 = 3;
/// Discriminant of [`Message::Ack`].
const ACK: u8 = 7;

/// The reference of a compact `ack` body; `None` for any other body. Reads
/// one byte of any other message, so a run of frames can be searched for
/// acknowledgements cheaply.
pub fn ack_reference(body: &[u8]) -> Option<u64> {
    let [ACK, rest @ ..] = body else {
        return None;
    };
    match postcard::take_from_bytes::<u64>(rest) {
        Ok((reference, [])) => Some(reference),
        _ => None,
    }
}

/// The fields of a compact [`Notify`], in wire order, with the parameter
/// taken as plain text. Kept in step with [`Notify`] by the test
/// `trusted_decoding_equals_decoding_on_valid_bodies`.
#[derive(Deserialize)]
struct TrustedNotify<'a> {
    from: AppId,
    to: Destination,
    notification: NotificationId,
    flags: u32,
    reference: Option<u64>,
    #[serde(borrow)]
    parameter: &'a str,
}

/// Decodes a body that comes from a peer which validated it already: like
/// [`decode`], except that the parameter of a notify or unicast error is
/// not checked to be JSON again.
///
/// **Decision**: our client library decodes what its server sends with
/// this. The server validated every parameter when it accepted it (from a
/// client it does not trust), and the client trusts its server for
/// everything else anyway (routing, references, status); validating again
/// was the largest single cost on the receiving side
/// (docs/performance.md). Everything else is checked as by [`decode`]:
/// the framing, every ID, UTF-8.
pub fn decode_trusted(body: &[u8]) -> Result<Message<'_>, DecodeError> {
    let (kind, fields) = match body {
        [k @ (NOTIFY | UNICAST_ERROR), fields @ ..] => (*k, fields),
        _ => return decode(body),
    };
    match postcard::take_from_bytes::<TrustedNotify<'_>>(fields) {
        Ok((n, [])) => {
            let notify = Notify {
                from: n.from,
                to: n.to,
                notification: n.notification,
                flags: n.flags,
                reference: n.reference,
                parameter: RawJson(n.parameter),
            };
            Ok(if kind == NOTIFY {
                Message::Notify(notify)
            } else {
                Message::UnicastError(notify)
            })
        }
        Ok(_) | Err(_) => Err(DecodeError::Compact),
    }
}

/// The leading fields of a compact [`Notify`], up to the reference, as
/// plain text (not checked against the identifier rules).
#[derive(Deserialize)]
struct NotifyHead<'a> {
    #[serde(borrow)]
    _from: &'a str,
    #[serde(borrow)]
    _to: &'a str,
    #[serde(borrow)]
    _notification: &'a str,
    _flags: u32,
    reference: Option<u64>,
}

/// The reference of a compact notify body; see
/// [`super::notify_reference`].
pub(super) fn notify_reference(body: &[u8]) -> Option<u64> {
    let [NOTIFY, fields @ ..] = body else {
        return None;
    };
    postcard::take_from_bytes::<NotifyHead<'_>>(fields)
        .ok()
        .and_then(|(head, _)| head.reference)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AppId, Destination, NotificationId};
    use crate::msg::{
        ConnectionReport, Credentials, Hello, Notify, Observation, PeerAddr, ProtectionCounters,
        RawJson, Register, RegistrationReport, Status, TlsCounters, TlsPeerReport, Unregister,
        Welcome,
    };
    use std::vec::Vec;

    fn app(s: &str) -> AppId {
        AppId::new(s).unwrap()
    }

    fn nid(s: &str) -> NotificationId {
        NotificationId::new(s).unwrap()
    }

    fn notify() -> Notify<'static> {
        Notify {
            from: app("pay"),
            to: Destination::One,
            notification: nid("card"),
            flags: 7,
            reference: Some(42),
            parameter: RawJson::EMPTY_OBJECT,
        }
    }

    /// One message of every kind with its exact bytes. A failure here means
    /// the wire contract changed: bump [`VERSION`] deliberately or undo it.
    fn pinned() -> Vec<(Message<'static>, Vec<u8>)> {
        std::vec![
            (
                Message::Register(Register {
                    to: app("xyz"),
                    notification: nid("test"),
                    priority: 1,
                }),
                [&[0u8, 3][..], b"xyz", &[4], b"test", &[2]].concat(),
            ),
            (
                Message::Register(Register {
                    to: app("a"),
                    notification: nid("b"),
                    priority: -1,
                }),
                std::vec![0, 1, b'a', 1, b'b', 1],
            ),
            (
                Message::Unregister(Unregister {
                    to: app("a"),
                    notification: nid("b"),
                }),
                std::vec![1, 1, b'a', 1, b'b'],
            ),
            (
                Message::Notify(notify()),
                [
                    &[2u8, 3][..],
                    b"pay",
                    &[1],
                    b"1",
                    &[4],
                    b"card",
                    &[7, 1, 42, 2],
                    b"{}"
                ]
                .concat(),
            ),
            (
                Message::UnicastError(Notify {
                    reference: None,
                    to: Destination::All,
                    ..notify()
                }),
                [
                    &[3u8, 3][..],
                    b"pay",
                    &[1],
                    b"*",
                    &[4],
                    b"card",
                    &[7, 0, 2],
                    b"{}"
                ]
                .concat(),
            ),
            (
                Message::Hello(Hello {
                    version: VERSION,
                    app_id: Some(app("ui")),
                    acks: true,
                }),
                std::vec![4, 1, 1, 2, b'u', b'i', 1],
            ),
            (
                Message::Hello(Hello {
                    version: 300,
                    app_id: None,
                    acks: false,
                }),
                std::vec![4, 0xac, 0x02, 0, 0],
            ),
            (Message::Observe(true), std::vec![5, 1]),
            (Message::UnicastErrors(false), std::vec![6, 0]),
            (Message::Ack(300), std::vec![7, 0xac, 0x02]),
            (Message::StatusRequest, std::vec![8]),
            (
                Message::Status(Status {
                    local_connections: 1,
                    remote_connections: 2,
                    registrations: 3,
                    remote_registrations: 4,
                    observers: 5,
                    delivered: 6,
                    dropped: 7,
                    unicast_errors: 8,
                }),
                std::vec![9, 1, 2, 3, 4, 5, 6, 7, 8],
            ),
            (
                Message::Observed(Observation {
                    from: app("a"),
                    to: None,
                    notification: nid("n"),
                    flags: 0,
                }),
                std::vec![10, 1, b'a', 0, 1, b'n', 0],
            ),
            (
                Message::Observed(Observation {
                    from: app("a"),
                    to: Some(app("b")),
                    notification: nid("n"),
                    flags: 1,
                }),
                std::vec![10, 1, b'a', 1, 1, b'b', 1, b'n', 1],
            ),
            (Message::ConnectionsRequest, std::vec![11]),
            (
                Message::Connection(ConnectionReport {
                    id: 0x0001_0002,
                    remote: false,
                    peer: PeerAddr::Unix(Credentials {
                        pid: 300,
                        uid: 1000,
                        gid: 5,
                    }),
                    app_id: Some(app("ui")),
                    registrations: 3,
                    observer: true,
                }),
                std::vec![
                    12, 0x82, 0x80, 0x04, 0, 1, 0xac, 0x02, 0xe8, 0x07, 5, 1, 2, b'u', b'i', 3, 1
                ],
            ),
            (
                Message::Connection(ConnectionReport {
                    id: 1,
                    remote: true,
                    peer: PeerAddr::Tcp {
                        ip: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 233, 0, 2],
                        port: 5899,
                    },
                    app_id: None,
                    registrations: 0,
                    observer: false,
                }),
                std::vec![
                    12, 1, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 233, 0, 2, 0x8b,
                    0x2e, 0, 0, 0
                ],
            ),
            (
                Message::Connection(ConnectionReport {
                    id: 2,
                    remote: false,
                    peer: PeerAddr::UnixUnknown,
                    app_id: None,
                    registrations: 0,
                    observer: false,
                }),
                std::vec![12, 2, 0, 2, 0, 0, 0],
            ),
            (
                Message::Connection(ConnectionReport {
                    id: 3,
                    remote: false,
                    peer: PeerAddr::Unknown,
                    app_id: None,
                    registrations: 0,
                    observer: false,
                }),
                std::vec![12, 3, 0, 0, 0, 0, 0],
            ),
            (
                Message::ConnectionsEnd(ProtectionCounters {
                    refused: 1,
                    remote_refused: 2,
                    rate_limited: 300,
                    oversize: 4,
                }),
                std::vec![13, 1, 2, 0xac, 0x02, 4],
            ),
            (
                Message::Welcome(Welcome { max_frame: 65536 }),
                std::vec![14, 0x80, 0x80, 0x04],
            ),
            (
                Message::Registration(RegistrationReport {
                    conn: 0x0001_0002,
                    to: app("ui"),
                    notification: nid("n"),
                    priority: -2,
                }),
                std::vec![15, 0x82, 0x80, 0x04, 2, b'u', b'i', 1, b'n', 3],
            ),
            (
                Message::TlsPeer(TlsPeerReport {
                    conn: 0x0001_0002,
                    subject: Some("CN=a"),
                }),
                [&[16u8, 0x82, 0x80, 0x04, 1, 4][..], b"CN=a"].concat(),
            ),
            (
                Message::TlsPeer(TlsPeerReport {
                    conn: 3,
                    subject: None,
                }),
                std::vec![16, 3, 0],
            ),
            (
                Message::TlsCounters(TlsCounters {
                    accepted: 300,
                    failed: 2,
                    timed_out: 3,
                    over_limit: 4,
                }),
                std::vec![17, 0xac, 0x02, 2, 3, 4],
            ),
        ]
    }

    #[test]
    fn wire_bytes_are_pinned() {
        let all = pinned();
        // Every message kind with a compact form is pinned.
        let mut kinds: Vec<&str> = all.iter().map(|(m, _)| m.kind()).collect();
        kinds.dedup();
        assert_eq!(kinds.len(), KNOWN_MESSAGES as usize);
        for (i, (m, bytes)) in all.iter().enumerate() {
            let mut buf = [0u8; 128];
            let n = encode(m, &mut buf).unwrap();
            assert_eq!(&buf[..n], &bytes[..], "#{i} {m:?}");
            assert_eq!(encoded_len(m), Ok(n));
            assert_eq!(decode(bytes).as_ref(), Ok(m), "#{i}");
        }
    }

    #[test]
    fn trusted_decoding_equals_decoding_on_valid_bodies() {
        for (i, (m, bytes)) in pinned().iter().enumerate() {
            assert_eq!(decode_trusted(bytes).as_ref(), Ok(m), "#{i}");
            // Cut short, or with a byte too many: refused alike.
            let short = &bytes[..bytes.len() - 1];
            assert_eq!(
                decode_trusted(short).is_err(),
                decode(short).is_err(),
                "#{i}"
            );
            let mut long = bytes.clone();
            long.push(0);
            assert_eq!(
                decode_trusted(&long).is_err(),
                decode(&long).is_err(),
                "#{i}"
            );
        }
    }

    #[test]
    fn trusted_decoding_skips_only_the_parameter_check() {
        for (kind, wrap) in [
            (
                NOTIFY,
                Message::Notify as fn(Notify<'static>) -> Message<'static>,
            ),
            (UNICAST_ERROR, Message::UnicastError),
        ] {
            let mut n = notify();
            n.parameter = RawJson("{not json");
            let mut buf = [0u8; 128];
            let len = encode(&wrap(n.clone()), &mut buf).unwrap();
            assert_eq!(buf[0], kind);
            assert_eq!(decode(&buf[..len]), Err(DecodeError::Compact));
            assert_eq!(decode_trusted(&buf[..len]), Ok(wrap(n)));
        }
        // IDs are still checked: the notification ID "card" made empty.
        let mut buf = [0u8; 128];
        let len = encode(&Message::Notify(notify()), &mut buf).unwrap();
        let valid = &buf[..len];
        let at = valid.windows(5).position(|w| w == b"\x04card").unwrap();
        let bytes = [&valid[..at], &[0], &valid[at + 5..]].concat();
        assert_eq!(decode(&bytes), Err(DecodeError::Compact));
        assert_eq!(decode_trusted(&bytes), Err(DecodeError::Compact));
    }

    #[test]
    fn known_messages_count_matches_the_enum() {
        // `Unknown` is declared last, so its serde index is the number of
        // messages before it: adding a message without raising
        // KNOWN_MESSAGES (and pinning its bytes above) fails here.
        let mut buf = [0u8; 8];
        let raw = postcard::to_slice(&Message::Unknown(""), &mut buf).unwrap();
        assert_eq!(raw, &[KNOWN_MESSAGES as u8, 0]);
    }

    #[test]
    fn unknown_discriminants_are_unknown_messages() {
        for body in [
            &[18u8][..],
            &[18, 0xff, 0xff],
            &[19, 1, 2, 3],
            &[0x80, 0x01],
            &[0xff, 0xff, 0xff, 0xff, 0x0f],
            // Non-canonical varints are read as postcard reads them.
            &[0x92, 0x00],
        ] {
            assert_eq!(decode(body), Ok(Message::Unknown("")), "{body:?}");
        }
        // Non-canonical but known: decoded (postcard accepts it too).
        assert_eq!(decode(&[0x88, 0x00]), Ok(Message::StatusRequest));
    }

    #[test]
    fn malformed_bodies() {
        for body in [
            &[][..],
            &[0x80],
            &[0xff, 0xff, 0xff, 0xff, 0x10],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[5, 2],
            &[6],
            &[7],
            &[7, 0x80],
        ] {
            assert_eq!(decode(body), Err(DecodeError::Compact), "{body:?}");
        }
        for (m, bytes) in pinned() {
            // Every truncation fails.
            for len in 0..bytes.len() {
                assert_eq!(
                    decode(&bytes[..len]),
                    Err(DecodeError::Compact),
                    "{m:?} at {len}"
                );
            }
            // Trailing bytes are rejected.
            let mut long = bytes.clone();
            long.push(0);
            assert_eq!(decode(&long), Err(DecodeError::Compact), "{m:?}");
        }
    }

    #[test]
    fn decoding_checks_ids_and_parameter() {
        let body = |from: &[u8], param: &[u8]| -> Vec<u8> {
            let mut b = std::vec![2u8, from.len() as u8];
            b.extend_from_slice(from);
            b.extend_from_slice(&[1, b'*', 1, b'n', 0, 0, param.len() as u8]);
            b.extend_from_slice(param);
            b
        };
        assert!(decode(&body(b"a", b"[1]")).is_ok());
        assert!(decode(&body(b"a", b" [1] ")).is_ok());
        assert_eq!(decode(&body(b"1", b"{}")), Err(DecodeError::Compact));
        assert_eq!(decode(&body(b"", b"{}")), Err(DecodeError::Compact));
        assert_eq!(decode(&body(b"a\n", b"{}")), Err(DecodeError::Compact));
        assert_eq!(decode(&body(b"a\xff", b"{}")), Err(DecodeError::Compact));
        assert_eq!(decode(&body(b"a", b"{")), Err(DecodeError::Compact));
        assert_eq!(decode(&body(b"a", b"")), Err(DecodeError::Compact));
        assert_eq!(decode(&body(b"a", b"[1,]")), Err(DecodeError::Compact));
        assert_eq!(decode(&body(b"a", b"1 2")), Err(DecodeError::Compact));
        let long = [b'x'; 65];
        assert_eq!(decode(&body(&long, b"{}")), Err(DecodeError::Compact));
        // The parameter is borrowed from the body.
        let b = body(b"a", b"[1]");
        let Ok(Message::Notify(n)) = decode(&b) else {
            panic!()
        };
        assert!(core::ptr::eq(
            n.parameter.as_str(),
            core::str::from_utf8(&b[b.len() - 3..]).unwrap()
        ));
    }

    #[test]
    fn encode_errors() {
        let mut buf = [0u8; 64];
        assert_eq!(
            encode(&Message::Unknown(""), &mut buf),
            Err(EncodeError::Unsupported)
        );
        assert_eq!(
            encode(&Message::Unknown("x"), &mut buf),
            Err(EncodeError::Unsupported)
        );
        assert_eq!(
            encoded_len(&Message::Unknown("")),
            Err(EncodeError::Unsupported)
        );
        let m = Message::Notify(notify());
        let n = encoded_len(&m).unwrap();
        for len in 0..n {
            assert_eq!(
                encode(&m, &mut buf[..len]),
                Err(EncodeError::BufferFull),
                "{len}"
            );
        }
        assert_eq!(encode(&m, &mut buf), Ok(n));
    }
}
