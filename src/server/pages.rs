//! The pages: the lobby and the battle page, rendered at the address they
//! were asked for (anything else is the "not found" page, with 404), and
//! the lobby's two redirects.

use axum::{
    extract::Query,
    http::request::Parts,
    response::{IntoResponse, Redirect},
    routing::get,
    Router,
};
use leptos::{config::LeptosOptions, prelude::use_context};

use super::{security::PagePolicy, state::AppState};
use crate::{
    app::{parse_battle_ref, shell, Address},
    protocol::PlayerName,
};

/// The lobby at `/`, battles at `/battle/<id>`, `/new`, `/join`, and the
/// site's files or the "not found" page for every other address.
pub fn routes(options: LeptosOptions, policy: &PagePolicy) -> Router<AppState> {
    // Rendering spawns on Leptos' executor; it is set once per process (a
    // second server in the same process finds it set already).
    let _ = any_spawner::Executor::init_tokio();
    let page = {
        let policy = policy.clone();
        move |options: LeptosOptions| {
            policy.on_page_render();
            shell(options, requested_address())
        }
    };
    let render = {
        let page = page.clone();
        move || page(options.clone())
    };
    let render = leptos_axum::render_app_to_stream_with_context(|| {}, render);
    Router::new()
        .route("/", get(render.clone()))
        .route("/battle/{id}", get(render))
        .route("/new", get(new_battle))
        .route("/join", get(join_battle))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(page))
}

/// The address of the request being rendered, its query decoded.
fn requested_address() -> Address {
    let Some(parts) = use_context::<Parts>() else {
        return Address::default();
    };
    let query = parts.uri.query().unwrap_or_default();
    let query = form_urlencoded::parse(query.as_bytes()).into_owned();
    Address::new(parts.uri.path(), query)
}

/// What the lobby's join form sends.
#[derive(Debug, serde::Deserialize)]
struct JoinForm {
    battle: Option<String>,
    name: Option<String>,
}

/// `GET /join?battle=<id or link>[&name=<name>]`: the lobby's form before
/// the page hydrated: a redirect to the battle (with the name, if valid),
/// or back to the lobby with what was typed, which it explains.
async fn join_battle(Query(form): Query<JoinForm>) -> impl IntoResponse {
    let typed = form.battle.unwrap_or_default();
    let name = form
        .name
        .as_deref()
        .and_then(|name| PlayerName::parse(name).ok())
        .map(|name| format!("?name={}", url_escape(name.as_str())))
        .unwrap_or_default();
    match parse_battle_ref(&typed) {
        Ok(room) => Redirect::to(&format!("/battle/{room}{name}")),
        Err(_) => {
            let typed: String = typed.chars().take(200).collect();
            let query: String = url_escape(&typed);
            Redirect::to(&format!("/?invalid={query}"))
        }
    }
}

/// `text` as a query string value.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /new`: a fresh battle, as a redirect to its page.
async fn new_battle() -> impl IntoResponse {
    Redirect::to(&format!("/battle/{}", uuid::Uuid::new_v4()))
}
