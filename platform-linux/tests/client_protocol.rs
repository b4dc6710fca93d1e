//! The client's side of the protocol, checked frame by frame against a
//! scripted fake server: the handshake and its replay on reconnect, the
//! unregister race (a unicast for a registration that does not exist
//! goes back unchanged, reference included; a broadcast never does), the
//! server's frame limit, and a server that reads slowly or not at all
//! (backpressure, send deadlines).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client_harness;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use client_harness::{temp_dir, LONG};
use nfy_core::msg::{
    self, compact, Encoding, Hello, Message, Notify, RawJson, Register, Status, Welcome,
};
use nfy_core::wire::{self, Decoded, FrameDecoder, HEADER_LEN};
use nfy_core::{AppId, Destination, NotificationId};
use nfy_linux::client::{Client, Delivery, NotifyOptions, ServerAddr};

/// A connection's stream, Unix or TCP.
trait Wire: Read + Write + Send {
    fn read_timeout(&self, d: Duration);
}

impl Wire for UnixStream {
    fn read_timeout(&self, d: Duration) {
        self.set_read_timeout(Some(d)).unwrap();
    }
}

impl Wire for TcpStream {
    fn read_timeout(&self, d: Duration) {
        self.set_read_timeout(Some(d)).unwrap();
    }
}

/// The fake server's end of one connection.
struct Peer {
    stream: Box<dyn Wire>,
    dec: FrameDecoder<Vec<u8>>,
    pending: Vec<Vec<u8>>,
}

/// An owned message (the decoded form borrows the frame).
fn owned(body: &[u8]) -> Message<'static> {
    // Leak the body so the message can outlive the frame (tests only).
    let body: &'static [u8] = Box::leak(body.to_vec().into_boxed_slice());
    msg::decode(Encoding::Compact, body).unwrap()
}

impl Peer {
    fn accept(l: &UnixListener) -> Peer {
        Peer::on(Box::new(l.accept().unwrap().0))
    }

    fn accept_tcp(l: &TcpListener) -> Peer {
        Peer::on(Box::new(l.accept().unwrap().0))
    }

    fn on(stream: Box<dyn Wire>) -> Peer {
        stream.read_timeout(LONG);
        Peer {
            stream,
            dec: FrameDecoder::new(vec![0u8; HEADER_LEN + (1 << 20)]),
            pending: Vec::new(),
        }
    }

    /// Reads until nothing arrives for `quiet` or the client closes the
    /// connection: the messages, and whether it closed it.
    fn drain(&mut self, quiet: Duration) -> (Vec<Message<'static>>, bool) {
        let mut got: Vec<Message<'static>> = self.pending.drain(..).map(|b| owned(&b)).collect();
        self.stream.read_timeout(quiet);
        let mut buf = vec![0u8; 64 * 1024];
        let closed = loop {
            let n = match self.stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            };
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let (used, out) = self.dec.feed(rest);
                match out {
                    Some(Decoded::Frame(f)) => got.push(owned(f.body)),
                    Some(Decoded::Skipped(s)) => panic!("the client sent garbage: {s:?}"),
                    None => {}
                }
                rest = &rest[used..];
            }
        };
        self.stream.read_timeout(LONG);
        (got, closed)
    }

    /// The next message the client sent.
    fn recv(&mut self) -> Message<'static> {
        loop {
            if !self.pending.is_empty() {
                let body = self.pending.remove(0);
                return owned(&body);
            }
            let mut buf = [0u8; 4096];
            let n = self.stream.read(&mut buf).unwrap();
            assert!(n > 0, "client closed the connection");
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let (used, out) = self.dec.feed(rest);
                if let Some(Decoded::Frame(f)) = out {
                    assert_eq!(f.msg_id, 1, "compact bodies expected");
                    self.pending.push(f.body.to_vec());
                }
                rest = &rest[used..];
            }
        }
    }

    /// Nothing arrives for a while.
    fn quiet(&mut self) {
        self.stream.read_timeout(Duration::from_millis(150));
        assert!(self.pending.is_empty(), "unexpected frame");
        let mut buf = [0u8; 64];
        match self.stream.read(&mut buf) {
            Ok(n) => panic!("unexpected {n} bytes"),
            Err(e) => assert!(matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )),
        }
        self.stream.read_timeout(LONG);
    }

    fn send(&mut self, m: &Message<'_>) {
        let mut buf = vec![0u8; 4096];
        let n = wire::encode_frame(&mut buf, 1, |b| compact::encode(m, b)).unwrap();
        self.stream.write_all(&buf[..n]).unwrap();
    }

    /// Answers the next message, which must be a status request (the
    /// client's `sync`).
    fn answer_status(&mut self) {
        assert_eq!(self.recv(), Message::StatusRequest);
        self.send(&Message::Status(Status::default()));
    }

    /// The start of the handshake: `hello` for app `id`, then the status
    /// request marking the end of the answer, which this server gives:
    /// a `Welcome` with `max_frame` (as a current server does), or none
    /// (an older server), then the status.
    fn greet(&mut self, id: Option<&str>, max_frame: Option<u32>) {
        assert_eq!(self.recv(), hello(id));
        assert_eq!(self.recv(), Message::StatusRequest);
        if let Some(max_frame) = max_frame {
            self.send(&Message::Welcome(Welcome { max_frame }));
        }
        self.send(&Message::Status(Status::default()));
    }
}

fn app(s: &str) -> AppId {
    AppId::new(s).unwrap()
}
fn nid(s: &str) -> NotificationId {
    NotificationId::new(s).unwrap()
}
fn hello(id: Option<&str>) -> Message<'static> {
    Message::Hello(Hello {
        version: compact::VERSION,
        app_id: id.map(app),
        acks: true,
    })
}
fn reg(to: &str, id: &str, priority: i32) -> Message<'static> {
    Message::Register(Register {
        to: app(to),
        notification: nid(id),
        priority,
    })
}
fn notify(to: &str, id: &str, reference: Option<u64>) -> Message<'static> {
    Message::Notify(Notify {
        from: app("sender"),
        to: Destination::parse(to).unwrap(),
        notification: nid(id),
        flags: 6,
        reference,
        parameter: RawJson::new(r#"{"p":1}"#).unwrap(),
    })
}

#[test]
fn handshake_replay_and_bounce_over_the_wire() {
    let path = temp_dir("proto").join("fake.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (accepted_tx, accepted_rx) = mpsc::channel();
    let client = {
        let path = path.clone();
        std::thread::spawn(move || {
            let c = Client::connect_to(ServerAddr::unix(path)).unwrap();
            accepted_tx.send(()).unwrap();
            c
        })
    };
    let mut peer = Peer::accept(&listener);
    peer.greet(None, None);
    accepted_rx.recv_timeout(LONG).unwrap();
    let client = client.join().unwrap();
    assert_eq!(peer.recv(), Message::UnicastErrors(false));

    client.set_app_id("me").unwrap();
    assert_eq!(peer.recv(), hello(Some("me")));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let record = move |d: &Delivery<'_>| {
        tx.lock().unwrap().send((d.to.to_owned(), d.flags)).unwrap();
    };
    let record = std::sync::Arc::new(record);
    let r1 = {
        let r = std::sync::Arc::clone(&record);
        client
            .register("a", 3, move |d: &Delivery<'_>| r(d))
            .unwrap()
    };
    assert_eq!(peer.recv(), reg("me", "a", 3));
    let r2 = {
        let r = std::sync::Arc::clone(&record);
        client
            .register_as("other", "b", -1, move |d: &Delivery<'_>| r(d))
            .unwrap()
    };
    assert_eq!(peer.recv(), reg("other", "b", -1));
    let obs = client.observe(|_| {}).unwrap();
    assert_eq!(peer.recv(), Message::Observe(true));
    let errs = client.on_unicast_error(|_| {});
    assert_eq!(peer.recv(), Message::UnicastErrors(true));
    // Replacing "a" re-sends it (now the most recent).
    let r1b = {
        let r = std::sync::Arc::clone(&record);
        client
            .register("a", 4, move |d: &Delivery<'_>| r(d))
            .unwrap()
    };
    assert_eq!(peer.recv(), reg("me", "a", 4));
    drop(r1); // replaced: dropping the old handle does nothing
    peer.quiet();

    // Deliveries.
    peer.send(&notify("me", "a", Some(1)));
    assert_eq!(rx.recv_timeout(LONG).unwrap(), ("me".into(), 6));
    // A unicast is acknowledged once its callback ran.
    assert_eq!(peer.recv(), Message::Ack(1));
    // Unregister race: unicasts for missing registrations come back
    // unchanged, acknowledged; broadcasts do not.
    peer.send(&notify("nobody", "a", Some(0xfeed)));
    assert_eq!(peer.recv(), notify("nobody", "a", Some(0xfeed)));
    assert_eq!(peer.recv(), Message::Ack(0xfeed));
    peer.send(&notify("1", "zz", Some(0xbeef)));
    assert_eq!(peer.recv(), notify("1", "zz", Some(0xbeef)));
    assert_eq!(peer.recv(), Message::Ack(0xbeef));
    // A broadcast is never acknowledged (below: nothing but the sync
    // comes back).
    peer.send(&notify("*", "a", None));
    assert_eq!(rx.recv_timeout(LONG).unwrap(), ("*".into(), 6));
    peer.send(&notify("*", "zz", None));
    // Once a sync answered after the broadcast completes, the client has
    // handled the broadcast (same stream): nothing may have come back.
    let syncer = {
        let c = client.clone();
        std::thread::spawn(move || c.sync())
    };
    peer.answer_status();
    syncer.join().unwrap().unwrap();
    peer.quiet();

    // The connection drops: the client reconnects and replays everything,
    // oldest registration first.
    drop(peer);
    let mut peer = Peer::accept(&listener);
    peer.greet(Some("me"), Some(65536));
    assert_eq!(peer.recv(), reg("other", "b", -1));
    assert_eq!(peer.recv(), reg("me", "a", 4));
    assert_eq!(peer.recv(), Message::Observe(true));
    peer.quiet();

    // A status answer that comes after its request timed out is not given
    // to the next request.
    assert_eq!(
        client
            .status_timeout(Duration::from_millis(50))
            .unwrap_err(),
        nfy_linux::client::Error::Timeout
    );
    assert_eq!(peer.recv(), Message::StatusRequest);
    let asker = {
        let c = client.clone();
        std::thread::spawn(move || c.status())
    };
    assert_eq!(peer.recv(), Message::StatusRequest);
    for delivered in [1, 2] {
        peer.send(&Message::Status(Status {
            delivered,
            ..Status::default()
        }));
    }
    assert_eq!(asker.join().unwrap().unwrap().delivered, 2);

    // Removing the last observer / error handler tells the server.
    drop(obs);
    assert_eq!(peer.recv(), Message::Observe(false));
    drop(errs);
    assert_eq!(peer.recv(), Message::UnicastErrors(false));
    drop(r2);
    assert_eq!(
        peer.recv(),
        Message::Unregister(nfy_core::msg::Unregister {
            to: app("other"),
            notification: nid("b")
        })
    );
    drop(r1b);
    drop(client);
}

/// An acknowledgement goes on the connection its unicast came on, never
/// on a later one (the server has given the unicast to someone else when
/// that connection ended; on the new connection the same reference may
/// name a new delivery of it, still unhandled).
#[test]
fn a_unicast_whose_connection_dropped_is_not_acknowledged_on_the_next() {
    let path = temp_dir("proto-ack").join("fake.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let client = {
        let path = path.clone();
        std::thread::spawn(move || Client::connect_to(ServerAddr::unix(path)).unwrap())
    };
    let mut peer = Peer::accept(&listener);
    peer.greet(None, Some(65536));
    let client = client.join().unwrap();
    assert_eq!(peer.recv(), Message::UnicastErrors(false));
    client.set_app_id("me").unwrap();
    assert_eq!(peer.recv(), hello(Some("me")));
    let (entered_tx, entered_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let (done_tx, done_rx) = mpsc::channel();
    let _reg = client
        .register("a", 0, move |d: &Delivery<'_>| {
            entered_tx.send(d.flags).unwrap();
            go_rx.lock().unwrap().recv().unwrap();
            done_tx.send(()).unwrap();
        })
        .unwrap();
    assert_eq!(peer.recv(), reg("me", "a", 0));
    peer.send(&notify("me", "a", Some(7)));
    entered_rx.recv_timeout(LONG).unwrap();
    // The connection drops while the callback runs; the client reconnects.
    drop(peer);
    let mut peer = Peer::accept(&listener);
    peer.greet(Some("me"), None);
    assert_eq!(peer.recv(), Message::UnicastErrors(false));
    assert_eq!(peer.recv(), reg("me", "a", 0));
    go_tx.send(()).unwrap();
    done_rx.recv_timeout(LONG).unwrap();
    peer.quiet();
    // The same reference delivered on the new connection is acknowledged
    // there once its own callback ran.
    peer.send(&notify("me", "a", Some(7)));
    entered_rx.recv_timeout(LONG).unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(peer.recv(), Message::Ack(7));
    drop(client);
}

/// A client connected to a fake server on a fresh Unix socket, the
/// handshake answered with `max_frame` (`None`: an older server, no
/// `Welcome`).
fn connected(tag: &str, max_frame: Option<u32>) -> (Client, Peer, UnixListener) {
    let path = temp_dir(tag).join("fake.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let client = std::thread::spawn(move || Client::connect_to(ServerAddr::unix(path)).unwrap());
    let mut peer = Peer::accept(&listener);
    peer.greet(None, max_frame);
    let client = client.join().unwrap();
    assert_eq!(peer.recv(), Message::UnicastErrors(false));
    client.set_app_id("me").unwrap();
    assert_eq!(peer.recv(), hello(Some("me")));
    (client, peer, listener)
}

/// The `seq` of a notify's parameter.
fn seq(m: &Message<'_>) -> Option<u64> {
    let Message::Notify(n) = m else { return None };
    let v: serde_json::Value = serde_json::from_str(n.parameter.as_str()).unwrap();
    v["seq"].as_u64()
}

/// The server's `Welcome` sets the largest notification the client
/// sends: a larger one is refused with a typed error, nothing written;
/// without a welcome (an older server) the default applies.
#[test]
fn a_notification_over_the_servers_limit_is_refused_before_sending() {
    let (client, mut peer, _l) = connected("proto-limit", Some(1000));
    assert_eq!(client.max_frame(), 1000);
    let big = format!("\"{}\"", "x".repeat(1000));
    match client.notify_raw("x", "n", &big) {
        Err(nfy_linux::client::Error::TooLarge { size, limit: 1000 }) => assert!(size > 1000),
        other => panic!("{other:?}"),
    }
    let mut batch = client.batch();
    assert!(matches!(
        batch.notify_raw("x", "n", &big),
        Err(nfy_linux::client::Error::TooLarge { .. })
    ));
    assert!(batch.is_empty());
    drop(batch);
    peer.quiet();
    // Within the limit: sent.
    let small = format!("\"{}\"", "x".repeat(900));
    client.notify_raw("x", "n", &small).unwrap();
    assert!(matches!(peer.recv(), Message::Notify(_)));
    drop(client);

    let (client, _peer, _l) = connected("proto-nolimit", None);
    assert_eq!(
        client.max_frame(),
        nfy_linux::client::conn::DEFAULT_MAX_FRAME
    );
}

/// A unicast whose parameter is not JSON (a server bug; the client does
/// not check what its server sends) cannot be returned unchanged: it is
/// then not acknowledged either, so the server still holds it (and gives
/// it to another receiver when the connection ends). Acknowledging it
/// alone would lose it.
#[test]
fn a_unicast_that_cannot_be_returned_is_not_acknowledged() {
    let (client, mut peer, _l) = connected("proto-badparam", Some(65536));
    // A notify for a registration the client does not have, its
    // parameter patched into invalid JSON of the same length.
    let mut buf = vec![0u8; 4096];
    let good = Message::Notify(Notify {
        parameter: RawJson::new("{}").unwrap(),
        ..match notify("me", "gone", Some(5)) {
            Message::Notify(n) => n,
            _ => unreachable!(),
        }
    });
    let n = wire::encode_frame(&mut buf, 1, |b| compact::encode(&good, b)).unwrap();
    assert_eq!(&buf[n - 2..n], b"{}");
    buf[n - 1] = b'x';
    peer.stream.write_all(&buf[..n]).unwrap();
    // Then a good one: returned with its ack. Nothing came before it.
    peer.send(&notify("me", "gone", Some(6)));
    assert_eq!(peer.recv(), notify("me", "gone", Some(6)));
    assert_eq!(peer.recv(), Message::Ack(6));
    peer.quiet();
    drop(client);
}

/// A server that reads nothing for longer than the old write timeout
/// (2 s) slows the sender down without failing it (backpressure): the
/// sending call waits, the connection stays up, and everything arrives
/// once the server reads again. Meanwhile the client's pool keeps
/// running callbacks and holding back their acks: no worker waits for
/// the blocked writer.
#[test]
fn a_server_that_reads_nothing_slows_the_sender_without_an_error() {
    let (client, mut peer, _l) = connected("proto-backpressure", Some(65536));
    let (ran_tx, ran_rx) = mpsc::channel();
    let ran_tx = Mutex::new(ran_tx);
    let _reg = client
        .register("work", 0, move |d: &Delivery<'_>| {
            ran_tx.lock().unwrap().send(d.flags).unwrap();
        })
        .unwrap();
    assert_eq!(peer.recv(), reg("me", "work", 0));
    const SENT: u64 = 200;
    let sender = {
        let c = client.clone();
        std::thread::spawn(move || {
            let pad = "p".repeat(4000);
            for i in 0..SENT {
                c.notify("far", "bulk", &serde_json::json!({"seq": i, "pad": pad}))
                    .unwrap();
            }
            std::time::Instant::now()
        })
    };
    // The sender fills the socket and waits.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!sender.is_finished(), "800 KB fit into the socket?");
    assert!(client.is_connected());
    // Unicasts for the registration run meanwhile, more than an ack batch.
    let batch = nfy_linux::client::conn::ACK_BATCH as u64 + 8;
    for r in 0..batch {
        let Message::Notify(n) = notify("me", "work", Some(100 + r)) else {
            unreachable!()
        };
        peer.send(&Message::Notify(Notify {
            flags: r as u32,
            ..n
        }));
    }
    for r in 0..batch {
        assert_eq!(ran_rx.recv_timeout(LONG).unwrap(), r as u32);
    }
    // The server reads again: every notification, in order, and the acks.
    let read_from = std::time::Instant::now();
    let mut seqs = Vec::new();
    let mut acks = Vec::new();
    while seqs.len() < SENT as usize || acks.len() < batch as usize {
        match peer.recv() {
            Message::Ack(r) => acks.push(r),
            m => seqs.push(seq(&m).unwrap()),
        }
    }
    assert!(sender.join().unwrap() >= read_from);
    assert_eq!(seqs, (0..SENT).collect::<Vec<_>>());
    acks.sort_unstable();
    assert_eq!(acks, (100..100 + batch).collect::<Vec<_>>());
    assert!(client.is_connected());
    drop(client);
}

/// `notify_within` gives up at its deadline with a typed error, and
/// what it gave up on never reaches the server: over a Unix socket (a
/// small frame is taken whole or not at all) the connection stays up and
/// the stream stays intact.
#[test]
fn a_send_deadline_times_out_and_sends_nothing() {
    let (client, mut peer, _l) = connected("proto-deadline", Some(65536));
    let opts = NotifyOptions::default();
    let short = Duration::from_millis(20);
    let mut ok = Vec::new();
    let mut timeouts = 0;
    for i in 0..100_000u64 {
        match client.notify_within("far", "n", &serde_json::json!({ "seq": i }), opts, short) {
            Ok(()) => ok.push(i),
            Err(nfy_linux::client::Error::SendTimeout) => {
                timeouts += 1;
                if timeouts == 3 {
                    break;
                }
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(timeouts, 3, "the socket never filled");
    assert!(client.is_connected());
    // Everything sent arrives, nothing that timed out, no broken frame.
    let (got, closed) = peer.drain(Duration::from_millis(300));
    assert!(!closed);
    let seqs: Vec<u64> = got.iter().map(|m| seq(m).unwrap()).collect();
    assert_eq!(seqs, ok);
    assert!(peer.dec.is_idle(), "half a frame on the stream");
    client
        .notify("far", "n", &serde_json::json!({ "seq": 1u64 << 40 }))
        .unwrap();
    assert_eq!(seq(&peer.recv()), Some(1 << 40));
    drop(client);
}

/// Over TCP a large frame can be taken in part: a deadline that passes
/// then closes the connection (the server discards the truncated frame),
/// the call still says it timed out, and the client reconnects. Whatever
/// happens, what the server decodes is exactly what was reported sent.
#[test]
fn a_deadline_inside_a_frame_ends_the_connection_not_the_stream() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || Client::connect_to(ServerAddr::tcp(addr)).unwrap());
    let mut peer = Peer::accept_tcp(&listener);
    peer.greet(None, Some(1 << 20));
    let client = client.join().unwrap();
    assert_eq!(peer.recv(), Message::UnicastErrors(false));
    client.set_app_id("me").unwrap();
    assert_eq!(peer.recv(), hello(Some("me")));
    let pad = "p".repeat(200_000);
    let mut ok = Vec::new();
    let mut timed_out = Vec::new();
    for i in 0..10_000u64 {
        let p = serde_json::json!({ "seq": i, "pad": pad });
        match client.notify_within(
            "far",
            "n",
            &p,
            NotifyOptions::default(),
            Duration::from_millis(50),
        ) {
            Ok(()) => ok.push(i),
            Err(nfy_linux::client::Error::SendTimeout) => {
                timed_out.push(i);
                break;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(timed_out.len(), 1, "the socket never filled");
    let (got, closed) = peer.drain(Duration::from_millis(500));
    let seqs: Vec<u64> = got.iter().map(|m| seq(m).unwrap()).collect();
    assert_eq!(seqs, ok, "exactly what was reported sent");
    if closed {
        // The frame was cut: the client reconnects by itself.
        let mut again = Peer::accept_tcp(&listener);
        again.greet(Some("me"), Some(1 << 20));
    } else {
        assert!(peer.dec.is_idle(), "half a frame on a live connection");
        assert!(client.is_connected());
    }
    drop(client);
}
