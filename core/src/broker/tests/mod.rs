//! Broker tests: several connections driven in memory, deterministically.

use std::format;
use std::string::{String, ToString};
use std::vec::Vec as StdVec;

use super::*;
use crate::ids::{Destination, NotificationId};
use crate::msg::{Hello, RawJson};

mod flow;
mod pair;
mod reload;

/// Ledgers with room for frames, so acknowledgements are honoured.
type TestLedger = InlineLedger<{ 16 * 1024 }, 256>;
type TestBroker = Broker<8, 512, 16, 4, InlineStorage<512>, InlineConns<8, TestLedger>>;

fn new_broker(wl: Whitelist<16, 4>, limits: Limits) -> std::boxed::Box<TestBroker> {
    std::boxed::Box::new(Broker::with_storage(wl, limits, InlineStorage::new()))
}

/// What the broker sent, in an owned, comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    Notify {
        to_conn: ConnId,
        from: String,
        to: String,
        id: String,
        param: String,
        reference: Option<u64>,
    },
    UnicastError {
        to_conn: ConnId,
        from: String,
        to: String,
        id: String,
        param: String,
    },
    Observed {
        to_conn: ConnId,
        from: String,
        to: Option<String>,
        id: String,
    },
    Status {
        to_conn: ConnId,
        status: Status,
    },
    Other {
        to_conn: ConnId,
        kind: &'static str,
    },
}

#[derive(Default)]
struct Recorder {
    sent: StdVec<Sent>,
    events: StdVec<String>,
    /// `Event::Hello`s, kept apart from `events`: (connection, acks).
    hellos: StdVec<(ConnId, bool)>,
    full: StdVec<ConnId>,
    /// Backlogs to report ([`Outbox::backlog`]).
    backlog: StdVec<(ConnId, usize)>,
}

impl Outbox for Recorder {
    fn backlog(&self, conn: ConnId) -> usize {
        self.backlog
            .iter()
            .find(|(c, _)| *c == conn)
            .map_or(0, |(_, b)| *b)
    }

    fn send(
        &mut self,
        conn: ConnId,
        _encoding: Encoding,
        msg: &Message<'_>,
    ) -> Result<(), QueueFull> {
        if self.full.contains(&conn) {
            return Err(QueueFull);
        }
        self.sent.push(match msg {
            Message::Notify(n) => Sent::Notify {
                to_conn: conn,
                from: n.from.to_string(),
                to: n.to.to_string(),
                id: n.notification.to_string(),
                param: n.parameter.as_str().to_string(),
                reference: n.reference,
            },
            Message::UnicastError(n) => Sent::UnicastError {
                to_conn: conn,
                from: n.from.to_string(),
                to: n.to.to_string(),
                id: n.notification.to_string(),
                param: n.parameter.as_str().to_string(),
            },
            Message::Observed(o) => Sent::Observed {
                to_conn: conn,
                from: o.from.to_string(),
                to: o.to.as_ref().map(|t| t.to_string()),
                id: o.notification.to_string(),
            },
            Message::Status(s) => Sent::Status {
                to_conn: conn,
                status: *s,
            },
            m => Sent::Other {
                to_conn: conn,
                kind: m.kind(),
            },
        });
        Ok(())
    }

    fn event(&mut self, event: Event<'_>) {
        if let Event::Hello { conn, acks, .. } = event {
            self.hellos.push((conn, acks));
            return;
        }
        self.events.push(match event {
            Event::Refused { refusal, .. } => format!("refused: {refusal:?}"),
            Event::Dropped { reason, .. } => format!("dropped: {reason:?}"),
            Event::Overflow { conn } => format!("overflow: {conn}"),
            Event::UnicastError { sender, .. } => format!("unicast error to {sender}"),
            e => format!("{e:?}"),
        });
    }
}

impl Recorder {
    fn take(&mut self) -> StdVec<Sent> {
        core::mem::take(&mut self.sent)
    }
}

struct World {
    b: std::boxed::Box<TestBroker>,
    out: Recorder,
}

fn world(config: &str) -> World {
    let wl = Whitelist::parse(config.as_bytes()).unwrap();
    World {
        b: new_broker(wl, Limits::default()),
        out: Recorder::default(),
    }
}

impl World {
    fn local(&mut self) -> ConnId {
        self.b.connect(PeerKind::Local).unwrap()
    }

    fn remote(&mut self) -> ConnId {
        self.b.connect(PeerKind::Remote).unwrap()
    }

    fn hello(&mut self, c: ConnId) {
        let h = Hello {
            version: 1,
            app_id: None,
            acks: false,
        };
        self.b.handle(c, Message::Hello(h), &mut self.out);
    }

    fn observer(&mut self) -> ConnId {
        let c = self.local();
        self.hello(c);
        self.b.handle(c, Message::Observe(true), &mut self.out);
        c
    }

    fn register(&mut self, c: ConnId, to: &str, id: &str, priority: i32) {
        let r = Register {
            to: AppId::new(to).unwrap(),
            notification: NotificationId::new(id).unwrap(),
            priority,
        };
        self.b.handle(c, Message::Register(r), &mut self.out);
    }

    fn unregister(&mut self, c: ConnId, to: &str, id: &str) {
        let u = Unregister {
            to: AppId::new(to).unwrap(),
            notification: NotificationId::new(id).unwrap(),
        };
        self.b.handle(c, Message::Unregister(u), &mut self.out);
    }

    fn notify_ref(&mut self, c: ConnId, from: &str, to: &str, id: &str, reference: Option<u64>) {
        let n = Notify {
            from: AppId::new(from).unwrap(),
            to: Destination::parse(to).unwrap(),
            notification: NotificationId::new(id).unwrap(),
            flags: 7,
            reference,
            parameter: RawJson::new("{\"k\":1}").unwrap(),
        };
        self.b.handle(c, Message::Notify(n), &mut self.out);
    }

    fn notify(&mut self, c: ConnId, from: &str, to: &str, id: &str) {
        self.notify_ref(c, from, to, id, None);
    }

    /// Connections that received a notify in the last batch.
    fn receivers(&mut self) -> StdVec<ConnId> {
        self.out
            .take()
            .into_iter()
            .filter_map(|s| match s {
                Sent::Notify { to_conn, .. } => Some(to_conn),
                _ => None,
            })
            .collect()
    }
}

const RULES: &str =
    "in pos-* payment start\nin pos-* 1 status\nout * pos-* *\nout payment 1 receipt\n";

#[test]
fn unicast_to_app_reaches_only_that_app_with_destination_as_sent() {
    let mut w = world("");
    let (a, b, s) = (w.local(), w.local(), w.local());
    w.register(a, "ui", "show", 0);
    w.register(b, "printer", "show", 10);
    w.notify(s, "payment", "ui", "show");
    let sent = w.out.take();
    assert_eq!(sent.len(), 1);
    let Sent::Notify {
        to_conn,
        from,
        to,
        id,
        param,
        reference,
    } = &sent[0]
    else {
        panic!("{sent:?}")
    };
    assert_eq!(
        (*to_conn, from.as_str(), to.as_str(), id.as_str()),
        (a, "payment", "ui", "show")
    );
    assert_eq!(param, "{\"k\":1}");
    assert_eq!(
        reference.map(|r| (r >> 32) as u32),
        Some(s.raw()),
        "reference names the sender"
    );
    assert_eq!(w.b.status().delivered, 1);
}

#[test]
fn one_goes_to_the_best_priority_and_ties_to_the_most_recent() {
    let mut w = world("");
    let (a, b, c, s) = (w.local(), w.local(), w.local(), w.local());
    w.register(a, "a", "n", 1);
    w.register(b, "b", "n", 5);
    w.register(c, "c", "n", 5);
    w.notify(s, "x", "1", "n");
    assert_eq!(w.receivers(), [c]);
    w.register(b, "b", "n", 5); // re-registering makes b the most recent
    w.notify(s, "x", "1", "n");
    assert_eq!(w.receivers(), [b]);
    w.unregister(b, "b", "n");
    w.unregister(c, "c", "n");
    w.notify(s, "x", "1", "n");
    assert_eq!(w.receivers(), [a]);
}

#[test]
fn broadcast_reaches_everyone_once_per_connection() {
    let mut w = world("");
    let obs = w.observer();
    let (a, b, s) = (w.local(), w.local(), w.local());
    w.register(a, "a1", "n", 0);
    w.register(a, "a2", "n", 0); // same connection, second receiver app
    w.register(b, "b", "n", -5);
    w.notify(s, "x", "*", "n");
    let sent = w.out.take();
    let notified: StdVec<ConnId> = sent
        .iter()
        .filter_map(|s| match s {
            Sent::Notify {
                to_conn,
                reference,
                to,
                ..
            } => {
                assert_eq!(*reference, None, "broadcasts carry no reference");
                assert_eq!(to, "*");
                Some(*to_conn)
            }
            _ => None,
        })
        .collect();
    assert_eq!(notified, [a, b]);
    let observed: StdVec<Option<String>> = sent
        .iter()
        .filter_map(|s| match s {
            Sent::Observed { to_conn, to, .. } if *to_conn == obs => Some(to.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        observed,
        // Best first: a1 and a2 tie at 0 (a2 is more recent), b has -5.
        [Some("a2".into()), Some("a1".into()), Some("b".into())]
    );
    assert_eq!(w.b.status().delivered, 3);
    assert_eq!(w.b.status().unicast_errors, 0);
}

#[test]
fn broadcast_to_nobody_tells_observers_once_and_owes_no_error() {
    let mut w = world("");
    let obs = w.observer();
    let s = w.local();
    w.notify(s, "x", "*", "nobody");
    assert_eq!(
        w.out.take(),
        [Sent::Observed {
            to_conn: obs,
            from: "x".into(),
            to: None,
            id: "nobody".into()
        }]
    );
}

#[test]
fn undeliverable_unicast_comes_back_unchanged_and_observers_see_empty_receiver() {
    let mut w = world("");
    let obs = w.observer();
    let s = w.local();
    w.notify(s, "me", "nobody", "n");
    let sent = w.out.take();
    assert_eq!(
        sent,
        [
            Sent::Observed {
                to_conn: obs,
                from: "me".into(),
                to: None,
                id: "n".into()
            },
            Sent::UnicastError {
                to_conn: s,
                from: "me".into(),
                to: "nobody".into(),
                id: "n".into(),
                param: "{\"k\":1}".into()
            },
        ]
    );
    w.notify(s, "me", "1", "n");
    assert!(matches!(w.out.take().last(), Some(Sent::UnicastError { to, .. }) if to == "1"));
    assert_eq!(w.b.status().unicast_errors, 2);
}

#[test]
fn unicast_errors_can_be_turned_off_per_connection() {
    let mut w = world("");
    let s = w.local();
    w.hello(s);
    w.b.handle(s, Message::UnicastErrors(false), &mut w.out);
    w.notify(s, "me", "nobody", "n");
    assert!(w.out.take().is_empty());
    assert_eq!(w.b.status().unicast_errors, 1, "still counted");
}

#[test]
fn impersonation_registers_and_sends_for_other_apps() {
    let mut w = world("");
    let (mac, s) = (w.local(), w.local());
    w.register(mac, "cp-app-1", "n", 0);
    w.register(mac, "cp-app-2", "n", 0);
    w.notify(s, "cp-app-3", "cp-app-2", "n");
    let sent = w.out.take();
    assert!(
        matches!(&sent[..], [Sent::Notify { to_conn, from, to, .. }] if *to_conn == mac && from == "cp-app-3" && to == "cp-app-2")
    );
}

#[test]
fn returned_unicast_goes_to_the_next_receiver_or_back_to_the_sender() {
    let mut w = world("");
    let (a, b, s) = (w.local(), w.local(), w.local());
    w.register(a, "a", "n", 9);
    w.register(b, "b", "n", 1);
    w.notify(s, "me", "1", "n");
    let sent = w.out.take();
    let Some(Sent::Notify {
        to_conn, reference, ..
    }) = sent.first()
    else {
        panic!()
    };
    assert_eq!(*to_conn, a);
    // a unregisters and returns what it got, reference included.
    w.unregister(a, "a", "n");
    w.notify_ref(a, "me", "1", "n", *reference);
    let sent = w.out.take();
    assert!(
        matches!(&sent[..], [Sent::Notify { to_conn, reference: r, .. }] if *to_conn == b && r == reference)
    );
    // b returns it too (still registered: it must not get it again): the
    // error goes to the original sender, not to b.
    w.notify_ref(b, "me", "1", "n", *reference);
    let sent = w.out.take();
    assert!(
        matches!(&sent[..], [Sent::UnicastError { to_conn, .. }] if *to_conn == s),
        "{sent:?}"
    );
}

#[test]
fn a_forged_reference_is_an_ordinary_notify_and_harms_no_one() {
    let mut w = world("");
    let (victim, a, forger) = (w.local(), w.local(), w.local());
    w.register(a, "a", "n", 0);
    // The victim sends a unicast: it goes to a with a reference naming the
    // victim.
    w.notify(victim, "v", "a", "n");
    let sent = w.out.take();
    let [Sent::Notify {
        reference: Some(real),
        ..
    }] = &sent[..]
    else {
        panic!("{sent:?}")
    };
    // The forger, which never received it, replays the reference (or any
    // value naming the victim) for a notification nobody takes: no unicast
    // error may reach the victim; the forger's own error goes to the forger.
    for forged in [*real, (u64::from(victim.raw()) << 32) | 7] {
        w.notify_ref(forger, "f", "nobody", "x", Some(forged));
        let sent = w.out.take();
        assert!(
            matches!(&sent[..], [Sent::UnicastError { to_conn, .. }] if *to_conn == forger),
            "{sent:?}"
        );
    }
    // Forged for a registered receiver: an ordinary notify to it, with a
    // reference of the forger's own.
    w.notify_ref(forger, "f", "a", "n", Some(*real));
    let sent = w.out.take();
    let [Sent::Notify {
        to_conn, reference, ..
    }] = &sent[..]
    else {
        panic!("{sent:?}")
    };
    assert_eq!(*to_conn, a);
    assert_eq!(reference.map(|r| (r >> 32) as u32), Some(forger.raw()));
}

#[test]
fn a_reference_naming_no_live_connection_is_an_ordinary_notify() {
    let mut w = world("");
    let (a, s) = (w.local(), w.local());
    w.register(a, "a", "n", 0);
    let stale = (u64::from(ConnId::new(7, 3).raw()) << 32) | 5;
    w.notify_ref(s, "me", "a", "n", Some(stale));
    let sent = w.out.take();
    let [Sent::Notify {
        to_conn, reference, ..
    }] = &sent[..]
    else {
        panic!("{sent:?}")
    };
    assert_eq!(*to_conn, a);
    assert_eq!(reference.map(|r| (r >> 32) as u32), Some(s.raw()));
}

#[test]
fn full_receiver_is_skipped_reported_and_its_queue_returned() {
    let mut w = world("");
    let (a, b, s) = (w.local(), w.local(), w.local());
    w.register(a, "a", "n", 9);
    w.register(b, "b", "n", 1);
    w.out.full.push(a);
    w.notify(s, "me", "1", "n");
    assert_eq!(w.receivers(), [b]);
    assert_eq!(w.out.events, [format!("overflow: {a}")]);
    assert_eq!(w.b.connection(a).unwrap().closing, Some(Closing::Overflow));
    // From now on a is skipped without trying.
    w.out.full.clear();
    w.notify(s, "me", "1", "n");
    assert_eq!(w.receivers(), [b]);
    assert_eq!(w.out.events.len(), 1, "overflow reported once");
}

#[test]
fn disconnect_removes_registrations_and_retires_the_id() {
    let mut w = world("");
    let (a, s) = (w.local(), w.local());
    w.register(a, "a", "n", 0);
    w.b.disconnect(a, &mut w.out);
    assert_eq!(w.b.status().registrations, 0);
    assert_eq!(w.b.status().local_connections, 1);
    let a2 = w.local();
    assert_eq!(a2.index(), a.index(), "slot reused");
    assert_ne!(a2, a, "but not the id");
    w.register(a, "a", "n", 0); // the old id is dead: ignored
    assert_eq!(w.b.status().registrations, 0);
    w.notify(s, "me", "a", "n");
    assert!(matches!(&w.out.take()[..], [Sent::UnicastError { .. }]));
}

#[test]
fn connection_capacity_is_a_typed_error() {
    let mut w = world("");
    for _ in 0..8 {
        w.local();
    }
    assert_eq!(
        w.b.connect(PeerKind::Local),
        Err(ConnectRefused::ConnectionLimit)
    );
}

#[test]
fn registration_limits() {
    let mut w = world("");
    w.b = new_broker(
        Whitelist::new(),
        Limits {
            max_registrations_per_connection: 2,
            max_remote_registrations: 256,
            ..Limits::default()
        },
    );
    let a = w.local();
    w.register(a, "a", "1", 0);
    w.register(a, "a", "2", 0);
    w.register(a, "a", "2", 5); // replacing does not count
    w.register(a, "a", "3", 0);
    assert_eq!(w.out.events, ["refused: ConnectionRegistrationLimit"]);
    assert_eq!(w.b.status().registrations, 2);
    w.unregister(a, "a", "1");
    w.register(a, "a", "3", 0);
    assert_eq!(w.b.status().registrations, 2);
    assert_eq!(w.out.events.len(), 1);
}

#[test]
fn runtime_connection_limit_below_the_capacity() {
    let mut w = world("");
    // Rules: remote peers are admitted only where some could pass.
    w.b = new_broker(
        Whitelist::parse(RULES.as_bytes()).unwrap(),
        Limits {
            max_connections: 3,
            ..Limits::default()
        },
    );
    let a = w.local();
    let _b = w.remote();
    let _c = w.local();
    assert_eq!(
        w.b.connect(PeerKind::Local),
        Err(ConnectRefused::ConnectionLimit)
    );
    assert_eq!(
        w.b.connect(PeerKind::Remote),
        Err(ConnectRefused::ConnectionLimit)
    );
    // A slot freed by a disconnect can be taken again, once.
    w.b.disconnect(a, &mut w.out);
    let d = w.local();
    assert_ne!(d, a, "a new connection gets a new id");
    assert_eq!(
        w.b.connect(PeerKind::Local),
        Err(ConnectRefused::ConnectionLimit)
    );
    let s = w.b.status();
    assert_eq!((s.local_connections, s.remote_connections), (2, 1));
}

#[test]
fn runtime_registration_limit_below_the_capacity_is_table_full() {
    let mut w = world("");
    w.b = new_broker(
        Whitelist::new(),
        Limits {
            max_registrations: 3,
            ..Limits::default()
        },
    );
    let (a, b) = (w.local(), w.local());
    w.register(a, "a", "1", 0);
    w.register(a, "a", "2", 0);
    w.register(b, "b", "1", 0);
    w.register(b, "b", "1", 7); // replacing a registration is not a new one
    assert!(w.out.events.is_empty(), "{:?}", w.out.events);
    w.register(b, "b", "2", 0);
    assert_eq!(w.out.events, ["refused: TableFull"]);
    assert_eq!(w.b.status().registrations, 3);
    // The refused registration does not route; the others do.
    w.notify(a, "a", "b", "1");
    assert_eq!(w.receivers(), [b]);
    w.notify(a, "a", "b", "2");
    assert_eq!(
        w.out.events.last().map(String::as_str),
        Some("unicast error to #0.0")
    );
    w.unregister(a, "a", "1");
    w.register(b, "b", "2", 0);
    assert_eq!(w.b.status().registrations, 3);
    assert_eq!(w.out.events.len(), 2);
}

#[test]
fn local_only_messages_need_hello_and_a_local_peer() {
    let mut w = world(RULES);
    let (l, r) = (w.local(), w.remote());
    w.b.handle(l, Message::Observe(true), &mut w.out);
    w.b.handle(l, Message::StatusRequest, &mut w.out);
    w.hello(r);
    w.b.handle(r, Message::Observe(true), &mut w.out);
    w.b.handle(r, Message::StatusRequest, &mut w.out);
    assert_eq!(
        w.out.events,
        [
            "refused: NeedsHello",
            "refused: NeedsHello",
            "refused: RemoteObserver",
            "refused: RemoteStatus"
        ]
    );
    assert_eq!(w.b.status().observers, 0);
    w.hello(l);
    w.b.handle(l, Message::StatusRequest, &mut w.out);
    let sent = w.out.take();
    let [Sent::Status { to_conn, status }] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(*to_conn, l);
    assert_eq!(
        (status.local_connections, status.remote_connections),
        (1, 1)
    );
    assert_eq!(w.b.encoding(l), Encoding::Compact);
    let fresh = w.local();
    assert_eq!(w.b.encoding(fresh), Encoding::Json);
}

#[test]
fn remote_notify_needs_an_in_rule() {
    let mut w = world(RULES);
    let obs = w.observer();
    let (pay, r) = (w.local(), w.remote());
    w.register(pay, "payment", "start", 0);
    w.notify(r, "pos-7", "payment", "start");
    assert_eq!(w.receivers(), [pay]);
    w.notify(r, "ecr-7", "payment", "start");
    assert!(
        w.out.take().is_empty(),
        "dropped: no delivery, no observer call, no unicast error"
    );
    assert_eq!(w.out.events, ["dropped: NotAllowedIn"]);
    assert_eq!(w.b.status().dropped, 1);
    // Local senders are not filtered.
    w.notify(pay, "ecr-7", "payment", "start");
    assert_eq!(w.receivers(), [pay]);
    let _ = obs;
}

#[test]
fn remote_registration_needs_an_out_rule_else_next_candidate() {
    let mut w = world(RULES);
    let (local, r, s) = (w.local(), w.remote(), w.local());
    w.register(r, "pos-1", "receipt", 9);
    w.register(local, "printer", "receipt", 1);
    // "out payment 1 receipt": from payment, to "1" may go out.
    w.notify(s, "payment", "1", "receipt");
    assert_eq!(w.receivers(), [r]);
    // From someone else: the remote registration is skipped.
    w.notify(s, "other", "1", "receipt");
    assert_eq!(w.receivers(), [local]);
    // "out * pos-* *": anything addressed to pos-* may go out.
    w.notify(s, "other", "pos-1", "receipt");
    assert_eq!(w.receivers(), [r]);
    // Broadcast: only the local one unless a rule matches "*".
    w.notify(s, "other", "*", "receipt");
    assert_eq!(w.receivers(), [local]);
    // Nothing allowed and nothing local: unicast error.
    w.unregister(local, "printer", "receipt");
    w.notify(s, "other", "1", "receipt");
    assert!(matches!(&w.out.take()[..], [Sent::UnicastError { to_conn, .. }] if *to_conn == s));
}

#[test]
fn at_most_256_remote_registrations() {
    let mut w = World {
        b: new_broker(
            Whitelist::parse(RULES.as_bytes()).unwrap(),
            Limits::default(),
        ),
        out: Recorder::default(),
    };
    let (r1, r2) = (
        w.b.connect(PeerKind::Remote).unwrap(),
        w.b.connect(PeerKind::Remote).unwrap(),
    );
    let reg = |w: &mut World, c, id: &str| {
        let r = Register {
            to: AppId::new("pos").unwrap(),
            notification: NotificationId::new(id).unwrap(),
            priority: 0,
        };
        w.b.handle(c, Message::Register(r), &mut w.out);
    };
    for i in 0..200 {
        reg(&mut w, r1, &format!("n{i}"));
    }
    for i in 0..56 {
        reg(&mut w, r2, &format!("n{i}"));
    }
    assert_eq!(w.b.status().remote_registrations, 256);
    reg(&mut w, r1, "n0"); // replacement: fine
    assert!(w.out.events.is_empty());
    reg(&mut w, r2, "extra");
    assert_eq!(w.out.events, ["refused: RemoteRegistrationLimit"]);
    // Local registrations are not limited by it.
    let l = w.b.connect(PeerKind::Local).unwrap();
    reg(&mut w, l, "extra");
    assert_eq!(w.b.status().registrations, 257);
    // A remote disconnect frees its share.
    w.b.disconnect(r2, &mut w.out);
    assert_eq!(w.b.status().remote_registrations, 200);
    reg(&mut w, r1, "extra");
    assert_eq!(w.b.status().remote_registrations, 201);
}

#[test]
fn unknown_and_server_only_messages_are_ignored() {
    let mut w = world("");
    let c = w.local();
    w.b.handle(c, Message::Unknown("subscribe"), &mut w.out);
    w.b.handle(c, Message::Status(Status::default()), &mut w.out);
    assert_eq!(w.out.events.len(), 2);
    assert!(w.out.events[0].contains("subscribe"));
    assert!(w.out.take().is_empty());
}

#[test]
fn order_is_kept_per_sender_and_registration() {
    let mut w = world("");
    let (a, s) = (w.local(), w.local());
    w.register(a, "a", "n", 0);
    for i in 0..5 {
        let n = Notify {
            from: AppId::new("me").unwrap(),
            to: Destination::parse("a").unwrap(),
            notification: NotificationId::new("n").unwrap(),
            flags: i,
            reference: None,
            parameter: RawJson::NULL,
        };
        w.b.handle(s, Message::Notify(n), &mut w.out);
    }
    let refs: StdVec<u64> = w
        .out
        .take()
        .into_iter()
        .filter_map(|s| match s {
            Sent::Notify { reference, .. } => reference,
            _ => None,
        })
        .collect();
    assert_eq!(refs.len(), 5);
    assert!(refs.windows(2).all(|p| p[0] < p[1]));
}

/// An outbox that knows peers (as an adapter does) and keeps the
/// connection reports it is sent.
#[derive(Default)]
struct PeerBook {
    reports: StdVec<(ConnId, crate::msg::ConnectionReport)>,
    registrations: StdVec<(ConnId, crate::msg::RegistrationReport)>,
    welcomes: StdVec<(ConnId, u32)>,
    end: Option<(ConnId, crate::msg::ProtectionCounters)>,
    events: StdVec<String>,
}

impl Outbox for PeerBook {
    fn send(
        &mut self,
        conn: ConnId,
        encoding: Encoding,
        msg: &Message<'_>,
    ) -> Result<(), QueueFull> {
        assert_eq!(encoding, Encoding::Compact);
        match msg {
            Message::Connection(r) => self.reports.push((conn, r.clone())),
            Message::ConnectionsEnd(g) => {
                assert!(self.end.is_none(), "the list ends once");
                self.end = Some((conn, *g))
            }
            Message::Registration(r) => {
                assert!(self.end.is_none(), "registrations come before the end");
                self.registrations.push((conn, r.clone()))
            }
            Message::Welcome(w) => self.welcomes.push((conn, w.max_frame)),
            _ => {}
        }
        Ok(())
    }

    fn event(&mut self, event: Event<'_>) {
        self.events.push(format!("{event:?}"));
    }

    fn peer(&self, conn: ConnId) -> crate::msg::PeerAddr {
        crate::msg::PeerAddr::Unix(crate::msg::Credentials {
            pid: conn.index() as u32 + 100,
            uid: 7,
            gid: 8,
        })
    }

    fn frame_limit(&self, conn: ConnId) -> Option<usize> {
        // Remote connections of this adapter have no welcome to get.
        (conn.index() % 2 == 0).then_some(1000 + conn.index())
    }
}

#[test]
fn connections_request_lists_every_connection_with_its_peer_then_the_counters() {
    let wl = Whitelist::parse(RULES.as_bytes()).unwrap();
    let mut b = new_broker(
        wl,
        Limits {
            remote: RemoteLimits {
                max_connections: 1,
                ..RemoteLimits::DEFAULT
            },
            ..Limits::default()
        },
    );
    let mut out = PeerBook::default();
    let asker = b.connect(PeerKind::Local).unwrap();
    let remote = b.connect(PeerKind::Remote).unwrap();
    assert_eq!(
        b.connect(PeerKind::Remote),
        Err(ConnectRefused::RemoteLimit)
    );
    let gone = b.connect(PeerKind::Local).unwrap();
    b.disconnect(gone, &mut out);
    // Before hello, and from a remote peer: refused, nothing sent.
    b.handle(asker, Message::ConnectionsRequest, &mut out);
    b.handle(
        remote,
        Message::Hello(Hello {
            version: 1,
            app_id: None,
            acks: false,
        }),
        &mut out,
    );
    b.handle(remote, Message::ConnectionsRequest, &mut out);
    assert!(out.reports.is_empty() && out.end.is_none());
    let refusals = out
        .events
        .iter()
        .filter(|e| e.starts_with("Refused"))
        .count();
    assert_eq!(refusals, 2, "{:?}", out.events);
    let hello = Hello {
        version: 1,
        app_id: Some(AppId::new("ui").unwrap()),
        acks: false,
    };
    b.handle(asker, Message::Hello(hello), &mut out);
    let r = Register {
        to: AppId::new("ui").unwrap(),
        notification: NotificationId::new("n").unwrap(),
        priority: 0,
    };
    b.handle(asker, Message::Register(r), &mut out);
    b.handle(asker, Message::ConnectionsRequest, &mut out);
    let ids: StdVec<u32> = out.reports.iter().map(|(_, r)| r.id).collect();
    assert_eq!(ids, [asker.0, remote.0], "the closed one is not listed");
    assert!(out.reports.iter().all(|(to, _)| *to == asker));
    let (_, mine) = &out.reports[0];
    assert!(!mine.remote);
    assert_eq!(mine.app_id.as_ref().map(AppId::as_str), Some("ui"));
    assert_eq!(mine.registrations, 1);
    assert_eq!(
        mine.peer,
        crate::msg::PeerAddr::Unix(crate::msg::Credentials {
            pid: asker.index() as u32 + 100,
            uid: 7,
            gid: 8
        })
    );
    assert!(out.reports[1].1.remote);
    assert_eq!(
        out.end.map(|(to, g)| (to, g.refused, g.remote_refused)),
        Some((asker, 1, 1))
    );
    assert_eq!(out.end.map(|(_, g)| g), Some(b.protection()));
    // The one registration, with its holder.
    assert_eq!(out.registrations.len(), 1);
    let (to, reg) = &out.registrations[0];
    assert_eq!(*to, asker);
    assert_eq!(
        (
            reg.conn,
            reg.to.as_str(),
            reg.notification.as_str(),
            reg.priority
        ),
        (asker.0, "ui", "n", 0)
    );
}

#[test]
fn hello_is_answered_with_the_adapters_frame_limit() {
    let wl = Whitelist::parse(RULES.as_bytes()).unwrap();
    let mut b = new_broker(wl, Limits::default());
    let mut out = PeerBook::default();
    let even = b.connect(PeerKind::Local).unwrap();
    let odd = b.connect(PeerKind::Local).unwrap();
    let remote = b.connect(PeerKind::Remote).unwrap();
    assert_eq!(
        remote.index() % 2,
        0,
        "a connection the adapter has a limit for"
    );
    let hello = || {
        Message::Hello(Hello {
            version: 1,
            app_id: None,
            acks: true,
        })
    };
    b.handle(even, hello(), &mut out);
    b.handle(odd, hello(), &mut out);
    // A remote peer is answered too, with its own limit (our library over
    // TLS from another host ends its handshake there).
    b.handle(remote, hello(), &mut out);
    // Every hello is answered (a client says hello again when its app ID
    // changes); an adapter without a limit for the connection sends none.
    b.handle(even, hello(), &mut out);
    let limit = 1000 + even.index() as u32;
    let remote_limit = 1000 + remote.index() as u32;
    assert_eq!(
        out.welcomes,
        [(even, limit), (remote, remote_limit), (even, limit)]
    );
    // A welcome from a client is ignored.
    b.handle(
        even,
        Message::Welcome(crate::msg::Welcome { max_frame: 1 }),
        &mut out,
    );
    assert_eq!(out.welcomes.len(), 3);
    assert!(
        out.events.last().unwrap().contains("welcome"),
        "{:?}",
        out.events
    );
}

#[test]
fn hello_and_acks_are_reported_to_the_adapter() {
    let mut w = world("");
    let (r, s) = (w.local(), w.local());
    let h = Hello {
        version: 1,
        app_id: None,
        acks: true,
    };
    w.b.handle(r, Message::Hello(h), &mut w.out);
    assert!(w.b.connection(r).unwrap().acks);
    assert_eq!(w.out.hellos, [(r, true)]);
    w.register(r, "r", "n", 0);
    w.notify(s, "me", "r", "n");
    let sent = w.out.take();
    let [Sent::Notify {
        reference: Some(reference),
        ..
    }] = &sent[..]
    else {
        panic!("{sent:?}")
    };
    w.b.handle(r, Message::Ack(*reference), &mut w.out);
    assert_eq!(
        w.out.events.last(),
        Some(&format!(
            "{:?}",
            Event::Acked {
                conn: r,
                reference: *reference,
                kept: true
            }
        ))
    );
    // A later hello without acks turns them off, and says so.
    w.hello(r);
    assert!(!w.b.connection(r).unwrap().acks);
    assert_eq!(w.out.hellos, [(r, true), (r, false)]);
}

#[test]
fn admission_refuses_remote_peers_under_a_local_only_profile_and_counts_refusals() {
    let mut w = world("");
    w.b = new_broker(
        Whitelist::new(),
        Limits {
            local_only: true,
            max_connections: 2,
            ..Limits::default()
        },
    );
    assert_eq!(
        w.b.connect(PeerKind::Remote),
        Err(ConnectRefused::LocalOnly)
    );
    let _a = w.local();
    let _b = w.local();
    assert_eq!(
        w.b.connect(PeerKind::Local),
        Err(ConnectRefused::ConnectionLimit)
    );
    // Refused by the adapter (no descriptor left): counted the same way.
    w.b.refused(PeerKind::Remote);
    let p = w.b.protection();
    assert_eq!((p.refused, p.remote_refused), (3, 2));
    let s = w.b.status();
    assert_eq!((s.local_connections, s.remote_connections), (2, 0));
    // The frame limits a decoder is sized for.
    let l = Limits::default();
    assert_eq!(l.frame_limit(PeerKind::Local), 64 * 1024);
    assert_eq!(l.frame_limit(PeerKind::Remote), 16 * 1024);
    assert_eq!(
        l.decoder_len(PeerKind::Remote),
        16 * 1024 + RETURN_SLACK + crate::wire::HEADER_LEN
    );
}
