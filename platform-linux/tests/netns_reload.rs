//! SIGHUP against real remote peers: each test creates a network
//! namespace joined to the host by a veth pair (a /30 in `10.236.0.0/16`:
//! `.1` on the host, `.2` inside), starts `notifysvc` with a configuration
//! file, connects remote peers from a thread inside the namespace, then
//! rewrites the file and sends SIGHUP: the new rules apply to the remote
//! connections already open and to new ones, an invalid file keeps the
//! rules in force, local clients are untouched, and a reload never lets a
//! remote peer in where the new file would not listen.
//!
//! Traffic only goes to loopback and to the namespace addresses made here.
//! Without the right to create namespaces (not root, no CAP_NET_ADMIN)
//! every test prints `SKIPPED: ...` and passes. The namespace and the veth
//! pair are removed on drop, also when a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{expect_kind as expect, JsonClient, Server, DEADLINE};
use nfy_test_support::netns::{Netns, Range};
use nix::sys::signal::Signal;
use serde_json::json;

/// This test binary's addresses: a /30 per namespace in `10.236.0.0/16`,
/// at most one namespace per test.
const RANGE: Range = Range {
    tag: "nfyr",
    first: Ipv4Addr::new(10, 236, 0, 0),
    blocks: 1 << 14,
    per_process: 4,
};

/// Rules every configuration here holds: the remote app "rem" may talk to
/// itself, for [`JsonClient::barrier`].
const SYNC: &str = "in rem rem barrier-*\nout rem rem barrier-*\n";

/// A remote peer: a JSON client connected from inside the namespace.
fn remote(ns: &Netns, server: &Server) -> JsonClient {
    let stream = ns.connect(SocketAddr::from((ns.host_addr, server.port)));
    JsonClient::from_tcp(stream)
}

/// Rewrites the server's configuration file.
fn configure(server: &Server, text: &str) {
    std::fs::write(server.dir().join("notify.cfg"), text).unwrap();
}

/// `remote` sends `dropped` then `passes` to the local app "local", which
/// must receive `passes` first: `dropped` was not let in.
fn only_second_gets_in(
    remote: &mut JsonClient,
    local: &mut JsonClient,
    dropped: &str,
    passes: &str,
) {
    remote
        .notify("rem", "local", dropped, 0, json!({}))
        .unwrap();
    remote.notify("rem", "local", passes, 0, json!({})).unwrap();
    expect(local, "notify", passes);
}

/// `sender` (local) sends `blocked` then `passes` to the remote app "rem":
/// `blocked` comes back to it as a unicast error, and `passes` is the
/// next thing the remote peer receives.
fn only_second_goes_out(
    sender: &mut JsonClient,
    remote: &mut JsonClient,
    blocked: &str,
    passes: &str,
) {
    sender.notify("loc", "rem", blocked, 0, json!({})).unwrap();
    expect(sender, "unicast_error", blocked);
    sender.notify("loc", "rem", passes, 0, json!({})).unwrap();
    expect(remote, "notify", passes);
}

#[test]
fn new_rules_apply_to_open_and_new_remote_connections_and_local_ones_are_untouched() {
    let test = "new_rules_apply_to_open_and_new_remote_connections_and_local_ones_are_untouched";
    let Some(ns) = Netns::create_or_skip(&RANGE, 0, test) else {
        return;
    };
    let a_rules = format!("{SYNC}in rem local a-*\nout * rem a-*\n");
    let b_rules = format!("{SYNC}in rem local b-*\nout * rem b-*\n");
    let mut server = Server::builder().config_text(&a_rules).start();
    let mut local = server.unix_client();
    for id in ["a-2", "b-2"] {
        local.register("local", id, 0).unwrap();
    }
    local.barrier("local");
    let mut loopback = server.tcp_client();
    let mut r1 = remote(&ns, &server);
    for id in ["a-1", "b-1"] {
        r1.register("rem", id, 0).unwrap();
    }
    r1.barrier("rem");
    only_second_gets_in(&mut r1, &mut local, "b-2", "a-2");
    only_second_goes_out(&mut loopback, &mut r1, "b-1", "a-1");

    configure(&server, &b_rules);
    server.reload("reloaded: 4 rule(s) (2 added, 2 removed), 0 interface line(s)");
    // The open remote connection: what it sends and receives follows the
    // new rules; it is not disconnected, its registrations are kept.
    only_second_gets_in(&mut r1, &mut local, "a-2", "b-2");
    only_second_goes_out(&mut loopback, &mut r1, "a-1", "b-1");
    // A new one gets the new rules too.
    let mut r2 = remote(&ns, &server);
    r2.barrier("rem");
    only_second_gets_in(&mut r2, &mut local, "a-2", "b-2");
    // Local clients are not filtered, whatever the rules say.
    loopback.notify("x", "local", "a-2", 0, json!({})).unwrap();
    expect(&mut local, "notify", "a-2");

    // An invalid file: logged with its line, the B rules stay in force.
    configure(&server, &format!("{SYNC}in rem local a-*\nbogus\n"));
    server.reload("configuration not reloaded");
    let path = server.dir().join("notify.cfg").display().to_string();
    assert!(
        server.log().lines().any(|l| l.contains("ERROR")
            && l.contains("configuration not reloaded")
            && l.contains(&path)
            && l.contains("line 4")),
        "{}",
        server.log()
    );
    only_second_gets_in(&mut r1, &mut local, "a-2", "b-2");
    only_second_goes_out(&mut loopback, &mut r1, "a-1", "b-1");
    // Unreadable: the same.
    std::fs::remove_file(server.dir().join("notify.cfg")).unwrap();
    server.reload("cannot read the configuration file");
    only_second_gets_in(&mut r2, &mut local, "a-2", "b-2");

    assert!(!server.log().contains("disconnecting"), "{}", server.log());
    assert!(server.accepts() && server.socket.exists());
    assert_eq!(server.stop_with(Signal::SIGTERM).code(), Some(0));
    drop((r1, r2));
    drop(ns);
}

#[test]
fn a_configuration_without_rules_closes_remote_access_and_rules_open_it_again() {
    let test = "a_configuration_without_rules_closes_remote_access_and_rules_open_it_again";
    let Some(ns) = Netns::create_or_skip(&RANGE, 1, test) else {
        return;
    };
    let rules = format!("{SYNC}out * rem ev\n");
    let server = Server::builder().config_text(&rules).start();
    let mut local = server.unix_client();
    local.register("local", "ev", 0).unwrap();
    local.barrier("local");
    let mut r1 = remote(&ns, &server);
    r1.register("rem", "ev", 0).unwrap();
    r1.barrier("rem");

    configure(&server, "# no rules: local clients only\n");
    server.reload("reloaded:");
    assert!(r1.closed_within(DEADLINE), "{}", server.log());
    server.expect_log("remote access closed (1 remote connection(s) disconnected)");
    // A new remote peer reaches the listener (bound at start to every
    // interface) and is closed at once.
    let mut r2 = remote(&ns, &server);
    assert!(r2.closed_by_server(DEADLINE), "{}", server.log());
    server.expect_log(&format!(
        "refusing the remote connection from tcp {}:",
        ns.peer_addr
    ));
    server.expect_log("the configuration has no in/out rules (remote access closed)");
    // Local clients go on.
    let mut sender = server.tcp_client();
    sender.notify("loc", "local", "ev", 0, json!({})).unwrap();
    expect(&mut local, "notify", "ev");

    configure(&server, &rules);
    server.reload("reloaded:");
    let mut r3 = remote(&ns, &server);
    r3.register("rem", "ev", 0).unwrap();
    r3.barrier("rem");
    sender.notify("loc", "rem", "ev", 0, json!({})).unwrap();
    expect(&mut r3, "notify", "ev");
    drop((r1, r2, r3));
    drop(ns);
}

#[test]
fn interface_lines_narrow_where_remote_peers_get_in() {
    let test = "interface_lines_narrow_where_remote_peers_get_in";
    let Some(ns) = Netns::create_or_skip(&RANGE, 2, test) else {
        return;
    };
    let rules = format!("{SYNC}out * rem ev\n");
    // Rules without interface lines: every interface.
    let server = Server::builder().config_text(&rules).start();
    server.expect_log(&format!("listening on tcp 0.0.0.0:{}", server.port));
    let mut r1 = remote(&ns, &server);
    r1.barrier("rem");

    // Loopback only named: the namespace's address is not let in any more.
    configure(&server, &format!("{rules}interface 127.0.0.1\n"));
    server.reload("reloaded:");
    assert!(r1.closed_within(DEADLINE), "{}", server.log());
    server.expect_log(&format!(
        "reached {}, where the configuration no longer lets remote peers in",
        ns.host_addr
    ));
    let mut r2 = remote(&ns, &server);
    assert!(r2.closed_by_server(DEADLINE), "{}", server.log());
    server.expect_log(&format!("does not let remote peers in on {}", ns.host_addr));

    // Naming the host's end of the veth pair lets remote peers in there
    // again (the wildcard listener covers it: nothing to open).
    configure(&server, &format!("{rules}interface {}\n", ns.host_if()));
    server.reload("reloaded:");
    let mut r3 = remote(&ns, &server);
    r3.register("rem", "ev", 0).unwrap();
    r3.barrier("rem");
    let mut sender = server.unix_client();
    sender.notify("loc", "rem", "ev", 0, json!({})).unwrap();
    expect(&mut r3, "notify", "ev");
    assert!(
        !server.log().contains("not listening on tcp"),
        "{}",
        server.log()
    );
    drop((r1, r2, r3));
    drop(ns);
}

#[test]
fn rules_where_there_were_none_need_a_restart_to_listen_remotely() {
    let test = "rules_where_there_were_none_need_a_restart_to_listen_remotely";
    let Some(ns) = Netns::create_or_skip(&RANGE, 3, test) else {
        return;
    };
    // No rules: loopback only.
    let server = Server::builder().config_text("# nothing yet\n").start();
    configure(&server, &format!("{SYNC}in * * *\n"));
    server.reload("reloaded:");
    server.expect_log(
        "not listening on tcp 0.0.0.0 (all interfaces) although the configuration asks for it: \
         listeners are opened at start only; restart notifysvc to listen there",
    );
    // Nothing listens where the remote peer would connect: refused by the
    // kernel (other errors: the veth link is not up yet, try again).
    let to = SocketAddr::from((ns.host_addr, server.port));
    let refused = ns.run(move || {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match TcpStream::connect_timeout(&to, Duration::from_secs(2)) {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return true,
                Ok(_) => return false,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(_) => return false,
            }
        }
    });
    assert!(refused, "{}", server.log());
    drop(ns);
}
