//! The hub's clock and the few conversions between durations and the
//! milliseconds that rosters, deadlines and frames carry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// `duration` in whole milliseconds (saturating).
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Seconds since the Unix epoch, from the system clock (0 before it).
pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The hub's clock: milliseconds since the Unix epoch, read once from the
/// system clock and then advanced with tokio's monotonic time, so that
/// instances on different machines agree (as far as their clocks do) on
/// deadlines kept in a shared backplane, and tests can pause and advance it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    start_ms: u64,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            start: Instant::now(),
            start_ms: millis(since_epoch),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        self.at(Instant::now())
    }

    /// Milliseconds since the Unix epoch at `instant` (the clock's start,
    /// for earlier instants): a caller that already read the monotonic
    /// clock does not read it again.
    pub fn at(&self, instant: Instant) -> u64 {
        let since_start = instant.saturating_duration_since(self.start);
        self.start_ms.saturating_add(millis(since_start))
    }

    /// The instant at `ms` milliseconds since the Unix epoch (the clock's
    /// start, for earlier times).
    pub fn instant(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms.saturating_sub(self.start_ms))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_clock_advances_with_tokio_time_and_maps_back_to_instants() {
        let clock = Clock::new();
        let start = clock.now();
        tokio::time::advance(Duration::from_millis(1_500)).await;
        assert_eq!(clock.now(), start + 1_500);
        let earlier = Instant::now() - Duration::from_millis(500);
        assert_eq!(clock.at(earlier), start + 1_000, "an instant read before");
        assert_eq!(clock.instant(start + 1_500), Instant::now());
        assert_eq!(
            clock.instant(0),
            clock.instant(start),
            "earlier is the start"
        );
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
