//! The pattern matcher. The pattern language and the decisions taken are
//! documented on the parent module ([`crate::whitelist`]).
//!
//! The matcher is the classic greedy two-pointer wildcard algorithm: walk
//! pattern and text together, remember the position after the last `*` seen
//! and the text position it was tried at, and on a mismatch let that star
//! absorb one more character and retry. Only the last star ever needs to be
//! revisited: whatever an earlier star could absorb, the later star can
//! absorb as well. So the run time is O(pattern × text) in the worst case,
//! without recursion and without exponential blow-up, and the only state is
//! a few `Chars` iterators.

use core::str::Chars;

/// One token of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// `*`: any sequence of characters.
    Star,
    /// A character that must appear as is (plain or escaped).
    Literal(char),
    /// A lone `\` at the end of the pattern: matches no character.
    DanglingEscape,
}

/// Reads the next token from `pattern`, advancing it; `None` at the end.
pub(crate) fn next_token(pattern: &mut Chars<'_>) -> Option<Token> {
    Some(match pattern.next()? {
        '*' => Token::Star,
        '\\' => match pattern.next() {
            Some(c) => Token::Literal(c),
            None => Token::DanglingEscape,
        },
        c => Token::Literal(c),
    })
}

/// Matches `text` against a whitelist pattern: `*` matches any sequence
/// (including none), `\` makes the next character literal, everything else
/// matches itself, case-sensitively.
///
/// Works on `char`s, so `*` never splits a UTF-8 character. A pattern that
/// ends in a lone `\` (which [`Pattern::new`](super::Pattern::new) refuses)
/// matches nothing. Never panics; O(pattern × text) in the worst case, no
/// recursion (see the [module docs](crate::whitelist)).
pub fn matches(pattern: &str, text: &str) -> bool {
    let mut p = pattern.chars();
    let mut t = text.chars();
    // After the last star seen: (pattern just after it, text where the star's
    // match currently ends).
    let mut last_star: Option<(Chars<'_>, Chars<'_>)> = None;
    loop {
        let mut p_next = p.clone();
        let token = next_token(&mut p_next);
        let mut t_next = t.clone();
        let ch = t_next.next();
        match (token, ch) {
            (None, None) => return true,
            (Some(Token::Star), _) => {
                // Try the star on the empty sequence first.
                last_star = Some((p_next.clone(), t.clone()));
                p = p_next;
                continue;
            }
            (Some(Token::Literal(want)), Some(got)) if want == got => {
                p = p_next;
                t = t_next;
                continue;
            }
            // Pattern left over with no text, text left over with no pattern,
            // a literal mismatch or a dangling escape: backtrack.
            _ => {}
        }
        let Some((star_p, star_t)) = last_star.as_mut() else {
            return false;
        };
        // Let the last star absorb one more character; when the text is used
        // up it cannot, and no earlier star could help either.
        if star_t.next().is_none() {
            return false;
        }
        p = star_p.clone();
        t = star_t.clone();
    }
}

/// True when every `\` in `pattern` escapes a character (no trailing lone
/// `\`).
pub(crate) fn escapes_ok(pattern: &str) -> bool {
    let mut p = pattern.chars();
    while let Some(token) = next_token(&mut p) {
        if token == Token::DanglingEscape {
            return false;
        }
    }
    true
}
