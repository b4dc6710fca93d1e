//! A reference model of the routing table, for property tests of any
//! [`RouteStorage`]: a plain list of registrations that answers every
//! operation the obvious way, and a checker that applies random operations
//! to a real [`RoutingTable`] and to the model and compares every answer.
//!
//! Compiled for the core's own tests and with the `model` feature (which
//! brings `std` and `proptest`), so that an adapter's storage is checked
//! against the same model: the Linux server runs it on its `HeapStorage`.
//! Test support, not for production code.

// A test harness: a failed expectation must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::vec::Vec;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::{Registered, Registration, Route, RouteStorage, RoutingTable, TableFull};
use crate::broker::ConnId;
use crate::ids::{AppId, Destination, NotificationId};

/// The capacity of the tables checked: small, so that "full" is reached.
pub const CAP: usize = 16;

/// One operation on a routing table.
#[derive(Debug, Clone)]
pub enum Op {
    /// Register (connection, receiver, notification, priority).
    Register {
        /// Connection number.
        conn: u32,
        /// Receiver: an index into the model's app IDs.
        to: usize,
        /// Notification: an index into the model's IDs.
        id: usize,
        /// Priority.
        prio: i32,
    },
    /// Unregister (connection, receiver, notification).
    Unregister {
        /// Connection number.
        conn: u32,
        /// Receiver index.
        to: usize,
        /// Notification index.
        id: usize,
    },
    /// Remove every registration of a connection.
    Drop {
        /// Connection number.
        conn: u32,
    },
    /// Route a notification.
    Route {
        /// Destination: an app index, 3 for `"1"`, 4 for `"*"`.
        to: usize,
        /// Notification index.
        id: usize,
        /// Connections (bits) the allow filter rejects.
        denied: u32,
    },
}

const APPS: [&str; 3] = ["a", "b", "c"];
const IDS: [&str; 3] = ["x", "y", "z"];

fn conn(n: u32) -> ConnId {
    ConnId::from_raw(n)
}

fn app(s: &str) -> AppId {
    AppId::new(s).unwrap()
}

fn nid(s: &str) -> NotificationId {
    NotificationId::new(s).unwrap()
}

/// `to` index 3 is "1", 4 is "*".
fn to_dest(i: usize) -> Destination {
    match i {
        3 => Destination::One,
        4 => Destination::All,
        _ => Destination::parse(APPS[i]).unwrap(),
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..4, 0usize..3, 0usize..3, -2i32..3)
            .prop_map(|(conn, to, id, prio)| Op::Register { conn, to, id, prio }),
        2 => (0u32..4, 0usize..3, 0usize..3).prop_map(|(conn, to, id)| Op::Unregister { conn, to, id }),
        1 => (0u32..4).prop_map(|conn| Op::Drop { conn }),
        4 => (0usize..5, 0usize..3, 0u32..16).prop_map(|(to, id, denied)| Op::Route { to, id, denied }),
    ]
}

/// Random operation sequences (1 to 119 operations).
pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..120)
}

#[derive(Debug, Clone, PartialEq)]
struct ModelReg {
    conn: u32,
    to: usize,
    id: usize,
    prio: i32,
    seq: u64,
}

/// Applies `ops` to `t` and to a plain model, comparing every answer.
pub fn check_against_model<S: RouteStorage>(
    mut t: RoutingTable<CAP, S>,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    {
        let mut model: Vec<ModelReg> = Vec::new();
        let mut seq = 0u64;
        for op in ops {
            match op {
                Op::Register {
                    conn: c,
                    to,
                    id,
                    prio,
                } => {
                    seq += 1;
                    let got = t.register(conn(c), app(APPS[to]), nid(IDS[id]), prio);
                    if let Some(m) = model
                        .iter_mut()
                        .find(|m| m.conn == c && m.to == to && m.id == id)
                    {
                        m.prio = prio;
                        m.seq = seq;
                        prop_assert_eq!(got, Ok(Registered::Replaced));
                    } else if model.len() == CAP {
                        prop_assert_eq!(got, Err(TableFull));
                    } else {
                        model.push(ModelReg {
                            conn: c,
                            to,
                            id,
                            prio,
                            seq,
                        });
                        prop_assert_eq!(got, Ok(Registered::Added));
                    }
                }
                Op::Unregister { conn: c, to, id } => {
                    let got = t.unregister(conn(c), APPS[to], IDS[id]).is_some();
                    let before = model.len();
                    model.retain(|m| !(m.conn == c && m.to == to && m.id == id));
                    prop_assert_eq!(got, before != model.len());
                }
                Op::Drop { conn: c } => {
                    let got = t.remove_connection(conn(c), |_| {});
                    let before = model.len();
                    model.retain(|m| m.conn != c);
                    prop_assert_eq!(got, before - model.len());
                }
                Op::Route { to, id, denied } => {
                    let allowed = |c: u32| denied & (1 << c) == 0;
                    let mut cands: Vec<&ModelReg> = model
                        .iter()
                        .filter(|m| m.id == id && allowed(m.conn))
                        .filter(|m| to >= 3 || m.to == to)
                        .collect();
                    let route = t.route(&to_dest(to), IDS[id], |r: &Registration<'_>| {
                        allowed(r.conn.raw())
                    });
                    match route {
                        Route::Broadcast(b) => {
                            prop_assert_eq!(to, 4);
                            let mut got: Vec<(u32, &str)> =
                                b.map(|r| (r.conn.raw(), r.to.as_str())).collect();
                            let mut want: Vec<(u32, &str)> =
                                cands.iter().map(|m| (m.conn, APPS[m.to])).collect();
                            got.sort_unstable();
                            want.sort_unstable();
                            prop_assert_eq!(got, want);
                        }
                        Route::Unicast(r) => {
                            prop_assert!(to < 4);
                            cands.sort_by_key(|m| (m.prio, m.seq));
                            let m = cands.last().unwrap();
                            prop_assert_eq!(
                                (r.conn.raw(), r.to.as_str(), r.priority),
                                (m.conn, APPS[m.to], m.prio)
                            );
                        }
                        Route::UnicastError => {
                            prop_assert!(to < 4);
                            prop_assert!(cands.is_empty());
                        }
                    }
                }
            }
            prop_assert_eq!(t.len(), model.len());
        }
    }
    Ok(())
}
