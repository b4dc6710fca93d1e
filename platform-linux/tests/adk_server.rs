//! `ipcNotificationServer` in-process: configuration errors come back as
//! result codes, a running in-process server serves the ADK functions, and
//! a second one refuses to start. One test function: the ADK functions
//! share one process-wide client, configured by the environment before the
//! first call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use nfy_core::NotifyResult;
use nfy_linux::client::adk::*;
use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static SEEN: std::sync::Mutex<Option<mpsc::Sender<(String, serde_json::Value)>>> =
    std::sync::Mutex::new(None);

fn on_ping(_: usize, from: &str, _: &str, _: &str, param: &serde_json::Value, _: u32) {
    if let Some(tx) = SEEN.lock().unwrap().as_ref() {
        let _ = tx.send((from.to_string(), param.clone()));
    }
}

#[test]
fn in_process_server() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("notify.sock");
    // Set before the first ADK call: the process-wide client and the
    // server's defaults read them.
    std::env::set_var("NFY_SOCKET", &socket);
    std::env::set_var("NFY_PORT", free_port().to_string());

    let bad = dir.path().join("bad.cfg");
    std::fs::write(&bad, "# fine\nin a b\n").unwrap();
    assert_eq!(
        ipc_notification_server_with_config(Some(&bad)),
        NotifyResult::ErrConfigSyntax
    );
    let missing = dir.path().join("missing.cfg");
    assert_eq!(
        ipc_notification_server_with_config(Some(&missing)),
        NotifyResult::ErrConfigFile
    );
    assert!(!socket.exists(), "no socket before a valid configuration");

    let empty = dir.path().join("empty.cfg");
    std::fs::write(&empty, "# no rules: loopback only\n").unwrap();
    let first = empty.clone();
    std::thread::spawn(move || ipc_notification_server_with_config(Some(&first)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the in-process server did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    // A second server refuses to start and leaves the first alone.
    assert_eq!(
        ipc_notification_server_with_config(Some(&empty)),
        NotifyResult::ErrServer
    );
    assert!(socket.exists());

    // The first one serves the ADK functions.
    let (tx, rx) = mpsc::channel();
    *SEEN.lock().unwrap() = Some(tx);
    assert_eq!(ipc_set_app_id("adk-test"), NotifyResult::Ok);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ipc_register_notification_cb("ping", Some(on_ping), 0, 0, "") != NotifyResult::Ok {
        assert!(
            Instant::now() < deadline,
            "cannot register with the in-process server"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        ipc_notify("adk-test", "ping", &json!({"n": 1}), 0, ""),
        NotifyResult::Ok
    );
    let (from, param) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(from, "adk-test");
    assert_eq!(param, json!({"n": 1}));
}
