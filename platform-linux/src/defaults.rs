//! Where the server listens by default, shared by `notifysvc` and the client
//! library so both find each other without configuration.
//!
//! | what | source, first match wins |
//! |---|---|
//! | TCP port | `NFY_PORT` (decimal 1..=65535), else [`DEFAULT_PORT`] (5899) |
//! | Unix socket | `NFY_SOCKET` (non-empty), else `$XDG_RUNTIME_DIR/nfy/notify.sock` (when `XDG_RUNTIME_DIR` is set to an absolute path), else `/tmp/nfy-<uid>/notify.sock` |
//!
//! **Decision**: the Unix socket lives in a per-user runtime directory, never
//! in a fixed world-writable place, so no other user can pre-create or
//! replace it. A client running as another user than the server therefore
//! usually does not find the socket and falls back to TCP loopback, which is
//! served for every local user.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// The documented TCP port of the notification service (spec section 4).
pub const DEFAULT_PORT: u16 = 5899;

/// Environment variable that overrides the TCP port.
pub const PORT_ENV: &str = "NFY_PORT";

/// Environment variable that overrides the Unix socket path.
pub const SOCKET_ENV: &str = "NFY_SOCKET";

/// The standard per-user runtime directory variable.
pub const RUNTIME_DIR_ENV: &str = "XDG_RUNTIME_DIR";

/// Directory created under `$XDG_RUNTIME_DIR` for the socket.
pub const RUNTIME_SUBDIR: &str = "nfy";

/// File name of the socket inside its directory.
pub const SOCKET_FILE_NAME: &str = "notify.sock";

/// `NFY_PORT` holds something that is not a port number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPortEnv {
    /// The value as found (lossily converted for display).
    pub value: String,
}

impl fmt::Display for BadPortEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PORT_ENV}={:?} is not a TCP port number (1..=65535)",
            self.value
        )
    }
}

impl std::error::Error for BadPortEnv {}

/// Parses a TCP port number; `allow_zero` admits 0 (the server's
/// "any free port").
pub fn parse_port(text: &str, allow_zero: bool) -> Option<u16> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match text.parse::<u16>() {
        Ok(0) if !allow_zero => None,
        Ok(port) => Some(port),
        Err(_) => None,
    }
}

/// The port `NFY_PORT` names, `Ok(None)` when it is unset or empty, an error
/// when it is set to something that is not a port (1..=65535).
pub fn port_from_env() -> Result<Option<u16>, BadPortEnv> {
    port_from(&|k| std::env::var_os(k))
}

/// [`port_from_env`] over an arbitrary environment lookup.
pub fn port_from(env: &dyn Fn(&str) -> Option<OsString>) -> Result<Option<u16>, BadPortEnv> {
    let Some(value) = env(PORT_ENV) else {
        return Ok(None);
    };
    let value = value.to_string_lossy();
    if value.trim().is_empty() {
        return Ok(None);
    }
    parse_port(&value, false)
        .map(Some)
        .ok_or_else(|| BadPortEnv {
            value: value.into_owned(),
        })
}

/// The port to use when none is given: `NFY_PORT`, else [`DEFAULT_PORT`].
/// An invalid `NFY_PORT` is ignored here (the server rejects it with a
/// usage error; a client just uses the default).
pub fn default_port() -> u16 {
    port_from_env().ok().flatten().unwrap_or(DEFAULT_PORT)
}

/// The socket path to use when none is given (see the module table).
pub fn default_socket_path() -> PathBuf {
    socket_path_from(&|k| std::env::var_os(k), current_uid())
}

/// [`default_socket_path`] over an arbitrary environment and user id.
pub fn socket_path_from(env: &dyn Fn(&str) -> Option<OsString>, uid: u32) -> PathBuf {
    if let Some(path) = env(SOCKET_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    if let Some(dir) = env(RUNTIME_DIR_ENV).filter(|d| Path::new(d).is_absolute()) {
        return PathBuf::from(dir)
            .join(RUNTIME_SUBDIR)
            .join(SOCKET_FILE_NAME);
    }
    fallback_socket_path(uid)
}

/// The last-resort socket path, `/tmp/nfy-<uid>/notify.sock`. The server
/// refuses to use its directory when another user owns it.
pub fn fallback_socket_path(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/nfy-{uid}")).join(SOCKET_FILE_NAME)
}

/// The real user id of this process.
pub fn current_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn socket_path_precedence() {
        let all = env_of(&[("NFY_SOCKET", "/x/s"), ("XDG_RUNTIME_DIR", "/run/user/7")]);
        assert_eq!(socket_path_from(&all, 7), PathBuf::from("/x/s"));
        let xdg = env_of(&[("NFY_SOCKET", ""), ("XDG_RUNTIME_DIR", "/run/user/7")]);
        assert_eq!(
            socket_path_from(&xdg, 7),
            PathBuf::from("/run/user/7/nfy/notify.sock")
        );
        let relative_xdg = env_of(&[("XDG_RUNTIME_DIR", "run")]);
        assert_eq!(
            socket_path_from(&relative_xdg, 7),
            PathBuf::from("/tmp/nfy-7/notify.sock")
        );
        let none = env_of(&[]);
        assert_eq!(
            socket_path_from(&none, 1000),
            PathBuf::from("/tmp/nfy-1000/notify.sock")
        );
    }

    #[test]
    fn port_from_environment() {
        assert_eq!(port_from(&env_of(&[])), Ok(None));
        assert_eq!(port_from(&env_of(&[("NFY_PORT", " ")])), Ok(None));
        assert_eq!(port_from(&env_of(&[("NFY_PORT", "6000")])), Ok(Some(6000)));
        for bad in ["0", "65536", "-1", "12a", "+5"] {
            let env: &'static [(&str, &str)] = Box::leak(Box::new([("NFY_PORT", bad)]));
            assert!(port_from(&env_of(env)).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_parsing() {
        assert_eq!(parse_port("5899", false), Some(5899));
        assert_eq!(parse_port("0", false), None);
        assert_eq!(parse_port("0", true), Some(0));
        assert_eq!(parse_port("65535", false), Some(65535));
        assert_eq!(parse_port("65536", true), None);
        assert_eq!(parse_port("", true), None);
    }
}
