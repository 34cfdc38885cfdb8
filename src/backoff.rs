//! Jittered exponential backoff, shared by the page's reconnections and the
//! server's Redis link. Pure: the caller passes the random number.

/// First wait before reconnecting, in milliseconds (before jitter).
pub const BACKOFF_BASE_MS: u64 = 500;
/// Longest wait before reconnecting, in milliseconds (before jitter).
pub const BACKOFF_CAP_MS: u64 = 20_000;

/// The waits between reconnection attempts: exponential, capped, with full
/// jitter (each wait is uniform between zero and the current ceiling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    attempt: u32,
    cap_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::with_cap(BACKOFF_CAP_MS)
    }
}

impl Backoff {
    /// Waits that grow up to `cap_ms` instead of [`BACKOFF_CAP_MS`].
    pub fn with_cap(cap_ms: u64) -> Self {
        Self { attempt: 0, cap_ms }
    }

    /// The wait before the next attempt, in milliseconds; `random` is
    /// uniform in `[0, 1)`.
    pub fn next_delay(&mut self, random: f64) -> u64 {
        let ceiling = BACKOFF_BASE_MS
            .saturating_mul(1 << self.attempt.min(16))
            .min(self.cap_ms);
        self.attempt = self.attempt.saturating_add(1);
        (random.clamp(0.0, 1.0) * ceiling as f64) as u64
    }

    /// A connection succeeded: the next wait starts small again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_grows_from_half_a_second_to_twenty_with_full_jitter() {
        let mut backoff = Backoff::default();
        let ceilings: Vec<u64> = (0..9).map(|_| backoff.next_delay(0.999_999)).collect();
        assert_eq!(
            ceilings,
            [499, 999, 1_999, 3_999, 7_999, 15_999, 19_999, 19_999, 19_999]
        );
        backoff.reset();
        assert_eq!(backoff.next_delay(0.5), 250);
        assert_eq!(backoff.next_delay(0.0), 0, "full jitter reaches zero");
        for _ in 0..100 {
            assert!(backoff.next_delay(0.999_999) <= BACKOFF_CAP_MS);
        }
    }

    #[test]
    fn a_backoff_with_a_lower_cap_stops_growing_there() {
        let mut backoff = Backoff::with_cap(2_000);
        let ceilings: Vec<u64> = (0..5).map(|_| backoff.next_delay(0.999_999)).collect();
        assert_eq!(ceilings, [499, 999, 1_999, 1_999, 1_999]);
    }
}
