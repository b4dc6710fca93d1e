//! The client's side of the protocol, checked frame by frame against a
//! scripted fake server: the handshake and its replay on reconnect, and
//! the unregister race (a unicast for a registration that does not exist
//! goes back unchanged, reference included; a broadcast never does).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client_harness;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use client_harness::{temp_dir, LONG};
use nfy_core::msg::{self, compact, Encoding, Hello, Message, Notify, RawJson, Register, Status};
use nfy_core::wire::{self, Decoded, FrameDecoder, HEADER_LEN};
use nfy_core::{AppId, Destination, NotificationId};
use nfy_linux::client::{Client, Delivery, ServerAddr};

/// The fake server's end of one connection.
struct Peer {
    stream: UnixStream,
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
        let (stream, _) = l.accept().unwrap();
        stream.set_read_timeout(Some(LONG)).unwrap();
        Peer {
            stream,
            dec: FrameDecoder::new(vec![0u8; HEADER_LEN + 65536]),
            pending: Vec::new(),
        }
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
        self.stream
            .set_read_timeout(Some(Duration::from_millis(150)))
            .unwrap();
        assert!(self.pending.is_empty(), "unexpected frame");
        let mut buf = [0u8; 64];
        match self.stream.read(&mut buf) {
            Ok(n) => panic!("unexpected {n} bytes"),
            Err(e) => assert!(matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )),
        }
        self.stream.set_read_timeout(Some(LONG)).unwrap();
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
    accepted_rx.recv_timeout(LONG).unwrap();
    let client = client.join().unwrap();
    assert_eq!(peer.recv(), hello(None));
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
    assert_eq!(peer.recv(), hello(Some("me")));
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
    let client = client.join().unwrap();
    assert_eq!(peer.recv(), hello(None));
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
    assert_eq!(peer.recv(), hello(Some("me")));
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
