//! The whitelist (spec section 4): configuration parser and pattern matcher.
//!
//! STUB: the API below is fixed; the bodies are to be written (issue 2,
//! whitelist).

use core::fmt;

use heapless::{String, Vec};

/// Longest pattern (one field of a rule) in bytes, escapes included.
pub const MAX_PATTERN_LEN: usize = 130;
/// Longest interface name in an `interface` line.
pub const MAX_IFACE_LEN: usize = 64;

/// Matches `text` against a whitelist pattern: `*` matches any sequence
/// (including none), `\` makes the next character literal, everything else
/// matches itself, case-sensitively.
pub fn matches(pattern: &str, text: &str) -> bool {
    pattern == text
}

/// Which way a rule filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `in`: what remote clients may send.
    In,
    /// `out`: what remote registrations may receive.
    Out,
}

/// One field of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern(String<MAX_PATTERN_LEN>);

impl Pattern {
    /// The pattern text as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// True when `text` matches this pattern (see [`matches`]).
    pub fn matches(&self, text: &str) -> bool {
        matches(self.as_str(), text)
    }
}

/// One `in` or `out` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// `in` or `out`.
    pub direction: Direction,
    /// Pattern for the source app ID.
    pub from: Pattern,
    /// Pattern for the destination as sent (`X`, `1`, `*`).
    pub to: Pattern,
    /// Pattern for the notification ID.
    pub notification: Pattern,
}

/// One `interface` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Interface {
    /// An IP address to bind.
    Ip(core::net::IpAddr),
    /// An interface name (`eth0`), resolved by the platform.
    Name(String<MAX_IFACE_LEN>),
}

/// What is wrong with a configuration line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The line is not valid UTF-8.
    NotUtf8,
    /// The first word is not `in`, `out` or `interface`.
    UnknownKeyword,
    /// The line has the wrong number of fields for its keyword.
    FieldCount {
        /// Fields the keyword takes after itself.
        expected: u8,
        /// Fields found.
        found: u8,
    },
    /// A pattern or interface name is too long.
    TooLong,
    /// A pattern ends with a lone `\`.
    DanglingEscape,
    /// A control character in a field.
    ControlChar,
    /// More rules than the rule set holds.
    TooManyRules,
    /// More `interface` lines than the set holds.
    TooManyInterfaces,
}

/// A configuration syntax error with its 1-based line number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub kind: ConfigErrorKind,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {:?}", self.line, self.kind)
    }
}

impl core::error::Error for ConfigError {}

/// A parsed configuration: rules and interfaces, fixed capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whitelist<const RULES: usize, const IFACES: usize> {
    rules: Vec<Rule, RULES>,
    interfaces: Vec<Interface, IFACES>,
}

impl<const RULES: usize, const IFACES: usize> Default for Whitelist<RULES, IFACES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const RULES: usize, const IFACES: usize> Whitelist<RULES, IFACES> {
    /// The empty whitelist: no rules, no interfaces (nothing remote passes).
    pub const fn new() -> Self {
        Whitelist {
            rules: Vec::new(),
            interfaces: Vec::new(),
        }
    }

    /// Parses configuration text.
    pub fn parse(text: &[u8]) -> Result<Self, ConfigError> {
        let _ = text;
        Ok(Self::new())
    }

    /// True when the configuration holds at least one `in` or `out` rule.
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The `interface` lines, in file order.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// May a remote client send this notification?
    pub fn allows_in(&self, from: &str, to: &str, notification: &str) -> bool {
        self.allows(Direction::In, from, to, notification)
    }

    /// May a remote registration receive this notification?
    pub fn allows_out(&self, from: &str, to: &str, notification: &str) -> bool {
        self.allows(Direction::Out, from, to, notification)
    }

    fn allows(&self, dir: Direction, from: &str, to: &str, notification: &str) -> bool {
        self.rules.iter().any(|r| {
            r.direction == dir
                && r.from.matches(from)
                && r.to.matches(to)
                && r.notification.matches(notification)
        })
    }
}
