//! End-to-end tests of the client library against a server (see
//! `client_harness`): unicast, `"1"` with priorities, broadcast, observer,
//! unicast errors, unregister guarantees, server restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client_harness;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use client_harness::{eventually, TestServer, LONG};
use nfy_linux::client::{Client, Delivery, Error, NotifyOptions, Observed, Registration};
use serde_json::json;

/// A delivery, owned, as tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    tag: &'static str,
    from: String,
    to: String,
    notification: String,
    parameter: serde_json::Value,
    flags: u32,
}

fn recorder(tag: &'static str, tx: &Sender<Got>) -> impl Fn(&Delivery<'_>) + Send + Sync + 'static {
    let tx = Mutex::new(tx.clone());
    move |d: &Delivery<'_>| {
        let _ = tx.lock().unwrap().send(Got {
            tag,
            from: d.from.into(),
            to: d.to.into(),
            notification: d.notification.into(),
            parameter: d.parameter_json(),
            flags: d.flags,
        });
    }
}

fn client(server: &TestServer, app: &str) -> Client {
    let c = Client::connect_to(server.addr()).unwrap();
    c.set_app_id(app).unwrap();
    c
}

/// Notify options with these flags and the client's own app ID.
fn flagged(flags: u32) -> NotifyOptions<'static> {
    NotifyOptions { flags, from: None }
}

/// Nothing more arrives within a short grace period (used only to check
/// absence, never as synchronisation).
fn quiet<T: std::fmt::Debug>(rx: &Receiver<T>) {
    if let Ok(x) = rx.recv_timeout(Duration::from_millis(100)) {
        panic!("unexpected {x:?}");
    }
}

#[test]
fn unicast_reaches_the_named_app_with_every_member() {
    let server = TestServer::start("unicast");
    let a = client(&server, "a");
    let b = client(&server, "b");
    let (tx, rx) = mpsc::channel();
    let _r = a.register("ev", 0, recorder("a", &tx)).unwrap();
    let _other = b.register("ev", 0, recorder("b", &tx)).unwrap();
    a.sync().unwrap();
    b.notify_with("a", "ev", &json!({"k": [1, "x"]}), flagged(0x8000_0001))
        .unwrap();
    assert_eq!(
        rx.recv_timeout(LONG).unwrap(),
        Got {
            tag: "a",
            from: "b".into(),
            to: "a".into(),
            notification: "ev".into(),
            parameter: json!({"k": [1, "x"]}),
            flags: 0x8000_0001,
        }
    );
    quiet(&rx);
    // Impersonated source.
    b.notify_with(
        "a",
        "ev",
        &1,
        NotifyOptions {
            flags: 0,
            from: Some("ghost"),
        },
    )
    .unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap().from, "ghost");
}

#[test]
fn one_goes_to_the_best_priority_across_and_within_processes() {
    let server = TestServer::start("one");
    let p = client(&server, "p");
    let q = client(&server, "q");
    let (tx, rx) = mpsc::channel();
    let _p1 = p.register_as("low", "ev", 1, recorder("low", &tx)).unwrap();
    let _p2 = p
        .register_as("high", "ev", 5, recorder("high", &tx))
        .unwrap();
    let _q1 = q.register_as("mid", "ev", 3, recorder("mid", &tx)).unwrap();
    p.sync().unwrap();
    q.sync().unwrap();
    q.notify("1", "ev", &json!({})).unwrap();
    let got = rx.recv_timeout(LONG).unwrap();
    assert_eq!((got.tag, got.to.as_str()), ("high", "1"));
    quiet(&rx);
    // Dropping the best one hands "1" to the next across processes.
    drop(_p2);
    p.sync().unwrap();
    q.notify("1", "ev", &json!({})).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap().tag, "mid");
    // Re-registering with a higher priority replaces and wins.
    let _p1b = p
        .register_as("low", "ev", 9, recorder("low2", &tx))
        .unwrap();
    p.sync().unwrap();
    q.notify("1", "ev", &json!({})).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap().tag, "low2");
    quiet(&rx);
}

#[test]
fn broadcast_runs_every_local_registration_once() {
    let server = TestServer::start("bcast");
    let p = client(&server, "p");
    let q = client(&server, "q");
    let (tx, rx) = mpsc::channel();
    let _a = p.register_as("a", "ev", 0, recorder("a", &tx)).unwrap();
    let _b = p.register_as("b", "ev", 7, recorder("b", &tx)).unwrap();
    let _c = q.register("ev", 0, recorder("c", &tx)).unwrap();
    let _other = q.register("zz", 0, recorder("zz", &tx)).unwrap();
    p.sync().unwrap();
    q.sync().unwrap();
    q.notify("*", "ev", &json!({"n": 1})).unwrap();
    let mut tags: Vec<_> = (0..3).map(|_| rx.recv_timeout(LONG).unwrap()).collect();
    assert!(tags.iter().all(|g| g.to == "*" && g.from == "q"));
    tags.sort_by_key(|g| g.tag);
    assert_eq!(
        tags.iter().map(|g| g.tag).collect::<Vec<_>>(),
        vec!["a", "b", "c"]
    );
    quiet(&rx);
}

#[test]
fn observer_sees_deliveries_and_unreceived_notifications() {
    let server = TestServer::start("observe");
    let watcher = client(&server, "w");
    let a = client(&server, "a");
    let (otx, orx) = mpsc::channel();
    let otx = Mutex::new(otx);
    let _h = watcher
        .observe(move |o: &Observed<'_>| {
            let _ = otx.lock().unwrap().send((
                o.from.to_owned(),
                o.to.to_owned(),
                o.notification.to_owned(),
                o.flags,
            ));
        })
        .unwrap();
    let (tx, _rx) = mpsc::channel();
    let _r = a.register("ev", 0, recorder("a", &tx)).unwrap();
    watcher.sync().unwrap();
    a.sync().unwrap();
    a.notify_with("1", "ev", &0, flagged(4)).unwrap();
    assert_eq!(
        orx.recv_timeout(LONG).unwrap(),
        ("a".into(), "a".into(), "ev".into(), 4)
    );
    a.notify("nobody", "ev", &0).unwrap();
    assert_eq!(
        orx.recv_timeout(LONG).unwrap(),
        ("a".into(), String::new(), "ev".into(), 0)
    );
    // After the handle is dropped nothing more is observed.
    drop(_h);
    watcher.sync().unwrap();
    a.notify("a", "ev", &0).unwrap();
    a.sync().unwrap();
    quiet(&orx);
}

#[test]
fn unicast_error_callback_gets_the_original() {
    let server = TestServer::start("uerr");
    let s = client(&server, "s");
    let (tx, rx) = mpsc::channel();
    let h = s.on_unicast_error(recorder("err", &tx));
    s.notify_with("nobody", "ev", &json!({"x": 1}), flagged(9))
        .unwrap();
    let got = rx.recv_timeout(LONG).unwrap();
    assert_eq!(
        (
            got.tag,
            got.from.as_str(),
            got.to.as_str(),
            got.notification.as_str(),
            got.flags
        ),
        ("err", "s", "nobody", "ev", 9)
    );
    assert_eq!(got.parameter, json!({"x": 1}));
    // "1" with no receiver too; broadcasts never.
    s.notify("1", "none", &0).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap().to, "1");
    s.notify("*", "none", &0).unwrap();
    s.sync().unwrap();
    quiet(&rx);
    // Without a handler the server is told not to send them.
    drop(h);
    s.notify("nobody", "ev", &0).unwrap();
    s.sync().unwrap();
    quiet(&rx);
    let st = s.status().unwrap();
    assert!(st.unicast_errors >= 3, "{st:?}");
}

#[test]
fn unregister_waits_for_the_running_callback_and_returns_queued_unicasts() {
    let server = TestServer::start("unreg");
    let r = client(&server, "r");
    let s = client(&server, "s");
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let finished = Arc::new(AtomicUsize::new(0));
    let f2 = Arc::clone(&finished);
    let entered_tx = Mutex::new(entered_tx);
    let reg = r
        .register("slow", 0, move |d: &Delivery<'_>| {
            entered_tx.lock().unwrap().send(d.flags).unwrap();
            release_rx.lock().unwrap().recv().unwrap();
            f2.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    r.sync().unwrap();
    let (etx, erx) = mpsc::channel();
    let _errs = s.on_unicast_error(recorder("err", &etx));
    s.notify_with("r", "slow", &0, flagged(1)).unwrap();
    s.notify_with("r", "slow", &0, flagged(2)).unwrap();
    assert_eq!(entered_rx.recv_timeout(LONG).unwrap(), 1);
    // The second notification is queued behind the running callback (the
    // server sent both; wait until the client has received it).
    s.sync().unwrap();
    r.sync().unwrap();
    let dropper = thread::spawn(move || {
        drop(reg);
        Instant::now()
    });
    // The queued unicast goes back to the server, which owes its sender a
    // unicast error (nobody else registered "slow"), while the dropper
    // still waits for the running callback.
    let err = erx.recv_timeout(LONG).unwrap();
    assert_eq!((err.to.as_str(), err.flags), ("r", 2));
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    assert!(!dropper.is_finished());
    let released = Instant::now();
    release_tx.send(()).unwrap();
    let returned = dropper.join().unwrap();
    assert!(returned >= released);
    assert_eq!(finished.load(Ordering::SeqCst), 1);
    // Never runs again; further unicasts are errors.
    s.notify_with("r", "slow", &0, flagged(3)).unwrap();
    assert_eq!(erx.recv_timeout(LONG).unwrap().flags, 3);
    assert!(entered_rx.recv_timeout(Duration::from_millis(100)).is_err());
}

#[test]
fn unregister_from_inside_the_callback_does_not_deadlock() {
    let server = TestServer::start("self");
    let r = client(&server, "r");
    let s = client(&server, "s");
    let slot: Arc<Mutex<Option<Registration>>> = Arc::new(Mutex::new(None));
    let slot2 = Arc::clone(&slot);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let reg = r
        .register("once", 0, move |d: &Delivery<'_>| {
            // Drop our own registration from inside the callback.
            let mine = slot2.lock().unwrap().take();
            drop(mine);
            tx.lock().unwrap().send(d.flags).unwrap();
        })
        .unwrap();
    *slot.lock().unwrap() = Some(reg);
    r.sync().unwrap();
    let (etx, erx) = mpsc::channel();
    let _errs = s.on_unicast_error(recorder("err", &etx));
    s.notify_with("r", "once", &0, flagged(1)).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), 1);
    r.sync().unwrap();
    s.notify_with("r", "once", &0, flagged(2)).unwrap();
    assert_eq!(erx.recv_timeout(LONG).unwrap().flags, 2);
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
}

#[test]
fn callbacks_of_different_registrations_run_concurrently_in_order_each() {
    let server = TestServer::start("conc");
    let r = client(&server, "r");
    let s = client(&server, "s");
    // Two registrations whose first callbacks wait for each other: only
    // completes if they run at the same time.
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let (tx, rx) = mpsc::channel();
    let mut regs = Vec::new();
    for app in ["x", "y"] {
        let b = Arc::clone(&barrier);
        let tx = Mutex::new(tx.clone());
        regs.push(
            r.register_as(app, "ev", 0, move |d: &Delivery<'_>| {
                if d.flags == 0 {
                    b.wait();
                }
                tx.lock().unwrap().send((d.to.to_owned(), d.flags)).unwrap();
            })
            .unwrap(),
        );
    }
    r.sync().unwrap();
    for i in 0..50 {
        for app in ["x", "y"] {
            s.notify_with(app, "ev", &0, flagged(i)).unwrap();
        }
    }
    let mut next = std::collections::HashMap::new();
    for _ in 0..100 {
        let (app, flags) = rx.recv_timeout(LONG).unwrap();
        let n = next.entry(app.clone()).or_insert(0u32);
        assert_eq!(flags, *n, "{app} out of order");
        *n += 1;
    }
}

#[test]
fn server_restart_reconnects_and_reregisters() {
    let mut server = TestServer::start("restart");
    let r = client(&server, "r");
    let (tx, rx) = mpsc::channel();
    let _reg = r.register("ev", 2, recorder("r", &tx)).unwrap();
    let (otx, orx) = mpsc::channel();
    let otx = Mutex::new(otx);
    let _obs = r
        .observe(move |o: &Observed<'_>| {
            let _ = otx.lock().unwrap().send(o.notification.to_owned());
        })
        .unwrap();
    r.sync().unwrap();

    server.stop();
    eventually("the client to notice", || !r.is_connected());
    let t = Instant::now();
    assert_eq!(r.notify("r", "ev", &0).unwrap_err(), Error::Server);
    assert_eq!(r.status().unwrap_err(), Error::Server);
    assert_eq!(r.register("other", 0, |_| {}).unwrap_err(), Error::Server);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());

    server.restart();
    eventually("the client to reconnect", || r.is_connected());
    r.sync().unwrap();
    let st = r.status().unwrap();
    assert_eq!(st.registrations, 1, "{st:?}");
    assert_eq!(st.observers, 1, "{st:?}");
    let s = client(&server, "s");
    s.notify("1", "ev", &json!({"again": true})).unwrap();
    let got = rx.recv_timeout(LONG).unwrap();
    assert_eq!(
        (got.to.as_str(), got.parameter.clone()),
        ("1", json!({"again": true}))
    );
    assert_eq!(orx.recv_timeout(LONG).unwrap(), "ev");
}

#[test]
fn calls_while_the_server_never_started_fail_fast() {
    let dir = client_harness::temp_dir("never");
    let addr = nfy_linux::client::ServerAddr::unix(dir.join("none.sock"));
    assert_eq!(Client::connect_to(addr.clone()).unwrap_err(), Error::Server);
    let c = Client::connect_in_background(addr.clone());
    c.set_app_id("me").unwrap();
    let t = Instant::now();
    for _ in 0..10 {
        assert_eq!(c.notify("x", "n", &1).unwrap_err(), Error::Server);
    }
    assert!(t.elapsed() < Duration::from_secs(2));
    // A server appearing later is found in the background.
    let server = TestServer::start_at(dir.join("none.sock"), client_harness::free_port());
    eventually("the background connect", || c.is_connected());
    c.notify("x", "n", &1).unwrap();
    drop(server);
}

#[test]
fn status_counts() {
    let server = TestServer::start("status");
    let a = client(&server, "a");
    let (tx, rx) = mpsc::channel();
    let _r = a.register("ev", 0, recorder("a", &tx)).unwrap();
    a.notify("a", "ev", &0).unwrap();
    rx.recv_timeout(LONG).unwrap();
    let st = a.status().unwrap();
    assert!(st.local_connections >= 1, "{st:?}");
    assert_eq!(st.registrations, 1);
    assert!(st.delivered >= 1);
}

#[test]
fn close_stops_callbacks() {
    let server = TestServer::start("close");
    let a = client(&server, "a");
    let b = client(&server, "b");
    let (tx, rx) = mpsc::channel();
    let reg = a.register("ev", 0, recorder("a", &tx)).unwrap();
    a.sync().unwrap();
    a.close();
    assert!(!a.is_connected());
    assert_eq!(a.notify("b", "ev", &0).unwrap_err(), Error::Server);
    drop(reg); // after close: a no-op
    b.notify("a", "ev", &0).unwrap();
    b.sync().unwrap();
    quiet(&rx);
}

#[test]
fn falls_back_to_tcp_loopback_when_the_socket_fails() {
    let server = TestServer::start("tcp");
    let addr = nfy_linux::client::ServerAddr {
        unix: Some(client_harness::temp_dir("tcp-none").join("missing.sock")),
        tcp: Some(nfy_linux::client::ServerAddr::loopback(server.port)),
        tls: None,
    };
    let c = Client::connect_to(addr).unwrap();
    c.set_app_id("t").unwrap();
    let (tx, rx) = mpsc::channel();
    let _r = c.register("ev", 0, recorder("t", &tx)).unwrap();
    let u = client(&server, "u");
    c.sync().unwrap();
    u.notify("t", "ev", &json!([1])).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap().parameter, json!([1]));
}

/// Registers `n` callbacks on `c` (notifications `block0`…) that report
/// their entry and then wait until the returned sender is dropped.
fn blockers(c: &Client, n: usize) -> (Vec<Registration>, Receiver<usize>, Sender<()>) {
    let (entered_tx, entered) = mpsc::channel();
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let regs = (0..n)
        .map(|i| {
            let entered_tx = Mutex::new(entered_tx.clone());
            let gate = Arc::clone(&gate);
            c.register(&format!("block{i}"), 0, move |_: &Delivery<'_>| {
                entered_tx.lock().unwrap().send(i).unwrap();
                // Ends when the test drops `release`.
                let _ = gate.lock().unwrap().recv();
            })
            .unwrap()
        })
        .collect();
    (regs, entered, release)
}

#[test]
fn sync_from_a_callback_while_every_other_worker_is_busy() {
    use nfy_linux::client::pool::WORKERS;
    let server = TestServer::start("busysync");
    let r = client(&server, "r");
    let s = client(&server, "s");
    let (_blocked, entered, release) = blockers(&r, WORKERS - 1);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let r2 = r.clone();
    let _q = r
        .register("q", 0, move |_: &Delivery<'_>| {
            tx.lock().unwrap().send(r2.sync()).unwrap();
        })
        .unwrap();
    r.sync().unwrap();
    for i in 0..WORKERS - 1 {
        s.notify("r", &format!("block{i}"), &0).unwrap();
    }
    for _ in 0..WORKERS - 1 {
        entered.recv_timeout(LONG).unwrap();
    }
    // The last free worker runs "q", whose sync needs somebody to read the
    // answer while every worker is inside a callback.
    s.notify("r", "q", &0).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), Ok(()));
    drop(release);
}

#[test]
fn input_is_taken_in_while_every_worker_is_blocked() {
    use nfy_linux::client::pool::{MAX_PENDING, WORKERS};
    let server = TestServer::start("blocked");
    let r = client(&server, "r");
    let s = client(&server, "s");
    let (_blocked, entered, release) = blockers(&r, WORKERS);
    let sunk = Arc::new(AtomicUsize::new(0));
    let sunk2 = Arc::clone(&sunk);
    let _sink = r
        .register("sink", 0, move |_: &Delivery<'_>| {
            sunk2.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    r.sync().unwrap();
    for i in 0..WORKERS {
        s.notify("r", &format!("block{i}"), &0).unwrap();
    }
    for _ in 0..WORKERS {
        entered.recv_timeout(LONG).unwrap();
    }
    // More broadcasts than the mailboxes hold (small ones: all of them fit
    // in the server's queue for this connection). The excess can only be
    // counted as dropped while every worker is still blocked if the
    // client keeps reading meanwhile.
    let extra = 50;
    let mut batch = s.batch();
    for _ in 0..MAX_PENDING + extra {
        batch.notify_raw("*", "sink", "{}").unwrap();
        if batch.len() == 256 {
            batch.send().unwrap();
        }
    }
    batch.send().unwrap();
    drop(batch);
    eventually("the excess dropped while every worker is blocked", || {
        r.dropped_deliveries() == extra as u64
    });
    drop(release);
    eventually("every queued broadcast delivered", || {
        sunk.load(Ordering::SeqCst) == MAX_PENDING
    });
    assert_eq!(r.dropped_deliveries(), extra as u64);
}

#[test]
fn a_receiver_that_calls_nothing_reconnects_by_itself() {
    let mut server = TestServer::start("passive");
    let r = client(&server, "r");
    let (tx, rx) = mpsc::channel();
    let _reg = r.register("ev", 0, recorder("r", &tx)).unwrap();
    r.sync().unwrap();
    for round in 0..3 {
        server.stop();
        eventually("the client to notice", || !r.is_connected());
        server.restart();
        // No call on `r` here: its link thread alone must reconnect and
        // register again.
        eventually("the client to reconnect", || r.is_connected());
        let s = client(&server, "s");
        eventually("the registration to be back", || {
            s.status().is_ok_and(|st| st.registrations == 1)
        });
        s.notify("r", "ev", &round).unwrap();
        let got = rx.recv_timeout(LONG).unwrap();
        assert_eq!(got.parameter, json!(round));
    }
}

#[test]
fn a_callback_may_close_its_own_client() {
    let server = TestServer::start("selfclose");
    let r = client(&server, "r");
    let s = client(&server, "s");
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let r2 = r.clone();
    let _reg = r
        .register("bye", 0, move |_: &Delivery<'_>| {
            r2.close();
            tx.lock().unwrap().send(r2.is_connected()).unwrap();
        })
        .unwrap();
    r.sync().unwrap();
    s.notify("r", "bye", &0).unwrap();
    // close() returned inside the callback (no deadlock on its own
    // worker) and the client is closed.
    assert!(!rx.recv_timeout(LONG).unwrap());
    assert_eq!(r.notify("s", "x", &0).unwrap_err(), Error::Server);
    // The server forgot the connection: nothing holds "bye" any more.
    eventually("the registration gone", || {
        s.status().is_ok_and(|st| st.registrations == 0)
    });
}

/// The server tells its frame limit (`--max-frame`, 64 KiB by default):
/// a notification over it is refused with a typed error before anything
/// is sent (the server would skip it), one under it arrives.
#[test]
fn a_notification_larger_than_the_server_accepts_is_refused() {
    let server = TestServer::start("c-limit");
    let rx_client = client(&server, "big-rx");
    let (tx, rx) = mpsc::channel();
    let _r = rx_client.register("big", 0, recorder("rx", &tx)).unwrap();
    rx_client.sync().unwrap();
    let c = client(&server, "big-tx");
    assert_eq!(c.max_frame(), 64 * 1024);
    let err = c
        .notify("big-rx", "big", &"x".repeat(100 * 1024))
        .unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit: 65536, .. }),
        "{err:?}"
    );
    assert_eq!(err.result(), nfy_core::NotifyResult::ErrServer);
    assert!(err.to_string().contains("too large"), "{err}");
    c.notify("big-rx", "big", &"y".repeat(60 * 1024)).unwrap();
    let got = rx.recv_timeout(LONG).unwrap();
    assert_eq!(got.parameter.as_str().map(str::len), Some(60 * 1024));
    quiet(&rx);
}

/// `on_connection_change` tells each way once: the server stopping, and
/// the client being connected again with its registrations.
#[test]
fn connection_changes_are_told_each_way() {
    let mut server = TestServer::start("c-conn-events");
    let c = client(&server, "watcher");
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let _h = c.on_connection_change(move |e| tx.lock().unwrap().send(e).unwrap());
    let (dtx, drx) = mpsc::channel();
    let _r = c.register("ev", 0, recorder("w", &dtx)).unwrap();
    quiet(&rx);
    server.stop();
    assert_eq!(
        rx.recv_timeout(LONG).unwrap(),
        nfy_linux::client::ConnectionEvent::Disconnected
    );
    server.restart();
    assert_eq!(
        rx.recv_timeout(LONG).unwrap(),
        nfy_linux::client::ConnectionEvent::Connected
    );
    // The registrations are back (sent before it was told; in force once
    // the server processed them: sync).
    c.sync().unwrap();
    let s = client(&server, "sender");
    s.notify("watcher", "ev", &1).unwrap();
    assert_eq!(drx.recv_timeout(LONG).unwrap().parameter, json!(1));
    quiet(&rx);
}
