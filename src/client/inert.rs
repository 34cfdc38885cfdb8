//! The server build of the client API: nothing runs on the server.

use super::Views;
use crate::protocol::{Action, PlayerName, Role, RoomName};

/// Does nothing on the server.
#[derive(Debug, Clone)]
pub struct BattleClient;

impl BattleClient {
    /// Does nothing on the server.
    pub fn start(
        _room: RoomName,
        _role: Role,
        _token: Option<String>,
        _name: Option<PlayerName>,
        _views: Views,
    ) -> Option<Self> {
        None
    }

    /// Does nothing on the server.
    pub fn typed(&self) {}

    /// Does nothing on the server.
    pub fn act(&self, _action: Action) {}

    /// Does nothing on the server.
    pub fn rename(&self, _typed: &str) {}

    /// Does nothing on the server.
    pub fn enable_notifications(&self) {}

    /// Does nothing on the server.
    pub fn stop(&self) {}
}

/// Does nothing on the server.
pub fn remember_name(_name: &PlayerName) {}

/// Nothing is remembered on the server.
pub fn remembered_name() -> Option<PlayerName> {
    None
}

/// Does nothing on the server.
pub fn copy_to_clipboard(_text: String, _done: impl FnOnce(bool) + 'static) {}
