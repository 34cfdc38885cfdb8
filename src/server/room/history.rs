//! A room's history: the last events (actions, verdicts, presence; not
//! typing pings), each with its `seq` and the server's time, and the rules
//! by which a connection that presents the last `seq` it saw recovers
//! exactly what came after. Pure.

use std::collections::VecDeque;

use crate::protocol::{HistoryEntry, ServerFrame, Since};

/// Events a room keeps, by default.
pub const HISTORY_LEN: usize = 200;

/// The last events of a room, oldest first, at most `capacity`.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    entries: VecDeque<HistoryEntry>,
    capacity: usize,
    /// Events numbered up to this may be missing (they were dropped to keep
    /// the bound, or happened where the history could not record them).
    floor: u64,
}

impl History {
    /// An empty history of at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity,
            floor: 0,
        }
    }

    /// Records `frame`, numbered `seq` at `at`, if it is an event.
    pub fn record(&mut self, seq: u64, at: u64, frame: &ServerFrame) {
        if !frame.is_event() || self.capacity == 0 {
            return;
        }
        if self.entries.len() == self.capacity {
            if let Some(dropped) = self.entries.pop_front() {
                self.floor = self.floor.max(dropped.seq());
            }
        }
        if self.entries.capacity() == 0 {
            // Room for the two players' arrivals, then doubling: a room
            // that only ever saw them come keeps no more.
            self.entries.reserve_exact(2);
        }
        self.entries.push_back(HistoryEntry {
            at,
            frame: frame.clone().with_seq(seq),
        });
    }

    /// The events kept, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.entries.iter()
    }

    /// Events numbered up to this may be missing.
    pub fn floor(&self) -> u64 {
        self.floor
    }
}

/// What a joining connection is sent of the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    /// The events to send, oldest first.
    pub entries: Vec<HistoryEntry>,
    /// `Some(true)` if they are exactly every event after `since`;
    /// `Some(false)` if the history could not reach back that far (or
    /// `since` was no sequence number); `None` without `since`.
    pub recovered: Option<bool>,
    /// Why `since` was refused, when it was.
    pub problem: Option<String>,
}

/// How to answer `since` in a room whose history is `entries` (oldest
/// first; entries after `seq`, the room's number at the join, are left out:
/// they arrive live), where events up to `floor` may be missing.
pub fn recover(entries: &[HistoryEntry], floor: u64, seq: u64, since: &Since) -> Recovery {
    let known: Vec<HistoryEntry> = entries.iter().filter(|e| e.seq() <= seq).cloned().collect();
    let not_recovered = |problem: Option<String>| Recovery {
        entries: known.clone(),
        recovered: Some(false),
        problem,
    };
    match since {
        Since::Nothing => Recovery {
            entries: known.clone(),
            recovered: None,
            problem: None,
        },
        Since::Invalid(text) => {
            not_recovered(Some(format!("since {text:?} is not a sequence number")))
        }
        Since::Seq(since) if *since > seq => not_recovered(Some(format!(
            "since {since} is after the room's last frame ({seq})"
        ))),
        Since::Seq(since) if *since < floor => not_recovered(None),
        Since::Seq(since) => Recovery {
            entries: known.iter().filter(|e| e.seq() > *since).cloned().collect(),
            recovered: Some(true),
            problem: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        Action, ClientEvent, ClientFrame, MemberRef, Presence, PresenceEvent, Role,
    };

    fn action(n: u16) -> ServerFrame {
        let frame = ClientFrame::new(ClientEvent::Action(Action::FailedTest(n)));
        ServerFrame::relayed(frame, &MemberRef::new("m1", Role::Player), 0)
    }

    fn typing() -> ServerFrame {
        ServerFrame::relayed(
            ClientFrame::new(ClientEvent::Typing),
            &MemberRef::new("m1", Role::Player),
            0,
        )
    }

    fn seqs(entries: &[HistoryEntry]) -> Vec<u64> {
        entries.iter().map(HistoryEntry::seq).collect()
    }

    #[test]
    fn a_history_keeps_the_last_events_and_no_typing() {
        let mut history = History::new(3);
        for seq in 1..=6 {
            let frame = if seq % 2 == 0 {
                typing()
            } else {
                action(seq as u16)
            };
            history.record(seq, 1_000 + seq, &frame);
        }
        history.record(7, 1_007, &action(7));
        history.record(8, 1_008, &action(8));
        let kept: Vec<u64> = history.entries().map(HistoryEntry::seq).collect();
        assert_eq!(kept, [5, 7, 8]);
        assert_eq!(history.floor(), 3, "events up to 3 may be missing");
        let first = history.entries().next().unwrap();
        assert_eq!(first.at, 1_005);
        assert_eq!(first.frame.seq(), Some(5));
    }

    #[test]
    fn an_audience_coming_and_going_leaves_the_battle_in_the_history() {
        let presence = |role, event, seq| {
            ServerFrame::Presence(Presence {
                event,
                member: MemberRef::new(if role == Role::Player { "p1" } else { "s1" }, role),
                seq,
            })
        };
        let mut history = History::new(3);
        history.record(1, 1, &presence(Role::Player, PresenceEvent::Join, 1));
        history.record(2, 2, &action(2));
        for seq in 3..=10 {
            let event = if seq % 2 == 1 {
                PresenceEvent::Join
            } else {
                PresenceEvent::Leave
            };
            history.record(seq, seq, &presence(Role::Spectator, event, seq));
        }
        history.record(
            11,
            11,
            &presence(Role::Player, PresenceEvent::Reconnecting, 11),
        );
        let kept: Vec<u64> = history.entries().map(HistoryEntry::seq).collect();
        assert_eq!(kept, [1, 2, 11]);
        assert_eq!(history.floor(), 0, "nothing of the battle was dropped");
    }

    #[test]
    fn since_recovers_exactly_what_came_after_and_no_later_frame() {
        let mut history = History::new(10);
        for seq in [2, 4, 5, 9] {
            history.record(seq, seq, &action(seq as u16));
        }
        let entries: Vec<HistoryEntry> = history.entries().cloned().collect();
        let at_join = recover(&entries, history.floor(), 5, &Since::Seq(3));
        assert_eq!(at_join.recovered, Some(true));
        assert_eq!(
            seqs(&at_join.entries),
            [4, 5],
            "9 comes live, after the join"
        );
        let nothing_missed = recover(&entries, 0, 9, &Since::Seq(9));
        assert_eq!(
            (nothing_missed.recovered, nothing_missed.entries.len()),
            (Some(true), 0)
        );
        let first_visit = recover(&entries, 0, 9, &Since::Nothing);
        assert_eq!(
            (first_visit.recovered, seqs(&first_visit.entries)),
            (None, vec![2, 4, 5, 9])
        );
    }

    #[test]
    fn since_older_than_the_history_in_the_future_or_not_a_number_is_not_recovered() {
        let entries = vec![HistoryEntry {
            at: 1,
            frame: action(1).with_seq(7),
        }];
        let too_old = recover(&entries, 6, 7, &Since::Seq(2));
        assert_eq!((too_old.recovered, too_old.problem), (Some(false), None));
        assert_eq!(seqs(&too_old.entries), [7], "what the room keeps");
        let future = recover(&entries, 0, 7, &Since::Seq(8));
        assert_eq!(future.recovered, Some(false));
        assert!(future
            .problem
            .unwrap()
            .contains("after the room's last frame"));
        let junk = recover(&entries, 0, 7, &Since::parse(Some("-1")));
        assert_eq!(junk.recovered, Some(false));
        assert!(junk.problem.unwrap().contains("not a sequence number"));
        assert_eq!(Since::parse(Some("12")), Since::Seq(12));
        assert_eq!(Since::parse(None), Since::Nothing);
        assert!(matches!(Since::parse(Some("1e3")), Since::Invalid(_)));
    }
}
