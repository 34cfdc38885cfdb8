//! What the battle page knows of the room: the players' statuses, with
//! the labels a player reads, the room view fed with the server's frames,
//! the timeline of the battle, the typing throttle, what each change is
//! worth telling the player, and the player's own tab (away, title).
//!
//! Pure state machines in the style of quinn-proto: inputs through
//! `handle_*` methods, the current answer through getters, and
//! `poll_timeout` telling the caller when the answer next changes, so the
//! page sets one timer instead of polling. Time is always passed in, in
//! milliseconds of a monotonic clock.

mod attention;
mod notice;
mod room_view;
mod throttle;
mod timeline;

use std::borrow::Cow;

pub use self::{
    attention::{Attention, OwnAway, APP_TITLE, AWAY_AFTER_MS},
    notice::{away_label, Notice},
    room_view::{Badge, RoomView},
    throttle::{TypingThrottle, TYPING_THROTTLE_MS},
    timeline::{Moment, Timeline, TIMELINE_LEN},
};
use crate::protocol::Action;
pub use crate::protocol::TYPING_TIMEOUT_MS;

/// What a player's panel shows. A player who is there shows, by priority:
/// typing, then the last action, then thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nobody holds this seat yet.
    Waiting,
    /// The player dropped; their seat is kept for the grace period.
    Reconnecting,
    /// The player left, or did not come back in time.
    Left,
    /// A typing ping arrived less than [`TYPING_TIMEOUT_MS`] ago.
    Typing,
    /// Not typing; this was the last action.
    Action(Action),
    /// Neither typing nor any action yet.
    Thinking,
}

impl Status {
    /// The text a player reads about their opponent.
    pub fn label(&self) -> Cow<'static, str> {
        match self {
            Self::Waiting => "Waiting for an opponent".into(),
            Self::Reconnecting => "Opponent reconnecting...".into(),
            Self::Left => "Opponent left".into(),
            Self::Typing => "Typing...".into(),
            Self::Action(action) => action_label(*action),
            Self::Thinking => "Thinking".into(),
        }
    }

    /// The text a spectator reads about a player.
    pub fn watcher_label(&self) -> Cow<'static, str> {
        match self {
            Self::Waiting => "Waiting for a player".into(),
            Self::Reconnecting => "Reconnecting...".into(),
            Self::Left => "Left".into(),
            other => other.label(),
        }
    }

    /// A stable name, for styling and tests.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Reconnecting => "reconnecting",
            Self::Left => "left",
            Self::Typing => "typing",
            Self::Action(_) => "action",
            Self::Thinking => "thinking",
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

    /// The opponent shows as typing for `remaining` more milliseconds from
    /// `now` (as a snapshot says).
    pub fn handle_typing_for(&mut self, remaining: u64, now: u64) {
        self.last_typing = (remaining > 0).then(|| {
            now.saturating_add(remaining.min(TYPING_TIMEOUT_MS))
                .saturating_sub(TYPING_TIMEOUT_MS)
        });
    }

    /// The opponent's connection dropped: they are not typing any more.
    pub fn handle_dropped(&mut self) {
        self.last_typing = None;
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

/// What a player reads for `action`, e.g. "Running code" or "Failed on
/// test 3".
pub fn action_label(action: Action) -> Cow<'static, str> {
    match action {
        Action::Running => "Running code".into(),
        Action::Submitted => "Submitted code".into(),
        Action::RunComplete => "Finished run".into(),
        Action::Accepted => "Accepted".into(),
        Action::WrongAnswer => "Wrong answer".into(),
        Action::TimeLimitExceeded => "TLE".into(),
        Action::MemoryLimitExceeded => "MLE".into(),
        Action::FailedTest(n) => format!("Failed on test {n}").into(),
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
    fn a_snapshot_can_say_typing_lasts_a_little_longer() {
        let mut status = OpponentStatus::default();
        status.handle_typing_for(1_000, 50_000);
        assert_eq!(status.status(50_999), Status::Typing);
        assert_eq!(status.status(51_000), Status::Thinking);
        status.handle_typing_for(0, 50_000);
        assert_eq!(status.status(50_000), Status::Thinking);
    }

    #[test]
    fn every_known_action_has_its_label() {
        let cases = [
            ("RUNNING", "Running code"),
            ("SUBMITTED", "Submitted code"),
            ("RUN_COMPLETE", "Finished run"),
            ("AC", "Accepted"),
            ("WA", "Wrong answer"),
            ("TLE", "TLE"),
            ("MLE", "MLE"),
            ("FAILED_TC1", "Failed on test 1"),
            ("FAILED_TC42", "Failed on test 42"),
            ("FAILED_TC9999", "Failed on test 9999"),
        ];
        for (code, label) in cases {
            let action = Action::parse(code).unwrap();
            assert_eq!(action.code(), code);
            assert_eq!(action_label(action), label);
        }
    }
}
