//! The callback pool: a fixed number of worker threads running callbacks,
//! one mailbox per subscriber.
//!
//! A `Sub` (subscriber) is one registration, observer or unicast-error
//! handler: its callback and a mailbox of pending events. The I/O layer
//! `Pool::submit`s events; a subscriber with pending events is in the
//! pool's ready queue at most once, so it runs on at most one worker at a
//! time and its events run in arrival order (per-registration ordering,
//! spec 2.7), while different subscribers run concurrently on the
//! [`WORKERS`] threads. A worker runs up to [`TURN`] events of one
//! subscriber per turn and then puts it back at the end of the ready queue
//! if it has more, so a busy registration does not starve the others. No
//! thread is ever spawned per event.
//!
//! # Who reads, who runs
//!
//! An idle worker parks in the I/O layer (`Hooks::park`), which on Linux
//! also waits for the connection's input: the worker woken by input reads
//! it (`Hooks::io`), submits the events and then runs the first ready
//! subscriber itself, so a notification costs one thread wake-up, not two
//! (a receiving thread's and then a worker's; docs/performance.md, R2).
//! Another parked worker is woken (`Hooks::unpark`) only when more
//! subscribers are ready than workers are on their way to the queue.
//!
//! # Removal guarantees
//!
//! `Sub::retire` marks a subscriber removed (no event is accepted or run
//! afterwards) and hands back the events still queued (the caller returns
//! the unicasts among them to the server). `Sub::wait_idle` then waits
//! for the invocation in flight, unless it is the calling thread's own: a
//! worker records its thread in the subscriber while it runs the callback
//! (the "being run here" marker), so a callback that unregisters itself
//! returns at once instead of deadlocking (spec 3, **Beyond**).
//!
//! # Memory bound
//!
//! At most [`MAX_PENDING`] events wait in all mailboxes of one client. Past
//! that, `Pool::submit` refuses: the I/O layer sends refused unicasts back
//! to the server (which re-routes them or returns a unicast error to their
//! sender, so nothing is silently lost) and counts refused broadcasts and
//! observer events as dropped. Reading never blocks on a slow callback.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::Duration;

use super::event::{run, Event, Handler};
use super::ident::Ident;

/// Worker threads per client.
pub const WORKERS: usize = 4;

/// Events waiting in all mailboxes of one client, at most.
pub const MAX_PENDING: usize = 65_536;

/// Events of one subscriber a worker runs before it lets the others have a
/// turn.
pub const TURN: usize = 32;

/// How long what the I/O layer holds back (the client's acks) may wait
/// for a write to carry it once a worker ran dry (`Hooks::linger`).
pub const LINGER: Duration = Duration::from_millis(1);

/// How a parked worker was woken (see [`Hooks::park`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The I/O layer has input for this worker to read: the worker calls
    /// [`Hooks::io`] and then looks for ready subscribers first.
    Readable,
    /// It took one wake-up sent by [`Hooks::unpark`].
    Kicked,
    /// Anything else (the pool may have stopped; a spurious wake-up).
    Other,
}

/// What the I/O layer does around the callbacks, and how idle workers
/// wait: the pool keeps the mailboxes and decides who runs what; the I/O
/// layer parks and wakes its threads (on Linux, an epoll instance that
/// also holds the connection's socket, so a parked worker is the one that
/// reads: `super::ready_poll`).
pub(crate) trait Hooks {
    /// Called after each event's callback returned (or panicked), outside
    /// every lock (the I/O layer acknowledges unicasts here), unless the
    /// callback acknowledges by itself (`Handler::acks_on_return`).
    fn done(&self, event: &Event);

    /// True when the I/O layer holds something back that [`Hooks::flush`]
    /// sends: a worker that runs out of events then calls
    /// [`Hooks::linger`] before it parks.
    fn unflushed(&self) -> bool {
        false
    }

    /// Sends what was held back.
    fn flush(&self) {}

    /// A worker ran dry while something is held back: send it within
    /// [`LINGER`] unless a write takes it along first. The default sends
    /// it now. (A timed park would arm a timer on nearly every park, which
    /// showed as a slow mode of the round trip on our VM; the Linux client
    /// lets its link thread keep one deadline instead.)
    fn linger(&self) {
        self.flush();
    }

    /// Parks the calling worker until [`Hooks::unpark`] wakes it (one
    /// wake-up per call, kept when nobody waits yet) or input is ready for
    /// it ([`Wake::Readable`]).
    fn park(&self) -> Wake;

    /// Wakes one parked worker (or the next one to park).
    fn unpark(&self);

    /// Wakes every parked worker for good (the pool stops).
    fn unpark_all(&self);

    /// Reads the input [`Hooks::park`] reported, on the worker that was
    /// woken for it; events it submits are then run by that worker first.
    fn io(&self) {}

    /// Every worker has left [`Hooks::park`]: nobody waits for input any
    /// more until one comes back (the I/O layer may read meanwhile).
    fn saturated(&self) {}
}

struct SubInner {
    handler: Handler,
    ident: Ident,
    /// Bumped when the callback is replaced.
    generation: u64,
    queue: VecDeque<Event>,
    /// In the ready queue or running.
    scheduled: bool,
    /// The worker running the callback and the generation it runs.
    running: Option<(ThreadId, u64)>,
    /// Threads in [`Sub::wait_idle`] (the end of a callback notifies only
    /// when there are some: a futex call per event otherwise).
    waiters: usize,
    removed: bool,
}

/// A subscriber: one callback and its mailbox.
pub(crate) struct Sub {
    inner: Mutex<SubInner>,
    idle: Condvar,
}

/// Locks, ignoring poisoning: the data under every lock of the client stays
/// consistent when a callback panics (callbacks run outside the locks).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sub {
    /// A new subscriber.
    pub(crate) fn new(handler: Handler, ident: Ident) -> Arc<Self> {
        Arc::new(Sub {
            inner: Mutex::new(SubInner {
                handler,
                ident,
                generation: 0,
                queue: VecDeque::new(),
                scheduled: false,
                running: None,
                waiters: 0,
                removed: false,
            }),
            idle: Condvar::new(),
        })
    }

    /// The current callback generation.
    pub(crate) fn generation(&self) -> u64 {
        lock(&self.inner).generation
    }

    /// The ADK identity of the current callback.
    pub(crate) fn ident(&self) -> Ident {
        lock(&self.inner).ident
    }

    /// Replaces the callback (re-registration); queued events will run the
    /// new one. Returns the new generation.
    pub(crate) fn replace(&self, handler: Handler, ident: Ident) -> u64 {
        let mut g = lock(&self.inner);
        g.handler = handler;
        g.ident = ident;
        g.generation += 1;
        g.generation
    }

    /// Marks the subscriber removed and returns the events it had queued.
    /// From now on it accepts and runs nothing.
    pub(crate) fn retire(&self, pool: &Pool) -> Vec<Event> {
        let mut g = lock(&self.inner);
        g.removed = true;
        let drained: Vec<Event> = g.queue.drain(..).collect();
        pool.pending.fetch_sub(drained.len(), Ordering::AcqRel);
        drained
    }

    /// Waits until no invocation of a generation below `below` is running
    /// (all generations: `u64::MAX`), except one running on this thread.
    pub(crate) fn wait_idle(&self, below: u64) {
        let me = thread::current().id();
        let mut g = lock(&self.inner);
        while g
            .running
            .is_some_and(|(t, generation)| t != me && generation < below)
        {
            g.waiters += 1;
            g = self.idle.wait(g).unwrap_or_else(|p| p.into_inner());
            g.waiters -= 1;
        }
    }
}

struct Ready {
    subs: VecDeque<Arc<Sub>>,
    stop: bool,
    /// Workers in [`Hooks::park`].
    sleeping: usize,
    /// Wake-ups sent ([`Hooks::unpark`]) and not yet taken.
    waking: usize,
    /// Workers reading input ([`Hooks::io`]) that look for ready
    /// subscribers right after.
    returning: usize,
}

/// Why [`Pool::submit`] refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The subscriber was removed.
    Removed,
    /// [`MAX_PENDING`] events are already waiting.
    Full,
}

/// The pool's shared state; the worker threads are spawned by the I/O
/// layer with [`Pool::run_worker`].
pub(crate) struct Pool {
    ready: Mutex<Ready>,
    pending: AtomicUsize,
    panics: AtomicU64,
}

impl Pool {
    /// An empty pool.
    pub(crate) fn new() -> Self {
        Pool {
            ready: Mutex::new(Ready {
                subs: VecDeque::new(),
                stop: false,
                sleeping: 0,
                waking: 0,
                returning: 0,
            }),
            pending: AtomicUsize::new(0),
            panics: AtomicU64::new(0),
        }
    }

    /// Callbacks that panicked so far (the panic is caught; the worker
    /// goes on).
    pub(crate) fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// True while no worker is parked (all run callbacks or read), once
    /// the workers started.
    pub(crate) fn saturated(&self) -> bool {
        let g = lock(&self.ready);
        g.sleeping == 0 && !g.stop
    }

    /// Queues `event` for `sub`; `hooks` wake a worker for it if needed.
    pub(crate) fn submit(
        &self,
        sub: &Arc<Sub>,
        event: Event,
        hooks: &impl Hooks,
    ) -> Result<(), Refused> {
        let mut g = lock(&sub.inner);
        if g.removed {
            return Err(Refused::Removed);
        }
        if self.pending.load(Ordering::Acquire) >= MAX_PENDING {
            return Err(Refused::Full);
        }
        g.queue.push_back(event);
        self.pending.fetch_add(1, Ordering::AcqRel);
        if !g.scheduled {
            g.scheduled = true;
            drop(g);
            self.schedule(Arc::clone(sub), hooks, 0);
        }
        Ok(())
    }

    /// Puts `sub` on the ready queue and wakes a parked worker when there
    /// are more ready subscribers than workers on their way to the queue
    /// (woken ones, readers that come back to it, and `coming` more: the
    /// caller itself when it is a worker). A worker busy with a callback
    /// comes back to the queue by itself.
    fn schedule(&self, sub: Arc<Sub>, hooks: &impl Hooks, coming: usize) {
        let mut g = lock(&self.ready);
        g.subs.push_back(sub);
        if g.sleeping > g.waking && g.subs.len() > g.waking + g.returning + coming {
            g.waking += 1;
            drop(g);
            hooks.unpark();
        }
    }

    /// Stops the workers (events still queued are discarded).
    pub(crate) fn stop(&self, hooks: &impl Hooks) {
        lock(&self.ready).stop = true;
        hooks.unpark_all();
    }

    /// A worker thread's loop; returns when the pool stops. `hooks` are
    /// called around the callbacks and park the worker when there is
    /// nothing to run: see [`Hooks`].
    pub(crate) fn run_worker(&self, hooks: &impl Hooks) {
        let me = thread::current().id();
        loop {
            {
                let mut g = lock(&self.ready);
                if g.stop {
                    return;
                }
                if let Some(sub) = g.subs.pop_front() {
                    drop(g);
                    if self.run_turn(&sub, me, hooks) {
                        self.schedule(sub, hooks, 1);
                    }
                    continue;
                }
                g.sleeping += 1;
            }
            // More events soon carry what is held back for free (the next
            // write takes it along); if none come, it goes on its own.
            if hooks.unflushed() {
                hooks.linger();
            }
            let wake = hooks.park();
            let mut g = lock(&self.ready);
            g.sleeping -= 1;
            let saturated = g.sleeping == 0 && !g.stop;
            match wake {
                Wake::Kicked => g.waking = g.waking.saturating_sub(1),
                Wake::Readable => {
                    g.returning += 1;
                    drop(g);
                    if saturated {
                        hooks.saturated();
                    }
                    hooks.io();
                    let mut g = lock(&self.ready);
                    g.returning -= 1;
                    continue;
                }
                Wake::Other => {}
            }
            drop(g);
            if saturated {
                hooks.saturated();
            }
        }
    }

    /// Runs up to [`TURN`] queued events of `sub`; true when it still has
    /// some (it stays scheduled and must go back on the ready queue).
    fn run_turn(&self, sub: &Sub, me: ThreadId, hooks: &impl Hooks) -> bool {
        let mut g = lock(&sub.inner);
        for _ in 0..TURN {
            if g.removed {
                break;
            }
            let Some(event) = g.queue.pop_front() else {
                break;
            };
            self.pending.fetch_sub(1, Ordering::AcqRel);
            g.running = Some((me, g.generation));
            let handler = g.handler.clone();
            drop(g);
            let outcome = catch_unwind(AssertUnwindSafe(|| run(&handler, &event)));
            if outcome.is_err() {
                self.panics.fetch_add(1, Ordering::Relaxed);
            }
            if handler.acks_on_return() {
                hooks.done(&event);
            }
            g = lock(&sub.inner);
            g.running = None;
            if g.waiters > 0 {
                sub.idle.notify_all();
            }
        }
        if g.queue.is_empty() || g.removed {
            g.scheduled = false;
            false
        } else {
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::event::Incoming;
    use crate::client::Delivery;
    use nfy_core::{AppId, Destination, NotificationId};
    use std::sync::mpsc;
    use std::sync::Barrier;
    use std::time::Duration;

    const LONG: Duration = Duration::from_secs(10);

    /// Parks on a condvar (the pool's tests have no socket): a counting
    /// semaphore of wake-ups, a count of input to read (each wakes one
    /// parked worker with [`Wake::Readable`]), and a stop flag.
    #[derive(Default)]
    struct Park {
        state: Mutex<ParkState>,
        cv: Condvar,
    }

    #[derive(Default)]
    struct ParkState {
        permits: usize,
        input: usize,
        stop: bool,
        /// Wake-ups sent with `unpark`.
        unparks: usize,
        /// Workers in `park` now.
        parked: usize,
    }

    impl Park {
        fn park(&self) -> Wake {
            let mut g = lock(&self.state);
            g.parked += 1;
            while !g.stop && g.permits == 0 && g.input == 0 {
                g = self.cv.wait(g).unwrap();
            }
            g.parked -= 1;
            if g.stop {
                Wake::Other
            } else if g.input > 0 {
                g.input -= 1;
                Wake::Readable
            } else {
                g.permits -= 1;
                Wake::Kicked
            }
        }

        fn unpark(&self) {
            let mut g = lock(&self.state);
            g.permits += 1;
            g.unparks += 1;
            self.cv.notify_one();
        }

        fn unpark_all(&self) {
            lock(&self.state).stop = true;
            self.cv.notify_all();
        }

        /// Input arrives: one parked worker is to read it.
        fn input(&self) {
            lock(&self.state).input += 1;
            self.cv.notify_one();
        }
    }

    /// The parking methods of [`Hooks`], handed to the [`Park`] in field
    /// `$f`.
    macro_rules! parking {
        ($f:tt) => {
            fn park(&self) -> Wake {
                self.$f.park()
            }
            fn unpark(&self) {
                self.$f.unpark()
            }
            fn unpark_all(&self) {
                self.$f.unpark_all()
            }
        };
    }

    /// Hooks that only call a closure after each callback.
    struct Done<F>(F, Park);

    impl<F: Fn(&Event)> Hooks for Done<F> {
        fn done(&self, event: &Event) {
            (self.0)(event)
        }
        parking!(1);
    }

    type Noop = Done<fn(&Event)>;

    fn noop() -> Noop {
        Done(|_| {}, Park::default())
    }

    /// A pool, its hooks and `n` worker threads; stopped and joined on
    /// drop.
    struct Workers<H: Hooks + Send + Sync + 'static = Noop> {
        pool: Arc<Pool>,
        hooks: Arc<H>,
        threads: Vec<thread::JoinHandle<()>>,
    }

    impl Workers {
        fn start(n: usize) -> Self {
            Workers::with(Arc::new(Pool::new()), noop(), n)
        }
    }

    impl<H: Hooks + Send + Sync + 'static> Workers<H> {
        fn with(pool: Arc<Pool>, hooks: H, n: usize) -> Self {
            let hooks = Arc::new(hooks);
            let threads = (0..n)
                .map(|_| {
                    let (p, h) = (Arc::clone(&pool), Arc::clone(&hooks));
                    thread::spawn(move || p.run_worker(&*h))
                })
                .collect();
            Workers {
                pool,
                hooks,
                threads,
            }
        }

        fn submit(&self, sub: &Arc<Sub>, event: Event) -> Result<(), Refused> {
            self.pool.submit(sub, event, &*self.hooks)
        }
    }

    impl<H: Hooks + Send + Sync + 'static> Drop for Workers<H> {
        fn drop(&mut self) {
            self.pool.stop(&*self.hooks);
            for t in self.threads.drain(..) {
                t.join().unwrap();
            }
        }
    }

    fn ev(i: u32, to: &str) -> Event {
        Event::Notify(Arc::new(Incoming {
            from: AppId::new("s").unwrap(),
            to: Destination::parse(to).unwrap(),
            notification: NotificationId::new("n").unwrap(),
            flags: i,
            reference: Some(u64::from(i)),
            parameter: "{}".into(),
            ack_epoch: None,
        }))
    }

    fn sub(f: impl Fn(&Delivery<'_>) + Send + Sync + 'static) -> Arc<Sub> {
        Sub::new(Handler::Notify(Arc::new(f)), Ident::Closure)
    }

    #[test]
    fn per_subscriber_order_is_kept() {
        let w = Workers::start(WORKERS);
        let (tx, rx) = mpsc::channel();
        let subs: Vec<_> = (0..3u32)
            .map(|k| {
                let tx = tx.clone();
                sub(move |d| tx.send((k, d.flags)).unwrap())
            })
            .collect();
        for i in 0..500 {
            for s in &subs {
                w.submit(s, ev(i, "a")).unwrap();
            }
        }
        let mut next = [0u32; 3];
        for _ in 0..1500 {
            let (k, f) = rx.recv_timeout(LONG).unwrap();
            let slot = &mut next[k as usize];
            assert_eq!(f, *slot, "subscriber {k} out of order");
            *slot += 1;
        }
    }

    #[test]
    fn different_subscribers_run_concurrently() {
        let w = Workers::start(WORKERS);
        // Each callback waits until all WORKERS callbacks are inside: this
        // only completes if they run at the same time.
        let barrier = Arc::new(Barrier::new(WORKERS));
        let (tx, rx) = mpsc::channel();
        let subs: Vec<_> = (0..WORKERS)
            .map(|_| {
                let b = Arc::clone(&barrier);
                let tx = tx.clone();
                sub(move |_| {
                    b.wait();
                    tx.send(()).unwrap();
                })
            })
            .collect();
        for s in &subs {
            w.submit(s, ev(0, "a")).unwrap();
        }
        for _ in 0..WORKERS {
            rx.recv_timeout(LONG).unwrap();
        }
    }

    #[test]
    fn one_subscriber_never_runs_twice_at_once() {
        let w = Workers::start(WORKERS);
        let inside = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let i2 = Arc::clone(&inside);
        let s = sub(move |_| {
            assert_eq!(i2.fetch_add(1, Ordering::SeqCst), 0);
            thread::yield_now();
            i2.fetch_sub(1, Ordering::SeqCst);
            tx.send(()).unwrap();
        });
        for i in 0..200 {
            w.submit(&s, ev(i, "a")).unwrap();
        }
        for _ in 0..200 {
            rx.recv_timeout(LONG).unwrap();
        }
        assert_eq!(w.pool.panics(), 0);
    }

    #[test]
    fn retire_waits_for_the_running_callback_and_returns_queued_events() {
        let w = Workers::start(2);
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let finished = Arc::new(AtomicUsize::new(0));
        let f2 = Arc::clone(&finished);
        let s = sub(move |_| {
            entered_tx.send(()).unwrap();
            lock(&release_rx).recv().unwrap();
            f2.fetch_add(1, Ordering::SeqCst);
        });
        w.submit(&s, ev(0, "a")).unwrap();
        w.submit(&s, ev(1, "a")).unwrap();
        w.submit(&s, ev(2, "*")).unwrap();
        entered_rx.recv_timeout(LONG).unwrap();
        let drained = s.retire(&w.pool);
        assert_eq!(drained.len(), 2);
        assert_eq!(drained.iter().filter(|e| e.unicast().is_some()).count(), 1);
        assert!(matches!(w.submit(&s, ev(3, "a")), Err(Refused::Removed)));
        let waiter = {
            let s = Arc::clone(&s);
            let finished = Arc::clone(&finished);
            thread::spawn(move || {
                s.wait_idle(u64::MAX);
                finished.load(Ordering::SeqCst)
            })
        };
        release_tx.send(()).unwrap();
        // wait_idle returned only after the callback finished.
        assert_eq!(waiter.join().unwrap(), 1);
        // Nothing else ran.
        assert!(entered_rx.recv_timeout(Duration::from_millis(50)).is_err());
        assert_eq!(w.pool.pending.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn retiring_from_inside_the_callback_does_not_wait_for_itself() {
        let w = Workers::start(2);
        let pool = Arc::clone(&w.pool);
        let me: Arc<Mutex<Option<Arc<Sub>>>> = Arc::new(Mutex::new(None));
        let me2 = Arc::clone(&me);
        let (tx, rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let go_rx = Mutex::new(go_rx);
        let s = sub(move |d| {
            lock(&go_rx).recv().unwrap();
            if let Some(s) = lock(&me2).take() {
                s.retire(&pool);
                s.wait_idle(u64::MAX); // must not deadlock
            }
            tx.send(d.flags).unwrap();
        });
        *lock(&me) = Some(Arc::clone(&s));
        w.submit(&s, ev(0, "a")).unwrap();
        w.submit(&s, ev(1, "a")).unwrap();
        go_tx.send(()).unwrap();
        assert_eq!(rx.recv_timeout(LONG).unwrap(), 0);
        // The second event was drained by the retire: never runs.
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    }

    #[test]
    fn replacement_waits_for_the_old_callback_and_runs_queued_events_with_the_new_one() {
        let w = Workers::start(2);
        let (tx, rx) = mpsc::channel();
        let (entered_tx, entered_rx) = mpsc::channel();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate_rx = Mutex::new(gate_rx);
        let tx1 = tx.clone();
        let s = sub(move |d| {
            entered_tx.send(()).unwrap();
            lock(&gate_rx).recv().unwrap();
            tx1.send(("old", d.flags)).unwrap();
        });
        w.submit(&s, ev(0, "a")).unwrap();
        w.submit(&s, ev(1, "a")).unwrap();
        entered_rx.recv_timeout(LONG).unwrap();
        let tx2 = tx.clone();
        let generation = s.replace(
            Handler::Notify(Arc::new(move |d: &Delivery<'_>| {
                tx2.send(("new", d.flags)).unwrap()
            })),
            Ident::Closure,
        );
        assert_eq!(generation, 1);
        let waiter = {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                s.wait_idle(generation);
                tx.send(("waited", 0)).unwrap();
            })
        };
        gate_tx.send(()).unwrap();
        let got: Vec<_> = (0..3).map(|_| rx.recv_timeout(LONG).unwrap()).collect();
        waiter.join().unwrap();
        let pos = |x| got.iter().position(|g| *g == x).unwrap();
        assert!(pos(("old", 0)) < pos(("waited", 0)), "{got:?}");
        assert!(got.contains(&("new", 1)), "{got:?}");
    }

    #[test]
    fn full_pool_refuses() {
        let pool = Pool::new(); // no workers: nothing drains
        let hooks = noop();
        let s = sub(|_| {});
        for i in 0..MAX_PENDING {
            pool.submit(&s, ev(i as u32, "a"), &hooks).unwrap();
        }
        assert!(matches!(
            pool.submit(&s, ev(0, "a"), &hooks),
            Err(Refused::Full)
        ));
        assert_eq!(s.retire(&pool).len(), MAX_PENDING);
        assert_eq!(pool.pending.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_panicking_callback_does_not_kill_the_worker() {
        let w = Workers::start(1);
        let (tx, rx) = mpsc::channel();
        let s = sub(move |d| {
            if d.flags == 0 {
                panic!("callback panic (expected by the test)");
            }
            tx.send(d.flags).unwrap();
        });
        w.submit(&s, ev(0, "a")).unwrap();
        w.submit(&s, ev(1, "a")).unwrap();
        assert_eq!(rx.recv_timeout(LONG).unwrap(), 1);
        assert_eq!(w.pool.panics(), 1);
        s.retire(&w.pool);
        s.wait_idle(u64::MAX);
    }

    /// Hooks that hold back one item per event and report flushes.
    struct Holding {
        held: Mutex<usize>,
        flushed: Mutex<mpsc::Sender<usize>>,
        park: Park,
    }

    impl Hooks for Holding {
        fn done(&self, _: &Event) {
            *self.held.lock().unwrap() += 1;
        }
        fn unflushed(&self) -> bool {
            *self.held.lock().unwrap() > 0
        }
        fn flush(&self) {
            let n = std::mem::take(&mut *self.held.lock().unwrap());
            self.flushed.lock().unwrap().send(n).unwrap();
        }
        parking!(park);
    }

    #[test]
    fn a_worker_that_runs_dry_flushes_what_is_held_back_once() {
        let (tx, flushed) = mpsc::channel();
        let hooks = Holding {
            held: Mutex::new(0),
            flushed: Mutex::new(tx),
            park: Park::default(),
        };
        let w = Workers::with(Arc::new(Pool::new()), hooks, 1);
        let s = sub(|_| {});
        for i in 0..3 {
            w.submit(&s, ev(i, "a")).unwrap();
        }
        // However the three events were spread over turns, everything held
        // back is flushed once the pool has nothing left to run.
        let mut total = 0;
        while total < 3 {
            total += flushed.recv_timeout(LONG).unwrap();
        }
        assert_eq!(total, 3);
        assert!(
            flushed.recv_timeout(Duration::from_millis(50)).is_err(),
            "nothing more to flush"
        );
    }

    #[test]
    fn done_runs_after_each_callback_panicking_ones_included() {
        let (tx, rx) = mpsc::channel();
        let tx2 = Mutex::new(tx.clone());
        let hooks = Done(
            move |e: &Event| {
                if let Event::Notify(n) = e {
                    lock(&tx2).send(("done", n.flags)).unwrap();
                }
            },
            Park::default(),
        );
        let w = Workers::with(Arc::new(Pool::new()), hooks, 1);
        let s = sub(move |d| {
            tx.send(("callback", d.flags)).unwrap();
            if d.flags == 1 {
                panic!("callback panic (expected by the test)");
            }
        });
        for i in 0..3 {
            w.submit(&s, ev(i, "a")).unwrap();
        }
        let got: Vec<_> = (0..6).map(|_| rx.recv_timeout(LONG).unwrap()).collect();
        assert_eq!(
            got,
            [
                ("callback", 0),
                ("done", 0),
                ("callback", 1),
                ("done", 1),
                ("callback", 2),
                ("done", 2)
            ]
        );
    }

    /// Hooks whose input is one event for `sub` per [`Park::input`]: the
    /// worker woken for it records itself as the reader.
    struct Reading {
        pool: Arc<Pool>,
        sub: Arc<Sub>,
        park: Park,
        reader: Mutex<Vec<ThreadId>>,
    }

    impl Hooks for Reading {
        fn done(&self, _: &Event) {}
        parking!(park);
        fn io(&self) {
            lock(&self.reader).push(thread::current().id());
            self.pool.submit(&self.sub, ev(0, "a"), self).unwrap();
        }
    }

    #[test]
    fn the_worker_that_reads_runs_what_it_read_without_waking_another() {
        let pool = Arc::new(Pool::new());
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let sub = sub(move |_| tx.lock().unwrap().send(thread::current().id()).unwrap());
        let hooks = Reading {
            pool: Arc::clone(&pool),
            sub,
            park: Park::default(),
            reader: Mutex::new(Vec::new()),
        };
        let w = Workers::with(pool, hooks, WORKERS);
        let hooks = &w.hooks;
        for round in 0..20 {
            // Every worker parked: the one woken for the input is the only
            // one awake.
            while lock(&hooks.park.state).parked < WORKERS {
                thread::yield_now();
            }
            hooks.park.input();
            let ran_on = rx.recv_timeout(LONG).unwrap();
            assert_eq!(lock(&hooks.reader).last(), Some(&ran_on), "round {round}");
        }
        assert_eq!(lock(&hooks.park.state).unparks, 0, "no other worker woken");
    }
}
