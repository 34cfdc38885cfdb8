//! battle-status: shows each player of a head-to-head coding battle what
//! the opponent is doing right now.
//!
//! One crate, two builds: the server (`ssr`) and the browser bundle
//! (`hydrate`). Modules, each with one job:
//!
//! - [`protocol`] (both): the wire format: frames, actions, room names,
//!   limits, shared timings, the table of close codes. Pure.
//! - [`backoff`] (both): jittered exponential backoff, for the page's
//!   reconnections and the server's Redis link. Pure.
//! - [`status`] (both): the opponent-status model, the labels a player
//!   reads, and the typing throttle, driven by explicit time. Pure.
//! - [`app`] (both): the Leptos views, and the page an address shows: the
//!   lobby (which reads pasted battle links) and the battle page.
//! - [`client`] (both, real under `hydrate`): the battle page's socket,
//!   throttle and single wake-up timer; inert on the server.
//! - `server` (`ssr`): configuration, router, the room relay, the hub and
//!   the backplane between instances (`docs/architecture.md`).
//! - `procfs` (`ssr`, `loadgen`): a process's memory and CPU time from
//!   `/proc`, for the load generator and the tests.

pub mod app;
pub mod backoff;
pub mod client;
#[cfg(any(feature = "ssr", feature = "loadgen"))]
pub mod procfs;
pub mod protocol;
#[cfg(feature = "ssr")]
pub mod server;
pub mod status;

/// Browser entry point: hydrates the server-rendered page, the one its
/// address shows.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    let (path, query) = client::location(&app::QUERY_KEYS);
    let address = app::Address::new(&path, query);
    leptos::mount::hydrate_body(move || leptos::view! { <app::App address/> });
}
