//! Fuzz target `frame`: the checks are in `../checks/frame.rs`, shared with
//! the corpus regression test (`core/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../checks/frame.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
