//! The broker and several clients together, in memory and
//! deterministically (quinn-proto's `Pair` idea): a small adapter that does
//! what a server adapter must (decoders, output queues, held input while a
//! connection is paused, closes, a clock), byte pipes of bounded capacity
//! for the sockets in between, and minimal clients written from the
//! protocol (raw JSON readers and writers, a compact client that
//! acknowledges). Flow control, stalls, crash-safe delivery and their
//! accounting are tested here without a socket.

use std::collections::VecDeque;
use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec as StdVec;

use core::time::Duration;

use super::super::*;
use crate::msg::{compact, Hello};
use crate::wire::{encode_header, frames, FrameDecoder};

type PairLedger = InlineLedger<{ 16 * 1024 }, 512>;
type PairBroker = Broker<16, 64, 4, 2, InlineStorage<64>, InlineConns<16, PairLedger>>;

/// Bytes a socket buffer holds, each way.
const SOCKET: usize = 2048;
/// Bytes the adapter reads from a socket at once.
const READ: usize = 1024;
/// Reads per connection per step (the adapter's fairness budget).
const READS_PER_STEP: usize = 4;
/// Input held for a paused connection at most.
const HELD: usize = 4096;
/// Simulated time per step.
const STEP: Duration = Duration::from_millis(1);

fn limits() -> Limits {
    Limits {
        max_frame: 2048,
        max_queue: 16 * 1024,
        flow: FlowLimits {
            high_water: 4096,
            low_water: 1024,
            stall_timeout: Duration::from_secs(1),
        },
        ..Limits::default()
    }
}

/// The server side of one connection, as an adapter keeps it.
struct Side {
    id: ConnId,
    /// Bytes the client wrote that the adapter has not read (the server's
    /// socket receive buffer).
    inbox: VecDeque<u8>,
    /// Input read while paused, to be given again first.
    held: StdVec<u8>,
    /// Bytes of `held` searched for acknowledgements.
    scanned: usize,
    /// Output queue, whole frames.
    queue: StdVec<u8>,
    open: bool,
}

/// The adapter's outbox over every side.
struct Out<'a> {
    sides: &'a mut [Side],
    max_queue: usize,
    log: &'a mut StdVec<String>,
    closes: &'a mut StdVec<ConnId>,
    /// The largest queue seen, with a unicast error or not.
    peak: &'a mut usize,
}

impl Out<'_> {
    fn side(&mut self, conn: ConnId) -> Option<&mut Side> {
        self.sides.iter_mut().find(|s| s.open && s.id == conn)
    }

    fn queue(&mut self, conn: ConnId, frame: &[u8]) -> Result<(), QueueFull> {
        let max = self.max_queue;
        let side = self.side(conn).ok_or(QueueFull)?;
        if side.queue.len() + frame.len() > max {
            return Err(QueueFull);
        }
        side.queue.extend_from_slice(frame);
        let len = side.queue.len();
        *self.peak = (*self.peak).max(len);
        Ok(())
    }
}

impl Outbox for Out<'_> {
    fn send(&mut self, conn: ConnId, encoding: Encoding, m: &Message<'_>) -> Result<(), QueueFull> {
        let mut buf = vec![0u8; 4096];
        let n = wire::encode_frame(&mut buf, encoding.msg_id(), |b| msg::encode(m, encoding, b))
            .map_err(|_| QueueFull)?;
        self.queue(conn, &buf[..n])
    }

    fn send_frame(&mut self, conn: ConnId, frame: &[u8]) -> Result<(), QueueFull> {
        self.queue(conn, frame)
    }

    fn backlog(&self, conn: ConnId) -> usize {
        self.sides
            .iter()
            .find(|s| s.open && s.id == conn)
            .map_or(0, |s| s.queue.len())
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Stalled { conn, .. } | Event::Overflow { conn } | Event::Revoked { conn } => {
                self.closes.push(conn)
            }
            Event::Acked { .. } | Event::Hello { .. } => return,
            _ => {}
        }
        self.log.push(format!("{event:?}"));
    }
}

/// What a client received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    kind: &'static str,
    notification: String,
    seq: u64,
}

/// A client: what it writes, how fast it reads, what it got.
struct Client {
    /// Bytes being written (a blocking writer: it waits while the socket
    /// is full).
    to_send: VecDeque<u8>,
    /// Notifications to send, one at a time: the next is written once the
    /// last has (mostly) left, so its acknowledgements wait behind one
    /// frame at most, as in a client whose writes block.
    script: VecDeque<StdVec<u8>>,
    /// Bytes from the server not read yet (its socket receive buffer).
    inbox: VecDeque<u8>,
    decoder: FrameDecoder<StdVec<u8>>,
    /// Bytes it reads per step (0: it does not read).
    read_rate: usize,
    /// Reads only every `read_every` steps (a reader that pauses).
    read_every: u64,
    /// Acknowledges unicasts, `ack_lag` steps after reading them.
    acks: Option<u64>,
    pending_acks: VecDeque<(u64, u64)>,
    got: StdVec<Got>,
    closed: bool,
}

impl Client {
    fn new(read_rate: usize) -> Client {
        Client {
            to_send: VecDeque::new(),
            script: VecDeque::new(),
            inbox: VecDeque::new(),
            decoder: FrameDecoder::new(vec![0u8; 4096]),
            read_rate,
            read_every: 1,
            acks: None,
            pending_acks: VecDeque::new(),
            got: StdVec::new(),
            closed: false,
        }
    }

    fn write(&mut self, frame: &[u8]) {
        self.to_send.extend(frame);
    }

    /// Queues a notification to send after the previous ones.
    fn send(&mut self, frame: StdVec<u8>) {
        self.script.push_back(frame);
    }

    /// Moves the next scripted frame to the writer when it is idle enough.
    fn feed_writer(&mut self) {
        while self.to_send.len() < 256 {
            let Some(f) = self.script.pop_front() else {
                return;
            };
            self.to_send.extend(f);
        }
    }

    fn idle(&self) -> bool {
        self.to_send.is_empty() && self.script.is_empty()
    }

    fn notifications(&self, id: &str) -> StdVec<u64> {
        self.got
            .iter()
            .filter(|g| g.kind == "notify" && g.notification == id)
            .map(|g| g.seq)
            .collect()
    }

    fn errors(&self) -> StdVec<u64> {
        self.got
            .iter()
            .filter(|g| g.kind == "unicast_error")
            .map(|g| g.seq)
            .collect()
    }

    fn take_in(&mut self, step: u64) {
        if self.read_rate == 0 || step % self.read_every != 0 {
            return;
        }
        let n = self.read_rate.min(self.inbox.len());
        let bytes: StdVec<u8> = self.inbox.drain(..n).collect();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let (used, decoded) = self.decoder.feed(rest);
            rest = &rest[used..];
            let Some(Decoded::Frame(f)) = decoded else {
                continue;
            };
            let m = msg::decode(Encoding::from_msg_id(f.msg_id), f.body).unwrap();
            let (kind, n) = match &m {
                Message::Notify(n) => ("notify", n),
                Message::UnicastError(n) => ("unicast_error", n),
                _ => continue,
            };
            let seq = serde_json::from_str::<serde_json::Value>(n.parameter.as_str()).unwrap()
                ["seq"]
                .as_u64()
                .unwrap();
            if let (Some(lag), Some(r), "notify") = (self.acks, n.reference, kind) {
                self.pending_acks.push_back((step + lag, r));
            }
            self.got.push(Got {
                kind,
                notification: n.notification.as_str().into(),
                seq,
            });
        }
        while self
            .pending_acks
            .front()
            .is_some_and(|(due, _)| *due <= step)
        {
            if let Some((_, r)) = self.pending_acks.pop_front() {
                let ack = compact_frame(&Message::Ack(r));
                self.write(&ack);
            }
        }
    }
}

fn json_frame(body: &str) -> StdVec<u8> {
    let mut f = encode_header(body.len(), 0).unwrap().to_vec();
    f.extend_from_slice(body.as_bytes());
    f
}

fn compact_frame(m: &Message<'_>) -> StdVec<u8> {
    let mut buf = vec![0u8; 512];
    let n = wire::encode_frame(&mut buf, 1, |b| compact::encode(m, b)).unwrap();
    buf.truncate(n);
    buf
}

fn register(to: &str, id: &str, priority: i32) -> StdVec<u8> {
    json_frame(&format!(
        r#"{{"type":"register","to":"{to}","notification":"{id}","priority":{priority}}}"#
    ))
}

/// A notify with a 64-byte parameter carrying `seq`.
fn notify(from: &str, to: &str, id: &str, seq: u64) -> StdVec<u8> {
    json_frame(&format!(
        r#"{{"type":"notify","from":"{from}","to":"{to}","notification":"{id}","parameter":{{"seq":{seq},"pad":"{}"}}}}"#,
        "p".repeat(40)
    ))
}

/// Broker, adapter and clients.
struct Pair {
    broker: std::boxed::Box<PairBroker>,
    sides: StdVec<Side>,
    decoders: StdVec<FrameDecoder<StdVec<u8>>>,
    clients: StdVec<Client>,
    now: Timestamp,
    step: u64,
    log: StdVec<String>,
    closes: StdVec<ConnId>,
    peak: usize,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            broker: std::boxed::Box::new(Broker::with_storage(
                Whitelist::new(),
                limits(),
                InlineStorage::new(),
            )),
            sides: StdVec::new(),
            decoders: StdVec::new(),
            clients: StdVec::new(),
            now: Timestamp::from_micros(1_000_000),
            step: 0,
            log: StdVec::new(),
            closes: StdVec::new(),
            peak: 0,
        }
    }

    /// Connects a client reading `read_rate` bytes per step; its index.
    fn client(&mut self, read_rate: usize) -> usize {
        let id = self.broker.connect(PeerKind::Local).unwrap();
        self.sides.push(Side {
            id,
            inbox: VecDeque::new(),
            held: StdVec::new(),
            scanned: 0,
            queue: StdVec::new(),
            open: true,
        });
        self.decoders.push(FrameDecoder::new(vec![
            0u8;
            limits().decoder_len(PeerKind::Local)
        ]));
        self.clients.push(Client::new(read_rate));
        self.clients.len() - 1
    }

    fn id(&self, c: usize) -> ConnId {
        self.sides[c].id
    }

    /// Runs until nothing moves (every client wrote everything and the
    /// pipes are empty), at most `max_steps`; the steps taken.
    fn run(&mut self, max_steps: u64) -> u64 {
        for n in 0..max_steps {
            if !self.step_once() && self.clients.iter().all(Client::idle) {
                return n;
            }
        }
        max_steps
    }

    /// One step of everybody; true when a byte moved anywhere.
    fn step_once(&mut self) -> bool {
        let mut moved = false;
        // Clients write what their socket takes.
        for (c, side) in self.clients.iter_mut().zip(&mut self.sides) {
            if !side.open {
                c.to_send.clear();
                c.script.clear();
                continue;
            }
            c.feed_writer();
            let n = c.to_send.len().min(SOCKET - side.inbox.len().min(SOCKET));
            side.inbox.extend(c.to_send.drain(..n));
            moved |= n > 0;
        }
        // The adapter reads every connection that is not paused.
        for i in 0..self.sides.len() {
            moved |= self.read(i);
            self.process_closes();
        }
        // One flush per connection: whole frames, as far as the peer's
        // socket takes them.
        for i in 0..self.sides.len() {
            let side = &mut self.sides[i];
            if !side.open {
                continue;
            }
            let client = &mut self.clients[i];
            let room = SOCKET.saturating_sub(client.inbox.len());
            let mut take = 0;
            for f in frames(&side.queue) {
                if take + f.total_len() > room {
                    break;
                }
                take += f.total_len();
            }
            client.inbox.extend(side.queue.drain(..take));
            moved |= take > 0;
            let id = side.id;
            let mut out = Out {
                sides: &mut self.sides,
                max_queue: limits().max_queue,
                log: &mut self.log,
                closes: &mut self.closes,
                peak: &mut self.peak,
            };
            self.broker.sent(id, take, &mut out);
        }
        self.process_closes();
        // Clients read.
        for (i, c) in self.clients.iter_mut().enumerate() {
            let before = c.inbox.len();
            c.take_in(self.step);
            moved |= c.inbox.len() != before;
            if !self.sides[i].open && c.inbox.is_empty() {
                c.closed = true;
            }
        }
        // Time passes.
        self.step += 1;
        self.now = self.now.saturating_add(STEP);
        if self.broker.poll_timeout().is_some_and(|t| t <= self.now) {
            let mut out = Out {
                sides: &mut self.sides,
                max_queue: limits().max_queue,
                log: &mut self.log,
                closes: &mut self.closes,
                peak: &mut self.peak,
            };
            self.broker.handle_timeout(self.now, &mut out);
            self.process_closes();
        }
        moved || self.broker.poll_timeout().is_some()
    }

    /// Reads connection `i` as the adapter does: held input first, then
    /// the socket, up to the budget; stops when the broker pauses it.
    /// While paused, it reads on into the held input up to a bound, for the
    /// acknowledgements there.
    fn read(&mut self, i: usize) -> bool {
        let id = self.sides[i].id;
        if !self.sides[i].open {
            return false;
        }
        if self.broker.is_paused(id) {
            let side = &mut self.sides[i];
            let n = HELD.saturating_sub(side.held.len()).min(side.inbox.len());
            side.held.extend(side.inbox.drain(..n));
            let run = side.held[side.scanned..].to_vec();
            let mut out = Out {
                sides: &mut self.sides,
                max_queue: limits().max_queue,
                log: &mut self.log,
                closes: &mut self.closes,
                peak: &mut self.peak,
            };
            let walked = self.broker.acknowledge_held(id, &run, &mut out);
            self.sides[i].scanned += walked;
            return n > 0;
        }
        let mut moved = false;
        for _ in 0..READS_PER_STEP {
            let side = &mut self.sides[i];
            let input: StdVec<u8> = if side.held.is_empty() {
                let n = READ.min(side.inbox.len());
                side.inbox.drain(..n).collect()
            } else {
                side.scanned = 0;
                core::mem::take(&mut side.held)
            };
            if input.is_empty() {
                break;
            }
            moved = true;
            let mut pos = 0;
            while pos < input.len() {
                let (used, decoded) = self.decoders[i].feed(&input[pos..]);
                let Some(decoded) = decoded else {
                    pos += used;
                    continue;
                };
                let again = match decoded {
                    Decoded::Frame(f) => {
                        let mut bytes = encode_header(f.body.len(), f.msg_id).unwrap().to_vec();
                        bytes.extend_from_slice(f.body);
                        bytes
                    }
                    Decoded::Skipped(_) => StdVec::new(),
                };
                let mut out = Out {
                    sides: &mut self.sides,
                    max_queue: limits().max_queue,
                    log: &mut self.log,
                    closes: &mut self.closes,
                    peak: &mut self.peak,
                };
                let handled = self.broker.handle_input(id, decoded, self.now, &mut out);
                pos += used;
                if handled == Handled::Paused {
                    let side = &mut self.sides[i];
                    side.held = again;
                    side.held.extend_from_slice(&input[pos..]);
                    side.scanned = 0;
                    return true;
                }
            }
        }
        moved
    }

    /// Closes what the broker gave up on: unsent frames back, then
    /// disconnect.
    fn process_closes(&mut self) {
        while let Some(id) = self.closes.pop() {
            let Some(i) = self.sides.iter().position(|s| s.open && s.id == id) else {
                continue;
            };
            let unsent = core::mem::take(&mut self.sides[i].queue);
            let mut out = Out {
                sides: &mut self.sides,
                max_queue: limits().max_queue,
                log: &mut self.log,
                closes: &mut self.closes,
                peak: &mut self.peak,
            };
            for f in frames(&unsent) {
                self.broker.return_undelivered(id, f.frame(), &mut out);
            }
            self.broker.disconnect(id, &mut out);
            self.sides[i].open = false;
            self.sides[i].held.clear();
        }
    }

    fn count(&self, what: &str) -> usize {
        self.log.iter().filter(|l| l.starts_with(what)).count()
    }
}

/// A fast sender and a receiver several times slower: every unicast
/// arrives once, in order; no unicast error, no disconnect; the sender
/// was paused, and the receiver's queue stayed within the high-water mark
/// plus one frame.
#[test]
fn a_slow_reader_slows_its_sender_down_and_loses_nothing() {
    let mut p = Pair::new();
    let rx = p.client(300);
    let tx = p.client(SOCKET);
    p.clients[rx].write(&register("rx", "n", 0));
    p.run(10);
    let total = 3000;
    for seq in 0..total {
        p.clients[tx].send(notify("tx", "rx", "n", seq));
    }
    let steps = p.run(100_000);
    assert!(steps < 100_000, "did not settle");
    assert_eq!(
        p.clients[rx].notifications("n"),
        (0..total).collect::<StdVec<_>>()
    );
    assert!(p.clients[tx].got.is_empty(), "no unicast error");
    assert_eq!(p.count("Overflow") + p.count("Stalled"), 0, "{:?}", p.log);
    assert!(
        p.broker.flow_stats().pauses > 10,
        "{:?}",
        p.broker.flow_stats()
    );
    let frame = notify("tx", "rx", "n", 0).len() + 64;
    assert!(
        p.peak <= limits().flow.high_water + frame,
        "queue peaked at {}",
        p.peak
    );
    assert_eq!(p.broker.flow_stats().stalls, 0);
    assert!(!p.broker.is_paused(p.id(tx)));
}

/// `"1"` waits for the best receiver; it does not go to the next one.
#[test]
fn one_waits_for_the_best_receiver() {
    let mut p = Pair::new();
    let best = p.client(200);
    let next = p.client(SOCKET);
    let tx = p.client(SOCKET);
    p.clients[best].write(&register("best", "n", 5));
    p.clients[next].write(&register("next", "n", 1));
    p.run(10);
    let total = 1500;
    for seq in 0..total {
        p.clients[tx].send(notify("tx", "1", "n", seq));
    }
    p.run(100_000);
    assert_eq!(
        p.clients[best].notifications("n"),
        (0..total).collect::<StdVec<_>>()
    );
    assert!(p.clients[next].got.is_empty());
    assert!(p.clients[tx].got.is_empty());
    assert!(p.broker.flow_stats().pauses > 0);
}

/// A broadcast to four receivers, one slow: everyone gets everything in
/// order (the sender waits for the slowest live subscriber).
#[test]
fn a_broadcast_waits_for_its_slowest_live_subscriber() {
    let mut p = Pair::new();
    let rates = [SOCKET, SOCKET, 150, SOCKET];
    let rx: StdVec<usize> = rates.iter().map(|&r| p.client(r)).collect();
    let tx = p.client(SOCKET);
    for (k, &c) in rx.iter().enumerate() {
        p.clients[c].write(&register(&format!("r{k}"), "b", 0));
    }
    p.run(10);
    let total = 1000;
    for seq in 0..total {
        p.clients[tx].send(notify("tx", "*", "b", seq));
    }
    p.run(100_000);
    for &c in &rx {
        assert_eq!(
            p.clients[c].notifications("b"),
            (0..total).collect::<StdVec<_>>()
        );
    }
    assert_eq!(p.count("Overflow") + p.count("Stalled"), 0, "{:?}", p.log);
    assert!(p.broker.flow_stats().pauses > 0);
}

/// A receiver that stops reading holds its sender back for the stall
/// timeout, then is disconnected: what it never received comes back as
/// unicast errors, and a receiver of another notification, fed by another
/// sender, is not held back meanwhile.
#[test]
fn a_stalled_reader_is_disconnected_after_the_stall_timeout() {
    let mut p = Pair::new();
    let dead = p.client(SOCKET);
    let tx = p.client(SOCKET);
    let other = p.client(SOCKET);
    let other_tx = p.client(SOCKET);
    p.clients[dead].write(&register("dead", "n", 0));
    p.clients[other].write(&register("other", "m", 0));
    p.run(10);
    p.clients[dead].read_rate = 0;
    let total = 500u64;
    for seq in 0..total {
        p.clients[tx].send(notify("tx", "dead", "n", seq));
    }
    let mut other_sent = 0;
    // The stall timeout is 1,000 steps; a check every 100.
    for s in 0..1500 {
        if s == 900 {
            assert_eq!(p.count("Stalled"), 0, "stalled early: {:?}", p.log);
            assert!(p.broker.is_paused(p.id(tx)), "the sender waits");
        }
        if s % 5 == 0 {
            p.clients[other_tx].send(notify("ot", "other", "m", other_sent));
            other_sent += 1;
        }
        p.step_once();
    }
    p.run(10_000);
    assert_eq!(p.count("Stalled"), 1, "{:?}", p.log);
    assert!(!p.sides[dead].open);
    // What reached its socket before it was closed is still there to read.
    p.clients[dead].read_rate = usize::MAX;
    p.clients[dead].take_in(0);
    // Every notification is accounted for exactly once: received by the
    // dead reader, or a unicast error at the sender.
    let mut all = p.clients[dead].notifications("n");
    all.extend(p.clients[tx].errors());
    all.sort_unstable();
    assert_eq!(all, (0..total).collect::<StdVec<_>>());
    assert!(!p.clients[tx].errors().is_empty());
    // The other pair was never held back.
    assert_eq!(
        p.clients[other].notifications("m"),
        (0..other_sent).collect::<StdVec<_>>()
    );
    let tag = format!("Paused {{ conn: {:?},", p.id(other_tx));
    assert!(!p.log.iter().any(|l| l.starts_with(&tag)), "{:?}", p.log);
}

/// An observer that reads slowly never holds a sender back: it misses
/// events (counted, reported once per episode) instead.
#[test]
fn a_slow_observer_never_holds_senders_back() {
    let mut p = Pair::new();
    let obs = p.client(20);
    let rx = p.client(SOCKET);
    let tx = p.client(SOCKET);
    p.clients[obs].write(&compact_frame(&Message::Hello(Hello {
        version: compact::VERSION,
        app_id: None,
        acks: false,
    })));
    p.clients[obs].write(&compact_frame(&Message::Observe(true)));
    p.clients[rx].write(&register("rx", "n", 0));
    p.run(10);
    let total = 2000;
    for seq in 0..total {
        p.clients[tx].send(notify("tx", "rx", "n", seq));
    }
    p.run(100_000);
    assert_eq!(
        p.clients[rx].notifications("n"),
        (0..total).collect::<StdVec<_>>()
    );
    let stats = p.broker.flow_stats();
    assert!(stats.observer_events_dropped > 0, "{stats:?}");
    let waits_for_observer = format!("waiting_for: {:?} }}", p.id(obs));
    assert!(
        !p.log.iter().any(|l| l.ends_with(&waits_for_observer)),
        "{:?}",
        p.log
    );
    assert!(p.count("ObserverBehind") >= 1);
    assert_eq!(p.count("Stalled") + p.count("Overflow"), 0, "{:?}", p.log);
}

/// A client that sends to its own registration waits for its own queue
/// like for anyone's: reading as it writes, it gets everything; never
/// reading (a blocking client that writes first), it is stalled, not
/// overflowed.
#[test]
fn a_connection_that_feeds_itself_waits_for_itself() {
    let mut p = Pair::new();
    let me = p.client(SOCKET);
    p.clients[me].write(&register("me", "n", 0));
    p.run(10);
    for seq in 0..2000 {
        p.clients[me].write(&notify("me", "me", "n", seq));
    }
    p.run(100_000);
    assert_eq!(
        p.clients[me].notifications("n"),
        (0..2000).collect::<StdVec<_>>()
    );
    assert!(p.broker.flow_stats().pauses > 0);
    assert_eq!(p.count("Overflow") + p.count("Stalled"), 0, "{:?}", p.log);

    let mut p = Pair::new();
    let mute = p.client(0);
    p.clients[mute].write(&register("mute", "n", 0));
    p.run(10);
    for seq in 0..2000 {
        p.clients[mute].write(&notify("mute", "mute", "n", seq));
    }
    p.run(100_000);
    assert_eq!(p.count("Stalled"), 1, "{:?}", p.log);
    assert_eq!(p.count("Overflow"), 0, "{:?}", p.log);
    assert!(p.peak <= limits().flow.high_water + 200, "{}", p.peak);
}

/// A sender streaming unicasts nobody receives, reading its unicast errors
/// as fast as it writes (they are larger than what it sends): it waits for
/// its own queue and is never disconnected.
#[test]
fn unicast_errors_hold_their_own_sender_back() {
    let mut p = Pair::new();
    let tx = p.client(SOCKET);
    for seq in 0..3000 {
        p.clients[tx].write(&notify("tx", "nobody", "n", seq));
    }
    p.run(100_000);
    assert_eq!(p.clients[tx].errors(), (0..3000).collect::<StdVec<_>>());
    assert_eq!(p.count("Overflow") + p.count("Stalled"), 0, "{:?}", p.log);
    assert!(p.broker.flow_stats().pauses > 0);
}

/// Two clients of our library flooding each other, acknowledging a little
/// late: a wait for the other's acknowledgements that would close a cycle
/// (each waiting for acks the other cannot send while it is paused) is not
/// taken, so both go on and nothing is lost.
#[test]
fn a_wait_for_acknowledgements_that_would_close_a_cycle_is_not_taken() {
    let mut p = mutual_flood(30);
    let total = 1500;
    p.run(100_000);
    for c in [0, 1] {
        assert_eq!(
            p.clients[c].notifications("n"),
            (0..total).collect::<StdVec<_>>()
        );
    }
    let stats = p.broker.flow_stats();
    assert!(stats.pauses >= 1, "{stats:?}");
    assert!(stats.cycle_overruns >= 1, "{stats:?}");
    assert_eq!(p.count("Overflow") + p.count("Stalled"), 0, "{:?}", p.log);
}

/// The same with acknowledgements far behind: flow control cannot hold
/// either back without deadlocking both (their acks share the stream it
/// would stop), so a ledger passes the hard limit and its connection is
/// disconnected as an overflow; the unicast errors for what it never
/// acknowledged can take the other one past its limit too. Memory stays
/// within the limit throughout, and the broker is left clean.
#[test]
fn a_cycle_of_lagging_acks_is_bounded_by_the_queue_limit() {
    let mut p = mutual_flood(100);
    p.run(100_000);
    assert!(p.count("Overflow") >= 1, "{:?}", p.log);
    assert_eq!(p.count("Stalled"), 0);
    assert!(p.peak <= limits().max_queue);
    for (c, side) in p.sides.iter().enumerate() {
        if side.open {
            assert!(!p.broker.is_paused(side.id), "{c} left paused");
        }
    }
    let open = p.sides.iter().filter(|s| s.open).count();
    assert_eq!(p.broker.status().local_connections as usize, open);
}

/// Clients 0 and 1 of our library, acknowledging `lag` steps after reading,
/// each sending 1,500 unicasts to the other.
fn mutual_flood(lag: u64) -> Pair {
    mutual_flood_lags(lag, lag)
}

fn mutual_flood_lags(lag_a: u64, lag_b: u64) -> Pair {
    let mut p = Pair::new();
    let a = p.client(SOCKET);
    let b = p.client(SOCKET);
    for (c, name, lag) in [(a, "a", lag_a), (b, "b", lag_b)] {
        p.clients[c].acks = Some(lag);
        p.clients[c].write(&compact_frame(&Message::Hello(Hello {
            version: compact::VERSION,
            app_id: None,
            acks: true,
        })));
        p.clients[c].write(&register(name, "n", 0));
    }
    p.run(10);
    for seq in 0..1500 {
        p.clients[a].send(notify("a", "b", "n", seq));
        p.clients[b].send(notify("b", "a", "n", seq));
    }
    p
}

/// A compact client that acknowledges late: its ledger, not its queue,
/// fills; its sender waits for the acks. Then it dies with unicasts
/// unacknowledged: they go to the next receiver, and nothing is lost.
#[test]
fn lagging_acks_hold_the_sender_back_and_a_crash_loses_nothing() {
    let mut p = Pair::new();
    let acker = p.client(SOCKET);
    let backup = p.client(SOCKET);
    let tx = p.client(SOCKET);
    p.clients[acker].acks = Some(200);
    p.clients[acker].write(&compact_frame(&Message::Hello(Hello {
        version: compact::VERSION,
        app_id: None,
        acks: true,
    })));
    p.clients[acker].write(&register("acker", "n", 9));
    p.clients[backup].write(&register("backup", "n", 1));
    p.run(10);
    let total = 1000u64;
    for seq in 0..total {
        p.clients[tx].send(notify("tx", "1", "n", seq));
    }
    for _ in 0..400 {
        p.step_once();
    }
    assert!(p.broker.flow_stats().pauses > 0);
    assert!(
        p.broker.unacknowledged(p.id(acker)) > 0,
        "the ledger holds what is not acknowledged"
    );
    // The acker crashes. Whatever it read ran its callback; what it did
    // not acknowledge goes to the backup as well (at least once).
    let read_by_acker = p.clients[acker].notifications("n");
    let id = p.id(acker);
    p.closes.push(id);
    p.process_closes();
    p.clients[acker].read_rate = 0;
    p.run(100_000);
    let backup_got = p.clients[backup].notifications("n");
    let mut all: StdVec<u64> = read_by_acker.iter().chain(&backup_got).copied().collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all, (0..total).collect::<StdVec<_>>());
    assert!(p.clients[tx].got.is_empty(), "no unicast error");
    let mut sorted = backup_got.clone();
    sorted.sort_unstable();
    assert_eq!(backup_got, sorted, "the backup got them in order");
}

/// `handle_input` applies the frame limit (oversize skipped and counted,
/// a returned notify within the slack accepted) and, for remote peers, the
/// rate limit, with the time given.
#[test]
fn frame_and_rate_limits_apply_to_input() {
    let mut b: PairBroker = Broker::with_conn_storage(
        Whitelist::parse(b"in * * *\nout * * *\n").unwrap(),
        Limits {
            remote: RemoteLimits {
                rate: 10,
                burst: 2,
                ..RemoteLimits::DEFAULT
            },
            ..limits()
        },
        InlineStorage::new(),
        InlineConns::new(),
    );
    let local = b.connect(PeerKind::Local).unwrap();
    let remote = b.connect(PeerKind::Remote).unwrap();
    let mut sides: StdVec<Side> = [local, remote]
        .into_iter()
        .map(|id| Side {
            id,
            inbox: VecDeque::new(),
            held: StdVec::new(),
            scanned: 0,
            queue: StdVec::new(),
            open: true,
        })
        .collect();
    let (mut log, mut closes, mut peak) = (StdVec::new(), StdVec::new(), 0);
    let mut out = Out {
        sides: &mut sides,
        max_queue: 1 << 20,
        log: &mut log,
        closes: &mut closes,
        peak: &mut peak,
    };
    let t0 = Timestamp::from_micros(5_000_000);
    let input = |body: &'static [u8]| Decoded::Frame(Frame { msg_id: 0, body });
    // Over the local limit (2 KiB): skipped and counted.
    let pad = "p".repeat(2100);
    let big = std::format!(
        r#"{{"type":"notify","from":"a","to":"nobody","notification":"n","parameter":"{pad}"}}"#
    )
    .leak()
    .as_bytes();
    assert_eq!(
        b.handle_input(local, input(big), t0, &mut out),
        Handled::Done
    );
    assert_eq!(b.protection().oversize, 1);
    assert!(
        out.log.last().unwrap().starts_with("Skipped"),
        "{:?}",
        out.log
    );
    assert_eq!(b.status().unicast_errors, 0);
    // Within the slack and carrying a reference (a returned notify): taken.
    let returned = std::format!(
        r#"{{"type":"notify","from":"a","to":"nobody","notification":"n","reference":5,"parameter":"{pad}"}}"#
    )
    .leak()
    .as_bytes();
    assert_eq!(
        b.handle_input(local, input(returned), t0, &mut out),
        Handled::Done
    );
    assert_eq!(b.protection().oversize, 1);
    assert_eq!(b.status().unicast_errors, 1);
    // Three frames at once from a remote peer: the burst of two passes.
    let small = br#"{"type":"notify","from":"a","to":"nobody","notification":"n"}"#;
    for _ in 0..3 {
        let _ = b.handle_input(remote, input(small), t0, &mut out);
    }
    assert_eq!(b.protection().rate_limited, 1);
    assert_eq!(b.connection(remote).unwrap().rate_dropped, 1);
    assert_eq!(b.status().unicast_errors, 3);
    // A tenth of a second later, one more.
    let later = t0.saturating_add(Duration::from_millis(100));
    let _ = b.handle_input(remote, input(small), later, &mut out);
    assert_eq!(b.status().unicast_errors, 4);
    assert_eq!(
        out.log
            .iter()
            .filter(|l| l.starts_with("RateLimited"))
            .count(),
        1,
        "reported once"
    );
    // The smaller of the two frame limits applies to remote peers.
    assert_eq!(b.limits().frame_limit(PeerKind::Remote), 2048);
}
