//! The battle page's link to the relay: one WebSocket, the typing throttle,
//! the opponent's status and the one timer that refreshes it.
//!
//! The page calls the same API in both builds. Under `hydrate` it is real;
//! on the server it does nothing, since effects and event handlers only run
//! in the browser.

#[cfg(feature = "hydrate")]
mod browser;
#[cfg(not(feature = "hydrate"))]
mod inert;

#[cfg(feature = "hydrate")]
pub use browser::{copy_to_clipboard, BattleClient};
#[cfg(not(feature = "hydrate"))]
pub use inert::{copy_to_clipboard, BattleClient};

use leptos::prelude::RwSignal;

use crate::status::Status;

/// The player's own link to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening the socket.
    Connecting,
    /// The socket is open; frames flow.
    Live,
    /// The socket closed.
    Disconnected,
}

impl ConnectionState {
    /// What the page shows.
    pub fn label(self) -> &'static str {
        match self {
            Self::Connecting => "Connecting...",
            Self::Live => "Live",
            Self::Disconnected => "Disconnected",
        }
    }

    /// A stable name for styling and tests.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Disconnected => "disconnected",
        }
    }
}

/// The signals the client writes and the page shows.
#[derive(Debug, Clone, Copy)]
pub struct Views {
    /// The player's own connection.
    pub connection: RwSignal<ConnectionState>,
    /// The opponent's status.
    pub opponent: RwSignal<Status>,
}
