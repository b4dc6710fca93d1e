//! The topic scheme (stable; documented in README, "Fleets").
//!
//! | topic | retained | payload ([`crate::payload`]) | who publishes |
//! |---|---|---|---|
//! | `nfy/<terminal>/<to>/<notification>` | no | a notification | a bridge (or any tool) for terminal `<terminal>`; `<to>` is an app ID of that terminal, `1` or `*` |
//! | `nfy/*/*/<notification>` | no | a broadcast | for every terminal |
//! | `nfy/_reply/<terminal>` | no | outcomes of unicasts terminal `<terminal>` sent | the receiving bridge |
//! | `nfy/_presence/<terminal>` | yes | what `<terminal>` exports, online or not | its bridge (the broker publishes the offline one as its will) |
//! | `nfy/_status/<terminal>` | yes | the bridge's counters | its bridge |
//!
//! The root (`nfy`) is the `--prefix` option. Each level that holds an ID
//! is the ID with `%`, `/`, `+` and `#` percent-encoded (`%25`, `%2F`,
//! `%2B`, `%23`), so every app and notification ID is one level and never
//! a wildcard; an ID without those characters is its own level. Terminal
//! IDs never need it ([`crate::names::TerminalId`]).

use std::borrow::Cow;

use crate::names::TerminalId;

/// The destination terminal level meaning "every terminal".
pub const ALL: &str = "*";
/// The level of reply topics.
pub const REPLY: &str = "_reply";
/// The level of presence topics.
pub const PRESENCE: &str = "_presence";
/// The level of status topics.
pub const STATUS: &str = "_status";

/// Percent-encodes the characters that cannot stand in one topic level.
pub fn encode_level(id: &str) -> Cow<'_, str> {
    if !id.contains(['%', '/', '+', '#']) {
        return Cow::Borrowed(id);
    }
    let mut out = String::with_capacity(id.len() + 8);
    for c in id.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '+' => out.push_str("%2B"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Reverses [`encode_level`]; `None` for a `%` not followed by one of the
/// four codes (upper or lower case hex).
pub fn decode_level(level: &str) -> Option<Cow<'_, str>> {
    if !level.contains('%') {
        return Some(Cow::Borrowed(level));
    }
    let mut out = String::with_capacity(level.len());
    let mut rest = level;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code.to_ascii_uppercase().as_str() {
            "25" => '%',
            "2F" => '/',
            "2B" => '+',
            "23" => '#',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(Cow::Owned(out))
}

/// Builds and recognises the topics of one prefix.
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

/// What a received topic is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A notification for terminal `terminal` (`None`: every terminal),
    /// with `to` and `notification` decoded from their levels.
    Notify {
        /// The destination terminal; `None` for `*`.
        terminal: Option<TerminalId>,
        /// The destination as the topic names it.
        to: String,
        /// The notification ID as the topic names it.
        notification: String,
    },
    /// Outcomes for this terminal's unicasts.
    Reply(TerminalId),
    /// A terminal's presence.
    Presence(TerminalId),
    /// A terminal's status.
    Status(TerminalId),
    /// Not ours, or malformed.
    Other,
}

impl Topics {
    /// Topics under `prefix` (for example `nfy`).
    pub fn new(prefix: &str) -> Self {
        Topics {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>/<terminal>/<to>/<notification>`; `terminal` `None` is `*`.
    pub fn notify(&self, terminal: Option<&TerminalId>, to: &str, notification: &str) -> String {
        format!(
            "{}/{}/{}/{}",
            self.prefix,
            terminal.map_or(ALL, |t| t.as_str()),
            encode_level(to),
            encode_level(notification)
        )
    }

    /// `<prefix>/_reply/<terminal>`.
    pub fn reply(&self, terminal: &TerminalId) -> String {
        format!("{}/{REPLY}/{terminal}", self.prefix)
    }

    /// `<prefix>/_presence/<terminal>`.
    pub fn presence(&self, terminal: &TerminalId) -> String {
        format!("{}/{PRESENCE}/{terminal}", self.prefix)
    }

    /// `<prefix>/_status/<terminal>`.
    pub fn status(&self, terminal: &TerminalId) -> String {
        format!("{}/{STATUS}/{terminal}", self.prefix)
    }

    /// The subscriptions of terminal `me`'s bridge: its notifications,
    /// broadcasts to every terminal, its replies, everyone's presence.
    pub fn subscriptions(&self, me: &TerminalId) -> [String; 4] {
        let p = &self.prefix;
        [
            format!("{p}/{me}/+/+"),
            format!("{p}/{ALL}/+/+"),
            self.reply(me),
            format!("{p}/{PRESENCE}/+"),
        ]
    }

    /// Recognises a received topic.
    pub fn parse(&self, topic: &str) -> Parsed {
        let Some(rest) = topic
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            return Parsed::Other;
        };
        let levels: Vec<&str> = rest.split('/').collect();
        match levels.as_slice() {
            [kind, t] => match TerminalId::new(t) {
                Ok(t) if *kind == REPLY => Parsed::Reply(t),
                Ok(t) if *kind == PRESENCE => Parsed::Presence(t),
                Ok(t) if *kind == STATUS => Parsed::Status(t),
                _ => Parsed::Other,
            },
            [t, to, n] => {
                let terminal = if *t == ALL {
                    None
                } else {
                    match TerminalId::new(t) {
                        Ok(t) => Some(t),
                        Err(_) => return Parsed::Other,
                    }
                };
                match (decode_level(to), decode_level(n)) {
                    (Some(to), Some(n)) => Parsed::Notify {
                        terminal,
                        to: to.into_owned(),
                        notification: n.into_owned(),
                    },
                    _ => Parsed::Other,
                }
            }
            _ => Parsed::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip() {
        for id in ["ui", "a/b", "50%+#", "%2F", "é/ü", "x%"] {
            let e = encode_level(id);
            assert!(!e.contains(['/', '+', '#']), "{e}");
            assert_eq!(decode_level(&e).unwrap(), id);
        }
        assert_eq!(encode_level("plain"), Cow::Borrowed("plain"));
        assert_eq!(decode_level("a%2fb").unwrap(), "a/b");
        assert_eq!(decode_level("a%41"), None);
        assert_eq!(decode_level("a%2"), None);
    }

    #[test]
    fn topics() {
        let t = Topics::new("nfy");
        let b = TerminalId::new("lane-2").unwrap();
        assert_eq!(t.notify(Some(&b), "ui", "show"), "nfy/lane-2/ui/show");
        assert_eq!(t.notify(None, "*", "a/b"), "nfy/*/*/a%2Fb");
        assert_eq!(
            t.parse("nfy/lane-2/ui/a%2Fb"),
            Parsed::Notify {
                terminal: Some(b.clone()),
                to: "ui".into(),
                notification: "a/b".into()
            }
        );
        assert_eq!(
            t.parse("nfy/*/*/tick"),
            Parsed::Notify {
                terminal: None,
                to: "*".into(),
                notification: "tick".into()
            }
        );
        assert_eq!(t.parse(&t.reply(&b)), Parsed::Reply(b.clone()));
        assert_eq!(t.parse(&t.presence(&b)), Parsed::Presence(b.clone()));
        assert_eq!(t.parse(&t.status(&b)), Parsed::Status(b.clone()));
        assert_eq!(t.parse("nfy/_other/x"), Parsed::Other);
        assert_eq!(t.parse("nfy/bad term/ui/x"), Parsed::Other);
        assert_eq!(t.parse("other/lane-2/ui/x"), Parsed::Other);
        assert_eq!(t.parse("nfy/lane-2/ui"), Parsed::Other);
        assert_eq!(t.parse("nfyx/lane-2/ui/x"), Parsed::Other);
        assert_eq!(
            t.subscriptions(&b),
            [
                "nfy/lane-2/+/+".to_string(),
                "nfy/*/+/+".into(),
                "nfy/_reply/lane-2".into(),
                "nfy/_presence/+".into()
            ]
        );
    }
}
