//! Replacing the whitelist of a running broker ([`Broker::set_whitelist`]),
//! as an adapter does when its configuration file is read again (the
//! Linux server: on SIGHUP).
//!
//! The whitelist is consulted at the moment of each decision, never copied
//! into connections or registrations, so the new rules apply from the call
//! on, to connections open before it as well as to later ones:
//!
//! - **`out` rules** are checked at every delivery to a remote
//!   registration (routing skips a registration they do not allow). A
//!   remote registration the new rules forbid simply stops receiving:
//!   a unicast goes to the next candidate or back to its sender as a
//!   unicast error, a broadcast passes it by.
//! - **`in` rules** are checked for every notify a remote connection
//!   sends, when the broker handles it: input read before the call but
//!   handled after it (held by flow control) meets the new rules.
//! - Local connections are untouched: no rule ever applies to them.
//! - What was already routed stays routed: frames queued for a remote
//!   connection before the call are still sent.
//!
//! **Decisions** (the spec says nothing of reloading):
//!
//! - A connected remote peer whose notifies the new `in` rules forbid
//!   stays connected; its notifies are dropped from then on (logged and
//!   counted as any forbidden notify, [`Event::Dropped`]). `in` rules
//!   judge notifications, not peers: the same peer may still send what
//!   other rules allow, and a disconnect would only make its library
//!   reconnect and try again.
//! - Remote registrations the new `out` rules forbid are kept, not
//!   removed: their peer would never learn of a removal, and a later
//!   reload that allows them again makes them receive again. They keep
//!   counting against [`Limits::max_remote_registrations`](super::Limits::max_remote_registrations); their peer may
//!   unregister them.
//! - A whitelist without any `in`/`out` rule closes remote access, as it
//!   does at start (spec 4: without rules the server listens on loopback
//!   only): every remote connection is marked
//!   [`Closing::Revoked`] and reported as [`Event::Revoked`] (the adapter
//!   closes it, and what it was not sent goes back to the broker), and
//!   [`Broker::connect`] refuses remote peers
//!   ([`ConnectRefused::NoRules`](super::ConnectRefused::NoRules)) until a
//!   whitelist with rules is set.
//! - The limits, the remote registration cap among them, are not part of
//!   the whitelist and do not change: the registrations remote peers hold
//!   stay as they are.
//! - `interface` lines are stored with the rules but decide nothing here:
//!   where to listen is the adapter's business ([`WhitelistChange::interfaces_changed`]
//!   tells it they differ).

use super::{Broker, Closing, ConnStorage, Event, Outbox, PeerKind};
use crate::route::RouteStorage;
use crate::whitelist::{Rule, Whitelist};

/// What [`Broker::set_whitelist`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WhitelistChange {
    /// Rules of the new whitelist the old one did not have (a rule written
    /// twice counts twice).
    pub rules_added: usize,
    /// Rules of the old whitelist the new one does not have.
    pub rules_removed: usize,
    /// The `interface` lines differ (in content or order).
    pub interfaces_changed: bool,
    /// Remote connections closed because the new whitelist holds no rules
    /// ([`Event::Revoked`]).
    pub remote_closed: usize,
}

impl WhitelistChange {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == WhitelistChange::default()
    }
}

impl<const CONNS: usize, const REGS: usize, const RULES: usize, const IFACES: usize, S, C>
    Broker<CONNS, REGS, RULES, IFACES, S, C>
where
    S: RouteStorage,
    C: ConnStorage,
{
    /// Replaces the whitelist; the new rules apply to open connections and
    /// later ones alike (see the [module docs](self) for what that means
    /// and the **Decisions**). When the new whitelist holds no rules, every
    /// open remote connection is reported as [`Event::Revoked`] for the
    /// adapter to close.
    pub fn set_whitelist(
        &mut self,
        whitelist: Whitelist<RULES, IFACES>,
        out: &mut impl Outbox,
    ) -> WhitelistChange {
        let mut change = WhitelistChange {
            rules_added: unmatched::<RULES>(whitelist.rules(), self.whitelist.rules()),
            rules_removed: unmatched::<RULES>(self.whitelist.rules(), whitelist.rules()),
            interfaces_changed: whitelist.interfaces() != self.whitelist.interfaces(),
            remote_closed: 0,
        };
        self.whitelist = whitelist;
        if self.whitelist.has_rules() {
            return change;
        }
        for i in 0..self.slots.slots().len() {
            let Some(slot) = self.slots.slots_mut().get_mut(i) else {
                continue;
            };
            let Ok(index) = u16::try_from(i) else {
                continue;
            };
            let id = super::ConnId::new(index, slot.generation);
            let Some(info) = slot.conn.as_mut() else {
                continue;
            };
            if info.kind != PeerKind::Remote || info.closing.is_some() {
                continue;
            }
            info.closing = Some(Closing::Revoked);
            change.remote_closed += 1;
            out.event(Event::Revoked { conn: id });
        }
        change
    }
}

/// How many rules of `a` have no equal rule in `b`, each rule of `b`
/// matching at most one of `a` (so duplicates count). Quadratic, on at most
/// `RULES` rules, once per reload.
fn unmatched<const RULES: usize>(a: &[Rule], b: &[Rule]) -> usize {
    let mut taken = [false; RULES];
    let mut count = 0;
    for rule in a {
        let partner = b
            .iter()
            .zip(taken.iter_mut())
            .find(|(other, taken)| !**taken && *other == rule);
        match partner {
            Some((_, taken)) => *taken = true,
            None => count += 1,
        }
    }
    count
}
