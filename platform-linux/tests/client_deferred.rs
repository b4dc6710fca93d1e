//! `Client::register_deferred`: the callback's [`AckToken`] decides when a
//! unicast is acknowledged (a relay such as `nfy-bridge` acknowledges once
//! the next hop has it). Against a real server: what is not acknowledged
//! goes to the next receiver when the connection ends; what is given back
//! goes to the next receiver or back to its sender as a unicast error.
//!
//! One test runs its relay as a process of its own (this test binary run
//! again, `--exact` that test, with `NFY_DEFERRED_ROLE=relay`), to kill
//! it with SIGKILL: nothing is flushed then.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client_harness;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use client_harness::{eventually, temp_dir, TestServer, LONG};
use nfy_linux::client::{AckToken, Client, Delivery, ServerAddr};
use serde_json::json;

fn client(server: &TestServer, app: &str) -> Client {
    let c = Client::connect_to(server.addr()).unwrap();
    c.set_app_id(app).unwrap();
    c
}

/// A deferred registration whose tokens (with the parameter's `n`) go to
/// the returned receiver.
fn holder(
    c: &Client,
    to: &str,
    priority: i32,
) -> (nfy_linux::client::Registration, Receiver<(i64, AckToken)>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let r = c
        .register_deferred(Some(to), "ev", priority, move |d: &Delivery<'_>, t| {
            let n = d.parameter_json()["n"].as_i64().unwrap_or(-1);
            let _ = tx.lock().unwrap().send((n, t));
        })
        .unwrap();
    (r, rx)
}

/// An ordinary receiver of `ev` as `to`, sending each `n` it gets.
fn receiver(
    c: &Client,
    to: &str,
    priority: i32,
) -> (nfy_linux::client::Registration, Receiver<i64>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let r = c
        .register_as(to, "ev", priority, move |d: &Delivery<'_>| {
            let _ = tx
                .lock()
                .unwrap()
                .send(d.parameter_json()["n"].as_i64().unwrap_or(-1));
        })
        .unwrap();
    (r, rx)
}

/// The `n` of each unicast error `c` gets.
fn errors(c: &Client) -> (nfy_linux::client::Handle, Receiver<i64>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let handle = c.on_unicast_error(move |d| {
        let _ = tx
            .lock()
            .unwrap()
            .send(d.parameter_json()["n"].as_i64().unwrap_or(-1));
    });
    (handle, rx)
}

fn quiet<T: std::fmt::Debug>(rx: &Receiver<T>) {
    if let Ok(x) = rx.recv_timeout(Duration::from_millis(150)) {
        panic!("unexpected {x:?}");
    }
}

#[test]
fn unacknowledged_unicasts_go_to_the_next_receiver_when_the_connection_ends() {
    let server = TestServer::start("deferred-close");
    let relay = client(&server, "relay");
    let backup = client(&server, "backup");
    let sender = client(&server, "sender");
    let (_low, low_rx) = receiver(&backup, "x", 1);
    let (_high, high_rx) = holder(&relay, "x", 10);
    backup.sync().unwrap();
    relay.sync().unwrap();
    for n in 0..4 {
        sender.notify("x", "ev", &json!({ "n": n })).unwrap();
    }
    let mut tokens: Vec<_> = (0..4)
        .map(|_| high_rx.recv_timeout(LONG).unwrap())
        .collect();
    assert_eq!(tokens.iter().map(|t| t.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(tokens.iter().all(|t| t.1.is_needed()));
    // Acknowledge 1 and 3; keep 0 and 2 unused past the end of the
    // connection (the callback returned long ago: no ack without a token).
    let (_, t3) = tokens.pop().unwrap();
    let (_, t2) = tokens.pop().unwrap();
    let (_, t1) = tokens.pop().unwrap();
    t1.ack();
    t3.ack();
    relay.sync().unwrap();
    quiet(&low_rx);
    let (_, t0) = tokens.pop().unwrap();
    // Keep the two tokens alive (no give back on drop) while closing.
    let kept = (t0, t2);
    relay.close();
    assert_eq!(low_rx.recv_timeout(LONG).unwrap(), 0);
    assert_eq!(low_rx.recv_timeout(LONG).unwrap(), 2);
    quiet(&low_rx);
    // Using a token of a connection that has ended sends nothing.
    kept.0.ack();
    drop(kept.1);
    quiet(&low_rx);
}

#[test]
fn given_back_unicasts_are_routed_again_or_returned_to_their_sender() {
    let server = TestServer::start("deferred-give-back");
    let relay = client(&server, "relay");
    let sender = client(&server, "sender");
    let (_errors, erx) = errors(&sender);
    let (_reg, rx) = holder(&relay, "x", 0);
    relay.sync().unwrap();
    sender.sync().unwrap();

    // Nobody else receives "x": the sender gets the unicast error.
    sender.notify("x", "ev", &json!({ "n": 1 })).unwrap();
    let (n, token) = rx.recv_timeout(LONG).unwrap();
    assert_eq!(n, 1);
    token.give_back();
    assert_eq!(erx.recv_timeout(LONG).unwrap(), 1);

    // A dropped token gives back too.
    sender.notify("x", "ev", &json!({ "n": 2 })).unwrap();
    drop(rx.recv_timeout(LONG).unwrap());
    assert_eq!(erx.recv_timeout(LONG).unwrap(), 2);

    // With another receiver, the given-back unicast goes there (the
    // relay's connection is left out), and no error is sent.
    let other = client(&server, "other");
    let (_low, low_rx) = receiver(&other, "x", -5);
    other.sync().unwrap();
    sender.notify("x", "ev", &json!({ "n": 3 })).unwrap();
    let (n, token) = rx.recv_timeout(LONG).unwrap();
    assert_eq!(n, 3);
    token.give_back();
    assert_eq!(low_rx.recv_timeout(LONG).unwrap(), 3);
    quiet(&erx);

    // An acknowledged unicast is the relay's: closing changes nothing.
    sender.notify("x", "ev", &json!({ "n": 4 })).unwrap();
    let (_, token) = rx.recv_timeout(LONG).unwrap();
    token.ack();
    relay.sync().unwrap();
    relay.close();
    quiet(&low_rx);
    quiet(&erx);
}

#[test]
fn a_callback_that_panics_gives_its_unicast_back() {
    let server = TestServer::start("deferred-panic");
    let relay = client(&server, "relay");
    let sender = client(&server, "sender");
    let (_errors, erx) = errors(&sender);
    let _reg = relay
        .register_deferred(Some("x"), "ev", 0, |_: &Delivery<'_>, token| {
            let _held = token;
            panic!("relay callback fails");
        })
        .unwrap();
    relay.sync().unwrap();
    sender.sync().unwrap();
    sender.notify("x", "ev", &json!({ "n": 5 })).unwrap();
    assert_eq!(erx.recv_timeout(LONG).unwrap(), 5);
    // Counted once the unwinding (which gave the token back) is over.
    eventually("the panic to be counted", || relay.callback_panics() == 1);
}

#[test]
fn broadcasts_need_no_acknowledgement() {
    let server = TestServer::start("deferred-broadcast");
    let relay = client(&server, "relay");
    let sender = client(&server, "sender");
    let (_reg, rx) = holder(&relay, "x", 0);
    relay.sync().unwrap();
    sender.notify("*", "ev", &json!({ "n": 7 })).unwrap();
    let (n, token) = rx.recv_timeout(LONG).unwrap();
    assert_eq!(n, 7);
    assert!(!token.is_needed());
    // Giving a broadcast back sends nothing (it would be broadcast again).
    token.give_back();
    relay.sync().unwrap();
    quiet(&rx);
    sender.notify("1", "ev", &json!({ "n": 8 })).unwrap();
    let (n, token) = rx.recv_timeout(LONG).unwrap();
    assert_eq!(n, 8);
    assert!(token.is_needed());
    token.ack();
}

const ROLE: &str = "NFY_DEFERRED_ROLE";
const OFF_POOL_TEST: &str = "a_token_acknowledged_off_the_pool_needs_no_later_write";

/// The relay process of the test below: registers `x` for `ev` (priority
/// 10) with a deferred callback that hands each token to a thread of its
/// own, which acknowledges it once the callback has long returned and
/// then creates `NFY_DEFERRED_ACKED`. It writes nothing else, and waits
/// to be killed (or exits when its standard input closes).
fn relay_process() -> ! {
    let var = |k: &str| std::env::var(k).unwrap();
    let acked = PathBuf::from(var("NFY_DEFERRED_ACKED"));
    let client = Client::connect_to(ServerAddr::unix(var("NFY_DEFERRED_SOCKET"))).unwrap();
    client.set_app_id("relay").unwrap();
    let (tx, rx) = mpsc::channel::<AckToken>();
    let tx = Mutex::new(tx);
    let _reg = client
        .register_deferred(Some("x"), "ev", 10, move |_: &Delivery<'_>, t| {
            tx.lock().unwrap().send(t).unwrap();
        })
        .unwrap();
    client.sync().unwrap();
    thread::spawn(move || {
        for token in rx {
            // Every pool worker is parked again by now.
            thread::sleep(Duration::from_millis(50));
            token.ack();
            std::fs::write(&acked, b"").unwrap();
        }
    });
    std::fs::write(var("NFY_DEFERRED_READY"), b"").unwrap();
    let mut sink = [0u8; 64];
    while std::io::stdin().read(&mut sink).is_ok_and(|n| n > 0) {}
    std::process::exit(0);
}

#[test]
fn a_token_acknowledged_off_the_pool_needs_no_later_write() {
    if std::env::var(ROLE).is_ok() {
        relay_process();
    }
    let server = TestServer::start("deferred-off-pool");
    let backup = client(&server, "backup");
    let sender = client(&server, "sender");
    let (_low, low_rx) = receiver(&backup, "x", 1);
    backup.sync().unwrap();
    let dir = temp_dir("deferred-off-pool");
    let (ready, acked) = (dir.join("ready"), dir.join("acked"));
    let mut relay = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", OFF_POOL_TEST, "--nocapture", "--test-threads=1"])
        .env(ROLE, "relay")
        .env("NFY_DEFERRED_SOCKET", &server.socket)
        .env("NFY_DEFERRED_READY", &ready)
        .env("NFY_DEFERRED_ACKED", &acked)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the relay to register", || ready.exists());
    sender.notify("x", "ev", &json!({ "n": 1 })).unwrap();
    eventually("the relay to acknowledge", || acked.exists());
    // The ack goes on its own within a millisecond or so (pool::LINGER),
    // not with a later write of the relay's: it has none before it dies.
    thread::sleep(Duration::from_millis(200));
    relay.kill().unwrap();
    relay.wait().unwrap();
    // An ack still held back would have died with it, and the server would
    // give the unicast to the backup receiver; it gets only what follows.
    sender.notify("x", "ev", &json!({ "n": 2 })).unwrap();
    assert_eq!(low_rx.recv_timeout(LONG).unwrap(), 2);
    quiet(&low_rx);
}
