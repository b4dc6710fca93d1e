//! Local round trips while TLS peers stall mid-handshake (issue 16): the
//! same `notifysvc`, the same local client, round trips measured in
//! alternating phases without and with 100 connections to the TLS port
//! that never finish their handshake (half send nothing, half the start of
//! a ClientHello). Handshakes are driven by readiness inside the event
//! loop, so the stalled ones should cost the local client nothing beyond
//! the noise, which the repeated calm phases show.
//!
//! ```sh
//! cargo bench -p nfy-linux --bench tls_stall            # 4 phases of 5,000 round trips
//! cargo bench -p nfy-linux --bench tls_stall -- 20000   # round trips per phase
//! ```
//!
//! The server runs with its defaults (`--tls-max-handshakes 32`: of the
//! 100 stalled connections 32 are handshakes in progress, the others are
//! closed at once and counted). `$NFY_BENCH_NOTIFYSVC` names another
//! server binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nfy_test_support::tls::Pki;
use nfy_test_support::wire::JsonClient;
use serde_json::json;

const STALLED: usize = 100;
const WARM_UP: usize = 500;
const WAIT: Duration = Duration::from_secs(20);

/// The start of a TLS 1.2-style ClientHello record (header announcing 512
/// bytes, handshake type 1): the server's TLS state waits for the rest.
const HALF_HELLO: [u8; 11] = [
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
];

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // Stopped by its PID: SIGTERM, then reaped.
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `n` round trips of the local client to itself through the server.
fn round_trips(c: &mut JsonClient, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        c.notify("local", "local", "ping", 0, json!({ "i": i }))
            .unwrap();
        c.recv_type("notify", WAIT)
            .unwrap()
            .expect("a round trip hung");
        out.push(t.elapsed());
    }
    out.sort();
    out
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5_000);
    let exe = std::env::var_os("NFY_BENCH_NOTIFYSVC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_notifysvc")));
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), &["127.0.0.1"], "bench");
    let socket = dir.path().join("notify.sock");
    let config = dir.path().join("empty.cfg");
    std::fs::write(&config, "").unwrap();
    let tls_port = free_port();
    let _server = Server(
        Command::new(&exe)
            .args(["--port", "0", "--socket"])
            .arg(&socket)
            .args(["--tls-port", &tls_port.to_string(), "--tls-cert"])
            .arg(&pki.server.cert)
            .arg("--tls-key")
            .arg(&pki.server.key)
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let mut local = loop {
        if let Ok(c) = JsonClient::unix(&socket) {
            if TcpStream::connect(("127.0.0.1", tls_port)).is_ok() {
                break c;
            }
        }
        assert!(start.elapsed() < WAIT, "{} did not start", exe.display());
        std::thread::sleep(Duration::from_millis(20));
    };
    local.register("local", "ping", 0).unwrap();
    local.barrier("local");
    round_trips(&mut local, WARM_UP);

    let tls: SocketAddr = ([127, 0, 0, 1], tls_port).into();
    println!(
        "tls_stall: {n} local round trips (JSON, Unix socket) per phase; stalled: {STALLED} connections to the TLS port"
    );
    println!("phase        p50 µs   p90 µs   p99 µs");
    let mut calm_p50 = Vec::new();
    let mut stalled_p50 = Vec::new();
    for round in 0..2 {
        let calm = round_trips(&mut local, n);
        let stalled: Vec<TcpStream> = (0..STALLED)
            .map(|i| {
                let mut s = TcpStream::connect(tls).unwrap();
                if i % 2 == 0 {
                    // Refused at once when over the bound: that is fine.
                    let _ = s.write_all(&HALF_HELLO);
                }
                s
            })
            .collect();
        let during = round_trips(&mut local, n);
        drop(stalled);
        for (name, d) in [("calm", &calm), ("stalled", &during)] {
            println!(
                "{name:<8} {round}  {:8.1} {:8.1} {:8.1}",
                percentile(d, 0.5).as_secs_f64() * 1e6,
                percentile(d, 0.9).as_secs_f64() * 1e6,
                percentile(d, 0.99).as_secs_f64() * 1e6,
            );
        }
        calm_p50.push(percentile(&calm, 0.5).as_secs_f64());
        stalled_p50.push(percentile(&during, 0.5).as_secs_f64());
    }
    let noise = calm_p50[1] / calm_p50[0];
    let ratios: Vec<f64> = stalled_p50
        .iter()
        .zip(&calm_p50)
        .map(|(s, c)| s / c)
        .collect();
    println!(
        "stalled / calm p50: {:.2}x, {:.2}x; calm / calm (the noise): {noise:.2}x",
        ratios[0], ratios[1]
    );
}
