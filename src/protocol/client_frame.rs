//! What clients send: the original script's `typing` and `action` frames,
//! and this page's `away` and `name` frames, read and validated once,
//! keeping only the fields that are relayed.

use std::{borrow::Cow, fmt};

use serde::{
    de::{
        value::{MapAccessDeserializer, SeqAccessDeserializer},
        IgnoredAny, MapAccess, SeqAccess, Visitor,
    },
    Deserialize, Deserializer,
};
use serde_json::{Number, Value};
use thiserror::Error;

use super::{Action, PlayerName, PlayerNameError, MAX_CLIENT_ID_CHARS};

mod scan;
mod wire;

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

impl ClientEvent {
    /// The frame's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Typing => "typing",
            Self::Action(_) => "action",
            Self::Away(_) => "away",
            Self::Name(_) => "name",
        }
    }
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

/// Reads and validates one text frame from a client, in one pass over the
/// text: the known fields are read where they are (strings borrowed from
/// the text where they have no escapes), every other field is skipped
/// unread, and no map of the fields is built. The frames pages send are
/// read by a reader of their own shape ([`scan`]), the others by
/// serde_json.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    match scan::fields(text) {
        Some(fields) => fields.validate(),
        None => read_any(text),
    }
}

/// Reads any JSON text as a client frame.
fn read_any(text: &str) -> Result<ClientFrame, FrameError> {
    match serde_json::from_str::<Fields<'_>>(text) {
        Ok(fields) => fields.validate(),
        // Only a document that is not an object is a data error here (a
        // known field takes any value), seen as soon as it starts: whether
        // it is JSON at all takes reading it to the end.
        Err(error) if error.is_data() && serde_json::from_str::<IgnoredAny>(text).is_ok() => {
            Err(FrameError::NotAnObject)
        }
        Err(_) => Err(FrameError::InvalidJson),
    }
}

/// The value of a known field, as read.
#[derive(Debug, Clone, PartialEq)]
enum Field<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    /// An array or an object: never valid, kept to say what it was.
    Other(Value),
}

/// The fields of a client frame that mean something; the last of each
/// wins, as in a JSON object read whole.
#[derive(Debug, Default, PartialEq)]
struct Fields<'a> {
    kind: Option<Field<'a>>,
    action: Option<Field<'a>>,
    away: Option<Field<'a>>,
    name: Option<Field<'a>>,
    client_id: Option<Field<'a>>,
    ts: Option<Field<'a>>,
}

impl<'a> Fields<'a> {
    /// The slot of field `key`, if it is a known one.
    fn slot(&mut self, key: Key) -> Option<&mut Option<Field<'a>>> {
        Some(match key {
            Key::Kind => &mut self.kind,
            Key::Action => &mut self.action,
            Key::Away => &mut self.away,
            Key::Name => &mut self.name,
            Key::ClientId => &mut self.client_id,
            Key::Ts => &mut self.ts,
            Key::Other => return None,
        })
    }

    /// The frame these fields make, or why they make none.
    fn validate(self) -> Result<ClientFrame, FrameError> {
        let event = match &self.kind {
            Some(Field::Str(kind)) if kind == "typing" => ClientEvent::Typing,
            Some(Field::Str(kind)) if kind == "action" => match &self.action {
                Some(Field::Str(code)) => ClientEvent::Action(
                    Action::parse(code).map_err(|e| FrameError::UnknownAction(e.0))?,
                ),
                other => return Err(FrameError::UnknownAction(describe(other.as_ref()))),
            },
            Some(Field::Str(kind)) if kind == "away" => match &self.away {
                Some(Field::Bool(away)) => ClientEvent::Away(*away),
                _ => {
                    return Err(FrameError::InvalidField {
                        field: "away",
                        problem: "must be true or false",
                    })
                }
            },
            Some(Field::Str(kind)) if kind == "name" => match &self.name {
                Some(Field::Str(name)) => ClientEvent::Name(PlayerName::parse(name)?),
                _ => {
                    return Err(FrameError::InvalidField {
                        field: "name",
                        problem: "must be a string",
                    })
                }
            },
            other => return Err(FrameError::UnknownType(describe(other.as_ref()))),
        };
        let client_id = match self.client_id {
            None | Some(Field::Null) => None,
            Some(Field::Str(id)) if id.chars().count() <= MAX_CLIENT_ID_CHARS => {
                Some(id.into_owned())
            }
            Some(_) => {
                return Err(FrameError::InvalidField {
                    field: "clientId",
                    problem: "must be a string of at most 128 characters",
                })
            }
        };
        let ts = match self.ts {
            None | Some(Field::Null) => None,
            Some(Field::Number(ts)) => Some(ts),
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
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = Fields::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match fields.slot(key) {
                        Some(slot) => *slot = Some(map.next_value()?),
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(Object)
    }
}

/// A field's key, read as the known field it names: nothing is copied
/// (serde reads a `Cow<str>` key as an owned copy, one allocation a field).
enum Key {
    Kind,
    Action,
    Away,
    Name,
    ClientId,
    Ts,
    Other,
}

impl Key {
    fn of(key: &str) -> Self {
        match key {
            "type" => Self::Kind,
            "action" => Self::Action,
            "away" => Self::Away,
            "name" => Self::Name,
            "clientId" => Self::ClientId,
            "ts" => Self::Ts,
            _ => Self::Other,
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, key: &str) -> Result<Key, E> {
                Ok(Key::of(key))
            }
        }
        deserializer.deserialize_str(Name)
    }
}

impl<'de> Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Any;
        impl<'de> Visitor<'de> for Any {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Field<'de>, E> {
                Ok(Field::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Field<'de>, E> {
                Ok(Field::Bool(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Field<'de>, E> {
                Ok(Field::Number(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Field<'de>, E> {
                Ok(Field::Number(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Field<'de>, E> {
                Ok(Number::from_f64(v).map_or(Field::Null, Field::Number))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Field<'de>, A::Error> {
                Value::deserialize(SeqAccessDeserializer::new(seq)).map(Field::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field<'de>, A::Error> {
                Value::deserialize(MapAccessDeserializer::new(map)).map(Field::Other)
            }
        }
        deserializer.deserialize_any(Any)
    }
}

/// A field's value as an error message quotes it.
fn describe(value: Option<&Field<'_>>) -> String {
    let text = match value {
        None => return "(missing)".to_owned(),
        Some(Field::Str(s)) => s.to_string(),
        Some(Field::Null) => "null".to_owned(),
        Some(Field::Bool(b)) => b.to_string(),
        Some(Field::Number(n)) => n.to_string(),
        Some(Field::Other(value)) => value.to_string(),
    };
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::corpus;

    /// The reference the one-pass read must agree with: the whole document
    /// read into a `serde_json::Value` first, then its known fields.
    fn read_whole(text: &str) -> Result<ClientFrame, FrameError> {
        let value: Value = serde_json::from_str(text).map_err(|_| FrameError::InvalidJson)?;
        let Value::Object(map) = value else {
            return Err(FrameError::NotAnObject);
        };
        let mut fields = Fields::default();
        for (key, value) in map {
            if let Some(slot) = fields.slot(Key::of(&key)) {
                *slot = Some(match value {
                    Value::Null => Field::Null,
                    Value::Bool(b) => Field::Bool(b),
                    Value::Number(n) => Field::Number(n),
                    Value::String(s) => Field::Str(Cow::Owned(s)),
                    other => Field::Other(other),
                });
            }
        }
        fields.validate()
    }

    #[test]
    fn the_one_pass_read_agrees_with_reading_the_whole_document() {
        let mut texts = corpus();
        assert!(texts.len() >= 20, "the seeds are there: {}", texts.len());
        texts.extend(
            [
                r#"{"type":"typing","type":"action","action":"AC"}"#,
                r#"{"type":"action","action":"AC","action":"WA"}"#,
                r#"{"type":"typing","clientId":"caf\u00e9","ts":-0.0}"#,
                r#"{"type":["typing"]}"#,
                r#"{"type":"action","action":{"code":"AC"}}"#,
                r#"{"type":"typing","x":[1,{"y":null}],"ts":12345678901234567890}"#,
                r#"{"type":"typing"} x"#,
                r#"{"type":"typing","ts":1e400}"#,
                "[]",
                "\"typing\"",
                "",
            ]
            .map(str::to_owned),
        );
        for text in &texts {
            let whole = read_whole(text);
            // Skipping an unknown field does not read its numbers, so an
            // out-of-range number there is not refused: the only allowed
            // difference, and the field is dropped either way.
            let skipped_number = whole == Err(FrameError::InvalidJson)
                && serde_json::from_str::<IgnoredAny>(text).is_ok();
            for one_pass in [parse_client_frame(text), read_any(text)] {
                assert!(
                    one_pass == whole || skipped_number,
                    "{text:?}: {one_pass:?} vs {whole:?}"
                );
            }
        }
    }

    #[test]
    fn strings_without_escapes_are_borrowed_from_the_text() {
        let fields: Fields<'_> =
            serde_json::from_str(r#"{"type":"typing","clientId":"k3j9x","extra":{"a":[1]}}"#)
                .unwrap();
        assert!(matches!(
            fields.client_id,
            Some(Field::Str(Cow::Borrowed("k3j9x")))
        ));
        let escaped: Fields<'_> = serde_json::from_str(r#"{"clientId":"a\"b"}"#).unwrap();
        assert_eq!(
            escaped.client_id,
            Some(Field::Str(Cow::Owned("a\"b".into())))
        );
    }
}
