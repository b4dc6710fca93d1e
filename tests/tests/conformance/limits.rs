//! The profile's own limits (spec section 6): reached, refused with the
//! same log lines on every profile, and freed again; one server per
//! system (spec section 1).

use nfy_tests::agent::Agent;
use nfy_tests::server::ServerProcess;
use nfy_tests::wire::{self, JsonClient};
use nfy_tests::{Target, DEADLINE};
use serde_json::json;

/// Raises this process's open-file limit (inherited by the servers it
/// starts) to at least `need`; false when the hard limit does not allow it.
fn raise_fd_limit(need: u64) -> bool {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    // rlim_t is 32 bits on 32-bit ARM.
    let need = nix::libc::rlim_t::try_from(need).unwrap_or(nix::libc::rlim_t::MAX);
    if soft >= need {
        return true;
    }
    if hard < need {
        return false;
    }
    setrlimit(Resource::RLIMIT_NOFILE, need, hard).is_ok()
}

/// True when the server admitted `c`: a notify to nobody comes back as a
/// unicast error; a refused connection is closed instead.
fn admitted(c: &mut JsonClient) -> bool {
    let probe = wire::notify_msg("probe", "nobody", "probe", 0, json!(0));
    if c.send(&probe).is_err() {
        return false;
    }
    match c.recv_frame(DEADLINE) {
        Ok(Some(_)) => true,
        Err(e) if wire::is_closed(&e) => false,
        Ok(None) => panic!("no answer to a probe in time"),
        Err(e) => panic!("read failed: {e}"),
    }
}

/// Lines after `mark` containing `needle`.
fn count_after(server: &ServerProcess, mark: usize, needle: &str) -> usize {
    server
        .log
        .lines()
        .iter()
        .skip(mark)
        .filter(|l| l.contains(needle))
        .count()
}

/// The profile's connection limit: that many connections are served, the
/// next one is closed with `connection limit reached`, and a freed slot
/// serves again.
pub fn connection_limit_is_reached_and_reported(t: &Target) {
    let max = t.profile.limits.max_connections;
    let need = u64::try_from(2 * max + 256).unwrap();
    if !raise_fd_limit(need) {
        nfy_tests::skip(
            &format!("{}::connection_limit_is_reached_and_reported", t.name),
            &format!("the open-file limit is below {need}"),
        );
        return;
    }
    let server = ServerProcess::start(t);
    let mut conns: Vec<JsonClient> = (0..max)
        .map(|_| JsonClient::unix(server.socket()).unwrap())
        .collect();
    // Connections are accepted in order: the last one being served means
    // all are.
    assert!(admitted(conns.last_mut().unwrap()));

    let mark = server.log.len();
    let mut extra = JsonClient::unix(server.socket()).unwrap();
    assert!(!admitted(&mut extra), "connection {} was served", max + 1);
    server.log.expect_after(
        mark,
        &["connection limit reached: closing the new connection from unix socket"],
    );
    // Over TCP alike.
    let mut tcp = JsonClient::tcp(server.tcp_v4()).unwrap();
    assert!(!admitted(&mut tcp));
    // The ones admitted still work.
    assert!(admitted(&mut conns[0]));

    // Closing one frees its slot (once the server noticed the close).
    drop(conns.pop());
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut again = loop {
        let mut c = JsonClient::unix(server.socket()).unwrap();
        if admitted(&mut c) {
            break c;
        }
        assert!(std::time::Instant::now() < deadline, "no slot freed");
    };
    let mut over = JsonClient::unix(server.socket()).unwrap();
    assert!(!admitted(&mut over), "the freed slot was given twice");
    assert!(admitted(&mut again));
}

/// The per-connection and the total registration limits of the profile:
/// refused with the broker's log lines, the refused registration does not
/// route, replacing does not count, and room made by an unregister is
/// usable again.
pub fn registration_limits_are_reached_and_reported(t: &Target) {
    let limits = t.profile.limits;
    let per = limits.max_registrations_per_connection;
    let total = limits.max_registrations;
    let server = ServerProcess::start(t);
    const PER_CONN: &str = "registration refused: per-connection registration limit reached";
    const FULL: &str = "registration refused: routing table full";

    // Per connection: the round-trip registration plus per - 1 others.
    let mut j = JsonClient::unix(server.socket()).unwrap();
    j.sync("c0");
    for i in 1..per {
        j.register("c0", &format!("r{i}"), 0).unwrap();
    }
    let mark = server.log.len();
    j.register("c0", "over", 0).unwrap();
    j.register("c0", "r1", 5).unwrap(); // replaces: not a new registration
    j.sync("c0");
    server.log.expect_after(mark, &[PER_CONN]);
    assert_eq!(count_after(&server, mark, PER_CONN), 1);

    let mut s = JsonClient::unix(server.socket()).unwrap();
    let last = format!("r{}", per - 1);
    s.notify("s", "c0", &last, 0, json!(1)).unwrap();
    let m = j.expect_message();
    assert_eq!(
        (m["type"].as_str(), m["notification"].as_str()),
        (Some("notify"), Some(&*last))
    );
    s.notify("s", "c0", "over", 0, json!(2)).unwrap();
    assert_eq!(s.expect_message()["type"], "unicast_error");

    // The total: fill the table with more connections.
    let mut conns = vec![j];
    let mut held = per;
    while held < total {
        let k = conns.len();
        let app = format!("c{k}");
        let take = per.min(total - held);
        let mut c = JsonClient::unix(server.socket()).unwrap();
        c.sync(&app);
        for i in 1..take {
            c.register(&app, &format!("r{i}"), 0).unwrap();
        }
        c.sync(&app);
        held += take;
        conns.push(c);
    }
    let mut status = Agent::start(t, &server, "status");
    let st = status.call(json!({"op": "status"}));
    assert_eq!(st["registrations"], total, "{st}");

    // One more, from a connection with room: the table is full.
    let mark = server.log.len();
    s.register("s", "one-too-many", 0).unwrap();
    s.notify("s", "nobody", "x", 0, json!(0)).unwrap();
    assert_eq!(s.expect_message()["type"], "unicast_error");
    server.log.expect_after(mark, &[FULL]);
    conns[0]
        .notify("c0", "s", "one-too-many", 0, json!(3))
        .unwrap();
    assert_eq!(conns[0].expect_message()["type"], "unicast_error");

    // Room made by an unregister is usable again.
    let mark = server.log.len();
    conns[1].unregister("c1", "r1").unwrap();
    conns[1].sync("c1");
    s.register("s", "one-too-many", 0).unwrap();
    s.notify("s", "nobody", "x", 0, json!(0)).unwrap();
    assert_eq!(s.expect_message()["type"], "unicast_error");
    conns[1]
        .notify("c1", "s", "one-too-many", 0, json!(4))
        .unwrap();
    let m = s.expect_message();
    assert_eq!(
        (m["type"].as_str(), &m["parameter"]),
        (Some("notify"), &json!(4))
    );
    assert_eq!(count_after(&server, mark, FULL), 0);
    let st = status.call(json!({"op": "status"}));
    assert_eq!(st["registrations"], total, "{st}");
}

/// A second server (same socket, same or another port) refuses to start
/// and leaves the first one alone.
pub fn one_server_per_system(t: &Target) {
    let server = ServerProcess::start(t);
    let socket = server.socket().to_string_lossy().into_owned();
    let config = server.config_path().to_string_lossy().into_owned();
    let port = server.port().to_string();
    for args in [
        ["--port", &port, "--socket", &socket, &config],
        ["--port", "0", "--socket", &socket, &config],
    ] {
        let (status, log) = ServerProcess::run_to_exit(t, &args);
        assert_eq!(status.code(), Some(1), "{args:?}: {log}");
        assert!(log.contains("another notifysvc is running"), "{log}");
    }
    assert!(server.socket().exists());
    let mut a = Agent::start(t, &server, "a");
    a.app("a").register("n", "n", 0);
    let mut b = Agent::start(t, &server, "b");
    assert_eq!(b.app("b").notify("a", "n", json!(1), 0), 0);
    assert_eq!(a.expect_event("notify")["parameter"], 1);
}
