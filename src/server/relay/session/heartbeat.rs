//! What a connection's heartbeat calls for when its timer fires. A client
//! heard from lately needs no ping, and a socket that carried a frame
//! within the period needs no heartbeat frame (the page takes any frame as
//! a sign of life): a battle in play sends neither, and only quiet sockets
//! pay for being kept alive. The client still hears something at least
//! once a period, and a silent client is closed as before.

use std::time::Duration;

use tokio::time::Instant;

/// A connection's heartbeat rules.
#[derive(Debug, Clone, Copy)]
pub(super) struct Heartbeat {
    /// The client is sent a frame at least this often.
    pub period: Duration,
    /// A client heard nothing from (not even a pong) for longer is closed.
    pub silence_limit: Duration,
}

/// What a firing of the timer calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Beat {
    /// The client has been silent past the limit: close (4002).
    Silent,
    /// A ping and a heartbeat frame, each if asked for; the timer fires
    /// again at `next`.
    Due {
        ping: bool,
        frame: bool,
        next: Instant,
    },
}

impl Heartbeat {
    /// A client heard from within this is not pinged: half the shorter of
    /// the period and the timeout, so that the next firing, at most a period
    /// later, still finds it within the limit, and pings it then.
    fn ping_after(&self) -> Duration {
        let timeout = self.silence_limit.saturating_sub(self.period);
        self.period.min(timeout) / 2
    }

    /// The firing at `now`, the client last heard from at `last_heard`,
    /// the last frame written to it at `last_written`.
    pub(super) fn beat(&self, now: Instant, last_heard: Instant, last_written: Instant) -> Beat {
        let silent = now.saturating_duration_since(last_heard);
        if silent > self.silence_limit {
            return Beat::Silent;
        }
        let frame = now.saturating_duration_since(last_written) >= self.period;
        Beat::Due {
            ping: silent >= self.ping_after(),
            frame,
            next: if frame { now } else { last_written } + self.period,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Heartbeat = Heartbeat {
        period: Duration::from_secs(15),
        silence_limit: Duration::from_secs(25),
    };

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_quiet_socket_gets_a_ping_and_a_heartbeat_frame_every_period() {
        let start = Instant::now();
        let now = start + secs(15);
        assert_eq!(
            RULES.beat(now, start, start),
            Beat::Due {
                ping: true,
                frame: true,
                next: now + secs(15)
            }
        );
    }

    #[test]
    fn a_socket_in_play_gets_neither_and_its_timer_waits_a_period_from_its_last_frame() {
        let start = Instant::now();
        let now = start + secs(15);
        let lately = now - secs(1);
        assert_eq!(
            RULES.beat(now, lately, lately),
            Beat::Due {
                ping: false,
                frame: false,
                next: lately + secs(15)
            }
        );
    }

    #[test]
    fn a_spectator_that_only_reads_is_pinged_but_sent_no_heartbeat_frame() {
        let start = Instant::now();
        let now = start + secs(15);
        assert_eq!(
            RULES.beat(now, start, now - secs(1)),
            Beat::Due {
                ping: true,
                frame: false,
                next: now - secs(1) + secs(15)
            }
        );
    }

    #[test]
    fn a_client_silent_past_the_limit_is_closed() {
        let start = Instant::now();
        assert_eq!(
            RULES.beat(start + secs(26), start, start + secs(25)),
            Beat::Silent
        );
    }

    /// A ping skipped at any firing: the next firing, a period later at
    /// most, finds the client (silent since) still within the limit, and
    /// pings it then; for any period and timeout.
    #[test]
    fn a_skipped_ping_never_lets_a_live_client_reach_the_limit() {
        for (period, timeout) in [(15, 10), (20, 5), (5, 20), (1, 0)] {
            let rules = Heartbeat {
                period: secs(period),
                silence_limit: secs(period + timeout),
            };
            let heard = Instant::now();
            for tenths in 0..period * 10 {
                let firing = heard + Duration::from_millis(tenths * 100);
                let Beat::Due { ping: false, .. } = rules.beat(firing, heard, heard) else {
                    continue;
                };
                let beat = rules.beat(firing + rules.period, heard, heard);
                assert!(
                    matches!(beat, Beat::Due { ping: true, .. }),
                    "{period} s, {timeout} s, skipped at {tenths}: {beat:?}"
                );
            }
        }
    }
}
