//! TLS on loopback (issue 16): what needs no remote peer. Certificates
//! are made by the test (`nfy_test_support::tls`); the server is a real
//! `notifysvc`; the TLS peers are the raw JSON-protocol client over
//! rustls, our client library and the `nfy` tool. The remote cases (the
//! whitelist, refusals from a remote address, `--no-plain-remote`, stalled
//! handshakes) are in `netns_tls.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use common::{free_port, JsonClient, Server, ServerBuilder, DEADLINE};
use nfy_linux::client::ServerAddr;
use nfy_test_support::tls::{client_config, Ca, Pki, Role, Validity};
use serde_json::json;

/// A server with TLS on a free loopback port (`tls_port` in the result),
/// mutual TLS with `pki`'s CA.
fn server(builder: ServerBuilder, pki: &Pki, tls_port: u16) -> Server {
    builder
        .arg("--tls-cert")
        .arg(pki.server.cert.to_str().unwrap())
        .arg("--tls-key")
        .arg(pki.server.key.to_str().unwrap())
        .arg("--tls-client-ca")
        .arg(pki.ca.pem.to_str().unwrap())
        .arg("--tls-port")
        .arg(&tls_port.to_string())
        .start()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn a_tls_peer_on_loopback_exchanges_notifications_and_shows_in_status() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), &["127.0.0.1"], "lane-1");
    let tls_port = free_port();
    let server = server(Server::builder(), &pki, tls_port);
    let config = client_config(&pki.ca.pem, Some(&pki.client));
    let stream = TcpStream::connect(loopback(tls_port)).unwrap();
    let mut peer = JsonClient::tls(stream, config, "127.0.0.1").unwrap();
    peer.register("ecr", "show", 0).unwrap();
    peer.barrier("ecr");
    let mut local = JsonClient::unix(&server.socket).unwrap();
    local.register("pay", "shown", 0).unwrap();
    local.barrier("pay");
    local
        .notify("pay", "ecr", "show", 0, json!({"text": "Insert card"}))
        .unwrap();
    let got = peer.recv_type("notify", DEADLINE).unwrap().unwrap();
    assert_eq!(got["parameter"]["text"], "Insert card");
    peer.notify("ecr", "pay", "shown", 0, json!({"ok": true}))
        .unwrap();
    let got = local.recv_type("notify", DEADLINE).unwrap().unwrap();
    assert_eq!(
        (got["from"].as_str(), got["parameter"]["ok"].as_bool()),
        (Some("ecr"), Some(true))
    );
    // nfy status: the TLS connection, local (loopback), with its subject.
    let r = server.report();
    assert_eq!(r.tls.len(), 1, "{r:?}");
    let tls = &r.tls[0];
    assert_eq!(tls.subject.as_deref(), Some("O=nfy tests, CN=lane-1"));
    let conn = r.connections.iter().find(|c| c.id == tls.conn).unwrap();
    assert!(!conn.remote, "a TLS peer from loopback is local: {conn:?}");
    assert_eq!(r.tls_counters.unwrap().accepted, 1);
    assert!(server
        .log()
        .contains("client certificate O=nfy tests, CN=lane-1"));
}

#[test]
fn refused_tls_peers_are_counted_with_the_reason_logged() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), &["127.0.0.1"], "lane-1");
    let other = Ca::new(dir.path(), "other-ca", "another CA");
    let stranger = other.issue(
        dir.path(),
        "stranger",
        "stranger",
        &[],
        Role::Client,
        Validity::Current,
    );
    let expired = pki.ca.issue(
        dir.path(),
        "old",
        "old",
        &[],
        Role::Client,
        Validity::Expired,
    );
    let tls_port = free_port();
    let server = server(Server::builder(), &pki, tls_port);
    let attempts = [
        client_config(&pki.ca.pem, None),
        client_config(&pki.ca.pem, Some(&stranger)),
        client_config(&pki.ca.pem, Some(&expired)),
    ];
    for config in attempts {
        let stream = TcpStream::connect(loopback(tls_port)).unwrap();
        if let Ok(mut peer) = JsonClient::tls(stream, config, "127.0.0.1") {
            // TLS 1.3: the refusal comes after the client's side is done.
            let _ = peer.register("x", "y", 0);
            assert!(peer.closed_within(DEADLINE), "not refused");
        }
    }
    // Plain TCP to the TLS port.
    let mut plain = JsonClient::tcp(loopback(tls_port)).unwrap();
    plain.register("x", "y", 0).unwrap();
    assert!(plain.closed_within(DEADLINE), "plain TCP not refused");
    let r = server.report_until("4 failed handshakes", |r| {
        r.tls_counters.is_some_and(|c| c.failed == 4)
    });
    assert_eq!(r.protection.refused, 4, "{r:?}");
    assert_eq!(
        r.protection.remote_refused, 0,
        "loopback peers are local: {r:?}"
    );
    assert!(r.tls.is_empty(), "{r:?}");
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

/// Writes a file and returns its path as text.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn unusable_tls_files_exit_with_the_configuration_file_status_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), &["127.0.0.1"], "lane-1");
    let cert = pki.server.cert.to_str().unwrap().to_owned();
    let key = pki.server.key.to_str().unwrap().to_owned();
    let missing = dir.path().join("missing.pem").to_str().unwrap().to_owned();
    let junk = write(dir.path(), "junk.pem", "not PEM at all\n");
    let other_key = write(
        dir.path(),
        "other.key",
        &rcgen::KeyPair::generate().unwrap().serialize_pem(),
    );
    let cases: [(&[&str], &str); 5] = [
        (&["--tls-cert", &missing, "--tls-key", &key], &missing),
        (&["--tls-cert", &junk, "--tls-key", &key], &junk),
        (&["--tls-cert", &cert, "--tls-key", &junk], &junk),
        (
            &[
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-client-ca",
                &junk,
            ],
            &junk,
        ),
        (&["--tls-cert", &cert, "--tls-key", &other_key], &other_key),
    ];
    for (args, named) in cases {
        let mut b = Server::builder();
        for a in args {
            b = b.arg(a);
        }
        let (status, log) = b.run_to_exit();
        assert_eq!(status.code(), Some(4), "{args:?}: {log}");
        assert!(
            log.contains(named),
            "{args:?}: the message does not name {named}: {log}"
        );
    }
    // The good set starts.
    let _ok = server(Server::builder(), &pki, free_port());
}

/// The TLS address of `server` for our library, presenting `client`.
fn tls_addr(
    pki: &Pki,
    tls_port: u16,
    client: Option<&nfy_test_support::tls::Issued>,
) -> ServerAddr {
    let settings = nfy_linux::client::TlsSettings::from_files(
        &pki.ca.pem,
        client.map(|c| (c.cert.as_path(), c.key.as_path())),
        "127.0.0.1",
    )
    .unwrap();
    ServerAddr::tls(loopback(tls_port), settings)
}

#[test]
fn our_library_and_nfy_speak_tls() {
    use nfy_linux::client::{Client, Error};
    use std::sync::mpsc;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), &["127.0.0.1"], "lane-1");
    let tls_port = free_port();
    let server = server(Server::builder(), &pki, tls_port);
    // A receiver over TLS, a sender on the Unix socket, answers back.
    let remote = Client::connect_to(tls_addr(&pki, tls_port, Some(&pki.client))).unwrap();
    remote.set_app_id("ecr").unwrap();
    let (tx, rx) = mpsc::channel();
    let answer = remote.clone();
    let _reg = remote
        .register("show", 0, move |d| {
            tx.send(d.parameter.to_owned()).unwrap();
            answer.notify_raw("pay", "shown", d.parameter).unwrap();
        })
        .unwrap();
    remote.sync().unwrap();
    let local = Client::connect_to(ServerAddr::unix(&server.socket)).unwrap();
    local.set_app_id("pay").unwrap();
    let (back_tx, back_rx) = mpsc::channel();
    let _back = local
        .register("shown", 0, move |d| {
            back_tx.send(d.parameter.to_owned()).unwrap()
        })
        .unwrap();
    // Many, of all sizes: records are cut and joined differently than
    // frames.
    let mut sent = Vec::new();
    for i in 0..200 {
        let parameter = json!({"i": i, "pad": "x".repeat((i * 97) % 20_000)}).to_string();
        local.notify_raw("ecr", "show", &parameter).unwrap();
        sent.push(parameter);
    }
    for expected in &sent {
        assert_eq!(&rx.recv_timeout(DEADLINE).unwrap(), expected);
        assert_eq!(&back_rx.recv_timeout(DEADLINE).unwrap(), expected);
    }
    let status = remote.status().unwrap();
    assert!(status.local_connections >= 2, "{status:?}");

    // nfy over TLS: send, and status (local: the peer is on loopback).
    let nfy = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nfy"))
            .args(["--server", &format!("127.0.0.1:{tls_port}")])
            .args(["--tls-ca", pki.ca.pem.to_str().unwrap()])
            .args(["--tls-cert", pki.client.cert.to_str().unwrap()])
            .args(["--tls-key", pki.client.key.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = nfy(&[
        "send",
        "--from",
        "office",
        "ecr",
        "show",
        r#"{"via":"nfy"}"#,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), r#"{"via":"nfy"}"#);
    let (code, out, err) = nfy(&["status"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("tls 127.0.0.1:"), "{out}");
    assert!(out.contains("tls: O=nfy tests, CN=lane-1"), "{out}");
    assert!(out.contains("tls handshakes:"), "{out}");
    let (code, out, err) = nfy(&["status", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["tls"]["accepted"].as_u64().unwrap() >= 2, "{v}");
    let ecr = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["app_id"] == "ecr")
        .unwrap();
    assert_eq!(
        (ecr["transport"].as_str(), ecr["tls_subject"].as_str()),
        (Some("tls"), Some("O=nfy tests, CN=lane-1"))
    );

    // Without a client certificate: refused, and said so.
    let e = Client::connect_to(tls_addr(&pki, tls_port, None)).unwrap_err();
    assert!(matches!(e, Error::Tls(_)), "{e:?}");
    assert!(e.to_string().contains("refused"), "{e}");
    // A server certificate from a CA we do not trust: refused by us.
    let other = Ca::new(dir.path(), "other-ca", "another CA");
    let settings =
        nfy_linux::client::TlsSettings::from_files(&other.pem, None, "127.0.0.1").unwrap();
    let e = Client::connect_to(ServerAddr::tls(loopback(tls_port), settings)).unwrap_err();
    assert!(e.to_string().contains("certificate is not accepted"), "{e}");
    // The wrong name.
    let settings =
        nfy_linux::client::TlsSettings::from_files(&pki.ca.pem, None, "terminal.example").unwrap();
    let e = Client::connect_to(ServerAddr::tls(loopback(tls_port), settings)).unwrap_err();
    assert!(matches!(e, Error::Tls(_)), "{e:?}");
    // nfy says which file is wrong.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nfy"))
        .args(["--server", &format!("127.0.0.1:{tls_port}")])
        .args(["--tls-ca", "/nonexistent/ca.pem", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ca.pem"));
}
