//! The opponent-status model and the typing throttle.
//!
//! Pure state machines in the style of quinn-proto: inputs through
//! `handle_*` methods, the current answer through getters, and
//! [`OpponentStatus::poll_timeout`] telling the caller when the answer next
//! changes, so the page sets one timer instead of polling. Time is always
//! passed in, in milliseconds of a monotonic clock.

use std::borrow::Cow;

use crate::protocol::Action;

/// A player sends at most one typing ping per this many milliseconds.
pub const TYPING_THROTTLE_MS: u64 = 800;
/// The opponent shows as typing until this many milliseconds after their
/// last ping.
pub const TYPING_TIMEOUT_MS: u64 = 2500;

/// What the opponent panel shows, by priority: typing, then the last action,
/// then thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A typing ping arrived less than [`TYPING_TIMEOUT_MS`] ago.
    Typing,
    /// Not typing; this was the last action.
    Action(Action),
    /// Neither typing nor any action yet.
    Thinking,
}

impl Status {
    /// The text shown to the player.
    pub fn label(&self) -> Cow<'static, str> {
        match self {
            Self::Typing => "Typing...".into(),
            Self::Action(action) => action.label(),
            Self::Thinking => "Thinking".into(),
        }
    }
}

/// What is known of the opponent, fed with their frames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpponentStatus {
    last_typing: Option<u64>,
    last_action: Option<Action>,
}

impl OpponentStatus {
    /// The opponent sent a typing ping, received at `now`.
    pub fn handle_typing(&mut self, now: u64) {
        self.last_typing = Some(now);
    }

    /// The opponent did `action`.
    pub fn handle_action(&mut self, action: Action) {
        self.last_action = Some(action);
    }

    /// What to show at `now`.
    pub fn status(&self, now: u64) -> Status {
        match (self.typing_until(), self.last_action) {
            (Some(until), _) if now < until => Status::Typing,
            (_, Some(action)) => Status::Action(action),
            _ => Status::Thinking,
        }
    }

    /// The next moment after `now` at which [`status`](Self::status) changes
    /// by itself, if any: the page wakes up then, and only then.
    pub fn poll_timeout(&self, now: u64) -> Option<u64> {
        self.typing_until().filter(|until| now < *until)
    }

    fn typing_until(&self) -> Option<u64> {
        self.last_typing
            .map(|at| at.saturating_add(TYPING_TIMEOUT_MS))
    }
}

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
    fn an_opponent_who_has_done_nothing_is_thinking_and_never_wakes_the_page() {
        let status = OpponentStatus::default();
        assert_eq!(status.status(0), Status::Thinking);
        assert_eq!(status.status(1_000_000), Status::Thinking);
        assert_eq!(status.poll_timeout(0), None);
        assert_eq!(Status::Thinking.label(), "Thinking");
    }

    #[test]
    fn a_typing_ping_shows_typing_for_exactly_2500_ms() {
        let mut status = OpponentStatus::default();
        status.handle_typing(10_000);
        assert_eq!(status.status(10_000), Status::Typing);
        assert_eq!(status.status(12_499), Status::Typing);
        assert_eq!(status.status(12_500), Status::Thinking);
        assert_eq!(Status::Typing.label(), "Typing...");
    }

    #[test]
    fn each_new_ping_extends_typing() {
        let mut status = OpponentStatus::default();
        status.handle_typing(0);
        status.handle_typing(2_000);
        assert_eq!(status.status(4_000), Status::Typing);
        assert_eq!(status.status(4_500), Status::Thinking);
    }

    #[test]
    fn typing_outranks_the_last_action_which_outranks_thinking() {
        let mut status = OpponentStatus::default();
        status.handle_action(Action::Running);
        assert_eq!(status.status(0), Status::Action(Action::Running));
        status.handle_typing(100);
        assert_eq!(status.status(200), Status::Typing);
        status.handle_action(Action::Submitted);
        assert_eq!(status.status(300), Status::Typing);
        assert_eq!(status.status(2_600), Status::Action(Action::Submitted));
        assert_eq!(status.status(2_600).label(), "Submitted code");
    }

    #[test]
    fn the_page_wakes_when_typing_expires_and_not_after() {
        let mut status = OpponentStatus::default();
        status.handle_typing(1_000);
        assert_eq!(status.poll_timeout(1_000), Some(3_500));
        assert_eq!(status.poll_timeout(3_499), Some(3_500));
        assert_eq!(status.poll_timeout(3_500), None);
        status.handle_action(Action::WrongAnswer);
        assert_eq!(status.poll_timeout(3_600), None);
    }

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
