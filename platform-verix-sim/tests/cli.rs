//! `notifysvc-verix` as a process: the `notifysvc` command line, the
//! ignored CONFIG_FILE (one log line), loopback-only listeners, SIGHUP
//! that reloads nothing, clean shutdown on SIGTERM.

// Test helpers: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(20);

fn verix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notifysvc-verix"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_version_and_usage_errors() {
    let help = verix(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(text.starts_with("notifysvc-verix "), "{text}");
    for needle in [
        "Verix-style profile",
        "CONFIG_FILE is accepted and ignored",
        "loopback only",
        "--port",
        "--socket",
        "--max-frame",
        "--max-queue",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
    let version = verix(&["--version"]);
    assert_eq!(
        String::from_utf8(version.stdout).unwrap().trim(),
        format!("notifysvc-verix {}", env!("CARGO_PKG_VERSION"))
    );
    for args in [&["--bogus"][..], &["--port", "x"], &["a.cfg", "b.cfg"]] {
        let out = verix(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("notifysvc-verix --help"), "{err}");
    }
}

/// Starts the server with `config` and collects its stderr lines until
/// the ready line.
fn start(dir: &std::path::Path, config: &std::path::Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_notifysvc-verix"))
        .arg("--port=0")
        .arg("--socket")
        .arg(dir.join("notify.sock"))
        .arg(config)
        .env("RUST_LOG", "info")
        .env_remove("NFY_LOGMASK")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

fn lines_until(rx: &mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no line with {needle:?}; got:\n{}", lines.join("\n")));
        let done = line.contains(needle);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

#[test]
fn config_file_is_ignored_with_one_line_and_only_loopback_listens() {
    let dir = tempfile::tempdir().unwrap();
    // Invalid, with rules and an interface line: Linux would exit 5.
    let config = dir.path().join("notify.cfg");
    std::fs::write(&config, "in * * *\ninterface 10.232.0.1\nnonsense here\n").unwrap();
    let (mut child, rx) = start(dir.path(), &config);
    let lines = lines_until(&rx, " ready (");
    let all = lines.join("\n");
    let mentions: Vec<_> = lines
        .iter()
        .filter(|l| l.contains(&*config.to_string_lossy()))
        .collect();
    assert_eq!(mentions.len(), 1, "{all}");
    assert!(
        mentions[0].contains("the verix profile ignores configuration files"),
        "{all}"
    );
    assert!(all.contains("verix profile, max frame 8192 bytes"), "{all}");
    let tcp: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("listening on tcp "))
        .collect();
    assert!(!tcp.is_empty(), "{all}");
    for line in &tcp {
        assert!(
            line.contains("127.0.0.1:") || line.contains("[::1]:"),
            "non-loopback listener: {line}"
        );
    }
    assert!(all.contains("listening on unix "), "{all}");

    // SIGHUP: nothing to reload, and the server goes on (the file, now
    // valid and full of rules, is still not read).
    std::fs::write(&config, "in * * *\nout * * *\n").unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let lines = lines_until(&rx, "received SIGHUP");
    assert!(
        lines.last().unwrap().contains(
            "received SIGHUP: the verix profile ignores configuration files; nothing to reload"
        ),
        "{lines:?}"
    );
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP stopped it");
    assert!(std::os::unix::net::UnixStream::connect(dir.path().join("notify.sock")).is_ok());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!dir.path().join("notify.sock").exists(), "socket removed");
}
