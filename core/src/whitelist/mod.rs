//! The whitelist (spec section 4): configuration parser and pattern matcher.
//!
//! A [`Whitelist`] holds the `in`/`out` [`Rule`]s that decide what remote
//! peers may send and receive, and the `interface` lines that say where the
//! server listens for them. It is parsed once from the configuration file
//! ([`Whitelist::parse`]) or built in code ([`Whitelist::push_rule`],
//! [`Pattern::new`]), and then only read.
//!
//! # Patterns
//!
//! A pattern is read as a sequence of tokens:
//!
//! | written | matches |
//! |---|---|
//! | `*` | any sequence of characters, including none |
//! | `\c` | exactly the character `c`: `\*` a star, `\\` a backslash, `\ ` a space |
//! | any other `c` | exactly `c`, case-sensitively |
//!
//! Decisions where the spec is silent:
//!
//! - Matching works on Unicode scalar values (`char`s), never on bytes, so a
//!   `*` never ends inside a multi-byte UTF-8 character and a literal `é`
//!   matches exactly one `é`. Nothing is normalised: `é` (U+00E9) and `e` +
//!   U+0301 differ, as they differ as app IDs.
//! - A pattern ending in a lone `\` is a syntax error
//!   ([`ConfigErrorKind::DanglingEscape`]) for [`Pattern::new`] and the
//!   parser. The raw [`matches()`] function, which takes any string, lets such
//!   a pattern match **no text at all**: a whitelist fails closed.
//! - A pattern is 1 to [`MAX_PATTERN_LEN`] bytes without control characters.
//!   130 is room for a 64-byte ID with every character escaped plus a `*` at
//!   each end.
//! - [`matches()`] never recurses and runs in O(pattern × text) time at worst
//!   (the greedy two-pointer wildcard algorithm), so a hostile pattern such
//!   as `*a*a*a*a*a*a*b` cannot blow up. Patterns are stored as written and
//!   matched directly: at ID sizes a compiled form would save nothing worth
//!   its complexity.
//!
//! # Configuration file
//!
//! ```text
//! # nfy whitelist example
//! in  pos-*   payment  start-transaction
//! out *       pos-*    *
//! interface eth0
//! interface 192.168.7.2
//! ```
//!
//! `in|out <from> <to> <notification>` adds a rule; `interface <name|ip>`
//! names a listener; blank lines and `#` comments are ignored. Decisions
//! where the spec is silent:
//!
//! - Lines end at `\n`; one `\r` just before it is removed, so CRLF files
//!   work. A UTF-8 byte-order mark at the very start of the file is skipped.
//!   The last line need not end with `\n`.
//! - Every line must be valid UTF-8, comments included (the file is a UTF-8
//!   text file); otherwise [`ConfigErrorKind::NotUtf8`].
//! - Fields are separated by runs of spaces and tabs; leading and trailing
//!   blanks are ignored. A `\` inside a field escapes the next character even
//!   when it is a blank, so `my\ app` is one field, the pattern for the app
//!   ID `my app`.
//! - A line is a comment when its first non-blank character is `#`. There are
//!   no comments after fields: `#` may be part of an ID, so `in a b c # x` is
//!   a line with five fields, an error.
//! - Keywords are lowercase and case-sensitive, like patterns: `IN` or
//!   `Interface` are reported as unknown keywords rather than guessed at.
//! - Any control character other than space and tab on a non-comment line is
//!   an error ([`ConfigErrorKind::ControlChar`]).
//! - `interface` takes an IPv4 or IPv6 address (as [`core::net::IpAddr`]
//!   parses it, so no IPv6 `%scope` suffix) or an interface name: an ASCII
//!   letter, then ASCII letters, digits, `.`, `_`, `-` or `:` (alias labels
//!   such as `eth0:1`), at most [`MAX_IFACE_LEN`] bytes. The letter first
//!   means a mistyped address such as `192.168.7.256` is reported here
//!   ([`ConfigErrorKind::BadInterface`]) instead of failing later as an
//!   unknown interface. A repeated `interface` line is kept once, so the
//!   platform never binds the same listener twice.
//! - Rules are kept in file order, duplicates included (harmless: each
//!   allows what the other does); every one counts against the capacity.
//! - The first bad line stops the parse and is reported with its 1-based
//!   number: a server never starts on a half-read whitelist.
//! - Whether `interface` lines without rules are ignored (spec: with a
//!   warning) is the adapter's business; the parser keeps them.

mod config;
mod pattern;
#[cfg(test)]
mod tests;

use core::fmt;

use heapless::{String, Vec};

pub use pattern::matches;

/// Longest pattern (one field of a rule) in bytes, escapes included.
pub const MAX_PATTERN_LEN: usize = 130;
/// Longest interface name in an `interface` line.
pub const MAX_IFACE_LEN: usize = 64;

/// Which way a rule filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `in`: what remote clients may send.
    In,
    /// `out`: what remote registrations may receive.
    Out,
}

impl Direction {
    /// The keyword as written in the configuration: `in` or `out`.
    pub const fn keyword(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// One field of a rule: a validated pattern, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern(String<MAX_PATTERN_LEN>);

impl Pattern {
    /// Validates `pattern` and stores it: 1 to [`MAX_PATTERN_LEN`] bytes, no
    /// control characters, no trailing lone `\`. Unescaped spaces are
    /// accepted here (they match spaces), although a configuration file can
    /// only write them escaped (`\ `).
    pub fn new(pattern: &str) -> Result<Self, ConfigErrorKind> {
        if pattern.is_empty() {
            return Err(ConfigErrorKind::EmptyPattern);
        }
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(ConfigErrorKind::TooLong);
        }
        if pattern.chars().any(char::is_control) {
            return Err(ConfigErrorKind::ControlChar);
        }
        if !pattern::escapes_ok(pattern) {
            return Err(ConfigErrorKind::DanglingEscape);
        }
        let mut text = String::new();
        text.push_str(pattern)
            .map_err(|_| ConfigErrorKind::TooLong)?;
        Ok(Pattern(text))
    }

    /// The pattern text as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// True when `text` matches this pattern (see [`matches()`]).
    pub fn matches(&self, text: &str) -> bool {
        matches(self.as_str(), text)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for Pattern {
    type Err = ConfigErrorKind;
    fn from_str(s: &str) -> Result<Self, ConfigErrorKind> {
        Self::new(s)
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

impl Rule {
    /// True when all three patterns match (the direction is not looked at).
    pub fn matches(&self, from: &str, to: &str, notification: &str) -> bool {
        self.from.matches(from) && self.to.matches(to) && self.notification.matches(notification)
    }
}

impl fmt::Display for Rule {
    /// Writes the rule as a configuration line (`in pos-* payment start`),
    /// which parses back to the same rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.direction, self.from, self.to, self.notification
        )
    }
}

/// One `interface` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Interface {
    /// An IP address to bind.
    Ip(core::net::IpAddr),
    /// An interface name (`eth0`), resolved by the platform.
    Name(String<MAX_IFACE_LEN>),
}

impl fmt::Display for Interface {
    /// Writes the argument of the `interface` line (`eth0`, `192.168.7.2`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interface::Ip(ip) => fmt::Display::fmt(ip, f),
            Interface::Name(name) => f.write_str(name),
        }
    }
}

/// What is wrong with a configuration line (or a pattern built in code).
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
        /// Fields found (255 means 255 or more).
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
    /// An empty pattern (only possible from [`Pattern::new`]: the parser
    /// never sees an empty field).
    EmptyPattern,
    /// The argument of `interface` is neither an IP address nor a valid
    /// interface name.
    BadInterface,
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigErrorKind::NotUtf8 => f.write_str("the line is not valid UTF-8 text"),
            ConfigErrorKind::UnknownKeyword => f.write_str(
                "unknown keyword: a line starts with \"in\", \"out\" or \"interface\" \
                 (lowercase), or with \"#\" for a comment",
            ),
            ConfigErrorKind::FieldCount { expected: 3, found } => write!(
                f,
                "\"in\" and \"out\" take 3 fields (from, to, notification), found {found}"
            ),
            ConfigErrorKind::FieldCount { expected: 1, found } => write!(
                f,
                "\"interface\" takes 1 field (an interface name or an IP address), \
                 found {found}"
            ),
            ConfigErrorKind::FieldCount { expected, found } => {
                write!(
                    f,
                    "expected {expected} fields after the keyword, found {found}"
                )
            }
            ConfigErrorKind::TooLong => write!(
                f,
                "a field is too long (patterns hold at most {MAX_PATTERN_LEN} bytes, \
                 interface names at most {MAX_IFACE_LEN})"
            ),
            ConfigErrorKind::DanglingEscape => f.write_str(
                "a pattern ends with a lone \"\\\" (write \"\\\\\" for a literal backslash)",
            ),
            ConfigErrorKind::ControlChar => {
                f.write_str("control character (only spaces and tabs may separate fields)")
            }
            ConfigErrorKind::TooManyRules => {
                f.write_str("too many \"in\"/\"out\" rules for the whitelist's fixed capacity")
            }
            ConfigErrorKind::TooManyInterfaces => {
                f.write_str("too many \"interface\" lines for the whitelist's fixed capacity")
            }
            ConfigErrorKind::EmptyPattern => f.write_str("empty pattern"),
            ConfigErrorKind::BadInterface => f.write_str(
                "\"interface\" needs an IP address or an interface name (an ASCII letter, \
                 then letters, digits, '.', '_', '-' or ':')",
            ),
        }
    }
}

impl core::error::Error for ConfigErrorKind {}

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
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

impl core::error::Error for ConfigError {}

/// A parsed configuration: rules and interfaces, fixed capacity.
///
/// With no rules nothing remote passes: [`allows_in`](Self::allows_in) and
/// [`allows_out`](Self::allows_out) are false for everything.
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

    /// Parses configuration text (format and decisions in the
    /// [module docs](self)). The first bad line stops the parse and is
    /// reported with its 1-based number.
    pub fn parse(text: &[u8]) -> Result<Self, ConfigError> {
        Self::parse_bytes(text)
    }

    /// Appends a rule (for tests and adapters that build a whitelist in
    /// code); gives it back when the rule set is full (`heapless` style: with
    /// no allocator there is nothing to box, and the caller keeps the rule).
    #[allow(
        clippy::result_large_err,
        reason = "heapless-style give-back of the value; no allocator to box it"
    )]
    pub fn push_rule(&mut self, rule: Rule) -> Result<(), Rule> {
        self.rules.push(rule)
    }

    /// Appends an interface; gives it back when the set is full. Unlike the
    /// parser, this does not skip duplicates.
    pub fn push_interface(&mut self, interface: Interface) -> Result<(), Interface> {
        self.interfaces.push(interface)
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

    /// May a remote client send this notification? True when some `in`
    /// rule matches (from, to as sent, notification ID).
    pub fn allows_in(&self, from: &str, to: &str, notification: &str) -> bool {
        self.allows(Direction::In, from, to, notification)
    }

    /// May a remote registration receive this notification? True when some
    /// `out` rule matches (from, to as sent, notification ID).
    pub fn allows_out(&self, from: &str, to: &str, notification: &str) -> bool {
        self.allows(Direction::Out, from, to, notification)
    }

    fn allows(&self, dir: Direction, from: &str, to: &str, notification: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.direction == dir && r.matches(from, to, notification))
    }
}
