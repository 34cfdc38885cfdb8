//! The Leptos app: the document shell, the routes, and the two pages.

mod battle;
mod lobby;
mod player_desk;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path,
};

pub use self::lobby::parse_battle_ref;
use self::{battle::BattlePage, lobby::Lobby};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
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
                <App/>
            </body>
        </html>
    }
}

/// The app: the lobby at `/`, a battle at `/battle/<id>`.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Title text="Battle status"/>
        <Router>
            <header class="topbar">
                <a class="brand" href="/">"battle"<span>"status"</span></a>
            </header>
            // Effects run only in the browser, once the page has hydrated:
            // the mark lets a test (or a style) tell a live page from its
            // server-rendered HTML.
            <main data-hydrated=move || hydrated.get().then_some("")>
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=Lobby/>
                    <Route path=path!("/battle/:id") view=BattlePage/>
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    respond_not_found();
    view! {
        <section class="card narrow">
            <h1>"Page not found"</h1>
            <p><a href="/">"Back to the lobby"</a></p>
        </section>
    }
}

/// Makes the server answer this render with 404.
#[cfg(feature = "ssr")]
fn respond_not_found() {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
}

/// Status codes only exist on the server.
#[cfg(not(feature = "ssr"))]
fn respond_not_found() {}
