//! The sans-IO core of the client library: what a client process must
//! remember and decide, with no sockets, threads or callbacks.
//!
//! [`ClientState`] holds the process's app ID, the local registrations,
//! the observers and the unicast-error handlers. Each of them carries an
//! opaque value `T` (the I/O layer stores its callback mailbox there; tests
//! store plain numbers). The state answers three questions:
//!
//! - what to send the server when a registration, observer or handler is
//!   added or removed (the returned [`Message`]s);
//! - what to send on every (re)connection ([`ClientState::handshake`]);
//! - what to do with a message from the server ([`ClientState::route`]):
//!   which local entries receive it, or that it must be sent back.
//!
//! # Multiplexing (spec 2.6)
//!
//! The process holds at most one registration per (receiver app ID,
//! notification ID), and so does the server for this connection:
//! registering again for the same pair **replaces** the local entry (its
//! value and priority) and makes it the most recent, and the server is sent
//! a `register` that replaces its entry the same way.
//!
//! # Routing an incoming notify
//!
//! The server picked this connection with the rule of spec 2.2; the client
//! repeats the rule among its own registrations:
//!
//! - `to` = app ID X: the registration (X, notification);
//! - `to` = `"1"`: the registration for the notification with the highest
//!   priority, ties to the most recently registered: the core's
//!   [`nfy_core::route::best`] over [`nfy_core::route::Rank`], the rule the
//!   server's routing table applies, so the same one (priorities and
//!   registration order are kept identical on both sides —
//!   [`ClientState::handshake`] replays registrations oldest first);
//! - `to` = `"*"`: every registration for the notification (the server
//!   sends a broadcast once per connection).
//!
//! A unicast (X or `"1"`) that finds no local registration is the
//! unregister race of spec 3: [`Action::Bounce`] tells the I/O layer to
//! send it back unchanged, `reference` included. A broadcast that finds
//! none is dropped ([`Action::Drop`]): broadcasts are never bounced.

use std::collections::HashMap;

use nfy_core::msg::{compact, Hello, Message, Register, Status, Unregister};
use nfy_core::route::{best, Rank};
use nfy_core::{AppId, Destination, NotificationId};

/// One local registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<T> {
    /// The receiver app ID.
    pub to: AppId,
    /// The notification ID.
    pub notification: NotificationId,
    /// Larger wins for `"1"`.
    pub priority: i32,
    /// Registration order: larger is more recent (grows with every
    /// register call, replacements included).
    pub seq: u64,
    /// The I/O layer's value (callback mailbox).
    pub value: T,
}

impl<T> Entry<T> {
    /// The `register` message that establishes this entry at the server.
    pub fn register_message(&self) -> Message<'static> {
        Message::Register(Register {
            to: self.to.clone(),
            notification: self.notification.clone(),
            priority: self.priority,
        })
    }
}

/// What [`ClientState::register`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOutcome<T> {
    /// The value of the entry that was replaced, `None` when the pair was
    /// new.
    pub replaced: Option<T>,
    /// The message for the server.
    pub message: Message<'static>,
}

/// What to do with a message received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<T> {
    /// A notify for these local registrations (never empty).
    Deliver(Vec<T>),
    /// A unicast no local registration takes: send it back unchanged.
    Bounce,
    /// A broadcast no local registration takes: ignore it.
    Drop,
    /// A unicast error: run these handlers (possibly none).
    UnicastError(Vec<T>),
    /// An observer event: run these observers (possibly none).
    Observed(Vec<T>),
    /// The answer to a status request.
    Status(Status),
    /// Nothing to do (messages a server does not send to clients, unknown
    /// types).
    Ignore,
}

/// What ends the server's answer to a connection's handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeEnd {
    /// The answer to a `StatusRequest` sent after `hello` (any server: an
    /// older one sends no `Welcome`). Only a local peer may ask for
    /// status.
    Status,
    /// The `Welcome` answering `hello`: for an address where the server
    /// may see this client as remote (TLS, or TCP to another host), which
    /// may not ask for status; every server that speaks TLS sends it.
    Welcome,
}

/// The client's state: app ID, registrations, observers, unicast-error
/// handlers. See the module docs.
#[derive(Debug, Clone)]
pub struct ClientState<T> {
    app_id: Option<AppId>,
    by_notification: HashMap<NotificationId, Vec<Entry<T>>>,
    observers: Vec<T>,
    error_handlers: Vec<T>,
    connection_handlers: Vec<T>,
    next_seq: u64,
}

impl<T> Default for ClientState<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> ClientState<T> {
    /// An empty state: no app ID, nothing registered.
    pub fn new() -> Self {
        ClientState {
            app_id: None,
            by_notification: HashMap::new(),
            observers: Vec::new(),
            error_handlers: Vec::new(),
            connection_handlers: Vec::new(),
            next_seq: 0,
        }
    }

    /// The process's app ID.
    pub fn app_id(&self) -> Option<&AppId> {
        self.app_id.as_ref()
    }

    /// Sets (or clears) the app ID; returns the `hello` to send so the
    /// server's logs and status name the new ID.
    pub fn set_app_id(&mut self, id: Option<AppId>) -> Message<'static> {
        self.app_id = id;
        self.hello()
    }

    /// The `hello` message: compact revision, app ID, and that this
    /// client acknowledges the unicasts it receives (crash-safe delivery:
    /// the server keeps each one until acknowledged).
    pub fn hello(&self) -> Message<'static> {
        Message::Hello(Hello {
            version: compact::VERSION,
            app_id: self.app_id.clone(),
            acks: true,
        })
    }

    /// Adds the registration (to, notification) or replaces the existing
    /// one (value and priority; it becomes the most recent).
    pub fn register(
        &mut self,
        to: AppId,
        notification: NotificationId,
        priority: i32,
        value: T,
    ) -> RegisterOutcome<T> {
        self.next_seq += 1;
        let seq = self.next_seq;
        let list = self
            .by_notification
            .entry(notification.clone())
            .or_default();
        let replaced = match list.iter_mut().find(|e| e.to == to) {
            Some(e) => {
                e.priority = priority;
                e.seq = seq;
                Some(std::mem::replace(&mut e.value, value))
            }
            None => {
                list.push(Entry {
                    to: to.clone(),
                    notification: notification.clone(),
                    priority,
                    seq,
                    value,
                });
                None
            }
        };
        RegisterOutcome {
            replaced,
            message: Message::Register(Register {
                to,
                notification,
                priority,
            }),
        }
    }

    /// The registration (to, notification), if any.
    pub fn get(&self, to: &str, notification: &str) -> Option<&Entry<T>> {
        self.by_notification
            .get(notification)?
            .iter()
            .find(|e| e.to == to)
    }

    /// Removes the registration (to, notification) if `filter` accepts its
    /// value; returns the value and the `unregister` for the server.
    pub fn unregister_if(
        &mut self,
        to: &str,
        notification: &str,
        filter: impl FnOnce(&T) -> bool,
    ) -> Option<(T, Message<'static>)> {
        let list = self.by_notification.get_mut(notification)?;
        let pos = list.iter().position(|e| e.to == to)?;
        if !list.get(pos).is_some_and(|e| filter(&e.value)) {
            return None;
        }
        let entry = list.remove(pos);
        if list.is_empty() {
            self.by_notification.remove(notification);
        }
        let message = Message::Unregister(Unregister {
            to: entry.to,
            notification: entry.notification,
        });
        Some((entry.value, message))
    }

    /// Removes every registration; returns their values (closing the
    /// client: the server forgets them with the connection, so nothing is
    /// sent).
    pub fn clear_registrations(&mut self) -> Vec<T> {
        self.by_notification
            .drain()
            .flat_map(|(_, list)| list.into_iter().map(|e| e.value))
            .collect()
    }

    /// Every registration, oldest first.
    pub fn registrations(&self) -> Vec<&Entry<T>> {
        let mut all: Vec<&Entry<T>> = self.by_notification.values().flatten().collect();
        all.sort_by_key(|e| e.seq);
        all
    }

    /// Number of registrations.
    pub fn registration_count(&self) -> usize {
        self.by_notification.values().map(Vec::len).sum()
    }

    /// Adds an observer; returns `observe(true)` for the server when it is
    /// the first.
    pub fn add_observer(&mut self, value: T) -> Option<Message<'static>> {
        self.observers.push(value);
        (self.observers.len() == 1).then_some(Message::Observe(true))
    }

    /// Removes the observers `filter` accepts; returns them and
    /// `observe(false)` when none is left.
    pub fn remove_observers(
        &mut self,
        filter: impl FnMut(&T) -> bool,
    ) -> (Vec<T>, Option<Message<'static>>) {
        let removed = extract(&mut self.observers, filter);
        let msg =
            (!removed.is_empty() && self.observers.is_empty()).then_some(Message::Observe(false));
        (removed, msg)
    }

    /// Adds a unicast-error handler; returns `unicast_errors(true)` for the
    /// server when it is the first.
    pub fn add_error_handler(&mut self, value: T) -> Option<Message<'static>> {
        self.error_handlers.push(value);
        (self.error_handlers.len() == 1).then_some(Message::UnicastErrors(true))
    }

    /// Removes the unicast-error handlers `filter` accepts; returns them and
    /// `unicast_errors(false)` when none is left.
    pub fn remove_error_handlers(
        &mut self,
        filter: impl FnMut(&T) -> bool,
    ) -> (Vec<T>, Option<Message<'static>>) {
        let removed = extract(&mut self.error_handlers, filter);
        let msg = (!removed.is_empty() && self.error_handlers.is_empty())
            .then_some(Message::UnicastErrors(false));
        (removed, msg)
    }

    /// Adds a connection-change handler (purely local: nothing to send).
    pub fn add_connection_handler(&mut self, value: T) {
        self.connection_handlers.push(value);
    }

    /// Removes the connection-change handlers `filter` accepts; returns
    /// them.
    pub fn remove_connection_handlers(&mut self, filter: impl FnMut(&T) -> bool) -> Vec<T> {
        extract(&mut self.connection_handlers, filter)
    }

    /// What to send on every (re)connection, in order: `hello`; with
    /// [`HandshakeEnd::Status`], a `StatusRequest` (its answer marks the
    /// end of the server's answer to `hello`: a `Welcome` with its frame
    /// limit, which an older server does not send); `unicast_errors(false)` when no handler is
    /// registered (the server's default is to send them); a `register`
    /// for every registration, oldest first (so "most recent" means the
    /// same on both sides); `observe(true)` when an observer is
    /// registered.
    pub fn handshake(&self, end: HandshakeEnd) -> Vec<Message<'static>> {
        let mut out = vec![self.hello()];
        if end == HandshakeEnd::Status {
            out.push(Message::StatusRequest);
        }
        if self.error_handlers.is_empty() {
            out.push(Message::UnicastErrors(false));
        }
        out.extend(
            self.registrations()
                .into_iter()
                .map(Entry::register_message),
        );
        if !self.observers.is_empty() {
            out.push(Message::Observe(true));
        }
        out
    }
}

impl<T: Clone> ClientState<T> {
    /// The observers' values.
    pub fn observers(&self) -> Vec<T> {
        self.observers.clone()
    }

    /// The unicast-error handlers' values.
    pub fn error_handlers(&self) -> Vec<T> {
        self.error_handlers.clone()
    }

    /// The connection-change handlers' values.
    pub fn connection_handlers(&self) -> Vec<T> {
        self.connection_handlers.clone()
    }

    /// The registrations a notify addressed `to` for `notification` runs
    /// (see the module docs); empty when none.
    pub fn receivers(&self, to: &Destination, notification: &str) -> Vec<T> {
        let Some(list) = self.by_notification.get(notification) else {
            return Vec::new();
        };
        match to {
            Destination::App(app) => list
                .iter()
                .filter(|e| e.to == *app)
                .map(|e| e.value.clone())
                .collect(),
            Destination::One => best(list, |e| Rank::new(e.priority, e.seq))
                .map(|e| vec![e.value.clone()])
                .unwrap_or_default(),
            Destination::All => list.iter().map(|e| e.value.clone()).collect(),
        }
    }

    /// What to do with a message from the server.
    pub fn route(&self, msg: &Message<'_>) -> Action<T> {
        match msg {
            Message::Notify(n) => {
                let receivers = self.receivers(&n.to, &n.notification);
                if !receivers.is_empty() {
                    Action::Deliver(receivers)
                } else if n.to.is_unicast() {
                    Action::Bounce
                } else {
                    Action::Drop
                }
            }
            Message::UnicastError(_) => Action::UnicastError(self.error_handlers()),
            Message::Observed(_) => Action::Observed(self.observers()),
            Message::Status(s) => Action::Status(*s),
            _ => Action::Ignore,
        }
    }
}

/// Removes and returns the items `filter` accepts, keeping the others in
/// order.
fn extract<T>(items: &mut Vec<T>, mut filter: impl FnMut(&T) -> bool) -> Vec<T> {
    let mut removed = Vec::new();
    let mut kept = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        if filter(&item) {
            removed.push(item);
        } else {
            kept.push(item);
        }
    }
    *items = kept;
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfy_core::msg::{Notify, Observation, RawJson};

    fn app(s: &str) -> AppId {
        AppId::new(s).unwrap()
    }
    fn nid(s: &str) -> NotificationId {
        NotificationId::new(s).unwrap()
    }
    fn notify(to: &str, id: &str) -> Message<'static> {
        Message::Notify(Notify {
            from: app("sender"),
            to: Destination::parse(to).unwrap(),
            notification: nid(id),
            flags: 0,
            reference: Some(7),
            parameter: RawJson::EMPTY_OBJECT,
        })
    }
    fn reg(to: &str, id: &str, priority: i32) -> Message<'static> {
        Message::Register(Register {
            to: app(to),
            notification: nid(id),
            priority,
        })
    }

    #[test]
    fn unicast_to_app_runs_that_registration_only() {
        let mut s = ClientState::new();
        s.register(app("a"), nid("ev"), 0, 1);
        s.register(app("b"), nid("ev"), 9, 2);
        s.register(app("a"), nid("other"), 0, 3);
        assert_eq!(s.route(&notify("a", "ev")), Action::Deliver(vec![1]));
        assert_eq!(s.route(&notify("b", "ev")), Action::Deliver(vec![2]));
        assert_eq!(s.route(&notify("a", "other")), Action::Deliver(vec![3]));
    }

    #[test]
    fn missing_unicast_bounces_missing_broadcast_drops() {
        let mut s = ClientState::new();
        s.register(app("a"), nid("ev"), 0, 1);
        assert_eq!(s.route(&notify("c", "ev")), Action::Bounce);
        assert_eq!(s.route(&notify("a", "nope")), Action::Bounce);
        assert_eq!(s.route(&notify("1", "nope")), Action::Bounce);
        assert_eq!(s.route(&notify("*", "nope")), Action::Drop);
        // After unregistering, the race case bounces.
        assert!(s.unregister_if("a", "ev", |_| true).is_some());
        assert_eq!(s.route(&notify("a", "ev")), Action::Bounce);
        assert_eq!(s.route(&notify("1", "ev")), Action::Bounce);
        assert_eq!(s.route(&notify("*", "ev")), Action::Drop);
    }

    #[test]
    fn one_picks_highest_priority_then_most_recent() {
        let mut s = ClientState::new();
        s.register(app("a"), nid("ev"), 1, "a");
        s.register(app("b"), nid("ev"), 5, "b");
        s.register(app("c"), nid("ev"), 5, "c");
        s.register(app("d"), nid("ev"), -3, "d");
        // b and c tie at 5: c is more recent.
        assert_eq!(s.route(&notify("1", "ev")), Action::Deliver(vec!["c"]));
        // Re-registering b (same priority) makes it the most recent.
        let out = s.register(app("b"), nid("ev"), 5, "b2");
        assert_eq!(out.replaced, Some("b"));
        assert_eq!(s.route(&notify("1", "ev")), Action::Deliver(vec!["b2"]));
        // A higher priority wins whatever the order.
        s.register(app("a"), nid("ev"), 6, "a2");
        assert_eq!(s.route(&notify("1", "ev")), Action::Deliver(vec!["a2"]));
        // Lowering it by re-registering gives the place back.
        s.register(app("a"), nid("ev"), 0, "a3");
        assert_eq!(s.route(&notify("1", "ev")), Action::Deliver(vec!["b2"]));
    }

    #[test]
    fn broadcast_runs_every_registration_for_the_notification() {
        let mut s = ClientState::new();
        s.register(app("a"), nid("ev"), 0, 1);
        s.register(app("b"), nid("ev"), 3, 2);
        s.register(app("c"), nid("x"), 0, 3);
        let Action::Deliver(mut got) = s.route(&notify("*", "ev")) else {
            panic!("expected a delivery")
        };
        got.sort();
        assert_eq!(got, vec![1, 2]);
    }

    #[test]
    fn multiplexing_one_entry_per_pair_and_replacement_message() {
        let mut s = ClientState::new();
        let first = s.register(app("a"), nid("ev"), 1, 10);
        assert_eq!(first.replaced, None);
        assert_eq!(first.message, reg("a", "ev", 1));
        let second = s.register(app("a"), nid("ev"), 4, 11);
        assert_eq!(second.replaced, Some(10));
        assert_eq!(second.message, reg("a", "ev", 4));
        assert_eq!(s.registration_count(), 1);
        let e = s.get("a", "ev").unwrap();
        assert_eq!((e.priority, e.value), (4, 11));
        assert_eq!(s.route(&notify("a", "ev")), Action::Deliver(vec![11]));
    }

    #[test]
    fn unregister_filter_and_message() {
        let mut s = ClientState::new();
        s.register(app("a"), nid("ev"), 0, 1);
        assert_eq!(s.unregister_if("a", "ev", |v| *v == 2), None);
        assert_eq!(s.unregister_if("b", "ev", |_| true), None);
        assert_eq!(s.unregister_if("a", "zz", |_| true), None);
        let (v, m) = s.unregister_if("a", "ev", |v| *v == 1).unwrap();
        assert_eq!(v, 1);
        assert_eq!(
            m,
            Message::Unregister(Unregister {
                to: app("a"),
                notification: nid("ev")
            })
        );
        assert_eq!(s.registration_count(), 0);
        assert!(s.get("a", "ev").is_none());
    }

    #[test]
    fn handshake_replays_everything_oldest_first() {
        let mut s: ClientState<u32> = ClientState::new();
        let hello = |id: Option<&str>| {
            Message::Hello(Hello {
                version: compact::VERSION,
                app_id: id.map(app),
                acks: true,
            })
        };
        assert_eq!(
            s.handshake(HandshakeEnd::Status),
            vec![
                hello(None),
                Message::StatusRequest,
                Message::UnicastErrors(false)
            ]
        );
        assert_eq!(s.set_app_id(Some(app("me"))), hello(Some("me")));
        s.register(app("a"), nid("ev"), 1, 1);
        s.register(app("b"), nid("zz"), 2, 2);
        s.register(app("c"), nid("ev"), 3, 3);
        s.register(app("a"), nid("ev"), 7, 4); // replacement: now newest
        assert_eq!(s.add_observer(9), Some(Message::Observe(true)));
        assert_eq!(
            s.handshake(HandshakeEnd::Status),
            vec![
                hello(Some("me")),
                Message::StatusRequest,
                Message::UnicastErrors(false),
                reg("b", "zz", 2),
                reg("c", "ev", 3),
                reg("a", "ev", 7),
                Message::Observe(true),
            ]
        );
        assert_eq!(s.add_error_handler(5), Some(Message::UnicastErrors(true)));
        let hs = s.handshake(HandshakeEnd::Status);
        assert_eq!(
            s.handshake(HandshakeEnd::Welcome)
                .iter()
                .filter(|m| matches!(m, Message::StatusRequest))
                .count(),
            0
        );
        assert!(!hs.contains(&Message::UnicastErrors(false)));
        assert_eq!(hs.len(), 6);
    }

    #[test]
    fn observers_and_error_handlers_toggle_at_first_and_last() {
        let mut s = ClientState::new();
        assert_eq!(s.add_observer(1), Some(Message::Observe(true)));
        assert_eq!(s.add_observer(2), None);
        assert_eq!(s.remove_observers(|v| *v == 3), (vec![], None));
        assert_eq!(s.remove_observers(|v| *v == 1), (vec![1], None));
        assert_eq!(
            s.remove_observers(|_| true),
            (vec![2], Some(Message::Observe(false)))
        );
        assert_eq!(s.add_error_handler(1), Some(Message::UnicastErrors(true)));
        assert_eq!(s.add_error_handler(2), None);
        assert_eq!(
            s.remove_error_handlers(|_| true),
            (vec![1, 2], Some(Message::UnicastErrors(false)))
        );
    }

    #[test]
    fn routes_errors_observations_status() {
        let mut s = ClientState::new();
        s.add_error_handler(1);
        s.add_observer(2);
        let Message::Notify(n) = notify("a", "ev") else {
            unreachable!()
        };
        assert_eq!(
            s.route(&Message::UnicastError(n)),
            Action::UnicastError(vec![1])
        );
        let o = Message::Observed(Observation {
            from: app("x"),
            to: None,
            notification: nid("ev"),
            flags: 3,
        });
        assert_eq!(s.route(&o), Action::Observed(vec![2]));
        let st = Status {
            delivered: 4,
            ..Status::default()
        };
        assert_eq!(s.route(&Message::Status(st)), Action::Status(st));
        assert_eq!(s.route(&Message::StatusRequest), Action::Ignore);
        assert_eq!(s.route(&Message::Unknown("x")), Action::Ignore);
    }

    #[test]
    fn clear_registrations_returns_all_values() {
        let mut s = ClientState::new();
        s.register(app("a"), nid("ev"), 0, 1);
        s.register(app("b"), nid("ev"), 0, 2);
        s.register(app("b"), nid("x"), 0, 3);
        let mut v = s.clear_registrations();
        v.sort();
        assert_eq!(v, vec![1, 2, 3]);
        assert_eq!(s.registration_count(), 0);
        assert_eq!(s.route(&notify("*", "ev")), Action::Drop);
    }
}
