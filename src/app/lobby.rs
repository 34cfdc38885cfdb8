//! The lobby: the player's name, then start a battle, or join one by id or
//! link.

use leptos::{
    ev::{Event, SubmitEvent},
    prelude::*,
};
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::{
    client::{remembered_name, take_name},
    protocol::{RoomName, RoomNameError},
};

/// `/`: start or join a battle. The join form works before the page
/// hydrates too: it goes to `/join`, which redirects to the battle, or back
/// here with `?invalid=<what was typed>`, shown as the error.
#[component]
pub fn Lobby() -> impl IntoView {
    let invalid = use_query_map().read_untracked().get("invalid");
    let battle = RwSignal::new(invalid.clone().unwrap_or_default());
    let error = RwSignal::new(invalid.as_deref().and_then(join_error));
    let name = RwSignal::new(String::new());
    let name_error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(remembered) = remembered_name() {
            name.set(remembered.as_str().to_owned());
        }
    });
    let rename = move |event: Event| {
        let typed = event_target_value(&event);
        match take_name(&typed) {
            Ok(taken) => {
                name.set(taken.as_str().to_owned());
                name_error.set(None);
            }
            Err(error) => name_error.set(Some(error.to_string())),
        }
    };
    let navigate = use_navigate();
    let join = move |event: SubmitEvent| {
        event.prevent_default();
        let typed = battle.get_untracked();
        match parse_battle_ref(&typed) {
            Ok(room) => {
                error.set(None);
                navigate(&format!("/battle/{room}"), Default::default());
            }
            Err(_) => error.set(join_error(&typed)),
        }
    };
    view! {
        <section class="card lobby">
            <h1>"Code battles, live"</h1>
            <p class="lede">
                "See what your opponent is doing right now: typing, running code, "
                "submitting, or thinking."
            </p>
            <div class="name-field">
                <label for="lobbyName">"Your name"</label>
                <input
                    id="lobbyName"
                    form="joinForm"
                    name="name"
                    autocomplete="nickname"
                    placeholder="Shown to your opponent"
                    aria-describedby="lobbyNameError"
                    prop:value=move || name.get()
                    on:change=rename
                />
                <p id="lobbyNameError" class="error" role="alert">{move || name_error.get()}</p>
            </div>
            <a id="startBattle" class="button primary" href="/new" rel="external">
                "Start a battle"
            </a>
            <form id="joinForm" class="join" action="/join" method="get" on:submit=join novalidate>
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

/// What the lobby says about `typed`, if it is not a battle.
fn join_error(typed: &str) -> Option<String> {
    parse_battle_ref(typed)
        .err()
        .map(|reason| format!("That is not a battle id or a battle link: {reason}."))
}

/// Reads what a player pasted into the lobby's join field: a battle id, or a
/// link to a battle page (`https://host/battle/<id>`, with or without a
/// trailing slash, query or fragment).
pub fn parse_battle_ref(input: &str) -> Result<RoomName, RoomNameError> {
    let input = input.trim();
    let id = match input.find("/battle/") {
        Some(at) => {
            let rest = &input[at + "/battle/".len()..];
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            &rest[..end]
        }
        None => input,
    };
    RoomName::parse(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lobby_reads_a_bare_id_or_a_pasted_link() {
        for input in [
            "abc-123",
            "  abc-123 ",
            "http://127.0.0.1:3000/battle/abc-123",
            "https://battles.example/battle/abc-123/",
            "https://battles.example/battle/abc-123?role=spectator",
            "/battle/abc-123#top",
        ] {
            assert_eq!(
                parse_battle_ref(input).unwrap().as_str(),
                "abc-123",
                "{input}"
            );
        }
        assert_eq!(parse_battle_ref(""), Err(RoomNameError::Empty));
        assert_eq!(
            parse_battle_ref("https://battles.example/battle/"),
            Err(RoomNameError::Empty)
        );
        assert!(parse_battle_ref("https://battles.example/lobby").is_err());
    }
}
