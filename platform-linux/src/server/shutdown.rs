//! Shutdown: pending output gets one last send, sockets close (the socket
//! file goes when the loop is dropped), and one line sums up the run.

use super::event_loop::EventLoop;
use super::outbox::FlushWhile;
use crate::sdnotify::State;

/// Counters of the loop itself, logged at shutdown (the broker keeps the
/// protection and flow counters, the outbox the output ones).
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) accepted: u64,
    pub(super) frames_in: u64,
}

impl EventLoop {
    /// Last sends, then everything closes.
    pub(super) fn shutdown(&mut self) {
        self.systemd
            .notify(&[State::Stopping, State::Status("stopping")]);
        for idx in 0..self.conns.len() {
            if let Some(Some(conn)) = self.conns.get(idx) {
                if self.out.pending_len(idx) > 0 {
                    let _ = self.out.flush(idx, conn.socket.fd(), FlushWhile::Open);
                }
            }
        }
        let open = self.conns.iter().filter(|c| c.is_some()).count();
        self.conns.clear();
        let status = self.broker.status();
        let guard = self.broker.protection();
        let flow = self.broker.flow_stats();
        let out = self.out.stats();
        ::log::info!(
            "stopped: {open} connection(s) closed; {} accepted, {} refused ({} remote), {} frames \
             in, {} frames out, {} skipped inputs ({} oversize), {} rate-limited, {} bad \
             messages, {} delivered, {} dropped, {} unicast errors; flow control: {} pauses, {} \
             stalled disconnects, {} observer events dropped; {} overflow disconnects",
            self.stats.accepted,
            guard.refused,
            guard.remote_refused,
            self.stats.frames_in,
            out.frames,
            out.skipped,
            guard.oversize,
            guard.rate_limited,
            out.bad_messages,
            status.delivered,
            status.dropped,
            status.unicast_errors,
            flow.pauses,
            flow.stalls,
            flow.observer_events_dropped,
            out.overflows
        );
    }
}
