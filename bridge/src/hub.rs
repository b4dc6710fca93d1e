//! The hub: the one task that owns the broker connection's state.
//!
//! It runs on a single-threaded tokio runtime next to the task that
//! drives rumqttc's event loop ([`drive`]), and takes every decision about
//! what was published:
//!
//! - Forwarded unicasts keep their [`AckToken`] here until their outcome
//!   is known: the broker acknowledged the publish (PUBACK) **and** the
//!   other terminal's bridge replied delivered (ack), or failed / refused
//!   (give back: the local server routes it again or returns a unicast
//!   error to its sender). A PUBACKed unicast with no reply after
//!   `--reply-timeout` (default 5 s), or for a terminal whose presence says
//!   offline, is acknowledged anyway: the broker keeps it in that
//!   terminal's session, and a later failure can no longer reach the
//!   sender (counted as a late outcome). Before its PUBACK a unicast is
//!   never acknowledged: if the bridge dies, the local server still holds
//!   it and gives it to the next receiver or back to its sender.
//! - **Why 5 s**: an outcome takes one round trip through the broker and
//!   the other bridge's local delivery, milliseconds on a shop network; 5 s
//!   also covers the other bridge noticing a dropped broker connection and
//!   coming back (keep-alive 10 s makes that up to 15 s in the worst case;
//!   those unicasts are then confirmed late). Every waiting unicast counts
//!   against the local server's unacknowledged window (`--max-queue`, 4
//!   MiB): at 5 s that is about 4,000 unicasts a second of 200 bytes
//!   before the window, not the bridge, limits a sender.
//! - Which publish a PUBACK is for: rumqttc names publishes by packet id
//!   only in its events. Publishes are handed to rumqttc in order and
//!   rumqttc emits `Outgoing::Publish(pkid)` in the same order when it
//!   takes them (a publish it sends again after a reconnect keeps its
//!   packet id, which is then already known), so a FIFO of what was handed
//!   over maps packet ids to publishes. Publishes are handed over only
//!   while connected, and the hub handles connection events before
//!   anything else (`biased`), so nothing is handed over between rumqttc
//!   dropping a connection and the hub knowing it. When the broker lost
//!   the session (`session_present = false`), rumqttc drops what was in
//!   flight: the hub publishes all of it again (duplicates are possible:
//!   at least once).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use nfy_linux::client::AckToken;
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, Outgoing as MqttOut, Publish, QoS};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::counters::{add, bump};
use crate::inbound::Work;
use crate::names::TerminalId;
use crate::payload::{Export, Presence, Reply};
use crate::topic::Parsed;
use crate::Shared;

/// What the other threads ask of the hub.
#[derive(Debug)]
pub enum Command {
    /// Publish this (QoS 1).
    Publish(Outgoing),
    /// Acknowledge to the broker a publish the inbound worker handled.
    AckInbound(Publish),
    /// Report the counters (SIGUSR1).
    Status,
    /// Stop (SIGTERM/SIGINT).
    Stop,
}

/// One publish.
#[derive(Debug)]
pub struct Outgoing {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Retained.
    pub retain: bool,
    /// Set for a forwarded unicast.
    pub unicast: Option<Unicast>,
}

/// A forwarded unicast waiting for its outcome.
#[derive(Debug)]
pub struct Unicast {
    /// Its `id` in the payload.
    pub id: u64,
    /// The terminal it went to.
    pub terminal: TerminalId,
    /// Its acknowledgement to the local server.
    pub token: AckToken,
}

struct Entry {
    out: Outgoing,
    pubacked: Option<Instant>,
}

/// Drives rumqttc's event loop, forwarding every event to the hub; waits
/// between failed connection attempts (100 ms doubling to 5 s).
pub async fn drive(mut el: EventLoop, tx: UnboundedSender<Result<Event, String>>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match el.poll().await {
            Ok(ev) => {
                backoff = Duration::from_millis(100);
                if tx.send(Ok(ev)).is_err() {
                    return;
                }
            }
            Err(e) => {
                if tx.send(Err(e.to_string())).is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The hub's state.
pub struct Hub {
    shared: Arc<Shared>,
    client: AsyncClient,
    work: Sender<Work>,
    reply_timeout: Duration,
    presence_online: Vec<u8>,
    presence_offline: Vec<u8>,
    entries: BTreeMap<u64, Entry>,
    next_seq: u64,
    unsent: BTreeSet<u64>,
    fifo: VecDeque<u64>,
    pkids: HashMap<u16, u64>,
    by_id: HashMap<u64, u64>,
    connected: bool,
    online: HashMap<TerminalId, bool>,
    exports: HashMap<TerminalId, Vec<Export>>,
}

impl Hub {
    /// A hub publishing through `client`, handing inbound work to `work`.
    pub fn new(
        shared: Arc<Shared>,
        client: AsyncClient,
        work: Sender<Work>,
        reply_timeout: Duration,
        presence_online: Vec<u8>,
        presence_offline: Vec<u8>,
    ) -> Self {
        Hub {
            shared,
            client,
            work,
            reply_timeout,
            presence_online,
            presence_offline,
            entries: BTreeMap::new(),
            next_seq: 0,
            unsent: BTreeSet::new(),
            fifo: VecDeque::new(),
            pkids: HashMap::new(),
            by_id: HashMap::new(),
            connected: false,
            online: HashMap::new(),
            exports: HashMap::new(),
        }
    }

    /// Runs until [`Command::Stop`] (or every sender is gone).
    pub async fn run(
        mut self,
        mut events: UnboundedReceiver<Result<Event, String>>,
        mut commands: UnboundedReceiver<Command>,
        status_interval: Option<Duration>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_status = status_interval.map(|d| Instant::now() + d);
        loop {
            tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Some(ev) => self.event(ev),
                    None => break,
                },
                cmd = commands.recv() => match cmd {
                    Some(Command::Stop) | None => break,
                    Some(cmd) => self.command(cmd),
                },
                _ = tick.tick() => {
                    self.expire();
                    if let (Some(at), Some(every)) = (next_status, status_interval) {
                        if Instant::now() >= at {
                            next_status = Some(at + every);
                            self.status(false);
                        }
                    }
                }
            }
        }
        self.stop(&mut events).await;
    }

    fn event(&mut self, ev: Result<Event, String>) {
        match ev {
            Ok(Event::Incoming(Incoming::ConnAck(c))) => self.connected(c.session_present),
            Ok(Event::Incoming(Incoming::PubAck(a))) => {
                if let Some(seq) = self.pkids.remove(&a.pkid) {
                    self.puback(seq);
                }
            }
            Ok(Event::Incoming(Incoming::Publish(p))) => self.incoming(p),
            Ok(Event::Outgoing(MqttOut::Publish(pkid))) => {
                if !self.pkids.contains_key(&pkid) {
                    match self.fifo.pop_front() {
                        Some(seq) => {
                            self.pkids.insert(pkid, seq);
                        }
                        None => warn!("publish {pkid} that the bridge did not hand over"),
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                if self.connected {
                    warn!("broker connection lost: {e}");
                    bump(&self.shared.counters.mqtt_disconnects);
                } else {
                    debug!("broker not reachable: {e}");
                }
                self.connected = false;
            }
        }
    }

    fn connected(&mut self, session_present: bool) {
        info!(
            "connected to the broker (session {})",
            if session_present { "resumed" } else { "new" }
        );
        bump(&self.shared.counters.mqtt_connects);
        self.connected = true;
        if !session_present {
            // rumqttc dropped what was in flight: publish it again.
            let lost: Vec<u64> = self
                .fifo
                .drain(..)
                .chain(self.pkids.drain().map(|(_, s)| s))
                .filter(|s| self.entries.contains_key(s))
                .collect();
            add(&self.shared.counters.retried, lost.len() as u64);
            self.unsent.extend(lost);
        }
        let subs = self
            .shared
            .topics
            .subscriptions(&self.shared.me)
            .map(|t| rumqttc::SubscribeFilter::new(t, QoS::AtLeastOnce));
        if let Err(e) = self.client.try_subscribe_many(subs) {
            warn!("subscribe: {e}");
        }
        // The will may have announced us offline: say otherwise.
        let presence = self.presence_online.clone();
        let topic = self.shared.topics.presence(&self.shared.me);
        self.add(Outgoing {
            topic,
            payload: presence,
            retain: true,
            unicast: None,
        });
        let unsent: Vec<u64> = std::mem::take(&mut self.unsent).into_iter().collect();
        for seq in unsent {
            self.submit(seq);
        }
    }

    fn add(&mut self, out: Outgoing) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(u) = &out.unicast {
            self.by_id.insert(u.id, seq);
        }
        self.entries.insert(
            seq,
            Entry {
                out,
                pubacked: None,
            },
        );
        if self.connected {
            self.submit(seq);
        } else {
            self.unsent.insert(seq);
        }
    }

    fn submit(&mut self, seq: u64) {
        let Some(e) = self.entries.get(&seq) else {
            return;
        };
        match self.client.try_publish(
            e.out.topic.clone(),
            QoS::AtLeastOnce,
            e.out.retain,
            e.out.payload.clone(),
        ) {
            Ok(()) => self.fifo.push_back(seq),
            Err(err) => {
                debug!("publish queued for later: {err}");
                self.unsent.insert(seq);
            }
        }
    }

    fn puback(&mut self, seq: u64) {
        let Some(e) = self.entries.get_mut(&seq) else {
            return;
        };
        match &e.out.unicast {
            Some(u) if self.online.get(&u.terminal) != Some(&false) => {
                e.pubacked = Some(Instant::now());
            }
            Some(_) => {
                // Offline: its session keeps it; nobody will answer soon.
                bump(&self.shared.counters.unconfirmed);
                self.finish(seq, Outcome::Ack);
            }
            None => {
                self.entries.remove(&seq);
            }
        }
    }

    fn finish(&mut self, seq: u64, outcome: Outcome) {
        let Some(e) = self.entries.remove(&seq) else {
            return;
        };
        self.unsent.remove(&seq);
        if let Some(u) = e.out.unicast {
            self.by_id.remove(&u.id);
            match outcome {
                Outcome::Ack => u.token.ack(),
                Outcome::GiveBack => u.token.give_back(),
            }
        }
    }

    /// Acknowledges the PUBACKed unicasts whose reply is overdue.
    fn expire(&mut self) {
        let now = Instant::now();
        let due: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.pubacked.is_some_and(|t| now >= t + self.reply_timeout))
            .map(|(s, _)| *s)
            .collect();
        for seq in due {
            bump(&self.shared.counters.unconfirmed);
            self.finish(seq, Outcome::Ack);
        }
    }

    fn incoming(&mut self, p: Publish) {
        let shared = Arc::clone(&self.shared);
        match shared.topics.parse(&p.topic) {
            Parsed::Reply(t) if t == shared.me => {
                match serde_json::from_slice::<Reply>(&p.payload) {
                    Ok(r) => self.reply(&r),
                    Err(e) => warn!("bad reply on {}: {e}", p.topic),
                }
                self.ack(&p);
            }
            Parsed::Presence(t) => {
                if t != shared.me {
                    match serde_json::from_slice::<Presence>(&p.payload) {
                        Ok(pr) if pr.terminal == t.as_str() => self.presence(t, pr),
                        Ok(_) => warn!("presence on {} names another terminal", p.topic),
                        Err(e) => warn!("bad presence on {}: {e}", p.topic),
                    }
                }
                self.ack(&p);
            }
            Parsed::Notify { terminal, .. }
                if terminal.is_none() || terminal == Some(shared.me.clone()) =>
            {
                if let Err(w) = self.work.send(Work::Inject(Box::new(p))) {
                    // The worker is gone: we are stopping.
                    if let Work::Inject(p) = w.0 {
                        debug!("not delivered (stopping): {}", p.topic);
                    }
                }
            }
            _ => self.ack(&p),
        }
    }

    fn ack(&self, p: &Publish) {
        if let Err(e) = self.client.try_ack(p) {
            warn!("ack to the broker: {e}");
        }
    }

    fn reply(&mut self, r: &Reply) {
        for id in &r.delivered {
            if let Some(seq) = self.by_id.get(id).copied() {
                bump(&self.shared.counters.delivered_remote);
                self.finish(seq, Outcome::Ack);
            }
        }
        for id in r.failed.iter().chain(&r.refused) {
            match self.by_id.get(id).copied() {
                Some(seq) => {
                    bump(&self.shared.counters.unicast_errors);
                    self.finish(seq, Outcome::GiveBack);
                }
                None => {
                    bump(&self.shared.counters.late_outcomes);
                    info!(
                        "terminal {} reports unicast {id} undelivered, too late to tell its sender",
                        r.terminal
                    );
                }
            }
        }
    }

    fn presence(&mut self, t: TerminalId, p: Presence) {
        let was = self.online.insert(t.clone(), p.online);
        if was != Some(p.online) {
            info!(
                "terminal {t} is {}",
                if p.online { "online" } else { "offline" }
            );
        }
        if !p.online {
            let due: Vec<u64> = self
                .entries
                .iter()
                .filter(|(_, e)| {
                    e.pubacked.is_some() && e.out.unicast.as_ref().is_some_and(|u| u.terminal == t)
                })
                .map(|(s, _)| *s)
                .collect();
            for seq in due {
                bump(&self.shared.counters.unconfirmed);
                self.finish(seq, Outcome::Ack);
            }
        }
        let mut exports = p.exports;
        exports.sort();
        exports.dedup();
        if self.exports.get(&t) != Some(&exports) {
            self.exports.insert(t.clone(), exports.clone());
            let _ = self.work.send(Work::Exports(t, exports));
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish(out) => self.add(out),
            Command::AckInbound(p) => self.ack(&p),
            Command::Status => self.status(true),
            Command::Stop => {}
        }
    }

    fn status(&mut self, to_stderr: bool) {
        let json = self.shared.counters.snapshot().to_json();
        if to_stderr {
            eprintln!("nfy-bridge {}: {json}", self.shared.me);
        }
        info!("counters: {json}");
        if self.connected {
            let topic = self.shared.topics.status(&self.shared.me);
            self.add(Outgoing {
                topic,
                payload: json.into_bytes(),
                retain: true,
                unicast: None,
            });
        }
    }

    /// A clean stop: what the broker has is acknowledged locally (its
    /// session delivers it), what it does not have goes back to the local
    /// server; the presence says offline; the connection closes.
    async fn stop(&mut self, events: &mut UnboundedReceiver<Result<Event, String>>) {
        info!("stopping");
        let acked: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.pubacked.is_some())
            .map(|(s, _)| *s)
            .collect();
        for seq in acked {
            self.finish(seq, Outcome::Ack);
        }
        let rest: Vec<u64> = self.entries.keys().copied().collect();
        for seq in rest {
            self.finish(seq, Outcome::GiveBack);
        }
        if self.connected {
            let topic = self.shared.topics.presence(&self.shared.me);
            let _ = self.client.try_publish(
                topic,
                QoS::AtLeastOnce,
                true,
                self.presence_offline.clone(),
            );
            let _ = self.client.try_disconnect();
            // Let the event loop send them (bounded).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, events.recv()).await {
                if matches!(ev, Ok(Event::Outgoing(MqttOut::Disconnect)) | Err(_)) {
                    break;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Ack,
    GiveBack,
}
