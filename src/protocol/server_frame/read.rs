//! Reading a server frame in one pass: every field any frame type has, in
//! one flat struct, then the variant its `type` names. serde's internally
//! tagged enums buffer the whole frame into a tree first and read it a
//! second time, which costs the page a second reader of every frame type
//! (about 10 KB of its wasm); this needs none. A field name means the same
//! thing, with the same type, in every frame type that has it.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Number;

use super::{
    HistoryEntry, MemberRef, MemberState, Presence, PresenceEvent, ServerFrame, Snapshot, Stamped,
    Welcome,
};
use crate::protocol::{Action, PlayerName, Role, RoomName};

/// The fields of every server frame type, each optional: which are
/// required depends on `type`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Envelope {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) protocol: Option<u8>,
    pub(super) room: Option<RoomName>,
    pub(super) you: Option<String>,
    pub(super) role: Option<Role>,
    pub(super) resumed: Option<bool>,
    #[serde(default)]
    pub(super) name_locked: bool,
    pub(super) seq: Option<u64>,
    pub(super) heartbeat_ms: Option<u64>,
    pub(super) members: Option<Vec<MemberState>>,
    #[serde(default)]
    pub(super) history: Vec<HistoryEntry>,
    pub(super) recovered: Option<bool>,
    pub(super) client_id: Option<String>,
    pub(super) action: Option<Action>,
    pub(super) away: Option<bool>,
    pub(super) ts: Option<Number>,
    pub(super) from: Option<Arc<str>>,
    pub(super) name: Option<PlayerName>,
    #[serde(default)]
    pub(super) judge: bool,
    pub(super) event: Option<PresenceEvent>,
    pub(super) member: Option<MemberRef>,
    pub(super) code: Option<String>,
    pub(super) message: Option<String>,
}

/// The field a frame of its type must have and lacks.
type Missing = &'static str;

fn need<T>(field: Option<T>, name: Missing) -> Result<T, Missing> {
    field.ok_or(name)
}

impl Envelope {
    fn stamped(self) -> Result<Stamped, Missing> {
        Ok(Stamped {
            client_id: self.client_id,
            action: self.action,
            away: self.away,
            ts: self.ts,
            from: need(self.from, "missing field `from`")?,
            name: self.name,
            seq: need(self.seq, "missing field `seq`")?,
            judge: self.judge,
        })
    }
}

impl TryFrom<Envelope> for ServerFrame {
    type Error = Missing;

    fn try_from(frame: Envelope) -> Result<Self, Missing> {
        Ok(match frame.kind.as_str() {
            "welcome" => Self::Welcome(Welcome {
                protocol: need(frame.protocol, "missing field `protocol`")?,
                room: need(frame.room, "missing field `room`")?,
                you: need(frame.you, "missing field `you`")?,
                role: need(frame.role, "missing field `role`")?,
                resumed: need(frame.resumed, "missing field `resumed`")?,
                name_locked: frame.name_locked,
                seq: need(frame.seq, "missing field `seq`")?,
                heartbeat_ms: need(frame.heartbeat_ms, "missing field `heartbeatMs`")?,
                members: need(frame.members, "missing field `members`")?,
                history: frame.history,
                recovered: frame.recovered,
            }),
            "typing" => Self::Typing(frame.stamped()?),
            "action" => Self::Action(frame.stamped()?),
            "away" => Self::Away(frame.stamped()?),
            "name" => Self::Name(frame.stamped()?),
            "presence" => Self::Presence(Presence {
                event: need(frame.event, "missing field `event`")?,
                member: need(frame.member, "missing field `member`")?,
                seq: need(frame.seq, "missing field `seq`")?,
            }),
            "snapshot" => Self::Snapshot(Snapshot {
                seq: need(frame.seq, "missing field `seq`")?,
                members: need(frame.members, "missing field `members`")?,
            }),
            "heartbeat" => Self::Heartbeat,
            "error" => Self::Error {
                code: need(frame.code, "missing field `code`")?,
                message: need(frame.message, "missing field `message`")?,
            },
            _ => Self::Unknown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Connection;

    #[test]
    fn each_frame_type_needs_its_own_fields_and_ignores_the_others() {
        for (text, missing) in [
            (r#"{"type":"typing","from":"m-1"}"#, "seq"),
            (r#"{"type":"action","action":"AC","seq":2}"#, "from"),
            (r#"{"type":"presence","event":"join","seq":2}"#, "member"),
            (r#"{"type":"snapshot","seq":2}"#, "members"),
            (r#"{"type":"error","code":"invalid_json"}"#, "message"),
            (
                r#"{"type":"welcome","protocol":1,"room":"r","you":"a","role":"player","resumed":false,"seq":0,"members":[]}"#,
                "heartbeatMs",
            ),
        ] {
            assert_eq!(ServerFrame::parse(text), None, "without {missing}: {text}");
        }
        assert_eq!(
            ServerFrame::parse(r#"{"seq":4,"code":"x","type":"heartbeat","members":[]}"#),
            Some(ServerFrame::Heartbeat)
        );
        assert_eq!(
            ServerFrame::parse(
                r#"{"type":"snapshot","seq":4,"members":[],"from":"m-1","judge":true}"#
            ),
            Some(ServerFrame::Snapshot(Snapshot {
                seq: 4,
                members: vec![]
            }))
        );
        assert_eq!(ServerFrame::parse(r#"{"seq":4}"#), None, "no type");
        assert_eq!(
            ServerFrame::parse(r#"{"type":7}"#),
            None,
            "a type that is not a string"
        );
    }

    #[test]
    fn a_welcomes_history_holds_frames_read_the_same_way() {
        let text = r#"{"type":"welcome","protocol":1,"room":"r","you":"a","role":"spectator","resumed":true,"seq":5,"heartbeatMs":15000,
            "members":[{"id":"m-1","role":"player","state":"online","lastAction":"WA","typingMs":0,"name":"Ada"}],
            "history":[{"at":10,"frame":{"type":"action","action":"WA","from":"m-1","name":"Ada","seq":5,"judge":true}},
                       {"at":9,"frame":{"type":"confetti","colour":"red","seq":4}}],
            "recovered":false}"#;
        let Some(ServerFrame::Welcome(welcome)) = ServerFrame::parse(text) else {
            panic!("a welcome");
        };
        assert_eq!(welcome.members[0].state, Connection::Online);
        assert_eq!(welcome.members[0].last_action, Some(Action::WrongAnswer));
        assert_eq!(welcome.recovered, Some(false));
        assert_eq!(welcome.history.len(), 2);
        let ServerFrame::Action(verdict) = &welcome.history[0].frame else {
            panic!("an action");
        };
        assert!(verdict.judge);
        assert_eq!(verdict.name.as_ref().map(PlayerName::as_str), Some("Ada"));
        assert_eq!(welcome.history[1].frame, ServerFrame::Unknown);
    }
}
