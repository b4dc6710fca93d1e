//! The fuzz corpus as a regression test, on stable: every committed input
//! of `fuzz/corpus/<target>/` (the minimized corpus of the 10-minute
//! `cargo fuzz` runs) and `fuzz/artifacts/<target>/` (crash reproducers,
//! when there are any) goes through the very checks the fuzz targets run
//! (`fuzz/checks/<target>.rs`, included here by path).

// The checks fail loudly: that is their job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

#[path = "../fuzz/checks/compact.rs"]
mod compact;
#[path = "../fuzz/checks/config.rs"]
mod config;
#[path = "../fuzz/checks/frame.rs"]
mod frame;
#[path = "../fuzz/checks/json.rs"]
mod json;
#[path = "../fuzz/checks/pattern.rs"]
mod pattern;

/// The committed inputs of `target`: corpus and artifacts, sorted.
fn inputs(target: &str) -> (Vec<PathBuf>, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut corpus = Vec::new();
    let mut artifacts = Vec::new();
    for (dir, out) in [("corpus", &mut corpus), ("artifacts", &mut artifacts)] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if path.is_file() && !hidden {
                out.push(path);
            }
        }
    }
    let n_corpus = corpus.len();
    corpus.extend(artifacts);
    corpus.sort();
    (corpus, n_corpus)
}

/// Runs `check` on every committed input of `target`, naming the file of a
/// failure; the corpus must not be empty (a missing corpus would make this
/// test pass by default).
fn replay(target: &str, check: fn(&[u8])) {
    let (files, n_corpus) = inputs(target);
    assert!(
        n_corpus >= 10,
        "fuzz/corpus/{target}/ holds {n_corpus} inputs; expected the minimized corpus"
    );
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(
            result.is_ok(),
            "fuzz check {target} fails on {}",
            file.display()
        );
    }
}

#[test]
fn frame_corpus() {
    replay("frame", frame::check);
}

#[test]
fn json_corpus() {
    replay("json", json::check);
}

#[test]
fn compact_corpus() {
    replay("compact", compact::check);
}

#[test]
fn config_corpus() {
    replay("config", config::check);
}

#[test]
fn pattern_corpus() {
    replay("pattern", pattern::check);
}
