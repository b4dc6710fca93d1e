//! The configuration of a real `notifysvc` (spec section 4): invalid and
//! unreadable files stop it before any listener opens; rules decide whether
//! TCP listens on loopback or on every interface; `interface` lines
//! without rules are ignored with a warning. Also `listen::plan_tcp` on
//! parsed whitelists.
//!
//! Whether a wildcard listener exists is checked without sending a single
//! packet: binding `127.0.0.2:PORT` ourselves fails only when the server
//! holds `0.0.0.0:PORT` (or that very address).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use common::{Server, DEADLINE};
use nfy_linux::server::listen::{plan_tcp, TcpPlan};
use nfy_linux::server::LinuxWhitelist;
use serde_json::json;

/// True when the server holds a wildcard IPv4 listener on `port`.
fn wildcard_bound(port: u16) -> bool {
    match TcpListener::bind((Ipv4Addr::new(127, 0, 0, 2), port)) {
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => true,
        Err(e) => panic!("cannot probe 127.0.0.2:{port}: {e}"),
    }
}

#[test]
fn an_invalid_line_exits_5_with_its_number_before_listening() {
    let cases = [
        ("in a b c\n# fine\nIN a b c\n", 3),
        ("\n\nout a b\n", 3),
        ("in a b c\nout a b c d\n", 2),
        ("interface 192.168.7.256\n", 1),
        ("in a b c\ninterface\n", 2),
        ("# comment\nin a b c\\\n", 2),
        ("bogus\n", 1),
        ("in a b c\r\n\r\nin a\tb\n", 3),
    ];
    for (text, line) in cases {
        let builder = Server::builder().config_text(text);
        let socket = builder.dir().join("notify.sock");
        let port = common::free_port();
        let (status, log) = builder.port(port).run_to_exit();
        assert_eq!(status.code(), Some(5), "{text:?}: {log}");
        assert!(log.contains(&format!("line {line}")), "{text:?}: {log}");
        assert!(log.contains("notify.cfg"), "names the file: {log}");
        assert!(!socket.exists(), "{text:?}: a socket was created");
        assert!(
            !log.contains("listening"),
            "{text:?}: a listener opened: {log}"
        );
    }
}

#[test]
fn an_unreadable_file_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    // Not UTF-8 at all is a syntax error (5), not unreadable; a directory
    // or a missing file is unreadable (4).
    let missing = dir.path().join("nope.cfg");
    for path in [missing.as_path(), dir.path()] {
        let socket = dir.path().join("s.sock");
        let (status, log) = Server::builder().socket(&socket).config(path).run_to_exit();
        assert_eq!(status.code(), Some(4), "{log}");
        assert!(log.contains("cannot read the configuration file"), "{log}");
        assert!(!socket.exists());
        assert!(!log.contains("listening"), "{log}");
    }
    let binary = dir.path().join("binary.cfg");
    std::fs::write(&binary, [0xff, 0xfe, b'\n']).unwrap();
    let (status, log) = Server::builder().config(&binary).run_to_exit();
    assert_eq!(status.code(), Some(5), "{log}");
    assert!(log.contains("line 1"), "{log}");
}

#[test]
fn rules_open_tcp_on_every_interface() {
    let server = Server::builder()
        .config_text("# remote peers\nin  pos-* * start-*\nout * pos-* *\n")
        .start();
    server.expect_log(&format!(
        "listening on tcp 0.0.0.0:{} (all interfaces)",
        server.port
    ));
    assert!(server.log().contains("2 rule(s), 0 interface line(s)"));
    assert!(wildcard_bound(server.port), "{}", server.log());
    // Loopback peers stay local: no rule applies to them.
    let mut local = server.tcp_client();
    local.register("app", "anything", 0).unwrap();
    local.barrier("app");
    let mut sender = server.tcp_client();
    sender
        .notify("not-pos", "app", "anything", 0, json!({}))
        .unwrap();
    let got = local.recv(DEADLINE).unwrap().unwrap();
    assert_eq!(got["type"], "notify", "{got}");
}

#[test]
fn no_rules_means_loopback_only() {
    for text in ["", "# only comments\n\n   \n"] {
        let server = Server::builder().config_text(text).start();
        server.expect_log(&format!("listening on tcp 127.0.0.1:{}", server.port));
        assert!(!server.log().contains("0.0.0.0"), "{}", server.log());
        assert!(!wildcard_bound(server.port), "{}", server.log());
    }
}

#[test]
fn interface_lines_without_rules_are_ignored_with_a_warning() {
    let server = Server::builder()
        .config_text("interface lo\ninterface 10.231.255.1\n")
        .start();
    server.expect_log("ignoring 2 `interface` line(s)");
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains(" WARN ") && l.contains("ignoring 2 `interface` line(s)")),
        "{log}"
    );
    assert!(log.contains(&format!("listening on tcp 127.0.0.1:{}", server.port)));
    assert!(!log.contains("10.231.255.1:"), "{log}");
    assert!(!wildcard_bound(server.port), "{log}");
}

#[test]
fn interface_lines_with_rules_bind_loopback_and_the_named_addresses() {
    // "lo" resolves to loopback addresses (bound once); an interface that
    // does not exist is a warning, not a failure.
    let server = Server::builder()
        .config_text("in * * *\ninterface lo\ninterface nosuchif9\n")
        .start();
    server.expect_log("interface nosuchif9 has no IP address");
    let log = server.log();
    assert!(
        log.contains(&format!("listening on tcp 127.0.0.1:{}", server.port)),
        "{log}"
    );
    assert!(!wildcard_bound(server.port), "{log}");
    assert_eq!(
        log.matches(&format!("listening on tcp 127.0.0.1:{} ", server.port))
            .count(),
        1,
        "{log}"
    );
}

// ---- listen::plan_tcp on parsed whitelists ------------------------------

fn parse(text: &str) -> Box<LinuxWhitelist> {
    Box::new(LinuxWhitelist::parse(text.as_bytes()).unwrap())
}

fn addrs(plan: &TcpPlan) -> Vec<String> {
    plan.targets.iter().map(|t| t.addr.to_string()).collect()
}

fn fake_resolver(name: &str) -> io::Result<Vec<SocketAddr>> {
    match name {
        "eth7" => Ok(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 5, 5)), 0),
            "[fe80::1%3]:0".parse().unwrap(),
        ]),
        "down0" => Ok(Vec::new()),
        _ => Err(io::Error::other("no such device")),
    }
}

#[test]
fn plan_without_rules_ignores_interfaces() {
    let plan = plan_tcp(&parse("interface eth7\n# x\n"), 5899, &fake_resolver);
    assert_eq!(addrs(&plan), ["127.0.0.1:5899", "[::1]:5899"]);
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(plan.warnings[0].contains("ignoring 1 `interface` line(s)"));
    assert!(plan.targets[0].required && !plan.targets[1].required);
}

#[test]
fn plan_with_rules_and_no_interfaces_is_the_wildcard() {
    for text in ["in * * *\n", "out a b c\n", "in a b c\nout d e f\n"] {
        let plan = plan_tcp(&parse(text), 7, &fake_resolver);
        assert_eq!(addrs(&plan), ["0.0.0.0:7", "[::]:7"], "{text:?}");
        assert!(plan.targets[0].required, "IPv4 wildcard is required");
        assert!(!plan.targets[1].required, "IPv6 is best effort");
        assert!(plan.warnings.is_empty());
    }
}

#[test]
fn plan_with_interfaces_binds_loopback_plus_each_address() {
    let plan = plan_tcp(
        &parse("in * * *\ninterface 10.1.2.3\ninterface eth7\ninterface down0\ninterface gone1\ninterface 10.1.2.3\n"),
        99,
        &fake_resolver,
    );
    assert_eq!(
        addrs(&plan),
        [
            "127.0.0.1:99",
            "[::1]:99",
            "10.1.2.3:99",
            "192.168.5.5:99",
            "[fe80::1%3]:99"
        ]
    );
    // Only loopback IPv4 is required: a network that is not up yet must not
    // stop local IPC.
    let required: Vec<bool> = plan.targets.iter().map(|t| t.required).collect();
    assert_eq!(required, [true, false, false, false, false]);
    assert_eq!(plan.warnings.len(), 2, "{:?}", plan.warnings);
    assert!(plan.warnings[0].contains("down0 has no IP address"));
    assert!(plan.warnings[1].contains("gone1") && plan.warnings[1].contains("no such device"));
}

#[test]
fn plan_with_a_wildcard_interface_line_drops_what_it_covers() {
    let plan = plan_tcp(
        &parse("in * * *\ninterface 0.0.0.0\ninterface 10.1.2.3\n"),
        1,
        &fake_resolver,
    );
    assert_eq!(addrs(&plan), ["[::1]:1", "0.0.0.0:1"]);
}
