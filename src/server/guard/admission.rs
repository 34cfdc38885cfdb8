//! Who may open a socket now: a budget for the whole process (open sockets
//! and new sockets a second), then either the player's own limit (a socket
//! with a valid join token: the host application vouched for it, so a
//! classroom behind one address is not one client) or the client address's
//! limits (every other socket, and every failed token attempt).
//!
//! Every refusal says when to come back ([`Refused::retry_after`]) and is
//! remembered until then, so the page can ask why its socket did not open
//! without spending anything ([`Admission::busy_for`]). Nothing here blocks
//! or awaits.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use governor::{
    clock::{Clock, DefaultClock},
    DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota,
};
use tracing::warn;

use crate::protocol::PlayerKey;

/// When to come back after a refusal for a full count of open sockets:
/// sockets close at the pace of people, not of a rate.
const FULL_RETRY: Duration = Duration::from_secs(5);
/// Rate-limiter states kept before the idle ones are forgotten.
const RETAIN_ABOVE: usize = 4096;

/// A limit on open sockets and on new sockets a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketLimits {
    /// Open sockets at once.
    pub max_open: usize,
    /// New sockets per second, sustained.
    pub per_sec: NonZeroU32,
    /// New sockets in a burst.
    pub burst: NonZeroU32,
}

/// Every admission limit, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// The whole process.
    pub budget: SocketLimits,
    /// One client address, for sockets without a valid token.
    pub address: SocketLimits,
    /// Open sockets (tabs) of one player with a valid token.
    pub max_open_per_player: usize,
}

/// Which limit refused a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// The process's budget.
    Budget,
    /// The client address's limits.
    Address,
    /// The player's limit on open tabs.
    Player,
}

/// A refused socket: which limit, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Which limit.
    pub limit: Limit,
    /// How long to wait before trying again.
    pub retry_after: Duration,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.limit {
            Limit::Budget => "the server is busy",
            Limit::Address => "too many connections from this address",
            Limit::Player => "this player has too many tabs open",
        };
        write!(f, "{what}; try again in {} s", retry_secs(self.retry_after))
    }
}

impl std::error::Error for Refused {}

/// `retry_after` in whole seconds, rounded up, at least one: the value of a
/// `Retry-After` header.
pub fn retry_secs(retry_after: Duration) -> u64 {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    secs.max(1)
}

/// Who holds an open socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Address(IpAddr),
    Player(PlayerKey),
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_holder: HashMap<Holder, usize>,
    /// Refused until then: the budget (`None` key) or an address.
    busy: HashMap<Option<IpAddr>, Instant>,
}

/// Open sockets and connection rates: the process's, each address's, each
/// player's.
pub struct Admission {
    limits: AdmissionLimits,
    budget_rate: DefaultDirectRateLimiter,
    address_rate: DefaultKeyedRateLimiter<IpAddr>,
    /// One log line per address and minute.
    log: DefaultKeyedRateLimiter<IpAddr>,
    // Held only to count; nothing awaited, nothing else locked, while held.
    counts: Mutex<Counts>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// One open socket; dropping it frees its places.
pub struct Slot {
    admission: Arc<Admission>,
    holder: Holder,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.by_holder.get_mut(&self.holder) {
            *count -= 1;
            if *count == 0 {
                counts.by_holder.remove(&self.holder);
            }
        }
    }
}

fn quota(limits: &SocketLimits) -> Quota {
    Quota::per_second(limits.per_sec).allow_burst(limits.burst)
}

/// How long until a rate limiter that said no says yes.
fn wait(not_until: &NotUntil<<DefaultClock as Clock>::Instant>) -> Duration {
    not_until.wait_time_from(DefaultClock::default().now())
}

impl Admission {
    /// Admission under `limits`.
    pub fn new(limits: AdmissionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            budget_rate: DefaultDirectRateLimiter::direct(quota(&limits.budget)),
            address_rate: DefaultKeyedRateLimiter::hashmap(quota(&limits.address)),
            log: DefaultKeyedRateLimiter::hashmap(Quota::per_minute(NonZeroU32::MIN)),
            counts: Mutex::default(),
        })
    }

    /// A place for a socket from `ip` without a valid token: within the
    /// budget and the address's limits.
    pub fn admit_address(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let holder = Holder::Address(ip);
        self.check_open(&holder, self.limits.address.max_open, Limit::Address)
            .and_then(|()| self.check_budget())
            .and_then(|()| self.charge_address(ip))
            .map(|()| self.take(holder))
            .inspect_err(|refused| self.refused(ip, refused))
    }

    /// A place for a socket of `player`, whose token is valid, from `ip`:
    /// within the budget and the player's own limit; the address's limits
    /// do not apply.
    pub fn admit_player(self: &Arc<Self>, player: &PlayerKey, ip: IpAddr) -> Result<Slot, Refused> {
        let holder = Holder::Player(player.clone());
        self.check_open(&holder, self.limits.max_open_per_player, Limit::Player)
            .and_then(|()| self.check_budget())
            .map(|()| self.take(holder))
            .inspect_err(|refused| self.refused(ip, refused))
    }

    /// A socket from `ip` presented a token that failed: the attempt is
    /// charged to the address, so a forger spends its own address's budget,
    /// never the players'. `Err` once the address is over its rate.
    pub fn charge_failed_attempt(&self, ip: IpAddr) -> Result<(), Refused> {
        self.charge_address(ip)
            .inspect_err(|refused| self.refused(ip, refused))
    }

    /// How long a socket from `ip` (of `player`, with a valid token) would
    /// still be refused, if it would: what the page asks when its socket did
    /// not open. Spends nothing.
    pub fn busy_for(&self, ip: IpAddr, player: Option<&PlayerKey>) -> Option<Duration> {
        let counts = self.lock();
        let now = Instant::now();
        let until = |key| {
            counts
                .busy
                .get(&key)
                .and_then(|at| at.checked_duration_since(now))
        };
        let full = match player {
            Some(player) => {
                let open = counts.by_holder.get(&Holder::Player(player.clone()));
                open.is_some_and(|open| *open >= self.limits.max_open_per_player)
            }
            None => {
                let open = counts.by_holder.get(&Holder::Address(ip));
                open.is_some_and(|open| *open >= self.limits.address.max_open)
            }
        };
        let budget_full = counts.total >= self.limits.budget.max_open;
        let address = player.is_none().then(|| until(Some(ip))).flatten();
        [
            until(None),
            address,
            (full || budget_full).then_some(FULL_RETRY),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_open(&self, holder: &Holder, max: usize, limit: Limit) -> Result<(), Refused> {
        let counts = self.lock();
        let full = |limit| Refused {
            limit,
            retry_after: FULL_RETRY,
        };
        if counts.total >= self.limits.budget.max_open {
            return Err(full(Limit::Budget));
        }
        if counts.by_holder.get(holder).copied().unwrap_or(0) >= max {
            return Err(full(limit));
        }
        Ok(())
    }

    fn check_budget(&self) -> Result<(), Refused> {
        self.budget_rate.check().map_err(|not_until| Refused {
            limit: Limit::Budget,
            retry_after: wait(&not_until),
        })
    }

    fn charge_address(&self, ip: IpAddr) -> Result<(), Refused> {
        if self.address_rate.len() > RETAIN_ABOVE {
            self.address_rate.retain_recent();
        }
        self.address_rate
            .check_key(&ip)
            .map_err(|not_until| Refused {
                limit: Limit::Address,
                retry_after: wait(&not_until),
            })
    }

    fn take(self: &Arc<Self>, holder: Holder) -> Slot {
        let mut counts = self.lock();
        counts.total += 1;
        *counts.by_holder.entry(holder.clone()).or_default() += 1;
        Slot {
            admission: self.clone(),
            holder,
        }
    }

    /// Remembers until when `ip` (or everyone, for the budget) is refused,
    /// and logs it once a minute per address.
    fn refused(&self, ip: IpAddr, refused: &Refused) {
        let until = Instant::now() + refused.retry_after;
        let key = match refused.limit {
            Limit::Budget => None,
            Limit::Address => Some(ip),
            Limit::Player => return self.log_refusal(ip, refused),
        };
        {
            let mut counts = self.lock();
            if counts.busy.len() > RETAIN_ABOVE {
                let now = Instant::now();
                counts.busy.retain(|_, at| *at > now);
            }
            let at = counts.busy.entry(key).or_insert(until);
            *at = (*at).max(until);
        }
        self.log_refusal(ip, refused);
    }

    fn log_refusal(&self, ip: IpAddr, refused: &Refused) {
        if self.log.len() > RETAIN_ABOVE {
            self.log.retain_recent();
        }
        if self.log.check_key(&ip).is_ok() {
            warn!(client = %ip, limit = ?refused.limit, retry_after_secs = retry_secs(refused.retry_after),
                "sockets refused (logged once a minute per address)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(value: u32) -> NonZeroU32 {
        NonZeroU32::new(value).unwrap()
    }

    fn limits(address: SocketLimits) -> AdmissionLimits {
        AdmissionLimits {
            budget: SocketLimits {
                max_open: 1_000,
                per_sec: n(1_000),
                burst: n(1_000),
            },
            address,
            max_open_per_player: 2,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn key(n: u8) -> PlayerKey {
        PlayerKey::parse(&format!("player-key-{n:08}")).unwrap()
    }

    #[test]
    fn an_address_gets_a_bounded_number_of_sockets_at_a_bounded_rate() {
        let guard = Admission::new(limits(SocketLimits {
            max_open: 2,
            per_sec: n(1),
            burst: n(3),
        }));
        let ip = ip("203.0.113.7");
        let first = guard.admit_address(ip).unwrap();
        let _second = guard.admit_address(ip).unwrap();
        let full = guard.admit_address(ip).err().unwrap();
        assert_eq!(full.limit, Limit::Address);
        assert_eq!(full.retry_after, FULL_RETRY);
        let other: IpAddr = "203.0.113.8".parse().unwrap();
        assert!(
            guard.admit_address(other).is_ok(),
            "other addresses are not affected"
        );
        drop(first);
        let third = guard.admit_address(ip).unwrap();
        drop(third);
        let fast = guard.admit_address(ip).err().unwrap();
        assert_eq!(fast.limit, Limit::Address);
        assert!(fast.retry_after <= Duration::from_secs(1), "{fast:?}");
        assert_eq!(retry_secs(fast.retry_after), 1);
    }

    #[test]
    fn players_with_tokens_are_limited_per_player_not_per_address() {
        let guard = Admission::new(limits(SocketLimits {
            max_open: 1,
            per_sec: n(1),
            burst: n(1),
        }));
        let school = ip("198.51.100.1");
        let _anonymous = guard.admit_address(school).unwrap();
        assert!(guard.admit_address(school).is_err(), "the address is full");
        let students: Vec<Slot> = (0..50)
            .map(|n| guard.admit_player(&key(n), school).unwrap())
            .collect();
        assert_eq!(students.len(), 50, "a class behind one address gets in");
        let _tab = guard.admit_player(&key(0), school).unwrap();
        let third_tab = guard.admit_player(&key(0), school).err().unwrap();
        assert_eq!(third_tab.limit, Limit::Player);
        assert_eq!(guard.busy_for(school, Some(&key(0))), Some(FULL_RETRY));
        assert_eq!(guard.busy_for(school, Some(&key(1))), None);
    }

    #[test]
    fn failed_token_attempts_spend_the_address_and_a_refusal_is_remembered_until_its_time() {
        let guard = Admission::new(limits(SocketLimits {
            max_open: 100,
            per_sec: n(1),
            burst: n(2),
        }));
        let forger = ip("192.0.2.66");
        assert!(guard.charge_failed_attempt(forger).is_ok());
        assert!(guard.charge_failed_attempt(forger).is_ok());
        assert_eq!(guard.busy_for(forger, None), None);
        let refused = guard.charge_failed_attempt(forger).err().unwrap();
        assert_eq!(refused.limit, Limit::Address);
        let busy = guard.busy_for(forger, None).expect("remembered");
        assert!(busy <= refused.retry_after);
        assert!(
            guard.admit_address(forger).is_err(),
            "its own budget is spent"
        );
        assert!(
            guard.admit_player(&key(1), forger).is_ok(),
            "a player with a valid token from there still gets in"
        );
    }

    #[test]
    fn the_process_budget_caps_everyone() {
        let guard = Admission::new(AdmissionLimits {
            budget: SocketLimits {
                max_open: 3,
                per_sec: n(1_000),
                burst: n(1_000),
            },
            ..limits(SocketLimits {
                max_open: 100,
                per_sec: n(100),
                burst: n(100),
            })
        });
        let _held: Vec<Slot> = (0..3)
            .map(|n| guard.admit_player(&key(n), ip("192.0.2.1")).unwrap())
            .collect();
        let refused = guard.admit_address(ip("192.0.2.2")).err().unwrap();
        assert_eq!(refused.limit, Limit::Budget);
        assert_eq!(guard.busy_for(ip("192.0.2.3"), None), Some(FULL_RETRY));
        assert_eq!(refused.to_string(), "the server is busy; try again in 5 s");
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(retry_secs(Duration::ZERO), 1);
        assert_eq!(retry_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_secs(Duration::from_millis(2_001)), 3);
    }
}
