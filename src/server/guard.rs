//! What the server enforces on untrusted clients: the Origin of a browser's
//! handshake, rates per connection, and connections per address (the
//! client's, as told by a trusted proxy if there is one).
//!
//! Rate limits use governor's GCRA limiters: a burst, refilled at a steady
//! rate. Nothing here blocks or awaits.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use thiserror::Error;

use crate::protocol::ClientEvent;

/// Which browser pages may open sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    /// Allowed origins (`scheme://host[:port]`); empty means "the server's
    /// own host", as the request's `Host` header names it.
    pub allowed: Vec<String>,
    /// Whether clients that send no `Origin` (not browsers) may connect.
    pub allow_missing: bool,
}

/// Why a handshake's Origin was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OriginRefusal {
    /// No Origin header, and non-browser clients are not allowed.
    #[error("an Origin header is required")]
    Missing,
    /// The Origin is not an allowed one.
    #[error("origin {0:?} is not allowed")]
    Foreign(String),
}

impl OriginPolicy {
    /// Checks a handshake's `Origin` against the policy; `host` is the
    /// request's `Host` header.
    pub fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), OriginRefusal> {
        let Some(origin) = origin else {
            return if self.allow_missing {
                Ok(())
            } else {
                Err(OriginRefusal::Missing)
            };
        };
        let allowed = if self.allowed.is_empty() {
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            authority.is_some_and(|a| host.is_some_and(|h| a.eq_ignore_ascii_case(h)))
        } else {
            self.allowed
                .iter()
                .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin))
        };
        if allowed {
            Ok(())
        } else {
            Err(OriginRefusal::Foreign(origin.chars().take(100).collect()))
        }
    }
}

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
    /// An action over its rate: refuse it with an error frame.
    RefuseAction,
    /// Sustained flooding: close the connection (4509).
    Close,
}

/// The rate limiters of one connection.
pub struct ConnectionLimiter {
    typing: DefaultDirectRateLimiter,
    actions: DefaultDirectRateLimiter,
    invalid: DefaultDirectRateLimiter,
    excess: DefaultDirectRateLimiter,
}

impl ConnectionLimiter {
    /// Fresh limiters, every burst available.
    pub fn new(limits: &RateLimits) -> Self {
        let direct = |quota| DefaultDirectRateLimiter::direct(quota);
        Self {
            typing: direct(
                Quota::per_second(limits.typing_per_sec).allow_burst(limits.typing_burst),
            ),
            actions: direct(
                Quota::per_second(limits.actions_per_sec).allow_burst(limits.actions_burst),
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

    /// A valid frame arrived: relay it, or not.
    pub fn check_frame(&self, event: ClientEvent) -> Verdict {
        let (limiter, over) = match event {
            ClientEvent::Typing => (&self.typing, Verdict::DropTyping),
            ClientEvent::Action(_) => (&self.actions, Verdict::RefuseAction),
        };
        if limiter.check().is_ok() {
            Verdict::Relay
        } else if self.excess.check().is_ok() {
            over
        } else {
            Verdict::Close
        }
    }

    /// An invalid frame arrived: `true` if it was one too many and the
    /// connection must close (4508).
    pub fn check_invalid(&self) -> bool {
        self.invalid.check().is_err()
    }
}

/// The proxies (load balancers) in front of the server, whose
/// `X-Forwarded-For` tells the client's address. Empty by default: then the
/// header is ignored and the peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Proxies in these address ranges.
    pub fn new(ranges: Vec<IpNet>) -> Self {
        Self(ranges)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(&ip))
    }

    /// The client's address, given the connection's `peer` and the values
    /// of its `X-Forwarded-For` headers in order: the peer unless it is a
    /// trusted proxy; then the nearest forwarded address (read from the
    /// right) that is not one. A malformed entry ends the walk at the last
    /// good address, so a client can only name itself, never whom a trusted
    /// proxy saw.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let mut client = peer;
        if !self.trusts(peer) {
            return peer;
        }
        for entry in forwarded_for
            .iter()
            .rev()
            .flat_map(|value| value.rsplit(','))
        {
            let Ok(hop) = entry.trim().parse::<IpAddr>() else {
                break;
            };
            client = hop;
            if !self.trusts(hop) {
                break;
            }
        }
        client
    }
}

/// Limits on one client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressLimits {
    /// Open WebSockets from one address at once.
    pub max_open: usize,
    /// New WebSockets from one address per second, sustained.
    pub per_sec: NonZeroU32,
    /// New WebSockets from one address in a burst.
    pub burst: NonZeroU32,
}

/// Why an address may not open another socket now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AddressRefusal {
    /// It has as many open sockets as it may.
    #[error("too many open connections from this address")]
    TooManyOpen,
    /// It opens sockets faster than it may.
    #[error("too many new connections from this address; slow down")]
    TooFast,
}

/// Open sockets and connection rates, per client address.
pub struct AddressGuard {
    limits: AddressLimits,
    rate: DefaultKeyedRateLimiter<IpAddr>,
    // Held only to count; nothing awaited while held.
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl std::fmt::Debug for AddressGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressGuard")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// One open socket of an address; dropping it frees the place.
pub struct AddressSlot {
    guard: Arc<AddressGuard>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.guard.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl AddressGuard {
    /// A guard enforcing `limits`.
    pub fn new(limits: AddressLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            rate: DefaultKeyedRateLimiter::hashmap(
                Quota::per_second(limits.per_sec).allow_burst(limits.burst),
            ),
            open: Mutex::default(),
        })
    }

    /// Takes a place for a new socket from `ip`, if it may have one.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<AddressSlot, AddressRefusal> {
        {
            let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            if open.get(&ip).copied().unwrap_or(0) >= self.limits.max_open {
                return Err(AddressRefusal::TooManyOpen);
            }
        }
        if self.rate.check_key(&ip).is_err() {
            return Err(AddressRefusal::TooFast);
        }
        // Forget addresses whose rate state is back to full, so the map
        // stays as small as the set of recently active addresses.
        self.rate.retain_recent();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        *open.entry(ip).or_default() += 1;
        Ok(AddressSlot {
            guard: self.clone(),
            ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Action;

    fn n(value: u32) -> NonZeroU32 {
        NonZeroU32::new(value).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn behind(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| r.parse().unwrap()).collect())
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_it_forwards() {
        let proxies = TrustedProxies::default();
        assert_eq!(
            proxies.client(ip("198.51.100.7"), &["203.0.113.1"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn from_a_trusted_proxy_the_client_is_the_nearest_untrusted_forwarded_address() {
        let proxies = behind(&["10.0.0.0/8", "127.0.0.1/32"]);
        let peer = ip("10.0.0.2");
        assert_eq!(proxies.client(peer, &["203.0.113.1"]), ip("203.0.113.1"));
        assert_eq!(
            proxies.client(peer, &["6.6.6.6, 203.0.113.1, 10.0.0.9"]),
            ip("203.0.113.1"),
            "what the client wrote itself, left of the first untrusted hop, is ignored"
        );
        assert_eq!(
            proxies.client(peer, &["6.6.6.6", "203.0.113.1 , 10.0.0.9"]),
            ip("203.0.113.1"),
            "several headers read as one list"
        );
        assert_eq!(proxies.client(peer, &[]), peer, "nothing forwarded");
        assert_eq!(
            proxies.client(peer, &["203.0.113.1, garbage, 10.0.0.9"]),
            ip("10.0.0.9"),
            "a malformed entry ends the walk"
        );
        assert_eq!(proxies.client(peer, &["2001:db8::1"]), ip("2001:db8::1"));
        assert_eq!(
            proxies.client(ip("198.51.100.7"), &["203.0.113.1"]),
            ip("198.51.100.7"),
            "an untrusted peer's header is ignored"
        );
    }

    fn same_host() -> OriginPolicy {
        OriginPolicy {
            allowed: Vec::new(),
            allow_missing: false,
        }
    }

    #[test]
    fn by_default_only_pages_of_the_servers_own_host_may_connect() {
        let policy = same_host();
        let host = Some("battles.example:3000");
        assert_eq!(
            policy.check(Some("http://battles.example:3000"), host),
            Ok(())
        );
        assert_eq!(
            policy.check(Some("https://BATTLES.example:3000"), host),
            Ok(())
        );
        for foreign in [
            "http://evil.example",
            "http://battles.example",
            "http://battles.example:3000.evil.example",
            "null",
            "battles.example:3000",
        ] {
            assert!(policy.check(Some(foreign), host).is_err(), "{foreign}");
        }
        assert_eq!(policy.check(None, host), Err(OriginRefusal::Missing));
    }

    #[test]
    fn an_allow_list_replaces_the_own_host_rule() {
        let policy = OriginPolicy {
            allowed: vec!["https://app.example/".into()],
            allow_missing: true,
        };
        assert_eq!(
            policy.check(Some("https://app.example"), Some("relay:1")),
            Ok(())
        );
        assert!(policy
            .check(Some("http://relay:1"), Some("relay:1"))
            .is_err());
        assert_eq!(policy.check(None, None), Ok(()), "non-browsers allowed");
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
            assert_eq!(limiter.check_frame(ClientEvent::Typing), Verdict::Relay);
        }
        for _ in 0..10 {
            let action = ClientEvent::Action(Action::Running);
            assert_eq!(limiter.check_frame(action), Verdict::Relay);
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
            .map(|_| limiter.check_frame(ClientEvent::Typing))
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
        assert_eq!(limiter.check_frame(action), Verdict::Relay);
        assert_eq!(limiter.check_frame(action), Verdict::Close);
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

    #[test]
    fn an_address_gets_a_bounded_number_of_sockets_at_a_bounded_rate() {
        let guard = AddressGuard::new(AddressLimits {
            max_open: 2,
            per_sec: n(1),
            burst: n(3),
        });
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let first = guard.admit(ip).unwrap();
        let _second = guard.admit(ip).unwrap();
        assert!(matches!(guard.admit(ip), Err(AddressRefusal::TooManyOpen)));
        let other: IpAddr = "203.0.113.8".parse().unwrap();
        assert!(
            guard.admit(other).is_ok(),
            "other addresses are not affected"
        );
        drop(first);
        let _third = guard.admit(ip).unwrap();
        drop(_third);
        assert!(matches!(guard.admit(ip), Err(AddressRefusal::TooFast)));
    }
}
