//! Flow control against a recorded outbox whose backlogs the test sets:
//! the timing of stall judgements, and the pause/resume contract.

use core::time::Duration;

use super::*;
use crate::wire::{Decoded, Frame};

/// A notify frame body from `from` to `to`.
fn notify_body(from: &str, to: &str) -> String {
    format!(r#"{{"type":"notify","from":"{from}","to":"{to}","notification":"n"}}"#)
}

fn input(body: &str) -> Decoded<'_> {
    Decoded::Frame(Frame {
        msg_id: 0,
        body: body.as_bytes(),
    })
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_micros(ms * 1000)
}

/// A world whose receiver `r` has a backlog over the high-water mark and
/// whose sender `s` was paused by it at time 0.
fn paused() -> (World, ConnId, ConnId) {
    let mut w = world("");
    let (r, s) = (w.local(), w.local());
    w.register(r, "r", "n", 0);
    let high = Limits::default().flow.high_water;
    w.out.backlog.push((r, high + 1));
    let body = notify_body("s", "r");
    assert_eq!(
        w.b.handle_input(s, input(&body), at(0), &mut w.out),
        Handled::Paused
    );
    assert!(w.b.is_paused(s));
    assert!(w.out.take().is_empty(), "nothing routed");
    assert_eq!(
        w.out.events.last().map(String::as_str),
        Some(format!("Paused {{ conn: {s:?}, waiting_for: {r:?} }}").as_str())
    );
    (w, r, s)
}

#[test]
fn no_timer_while_nobody_waits() {
    let mut w = world("");
    let (r, s) = (w.local(), w.local());
    w.register(r, "r", "n", 0);
    assert_eq!(w.b.poll_timeout(), None);
    let body = notify_body("s", "r");
    assert_eq!(
        w.b.handle_input(s, input(&body), at(0), &mut w.out),
        Handled::Done
    );
    assert_eq!(w.b.poll_timeout(), None);
}

#[test]
fn a_stall_is_judged_after_the_timeout_never_before() {
    let (mut w, r, s) = paused();
    let stall = Limits::default().flow.stall_timeout;
    let interval = stall / 10;
    // The first check starts the clock.
    assert_eq!(w.b.poll_timeout(), Some(Timestamp::ZERO));
    w.b.handle_timeout(at(0), &mut w.out);
    assert_eq!(w.b.poll_timeout(), Some(at(0).saturating_add(interval)));
    let just_before = at(0).saturating_add(stall - Duration::from_millis(1));
    w.b.handle_timeout(just_before, &mut w.out);
    assert!(!w.out.events.iter().any(|e| e.starts_with("Stalled")));
    let after = at(0).saturating_add(stall);
    w.b.handle_timeout(after, &mut w.out);
    let stalled: StdVec<&String> = w
        .out
        .events
        .iter()
        .filter(|e| e.starts_with("Stalled"))
        .collect();
    assert_eq!(stalled.len(), 1, "{:?}", w.out.events);
    assert!(stalled[0].contains(&format!("conn: {r:?}")));
    assert!(stalled[0].contains("waiters: 1"), "{}", stalled[0]);
    assert_eq!(w.b.connection(r).unwrap().closing, Some(Closing::Stalled));
    // Reported once; its waiter goes on once it is gone.
    w.b.handle_timeout(after.saturating_add(stall), &mut w.out);
    assert_eq!(
        w.out
            .events
            .iter()
            .filter(|e| e.starts_with("Stalled"))
            .count(),
        1
    );
    w.b.disconnect(r, &mut w.out);
    assert!(!w.b.is_paused(s));
    assert_eq!(
        w.out.events.last().map(String::as_str),
        Some(format!("Resumed {{ conn: {s:?} }}").as_str())
    );
    // Its input, given again, is routed: the receiver is gone, so a
    // unicast error.
    let body = notify_body("s", "r");
    assert_eq!(
        w.b.handle_input(s, input(&body), after, &mut w.out),
        Handled::Done
    );
    assert!(matches!(&w.out.take()[..], [Sent::UnicastError { to_conn, .. }] if *to_conn == s));
}

#[test]
fn progress_restarts_the_stall_clock_and_draining_resumes() {
    let (mut w, r, s) = paused();
    let stall = Limits::default().flow.stall_timeout;
    w.b.handle_timeout(at(0), &mut w.out);
    // It takes a few bytes now and then, too slowly to drain.
    let mut t = at(0);
    for _ in 0..5 {
        t = t.saturating_add(stall - Duration::from_millis(100));
        w.b.sent(r, 10, &mut w.out);
        w.b.handle_timeout(t, &mut w.out);
    }
    assert!(!w.out.events.iter().any(|e| e.starts_with("Stalled")));
    assert!(w.b.is_paused(s), "still over the low-water mark");
    // Below the high-water mark but over the low one: still waiting.
    let flow = Limits::default().flow;
    w.out.backlog = [(r, flow.low_water + 1)].into();
    w.b.sent(r, 10, &mut w.out);
    assert!(w.b.is_paused(s));
    w.out.backlog = [(r, flow.low_water)].into();
    w.b.sent(r, 10, &mut w.out);
    assert!(!w.b.is_paused(s));
    assert_eq!(w.b.flow_stats().pauses, 1);
    // Nobody waits and nothing is over the mark: the timer goes after
    // one more check.
    w.b.handle_timeout(t, &mut w.out);
    assert_eq!(w.b.poll_timeout(), None);
}

#[test]
fn the_default_ledger_declines_acknowledgements() {
    let mut b: Broker<4, 16, 4, 2> = Broker::new(Whitelist::new(), Limits::default());
    let mut out = Recorder::default();
    let c = b.connect(PeerKind::Local).unwrap();
    let h = Hello {
        version: 1,
        app_id: None,
        acks: true,
    };
    b.handle(c, Message::Hello(h), &mut out);
    assert_eq!(out.hellos, [(c, false)]);
    assert!(!b.connection(c).unwrap().acks);
}

#[test]
fn a_sender_waits_for_the_connection_its_unicast_error_goes_to() {
    let mut w = world("");
    let s = w.local();
    let high = Limits::default().flow.high_water;
    w.out.backlog.push((s, high + 1));
    let body = notify_body("s", "nobody");
    assert_eq!(
        w.b.handle_input(s, input(&body), at(0), &mut w.out),
        Handled::Paused
    );
    // With unicast errors turned off, nothing is owed: no wait.
    w.b.disconnect(s, &mut w.out);
    let s = w.local();
    w.hello(s);
    w.b.handle(s, Message::UnicastErrors(false), &mut w.out);
    w.out.backlog = [(s, high + 1)].into();
    assert_eq!(
        w.b.handle_input(s, input(&body), at(0), &mut w.out),
        Handled::Done
    );
}
