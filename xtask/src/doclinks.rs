//! A check of the project's own documents: every Markdown link in
//! `README.md`, `DEVELOPERS.md` and `docs/*.md` points into the repository
//! (a clone has nothing else) at a file that exists, and an anchor
//! (`file.md#heading`) at a heading of that file.

#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};

/// The `(target)` of every `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(&rest[..end]);
            rest = &rest[end..];
        }
    }
    out
}

/// GitHub's anchor of a heading: lowercase, spaces to `-`, punctuation
/// other than `-` and `_` dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

/// What is wrong with the link `target` found in `file`, if anything.
fn check(root: &Path, file: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return Some(format!("{target} leads outside the repository"));
    }
    let (path, fragment) = match target.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (target, None),
    };
    let dest: PathBuf = if path.is_empty() {
        file.to_path_buf()
    } else {
        file.parent().unwrap_or(root).join(path)
    };
    let Ok(dest) = dest.canonicalize() else {
        return Some(format!("{target}: no such file"));
    };
    if !dest.starts_with(root) {
        return Some(format!("{target} leads outside the repository"));
    }
    let fragment = fragment?;
    let text = fs::read_to_string(&dest).ok()?;
    (!anchors(&text).iter().any(|a| a == fragment))
        .then(|| format!("{target}: no heading #{fragment}"))
}

#[test]
fn anchors_follow_github() {
    assert_eq!(anchor(" Threat model"), "threat-model");
    assert_eq!(anchor("5.1 Frame: `\\0NFY`"), "51-frame-0nfy");
    assert_eq!(
        link_targets("see [a](x.md) and [b](y.md#z)."),
        ["x.md", "y.md#z"]
    );
}

#[test]
fn documents_link_only_inside_the_repository() {
    let root = crate::root().canonicalize().unwrap();
    let mut files = vec![root.join("README.md"), root.join("DEVELOPERS.md")];
    for e in fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    let mut bad = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        for target in link_targets(&text) {
            if let Some(why) = check(&root, file, target) {
                bad.push(format!("{}: {why}", file.display()));
            }
        }
        assert!(
            !text.contains("shared/spec"),
            "{} refers to the spec outside the repository",
            file.display()
        );
    }
    assert!(bad.is_empty(), "{bad:#?}");
}
