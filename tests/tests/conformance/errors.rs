//! Unicast errors, result codes and the unregister guarantees (spec
//! sections 2 and 3).

use nfy_tests::agent::Agent;
use nfy_tests::server::ServerProcess;
use nfy_tests::wire::JsonClient;
use nfy_tests::{Target, QUIET};
use serde_json::json;

use crate::support::{assert_delivery, assert_wire, is_plumbing};

/// `ERR_APP_ID` as a result code.
const ERR_APP_ID: i64 = -2;

/// An undeliverable unicast comes back unchanged to its sender: to the
/// idiomatic handler, to the ADK callback, and as a `unicast_error` frame
/// to a JSON client. A sender without a handler just gets nothing.
pub fn unicast_errors_return_the_original(t: &Target) {
    let server = ServerProcess::start(t);
    let mut s = Agent::start(t, &server, "s");
    s.app("s");
    s.ok(json!({"op": "on_unicast_error", "label": "ue"}));
    s.sync();
    let mut rx = Agent::start(t, &server, "rx");
    // Registered for another notification and another app: no match.
    rx.app("rx").register("other", "other", 0);

    assert_eq!(s.notify("ghost", "n", json!({"p": [1, 2]}), 5), 0);
    let ue = s.expect_event("unicast_error");
    assert_delivery(
        &ue,
        "unicast_error",
        "s",
        "ghost",
        "n",
        5,
        &json!({"p": [1, 2]}),
    );
    assert_eq!(ue["label"], "ue");
    assert_eq!(s.notify("rx", "n", json!(1), 0), 0);
    assert_eq!(s.expect_event("unicast_error")["to"], "rx");
    assert_eq!(s.notify("1", "n", json!(2), 6), 0);
    let ue = s.expect_event("unicast_error");
    assert_delivery(&ue, "unicast_error", "s", "1", "n", 6, &json!(2));
    // Impersonated senders get their errors too (the connection does).
    assert_eq!(s.notify_from("else", "ghost", "n", json!(3)), 0);
    assert_eq!(s.expect_event("unicast_error")["from"], "else");

    // ADK.
    let mut adk = Agent::start(t, &server, "adk");
    adk.ok(json!({"op": "ipc_set_app_id", "id": "adk"}));
    adk.ok(json!({"op": "ipc_register_unicast_error", "data": 4}));
    adk.ok(
        json!({"op": "ipc_notify", "to": "ghost", "notification": "n",
                  "parameter": {"q": "r"}, "flags": 2, "from": ""}),
    );
    let ue = adk.event_where(|v| !is_plumbing(v)).value;
    assert_delivery(
        &ue,
        "unicast_error",
        "adk",
        "ghost",
        "n",
        2,
        &json!({"q": "r"}),
    );
    assert_eq!(ue["label"], "adk:4");

    // JSON wire.
    let mut j = JsonClient::unix(server.socket()).unwrap();
    j.notify("j", "ghost", "n", 6, json!({"z": 0})).unwrap();
    let m = j.expect_message();
    assert_wire(&m, "unicast_error", "j", "ghost", "n", 6, &json!({"z": 0}));

    // No handler: nothing arrives, nothing breaks.
    let mut quiet = Agent::start(t, &server, "quiet");
    quiet.app("quiet");
    assert_eq!(quiet.notify("ghost", "n", json!(0), 0), 0);
    quiet.sync();
    quiet.expect_no_event(QUIET);
    // Broadcasts never produce one.
    assert_eq!(s.notify("*", "n", json!(0), 0), 0);
    s.sync();
    s.expect_no_event(QUIET);
    rx.expect_no_event(QUIET);
}

/// No app ID and no `from`: `ERR_APP_ID`, nothing sent; an explicit
/// `from` needs no app ID; reserved IDs are refused.
pub fn app_id_errors(t: &Target) {
    let server = ServerProcess::start(t);
    let mut rx = Agent::start(t, &server, "rx");
    rx.app("rx").register("n", "n", 0);
    let mut a = Agent::start(t, &server, "a");
    assert_eq!(a.notify("rx", "n", json!(1), 0), ERR_APP_ID);
    let r = a.call(json!({"op": "register", "label": "x", "notification": "n", "priority": 0}));
    assert_eq!(r["code"], ERR_APP_ID);
    assert_eq!(a.notify_from("explicit", "rx", "n", json!(2)), 0);
    let ev = rx.expect_event("notify");
    assert_eq!(
        (ev["from"].as_str(), &ev["parameter"]),
        (Some("explicit"), &json!(2))
    );
    for reserved in ["*", "1", ""] {
        let r = a.call(json!({"op": "app", "id": reserved}));
        assert_eq!(r["code"], ERR_APP_ID, "{reserved:?}");
    }
    // ADK.
    let r = a.call(json!({"op": "ipc_notify", "to": "rx", "notification": "n",
                          "parameter": 3, "flags": 0, "from": ""}));
    assert_eq!(r["code"], ERR_APP_ID);
    let r = a.call(json!({"op": "ipc_set_app_id", "id": "*"}));
    assert_eq!(r["code"], ERR_APP_ID);
    a.ok(json!({"op": "ipc_notify", "to": "rx", "notification": "n",
                "parameter": 4, "flags": 0, "from": "adk-explicit"}));
    assert_eq!(rx.expect_event("notify")["parameter"], 4);
    a.sync();
    rx.expect_no_event(QUIET);
}

/// When unregistering returns, the callback has finished and never runs
/// again; a callback may unregister itself without deadlocking; a removed
/// registration is no longer a receiver.
pub fn unregister_guarantees(t: &Target) {
    let server = ServerProcess::start(t);
    let mut rx = Agent::start(t, &server, "rx");
    let mut s = Agent::start(t, &server, "s");
    s.app("s");
    s.ok(json!({"op": "on_unicast_error", "label": "ue"}));
    s.sync();
    rx.app("rx");
    rx.ok(
        json!({"op": "register", "label": "g", "notification": "slow",
                 "priority": 0, "gate": true}),
    );
    rx.sync();
    rx.ok(json!({"op": "close_gate"}));

    // The callback starts and blocks on the gate.
    assert_eq!(s.notify("rx", "slow", json!(1), 0), 0);
    rx.expect_event("notify");
    // Unregistering waits for it...
    let id = rx.send(json!({"op": "unregister", "label": "g", "background": true}));
    assert!(
        rx.reply_within(id, QUIET).is_none(),
        "unregister returned while the callback was still running"
    );
    // ...and returns once it finished.
    rx.ok(json!({"op": "open_gate"}));
    let finished = rx.event();
    assert_eq!(finished.value["event"], "finished", "{}", finished.value);
    let reply = rx.reply(id);
    assert!(
        finished.seq < reply.seq,
        "callback finished after unregister returned"
    );
    assert_eq!(reply.value["found"], true);
    rx.sync();

    // Gone at the server: the sender gets its notification back.
    assert_eq!(s.notify("rx", "slow", json!(2), 0), 0);
    let ue = s.expect_event("unicast_error");
    assert_eq!(ue["parameter"], 2);
    rx.expect_no_event(QUIET);

    // A callback that unregisters itself returns (no deadlock) and never
    // runs again.
    rx.ok(
        json!({"op": "register", "label": "me", "notification": "once",
                 "priority": 0, "self_unregister": true}),
    );
    rx.sync();
    assert_eq!(s.notify("rx", "once", json!(3), 0), 0);
    rx.expect_event("notify");
    let ev = rx.expect_event("self_unregistered");
    assert_eq!(ev["label"], "me");
    rx.sync();
    assert_eq!(s.notify("rx", "once", json!(4), 0), 0);
    assert_eq!(s.expect_event("unicast_error")["parameter"], 4);

    // Registering again works.
    rx.register("again", "slow", 0);
    assert_eq!(s.notify("rx", "slow", json!(5), 0), 0);
    let ev = rx.expect_event("notify");
    assert_eq!(
        (ev["label"].as_str(), &ev["parameter"]),
        (Some("again"), &json!(5))
    );
    rx.expect_no_event(QUIET);
    s.expect_no_event(QUIET);
}
