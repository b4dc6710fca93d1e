use serde_json::Value;

use super::*;

#[test]
fn the_spec_example_frame() {
    // Spec 5.2: the register example, byte for byte.
    let body = br#"{"notification":"test","priority":1,"to":"xyz","type":"register"}"#;
    assert_eq!(body.len(), 65);
    assert_eq!(
        frame(body)[..12],
        [0x00, 0x4E, 0x46, 0x59, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x00, 0x00]
    );
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v, register_msg("xyz", "test", 1));
}

#[test]
fn padded_bodies_have_the_asked_length() {
    for len in [200, 1024, 8192, 8193, 65536] {
        let body = notify_of_body_len("a", "b", "n", len);
        assert_eq!(body.len(), len);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], "notify");
    }
}

#[test]
fn the_reader_splits_frames_fed_byte_by_byte_and_rejects_a_bad_prefix() {
    let mut bytes = frame_with_id(7, b"one");
    bytes.extend(frame(b""));
    let mut reader = FrameReader::default();
    let mut got = Vec::new();
    for b in &bytes {
        reader.push(&[*b]);
        while let Some(f) = reader.next_frame().unwrap() {
            got.push(f);
        }
    }
    let want = [
        RawFrame {
            msg_id: 7,
            body: b"one".to_vec(),
        },
        RawFrame {
            msg_id: 0,
            body: Vec::new(),
        },
    ];
    assert_eq!(got, want);
    assert_eq!(reader.buffered(), 0);
    reader.push(b"\0NFX\0\0\0\x04\0\0\0\0");
    assert!(reader.next_frame().is_err());
}
