//! The battle as a timeline: who did what, when, from the room's history
//! (in the welcome) and the live frames after it, each event once, in
//! `seq` order, and whether anything before could not be recovered.

use std::borrow::Cow;

use super::action_label;
use crate::protocol::{PlayerName, PresenceEvent, Role, ServerFrame, Welcome};

/// Moments a page keeps.
pub const TIMELINE_LEN: usize = 200;

/// One thing a player did, or that happened to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    /// Its number in the room's sequence.
    pub seq: u64,
    /// When, in ms since the Unix epoch (the server's time for recovered
    /// events, the page's for live ones).
    pub at: u64,
    /// The player's member id.
    pub who: String,
    /// What a person reads, e.g. "Submitted code" or "left".
    pub what: Cow<'static, str>,
    /// An action or a verdict (not a presence change).
    pub action: bool,
}

/// The players' moments, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    moments: Vec<Moment>,
    /// Players by the order they first appear, for "Player 1", "Player 2",
    /// with their names once known.
    players: Vec<(String, Option<PlayerName>)>,
    /// Some earlier moments could not be recovered after a reconnection.
    incomplete: bool,
}

impl Timeline {
    /// The welcome of a (re)connection: its history joins what is known,
    /// and a history that could not reach back is remembered as a gap.
    pub fn handle_welcome(&mut self, welcome: &Welcome) {
        if welcome.recovered == Some(false) && !self.moments.is_empty() {
            self.incomplete = true;
        }
        for entry in &welcome.history {
            self.handle_frame(&entry.frame, entry.at);
        }
    }

    /// A frame of the room, seen at `at`: kept if it is a player's action
    /// or presence change not seen before.
    pub fn handle_frame(&mut self, frame: &ServerFrame, at: u64) {
        let (seq, who, what, action) = match frame {
            ServerFrame::Action(stamped) => match stamped.action {
                Some(action) => {
                    self.name(&stamped.from, stamped.name.as_ref());
                    (stamped.seq, &stamped.from, action_label(action), true)
                }
                None => return,
            },
            ServerFrame::Name(stamped) => {
                self.name(&stamped.from, stamped.name.as_ref());
                return;
            }
            ServerFrame::Presence(presence) if presence.member.role == Role::Player => {
                self.name(&presence.member.id, presence.member.name.as_ref());
                (
                    presence.seq,
                    &presence.member.id,
                    presence_label(presence.event),
                    false,
                )
            }
            _ => return,
        };
        let at_index = match self.moments.binary_search_by_key(&seq, |m| m.seq) {
            Ok(_) => return,
            Err(index) => index,
        };
        self.moments.insert(
            at_index,
            Moment {
                seq,
                at,
                who: who.to_string(),
                what,
                action,
            },
        );
        if self.moments.len() > TIMELINE_LEN {
            self.moments.remove(0);
        }
    }

    /// Player `id` is called `name`, if given; a player seen for the first
    /// time takes the next number.
    fn name(&mut self, id: &str, name: Option<&PlayerName>) {
        match self.players.iter_mut().find(|(known, _)| known == id) {
            Some((_, known)) => {
                if name.is_some() {
                    known.clone_from(&name.cloned());
                }
            }
            None => self.players.push((id.to_owned(), name.cloned())),
        }
    }

    /// Every moment, oldest first.
    pub fn moments(&self) -> &[Moment] {
        &self.moments
    }

    /// True if some earlier moments could not be recovered.
    pub fn incomplete(&self) -> bool {
        self.incomplete
    }

    /// "Ada · Submitted code · 0:42" (or "Player 1 · ..." for a player
    /// with no name): who, what, and when since the first moment known.
    pub fn describe(&self, moment: &Moment) -> String {
        let who = match self.players.iter().position(|(id, _)| *id == moment.who) {
            Some(at) => match &self.players[at].1 {
                Some(name) => name.as_str().to_owned(),
                None => format!("Player {}", at + 1),
            },
            None => "Player 0".to_owned(),
        };
        format!("{who} · {} · {}", moment.what, self.clock(moment))
    }

    /// The last `count` actions of players other than `me`, newest first,
    /// as "Submitted code · 0:42".
    pub fn recent_actions_of_others(&self, me: &str, count: usize) -> Vec<String> {
        self.moments
            .iter()
            .rev()
            .filter(|m| m.action && m.who != me)
            .take(count)
            .map(|m| format!("{} · {}", m.what, self.clock(m)))
            .collect()
    }

    /// `m:ss` since the first moment known.
    fn clock(&self, moment: &Moment) -> String {
        let start = self.moments.first().map_or(moment.at, |first| first.at);
        let secs = moment.at.saturating_sub(start) / 1_000;
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

fn presence_label(event: PresenceEvent) -> Cow<'static, str> {
    match event {
        PresenceEvent::Join => "joined".into(),
        PresenceEvent::Reconnecting => "reconnecting".into(),
        PresenceEvent::Resume => "is back".into(),
        PresenceEvent::Leave => "left".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        Action, ClientEvent, ClientFrame, HistoryEntry, MemberRef, Presence, RoomName,
        PROTOCOL_VERSION,
    };

    fn action(from: &str, action: Action, seq: u64) -> ServerFrame {
        let frame = ClientFrame::new(ClientEvent::Action(action));
        ServerFrame::relayed(frame, &MemberRef::new(from, Role::Player), seq)
    }

    fn joined(id: &str, role: Role, seq: u64) -> ServerFrame {
        ServerFrame::Presence(Presence {
            event: PresenceEvent::Join,
            member: MemberRef::new(id, role),
            seq,
        })
    }

    fn welcome(history: Vec<(u64, ServerFrame)>, recovered: Option<bool>) -> Welcome {
        Welcome {
            protocol: PROTOCOL_VERSION,
            room: RoomName::parse("r").unwrap(),
            you: "me".into(),
            role: Role::Spectator,
            resumed: false,
            name_locked: false,
            seq: 99,
            heartbeat_ms: 15_000,
            members: vec![],
            history: history
                .into_iter()
                .map(|(at, frame)| HistoryEntry { at, frame })
                .collect(),
            recovered,
        }
    }

    #[test]
    fn players_with_names_are_named_and_a_new_name_applies_to_every_line() {
        let mut timeline = Timeline::default();
        let ada = MemberRef {
            name: Some(PlayerName::parse("Ada").unwrap()),
            ..MemberRef::new("a", Role::Player)
        };
        let join = ServerFrame::Presence(Presence {
            event: PresenceEvent::Join,
            member: ada.clone(),
            seq: 1,
        });
        timeline.handle_frame(&join, 0);
        timeline.handle_frame(&joined("b", Role::Player, 2), 0);
        let first = timeline.describe(&timeline.moments()[0].clone());
        assert_eq!(first, "Ada · joined · 0:00");
        let second = timeline.describe(&timeline.moments()[1].clone());
        assert_eq!(second, "Player 2 · joined · 0:00");
        let renamed = ClientFrame::new(ClientEvent::Name(PlayerName::parse("Ada L.").unwrap()));
        timeline.handle_frame(&ServerFrame::relayed(renamed, &ada, 3), 0);
        let first = timeline.describe(&timeline.moments()[0].clone());
        assert_eq!(first, "Ada L. · joined · 0:00");
    }

    #[test]
    fn the_history_then_live_frames_make_one_timeline_of_players_in_order() {
        let mut timeline = Timeline::default();
        timeline.handle_welcome(&welcome(
            vec![
                (10_000, joined("a", Role::Player, 1)),
                (11_000, joined("b", Role::Player, 2)),
                (12_000, joined("w", Role::Spectator, 3)),
                (52_000, action("b", Action::Submitted, 5)),
            ],
            None,
        ));
        timeline.handle_frame(&action("a", Action::FailedTest(3), 7), 130_000);
        timeline.handle_frame(&action("b", Action::Submitted, 5), 140_000);
        let told: Vec<String> = timeline
            .moments()
            .iter()
            .map(|m| timeline.describe(m))
            .collect();
        assert_eq!(
            told,
            [
                "Player 1 · joined · 0:00",
                "Player 2 · joined · 0:01",
                "Player 2 · Submitted code · 0:42",
                "Player 1 · Failed on test 3 · 2:00",
            ],
            "spectators are not moments, and a frame seen twice counts once"
        );
        assert!(!timeline.incomplete());
    }

    #[test]
    fn recovered_moments_fill_in_between_and_a_gap_is_said() {
        let mut timeline = Timeline::default();
        timeline.handle_frame(&action("b", Action::Running, 4), 1_000);
        timeline.handle_frame(&action("b", Action::Accepted, 9), 9_000);
        timeline.handle_welcome(&welcome(
            vec![
                (5_000, action("b", Action::FailedTest(3), 6)),
                (6_000, action("b", Action::TimeLimitExceeded, 7)),
            ],
            Some(true),
        ));
        assert_eq!(
            timeline.recent_actions_of_others("me", 5),
            [
                "Accepted · 0:08",
                "TLE · 0:05",
                "Failed on test 3 · 0:04",
                "Running code · 0:00"
            ]
        );
        assert!(!timeline.incomplete());
        timeline.handle_welcome(&welcome(vec![], Some(false)));
        assert!(timeline.incomplete(), "the page says it could not recover");
        assert_eq!(
            timeline.recent_actions_of_others("b", 5),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_timeline_keeps_a_bounded_number_of_moments() {
        let mut timeline = Timeline::default();
        for seq in 1..=(TIMELINE_LEN as u64 + 10) {
            timeline.handle_frame(&action("a", Action::Running, seq), seq);
        }
        assert_eq!(timeline.moments().len(), TIMELINE_LEN);
        assert_eq!(timeline.moments()[0].seq, 11);
    }
}
