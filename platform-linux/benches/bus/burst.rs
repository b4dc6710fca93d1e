//! The burst workload of issue 12, the parts every system shares: the
//! sequence-numbered parameter, the receiver's tally and the result.
//!
//! A sends N one-way notifications to B as fast as it can, with no
//! flow-control window: whatever slows the sender down is the system's
//! own back-pressure (the kernel's socket buffers for the floor, the
//! server's for the others). B decodes every parameter with serde_json
//! (as a real client does with what it receives) and checks the sequence
//! numbers. Every wait is bounded: a sender whose write blocks for the
//! idle time fails, and a receiver that sees nothing for the idle time
//! ends the run, which then reports what arrived.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::common::{lock, nanos, Error, Res};

/// The first sequence number: six digits keep the parameter at 64 bytes
/// for up to 900,000 notifications.
pub const FIRST_SEQ: u64 = 100_000;
/// The largest burst whose parameters stay 64 bytes long.
pub const MAX_N: u64 = 900_000;
/// Stack of a receiving thread.
const STACK: usize = 256 * 1024;

/// The burst's parameter: 64 bytes of JSON,
/// `{"amount":123,"currency":"EUR","terminal":"T-0001","seq":100000}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Param<'a> {
    /// A fixed amount.
    pub amount: u32,
    /// A fixed currency.
    pub currency: &'a str,
    /// A fixed terminal ID.
    pub terminal: &'a str,
    /// [`FIRST_SEQ`] + the notification's index in the burst.
    pub seq: u64,
}

impl Param<'static> {
    /// The parameter of the notification at `index`.
    pub fn at(index: u64) -> Param<'static> {
        Param {
            amount: 123,
            currency: "EUR",
            terminal: "T-0001",
            seq: FIRST_SEQ + index,
        }
    }
}

/// Appends the JSON text of the parameter at `index` (what `serde_json`
/// makes of [`Param::at`]) without a serializer, as a hand-written client
/// formats its messages.
pub fn write_param(buf: &mut Vec<u8>, index: u64) {
    use std::io::Write as _;
    let _ = write!(
        buf,
        r#"{{"amount":123,"currency":"EUR","terminal":"T-0001","seq":{}}}"#,
        FIRST_SEQ + index
    );
}

/// Decodes a received parameter; returns its sequence number.
pub fn decode_seq(json: &[u8]) -> Res<u64> {
    let p: Param<'_> = serde_json::from_slice(json)?;
    Ok(p.seq)
}

/// One receiver's receptions: how many, whether in sequence, when the
/// last came. One thread calls [`Tally::hit`]; any thread reads.
#[derive(Debug)]
pub struct Tally {
    epoch: Instant,
    target: u64,
    count: AtomicU64,
    next_seq: AtomicU64,
    out_of_order: AtomicU64,
    /// Nanoseconds from `epoch` to the last reception.
    last_ns: AtomicU64,
    /// Set when the receiver stopped early: why, and how.
    stopped: Mutex<Option<(String, Ended)>>,
    done: Mutex<bool>,
    cv: Condvar,
}

/// How a receiver that stopped early ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Its read waited the idle time.
    TimedOut,
    /// Its connection ended (reset, end of stream).
    Disconnected,
    /// What came did not decode.
    Failed,
}

/// How waiting for the receiver ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// Everything expected arrived.
    Complete,
    /// Nothing arrived for the idle time.
    Idle,
    /// The receiver stopped before (its connection ended, or it could not
    /// decode what came).
    Stopped,
}

impl Tally {
    /// A tally expecting `target` notifications, the first with sequence
    /// number [`FIRST_SEQ`].
    pub fn new(target: u64) -> Tally {
        Tally {
            epoch: Instant::now(),
            target,
            count: AtomicU64::new(0),
            next_seq: AtomicU64::new(FIRST_SEQ),
            out_of_order: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            stopped: Mutex::new(None),
            done: Mutex::new(false),
            cv: Condvar::new(),
        }
    }

    /// Nanoseconds since the tally was made (the sender's start is taken
    /// on the same clock).
    pub fn now_ns(&self) -> u64 {
        nanos(self.epoch.elapsed())
    }

    /// One reception with sequence number `seq` (a gap, a repeat or a step
    /// back counts as out of order).
    pub fn hit(&self, seq: u64) {
        if seq != self.next_seq.load(Ordering::Relaxed) {
            self.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        self.next_seq.store(seq + 1, Ordering::Relaxed);
        self.last_ns.store(self.now_ns(), Ordering::Relaxed);
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            *lock(&self.done) = true;
            self.cv.notify_all();
        }
    }

    /// The receiver stopped early with `e` (its read timed out, its
    /// connection ended, or what came did not decode).
    pub fn stop(&self, e: &Error) {
        let how = if is_timeout(e) {
            Ended::TimedOut
        } else if is_io(e) {
            Ended::Disconnected
        } else {
            Ended::Failed
        };
        *lock(&self.stopped) = Some((e.to_string(), how));
        let _done = lock(&self.done);
        self.cv.notify_all();
    }

    /// Receptions so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Waits until `expected` notifications arrived, or nothing arrived for
    /// `idle`.
    pub fn wait(&self, expected: u64, idle: Duration) -> Waited {
        let mut seen = self.count();
        let mut since = Instant::now();
        let mut done = lock(&self.done);
        loop {
            let now = self.count();
            if now >= expected {
                return Waited::Complete;
            }
            match &*lock(&self.stopped) {
                Some((_, Ended::TimedOut)) => return Waited::Idle,
                Some(_) => return Waited::Stopped,
                None => {}
            }
            if now != seen {
                seen = now;
                since = Instant::now();
            } else if since.elapsed() >= idle {
                return Waited::Idle;
            }
            done = self
                .cv
                .wait_timeout(done, Duration::from_millis(10))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Waits for the receiver (see [`Tally::wait`]) and returns the
    /// result of the burst whose sender started at `start_ns` (on this
    /// tally's clock), wrote `sent` and ended with `sender`.
    pub fn finish(&self, start_ns: u64, sent: u64, sender: &Res<()>, idle: Duration) -> Burst {
        let waited = self.wait(sent, idle);
        self.result(start_ns, sent, sender, waited)
    }

    /// The result so far; `waited` is how waiting for the receiver
    /// ended. A sender or receiver whose connection failed (not timed
    /// out) counts as a disconnect the clients saw.
    fn result(&self, start_ns: u64, sent: u64, sender: &Res<()>, waited: Waited) -> Burst {
        let n = self.target;
        let delivered = self.count();
        let last = self.last_ns.load(Ordering::Relaxed);
        let mut notes = Vec::new();
        let mut client_disconnects = 0;
        if let Err(e) = sender {
            notes.push(format!("sender stopped after {sent} of {n}: {e}"));
            client_disconnects += u64::from(!is_timeout(e) && is_io(e));
        }
        match waited {
            Waited::Complete => {}
            Waited::Idle => notes.push(format!(
                "receiver saw nothing for the idle time: {delivered} of {sent} sent arrived"
            )),
            Waited::Stopped => {
                if let Some((why, how)) = &*lock(&self.stopped) {
                    notes.push(format!(
                        "receiver stopped after {delivered} of {sent} sent: {why}"
                    ));
                    client_disconnects += u64::from(*how == Ended::Disconnected);
                }
            }
        }
        Burst {
            n,
            sent,
            delivered,
            out_of_order: self.out_of_order.load(Ordering::Relaxed),
            unicast_errors: None,
            server_disconnects: None,
            client_disconnects,
            server_peak_kib: None,
            secs: last.saturating_sub(start_ns) as f64 / 1e9,
            notes,
        }
    }
}

/// Starts B's receiving thread: `next` reads one notification and returns
/// its sequence number; the thread reads until `tally` has all it
/// expects, or `next` fails (recorded with [`Tally::stop`]).
pub fn spawn_receiver(
    name: &str,
    tally: &Arc<Tally>,
    mut next: impl FnMut() -> Res<u64> + Send + 'static,
) -> Res<JoinHandle<()>> {
    let tally = Arc::clone(tally);
    Ok(thread::Builder::new()
        .name(name.into())
        .stack_size(STACK)
        .spawn(move || {
            while tally.count() < tally.target {
                match next() {
                    Ok(seq) => tally.hit(seq),
                    Err(e) => return tally.stop(&e),
                }
            }
        })?)
}

/// Sends the burst of `n`: `send(i)` for each index until one fails.
/// Returns how many were sent and how sending ended.
pub fn send_all(n: u64, mut send: impl FnMut(u64) -> Res<()>) -> (u64, Res<()>) {
    for i in 0..n {
        if let Err(e) = send(i) {
            return (i, Err(e));
        }
    }
    (n, Ok(()))
}

/// The result of one burst (or the sum of several rounds).
#[derive(Debug, Clone, Default)]
pub struct Burst {
    /// Notifications the sender was to send.
    pub n: u64,
    /// Notifications the sender's writes took.
    pub sent: u64,
    /// Notifications B received.
    pub delivered: u64,
    /// Receptions out of sequence (gaps, repeats).
    pub out_of_order: u64,
    /// Unicast errors the server sent back (its exit statistics; `None`
    /// where the system has none or did not say).
    pub unicast_errors: Option<u64>,
    /// Connections the server ended (its exit statistics or log; `None`
    /// where it does not say).
    pub server_disconnects: Option<u64>,
    /// Connections the clients saw end (a reset, an end of stream).
    pub client_disconnects: u64,
    /// The server's peak resident set size at the end, in KiB (the
    /// largest of the rounds; `None` for the floor, which runs in the
    /// bench).
    pub server_peak_kib: Option<u64>,
    /// From the first send to the last reception.
    pub secs: f64,
    /// What went wrong, in words (empty for a clean run).
    pub notes: Vec<String>,
}

impl Burst {
    /// Adds another round.
    pub fn add(&mut self, other: Burst) {
        fn sum(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
            }
        }
        self.n += other.n;
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.out_of_order += other.out_of_order;
        self.unicast_errors = sum(self.unicast_errors, other.unicast_errors);
        self.server_disconnects = sum(self.server_disconnects, other.server_disconnects);
        self.client_disconnects += other.client_disconnects;
        self.server_peak_kib = self.server_peak_kib.max(other.server_peak_kib);
        self.secs += other.secs;
        self.notes.extend(other.notes);
    }

    /// Notifications that did not arrive (never sent included).
    pub fn lost(&self) -> u64 {
        self.n.saturating_sub(self.delivered)
    }

    /// Disconnects: the larger of what the server and the clients saw
    /// (they count the same events from two sides).
    pub fn disconnects(&self) -> u64 {
        self.server_disconnects
            .unwrap_or(0)
            .max(self.client_disconnects)
    }

    /// Deliveries per second.
    pub fn per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.delivered as f64 / self.secs
        } else {
            0.0
        }
    }

    /// Nothing lost, nothing out of order, no unicast error, nobody
    /// disconnected.
    pub fn clean(&self) -> bool {
        self.lost() == 0
            && self.out_of_order == 0
            && self.unicast_errors.unwrap_or(0) == 0
            && self.disconnects() == 0
    }
}

/// Whether an error is an I/O error (a decoding error is not).
fn is_io(e: &Error) -> bool {
    e.downcast_ref::<std::io::Error>().is_some()
}

/// Whether a failed read or write timed out (the idle time passed)
/// rather than found the connection ended.
pub fn is_timeout(e: &Error) -> bool {
    e.downcast_ref::<std::io::Error>().is_some_and(|e| {
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    })
}
