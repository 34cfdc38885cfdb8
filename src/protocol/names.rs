//! Names that come from clients, checked once: room names, roles, the
//! tabs' private player keys and players' display names.

use std::{
    borrow::{Borrow, Cow},
    fmt,
    sync::Arc,
};

use serde::{de, Deserialize, Deserializer, Serialize};
use thiserror::Error;

use super::{MAX_NAME_CHARS, MAX_ROOM_CHARS};

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
        Ok(Self(name.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Looked up by its text: a room's channel names it (a name that is not
/// valid is no key).
impl Borrow<str> for RoomName {
    fn borrow(&self) -> &str {
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

/// What a connection presented as the last `seq` it saw (`?since=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// Nothing: a first visit.
    Nothing,
    /// A sequence number.
    Seq(u64),
    /// Something that is not a sequence number, as presented.
    Invalid(String),
}

impl Since {
    /// Reads the `since` query parameter.
    pub fn parse(presented: Option<&str>) -> Self {
        match presented {
            None => Self::Nothing,
            Some(text) => text.parse().map_or_else(
                |_| Self::Invalid(text.chars().take(40).collect()),
                Self::Seq,
            ),
        }
    }
}

/// A player's display name: 1 to [`MAX_NAME_CHARS`] characters once
/// trimmed, with no control characters and no bidirectional formatting
/// characters (which could make a name read as something else). Text,
/// never markup: pages show it as text. Shared: each frame a named member
/// sends carries it, and copying it is a reference count, not an
/// allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PlayerName(Arc<str>);

/// Why a display name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlayerNameError {
    /// Nothing but spaces.
    #[error("a name cannot be empty")]
    Empty,
    /// Longer than [`MAX_NAME_CHARS`] once trimmed.
    #[error("a name has at most {MAX_NAME_CHARS} characters, this one has {0}")]
    TooLong(usize),
    /// A control or bidirectional formatting character.
    #[error("a name cannot hold control characters")]
    ControlChar,
}

impl PlayerName {
    /// Checks `name` against the name rules, trimmed of surrounding spaces.
    pub fn parse(name: &str) -> Result<Self, PlayerNameError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(PlayerNameError::Empty);
        }
        if name.chars().any(is_control) {
            return Err(PlayerNameError::ControlChar);
        }
        let chars = name.chars().count();
        if chars > MAX_NAME_CHARS {
            return Err(PlayerNameError::TooLong(chars));
        }
        Ok(Self(name.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Control characters, and the bidirectional marks, embeddings, overrides
/// and isolates.
fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl fmt::Display for PlayerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PlayerName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}
