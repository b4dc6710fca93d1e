//! What leaves the terminal: the callbacks of the proxy registrations.
//!
//! For each (app, notification) another terminal `T` exports, the bridge
//! registers `app@T` for `notification` on its local server, on behalf of
//! that app (impersonation), with [`Client::register_deferred`]: the
//! callback gets the notification and its ack token, and
//!
//! - refuses what came from another terminal (`from` is `x@T'`): **no
//!   transit**, a notification crosses at most one bridge, so two bridges
//!   can never pass one back and forth (a unicast is given back);
//! - refuses what no `out` rule allows, matched on (from, to as sent —
//!   `app@T`, `1` or `*` — notification) (a unicast is given back: the
//!   server routes it to another receiver or returns it to its sender);
//! - publishes a unicast (`app@T` or `"1"`) to `<prefix>/T/<app or 1>/<n>`
//!   with an `id`, and hands the token to the hub, which acknowledges or
//!   gives it back on its outcome ([`crate::hub`]);
//! - publishes a broadcast once to `<prefix>/*/*/<n>`, from the first
//!   proxy (by name) of that notification only: the server sends a
//!   broadcast once per connection and the library runs every matching
//!   callback.
//!
//! [`Client::register_deferred`]: nfy_linux::client::Client::register_deferred

use std::sync::atomic::Ordering;

use log::debug;
use nfy_linux::client::{AckToken, Delivery};

use crate::counters::bump;
use crate::hub::{Command, Outgoing, Unicast};
use crate::inbound::PROBE_PARAM;
use crate::names::{split_qualified, TerminalId};
use crate::payload::Notification;
use crate::{Shared, BRIDGE_APP};

/// One proxy registration: `app` of terminal `terminal`, registered here
/// as `qualified` for `notification`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Proxy {
    /// The notification ID.
    pub notification: String,
    /// `app@terminal`.
    pub qualified: String,
    /// The app there.
    pub app: String,
    /// Its terminal.
    pub terminal: TerminalId,
}

/// The callback of `proxy`.
pub fn deliver(shared: &Shared, proxy: &Proxy, d: &Delivery<'_>, token: AckToken) {
    if d.from == BRIDGE_APP {
        // A probe of the inbound worker (crate::inbound): it runs after
        // whatever this registration received before it.
        if let Some(seq) = d.parameter_json()[PROBE_PARAM].as_u64() {
            token.ack();
            shared.probes.proxy_seen(seq, &proxy.qualified);
            return;
        }
    }
    let c = &shared.counters;
    if split_qualified(d.from).is_some_and(|(_, t)| t != shared.me) {
        debug!(
            "not forwarded (no transit): {} from {} to {}",
            d.notification, d.from, d.to
        );
        bump(&c.refused_out);
        token.give_back();
        return;
    }
    if !shared.rules.allows_out(d.from, d.to, d.notification) {
        debug!(
            "not forwarded (no out rule): {} from {} to {}",
            d.notification, d.from, d.to
        );
        bump(&c.refused_out);
        token.give_back();
        return;
    }
    let broadcast = d.to == "*";
    if broadcast {
        let first = shared
            .proxies
            .read()
            .ok()
            .and_then(|p| p.iter().find(|q| q.notification == d.notification).cloned());
        if first.as_ref() != Some(proxy) {
            return;
        }
    }
    let id = (!broadcast).then(|| shared.next_id.fetch_add(1, Ordering::Relaxed));
    let to = if broadcast || d.to == "1" {
        d.to
    } else {
        proxy.app.as_str()
    };
    let payload = Notification {
        terminal: Some(shared.me.to_string()),
        id,
        from: d.from.to_owned(),
        to: Some(to.to_owned()),
        notification: Some(d.notification.to_owned()),
        flags: d.flags,
        parameter: serde_json::value::RawValue::from_string(d.parameter.to_owned()).ok(),
    };
    let Ok(payload) = serde_json::to_vec(&payload) else {
        token.give_back();
        return;
    };
    let topic = shared
        .topics
        .notify((!broadcast).then_some(&proxy.terminal), to, d.notification);
    let unicast = id.map(|id| Unicast {
        id,
        terminal: proxy.terminal.clone(),
        token,
    });
    if broadcast {
        bump(&c.forwarded_broadcasts);
    } else {
        bump(&c.forwarded_unicasts);
    }
    // If the hub is gone (stopping), the token inside is dropped: given
    // back.
    let _ = shared.cmd.send(Command::Publish(Outgoing {
        topic,
        payload,
        retain: false,
        unicast,
    }));
}
