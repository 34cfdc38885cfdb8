//! The room as the page sees it: who this connection is and the two
//! players' seats, fed with the server's welcome, snapshots, presence and
//! relayed frames.

use super::{OpponentStatus, Status};
use crate::protocol::{
    Action, ClientEvent, Connection, MemberState, Presence, PresenceEvent, Role, Welcome,
};

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

#[cfg(test)]
mod tests {
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
            history: vec![],
            recovered: None,
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
}
