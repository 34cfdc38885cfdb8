//! What every response tells the browser about how to treat it, in one
//! place: a strict Content-Security-Policy with a per-response nonce on
//! pages, no framing unless configured, no sniffing, no referrer, its own
//! browsing context group, HSTS behind a TLS address, and no caching of a
//! page whose address carried a join token.

use axum::{
    http::{header, request::Parts, HeaderName, HeaderValue},
    Router,
};
use leptos::{nonce::use_nonce, prelude::use_context};
use leptos_axum::ResponseOptions;
use tower_http::set_header::SetResponseHeaderLayer;

/// `Cross-Origin-Opener-Policy`, which `http` does not name.
const CROSS_ORIGIN_OPENER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");
/// HSTS lifetime: one year.
const HSTS: &str = "max-age=31536000";

/// How the pages protect themselves; from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PagePolicy {
    /// Origins that may frame the pages (`https://host.example`); none by
    /// default.
    pub frame_ancestors: Vec<String>,
    /// Whether players reach the server over TLS (its public URL is
    /// `https://`): then browsers are told to keep to HTTPS.
    pub tls: bool,
    /// In a `cargo leptos watch` build, the port of the live-reload socket
    /// the page connects to.
    pub live_reload_port: Option<u32>,
}

impl PagePolicy {
    /// The Content-Security-Policy of a page whose inline scripts carry
    /// `nonce`.
    pub fn content_security_policy(&self, nonce: &str) -> String {
        let ancestors = if self.frame_ancestors.is_empty() {
            "'none'".to_owned()
        } else {
            self.frame_ancestors.join(" ")
        };
        let live_reload = self
            .live_reload_port
            .map(|port| format!(" ws://*:{port} wss://*:{port}"))
            .unwrap_or_default();
        format!(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
             style-src 'self'; img-src 'self' data:; connect-src 'self'{live_reload}; \
             object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors {ancestors}"
        )
    }

    /// `X-Frame-Options` to match `frame-ancestors`, for browsers that
    /// know only that; `None` where it cannot say the same (a list of
    /// other origins).
    pub fn x_frame_options(&self) -> Option<&'static str> {
        match self.frame_ancestors.as_slice() {
            [] => Some("DENY"),
            [only] if only == "'self'" => Some("SAMEORIGIN"),
            _ => None,
        }
    }

    /// Called while a page renders on the server: sets its policy headers
    /// with the nonce of this response, and forbids caching a page whose
    /// address carried a join token.
    pub fn on_page_render(&self) {
        let Some(response) = use_context::<ResponseOptions>() else {
            return;
        };
        if let Some(nonce) = use_nonce() {
            insert(
                &response,
                header::CONTENT_SECURITY_POLICY,
                &self.content_security_policy(&nonce),
            );
        }
        if let Some(frame_options) = self.x_frame_options() {
            insert(&response, header::X_FRAME_OPTIONS, frame_options);
        }
        let carries_token = use_context::<Parts>()
            .and_then(|parts| parts.uri.query().map(query_has_token))
            .unwrap_or(false);
        if carries_token {
            insert(&response, header::CACHE_CONTROL, "no-store");
        }
    }

    /// Adds the headers every response carries.
    pub fn layer<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        let fixed = |name, value| {
            SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
        };
        let router = router
            .layer(fixed(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .layer(fixed(header::REFERRER_POLICY, "no-referrer"))
            .layer(fixed(CROSS_ORIGIN_OPENER_POLICY, "same-origin"));
        if self.tls {
            router.layer(fixed(header::STRICT_TRANSPORT_SECURITY, HSTS))
        } else {
            router
        }
    }
}

fn insert(response: &ResponseOptions, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.insert_header(name, value);
    }
}

/// True if a query string has a `token` parameter.
fn query_has_token(query: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair.split('=').next() == Some("token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_pages_run_only_their_own_and_nonced_scripts_and_are_never_framed() {
        let policy = PagePolicy::default();
        let csp = policy.content_security_policy("abc123");
        for part in [
            "default-src 'self'",
            "script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval'",
            "connect-src 'self';",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{part} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("'unsafe-eval'"));
        assert_eq!(policy.x_frame_options(), Some("DENY"));
    }

    #[test]
    fn a_host_application_may_frame_the_page_and_live_reload_is_allowed_only_in_dev() {
        let policy = PagePolicy {
            frame_ancestors: vec!["https://host.example".into()],
            tls: true,
            live_reload_port: Some(3001),
        };
        let csp = policy.content_security_policy("n");
        assert!(
            csp.ends_with("frame-ancestors https://host.example"),
            "{csp}"
        );
        assert!(
            csp.contains("connect-src 'self' ws://*:3001 wss://*:3001;"),
            "{csp}"
        );
        assert_eq!(
            policy.x_frame_options(),
            None,
            "XFO cannot name another origin"
        );
        let same_origin = PagePolicy {
            frame_ancestors: vec!["'self'".into()],
            ..PagePolicy::default()
        };
        assert_eq!(same_origin.x_frame_options(), Some("SAMEORIGIN"));
    }

    #[test]
    fn only_a_token_parameter_counts_as_a_token() {
        assert!(query_has_token("token=abc"));
        assert!(query_has_token("role=player&token="));
        assert!(!query_has_token("role=spectator"));
        assert!(!query_has_token("tokens=1&mytoken=2"));
    }
}
