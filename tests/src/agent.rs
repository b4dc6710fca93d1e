//! Driving a client process: [`Agent`] starts the profile's agent binary
//! (`src/agent_program.rs`) against a server, sends it commands and
//! collects its replies and callback events, each stamped with its
//! position in the agent's output so tests can check order.
//!
//! Waiting is always for an event (a reply, a callback) with
//! [`DEADLINE`] as the bound for a hang; the only timed waits are the
//! negative checks of [`Agent::expect_no_event`].

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::ServerProcess;
use crate::target::Target;
use crate::DEADLINE;

/// A line of the agent's output and its position.
#[derive(Debug, Clone)]
pub struct Line {
    /// Position in the agent's output (0 = first line).
    pub seq: u64,
    /// The line.
    pub value: Value,
}

#[derive(Debug, Default)]
struct Output {
    lines: Mutex<(VecDeque<Line>, bool)>,
    changed: Condvar,
}

impl Output {
    /// Removes and returns the first line matching `pred`, waiting at
    /// most `timeout`.
    fn take(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Line> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lines.lock().unwrap();
        loop {
            if let Some(i) = state.0.iter().position(|l| pred(&l.value)) {
                return state.0.remove(i);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if state.1 || left.is_zero() {
                return None;
            }
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }
}

/// A running agent process.
#[derive(Debug)]
pub struct Agent {
    /// A name for failure messages.
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<Output>,
    next_id: u64,
}

impl Agent {
    /// Starts `target`'s agent connected to `server`, and waits until it
    /// is connected.
    pub fn start(target: &Target, server: &ServerProcess, name: &str) -> Agent {
        let mut cmd = Command::new(target.agent_bin);
        cmd.env("NFY_SOCKET", server.socket())
            .env("NFY_PORT", server.port().to_string());
        Self::spawn(cmd, name)
    }

    /// Starts an agent process from `cmd` (which sets the program and the
    /// server's address) and waits until it is connected.
    pub fn spawn(mut cmd: Command, name: &str) -> Agent {
        let mut child = cmd
            .env_remove("NFY_LOGMASK")
            .env("RUST_LOG", "off")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let output = Arc::new(Output::default());
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            for (seq, line) in (0u64..).zip(BufReader::new(stdout).lines()) {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| json!({"garbage": line, "error": e.to_string()}));
                sink.lines.lock().unwrap().0.push_back(Line { seq, value });
                sink.changed.notify_all();
            }
            sink.lines.lock().unwrap().1 = true;
            sink.changed.notify_all();
        });
        let stdin = child.stdin.take();
        let agent = Agent {
            name: name.to_owned(),
            child,
            stdin,
            output,
            next_id: 0,
        };
        let ready = agent
            .output
            .take(DEADLINE, |v| v.get("ready").is_some())
            .unwrap_or_else(|| panic!("agent {name} did not start"));
        assert_eq!(ready.value["ready"], true, "agent {name}: {}", ready.value);
        agent
    }

    /// Sends `cmd` (an object with `op`) without waiting; returns its id
    /// for [`Agent::reply`].
    pub fn send(&mut self, mut cmd: Value) -> u64 {
        self.next_id += 1;
        cmd["req"] = json!(self.next_id);
        let stdin = self.stdin.as_mut().expect("agent stdin closed");
        writeln!(stdin, "{cmd}").unwrap();
        stdin.flush().unwrap();
        self.next_id
    }

    /// Waits for the reply to command `id`.
    pub fn reply(&self, id: u64) -> Line {
        self.output
            .take(DEADLINE, |v| v["reply"] == id)
            .unwrap_or_else(|| panic!("agent {}: no reply to command {id}", self.name))
    }

    /// The reply to command `id` if it comes within `timeout`.
    pub fn reply_within(&self, id: u64, timeout: Duration) -> Option<Line> {
        self.output.take(timeout, |v| v["reply"] == id)
    }

    /// Runs `cmd` and returns its reply.
    pub fn call(&mut self, cmd: Value) -> Value {
        let id = self.send(cmd);
        self.reply(id).value
    }

    /// Runs `cmd` and asserts that it returned `OK` (code 0).
    pub fn ok(&mut self, cmd: Value) -> Value {
        let what = cmd.to_string();
        let reply = self.call(cmd);
        assert_eq!(reply["code"], 0, "agent {}: {what} -> {reply}", self.name);
        reply
    }

    /// Sets the app ID.
    pub fn app(&mut self, id: &str) -> &mut Self {
        self.ok(json!({"op": "app", "id": id}));
        self
    }

    /// Registers `notification` under `label` with `priority` (as the
    /// agent's app ID), then syncs, so the registration is in force for
    /// what others send afterwards.
    pub fn register(&mut self, label: &str, notification: &str, priority: i32) -> &mut Self {
        self.ok(
            json!({"op": "register", "label": label, "notification": notification,
                       "priority": priority}),
        );
        self.sync()
    }

    /// [`Agent::register`] on behalf of app `to` (impersonation).
    pub fn register_as(
        &mut self,
        label: &str,
        to: &str,
        notification: &str,
        priority: i32,
    ) -> &mut Self {
        self.ok(json!({"op": "register", "label": label, "as": to,
                       "notification": notification, "priority": priority}));
        self.sync()
    }

    /// Unregisters the registration `label` (returns when the agent's
    /// unregister returned) and syncs.
    pub fn unregister(&mut self, label: &str) -> &mut Self {
        let r = self.ok(json!({"op": "unregister", "label": label}));
        assert_eq!(
            r["found"], true,
            "agent {}: no registration {label}",
            self.name
        );
        self.sync()
    }

    /// Waits until the server handled everything this agent sent.
    pub fn sync(&mut self) -> &mut Self {
        self.ok(json!({"op": "sync"}));
        self
    }

    /// Sends a notification with the idiomatic API; returns the result
    /// code.
    pub fn notify(&mut self, to: &str, notification: &str, parameter: Value, flags: u32) -> i64 {
        self.call(
            json!({"op": "notify", "to": to, "notification": notification,
                         "parameter": parameter, "flags": flags}),
        )["code"]
            .as_i64()
            .unwrap()
    }

    /// Sends a notification from `from` (impersonation); returns the result
    /// code.
    pub fn notify_from(
        &mut self,
        from: &str,
        to: &str,
        notification: &str,
        parameter: Value,
    ) -> i64 {
        self.call(json!({"op": "notify", "from": from, "to": to,
                         "notification": notification, "parameter": parameter}))["code"]
            .as_i64()
            .unwrap()
    }

    /// Waits for the next callback event (any kind).
    pub fn event(&self) -> Line {
        self.output
            .take(DEADLINE, |v| v.get("event").is_some())
            .unwrap_or_else(|| panic!("agent {}: no event in time", self.name))
    }

    /// The next event if one comes within `timeout`.
    pub fn try_event(&self, timeout: Duration) -> Option<Line> {
        self.output.take(timeout, |v| v.get("event").is_some())
    }

    /// Waits for the next event of `kind` (skipping none: the next event
    /// must be of that kind).
    pub fn expect_event(&self, kind: &str) -> Value {
        let line = self.event();
        assert_eq!(
            line.value["event"], kind,
            "agent {}: {}",
            self.name, line.value
        );
        line.value
    }

    /// Waits for the first event matching `pred`, leaving the others.
    pub fn event_where(&self, pred: impl Fn(&Value) -> bool) -> Line {
        self.output
            .take(DEADLINE, |v| v.get("event").is_some() && pred(v))
            .unwrap_or_else(|| panic!("agent {}: no matching event in time", self.name))
    }

    /// Asserts that no event arrives within `quiet` (a negative check: it
    /// can only fail, never synchronise).
    pub fn expect_no_event(&self, quiet: Duration) {
        if let Some(line) = self.output.take(quiet, |v| v.get("event").is_some()) {
            panic!("agent {}: unexpected event {}", self.name, line.value);
        }
    }

    /// Asks the agent to exit and waits for it.
    pub fn exit(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "{}", json!({"op": "exit"}));
        }
        if crate::server::wait_exit(&mut self.child, DEADLINE).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.shutdown();
    }
}
