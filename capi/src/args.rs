//! String arguments from C: null pointers and UTF-8, checked once here.

use std::ffi::{c_char, CStr};
use std::fmt;

use nfy_core::NotifyResult;

/// What is wrong with a string argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgError {
    /// A null pointer where a string is required.
    Null,
    /// The bytes are not UTF-8.
    NotUtf8,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArgError::Null => "is a null pointer",
            ArgError::NotUtf8 => "is not UTF-8",
        })
    }
}

/// What an argument is, for the result code of a bad one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An app ID, destination or notification ID: `NFY_ERR_APP_ID`.
    Identifier,
    /// The JSON parameter: `NFY_ERR_SERVER` (nothing is sent).
    Parameter,
}

/// A bad argument: which one, what kind, what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadArg {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) error: ArgError,
}

impl BadArg {
    /// The result code the call returns, after a debug log line.
    pub(crate) fn result(self, entry: &str) -> NotifyResult {
        log::debug!("{entry}: `{}` {}", self.name, self.error);
        match self.kind {
            Kind::Identifier => NotifyResult::ErrAppId,
            Kind::Parameter => NotifyResult::ErrServer,
        }
    }
}

/// A string argument: `None` for a null pointer.
///
/// # Safety
///
/// `p` is null or points to a NUL-terminated string that stays valid and
/// unchanged for `'a` (the caller's promise for the duration of the call).
pub(crate) unsafe fn optional<'a>(
    p: *const c_char,
    name: &'static str,
    kind: Kind,
) -> Result<Option<&'a str>, BadArg> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: not null, and the caller promises a NUL-terminated string
    // valid for 'a.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    std::str::from_utf8(bytes).map(Some).map_err(|_| BadArg {
        name,
        kind,
        error: ArgError::NotUtf8,
    })
}

/// A string argument that must not be null.
///
/// # Safety
///
/// As for [`optional`].
pub(crate) unsafe fn required<'a>(
    p: *const c_char,
    name: &'static str,
    kind: Kind,
) -> Result<&'a str, BadArg> {
    // SAFETY: forwarded from the caller.
    unsafe { optional(p, name, kind) }?.ok_or(BadArg {
        name,
        kind,
        error: ArgError::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_utf8_and_text() {
        let ok = c"ui";
        let bad = c"\xff\xfe";
        // SAFETY: C string literals are NUL-terminated and 'static.
        unsafe {
            assert_eq!(
                optional(ok.as_ptr(), "to", Kind::Identifier),
                Ok(Some("ui"))
            );
            assert_eq!(optional(std::ptr::null(), "to", Kind::Identifier), Ok(None));
            let null = required(std::ptr::null(), "to", Kind::Identifier).unwrap_err();
            assert_eq!(null.error, ArgError::Null);
            assert_eq!(null.result("t"), NotifyResult::ErrAppId);
            let utf8 = required(bad.as_ptr(), "param_json", Kind::Parameter).unwrap_err();
            assert_eq!(utf8.error, ArgError::NotUtf8);
            assert_eq!(utf8.result("t"), NotifyResult::ErrServer);
        }
    }
}
