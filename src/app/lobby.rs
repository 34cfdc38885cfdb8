//! The lobby: start a battle, or join one by id or link.

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_navigate;

use crate::protocol::parse_battle_ref;

/// `/`: start or join a battle.
#[component]
pub fn Lobby() -> impl IntoView {
    let battle = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let join = move |event: SubmitEvent| {
        event.prevent_default();
        match parse_battle_ref(&battle.get_untracked()) {
            Ok(room) => {
                error.set(None);
                navigate(&format!("/battle/{room}"), Default::default());
            }
            Err(reason) => error.set(Some(format!(
                "That is not a battle id or a battle link: {reason}."
            ))),
        }
    };
    view! {
        <section class="card lobby">
            <h1>"Code battles, live"</h1>
            <p class="lede">
                "See what your opponent is doing right now: typing, running code, "
                "submitting, or thinking."
            </p>
            <a id="startBattle" class="button primary" href="/new" rel="external">
                "Start a battle"
            </a>
            <form class="join" on:submit=join novalidate>
                <label for="joinBattle">"Join a battle"</label>
                <div class="row">
                    <input
                        id="joinBattle"
                        name="battle"
                        autocomplete="off"
                        placeholder="Battle id or link"
                        aria-describedby="joinError"
                        bind:value=battle
                    />
                    <button type="submit" class="button">"Join"</button>
                </div>
                <p id="joinError" class="error" role="alert">{move || error.get()}</p>
            </form>
        </section>
    }
}
