//! Fuzz checks for the frame decoder (`nfy_core::wire::FrameDecoder`).
//!
//! Input layout: byte 0 = how many chunk-size bytes follow (mod 8), then
//! those chunk sizes (each `b + 1`, cycled), then the stream. The stream is
//! decoded chunked into a decoder with 256 bytes of storage, and again in
//! one piece; the target asserts the decoder's guarantees on every call,
//! that both runs agree (garbage reports merged), and that every byte is
//! accounted for exactly once.
//!
//! Shared by the fuzz target (`fuzz_targets/frame.rs`) and the regression
//! test that replays the committed corpus on stable (`core/tests/fuzz_corpus.rs`).

use nfy_core::wire::{Decoded, FrameDecoder, Skipped, HEADER_LEN};

/// An owned decoder result.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Frame(u32, Vec<u8>),
    Garbage(usize),
    Oversize(u32),
    BadSize(u32),
}

/// Decodes `stream` cut into chunks of the given sizes (cycled; one piece
/// if empty), checking the per-call guarantees. Returns the merged results
/// and the decoder.
fn decode(stream: &[u8], sizes: &[usize]) -> (Vec<Ev>, FrameDecoder<[u8; 256]>) {
    let mut dec = FrameDecoder::new([0u8; 256]);
    let max_body = dec.max_body();
    let mut evs: Vec<Ev> = Vec::new();
    let mut consumed_total = 0usize;
    let mut at = 0;
    let mut k = 0;
    while at < stream.len() {
        let len = sizes
            .get(k % sizes.len().max(1))
            .copied()
            .unwrap_or(stream.len());
        k += 1;
        let chunk = &stream[at..(at + len).min(stream.len())];
        at += chunk.len();
        let mut rest = chunk;
        let mut budget = 4 * chunk.len() + 4;
        while !rest.is_empty() {
            budget -= 1;
            assert!(budget > 0, "no progress");
            let (n, d) = dec.feed(rest);
            assert!(n <= rest.len());
            assert!(n > 0 || d.is_some(), "no progress and no result");
            let ev = match d {
                Some(Decoded::Frame(f)) => {
                    assert!(f.body.len() <= max_body);
                    Some(Ev::Frame(f.msg_id, f.body.to_vec()))
                }
                Some(Decoded::Skipped(Skipped::Garbage { len })) => {
                    assert!(len > 0);
                    Some(Ev::Garbage(len))
                }
                Some(Decoded::Skipped(Skipped::Oversize { body_len })) => {
                    assert!(body_len as usize > max_body);
                    Some(Ev::Oversize(body_len))
                }
                Some(Decoded::Skipped(Skipped::BadSize { size })) => {
                    assert!(size < 4);
                    Some(Ev::BadSize(size))
                }
                None => None,
            };
            match (evs.last_mut(), ev) {
                (Some(Ev::Garbage(prev)), Some(Ev::Garbage(len))) => *prev += len,
                (_, Some(ev)) => evs.push(ev),
                (_, None) => {}
            }
            consumed_total += n;
            rest = &rest[n..];
        }
    }
    assert_eq!(consumed_total, stream.len());
    (evs, dec)
}

/// Checks that the results account for every byte of a `total`-byte stream.
fn check_accounting(evs: &[Ev], dec: &FrameDecoder<[u8; 256]>, total: usize) {
    let header = HEADER_LEN as u64;
    let accounted: u64 = evs
        .iter()
        .map(|ev| match ev {
            Ev::Frame(_, body) => header + body.len() as u64,
            Ev::Garbage(len) => *len as u64,
            Ev::Oversize(body_len) => header + u64::from(*body_len),
            Ev::BadSize(_) => 4,
        })
        .sum::<u64>()
        + dec.buffered() as u64;
    if dec.is_idle() || dec.buffered() > 0 {
        assert_eq!(accounted, total as u64);
    } else {
        // Stream ended while skipping an oversize frame.
        assert!(accounted > total as u64);
    }
}

/// Runs the checks on one input; panics when one fails.
pub fn check(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8).min(rest.len());
    let (size_bytes, stream) = rest.split_at(n);
    let sizes: Vec<usize> = size_bytes.iter().map(|&b| usize::from(b) + 1).collect();

    let (chunked, dec) = decode(stream, &sizes);
    check_accounting(&chunked, &dec, stream.len());
    let (whole, whole_dec) = decode(stream, &[]);
    assert_eq!(chunked, whole);
    assert_eq!(dec.buffered(), whole_dec.buffered());
    assert_eq!(dec.is_idle(), whole_dec.is_idle());
}
