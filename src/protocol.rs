//! The wire format, version 1 (see `docs/protocol.md`): frame types, action
//! codes and labels, room names, limits and close codes.
//!
//! Pure: no I/O, no clock. Both the server (to validate what clients send and
//! to stamp what it relays) and the browser (to read what the server sends)
//! use these types.

use std::{borrow::Cow, fmt, str::FromStr};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Number, Value};
use thiserror::Error;

/// Version of the wire format announced in the welcome frame.
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest text frame a client may send, in bytes. Larger frames close the
/// connection with [`close::MESSAGE_TOO_BIG`] before any parsing.
pub const MAX_FRAME_BYTES: usize = 4096;
/// Longest `clientId` accepted, in characters.
pub const MAX_CLIENT_ID_CHARS: usize = 128;
/// Longest room name accepted, in characters.
pub const MAX_ROOM_CHARS: usize = 64;
/// Highest test number in a `FAILED_TC<n>` action.
pub const MAX_FAILED_TEST: u16 = 9999;

/// WebSocket close codes used by the server, by range: 1xxx are the standard
/// ones; 4000-4499 mean "reconnect when you like"; 4500-4999 mean "do not
/// reconnect, tell the user".
pub mod close {
    /// The client is leaving on purpose: its seat is freed at once.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down; reconnect.
    pub const GOING_AWAY: u16 = 1001;
    /// A text frame was not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A frame was larger than [`super::MAX_FRAME_BYTES`].
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The client read too slowly and its outgoing queue of actions filled
    /// up; reconnect (a fresh connection starts with an empty queue).
    pub const SLOW_CONSUMER: u16 = 4001;
    /// The client did not answer pings within the heartbeat timeout; the
    /// server counts it as dropped. Reconnect.
    pub const HEARTBEAT_TIMEOUT: u16 = 4002;
    /// The room already has two players; do not reconnect as a player
    /// (watching as a spectator is allowed).
    pub const ROOM_FULL: u16 = 4501;
    /// The room has as many spectators as it may; do not reconnect.
    pub const SPECTATORS_FULL: u16 = 4502;
    /// A newer connection presented the same player key and took the seat
    /// (the battle is open in another tab); do not reconnect.
    pub const REPLACED: u16 = 4503;
    /// The client kept sending invalid frames; do not reconnect.
    pub const TOO_MANY_INVALID: u16 = 4508;
    /// The client kept sending frames over its rate; do not reconnect.
    pub const RATE_LIMITED: u16 = 4509;
}

/// A validated room name: 1 to [`MAX_ROOM_CHARS`] characters of
/// `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RoomName(String);

/// Why a room name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoomNameError {
    /// The name is empty.
    #[error("a battle id cannot be empty")]
    Empty,
    /// The name is longer than [`MAX_ROOM_CHARS`].
    #[error("a battle id has at most {MAX_ROOM_CHARS} characters, this one has {0}")]
    TooLong(usize),
    /// The name holds a character outside `[A-Za-z0-9_-]`.
    #[error("a battle id holds only letters, digits, '-' and '_', not {0:?}")]
    InvalidChar(char),
}

impl RoomName {
    /// Checks `name` against the room name rules.
    pub fn parse(name: &str) -> Result<Self, RoomNameError> {
        if name.is_empty() {
            return Err(RoomNameError::Empty);
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(RoomNameError::InvalidChar(bad));
        }
        if name.len() > MAX_ROOM_CHARS {
            return Err(RoomNameError::TooLong(name.len()));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RoomName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

/// Reads what a player pasted into the lobby's join field: a battle id, or a
/// link to a battle page (`https://host/battle/<id>`, with or without a
/// trailing slash, query or fragment).
pub fn parse_battle_ref(input: &str) -> Result<RoomName, RoomNameError> {
    let input = input.trim();
    let id = match input.find("/battle/") {
        Some(at) => {
            let rest = &input[at + "/battle/".len()..];
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            &rest[..end]
        }
        None => input,
    };
    RoomName::parse(id)
}

/// What a player did, as sent in an `action` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `RUNNING`: the player ran their code.
    Running,
    /// `SUBMITTED`: the player submitted their code.
    Submitted,
    /// `RUN_COMPLETE`: a run finished.
    RunComplete,
    /// `AC`: the submission was accepted.
    Accepted,
    /// `WA`: wrong answer.
    WrongAnswer,
    /// `TLE`: time limit exceeded.
    TimeLimitExceeded,
    /// `MLE`: memory limit exceeded.
    MemoryLimitExceeded,
    /// `FAILED_TC<n>`: failed on test `n` (1 to [`MAX_FAILED_TEST`]).
    FailedTest(u16),
}

/// Why an action code was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown action {0:?}")]
pub struct UnknownAction(pub String);

impl Action {
    /// Reads an action code. `FAILED_TC<n>` takes `n` in 1..=9999 written
    /// without sign or leading zeros, so every accepted code is written back
    /// exactly as it was received.
    pub fn parse(code: &str) -> Result<Self, UnknownAction> {
        let action = match code {
            "RUNNING" => Self::Running,
            "SUBMITTED" => Self::Submitted,
            "RUN_COMPLETE" => Self::RunComplete,
            "AC" => Self::Accepted,
            "WA" => Self::WrongAnswer,
            "TLE" => Self::TimeLimitExceeded,
            "MLE" => Self::MemoryLimitExceeded,
            other => other
                .strip_prefix("FAILED_TC")
                .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u16>().ok())
                .filter(|n| (1..=MAX_FAILED_TEST).contains(n))
                .map(Self::FailedTest)
                .ok_or_else(|| UnknownAction(other.to_owned()))?,
        };
        Ok(action)
    }

    /// The code on the wire, e.g. `RUNNING` or `FAILED_TC3`.
    pub fn code(&self) -> Cow<'static, str> {
        match self {
            Self::Running => "RUNNING".into(),
            Self::Submitted => "SUBMITTED".into(),
            Self::RunComplete => "RUN_COMPLETE".into(),
            Self::Accepted => "AC".into(),
            Self::WrongAnswer => "WA".into(),
            Self::TimeLimitExceeded => "TLE".into(),
            Self::MemoryLimitExceeded => "MLE".into(),
            Self::FailedTest(n) => format!("FAILED_TC{n}").into(),
        }
    }

    /// What a player reads, e.g. "Running code" or "Failed on test 3".
    pub fn label(&self) -> Cow<'static, str> {
        match self {
            Self::Running => "Running code".into(),
            Self::Submitted => "Submitted code".into(),
            Self::RunComplete => "Finished run".into(),
            Self::Accepted => "Accepted".into(),
            Self::WrongAnswer => "Wrong answer".into(),
            Self::TimeLimitExceeded => "TLE".into(),
            Self::MemoryLimitExceeded => "MLE".into(),
            Self::FailedTest(n) => format!("Failed on test {n}").into(),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::parse(code)
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.code())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = Cow::<str>::deserialize(deserializer)?;
        Self::parse(&code).map_err(de::Error::custom)
    }
}

/// What a client frame says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent {
    /// `{"type":"typing"}`: the player is typing.
    Typing,
    /// `{"type":"action","action":...}`: the player did something.
    Action(Action),
}

/// A valid frame from a client, holding only the fields that are relayed.
/// Any other field the client sent is dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    /// What happened.
    pub event: ClientEvent,
    /// The client's own id for itself, relayed as sent (not trusted).
    pub client_id: Option<String>,
    /// The client's timestamp, relayed as sent.
    pub ts: Option<Number>,
}

impl ClientFrame {
    /// A frame with no `clientId` and no `ts`.
    pub fn new(event: ClientEvent) -> Self {
        Self {
            event,
            client_id: None,
            ts: None,
        }
    }

    /// Sets the `clientId`.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Sets the `ts`.
    pub fn with_ts(mut self, ts: impl Into<Number>) -> Self {
        self.ts = Some(ts.into());
        self
    }

    /// The frame as the client sends it.
    pub fn to_json(&self) -> String {
        let (kind, action) = match self.event {
            ClientEvent::Typing => ("typing", None),
            ClientEvent::Action(action) => ("action", Some(action)),
        };
        let wire = WireFrame {
            kind,
            client_id: self.client_id.as_deref(),
            action,
            ts: self.ts.as_ref(),
        };
        serde_json::to_string(&wire).expect("a frame of strings and numbers always serialises")
    }
}

/// A client frame as the original script writes it.
#[derive(Serialize)]
struct WireFrame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(rename = "clientId", skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<&'a Number>,
}

/// Why a client frame was refused. Each variant has a stable
/// [`code`](FrameError::code) sent back in the error frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The frame was binary; the protocol is text only.
    #[error("binary frames are not supported; send JSON text")]
    Binary,
    /// The frame was not JSON.
    #[error("the frame is not valid JSON")]
    InvalidJson,
    /// The frame was JSON but not an object.
    #[error("the frame must be a JSON object")]
    NotAnObject,
    /// The `type` field was missing, not a string, or not a known type.
    #[error("unknown frame type {0:?}; expected \"typing\" or \"action\"")]
    UnknownType(String),
    /// The `action` field was missing, not a string, or not a known action.
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// A spectator sent typing or an action.
    #[error("spectators cannot send typing or actions")]
    SpectatorCannotSend,
    /// An action came faster than the connection's action rate.
    #[error("too many actions; slow down")]
    RateLimited,
    /// A known field had the wrong shape.
    #[error("field {field:?} {problem}")]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// What was wrong with it.
        problem: &'static str,
    },
}

impl FrameError {
    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Binary => "binary_frame",
            Self::InvalidJson => "invalid_json",
            Self::NotAnObject => "not_an_object",
            Self::UnknownType(_) => "unknown_type",
            Self::UnknownAction(_) => "unknown_action",
            Self::InvalidField { .. } => "invalid_field",
            Self::SpectatorCannotSend => "spectator",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// Reads and validates one text frame from a client.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|_| FrameError::InvalidJson)?;
    let Value::Object(mut fields) = value else {
        return Err(FrameError::NotAnObject);
    };
    let event = match fields.get("type") {
        Some(Value::String(kind)) if kind == "typing" => ClientEvent::Typing,
        Some(Value::String(kind)) if kind == "action" => match fields.get("action") {
            Some(Value::String(code)) => ClientEvent::Action(
                Action::parse(code).map_err(|e| FrameError::UnknownAction(e.0))?,
            ),
            other => return Err(FrameError::UnknownAction(describe(other))),
        },
        other => return Err(FrameError::UnknownType(describe(other))),
    };
    let client_id = match fields.remove("clientId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if id.chars().count() <= MAX_CLIENT_ID_CHARS => Some(id),
        Some(_) => {
            return Err(FrameError::InvalidField {
                field: "clientId",
                problem: "must be a string of at most 128 characters",
            })
        }
    };
    let ts = match fields.remove("ts") {
        None | Some(Value::Null) => None,
        Some(Value::Number(ts)) => Some(ts),
        Some(_) => {
            return Err(FrameError::InvalidField {
                field: "ts",
                problem: "must be a number",
            })
        }
    };
    Ok(ClientFrame {
        event,
        client_id,
        ts,
    })
}

fn describe(value: Option<&Value>) -> String {
    match value {
        None => "(missing)".to_owned(),
        Some(Value::String(s)) => s.chars().take(40).collect(),
        Some(other) => other.to_string().chars().take(40).collect(),
    }
}

/// What a member is in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// One of the (at most two) players; the default.
    #[default]
    Player,
    /// Watches the players; cannot send typing or actions.
    Spectator,
}

impl Role {
    /// Reads the `role` query parameter.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "player" => Some(Self::Player),
            "spectator" => Some(Self::Spectator),
            _ => None,
        }
    }
}

/// Shortest accepted player key, in characters.
pub const MIN_PLAYER_KEY_CHARS: usize = 16;

/// The private key a tab presents (query parameter `player`) so that a
/// reconnection is the same member: 16 to 64 characters of
/// `[A-Za-z0-9_-]`. The server never sends it to anyone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlayerKey(String);

impl PlayerKey {
    /// Checks a presented key.
    pub fn parse(key: &str) -> Option<Self> {
        let room = RoomName::parse(key).ok()?;
        (room.0.len() >= MIN_PLAYER_KEY_CHARS).then_some(Self(room.0))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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
}

/// The first frame of every connection: who you are and the room right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The room's sequence number when the snapshot was taken: frames with
    /// this `seq` or lower are already in `members`.
    pub seq: u64,
    /// The server sends a `heartbeat` frame at least this often; a client
    /// that hears nothing for longer (plus some slack) should reconnect.
    pub heartbeat_ms: u64,
    /// Everyone in the room, this connection included.
    pub members: Vec<MemberState>,
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
    /// The member's public id.
    pub id: String,
    /// Player or spectator.
    pub role: Role,
}

/// A presence change, numbered in the room's sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// What happened.
    pub event: PresenceEvent,
    /// To whom.
    pub member: MemberRef,
    /// The room's sequence number.
    pub seq: u64,
}

/// The room as it is now, numbered in the room's sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The room's sequence number: later frames have higher ones.
    pub seq: u64,
    /// Everyone in the room.
    pub members: Vec<MemberState>,
}

/// The fields of a relayed `typing` or `action` frame: the client's fields
/// exactly as sent (in the original script's order), then the server's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// The client's own id for itself, as sent.
    #[serde(rename = "clientId", default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The action code, in `action` frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// The client's timestamp, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<Number>,
    /// The sender's member id, assigned by the server.
    pub from: String,
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
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerFrame {
    /// Sent once, first, on every connection.
    Welcome(Welcome),
    /// A relayed typing ping.
    Typing(Stamped),
    /// A relayed action.
    Action(Stamped),
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
    /// Stamps a client frame for relaying.
    pub fn relayed(frame: ClientFrame, from: String, seq: u64) -> Self {
        let (action, wrap): (_, fn(Stamped) -> Self) = match frame.event {
            ClientEvent::Typing => (None, Self::Typing),
            ClientEvent::Action(action) => (Some(action), Self::Action),
        };
        wrap(Stamped {
            client_id: frame.client_id,
            action,
            ts: frame.ts,
            from,
            seq,
            judge: false,
        })
    }

    /// A verdict of the judge about member `from`.
    pub fn verdict(action: Action, from: String, seq: u64) -> Self {
        Self::Action(Stamped {
            client_id: None,
            action: Some(action),
            ts: None,
            from,
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
            Self::Typing(stamped) | Self::Action(stamped) => stamped.seq = seq,
            Self::Presence(presence) => presence.seq = seq,
            Self::Snapshot(snapshot) => snapshot.seq = seq,
            Self::Welcome(_) | Self::Heartbeat | Self::Error { .. } | Self::Unknown => {}
        }
        self
    }

    /// The sender and event of a relayed frame, if this is one with a known
    /// action.
    pub fn as_relayed(&self) -> Option<(&Stamped, ClientEvent)> {
        match self {
            Self::Typing(stamped) => Some((stamped, ClientEvent::Typing)),
            Self::Action(stamped) => Some((stamped, ClientEvent::Action(stamped.action?))),
            _ => None,
        }
    }

    /// The frame as sent on the wire.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialise")
    }

    /// Reads a frame sent by the server; `None` if it is not a JSON object
    /// with a string `type`, or a known type lacks its fields.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_action_round_trips_and_has_its_label() {
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
            assert_eq!(action.label(), label);
        }
    }

    #[test]
    fn failed_test_numbers_outside_1_to_9999_or_not_canonical_are_refused() {
        for code in [
            "FAILED_TC",
            "FAILED_TC0",
            "FAILED_TC10000",
            "FAILED_TC01",
            "FAILED_TC+1",
            "FAILED_TC-1",
            "FAILED_TC1a",
            "FAILED_TC 1",
            "FAILED_TC99999999999",
        ] {
            assert_eq!(
                Action::parse(code),
                Err(UnknownAction(code.into())),
                "{code}"
            );
        }
    }

    #[test]
    fn action_codes_are_case_sensitive_and_any_other_string_is_refused() {
        for code in ["running", "Ac", "", "DROP TABLE", "ACCEPTED"] {
            assert!(Action::parse(code).is_err(), "{code}");
        }
    }

    #[test]
    fn room_names_of_1_to_64_safe_characters_are_accepted() {
        for name in ["a", "Room_1-x", "550e8400-e29b-41d4-a716-446655440000"] {
            assert_eq!(RoomName::parse(name).unwrap().as_str(), name);
        }
        assert!(RoomName::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn a_room_name_longer_than_64_chars_is_rejected() {
        assert_eq!(
            RoomName::parse(&"x".repeat(65)),
            Err(RoomNameError::TooLong(65))
        );
    }

    #[test]
    fn room_names_with_unsafe_characters_or_empty_are_rejected() {
        assert_eq!(RoomName::parse(""), Err(RoomNameError::Empty));
        for (name, bad) in [
            ("a b", ' '),
            ("a/b", '/'),
            ("a.b", '.'),
            ("é", 'é'),
            ("a%2F", '%'),
        ] {
            assert_eq!(RoomName::parse(name), Err(RoomNameError::InvalidChar(bad)));
        }
    }

    #[test]
    fn the_lobby_reads_a_bare_id_or_a_pasted_link() {
        for input in [
            "abc-123",
            "  abc-123 ",
            "http://127.0.0.1:3000/battle/abc-123",
            "https://battles.example/battle/abc-123/",
            "https://battles.example/battle/abc-123?role=spectator",
            "/battle/abc-123#top",
        ] {
            assert_eq!(
                parse_battle_ref(input).unwrap().as_str(),
                "abc-123",
                "{input}"
            );
        }
        assert_eq!(parse_battle_ref(""), Err(RoomNameError::Empty));
        assert_eq!(
            parse_battle_ref("https://battles.example/battle/"),
            Err(RoomNameError::Empty)
        );
        assert!(parse_battle_ref("https://battles.example/lobby").is_err());
    }

    #[test]
    fn the_original_scripts_frames_parse_with_their_fields() {
        let typing =
            parse_client_frame(r#"{"type":"typing","clientId":"c-1","ts":1700000000123}"#).unwrap();
        assert_eq!(typing.event, ClientEvent::Typing);
        assert_eq!(typing.client_id.as_deref(), Some("c-1"));
        assert_eq!(typing.ts, Some(Number::from(1_700_000_000_123_u64)));

        let action = parse_client_frame(
            r#"{"type":"action","clientId":"c-1","action":"FAILED_TC7","ts":5}"#,
        )
        .unwrap();
        assert_eq!(action.event, ClientEvent::Action(Action::FailedTest(7)));
    }

    #[test]
    fn a_timestamp_of_any_size_survives_the_relay_unchanged() {
        // Found by the fuzzer: a long mantissa with an exponent used to be
        // rounded differently on the way in and on the way back.
        for ts in [
            "170000000012300574e0123",
            "1.5",
            "-0.0",
            "1e308",
            "12345678901234567890",
        ] {
            let text = format!(r#"{{"type":"typing","ts":{ts}}}"#);
            let frame = parse_client_frame(&text).unwrap();
            assert_eq!(parse_client_frame(&frame.to_json()), Ok(frame), "{ts}");
        }
    }

    #[test]
    fn client_id_and_ts_are_optional() {
        let frame = parse_client_frame(r#"{"type":"action","action":"AC"}"#).unwrap();
        assert_eq!(
            frame,
            ClientFrame::new(ClientEvent::Action(Action::Accepted))
        );
    }

    #[test]
    fn each_kind_of_invalid_frame_gets_its_own_error() {
        let cases = [
            ("not json", "invalid_json"),
            ("", "invalid_json"),
            ("[1,2]", "not_an_object"),
            ("\"typing\"", "not_an_object"),
            ("{}", "unknown_type"),
            (r#"{"type":"chat"}"#, "unknown_type"),
            (r#"{"type":7}"#, "unknown_type"),
            (r#"{"type":"action"}"#, "unknown_action"),
            (r#"{"type":"action","action":"HACKED"}"#, "unknown_action"),
            (r#"{"type":"action","action":1}"#, "unknown_action"),
            (r#"{"type":"typing","clientId":5}"#, "invalid_field"),
            (r#"{"type":"typing","ts":"now"}"#, "invalid_field"),
        ];
        for (text, code) in cases {
            assert_eq!(parse_client_frame(text).unwrap_err().code(), code, "{text}");
        }
        let long_id = format!(r#"{{"type":"typing","clientId":"{}"}}"#, "x".repeat(129));
        assert_eq!(
            parse_client_frame(&long_id).unwrap_err().code(),
            "invalid_field"
        );
    }

    #[test]
    fn a_relayed_frame_keeps_the_clients_fields_and_drops_unknown_ones() {
        let frame = parse_client_frame(
            r#"{"ts":1.5,"action":"RUNNING","type":"action","clientId":"me","from":"forged","seq":99,"extra":{"a":1}}"#,
        )
        .unwrap();
        let relayed = ServerFrame::relayed(frame, "m-1".into(), 3);
        assert_eq!(
            relayed.to_json(),
            r#"{"type":"action","clientId":"me","action":"RUNNING","ts":1.5,"from":"m-1","seq":3}"#
        );
    }

    #[test]
    fn server_frames_round_trip_and_unknown_types_are_tolerated() {
        let frames = [
            ServerFrame::Welcome(Welcome {
                protocol: PROTOCOL_VERSION,
                room: RoomName::parse("r1").unwrap(),
                you: "m-1".into(),
                role: Role::Spectator,
                resumed: true,
                seq: 7,
                heartbeat_ms: 15_000,
                members: vec![MemberState {
                    id: "m-2".into(),
                    role: Role::Player,
                    state: Connection::Reconnecting,
                    last_action: Some(Action::FailedTest(3)),
                    typing_ms: 1_200,
                }],
            }),
            ServerFrame::relayed(
                ClientFrame::new(ClientEvent::Typing)
                    .with_client_id("c")
                    .with_ts(12),
                "m-2".into(),
                1,
            ),
            ServerFrame::Presence(Presence {
                event: PresenceEvent::Reconnecting,
                member: MemberRef {
                    id: "m-2".into(),
                    role: Role::Player,
                },
                seq: 8,
            }),
            ServerFrame::Heartbeat,
            ServerFrame::error(&FrameError::InvalidJson),
        ];
        for frame in frames {
            assert_eq!(ServerFrame::parse(&frame.to_json()), Some(frame));
        }
        assert_eq!(
            ServerFrame::parse(r#"{"type":"confetti","colour":"red"}"#),
            Some(ServerFrame::Unknown)
        );
        assert_eq!(ServerFrame::parse("[]"), None);
        assert_eq!(
            ServerFrame::parse(r#"{"type":"action","action":"NOPE","from":"x","seq":1}"#),
            None
        );
    }

    #[test]
    fn the_welcome_and_presence_frames_have_the_documented_shape() {
        let welcome = ServerFrame::Welcome(Welcome {
            protocol: 1,
            room: RoomName::parse("duel").unwrap(),
            you: "a".into(),
            role: Role::Player,
            resumed: false,
            seq: 0,
            heartbeat_ms: 15_000,
            members: vec![MemberState {
                id: "a".into(),
                role: Role::Player,
                state: Connection::Online,
                last_action: None,
                typing_ms: 0,
            }],
        });
        assert_eq!(
            welcome.to_json(),
            r#"{"type":"welcome","protocol":1,"room":"duel","you":"a","role":"player","resumed":false,"seq":0,"heartbeatMs":15000,"members":[{"id":"a","role":"player","state":"online","lastAction":null,"typingMs":0}]}"#
        );
        let presence = ServerFrame::Presence(Presence {
            event: PresenceEvent::Join,
            member: MemberRef {
                id: "b".into(),
                role: Role::Spectator,
            },
            seq: 4,
        });
        assert_eq!(
            presence.to_json(),
            r#"{"type":"presence","event":"join","member":{"id":"b","role":"spectator"},"seq":4}"#
        );
        assert_eq!(ServerFrame::Heartbeat.to_json(), r#"{"type":"heartbeat"}"#);
    }

    #[test]
    fn a_judges_verdict_is_marked_and_clients_cannot_mark_their_own() {
        let verdict = ServerFrame::verdict(Action::Accepted, "m-1".into(), 9);
        assert_eq!(
            verdict.to_json(),
            r#"{"type":"action","action":"AC","from":"m-1","seq":9,"judge":true}"#
        );
        assert_eq!(ServerFrame::parse(&verdict.to_json()), Some(verdict));
        let forged = parse_client_frame(r#"{"type":"action","action":"AC","judge":true}"#).unwrap();
        let relayed = ServerFrame::relayed(forged, "m-2".into(), 10).to_json();
        assert!(!relayed.contains("judge"), "{relayed}");
    }

    #[test]
    fn roles_and_player_keys_are_validated() {
        assert_eq!(Role::parse("player"), Some(Role::Player));
        assert_eq!(Role::parse("spectator"), Some(Role::Spectator));
        assert_eq!(Role::parse("admin"), None);
        assert!(PlayerKey::parse("0123456789abcdef").is_some());
        assert!(PlayerKey::parse("short").is_none());
        assert!(PlayerKey::parse(&"k".repeat(65)).is_none());
        assert!(PlayerKey::parse("0123456789abcdef!").is_none());
    }

    #[test]
    fn a_client_frame_serialises_in_the_original_scripts_shape() {
        let frame = ClientFrame::new(ClientEvent::Action(Action::Submitted))
            .with_client_id("abc")
            .with_ts(10);
        assert_eq!(
            frame.to_json(),
            r#"{"type":"action","clientId":"abc","action":"SUBMITTED","ts":10}"#
        );
        assert_eq!(parse_client_frame(&frame.to_json()), Ok(frame));
    }
}
