//! The conformance agent: a client process the suite drives over its
//! stdin and stdout, one JSON object per line. It uses only the public
//! client APIs of `crate::platform` (the idiomatic `Client` and the
//! ADK-style `ipc_*` functions), and is compiled once against each
//! platform crate (`src/bin/agent_*.rs` name the crate `platform`): the
//! same source builds against `nfy-linux` and `nfy-verix-sim`, which is
//! the point — an application switches platform by its dependency.
//!
//! Protocol (see `nfy_tests::agent` for the driving side):
//!
//! - at start it connects a `Client` to the server of its environment
//!   (`NFY_SOCKET`, `NFY_PORT`) and writes `{"ready": true}` (or
//!   `{"ready": false, "error": …}` and exits 1);
//! - each command `{"req": N, "op": …, …}` gets exactly one reply
//!   `{"reply": N, "code": <result code>, …}` once it is done;
//! - `ipc_sync` round-trips the ADK functions' own connection with ADK
//!   calls only (a notification `conformance.adk-sync` to a private
//!   registration, which observers see too);
//! - callbacks write events: `{"event": "notify" | "unicast_error" |
//!   "observed" | "finished" | "self_unregistered", "label": …, …}`.
//!
//! Output lines are written whole under stdout's lock, so replies and
//! events of different threads never interleave within a line, and an
//! event written before a reply precedes it in the stream.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use serde_json::{json, Value};

use crate::platform::client::adk;
use crate::platform::client::{
    Client, Delivery, Error, Handle, NotifyOptions, Observed, Registration,
};

/// Writes one line to stdout (errors ignored: the driver went away).
fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Gated callbacks wait here until the gate is open.
static GATE: (Mutex<bool>, Condvar) = (Mutex::new(true), Condvar::new());

fn wait_gate() {
    let (open, cv) = &GATE;
    let mut g = lock(open);
    while !*g {
        g = cv.wait(g).unwrap_or_else(PoisonError::into_inner);
    }
}

fn set_gate(state: bool) {
    let (open, cv) = &GATE;
    *lock(open) = state;
    cv.notify_all();
}

fn delivery_event(kind: &str, label: &str, d: &Delivery<'_>) -> Value {
    json!({
        "event": kind, "label": label, "from": d.from, "to": d.to,
        "notification": d.notification, "flags": d.flags, "parameter": d.parameter_json(),
    })
}

fn observed_event(label: &str, o: &Observed<'_>) -> Value {
    json!({
        "event": "observed", "label": label, "from": o.from, "to": o.to,
        "notification": o.notification, "flags": o.flags,
    })
}

fn adk_notify(data: usize, from: &str, to: &str, n: &str, param: &Value, flags: u32) {
    emit(&json!({
        "event": "notify", "label": format!("adk:{data}"), "from": from, "to": to,
        "notification": n, "flags": flags, "parameter": param,
    }));
}

fn adk_unicast_error(data: usize, from: &str, to: &str, n: &str, param: &Value, flags: u32) {
    emit(&json!({
        "event": "unicast_error", "label": format!("adk:{data}"), "from": from, "to": to,
        "notification": n, "flags": flags, "parameter": param,
    }));
}

fn adk_observer(data: usize, from: &str, to: &str, n: &str, flags: u32) {
    emit(&json!({
        "event": "observed", "label": format!("adk:{data}"), "from": from, "to": to,
        "notification": n, "flags": flags,
    }));
}

/// Round trips of the ADK connection ([`adk_sync`]): the last nonce seen.
static ADK_SYNC: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());

/// The notification of the ADK round trips.
const ADK_SYNC_NOTIFICATION: &str = "conformance.adk-sync";

fn adk_sync_cb(_: usize, _: &str, _: &str, _: &str, param: &Value, _: u32) {
    let (seen, cv) = &ADK_SYNC;
    let nonce = param["nonce"].as_u64().unwrap_or_default();
    let mut g = lock(seen);
    *g = (*g).max(nonce);
    cv.notify_all();
}

/// Returns once the server has handled everything the process-wide ADK
/// connection sent before, with ADK calls only: a notification to a
/// private registration of this process, waited for. (The ADK functions
/// use their own connection, so `Client::sync` does not cover them.)
fn adk_sync(nonce: u64) -> i32 {
    let app = format!("conformance-adk-{}", std::process::id());
    let r = adk::ipc_register_notification_cb(
        ADK_SYNC_NOTIFICATION,
        Some(adk_sync_cb),
        0,
        i32::MAX,
        &app,
    );
    if r.code() != 0 {
        return r.code();
    }
    let param = json!({ "nonce": nonce });
    let r = adk::ipc_notify(&app, ADK_SYNC_NOTIFICATION, &param, 0, &app);
    if r.code() != 0 {
        return r.code();
    }
    let (seen, cv) = &ADK_SYNC;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut g = lock(seen);
    while *g < nonce {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return -1;
        }
        g = cv
            .wait_timeout(g, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    0
}

type Registrations = Arc<Mutex<HashMap<String, Registration>>>;

struct Agent {
    client: Client,
    adk_nonce: u64,
    regs: Registrations,
    handles: HashMap<String, Handle>,
}

fn code(r: Result<(), Error>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.result().code(),
    }
}

fn text<'a>(cmd: &'a Value, key: &str) -> &'a str {
    cmd[key].as_str().unwrap_or_default()
}

fn number(cmd: &Value, key: &str) -> i64 {
    cmd[key].as_i64().unwrap_or_default()
}

fn int<T: TryFrom<i64> + Default>(cmd: &Value, key: &str) -> T {
    T::try_from(number(cmd, key)).unwrap_or_default()
}

impl Agent {
    /// Runs one command; its reply (without the id), or `None` when the
    /// reply is sent later by a background thread.
    fn handle(&mut self, id: &Value, cmd: &Value) -> Option<Value> {
        let label = text(cmd, "label").to_owned();
        let reply = match text(cmd, "op") {
            "app" => json!({ "code": code(self.client.set_app_id(text(cmd, "id"))) }),
            "clear_app" => {
                self.client.clear_app_id();
                json!({ "code": 0 })
            }
            "register" => {
                let gated = cmd["gate"].as_bool().unwrap_or(false);
                let self_unregister = cmd["self_unregister"].as_bool().unwrap_or(false);
                let regs = Arc::clone(&self.regs);
                let l = label.clone();
                let callback = move |d: &Delivery<'_>| {
                    emit(&delivery_event("notify", &l, d));
                    if gated {
                        wait_gate();
                        emit(&json!({"event": "finished", "label": l}));
                    }
                    if self_unregister {
                        let reg = lock(&regs).remove(&l);
                        drop(reg);
                        emit(&json!({"event": "self_unregistered", "label": l}));
                    }
                };
                let notification = text(cmd, "notification");
                let priority: i32 = int(cmd, "priority");
                let result = match cmd["as"].as_str() {
                    Some(to) => self
                        .client
                        .register_as(to, notification, priority, callback),
                    None => self.client.register(notification, priority, callback),
                };
                match result {
                    Ok(reg) => {
                        // Take a replaced registration out before dropping
                        // it: its drop waits for its callbacks, which may
                        // need the map.
                        let old = lock(&self.regs).insert(label, reg);
                        drop(old);
                        json!({ "code": 0 })
                    }
                    Err(e) => json!({ "code": code(Err(e)) }),
                }
            }
            "unregister" => {
                let reg = lock(&self.regs).remove(&label);
                let found = reg.is_some();
                if cmd["background"].as_bool().unwrap_or(false) {
                    let id = id.clone();
                    std::thread::spawn(move || {
                        drop(reg);
                        emit(&json!({ "reply": id, "code": 0, "found": found }));
                    });
                    return None;
                }
                drop(reg);
                json!({ "code": 0, "found": found })
            }
            "close_gate" => {
                set_gate(false);
                json!({ "code": 0 })
            }
            "open_gate" => {
                set_gate(true);
                json!({ "code": 0 })
            }
            "notify" => {
                let options = NotifyOptions {
                    flags: int(cmd, "flags"),
                    from: cmd["from"].as_str(),
                };
                json!({ "code": code(self.client.notify_with(
                    text(cmd, "to"),
                    text(cmd, "notification"),
                    &cmd["parameter"],
                    options,
                )) })
            }
            "observe" => {
                let l = label.clone();
                match self.client.observe(move |o| emit(&observed_event(&l, o))) {
                    Ok(h) => {
                        self.handles.insert(label, h);
                        json!({ "code": 0 })
                    }
                    Err(e) => json!({ "code": code(Err(e)) }),
                }
            }
            "on_unicast_error" => {
                let l = label.clone();
                let h = self
                    .client
                    .on_unicast_error(move |d| emit(&delivery_event("unicast_error", &l, d)));
                self.handles.insert(label, h);
                json!({ "code": 0 })
            }
            "remove_handle" => {
                let found = self.handles.remove(&label).is_some();
                json!({ "code": 0, "found": found })
            }
            "sync" => json!({ "code": code(self.client.sync()) }),
            "status" => match self.client.status() {
                Ok(s) => json!({
                    "code": 0,
                    "local_connections": s.local_connections,
                    "remote_connections": s.remote_connections,
                    "registrations": s.registrations,
                    "observers": s.observers,
                    "unicast_errors": s.unicast_errors,
                }),
                Err(e) => json!({ "code": code(Err(e)) }),
            },
            "ipc_sync" => {
                self.adk_nonce += 1;
                json!({ "code": adk_sync(self.adk_nonce) })
            }
            "ipc_set_app_id" => json!({ "code": adk::ipc_set_app_id(text(cmd, "id")).code() }),
            "ipc_get_app_id" => json!({ "code": 0, "id": adk::ipc_get_app_id() }),
            "ipc_notify" => json!({ "code": adk::ipc_notify(
                text(cmd, "to"),
                text(cmd, "notification"),
                &cmd["parameter"],
                int(cmd, "flags"),
                text(cmd, "from"),
            ).code() }),
            "ipc_register" => json!({ "code": adk::ipc_register_notification_cb(
                text(cmd, "notification"),
                Some(adk_notify),
                int(cmd, "data"),
                int(cmd, "priority"),
                text(cmd, "to"),
            ).code() }),
            "ipc_unregister" => json!({ "code": adk::ipc_unregister_notification_cb(
                text(cmd, "notification"),
                Some(adk_notify),
                cmd["data"].as_u64().and_then(|d| usize::try_from(d).ok()),
                text(cmd, "to"),
            ).code() }),
            "ipc_register_unicast_error" => json!({ "code": adk::ipc_register_unicast_error(
                Some(adk_unicast_error),
                int(cmd, "data"),
            ).code() }),
            "ipc_register_observer" => json!({ "code": adk::ipc_register_observer(
                Some(adk_observer),
                int(cmd, "data"),
            ).code() }),
            "ipc_unregister_observer" => json!({ "code": adk::ipc_unregister_observer(
                Some(adk_observer),
                None,
            ).code() }),
            other => json!({ "code": -100, "error": format!("unknown op {other:?}") }),
        };
        Some(reply)
    }
}

/// The agent's `main`.
pub fn main() -> ExitCode {
    let client = match Client::connect() {
        Ok(c) => c,
        Err(e) => {
            emit(&json!({ "ready": false, "error": e.to_string() }));
            return ExitCode::FAILURE;
        }
    };
    let mut agent = Agent {
        client,
        adk_nonce: 0,
        regs: Arc::new(Mutex::new(HashMap::new())),
        handles: HashMap::new(),
    };
    emit(&json!({ "ready": true }));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let cmd: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                emit(&json!({ "reply": null, "code": -100, "error": e.to_string() }));
                continue;
            }
        };
        if cmd["op"] == "exit" {
            break;
        }
        let id = cmd["req"].clone();
        if let Some(mut reply) = agent.handle(&id, &cmd) {
            reply["reply"] = id;
            emit(&reply);
        }
    }
    // Everything unregisters (waiting for running callbacks) and closes.
    agent.handles.clear();
    let regs: Vec<_> = lock(&agent.regs).drain().collect();
    drop(regs);
    agent.client.close();
    ExitCode::SUCCESS
}
