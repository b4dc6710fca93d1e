//! The notification server with the Verix-style profile: `nfy-linux`'s
//! server, run with [`PROFILE`].
//!
//! Same functions and types as [`nfy_linux::server`]; [`start`] and [`run`]
//! set the profile whatever the [`Options`] say, so nothing reachable
//! through this module can open the service to a remote peer or read a
//! configuration file. Everything else is re-exported unchanged.

pub use nfy_linux::server::{
    args, config, events, listen, out_queue, outbox, ConfigSource, FlowOptions, Options, Profile,
    ProfileLimits, ServerError, ServerHandle,
};

use crate::{MAX_FRAME, MAX_QUEUE, PROFILE};

/// The default options of this profile: [`Options::default`] (port and
/// socket from the environment) with [`PROFILE`] and its frame and queue
/// limits.
pub fn options() -> Options {
    with_profile(Options {
        max_frame: MAX_FRAME,
        max_queue: MAX_QUEUE,
        ..Options::default()
    })
}

/// `opts` with [`PROFILE`] in force.
pub fn with_profile(opts: Options) -> Options {
    Options {
        profile: PROFILE,
        ..opts
    }
}

/// [`nfy_linux::server::start`] with [`PROFILE`] (whatever
/// `opts.profile` says): starts the server on its own thread and returns
/// once it listens.
pub fn start(opts: Options) -> Result<ServerHandle, ServerError> {
    nfy_linux::server::start(with_profile(opts))
}

/// [`nfy_linux::server::run`] with [`PROFILE`]: runs until stopped.
pub fn run(opts: Options) -> Result<(), ServerError> {
    nfy_linux::server::run(with_profile(opts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_profile_is_forced_and_configuration_ignored() {
        let dir = tempfile::tempdir().unwrap();
        // Rules and no interface lines: on Linux this binds 0.0.0.0.
        let cfg = dir.path().join("notify.cfg");
        std::fs::write(&cfg, "in * * *\nout * * *\n").unwrap();
        let handle = start(Options {
            port: 0,
            socket: dir.path().join("notify.sock"),
            config: ConfigSource::File(cfg),
            profile: Profile::LINUX,
            ..Options::default()
        })
        .unwrap();
        assert!(!handle.tcp_addrs().is_empty());
        for addr in handle.tcp_addrs() {
            assert!(addr.ip().is_loopback(), "{addr}");
        }
        // The local socket serves.
        let mut s = std::os::unix::net::UnixStream::connect(handle.socket_path()).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .unwrap();
        let mut buf = [0u8; 1];
        assert!(
            s.read(&mut buf).is_err(),
            "an admitted connection stays open"
        );
        handle.shutdown();
        handle.join().unwrap();
    }

    #[test]
    fn an_unreadable_configuration_does_not_stop_it() {
        let dir = tempfile::tempdir().unwrap();
        let handle = start(Options {
            port: 0,
            socket: dir.path().join("notify.sock"),
            config: ConfigSource::File(dir.path().join("missing.cfg")),
            ..options()
        })
        .unwrap();
        drop(handle);
        // The Linux profile refuses the same options (ERR_CONFIG_FILE).
        let err = nfy_linux::server::start(Options {
            port: 0,
            socket: dir.path().join("notify.sock"),
            config: ConfigSource::File(dir.path().join("missing.cfg")),
            ..Options::default()
        })
        .unwrap_err();
        assert_eq!(err.exit_code(), 4);
    }

    #[test]
    fn default_options_carry_the_profile_limits() {
        let o = options();
        assert_eq!(o.profile, PROFILE);
        assert_eq!((o.max_frame, o.max_queue), (MAX_FRAME, MAX_QUEUE));
    }
}
