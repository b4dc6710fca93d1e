//! `nfy`: the notification service from the command line.
//!
//! ```text
//! nfy [--socket PATH] [--port PORT] COMMAND [ARGS]
//!   send [--from APP] [--flags N] [--wait-error MS] TO NOTIFICATION [JSON]
//!   listen --as APP [--priority N] [--count N] NOTIFICATION...
//!   monitor [--count N]
//!   status [--json]
//! ```
//!
//! Exit status: 0 success; 1 the server is not running (or another runtime
//! failure); 2 `send --wait-error` received a unicast error; 64 usage error.
//! Argument parsing is hand-rolled (no dependency); every command has
//! `--help`.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use nfy_core::msg::{ConnectionReport, PeerAddr};
use nfy_linux::client::{
    conn::STATUS_TIMEOUT, server_report, Client, Delivery, Error, NotifyOptions, Observed,
    ServerAddr, ServerReport,
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

Usage: nfy [--socket PATH] [--port PORT] COMMAND [ARGS]

Commands:
  send      send one notification
  listen    print the notifications an app receives, one JSON line each
  monitor   print every delivery the server makes (observer), one JSON line each
  status    print what the server knows (connections, registrations, counters)

Global options:
  --socket PATH  Unix socket of the server (default: $NFY_SOCKET, else
                 $XDG_RUNTIME_DIR/nfy/notify.sock, else /tmp/nfy-<uid>/notify.sock)
  --port PORT    TCP port on 127.0.0.1, tried when the socket fails
                 (default: $NFY_PORT, else 5899)
  -h, --help     this help;  nfy COMMAND --help for a command's
  -V, --version  version

Exit status: 0 ok, 1 server not running or other failure,
2 unicast error (send --wait-error), 64 usage error.
";

const SEND_USAGE: &str = "\
Usage: nfy send [--from APP] [--flags N] [--wait-error MS] TO NOTIFICATION [JSON]

Sends NOTIFICATION to TO: an app ID, \"1\" (the one best-priority receiver)
or \"*\" (every receiver). JSON is the parameter (default {}).

Options:
  --from APP         source app ID (default: nfy)
  --flags N          32-bit flags, decimal or 0x-hex (default 0)
  --wait-error MS    wait up to MS milliseconds for a unicast error (nobody
                     received it); exit 2 and report it if one comes
  -h, --help         this help
";

const LISTEN_USAGE: &str = "\
Usage: nfy listen --as APP [--priority N] [--count N] NOTIFICATION...

Registers each NOTIFICATION as app APP and prints one JSON line per
delivery on stdout: {\"from\",\"to\",\"notification\",\"flags\",\"parameter\"}.
Prints \"nfy: listening ...\" on stderr once the registrations are in force.
Runs until interrupted (reconnecting when the server restarts).

Options:
  --as APP        receiver app ID (required)
  --priority N    registration priority (default 0; larger wins for \"1\")
  --count N       exit after N deliveries
  -h, --help      this help
";

const MONITOR_USAGE: &str = "\
Usage: nfy monitor [--count N]

Observes the server: one JSON line per delivery on stdout,
{\"from\",\"to\",\"notification\",\"flags\"}; \"to\" is the resolved receiver,
empty when nobody received the notification. Never the parameter.
Prints \"nfy: monitoring\" on stderr once observing.

Options:
  --count N     exit after N lines
  -h, --help    this help
";

const STATUS_USAGE: &str = "\
Usage: nfy status [--json]

Prints the server's counters, then one line per open connection: its id
(as the server logs it), where it comes from (Unix socket with the
process's pid, uid and gid; TCP with the address, `remote` when not
loopback), its app ID (from hello), its registrations, and whether it
observes. This command's own connection is listed too.

Counters: refused connections (of those remote: the remote connection
limit), frames dropped by the remote rate limit, oversize frames skipped.

Options:
  --json        one JSON object instead of text
  -h, --help    this help
";

/// A command-line problem: message for stderr, exit status.
struct Exit(u8, String);

impl Exit {
    fn usage(msg: impl Into<String>, usage: &str) -> Exit {
        Exit(EXIT_USAGE, format!("nfy: {}\n\n{usage}", msg.into()))
    }
}

/// Command-line words, consumed from the front.
struct Args {
    words: std::vec::IntoIter<String>,
    usage: &'static str,
}

impl Args {
    fn next(&mut self) -> Option<String> {
        self.words.next()
    }

    fn value(&mut self, option: &str) -> Result<String, Exit> {
        self.words
            .next()
            .ok_or_else(|| Exit::usage(format!("{option} needs a value"), self.usage))
    }

    fn number<T: std::str::FromStr>(&mut self, option: &str) -> Result<T, Exit> {
        let v = self.value(option)?;
        v.parse()
            .map_err(|_| Exit::usage(format!("{option}: {v:?} is not a valid number"), self.usage))
    }
}

fn main() -> ExitCode {
    match run(std::env::args_os().skip(1).collect()) {
        Ok(code) => ExitCode::from(code),
        Err(Exit(code, msg)) => {
            eprintln!("{}", msg.trim_end());
            ExitCode::from(code)
        }
    }
}

fn run(raw: Vec<OsString>) -> Result<u8, Exit> {
    let mut words = Vec::with_capacity(raw.len());
    for w in raw {
        match w.into_string() {
            Ok(s) => words.push(s),
            Err(w) => return Err(Exit::usage(format!("argument {w:?} is not UTF-8"), USAGE)),
        }
    }
    let mut args = Args {
        words: words.into_iter(),
        usage: USAGE,
    };
    let mut socket: Option<PathBuf> = None;
    let mut port: Option<u16> = None;
    let command = loop {
        match args.next().as_deref() {
            None => return Err(Exit::usage("no command given", USAGE)),
            Some("-h" | "--help" | "help") => {
                print!("{USAGE}");
                return Ok(EXIT_OK);
            }
            Some("-V" | "--version") => {
                println!("nfy {}", env!("CARGO_PKG_VERSION"));
                return Ok(EXIT_OK);
            }
            Some("--socket") => socket = Some(PathBuf::from(args.value("--socket")?)),
            Some("--port") => port = Some(args.number("--port")?),
            Some(c) if c.starts_with('-') => {
                return Err(Exit::usage(format!("unknown option {c}"), USAGE))
            }
            Some(c) => break c.to_owned(),
        }
    };
    let addr = move || -> Result<ServerAddr, Exit> {
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
        .map_err(|e| Exit(EXIT_FAILURE, format!("nfy: {e}")))?;
        if let Some(s) = socket {
            addr.unix = Some(s);
        }
        if let Some(p) = port {
            addr.tcp = Some(ServerAddr::loopback(p));
        }
        Ok(addr)
    };
    match command.as_str() {
        "send" => send(args, addr),
        "listen" => listen(args, addr),
        "monitor" => monitor(args, addr),
        "status" => status(args, addr),
        other => Err(Exit::usage(format!("unknown command {other:?}"), USAGE)),
    }
}

fn connect(addr: ServerAddr) -> Result<Client, Exit> {
    Client::connect_to(addr.clone()).map_err(|e| match e {
        Error::Server => Exit(
            EXIT_FAILURE,
            format!("nfy: the notification server is not running (nothing at {addr})"),
        ),
        e => Exit(EXIT_FAILURE, format!("nfy: {e}")),
    })
}

fn failure(e: Error) -> Exit {
    match e {
        Error::Server => Exit(
            EXIT_FAILURE,
            "nfy: the notification server is not running (connection lost)".into(),
        ),
        e => Exit(EXIT_FAILURE, format!("nfy: {e}")),
    }
}

fn parse_flags(v: &str) -> Option<u32> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn send(mut args: Args, addr: impl FnOnce() -> Result<ServerAddr, Exit>) -> Result<u8, Exit> {
    args.usage = SEND_USAGE;
    let mut from = DEFAULT_FROM.to_owned();
    let mut flags = 0u32;
    let mut wait_error: Option<u64> = None;
    let mut positional = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => {
                print!("{SEND_USAGE}");
                return Ok(EXIT_OK);
            }
            "--from" => from = args.value("--from")?,
            "--flags" => {
                let v = args.value("--flags")?;
                flags = parse_flags(&v).ok_or_else(|| {
                    Exit::usage(format!("--flags: {v:?} is not a 32-bit number"), SEND_USAGE)
                })?;
            }
            "--wait-error" => wait_error = Some(args.number("--wait-error")?),
            "--" => positional.extend(args.words.by_ref()),
            o if o.starts_with("--") => {
                return Err(Exit::usage(format!("unknown option {o}"), SEND_USAGE))
            }
            _ => positional.push(a),
        }
    }
    let (to, notification, json) = match positional.as_slice() {
        [to, n] => (to.clone(), n.clone(), "{}".to_owned()),
        [to, n, j] => (to.clone(), n.clone(), j.clone()),
        _ => return Err(Exit::usage("send needs TO NOTIFICATION [JSON]", SEND_USAGE)),
    };
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
        return Err(Exit::usage(format!("JSON parameter: {e}"), SEND_USAGE));
    }
    let client = connect(addr()?)?;
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
            return Err(Exit::usage(e.to_string(), SEND_USAGE))
        }
        Err(e) => return Err(failure(e)),
    }
    if let Some(ms) = wait_error {
        if let Ok((to, n)) = rx.recv_timeout(Duration::from_millis(ms)) {
            eprintln!("nfy: unicast error: nobody received {n:?} sent to {to:?}");
            return Ok(EXIT_UNICAST_ERROR);
        }
    } else {
        // Make sure the server has read the notification before the
        // connection closes (it would anyway; this also reports a server
        // that vanished meanwhile).
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

fn listen(mut args: Args, addr: impl FnOnce() -> Result<ServerAddr, Exit>) -> Result<u8, Exit> {
    args.usage = LISTEN_USAGE;
    let mut app: Option<String> = None;
    let mut priority = 0i32;
    let mut count: Option<usize> = None;
    let mut ids = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => {
                print!("{LISTEN_USAGE}");
                return Ok(EXIT_OK);
            }
            "--as" => app = Some(args.value("--as")?),
            "--priority" => priority = args.number("--priority")?,
            "--count" => count = Some(args.number("--count")?),
            "--" => ids.extend(args.words.by_ref()),
            o if o.starts_with("--") => {
                return Err(Exit::usage(format!("unknown option {o}"), LISTEN_USAGE))
            }
            _ => ids.push(a),
        }
    }
    let Some(app) = app else {
        return Err(Exit::usage("listen needs --as APP", LISTEN_USAGE));
    };
    if ids.is_empty() {
        return Err(Exit::usage(
            "listen needs at least one NOTIFICATION",
            LISTEN_USAGE,
        ));
    }
    let client = connect(addr()?)?;
    client
        .set_app_id(&app)
        .map_err(|e| Exit::usage(e.to_string(), LISTEN_USAGE))?;
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
            Err(e @ Error::InvalidId(..)) => return Err(Exit::usage(e.to_string(), LISTEN_USAGE)),
            Err(e) => return Err(failure(e)),
        }
    }
    client.sync().map_err(failure)?;
    eprintln!("nfy: listening as {app} for {}", ids.join(", "));
    let code = wait_forever_or_count(done_rx, count);
    drop(registrations);
    code
}

fn monitor(mut args: Args, addr: impl FnOnce() -> Result<ServerAddr, Exit>) -> Result<u8, Exit> {
    args.usage = MONITOR_USAGE;
    let mut count: Option<usize> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => {
                print!("{MONITOR_USAGE}");
                return Ok(EXIT_OK);
            }
            "--count" => count = Some(args.number("--count")?),
            o => {
                return Err(Exit::usage(
                    format!("unexpected argument {o}"),
                    MONITOR_USAGE,
                ))
            }
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
    eprintln!("nfy: monitoring");
    let code = wait_forever_or_count(done_rx, count);
    drop(handle);
    code
}

fn status(mut args: Args, addr: impl FnOnce() -> Result<ServerAddr, Exit>) -> Result<u8, Exit> {
    args.usage = STATUS_USAGE;
    let mut json = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => {
                print!("{STATUS_USAGE}");
                return Ok(EXIT_OK);
            }
            "--json" => json = true,
            o => {
                return Err(Exit::usage(
                    format!("unexpected argument {o}"),
                    STATUS_USAGE,
                ))
            }
        }
    }
    let addr = addr()?;
    let report = server_report(&addr, STATUS_TIMEOUT).map_err(|e| match e {
        Error::Server => Exit(
            EXIT_FAILURE,
            format!("nfy: the notification server is not running (nothing at {addr})"),
        ),
        Error::Timeout => Exit(
            EXIT_FAILURE,
            format!("nfy: the server at {addr} did not answer the status request in time"),
        ),
        e => Exit(EXIT_FAILURE, format!("nfy: {e}")),
    })?;
    if json {
        let text = serde_json::to_string(&json_status(&report))
            .map_err(|e| Exit(EXIT_FAILURE, format!("nfy: {e}")))?;
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

fn peer_text(c: &ConnectionReport) -> String {
    match c.peer {
        PeerAddr::Unix(cred) => format!("unix pid {} uid {} gid {}", cred.pid, cred.uid, cred.gid),
        PeerAddr::UnixUnknown => "unix (credentials unknown)".into(),
        PeerAddr::Tcp { ip, port } => {
            let ip = std::net::Ipv6Addr::from(ip);
            let addr = match ip.to_ipv4_mapped() {
                Some(v4) => std::net::SocketAddr::from((v4, port)),
                None => std::net::SocketAddr::from((ip, port)),
            };
            format!("tcp {addr}")
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
            let mut v = serde_json::json!({
                "id": conn_id(c.id),
                "remote": c.remote,
                "app_id": c.app_id.as_ref().map(|a| a.as_str()),
                "registrations": c.registrations,
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
                    v["transport"] = "tcp".into();
                    v["peer"] = peer_text(c).trim_start_matches("tcp ").into();
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
        "refused": r.guard.refused,
        "remote_refused": r.guard.remote_refused,
        "rate_limited": r.guard.rate_limited,
        "oversize": r.guard.oversize,
        "connections": connections,
    })
}

fn human_status(r: &ServerReport) -> String {
    let s = &r.status;
    let g = &r.guard;
    let mut text = format!(
        "connections:     {} local, {} remote\n\
         registrations:   {} ({} remote)\n\
         observers:       {}\n\
         delivered:       {}\n\
         dropped:         {}\n\
         unicast errors:  {}\n\
         refused:         {} connections ({} remote)\n\
         rate limited:    {} frames\n\
         oversize:        {} frames\n\
         \n\
         {:<8} {:<36} {:<16} {:>5}\n",
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
        "ID",
        "PEER",
        "APP",
        "REGS"
    );
    for c in &r.connections {
        let mut peer = peer_text(c);
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
    }
    text
}
