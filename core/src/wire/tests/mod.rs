//! Tests of the frame layer: the documented example, exhaustive chunkings,
//! resynchronisation corner cases, and property tests against a model.

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::decoder::{find_byte, find_candidate};
use super::*;

/// The documented register body (spec 5.2).
const EXAMPLE_BODY: &[u8] = br#"{"notification":"test","priority":1,"to":"xyz","type":"register"}"#;

/// The documented register frame's header.
const EXAMPLE_HEADER: [u8; 12] = [0x00, 0x4E, 0x46, 0x59, 0, 0, 0, 0x45, 0, 0, 0, 0];

/// An owned decoder result, for comparing event sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Frame(u32, Vec<u8>),
    Garbage(usize),
    Oversize(u32),
    BadSize(u32),
}

/// A frame as bytes.
fn frame(msg_id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = encode_header(body.len(), msg_id).unwrap().to_vec();
    out.extend_from_slice(body);
    out
}

/// A header announcing `size` followed by nothing else.
fn raw_header(size: u32, msg_id: u32) -> Vec<u8> {
    let mut out = PREFIX.to_vec();
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&msg_id.to_be_bytes());
    out
}

/// Feeds `chunks` in order the way an adapter does, checking the decoder's
/// guarantees on every call, and returns the results.
fn run<B: AsRef<[u8]> + AsMut<[u8]>>(dec: &mut FrameDecoder<B>, chunks: &[&[u8]]) -> Vec<Ev> {
    let max_body = dec.max_body();
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest: &[u8] = chunk;
        // Each call consumes a byte or reports something, and each byte
        // yields at most a few reports: this bounds a correct decoder.
        let mut budget = 4 * chunk.len() + 4;
        while !rest.is_empty() {
            budget -= 1;
            assert!(budget > 0, "decoder does not make progress");
            let (n, d) = dec.feed(rest);
            assert!(n <= rest.len(), "consumed {n} of {}", rest.len());
            assert!(n > 0 || d.is_some(), "no progress and no result");
            match d {
                Some(Decoded::Frame(f)) => {
                    assert!(f.body.len() <= max_body);
                    out.push(Ev::Frame(f.msg_id, f.body.to_vec()));
                }
                Some(Decoded::Skipped(Skipped::Garbage { len })) => {
                    assert!(len > 0, "empty garbage report");
                    out.push(Ev::Garbage(len));
                }
                Some(Decoded::Skipped(Skipped::Oversize { body_len })) => {
                    assert!(body_len as usize > max_body);
                    out.push(Ev::Oversize(body_len));
                }
                Some(Decoded::Skipped(Skipped::BadSize { size })) => {
                    assert!(size < 4);
                    out.push(Ev::BadSize(size));
                }
                None => {}
            }
            rest = &rest[n..];
        }
        assert_eq!(
            dec.pending_garbage(),
            0,
            "garbage left unreported after a chunk"
        );
    }
    out
}

/// Merges adjacent garbage reports: the chunking-independent view.
fn normalize(evs: Vec<Ev>) -> Vec<Ev> {
    let mut out: Vec<Ev> = Vec::new();
    for ev in evs {
        if let (Some(Ev::Garbage(prev)), Ev::Garbage(len)) = (out.last_mut(), &ev) {
            *prev += len;
        } else {
            out.push(ev);
        }
    }
    out
}

/// Checks that `evs` (and what the decoder still holds) account for every
/// byte of a `total`-byte stream exactly once: frames 12 + body, garbage,
/// bad-size prefixes 4, oversize frames 12 + body. A stream that ends while
/// an oversize frame is being skipped announced more than it delivered.
fn check_accounting<B: AsRef<[u8]> + AsMut<[u8]>>(evs: &[Ev], dec: &FrameDecoder<B>, total: usize) {
    let accounted: u64 = evs
        .iter()
        .map(|ev| match ev {
            Ev::Frame(_, body) => 12 + body.len() as u64,
            Ev::Garbage(len) => *len as u64,
            Ev::Oversize(body_len) => 12 + u64::from(*body_len),
            Ev::BadSize(_) => 4,
        })
        .sum::<u64>()
        + dec.buffered() as u64;
    if dec.is_idle() || dec.buffered() > 0 {
        assert_eq!(accounted, total as u64, "{evs:?}");
    } else {
        assert!(accounted > total as u64, "{evs:?}");
    }
}

/// Decodes `stream` in one piece with a fresh decoder.
fn decode_whole(stream: &[u8], storage: usize, limit: usize) -> (Vec<Ev>, usize) {
    let mut dec = FrameDecoder::with_limit(vec![0u8; storage], limit);
    let evs = run(&mut dec, &[stream]);
    (normalize(evs), dec.buffered())
}

// --- The documented example -------------------------------------------------

#[test]
fn documented_example_decodes() {
    assert_eq!(EXAMPLE_BODY.len(), 65);
    let mut stream = EXAMPLE_HEADER.to_vec();
    stream.extend_from_slice(EXAMPLE_BODY);
    let mut dec = FrameDecoder::new([0u8; 128]);
    let (n, d) = dec.feed(&stream);
    assert_eq!(n, 77);
    assert_eq!(
        d,
        Some(Decoded::Frame(Frame {
            msg_id: 0,
            body: EXAMPLE_BODY
        }))
    );
    assert!(dec.is_idle());
}

#[test]
fn documented_example_encodes_identically() {
    let mut buf = [0u8; 100];
    let n = encode_frame(&mut buf, 0, |space| {
        space[..EXAMPLE_BODY.len()].copy_from_slice(EXAMPLE_BODY);
        Ok::<_, ()>(EXAMPLE_BODY.len())
    })
    .unwrap();
    assert_eq!(n, 77);
    assert_eq!(buf[..12], EXAMPLE_HEADER);
    assert_eq!(&buf[12..77], EXAMPLE_BODY);
    assert_eq!(encode_header(65, 0), Ok(EXAMPLE_HEADER));
    assert_eq!(frame_len(65), Some(77));
}

// --- Encoder ----------------------------------------------------------------

#[test]
fn encoder_rejects_short_buffers_and_lying_bodies() {
    let mut small = [0u8; 11];
    assert_eq!(
        encode_frame(&mut small, 0, |_| Ok::<_, ()>(0)),
        Err(FrameError::BufferFull)
    );
    let mut exact = [0u8; 12];
    assert_eq!(encode_frame(&mut exact, 7, |_| Ok::<_, ()>(0)), Ok(12));
    assert_eq!(exact, [0, 0x4E, 0x46, 0x59, 0, 0, 0, 4, 0, 0, 0, 7]);

    let mut buf = [0u8; 20];
    assert_eq!(
        encode_frame(&mut buf, 0, |space| Ok::<_, ()>(space.len() + 1)),
        Err(FrameError::BufferFull)
    );
    assert_eq!(
        encode_frame(&mut buf, 0, |space| Ok::<_, ()>(space.len())),
        Ok(20)
    );
    assert_eq!(
        encode_frame(&mut buf, 0, |_| Err::<usize, _>("nope")),
        Err(FrameError::Body("nope"))
    );
}

#[test]
fn header_size_field_limits() {
    let max = (u32::MAX - 4) as usize;
    let h = encode_header(max, 1).unwrap();
    assert_eq!(h[4..8], u32::MAX.to_be_bytes());
    assert_eq!(h[8..12], 1u32.to_be_bytes());
    assert_eq!(
        encode_header(max + 1, 1),
        Err(BodyTooLarge { body_len: max + 1 })
    );
    assert_eq!(frame_len(max + 1), None);
    assert_eq!(frame_len(usize::MAX), None);
    assert_eq!(frame_len(0), Some(12));
}

#[test]
fn displays_are_readable() {
    use std::string::ToString;
    assert_eq!(
        Skipped::Garbage { len: 3 }.to_string(),
        "discarded 3 bytes before a frame prefix"
    );
    assert!(FrameError::Body("x").to_string().contains('x'));
    assert!(BodyTooLarge { body_len: 9 }.to_string().contains('9'));
}

// --- Search helpers -----------------------------------------------------------

#[test]
fn find_byte_matches_naive_search() {
    let data: Vec<u8> = (0..100u32).map(|i| (i * 37 % 11) as u8 + 1).collect();
    for start in 0..data.len() {
        for at in start..data.len() {
            let mut d = data[start..].to_vec();
            d[at - start] = 0;
            assert_eq!(find_byte(&d, 0), Some(at - start));
        }
        assert_eq!(find_byte(&data[start..], 0), None);
    }
    assert_eq!(find_byte(&[0x80, 0x81, 0x4E, 0x4E], 0x4E), Some(2));
    assert_eq!(find_byte(&[0xff; 9], 0xff), Some(0));
}

#[test]
fn candidates_are_prefixes_or_prefix_beginnings_at_the_end() {
    assert_eq!(find_candidate(b"ab\0NFYxx"), Some(2));
    assert_eq!(find_candidate(b"ab\0N\0NF"), Some(4));
    assert_eq!(find_candidate(b"ab\0NFx"), None);
    assert_eq!(find_candidate(b"\0\0\0"), Some(2));
    assert_eq!(find_candidate(b""), None);
    assert_eq!(find_candidate(b"NFY"), None);
}

// --- Resynchronisation corner cases ----------------------------------------

#[test]
fn partial_prefix_in_garbage_then_frame() {
    let f = frame(0, b"{}");
    let mut stream = b"\0NF".to_vec();
    stream.extend_from_slice(&f);
    let (evs, buffered) = decode_whole(&stream, 64, 64);
    assert_eq!(evs, vec![Ev::Garbage(3), Ev::Frame(0, b"{}".to_vec())]);
    assert_eq!(buffered, 0);
}

#[test]
fn prefix_beginning_at_chunk_end_is_kept() {
    let f = frame(1, b"abc");
    let mut dec = FrameDecoder::new([0u8; 64]);
    // "xyz\0N" | "FY..." : the chunk boundary splits the prefix.
    let evs = run(&mut dec, &[b"xyz\0N"]);
    assert_eq!(evs, vec![Ev::Garbage(3)]);
    assert_eq!(dec.buffered(), 2);
    assert!(!dec.is_idle());
    let evs = run(&mut dec, &[&f[2..]]);
    assert_eq!(evs, vec![Ev::Frame(1, b"abc".to_vec())]);
    assert!(dec.is_idle());

    // "xyz\0N" | "\0NFY..." : the kept bytes turn out to be garbage.
    let evs = run(&mut dec, &[b"xyz\0N", &f]);
    assert_eq!(
        normalize(evs),
        vec![Ev::Garbage(5), Ev::Frame(1, b"abc".to_vec())]
    );
}

#[test]
fn garbage_is_coalesced_within_a_chunk() {
    let mut stream = vec![0u8; 50];
    stream.extend_from_slice(b"\0N\0NF\0\0x\0NFZ");
    stream.extend_from_slice(&frame(0, b"q"));
    let mut dec = FrameDecoder::new([0u8; 64]);
    let evs = run(&mut dec, &[&stream]);
    assert_eq!(evs, vec![Ev::Garbage(62), Ev::Frame(0, b"q".to_vec())]);
}

#[test]
fn bad_size_then_valid_frame() {
    let f = frame(0, b"hello");
    for size in 0..4u32 {
        let mut stream = raw_header(size, 0);
        stream.extend_from_slice(&f);
        // The size field is garbage; the message-id position is scanned too.
        let (evs, buffered) = decode_whole(&stream, 64, 64);
        assert_eq!(
            evs,
            vec![
                Ev::BadSize(size),
                Ev::Garbage(8),
                Ev::Frame(0, b"hello".to_vec())
            ],
            "size {size}"
        );
        assert_eq!(buffered, 0);
    }
}

#[test]
fn truncated_header_followed_by_frame_is_not_lost() {
    // A sender died after 7 header bytes; the next frame's first byte
    // completes a size field of 0.
    let f = frame(0, b"hello");
    let mut stream = PREFIX.to_vec();
    stream.extend_from_slice(&[0, 0, 0]);
    stream.extend_from_slice(&f);
    let expected = vec![
        Ev::BadSize(0),
        Ev::Garbage(3),
        Ev::Frame(0, b"hello".to_vec()),
    ];
    assert_eq!(decode_whole(&stream, 64, 64).0, expected);
    for_every_split(&stream, 64, 64, &expected, 0, true);
}

#[test]
fn truncated_frame_is_visible_at_end() {
    let f = frame(0, b"0123456789");
    for cut in 1..f.len() {
        let mut dec = FrameDecoder::new([0u8; 64]);
        let evs = run(&mut dec, &[&f[..cut]]);
        assert_eq!(evs, vec![], "cut {cut}");
        assert_eq!(dec.buffered(), cut, "cut {cut}");
        assert!(!dec.is_idle());
        dec.reset();
        assert!(dec.is_idle());
        assert_eq!(dec.buffered(), 0);
        // After reset, a fresh frame decodes.
        let evs = run(&mut dec, &[&f]);
        assert_eq!(evs, vec![Ev::Frame(0, b"0123456789".to_vec())]);
    }
}

#[test]
fn oversize_is_skipped_exactly_across_feeds() {
    let big = vec![0u8; 300]; // zeros: would be prefix candidates if scanned
    let small = frame(5, b"after");
    let mut stream = frame(0, &big);
    stream.extend_from_slice(&small);
    let mut dec = FrameDecoder::with_limit([0u8; 256], 100);
    assert_eq!(dec.max_body(), 100);
    let mut evs = Vec::new();
    for chunk in stream.chunks(7) {
        evs.extend(run(&mut dec, &[chunk]));
        if evs.len() == 1 {
            assert!(!dec.is_idle(), "still skipping");
        }
    }
    assert_eq!(
        evs,
        vec![Ev::Oversize(300), Ev::Frame(5, b"after".to_vec())]
    );
    assert!(dec.is_idle());
}

#[test]
fn oversize_is_reported_when_the_size_field_arrives() {
    let mut dec = FrameDecoder::new([0u8; 20]);
    let h = raw_header(1004, 0);
    assert_eq!(run(&mut dec, &[&h[..7]]), vec![]);
    assert_eq!(run(&mut dec, &[&h[7..8]]), vec![Ev::Oversize(1000)]);
    assert!(!dec.is_idle());
}

#[test]
fn huge_size_field_does_not_overflow() {
    let mut dec = FrameDecoder::new([0u8; 64]);
    let h = raw_header(u32::MAX, 0);
    let evs = run(&mut dec, &[&h, &[1u8; 1000]]);
    assert_eq!(evs, vec![Ev::Oversize(u32::MAX - 4)]);
    assert!(!dec.is_idle());
}

#[test]
fn limit_is_capped_by_storage() {
    let dec = FrameDecoder::with_limit([0u8; 40], 1000);
    assert_eq!(dec.max_body(), 28);
    let dec = FrameDecoder::new([0u8; 5]);
    assert_eq!(dec.max_body(), 0);
    let buf = FrameDecoder::new([7u8; 13]).into_inner();
    assert_eq!(buf, [7u8; 13]);
}

#[test]
fn body_at_the_limit_is_accepted_one_over_is_not() {
    let mut dec = FrameDecoder::with_limit([0u8; 64], 10);
    let at = frame(0, &[b'a'; 10]);
    let over = frame(0, &[b'a'; 11]);
    assert_eq!(run(&mut dec, &[&at]), vec![Ev::Frame(0, vec![b'a'; 10])]);
    assert_eq!(run(&mut dec, &[&over]), vec![Ev::Oversize(11)]);
    assert!(dec.is_idle());
}

#[test]
fn tiny_storage_still_decodes_empty_bodies_across_chunks() {
    let f = frame(9, b"");
    let mut dec = FrameDecoder::new([0u8; 0]);
    let chunks: Vec<&[u8]> = f.chunks(1).collect();
    assert_eq!(run(&mut dec, &chunks), vec![Ev::Frame(9, vec![])]);
    assert_eq!(run(&mut dec, &[&frame(9, b"x")]), vec![Ev::Oversize(1)]);
    assert!(dec.is_idle());
}

#[test]
fn whole_frames_borrow_the_input_split_frames_the_storage() {
    let f = frame(0, b"zero-copy");
    let mut dec = FrameDecoder::new([0u8; 64]);
    let range = f.as_ptr_range();
    let (_, d) = dec.feed(&f);
    let Some(Decoded::Frame(fr)) = d else {
        panic!("no frame")
    };
    assert!(range.contains(&fr.body.as_ptr()), "body was copied");

    let mut dec = FrameDecoder::new([0u8; 64]);
    let (n, d) = dec.feed(&f[..14]);
    assert_eq!((n, d), (14, None));
    let (_, d) = dec.feed(&f[14..]);
    let Some(Decoded::Frame(fr)) = d else {
        panic!("no frame")
    };
    assert_eq!(fr.body, b"zero-copy");
    assert!(!f[14..].as_ptr_range().contains(&fr.body.as_ptr()));
}

#[test]
fn many_frames_in_one_chunk() {
    let mut stream = Vec::new();
    for i in 0..50u32 {
        stream.extend_from_slice(&frame(i, &[i as u8; 3]));
    }
    let mut dec = FrameDecoder::new([0u8; 16]);
    let evs = run(&mut dec, &[&stream]);
    let want: Vec<Ev> = (0..50u32).map(|i| Ev::Frame(i, vec![i as u8; 3])).collect();
    assert_eq!(evs, want);
}

// --- Exhaustive chunkings ----------------------------------------------------

/// Checks that every split of `stream` into 2 and 3 chunks, one byte at a
/// time, and all at once gives `expected` (garbage merged) and leaves
/// `buffered` bytes pending and the decoder `idle` or not.
fn for_every_split(
    stream: &[u8],
    storage: usize,
    limit: usize,
    expected: &[Ev],
    buffered: usize,
    idle: bool,
) {
    let check = |chunks: &[&[u8]], what: &dyn Fn() -> std::string::String| {
        let mut dec = FrameDecoder::with_limit(vec![0u8; storage], limit);
        let evs = normalize(run(&mut dec, chunks));
        check_accounting(&evs, &dec, stream.len());
        assert_eq!(evs, expected, "{}", what());
        assert_eq!(dec.buffered(), buffered, "{}", what());
        assert_eq!(dec.is_idle(), idle, "{}", what());
    };
    check(&[stream], &|| "whole".into());
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    check(&bytes, &|| "bytewise".into());
    for i in 0..=stream.len() {
        let (a, b) = stream.split_at(i);
        check(&[a, b], &|| std::format!("split {i}"));
        for j in i..=stream.len() {
            let (b1, c) = stream.split_at(j);
            let b = &b1[i..];
            check(&[a, b, c], &|| std::format!("split {i} {j}"));
        }
    }
}

#[test]
fn every_chunking_of_a_mixed_stream_decodes_the_same() {
    let mut stream = Vec::new();
    stream.extend_from_slice(b"x\0N"); // garbage ending in a prefix beginning
    stream.extend_from_slice(&frame(0, b"{\"a\":1}"));
    stream.extend_from_slice(b"\0NF"); // partial prefix as garbage
    stream.extend_from_slice(&frame(1, b""));
    stream.extend_from_slice(&raw_header(2, 0)[..8]); // bad size
    stream.extend_from_slice(&frame(0, b"0123456789abcdef"));
    stream.extend_from_slice(&frame(3, &[0u8; 25])); // oversize (limit 20)
    stream.extend_from_slice(&frame(2, b"\0NFY"));
    stream.extend_from_slice(b"\0\0zz");
    stream.extend_from_slice(&frame(0, b"end"));
    let expected = vec![
        Ev::Garbage(3),
        Ev::Frame(0, b"{\"a\":1}".to_vec()),
        Ev::Garbage(3),
        Ev::Frame(1, vec![]),
        Ev::BadSize(2),
        Ev::Garbage(4),
        Ev::Frame(0, b"0123456789abcdef".to_vec()),
        Ev::Oversize(25),
        Ev::Frame(2, b"\0NFY".to_vec()),
        Ev::Garbage(4),
        Ev::Frame(0, b"end".to_vec()),
    ];
    for_every_split(&stream, 64, 20, &expected, 0, true);
}

#[test]
fn every_chunking_with_a_header_cut_short() {
    // A 6-byte header, then a frame: the size field reads 00 00 | 00 4E =
    // 78, a 74-byte body over the limit of 16. The skip swallows the next
    // frame and runs past the end of the stream: the decoder is not idle.
    let mut stream = frame(0, b"ab");
    stream.extend_from_slice(&raw_header(0, 0)[..6]);
    stream.extend_from_slice(&frame(1, b"cd"));
    stream.extend_from_slice(&frame(0, b"trunc")[..10]);
    let expected = vec![Ev::Frame(0, b"ab".to_vec()), Ev::Oversize(74)];
    for_every_split(&stream, 28, 16, &expected, 0, false);
}

#[test]
fn every_chunking_with_a_truncated_frame_at_the_end() {
    let mut stream = frame(0, b"ab");
    stream.extend_from_slice(b"\0");
    stream.extend_from_slice(&frame(1, b"cd"));
    stream.extend_from_slice(&frame(0, b"truncated")[..15]);
    let expected = vec![
        Ev::Frame(0, b"ab".to_vec()),
        Ev::Garbage(1),
        Ev::Frame(1, b"cd".to_vec()),
    ];
    for_every_split(&stream, 28, 16, &expected, 15, false);
}

// --- Property tests -------------------------------------------------------------

/// One piece of a generated stream.
#[derive(Debug, Clone)]
enum Item {
    Frame(u32, Vec<u8>),
    Garbage(Vec<u8>),
    /// A frame with a body over the limit.
    Oversize(Vec<u8>),
    /// A header with a size field of 1..=3 (nonzero: see `build`).
    BadSize(u32),
}

const PROP_STORAGE: usize = 512;
const PROP_LIMIT: usize = 300;

fn item() -> impl Strategy<Value = Item> {
    // Garbage from an alphabet rich in prefix bytes.
    let garbage_byte = prop_oneof![
        Just(0x00u8),
        Just(0x4E),
        Just(0x46),
        Just(0x59),
        any::<u8>()
    ];
    prop_oneof![
        4 => (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..=PROP_LIMIT))
            .prop_map(|(id, body)| Item::Frame(id, body)),
        2 => proptest::collection::vec(garbage_byte, 1..40).prop_map(Item::Garbage),
        1 => proptest::collection::vec(any::<u8>(), PROP_LIMIT + 1..PROP_LIMIT + 400)
            .prop_map(Item::Oversize),
        1 => (1u32..4).prop_map(Item::BadSize),
    ]
}

/// Builds the stream and the results a correct decoder reports (garbage
/// merged). Garbage is cleaned of anything that would read as a prefix.
fn build(items: &[Item]) -> (Vec<u8>, Vec<Ev>) {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    let mut i = 0;
    while i < items.len() {
        match &items[i] {
            Item::Frame(id, body) => {
                stream.extend_from_slice(&frame(*id, body));
                expected.push(Ev::Frame(*id, body.clone()));
            }
            Item::Oversize(body) => {
                stream.extend_from_slice(&frame(0, body));
                expected.push(Ev::Oversize(body.len() as u32));
            }
            Item::BadSize(size) => {
                // Size bytes 00 00 00 0s (s != 0) cannot start a prefix and
                // cannot complete one with what follows.
                stream.extend_from_slice(&raw_header(*size, 0)[..8]);
                expected.push(Ev::BadSize(*size));
                expected.push(Ev::Garbage(4));
            }
            Item::Garbage(_) => {
                // Merge adjacent garbage items, then make sure no prefix
                // (and no prefix beginning at its end) remains.
                let mut g = Vec::new();
                while let Some(Item::Garbage(part)) = items.get(i) {
                    g.extend_from_slice(part);
                    i += 1;
                }
                i -= 1;
                for k in 0..g.len() {
                    if g[k] == 0 && g.len() - k < 4 && PREFIX.starts_with(&g[k..]) {
                        g[k] = 1;
                    }
                    if g[k..].starts_with(&PREFIX) {
                        g[k + 3] = 0x5A;
                    }
                }
                // Garbage ending in "00 4E" followed by a frame is fine (the
                // frame's 00 refutes it), but not at the very end: there it
                // would stay buffered. Handled above.
                stream.extend_from_slice(&g);
                expected.push(Ev::Garbage(g.len()));
            }
        }
        i += 1;
    }
    (stream, normalize(expected))
}

/// Cuts `stream` at the given fractions.
fn cut<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for p in points {
        out.push(&stream[from..p]);
        from = p;
    }
    out.push(&stream[from..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_streams_decode_under_random_chunking(
        items in proptest::collection::vec(item(), 0..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let (stream, expected) = build(&items);
        let chunks = cut(&stream, &cuts);
        let mut dec = FrameDecoder::with_limit(vec![0u8; PROP_STORAGE], PROP_LIMIT);
        let evs = normalize(run(&mut dec, &chunks));
        check_accounting(&evs, &dec, stream.len());
        prop_assert_eq!(&evs, &expected);
        prop_assert!(dec.is_idle());
        // And the same in one piece.
        let mut dec = FrameDecoder::with_limit(vec![0u8; PROP_STORAGE], PROP_LIMIT);
        prop_assert_eq!(normalize(run(&mut dec, &[&stream])), expected);
    }

    #[test]
    fn truncating_a_stream_leaves_the_decoder_busy(
        items in proptest::collection::vec(item(), 0..6),
        body in proptest::collection::vec(any::<u8>(), 0..100),
        keep in 1usize..112,
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let (mut stream, expected) = build(&items);
        let last = frame(0, &body);
        let keep = keep.min(last.len() - 1);
        stream.extend_from_slice(&last[..keep]);
        let chunks = cut(&stream, &cuts);
        let mut dec = FrameDecoder::with_limit(vec![0u8; PROP_STORAGE], PROP_LIMIT);
        let evs = normalize(run(&mut dec, &chunks));
        prop_assert_eq!(evs, expected);
        prop_assert!(!dec.is_idle());
        prop_assert_eq!(dec.buffered(), keep);
    }

    #[test]
    fn arbitrary_bytes_never_break_the_guarantees(
        bytes in proptest::collection::vec(
            prop_oneof![Just(0u8), Just(0x4E), Just(0x46), Just(0x59), Just(4), any::<u8>()],
            0..600,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
        storage in 0usize..80,
    ) {
        let chunks = cut(&bytes, &cuts);
        let mut dec = FrameDecoder::new(vec![0u8; storage]);
        // `run` asserts progress, bounds and garbage reporting.
        let chunked = normalize(run(&mut dec, &chunks));
        check_accounting(&chunked, &dec, bytes.len());
        let mut whole = FrameDecoder::new(vec![0u8; storage]);
        prop_assert_eq!(chunked, normalize(run(&mut whole, &[&bytes])));
        prop_assert_eq!(dec.buffered(), whole.buffered());
        prop_assert_eq!(dec.is_idle(), whole.is_idle());
    }

    #[test]
    fn encode_then_decode_round_trips(
        id in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut buf = vec![0u8; 412];
        let n = encode_frame(&mut buf, id, |space| {
            space[..body.len()].copy_from_slice(&body);
            Ok::<_, ()>(body.len())
        }).unwrap();
        prop_assert_eq!(Some(n), frame_len(body.len()));
        prop_assert_eq!(&buf[..12], &encode_header(body.len(), id).unwrap()[..]);
        let mut dec = FrameDecoder::new(vec![0u8; 412]);
        let (used, d) = dec.feed(&buf[..n]);
        prop_assert_eq!(used, n);
        prop_assert_eq!(d, Some(Decoded::Frame(Frame { msg_id: id, body: &body })));
    }
}

// ---- the checked frame view ----

#[test]
fn a_view_reads_what_the_encoder_wrote() {
    let mut run = frame(1, b"first");
    run.extend(frame(0, b""));
    run.extend(frame(7, EXAMPLE_BODY));
    let view = FrameView::new_checked(&run[..]).unwrap();
    assert_eq!(view.total_len(), HEADER_LEN + 5);
    assert_eq!((view.msg_id(), view.body()), (1, &b"first"[..]));
    assert_eq!(view.bytes(), &run[..HEADER_LEN + 5]);
    assert_eq!(
        view.frame(),
        Frame {
            msg_id: 1,
            body: b"first"
        }
    );
    let got: Vec<(u32, Vec<u8>)> = frames(&run)
        .map(|v| (v.msg_id(), v.body().to_vec()))
        .collect();
    assert_eq!(
        got,
        [
            (1, b"first".to_vec()),
            (0, Vec::new()),
            (7, EXAMPLE_BODY.to_vec())
        ]
    );
    let mut all = frames(&run);
    all.by_ref().for_each(drop);
    assert!(all.rest().is_empty());
}

#[test]
fn a_view_refuses_what_is_not_a_whole_frame() {
    let whole = frame(0, b"body");
    for cut in 0..whole.len() {
        assert_eq!(
            FrameView::new_checked(&whole[..cut]),
            Err(ViewError::Truncated),
            "cut at {cut}"
        );
    }
    let mut bad = whole.clone();
    bad[1] = b'X';
    assert_eq!(FrameView::new_checked(&bad[..]), Err(ViewError::BadPrefix));
    assert_eq!(
        FrameView::new_checked(&raw_header(3, 0)[..]),
        Err(ViewError::BadSize)
    );
    assert_eq!(
        FrameView::new_checked(&raw_header(u32::MAX, 0)[..]),
        Err(ViewError::Truncated)
    );
    // A run stops at the first bytes that are not a frame, and says where.
    let mut run = whole.clone();
    run.extend_from_slice(b"junk");
    let mut it = frames(&run);
    assert_eq!(it.next().map(|v| v.body().to_vec()), Some(b"body".to_vec()));
    assert!(it.next().is_none());
    assert_eq!(it.rest(), b"junk");
}

proptest! {
    /// Whatever the bytes, a view that checks agrees with the decoder.
    #[test]
    fn a_view_agrees_with_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..64), body in proptest::collection::vec(any::<u8>(), 0..32)) {
        let mut input = frame(3, &body);
        input.extend_from_slice(&bytes);
        let view = FrameView::new_checked(&input[..]).unwrap();
        prop_assert_eq!(view.body(), &body[..]);
        let mut dec = FrameDecoder::new(vec![0u8; 128]);
        let (used, got) = dec.feed(&input);
        prop_assert_eq!(used, view.total_len());
        prop_assert_eq!(got, Some(Decoded::Frame(view.frame())));
        // Arbitrary bytes: a view only exists when they start with a frame.
        if let Ok(v) = FrameView::new_checked(&bytes[..]) {
            let mut dec = FrameDecoder::new(vec![0u8; 128]);
            let (used, got) = dec.feed(&bytes);
            prop_assert_eq!(used, v.total_len());
            prop_assert_eq!(got, Some(Decoded::Frame(v.frame())));
        }
    }
}

#[test]
fn header_view_checks_prefix_and_size_without_the_body() {
    let frame = frame(1, b"{}");
    let h = HeaderView::new_checked(&frame[..HEADER_LEN]).unwrap();
    assert_eq!((h.msg_id(), h.body_len()), (1, 2));
    // The same reading as the whole-frame view.
    let v = FrameView::new_checked(&frame[..]).unwrap();
    assert_eq!((v.msg_id(), v.body().len()), (h.msg_id(), h.body_len()));
    assert_eq!(
        HeaderView::new_checked(&frame[..HEADER_LEN - 1]),
        Err(ViewError::Truncated)
    );
    let mut bad = frame.clone();
    bad[0] = b'X';
    assert_eq!(HeaderView::new_checked(&bad), Err(ViewError::BadPrefix));
    let mut small = frame.clone();
    small[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(HeaderView::new_checked(&small), Err(ViewError::BadSize));
}
