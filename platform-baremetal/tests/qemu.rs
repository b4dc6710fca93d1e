//! The firmware on an emulated board: `qemu-system-arm -M mps2-an386`
//! runs the ELF that `cargo xtask baremetal` built (path in
//! `NFY_BAREMETAL_FIRMWARE`), its UART0–3 are Unix sockets in a temporary
//! directory, UART4 (the log) a file. The tests connect to the sockets and
//! speak the documented JSON protocol with `nfy-test-support`'s client.
//!
//! Ignored by a plain `cargo test` (they need the firmware, built for
//! another target): `cargo xtask baremetal` builds it and runs them with
//! `--ignored`. Each test starts its own QEMU and stops it by PID when it
//! ends, passing or failing ([`Qemu`]'s `Drop`); every wait is bounded by
//! `DEADLINE`, so a firmware that hangs fails the test, and the firmware's
//! log is printed with the failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nfy_baremetal::{CONNECTIONS, IDENTIFIERS, MAX_BODY, REGISTRATIONS};
use nfy_test_support::wire::{frame, frame_with_id, JsonClient};
use nfy_test_support::DEADLINE;
use serde_json::{json, Value};

/// The variable naming the firmware ELF.
const FIRMWARE_ENV: &str = "NFY_BAREMETAL_FIRMWARE";
/// A file to append the measured stack high-water mark to (optional).
const REPORT_ENV: &str = "NFY_BAREMETAL_REPORT";

/// One emulated board, killed when dropped.
struct Qemu {
    child: Child,
    dir: tempfile::TempDir,
}

impl Qemu {
    /// Boots the firmware and waits for its "ready" line.
    fn boot() -> Qemu {
        let qemu = Qemu::start(&[]);
        qemu.wait_log("nfy-baremetal: ready");
        qemu
    }

    /// Starts QEMU with the firmware, UART0–3 on sockets `uart0`..`uart3`
    /// and UART4 in the file `log`, plus `extra` arguments.
    fn start(extra: &[&str]) -> Qemu {
        let firmware = std::env::var_os(FIRMWARE_ENV).unwrap_or_else(|| {
            panic!("{FIRMWARE_ENV} is not set: run these tests with `cargo xtask baremetal`")
        });
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("qemu-system-arm");
        cmd.args(["-M", "mps2-an386", "-nodefaults", "-display", "none"])
            .args(["-monitor", "none", "-net", "none", "-kernel"])
            .arg(&firmware);
        for i in 0..CONNECTIONS {
            let path = dir.path().join(format!("uart{i}"));
            cmd.arg("-chardev").arg(format!(
                "socket,id=uart{i},path={},server=on,wait=off",
                path.display()
            ));
            cmd.args(["-serial", &format!("chardev:uart{i}")]);
        }
        cmd.arg("-chardev")
            .arg(format!(
                "file,id=log,path={}",
                dir.path().join("log").display()
            ))
            .args(["-serial", "chardev:log"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("qemu.err")).unwrap());
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start qemu-system-arm ({e}): apt-get install qemu-system-arm")
        });
        let qemu = Qemu { child, dir };
        let deadline = Instant::now() + DEADLINE;
        while !(0..CONNECTIONS).all(|i| qemu.uart(i).exists()) {
            assert!(
                Instant::now() < deadline,
                "QEMU made no sockets in time; stderr: {}",
                qemu.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
        qemu
    }

    fn uart(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("uart{i}"))
    }

    /// A JSON-protocol client on UART `i`.
    fn connect(&self, i: usize) -> JsonClient {
        JsonClient::from_unix(UnixStream::connect(self.uart(i)).unwrap())
    }

    /// All four UARTs.
    fn connect_all(&self) -> Vec<JsonClient> {
        (0..CONNECTIONS).map(|i| self.connect(i)).collect()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("qemu.err")).unwrap_or_default()
    }

    /// The complete lines of the log so far (the firmware writes it a
    /// byte at a time).
    fn log_lines(&self) -> Vec<String> {
        self.log()
            .split_inclusive('\n')
            .filter_map(|l| l.strip_suffix('\n'))
            .map(str::to_string)
            .collect()
    }

    /// Waits until the log has a line for which `found` holds.
    fn wait_for(&self, what: &str, found: impl Fn(&[String]) -> Option<String>) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(line) = found(&self.log_lines()) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {what} in time; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the log has a line containing `part`.
    fn wait_log(&self, part: &str) -> String {
        self.wait_for(&format!("{part:?}"), |lines| {
            lines.iter().find(|l| l.contains(part)).cloned()
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "--- firmware log ---\n{}--- qemu stderr ---\n{}",
                self.log(),
                self.stderr()
            );
        }
    }
}

/// Registers `app` for `notification` and makes sure the firmware has
/// handled it (a round trip on the same UART), so another UART may rely
/// on it.
fn register(c: &mut JsonClient, app: &str, notification: &str, priority: i32) {
    c.register(app, notification, priority).unwrap();
    c.sync(app);
}

#[test]
#[ignore = "needs the firmware: cargo xtask baremetal"]
fn boots_and_says_what_it_serves() {
    let qemu = Qemu::boot();
    let ready = qemu.wait_log("nfy-baremetal: ready");
    assert!(
        ready.contains(&format!(
            "{CONNECTIONS} connections (UART0-3), {REGISTRATIONS} registrations over up to \
             {IDENTIFIERS} identifiers, bodies up to {MAX_BODY} bytes"
        )),
        "{ready}"
    );
}

#[test]
#[ignore = "needs the firmware: cargo xtask baremetal"]
fn unicast_crosses_from_one_uart_to_another() {
    let qemu = Qemu::boot();
    let mut c = qemu.connect_all();
    register(&mut c[1], "ui", "show", 0);
    c[0].notify("payment", "ui", "show", 3, json!({"text": "Insert card"}))
        .unwrap();
    let n = c[1].expect_message();
    assert_eq!(n["type"], "notify");
    assert_eq!(n["from"], "payment");
    assert_eq!(n["to"], "ui");
    assert_eq!(n["notification"], "show");
    assert_eq!(n["flags"], 3);
    assert_eq!(n["parameter"], json!({"text": "Insert card"}));
    assert!(n["reference"].is_u64());
    c[0].expect_nothing(Duration::from_millis(200));
}

#[test]
#[ignore = "needs the firmware: cargo xtask baremetal"]
fn to_exactly_one_goes_to_the_best_priority() {
    let qemu = Qemu::boot();
    let mut c = qemu.connect_all();
    register(&mut c[1], "low", "pay", 1);
    register(&mut c[2], "high", "pay", 7);
    c[0].notify("pos", "1", "pay", 0, json!({"n": 1})).unwrap();
    let n = c[2].expect_message();
    assert_eq!(n["to"], "1");
    assert_eq!(n["parameter"], json!({"n": 1}));
    // A tie goes to the most recent registration.
    register(&mut c[3], "later", "pay", 7);
    c[0].notify("pos", "1", "pay", 0, json!({"n": 2})).unwrap();
    assert_eq!(c[3].expect_message()["parameter"], json!({"n": 2}));
    for i in [1, 2] {
        assert!(
            c[i].sync(&format!("s{i}")).is_empty(),
            "UART{i} got one too"
        );
    }
}

#[test]
#[ignore = "needs the firmware: cargo xtask baremetal"]
fn broadcast_reaches_every_uart_once() {
    let qemu = Qemu::boot();
    let mut c = qemu.connect_all();
    register(&mut c[1], "a", "tick", 0);
    register(&mut c[1], "b", "tick", 0);
    register(&mut c[2], "c", "tick", 0);
    register(&mut c[3], "d", "tick", 0);
    c[0].notify("clock", "*", "tick", 0, json!([1, 2])).unwrap();
    for (i, client) in c.iter_mut().enumerate().skip(1) {
        let n = client.expect_message();
        assert_eq!(n["to"], "*");
        assert_eq!(n["parameter"], json!([1, 2]));
        assert!(
            client.sync(&format!("s{i}")).is_empty(),
            "UART{i} got a second copy"
        );
    }
    assert!(c[0].sync("s0").is_empty(), "no error for a broadcast");
}

#[test]
#[ignore = "needs the firmware: cargo xtask baremetal"]
fn a_unicast_nobody_receives_comes_back_as_an_error() {
    let qemu = Qemu::boot();
    let mut c = qemu.connect(3);
    c.notify("payment", "nobody", "show", 0, json!({"x": 1}))
        .unwrap();
    let e = c.expect_message();
    assert_eq!(e["type"], "unicast_error");
    assert_eq!(e["from"], "payment");
    assert_eq!(e["to"], "nobody");
    assert_eq!(e["parameter"], json!({"x": 1}));
    qemu.wait_log("port 3: unicast error: nobody received \"show\" sent to \"nobody\"");
}

#[test]
#[ignore = "needs the firmware: cargo xtask baremetal"]
fn bad_frames_are_skipped_and_the_uart_goes_on() {
    let qemu = Qemu::boot();
    let mut c = qemu.connect_all();
    c[0].send_raw(b"line noise").unwrap();
    c[0].send_raw(&frame(b"{\"type\":")).unwrap();
    c[0].send_raw(&frame_with_id(1, b"\x01\x02")).unwrap();
    c[0].send_raw(&frame(&vec![b'x'; MAX_BODY + 100])).unwrap();
    // Garbage is reported as it arrives, possibly in pieces.
    qemu.wait_for("10 bytes of garbage in all", |lines| {
        let total: usize = lines
            .iter()
            .filter_map(|l| l.strip_prefix("port 0: discarded "))
            .filter_map(|l| l.strip_suffix(" bytes before a frame prefix"))
            .map(|n| n.parse::<usize>().unwrap())
            .sum();
        (total == 10).then(String::new)
    });
    for part in [
        "port 0: bad message skipped: body is not valid JSON",
        "port 0: compact body skipped",
        &format!(
            "port 0: skipped a frame with a {}-byte body",
            MAX_BODY + 100
        ),
    ] {
        qemu.wait_log(part);
    }
    register(&mut c[0], "ui", "show", 0);
    c[1].notify("payment", "ui", "show", 0, json!("still here"))
        .unwrap();
    assert_eq!(c[0].expect_message()["parameter"], "still here");
}

#[test]
#[ignore = "needs the firmware: cargo xtask baremetal"]
fn the_table_holds_its_registrations_and_refuses_one_more() {
    let qemu = Qemu::boot();
    let mut c = qemu.connect_all();
    // Each client's `sync` holds one registration: CONNECTIONS app IDs and
    // one notification ID.
    for (i, client) in c.iter_mut().enumerate() {
        client.sync(&format!("s{i}"));
    }
    // The rest over the fewest identifiers: one app ID of 64 bytes per
    // port, each registered for the same notification IDs (64 bytes too),
    // so the identifier pool holds them all (the table's rule).
    let id = |tag: String| format!("{tag:-<64}");
    let rest = REGISTRATIONS - CONNECTIONS;
    let notifications = rest.div_ceil(CONNECTIONS);
    assert!(CONNECTIONS + 1 + CONNECTIONS + notifications <= IDENTIFIERS);
    for i in 0..rest {
        let port = i % CONNECTIONS;
        c[port]
            .register(
                &id(format!("app{port}")),
                &id(format!("n{}", i / CONNECTIONS)),
                0,
            )
            .unwrap();
    }
    for (i, client) in c.iter_mut().enumerate() {
        client.sync(&format!("s{i}"));
    }
    assert!(!qemu.log().contains("refused"), "{}", qemu.log());
    let (app0, n0) = (id("app0".into()), id("n0".into()));
    c[0].register("one-too-many", &n0, 0).unwrap();
    qemu.wait_log("port 0: registration refused: routing table full");
    c[0].notify("x", "one-too-many", &n0, 0, json!({})).unwrap();
    assert_eq!(c[0].expect_message()["type"], "unicast_error");
    c[1].notify("x", &app0, &n0, 0, json!({})).unwrap();
    assert_eq!(c[0].expect_message()["to"], app0);
}

/// Reads the last stack high-water line of the log: (used, size).
fn stack_use(log: &[String]) -> (usize, usize) {
    let line = log
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("nfy-baremetal: stack high-water "))
        .expect("no stack line in the log");
    let (used, rest) = line.split_once(" of ").unwrap();
    let size = rest.strip_suffix(" bytes").unwrap();
    (used.parse().unwrap(), size.parse().unwrap())
}

#[test]
#[ignore = "needs the firmware: cargo xtask baremetal"]
fn bursts_on_two_pairs_of_uarts_arrive_whole_and_in_order() {
    let qemu = Qemu::boot();
    let mut c = qemu.connect_all();
    register(&mut c[1], "sink1", "burst", 0);
    register(&mut c[3], "sink3", "burst", 0);
    const N: u64 = 150;
    // The largest bodies the firmware takes, from two senders at once to
    // two readers: the queues fill, the senders wait. (Both receivers
    // read all along: a reader that stops holds up every sender, see
    // the service's flow control.)
    let pad = "p".repeat(MAX_BODY - 120);
    let mut senders = Vec::new();
    for (from, to) in [(0, "sink1"), (2, "sink3")] {
        let mut s = c[from].try_clone().unwrap();
        let pad = pad.clone();
        senders.push(thread::spawn(move || {
            for i in 0..N {
                s.notify("burst", to, "burst", 0, json!({"i": i, "pad": pad}))
                    .unwrap();
            }
        }));
    }
    let readers: Vec<_> = [1, 3]
        .into_iter()
        .map(|r| {
            let mut reader = c[r].try_clone().unwrap();
            thread::spawn(move || {
                (0..N)
                    .map(|_| reader.expect_message()["parameter"]["i"].as_u64().unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    for (r, reader) in [1, 3].into_iter().zip(readers) {
        assert_eq!(
            reader.join().unwrap(),
            (0..N).collect::<Vec<_>>(),
            "UART{r}"
        );
    }
    for s in senders {
        s.join().unwrap();
    }
    assert!(c[0].sync("s0").is_empty() && c[2].sync("s2").is_empty());
    // The deepest the stack has been, all that traffic included.
    thread::sleep(Duration::from_millis(100));
    let (used, size) = stack_use(&qemu.log_lines());
    assert!(used < size, "stack used {used} of {size}");
    if let Some(path) = std::env::var_os(REPORT_ENV) {
        fs::write(&path, format!("stack_used={used} stack_size={size}\n")).unwrap();
    }
    assert!(
        !qemu.log().contains("overflow"),
        "a queue overflowed:\n{}",
        qemu.log()
    );
}

#[test]
#[ignore = "needs the firmware: cargo xtask baremetal"]
fn a_firmware_that_does_not_run_fails_within_the_deadline_and_is_stopped() {
    // `-S`: the CPU never starts, as if the firmware hung at reset.
    let qemu = Qemu::start(&["-S"]);
    let mut c = qemu.connect(0);
    c.register("me", "ping", 0).unwrap();
    c.notify("me", "me", "ping", 0, json!({})).unwrap();
    let start = Instant::now();
    let reply: Option<Value> = c.recv(Duration::from_secs(2)).unwrap();
    assert!(reply.is_none());
    assert!(start.elapsed() < DEADLINE, "the wait was not bounded");
    let pid = qemu.pid();
    drop(qemu);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU {pid} still runs after its guard was dropped"
    );
}
