use super::*;

#[test]
fn same_seed_same_numbers_and_bounds_hold() {
    let (mut a, mut b) = (Rng(42), Rng(42));
    for _ in 0..1000 {
        assert_eq!(a.next_u64(), b.next_u64());
    }
    for _ in 0..1000 {
        assert!(a.below(7) < 7);
        assert!(a.index(3) < 3);
        let d = a.range_ms(5, 9);
        assert!((5..=9).contains(&(d.as_millis() as u64)));
    }
    assert_eq!(a.below(0), 0);
    assert_eq!(
        Rng(1).next_u64(),
        0x910a_2dec_8902_5cc1,
        "splitmix64 of seed 1"
    );
}
