//! Remote peers for tests: a network namespace joined to this one by a
//! veth pair, with a private `/30` (the host end `.1`, the peer end `.2`
//! of the block) from an address range of the calling test binary.
//!
//! Code runs "on the remote peer" with [`Netns::run`]: a thread that joins
//! the namespace (`setns`, which changes only the calling thread), so its
//! sockets live there. Traffic goes only to loopback and to these
//! addresses. The namespace and the veth pair are removed on drop, also
//! when a test fails.
//!
//! Creating a namespace needs root (`CAP_SYS_ADMIN`, `CAP_NET_ADMIN`) and
//! iproute2; where `ip netns add` is not permitted (or `ip` is missing),
//! [`Netns::create`] says why and [`Netns::create_or_skip`] reports the
//! test skipped ([`crate::skip`]) instead of running it. Any later
//! failure is a test failure.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;

use crate::DEADLINE;

/// A test binary's address range: consecutive `/30` blocks, one per
/// namespace.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    /// Starts the names of the namespaces and interfaces (at most 4
    /// characters: an interface name has at most 15).
    pub tag: &'static str,
    /// The first address of the range (a multiple of 4).
    pub first: Ipv4Addr,
    /// How many `/30` blocks the range holds.
    pub blocks: u32,
    /// How many namespaces one test process creates at most. Each process
    /// takes its share of the range by its process id, so test processes
    /// running at once do not share addresses (nor names).
    pub per_process: u32,
}

/// A namespace and its veth pair; removed on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
    host_if: String,
    /// The address of the veth end in this (the host's) namespace.
    pub host_addr: Ipv4Addr,
    /// The address of the veth end in the namespace (the remote peer).
    pub peer_addr: Ipv4Addr,
}

/// Runs `ip ARGS`; its error output when it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Creates namespace number `n` of `range` (below
    /// [`Range::per_process`], distinct per test, so tests run in
    /// parallel) and a veth pair to it. `Err` only when the namespace
    /// itself cannot be created (no permission, no `ip`): the caller
    /// skips. Panics on any later failure.
    pub fn create(range: &Range, n: u32) -> Result<Netns, String> {
        assert!(range.tag.len() <= 4, "tag {:?} too long", range.tag);
        assert!(
            n < range.per_process && range.per_process <= range.blocks,
            "namespace {n} of {} per process in {} blocks",
            range.per_process,
            range.blocks
        );
        let pid = std::process::id() % 100_000;
        let block = (pid % (range.blocks / range.per_process)) * range.per_process + n;
        let base = u32::from(range.first) + block * 4;
        let tag = range.tag;
        let name = format!("{tag}-{pid}-{n}");
        ip(&["netns", "add", &name])?;
        let peer_if = format!("{tag}{pid}p{n}");
        // From here on, `ns` is dropped on the way out of a failure: the
        // namespace goes too.
        let ns = Netns {
            name,
            host_if: format!("{tag}{pid}h{n}"),
            host_addr: Ipv4Addr::from(base + 1),
            peer_addr: Ipv4Addr::from(base + 2),
        };
        let host = format!("{}/30", ns.host_addr);
        let peer = format!("{}/30", ns.peer_addr);
        let steps: [&[&str]; 7] = [
            &[
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer_if,
            ],
            &["link", "set", &peer_if, "netns", &ns.name],
            &["addr", "add", &host, "dev", &ns.host_if],
            &["link", "set", &ns.host_if, "up"],
            &["-n", &ns.name, "addr", "add", &peer, "dev", &peer_if],
            &["-n", &ns.name, "link", "set", &peer_if, "up"],
            &["-n", &ns.name, "link", "set", "lo", "up"],
        ];
        for step in steps {
            if let Err(e) = ip(step) {
                panic!("setting up the test network failed: {e}");
            }
        }
        Ok(ns)
    }

    /// [`Netns::create`], or, when namespaces are not permitted here,
    /// reports `test` skipped ([`crate::skip`]) and returns `None`.
    pub fn create_or_skip(range: &Range, n: u32, test: &str) -> Option<Netns> {
        match Netns::create(range, n) {
            Ok(ns) => Some(ns),
            Err(why) => {
                crate::skip(
                    test,
                    &format!(
                        "cannot create a network namespace (needs root or CAP_NET_ADMIN, and \
                         iproute2): {why}"
                    ),
                );
                None
            }
        }
    }

    /// The namespace's name (for `ip netns exec`, `/run/netns/<name>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the veth end in the host's namespace.
    pub fn host_if(&self) -> &str {
        &self.host_if
    }

    /// Runs `f` on a thread inside the namespace and returns its result.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// A TCP connection to `to` made from inside the namespace. The veth
    /// link may need a moment before it carries traffic: failures are
    /// retried until [`DEADLINE`], then it panics.
    pub fn connect(&self, to: SocketAddr) -> TcpStream {
        self.run(move || {
            let deadline = Instant::now() + DEADLINE;
            loop {
                match TcpStream::connect_timeout(&to, Duration::from_secs(2)) {
                    Ok(s) => return s,
                    Err(e) if Instant::now() < deadline => {
                        eprintln!("connecting to {to} from the namespace: {e}; retrying");
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("cannot connect to {to} from the namespace: {e}"),
                }
            }
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and so the pair;
        // the host end is removed explicitly in case it outlived it (a
        // half-made set-up).
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
        let _ = ip(&["link", "del", &self.host_if]);
    }
}
