//! The ADK-style global functions, end to end. One test function: the
//! functions share one process-wide client, configured by `NFY_SOCKET`
//! before the first call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client_harness;

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use client_harness::{TestServer, LONG};
use nfy_core::NotifyResult;
use nfy_linux::client::adk::*;
use nfy_linux::client::Client;
use serde_json::json;

type Event = (
    usize,
    String,
    String,
    String,
    Option<serde_json::Value>,
    u32,
);

static EVENTS: OnceLock<Mutex<SyncSender<Event>>> = OnceLock::new();

fn record(e: Event) {
    let _ = EVENTS.get().unwrap().lock().unwrap().try_send(e);
}

fn cb(data: usize, from: &str, to: &str, id: &str, param: &serde_json::Value, flags: u32) {
    record((
        data,
        from.into(),
        to.into(),
        id.into(),
        Some(param.clone()),
        flags,
    ));
}

fn cb2(data: usize, from: &str, to: &str, id: &str, param: &serde_json::Value, flags: u32) {
    record((
        data + 1000,
        from.into(),
        to.into(),
        id.into(),
        Some(param.clone()),
        flags,
    ));
}

fn obs(data: usize, from: &str, to: &str, id: &str, flags: u32) {
    record((data, from.into(), to.into(), id.into(), None, flags));
}

/// Unregisters itself from inside the callback (must not deadlock).
fn self_remover(
    data: usize,
    from: &str,
    to: &str,
    id: &str,
    param: &serde_json::Value,
    flags: u32,
) {
    let r = ipc_unregister_notification_cb(id, Some(self_remover), None, to);
    assert_eq!(r, NotifyResult::Ok);
    record((
        data,
        from.into(),
        to.into(),
        id.into(),
        Some(param.clone()),
        flags,
    ));
}

fn next(rx: &Receiver<Event>) -> Event {
    rx.recv_timeout(LONG).unwrap()
}

fn quiet(rx: &Receiver<Event>) {
    if let Ok(e) = rx.recv_timeout(Duration::from_millis(100)) {
        panic!("unexpected {e:?}");
    }
}

#[test]
fn adk_functions_end_to_end() {
    let (tx, rx) = mpsc::sync_channel(1000);
    EVENTS.set(Mutex::new(tx)).unwrap();
    let mut server = TestServer::start("adk");
    std::env::set_var("NFY_SOCKET", &server.socket);
    std::env::set_var("NFY_PORT", client_harness::free_port().to_string());

    // No app ID yet.
    assert_eq!(ipc_get_app_id(), "");
    assert_eq!(
        ipc_notify("x", "n", &json!({}), 0, ""),
        NotifyResult::ErrAppId
    );
    assert_eq!(
        ipc_register_notification_cb("n", Some(cb), 1, 0, ""),
        NotifyResult::ErrAppId
    );
    assert_eq!(ipc_set_app_id("*"), NotifyResult::ErrAppId);
    assert_eq!(ipc_set_app_id("me"), NotifyResult::Ok);
    assert_eq!(ipc_get_app_id(), "me");

    // A second process-like client to sync with and send from.
    let other = Client::connect_to(server.addr()).unwrap();
    other.set_app_id("other").unwrap();

    assert_eq!(
        ipc_register_notification_cb("ev", Some(cb), 7, 0, ""),
        NotifyResult::Ok
    );
    assert_eq!(ipc_register_observer(Some(obs), 99), NotifyResult::Ok);
    assert_eq!(ipc_register_unicast_error(Some(cb), 55), NotifyResult::Ok);
    // Sync through our own unicast: the "ev" registration is in force when
    // the delivery comes back.
    assert_eq!(
        ipc_notify("me", "ev", &json!({"a": 1}), 3, ""),
        NotifyResult::Ok
    );
    let mut got = [next(&rx), next(&rx)];
    got.sort_by_key(|e| e.0);
    assert_eq!(
        got[0],
        (
            7,
            "me".into(),
            "me".into(),
            "ev".into(),
            Some(json!({"a": 1})),
            3
        )
    );
    assert_eq!(got[1], (99, "me".into(), "me".into(), "ev".into(), None, 3));

    // Unicast error with the sender's data word.
    assert_eq!(
        ipc_notify("nobody", "ev", &json!(1), 0, ""),
        NotifyResult::Ok
    );
    let mut got = [next(&rx), next(&rx)];
    got.sort_by_key(|e| e.0);
    assert_eq!(
        got[0],
        (
            55,
            "me".into(),
            "nobody".into(),
            "ev".into(),
            Some(json!(1)),
            0
        )
    );
    assert_eq!(
        got[1],
        (99, "me".into(), String::new(), "ev".into(), None, 0)
    );
    assert_eq!(
        ipc_unregister_observer(Some(obs), Some(98)),
        NotifyResult::Ok
    ); // no match
    assert_eq!(ipc_unregister_observer(Some(obs), None), NotifyResult::Ok);
    assert_eq!(
        ipc_unregister_unicast_error(None, Some(55)),
        NotifyResult::Ok
    );

    // Replacement: same (ev, me) with another callback and data.
    assert_eq!(
        ipc_register_notification_cb("ev", Some(cb2), 8, 0, ""),
        NotifyResult::Ok
    );
    other.notify("me", "ev", &0).unwrap();
    assert_eq!(next(&rx).0, 1008);
    quiet(&rx);
    // Unregister filters: wrong callback or data keeps it.
    assert_eq!(
        ipc_unregister_notification_cb("ev", Some(cb), None, ""),
        NotifyResult::Ok
    );
    assert_eq!(
        ipc_unregister_notification_cb("ev", Some(cb2), Some(1), ""),
        NotifyResult::Ok
    );
    other.notify("me", "ev", &0).unwrap();
    assert_eq!(next(&rx).0, 1008);
    // A null callback discards the registration.
    assert_eq!(
        ipc_register_notification_cb("ev", None, 0, 0, ""),
        NotifyResult::Ok
    );

    // Impersonation and self-removal from inside the callback.
    assert_eq!(
        ipc_register_notification_cb("once", Some(self_remover), 5, 0, "proxy"),
        NotifyResult::Ok
    );
    assert_eq!(
        ipc_notify("proxy", "once", &json!(null), 0, "ghost"),
        NotifyResult::Ok
    );
    assert_eq!(
        next(&rx),
        (
            5,
            "ghost".into(),
            "proxy".into(),
            "once".into(),
            Some(json!(null)),
            0
        )
    );
    other.sync().unwrap();

    // Foreign callbacks: an identity (address, data) and a closure.
    let id = CallbackId {
        callback: 0xF00D,
        data: 3,
    };
    let foreign: ForeignNotify = std::sync::Arc::new(|d| {
        let param = d.parameter_json();
        record((
            3,
            d.from.into(),
            d.to.into(),
            d.notification.into(),
            Some(param),
            d.flags,
        ));
    });
    assert_eq!(
        ipc_register_notification_foreign("fx", id, foreign, 0, ""),
        NotifyResult::Ok
    );
    assert_eq!(
        ipc_notify_json("me", "fx", r#"{"t":"\u00e9"}"#, 2, "other"),
        NotifyResult::Ok
    );
    let expected = (
        3,
        "other".into(),
        "me".into(),
        "fx".into(),
        Some(json!({"t": "é"})),
        2,
    );
    assert_eq!(next(&rx), expected);
    assert_eq!(
        ipc_notify_json("me", "fx", "{not json", 0, ""),
        NotifyResult::ErrServer
    );
    // Another address keeps it; the Rust filter on data alone removes it.
    let other_address = CallbackFilter {
        callback: Some(0xBEEF),
        data: None,
    };
    assert_eq!(
        ipc_unregister_notification_foreign("fx", other_address, ""),
        NotifyResult::Ok
    );
    assert_eq!(
        ipc_notify_json("me", "fx", r#"{"t":"é"}"#, 2, "other"),
        NotifyResult::Ok
    );
    assert_eq!(next(&rx), expected);
    assert_eq!(
        ipc_unregister_notification_cb("fx", None, Some(3), ""),
        NotifyResult::Ok
    );
    // The same observer identity registered twice runs once per delivery.
    let observer: ForeignObserver = std::sync::Arc::new(|o| {
        record((
            4,
            o.from.into(),
            o.to.into(),
            o.notification.into(),
            None,
            o.flags,
        ));
    });
    for _ in 0..2 {
        assert_eq!(
            ipc_register_observer_foreign(id, observer.clone()),
            NotifyResult::Ok
        );
    }
    assert_eq!(ipc_notify_json("me", "fx", "1", 0, ""), NotifyResult::Ok);
    assert_eq!(
        next(&rx),
        (4, "me".into(), String::new(), "fx".into(), None, 0)
    );
    quiet(&rx);
    assert_eq!(
        ipc_unregister_observer_foreign(CallbackFilter::exact(id)),
        NotifyResult::Ok
    );
    assert_eq!(ipc_notify_json("me", "fx", "1", 0, ""), NotifyResult::Ok);
    quiet(&rx);

    // The server goes away: calls fail fast; a registration made meanwhile
    // is kept and established when the server is back.
    server.stop();
    let t = std::time::Instant::now();
    while ipc_notify("me", "x", &json!(0), 0, "") == NotifyResult::Ok {
        assert!(t.elapsed() < LONG, "the client never noticed the stop");
    }
    let t = std::time::Instant::now();
    assert_eq!(
        ipc_notify("me", "x", &json!(0), 0, ""),
        NotifyResult::ErrServer
    );
    assert_eq!(
        ipc_register_notification_cb("late", Some(cb), 11, 0, ""),
        NotifyResult::ErrServer
    );
    assert!(t.elapsed() < Duration::from_secs(1));
    server.restart();
    let t = std::time::Instant::now();
    while ipc_notify("me", "late", &json!("back"), 0, "") != NotifyResult::Ok {
        assert!(t.elapsed() < LONG, "never reconnected");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        next(&rx),
        (
            11,
            "me".into(),
            "me".into(),
            "late".into(),
            Some(json!("back")),
            0
        )
    );
}
