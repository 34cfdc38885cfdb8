//! The room as the page sees it: who this connection is and the two
//! players' seats, fed with the server's welcome, snapshots, presence and
//! relayed frames; and what each change is worth telling the player.

use super::{
    notice::{away_label, next_away_change, Notice},
    OpponentStatus, Status,
};
use crate::protocol::{
    Action, ClientEvent, Connection, MemberState, PlayerName, Presence, PresenceEvent, Role,
    Welcome,
};

/// One player's seat as the page sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seat {
    id: String,
    name: Option<PlayerName>,
    connection: Connection,
    left: bool,
    activity: OpponentStatus,
    /// Since when (page time) the player's tab is hidden.
    away_since: Option<u64>,
}

impl Seat {
    fn new(id: String, name: Option<PlayerName>) -> Self {
        Self {
            id,
            name,
            connection: Connection::Online,
            left: false,
            activity: OpponentStatus::default(),
            away_since: None,
        }
    }

    fn status(&self, now: u64) -> Status {
        match (self.left, self.connection) {
            (true, _) => Status::Left,
            (false, Connection::Reconnecting) => Status::Reconnecting,
            (false, Connection::Online) => self.activity.status(now),
        }
    }

    fn badge(&self, now: u64) -> Badge {
        Badge {
            name: self.name.as_ref().map(|name| name.as_str().to_owned()),
            away: self
                .away_since
                .map(|since| away_label(now.saturating_sub(since))),
        }
    }
}

/// Who a player is, and whether they are away, as their panel shows it
/// beside their status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Badge {
    /// Their display name, if they gave one.
    pub name: Option<String>,
    /// "Away for 40 s", while their tab is hidden.
    pub away: Option<String>,
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
                let mut seat = Seat::new(m.id.clone(), m.name.clone());
                if let Some(action) = m.last_action {
                    seat.activity.handle_action(action);
                }
                seat.activity.handle_typing_for(m.typing_ms, now);
                seat.connection = m.state;
                seat.away_since = m.away_ms.map(|ms| now.saturating_sub(ms));
                seat
            })
            .collect();
    }

    /// Someone joined, dropped, came back or left: what to tell the
    /// player about it, if anything.
    pub fn handle_presence(&mut self, presence: &Presence) -> Option<Notice> {
        if presence.member.role != Role::Player {
            return None;
        }
        let id = &presence.member.id;
        let known = self.seats.iter().position(|s| *s.id == **id);
        let name = presence.member.name.clone();
        match (presence.event, known) {
            (PresenceEvent::Join, None) => {
                let seat = Seat::new(id.to_string(), name);
                match self.seats.iter().position(|s| s.left) {
                    Some(free) => self.seats[free] = seat,
                    None => self.seats.push(seat),
                }
            }
            (PresenceEvent::Join | PresenceEvent::Resume, Some(at)) => {
                let seat = &mut self.seats[at];
                seat.connection = Connection::Online;
                seat.left = false;
                seat.name = name.or(seat.name.take());
            }
            (PresenceEvent::Reconnecting, Some(at)) => {
                let seat = &mut self.seats[at];
                seat.connection = Connection::Reconnecting;
                seat.activity.handle_dropped();
                seat.away_since = None;
            }
            (PresenceEvent::Leave, Some(at)) => {
                self.seats[at].left = true;
                self.seats[at].away_since = None;
            }
            (_, None) => return None,
        }
        if self.me() == Some(&**id) {
            return None;
        }
        let who = self.who(id)?;
        Some(Notice::presence(&who, presence.event))
    }

    /// Member `from` sent `event` (`judge` if it is the judge's verdict),
    /// received at `now`: what to tell the player about it, if anything.
    pub fn handle_frame(
        &mut self,
        from: &str,
        event: ClientEvent,
        judge: bool,
        now: u64,
    ) -> Option<Notice> {
        let mine = self.me() == Some(from);
        let at = self.seats.iter().position(|s| s.id == from)?;
        // Who to name is worked out only for a change worth telling: not
        // for every typing ping.
        let seat = &mut self.seats[at];
        match event {
            ClientEvent::Typing => {
                seat.activity.handle_typing(now);
                None
            }
            ClientEvent::Action(action) => {
                seat.activity.handle_action(action);
                match (mine, judge) {
                    (true, true) => Some(Notice::own_verdict(action)),
                    (true, false) => None,
                    (false, _) => Some(Notice::action(&self.who(from)?, action)),
                }
            }
            ClientEvent::Away(away) => {
                let was_away = seat.away_since.is_some();
                let since = seat.away_since.unwrap_or(now);
                seat.away_since = away.then_some(since);
                if mine || away == was_away {
                    return None;
                }
                Some(Notice::away(&self.who(from)?, away))
            }
            ClientEvent::Name(name) => {
                if mine || seat.name.as_ref() == Some(&name) {
                    seat.name = Some(name);
                    return None;
                }
                let was = self.who(from)?;
                self.seats[at].name = Some(name);
                Some(Notice::renamed(&was, &self.who(from)?))
            }
        }
    }

    /// How the page names player `id` to this player: by name, else
    /// "Your opponent" (or "Player 1", "Player 2" for a spectator); `None`
    /// for someone who holds no player's seat.
    fn who(&self, id: &str) -> Option<String> {
        let at = self.seats.iter().position(|s| s.id == id)?;
        Some(match (&self.seats[at].name, self.me()) {
            (Some(name), _) => name.as_str().to_owned(),
            (None, Some(me)) if self.seats.iter().any(|s| s.id == me) => "Your opponent".into(),
            (None, _) => format!("Player {}", at + 1),
        })
    }

    /// This player's own name, as the room has it.
    pub fn own_name(&self) -> Option<&PlayerName> {
        let me = self.me()?;
        self.seats.iter().find(|s| s.id == me)?.name.as_ref()
    }

    /// The opponent's name and away state at `now`, for a player's page.
    pub fn opponent_badge(&self, now: u64) -> Badge {
        self.seats
            .iter()
            .find(|s| Some(s.id.as_str()) != self.me())
            .map_or_else(Badge::default, |s| s.badge(now))
    }

    /// Both players' names and away states at `now`, for a spectator.
    pub fn player_badges(&self, now: u64) -> [Badge; 2] {
        let badge = |at: usize| {
            self.seats
                .get(at)
                .map_or_else(Badge::default, |s| s.badge(now))
        };
        [badge(0), badge(1)]
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
        let typing = self
            .seats
            .iter()
            .filter_map(|s| s.activity.poll_timeout(now));
        let away = self
            .seats
            .iter()
            .filter_map(|s| s.away_since)
            .map(|since| since + next_away_change(now.saturating_sub(since)));
        typing.chain(away).min()
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
            name: None,
            away_ms: None,
        }
    }

    fn welcome(you: &str, members: Vec<MemberState>) -> Welcome {
        Welcome {
            protocol: PROTOCOL_VERSION,
            room: RoomName::parse("r").unwrap(),
            you: you.into(),
            role: Role::Player,
            resumed: false,
            name_locked: false,
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
            member: MemberRef::new(id, role),
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
        view.handle_frame("op", ClientEvent::Typing, false, 100);
        assert_eq!(view.opponent(200), Status::Typing);
        assert_eq!(view.poll_timeout(200), Some(2_600));
        view.handle_frame("me", ClientEvent::Action(Action::Accepted), false, 300);
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
        view.handle_frame("op", ClientEvent::Action(Action::Running), false, 0);
        view.handle_frame("op", ClientEvent::Typing, false, 10);
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
        view.handle_frame("op", ClientEvent::Action(Action::WrongAnswer), false, 0);
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
        view.handle_frame("b", ClientEvent::Typing, false, 0);
        view.handle_frame("a", ClientEvent::Action(Action::Submitted), false, 0);
        assert_eq!(
            view.players(1),
            [Status::Action(Action::Submitted), Status::Typing]
        );
    }

    fn named(id: &str, name: &str) -> MemberState {
        MemberState {
            name: Some(PlayerName::parse(name).unwrap()),
            ..member(id, Role::Player, Connection::Online)
        }
    }

    #[test]
    fn the_opponents_name_and_away_time_come_from_the_snapshot_and_their_frames() {
        let mut view = RoomView::default();
        let mut ada = named("op", "Ada");
        ada.away_ms = Some(5_000);
        view.handle_welcome(&welcome("me", vec![named("me", "Grace"), ada]), 10_000);
        assert_eq!(view.own_name().unwrap().as_str(), "Grace");
        let badge = view.opponent_badge(10_000);
        assert_eq!(badge.name.as_deref(), Some("Ada"));
        assert_eq!(badge.away.as_deref(), Some("Away for 5 s"));
        assert_eq!(view.poll_timeout(10_000), Some(11_000), "the count goes on");
        let back = view.handle_frame("op", ClientEvent::Away(false), false, 12_000);
        assert_eq!(back.unwrap().announce, "Ada is back");
        assert_eq!(view.opponent_badge(12_000).away, None);
        assert_eq!(view.poll_timeout(12_000), None);
    }

    #[test]
    fn away_does_not_replace_the_last_action_and_ends_with_a_drop() {
        let mut view = alone();
        view.handle_presence(&presence(PresenceEvent::Join, "op", Role::Player));
        view.handle_frame("op", ClientEvent::Action(Action::Submitted), false, 0);
        let away = view.handle_frame("op", ClientEvent::Away(true), false, 1_000);
        assert_eq!(away.unwrap().announce, "Your opponent is away");
        assert_eq!(
            view.handle_frame("op", ClientEvent::Away(true), false, 2_000),
            None,
            "said once"
        );
        assert_eq!(view.opponent(41_000), Status::Action(Action::Submitted));
        assert_eq!(
            view.opponent_badge(41_000).away.as_deref(),
            Some("Away for 40 s"),
            "away since the first frame"
        );
        view.handle_presence(&presence(PresenceEvent::Reconnecting, "op", Role::Player));
        assert_eq!(view.opponent_badge(42_000).away, None);
    }

    #[test]
    fn notices_name_the_opponent_and_skip_typing_and_my_own_moves() {
        let mut view = alone();
        let joined = view.handle_presence(&Presence {
            member: MemberRef {
                name: Some(PlayerName::parse("Ada").unwrap()),
                ..MemberRef::new("op", Role::Player)
            },
            ..presence(PresenceEvent::Join, "op", Role::Player)
        });
        assert_eq!(joined.unwrap().announce, "Ada joined");
        assert_eq!(view.handle_frame("op", ClientEvent::Typing, false, 0), None);
        let run = view.handle_frame("op", ClientEvent::Action(Action::Running), false, 0);
        assert_eq!(
            run.unwrap().headline.as_deref(),
            Some("Ada is running code")
        );
        assert_eq!(
            view.handle_frame("me", ClientEvent::Action(Action::Submitted), false, 0),
            None
        );
        let verdict = view.handle_frame("me", ClientEvent::Action(Action::WrongAnswer), true, 0);
        assert_eq!(
            verdict.unwrap().verdict.as_deref(),
            Some("Your verdict: Wrong answer")
        );
        let renamed = ClientEvent::Name(PlayerName::parse("Ada L.").unwrap());
        let notice = view.handle_frame("op", renamed.clone(), false, 0);
        assert_eq!(notice.unwrap().announce, "Ada is now called Ada L.");
        assert_eq!(
            view.handle_frame("op", renamed, false, 0),
            None,
            "said once"
        );
        assert_eq!(view.opponent_badge(0).name.as_deref(), Some("Ada L."));
    }

    #[test]
    fn a_spectator_reads_both_names_or_their_numbers() {
        let mut view = RoomView::default();
        view.handle_welcome(
            &welcome(
                "watcher",
                vec![
                    named("a", "Ada"),
                    member("b", Role::Player, Connection::Online),
                    member("watcher", Role::Spectator, Connection::Online),
                ],
            ),
            0,
        );
        let [first, second] = view.player_badges(0);
        assert_eq!(first.name.as_deref(), Some("Ada"));
        assert_eq!(second.name, None);
        let run = view.handle_frame("b", ClientEvent::Action(Action::Running), false, 0);
        assert_eq!(run.unwrap().announce, "Player 2: Running code");
    }
}
