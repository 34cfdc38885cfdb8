//! What the battle page knows of the room: the players' statuses, the
//! typing throttle, and the reconnection backoff.
//!
//! Pure state machines in the style of quinn-proto: inputs through
//! `handle_*` methods, the current answer through getters, and
//! `poll_timeout` telling the caller when the answer next changes, so the
//! page sets one timer instead of polling. Time is always passed in, in
//! milliseconds of a monotonic clock; randomness too.

use std::borrow::Cow;

use crate::protocol::{
    Action, ClientEvent, Connection, MemberState, Presence, PresenceEvent, Role, Welcome,
};

/// A player sends at most one typing ping per this many milliseconds.
pub const TYPING_THROTTLE_MS: u64 = 800;
/// The opponent shows as typing until this many milliseconds after their
/// last ping.
pub const TYPING_TIMEOUT_MS: u64 = 2500;

/// First wait before reconnecting, in milliseconds (before jitter).
pub const BACKOFF_BASE_MS: u64 = 500;
/// Longest wait before reconnecting, in milliseconds (before jitter).
pub const BACKOFF_CAP_MS: u64 = 20_000;

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
            Self::Action(action) => action.label(),
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

/// One player's seat as the page sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seat {
    id: String,
    connection: Connection,
    left: bool,
    activity: OpponentStatus,
}

impl Seat {
    fn status(&self, now: u64) -> Status {
        match (self.left, self.connection) {
            (true, _) => Status::Left,
            (false, Connection::Reconnecting) => Status::Reconnecting,
            (false, Connection::Online) => self.activity.status(now),
        }
    }
}

/// The room as the page sees it: who this connection is, and the two
/// players' seats in the order they joined. Fed with the server's frames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomView {
    me: Option<String>,
    seats: Vec<Seat>,
}

impl RoomView {
    /// The server's welcome, on every (re)connection: replaces everything
    /// known before with the room as it is now.
    pub fn handle_welcome(&mut self, welcome: &Welcome, now: u64) {
        self.me = Some(welcome.you.clone());
        self.handle_snapshot(&welcome.members, now);
    }

    /// The room as it is now (in a welcome, or after the server resynced):
    /// replaces every seat known before.
    pub fn handle_snapshot(&mut self, members: &[MemberState], now: u64) {
        self.seats = members
            .iter()
            .filter(|m| m.role == Role::Player)
            .map(|m| {
                let mut activity = OpponentStatus::default();
                if let Some(action) = m.last_action {
                    activity.handle_action(action);
                }
                activity.handle_typing_for(m.typing_ms, now);
                Seat {
                    id: m.id.clone(),
                    connection: m.state,
                    left: false,
                    activity,
                }
            })
            .collect();
    }

    /// Someone joined, dropped, came back or left.
    pub fn handle_presence(&mut self, presence: &Presence) {
        if presence.member.role != Role::Player {
            return;
        }
        let id = &presence.member.id;
        let known = self.seats.iter().position(|s| s.id == *id);
        match (presence.event, known) {
            (PresenceEvent::Join, None) => {
                let seat = Seat {
                    id: id.clone(),
                    connection: Connection::Online,
                    left: false,
                    activity: OpponentStatus::default(),
                };
                match self.seats.iter().position(|s| s.left) {
                    Some(free) => self.seats[free] = seat,
                    None => self.seats.push(seat),
                }
            }
            (PresenceEvent::Join | PresenceEvent::Resume, Some(at)) => {
                self.seats[at].connection = Connection::Online;
                self.seats[at].left = false;
            }
            (PresenceEvent::Reconnecting, Some(at)) => {
                self.seats[at].connection = Connection::Reconnecting;
                self.seats[at].activity.handle_dropped();
            }
            (PresenceEvent::Leave, Some(at)) => self.seats[at].left = true,
            (_, None) => {}
        }
    }

    /// Member `from` sent `event`, received at `now`.
    pub fn handle_frame(&mut self, from: &str, event: ClientEvent, now: u64) {
        if let Some(seat) = self.seats.iter_mut().find(|s| s.id == from) {
            match event {
                ClientEvent::Typing => seat.activity.handle_typing(now),
                ClientEvent::Action(action) => seat.activity.handle_action(action),
            }
        }
    }

    /// This connection's member id, once the welcome arrived.
    pub fn me(&self) -> Option<&str> {
        self.me.as_deref()
    }

    /// This connection's own last action, as the room received it.
    pub fn own_action(&self) -> Option<Action> {
        let me = self.me()?;
        self.seats.iter().find(|s| s.id == me)?.activity.last_action
    }

    /// What a player's page shows about their opponent at `now`.
    pub fn opponent(&self, now: u64) -> Status {
        self.seats
            .iter()
            .find(|s| Some(s.id.as_str()) != self.me())
            .map_or(Status::Waiting, |s| s.status(now))
    }

    /// What a spectator's page shows about the two players at `now`.
    pub fn players(&self, now: u64) -> [Status; 2] {
        let status = |at: usize| {
            self.seats
                .get(at)
                .map_or(Status::Waiting, |s| s.status(now))
        };
        [status(0), status(1)]
    }

    /// The next moment after `now` at which a status changes by itself.
    pub fn poll_timeout(&self, now: u64) -> Option<u64> {
        self.seats
            .iter()
            .filter_map(|s| s.activity.poll_timeout(now))
            .min()
    }
}

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
    fn a_snapshot_can_say_typing_lasts_a_little_longer() {
        let mut status = OpponentStatus::default();
        status.handle_typing_for(1_000, 50_000);
        assert_eq!(status.status(50_999), Status::Typing);
        assert_eq!(status.status(51_000), Status::Thinking);
        status.handle_typing_for(0, 50_000);
        assert_eq!(status.status(50_000), Status::Thinking);
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

#[cfg(test)]
mod room_view_tests {
    use super::*;
    use crate::protocol::{MemberRef, MemberState, RoomName, PROTOCOL_VERSION};

    fn member(id: &str, role: Role, state: Connection) -> MemberState {
        MemberState {
            id: id.into(),
            role,
            state,
            last_action: None,
            typing_ms: 0,
        }
    }

    fn welcome(you: &str, members: Vec<MemberState>) -> Welcome {
        Welcome {
            protocol: PROTOCOL_VERSION,
            room: RoomName::parse("r").unwrap(),
            you: you.into(),
            role: Role::Player,
            resumed: false,
            seq: 0,
            heartbeat_ms: 15_000,
            members,
        }
    }

    fn presence(event: PresenceEvent, id: &str, role: Role) -> Presence {
        Presence {
            event,
            member: MemberRef {
                id: id.into(),
                role,
            },
            seq: 1,
        }
    }

    fn alone() -> RoomView {
        let mut view = RoomView::default();
        view.handle_welcome(
            &welcome("me", vec![member("me", Role::Player, Connection::Online)]),
            0,
        );
        view
    }

    #[test]
    fn a_snapshot_replaces_the_seats_and_keeps_who_i_am() {
        let mut view = alone();
        view.handle_presence(&presence(PresenceEvent::Join, "gone", Role::Player));
        let mut back = member("op", Role::Player, Connection::Online);
        back.last_action = Some(Action::Accepted);
        view.handle_snapshot(&[member("me", Role::Player, Connection::Online), back], 0);
        assert_eq!(view.me(), Some("me"));
        assert_eq!(view.opponent(0), Status::Action(Action::Accepted));
    }

    #[test]
    fn a_player_alone_waits_for_an_opponent() {
        let view = alone();
        assert_eq!(view.opponent(0), Status::Waiting);
        assert_eq!(view.opponent(0).label(), "Waiting for an opponent");
    }

    #[test]
    fn an_opponent_who_joins_is_thinking_then_shows_what_they_do() {
        let mut view = alone();
        view.handle_presence(&presence(PresenceEvent::Join, "op", Role::Player));
        assert_eq!(view.opponent(0), Status::Thinking);
        view.handle_frame("op", ClientEvent::Typing, 100);
        assert_eq!(view.opponent(200), Status::Typing);
        assert_eq!(view.poll_timeout(200), Some(2_600));
        view.handle_frame("me", ClientEvent::Action(Action::Accepted), 300);
        assert_eq!(
            view.opponent(3_000),
            Status::Thinking,
            "my own frames are not the opponent's"
        );
    }

    #[test]
    fn spectators_never_take_a_players_panel() {
        let mut view = alone();
        view.handle_presence(&presence(PresenceEvent::Join, "watcher", Role::Spectator));
        assert_eq!(view.opponent(0), Status::Waiting);
    }

    #[test]
    fn an_opponent_who_drops_is_reconnecting_then_back_or_gone() {
        let mut view = alone();
        view.handle_presence(&presence(PresenceEvent::Join, "op", Role::Player));
        view.handle_frame("op", ClientEvent::Action(Action::Running), 0);
        view.handle_frame("op", ClientEvent::Typing, 10);
        view.handle_presence(&presence(PresenceEvent::Reconnecting, "op", Role::Player));
        assert_eq!(view.opponent(20), Status::Reconnecting);
        assert_eq!(view.opponent(20).label(), "Opponent reconnecting...");
        view.handle_presence(&presence(PresenceEvent::Resume, "op", Role::Player));
        assert_eq!(
            view.opponent(20),
            Status::Action(Action::Running),
            "typing does not survive a drop, the last action does"
        );
        view.handle_presence(&presence(PresenceEvent::Leave, "op", Role::Player));
        assert_eq!(view.opponent(20), Status::Left);
        assert_eq!(view.opponent(20).label(), "Opponent left");
    }

    #[test]
    fn a_new_opponent_takes_the_seat_of_one_who_left() {
        let mut view = alone();
        view.handle_presence(&presence(PresenceEvent::Join, "op", Role::Player));
        view.handle_frame("op", ClientEvent::Action(Action::WrongAnswer), 0);
        view.handle_presence(&presence(PresenceEvent::Leave, "op", Role::Player));
        view.handle_presence(&presence(PresenceEvent::Join, "new", Role::Player));
        assert_eq!(view.opponent(0), Status::Thinking);
    }

    #[test]
    fn a_snapshot_shows_a_late_joiner_the_opponents_true_status_at_once() {
        let mut view = RoomView::default();
        let mut op = member("op", Role::Player, Connection::Online);
        op.last_action = Some(Action::FailedTest(2));
        view.handle_welcome(
            &welcome(
                "me",
                vec![op.clone(), member("me", Role::Player, Connection::Online)],
            ),
            1_000,
        );
        assert_eq!(view.opponent(1_000), Status::Action(Action::FailedTest(2)));

        op.typing_ms = 700;
        view.handle_welcome(&welcome("me", vec![op.clone()]), 5_000);
        assert_eq!(view.opponent(5_699), Status::Typing);
        assert_eq!(view.opponent(5_700), Status::Action(Action::FailedTest(2)));

        op.state = Connection::Reconnecting;
        view.handle_welcome(&welcome("me", vec![op]), 9_000);
        assert_eq!(view.opponent(9_000), Status::Reconnecting);
    }

    #[test]
    fn a_spectator_sees_both_players_in_the_order_they_joined() {
        let mut view = RoomView::default();
        view.handle_welcome(
            &welcome(
                "watcher",
                vec![
                    member("a", Role::Player, Connection::Online),
                    member("watcher", Role::Spectator, Connection::Online),
                ],
            ),
            0,
        );
        assert_eq!(view.players(0), [Status::Thinking, Status::Waiting]);
        assert_eq!(Status::Waiting.watcher_label(), "Waiting for a player");
        view.handle_presence(&presence(PresenceEvent::Join, "b", Role::Player));
        view.handle_frame("b", ClientEvent::Typing, 0);
        view.handle_frame("a", ClientEvent::Action(Action::Submitted), 0);
        assert_eq!(
            view.players(1),
            [Status::Action(Action::Submitted), Status::Typing]
        );
    }

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
