//! Fuzz checks: JSON message bodies.
//!
//! Decodes arbitrary bytes as a JSON body. Whatever decodes (except an
//! unknown type, which has no encoding) must re-encode, and the re-encoded
//! body must decode to the same message; `encoded_len` must predict the
//! length. The message must also survive the compact encoding (with the
//! parameter unchanged, since JSON decoding never leaves whitespace around
//! it).
//!
//! Shared by the fuzz target (`fuzz_targets/json.rs`) and the regression
//! test that replays the committed corpus on stable (`core/tests/fuzz_corpus.rs`).

use nfy_core::msg::scan::{self, JsonErrorKind};
use nfy_core::msg::{compact, json, DecodeError, Message};

/// Runs the checks on one input; panics when one fails.
pub fn check(data: &[u8]) {
    let decoded = json::decode(data);
    // The scanner and the decoder agree on what is JSON, except that the
    // decoder gives each member value the whole depth budget (the body may
    // nest one level deeper than a lone value).
    if core::str::from_utf8(data).is_ok() {
        match (&decoded, scan::validate_value(data)) {
            (Err(DecodeError::Json(e)), Ok(())) => panic!("decoder rejects valid JSON: {e}"),
            (Err(DecodeError::Json(_)), Err(_)) | (_, Ok(())) => {}
            (_, Err(e)) => assert_eq!(e.kind, JsonErrorKind::TooDeep, "decoder accepts {e}"),
        }
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
}
