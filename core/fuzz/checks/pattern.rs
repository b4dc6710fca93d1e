//! Fuzz checks for the whitelist pattern matcher.
//!
//! The input is read as UTF-8 (lossily) and split at the first `\n` into a
//! pattern and a text. Checks that `matches` never panics nor hangs, that a
//! validated `Pattern` agrees with the raw function, that an escaped copy of
//! the text matches the text, and, on short inputs, that the matcher agrees
//! with a simple dynamic-programming reference.
//!
//! Shared by the fuzz target (`fuzz_targets/pattern.rs`) and the regression
//! test that replays the committed corpus on stable (`core/tests/fuzz_corpus.rs`).

use nfy_core::whitelist::{matches, Pattern};

#[derive(Clone, Copy)]
enum Token {
    Star,
    Lit(char),
    Never,
}

fn tokens(pattern: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Token::Star,
            '\\' => chars.next().map_or(Token::Never, Token::Lit),
            c => Token::Lit(c),
        });
    }
    out
}

/// `dp[i][j]`: tokens `p[i..]` match chars `t[j..]`.
fn reference(pattern: &str, text: &str) -> bool {
    let p = tokens(pattern);
    let t: Vec<char> = text.chars().collect();
    let mut dp = vec![vec![false; t.len() + 1]; p.len() + 1];
    dp[p.len()][t.len()] = true;
    for i in (0..p.len()).rev() {
        for j in (0..=t.len()).rev() {
            dp[i][j] = match p[i] {
                Token::Star => dp[i + 1][j] || (j < t.len() && dp[i][j + 1]),
                Token::Lit(c) => j < t.len() && t[j] == c && dp[i + 1][j + 1],
                Token::Never => false,
            };
        }
    }
    dp[0][0]
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c == '*' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Runs the checks on one input; panics when one fails.
pub fn check(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    let (pattern, text) = input.split_once('\n').unwrap_or((&input, ""));

    let got = matches(pattern, text);
    if pattern.len() <= 64 && text.len() <= 256 {
        assert_eq!(got, reference(pattern, text), "{pattern:?} vs {text:?}");
    }
    if let Ok(p) = Pattern::new(pattern) {
        assert_eq!(p.as_str(), pattern);
        assert_eq!(p.matches(text), got);
    }
    let escaped = escape(text);
    assert!(matches(&escaped, text), "{escaped:?} vs {text:?}");
    assert!(matches(
        &format!("*{escaped}*"),
        &format!("{pattern}{text}{pattern}")
    ));
}
