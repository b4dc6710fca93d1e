//! A remote peer for profile tests: a network namespace joined to this
//! one by a veth pair, with private addresses from `10.232.0.0/24` (one
//! `/30` per namespace: the host end `.4k+1`, the peer end `.4k+2`).
//!
//! Code runs "on the remote peer" with [`Netns::run`]: a thread that joins
//! the namespace (`setns`, which changes only the calling thread), so its
//! sockets live there. Traffic goes only to loopback and to these
//! addresses. Everything is removed on drop.
//!
//! Creating a namespace needs `CAP_SYS_ADMIN`; where `ip netns add` is not
//! permitted (or `ip` is missing), [`Netns::create`] says why and the test
//! prints `SKIPPED: …` to stderr instead of running. Any later failure is a
//! test failure.

use std::fs::File;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};

use nix::sched::CloneFlags;

static NEXT: AtomicU8 = AtomicU8::new(0);

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
    /// Creates a namespace and a veth pair to it. `Err` only when the
    /// namespace itself cannot be created (no permission, no `ip`): the
    /// caller skips. Panics on any later failure.
    pub fn create() -> Result<Netns, String> {
        let k = NEXT.fetch_add(1, Ordering::SeqCst) % 64;
        let pid = std::process::id() % 100_000;
        let name = format!("nfyv-{pid}-{k}");
        ip(&["netns", "add", &name])?;
        let host_if = format!("nfyv{pid}x{k}");
        let peer_if = format!("nfyv{pid}y{k}");
        let ns = Netns {
            name,
            host_if,
            host_addr: Ipv4Addr::new(10, 232, 0, 4 * k + 1),
            peer_addr: Ipv4Addr::new(10, 232, 0, 4 * k + 2),
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

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
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
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and so the pair;
        // the host end is removed explicitly in case it outlived it.
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
        let _ = ip(&["link", "del", &self.host_if]);
    }
}

/// Creates a [`Netns`], or reports the test skipped (`SKIPPED: <test>:
/// …` on stderr, see [`crate::skip`]) and returns `None` when namespaces
/// are not permitted here.
pub fn create_or_skip(test: &str) -> Option<Netns> {
    match Netns::create() {
        Ok(ns) => Some(ns),
        Err(why) => {
            crate::skip(test, &format!("cannot create a network namespace ({why})"));
            None
        }
    }
}
