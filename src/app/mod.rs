//! The Leptos app: the document shell, the page an address shows, and the
//! two pages.

mod address;
mod battle;
mod lobby;
mod player_desk;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags};

pub use self::{
    address::{Address, Route, QUERY_KEYS},
    lobby::parse_battle_ref,
};
use self::{battle::BattlePage, lobby::Lobby};

/// The HTML document around the app at `address`, rendered on the server.
/// Its head is the server's alone: the page never changes it through
/// Leptos (the title that counts missed moves is set by hand), so the
/// browser's bundle carries no `leptos_meta`.
pub fn shell(options: LeptosOptions, address: Address) -> impl IntoView {
    provide_meta_context();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <title>"Battle status"</title>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <meta
                    name="description"
                    content="Live opponent status for head-to-head coding battles: see whether your opponent is typing, running, submitting or thinking."
                />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HashedStylesheet options=options.clone() id="leptos"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App address/>
            </body>
        </html>
    }
}

/// The app at `address`: the lobby at `/`, a battle at `/battle/<id>`.
#[component]
pub fn App(address: Address) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <header class="topbar">
            <a class="brand" href="/">"battle"<span>"status"</span></a>
        </header>
        // Effects run only in the browser, once the page has hydrated: the
        // mark lets a test (or a style) tell a live page from its
        // server-rendered HTML.
        <main data-hydrated=move || hydrated.get().then_some("")>
            {match address.route() {
                Route::Lobby => view! { <Lobby invalid=address.query("invalid")/> }.into_any(),
                Route::Battle(id) => view! { <BattlePage id address/> }.into_any(),
                Route::NotFound => view! { <NotFound/> }.into_any(),
            }}
        </main>
    }
}

/// Any other address (the server answers it with 404).
#[component]
fn NotFound() -> impl IntoView {
    view! {
        <section class="card narrow">
            <h1>"Page not found"</h1>
            <p><a href="/">"Back to the lobby"</a></p>
        </section>
    }
}
