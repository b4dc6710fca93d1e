//! The configuration file parser. The format and the decisions taken where
//! the spec is silent are documented on the parent module
//! ([`crate::whitelist`]).

use core::net::IpAddr;

use heapless::String;

use super::MAX_IFACE_LEN;
use super::{ConfigError, ConfigErrorKind, Direction, Interface, Pattern, Rule, Whitelist};

/// The UTF-8 byte-order mark some editors put at the start of a file.
const BOM: &str = "\u{feff}";

/// True for the characters that separate fields.
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The fields of one line: runs of non-blank characters, where `\` also
/// protects a following blank.
struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest.trim_start_matches(is_blank);
        if rest.is_empty() {
            self.rest = rest;
            return None;
        }
        let mut end = rest.len();
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if is_blank(c) {
                end = i;
                break;
            }
        }
        // `end` is a char boundary (from `char_indices`, or the length), so
        // the checked split always succeeds; fall back to the whole rest.
        let (field, tail) = rest.split_at_checked(end).unwrap_or((rest, ""));
        self.rest = tail;
        Some(field)
    }
}

/// What one line holds.
enum Line<'a> {
    /// Blank or comment.
    Nothing,
    /// An `in` or `out` rule: its direction and the three pattern fields, not
    /// yet validated (see [`rule`]; a built [`Rule`] is too big to pass
    /// around in an enum by value).
    Rule(Direction, [&'a str; 3]),
    /// An `interface` line.
    Interface(Interface),
}

/// Turns a field count into the `found` of
/// [`FieldCount`](ConfigErrorKind::FieldCount), saturating.
fn found(count: usize) -> u8 {
    u8::try_from(count).unwrap_or(u8::MAX)
}

/// Parses one line, already split off and stripped of its `\r`.
fn parse_line(line: &str) -> Result<Line<'_>, ConfigErrorKind> {
    let content = line.trim_matches(is_blank);
    if content.is_empty() || content.starts_with('#') {
        return Ok(Line::Nothing);
    }
    if content.chars().any(|c| c.is_control() && !is_blank(c)) {
        return Err(ConfigErrorKind::ControlChar);
    }
    let mut fields = Fields { rest: content };
    let direction = match fields.next() {
        Some("in") => Direction::In,
        Some("out") => Direction::Out,
        Some("interface") => return parse_interface(fields).map(Line::Interface),
        _ => return Err(ConfigErrorKind::UnknownKeyword),
    };
    let mut values = [""; 3];
    let mut count = 0usize;
    for field in fields {
        if let Some(slot) = values.get_mut(count) {
            *slot = field;
        }
        count = count.saturating_add(1);
    }
    if count != 3 {
        return Err(ConfigErrorKind::FieldCount {
            expected: 3,
            found: found(count),
        });
    }
    Ok(Line::Rule(direction, values))
}

/// Builds a rule from the fields of an `in`/`out` line, validating each.
fn rule(direction: Direction, fields: [&str; 3]) -> Result<Rule, ConfigErrorKind> {
    let [from, to, notification] = fields;
    Ok(Rule {
        direction,
        from: Pattern::new(from)?,
        to: Pattern::new(to)?,
        notification: Pattern::new(notification)?,
    })
}

/// Parses the fields after `interface`.
fn parse_interface(mut fields: Fields<'_>) -> Result<Interface, ConfigErrorKind> {
    let field = fields.next();
    let extra = fields.count();
    let Some(field) = field.filter(|_| extra == 0) else {
        let count = usize::from(field.is_some()).saturating_add(extra);
        return Err(ConfigErrorKind::FieldCount {
            expected: 1,
            found: found(count),
        });
    };
    Interface::parse(field)
}

impl Interface {
    /// Parses the argument of an `interface` line: an IP address when it
    /// parses as one, else an interface name (an ASCII letter, then ASCII
    /// letters, digits, `.`, `_`, `-`, `:`; at most [`MAX_IFACE_LEN`] bytes).
    pub fn parse(s: &str) -> Result<Self, ConfigErrorKind> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Interface::Ip(ip));
        }
        if s.len() > MAX_IFACE_LEN {
            return Err(ConfigErrorKind::TooLong);
        }
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        let rest_ok =
            chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
        if !(first_ok && rest_ok) {
            return Err(ConfigErrorKind::BadInterface);
        }
        let mut name = String::new();
        name.push_str(s).map_err(|_| ConfigErrorKind::TooLong)?;
        Ok(Interface::Name(name))
    }
}

impl<const RULES: usize, const IFACES: usize> Whitelist<RULES, IFACES> {
    /// Implements [`Whitelist::parse`].
    pub(super) fn parse_bytes(text: &[u8]) -> Result<Self, ConfigError> {
        let mut list = Self::new();
        for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
            let line_no = index.saturating_add(1);
            let error = |kind| ConfigError {
                line: line_no,
                kind,
            };
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let line = core::str::from_utf8(raw).map_err(|_| error(ConfigErrorKind::NotUtf8))?;
            let line = if index == 0 {
                line.strip_prefix(BOM).unwrap_or(line)
            } else {
                line
            };
            match parse_line(line).map_err(error)? {
                Line::Nothing => {}
                Line::Rule(direction, fields) => {
                    let rule = rule(direction, fields).map_err(error)?;
                    list.push_rule(rule)
                        .map_err(|_| error(ConfigErrorKind::TooManyRules))?;
                }
                Line::Interface(iface) => {
                    if !list.interfaces().contains(&iface) {
                        list.push_interface(iface)
                            .map_err(|_| error(ConfigErrorKind::TooManyInterfaces))?;
                    }
                }
            }
        }
        Ok(list)
    }
}
