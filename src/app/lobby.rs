//! The lobby: the player's name, then start a battle, or join one by id or
//! link.

use leptos::{
    ev::{Event, SubmitEvent},
    html,
    prelude::*,
};

use crate::{
    client::{remembered_name, take_name},
    protocol::{RoomName, RoomNameError},
};

/// `/`: start or join a battle. The join form works before the page
/// hydrates too: it goes to `/join`, which redirects to the battle, or back
/// here with `?invalid=<what was typed>`, shown as the error.
///
/// Both fields are read from the page, never written by the app's state:
/// what a player types before the page hydrates stays (hydration would
/// otherwise set each field back to its state's initial value).
#[component]
pub fn Lobby(invalid: Option<String>) -> impl IntoView {
    let error = RwSignal::new(invalid.as_deref().and_then(join_error));
    let name_field = NodeRef::<html::Input>::new();
    let battle_field = NodeRef::<html::Input>::new();
    let name_error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let (Some(field), Some(remembered)) = (name_field.get(), remembered_name()) {
            if field.value().is_empty() {
                field.set_value(remembered.as_str());
            }
        }
    });
    let rename = move |event: Event| {
        let typed = event_target_value(&event);
        match take_name(&typed) {
            Ok(taken) => {
                if let Some(field) = name_field.get_untracked() {
                    field.set_value(taken.as_str());
                }
                name_error.set(None);
            }
            Err(error) => name_error.set(Some(error.to_string())),
        }
    };
    // The name is taken here too: one typed before the page hydrated had
    // its change seen by nobody.
    let join = move |event: SubmitEvent| {
        event.prevent_default();
        let typed = field_value(battle_field);
        let room = match parse_battle_ref(&typed) {
            Ok(room) => room,
            Err(_) => return error.set(join_error(&typed)),
        };
        error.set(None);
        let typed_name = field_value(name_field);
        if !typed_name.trim().is_empty() {
            if let Err(bad) = take_name(&typed_name) {
                return name_error.set(Some(bad.to_string()));
            }
        }
        let _ = window().location().set_href(&format!("/battle/{room}"));
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
                    node_ref=name_field
                    on:change=rename
                />
                <p id="lobbyNameError" class="error" role="alert">{move || name_error.get()}</p>
            </div>
            <a id="startBattle" class="button primary" href="/new">
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
                        value=invalid
                        node_ref=battle_field
                    />
                    <button type="submit" class="button">"Join"</button>
                </div>
                <p id="joinError" class="error" role="alert">{move || error.get()}</p>
            </form>
        </section>
    }
}

/// What the player typed into `field`.
fn field_value(field: NodeRef<html::Input>) -> String {
    field
        .get_untracked()
        .map(|field| field.value())
        .unwrap_or_default()
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
