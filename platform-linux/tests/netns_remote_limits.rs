//! The limits on remote connections (issue 7, "Security"), against real
//! remote peers: each test creates a network namespace joined to the host
//! by a veth pair (a /30 in `10.233.0.0/16`: `.1` on the host, `.2`
//! inside) and starts `notifysvc` with rules that let remote peers in
//! (so it listens on every interface) and small remote limits. Remote
//! connections are made by a thread of this test that first enters the
//! namespace (`setns`: a thread's network namespace is its own), so the
//! server sees them come from `10.233.x.2`: remote.
//!
//! Nothing here is timed: the rate limit is low (10 frames/s, burst 20)
//! and a flood of 1000 frames written at once exceeds it whatever the
//! machine's speed; waits are deadlines for things that must happen.
//!
//! Traffic only goes to loopback and to the namespace addresses made here.
//! Without the right to create namespaces (not root, no CAP_NET_ADMIN)
//! every test prints `SKIPPED: ...` and passes. The namespace and the veth
//! pair are removed on drop, also when a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use common::{json_frame, notify_msg, JsonClient, Server, DEADLINE};
use nfy_linux::client::{server_report, ServerAddr, ServerReport};
use nfy_test_support::netns::{Netns, Range};
use serde_json::json;

/// Remote limits every test server runs with.
const MAX_REMOTE: usize = 2;
const RATE: u64 = 10;
const BURST: u64 = 20;
const REMOTE_FRAME: usize = 1024;

/// This test binary's addresses: a /30 per namespace in `10.233.0.0/16`,
/// at most one namespace per test.
const RANGE: Range = Range {
    tag: "nfyl",
    first: Ipv4Addr::new(10, 233, 0, 0),
    blocks: 1 << 14,
    per_process: 4,
};

/// A JSON-protocol client connected to `port` on the host's end of the
/// veth pair from inside the namespace: a remote peer.
fn remote(ns: &Netns, port: u16) -> JsonClient {
    let stream = ns.connect(SocketAddr::from((ns.host_addr, port)));
    let local = stream.local_addr().unwrap();
    assert!(!local.ip().is_loopback(), "{local}: not a remote address");
    JsonClient::from_tcp(stream)
}

/// A server that lets remote peers in, with the small remote limits above.
fn server() -> Server {
    Server::builder()
        .config_text("in * * *\nout * * *\n")
        .arg("--max-remote")
        .arg(&MAX_REMOTE.to_string())
        .arg("--remote-rate")
        .arg(&RATE.to_string())
        .arg("--remote-burst")
        .arg(&BURST.to_string())
        .arg("--max-remote-frame")
        .arg(&REMOTE_FRAME.to_string())
        .start()
}

/// The server's report (`nfy status`), over its Unix socket.
fn report(server: &Server) -> ServerReport {
    server_report(&ServerAddr::unix(&server.socket), DEADLINE).unwrap()
}

/// Polls the report until `done` holds (the server works on its own
/// schedule); panics with the last report at the deadline.
fn report_until(server: &Server, what: &str, done: impl Fn(&ServerReport) -> bool) -> ServerReport {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let r = report(server);
        if done(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "never {what}: {r:?}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// A local client registered as app "sink" for notification "ev".
fn sink(server: &Server) -> JsonClient {
    let mut sink = JsonClient::unix(&server.socket).unwrap();
    sink.register("sink", "ev", 0).unwrap();
    sink.barrier("sink");
    sink
}

/// The next notification the sink receives; its `from`.
fn next_from(sink: &mut JsonClient) -> String {
    let v = sink
        .recv_type("notify", DEADLINE)
        .unwrap()
        .unwrap_or_else(|| panic!("no notification within {DEADLINE:?}"));
    v["from"].as_str().unwrap().to_owned()
}

#[test]
fn remote_connections_over_the_cap_are_refused_and_counted() {
    let test = "remote_connections_over_the_cap_are_refused_and_counted";
    let Some(ns) = Netns::create_or_skip(&RANGE, 0, test) else {
        return;
    };
    let server = server();
    let mut sink = sink(&server);
    let mut first = remote(&ns, server.port);
    let mut second = remote(&ns, server.port);
    report_until(&server, "2 remote connections", |r| {
        r.status.remote_connections == 2
    });
    // One more: accepted by the kernel, closed by the server at once.
    let mut third = remote(&ns, server.port);
    assert!(
        third.closed_by_server(DEADLINE),
        "the third was not refused"
    );
    let r = report(&server);
    assert_eq!(r.status.remote_connections, 2);
    assert_eq!((r.protection.refused, r.protection.remote_refused), (1, 1));
    let listed = r.connections.iter().filter(|c| c.remote).count();
    assert_eq!(listed, 2, "{r:?}");
    // Local clients are not affected by the remote cap.
    let mut local = JsonClient::unix(&server.socket).unwrap();
    local.notify("local", "sink", "ev", 0, json!({})).unwrap();
    assert_eq!(next_from(&mut sink), "local");
    // The two admitted ones work.
    first.notify("r1", "sink", "ev", 0, json!({})).unwrap();
    assert_eq!(next_from(&mut sink), "r1");
    second.notify("r2", "sink", "ev", 0, json!({})).unwrap();
    assert_eq!(next_from(&mut sink), "r2");
    // One leaves: a new remote connection gets its place.
    drop(first);
    report_until(&server, "1 remote connection", |r| {
        r.status.remote_connections == 1
    });
    let mut fourth = remote(&ns, server.port);
    fourth.notify("r4", "sink", "ev", 0, json!({})).unwrap();
    assert_eq!(next_from(&mut sink), "r4");
    assert_eq!(report(&server).protection.remote_refused, 1);
    assert!(server.log().contains("remote connection limit reached"));
}

#[test]
fn a_remote_flood_is_rate_limited_and_counted_and_others_are_unaffected() {
    let test = "a_remote_flood_is_rate_limited_and_counted_and_others_are_unaffected";
    let Some(ns) = Netns::create_or_skip(&RANGE, 1, test) else {
        return;
    };
    let server = server();
    let mut sink = sink(&server);
    let mut flooder = remote(&ns, server.port);
    let mut other = remote(&ns, server.port);
    const FLOOD: u64 = 1000;
    let frame = json_frame(&notify_msg("flood", "sink", "ev", 0, json!({})));
    // The sink's barrier was a delivery too.
    let before = report(&server).status.delivered;
    let started = Instant::now();
    flooder.send_raw(&frame.repeat(FLOOD as usize)).unwrap();
    // Every frame is either delivered (the sink is the only receiver) or
    // dropped by the rate limit.
    let r = report_until(&server, "the whole flood handled", |r| {
        r.status.delivered - before + r.protection.rate_limited >= FLOOD
    });
    let elapsed = started.elapsed().as_secs();
    let passed = r.status.delivered - before;
    assert_eq!(passed + r.protection.rate_limited, FLOOD, "{r:?}");
    assert!(passed >= BURST, "the burst passes: {r:?}");
    assert!(
        passed <= BURST + RATE * (elapsed + 1),
        "at most the burst plus {RATE}/s in {elapsed} s: {r:?}"
    );
    assert!(r.protection.rate_limited >= FLOOD - BURST - RATE * (elapsed + 1));
    // The sink got exactly the frames that passed.
    for _ in 0..passed {
        assert_eq!(next_from(&mut sink), "flood");
    }
    // Another remote connection has its own budget; local clients have none.
    other.notify("other", "sink", "ev", 0, json!({})).unwrap();
    assert_eq!(next_from(&mut sink), "other");
    let mut local = JsonClient::unix(&server.socket).unwrap();
    let many = json_frame(&notify_msg("local", "sink", "ev", 0, json!({}))).repeat(100);
    local.send_raw(&many).unwrap();
    for _ in 0..100 {
        assert_eq!(next_from(&mut sink), "local");
    }
    let after = report(&server);
    assert_eq!(
        after.protection.rate_limited, r.protection.rate_limited,
        "{after:?}"
    );
    // The flooder is only slowed down, not disconnected.
    assert_eq!(after.status.remote_connections, 2);
    let log = server.log();
    assert!(log.contains("frames/s (burst 20): dropping"), "{log}");
}

#[test]
fn an_oversize_remote_frame_is_skipped_and_counted() {
    let test = "an_oversize_remote_frame_is_skipped_and_counted";
    let Some(ns) = Netns::create_or_skip(&RANGE, 2, test) else {
        return;
    };
    let server = server();
    let mut sink = sink(&server);
    let mut remote = remote(&ns, server.port);
    // Over the remote limit, well under the local one (64 KiB).
    let big = json!({ "pad": "x".repeat(2 * REMOTE_FRAME) });
    let oversize = json_frame(&notify_msg("big", "sink", "ev", 0, big.clone()));
    remote.send_raw(&oversize).unwrap();
    remote.notify("small", "sink", "ev", 0, json!({})).unwrap();
    // The big one never arrives; the connection goes on with the next.
    assert_eq!(next_from(&mut sink), "small");
    let r = report(&server);
    assert_eq!(r.protection.oversize, 1, "{r:?}");
    assert_eq!(r.status.remote_connections, 1);
    // The same frame from a local client is delivered.
    let mut local = JsonClient::unix(&server.socket).unwrap();
    local
        .send_raw(&json_frame(&notify_msg("big-local", "sink", "ev", 0, big)))
        .unwrap();
    assert_eq!(next_from(&mut sink), "big-local");
    assert_eq!(report(&server).protection.oversize, 1);
    let log = server.log();
    assert!(log.contains("over the limit"), "{log}");
}

#[test]
fn remote_peers_may_not_list_connections() {
    let test = "remote_peers_may_not_list_connections";
    let Some(ns) = Netns::create_or_skip(&RANGE, 3, test) else {
        return;
    };
    let server = server();
    let stream = ns.connect(SocketAddr::from((ns.host_addr, server.port)));
    // A compact hello, then the connection list request: refused (logged),
    // nothing comes back but the welcome; the server's own report still
    // works.
    use nfy_core::msg::{self, compact, Encoding, Hello, Message};
    let mut c = JsonClient::from_tcp(stream);
    for m in [
        Message::Hello(Hello {
            version: compact::VERSION,
            app_id: None,
            acks: false,
        }),
        Message::ConnectionsRequest,
        Message::StatusRequest,
    ] {
        let mut body = [0u8; 64];
        let n = msg::encode(&m, Encoding::Compact, &mut body).unwrap();
        c.send_raw(&common::frame_with_id(1, &body[..n])).unwrap();
    }
    report_until(&server, "two refusals logged", |_| {
        server
            .log()
            .matches("remote connections may not ask for status")
            .count()
            >= 2
    });
    // Its hello is answered (its frame limit), nothing else.
    let welcome = c.recv_frame(DEADLINE).unwrap().expect("no welcome");
    match msg::decode(Encoding::Compact, &welcome.body).unwrap() {
        Message::Welcome(w) => assert_eq!(w.max_frame as usize, REMOTE_FRAME),
        other => panic!("expected the welcome, got {other:?}"),
    }
    c.expect_nothing(Duration::from_millis(200));
    assert_eq!(report(&server).status.remote_connections, 1);
}
