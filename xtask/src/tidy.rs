//! Tidy checks of the source tree (as rust-analyzer's xtask keeps them):
//! every crate and module whose docs hold a table of its modules (a
//! Markdown table whose first header cell is `module`) lists exactly the
//! modules it declares, so the map a newcomer reads first cannot go stale.

#![cfg(test)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The source folders checked: every crate's `src/`.
const SOURCES: &[&str] = &[
    "core/src",
    "platform-linux/src",
    "platform-verix-sim/src",
    "platform-baremetal/src",
    "bridge/src",
    "capi/src",
    "test-support/src",
    "tests/src",
    "xtask/src",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The names in the first column of the module table in the leading `//!`
/// docs of `text`; `None` when the docs hold no such table.
fn table_modules(text: &str) -> Option<BTreeSet<String>> {
    let docs: Vec<&str> = text
        .lines()
        .take_while(|l| l.starts_with("//!") || l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("//!"))
        .map(str::trim)
        .collect();
    let header = docs.iter().position(|l| {
        l.starts_with('|')
            && l.trim_start_matches('|')
                .split('|')
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("module"))
    })?;
    let mut names = BTreeSet::new();
    // The header, the `|---|` line, then rows until the table ends.
    for row in docs[header + 2..].iter().take_while(|l| l.starts_with('|')) {
        let cell = row.trim_start_matches('|').split('|').next().unwrap_or("");
        let name: String = cell
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_matches('`')
            .to_owned();
        // `main.rs` or "this file" rows name files, not modules.
        if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            names.insert(name);
        }
    }
    Some(names)
}

/// The modules `text` declares in files of their own (`mod x;`, with any
/// visibility), test modules excepted.
fn declared_modules(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter_map(|l| {
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l
                .strip_prefix("pub(crate) ")
                .or_else(|| l.strip_prefix("pub(super) "))
                .unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            (name != "tests").then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn module_tables_are_read_from_the_first_column() {
    let text = "//! # x\n//!\n//! | module | holds |\n//! |---|---|\n//! | [`a`] | A |\n//! | `b` | B |\n//! | `main.rs` | firmware |\n//! | this file | more |\n//!\n//! more\n\npub mod a;\nmod b;\n#[cfg(test)]\nmod tests;\n";
    assert_eq!(
        table_modules(text),
        Some(["a".to_owned(), "b".to_owned()].into())
    );
    assert_eq!(
        declared_modules(text),
        ["a".to_owned(), "b".to_owned()].into()
    );
    assert_eq!(table_modules("//! no table\nmod a;\n"), None);
}

#[test]
fn module_tables_list_every_module() {
    let root = crate::root();
    let mut files = Vec::new();
    for dir in SOURCES {
        rust_files(&root.join(dir), &mut files);
    }
    let mut bad = Vec::new();
    let mut tables = 0;
    for file in &files {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        let Some(listed) = table_modules(&text) else {
            continue;
        };
        tables += 1;
        let declared = declared_modules(&text);
        let shown = file.strip_prefix(&root).unwrap_or(file).display();
        for m in declared.difference(&listed) {
            bad.push(format!(
                "{shown}: module `{m}` is missing from its module table"
            ));
        }
        for m in listed.difference(&declared) {
            bad.push(format!(
                "{shown}: its module table lists `{m}`, which it does not declare"
            ));
        }
    }
    eprintln!("tidy: {tables} module tables checked");
    assert!(
        tables >= 5,
        "only {tables} module tables found: is the parser broken?"
    );
    assert!(bad.is_empty(), "{bad:#?}");
}
