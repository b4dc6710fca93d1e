//! Fuzz checks for the whitelist configuration parser.
//!
//! Parses arbitrary bytes as a `Whitelist<64, 8>`. Checks that it never
//! panics, that an error names a line that exists and prints a message, and
//! that whatever parses prints back (rules via `Display`, interfaces as
//! `interface` lines) to text that parses to the same whitelist.
//!
//! Shared by the fuzz target (`fuzz_targets/config.rs`) and the regression
//! test that replays the committed corpus on stable (`core/tests/fuzz_corpus.rs`).

use nfy_core::whitelist::{Whitelist, MAX_PATTERN_LEN};

type Wl = Whitelist<64, 8>;

/// Runs the checks on one input; panics when one fails.
pub fn check(data: &[u8]) {
    let lines = data.split(|&b| b == b'\n').count();
    match Wl::parse(data) {
        Err(e) => {
            assert!(e.line >= 1 && e.line <= lines, "{e:?} with {lines} lines");
            assert!(!e.to_string().is_empty());
        }
        Ok(wl) => {
            assert_eq!(wl.has_rules(), !wl.rules().is_empty());
            let mut again = String::new();
            for rule in wl.rules() {
                for p in [&rule.from, &rule.to, &rule.notification] {
                    assert!(!p.as_str().is_empty() && p.as_str().len() <= MAX_PATTERN_LEN);
                }
                again.push_str(&format!("{rule}\n"));
            }
            for iface in wl.interfaces() {
                again.push_str(&format!("interface {iface}\n"));
            }
            assert_eq!(Wl::parse(again.as_bytes()), Ok(wl), "{again:?}");
        }
    }
}
