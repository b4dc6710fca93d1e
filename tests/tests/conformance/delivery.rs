//! Who receives what (spec section 2), across real processes and the JSON
//! wire.

use std::collections::BTreeSet;

use nfy_tests::agent::Agent;
use nfy_tests::server::ServerProcess;
use nfy_tests::wire::JsonClient;
use nfy_tests::{Target, QUIET};
use serde_json::{json, Value};

use crate::support::{assert_delivery, assert_wire, is_plumbing};

/// A unicast reaches the registration of the named app only, with every
/// member as sent, in the order sent.
pub fn unicast_between_processes(t: &Target) {
    let server = ServerProcess::start(t);
    let mut rx = Agent::start(t, &server, "rx");
    let mut other = Agent::start(t, &server, "other");
    let mut tx = Agent::start(t, &server, "tx");
    rx.app("alpha").register("greet", "greet", 0);
    other.app("gamma").register("greet", "greet", 0);
    tx.app("beta");

    assert_eq!(tx.notify("alpha", "greet", json!({"n": 1, "s": "é"}), 7), 0);
    let ev = rx.expect_event("notify");
    assert_delivery(
        &ev,
        "notify",
        "beta",
        "alpha",
        "greet",
        7,
        &json!({"n": 1, "s": "é"}),
    );
    assert_eq!(ev["label"], "greet");

    // Order is kept per sender and receiving registration.
    for i in 0..100 {
        assert_eq!(tx.notify("alpha", "greet", json!(i), 0), 0);
    }
    for i in 0..100 {
        assert_eq!(rx.expect_event("notify")["parameter"], i);
    }
    other.sync();
    other.expect_no_event(QUIET);
    rx.expect_no_event(QUIET);
}

/// The documented JSON protocol, spoken by a raw client over the Unix
/// socket and over TCP loopback, interoperates with library clients in
/// both directions.
pub fn unicast_over_the_json_wire(t: &Target) {
    let server = ServerProcess::start(t);
    let mut agent = Agent::start(t, &server, "agent");
    agent.app("alpha").register("hello", "hello", 0);

    let mut unix = JsonClient::unix(server.socket()).unwrap();
    unix.register("jsonapp", "greet", 0).unwrap();
    unix.sync("jsonapp");
    let mut tcp = JsonClient::tcp(server.tcp_v4()).unwrap();
    tcp.register("tcpapp", "greet", 0).unwrap();
    tcp.sync("tcpapp");

    // Library → JSON client: every member of spec 5.2, and a reference
    // (the server's business) on a unicast.
    assert_eq!(agent.notify("jsonapp", "greet", json!({"k": "v"}), 3), 0);
    let m = unix.expect_message();
    assert_wire(
        &m,
        "notify",
        "alpha",
        "jsonapp",
        "greet",
        3,
        &json!({"k": "v"}),
    );
    assert!(m.get("reference").is_some(), "{m}");
    assert_eq!(agent.notify("tcpapp", "greet", json!([1, 2, 3]), 0), 0);
    let m = tcp.expect_message();
    assert_wire(
        &m,
        "notify",
        "alpha",
        "tcpapp",
        "greet",
        0,
        &json!([1, 2, 3]),
    );

    // JSON client → library, over both transports.
    unix.notify(
        "jsonapp",
        "alpha",
        "hello",
        5,
        json!({"x": [1, {"y": null}]}),
    )
    .unwrap();
    let ev = agent.expect_event("notify");
    assert_delivery(
        &ev,
        "notify",
        "jsonapp",
        "alpha",
        "hello",
        5,
        &json!({"x": [1, {"y": null}]}),
    );
    tcp.notify("tcpapp", "alpha", "hello", 0, json!("text"))
        .unwrap();
    assert_eq!(agent.expect_event("notify")["parameter"], "text");

    // Member order is free, and `reference` is optional on input.
    let body =
        br#"{"parameter":{"o":1},"flags":9,"notification":"hello","to":"alpha","from":"j","type":"notify"}"#;
    unix.send_raw(&nfy_tests::wire::frame(body)).unwrap();
    let ev = agent.expect_event("notify");
    assert_delivery(&ev, "notify", "j", "alpha", "hello", 9, &json!({"o": 1}));

    // JSON client → JSON client.
    tcp.notify("tcpapp", "jsonapp", "greet", 1, json!(null))
        .unwrap();
    let m = unix.expect_message();
    assert_wire(&m, "notify", "tcpapp", "jsonapp", "greet", 1, &json!(null));

    // An unregistered JSON client receives nothing more.
    unix.unregister("jsonapp", "greet").unwrap();
    unix.sync("jsonapp");
    assert_eq!(agent.notify("jsonapp", "greet", json!(1), 0), 0);
    assert!(unix.sync("jsonapp").is_empty());
}

/// `"1"` goes to the best priority; ties go to the most recent
/// registration; replacing makes a registration the most recent.
pub fn one_goes_to_the_best_priority_and_ties_to_the_latest(t: &Target) {
    let server = ServerProcess::start(t);
    let mut a = Agent::start(t, &server, "a");
    let mut b = Agent::start(t, &server, "b");
    let mut c = Agent::start(t, &server, "c");
    let mut s = Agent::start(t, &server, "s");
    s.app("s");
    s.ok(json!({"op": "on_unicast_error", "label": "ue"}));
    s.sync();
    a.app("a").register("job", "job", 1);
    b.app("b").register("job", "job", 5);
    c.app("c").register("job", "job", 5);

    let step = std::cell::Cell::new(0);
    let next = || {
        step.set(step.get() + 1);
        step.get()
    };
    let one = |s: &mut Agent, rx: &Agent| {
        let step = next();
        assert_eq!(s.notify("1", "job", json!({"step": step}), 0), 0);
        let ev = rx.expect_event("notify");
        assert_eq!(ev["parameter"]["step"], step, "{} got {ev}", rx.name);
        assert_eq!(ev["to"], "1", "the destination as sent");
        assert_eq!(ev["from"], "s");
    };
    one(&mut s, &c); // 5 vs 5: the later one
    b.register("job", "job", 5); // replaced: now the most recent
    one(&mut s, &b);
    a.register("job", "job", 9); // a better priority wins
    one(&mut s, &a);

    // A JSON client takes part like any other.
    let mut j = JsonClient::unix(server.socket()).unwrap();
    j.register("j", "job", 10).unwrap();
    j.sync("j");
    let step = next();
    assert_eq!(s.notify("1", "job", json!({"step": step}), 0), 0);
    let m = j.expect_message();
    assert_wire(&m, "notify", "s", "1", "job", 0, &json!({"step": step}));
    j.unregister("j", "job").unwrap();
    j.sync("j");

    a.unregister("job");
    one(&mut s, &b);
    b.unregister("job");
    one(&mut s, &c);
    c.unregister("job");
    let step = next();
    assert_eq!(s.notify("1", "job", json!({"step": step}), 0), 0);
    let ue = s.expect_event("unicast_error");
    assert_delivery(
        &ue,
        "unicast_error",
        "s",
        "1",
        "job",
        0,
        &json!({"step": step}),
    );
    for x in [&a, &b, &c] {
        x.expect_no_event(QUIET);
    }
}

/// `"*"` reaches every registration once (a process with two matching
/// registrations runs both callbacks), never produces a unicast error.
pub fn broadcast_reaches_every_registration(t: &Target) {
    let server = ServerProcess::start(t);
    let mut a = Agent::start(t, &server, "a");
    let mut b = Agent::start(t, &server, "b");
    let mut ctl = Agent::start(t, &server, "ctl");
    let mut s = Agent::start(t, &server, "s");
    a.app("a").register("news", "news", 0);
    b.app("b").register("news", "news", -3);
    ctl.app("ctl");
    ctl.register_as("x", "app-x", "news", 0);
    ctl.register_as("y", "app-y", "news", 7);
    let mut j = JsonClient::unix(server.socket()).unwrap();
    j.register("j", "news", 0).unwrap();
    j.sync("j");
    s.app("s");
    s.ok(json!({"op": "on_unicast_error", "label": "ue"}));
    s.sync();

    assert_eq!(s.notify("*", "news", json!({"v": 1}), 2), 0);
    for (agent, label) in [(&a, "news"), (&b, "news")] {
        let ev = agent.expect_event("notify");
        assert_delivery(&ev, "notify", "s", "*", "news", 2, &json!({"v": 1}));
        assert_eq!(ev["label"], label);
    }
    let labels: BTreeSet<String> = (0..2)
        .map(|_| {
            let ev = ctl.expect_event("notify");
            assert_delivery(&ev, "notify", "s", "*", "news", 2, &json!({"v": 1}));
            ev["label"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(labels, BTreeSet::from(["x".to_owned(), "y".to_owned()]));
    let m = j.expect_message();
    assert_wire(&m, "notify", "s", "*", "news", 2, &json!({"v": 1}));
    // One message per connection, however many registrations match.
    assert!(j.sync("j").is_empty());

    // A broadcast nobody receives owes no unicast error: the first error
    // the sender gets is the one of the unicast it sent afterwards.
    assert_eq!(s.notify("*", "void", json!(1), 0), 0);
    assert_eq!(s.notify("nobody", "void", json!(2), 0), 0);
    let ue = s.expect_event("unicast_error");
    assert_eq!(ue["to"], "nobody", "{ue}");
    for x in [&a, &b, &ctl, &s] {
        x.expect_no_event(QUIET);
    }
}

/// A process registers and sends on behalf of other app IDs.
pub fn impersonation(t: &Target) {
    let server = ServerProcess::start(t);
    let mut ctl = Agent::start(t, &server, "ctl");
    let mut s = Agent::start(t, &server, "s");
    ctl.app("controller");
    ctl.register_as("one", "app1", "open", 0);
    ctl.register_as("two", "app2", "open", 0);
    s.app("s");

    assert_eq!(s.notify("app1", "open", json!(1), 0), 0);
    let ev = ctl.expect_event("notify");
    assert_eq!(
        (ev["label"].as_str(), ev["to"].as_str()),
        (Some("one"), Some("app1"))
    );
    assert_eq!(s.notify("app2", "open", json!(2), 0), 0);
    let ev = ctl.expect_event("notify");
    assert_eq!(
        (ev["label"].as_str(), ev["to"].as_str()),
        (Some("two"), Some("app2"))
    );
    // The controller's own app ID receives nothing.
    assert_eq!(s.notify("controller", "open", json!(3), 0), 0);
    ctl.expect_no_event(QUIET);

    // Sending as another app.
    assert_eq!(s.notify_from("someone-else", "app1", "open", json!(4)), 0);
    let ev = ctl.expect_event("notify");
    assert_delivery(&ev, "notify", "someone-else", "app1", "open", 0, &json!(4));

    // The ADK functions: register for another app ID, send from another.
    ctl.ok(json!({"op": "ipc_set_app_id", "id": "controller"}));
    ctl.ok(
        json!({"op": "ipc_register", "notification": "open", "data": 7,
                  "priority": 0, "to": "app3"}),
    );
    ctl.ok(json!({"op": "ipc_sync"}));
    s.ok(
        json!({"op": "ipc_notify", "to": "app3", "notification": "open",
                "parameter": {"adk": true}, "flags": 1, "from": "app9"}),
    );
    let ev = ctl.event_where(|v| !is_plumbing(v));
    assert_delivery(
        &ev.value,
        "notify",
        "app9",
        "app3",
        "open",
        1,
        &json!({"adk": true}),
    );
    assert_eq!(ev.value["label"], "adk:7");

    // The JSON protocol: `to` names the receiver, `from` the sender.
    let mut j = JsonClient::unix(server.socket()).unwrap();
    j.register("app4", "open", 0).unwrap();
    j.sync("j");
    assert_eq!(s.notify("app4", "open", json!(5), 0), 0);
    assert_eq!(j.expect_message()["to"], "app4");
    j.notify("app5", "app1", "open", 0, json!(6)).unwrap();
    let ev = ctl.expect_event("notify");
    assert_delivery(&ev, "notify", "app5", "app1", "open", 0, &json!(6));
}

/// Observers hear of every delivery (from, resolved receiver,
/// notification, flags — never the parameter), and once with an empty
/// receiver when nothing received a notification.
pub fn observers_see_every_delivery_and_the_empty_receiver(t: &Target) {
    let server = ServerProcess::start(t);
    let mut obs = Agent::start(t, &server, "obs");
    obs.ok(json!({"op": "observe", "label": "o"}));
    obs.sync();
    obs.ok(json!({"op": "ipc_register_observer", "data": 3}));
    obs.ok(json!({"op": "ipc_sync"}));
    let mut a = Agent::start(t, &server, "a");
    let mut b = Agent::start(t, &server, "b");
    let mut s = Agent::start(t, &server, "s");
    a.app("a").register("n", "n", 0);
    b.app("b").register("n", "n", 0);
    s.app("s");

    // Each observer (the idiomatic one "o", the ADK one "adk:3") gets the
    // same events, each in order.
    let observed = |label: &str| -> Value {
        let line = obs.event_where(|v| v["label"] == label && !is_plumbing(v));
        assert_eq!(line.value["event"], "observed", "{}", line.value);
        assert!(line.value.get("parameter").is_none(), "{}", line.value);
        line.value
    };
    let check = |label: &str, from: &str, to: &str, n: &str, flags: u64| {
        let ev = observed(label);
        assert_eq!(
            (&ev["from"], &ev["to"], &ev["notification"], &ev["flags"]),
            (&json!(from), &json!(to), &json!(n), &json!(flags)),
            "{ev}"
        );
    };

    assert_eq!(s.notify("a", "n", json!({"secret": 1}), 9), 0);
    a.expect_event("notify");
    for label in ["o", "adk:3"] {
        check(label, "s", "a", "n", 9);
    }

    assert_eq!(s.notify("*", "n", json!(0), 0), 0);
    for label in ["o", "adk:3"] {
        let receivers: BTreeSet<String> = (0..2)
            .map(|_| observed(label)["to"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            receivers,
            BTreeSet::from(["a".into(), "b".into()]),
            "{label}"
        );
    }

    // Nobody receives: one call with an empty receiver, for a unicast, a
    // "1" and a broadcast alike.
    assert_eq!(s.notify("nobody", "n", json!(0), 1), 0);
    assert_eq!(s.notify("1", "unheard", json!(0), 2), 0);
    assert_eq!(s.notify("*", "unheard", json!(0), 3), 0);
    for label in ["o", "adk:3"] {
        check(label, "s", "", "n", 1);
        check(label, "s", "", "unheard", 2);
        check(label, "s", "", "unheard", 3);
    }

    // Removing the observer stops it.
    obs.ok(json!({"op": "remove_handle", "label": "o"}));
    obs.ok(json!({"op": "ipc_unregister_observer"}));
    obs.sync();
    obs.ok(json!({"op": "ipc_sync"}));
    assert_eq!(s.notify("a", "n", json!(0), 0), 0);
    a.expect_event("notify");
    expect_only_plumbing(&obs);
}

/// No event other than the suite's own round trips arrives at `agent`
/// within [`QUIET`].
fn expect_only_plumbing(agent: &Agent) {
    let deadline = std::time::Instant::now() + QUIET;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match agent.try_event(left) {
            Some(ev) if is_plumbing(&ev.value) => {}
            Some(ev) => panic!("agent {}: unexpected {}", agent.name, ev.value),
            None => return,
        }
    }
}

/// The ADK-style functions, end to end: app ID, register with data and
/// priority, notify, unregister by callback and data.
pub fn adk_functions_round_trip(t: &Target) {
    let server = ServerProcess::start(t);
    let mut rx = Agent::start(t, &server, "rx");
    let mut tx = Agent::start(t, &server, "tx");
    assert_eq!(rx.call(json!({"op": "ipc_get_app_id"}))["id"], "");
    rx.ok(json!({"op": "ipc_set_app_id", "id": "adk-rx"}));
    assert_eq!(rx.call(json!({"op": "ipc_get_app_id"}))["id"], "adk-rx");
    rx.ok(json!({"op": "ipc_register", "notification": "n", "data": 11, "priority": 0, "to": ""}));
    rx.ok(json!({"op": "ipc_sync"}));
    tx.ok(json!({"op": "ipc_set_app_id", "id": "adk-tx"}));
    tx.ok(
        json!({"op": "ipc_notify", "to": "adk-rx", "notification": "n",
                 "parameter": {"a": [true]}, "flags": 4, "from": ""}),
    );
    let ev = rx.event_where(|v| !is_plumbing(v)).value;
    assert_delivery(
        &ev,
        "notify",
        "adk-tx",
        "adk-rx",
        "n",
        4,
        &json!({"a": [true]}),
    );
    assert_eq!(ev["label"], "adk:11");

    // Re-registering the same pair replaces (one callback, the new data).
    rx.ok(json!({"op": "ipc_register", "notification": "n", "data": 12, "priority": 0, "to": ""}));
    rx.ok(json!({"op": "ipc_sync"}));
    tx.ok(
        json!({"op": "ipc_notify", "to": "adk-rx", "notification": "n",
                 "parameter": 1, "flags": 0, "from": ""}),
    );
    assert_eq!(rx.event_where(|v| !is_plumbing(v)).value["label"], "adk:12");

    // Unregister with a data filter that does not match: still there.
    rx.ok(json!({"op": "ipc_unregister", "notification": "n", "data": 11, "to": ""}));
    rx.ok(json!({"op": "ipc_sync"}));
    tx.ok(
        json!({"op": "ipc_notify", "to": "adk-rx", "notification": "n",
                 "parameter": 2, "flags": 0, "from": ""}),
    );
    assert_eq!(rx.event_where(|v| !is_plumbing(v)).value["parameter"], 2);
    // Any data: gone; the sender's unicast-error callback gets it back.
    tx.ok(json!({"op": "ipc_register_unicast_error", "data": 5}));
    rx.ok(json!({"op": "ipc_unregister", "notification": "n", "to": ""}));
    rx.ok(json!({"op": "ipc_sync"}));
    tx.ok(
        json!({"op": "ipc_notify", "to": "adk-rx", "notification": "n",
                 "parameter": 3, "flags": 0, "from": ""}),
    );
    let ue = tx.event_where(|v| !is_plumbing(v)).value;
    assert_delivery(&ue, "unicast_error", "adk-tx", "adk-rx", "n", 0, &json!(3));
    assert_eq!(ue["label"], "adk:5");
    expect_only_plumbing(&rx);
}
