//! What clients send: the original script's `typing` and `action` frames,
//! and this page's `away` and `name` frames, read and validated once,
//! keeping only the fields that are relayed.

use serde::Serialize;
use serde_json::{Number, Value};
use thiserror::Error;

use super::{Action, PlayerName, PlayerNameError, MAX_CLIENT_ID_CHARS};

/// What a client frame says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// `{"type":"typing"}`: the player is typing.
    Typing,
    /// `{"type":"action","action":...}`: the player did something.
    Action(Action),
    /// `{"type":"away","away":true}`: the player's tab is hidden (or,
    /// with `false`, visible again).
    Away(bool),
    /// `{"type":"name","name":...}`: the player's display name is now this.
    Name(PlayerName),
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
        let mut wire = WireFrame {
            kind: "typing",
            client_id: self.client_id.as_deref(),
            action: None,
            away: None,
            name: None,
            ts: self.ts.as_ref(),
        };
        match &self.event {
            ClientEvent::Typing => {}
            ClientEvent::Action(action) => (wire.kind, wire.action) = ("action", Some(*action)),
            ClientEvent::Away(away) => (wire.kind, wire.away) = ("away", Some(*away)),
            ClientEvent::Name(name) => (wire.kind, wire.name) = ("name", Some(name.as_str())),
        }
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
    away: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
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
    #[error("unknown frame type {0:?}; expected \"typing\", \"action\", \"away\" or \"name\"")]
    UnknownType(String),
    /// The `action` field was missing, not a string, or not a known action.
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// The `name` of a `name` frame broke the name rules.
    #[error("name refused: {0}")]
    InvalidName(#[from] PlayerNameError),
    /// A `name` frame from a player whose join token names them.
    #[error("your name comes from your battle link and cannot be changed here")]
    NameLocked,
    /// A spectator sent typing, an action, away or a name.
    #[error("spectators cannot send typing, actions, away or names")]
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
            Self::InvalidName(_) => "invalid_name",
            Self::NameLocked => "name_locked",
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
        Some(Value::String(kind)) if kind == "away" => match fields.get("away") {
            Some(Value::Bool(away)) => ClientEvent::Away(*away),
            _ => {
                return Err(FrameError::InvalidField {
                    field: "away",
                    problem: "must be true or false",
                })
            }
        },
        Some(Value::String(kind)) if kind == "name" => match fields.get("name") {
            Some(Value::String(name)) => ClientEvent::Name(PlayerName::parse(name)?),
            _ => {
                return Err(FrameError::InvalidField {
                    field: "name",
                    problem: "must be a string",
                })
            }
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
