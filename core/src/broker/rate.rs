//! The per-connection rate limit of remote peers: a token bucket.

use crate::time::Timestamp;

/// Micro-tokens per token: the bucket counts in millionths of a frame so
/// that a rate in frames per second adds whole micro-tokens per
/// microsecond, in integers (no floating point on targets without an FPU).
const MICRO: u64 = 1_000_000;

/// A token bucket: `rate` tokens a second, at most `burst` held; one token
/// per frame (or skipped input). Time comes from the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens added per second.
    rate: u32,
    /// Tokens held at most (at least 1).
    burst: u32,
    /// Micro-tokens held.
    held: u64,
    /// When `held` was last brought up to date.
    last: Timestamp,
}

impl TokenBucket {
    /// A full bucket at `now`: `rate` tokens a second, `burst` at most
    /// (0 acts as 1).
    pub fn new(rate: u32, burst: u32, now: Timestamp) -> TokenBucket {
        let burst = burst.max(1);
        TokenBucket {
            rate,
            burst,
            held: u64::from(burst) * MICRO,
            last: now,
        }
    }

    /// Micro-tokens held at most.
    fn capacity(&self) -> u64 {
        u64::from(self.burst) * MICRO
    }

    /// Takes one token at `now`; false when there is none. Time going
    /// backwards adds nothing and takes nothing back.
    pub fn take(&mut self, now: Timestamp) -> bool {
        let elapsed = now.as_micros().saturating_sub(self.last.as_micros());
        self.last = self.last.max(now);
        // rate tokens/s = rate micro-tokens/µs.
        self.held = self
            .held
            .saturating_add(elapsed.saturating_mul(u64::from(self.rate)))
            .min(self.capacity());
        if self.held >= MICRO {
            self.held -= MICRO;
            true
        } else {
            false
        }
    }

    /// Gives back a token taken for input that was not used after all (a
    /// frame held back by flow control, fed again later).
    pub fn refund(&mut self) {
        self.held = self.held.saturating_add(MICRO).min(self.capacity());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_micros(ms * 1000)
    }

    #[test]
    fn the_burst_then_the_rate() {
        let t0 = at(1000);
        let mut b = TokenBucket::new(10, 20, t0);
        // The burst at once, then nothing at the same instant.
        assert_eq!((0..1000).filter(|_| b.take(t0)).count(), 20);
        // 10 a second: one every 100 ms, never more than the burst.
        assert!(!b.take(at(1050)));
        assert!(b.take(at(1100)));
        assert!(!b.take(at(1100)));
        let later = at(1000 + 3_600_000);
        assert_eq!((0..1000).filter(|_| b.take(later)).count(), 20);
        // Time going backwards takes nothing back and gives nothing.
        assert!(!b.take(t0));
        // A refund gives one back, never past the burst.
        b.refund();
        assert!(b.take(t0));
        // A burst of 0 acts as 1.
        let mut one = TokenBucket::new(1, 0, t0);
        assert!(one.take(t0));
        assert!(!one.take(t0));
        one.refund();
        one.refund();
        assert!(one.take(t0));
        assert!(!one.take(t0));
    }

    #[test]
    fn extreme_rates_and_gaps_do_not_overflow() {
        let mut b = TokenBucket::new(u32::MAX, u32::MAX, Timestamp::ZERO);
        assert!(b.take(Timestamp::from_micros(u64::MAX)));
        let mut slow = TokenBucket::new(1, 1, Timestamp::ZERO);
        assert!(slow.take(Timestamp::ZERO));
        assert!(!slow.take(Timestamp::from_micros(999_999)));
        assert!(slow.take(Timestamp::from_micros(1_000_000)));
    }
}
