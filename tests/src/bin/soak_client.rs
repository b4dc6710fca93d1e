//! One client process of the soak test (`tests/soak.rs`, `cargo xtask
//! soak`), built against `nfy-linux` and using its public `Client` only.
//!
//! `soak_client SLOT GEN CLIENTS SEED INTERVAL_MS LOG (unix PATH | tcp ADDR)`
//!
//! It connects (retrying for a while: it may be started while the server
//! restarts), takes app ID `soak-SLOT`, registers `soak.uni` (unicasts to
//! it), `soak.one` (`"1"`) and `soak.all` (broadcasts) and a unicast-error
//! callback, round-trips the server, then sends a notification every
//! 0..2×INTERVAL_MS: a unicast to a random other slot, a `"1"` or a
//! broadcast, each with parameter `{"i": "<SLOT>.<GEN>", "s": <seq>}`.
//!
//! Everything it does is appended to LOG, one line per event, each line one
//! `write` (so a SIGKILL leaves whole lines), times in microseconds since
//! the Unix epoch:
//!
//! - `REG t` — registrations in force (after a round trip);
//! - `S t seq kind to code` — a send (`kind` `U`, `O` or `B`; `code` 0 or
//!   the error's result code);
//! - `R t inst seq to` — a delivery, written when the callback completes;
//! - `E t inst seq` — a unicast error for one of its sends;
//! - `Y t` — a round trip after a `sync` command succeeded;
//! - `D dropped panics` and `END t` — at a clean exit.
//!
//! Commands on stdin, one per line, each answered on stdout once done:
//! `sync` (round trip until it succeeds → `synced`), `stop` (stop sending,
//! round trip → `stopped`), `exit`. It prints `ready` once registered.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nfy_linux::client::{Client, Delivery, ServerAddr};
use nfy_tests::rng::Rng;
use serde_json::json;

/// Microseconds since the Unix epoch (comparable across processes).
fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// The event log: one `write` per line.
struct Log(File);

impl Log {
    fn line(&self, text: &str) {
        let mut f = &self.0;
        let _ = f.write_all(format!("{text}\n").as_bytes());
    }
}

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Logs a delivery (`R`) or a unicast error (`E`) of a soak notification.
fn record(log: &Log, tag: &str, d: &Delivery<'_>) {
    let p = d.parameter_json();
    let inst = p["i"].as_str().unwrap_or("?");
    let seq = p["s"].as_u64().unwrap_or(0);
    if tag == "R" {
        log.line(&format!("R {} {inst} {seq} {}", now_us(), d.to));
    } else {
        log.line(&format!("E {} {inst} {seq}", now_us()));
    }
}

/// Round-trips the server until it answers (it may be restarting).
fn sync_until_ok(client: &Client) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client.sync().is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

struct Args {
    slot: u64,
    generation: u64,
    clients: u64,
    seed: u64,
    interval_ms: u64,
    log: PathBuf,
    addr: ServerAddr,
}

fn parse_args() -> Option<Args> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [slot, generation, clients, seed, interval_ms, log, kind, where_] = a.as_slice() else {
        return None;
    };
    let addr = match kind.as_str() {
        "unix" => ServerAddr {
            unix: Some(PathBuf::from(where_)),
            tcp: None,
            tls: None,
        },
        "tcp" => ServerAddr {
            unix: None,
            tcp: Some(where_.parse::<SocketAddr>().ok()?),
            tls: None,
        },
        _ => return None,
    };
    Some(Args {
        slot: slot.parse().ok()?,
        generation: generation.parse().ok()?,
        clients: clients.parse().ok()?,
        seed: seed.parse().ok()?,
        interval_ms: interval_ms.parse().ok()?,
        log: PathBuf::from(log),
        addr,
    })
}

fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        eprintln!(
            "usage: soak_client SLOT GEN CLIENTS SEED INTERVAL_MS LOG (unix PATH | tcp ADDR)"
        );
        return ExitCode::from(2);
    };
    let Ok(file) = OpenOptions::new().create(true).append(true).open(&args.log) else {
        eprintln!("cannot open {}", args.log.display());
        return ExitCode::from(2);
    };
    let log = Arc::new(Log(file));
    let inst = format!("{}.{}", args.slot, args.generation);
    let mut rng = Rng(args.seed ^ (args.slot << 32) ^ args.generation.wrapping_mul(0x1_0001));

    let deadline = Instant::now() + Duration::from_secs(60);
    let client = loop {
        match Client::connect_to(args.addr.clone()) {
            Ok(c) => break c,
            Err(e) if Instant::now() >= deadline => {
                eprintln!("soak client {inst}: cannot connect: {e}");
                return ExitCode::FAILURE;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let me = format!("soak-{}", args.slot);
    if client.set_app_id(&me).is_err() {
        return ExitCode::FAILURE;
    }
    let l = Arc::clone(&log);
    let _errors = client.on_unicast_error(move |d| record(&l, "E", d));
    let mut regs = Vec::new();
    for (notification, priority) in [
        ("soak.uni", 0),
        ("soak.one", i32::try_from(rng.below(3)).unwrap_or(0)),
        ("soak.all", 0),
    ] {
        let l = Arc::clone(&log);
        loop {
            let l = Arc::clone(&l);
            match client.register(notification, priority, move |d| record(&l, "R", d)) {
                Ok(r) => {
                    regs.push(r);
                    break;
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    eprintln!("soak client {inst}: cannot register: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    if !sync_until_ok(&client) {
        return ExitCode::FAILURE;
    }
    log.line(&format!("REG {}", now_us()));
    say("ready");

    let (tx, commands) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line.trim().to_owned()).is_err() {
                break;
            }
        }
        let _ = tx.send("exit".to_owned());
    });

    let mut sending = true;
    let mut seq = 0u64;
    loop {
        let command = if sending {
            let pause = rng.below(2 * args.interval_ms + 1);
            match commands.recv_timeout(Duration::from_millis(pause)) {
                Ok(c) => Some(c),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => Some("exit".to_owned()),
            }
        } else {
            Some(commands.recv().unwrap_or_else(|_| "exit".to_owned()))
        };
        match command.as_deref() {
            Some("exit") => break,
            Some("sync") => {
                if sync_until_ok(&client) {
                    log.line(&format!("Y {}", now_us()));
                }
                say("synced");
            }
            Some("stop") => {
                sending = false;
                sync_until_ok(&client);
                say("stopped");
            }
            Some(_) => {}
            None => {
                seq += 1;
                let roll = rng.below(100);
                let (kind, to, notification) = if roll < 45 {
                    let mut other = rng.below(args.clients.max(2) - 1);
                    if other >= args.slot {
                        other += 1;
                    }
                    ("U", format!("soak-{other}"), "soak.uni")
                } else if roll < 90 {
                    ("O", "1".to_owned(), "soak.one")
                } else {
                    ("B", "*".to_owned(), "soak.all")
                };
                let code = match client.notify(&to, notification, &json!({"i": inst, "s": seq})) {
                    Ok(()) => 0,
                    Err(e) => e.result().code(),
                };
                log.line(&format!("S {} {seq} {kind} {to} {code}", now_us()));
            }
        }
    }
    log.line(&format!(
        "D {} {}",
        client.dropped_deliveries(),
        client.callback_panics()
    ));
    drop(regs);
    client.close();
    log.line(&format!("END {}", now_us()));
    ExitCode::SUCCESS
}
