//! TLS from remote peers (issue 16), against real remote peers: each test
//! creates a network namespace joined to the host by a veth pair (a /30
//! in `10.234.0.0/16`: `.1` on the host, `.2` inside), makes its own
//! certificates (`nfy_test_support::tls`: a CA, the server's for the
//! host's address, clients' current, expired or from another CA) and
//! starts `notifysvc` with TLS and rules that let remote peers in.
//! Remote connections are made by a thread of this test that first
//! enters the namespace, so the server sees them come from `10.234.x.2`.
//!
//! Nothing here is timed beyond deadlines for things that must happen;
//! the cost of TLS is measured by the bench (`cargo xtask bench`).
//! Without the right to create namespaces every test prints `SKIPPED:
//! ...` and passes (CI runs as root).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{free_port, json_frame, notify_msg, JsonClient, Server, ServerBuilder, DEADLINE};
use nfy_core::msg::{compact, Hello, Message};
use nfy_linux::client::{Client, ServerAddr, TlsSettings};
use nfy_test_support::netns::{Netns, Range};
use nfy_test_support::tls::{client_config, Ca, Issued, Pki, Role, Validity};
use serde_json::json;

/// This test binary's addresses: a /30 per namespace in `10.234.0.0/16`.
const RANGE: Range = Range {
    tag: "nfys",
    first: Ipv4Addr::new(10, 234, 0, 0),
    blocks: 1 << 14,
    per_process: 8,
};

/// A test's set-up: the namespace, the certificates (the server's for the
/// host's end of the veth pair), a directory for more.
struct Setup {
    ns: Netns,
    pki: Pki,
    dir: tempfile::TempDir,
    tls_port: u16,
}

impl Setup {
    fn new(n: u32, test: &str) -> Option<Setup> {
        let ns = Netns::create_or_skip(&RANGE, n, test)?;
        let dir = tempfile::tempdir().unwrap();
        let host = ns.host_addr.to_string();
        let pki = Pki::new(dir.path(), &[&host, "127.0.0.1"], "ecr-1");
        Some(Setup {
            ns,
            pki,
            dir,
            tls_port: free_port(),
        })
    }

    /// A server with mutual TLS with this set-up's CA on its TLS port,
    /// `config` as its whitelist, and `args`.
    fn server(&self, config: &str, args: &[&str]) -> Server {
        let mut b: ServerBuilder = Server::builder()
            .config_text(config)
            .arg("--tls-cert")
            .arg(self.pki.server.cert.to_str().unwrap())
            .arg("--tls-key")
            .arg(self.pki.server.key.to_str().unwrap())
            .arg("--tls-client-ca")
            .arg(self.pki.ca.pem.to_str().unwrap())
            .arg("--tls-port")
            .arg(&self.tls_port.to_string());
        for a in args {
            b = b.arg(a);
        }
        b.start()
    }

    /// The TLS port on the host's end of the veth pair.
    fn tls_addr(&self) -> SocketAddr {
        SocketAddr::from((self.ns.host_addr, self.tls_port))
    }

    /// A raw JSON-protocol client over TLS from the namespace, presenting
    /// `client`; `Err` when the handshake fails on our side.
    fn remote(&self, client: Option<&Issued>) -> std::io::Result<JsonClient> {
        let stream = self.ns.connect(self.tls_addr());
        assert!(!stream.local_addr().unwrap().ip().is_loopback());
        let config = client_config(&self.pki.ca.pem, client);
        JsonClient::tls(stream, config, &self.ns.host_addr.to_string())
    }
}

fn compact_frame(m: &Message<'_>) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = compact::encode(m, &mut buf).unwrap();
    common::frame_with_id(1, &buf[..n])
}

#[test]
fn a_remote_tls_peer_exchanges_notifications_under_the_whitelist() {
    let test = "a_remote_tls_peer_exchanges_notifications_under_the_whitelist";
    let Some(s) = Setup::new(0, test) else {
        return;
    };
    let server = s.server("in ecr-* pay start\nout * ecr-* show\n", &[]);
    let mut pay = JsonClient::unix(&server.socket).unwrap();
    pay.register("pay", "start", 0).unwrap();
    pay.register("pay", "other", 0).unwrap();
    pay.barrier("pay");
    let mut ecr = s.remote(Some(&s.pki.client)).unwrap();
    ecr.register("ecr-1", "show", 0).unwrap();
    ecr.register("ecr-1", "hidden", 0).unwrap();
    // A notification the in rules allow, one they do not.
    ecr.notify("ecr-1", "pay", "other", 0, json!({})).unwrap();
    ecr.notify("ecr-1", "pay", "start", 0, json!({"amount": 1250}))
        .unwrap();
    let got = pay.recv_type("notify", DEADLINE).unwrap().unwrap();
    assert_eq!(
        (
            got["notification"].as_str(),
            got["parameter"]["amount"].as_i64()
        ),
        (Some("start"), Some(1250))
    );
    // A notification the out rules allow reaches it, one they do not
    // does not (the marker after it comes first).
    pay.notify("pay", "ecr-1", "hidden", 0, json!({})).unwrap();
    pay.notify("pay", "ecr-1", "show", 0, json!({"text": "Insert card"}))
        .unwrap();
    let got = ecr.recv_type("notify", DEADLINE).unwrap().unwrap();
    assert_eq!(got["notification"], "show");
    assert_eq!(got["parameter"]["text"], "Insert card");
    let r = server.report();
    assert_eq!(r.status.dropped, 1, "the in rules dropped one: {r:?}");
    let tls = r.tls.first().expect("a TLS connection");
    assert_eq!(tls.subject.as_deref(), Some("O=nfy tests, CN=ecr-1"));
    let conn = r.connections.iter().find(|c| c.id == tls.conn).unwrap();
    assert!(conn.remote, "a TLS peer from a remote address is remote");

    // Remote over TLS may not observe nor ask for status, as over TCP.
    ecr.send_raw(&compact_frame(&Message::Hello(Hello {
        version: compact::VERSION,
        app_id: None,
        acks: false,
    })))
    .unwrap();
    ecr.send_raw(&compact_frame(&Message::Observe(true)))
        .unwrap();
    ecr.send_raw(&compact_frame(&Message::StatusRequest))
        .unwrap();
    server.expect_log("remote connections may not observe");
    server.expect_log("remote connections may not ask for status");

    // At most 256 remote registrations, TLS or not.
    let many: Vec<u8> = (0..300)
        .flat_map(|i| json_frame(&common::register_msg("ecr-1", &format!("n{i}"), 0)))
        .collect();
    ecr.send_raw(&many).unwrap();
    let r = server.report_until("256 remote registrations", |r| {
        r.status.remote_registrations == 256
    });
    thread::sleep(Duration::from_millis(100));
    assert_eq!(server.report().status.remote_registrations, 256, "{r:?}");

    // Its registrations end with its connection (the cap is free again).
    drop(ecr);
    server.report_until("no remote registration left", |r| {
        r.status.remote_registrations == 0
    });

    // Our library from the namespace, over TLS, sends and receives too.
    let settings = TlsSettings::from_files(
        &s.pki.ca.pem,
        Some((&s.pki.client.cert, &s.pki.client.key)),
        &s.ns.host_addr.to_string(),
    )
    .unwrap();
    let addr = ServerAddr::tls(s.tls_addr(), settings);
    let lib = s.ns.run(move || Client::connect_to(addr).unwrap());
    lib.set_app_id("ecr-2").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let _reg = lib
        .register("show", 0, move |d| tx.send(d.parameter.to_owned()).unwrap())
        .unwrap();
    // (No `sync`: it asks for status, which a remote peer may not.)
    server.report_until("the library's registration", |r| {
        r.registrations.iter().any(|g| g.to.as_str() == "ecr-2")
    });
    pay.notify("pay", "ecr-2", "show", 0, json!({"lib": true}))
        .unwrap();
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), r#"{"lib":true}"#);
    lib.notify("pay", "start", &json!({"from": "lib"})).unwrap();
    let got = pay.recv_type("notify", DEADLINE).unwrap().unwrap();
    assert_eq!(got["from"], "ecr-2");
}

#[test]
fn remote_tls_peers_are_under_the_remote_limits() {
    let test = "remote_tls_peers_are_under_the_remote_limits";
    let Some(s) = Setup::new(1, test) else {
        return;
    };
    let server = s.server(
        "in * * *\nout * * *\n",
        &[
            "--max-remote",
            "2",
            "--max-remote-frame",
            "1024",
            "--remote-rate",
            "10",
            "--remote-burst",
            "20",
        ],
    );
    let mut sink = JsonClient::unix(&server.socket).unwrap();
    sink.register("sink", "ev", 0).unwrap();
    sink.barrier("sink");
    let mut first = s.remote(Some(&s.pki.client)).unwrap();
    let _second = s.remote(Some(&s.pki.client)).unwrap();
    server.report_until("2 remote connections", |r| r.status.remote_connections == 2);
    // The third completes its handshake and is refused by --max-remote.
    let mut third = s.remote(Some(&s.pki.client)).unwrap();
    assert!(third.closed_within(DEADLINE), "the third was not refused");
    let r = server.report();
    assert_eq!(
        (r.protection.refused, r.protection.remote_refused),
        (1, 1),
        "{r:?}"
    );
    // A frame over --max-remote-frame is skipped and counted.
    first
        .send_raw(&common::frame(&common::notify_of_body_len(
            "r", "sink", "ev", 2000,
        )))
        .unwrap();
    server.report_until("the oversize frame counted", |r| r.protection.oversize == 1);
    // A flood is rate-limited.
    let frame = json_frame(&notify_msg("flood", "sink", "ev", 0, json!({})));
    first.send_raw(&frame.repeat(200)).unwrap();
    let r = server.report_until("the flood handled", |r| {
        r.status.delivered + r.protection.rate_limited >= 201
    });
    assert!(r.protection.rate_limited > 0, "{r:?}");
}

#[test]
fn refused_remote_tls_peers_are_counted() {
    let test = "refused_remote_tls_peers_are_counted";
    let Some(s) = Setup::new(2, test) else {
        return;
    };
    let server = s.server("in * * *\nout * * *\n", &[]);
    let other = Ca::new(s.dir.path(), "other-ca", "another CA");
    let stranger = other.issue(
        s.dir.path(),
        "stranger",
        "stranger",
        &[],
        Role::Client,
        Validity::Current,
    );
    let expired = s.pki.ca.issue(
        s.dir.path(),
        "expired",
        "old",
        &[],
        Role::Client,
        Validity::Expired,
    );
    for client in [None, Some(&stranger), Some(&expired)] {
        match s.remote(client) {
            Ok(mut peer) => {
                let _ = peer.register("x", "y", 0);
                assert!(peer.closed_within(DEADLINE), "not refused: {client:?}");
            }
            Err(e) => panic!("our side of the handshake failed: {e}"),
        }
    }
    let mut plain = JsonClient::from_tcp(s.ns.connect(s.tls_addr()));
    plain.register("x", "y", 0).unwrap();
    assert!(plain.closed_within(DEADLINE), "plain TCP not refused");
    let r = server.report_until("4 failed handshakes", |r| {
        r.tls_counters.is_some_and(|c| c.failed == 4)
    });
    assert_eq!(
        (r.protection.refused, r.protection.remote_refused),
        (4, 4),
        "{r:?}"
    );
    assert_eq!(r.status.remote_connections, 0, "{r:?}");
    let log = server.log();
    for reason in [
        "no client certificate",
        "unknown issuer",
        "client certificate expired",
        "not a TLS handshake",
    ] {
        assert!(log.contains(reason), "{reason:?} not in the log:\n{log}");
    }
}

#[test]
fn without_plain_remote_tcp_remote_peers_must_use_tls() {
    let test = "without_plain_remote_tcp_remote_peers_must_use_tls";
    let Some(s) = Setup::new(3, test) else {
        return;
    };
    let server = s.server("in * * *\nout * * *\n", &["--no-plain-remote"]);
    // TLS from the namespace works (and shows the link is up) ...
    let mut tls = s.remote(Some(&s.pki.client)).unwrap();
    tls.register("ecr", "ev", 0).unwrap();
    tls.barrier("ecr");
    // ... plain TCP from the namespace finds no listener ...
    let plain = SocketAddr::from((s.ns.host_addr, server.port));
    let refused =
        s.ns.run(move || TcpStream::connect_timeout(&plain, Duration::from_secs(5)));
    let e = refused.expect_err("plain TCP reached the server from a remote address");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    // ... and loopback TCP and the Unix socket stay plain.
    let mut local = JsonClient::tcp(SocketAddr::from(([127, 0, 0, 1], server.port))).unwrap();
    local.notify("local", "ecr", "ev", 0, json!({})).unwrap();
    assert_eq!(
        tls.recv_type("notify", DEADLINE).unwrap().unwrap()["from"],
        "local"
    );
    let mut unix = JsonClient::unix(&server.socket).unwrap();
    unix.notify("unix", "ecr", "ev", 0, json!({})).unwrap();
    assert_eq!(
        tls.recv_type("notify", DEADLINE).unwrap().unwrap()["from"],
        "unix"
    );
    let log = server.log();
    assert!(!log.contains("listening on tcp 0.0.0.0"), "{log}");
    assert!(log.contains("listening on tls 0.0.0.0"), "{log}");
}

#[test]
fn peers_stalled_mid_handshake_are_cut_and_do_not_hold_up_local_clients() {
    let test = "peers_stalled_mid_handshake_are_cut_and_do_not_hold_up_local_clients";
    let Some(s) = Setup::new(4, test) else {
        return;
    };
    const STALLED: usize = 100;
    const BOUND: usize = 32;
    let server = s.server(
        "in * * *\nout * * *\n",
        &[
            "--tls-handshake-timeout",
            "2s",
            "--tls-max-handshakes",
            &BOUND.to_string(),
        ],
    );
    let mut local = JsonClient::unix(&server.socket).unwrap();
    local.register("local", "ping", 0).unwrap();
    local.barrier("local");
    // The first bytes of a real ClientHello, for half of them.
    let hello = {
        let config = client_config(&s.pki.ca.pem, None);
        let name = rustls::pki_types::ServerName::try_from("10.234.0.1").unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::clone(&config), name).unwrap();
        let mut bytes = Vec::new();
        conn.write_tls(&mut bytes).unwrap();
        bytes.truncate(bytes.len() / 2);
        bytes
    };
    let addr = s.tls_addr();
    let mut stalled: Vec<TcpStream> = s.ns.run(move || {
        (0..STALLED)
            .map(|i| {
                let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
                if i % 2 == 0 {
                    c.write_all(&hello).unwrap();
                }
                c
            })
            .collect()
    });
    // Meanwhile local round trips go on.
    for i in 0..20 {
        local
            .notify("local", "local", "ping", i, json!({"i": i}))
            .unwrap();
        let got = local.recv_type("notify", DEADLINE).unwrap().unwrap();
        assert_eq!(got["flags"], i);
    }
    // Over the bound: closed at once; the others at the timeout.
    let r = server.report_until("every stalled handshake cut", |r| {
        r.tls_counters
            .is_some_and(|c| c.timed_out + c.over_limit == STALLED as u64)
    });
    let c = r.tls_counters.unwrap();
    assert!(c.timed_out >= BOUND as u64, "{c:?}");
    assert!(c.over_limit >= 1, "{c:?}");
    assert_eq!(r.protection.remote_refused, STALLED as u64, "{r:?}");
    // Every stalled peer sees its connection closed.
    for c in &mut stalled {
        c.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut buf = [0u8; 64];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    // And a good peer gets in afterwards.
    let mut ok = s.remote(Some(&s.pki.client)).unwrap();
    ok.register("ecr", "ev", 0).unwrap();
    ok.barrier("ecr");
    assert!(server.log().contains("--tls-max-handshakes"));
    assert!(server.log().contains("--tls-handshake-timeout"));
}
