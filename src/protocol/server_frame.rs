//! What the server sends: the welcome, relayed frames stamped with their
//! sender and sequence number, presence, snapshots, heartbeats and errors.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Number;

use super::{Action, ClientEvent, ClientFrame, FrameError, PlayerName, Role, RoomName};

mod read;
mod tree;
mod wire;

pub use self::{
    tree::JsonTree,
    wire::{restamp, typing_sender},
};

/// Whether a member's connection is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Connection {
    /// Connected.
    Online,
    /// Dropped without leaving; the seat is kept for the grace period.
    Reconnecting,
}

/// One member in a room snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberState {
    /// The member's public id, as in `from`.
    pub id: String,
    /// Player or spectator.
    pub role: Role,
    /// Online or reconnecting.
    pub state: Connection,
    /// The member's last action, if any.
    pub last_action: Option<Action>,
    /// How many more milliseconds the member shows as typing (0: not typing).
    pub typing_ms: u64,
    /// The member's display name, if they gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<PlayerName>,
    /// How long the member's tab has been hidden, in ms, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away_ms: Option<u64>,
}

/// The first frame of every connection: who you are and the room right now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    /// The protocol version, [`PROTOCOL_VERSION`].
    pub protocol: u8,
    /// The room joined.
    pub room: RoomName,
    /// The member id of this connection; relayed frames carry it in `from`.
    pub you: String,
    /// This connection's role.
    pub role: Role,
    /// True if this connection took over a seat it held before (same key).
    pub resumed: bool,
    /// True if this connection's name comes from its join token: `name`
    /// frames are refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub name_locked: bool,
    /// The room's sequence number when the snapshot was taken: frames with
    /// this `seq` or lower are already in `members`.
    pub seq: u64,
    /// The server sends a `heartbeat` frame at least this often; a client
    /// that hears nothing for longer (plus some slack) should reconnect.
    pub heartbeat_ms: u64,
    /// Everyone in the room, this connection included.
    pub members: Vec<MemberState>,
    /// The room's recent events (actions, verdicts, presence; not typing),
    /// oldest first, all numbered up to `seq`: on a plain join, the battle
    /// so far (as far as the room keeps it); with `since`, exactly those
    /// numbered after it when `recovered` is true.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// Only when the connection asked for `since`: true if `history` holds
    /// every event after it; false if the room no longer reaches back that
    /// far (then `history` is what it keeps, and `members` is the truth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
}

/// One event of a room's history: a numbered frame as it was sent, and
/// when the server numbered it (ms since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When the server numbered it.
    pub at: u64,
    /// The frame (an `action` or `presence` frame), with its `seq`.
    pub frame: ServerFrame,
}

impl HistoryEntry {
    /// The entry's number in the room's sequence.
    pub fn seq(&self) -> u64 {
        self.frame.seq().unwrap_or(0)
    }
}

/// A change in who is in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceEvent {
    /// A new member joined.
    Join,
    /// A member's connection dropped; their seat is kept for the grace period.
    Reconnecting,
    /// A reconnecting member is back, as the same member.
    Resume,
    /// A member left, or did not come back in time.
    Leave,
}

/// A member named in a presence frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRef {
    /// The member's public id (shared: every frame of the member carries it).
    pub id: Arc<str>,
    /// Player or spectator.
    pub role: Role,
    /// The member's display name, if they gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<PlayerName>,
}

impl MemberRef {
    /// A member with no name.
    pub fn new(id: impl Into<Arc<str>>, role: Role) -> Self {
        Self {
            id: id.into(),
            role,
            name: None,
        }
    }
}

/// A presence change, numbered in the room's sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Presence {
    /// What happened.
    pub event: PresenceEvent,
    /// To whom.
    pub member: MemberRef,
    /// The room's sequence number.
    pub seq: u64,
}

/// The room as it is now, numbered in the room's sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// The room's sequence number: later frames have higher ones.
    pub seq: u64,
    /// Everyone in the room.
    pub members: Vec<MemberState>,
}

/// The fields of a relayed `typing`, `action`, `away` or `name` frame: the
/// client's fields exactly as sent (in the original script's order), then
/// the server's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stamped {
    /// The client's own id for itself, as sent.
    #[serde(rename = "clientId", default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The action code, in `action` frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// In `away` frames: whether the sender's tab is hidden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<bool>,
    /// The client's timestamp, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<Number>,
    /// The sender's member id, assigned by the server.
    pub from: Arc<str>,
    /// The sender's display name as the server knows it (in `name` frames,
    /// the new one), if they gave one; never what the frame said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<PlayerName>,
    /// The room's sequence number: one more for each frame in the room.
    pub seq: u64,
    /// `true` on a verdict published by the judge through the server (never
    /// on a client's frame): pages can trust it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub judge: bool,
}

/// A frame the server sends. Frame types this build does not know are read
/// as [`ServerFrame::Unknown`] and ignored, so newer servers can add types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", try_from = "read::Envelope")]
pub enum ServerFrame {
    /// Sent once, first, on every connection.
    Welcome(Welcome),
    /// A relayed typing ping.
    Typing(Stamped),
    /// A relayed action.
    Action(Stamped),
    /// A player's tab was hidden, or is visible again.
    Away(Stamped),
    /// A player changed their display name.
    Name(Stamped),
    /// Someone joined, dropped, came back or left.
    Presence(Presence),
    /// The room as it is now, replacing what the client knew: sent after
    /// the server lost and regained its link to other instances.
    Snapshot(Snapshot),
    /// Sent every heartbeat interval so that clients can tell a dead socket.
    Heartbeat,
    /// The server refused something this connection sent.
    Error {
        /// Stable machine-readable code, e.g. `invalid_json`.
        code: String,
        /// What went wrong, in plain words.
        message: String,
    },
    /// A frame type this build does not know.
    #[serde(other)]
    Unknown,
}

impl ServerFrame {
    /// Stamps a client frame of member `from` for relaying: the sender's
    /// id and name are the server's.
    pub fn relayed(frame: ClientFrame, from: &MemberRef, seq: u64) -> Self {
        let mut stamped = Stamped {
            client_id: frame.client_id,
            action: None,
            away: None,
            ts: frame.ts,
            from: from.id.clone(),
            name: from.name.clone(),
            seq,
            judge: false,
        };
        match frame.event {
            ClientEvent::Typing => Self::Typing(stamped),
            ClientEvent::Action(action) => {
                stamped.action = Some(action);
                Self::Action(stamped)
            }
            ClientEvent::Away(away) => {
                stamped.away = Some(away);
                Self::Away(stamped)
            }
            ClientEvent::Name(name) => {
                stamped.name = Some(name);
                Self::Name(stamped)
            }
        }
    }

    /// A verdict of the judge about member `from`.
    pub fn verdict(action: Action, from: &MemberRef, seq: u64) -> Self {
        Self::Action(Stamped {
            client_id: None,
            action: Some(action),
            away: None,
            ts: None,
            from: from.id.clone(),
            name: from.name.clone(),
            seq,
            judge: true,
        })
    }

    /// An error frame answering a refused client frame.
    pub fn error(error: &FrameError) -> Self {
        Self::Error {
            code: error.code().to_owned(),
            message: error.to_string(),
        }
    }

    /// Sets the room sequence number of a numbered frame (typing, action,
    /// presence, snapshot); other frames carry none.
    pub fn with_seq(mut self, seq: u64) -> Self {
        match &mut self {
            Self::Typing(stamped)
            | Self::Action(stamped)
            | Self::Away(stamped)
            | Self::Name(stamped) => stamped.seq = seq,
            Self::Presence(presence) => presence.seq = seq,
            Self::Snapshot(snapshot) => snapshot.seq = seq,
            Self::Welcome(_) | Self::Heartbeat | Self::Error { .. } | Self::Unknown => {}
        }
        self
    }

    /// The room sequence number of a numbered frame.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Typing(stamped)
            | Self::Action(stamped)
            | Self::Away(stamped)
            | Self::Name(stamped) => Some(stamped.seq),
            Self::Presence(presence) => Some(presence.seq),
            Self::Snapshot(snapshot) => Some(snapshot.seq),
            Self::Welcome(_) | Self::Heartbeat | Self::Error { .. } | Self::Unknown => None,
        }
    }

    /// True for the frames a room keeps in its history: actions (verdicts
    /// included) and the players' presence changes; not typing pings,
    /// snapshots, or spectators coming and going, which would push the
    /// battle's moves out of a bounded history.
    pub fn is_event(&self) -> bool {
        matches!(self, Self::Action(_) | Self::Presence(_)) && !self.is_audience()
    }

    /// True for a spectator's presence: news of the audience, which no page
    /// shows, not of the battle.
    pub fn is_audience(&self) -> bool {
        matches!(self, Self::Presence(presence) if presence.member.role == Role::Spectator)
    }

    /// The sender and event of a relayed frame, if this is one with its
    /// fields.
    pub fn as_relayed(&self) -> Option<(&Stamped, ClientEvent)> {
        match self {
            Self::Typing(stamped) => Some((stamped, ClientEvent::Typing)),
            Self::Action(stamped) => Some((stamped, ClientEvent::Action(stamped.action?))),
            Self::Away(stamped) => Some((stamped, ClientEvent::Away(stamped.away?))),
            Self::Name(stamped) => Some((stamped, ClientEvent::Name(stamped.name.clone()?))),
            _ => None,
        }
    }

    /// The frame as sent on the wire. The relayed frames, written for every
    /// ping, take a writer of their own (same bytes).
    pub fn to_json(&self) -> String {
        match self {
            Self::Typing(stamped) => wire::stamped_json("typing", stamped),
            Self::Action(stamped) => wire::stamped_json("action", stamped),
            Self::Away(stamped) => wire::stamped_json("away", stamped),
            Self::Name(stamped) => wire::stamped_json("name", stamped),
            _ => serde_json::to_string(self).expect("server frames always serialise"),
        }
    }

    /// Reads a frame sent by the server; `None` if it is not a JSON object
    /// with a string `type`, or a known type lacks its fields.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}
