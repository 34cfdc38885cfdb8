//! The battle page: the editor, Run and Submit, the player's connection and
//! the opponent's status.

use leptos::{ev, prelude::*};
use leptos_router::hooks::use_params_map;
use web_sys::HtmlTextAreaElement;

use crate::{
    client::{copy_to_clipboard, BattleClient, ConnectionState, Views},
    protocol::{Action, RoomName},
    status::Status,
};

/// Spaces inserted by the Tab key in the editor.
const INDENT: &str = "    ";

/// `/battle/<id>`: a battle, or a plain message if the id is not valid.
#[component]
pub fn BattlePage() -> impl IntoView {
    let params = use_params_map();
    move || {
        let id = params.read().get("id").unwrap_or_default();
        match RoomName::parse(&id) {
            Ok(room) => view! { <Battle room/> }.into_any(),
            Err(reason) => view! {
                <section class="card narrow">
                    <h1>"No such battle"</h1>
                    <p class="error">{reason.to_string()}</p>
                    <p><a href="/">"Back to the lobby"</a></p>
                </section>
            }
            .into_any(),
        }
    }
}

#[component]
fn Battle(room: RoomName) -> impl IntoView {
    let views = Views {
        connection: RwSignal::new(ConnectionState::Connecting),
        opponent: RwSignal::new(Status::Thinking),
    };
    let client = StoredValue::new_local(None::<BattleClient>);
    let started_room = room.clone();
    Effect::new(move |_| {
        client.set_value(BattleClient::start(started_room.clone(), views));
    });
    on_cleanup(move || client.with_value(|client| client.iter().for_each(BattleClient::stop)));
    let with_client = move |f: &dyn Fn(&BattleClient)| client.with_value(|c| c.iter().for_each(f));

    let copied = RwSignal::new(None::<bool>);
    let copy_link = move |_| {
        let link = window().location().href().unwrap_or_default();
        copy_to_clipboard(link, move |ok| copied.set(Some(ok)));
    };
    let copy_label = move || match copied.get() {
        None => "Copy link",
        Some(true) => "Copied!",
        Some(false) => "Copy failed: use the address bar",
    };
    let on_keydown = move |event: ev::KeyboardEvent| {
        if event.key() == "Tab" && !event.shift_key() && !event.ctrl_key() && !event.alt_key() {
            event.prevent_default();
            indent(&event_target::<HtmlTextAreaElement>(&event));
            with_client(&BattleClient::typed);
        }
    };
    let connection = views.connection;
    let opponent = views.opponent;

    view! {
        <section class="battle">
            <input type="hidden" id="battleId" value=room.to_string()/>
            <div class="battle-head">
                <div>
                    <p class="eyebrow">"Battle"</p>
                    <h1 class="battle-id">{room.to_string()}</h1>
                </div>
                <div class="head-actions">
                    <button id="copyLink" class="button ghost" on:click=copy_link>
                        {copy_label}
                    </button>
                    <span
                        id="connectionState"
                        class="pill"
                        data-state=move || connection.get().name()
                        aria-live="polite"
                    >
                        {move || connection.get().label()}
                    </span>
                </div>
            </div>
            <div class="battle-grid">
                <div class="card editor-card">
                    <label for="editor" class="card-title">"Your solution"</label>
                    <textarea
                        id="editor"
                        class="editor"
                        spellcheck="false"
                        autocapitalize="off"
                        autocomplete="off"
                        placeholder="// write your solution here"
                        on:input=move |_| with_client(&BattleClient::typed)
                        on:keydown=on_keydown
                    ></textarea>
                    <div class="editor-actions">
                        <button
                            id="runButton"
                            class="button"
                            on:click=move |_| with_client(&|c| c.act(Action::Running))
                        >
                            "Run"
                        </button>
                        <button
                            id="submitButton"
                            class="button primary"
                            on:click=move |_| with_client(&|c| c.act(Action::Submitted))
                        >
                            "Submit"
                        </button>
                    </div>
                </div>
                <aside class="card opponent-card" aria-label="Opponent">
                    <p class="card-title">"Opponent"</p>
                    <div
                        id="opponentStatus"
                        class="status"
                        data-status=move || status_name(opponent.get())
                        aria-live="polite"
                    >
                        {move || opponent.get().label()}
                    </div>
                </aside>
            </div>
        </section>
    }
}

/// A stable name of a status, for styling.
fn status_name(status: Status) -> &'static str {
    match status {
        Status::Typing => "typing",
        Status::Action(_) => "action",
        Status::Thinking => "thinking",
    }
}

/// Replaces the editor's selection with [`INDENT`], as a code editor does.
fn indent(editor: &HtmlTextAreaElement) {
    let value = editor.value();
    let to_byte = |utf16: Option<u32>| {
        let utf16 = utf16.unwrap_or(0) as usize;
        let mut units = 0;
        value
            .char_indices()
            .find(|(_, c)| {
                let here = units >= utf16;
                units += c.len_utf16();
                here
            })
            .map_or(value.len(), |(at, _)| at)
    };
    let start = to_byte(editor.selection_start().ok().flatten());
    let end = to_byte(editor.selection_end().ok().flatten()).max(start);
    editor.set_value(&format!("{}{INDENT}{}", &value[..start], &value[end..]));
    let caret = (value[..start].encode_utf16().count() + INDENT.len()) as u32;
    let _ = editor.set_selection_range(caret, caret);
}
