//! What only the Verix-style profile does (spec section 4, "Verix
//! profile"): it ignores any configuration file and accepts local
//! connections only, whatever the arguments; its limits are tighter and
//! the command line may only lower them.
//!
//! The remote peer is real: a network namespace joined by a veth pair
//! (`nfy_tests::netns`), with private addresses from `10.232.0.0/24`
//! ([`PEERS`]).
//! Where namespaces are not permitted these tests print `SKIPPED: …` to
//! stderr and return. With the `linux` feature, the same set-up run against
//! `notifysvc` is the control that shows the peer really is remote and
//! really reaches the server (the Linux whitelist itself is tested in
//! `platform-linux`).

// Test code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/targets.rs"]
mod targets;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use nfy_tests::netns::{Netns, Range};
use nfy_tests::server::{ServerProcess, ServerSpec};
use nfy_tests::wire::{self, JsonClient, Stream};
use nfy_tests::DEADLINE;
use serde_json::json;

/// This test binary's addresses: a /30 per namespace in `10.232.0.0/24`,
/// at most one namespace per test.
const PEERS: Range = Range {
    tag: "nfyv",
    first: Ipv4Addr::new(10, 232, 0, 0),
    blocks: 64,
    per_process: 2,
};

/// A whitelist that would open everything to everyone, on `ip`.
fn open_config(ip: Ipv4Addr) -> String {
    format!("# opens all, on Linux\nin * * *\nout * * *\ninterface {ip}\n")
}

/// A TCP connection to `to` from the local address `from` (a non-loopback
/// address of this host reaching a loopback listener).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> JsonClient {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    s.connect_timeout(&to.into(), DEADLINE).unwrap();
    JsonClient::new(Stream::Tcp(s.into()))
}

/// Tries a TCP connection from inside the namespace.
fn connect_from_peer(ns: &Netns, to: SocketAddr) -> io::Result<TcpStream> {
    ns.run(move || TcpStream::connect_timeout(&to, Duration::from_secs(5)))
}

/// Any CONFIG_FILE — missing, invalid, or one with rules and interface
/// lines — is accepted and ignored with exactly one log line naming it;
/// TCP listens on loopback only.
#[test]
fn any_configuration_file_is_ignored_with_one_line() {
    let t = targets::verix();
    let dir = tempfile::tempdir().unwrap();
    let invalid = dir.path().join("invalid.cfg");
    std::fs::write(&invalid, "in * * *\nthis is not a rule\n").unwrap();
    let missing = dir.path().join("missing.cfg");
    let rules = dir.path().join("rules.cfg");
    std::fs::write(&rules, "in * * *\nout * * *\n").unwrap();
    for path in [&invalid, &missing, &rules] {
        let server = ServerProcess::start_with(
            &t,
            ServerSpec {
                config_path: Some(path.clone()),
                ..ServerSpec::default()
            },
        );
        let lines = server.log.lines();
        let named: Vec<_> = lines
            .iter()
            .filter(|l| l.contains(&*path.to_string_lossy()))
            .collect();
        assert_eq!(named.len(), 1, "{}", server.log.text());
        assert!(
            named[0].contains("the verix profile ignores configuration files"),
            "{}",
            named[0]
        );
        for addr in server.tcp_addrs() {
            assert!(addr.ip().is_loopback(), "{addr}: {}", server.log.text());
        }
        assert!(server.log.count("verix profile, max frame") == 1);
    }
    // The control: the Linux server does read these files.
    #[cfg(feature = "linux")]
    {
        let linux = targets::linux();
        let (status, log) =
            ServerProcess::run_to_exit(&linux, &["--port=0", &invalid.to_string_lossy()]);
        assert_eq!(status.code(), Some(5), "{log}");
        let (status, log) =
            ServerProcess::run_to_exit(&linux, &["--port=0", &missing.to_string_lossy()]);
        assert_eq!(status.code(), Some(4), "{log}");
    }
}

/// A configuration with rules and `interface <peer-facing address>` opens
/// nothing to the remote peer: nothing listens on that address.
#[test]
fn a_configuration_with_rules_opens_nothing_to_a_remote_peer() {
    let Some(ns) = Netns::create_or_skip(
        &PEERS,
        0,
        "a_configuration_with_rules_opens_nothing_to_a_remote_peer",
    ) else {
        return;
    };
    // The control: the peer reaches this host's address.
    let control = TcpListener::bind((ns.host_addr, 0)).unwrap();
    let control_addr = control.local_addr().unwrap();
    connect_from_peer(&ns, control_addr).expect("the peer cannot reach the host at all");
    drop(control);

    let server = ServerProcess::start_with(
        &targets::verix(),
        ServerSpec {
            config: Some(open_config(ns.host_addr)),
            ..ServerSpec::default()
        },
    );
    assert_eq!(
        server.log.count(&ns.host_addr.to_string()),
        0,
        "{}",
        server.log.text()
    );
    let target = SocketAddr::from((ns.host_addr, server.port()));
    match connect_from_peer(&ns, target) {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("the remote peer connected to {target}"),
    }
    // Local clients are served as usual.
    let mut local = JsonClient::unix(server.socket()).unwrap();
    local.register("l", "n", 0).unwrap();
    local.sync("l");
    local.notify("l", "l", "n", 0, json!(1)).unwrap();
    assert_eq!(local.expect_message()["parameter"], 1);
}

/// A remote peer that reaches a loopback listener anyway (here: this
/// host's non-loopback address as the source of a connection to
/// `127.0.0.1`) is refused and logged; on Linux the same connection is
/// admitted as remote.
#[test]
fn a_remote_peer_that_reaches_the_server_is_refused() {
    let Some(ns) = Netns::create_or_skip(
        &PEERS,
        1,
        "a_remote_peer_that_reaches_the_server_is_refused",
    ) else {
        return;
    };
    let server = ServerProcess::start(&targets::verix());
    let mark = server.log.len();
    let mut remote = connect_from(ns.host_addr, server.tcp_v4());
    assert!(
        remote.closed_within(DEADLINE),
        "the remote connection stayed open"
    );
    let line = server.log.expect_after(
        mark,
        &[
            &format!("refusing the remote connection from tcp {}:", ns.host_addr),
            "the verix profile accepts local connections only",
        ],
    );
    assert!(line.contains("WARN"), "{line}");
    assert_eq!(server.log.count("remote)"), 0, "{}", server.log.text());
    // Local connections are unaffected.
    let mut local = JsonClient::tcp(server.tcp_v4()).unwrap();
    local.notify("l", "nobody", "n", 0, json!(0)).unwrap();
    assert_eq!(local.expect_message()["type"], "unicast_error");

    // The control: notifysvc admits the same peer, as remote (given rules:
    // without any, it refuses remote peers too).
    #[cfg(feature = "linux")]
    {
        let linux = ServerProcess::start_with(
            &targets::linux(),
            ServerSpec {
                config: Some("in * * *\n".into()),
                ..ServerSpec::default()
            },
        );
        let mut remote = connect_from(ns.host_addr, linux.tcp_v4());
        linux
            .log
            .expect(&[&format!("connected (tcp {}:", ns.host_addr), "remote)"]);
        remote.send(&wire::register_msg("r", "n", 0)).unwrap();
        assert_eq!(remote.recv_frame(nfy_tests::QUIET).unwrap(), None);
    }
}

/// The profile's frame and queue limits are caps: the command line may
/// lower them, never raise them.
#[test]
fn the_command_line_may_only_lower_the_limits() {
    let t = targets::verix();
    let raised = ServerProcess::start_with(
        &t,
        ServerSpec {
            args: vec!["--max-frame=1M".into(), "--max-queue=64M".into()],
            ..ServerSpec::default()
        },
    );
    raised.log.expect(&[&format!(
        "verix profile, max frame {} bytes, max queue {} bytes",
        nfy_verix_sim::MAX_FRAME,
        nfy_verix_sim::MAX_QUEUE
    )]);
    let mut j = JsonClient::unix(raised.socket()).unwrap();
    let over = nfy_verix_sim::MAX_FRAME + 1;
    j.send_raw(&wire::frame(&wire::notify_of_body_len("j", "j", "n", over)))
        .unwrap();
    assert!(j.sync("j").is_empty());
    raised
        .log
        .expect(&[&format!("skipped a frame with a {over}-byte body")]);

    let lowered = ServerProcess::start_with(
        &t,
        ServerSpec {
            args: vec!["--max-frame=2K".into()],
            ..ServerSpec::default()
        },
    );
    lowered.log.expect(&["verix profile, max frame 2048 bytes"]);
    let mut j = JsonClient::unix(lowered.socket()).unwrap();
    j.register("j", "n", 0).unwrap();
    j.send_raw(&wire::frame(&wire::notify_of_body_len("j", "j", "n", 2048)))
        .unwrap();
    assert_eq!(j.expect_message()["notification"], "n");
    j.send_raw(&wire::frame(&wire::notify_of_body_len("j", "j", "n", 2049)))
        .unwrap();
    assert!(j.sync("j").is_empty());
    lowered
        .log
        .expect(&["skipped a frame with a 2049-byte body"]);
}
