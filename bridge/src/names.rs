//! Terminal IDs and the names remote apps have locally.
//!
//! **Decision**: a remote app appears on a terminal as `<app>@<terminal>`
//! (a *qualified* app ID): `ui@lane-2` is the app `ui` of terminal
//! `lane-2`. Every terminal of a fleet usually runs the same apps (`ui`,
//! `payment`), so a plain app ID could not say which terminal is meant,
//! and a receiver must be able to answer its sender: the `from` of a
//! notification that crossed is qualified the same way. App IDs of the
//! form `<x>@<terminal>` are therefore reserved for the bridge on
//! terminals that run one; local apps should not use `@` in their IDs.

use std::fmt;

use nfy_core::ids::MAX_ID_LEN;

/// Longest terminal ID, in bytes.
pub const MAX_TERMINAL_LEN: usize = 48;

/// A terminal ID: 1 to [`MAX_TERMINAL_LEN`] ASCII letters, digits, `.`,
/// `_` or `-`, starting with a letter or digit. (No `@`, `/`, `+`, `#` or
/// `*`: it is a topic level, the end of a qualified app ID and never a
/// wildcard; no leading `_`, which names the bridge's own topics.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TerminalId(String);

/// Why a terminal ID was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalIdError {
    /// Empty.
    Empty,
    /// Longer than [`MAX_TERMINAL_LEN`].
    TooLong,
    /// A character outside the allowed set, or a bad first character.
    BadChar,
}

impl fmt::Display for TerminalIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TerminalIdError::Empty => "terminal ID is empty",
            TerminalIdError::TooLong => "terminal ID is longer than 48 bytes",
            TerminalIdError::BadChar => {
                "terminal ID must be ASCII letters, digits, '.', '_' or '-', starting with a letter or digit"
            }
        })
    }
}

impl std::error::Error for TerminalIdError {}

impl TerminalId {
    /// Checks `s` against the rules above.
    pub fn new(s: &str) -> Result<Self, TerminalIdError> {
        if s.is_empty() {
            return Err(TerminalIdError::Empty);
        }
        if s.len() > MAX_TERMINAL_LEN {
            return Err(TerminalIdError::TooLong);
        }
        let ok_first = s.as_bytes()[0].is_ascii_alphanumeric();
        let ok_rest = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok_first || !ok_rest {
            return Err(TerminalIdError::BadChar);
        }
        Ok(TerminalId(s.to_owned()))
    }

    /// The ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TerminalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `<app>@<terminal>`, when that is still a valid app ID (at most
/// [`MAX_ID_LEN`] bytes); `None` otherwise.
pub fn qualify(app: &str, terminal: &TerminalId) -> Option<String> {
    let q = format!("{app}@{terminal}");
    (q.len() <= MAX_ID_LEN).then_some(q)
}

/// Splits a qualified app ID into (app, terminal) at its last `@`, when
/// what follows is a valid terminal ID and what precedes is not empty.
pub fn split_qualified(id: &str) -> Option<(&str, TerminalId)> {
    let (app, terminal) = id.rsplit_once('@')?;
    if app.is_empty() {
        return None;
    }
    Some((app, TerminalId::new(terminal).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_ids() {
        assert!(TerminalId::new("lane-1").is_ok());
        assert!(TerminalId::new("A.b_9").is_ok());
        assert_eq!(TerminalId::new(""), Err(TerminalIdError::Empty));
        assert_eq!(TerminalId::new("_reply"), Err(TerminalIdError::BadChar));
        for bad in ["a/b", "a+b", "a#b", "*", "a@b", "a b", "é"] {
            assert_eq!(TerminalId::new(bad), Err(TerminalIdError::BadChar), "{bad}");
        }
        assert_eq!(
            TerminalId::new(&"x".repeat(MAX_TERMINAL_LEN + 1)),
            Err(TerminalIdError::TooLong)
        );
    }

    #[test]
    fn qualified_names() {
        let t = TerminalId::new("lane-2").unwrap();
        assert_eq!(qualify("ui", &t).as_deref(), Some("ui@lane-2"));
        assert_eq!(qualify(&"x".repeat(60), &t), None);
        assert_eq!(split_qualified("ui@lane-2"), Some(("ui", t.clone())));
        assert_eq!(split_qualified("a@b@lane-2"), Some(("a@b", t)));
        assert_eq!(split_qualified("ui"), None);
        assert_eq!(split_qualified("@lane-2"), None);
        assert_eq!(split_qualified("ui@"), None);
        assert_eq!(split_qualified("ui@bad/term"), None);
    }
}
