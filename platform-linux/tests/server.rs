//! `notifysvc` as a process: command line, start-up failures and their
//! exit statuses, the one-server rule, signals, and robustness against
//! clients that misbehave at the socket level, and logging.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;
use std::time::Duration;

use common::{frame, FrameReader, Server};
use nix::sys::signal::Signal;

fn notifysvc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_notifysvc"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_and_version() {
    let help = notifysvc(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(text.starts_with("notifysvc "), "{text}");
    for needle in [
        "Usage: notifysvc",
        "--port",
        "--socket",
        "--max-frame",
        "--max-queue",
        "CONFIG_FILE",
        "NFY_LOGMASK",
        "RUST_LOG",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }

    let version = notifysvc(&["--version"]);
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8(version.stdout).unwrap().trim(),
        format!("notifysvc {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_command_line_is_a_usage_error() {
    for args in [&["--bogus"][..], &["--port", "x"], &["a.cfg", "b.cfg"]] {
        let out = notifysvc(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("--help"), "{err}");
    }
}

#[test]
fn protocol_client_builds_the_spec_example_frame() {
    // Spec 5.2: the register example, byte for byte.
    let body = br#"{"notification":"test","priority":1,"to":"xyz","type":"register"}"#;
    assert_eq!(body.len(), 65);
    let bytes = frame(body);
    assert_eq!(
        &bytes[..12],
        &[0x00, 0x4E, 0x46, 0x59, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x00, 0x00]
    );
    let value = common::register_msg("xyz", "test", 1);
    let mut reader = FrameReader::default();
    // Split delivery: a partial frame is not a frame yet.
    reader.push(&common::json_frame(&value)[..20]);
    assert_eq!(reader.next_frame().unwrap(), None);
    reader.push(&common::json_frame(&value)[20..]);
    let parsed = reader.next_frame().unwrap().unwrap();
    assert_eq!(parsed.msg_id, 0);
    assert_eq!(parsed.json(), value);
    assert_eq!(reader.buffered(), 0);
    reader.push(b"junkjunkjunkjunk");
    assert!(reader.next_frame().is_err());
}

#[test]
fn second_instance_on_the_same_port_is_refused() {
    let mut first = Server::start();
    let other_socket = tempfile::tempdir().unwrap();
    let other_socket = other_socket.path().join("other.sock");
    let (status, log) = Server::builder()
        .port(first.port)
        .socket(&other_socket)
        .run_to_exit();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "another notifysvc is running on port {}",
            first.port
        )),
        "{log}"
    );
    assert!(!other_socket.exists(), "the refused server left a socket");
    assert!(first.socket.exists());
    assert!(first.accepts(), "the first server stopped accepting");
}

#[test]
fn second_instance_on_the_same_socket_is_refused_and_does_not_unlink_it() {
    let mut first = Server::start();
    let inode = fs::metadata(&first.socket).unwrap().ino();
    let (status, log) = Server::builder().socket(&first.socket).run_to_exit();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("another notifysvc is running on socket"),
        "{log}"
    );
    let meta = fs::metadata(&first.socket).expect("socket file was removed");
    assert_eq!(meta.ino(), inode, "socket file was replaced");
    assert!(first.accepts(), "the first server stopped accepting");
}

#[test]
fn stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "a closed listener leaves its file");
    assert!(UnixStream::connect(&path).is_err());

    let mut server = Server::builder().socket(&path).start();
    assert!(server.accepts());
    assert!(
        server.log().contains("removing stale socket"),
        "{}",
        server.log()
    );
}

#[test]
fn path_that_is_not_a_socket_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("precious");
    fs::write(&path, "data").unwrap();
    let (status, log) = Server::builder().socket(&path).run_to_exit();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("not a socket"), "{log}");
    assert_eq!(fs::read(&path).unwrap(), b"data");
}

#[test]
fn unreadable_config_exits_4_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.cfg");
    let socket = dir.path().join("s.sock");
    let port = common::free_port();
    let (status, log) = Server::builder()
        .port(port)
        .socket(&socket)
        .config(&missing)
        .run_to_exit();
    assert_eq!(status.code(), Some(4), "{log}");
    assert!(log.contains(&missing.display().to_string()), "{log}");
    assert!(
        !socket.exists(),
        "a listener opened before the config was read"
    );

    // A directory cannot be read as a file either.
    let (status, log) = Server::builder()
        .socket(&socket)
        .config(dir.path())
        .run_to_exit();
    assert_eq!(status.code(), Some(4), "{log}");
}

#[test]
fn sigterm_and_sigint_stop_cleanly_and_remove_the_socket() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let mut server = Server::start();
        let socket = server.socket.clone();
        // A connected client does not keep it from stopping.
        let _client = TcpStream::connect(server.tcp_addr()).unwrap();
        let status = server.stop_with(signal);
        assert_eq!(status.code(), Some(0), "{signal:?}: {}", server.log());
        assert!(!socket.exists(), "{signal:?} left the socket file");
        assert!(server.log().contains("shutting down"), "{}", server.log());
    }
}

#[test]
fn socket_directory_without_permission_exits_3() {
    let holder = Server::builder();
    // The child may run as another user: let it reach the directory.
    fs::set_permissions(holder.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    let locked = holder.dir().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
    let is_root = fs::metadata("/proc/self").unwrap().uid() == 0;

    for socket in [locked.join("notify.sock"), locked.join("sub/notify.sock")] {
        let builder = Server::builder();
        fs::set_permissions(builder.dir(), fs::Permissions::from_mode(0o755)).unwrap();
        // Root ignores directory permissions: run as `nobody` then.
        let builder = if is_root { builder.uid(65534) } else { builder };
        let (status, log) = builder.socket(&socket).run_to_exit();
        assert_eq!(status.code(), Some(3), "{}: {log}", socket.display());
        assert!(log.contains("permission denied"), "{log}");
        assert!(!socket.exists());
    }
}

#[test]
fn nfy_logmask_selects_priorities_and_wins_over_rust_log() {
    // Errors only: the start-up notices are not logged.
    let mut quiet = Server::builder().env("NFY_LOGMASK", "0x08").start();
    assert_eq!(quiet.stop_with(Signal::SIGTERM).code(), Some(0));
    let log = quiet.log();
    assert!(!log.contains(" INFO "), "{log}");
    assert!(!log.contains(" DEBUG "), "{log}");

    // INFO bit set: notices are logged even though RUST_LOG says error.
    let mut loud = Server::builder()
        .env("NFY_LOGMASK", "64")
        .env("RUST_LOG", "error")
        .start();
    assert_eq!(loud.stop_with(Signal::SIGTERM).code(), Some(0));
    let log = loud.log();
    assert!(log.contains(" INFO "), "{log}");
    assert!(log.contains("listening on unix"), "{log}");
    assert!(!log.contains(" DEBUG "), "{log}");
}

#[test]
fn garbage_and_abrupt_disconnects_leave_the_server_accepting() {
    let mut server = Server::start();
    let inputs: Vec<Vec<u8>> = vec![
        b"hello, this is not a frame".to_vec(),
        vec![0u8; 100_000],
        // A header announcing a body far beyond --max-frame.
        vec![0x00, 0x4E, 0x46, 0x59, 0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0],
        // Size field below 4.
        vec![0x00, 0x4E, 0x46, 0x59, 0, 0, 0, 2, 0, 0],
        // A truncated frame.
        frame(br#"{"type":"notify","from":"a","to":"b","notification":"n"}"#)[..30].to_vec(),
        frame(b"{not json"),
        frame(br#"{"type":"register","to":5,"notification":[],"priority":"x"}"#),
        frame(br#"{"type":"what-is-this"}"#),
        frame(&[0xff, 0xfe, 0x00, 0x80]),
    ];
    for input in &inputs {
        for over_tcp in [false, true] {
            // Write errors are fine: the server may close first.
            if over_tcp {
                let mut s = TcpStream::connect(server.tcp_addr()).unwrap();
                let _ = s.write_all(input);
                // Reset instead of an orderly close.
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            } else {
                let mut s = UnixStream::connect(&server.socket).unwrap();
                let _ = s.write_all(input);
            }
        }
    }
    assert!(server.accepts(), "log:\n{}", server.log());
}

#[test]
fn thousands_of_connect_disconnect_cycles() {
    let mut server = Server::start();
    for i in 0..2000 {
        if i % 2 == 0 {
            drop(UnixStream::connect(&server.socket).unwrap());
        } else {
            drop(TcpStream::connect(server.tcp_addr()).unwrap());
        }
    }
    assert!(server.accepts(), "log:\n{}", server.log());
    // And it still stops cleanly.
    assert_eq!(server.stop_with(Signal::SIGTERM).code(), Some(0));
}

/// Makes a running server log a warning (bad input) and a debug line (a
/// connection), then waits for a notification round trip so both were
/// handled before the log is read.
fn provoke_warning_and_debug(server: &Server) {
    let mut c = server.unix_client();
    c.send_raw(&frame(b"{not json")).unwrap();
    c.register("logtest", "n", 0).unwrap();
    assert!(c.barrier("logtest").is_empty());
}

#[test]
fn rust_log_and_nfy_logmask_select_levels() {
    /// Environment, texts that must appear, texts that must not.
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
        &'static [&'static str],
    );
    let cases: [Case; 7] = [
        // Errors only: the warning and everything below are filtered.
        (
            &[("NFY_LOGMASK", "0x08")],
            &[],
            &[" WARN ", " INFO ", " DEBUG "],
        ),
        // Warnings only (bit 4), even with RUST_LOG=debug.
        (
            &[("NFY_LOGMASK", "0x10")],
            &[" WARN "],
            &[" INFO ", " DEBUG "],
        ),
        // Everything.
        (
            &[("NFY_LOGMASK", "0xf8")],
            &[" WARN ", " INFO ", " DEBUG "],
            &[],
        ),
        (
            &[("RUST_LOG", "debug")],
            &[" WARN ", " INFO ", " DEBUG "],
            &[],
        ),
        (&[("RUST_LOG", "warn")], &[" WARN "], &[" INFO ", " DEBUG "]),
        // Neither set (empty counts as unset): info.
        (&[("RUST_LOG", "")], &[" WARN ", " INFO "], &[" DEBUG "]),
        // Per target: accepting at debug, the rest (the listeners', the
        // start-up notices, the event loop's closes) at warn.
        (
            &[("RUST_LOG", "warn,nfy_linux::server::accept=debug")],
            &[" WARN ", " DEBUG ", "connected (unix socket"],
            &["listening on", " ready (", "closed by the peer"],
        ),
    ];
    for (env, present, absent) in cases {
        let mut builder = Server::builder();
        for (k, v) in env {
            builder = builder.env(k, v);
        }
        let mut server = builder.start();
        provoke_warning_and_debug(&server);
        assert_eq!(server.stop_with(Signal::SIGTERM).code(), Some(0));
        let log = server.log();
        for level in present {
            assert!(log.contains(level), "{env:?}: no {level:?} in\n{log}");
        }
        for level in absent {
            assert!(!log.contains(level), "{env:?}: {level:?} in\n{log}");
        }
    }
}

#[test]
fn a_bad_nfy_logmask_falls_back_to_rust_log_with_a_warning() {
    let mut server = Server::builder()
        .env("NFY_LOGMASK", "lots")
        .env("RUST_LOG", "debug")
        .start();
    provoke_warning_and_debug(&server);
    assert_eq!(server.stop_with(Signal::SIGTERM).code(), Some(0));
    let log = server.log();
    assert!(
        log.contains("NFY_LOGMASK=\"lots\" is not a number"),
        "{log}"
    );
    assert!(log.contains(" DEBUG "), "{log}");
}

#[test]
fn log_lines_name_the_program_pid_level_and_connection() {
    let mut server = Server::start();
    provoke_warning_and_debug(&server);
    assert_eq!(server.stop_with(Signal::SIGTERM).code(), Some(0));
    let log = server.log();
    let warn = log
        .lines()
        .find(|l| l.contains(" WARN "))
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    // 2025-03-01T12:00:00.123Z notifysvc[4242] WARN  #3.0: bad message ...
    assert!(warn.contains("Z notifysvc["), "{warn}");
    assert!(warn.contains("bad message ignored"), "{warn}");
    let message = warn.split(" WARN ").nth(1).unwrap().trim_start();
    assert!(message.starts_with('#'), "names the connection: {warn}");
    assert!(log.contains("stopped:"), "shutdown summary: {log}");
}

/// True when this test runs as root (it may then run processes as
/// `nobody`, uid and gid 65534).
fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `nfy status` against `socket`, run as uid/gid 65534 (`nobody`): whether
/// it reached the server.
fn nobody_can_connect(socket: &std::path::Path) -> bool {
    use std::os::unix::process::CommandExt;
    let out = Command::new(env!("CARGO_BIN_EXE_nfy"))
        .args([
            "--socket",
            socket.to_str().unwrap(),
            "--port",
            "1",
            "status",
        ])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    out.status.success()
}

#[test]
fn socket_is_0660_in_the_socket_group_and_its_new_directory_0750() {
    let gid = nix::unistd::getegid().as_raw();
    let builder = Server::builder()
        .arg("--socket-group")
        .arg(&gid.to_string());
    let socket = builder.dir().join("run").join("notify.sock");
    let server = builder.socket(&socket).start();
    let meta = fs::symlink_metadata(&server.socket).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, gid));
    let dir = fs::metadata(socket.parent().unwrap()).unwrap();
    assert_eq!((dir.mode() & 0o777, dir.gid()), (0o750, gid));
    let log = server.log();
    assert!(
        log.contains(&format!("(mode 660, group {gid})")),
        "the log names mode and group: {log}"
    );
    // A client's credentials are logged when it connects.
    let _client = UnixStream::connect(&server.socket).unwrap();
    let uid = nix::unistd::geteuid().as_raw();
    let line = format!(
        "connected (unix socket, pid {} uid {uid} gid ",
        std::process::id()
    );
    assert!(server.wait_log_count(&line, 1), "{}", server.log());
}

#[test]
fn without_a_socket_group_the_socket_is_0660_and_new_directories_0700() {
    let builder = Server::builder();
    let socket = builder.dir().join("run").join("notify.sock");
    let server = builder.socket(&socket).start();
    let meta = fs::symlink_metadata(&server.socket).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), nix::unistd::getegid().as_raw());
    let dir = fs::metadata(socket.parent().unwrap()).unwrap();
    assert_eq!(dir.mode() & 0o777, 0o700);
}

#[test]
fn an_unknown_socket_group_is_a_usage_error_before_anything_opens() {
    let builder = Server::builder()
        .arg("--socket-group")
        .arg("no-such-group-nfy");
    let socket = builder.dir().join("notify.sock");
    let (status, log) = builder.socket(&socket).run_to_exit();
    assert_eq!(status.code(), Some(64), "{log}");
    assert!(log.contains("no such group"), "{log}");
    assert!(!socket.exists());
}

#[test]
fn only_the_owner_and_the_socket_group_may_connect() {
    if !is_root() {
        common::skip(
            "only_the_owner_and_the_socket_group_may_connect",
            "needs root to run a client as another user",
        );
        return;
    }
    // The directory lets everybody through: the socket's mode decides.
    let open_dir = |b: &common::ServerBuilder| {
        fs::set_permissions(b.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    };
    // Owner root, group root: nobody (uid/gid 65534) is refused.
    let builder = Server::builder();
    open_dir(&builder);
    let server = builder.start();
    assert!(!nobody_can_connect(&server.socket));
    // Socket group 65534: nobody, a member, gets in.
    let builder = Server::builder().arg("--socket-group").arg("65534");
    open_dir(&builder);
    let server = builder.start();
    assert!(nobody_can_connect(&server.socket));
    // A server may not give its socket to a group it is not in: exit 3.
    let builder = Server::builder().uid(65534).arg("--socket-group").arg("0");
    open_dir(&builder);
    let (status, log) = builder.run_to_exit();
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(log.contains("permission denied"), "{log}");
}
