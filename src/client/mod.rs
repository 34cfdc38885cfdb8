//! The battle page's link to the relay: one WebSocket that reconnects by
//! itself, the typing throttle, the room as the page sees it, and the one
//! timer that refreshes the statuses.
//!
//! The page calls the same API in both builds. Under `hydrate` it is real;
//! on the server it does nothing, since effects and event handlers only run
//! in the browser.

#[cfg(feature = "hydrate")]
mod browser;
#[cfg(not(feature = "hydrate"))]
mod inert;
mod rules;

#[cfg(feature = "hydrate")]
pub use browser::{copy_to_clipboard, location, remember_name, remembered_name, BattleClient};
#[cfg(not(feature = "hydrate"))]
pub use inert::{copy_to_clipboard, remember_name, remembered_name, BattleClient};
pub use rules::{after_admission_check, after_close, AfterCheck, AfterClose};

use leptos::prelude::RwSignal;

use crate::{
    protocol::{Action, Close, PlayerName, PlayerNameError},
    status::{Badge, Status},
};

/// What the player typed as their name, taken and remembered for the next
/// battles if it follows the rules.
pub fn take_name(typed: &str) -> Result<PlayerName, PlayerNameError> {
    let name = PlayerName::parse(typed)?;
    remember_name(&name);
    Ok(name)
}

/// The player's own link to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening the socket for the first time.
    Connecting,
    /// Connected and welcomed; frames flow.
    Live,
    /// The socket dropped; trying again after a short wait.
    Reconnecting,
    /// The server is busy for this page (many players arriving at once):
    /// it comes back by itself when the server says.
    Busy,
    /// Turned away: the battle already has two players.
    RoomFull,
    /// Turned away: the battle has as many spectators as it can take.
    SpectatorsFull,
    /// This seat was taken by the same player in another tab.
    Replaced,
    /// The join token in the page's link was refused (expired, forged, or
    /// for another battle or role).
    TokenRefused,
}

impl ConnectionState {
    /// The state after the server closed the socket with `code`, if the
    /// page must not reconnect.
    pub fn terminal(code: u16) -> Option<Self> {
        match Close::from_code(code)? {
            Close::RoomFull => Some(Self::RoomFull),
            Close::SpectatorsFull => Some(Self::SpectatorsFull),
            Close::Replaced => Some(Self::Replaced),
            _ => None,
        }
    }

    /// What the connection pill shows.
    pub fn label(self) -> &'static str {
        match self {
            Self::Connecting => "Connecting...",
            Self::Live => "Live",
            Self::Reconnecting => "Reconnecting...",
            Self::Busy => "Busy, joining in a few seconds...",
            Self::RoomFull => "Battle full",
            Self::SpectatorsFull => "Watching full",
            Self::Replaced => "Open in another tab",
            Self::TokenRefused => "Link not valid",
        }
    }

    /// A stable name for styling and tests.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Reconnecting => "reconnecting",
            Self::Busy => "busy",
            Self::RoomFull => "room-full",
            Self::SpectatorsFull => "spectators-full",
            Self::Replaced => "replaced",
            Self::TokenRefused => "token-refused",
        }
    }

    /// Why the page stopped, in plain words, when it did.
    pub fn explanation(self) -> Option<&'static str> {
        match self {
            Self::RoomFull => Some("This battle already has two players."),
            Self::SpectatorsFull => {
                Some("This battle has as many spectators as it can take. Try again later.")
            }
            Self::Replaced => Some(
                "You opened this battle in another tab, which took over. Reload here to take it back.",
            ),
            Self::TokenRefused => Some(
                "This battle link has expired or is not valid for this battle. Ask for a new one.",
            ),
            _ => None,
        }
    }
}

/// The signals the client writes and the page shows.
#[derive(Debug, Clone, Copy)]
pub struct Views {
    /// The player's own connection.
    pub connection: RwSignal<ConnectionState>,
    /// What a player sees of their opponent.
    pub opponent: RwSignal<Status>,
    /// What a spectator sees of the two players.
    pub players: RwSignal<[Status; 2]>,
    /// The player's own last action, once the room has it.
    pub own_action: RwSignal<Option<Action>>,
    /// The battle so far, oldest first ("Player 1 · Submitted code · 0:42").
    pub timeline: RwSignal<Vec<String>>,
    /// The opponent's last moves, newest first ("Submitted code · 0:42").
    pub opponent_moves: RwSignal<Vec<String>>,
    /// Some earlier moves could not be recovered after a reconnection.
    pub history_gap: RwSignal<bool>,
    /// The opponent's name and away state, beside their status.
    pub opponent_badge: RwSignal<Badge>,
    /// The two players' names and away states, for a spectator.
    pub player_badges: RwSignal<[Badge; 2]>,
    /// The last change worth announcing to a screen reader.
    pub announcement: RwSignal<String>,
    /// The player's own name, as the room has it (or as asked for).
    pub name: RwSignal<String>,
    /// Why the name typed was not taken, if it was not.
    pub name_error: RwSignal<Option<String>>,
    /// The name comes from the battle link's token and cannot be changed.
    pub name_locked: RwSignal<bool>,
    /// Whether verdicts raise a browser notification while the tab is hidden.
    pub notifications: RwSignal<Notifications>,
}

impl Views {
    /// Fresh views, before the socket opens.
    pub fn new() -> Self {
        Self {
            connection: RwSignal::new(ConnectionState::Connecting),
            opponent: RwSignal::new(Status::Waiting),
            players: RwSignal::new([Status::Waiting; 2]),
            own_action: RwSignal::new(None),
            timeline: RwSignal::new(Vec::new()),
            opponent_moves: RwSignal::new(Vec::new()),
            history_gap: RwSignal::new(false),
            opponent_badge: RwSignal::new(Badge::default()),
            player_badges: RwSignal::new(Default::default()),
            announcement: RwSignal::new(String::new()),
            name: RwSignal::new(String::new()),
            name_error: RwSignal::new(None),
            name_locked: RwSignal::new(false),
            notifications: RwSignal::new(Notifications::Unavailable),
        }
    }
}

impl Default for Views {
    fn default() -> Self {
        Self::new()
    }
}

/// Browser notifications of verdicts, as the player chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notifications {
    /// The browser has none (or the page is not hydrated yet).
    Unavailable,
    /// Not asked for yet: the page offers them.
    Off,
    /// The player allowed them.
    On,
    /// The player (or the browser) refused them.
    Blocked,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_terminal_close_codes_stop_reconnection() {
        assert_eq!(
            ConnectionState::terminal(4501),
            Some(ConnectionState::RoomFull)
        );
        assert_eq!(
            ConnectionState::terminal(4502),
            Some(ConnectionState::SpectatorsFull)
        );
        assert_eq!(
            ConnectionState::terminal(4503),
            Some(ConnectionState::Replaced)
        );
        for code in [1000, 1001, 1006, 1009, 4001, 4002] {
            assert_eq!(ConnectionState::terminal(code), None, "{code}");
        }
    }
}
