//! When the link to Redis counts as silent: the pub/sub connection is
//! pinged every period, and any answer or message proves it alive; past the
//! timeout with neither, the link is down, even though its TCP connection
//! may look open (a partition, a stuck failover, a Redis paused by a long
//! command). Pure: time is passed in.

use std::time::Duration;

use tokio::time::Instant;

/// How often the pub/sub connection is pinged.
pub const PING_PERIOD: Duration = Duration::from_secs(1);

/// The link's last sign of life.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    timeout: Duration,
    last_heard: Instant,
}

impl Liveness {
    /// A link heard from at `now`, silent past `timeout`.
    pub fn new(timeout: Duration, now: Instant) -> Self {
        Self {
            timeout,
            last_heard: now,
        }
    }

    /// Redis answered, or sent a message, at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
    }

    /// How long the link has been silent at `now`, if past the timeout.
    pub fn silent_for(&self, now: Instant) -> Option<Duration> {
        let silent = now.saturating_duration_since(self.last_heard);
        (silent >= self.timeout).then_some(silent)
    }
}

/// Why the link to Redis is down, as `/readyz` says it.
pub fn no_reply(silent: Duration) -> String {
    format!("redis: no reply for {:.1} s", silent.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_link_that_answers_stays_alive_and_one_that_is_silent_is_down_past_the_timeout() {
        let start = Instant::now();
        let mut liveness = Liveness::new(Duration::from_secs(3), start);
        tokio::time::advance(Duration::from_millis(2_999)).await;
        assert_eq!(liveness.silent_for(Instant::now()), None);
        liveness.heard(Instant::now());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(liveness.silent_for(Instant::now()), None, "heard 2 s ago");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            liveness.silent_for(Instant::now()),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            no_reply(Duration::from_millis(3_040)),
            "redis: no reply for 3.0 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_from_before_does_not_move_the_last_sign_of_life_back() {
        let start = Instant::now();
        let mut liveness = Liveness::new(Duration::from_secs(1), start);
        tokio::time::advance(Duration::from_millis(900)).await;
        liveness.heard(Instant::now());
        liveness.heard(start);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(liveness.silent_for(Instant::now()), None);
    }
}
