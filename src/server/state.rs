//! What the HTTP handlers share.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use super::{judge::Judge, relay::Relay};

/// What the HTTP handlers share; each takes the part it needs.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    /// Where the built site lives, for pages and assets.
    pub leptos: LeptosOptions,
    /// The room relay, shared: each connection keeps a handle on it.
    pub relay: Arc<Relay>,
    /// The judge's publish API.
    pub judge: Judge,
}
