//! What the client reads from the page: its address, this tab's storage,
//! the player's remembered name, its clock, randomness and the clipboard.

use leptos::prelude::*;

use crate::protocol::{PlayerName, Role, RoomName};

/// Where the player's name is kept, in local storage (every battle, every
/// tab, until changed).
const NAME_KEY: &str = "battle-status:name";

/// Remembers the player's name for the next battles.
pub fn remember_name(name: &PlayerName) {
    if let Some(storage) = window().local_storage().ok().flatten() {
        let _ = storage.set_item(NAME_KEY, name.as_str());
    }
}

/// The player's name as remembered, if it still follows the rules.
pub fn remembered_name() -> Option<PlayerName> {
    let storage = window().local_storage().ok().flatten()?;
    PlayerName::parse(&storage.get_item(NAME_KEY).ok().flatten()?).ok()
}

/// This page's path, and the values of the query parameters `keys` it was
/// opened with, decoded.
pub fn location(keys: &[&str]) -> (String, Vec<(String, String)>) {
    let location = window().location();
    let params = web_sys::UrlSearchParams::new_with_str(&location.search().unwrap_or_default());
    let query = keys
        .iter()
        .filter_map(|key| {
            let value = params.as_ref().ok()?.get(key)?;
            Some((key.to_string(), value))
        })
        .collect();
    (location.pathname().unwrap_or_default(), query)
}

/// `&name=<name>` for a socket URL, encoded.
pub fn name_param(name: Option<&PlayerName>) -> String {
    name.map(|name| {
        format!(
            "&name={}",
            String::from(js_sys::encode_uri_component(name.as_str()))
        )
    })
    .unwrap_or_default()
}

/// The room's socket on the server that served this page, with this tab's
/// key for the seat, kept in the tab's session storage so that a reload or
/// a reconnection takes the same seat back, and the join token if any.
pub fn socket_url(room: &RoomName, role: Role, token: Option<&str>) -> String {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().unwrap_or_default();
    let role_name = role_name(role);
    let key = tab_key(&format!("battle-status:{room}:{role_name}"));
    let token = token
        .map(|token| format!("&token={token}"))
        .unwrap_or_default();
    format!("{scheme}://{host}/ws/battle/{room}/?role={role_name}&player={key}{token}")
}

/// The join token of this tab for `room` and `role`: `from_url` if the page
/// was opened with one, which is then kept in the tab's session storage (so
/// reloads and reconnections keep it) and taken out of the address bar at
/// once (so a copied address, a screenshot or the history never holds it);
/// else the one kept before, if any.
pub fn keep_token(room: &RoomName, role: Role, from_url: Option<String>) -> Option<String> {
    let name = format!("battle-status:{room}:{}:token", role_name(role));
    let storage = window().session_storage().ok().flatten();
    let Some(token) = from_url else {
        return storage.and_then(|s| s.get_item(&name).ok().flatten());
    };
    if let Some(storage) = storage {
        let _ = storage.set_item(&name, &token);
    }
    strip_from_address("token");
    Some(token)
}

/// Replaces the address bar's URL with the same one without the query
/// parameter `param`.
pub fn strip_from_address(param: &str) {
    let window = window();
    let Ok(href) = window.location().href() else {
        return;
    };
    let (Ok(url), Ok(history)) = (web_sys::Url::new(&href), window.history()) else {
        return;
    };
    url.search_params().delete(param);
    let state = history.state().unwrap_or(wasm_bindgen::JsValue::NULL);
    if history
        .replace_state_with_url(&state, "", Some(&url.href()))
        .is_err()
    {
        leptos::logging::warn!("could not take {param} out of the address bar");
    }
}

/// The role as the socket URL names it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Player => "player",
        Role::Spectator => "spectator",
    }
}

/// This tab's key named `name`, made and stored on first use.
fn tab_key(name: &str) -> String {
    let storage = window().session_storage().ok().flatten();
    if let Some(key) = storage
        .as_ref()
        .and_then(|s| s.get_item(name).ok().flatten())
    {
        return key;
    }
    let key = format!("{}{}", random_id(), random_id());
    if let Some(storage) = storage {
        let _ = storage.set_item(name, &key);
    }
    key
}

/// Milliseconds on the page's monotonic clock.
pub fn now() -> u64 {
    window()
        .performance()
        .map_or(0.0, |performance| performance.now()) as u64
}

/// A random id of 16 hex digits.
pub fn random_id() -> String {
    (0..4)
        .map(|_| format!("{:04x}", (js_sys::Math::random() * 65536.0) as u32))
        .collect()
}

/// Copies `text` to the clipboard, then calls `done` with whether it worked.
pub fn copy_to_clipboard(text: String, done: impl FnOnce(bool) + 'static) {
    let promise = window().navigator().clipboard().write_text(&text);
    leptos::task::spawn_local(async move {
        done(wasm_bindgen_futures::JsFuture::from(promise).await.is_ok());
    });
}
