//! Replacing the whitelist of a running broker (`Broker::set_whitelist`).

use super::*;

impl World {
    fn reload(&mut self, config: &str) -> WhitelistChange {
        let wl = Whitelist::parse(config.as_bytes()).unwrap();
        self.b.set_whitelist(wl, &mut self.out)
    }
}

/// What the old and the new configuration of these tests let through.
const OLD: &str = "in pos-* payment start\nout * pos-* receipt\n";
const NEW: &str = "in pos-* payment refund\nout * pos-* refund\ninterface eth0\n";

#[test]
fn new_out_rules_apply_to_existing_remote_registrations() {
    let mut w = world(OLD);
    let (r, s) = (w.remote(), w.local());
    w.register(r, "pos-1", "receipt", 0);
    w.register(r, "pos-1", "refund", 0);
    w.notify(s, "payment", "pos-1", "receipt");
    assert_eq!(w.receivers(), [r]);
    w.notify(s, "payment", "pos-1", "refund");
    assert!(matches!(&w.out.take()[..], [Sent::UnicastError { to_conn, .. }] if *to_conn == s));
    w.out.events.clear();

    let change = w.reload(NEW);
    assert_eq!(
        change,
        WhitelistChange {
            rules_added: 2,
            rules_removed: 2,
            interfaces_changed: true,
            remote_closed: 0,
        }
    );
    assert!(w.out.events.is_empty(), "{:?}", w.out.events);
    // The registration the new rules forbid stops receiving; the other
    // one, forbidden before, receives now.
    w.notify(s, "payment", "pos-1", "receipt");
    assert!(matches!(&w.out.take()[..], [Sent::UnicastError { to_conn, .. }] if *to_conn == s));
    w.notify(s, "payment", "pos-1", "refund");
    assert_eq!(w.receivers(), [r]);
    // Both registrations are kept, and still count against the cap.
    let status = w.b.status();
    assert_eq!((status.registrations, status.remote_registrations), (2, 2));
    assert_eq!(w.b.connection(r).unwrap().closing, None);
    // A later reload that allows it again makes it receive again.
    w.reload(OLD);
    w.notify(s, "payment", "pos-1", "receipt");
    assert_eq!(w.receivers(), [r]);
}

#[test]
fn new_in_rules_apply_to_connected_remote_peers_which_stay_connected() {
    let mut w = world(OLD);
    let (pay, r) = (w.local(), w.remote());
    w.register(pay, "payment", "start", 0);
    w.register(pay, "payment", "refund", 0);
    w.notify(r, "pos-7", "payment", "start");
    assert_eq!(w.receivers(), [pay]);

    w.reload(NEW);
    w.notify(r, "pos-7", "payment", "start");
    assert!(w.out.take().is_empty(), "dropped: nothing sent");
    assert_eq!(w.out.events, ["dropped: NotAllowedIn"]);
    assert_eq!(w.b.status().dropped, 1);
    w.notify(r, "pos-7", "payment", "refund");
    assert_eq!(w.receivers(), [pay]);
    // The peer is not disconnected, and new remote peers get the new
    // rules too.
    assert_eq!(w.b.connection(r).unwrap().closing, None);
    let r2 = w.remote();
    w.notify(r2, "pos-8", "payment", "refund");
    assert_eq!(w.receivers(), [pay]);
    w.notify(r2, "pos-8", "payment", "start");
    assert!(w.out.take().is_empty());
}

#[test]
fn local_connections_are_untouched() {
    let mut w = world(OLD);
    let obs = w.observer();
    let (a, s) = (w.local(), w.local());
    w.register(a, "ui", "show", 0);
    w.b.handle(s, Message::UnicastErrors(false), &mut w.out);
    for config in [NEW, ""] {
        w.reload(config);
        w.notify(s, "anyone", "ui", "show");
        let sent = w.out.take();
        assert!(
            sent.iter()
                .any(|m| matches!(m, Sent::Notify { to_conn, .. } if *to_conn == a)),
            "{sent:?}"
        );
        assert!(
            sent.iter()
                .any(|m| matches!(m, Sent::Observed { to_conn, .. } if *to_conn == obs)),
            "{sent:?}"
        );
        for c in [obs, a, s] {
            let info = w.b.connection(c).unwrap();
            assert_eq!(info.closing, None);
        }
        assert!(!w.b.connection(s).unwrap().unicast_errors, "settings kept");
    }
    assert_eq!(w.b.status().local_connections, 3);
}

#[test]
fn a_whitelist_without_rules_closes_remote_access() {
    let mut w = world(OLD);
    let (r1, r2, l, s) = (w.remote(), w.remote(), w.local(), w.local());
    w.register(r1, "pos-1", "receipt", 5);
    w.register(l, "printer", "receipt", 0);
    // Interface lines alone are no rules.
    let change = w.reload("# closed\ninterface eth0\n");
    assert_eq!(
        change,
        WhitelistChange {
            rules_added: 0,
            rules_removed: 2,
            interfaces_changed: true,
            remote_closed: 2,
        }
    );
    let revoked: StdVec<String> = [r1, r2]
        .iter()
        .map(|c| format!("{:?}", Event::Revoked { conn: *c }))
        .collect();
    assert_eq!(w.out.events, revoked);
    for r in [r1, r2] {
        assert_eq!(w.b.connection(r).unwrap().closing, Some(Closing::Revoked));
    }
    assert_eq!(w.b.connection(l).unwrap().closing, None);
    // Nothing is routed to a revoked connection: the local one gets it.
    w.notify(s, "payment", "1", "receipt");
    assert_eq!(w.receivers(), [l]);
    // New remote peers are refused and counted; local ones are not.
    assert_eq!(w.b.connect(PeerKind::Remote), Err(ConnectRefused::NoRules));
    assert_eq!(w.b.protection().remote_refused, 1);
    w.local();
    // The adapter closes them; their registrations go.
    for r in [r1, r2] {
        w.b.close(r);
        w.b.disconnect(r, &mut w.out);
    }
    let status = w.b.status();
    assert_eq!(
        (status.remote_connections, status.remote_registrations),
        (0, 0)
    );
    // Reported once: a second reload without rules finds nobody to close.
    w.out.events.clear();
    assert_eq!(w.reload("").remote_closed, 0);
    assert!(w.out.events.is_empty());
    // Rules again: remote peers are admitted again.
    w.reload(OLD);
    let r3 = w.remote();
    w.register(r3, "pos-3", "receipt", 0);
    w.notify(s, "payment", "pos-3", "receipt");
    assert_eq!(w.receivers(), [r3]);
}

#[test]
fn rule_counts_match_rules_one_to_one() {
    let mut w = world("in a b c\nin a b c\nout * * x\n");
    // The same rules in another order, comments and blank lines: no change.
    let same = w.reload("out * * x\n\n# comment\nin a b c\nin  a  b  c\n");
    assert!(same.is_empty(), "{same:?}");
    // A duplicate removed counts once; a direction change is a new rule.
    let change = w.reload("in a b c\nin * * x\n");
    assert_eq!((change.rules_added, change.rules_removed), (1, 2));
    assert!(!change.interfaces_changed);
}

#[test]
fn limits_do_not_change_and_remote_registrations_stay() {
    let mut w = World {
        b: new_broker(
            Whitelist::parse(OLD.as_bytes()).unwrap(),
            Limits {
                max_remote_registrations: 2,
                ..Limits::default()
            },
        ),
        out: Recorder::default(),
    };
    let r = w.remote();
    w.register(r, "pos-1", "a", 0);
    w.register(r, "pos-1", "b", 0);
    w.reload(NEW);
    assert_eq!(w.b.limits().max_remote_registrations, 2);
    assert_eq!(w.b.status().remote_registrations, 2);
    w.register(r, "pos-1", "c", 0);
    assert_eq!(w.out.events, ["refused: RemoteRegistrationLimit"]);
}

#[test]
fn unicasts_a_revoked_peer_did_not_acknowledge_go_to_another_receiver() {
    let mut w = world("out * 1 receipt\n");
    let (r, printer, s) = (w.remote(), w.local(), w.local());
    let hello = Hello {
        version: 1,
        app_id: None,
        acks: true,
    };
    w.b.handle(r, Message::Hello(hello), &mut w.out);
    w.register(r, "pos-1", "receipt", 5);
    w.register(printer, "printer", "receipt", 0);
    w.notify(s, "payment", "1", "receipt");
    assert_eq!(w.receivers(), [r]);
    assert_eq!(w.b.unacknowledged(r), 1);

    assert_eq!(w.reload("").remote_closed, 1);
    // The adapter closes it: what it never acknowledged goes to the next
    // receiver (here a local one, which no rule concerns).
    w.b.close(r);
    w.b.disconnect(r, &mut w.out);
    assert_eq!(w.receivers(), [printer]);
    assert_eq!(w.b.status().unicast_errors, 0);
}
