//! SIGHUP: reading the whitelist configuration again.
//!
//! The configuration is found and read as at start ([`config::load_for`]:
//! the file given on the command line, or the first existing default
//! location, looked up again; a profile that ignores configuration, the
//! Verix-style one, logs that there is nothing to reload and goes on).
//! When the file is unreadable or invalid, the error is logged with the
//! file and, for a bad line, its number, and the configuration in force
//! stays, whole. Otherwise the new whitelist goes to the broker
//! ([`Broker::set_whitelist`](nfy_core::broker::Broker::set_whitelist)),
//! whose rules then apply to remote connections already open as well as
//! to new ones (registrations the new `out` rules forbid stop receiving;
//! notifies the new `in` rules forbid are dropped; the broker's docs hold
//! those **Decisions**), and one line logs what changed. Local
//! connections are untouched, the Unix socket stays where it is.
//!
//! # Listeners
//!
//! **Decision**: a reload never opens, closes or rebinds a listener.
//! Binding may fail halfway (a port taken meanwhile, an address gone, a
//! privilege the service no longer has), and a reload must leave a working
//! server; nor may it open remote access the new file does not allow. So
//! the TCP listeners stay those bound at start, and the new file can only
//! narrow who gets in through them:
//!
//! - A remote peer is admitted only on a local address where the new file
//!   would have the server listen ([`listen::plan_for`]: every address
//!   with rules and no `interface` line, else the `interface` lines'
//!   addresses); a remote connection already open on another address is
//!   disconnected. With no `in`/`out` rule at all, the broker closes
//!   remote access altogether (as a start without rules listens on
//!   loopback only).
//! - Where the new file asks for a listener that is not open (rules where
//!   there were none: the server listens on loopback only; a new
//!   `interface` line; every interface instead of some), a warning names
//!   each address: a restart is needed to listen there. Until then remote
//!   peers cannot reach those addresses.

use std::net::IpAddr;

use nfy_core::broker::PeerKind;

use super::config::{self, LoadedConfig};
use super::event_loop::EventLoop;
use super::listen::{self, TcpEntry, TcpPlan};
use super::outbox::CloseReason;
use super::systemd::monotonic_usec;
use crate::sdnotify::State;

/// The local addresses remote peers may connect to: those the
/// configuration would listen on. An unspecified address (`0.0.0.0`,
/// `::`) stands for every address of its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RemoteAddrs(Vec<IpAddr>);

impl RemoteAddrs {
    /// The addresses of the listeners bound at start (the configuration's
    /// plan, as far as it could be bound).
    pub(super) fn bound<'a>(listeners: impl IntoIterator<Item = &'a TcpEntry>) -> RemoteAddrs {
        RemoteAddrs(listeners.into_iter().map(|t| t.addr.ip()).collect())
    }

    /// The addresses a plan would listen on.
    fn planned(plan: &TcpPlan) -> RemoteAddrs {
        RemoteAddrs(plan.targets.iter().map(|t| t.addr.ip()).collect())
    }

    /// True when a connection that arrived at `local` may stay.
    pub(super) fn allows(&self, local: IpAddr) -> bool {
        self.0.iter().any(|a| covers(*a, local))
    }
}

/// True when a listener on `listener` receives connections for `addr`.
fn covers(listener: IpAddr, addr: IpAddr) -> bool {
    listener == addr || (listener.is_unspecified() && listener.is_ipv4() == addr.is_ipv4())
}

/// The addresses of `plan` no open listener (plain or TLS) receives
/// connections for.
fn unbound<'a>(
    plan: &'a TcpPlan,
    tcp: &[TcpEntry],
    tls: &[TcpEntry],
) -> Vec<&'a listen::BindTarget> {
    plan.targets
        .iter()
        .filter(|t| {
            !tcp.iter()
                .chain(tls)
                .any(|l| covers(l.addr.ip(), t.addr.ip()))
        })
        .collect()
}

impl EventLoop {
    /// Handles SIGHUP (see the module docs), telling systemd.
    pub(super) fn reload(&mut self, signal: &str) {
        self.systemd.notify(&[State::Reloading(monotonic_usec())]);
        let status = self.reload_config(signal);
        self.systemd.notify(&[State::Ready, State::Status(&status)]);
    }

    /// Reloads; the status line for systemd.
    fn reload_config(&mut self, signal: &str) -> String {
        if self.profile.ignore_config {
            ::log::info!(
                "received {signal}: the {} profile ignores configuration files; nothing to reload",
                self.profile.name
            );
            return "ready; nothing to reload (configuration files ignored)".into();
        }
        ::log::info!("received {signal}: reloading the configuration");
        let loaded = match config::load_for(&self.profile, &self.config) {
            Ok(loaded) => loaded,
            Err(e) => {
                let rules = self.broker.whitelist().rules().len();
                ::log::error!(
                    "configuration not reloaded, the previous one ({rules} rule(s)) stays in \
                     force: {e}"
                );
                return format!("reload failed, previous configuration kept: {e}");
            }
        };
        self.apply(loaded)
    }

    /// Puts a configuration that loaded in force.
    fn apply(&mut self, loaded: LoadedConfig) -> String {
        let LoadedConfig { path, whitelist } = loaded;
        if path != self.config_path {
            ::log::info!(
                "configuration file: {} (was {})",
                shown(path.as_deref()),
                shown(self.config_path.as_deref())
            );
        }
        let plan = listen::plan_for(&self.profile, &whitelist, self.port());
        for target in unbound(&plan, &self.tcp, &self.tls_listeners) {
            let ip = target.addr.ip();
            // As at start: an optional loopback or wildcard listener (IPv6
            // on a host without it) is not worth a warning.
            if !target.required && (ip.is_loopback() || ip.is_unspecified()) {
                ::log::debug!("not listening on tcp {ip} ({})", target.origin);
                continue;
            }
            ::log::warn!(
                "not listening on tcp {ip} ({}) although the configuration asks for it: \
                 listeners are opened at start only; restart notifysvc to listen there",
                target.origin
            );
        }
        let (rules, interfaces) = (whitelist.rules().len(), whitelist.interfaces().len());
        let had_rules = self.broker.whitelist().has_rules();
        let change = self.broker.set_whitelist(whitelist, &mut self.out);
        if had_rules && rules == 0 {
            ::log::info!(
                "the configuration has no in/out rules: remote access closed ({} remote \
                 connection(s) disconnected); local clients only until a reload brings rules back",
                change.remote_closed
            );
        }
        self.remote_addrs = RemoteAddrs::planned(&plan);
        let moved = self.close_remote_outside();
        self.config_path = path;
        let what = if change.is_empty() {
            format!("unchanged, {rules} rule(s), {interfaces} interface line(s)")
        } else {
            format!(
                "{rules} rule(s) ({} added, {} removed), {interfaces} interface line(s){}",
                change.rules_added,
                change.rules_removed,
                if change.interfaces_changed {
                    " (changed)"
                } else {
                    ""
                }
            )
        };
        ::log::info!(
            "configuration {} reloaded: {what}",
            shown(self.config_path.as_deref())
        );
        if moved > 0 {
            ::log::info!(
                "{moved} remote connection(s) disconnected: the configuration no longer lets \
                 remote peers in on the address they reached"
            );
        }
        format!("ready; configuration reloaded: {what}")
    }

    /// The TCP port listened on.
    fn port(&self) -> u16 {
        self.tcp.first().map_or(0, |t| t.addr.port())
    }

    /// Closes the open remote connections that reached a local address
    /// remote peers may no longer use; how many.
    fn close_remote_outside(&mut self) -> usize {
        let allowed = &self.remote_addrs;
        let mut closed = 0;
        for conn in self.conns.iter().flatten() {
            let open_remote = self
                .broker
                .connection(conn.id)
                .is_some_and(|c| c.kind == PeerKind::Remote && c.closing.is_none());
            if !open_remote {
                continue;
            }
            let local = conn.socket.local_addr();
            if local.is_some_and(|l| allowed.allows(l.ip())) {
                continue;
            }
            ::log::info!(
                "{} ({}): reached {}, where the configuration no longer lets remote peers in; \
                 disconnecting it",
                conn.id,
                conn.peer,
                local.map_or_else(|| "an unknown address".to_owned(), |l| l.ip().to_string())
            );
            self.out.close(conn.id, CloseReason::Revoked);
            closed += 1;
        }
        closed
    }
}

/// A configuration file's path for a log line.
fn shown(path: Option<&std::path::Path>) -> String {
    path.map_or_else(|| "(none)".to_owned(), |p| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn wildcards_cover_their_family_only() {
        let any4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        assert!(covers(any4, ip("10.1.2.3")));
        assert!(!covers(any4, ip("fe80::1")));
        assert!(covers(any6, ip("fe80::1")));
        assert!(covers(ip("10.1.2.3"), ip("10.1.2.3")));
        assert!(!covers(ip("10.1.2.3"), ip("10.1.2.4")));
        let some = RemoteAddrs(vec![ip("127.0.0.1"), ip("10.1.2.3")]);
        assert!(some.allows(ip("10.1.2.3")));
        assert!(!some.allows(ip("10.9.9.9")));
        assert!(!RemoteAddrs(Vec::new()).allows(ip("10.1.2.3")));
    }

    #[test]
    fn planned_addresses_no_listener_covers_are_reported() {
        use super::super::LinuxWhitelist;
        let open = |addr: &str| TcpEntry {
            addr: addr.parse().unwrap(),
            listener: mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap(),
        };
        let no_resolve = |_: &str| Ok(Vec::new());
        let loopback = [open("127.0.0.1:5899"), open("[::1]:5899")];
        let everywhere = [open("0.0.0.0:5899"), open("[::]:5899")];
        // Rules where there were none: every interface, not open.
        let rules = LinuxWhitelist::parse(b"in * * *\n").unwrap();
        let plan = listen::plan_tcp(&rules, 5899, &no_resolve);
        let missing: Vec<String> = unbound(&plan, &loopback, &[])
            .iter()
            .map(|t| t.addr.to_string())
            .collect();
        assert_eq!(missing, ["0.0.0.0:5899", "[::]:5899"]);
        assert!(unbound(&plan, &everywhere, &[]).is_empty());
        // Interface lines after every interface: covered, nothing to open.
        let iface = LinuxWhitelist::parse(b"in * * *\ninterface 10.1.2.3\n").unwrap();
        let plan = listen::plan_tcp(&iface, 5899, &no_resolve);
        assert!(unbound(&plan, &everywhere, &[]).is_empty());
        let missing: Vec<String> = unbound(&plan, &loopback, &[])
            .iter()
            .map(|t| t.addr.to_string())
            .collect();
        assert_eq!(missing, ["10.1.2.3:5899"]);
        // ... and remote peers are let in there only.
        let allowed = RemoteAddrs::planned(&plan);
        assert!(allowed.allows(ip("10.1.2.3")));
        assert!(!allowed.allows(ip("10.1.2.4")));
        // No rules: loopback only, which no remote peer reaches.
        let plan = listen::plan_tcp(&LinuxWhitelist::new(), 5899, &no_resolve);
        assert!(!RemoteAddrs::planned(&plan).allows(ip("10.1.2.3")));
        assert!(RemoteAddrs::bound(&everywhere).allows(ip("10.1.2.3")));
        // Plain TCP on loopback only (--no-plain-remote), TLS everywhere:
        // the TLS listeners cover the plan, and remote peers reach them.
        let rules = LinuxWhitelist::parse(b"in * * *\n").unwrap();
        let plan = listen::plan_tcp(&rules, 5899, &no_resolve);
        assert!(unbound(&plan, &loopback, &everywhere).is_empty());
        assert!(RemoteAddrs::bound(loopback.iter().chain(&everywhere)).allows(ip("10.1.2.3")));
    }
}
