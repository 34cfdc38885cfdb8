//! Rates of one connection: typing pings dropped, actions and presence
//! frames (away, name) refused, and the connection closed on sustained
//! flooding or too many invalid frames (governor's GCRA limiters: a burst,
//! refilled at a steady rate).

use std::{cell::OnceCell, num::NonZeroU32, time::Duration};

use governor::{DefaultDirectRateLimiter, Quota};

use crate::protocol::ClientEvent;

/// Rates and bursts of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Typing pings per second, sustained.
    pub typing_per_sec: NonZeroU32,
    /// Typing pings in a burst.
    pub typing_burst: NonZeroU32,
    /// Actions per second, sustained.
    pub actions_per_sec: NonZeroU32,
    /// Actions in a burst.
    pub actions_burst: NonZeroU32,
    /// Invalid frames in a burst (refilled at one per 10 s) before the
    /// connection is closed.
    pub invalid_burst: NonZeroU32,
    /// Frames over the typing or action rate in a burst (refilled at 2 per
    /// second) before the connection is closed.
    pub excess_burst: NonZeroU32,
}

/// What to do with a frame, by the connection's rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within its rate: relay it.
    Relay,
    /// A typing ping over its rate: drop it (typing is volatile).
    DropTyping,
    /// An action, away or name frame over its rate: refuse it with an
    /// error frame.
    RefuseAction,
    /// Sustained flooding: close the connection (4509).
    Close,
}

/// `away` and `name` frames in a burst: a player switching tabs a few
/// times in a row, or fixing a typo in their name, is never refused.
pub const PRESENCE_BURST: u32 = 8;
/// One more `away` or `name` frame every this often.
pub const PRESENCE_REFILL: Duration = Duration::from_secs(2);

/// The rate limiters of one connection, made at its first frame: an idle
/// connection keeps only its rates (docs/performance.md). Limiters made
/// late start with their bursts full, as ones made at the open would be by
/// then.
pub struct ConnectionLimiter {
    limits: RateLimits,
    limiters: OnceCell<Box<Limiters>>,
}

struct Limiters {
    typing: DefaultDirectRateLimiter,
    actions: DefaultDirectRateLimiter,
    presence: DefaultDirectRateLimiter,
    invalid: DefaultDirectRateLimiter,
    excess: DefaultDirectRateLimiter,
}

impl Limiters {
    fn new(limits: &RateLimits) -> Self {
        let direct = |quota| DefaultDirectRateLimiter::direct(quota);
        Self {
            typing: direct(
                Quota::per_second(limits.typing_per_sec).allow_burst(limits.typing_burst),
            ),
            actions: direct(
                Quota::per_second(limits.actions_per_sec).allow_burst(limits.actions_burst),
            ),
            presence: direct(
                Quota::with_period(PRESENCE_REFILL)
                    .expect("a non-zero period")
                    .allow_burst(NonZeroU32::new(PRESENCE_BURST).expect("non-zero")),
            ),
            invalid: direct(
                Quota::with_period(Duration::from_secs(10))
                    .expect("a non-zero period")
                    .allow_burst(limits.invalid_burst),
            ),
            excess: direct(
                Quota::per_second(NonZeroU32::new(2).expect("non-zero"))
                    .allow_burst(limits.excess_burst),
            ),
        }
    }
}

impl ConnectionLimiter {
    /// Fresh limiters, every burst available.
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            limits: *limits,
            limiters: OnceCell::new(),
        }
    }

    fn limiters(&self) -> &Limiters {
        self.limiters
            .get_or_init(|| Box::new(Limiters::new(&self.limits)))
    }

    /// A valid frame arrived: relay it, or not.
    pub fn check_frame(&self, event: &ClientEvent) -> Verdict {
        let limiters = self.limiters();
        let (limiter, over) = match event {
            ClientEvent::Typing => (&limiters.typing, Verdict::DropTyping),
            ClientEvent::Action(_) => (&limiters.actions, Verdict::RefuseAction),
            ClientEvent::Away(_) | ClientEvent::Name(_) => {
                (&limiters.presence, Verdict::RefuseAction)
            }
        };
        if limiter.check().is_ok() {
            Verdict::Relay
        } else if limiters.excess.check().is_ok() {
            over
        } else {
            Verdict::Close
        }
    }

    /// An invalid frame arrived: `true` if it was one too many and the
    /// connection must close (4508).
    pub fn check_invalid(&self) -> bool {
        self.limiters().invalid.check().is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Action;

    fn n(value: u32) -> NonZeroU32 {
        NonZeroU32::new(value).unwrap()
    }

    #[test]
    fn a_human_typing_and_clicking_never_hits_a_limit() {
        let limiter = ConnectionLimiter::new(&RateLimits {
            typing_per_sec: n(4),
            typing_burst: n(8),
            actions_per_sec: n(2),
            actions_burst: n(10),
            invalid_burst: n(10),
            excess_burst: n(30),
        });
        // The page's throttle sends at most 1.25 pings a second, and a
        // player clicks Run and Submit a few times in a row at most.
        for _ in 0..8 {
            assert_eq!(limiter.check_frame(&ClientEvent::Typing), Verdict::Relay);
        }
        for _ in 0..10 {
            let action = ClientEvent::Action(Action::Running);
            assert_eq!(limiter.check_frame(&action), Verdict::Relay);
        }
    }

    #[test]
    fn a_flood_is_dropped_or_refused_then_closed() {
        let limiter = ConnectionLimiter::new(&RateLimits {
            typing_per_sec: n(1),
            typing_burst: n(2),
            actions_per_sec: n(1),
            actions_burst: n(1),
            invalid_burst: n(3),
            excess_burst: n(3),
        });
        let typing: Vec<Verdict> = (0..6)
            .map(|_| limiter.check_frame(&ClientEvent::Typing))
            .collect();
        assert_eq!(
            typing,
            [
                Verdict::Relay,
                Verdict::Relay,
                Verdict::DropTyping,
                Verdict::DropTyping,
                Verdict::DropTyping,
                Verdict::Close
            ]
        );
        let action = ClientEvent::Action(Action::Accepted);
        assert_eq!(limiter.check_frame(&action), Verdict::Relay);
        assert_eq!(limiter.check_frame(&action), Verdict::Close);
    }

    #[test]
    fn away_and_name_frames_share_their_own_burst_and_leave_actions_alone() {
        let limiter = ConnectionLimiter::new(&RateLimits {
            typing_per_sec: n(1),
            typing_burst: n(1),
            actions_per_sec: n(1),
            actions_burst: n(1),
            invalid_burst: n(3),
            excess_burst: n(3),
        });
        let name = ClientEvent::Name(crate::protocol::PlayerName::parse("Ada").unwrap());
        for at in 0..PRESENCE_BURST {
            let event = if at % 2 == 0 {
                ClientEvent::Away(true)
            } else {
                name.clone()
            };
            assert_eq!(limiter.check_frame(&event), Verdict::Relay, "{at}");
        }
        assert_eq!(
            limiter.check_frame(&ClientEvent::Away(false)),
            Verdict::RefuseAction
        );
        assert_eq!(limiter.check_frame(&name), Verdict::RefuseAction);
        let action = ClientEvent::Action(Action::Running);
        assert_eq!(limiter.check_frame(&action), Verdict::Relay);
    }

    #[test]
    fn invalid_frames_past_the_burst_close_the_connection() {
        let limiter = ConnectionLimiter::new(&RateLimits {
            typing_per_sec: n(1),
            typing_burst: n(1),
            actions_per_sec: n(1),
            actions_burst: n(1),
            invalid_burst: n(2),
            excess_burst: n(1),
        });
        assert!(!limiter.check_invalid());
        assert!(!limiter.check_invalid());
        assert!(limiter.check_invalid());
    }
}
