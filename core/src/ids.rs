//! Identifiers (spec section 1): app IDs, notification IDs and destinations.
//!
//! Both kinds of ID are non-empty UTF-8 strings of at most [`MAX_ID_LEN`] bytes
//! without NUL or other control characters. They are stored inline
//! (`heapless::String`), so copying one never allocates.
//!
//! **Decision**: `"1"` and `"*"` are reserved for app IDs only (they are the
//! destination selectors). A notification ID may be `"1"` or `"*"`: the spec
//! gives notification IDs "the same rules" as app IDs, but the reservation
//! exists only because app IDs share the `to` member with the selectors.

use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::Deref;

use heapless::String;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest app ID or notification ID, in bytes of UTF-8.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdError {
    /// The string is empty.
    Empty,
    /// The string is longer than [`MAX_ID_LEN`] bytes.
    TooLong,
    /// The string holds NUL or another control character.
    ControlChar,
    /// `"1"` or `"*"` used as an app ID.
    Reserved,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdError::Empty => "identifier is empty",
            IdError::TooLong => "identifier is longer than 64 bytes",
            IdError::ControlChar => "identifier holds a control character",
            IdError::Reserved => "\"1\" and \"*\" are destination selectors, not app IDs",
        })
    }
}

impl core::error::Error for IdError {}

/// Checks the rules shared by both kinds of identifier.
fn check(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if s.chars().any(char::is_control) {
        return Err(IdError::ControlChar);
    }
    Ok(())
}

/// Copies an already checked string into inline storage.
fn store(s: &str) -> Result<String<MAX_ID_LEN>, IdError> {
    let mut out = String::new();
    out.push_str(s).map_err(|_| IdError::TooLong)?;
    Ok(out)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
        pub struct $name(String<MAX_ID_LEN>);

        impl $name {
            /// Validates `s` and stores it.
            pub fn new(s: &str) -> Result<Self, IdError> {
                $check(s)?;
                store(s).map(Self)
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl core::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_str().hash(state)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl core::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(IdVisitor(Self::new))
            }
        }
    };
}

fn check_app(s: &str) -> Result<(), IdError> {
    check(s)?;
    if s == "1" || s == "*" {
        return Err(IdError::Reserved);
    }
    Ok(())
}

id_type!(
    /// An application's identity: the source of notifications and the
    /// receiver named by a registration.
    AppId,
    check_app
);

id_type!(
    /// The name of a notification ("echo", "card-inserted", ...).
    NotificationId,
    check
);

/// Serde visitor shared by the identifier types and [`Destination`].
struct IdVisitor<F>(F);

impl<T, F: FnOnce(&str) -> Result<T, IdError>> serde::de::Visitor<'_> for IdVisitor<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an identifier string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }
}

/// Where a notification goes (the `to` member of a notify).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// Unicast to one application.
    App(AppId),
    /// `"1"`: exactly one receiver, the best-priority registration.
    One,
    /// `"*"`: broadcast to every registration.
    All,
}

impl Destination {
    /// Parses the wire form: `"1"`, `"*"` or an app ID.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s {
            "1" => Ok(Destination::One),
            "*" => Ok(Destination::All),
            _ => AppId::new(s).map(Destination::App),
        }
    }

    /// The wire form, as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Destination::App(id) => id.as_str(),
            Destination::One => "1",
            Destination::All => "*",
        }
    }

    /// True for the unicast forms (`App` and `One`), which owe a unicast
    /// error when nothing receives them.
    pub fn is_unicast(&self) -> bool {
        !matches!(self, Destination::All)
    }
}

impl From<AppId> for Destination {
    fn from(id: AppId) -> Self {
        Destination::App(id)
    }
}

impl core::str::FromStr for Destination {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for Destination {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Destination {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(IdVisitor(Self::parse))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_id_rules() {
        assert!(AppId::new("payment").is_ok());
        assert_eq!(AppId::new(""), Err(IdError::Empty));
        assert_eq!(AppId::new("1"), Err(IdError::Reserved));
        assert_eq!(AppId::new("*"), Err(IdError::Reserved));
        assert_eq!(AppId::new("a\0b"), Err(IdError::ControlChar));
        assert_eq!(AppId::new("a\nb"), Err(IdError::ControlChar));
        assert_eq!(AppId::new("a\u{85}b"), Err(IdError::ControlChar));
        let max = "é".repeat(32);
        assert_eq!(max.len(), 64);
        assert!(AppId::new(&max).is_ok());
        let over = "x".repeat(65);
        assert_eq!(AppId::new(&over), Err(IdError::TooLong));
    }

    #[test]
    fn notification_ids_may_be_selectors() {
        assert!(NotificationId::new("1").is_ok());
        assert!(NotificationId::new("*").is_ok());
        assert_eq!(NotificationId::new(""), Err(IdError::Empty));
    }

    #[test]
    fn destinations() {
        assert_eq!(Destination::parse("1"), Ok(Destination::One));
        assert_eq!(Destination::parse("*"), Ok(Destination::All));
        let d = Destination::parse("ui").unwrap();
        assert_eq!(d.as_str(), "ui");
        assert!(d.is_unicast());
        assert!(Destination::One.is_unicast());
        assert!(!Destination::All.is_unicast());
        assert_eq!(Destination::parse(""), Err(IdError::Empty));
    }
}
