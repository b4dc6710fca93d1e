//! Pieces every system's workloads share: the error type, the payload,
//! CPU pinning, result types and waiting helpers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The benchmark's error: a message is all a failed run needs to say.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// The benchmark's result.
pub type Res<T> = Result<T, Error>;

/// An error from a message.
pub fn err(msg: impl Into<String>) -> Error {
    msg.into().into()
}

/// The 64-byte JSON parameter every notification carries (issue 6).
pub const PARAM: &str = r#"{"amount":12345,"currency":"EUR","terminal":"T-0001","seq":1234}"#;

/// How long any one wait may take before a run is declared stalled.
pub const STALL: Duration = Duration::from_secs(60);

/// Locks, ignoring poisoning (a panicking callback must not hide the
/// figures of the others).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fresh number, for app IDs and floor addresses that no earlier run used
/// (an old connection the server has not yet seen close must not receive a
/// later run's traffic).
pub fn fresh_id() -> u32 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    u32::try_from(NEXT.fetch_add(1, Ordering::Relaxed)).unwrap_or(u32::MAX)
}

/// The CPUs the benchmark may use unpinned (its affinity at start-up).
pub struct Cpus {
    all: CpuSet,
}

impl Cpus {
    /// Records the current affinity.
    pub fn capture() -> Res<Cpus> {
        Ok(Cpus {
            all: sched_getaffinity(Pid::from_raw(0))?,
        })
    }

    /// How many CPUs the benchmark may use.
    pub fn count(&self) -> usize {
        (0..CpuSet::count())
            .filter(|&c| self.all.is_set(c).unwrap_or(false))
            .count()
    }

    /// The first CPU the benchmark may use (the one everything is pinned to).
    pub fn first(&self) -> usize {
        (0..CpuSet::count())
            .find(|&c| self.all.is_set(c).unwrap_or(false))
            .unwrap_or(0)
    }

    /// Pins the calling thread to the first CPU (`pinned`) or lets it use
    /// all of them. Threads it creates afterwards inherit the setting, and so
    /// do the processes it spawns.
    pub fn apply(&self, pinned: bool) -> Res<()> {
        let set = if pinned {
            let mut one = CpuSet::new();
            one.set(self.first())?;
            one
        } else {
            self.all
        };
        sched_setaffinity(Pid::from_raw(0), &set)?;
        Ok(())
    }
}

/// One rate measurement: `items` delivered in `secs`, `lost` never arrived.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rate {
    /// Deliveries counted at the receivers.
    pub items: u64,
    /// From the first send to the last reception.
    pub secs: f64,
    /// Sent but not received (must be 0).
    pub lost: u64,
}

impl Rate {
    /// Adds another run (rates of several rounds combine as total items
    /// over total time).
    pub fn add(&mut self, other: Rate) {
        self.items += other.items;
        self.secs += other.secs;
        self.lost += other.lost;
    }

    /// Deliveries per second.
    pub fn per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.items as f64 / self.secs
        } else {
            0.0
        }
    }
}

/// Counts receptions and remembers when the expected number was reached.
#[derive(Debug)]
pub struct Counter {
    count: AtomicU64,
    target: u64,
    done: Mutex<Option<Instant>>,
    cv: Condvar,
}

impl Counter {
    /// A counter that is done at `target`.
    pub fn new(target: u64) -> Counter {
        Counter {
            count: AtomicU64::new(0),
            target,
            done: Mutex::new(None),
            cv: Condvar::new(),
        }
    }

    /// One more reception.
    pub fn hit(&self) {
        let n = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        if n == self.target {
            *lock(&self.done) = Some(Instant::now());
            self.cv.notify_all();
        }
    }

    /// Receptions so far.
    pub fn get(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Waits until the target is reached (`Some(when)`) or `timeout`
    /// passed (`None`).
    pub fn wait(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        let mut done = lock(&self.done);
        while done.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            done = self
                .cv
                .wait_timeout(done, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        *done
    }
}

/// Waits until fewer than `window` of the `sent` items are unreceived
/// (flow control of the one-way workloads: no broker offers end-to-end
/// back-pressure, so a sender that outruns its receiver would only measure
/// queue limits). `received` is the slowest receiver's count.
pub fn wait_window(sent: u64, window: u64, received: impl Fn() -> u64) -> Res<()> {
    if sent.saturating_sub(received()) < window {
        return Ok(());
    }
    let start = Instant::now();
    while sent.saturating_sub(received()) >= window {
        if start.elapsed() > STALL {
            return Err(err(format!(
                "stalled: {} of {sent} received after {:?}",
                received(),
                STALL
            )));
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    Ok(())
}

/// The rate of a one-way run: `expected` items from `start` to `done`
/// (`None`: stalled, then the loss says how many never came).
pub fn finish(start: Instant, done: Option<Instant>, expected: u64, received: u64) -> Rate {
    let end = done.unwrap_or_else(Instant::now);
    Rate {
        items: received.min(expected),
        secs: end.duration_since(start).as_secs_f64(),
        lost: expected.saturating_sub(received),
    }
}

/// The rate of a fanout run started at `start`: waits for every
/// receiver's counter (each expecting `n`), then counts from `start` to
/// the last reception.
pub fn finish_fanout<'a>(
    start: Instant,
    n: u64,
    counters: impl IntoIterator<Item = &'a Counter>,
) -> Rate {
    let mut last = Some(start);
    let (mut received, mut expected) = (0, 0);
    for c in counters {
        last = match (last, c.wait(STALL)) {
            (Some(l), Some(d)) => Some(l.max(d)),
            _ => None,
        };
        received += c.get();
        expected += n;
    }
    finish(start, last, expected, received)
}

/// Converts a duration to whole nanoseconds (saturating).
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
