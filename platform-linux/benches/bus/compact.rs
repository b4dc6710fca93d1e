//! (b) nfy through `notifysvc` with our client library over its Unix
//! socket (compact encoding); the same over TCP or TLS on loopback for
//! issue 16's rows (the address is the caller's).
//!
//! Every run uses fresh app IDs, so a connection of an earlier run that
//! the server has not yet seen close never receives this run's traffic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nfy_linux::client::{Client, ServerAddr};

use crate::burst::{self, Burst, Tally};
use crate::common::{
    err, finish, finish_fanout, fresh_id, lock, nanos, wait_window, Counter, Rate, Res, PARAM,
    STALL,
};

fn connect(socket: &ServerAddr, app: &str) -> Res<Client> {
    let c = Client::connect_to(socket.clone())?;
    c.set_app_id(app)?;
    Ok(c)
}

/// The ping-pong's shared state: A's callback times each round trip and
/// sends the next ping itself (no extra hop through the main thread).
struct Pong {
    t0: Instant,
    left: usize,
    warmup: usize,
    samples: Vec<u64>,
    failed: Option<String>,
}

/// Round trips: A notifies B ("ping"), B's callback notifies A ("pong"),
/// A's callback takes the time and sends the next ping.
pub fn rtt(socket: &ServerAddr, warmup: usize, n: usize) -> Res<Vec<u64>> {
    let run = fresh_id();
    let (a_id, b_id) = (format!("a{run}"), format!("b{run}"));
    let a = connect(socket, &a_id)?;
    let b = connect(socket, &b_id)?;
    let shared = Arc::new((
        Mutex::new(Pong {
            t0: Instant::now(),
            left: warmup + n,
            warmup,
            samples: Vec::with_capacity(n),
            failed: None,
        }),
        Condvar::new(),
    ));
    let b2 = b.clone();
    let a_for_b = a_id.clone();
    let _rb = b.register("ping", 0, move |_| {
        let _ = b2.notify_raw(&a_for_b, "pong", PARAM);
    })?;
    let a2 = a.clone();
    let b_for_a = b_id.clone();
    let s2 = Arc::clone(&shared);
    let _ra = a.register("pong", 0, move |_| {
        let (m, cv) = &*s2;
        let mut st = lock(m);
        let took = nanos(st.t0.elapsed());
        st.left = st.left.saturating_sub(1);
        if st.warmup > 0 {
            st.warmup -= 1;
        } else {
            st.samples.push(took);
        }
        if st.left == 0 {
            cv.notify_all();
            return;
        }
        st.t0 = Instant::now();
        drop(st);
        if let Err(e) = a2.notify_raw(&b_for_a, "ping", PARAM) {
            let mut st = lock(m);
            st.failed = Some(e.to_string());
            st.left = 0;
            cv.notify_all();
        }
    })?;
    a.sync()?;
    b.sync()?;
    {
        let (m, _) = &*shared;
        lock(m).t0 = Instant::now();
    }
    a.notify_raw(&b_id, "ping", PARAM)?;
    let (m, cv) = &*shared;
    let deadline = Instant::now() + STALL;
    let mut st = lock(m);
    while st.left > 0 {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        st = cv
            .wait_timeout(st, deadline - now)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
    let result = match (&st.failed, st.left) {
        (Some(e), _) => Err(err(format!("rtt: notify failed: {e}"))),
        (None, 0) => Ok(std::mem::take(&mut st.samples)),
        (None, left) => Err(err(format!("rtt stalled with {left} round trips to go"))),
    };
    drop(st);
    a.close();
    b.close();
    result
}

/// Notifications per [`nfy_linux::client::Batch`] of the batched runs.
pub const BATCH: u64 = 32;

/// A sends `n` notifications one way to B; B's callback counts. With
/// `batched`, A sends them in [`Client::batch`]es of [`BATCH`].
pub fn throughput(socket: &ServerAddr, n: u64, window: u64, batched: bool) -> Res<Rate> {
    let run = fresh_id();
    let b_id = format!("b{run}");
    let a = connect(socket, &format!("a{run}"))?;
    let b = connect(socket, &b_id)?;
    let counter = Arc::new(Counter::new(n));
    let c2 = Arc::clone(&counter);
    let _rb = b.register("t", 0, move |_| c2.hit())?;
    let errors = Arc::new(AtomicU64::new(0));
    let e2 = Arc::clone(&errors);
    let _h = a.on_unicast_error(move |_| {
        e2.fetch_add(1, Ordering::Relaxed);
    });
    b.sync()?;
    a.sync()?;
    let start = Instant::now();
    let mut batch = a.batch();
    for sent in 0..n {
        if !batched {
            wait_window(sent, window, || {
                counter.get() + errors.load(Ordering::Relaxed)
            })?;
            a.notify_raw(&b_id, "t", PARAM)?;
            continue;
        }
        if sent % BATCH == 0 {
            batch.send()?;
            wait_window(sent, window, || {
                counter.get() + errors.load(Ordering::Relaxed)
            })?;
        }
        batch.notify_raw(&b_id, "t", PARAM)?;
    }
    batch.send()?;
    let done = counter.wait(STALL);
    let rate = finish(start, done, n, counter.get());
    report_losses("throughput", &b, errors.load(Ordering::Relaxed));
    a.close();
    b.close();
    Ok(rate)
}

/// A broadcasts `n` notifications; `receivers` clients count them. With
/// `batched`, A sends them in [`Client::batch`]es of [`BATCH`].
pub fn fanout(
    socket: &ServerAddr,
    n: u64,
    receivers: usize,
    window: u64,
    batched: bool,
) -> Res<Rate> {
    let run = fresh_id();
    let a = connect(socket, &format!("a{run}"))?;
    let mut members = Vec::new();
    for i in 0..receivers {
        let c = connect(socket, &format!("r{run}-{i}"))?;
        let counter = Arc::new(Counter::new(n));
        let c2 = Arc::clone(&counter);
        let reg = c.register("f", 0, move |_| c2.hit())?;
        c.sync()?;
        members.push((c, counter, reg));
    }
    a.sync()?;
    let slowest = || members.iter().map(|(_, c, _)| c.get()).min().unwrap_or(0);
    let start = Instant::now();
    let mut batch = a.batch();
    for sent in 0..n {
        if !batched {
            wait_window(sent, window, slowest)?;
            a.notify_raw("*", "f", PARAM)?;
            continue;
        }
        if sent % BATCH == 0 {
            batch.send()?;
            wait_window(sent, window, slowest)?;
        }
        batch.notify_raw("*", "f", PARAM)?;
    }
    batch.send()?;
    let rate = finish_fanout(start, n, members.iter().map(|(_, c, _)| &**c));
    for (c, _, reg) in members {
        report_losses("fanout", &c, 0);
        drop(reg);
        c.close();
    }
    a.close();
    Ok(rate)
}

/// How the burst's sender hands its notifications to the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BurstSender {
    /// One `Client::notify` per notification (one write each).
    PerCall,
    /// `Client::batch`, sent every so many notifications.
    Batch(u64),
}

/// The burst: A sends `n` notifications to B as fast as it can (a
/// `Serialize` parameter, as an application passes it); B's callback
/// decodes each parameter.
pub fn burst(socket: &ServerAddr, n: u64, idle: Duration, sender: BurstSender) -> Res<Burst> {
    let run = fresh_id();
    let b_id = format!("b{run}");
    let a = connect(socket, &format!("a{run}"))?;
    let b = connect(socket, &b_id)?;
    let tally = Arc::new(Tally::new(n));
    let t2 = Arc::clone(&tally);
    let _rb = b.register("t", 0, move |d| {
        match burst::decode_seq(d.parameter.as_bytes()) {
            Ok(seq) => t2.hit(seq),
            Err(e) => t2.stop(&e),
        }
    })?;
    let errors = Arc::new(AtomicU64::new(0));
    let e2 = Arc::clone(&errors);
    let _h = a.on_unicast_error(move |_| {
        e2.fetch_add(1, Ordering::Relaxed);
    });
    b.sync()?;
    a.sync()?;
    let start = tally.now_ns();
    let (sent, sending) = match sender {
        BurstSender::PerCall => {
            burst::send_all(n, |i| Ok(a.notify(&b_id, "t", &burst::Param::at(i))?))
        }
        BurstSender::Batch(every) => {
            let mut batch = a.batch();
            let (mut sent, mut sending) = burst::send_all(n, |i| {
                batch.notify(&b_id, "t", &burst::Param::at(i))?;
                if (i + 1) % every.max(1) == 0 {
                    batch.send()?;
                }
                Ok(())
            });
            // What the batch still holds has not been written yet.
            sent -= batch.len() as u64;
            if sending.is_ok() {
                sending = batch.send().map(|_| ()).map_err(Into::into);
                sent = n;
            }
            (sent, sending)
        }
    };
    let result = tally.finish(start, sent, &sending, idle);
    let what = match sender {
        BurstSender::PerCall => "burst, per call",
        BurstSender::Batch(_) => "burst, batched",
    };
    report_losses(what, &b, errors.load(Ordering::Relaxed));
    a.close();
    b.close();
    Ok(result)
}

fn report_losses(what: &str, receiver: &Client, unicast_errors: u64) {
    let dropped = receiver.dropped_deliveries();
    if dropped > 0 || unicast_errors > 0 {
        eprintln!(
            "bus: {what} (nfy compact): {dropped} deliveries dropped at the receiver, \
             {unicast_errors} unicast errors"
        );
    }
}
