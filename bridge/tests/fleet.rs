//! Two terminals on one machine — two `notifysvc`, a bridge each, one
//! mosquitto — and what crosses between them (README, "Fleets").

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use nfy_linux::client::NotifyOptions;
use serde_json::json;

/// Terminal A and B, with these bridge configurations.
struct Fleet {
    _dir: tempfile::TempDir,
    broker: Mosquitto,
    a: Server,
    b: Server,
    bridge_a: Bridge,
    bridge_b: Bridge,
}

fn fleet(config_a: &str, config_b: &str) -> Fleet {
    fleet_with(config_a, config_b, &[])
}

/// [`fleet`] with extra options for B's server.
fn fleet_with(config_a: &str, config_b: &str, server_b: &[&str]) -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let a = Server::start(dir.path(), "srv-a");
    let b = Server::start_with(dir.path(), "srv-b", server_b);
    let url = broker.url();
    let bridge_a = Bridge::start(
        dir.path(),
        "A",
        &a,
        &url,
        config_a,
        &["--reply-timeout", "3000"],
    );
    let bridge_b = Bridge::start(
        dir.path(),
        "B",
        &b,
        &url,
        config_b,
        &["--reply-timeout", "3000"],
    );
    bridge_a.wait_connected(1);
    bridge_b.wait_connected(1);
    Fleet {
        _dir: dir,
        broker,
        a,
        b,
        bridge_a,
        bridge_b,
    }
}

const A_BASIC: &str = "out * *@B *\nin *@B * *\nexport payment shown\n";
const B_BASIC: &str = "out * *@A *\nin *@A * *\nexport ui show\n";

#[test]
fn an_app_on_a_sends_to_an_app_on_b_and_gets_the_answer() {
    if !have_mosquitto("an_app_on_a_sends_to_an_app_on_b_and_gets_the_answer") {
        return;
    }
    let f = fleet(A_BASIC, B_BASIC);
    let payment = f.a.client("payment");
    let ui = f.b.client("ui");
    // ui answers every "show" with "shown" to whoever sent it.
    let answerer = ui.clone();
    let _show = ui
        .register("show", 0, move |d| {
            answerer
                .notify_raw_with(
                    d.from,
                    "shown",
                    d.parameter,
                    NotifyOptions {
                        flags: d.flags,
                        from: None,
                    },
                )
                .unwrap();
        })
        .unwrap();
    let (_shown, shown) = listen(&payment, None, "shown", 0);
    let (_e, errs) = errors(&payment);
    // The bridges register each other's exports once they see presence.
    wait_registrations(&payment, 2);
    wait_registrations(&ui, 2);
    payment
        .notify_raw_with(
            "ui@B",
            "show",
            r#"{"text":"Insert card"}"#,
            NotifyOptions {
                flags: 7,
                from: None,
            },
        )
        .unwrap();
    let got = shown.recv_timeout(LONG).unwrap();
    assert_eq!(
        got,
        Got {
            from: "ui@B".into(),
            to: "payment".into(),
            notification: "shown".into(),
            flags: 7,
            parameter: json!({"text": "Insert card"}),
        }
    );
    quiet(&errs, 200);
    // `nfy status` of each server lists the bridge's connection with its
    // proxy registrations (the other terminal's exports, as app@T).
    assert_eq!(
        bridge_registrations(&f.a),
        [("show".to_owned(), "ui@B".to_owned(), i64::from(i32::MIN))]
    );
    assert_eq!(
        bridge_registrations(&f.b),
        [(
            "shown".to_owned(),
            "payment@A".to_owned(),
            i64::from(i32::MIN)
        )]
    );
    let status = f.a.nfy_status();
    assert!(
        status.contains("nfy-bridge") && status.contains("show for ui@B (priority -2147483648)"),
        "{status}"
    );
    let _ = (&f.broker, &f.bridge_b);
}

/// The registrations `nfy status` lists for the bridge's connection to
/// `server`: (notification, receiver, priority).
fn bridge_registrations(server: &Server) -> Vec<(String, String, i64)> {
    let status = server.nfy_status_json();
    let bridge: Vec<_> = status["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["app_id"] == "nfy-bridge")
        .collect();
    assert_eq!(bridge.len(), 1, "{status:#}");
    bridge[0]["registered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["notification"].as_str().unwrap().to_owned(),
                r["to"].as_str().unwrap().to_owned(),
                r["priority"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn one_and_priorities_are_applied_on_the_receiving_terminal() {
    if !have_mosquitto("one_and_priorities_are_applied_on_the_receiving_terminal") {
        return;
    }
    let f = fleet("out * *@B *\nout * 1 *\n", "in *@A * *\nexport ui show\n");
    let payment = f.a.client("payment");
    // Two processes on B register as ui (priority 1 and 10), and a third
    // app receives "show" with priority 5.
    let ui_low = f.b.client("ui");
    let ui_high = f.b.client("ui-high-process");
    let printer = f.b.client("printer");
    let (_l, low) = listen(&ui_low, None, "show", 1);
    let (_h, high) = listen(&ui_high, Some("ui"), "show", 10);
    let (_p, print) = listen(&printer, None, "show", 5);
    f.bridge_a.wait_log("registered ui@B for show", 1);
    // To the app: the best of B's registrations for "ui".
    payment.notify("ui@B", "show", &json!({"n": 1})).unwrap();
    let got = high.recv_timeout(LONG).unwrap();
    assert_eq!((got.from.as_str(), got.to.as_str()), ("payment@A", "ui"));
    // "1" from A (no receiver on A but the bridge's proxy): B's best
    // registration for "show" whatever its app, here ui-high (10).
    payment.notify("1", "show", &json!({"n": 2})).unwrap();
    let got = high.recv_timeout(LONG).unwrap();
    assert_eq!(
        (got.to.as_str(), got.parameter["n"].as_i64()),
        ("1", Some(2))
    );
    drop(_h);
    ui_high.sync().unwrap();
    // Without it, "1" goes to the printer (5), the app to ui (1).
    payment.notify("1", "show", &json!({"n": 3})).unwrap();
    assert_eq!(print.recv_timeout(LONG).unwrap().parameter["n"], 3);
    payment.notify("ui@B", "show", &json!({"n": 4})).unwrap();
    assert_eq!(low.recv_timeout(LONG).unwrap().parameter["n"], 4);
    quiet(&print, 100);
    quiet(&low, 100);
}

#[test]
fn a_unicast_nobody_receives_there_comes_back_as_a_unicast_error() {
    if !have_mosquitto("a_unicast_nobody_receives_there_comes_back_as_a_unicast_error") {
        return;
    }
    let f = fleet(A_BASIC, "in *@A * *\nexport ui show\nexport ui hide\n");
    let payment = f.a.client("payment");
    let (_e, errs) = errors(&payment);
    f.bridge_a.wait_log("registered ui@B for hide", 1);
    f.bridge_a.wait_log("registered ui@B for show", 1);
    // B has no receiver at all for ui.
    payment.notify("ui@B", "show", &json!({"n": 1})).unwrap();
    let e = errs.recv_timeout(LONG).unwrap();
    assert_eq!(
        (
            e.to.as_str(),
            e.notification.as_str(),
            e.parameter["n"].as_i64()
        ),
        ("ui@B", "show", Some(1))
    );
    // A receiver for another notification does not take it either; the
    // one for it does.
    let ui = f.b.client("ui");
    let (_h, hide) = listen(&ui, None, "hide", 0);
    payment.notify("ui@B", "show", &json!({"n": 2})).unwrap();
    assert_eq!(errs.recv_timeout(LONG).unwrap().parameter["n"], 2);
    payment.notify("ui@B", "hide", &json!({"n": 3})).unwrap();
    assert_eq!(hide.recv_timeout(LONG).unwrap().parameter["n"], 3);
    quiet(&errs, 200);
}

#[test]
fn a_unicast_too_large_for_the_receiving_server_comes_back_as_a_unicast_error() {
    if !have_mosquitto("a_unicast_too_large_for_the_receiving_server_comes_back_as_a_unicast_error")
    {
        return;
    }
    // B's server takes frames of 1 KiB at most; A's the default 64 KiB.
    let f = fleet_with(A_BASIC, B_BASIC, &["--max-frame", "1024"]);
    let payment = f.a.client("payment");
    let (_e, errs) = errors(&payment);
    let ui = f.b.client("ui");
    let (_s, shows) = listen(&ui, None, "show", 0);
    f.bridge_a.wait_log("registered ui@B for show", 1);
    let big = "x".repeat(2000);
    payment
        .notify("ui@B", "show", &json!({"n": 1, "pad": big}))
        .unwrap();
    let e = errs.recv_timeout(LONG).unwrap();
    assert_eq!(
        (e.to.as_str(), e.parameter["n"].as_i64()),
        ("ui@B", Some(1))
    );
    // What fits crosses.
    payment.notify("ui@B", "show", &json!({"n": 2})).unwrap();
    assert_eq!(shows.recv_timeout(LONG).unwrap().parameter["n"], 2);
    quiet(&shows, 100);
    quiet(&errs, 100);
    f.bridge_b.wait_log("not deliverable", 1);
}

#[test]
fn broadcasts_cross_when_a_rule_allows_and_not_otherwise() {
    if !have_mosquitto("broadcasts_cross_when_a_rule_allows_and_not_otherwise") {
        return;
    }
    let f = fleet(
        "out * * tick\nout * * tock\n",
        "in *@A * tick\nexport ui tick\nexport ui tock\n",
    );
    let clock = f.a.client("clock");
    let ui = f.b.client("ui");
    let (_t, ticks) = listen(&ui, None, "tick", 0);
    let (_o, tocks) = listen(&ui, None, "tock", 0);
    // Local receivers on A still get them, once.
    let local = f.a.client("local");
    let (_lt, local_ticks) = listen(&local, None, "tick", 0);
    wait_registrations(&clock, 3);
    // "tock" leaves A (an out rule allows it) but B has no in rule for it.
    clock.notify("*", "tock", &json!({"n": 1})).unwrap();
    clock.notify("*", "tick", &json!({"n": 2})).unwrap();
    let got = ticks.recv_timeout(LONG).unwrap();
    assert_eq!(
        (
            got.from.as_str(),
            got.to.as_str(),
            got.parameter["n"].as_i64()
        ),
        ("clock@A", "*", Some(2))
    );
    assert_eq!(local_ticks.recv_timeout(LONG).unwrap().parameter["n"], 2);
    quiet(&tocks, 300);
    quiet(&ticks, 100);
    quiet(&local_ticks, 100);
    f.bridge_b
        .wait_log("no in rule allows tock from clock@A to *", 1);
}

#[test]
fn in_and_out_rules_block_what_they_should() {
    if !have_mosquitto("in_and_out_rules_block_what_they_should") {
        return;
    }
    // A lets only "show" leave, and only from payment; B lets in only
    // what payment@A sends.
    let f = fleet(
        "out payment *@B show\nout other *@B *\n",
        "in payment@A ui *\nexport ui show\nexport ui hide\n",
    );
    let payment = f.a.client("payment");
    let other = f.a.client("other");
    let ui = f.b.client("ui");
    let (_s, shows) = listen(&ui, None, "show", 0);
    let (_h, hides) = listen(&ui, None, "hide", 0);
    let (_pe, payment_errs) = errors(&payment);
    let (_oe, other_errs) = errors(&other);
    wait_registrations(&payment, 2);
    // Out rule: payment may not send "hide": refused on A.
    payment.notify("ui@B", "hide", &json!({"n": 1})).unwrap();
    assert_eq!(payment_errs.recv_timeout(LONG).unwrap().parameter["n"], 1);
    // In rule: other may send (out) but B refuses it: an error too.
    other.notify("ui@B", "show", &json!({"n": 2})).unwrap();
    assert_eq!(other_errs.recv_timeout(LONG).unwrap().parameter["n"], 2);
    // What both allow crosses.
    payment.notify("ui@B", "show", &json!({"n": 3})).unwrap();
    assert_eq!(shows.recv_timeout(LONG).unwrap().parameter["n"], 3);
    quiet(&hides, 100);
    quiet(&shows, 100);
    f.bridge_a
        .wait_log("not forwarded (no out rule): hide from payment to ui@B", 1);
    f.bridge_b
        .wait_log("no in rule allows show from other@A to ui", 1);
}

#[test]
fn mosquitto_sub_sees_the_topics_and_mosquitto_pub_injects() {
    if !have_mosquitto("mosquitto_sub_sees_the_topics_and_mosquitto_pub_injects") {
        return;
    }
    let f = fleet(A_BASIC, "in *@A * *\nin office ui show\nexport ui show\n");
    let port = f.broker.port.to_string();
    let payment = f.a.client("payment");
    let ui = f.b.client("ui");
    let (_s, shows) = listen(&ui, None, "show", 0);
    f.bridge_a.wait_log("registered ui@B for show", 1);
    let sub = std::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port, "-v", "-C", "1", "-W", "20"])
        .args(["-t", "nfy/B/+/+"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // mosquitto_sub subscribes asynchronously: send until it has seen one.
    std::thread::sleep(Duration::from_millis(300));
    payment
        .notify_with(
            "ui@B",
            "show",
            &json!({"n": 1}),
            NotifyOptions {
                flags: 2,
                from: None,
            },
        )
        .unwrap();
    let out = sub.wait_with_output().unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    let (topic, payload) = line.trim_end().split_once(' ').unwrap();
    assert_eq!(topic, "nfy/B/ui/show");
    let p: serde_json::Value = serde_json::from_str(payload).unwrap();
    assert_eq!(p["terminal"], "A");
    assert_eq!(p["from"], "payment");
    assert_eq!(p["to"], "ui");
    assert_eq!(p["notification"], "show");
    assert_eq!(p["flags"], 2);
    assert_eq!(p["parameter"], json!({"n": 1}));
    assert!(p["id"].is_u64());
    assert_eq!(shows.recv_timeout(LONG).unwrap().parameter["n"], 1);

    let publish = |topic: &str, message: &str| {
        let st = std::process::Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-q",
                "1",
                "-t",
                topic,
                "-m",
                message,
            ])
            .status()
            .unwrap();
        assert!(st.success());
    };
    // A back office: "office" may send show to ui (an in rule allows it);
    // not hide, and not as someone else.
    publish("nfy/B/ui/show", r#"{"from":"office","parameter":{"n":2}}"#);
    let got = shows.recv_timeout(LONG).unwrap();
    assert_eq!((got.from.as_str(), got.to.as_str()), ("office", "ui"));
    assert_eq!(got.parameter["n"], 2);
    publish(
        "nfy/B/ui/show",
        r#"{"from":"intruder","parameter":{"n":3}}"#,
    );
    publish(
        "nfy/B/ui/show",
        r#"{"from":"office","to":"other","parameter":{"n":4}}"#,
    );
    publish("nfy/B/ui/show", "not json");
    publish("nfy/B/ui/show", r#"{"from":"office","parameter":{"n":5}}"#);
    assert_eq!(shows.recv_timeout(LONG).unwrap().parameter["n"], 5);
    quiet(&shows, 200);
    f.bridge_b.wait_log("refused from the broker", 3);
}
