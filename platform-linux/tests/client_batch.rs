//! `Client::batch`: notifications collected and sent with one write.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client_harness;

use std::sync::mpsc;
use std::sync::Mutex;

use client_harness::{TestServer, LONG};
use nfy_linux::client::{Client, Error, NotifyOptions, BATCH_BYTES};

fn client(server: &TestServer, app: &str) -> Client {
    let c = Client::connect_to(server.addr()).unwrap();
    c.set_app_id(app).unwrap();
    c
}

/// Registers `b` for `ev` and returns the parameters it receives.
fn receiver(b: &Client) -> (nfy_linux::client::Registration, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let reg = b
        .register("ev", 0, move |d| {
            let _ = tx.lock().unwrap().send(d.parameter.to_owned());
        })
        .unwrap();
    (reg, rx)
}

#[test]
fn a_batch_arrives_whole_in_order_only_when_sent() {
    let server = TestServer::start("batch");
    let a = client(&server, "a");
    let b = client(&server, "b");
    let (_reg, rx) = receiver(&b);
    b.sync().unwrap();

    let mut batch = a.batch();
    for i in 0..100 {
        batch.notify_raw("b", "ev", &i.to_string()).unwrap();
    }
    assert_eq!(batch.len(), 100);
    // Nothing was written yet: a plain notify after the batch's calls
    // arrives first.
    a.notify_raw("b", "ev", "\"first\"").unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), "\"first\"");
    assert_eq!(batch.send().unwrap(), 100);
    assert!(batch.is_empty());
    for i in 0..100 {
        assert_eq!(rx.recv_timeout(LONG).unwrap(), i.to_string());
    }
    assert_eq!(batch.send().unwrap(), 0, "an empty batch sends nothing");
}

#[test]
fn bad_arguments_are_refused_at_once_and_leave_the_batch_intact() {
    let server = TestServer::start("batch-bad");
    let a = client(&server, "a");
    let b = client(&server, "b");
    let (_reg, rx) = receiver(&b);
    b.sync().unwrap();

    let mut batch = a.batch();
    batch.notify_raw("b", "ev", "1").unwrap();
    assert!(matches!(
        batch.notify_raw("b", "ev", "{not json"),
        Err(Error::InvalidParameter)
    ));
    assert!(matches!(
        batch.notify_raw("", "ev", "1"),
        Err(Error::InvalidId(..))
    ));
    batch
        .notify_raw_with(
            "b",
            "ev",
            "2",
            NotifyOptions {
                flags: 3,
                from: Some("x"),
            },
        )
        .unwrap();
    assert_eq!(batch.len(), 2);
    drop(batch); // dropping sends
    assert_eq!(rx.recv_timeout(LONG).unwrap(), "1");
    assert_eq!(rx.recv_timeout(LONG).unwrap(), "2");
}

#[test]
fn a_large_batch_sends_itself_at_the_size_bound() {
    let server = TestServer::start("batch-big");
    let a = client(&server, "a");
    let b = client(&server, "b");
    let (_reg, rx) = receiver(&b);
    b.sync().unwrap();

    let param = format!("\"{}\"", "x".repeat(1000));
    let mut batch = a.batch();
    let mut added = 0;
    while batch.len() == added {
        batch.notify_raw("b", "ev", &param).unwrap();
        added += 1;
    }
    // The call that crossed BATCH_BYTES sent everything.
    assert!(batch.is_empty());
    // Each frame is the parameter plus under 200 bytes of IDs and header.
    assert!(added * (param.len() + 200) >= BATCH_BYTES, "{added}");
    assert!((added - 1) * param.len() < BATCH_BYTES, "{added}");
    for _ in 0..added {
        assert_eq!(rx.recv_timeout(LONG).unwrap(), param);
    }
}

#[test]
fn sending_without_a_server_fails() {
    let server = TestServer::start("batch-down");
    let a = client(&server, "a");
    let mut batch = a.batch();
    batch.notify_raw("b", "ev", "1").unwrap();
    drop(server);
    assert!(matches!(batch.send(), Err(Error::Server)));
    assert!(batch.is_empty());
}
