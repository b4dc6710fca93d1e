//! The bridge's configuration: its file (rules and exports) and its
//! command line.
//!
//! # File
//!
//! ```text
//! # what may leave this terminal, and what may come in (whitelist syntax)
//! out *        *@office   *
//! in  *@*      ui         show
//! # what other terminals may send to here (announced to them)
//! export ui show
//! export printer print 5
//! ```
//!
//! - `in|out <from> <to> <notification>`: the whitelist's rules, parsed and
//!   matched by the core ([`nfy_core::whitelist`]), read as on this
//!   terminal: `out` sees a notification as sent here (`to` is
//!   `ui@lane-2`, `1` or `*`), `in` as it will be delivered here (`from` is
//!   `payment@lane-1`, `to` is `ui`, `1` or `*`). Nothing crosses that no
//!   rule allows: no rules, nothing crosses.
//! - `export <app> <notification> [priority]`: this terminal receives
//!   `notification` for `app` from others; announced in its presence, so
//!   every other bridge registers `app@<this terminal>` for it, with
//!   `priority` (default `i32::MIN`: a local receiver always wins `"1"`).
//!   Fields are separated by blanks, without escapes (an app ID with a
//!   blank cannot be exported).
//! - `interface` lines mean nothing here and are refused; `#` comments and
//!   blank lines are ignored.
//!
//! # Decision: exports are configured, not derived from registrations
//!
//! The local server lists its registrations to a local client (`nfy
//! status`, `nfy_linux::client::server_report`), so exports could be
//! derived: an `export` pattern matched against the listed registrations,
//! listed again every few seconds. They stay lines of this file, because:
//!
//! - An export is a promise to the fleet that holds while the terminal is
//!   unreachable: other bridges keep the proxies of an offline terminal
//!   (its presence carries its exports, the will included), so what is
//!   sent to it waits in its persistent session. The will is fixed when
//!   the bridge connects (MQTT 3.1.1 cannot change it without
//!   reconnecting): exports that change while connected would leave a
//!   killed bridge's will announcing stale ones.
//! - Derived exports come and go with the apps (an app restarting, apps
//!   that register after their bridge at boot), and every change is a
//!   retained presence that every bridge of the prefix reads and answers
//!   by registering or dropping proxies: app churn on one terminal becomes
//!   work on all of them (docs/reliability.md, "Fleets at scale"), for no
//!   gain in delivery (a unicast to an app that is not registered fails
//!   either way, here or there).
//! - The server does not announce registration changes: the bridge would
//!   poll the whole listing (every connection and registration), and a new
//!   registration would be reachable from elsewhere only after the next
//!   poll.
//!
//! What the listing gives an operator — is an export actually received? —
//! `nfy status` on that terminal shows, and a unicast to an export nobody
//! receives comes back to its sender as a unicast error, as locally.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use nfy_core::ids::{AppId, NotificationId};
use nfy_core::whitelist::{ConfigErrorKind, Whitelist};

use crate::names::{TerminalId, TerminalIdError};
use crate::payload::Export;

/// Rules a configuration may hold.
pub const MAX_RULES: usize = 256;

/// The rules: the core's whitelist (no interface lines).
pub type Rules = Whitelist<MAX_RULES, 0>;

/// A parsed configuration file.
#[derive(Debug, Clone, Default)]
pub struct FileConfig {
    /// The `in`/`out` rules.
    pub rules: Rules,
    /// The `export` lines, in file order.
    pub exports: Vec<Export>,
}

/// Why a configuration file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub what: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

impl std::error::Error for ConfigError {}

impl FileConfig {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut config = FileConfig::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |what: String| ConfigError { line, what };
            let trimmed = raw.trim_matches([' ', '\t', '\r', '\u{feff}']);
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut fields = trimmed.split([' ', '\t']).filter(|f| !f.is_empty());
            match fields.next() {
                Some("export") => {
                    let fields: Vec<&str> = fields.collect();
                    let (app, notification, priority) = match fields.as_slice() {
                        [a, n] => (*a, *n, i32::MIN),
                        [a, n, p] => (
                            *a,
                            *n,
                            p.parse::<i32>()
                                .map_err(|_| err(format!("bad priority {p:?}")))?,
                        ),
                        _ => {
                            return Err(err("export takes <app> <notification> [priority]".into()))
                        }
                    };
                    AppId::new(app).map_err(|e| err(format!("app ID {app:?}: {e}")))?;
                    NotificationId::new(notification)
                        .map_err(|e| err(format!("notification ID {notification:?}: {e}")))?;
                    config.exports.push(Export {
                        app: app.to_owned(),
                        notification: notification.to_owned(),
                        priority,
                    });
                }
                Some("interface") => {
                    return Err(err("interface lines mean nothing to the bridge".into()))
                }
                _ => {
                    // One line as a whole file: the core's parser and its
                    // errors, with our line number.
                    let one = Rules::parse(raw.as_bytes()).map_err(|e| err(e.kind.to_string()))?;
                    for rule in one.rules() {
                        config
                            .rules
                            .push_rule(rule.clone())
                            .map_err(|_| err(ConfigErrorKind::TooManyRules.to_string()))?;
                    }
                }
            }
        }
        Ok(config)
    }
}

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS (`mqtts://`).
    pub tls: bool,
}

impl Broker {
    /// Parses `mqtt://host[:port]` (default port 1883) or
    /// `mqtts://host[:port]` (default 8883).
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else {
            return Err(format!(
                "broker {url:?}: expected mqtt://host[:port] or mqtts://host[:port]"
            ));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("broker {url:?}: bad port {p:?}"))?,
            ),
            _ => (rest, if tls { 8883 } else { 1883 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("broker {url:?}: no host"));
        }
        Ok(Broker {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

/// Everything the bridge runs with.
#[derive(Debug, Clone)]
pub struct Options {
    /// This terminal.
    pub terminal: TerminalId,
    /// The broker.
    pub broker: Broker,
    /// MQTT client ID (default `nfy-bridge-<terminal>`): the persistent
    /// session's name, so it must stay the same across restarts.
    pub client_id: String,
    /// MQTT user name.
    pub username: Option<String>,
    /// MQTT password (from `--password-file` or `NFY_MQTT_PASSWORD`).
    pub password: Option<String>,
    /// CA certificates (PEM) to check the broker with; the system's when
    /// absent.
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// Topic root.
    pub prefix: String,
    /// How long a forwarded unicast waits for its outcome before it is
    /// acknowledged anyway.
    pub reply_timeout: Duration,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// How often the status topic is published (`None`: only on SIGUSR1).
    pub status_interval: Option<Duration>,
    /// The local server's Unix socket (default: the environment's).
    pub socket: Option<PathBuf>,
    /// The configuration file.
    pub config_path: PathBuf,
    /// Its content.
    pub file: FileConfig,
}

/// Default of `--reply-timeout`.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the bridge.
    Run(Box<Options>),
    /// `--help`.
    Help,
    /// `--version`.
    Version,
}

/// A bad command line or configuration.
#[derive(Debug)]
pub enum ArgError {
    /// Bad command line (exit 64).
    Usage(String),
    /// The configuration file cannot be read (exit 4).
    Unreadable(PathBuf, std::io::Error),
    /// The configuration file is invalid (exit 5).
    Syntax(PathBuf, ConfigError),
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Usage(s) => f.write_str(s),
            ArgError::Unreadable(p, e) => write!(f, "{}: {e}", p.display()),
            ArgError::Syntax(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl ArgError {
    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            ArgError::Usage(_) => 64,
            ArgError::Unreadable(..) => 4,
            ArgError::Syntax(..) => 5,
        }
    }
}

/// `nfy-bridge --help`.
pub fn usage() -> &'static str {
    "Usage: nfy-bridge --terminal ID [OPTIONS] CONFIG

Links this terminal's notifysvc to an MQTT broker (README, \"Fleets\").

Options:
  --terminal ID          this terminal's ID (or NFY_TERMINAL)
  --broker URL           mqtt://host[:port] or mqtts://host[:port] (default mqtt://127.0.0.1:1883)
  --client-id ID         MQTT client ID, the persistent session (default nfy-bridge-<terminal>)
  --username NAME        MQTT user name
  --password-file FILE   MQTT password, first line of FILE (or NFY_MQTT_PASSWORD)
  --ca FILE              CA certificates (PEM) for mqtts:// (default: the system's)
  --cert FILE --key FILE client certificate chain and key (PEM) for mqtts://
  --prefix P             topic root (default nfy)
  --reply-timeout MS     how long a forwarded unicast waits for its outcome (default 5000)
  --keep-alive S         MQTT keep-alive in seconds (default 10)
  --status-interval S    publish the counters every S seconds, 0 = only on SIGUSR1 (default 60)
  --socket PATH          the local server's socket (default: NFY_SOCKET, then the usual place)
  --help, --version

SIGUSR1 prints the counters on stderr and publishes them; SIGTERM/SIGINT stop.
"
}

/// Parses the command line (without the program name); `env` reads the
/// environment.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, ArgError> {
    let usage = |s: String| ArgError::Usage(s);
    let mut terminal = env("NFY_TERMINAL").filter(|s| !s.is_empty());
    let mut broker = "mqtt://127.0.0.1:1883".to_owned();
    let mut client_id = None;
    let mut username = None;
    let mut password = env("NFY_MQTT_PASSWORD").filter(|s| !s.is_empty());
    let (mut ca, mut cert, mut key) = (None, None, None);
    let mut prefix = "nfy".to_owned();
    let mut reply_timeout = DEFAULT_REPLY_TIMEOUT;
    let mut keep_alive = Duration::from_secs(10);
    let mut status_interval = Some(Duration::from_secs(60));
    let mut socket = None;
    let mut config_path = None;
    // lexopt splits the tokens (`--name value`, `--name=value`, `--`);
    // the arms below validate each option.
    let mut parser = lexopt::Parser::from_args(args);
    loop {
        let arg = match parser.next() {
            Ok(Some(lexopt::Arg::Long(n))) => format!("--{n}"),
            Ok(Some(lexopt::Arg::Short(c))) => format!("-{c}"),
            Ok(Some(lexopt::Arg::Value(v))) => {
                if config_path.is_some() {
                    return Err(usage(format!("unexpected argument {v:?}")));
                }
                config_path = Some(PathBuf::from(v));
                continue;
            }
            Ok(None) => break,
            Err(e) => return Err(usage(e.to_string())),
        };
        let mut value = |name: &str| {
            parser
                .value()
                .map_err(|_| usage(format!("{name} needs a value")))?
                .into_string()
                .map_err(|v| usage(format!("{name}: {v:?} is not UTF-8")))
        };
        let number = |name: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| usage(format!("{name}: {v:?} is not a number")))
        };
        match arg.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            "--terminal" => terminal = Some(value("--terminal")?),
            "--broker" => broker = value("--broker")?,
            "--client-id" => client_id = Some(value("--client-id")?),
            "--username" => username = Some(value("--username")?),
            "--password-file" => {
                let path = value("--password-file")?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| usage(format!("--password-file {path}: {e}")))?;
                password = Some(text.lines().next().unwrap_or("").to_owned());
            }
            "--ca" => ca = Some(PathBuf::from(value("--ca")?)),
            "--cert" => cert = Some(PathBuf::from(value("--cert")?)),
            "--key" => key = Some(PathBuf::from(value("--key")?)),
            "--prefix" => prefix = value("--prefix")?,
            "--reply-timeout" => {
                let v = value("--reply-timeout")?;
                reply_timeout = Duration::from_millis(number("--reply-timeout", v)?);
            }
            "--keep-alive" => {
                let v = value("--keep-alive")?;
                keep_alive = Duration::from_secs(number("--keep-alive", v)?.max(1));
            }
            "--status-interval" => {
                let v = value("--status-interval")?;
                let s = number("--status-interval", v)?;
                status_interval = (s > 0).then(|| Duration::from_secs(s));
            }
            "--socket" => socket = Some(PathBuf::from(value("--socket")?)),
            s => return Err(usage(format!("unknown option {s}"))),
        }
    }
    let terminal = terminal.ok_or_else(|| usage("--terminal is required".into()))?;
    let terminal = TerminalId::new(&terminal)
        .map_err(|e: TerminalIdError| usage(format!("--terminal {terminal:?}: {e}")))?;
    let broker = Broker::parse(&broker).map_err(usage)?;
    if cert.is_some() != key.is_some() {
        return Err(usage("--cert and --key go together".into()));
    }
    if !broker.tls && (ca.is_some() || cert.is_some()) {
        return Err(usage(
            "--ca, --cert and --key need an mqtts:// broker".into(),
        ));
    }
    if prefix.is_empty() || prefix.contains(['+', '#']) || prefix.ends_with('/') {
        return Err(usage(format!("--prefix {prefix:?}: not a topic root")));
    }
    let config_path = config_path.ok_or_else(|| usage("no configuration file given".into()))?;
    let text = std::fs::read_to_string(&config_path)
        .map_err(|e| ArgError::Unreadable(config_path.clone(), e))?;
    let file = FileConfig::parse(&text).map_err(|e| ArgError::Syntax(config_path.clone(), e))?;
    Ok(Command::Run(Box::new(Options {
        client_id: client_id.unwrap_or_else(|| format!("nfy-bridge-{terminal}")),
        terminal,
        broker,
        username,
        password,
        ca,
        cert,
        key,
        prefix,
        reply_timeout,
        keep_alive,
        status_interval,
        socket,
        config_path,
        file,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file() {
        let c = FileConfig::parse(
            "# c\n\nout * *@office *\nin *@* ui show\nexport ui show\nexport printer print 5\n",
        )
        .unwrap();
        assert_eq!(c.rules.rules().len(), 2);
        assert!(c.rules.allows_out("payment", "x@office", "n"));
        assert!(!c.rules.allows_out("payment", "x@lane", "n"));
        assert!(c.rules.allows_in("payment@lane-1", "ui", "show"));
        assert!(!c.rules.allows_in("payment@lane-1", "ui", "hide"));
        assert_eq!(
            c.exports,
            [
                Export {
                    app: "ui".into(),
                    notification: "show".into(),
                    priority: i32::MIN
                },
                Export {
                    app: "printer".into(),
                    notification: "print".into(),
                    priority: 5
                }
            ]
        );
        for (text, line) in [
            ("in a b\n", 1),
            ("\nexport ui\n", 2),
            ("export ui show x\n", 1),
            ("export * show\n", 1),
            ("interface eth0\n", 1),
            ("# x\nbogus a b c\n", 2),
        ] {
            assert_eq!(FileConfig::parse(text).unwrap_err().line, line, "{text}");
        }
    }

    #[test]
    fn broker_urls() {
        assert_eq!(
            Broker::parse("mqtt://h").unwrap(),
            Broker {
                host: "h".into(),
                port: 1883,
                tls: false
            }
        );
        assert_eq!(Broker::parse("mqtts://h:9").unwrap().port, 9);
        assert_eq!(Broker::parse("mqtts://h").unwrap().port, 8883);
        assert_eq!(Broker::parse("mqtt://[::1]:7").unwrap().host, "::1");
        assert!(Broker::parse("http://h").is_err());
        assert!(Broker::parse("mqtt://h:x").is_err());
        assert!(Broker::parse("mqtt://").is_err());
    }

    #[test]
    fn command_line() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("b.cfg");
        std::fs::write(&cfg, "out * * *\n").unwrap();
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let none = |_: &str| None;
        let c = cfg.to_str().unwrap();
        let Command::Run(o) = parse(args(&["--terminal", "t1", c]), &none).unwrap() else {
            panic!()
        };
        assert_eq!(o.client_id, "nfy-bridge-t1");
        assert_eq!(o.reply_timeout, DEFAULT_REPLY_TIMEOUT);
        let env = |k: &str| (k == "NFY_TERMINAL").then(|| "t2".to_string());
        let Command::Run(o) = parse(args(&[c, "--reply-timeout", "50"]), &env).unwrap() else {
            panic!()
        };
        assert_eq!(o.terminal.as_str(), "t2");
        assert_eq!(o.reply_timeout, Duration::from_millis(50));
        // `--name=value`, and `--` before a file name.
        let Command::Run(o) = parse(args(&["--terminal=t3", "--", c]), &none).unwrap() else {
            panic!()
        };
        assert_eq!(o.terminal.as_str(), "t3");
        for bad in [
            &[c][..],
            &["--terminal", "a/b", c],
            &["--terminal", "t", "--cert", "x", c],
            &["--terminal", "t", "--ca", "x", c],
            &["--terminal", "t", "--bogus", c],
            &["--terminal", "t"],
            &["--terminal", "t", c, c],
            &["--terminal", "t", c, "--reply-timeout"],
        ] {
            assert_eq!(
                parse(args(bad), &none).unwrap_err().exit_code(),
                64,
                "{bad:?}"
            );
        }
        let missing = dir.path().join("none.cfg");
        let e = parse(args(&["--terminal", "t", missing.to_str().unwrap()]), &none).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        std::fs::write(&cfg, "out a b\n").unwrap();
        assert_eq!(
            parse(args(&["--terminal", "t", c]), &none)
                .unwrap_err()
                .exit_code(),
            5
        );
        assert!(matches!(parse(args(&["--help"]), &none), Ok(Command::Help)));
    }
}
