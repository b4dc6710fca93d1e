//! What comes in: the inbound worker, one thread that owns every blocking
//! call on the local server.
//!
//! It takes notifications from the broker in batches (as many as are
//! waiting, at most [`BATCH`]) and, for each: drops a repeat of one it
//! already handled (the broker redelivers what was not acknowledged before
//! a reconnect) after answering it again; checks it — the topic's
//! terminal, `to` and `notification` agree with the payload, an `in` rule
//! allows (`from@terminal`, to, notification), `to` is not one of our
//! proxies (no transit) — and delivers it on the local server on behalf
//! of its sender (`from@terminal`, impersonation).
//!
//! # Outcomes, and how long they take
//!
//! A unicast nobody receives comes back to the bridge as a unicast error,
//! at once: the server routes as it reads. So after a batch the worker
//! sends a **probe**, a unicast to [`PROBE_APP`] which nobody registers:
//! its unicast error arrives after the errors of everything sent before
//! it (the server answers in order, and the library runs the unicast-error
//! callback in arrival order). What has no error by then was delivered.
//! One exception needs a second kind of probe: a `"1"` for a notification
//! this bridge also proxies may be routed to the bridge's own proxy (no
//! local receiver, or a worse one); the proxy gives it back (no transit)
//! and its error arrives later. For such a batch the worker first sends a
//! unicast to each of those proxies and waits until their callbacks ran
//! (each after whatever that proxy got before), then the error probe.
//!
//! A unicast larger than the local server accepts (its `Welcome` says
//! how large; the client refuses it with `Error::TooLarge` before sending)
//! is undelivered too, without a probe: it fails like one nobody received.
//!
//! Only then are the outcomes published to each sender's
//! `<prefix>/_reply/<terminal>`, and only then is each publish
//! acknowledged to the broker (MQTT QoS 1, manual acks): a bridge killed
//! before that gets the notifications again from its persistent session.
//! When the local server is unreachable (or refuses the bridge's user
//! the socket: `Error::Permission`) the worker waits for it (the client
//! reconnects by itself) and delivers the batch again (counted as
//! retried; a receiver may see a notification twice: at least once).
//!
//! The worker also keeps the proxy registrations ([`crate::outbound`]) in
//! line with the other terminals' exports, and registers again what the
//! server refused while it was down.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use nfy_linux::client::{Client, Delivery, Error as ClientError, NotifyOptions, Registration};
use rumqttc::Publish;

use crate::counters::bump;
use crate::hub::{Command, Outgoing};
use crate::names::{qualify, TerminalId};
use crate::outbound::{self, Proxy};
use crate::payload::{Export, Notification, Reply};
use crate::topic::Parsed;
use crate::{Shared, BRIDGE_APP};

/// Notifications handled per batch at most.
pub const BATCH: usize = 256;

/// The app ID the error probe is sent to; nobody may register it.
pub const PROBE_APP: &str = "nfy-bridge-probe";

/// The probes' notification ID.
pub const PROBE_NOTIFICATION: &str = "nfy-bridge-probe";

/// The member of a probe's parameter holding its number.
pub const PROBE_PARAM: &str = "nfy-bridge-probe";

/// How long a probe may take before the batch is delivered again.
pub const PROBE_WAIT: Duration = Duration::from_secs(5);

/// Outcomes remembered for repeats from the broker.
pub const REMEMBERED: usize = 65_536;

/// Work for the inbound worker.
#[derive(Debug)]
pub enum Work {
    /// A notification from the broker.
    Inject(Box<Publish>),
    /// A terminal's exports changed.
    Exports(TerminalId, Vec<Export>),
}

/// A unicast error, as the bridge matches it to what it delivered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ErrorKey {
    from: String,
    to: String,
    notification: String,
    flags: u32,
    parameter: String,
}

impl ErrorKey {
    fn of(d: &Delivery<'_>) -> Self {
        ErrorKey {
            from: d.from.to_owned(),
            to: d.to.to_owned(),
            notification: d.notification.to_owned(),
            flags: d.flags,
            parameter: d.parameter.to_owned(),
        }
    }

    fn same_but_parameter(&self, other: &ErrorKey) -> bool {
        self.from == other.from
            && self.to == other.to
            && self.notification == other.notification
            && self.flags == other.flags
    }
}

#[derive(Debug, Default)]
struct ProbeState {
    /// Highest error probe seen.
    done: u64,
    /// Unicast errors since the last batch took them.
    errors: Vec<ErrorKey>,
    /// Proxy probes seen: (probe number, proxy).
    proxies: HashSet<(u64, String)>,
}

/// What the probes and the unicast-error callback share.
#[derive(Debug, Default)]
pub struct Probes {
    state: Mutex<ProbeState>,
    cv: Condvar,
}

impl Probes {
    fn lock(&self) -> std::sync::MutexGuard<'_, ProbeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The unicast-error callback.
    pub fn unicast_error(&self, d: &Delivery<'_>) {
        let mut g = self.lock();
        if d.to == PROBE_APP && d.from == BRIDGE_APP {
            if let Some(seq) = d.parameter_json()[PROBE_PARAM].as_u64() {
                g.done = g.done.max(seq);
            }
        } else {
            g.errors.push(ErrorKey::of(d));
        }
        self.cv.notify_all();
    }

    /// A proxy's callback saw proxy probe `seq`.
    pub fn proxy_seen(&self, seq: u64, proxy: &str) {
        self.lock().proxies.insert((seq, proxy.to_owned()));
        self.cv.notify_all();
    }

    /// Waits until `done(state)` or the deadline; false on timeout.
    fn wait(&self, deadline: Instant, done: impl Fn(&ProbeState) -> bool) -> bool {
        let mut g = self.lock();
        loop {
            if done(&g) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self
                .cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Failed,
    Refused,
}

/// One notification of a batch.
struct Item {
    publish: Publish,
    /// The sender's terminal and the id to answer, when it wants one.
    answer: Option<(TerminalId, u64)>,
    /// What to deliver; `None` when refused before delivery.
    deliver: Option<Delivery2>,
    outcome: Option<Outcome>,
}

/// An owned delivery to make.
struct Delivery2 {
    from: String,
    to: String,
    notification: String,
    flags: u32,
    parameter: String,
}

impl Delivery2 {
    fn key(&self) -> ErrorKey {
        ErrorKey {
            from: self.from.clone(),
            to: self.to.clone(),
            notification: self.notification.clone(),
            flags: self.flags,
            parameter: self.parameter.clone(),
        }
    }
}

/// The inbound worker's state.
pub struct Worker {
    shared: Arc<Shared>,
    client: Client,
    seq: u64,
    /// Outcomes of recent unicasts, for repeats.
    remembered: HashMap<(TerminalId, u64), Outcome>,
    order: VecDeque<(TerminalId, u64)>,
    /// Wanted proxies, and the registrations made.
    wanted: BTreeMap<TerminalId, Vec<Export>>,
    registered: HashMap<Proxy, Registration>,
    stale: bool,
}

impl Worker {
    /// A worker delivering through `client`.
    pub fn new(shared: Arc<Shared>, client: Client) -> Self {
        Worker {
            shared,
            client,
            seq: 0,
            remembered: HashMap::new(),
            order: VecDeque::new(),
            wanted: BTreeMap::new(),
            registered: HashMap::new(),
            stale: false,
        }
    }

    /// Runs until every sender of `rx` is gone.
    pub fn run(mut self, rx: Receiver<Work>) {
        loop {
            let first = match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(w) => w,
                Err(RecvTimeoutError::Timeout) => {
                    if self.stale {
                        self.sync_proxies();
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut batch = Vec::new();
            let mut next = Some(first);
            while let Some(w) = next.take() {
                match w {
                    Work::Inject(p) => batch.push(*p),
                    Work::Exports(t, e) => {
                        self.wanted.insert(t, e);
                        self.stale = true;
                    }
                }
                if batch.len() < BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if self.stale {
                self.sync_proxies();
            }
            if !batch.is_empty() {
                self.batch(batch);
            }
        }
    }

    /// Registers the wanted proxies that are missing and drops the others.
    fn sync_proxies(&mut self) {
        let me = self.shared.me.clone();
        let mut want = Vec::new();
        for (t, exports) in &self.wanted {
            if *t == me {
                continue;
            }
            for e in exports {
                let Some(q) = qualify(&e.app, t) else {
                    warn!(
                        "{}@{t} is too long for an app ID: not reachable from here",
                        e.app
                    );
                    continue;
                };
                // Only what some `out` rule could let through.
                let possible = self.shared.rules.rules().iter().any(|r| {
                    r.direction == nfy_core::whitelist::Direction::Out
                        && r.to.matches(&q)
                        && r.notification.matches(&e.notification)
                });
                if possible {
                    want.push((
                        Proxy {
                            notification: e.notification.clone(),
                            qualified: q,
                            app: e.app.clone(),
                            terminal: t.clone(),
                        },
                        e.priority,
                    ));
                }
            }
        }
        let keep: HashSet<&Proxy> = want.iter().map(|(p, _)| p).collect();
        self.registered.retain(|p, _| keep.contains(p));
        let mut stale = false;
        for (proxy, priority) in &want {
            if self.registered.contains_key(proxy) {
                continue;
            }
            let shared = Arc::clone(&self.shared);
            let p = proxy.clone();
            match self.client.register_deferred(
                Some(&proxy.qualified),
                &proxy.notification,
                *priority,
                move |d, token| outbound::deliver(&shared, &p, d, token),
            ) {
                Ok(r) => {
                    info!("registered {} for {}", proxy.qualified, proxy.notification);
                    self.registered.insert(proxy.clone(), r);
                }
                Err(e) => {
                    debug!(
                        "register {} for {}: {e}",
                        proxy.qualified, proxy.notification
                    );
                    stale = true;
                }
            }
        }
        if let Ok(mut table) = self.shared.proxies.write() {
            table.clear();
            table.extend(self.registered.keys().cloned());
        }
        self.stale = stale;
    }

    fn batch(&mut self, publishes: Vec<Publish>) {
        let mut items: Vec<Item> = publishes.into_iter().map(|p| self.check(p)).collect();
        let pending = items
            .iter()
            .any(|i| i.outcome.is_none() && i.deliver.is_some());
        if pending {
            self.deliver(&mut items);
        }
        let mut replies: BTreeMap<TerminalId, Reply> = BTreeMap::new();
        for item in &items {
            let outcome = item.outcome.unwrap_or(Outcome::Delivered);
            let Some((t, id)) = item.answer.clone() else {
                continue;
            };
            if self.remembered.insert((t.clone(), id), outcome).is_none() {
                self.order.push_back((t.clone(), id));
                if self.order.len() > REMEMBERED {
                    if let Some(old) = self.order.pop_front() {
                        self.remembered.remove(&old);
                    }
                }
            }
            let r = replies.entry(t.clone()).or_insert_with(|| Reply {
                terminal: self.shared.me.to_string(),
                ..Reply::default()
            });
            match outcome {
                Outcome::Delivered => r.delivered.push(id),
                Outcome::Failed => r.failed.push(id),
                Outcome::Refused => r.refused.push(id),
            }
        }
        for (t, r) in replies {
            let payload = serde_json::to_vec(&r).unwrap_or_default();
            let _ = self.shared.cmd.send(Command::Publish(Outgoing {
                topic: self.shared.topics.reply(&t),
                payload,
                retain: false,
                unicast: None,
            }));
        }
        for item in items {
            let _ = self.shared.cmd.send(Command::AckInbound(item.publish));
        }
    }

    /// Reads and checks one publish.
    fn check(&self, publish: Publish) -> Item {
        let c = &self.shared.counters;
        let mut item = Item {
            publish,
            answer: None,
            deliver: None,
            outcome: None,
        };
        let refuse = |mut item: Item, why: &str| {
            warn!("refused from the broker ({}): {why}", item.publish.topic);
            bump(&c.refused_in);
            item.outcome = Some(Outcome::Refused);
            item
        };
        let (topic_to, topic_n) = match self.shared.topics.parse(&item.publish.topic) {
            Parsed::Notify {
                to, notification, ..
            } => (to, notification),
            _ => return refuse(item, "not a notification topic"),
        };
        let n: Notification = match serde_json::from_slice(&item.publish.payload) {
            Ok(n) => n,
            Err(e) => return refuse(item, &format!("bad payload: {e}")),
        };
        let source = match n.terminal.as_deref().map(TerminalId::new) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(e)) => return refuse(item, &format!("\"terminal\": {e}")),
        };
        if let (Some(t), Some(id)) = (&source, n.id) {
            item.answer = Some((t.clone(), id));
        }
        if source.as_ref() == Some(&self.shared.me) {
            // Our own broadcast, back from the broker.
            item.answer = None;
            item.outcome = Some(Outcome::Delivered);
            return item;
        }
        if let Some(key) = &item.answer {
            if let Some(o) = self.remembered.get(key) {
                bump(&c.duplicates);
                item.outcome = Some(*o);
                return item;
            }
        }
        let to = n.to.clone().unwrap_or_else(|| topic_to.clone());
        let notification = n.notification.clone().unwrap_or_else(|| topic_n.clone());
        if to != topic_to || notification != topic_n {
            return refuse(item, "\"to\" or \"notification\" differs from the topic");
        }
        let from = match &source {
            Some(t) => match qualify(&n.from, t) {
                Some(q) => q,
                None => return refuse(item, "\"from\"@terminal is too long for an app ID"),
            },
            None => n.from.clone(),
        };
        if let Err(e) = nfy_core::Destination::parse(&to) {
            return refuse(item, &format!("\"to\": {e}"));
        }
        if let Err(e) = nfy_core::NotificationId::new(&notification) {
            return refuse(item, &format!("\"notification\": {e}"));
        }
        if let Err(e) = nfy_core::AppId::new(&from) {
            return refuse(item, &format!("\"from\": {e}"));
        }
        if !self.shared.rules.allows_in(&from, &to, &notification) {
            return refuse(
                item,
                &format!("no in rule allows {notification} from {from} to {to}"),
            );
        }
        let is_proxy = self
            .shared
            .proxies
            .read()
            .is_ok_and(|p| p.iter().any(|q| q.qualified == to));
        if is_proxy {
            return refuse(item, &format!("{to} is on another terminal (no transit)"));
        }
        item.deliver = Some(Delivery2 {
            from,
            to,
            notification,
            flags: n.flags,
            parameter: n.parameter_text().to_owned(),
        });
        item
    }

    /// Delivers the items still without an outcome and finds which
    /// unicasts nobody received.
    fn deliver(&mut self, items: &mut [Item]) {
        loop {
            // Errors left from earlier batches came too late for them.
            let late = std::mem::take(&mut self.shared.probes.lock().errors);
            if !late.is_empty() {
                bump(&self.shared.counters.late_outcomes);
                info!(
                    "{} unicast error(s) for earlier batches, after their outcome was sent",
                    late.len()
                );
            }
            match self.attempt(items) {
                Ok(errors) => {
                    self.settle(items, errors);
                    return;
                }
                Err(why) => {
                    bump(&self.shared.counters.retried);
                    warn!("delivering again: {why}");
                    let deadline = Instant::now() + Duration::from_millis(200);
                    while !self.client.is_connected() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    if self.stale {
                        self.sync_proxies();
                    }
                }
            }
        }
    }

    /// One try: deliver, probe, collect the errors.
    fn attempt(&mut self, items: &[Item]) -> Result<Vec<ErrorKey>, String> {
        let mut unicasts = false;
        let mut ones: HashSet<&str> = HashSet::new();
        // Unicasts the local server cannot take: undelivered, like those
        // it returns as unicast errors.
        let mut unsent = Vec::new();
        for item in items.iter().filter(|i| i.outcome.is_none()) {
            let Some(d) = &item.deliver else { continue };
            let options = NotifyOptions {
                flags: d.flags,
                from: Some(&d.from),
            };
            match self
                .client
                .notify_raw_with(&d.to, &d.notification, &d.parameter, options)
            {
                Ok(()) => {}
                Err(e @ (ClientError::Server | ClientError::Permission { .. })) => {
                    return Err(format!("local server unreachable: {e}"))
                }
                // Larger than the local server accepts, or (checked
                // before, in `check`) invalid: a retry would not help.
                Err(e) => {
                    warn!("not deliverable: {e}");
                    if d.to != "*" {
                        unsent.push(d.key());
                    }
                }
            }
            if d.to != "*" {
                unicasts = true;
            }
            if d.to == "1" {
                ones.insert(&d.notification);
            }
        }
        if !unicasts {
            return Ok(unsent);
        }
        self.seq += 1;
        let seq = self.seq;
        let param = format!("{{\"{PROBE_PARAM}\":{seq}}}");
        let from = NotifyOptions {
            flags: 0,
            from: Some(BRIDGE_APP),
        };
        let proxies: Vec<String> = self
            .shared
            .proxies
            .read()
            .map(|p| {
                p.iter()
                    .filter(|q| ones.contains(q.notification.as_str()))
                    .map(|q| q.qualified.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut probed = Vec::new();
        for q in &proxies {
            let n = self.shared.proxies.read().ok().and_then(|p| {
                p.iter()
                    .find(|x| &x.qualified == q)
                    .map(|x| x.notification.clone())
            });
            if let Some(n) = n {
                self.client
                    .notify_raw_with(q, &n, &param, from)
                    .map_err(|e| format!("proxy probe: {e}"))?;
                probed.push(q.clone());
            }
        }
        let deadline = Instant::now() + PROBE_WAIT;
        if !probed.is_empty()
            && !self.shared.probes.wait(deadline, |s| {
                probed.iter().all(|q| s.proxies.contains(&(seq, q.clone())))
            })
        {
            return Err("proxy probe timed out".into());
        }
        self.client
            .notify_raw_with(PROBE_APP, PROBE_NOTIFICATION, &param, from)
            .map_err(|e| format!("probe: {e}"))?;
        if !self.shared.probes.wait(deadline, |s| s.done >= seq) {
            return Err("probe timed out".into());
        }
        let mut g = self.shared.probes.lock();
        g.proxies.retain(|(s, _)| *s > seq);
        unsent.append(&mut g.errors);
        Ok(unsent)
    }

    /// Gives every item its outcome from the unicast errors seen.
    fn settle(&self, items: &mut [Item], mut errors: Vec<ErrorKey>) {
        let c = &self.shared.counters;
        for item in items.iter_mut().filter(|i| i.outcome.is_none()) {
            let Some(d) = &item.deliver else { continue };
            let key = d.key();
            let found = errors
                .iter()
                .position(|e| *e == key)
                .or_else(|| errors.iter().position(|e| e.same_but_parameter(&key)));
            if d.to == "*" {
                item.outcome = Some(Outcome::Delivered);
                bump(&c.received);
            } else if let Some(i) = found {
                errors.swap_remove(i);
                item.outcome = Some(Outcome::Failed);
                bump(&c.received_failed);
            } else {
                item.outcome = Some(Outcome::Delivered);
                bump(&c.received);
            }
        }
        if !errors.is_empty() {
            debug!("{} unicast error(s) matched nothing", errors.len());
        }
    }
}
