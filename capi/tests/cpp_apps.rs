//! Terminal apps written in C++ against `<ipc/notify.h>`, compiled with
//! g++ and linked to libvfiipc, talking through a real `notifysvc`: to
//! each other, to Rust apps both ways, through server restarts and
//! crashes; every function and result code of the header.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::sync::mpsc;
use std::time::Instant;

use common::{cpp, no_server_env, Program, Server, DEADLINE};
use nfy_linux::client::{Client, Delivery};
use serde_json::{json, Value};

/// A Rust app on `server` with this app ID.
fn rust_app(server: &Server, app_id: &str) -> Client {
    let client = Client::connect_to(server.addr()).unwrap();
    client.set_app_id(app_id).unwrap();
    client
}

/// A received notification, owned.
#[derive(Debug, Clone, PartialEq)]
struct Got {
    from: String,
    to: String,
    notification: String,
    parameter: Value,
    flags: u32,
}

impl Got {
    fn of(d: &Delivery<'_>) -> Got {
        Got {
            from: d.from.into(),
            to: d.to.into(),
            notification: d.notification.into(),
            parameter: d.parameter_json(),
            flags: d.flags,
        }
    }
}

#[test]
fn two_cpp_apps_exchange_notifications() {
    let server = Server::start();
    let mut pong = Program::start(&cpp("pong_app"), &[], &server.env());
    pong.expect_line("ready");
    let out = common::run_ok(&cpp("ping_app"), &["50", "ponger", "quit"], &server.env());
    assert!(out.contains("done"), "{out}");
    assert!(pong.success().contains("bye"));
}

#[test]
fn a_cpp_app_answers_a_rust_app() {
    let server = Server::start();
    let mut pong = Program::start(&cpp("pong_app"), &[], &server.env());
    pong.expect_line("ready");

    let rust = rust_app(&server, "rusty");
    let (tx, rx) = mpsc::channel();
    let _reg = rust
        .register("pong", 0, move |d| tx.send(Got::of(d)).unwrap())
        .unwrap();
    let params = [
        json!({"seq": 0, "text": "plain"}),
        json!({"seq": 1, "text": "ünïcødé ☃ 😀", "n": i64::MAX, "m": i64::MIN}),
        json!({"seq": 2, "text": "\"quotes\" \\ \n\t\u{1}\u{7f}", "f": 0.1, "e": 1e300}),
        json!({"seq": 3, "text": "", "deep": [[[{"a": [null, true, false, {}]}]]], "neg": -0.5}),
        json!({"seq": 4, "text": "ok", "big": 9_007_199_254_740_993_i64, "list": [1, 2.5, "3"]}),
    ];
    for (i, p) in params.iter().enumerate() {
        let flags = u32::try_from(i).unwrap() * 1000;
        rust.notify_with(
            "ponger",
            "ping",
            p,
            nfy_linux::client::NotifyOptions { flags, from: None },
        )
        .unwrap();
    }
    for (i, p) in params.iter().enumerate() {
        let got = rx.recv_timeout(DEADLINE).unwrap();
        assert_eq!(got.from, "ponger");
        assert_eq!(got.to, "rusty");
        assert_eq!(got.notification, "pong");
        assert_eq!(got.flags, u32::try_from(i).unwrap() * 1000);
        let reply = &got.parameter;
        assert_eq!(reply["seq"], p["seq"]);
        assert_eq!(reply["echo"], p["text"]);
        assert_eq!(reply["by"], "ponger");
        assert_eq!(reply["to"], "ponger");
        // The whole parameter, through JSObject and back, unchanged.
        assert_eq!(&reply["param"], p, "reply {reply}");
    }
    rust.notify("ponger", "quit", &json!(null)).unwrap();
    assert!(pong.success().contains("bye"));
}

#[test]
fn a_rust_app_answers_a_cpp_app() {
    let server = Server::start();
    let rust = rust_app(&server, "ponger");
    let replier = rust.clone();
    let _reg = rust
        .register("ping", 0, move |d| {
            let p = d.parameter_json();
            let reply = json!({
                "seq": p["seq"],
                "echo": p["text"],
                "param": p,
                "by": "ponger",
                "to": d.to,
            });
            replier
                .notify_with(
                    d.from,
                    "pong",
                    &reply,
                    nfy_linux::client::NotifyOptions {
                        flags: d.flags,
                        from: None,
                    },
                )
                .unwrap();
        })
        .unwrap();
    let out = common::run_ok(&cpp("ping_app"), &["20", "ponger"], &server.env());
    assert!(out.contains("done"), "{out}");
    rust.close();
}

#[test]
fn every_function_and_result_code() {
    let server = Server::start();
    let bad = server.dir.path().join("bad.cfg");
    fs::write(&bad, "# a whitelist\nin pos-* payment\n").unwrap();
    let missing = server.dir.path().join("missing.cfg");
    let mut tour = Program::start(
        &cpp("api_tour"),
        &[bad.to_str().unwrap(), missing.to_str().unwrap()],
        &server.env(),
    );
    assert!(tour.success().contains("tour ok"));
    // The library logged what went wrong, and the callback's exception.
    let log = tour.stderr.text();
    assert!(log.contains("line 2"), "{log}");
    assert!(log.contains("missing.cfg"), "{log}");
    assert!(log.contains("callback for \"throw\" failed"), "{log}");
}

#[test]
fn calls_without_a_server_return_err_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::run_ok(&cpp("offline"), &[], &no_server_env(dir.path()));
    assert!(out.contains("offline ok"), "{out}");
}

#[test]
fn the_in_process_server_serves_apps() {
    let dir = tempfile::tempdir().unwrap();
    let env = no_server_env(dir.path());
    // No configuration argument: the default locations, which hold
    // nothing here: local clients only.
    let mut server = Program::start(&cpp("server_app"), &[], &env);
    server
        .stderr
        .wait_after(0, &[" ready ("], DEADLINE)
        .unwrap_or_else(|| panic!("the in-process server did not start\n{}", server.output()));
    let mut pong = Program::start(&cpp("pong_app"), &[], &env);
    pong.expect_line("ready");
    let out = common::run_ok(&cpp("ping_app"), &["10", "ponger", "quit"], &env);
    assert!(out.contains("done"), "{out}");
    assert!(pong.success().contains("bye"));
    // A second one refuses: ERR_SERVER.
    let out = common::run_ok(&cpp("server_app"), &[], &env);
    assert!(out.contains("result -1"), "{out}");
    // Only a signal ends the first (the original returns only on error).
    assert!(server.stop().is_some());
}

#[test]
fn the_in_process_server_without_permission_returns_err_permission() {
    let holder = tempfile::tempdir().unwrap();
    fs::set_permissions(holder.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let locked = holder.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
    let is_root = nix::unistd::Uid::effective().is_root();
    let env = vec![
        (
            "NFY_SOCKET".to_owned(),
            locked.join("notify.sock").display().to_string(),
        ),
        ("NFY_PORT".to_owned(), common::free_port().to_string()),
    ];
    let mut app = Program::start_with(&cpp("server_app"), &[], &env, |cmd| {
        // Root ignores directory permissions: run as `nobody` then.
        if is_root {
            cmd.uid(65534).gid(65534);
        }
    });
    let out = app.success();
    assert!(out.contains("result -3"), "{}", app.output());
}

#[test]
fn a_cpp_app_reconnects_after_a_server_restart() {
    let mut server = Server::start();
    let mut pong = Program::start(&cpp("pong_app"), &[], &server.env());
    pong.expect_line("ready");
    server.restart();

    // Once the library has reconnected and registered again, pings are
    // answered; until then they come back as unicast errors.
    let rust = rust_app(&server, "rusty");
    let (tx, rx) = mpsc::channel();
    let errors = tx.clone();
    let _reg = rust
        .register("pong", 0, move |d| tx.send(Ok(Got::of(d))).unwrap())
        .unwrap();
    let _err = rust.on_unicast_error(move |d| errors.send(Err(Got::of(d))).unwrap());
    let start = Instant::now();
    let answered = loop {
        assert!(start.elapsed() < DEADLINE, "ponger never came back");
        rust.notify("ponger", "ping", &json!({"seq": 7, "text": "again"}))
            .unwrap();
        match rx.recv_timeout(DEADLINE).unwrap() {
            Ok(got) => break got,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    assert_eq!(answered.parameter["echo"], "again");
    rust.notify("ponger", "quit", &json!(null)).unwrap();
    assert!(pong.success().contains("bye"));
}

#[test]
fn a_unicast_to_a_cpp_app_that_dies_in_its_callback_comes_back() {
    let server = Server::start();
    let mut pong = Program::start(&cpp("pong_app"), &[], &server.env());
    pong.expect_line("ready");
    let rust = rust_app(&server, "rusty");
    let (tx, rx) = mpsc::channel();
    let _err = rust.on_unicast_error(move |d| tx.send(Got::of(d)).unwrap());
    rust.notify("ponger", "crash", &json!({"why": "test"}))
        .unwrap();
    // The app never acknowledged it: the server returns it when the
    // connection drops, and nobody else takes "crash".
    let back = rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!(back.to, "ponger");
    assert_eq!(back.notification, "crash");
    assert_eq!(back.parameter, json!({"why": "test"}));
    assert_eq!(pong.wait().code(), Some(3));
}

#[test]
fn unicasts_racing_a_cpp_unregister_go_to_the_next_receiver() {
    let server = Server::start();
    let mut racer = Program::start(&cpp("racer_app"), &[], &server.env());
    racer.expect_line("ready");
    // The next receiver: a Rust app standing in for "racer" (impersonation),
    // with a lower priority.
    let low = rust_app(&server, "low");
    let (tx, rx) = mpsc::channel();
    let _r = low
        .register_as("racer", "x", 0, move |d| tx.send(Got::of(d)).unwrap())
        .unwrap();
    low.sync().unwrap();
    let sender = rust_app(&server, "sender");
    let (etx, erx) = mpsc::channel();
    let _e = sender.on_unicast_error(move |d| etx.send(Got::of(d)).unwrap());
    // Both go to racer (priority 10); its callback holds the first while
    // the second arrives, then unregisters: the second comes back.
    for n in 1..=2 {
        sender.notify("racer", "x", &json!({ "n": n })).unwrap();
    }
    racer.expect_line("got 1");
    racer.expect_line("unregistered");
    let second = rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!(second.parameter, json!({ "n": 2 }));
    assert_eq!(second.to, "racer");
    assert_eq!(second.from, "sender");
    // The first was racer's alone; nothing came back to the sender.
    sender.sync().unwrap();
    assert!(rx.try_recv().is_err());
    assert!(erx.try_recv().is_err());
    sender.notify("racer", "quit", &json!(null)).unwrap();
    let out = racer.success();
    assert!(out.contains("bye"), "{out}");
    assert!(!out.contains("got 2"), "{out}");
}

#[test]
fn the_readme_example_runs() {
    let readme = fs::read_to_string(common::crate_dir().join("../README.md")).unwrap();
    let section = &readme[readme.find("## Existing C++ apps").unwrap()..];
    let start = section.find("```cpp\n").unwrap() + "```cpp\n".len();
    let code = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("hello.cpp"), code).unwrap();
    let exe = common::build(
        dir.path().join("hello.cpp").to_str().unwrap(),
        &[],
        common::Link::Shared,
    );
    let server = Server::start();
    let out = common::run_ok(&exe, &[], &server.env());
    assert!(
        out.contains("hello -> hello: greeting \"Grüezi\" (1250)"),
        "{out}"
    );
    assert!(
        out.contains("nobody received greeting sent to nobody"),
        "{out}"
    );
}
