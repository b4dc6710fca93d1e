//! Bad input (spec section 6): a clear log line, the server stays up, the
//! offending connection goes on where it can, others are unaffected.

use nfy_tests::agent::Agent;
use nfy_tests::server::ServerProcess;
use nfy_tests::wire::{self, frame, frame_with_id, JsonClient, PREFIX};
use nfy_tests::{Target, QUIET};
use serde_json::json;

/// Garbage, broken frames and broken bodies are reported and skipped; the
/// same connection then still works, and so does everyone else.
pub fn bad_input_leaves_the_server_and_others_unaffected(t: &Target) {
    let server = ServerProcess::start(t);
    let log = &server.log;
    let mut a = Agent::start(t, &server, "a");
    let mut s = Agent::start(t, &server, "s");
    a.app("a").register("ping", "ping", 0);
    s.app("s");
    let mut bad = JsonClient::unix(server.socket()).unwrap();

    let mut step = 0;
    // Each bad input is logged; the same connection still round-trips
    // (which also tells garbage where it ends) and the agents still talk.
    let mut check = |bad: &mut JsonClient, bytes: &[u8], needles: &[&str], s: &mut Agent| {
        let mark = log.len();
        bad.send_raw(bytes).unwrap();
        assert!(bad.sync("bad").is_empty());
        log.expect_after(mark, needles);
        step += 1;
        assert_eq!(s.notify("a", "ping", json!(step), 0), 0);
        assert_eq!(a.expect_event("notify")["parameter"], step);
    };

    check(
        &mut bad,
        b"hello, world",
        &["discarded 12 bytes before a frame prefix"],
        &mut s,
    );
    check(
        &mut bad,
        &frame(b"\xff\xfe{}"),
        &["bad message ignored"],
        &mut s,
    );
    check(
        &mut bad,
        &frame(b"{\"type\":\"notify\","),
        &["bad message ignored"],
        &mut s,
    );
    check(
        &mut bad,
        &frame(b"[1,2,3]"),
        &["bad message ignored"],
        &mut s,
    );
    let missing = json!({"type": "notify", "from": "x", "notification": "ping", "parameter": 1});
    check(
        &mut bad,
        &frame(missing.to_string().as_bytes()),
        &["bad message ignored"],
        &mut s,
    );
    let wrong = json!({"type": "register", "to": "x", "notification": "n", "priority": "high"});
    check(
        &mut bad,
        &frame(wrong.to_string().as_bytes()),
        &["bad message ignored"],
        &mut s,
    );
    let reserved = wire::register_msg("*", "n", 0);
    check(
        &mut bad,
        &frame(reserved.to_string().as_bytes()),
        &["bad message ignored"],
        &mut s,
    );
    let long = wire::register_msg(&"x".repeat(65), "n", 0);
    check(
        &mut bad,
        &frame(long.to_string().as_bytes()),
        &["bad message ignored"],
        &mut s,
    );
    // A size field below the 4 bytes of the message id.
    let mut short = PREFIX.to_vec();
    short.extend_from_slice(&2u32.to_be_bytes());
    check(
        &mut bad,
        &short,
        &["discarded a frame header with size field 2"],
        &mut s,
    );
    // Too large for the profile: skipped whole, the connection goes on.
    let over = t.max_frame() + 1;
    let big = frame(&vec![b' '; over]);
    let needle = format!("skipped a frame with a {over}-byte body (over the limit)");
    check(&mut bad, &big, &[&needle], &mut s);

    // Unknown types and unknown message ids close nothing.
    let unknown = json!({"type": "frobnicate", "x": 1});
    bad.send_raw(&frame(unknown.to_string().as_bytes()))
        .unwrap();
    bad.send_raw(&frame_with_id(7, b"{}")).unwrap();
    assert!(bad.sync("bad").is_empty());

    // A frame cut short by the close is reported; the server stays up.
    let mut cut = JsonClient::unix(server.socket()).unwrap();
    let whole = frame(wire::register_msg("c", "n", 0).to_string().as_bytes());
    let mark = log.len();
    cut.send_raw(&whole[..whole.len() / 2]).unwrap();
    cut.shutdown_write().unwrap();
    log.expect_after(mark, &["truncated frame"]);
    assert_eq!(s.notify("a", "ping", json!("after"), 0), 0);
    assert_eq!(a.expect_event("notify")["parameter"], "after");

    // A client that disappears mid-conversation harms nobody.
    let mut gone = JsonClient::tcp(server.tcp_v4()).unwrap();
    gone.register("gone", "ping", 0).unwrap();
    gone.sync("gone");
    drop(gone);
    s.sync();
    a.sync();
    assert_eq!(s.notify("*", "ping", json!("bye"), 0), 0);
    assert_eq!(a.expect_event("notify")["parameter"], "bye");
    a.expect_no_event(QUIET);
    assert!(server.log.count("panicked") == 0, "{}", server.log.text());
}

/// A body of exactly the profile's frame limit is accepted and forwarded;
/// one byte more is skipped whole and logged, and the connection goes on.
pub fn frame_size_limit(t: &Target) {
    let server = ServerProcess::start(t);
    let max = t.max_frame();
    let mut j = JsonClient::unix(server.socket()).unwrap();
    j.register("j", "big", 0).unwrap();
    j.sync("j");

    let body = wire::notify_of_body_len("j", "j", "big", max);
    j.send_raw(&frame(&body)).unwrap();
    let m = j.expect_message();
    assert_eq!(m["notification"], "big");
    let pad = m["parameter"].as_str().unwrap().len();
    assert!(pad > max - 200, "{pad}");

    let mark = server.log.len();
    let body = wire::notify_of_body_len("j", "j", "big", max + 1);
    j.send_raw(&frame(&body)).unwrap();
    let needle = format!(
        "skipped a frame with a {}-byte body (over the limit)",
        max + 1
    );
    server.log.expect_after(mark, &[&needle]);
    // Nothing of it arrives; the connection is fine.
    assert!(j.sync("j").is_empty());
    j.notify("j", "j", "big", 0, json!("small")).unwrap();
    assert_eq!(j.expect_message()["parameter"], "small");
}
