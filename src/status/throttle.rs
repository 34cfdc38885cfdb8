//! How often a typing player pings the room.

/// A player sends at most one typing ping per this many milliseconds.
pub const TYPING_THROTTLE_MS: u64 = 800;

/// Decides which keystrokes send a typing ping: the first one, then at most
/// one per [`TYPING_THROTTLE_MS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypingThrottle {
    last_sent: Option<u64>,
}

impl TypingThrottle {
    /// The player typed at `now`; `true` if a ping goes out now.
    pub fn handle_keystroke(&mut self, now: u64) -> bool {
        let due = self
            .last_sent
            .is_none_or(|sent| now >= sent.saturating_add(TYPING_THROTTLE_MS));
        if due {
            self.last_sent = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_keystroke_pings_then_at_most_one_per_800_ms() {
        let mut throttle = TypingThrottle::default();
        let sent: Vec<u64> = (0..=2_000)
            .step_by(100)
            .filter(|now| throttle.handle_keystroke(*now))
            .collect();
        assert_eq!(sent, [0, 800, 1_600]);
    }

    #[test]
    fn a_pause_longer_than_the_throttle_pings_on_the_next_keystroke() {
        let mut throttle = TypingThrottle::default();
        assert!(throttle.handle_keystroke(5_000));
        assert!(!throttle.handle_keystroke(5_799));
        assert!(throttle.handle_keystroke(9_000));
    }
}
