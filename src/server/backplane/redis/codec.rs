//! What goes over the wire to Redis: the messages on a room's channel, a
//! room's hash read back, and a roster change written out.

use std::collections::HashMap;

use super::keys::{action_field, away_field, name_field, owner_field, typing_field};
use crate::{
    protocol::{
        restamp, Action, ClientEvent, HistoryEntry, PlayerName, PresenceEvent, ServerFrame,
    },
    server::room::{Change, Roster},
};

/// A message on a room's channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A frame for every member, numbered: `<seq>|<server frame>`, or
    /// `<seq>|<frame id>|<server frame>` for a client's frame or a verdict,
    /// whose id lets the instance that published it recognise a late copy.
    Frame {
        /// Its number in the room's sequence.
        seq: u64,
        /// The publishing instance's id for it, if it has one.
        id: Option<String>,
        /// The frame.
        frame: ServerFrame,
    },
    /// A stamped frame (typing, action, away, name), as `Frame` is, with
    /// its text numbered in place: handed to members without being read.
    Stamped {
        /// Its number in the room's sequence.
        seq: u64,
        /// The publishing instance's id for it, if it has one.
        id: Option<String>,
        /// The frame's text, numbered `seq`.
        text: String,
    },
    /// This connection lost its seat to a newer one: `r|<conn>`.
    Replaced(String),
    /// This instance wants to serve the room too: the room's sole
    /// instance stops numbering its frames itself (`h|<instance id>`).
    Handover(String),
}

impl Message {
    /// Reads a channel message; `None` if it is not one of ours.
    pub fn parse(text: &str) -> Option<Self> {
        let (head, body) = text.split_once('|')?;
        match head {
            "r" => return Some(Self::Replaced(body.to_owned())),
            "h" => return Some(Self::Handover(body.to_owned())),
            _ => {}
        }
        let seq = head.parse().ok()?;
        let (id, json) = match body.split_once('|') {
            Some((id, json)) if !id.starts_with('{') => (Some(id.to_owned()), json),
            _ => (None, body),
        };
        if let Some(text) = restamp(json, seq) {
            return Some(Self::Stamped { seq, id, text });
        }
        Some(Self::Frame {
            seq,
            id,
            frame: ServerFrame::parse(json)?,
        })
    }
}

/// The text published for connection `conn` losing its seat.
pub fn replaced_message(conn: &str) -> String {
    format!("r|{conn}")
}

/// The text published by instance `node` to serve a room that another
/// instance numbers by itself.
pub fn handover_message(node: &str) -> String {
    format!("h|{node}")
}

/// The hash field where a member's `event` is recorded, and its value.
pub fn record_field(id: &str, event: &ClientEvent, now: u64) -> (String, String) {
    match event {
        ClientEvent::Typing => (typing_field(id), now.to_string()),
        ClientEvent::Action(action) => (action_field(id), action.code().into_owned()),
        ClientEvent::Away(away) => (away_field(id), if *away { now } else { 0 }.to_string()),
        ClientEvent::Name(name) => (name_field(id), name.as_str().to_owned()),
    }
}

/// What a hash field beside the roster recorded: whose, what, and when.
fn recorded(field: &str, value: &str) -> Option<(String, ClientEvent, u64)> {
    let (kind, id) = field.split_once(':')?;
    let (event, at) = match kind {
        "a" => (ClientEvent::Action(Action::parse(value).ok()?), 0),
        "t" => (ClientEvent::Typing, value.parse().ok()?),
        "w" => match value.parse().ok()? {
            0 => (ClientEvent::Away(false), 0),
            since => (ClientEvent::Away(true), since),
        },
        "name" => (ClientEvent::Name(PlayerName::parse(value).ok()?), 0),
        _ => return None,
    };
    Some((id.to_owned(), event, at))
}

/// An entry of a room's history stream: id `<seq>-0`, fields `at` and `f`
/// (the frame as published); `None` if it is not one of ours.
pub fn history_entry(id: &str, fields: &[String]) -> Option<HistoryEntry> {
    let seq: u64 = id.split_once('-')?.0.parse().ok()?;
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|pair| pair.first().map(String::as_str) == Some(name))
            .and_then(|pair| pair.get(1))
    };
    Some(HistoryEntry {
        at: field("at")?.parse().ok()?,
        frame: ServerFrame::parse(field("f")?)?.with_seq(seq),
    })
}

/// A room as read from its hash.
#[derive(Debug)]
pub struct StoredRoom {
    /// The roster, with what members did since it was written.
    pub roster: Roster,
    /// The roster's version, for compare-and-set.
    pub version: String,
    /// The room's sequence number.
    pub seq: u64,
    /// The instance each seated connection is on, by connection id.
    pub owners: HashMap<String, String>,
}

impl From<&HashMap<String, String>> for StoredRoom {
    fn from(fields: &HashMap<String, String>) -> Self {
        let owners = fields
            .iter()
            .filter_map(|(field, node)| Some((field.strip_prefix("n:")?.to_owned(), node.clone())))
            .collect();
        Self {
            roster: roster_from(fields),
            version: fields.get("v").cloned().unwrap_or_default(),
            seq: fields.get("seq").and_then(|s| s.parse().ok()).unwrap_or(0),
            owners,
        }
    }
}

/// Builds a roster from a room's hash: the roster, then what members did
/// since it was written.
fn roster_from(fields: &HashMap<String, String>) -> Roster {
    let mut roster: Roster = fields
        .get("roster")
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    for (field, value) in fields {
        if let Some((id, event, at)) = recorded(field, value) {
            roster.record(&id, &event, at);
        }
    }
    roster
}

/// A roster change as this instance commits it to Redis.
#[derive(Debug, Default)]
pub struct Commit {
    /// What the change tells the room.
    pub change: Change,
    /// Fields to delete beside those the change implies (what members did
    /// while the link was down, once written into the roster).
    pub also_forget: Vec<String>,
    /// Send every member the room as it is after the change, at this time:
    /// the change commits only if no frame came in between.
    pub snapshot_at: Option<u64>,
    /// Events numbered up to this may be missing from the room's history
    /// (this instance handed out frames while Redis could not keep them).
    pub history_floor: Option<u64>,
}

impl Commit {
    /// The hash fields that no longer hold anything true: the instance of
    /// each connection that gave up its seat, everything of a member who
    /// left, the typing of one who dropped.
    pub fn forget(&self) -> Vec<String> {
        let mut fields: Vec<String> = self
            .change
            .unseated
            .iter()
            .map(|c| owner_field(c))
            .collect();
        for (event, member) in &self.change.presence {
            match event {
                PresenceEvent::Leave => {
                    fields.push(action_field(&member.id));
                    fields.push(typing_field(&member.id));
                    fields.push(away_field(&member.id));
                    fields.push(name_field(&member.id));
                }
                PresenceEvent::Reconnecting => {
                    fields.push(typing_field(&member.id));
                    fields.push(away_field(&member.id));
                }
                // The roster written holds the name (read back, or the
                // one the seat was taken back with).
                PresenceEvent::Resume => fields.push(name_field(&member.id)),
                PresenceEvent::Join => {}
            }
        }
        fields.extend(self.also_forget.iter().cloned());
        fields
    }

    /// The fields naming instance `node` beside each connection that took
    /// a seat.
    pub fn owners(&self, node: &str) -> Vec<(String, String)> {
        self.change
            .seated
            .iter()
            .map(|conn| (owner_field(conn), node.to_owned()))
            .collect()
    }

    /// True if there is nothing to write or tell.
    pub fn is_empty(&self) -> bool {
        self.change.is_empty()
            && self.also_forget.is_empty()
            && self.snapshot_at.is_none()
            && self.history_floor.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        protocol::{ClientFrame, MemberRef, PlayerKey, Presence, Role},
        server::room::{JoinRequest, Limits, HISTORY_LEN},
    };

    const LIMITS: Limits = Limits {
        max_spectators: 1,
        grace_ms: 1_000,
        history_len: HISTORY_LEN,
    };

    fn presence(event: PresenceEvent, id: &str) -> ServerFrame {
        ServerFrame::Presence(Presence {
            event,
            member: MemberRef {
                id: id.into(),
                role: Role::Player,
                name: None,
            },
            seq: 0,
        })
    }

    #[test]
    fn channel_messages_read_back_as_published() {
        let frame = presence(PresenceEvent::Join, "m1");
        let text = format!("12|{}", frame.to_json());
        let expected = Message::Frame {
            seq: 12,
            id: None,
            frame: frame.clone(),
        };
        assert_eq!(Message::parse(&text), Some(expected));
        let with_id = format!("13|node-a.7|{}", frame.to_json());
        let expected = Message::Frame {
            seq: 13,
            id: Some("node-a.7".into()),
            frame,
        };
        assert_eq!(Message::parse(&with_id), Some(expected));
        assert_eq!(
            Message::parse(&replaced_message("c1")),
            Some(Message::Replaced("c1".into()))
        );
        assert_eq!(
            Message::parse(&handover_message("n1")),
            Some(Message::Handover("n1".into()))
        );
        for junk in [
            "",
            "12",
            "x|{}",
            "12|not json",
            "-1|{\"type\":\"heartbeat\"}",
        ] {
            assert_eq!(Message::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn a_stamped_frame_on_the_channel_is_numbered_in_place_without_being_read() {
        let from = MemberRef::new("m1", Role::Player);
        for event in [ClientEvent::Typing, ClientEvent::Action(Action::Accepted)] {
            let frame = ServerFrame::relayed(ClientFrame::new(event), &from, 0);
            let text = format!("14|node-a.8|{}", frame.to_json());
            let expected = Message::Stamped {
                seq: 14,
                id: Some("node-a.8".into()),
                text: frame.with_seq(14).to_json(),
            };
            assert_eq!(Message::parse(&text), Some(expected));
        }
    }

    #[test]
    fn a_history_entry_reads_back_with_its_seq_and_time() {
        let frame = presence(PresenceEvent::Leave, "m1");
        let fields = [
            "at".to_owned(),
            "1700".to_owned(),
            "f".to_owned(),
            frame.to_json(),
        ];
        let entry = history_entry("42-0", &fields).unwrap();
        assert_eq!((entry.seq(), entry.at), (42, 1_700));
        assert_eq!(entry.frame, frame.with_seq(42));
        assert_eq!(history_entry("x-0", &fields), None);
        assert_eq!(history_entry("42-0", &fields[..2]), None, "no frame");
    }

    #[test]
    fn a_roster_read_back_carries_what_members_did_since_it_was_written() {
        let mut roster = Roster::default();
        let request = JoinRequest {
            conn: "c1".into(),
            role: Role::Player,
            key: None,
            new_id: "m1".into(),
            name: None,
        };
        roster.join(request, &LIMITS).unwrap();
        let mut fields = HashMap::from([
            ("roster".to_owned(), serde_json::to_string(&roster).unwrap()),
            ("a:m1".to_owned(), "FAILED_TC3".to_owned()),
            ("t:m1".to_owned(), "10000".to_owned()),
            ("a:gone".to_owned(), "AC".to_owned()),
        ]);
        fields.insert("n:c1".into(), "node-a".into());
        let stored = StoredRoom::from(&fields);
        assert_eq!(stored.owners["c1"], "node-a");
        let read = stored.roster;
        let member = &read.snapshot(11_000)[0];
        assert_eq!(member.last_action, Some(Action::FailedTest(3)));
        assert_eq!(member.typing_ms, 1_500);
        assert_eq!(
            read.snapshot(11_000).len(),
            1,
            "no member from a stray field"
        );
        fields.insert("roster".into(), "{broken".into());
        assert!(roster_from(&fields).is_empty());
    }

    #[test]
    fn a_seat_records_its_instance_until_its_connection_ends_or_is_replaced() {
        let request = |conn: &str| JoinRequest {
            conn: conn.into(),
            role: Role::Player,
            key: PlayerKey::parse("tab-key-000000000001"),
            new_id: format!("id-{conn}"),
            name: None,
        };
        let mut roster = Roster::default();
        let mut commit = Commit::default();
        commit
            .change
            .take_seat(&mut roster, request("c1"), &LIMITS)
            .unwrap();
        assert_eq!(
            commit.owners("node-a"),
            [("n:c1".to_owned(), "node-a".to_owned())]
        );

        let mut commit = Commit::default();
        commit
            .change
            .take_seat(&mut roster, request("c2"), &LIMITS)
            .unwrap();
        assert_eq!(
            commit.change.replaced,
            ["c1"],
            "the same key took the seat over"
        );
        assert_eq!(commit.forget(), ["n:c1"]);
        assert_eq!(
            commit.owners("node-b"),
            [("n:c2".to_owned(), "node-b".to_owned())]
        );

        let mut commit = Commit::default();
        let deadline = commit
            .change
            .give_up_seat(&mut roster, "c2", false, &LIMITS, 5_000);
        assert_eq!(deadline, Some(6_000));
        assert_eq!(commit.forget()[0], "n:c2");
        assert_eq!(commit.change.presence[0].0, PresenceEvent::Reconnecting);
        assert_eq!(roster.connected().count(), 0);
    }

    #[test]
    fn a_leave_forgets_what_the_member_did_and_a_drop_forgets_their_typing_and_away() {
        let member = |id: &str| MemberRef::new(id, Role::Player);
        let mut commit = Commit::default();
        commit.change.presence = vec![
            (PresenceEvent::Join, member("a")),
            (PresenceEvent::Reconnecting, member("b")),
            (PresenceEvent::Leave, member("c")),
            (PresenceEvent::Resume, member("d")),
        ];
        assert_eq!(
            commit.forget(),
            ["t:b", "w:b", "a:c", "t:c", "w:c", "name:c", "name:d"]
        );
    }

    #[test]
    fn away_and_names_read_back_from_their_fields_over_the_roster() {
        let mut roster = Roster::default();
        let seat = roster
            .join(
                JoinRequest {
                    conn: "c1".into(),
                    role: Role::Player,
                    key: None,
                    new_id: "m1".into(),
                    name: Some(PlayerName::parse("Ada").unwrap()),
                },
                &LIMITS,
            )
            .unwrap();
        assert_eq!(seat.member.name.as_ref().unwrap().as_str(), "Ada");
        let mut fields =
            HashMap::from([("roster".to_owned(), serde_json::to_string(&roster).unwrap())]);
        let read =
            |fields: &HashMap<String, String>| StoredRoom::from(fields).roster.snapshot(10_000);
        assert_eq!(read(&fields)[0].away_ms, None);
        let renamed = ClientEvent::Name(PlayerName::parse("Grace").unwrap());
        for event in [ClientEvent::Away(true), renamed] {
            let (field, value) = record_field("m1", &event, 4_000);
            fields.insert(field, value);
        }
        let member = &read(&fields)[0];
        assert_eq!(member.away_ms, Some(6_000));
        assert_eq!(member.name.as_ref().unwrap().as_str(), "Grace");
        let (field, value) = record_field("m1", &ClientEvent::Away(false), 9_000);
        fields.insert(field, value);
        assert_eq!(read(&fields)[0].away_ms, None);
    }
}
