//! The `nfy` command-line tool and the echo example, as processes, against
//! a server (see `client_harness`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "client_harness/mod.rs"]
mod client_harness;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use client_harness::{TestServer, LONG};
use nfy_linux::client::{Client, Delivery};
use serde_json::{json, Value};

fn nfy(server: &TestServer) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nfy"));
    c.env("NFY_SOCKET", &server.socket)
        .env("NFY_PORT", server.port.to_string())
        .stdin(Stdio::null());
    c
}

fn run(mut c: Command) -> Output {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    wait_output(child)
}

fn wait_output(mut child: Child) -> Output {
    let deadline = Instant::now() + LONG;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit");
        }
        thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

/// Lines of a child's stream, read on a thread.
fn lines<R: std::io::Read + Send + 'static>(r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Starts a long-running `nfy` command and waits for its stderr line that
/// says it is ready.
fn start_ready(c: Command, ready: &str) -> (Child, mpsc::Receiver<String>) {
    let (child, out, _err) = start_ready_err(c, ready);
    (child, out)
}

/// [`start_ready`], with the later stderr lines too.
fn start_ready_err(
    mut c: Command,
    ready: &str,
) -> (Child, mpsc::Receiver<String>, mpsc::Receiver<String>) {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let err: ChildStderr = child.stderr.take().unwrap();
    let out: ChildStdout = child.stdout.take().unwrap();
    let err = lines(err);
    let line = err.recv_timeout(LONG).expect("no ready line");
    assert!(line.starts_with(ready), "{line}");
    (child, lines(out), err)
}

/// Runs `nfy ARGS` against `server`: exit status and stderr.
fn nfy_args(server: &TestServer, args: &[&str]) -> (Option<i32>, String) {
    let mut c = nfy(server);
    c.args(args);
    let out = run(c);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_line(rx: &mpsc::Receiver<String>) -> Value {
    serde_json::from_str(&rx.recv_timeout(LONG).unwrap()).unwrap()
}

#[test]
fn send_without_server_says_so() {
    let dir = client_harness::temp_dir("cli-none");
    let out = run({
        let mut c = Command::new(env!("CARGO_BIN_EXE_nfy"));
        c.env("NFY_SOCKET", dir.join("no.sock"))
            .env("NFY_PORT", client_harness::free_port().to_string())
            .args(["send", "a", "ev"]);
        c
    });
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not running"), "{err}");
}

#[test]
fn usage_errors_and_help() {
    let server = TestServer::start("cli-usage");
    for args in [
        vec!["send", "a"],
        vec!["send", "a", "ev", "{not json"],
        vec!["send", "--flags", "x", "a", "ev"],
        vec!["listen", "ev"],
        vec!["listen", "--as", "a"],
        vec!["bogus"],
        vec![],
    ] {
        let mut c = nfy(&server);
        c.args(&args);
        assert_eq!(run(c).status.code(), Some(64), "{args:?}");
    }
    for args in [
        vec!["--help"],
        vec!["send", "--help"],
        vec!["listen", "--help"],
        vec!["monitor", "--help"],
        vec!["status", "--help"],
        vec!["--version"],
    ] {
        let mut c = nfy(&server);
        c.args(&args);
        let out = run(c);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty());
    }
}

#[test]
fn listen_prints_one_json_line_per_delivery() {
    let server = TestServer::start("cli-listen");
    let mut c = nfy(&server);
    c.args([
        "listen",
        "--as",
        "app",
        "--priority",
        "3",
        "--count",
        "3",
        "ev",
        "ev2",
    ]);
    let (child, out) = start_ready(c, "nfy: listening as app");

    let mut s = nfy(&server);
    s.args([
        "send",
        "--from",
        "me",
        "--flags",
        "0x10",
        "app",
        "ev",
        r#"{"x":[1,2]}"#,
    ]);
    assert_eq!(run(s).status.code(), Some(0));
    assert_eq!(
        json_line(&out),
        json!({"from": "me", "to": "app", "notification": "ev", "flags": 16, "parameter": {"x": [1, 2]}})
    );
    let mut s = nfy(&server);
    s.args(["send", "1", "ev2"]);
    assert_eq!(run(s).status.code(), Some(0));
    assert_eq!(
        json_line(&out),
        json!({"from": "nfy", "to": "1", "notification": "ev2", "flags": 0, "parameter": {}})
    );
    let mut s = nfy(&server);
    s.args(["send", "*", "ev", "\"text\""]);
    assert_eq!(run(s).status.code(), Some(0));
    let line = json_line(&out);
    assert_eq!(
        (line["to"].as_str(), line["parameter"].as_str()),
        (Some("*"), Some("text"))
    );
    // --count 3 reached: it exits 0 on its own.
    let status = wait_output(child).status;
    assert_eq!(status.code(), Some(0));
}

#[test]
fn monitor_prints_deliveries_without_the_parameter() {
    let server = TestServer::start("cli-monitor");
    let mut c = nfy(&server);
    c.args(["monitor", "--count", "2"]);
    let (child, out) = start_ready(c, "nfy: monitoring");
    let rx_client = Client::connect_to(server.addr()).unwrap();
    rx_client.set_app_id("b").unwrap();
    let _r = rx_client.register("ev", 0, |_: &Delivery<'_>| {}).unwrap();
    rx_client.sync().unwrap();

    let mut s = nfy(&server);
    s.args([
        "send",
        "--from",
        "a",
        "--flags",
        "5",
        "1",
        "ev",
        r#"{"secret":1}"#,
    ]);
    assert_eq!(run(s).status.code(), Some(0));
    assert_eq!(
        json_line(&out),
        json!({"from": "a", "to": "b", "notification": "ev", "flags": 5})
    );
    let mut s = nfy(&server);
    s.args(["send", "--from", "a", "nobody", "ev"]);
    assert_eq!(run(s).status.code(), Some(0));
    assert_eq!(
        json_line(&out),
        json!({"from": "a", "to": "", "notification": "ev", "flags": 0})
    );
    assert_eq!(wait_output(child).status.code(), Some(0));
}

#[test]
fn send_wait_error_reports_unicast_errors() {
    let server = TestServer::start("cli-werr");
    let mut s = nfy(&server);
    s.args(["send", "--wait-error", "5000", "nobody", "ev"]);
    let out = run(s);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unicast error"), "{err}");

    let c = Client::connect_to(server.addr()).unwrap();
    c.set_app_id("there").unwrap();
    let _r = c.register("ev", 0, |_: &Delivery<'_>| {}).unwrap();
    c.sync().unwrap();
    let mut s = nfy(&server);
    s.args(["send", "--wait-error", "200", "there", "ev"]);
    assert_eq!(run(s).status.code(), Some(0));
}

#[test]
fn status_text_and_json() {
    let server = TestServer::start("cli-status");
    let c = Client::connect_to(server.addr()).unwrap();
    c.set_app_id("x").unwrap();
    let _r = c.register("ev", 0, |_: &Delivery<'_>| {}).unwrap();
    c.sync().unwrap();
    let mut s = nfy(&server);
    s.args(["status", "--json"]);
    let out = run(s);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["registrations"], 1);
    assert!(v["local_connections"].as_u64().unwrap() >= 2);
    for key in [
        "delivered",
        "dropped",
        "unicast_errors",
        "remote_connections",
        "observers",
    ] {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
    let mut s = nfy(&server);
    s.arg("status");
    let out = run(s);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("registrations:   1"), "{text}");
    assert!(text.contains("unicast errors:"), "{text}");
}

fn echo_example() -> PathBuf {
    // Integration tests live in target/<profile>/deps; `cargo test` builds
    // the examples into target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().unwrap().parent().unwrap();
    profile.join("examples").join("echo")
}

#[test]
fn echo_example_answers_the_sender() {
    let server = TestServer::start("cli-echo");
    let path = echo_example();
    assert!(path.exists(), "build the example first: {}", path.display());
    let mut c = Command::new(path);
    c.env("NFY_SOCKET", &server.socket)
        .env("NFY_PORT", server.port.to_string())
        .stdin(Stdio::null());
    let (mut echo, _out) = start_ready(c, "echo: ready");
    let mut l = nfy(&server);
    l.args(["listen", "--as", "me", "--count", "1", "echo-reply"]);
    let (listener, out) = start_ready(l, "nfy: listening as me");
    let mut s = nfy(&server);
    s.args(["send", "--from", "me", "echo", "echo", r#"{"n":42}"#]);
    assert_eq!(run(s).status.code(), Some(0));
    assert_eq!(
        json_line(&out),
        json!({"from": "echo", "to": "me", "notification": "echo-reply", "flags": 0, "parameter": {"n": 42}})
    );
    assert_eq!(wait_output(listener).status.code(), Some(0));
    let _ = echo.kill();
    let _ = echo.wait();
}

/// `nfy status` lists the connections: a client of this test process shows
/// this process's pid, uid and gid (SO_PEERCRED), its app ID and its
/// registrations; the protection counters are there too.
#[test]
fn status_lists_connections_with_peer_credentials() {
    let server = TestServer::start("cli-status-conns");
    let c = Client::connect_to(server.addr()).unwrap();
    c.set_app_id("cred-app").unwrap();
    let _r = c.register("ev", 0, |_: &Delivery<'_>| {}).unwrap();
    c.sync().unwrap();
    let pid = std::process::id();
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();

    let mut s = nfy(&server);
    s.arg("status");
    let out = run(s);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let mine = format!("unix pid {pid} uid {uid} gid {gid}");
    let at = text
        .lines()
        .position(|l| l.contains(&mine))
        .unwrap_or_else(|| panic!("no line with {mine:?}:\n{text}"));
    let line = text.lines().nth(at).unwrap();
    assert!(line.contains("cred-app"), "{line}");
    assert!(line.trim_end().ends_with('1'), "one registration: {line}");
    // Its registration, under it.
    assert_eq!(
        text.lines().nth(at + 1).map(str::trim),
        Some("ev for cred-app (priority 0)"),
        "{text}"
    );
    for counter in ["refused:", "rate limited:", "oversize:"] {
        assert!(text.contains(counter), "{counter} missing:\n{text}");
    }

    let mut s = nfy(&server);
    s.args(["status", "--json"]);
    let out = run(s);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let conns = v["connections"].as_array().unwrap();
    let me = conns
        .iter()
        .find(|c| c["app_id"] == "cred-app")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        (&me["transport"], &me["pid"], &me["uid"], &me["gid"]),
        (&json!("unix"), &json!(pid), &json!(uid), &json!(gid))
    );
    assert_eq!(me["registrations"], 1);
    assert_eq!(
        me["registered"],
        json!([{"notification": "ev", "to": "cred-app", "priority": 0}])
    );
    assert_eq!(me["remote"], false);
    // nfy status's own connection is listed, with nfy's pid (not ours).
    assert!(
        conns
            .iter()
            .any(|c| c["transport"] == "unix" && c["pid"] != json!(pid)),
        "{v}"
    );
    for key in ["refused", "remote_refused", "rate_limited", "oversize"] {
        assert_eq!(v[key], 0, "{key}: {v}");
    }
}

/// Usage errors are one line that names the problem (and the command's
/// usage line), never the whole help; too many arguments are not
/// reported as too few; an empty `--from` is refused as empty.
#[test]
fn usage_errors_are_one_line_naming_the_problem() {
    let server = TestServer::start("cli-usage-lines");
    for (args, says) in [
        (
            &["send", "ui", "show", "{}", "extra"][..],
            "unexpected argument \"extra\"",
        ),
        (&["send", "--from", "", "ui", "show"], "must not be empty"),
        (&["send", "ui"], "TO and NOTIFICATION are required"),
        (&["send", "--bogus", "ui", "show"], "--bogus"),
        (
            &["send", "--flags", "x", "ui", "show"],
            "not a 32-bit number",
        ),
        (&["send", "ui", "show", "{"], "JSON parameter"),
        (&["listen", "ev"], "--as APP is required"),
        (&["listen", "--as", "a"], "NOTIFICATION is required"),
        (&["monitor", "extra"], "extra"),
        (&["status", "--verbose"], "--verbose"),
        (&["bogus"], "unknown command \"bogus\""),
        (&[], "no command given"),
        (&["--port", "x", "status"], "not a TCP port"),
    ] {
        let (code, err) = nfy_args(&server, args);
        assert_eq!(code, Some(64), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("Options:"), "{args:?}: {err}");
    }
    // Help is on --help, and per command.
    for (args, has) in [
        (&["help", "send"][..], "--wait-error"),
        (&["send", "-h"], "--wait-error"),
        (&["status", "--help"], "registered"),
        (&["help"], "Commands:"),
    ] {
        let mut c = nfy(&server);
        c.args(args);
        let out = run(c);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(has),
            "{args:?}"
        );
    }
}

/// A notification larger than the server accepts is refused by the
/// library (the server would skip it): `nfy send` says so and fails;
/// nothing arrives.
#[test]
fn an_oversize_send_fails_with_a_message() {
    let server = TestServer::start("cli-oversize");
    let mut l = nfy(&server);
    l.args(["listen", "--as", "big", "--count", "1", "big"]);
    let (listener, out) = start_ready(l, "nfy: listening as big");
    let param = format!("\"{}\"", "x".repeat(100 * 1024));
    let (code, err) = nfy_args(&server, &["send", "big", "big", &param]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("too large"), "{err}");
    assert!(err.contains("65536"), "{err}");
    // The next one arrives first: the big one was never sent.
    let (code, err) = nfy_args(&server, &["send", "big", "big", "\"small\""]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(json_line(&out)["parameter"], "small");
    assert_eq!(wait_output(listener).status.code(), Some(0));
}

/// `nfy listen` and `nfy monitor` say on stderr when the server goes away
/// and when they are connected again, once each way.
#[test]
fn listen_and_monitor_tell_when_the_server_goes_and_comes_back() {
    let mut server = TestServer::start("cli-reconnect");
    let mut l = nfy(&server);
    l.args(["listen", "--as", "app", "ev"]);
    let (mut listener, _out, lerr) = start_ready_err(l, "nfy: listening as app");
    let mut m = nfy(&server);
    m.arg("monitor");
    let (mut monitor, _mout, merr) = start_ready_err(m, "nfy: monitoring");
    server.stop();
    for err in [&lerr, &merr] {
        let line = err.recv_timeout(LONG).unwrap();
        assert!(line.contains("lost the connection"), "{line}");
    }
    server.restart();
    let line = lerr.recv_timeout(LONG).unwrap();
    assert!(line.contains("reconnected"), "{line}");
    assert!(line.contains("listening as app"), "{line}");
    let line = merr.recv_timeout(LONG).unwrap();
    assert!(line.contains("reconnected"), "{line}");
    // One line each way.
    assert!(lerr.recv_timeout(Duration::from_millis(200)).is_err());
    for child in [&mut listener, &mut monitor] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A socket this user may not connect to is reported as such, with the
/// group to join (the socket's), not as a server that is not running.
/// As root (which may connect anywhere) the client runs as `nobody`.
#[test]
fn permission_denied_names_the_group_to_join() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let server = TestServer::start("cli-perm");
    let root = nix::unistd::geteuid().is_root();
    let dir = server.socket.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    if !root {
        std::fs::set_permissions(&server.socket, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let gid = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(&server.socket).unwrap());
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .unwrap()
        .map_or_else(|| gid.to_string(), |g| g.name);
    let mut c = Command::new(env!("CARGO_BIN_EXE_nfy"));
    c.args(["--socket", server.socket.to_str().unwrap(), "--port", "1"])
        .args(["send", "a", "ev"])
        .env_remove("NFY_SOCKET")
        .env_remove("NFY_PORT");
    if root {
        c.uid(65534).gid(65534);
    }
    let out = run(c);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(err.contains(&format!("join group {group}")), "{err}");
    assert!(!err.contains("not running"), "{err}");
}
