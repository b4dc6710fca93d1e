//! Scale: T terminals (a `notifysvc` and an `nfy-bridge` each) through
//! one mosquitto, a stream of unicasts between random pairs of apps:
//! end-to-end latency (app on one terminal to app on another) p50/p99 and
//! throughput, against the floor measured in the same run: two plain MQTT
//! clients (rumqttc, QoS 1) exchanging the same payloads through the same
//! mosquitto with the same window.
//!
//! ```sh
//! cargo bench -p nfy-bridge --bench fleet              # 20 terminals, 20,000 unicasts
//! cargo bench -p nfy-bridge --bench fleet -- --quick   # 2,000
//! ```
//!
//! `NFY_BRIDGE_BENCH_TERMINALS`, `NFY_BRIDGE_BENCH_N` and
//! `NFY_BRIDGE_BENCH_WINDOW` (unicasts in flight, default 256) override.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rumqttc::{Client as MqttClient, Event, Incoming, MqttOptions, QoS};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// splitmix64, for reproducible pairs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

struct Stats {
    lat_us: Vec<u64>,
    elapsed: Duration,
}

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.lat_us.clone();
        v.sort_unstable();
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i] as f64 / 1000.0
    }

    fn rate(&self) -> f64 {
        self.lat_us.len() as f64 / self.elapsed.as_secs_f64()
    }
}

fn fleet(
    broker: &Mosquitto,
    dir: &std::path::Path,
    terminals: usize,
    n: u64,
    window: u64,
) -> (Stats, u64) {
    let url = broker.url();
    let mut servers = Vec::new();
    let mut bridges = Vec::new();
    for t in 0..terminals {
        let s = Server::start(dir, &format!("srv-{t}"));
        let b = Bridge::start(
            dir,
            &format!("T{t}"),
            &s,
            &url,
            "out * *@* *\nin *@* * *\nexport app ping\n",
            &["--keep-alive", "30"],
        );
        servers.push(s);
        bridges.push(b);
    }
    let epoch = Instant::now();
    let lat = Arc::new(Mutex::new(Vec::with_capacity(n as usize)));
    let received = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    let mut regs = Vec::new();
    let mut handles = Vec::new();
    for s in &servers {
        let c = s.client("app");
        let (l, r) = (Arc::clone(&lat), Arc::clone(&received));
        regs.push(
            c.register("ping", 0, move |d| {
                let now = epoch.elapsed().as_micros() as u64;
                let t = d.parameter_json()["t"].as_u64().unwrap_or(now);
                l.lock().unwrap().push(now.saturating_sub(t));
                r.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap(),
        );
        let e = Arc::clone(&errors);
        handles.push(c.on_unicast_error(move |_| {
            e.fetch_add(1, Ordering::Relaxed);
        }));
        clients.push(c);
    }
    // Every bridge registers the other terminals' app.
    let want = terminals as u32; // its own app + (terminals - 1) proxies
    let deadline = Instant::now() + Duration::from_secs(120);
    for c in &clients {
        while c.status().map(|s| s.registrations).unwrap_or(0) < want {
            assert!(Instant::now() < deadline, "proxies not registered in time");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let mut rng = Rng(20261206);
    let started = Instant::now();
    for i in 0..n {
        while i - (received.load(Ordering::Relaxed) + errors.load(Ordering::Relaxed)) >= window {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
        let src = (rng.next() % terminals as u64) as usize;
        let mut dst = (rng.next() % (terminals as u64 - 1)) as usize;
        if dst >= src {
            dst += 1;
        }
        let t = epoch.elapsed().as_micros() as u64;
        clients[src]
            .notify_raw(
                &format!("app@T{dst}"),
                "ping",
                &format!(
                    "{{\"t\":{t},\"i\":{i},\"pad\":\"0123456789012345678901234567890123456789\"}}"
                ),
            )
            .unwrap();
    }
    while received.load(Ordering::Relaxed) + errors.load(Ordering::Relaxed) < n {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "stream did not finish"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = started.elapsed();
    let lat_us = std::mem::take(&mut *lat.lock().unwrap());
    drop(handles);
    drop(regs);
    for c in clients {
        c.close();
    }
    drop(bridges);
    drop(servers);
    (Stats { lat_us, elapsed }, errors.load(Ordering::Relaxed))
}

/// Two plain MQTT clients through the same broker: QoS 1 publishes from
/// one, received by the other, same window and payload size.
fn floor(broker: &Mosquitto, n: u64, window: u64) -> Stats {
    let epoch = Instant::now();
    let mut o = MqttOptions::new("floor-rx", "127.0.0.1", broker.port);
    o.set_keep_alive(Duration::from_secs(30)).set_inflight(256);
    let (rx_client, mut rx_conn) = MqttClient::new(o, 1024);
    rx_client.subscribe("floor/#", QoS::AtLeastOnce).unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::with_capacity(n as usize)));
    let (r, l) = (Arc::clone(&received), Arc::clone(&lat));
    let (sub_tx, sub_rx) = std::sync::mpsc::channel();
    let rx_thread = std::thread::spawn(move || {
        for ev in rx_conn.iter() {
            match ev {
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    let _ = sub_tx.send(());
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    let now = epoch.elapsed().as_micros() as u64;
                    let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                    let t = v["parameter"]["t"].as_u64().unwrap_or(now);
                    l.lock().unwrap().push(now.saturating_sub(t));
                    if r.fetch_add(1, Ordering::Relaxed) + 1 == n {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("floor receiver: {e}"),
            }
        }
    });
    sub_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let mut o = MqttOptions::new("floor-tx", "127.0.0.1", broker.port);
    o.set_keep_alive(Duration::from_secs(30)).set_inflight(256);
    let (tx_client, mut tx_conn) = MqttClient::new(o, 1024);
    let tx_thread = std::thread::spawn(move || {
        for ev in tx_conn.iter() {
            if ev.is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    for i in 0..n {
        while i - received.load(Ordering::Relaxed) >= window {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
        let t = epoch.elapsed().as_micros() as u64;
        let payload = format!(
            "{{\"terminal\":\"T0\",\"id\":{i},\"from\":\"app\",\"to\":\"app\",\"notification\":\"ping\",\"flags\":0,\
             \"parameter\":{{\"t\":{t},\"i\":{i},\"pad\":\"0123456789012345678901234567890123456789\"}}}}"
        );
        tx_client
            .publish("floor/T1/app/ping", QoS::AtLeastOnce, false, payload)
            .unwrap();
    }
    rx_thread.join().unwrap();
    let elapsed = started.elapsed();
    let _ = tx_client.disconnect();
    let _ = rx_client.disconnect();
    let _ = tx_thread.join();
    let lat_us = std::mem::take(&mut *lat.lock().unwrap());
    Stats { lat_us, elapsed }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    if !have_mosquitto("bench fleet") {
        return;
    }
    let terminals = env("NFY_BRIDGE_BENCH_TERMINALS", 20) as usize;
    let n = env("NFY_BRIDGE_BENCH_N", if quick { 2_000 } else { 20_000 });
    let window = env("NFY_BRIDGE_BENCH_WINDOW", 256);
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let floor = floor(&broker, n, window);
    let (fleet, errors) = fleet(&broker, dir.path(), terminals, n, window);
    println!(
        "fleet bench: {terminals} terminals, {n} unicasts between random pairs, window {window}, one mosquitto"
    );
    println!("| figure | floor (MQTT client to client, QoS 1) | nfy app to app through two servers and two bridges |");
    println!("|---|---|---|");
    println!(
        "| latency p50 | {:.2} ms | {:.2} ms ({:.1}x) |",
        floor.pct(0.5),
        fleet.pct(0.5),
        fleet.pct(0.5) / floor.pct(0.5)
    );
    println!(
        "| latency p99 | {:.2} ms | {:.2} ms ({:.1}x) |",
        floor.pct(0.99),
        fleet.pct(0.99),
        fleet.pct(0.99) / floor.pct(0.99)
    );
    println!(
        "| throughput | {:.0} /s | {:.0} /s ({:.2}x) |",
        floor.rate(),
        fleet.rate(),
        fleet.rate() / floor.rate()
    );
    println!("| unicast errors | 0 | {errors} |");
}
