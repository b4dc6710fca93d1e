//! Property tests across the message layer: round trips of every message in
//! both encodings, agreement with `serde_json`, and no panics on any input.

use std::format;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::scan::{self, ValueKind};
use super::*;
use crate::ids::{AppId, Destination, NotificationId, MAX_ID_LEN};

// ---------------------------------------------------------------- strategies

/// Characters for identifiers: mostly plain, plus the ones that need JSON
/// escapes, non-ASCII, and anything that is not a control character.
fn id_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range('a', 'z'),
        2 => proptest::sample::select(std::vec![
            '"', '\\', '/', ' ', '1', '*', '\'', 'é', 'ß', '日', '😀', '\u{2028}', '\u{a0}', '\u{ffff}',
        ]),
        2 => any::<char>().prop_filter("control", |c| !c.is_control()),
    ]
}

/// A string satisfying the identifier rules (possibly "1" or "*").
fn id_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(id_char(), 1..70).prop_map(|cs| {
        let mut s = String::new();
        for c in cs {
            if s.len() + c.len_utf8() > MAX_ID_LEN {
                break;
            }
            s.push(c);
        }
        s
    })
}

fn app_id() -> impl Strategy<Value = AppId> {
    id_string().prop_filter_map("reserved", |s| AppId::new(&s).ok())
}

fn notification_id() -> impl Strategy<Value = NotificationId> {
    prop_oneof![
        8 => id_string(),
        1 => Just("1".to_string()),
        1 => Just("*".to_string()),
    ]
    .prop_map(|s| NotificationId::new(&s).unwrap())
}

fn destination() -> impl Strategy<Value = Destination> {
    prop_oneof![
        1 => Just(Destination::One),
        1 => Just(Destination::All),
        4 => app_id().prop_map(Destination::App),
    ]
}

/// Whitespace as JSON allows it between tokens.
fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        6 => Just(""),
        2 => Just(" "),
        1 => Just("\n\t "),
        1 => Just("\r\n"),
    ]
}

/// The text of a JSON string, with every kind of escape.
fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        1 => proptest::collection::vec(
            proptest::sample::select(std::vec![
                "a", "é", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0000",
                "\\u001F", "\\u00e9", "\\uFFFF", "\\ud83d\\ude00", "\\uDBFF\\uDFFF", "😀", "\u{7f}",
            ]),
            0..8
        )
        .prop_map(|parts| format!("\"{}\"", parts.concat())),
    ]
}

fn json_number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("-0".to_string()),
        (any::<i32>(), 0u32..100_000, -30i32..30).prop_map(|(i, f, e)| format!("{i}.{f}e{e}")),
        (any::<i16>(), 0u32..1000).prop_map(|(i, f)| format!("{i}.{f:03}")),
        (0u8..10, -5i8..5).prop_map(|(i, e)| format!("{i}E+{}", e.unsigned_abs())),
    ]
}

/// The text of an arbitrary JSON value, whitespace inside but not around.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        json_number(),
        json_string(),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec((ws(), inner.clone(), ws()), 0..6).prop_map(|items| {
                let items: Vec<String> = items
                    .into_iter()
                    .map(|(a, v, b)| format!("{a}{v}{b}"))
                    .collect();
                format!("[{}]", items.join(","))
            }),
            proptest::collection::vec((ws(), json_string(), ws(), ws(), inner, ws()), 0..6)
                .prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(a, k, b, c, v, d)| format!("{a}{k}{b}:{c}{v}{d}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
        ]
    })
}

/// A notify without its parameter, which the test owns as a `String`.
#[derive(Debug, Clone)]
struct NotifySpec {
    from: AppId,
    to: Destination,
    notification: NotificationId,
    flags: u32,
    reference: Option<u64>,
    parameter: String,
}

impl NotifySpec {
    fn notify(&self) -> Notify<'_> {
        Notify {
            from: self.from.clone(),
            to: self.to.clone(),
            notification: self.notification.clone(),
            flags: self.flags,
            reference: self.reference,
            parameter: RawJson::new(&self.parameter).unwrap(),
        }
    }
}

/// An owned description of a message, so the parameter text can outlive it.
#[derive(Debug, Clone)]
enum Spec {
    Plain(Message<'static>),
    Notify(NotifySpec),
    UnicastError(NotifySpec),
}

impl Spec {
    fn message(&self) -> Message<'_> {
        match self {
            Spec::Plain(m) => m.clone(),
            Spec::Notify(n) => Message::Notify(n.notify()),
            Spec::UnicastError(n) => Message::UnicastError(n.notify()),
        }
    }
}

fn notify_spec(parameter: BoxedStrategy<String>) -> impl Strategy<Value = NotifySpec> {
    (
        app_id(),
        destination(),
        notification_id(),
        any::<u32>(),
        any::<Option<u64>>(),
        parameter,
    )
        .prop_map(
            |(from, to, notification, flags, reference, parameter)| NotifySpec {
                from,
                to,
                notification,
                flags,
                reference,
                parameter,
            },
        )
}

/// The messages of the JSON protocol (5.2), parameters without outer
/// whitespace.
fn json_spec() -> impl Strategy<Value = Spec> {
    let param = json_value().boxed();
    prop_oneof![
        (app_id(), notification_id(), any::<i32>()).prop_map(|(to, notification, priority)| {
            Spec::Plain(Message::Register(Register {
                to,
                notification,
                priority,
            }))
        }),
        (app_id(), notification_id()).prop_map(|(to, notification)| Spec::Plain(
            Message::Unregister(Unregister { to, notification })
        )),
        notify_spec(param.clone()).prop_map(Spec::Notify),
        notify_spec(param).prop_map(Spec::UnicastError),
    ]
}

/// Every message with a compact form; parameters may carry outer whitespace.
fn compact_spec() -> impl Strategy<Value = Spec> {
    let param = (ws(), json_value(), ws())
        .prop_map(|(a, v, b)| format!("{a}{v}{b}"))
        .boxed();
    let status = (
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        ),
        (any::<u64>(), any::<u64>(), any::<u64>()),
    )
        .prop_map(|((a, b, c, d, e), (f, g, h))| Status {
            local_connections: a,
            remote_connections: b,
            registrations: c,
            remote_registrations: d,
            observers: e,
            delivered: f,
            dropped: g,
            unicast_errors: h,
        });
    prop_oneof![
        json_spec(),
        notify_spec(param.clone()).prop_map(Spec::Notify),
        notify_spec(param).prop_map(Spec::UnicastError),
        (any::<u16>(), proptest::option::of(app_id()), any::<bool>()).prop_map(
            |(version, app_id, acks)| Spec::Plain(Message::Hello(Hello {
                version,
                app_id,
                acks
            }))
        ),
        any::<bool>().prop_map(|b| Spec::Plain(Message::Observe(b))),
        any::<bool>().prop_map(|b| Spec::Plain(Message::UnicastErrors(b))),
        any::<u64>().prop_map(|r| Spec::Plain(Message::Ack(r))),
        Just(Spec::Plain(Message::StatusRequest)),
        status.prop_map(|s| Spec::Plain(Message::Status(s))),
        (
            app_id(),
            proptest::option::of(app_id()),
            notification_id(),
            any::<u32>()
        )
            .prop_map(|(from, to, notification, flags)| {
                Spec::Plain(Message::Observed(Observation {
                    from,
                    to,
                    notification,
                    flags,
                }))
            }),
        Just(Spec::Plain(Message::ConnectionsRequest)),
        (
            (any::<u32>(), any::<bool>(), peer_addr()),
            (proptest::option::of(app_id()), any::<u32>(), any::<bool>()),
        )
            .prop_map(|((id, remote, peer), (app_id, registrations, observer))| {
                Spec::Plain(Message::Connection(ConnectionReport {
                    id,
                    remote,
                    peer,
                    app_id,
                    registrations,
                    observer,
                }))
            }),
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(a, b, c, d)| {
            Spec::Plain(Message::ConnectionsEnd(ProtectionCounters {
                refused: a,
                remote_refused: b,
                rate_limited: c,
                oversize: d,
            }))
        }),
        any::<u32>().prop_map(|max_frame| Spec::Plain(Message::Welcome(Welcome { max_frame }))),
        (any::<u32>(), app_id(), notification_id(), any::<i32>()).prop_map(
            |(conn, to, notification, priority)| {
                Spec::Plain(Message::Registration(RegistrationReport {
                    conn,
                    to,
                    notification,
                    priority,
                }))
            }
        ),
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(a, b, c, d)| {
            Spec::Plain(Message::TlsCounters(TlsCounters {
                accepted: a,
                failed: b,
                timed_out: c,
                over_limit: d,
            }))
        }),
    ]
}

/// Any peer address.
fn peer_addr() -> impl Strategy<Value = PeerAddr> {
    prop_oneof![
        Just(PeerAddr::Unknown),
        Just(PeerAddr::UnixUnknown),
        (any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(pid, uid, gid)| PeerAddr::Unix(Credentials { pid, uid, gid })),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| PeerAddr::Tcp { ip, port }),
    ]
}

/// Bytes that look a lot like JSON.
fn jsonish_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            8 => proptest::sample::select(b"{}[],:\"\\ \t\n0123456789-+.eEtrufalsnu/bxD".to_vec()),
            1 => any::<u8>(),
        ],
        0..24,
    )
}

/// Strings of JSON-ish tokens: structure, number parts, and string
/// literals made of escapes, surrogate halves and odd characters.
fn jsonish_tokens() -> impl Strategy<Value = Vec<u8>> {
    let string = proptest::collection::vec(
        proptest::sample::select(std::vec![
            "a", "\\ud83d", "\\ude00", "\\uDBFF", "\\uDFFF", "\\u0041", "\\u00", "\\u", "\\n",
            "\\x", "\\", "\\\"", "\u{1}", "\u{1f}", "\u{7f}", "é", "\u{ffff}",
        ]),
        0..4,
    )
    .prop_map(|parts| format!("\"{}\"", parts.concat()));
    let token = prop_oneof![
        2 => string,
        3 => proptest::sample::select(std::vec![
            "{", "}", "[", "]", ",", ":", " ", "0", "1", "-", ".", "e", "+", "true", "nul", "null", "\"",
        ])
        .prop_map(ToString::to_string),
    ];
    proptest::collection::vec(token, 0..8).prop_map(|parts| parts.concat().into_bytes())
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
            (
                any::<usize>(),
                proptest::sample::select(b"{}[],:\"\\ 0-.e".to_vec())
            )
                .prop_map(|(i, b)| Edit::Insert(i, b)),
            any::<usize>().prop_map(Edit::Delete),
        ],
        1..4,
    )
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len();
        match *e {
            Edit::Replace(i, b) if len > 0 => bytes[i % len] = b,
            Edit::Insert(i, b) => bytes.insert(i % (len + 1), b),
            Edit::Delete(i) if len > 0 => {
                bytes.remove(i % len);
            }
            _ => {}
        }
    }
    bytes
}

/// serde_json's verdict; `None` where it differs from RFC 8259 on purpose
/// (numbers too large for an `f64`).
fn serde_json_accepts(bytes: &[u8]) -> Option<bool> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(_) => Some(true),
        Err(e) if e.to_string().contains("number out of range") => None,
        Err(_) => Some(false),
    }
}

/// Checks an encoded JSON body with an independent parser.
fn check_with_serde_json(body: &[u8], m: &Message<'_>) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj["type"], m.kind());
    let s = |k: &str| obj[k].as_str().unwrap().to_string();
    match m {
        Message::Register(r) => {
            assert_eq!(obj.len(), 4);
            assert_eq!(s("to"), r.to.as_str());
            assert_eq!(s("notification"), r.notification.as_str());
            assert_eq!(obj["priority"].as_i64(), Some(i64::from(r.priority)));
        }
        Message::Unregister(u) => {
            assert_eq!(obj.len(), 3);
            assert_eq!(s("to"), u.to.as_str());
            assert_eq!(s("notification"), u.notification.as_str());
        }
        Message::Notify(n) | Message::UnicastError(n) => {
            assert_eq!(obj.len(), 6 + usize::from(n.reference.is_some()));
            assert_eq!(s("from"), n.from.as_str());
            assert_eq!(s("to"), n.to.as_str());
            assert_eq!(s("notification"), n.notification.as_str());
            assert_eq!(obj["flags"].as_u64(), Some(u64::from(n.flags)));
            assert_eq!(obj.get("reference").and_then(|r| r.as_u64()), n.reference);
            let p: serde_json::Value = serde_json::from_str(n.parameter.as_str()).unwrap();
            assert_eq!(obj["parameter"], p);
        }
        _ => unreachable!(),
    }
}

// --------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn json_round_trip(spec in json_spec()) {
        let m = spec.message();
        prop_assert!(m.in_json_protocol());
        let n = json::encoded_len(&m).unwrap();
        let mut buf = std::vec![0u8; n];
        prop_assert_eq!(json::encode(&m, &mut buf), Ok(n));
        prop_assert_eq!(json::decode(&buf), Ok(m.clone()));
        prop_assert_eq!(decode(Encoding::Json, &buf), Ok(m.clone()));
        check_with_serde_json(&buf, &m);
        // One byte short is never enough.
        prop_assert_eq!(json::encode(&m, &mut buf[..n - 1]), Err(EncodeError::BufferFull));
    }

    #[test]
    fn compact_round_trip(spec in compact_spec()) {
        let m = spec.message();
        let n = compact::encoded_len(&m).unwrap();
        let mut buf = std::vec![0u8; n];
        prop_assert_eq!(encode(&m, Encoding::Compact, &mut buf), Ok(n));
        prop_assert_eq!(compact::decode(&buf), Ok(m.clone()));
        if n > 0 {
            prop_assert_eq!(compact::encode(&m, &mut buf[..n - 1]), Err(EncodeError::BufferFull));
        }
        // Compact and JSON carry the same message where both can.
        if m.in_json_protocol() {
            let mut jbuf = std::vec![0u8; json::encoded_len(&m).unwrap()];
            let jn = json::encode(&m, &mut jbuf).unwrap();
            let back = json::decode(&jbuf[..jn]).unwrap();
            match (&m, &back) {
                (Message::Notify(a), Message::Notify(b)) | (Message::UnicastError(a), Message::UnicastError(b)) => {
                    prop_assert_eq!(a.parameter.as_str().trim_matches(|c| " \t\r\n".contains(c)), b.parameter.as_str());
                    prop_assert_eq!(Notify { parameter: b.parameter, ..a.clone() }, b.clone());
                }
                _ => prop_assert_eq!(&back, &m),
            }
        }
    }

    #[test]
    fn json_values_validate_and_agree(text in json_value(), a in ws(), b in ws()) {
        let padded = format!("{a}{text}{b}");
        prop_assert_eq!(scan::validate_value(padded.as_bytes()), Ok(()));
        prop_assert_eq!(serde_json_accepts(padded.as_bytes()), Some(true));
        // As a member value, the exact text comes back.
        let body = format!("{{\"k\":{a}{text}{b}}}");
        let members: Vec<_> = scan::object_members(&body).unwrap().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(members.len(), 1);
        prop_assert_eq!(members[0].value.text(), text.as_str());
    }

    #[test]
    fn scanner_agrees_with_serde_json(bytes in jsonish_bytes()) {
        if let Some(theirs) = serde_json_accepts(&bytes) {
            prop_assert_eq!(scan::validate_value(&bytes).is_ok(), theirs, "{:?}", String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn scanner_agrees_with_serde_json_on_tokens(bytes in jsonish_tokens()) {
        if let Some(theirs) = serde_json_accepts(&bytes) {
            prop_assert_eq!(scan::validate_value(&bytes).is_ok(), theirs, "{:?}", String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn scanner_agrees_with_serde_json_on_edited_values(text in json_value(), edits in edits()) {
        let bytes = apply(text.into_bytes(), &edits);
        if let Some(theirs) = serde_json_accepts(&bytes) {
            prop_assert_eq!(scan::validate_value(&bytes).is_ok(), theirs, "{:?}", String::from_utf8_lossy(&bytes));
        }
        // The member walk agrees with the whole-text validation.
        if let Ok(text) = core::str::from_utf8(&bytes) {
            if let Some(members) = scan::object_members(text) {
                let walked = members.into_iter().all(|m| m.is_ok());
                prop_assert_eq!(walked, scan::validate_str(text).is_ok());
            }
        }
    }

    #[test]
    fn unescape_agrees_with_serde_json(s in json_string()) {
        let body = format!("{{\"k\":{s}}}");
        let m = scan::object_members(&body).unwrap().next().unwrap().unwrap();
        prop_assert_eq!(m.value.kind(), ValueKind::String);
        let js = m.value.as_string().unwrap();
        let want: String = serde_json::from_str(&s).unwrap();
        let got = js.unescape::<4096>().unwrap();
        prop_assert_eq!(got.as_str(), want.as_str());
        prop_assert!(js.decodes_to(&want));
        let mut other = want.clone();
        other.push('x');
        prop_assert!(!js.decodes_to(&other));
        if let Some(plain) = js.as_plain() {
            prop_assert_eq!(plain, want.as_str());
        }
    }

    #[test]
    fn integers_agree_with_std(n in any::<i64>()) {
        let t = n.to_string();
        prop_assert_eq!(scan::parse_i32(&t), i32::try_from(n).ok());
        prop_assert_eq!(scan::parse_u32(&t), u32::try_from(n).ok());
        prop_assert_eq!(scan::parse_u64(&t), u64::try_from(n).ok());
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = json::decode(&bytes);
        let _ = compact::decode(&bytes);
        let _ = scan::validate_value(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_edited_messages(spec in compact_spec(), edits in edits()) {
        let m = spec.message();
        let mut buf = std::vec![0u8; 4096];
        if let Ok(n) = json::encode(&m, &mut buf) {
            let edited = apply(buf[..n].to_vec(), &edits);
            if let Ok(d) = json::decode(&edited) {
                // Whatever decodes re-encodes to something that decodes the same.
                if !matches!(d, Message::Unknown(_)) {
                    let mut again = std::vec![0u8; json::encoded_len(&d).unwrap()];
                    let k = json::encode(&d, &mut again).unwrap();
                    prop_assert_eq!(json::decode(&again[..k]), Ok(d.clone()));
                }
            }
        }
        let n = compact::encode(&m, &mut buf).unwrap();
        let edited = apply(buf[..n].to_vec(), &edits);
        if let Ok(d) = compact::decode(&edited) {
            if !matches!(d, Message::Unknown(_)) {
                let k = compact::encode(&d, &mut buf).unwrap();
                prop_assert_eq!(compact::decode(&buf[..k]), Ok(d.clone()));
            }
        }
    }
}

#[test]
fn the_reference_of_a_notify_is_read_without_decoding_the_rest() {
    let n = Notify {
        from: AppId::new("pay").unwrap(),
        to: Destination::One,
        notification: NotificationId::new("card").unwrap(),
        flags: 3,
        reference: Some(0x1234_5678_9abc),
        parameter: RawJson::new(r#"{"a":[1,2,{"b":null}]}"#).unwrap(),
    };
    for encoding in [Encoding::Json, Encoding::Compact] {
        let mut buf = vec![0u8; 512];
        for (m, want) in [
            (Message::Notify(n.clone()), Some(0x1234_5678_9abc)),
            (
                Message::Notify(Notify {
                    reference: None,
                    ..n.clone()
                }),
                None,
            ),
            (Message::UnicastError(n.clone()), None),
        ] {
            let len = encode(&m, encoding, &mut buf).unwrap();
            assert_eq!(
                notify_reference(encoding, &buf[..len]),
                want,
                "{encoding:?} {m:?}"
            );
            // Whatever the cut, no panic and never a wrong reference.
            for cut in 0..len {
                let got = notify_reference(encoding, &buf[..cut]);
                assert!(got.is_none() || got == want, "{encoding:?} cut {cut}");
            }
        }
    }
    // JSON members are unordered: type after the reference, escaped type.
    let body = br#"{"reference":7,"from":"a","to":"b","notification":"n","type":"not\u0069fy"}"#;
    assert_eq!(notify_reference(Encoding::Json, body), Some(7));
    let body = br#"{"reference":7,"type":"register","to":"b","notification":"n"}"#;
    assert_eq!(notify_reference(Encoding::Json, body), None);
    assert_eq!(notify_reference(Encoding::Json, b"[1]"), None);
    assert_eq!(notify_reference(Encoding::Compact, b""), None);
}
