//! The service loop on the host: the firmware's capacities, the broker, and
//! four in-memory ports standing in for the UARTs, driven through the same
//! `embedded-io` traits. The peers speak the documented JSON protocol,
//! built and parsed by `nfy-test-support` (independent of `nfy-core`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;

use nfy_baremetal::log::Log;
use nfy_baremetal::{
    FirmwareMemory, FirmwareService, CONNECTIONS, IDENTIFIERS, MAX_BODY, REGISTRATIONS,
};
use nfy_test_support::wire::{
    frame, frame_with_id, json_frame, notify_msg, register_msg, unregister_msg, FrameReader,
};
use serde_json::{json, Value};

/// One end of a serial line: bytes the peer sent, bytes the board wrote.
#[derive(Debug, Default)]
struct Pipe {
    inbox: VecDeque<u8>,
    outbox: Vec<u8>,
    /// Largest read, like a driver that returns what its buffer holds.
    read_max: Option<usize>,
    /// The peer stopped reading: nothing can be written.
    stalled: bool,
    reader: FrameReader,
}

impl embedded_io::ErrorType for Pipe {
    type Error = Infallible;
}

impl embedded_io::ReadReady for Pipe {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(!self.inbox.is_empty())
    }
}

impl embedded_io::Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let n = buf
            .len()
            .min(self.inbox.len())
            .min(self.read_max.unwrap_or(usize::MAX));
        assert!(
            n > 0 || buf.is_empty(),
            "read would block: the service must ask read_ready first"
        );
        for (slot, b) in buf.iter_mut().zip(self.inbox.drain(..n)) {
            *slot = b;
        }
        Ok(n)
    }
}

impl embedded_io::WriteReady for Pipe {
    fn write_ready(&mut self) -> Result<bool, Infallible> {
        Ok(!self.stalled)
    }
}

impl embedded_io::Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        assert!(
            !self.stalled,
            "write would block: the service must ask write_ready first"
        );
        // A UART takes a few bytes at a time.
        let n = buf.len().min(7);
        self.outbox.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl Pipe {
    fn send(&mut self, bytes: &[u8]) {
        self.inbox.extend(bytes);
    }

    fn send_json(&mut self, v: &Value) {
        self.send(&json_frame(v));
    }

    /// Every message the board wrote since the last call.
    fn received(&mut self) -> Vec<Value> {
        let out = std::mem::take(&mut self.outbox);
        self.reader.push(&out);
        let mut msgs = Vec::new();
        while let Some(f) = self.reader.next_frame().unwrap() {
            assert_eq!(f.msg_id, 0, "a JSON peer got a compact frame");
            msgs.push(f.json());
        }
        msgs
    }
}

#[derive(Debug, Default)]
struct Lines(Vec<String>);

impl Log for Lines {
    fn line(&mut self, args: fmt::Arguments<'_>) {
        self.0.push(args.to_string());
    }
}

impl Lines {
    fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.0)
    }

    fn assert_one(&mut self, part: &str) {
        let lines = self.take();
        assert!(
            lines.iter().any(|l| l.contains(part)),
            "no log line with {part:?} in {lines:?}"
        );
    }
}

/// The firmware's service over four pipes.
struct Board<'m> {
    service: FirmwareService<'m>,
    ports: [Pipe; CONNECTIONS],
    log: Lines,
}

impl<'m> Board<'m> {
    fn new(memory: &'m mut FirmwareMemory) -> Self {
        Board {
            service: FirmwareService::new(memory),
            ports: Default::default(),
            log: Lines::default(),
        }
    }

    /// Polls every port until nothing moves (bounded: a loop that never
    /// settles is a failure, not a hang).
    fn settle(&mut self) {
        for _ in 0..1_000_000 {
            let mut moved = false;
            for (i, port) in self.ports.iter_mut().enumerate() {
                let Ok(m) = self.service.poll(i, port, &mut self.log);
                moved |= m;
            }
            if !moved {
                for (i, port) in self.ports.iter_mut().enumerate() {
                    let Ok(work) = self.service.has_work(i, port);
                    assert!(!work, "port {i} has work but poll moved nothing");
                }
                return;
            }
        }
        panic!("the service never settled");
    }

    fn register(&mut self, port: usize, to: &str, notification: &str, priority: i32) {
        self.ports[port].send_json(&register_msg(to, notification, priority));
    }

    fn notify(&mut self, port: usize, from: &str, to: &str, notification: &str, param: Value) {
        self.ports[port].send_json(&notify_msg(from, to, notification, 0, param));
    }

    fn received(&mut self, port: usize) -> Vec<Value> {
        self.ports[port].received()
    }
}

fn memory() -> Box<FirmwareMemory> {
    Box::new(FirmwareMemory::new())
}

#[test]
fn unicast_reaches_the_registered_app_with_a_reference() {
    let mut m = memory();
    let mut b = Board::new(&mut m);
    b.register(1, "ui", "show", 0);
    b.notify(0, "payment", "ui", "show", json!({"text": "Insert card"}));
    b.settle();
    let got = b.received(1);
    assert_eq!(got.len(), 1, "{got:?}");
    let n = &got[0];
    assert_eq!(n["type"], "notify");
    assert_eq!(n["from"], "payment");
    assert_eq!(n["to"], "ui");
    assert_eq!(n["notification"], "show");
    assert_eq!(n["parameter"], json!({"text": "Insert card"}));
    assert!(
        n["reference"].is_u64(),
        "a unicast carries a reference: {n}"
    );
    assert!(b.received(0).is_empty());
    assert!(b.received(2).is_empty());
    assert_eq!(b.service.bus().delivered(), 1);
}

#[test]
fn to_exactly_one_picks_the_best_priority_then_the_most_recent() {
    let mut m = memory();
    let mut b = Board::new(&mut m);
    b.register(1, "low", "pay", 1);
    b.register(2, "high", "pay", 5);
    b.settle();
    b.notify(0, "pos", "1", "pay", json!({"n": 1}));
    b.settle();
    assert!(b.received(1).is_empty());
    let got = b.received(2);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["to"], "1", "the destination as sent");
    // A tie goes to the most recent registration.
    b.register(3, "late", "pay", 5);
    b.settle();
    b.notify(0, "pos", "1", "pay", json!({"n": 2}));
    b.settle();
    assert!(b.received(2).is_empty());
    assert_eq!(b.received(3)[0]["parameter"], json!({"n": 2}));
}

#[test]
fn broadcast_reaches_each_connection_once() {
    let mut m = memory();
    let mut b = Board::new(&mut m);
    // Port 1 holds two registrations for the notification: one copy.
    b.register(1, "a", "tick", 0);
    b.register(1, "b", "tick", 0);
    b.register(2, "c", "tick", 0);
    b.register(3, "d", "other", 0);
    b.notify(0, "clock", "*", "tick", json!(7));
    b.settle();
    for port in [1, 2] {
        let got = b.received(port);
        assert_eq!(got.len(), 1, "port {port}: {got:?}");
        assert_eq!(got[0]["to"], "*");
        assert_eq!(got[0]["parameter"], json!(7));
        assert!(got[0].get("reference").is_none(), "broadcasts carry none");
    }
    assert!(b.received(3).is_empty());
    // Nobody registered: no unicast error for a broadcast.
    b.notify(0, "clock", "*", "nobody-listens", json!({}));
    b.settle();
    assert!(b.received(0).is_empty());
}

#[test]
fn unicast_without_receiver_comes_back_as_unicast_error() {
    let mut m = memory();
    let mut b = Board::new(&mut m);
    b.notify(2, "payment", "nobody", "show", json!({"x": 1}));
    b.settle();
    let got = b.received(2);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["type"], "unicast_error");
    assert_eq!(got[0]["to"], "nobody");
    assert_eq!(got[0]["notification"], "show");
    assert_eq!(got[0]["parameter"], json!({"x": 1}));
    b.log.assert_one("port 2: unicast error");
    // "1" with no registration at all: an error too.
    b.notify(2, "payment", "1", "show", json!({}));
    b.settle();
    assert_eq!(b.received(2)[0]["type"], "unicast_error");
}

#[test]
fn unregistering_stops_delivery() {
    let mut m = memory();
    let mut b = Board::new(&mut m);
    b.register(1, "ui", "show", 0);
    b.ports[1].send_json(&unregister_msg("ui", "show"));
    // Ports are independent: settle before another port depends on it.
    b.settle();
    b.notify(0, "payment", "ui", "show", json!({}));
    b.settle();
    assert!(b.received(1).is_empty());
    assert_eq!(b.received(0)[0]["type"], "unicast_error");
    assert_eq!(b.service.bus().registrations(), 0);
}

#[test]
fn bad_frames_are_skipped_and_the_port_goes_on() {
    let mut m = memory();
    let mut b = Board::new(&mut m);
    let port = &mut b.ports[0];
    port.send(b"garbage before any frame");
    port.send(&frame(b"{not json"));
    port.send(&frame(br#"{"type":"register","to":"ui"}"#));
    port.send(&frame_with_id(1, b"\x00\x01compact"));
    port.send(&frame(&vec![b' '; MAX_BODY + 1]));
    port.send(&[0x00, 0x4e, 0x46, 0x59, 0, 0, 0, 2]);
    b.settle();
    let lines = b.log.take();
    for part in [
        "port 0: discarded 24 bytes before a frame prefix",
        "port 0: bad message skipped: body is not valid JSON",
        "port 0: bad message skipped: member \"notification\" is missing",
        "port 0: compact body skipped",
        &format!("port 0: skipped a frame with a {}-byte body", MAX_BODY + 1),
        "port 0: discarded a frame header with size field 2",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(part)),
            "no log line with {part:?} in {lines:?}"
        );
    }
    assert!(b.received(0).is_empty(), "bad input gets no answer");
    // The port still works, and so do the others.
    b.register(0, "ui", "show", 0);
    b.notify(1, "payment", "ui", "show", json!({"ok": true}));
    b.settle();
    assert_eq!(b.received(0)[0]["parameter"], json!({"ok": true}));
}

#[test]
fn frames_arriving_byte_by_byte_are_reassembled() {
    let mut m = memory();
    let mut b = Board::new(&mut m);
    for p in &mut b.ports {
        p.read_max = Some(1);
    }
    b.register(1, "ui", "show", 0);
    for i in 0..3 {
        b.notify(0, "payment", "ui", "show", json!({ "i": i }));
    }
    b.settle();
    let got: Vec<Value> = b
        .received(1)
        .iter()
        .map(|n| n["parameter"]["i"].clone())
        .collect();
    assert_eq!(got, [json!(0), json!(1), json!(2)]);
}

#[test]
fn a_receiver_that_stops_reading_holds_up_input_and_nothing_is_lost() {
    let mut m = memory();
    let mut b = Board::new(&mut m);
    b.register(1, "ui", "show", 0);
    b.settle();
    b.ports[1].stalled = true;
    let pad = "x".repeat(300);
    for i in 0..20 {
        b.notify(0, "payment", "ui", "show", json!({ "i": i, "pad": pad }));
    }
    b.settle();
    assert!(b.ports[1].outbox.is_empty());
    assert!(
        b.service.queued(1) > 0,
        "the receiver's queue holds what it could not take"
    );
    assert!(
        !b.ports[0].inbox.is_empty(),
        "input stays in the sender's port while the queue is full"
    );
    b.ports[1].stalled = false;
    b.settle();
    let got: Vec<Value> = b
        .received(1)
        .iter()
        .map(|n| n["parameter"]["i"].clone())
        .collect();
    assert_eq!(
        got,
        (0..20).map(|i| json!(i)).collect::<Vec<_>>(),
        "all, in order"
    );
    assert!(b.ports[0].inbox.is_empty());
}

#[test]
fn a_returned_unicast_goes_to_the_next_receiver_then_back_to_its_sender() {
    let mut m = memory();
    let mut b = Board::new(&mut m);
    b.register(1, "ui", "show", 5);
    b.register(2, "ui", "show", 1);
    b.notify(0, "payment", "ui", "show", json!({"n": 1}));
    b.settle();
    let first = b.received(1).remove(0);
    assert!(first["reference"].is_u64());
    // Port 1 unregistered meanwhile and sends it back as it came.
    b.ports[1].send_json(&unregister_msg("ui", "show"));
    b.ports[1].send_json(&first);
    b.settle();
    let second = b.received(2);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0]["parameter"], json!({"n": 1}));
    assert!(b.received(1).is_empty());
    // Port 2 does the same: nobody is left, the error goes to the sender.
    b.ports[2].send_json(&unregister_msg("ui", "show"));
    b.ports[2].send_json(&second[0]);
    b.settle();
    assert!(b.received(2).is_empty(), "not to the port that returned it");
    let err = b.received(0);
    assert_eq!(err.len(), 1, "{err:?}");
    assert_eq!(err[0]["type"], "unicast_error");
    assert_eq!(err[0]["from"], "payment");
}

#[test]
fn a_forged_reference_is_an_ordinary_notify() {
    let mut m = memory();
    let mut b = Board::new(&mut m);
    b.register(1, "ui", "show", 0);
    b.notify(0, "payment", "ui", "show", json!({}));
    b.settle();
    let delivered = b.received(1).remove(0);
    // Port 2 never got that unicast: its copy of the reference names
    // port 0, but the error for it must come back to port 2.
    let mut forged = notify_msg("mallory", "nobody", "show", 0, json!({}));
    forged["reference"] = delivered["reference"].clone();
    b.ports[2].send_json(&forged);
    b.settle();
    assert!(b.received(0).is_empty(), "port 0 must not hear of it");
    assert_eq!(b.received(2)[0]["type"], "unicast_error");
}

/// An identifier of exactly 64 bytes (the spec's longest), `tag` first.
fn long_id(tag: &str) -> String {
    format!("{tag:-<64}")
}

/// The firmware's registrations over as few identifiers as its pool
/// guarantees them for: `CONNECTIONS` app IDs of 64 bytes, each
/// registered for the same notification IDs (64 bytes too), spread over
/// the ports. Returns (app, notification) per registration.
fn capacity_keys() -> Vec<(String, String)> {
    let apps = CONNECTIONS;
    let notifications = REGISTRATIONS.div_ceil(apps);
    assert!(
        apps + notifications <= IDENTIFIERS,
        "the pool must hold them"
    );
    (0..REGISTRATIONS)
        .map(|i| {
            (
                long_id(&format!("app{}", i % apps)),
                long_id(&format!("n{}", i / apps)),
            )
        })
        .collect()
}

#[test]
fn the_table_holds_its_capacity_and_refuses_more() {
    let mut m = memory();
    let mut b = Board::new(&mut m);
    let keys = capacity_keys();
    for (i, (to, n)) in keys.iter().enumerate() {
        b.register(i % CONNECTIONS, to, n, 0);
    }
    b.settle();
    assert_eq!(b.service.bus().registrations() as usize, REGISTRATIONS);
    assert!(b.log.take().is_empty());
    // Known identifiers, but no slot left.
    b.register(0, &keys[1].0, &keys[0].1, 0);
    b.settle();
    b.log
        .assert_one("port 0: registration refused: routing table full");
    // Re-registering an existing one replaces it: no refusal.
    let (to1, n0) = (&keys[1].0, &keys[1].1);
    b.register(1, to1, n0, 9);
    b.settle();
    b.notify(0, "x", "1", n0, json!({}));
    b.settle();
    assert!(b.log.take().is_empty());
    assert_eq!(
        b.received(1)[0]["to"],
        "1",
        "app1 now has the best priority"
    );
    b.notify(0, "x", "*", n0, json!({}));
    b.settle();
    for port in 0..CONNECTIONS {
        assert_eq!(b.received(port).len(), 1, "port {port}");
    }
}

/// **Decision** (the table's identifier pool, see `CompactStorage`): with
/// slots left, a registration naming an identifier the full pool does not
/// hold is refused as "routing table full"; one naming held identifiers
/// is not; a pool entry is freed with the last registration naming it.
#[test]
fn the_identifier_pool_full_is_a_table_full_refusal() {
    let mut m = memory();
    let mut b = Board::new(&mut m);
    // IDENTIFIERS - 1 notification IDs registered by one app of 64 bytes.
    let app = long_id("app");
    for i in 0..IDENTIFIERS - 1 {
        b.register(i % CONNECTIONS, &app, &long_id(&format!("n{i}")), 0);
    }
    b.settle();
    assert!(b.log.take().is_empty());
    let held = b.service.bus().registrations() as usize;
    assert!(held < REGISTRATIONS, "slots are left");
    // A new app ID: the pool is full.
    b.register(0, &long_id("other"), &long_id("n0"), 0);
    b.settle();
    b.log
        .assert_one("port 0: registration refused: routing table full");
    assert_eq!(b.service.bus().registrations() as usize, held);
    // Held identifiers on another port: accepted.
    b.register(3, &app, &long_id("n0"), 0);
    b.settle();
    assert!(b.log.take().is_empty());
    // Unregistering the last registration naming "n1" frees its entry.
    b.ports[1].send_json(&unregister_msg(&app, &long_id("n1")));
    b.register(0, &long_id("other"), &long_id("n0"), 0);
    b.settle();
    assert!(b.log.take().is_empty());
    b.notify(1, "x", &long_id("other"), &long_id("n0"), json!({}));
    b.settle();
    assert_eq!(b.received(0)[0]["to"], long_id("other"));
}

#[test]
fn the_largest_frames_and_their_answers_fit() {
    let mut m = memory();
    let mut b = Board::new(&mut m);
    b.register(1, &"r".repeat(64), &"n".repeat(64), 0);
    b.settle();
    // A body of exactly MAX_BODY bytes, leaving out `flags` and with the
    // longest identifiers: the answer adds `flags`, `reference` and a
    // longer type.
    let body = |to: &str| {
        let mut v = json!({"type": "notify", "from": "f".repeat(64), "to": to,
            "notification": "n".repeat(64), "parameter": ""});
        let pad = MAX_BODY - v.to_string().len();
        v["parameter"] = json!("p".repeat(pad));
        let s = v.to_string();
        assert_eq!(s.len(), MAX_BODY);
        s
    };
    for _ in 0..3 {
        b.ports[0].send(&frame(body(&"r".repeat(64)).as_bytes()));
        b.ports[0].send(&frame(body(&"x".repeat(64)).as_bytes()));
    }
    b.settle();
    assert_eq!(b.received(1).len(), 3);
    let errors = b.received(0);
    assert_eq!(errors.len(), 3);
    assert!(errors.iter().all(|e| e["type"] == "unicast_error"));
    assert!(b.log.take().iter().all(|l| l.contains("unicast error")));
}
