//! The error type every xtask command returns.
//!
//! Errors are values with a one-sentence [`Display`](std::fmt::Display) that
//! says what failed and, where a tool is missing, exactly what to install.
//! `main` prints it and exits with status 1.

use std::fmt;
use std::io;
use std::path::Path;

use crate::elf::ElfError;
use crate::package::PackageError;

/// Shorthand for results of xtask functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an xtask command failed.
#[derive(Debug)]
pub enum Error {
    /// The command line is wrong; the text says how.
    Usage(String),
    /// A file operation failed.
    Io {
        /// What was being done, naming the file.
        what: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// An external command could not start or exited unsuccessfully.
    Command {
        /// The command line as shown to the user.
        cmd: String,
        /// Exit status, or why it has none.
        status: String,
    },
    /// A tool or library is missing; the text says what to install.
    Missing(String),
    /// A package is malformed or its content does not match its manifest
    /// (found before anything was copied).
    Package(PackageError),
    /// A binary to package is not an executable for the target.
    Binary {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        error: ElfError,
    },
    /// The destination fails the check after flashing: a file does not
    /// match the manifest, or a removed file is still there.
    Verification(PackageError),
    /// Anything else, as one sentence.
    Other(String),
}

impl Error {
    /// An [`Error::Io`] about `path`.
    pub fn io(what: &str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            what: format!("{what} {}", path.display()),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(s) => write!(f, "{s} (see `cargo xtask help`)"),
            Error::Io { what, source } => write!(f, "cannot {what}: {source}"),
            Error::Command { cmd, status } => write!(f, "`{cmd}` failed: {status}"),
            Error::Missing(s) => f.write_str(s),
            Error::Binary { path, error } => {
                write!(f, "refusing to package {}: {error}", path.display())
            }
            Error::Package(e) => write!(f, "package refused, nothing was copied: {e}"),
            Error::Verification(e) => {
                write!(f, "the destination fails the check after flashing: {e}")
            }
            Error::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Package(e) | Error::Verification(e) => Some(e),
            Error::Binary { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<PackageError> for Error {
    fn from(e: PackageError) -> Self {
        Error::Package(e)
    }
}
