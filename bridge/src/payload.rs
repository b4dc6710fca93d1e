//! The JSON payloads of the topics ([`crate::topic`]), stable and
//! documented in README ("Fleets"), so tools in any language read and
//! write them.
//!
//! A notification:
//!
//! ```json
//! {"terminal":"lane-1","id":1733500000000001,"from":"payment","to":"ui",
//!  "notification":"show","flags":0,"parameter":{"text":"Insert card"}}
//! ```
//!
//! - `from` (required): the sender's app ID on its terminal. The receiving
//!   bridge delivers it as `from@terminal` when `terminal` is given
//!   ([`crate::names`]), as `from` otherwise (a back-office tool).
//! - `to`, `notification`: the destination on the receiving terminal (an
//!   app ID, `"1"` or `"*"`) and the notification ID. Optional: the
//!   topic's levels give them; when present they must agree with them.
//! - `flags` (default 0), `parameter` (any JSON value, default `{}`).
//! - `terminal`: the sending terminal; `id`: a number unique for that
//!   terminal, present on unicasts that want an outcome on
//!   `<prefix>/_reply/<terminal>`.
//!
//! An outcome (reply) lists ids: `{"terminal":"lane-2","delivered":[..],
//! "failed":[..],"refused":[..]}` — delivered to a receiver, no receiver
//! there (the sender gets a unicast error), refused by that terminal's
//! `in` rules (a unicast error too).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A notification as it travels.
#[derive(Debug, Serialize, Deserialize)]
pub struct Notification {
    /// The sending terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<String>,
    /// Set on unicasts that want an outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The sender's app ID.
    pub from: String,
    /// The destination on the receiving terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The notification ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
    /// Flags, carried.
    #[serde(default)]
    pub flags: u32,
    /// The parameter, as JSON text.
    #[serde(default)]
    pub parameter: Option<Box<RawValue>>,
}

impl Notification {
    /// The parameter's JSON text (`{}` when absent).
    pub fn parameter_text(&self) -> &str {
        self.parameter.as_deref().map_or("{}", RawValue::get)
    }
}

/// Outcomes of unicasts, for the terminal that sent them.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The terminal that answers.
    pub terminal: String,
    /// Given to a receiver.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivered: Vec<u64>,
    /// Nobody there received it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<u64>,
    /// Refused by that terminal's `in` rules (or malformed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<u64>,
}

impl Reply {
    /// True when it lists nothing.
    pub fn is_empty(&self) -> bool {
        self.delivered.is_empty() && self.failed.is_empty() && self.refused.is_empty()
    }
}

/// One (app, notification) pair a terminal receives from others.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Export {
    /// The app ID there.
    pub app: String,
    /// The notification ID.
    pub notification: String,
    /// The priority the other terminals register it with (for `"1"`).
    #[serde(default)]
    pub priority: i32,
}

/// A terminal's presence (retained).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The terminal.
    pub terminal: String,
    /// Whether its bridge is connected to the broker.
    pub online: bool,
    /// What it receives from other terminals.
    #[serde(default)]
    pub exports: Vec<Export>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_defaults_and_round_trip() {
        let n: Notification = serde_json::from_str(r#"{"from":"office"}"#).unwrap();
        assert_eq!(n.parameter_text(), "{}");
        assert_eq!(n.flags, 0);
        assert!(n.to.is_none() && n.terminal.is_none() && n.id.is_none());
        let text = r#"{"terminal":"a","id":7,"from":"p","to":"ui","notification":"show","flags":3,"parameter":{"x":[1,2]}}"#;
        let n: Notification = serde_json::from_str(text).unwrap();
        assert_eq!(n.parameter_text(), r#"{"x":[1,2]}"#);
        assert_eq!(serde_json::to_string(&n).unwrap(), text);
        assert!(serde_json::from_str::<Notification>(r#"{"to":"x"}"#).is_err());
        assert!(serde_json::from_str::<Notification>(r#"{"from":"p","flags":-1}"#).is_err());
    }

    #[test]
    fn reply_and_presence() {
        let r = Reply {
            terminal: "b".into(),
            delivered: vec![1, 2],
            failed: vec![],
            refused: vec![3],
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"terminal":"b","delivered":[1,2],"refused":[3]}"#);
        assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), r);
        let p: Presence = serde_json::from_str(
            r#"{"terminal":"b","online":true,"exports":[{"app":"ui","notification":"show"}]}"#,
        )
        .unwrap();
        assert_eq!(p.exports[0].priority, 0);
    }
}
