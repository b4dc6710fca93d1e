//! Fuzz target `compact`: the checks are in `../checks/compact.rs`, shared with
//! the corpus regression test (`core/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../checks/compact.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
