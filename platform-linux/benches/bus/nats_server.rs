//! The `nats-server` process of the NATS peer (Debian package
//! `nats-server`): found on the `PATH` (or `$NFY_BENCH_NATS_SERVER`),
//! started on a free loopback port (`-p -1`: it picks one and logs it),
//! optionally pinned (`taskset -c CPU`; its Go runtime then runs with one
//! processor), stopped by PID.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{err, Res};
use crate::process::{Group, Process};

/// How long the server may take to say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Where `nats-server` is: `$NFY_BENCH_NATS_SERVER`, else the first
/// `nats-server` on the `PATH`; `None` when there is none.
pub fn nats_server_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NFY_BENCH_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

/// A running `nats-server`.
pub struct NatsServer {
    process: Process,
    /// Its client port on loopback.
    pub addr: SocketAddr,
    /// "Slow Consumer Detected" lines in its log so far: connections it
    /// ended (or cut off) because they did not read fast enough.
    slow_consumers: Arc<AtomicU64>,
}

impl NatsServer {
    /// Starts `exe` on a free loopback port, pinned to `cpu` when given,
    /// and waits until it is ready.
    pub fn start(exe: &Path, cpu: Option<usize>) -> Res<NatsServer> {
        let mut argv: Vec<String> = Vec::new();
        if let Some(cpu) = cpu {
            argv.extend(["taskset".into(), "-c".into(), cpu.to_string()]);
        }
        argv.push(exe.display().to_string());
        argv.extend(["-a", "127.0.0.1", "-p", "-1"].map(String::from));
        let (program, rest) = argv.split_first().ok_or_else(|| err("empty command"))?;
        let mut command = Command::new(program);
        command.args(rest);
        let (tx, rx) = mpsc::channel::<Option<SocketAddr>>();
        let slow_consumers = Arc::new(AtomicU64::new(0));
        let slow2 = Arc::clone(&slow_consumers);
        let mut process = Process::spawn("nats-server", command, Group::Same, move |line| {
            watch_log(line, &tx, &slow2);
        })?;
        let addr = process.wait_ready(&rx, START_TIMEOUT)?;
        Ok(NatsServer {
            process,
            addr,
            slow_consumers,
        })
    }

    /// Peak resident set size so far, in KiB.
    pub fn peak_rss_kib(&self) -> Res<u64> {
        self.process.peak_rss_kib()
    }

    /// Stops the server by PID (SIGTERM); returns how many slow consumers
    /// it logged.
    pub fn stop(mut self) -> Res<u64> {
        self.process.stop()?;
        Ok(self.slow_consumers.load(Ordering::Relaxed))
    }
}

/// Watches the server's log: reports the client port and readiness,
/// counts slow consumers, echoes warnings and errors.
fn watch_log(line: &str, tx: &mpsc::Sender<Option<SocketAddr>>, slow: &AtomicU64) {
    if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
        if let Ok(addr) = rest.trim().parse::<SocketAddr>() {
            let _ = tx.send(Some(addr));
        }
    }
    if line.contains("Server is ready") {
        let _ = tx.send(None);
    }
    if line.contains("Slow Consumer") {
        slow.fetch_add(1, Ordering::Relaxed);
    }
    if line.contains("[WRN]") || line.contains("[ERR]") || line.contains("[FTL]") {
        eprintln!("nats-server: {line}");
    }
}
