//! Fuzz target `config`: the checks are in `../checks/config.rs`, shared with
//! the corpus regression test (`core/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../checks/config.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
