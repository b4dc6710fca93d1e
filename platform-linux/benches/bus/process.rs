//! A server process the benchmark starts (`notifysvc`, `nats-server`): its
//! log read line by line on a thread of its own, stopped by PID with
//! SIGTERM (SIGKILL after a grace period), and killed when the guard is
//! dropped, so a benchmark that fails or panics leaves nothing running.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::{err, lock, Res};

/// Log lines kept for error messages.
const KEPT_LINES: usize = 40;
/// How long a stopped process may take to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// How long the guard's drop waits after SIGTERM before SIGKILL.
const DROP_GRACE: Duration = Duration::from_secs(2);
/// How long to wait for the log's last lines once the process exited.
const LOG_TAIL_WAIT: Duration = Duration::from_secs(2);

/// Whether the process leads a process group of its own (a wrapper such
/// as strace may not pass SIGTERM on: the stop signal then goes to the
/// whole group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Signals go to the process.
    Same,
    /// The process leads its own group; signals go to the group.
    Own,
}

/// A running server process (see the module docs).
pub struct Process {
    name: &'static str,
    child: Child,
    group: Group,
    log: Arc<Mutex<VecDeque<String>>>,
    /// Closed by the log thread when the process's stderr ends.
    log_done: mpsc::Receiver<()>,
}

impl Process {
    /// Starts `command` with its stderr piped to a log thread that keeps
    /// the last lines and calls `on_line` for each line.
    pub fn spawn(
        name: &'static str,
        mut command: Command,
        group: Group,
        mut on_line: impl FnMut(&str) + Send + 'static,
    ) -> Res<Process> {
        if group == Group::Own {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(format!("cannot start {name}: {e}")))?;
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err("no stderr pipe"));
        };
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let log2 = Arc::clone(&log);
        let (done_tx, log_done) = mpsc::channel::<()>();
        let drained = thread::Builder::new()
            .name(format!("{name}-log"))
            .stack_size(128 * 1024)
            .spawn(move || {
                let _done = done_tx; // dropped (channel closed) at the end
                let mut rd = BufReader::new(stderr);
                let mut raw = Vec::new();
                // Read to the end whatever comes (a line that is not UTF-8
                // included): a pipe nobody drains would block the server.
                while matches!(rd.read_until(b'\n', &mut raw), Ok(n) if n > 0) {
                    let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
                    raw.clear();
                    on_line(&line);
                    let mut l = lock(&log2);
                    if l.len() == KEPT_LINES {
                        l.pop_front();
                    }
                    l.push_back(line);
                }
            });
        let process = Process {
            name,
            child,
            group,
            log,
            log_done,
        };
        drained?; // on error, `process` is dropped: the child is killed
        Ok(process)
    }

    /// Waits until the log watcher reports readiness on `rx`: the address
    /// the server listens on (`Some`), then ready (`None`). A server that
    /// is not ready within `timeout` is killed.
    pub fn wait_ready(
        &mut self,
        rx: &mpsc::Receiver<Option<SocketAddr>>,
        timeout: Duration,
    ) -> Res<SocketAddr> {
        let deadline = Instant::now() + timeout;
        let mut addr = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Some(a)) => addr = Some(a),
                Ok(None) => break,
                Err(_) => {
                    self.kill();
                    return Err(err(format!(
                        "{} did not become ready:\n{}",
                        self.name,
                        self.log_tail()
                    )));
                }
            }
        }
        addr.ok_or_else(|| err(format!("{} did not say its port", self.name)))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size so far (`VmHWM` of `/proc/PID/status`), in
    /// KiB.
    pub fn peak_rss_kib(&self) -> Res<u64> {
        let pid = self.pid();
        let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        text.lines()
            .find_map(|l| {
                let rest = l.strip_prefix("VmHWM:")?;
                rest.trim().trim_end_matches("kB").trim().parse().ok()
            })
            .ok_or_else(|| err(format!("no VmHWM in /proc/{pid}/status")))
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        lock(&self.log)
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops it with SIGTERM (SIGKILL after 30 s, which is an error) and
    /// waits (briefly) until its log has been read to the end.
    pub fn stop(&mut self) -> Res<ExitStatus> {
        let status = self.terminate(STOP_GRACE)?;
        let _ = self.log_done.recv_timeout(LOG_TAIL_WAIT);
        Ok(status)
    }

    /// Kills it now, without a grace period.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }

    fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.pid()).unwrap_or(i32::MAX);
        let target = match self.group {
            Group::Same => pid,
            Group::Own => -pid,
        };
        let _ = kill(Pid::from_raw(target), signal);
    }

    fn terminate(&mut self, grace: Duration) -> Res<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            thread::sleep(Duration::from_millis(5));
        }
        self.kill();
        Err(err(format!(
            "{} did not stop on SIGTERM within {grace:?}; killed",
            self.name
        )))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.terminate(DROP_GRACE);
    }
}
