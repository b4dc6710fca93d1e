//! Fuzz target `pattern`: the checks are in `../checks/pattern.rs`, shared with
//! the corpus regression test (`core/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../checks/pattern.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
