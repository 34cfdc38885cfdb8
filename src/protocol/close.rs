//! WebSocket close codes: one table of every code the server sends, with
//! its reason text, whether the page should reconnect, and the label it is
//! counted under in the metrics.
//!
//! Ranges: 1xxx are the standard codes; 4000-4499 mean "reconnect when you
//! like"; 4500-4999 mean "do not reconnect, tell the user".

/// Why a connection was closed (or not let in), as the server says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Close {
    /// 1000: the client is leaving on purpose: its seat is freed at once.
    Normal,
    /// 1001: the server is shutting down; reconnect.
    Shutdown,
    /// 1001: the room could not be reached (the backplane is down);
    /// reconnect.
    RoomUnavailable,
    /// 1007: a text frame was not valid UTF-8.
    InvalidUtf8,
    /// 1009: a frame was larger than [`super::MAX_FRAME_BYTES`].
    Oversized,
    /// 4001: the client read too slowly and its outgoing queue of actions
    /// filled up; reconnect (a fresh connection starts with an empty queue).
    SlowConsumer,
    /// 4002: the client did not answer pings within the heartbeat timeout;
    /// the server counts it as dropped. Reconnect.
    Heartbeat,
    /// 4501: the room already has two players; do not reconnect as a
    /// player (watching as a spectator is allowed).
    RoomFull,
    /// 4502: the room has as many spectators as it may; do not reconnect.
    SpectatorsFull,
    /// 4503: a newer connection presented the same player key and took the
    /// seat (the battle is open in another tab); do not reconnect.
    Replaced,
    /// 4508: the client kept sending invalid frames; do not reconnect.
    TooManyInvalid,
    /// 4509: the client kept sending frames over its rate; do not reconnect.
    RateLimited,
}

impl Close {
    /// Every close the server sends, in code order.
    pub const ALL: [Self; 12] = [
        Self::Normal,
        Self::Shutdown,
        Self::RoomUnavailable,
        Self::InvalidUtf8,
        Self::Oversized,
        Self::SlowConsumer,
        Self::Heartbeat,
        Self::RoomFull,
        Self::SpectatorsFull,
        Self::Replaced,
        Self::TooManyInvalid,
        Self::RateLimited,
    ];

    /// The code on the wire.
    pub const fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::Shutdown | Self::RoomUnavailable => 1001,
            Self::InvalidUtf8 => 1007,
            Self::Oversized => 1009,
            Self::SlowConsumer => 4001,
            Self::Heartbeat => 4002,
            Self::RoomFull => 4501,
            Self::SpectatorsFull => 4502,
            Self::Replaced => 4503,
            Self::TooManyInvalid => 4508,
            Self::RateLimited => 4509,
        }
    }

    /// The reason text sent with the code.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Normal => "left the battle",
            Self::Shutdown => "server shutting down",
            Self::RoomUnavailable => "room unavailable",
            Self::InvalidUtf8 => "text is not UTF-8",
            Self::Oversized => "frame too large",
            Self::SlowConsumer => "too slow to read",
            Self::Heartbeat => "no heartbeat",
            Self::RoomFull => "room full",
            Self::SpectatorsFull => "spectators full",
            Self::Replaced => "opened in another tab",
            Self::TooManyInvalid => "too many invalid frames",
            Self::RateLimited => "too many frames",
        }
    }

    /// Whether a client should open a new socket after this close.
    pub const fn reconnect(self) -> bool {
        self.code() < 4500
    }

    /// The label the close is counted under in `/metrics`.
    pub const fn metric(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Shutdown => "shutdown",
            Self::RoomUnavailable => "room_unavailable",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::Oversized => "oversized",
            Self::SlowConsumer => "slow_consumer",
            Self::Heartbeat => "heartbeat",
            Self::RoomFull => "room_full",
            Self::SpectatorsFull => "spectators_full",
            Self::Replaced => "replaced",
            Self::TooManyInvalid => "too_many_invalid",
            Self::RateLimited => "rate_limited",
        }
    }

    /// The close a received code stands for (the first of the table, for a
    /// code shared by several); `None` for codes the server never sends.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|close| close.code() == code)
    }
}

/// The reason of a close that tells the client when to come back: the
/// table's reason, then `; retry in <ms> ms`. A shutting-down server sends
/// each socket its own random delay within a window, so that its players
/// do not all come back at the same moment.
pub fn with_retry_hint(close: Close, ms: u64) -> String {
    format!("{}; retry in {ms} ms", close.reason())
}

/// The delay, in milliseconds, a close reason asks the client to wait
/// before reconnecting, if it asks for one.
pub fn retry_hint(reason: &str) -> Option<u64> {
    let (_, hint) = reason.rsplit_once("; retry in ")?;
    hint.strip_suffix(" ms")?.parse().ok()
}

/// 1000: see [`Close::Normal`].
pub const NORMAL: u16 = Close::Normal.code();
/// 1001: see [`Close::Shutdown`].
pub const GOING_AWAY: u16 = Close::Shutdown.code();
/// 1007: see [`Close::InvalidUtf8`].
pub const INVALID_PAYLOAD: u16 = Close::InvalidUtf8.code();
/// 1009: see [`Close::Oversized`].
pub const MESSAGE_TOO_BIG: u16 = Close::Oversized.code();
/// 4001: see [`Close::SlowConsumer`].
pub const SLOW_CONSUMER: u16 = Close::SlowConsumer.code();
/// 4002: see [`Close::Heartbeat`].
pub const HEARTBEAT_TIMEOUT: u16 = Close::Heartbeat.code();
/// 4501: see [`Close::RoomFull`].
pub const ROOM_FULL: u16 = Close::RoomFull.code();
/// 4502: see [`Close::SpectatorsFull`].
pub const SPECTATORS_FULL: u16 = Close::SpectatorsFull.code();
/// 4503: see [`Close::Replaced`].
pub const REPLACED: u16 = Close::Replaced.code();
/// 4508: see [`Close::TooManyInvalid`].
pub const TOO_MANY_INVALID: u16 = Close::TooManyInvalid.code();
/// 4509: see [`Close::RateLimited`].
pub const RATE_LIMITED: u16 = Close::RateLimited.code();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_from_4500_up_tell_the_page_not_to_reconnect() {
        for close in Close::ALL {
            let terminal = (4500..5000).contains(&close.code());
            assert_eq!(close.reconnect(), !terminal, "{close:?}");
        }
        assert!(Close::Shutdown.reconnect() && Close::SlowConsumer.reconnect());
        assert!(!Close::RoomFull.reconnect() && !Close::RateLimited.reconnect());
    }

    #[test]
    fn every_close_has_its_own_reason_and_metric_label() {
        let reasons: std::collections::HashSet<_> = Close::ALL.map(Close::reason).into();
        let labels: std::collections::HashSet<_> = Close::ALL.map(Close::metric).into();
        assert_eq!(reasons.len(), Close::ALL.len());
        assert_eq!(labels.len(), Close::ALL.len());
        assert!(Close::ALL
            .iter()
            .all(|close| close.reason().len() <= 123 && !close.reason().is_empty()));
    }

    #[test]
    fn a_retry_hint_reads_back_and_fits_a_close_frame() {
        let reason = with_retry_hint(Close::Shutdown, 9_999);
        assert_eq!(reason, "server shutting down; retry in 9999 ms");
        assert_eq!(retry_hint(&reason), Some(9_999));
        assert!(with_retry_hint(Close::Shutdown, u64::MAX).len() <= 123);
        for reason in [
            "server shutting down",
            "; retry in soon ms",
            "retry in 5 ms",
            "",
        ] {
            assert_eq!(retry_hint(reason), None, "{reason}");
        }
    }

    #[test]
    fn a_received_code_reads_back_as_its_close() {
        assert_eq!(Close::from_code(4503), Some(Close::Replaced));
        assert_eq!(Close::from_code(1001), Some(Close::Shutdown));
        assert_eq!(Close::from_code(1006), None);
        for close in Close::ALL {
            assert_eq!(
                Close::from_code(close.code()).map(Close::code),
                Some(close.code())
            );
        }
    }
}
