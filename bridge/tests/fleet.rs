//! Two terminals on one machine — two `notifysvc`, a bridge each, one
//! mosquitto — and what crosses between them (README, "Fleets").

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

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
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let a = Server::start(dir.path(), "srv-a");
    let b = Server::start(dir.path(), "srv-b");
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
    // `nfy status` of each server lists the bridge with its registrations.
    let status = f.a.nfy_status();
    assert!(status.contains("nfy-bridge"), "{status}");
    f.bridge_a.wait_log("registered ui@B for show", 1);
    f.bridge_b.wait_log("registered payment@A for shown", 1);
    let _ = (&f.broker, &f.bridge_b);
}
