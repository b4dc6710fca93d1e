//! The whitelist against a real remote peer (spec section 4): each test
//! creates a network namespace joined to the host by a veth pair (a /30
//! in `10.231.0.0/16`: `.1` on the host, `.2` inside), starts
//! `notifysvc` with `in`/`out` rules, and runs remote clients INSIDE the
//! namespace: this test binary re-executed under `ip netns exec` as a
//! relay (TCP to the server from inside the namespace, bytes passed on to
//! a Unix socket of the test), so the test speaks the raw JSON protocol as
//! a peer the server sees at its namespace address.
//!
//! Traffic only ever goes to loopback and to the namespace addresses made
//! here. Without the right to create namespaces (not root, no
//! CAP_NET_ADMIN) every test prints `SKIPPED: ...` and passes. The
//! namespace and the veth pair are removed on drop, also when a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{self, BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{JsonClient, Server, DEADLINE};
use nfy_core::msg::{self, compact, Encoding, Hello, Message};
use nfy_test_support::netns::{Netns, Range};
use serde_json::{json, Value};

/// Environment variable that turns [`relay_helper`] into a relay:
/// `UNIX_PATH|IP:PORT`.
const RELAY_ENV: &str = "NFY_TEST_NETNS_RELAY";

/// This helper "test" is the remote client's process: run under
/// `ip netns exec`, it connects to the server over TCP from inside the
/// namespace, then to the test's Unix socket, and copies bytes both ways
/// (passing on half-closes) until both directions ended. Without
/// [`RELAY_ENV`] it does nothing.
#[test]
fn relay_helper() {
    let Ok(spec) = std::env::var(RELAY_ENV) else {
        return;
    };
    let (path, addr) = spec.split_once('|').unwrap();
    let addr: SocketAddr = addr.parse().unwrap();
    let deadline = Instant::now() + DEADLINE;
    // The veth link may need a moment before it carries traffic.
    let tcp = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                eprintln!("relay: connecting to {addr}: {e}; retrying");
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("relay: cannot connect to {addr}: {e}"),
        }
    };
    tcp.set_nodelay(true).unwrap();
    let unix = UnixStream::connect(path).unwrap();
    let (mut tcp_r, mut tcp_w) = (tcp.try_clone().unwrap(), tcp);
    let (mut unix_r, mut unix_w) = (unix.try_clone().unwrap(), unix);
    let down = thread::spawn(move || {
        let _ = io::copy(&mut tcp_r, &mut unix_w);
        let _ = unix_w.shutdown(std::net::Shutdown::Write);
    });
    let _ = io::copy(&mut unix_r, &mut tcp_w);
    let _ = tcp_w.shutdown(std::net::Shutdown::Write);
    down.join().unwrap();
}

/// This test binary's addresses: a /30 per namespace in `10.231.0.0/16`,
/// at most one namespace per test.
const RANGE: Range = Range {
    tag: "nfyw",
    first: Ipv4Addr::new(10, 231, 0, 0),
    blocks: 1 << 14,
    per_process: 5,
};

/// Starts a remote client inside the namespace, connected to `server`
/// (an address on the host side of the veth pair).
fn start_remote(ns: &Netns, server: SocketAddr) -> Remote {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.sock");
    let listener = UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "relay_helper", "--nocapture", "--test-threads=1"])
        .env(RELAY_ENV, format!("{}|{server}", path.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("the relay exited early: {status}");
                }
                assert!(Instant::now() < deadline, "the relay never connected");
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("accepting the relay: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    Remote {
        client: JsonClient::from_unix(stream),
        child,
        _dir: dir,
    }
}

/// A client inside the namespace (its relay process is killed on drop).
struct Remote {
    client: JsonClient,
    child: Child,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Remote {
    type Target = JsonClient;
    fn deref(&self) -> &JsonClient {
        &self.client
    }
}

impl std::ops::DerefMut for Remote {
    fn deref_mut(&mut self) -> &mut JsonClient {
        &mut self.client
    }
}

impl Drop for Remote {
    /// Closes like a well-behaved client (the relay passes the close on to
    /// the server and exits); killed when it does not exit in time.
    fn drop(&mut self) {
        let _ = self.client.shutdown_write();
        if common::wait_exit(&mut self.child, Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The next message, which must be a `kind`.
fn expect(c: &mut JsonClient, kind: &str) -> Value {
    let v = c
        .recv(DEADLINE)
        .unwrap()
        .unwrap_or_else(|| panic!("no {kind} within {DEADLINE:?}"));
    assert_eq!(v["type"], kind, "{v}");
    v
}

/// Synchronises with a remote client without registering anything (the
/// remote registration cap must not be touched): the remote sends
/// "sync" to the local `sink` (which registered as app "sink" for it);
/// once the sink has it, the server handled everything the remote sent
/// before. Returns what the sink received before it. Needs the rule
/// `in rem* sink sync`.
fn sync(remote: &mut JsonClient, sink: &mut JsonClient) -> Vec<Value> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    remote
        .notify("rem", "sink", "sync", 0, json!({"sync": n}))
        .unwrap();
    let mut before = Vec::new();
    loop {
        let v = sink
            .recv(DEADLINE)
            .unwrap()
            .unwrap_or_else(|| panic!("sync {n} never arrived; before it: {before:?}"));
        if v["notification"] == "sync" && v["parameter"]["sync"] == n {
            return before;
        }
        before.push(v);
    }
}

/// A local sink for [`sync`].
fn sink(server: &Server) -> JsonClient {
    let mut sink = server.unix_client();
    sink.register("sink", "sync", 0).unwrap();
    sink.barrier("sink");
    sink
}

/// Waits until a log line holds every one of `needles`.
fn expect_log_line(server: &Server, needles: &[&str]) {
    let deadline = Instant::now() + DEADLINE;
    while !server
        .log()
        .lines()
        .any(|l| needles.iter().all(|n| l.contains(n)))
    {
        assert!(
            Instant::now() < deadline,
            "no log line with {needles:?}:\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// `nfy monitor` as an observer process: its JSON lines, one per delivery.
struct Monitor {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Monitor {
    fn start(server: &Server) -> Monitor {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nfy"))
            .arg("--socket")
            .arg(&server.socket)
            .args(["--port", &server.port.to_string(), "monitor"])
            .env_remove("NFY_LOGMASK")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("nfy: monitoring") {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "nfy monitor ended before observing"
            );
        }
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                let v: Value = serde_json::from_str(&line).unwrap();
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Monitor { child, lines }
    }

    /// The next `n` (from, to, notification) lines.
    fn next(&self, n: usize) -> Vec<(String, String, String)> {
        (0..n)
            .map(|_| {
                let v = self.lines.recv_timeout(DEADLINE).expect("no monitor line");
                let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{v}")).to_owned();
                (s("from"), s("to"), s("notification"))
            })
            .collect()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn triple(from: &str, to: &str, notification: &str) -> (String, String, String) {
    (from.into(), to.into(), notification.into())
}

#[test]
fn in_rules_filter_what_a_remote_peer_may_send() {
    let Some(ns) = Netns::create_or_skip(&RANGE, 0, "in_rules_filter_what_a_remote_peer_may_send")
    else {
        return;
    };
    let server = Server::builder()
        .config_text(
            "# what remote peers may send\n\
             in  rem*      *      in-ok*\n\
             in  rem\\ x    local  lit\\*\n\
             in  rem*      sink   sync\n",
        )
        .start();
    server.expect_log(&format!("listening on tcp 0.0.0.0:{}", server.port));
    let mut local = server.unix_client();
    for id in ["in-ok-1", "in-ok-3", "in-bad", "lit*", "litX"] {
        local.register("local", id, 0).unwrap();
    }
    local.barrier("local");
    let mut sink = sink(&server);
    let monitor = Monitor::start(&server);

    let mut remote = start_remote(&ns, SocketAddr::from((ns.host_addr, server.port)));
    expect_log_line(&server, &[&format!("tcp {}:", ns.peer_addr), "remote)"]);

    let p = json!({"from": "remote"});
    // Allowed: from rem*, any destination, in-ok*.
    remote
        .notify("rem", "local", "in-ok-1", 1, p.clone())
        .unwrap();
    // Dropped: `from` does not match.
    remote
        .notify("other", "local", "in-ok-1", 2, p.clone())
        .unwrap();
    // Dropped: the notification does not match.
    remote
        .notify("rem", "local", "in-bad", 3, p.clone())
        .unwrap();
    // Allowed, but nobody is registered: a unicast error to the remote.
    remote
        .notify("rem", "nobody", "in-ok-2", 4, p.clone())
        .unwrap();
    // Escapes: `rem\ x` is "rem x", `lit\*` only the literal "lit*".
    remote
        .notify("rem x", "local", "lit*", 5, p.clone())
        .unwrap();
    remote
        .notify("rem x", "local", "litX", 6, p.clone())
        .unwrap();
    // A broadcast is filtered alike.
    remote.notify("rem", "*", "in-ok-3", 7, p.clone()).unwrap();
    remote.notify("rem", "*", "in-bad", 8, p.clone()).unwrap();
    // Dropped: a returned unicast (with a reference) is checked too.
    remote
        .send(&json!({"type": "notify", "from": "other", "to": "local",
            "notification": "in-ok-1", "reference": 4_294_967_297u64}))
        .unwrap();
    let got = sync(&mut remote, &mut sink);
    assert!(got.is_empty(), "{got:?}");

    let mut delivered = Vec::new();
    for _ in 0..3 {
        let v = expect(&mut local, "notify");
        assert_eq!(v["parameter"], p, "{v}");
        delivered.push((
            v["flags"].as_u64().unwrap(),
            v["from"].as_str().unwrap().to_owned(),
            v["to"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(
        delivered,
        [
            (1, "rem".to_owned(), "local".to_owned()),
            (5, "rem x".to_owned(), "local".to_owned()),
            (7, "rem".to_owned(), "*".to_owned()),
        ]
    );
    assert!(local.barrier("local").is_empty(), "more was delivered");
    // The remote got exactly one unicast error, for the allowed one.
    let err = expect(&mut remote, "unicast_error");
    assert_eq!(err["flags"], 4, "{err}");
    assert_eq!(err["notification"], "in-ok-2");

    // The observer heard of the allowed ones only, in order.
    assert_eq!(
        monitor.next(5),
        [
            triple("rem", "local", "in-ok-1"),
            triple("rem", "", "in-ok-2"),
            triple("rem x", "local", "lit*"),
            triple("rem", "local", "in-ok-3"),
            triple("rem", "sink", "sync"),
        ]
    );
    // Every drop is logged.
    assert_eq!(
        server.log().matches("dropped notification").count(),
        5,
        "{}",
        server.log()
    );
    // The same notifications from a LOCAL peer are not filtered.
    let mut local_sender = server.tcp_client();
    local_sender
        .notify("other", "local", "in-bad", 9, json!({}))
        .unwrap();
    assert_eq!(expect(&mut local, "notify")["flags"], 9);
    // Nothing went to the remote meanwhile but its unicast error.
    assert!(sync(&mut remote, &mut sink).is_empty());
    drop(remote);
    drop(ns);
}

#[test]
fn out_rules_filter_what_remote_registrations_receive_and_remotes_cannot_observe() {
    let Some(ns) = Netns::create_or_skip(
        &RANGE,
        1,
        "out_rules_filter_what_remote_registrations_receive_and_remotes_cannot_observe",
    ) else {
        return;
    };
    let server = Server::builder()
        .config_text(
            "in  rem*         sink   sync\n\
             out *            *      out-ok*\n\
             out loc-special  *      special\n",
        )
        .start();
    let mut sink = sink(&server);
    let addr = SocketAddr::from((ns.host_addr, server.port));
    let mut remote = start_remote(&ns, addr);
    for (id, prio) in [("out-ok-x", 9), ("blocked", 9), ("special", 9)] {
        remote.register("remapp", id, prio).unwrap();
    }
    let mut l2 = server.tcp_client();
    l2.register("l2", "out-ok-x", 1).unwrap();
    l2.register("l2", "blocked", 1).unwrap();
    l2.barrier("l2");
    assert!(sync(&mut remote, &mut sink).is_empty());

    let mut s = server.unix_client();
    // Allowed: the remote (9) beats the local (1) for "1".
    s.notify("sender", "1", "out-ok-x", 1, json!({"n": 1}))
        .unwrap();
    let got = expect(&mut remote, "notify");
    assert_eq!(
        (got["from"].clone(), got["to"].clone()),
        (json!("sender"), json!("1"))
    );
    assert_eq!(got["parameter"], json!({"n": 1}));
    // Not allowed: the remote registration is skipped, the next candidate
    // gets it...
    s.notify("sender", "1", "blocked", 2, json!({})).unwrap();
    assert_eq!(expect(&mut l2, "notify")["flags"], 2);
    // ... or, without one, the sender gets a unicast error.
    s.notify("sender", "remapp", "blocked", 3, json!({}))
        .unwrap();
    assert_eq!(expect(&mut s, "unicast_error")["flags"], 3);
    // A broadcast skips it too; an allowed broadcast reaches both.
    s.notify("sender", "*", "blocked", 4, json!({})).unwrap();
    assert_eq!(expect(&mut l2, "notify")["flags"], 4);
    s.notify("sender", "*", "out-ok-x", 5, json!({})).unwrap();
    assert_eq!(expect(&mut l2, "notify")["flags"], 5);
    assert_eq!(expect(&mut remote, "notify")["flags"], 5);
    // `from` is matched: only loc-special may send it "special".
    s.notify("loc-special", "remapp", "special", 6, json!({}))
        .unwrap();
    assert_eq!(expect(&mut remote, "notify")["flags"], 6);
    s.notify("loc-other", "remapp", "special", 7, json!({}))
        .unwrap();
    assert_eq!(expect(&mut s, "unicast_error")["flags"], 7);
    // The remote got nothing else: the next thing it receives from this
    // sender is this marker (one sender, one registration: in order).
    s.notify("sender", "remapp", "out-ok-x", 8, json!({}))
        .unwrap();
    assert_eq!(expect(&mut remote, "notify")["flags"], 8);
    assert!(l2.barrier("l2").is_empty());

    // A remote peer speaking our compact protocol may not observe, nor ask
    // for status.
    let mut spy = start_remote(&ns, addr);
    let compact_frame = |m: &Message<'_>| {
        let mut buf = [0u8; 256];
        let n = compact::encode(m, &mut buf).unwrap();
        common::frame_with_id(1, &buf[..n])
    };
    spy.send_raw(&compact_frame(&Message::Hello(Hello {
        version: compact::VERSION,
        app_id: None,
        acks: false,
    })))
    .unwrap();
    spy.send_raw(&compact_frame(&Message::Observe(true)))
        .unwrap();
    spy.send_raw(&compact_frame(&Message::StatusRequest))
        .unwrap();
    // JSON stays accepted after hello.
    spy.register("spyapp", "out-ok-spy", 0).unwrap();
    assert!(sync(&mut spy, &mut sink).is_empty());
    server.expect_log("remote connections may not observe");
    server.expect_log("remote connections may not ask for status");
    // Traffic it could observe, then a marker to it: the marker is the
    // first thing it gets (no observation, no status answer).
    s.notify("sender", "l2", "blocked", 9, json!({})).unwrap();
    assert_eq!(expect(&mut l2, "notify")["flags"], 9);
    s.notify("sender", "spyapp", "out-ok-spy", 10, json!({}))
        .unwrap();
    let mut first = spy.recv_frame(DEADLINE).unwrap().expect("no marker");
    assert_eq!(first.msg_id, 1, "compact after hello");
    // The answer to its hello (its frame limit) comes before.
    if let Ok(Message::Welcome(_)) = msg::decode(Encoding::Compact, &first.body) {
        first = spy.recv_frame(DEADLINE).unwrap().expect("no marker");
    }
    match msg::decode(Encoding::Compact, &first.body).unwrap() {
        Message::Notify(n) => assert_eq!(n.flags, 10, "{n:?}"),
        other => panic!("the remote got {other:?} before its marker"),
    }
    drop((remote, spy));
    drop(ns);
}

#[test]
fn at_most_256_remote_registrations_in_total() {
    let Some(ns) = Netns::create_or_skip(&RANGE, 2, "at_most_256_remote_registrations_in_total")
    else {
        return;
    };
    let server = Server::builder()
        .config_text("in rem* sink sync\nout * * cap-*\n")
        .start();
    let mut sink = sink(&server);
    let addr = SocketAddr::from((ns.host_addr, server.port));
    let mut r1 = start_remote(&ns, addr);
    let mut r2 = start_remote(&ns, addr);
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend(common::json_frame(&common::register_msg(
            "remapp",
            &format!("cap-{i}"),
            0,
        )));
    }
    r1.send_raw(&batch).unwrap();
    assert!(sync(&mut r1, &mut sink).is_empty());
    let mut batch = Vec::new();
    for i in 200..256 {
        batch.extend(common::json_frame(&common::register_msg(
            "remapp",
            &format!("cap-{i}"),
            0,
        )));
    }
    r2.send_raw(&batch).unwrap();
    assert!(sync(&mut r2, &mut sink).is_empty());
    let limit = "remote registration limit reached";
    assert!(!server.log().contains(limit), "{}", server.log());

    // 257th and 258th: refused, whichever connection asks.
    r2.register("remapp", "cap-256", 0).unwrap();
    r1.register("remapp", "cap-257", 0).unwrap();
    // Replacing an existing one does not count twice.
    r1.register("remapp", "cap-0", 5).unwrap();
    sync(&mut r1, &mut sink);
    sync(&mut r2, &mut sink);
    assert!(server.wait_log_count(limit, 2), "{}", server.log());
    assert_eq!(server.log().matches(limit).count(), 2, "{}", server.log());

    let mut s = server.unix_client();
    let mut send = |id: &str| {
        s.notify("sender", "remapp", id, 0, json!({"id": id}))
            .unwrap()
    };
    send("cap-0");
    send("cap-255");
    send("cap-256");
    send("cap-257");
    assert_eq!(expect(&mut r1, "notify")["notification"], "cap-0");
    assert_eq!(expect(&mut r2, "notify")["notification"], "cap-255");
    assert_eq!(expect(&mut s, "unicast_error")["notification"], "cap-256");
    assert_eq!(expect(&mut s, "unicast_error")["notification"], "cap-257");

    // Freeing one (unregister) makes room for one.
    r1.unregister("remapp", "cap-1").unwrap();
    sync(&mut r1, &mut sink);
    r2.register("remapp", "cap-256", 0).unwrap();
    sync(&mut r2, &mut sink);
    s.notify("sender", "remapp", "cap-256", 0, json!({}))
        .unwrap();
    assert_eq!(expect(&mut r2, "notify")["notification"], "cap-256");

    // A remote connection that goes away frees all of its registrations.
    drop(r1);
    expect_log_line(&server, &[&format!("(tcp {}:", ns.peer_addr), "closed"]);
    let mut batch = Vec::new();
    for i in 1000..1199 {
        batch.extend(common::json_frame(&common::register_msg(
            "remapp",
            &format!("cap-{i}"),
            0,
        )));
    }
    r2.send_raw(&batch).unwrap();
    sync(&mut r2, &mut sink);
    assert_eq!(server.log().matches(limit).count(), 2, "{}", server.log());
    s.notify("sender", "remapp", "cap-1198", 0, json!({}))
        .unwrap();
    assert_eq!(expect(&mut r2, "notify")["notification"], "cap-1198");
    drop(r2);
    drop(ns);
}

#[test]
fn interface_lines_bind_loopback_and_the_named_address_only() {
    let Some(ns) = Netns::create_or_skip(
        &RANGE,
        3,
        "interface_lines_bind_loopback_and_the_named_address_only",
    ) else {
        return;
    };
    // Once by address, once by interface name.
    for iface in [ns.host_addr.to_string(), ns.host_if().to_owned()] {
        let server = Server::builder()
            .config_text(&format!(
                "in rem* sink sync\nout * * out-ok*\ninterface {iface}\n"
            ))
            .start();
        server.expect_log(&format!(
            "listening on tcp {}:{} (interface {iface})",
            ns.host_addr, server.port
        ));
        let log = server.log();
        assert!(!log.contains("0.0.0.0"), "{log}");
        assert!(
            log.contains(&format!("listening on tcp 127.0.0.1:{}", server.port)),
            "{log}"
        );
        // Not a wildcard: 127.0.0.2 on the same port is free.
        assert!(
            std::net::TcpListener::bind((Ipv4Addr::new(127, 0, 0, 2), server.port)).is_ok(),
            "{log}"
        );
        let mut sink = sink(&server);
        let mut remote = start_remote(&ns, SocketAddr::from((ns.host_addr, server.port)));
        remote.register("remapp", "out-ok-1", 0).unwrap();
        assert!(sync(&mut remote, &mut sink).is_empty());
        let mut s = server.tcp_client();
        s.notify("sender", "remapp", "out-ok-1", 0, json!({"via": iface}))
            .unwrap();
        assert_eq!(
            expect(&mut remote, "notify")["parameter"]["via"],
            iface.as_str()
        );
        expect_log_line(&server, &[&format!("(tcp {}:", ns.peer_addr), "remote)"]);
    }
    drop(ns);
}

/// The relay really passes bytes both ways and half-closes (the other
/// tests rely on it to see the server close a remote connection).
#[test]
fn the_relay_passes_bytes_and_closes() {
    let Some(ns) = Netns::create_or_skip(&RANGE, 4, "the_relay_passes_bytes_and_closes") else {
        return;
    };
    let server = Server::builder()
        .config_text("in * * *\nout * * *\n")
        .start();
    let mut remote = start_remote(&ns, SocketAddr::from((ns.host_addr, server.port)));
    remote.register("remapp", "echo", 0).unwrap();
    remote
        .notify("remapp", "remapp", "echo", 0, json!({"x": 1}))
        .unwrap();
    assert_eq!(expect(&mut remote, "notify")["parameter"]["x"], 1);
    remote.shutdown_write().unwrap();
    assert!(remote.closed_by_server(DEADLINE));
    assert!(common::wait_exit(&mut remote.child, DEADLINE).is_some_and(|s| s.success()));
    drop(remote);
    drop(ns);
}
