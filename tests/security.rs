//! What every response tells the browser: the pages' Content-Security-Policy
//! with a fresh nonce, framing, sniffing, referrer and opener policies,
//! HSTS behind TLS, no token in a page, and metrics off the public port.

mod support;

use support::{http_get, http_get_at, post_verdict, spawn_app, spawn_app_with};

/// The value of header `name` in a raw HTTP response, if present.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The nonce of the page's CSP header.
fn csp_nonce(response: &str) -> String {
    let csp = header(response, "content-security-policy").expect("a CSP on the page");
    let start = csp.find("'nonce-").expect("a nonce in the CSP") + "'nonce-".len();
    let end = csp[start..].find('\'').expect("a closed nonce") + start;
    csp[start..end].to_owned()
}

fn assert_common_headers(response: &str, what: &str) {
    assert_eq!(
        header(response, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        header(response, "referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(
        header(response, "cross-origin-opener-policy"),
        Some("same-origin"),
        "{what}"
    );
}

#[tokio::test]
async fn pages_carry_a_strict_csp_and_refuse_to_be_framed() {
    let server = spawn_app().await;
    for path in [
        "/",
        "/battle/duel-42",
        "/battle/duel-42?role=spectator",
        "/nowhere",
    ] {
        let (_, page) = http_get(&server, path).await;
        assert_common_headers(&page, path);
        let csp = header(&page, "content-security-policy").expect("a CSP");
        for part in [
            "default-src 'self'",
            "'wasm-unsafe-eval'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {part} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header(&page, "x-frame-options"), Some("DENY"), "{path}");
    }
}

#[tokio::test]
async fn each_page_gets_its_own_nonce_and_its_inline_script_carries_it() {
    let server = spawn_app().await;
    let (_, first) = http_get(&server, "/battle/duel-42").await;
    let (_, second) = http_get(&server, "/battle/duel-42").await;
    let (one, two) = (csp_nonce(&first), csp_nonce(&second));
    assert!(one.len() >= 16, "a nonce of 128 bits: {one}");
    assert_ne!(one, two, "a new nonce per response");
    assert!(
        first.contains(&format!(r#"<script type="module" nonce="{one}">"#)),
        "the hydration script carries the header's nonce"
    );
    let scripts = first.matches("<script").count();
    let nonced = first.matches(&format!("nonce=\"{one}\"")).count();
    assert!(
        scripts >= 1 && nonced >= scripts,
        "{scripts} scripts, {nonced} nonced"
    );
}

#[tokio::test]
async fn assets_the_judge_api_and_errors_carry_the_common_headers_but_no_page_policy() {
    let server = spawn_app_with(|config| {
        config.publish_secret =
            Some(battle_status::server::token::Secret::new("judge-secret-0123456789").unwrap());
    })
    .await;
    let (status, asset) = http_get(&server, "/favicon.svg").await;
    assert_eq!(status, 200);
    assert_common_headers(&asset, "an asset");
    assert_eq!(header(&asset, "content-security-policy"), None);
    let (status, api) = post_verdict(&server, "duel", "wrong-secret-0000000000", "{}").await;
    assert_eq!(status, 401);
    assert_common_headers(&api, "the judge's API");
    let (status, refused) = http_get(&server, "/ws/battle/bad.room/").await;
    assert_eq!(status, 400);
    assert_common_headers(&refused, "a refused handshake");
}

#[tokio::test]
async fn a_battle_link_with_a_token_is_never_cached_and_never_echoes_the_token() {
    let server = spawn_app().await;
    let token = "v1.c2VjcmV0LXRva2VuLXZhbHVl.0123456789abcdef";
    let (status, page) = http_get(&server, &format!("/battle/duel-42?token={token}")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&page, "cache-control"), Some("no-store"));
    assert!(!page.contains(token), "the token is not in the page");
    assert!(!page.contains("c2VjcmV0LXRva2VuLXZhbHVl"));
    let (_, plain) = http_get(&server, "/battle/duel-42").await;
    assert_eq!(header(&plain, "cache-control"), None);
}

#[tokio::test]
async fn a_host_application_can_be_allowed_to_frame_the_page_and_tls_brings_hsts() {
    let server = spawn_app_with(|config| {
        config.frame_ancestors = vec!["https://host.example".into()];
        config.public_url = Some("https://battles.example".into());
    })
    .await;
    let (_, page) = http_get(&server, "/battle/duel-42").await;
    let csp = header(&page, "content-security-policy").unwrap();
    assert!(
        csp.contains("frame-ancestors https://host.example"),
        "{csp}"
    );
    assert_eq!(header(&page, "x-frame-options"), None);
    assert_eq!(
        header(&page, "strict-transport-security"),
        Some("max-age=31536000")
    );
    let (_, plain) = http_get(&spawn_app().await, "/").await;
    assert_eq!(header(&plain, "strict-transport-security"), None);
}

#[tokio::test]
async fn with_an_operators_port_metrics_and_the_readiness_reason_leave_the_public_port() {
    let server = spawn_app_with(|config| {
        config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let (status, _) = http_get(&server, "/metrics").await;
    assert_eq!(status, 404, "no metrics on the public port");
    let (status, ready) = http_get(&server, "/readyz").await;
    assert_eq!(status, 200);
    assert!(ready.ends_with(r#"{"status":"ready"}"#), "{ready}");
    let operators = server.operator_addr.expect("an operators' port");
    let (status, metrics) = http_get_at(operators, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("battle_connections_total"), "{metrics}");
    assert_eq!(http_get_at(operators, "/healthz").await.0, 200);
}
