//! The `notifysvc` process of the nfy systems: found next to the
//! benchmark, started on a fresh socket and free port, optionally pinned
//! (`taskset -c CPU`) or wrapped (`valgrind`, `strace`), stopped with
//! SIGTERM.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{err, lock, Res};
use crate::process::{Group, Process};

/// How long a server may take to say it is ready (valgrind is slow).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the `notifysvc` binary is: `$NFY_BENCH_NOTIFYSVC`, else the one
/// Cargo built for this benchmark (`CARGO_BIN_EXE_notifysvc`, the release
/// build `cargo bench` makes), else `notifysvc` next to the benchmark
/// executable's directory (`target/release/deps/bus-*` → `target/release/`).
pub fn notifysvc_path() -> Res<PathBuf> {
    if let Some(p) = std::env::var_os("NFY_BENCH_NOTIFYSVC") {
        return Ok(PathBuf::from(p));
    }
    let built = PathBuf::from(env!("CARGO_BIN_EXE_notifysvc"));
    if built.is_file() {
        return Ok(built);
    }
    let exe = std::env::current_exe()?;
    let sibling = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("notifysvc"))
        .filter(|p| p.is_file());
    sibling.ok_or_else(|| {
        err(format!(
            "notifysvc not found (looked at {} and next to {}); build it with \
             `cargo build --release -p nfy-linux` or set NFY_BENCH_NOTIFYSVC",
            built.display(),
            exe.display()
        ))
    })
}

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Pin the server to this CPU with `taskset -c`.
    pub cpu: Option<usize>,
    /// A command to run the server under (e.g. `valgrind --tool=callgrind`).
    pub wrap: Vec<String>,
    /// `--max-queue` (default: the server's).
    pub max_queue: Option<String>,
    /// TLS on a loopback port of its own (issue 16's rows).
    pub tls: Option<Arc<BenchTls>>,
}

/// The bench's certificates (made by it, in a directory of its own): the
/// server's, its CA, a client's.
pub struct BenchTls {
    pki: nfy_test_support::tls::Pki,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for BenchTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchTls")
            .field("ca", &self.pki.ca.pem)
            .finish_non_exhaustive()
    }
}

impl BenchTls {
    /// Makes them.
    pub fn new() -> Res<BenchTls> {
        let dir = tempfile::tempdir()?;
        let pki = nfy_test_support::tls::Pki::new(dir.path(), &["127.0.0.1"], "bench");
        Ok(BenchTls { pki, _dir: dir })
    }

    /// The client's settings for a server at `addr`.
    pub fn settings(&self) -> Res<nfy_linux::client::TlsSettings> {
        let c = &self.pki.client;
        nfy_linux::client::TlsSettings::from_files(
            &self.pki.ca.pem,
            Some((&c.cert, &c.key)),
            "127.0.0.1",
        )
        .map_err(|e| err(e.to_string()))
    }
}

/// A running `notifysvc`.
pub struct Server {
    process: Process,
    /// Its Unix socket.
    pub socket: PathBuf,
    /// Its loopback TCP address.
    pub tcp: SocketAddr,
    /// Its loopback TLS address, when started with TLS.
    pub tls: Option<SocketAddr>,
    /// The statistics line it logs when it stops.
    stopped: Arc<Mutex<Option<String>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `exe` and waits until it is ready.
    pub fn start(exe: &Path, launch: &Launch) -> Res<Server> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("notify.sock");
        // An empty configuration: local clients only, whatever the defaults
        // under /home hold on this machine.
        let config = dir.path().join("empty.cfg");
        std::fs::write(&config, "")?;
        let mut args: Vec<String> = vec![
            "--port".into(),
            "0".into(),
            "--socket".into(),
            socket.display().to_string(),
        ];
        if let Some(q) = &launch.max_queue {
            args.push("--max-queue".into());
            args.push(q.clone());
        }
        if let Some(tls) = &launch.tls {
            let p = &tls.pki;
            for (option, path) in [
                ("--tls-cert", &p.server.cert),
                ("--tls-key", &p.server.key),
                ("--tls-client-ca", &p.ca.pem),
            ] {
                args.push(option.into());
                args.push(path.display().to_string());
            }
            args.extend(["--tls-port".into(), "0".into()]);
        }
        args.push(config.display().to_string());
        let mut argv: Vec<String> = Vec::new();
        if let Some(cpu) = launch.cpu {
            argv.extend(["taskset".into(), "-c".into(), cpu.to_string()]);
        }
        argv.extend(launch.wrap.iter().cloned());
        argv.push(exe.display().to_string());
        argv.extend(args);
        let (program, rest) = argv.split_first().ok_or_else(|| err("empty command"))?;
        let mut command = Command::new(program);
        command
            .args(rest)
            .env("RUST_LOG", "info")
            .env_remove("NFY_LOGMASK");
        let group = if launch.wrap.is_empty() {
            Group::Same
        } else {
            Group::Own
        };
        let (tx, rx) = mpsc::channel::<Option<SocketAddr>>();
        let stopped = Arc::new(Mutex::new(None));
        let stopped2 = Arc::clone(&stopped);
        let tls_addr = Arc::new(Mutex::new(None));
        let tls_addr2 = Arc::clone(&tls_addr);
        let mut process = Process::spawn("notifysvc", command, group, move |line| {
            if let Some(rest) = line.split("listening on tls 127.0.0.1:").nth(1) {
                let port = rest.split_whitespace().next().unwrap_or("");
                if let Ok(port) = port.parse::<u16>() {
                    *lock(&tls_addr2) = Some(SocketAddr::from(([127, 0, 0, 1], port)));
                }
            }
            watch_log(line, &tx, &stopped2);
        })?;
        let tcp = process.wait_ready(&rx, START_TIMEOUT)?;
        let tls = *lock(&tls_addr);
        Ok(Server {
            process,
            socket,
            tcp,
            tls,
            stopped,
            _dir: dir,
        })
    }

    /// Peak resident set size so far, in KiB.
    pub fn peak_rss_kib(&self) -> Res<u64> {
        self.process.peak_rss_kib()
    }

    /// Stops the server with SIGTERM (SIGKILL after 30 s).
    pub fn stop(self) -> Res<()> {
        self.stop_with_stats().map(|_| ())
    }

    /// Stops the server and returns the statistics it logged on the way
    /// out (`None` when it logged none).
    pub fn stop_with_stats(mut self) -> Res<Option<ExitStats>> {
        let status = self.process.stop()?;
        if !status.success() {
            eprintln!(
                "bus: notifysvc exited with {status}:\n{}",
                self.process.log_tail()
            );
        }
        let line = lock(&self.stopped).take();
        Ok(line.map(|l| ExitStats::parse(&l)))
    }
}

/// The counters of notifysvc's last log line (`stopped: …; 12 accepted,
/// …, 3 unicast errors, 1 overflow disconnects`), by label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitStats {
    /// Each "<number> <label>" of the line.
    pub counters: BTreeMap<String, u64>,
}

impl ExitStats {
    /// Reads the counters of a `stopped:` line; parts that are not
    /// "<number> <label>" are skipped, parenthesised asides dropped.
    pub fn parse(line: &str) -> ExitStats {
        let rest = line.split_once("stopped:").map_or(line, |(_, r)| r);
        let mut counters = BTreeMap::new();
        for part in rest.split([',', ';']) {
            let part = match part.split_once('(') {
                Some((before, _)) => before,
                None => part,
            };
            let mut words = part.split_whitespace();
            let Some(Ok(n)) = words.next().map(str::parse::<u64>) else {
                continue;
            };
            let label = words.collect::<Vec<_>>().join(" ");
            if !label.is_empty() {
                *counters.entry(label).or_insert(0) += n;
            }
        }
        ExitStats { counters }
    }

    /// Unicast errors the server sent back (`None`: not in the line).
    pub fn unicast_errors(&self) -> Option<u64> {
        self.counters.get("unicast errors").copied()
    }

    /// Connections the server ended for its own reasons: every counter
    /// whose label names disconnects (`overflow disconnects`, and any
    /// other kind a later server counts). `None`: not in the line.
    pub fn disconnects(&self) -> Option<u64> {
        let mut found = None;
        for (label, n) in &self.counters {
            if label.contains("disconnect") {
                *found.get_or_insert(0) += n;
            }
        }
        found
    }
}

/// Watches the server's log: reports the TCP address and readiness, keeps
/// the statistics line, echoes warnings and errors.
fn watch_log(line: &str, tx: &mpsc::Sender<Option<SocketAddr>>, stopped: &Mutex<Option<String>>) {
    if let Some(rest) = line.split("listening on tcp 127.0.0.1:").nth(1) {
        let port = rest.split_whitespace().next().unwrap_or("");
        if let Ok(port) = port.parse::<u16>() {
            let _ = tx.send(Some(SocketAddr::from(([127, 0, 0, 1], port))));
        }
    }
    if line.contains(" ready (") {
        let _ = tx.send(None);
    }
    if line.contains(" stopped: ") {
        *lock(stopped) = Some(line.to_owned());
    }
    if line.contains(" WARN ") || line.contains(" ERROR ") {
        eprintln!("notifysvc: {line}");
    }
}
