//! Crash-safe delivery (issue 7), end to end: a real `notifysvc`, two
//! receiver processes of our own library registered for the same
//! notification with different priorities, a sender pushing unicasts to
//! `"1"`, and the top receiver killed with SIGKILL at random points
//! several times (restarted each time).
//!
//! Accounting: each receiver appends the sequence number of every
//! completed callback to a file (one `write` per line, before its callback
//! returns, so before the ack); the sender records the sequence numbers of
//! its unicast errors. At the end every number in `[0, N)` must be either
//! completed or returned as a unicast error — none missing — and
//! duplicates (completed twice, or completed and errored) are counted:
//! there can be at most [`ACK_BATCH`] + [`WORKERS`] per kill (callbacks
//! that completed while their acks, held back by the client to share a
//! write, were lost).
//!
//! The sender keeps at most [`WINDOW`] notifications unaccounted, so what
//! a kill hands to the other receiver stays bounded. (It was first there
//! to keep queues from overflowing, which closed a live receiver's
//! connection and caused duplicates not due to a kill; flow control now
//! holds such a sender back by itself.)
//!
//! Size: `NFY_CRASH_N` unicasts (default [`DEFAULT_N`]), `NFY_CRASH_KILLS`
//! kills (default [`DEFAULT_KILLS`]), `NFY_CRASH_SEED` for the kill points
//! (default: from the clock). The seed is printed before anything runs, so
//! a failed run shows it (the test harness prints a failed test's output)
//! and `NFY_CRASH_SEED=<seed>` replays its kill points. The full-size run
//! and its figures are in `docs/reliability.md`.
//!
//! A third test checks the same on the wire, deterministically, with raw
//! clients: only unacknowledged unicasts are re-routed, and JSON-protocol
//! receivers keep the original behaviour.
//!
//! The receivers are this test binary run again (`--exact` this test) with
//! `NFY_CRASH_ROLE=receiver`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::Server;
use nfy_linux::client::conn::ACK_BATCH;
use nfy_linux::client::pool::WORKERS;
use nfy_linux::client::{Client, Delivery, Registration, ServerAddr};
use nfy_test_support::rng::Rng;

/// Unicasts sent by default (the figure).
const DEFAULT_N: u64 = 100_000;
/// Kills of the top receiver by default.
const DEFAULT_KILLS: u64 = 5;
/// Notifications the sender lets be unaccounted at most.
const WINDOW: u64 = 10_000;
/// The notification both receivers register for.
const NOTIFICATION: &str = "crash-acks";
/// Bound for the whole run: a hang, not a speed measurement.
const RUN_DEADLINE: Duration = Duration::from_secs(600);

const ROLE: &str = "NFY_CRASH_ROLE";
const TEST_NAME: &str = "crash_safe_delivery_with_sigkilled_receivers";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The receiver process: registers `NFY_CRASH_NAME` for [`NOTIFICATION`]
/// with `NFY_CRASH_PRIORITY`, appends each completed callback's sequence
/// number to `NFY_CRASH_LOG`, creates `NFY_CRASH_READY` once the server
/// has the registration, then waits to be killed (or exits when its
/// standard input closes: the test ended without killing it).
fn receiver() -> ! {
    let var = |k: &str| std::env::var(k).unwrap();
    let socket = PathBuf::from(var("NFY_CRASH_SOCKET"));
    let name = var("NFY_CRASH_NAME");
    let priority: i32 = var("NFY_CRASH_PRIORITY").parse().unwrap();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(var("NFY_CRASH_LOG"))
        .unwrap();
    let log = Mutex::new(log);
    let client = Client::connect_to(ServerAddr::unix(socket)).unwrap();
    client.set_app_id(&name).unwrap();
    let _reg = client
        .register(NOTIFICATION, priority, move |d: &Delivery<'_>| {
            let seq = d.parameter_json()["seq"].as_u64().unwrap();
            // One write per line: a kill leaves whole lines only.
            let line = format!("{seq}\n");
            log.lock().unwrap().write_all(line.as_bytes()).unwrap();
        })
        .unwrap();
    client.sync().unwrap();
    fs::write(var("NFY_CRASH_READY"), b"").unwrap();
    let mut sink = [0u8; 64];
    while std::io::stdin().read(&mut sink).is_ok_and(|n| n > 0) {}
    std::process::exit(0);
}

/// A receiver process and how to start it again.
struct Receiver {
    name: &'static str,
    priority: i32,
    log: PathBuf,
    ready: PathBuf,
    socket: PathBuf,
    child: Option<Child>,
    starts: u64,
}

impl Receiver {
    fn new(dir: &Path, socket: &Path, name: &'static str, priority: i32) -> Receiver {
        Receiver {
            name,
            priority,
            log: dir.join(format!("{name}.log")),
            ready: dir.join(format!("{name}.ready")),
            socket: socket.to_owned(),
            child: None,
            starts: 0,
        }
    }

    /// Starts the process and waits until it is registered.
    fn start(&mut self) {
        let _ = fs::remove_file(&self.ready);
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(ROLE, "receiver")
            .env("NFY_CRASH_SOCKET", &self.socket)
            .env("NFY_CRASH_NAME", self.name)
            .env("NFY_CRASH_PRIORITY", self.priority.to_string())
            .env("NFY_CRASH_LOG", &self.log)
            .env("NFY_CRASH_READY", &self.ready)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.starts += 1;
        let deadline = Instant::now() + common::DEADLINE;
        while !self.ready.exists() {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none(),
                "receiver {} exited: {exited:?}",
                self.name
            );
            assert!(
                Instant::now() < deadline,
                "receiver {} not ready",
                self.name
            );
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGKILL, and waits until it is gone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads the receivers' logs as they grow: completions per sequence number.
struct Tally {
    completed: Vec<u16>,
    errored: Arc<Mutex<Vec<u16>>>,
    offsets: Vec<(PathBuf, u64, Vec<u8>)>,
    /// Numbers completed or errored at least once.
    accounted: u64,
    /// When `accounted` last grew.
    progress: Instant,
    /// Sequence number of the end marker each log has shown.
    markers: usize,
}

impl Tally {
    fn new(n: u64, logs: &[&Path], errored: Arc<Mutex<Vec<u16>>>) -> Tally {
        Tally {
            completed: vec![0; usize::try_from(n).unwrap()],
            errored,
            offsets: logs
                .iter()
                .map(|p| (p.to_path_buf(), 0, Vec::new()))
                .collect(),
            accounted: 0,
            progress: Instant::now(),
            markers: 0,
        }
    }

    /// Reads what the logs gained; updates `accounted`.
    fn poll(&mut self) {
        let n = self.completed.len();
        for (path, offset, partial) in &mut self.offsets {
            let Ok(mut f) = fs::File::open(&*path) else {
                continue;
            };
            use std::io::Seek;
            f.seek(std::io::SeekFrom::Start(*offset)).unwrap();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            *offset += bytes.len() as u64;
            partial.extend_from_slice(&bytes);
            let Some(end) = partial.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            let whole: Vec<u8> = partial.drain(..=end).collect();
            for line in whole.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let seq: usize = std::str::from_utf8(line).unwrap().parse().unwrap();
                if seq >= n {
                    self.markers += 1;
                    continue;
                }
                let c = &mut self.completed[seq];
                *c += 1;
            }
        }
        let errored = self.errored.lock().unwrap();
        let before = self.accounted;
        self.accounted = self
            .completed
            .iter()
            .zip(errored.iter())
            .filter(|(c, e)| **c + **e > 0)
            .count() as u64;
        if self.accounted != before {
            self.progress = Instant::now();
        }
    }

    /// The numbers neither completed nor errored.
    fn missing(&self) -> Vec<usize> {
        let errored = self.errored.lock().unwrap();
        (0..self.completed.len())
            .filter(|&i| self.completed[i] == 0 && errored[i] == 0)
            .collect()
    }
}

#[test]
fn crash_safe_delivery_with_sigkilled_receivers() {
    if std::env::var_os(ROLE).is_some() {
        receiver();
    }
    let n = env_u64("NFY_CRASH_N", DEFAULT_N);
    let kills = env_u64("NFY_CRASH_KILLS", DEFAULT_KILLS);
    scenario(n, kills, true);
}

/// The unicast-error side: the only receiver is killed once and not
/// restarted. What it had not acknowledged, and everything sent after,
/// comes back to the sender as unicast errors; nothing is missing.
#[test]
fn unacknowledged_unicasts_of_a_killed_only_receiver_become_unicast_errors() {
    let n = env_u64("NFY_CRASH_N", DEFAULT_N) / 5;
    scenario(n, 1, false);
}

/// Runs `n` unicasts to `"1"` with `kills` SIGKILLs of the top receiver
/// "rtop" (restarted each time when `restart`; with `restart` false there
/// is no other receiver either) and checks the accounting.
fn scenario(n: u64, kills: u64, restart: bool) {
    let seed = env_u64(
        "NFY_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    // First, so that a failure shows how to replay it.
    println!("crash-safe delivery: seed {seed} (replay: NFY_CRASH_SEED={seed})");
    assert!(n > 0 && n < u64::from(u32::MAX));
    let started = Instant::now();

    let server = Server::builder().start();
    let dir = tempfile::tempdir().unwrap();
    let mut top = Receiver::new(dir.path(), &server.socket, "rtop", 10);
    let mut low = Receiver::new(dir.path(), &server.socket, "rlow", 1);
    if restart {
        low.start();
    }
    top.start();

    // The sender: this process, our library, counting its unicast errors.
    let errored = Arc::new(Mutex::new(vec![0u16; usize::try_from(n).unwrap()]));
    let error_markers = Arc::new(AtomicU64::new(0));
    let sender = Client::connect_to(ServerAddr::unix(&server.socket)).unwrap();
    sender.set_app_id("sender").unwrap();
    let _errors = {
        let errored = Arc::clone(&errored);
        let error_markers = Arc::clone(&error_markers);
        sender.on_unicast_error(move |d: &Delivery<'_>| {
            let seq = d.parameter_json()["seq"].as_u64().unwrap();
            match errored.lock().unwrap().get_mut(seq as usize) {
                Some(e) => *e += 1,
                None => {
                    error_markers.fetch_add(1, Ordering::AcqRel);
                }
            }
        })
    };
    let accounted = Arc::new(AtomicU64::new(0));
    let done_sending = Arc::new(AtomicBool::new(false));
    let sending = {
        let sender = sender.clone();
        let accounted = Arc::clone(&accounted);
        let done_sending = Arc::clone(&done_sending);
        thread::spawn(move || {
            for seq in 0..n {
                while seq >= accounted.load(Ordering::Acquire) + WINDOW {
                    thread::sleep(Duration::from_micros(200));
                }
                let json = format!("{{\"seq\":{seq}}}");
                sender.notify_raw("1", NOTIFICATION, &json).unwrap();
            }
            done_sending.store(true, Ordering::Release);
        })
    };

    // Kill points: random completion counts, sorted.
    let mut rng = Rng(seed);
    let mut points: Vec<u64> = (0..kills)
        .map(|_| n / 20 + rng.below(n * 17 / 20))
        .collect();
    points.sort_unstable();
    let mut tally = Tally::new(n, &[&top.log, &low.log], Arc::clone(&errored));
    let mut killed = 0u64;
    let deadline = Instant::now() + RUN_DEADLINE;
    while tally.accounted < n {
        assert!(
            Instant::now() < deadline,
            "not every notification accounted for: {} of {n} after {:?}",
            tally.accounted,
            RUN_DEADLINE
        );
        // Everything sent and nothing new for a long while: lost.
        if done_sending.load(Ordering::Acquire) && tally.progress.elapsed() > common::DEADLINE {
            let missing = tally.missing();
            panic!(
                "{} of {n} notifications neither completed nor returned ({killed} kills), \
                 first {:?}",
                missing.len(),
                &missing[..missing.len().min(10)]
            );
        }
        thread::sleep(Duration::from_millis(2));
        tally.poll();
        accounted.store(tally.accounted, Ordering::Release);
        if points.first().is_some_and(|&p| tally.accounted >= p) {
            points.remove(0);
            top.kill();
            killed += 1;
            if restart {
                top.start();
            }
        }
    }
    sending.join().unwrap();
    assert!(done_sending.load(Ordering::Acquire));

    // End markers, one to each receiver by app ID (the same registration,
    // so after everything it had queued): once both logged theirs (or got
    // them back as unicast errors: no receiver), nothing is still in
    // flight.
    for to in ["rtop", "rlow"] {
        let json = format!("{{\"seq\":{n}}}");
        sender.notify_raw(to, NOTIFICATION, &json).unwrap();
    }
    while tally.markers + (error_markers.load(Ordering::Acquire) as usize) < 2 {
        assert!(Instant::now() < deadline, "end markers not received");
        thread::sleep(Duration::from_millis(2));
        tally.poll();
    }
    sender.sync().unwrap();

    let errored = errored.lock().unwrap();
    let mut missing = Vec::new();
    let (mut completed, mut errors, mut duplicates) = (0u64, 0u64, 0u64);
    for (seq, (&c, &e)) in tally.completed.iter().zip(errored.iter()).enumerate() {
        completed += u64::from(c.min(1));
        errors += u64::from(e);
        let total = u64::from(c) + u64::from(e);
        if total == 0 {
            missing.push(seq);
        }
        duplicates += total.saturating_sub(1);
    }
    let callbacks = |r: &Receiver| {
        let text = fs::read_to_string(&r.log).unwrap_or_default();
        let marker = n.to_string();
        text.lines().filter(|l| *l != marker).count()
    };
    let (by_top, by_low) = (callbacks(&top), callbacks(&low));
    println!(
        "crash-safe delivery: {n} unicasts, seed {seed}, {killed} SIGKILLs of the top receiver; \
         {completed} completed ({by_top} callbacks in rtop, {by_low} in rlow), {errors} unicast \
         errors, {} missing, {duplicates} duplicates; {:.1} s",
        missing.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        missing.is_empty(),
        "{} notifications lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(killed, kills, "every kill happened during the run");
    // A kill loses at most the acks the client held back: ACK_BATCH, plus
    // one per callback worker completing at the moment the batch fills.
    let per_kill = (ACK_BATCH + WORKERS) as u64;
    assert!(
        duplicates <= killed * per_kill,
        "{duplicates} duplicates for {killed} kills (at most {per_kill} per kill)"
    );
    if restart {
        // The top receiver was really killed while busy: the low one took
        // over some of its traffic.
        assert!(by_low > 0 || kills == 0, "rlow never received anything");
    } else {
        // Killed before the last notification was sent, never restarted:
        // the rest came back.
        assert!(errors > 0, "no unicast error");
    }
}

/// A compact-protocol client written with `nfy-core`'s codecs: what our
/// library sends, frame by frame.
struct Compact {
    stream: std::os::unix::net::UnixStream,
    decoder: nfy_core::wire::FrameDecoder<Vec<u8>>,
    frames: std::collections::VecDeque<Vec<u8>>,
}

impl Compact {
    fn connect(socket: &Path) -> Compact {
        let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
        stream.set_read_timeout(Some(common::DEADLINE)).unwrap();
        Compact {
            stream,
            decoder: nfy_core::wire::FrameDecoder::new(vec![0; 1 << 16]),
            frames: Default::default(),
        }
    }

    fn frame(m: &nfy_core::msg::Message<'_>) -> Vec<u8> {
        use nfy_core::msg::{compact, Encoding};
        let mut buf = vec![0u8; 4096];
        let n = nfy_core::wire::encode_frame(&mut buf, Encoding::Compact.msg_id(), |b| {
            compact::encode(m, b)
        })
        .unwrap();
        buf.truncate(n);
        buf
    }

    fn send(&mut self, m: &nfy_core::msg::Message<'_>) {
        self.stream.write_all(&Self::frame(m)).unwrap();
    }

    /// The next message's body (compact), waiting at most the deadline.
    fn recv_body(&mut self) -> Vec<u8> {
        loop {
            if let Some(body) = self.frames.pop_front() {
                return body;
            }
            let mut buf = [0u8; 4096];
            let n = self.stream.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed the connection");
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let (used, out) = self.decoder.feed(rest);
                if let Some(nfy_core::wire::Decoded::Frame(f)) = out {
                    self.frames.push_back(f.body.to_vec());
                }
                rest = &rest[used..];
            }
        }
    }

    /// The next notify: (reference, seq).
    fn recv_notify(&mut self) -> (u64, u64) {
        let body = self.recv_body();
        match nfy_core::msg::decode(nfy_core::msg::Encoding::Compact, &body).unwrap() {
            nfy_core::msg::Message::Notify(n) => {
                let p: serde_json::Value = serde_json::from_str(n.parameter.as_str()).unwrap();
                (n.reference.unwrap(), p["seq"].as_u64().unwrap())
            }
            m => panic!("expected a notify, got {m:?}"),
        }
    }

    /// Waits until the server has handled everything sent so far (its
    /// status answer comes after; the `Welcome` answering a `hello` may
    /// come before it).
    fn sync(&mut self) {
        self.send(&nfy_core::msg::Message::StatusRequest);
        loop {
            let body = self.recv_body();
            let m = nfy_core::msg::decode(nfy_core::msg::Encoding::Compact, &body).unwrap();
            match m {
                nfy_core::msg::Message::Status(_) => return,
                nfy_core::msg::Message::Welcome(_) => {}
                m => panic!("expected the status, got {m:?}"),
            }
        }
    }
}

fn seq_of(v: &serde_json::Value) -> u64 {
    assert_eq!(v["type"], "notify", "{v}");
    v["parameter"]["seq"].as_u64().unwrap()
}

/// On the wire, deterministically: a receiver that acknowledged some
/// unicasts and then ended gets only the others re-routed, in order, even
/// when its last ack arrives together with its hang-up; a receiver that
/// speaks the documented JSON protocol keeps the original behaviour (what
/// it was sent is not re-routed when it ends).
#[test]
fn only_unacknowledged_unicasts_are_rerouted_and_json_receivers_are_unchanged() {
    use nfy_core::msg::{compact, Hello, Message, Register};
    let server = Server::builder().start();
    let mut low = server.unix_client();
    low.register("low", "n", 1).unwrap();
    low.barrier("low");
    let mut sender = server.unix_client();

    // An acknowledging receiver above it.
    let mut top = Compact::connect(&server.socket);
    top.send(&Message::Hello(Hello {
        version: compact::VERSION,
        app_id: None,
        acks: true,
    }));
    top.send(&Message::Register(Register {
        to: nfy_core::AppId::new("top").unwrap(),
        notification: nfy_core::NotificationId::new("n").unwrap(),
        priority: 10,
    }));
    top.sync();
    for seq in 0..4 {
        sender
            .notify("s", "1", "n", 0, serde_json::json!({ "seq": seq }))
            .unwrap();
    }
    let got: Vec<(u64, u64)> = (0..4).map(|_| top.recv_notify()).collect();
    assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), [0, 1, 2, 3]);
    // Acks for 1 and 3, the last one in the same write as the close.
    top.send(&Message::Ack(got[1].0));
    top.sync();
    top.stream
        .write_all(&Compact::frame(&Message::Ack(got[3].0)))
        .unwrap();
    drop(top);
    // 0 and 2 come to the next receiver, in order; 1 and 3 do not.
    let first = low.recv_type("notify", common::DEADLINE).unwrap().unwrap();
    let second = low.recv_type("notify", common::DEADLINE).unwrap().unwrap();
    assert_eq!((seq_of(&first), seq_of(&second)), (0, 2));
    sender
        .notify("s", "1", "n", 0, serde_json::json!({ "seq": 4 }))
        .unwrap();
    let next = low.recv_type("notify", common::DEADLINE).unwrap().unwrap();
    assert_eq!(seq_of(&next), 4, "nothing else was re-routed");

    // A JSON receiver above it that reads a unicast and ends: not
    // re-routed (original behaviour).
    let mut json_top = server.unix_client();
    json_top.register("jtop", "n", 20).unwrap();
    json_top.barrier("jtop");
    sender
        .notify("s", "1", "n", 0, serde_json::json!({ "seq": 5 }))
        .unwrap();
    let got = json_top
        .recv_type("notify", common::DEADLINE)
        .unwrap()
        .unwrap();
    assert_eq!(seq_of(&got), 5);
    drop(json_top);
    sender
        .notify("s", "1", "n", 0, serde_json::json!({ "seq": 6 }))
        .unwrap();
    // 6 reaches the low receiver (directly, or returned unsent by the
    // closing connection); 5, which the JSON receiver had read, never.
    let next = low.recv_type("notify", common::DEADLINE).unwrap().unwrap();
    assert_eq!(seq_of(&next), 6);
    let rest = low.barrier("low");
    assert!(
        rest.iter().all(|v| v["type"] != "notify"),
        "re-routed later: {rest:?}"
    );
}

/// A client of this process with app ID `app`.
fn connect(server: &Server, app: &str) -> Client {
    let c = Client::connect_to(ServerAddr::unix(&server.socket)).unwrap();
    c.set_app_id(app).unwrap();
    c
}

/// The next receiver of [`NOTIFICATION`] (priority 1), in this process:
/// the client, its registration, and the sequence numbers it receives.
fn low_receiver(
    server: &Server,
    app: &str,
) -> (Client, Registration, std::sync::mpsc::Receiver<u64>) {
    let low = connect(server, app);
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let reg = low
        .register(NOTIFICATION, 1, move |d: &Delivery<'_>| {
            let seq = d.parameter_json()["seq"].as_u64().unwrap();
            tx.lock().unwrap().send(seq).unwrap();
        })
        .unwrap();
    low.sync().unwrap();
    (low, reg, rx)
}

/// Sends unicasts `seqs` to "1".
fn send_seqs(sender: &Client, seqs: impl IntoIterator<Item = u64>) {
    for seq in seqs {
        sender
            .notify_raw("1", NOTIFICATION, &format!("{{\"seq\":{seq}}}"))
            .unwrap();
    }
}

/// After the top receiver ended: the marker 99 sent now is the first and
/// only thing the low receiver gets. Had any earlier unicast not been
/// acknowledged, it would be re-routed to it ahead of 99 (or 99 itself,
/// sent to a receiver that is gone, after them: oldest first).
fn nothing_rerouted(sender: &Client, low: &std::sync::mpsc::Receiver<u64>) {
    send_seqs(sender, [99]);
    assert_eq!(low.recv_timeout(common::DEADLINE).unwrap(), 99);
    assert!(low.recv_timeout(Duration::from_millis(100)).is_err());
}

/// Acks held back go out on their own once the receiver has nothing to
/// run (the link thread sends them `LINGER` later): a receiver killed
/// after a quiet spell has nothing re-routed.
#[test]
fn an_idle_receivers_held_back_acks_go_out_on_their_own() {
    let server = Server::builder().start();
    let dir = tempfile::tempdir().unwrap();
    let mut top = Receiver::new(dir.path(), &server.socket, "itop", 10);
    top.start();
    let (_low, _reg, low_rx) = low_receiver(&server, "ilow");
    let sender = connect(&server, "isender");
    send_seqs(&sender, 0..5);
    let deadline = Instant::now() + common::DEADLINE;
    while fs::read_to_string(&top.log)
        .unwrap_or_default()
        .lines()
        .count()
        < 5
    {
        assert!(Instant::now() < deadline, "the receiver ran 5 callbacks");
        thread::sleep(Duration::from_millis(2));
    }
    // A quiet spell far longer than LINGER (1 ms): the acks are out.
    thread::sleep(Duration::from_millis(500));
    top.kill();
    nothing_rerouted(&sender, &low_rx);
}

/// Closing a client first sends the acks it holds back: what its
/// callbacks completed is not re-routed.
#[test]
fn close_sends_the_acks_held_back() {
    let server = Server::builder().start();
    let (_low, _reg, low_rx) = low_receiver(&server, "clow");
    let top = connect(&server, "ctop");
    let (ran_tx, ran_rx) = std::sync::mpsc::channel();
    let ran_tx = Mutex::new(ran_tx);
    let _top = top
        .register(NOTIFICATION, 10, move |_: &Delivery<'_>| {
            ran_tx.lock().unwrap().send(()).unwrap();
        })
        .unwrap();
    top.sync().unwrap();
    let sender = connect(&server, "csender");
    send_seqs(&sender, 0..3);
    for _ in 0..3 {
        ran_rx.recv_timeout(common::DEADLINE).unwrap();
    }
    top.close();
    nothing_rerouted(&sender, &low_rx);
}
