//! No heap allocation per notification on the server's routing path
//! (issue 6).
//!
//! A counting global allocator (per thread) watches the path the event
//! loop runs for every frame: [`FrameDecoder::feed`] →
//! [`Broker::handle_input`](nfy_core::broker::Broker::handle_input) (limits,
//! flow control, decode, route, keep unicasts until acknowledged, encode
//! into the [`Outbound`] queues) → [`Outbound::take_dirty`] →
//! [`Outbound::flush`] (one `send` per connection) →
//! [`Broker::sent`](nfy_core::broker::Broker::sent). After a warm-up that
//! grows every buffer to its working size, thousands of notifications of
//! every kind — compact and JSON, unicast to an app, to `"1"`, broadcast to
//! eight receivers, unicast errors, frames split across reads — must not
//! allocate once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use nfy_core::broker::{ConnId, FlowLimits, Handled, Limits, PeerKind, RemoteLimits};
use nfy_core::msg::{self, compact, Encoding, Hello, Message, Notify, RawJson, Register};
use nfy_core::time::Timestamp;
use nfy_core::whitelist::Whitelist;
use nfy_core::wire::{self, Decoded, FrameDecoder, HEADER_LEN};
use nfy_core::{AppId, Destination, NotificationId};
use nfy_linux::server::outbox::{FlushWhile, Outbound};
use nfy_linux::server::{new_broker, LinuxBroker, DEFAULT_MAX_FRAME, DEFAULT_MAX_QUEUE, LIMITS};

/// Counts allocations of the current thread (other test threads do not
/// disturb the count).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator may run while thread-locals are torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every method forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const PARAM: &str = r#"{"amount":12345,"currency":"EUR","terminal":"T-0001","seq":1234}"#;

fn frame(m: &Message<'_>, encoding: Encoding) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n =
        wire::encode_frame(&mut buf, encoding.msg_id(), |b| msg::encode(m, encoding, b)).unwrap();
    buf.truncate(n);
    buf
}

fn hello(app: &str) -> Vec<u8> {
    hello_with(app, false)
}

fn hello_with(app: &str, acks: bool) -> Vec<u8> {
    frame(
        &Message::Hello(Hello {
            version: compact::VERSION,
            app_id: Some(AppId::new(app).unwrap()),
            acks,
        }),
        Encoding::Compact,
    )
}

fn register(to: &str, notification: &str, priority: i32, encoding: Encoding) -> Vec<u8> {
    frame(
        &Message::Register(Register {
            to: AppId::new(to).unwrap(),
            notification: NotificationId::new(notification).unwrap(),
            priority,
        }),
        encoding,
    )
}

fn notify(from: &str, to: &str, notification: &str, encoding: Encoding) -> Vec<u8> {
    frame(
        &Message::Notify(Notify {
            from: AppId::new(from).unwrap(),
            to: Destination::parse(to).unwrap(),
            notification: NotificationId::new(notification).unwrap(),
            flags: 0,
            reference: None,
            parameter: RawJson::new(PARAM).unwrap(),
        }),
        encoding,
    )
}

/// One connection as the event loop holds it, plus the client's end of its
/// socket and a decoder counting what the client receives.
struct Peer {
    id: ConnId,
    decoder: FrameDecoder<Vec<u8>>,
    server_end: UnixStream,
    client_end: UnixStream,
    client_decoder: FrameDecoder<Vec<u8>>,
    received: u64,
    /// Acknowledges the unicasts it receives: their acks wait here (the
    /// capacity is reserved, so the test itself does not allocate).
    acks: Option<Vec<u8>>,
}

/// The server's routing path without the poller.
struct Path {
    broker: Box<LinuxBroker>,
    out: Outbound,
    peers: Vec<Peer>,
    dirty: Vec<usize>,
    rbuf: Vec<u8>,
}

impl Path {
    fn new() -> Path {
        Path::with_limits(LIMITS, DEFAULT_MAX_QUEUE)
    }

    /// With queues (and ledgers) of `max_queue` bytes, the flow-control
    /// marks at their defaults for it.
    fn with_queue(max_queue: usize) -> Path {
        let limits = Limits {
            max_queue,
            flow: FlowLimits::for_queue(max_queue),
            ..LIMITS
        };
        Path::with_limits(limits, max_queue)
    }

    fn with_limits(limits: Limits, max_queue: usize) -> Path {
        Path {
            broker: new_broker(Whitelist::default(), limits),
            out: Outbound::new(max_queue, RemoteLimits::DEFAULT),
            peers: Vec::new(),
            dirty: Vec::with_capacity(64),
            rbuf: vec![0; 64 * 1024],
        }
    }

    /// Opens a connection; returns its index in `peers`.
    fn connect(&mut self) -> usize {
        let id = self.broker.connect(PeerKind::Local).unwrap();
        self.out.open(id);
        let (server_end, client_end) = UnixStream::pair().unwrap();
        server_end.set_nonblocking(true).unwrap();
        client_end.set_nonblocking(true).unwrap();
        self.peers.push(Peer {
            id,
            decoder: FrameDecoder::new(vec![0; DEFAULT_MAX_FRAME + HEADER_LEN]),
            server_end,
            client_end,
            client_decoder: FrameDecoder::new(vec![0; DEFAULT_MAX_FRAME + HEADER_LEN]),
            received: 0,
            acks: None,
        });
        self.peers.len() - 1
    }

    /// What the event loop does with bytes read from peer `p`, fed in
    /// pieces of at most `chunk` bytes, then one flush round and the
    /// clients' reads.
    fn input(&mut self, p: usize, bytes: &[u8], chunk: usize) {
        for piece in bytes.chunks(chunk) {
            let mut pos = 0;
            while pos < piece.len() {
                let peer = &mut self.peers[p];
                let (used, decoded) = peer.decoder.feed(&piece[pos..]);
                pos += used;
                match decoded {
                    Some(d @ Decoded::Frame(_)) => {
                        let handled =
                            self.broker
                                .handle_input(peer.id, d, Timestamp::ZERO, &mut self.out);
                        assert_eq!(handled, Handled::Done, "paused: the readers keep up");
                    }
                    Some(Decoded::Skipped(s)) => panic!("skipped input: {s}"),
                    None => assert!(used > 0, "decoder stalled"),
                }
            }
        }
        assert!(!self.out.has_closes(), "a connection was closed");
        self.out.take_dirty(&mut self.dirty);
        for idx in self.dirty.drain(..) {
            let peer = self
                .peers
                .iter()
                .find(|q| q.id.index() == idx)
                .expect("dirty connection exists");
            let sent = self
                .out
                .flush(idx, peer.server_end.as_raw_fd(), FlushWhile::Open)
                .unwrap();
            let id = peer.id;
            self.broker.sent(id, sent.bytes, &mut self.out);
        }
        for peer in &mut self.peers {
            loop {
                match peer.client_end.read(&mut self.rbuf) {
                    Ok(0) => panic!("server end closed"),
                    Ok(n) => {
                        let mut input = &self.rbuf[..n];
                        while !input.is_empty() {
                            let (used, decoded) = peer.client_decoder.feed(input);
                            if let Some(Decoded::Frame(f)) = decoded {
                                peer.received += 1;
                                if let Some(acks) = peer.acks.as_mut() {
                                    let m = msg::decode(Encoding::from_msg_id(f.msg_id), f.body);
                                    if let Ok(Message::Notify(Notify {
                                        reference: Some(r), ..
                                    })) = m
                                    {
                                        let start = acks.len();
                                        acks.resize(start + 64, 0);
                                        let n = wire::encode_frame(
                                            &mut acks[start..],
                                            Encoding::Compact.msg_id(),
                                            |b| msg::encode(&Message::Ack(r), Encoding::Compact, b),
                                        )
                                        .unwrap();
                                        acks.truncate(start + n);
                                    }
                                }
                            }
                            input = &input[used..];
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
    }
}

/// Runs `body` on a thread with the event loop's stack (the broker is
/// built on the stack before being boxed).
fn on_big_stack(body: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(nfy_linux::server::EVENT_LOOP_STACK)
        .spawn(body)
        .unwrap()
        .join()
        .unwrap();
}

const WARMUP: usize = 2_000;
const MEASURED: usize = 10_000;

/// Warms `step` up, then runs it `MEASURED` times and returns how many
/// allocations the measured runs made.
fn allocations_of(mut step: impl FnMut()) -> u64 {
    for _ in 0..WARMUP {
        step();
    }
    let before = allocations();
    for _ in 0..MEASURED {
        step();
    }
    allocations() - before
}

#[test]
fn the_counter_counts() {
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 10]);
    assert!(
        allocations() > before,
        "the counting allocator must see a Vec"
    );
    drop(v);
}

#[test]
fn unicasts_do_not_allocate() {
    on_big_stack(|| {
        for encoding in [Encoding::Compact, Encoding::Json] {
            let mut path = Path::new();
            let a = path.connect();
            let b = path.connect();
            if encoding == Encoding::Compact {
                path.input(a, &hello("a"), usize::MAX);
                path.input(b, &hello("b"), usize::MAX);
            }
            path.input(b, &register("b", "n", 0, encoding), usize::MAX);
            let to_app = notify("a", "b", "n", encoding);
            let to_one = notify("a", "1", "n", encoding);
            let mut both = to_app.clone();
            both.extend_from_slice(&to_one);
            let n = allocations_of(|| path.input(a, &both, usize::MAX));
            assert_eq!(n, 0, "{encoding:?}: allocations in {MEASURED} steps");
            let expected = 2 * (WARMUP + MEASURED) as u64;
            assert_eq!(path.peers[b].received, expected, "{encoding:?}");

            // The same frames split across reads (the decoder reassembles
            // them in its own buffer).
            let n = allocations_of(|| path.input(a, &both, 7));
            assert_eq!(n, 0, "{encoding:?} in pieces: allocations");
            assert_eq!(path.peers[b].received, 2 * expected, "{encoding:?}");
        }
    });
}

#[test]
fn broadcasts_do_not_allocate() {
    on_big_stack(|| {
        let mut path = Path::new();
        let a = path.connect();
        path.input(a, &hello("a"), usize::MAX);
        let receivers: Vec<usize> = (0..8).map(|_| path.connect()).collect();
        for (i, &r) in receivers.iter().enumerate() {
            // Half compact, half JSON: the broker encodes both.
            let encoding = if i % 2 == 0 {
                path.input(r, &hello(&format!("r{i}")), usize::MAX);
                Encoding::Compact
            } else {
                Encoding::Json
            };
            path.input(r, &register(&format!("r{i}"), "f", 0, encoding), usize::MAX);
        }
        let all = notify("a", "*", "f", Encoding::Compact);
        let n = allocations_of(|| path.input(a, &all, usize::MAX));
        assert_eq!(n, 0, "allocations in {MEASURED} broadcasts");
        for &r in &receivers {
            assert_eq!(path.peers[r].received, (WARMUP + MEASURED) as u64);
        }
    });
}

#[test]
fn unicast_errors_do_not_allocate() {
    on_big_stack(|| {
        for encoding in [Encoding::Compact, Encoding::Json] {
            let mut path = Path::new();
            let a = path.connect();
            if encoding == Encoding::Compact {
                path.input(a, &hello("a"), usize::MAX);
            }
            let nobody = notify("a", "nobody", "n", encoding);
            let n = allocations_of(|| path.input(a, &nobody, usize::MAX));
            assert_eq!(
                n, 0,
                "{encoding:?}: allocations in {MEASURED} unicast errors"
            );
            assert_eq!(
                path.peers[a].received,
                (WARMUP + MEASURED) as u64,
                "{encoding:?}: every unicast comes back as a unicast error"
            );
        }
    });
}

#[test]
fn acknowledged_unicasts_do_not_allocate() {
    on_big_stack(|| {
        let mut path = Path::new();
        let a = path.connect();
        let b = path.connect();
        path.input(a, &hello("a"), usize::MAX);
        path.input(b, &hello_with("b", true), usize::MAX);
        path.peers[b].acks = Some(Vec::with_capacity(64 * 1024));
        path.input(b, &register("b", "n", 0, Encoding::Compact), usize::MAX);
        let to_one = notify("a", "1", "n", Encoding::Compact);
        let mut acks = Vec::with_capacity(64 * 1024);
        let n = allocations_of(|| {
            path.input(a, &to_one, usize::MAX);
            // b acknowledges what it got.
            std::mem::swap(&mut acks, path.peers[b].acks.as_mut().unwrap());
            path.input(b, &acks, usize::MAX);
            acks.clear();
        });
        assert_eq!(n, 0, "allocations in {MEASURED} acknowledged unicasts");
        assert_eq!(path.peers[b].received, (WARMUP + MEASURED) as u64);
        let stats = path.out.stats();
        assert_eq!(stats.acked, (WARMUP + MEASURED) as u64);
        assert_eq!(stats.unknown_acks, 0);
        assert_eq!(path.broker.unacknowledged(path.peers[b].id), 0);
    });
}

#[test]
fn unacknowledged_unicasts_are_kept_without_allocating() {
    on_big_stack(|| {
        // Room for all of them below the high-water mark (flow control
        // would otherwise hold the sender back).
        let mut path = Path::with_queue(64 << 20);
        let a = path.connect();
        let b = path.connect();
        path.input(a, &hello("a"), usize::MAX);
        path.input(b, &hello_with("b", true), usize::MAX);
        path.input(b, &register("b", "n", 0, Encoding::Compact), usize::MAX);
        let to_one = notify("a", "1", "n", Encoding::Compact);
        let n = allocations_of(|| path.input(a, &to_one, usize::MAX));
        // The store grows during the warm-up and then by doubling: a few
        // allocations in all, not one per unicast.
        assert!(n < 20, "{n} allocations for {MEASURED} kept unicasts");
        assert_eq!(
            path.broker.unacknowledged(path.peers[b].id),
            WARMUP + MEASURED,
            "every unicast kept until acknowledged"
        );
    });
}
