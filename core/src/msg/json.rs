//! The documented JSON bodies (spec 5.2): decoding and encoding.
//!
//! A body is a UTF-8 JSON object whose member `type` selects the message:
//!
//! | `type` | members |
//! |---|---|
//! | `register` | `to`, `notification`, `priority` |
//! | `unregister` | `to`, `notification` |
//! | `notify`, `unicast_error` | `from`, `to`, `notification`, `flags`, `reference`, `parameter` |
//!
//! [`decode`] reads the body in one pass over the bytes (after the UTF-8
//! check): the [`scan`] member iterator validates the whole text as JSON
//! while it records where the known members are; no member value is copied
//! except the identifiers, and the parameter stays a slice of the body.
//!
//! Decisions where the spec is silent:
//!
//! - Member order is free; members this side does not know are ignored
//!   (their values must still be valid JSON, like the whole body).
//! - A known member that appears twice is [`DecodeError::DuplicateMember`],
//!   but only when the selected message has that member (or it is `type`);
//!   e.g. two `flags` in a `register` are unknown extras and ignored.
//! - `type` missing → `MissingMember("type")`; not a string →
//!   `WrongType("type")`; a string naming no message this side knows →
//!   `Ok(Message::Unknown(raw))` with the type text as written (escapes not
//!   decoded), which both sides ignore.
//! - `from`, `to`, `notification` are required strings; their escapes are
//!   decoded, then they must pass the identifier rules (spec section 1):
//!   `from` and the `to` of `register`/`unregister` are [`AppId`]s, the `to`
//!   of `notify`/`unicast_error` is a [`Destination`] (`"1"`, `"*"` or an
//!   app ID), `notification` is a [`NotificationId`]. A string whose
//!   *decoded* form breaks a rule is `InvalidId(member, why)`.
//! - `priority` is optional, default 0, an integer that fits `i32`.
//! - `flags` is optional, default 0, an integer that fits `u32`.
//! - `reference` is optional, an integer that fits `u64`; `null` means
//!   absent (the only member where `null` means absent).
//! - Integers are JSON integers: `1.0` and `1e2` are `WrongType` even
//!   though their values are whole; `-0` is 0. A number out of range is
//!   `WrongType` too.
//! - `parameter` is optional, default `{}` ([`RawJson::EMPTY_OBJECT`]); any
//!   JSON value is accepted (`null` is the parameter `null`, not absent), and
//!   kept as its exact text in the body.
//!
//! [`encode`] writes compact JSON (no whitespace) with the members in
//! alphabetical order, which reproduces the spec's example byte for byte:
//! `{"notification":"test","priority":1,"to":"xyz","type":"register"}`.
//! `priority` and `flags` are always written; `reference` only when set.
//! Strings are escaped minimally: `"` and `\` with a backslash, control
//! characters as `\u00XX` (identifiers cannot hold them, so this is only
//! defence); everything else, non-ASCII included, is written as UTF-8.
//! The parameter is copied verbatim, minus any whitespace around it (a
//! [`RawJson`] may carry some). Compact-only messages and
//! [`Message::Unknown`] have no JSON form: [`EncodeError::Unsupported`].

use super::scan::{self, JsonStr, UnescapeError, Value};
use super::{DecodeError, EncodeError, Message, Notify, RawJson, Register, Unregister};
use crate::ids::{AppId, Destination, IdError, NotificationId, MAX_ID_LEN};

// Slots of the known members, in the order they are checked.
const TYPE: usize = 0;
const FROM: usize = 1;
const TO: usize = 2;
const NOTIFICATION: usize = 3;
const PRIORITY: usize = 4;
const FLAGS: usize = 5;
const REFERENCE: usize = 6;
const PARAMETER: usize = 7;
const SLOTS: usize = 8;

/// Member names, indexed by slot.
const NAMES: [&str; SLOTS] = [
    "type",
    "from",
    "to",
    "notification",
    "priority",
    "flags",
    "reference",
    "parameter",
];

const fn bit(slot: usize) -> u8 {
    1 << slot
}

/// The members each message has (for duplicate detection).
const REGISTER_MEMBERS: u8 = bit(TYPE) | bit(TO) | bit(NOTIFICATION) | bit(PRIORITY);
const UNREGISTER_MEMBERS: u8 = bit(TYPE) | bit(TO) | bit(NOTIFICATION);
const NOTIFY_MEMBERS: u8 = bit(TYPE)
    | bit(FROM)
    | bit(TO)
    | bit(NOTIFICATION)
    | bit(FLAGS)
    | bit(REFERENCE)
    | bit(PARAMETER);

/// The slot of a member name, if it is a known one.
fn slot_by_name(name: &str) -> Option<usize> {
    Some(match name {
        "type" => TYPE,
        "from" => FROM,
        "to" => TO,
        "notification" => NOTIFICATION,
        "priority" => PRIORITY,
        "flags" => FLAGS,
        "reference" => REFERENCE,
        "parameter" => PARAMETER,
        _ => return None,
    })
}

/// The slot of a key, decoding escapes when it has some.
fn slot_of(key: &JsonStr<'_>) -> Option<usize> {
    match key.as_plain() {
        Some(name) => slot_by_name(name),
        // Longer than every known name once decoded: not a known member.
        None => slot_by_name(&key.unescape::<16>().ok()?),
    }
}

/// The message kinds of the JSON protocol.
#[derive(Clone, Copy)]
enum Kind {
    Register,
    Unregister,
    Notify,
    UnicastError,
}

fn kind_by_name(name: &str) -> Option<Kind> {
    Some(match name {
        "register" => Kind::Register,
        "unregister" => Kind::Unregister,
        "notify" => Kind::Notify,
        "unicast_error" => Kind::UnicastError,
        _ => return None,
    })
}

/// The known members found in a body.
struct Fields<'a> {
    slots: [Option<Value<'a>>; SLOTS],
    dups: u8,
}

impl<'a> Fields<'a> {
    fn get(&self, slot: usize) -> Option<Value<'a>> {
        self.slots.get(slot).copied().flatten()
    }

    fn name(slot: usize) -> &'static str {
        NAMES.get(slot).copied().unwrap_or("")
    }

    /// `DuplicateMember` for the first duplicated member among `members`.
    fn check_dups(&self, members: u8) -> Result<(), DecodeError> {
        let d = self.dups & members;
        if d == 0 {
            return Ok(());
        }
        Err(DecodeError::DuplicateMember(Self::name(
            d.trailing_zeros() as usize
        )))
    }

    /// A required string member, escapes decoded, passed to `make`.
    fn id<T>(&self, slot: usize, make: fn(&str) -> Result<T, IdError>) -> Result<T, DecodeError> {
        let name = Self::name(slot);
        let v = self.get(slot).ok_or(DecodeError::MissingMember(name))?;
        let s = v.as_string().ok_or(DecodeError::WrongType(name))?;
        let made = match s.as_plain() {
            Some(plain) => make(plain),
            None => match s.unescape::<MAX_ID_LEN>() {
                Ok(buf) => make(&buf),
                Err(UnescapeError::TooLong) => Err(IdError::TooLong),
                // Unreachable for scanned text; reported, never panicked on.
                Err(UnescapeError::Invalid) => return Err(DecodeError::WrongType(name)),
            },
        };
        made.map_err(|e| DecodeError::InvalidId(name, e))
    }

    /// An optional integer member, `default` when absent.
    fn int<T>(
        &self,
        slot: usize,
        default: T,
        parse: fn(&str) -> Option<T>,
    ) -> Result<T, DecodeError> {
        match self.get(slot) {
            None => Ok(default),
            Some(v) => parse(v.text()).ok_or(DecodeError::WrongType(Self::name(slot))),
        }
    }

    fn notify(&self) -> Result<Notify<'a>, DecodeError> {
        self.check_dups(NOTIFY_MEMBERS)?;
        Ok(Notify {
            from: self.id(FROM, AppId::new)?,
            to: self.id(TO, Destination::parse)?,
            notification: self.id(NOTIFICATION, NotificationId::new)?,
            flags: self.int(FLAGS, 0, scan::parse_u32)?,
            reference: match self.get(REFERENCE) {
                Some(v) if !v.is_null() => Some(
                    scan::parse_u64(v.text()).ok_or(DecodeError::WrongType(NAMES[REFERENCE]))?,
                ),
                _ => None,
            },
            parameter: match self.get(PARAMETER) {
                // The scanner validated the value and its text is exact.
                Some(v) => RawJson(v.text()),
                None => RawJson::EMPTY_OBJECT,
            },
        })
    }
}

/// Decodes a JSON body. See the module docs for the rules.
pub fn decode(body: &[u8]) -> Result<Message<'_>, DecodeError> {
    let text = core::str::from_utf8(body).map_err(|_| DecodeError::NotUtf8)?;
    let Some(members) = scan::object_members(text) else {
        return Err(match scan::validate_str(text) {
            Err(e) => DecodeError::Json(e),
            Ok(()) => DecodeError::NotAnObject,
        });
    };
    let mut f = Fields {
        slots: [None; SLOTS],
        dups: 0,
    };
    for m in members {
        let m = m.map_err(DecodeError::Json)?;
        let Some(i) = slot_of(&m.key) else { continue };
        if let Some(slot) = f.slots.get_mut(i) {
            if slot.is_some() {
                f.dups |= bit(i);
            } else {
                *slot = Some(m.value);
            }
        }
    }

    f.check_dups(bit(TYPE))?;
    let ty = f.get(TYPE).ok_or(DecodeError::MissingMember("type"))?;
    let ty = ty.as_string().ok_or(DecodeError::WrongType("type"))?;
    let kind = match ty.as_plain() {
        Some(name) => kind_by_name(name),
        None => ty
            .unescape::<16>()
            .ok()
            .and_then(|name| kind_by_name(&name)),
    };
    let Some(kind) = kind else {
        return Ok(Message::Unknown(ty.raw()));
    };

    Ok(match kind {
        Kind::Register => {
            f.check_dups(REGISTER_MEMBERS)?;
            Message::Register(Register {
                to: f.id(TO, AppId::new)?,
                notification: f.id(NOTIFICATION, NotificationId::new)?,
                priority: f.int(PRIORITY, 0, scan::parse_i32)?,
            })
        }
        Kind::Unregister => {
            f.check_dups(UNREGISTER_MEMBERS)?;
            Message::Unregister(Unregister {
                to: f.id(TO, AppId::new)?,
                notification: f.id(NOTIFICATION, NotificationId::new)?,
            })
        }
        Kind::Notify => Message::Notify(f.notify()?),
        Kind::UnicastError => Message::UnicastError(f.notify()?),
    })
}

/// Encodes `msg` as a JSON body into `buf`; returns the length.
///
/// [`EncodeError::BufferFull`] when `buf` is too small (its content is then
/// unspecified); [`EncodeError::Unsupported`] for messages without a JSON
/// form (see [`Message::in_json_protocol`]; [`Message::Unknown`] has none
/// either).
pub fn encode(msg: &Message<'_>, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let mut out = Cursor { buf, len: 0 };
    write_message(msg, &mut out)?;
    Ok(out.len)
}

/// The length [`encode`] would return for `msg`, without writing it: size a
/// buffer with it. [`EncodeError::Unsupported`] as for [`encode`].
pub fn encoded_len(msg: &Message<'_>) -> Result<usize, EncodeError> {
    let mut out = Counter { len: 0 };
    write_message(msg, &mut out)?;
    Ok(out.len)
}

/// Where encoded bytes go.
trait Sink {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError>;
}

/// Writes into a caller's buffer, never past its end.
struct Cursor<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Sink for Cursor<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(EncodeError::BufferFull)?;
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(EncodeError::BufferFull)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// Counts bytes only.
struct Counter {
    len: usize,
}

impl Sink for Counter {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.len = self
            .len
            .checked_add(bytes.len())
            .ok_or(EncodeError::BufferFull)?;
        Ok(())
    }
}

fn write_message<S: Sink>(msg: &Message<'_>, s: &mut S) -> Result<(), EncodeError> {
    match msg {
        Message::Register(r) => {
            s.put(b"{\"notification\":")?;
            put_str(s, &r.notification)?;
            s.put(b",\"priority\":")?;
            put_i32(s, r.priority)?;
            s.put(b",\"to\":")?;
            put_str(s, &r.to)?;
            s.put(b",\"type\":\"register\"}")
        }
        Message::Unregister(u) => {
            s.put(b"{\"notification\":")?;
            put_str(s, &u.notification)?;
            s.put(b",\"to\":")?;
            put_str(s, &u.to)?;
            s.put(b",\"type\":\"unregister\"}")
        }
        Message::Notify(n) => write_notify(s, n, b",\"type\":\"notify\"}"),
        Message::UnicastError(n) => write_notify(s, n, b",\"type\":\"unicast_error\"}"),
        _ => Err(EncodeError::Unsupported),
    }
}

fn write_notify<S: Sink>(s: &mut S, n: &Notify<'_>, type_tail: &[u8]) -> Result<(), EncodeError> {
    s.put(b"{\"flags\":")?;
    put_u64(s, u64::from(n.flags))?;
    s.put(b",\"from\":")?;
    put_str(s, &n.from)?;
    s.put(b",\"notification\":")?;
    put_str(s, &n.notification)?;
    s.put(b",\"parameter\":")?;
    s.put(
        n.parameter
            .as_str()
            .trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
            .as_bytes(),
    )?;
    if let Some(r) = n.reference {
        s.put(b",\"reference\":")?;
        put_u64(s, r)?;
    }
    s.put(b",\"to\":")?;
    put_str(s, n.to.as_str())?;
    s.put(type_tail)
}

/// A JSON string: quotes, and escapes for `"`, `\` and control characters.
fn put_str<S: Sink>(s: &mut S, text: &str) -> Result<(), EncodeError> {
    s.put(b"\"")?;
    let b = text.as_bytes();
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: [u8; 6];
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0..=0x1f => {
                esc = [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    hex_digit(c >> 4),
                    hex_digit(c & 0xf),
                ];
                &esc
            }
            _ => continue,
        };
        s.put(b.get(run..i).unwrap_or_default())?;
        s.put(esc)?;
        run = i + 1;
    }
    s.put(b.get(run..).unwrap_or_default())?;
    s.put(b"\"")
}

#[inline]
fn hex_digit(n: u8) -> u8 {
    if n < 10 {
        b'0' + n
    } else {
        b'a' + (n - 10)
    }
}

fn put_i32<S: Sink>(s: &mut S, v: i32) -> Result<(), EncodeError> {
    if v < 0 {
        s.put(b"-")?;
    }
    put_u64(s, u64::from(v.unsigned_abs()))
}

fn put_u64<S: Sink>(s: &mut S, mut v: u64) -> Result<(), EncodeError> {
    let mut buf = [0u8; 20];
    let mut len = 0;
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
        len += 1;
        if v == 0 {
            break;
        }
    }
    s.put(buf.get(buf.len() - len..).unwrap_or_default())
}
