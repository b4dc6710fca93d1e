//! Routing table tests: fixed cases and a property test against a plain
//! reference model.

use std::vec::Vec as StdVec;

use proptest::prelude::*;

use super::*;

fn conn(n: u32) -> ConnId {
    ConnId::from_raw(n)
}

fn app(s: &str) -> AppId {
    AppId::new(s).unwrap()
}

fn nid(s: &str) -> NotificationId {
    NotificationId::new(s).unwrap()
}

fn dest(s: &str) -> Destination {
    Destination::parse(s).unwrap()
}

fn all(_: &Registration<'_>) -> bool {
    true
}

fn unicast<S, F>(r: Route<'_, S, F>) -> Option<(ConnId, AppId)> {
    match r {
        Route::Unicast(r) => Some((r.conn, r.to.clone())),
        Route::UnicastError => None,
        Route::Broadcast(_) => panic!("unicast expected"),
    }
}

#[test]
fn unicast_to_app_picks_that_app_only() {
    let mut t = RoutingTable::<16>::new();
    t.register(conn(1), app("a"), nid("ping"), 0).unwrap();
    t.register(conn(2), app("b"), nid("ping"), 9).unwrap();
    assert_eq!(
        unicast(t.route(&dest("a"), "ping", all)),
        Some((conn(1), app("a")))
    );
    assert_eq!(unicast(t.route(&dest("c"), "ping", all)), None);
    assert_eq!(unicast(t.route(&dest("a"), "pong", all)), None);
}

#[test]
fn one_picks_highest_priority_then_most_recent() {
    let mut t = RoutingTable::<16>::new();
    t.register(conn(1), app("a"), nid("n"), 5).unwrap();
    t.register(conn(2), app("b"), nid("n"), 7).unwrap();
    t.register(conn(3), app("c"), nid("n"), 7).unwrap();
    // c and b tie at 7; c is more recent.
    assert_eq!(
        unicast(t.route(&Destination::One, "n", all)),
        Some((conn(3), app("c")))
    );
    // Re-registering b makes it the most recent.
    assert_eq!(
        t.register(conn(2), app("b"), nid("n"), 7),
        Ok(Registered::Replaced)
    );
    assert_eq!(
        unicast(t.route(&Destination::One, "n", all)),
        Some((conn(2), app("b")))
    );
    // Lowering b's priority by replacing it.
    t.register(conn(2), app("b"), nid("n"), -1).unwrap();
    assert_eq!(
        unicast(t.route(&Destination::One, "n", all)),
        Some((conn(3), app("c")))
    );
    assert_eq!(t.len(), 3);
}

#[test]
fn allow_filter_skips_candidates() {
    let mut t = RoutingTable::<16>::new();
    t.register(conn(1), app("a"), nid("n"), 9).unwrap();
    t.register(conn(2), app("b"), nid("n"), 1).unwrap();
    let r = t.route(&Destination::One, "n", |r: &Registration<'_>| {
        r.conn != conn(1)
    });
    assert_eq!(unicast(r), Some((conn(2), app("b"))));
    let r = t.route(&Destination::One, "n", |_: &Registration<'_>| false);
    assert_eq!(unicast(r), None);
}

#[test]
fn broadcast_reaches_every_allowed_candidate() {
    let mut t = RoutingTable::<16>::new();
    t.register(conn(1), app("a"), nid("n"), 0).unwrap();
    t.register(conn(1), app("b"), nid("n"), 0).unwrap();
    t.register(conn(2), app("a"), nid("n"), 0).unwrap();
    t.register(conn(2), app("a"), nid("other"), 0).unwrap();
    let Route::Broadcast(b) = t.route(&Destination::All, "n", all) else {
        panic!()
    };
    let got: StdVec<_> = b.map(|r| (r.conn, r.to.clone())).collect();
    // Best first: equal priorities, so the most recent first.
    assert_eq!(
        got,
        [
            (conn(2), app("a")),
            (conn(1), app("b")),
            (conn(1), app("a"))
        ]
    );
    let Route::Broadcast(mut b) = t.route(&Destination::All, "none", all) else {
        panic!()
    };
    assert!(b.next().is_none());
}

#[test]
fn unregister_and_remove_connection() {
    let mut t = RoutingTable::<8>::new();
    t.register(conn(1), app("a"), nid("n"), 0).unwrap();
    t.register(conn(1), app("a"), nid("m"), 0).unwrap();
    t.register(conn(2), app("a"), nid("n"), 0).unwrap();
    assert!(t.unregister(conn(1), "a", "x").is_none());
    assert!(t.unregister(conn(3), "a", "n").is_none());
    assert_eq!(t.unregister(conn(1), "a", "n"), Some(Rank::new(0, 1)));
    assert!(t.get(conn(1), "a", "n").is_none());
    assert_eq!(
        unicast(t.route(&dest("a"), "n", all)),
        Some((conn(2), app("a")))
    );
    let mut seen = StdVec::new();
    assert_eq!(
        t.remove_connection(conn(1), |r| seen.push(r.notification.clone())),
        1
    );
    assert_eq!(seen, [nid("m")]);
    assert_eq!(t.len(), 1);
    assert_eq!(t.remove_connection(conn(2), |_| {}), 1);
    assert!(t.is_empty());
    assert_eq!(t.candidates("n").count(), 0);
}

#[test]
fn full_table_is_an_error_and_slots_are_reused() {
    let mut t = RoutingTable::<4>::new();
    for i in 0..4 {
        t.register(conn(i), app("a"), nid("n"), 0).unwrap();
    }
    assert_eq!(t.register(conn(9), app("a"), nid("n"), 0), Err(TableFull));
    // Replacing needs no new slot.
    assert_eq!(
        t.register(conn(0), app("a"), nid("n"), 3),
        Ok(Registered::Replaced)
    );
    t.unregister(conn(2), "a", "n").unwrap();
    assert_eq!(
        t.register(conn(9), app("z"), nid("q"), 0),
        Ok(Registered::Added)
    );
    assert_eq!(t.len(), 4);
    assert_eq!(
        unicast(t.route(&dest("z"), "q", all)),
        Some((conn(9), app("z")))
    );
}

// ---- property test against the reference model ----

proptest! {
    #[test]
    fn matches_reference_model(ops in model::ops()) {
        model::check_against_model(RoutingTable::<{ model::CAP }>::new(), ops)?;
    }

    #[test]
    fn storage_without_capacity_matches_reference_model(ops in model::ops()) {
        model::check_against_model(
            RoutingTable::<{ model::CAP }, _>::with_storage(StdStorage::default()),
            ops,
        )?;
    }
}

/// A storage on the heap with no capacity of its own, like a hosted
/// adapter's: the table's `N` alone bounds it.
#[derive(Default)]
struct StdStorage {
    slots: StdVec<TableSlot>,
    index: [std::collections::HashMap<u64, Chain>; 2],
}

impl TableStorage for StdStorage {
    fn slots(&self) -> &[TableSlot] {
        &self.slots
    }
    fn slots_mut(&mut self) -> &mut [TableSlot] {
        &mut self.slots
    }
    fn grow(&mut self) -> Result<(), TableFull> {
        self.slots.push(TableSlot::EMPTY);
        Ok(())
    }
    fn chain(&self, list: List, hash: u64) -> Option<&Chain> {
        self.index[list as usize].get(&hash)
    }
    fn chain_mut(&mut self, list: List, hash: u64) -> Option<&mut Chain> {
        self.index[list as usize].get_mut(&hash)
    }
    fn insert_chain(&mut self, list: List, hash: u64, chain: Chain) -> Result<(), TableFull> {
        self.index[list as usize].insert(hash, chain);
        Ok(())
    }
    fn remove_chain(&mut self, list: List, hash: u64) {
        self.index[list as usize].remove(&hash);
    }
}

#[test]
fn storage_smaller_than_the_table_fills_first_and_slots_are_reused() {
    let mut t = RoutingTable::<8, InlineStorage<2>>::with_storage(InlineStorage::new());
    t.register(conn(1), app("a"), nid("n"), 0).unwrap();
    t.register(conn(2), app("a"), nid("n"), 0).unwrap();
    assert_eq!(t.register(conn(3), app("a"), nid("n"), 0), Err(TableFull));
    assert_eq!(t.len(), 2);
    t.unregister(conn(1), "a", "n").unwrap();
    assert_eq!(
        t.register(conn(3), app("b"), nid("m"), 0),
        Ok(Registered::Added)
    );
    assert_eq!(
        unicast(t.route(&dest("b"), "m", all)),
        Some((conn(3), app("b")))
    );
    assert_eq!(
        unicast(t.route(&dest("a"), "n", all)),
        Some((conn(2), app("a")))
    );
}

#[test]
fn a_full_heap_storage_is_bounded_by_the_table() {
    let mut t = RoutingTable::<4, _>::with_storage(StdStorage::default());
    for i in 0..4 {
        t.register(conn(i), app("a"), nid("n"), 0).unwrap();
    }
    assert_eq!(t.register(conn(9), app("a"), nid("n"), 0), Err(TableFull));
    assert_eq!(t.len(), 4);
}

#[test]
fn rank_orders_by_priority_then_recency() {
    assert!(Rank::new(2, 0) > Rank::new(1, 99));
    assert!(Rank::new(1, 5) > Rank::new(1, 4));
    assert!(Rank::new(-1, 9) < Rank::new(0, 0));
    let regs = [(1, 1, "a"), (5, 2, "b"), (5, 3, "c"), (-3, 4, "d")];
    let pick = |items: &[(i32, u64, &'static str)]| {
        best(items.iter(), |(p, s, _)| Rank::new(*p, *s)).map(|r| r.2)
    };
    assert_eq!(pick(&regs), Some("c"));
    assert_eq!(pick(&regs[..2]), Some("b"));
    assert_eq!(pick(&[]), None);
}

#[test]
fn the_table_routes_one_to_the_best_rank() {
    let mut t = RoutingTable::<16>::new();
    for (c, to, p) in [(1, "a", 1), (2, "b", 5), (3, "c", 5), (4, "d", -3)] {
        t.register(conn(c), app(to), nid("ev"), p).unwrap();
    }
    let best_reg = best(t.iter(), |r| r.rank()).unwrap();
    assert_eq!(
        unicast(t.route(&dest("1"), "ev", all)),
        Some((best_reg.conn, best_reg.to.clone()))
    );
    assert_eq!(best_reg.to.as_str(), "c");
}

// ---- CompactStorage ----

proptest! {
    #[test]
    fn compact_storage_matches_reference_model(ops in model::ops()) {
        // The model names 6 identifiers: the pool never fills.
        model::check_against_model(
            RoutingTable::<{ model::CAP }, _>::with_storage(CompactStorage::<{ model::CAP }, 6>::new()),
            ops,
        )?;
    }
}

/// The longest identifiers (64 bytes of UTF-8, multi-byte characters
/// included) register and route in a compact table.
#[test]
fn compact_storage_takes_64_byte_ids() {
    let long_app = "é".repeat(32);
    let long_id = "n".repeat(64);
    assert_eq!((long_app.len(), long_id.len()), (64, 64));
    let mut t = RoutingTable::<4, _>::with_storage(CompactStorage::<4, 2>::new());
    assert_eq!(
        t.register(conn(1), app(&long_app), nid(&long_id), 0),
        Ok(Registered::Added)
    );
    assert_eq!(
        unicast(t.route(&dest(&long_app), &long_id, all)),
        Some((conn(1), app(&long_app)))
    );
    let r = t.get(conn(1), &long_app, &long_id).unwrap();
    assert_eq!(
        (r.to.as_str(), r.notification.as_str()),
        (&*long_app, &*long_id)
    );
}

/// Identifiers are shared: N registrations fit as long as they name at
/// most IDS identifiers, one more identifier is refused with TableFull
/// (nothing changes, nothing panics), and a freed identifier's entry is
/// reused.
#[test]
fn compact_storage_pool_full_is_table_full() {
    // 2 apps x 2 notifications: 4 identifiers, 4 registrations.
    let mut t = RoutingTable::<8, _>::with_storage(CompactStorage::<8, 4>::new());
    for (c, to, n) in [(1, "a", "x"), (2, "a", "y"), (3, "b", "x"), (4, "b", "y")] {
        assert_eq!(
            t.register(conn(c), app(to), nid(n), 0),
            Ok(Registered::Added)
        );
    }
    assert_eq!(t.storage().ids(), 4);
    // Slots left, but "c" and "z" are new identifiers: refused.
    assert_eq!(t.register(conn(5), app("c"), nid("x"), 0), Err(TableFull));
    assert_eq!(t.register(conn(5), app("a"), nid("z"), 0), Err(TableFull));
    // An app ID and a notification ID spelled alike are two identifiers.
    assert_eq!(t.register(conn(5), app("x"), nid("x"), 0), Err(TableFull));
    assert_eq!((t.len(), t.storage().ids()), (4, 4));
    // Known identifiers need no entry: more registrations fit.
    assert_eq!(
        t.register(conn(5), app("a"), nid("x"), 0),
        Ok(Registered::Added)
    );
    // Replacing never needs room.
    assert_eq!(
        t.register(conn(5), app("a"), nid("x"), 7),
        Ok(Registered::Replaced)
    );
    assert_eq!(
        unicast(t.route(&dest("a"), "x", all)),
        Some((conn(5), app("a")))
    );
    // Dropping every registration naming "b" frees its entry for "c".
    t.unregister(conn(3), "b", "x").unwrap();
    assert_eq!(t.register(conn(6), app("c"), nid("x"), 0), Err(TableFull));
    t.unregister(conn(4), "b", "y").unwrap();
    assert_eq!(t.storage().ids(), 3);
    assert_eq!(
        t.register(conn(6), app("c"), nid("x"), 0),
        Ok(Registered::Added)
    );
    assert_eq!(
        unicast(t.route(&dest("c"), "x", all)),
        Some((conn(6), app("c")))
    );
    assert_eq!(unicast(t.route(&dest("b"), "x", all)), None);
    assert_eq!(t.len(), 4);
}

/// With enough identifiers, the slots bound the table; freed slots are
/// reused.
#[test]
fn compact_storage_slots_full_is_table_full() {
    let mut t = RoutingTable::<4, _>::with_storage(CompactStorage::<4, 8>::new());
    for c in 0..4 {
        t.register(conn(c), app("a"), nid("n"), 0).unwrap();
    }
    assert_eq!(t.register(conn(9), app("a"), nid("n"), 0), Err(TableFull));
    assert_eq!(t.remove_connection(conn(0), |_| {}), 1);
    assert_eq!(
        t.register(conn(9), app("a"), nid("n"), 0),
        Ok(Registered::Added)
    );
    assert_eq!(t.candidates("n").count(), 4);
    for c in [1, 2, 3, 9] {
        t.unregister(conn(c), "a", "n").unwrap();
    }
    assert!(t.is_empty());
    assert_eq!(t.storage().ids(), 0);
}
