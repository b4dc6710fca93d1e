//! Flow control against a real `notifysvc` with its default options
//! (issue 12, spec 6's Decision): a sender faster than its receiver is
//! slowed down (the server stops reading it), a live receiver is never
//! disconnected, nothing is lost; a receiver that takes nothing at all is
//! disconnected after the stall timeout and the others go on.
//!
//! Senders write as fast as the server takes (64 frames per write, a
//! 64-byte parameter); receivers decode every message (`serde_json`) and
//! pause now and then. A slow receiver also starts reading only once the
//! server has paused the sender for it (its log says so), so each test
//! sees flow control at work whatever the machine's speed. Sizes: [`count`] notifications
//! per test, 200,000 in a release build (`cargo test --release -p nfy-linux
//! --test flow_control`), 20,000 in a debug one (CI runs debug builds on
//! two cores); `NFY_FLOW_N` overrides both. Nothing is timed: the tests
//! count, and read the server's shutdown line for the pauses and
//! disconnects it made.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::{json_frame, notify_msg, JsonClient, Server, DEADLINE};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

/// Notifications per test (see the module docs).
fn count() -> u64 {
    std::env::var("NFY_FLOW_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            20_000
        } else {
            200_000
        })
}

/// The parameter of notification `seq`: 64 bytes of JSON.
fn parameter(seq: u64) -> Value {
    let pad = "p".repeat(64 - 20 - seq.to_string().len());
    json!({ "seq": seq, "pad": pad })
}

/// A sender on its own thread: `n` notifications from `from` to `to`
/// (app, `"1"` or `"*"`), 64 frames per write, as fast as the server
/// takes them. Returns the connection afterwards (it read nothing).
fn send_all(mut c: JsonClient, from: &str, to: &str, id: &str, n: u64) -> JoinHandle<JsonClient> {
    let (from, to, id) = (from.to_owned(), to.to_owned(), id.to_owned());
    thread::spawn(move || {
        let mut batch = Vec::new();
        for seq in 0..n {
            batch.extend(json_frame(&notify_msg(&from, &to, &id, 0, parameter(seq))));
            if batch.len() > 64 * 150 || seq + 1 == n {
                c.send_raw(&batch).unwrap();
                batch.clear();
            }
        }
        c
    })
}

/// How a receiver reads: it sleeps `pause` after every `every` messages.
#[derive(Debug, Clone, Copy)]
struct Reader {
    every: u64,
    pause: Duration,
}

/// A receiver on its own thread: reads `n` notifications `id`, checks
/// each is the next in sequence (in order, none twice, none missing) and
/// that nothing else arrives, and returns the connection.
fn receive_all(mut c: JsonClient, id: &str, n: u64, reader: Reader) -> JoinHandle<JsonClient> {
    let id = id.to_owned();
    thread::spawn(move || {
        let Reader { every, pause } = reader;
        for want in 0..n {
            let v = c
                .recv(DEADLINE)
                .unwrap()
                .unwrap_or_else(|| panic!("{id}: nothing after {want} notifications"));
            assert_eq!(v["type"], "notify", "{v}");
            assert_eq!(v["notification"], id.as_str(), "{v}");
            assert_eq!(v["parameter"]["seq"], want, "{id}: out of order or lost");
            if (want + 1) % every == 0 {
                thread::sleep(pause);
            }
        }
        c
    })
}

/// A receiver slower than any sender here: a 2 ms pause every 500
/// messages on top of decoding each.
const SLOW: Reader = Reader {
    every: 500,
    pause: Duration::from_millis(2),
};
/// A receiver that only decodes (pauses 0.1 ms every 5,000).
const FAST: Reader = Reader {
    every: 5000,
    pause: Duration::from_micros(100),
};

/// Waits until the server has paused a sender (its debug log says so):
/// a receiver that starts reading only then is slower than its sender
/// whatever the machine's speed.
fn await_pause(server: &Server) {
    server.expect_log(": paused: waits for ");
}

/// The counters of the server's shutdown line.
#[derive(Debug)]
struct Shutdown {
    pauses: u64,
    stalled: u64,
    overflows: u64,
    unicast_errors: u64,
}

/// Stops the server (SIGTERM) and reads its shutdown line.
fn stop(mut server: Server) -> (Shutdown, String) {
    assert_eq!(server.stop_with(Signal::SIGTERM).code(), Some(0));
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or_else(|| panic!("no shutdown line:\n{log}"))
        .to_owned();
    let before = |needle: &str| -> u64 {
        let end = line
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in {line}"));
        let digits: String = line[..end]
            .trim_end()
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        digits.parse().unwrap()
    };
    let s = Shutdown {
        pauses: before(" pauses"),
        stalled: before(" stalled disconnects"),
        overflows: before(" overflow disconnects"),
        unicast_errors: before(" unicast errors"),
    };
    (s, log)
}

/// Stops the server and checks a clean run: no unicast error, no stalled
/// or overflowed connection, and (when `paused`) flow control held a
/// sender back at least once. Returns the shutdown figures and the log.
fn stop_clean(server: Server, paused: bool) -> (Shutdown, String) {
    let (s, log) = stop(server);
    assert_eq!(
        (s.unicast_errors, s.stalled, s.overflows),
        (0, 0, 0),
        "{log}"
    );
    if paused {
        assert!(s.pauses > 0, "the sender was never held back: {s:?}\n{log}");
    }
    (s, log)
}

/// A raw JSON sender over TCP streams `count()` unicasts to a raw JSON
/// receiver on the Unix socket that decodes each and pauses now and then:
/// every notification arrives once, in order; no unicast error, no
/// disconnect; the server held the sender back.
#[test]
fn a_slow_reader_slows_its_sender_down_and_nothing_is_lost() {
    let n = count();
    let server = Server::start();
    let mut rx = server.unix_client();
    rx.register("B", "burst", 0).unwrap();
    assert!(rx.barrier("B").is_empty());
    let sender = send_all(server.tcp_client(), "A", "B", "burst", n);
    await_pause(&server);
    let receiver = receive_all(rx, "burst", n, SLOW);
    let mut tx = sender.join().unwrap();
    let mut rx = receiver.join().unwrap();
    assert!(tx.barrier("A").is_empty(), "no unicast error");
    assert!(rx.barrier("B").is_empty(), "nothing more");
    let (_, log) = stop_clean(server, true);
    assert!(!log.contains("disconnecting it"), "{log}");
}

/// The same to `"1"`: the best receiver is slow; it gets everything, the
/// other one nothing (the sender waits; it is not given to the next).
#[test]
fn one_waits_for_its_slow_best_receiver() {
    let n = count();
    let server = Server::start();
    let mut best = server.unix_client();
    best.register("best", "one", 5).unwrap();
    assert!(best.barrier("best").is_empty());
    let mut other = server.tcp_client();
    other.register("other", "one", 1).unwrap();
    assert!(other.barrier("other").is_empty());
    let sender = send_all(server.tcp_client(), "A", "1", "one", n);
    await_pause(&server);
    let receiver = receive_all(best, "one", n, SLOW);
    let mut tx = sender.join().unwrap();
    receiver.join().unwrap();
    assert!(tx.barrier("A").is_empty(), "no unicast error");
    assert!(other.barrier("other").is_empty(), "nothing for the other");
    stop_clean(server, true);
}

/// A broadcast to 8 receivers (half on TCP, half on the Unix socket) of
/// which one is slow: every receiver gets every notification, in order
/// (the sender waits for the slowest live subscriber). The slow one is on
/// the Unix socket, whose small buffers make the server's queue for it
/// fill even with the debug build's 20,000 notifications (TCP's may hold
/// them all).
#[test]
fn a_broadcast_waits_for_its_slowest_subscriber() {
    let n = count();
    let server = Server::start();
    let mut receivers = Vec::new();
    let mut slow = None;
    for i in 0..8 {
        let mut c = if i % 2 == 0 {
            server.unix_client()
        } else {
            server.tcp_client()
        };
        let app = format!("r{i}");
        c.register(&app, "all", 0).unwrap();
        assert!(c.barrier(&app).is_empty());
        if i == 4 {
            slow = Some(c);
        } else {
            receivers.push(receive_all(c, "all", n, FAST));
        }
    }
    let sender = send_all(server.tcp_client(), "A", "*", "all", n);
    await_pause(&server);
    receivers.push(receive_all(slow.unwrap(), "all", n, SLOW));
    sender.join().unwrap();
    for r in receivers {
        r.join().unwrap();
    }
    let (s, log) = stop(server);
    assert_eq!((s.stalled, s.overflows), (0, 0), "{log}");
    assert!(s.pauses > 0, "{s:?}");
}

/// A broadcast to 8 receivers of which one stops reading entirely: it
/// holds the sender back for the stall timeout, is disconnected ("took no
/// bytes"), and the seven others get every notification.
#[test]
fn a_receiver_that_stops_reading_is_disconnected_after_the_stall_timeout() {
    let n = count();
    let server = Server::builder().arg("--stall-timeout").arg("1s").start();
    let mut receivers = Vec::new();
    let mut dead = None;
    for i in 0..8 {
        let mut c = server.unix_client();
        let app = format!("r{i}");
        c.register(&app, "all", 0).unwrap();
        assert!(c.barrier(&app).is_empty());
        if i == 3 {
            dead = Some(c);
        } else {
            receivers.push(receive_all(c, "all", n, FAST));
        }
    }
    let sender = send_all(server.tcp_client(), "A", "*", "all", n);
    sender.join().unwrap();
    for r in receivers {
        r.join().unwrap();
    }
    server.expect_log("took no bytes for 1");
    // The dead one finds what reached its socket, then the end.
    let mut dead = dead.unwrap();
    assert!(dead.closed_within(DEADLINE), "it was not disconnected");
    let (s, log) = stop(server);
    assert_eq!((s.stalled, s.overflows), (1, 0), "{log}");
    assert_eq!(log.matches("took no bytes for").count(), 1, "{log}");
}

/// Our library as the sender, one `notify` per call and with
/// `Client::batch`, to a slow raw receiver: held back by the server like
/// any stream peer, it waits, and everything arrives.
#[test]
fn a_library_sender_waits_for_a_slow_receiver() {
    let n = count();
    let (server, rx, tx) = library_sender();
    let sending = thread::spawn(move || {
        for seq in 0..n {
            tx.notify("B", "lib", &parameter(seq)).unwrap();
        }
        send_batches(&tx, n..2 * n);
    });
    await_pause(&server);
    receive_all(rx, "lib", 2 * n, SLOW).join().unwrap();
    sending.join().unwrap();
    stop_clean(server, true);
}

/// The same with a receiver that is busy for 3 s once the sender is held
/// back: slow but alive (under the stall timeout), so the sender must
/// wait that long (the client's writes wait for a server that slows them
/// down; before the client's part of issue 12 a write that blocked for 2 s
/// failed and closed the connection).
#[test]
fn a_library_sender_waits_for_a_receiver_busy_for_seconds() {
    let n = count();
    let (server, rx, tx) = library_sender();
    let sending = thread::spawn(move || {
        for seq in 0..n {
            tx.notify("B", "lib", &parameter(seq)).unwrap();
        }
        send_batches(&tx, n..2 * n);
    });
    await_pause(&server);
    thread::sleep(Duration::from_secs(3));
    receive_all(rx, "lib", 2 * n, SLOW).join().unwrap();
    sending.join().unwrap();
    stop_clean(server, false);
}

/// A server, a raw receiver "B" of notifications "lib", and a library
/// client "A" to send them.
fn library_sender() -> (Server, JsonClient, nfy_linux::client::Client) {
    use nfy_linux::client::{Client, ServerAddr};
    let server = Server::start();
    let mut rx = server.unix_client();
    rx.register("B", "lib", 0).unwrap();
    assert!(rx.barrier("B").is_empty());
    let addr = ServerAddr {
        unix: Some(server.socket.clone()),
        tcp: None,
    };
    let tx = Client::connect_to(addr).unwrap();
    tx.set_app_id("A").unwrap();
    (server, rx, tx)
}

/// Sends notifications `seqs` to "B" with `Client::batch`, 32 a write.
fn send_batches(tx: &nfy_linux::client::Client, seqs: std::ops::Range<u64>) {
    let mut batch = tx.batch();
    for seq in seqs {
        batch.notify("B", "lib", &parameter(seq)).unwrap();
        if batch.len() == 32 {
            batch.send().unwrap();
        }
    }
    batch.send().unwrap();
}
