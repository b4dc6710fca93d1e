//! Result codes (spec section 3): the original `NotifyResult` numbers and a
//! typed error carrying the same meaning.

use core::fmt;

/// The original API's result code. The numbers are part of the contract:
/// ported applications compare against them and `notifysvc` exits with the
/// negated value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum NotifyResult {
    /// No error.
    Ok = 0,
    /// The notification server is not running (or not reachable).
    ErrServer = -1,
    /// The application ID has not been set.
    ErrAppId = -2,
    /// No permission to create or connect to the local socket.
    ErrPermission = -3,
    /// The configuration file could not be opened for reading.
    ErrConfigFile = -4,
    /// The configuration file contained invalid input.
    ErrConfigSyntax = -5,
}

impl NotifyResult {
    /// The numeric code (0, -1, ... -5).
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The code for a numeric value, if it is one of the six.
    pub const fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            0 => NotifyResult::Ok,
            -1 => NotifyResult::ErrServer,
            -2 => NotifyResult::ErrAppId,
            -3 => NotifyResult::ErrPermission,
            -4 => NotifyResult::ErrConfigFile,
            -5 => NotifyResult::ErrConfigSyntax,
            _ => return None,
        })
    }

    /// The error this code stands for, `None` for [`NotifyResult::Ok`].
    pub const fn error(self) -> Option<Error> {
        match self {
            NotifyResult::Ok => None,
            NotifyResult::ErrServer => Some(Error::Server),
            NotifyResult::ErrAppId => Some(Error::AppId),
            NotifyResult::ErrPermission => Some(Error::Permission),
            NotifyResult::ErrConfigFile => Some(Error::ConfigFile),
            NotifyResult::ErrConfigSyntax => Some(Error::ConfigSyntax),
        }
    }
}

impl<E: Into<Error>> From<Result<(), E>> for NotifyResult {
    fn from(r: Result<(), E>) -> Self {
        match r {
            Ok(()) => NotifyResult::Ok,
            Err(e) => e.into().result(),
        }
    }
}

/// The failures a [`NotifyResult`] can report, as a Rust error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The notification server is not running (or not reachable).
    Server,
    /// No app ID set and none given.
    AppId,
    /// No permission to create or connect to the local socket.
    Permission,
    /// The configuration file could not be read.
    ConfigFile,
    /// The configuration file is invalid.
    ConfigSyntax,
}

impl Error {
    /// The original result code for this error.
    pub const fn result(self) -> NotifyResult {
        match self {
            Error::Server => NotifyResult::ErrServer,
            Error::AppId => NotifyResult::ErrAppId,
            Error::Permission => NotifyResult::ErrPermission,
            Error::ConfigFile => NotifyResult::ErrConfigFile,
            Error::ConfigSyntax => NotifyResult::ErrConfigSyntax,
        }
    }

    /// The numeric code (-1 ... -5).
    pub const fn code(self) -> i32 {
        self.result().code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Server => "notification server is not running",
            Error::AppId => "the application ID has not been set",
            Error::Permission => "no permission to create or connect to the notification socket",
            Error::ConfigFile => "the configuration file could not be opened for reading",
            Error::ConfigSyntax => "the configuration file contains invalid input",
        })
    }
}

impl core::error::Error for Error {}

impl fmt::Display for NotifyResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error() {
            None => f.write_str("ok"),
            Some(e) => fmt::Display::fmt(&e, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_original() {
        let all = [
            (NotifyResult::Ok, 0),
            (NotifyResult::ErrServer, -1),
            (NotifyResult::ErrAppId, -2),
            (NotifyResult::ErrPermission, -3),
            (NotifyResult::ErrConfigFile, -4),
            (NotifyResult::ErrConfigSyntax, -5),
        ];
        for (r, n) in all {
            assert_eq!(r.code(), n);
            assert_eq!(NotifyResult::from_code(n), Some(r));
            if let Some(e) = r.error() {
                assert_eq!(e.result(), r);
                assert_eq!(e.code(), n);
            }
        }
        assert_eq!(NotifyResult::from_code(1), None);
        assert_eq!(
            NotifyResult::from(Err::<(), _>(Error::AppId)),
            NotifyResult::ErrAppId
        );
        assert_eq!(NotifyResult::from(Ok::<(), Error>(())), NotifyResult::Ok);
    }
}
