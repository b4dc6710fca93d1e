//! The `notifysvc` command line.
//!
//! ```text
//! notifysvc [--port PORT] [--socket PATH] [--socket-group GROUP] [--max-frame BYTES]
//!           [--max-queue BYTES] [--high-water BYTES] [--low-water BYTES]
//!           [--stall-timeout DURATION] [--max-remote N] [--max-remote-frame BYTES]
//!           [--remote-rate FRAMES] [--remote-burst FRAMES]
//!           [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE] [--tls-port PORT]
//!            [--tls-handshake-timeout DURATION] [--tls-max-handshakes N]]
//!           [--no-plain-remote] [CONFIG_FILE]
//! notifysvc --help | --version
//! ```
//!
//! Options also take the `--name=value` form; `--` ends the options. Sizes
//! are bytes, optionally with a `K`/`KiB` or `M`/`MiB` suffix; durations
//! are seconds, or milliseconds with an `ms` suffix (`5`, `5s`, `500ms`). An invalid
//! `NFY_PORT` is a usage error here (the server must not silently listen
//! somewhere else than asked). Usage errors exit with [`EXIT_USAGE`],
//! among them a `--socket-group` name that names no group (a number is
//! taken as a group id as it is; a group the server may not give the
//! socket to fails at start-up with exit 3).
//!
//! The TLS options ([`super::tls`]) need `--tls-cert` and `--tls-key`
//! together; the others of them are a usage error without these two.
//!
//! [`parse`] gives [`Profile::LINUX`] options; another profile's binary
//! (`notifysvc-verix`) parses the same command line and sets its profile.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::config::DEFAULT_CONFIG_PATHS;
use super::tls::{
    PlainRemote, TlsOptions, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_HANDSHAKES, DEFAULT_TLS_PORT,
    MAX_HANDSHAKE_TIMEOUT, MAX_MAX_HANDSHAKES, MIN_HANDSHAKE_TIMEOUT,
};
use super::{
    ConfigSource, FlowOptions, Options, Profile, RemoteLimits, DEFAULT_MAX_FRAME,
    DEFAULT_MAX_QUEUE, DEFAULT_MAX_REMOTE_CONNECTIONS, DEFAULT_MAX_REMOTE_FRAME,
    DEFAULT_REMOTE_BURST, DEFAULT_REMOTE_RATE, DEFAULT_STALL_TIMEOUT, MAX_CONNECTIONS,
    MAX_MAX_FRAME, MAX_MAX_QUEUE, MAX_STALL_TIMEOUT, MIN_MAX_FRAME, MIN_QUEUE_FRAMES,
    MIN_STALL_TIMEOUT,
};
use crate::defaults;

/// Exit status for command-line errors (`EX_USAGE` of sysexits.h, chosen
/// outside the 0..=5 range of negated result codes).
pub const EXIT_USAGE: i32 = 64;

/// What the command line asks for.
// Made once at start-up: boxing the options would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the server with these options (signal handling on).
    Run(Options),
    /// Print [`usage`] and exit 0.
    Help,
    /// Print [`version`] and exit 0.
    Version,
}

/// A command-line error, printed with a hint to `--help`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError(pub String);

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgsError {}

/// `notifysvc <version>`.
pub fn version() -> String {
    format!("notifysvc {}", env!("CARGO_PKG_VERSION"))
}

/// The `--help` text.
pub fn usage() -> String {
    format!(
        "\
notifysvc {version} - the nfy notification server

Usage: notifysvc [OPTIONS] [CONFIG_FILE]

Arguments:
  CONFIG_FILE          whitelist configuration (must be readable); without it
                       the first existing of {d0}, {d1}
                       is used, and with none the server accepts local
                       clients only

Options:
  --port PORT          TCP port (default: ${port_env} or {port}; 0 = any free port)
  --socket PATH        Unix socket (default: ${socket_env}, else
                       $XDG_RUNTIME_DIR/nfy/notify.sock, else
                       /tmp/nfy-<uid>/notify.sock)
  --max-frame BYTES    largest frame body accepted (default {frame}; {min_frame}..={max_frame};
                       K/M suffixes allowed)
  --max-queue BYTES    hard limit of one connection's unsent output, and of the
                       unicasts it has not acknowledged (default {queue}, at
                       least {queue_frames} x max-frame); flow control keeps
                       senders well below it (see --high-water)
  --socket-group GROUP group (name or number) owning the socket, mode 0660;
                       default: the server's own group
  -h, --help           print this help
  -V, --version        print the version

Flow control (a slow reader slows its senders down; only a stalled one is
disconnected):
  --high-water BYTES   when a connection has more than this queued (or
                       unacknowledged), the server stops reading the
                       connections that send it more, so their writes wait
                       (default: max-queue / 4 = {high} bytes; at most
                       max-queue less one frame)
  --low-water BYTES    ... and reads them again once it has at most this
                       queued (default: high-water / 4 = {low} bytes)
  --stall-timeout DURATION
                       a connection that holds senders back and takes no
                       bytes for this long is disconnected; what it was not
                       sent goes to another receiver or back to the senders
                       as unicast errors (default {stall} s; 100ms..=3600s;
                       e.g. 5, 5s, 500ms)

Remote connections:
  --max-remote N       remote connections open at once (default {remote})
  --max-remote-frame BYTES
                       largest frame body from a remote connection (default
                       {remote_frame}, at most max-frame)
  --remote-rate FRAMES frames per second one remote connection may send;
                       more are dropped (default {rate}; 0 = no limit)
  --remote-burst FRAMES
                       frames a remote connection may send at once (default {burst})
  --no-plain-remote    plain TCP on loopback only: remote peers must use TLS
                       (the Unix socket and loopback TCP stay plain)

TLS for remote peers (off unless --tls-cert and --tls-key are given; files
are read once, at start; an unusable one exits with status 4):
  --tls-cert FILE      the server's certificate chain, PEM (its own first)
  --tls-key FILE       its private key, PEM (PKCS#8, PKCS#1 or SEC1)
  --tls-client-ca FILE CA certificates, PEM: peers must present a certificate
                       that chains to one of them (mutual TLS); without it,
                       TLS authenticates the server only
  --tls-port PORT      TLS port, on the addresses plain TCP would use
                       (default {tls_port}; 0 = any free port)
  --tls-handshake-timeout DURATION
                       a handshake not complete by then is cut (default
                       {hs_timeout} s; 100ms..=600s)
  --tls-max-handshakes N
                       handshakes in progress at most; more connections are
                       closed at once (default {hs_max}; 1..={hs_max_max})
  A TLS peer is local or remote by its address, as a plain one: remote
  ones are under the whitelist and every remote limit above.

Environment:
  NFY_PORT, NFY_SOCKET  default port and socket path
  RUST_LOG             log level: error, warn, info (default), debug, trace;
                       also TARGET=LEVEL, comma-separated
  NFY_LOGMASK          syslog-style mask, decimal or 0x hex; bit 1<<prio
                       enables priority prio (ERR=3 error, WARNING=4 warn,
                       NOTICE=5/INFO=6 info, DEBUG=7 debug); wins over RUST_LOG
  NOTIFY_SOCKET        set by systemd (Type=notify): the server reports there
                       when it is ready, reloading and stopping

Signals:
  SIGTERM, SIGINT      stop cleanly (last sends, socket file removed, exit 0)
  SIGHUP               read the configuration again (CONFIG_FILE, or the
                       default locations looked up again) and apply its rules
                       to open and new remote connections; local clients are
                       untouched. An unreadable or invalid file is logged
                       (file, line) and the configuration in force is kept.
                       Listeners stay as bound at start: where the new file
                       listens elsewhere, a restart is needed; remote peers
                       are let in only where it would listen, and nowhere
                       when it has no in/out rules

Exit status:
  0 stopped by SIGTERM/SIGINT; 1 another server is running, or another
  start-up failure; 3 no permission for the socket (or its group); 4
  configuration file unreadable, or a TLS file unusable; 5 invalid
  configuration line; {usage} bad command line (also: --socket-group names
  no group)
",
        version = env!("CARGO_PKG_VERSION"),
        d0 = DEFAULT_CONFIG_PATHS[0],
        d1 = DEFAULT_CONFIG_PATHS[1],
        port_env = defaults::PORT_ENV,
        port = defaults::DEFAULT_PORT,
        socket_env = defaults::SOCKET_ENV,
        frame = DEFAULT_MAX_FRAME,
        min_frame = MIN_MAX_FRAME,
        max_frame = MAX_MAX_FRAME,
        queue = DEFAULT_MAX_QUEUE,
        queue_frames = MIN_QUEUE_FRAMES,
        high = FlowOptions::default()
            .limits(DEFAULT_MAX_QUEUE, DEFAULT_MAX_FRAME)
            .high_water,
        low = FlowOptions::default()
            .limits(DEFAULT_MAX_QUEUE, DEFAULT_MAX_FRAME)
            .low_water,
        stall = DEFAULT_STALL_TIMEOUT.as_secs(),
        usage = EXIT_USAGE,
        remote = DEFAULT_MAX_REMOTE_CONNECTIONS,
        remote_frame = DEFAULT_MAX_REMOTE_FRAME,
        rate = DEFAULT_REMOTE_RATE,
        burst = DEFAULT_REMOTE_BURST,
        tls_port = DEFAULT_TLS_PORT,
        hs_timeout = DEFAULT_HANDSHAKE_TIMEOUT.as_secs(),
        hs_max = DEFAULT_MAX_HANDSHAKES,
        hs_max_max = MAX_MAX_HANDSHAKES,
    )
}

/// Parses a byte count with an optional `K`, `KiB`, `M` or `MiB` suffix
/// (powers of 1024).
pub fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    if digits.is_empty() {
        return None;
    }
    let value: usize = digits.parse().ok()?;
    let scale: usize = match suffix.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "kib" => 1024,
        "m" | "mib" => 1024 * 1024,
        _ => return None,
    };
    value.checked_mul(scale)
}

/// Parses a duration: seconds, or milliseconds with an `ms` suffix (`5`,
/// `5s`, `500ms`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (digits, millis) = if let Some(d) = text.strip_suffix("ms") {
        (d, true)
    } else if let Some(d) = text.strip_suffix('s') {
        (d, false)
    } else {
        (text, false)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(if millis {
        Duration::from_millis(n)
    } else {
        Duration::from_secs(n)
    })
}

/// Resolves a `--socket-group` value: a number is a group id, anything
/// else a group name looked up in the group database.
pub fn resolve_group(text: &str) -> Result<u32, ArgsError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| ArgsError(format!("--socket-group {text:?} is not a group id")));
    }
    match nix::unistd::Group::from_name(text) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(ArgsError(format!("--socket-group {text:?}: no such group"))),
        Err(e) => Err(ArgsError(format!(
            "--socket-group {text:?}: cannot read the group database: {e}"
        ))),
    }
}

/// Parses the arguments (without the program name), taking defaults from
/// `env`.
pub fn parse<I>(args: I, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Command, ArgsError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut port: Option<u16> = None;
    let mut socket: Option<PathBuf> = None;
    let mut max_frame: Option<usize> = None;
    let mut max_queue: Option<usize> = None;
    let mut config: Option<PathBuf> = None;
    let mut socket_group: Option<u32> = None;
    let mut remote = RemoteLimits::default();
    let mut remote_frame: Option<usize> = None;
    let mut flow = FlowOptions::default();
    let mut tls_port: Option<u16> = None;
    let mut tls_cert: Option<PathBuf> = None;
    let mut tls_key: Option<PathBuf> = None;
    let mut tls_client_ca: Option<PathBuf> = None;
    let mut handshake_timeout: Option<Duration> = None;
    let mut max_handshakes: Option<usize> = None;
    let mut plain_remote = PlainRemote::Allowed;

    // lexopt splits the tokens (`--name value`, `--name=value`, `--`, a
    // lone `-` as a value); the arms below validate each option.
    let mut parser = lexopt::Parser::from_args(args);
    loop {
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            Err(e) => return Err(ArgsError(e.to_string())),
        };
        let name = match arg {
            lexopt::Arg::Value(v) => {
                if config.is_some() {
                    return Err(ArgsError(format!(
                        "more than one configuration file given ({})",
                        v.to_string_lossy()
                    )));
                }
                config = Some(PathBuf::from(v));
                continue;
            }
            lexopt::Arg::Long(n) => format!("--{n}"),
            lexopt::Arg::Short(c) => format!("-{c}"),
        };
        let mut value = |what: &str| -> Result<OsString, ArgsError> {
            parser
                .value()
                .map_err(|_| ArgsError(format!("{name} needs a value ({what})")))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--port" => {
                let v = value("a port number")?;
                let v = v.to_string_lossy();
                port = Some(defaults::parse_port(&v, true).ok_or_else(|| {
                    ArgsError(format!("--port {v:?} is not a port number (0..=65535)"))
                })?);
            }
            "--socket" => {
                let v = value("a path")?;
                if v.is_empty() {
                    return Err(ArgsError("--socket needs a non-empty path".into()));
                }
                socket = Some(PathBuf::from(v));
            }
            "--max-frame" => {
                let v = value("a size in bytes")?;
                let v = v.to_string_lossy();
                let size = parse_size(&v)
                    .filter(|s| (MIN_MAX_FRAME..=MAX_MAX_FRAME).contains(s))
                    .ok_or_else(|| {
                        ArgsError(format!(
                            "--max-frame {v:?} is not a size from {MIN_MAX_FRAME} to \
                             {MAX_MAX_FRAME} bytes"
                        ))
                    })?;
                max_frame = Some(size);
            }
            "--max-queue" => {
                let v = value("a size in bytes")?;
                let v = v.to_string_lossy();
                let size = parse_size(&v)
                    .filter(|s| *s <= MAX_MAX_QUEUE)
                    .ok_or_else(|| {
                        ArgsError(format!(
                            "--max-queue {v:?} is not a size of at most {MAX_MAX_QUEUE} bytes"
                        ))
                    })?;
                max_queue = Some(size);
            }
            "--high-water" | "--low-water" => {
                let v = value("a size in bytes")?;
                let v = v.to_string_lossy();
                let size = parse_size(&v).filter(|s| *s > 0).ok_or_else(|| {
                    ArgsError(format!("{name} {v:?} is not a size in bytes (> 0)"))
                })?;
                if name == "--high-water" {
                    flow.high_water = Some(size);
                } else {
                    flow.low_water = Some(size);
                }
            }
            "--stall-timeout" => {
                let v = value("a duration")?;
                let v = v.to_string_lossy();
                flow.stall_timeout = parse_duration(&v)
                    .filter(|d| (MIN_STALL_TIMEOUT..=MAX_STALL_TIMEOUT).contains(d))
                    .ok_or_else(|| {
                        ArgsError(format!(
                            "--stall-timeout {v:?} is not a duration from 100ms to 3600s"
                        ))
                    })?;
            }
            "--socket-group" => {
                let v = value("a group name or id")?;
                socket_group = Some(resolve_group(&v.to_string_lossy())?);
            }
            "--max-remote" => {
                let v = value("a number of connections")?;
                let v = v.to_string_lossy();
                remote.max_connections = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= MAX_CONNECTIONS)
                    .ok_or_else(|| {
                        ArgsError(format!(
                            "--max-remote {v:?} is not a number from 0 to {MAX_CONNECTIONS}"
                        ))
                    })?;
            }
            "--max-remote-frame" => {
                let v = value("a size in bytes")?;
                let v = v.to_string_lossy();
                let size = parse_size(&v)
                    .filter(|s| (MIN_MAX_FRAME..=MAX_MAX_FRAME).contains(s))
                    .ok_or_else(|| {
                        ArgsError(format!(
                            "--max-remote-frame {v:?} is not a size from {MIN_MAX_FRAME} to \
                             {MAX_MAX_FRAME} bytes"
                        ))
                    })?;
                remote_frame = Some(size);
            }
            "--remote-rate" => {
                let v = value("frames per second")?;
                let v = v.to_string_lossy();
                remote.rate = v.parse::<u32>().map_err(|_| {
                    ArgsError(format!(
                        "--remote-rate {v:?} is not a number of frames per second"
                    ))
                })?;
            }
            "--remote-burst" => {
                let v = value("a number of frames")?;
                let v = v.to_string_lossy();
                remote.burst = v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ArgsError(format!(
                        "--remote-burst {v:?} is not a number of frames (>= 1)"
                    ))
                })?;
            }
            "--tls-port" => {
                let v = value("a port number")?;
                let v = v.to_string_lossy();
                tls_port = Some(defaults::parse_port(&v, true).ok_or_else(|| {
                    ArgsError(format!("--tls-port {v:?} is not a port number (0..=65535)"))
                })?);
            }
            "--tls-cert" | "--tls-key" | "--tls-client-ca" => {
                let v = value("a file")?;
                if v.is_empty() {
                    return Err(ArgsError(format!("{name} needs a non-empty path")));
                }
                let path = Some(PathBuf::from(v));
                match name.as_str() {
                    "--tls-cert" => tls_cert = path,
                    "--tls-key" => tls_key = path,
                    _ => tls_client_ca = path,
                }
            }
            "--tls-handshake-timeout" => {
                let v = value("a duration")?;
                let v = v.to_string_lossy();
                handshake_timeout = Some(
                    parse_duration(&v)
                        .filter(|d| (MIN_HANDSHAKE_TIMEOUT..=MAX_HANDSHAKE_TIMEOUT).contains(d))
                        .ok_or_else(|| {
                            ArgsError(format!(
                                "--tls-handshake-timeout {v:?} is not a duration from 100ms to \
                                 600s"
                            ))
                        })?,
                );
            }
            "--tls-max-handshakes" => {
                let v = value("a number of handshakes")?;
                let v = v.to_string_lossy();
                max_handshakes = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_MAX_HANDSHAKES).contains(n))
                        .ok_or_else(|| {
                            ArgsError(format!(
                                "--tls-max-handshakes {v:?} is not a number from 1 to \
                                 {MAX_MAX_HANDSHAKES}"
                            ))
                        })?,
                );
            }
            "--no-plain-remote" => {
                // A flag: `--no-plain-remote=x` is an error, not ignored.
                if let Some(v) = parser.optional_value() {
                    return Err(ArgsError(format!(
                        "--no-plain-remote takes no value (given {:?})",
                        v.to_string_lossy()
                    )));
                }
                plain_remote = PlainRemote::LoopbackOnly;
            }
            _ => return Err(ArgsError(format!("unknown option {name}"))),
        }
    }

    let port = match port {
        Some(p) => p,
        None => defaults::port_from(env)
            .map_err(|e| ArgsError(e.to_string()))?
            .unwrap_or(defaults::DEFAULT_PORT),
    };
    let socket = socket.unwrap_or_else(|| defaults::socket_path_from(env, defaults::current_uid()));
    let max_frame = max_frame.unwrap_or(DEFAULT_MAX_FRAME);
    remote.max_frame = match remote_frame {
        Some(f) if f > max_frame => {
            return Err(ArgsError(format!(
                "--max-remote-frame {f} is larger than --max-frame {max_frame}"
            )))
        }
        Some(f) => f,
        None => DEFAULT_MAX_REMOTE_FRAME.min(max_frame),
    };
    let min_queue = max_frame
        .saturating_add(nfy_core::wire::HEADER_LEN)
        .saturating_mul(MIN_QUEUE_FRAMES);
    let max_queue = match max_queue {
        Some(q) if q < min_queue => {
            return Err(ArgsError(format!(
                "--max-queue {q} is too small for --max-frame {max_frame}: it must hold \
                 {MIN_QUEUE_FRAMES} frames ({min_queue} bytes)"
            )))
        }
        Some(q) => q,
        None => DEFAULT_MAX_QUEUE.max(min_queue),
    };
    let max_high = FlowOptions::max_high_water(max_queue, max_frame);
    if let Some(h) = flow.high_water.filter(|h| *h > max_high) {
        return Err(ArgsError(format!(
            "--high-water {h} is too large for --max-queue {max_queue}: at most {max_high} \
             (one frame must still fit above it)"
        )));
    }
    let high = flow.limits(max_queue, max_frame).high_water;
    if let Some(l) = flow.low_water.filter(|l| *l >= high) {
        return Err(ArgsError(format!(
            "--low-water {l} must be below the high-water mark ({high})"
        )));
    }
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(TlsOptions {
            port: tls_port.unwrap_or(DEFAULT_TLS_PORT),
            client_ca: tls_client_ca,
            handshake_timeout: handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT),
            max_handshakes: max_handshakes.unwrap_or(DEFAULT_MAX_HANDSHAKES),
            ..TlsOptions::new(cert, key)
        }),
        (None, None) => {
            let given = [
                (tls_port.is_some(), "--tls-port"),
                (tls_client_ca.is_some(), "--tls-client-ca"),
                (handshake_timeout.is_some(), "--tls-handshake-timeout"),
                (max_handshakes.is_some(), "--tls-max-handshakes"),
            ];
            if let Some((_, option)) = given.iter().find(|(set, _)| *set) {
                return Err(ArgsError(format!(
                    "{option} needs --tls-cert and --tls-key (TLS is off without them)"
                )));
            }
            None
        }
        (Some(_), None) => return Err(ArgsError("--tls-cert needs --tls-key".into())),
        (None, Some(_)) => return Err(ArgsError("--tls-key needs --tls-cert".into())),
    };
    Ok(Command::Run(Options {
        port,
        socket,
        max_frame,
        max_queue,
        config: config.map_or(ConfigSource::Default, ConfigSource::File),
        handle_signals: true,
        profile: Profile::LINUX,
        socket_group,
        remote,
        flow,
        tls,
        plain_remote,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    fn run(args: &[&str], env: &dyn Fn(&str) -> Option<OsString>) -> Result<Options, ArgsError> {
        match parse(args.iter().map(OsString::from), env)? {
            Command::Run(o) => Ok(o),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = run(&[], &no_env).unwrap();
        assert_eq!(o.port, 5899);
        assert_eq!(o.max_frame, DEFAULT_MAX_FRAME);
        assert_eq!(o.max_queue, DEFAULT_MAX_QUEUE);
        assert_eq!(o.config, ConfigSource::Default);
        assert!(o.handle_signals);
        assert_eq!(
            o.socket,
            defaults::fallback_socket_path(defaults::current_uid())
        );
    }

    #[test]
    fn environment_defaults() {
        let env = |k: &str| match k {
            "NFY_PORT" => Some(OsString::from("6001")),
            "NFY_SOCKET" => Some(OsString::from("/run/x.sock")),
            _ => None,
        };
        let o = run(&[], &env).unwrap();
        assert_eq!(o.port, 6001);
        assert_eq!(o.socket, PathBuf::from("/run/x.sock"));
        // The command line wins.
        let o = run(&["--port", "7000", "--socket=/y"], &env).unwrap();
        assert_eq!(o.port, 7000);
        assert_eq!(o.socket, PathBuf::from("/y"));
        let bad = |k: &str| (k == "NFY_PORT").then(|| OsString::from("http"));
        assert!(run(&[], &bad).unwrap_err().0.contains("NFY_PORT"));
        // ... also over a bad environment.
        assert_eq!(run(&["--port", "1"], &bad).unwrap().port, 1);
    }

    #[test]
    fn all_options() {
        let o = run(
            &[
                "--port=0",
                "--max-frame",
                "128K",
                "--max-queue",
                "1M",
                "cfg",
            ],
            &no_env,
        )
        .unwrap();
        assert_eq!(o.port, 0);
        assert_eq!(o.max_frame, 128 * 1024);
        assert_eq!(o.max_queue, 1024 * 1024);
        assert_eq!(o.config, ConfigSource::File("cfg".into()));
        let o = run(&["--", "--odd-name.cfg"], &no_env).unwrap();
        assert_eq!(o.config, ConfigSource::File("--odd-name.cfg".into()));
    }

    #[test]
    fn queue_follows_a_large_frame_limit() {
        let o = run(&["--max-frame", "8M"], &no_env).unwrap();
        assert!(o.max_queue >= 2 * 8 * 1024 * 1024);
        let e = run(&["--max-frame", "1M", "--max-queue", "1M"], &no_env).unwrap_err();
        assert!(e.0.contains("too small"), "{e}");
    }

    #[test]
    fn help_and_version() {
        let p = |a: &[&str]| parse(a.iter().map(OsString::from), &no_env).unwrap();
        assert_eq!(p(&["--help"]), Command::Help);
        assert_eq!(p(&["-h"]), Command::Help);
        assert_eq!(p(&["--port", "1", "--version"]), Command::Version);
        assert_eq!(p(&["-V"]), Command::Version);
        let text = usage();
        for needle in [
            "--port",
            "--socket",
            "--max-frame",
            "--max-queue",
            "--socket-group",
            "--max-remote",
            "--max-remote-frame",
            "--remote-rate",
            "--remote-burst",
            "--high-water",
            "--low-water",
            "--stall-timeout",
            "--tls-port",
            "--tls-cert",
            "--tls-key",
            "--tls-client-ca",
            "--tls-handshake-timeout",
            "--tls-max-handshakes",
            "--no-plain-remote",
            "NFY_LOGMASK",
            "RUST_LOG",
            "NOTIFY_SOCKET",
            "SIGHUP",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
    }

    #[test]
    fn errors() {
        for bad in [
            &["--port"][..],
            &["--port", "65536"],
            &["--port", "x"],
            &["--max-frame", "10"],
            &["--max-frame", "1G"],
            &["--max-queue", "lots"],
            &["--socket", ""],
            &["--bogus"],
            &["a.cfg", "b.cfg"],
            &["--no-plain-remote=yes"],
            &["-x"],
        ] {
            assert!(run(bad, &no_env).is_err(), "{bad:?}");
        }
        // The messages name the option.
        let e = run(&["--max-queue"], &no_env).unwrap_err();
        assert!(e.0.contains("--max-queue needs a value"), "{e}");
        let e = run(&["--bogus=1"], &no_env).unwrap_err();
        assert!(e.0.contains("--bogus"), "{e}");
        // A value may start with a dash; `-` alone is a configuration file.
        assert!(run(&["--port", "-1"], &no_env).is_err());
        assert!(run(&["-"], &no_env).is_ok());
    }

    #[test]
    fn socket_group_and_remote_limits() {
        let o = run(&[], &no_env).unwrap();
        assert_eq!(o.socket_group, None);
        assert_eq!(o.remote, RemoteLimits::default());
        let gid = nix::unistd::getgid().as_raw();
        let o = run(
            &[
                "--socket-group",
                &gid.to_string(),
                "--max-remote=3",
                "--max-remote-frame",
                "2K",
                "--remote-rate",
                "10",
                "--remote-burst",
                "20",
            ],
            &no_env,
        )
        .unwrap();
        assert_eq!(o.socket_group, Some(gid));
        assert_eq!(
            o.remote,
            RemoteLimits {
                max_connections: 3,
                max_frame: 2048,
                rate: 10,
                burst: 20
            }
        );
        // Names are looked up; root's group is called "root" on Linux.
        if let Ok(Some(g)) = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(0)) {
            let o = run(&["--socket-group", &g.name], &no_env).unwrap();
            assert_eq!(o.socket_group, Some(0));
        }
        let e = run(&["--socket-group", "no-such-group-nfy"], &no_env).unwrap_err();
        assert!(e.0.contains("no such group"), "{e}");
        // The remote frame limit follows a smaller frame limit.
        let o = run(&["--max-frame", "4K"], &no_env).unwrap();
        assert_eq!(o.remote.max_frame, 4096);
        for bad in [
            &["--max-remote-frame", "128K"][..],
            &["--max-remote", "x"],
            &["--max-remote", "100000"],
            &["--remote-rate", "-1"],
            &["--remote-burst", "0"],
            &["--socket-group"],
        ] {
            assert!(run(bad, &no_env).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flow_control_options() {
        let o = run(&[], &no_env).unwrap();
        assert_eq!(o.flow, FlowOptions::default());
        let limits = o.broker_limits().flow;
        assert_eq!(limits.high_water, DEFAULT_MAX_QUEUE / 4);
        assert_eq!(limits.low_water, DEFAULT_MAX_QUEUE / 16);
        assert_eq!(limits.stall_timeout, Duration::from_secs(5));
        let o = run(
            &[
                "--high-water=64K",
                "--low-water",
                "16K",
                "--stall-timeout",
                "750ms",
            ],
            &no_env,
        )
        .unwrap();
        let limits = o.broker_limits().flow;
        assert_eq!(
            (limits.high_water, limits.low_water, limits.stall_timeout),
            (64 * 1024, 16 * 1024, Duration::from_millis(750))
        );
        // The marks follow --max-queue when not given.
        let o = run(&["--max-frame", "16K", "--max-queue", "64K"], &no_env).unwrap();
        let limits = o.broker_limits().flow;
        assert_eq!((limits.high_water, limits.low_water), (16 * 1024, 4 * 1024));
        for bad in [
            &["--high-water", "0"][..],
            &["--high-water", "4M"],
            &["--max-queue", "1M", "--high-water", "1M"],
            &["--high-water", "64K", "--low-water", "64K"],
            &["--low-water", "2M"],
            &["--stall-timeout", "0"],
            &["--stall-timeout", "50ms"],
            &["--stall-timeout", "2h"],
            &["--stall-timeout", "-1"],
        ] {
            assert!(run(bad, &no_env).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tls_options() {
        let o = run(&[], &no_env).unwrap();
        assert_eq!((o.tls, o.plain_remote), (None, PlainRemote::Allowed));
        let o = run(&["--tls-cert", "s.pem", "--tls-key=s.key"], &no_env).unwrap();
        assert_eq!(o.tls, Some(TlsOptions::new("s.pem", "s.key")));
        assert_eq!(o.tls.unwrap().port, DEFAULT_TLS_PORT);
        let o = run(
            &[
                "--tls-cert",
                "s.pem",
                "--tls-key",
                "s.key",
                "--tls-client-ca",
                "ca.pem",
                "--tls-port",
                "0",
                "--tls-handshake-timeout",
                "500ms",
                "--tls-max-handshakes",
                "3",
                "--no-plain-remote",
            ],
            &no_env,
        )
        .unwrap();
        assert_eq!(
            o.tls,
            Some(TlsOptions {
                port: 0,
                cert: "s.pem".into(),
                key: "s.key".into(),
                client_ca: Some("ca.pem".into()),
                handshake_timeout: Duration::from_millis(500),
                max_handshakes: 3,
            })
        );
        assert_eq!(o.plain_remote, PlainRemote::LoopbackOnly);
        for (bad, says) in [
            (&["--tls-cert", "s.pem"][..], "--tls-cert needs --tls-key"),
            (&["--tls-key", "s.key"], "--tls-key needs --tls-cert"),
            (&["--tls-port", "1"], "--tls-port needs --tls-cert"),
            (
                &["--tls-client-ca", "c"],
                "--tls-client-ca needs --tls-cert",
            ),
            (&["--tls-cert", ""], "non-empty"),
            (&["--tls-port", "x"], "not a port"),
            (&["--tls-handshake-timeout", "1h"], "100ms to 600s"),
            (&["--tls-max-handshakes", "0"], "from 1 to"),
        ] {
            let e = run(bad, &no_env).unwrap_err();
            assert!(e.0.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), None);
        assert_eq!(parse_duration("ms"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("64KiB"), Some(65536));
        assert_eq!(parse_size("4M"), Some(4 << 20));
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("1.5M"), None);
        assert_eq!(parse_size("99999999999999999999"), None);
    }
}
