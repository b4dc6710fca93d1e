//! Fuzz checks: compact (postcard) message bodies.
//!
//! Decodes arbitrary bytes as a compact body. Whatever decodes (except an
//! unknown message) must re-encode to a body that decodes to the same
//! message, of the length `encoded_len` predicts. Messages of the JSON
//! protocol must also survive a JSON round trip (the parameter loses only
//! the whitespace around it). `decode_trusted` (no parameter check) must
//! never panic, and must agree with `decode` wherever `decode` succeeds;
//! where only it succeeds, the difference can only be the parameter.
//!
//! Shared by the fuzz target (`fuzz_targets/compact.rs`) and the regression
//! test that replays the committed corpus on stable (`core/tests/fuzz_corpus.rs`).

use nfy_core::msg::{compact, json, Message, Notify};

fn trim(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

/// Runs the checks on one input; panics when one fails.
pub fn check(data: &[u8]) {
    let trusted = compact::decode_trusted(data);
    let Ok(msg) = compact::decode(data) else {
        if let Ok(m) = trusted {
            assert!(
                matches!(m, Message::Notify(_) | Message::UnicastError(_)),
                "decode_trusted accepted what decode refuses: {m:?}"
            );
        }
        return;
    };
    assert_eq!(trusted.as_ref(), Ok(&msg), "decode_trusted disagrees");
    if let Message::Unknown(s) = msg {
        assert_eq!(s, "");
        return;
    }
    let len = compact::encoded_len(&msg).expect("a decoded message has a compact form");
    let mut buf = vec![0u8; len];
    let n = compact::encode(&msg, &mut buf).expect("encode into a buffer of encoded_len");
    assert_eq!(n, len);
    assert_eq!(compact::decode(&buf).expect("re-encoded body decodes"), msg);

    if !msg.in_json_protocol() {
        let mut small = [0u8; 64];
        assert!(json::encode(&msg, &mut small).is_err());
        return;
    }
    let jlen = json::encoded_len(&msg).expect("JSON form");
    let mut jbuf = vec![0u8; jlen];
    let jn = json::encode(&msg, &mut jbuf).expect("JSON encode");
    assert_eq!(jn, jlen);
    let back = json::decode(&jbuf).expect("JSON decodes");
    match (&msg, &back) {
        (Message::Notify(a), Message::Notify(b))
        | (Message::UnicastError(a), Message::UnicastError(b)) => {
            assert_eq!(trim(a.parameter.as_str()), b.parameter.as_str());
            assert_eq!(
                &Notify {
                    parameter: b.parameter,
                    ..a.clone()
                },
                b
            );
        }
        _ => assert_eq!(back, msg),
    }
}
