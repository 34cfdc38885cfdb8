//! Which browser pages may open sockets: the handshake's `Origin`.

use thiserror::Error;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
