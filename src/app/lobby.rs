//! The lobby: start a battle, or join one by id or link.

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_navigate;

use crate::protocol::{RoomName, RoomNameError};

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
