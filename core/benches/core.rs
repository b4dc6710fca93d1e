//! Benchmarks of the core's hot functions: `route()` as the table grows
//! (unrelated registrations must not slow a lookup down), and frame + JSON
//! decode and encode of a 200-byte notify.
//!
//! Run with `cargo bench -p nfy-core`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nfy_core::broker::{Broker, ConnId, Handled, Limits, Outbox, PeerKind, QueueFull};
use nfy_core::msg::{self, Encoding, Message, Notify, RawJson};
use nfy_core::route::{Route, RoutingTable};
use nfy_core::time::Timestamp;
use nfy_core::whitelist::Whitelist;
use nfy_core::wire::{self, Decoded, Frame, FrameDecoder};
use nfy_core::{AppId, Destination, NotificationId};

const CAP: usize = 16384;
const IDS: usize = 1000;

/// A table with `n` registrations spread over (up to) 1,000 notification
/// IDs, each held by its own connection and app.
fn table(n: usize) -> Box<RoutingTable<CAP>> {
    let mut t = Box::new(RoutingTable::<CAP>::new());
    for i in 0..n {
        let id = NotificationId::new(&format!("event-{}", i % IDS)).unwrap();
        let app = AppId::new(&format!("app-{i}")).unwrap();
        t.register(ConnId::from_raw(i as u32), app, id, (i % 7) as i32)
            .unwrap();
    }
    t
}

fn bench_route(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_unicast");
    for n in [10usize, 1_000, 10_000] {
        let t = table(n);
        // The app registered last for "event-3" (or the only one).
        let target = (0..n).rev().find(|i| i % IDS == 3).unwrap();
        let to = Destination::App(AppId::new(&format!("app-{target}")).unwrap());
        let one = Destination::One;
        g.bench_with_input(BenchmarkId::new("app", n), &n, |b, _| {
            b.iter(
                || match t.route(black_box(&to), black_box("event-3"), |_| true) {
                    Route::Unicast(r) => r.conn,
                    _ => unreachable!(),
                },
            )
        });
        g.bench_with_input(BenchmarkId::new("one", n), &n, |b, _| {
            b.iter(
                || match t.route(black_box(&one), black_box("event-3"), |_| true) {
                    Route::Unicast(r) => r.conn,
                    _ => unreachable!(),
                },
            )
        });
    }
    g.finish();
}

/// An outbox that only counts what it is given.
struct Count(u64);

impl Outbox for Count {
    fn send(&mut self, _: ConnId, _: Encoding, _: &Message<'_>) -> Result<(), QueueFull> {
        self.0 += 1;
        Ok(())
    }
}

fn bench_broker(c: &mut Criterion) {
    let mut g = c.benchmark_group("broker_notify");
    for n in [10usize, 10_000] {
        let mut b: Box<Broker<2048, CAP, 16, 4>> =
            Box::new(Broker::new(Whitelist::new(), Limits::default()));
        let mut out = Count(0);
        let conns: Vec<ConnId> = (0..1000)
            .map(|_| b.connect(PeerKind::Local).unwrap())
            .collect();
        for i in 0..n {
            let r = msg::Register {
                to: AppId::new(&format!("app-{i}")).unwrap(),
                notification: NotificationId::new(&format!("event-{}", i % IDS)).unwrap(),
                priority: 0,
            };
            b.handle(conns[i % conns.len()], Message::Register(r), &mut out);
        }
        let target = (0..n).rev().find(|i| i % IDS == 3).unwrap();
        let n_msg = Notify {
            from: AppId::new("sender").unwrap(),
            to: Destination::App(AppId::new(&format!("app-{target}")).unwrap()),
            notification: NotificationId::new("event-3").unwrap(),
            flags: 0,
            reference: None,
            parameter: RawJson::new(r#"{"amount":1234,"currency":"EUR"}"#).unwrap(),
        };
        let sender = conns[0];
        g.bench_with_input(BenchmarkId::new("unicast", n), &n, |bch, _| {
            bch.iter(|| b.handle(sender, Message::Notify(n_msg.clone()), &mut out))
        });
        // The same as a server gives it: a JSON frame through the frame
        // limit, decoding, flow control (is the receiver over its mark?)
        // and routing, against decoding and routing alone.
        let mut body = vec![0u8; 512];
        let len = msg::encode(&Message::Notify(n_msg.clone()), Encoding::Json, &mut body).unwrap();
        body.truncate(len);
        let frame = Frame {
            msg_id: Encoding::Json.msg_id(),
            body: &body,
        };
        g.bench_with_input(BenchmarkId::new("unicast_frame", n), &n, |bch, _| {
            bch.iter(|| b.handle_frame(sender, frame, &mut out))
        });
        let now = Timestamp::ZERO;
        g.bench_with_input(BenchmarkId::new("unicast_input", n), &n, |bch, _| {
            bch.iter(|| {
                let handled = b.handle_input(sender, Decoded::Frame(frame), now, &mut out);
                assert_eq!(handled, Handled::Done);
            })
        });
    }
    g.finish();
}

/// A 200-byte JSON notify body.
fn notify_body() -> Vec<u8> {
    let base = r#"{"flags":0,"from":"payment","notification":"transaction-result","parameter":{"amount":1234,"currency":"EUR","result":"approved","text":"PAD"},"to":"ui","type":"notify"}"#;
    let pad = 200 - base.len();
    base.replace("PAD", &"x".repeat(pad + 3)).into_bytes()
}

fn bench_codec(c: &mut Criterion) {
    let body = notify_body();
    assert_eq!(body.len(), 200);
    let mut frame = vec![0u8; 1024];
    let len = wire::encode_frame(&mut frame, 0, |buf| {
        buf.get_mut(..body.len()).ok_or(())?.copy_from_slice(&body);
        Ok::<_, ()>(body.len())
    })
    .unwrap();
    frame.truncate(len);
    // 64 frames back to back, as a busy socket read would return them.
    let stream: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 64)
        .collect();

    let mut g = c.benchmark_group("codec_200B_notify");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("decode_frame_json", |b| {
        let mut dec = FrameDecoder::new(vec![0u8; 64 * 1024]);
        b.iter(|| {
            let mut rest = &stream[..];
            let mut n = 0;
            while !rest.is_empty() {
                let (used, d) = dec.feed(rest);
                if let Some(Decoded::Frame(f)) = d {
                    if let Ok(Message::Notify(m)) =
                        msg::decode(Encoding::from_msg_id(f.msg_id), f.body)
                    {
                        n += m.flags as usize + 1;
                    }
                }
                rest = &rest[used..];
            }
            assert_eq!(n, 64);
        })
    });
    let Ok(Message::Notify(m)) = msg::json::decode(&body) else {
        panic!("the bench body must decode")
    };
    let m = Message::Notify(m);
    let mut out = vec![0u8; 64 * 1024];
    g.bench_function("encode_json_frame", |b| {
        b.iter(|| {
            let mut at = 0;
            for _ in 0..64 {
                at += wire::encode_frame(&mut out[at..], 0, |buf| {
                    msg::json::encode(black_box(&m), buf)
                })
                .unwrap();
            }
            assert_eq!(at, stream.len());
        })
    });
    g.finish();
}

criterion_group!(benches, bench_route, bench_broker, bench_codec);
criterion_main!(benches);
