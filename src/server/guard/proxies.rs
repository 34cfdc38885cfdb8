//! Whom to believe about the client's address: the proxies in front.

use std::net::IpAddr;

use ipnet::IpNet;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
