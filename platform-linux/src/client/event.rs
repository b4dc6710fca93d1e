//! What the callbacks are given: the events the I/O layer queues in the
//! pool's mailboxes (`Event`, with the notifications and observations it
//! received, owned), and the callbacks that take them (`Handler`).

use std::sync::Arc;

use nfy_core::msg::{Message, Notify, RawJson};
use nfy_core::{AppId, Destination, NotificationId};

use super::{ConnectionEvent, Delivery, Observed};

/// A notification callback of the idiomatic API.
pub(crate) type NotifyFn = dyn Fn(&Delivery<'_>) + Send + Sync + 'static;
/// An observer callback of the idiomatic API.
pub(crate) type ObserveFn = dyn Fn(&Observed<'_>) + Send + Sync + 'static;

/// A connection-change callback.
pub(crate) type ConnectionFn = dyn Fn(ConnectionEvent) + Send + Sync + 'static;
/// A notification callback that acknowledges by itself: it is handed the
/// received notification, which the public API turns into an ack token.
pub(crate) type DeferredFn = dyn Fn(&Delivery<'_>, &Arc<Incoming>) + Send + Sync + 'static;

/// A subscriber's callback.
#[derive(Clone)]
pub(crate) enum Handler {
    /// Registrations and unicast-error handlers.
    Notify(Arc<NotifyFn>),
    /// Observers.
    Observe(Arc<ObserveFn>),
    /// Connection-change handlers.
    Connection(Arc<ConnectionFn>),
    /// Registrations whose callback acknowledges each unicast itself
    /// (`Client::register_deferred`).
    Deferred(Arc<DeferredFn>),
}

impl Handler {
    /// True when the I/O layer acknowledges a unicast once this callback
    /// returned; false for a callback that does it itself.
    pub(crate) fn acks_on_return(&self) -> bool {
        !matches!(self, Handler::Deferred(_))
    }
}

/// A notification received from the server, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Incoming {
    pub(crate) from: AppId,
    pub(crate) to: Destination,
    pub(crate) notification: NotificationId,
    pub(crate) flags: u32,
    pub(crate) reference: Option<u64>,
    pub(crate) parameter: String,
    /// The connection epoch a unicast for a registration arrived on: it
    /// is acknowledged on that connection (never on a later one) once its
    /// callback ran or it was sent back. `None` for what is never
    /// acknowledged (broadcasts, unicast errors).
    pub(crate) ack_epoch: Option<u64>,
}

impl Incoming {
    /// Copies a received notify (never acknowledged).
    pub(crate) fn from_notify(n: &Notify<'_>) -> Self {
        Incoming {
            from: n.from.clone(),
            to: n.to.clone(),
            notification: n.notification.clone(),
            flags: n.flags,
            reference: n.reference,
            parameter: n.parameter.as_str().to_owned(),
            ack_epoch: None,
        }
    }

    /// Copies a notify received on connection `epoch` for a registration:
    /// a unicast with a reference is acknowledged on that connection.
    pub(crate) fn delivered(n: &Notify<'_>, epoch: u64) -> Self {
        Incoming {
            ack_epoch: (n.to.is_unicast() && n.reference.is_some()).then_some(epoch),
            ..Self::from_notify(n)
        }
    }

    /// What to acknowledge, and on which connection: (epoch, reference).
    pub(crate) fn ack(&self) -> Option<(u64, u64)> {
        Some((self.ack_epoch?, self.reference?))
    }

    /// The notify to send back unchanged (`reference` included); `None`
    /// when the parameter is not JSON. The library does not check what
    /// its server sends ([`nfy_core::msg::compact::decode_trusted`]): the
    /// server checked it when it accepted it, so `None` means a server
    /// bug, which [`crate::client::conn`] handles without losing the
    /// unicast.
    pub(crate) fn to_notify(&self) -> Option<Message<'_>> {
        Some(Message::Notify(Notify {
            from: self.from.clone(),
            to: self.to.clone(),
            notification: self.notification.clone(),
            flags: self.flags,
            reference: self.reference,
            parameter: RawJson::new(&self.parameter).ok()?,
        }))
    }

    fn delivery(&self) -> Delivery<'_> {
        Delivery {
            from: self.from.as_str(),
            to: self.to.as_str(),
            notification: self.notification.as_str(),
            parameter: &self.parameter,
            flags: self.flags,
        }
    }
}

/// An observer event received from the server, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObservedEvent {
    pub(crate) from: AppId,
    pub(crate) to: Option<AppId>,
    pub(crate) notification: NotificationId,
    pub(crate) flags: u32,
}

/// One pending callback invocation.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// A notification (for a registration) or a unicast error (for an
    /// error handler).
    Notify(Arc<Incoming>),
    /// An observer event.
    Observed(Arc<ObservedEvent>),
    /// The connection to the server ended or was made.
    Connection(ConnectionEvent),
}

impl Event {
    /// The unicast to send back when this event cannot run, if it is one.
    pub(crate) fn unicast(&self) -> Option<&Arc<Incoming>> {
        match self {
            Event::Notify(n) if n.to.is_unicast() => Some(n),
            _ => None,
        }
    }
}

/// Runs `handler` for `event` (a subscriber only ever receives its own
/// kind of event).
pub(crate) fn run(handler: &Handler, event: &Event) {
    match (handler, event) {
        (Handler::Notify(f), Event::Notify(n)) => f(&n.delivery()),
        (Handler::Deferred(f), Event::Notify(n)) => f(&n.delivery(), n),
        (Handler::Observe(f), Event::Observed(o)) => f(&Observed {
            from: o.from.as_str(),
            to: o.to.as_ref().map_or("", |t| t.as_str()),
            notification: o.notification.as_str(),
            flags: o.flags,
        }),
        (Handler::Connection(f), Event::Connection(e)) => f(*e),
        // A subscriber only ever receives its own kind of event.
        _ => {}
    }
}
