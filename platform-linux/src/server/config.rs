//! Finding and reading the whitelist configuration (spec section 4).
//!
//! - An explicit file (command line, or `ipcNotificationServer(config)`)
//!   must be readable: otherwise [`ServerError::ConfigFile`] (exit 4).
//! - Without one, the default locations [`DEFAULT_CONFIG_PATHS`] are tried
//!   in order; a location that does not exist is skipped, and when none
//!   exists the server runs without configuration (loopback only).
//!   **Decision**: a default location that exists but cannot be read is an
//!   error like an unreadable explicit file, never silently skipped: the
//!   operator clearly meant to configure the service.
//! - Any invalid line is [`ServerError::ConfigSyntax`] (exit 5) with its
//!   line number. All of this happens before any listener opens.
//! - Files larger than [`MAX_CONFIG_BYTES`] are refused as unreadable (a
//!   configuration holds at most a few hundred short lines; this keeps a
//!   mistaken `/dev/zero` from eating memory).
//! - A profile that ignores configuration ([`Profile::ignore_config`], the
//!   Verix-style one) reads nothing: [`load_for`] returns the empty
//!   configuration, and an explicit file is named in one info line saying
//!   it is ignored (it is not even opened, so an unreadable or invalid file
//!   does not stop such a server).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{LinuxWhitelist, Profile, ServerError};

/// Default configuration files on Linux, tried in order (spec section 4).
pub const DEFAULT_CONFIG_PATHS: [&str; 2] = ["/home/sys12/notify.cfg", "/home/sys_ipc/notify.cfg"];

/// Largest configuration file read, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Which configuration the server uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ConfigSource {
    /// The first existing file of [`DEFAULT_CONFIG_PATHS`], else none.
    #[default]
    Default,
    /// This file; it must be readable.
    File(PathBuf),
    /// No configuration at all (loopback only).
    None,
}

/// A configuration as loaded.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The file it came from; `None` when the server runs without one.
    pub path: Option<PathBuf>,
    /// The parsed rules and interfaces (empty without a file).
    pub whitelist: LinuxWhitelist,
}

/// Loads the configuration `source` names, as `profile` wants it: like
/// [`load`], or, when the profile ignores configuration, nothing at all
/// (see the module docs).
pub fn load_for(profile: &Profile, source: &ConfigSource) -> Result<LoadedConfig, ServerError> {
    if !profile.ignore_config {
        return load(source);
    }
    if let ConfigSource::File(path) = source {
        ::log::info!(
            "the {} profile ignores configuration files: not reading {}; local clients only",
            profile.name,
            path.display()
        );
    }
    Ok(LoadedConfig {
        path: None,
        whitelist: LinuxWhitelist::new(),
    })
}

/// Loads the configuration `source` names.
pub fn load(source: &ConfigSource) -> Result<LoadedConfig, ServerError> {
    match source {
        ConfigSource::None => Ok(LoadedConfig {
            path: None,
            whitelist: LinuxWhitelist::new(),
        }),
        ConfigSource::File(path) => load_file(path),
        ConfigSource::Default => {
            let candidates: Vec<&Path> = DEFAULT_CONFIG_PATHS.iter().map(Path::new).collect();
            load_first_existing(&candidates)
        }
    }
}

/// Loads the first of `candidates` that exists; none existing means no
/// configuration.
pub fn load_first_existing(candidates: &[&Path]) -> Result<LoadedConfig, ServerError> {
    for path in candidates {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                ::log::debug!("no configuration at {}", path.display());
            }
            // Exists (or cannot even be looked at): it must be readable.
            _ => return load_file(path),
        }
    }
    Ok(LoadedConfig {
        path: None,
        whitelist: LinuxWhitelist::new(),
    })
}

/// Reads and parses one file.
pub fn load_file(path: &Path) -> Result<LoadedConfig, ServerError> {
    let text = read_limited(path).map_err(|source| ServerError::ConfigFile {
        path: path.to_owned(),
        source,
    })?;
    let whitelist = LinuxWhitelist::parse(&text).map_err(|error| ServerError::ConfigSyntax {
        path: path.to_owned(),
        error,
    })?;
    Ok(LoadedConfig {
        path: Some(path.to_owned()),
        whitelist,
    })
}

fn read_limited(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut text = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfy_core::NotifyResult;

    #[test]
    fn missing_defaults_mean_no_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.cfg");
        let b = dir.path().join("b.cfg");
        let loaded = load_first_existing(&[&a, &b]).unwrap();
        assert!(loaded.path.is_none());
        assert!(!loaded.whitelist.has_rules());
    }

    #[test]
    fn first_existing_default_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.cfg");
        let b = dir.path().join("b.cfg");
        std::fs::write(&b, "# nothing\n").unwrap();
        let loaded = load_first_existing(&[&a, &b]).unwrap();
        assert_eq!(loaded.path.as_deref(), Some(b.as_path()));
    }

    #[test]
    fn unreadable_file_is_config_file_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.cfg");
        let err = load(&ConfigSource::File(missing.clone())).unwrap_err();
        assert_eq!(err.result(), NotifyResult::ErrConfigFile);
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains(&missing.display().to_string()));

        // A directory opens but does not read.
        let err = load(&ConfigSource::File(dir.path().to_owned())).unwrap_err();
        assert_eq!(err.result(), NotifyResult::ErrConfigFile);

        // An existing default location that is unreadable is an error too.
        let err = load_first_existing(&[dir.path()]).unwrap_err();
        assert_eq!(err.result(), NotifyResult::ErrConfigFile);
    }

    #[test]
    fn oversize_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.cfg");
        let line = "# padding padding padding padding padding padding padding\n";
        let text = line.repeat((MAX_CONFIG_BYTES as usize / line.len()) + 2);
        std::fs::write(&big, text).unwrap();
        let err = load_file(&big).unwrap_err();
        assert_eq!(err.result(), NotifyResult::ErrConfigFile);
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[test]
    fn a_profile_that_ignores_configuration_reads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.cfg");
        std::fs::write(&bad, "in * * *\nbogus line\n").unwrap();
        let ignoring = Profile {
            ignore_config: true,
            ..Profile::LINUX
        };
        for source in [
            ConfigSource::File(bad.clone()),
            ConfigSource::File(dir.path().join("missing.cfg")),
            ConfigSource::Default,
            ConfigSource::None,
        ] {
            let loaded = load_for(&ignoring, &source).unwrap();
            assert!(loaded.path.is_none(), "{source:?}");
            assert!(!loaded.whitelist.has_rules(), "{source:?}");
        }
        // The Linux profile reads (and here refuses) the same file.
        let err = load_for(&Profile::LINUX, &ConfigSource::File(bad)).unwrap_err();
        assert_eq!(err.result(), NotifyResult::ErrConfigSyntax);
    }

    #[test]
    fn no_configuration_source() {
        let loaded = load(&ConfigSource::None).unwrap();
        assert!(loaded.path.is_none());
        assert!(loaded.whitelist.interfaces().is_empty());
    }
}
