//! What the page does when its socket closes, and with the server's answer
//! when it asks why a socket did not open. Pure: the random number is
//! passed in.

use super::ConnectionState;
use crate::protocol::close::retry_hint;

/// The longest wait a server's hint can ask for: a page never sits idle
/// longer than this because of one.
pub const RETRY_HINT_CAP_MS: u64 = 60_000;
/// Jitter added to a `Retry-After`, so pages told the same second do not
/// come back in the same millisecond.
pub const RETRY_AFTER_JITTER_MS: u64 = 1_000;

/// What the page does once its socket closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterClose {
    /// Stop and show this state: the server said not to come back.
    Stop(ConnectionState),
    /// The socket never opened: ask the server why before trying again
    /// (browsers do not show a refused handshake's status).
    AskWhy,
    /// Reconnect: after this many milliseconds if the server said when,
    /// else after the usual backoff.
    Reconnect {
        /// The server's hint, capped.
        after_ms: Option<u64>,
    },
}

/// The socket closed with `code` and `reason`; `opened` if it had opened.
pub fn after_close(code: u16, reason: &str, opened: bool) -> AfterClose {
    if let Some(state) = ConnectionState::terminal(code) {
        return AfterClose::Stop(state);
    }
    if !opened {
        return AfterClose::AskWhy;
    }
    AfterClose::Reconnect {
        after_ms: retry_hint(reason).map(|ms| ms.min(RETRY_HINT_CAP_MS)),
    }
}

/// What the answer to the admission check means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCheck {
    /// The join token is refused: stop and say so.
    TokenRefused,
    /// The server is busy for this client: show it calmly and come back
    /// after this many milliseconds.
    Busy {
        /// `Retry-After`, plus jitter, capped.
        after_ms: u64,
    },
    /// Nothing in the way: reconnect after the usual backoff.
    Reconnect,
}

/// The admission check answered `status` with `retry_after` (the header's
/// value, if any); `random` is uniform in `[0, 1)`.
pub fn after_admission_check(status: u16, retry_after: Option<&str>, random: f64) -> AfterCheck {
    match status {
        401 | 403 => AfterCheck::TokenRefused,
        429 => {
            let secs: u64 = retry_after.and_then(|s| s.trim().parse().ok()).unwrap_or(1);
            let jitter = (random.clamp(0.0, 1.0) * RETRY_AFTER_JITTER_MS as f64) as u64;
            AfterCheck::Busy {
                after_ms: secs
                    .saturating_mul(1_000)
                    .saturating_add(jitter)
                    .min(RETRY_HINT_CAP_MS),
            }
        }
        _ => AfterCheck::Reconnect,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{close, Close};

    #[test]
    fn a_terminal_close_stops_and_a_handshake_that_failed_asks_why() {
        assert_eq!(
            after_close(4501, "room full", true),
            AfterClose::Stop(ConnectionState::RoomFull)
        );
        assert_eq!(after_close(1006, "", false), AfterClose::AskWhy);
        assert_eq!(
            after_close(1006, "", true),
            AfterClose::Reconnect { after_ms: None }
        );
    }

    #[test]
    fn a_shutdown_hint_sets_the_wait_within_a_cap() {
        let reason = close::with_retry_hint(Close::Shutdown, 4_321);
        assert_eq!(
            after_close(1001, &reason, true),
            AfterClose::Reconnect {
                after_ms: Some(4_321)
            }
        );
        let greedy = close::with_retry_hint(Close::Shutdown, 10_000_000);
        assert_eq!(
            after_close(1001, &greedy, true),
            AfterClose::Reconnect {
                after_ms: Some(RETRY_HINT_CAP_MS)
            }
        );
    }

    #[test]
    fn busy_waits_at_least_retry_after_plus_jitter_and_a_refused_token_stops() {
        assert_eq!(
            after_admission_check(429, Some("3"), 0.0),
            AfterCheck::Busy { after_ms: 3_000 }
        );
        assert_eq!(
            after_admission_check(429, Some("3"), 0.999),
            AfterCheck::Busy { after_ms: 3_999 }
        );
        assert_eq!(
            after_admission_check(429, None, 0.5),
            AfterCheck::Busy { after_ms: 1_500 }
        );
        assert_eq!(
            after_admission_check(429, Some("86400"), 0.5),
            AfterCheck::Busy {
                after_ms: RETRY_HINT_CAP_MS
            }
        );
        assert_eq!(
            after_admission_check(401, None, 0.5),
            AfterCheck::TokenRefused
        );
        assert_eq!(
            after_admission_check(403, None, 0.5),
            AfterCheck::TokenRefused
        );
        for status in [204, 404, 500, 0] {
            assert_eq!(
                after_admission_check(status, None, 0.5),
                AfterCheck::Reconnect
            );
        }
    }
}
