//! Routing through a real `notifysvc`, spoken to in the documented JSON
//! protocol only (spec 5): unicast to an app, `"1"` with priorities and
//! ties, `"*"` broadcast, impersonation, unicast errors, the unregister
//! race (returned unicasts), half-closed senders, over the Unix socket and
//! over TCP loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{JsonClient, Server, DEADLINE};
use serde_json::{json, Value};

/// How long "nothing arrives" is watched for. Only ever used after a
/// barrier made sure the server handled what could have produced it, so
/// a slow machine cannot turn a failure into a pass by accident.
const QUIET: Duration = Duration::from_millis(100);

/// The next message, which must be a `kind`.
fn expect(c: &mut JsonClient, kind: &str) -> Value {
    let v = c
        .recv(DEADLINE)
        .unwrap()
        .unwrap_or_else(|| panic!("no {kind} within {DEADLINE:?}"));
    assert_eq!(v["type"], kind, "{v}");
    v
}

/// Asserts the members a receiver or a unicast error carries.
fn assert_notification(
    v: &Value,
    from: &str,
    to: &str,
    notification: &str,
    flags: u32,
    parameter: &Value,
) {
    assert_eq!(v["from"], from, "{v}");
    assert_eq!(v["to"], to, "{v}");
    assert_eq!(v["notification"], notification, "{v}");
    assert_eq!(v["flags"], flags, "{v}");
    assert_eq!(&v["parameter"], parameter, "{v}");
}

/// Clients of both kinds, for the transport matrix.
fn client(server: &Server, tcp: bool) -> JsonClient {
    if tcp {
        server.tcp_client()
    } else {
        server.unix_client()
    }
}

#[test]
fn unicast_and_unicast_error_round_trips_over_unix_and_tcp() {
    let server = Server::start();
    for (recv_tcp, send_tcp) in [(false, false), (false, true), (true, false), (true, true)] {
        let case = format!("receiver tcp={recv_tcp}, sender tcp={send_tcp}");
        let app = format!("rcv-{recv_tcp}-{send_tcp}");
        let mut receiver = client(&server, recv_tcp);
        let mut sender = client(&server, send_tcp);
        receiver.register(&app, "ping", 0).unwrap();
        assert!(receiver.barrier(&app).is_empty(), "{case}");

        for parameter in [
            json!({"k": 1, "nested": {"list": [1, "two", null, true, 2.5]}}),
            json!("a string \u{e9}\u{1F600}"),
            json!(null),
            json!([1, 2, 3]),
            json!(-17),
        ] {
            sender
                .notify("snd", &app, "ping", 0xdead_beef, parameter.clone())
                .unwrap();
            let got = expect(&mut receiver, "notify");
            assert_notification(&got, "snd", &app, "ping", 0xdead_beef, &parameter);
            assert!(
                got["reference"].is_u64(),
                "{case}: unicasts carry a reference: {got}"
            );
        }

        // Nobody registered: the sender gets the notification back,
        // unchanged, as a unicast error.
        let parameter = json!({"why": "nobody listens", "n": [1, {"x": null}]});
        sender
            .notify("snd", "nobody", "ping", 42, parameter.clone())
            .unwrap();
        let err = expect(&mut sender, "unicast_error");
        assert_notification(&err, "snd", "nobody", "ping", 42, &parameter);
        // The app ID is right but the notification is not registered.
        sender.notify("snd", &app, "other", 1, json!({})).unwrap();
        let err = expect(&mut sender, "unicast_error");
        assert_notification(&err, "snd", &app, "other", 1, &json!({}));
        // A notify without flags/parameter/reference takes the defaults.
        sender
            .send(&json!({"type": "notify", "from": "snd", "to": app, "notification": "ping"}))
            .unwrap();
        let got = expect(&mut receiver, "notify");
        assert_notification(&got, "snd", &app, "ping", 0, &json!({}));

        // After unregister the same unicast is an error.
        receiver.unregister(&app, "ping").unwrap();
        receiver.barrier(&app);
        sender.notify("snd", &app, "ping", 3, json!({})).unwrap();
        let err = expect(&mut sender, "unicast_error");
        assert_notification(&err, "snd", &app, "ping", 3, &json!({}));
        receiver.expect_nothing(QUIET);
    }
}

#[test]
fn the_spec_example_frame_is_a_register() {
    let server = Server::start();
    for tcp in [false, true] {
        let mut receiver = client(&server, tcp);
        // Spec 5.2, byte for byte.
        let mut bytes = vec![
            0x00, 0x4E, 0x46, 0x59, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x00, 0x00,
        ];
        bytes.extend_from_slice(
            br#"{"notification":"test","priority":1,"to":"xyz","type":"register"}"#,
        );
        receiver.send_raw(&bytes).unwrap();
        receiver.barrier("xyz");
        let mut sender = client(&server, !tcp);
        sender
            .notify("me", "xyz", "test", 0, json!({"hi": 1}))
            .unwrap();
        let got = expect(&mut receiver, "notify");
        assert_notification(&got, "me", "xyz", "test", 0, &json!({"hi": 1}));
        // Member order is free and unknown members are ignored.
        receiver
            .send_raw(&common::frame(
                br#"{"type":"unregister","extra":[1,{"a":2}],"notification":"test","to":"xyz"}"#,
            ))
            .unwrap();
        receiver.barrier("xyz");
        sender.notify("me", "xyz", "test", 0, json!({})).unwrap();
        expect(&mut sender, "unicast_error");
    }
}

#[test]
fn destination_1_picks_the_best_priority_and_the_most_recent_on_ties() {
    let server = Server::start();
    let mut a = server.unix_client();
    let mut b = server.tcp_client();
    let mut c = server.unix_client();
    let mut sender = server.tcp_client();
    // Registered in this order (each barrier fixes the order).
    a.register("app-a", "job", 5).unwrap();
    a.barrier("app-a");
    b.register("app-b", "job", 9).unwrap();
    b.barrier("app-b");
    c.register("app-c", "job", 9).unwrap();
    c.barrier("app-c");

    let mut round = 0;
    let mut send_1 = |sender: &mut JsonClient| {
        round += 1;
        sender
            .notify("boss", "1", "job", 0, json!({"round": round}))
            .unwrap();
        json!({"round": round})
    };

    // b and c tie at 9: c registered last.
    let p = send_1(&mut sender);
    let got = expect(&mut c, "notify");
    // The receiver sees the destination as sent.
    assert_notification(&got, "boss", "1", "job", 0, &p);
    // Re-registering (replacing) makes b the most recent.
    b.register("app-b", "job", 9).unwrap();
    b.barrier("app-b");
    let p = send_1(&mut sender);
    assert_notification(&expect(&mut b, "notify"), "boss", "1", "job", 0, &p);
    // b drops to 1; c (9) wins again over a (5).
    b.register("app-b", "job", 1).unwrap();
    b.barrier("app-b");
    let p = send_1(&mut sender);
    assert_notification(&expect(&mut c, "notify"), "boss", "1", "job", 0, &p);
    // Negative and extreme priorities order correctly too.
    a.register("app-a", "job", i32::MAX).unwrap();
    a.barrier("app-a");
    c.register("app-c", "job", i32::MIN).unwrap();
    c.barrier("app-c");
    let p = send_1(&mut sender);
    assert_notification(&expect(&mut a, "notify"), "boss", "1", "job", 0, &p);
    // A unicast to an app picks among that app's registrations only.
    sender.notify("boss", "app-c", "job", 0, json!({})).unwrap();
    assert_notification(
        &expect(&mut c, "notify"),
        "boss",
        "app-c",
        "job",
        0,
        &json!({}),
    );
    // Nothing reached anyone else.
    for (x, app) in [(&mut a, "app-a"), (&mut b, "app-b"), (&mut c, "app-c")] {
        assert!(x.barrier(app).is_empty(), "{app} got more");
    }
    // "1" with nobody registered: unicast error.
    sender
        .notify("boss", "1", "no-such-job", 0, json!({}))
        .unwrap();
    let err = expect(&mut sender, "unicast_error");
    assert_notification(&err, "boss", "1", "no-such-job", 0, &json!({}));
}

#[test]
fn broadcast_reaches_every_registration_once_per_connection_and_never_errors() {
    let server = Server::start();
    let mut a = server.unix_client();
    let mut b = server.tcp_client();
    // c holds two receiver app IDs for the same notification (spec 2.6:
    // its library runs both callbacks; the server sends one copy).
    let mut c = server.unix_client();
    let mut other = server.tcp_client();
    a.register("app-a", "news", -3).unwrap();
    b.register("app-b", "news", 7).unwrap();
    c.register("app-c1", "news", 0).unwrap();
    c.register("app-c2", "news", 0).unwrap();
    other.register("app-o", "sports", 0).unwrap();
    for (x, app) in [
        (&mut a, "app-a"),
        (&mut b, "app-b"),
        (&mut c, "app-c1"),
        (&mut other, "app-o"),
    ] {
        x.barrier(app);
    }
    let mut sender = server.unix_client();
    sender
        .notify("press", "*", "news", 5, json!({"headline": "x"}))
        .unwrap();
    for x in [&mut a, &mut b, &mut c] {
        let got = expect(x, "notify");
        assert_notification(&got, "press", "*", "news", 5, &json!({"headline": "x"}));
        assert!(got.get("reference").is_none_or(Value::is_null), "{got}");
    }
    assert!(c.barrier("app-c1").is_empty(), "c got the broadcast twice");
    assert!(other.barrier("app-o").is_empty());
    // A broadcast nobody receives is no error.
    sender
        .notify("press", "*", "nothing", 0, json!({}))
        .unwrap();
    assert!(sender.barrier("press").is_empty());
}

#[test]
fn a_connection_may_register_for_other_app_ids() {
    let server = Server::start();
    // A multi-application controller: one connection, several app IDs.
    let mut controller = server.tcp_client();
    controller.register("wallet", "pay", 0).unwrap();
    controller.register("loyalty", "pay", 0).unwrap();
    controller.barrier("controller");
    let mut sender = server.unix_client();
    for app in ["wallet", "loyalty"] {
        sender
            .notify("till", app, "pay", 1, json!({"for": app}))
            .unwrap();
        let got = expect(&mut controller, "notify");
        assert_notification(&got, "till", app, "pay", 1, &json!({"for": app}));
    }
    // And it may send as anyone too: `from` is taken as given.
    controller
        .notify("wallet", "wallet", "pay", 0, json!({}))
        .unwrap();
    let got = expect(&mut controller, "notify");
    assert_eq!(got["from"], "wallet");
}

#[test]
fn order_is_preserved_per_sender_and_registration() {
    let server = Server::start();
    let mut receiver = server.unix_client();
    receiver.register("sink", "seq", 0).unwrap();
    receiver.barrier("sink");
    let mut sender = server.tcp_client();
    let n = 2000;
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend(common::json_frame(&common::notify_msg(
            "src",
            "sink",
            "seq",
            0,
            json!({"i": i}),
        )));
    }
    // One write: the server sees many frames per read.
    sender.send_raw(&batch).unwrap();
    for i in 0..n {
        let got = expect(&mut receiver, "notify");
        assert_eq!(got["parameter"]["i"], i, "{got}");
    }
}

/// Spec 3, the unregister race, through the raw protocol: a receiver that
/// lost its registration sends the unicast back unchanged, `reference`
/// included; the server tries the next receiver, and when nobody is left
/// the ORIGINAL sender gets the unicast error.
#[test]
fn returned_unicasts_go_to_the_next_receiver_then_back_to_the_original_sender() {
    let server = Server::start();
    for tcp in [false, true] {
        let mut a = client(&server, tcp);
        let mut b = client(&server, !tcp);
        let mut sender = client(&server, tcp);
        a.register("app-a", "race", 9).unwrap();
        a.barrier("app-a");
        b.register("app-b", "race", 1).unwrap();
        b.barrier("app-b");

        let parameter = json!({"amount": 1250, "currency": "EUR"});
        sender
            .notify("till", "1", "race", 77, parameter.clone())
            .unwrap();
        let first = expect(&mut a, "notify");
        assert_notification(&first, "till", "1", "race", 77, &parameter);
        let reference = first["reference"]
            .as_u64()
            .expect("a unicast has a reference");

        // A unregisters, then returns what it got, as received.
        a.unregister("app-a", "race").unwrap();
        a.send(&first).unwrap();
        let second = expect(&mut b, "notify");
        assert_notification(&second, "till", "1", "race", 77, &parameter);
        assert_eq!(second["reference"], reference, "{second}");

        // B returns it too (still registered: a returned unicast never goes
        // back to the connection that returned it).
        b.send(&second).unwrap();
        let err = expect(&mut sender, "unicast_error");
        assert_notification(&err, "till", "1", "race", 77, &parameter);
        // Neither A nor B gets it again, and no unicast error went to them.
        assert!(a.barrier("app-a").is_empty());
        assert!(b.barrier("app-b").is_empty());
        b.unregister("app-b", "race").unwrap();
        b.barrier("app-b");
    }
}

#[test]
fn a_returned_unicast_whose_sender_left_comes_back_to_the_returner() {
    let server = Server::start();
    let mut a = server.unix_client();
    a.register("app-a", "orphan", 0).unwrap();
    a.barrier("app-a");
    let stream = std::net::TcpStream::connect(server.tcp_addr()).unwrap();
    let port = stream.local_addr().unwrap().port();
    let mut sender = JsonClient::from_tcp(stream);
    sender
        .notify("gone", "app-a", "orphan", 0, json!({}))
        .unwrap();
    let got = expect(&mut a, "notify");
    // The sender disconnects and the server sees it go (its own line: the
    // harness's probe connections close by the peer too).
    drop(sender);
    server.expect_log(&format!("(tcp 127.0.0.1:{port}): closed by the peer"));
    a.unregister("app-a", "orphan").unwrap();
    a.send(&got).unwrap();
    // Decision (broker docs): a reference naming no live connection is an
    // ordinary notify from the returner, who gets the unicast error.
    let err = expect(&mut a, "unicast_error");
    assert_notification(&err, "gone", "app-a", "orphan", 0, &json!({}));
}

#[test]
fn a_half_closed_sender_still_receives_its_unicast_error() {
    let server = Server::start();
    for tcp in [false, true] {
        let mut sender = client(&server, tcp);
        sender
            .notify("half", "nobody", "ping", 9, json!({"tcp": tcp}))
            .unwrap();
        sender.shutdown_write().unwrap();
        let err = expect(&mut sender, "unicast_error");
        assert_notification(&err, "half", "nobody", "ping", 9, &json!({"tcp": tcp}));
        // Then the server closes its side.
        assert!(sender.closed_by_server(DEADLINE), "tcp={tcp}");
    }
    // Far more unicast errors than socket buffers hold, then the
    // half-close: every one of them still arrives (the server keeps the
    // connection until its queue is empty).
    for tcp in [false, true] {
        let mut sender = client(&server, tcp);
        let n = 5000u32;
        let pad = "x".repeat(100);
        let mut batch = Vec::new();
        for i in 0..n {
            batch.extend(common::json_frame(&common::notify_msg(
                "half",
                "nobody",
                "ping",
                i,
                json!({"pad": pad}),
            )));
        }
        let mut writer = sender.try_clone().unwrap();
        let write = std::thread::spawn(move || {
            writer.send_raw(&batch).unwrap();
            writer.shutdown_write().unwrap();
        });
        for i in 0..n {
            let err = expect(&mut sender, "unicast_error");
            assert_eq!(err["flags"], i, "tcp={tcp}: {err}");
        }
        write.join().unwrap();
        assert!(sender.closed_by_server(DEADLINE), "tcp={tcp}");
    }
}

/// A notification of the largest accepted size grows a little on its way
/// (the server adds `reference`, and writes `flags` and `parameter` that
/// the sender may have left out); returned unchanged, it must still be
/// accepted, or the unregister race would lose it.
#[test]
fn a_returned_unicast_of_the_largest_size_is_not_lost() {
    let max_frame = 16 * 1024;
    let server = Server::builder().arg("--max-frame").arg("16K").start();
    let mut a = server.unix_client();
    a.register("app-a", "big", 9).unwrap();
    a.barrier("app-a");
    let mut sender = server.tcp_client();
    // Exactly --max-frame bytes, without flags: the forwarded form is
    // longer.
    let head = r#"{"type":"notify","from":"s","to":"1","notification":"big","parameter":""#;
    let tail = r#""}"#;
    let pad = "x".repeat(max_frame - head.len() - tail.len());
    let body = format!("{head}{pad}{tail}");
    assert_eq!(body.len(), max_frame);
    sender.send_raw(&common::frame(body.as_bytes())).unwrap();
    let got = expect(&mut a, "notify");
    let forwarded = serde_json::to_vec(&got).unwrap();
    assert!(forwarded.len() > max_frame, "{}", forwarded.len());
    // A lost its registration and sends it back as it came.
    a.unregister("app-a", "big").unwrap();
    a.send(&got).unwrap();
    let err = expect(&mut sender, "unicast_error");
    assert_eq!(err["parameter"].as_str().unwrap().len(), pad.len());
    assert!(!server.log().contains("over the limit"), "{}", server.log());
}

/// A frame holding `m` in our compact encoding (spec 5.3).
fn compact_frame(m: &nfy_core::msg::Message<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    let n = nfy_core::msg::compact::encode(m, &mut buf).unwrap();
    common::frame_with_id(1, &buf[..n])
}

/// An observer (a local connection that sent a compact `hello` and
/// `observe`): what it was told, as (from, receiver, notification, flags).
/// (The `Welcome` answering its `hello` is skipped.)
fn observed(obs: &mut JsonClient) -> (String, String, String, u32) {
    use nfy_core::msg::{self, Encoding, Message};
    let mut f = obs.recv_frame(DEADLINE).unwrap().expect("no observation");
    while let Ok(Message::Welcome(_)) = msg::decode(Encoding::Compact, &f.body) {
        f = obs.recv_frame(DEADLINE).unwrap().expect("no observation");
    }
    assert_eq!(f.msg_id, 1, "compact after hello");
    match msg::decode(Encoding::Compact, &f.body).unwrap() {
        Message::Observed(o) => (
            o.from.as_str().to_owned(),
            o.to.as_ref().map_or("", |t| t.as_str()).to_owned(),
            o.notification.as_str().to_owned(),
            o.flags,
        ),
        other => panic!("expected an observation, got {other:?}"),
    }
}

/// Spec 2.5: one observer call per delivery, one with an empty receiver
/// when nothing received a notification, never the parameter.
#[test]
fn observers_hear_of_every_delivery_once() {
    use nfy_core::msg::{compact, Hello, Message};
    let server = Server::start();
    let mut obs = server.unix_client();
    obs.send_raw(&compact_frame(&Message::Hello(Hello {
        version: compact::VERSION,
        app_id: None,
        acks: false,
    })))
    .unwrap();
    obs.send_raw(&compact_frame(&Message::Observe(true)))
        .unwrap();
    let mut a = server.unix_client();
    let mut b = server.tcp_client();
    a.register("app-a", "ev", 1).unwrap();
    a.register("app-a2", "ev", 0).unwrap();
    a.barrier("app-a");
    b.register("app-b", "ev", 5).unwrap();
    b.barrier("app-b");
    // Whether the set-up deliveries were observed depends on when the
    // observe request was handled: skip everything up to a marker.
    let mut s = server.unix_client();
    s.register("marker", "marker", 0).unwrap();
    s.barrier("marker");
    s.notify("s", "marker", "marker", 0, json!({})).unwrap();
    expect(&mut s, "notify");
    while observed(&mut obs).2 != "marker" {}

    let secret = json!({"secret": "never shown to observers"});
    s.notify("s", "app-a", "ev", 1, secret.clone()).unwrap();
    s.notify("s", "nobody", "ev", 2, secret.clone()).unwrap();
    s.notify("s", "*", "ev", 3, secret.clone()).unwrap();
    s.notify("s", "*", "none", 4, secret.clone()).unwrap();
    s.notify("s", "1", "ev", 5, secret.clone()).unwrap();
    let mut got = Vec::new();
    for _ in 0..7 {
        got.push(observed(&mut obs));
    }
    let o = |to: &str, id: &str, flags: u32| ("s".to_owned(), to.to_owned(), id.to_owned(), flags);
    let broadcast: Vec<_> = got[2..5].to_vec();
    assert_eq!(got[0], o("app-a", "ev", 1));
    assert_eq!(got[1], o("", "ev", 2));
    // Every receiving registration of the broadcast, best first: one
    // message per connection, one observation per registration.
    assert_eq!(
        broadcast,
        [
            o("app-b", "ev", 3),
            o("app-a", "ev", 3),
            o("app-a2", "ev", 3)
        ]
    );
    assert_eq!(got[5], o("", "none", 4));
    assert_eq!(got[6], o("app-b", "ev", 5));
    // The receivers: a got the unicast and one copy of the broadcast.
    assert_eq!(expect(&mut a, "notify")["flags"], 1);
    assert_eq!(expect(&mut a, "notify")["flags"], 3);
    assert_eq!(expect(&mut b, "notify")["flags"], 3);
    assert_eq!(expect(&mut b, "notify")["flags"], 5);
    assert_eq!(expect(&mut s, "unicast_error")["flags"], 2);
    assert!(a.barrier("app-a").is_empty());
    // A JSON-only connection may not observe (it never said hello).
    let mut plain = server.unix_client();
    plain
        .send_raw(&compact_frame(&Message::Observe(true)))
        .unwrap();
    plain.register("plain", "p", 0).unwrap();
    assert!(plain.barrier("plain").is_empty());
    server.expect_log("local-only message before hello");
}
