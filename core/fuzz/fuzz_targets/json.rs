//! Fuzz target: JSON message bodies.
//!
//! Decodes arbitrary bytes as a JSON body. Whatever decodes (except an
//! unknown type, which has no encoding) must re-encode, and the re-encoded
//! body must decode to the same message; `encoded_len` must predict the
//! length. The message must also survive the compact encoding (with the
//! parameter unchanged, since JSON decoding never leaves whitespace around
//! it).
#![no_main]

use nfy_core::msg::{compact, json, scan, Message};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let decoded = json::decode(data);
    // Whatever the scanner thinks of the whole text must agree with the
    // decoder: a JSON error from one is a JSON error from the other.
    if core::str::from_utf8(data).is_ok() {
        let valid = scan::validate_value(data).is_ok();
        let json_err = matches!(decoded, Err(nfy_core::msg::DecodeError::Json(_)));
        assert_eq!(valid, !json_err, "scanner and decoder disagree");
    }
    let Ok(msg) = decoded else { return };
    if let Message::Unknown(_) = msg {
        return;
    }
    let len = json::encoded_len(&msg).expect("a decoded JSON message has a JSON form");
    let mut buf = vec![0u8; len];
    let n = json::encode(&msg, &mut buf).expect("encode into a buffer of encoded_len");
    assert_eq!(n, len);
    let again = json::decode(&buf).expect("re-encoded body decodes");
    assert_eq!(again, msg);
    if len > 0 {
        assert!(json::encode(&msg, &mut buf[..len - 1]).is_err());
    }

    let clen = compact::encoded_len(&msg).expect("compact form");
    let mut cbuf = vec![0u8; clen];
    let cn = compact::encode(&msg, &mut cbuf).expect("compact encode");
    assert_eq!(cn, clen);
    assert_eq!(compact::decode(&cbuf).expect("compact decodes"), msg);
});
