//! Time as the broker sees it: given by the caller, never read from a
//! clock.
//!
//! The core reads no clock (it runs where there is none, and its tests
//! must be deterministic). Like quinn-proto's `Connection`, whatever
//! depends on time takes the current [`Timestamp`] as an argument: the
//! remote rate limit ([`TokenBucket`](crate::broker::TokenBucket)) and
//! the stall judgement of flow control
//! ([`Broker::handle_timeout`](crate::broker::Broker::handle_timeout)).
//! An adapter makes timestamps from its own monotonic clock, counted from
//! any fixed origin (the Linux server: the moment it started).
//! Durations are [`core::time::Duration`].

use core::fmt;
use core::time::Duration;

/// A point in time: microseconds since an origin the caller chose, on a
/// clock that never goes backwards.
///
/// `u64` microseconds last 584,000 years. Arithmetic saturates: a
/// timestamp never wraps, and time running backwards (a caller's bug)
/// reads as no time passing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The origin.
    pub const ZERO: Timestamp = Timestamp(0);

    /// The timestamp `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The timestamp `since` after the origin (saturating).
    pub fn from_duration(since: Duration) -> Self {
        Timestamp(u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
    }

    /// The time from `earlier` to `self`; zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// `self` plus `d` (saturating at the end of time).
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(micros))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06} s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_never_goes_backwards() {
        let t = Timestamp::from_micros(1_500_000);
        assert_eq!(
            t.saturating_duration_since(Timestamp::ZERO),
            Duration::from_millis(1500)
        );
        assert_eq!(Timestamp::ZERO.saturating_duration_since(t), Duration::ZERO);
        assert_eq!(
            t.saturating_add(Duration::from_millis(500)),
            Timestamp::from_micros(2_000_000)
        );
        assert_eq!(
            Timestamp::from_micros(u64::MAX).saturating_add(Duration::from_secs(1)),
            Timestamp::from_micros(u64::MAX)
        );
        assert_eq!(
            Timestamp::from_duration(Duration::from_secs(3)),
            Timestamp::from_micros(3_000_000)
        );
        assert_eq!(std::format!("{t}"), "1.500000 s");
    }
}
