//! The `notifysvc` process of the nfy systems: found next to the
//! benchmark, started on a fresh socket and free port, optionally pinned
//! (`taskset -c CPU`) or wrapped (`valgrind`, `strace`), stopped with
//! SIGTERM.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::{err, lock, Res};

/// How long a server may take to say it is ready (valgrind is slow).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Log lines kept for error messages.
const KEPT_LINES: usize = 40;

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
}

/// A running `notifysvc`.
pub struct Server {
    child: Child,
    /// The server leads its own process group (when wrapped).
    group: bool,
    /// Its Unix socket.
    pub socket: PathBuf,
    /// Its loopback TCP address.
    pub tcp: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
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
        args.push(config.display().to_string());
        let exe = exe.display().to_string();
        let mut argv: Vec<String> = Vec::new();
        if let Some(cpu) = launch.cpu {
            argv.extend(["taskset".into(), "-c".into(), cpu.to_string()]);
        }
        argv.extend(launch.wrap.iter().cloned());
        argv.push(exe);
        argv.extend(args);
        let (program, rest) = argv.split_first().ok_or_else(|| err("empty command"))?;
        let mut command = Command::new(program);
        if !launch.wrap.is_empty() {
            // A wrapper (strace) may not pass SIGTERM on: the server gets
            // its own process group, and the stop signal goes to the group.
            command.process_group(0);
        }
        let mut child = command
            .args(rest)
            .env("RUST_LOG", "info")
            .env_remove("NFY_LOGMASK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(format!("cannot start {program}: {e}")))?;
        let stderr = child.stderr.take().ok_or_else(|| err("no stderr pipe"))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel::<Option<SocketAddr>>();
        let log2 = Arc::clone(&log);
        thread::Builder::new()
            .name("notifysvc-log".into())
            .stack_size(128 * 1024)
            .spawn(move || drain_log(stderr, &log2, &tx))?;
        let mut tcp = None;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Some(addr)) => tcp = Some(addr),
                Ok(None) => break, // ready
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let lines: Vec<String> = lock(&log).iter().cloned().collect();
                    return Err(err(format!(
                        "notifysvc did not become ready:\n{}",
                        lines.join("\n")
                    )));
                }
            }
        }
        let tcp = tcp.ok_or_else(|| err("notifysvc did not say its TCP port"))?;
        Ok(Server {
            child,
            group: !launch.wrap.is_empty(),
            socket,
            tcp,
            log,
            _dir: dir,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of `/proc/PID/status` in KiB (`VmHWM`, `VmRSS`).
    pub fn status_kib(&self, field: &str) -> Res<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        text.lines()
            .find_map(|l| {
                let rest = l.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim().trim_end_matches("kB").trim().parse().ok()
            })
            .ok_or_else(|| err(format!("no {field} in /proc/{}/status", self.pid())))
    }

    /// Peak resident set size so far, in KiB.
    pub fn peak_rss_kib(&self) -> Res<u64> {
        self.status_kib("VmHWM")
    }

    /// Stops the server with SIGTERM (SIGKILL after 30 s).
    pub fn stop(mut self) -> Res<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> Res<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = i32::try_from(self.pid()).unwrap_or(i32::MAX);
        let target = if self.group { -pid } else { pid };
        let _ = kill(Pid::from_raw(target), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    let lines: Vec<String> = lock(&self.log).iter().cloned().collect();
                    eprintln!("bus: notifysvc exited with {status}:\n{}", lines.join("\n"));
                }
                return Ok(());
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(err("notifysvc did not stop on SIGTERM"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// Reads the server's log: reports the TCP address and readiness, keeps
/// the last lines, echoes warnings and errors.
fn drain_log(
    stderr: std::process::ChildStderr,
    log: &Mutex<VecDeque<String>>,
    tx: &mpsc::Sender<Option<SocketAddr>>,
) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { return };
        if let Some(rest) = line.split("listening on tcp 127.0.0.1:").nth(1) {
            let port = rest.split_whitespace().next().unwrap_or("");
            if let Ok(port) = port.parse::<u16>() {
                let _ = tx.send(Some(SocketAddr::from(([127, 0, 0, 1], port))));
            }
        }
        if line.contains(" ready (") {
            let _ = tx.send(None);
        }
        if line.contains(" WARN ") || line.contains(" ERROR ") {
            eprintln!("notifysvc: {line}");
        }
        let mut l = lock(log);
        if l.len() == KEPT_LINES {
            l.pop_front();
        }
        l.push_back(line);
    }
}
