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
//!   kept as its exact text in the body. It may nest
//!   [`scan::MAX_DEPTH`] deep, like any [`RawJson`]; the body around it
//!   does not count.
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

/// The reference of a JSON notify body; see [`super::notify_reference`].
/// Walks the members (stopping at the first error) and keeps the first
/// `type` and `reference` it meets.
pub(super) fn notify_reference(body: &[u8]) -> Option<u64> {
    let text = core::str::from_utf8(body).ok()?;
    let mut notify = None;
    let mut reference = None;
    for m in scan::object_members(text)? {
        let m = m.ok()?;
        match slot_of(&m.key) {
            Some(TYPE) if notify.is_none() => {
                let ty = m.value.as_string()?;
                let kind = match ty.as_plain() {
                    Some(name) => kind_by_name(name),
                    None => kind_by_name(&ty.unescape::<16>().ok()?),
                };
                notify = Some(matches!(kind, Some(Kind::Notify)));
            }
            Some(REFERENCE) if reference.is_none() => reference = m.value.as_u64(),
            _ => {}
        }
        if let (Some(n), Some(_)) = (notify, reference) {
            return reference.filter(|_| n);
        }
    }
    reference.filter(|_| notify == Some(true))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::scan::JsonErrorKind;
    use std::format;
    use std::string::{String, ToString};
    use std::vec::Vec;

    const EXAMPLE: &[u8] = br#"{"notification":"test","priority":1,"to":"xyz","type":"register"}"#;

    fn app(s: &str) -> AppId {
        AppId::new(s).unwrap()
    }

    fn nid(s: &str) -> NotificationId {
        NotificationId::new(s).unwrap()
    }

    fn enc(m: &Message<'_>) -> String {
        let mut buf = [0u8; 1024];
        let n = encode(m, &mut buf).unwrap();
        assert_eq!(encoded_len(m), Ok(n));
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn dec(s: &str) -> Result<Message<'_>, DecodeError> {
        decode(s.as_bytes())
    }

    fn sample_notify() -> Notify<'static> {
        Notify {
            from: app("pay"),
            to: Destination::One,
            notification: nid("card"),
            flags: 7,
            reference: Some(42),
            parameter: RawJson::new(r#"{"a":[1,2]}"#).unwrap(),
        }
    }

    #[test]
    fn documented_example() {
        assert_eq!(EXAMPLE.len(), 65);
        let m = decode(EXAMPLE).unwrap();
        assert_eq!(
            m,
            Message::Register(Register {
                to: app("xyz"),
                notification: nid("test"),
                priority: 1,
            })
        );
        assert_eq!(enc(&m).as_bytes(), EXAMPLE);
        assert_eq!(encoded_len(&m), Ok(65));
    }

    #[test]
    fn encodings_are_pinned() {
        let u = Message::Unregister(Unregister {
            to: app("xyz"),
            notification: nid("test"),
        });
        assert_eq!(
            enc(&u),
            r#"{"notification":"test","to":"xyz","type":"unregister"}"#
        );
        let n = sample_notify();
        assert_eq!(
            enc(&Message::Notify(n.clone())),
            r#"{"flags":7,"from":"pay","notification":"card","parameter":{"a":[1,2]},"reference":42,"to":"1","type":"notify"}"#
        );
        let n = Notify {
            reference: None,
            to: Destination::All,
            ..n
        };
        assert_eq!(
            enc(&Message::UnicastError(n)),
            r#"{"flags":7,"from":"pay","notification":"card","parameter":{"a":[1,2]},"to":"*","type":"unicast_error"}"#
        );
        let r = Message::Register(Register {
            to: app("a"),
            notification: nid("b"),
            priority: i32::MIN,
        });
        assert_eq!(
            enc(&r),
            r#"{"notification":"b","priority":-2147483648,"to":"a","type":"register"}"#
        );
        let n = Notify {
            flags: u32::MAX,
            reference: Some(u64::MAX),
            ..sample_notify()
        };
        assert!(enc(&Message::Notify(n)).contains(r#""flags":4294967295,"#));
        let n = Notify {
            flags: 0,
            reference: Some(0),
            ..sample_notify()
        };
        let s = enc(&Message::Notify(n));
        assert!(
            s.contains(r#""flags":0,"#) && s.contains(r#""reference":0,"#),
            "{s}"
        );
    }

    /// Calls `f` with every permutation of `items` (Heap's algorithm).
    fn permutations<T: Clone>(items: &[T], mut f: impl FnMut(&[T])) {
        let mut a = items.to_vec();
        let n = a.len();
        let mut c = std::vec![0usize; n];
        f(&a);
        let mut i = 0;
        while i < n {
            if c[i] < i {
                if i % 2 == 0 {
                    a.swap(0, i);
                } else {
                    a.swap(c[i], i);
                }
                f(&a);
                c[i] += 1;
                i = 0;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
    }

    #[test]
    fn every_member_order() {
        let reg = [
            r#""type":"register""#,
            r#""to":"xyz""#,
            r#""notification":"test""#,
            r#""priority":1"#,
        ];
        let want = decode(EXAMPLE).unwrap();
        let mut count = 0;
        permutations(&reg, |p| {
            let body = format!("{{{}}}", p.join(","));
            assert_eq!(dec(&body).unwrap(), want, "{body}");
            count += 1;
        });
        assert_eq!(count, 24);

        let notify = [
            r#""type":"notify""#,
            r#""from":"pay""#,
            r#""to":"1""#,
            r#""notification":"card""#,
            r#""flags":7"#,
            r#""reference":42"#,
            r#""parameter":{"a":[1,2]}"#,
        ];
        let want = Message::Notify(sample_notify());
        let mut count = 0;
        permutations(&notify, |p| {
            let body = format!("{{ {} }}", p.join(" ,\n"));
            assert_eq!(dec(&body).unwrap(), want, "{body}");
            count += 1;
        });
        assert_eq!(count, 5040);
    }

    #[test]
    fn defaults_and_optionals() {
        let m = dec(r#"{"type":"register","to":"a","notification":"n"}"#).unwrap();
        assert!(matches!(m, Message::Register(Register { priority: 0, .. })));
        let m = dec(r#"{"type":"notify","from":"a","to":"*","notification":"n"}"#).unwrap();
        let Message::Notify(n) = m else { panic!() };
        assert_eq!(n.flags, 0);
        assert_eq!(n.reference, None);
        assert_eq!(n.parameter, RawJson::EMPTY_OBJECT);
        assert_eq!(n.to, Destination::All);
        let m = dec(r#"{"type":"notify","from":"a","to":"b","notification":"n","reference":null,"parameter":null}"#).unwrap();
        let Message::Notify(n) = m else { panic!() };
        assert_eq!(n.reference, None);
        assert_eq!(n.parameter, RawJson::NULL);
        assert_eq!(n.to, Destination::App(app("b")));
        let m = dec(r#"{"type":"register","to":"a","notification":"n","priority":-0}"#).unwrap();
        assert!(matches!(m, Message::Register(Register { priority: 0, .. })));
        let m = dec(r#"{"type":"register","to":"a","notification":"n","priority":-2147483648}"#)
            .unwrap();
        assert!(matches!(
            m,
            Message::Register(Register {
                priority: i32::MIN,
                ..
            })
        ));
    }

    #[test]
    fn unicast_error_decodes() {
        let m = dec(r#"{"type":"unicast_error","from":"pay","to":"1","notification":"card","flags":7,"reference":42,"parameter":{"a":[1,2]}}"#).unwrap();
        assert_eq!(m, Message::UnicastError(sample_notify()));
    }

    #[test]
    fn parameter_of_every_kind_round_trips_as_text() {
        for p in [
            "{}",
            r#"{"k":"v","n":[1,{"x":null}]}"#,
            "[]",
            r#"[1, "two", [3]]"#,
            r#""text""#,
            r#""esc\"aped\\ \u00e9 \ud83d\ude00""#,
            "0",
            "-12.5e-3",
            "true",
            "false",
            "null",
            "{ \"spaced\" : [ 1 , 2 ] }",
        ] {
            let body = format!(
                r#"{{"type":"notify","from":"a","to":"*","notification":"n","parameter":{p}}}"#
            );
            let m = dec(&body).unwrap();
            let Message::Notify(n) = &m else { panic!() };
            assert_eq!(n.parameter.as_str(), p);
            // No copy: the parameter points into the body.
            let start = body.find(p).unwrap();
            assert!(core::ptr::eq(
                n.parameter.as_str(),
                &body[start..start + p.len()]
            ));
            let again = enc(&m);
            assert!(again.contains(&format!(r#""parameter":{p},"#)), "{again}");
            assert_eq!(dec(&again).unwrap(), m);
        }
    }

    #[test]
    fn deepest_parameter_survives_a_message() {
        let deep = format!(
            "{}{}",
            "[".repeat(scan::MAX_DEPTH),
            "]".repeat(scan::MAX_DEPTH)
        );
        let m = Message::Notify(Notify {
            parameter: RawJson::new(&deep).unwrap(),
            ..sample_notify()
        });
        let body = enc(&m);
        assert_eq!(dec(&body).unwrap(), m);
        let deeper = format!("[{deep}]");
        assert!(RawJson::new(&deeper).is_err());
        let body = body.replace(&deep, &deeper);
        assert!(matches!(
            dec(&body),
            Err(DecodeError::Json(scan::JsonError {
                kind: JsonErrorKind::TooDeep,
                ..
            }))
        ));
    }

    #[test]
    fn parameter_whitespace_is_trimmed_on_encode() {
        let m = Message::Notify(Notify {
            parameter: RawJson::new(" \n[1, 2]\t ").unwrap(),
            ..sample_notify()
        });
        let s = enc(&m);
        assert!(s.contains(r#""parameter":[1, 2],"#), "{s}");
    }

    #[test]
    fn missing_members() {
        use DecodeError::MissingMember as M;
        assert_eq!(dec("{}"), Err(M("type")));
        assert_eq!(dec(r#"{"to":"a","notification":"n"}"#), Err(M("type")));
        assert_eq!(
            dec(r#"{"type":"register","notification":"n"}"#),
            Err(M("to"))
        );
        assert_eq!(
            dec(r#"{"type":"register","to":"a"}"#),
            Err(M("notification"))
        );
        assert_eq!(
            dec(r#"{"type":"unregister","to":"a"}"#),
            Err(M("notification"))
        );
        assert_eq!(
            dec(r#"{"type":"unregister","notification":"n"}"#),
            Err(M("to"))
        );
        let full = [
            ("from", r#""from":"a""#),
            ("to", r#""to":"b""#),
            ("notification", r#""notification":"n""#),
        ];
        for ty in ["notify", "unicast_error"] {
            for (name, _) in full {
                let rest: Vec<&str> = full
                    .iter()
                    .filter(|(n, _)| *n != name)
                    .map(|(_, m)| *m)
                    .collect();
                let body = format!(r#"{{"type":"{ty}",{}}}"#, rest.join(","));
                assert_eq!(dec(&body), Err(M(name)), "{body}");
            }
        }
    }

    #[test]
    fn wrong_types() {
        use DecodeError::WrongType as W;
        let base = r#""type":"notify","from":"a","to":"b","notification":"n""#;
        assert_eq!(dec(r#"{"type":1}"#), Err(W("type")));
        assert_eq!(dec(r#"{"type":null}"#), Err(W("type")));
        assert_eq!(dec(r#"{"type":["notify"]}"#), Err(W("type")));
        for (name, bad) in [
            ("from", "1"),
            ("from", "null"),
            ("from", "{}"),
            ("to", "1"),
            ("to", "[\"b\"]"),
            ("notification", "true"),
            ("flags", "\"1\""),
            ("flags", "-1"),
            ("flags", "4294967296"),
            ("flags", "1.0"),
            ("flags", "1e2"),
            ("flags", "null"),
            ("reference", "-1"),
            ("reference", "18446744073709551616"),
            ("reference", "\"5\""),
            ("reference", "0.5"),
            ("reference", "false"),
        ] {
            // The later duplicate would be a DuplicateMember; replace instead.
            let body = if base.contains(&format!("\"{name}\":")) {
                let mut members: Vec<String> = base.split(',').map(ToString::to_string).collect();
                for m in &mut members {
                    if m.starts_with(&format!("\"{name}\":")) {
                        *m = format!("\"{name}\":{bad}");
                    }
                }
                format!("{{{}}}", members.join(","))
            } else {
                format!("{{{base},\"{name}\":{bad}}}")
            };
            assert_eq!(dec(&body), Err(W(name)), "{body}");
        }
        let reg = r#""type":"register","to":"a","notification":"n""#;
        for bad in ["2147483648", "-2147483649", "1.5", "\"1\"", "null", "1E0"] {
            let body = format!("{{{reg},\"priority\":{bad}}}");
            assert_eq!(dec(&body), Err(W("priority")), "{body}");
        }
        assert_eq!(
            dec(r#"{"type":"register","to":5,"notification":"n"}"#),
            Err(W("to"))
        );
    }

    #[test]
    fn invalid_ids() {
        use DecodeError::InvalidId as I;
        assert_eq!(
            dec(r#"{"type":"register","to":"1","notification":"n"}"#),
            Err(I("to", IdError::Reserved))
        );
        assert_eq!(
            dec(r#"{"type":"register","to":"*","notification":"n"}"#),
            Err(I("to", IdError::Reserved))
        );
        assert_eq!(
            dec(r#"{"type":"register","to":"","notification":"n"}"#),
            Err(I("to", IdError::Empty))
        );
        assert_eq!(
            dec(r#"{"type":"unregister","to":"a","notification":""}"#),
            Err(I("notification", IdError::Empty))
        );
        assert_eq!(
            dec(r#"{"type":"notify","from":"*","to":"b","notification":"n"}"#),
            Err(I("from", IdError::Reserved))
        );
        // A raw newline is not JSON; an escaped one breaks the ID rules.
        let raw_nl = "{\"type\":\"notify\",\"from\":\"a\",\"to\":\"b\n\",\"notification\":\"n\"}";
        assert_eq!(
            dec(raw_nl),
            Err(DecodeError::Json(crate::msg::scan::JsonError {
                offset: raw_nl.find('\n').unwrap(),
                kind: JsonErrorKind::ControlCharacter
            }))
        );
        assert_eq!(
            dec(r#"{"type":"notify","from":"a","to":"b\n","notification":"n"}"#),
            Err(I("to", IdError::ControlChar))
        );
        assert_eq!(
            dec(r#"{"type":"notify","from":"a\u0000","to":"b","notification":"n"}"#),
            Err(I("from", IdError::ControlChar))
        );
        assert_eq!(
            dec(r#"{"type":"notify","from":"a\u0085","to":"b","notification":"n"}"#),
            Err(I("from", IdError::ControlChar))
        );
        let long = "x".repeat(65);
        let body = format!(r#"{{"type":"register","to":"{long}","notification":"n"}}"#);
        assert_eq!(dec(&body), Err(I("to", IdError::TooLong)));
        // 64 bytes once decoded, but longer as written: accepted.
        let at_max = "\\u00e9".repeat(32);
        let body = format!(r#"{{"type":"register","to":"{at_max}","notification":"n"}}"#);
        let Message::Register(r) = dec(&body).unwrap() else {
            panic!()
        };
        assert_eq!(r.to.as_str(), "é".repeat(32));
        let over = format!("{at_max}x");
        let body = format!(r#"{{"type":"register","to":"{over}","notification":"n"}}"#);
        assert_eq!(dec(&body), Err(I("to", IdError::TooLong)));
        // An escaped selector is still a selector.
        let m =
            dec(r#"{"type":"notify","from":"a","to":"\u002a","notification":"\u0031"}"#).unwrap();
        let Message::Notify(n) = m else { panic!() };
        assert_eq!(n.to, Destination::All);
        assert_eq!(n.notification.as_str(), "1");
    }

    #[test]
    fn escaped_ids_and_keys() {
        let body = r#"{"t\u0079pe":"re\u0067ister","to":"a\"b\\c\/d","notific\u0061tion":"\u65e5\ud83d\ude00 x"}"#;
        let m = dec(body).unwrap();
        let want = Message::Register(Register {
            to: app("a\"b\\c/d"),
            notification: nid("日😀 x"),
            priority: 0,
        });
        assert_eq!(m, want);
        let again = enc(&m);
        assert_eq!(
            again,
            r#"{"notification":"日😀 x","priority":0,"to":"a\"b\\c/d","type":"register"}"#
        );
        assert_eq!(dec(&again).unwrap(), want);
    }

    #[test]
    fn duplicates() {
        use DecodeError::DuplicateMember as D;
        assert_eq!(
            dec(r#"{"type":"register","type":"register","to":"a","notification":"n"}"#),
            Err(D("type"))
        );
        assert_eq!(dec(r#"{"type":"x","type":"y"}"#), Err(D("type")));
        assert_eq!(
            dec(r#"{"type":"register","to":"a","notification":"n","to":"b"}"#),
            Err(D("to"))
        );
        assert_eq!(
            dec(r#"{"type":"register","to":"a","notification":"n","priority":1,"priority":1}"#),
            Err(D("priority"))
        );
        // Escapes do not hide a duplicate.
        assert_eq!(
            dec(r#"{"type":"register","to":"a","notification":"n","\u0074o":"b"}"#),
            Err(D("to"))
        );
        assert_eq!(
            dec(
                r#"{"type":"notify","from":"a","to":"b","notification":"n","parameter":1,"parameter":2}"#
            ),
            Err(D("parameter"))
        );
        assert_eq!(
            dec(
                r#"{"type":"notify","from":"a","to":"b","notification":"n","reference":null,"reference":null}"#
            ),
            Err(D("reference"))
        );
        // Duplicates of members the message does not have are extras.
        assert!(matches!(
            dec(
                r#"{"type":"register","to":"a","notification":"n","flags":1,"flags":"x","from":1,"from":2}"#
            ),
            Ok(Message::Register(_))
        ));
        assert!(matches!(
            dec(r#"{"type":"unregister","to":"a","notification":"n","priority":1,"priority":2}"#),
            Ok(Message::Unregister(_))
        ));
        assert!(matches!(
            dec(r#"{"type":"future","to":1,"to":2}"#),
            Ok(Message::Unknown("future"))
        ));
        // Unknown members may repeat.
        assert!(matches!(
            dec(r#"{"type":"register","to":"a","notification":"n","x":1,"x":2}"#),
            Ok(Message::Register(_))
        ));
    }

    #[test]
    fn unknown_types_and_extras() {
        assert_eq!(dec(r#"{"type":"hello"}"#), Ok(Message::Unknown("hello")));
        assert_eq!(dec(r#"{"type":""}"#), Ok(Message::Unknown("")));
        assert_eq!(
            dec(r#"{"type":"Register"}"#),
            Ok(Message::Unknown("Register"))
        );
        assert_eq!(
            dec(r#"{"type":"x\u00e9\n","to":5}"#),
            Ok(Message::Unknown("x\\u00e9\\n"))
        );
        assert_eq!(
            dec(r#"{"type":"a-very-long-type-name-indeed"}"#),
            Ok(Message::Unknown("a-very-long-type-name-indeed"))
        );
        assert_eq!(
            dec(r#"{"type":"unicast\u005ferror","from":"a","to":"1","notification":"n"}"#)
                .map(|m| m.kind()),
            Ok("unicast_error")
        );
        let m = dec(
            r#"{"x":{"y":[1,2,{"z":null}]},"type":"unregister","to":"a","notification":"n","priority":"ignored","extra":"\ud83d\ude00"}"#,
        );
        assert!(matches!(m, Ok(Message::Unregister(_))));
        assert!(Message::Unknown("x").in_json_protocol());
        let mut buf = [0u8; 64];
        assert_eq!(
            encode(&Message::Unknown("x"), &mut buf),
            Err(EncodeError::Unsupported)
        );
        assert_eq!(
            encoded_len(&Message::Unknown("x")),
            Err(EncodeError::Unsupported)
        );
    }

    #[test]
    fn not_json_not_object_not_utf8() {
        assert_eq!(decode(b"{\"type\":\"\xff\"}"), Err(DecodeError::NotUtf8));
        assert_eq!(
            decode(b"\xef\xbb\xbf{}"),
            Err(DecodeError::Json(crate::msg::scan::JsonError {
                offset: 0,
                kind: JsonErrorKind::UnexpectedByte,
            }))
        );
        for body in ["[]", "1", "\"type\"", "null", " true "] {
            assert_eq!(dec(body), Err(DecodeError::NotAnObject), "{body}");
        }
        for body in [
            "",
            " ",
            "{",
            "[",
            "{\"type\":\"register\",}",
            "{\"type\":\"register\"} {}",
            "nope",
            "{\"type\":'x'}",
            "{\"type\":\"notify\",\"parameter\":[1,]}",
        ] {
            assert!(matches!(dec(body), Err(DecodeError::Json(_))), "{body}");
        }
        // The whole body is validated even when the message is complete.
        assert!(matches!(
            dec(r#"{"type":"register","to":"a","notification":"n","x":01}"#),
            Err(DecodeError::Json(_))
        ));
    }

    #[test]
    fn compact_only_messages_are_unsupported() {
        let mut buf = [0u8; 256];
        for m in [
            Message::Hello(crate::msg::Hello {
                version: 1,
                app_id: None,
                acks: false,
            }),
            Message::Observe(true),
            Message::UnicastErrors(false),
            Message::Ack(1),
            Message::StatusRequest,
            Message::Status(crate::msg::Status::default()),
        ] {
            assert_eq!(encode(&m, &mut buf), Err(EncodeError::Unsupported));
            assert_eq!(encoded_len(&m), Err(EncodeError::Unsupported));
        }
    }

    #[test]
    fn buffer_full_at_every_short_length() {
        let m = Message::Notify(Notify {
            from: app("a\"b"),
            ..sample_notify()
        });
        let n = encoded_len(&m).unwrap();
        let mut buf = std::vec![0u8; n];
        for len in 0..n {
            assert_eq!(
                encode(&m, &mut buf[..len]),
                Err(EncodeError::BufferFull),
                "{len}"
            );
        }
        assert_eq!(encode(&m, &mut buf), Ok(n));
        assert_eq!(decode(&buf).unwrap(), m);
    }

    #[test]
    fn string_escaping() {
        let mut out = Counter { len: 0 };
        put_str(&mut out, "a\"\\\u{1}\u{1f}\u{7f}é").unwrap();
        let mut buf = [0u8; 64];
        let mut c = Cursor {
            buf: &mut buf,
            len: 0,
        };
        put_str(&mut c, "a\"\\\u{1}\u{1f}\u{7f}é").unwrap();
        let n = c.len;
        assert_eq!(n, out.len);
        let s = core::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(s, "\"a\\\"\\\\\\u0001\\u001f\u{7f}é\"");
        let back: String = serde_json::from_str(s).unwrap();
        assert_eq!(back, "a\"\\\u{1}\u{1f}\u{7f}é");
    }

    #[test]
    fn integers_written() {
        for v in [0u64, 1, 9, 10, 99, 100, 12345, u64::MAX] {
            let mut buf = [0u8; 32];
            let mut c = Cursor {
                buf: &mut buf,
                len: 0,
            };
            put_u64(&mut c, v).unwrap();
            let n = c.len;
            assert_eq!(core::str::from_utf8(&buf[..n]).unwrap(), v.to_string());
        }
        for v in [0i32, -1, 1, i32::MIN, i32::MAX] {
            let mut buf = [0u8; 32];
            let mut c = Cursor {
                buf: &mut buf,
                len: 0,
            };
            put_i32(&mut c, v).unwrap();
            let n = c.len;
            assert_eq!(core::str::from_utf8(&buf[..n]).unwrap(), v.to_string());
        }
    }
}
