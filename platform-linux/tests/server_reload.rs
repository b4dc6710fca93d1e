//! `notifysvc` as a daemon: SIGHUP reloads the whitelist configuration
//! (an invalid or unreadable file keeps the one in force, with an error
//! line naming the file and line), local clients and the socket are
//! untouched, and systemd is told (`NOTIFY_SOCKET`) when the server is
//! ready, reloading and stopping. What the new rules do to remote peers
//! is in `netns_reload.rs` (it needs network namespaces).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;

use common::{expect_kind, Server, DEADLINE};
use nix::sys::signal::Signal;
use serde_json::json;

#[test]
fn sighup_reloads_and_an_invalid_file_keeps_the_configuration_in_force() {
    let mut server = Server::builder()
        .config_text("in * * a\nout * * a\n")
        .start();
    let config = server.dir().join("notify.cfg");
    let mut unix = server.unix_client();
    unix.register("ui", "show", 0).unwrap();
    unix.barrier("ui");
    let mut tcp = server.tcp_client();

    std::fs::write(&config, "in * * a\nin * * b\n# c\ninterface lo\n").unwrap();
    server.reload("reloaded:");
    let log = server.log();
    assert!(
        log.contains(&format!(
            "configuration {} reloaded: 2 rule(s) (1 added, 1 removed), 1 interface line(s) \
             (changed)",
            config.display()
        )),
        "{log}"
    );
    // The same file again: nothing changed, and it says so.
    server.reload("reloaded:");
    assert!(
        server
            .log()
            .contains("reloaded: unchanged, 2 rule(s), 1 interface line(s)"),
        "{}",
        server.log()
    );

    // Invalid: the error names the file and the line; the server goes on.
    std::fs::write(&config, "in * * a\n\nbogus line\n").unwrap();
    server.reload("configuration not reloaded");
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("configuration not reloaded"))
        .unwrap();
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        line.contains("the previous one (2 rule(s)) stays in force"),
        "{line}"
    );
    assert!(line.contains(&config.display().to_string()), "{line}");
    assert!(line.contains("line 3: unknown keyword"), "{line}");
    // Unreadable: likewise.
    std::fs::remove_file(&config).unwrap();
    server.reload("cannot read the configuration file");
    assert_eq!(
        server.log().matches("configuration not reloaded").count(),
        2,
        "{}",
        server.log()
    );

    // Local clients noticed nothing: same connections, same registrations,
    // no filtering; the socket is where it was.
    tcp.notify("anyone", "ui", "show", 1, json!({})).unwrap();
    expect_kind(&mut unix, "notify", "show");
    assert!(server.accepts());
    assert!(server.socket.exists());
    assert!(!server.log().contains("disconnect"), "{}", server.log());
    // And SIGTERM still stops it cleanly.
    let status = server.stop_with(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(!server.socket.exists());
}

/// A datagram socket standing in for systemd's notification socket.
struct FakeSystemd(UnixDatagram);

impl FakeSystemd {
    fn bind(dir: &Path) -> (FakeSystemd, String) {
        let path = dir.join("systemd-notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(DEADLINE)).unwrap();
        (FakeSystemd(sock), path.to_str().unwrap().to_owned())
    }

    /// The next datagram, as its `KEY=VALUE` lines.
    fn next(&self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        let n = self
            .0
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("nothing from notifysvc: {e}"));
        String::from_utf8(buf[..n].to_vec())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn systemd_hears_ready_reloading_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let (systemd, path) = FakeSystemd::bind(dir.path());
    let mut server = Server::builder()
        .config_text("in * * *\n")
        .env("NOTIFY_SOCKET", &path)
        .start();
    let ready = systemd.next();
    assert_eq!(ready[0], "READY=1", "{ready:?}");
    assert!(
        ready[1].starts_with("STATUS=ready; 1 rule(s), ") && ready[1].ends_with("tcp listener(s)"),
        "{ready:?}"
    );

    let config = server.dir().join("notify.cfg");
    std::fs::write(&config, "in * * *\nout * * *\n").unwrap();
    server.signal(Signal::SIGHUP);
    let reloading = systemd.next();
    assert_eq!(reloading[0], "RELOADING=1", "{reloading:?}");
    let usec: u64 = reloading[1]
        .strip_prefix("MONOTONIC_USEC=")
        .unwrap()
        .parse()
        .unwrap();
    assert!(usec > 0);
    assert_eq!(
        systemd.next(),
        [
            "READY=1",
            "STATUS=ready; configuration reloaded: 2 rule(s) (1 added, 0 removed), 0 interface \
             line(s)"
        ]
    );

    std::fs::write(&config, "nonsense\n").unwrap();
    server.signal(Signal::SIGHUP);
    assert_eq!(systemd.next()[0], "RELOADING=1");
    let failed = systemd.next();
    assert_eq!(failed[0], "READY=1");
    assert!(
        failed[1].starts_with("STATUS=reload failed, previous configuration kept: invalid")
            && failed[1].contains("line 1"),
        "{failed:?}"
    );

    let status = server.stop_with(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert_eq!(systemd.next(), ["STOPPING=1", "STATUS=stopping"]);
    assert!(!server.log().contains("WARN"), "{}", server.log());
}

#[test]
fn a_notify_socket_that_fails_is_one_warning_and_nothing_more() {
    let mut server = Server::builder()
        .env("NOTIFY_SOCKET", "relative/path")
        .start();
    server.expect_log("neither an absolute path nor @name");
    server.reload("reloaded:");
    server.reload("reloaded:");
    assert!(server.accepts());
    let status = server.stop_with(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0));
    let log = server.log();
    assert_eq!(
        log.matches("the server goes on without telling systemd")
            .count(),
        1,
        "{log}"
    );
}
