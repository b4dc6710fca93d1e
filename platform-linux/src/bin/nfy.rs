//! `nfy`: the notification service from the command line.
//!
//! ```text
//! nfy [--socket PATH] [--port PORT]
//!     [--server HOST:PORT [--tls-ca FILE [--tls-cert FILE --tls-key FILE]
//!      [--tls-server-name NAME]]] COMMAND [ARGS]
//!   send [--from APP] [--flags N] [--wait-error MS] TO NOTIFICATION [JSON]
//!   listen --as APP [--priority N] [--count N] NOTIFICATION...
//!   monitor [--count N]
//!   status [--json]
//! ```
//!
//! Exit status: 0 success; 1 the server is not running, refused this
//! user, or another runtime failure; 2 `send --wait-error` received a
//! unicast error; 64 usage error (one line on stderr naming the problem;
//! the help is `--help`, per command too).
//!
//! Options are parsed with `lexopt`: it adds about 18 KB to a stripped
//! x86-64 binary where `clap` (default features off, derive) adds about
//! 390 KB (measured on the same small program; terminal flash is
//! scarce), and it leaves the messages to us.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use lexopt::{Arg, Parser, ValueExt};
use nfy_core::msg::{ConnectionReport, PeerAddr};
use nfy_linux::client::{
    conn::STATUS_TIMEOUT, server_report, Client, ConnectionEvent, Delivery, Error, Handle,
    NotifyOptions, Observed, ServerAddr, ServerReport, TlsSettings,
};
use serde::Serialize;
use serde_json::value::RawValue;

/// Success.
const EXIT_OK: u8 = 0;
/// The server is not running, or another runtime failure.
const EXIT_FAILURE: u8 = 1;
/// `send --wait-error`: a unicast error came back.
const EXIT_UNICAST_ERROR: u8 = 2;
/// Bad command line (sysexits' EX_USAGE).
const EXIT_USAGE: u8 = 64;

/// The source app ID of `nfy send` without `--from`.
const DEFAULT_FROM: &str = "nfy";

const USAGE: &str = "\
nfy - send, receive and watch notifications of the nfy notification service

Usage: nfy [--socket PATH] [--port PORT] [--server HOST:PORT [TLS OPTIONS]]
           COMMAND [ARGS]

Commands:
  send      send one notification
  listen    print the notifications an app receives, one JSON line each
  monitor   print every delivery the server makes (observer), one JSON line each
  status    print what the server knows (connections, registrations, counters)
  help      this help, or a command's: nfy help COMMAND

Global options:
  --socket PATH  Unix socket of the server (default: $NFY_SOCKET, else
                 $XDG_RUNTIME_DIR/nfy/notify.sock, else /tmp/nfy-<uid>/notify.sock;
                 /run/nfy/notify.sock instead when only that socket exists)
  --port PORT    TCP port on 127.0.0.1, tried when the socket fails
                 (default: $NFY_PORT, else 5899)
  --server HOST:PORT
                 a server elsewhere, over TCP only (HOST: a name or an
                 address; [::1]:5899 for IPv6); with --tls-ca, over TLS
                 (the server's --tls-port, 5898 by default)
  -h, --help     this help;  nfy COMMAND --help for a command's

TLS (with --server; files are read once, PEM):
  --tls-ca FILE           CA certificates the server's certificate must
                          chain to (turns TLS on)
  --tls-cert FILE, --tls-key FILE
                          the certificate (chain) and key to present, for a
                          server that requires one (--tls-client-ca)
  --tls-server-name NAME  the name the server's certificate must carry
                          (default: HOST)
  -V, --version  version

Exit status: 0 ok, 1 server not running (or not allowed: the message names
the group to join) or other failure, 2 unicast error (send --wait-error),
64 usage error.
";

/// One command: its name, usage line and help text.
struct Command {
    name: &'static str,
    usage: &'static str,
    help: &'static str,
}

const SEND: Command = Command {
    name: "send",
    usage: "nfy send [--from APP] [--flags N] [--wait-error MS] TO NOTIFICATION [JSON]",
    help: "\
Sends NOTIFICATION to TO: an app ID, \"1\" (the one best-priority receiver)
or \"*\" (every receiver). JSON is the parameter (default {}). A
notification larger than the server accepts is refused (exit 1).

Options:
  --from APP         source app ID (default: nfy)
  --flags N          32-bit flags, decimal or 0x-hex (default 0)
  --wait-error MS    wait up to MS milliseconds for a unicast error (nobody
                     received it); exit 2 and report it if one comes
  -h, --help         this help
",
};

const LISTEN: Command = Command {
    name: "listen",
    usage: "nfy listen --as APP [--priority N] [--count N] NOTIFICATION...",
    help: "\
Registers each NOTIFICATION as app APP and prints one JSON line per
delivery on stdout: {\"from\",\"to\",\"notification\",\"flags\",\"parameter\"}.
Prints \"nfy: listening ...\" on stderr once the registrations are in force,
and one line on stderr when the connection to the server is lost and when
it is back. Runs until interrupted (reconnecting when the server restarts).

Options:
  --as APP        receiver app ID (required)
  --priority N    registration priority (default 0; larger wins for \"1\")
  --count N       exit after N deliveries
  -h, --help      this help
",
};

const MONITOR: Command = Command {
    name: "monitor",
    usage: "nfy monitor [--count N]",
    help: "\
Observes the server: one JSON line per delivery on stdout,
{\"from\",\"to\",\"notification\",\"flags\"}; \"to\" is the resolved receiver,
empty when nobody received the notification. Never the parameter.
Prints \"nfy: monitoring\" on stderr once observing, and one line on stderr
when the connection to the server is lost and when it is back.

Options:
  --count N     exit after N lines
  -h, --help    this help
",
};

const STATUS: Command = Command {
    name: "status",
    usage: "nfy status [--json]",
    help: "\
Prints the server's counters, then one line per open connection: its id
(as the server logs it), where it comes from (Unix socket with the
process's pid, uid and gid; TCP or TLS with the address, `remote` when
not loopback), its app ID (from hello), its number of registrations, and
whether it observes; under a TLS connection, the subject of its peer's
certificate; under each connection, one line per registration:
notification ID, receiver app ID, priority. This command's own
connection is listed too.

Counters: refused connections (of those remote: the remote connection
limit; TLS handshakes that failed, timed out or were over the bound are
refused connections too), frames dropped by the remote rate limit,
oversize frames skipped; with TLS on, the TLS handshakes: completed,
failed, timed out, over the bound.

With --json, one object: the counters (\"tls\": the TLS counters, null
without TLS), and \"connections\", each with \"registered\":
[{\"notification\",\"to\",\"priority\"}] (and \"transport\": \"tls\",
\"tls_subject\" for a TLS connection).

Options:
  --json        one JSON object instead of text
  -h, --help    this help
",
};

const COMMANDS: [&Command; 4] = [&SEND, &LISTEN, &MONITOR, &STATUS];

/// How the process ends early: a message for stderr and the exit status.
enum Exit {
    /// A bad command line: one line naming the problem.
    Usage(Option<&'static Command>, String),
    /// A runtime failure: the message, the status.
    Fail(u8, String),
    /// Help or version printed: success.
    Done,
}

impl Exit {
    fn usage(cmd: &'static Command, msg: impl Into<String>) -> Exit {
        Exit::Usage(Some(cmd), msg.into())
    }
}

impl From<lexopt::Error> for Exit {
    fn from(e: lexopt::Error) -> Self {
        Exit::Usage(None, e.to_string())
    }
}

fn main() -> ExitCode {
    match run(std::env::args_os().skip(1).collect()) {
        Ok(code) => ExitCode::from(code),
        Err(Exit::Done) => ExitCode::from(EXIT_OK),
        Err(Exit::Usage(cmd, msg)) => {
            match cmd {
                Some(c) => eprintln!("nfy {}: {msg} (usage: {})", c.name, c.usage),
                None => eprintln!("nfy: {msg} (nfy --help for usage)"),
            }
            ExitCode::from(EXIT_USAGE)
        }
        Err(Exit::Fail(code, msg)) => {
            eprintln!("nfy: {msg}");
            ExitCode::from(code)
        }
    }
}

/// Prints `text` on stdout: the help.
fn help(text: &str) -> Exit {
    print!("{text}");
    Exit::Done
}

fn command_help(c: &Command) -> Exit {
    help(&format!("Usage: {}\n\n{}", c.usage, c.help))
}

/// A lexopt parser error, said for command `cmd`.
fn in_cmd(cmd: &'static Command) -> impl Fn(lexopt::Error) -> Exit {
    move |e| Exit::usage(cmd, e.to_string())
}

/// A value as UTF-8 text.
fn text(cmd: &'static Command, option: &str, v: OsString) -> Result<String, Exit> {
    v.into_string()
        .map_err(|v| Exit::usage(cmd, format!("{option}: {v:?} is not UTF-8")))
}

/// A value parsed as a number.
fn number<T: std::str::FromStr>(
    cmd: &'static Command,
    option: &str,
    v: OsString,
) -> Result<T, Exit> {
    let v = text(cmd, option, v)?;
    v.parse()
        .map_err(|_| Exit::usage(cmd, format!("{option}: {v:?} is not a valid number")))
}

/// `--server` and the TLS options.
#[derive(Default)]
struct Remote {
    server: Option<String>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    server_name: Option<String>,
}

impl Remote {
    /// The address `--server` names, over TLS with `--tls-ca`; `None`
    /// without `--server`.
    fn addr(&self) -> Result<Option<ServerAddr>, Exit> {
        let usage = |msg: String| Exit::Usage(None, msg);
        let Some(server) = &self.server else {
            let tls_option = [
                (self.ca.is_some(), "--tls-ca"),
                (self.cert.is_some(), "--tls-cert"),
                (self.key.is_some(), "--tls-key"),
                (self.server_name.is_some(), "--tls-server-name"),
            ];
            return match tls_option.iter().find(|(set, _)| *set) {
                Some((_, option)) => Err(usage(format!("{option} needs --server HOST:PORT"))),
                None => Ok(None),
            };
        };
        use std::net::ToSocketAddrs;
        let addr = server
            .to_socket_addrs()
            .map_err(|e| usage(format!("--server {server:?}: {e} (HOST:PORT expected)")))?
            .next()
            .ok_or_else(|| usage(format!("--server {server:?}: no address")))?;
        let Some(ca) = &self.ca else {
            if self.cert.is_some() || self.key.is_some() || self.server_name.is_some() {
                return Err(usage("the TLS options need --tls-ca".into()));
            }
            return Ok(Some(ServerAddr::tcp(addr)));
        };
        let client = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            (None, None) => None,
            _ => return Err(usage("--tls-cert and --tls-key go together".into())),
        };
        let host = server
            .rsplit_once(':')
            .map_or(server.as_str(), |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = self.server_name.as_deref().unwrap_or(host);
        let settings = TlsSettings::from_files(ca, client, name)
            .map_err(|e| Exit::Fail(EXIT_FAILURE, format!("TLS: {e}")))?;
        Ok(Some(ServerAddr::tls(addr, settings)))
    }
}

fn run(raw: Vec<OsString>) -> Result<u8, Exit> {
    let mut p = Parser::from_args(raw);
    let mut socket: Option<PathBuf> = None;
    let mut port: Option<u16> = None;
    let mut remote = Remote::default();
    let command = loop {
        match p.next()? {
            None => return Err(Exit::Usage(None, "no command given".into())),
            Some(Arg::Short('h') | Arg::Long("help")) => return Err(help(USAGE)),
            Some(Arg::Short('V') | Arg::Long("version")) => {
                println!("nfy {}", env!("CARGO_PKG_VERSION"));
                return Err(Exit::Done);
            }
            Some(Arg::Long("socket")) => socket = Some(PathBuf::from(p.value()?)),
            Some(Arg::Long("port")) => {
                let v = p.value()?;
                let v = v.string()?;
                port = Some(v.parse().map_err(|_| {
                    Exit::Usage(None, format!("--port: {v:?} is not a TCP port number"))
                })?);
            }
            Some(Arg::Long("server")) => remote.server = Some(p.value()?.string()?),
            Some(Arg::Long("tls-ca")) => remote.ca = Some(PathBuf::from(p.value()?)),
            Some(Arg::Long("tls-cert")) => remote.cert = Some(PathBuf::from(p.value()?)),
            Some(Arg::Long("tls-key")) => remote.key = Some(PathBuf::from(p.value()?)),
            Some(Arg::Long("tls-server-name")) => remote.server_name = Some(p.value()?.string()?),
            Some(Arg::Value(c)) => break c.string()?,
            Some(other) => return Err(other.unexpected().into()),
        }
    };
    let addr = move || -> Result<ServerAddr, Exit> {
        if let Some(addr) = remote.addr()? {
            return Ok(addr);
        }
        // `--port` overrides NFY_PORT (even an unusable one); the rest is
        // the library's one resolution rule.
        let nfy_port = if port.is_some() {
            None
        } else {
            std::env::var_os("NFY_PORT")
        };
        let mut addr = ServerAddr::resolve(
            std::env::var_os("NFY_SOCKET"),
            nfy_port,
            std::env::var_os("XDG_RUNTIME_DIR"),
        )
        .map_err(|e| Exit::Fail(EXIT_FAILURE, e.to_string()))?;
        if let Some(s) = socket {
            addr.unix = Some(s);
        }
        if let Some(p) = port {
            addr.tcp = Some(ServerAddr::loopback(p));
        }
        Ok(addr)
    };
    match command.as_str() {
        "send" => send(p, addr),
        "listen" => listen(p, addr),
        "monitor" => monitor(p, addr),
        "status" => status(p, addr),
        "help" => match p.next()? {
            None => Err(help(USAGE)),
            Some(Arg::Value(name)) => {
                let name = name.string()?;
                match COMMANDS.iter().find(|c| c.name == name) {
                    Some(c) => Err(command_help(c)),
                    None => Err(Exit::Usage(None, format!("no command {name:?}"))),
                }
            }
            Some(other) => Err(other.unexpected().into()),
        },
        other => Err(Exit::Usage(None, format!("unknown command {other:?}"))),
    }
}

/// The message and status for a failure of the client library.
fn failure(e: Error) -> Exit {
    let msg = match e {
        Error::Server => "the notification server is not running (connection lost)".to_owned(),
        e => e.to_string(),
    };
    Exit::Fail(EXIT_FAILURE, msg)
}

/// True when the server may see this tool as a remote peer (`--server`
/// to another host), which may not ask for status: no `sync` then.
fn maybe_remote(addr: &ServerAddr) -> bool {
    addr.unix.is_none() && addr.tcp.is_some_and(|a| !a.ip().is_loopback())
}

fn connect(addr: ServerAddr) -> Result<Client, Exit> {
    Client::connect_to(addr.clone()).map_err(|e| match e {
        Error::Server => Exit::Fail(
            EXIT_FAILURE,
            format!("the notification server is not running (nothing at {addr})"),
        ),
        e => failure(e),
    })
}

/// Prints one stderr line when the connection to the server ends and
/// when it is back (`listen`, `monitor`).
fn tell_connection_changes(client: &Client, back: String) -> Handle {
    client.on_connection_change(move |e| match e {
        ConnectionEvent::Disconnected => {
            eprintln!("nfy: lost the connection to the notification server; reconnecting")
        }
        ConnectionEvent::Connected => eprintln!("nfy: reconnected to the server; {back}"),
    })
}

fn parse_flags(v: &str) -> Option<u32> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn send(mut p: Parser, addr: impl FnOnce() -> Result<ServerAddr, Exit>) -> Result<u8, Exit> {
    let cmd = &SEND;
    let mut from = DEFAULT_FROM.to_owned();
    let mut flags = 0u32;
    let mut wait_error: Option<u64> = None;
    let mut positional = Vec::new();
    while let Some(arg) = p.next().map_err(in_cmd(cmd))? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => return Err(command_help(cmd)),
            Arg::Long("from") => {
                from = text(cmd, "--from", p.value().map_err(in_cmd(cmd))?)?;
                if from.is_empty() {
                    return Err(Exit::usage(cmd, "--from: the app ID must not be empty"));
                }
            }
            Arg::Long("flags") => {
                let v = text(cmd, "--flags", p.value().map_err(in_cmd(cmd))?)?;
                flags = parse_flags(&v).ok_or_else(|| {
                    Exit::usage(cmd, format!("--flags: {v:?} is not a 32-bit number"))
                })?;
            }
            Arg::Long("wait-error") => {
                let v = p.value().map_err(in_cmd(cmd))?;
                wait_error = Some(number(cmd, "--wait-error", v)?);
            }
            Arg::Value(v) => positional.push(text(cmd, "argument", v)?),
            other => return Err(Exit::usage(cmd, other.unexpected().to_string())),
        }
    }
    let mut positional = positional.into_iter();
    let (Some(to), Some(notification)) = (positional.next(), positional.next()) else {
        return Err(Exit::usage(cmd, "TO and NOTIFICATION are required"));
    };
    let json = positional.next().unwrap_or_else(|| "{}".to_owned());
    if let Some(extra) = positional.next() {
        return Err(Exit::usage(
            cmd,
            format!("unexpected argument {extra:?} after the JSON parameter"),
        ));
    }
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
        return Err(Exit::usage(cmd, format!("JSON parameter: {e}")));
    }
    let addr = addr()?;
    let remote = maybe_remote(&addr);
    let client = connect(addr)?;
    let (tx, rx) = mpsc::channel();
    let _errors = wait_error.map(|_| {
        client.on_unicast_error(move |d: &Delivery<'_>| {
            let _ = tx.send((d.to.to_owned(), d.notification.to_owned()));
        })
    });
    let options = NotifyOptions {
        flags,
        from: Some(&from),
    };
    match client.notify_raw_with(&to, &notification, &json, options) {
        Ok(()) => {}
        Err(e @ (Error::InvalidId(..) | Error::AppId | Error::InvalidParameter)) => {
            return Err(Exit::usage(cmd, e.to_string()))
        }
        Err(e) => return Err(failure(e)),
    }
    if let Some(ms) = wait_error {
        if let Ok((to, n)) = rx.recv_timeout(Duration::from_millis(ms)) {
            eprintln!("nfy: unicast error: nobody received {n:?} sent to {to:?}");
            return Ok(EXIT_UNICAST_ERROR);
        }
    } else if !remote {
        // Make sure the server has read the notification before the
        // connection closes (it would anyway; this also reports a server
        // that vanished meanwhile). Not with --server: a remote peer may
        // not ask for status; the notification is written, and closing
        // the connection sends it before the end of the stream.
        client.sync().map_err(failure)?;
    }
    Ok(EXIT_OK)
}

/// One `nfy listen` line.
#[derive(Serialize)]
struct DeliveryLine<'a> {
    from: &'a str,
    to: &'a str,
    notification: &'a str,
    flags: u32,
    parameter: &'a RawValue,
}

/// One `nfy monitor` line.
#[derive(Serialize)]
struct ObservedLine<'a> {
    from: &'a str,
    to: &'a str,
    notification: &'a str,
    flags: u32,
}

/// Prints one line on stdout and flushes; a closed stdout ends the process.
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(i32::from(EXIT_OK));
    }
}

/// Counts printed lines against `--count`; true when this line may print.
struct Counter {
    printed: AtomicUsize,
    limit: Option<usize>,
    done: mpsc::SyncSender<()>,
}

impl Counter {
    fn take(&self) -> bool {
        let n = self.printed.fetch_add(1, Ordering::AcqRel) + 1;
        self.limit.is_none_or(|l| n <= l)
    }

    fn printed(&self) {
        if self
            .limit
            .is_some_and(|l| self.printed.load(Ordering::Acquire) >= l)
        {
            let _ = self.done.try_send(());
        }
    }
}

fn wait_forever_or_count(done: mpsc::Receiver<()>, limit: Option<usize>) -> Result<u8, Exit> {
    if limit == Some(0) {
        return Ok(EXIT_OK);
    }
    // Without --count nothing ever sends: this waits until interrupted.
    let _ = done.recv();
    if limit.is_none() {
        loop {
            std::thread::park();
        }
    }
    Ok(EXIT_OK)
}

fn listen(mut p: Parser, addr: impl FnOnce() -> Result<ServerAddr, Exit>) -> Result<u8, Exit> {
    let cmd = &LISTEN;
    let mut app: Option<String> = None;
    let mut priority = 0i32;
    let mut count: Option<usize> = None;
    let mut ids = Vec::new();
    while let Some(arg) = p.next().map_err(in_cmd(cmd))? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => return Err(command_help(cmd)),
            Arg::Long("as") => {
                let v = text(cmd, "--as", p.value().map_err(in_cmd(cmd))?)?;
                if v.is_empty() {
                    return Err(Exit::usage(cmd, "--as: the app ID must not be empty"));
                }
                app = Some(v);
            }
            Arg::Long("priority") => {
                priority = number(cmd, "--priority", p.value().map_err(in_cmd(cmd))?)?;
            }
            Arg::Long("count") => {
                count = Some(number(cmd, "--count", p.value().map_err(in_cmd(cmd))?)?);
            }
            Arg::Value(v) => ids.push(text(cmd, "argument", v)?),
            other => return Err(Exit::usage(cmd, other.unexpected().to_string())),
        }
    }
    let Some(app) = app else {
        return Err(Exit::usage(cmd, "--as APP is required"));
    };
    if ids.is_empty() {
        return Err(Exit::usage(cmd, "at least one NOTIFICATION is required"));
    }
    let addr = addr()?;
    let remote = maybe_remote(&addr);
    let client = connect(addr)?;
    client
        .set_app_id(&app)
        .map_err(|e| Exit::usage(cmd, e.to_string()))?;
    let (done_tx, done_rx) = mpsc::sync_channel(1);
    let counter = Arc::new(Counter {
        printed: AtomicUsize::new(0),
        limit: count,
        done: done_tx,
    });
    let mut registrations = Vec::with_capacity(ids.len());
    for id in &ids {
        let counter = Arc::clone(&counter);
        let reg = client.register(id, priority, move |d: &Delivery<'_>| {
            if !counter.take() {
                return;
            }
            let Ok(parameter) = serde_json::from_str::<&RawValue>(d.parameter) else {
                return;
            };
            let line = DeliveryLine {
                from: d.from,
                to: d.to,
                notification: d.notification,
                flags: d.flags,
                parameter,
            };
            if let Ok(text) = serde_json::to_string(&line) {
                print_line(&text);
            }
            counter.printed();
        });
        match reg {
            Ok(r) => registrations.push(r),
            Err(e @ Error::InvalidId(..)) => return Err(Exit::usage(cmd, e.to_string())),
            Err(e) => return Err(failure(e)),
        }
    }
    if !remote {
        client.sync().map_err(failure)?;
    }
    let what = format!("listening as {app} for {}", ids.join(", "));
    let _changes = tell_connection_changes(&client, what.clone());
    eprintln!("nfy: {what}");
    let code = wait_forever_or_count(done_rx, count);
    drop(registrations);
    code
}

fn monitor(mut p: Parser, addr: impl FnOnce() -> Result<ServerAddr, Exit>) -> Result<u8, Exit> {
    let cmd = &MONITOR;
    let mut count: Option<usize> = None;
    while let Some(arg) = p.next().map_err(in_cmd(cmd))? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => return Err(command_help(cmd)),
            Arg::Long("count") => {
                count = Some(number(cmd, "--count", p.value().map_err(in_cmd(cmd))?)?);
            }
            other => return Err(Exit::usage(cmd, other.unexpected().to_string())),
        }
    }
    let client = connect(addr()?)?;
    let (done_tx, done_rx) = mpsc::sync_channel(1);
    let counter = Counter {
        printed: AtomicUsize::new(0),
        limit: count,
        done: done_tx,
    };
    let handle = client
        .observe(move |o: &Observed<'_>| {
            if !counter.take() {
                return;
            }
            let line = ObservedLine {
                from: o.from,
                to: o.to,
                notification: o.notification,
                flags: o.flags,
            };
            if let Ok(text) = serde_json::to_string(&line) {
                print_line(&text);
            }
            counter.printed();
        })
        .map_err(failure)?;
    client.sync().map_err(failure)?;
    let _changes = tell_connection_changes(&client, "monitoring".into());
    eprintln!("nfy: monitoring");
    let code = wait_forever_or_count(done_rx, count);
    drop(handle);
    code
}

fn status(mut p: Parser, addr: impl FnOnce() -> Result<ServerAddr, Exit>) -> Result<u8, Exit> {
    let cmd = &STATUS;
    let mut json = false;
    while let Some(arg) = p.next().map_err(in_cmd(cmd))? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => return Err(command_help(cmd)),
            Arg::Long("json") => json = true,
            other => return Err(Exit::usage(cmd, other.unexpected().to_string())),
        }
    }
    let addr = addr()?;
    let report = server_report(&addr, STATUS_TIMEOUT).map_err(|e| match e {
        Error::Server => Exit::Fail(
            EXIT_FAILURE,
            format!("the notification server is not running (nothing at {addr})"),
        ),
        Error::Timeout => Exit::Fail(
            EXIT_FAILURE,
            format!("the server at {addr} did not answer the status request in time"),
        ),
        e => failure(e),
    })?;
    if json {
        let text = serde_json::to_string(&json_status(&report))
            .map_err(|e| Exit::Fail(EXIT_FAILURE, e.to_string()))?;
        print_line(&text);
    } else {
        print!("{}", human_status(&report));
    }
    Ok(EXIT_OK)
}

/// `#slot.generation`, as the server's logs write a connection.
fn conn_id(id: u32) -> String {
    format!("#{}.{}", id & 0xffff, id >> 16)
}

fn peer_text(c: &ConnectionReport, tls: bool) -> String {
    match c.peer {
        PeerAddr::Unix(cred) => format!("unix pid {} uid {} gid {}", cred.pid, cred.uid, cred.gid),
        PeerAddr::UnixUnknown => "unix (credentials unknown)".into(),
        PeerAddr::Tcp { ip, port } => {
            let ip = std::net::Ipv6Addr::from(ip);
            let addr = match ip.to_ipv4_mapped() {
                Some(v4) => std::net::SocketAddr::from((v4, port)),
                None => std::net::SocketAddr::from((ip, port)),
            };
            format!("{} {addr}", if tls { "tls" } else { "tcp" })
        }
        PeerAddr::Unknown => "unknown".into(),
    }
}

fn json_status(r: &ServerReport) -> serde_json::Value {
    let s = &r.status;
    let connections: Vec<serde_json::Value> = r
        .connections
        .iter()
        .map(|c| {
            let registered: Vec<serde_json::Value> = r
                .registrations_of(c.id)
                .into_iter()
                .map(|g| {
                    serde_json::json!({
                        "notification": g.notification.as_str(),
                        "to": g.to.as_str(),
                        "priority": g.priority,
                    })
                })
                .collect();
            let mut v = serde_json::json!({
                "id": conn_id(c.id),
                "remote": c.remote,
                "app_id": c.app_id.as_ref().map(|a| a.as_str()),
                "registrations": c.registrations,
                "registered": registered,
                "observer": c.observer,
            });
            match c.peer {
                PeerAddr::Unix(cred) => {
                    v["transport"] = "unix".into();
                    v["pid"] = cred.pid.into();
                    v["uid"] = cred.uid.into();
                    v["gid"] = cred.gid.into();
                }
                PeerAddr::UnixUnknown => v["transport"] = "unix".into(),
                PeerAddr::Tcp { .. } => {
                    let tls = r.tls_of(c.id);
                    v["transport"] = if tls.is_some() { "tls" } else { "tcp" }.into();
                    let text = peer_text(c, tls.is_some());
                    v["peer"] = text.split_once(' ').map_or("", |(_, a)| a).into();
                    if let Some(t) = tls {
                        v["tls_subject"] = t.subject.as_deref().into();
                    }
                }
                PeerAddr::Unknown => {}
            }
            v
        })
        .collect();
    serde_json::json!({
        "local_connections": s.local_connections,
        "remote_connections": s.remote_connections,
        "registrations": s.registrations,
        "remote_registrations": s.remote_registrations,
        "observers": s.observers,
        "delivered": s.delivered,
        "dropped": s.dropped,
        "unicast_errors": s.unicast_errors,
        "refused": r.protection.refused,
        "remote_refused": r.protection.remote_refused,
        "rate_limited": r.protection.rate_limited,
        "oversize": r.protection.oversize,
        "tls": r.tls_counters.map(|t| serde_json::json!({
            "accepted": t.accepted,
            "failed": t.failed,
            "timed_out": t.timed_out,
            "over_limit": t.over_limit,
        })),
        "connections": connections,
    })
}

fn human_status(r: &ServerReport) -> String {
    let s = &r.status;
    let g = &r.protection;
    let mut text = format!(
        "connections:     {} local, {} remote\n\
         registrations:   {} ({} remote)\n\
         observers:       {}\n\
         delivered:       {}\n\
         dropped:         {}\n\
         unicast errors:  {}\n\
         refused:         {} connections ({} remote)\n\
         rate limited:    {} frames\n\
         oversize:        {} frames\n",
        s.local_connections,
        s.remote_connections,
        s.registrations,
        s.remote_registrations,
        s.observers,
        s.delivered,
        s.dropped,
        s.unicast_errors,
        g.refused,
        g.remote_refused,
        g.rate_limited,
        g.oversize,
    );
    if let Some(t) = &r.tls_counters {
        text.push_str(&format!(
            "tls handshakes:  {} completed, {} failed, {} timed out, {} over the bound\n",
            t.accepted, t.failed, t.timed_out, t.over_limit
        ));
    }
    text.push_str(&format!(
        "\n{:<8} {:<36} {:<16} {:>5}\n",
        "ID", "PEER", "APP", "REGS"
    ));
    for c in &r.connections {
        let tls = r.tls_of(c.id);
        let mut peer = peer_text(c, tls.is_some());
        if c.remote {
            peer.push_str(" (remote)");
        }
        let app = c.app_id.as_ref().map_or("-", |a| a.as_str());
        text.push_str(&format!(
            "{:<8} {:<36} {:<16} {:>5}{}\n",
            conn_id(c.id),
            peer,
            app,
            c.registrations,
            if c.observer { "  observer" } else { "" }
        ));
        if let Some(t) = tls {
            let subject = t.subject.as_deref().unwrap_or("(no client certificate)");
            text.push_str(&format!("         tls: {subject}\n"));
        }
        for reg in r.registrations_of(c.id) {
            text.push_str(&format!(
                "         {} for {} (priority {})\n",
                reg.notification.as_str(),
                reg.to.as_str(),
                reg.priority
            ));
        }
    }
    text
}
