//! Network fuzzing (issue 7): a seeded, reproducible fuzzer sends random
//! and mutated frames at a live `notifysvc`, alternating between the Unix
//! socket and TCP, while two well-behaved clients (one on each transport)
//! exchange a known number of unicasts. Afterwards the well-behaved clients
//! must have received every notification, in order; the server must still
//! be running, answer round trips from new Unix and TCP connections and a
//! status request from the client library, never have
//! logged a panic, and its peak RSS (`VmHWM`) must stay under a bound
//! computed from the profile: the RSS at start plus, for every connection
//! the profile allows, its frame buffer (the largest frame plus slack,
//! allocated when the connection is accepted) and [`PER_CONNECTION_KB`].
//! The fuzzer replaces its connection thousands of times; the server
//! accepts every pending connection before it handles the hang-ups of the
//! earlier ones, so under this churn it holds up to its connection limit
//! at once, and that (not the number of inputs) is what bounds its memory.
//!
//! Inputs: valid frames, valid frames with mutated bytes, truncated frames,
//! valid compact bodies (also of the compact-only messages), some mutated,
//! oversize and undersize headers, random message ids, garbage with and
//! without embedded prefixes, valid JSON of the wrong shape, compact bodies
//! of random bytes. The fuzz connection drains whatever the server sends it
//! and is replaced every few dozen inputs, after an oversize header, or when
//! the server closes it.
//!
//! `NFY_NETFUZZ_ITERATIONS` (default 3000: the CI run) and
//! `NFY_NETFUZZ_SEED` (default 7) choose the run; the seed is printed, and
//! the same seed sends the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nfy_core::msg;
use nfy_linux::client::ServerAddr;
use nfy_tests::rng::Rng;
use nfy_tests::server::ServerProcess;
use nfy_tests::wire::{frame, frame_with_id, JsonClient, PREFIX};
use serde_json::{json, Value};

#[path = "common/targets.rs"]
mod targets;

/// Per-connection allowance beyond the frame buffer (state, queues, the
/// allocator's overhead), in kB.
const PER_CONNECTION_KB: u64 = 16;

/// Unicasts each well-behaved client sends to the other.
const EXCHANGED: u64 = 200;

/// A short identifier, sometimes empty, reserved, or with odd bytes.
fn name(rng: &mut Rng) -> String {
    match rng.index(8) {
        0 => String::new(),
        1 => rng.pick(&["1", "*", "\u{0}", "é\u{7}", "x\\y"]).to_string(),
        2 => "n".repeat(1 + rng.index(80)),
        _ => format!("fz{}", rng.index(20)),
    }
}

/// A valid message of the JSON protocol with random names (never the
/// well-behaved clients' names).
fn valid_message(rng: &mut Rng) -> Value {
    let to = name(rng);
    let n = name(rng);
    match rng.index(4) {
        0 => {
            json!({"type": "register", "to": to, "notification": n, "priority": rng.index(5) as i64 - 2})
        }
        1 => json!({"type": "unregister", "to": to, "notification": n}),
        2 => json!({"type": "notify", "from": name(rng), "to": to, "notification": n,
                    "flags": rng.next_u64() as u32, "parameter": {"k": rng.index(1000)}}),
        _ => json!({"type": "notify", "from": "fz", "to": rng.pick(&["1", "*", "fz1"]).to_string(),
                    "notification": "fz", "reference": rng.next_u64() as u32, "parameter": [1, "two", null]}),
    }
}

/// Valid JSON that is not a valid message.
fn wrong_shape(rng: &mut Rng) -> Vec<u8> {
    let depth = 1 + rng.index(200);
    let v = match rng.index(10) {
        0 => json!([1, 2, 3]),
        1 => json!(rng.next_u64()),
        2 => json!("notify"),
        3 => json!(null),
        4 => json!({"type": "notify", "from": 1, "to": [], "notification": {}, "parameter": 1}),
        5 => json!({"type": "register", "to": "fz", "notification": "fz", "priority": "high"}),
        6 => json!({"type": "frobnicate", "x": rng.next_u64()}),
        7 => json!({"type": "notify", "type2": "notify", "from": "a", "to": "b"}),
        8 => json!({"type": "register", "to": "fz", "notification": "fz", "priority": 1e300}),
        _ => {
            // Deeply nested parameter.
            let mut s = String::from(
                r#"{"type":"notify","from":"fz","to":"fz","notification":"fz","parameter":"#,
            );
            s.push_str(&"[".repeat(depth));
            s.push_str(&"]".repeat(depth));
            s.push('}');
            return s.into_bytes();
        }
    };
    let mut text = v.to_string().into_bytes();
    if rng.index(4) == 0 {
        // A duplicated member.
        let dup = br#","type":"notify"}"#;
        text.pop();
        text.extend_from_slice(dup);
    }
    text
}

/// A valid compact body: the JSON message `json` re-encoded (when the core
/// accepts it), or one of the
/// compact-only messages (observe, unicast-error switch, ack, status
/// request).
fn compact_body(rng: &mut Rng, json: &[u8]) -> Vec<u8> {
    let msg = match rng.index(5) {
        0 => msg::Message::Observe(rng.index(2) == 0),
        1 => msg::Message::UnicastErrors(rng.index(2) == 0),
        2 => msg::Message::Ack(rng.next_u64()),
        3 => msg::Message::StatusRequest,
        // Names the core refuses (empty, reserved, control characters)
        // have no compact form.
        _ => msg::json::decode(json).unwrap_or(msg::Message::StatusRequest),
    };
    let mut buf = vec![0u8; msg::compact::encoded_len(&msg).expect("compact form")];
    let n = msg::compact::encode(&msg, &mut buf).expect("compact encode");
    buf.truncate(n);
    buf
}

/// One fuzz input; true when the connection should be replaced after it.
fn input(rng: &mut Rng) -> (Vec<u8>, bool) {
    let body = valid_message(rng).to_string().into_bytes();
    match rng.index(11) {
        0 => (frame(&body), false),
        1 => {
            let mut f = frame(&body);
            for _ in 0..1 + rng.index(4) {
                let at = rng.index(f.len());
                f[at] = rng.next_u64() as u8;
            }
            // A mutated size field may announce a huge body.
            (f, true)
        }
        2 => {
            let f = frame(&body);
            let cut = rng.index(f.len());
            (f[..cut].to_vec(), rng.index(2) == 0)
        }
        3 => {
            let mut f = PREFIX.to_vec();
            let size = 0x0001_0000 + (rng.next_u64() as u32 % (u32::MAX - 0x0001_0000));
            f.extend_from_slice(&size.to_be_bytes());
            f.extend_from_slice(&0u32.to_be_bytes());
            let n = rng.index(2048);
            f.extend_from_slice(&rng.bytes(n));
            (f, true)
        }
        4 => {
            let n = 1 + rng.index(512);
            let mut g = rng.bytes(n);
            if rng.index(2) == 0 {
                let at = rng.index(g.len());
                g.splice(at..at, PREFIX);
            }
            (g, false)
        }
        5 => (frame(&wrong_shape(rng)), false),
        6 => {
            let n = rng.index(64);
            (frame_with_id(1, &rng.bytes(n)), false)
        }
        7 => {
            let mut f = PREFIX.to_vec();
            f.extend_from_slice(&(rng.index(4) as u32).to_be_bytes());
            (f, false)
        }
        8 => (frame_with_id(rng.next_u64() as u32, &body), false),
        9 => {
            let mut f = frame_with_id(1, &compact_body(rng, &body));
            if rng.index(2) == 0 {
                let at = 12 + rng.index(f.len() - 12);
                f[at] = rng.next_u64() as u8;
            }
            (f, false)
        }
        _ => {
            let n = rng.index(256);
            (frame(&rng.bytes(n)), false)
        }
    }
}

/// The fuzzer's connection, Unix or TCP, with reads drained and discarded.
enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    /// Connects, retrying while the server refuses (at its connection
    /// limit it closes new connections, and a full backlog refuses them).
    fn open(unix: bool, socket: &Path, tcp: SocketAddr) -> Conn {
        let mut tries = 0;
        let c = loop {
            let c = if unix {
                UnixStream::connect(socket).map(Conn::Unix)
            } else {
                TcpStream::connect(tcp).map(Conn::Tcp)
            };
            match c {
                Ok(c) => break c,
                Err(e) if tries < 10_000 => {
                    tries += 1;
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("cannot connect to the server: {e}"),
            }
        };
        match &c {
            Conn::Unix(s) => s.set_nonblocking(true).unwrap(),
            Conn::Tcp(s) => s.set_nonblocking(true).unwrap(),
        }
        c
    }

    /// Writes everything (draining reads while the socket is full); false
    /// when the server closed the connection.
    fn send(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            let r = match self {
                Conn::Unix(s) => s.write(bytes),
                Conn::Tcp(s) => s.write(bytes),
            };
            match r {
                Ok(0) => return false,
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if !self.drain() {
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.drain()
    }

    /// Reads and discards what is there; false when closed.
    fn drain(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let r = match self {
                Conn::Unix(s) => s.read(&mut buf),
                Conn::Tcp(s) => s.read(&mut buf),
            };
            match r {
                Ok(0) => return false,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Prints the server's last log lines when the test fails.
struct LogTail(Arc<nfy_tests::server::LogLines>);

impl Drop for LogTail {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let lines = self.0.lines();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!("the server's last log lines:\n{tail}");
        }
    }
}

/// Collects the messages waiting for `client` (JSON objects; the
/// round-trip replies of [`JsonClient::sync`] skipped).
fn drain(client: &mut JsonClient, into: &mut Vec<Value>) {
    while let Some(v) = client.recv(Duration::from_millis(1)).unwrap() {
        if v["notification"] != nfy_tests::wire::SYNC_NOTIFICATION {
            into.push(v);
        }
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The exchange's notifications a message list holds from `from`, in order.
fn exchanged(messages: &[Value], from: &str) -> Vec<u64> {
    messages
        .iter()
        .filter(|m| m["from"] == from && m["notification"] == "netfuzz.ping")
        .map(|m| m["parameter"]["n"].as_u64().unwrap())
        .collect()
}

#[test]
fn fuzzed_frames_leave_the_server_and_others_unaffected() {
    let target = targets::linux();
    let iterations = env_or("NFY_NETFUZZ_ITERATIONS", 3000);
    let seed = env_or("NFY_NETFUZZ_SEED", 7);
    println!(
        "netfuzz: {iterations} inputs, seed {seed} (NFY_NETFUZZ_ITERATIONS, NFY_NETFUZZ_SEED)"
    );
    let mut server = ServerProcess::start(&target);
    let _tail = LogTail(Arc::clone(&server.log));
    let pid = server.pid();
    let rss_start = proc_status_kb(pid, "VmRSS:");

    let mut a = JsonClient::unix(server.socket()).unwrap();
    let mut b = JsonClient::tcp(server.tcp_v4()).unwrap();
    a.register("nf-a", "netfuzz.ping", 0).unwrap();
    b.register("nf-b", "netfuzz.ping", 0).unwrap();
    a.sync("nf-a");
    b.sync("nf-b");

    let progress = Arc::new(AtomicU64::new(0));
    let fuzzer = {
        let progress = Arc::clone(&progress);
        let socket = server.socket().to_owned();
        let tcp = server.tcp_v4();
        std::thread::spawn(move || {
            let mut rng = Rng(seed);
            let mut unix = true;
            let mut conn = Conn::open(unix, &socket, tcp);
            let mut on_conn = 0;
            let mut reconnects = 0u64;
            let mut bytes = 0u64;
            for i in 0..iterations {
                let (data, replace) = input(&mut rng);
                bytes += data.len() as u64;
                let alive = conn.send(&data);
                on_conn += 1;
                if !alive || replace || on_conn >= 32 {
                    unix = !unix;
                    conn = Conn::open(unix, &socket, tcp);
                    on_conn = 0;
                    reconnects += 1;
                }
                progress.store(i + 1, Ordering::Release);
            }
            (reconnects, bytes)
        })
    };

    // The exchange, spread over the fuzzing; what arrives meanwhile is
    // collected (a client that does not read is disconnected).
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    for n in 0..EXCHANGED {
        let due = n * iterations / EXCHANGED;
        while progress.load(Ordering::Acquire) < due && !fuzzer.is_finished() {
            std::thread::sleep(Duration::from_millis(1));
        }
        if !server.is_running() {
            panic!("the server exited during the fuzzing: {:?}", server.stop());
        }
        a.notify("nf-a", "nf-b", "netfuzz.ping", 0, json!({ "n": n }))
            .unwrap();
        b.notify("nf-b", "nf-a", "netfuzz.ping", 0, json!({ "n": n }))
            .unwrap();
        drain(&mut a, &mut got_a);
        drain(&mut b, &mut got_b);
    }
    let (reconnects, bytes) = fuzzer.join().expect("the fuzzer thread failed");

    // After one round trip each, the server has routed everything both
    // sent; after the second, both have received it.
    got_a.extend(a.sync("nf-a"));
    got_b.extend(b.sync("nf-b"));
    got_a.extend(a.sync("nf-a"));
    got_b.extend(b.sync("nf-b"));
    let expected: Vec<u64> = (0..EXCHANGED).collect();
    assert_eq!(exchanged(&got_b, "nf-a"), expected, "b lost notifications");
    assert_eq!(exchanged(&got_a, "nf-b"), expected, "a lost notifications");
    // Nothing else: the fuzzer's forged references reach no one (see
    // `forged_reference_does_not_reach_another_client`).
    let foreign = got_a.len() + got_b.len() - 2 * EXCHANGED as usize;
    assert_eq!(foreign, 0, "the exchanging clients got foreign messages");

    assert!(
        server.is_running(),
        "the server died; log:\n{}",
        server.log.text()
    );
    let mut fresh = JsonClient::unix(server.socket()).unwrap();
    assert!(fresh.sync("nf-fresh").is_empty());
    let mut fresh_tcp = JsonClient::tcp(server.tcp_v4()).unwrap();
    assert!(fresh_tcp.sync("nf-fresh-tcp").is_empty());
    let status = nfy_linux::client::Client::connect_to(ServerAddr {
        unix: Some(server.socket().to_owned()),
        tcp: None,
        tls: None,
    })
    .expect("the library cannot connect after the fuzzing")
    .status()
    .expect("no status after the fuzzing");
    println!("netfuzz: status afterwards: {status:?}");
    assert_eq!(server.log.count("panicked"), 0, "{}", server.log.text());

    let max_frame_kb = (target.max_frame() as u64).div_ceil(1024) + 1;
    let bound_kb = rss_start
        + target.profile.limits.max_connections as u64 * (max_frame_kb + PER_CONNECTION_KB);
    let rss_end = proc_status_kb(pid, "VmRSS:");
    let hwm = proc_status_kb(pid, "VmHWM:");
    println!(
        "netfuzz: {iterations} inputs ({bytes} bytes, {reconnects} reconnects), \
         {EXCHANGED}+{EXCHANGED} exchanged, none lost, {foreign} foreign messages \
         at the exchanging clients; server RSS {rss_start} kB at start, \
         {rss_end} kB at end, peak {hwm} kB (bound {bound_kb} kB)"
    );
    assert!(
        hwm <= bound_kb,
        "server peak RSS {hwm} kB over the bound {bound_kb} kB"
    );
}

/// A bug the network fuzzer found, fixed (the broker's ledger): a notify
/// carrying a `reference` the server never issued was taken as a returned
/// unicast (spec 3, the
/// unregister race) when the reference merely *names* a live connection
/// (its high 32 bits), so a client can make the server send unicast errors
/// to another connection: any 32-bit reference names connection slot 0,
/// generation 0 (the first client). In a long fuzz run the first
/// well-behaved client received hundreds of such unicast errors and, not
/// reading them, was disconnected as a stalled reader. The broker should
/// accept a returned reference only from the connection it delivered that
/// unicast to (the bookkeeping acknowledgements need anyway): it now does.
#[test]
fn forged_reference_does_not_reach_another_client() {
    let target = targets::linux();
    let server = ServerProcess::start(&target);
    let mut victim = JsonClient::unix(server.socket()).unwrap();
    victim.register("victim", "victim.n", 0).unwrap();
    victim.sync("victim");
    let mut forger = JsonClient::tcp(server.tcp_v4()).unwrap();
    let forged = json!({
        "type": "notify", "from": "forger", "to": "nobody", "notification": "x",
        "flags": 0, "reference": 7, "parameter": null,
    });
    forger.send(&forged).unwrap();
    // An ordinary undeliverable unicast: the error goes to its sender.
    let mine = forger.sync("forger");
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["type"], "unicast_error", "{mine:?}");
    let got = victim.sync("victim");
    assert!(got.is_empty(), "the victim got {got:?}");
}
