//! Fuzz target `json`: the checks are in `../checks/json.rs`, shared with
//! the corpus regression test (`core/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../checks/json.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
